/*
 * matcher.c - the in-memory Hamming index kept in step with the database.
 *
 * Index entries are (hash, id, flags):
 *   id    = item id, with bit 63 set for a frame of a video (vPDQ) item;
 *   flags = bit 0 "disabled" (bank disabled or item disabled until later),
 *           bits 1-7 the stored quality (0..100; 127 = unknown, trusted).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cordon_error.h"
#include "hdb_matcher.h"

#define VIDEO_BIT ((uint64_t)1 << 63)
#define FLAG_DISABLED 1u
#define QUALITY_UNKNOWN 127
#define PAGE 4096 /* changes read per refresh step */

typedef struct {
    int64_t until;
    uint64_t item_id;
} expiry_t;

struct hdb_matcher {
    hdb_t *db;
    pthread_rwlock_t lock;
    cordon_index_t *idx;
    uint64_t seq;
    uint8_t *bank_enabled; /* by bank id */
    size_t nbanks;
    expiry_t *expiries; /* items disabled until a future time */
    size_t nexp, capexp;
};

void hdb_match_opts_default(hdb_match_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->threshold = CORDON_PDQ_MATCH_DISTANCE;
    o->min_quality = CORDON_PDQ_MIN_QUALITY;
}

void hdb_match_results_free(hdb_match_results_t *r)
{
    if (!r)
        return;
    free(r->hits);
    cordon_index_results_free(&r->raw);
    memset(r, 0, sizeof *r);
}

static int bank_is_enabled(const hdb_matcher_t *m, uint32_t bank)
{
    return bank < m->nbanks ? m->bank_enabled[bank] : 1;
}

static int set_bank(hdb_matcher_t *m, uint32_t bank, int enabled)
{
    if (bank >= m->nbanks) {
        size_t n = (size_t)bank + 16;
        uint8_t *nb = realloc(m->bank_enabled, n);
        if (!nb)
            return CORDON_ENOMEM;
        memset(nb + m->nbanks, 1, n - m->nbanks);
        m->bank_enabled = nb;
        m->nbanks = n;
    }
    m->bank_enabled[bank] = (uint8_t)(enabled != 0);
    return CORDON_OK;
}

static int note_expiry(hdb_matcher_t *m, uint64_t item, int64_t until)
{
    if (m->nexp == m->capexp) {
        size_t n = m->capexp ? 2 * m->capexp : 16;
        expiry_t *ne = realloc(m->expiries, n * sizeof *ne);
        if (!ne)
            return CORDON_ENOMEM;
        m->expiries = ne;
        m->capexp = n;
    }
    m->expiries[m->nexp].until = until;
    m->expiries[m->nexp].item_id = item;
    m->nexp++;
    return CORDON_OK;
}

static uint8_t entry_flags(const hdb_matcher_t *m, uint32_t bank,
                           int64_t disable_until, int quality, int64_t now)
{
    int q = quality < 0 ? QUALITY_UNKNOWN : quality > 100 ? 100 : quality;
    int off = !bank_is_enabled(m, bank) || disable_until > now;
    return (uint8_t)((unsigned)q << 1 | (off ? FLAG_DISABLED : 0));
}

/* ---- loading ------------------------------------------------------------ */

typedef struct {
    hdb_matcher_t *m;
    int64_t now;
    cordon_hash256_t *hashes;
    uint64_t *ids;
    uint8_t *flags;
    size_t n, cap;
    int rc;
} load_t;

static int load_bank(void *ctx, const hdb_bank_t *b)
{
    load_t *l = ctx;
    return (l->rc = set_bank(l->m, b->id, b->enabled));
}

static int load_chunk(void *ctx, const hdb_hash_entry_t *e, size_t n)
{
    load_t *l = ctx;
    if (l->n + n > l->cap) {
        size_t cap = l->cap ? l->cap : 65536;
        while (cap < l->n + n)
            cap *= 2;
        cordon_hash256_t *h = realloc(l->hashes, cap * sizeof *h);
        if (h)
            l->hashes = h;
        uint64_t *ids = realloc(l->ids, cap * sizeof *ids);
        if (ids)
            l->ids = ids;
        uint8_t *f = realloc(l->flags, cap);
        if (f)
            l->flags = f;
        if (!h || !ids || !f)
            return (l->rc = CORDON_ENOMEM);
        l->cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        l->hashes[l->n] = e[i].hash;
        l->ids[l->n] =
            e[i].item_id | (e[i].type == HDB_SIG_VPDQ ? VIDEO_BIT : 0);
        /* The iteration carries the bank state of its own snapshot. */
        int off = !e[i].bank_enabled || e[i].disable_until > l->now;
        l->flags[l->n] = entry_flags(l->m, e[i].bank_id, 0, e[i].quality,
                                     l->now) |
                         (off ? FLAG_DISABLED : 0);
        if (e[i].disable_until > l->now &&
            (i == 0 || e[i - 1].item_id != e[i].item_id) &&
            note_expiry(l->m, e[i].item_id, e[i].disable_until) != CORDON_OK)
            return (l->rc = CORDON_ENOMEM);
        l->n++;
    }
    return 0;
}

int hdb_matcher_open(hdb_t *db, hdb_matcher_t **out)
{
    if (!db || !out)
        return CORDON_EINVAL;
    hdb_matcher_t *m = calloc(1, sizeof *m);
    if (!m)
        return CORDON_ENOMEM;
    load_t l;
    memset(&l, 0, sizeof l);
    l.m = m;
    l.now = (int64_t)time(NULL);
    int rc;
    m->db = db;
    if (pthread_rwlock_init(&m->lock, NULL) != 0) {
        free(m);
        return CORDON_ENOMEM;
    }
    if ((rc = cordon_index_create(NULL, &m->idx)) != CORDON_OK)
        goto fail;
    if ((rc = hdb_bank_list(db, load_bank, &l)) != CORDON_OK)
        goto fail;
    rc = hdb_iter_hashes(db, HDB_ITER_PDQ | HDB_ITER_VPDQ, load_chunk, &l,
                         &m->seq);
    if (l.rc != CORDON_OK)
        rc = l.rc;
    if (rc != CORDON_OK)
        goto fail;
    if (l.n)
        rc = cordon_index_add_bulk(m->idx, l.hashes, l.ids, l.flags, l.n,
                                   NULL);
    if (rc != CORDON_OK)
        goto fail;
    free(l.hashes);
    free(l.ids);
    free(l.flags);
    *out = m;
    return CORDON_OK;
fail:
    free(l.hashes);
    free(l.ids);
    free(l.flags);
    hdb_matcher_close(m);
    return rc;
}

void hdb_matcher_close(hdb_matcher_t *m)
{
    if (!m)
        return;
    cordon_index_free(m->idx);
    pthread_rwlock_destroy(&m->lock);
    free(m->bank_enabled);
    free(m->expiries);
    free(m);
}

/* ---- following the change log ------------------------------------------ */

/* Adds, re-flags or removes every perceptual hash of one item record. */
static int apply_item(hdb_matcher_t *m, const hdb_item_t *it, int64_t now)
{
    int rc = CORDON_OK;
    uint8_t flags = 0;
    if (!it->deleted && it->disable_until > now &&
        (rc = note_expiry(m, it->id, it->disable_until)) != CORDON_OK)
        return rc;
    for (size_t s = 0; s < it->nsignals; s++) {
        const hdb_signal_t *sig = &it->signals[s];
        size_t n = sig->type == HDB_SIG_PDQ    ? 1
                   : sig->type == HDB_SIG_VPDQ ? sig->nframes
                                               : 0;
        uint64_t id = it->id | (sig->type == HDB_SIG_VPDQ ? VIDEO_BIT : 0);
        for (size_t f = 0; f < n; f++) {
            const cordon_hash256_t *h =
                sig->type == HDB_SIG_PDQ ? &sig->pdq : &sig->frames[f].hash;
            int q = sig->type == HDB_SIG_PDQ ? sig->quality
                                              : sig->frames[f].quality;
            if (it->deleted) {
                rc = cordon_index_remove(m->idx, h, id);
                if (rc == CORDON_ENOTFOUND)
                    rc = CORDON_OK;
            } else {
                flags = entry_flags(m, it->bank_id, it->disable_until, q, now);
                rc = cordon_index_add(m->idx, h, id, flags);
                if (rc == CORDON_EEXIST)
                    rc = cordon_index_set_flags(m->idx, h, id, flags);
            }
            if (rc != CORDON_OK)
                return rc;
        }
    }
    return CORDON_OK;
}

typedef struct {
    hdb_matcher_t *m;
    int64_t now;
    size_t applied;
    int rc;
} apply_t;

static int reflag_item(void *ctx, const hdb_item_t *it)
{
    apply_t *a = ctx;
    return (a->rc = apply_item(a->m, it, a->now));
}

static int apply_change(void *ctx, const hdb_change_t *c)
{
    apply_t *a = ctx;
    hdb_matcher_t *m = a->m;
    a->applied++;
    switch (c->kind) {
    case HDB_CHANGE_ITEM_ADD:
    case HDB_CHANGE_ITEM_UPDATE:
    case HDB_CHANGE_ITEM_DELETE:
        a->rc = apply_item(m, c->item, a->now);
        break;
    case HDB_CHANGE_BANK_ADD:
    case HDB_CHANGE_BANK_UPDATE:
    case HDB_CHANGE_BANK_DELETE: {
        int was = bank_is_enabled(m, c->bank->id);
        int now_on = c->bank->enabled && !c->bank->deleted;
        a->rc = set_bank(m, c->bank->id, now_on);
        /* Re-flag the bank's items when its state flips. */
        if (a->rc == CORDON_OK && was != now_on && !c->bank->deleted)
            a->rc = hdb_item_list(m->db, c->bank->name, 0, 0, 0, reflag_item,
                                  a, NULL);
        break;
    }
    }
    return a->rc;
}

/* Re-enables items whose disable-until time has passed. */
static int expire(hdb_matcher_t *m, apply_t *a)
{
    size_t keep = 0;
    int rc = CORDON_OK;
    for (size_t i = 0; i < m->nexp; i++) {
        expiry_t e = m->expiries[i];
        if (e.until > a->now || rc != CORDON_OK) {
            m->expiries[keep++] = e;
            continue;
        }
        hdb_item_t *it = NULL;
        rc = hdb_item_get(m->db, e.item_id, &it);
        if (rc == CORDON_ENOTFOUND) {
            rc = CORDON_OK;
            continue;
        }
        /* A later disable-until re-registers itself through apply_item. */
        if (rc == CORDON_OK && it->disable_until <= a->now)
            rc = apply_item(m, it, a->now);
        else if (rc == CORDON_OK)
            m->expiries[keep++] = (expiry_t){it->disable_until, it->id};
        hdb_free(it);
    }
    m->nexp = keep;
    return rc;
}

int hdb_matcher_refresh(hdb_matcher_t *m, size_t *applied)
{
    if (!m)
        return CORDON_EINVAL;
    uint64_t last;
    int rc = hdb_last_seq(m->db, &last);
    if (applied)
        *applied = 0;
    if (rc != CORDON_OK)
        return rc;
    apply_t a = {m, (int64_t)time(NULL), 0, CORDON_OK};
    int need_expire = 0;
    pthread_rwlock_rdlock(&m->lock);
    for (size_t i = 0; i < m->nexp; i++)
        need_expire |= m->expiries[i].until <= a.now;
    int behind = last != m->seq;
    pthread_rwlock_unlock(&m->lock);
    if (!behind && !need_expire)
        return CORDON_OK;

    pthread_rwlock_wrlock(&m->lock);
    if (need_expire)
        rc = expire(m, &a);
    while (rc == CORDON_OK && m->seq < last) {
        uint64_t next = m->seq;
        rc = hdb_changes_since(m->db, m->seq, PAGE, apply_change, &a, &next);
        if (a.rc != CORDON_OK)
            rc = a.rc;
        if (rc != CORDON_OK || next == m->seq)
            break;
        m->seq = next;
    }
    pthread_rwlock_unlock(&m->lock);
    if (applied)
        *applied = a.applied;
    return rc;
}

uint64_t hdb_matcher_seq(hdb_matcher_t *m)
{
    pthread_rwlock_rdlock(&m->lock);
    uint64_t s = m->seq;
    pthread_rwlock_unlock(&m->lock);
    return s;
}

size_t hdb_matcher_size(hdb_matcher_t *m)
{
    pthread_rwlock_rdlock(&m->lock);
    size_t n = cordon_index_size(m->idx);
    pthread_rwlock_unlock(&m->lock);
    return n;
}

size_t hdb_matcher_memory(hdb_matcher_t *m)
{
    pthread_rwlock_rdlock(&m->lock);
    size_t n = cordon_index_memory(m->idx);
    pthread_rwlock_unlock(&m->lock);
    return n;
}

/* ---- queries ------------------------------------------------------------ */

static int keep_quality(void *ctx, uint64_t id, uint8_t flags)
{
    (void)id;
    int min_q = *(const int *)ctx;
    int q = flags >> 1;
    return q == QUALITY_UNKNOWN || q >= min_q;
}

static int by_item_then_distance(const void *a, const void *b)
{
    const hdb_match_hit_t *x = a, *y = b;
    uint64_t xi = x->item_id | (x->video ? VIDEO_BIT : 0);
    uint64_t yi = y->item_id | (y->video ? VIDEO_BIT : 0);
    if (xi != yi)
        return xi < yi ? -1 : 1;
    if (x->distance != y->distance)
        return x->distance - y->distance;
    return x->variant - y->variant;
}

static int by_distance_then_item(const void *a, const void *b)
{
    const hdb_match_hit_t *x = a, *y = b;
    if (x->distance != y->distance)
        return x->distance - y->distance;
    if (x->item_id != y->item_id)
        return x->item_id < y->item_id ? -1 : 1;
    return x->video - y->video;
}

int hdb_matcher_query(hdb_matcher_t *m, const cordon_hash256_t *q, int nq,
                      const hdb_match_opts_t *o, hdb_match_results_t *res)
{
    hdb_match_opts_t defaults;
    if (!m || !q || !res || nq < 1 || nq > CORDON_INDEX_MAX_VARIANTS)
        return CORDON_EINVAL;
    if (!o) {
        hdb_match_opts_default(&defaults);
        o = &defaults;
    }
    res->count = 0;
    int min_q = o->min_quality;
    cordon_index_query_opts_t qo;
    memset(&qo, 0, sizeof qo);
    qo.skip_flags = o->include_disabled ? 0 : FLAG_DISABLED;
    qo.filter = min_q > 0 ? keep_quality : NULL;
    qo.filter_ctx = &min_q;
    pthread_rwlock_rdlock(&m->lock);
    int rc = cordon_index_query(m->idx, q, nq, o->threshold, &qo, &res->raw);
    pthread_rwlock_unlock(&m->lock);
    if (rc != CORDON_OK)
        return rc;
    size_t n = res->raw.count;
    if (n > res->cap) {
        hdb_match_hit_t *h = realloc(res->hits, n * sizeof *h);
        if (!h)
            return CORDON_ENOMEM;
        res->hits = h;
        res->cap = n;
    }
    for (size_t i = 0; i < n; i++) {
        const cordon_index_hit_t *r = &res->raw.hits[i];
        hdb_match_hit_t *h = &res->hits[i];
        h->item_id = r->id & ~VIDEO_BIT;
        h->video = (r->id & VIDEO_BIT) != 0;
        h->hash = r->hash;
        h->distance = r->distance;
        h->variant = r->variant;
    }
    /* One hit per item (several hashes, e.g. video frames, may match). */
    if (n > 1)
        qsort(res->hits, n, sizeof *res->hits, by_item_then_distance);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || res->hits[k - 1].item_id != res->hits[i].item_id ||
            res->hits[k - 1].video != res->hits[i].video)
            res->hits[k++] = res->hits[i];
    if (k > 1)
        qsort(res->hits, k, sizeof *res->hits, by_distance_then_item);
    if (o->max_hits && k > o->max_hits)
        k = o->max_hits;
    res->count = k;
    return CORDON_OK;
}
