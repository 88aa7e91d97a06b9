/*
 * Two real servers syncing: server A holds a bank, `cordon sync` replicates
 * A's feed into B's database while B is serving, an upload matches on B,
 * a delete on A reaches B at the next sync, and B stops matching it.
 * Everything runs on 127.0.0.1 and is stopped at the end.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "util.h"

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Starts `cordon serve` in the background; returns its pid or -1. */
static pid_t start_server(const char *db, int port, const char *log)
{
    char *out = NULL;
    int rc = tu_run(&out,
                    "'%s' serve --db '%s' --listen 127.0.0.1:%d --threads 2 "
                    "--no-sync >'%s' 2>&1 & echo $!",
                    tu_cordon_bin(), db, port, log);
    pid_t pid = (rc == 0 && out) ? (pid_t)atoi(out) : -1;
    free(out);
    return pid > 0 ? pid : -1;
}

/* HTTP status of a request made with the curl command line. */
static int http(const char *token, const char *extra, int port,
                const char *path, char **body)
{
    char *out = NULL;
    int rc = tu_run(&out,
                    "curl -s -m 10 -o '%s/body' -w '%%{http_code}' -H "
                    "'Authorization: Bearer %s' %s 'http://127.0.0.1:%d%s'",
                    tu_tmpdir(), token, extra, port, path);
    int code = (rc == 0 && out) ? atoi(out) : -1;
    free(out);
    if (body) {
        size_t n;
        char *b = (char *)tu_read_file(tu_path("%s/body", tu_tmpdir()), &n);
        if (b) {
            b = realloc(b, n + 1);
            b[n] = 0;
        }
        *body = b;
    }
    return code;
}

static int wait_ready(const char *token, int port)
{
    for (int i = 0; i < 100; i++) {
        if (http(token, "", port, "/status", NULL) == 200)
            return 1;
        usleep(100000);
    }
    return 0;
}

/* Polls B's verdict for the upload until it equals want (the server
 * refreshes its index from the database every 200 ms). */
static int verdict_becomes(const char *token, int port, const char *img,
                           const char *want)
{
    for (int i = 0; i < 40; i++) {
        char *body = NULL;
        int code = http(token,
                        tu_path("-H 'Content-Type: image/jpeg' "
                                "--data-binary '@%s'",
                                img),
                        port, "/v1/check", &body);
        int ok = code == 200 && body &&
                 strstr(body, tu_path("\"verdict\":\"%s\"", want)) != NULL;
        int ok2 = code == 200 && body &&
                  strstr(body, tu_path("\"verdict\": \"%s\"", want)) != NULL;
        free(body);
        if (ok || ok2)
            return 1;
        usleep(100000);
    }
    return 0;
}

static char *first_line(const char *cmd)
{
    char *out = NULL;
    if (tu_run(&out, "%s", cmd) != 0) {
        free(out);
        return NULL;
    }
    char *nl = out ? strchr(out, '\n') : NULL;
    if (nl)
        *nl = 0;
    return out;
}

TEST(two_servers_sync_with_delete)
{
    const char *dir = tu_tmpdir(), *bin = tu_cordon_bin();
    const char *dba = tu_path("%s/a.db", dir), *dbb = tu_path("%s/b.db", dir);
    const char *known = tu_path("%s/pdq/images/bridge-mods_aaa-orig.jpg",
                                tu_vectors());
    const char *upload = tu_path("%s/pdq/images/bridge-mods_blur-a-lot.jpg",
                                 tu_vectors());
    char *dba_s = strdup(dba), *dbb_s = strdup(dbb), *known_s = strdup(known),
         *upload_s = strdup(upload);
    REQUIRE(tu_run(NULL, "'%s' --db '%s' bank create KNOWN 2>/dev/null", bin,
                   dba_s) == 0);
    REQUIRE(tu_run(NULL, "'%s' --db '%s' add --bank KNOWN '%s' >/dev/null 2>&1",
                   bin, dba_s, known_s) == 0);
    char *ta = first_line(tu_path("'%s' --db '%s' key create --role admin "
                                  "--name replica-b 2>/dev/null",
                                  bin, dba_s));
    char *tb = first_line(tu_path("'%s' --db '%s' key create --role matcher "
                                  "--name uploads 2>/dev/null",
                                  bin, dbb_s));
    REQUIRE(ta && tb && strncmp(ta, "cordon_", 7) == 0);
    int pa = free_port(), pb = free_port();
    REQUIRE(pa > 0 && pb > 0 && pa != pb);
    pid_t sa = start_server(dba_s, pa, tu_path("%s/a.log", dir));
    pid_t sb = start_server(dbb_s, pb, tu_path("%s/b.log", dir));
    REQUIRE(sa > 0 && sb > 0);
    CHECK(wait_ready(ta, pa));
    CHECK(wait_ready(tb, pb));

    /* Before any sync, B knows nothing. */
    CHECK(verdict_becomes(tb, pb, upload_s, "no_match"));
    /* A -> B. */
    const char *sync = tu_path("'%s' sync --from http://127.0.0.1:%d --key "
                               "'%s' --db '%s' >/dev/null 2>&1",
                               bin, pa, ta, dbb_s);
    char *sync_s = strdup(sync);
    CHECK_EQ(tu_run(NULL, "%s", sync_s), 0);
    CHECK(verdict_becomes(tb, pb, upload_s, "match"));
    /* Delete on A through its API; the next sync carries it to B. */
    CHECK_EQ(http(ta, "-X DELETE", pa, "/c/bank/KNOWN/content/1", NULL), 200);
    CHECK_EQ(tu_run(NULL, "%s", sync_s), 0);
    CHECK(verdict_becomes(tb, pb, upload_s, "no_match"));
    /* And A itself no longer matches either. */
    CHECK(verdict_becomes(ta, pa, upload_s, "no_match"));

    kill(sa, SIGTERM);
    kill(sb, SIGTERM);
    int st = 0;
    for (int i = 0; i < 100 && (kill(sa, 0) == 0 || kill(sb, 0) == 0); i++)
        usleep(100000);
    CHECK(kill(sa, 0) != 0 && kill(sb, 0) != 0);
    (void)st;
    free(sync_s);
    free(ta);
    free(tb);
    free(dba_s);
    free(dbb_s);
    free(known_s);
    free(upload_s);
}

int main(int argc, char **argv)
{
    (void)argc;
    th_init(argv[0]);
    RUN(two_servers_sync_with_delete);
    return TH_END();
}
