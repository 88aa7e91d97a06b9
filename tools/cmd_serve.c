/* cmd_serve.c - `cordon serve`: the upload-time HTTP service. Options,
 * signals, the index refresher; the rest is in tools/server*.c. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "db_common.h"
#include "server.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: cordon serve [options]\n"
        "\n"
        "Serves the hash database over HTTP: Cordon's upload-time check\n"
        "(POST /v1/check), the change feed (GET /v1/feed), Prometheus\n"
        "metrics (GET /metrics) and a compatible subset of Meta HMA's\n"
        "/h, /m and /c endpoints. Requests need an API key (cordon key\n"
        "create) sent as 'Authorization: Bearer <token>'. One access-log\n"
        "line per request goes to stderr. SIGTERM or SIGINT stops it\n"
        "cleanly: no new connections, in-flight requests finish.\n"
        "\n"
        "options:\n"
        "  --db PATH            database (default $CORDON_DB, ./cordon.db)\n"
        "  --listen HOST:PORT   address (default 127.0.0.1:5000; [::1]:PORT\n"
        "                       for IPv6, :PORT for every interface)\n"
        "  --threads N          worker threads (default: CPUs)\n"
        "  --max-body BYTES     largest request body, suffix K, M or G\n"
        "                       (default 64M); larger ones get 413\n"
        "  --timeout SECONDS    close connections idle this long (30)\n"
        "  --max-connections N  concurrent connections (256)\n"
        "  --no-auth            no API keys: everyone is admin. Local\n"
        "                       development only\n"
        "  --no-sync            do not fsync writes (tests, benchmarks)\n"
        "  --quiet              no access log\n"
        "  -h, --help           this help\n");
}

/* "123", "64K", "64M", "1G". */
static int parse_size(const char *s, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || errno || s[0] == '-')
        return -1;
    unsigned shift = 0;
    if (*end == 'k' || *end == 'K')
        shift = 10;
    else if (*end == 'm' || *end == 'M')
        shift = 20;
    else if (*end == 'g' || *end == 'G')
        shift = 30;
    if (shift)
        end++;
    if (*end || v == 0 || v > (~0ull >> shift))
        return -1;
    *out = v << shift;
    return 0;
}

void srv_refresh_now(srv_t *s)
{
    static _Thread_local int last_rc;
    int rc = hdb_matcher_refresh(s->matcher, NULL);
    if (rc == CORDON_OK) {
        atomic_store(&s->last_refresh, (long long)srv_now());
    } else if (rc != last_rc) {
        /* Report a failure once, not five times a second. */
        fprintf(stderr, "cordon serve: index refresh: %s\n",
                cordon_strerror(rc));
    }
    last_rc = rc;
}

int cmd_serve(int argc, char **argv)
{
    enum {
        O_DB = 256,
        O_LISTEN,
        O_THREADS,
        O_MAXBODY,
        O_TIMEOUT,
        O_MAXCONN,
        O_NOAUTH,
        O_NOSYNC,
        O_QUIET
    };
    static const struct option opts[] = {
        {"db", required_argument, NULL, O_DB},
        {"listen", required_argument, NULL, O_LISTEN},
        {"threads", required_argument, NULL, O_THREADS},
        {"max-body", required_argument, NULL, O_MAXBODY},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"max-connections", required_argument, NULL, O_MAXCONN},
        {"no-auth", no_argument, NULL, O_NOAUTH},
        {"no-sync", no_argument, NULL, O_NOSYNC},
        {"quiet", no_argument, NULL, O_QUIET},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    srv_t s;
    memset(&s, 0, sizeof s);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    s.cfg.listen = "127.0.0.1:5000";
    s.cfg.threads = ncpu > 0 ? (unsigned)ncpu : 1;
    s.cfg.max_body = SRV_DEFAULT_MAX_BODY;
    s.cfg.timeout = SRV_DEFAULT_TIMEOUT;
    s.cfg.max_conns = SRV_DEFAULT_MAX_CONNS;
    const char *dbopt = NULL;
    uint64_t v;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case O_DB:
            dbopt = optarg;
            break;
        case O_LISTEN:
            s.cfg.listen = optarg;
            break;
        case O_THREADS:
            if (cli_parse_u64(optarg, &v) || v < 1 || v > 256) {
                cli_error("serve", "bad --threads '%s' (1..256)", optarg);
                return CLI_ERR;
            }
            s.cfg.threads = (unsigned)v;
            break;
        case O_MAXBODY:
            if (parse_size(optarg, &s.cfg.max_body)) {
                cli_error("serve", "bad --max-body '%s'", optarg);
                return CLI_ERR;
            }
            break;
        case O_TIMEOUT:
            if (cli_parse_u64(optarg, &v) || v < 1 || v > 86400) {
                cli_error("serve", "bad --timeout '%s' (1..86400)", optarg);
                return CLI_ERR;
            }
            s.cfg.timeout = (unsigned)v;
            break;
        case O_MAXCONN:
            if (cli_parse_u64(optarg, &v) || v < 1 || v > 65536) {
                cli_error("serve", "bad --max-connections '%s' (1..65536)",
                          optarg);
                return CLI_ERR;
            }
            s.cfg.max_conns = (unsigned)v;
            break;
        case O_NOAUTH:
            s.cfg.no_auth = 1;
            break;
        case O_NOSYNC:
            s.cfg.nosync = 1;
            break;
        case O_QUIET:
            s.cfg.quiet = 1;
            break;
        case 'h':
            usage(stdout);
            return CLI_OK;
        default:
            usage(stderr);
            return CLI_ERR;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return CLI_ERR;
    }
    /* Never more connections than threads can hold (MHD splits the limit
     * across its pool). */
    if (s.cfg.max_conns < s.cfg.threads)
        s.cfg.max_conns = s.cfg.threads;
    s.cfg.db_path = cli_db_path(dbopt);

    /* Signals are taken synchronously by this thread; every thread started
     * from here on inherits the blocked mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    int status = CLI_ERR;
    hdb_opts_t hopts;
    memset(&hopts, 0, sizeof hopts);
    hopts.nosync = s.cfg.nosync;
    /* Pool threads each hold a read transaction at most, plus the
     * refresher and writers. */
    hopts.max_readers = s.cfg.threads + 64;
    int rc = hdb_open(s.cfg.db_path, &hopts, &s.db);
    if (rc != CORDON_OK) {
        cli_error(s.cfg.db_path, "%s", cordon_strerror(rc));
        return CLI_ERR;
    }
    double t0 = srv_mono();
    if ((rc = hdb_matcher_open(s.db, &s.matcher)) != CORDON_OK) {
        cli_error(s.cfg.db_path, "loading the index: %s", cordon_strerror(rc));
        goto done;
    }
    size_t nroutes;
    srv_routes(&nroutes);
    if (srv_metrics_create(nroutes + 1, &s.metrics) != CORDON_OK) {
        cli_error("serve", "out of memory");
        goto done;
    }
    s.started = srv_now();
    atomic_store(&s.last_refresh, (long long)s.started);
    if (srv_http_start(&s) != 0)
        goto done;
    fprintf(stderr,
            "cordon serve: listening on http://%s (%u threads, %zu hashes "
            "indexed in %.2fs, database %s)\n",
            s.bound, s.cfg.threads, hdb_matcher_size(s.matcher),
            srv_mono() - t0, s.cfg.db_path);
    if (s.cfg.no_auth)
        fprintf(stderr, "cordon serve: WARNING: --no-auth: every client is "
                        "admin; use this for local development only\n");

    /* This thread is the index refresher: other processes' writes become
     * visible within SRV_REFRESH_MS. */
    int sig;
    for (;;) {
        struct timespec ts = {0, SRV_REFRESH_MS * 1000000L};
        siginfo_t info;
        sig = sigtimedwait(&set, &info, &ts);
        if (sig > 0)
            break;
        srv_refresh_now(&s);
    }
    fprintf(stderr, "cordon serve: %s: finishing in-flight requests\n",
            strsignal(sig));
    srv_http_stop(&s, SRV_DRAIN_SECONDS);
    status = CLI_OK;
done:
    srv_http_stop(&s, 0);
    hdb_matcher_close(s.matcher);
    srv_metrics_free(s.metrics);
    hdb_close(s.db);
    if (status == CLI_OK)
        fprintf(stderr, "cordon serve: stopped\n");
    return status;
}
