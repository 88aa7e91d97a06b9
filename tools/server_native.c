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
        srv_media_video_unsupported(r);
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
    if (srv_match_image(r, &h, dihedral ? CORDON_DIH_COUNT : 1, &o, 0, &f)) {
        srv_found_free(&f);
        return;
    }

    bank_cache_t banks = {{0}, 0};
    json_t *matches = json_array();
    for (size_t i = 0; i < f.n; i++) {
        hdb_item_t *it = NULL;
        /* An item deleted since the index answered is simply left out. */
        if (hdb_item_get(r->srv->db, f.v[i].item, &it) != CORDON_OK ||
            it->deleted) {
            hdb_free(it);
            continue;
        }
        const hdb_bank_t *b = cached_bank(r, &banks, it->bank);
        json_t *mj = json_pack(
            "{s:o, s:I, s:s, s:i, s:s, s:o, s:o}", "bank", srv_jstr(it->bank),
            "item", (json_int_t)it->id, "signal",
            hdb_sigtype_name(f.v[i].signal), "distance", f.v[i].distance,
            "variant", cordon_dihedral_name((cordon_dihedral_t)f.v[i].variant),
            "labels", srv_labels_json(it->labels, it->nlabels),
            "default_action", srv_jstr(b ? b->default_action : NULL));
        json_array_append_new(matches, mj);
        srv_metrics_match(r->srv->metrics, it->bank_id, it->bank);
        hdb_free(it);
    }
    for (size_t i = 0; i < banks.n; i++)
        hdb_free(banks.b[i]);
    int matched = json_array_size(matches) > 0;
    srv_metrics_verdict(r->srv->metrics, matched);
    json_t *o2 = json_pack("{s:s, s:s, s:o, s:o}", "verdict",
                           matched ? "match" : "no_match", "media", "photo",
                           "hashes", check_hashes_json(&h), "matches", matches);
    if (h.quality < o.min_quality)
        json_object_set_new(o2, "low_quality", json_true());
    if (f.truncated)
        json_object_set_new(o2, "truncated", json_true());
    srv_found_free(&f);
    srv_reply_json(r, 200, o2);
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
