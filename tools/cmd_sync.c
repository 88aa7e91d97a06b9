/*
 * cmd_sync.c - `cordon sync`: pulls a peer Cordon's change feed
 * (GET /v1/feed, see tools/hdbjson.h) into the local database.
 *
 * How a page is applied
 * - A page is fetched, loaded and validated whole (hdbjson_feed_parse)
 *   before anything is written: a malformed page writes nothing.
 * - Bank adds and updates first (create if missing, mirror enabled, labels
 *   and default action), then the items, then bank deletes (refused by hdb,
 *   and skipped, while the local bank still has live items).
 * - After the page, the checkpoint (the page's "next") is stored under the
 *   kv key "sync:<url>" ("sync:<url> bank:<name>" with --bank, so that
 *   syncing one bank does not skip the others' history). A restart resumes
 *   there. If the process dies between the writes of a page and its
 *   checkpoint, the page is applied again: every write below is an upsert
 *   through the id map, so that is harmless.
 *
 * Item ids
 * - The peer's item ids are its own and collide with local ones, so synced
 *   items get fresh local ids (hdb_batch_add) and a map peer id -> local id
 *   is kept in kv. Updates of a mapped item are hdb_item_put() on its local
 *   id; deletes hdb_item_remove(). An item the peer deletes before we saw
 *   it is never created. An item that leaves the --bank bank is removed.
 * - Map storage: the ids of one peer are grouped in spans of 1024; each span
 *   is one kv value "sync:<url> map:<peer id / 1024>" holding its entries
 *   (peer id % 1024, state, value). States: OWNED (local id: a copy this
 *   sync made and keeps current), DUP (local id of an item that already
 *   held the same MD5/SHA-256/vPDQ in the bank: not ours, so never updated
 *   or deleted by the peer), PENDING (an add in flight, see below). Grouping
 *   keeps a page's map updates to a few transactions instead of one per
 *   item.
 * - Crash safety of adds: a page's new items are written by one batch
 *   (all or nothing), but the batch and the map are separate transactions.
 *   So before the batch, each new item's map entry is set PENDING with the
 *   local sequence number before the batch and a 64-bit fingerprint of the
 *   item as it will be stored (SHA-256 of its canonical JSON without id and
 *   times). After the batch the entries become OWNED/DUP. A PENDING entry
 *   found later means the process died in between: the local items added
 *   since that sequence by this peer (source "peer", source_name = url) and
 *   never changed since are matched by fingerprint; a match is adopted as
 *   OWNED, else the batch never committed and the item is added anew.
 * - Local decisions win where they are explicit: an item deleted locally
 *   stays deleted (the peer's updates to it are skipped).
 * - Provenance: synced items get source "peer" and source_name = the peer
 *   URL; added_by and added_at are the peer's.
 * - Loops: two Cordons syncing from each other would bounce PDQ-only items
 *   (hdb deduplicates MD5, SHA-256 and vPDQ, not PDQ) as a new copy each
 *   round; --no-relay skips the items a peer got from its own peers.
 *
 * Concurrency: one `cordon sync` per (database, peer) at a time, enforced
 * by an flock() on "<db>.sync-<sha256(url) prefix>.lock" beside the
 * database. Other writers (cordon serve, the analyst commands) may run.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cli.h"
#include "cordon.h"
#include "db_common.h"
#include "hdb.h"
#include "hdbjson.h"

#define URL_MAX 200    /* keeps every kv key within 256 bytes */
#define KEY_MAX 512    /* bearer token */
#define MAP_SPAN 1024  /* peer ids per map record */
#define BACKOFF_MAX 60 /* seconds between retries, at most */
#define MAX_BYTES_DEFAULT (64u << 20)
#define MAP_REC_MAX (3 + MAP_SPAN * 19)

/* The one piece of process state: set by SIGINT/SIGTERM, read by loops. */
static volatile sig_atomic_t stop_sig;

static void on_signal(int sig)
{
    stop_sig = sig;
}

enum { S_OK = 0, S_FATAL = -1, S_TRANSIENT = -2, S_TOOBIG = -3, S_STOP = -4 };

typedef struct {
    char url[URL_MAX + 1]; /* without trailing slashes */
    char key[KEY_MAX + 1];
    const char *bank;
    const char *db;
    int follow, json, no_relay;
    unsigned interval, limit, retries;
    long timeout;
    size_t max_bytes;
} sync_opts_t;

typedef struct {
    uint64_t adds, updates, deletes, skipped, filtered, banks;
} counts_t;

enum { M_NONE = 0, M_OWNED = 1, M_DUP = 2, M_PENDING = 3 };

typedef struct {
    uint16_t lo;
    uint8_t state;
    uint64_t a; /* OWNED/DUP: local id; PENDING: local seq before the add */
    uint64_t b; /* PENDING: fingerprint */
} map_ent_t;

typedef struct {
    uint64_t no;
    int dirty;
    size_t n;
    map_ent_t e[MAP_SPAN]; /* sorted by lo */
} map_chunk_t;

typedef struct {
    char *p;
    size_t len, cap, max;
    int too_big;
} body_t;

typedef struct {
    const sync_opts_t *o;
    hdb_t *db;
    CURL *curl;
    struct curl_slist *headers;
    body_t body;
    char curl_err[CURL_ERROR_SIZE];
    char ckpt_key[300];
    uint64_t since, last_seq;
    unsigned limit;
    map_chunk_t **chunks; /* sorted by no; dropped after every page */
    size_t nchunks, capchunks;
    counts_t round, total;
    int progress_shown;
} sync_t;

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: cordon sync --from URL (--key KEY | --key-file PATH) "
        "[options]\n"
        "\n"
        "Pulls the change feed of a peer Cordon (GET URL/v1/feed, an admin\n"
        "key) into the local database: new items, updates and deletes, and\n"
        "banks. Progress is checkpointed per peer, so a rerun resumes where\n"
        "the last one stopped and never applies a change twice. Synced items\n"
        "get local ids (a map from the peer's ids is kept in the database)\n"
        "and provenance source \"peer\" with the peer URL as source name.\n"
        "\n"
        "options:\n"
        "  --from URL        the peer, e.g. https://cordon-a.example:8443\n"
        "  --key KEY         its API key (bearer token); --key-file PATH "
        "reads\n"
        "                    it from a file, $CORDON_SYNC_KEY from the\n"
        "                    environment (neither shows in ps)\n"
        "  --bank NAME       only items of this bank (created here if "
        "missing)\n"
        "  --no-relay        skip the peer's own synced copies (items it got\n"
        "                    from its peers): two Cordons syncing from each\n"
        "                    other need this, or PDQ-only items bounce\n"
        "                    back and forth\n"
        "  --once            pull until caught up, then exit (default)\n"
        "  --follow          keep pulling every --interval seconds until\n"
        "                    SIGINT/SIGTERM\n"
        "  --interval S      seconds between polls with --follow (default 5)\n"
        "  --limit N         changes per request, 1..%d (default %d)\n"
        "  --timeout S       seconds per request (default 60)\n"
        "  --retries N       retries of a failed request, with backoff\n"
        "                    1, 2, 4... up to %d s (default 5)\n"
        "  --max-bytes N     largest response accepted (default %u); larger\n"
        "                    pages are asked again with a smaller "
        "--limit\n" CLI_DB_HELP "  --json            summaries as JSON lines\n"
        "  -h, --help        this help\n"
        "\n"
        "Exit status: 0 when caught up (or stopped by a signal with\n"
        "--follow), 2 on errors: a refused key, a malformed page, a peer\n"
        "unreachable after the retries.\n",
        HDBJSON_FEED_LIMIT_MAX, HDBJSON_FEED_LIMIT_DEFAULT, BACKOFF_MAX,
        MAX_BYTES_DEFAULT);
}

/* ---------------------------------------------------------------- */
/* Small helpers                                                      */

static void hex_prefix(const uint8_t *d, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = 0;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Sleeps up to secs, waking early when a stop signal arrives. */
static void nap(unsigned secs)
{
    for (unsigned ms = 0; ms < secs * 1000u && !stop_sig; ms += 200) {
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static int key_len_ok(const char *k)
{
    return strlen(k) <= 256;
}

/* ---------------------------------------------------------------- */
/* The id map                                                         */

static void map_key(const sync_t *s, uint64_t no, char *buf, size_t cap)
{
    snprintf(buf, cap, "sync:%s map:%llu", s->o->url, (unsigned long long)no);
}

static int map_decode(const uint8_t *p, size_t len, map_chunk_t *c)
{
    if (len < 3 || p[0] != 1)
        return -1;
    size_t n = (size_t)get_le(p + 1, 2), off = 3;
    if (n > MAP_SPAN)
        return -1;
    for (size_t i = 0; i < n; i++) {
        map_ent_t *e = &c->e[i];
        if (off + 11 > len)
            return -1;
        e->lo = (uint16_t)get_le(p + off, 2);
        e->state = p[off + 2];
        e->a = get_le(p + off + 3, 8);
        off += 11;
        e->b = 0;
        if (e->state == M_PENDING) {
            if (off + 8 > len)
                return -1;
            e->b = get_le(p + off, 8);
            off += 8;
        }
        if (e->lo >= MAP_SPAN || (i && e->lo <= c->e[i - 1].lo) ||
            e->state < M_OWNED || e->state > M_PENDING ||
            (e->state != M_PENDING && e->a == 0))
            return -1;
    }
    if (off != len)
        return -1;
    c->n = n;
    return 0;
}

static size_t map_encode(const map_chunk_t *c, uint8_t *p)
{
    size_t off = 3;
    p[0] = 1;
    put_le(p + 1, c->n, 2);
    for (size_t i = 0; i < c->n; i++) {
        const map_ent_t *e = &c->e[i];
        put_le(p + off, e->lo, 2);
        p[off + 2] = e->state;
        put_le(p + off + 3, e->a, 8);
        off += 11;
        if (e->state == M_PENDING) {
            put_le(p + off, e->b, 8);
            off += 8;
        }
    }
    return off;
}

/* The cached record of peer id's span, loaded on first use. */
static map_chunk_t *map_chunk(sync_t *s, uint64_t peer_id)
{
    uint64_t no = peer_id / MAP_SPAN;
    size_t lo = 0, hi = s->nchunks;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->chunks[mid]->no < no)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < s->nchunks && s->chunks[lo]->no == no)
        return s->chunks[lo];
    if (s->nchunks == s->capchunks) {
        size_t cap = s->capchunks ? 2 * s->capchunks : 16;
        map_chunk_t **nc = realloc(s->chunks, cap * sizeof *nc);
        if (!nc) {
            cli_error("sync", "out of memory");
            return NULL;
        }
        s->chunks = nc;
        s->capchunks = cap;
    }
    map_chunk_t *c = calloc(1, sizeof *c);
    uint8_t *rec = malloc(MAP_REC_MAX);
    char key[300];
    size_t len = 0;
    if (!c || !rec) {
        free(c);
        free(rec);
        cli_error("sync", "out of memory");
        return NULL;
    }
    c->no = no;
    map_key(s, no, key, sizeof key);
    int rc = hdb_kv_get(s->db, key, rec, MAP_REC_MAX, &len);
    if (rc == CORDON_OK && map_decode(rec, len, c) != 0)
        rc = CORDON_ECORRUPT;
    free(rec);
    if (rc != CORDON_OK && rc != CORDON_ENOTFOUND) {
        cli_error(hdb_path(s->db), "reading the sync map (%s): %s", key,
                  cordon_strerror(rc));
        free(c);
        return NULL;
    }
    memmove(s->chunks + lo + 1, s->chunks + lo,
            (s->nchunks - lo) * sizeof *s->chunks);
    s->chunks[lo] = c;
    s->nchunks++;
    return c;
}

/* The entry of a peer id (state M_NONE when absent); -1 on errors. */
static int map_get(sync_t *s, uint64_t peer_id, map_ent_t *out)
{
    map_chunk_t *c = map_chunk(s, peer_id);
    uint16_t lo = (uint16_t)(peer_id % MAP_SPAN);
    memset(out, 0, sizeof *out);
    out->lo = lo;
    if (!c)
        return -1;
    for (size_t i = 0; i < c->n; i++)
        if (c->e[i].lo == lo) {
            *out = c->e[i];
            break;
        }
    return 0;
}

static int map_set(sync_t *s, uint64_t peer_id, int state, uint64_t a,
                   uint64_t b)
{
    map_chunk_t *c = map_chunk(s, peer_id);
    uint16_t lo = (uint16_t)(peer_id % MAP_SPAN);
    if (!c)
        return -1;
    size_t i = 0;
    while (i < c->n && c->e[i].lo < lo)
        i++;
    int found = i < c->n && c->e[i].lo == lo;
    if (state == M_NONE) {
        if (found) {
            memmove(c->e + i, c->e + i + 1, (c->n - i - 1) * sizeof *c->e);
            c->n--;
            c->dirty = 1;
        }
        return 0;
    }
    if (!found) {
        memmove(c->e + i + 1, c->e + i, (c->n - i) * sizeof *c->e);
        c->n++;
    }
    map_ent_t e = {lo, (uint8_t)state, a, state == M_PENDING ? b : 0};
    c->e[i] = e;
    c->dirty = 1;
    return 0;
}

/* Writes the changed records, one transaction each. */
static int map_flush(sync_t *s)
{
    uint8_t *rec = malloc(MAP_REC_MAX);
    char key[300];
    int rc = CORDON_OK;
    if (!rec) {
        cli_error("sync", "out of memory");
        return -1;
    }
    for (size_t i = 0; i < s->nchunks && rc == CORDON_OK; i++) {
        map_chunk_t *c = s->chunks[i];
        if (!c->dirty)
            continue;
        map_key(s, c->no, key, sizeof key);
        if (c->n) {
            rc = hdb_kv_set(s->db, key, rec, map_encode(c, rec));
        } else {
            rc = hdb_kv_del(s->db, key);
            if (rc == CORDON_ENOTFOUND)
                rc = CORDON_OK;
        }
        if (rc == CORDON_OK)
            c->dirty = 0;
    }
    free(rec);
    if (rc != CORDON_OK) {
        cli_error(hdb_path(s->db), "writing the sync map: %s",
                  cordon_strerror(rc));
        return -1;
    }
    return 0;
}

static void map_drop(sync_t *s)
{
    for (size_t i = 0; i < s->nchunks; i++)
        free(s->chunks[i]);
    s->nchunks = 0;
}

/* ---------------------------------------------------------------- */
/* Items as stored here                                               */

/* The local form of a peer item: the peer's fields, our provenance. */
static hdb_item_t local_form(const sync_t *s, const hdb_item_t *p)
{
    hdb_item_t it = *p;
    it.id = 0;
    it.bank_id = 0;
    it.deleted = 0;
    it.created = it.updated = 0;
    it.seq = 0;
    it.prov.source = HDB_SOURCE_PEER;
    it.prov.source_name = s->o->url;
    return it;
}

/* 64 bits of the SHA-256 of an item's canonical JSON, without the fields
 * a write sets (id, times, sequence) or may fill in (added_at). */
static int item_fp(const hdb_item_t *in, uint64_t *fp)
{
    hdb_item_t it = *in;
    it.id = 0;
    it.deleted = 0;
    it.prov.added_at = 0;
    json_t *j = hdbjson_item(&it);
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    if (!text)
        return -1;
    uint8_t d[32];
    int rc = cordon_digest((const uint8_t *)text, strlen(text), NULL, d);
    free(text);
    if (rc)
        return -1;
    *fp = get_le(d, 8);
    return 0;
}

typedef struct {
    uint64_t fp, id, seq;
    int used;
} cand_t;

typedef struct {
    const char *url;
    cand_t *v;
    size_t n, cap;
    int oom;
} cands_t;

static int cand_cb(void *ctx, const hdb_change_t *c)
{
    cands_t *cs = ctx;
    const hdb_item_t *it = c->item;
    if (c->kind != HDB_CHANGE_ITEM_ADD || !it ||
        it->prov.source != HDB_SOURCE_PEER || !it->prov.source_name ||
        strcmp(it->prov.source_name, cs->url) != 0)
        return 0;
    if (cs->n == cs->cap) {
        size_t cap = cs->cap ? 2 * cs->cap : 64;
        cand_t *nv = realloc(cs->v, cap * sizeof *nv);
        if (!nv) {
            cs->oom = 1;
            return 1;
        }
        cs->v = nv;
        cs->cap = cap;
    }
    cand_t *d = &cs->v[cs->n];
    if (item_fp(it, &d->fp)) {
        cs->oom = 1;
        return 1;
    }
    d->id = it->id;
    d->seq = c->seq;
    d->used = 0;
    cs->n++;
    return 0;
}

/* Settles the PENDING entries of this page's items (see the top comment):
 * each becomes OWNED (its add committed) or is cleared. */
static int resolve_pending(sync_t *s, const hdbjson_feed_t *f)
{
    uint64_t from = UINT64_MAX;
    map_ent_t e;
    for (size_t i = 0; i < f->n; i++) {
        const hdb_item_t *it = f->changes[i].change.item;
        if (!it)
            continue;
        if (map_get(s, it->id, &e))
            return -1;
        if (e.state == M_PENDING && e.a < from)
            from = e.a;
    }
    if (from == UINT64_MAX)
        return 0;
    cands_t cs = {s->o->url, NULL, 0, 0, 0};
    int rc = hdb_changes_since(s->db, from, 0, cand_cb, &cs, NULL);
    if (rc != CORDON_OK || cs.oom) {
        cli_error(hdb_path(s->db), "recovering an interrupted sync: %s",
                  cs.oom ? "out of memory" : cordon_strerror(rc));
        free(cs.v);
        return -1;
    }
    size_t adopted = 0, cleared = 0;
    for (size_t i = 0; i < f->n && rc == 0; i++) {
        const hdb_item_t *it = f->changes[i].change.item;
        if (!it || map_get(s, it->id, &e) || e.state != M_PENDING)
            continue;
        size_t k = 0;
        while (k < cs.n &&
               (cs.v[k].used || cs.v[k].fp != e.b || cs.v[k].seq <= e.a))
            k++;
        if (k < cs.n) {
            cs.v[k].used = 1;
            rc = map_set(s, it->id, M_OWNED, cs.v[k].id, 0);
            adopted++;
        } else {
            rc = map_set(s, it->id, M_NONE, 0, 0);
            cleared++;
        }
    }
    free(cs.v);
    fprintf(stderr,
            "cordon: sync: %s: recovered an interrupted run: %zu items "
            "adopted, %zu to add again\n",
            s->o->url, adopted, cleared);
    return rc;
}

/* ---------------------------------------------------------------- */
/* Banks                                                              */

static int same_labels(const char *const *a, size_t na, const char *const *b,
                       size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return 0;
    return 1;
}

static int bank_fail(const sync_t *s, const char *name, int rc)
{
    cli_error(hdb_path(s->db), "bank '%s': %s", name, cordon_strerror(rc));
    return -1;
}

/* Creates the bank if missing (with the peer's attributes when known, else
 * enabled and bare) and, with mirror, makes its attributes the peer's. */
static int ensure_bank(sync_t *s, const char *name, const hdb_bank_t *peer)
{
    hdb_bank_t *cur = NULL;
    int rc = hdb_bank_get(s->db, name, &cur);
    if (rc == CORDON_ENOTFOUND) {
        hdb_bank_spec_t spec = {name, 1, NULL, NULL, 0};
        if (peer) {
            spec.enabled = peer->enabled;
            spec.default_action = peer->default_action && *peer->default_action
                                      ? peer->default_action
                                      : NULL;
            spec.labels = peer->labels;
            spec.nlabels = peer->nlabels;
        }
        rc = hdb_bank_create(s->db, &spec, NULL);
        if (rc == CORDON_OK)
            s->round.banks++;
        /* Someone else made it meanwhile: mirror below next time. */
        return rc == CORDON_OK || rc == CORDON_EEXIST ? 0
                                                      : bank_fail(s, name, rc);
    }
    if (rc != CORDON_OK)
        return bank_fail(s, name, rc);
    int changed = 0;
    if (peer) {
        const char *act = peer->default_action ? peer->default_action : "";
        /* Every set is logged, so only real differences are written. */
        if (!cur->enabled != !peer->enabled) {
            rc = hdb_bank_set_enabled(s->db, name, peer->enabled);
            changed = 1;
        }
        if (rc == CORDON_OK && !same_labels(cur->labels, cur->nlabels,
                                            peer->labels, peer->nlabels)) {
            rc = hdb_bank_set_labels(s->db, name, peer->labels, peer->nlabels);
            changed = 1;
        }
        if (rc == CORDON_OK && strcmp(cur->default_action, act) != 0) {
            rc = hdb_bank_set_default_action(s->db, name, *act ? act : NULL);
            changed = 1;
        }
    }
    hdb_free(cur);
    if (rc != CORDON_OK)
        return bank_fail(s, name, rc);
    if (changed)
        s->round.banks++;
    return 0;
}

static int bank_wanted(const sync_t *s, const char *name)
{
    return !s->o->bank || strcmp(s->o->bank, name) == 0;
}

/* ---------------------------------------------------------------- */
/* Applying a page                                                    */

enum { A_NONE, A_ADD, A_PUT, A_REMOVE };

static int apply_adds(sync_t *s, const hdbjson_feed_t *f, const int *act,
                      size_t nadd)
{
    hdb_batch_t *b = NULL;
    hdb_add_result_t *res = NULL;
    uint64_t before = 0, fp;
    int rc;
    if (!nadd)
        return 0;
    if ((rc = hdb_batch_begin(s->db, &b)) != CORDON_OK)
        goto db_fail;
    for (size_t i = 0; i < f->n; i++) {
        if (act[i] != A_ADD)
            continue;
        const hdb_item_t *p = f->changes[i].change.item;
        hdb_item_t it = local_form(s, p);
        hdb_item_spec_t spec = {it.bank,    it.labels,  it.nlabels,
                                it.note,    it.prov,    it.disable_until,
                                it.signals, it.nsignals};
        if ((rc = hdb_batch_add(b, &spec, HDB_ADD_DEDUP_VPDQ)) != CORDON_OK) {
            cli_error(s->o->url, "item %llu (seq %llu) refused: %s",
                      (unsigned long long)p->id,
                      (unsigned long long)f->changes[i].change.seq,
                      cordon_strerror(rc));
            goto fail;
        }
    }
    if ((rc = hdb_last_seq(s->db, &before)) != CORDON_OK)
        goto db_fail;
    for (size_t i = 0; i < f->n; i++) {
        if (act[i] != A_ADD)
            continue;
        const hdb_item_t *p = f->changes[i].change.item;
        hdb_item_t it = local_form(s, p);
        if (item_fp(&it, &fp) || map_set(s, p->id, M_PENDING, before, fp)) {
            cli_error("sync", "out of memory");
            goto fail;
        }
    }
    if (map_flush(s))
        goto fail;
    if (!(res = calloc(nadd, sizeof *res))) {
        cli_error("sync", "out of memory");
        goto fail;
    }
    /* Test hook: die where a crash would hurt most (tests/test_sync.c). */
    const char *fault = getenv("CORDON__SYNC_FAULT");
    if (fault && strcmp(fault, "before-batch") == 0)
        _exit(3);
    rc = hdb_batch_commit(b, res, NULL);
    b = NULL;
    if (rc == CORDON_OK && fault && strcmp(fault, "after-batch") == 0)
        _exit(3);
    if (rc != CORDON_OK) {
        /* Nothing was written: take the PENDING marks back if we can. */
        for (size_t i = 0; i < f->n; i++)
            if (act[i] == A_ADD)
                map_set(s, f->changes[i].change.item->id, M_NONE, 0, 0);
        map_flush(s);
        goto db_fail;
    }
    for (size_t i = 0, k = 0; i < f->n; i++) {
        if (act[i] != A_ADD)
            continue;
        int dup = res[k].duplicate;
        map_set(s, f->changes[i].change.item->id, dup ? M_DUP : M_OWNED,
                res[k].id, 0);
        if (dup)
            s->round.skipped++;
        else
            s->round.adds++;
        k++;
    }
    free(res);
    return map_flush(s);
db_fail:
    cli_error(hdb_path(s->db), "adding items: %s", cordon_strerror(rc));
fail:
    hdb_batch_abort(b);
    free(res);
    return -1;
}

/* Decides what to do with each item change; -1 on errors. */
static int classify(sync_t *s, const hdbjson_feed_t *f, int *act, size_t *nadd)
{
    *nadd = 0;
    for (size_t i = 0; i < f->n; i++) {
        const hdb_item_t *p = f->changes[i].change.item;
        map_ent_t e;
        act[i] = A_NONE;
        if (!p)
            continue;
        if (map_get(s, p->id, &e))
            return -1;
        int wanted = bank_wanted(s, p->bank);
        if (e.state == M_OWNED) {
            if (p->deleted || !wanted) {
                act[i] = A_REMOVE;
                continue;
            }
            hdb_item_t *cur = NULL;
            int rc = hdb_item_get(s->db, e.a, &cur);
            if (rc == CORDON_OK && cur->deleted) {
                s->round.skipped++; /* deleted here: stays deleted */
            } else if (rc == CORDON_OK) {
                act[i] = A_PUT;
            } else if (rc == CORDON_ENOTFOUND) {
                act[i] = A_ADD; /* the map outlived its item: add again */
                (*nadd)++;
            } else {
                cli_error(hdb_path(s->db), "item %llu: %s",
                          (unsigned long long)e.a, cordon_strerror(rc));
                return -1;
            }
            hdb_free(cur);
        } else if (e.state == M_DUP || p->deleted ||
                   (s->o->no_relay && p->prov.source == HDB_SOURCE_PEER)) {
            s->round.skipped++;
        } else if (!wanted) {
            s->round.filtered++;
        } else {
            act[i] = A_ADD;
            (*nadd)++;
        }
    }
    return 0;
}

static int apply_page(sync_t *s, const hdbjson_feed_t *f)
{
    int *act = calloc(f->n ? f->n : 1, sizeof *act);
    size_t nadd = 0;
    int rc = -1;
    if (!act) {
        cli_error("sync", "out of memory");
        return -1;
    }
    /* Banks first, so that items find theirs with the peer's attributes. */
    for (size_t i = 0; i < f->n; i++) {
        const hdb_change_t *c = &f->changes[i].change;
        if (!c->bank || c->kind == HDB_CHANGE_BANK_DELETE)
            continue;
        if (!bank_wanted(s, c->bank->name))
            s->round.filtered++;
        else if (ensure_bank(s, c->bank->name, c->bank))
            goto fail;
    }
    if (resolve_pending(s, f) || classify(s, f, act, &nadd))
        goto fail;
    for (size_t i = 0; i < f->n; i++)
        if ((act[i] == A_ADD || act[i] == A_PUT) &&
            ensure_bank(s, f->changes[i].change.item->bank, NULL))
            goto fail;
    if (apply_adds(s, f, act, nadd))
        goto fail;
    for (size_t i = 0; i < f->n; i++) {
        const hdb_item_t *p = f->changes[i].change.item;
        map_ent_t e;
        int hrc;
        if (act[i] != A_PUT && act[i] != A_REMOVE)
            continue;
        if (map_get(s, p->id, &e))
            goto fail;
        if (act[i] == A_PUT) {
            hdb_item_t it = local_form(s, p);
            it.id = e.a;
            hrc = hdb_item_put(s->db, &it, NULL);
            if (hrc == CORDON_OK)
                s->round.updates++;
        } else {
            hrc = hdb_item_remove(s->db, e.a, NULL);
            if (hrc == CORDON_OK)
                s->round.deletes++;
            else if (hrc == CORDON_ENOTFOUND) {
                s->round.skipped++; /* already deleted here */
                hrc = CORDON_OK;
            }
        }
        if (hrc != CORDON_OK) {
            cli_error(hdb_path(s->db), "item %llu (peer %llu): %s",
                      (unsigned long long)e.a, (unsigned long long)p->id,
                      cordon_strerror(hrc));
            goto fail;
        }
    }
    /* Bank deletes last: their items' tombstones come before them. */
    for (size_t i = 0; i < f->n; i++) {
        const hdb_change_t *c = &f->changes[i].change;
        if (!c->bank || c->kind != HDB_CHANGE_BANK_DELETE)
            continue;
        if (!bank_wanted(s, c->bank->name)) {
            s->round.filtered++;
            continue;
        }
        /* A bank of the same name made again later in this page. */
        int reborn = 0;
        for (size_t k = i + 1; k < f->n; k++) {
            const hdb_bank_t *b = f->changes[k].change.bank;
            reborn |= b && !b->deleted && strcmp(b->name, c->bank->name) == 0;
        }
        if (reborn)
            continue;
        int hrc = hdb_bank_delete(s->db, c->bank->name);
        if (hrc == CORDON_OK) {
            s->round.banks++;
        } else if (hrc == CORDON_EBUSY) {
            fprintf(stderr,
                    "cordon: sync: %s: bank '%s' was deleted there but "
                    "holds local items here: kept\n",
                    s->o->url, c->bank->name);
            s->round.skipped++;
        } else if (hrc != CORDON_ENOTFOUND) {
            bank_fail(s, c->bank->name, hrc);
            goto fail;
        }
    }
    rc = map_flush(s);
fail:
    map_drop(s);
    free(act);
    return rc;
}

/* ---------------------------------------------------------------- */
/* HTTP                                                               */

static size_t body_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    body_t *b = ud;
    size_t n = size * nmemb;
    if (n > b->max - b->len) {
        b->too_big = 1;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np)
            return 0;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, ptr, n);
    b->len += n;
    b->p[b->len] = 0;
    return n;
}

static int xfer_cb(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut,
                   curl_off_t un)
{
    (void)ud;
    (void)dt;
    (void)dn;
    (void)ut;
    (void)un;
    return stop_sig ? 1 : 0;
}

static int http_init(sync_t *s)
{
    char auth[KEY_MAX + 32];
    CURL *c = s->curl = curl_easy_init();
    if (!c) {
        cli_error("sync", "libcurl failed to start");
        return -1;
    }
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", s->o->key);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    memset(auth, 0, sizeof auth);
    if (h) {
        s->headers = h;
        h = curl_slist_append(h, "Accept: application/json");
    }
    if (!h) {
        cli_error("sync", "out of memory");
        return -1;
    }
    s->body.max = s->o->max_bytes;
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, s->headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s->body);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, s->curl_err);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, s->o->timeout);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT,
                     s->o->timeout < 10 ? s->o->timeout : 10L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)s->o->max_bytes);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, xfer_cb);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "cordon-sync/" CORDON_VERSION);
    return 0;
}

/* A short, printable excerpt of an error response: its "error" member
 * when it is JSON, else its first line. */
static void error_excerpt(const body_t *b, char *out, size_t cap)
{
    out[0] = 0;
    if (!b->len)
        return;
    json_t *j = json_loadb(b->p, b->len, 0, NULL);
    const char *msg = json_string_value(json_object_get(j, "error"));
    const char *src = msg ? msg : b->p;
    size_t n = 0;
    for (; src[n] && n + 1 < cap && n < 160 && src[n] != '\n'; n++)
        out[n] = (src[n] >= 0x20 && src[n] < 0x7f) ? src[n] : '?';
    out[n] = 0;
    json_decref(j);
}

/* One request for the page after s->since. Prints what went wrong. */
static int fetch(sync_t *s, char *why, size_t whycap)
{
    char url[URL_MAX + 80], excerpt[200];
    long status = 0;
    snprintf(url, sizeof url, "%s/v1/feed?since=%llu&limit=%u", s->o->url,
             (unsigned long long)s->since, s->limit);
    s->body.len = 0;
    s->body.too_big = 0;
    s->curl_err[0] = 0;
    curl_easy_setopt(s->curl, CURLOPT_URL, url);
    CURLcode cc = curl_easy_perform(s->curl);
    if (cc == CURLE_ABORTED_BY_CALLBACK && stop_sig)
        return S_STOP;
    if (s->body.too_big || cc == CURLE_FILESIZE_EXCEEDED)
        return S_TOOBIG;
    if (cc != CURLE_OK) {
        snprintf(why, whycap, "%s",
                 s->curl_err[0] ? s->curl_err : curl_easy_strerror(cc));
        switch (cc) {
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_BAD_CONTENT_ENCODING:
        case CURLE_OUT_OF_MEMORY:
            return S_FATAL;
        default:
            return S_TRANSIENT;
        }
    }
    curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status == 200)
        return S_OK;
    error_excerpt(&s->body, excerpt, sizeof excerpt);
    if (status == 401 || status == 403) {
        snprintf(why, whycap, "the peer refused the key (HTTP %ld%s%s)", status,
                 *excerpt ? ": " : "", excerpt);
        return S_FATAL;
    }
    snprintf(why, whycap, "HTTP %ld%s%s", status, *excerpt ? ": " : "",
             excerpt);
    return status == 408 || status == 429 || status >= 500 ? S_TRANSIENT
                                                           : S_FATAL;
}

/* Fetches and loads the next page, retrying transient failures. */
static int fetch_page(sync_t *s, json_t **out)
{
    char why[512];
    unsigned failures = 0;
    *out = NULL;
    for (;;) {
        why[0] = 0;
        int rc = fetch(s, why, sizeof why);
        if (rc == S_STOP)
            return S_STOP;
        if (rc == S_TOOBIG) {
            if (s->limit == 1) {
                cli_error(s->o->url,
                          "a single change after seq %llu exceeds "
                          "--max-bytes %zu",
                          (unsigned long long)s->since, s->o->max_bytes);
                return S_FATAL;
            }
            s->limit = (s->limit + 1) / 2;
            continue;
        }
        if (rc == S_OK) {
            json_error_t e;
            *out =
                json_loadb(s->body.p, s->body.len, JSON_REJECT_DUPLICATES, &e);
            if (*out)
                return S_OK;
            cli_error(s->o->url,
                      "malformed JSON in the page after seq %llu: line %d: %s",
                      (unsigned long long)s->since, e.line, e.text);
            return S_FATAL;
        }
        if (rc == S_FATAL || failures >= s->o->retries) {
            if (rc == S_TRANSIENT && failures)
                cli_error(s->o->url, "%s (gave up after %u attempts)", why,
                          failures + 1);
            else
                cli_error(s->o->url, "%s", why);
            return S_FATAL;
        }
        unsigned wait = failures < 6 ? 1u << failures : BACKOFF_MAX;
        if (wait > BACKOFF_MAX)
            wait = BACKOFF_MAX;
        fprintf(stderr, "cordon: %s: %s; retrying in %u s\n", s->o->url, why,
                wait);
        failures++;
        nap(wait);
        if (stop_sig)
            return S_STOP;
    }
}

/* ---------------------------------------------------------------- */
/* Checkpoints and the pull loop                                      */

static int load_checkpoint(sync_t *s)
{
    char buf[32];
    size_t len = 0;
    int rc = hdb_kv_get(s->db, s->ckpt_key, buf, sizeof buf - 1, &len);
    s->since = 0;
    if (rc == CORDON_ENOTFOUND)
        return 0;
    if (rc == CORDON_OK) {
        buf[len] = 0;
        if (len && cli_parse_u64(buf, &s->since) == 0)
            return 0;
        rc = CORDON_ECORRUPT;
    }
    cli_error(hdb_path(s->db), "reading checkpoint %s: %s", s->ckpt_key,
              cordon_strerror(rc));
    return -1;
}

static int save_checkpoint(sync_t *s, uint64_t seq)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%llu", (unsigned long long)seq);
    int rc = hdb_kv_set(s->db, s->ckpt_key, buf, (size_t)n);
    if (rc != CORDON_OK) {
        cli_error(hdb_path(s->db), "writing checkpoint: %s",
                  cordon_strerror(rc));
        return -1;
    }
    s->since = seq;
    return 0;
}

static void add_counts(counts_t *t, const counts_t *r)
{
    t->adds += r->adds;
    t->updates += r->updates;
    t->deletes += r->deletes;
    t->skipped += r->skipped;
    t->filtered += r->filtered;
    t->banks += r->banks;
}

static void show_progress(sync_t *s)
{
    if (s->o->json || !cli_progress_enabled())
        return;
    fprintf(stderr, "\rcordon: sync: seq %llu of %llu ",
            (unsigned long long)s->since, (unsigned long long)s->last_seq);
    s->progress_shown = 1;
}

static void end_progress(sync_t *s)
{
    if (s->progress_shown)
        fprintf(stderr, "\r\033[K");
    s->progress_shown = 0;
}

/* Pulls pages until caught up: S_OK, S_FATAL or S_STOP. */
static int pull(sync_t *s)
{
    hdbjson_feed_t f = {0};
    for (;;) {
        json_t *j = NULL;
        if (stop_sig)
            return S_STOP;
        int rc = fetch_page(s, &j);
        if (rc != S_OK)
            return rc;
        rc = hdbjson_feed_parse(j, s->since, s->limit, &f);
        json_decref(j);
        if (rc != CORDON_OK) {
            cli_error(s->o->url, "bad page after seq %llu: %s",
                      (unsigned long long)s->since, f.error);
            hdbjson_feed_free(&f);
            return S_FATAL;
        }
        counts_t before = s->round;
        if (apply_page(s, &f)) {
            s->round = before; /* the summary counts what is certain */
            hdbjson_feed_free(&f);
            return S_FATAL;
        }
        uint64_t old = s->since;
        s->last_seq = f.last_seq;
        int done = !f.more || (f.n == 0 && f.next == old);
        if (f.next != old && save_checkpoint(s, f.next)) {
            hdbjson_feed_free(&f);
            return S_FATAL;
        }
        hdbjson_feed_free(&f);
        show_progress(s);
        if (done)
            return S_OK;
    }
}

static void summary(const sync_t *s, const counts_t *c, int final)
{
    if (s->o->json) {
        json_t *j =
            json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}",
                      "peer", s->o->url, "adds", (json_int_t)c->adds, "updates",
                      (json_int_t)c->updates, "deletes", (json_int_t)c->deletes,
                      "skipped", (json_int_t)c->skipped, "other_banks",
                      (json_int_t)c->filtered, "banks", (json_int_t)c->banks,
                      "checkpoint", (json_int_t)s->since, "peer_last_seq",
                      (json_int_t)s->last_seq, "final", final);
        char *t = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (t)
            puts(t);
        free(t);
        json_decref(j);
    } else {
        char when[32] = "";
        if (s->o->follow && !final) {
            time_t now = time(NULL);
            struct tm tm;
            if (gmtime_r(&now, &tm))
                strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ ", &tm);
        }
        printf("%ssync %s: applied %llu adds, %llu updates, %llu deletes; "
               "checkpoint %llu (peer at %llu; %llu skipped, %llu other-bank, "
               "%llu bank changes)\n",
               when, s->o->url, (unsigned long long)c->adds,
               (unsigned long long)c->updates, (unsigned long long)c->deletes,
               (unsigned long long)s->since, (unsigned long long)s->last_seq,
               (unsigned long long)c->skipped, (unsigned long long)c->filtered,
               (unsigned long long)c->banks);
    }
    fflush(stdout);
}

/* ---------------------------------------------------------------- */
/* Options                                                            */

static int parse_uint(const char *opt, const char *s, uint64_t lo, uint64_t hi,
                      uint64_t *out)
{
    if (cli_parse_u64(s, out) != 0 || *out < lo || *out > hi) {
        cli_error("sync", "%s must be %llu..%llu", opt, (unsigned long long)lo,
                  (unsigned long long)hi);
        return -1;
    }
    return 0;
}

static int set_url(sync_opts_t *o, const char *url)
{
    size_t n = strlen(url);
    while (n && url[n - 1] == '/')
        n--;
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        cli_error("sync", "--from must be an http:// or https:// URL");
        return -1;
    }
    if (n > URL_MAX) {
        cli_error("sync", "--from is longer than %d bytes", URL_MAX);
        return -1;
    }
    /* No blanks: the kv keys use a space to end the URL. */
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f || url[i] == '?' ||
            url[i] == '#') {
            cli_error("sync", "--from holds a blank, control character, "
                              "query or fragment");
            return -1;
        }
    memcpy(o->url, url, n);
    o->url[n] = 0;
    return 0;
}

static int set_key(sync_opts_t *o, const char *k, size_t n, const char *from)
{
    while (n && (k[n - 1] == '\n' || k[n - 1] == '\r' || k[n - 1] == ' ' ||
                 k[n - 1] == '\t'))
        n--;
    if (!n || n > KEY_MAX) {
        cli_error("sync", "the key (%s) must be 1..%d characters", from,
                  KEY_MAX);
        return -1;
    }
    /* Printable ASCII only: it goes into an HTTP header. */
    for (size_t i = 0; i < n; i++)
        if (k[i] <= 0x20 || k[i] >= 0x7f) {
            cli_error("sync",
                      "the key (%s) holds a blank or a character "
                      "that is not printable ASCII",
                      from);
            return -1;
        }
    memcpy(o->key, k, n);
    o->key[n] = 0;
    return 0;
}

static int read_key_file(sync_opts_t *o, const char *path)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = cli_read_file(path, 4096, &buf, &len);
    if (rc != CORDON_OK) {
        cli_error(path, "%s",
                  rc == CORDON_EIO ? strerror(errno) : cordon_strerror(rc));
        return -1;
    }
    const char *nl = memchr(buf, '\n', len);
    if (nl && (size_t)(nl - (const char *)buf) + 1 < len) {
        /* Only a first line followed by nothing but blanks is a key. */
        for (const char *p = nl; p < (const char *)buf + len; p++)
            if (*p != '\n' && *p != '\r' && *p != ' ' && *p != '\t') {
                cli_error(path, "expected the key alone on one line");
                free(buf);
                return -1;
            }
    }
    rc = set_key(o, (const char *)buf,
                 nl ? (size_t)(nl - (const char *)buf) : len, path);
    memset(buf, 0, len);
    free(buf);
    return rc;
}

/* The host part of "host[:port][/path]" is a loopback address. */
static int is_loopback(const char *hostport)
{
    static const char *const hosts[] = {"127.0.0.1", "localhost", "[::1]"};
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        size_t n = strlen(hosts[i]);
        if (strncmp(hostport, hosts[i], n) == 0 &&
            (hostport[n] == 0 || hostport[n] == ':' || hostport[n] == '/'))
            return 1;
    }
    return 0;
}

static int lock_peer(const char *db, const char *url)
{
    uint8_t d[32];
    char hex[17], *path;
    cordon_digest((const uint8_t *)url, strlen(url), NULL, d);
    hex_prefix(d, 8, hex);
    size_t n = strlen(db) + 40;
    if (!(path = malloc(n))) {
        cli_error("sync", "out of memory");
        return -1;
    }
    snprintf(path, n, "%s.sync-%s.lock", db, hex);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        cli_error(path, "%s", strerror(errno));
        free(path);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            cli_error(db, "another cordon sync from %s is running (%s)", url,
                      path);
        else
            cli_error(path, "%s", strerror(errno));
        close(fd);
        free(path);
        return -1;
    }
    free(path);
    return fd;
}

int cmd_sync(int argc, char **argv)
{
    enum {
        O_FROM = 256,
        O_KEY,
        O_KEYFILE,
        O_BANK,
        O_ONCE,
        O_FOLLOW,
        O_INTERVAL,
        O_LIMIT,
        O_TIMEOUT,
        O_RETRIES,
        O_MAXBYTES,
        O_DB,
        O_JSON,
        O_NORELAY
    };
    static const struct option lopts[] = {
        {"from", required_argument, NULL, O_FROM},
        {"key", required_argument, NULL, O_KEY},
        {"key-file", required_argument, NULL, O_KEYFILE},
        {"bank", required_argument, NULL, O_BANK},
        {"once", no_argument, NULL, O_ONCE},
        {"follow", no_argument, NULL, O_FOLLOW},
        {"interval", required_argument, NULL, O_INTERVAL},
        {"limit", required_argument, NULL, O_LIMIT},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"retries", required_argument, NULL, O_RETRIES},
        {"max-bytes", required_argument, NULL, O_MAXBYTES},
        {"db", required_argument, NULL, O_DB},
        {"json", no_argument, NULL, O_JSON},
        {"no-relay", no_argument, NULL, O_NORELAY},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    sync_opts_t o;
    const char *from = NULL, *key = NULL, *key_file = NULL;
    uint64_t v;
    int c, once = 0;

    memset(&o, 0, sizeof o);
    o.interval = 5;
    o.limit = HDBJSON_FEED_LIMIT_DEFAULT;
    o.timeout = 60;
    o.retries = 5;
    o.max_bytes = MAX_BYTES_DEFAULT;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
        switch (c) {
        case O_FROM:
            from = optarg;
            break;
        case O_KEY:
            key = optarg;
            break;
        case O_KEYFILE:
            key_file = optarg;
            break;
        case O_BANK:
            o.bank = optarg;
            break;
        case O_ONCE:
            once = 1;
            break;
        case O_FOLLOW:
            o.follow = 1;
            break;
        case O_INTERVAL:
            if (parse_uint("--interval", optarg, 1, 86400, &v))
                return CLI_ERR;
            o.interval = (unsigned)v;
            break;
        case O_LIMIT:
            if (parse_uint("--limit", optarg, 1, HDBJSON_FEED_LIMIT_MAX, &v))
                return CLI_ERR;
            o.limit = (unsigned)v;
            break;
        case O_TIMEOUT:
            if (parse_uint("--timeout", optarg, 1, 3600, &v))
                return CLI_ERR;
            o.timeout = (long)v;
            break;
        case O_RETRIES:
            if (parse_uint("--retries", optarg, 0, 100, &v))
                return CLI_ERR;
            o.retries = (unsigned)v;
            break;
        case O_MAXBYTES:
            if (parse_uint("--max-bytes", optarg, 4096, (uint64_t)1 << 32, &v))
                return CLI_ERR;
            o.max_bytes = (size_t)v;
            break;
        case O_DB:
            o.db = optarg;
            break;
        case O_JSON:
            o.json = 1;
            break;
        case O_NORELAY:
            o.no_relay = 1;
            break;
        case 'h':
            usage(stdout);
            return CLI_OK;
        default:
            usage(stderr);
            return CLI_ERR;
        }
    }
    if (optind != argc) {
        cli_error("sync", "unexpected argument '%s'", argv[optind]);
        return CLI_ERR;
    }
    if (once && o.follow) {
        cli_error("sync", "--once and --follow exclude each other");
        return CLI_ERR;
    }
    if (!from) {
        cli_error("sync", "--from URL is required");
        return CLI_ERR;
    }
    if (set_url(&o, from))
        return CLI_ERR;
    if ((key != NULL) + (key_file != NULL) > 1) {
        cli_error("sync", "give either --key or --key-file");
        return CLI_ERR;
    }
    if (!key && !key_file)
        key = getenv("CORDON_SYNC_KEY");
    if (key_file ? read_key_file(&o, key_file)
        : key    ? set_key(&o, key, strlen(key), "--key")
                 : (cli_error("sync", "--key, --key-file or "
                                         "$CORDON_SYNC_KEY is required"),
                 -1))
        return CLI_ERR;
    if (strncmp(o.url, "http://", 7) == 0 && !is_loopback(o.url + 7))
        fprintf(stderr,
                "cordon: sync: warning: %s is plain http: the key "
                "and the hashes cross the network unencrypted\n",
                o.url);
    if (o.bank && (!*o.bank || strlen(o.bank) > HDB_MAX_NAME)) {
        cli_error("sync", "--bank must be 1..%d bytes", HDB_MAX_NAME);
        return CLI_ERR;
    }
    o.db = cli_db_path(o.db);

    sync_t s;
    memset(&s, 0, sizeof s);
    s.o = &o;
    s.limit = o.limit;
    snprintf(s.ckpt_key, sizeof s.ckpt_key, "sync:%s", o.url);
    if (o.bank) {
        snprintf(s.ckpt_key, sizeof s.ckpt_key, "sync:%s bank:%s", o.url,
                 o.bank);
        if (!key_len_ok(s.ckpt_key)) {
            uint8_t d[32];
            char hex[33];
            cordon_digest((const uint8_t *)o.bank, strlen(o.bank), NULL, d);
            hex_prefix(d, 16, hex);
            snprintf(s.ckpt_key, sizeof s.ckpt_key, "sync:%s bank#%s", o.url,
                     hex);
        }
    }

    int ret = CLI_ERR, lock_fd = -1, curl_up = 0;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    if ((lock_fd = lock_peer(o.db, o.url)) < 0)
        goto out;
    if (cli_db_open(o.db, CLI_DB_WRITE, &s.db) != CLI_OK)
        goto out;
    if (load_checkpoint(&s))
        goto out;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        cli_error("sync", "libcurl failed to start");
        goto out;
    }
    curl_up = 1;
    if (http_init(&s))
        goto out;
    s.last_seq = s.since;

    for (;;) {
        memset(&s.round, 0, sizeof s.round);
        int rc = pull(&s);
        add_counts(&s.total, &s.round);
        end_progress(&s);
        if (rc == S_FATAL)
            break;
        if (!o.follow) {
            if (rc == S_STOP)
                cli_error(o.url, "interrupted before catching up");
            else
                ret = CLI_OK;
            break;
        }
        const counts_t *r = &s.round;
        if (r->adds || r->updates || r->deletes || r->banks)
            summary(&s, r, 0);
        if (rc == S_STOP || stop_sig) {
            ret = CLI_OK;
            break;
        }
        nap(o.interval);
        if (stop_sig) {
            ret = CLI_OK;
            break;
        }
    }
    /* After an error, a summary only when something was applied before. */
    if (ret == CLI_OK || s.total.adds || s.total.updates || s.total.deletes ||
        s.total.banks)
        summary(&s, &s.total, 1);
out:
    if (s.curl)
        curl_easy_cleanup(s.curl);
    curl_slist_free_all(s.headers);
    if (curl_up)
        curl_global_cleanup();
    free(s.body.p);
    free(s.chunks);
    hdb_close(s.db);
    if (lock_fd >= 0)
        close(lock_fd);
    memset(o.key, 0, sizeof o.key);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    return ret;
}
