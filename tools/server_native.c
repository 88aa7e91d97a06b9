/* server_native.c - Cordon's own endpoints: POST /v1/check (the
 * upload-time call) and the API-key administration under /v1/keys. The
 * change feed is in server_feed.c. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "server.h"

/* Most matches one check reports (the best ones; "truncated" says so). */
#define CHECK_MAX_HITS 100
/* Banks remembered while one answer is built. */
#define BANK_CACHE 8

typedef struct {
    hdb_bank_t *b[BANK_CACHE];
    size_t n;
} bank_cache_t;

static const hdb_bank_t *cached_bank(srv_req_t *r, bank_cache_t *c,
                                     const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->b[i]->name, name))
            return c->b[i];
    hdb_bank_t *b = NULL;
    if (hdb_bank_get(r->srv->db, name, &b) != CORDON_OK)
        return NULL;
    if (c->n == BANK_CACHE) {
        hdb_free(c->b[0]);
        memmove(c->b, c->b + 1, (BANK_CACHE - 1) * sizeof c->b[0]);
        c->n--;
    }
    c->b[c->n++] = b;
    return b;
}

static json_t *check_hashes_json(const cordon_image_hashes_t *h)
{
    char pdq[65], md5[33], sha[65];
    cordon_hash_to_hex(&h->pdq, pdq);
    cordon_hex_encode(h->md5, sizeof h->md5, md5);
    cordon_hex_encode(h->sha256, sizeof h->sha256, sha);
    return json_pack("{s:s, s:i, s:s, s:s, s:s, s:i, s:i}", "pdq", pdq,
                     "quality", h->quality, "md5", md5, "sha256", sha, "format",
                     cordon_format_name(h->format), "width", h->width, "height",
                     h->height);
}

/* The matches as JSON objects, dropping items deleted since the index
 * answered; counts them per bank for the metrics. */
static json_t *matches_json(srv_req_t *r, const srv_found_list_t *f)
{
    bank_cache_t banks = {{0}, 0};
    json_t *matches = json_array();
    for (size_t i = 0; i < f->n; i++) {
        const srv_found_t *x = &f->v[i];
        hdb_item_t *it = NULL;
        if (hdb_item_get(r->srv->db, x->item, &it) != CORDON_OK ||
            it->deleted) {
            hdb_free(it);
            continue;
        }
        const hdb_bank_t *b = cached_bank(r, &banks, it->bank);
        json_t *mj = json_pack("{s:o, s:I, s:s}", "bank", srv_jstr(it->bank),
                               "item", (json_int_t)it->id, "signal",
                               hdb_sigtype_name(x->signal));
        if (x->signal == HDB_SIG_VPDQ) {
            json_object_set_new(mj, "query_match_percent",
                                json_real(x->query_pct));
            json_object_set_new(mj, "compared_match_percent",
                                json_real(x->target_pct));
        } else {
            json_object_set_new(mj, "distance", json_integer(x->distance));
            json_object_set_new(mj, "variant",
                                json_string(cordon_dihedral_name(
                                    (cordon_dihedral_t)x->variant)));
        }
        if (x->timestamp >= 0)
            json_object_set_new(mj, "timestamp", json_real(x->timestamp));
        json_object_set_new(mj, "labels",
                            srv_labels_json(it->labels, it->nlabels));
        json_object_set_new(mj, "default_action",
                            srv_jstr(b ? b->default_action : NULL));
        json_array_append_new(matches, mj);
        srv_metrics_match(r->srv->metrics, it->bank_id, it->bank);
        hdb_free(it);
    }
    for (size_t i = 0; i < banks.n; i++)
        hdb_free(banks.b[i]);
    return matches;
}

static void reply_check(srv_req_t *r, const char *media, json_t *hashes,
                        srv_found_list_t *f, int low_quality)
{
    json_t *matches = matches_json(r, f);
    int matched = json_array_size(matches) > 0;
    srv_metrics_verdict(r->srv->metrics, matched);
    json_t *o = json_pack("{s:s, s:s, s:o, s:o}", "verdict",
                          matched ? "match" : "no_match", "media", media,
                          "hashes", hashes, "matches", matches);
    if (low_quality)
        json_object_set_new(o, "low_quality", json_true());
    if (f->truncated)
        json_object_set_new(o, "truncated", json_true());
    srv_reply_json(r, 200, o);
}

/* A video: exact copies, then vPDQ against stored videos (and stored
 * photos seen in its frames). */
static void check_video(srv_req_t *r, const srv_media_t *m, int threshold)
{
    srv_video_t v;
    if (srv_media_hash_video(r, m, &v))
        return;
    srv_found_list_t f = {0};
    hdb_signal_t sig;
    memset(&sig, 0, sizeof sig);
    sig.type = HDB_SIG_MD5;
    memcpy(sig.digest, v.md5, sizeof v.md5);
    int bad = srv_match_exact(r, &sig, 0, &f);
    sig.type = HDB_SIG_SHA256;
    memcpy(sig.digest, v.sha256, sizeof v.sha256);
    bad = bad || srv_match_exact(r, &sig, 0, &f) ||
          srv_match_vpdq(r, v.vh.frames, v.vh.count, threshold, 0, &f);
    if (!bad) {
        char md5[33], sha[65];
        cordon_hex_encode(v.md5, sizeof v.md5, md5);
        cordon_hex_encode(v.sha256, sizeof v.sha256, sha);
        json_t *hashes =
            json_pack("{s:s, s:s, s:I, s:f, s:f, s:i, s:i, s:s}", "md5", md5,
                      "sha256", sha, "vpdq_frames", (json_int_t)v.vh.count,
                      "duration", v.vh.duration, "fps", v.vh.fps, "width",
                      v.vh.width, "height", v.vh.height, "codec", v.vh.codec);
        /* Damaged input still hashes what decoded; say so. */
        json_t *warn = json_array();
        if (v.vh.warnings & CORDON_VIDEO_WARN_TRUNCATED)
            json_array_append_new(warn, json_string("truncated"));
        if (v.vh.warnings & CORDON_VIDEO_WARN_CORRUPT)
            json_array_append_new(warn, json_string("corrupt"));
        if (json_array_size(warn))
            json_object_set_new(hashes, "warnings", warn);
        else
            json_decref(warn);
        size_t good = 0;
        for (size_t i = 0; i < v.vh.count; i++)
            good += v.vh.frames[i].quality >= CORDON_VPDQ_QUALITY_MIN;
        reply_check(r, "video", hashes, &f, good == 0);
    }
    srv_found_free(&f);
    srv_video_free(&v);
}

void srv_h_check(srv_req_t *r)
{
    long long thr, minq;
    int dihedral, fast;
    srv_media_t m;
    cordon_image_hashes_t h;
    if (srv_arg_int(r, "threshold", 0, 256, CORDON_PDQ_MATCH_DISTANCE, &thr) ||
        srv_arg_int(r, "min_quality", 0, 100, CORDON_PDQ_MIN_QUALITY, &minq) ||
        srv_arg_bool(r, "dihedral", 0, &dihedral) ||
        srv_arg_bool(r, "fast", 0, &fast) || srv_media_get(r, 1, &m))
        return;
    if (m.kind == SRV_MEDIA_VIDEO) {
        check_video(r, &m, (int)thr);
        return;
    }
    if (srv_media_hash_photo(r, &m, fast, &h))
        return;
    hdb_match_opts_t o;
    hdb_match_opts_default(&o);
    o.threshold = (int)thr;
    o.min_quality = (int)minq;
    o.max_hits = CHECK_MAX_HITS;
    srv_found_list_t f = {0};
    if (srv_match_image(r, &h, dihedral ? CORDON_DIH_COUNT : 1, &o, 0, &f) == 0)
        reply_check(r, "photo", check_hashes_json(&h), &f,
                    h.quality < o.min_quality);
    srv_found_free(&f);
}

/* ---- API keys ----------------------------------------------------------- */

#define TOKEN_PREFIX "cordon_"

/* RFC 4648 base64url without padding; out needs 4 * ceil(n / 3) + 1. */
static void base64url(const uint8_t *in, size_t n, char *out)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        "0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = tab[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = tab[v & 63];
    }
    out[o] = 0;
}

static int key_cb(void *ctx, const hdb_apikey_t *k)
{
    json_array_append_new(
        ctx,
        json_pack("{s:I, s:o, s:o, s:I, s:I, s:b}", "id", (json_int_t)k->id,
                  "name", srv_jstr(k->name), "role", srv_jstr(k->role),
                  "created", (json_int_t)k->created, "revoked_at",
                  (json_int_t)k->revoked_at, "active", k->revoked_at == 0));
    return 0;
}

void srv_h_keys_list(srv_req_t *r)
{
    json_t *a = json_array();
    int rc = hdb_apikey_list(r->srv->db, key_cb, a);
    if (rc != CORDON_OK) {
        json_decref(a);
        srv_reply_hdb(r, rc, "listing keys");
        return;
    }
    srv_reply_json(r, 200, a);
}

void srv_h_keys_create(srv_req_t *r)
{
    json_t *j = srv_body_json(r);
    if (!j)
        return;
    const char *name = json_string_value(json_object_get(j, "name"));
    const char *role = json_string_value(json_object_get(j, "role"));
    if (!name || !role) {
        srv_reply_error(r, 400, "name and role are required", NULL);
        goto done;
    }
    if (srv_role_from_name(role) == SRV_ROLE_NONE) {
        srv_reply_error(r, 400, "unknown role",
                        "'%.64s' (matcher, curator, admin or metrics)", role);
        goto done;
    }
    /* 256 random bits, base64url, behind the prefix `cordon key create`
     * uses too (it lets secret scanners recognise a leaked token). */
    uint8_t raw[32], d[CORDON_SHA256_LEN];
    char token[sizeof TOKEN_PREFIX + 44];
    if (RAND_bytes(raw, sizeof raw) != 1) {
        srv_reply_error(r, 503, "no randomness", NULL);
        goto done;
    }
    memcpy(token, TOKEN_PREFIX, sizeof TOKEN_PREFIX - 1);
    base64url(raw, sizeof raw, token + sizeof TOKEN_PREFIX - 1);
    cordon_digest((const uint8_t *)token, strlen(token), NULL, d);
    uint64_t id = 0;
    int rc = hdb_apikey_add(r->srv->db, name, role, d, &id);
    if (rc != CORDON_OK) {
        srv_reply_hdb(r, rc, "key");
        goto done;
    }
    srv_reply_json(r, 201,
                   json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)id,
                             "name", name, "role", role, "token", token));
done:
    json_decref(j);
}

void srv_h_keys_revoke(srv_req_t *r)
{
    const char *s = r->seg[2];
    char *end = NULL;
    errno = 0;
    unsigned long long id = strtoull(s, &end, 10);
    if (!*s || *end || errno || s[0] == '-') {
        srv_reply_error(r, 400, "invalid key id", "'%.32s'", s);
        return;
    }
    int rc = hdb_apikey_revoke(r->srv->db, (uint64_t)id);
    if (rc == CORDON_ENOTFOUND) {
        srv_reply_error(r, 404, "no such active key", "%llu", id);
        return;
    }
    if (rc != CORDON_OK) {
        srv_reply_hdb(r, rc, "key");
        return;
    }
    srv_reply_json(r, 200, json_pack("{s:I}", "revoked", (json_int_t)id));
}
