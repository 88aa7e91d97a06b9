/* server_video.c - video uploads: vPDQ hashing through engine/cordon_video.h
 * and matching against stored videos (and photos) of the database. */
#include <stdlib.h>
#include <string.h>

#include "server.h"

/* Most stored videos one upload is compared with in full. */
#define MAX_CANDIDATES 1000

int srv_media_hash_video(srv_req_t *r, const srv_media_t *m, srv_video_t *v)
{
    memset(v, 0, sizeof *v);
    cordon_video_opts_t o;
    cordon_video_opts_default(&o);
    /* Requests already run in parallel on the pool's threads; one upload
     * must not take every core. */
    o.threads = 1;
    o.max_bytes = r->srv->cfg.max_body;
    int rc = cordon_video_hash_buffer(m->data, m->len, &o, &v->vh);
    switch (rc) {
    case CORDON_OK:
        break;
    case CORDON_ELIMIT_BYTES:
    case CORDON_ELIMIT_PIXELS:
    case CORDON_ELIMIT_FRAMES:
    case CORDON_ELIMIT_DURATION:
        srv_reply_error(r, 413, "media too large", "%s: %s", cordon_errname(rc),
                        cordon_strerror(rc));
        return -1;
    case CORDON_ENOMEM:
        srv_reply_error(r, 503, "out of memory", NULL);
        return -1;
    case CORDON_EINTERNAL:
        srv_reply_error(r, 500, "internal error", "%s", cordon_strerror(rc));
        return -1;
    default: /* not a video we can decode: the upload's fault */
        srv_reply_error(r, 400, "malformed media", "%s: %s (field %s)",
                        cordon_errname(rc), cordon_strerror(rc), m->field);
        return -1;
    }
    if (cordon_digest(m->data, m->len, v->md5, v->sha256) != CORDON_OK) {
        srv_video_free(v);
        srv_reply_error(r, 500, "internal error", "digest failed");
        return -1;
    }
    return 0;
}

void srv_video_free(srv_video_t *v)
{
    cordon_video_hashes_free(&v->vh);
}

int srv_vpdq_parse(srv_req_t *r, const char *text, cordon_vpdq_frame_t **f,
                   size_t *n)
{
    int rc = cordon_vpdq_from_json(text, strlen(text), f, n);
    if (rc == CORDON_ENOMEM) {
        srv_reply_error(r, 503, "out of memory", NULL);
        return -1;
    }
    if (rc != CORDON_OK || *n == 0) {
        free(*f);
        *f = NULL;
        srv_reply_error(r, 400, "invalid signal",
                        "vpdq: expected a JSON list of "
                        "\"pdqhex,quality,timestamp\" strings (%s)",
                        rc ? cordon_strerror(rc) : "no frames");
        return -1;
    }
    return 0;
}

int srv_vpdq_fold(srv_req_t *r, const cordon_vpdq_frame_t *f, size_t n,
                  hdb_vpdq_frame_t **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (n == 0) {
        srv_reply_error(r, 400, "malformed media", "no video frame hashed");
        return -1;
    }
    hdb_vpdq_frame_t *e = malloc(n * sizeof *e);
    if (!e) {
        srv_reply_error(r, 503, "out of memory", NULL);
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k && e[k - 1].quality == f[i].quality &&
            !memcmp(&e[k - 1].hash, &f[i].hash, sizeof f[i].hash)) {
            e[k - 1].count++;
            continue;
        }
        e[k].hash = f[i].hash;
        e[k].quality = f[i].quality;
        e[k].timestamp = f[i].timestamp;
        e[k].count = 1;
        k++;
    }
    if (k > HDB_MAX_VPDQ_FRAMES) {
        free(e);
        srv_reply_error(r, 413, "video too long to bank",
                        "%zu distinct frame hashes; at most %d", k,
                        HDB_MAX_VPDQ_FRAMES);
        return -1;
    }
    *out = e;
    *nout = k;
    return 0;
}

static int cmp_hash(const void *a, const void *b)
{
    const cordon_vpdq_frame_t *x = a, *y = b;
    int c = memcmp(&x->hash, &y->hash, sizeof x->hash);
    if (c)
        return c;
    return x->timestamp < y->timestamp ? -1 : x->timestamp > y->timestamp;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Best vPDQ comparison of the upload with a stored item's vPDQ signals. */
static int compare_item(srv_req_t *r, const cordon_vpdq_frame_t *f, size_t n,
                        uint64_t id, srv_found_list_t *out)
{
    hdb_item_t *it = NULL;
    int rc = hdb_item_get(r->srv->db, id, &it);
    if (rc == CORDON_ENOTFOUND || (rc == CORDON_OK && it->deleted)) {
        hdb_free(it);
        return 0; /* removed since the index answered */
    }
    if (rc != CORDON_OK) {
        srv_reply_hdb(r, rc, "content");
        return -1;
    }
    cordon_vpdq_match_t best;
    memset(&best, 0, sizeof best);
    int any = 0;
    for (size_t s = 0; s < it->nsignals; s++) {
        const hdb_signal_t *sig = &it->signals[s];
        if (sig->type != HDB_SIG_VPDQ || !sig->nframes)
            continue;
        cordon_vpdq_frame_t *t = malloc(sig->nframes * sizeof *t);
        if (!t) {
            hdb_free(it);
            srv_reply_error(r, 503, "out of memory", NULL);
            return -1;
        }
        for (size_t i = 0; i < sig->nframes; i++) {
            t[i].hash = sig->frames[i].hash;
            /* Imported hashes of unknown quality are trusted (hdb.h). */
            t[i].quality = sig->frames[i].quality == HDB_QUALITY_UNKNOWN
                               ? 100
                               : sig->frames[i].quality;
            t[i].frame_number = (int32_t)i;
            t[i].timestamp = sig->frames[i].timestamp;
        }
        cordon_vpdq_match_t m;
        rc = cordon_vpdq_compare(f, n, t, sig->nframes, NULL, &m);
        free(t);
        if (rc != CORDON_OK) {
            hdb_free(it);
            srv_reply_error(r, 503, "vpdq comparison failed", "%s",
                            cordon_strerror(rc));
            return -1;
        }
        if (m.is_match && (!any || m.query_percent > best.query_percent)) {
            best = m;
            any = 1;
        }
    }
    hdb_free(it);
    if (!any)
        return 0;
    if (srv_found_push(out, id, HDB_SIG_VPDQ, 0, CORDON_DIH_ORIGINAL)) {
        srv_reply_error(r, 503, "out of memory", NULL);
        return -1;
    }
    out->v[out->n - 1].query_pct = best.query_percent;
    out->v[out->n - 1].target_pct = best.target_percent;
    return 0;
}

int srv_match_vpdq(srv_req_t *r, const cordon_vpdq_frame_t *f, size_t n,
                   int threshold, int include_disabled, srv_found_list_t *out)
{
    srv_worker_t *w = srv_worker(r);
    if (!w)
        return -1;
    int ret = -1;
    uint64_t *cand = NULL;
    size_t ncand = 0;
    /* The distinct hashes worth looking up, each with its first time. */
    cordon_vpdq_frame_t *q = malloc((n ? n : 1) * sizeof *q);
    if (!q) {
        srv_reply_error(r, 503, "out of memory", NULL);
        return -1;
    }
    size_t nq = 0;
    for (size_t i = 0; i < n; i++)
        if (f[i].quality >= CORDON_VPDQ_QUALITY_MIN)
            q[nq++] = f[i];
    qsort(q, nq, sizeof *q, cmp_hash);
    size_t k = 0;
    for (size_t i = 0; i < nq; i++)
        if (!k || memcmp(&q[k - 1].hash, &q[i].hash, sizeof q[i].hash))
            q[k++] = q[i];
    nq = k;
    cand = malloc(MAX_CANDIDATES * sizeof *cand);
    if (!cand) {
        srv_reply_error(r, 503, "out of memory", NULL);
        goto done;
    }

    hdb_match_opts_t o;
    hdb_match_opts_default(&o);
    o.threshold = threshold;
    o.include_disabled = include_disabled;
    size_t photos_from = out->n;
    for (size_t i = 0; i < nq; i += CORDON_INDEX_MAX_VARIANTS) {
        cordon_hash256_t h[CORDON_INDEX_MAX_VARIANTS];
        int m = 0;
        for (; m < CORDON_INDEX_MAX_VARIANTS && i + (size_t)m < nq; m++)
            h[m] = q[i + (size_t)m].hash;
        int rc = hdb_matcher_query(r->srv->matcher, h, m, &o, &w->res);
        if (rc != CORDON_OK) {
            srv_reply_error(r, 503, "index query failed", "%s",
                            cordon_strerror(rc));
            goto done;
        }
        for (size_t j = 0; j < w->res.count; j++) {
            const hdb_match_hit_t *hit = &w->res.hits[j];
            if (hit->video) {
                if (ncand < MAX_CANDIDATES)
                    cand[ncand++] = hit->item_id;
                else
                    out->truncated = 1;
                continue;
            }
            /* A stored photo seen in a frame: keep its best frame. */
            size_t e = photos_from;
            while (e < out->n && out->v[e].item != hit->item_id)
                e++;
            double ts = q[i + (size_t)hit->variant].timestamp;
            if (e == out->n) {
                if (srv_found_push(out, hit->item_id, HDB_SIG_PDQ,
                                   hit->distance, CORDON_DIH_ORIGINAL)) {
                    srv_reply_error(r, 503, "out of memory", NULL);
                    goto done;
                }
                out->v[e].timestamp = ts;
            } else if (hit->distance < out->v[e].distance) {
                out->v[e].distance = hit->distance;
                out->v[e].timestamp = ts;
            }
        }
        if (ncand >= MAX_CANDIDATES)
            break;
    }
    qsort(cand, ncand, sizeof *cand, cmp_u64);
    for (size_t i = 0; i < ncand; i++) {
        if (i && cand[i] == cand[i - 1])
            continue;
        if (compare_item(r, f, n, cand[i], out))
            goto done;
    }
    ret = 0;
done:
    free(cand);
    free(q);
    return ret;
}
