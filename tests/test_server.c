/*
 * `cordon serve` end to end: the real binary on 127.0.0.1 and a free port,
 * talked to with libcurl. Keys are put in the database directly before the
 * server starts. Covers every endpoint, every role and auth failure, each
 * class of bad input, concurrent checks while a curator writes, writes by
 * another process becoming live, connection limits and idle timeouts, and
 * a clean SIGTERM stop that finishes the request in flight.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cordon.h"
#include "harness.h"
#include "hdb.h"
#include "util.h"

extern char **environ;

#define T_MATCHER "test-matcher-token-0123456789"
#define T_CURATOR "test-curator-token-0123456789"
#define T_ADMIN "test-admin-token-0123456789"
#define T_METRICS "test-metrics-token-0123456789"
#define T_REVOKED "test-revoked-token-0123456789"
#define T_ODDROLE "test-oddrole-token-0123456789"
#define T_LATEREVOKE "test-laterevoke-token-0123456789"

static hdb_t *g_db;
static char g_dbpath[1024], g_log[1024];
static int g_port;
static pid_t g_pid;
static uint64_t g_laterevoke_id;
static char g_api_token[128]; /* a token made through POST /v1/keys */

/* ---- process control ---------------------------------------------------- */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* Starts `cordon serve` with extra arguments (NULL-terminated). */
static pid_t spawn_server(const char *db, int port, const char *log,
                          const char *const *extra)
{
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    const char *argv[32] = {tu_cordon_bin(), "serve", "--db",     db,
                            "--listen",      listen,  "--no-sync"};
    int n = 7;
    for (; extra && *extra && n < 30; extra++)
        argv[n++] = *extra;
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_adddup2(&fa, 2, 1);
    pid_t pid = -1;
    if (posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ) !=
        0)
        pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

/* Waits for the child to exit; its exit status, or -1 (killed, timeout). */
static int wait_exit(pid_t pid, double seconds)
{
    for (int i = 0; i < (int)(seconds * 100); i++) {
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

/* ---- HTTP client -------------------------------------------------------- */

typedef struct {
    long status;
    char *body;
    size_t len;
    json_t *json;
} resp_t;

static void resp_free(resp_t *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

static size_t on_data(char *p, size_t sz, size_t n, void *ctx)
{
    resp_t *r = ctx;
    char *b = realloc(r->body, r->len + sz * n + 1);
    if (!b)
        return 0;
    memcpy(b + r->len, p, sz * n);
    r->body = b;
    r->len += sz * n;
    r->body[r->len] = 0;
    return sz * n;
}

typedef struct {
    const char *name, *filename;
    const void *data;
    size_t len; /* 0 with data: a C string */
} part_t;

typedef struct {
    const char *token;
    const char *ctype; /* raw body Content-Type */
    const void *body;  /* raw body */
    size_t len;
    const part_t *parts; /* multipart parts, NULL-name terminated */
    int chunked;         /* send the raw body without Content-Length */
    int expect;          /* send "Expect: 100-continue" */
    int port;            /* 0: g_port */
} req_opts_t;

static long http_ex(resp_t *out, const char *method, const char *path,
                    const req_opts_t *o)
{
    memset(out, 0, sizeof *out);
    CURL *c = curl_easy_init();
    if (!c)
        return -1;
    char url[2048], auth[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s",
             o && o->port ? o->port : g_port, path);
    struct curl_slist *h = NULL;
    curl_mime *mime = NULL;
    h = curl_slist_append(h,
                          o && o->expect ? "Expect: 100-continue" : "Expect:");
    if (o && o->token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", o->token);
        h = curl_slist_append(h, auth);
    }
    if (o && o->ctype) {
        char ct[256];
        snprintf(ct, sizeof ct, "Content-Type: %s", o->ctype);
        h = curl_slist_append(h, ct);
    }
    if (o && o->chunked)
        h = curl_slist_append(h, "Transfer-Encoding: chunked");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (!strcmp(method, "HEAD"))
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (o && o->parts) {
        mime = curl_mime_init(c);
        for (const part_t *p = o->parts; p->name; p++) {
            curl_mimepart *mp = curl_mime_addpart(mime);
            curl_mime_name(mp, p->name);
            curl_mime_data(mp, p->data,
                           p->len ? p->len : strlen((const char *)p->data));
            if (p->filename)
                curl_mime_filename(mp, p->filename);
        }
        curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
    } else if (o && o->body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, o->body);
        if (!o->chunked)
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                             (curl_off_t)o->len);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    else
        out->status = 0;
    if (out->body)
        out->json = json_loadb(out->body, out->len, JSON_DECODE_ANY, NULL);
    curl_mime_free(mime);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return out->status;
}

static long get(resp_t *out, const char *path, const char *token)
{
    req_opts_t o = {.token = token};
    return http_ex(out, "GET", path, &o);
}

static long send_json(resp_t *out, const char *method, const char *path,
                      const char *token, const char *json)
{
    req_opts_t o = {.token = token,
                    .ctype = "application/json",
                    .body = json,
                    .len = strlen(json)};
    return http_ex(out, method, path, &o);
}

/* POST one file in a multipart field (plus optional text fields). */
static long post_file(resp_t *out, const char *path, const char *token,
                      const char *field, const uint8_t *data, size_t len,
                      const part_t *more)
{
    part_t parts[8] = {{field, "upload.bin", data, len}};
    int n = 1;
    for (; more && more->name && n < 7; more++)
        parts[n++] = *more;
    parts[n].name = NULL;
    req_opts_t o = {.token = token, .parts = parts};
    return http_ex(out, "POST", path, &o);
}

static long post_raw(resp_t *out, const char *path, const char *token,
                     const char *ctype, const uint8_t *data, size_t len)
{
    req_opts_t o = {.token = token, .ctype = ctype, .body = data, .len = len};
    return http_ex(out, "POST", path, &o);
}

static const char *jstr(json_t *j, const char *key)
{
    return json_string_value(json_object_get(j, key));
}

static long long jint(json_t *j, const char *key)
{
    return json_integer_value(json_object_get(j, key));
}

/* ---- fixtures ----------------------------------------------------------- */

static uint8_t *img(const char *name, size_t *len)
{
    uint8_t *p =
        tu_read_file(tu_path("%s/pdq/images/%s", tu_vectors(), name), len);
    if (!p) {
        fprintf(stderr, "missing vector %s\n", name);
        exit(2);
    }
    return p;
}

static void hex_of(const cordon_hash256_t *h, char out[65])
{
    cordon_hash_to_hex(h, out);
}

static void random_pdq(char out[65], unsigned *seed)
{
    cordon_hash256_t h;
    for (int i = 0; i < 4; i++)
        h.w[i] = ((uint64_t)rand_r(seed) << 40) ^
                 ((uint64_t)rand_r(seed) << 20) ^ (uint64_t)rand_r(seed);
    hex_of(&h, out);
}

static void add_key(const char *name, const char *role, const char *token,
                    uint64_t *id)
{
    uint8_t d[32];
    cordon_digest((const uint8_t *)token, strlen(token), NULL, d);
    if (hdb_apikey_add(g_db, name, role, d, id) != CORDON_OK) {
        fprintf(stderr, "hdb_apikey_add %s failed\n", name);
        exit(2);
    }
}

static int server_ready(int port, pid_t pid)
{
    for (int i = 0; i < 3000; i++) {
        resp_t r;
        req_opts_t o = {.token = T_MATCHER, .port = port};
        long st = http_ex(&r, "GET", "/status", &o);
        resp_free(&r);
        if (st > 0)
            return 1;
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return 0;
        usleep(10000);
    }
    return 0;
}

/* ---- tests -------------------------------------------------------------- */

TEST(auth_and_roles)
{
    resp_t r;
    CHECK_EQ(get(&r, "/status", NULL), 401);
    CHECK(r.json && jstr(r.json, "message"));
    resp_free(&r);
    CHECK_EQ(get(&r, "/status", "not-a-key"), 401);
    resp_free(&r);
    CHECK_EQ(get(&r, "/status", T_REVOKED), 401);
    resp_free(&r);
    CHECK_EQ(get(&r, "/status", T_ODDROLE), 403);
    resp_free(&r);
    /* Not a Bearer token at all. */
    CURL *c = curl_easy_init();
    REQUIRE(c);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/status", g_port);
    struct curl_slist *h =
        curl_slist_append(NULL, "Authorization: Basic dXNlcjpwYXNz");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    memset(&r, 0, sizeof r);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    long st = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    CHECK_EQ(st, 401);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    resp_free(&r);

    /* matcher */
    CHECK_EQ(get(&r, "/status", T_MATCHER), 200);
    CHECK(r.body && !strcmp(r.body, "I-AM-ALIVE"));
    resp_free(&r);
    CHECK_EQ(send_json(&r, "POST", "/c/banks", T_MATCHER,
                       "{\"name\":\"NOPE_BANK\"}"),
             403);
    resp_free(&r);
    CHECK_EQ(get(&r, "/v1/feed", T_MATCHER), 403);
    resp_free(&r);
    CHECK_EQ(get(&r, "/v1/keys", T_MATCHER), 403);
    resp_free(&r);
    CHECK_EQ(get(&r, "/metrics", T_MATCHER), 403);
    resp_free(&r);
    CHECK_EQ(get(&r, "/c/banks", T_MATCHER), 200);
    resp_free(&r);
    /* metrics */
    CHECK_EQ(get(&r, "/metrics", T_METRICS), 200);
    resp_free(&r);
    CHECK_EQ(get(&r, "/status", T_METRICS), 403);
    resp_free(&r);
    /* curator */
    CHECK_EQ(get(&r, "/v1/feed", T_CURATOR), 403);
    resp_free(&r);
    CHECK_EQ(send_json(&r, "DELETE", "/c/bank/NOPE_BANK", T_CURATOR, "{}"),
             200);
    resp_free(&r);
    /* admin may do everything */
    CHECK_EQ(get(&r, "/v1/feed", T_ADMIN), 200);
    resp_free(&r);
    CHECK_EQ(get(&r, "/metrics", T_ADMIN), 200);
    resp_free(&r);
    CHECK_EQ(get(&r, "/status", T_ADMIN), 200);
    resp_free(&r);

    /* A key revoked by another process stops working at once. */
    CHECK_EQ(get(&r, "/status", T_LATEREVOKE), 200);
    resp_free(&r);
    REQUIRE(hdb_apikey_revoke(g_db, g_laterevoke_id) == CORDON_OK);
    CHECK_EQ(get(&r, "/status", T_LATEREVOKE), 401);
    resp_free(&r);
}

TEST(hash_endpoint)
{
    size_t len;
    uint8_t *p = img("bridge-mods_aaa-orig.jpg", &len);
    cordon_image_hashes_t want;
    REQUIRE(cordon_hash_image(p, len, NULL, &want) == CORDON_OK);
    char pdq[65], md5[33], sha[65];
    hex_of(&want.pdq, pdq);
    cordon_hex_encode(want.md5, 16, md5);
    cordon_hex_encode(want.sha256, 32, sha);

    resp_t r;
    CHECK_EQ(post_file(&r, "/h/hash", T_MATCHER, "photo", p, len, NULL), 200);
    CHECK_STREQ(jstr(r.json, "pdq"), pdq);
    CHECK_STREQ(jstr(r.json, "md5"), md5);
    CHECK_STREQ(jstr(r.json, "sha256"), sha);
    resp_free(&r);
    /* The raw body works as well. */
    CHECK_EQ(post_raw(&r, "/h/hash", T_MATCHER, "image/jpeg", p, len), 200);
    CHECK_STREQ(jstr(r.json, "pdq"), pdq);
    resp_free(&r);
    CHECK_EQ(
        post_file(&r, "/h/hash?types=pdq", T_MATCHER, "photo", p, len, NULL),
        200);
    CHECK_STREQ(jstr(r.json, "pdq"), pdq);
    CHECK(json_object_get(r.json, "md5") == NULL);
    resp_free(&r);
    CHECK_EQ(
        post_file(&r, "/h/hash?types=tmk", T_MATCHER, "photo", p, len, NULL),
        400);
    resp_free(&r);
    /* HMA's fetch-from-URL is never done. */
    CHECK_EQ(get(&r, "/h/hash?url=http%3A%2F%2Fexample.com%2Fa.jpg", T_MATCHER),
             501);
    CHECK(jstr(r.json, "message") != NULL);
    resp_free(&r);
    CHECK_EQ(get(&r, "/h/hash", T_MATCHER), 400);
    resp_free(&r);
    free(p);
}

TEST(bad_input)
{
    resp_t r;
    size_t len;
    uint8_t *p = img("bridge-mods_aaa-orig.jpg", &len);
    /* Malformed media: random bytes, and a JPEG cut in half. */
    uint8_t junk[4096];
    unsigned seed = 7;
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)rand_r(&seed);
    CHECK_EQ(
        post_file(&r, "/v1/check", T_MATCHER, "photo", junk, sizeof junk, NULL),
        400);
    CHECK(jstr(r.json, "message") && jstr(r.json, "details"));
    resp_free(&r);
    CHECK_EQ(post_raw(&r, "/v1/check", T_MATCHER, "image/jpeg", p, len / 2),
             400);
    resp_free(&r);
    CHECK_EQ(post_raw(&r, "/h/hash", T_MATCHER, "application/octet-stream",
                      junk, 10),
             400);
    resp_free(&r);
    CHECK_EQ(
        post_raw(&r, "/v1/check", T_MATCHER, "application/octet-stream", p, 0),
        400);
    resp_free(&r);
    CHECK_EQ(post_raw(&r, "/v1/check", T_MATCHER, "text/plain",
                      (const uint8_t *)"hi", 2),
             415);
    resp_free(&r);
    /* No upload field, two uploads. */
    part_t note[] = {{"note", NULL, "x", 0}, {NULL, NULL, NULL, 0}};
    CHECK_EQ(post_file(&r, "/h/hash", T_MATCHER, "picture", p, len, note), 400);
    resp_free(&r);
    part_t second[] = {{"photo", "b.jpg", p, len}, {NULL, NULL, NULL, 0}};
    CHECK_EQ(post_file(&r, "/h/hash", T_MATCHER, "photo", p, len, second), 400);
    resp_free(&r);
    /* Bad hashes and parameters. */
    CHECK_EQ(get(&r, "/m/raw_lookup?signal_type=pdq&signal=zz", T_MATCHER),
             400);
    CHECK(jstr(r.json, "message") != NULL);
    resp_free(&r);
    char q[256];
    snprintf(q, sizeof q, "/m/raw_lookup?signal_type=pdq&signal=%063d", 0);
    CHECK_EQ(get(&r, q, T_MATCHER), 400);
    resp_free(&r);
    snprintf(q, sizeof q, "/m/raw_lookup?signal_type=pdq&signal=%063dg", 0);
    CHECK_EQ(get(&r, q, T_MATCHER), 400);
    resp_free(&r);
    CHECK_EQ(get(&r, "/m/raw_lookup?signal_type=md5&signal=abc", T_MATCHER),
             400);
    resp_free(&r);
    snprintf(q, sizeof q, "/m/raw_lookup?signal_type=nope&signal=%064d", 0);
    CHECK_EQ(get(&r, q, T_MATCHER), 400);
    resp_free(&r);
    CHECK_EQ(get(&r, "/m/raw_lookup?signal_type=pdq", T_MATCHER), 400);
    resp_free(&r);
    snprintf(q, sizeof q,
             "/m/raw_lookup?signal_type=pdq&signal=%064d&include_distance="
             "maybe",
             0);
    CHECK_EQ(get(&r, q, T_MATCHER), 400);
    resp_free(&r);
    CHECK_EQ(post_raw(&r, "/v1/check?threshold=abc", T_MATCHER, "image/jpeg", p,
                      len),
             400);
    resp_free(&r);
    CHECK_EQ(post_raw(&r, "/v1/check?threshold=300", T_MATCHER, "image/jpeg", p,
                      len),
             400);
    resp_free(&r);
    CHECK_EQ(post_raw(&r, "/v1/check?dihedral=perhaps", T_MATCHER, "image/jpeg",
                      p, len),
             400);
    resp_free(&r);
    CHECK_EQ(get(&r, "/v1/feed?since=-1", T_ADMIN), 400);
    resp_free(&r);
    CHECK_EQ(get(&r, "/v1/feed?limit=100000", T_ADMIN), 400);
    resp_free(&r);
    CHECK_EQ(send_json(&r, "POST", "/m/compare", T_MATCHER, "{not json"), 400);
    resp_free(&r);
    CHECK_EQ(send_json(&r, "POST", "/m/compare", T_MATCHER, "[1,2]"), 400);
    resp_free(&r);
    CHECK_EQ(
        send_json(&r, "POST", "/m/compare", T_MATCHER, "{\"pdq\":[\"00\"]}"),
        400);
    resp_free(&r);
    CHECK_EQ(send_json(&r, "POST", "/c/banks", T_CURATOR, "{}"), 400);
    resp_free(&r);
    CHECK_EQ(send_json(&r, "POST", "/c/banks", T_CURATOR,
                       "{\"name\":\"bad\\nname\"}"),
             400);
    resp_free(&r);
    CHECK_EQ(get(&r, "/c/bank/NO_SUCH_BANK/content/abc", T_MATCHER), 400);
    resp_free(&r);
    CHECK_EQ(get(&r, "/c/bank/NO_SUCH_BANK/content/1", T_MATCHER), 404);
    resp_free(&r);
    /* Unknown paths and methods. */
    CHECK_EQ(get(&r, "/no/such/path", T_MATCHER), 404);
    CHECK(r.json && jstr(r.json, "message"));
    resp_free(&r);
    CHECK_EQ(get(&r, "/", T_MATCHER), 404);
    resp_free(&r);
    CHECK_EQ(send_json(&r, "DELETE", "/status", T_ADMIN, "{}"), 405);
    resp_free(&r);
    /* HMA endpoints Cordon does not serve. */
    CHECK_EQ(get(&r, "/c/exchanges", T_MATCHER), 501);
    CHECK(jstr(r.json, "message") != NULL);
    resp_free(&r);
    CHECK_EQ(send_json(&r, "PUT", "/c/signal_type/pdq", T_CURATOR,
                       "{\"enabled_ratio\":1}"),
             501);
    resp_free(&r);
    /* Malformed video. */
    CHECK_EQ(
        post_file(&r, "/v1/check", T_MATCHER, "video", junk, sizeof junk, NULL),
        400);
    CHECK(jstr(r.json, "message") != NULL);
    resp_free(&r);
    CHECK_EQ(post_raw(&r, "/h/hash", T_MATCHER, "video/mp4", junk, 100), 400);
    resp_free(&r);
    {
        size_t vlen;
        uint8_t *vid = tu_read_file(
            tu_path("%s/vpdq/videos/doorknob-hd-no-bar.mp4", tu_vectors()),
            &vlen);
        REQUIRE(vid);
        /* A cut-off video hashes what decoded, and says so. */
        CHECK_EQ(
            post_raw(&r, "/v1/check", T_MATCHER, "video/mp4", vid, vlen / 3),
            200);
        CHECK_STREQ(
            json_string_value(json_array_get(
                json_object_get(json_object_get(r.json, "hashes"), "warnings"),
                0)),
            "truncated");
        resp_free(&r);
        free(vid);
    }
    /* Too large: with Content-Length, chunked, and multipart. */
    uint8_t *big = calloc(1, 1100000);
    REQUIRE(big);
    CHECK_EQ(post_raw(&r, "/v1/check", T_MATCHER, "image/jpeg", big, 1100000),
             413);
    resp_free(&r);
    req_opts_t o = {.token = T_MATCHER,
                    .ctype = "image/jpeg",
                    .body = big,
                    .len = 1100000,
                    .chunked = 1};
    /* curl needs a length for POSTFIELDS; send it through a read callback
     * instead by giving POSTFIELDSIZE -1: simplest is a string body. */
    memset(big, 'a', 1100000 - 1);
    big[1100000 - 1] = 0;
    CHECK_EQ(http_ex(&r, "POST", "/v1/check", &o), 413);
    resp_free(&r);
    CHECK_EQ(post_file(&r, "/v1/check", T_MATCHER, "photo", big, 1100000, NULL),
             413);
    resp_free(&r);
    free(big);
    /* Broken forms: a body that does not follow its boundary, no boundary
     * at all, too many fields. */
    const char *junkform = "--xyz\r\nContent-Disposition: form-data; "
                           "name=\"photo\"\r\n\r\nabc";
    req_opts_t fo = {.token = T_MATCHER,
                     .ctype = "multipart/form-data; boundary=xyz",
                     .body = junkform,
                     .len = strlen(junkform)};
    CHECK_EQ(http_ex(&r, "POST", "/v1/check", &fo), 400);
    resp_free(&r);
    fo.ctype = "multipart/form-data";
    CHECK_EQ(http_ex(&r, "POST", "/v1/check", &fo), 400);
    resp_free(&r);
    part_t many[20];
    many[0] = (part_t){"photo", "a.jpg", p, len};
    for (int i = 1; i < 19; i++)
        many[i] = (part_t){"f", NULL, "x", 0};
    many[19].name = NULL;
    req_opts_t mo = {.token = T_MATCHER, .parts = many};
    CHECK_EQ(http_ex(&r, "POST", "/v1/check", &mo), 400);
    resp_free(&r);
    /* Not HTTP at all. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)g_port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
        CHECK(write(fd, junk, 2048) == 2048);
        char buf[512];
        struct timeval tv = {10, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ssize_t n = read(fd, buf, sizeof buf - 1);
        /* Either an HTTP error or a closed connection. */
        CHECK(n <= 0 || !strncmp(buf, "HTTP/1.1 4", 10));
    }
    close(fd);
    /* And the server is still fine. */
    CHECK_EQ(get(&r, "/status", T_MATCHER), 200);
    resp_free(&r);
    free(p);
}

TEST(curation_flow)
{
    resp_t r;
    CHECK_EQ(send_json(&r, "POST", "/c/banks", T_CURATOR,
                       "{\"name\":\"FLOW_BANK\",\"default_action\":\"block\","
                       "\"labels\":[\"entity:test\"]}"),
             201);
    CHECK_STREQ(jstr(r.json, "name"), "FLOW_BANK");
    CHECK(json_real_value(json_object_get(r.json, "matching_enabled_ratio")) ==
          1.0);
    resp_free(&r);
    CHECK_EQ(send_json(&r, "POST", "/c/banks", T_CURATOR,
                       "{\"name\":\"FLOW_BANK\"}"),
             403);
    resp_free(&r);
    CHECK_EQ(get(&r, "/c/banks", T_MATCHER), 200);
    int seen = 0;
    for (size_t i = 0; i < json_array_size(r.json); i++)
        seen +=
            !strcmp(jstr(json_array_get(r.json, i), "name") ?: "", "FLOW_BANK");
    CHECK_EQ(seen, 1);
    resp_free(&r);
    CHECK_EQ(get(&r, "/c/bank/FLOW_BANK", T_MATCHER), 200);
    CHECK_STREQ(jstr(r.json, "default_action"), "block");
    resp_free(&r);
    CHECK_EQ(get(&r, "/c/bank/MISSING_BANK", T_MATCHER), 404);
    resp_free(&r);

    /* Upload with note, metadata and labels. */
    size_t len;
    uint8_t *p = img("bridge-mods_square-512x512.jpg", &len);
    part_t more[] = {{"note", NULL, "seen on a forum", 0},
                     {"metadata", NULL, "{\"content_id\":\"abc-1\"}", 0},
                     {"labels", NULL, "type:image,entity:test", 0},
                     {NULL, NULL, NULL, 0}};
    CHECK_EQ(post_file(&r, "/c/bank/FLOW_BANK/content", T_CURATOR, "photo", p,
                       len, more),
             200);
    long long id = jint(r.json, "id");
    CHECK_GT(id, 0);
    json_t *sig = json_object_get(r.json, "signals");
    CHECK(jstr(sig, "pdq") && strlen(jstr(sig, "pdq")) == 64);
    char pdq[65] = "";
    snprintf(pdq, sizeof pdq, "%s", jstr(sig, "pdq") ?: "");
    resp_free(&r);
    /* The same file again is a duplicate of the same item. */
    CHECK_EQ(post_file(&r, "/c/bank/FLOW_BANK/content", T_CURATOR, "photo", p,
                       len, NULL),
             200);
    CHECK_EQ(jint(r.json, "id"), id);
    CHECK(json_is_true(json_object_get(r.json, "duplicate")));
    resp_free(&r);
    /* Text that is not UTF-8. */
    part_t badnote[] = {{"note", NULL, "caf\xe9", 0}, {NULL, NULL, NULL, 0}};
    CHECK_EQ(post_file(&r, "/c/bank/FLOW_BANK/content", T_CURATOR, "photo", p,
                       len, badnote),
             400);
    resp_free(&r);
    /* Bad metadata. */
    part_t badmeta[] = {{"metadata", NULL, "{\"invalid_metadata\":5}", 0},
                        {NULL, NULL, NULL, 0}};
    CHECK_EQ(post_file(&r, "/c/bank/FLOW_BANK/content", T_CURATOR, "photo", p,
                       len, badmeta),
             400);
    resp_free(&r);
    CHECK_EQ(post_file(&r, "/c/bank/MISSING_BANK/content", T_CURATOR, "photo",
                       p, len, NULL),
             404);
    resp_free(&r);
    CHECK_EQ(post_file(&r, "/c/bank/FLOW_BANK/content", T_MATCHER, "photo", p,
                       len, NULL),
             403);
    resp_free(&r);

    char path[256];
    snprintf(path, sizeof path,
             "/c/bank/FLOW_BANK/content/%lld?include_signals=true", id);
    CHECK_EQ(get(&r, path, T_MATCHER), 200);
    CHECK_EQ(jint(r.json, "id"), id);
    CHECK_STREQ(jstr(r.json, "note"), "seen on a forum");
    CHECK_EQ(jint(r.json, "disable_until_ts"), 0);
    CHECK_STREQ(jstr(json_object_get(r.json, "metadata"), "content_id"),
                "abc-1");
    CHECK_STREQ(jstr(json_object_get(r.json, "signals"), "pdq"), pdq);
    CHECK_STREQ(jstr(json_object_get(r.json, "bank"), "name"), "FLOW_BANK");
    CHECK_EQ(json_array_size(json_object_get(r.json, "labels")), 2);
    resp_free(&r);
    snprintf(path, sizeof path,
             "/c/bank/FLOW_BANK/content/%lld?signal_type=md5", id);
    CHECK_EQ(get(&r, path, T_MATCHER), 200);
    CHECK(jstr(json_object_get(r.json, "signals"), "pdq") == NULL);
    CHECK(jstr(json_object_get(r.json, "signals"), "md5") != NULL);
    resp_free(&r);
    snprintf(path, sizeof path,
             "/c/bank/FLOW_BANK/content/%lld?signal_type=invalid", id);
    CHECK_EQ(get(&r, path, T_MATCHER), 400);
    resp_free(&r);

    /* Lookups see it; disabling it hides it from /m/lookup but not from
     * the raw index. */
    char q[256];
    snprintf(q, sizeof q, "/m/lookup?signal_type=pdq&signal=%s", pdq);
    CHECK_EQ(get(&r, q, T_MATCHER), 200);
    json_t *hits = json_object_get(r.json, "FLOW_BANK");
    CHECK_EQ(json_array_size(hits), 1);
    CHECK_EQ(jint(json_array_get(hits, 0), "bank_content_id"), id);
    CHECK_EQ(jint(json_array_get(hits, 0), "distance"), 0);
    resp_free(&r);
    snprintf(path, sizeof path, "/c/bank/FLOW_BANK/content/%lld", id);
    char body[256];
    snprintf(body, sizeof body,
             "{\"disable_until_ts\": %lld, \"note\": \"paused\"}",
             (long long)time(NULL) + 3600);
    CHECK_EQ(send_json(&r, "PUT", path, T_CURATOR, body), 200);
    CHECK_GT(jint(r.json, "disable_until_ts"), (long long)time(NULL));
    CHECK_STREQ(jstr(r.json, "note"), "paused");
    resp_free(&r);
    CHECK_EQ(get(&r, q, T_MATCHER), 200);
    CHECK(json_object_get(r.json, "FLOW_BANK") == NULL);
    resp_free(&r);
    snprintf(q, sizeof q, "/m/raw_lookup?signal_type=pdq&signal=%s", pdq);
    CHECK_EQ(get(&r, q, T_MATCHER), 200);
    CHECK_EQ(json_array_size(json_object_get(r.json, "matches")), 1);
    resp_free(&r);
    CHECK_EQ(send_json(&r, "PUT", path, T_CURATOR,
                       "{\"disable_until_ts\": 9999999999}"),
             400);
    resp_free(&r);
    CHECK_EQ(
        send_json(&r, "PUT", path, T_CURATOR, "{\"disable_until_ts\": -5}"),
        400);
    resp_free(&r);
    CHECK_EQ(
        send_json(&r, "PUT", path, T_CURATOR, "{\"disable_until_ts\": \"0\"}"),
        200);
    resp_free(&r);
    snprintf(q, sizeof q, "/m/lookup?signal_type=pdq&signal=%s", pdq);
    CHECK_EQ(get(&r, q, T_MATCHER), 200);
    CHECK_EQ(json_array_size(json_object_get(r.json, "FLOW_BANK")), 1);
    resp_free(&r);

    /* Disabling the bank hides its content. */
    CHECK_EQ(send_json(&r, "PUT", "/c/bank/FLOW_BANK", T_CURATOR,
                       "{\"enabled\": false}"),
             200);
    CHECK(json_real_value(json_object_get(r.json, "matching_enabled_ratio")) ==
          0.0);
    resp_free(&r);
    CHECK_EQ(get(&r, q, T_MATCHER), 200);
    CHECK(json_object_get(r.json, "FLOW_BANK") == NULL);
    resp_free(&r);
    CHECK_EQ(send_json(&r, "PUT", "/c/bank/FLOW_BANK", T_CURATOR,
                       "{\"enabled_ratio\": 1.0}"),
             200);
    resp_free(&r);
    CHECK_EQ(send_json(&r, "PUT", "/c/bank/FLOW_BANK", T_CURATOR,
                       "{\"enabled_ratio\": 0.5}"),
             400);
    resp_free(&r);
    CHECK_EQ(send_json(&r, "PUT", "/c/bank/FLOW_BANK", T_CURATOR,
                       "{\"name\": \"OTHER_NAME\"}"),
             501);
    resp_free(&r);

    /* Raw signals. */
    char h2[65];
    unsigned seed = 99;
    random_pdq(h2, &seed);
    snprintf(body, sizeof body, "{\"pdq\": \"%s\"}", h2);
    CHECK_EQ(send_json(&r, "POST", "/c/bank/FLOW_BANK/signal", T_CURATOR, body),
             200);
    long long id2 = jint(r.json, "id");
    CHECK_GT(id2, id);
    CHECK_STREQ(jstr(json_object_get(r.json, "signals"), "pdq"), h2);
    resp_free(&r);
    CHECK_EQ(send_json(&r, "POST", "/c/bank/FLOW_BANK/signal", T_CURATOR,
                       "{\"pdq\": \"xyz\"}"),
             400);
    resp_free(&r);
    CHECK_EQ(send_json(&r, "POST", "/c/bank/FLOW_BANK/signal", T_CURATOR, "{}"),
             400);
    resp_free(&r);
    snprintf(q, sizeof q,
             "/m/raw_lookup?signal_type=pdq&signal=%s&include_distance=true&"
             "banks=FLOW_BANK",
             h2);
    CHECK_EQ(get(&r, q, T_MATCHER), 200);
    json_t *m = json_array_get(json_object_get(r.json, "matches"), 0);
    CHECK_EQ(jint(m, "bank_content_id"), id2);
    CHECK(json_is_integer(json_object_get(m, "distance")));
    resp_free(&r);
    snprintf(q, sizeof q,
             "/m/raw_lookup?signal_type=pdq&signal=%s&banks=OTHER_BANK", h2);
    CHECK_EQ(get(&r, q, T_MATCHER), 200);
    CHECK_EQ(json_array_size(json_object_get(r.json, "matches")), 0);
    resp_free(&r);

    /* Delete content, then the bank (which takes the rest with it). */
    CHECK_EQ(send_json(&r, "DELETE", path, T_CURATOR, "{}"), 200);
    CHECK_EQ(jint(r.json, "deleted"), 1);
    resp_free(&r);
    CHECK_EQ(send_json(&r, "DELETE", path, T_CURATOR, "{}"), 200);
    CHECK_EQ(jint(r.json, "deleted"), 0);
    resp_free(&r);
    CHECK_EQ(get(&r, path, T_MATCHER), 404);
    resp_free(&r);
    CHECK_EQ(send_json(&r, "DELETE", "/c/bank/FLOW_BANK", T_CURATOR, "{}"),
             200);
    CHECK_STREQ(jstr(r.json, "message"), "Done");
    resp_free(&r);
    CHECK_EQ(get(&r, "/c/bank/FLOW_BANK", T_MATCHER), 404);
    resp_free(&r);
    snprintf(q, sizeof q, "/m/raw_lookup?signal_type=pdq&signal=%s", h2);
    CHECK_EQ(get(&r, q, T_MATCHER), 200);
    CHECK_EQ(json_array_size(json_object_get(r.json, "matches")), 0);
    resp_free(&r);
    free(p);
}

TEST(check_and_matching)
{
    resp_t r;
    CHECK_EQ(
        send_json(&r, "POST", "/c/banks", T_CURATOR,
                  "{\"name\":\"CHECK_BANK\",\"default_action\":\"block\"}"),
        201);
    resp_free(&r);
    size_t olen, blen;
    uint8_t *orig = img("bridge-mods_aaa-orig.jpg", &olen);
    uint8_t *blur = img("bridge-mods_blur-a-little.jpg", &blen);

    /* Nothing yet. */
    CHECK_EQ(post_raw(&r, "/v1/check", T_MATCHER, "image/jpeg", blur, blen),
             200);
    CHECK_STREQ(jstr(r.json, "verdict"), "no_match");
    CHECK_EQ(json_array_size(json_object_get(r.json, "matches")), 0);
    resp_free(&r);

    /* Added through the API, it matches in the very next request. */
    part_t lab[] = {{"labels", NULL, "entity:bridge", 0},
                    {NULL, NULL, NULL, 0}};
    CHECK_EQ(post_file(&r, "/c/bank/CHECK_BANK/content", T_CURATOR, "photo",
                       orig, olen, lab),
             200);
    long long id = jint(r.json, "id");
    resp_free(&r);
    CHECK_EQ(post_raw(&r, "/v1/check", T_MATCHER, "image/jpeg", blur, blen),
             200);
    CHECK_STREQ(jstr(r.json, "verdict"), "match");
    json_t *ms = json_object_get(r.json, "matches");
    REQUIRE(json_array_size(ms) == 1);
    json_t *m = json_array_get(ms, 0);
    CHECK_STREQ(jstr(m, "bank"), "CHECK_BANK");
    CHECK_EQ(jint(m, "item"), id);
    CHECK_STREQ(jstr(m, "signal"), "pdq");
    CHECK_STREQ(jstr(m, "variant"), "original");
    CHECK_STREQ(jstr(m, "default_action"), "block");
    CHECK_STREQ(
        json_string_value(json_array_get(json_object_get(m, "labels"), 0)),
        "entity:bridge");
    cordon_image_hashes_t ho, hb;
    REQUIRE(cordon_hash_image(orig, olen, NULL, &ho) == CORDON_OK);
    REQUIRE(cordon_hash_image(blur, blen, NULL, &hb) == CORDON_OK);
    int dist = cordon_hash_distance(&ho.pdq, &hb.pdq);
    CHECK_EQ(jint(m, "distance"), dist);
    char hex[65];
    hex_of(&hb.pdq, hex);
    CHECK_STREQ(jstr(json_object_get(r.json, "hashes"), "pdq"), hex);
    CHECK_EQ(jint(json_object_get(r.json, "hashes"), "quality"), hb.quality);
    resp_free(&r);

    /* Multipart, and the "file" field. */
    CHECK_EQ(post_file(&r, "/v1/check", T_MATCHER, "file", blur, blen, NULL),
             200);
    CHECK_STREQ(jstr(r.json, "verdict"), "match");
    resp_free(&r);
    /* A threshold below the distance: no match. */
    REQUIRE(dist > 0);
    CHECK_EQ(post_raw(&r, "/v1/check?threshold=0", T_MATCHER, "image/jpeg",
                      blur, blen),
             200);
    CHECK_STREQ(jstr(r.json, "verdict"), "no_match");
    resp_free(&r);
    /* The exact copy matches on every signal. */
    CHECK_EQ(post_raw(&r, "/v1/check?fast=true", T_MATCHER,
                      "application/octet-stream", orig, olen),
             200);
    ms = json_object_get(r.json, "matches");
    int sigs = 0;
    for (size_t i = 0; i < json_array_size(ms); i++) {
        const char *s = jstr(json_array_get(ms, i), "signal");
        sigs |= !strcmp(s, "md5")      ? 1
                : !strcmp(s, "sha256") ? 2
                : !strcmp(s, "pdq")    ? 4
                                       : 8;
    }
    CHECK_EQ(sigs, 7);
    resp_free(&r);

    /* Dihedral: bank the rot90 variant of another image. */
    size_t clen;
    uint8_t *cimg = img("pytx-rgb.jpeg", &clen);
    cordon_image_hashes_t hc;
    REQUIRE(cordon_hash_image(cimg, clen, NULL, &hc) == CORDON_OK);
    REQUIRE(cordon_hash_distance(&hc.pdq, &hc.dihedral[CORDON_DIH_ROT90]) >
            CORDON_PDQ_MATCH_DISTANCE);
    char body[256];
    hex_of(&hc.dihedral[CORDON_DIH_ROT90], hex);
    snprintf(body, sizeof body, "{\"pdq\": \"%s\"}", hex);
    CHECK_EQ(
        send_json(&r, "POST", "/c/bank/CHECK_BANK/signal", T_CURATOR, body),
        200);
    long long rid = jint(r.json, "id");
    resp_free(&r);
    CHECK_EQ(post_raw(&r, "/v1/check", T_MATCHER, "image/jpeg", cimg, clen),
             200);
    CHECK_STREQ(jstr(r.json, "verdict"), "no_match");
    resp_free(&r);
    CHECK_EQ(post_raw(&r, "/v1/check?dihedral=true", T_MATCHER, "image/jpeg",
                      cimg, clen),
             200);
    CHECK_STREQ(jstr(r.json, "verdict"), "match");
    m = json_array_get(json_object_get(r.json, "matches"), 0);
    CHECK_EQ(jint(m, "item"), rid);
    CHECK_STREQ(jstr(m, "variant"), "rot90");
    CHECK_EQ(jint(m, "distance"), 0);
    resp_free(&r);

    /* HMA lookups by upload: keyed by signal type, then bank. */
    CHECK_EQ(post_file(&r, "/m/lookup", T_MATCHER, "photo", blur, blen, NULL),
             200);
    json_t *pb = json_object_get(json_object_get(r.json, "pdq"), "CHECK_BANK");
    CHECK_EQ(json_array_size(pb), 1);
    CHECK_EQ(jint(json_array_get(pb, 0), "bank_content_id"), id);
    CHECK_EQ(jint(json_array_get(pb, 0), "distance"), dist);
    CHECK(json_is_object(json_object_get(r.json, "md5")));
    resp_free(&r);
    CHECK_EQ(get(&r, "/m/lookup?url=http%3A%2F%2Fx%2Fy.jpg", T_MATCHER), 501);
    resp_free(&r);
    CHECK_EQ(get(&r, "/m/lookup", T_MATCHER), 400);
    resp_free(&r);
    char md5[33], q[256];
    cordon_hex_encode(ho.md5, 16, md5);
    snprintf(q, sizeof q, "/m/lookup?signal_type=md5&signal=%s", md5);
    CHECK_EQ(get(&r, q, T_MATCHER), 200);
    CHECK_EQ(jint(json_array_get(json_object_get(r.json, "CHECK_BANK"), 0),
                  "bank_content_id"),
             id);
    resp_free(&r);
    hex_of(&ho.pdq, hex);
    snprintf(q, sizeof q, "/m/raw_lookup?signal_type=pdq&signal=%s", hex);
    CHECK_EQ(get(&r, q, T_MATCHER), 200);
    CHECK_EQ(json_integer_value(
                 json_array_get(json_object_get(r.json, "matches"), 0)),
             id);
    resp_free(&r);

    /* Compare. */
    char a[65], b[65];
    hex_of(&ho.pdq, a);
    hex_of(&hb.pdq, b);
    snprintf(body, sizeof body, "{\"pdq\": [\"%s\", \"%s\"]}", a, b);
    CHECK_EQ(send_json(&r, "POST", "/m/compare", T_MATCHER, body), 200);
    json_t *cmp = json_object_get(r.json, "pdq");
    CHECK(json_is_true(json_array_get(cmp, 0)));
    CHECK_EQ(jint(json_array_get(cmp, 1), "distance"), dist);
    resp_free(&r);

    /* Index status. */
    CHECK_EQ(get(&r, "/m/index/status", T_MATCHER), 200);
    json_t *st = json_object_get(r.json, "pdq");
    CHECK(json_is_true(json_object_get(st, "present")));
    CHECK_GE(jint(st, "size"), 2);
    CHECK_GT(jint(st, "built_to"), 0);
    resp_free(&r);
    CHECK_EQ(get(&r, "/m/index/status?signal_type=md5", T_MATCHER), 200);
    CHECK(json_object_get(r.json, "pdq") == NULL);
    CHECK(json_object_get(r.json, "md5") != NULL);
    resp_free(&r);
    CHECK_EQ(get(&r, "/m/index/status?signal_type=bogus", T_MATCHER), 400);
    resp_free(&r);
    free(orig);
    free(blur);
    free(cimg);
}

static uint8_t *vid_file(const char *name, size_t *len)
{
    uint8_t *p =
        tu_read_file(tu_path("%s/vpdq/videos/%s", tu_vectors(), name), len);
    if (!p) {
        fprintf(stderr, "missing vector %s\n", name);
        exit(2);
    }
    return p;
}

TEST(video_flow)
{
    resp_t r;
    size_t dlen, plen;
    uint8_t *door = vid_file("doorknob-hd-no-bar.mp4", &dlen);
    uint8_t *pad = vid_file("test-padded-dimensions.mp4", &plen);
    CHECK_EQ(send_json(&r, "POST", "/c/banks", T_CURATOR,
                       "{\"name\":\"VIDEO_BANK\",\"default_action\":"
                       "\"review\"}"),
             201);
    resp_free(&r);

    /* Hashes: vPDQ as python-threatexchange's signal text, plus digests. */
    CHECK_EQ(post_file(&r, "/h/hash", T_MATCHER, "video", door, dlen, NULL),
             200);
    const char *vp = jstr(r.json, "vpdq");
    REQUIRE(vp && vp[0] == '[');
    char *vpdq = strdup(vp);
    cordon_video_hashes_t vh;
    REQUIRE(cordon_video_hash_file(
                tu_path("%s/vpdq/videos/doorknob-hd-no-bar.mp4", tu_vectors()),
                NULL, &vh) == CORDON_OK);
    REQUIRE(vh.count > 0);
    char first[65];
    hex_of(&vh.frames[0].hash, first);
    CHECK(strstr(vpdq, first) != NULL);
    uint8_t md5b[16];
    char md5[33];
    cordon_digest(door, dlen, md5b, NULL);
    cordon_hex_encode(md5b, 16, md5);
    CHECK_STREQ(jstr(r.json, "md5"), md5);
    resp_free(&r);

    /* Nothing banked yet. */
    CHECK_EQ(post_raw(&r, "/v1/check", T_MATCHER, "video/mp4", door, dlen),
             200);
    CHECK_STREQ(jstr(r.json, "verdict"), "no_match");
    CHECK_STREQ(jstr(r.json, "media"), "video");
    CHECK_EQ(jint(json_object_get(r.json, "hashes"), "vpdq_frames"),
             (long long)vh.count);
    resp_free(&r);

    /* Bank it; the same video then matches on vPDQ (100% both ways) and
     * as an exact copy; another video does not. */
    part_t note[] = {{"note", NULL, "door", 0}, {NULL, NULL, NULL, 0}};
    CHECK_EQ(post_file(&r, "/c/bank/VIDEO_BANK/content", T_CURATOR, "video",
                       door, dlen, note),
             200);
    long long id = jint(r.json, "id");
    CHECK(jstr(json_object_get(r.json, "signals"), "vpdq") != NULL);
    resp_free(&r);
    CHECK_EQ(post_file(&r, "/v1/check", T_MATCHER, "file", door, dlen, NULL),
             200);
    CHECK_STREQ(jstr(r.json, "verdict"), "match");
    json_t *ms = json_object_get(r.json, "matches");
    int vpdq_seen = 0, md5_seen = 0;
    for (size_t i = 0; i < json_array_size(ms); i++) {
        json_t *m = json_array_get(ms, i);
        CHECK_EQ(jint(m, "item"), id);
        CHECK_STREQ(jstr(m, "default_action"), "review");
        if (!strcmp(jstr(m, "signal"), "vpdq")) {
            vpdq_seen = 1;
            CHECK(json_real_value(json_object_get(m, "query_match_percent")) ==
                  100.0);
            CHECK(json_real_value(
                      json_object_get(m, "compared_match_percent")) == 100.0);
        }
        md5_seen |= !strcmp(jstr(m, "signal"), "md5");
    }
    CHECK(vpdq_seen && md5_seen);
    resp_free(&r);
    CHECK_EQ(post_raw(&r, "/v1/check", T_MATCHER, "video/mp4", pad, plen), 200);
    CHECK_STREQ(jstr(r.json, "verdict"), "no_match");
    resp_free(&r);

    /* HMA lookups by vPDQ signal and by upload, and compare. */
    char *esc = curl_easy_escape(NULL, vpdq, 0);
    char *q = malloc(strlen(esc) + 128);
    sprintf(q, "/m/raw_lookup?signal_type=vpdq&include_distance=1&signal=%s",
            esc);
    CHECK_EQ(get(&r, q, T_MATCHER), 200);
    json_t *m0 = json_array_get(json_object_get(r.json, "matches"), 0);
    CHECK_EQ(jint(m0, "bank_content_id"), id);
    CHECK(json_real_value(json_object_get(m0, "query_match_percent")) == 100.0);
    resp_free(&r);
    sprintf(q, "/m/raw_lookup?signal_type=vpdq&signal=%s", "%5B%5D");
    CHECK_EQ(get(&r, q, T_MATCHER), 400);
    resp_free(&r);
    free(q);
    curl_free(esc);
    CHECK_EQ(post_file(&r, "/m/lookup", T_MATCHER, "video", door, dlen, NULL),
             200);
    json_t *vb = json_object_get(json_object_get(r.json, "vpdq"), "VIDEO_BANK");
    CHECK_EQ(json_array_size(vb), 1);
    CHECK_EQ(jint(json_array_get(vb, 0), "bank_content_id"), id);
    CHECK_EQ(json_array_size(
                 json_object_get(json_object_get(r.json, "md5"), "VIDEO_BANK")),
             1);
    resp_free(&r);
    json_t *cmp = json_pack("{s:[s,s]}", "vpdq", vpdq, vpdq);
    char *body = json_dumps(cmp, JSON_COMPACT);
    CHECK_EQ(send_json(&r, "POST", "/m/compare", T_MATCHER, body), 200);
    CHECK(json_is_true(json_array_get(json_object_get(r.json, "vpdq"), 0)));
    resp_free(&r);
    free(body);
    json_decref(cmp);

    /* A banked photo seen in one of the video's frames. */
    int fi = -1;
    for (size_t i = 0; i < vh.count && fi < 0; i++)
        if (vh.frames[i].quality >= 50)
            fi = (int)i;
    REQUIRE(fi >= 0);
    char hex[65], sb[128];
    hex_of(&vh.frames[fi].hash, hex);
    snprintf(sb, sizeof sb, "{\"pdq\": \"%s\"}", hex);
    CHECK_EQ(send_json(&r, "POST", "/c/bank/CHECK_BANK/signal", T_CURATOR, sb),
             200);
    long long photo = jint(r.json, "id");
    resp_free(&r);
    CHECK_EQ(post_raw(&r, "/v1/check", T_MATCHER, "video/mp4", door, dlen),
             200);
    ms = json_object_get(r.json, "matches");
    int photo_seen = 0;
    for (size_t i = 0; i < json_array_size(ms); i++) {
        json_t *m = json_array_get(ms, i);
        if (jint(m, "item") == photo) {
            photo_seen = 1;
            CHECK_STREQ(jstr(m, "signal"), "pdq");
            CHECK(json_real_value(json_object_get(m, "timestamp")) ==
                  vh.frames[fi].timestamp);
        }
    }
    CHECK(photo_seen);
    resp_free(&r);
    cordon_video_hashes_free(&vh);
    free(vpdq);
    free(door);
    free(pad);
}

TEST(keys_api)
{
    resp_t r;
    CHECK_EQ(send_json(&r, "POST", "/v1/keys", T_ADMIN,
                       "{\"name\":\"ci-bot\",\"role\":\"matcher\"}"),
             201);
    char tok[128] = "";
    snprintf(tok, sizeof tok, "%s", jstr(r.json, "token") ?: "");
    long long id = jint(r.json, "id");
    resp_free(&r);
    REQUIRE(tok[0]);
    CHECK(!strncmp(tok, "cordon_", 7) && strlen(tok) == 7 + 43);
    snprintf(g_api_token, sizeof g_api_token, "%s", tok);
    CHECK_EQ(get(&r, "/status", tok), 200);
    resp_free(&r);
    CHECK_EQ(get(&r, "/v1/keys", tok), 403);
    resp_free(&r);
    CHECK_EQ(get(&r, "/v1/keys", T_ADMIN), 200);
    int found = 0;
    for (size_t i = 0; i < json_array_size(r.json); i++) {
        json_t *k = json_array_get(r.json, i);
        if (jint(k, "id") == id) {
            found = 1;
            CHECK_STREQ(jstr(k, "role"), "matcher");
            CHECK(json_object_get(k, "token") == NULL);
        }
    }
    CHECK(found);
    CHECK(!strstr(r.body, tok));
    resp_free(&r);
    CHECK_EQ(send_json(&r, "POST", "/v1/keys", T_ADMIN,
                       "{\"name\":\"x\",\"role\":\"superuser\"}"),
             400);
    resp_free(&r);
    char path[64];
    snprintf(path, sizeof path, "/v1/keys/%lld", id);
    CHECK_EQ(send_json(&r, "DELETE", path, T_ADMIN, "{}"), 200);
    resp_free(&r);
    CHECK_EQ(get(&r, "/status", tok), 401);
    resp_free(&r);
    CHECK_EQ(send_json(&r, "DELETE", path, T_ADMIN, "{}"), 404);
    resp_free(&r);
}

typedef struct {
    const uint8_t *img;
    size_t len;
    atomic_int ok, bad;
} conc_t;

static void *checker(void *arg)
{
    conc_t *c = arg;
    for (int i = 0; i < 12; i++) {
        resp_t r;
        long st =
            post_raw(&r, "/v1/check", T_MATCHER, "image/jpeg", c->img, c->len);
        if (st == 200 && !strcmp(jstr(r.json, "verdict") ?: "", "match"))
            atomic_fetch_add(&c->ok, 1);
        else
            atomic_fetch_add(&c->bad, 1);
        resp_free(&r);
    }
    return NULL;
}

TEST(concurrent_checks_while_curating)
{
    resp_t r;
    size_t blen;
    uint8_t *blur = img("bridge-mods_blur-a-lot.jpg", &blen);
    conc_t c = {blur, blen, 0, 0};
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, checker, &c);
    /* Meanwhile a curator adds content; each addition is visible to the
     * very next request. */
    unsigned seed = 1234;
    int visible = 0;
    for (int i = 0; i < 6; i++) {
        char h[65], body[128], q[256];
        random_pdq(h, &seed);
        snprintf(body, sizeof body, "{\"pdq\": \"%s\"}", h);
        if (send_json(&r, "POST", "/c/bank/CHECK_BANK/signal", T_CURATOR,
                      body) != 200) {
            resp_free(&r);
            continue;
        }
        long long id = jint(r.json, "id");
        resp_free(&r);
        snprintf(q, sizeof q, "/m/raw_lookup?signal_type=pdq&signal=%s", h);
        if (get(&r, q, T_MATCHER) == 200 &&
            json_integer_value(
                json_array_get(json_object_get(r.json, "matches"), 0)) == id)
            visible++;
        resp_free(&r);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ(visible, 6);
    CHECK_EQ(atomic_load(&c.ok), 48);
    CHECK_EQ(atomic_load(&c.bad), 0);
    free(blur);
}

TEST(other_process_writes_go_live)
{
    /* This test process is "another process" writing with hdb directly,
     * as the CLI does. The server's refresher picks it up. */
    char h[65];
    unsigned seed = 4321;
    random_pdq(h, &seed);
    hdb_signal_t sig;
    hdb_vpdq_frame_t fr[1];
    REQUIRE(hdb_signal_parse(HDB_SIG_PDQ, h, 64, &sig, fr, 1) == CORDON_OK);
    hdb_item_spec_t spec;
    memset(&spec, 0, sizeof spec);
    spec.bank = "CHECK_BANK";
    spec.signals = &sig;
    spec.nsignals = 1;
    hdb_add_result_t res;
    REQUIRE(hdb_item_add(g_db, &spec, 0, &res) == CORDON_OK);
    char q[256];
    snprintf(q, sizeof q, "/m/raw_lookup?signal_type=pdq&signal=%s", h);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int found = 0;
    /* The refresher runs every 200 ms; allow plenty under sanitizers. */
    for (int i = 0; i < 500 && !found; i++) {
        resp_t r;
        if (get(&r, q, T_MATCHER) == 200 &&
            json_array_size(json_object_get(r.json, "matches")) == 1)
            found = 1;
        resp_free(&r);
        if (!found)
            usleep(20000);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(found);
    printf("# external write visible after %.0f ms\n",
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
               (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
}

TEST(feed)
{
    resp_t r;
    CHECK_EQ(get(&r, "/v1/feed?since=0&limit=2", T_ADMIN), 200);
    json_t *ch = json_object_get(r.json, "changes");
    CHECK_EQ(json_array_size(ch), 2);
    CHECK_EQ(jint(json_array_get(ch, 0), "seq") <
                 jint(json_array_get(ch, 1), "seq"),
             1);
    CHECK_EQ(jint(r.json, "next"), jint(json_array_get(ch, 1), "seq"));
    CHECK(json_is_true(json_object_get(r.json, "more")));
    long long last = jint(r.json, "last_seq");
    uint64_t db_last = 0;
    hdb_last_seq(g_db, &db_last);
    CHECK_EQ(last, (long long)db_last);
    resp_free(&r);
    /* The last page. */
    char q[128];
    snprintf(q, sizeof q, "/v1/feed?since=%lld", last - 1);
    CHECK_EQ(get(&r, q, T_ADMIN), 200);
    ch = json_object_get(r.json, "changes");
    CHECK_EQ(json_array_size(ch), 1);
    CHECK(json_is_false(json_object_get(r.json, "more")));
    json_t *c0 = json_array_get(ch, 0);
    CHECK(json_object_get(c0, "item") || json_object_get(c0, "bank"));
    resp_free(&r);
    snprintf(q, sizeof q, "/v1/feed?since=%lld", last);
    CHECK_EQ(get(&r, q, T_ADMIN), 200);
    CHECK_EQ(json_array_size(json_object_get(r.json, "changes")), 0);
    CHECK_EQ(jint(r.json, "next"), last);
    resp_free(&r);
}

/* `cordon sync` replicates from this server's feed. */
TEST(sync_from_server)
{
    const char *replica = tu_path("%s/replica.db", tu_tmpdir());
    char *out = NULL;
    int rc = tu_run(&out,
                    "'%s' sync --from http://127.0.0.1:%d --key %s --db '%s' "
                    "--limit 3 --retries 0 2>&1",
                    tu_cordon_bin(), g_port, T_MATCHER, replica);
    CHECK_EQ(rc, 2); /* a matcher key may not read the feed */
    free(out);
    out = NULL;
    rc = tu_run(&out,
                "'%s' sync --from http://127.0.0.1:%d --key %s --db '%s' "
                "--limit 3 2>&1",
                tu_cordon_bin(), g_port, T_ADMIN, replica);
    CHECK_MSG(rc == 0, "sync: %s", out ? out : "");
    free(out);
    hdb_t *rdb = NULL;
    hdb_opts_t o;
    memset(&o, 0, sizeof o);
    o.readonly = 1;
    REQUIRE(hdb_open(replica, &o, &rdb) == CORDON_OK);
    hdb_bank_t *a = NULL, *b = NULL;
    CHECK_EQ(hdb_bank_get(g_db, "CHECK_BANK", &a), CORDON_OK);
    CHECK_EQ(hdb_bank_get(rdb, "CHECK_BANK", &b), CORDON_OK);
    if (a && b) {
        CHECK_GT(a->nitems, 5);
        CHECK_EQ(b->nitems, a->nitems);
        CHECK_STREQ(b->default_action, a->default_action);
    }
    hdb_free(a);
    hdb_free(b);
    hdb_close(rdb);
}

TEST(metrics)
{
    resp_t r;
    CHECK_EQ(get(&r, "/metrics", T_METRICS), 200);
    REQUIRE(r.body);
    const char *want[] = {
        "cordon_http_requests_total{route=\"/v1/check\",method=\"POST\","
        "status=\"200\"}",
        "cordon_http_requests_total{route=\"/v1/check\",method=\"POST\","
        "status=\"413\"}",
        "cordon_http_requests_total{route=\"unmatched\",method=\"*\","
        "status=\"404\"}",
        "cordon_http_request_duration_seconds_bucket{route=\"/v1/check\","
        "method=\"POST\",le=\"+Inf\"}",
        "cordon_matches_total{bank=\"CHECK_BANK\"}",
        "cordon_check_verdicts_total{verdict=\"match\"}",
        "cordon_index_hashes ",
        "cordon_db_file_bytes ",
        "cordon_db_items ",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        CHECK_MSG(strstr(r.body, want[i]) != NULL, "missing %s", want[i]);
    /* The check counter holds at least the concurrent test's 48. */
    const char *p = strstr(r.body, want[0]);
    if (p)
        CHECK_GE(atoll(p + strlen(want[0])), 48);
    /* Every non-comment line is "name{labels} value" or "name value". */
    int lines = 0, bad = 0;
    char *save = NULL;
    for (char *l = strtok_r(r.body, "\n", &save); l;
         l = strtok_r(NULL, "\n", &save)) {
        if (l[0] == '#')
            continue;
        lines++;
        char *sp = strrchr(l, ' ');
        char *end = NULL;
        if (!sp || (strtod(sp + 1, &end), *end))
            bad++;
    }
    CHECK_GT(lines, 20);
    CHECK_EQ(bad, 0);
    resp_free(&r);
}

/* A second server with tight limits: connections past the cap wait
 * unserved (libmicrohttpd stops accepting), and idle connections are cut
 * off after the timeout, which frees the slots. */
TEST(connection_limits_and_timeouts)
{
    int port = free_port();
    REQUIRE(port > 0);
    const char *log = tu_path("%s/serve-limits.log", tu_tmpdir());
    const char *db = tu_path("%s/limits.db", tu_tmpdir());
    const char *extra[] = {"--no-auth", "--threads",         "1", "--timeout",
                           "2",         "--max-connections", "2", NULL};
    pid_t pid = spawn_server(db, port, log, extra);
    REQUIRE(pid > 0);
    REQUIRE(server_ready(port, pid));
    int fds[2];
    for (int i = 0; i < 2; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        CHECK_EQ(connect(fds[i], (struct sockaddr *)&a, sizeof a), 0);
        /* Half a request line: a slow client. */
        CHECK_EQ(write(fds[i], "GET /sta", 8), 8);
    }
    /* A third client is not served while both slots are taken. */
    CURL *c = curl_easy_init();
    REQUIRE(c);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/status", port);
    resp_t r;
    memset(&r, 0, sizeof r);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 400L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode cc = curl_easy_perform(c);
    CHECK_MSG(cc == CURLE_OPERATION_TIMEDOUT, "curl: %s",
              curl_easy_strerror(cc));
    curl_easy_cleanup(c);
    resp_free(&r);
    /* The slow clients are cut off after the idle timeout: their reads
     * reach end of file (or a reset) well before our 10 s guard. */
    for (int i = 0; i < 2; i++) {
        struct timeval tv = {10, 0};
        setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char buf[256];
        ssize_t n;
        int reads = 0;
        while ((n = read(fds[i], buf, sizeof buf)) > 0 && reads < 16)
            reads++;
        CHECK_MSG(n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK),
                  "read %zd errno %d", n, errno);
        close(fds[i]);
    }
    /* Then new clients get in. */
    req_opts_t o = {.port = port};
    CHECK_EQ(http_ex(&r, "GET", "/status", &o), 200);
    resp_free(&r);
    kill(pid, SIGTERM);
    CHECK_EQ(wait_exit(pid, 20), 0);
}

/* SIGTERM while a request is half uploaded: new connections are refused,
 * the request still completes, and the process exits 0. */
TEST(graceful_stop)
{
    size_t len;
    uint8_t *p = img("bridge-mods_blur-a-little.jpg", &len);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)g_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    char head[512];
    int hl = snprintf(head, sizeof head,
                      "POST /v1/check HTTP/1.1\r\nHost: x\r\nAuthorization: "
                      "Bearer %s\r\nContent-Type: image/jpeg\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      T_MATCHER, len);
    REQUIRE(write(fd, head, (size_t)hl) == hl);
    REQUIRE(write(fd, p, len / 2) == (ssize_t)(len / 2));
    usleep(300000); /* the server has started this request */
    REQUIRE(kill(g_pid, SIGTERM) == 0);
    usleep(300000);
    /* No new connections. */
    int fd2 = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(fd2, (struct sockaddr *)&a, sizeof a) != 0);
    close(fd2);
    REQUIRE(write(fd, p + len / 2, len - len / 2) == (ssize_t)(len - len / 2));
    char buf[4096];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof buf - 1 &&
           (n = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)n;
    buf[got] = 0;
    CHECK_MSG(!strncmp(buf, "HTTP/1.1 200", 12), "got '%.40s'", buf);
    CHECK(strstr(buf, "\"verdict\":\"match\"") != NULL);
    close(fd);
    CHECK_EQ(wait_exit(g_pid, 30), 0);
    g_pid = 0;
    free(p);

    /* The access log has a line per request and never a token. */
    size_t ll;
    char *logtext = (char *)tu_read_file(g_log, &ll);
    REQUIRE(logtext);
    logtext = realloc(logtext, ll + 1);
    logtext[ll] = 0;
    const char *toks[] = {T_MATCHER, T_CURATOR, T_ADMIN,
                          T_METRICS, T_REVOKED, g_api_token};
    for (size_t i = 0; i < sizeof toks / sizeof toks[0]; i++)
        CHECK_MSG(!toks[i][0] || strstr(logtext, toks[i]) == NULL,
                  "token %s in the log", toks[i]);
    CHECK(strstr(logtext, " POST /v1/check 200 ") != NULL);
    CHECK(strstr(logtext, " GET /no/such/path 404 ") != NULL);
    CHECK(strstr(logtext, "stopped") != NULL);
    free(logtext);
}

int main(int argc, char **argv)
{
    (void)argc;
    th_init(argv[0]);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(g_dbpath, sizeof g_dbpath, "%s/serve.db", tu_tmpdir());
    snprintf(g_log, sizeof g_log, "%s/serve.log", tu_tmpdir());
    hdb_opts_t o;
    memset(&o, 0, sizeof o);
    o.nosync = 1;
    if (hdb_open(g_dbpath, &o, &g_db) != CORDON_OK) {
        fprintf(stderr, "cannot create %s\n", g_dbpath);
        return 2;
    }
    uint64_t rid;
    add_key("matcher", "matcher", T_MATCHER, NULL);
    add_key("curator", "curator", T_CURATOR, NULL);
    add_key("admin", "admin", T_ADMIN, NULL);
    add_key("prometheus", "metrics", T_METRICS, NULL);
    add_key("odd", "reader", T_ODDROLE, NULL);
    add_key("later", "matcher", T_LATEREVOKE, &g_laterevoke_id);
    add_key("old", "admin", T_REVOKED, &rid);
    hdb_apikey_revoke(g_db, rid);

    g_port = free_port();
    const char *extra[] = {"--threads", "2", "--max-body", "1M", NULL};
    g_pid = spawn_server(g_dbpath, g_port, g_log, extra);
    if (g_pid <= 0 || !server_ready(g_port, g_pid)) {
        fprintf(stderr, "server did not start; log:\n");
        char *l = (char *)tu_read_file(g_log, NULL);
        if (l)
            fprintf(stderr, "%s\n", l);
        return 2;
    }

    RUN(auth_and_roles);
    RUN(hash_endpoint);
    RUN(bad_input);
    RUN(curation_flow);
    RUN(check_and_matching);
    RUN(video_flow);
    RUN(keys_api);
    RUN(concurrent_checks_while_curating);
    RUN(other_process_writes_go_live);
    RUN(feed);
    RUN(sync_from_server);
    RUN(metrics);
    RUN(connection_limits_and_timeouts);
    RUN(graceful_stop);

    if (g_pid > 0) {
        kill(g_pid, SIGTERM);
        wait_exit(g_pid, 20);
    }
    hdb_close(g_db);
    curl_global_cleanup();
    return TH_END();
}
