/*
 * `cordon sync` and `cordon key` end to end. A small change-feed server
 * runs inside this program (libmicrohttpd on 127.0.0.1, a free port): it
 * serves GET /v1/feed pages of a source database through the JSON codec and
 * checks the bearer token against the source's API keys, as `cordon serve`
 * does. The cordon binary syncs from it into destination databases, which
 * the tests then read.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../tools/hdbjson.h"
#include "cordon_digest.h"
#include "cordon_error.h"
#include "harness.h"
#include "hdb.h"
#include "util.h"

enum { MODE_OK, MODE_BAD_LATER_PAGE, MODE_GARBAGE };

/* The server's state; tests change it only while no sync runs. */
static struct {
    struct MHD_Daemon *d;
    unsigned port;
    hdb_t *src;
    int mode;
    int requests;
    pthread_mutex_t mu;
} srv = {.mu = PTHREAD_MUTEX_INITIALIZER};

static char url[64];

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status,
                               const char *body)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static int authorised(struct MHD_Connection *conn)
{
    const char *h =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (!h || strncmp(h, "Bearer ", 7) != 0)
        return 0;
    uint8_t d[32];
    hdb_apikey_t *k = NULL;
    if (cordon_digest((const uint8_t *)h + 7, strlen(h + 7), NULL, d) ||
        hdb_apikey_lookup(srv.src, d, &k) != CORDON_OK)
        return 0;
    int ok = strcmp(k->role, "admin") == 0;
    hdb_free(k);
    return ok;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn,
                               const char *path, const char *method,
                               const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)con_cls;
    pthread_mutex_lock(&srv.mu);
    srv.requests++;
    int mode = srv.mode;
    pthread_mutex_unlock(&srv.mu);
    if (strcmp(method, "GET") != 0 || strcmp(path, "/v1/feed") != 0)
        return respond(conn, 404, "{\"error\": \"not found\"}");
    if (!authorised(conn))
        return respond(conn, 401, "{\"error\": \"bad key\"}");
    const char *s =
        MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "since");
    const char *l =
        MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "limit");
    uint64_t since = s ? strtoull(s, NULL, 10) : 0;
    size_t limit = l ? strtoul(l, NULL, 10) : 0;
    if (mode == MODE_GARBAGE)
        return respond(conn, 200, "{\"changes\": [ {\"seq\": 1,");
    json_t *page = NULL;
    if (hdbjson_feed_page(srv.src, since, limit, &page) != CORDON_OK)
        return respond(conn, 500, "{\"error\": \"feed\"}");
    json_t *changes = json_object_get(page, "changes");
    size_t n = json_array_size(changes);
    if (mode == MODE_BAD_LATER_PAGE && since > 0 && n > 1) {
        /* Valid changes first, one bad signal last: the page must be
         * refused whole. */
        json_t *item = json_object_get(json_array_get(changes, n - 1), "item");
        json_t *sig = json_array_get(json_object_get(item, "signals"), 0);
        if (sig)
            json_object_set_new(sig, "value", json_string("zz-not-hex"));
    }
    char *text = json_dumps(page, JSON_COMPACT);
    json_decref(page);
    enum MHD_Result r = respond(conn, 200, text ? text : "");
    free(text);
    return r;
}

static void server_start(void)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    srv.d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0,
                         NULL, NULL, handler, NULL, MHD_OPTION_SOCK_ADDR,
                         (struct sockaddr *)&a, MHD_OPTION_END);
    if (!srv.d) {
        fprintf(stderr, "cannot start the test feed server\n");
        exit(2);
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(srv.d, MHD_DAEMON_INFO_BIND_PORT);
    srv.port = info ? info->port : 0;
    snprintf(url, sizeof url, "http://127.0.0.1:%u", srv.port);
}

static void set_mode(int mode)
{
    pthread_mutex_lock(&srv.mu);
    srv.mode = mode;
    pthread_mutex_unlock(&srv.mu);
}

static int requests(void)
{
    pthread_mutex_lock(&srv.mu);
    int n = srv.requests;
    pthread_mutex_unlock(&srv.mu);
    return n;
}

/* ---------------------------------------------------------------- */
/* Databases                                                          */

static int ndb;

static const char *new_path(const char *what)
{
    return tu_path("%s/%s%d.db", tu_tmpdir(), what, ++ndb);
}

static hdb_t *open_db(const char *path)
{
    hdb_t *db = NULL;
    hdb_opts_t o = {0};
    o.nosync = 1;
    int rc = hdb_open(path, &o, &db);
    CHECK_MSG(rc == CORDON_OK, "hdb_open(%s): %s", path, cordon_errname(rc));
    return db;
}

/* An admin key on the source; its token written into *token. */
static void add_key(hdb_t *db, const char *token, const char *role)
{
    uint8_t d[32];
    cordon_digest((const uint8_t *)token, strlen(token), NULL, d);
    CHECK_EQ(hdb_apikey_add(db, "test", role, d, NULL), CORDON_OK);
}

static const char *TOKEN = "cordon_test-token-0123456789";

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static hdb_vpdq_frame_t vframes[3];

/* Item number i: PDQ + MD5 always, SHA-256 on even, vPDQ every third,
 * labels, note "n<i>", provenance of a platform. */
static uint64_t add_item(hdb_t *db, const char *bank, int i)
{
    hdb_signal_t sig[4];
    size_t ns = 0;
    memset(sig, 0, sizeof sig);
    sig[ns].type = HDB_SIG_PDQ;
    sig[ns].quality = i % 2 ? 90 : HDB_QUALITY_UNKNOWN;
    for (int w = 0; w < 4; w++)
        sig[ns].pdq.w[w] = mix((uint64_t)i * 4 + (uint64_t)w);
    ns++;
    sig[ns].type = HDB_SIG_MD5;
    for (int b = 0; b < 16; b++)
        sig[ns].digest[b] = (uint8_t)(mix((uint64_t)i + 1000) >> (b % 8 * 8));
    sig[ns].digest[0] = (uint8_t)i;
    sig[ns].digest[1] = (uint8_t)(i >> 8);
    ns++;
    if (i % 2 == 0) {
        sig[ns].type = HDB_SIG_SHA256;
        for (int b = 0; b < 32; b++)
            sig[ns].digest[b] = (uint8_t)(i * 7 + b);
        ns++;
    }
    if (i % 3 == 0) {
        for (int f = 0; f < 3; f++) {
            for (int w = 0; w < 4; w++)
                vframes[f].hash.w[w] = mix((uint64_t)(i * 100 + f * 4 + w));
            vframes[f].quality = f == 2 ? HDB_QUALITY_UNKNOWN : 80;
            vframes[f].timestamp = f * 0.5;
            vframes[f].count = (uint32_t)f + 1;
        }
        sig[ns].type = HDB_SIG_VPDQ;
        sig[ns].frames = vframes;
        sig[ns].nframes = 3;
        ns++;
    }
    char l0[32], note[32], by[32];
    snprintf(l0, sizeof l0, "entity:e%d", i % 3);
    snprintf(note, sizeof note, "n%d", i);
    snprintf(by, sizeof by, "analyst%d", i);
    const char *labels[] = {l0, "type:video"};
    hdb_item_spec_t spec = {
        bank,
        labels,
        2,
        note,
        {by, HDB_SOURCE_PLATFORM, "upload-ui", 1700000000 + i},
        i % 5 == 0 ? 1900000000 : 0,
        sig,
        ns};
    hdb_add_result_t r;
    int rc = hdb_item_add(db, &spec, 0, &r);
    CHECK_MSG(rc == CORDON_OK, "add %d: %s", i, cordon_errname(rc));
    return r.id;
}

static void mkbank(hdb_t *db, const char *name, int enabled, const char *action,
                   const char *label)
{
    const char *labels[] = {label};
    hdb_bank_spec_t spec = {name, enabled, action, labels, label ? 1 : 0};
    CHECK_EQ(hdb_bank_create(db, &spec, NULL), CORDON_OK);
}

typedef struct {
    const hdb_item_t *want;
    uint64_t id;
    int count;
} find_t;

static int find_cb(void *ctx, const hdb_item_t *it)
{
    find_t *f = ctx;
    if (strcmp(it->note, f->want->note) == 0) {
        f->count++;
        f->id = it->id;
    }
    return 0;
}

/* The destination's copy of a source item (found by its note), or NULL;
 * *copies receives how many destination items carry that note. */
static hdb_item_t *copy_of(hdb_t *dst, const hdb_item_t *src, int *copies)
{
    find_t f = {src, 0, 0};
    CHECK_EQ(
        hdb_item_list(dst, NULL, 0, 0, HDB_LIST_TOMBSTONES, find_cb, &f, NULL),
        CORDON_OK);
    if (copies)
        *copies = f.count;
    hdb_item_t *it = NULL;
    if (f.id && hdb_item_get(dst, f.id, &it) != CORDON_OK)
        return NULL;
    return it;
}

static void check_signals_equal(const hdb_item_t *a, const hdb_item_t *b)
{
    CHECK_EQ(a->nsignals, b->nsignals);
    for (size_t i = 0; i < a->nsignals && i < b->nsignals; i++) {
        const hdb_signal_t *x = &a->signals[i], *y = &b->signals[i];
        CHECK_EQ(x->type, y->type);
        CHECK_EQ(x->quality, y->quality);
        CHECK(memcmp(&x->pdq, &y->pdq, sizeof x->pdq) == 0);
        CHECK(memcmp(x->digest, y->digest, sizeof x->digest) == 0);
        CHECK_EQ(x->nframes, y->nframes);
        for (size_t k = 0; k < x->nframes && k < y->nframes; k++) {
            CHECK(memcmp(&x->frames[k].hash, &y->frames[k].hash,
                         sizeof x->frames[k].hash) == 0);
            CHECK_EQ(x->frames[k].quality, y->frames[k].quality);
            CHECK(x->frames[k].timestamp == y->frames[k].timestamp);
            CHECK_EQ(x->frames[k].count, y->frames[k].count);
        }
    }
}

typedef struct {
    hdb_t *dst;
    int live, dead, missing, extra, bad;
    const char *bank; /* only this bank's items are expected */
} cmp_t;

static int cmp_cb(void *ctx, const hdb_item_t *s)
{
    cmp_t *c = ctx;
    int copies = 0;
    hdb_item_t *d = copy_of(c->dst, s, &copies);
    int expected = !c->bank || strcmp(c->bank, s->bank) == 0;
    if (!expected) {
        if (d && !d->deleted)
            c->extra++;
        hdb_free(d);
        return 0;
    }
    if (s->deleted) {
        /* Never seen alive, or seen and deleted. */
        if (d && !d->deleted)
            c->bad++;
        if (d)
            c->dead++;
        hdb_free(d);
        return 0;
    }
    if (!d) {
        c->missing++;
        return 0;
    }
    if (copies != 1 || d->deleted)
        c->bad++;
    c->live++;
    CHECK_STREQ(d->bank, s->bank);
    CHECK_EQ(d->nlabels, s->nlabels);
    for (size_t i = 0; i < d->nlabels && i < s->nlabels; i++)
        CHECK_STREQ(d->labels[i], s->labels[i]);
    CHECK_EQ(d->disable_until, s->disable_until);
    CHECK_STREQ(d->prov.added_by, s->prov.added_by);
    CHECK_EQ(d->prov.added_at, s->prov.added_at);
    CHECK_EQ(d->prov.source, HDB_SOURCE_PEER);
    CHECK_STREQ(d->prov.source_name, url);
    check_signals_equal(s, d);
    hdb_free(d);
    return 0;
}

/* Every source item has exactly its copy in dst (live or tombstone). */
static cmp_t compare_dbs(hdb_t *src, const char *dst_path, const char *bank)
{
    cmp_t c = {0};
    c.bank = bank;
    c.dst = open_db(dst_path);
    if (c.dst) {
        CHECK_EQ(hdb_item_list(src, NULL, 0, 0, HDB_LIST_TOMBSTONES, cmp_cb, &c,
                               NULL),
                 CORDON_OK);
        hdb_close(c.dst);
    }
    CHECK_EQ(c.missing, 0);
    CHECK_EQ(c.bad, 0);
    CHECK_EQ(c.extra, 0);
    return c;
}

/* ---------------------------------------------------------------- */
/* Running cordon sync                                                */

typedef struct {
    int status;
    json_t *summary; /* the final JSON summary line */
    char *err;       /* stderr */
} run_t;

static void run_free(run_t *r)
{
    json_decref(r->summary);
    free(r->err);
    memset(r, 0, sizeof *r);
}

static run_t sync_run(const char *dst, const char *extra)
{
    run_t r = {0};
    char *out = NULL;
    const char *errf = tu_path("%s/stderr%d", tu_tmpdir(), ++ndb);
    r.status =
        tu_run(&out,
               "'%s' sync --from %s/ --key '%s' --db '%s' --json "
               "--retries 0 --timeout 20 %s 2>'%s'",
               tu_cordon_bin(), url, TOKEN, dst, extra ? extra : "", errf);
    size_t len = 0;
    r.err = (char *)tu_read_file(errf, &len);
    if (r.err) {
        r.err = realloc(r.err, len + 1);
        r.err[len] = 0;
    }
    /* The last line of stdout is the final summary. */
    if (out) {
        char *last = NULL, *save = NULL;
        for (char *l = strtok_r(out, "\n", &save); l;
             l = strtok_r(NULL, "\n", &save))
            last = l;
        if (last)
            r.summary = json_loads(last, 0, NULL);
    }
    free(out);
    return r;
}

static long long sum(const run_t *r, const char *key)
{
    json_t *v = json_object_get(r->summary, key);
    return json_is_integer(v) ? json_integer_value(v) : -1;
}

static uint64_t checkpoint_of(const char *dst_path, const char *key)
{
    hdb_t *db = open_db(dst_path);
    char buf[32] = "";
    size_t len = 0;
    uint64_t v = 0;
    if (db && hdb_kv_get(db, key, buf, sizeof buf - 1, &len) == CORDON_OK) {
        buf[len] = 0;
        v = strtoull(buf, NULL, 10);
    }
    hdb_close(db);
    return v;
}

static uint64_t last_seq_of(const char *path)
{
    hdb_t *db = open_db(path);
    uint64_t s = 0;
    if (db)
        hdb_last_seq(db, &s);
    hdb_close(db);
    return s;
}

/* A source with banks A (labelled, action block) and B (disabled), n items
 * spread over both, and one item deleted before any sync. */
static hdb_t *make_source(const char *path, int n, uint64_t *ids)
{
    hdb_t *src = open_db(path);
    if (!src)
        return NULL;
    add_key(src, TOKEN, "admin");
    mkbank(src, "ISIS_AMAQ_VIDEO", 1, "block", "entity:amaq");
    mkbank(src, "OTHER", 0, NULL, NULL);
    for (int i = 1; i <= n; i++)
        ids[i] = add_item(src, i % 4 == 0 ? "OTHER" : "ISIS_AMAQ_VIDEO", i);
    return src;
}

/* ---------------------------------------------------------------- */
/* Tests                                                              */

TEST(initial_sync_resume_and_changes)
{
    uint64_t ids[32];
    const char *sp = new_path("src"), *dp = new_path("dst");
    hdb_t *src = srv.src = make_source(sp, 25, ids);
    REQUIRE(src);
    CHECK_EQ(hdb_item_remove(src, ids[7], NULL), CORDON_OK);
    /* Local items first, so that local and peer ids collide. */
    hdb_t *dst = open_db(dp);
    REQUIRE(dst);
    mkbank(dst, "LOCAL", 1, NULL, NULL);
    uint64_t local_id = add_item(dst, "LOCAL", 500);
    CHECK_EQ(local_id, 1);
    hdb_close(dst);

    int before = requests();
    run_t r = sync_run(dp, "--limit 4");
    CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
    /* 2 banks + 25 item changes in pages of 4. */
    CHECK_GE(requests() - before, 7);
    CHECK_EQ(sum(&r, "adds"), 24);
    CHECK_EQ(sum(&r, "updates"), 0);
    CHECK_EQ(sum(&r, "deletes"), 0);
    uint64_t src_last = 0;
    hdb_last_seq(src, &src_last);
    CHECK_EQ(sum(&r, "checkpoint"), (long long)src_last);
    CHECK_EQ(checkpoint_of(dp, tu_path("sync:%s", url)), src_last);
    run_free(&r);
    cmp_t c = compare_dbs(src, dp, NULL);
    CHECK_EQ(c.live, 24);
    CHECK_EQ(c.dead, 0); /* deleted before it was ever seen */

    dst = open_db(dp);
    REQUIRE(dst);
    hdb_item_t *mine = NULL;
    CHECK_EQ(hdb_item_get(dst, local_id, &mine), CORDON_OK);
    if (mine) {
        CHECK_STREQ(mine->note, "n500");
        CHECK_EQ(mine->prov.source, HDB_SOURCE_PLATFORM);
    }
    hdb_free(mine);
    hdb_bank_t *b = NULL;
    CHECK_EQ(hdb_bank_get(dst, "ISIS_AMAQ_VIDEO", &b), CORDON_OK);
    if (b) {
        CHECK_EQ(b->enabled, 1);
        CHECK_STREQ(b->default_action, "block");
        CHECK_EQ(b->nlabels, 1);
    }
    hdb_free(b);
    b = NULL;
    CHECK_EQ(hdb_bank_get(dst, "OTHER", &b), CORDON_OK);
    if (b)
        CHECK_EQ(b->enabled, 0);
    hdb_free(b);
    hdb_close(dst);

    /* Resume: nothing new, nothing written. */
    uint64_t dst_last = last_seq_of(dp);
    r = sync_run(dp, NULL);
    CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
    CHECK_EQ(sum(&r, "adds"), 0);
    CHECK_EQ(sum(&r, "updates"), 0);
    CHECK_EQ(sum(&r, "deletes"), 0);
    CHECK_EQ(sum(&r, "checkpoint"), (long long)src_last);
    run_free(&r);
    CHECK_EQ(last_seq_of(dp), dst_last);

    /* Changes on the source: a disable, new labels, a delete, a bank
     * disabled, a new item. */
    const char *nl[] = {"entity:amaq", "type:image", "behaviour:violence"};
    CHECK_EQ(hdb_item_set_disable_until(src, ids[2], 2000000000), CORDON_OK);
    CHECK_EQ(hdb_item_set_labels(src, ids[3], nl, 3), CORDON_OK);
    CHECK_EQ(hdb_item_remove(src, ids[5], NULL), CORDON_OK);
    CHECK_EQ(hdb_bank_set_enabled(src, "ISIS_AMAQ_VIDEO", 0), CORDON_OK);
    add_item(src, "ISIS_AMAQ_VIDEO", 26);
    r = sync_run(dp, "--limit 2");
    CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
    CHECK_EQ(sum(&r, "adds"), 1);
    CHECK_EQ(sum(&r, "updates"), 2);
    CHECK_EQ(sum(&r, "deletes"), 1);
    CHECK_EQ(sum(&r, "banks"), 1);
    run_free(&r);
    c = compare_dbs(src, dp, NULL);
    CHECK_EQ(c.live, 24);
    CHECK_EQ(c.dead, 1);
    dst = open_db(dp);
    REQUIRE(dst);
    b = NULL;
    CHECK_EQ(hdb_bank_get(dst, "ISIS_AMAQ_VIDEO", &b), CORDON_OK);
    if (b)
        CHECK_EQ(b->enabled, 0);
    hdb_free(b);
    hdb_close(dst);
    hdb_close(src);
    srv.src = NULL;
}

TEST(duplicates_of_local_items_are_not_taken_over)
{
    uint64_t ids[8];
    const char *sp = new_path("src"), *dp = new_path("dst");
    hdb_t *src = srv.src = make_source(sp, 6, ids);
    REQUIRE(src);
    /* The destination already holds item 3 (same MD5, same bank). */
    hdb_t *dst = open_db(dp);
    REQUIRE(dst);
    mkbank(dst, "ISIS_AMAQ_VIDEO", 1, NULL, NULL);
    uint64_t mine = add_item(dst, "ISIS_AMAQ_VIDEO", 3);
    hdb_close(dst);
    run_t r = sync_run(dp, NULL);
    CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
    CHECK_EQ(sum(&r, "adds"), 5);
    CHECK_EQ(sum(&r, "skipped"), 1);
    run_free(&r);
    /* The peer deletes and edits its copy: ours stays as it is. */
    CHECK_EQ(hdb_item_remove(src, ids[3], NULL), CORDON_OK);
    r = sync_run(dp, NULL);
    CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
    CHECK_EQ(sum(&r, "deletes"), 0);
    run_free(&r);
    dst = open_db(dp);
    REQUIRE(dst);
    hdb_item_t *it = NULL;
    CHECK_EQ(hdb_item_get(dst, mine, &it), CORDON_OK);
    if (it) {
        CHECK_EQ(it->deleted, 0);
        CHECK_EQ(it->prov.source, HDB_SOURCE_PLATFORM);
    }
    hdb_free(it);
    hdb_close(dst);
    hdb_close(src);
    srv.src = NULL;
}

TEST(local_delete_sticks)
{
    uint64_t ids[8];
    const char *sp = new_path("src"), *dp = new_path("dst");
    hdb_t *src = srv.src = make_source(sp, 3, ids);
    REQUIRE(src);
    run_t r = sync_run(dp, NULL);
    CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
    run_free(&r);
    /* Delete item 1's copy here; the peer then edits item 1. */
    hdb_t *dst = open_db(dp);
    REQUIRE(dst);
    hdb_item_t *s1 = NULL;
    CHECK_EQ(hdb_item_get(src, ids[1], &s1), CORDON_OK);
    hdb_item_t *d1 = s1 ? copy_of(dst, s1, NULL) : NULL;
    REQUIRE(d1);
    CHECK_EQ(hdb_item_remove(dst, d1->id, NULL), CORDON_OK);
    hdb_free(d1);
    hdb_close(dst);
    CHECK_EQ(hdb_item_set_note(src, ids[2], "n2"), CORDON_OK);
    CHECK_EQ(hdb_item_set_disable_until(src, ids[1], 5), CORDON_OK);
    r = sync_run(dp, NULL);
    CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
    CHECK_EQ(sum(&r, "updates"), 1);
    CHECK_EQ(sum(&r, "skipped"), 1);
    run_free(&r);
    dst = open_db(dp);
    REQUIRE(dst);
    d1 = copy_of(dst, s1, NULL);
    CHECK(d1 && d1->deleted);
    hdb_free(d1);
    hdb_free(s1);
    hdb_close(dst);
    hdb_close(src);
    srv.src = NULL;
}

TEST(bank_filter)
{
    uint64_t ids[16];
    const char *sp = new_path("src"), *dp = new_path("dst");
    hdb_t *src = srv.src = make_source(sp, 12, ids);
    REQUIRE(src);
    run_t r = sync_run(dp, "--bank OTHER --limit 3");
    CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
    CHECK_EQ(sum(&r, "adds"), 3); /* items 4, 8, 12 */
    run_free(&r);
    cmp_t c = compare_dbs(src, dp, "OTHER");
    CHECK_EQ(c.live, 3);
    hdb_t *dst = open_db(dp);
    REQUIRE(dst);
    hdb_bank_t *b = NULL;
    CHECK_EQ(hdb_bank_get(dst, "ISIS_AMAQ_VIDEO", &b), CORDON_ENOTFOUND);
    CHECK_EQ(hdb_bank_get(dst, "OTHER", &b), CORDON_OK);
    if (b)
        CHECK_EQ(b->enabled, 0); /* mirrored */
    hdb_free(b);
    hdb_close(dst);
    CHECK_EQ(checkpoint_of(dp, tu_path("sync:%s bank:OTHER", url)),
             last_seq_of(sp));
    CHECK_EQ(checkpoint_of(dp, tu_path("sync:%s", url)), 0);
    hdb_close(src);
    srv.src = NULL;
}

/* An item that leaves the synced bank is removed here; a bank deleted
 * there (after its items) is deleted here. */
TEST(bank_moves_and_deletes)
{
    uint64_t ids[16];
    const char *sp = new_path("src"), *dp = new_path("dst");
    hdb_t *src = srv.src = make_source(sp, 8, ids);
    REQUIRE(src);
    run_t r = sync_run(dp, "--bank OTHER");
    CHECK_EQ(sum(&r, "adds"), 2); /* items 4 and 8 */
    run_free(&r);
    /* Item 4 moves to the other bank (as a replica's put would). */
    hdb_item_t *it = NULL;
    REQUIRE(hdb_item_get(src, ids[4], &it) == CORDON_OK);
    it->bank = "ISIS_AMAQ_VIDEO";
    CHECK_EQ(hdb_item_put(src, it, NULL), CORDON_OK);
    hdb_free(it);
    r = sync_run(dp, "--bank OTHER");
    CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
    CHECK_EQ(sum(&r, "deletes"), 1);
    CHECK_EQ(sum(&r, "adds"), 0);
    run_free(&r);
    hdb_t *dst = open_db(dp);
    hdb_stats_t st;
    CHECK(dst && hdb_stats(dst, &st) == CORDON_OK);
    CHECK_EQ(st.items, 1);
    CHECK_EQ(st.tombstones, 1);
    hdb_close(dst);

    /* OTHER emptied and deleted on the source. */
    CHECK_EQ(hdb_item_remove(src, ids[8], NULL), CORDON_OK);
    CHECK_EQ(hdb_bank_delete(src, "OTHER"), CORDON_OK);
    r = sync_run(dp, "--bank OTHER");
    CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
    CHECK_EQ(sum(&r, "deletes"), 1);
    CHECK_EQ(sum(&r, "banks"), 1);
    run_free(&r);
    dst = open_db(dp);
    REQUIRE(dst);
    hdb_bank_t *b = NULL;
    CHECK_EQ(hdb_bank_get(dst, "OTHER", &b), CORDON_ENOTFOUND);
    hdb_free(b);
    hdb_close(dst);
    hdb_close(src);
    srv.src = NULL;
}

/* Two Cordons syncing from each other: without --no-relay a PDQ-only item
 * (no exact-value dedup) would come back as a new copy each round. */
TEST(no_relay_stops_ping_pong)
{
    uint64_t ids[4];
    const char *sp = new_path("src"), *dp = new_path("dst");
    hdb_t *src = srv.src = make_source(sp, 2, ids);
    REQUIRE(src);
    /* On the source, an item it got from its own peer. */
    hdb_signal_t sig;
    memset(&sig, 0, sizeof sig);
    sig.type = HDB_SIG_PDQ;
    sig.quality = 100;
    sig.pdq.w[0] = 42;
    hdb_item_spec_t spec = {"OTHER",
                            NULL,
                            0,
                            "relayed",
                            {"x", HDB_SOURCE_PEER, "http://other:1", 5},
                            0,
                            &sig,
                            1};
    CHECK_EQ(hdb_item_add(src, &spec, 0, NULL), CORDON_OK);
    run_t r = sync_run(dp, "--no-relay");
    CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
    CHECK_EQ(sum(&r, "adds"), 2);
    CHECK_EQ(sum(&r, "skipped"), 1);
    run_free(&r);
    r = sync_run(new_path("dst"), NULL); /* relayed by default */
    CHECK_EQ(sum(&r, "adds"), 3);
    run_free(&r);
    hdb_close(src);
    srv.src = NULL;
}

TEST(wrong_key_fails)
{
    uint64_t ids[4];
    const char *sp = new_path("src"), *dp = new_path("dst");
    hdb_t *src = srv.src = make_source(sp, 2, ids);
    REQUIRE(src);
    char *out = NULL;
    const char *errf = tu_path("%s/wrongkey.err", tu_tmpdir());
    int st = tu_run(&out,
                    "'%s' sync --from %s --key cordon_wrong --db '%s' "
                    "--retries 3 2>'%s'",
                    tu_cordon_bin(), url, dp, errf);
    CHECK_EQ(st, 2);
    size_t len = 0;
    char *err = (char *)tu_read_file(errf, &len);
    REQUIRE(err);
    err = realloc(err, len + 1);
    err[len] = 0;
    CHECK_MSG(strstr(err, "refused the key (HTTP 401") != NULL, "%s", err);
    CHECK_MSG(strstr(err, "retrying") == NULL, "%s", err);
    free(err);
    free(out);
    /* A matcher key is refused as well. */
    add_key(src, "cordon_matcher-only", "matcher");
    st = tu_run(NULL,
                "'%s' sync --from %s --key cordon_matcher-only --db '%s' "
                "2>/dev/null",
                tu_cordon_bin(), url, dp);
    CHECK_EQ(st, 2);
    hdb_t *dst = open_db(dp);
    hdb_stats_t s;
    CHECK(dst && hdb_stats(dst, &s) == CORDON_OK && s.items == 0);
    hdb_close(dst);
    hdb_close(src);
    srv.src = NULL;
}

TEST(key_from_file_and_environment)
{
    uint64_t ids[4];
    const char *sp = new_path("src"), *dp = new_path("dst");
    hdb_t *src = srv.src = make_source(sp, 2, ids);
    REQUIRE(src);
    const char *kf = tu_path("%s/keyfile", tu_tmpdir());
    char line[128];
    snprintf(line, sizeof line, "%s\n", TOKEN);
    REQUIRE(tu_write_file(kf, line, strlen(line)) == 0);
    int st = tu_run(NULL,
                    "'%s' sync --from %s --key-file '%s' --db '%s' "
                    ">/dev/null",
                    tu_cordon_bin(), url, kf, dp);
    CHECK_EQ(st, 0);
    CHECK_EQ(hdb_item_remove(src, ids[1], NULL), CORDON_OK);
    st = tu_run(NULL,
                "CORDON_SYNC_KEY='%s' '%s' sync --from %s --db '%s' "
                ">/dev/null",
                TOKEN, tu_cordon_bin(), url, dp);
    CHECK_EQ(st, 0);
    cmp_t c = compare_dbs(src, dp, NULL);
    CHECK_EQ(c.live, 1);
    CHECK_EQ(c.dead, 1);
    /* A key with a line break inside could forge headers: refused. */
    st = tu_run(NULL,
                "'%s' sync --from %s --key \"$(printf 'a\\r\\nX: y')\" "
                "--db '%s' 2>/dev/null",
                tu_cordon_bin(), url, dp);
    CHECK_EQ(st, 2);
    st = tu_run(NULL, "'%s' sync --from ftp://x --key k --db '%s' 2>/dev/null",
                tu_cordon_bin(), dp);
    CHECK_EQ(st, 2);
    hdb_close(src);
    srv.src = NULL;
}

TEST(malformed_pages_apply_nothing)
{
    uint64_t ids[16];
    const char *sp = new_path("src"), *dp = new_path("dst");
    hdb_t *src = srv.src = make_source(sp, 10, ids);
    REQUIRE(src);

    set_mode(MODE_GARBAGE);
    run_t r = sync_run(dp, NULL);
    CHECK_EQ(r.status, 2);
    CHECK_MSG(r.err && strstr(r.err, "malformed JSON"), "%s", r.err);
    run_free(&r);

    /* First page (banks + 2 items) fine, the second carries a bad hash in
     * its last change. */
    set_mode(MODE_BAD_LATER_PAGE);
    r = sync_run(dp, "--limit 4");
    CHECK_EQ(r.status, 2);
    CHECK_MSG(r.err && strstr(r.err, "bad page after seq 4") &&
                  strstr(r.err, "signals[0].value"),
              "%s", r.err);
    run_free(&r);
    CHECK_EQ(checkpoint_of(dp, tu_path("sync:%s", url)), 4);
    hdb_t *dst = open_db(dp);
    hdb_stats_t s;
    CHECK(dst && hdb_stats(dst, &s) == CORDON_OK);
    CHECK_EQ(s.items, 2);
    hdb_close(dst);

    /* The peer mended: the rest arrives, nothing twice. */
    set_mode(MODE_OK);
    r = sync_run(dp, "--limit 4");
    CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
    CHECK_EQ(sum(&r, "adds"), 8);
    run_free(&r);
    cmp_t c = compare_dbs(src, dp, NULL);
    CHECK_EQ(c.live, 10);
    hdb_close(src);
    srv.src = NULL;
}

static int has(const char *hay, const char *needle)
{
    return hay && strstr(hay, needle) != NULL;
}

/* A crash between a page's batch of adds and its id map: the rerun must
 * adopt the orphans, not add them twice. And one before the batch. */
TEST(crash_recovery)
{
    uint64_t ids[16];
    const char *sp = new_path("src"), *dp = new_path("dst");
    hdb_t *src = srv.src = make_source(sp, 9, ids);
    REQUIRE(src);
    int st = tu_run(NULL,
                    "CORDON__SYNC_FAULT=after-batch '%s' sync --from %s --key "
                    "'%s' --db '%s' >/dev/null 2>&1",
                    tu_cordon_bin(), url, TOKEN, dp);
    CHECK_EQ(st, 3);
    hdb_t *dst = open_db(dp);
    hdb_stats_t s;
    CHECK(dst && hdb_stats(dst, &s) == CORDON_OK);
    CHECK_EQ(s.items, 9); /* written, but neither mapped nor checkpointed */
    hdb_close(dst);
    CHECK_EQ(checkpoint_of(dp, tu_path("sync:%s", url)), 0);
    /* A local item added meanwhile is no candidate for adoption. */
    dst = open_db(dp);
    REQUIRE(dst);
    add_item(dst, "OTHER", 700);
    hdb_close(dst);

    run_t r = sync_run(dp, NULL);
    CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
    CHECK_EQ(sum(&r, "adds"), 0);
    CHECK_EQ(sum(&r, "updates"), 9);
    CHECK_MSG(has(r.err, "9 items adopted, 0 to add again"), "%s", r.err);
    run_free(&r);
    cmp_t c = compare_dbs(src, dp, NULL); /* one copy each */
    CHECK_EQ(c.live, 9);

    /* Later changes reach the adopted copies. */
    CHECK_EQ(hdb_item_remove(src, ids[4], NULL), CORDON_OK);
    r = sync_run(dp, NULL);
    CHECK_EQ(sum(&r, "deletes"), 1);
    run_free(&r);
    c = compare_dbs(src, dp, NULL);
    CHECK_EQ(c.dead, 1);

    const char *dp2 = new_path("dst");
    st = tu_run(NULL,
                "CORDON__SYNC_FAULT=before-batch '%s' sync --from %s --key "
                "'%s' --db '%s' --limit 5 >/dev/null 2>&1",
                tu_cordon_bin(), url, TOKEN, dp2);
    CHECK_EQ(st, 3);
    r = sync_run(dp2, "--limit 5");
    CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
    CHECK_EQ(sum(&r, "adds"), 8);
    CHECK_MSG(has(r.err, "0 items adopted, 3 to add again"), "%s", r.err);
    run_free(&r);
    c = compare_dbs(src, dp2, NULL);
    CHECK_EQ(c.live, 8);
    hdb_close(src);
    srv.src = NULL;
}

static hdb_t *open_ro(const char *path)
{
    hdb_t *db = NULL;
    hdb_opts_t o = {0};
    o.readonly = 1;
    if (access(path, F_OK) != 0 || hdb_open(path, &o, &db) != CORDON_OK)
        return NULL;
    return db;
}

/* Waits (30 s at most) until the database has these counts. */
static int wait_counts(const char *path, uint64_t items, uint64_t tombs)
{
    for (int i = 0; i < 300; i++) {
        hdb_t *db = open_ro(path);
        hdb_stats_t s;
        int ok = db && hdb_stats(db, &s) == CORDON_OK && s.items == items &&
                 s.tombstones == tombs;
        hdb_close(db);
        if (ok)
            return 1;
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}

TEST(follow_until_sigterm)
{
    uint64_t ids[8];
    const char *sp = new_path("src"), *dp = new_path("dst");
    hdb_t *src = srv.src = make_source(sp, 3, ids);
    REQUIRE(src);
    const char *outf = tu_path("%s/follow.out", tu_tmpdir());
    char bin[1024];
    snprintf(bin, sizeof bin, "%s", tu_cordon_bin());
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int fd = open(outf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0)
            dup2(fd, 1);
        execl(bin, "cordon", "sync", "--from", url, "--key", TOKEN, "--db", dp,
              "--follow", "--interval", "1", "--json", (char *)NULL);
        _exit(127);
    }
    CHECK(wait_counts(dp, 3, 0));
    add_item(src, "ISIS_AMAQ_VIDEO", 4);
    CHECK_EQ(hdb_item_remove(src, ids[1], NULL), CORDON_OK);
    CHECK(wait_counts(dp, 3, 1));
    kill(pid, SIGTERM);
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
    size_t len = 0;
    char *out = (char *)tu_read_file(outf, &len);
    REQUIRE(out);
    out = realloc(out, len + 1);
    out[len] = 0;
    char *last = NULL, *save = NULL;
    for (char *l = strtok_r(out, "\n", &save); l;
         l = strtok_r(NULL, "\n", &save))
        last = l;
    json_t *j = last ? json_loads(last, 0, NULL) : NULL;
    CHECK(json_is_true(json_object_get(j, "final")));
    CHECK_EQ(json_integer_value(json_object_get(j, "adds")), 4);
    CHECK_EQ(json_integer_value(json_object_get(j, "deletes")), 1);
    json_decref(j);
    free(out);
    cmp_t c = compare_dbs(src, dp, NULL);
    CHECK_EQ(c.live, 3);
    hdb_close(src);
    srv.src = NULL;
}

static char *run_out(int *status, const char *fmt, const char *a, const char *b)
{
    char *out = NULL;
    *status = tu_run(&out, fmt, tu_cordon_bin(), a, b);
    return out ? out : calloc(1, 1);
}

TEST(key_create_ls_revoke)
{
    const char *kp = new_path("keys");
    const char *errf = tu_path("%s/key.err", tu_tmpdir());
    int st;
    char *out = run_out(&st,
                        "'%s' key create --role admin --name ops --db "
                        "'%s' 2>'%s'",
                        kp, errf);
    CHECK_EQ(st, 0);
    /* The token alone on stdout: cordon_ and 43 base64url characters. */
    char token[128];
    CHECK_EQ(sscanf(out, "%127s", token), 1);
    free(out);
    CHECK_EQ(strlen(token), 7 + 43);
    CHECK(strncmp(token, "cordon_", 7) == 0);
    CHECK_EQ(strspn(token + 7, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqr"
                               "stuvwxyz0123456789-_"),
             43);
    size_t len = 0;
    char *err = (char *)tu_read_file(errf, &len);
    REQUIRE(err);
    err = realloc(err, len + 1);
    err[len] = 0;
    CHECK_MSG(strstr(err, "cannot be shown again") && !strstr(err, token), "%s",
              err);
    free(err);

    hdb_t *db = open_db(kp);
    REQUIRE(db);
    uint8_t d[32];
    cordon_digest((const uint8_t *)token, strlen(token), NULL, d);
    hdb_apikey_t *k = NULL;
    CHECK_EQ(hdb_apikey_lookup(db, d, &k), CORDON_OK);
    if (k) {
        CHECK_STREQ(k->role, "admin");
        CHECK_STREQ(k->name, "ops");
        CHECK_EQ(k->id, 1);
    }
    hdb_free(k);
    hdb_close(db);

    out = run_out(&st, "'%s' key create --role matcher --db '%s' --json%s", kp,
                  " 2>/dev/null");
    CHECK_EQ(st, 0);
    json_t *j = json_loads(out, 0, NULL);
    const char *t2 = json_string_value(json_object_get(j, "token"));
    CHECK(t2 && strlen(t2) == 50 && strcmp(t2, token) != 0);
    CHECK_STREQ(json_string_value(json_object_get(j, "name")), "matcher");
    CHECK_EQ(json_integer_value(json_object_get(j, "id")), 2);
    json_decref(j);
    free(out);

    out = run_out(&st, "'%s' key ls --db '%s'%s", kp, "");
    CHECK_EQ(st, 0);
    CHECK_MSG(strstr(out, "1\tops\tadmin\t") && strstr(out, "2\tmatcher\t"),
              "%s", out);
    CHECK(!strstr(out, token) && !strstr(out, "cordon_"));
    free(out);

    out = run_out(&st, "'%s' key revoke 1 --db '%s'%s", kp, " 2>/dev/null");
    CHECK_EQ(st, 0);
    free(out);
    db = open_db(kp);
    REQUIRE(db);
    CHECK_EQ(hdb_apikey_lookup(db, d, &k), CORDON_EPERM);
    hdb_close(db);
    out = run_out(&st, "'%s' key ls --json --db '%s'%s", kp, "");
    CHECK_EQ(st, 0);
    char *save = NULL;
    int lines = 0;
    for (char *l = strtok_r(out, "\n", &save); l;
         l = strtok_r(NULL, "\n", &save), lines++) {
        j = json_loads(l, 0, NULL);
        CHECK(j && !json_object_get(j, "token"));
        json_int_t id = json_integer_value(json_object_get(j, "id"));
        CHECK(json_is_boolean(json_object_get(j, "revoked")));
        CHECK_EQ(json_is_true(json_object_get(j, "revoked")), id == 1);
        json_decref(j);
    }
    CHECK_EQ(lines, 2);
    free(out);

    out = run_out(&st, "'%s' key revoke 1 --db '%s'%s", kp, " 2>/dev/null");
    CHECK_EQ(st, 2);
    free(out);
    out = run_out(&st, "'%s' key revoke 99 --db '%s'%s", kp, " 2>/dev/null");
    CHECK_EQ(st, 2);
    free(out);
    out = run_out(&st, "'%s' key create --role root --db '%s'%s", kp,
                  " 2>/dev/null");
    CHECK_EQ(st, 2);
    free(out);
    out = run_out(&st, "'%s' key ls --db '%s'%s",
                  tu_path("%s/missing.db", tu_tmpdir()), " 2>/dev/null");
    CHECK_EQ(st, 2);
    free(out);
    CHECK(access(tu_path("%s/missing.db", tu_tmpdir()), F_OK) != 0);
}

/* A key made by `cordon key create` on the source opens its feed. */
TEST(created_key_opens_the_feed)
{
    uint64_t ids[4];
    const char *sp = new_path("src"), *dp = new_path("dst");
    hdb_t *src = srv.src = make_source(sp, 2, ids);
    REQUIRE(src);
    char *tok = NULL;
    int st = tu_run(&tok, "'%s' key create --role admin --db '%s' 2>/dev/null",
                    tu_cordon_bin(), sp);
    CHECK_EQ(st, 0);
    REQUIRE(tok);
    tok[strcspn(tok, "\n")] = 0;
    st = tu_run(NULL, "'%s' sync --from %s --key '%s' --db '%s' >/dev/null",
                tu_cordon_bin(), url, tok, dp);
    CHECK_EQ(st, 0);
    cmp_t c = compare_dbs(src, dp, NULL);
    CHECK_EQ(c.live, 2);
    free(tok);
    hdb_close(src);
    srv.src = NULL;
}

TEST(help_everywhere)
{
    const char *cmds[] = {"key --help", "key create --help", "key ls --help",
                          "key revoke --help", "sync --help"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char *out = NULL;
        int st = tu_run(&out, "'%s' %s", tu_cordon_bin(), cmds[i]);
        CHECK_MSG(st == 0 && out && strstr(out, "usage: cordon"), "%s",
                  cmds[i]);
        free(out);
    }
    int st = tu_run(NULL, "'%s' sync --key k 2>/dev/null", tu_cordon_bin());
    CHECK_EQ(st, 2);
    st = tu_run(NULL, "'%s' key 2>/dev/null", tu_cordon_bin());
    CHECK_EQ(st, 2);
}

int main(int argc, char **argv)
{
    (void)argc;
    th_init(argv[0]);
    server_start();
    RUN(initial_sync_resume_and_changes);
    RUN(duplicates_of_local_items_are_not_taken_over);
    RUN(local_delete_sticks);
    RUN(bank_filter);
    RUN(bank_moves_and_deletes);
    RUN(no_relay_stops_ping_pong);
    RUN(wrong_key_fails);
    RUN(key_from_file_and_environment);
    RUN(malformed_pages_apply_nothing);
    RUN(crash_recovery);
    RUN(follow_until_sigterm);
    RUN(key_create_ls_revoke);
    RUN(created_key_opens_the_feed);
    RUN(help_everywhere);
    MHD_stop_daemon(srv.d);
    return TH_END();
}
