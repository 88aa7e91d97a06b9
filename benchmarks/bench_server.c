/*
 * bench_server - load benchmark of `cordon serve` on loopback.
 *
 * Builds (once, cached under $CORDON_CACHE/bench-server/) a database of N
 * random PDQ hashes plus the hashes of half of the corpus's 640x480 JPEGs,
 * starts the real server on 127.0.0.1 with 1 and 2 worker threads, and
 * drives it with wrk (Lua scripts with pre-built requests):
 *   status      GET /status                  baseline: HTTP + auth only
 *   check       POST /v1/check, raw JPEG     the upload-time call
 *   check_fast  POST /v1/check?fast=true     reduced-scale JPEG decode
 *   raw_lookup  GET /m/raw_lookup by PDQ     index lookup without hashing
 * Each case runs `reps` times after a warm-up; medians are reported. JSON
 * lines on stdout, the table on stderr. wrk and the server share the
 * machine's cores, so absolute numbers include the load generator's cost.
 *
 * usage: bench_server [--json] [--quick] [--hashes N] [--duration S]
 *                     [--reps R]
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cordon.h"
#include "hdb.h"

extern char **environ;

#define TOKEN "bench-server-token-not-secret"
#define MAX_FILES 256

static char cache[1024], corpus[1100], cordon_bin[1100], workdir[1200];
static pid_t server_pid;

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "bench_server: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    if (server_pid > 0)
        kill(server_pid, SIGTERM);
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_dbl);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The 640x480 JPEGs of the corpus, sorted. */
static size_t list_jpegs(char **out)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/jpeg640", corpus);
    DIR *d = opendir(dir);
    if (!d)
        die("no %s: run benchmarks/corpus.sh first", dir);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < MAX_FILES) {
        size_t l = strlen(e->d_name);
        if (l > 4 && !strcmp(e->d_name + l - 4, ".jpg")) {
            char *p = malloc(strlen(dir) + l + 2);
            sprintf(p, "%s/%s", dir, e->d_name);
            out[n++] = p;
        }
    }
    closedir(d);
    qsort(out, n, sizeof *out, cmp_str);
    if (!n)
        die("no JPEGs in %s", dir);
    return n;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(n > 0 ? (size_t)n : 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return p;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void random_hash(uint64_t *seed, cordon_hash256_t *h)
{
    for (int i = 0; i < 4; i++)
        h->w[i] = splitmix(seed);
}

/* Builds the database unless a finished one is cached. */
static void build_db(const char *path, uint64_t nhashes, char **files,
                     size_t nfiles)
{
    char stamp[1500];
    snprintf(stamp, sizeof stamp, "%s.complete", path);
    struct stat st;
    if (stat(stamp, &st) == 0 && stat(path, &st) == 0)
        return;
    unlink(path);
    char lock[1500];
    snprintf(lock, sizeof lock, "%s-lock", path);
    unlink(lock);
    fprintf(stderr, "bench_server: building %s (%llu random hashes)\n", path,
            (unsigned long long)nhashes);
    double t0 = now_s();
    hdb_opts_t o;
    memset(&o, 0, sizeof o);
    o.nosync = 1;
    hdb_t *db;
    if (hdb_open(path, &o, &db) != CORDON_OK)
        die("cannot create %s", path);
    hdb_bank_spec_t bank = {"BENCH", 1, "block", NULL, 0};
    if (hdb_bank_create(db, &bank, NULL) != CORDON_OK)
        die("bank create failed in %s", path);
    uint64_t seed = 42;
    hdb_signal_t sig;
    memset(&sig, 0, sizeof sig);
    sig.type = HDB_SIG_PDQ;
    sig.quality = 100;
    hdb_item_spec_t spec;
    memset(&spec, 0, sizeof spec);
    spec.bank = "BENCH";
    spec.signals = &sig;
    spec.nsignals = 1;
    spec.prov.source = HDB_SOURCE_FILE;
    for (uint64_t done = 0; done < nhashes;) {
        hdb_batch_t *b;
        if (hdb_batch_begin(db, &b) != CORDON_OK)
            die("batch failed in %s", path);
        for (int i = 0; i < 20000 && done < nhashes; i++, done++) {
            random_hash(&seed, &sig.pdq);
            if (hdb_batch_add(b, &spec, 0) != CORDON_OK)
                die("batch add failed in %s", path);
        }
        if (hdb_batch_commit(b, NULL, NULL) != CORDON_OK)
            die("batch commit failed in %s", path);
    }
    /* Every other corpus image is known content, so checks both match and
     * miss. */
    for (size_t i = 0; i < nfiles; i += 2) {
        size_t len;
        uint8_t *p = read_file(files[i], &len);
        cordon_image_hashes_t h;
        if (!p || cordon_hash_image(p, len, NULL, &h) != CORDON_OK)
            die("cannot hash %s", files[i]);
        free(p);
        sig.pdq = h.pdq;
        sig.quality = h.quality;
        if (hdb_item_add(db, &spec, 0, NULL) != CORDON_OK)
            die("item add failed in %s", path);
    }
    uint8_t d[32];
    cordon_digest((const uint8_t *)TOKEN, strlen(TOKEN), NULL, d);
    if (hdb_apikey_add(db, "bench", "matcher", d, NULL) != CORDON_OK)
        die("key add failed in %s", path);
    hdb_close(db);
    FILE *f = fopen(stamp, "w");
    if (f)
        fclose(f);
    fprintf(stderr, "bench_server: built in %.1fs\n", now_s() - t0);
}

/* The 1-minute load average: how busy the shared machine was. */
static double loadavg(void)
{
    double l = 0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = 0;
        fclose(f);
    }
    return l;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) ||
        getsockname(fd, (struct sockaddr *)&a, &l))
        die("%s", "cannot find a free port");
    close(fd);
    return ntohs(a.sin_port);
}

static int port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static void start_server(const char *db, int port, int threads)
{
    char listen[64], th[16], log[1300];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf(th, sizeof th, "%d", threads);
    snprintf(log, sizeof log, "%s/serve.log", workdir);
    const char *argv[] = {cordon_bin,  "serve", "--db",      db,
                          "--listen",  listen,  "--threads", th,
                          "--no-sync", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_adddup2(&fa, 2, 1);
    if (posix_spawn(&server_pid, cordon_bin, &fa, NULL, (char *const *)argv,
                    environ) != 0)
        die("cannot start %s", cordon_bin);
    posix_spawn_file_actions_destroy(&fa);
    for (int i = 0; i < 6000; i++) {
        if (port_open(port))
            return;
        if (waitpid(server_pid, NULL, WNOHANG) == server_pid)
            die("the server exited; see %s", log);
        usleep(10000);
    }
    die("the server did not start; see %s", log);
}

static void stop_server(void)
{
    if (server_pid <= 0)
        return;
    kill(server_pid, SIGTERM);
    int st = 0;
    waitpid(server_pid, &st, 0);
    server_pid = 0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        die("%s", "the server did not stop cleanly");
}

/* A wrk script that cycles through pre-built requests. kind: "status",
 * "check", "check_fast", "raw_lookup". */
static void write_script(const char *path, const char *kind, char **files,
                         size_t nfiles)
{
    FILE *f = fopen(path, "w");
    if (!f)
        die("cannot write %s", path);
    fprintf(f, "local reqs = {}\nlocal n = 0\n"
               "local hdr = {[\"Authorization\"] = \"Bearer " TOKEN "\"}\n");
    if (!strncmp(kind, "check", 5)) {
        fprintf(f, "local files = {\n");
        for (size_t i = 0; i < nfiles; i++)
            fprintf(f, "  \"%s\",\n", files[i]);
        fprintf(f,
                "}\nfunction init(args)\n"
                "  hdr[\"Content-Type\"] = \"image/jpeg\"\n"
                "  for i, p in ipairs(files) do\n"
                "    local fh = assert(io.open(p, \"rb\"))\n"
                "    local body = fh:read(\"*a\")\n    fh:close()\n"
                "    reqs[i] = wrk.format(\"POST\", \"/v1/check%s\", hdr, "
                "body)\n"
                "  end\nend\n",
                strcmp(kind, "check_fast") ? "" : "?fast=true");
    } else if (!strcmp(kind, "raw_lookup")) {
        /* Half the queries are stored hashes (the first random ones the
         * database got), half are fresh random hashes. */
        fprintf(f, "local sigs = {\n");
        uint64_t s_db = 42, s_new = 7;
        for (int i = 0; i < 512; i++) {
            cordon_hash256_t h;
            random_hash(i % 2 ? &s_new : &s_db, &h);
            char hex[65];
            cordon_hash_to_hex(&h, hex);
            fprintf(f, "  \"%s\",\n", hex);
        }
        fprintf(f, "}\nfunction init(args)\n"
                   "  for i, s in ipairs(sigs) do\n"
                   "    reqs[i] = wrk.format(\"GET\", "
                   "\"/m/raw_lookup?signal_type=pdq&include_distance=true&"
                   "signal=\" .. s, hdr)\n"
                   "  end\nend\n");
    } else {
        fprintf(f, "function init(args)\n"
                   "  reqs[1] = wrk.format(\"GET\", \"/status\", hdr)\nend\n");
    }
    fprintf(f,
            "function request()\n  n = n + 1\n  return reqs[(n %% #reqs) + 1]\n"
            "end\n"
            "function done(s, lat, req)\n"
            "  io.write(string.format(\"WRKJSON %%d %%d %%d %%d %%d %%d %%d "
            "%%d %%d %%d\\n\", s.requests, s.duration, s.errors.status,\n"
            "    s.errors.connect, s.errors.read, s.errors.write, "
            "s.errors.timeout,\n"
            "    lat:percentile(50), lat:percentile(99), lat.max))\nend\n");
    fclose(f);
}

typedef struct {
    double rps, p50_ms, p99_ms, max_ms;
    double cpu_ms; /* server CPU (user + system) per request */
    long errors;
} run_t;

/* CPU seconds (user + system) the server has used so far. */
static double server_cpu(void)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)server_pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* Fields after the parenthesised command name; utime and stime are
     * the 14th and 15th of the line. */
    char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (!p ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
               &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Runs wrk once; returns 0 and fills *out, -1 if wrk failed. */
static int run_wrk(const char *script, int port, int conns, int seconds,
                   run_t *out)
{
    char cmd[2600];
    snprintf(cmd, sizeof cmd,
             "wrk -t1 -c%d -d%ds --timeout 10s -s '%s' "
             "http://127.0.0.1:%d/ 2>&1",
             conns, seconds, script, port);
    double cpu0 = server_cpu();
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char line[512];
    int ok = -1;
    while (fgets(line, sizeof line, p)) {
        long long req, dur, es, ec, er, ew, et, p50, p99, mx;
        if (sscanf(line,
                   "WRKJSON %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld",
                   &req, &dur, &es, &ec, &er, &ew, &et, &p50, &p99,
                   &mx) == 10) {
            out->rps = dur > 0 ? (double)req * 1e6 / (double)dur : 0;
            out->p50_ms = (double)p50 / 1e3;
            out->p99_ms = (double)p99 / 1e3;
            out->max_ms = (double)mx / 1e3;
            out->errors = (long)(es + ec + er + ew + et);
            out->cpu_ms = req ? (server_cpu() - cpu0) * 1e3 / (double)req : 0;
            ok = 0;
        }
    }
    int st = pclose(p);
    return (st == 0 && ok == 0) ? 0 : -1;
}

int main(int argc, char **argv)
{
    int json = 0, quick = 0, duration = 0, reps = 0;
    unsigned long long nhashes = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--hashes") && i + 1 < argc)
            nhashes = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--duration") && i + 1 < argc)
            duration = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_server [--json] [--quick] "
                            "[--hashes N] [--duration S] [--reps R]\n");
            return 2;
        }
    }
    if (!nhashes)
        nhashes = quick ? 100000 : 1000000;
    if (duration <= 0)
        duration = quick ? 3 : 8;
    if (reps <= 0)
        reps = quick ? 1 : 3;
    signal(SIGPIPE, SIG_IGN);

    const char *c = getenv("CORDON_CACHE");
    if (c && *c)
        snprintf(cache, sizeof cache, "%s", c);
    else
        snprintf(cache, sizeof cache, "%s/.cache/cordon",
                 getenv("HOME") ? getenv("HOME") : "/tmp");
    const char *cp = getenv("CORDON_CORPUS");
    if (cp && *cp)
        snprintf(corpus, sizeof corpus, "%s", cp);
    else
        snprintf(corpus, sizeof corpus, "%s/corpus", cache);
    const char *b = getenv("CORDON_BIN");
    if (b && *b) {
        snprintf(cordon_bin, sizeof cordon_bin, "%s", b);
    } else {
        /* build/bench/bench_server -> build/cordon */
        char self[1024];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0)
            die("%s", "cannot find myself; set CORDON_BIN");
        self[n] = 0;
        char *slash = strrchr(self, '/');
        *slash = 0;
        slash = strrchr(self, '/');
        if (slash)
            *slash = 0;
        snprintf(cordon_bin, sizeof cordon_bin, "%s/cordon", self);
    }
    if (access(cordon_bin, X_OK) != 0)
        die("no cordon binary at %s (set CORDON_BIN)", cordon_bin);
    if (system("wrk --version >/dev/null 2>&1") == -1 ||
        system("command -v wrk >/dev/null 2>&1") != 0)
        die("%s", "wrk is not installed (scripts/deps.sh --bench)");
    snprintf(workdir, sizeof workdir, "%s/bench-server", cache);
    mkdir(cache, 0755);
    mkdir(workdir, 0755);

    char *files[MAX_FILES];
    size_t nfiles = list_jpegs(files);
    char dbpath[1400];
    snprintf(dbpath, sizeof dbpath, "%s/db-%llu.db", workdir, nhashes);
    build_db(dbpath, nhashes, files, nfiles);
    uint64_t total_bytes = 0;
    for (size_t i = 0; i < nfiles; i++) {
        struct stat st;
        if (stat(files[i], &st) == 0)
            total_bytes += (uint64_t)st.st_size;
    }

    static const struct {
        const char *kind;
        int threads;
    } cases[] = {{"status", 2},     {"check", 1},      {"check", 2},
                 {"check_fast", 2}, {"raw_lookup", 1}, {"raw_lookup", 2}};
    const size_t ncases = sizeof cases / sizeof cases[0];
    fprintf(stderr,
            "bench_server: %llu hashes + %zu known images; %zu JPEGs "
            "(mean %.0f KiB, 640x480 max); wrk -t1 -c(2*threads), %d s x "
            "%d reps, medians\n",
            nhashes, (nfiles + 1) / 2, nfiles,
            (double)total_bytes / (double)nfiles / 1024.0, duration, reps);
    fprintf(stderr,
            "bench_server: load average %.2f at the start (other processes "
            "share these cores)\n",
            loadavg());
    fprintf(stderr, "%-12s %7s %5s | %10s %9s %9s %9s | %9s | %6s %s\n", "case",
            "threads", "conns", "req/s", "p50 ms", "p99 ms", "max ms",
            "cpu ms/req", "errors", "target");
    int failed = 0;
    int port = 0, cur_threads = 0;
    for (size_t k = 0; k < ncases; k++) {
        int threads = cases[k].threads, conns = 2 * threads;
        if (threads != cur_threads) {
            stop_server();
            port = free_port();
            start_server(dbpath, port, threads);
            cur_threads = threads;
        }
        char script[1400];
        snprintf(script, sizeof script, "%s/%s.lua", workdir, cases[k].kind);
        write_script(script, cases[k].kind, files, nfiles);
        run_t warm, r[16];
        if (run_wrk(script, port, conns, 1, &warm) != 0) {
            fprintf(stderr, "bench_server: wrk failed (%s)\n", cases[k].kind);
            failed = 1;
            continue;
        }
        double rps[16], p50[16], p99[16], mx[16], cpu[16];
        long errors = 0;
        int n = 0;
        for (int i = 0; i < reps && i < 16; i++) {
            if (run_wrk(script, port, conns, duration, &r[i]) != 0) {
                failed = 1;
                continue;
            }
            rps[n] = r[i].rps;
            p50[n] = r[i].p50_ms;
            p99[n] = r[i].p99_ms;
            mx[n] = r[i].max_ms;
            cpu[n] = r[i].cpu_ms;
            errors += r[i].errors;
            n++;
        }
        if (!n)
            continue;
        double mr = median(rps, n), m50 = median(p50, n), m99 = median(p99, n),
               mmx = median(mx, n), mcpu = median(cpu, n);
        const char *target = "";
        if (!strcmp(cases[k].kind, "check") && threads == 2)
            target = (mr >= 800 && m99 < 10) ? "PASS (>=800/s, p99<10ms)"
                                             : "MISS (>=800/s, p99<10ms)";
        fprintf(stderr,
                "%-12s %7d %5d | %10.0f %9.2f %9.2f %9.2f | %9.3f | %6ld %s\n",
                cases[k].kind, threads, conns, mr, m50, m99, mmx, mcpu, errors,
                target);
        if (json)
            printf("{\"type\":\"result\",\"case\":\"%s\",\"threads\":%d,"
                   "\"connections\":%d,\"hashes\":%llu,\"duration_s\":%d,"
                   "\"reps\":%d,\"rps\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
                   "\"max_ms\":%.3f,\"server_cpu_ms_per_req\":%.4f,"
                   "\"loadavg\":%.2f,\"errors\":%ld%s%s%s}\n",
                   cases[k].kind, threads, conns, nhashes, duration, n, mr, m50,
                   m99, mmx, mcpu, loadavg(), errors,
                   *target ? ",\"target\":\"" : "",
                   *target ? (target[0] == 'P' ? "pass" : "miss") : "",
                   *target ? "\"" : "");
        fflush(stdout);
        if (errors)
            failed = 1;
    }
    stop_server();
    for (size_t i = 0; i < nfiles; i++)
        free(files[i]);
    return failed;
}
