/* server_media.c - uploads to hashes to matches, and the small pieces of
 * parsing and JSON the endpoints share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server.h"

/* ---- uploads ------------------------------------------------------------ */

static int starts_with_ci(const char *s, const char *prefix)
{
    if (!s)
        return 0;
    while (*s == ' ')
        s++;
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Kind of bytes that came without a field name telling it. */
static srv_media_kind_t guess_kind(const uint8_t *p, size_t n,
                                   const char *ctype)
{
    if (cordon_sniff_image(p, n) != CORDON_FMT_UNKNOWN)
        return SRV_MEDIA_PHOTO;
    if (starts_with_ci(ctype, "video/") || cordon_video_sniff(p, n))
        return SRV_MEDIA_VIDEO;
    /* Unknown bytes go to the image decoder, which says what is wrong. */
    return SRV_MEDIA_PHOTO;
}

int srv_media_get(srv_req_t *r, int allow_file, srv_media_t *m)
{
    memset(m, 0, sizeof *m);
    if (r->is_form) {
        static const char *const names[] = {"photo", "video", "file"};
        const srv_field_t *found = NULL;
        size_t total = 0;
        int which = -1;
        for (int i = 0; i < (allow_file ? 3 : 2); i++) {
            size_t c;
            const srv_field_t *f = srv_field(r, names[i], &c);
            if (c) {
                found = f;
                which = i;
            }
            total += c;
        }
        if (total == 0) {
            srv_reply_error(r, 400, "Missing multipart/form-data file upload",
                            "expected one field named %s",
                            allow_file ? "photo, video or file"
                                       : "photo or video");
            return -1;
        }
        if (total > 1) {
            srv_reply_error(r, 400, "Only one file allowed per request", NULL);
            return -1;
        }
        m->data = found->value.data;
        m->len = found->value.len;
        m->field = names[which];
        m->kind = which == 0 ? SRV_MEDIA_PHOTO
                  : which == 1
                      ? SRV_MEDIA_VIDEO
                      : guess_kind(m->data, m->len, found->content_type);
        return 0;
    }
    const char *ct = srv_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (ct && !starts_with_ci(ct, "image/") && !starts_with_ci(ct, "video/") &&
        !starts_with_ci(ct, "application/octet-stream")) {
        srv_reply_error(r, 415, "unsupported Content-Type",
                        "'%.100s': send the media as the body with "
                        "image/*, video/* or application/octet-stream, or "
                        "as multipart/form-data",
                        ct);
        return -1;
    }
    if (r->body.len == 0) {
        srv_reply_error(r, 400, "Missing media upload",
                        "the body is empty: send the image or video bytes, "
                        "or multipart/form-data with a photo or video field");
        return -1;
    }
    m->data = r->body.data;
    m->len = r->body.len;
    m->field = "body";
    m->kind = starts_with_ci(ct, "image/")   ? SRV_MEDIA_PHOTO
              : starts_with_ci(ct, "video/") ? SRV_MEDIA_VIDEO
                                             : guess_kind(m->data, m->len, ct);
    return 0;
}

int srv_media_hash_photo(srv_req_t *r, const srv_media_t *m, int fast,
                         cordon_image_hashes_t *h)
{
    srv_worker_t *w = srv_worker(r);
    if (!w)
        return -1;
    cordon_decode_opts_t o;
    cordon_decode_opts_default(&o);
    o.max_bytes = r->srv->cfg.max_body;
    o.fast = fast;
    int rc = cordon_hasher_image(w->hasher, m->data, m->len, &o, h);
    switch (rc) {
    case CORDON_OK:
        return 0;
    case CORDON_ELIMIT_BYTES:
    case CORDON_ELIMIT_PIXELS:
        srv_reply_error(r, 413, "media too large", "%s: %s", cordon_errname(rc),
                        cordon_strerror(rc));
        return -1;
    case CORDON_ENOMEM:
        srv_reply_error(r, 503, "out of memory", NULL);
        return -1;
    case CORDON_EINTERNAL:
        srv_reply_error(r, 500, "internal error", "%s", cordon_strerror(rc));
        return -1;
    default: /* every other failure is the media's fault */
        srv_reply_error(r, 400, "malformed media", "%s: %s (field %s)",
                        cordon_errname(rc), cordon_strerror(rc), m->field);
        return -1;
    }
}

/* ---- matching ----------------------------------------------------------- */

void srv_found_free(srv_found_list_t *l)
{
    free(l->v);
    memset(l, 0, sizeof *l);
}

int srv_found_push(srv_found_list_t *l, uint64_t item, hdb_sigtype_t sig,
                   int distance, int variant)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        srv_found_t *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (srv_found_t){item, sig, distance, variant, -1, 0, 0};
    return 0;
}

/* Most exact hits of one digest that are reported. */
#define MAX_EXACT 256

int srv_match_exact(srv_req_t *r, const hdb_signal_t *sig, int include_disabled,
                    srv_found_list_t *out)
{
    hdb_t *db = r->srv->db;
    uint64_t ids[MAX_EXACT];
    size_t found = 0;
    int rc = hdb_lookup(db, sig, NULL, ids, MAX_EXACT, &found);
    if (rc != CORDON_OK) {
        srv_reply_error(r, 503, "database error", "%s", cordon_strerror(rc));
        return -1;
    }
    if (found > MAX_EXACT) {
        found = MAX_EXACT;
        out->truncated = 1;
    }
    int64_t now = srv_now();
    for (size_t i = 0; i < found; i++) {
        if (!include_disabled) {
            hdb_item_t *it = NULL;
            hdb_bank_t *b = NULL;
            int live = hdb_item_get(db, ids[i], &it) == CORDON_OK &&
                       !it->deleted && it->disable_until <= now &&
                       hdb_bank_get(db, it->bank, &b) == CORDON_OK &&
                       b->enabled;
            hdb_free(b);
            hdb_free(it);
            if (!live)
                continue;
        }
        if (srv_found_push(out, ids[i], sig->type, 0, CORDON_DIH_ORIGINAL)) {
            srv_reply_error(r, 503, "out of memory", NULL);
            return -1;
        }
    }
    return 0;
}

int srv_match_pdq(srv_req_t *r, const cordon_hash256_t *q, int nq,
                  const hdb_match_opts_t *o, srv_found_list_t *out)
{
    srv_worker_t *w = srv_worker(r);
    if (!w)
        return -1;
    int rc = hdb_matcher_query(r->srv->matcher, q, nq, o, &w->res);
    if (rc != CORDON_OK) {
        srv_reply_error(r, 503, "index query failed", "%s",
                        cordon_strerror(rc));
        return -1;
    }
    if (o->max_hits && w->res.count >= o->max_hits)
        out->truncated = 1;
    for (size_t i = 0; i < w->res.count; i++) {
        const hdb_match_hit_t *h = &w->res.hits[i];
        if (srv_found_push(out, h->item_id,
                           h->video ? HDB_SIG_VPDQ : HDB_SIG_PDQ, h->distance,
                           h->variant)) {
            srv_reply_error(r, 503, "out of memory", NULL);
            return -1;
        }
    }
    return 0;
}

int srv_match_image(srv_req_t *r, const cordon_image_hashes_t *h, int nq,
                    const hdb_match_opts_t *o, unsigned types,
                    srv_found_list_t *out)
{
    if (!types)
        types = ~0u;
    hdb_signal_t sig;
    if (types & (1u << HDB_SIG_MD5)) {
        memset(&sig, 0, sizeof sig);
        sig.type = HDB_SIG_MD5;
        memcpy(sig.digest, h->md5, sizeof h->md5);
        if (srv_match_exact(r, &sig, o->include_disabled, out))
            return -1;
    }
    if (types & (1u << HDB_SIG_SHA256)) {
        memset(&sig, 0, sizeof sig);
        sig.type = HDB_SIG_SHA256;
        memcpy(sig.digest, h->sha256, sizeof h->sha256);
        if (srv_match_exact(r, &sig, o->include_disabled, out))
            return -1;
    }
    /* A hash below the quality floor says too little to match on. */
    if ((types & (1u << HDB_SIG_PDQ)) && h->quality >= o->min_quality)
        return srv_match_pdq(r, h->dihedral, nq, o, out);
    return 0;
}

/* ---- shared pieces ------------------------------------------------------ */

int srv_utf8_ok(const char *s)
{
    if (!s)
        return 0;
    json_t *j = json_string(s);
    json_decref(j);
    return j != NULL;
}

json_t *srv_jstr(const char *s)
{
    if (!s)
        s = "";
    json_t *j = json_string(s);
    if (j)
        return j;
    char *c = strdup(s);
    if (!c)
        return json_string("");
    for (char *p = c; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(c);
    free(c);
    return j;
}

json_t *srv_labels_json(const char *const *labels, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, srv_jstr(labels[i]));
    return a;
}

int srv_sigtype(srv_req_t *r, const char *name, hdb_sigtype_t *t)
{
    if (!name || hdb_sigtype_from_name(name, strlen(name), t) != CORDON_OK) {
        srv_reply_error(r, 400, "No such SignalType",
                        "'%.64s' (Cordon knows pdq, md5, sha256, vpdq)",
                        name ? name : "");
        return -1;
    }
    return 0;
}

int srv_signal_parse(srv_req_t *r, hdb_sigtype_t t, const char *value,
                     hdb_signal_t *sig, hdb_vpdq_frame_t **frames)
{
    *frames = NULL;
    size_t len = strlen(value);
    size_t cap = 0;
    if (t == HDB_SIG_VPDQ) {
        /* Every frame needs at least its 64 hex digits. */
        cap = len / 64 + 1;
        if (cap > HDB_MAX_VPDQ_FRAMES)
            cap = HDB_MAX_VPDQ_FRAMES;
        *frames = malloc(cap * sizeof **frames);
        if (!*frames) {
            srv_reply_error(r, 503, "out of memory", NULL);
            return -1;
        }
    }
    int rc = hdb_signal_parse(t, value, len, sig, *frames, cap);
    if (rc != CORDON_OK) {
        free(*frames);
        *frames = NULL;
        srv_reply_error(r, 400, "invalid signal", "%s '%.80s%s': %s",
                        hdb_sigtype_name(t), value, len > 80 ? "..." : "",
                        cordon_strerror(rc));
        return -1;
    }
    return 0;
}

char *srv_signal_text(const hdb_signal_t *sig)
{
    char small[160];
    size_t need = 0;
    int rc = hdb_signal_format(sig, 0, small, sizeof small, &need);
    if (rc == CORDON_OK)
        return strdup(small);
    if (rc != CORDON_ESCRATCH)
        return NULL;
    char *p = malloc(need + 1);
    if (p && hdb_signal_format(sig, 0, p, need + 1, NULL) != CORDON_OK) {
        free(p);
        return NULL;
    }
    return p;
}

int srv_split_list(srv_req_t *r, const char *s, size_t max, char ***out,
                   size_t *n)
{
    size_t len = strlen(s), parts = 1;
    for (size_t i = 0; i < len; i++)
        parts += s[i] == ',';
    char **v = malloc(parts * sizeof *v + len + 1);
    if (!v) {
        srv_reply_error(r, 503, "out of memory", NULL);
        return -1;
    }
    char *copy = (char *)(v + parts);
    memcpy(copy, s, len + 1);
    size_t k = 0;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        size_t tl = strlen(tok);
        while (tl && tok[tl - 1] == ' ')
            tok[--tl] = 0;
        if (tl)
            v[k++] = tok;
    }
    if (k > max) {
        free(v);
        srv_reply_error(r, 400, "too many list entries", "%zu (at most %zu)", k,
                        max);
        return -1;
    }
    *out = v;
    *n = k;
    return 0;
}

void srv_reply_hdb(srv_req_t *r, int rc, const char *what)
{
    switch (rc) {
    case CORDON_EINVAL:
    case CORDON_EHEX:
    case CORDON_EPARSE:
    case CORDON_ERANGE:
    case CORDON_EEMPTY:
        srv_reply_error(r, 400, "invalid input", "%s: %s", what,
                        cordon_strerror(rc));
        break;
    case CORDON_ENOTFOUND:
        srv_reply_error(r, 404, "not found", "%s", what);
        break;
    case CORDON_EEXIST:
    case CORDON_EBUSY:
        srv_reply_error(r, 409, "conflict", "%s: %s", what,
                        cordon_strerror(rc));
        break;
    default:
        srv_reply_error(r, 503, "database error", "%s: %s", what,
                        cordon_strerror(rc));
        break;
    }
}
