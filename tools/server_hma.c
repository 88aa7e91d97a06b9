/* server_hma.c - the endpoints of Meta's Hasher-Matcher-Actioner (HMA 2.0,
 * "open media match") that Cordon serves, with HMA's paths, parameters and
 * JSON shapes, so that HMA clients switch by changing the base URL. The
 * differences are listed in docs/server.md. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define PDQ_TYPES                                                              \
    ((1u << HDB_SIG_PDQ) | (1u << HDB_SIG_MD5) | (1u << HDB_SIG_SHA256))
#define VIDEO_TYPES                                                            \
    ((1u << HDB_SIG_VPDQ) | (1u << HDB_SIG_MD5) | (1u << HDB_SIG_SHA256))
/* Most items a lookup reports per signal type. */
#define LOOKUP_MAX_HITS 1000
/* disable_until_ts may lie at most this far ahead (HMA: five years). */
#define MAX_DISABLE_AHEAD (5ll * 365 * 86400)
#define META_KEY_FMT "srv.meta.%" PRIu64

/* ---- /status and the unsupported ones ---------------------------------- */

void srv_h_status(srv_req_t *r)
{
    int64_t last = atomic_load(&r->srv->last_refresh);
    int stale = srv_now() - last > SRV_STALE_SECONDS;
    const char *msg = stale ? "INDEX-STALE" : "I-AM-ALIVE";
    char *body = strdup(msg);
    srv_reply(r, stale ? 503 : 200, "text/plain; charset=utf-8", body,
              body ? strlen(body) : 0);
}

void srv_h_unsupported(srv_req_t *r)
{
    srv_reply_error(r, 501, "not implemented by Cordon",
                    "%s %.100s: HMA's exchange, signal-type and content-type "
                    "configuration is not served; Cordon fetches from "
                    "exchanges with 'cordon sync' and configures nothing "
                    "over HTTP",
                    r->method, r->log_path);
}

static void reply_no_urls(srv_req_t *r)
{
    srv_reply_error(r, 501, "fetching media from a URL is not supported",
                    "Cordon never fetches URLs: upload the media with POST "
                    "(multipart field photo or video, or the raw bytes)");
}

/* ---- hashing ------------------------------------------------------------ */

/* The `types` argument: a comma list of signal types to compute. */
static int parse_types(srv_req_t *r, unsigned allowed, unsigned *out)
{
    const char *v = srv_arg(r, "types");
    *out = allowed;
    if (!v)
        return 0;
    char **list;
    size_t n;
    if (srv_split_list(r, v, 8, &list, &n))
        return -1;
    unsigned t = 0;
    for (size_t i = 0; i < n; i++) {
        hdb_sigtype_t st;
        if (hdb_sigtype_from_name(list[i], strlen(list[i]), &st) != CORDON_OK ||
            !(allowed & (1u << st))) {
            srv_reply_error(r, 400, "signal type doesn't exist or is disabled",
                            "'%.64s'", list[i]);
            free(list);
            return -1;
        }
        t |= 1u << st;
    }
    free(list);
    if (!t) {
        srv_reply_error(r, 400, "empty signal type selection", NULL);
        return -1;
    }
    *out = t;
    return 0;
}

/* Reads and hashes the upload of a hashing/lookup request: a photo into
 * *h (returns SRV_MEDIA_PHOTO) or a video into *v (SRV_MEDIA_VIDEO, free it
 * with srv_video_free()); -1 after answering an error. */
static int hash_upload(srv_req_t *r, cordon_image_hashes_t *h, srv_video_t *v)
{
    int fast;
    if (srv_arg_bool(r, "fast", 0, &fast))
        return -1;
    srv_media_t m;
    if (srv_media_get(r, 0, &m))
        return -1;
    if (m.kind == SRV_MEDIA_VIDEO)
        return srv_media_hash_video(r, &m, v) ? -1 : SRV_MEDIA_VIDEO;
    return srv_media_hash_photo(r, &m, fast, h) ? -1 : SRV_MEDIA_PHOTO;
}

/* One match in HMA's shape: {"bank_content_id", "distance"}, or for vPDQ
 * the two match percentages instead of a distance. */
static json_t *hit_json(const srv_found_t *f)
{
    if (f->signal == HDB_SIG_VPDQ)
        return json_pack("{s:I, s:f, s:f}", "bank_content_id",
                         (json_int_t)f->item, "query_match_percent",
                         f->query_pct, "compared_match_percent", f->target_pct);
    return json_pack("{s:I, s:i}", "bank_content_id", (json_int_t)f->item,
                     "distance", f->distance);
}

static json_t *video_hashes_json(const srv_video_t *v, unsigned types)
{
    json_t *o = json_object();
    char hex[65];
    if (types & (1u << HDB_SIG_VPDQ)) {
        char *text = NULL;
        size_t len = 0;
        if (cordon_vpdq_to_json(v->vh.frames, v->vh.count, &text, &len) ==
            CORDON_OK)
            json_object_set_new(o, "vpdq", json_stringn(text, len));
        free(text);
    }
    if (types & (1u << HDB_SIG_MD5)) {
        cordon_hex_encode(v->md5, sizeof v->md5, hex);
        json_object_set_new(o, "md5", json_string(hex));
    }
    if (types & (1u << HDB_SIG_SHA256)) {
        cordon_hex_encode(v->sha256, sizeof v->sha256, hex);
        json_object_set_new(o, "sha256", json_string(hex));
    }
    return o;
}

static json_t *hashes_json(const cordon_image_hashes_t *h, unsigned types)
{
    json_t *o = json_object();
    char hex[65];
    if (types & (1u << HDB_SIG_PDQ)) {
        cordon_hash_to_hex(&h->pdq, hex);
        json_object_set_new(o, "pdq", json_string(hex));
    }
    if (types & (1u << HDB_SIG_MD5)) {
        cordon_hex_encode(h->md5, sizeof h->md5, hex);
        json_object_set_new(o, "md5", json_string(hex));
    }
    if (types & (1u << HDB_SIG_SHA256)) {
        cordon_hex_encode(h->sha256, sizeof h->sha256, hex);
        json_object_set_new(o, "sha256", json_string(hex));
    }
    return o;
}

void srv_h_hash_get(srv_req_t *r)
{
    if (srv_arg(r, "url"))
        reply_no_urls(r);
    else
        srv_reply_error(r, 400, "url is required",
                        "and Cordon never fetches URLs: POST the media");
}

void srv_h_hash_post(srv_req_t *r)
{
    unsigned types;
    cordon_image_hashes_t h;
    srv_video_t v;
    if (parse_types(r, PDQ_TYPES | VIDEO_TYPES, &types))
        return;
    int kind = hash_upload(r, &h, &v);
    if (kind == SRV_MEDIA_PHOTO) {
        srv_reply_json(r, 200, hashes_json(&h, types & PDQ_TYPES));
    } else if (kind == SRV_MEDIA_VIDEO) {
        srv_reply_json(r, 200, video_hashes_json(&v, types & VIDEO_TYPES));
        srv_video_free(&v);
    }
}

/* ---- matching ----------------------------------------------------------- */

/* The `banks` argument as a list (NULL when absent). */
static int parse_banks(srv_req_t *r, char ***list, size_t *n)
{
    const char *v = srv_arg(r, "banks");
    *list = NULL;
    *n = 0;
    if (!v)
        return 0;
    return srv_split_list(r, v, 1024, list, n);
}

static int in_list(char **list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i], s))
            return 1;
    return 0;
}

/* Matches grouped by bank: {"BANK": [{"bank_content_id": id, "distance":
 * d}, ...]}. count_metrics adds each to the per-bank match counters. */
static json_t *by_bank(srv_req_t *r, const srv_found_list_t *f, char **banks,
                       size_t nbanks, int count_metrics)
{
    json_t *o = json_object();
    for (size_t i = 0; i < f->n; i++) {
        hdb_item_t *it = NULL;
        if (hdb_item_get(r->srv->db, f->v[i].item, &it) != CORDON_OK)
            continue;
        if (!banks || in_list(banks, nbanks, it->bank)) {
            /* Object keys must be UTF-8 too. */
            json_t *key = srv_jstr(it->bank);
            const char *k = key ? json_string_value(key) : "";
            json_t *a = json_object_get(o, k);
            if (!a) {
                a = json_array();
                json_object_set_new(o, k, a);
            }
            json_decref(key);
            json_array_append_new(a, hit_json(&f->v[i]));
            if (count_metrics)
                srv_metrics_match(r->srv->metrics, it->bank_id, it->bank);
        }
        hdb_free(it);
    }
    return o;
}

/* Looks one signal up: PDQ through the index, MD5/SHA-256 exactly. raw
 * skips the enabled checks (HMA's raw_lookup does not make them). */
static int lookup_signal(srv_req_t *r, hdb_sigtype_t t, const char *value,
                         int raw, srv_found_list_t *out)
{
    hdb_signal_t sig;
    hdb_vpdq_frame_t *frames = NULL;
    long long thr;
    if (srv_arg_int(r, "threshold", 0, 256, CORDON_PDQ_MATCH_DISTANCE, &thr))
        return -1;
    if (t == HDB_SIG_VPDQ) {
        cordon_vpdq_frame_t *f = NULL;
        size_t n = 0;
        srv_found_list_t all = {0};
        if (srv_vpdq_parse(r, value, &f, &n))
            return -1;
        int rc = srv_match_vpdq(r, f, n, (int)thr, raw, &all);
        free(f);
        /* Only whole-video matches answer a vPDQ lookup. */
        for (size_t i = 0; rc == 0 && i < all.n; i++) {
            if (all.v[i].signal != HDB_SIG_VPDQ)
                continue;
            if (srv_found_push(out, all.v[i].item, HDB_SIG_VPDQ, 0, 0)) {
                srv_reply_error(r, 503, "out of memory", NULL);
                rc = -1;
                break;
            }
            out->v[out->n - 1].query_pct = all.v[i].query_pct;
            out->v[out->n - 1].target_pct = all.v[i].target_pct;
        }
        srv_found_free(&all);
        return rc;
    }
    if (srv_signal_parse(r, t, value, &sig, &frames))
        return -1;
    free(frames);
    if (t != HDB_SIG_PDQ)
        return srv_match_exact(r, &sig, raw, out);
    hdb_match_opts_t o;
    hdb_match_opts_default(&o);
    o.threshold = (int)thr;
    o.max_hits = LOOKUP_MAX_HITS;
    if (raw) {
        o.include_disabled = 1;
        o.min_quality = 0;
    }
    return srv_match_pdq(r, &sig.pdq, 1, &o, out);
}

void srv_h_raw_lookup(srv_req_t *r)
{
    const char *signal = srv_arg(r, "signal");
    const char *type = srv_arg(r, "signal_type");
    int with_distance;
    char **banks = NULL;
    size_t nbanks = 0;
    srv_found_list_t f = {0};
    hdb_sigtype_t t;
    if (!signal) {
        srv_reply_error(r, 400, "signal is required", NULL);
        return;
    }
    if (!type) {
        srv_reply_error(r, 400, "signal_type is required", NULL);
        return;
    }
    if (srv_sigtype(r, type, &t) ||
        srv_arg_bool(r, "include_distance", 0, &with_distance) ||
        parse_banks(r, &banks, &nbanks) || lookup_signal(r, t, signal, 1, &f))
        goto done;
    json_t *a = json_array();
    for (size_t i = 0; i < f.n; i++) {
        if (banks) {
            hdb_item_t *it = NULL;
            int keep =
                hdb_item_get(r->srv->db, f.v[i].item, &it) == CORDON_OK &&
                in_list(banks, nbanks, it->bank);
            hdb_free(it);
            if (!keep)
                continue;
        }
        if (with_distance)
            json_array_append_new(a, hit_json(&f.v[i]));
        else
            json_array_append_new(a, json_integer((json_int_t)f.v[i].item));
    }
    srv_reply_json(r, 200, json_pack("{s:o}", "matches", a));
done:
    free(banks);
    srv_found_free(&f);
}

void srv_h_lookup_get(srv_req_t *r)
{
    if (srv_arg(r, "url")) {
        reply_no_urls(r);
        return;
    }
    const char *signal = srv_arg(r, "signal");
    const char *type = srv_arg(r, "signal_type");
    if (!signal || !type) {
        srv_reply_error(r, 400,
                        "Either url or both signal and signal_type are "
                        "required",
                        NULL);
        return;
    }
    char **banks = NULL;
    size_t nbanks = 0;
    srv_found_list_t f = {0};
    hdb_sigtype_t t;
    if (srv_sigtype(r, type, &t) || parse_banks(r, &banks, &nbanks) ||
        lookup_signal(r, t, signal, 0, &f))
        goto done;
    srv_reply_json(r, 200, by_bank(r, &f, banks, nbanks, 1));
done:
    free(banks);
    srv_found_free(&f);
}

void srv_h_lookup_post(srv_req_t *r)
{
    char **banks = NULL;
    size_t nbanks = 0;
    int dihedral;
    long long thr;
    cordon_image_hashes_t h;
    srv_video_t v;
    int kind = -1;
    json_t *out = NULL;
    if (srv_arg_bool(r, "dihedral", 0, &dihedral) ||
        srv_arg_int(r, "threshold", 0, 256, CORDON_PDQ_MATCH_DISTANCE, &thr) ||
        parse_banks(r, &banks, &nbanks) || (kind = hash_upload(r, &h, &v)) < 0)
        goto done;
    hdb_match_opts_t o;
    hdb_match_opts_default(&o);
    o.threshold = (int)thr;
    o.max_hits = LOOKUP_MAX_HITS;
    out = json_object();
    /* Photos: pdq, md5, sha256. Videos: vpdq (whole videos), pdq (stored
     * photos seen in a frame), md5, sha256. */
    static const hdb_sigtype_t order[] = {HDB_SIG_VPDQ, HDB_SIG_PDQ,
                                          HDB_SIG_MD5, HDB_SIG_SHA256};
    srv_found_list_t vf = {0};
    if (kind == SRV_MEDIA_VIDEO &&
        srv_match_vpdq(r, v.vh.frames, v.vh.count, (int)thr, 0, &vf))
        goto done;
    for (size_t i = kind == SRV_MEDIA_VIDEO ? 0 : 1; i < 4; i++) {
        srv_found_list_t f = {0};
        int rc = 0;
        if (kind == SRV_MEDIA_PHOTO) {
            rc = srv_match_image(r, &h, dihedral ? CORDON_DIH_COUNT : 1, &o,
                                 1u << order[i], &f);
        } else if (order[i] == HDB_SIG_MD5 || order[i] == HDB_SIG_SHA256) {
            hdb_signal_t sig;
            memset(&sig, 0, sizeof sig);
            sig.type = order[i];
            memcpy(sig.digest, order[i] == HDB_SIG_MD5 ? v.md5 : v.sha256,
                   order[i] == HDB_SIG_MD5 ? 16 : 32);
            rc = srv_match_exact(r, &sig, 0, &f);
        } else {
            for (size_t k = 0; k < vf.n && !rc; k++)
                if (vf.v[k].signal == order[i]) {
                    rc = srv_found_push(&f, 0, order[i], 0, 0);
                    if (rc)
                        srv_reply_error(r, 503, "out of memory", NULL);
                    else
                        f.v[f.n - 1] = vf.v[k];
                }
        }
        if (rc) {
            srv_found_free(&f);
            srv_found_free(&vf);
            goto done;
        }
        json_object_set_new(out, hdb_sigtype_name(order[i]),
                            by_bank(r, &f, banks, nbanks, 1));
        srv_found_free(&f);
    }
    srv_found_free(&vf);
    srv_reply_json(r, 200, out);
    out = NULL;
done:
    json_decref(out);
    if (kind == SRV_MEDIA_VIDEO)
        srv_video_free(&v);
    free(banks);
}

/* [match, {"query_match_percent", "compared_match_percent"}] of two vPDQ
 * signals, each a JSON list or its text; NULL after answering 400. */
static json_t *compare_vpdq(srv_req_t *r, const char *key, json_t *pair)
{
    cordon_vpdq_frame_t *f[2] = {NULL, NULL};
    size_t n[2] = {0, 0};
    json_t *res = NULL;
    for (int k = 0; k < 2; k++) {
        json_t *e = json_array_get(pair, (size_t)k);
        char *dumped = json_is_array(e) ? json_dumps(e, JSON_COMPACT) : NULL;
        const char *text = dumped ? dumped : json_string_value(e);
        if (!text) {
            srv_reply_error(r, 400, "invalid signal",
                            "%.64s: hashes must be strings", key);
            free(dumped);
            goto done;
        }
        int bad = srv_vpdq_parse(r, text, &f[k], &n[k]);
        free(dumped);
        if (bad)
            goto done;
    }
    cordon_vpdq_match_t m;
    if (cordon_vpdq_compare(f[0], n[0], f[1], n[1], NULL, &m) != CORDON_OK) {
        srv_reply_error(r, 503, "vpdq comparison failed", NULL);
        goto done;
    }
    res =
        json_pack("[b, {s:f, s:f}]", m.is_match, "query_match_percent",
                  m.query_percent, "compared_match_percent", m.target_percent);
done:
    free(f[0]);
    free(f[1]);
    return res;
}

void srv_h_compare(srv_req_t *r)
{
    json_t *j = srv_body_json(r);
    if (!j)
        return;
    if (!json_is_object(j)) {
        srv_reply_error(r, 400, "Request input was not a dict", NULL);
        json_decref(j);
        return;
    }
    json_t *out = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v)
    {
        hdb_sigtype_t t;
        if (srv_sigtype(r, key, &t))
            goto fail;
        if (!json_is_array(v)) {
            srv_reply_error(r, 400, "Comparison hashes were not a list",
                            "%.64s", key);
            goto fail;
        }
        if (json_array_size(v) != 2) {
            srv_reply_error(r, 400,
                            "Comparison hash list length must be exactly 2",
                            "%.64s has %zu", key, json_array_size(v));
            goto fail;
        }
        if (t == HDB_SIG_VPDQ) {
            json_t *res = compare_vpdq(r, key, v);
            if (!res)
                goto fail;
            json_object_set_new(out, key, res);
            continue;
        }
        hdb_signal_t s[2];
        for (int k = 0; k < 2; k++) {
            hdb_vpdq_frame_t *frames = NULL;
            const char *str = json_string_value(json_array_get(v, (size_t)k));
            if (!str) {
                srv_reply_error(r, 400, "invalid signal",
                                "%.64s: hashes must be strings", key);
                goto fail;
            }
            if (srv_signal_parse(r, t, str, &s[k], &frames))
                goto fail;
            free(frames);
        }
        json_t *res;
        if (t == HDB_SIG_PDQ) {
            int d = cordon_hash_distance(&s[0].pdq, &s[1].pdq);
            res = json_pack("[b, {s:i}]", d <= CORDON_PDQ_MATCH_DISTANCE,
                            "distance", d);
        } else {
            size_t n = t == HDB_SIG_MD5 ? 16 : 32;
            int eq = memcmp(s[0].digest, s[1].digest, n) == 0;
            res = json_pack("[b, {s:i}]", eq, "distance", eq ? 0 : 1);
        }
        json_object_set_new(out, key, res);
    }
    json_decref(j);
    srv_reply_json(r, 200, out);
    return;
fail:
    json_decref(out);
    json_decref(j);
}

void srv_h_index_status(srv_req_t *r)
{
    const char *only = srv_arg(r, "signal_type");
    hdb_sigtype_t ot = 0;
    if (only && srv_sigtype(r, only, &ot))
        return;
    hdb_stats_t st;
    int rc = hdb_stats(r->srv->db, &st);
    if (rc != CORDON_OK) {
        srv_reply_hdb(r, rc, "database statistics");
        return;
    }
    int64_t built = atomic_load(&r->srv->last_refresh);
    json_t *o = json_object();
    for (int t = 1; t <= HDB_SIG_MAX; t++) {
        if (ot && (int)ot != t)
            continue;
        json_t *e = json_pack("{s:I, s:b, s:I}", "built_to",
                              (json_int_t)(built ? built : -1), "present",
                              built != 0, "size", (json_int_t)st.signals[t]);
        if (t == HDB_SIG_PDQ || t == HDB_SIG_VPDQ) {
            json_object_set_new(
                e, "index_hashes",
                json_integer((json_int_t)hdb_matcher_size(r->srv->matcher)));
            json_object_set_new(
                e, "seq",
                json_integer((json_int_t)hdb_matcher_seq(r->srv->matcher)));
        }
        json_object_set_new(o, hdb_sigtype_name((hdb_sigtype_t)t), e);
    }
    srv_reply_json(r, 200, o);
}

/* ---- curation: banks ---------------------------------------------------- */

static json_t *bank_json(const hdb_bank_t *b)
{
    return json_pack(
        "{s:o, s:f, s:b, s:o, s:o, s:I}", "name", srv_jstr(b->name),
        "matching_enabled_ratio", b->enabled ? 1.0 : 0.0, "enabled", b->enabled,
        "default_action", srv_jstr(b->default_action), "labels",
        srv_labels_json(b->labels, b->nlabels), "items", (json_int_t)b->nitems);
}

static int bank_list_cb(void *ctx, const hdb_bank_t *b)
{
    json_array_append_new(ctx, bank_json(b));
    return 0;
}

void srv_h_banks_list(srv_req_t *r)
{
    json_t *a = json_array();
    int rc = hdb_bank_list(r->srv->db, bank_list_cb, a);
    if (rc != CORDON_OK) {
        json_decref(a);
        srv_reply_hdb(r, rc, "listing banks");
        return;
    }
    srv_reply_json(r, 200, a);
}

static int bank_from_path(srv_req_t *r, hdb_bank_t **b)
{
    int rc = hdb_bank_get(r->srv->db, r->seg[2], b);
    if (rc == CORDON_ENOTFOUND) {
        srv_reply_error(r, 404, "bank not found", "'%.128s'", r->seg[2]);
        return -1;
    }
    if (rc != CORDON_OK) {
        srv_reply_hdb(r, rc, "bank");
        return -1;
    }
    return 0;
}

/* "enabled" (bool) and "enabled_ratio" (0 or 1) of a bank body; -1 when
 * absent, or -2 after answering 400. */
static int body_enabled(srv_req_t *r, json_t *j)
{
    json_t *e = json_object_get(j, "enabled");
    json_t *ratio = json_object_get(j, "enabled_ratio");
    int v = -1;
    if (e && !json_is_null(e)) {
        if (!json_is_boolean(e)) {
            srv_reply_error(r, 400, "enabled must be a boolean", NULL);
            return -2;
        }
        v = json_is_true(e);
    }
    if (ratio && !json_is_null(ratio)) {
        if (!json_is_number(ratio)) {
            srv_reply_error(r, 400, "enabled_ratio must be a number", NULL);
            return -2;
        }
        double x = json_number_value(ratio);
        if (x != 0.0 && x != 1.0) {
            srv_reply_error(r, 400, "enabled_ratio must be 0 or 1",
                            "Cordon banks are on or off; got %g", x);
            return -2;
        }
        v = x == 1.0;
    }
    return v;
}

/* "labels": an array of strings, into a malloc'd pointer array (the
 * strings stay in j). -1 when absent, -2 after answering 400. */
static int body_labels(srv_req_t *r, json_t *j, const char ***out, size_t *n)
{
    json_t *l = json_object_get(j, "labels");
    *out = NULL;
    *n = 0;
    if (!l)
        return -1;
    if (!json_is_array(l) || json_array_size(l) > HDB_MAX_LABELS) {
        srv_reply_error(r, 400, "labels must be a list of strings",
                        "at most %d", HDB_MAX_LABELS);
        return -2;
    }
    size_t k = json_array_size(l);
    const char **v = calloc(k + 1, sizeof *v);
    if (!v) {
        srv_reply_error(r, 503, "out of memory", NULL);
        return -2;
    }
    for (size_t i = 0; i < k; i++) {
        v[i] = json_string_value(json_array_get(l, i));
        if (!v[i]) {
            free(v);
            srv_reply_error(r, 400, "labels must be a list of strings", NULL);
            return -2;
        }
    }
    *out = v;
    *n = k;
    return 0;
}

static json_t *body_object(srv_req_t *r)
{
    json_t *j = srv_body_json(r);
    if (j && !json_is_object(j)) {
        srv_reply_error(r, 400, "the body must be a JSON object", NULL);
        json_decref(j);
        return NULL;
    }
    return j;
}

void srv_h_bank_create(srv_req_t *r)
{
    json_t *j = body_object(r);
    const char **labels = NULL;
    size_t nlabels = 0;
    hdb_bank_t *b = NULL;
    if (!j)
        return;
    const char *name = json_string_value(json_object_get(j, "name"));
    json_t *act = json_object_get(j, "default_action");
    int enabled = body_enabled(r, j);
    int lr = enabled == -2 ? -2 : body_labels(r, j, &labels, &nlabels);
    if (enabled == -2 || lr == -2)
        goto done;
    if (!name) {
        srv_reply_error(r, 400, "name is required", NULL);
        goto done;
    }
    if (act && !json_is_string(act) && !json_is_null(act)) {
        srv_reply_error(r, 400, "default_action must be a string", NULL);
        goto done;
    }
    hdb_bank_spec_t spec = {name, enabled != 0, json_string_value(act), labels,
                            nlabels};
    int rc = hdb_bank_create(r->srv->db, &spec, NULL);
    if (rc == CORDON_EEXIST) {
        srv_reply_error(r, 403, "Bank already exists", "'%.128s'", name);
        goto done;
    }
    if (rc != CORDON_OK) {
        srv_reply_hdb(r, rc, "bank");
        goto done;
    }
    srv_refresh_now(r->srv);
    if ((rc = hdb_bank_get(r->srv->db, name, &b)) != CORDON_OK) {
        srv_reply_hdb(r, rc, "bank");
        goto done;
    }
    srv_reply_json(r, 201, bank_json(b));
done:
    hdb_free(b);
    free(labels);
    json_decref(j);
}

void srv_h_bank_get(srv_req_t *r)
{
    hdb_bank_t *b;
    if (bank_from_path(r, &b))
        return;
    srv_reply_json(r, 200, bank_json(b));
    hdb_free(b);
}

void srv_h_bank_update(srv_req_t *r)
{
    hdb_bank_t *b = NULL;
    const char **labels = NULL;
    size_t nlabels = 0;
    json_t *j = NULL;
    int rc = CORDON_OK;
    if (bank_from_path(r, &b) || !(j = body_object(r)))
        goto done;
    const char *name = json_string_value(json_object_get(j, "name"));
    if (name && strcmp(name, b->name) != 0) {
        srv_reply_error(r, 501, "renaming banks is not supported",
                        "bank names are stable identifiers in Cordon");
        goto done;
    }
    json_t *act = json_object_get(j, "default_action");
    if (act && !json_is_string(act) && !json_is_null(act)) {
        srv_reply_error(r, 400, "default_action must be a string", NULL);
        goto done;
    }
    int enabled = body_enabled(r, j);
    int lr = enabled == -2 ? -2 : body_labels(r, j, &labels, &nlabels);
    if (enabled == -2 || lr == -2)
        goto done;
    hdb_t *db = r->srv->db;
    if (enabled >= 0 && enabled != b->enabled)
        rc = hdb_bank_set_enabled(db, b->name, enabled);
    if (rc == CORDON_OK && act)
        rc = hdb_bank_set_default_action(db, b->name, json_string_value(act));
    if (rc == CORDON_OK && lr == 0)
        rc = hdb_bank_set_labels(db, b->name, labels, nlabels);
    if (rc != CORDON_OK) {
        srv_reply_hdb(r, rc, "bank update");
        goto done;
    }
    srv_refresh_now(r->srv);
    char keep[HDB_MAX_NAME + 1];
    snprintf(keep, sizeof keep, "%s", b->name);
    hdb_free(b);
    b = NULL;
    if ((rc = hdb_bank_get(db, keep, &b)) != CORDON_OK) {
        srv_reply_hdb(r, rc, "bank");
        goto done;
    }
    srv_reply_json(r, 200, bank_json(b));
done:
    free(labels);
    json_decref(j);
    hdb_free(b);
}

typedef struct {
    uint64_t *ids;
    size_t n, cap;
    int oom;
} idlist_t;

static int collect_id(void *ctx, const hdb_item_t *it)
{
    idlist_t *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 256;
        uint64_t *v = realloc(l->ids, cap * sizeof *v);
        if (!v) {
            l->oom = 1;
            return 1;
        }
        l->ids = v;
        l->cap = cap;
    }
    l->ids[l->n++] = it->id;
    return 0;
}

static void meta_del(hdb_t *db, uint64_t id)
{
    char key[64];
    snprintf(key, sizeof key, META_KEY_FMT, id);
    hdb_kv_del(db, key);
}

void srv_h_bank_delete(srv_req_t *r)
{
    hdb_t *db = r->srv->db;
    hdb_bank_t *b = NULL;
    int rc = hdb_bank_get(db, r->seg[2], &b);
    hdb_free(b);
    if (rc == CORDON_ENOTFOUND) { /* HMA: deleting nothing succeeds */
        srv_reply_json(r, 200, json_pack("{s:s}", "message", "Done"));
        return;
    }
    if (rc != CORDON_OK) {
        srv_reply_hdb(r, rc, "bank");
        return;
    }
    /* As in HMA the bank's content goes with it; here each item leaves a
     * tombstone so that replicas learn of it. Ids are collected first:
     * iteration callbacks may not write. */
    idlist_t l = {0};
    uint64_t after = 0;
    for (;;) {
        size_t before = l.n;
        rc = hdb_item_list(db, r->seg[2], after, 4096, 0, collect_id, &l,
                           &after);
        if (rc != CORDON_OK || l.oom || l.n == before)
            break;
    }
    if (rc == CORDON_OK && l.oom)
        rc = CORDON_ENOMEM;
    for (size_t i = 0; rc == CORDON_OK && i < l.n; i++) {
        rc = hdb_item_remove(db, l.ids[i], NULL);
        if (rc == CORDON_ENOTFOUND) /* removed meanwhile */
            rc = CORDON_OK;
        meta_del(db, l.ids[i]);
    }
    free(l.ids);
    if (rc == CORDON_OK)
        rc = hdb_bank_delete(db, r->seg[2]);
    if (rc == CORDON_ENOTFOUND)
        rc = CORDON_OK;
    srv_refresh_now(r->srv);
    if (rc != CORDON_OK) {
        srv_reply_hdb(r, rc, "bank delete");
        return;
    }
    srv_reply_json(r, 200, json_pack("{s:s}", "message", "Done"));
}

/* ---- curation: content -------------------------------------------------- */

/* HMA's BankedContentMetadata: an object with at most content_id (string),
 * content_uri (string), json (object) and collab (object of string
 * lists). Returns the parsed object, NULL when absent, or (json_t *)-1
 * after answering 400. */
#define BAD_META ((json_t *)-1)
static json_t *parse_metadata(srv_req_t *r, const char *text)
{
    if (!text)
        return NULL;
    json_error_t err;
    json_t *m = json_loads(text, JSON_DECODE_ANY, &err);
    if (!m || !json_is_object(m)) {
        json_decref(m);
        srv_reply_error(r, 400, "metadata should be a json object", NULL);
        return BAD_META;
    }
    const char *k;
    json_t *v;
    json_object_foreach(m, k, v)
    {
        int ok = 0;
        if (!strcmp(k, "content_id") || !strcmp(k, "content_uri"))
            ok = json_is_string(v) || json_is_null(v);
        else if (!strcmp(k, "json"))
            ok = json_is_object(v) || json_is_null(v);
        else if (!strcmp(k, "collab")) {
            ok = json_is_object(v) || json_is_null(v);
            const char *ck;
            json_t *cv;
            if (json_is_object(v))
                json_object_foreach(v, ck, cv)
                {
                    if (!json_is_array(cv))
                        ok = 0;
                    for (size_t i = 0; ok && i < json_array_size(cv); i++)
                        ok = json_is_string(json_array_get(cv, i));
                }
        }
        if (!ok) {
            srv_reply_error(r, 400, "Invalid metadata", "field '%.64s'", k);
            json_decref(m);
            return BAD_META;
        }
    }
    return m;
}

static json_t *meta_get(hdb_t *db, uint64_t id)
{
    char key[64], buf[65536];
    size_t len = 0;
    snprintf(key, sizeof key, META_KEY_FMT, id);
    if (hdb_kv_get(db, key, buf, sizeof buf, &len) != CORDON_OK)
        return NULL;
    return json_loadb(buf, len, 0, NULL);
}

static int meta_put(srv_req_t *r, uint64_t id, json_t *m)
{
    char key[64];
    char *s = json_dumps(m, JSON_COMPACT);
    if (!s) {
        srv_reply_error(r, 503, "out of memory", NULL);
        return -1;
    }
    snprintf(key, sizeof key, META_KEY_FMT, id);
    int rc = hdb_kv_set(r->srv->db, key, s, strlen(s));
    free(s);
    if (rc != CORDON_OK) {
        srv_reply_hdb(r, rc, "metadata (at most 64 KiB)");
        return -1;
    }
    return 0;
}

/* The signals of an item as {type: value}; only type `only` when set. */
static json_t *signals_json(const hdb_item_t *it, hdb_sigtype_t only)
{
    json_t *o = json_object();
    for (size_t i = 0; i < it->nsignals; i++) {
        const hdb_signal_t *s = &it->signals[i];
        if (only && s->type != only)
            continue;
        char *text = srv_signal_text(s);
        if (text)
            json_object_set_new(o, hdb_sigtype_name(s->type),
                                json_string(text));
        free(text);
    }
    return o;
}

static json_t *content_json(srv_req_t *r, const hdb_item_t *it,
                            const hdb_bank_t *b, int with_signals,
                            hdb_sigtype_t only)
{
    json_t *o = json_pack(
        "{s:I, s:I, s:n, s:{s:o, s:f}, s:o, s:o}", "id", (json_int_t)it->id,
        "disable_until_ts", (json_int_t)it->disable_until, "original_media_uri",
        "bank", "name", srv_jstr(b->name), "matching_enabled_ratio",
        b->enabled ? 1.0 : 0.0, "note", srv_jstr(it->note), "labels",
        srv_labels_json(it->labels, it->nlabels));
    json_t *meta = meta_get(r->srv->db, it->id);
    if (meta)
        json_object_set_new(o, "metadata", meta);
    json_object_set_new(o, "provenance",
                        json_pack("{s:o, s:s, s:o, s:I}", "added_by",
                                  srv_jstr(it->prov.added_by), "source",
                                  hdb_source_name(it->prov.source),
                                  "source_name", srv_jstr(it->prov.source_name),
                                  "added_at", (json_int_t)it->prov.added_at));
    if (with_signals)
        json_object_set_new(o, "signals", signals_json(it, only));
    return o;
}

/* Parses the {id} segment: a positive decimal integer. */
static int id_from_path(srv_req_t *r, uint64_t *id)
{
    const char *s = r->seg[4];
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno || v == 0 || s[0] == '-' || s[0] == '+') {
        srv_reply_error(r, 400, "invalid content id", "'%.32s'", s);
        return -1;
    }
    *id = v;
    return 0;
}

/* A live item of the path's bank, or 404. */
static int item_from_path(srv_req_t *r, const hdb_bank_t *b, uint64_t id,
                          hdb_item_t **it)
{
    int rc = hdb_item_get(r->srv->db, id, it);
    if (rc == CORDON_OK && (!(*it)->deleted && (*it)->bank_id == b->id))
        return 0;
    if (rc == CORDON_OK || rc == CORDON_ENOTFOUND) {
        hdb_free(*it);
        *it = NULL;
        srv_reply_error(r, 404, "content not found",
                        "%" PRIu64 " in bank '%.128s'", id, b->name);
        return -1;
    }
    srv_reply_hdb(r, rc, "content");
    return -1;
}

static void fill_prov(srv_req_t *r, hdb_provenance_t *p)
{
    memset(p, 0, sizeof *p);
    p->added_by = r->key_name[0] ? r->key_name : "api";
    p->source = HDB_SOURCE_PLATFORM;
    p->source_name = "http-api";
}

/* Writes a new item of the path's bank and answers HMA's
 * {"id": ..., "signals": {...}}. A copy already in the bank (same MD5 or
 * SHA-256) is answered with its id and "duplicate": true. */
static void add_item(srv_req_t *r, const hdb_bank_t *b,
                     const hdb_signal_t *sigs, size_t nsigs, const char *note,
                     const char *const *labels, size_t nlabels, json_t *meta)
{
    hdb_item_spec_t spec;
    memset(&spec, 0, sizeof spec);
    spec.bank = b->name;
    spec.labels = labels;
    spec.nlabels = nlabels;
    spec.note = note;
    fill_prov(r, &spec.prov);
    spec.signals = sigs;
    spec.nsignals = nsigs;
    hdb_add_result_t res;
    int rc = hdb_item_add(r->srv->db, &spec, 0, &res);
    if (rc != CORDON_OK && rc != CORDON_EEXIST) {
        srv_reply_hdb(r, rc, "content");
        return;
    }
    int dup = rc == CORDON_EEXIST;
    if (!dup && meta && meta_put(r, res.id, meta))
        return;
    srv_refresh_now(r->srv);
    json_t *s = json_object();
    for (size_t i = 0; i < nsigs; i++) {
        char *text = srv_signal_text(&sigs[i]);
        if (text)
            json_object_set_new(s, hdb_sigtype_name(sigs[i].type),
                                json_string(text));
        free(text);
    }
    json_t *o = json_pack("{s:I, s:o}", "id", (json_int_t)res.id, "signals", s);
    if (dup)
        json_object_set_new(o, "duplicate", json_true());
    srv_reply_json(r, 200, o);
}

void srv_h_content_add(srv_req_t *r)
{
    hdb_bank_t *b = NULL;
    json_t *meta = NULL;
    char **labels = NULL;
    size_t nlabels = 0;
    if (srv_arg(r, "url")) {
        reply_no_urls(r);
        return;
    }
    if (bank_from_path(r, &b))
        return;
    meta = parse_metadata(r, srv_text_param(r, "metadata"));
    if (meta == BAD_META) {
        meta = NULL;
        goto done;
    }
    const char *note = srv_text_param(r, "note");
    const char *lab = srv_text_param(r, "labels");
    if ((note && !srv_utf8_ok(note)) || (lab && !srv_utf8_ok(lab))) {
        srv_reply_error(r, 400, "note and labels must be UTF-8 text", NULL);
        goto done;
    }
    if (lab && srv_split_list(r, lab, HDB_MAX_LABELS, &labels, &nlabels))
        goto done;
    srv_media_t m;
    cordon_image_hashes_t h;
    if (srv_media_get(r, 0, &m))
        goto done;
    hdb_signal_t sigs[3];
    memset(sigs, 0, sizeof sigs);
    if (m.kind == SRV_MEDIA_VIDEO) {
        srv_video_t v;
        hdb_vpdq_frame_t *entries = NULL;
        size_t nentries = 0;
        if (srv_media_hash_video(r, &m, &v))
            goto done;
        if (srv_vpdq_fold(r, v.vh.frames, v.vh.count, &entries, &nentries)) {
            srv_video_free(&v);
            goto done;
        }
        sigs[0].type = HDB_SIG_VPDQ;
        sigs[0].frames = entries;
        sigs[0].nframes = nentries;
        sigs[1].type = HDB_SIG_MD5;
        memcpy(sigs[1].digest, v.md5, sizeof v.md5);
        sigs[2].type = HDB_SIG_SHA256;
        memcpy(sigs[2].digest, v.sha256, sizeof v.sha256);
        add_item(r, b, sigs, 3, note, (const char *const *)labels, nlabels,
                 meta);
        free(entries);
        srv_video_free(&v);
        goto done;
    }
    /* Banked hashes are always canonical (never fast mode). */
    if (srv_media_hash_photo(r, &m, 0, &h))
        goto done;
    sigs[0].type = HDB_SIG_PDQ;
    sigs[0].pdq = h.pdq;
    sigs[0].quality = h.quality;
    sigs[1].type = HDB_SIG_MD5;
    memcpy(sigs[1].digest, h.md5, sizeof h.md5);
    sigs[2].type = HDB_SIG_SHA256;
    memcpy(sigs[2].digest, h.sha256, sizeof h.sha256);
    add_item(r, b, sigs, 3, note, (const char *const *)labels, nlabels, meta);
done:
    free(labels);
    json_decref(meta);
    hdb_free(b);
}

void srv_h_signal_add(srv_req_t *r)
{
    hdb_bank_t *b = NULL;
    json_t *j = NULL;
    hdb_signal_t sigs[HDB_MAX_SIGNALS];
    hdb_vpdq_frame_t *frames[HDB_MAX_SIGNALS] = {0};
    char *texts[HDB_MAX_SIGNALS] = {0};
    size_t n = 0;
    if (bank_from_path(r, &b) || !(j = body_object(r)))
        goto done;
    if (json_object_size(j) == 0) {
        srv_reply_error(r, 400, "No signals given", NULL);
        goto done;
    }
    if (json_object_size(j) > HDB_MAX_SIGNALS) {
        srv_reply_error(r, 400, "too many signals", "at most %d",
                        HDB_MAX_SIGNALS);
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v)
    {
        hdb_sigtype_t t;
        if (srv_sigtype(r, key, &t))
            goto done;
        const char *s = json_string_value(v);
        /* vPDQ may come as the list itself rather than its JSON text. */
        if (!s && t == HDB_SIG_VPDQ && json_is_array(v))
            s = texts[n] = json_dumps(v, JSON_COMPACT);
        if (!s) {
            srv_reply_error(r, 400, "invalid signal",
                            "%.64s: the value must be a string", key);
            goto done;
        }
        if (srv_signal_parse(r, t, s, &sigs[n], &frames[n]))
            goto done;
        n++;
    }
    add_item(r, b, sigs, n, NULL, NULL, 0, NULL);
done:
    for (size_t i = 0; i < HDB_MAX_SIGNALS; i++) {
        free(frames[i]);
        free(texts[i]);
    }
    json_decref(j);
    hdb_free(b);
}

void srv_h_content_get(srv_req_t *r)
{
    hdb_bank_t *b = NULL;
    hdb_item_t *it = NULL;
    uint64_t id;
    int with_signals;
    hdb_sigtype_t only = 0;
    const char *st = srv_arg(r, "signal_type");
    if (id_from_path(r, &id) ||
        srv_arg_bool(r, "include_signals", 0, &with_signals))
        return;
    if (st && hdb_sigtype_from_name(st, strlen(st), &only) != CORDON_OK) {
        srv_reply_error(r, 400, "No such signal type", "'%.64s'", st);
        return;
    }
    if (bank_from_path(r, &b) || item_from_path(r, b, id, &it))
        goto done;
    srv_reply_json(r, 200, content_json(r, it, b, with_signals || only, only));
done:
    hdb_free(it);
    hdb_free(b);
}

void srv_h_content_update(srv_req_t *r)
{
    hdb_bank_t *b = NULL;
    hdb_item_t *it = NULL;
    json_t *j = NULL;
    const char **labels = NULL;
    size_t nlabels = 0;
    uint64_t id;
    int rc = CORDON_OK;
    if (id_from_path(r, &id) || bank_from_path(r, &b) ||
        item_from_path(r, b, id, &it) || !(j = body_object(r)))
        goto done;
    hdb_t *db = r->srv->db;
    json_t *du = json_object_get(j, "disable_until_ts");
    json_t *note = json_object_get(j, "note");
    int lr = body_labels(r, j, &labels, &nlabels);
    if (lr == -2)
        goto done;
    long long until = 0;
    if (du) {
        if (json_is_integer(du)) {
            until = json_integer_value(du);
        } else if (json_is_string(du)) {
            char *end = NULL;
            errno = 0;
            until = strtoll(json_string_value(du), &end, 10);
            if (!*json_string_value(du) || *end || errno) {
                srv_reply_error(r, 400, "Invalid int", "disable_until_ts");
                goto done;
            }
        } else {
            srv_reply_error(r, 400, "Invalid int", "disable_until_ts");
            goto done;
        }
        if (until < 0) {
            srv_reply_error(r, 400,
                            "disable_until_ts must be a non-negative integer",
                            NULL);
            goto done;
        }
        if (until > srv_now() + MAX_DISABLE_AHEAD) {
            srv_reply_error(r, 400,
                            "disable_until_ts must be less than 5 years in "
                            "the future",
                            NULL);
            goto done;
        }
    }
    if (note && !json_is_string(note) && !json_is_null(note)) {
        srv_reply_error(r, 400, "note must be a string", NULL);
        goto done;
    }
    if (du)
        rc = hdb_item_set_disable_until(db, id, until);
    if (rc == CORDON_OK && note)
        rc = hdb_item_set_note(db, id, json_string_value(note));
    if (rc == CORDON_OK && lr == 0)
        rc = hdb_item_set_labels(db, id, labels, nlabels);
    if (rc != CORDON_OK) {
        srv_reply_hdb(r, rc, "content update");
        goto done;
    }
    srv_refresh_now(r->srv);
    hdb_free(it);
    it = NULL;
    if ((rc = hdb_item_get(db, id, &it)) != CORDON_OK) {
        srv_reply_hdb(r, rc, "content");
        goto done;
    }
    srv_reply_json(r, 200, content_json(r, it, b, 0, 0));
done:
    free(labels);
    json_decref(j);
    hdb_free(it);
    hdb_free(b);
}

void srv_h_content_delete(srv_req_t *r)
{
    hdb_bank_t *b = NULL;
    hdb_item_t *it = NULL;
    uint64_t id;
    if (id_from_path(r, &id) || bank_from_path(r, &b))
        goto done;
    hdb_t *db = r->srv->db;
    int rc = hdb_item_get(db, id, &it);
    if (rc == CORDON_ENOTFOUND ||
        (rc == CORDON_OK && (it->deleted || it->bank_id != b->id))) {
        srv_reply_json(r, 200, json_pack("{s:i}", "deleted", 0));
        goto done;
    }
    if (rc == CORDON_OK)
        rc = hdb_item_remove(db, id, NULL);
    if (rc == CORDON_ENOTFOUND) {
        srv_reply_json(r, 200, json_pack("{s:i}", "deleted", 0));
        goto done;
    }
    if (rc != CORDON_OK) {
        srv_reply_hdb(r, rc, "content delete");
        goto done;
    }
    meta_del(db, id);
    srv_refresh_now(r->srv);
    srv_reply_json(r, 200, json_pack("{s:i}", "deleted", 1));
done:
    hdb_free(it);
    hdb_free(b);
}
