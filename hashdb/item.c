/* item.c - items and their signals: add (with deduplication), update,
 * tombstones, batches, exact lookups, listing and the bulk hash iteration
 * the in-memory index is loaded from. */
#include <stdlib.h>
#include <string.h>

#include "hdb_internal.h"

#define SIGKEY_MAX (1 + 32 + 4 + 8)
#define ITER_CHUNK 4096

/* type | value | bank | item */
static size_t sig_key(const hdb_signal_t *s, uint32_t bank, uint64_t id,
                      uint8_t key[SIGKEY_MAX])
{
    size_t n = hdb__sig_index_value(s, key + 1);
    if (!n)
        return 0;
    key[0] = (uint8_t)s->type;
    hdb__be32(key + 1 + n, bank);
    hdb__be64(key + 5 + n, id);
    return n + 13;
}

static int vpdq_equal(const hdb_signal_t *a, const hdb_signal_t *b)
{
    if (a->type != HDB_SIG_VPDQ || b->type != HDB_SIG_VPDQ ||
        a->nframes != b->nframes)
        return 0;
    for (size_t i = 0; i < a->nframes; i++) {
        const hdb_vpdq_frame_t *x = &a->frames[i], *y = &b->frames[i];
        if (memcmp(&x->hash, &y->hash, sizeof x->hash) ||
            x->quality != y->quality || x->count != y->count ||
            memcmp(&x->timestamp, &y->timestamp, sizeof x->timestamp))
            return 0;
    }
    return 1;
}

/* The vPDQ index holds a digest: confirm a candidate against its record. */
static int vpdq_confirm(hdb__w_t *w, const hdb_signal_t *s, uint64_t id)
{
    uint8_t kb[8];
    MDB_val k = {8, kb}, d;
    hdb__item_view_t v;
    int found = 0;
    hdb__be64(kb, id);
    int rc = mdb_get(w->txn, w->db->dbi[HDB__DB_ITEMS], &k, &d);
    if (rc)
        return hdb__err(rc);
    memset(&v, 0, sizeof v);
    rc = hdb__item_decode(d.mv_data, d.mv_size, &v);
    for (size_t i = 0; rc == CORDON_OK && i < v.item.nsignals; i++)
        found |= vpdq_equal(&v.item.signals[i], s);
    hdb__item_view_free(&v);
    return rc ? rc : found;
}

int hdb__sig_find(hdb__w_t *w, const hdb_signal_t *s, uint32_t bank,
                  uint64_t *id)
{
    uint8_t key[SIGKEY_MAX];
    size_t n = sig_key(s, bank, 0, key);
    if (!n)
        return 0;
    size_t prefix = n - 8;
    MDB_cursor *c = hdb__wcur(w, HDB__DB_SIGVAL);
    if (!c)
        return CORDON_EDB;
    MDB_val k = {n, key}, d;
    int rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE);
    for (; rc == 0; rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
        if (k.mv_size != n || memcmp(k.mv_data, key, prefix) != 0)
            return 0;
        uint64_t cand = hdb__rd64((const uint8_t *)k.mv_data + prefix);
        if (s->type == HDB_SIG_VPDQ) {
            int ok = vpdq_confirm(w, s, cand);
            if (ok < 0)
                return ok;
            if (!ok)
                continue;
        }
        *id = cand;
        return 1;
    }
    return rc == MDB_NOTFOUND ? 0 : hdb__err(rc);
}

static int sig_index(hdb__w_t *w, const hdb_item_t *it, uint64_t id, int add)
{
    MDB_dbi dbi = w->db->dbi[HDB__DB_SIGVAL];
    int64_t *delta = hdb__delta(w, it->bank_id);
    if (!delta)
        return CORDON_ENOMEM;
    for (size_t i = 0; i < it->nsignals; i++) {
        const hdb_signal_t *s = &it->signals[i];
        uint8_t key[SIGKEY_MAX];
        if ((unsigned)s->type >= 1 && (unsigned)s->type <= HDB_SIG_MAX)
            delta[HDB__C_SIG(s->type)] += add ? 1 : -1;
        size_t n = sig_key(s, it->bank_id, id, key);
        if (!n)
            continue;
        MDB_val k = {n, key}, d = {0, NULL};
        int rc = add ? mdb_put(w->txn, dbi, &k, &d, 0)
                     : mdb_del(w->txn, dbi, &k, NULL);
        if (rc && !(rc == MDB_NOTFOUND && !add))
            return hdb__err(rc);
    }
    return CORDON_OK;
}

static int bank_item(hdb__w_t *w, uint32_t bank, uint64_t id, int add)
{
    uint8_t kb[12];
    hdb__be32(kb, bank);
    hdb__be64(kb + 4, id);
    MDB_val k = {12, kb}, d = {0, NULL};
    if (!add) {
        int rc = mdb_del(w->txn, w->db->dbi[HDB__DB_BANKITEMS], &k, NULL);
        return rc == MDB_NOTFOUND ? CORDON_OK : hdb__err(rc);
    }
    MDB_cursor *c = hdb__wcur(w, HDB__DB_BANKITEMS);
    if (!c)
        return CORDON_EDB;
    /* Bulk loads add increasing ids to one bank: appending fills pages
     * instead of splitting them. */
    int rc = mdb_cursor_put(c, &k, &d, MDB_APPEND);
    if (rc == MDB_KEYEXIST)
        rc = mdb_put(w->txn, w->db->dbi[HDB__DB_BANKITEMS], &k, &d, 0);
    return hdb__err(rc);
}

int hdb__item_store(hdb__w_t *w, uint64_t id, const hdb_item_t *old,
                    uint64_t old_created_seq, hdb_item_t *nw, uint64_t *seq)
{
    int old_live = old && !old->deleted, new_live = !nw->deleted;
    int same_index = old_live && new_live && old->bank_id == nw->bank_id &&
                     old->signals == nw->signals &&
                     old->nsignals == nw->nsignals;
    int rc;

    if (old) {
        int64_t *d = hdb__delta(w, old->bank_id);
        if (!d)
            return CORDON_ENOMEM;
        d[old_live ? HDB__C_ITEMS : HDB__C_TOMBS]--;
        if (old_live && !same_index) {
            if ((rc = bank_item(w, old->bank_id, id, 0)) ||
                (rc = sig_index(w, old, id, 0)))
                return rc;
        }
    }
    int64_t *d = hdb__delta(w, nw->bank_id);
    if (!d)
        return CORDON_ENOMEM;
    d[new_live ? HDB__C_ITEMS : HDB__C_TOMBS]++;
    if (new_live && !same_index) {
        if ((rc = bank_item(w, nw->bank_id, id, 1)) ||
            (rc = sig_index(w, nw, id, 1)))
            return rc;
    }

    uint64_t s = hdb__next_seq(w);
    nw->id = id;
    nw->seq = s;
    nw->updated = w->now;
    nw->created = old ? old->created : w->now;
    uint64_t created_seq = old ? old_created_seq : s;
    w->buf.len = 0;
    hdb__item_encode(&w->buf, nw, created_seq);
    if (w->buf.oom)
        return CORDON_ENOMEM;
    uint8_t kb[8];
    hdb__be64(kb, id);
    MDB_val k = {8, kb}, v = {w->buf.len, w->buf.p};
    if (!old) {
        MDB_cursor *c = hdb__wcur(w, HDB__DB_ITEMS);
        if (!c)
            return CORDON_EDB;
        rc = mdb_cursor_put(c, &k, &v, MDB_APPEND);
        if (rc == MDB_KEYEXIST)
            rc = mdb_put(w->txn, w->db->dbi[HDB__DB_ITEMS], &k, &v, 0);
    } else {
        rc = mdb_put(w->txn, w->db->dbi[HDB__DB_ITEMS], &k, &v, 0);
    }
    if ((rc = hdb__err(rc)))
        return rc;
    if ((rc = hdb__log_put(w, s, HDB__LOG_ITEM, id, old ? old->seq : 0)))
        return rc;
    if (seq)
        *seq = s;
    return CORDON_OK;
}

/* ---------------------------------------------------------------- */
/* Add                                                                */

static int add_one(hdb__w_t *w, const hdb_item_spec_t *spec, unsigned flags,
                   hdb_add_result_t *res)
{
    uint32_t bank;
    int rc;
    memset(res, 0, sizeof *res);
    if ((rc = hdb__bank_id_w(w, spec->bank, &bank)))
        return rc;
    for (size_t i = 0; i < spec->nsignals; i++) {
        const hdb_signal_t *s = &spec->signals[i];
        if (s->type == HDB_SIG_MD5 || s->type == HDB_SIG_SHA256 ||
            (s->type == HDB_SIG_VPDQ && (flags & HDB_ADD_DEDUP_VPDQ))) {
            uint64_t dup;
            rc = hdb__sig_find(w, s, bank, &dup);
            if (rc < 0)
                return rc;
            if (rc == 1) {
                res->id = dup;
                res->duplicate = 1;
                return CORDON_EEXIST;
            }
        }
    }
    hdb_item_t nw;
    memset(&nw, 0, sizeof nw);
    nw.bank_id = bank;
    nw.labels = spec->labels;
    nw.nlabels = spec->nlabels;
    nw.note = spec->note;
    nw.prov = spec->prov;
    if (!nw.prov.added_at)
        nw.prov.added_at = w->now;
    nw.disable_until = spec->disable_until;
    nw.signals = spec->signals;
    nw.nsignals = spec->nsignals;
    uint64_t id = w->next_item++;
    if ((rc = hdb__item_store(w, id, NULL, 0, &nw, &res->seq)))
        return rc;
    res->id = id;
    return CORDON_OK;
}

typedef struct {
    const hdb_item_spec_t *spec;
    unsigned flags;
    hdb_add_result_t res;
} add_ctx_t;

static int add_fn(hdb__w_t *w, void *ctx)
{
    add_ctx_t *a = ctx;
    return add_one(w, a->spec, a->flags, &a->res);
}

static int spec_ok(const hdb_item_spec_t *spec)
{
    return spec && spec->bank && hdb__valid_name(spec->bank) &&
           hdb__valid_item_fields(spec);
}

int hdb_item_add(hdb_t *db, const hdb_item_spec_t *spec, unsigned flags,
                 hdb_add_result_t *res)
{
    if (!db || !spec_ok(spec))
        return CORDON_EINVAL;
    add_ctx_t a = {spec, flags, {0, 0, 0}};
    int rc = hdb__write(db, add_fn, &a);
    if (res)
        *res = a.res;
    return rc;
}

/* ---------------------------------------------------------------- */
/* Updates                                                            */

enum { UP_REMOVE, UP_DISABLE, UP_NOTE, UP_LABELS, UP_PUT };

typedef struct {
    uint64_t id;
    int what;
    int64_t until;
    const char *note;
    const char *const *labels;
    size_t nlabels;
    const hdb_item_t *put;
    uint64_t seq;
} update_t;

static int update_fn(hdb__w_t *w, void *ctx)
{
    update_t *u = ctx;
    uint8_t kb[8];
    MDB_val k = {8, kb}, d;
    hdb__buf_t copy = {0};
    hdb_item_t *old = NULL, nw;
    uint64_t old_cseq = 0;
    int rc;

    hdb__be64(kb, u->id);
    rc = mdb_get(w->txn, w->db->dbi[HDB__DB_ITEMS], &k, &d);
    if (rc && !(rc == MDB_NOTFOUND && u->what == UP_PUT))
        return hdb__err(rc);
    if (rc == 0) {
        /* Decoded pointers would dangle once the page is rewritten. */
        hdb__buf_put(&copy, d.mv_data, d.mv_size);
        if (copy.oom)
            return CORDON_ENOMEM;
        if ((rc = hdb__item_decode(copy.p, copy.len, &w->view)))
            goto fail;
        old = &w->view.item;
        old_cseq = w->view.created_seq;
        if (old->deleted && u->what != UP_PUT) {
            rc = CORDON_ENOTFOUND;
            goto fail;
        }
    }
    if (u->what == UP_PUT) {
        uint32_t bank;
        if ((rc = hdb__bank_id_w(w, u->put->bank, &bank)))
            goto fail;
        nw = *u->put;
        nw.bank_id = bank;
    } else {
        nw = *old;
    }
    switch (u->what) {
    case UP_REMOVE:
        nw.deleted = 1;
        break;
    case UP_DISABLE:
        nw.disable_until = u->until;
        break;
    case UP_NOTE:
        nw.note = u->note;
        break;
    case UP_LABELS:
        nw.labels = u->labels;
        nw.nlabels = u->nlabels;
        break;
    default:
        break;
    }
    rc = hdb__item_store(w, u->id, old, old_cseq, &nw, &u->seq);
    if (rc == CORDON_OK && u->what == UP_PUT && u->id >= w->next_item)
        w->next_item = u->id + 1;
fail:
    hdb__buf_free(&copy);
    return rc;
}

static int update(hdb_t *db, update_t *u)
{
    if (!db || !u->id)
        return CORDON_EINVAL;
    return hdb__write(db, update_fn, u);
}

int hdb_item_remove(hdb_t *db, uint64_t id, uint64_t *seq)
{
    update_t u = {id, UP_REMOVE, 0, NULL, NULL, 0, NULL, 0};
    int rc = update(db, &u);
    if (rc == CORDON_OK && seq)
        *seq = u.seq;
    return rc;
}

int hdb_item_set_disable_until(hdb_t *db, uint64_t id, int64_t until)
{
    if (until < 0)
        return CORDON_EINVAL;
    update_t u = {id, UP_DISABLE, until, NULL, NULL, 0, NULL, 0};
    return update(db, &u);
}

int hdb_item_set_note(hdb_t *db, uint64_t id, const char *note)
{
    if (note && strlen(note) > HDB_MAX_NOTE)
        return CORDON_EINVAL;
    update_t u = {id, UP_NOTE, 0, note, NULL, 0, NULL, 0};
    return update(db, &u);
}

int hdb_item_set_labels(hdb_t *db, uint64_t id, const char *const *labels,
                        size_t nlabels)
{
    if (!hdb__valid_labels(labels, nlabels))
        return CORDON_EINVAL;
    update_t u = {id, UP_LABELS, 0, NULL, labels, nlabels, NULL, 0};
    return update(db, &u);
}

int hdb_item_put(hdb_t *db, const hdb_item_t *item, uint64_t *seq)
{
    if (!item)
        return CORDON_EINVAL;
    hdb_item_spec_t spec = {item->bank,    item->labels,  item->nlabels,
                            item->note,    item->prov,    item->disable_until,
                            item->signals, item->nsignals};
    if (!spec_ok(&spec) || item->id == 0 || item->id == UINT64_MAX)
        return CORDON_EINVAL;
    update_t u = {item->id, UP_PUT, 0, NULL, NULL, 0, item, 0};
    int rc = update(db, &u);
    if (rc == CORDON_OK && seq)
        *seq = u.seq;
    return rc;
}

/* ---------------------------------------------------------------- */
/* Batches                                                            */

typedef struct {
    hdb_item_t *item; /* deep copy, one block; item->bank is the bank name */
    unsigned flags;
} batch_entry_t;

struct hdb_batch {
    hdb_t *db;
    batch_entry_t *e;
    size_t n, cap;
    /* commit state, reset on every (re)run of the transaction */
    hdb_add_result_t *results;
    hdb_batch_result_t res;
};

int hdb_batch_begin(hdb_t *db, hdb_batch_t **out)
{
    if (!db || !out)
        return CORDON_EINVAL;
    if (db->readonly)
        return CORDON_EPERM;
    *out = calloc(1, sizeof **out);
    if (!*out)
        return CORDON_ENOMEM;
    (*out)->db = db;
    return CORDON_OK;
}

size_t hdb_batch_count(const hdb_batch_t *b)
{
    return b ? b->n : 0;
}

int hdb_batch_add(hdb_batch_t *b, const hdb_item_spec_t *spec, unsigned flags)
{
    if (!b || !spec_ok(spec))
        return CORDON_EINVAL;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        batch_entry_t *ne = realloc(b->e, cap * sizeof *ne);
        if (!ne)
            return CORDON_ENOMEM;
        b->e = ne;
        b->cap = cap;
    }
    hdb_item_t tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.bank = spec->bank;
    tmp.labels = spec->labels;
    tmp.nlabels = spec->nlabels;
    tmp.note = spec->note;
    tmp.prov = spec->prov;
    tmp.disable_until = spec->disable_until;
    tmp.signals = spec->signals;
    tmp.nsignals = spec->nsignals;
    hdb_item_t *copy = hdb__item_clone(&tmp);
    if (!copy)
        return CORDON_ENOMEM;
    b->e[b->n].item = copy;
    b->e[b->n].flags = flags;
    b->n++;
    return CORDON_OK;
}

static int batch_fn(hdb__w_t *w, void *ctx)
{
    hdb_batch_t *b = ctx;
    memset(&b->res, 0, sizeof b->res);
    for (size_t i = 0; i < b->n; i++) {
        const hdb_item_t *it = b->e[i].item;
        hdb_item_spec_t spec = {it->bank,    it->labels,  it->nlabels,
                                it->note,    it->prov,    it->disable_until,
                                it->signals, it->nsignals};
        hdb_add_result_t r;
        int rc = add_one(w, &spec, b->e[i].flags, &r);
        if (rc == CORDON_EEXIST) {
            b->res.duplicates++;
        } else if (rc) {
            return rc;
        } else {
            b->res.added++;
            if (!b->res.first_seq)
                b->res.first_seq = r.seq;
            b->res.last_seq = r.seq;
        }
        if (b->results)
            b->results[i] = r;
    }
    return CORDON_OK;
}

void hdb_batch_abort(hdb_batch_t *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        free(b->e[i].item);
    free(b->e);
    free(b);
}

int hdb_batch_commit(hdb_batch_t *b, hdb_add_result_t *results,
                     hdb_batch_result_t *res)
{
    if (!b)
        return CORDON_EINVAL;
    int rc = CORDON_OK;
    b->results = results;
    memset(&b->res, 0, sizeof b->res);
    if (b->n)
        rc = hdb__write(b->db, batch_fn, b);
    if (res) {
        if (rc == CORDON_OK)
            *res = b->res;
        else
            memset(res, 0, sizeof *res);
    }
    hdb_batch_abort(b);
    return rc;
}

/* ---------------------------------------------------------------- */
/* Reads                                                              */

typedef struct {
    const cordon_hash256_t *h;
    uint64_t *ids;
    size_t cap, found;
} pdq_scan_t;

static int pdq_scan_item(void *ctx, const hdb_item_t *it)
{
    pdq_scan_t *ps = ctx;
    for (size_t i = 0; i < it->nsignals; i++) {
        if (it->signals[i].type == HDB_SIG_PDQ &&
            memcmp(&it->signals[i].pdq, ps->h, sizeof *ps->h) == 0) {
            if (ps->found < ps->cap)
                ps->ids[ps->found] = it->id;
            ps->found++;
            break;
        }
    }
    return 0;
}

static int lookup_indexed(hdb_t *db, const hdb_signal_t *sig, const char *bank,
                          uint64_t *ids, size_t cap, size_t *n)
{
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    uint8_t key[SIGKEY_MAX];
    uint32_t bank_id = 0;
    size_t found = 0;
    int rc;

    if (!db || !sig || !n || (cap && !ids))
        return CORDON_EINVAL;
    *n = 0;
    size_t klen = sig_key(sig, 0, 0, key);
    if (!klen)
        return CORDON_EINVAL;
    size_t prefix = klen - 12;
    if ((rc = hdb__rtxn_begin(db, &txn)))
        return rc;
    if (bank) {
        if ((rc = hdb__bank_id(db, txn, bank, &bank_id)))
            goto fail;
        hdb__be32(key + prefix, bank_id);
        prefix += 4;
    }
    if ((rc = hdb__err(mdb_cursor_open(txn, db->dbi[HDB__DB_SIGVAL], &cur))))
        goto fail;
    MDB_val k = {klen, key}, d;
    int mrc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
    for (; mrc == 0; mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        if (k.mv_size != klen || memcmp(k.mv_data, key, prefix) != 0)
            break;
        if (found < cap)
            ids[found] = hdb__rd64((const uint8_t *)k.mv_data + klen - 8);
        found++;
    }
    if (mrc && mrc != MDB_NOTFOUND) {
        rc = hdb__err(mrc);
        goto fail;
    }
    *n = found;
    rc = CORDON_OK;
fail:
    if (cur)
        mdb_cursor_close(cur);
    hdb__rtxn_end(db, txn);
    return rc;
}

int hdb_lookup(hdb_t *db, const hdb_signal_t *sig, const char *bank,
               uint64_t *ids, size_t cap, size_t *n)
{
    if (!db || !sig || !n || (cap && !ids))
        return CORDON_EINVAL;
    *n = 0;
    if (sig->type != HDB_SIG_PDQ)
        return lookup_indexed(db, sig, bank, ids, cap, n);
    pdq_scan_t ps = {&sig->pdq, ids, cap, 0};
    int rc = hdb_item_list(db, bank, 0, 0, 0, pdq_scan_item, &ps, NULL);
    if (rc == CORDON_OK)
        *n = ps.found;
    return rc;
}

static const char *bank_name(const hdb__banks_t *bc, uint32_t id)
{
    return id < bc->n && bc->names[id] ? bc->names[id] : "";
}

int hdb_item_get(hdb_t *db, uint64_t id, hdb_item_t **out)
{
    MDB_txn *txn;
    hdb__item_view_t v;
    hdb__bank_view_t bv;
    uint8_t kb[8];
    MDB_val k = {8, kb}, d;
    int rc;

    if (!db || !out)
        return CORDON_EINVAL;
    *out = NULL;
    memset(&v, 0, sizeof v);
    hdb__be64(kb, id);
    if ((rc = hdb__rtxn_begin(db, &txn)))
        return rc;
    if ((rc = hdb__err(mdb_get(txn, db->dbi[HDB__DB_ITEMS], &k, &d))) ||
        (rc = hdb__item_decode(d.mv_data, d.mv_size, &v)) ||
        (rc = hdb__bank_load(db, txn, v.item.bank_id, &bv)))
        goto fail;
    v.item.id = id;
    v.item.bank = bv.bank.name;
    if (!(*out = hdb__item_clone(&v.item)))
        rc = CORDON_ENOMEM;
fail:
    hdb__rtxn_end(db, txn);
    hdb__item_view_free(&v);
    return rc;
}

int hdb_item_list(hdb_t *db, const char *bank, uint64_t after_id, size_t limit,
                  unsigned flags, hdb_item_cb cb, void *ctx, uint64_t *last_id)
{
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    hdb__banks_t banks = {0};
    hdb__item_view_t v;
    uint32_t bank_id = 0;
    uint8_t kb[12];
    MDB_val k, d;
    size_t n = 0;
    int rc, mrc;

    if (!db || !cb)
        return CORDON_EINVAL;
    if (last_id)
        *last_id = after_id;
    if (after_id == UINT64_MAX)
        return CORDON_OK;
    memset(&v, 0, sizeof v);
    if ((rc = hdb__rtxn_begin(db, &txn)))
        return rc;
    if ((rc = hdb__banks_load(db, txn, &banks)))
        goto fail;
    if (bank) {
        if ((rc = hdb__bank_id(db, txn, bank, &bank_id)))
            goto fail;
        hdb__be32(kb, bank_id);
        hdb__be64(kb + 4, after_id + 1);
        k.mv_size = 12;
        k.mv_data = kb;
        rc = hdb__err(mdb_cursor_open(txn, db->dbi[HDB__DB_BANKITEMS], &cur));
    } else {
        hdb__be64(kb, after_id + 1);
        k.mv_size = 8;
        k.mv_data = kb;
        rc = hdb__err(mdb_cursor_open(txn, db->dbi[HDB__DB_ITEMS], &cur));
    }
    if (rc)
        goto fail;
    for (mrc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
         mrc == 0 && (!limit || n < limit);
         mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        uint64_t id;
        if (bank) {
            if (k.mv_size != 12 || hdb__rd32(k.mv_data) != bank_id)
                break;
            id = hdb__rd64((const uint8_t *)k.mv_data + 4);
            uint8_t ib[8];
            MDB_val ik = {8, ib};
            hdb__be64(ib, id);
            if ((rc = hdb__err(mdb_get(txn, db->dbi[HDB__DB_ITEMS], &ik, &d))))
                goto fail;
        } else {
            if (k.mv_size != 8) {
                rc = CORDON_ECORRUPT;
                goto fail;
            }
            id = hdb__rd64(k.mv_data);
        }
        if ((rc = hdb__item_decode(d.mv_data, d.mv_size, &v)))
            goto fail;
        if (v.item.deleted && !(flags & HDB_LIST_TOMBSTONES))
            continue;
        v.item.id = id;
        v.item.bank = bank_name(&banks, v.item.bank_id);
        n++;
        if (last_id)
            *last_id = id;
        if ((rc = cb(ctx, &v.item)))
            goto fail;
    }
    rc = (mrc == 0 || mrc == MDB_NOTFOUND) ? CORDON_OK : hdb__err(mrc);
fail:
    if (cur)
        mdb_cursor_close(cur);
    hdb__rtxn_end(db, txn);
    hdb__banks_free(&banks);
    hdb__item_view_free(&v);
    return rc;
}

int hdb_iter_hashes(hdb_t *db, unsigned flags, hdb_hash_cb cb, void *ctx,
                    uint64_t *last_seq)
{
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    hdb__banks_t banks = {0};
    hdb__item_view_t v;
    hdb_hash_entry_t *buf = NULL;
    size_t nbuf = 0;
    MDB_val k, d;
    int rc, mrc;

    if (!db || !cb)
        return CORDON_EINVAL;
    if (!flags)
        flags = HDB_ITER_PDQ;
    memset(&v, 0, sizeof v);
    if (!(buf = malloc(ITER_CHUNK * sizeof *buf)))
        return CORDON_ENOMEM;
    if ((rc = hdb__rtxn_begin(db, &txn))) {
        free(buf);
        return rc;
    }
    if ((rc = hdb__banks_load(db, txn, &banks)))
        goto fail;
    if (last_seq) {
        MDB_val mk = {8, "last_seq"}, md;
        int grc = mdb_get(txn, db->dbi[HDB__DB_META], &mk, &md);
        *last_seq = grc == 0 && md.mv_size == 8 ? hdb__rd64(md.mv_data) : 0;
    }
    if ((rc = hdb__err(mdb_cursor_open(txn, db->dbi[HDB__DB_ITEMS], &cur))))
        goto fail;
    for (mrc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        if (k.mv_size != 8) {
            rc = CORDON_ECORRUPT;
            goto fail;
        }
        if ((rc = hdb__item_decode(d.mv_data, d.mv_size, &v)))
            goto fail;
        if (v.item.deleted)
            continue;
        uint64_t id = hdb__rd64(k.mv_data);
        uint8_t en =
            v.item.bank_id < banks.n ? banks.enabled[v.item.bank_id] : 0;
        for (size_t i = 0; i < v.item.nsignals; i++) {
            const hdb_signal_t *s = &v.item.signals[i];
            size_t nf;
            if (s->type == HDB_SIG_PDQ && (flags & HDB_ITER_PDQ))
                nf = 1;
            else if (s->type == HDB_SIG_VPDQ && (flags & HDB_ITER_VPDQ))
                nf = s->nframes;
            else
                continue;
            for (size_t f = 0; f < nf; f++) {
                hdb_hash_entry_t *e = &buf[nbuf++];
                e->item_id = id;
                e->disable_until = v.item.disable_until;
                e->bank_id = v.item.bank_id;
                e->bank_enabled = en;
                e->signal = (uint8_t)i;
                e->type = (uint8_t)s->type;
                if (s->type == HDB_SIG_PDQ) {
                    e->hash = s->pdq;
                    e->quality = s->quality;
                    e->frame = 0;
                } else {
                    e->hash = s->frames[f].hash;
                    e->quality = s->frames[f].quality;
                    e->frame = (uint32_t)f;
                }
                if (nbuf == ITER_CHUNK) {
                    if ((rc = cb(ctx, buf, nbuf)))
                        goto fail;
                    nbuf = 0;
                }
            }
        }
    }
    if (mrc != MDB_NOTFOUND) {
        rc = hdb__err(mrc);
        goto fail;
    }
    rc = nbuf ? cb(ctx, buf, nbuf) : CORDON_OK;
fail:
    if (cur)
        mdb_cursor_close(cur);
    hdb__rtxn_end(db, txn);
    hdb__banks_free(&banks);
    hdb__item_view_free(&v);
    free(buf);
    return rc;
}
