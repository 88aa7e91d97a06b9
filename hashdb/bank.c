/* bank.c - banks: named collections with an enabled flag, labels and a
 * default action. Banks are keyed by a small id; a name table maps live
 * names to ids, so a deleted bank's name can be used again. */
#include <stdlib.h>
#include <string.h>

#include "hdb_internal.h"

int hdb__bank_id(hdb_t *db, MDB_txn *txn, const char *name, uint32_t *id)
{
    MDB_val k = {strlen(name), (void *)name}, d;
    int rc = mdb_get(txn, db->dbi[HDB__DB_BANKNAMES], &k, &d);
    if (rc)
        return hdb__err(rc);
    if (d.mv_size != 4)
        return CORDON_ECORRUPT;
    *id = hdb__rd32(d.mv_data);
    return CORDON_OK;
}

int hdb__bank_id_w(hdb__w_t *w, const char *name, uint32_t *id)
{
    if (w->cached_bank_name[0] && strcmp(w->cached_bank_name, name) == 0) {
        *id = w->cached_bank_id;
        return CORDON_OK;
    }
    int rc = hdb__bank_id(w->db, w->txn, name, id);
    if (rc == CORDON_OK && strlen(name) <= HDB_MAX_NAME) {
        strcpy(w->cached_bank_name, name);
        w->cached_bank_id = *id;
    }
    return rc;
}

int hdb__bank_load(hdb_t *db, MDB_txn *txn, uint32_t id, hdb__bank_view_t *v)
{
    uint8_t kb[4];
    MDB_val k = {4, kb}, d;
    hdb__be32(kb, id);
    int rc = hdb__err(mdb_get(txn, db->dbi[HDB__DB_BANKS], &k, &d));
    if (rc)
        return rc;
    if ((rc = hdb__bank_decode(d.mv_data, d.mv_size, v)))
        return rc;
    v->bank.id = id;
    uint64_t c[HDB__NCOUNTS];
    if ((rc = hdb__bank_counts(db, txn, id, c)))
        return rc;
    v->bank.nitems = c[HDB__C_ITEMS];
    v->bank.ntombstones = c[HDB__C_TOMBS];
    return CORDON_OK;
}

int hdb__bank_counts(hdb_t *db, MDB_txn *txn, uint32_t id,
                     uint64_t c[HDB__NCOUNTS])
{
    uint8_t kb[4];
    MDB_val k = {4, kb}, d;
    hdb__be32(kb, id);
    memset(c, 0, sizeof(uint64_t) * HDB__NCOUNTS);
    int rc = mdb_get(txn, db->dbi[HDB__DB_COUNTS], &k, &d);
    if (rc == MDB_NOTFOUND)
        return CORDON_OK;
    if (rc)
        return hdb__err(rc);
    if (d.mv_size != 8 * HDB__NCOUNTS)
        return CORDON_ECORRUPT;
    for (int j = 0; j < HDB__NCOUNTS; j++) {
        const uint8_t *p = (const uint8_t *)d.mv_data + 8 * j;
        for (int b = 7; b >= 0; b--)
            c[j] = c[j] << 8 | p[b];
    }
    return CORDON_OK;
}

void hdb__banks_free(hdb__banks_t *bc)
{
    if (bc->names)
        for (uint32_t i = 0; i < bc->n; i++)
            free(bc->names[i]);
    free(bc->names);
    free(bc->enabled);
    memset(bc, 0, sizeof *bc);
}

int hdb__banks_load(hdb_t *db, MDB_txn *txn, hdb__banks_t *bc)
{
    MDB_cursor *cur = NULL;
    MDB_val k, d;
    hdb__bank_view_t v;
    int rc, mrc;

    memset(bc, 0, sizeof *bc);
    if ((rc = hdb__err(mdb_cursor_open(txn, db->dbi[HDB__DB_BANKS], &cur))))
        return rc;
    mrc = mdb_cursor_get(cur, &k, &d, MDB_LAST);
    if (mrc == MDB_NOTFOUND) {
        mdb_cursor_close(cur);
        return CORDON_OK;
    }
    if (mrc || k.mv_size != 4) {
        rc = mrc ? hdb__err(mrc) : CORDON_ECORRUPT;
        goto fail;
    }
    uint32_t maxid = hdb__rd32(k.mv_data);
    if (maxid >= 1u << 24) { /* ids are dense; a huge one means damage */
        rc = CORDON_ECORRUPT;
        goto fail;
    }
    bc->n = maxid + 1;
    bc->names = calloc(bc->n, sizeof *bc->names);
    bc->enabled = calloc(bc->n, 1);
    if (!bc->names || !bc->enabled) {
        rc = CORDON_ENOMEM;
        goto fail;
    }
    for (mrc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        if (k.mv_size != 4) {
            rc = CORDON_ECORRUPT;
            goto fail;
        }
        uint32_t id = hdb__rd32(k.mv_data);
        if ((rc = hdb__bank_decode(d.mv_data, d.mv_size, &v)))
            goto fail;
        if (id >= bc->n)
            continue;
        /* Deleted banks keep their name for the tombstones of their items,
         * and count as disabled. */
        if (!(bc->names[id] = strdup(v.bank.name))) {
            rc = CORDON_ENOMEM;
            goto fail;
        }
        bc->enabled[id] = (uint8_t)(v.bank.enabled && !v.bank.deleted);
    }
    if (mrc != MDB_NOTFOUND) {
        rc = hdb__err(mrc);
        goto fail;
    }
    mdb_cursor_close(cur);
    return CORDON_OK;
fail:
    mdb_cursor_close(cur);
    hdb__banks_free(bc);
    return rc;
}

/* ---------------------------------------------------------------- */

static int bank_put(hdb__w_t *w, const hdb_bank_t *bk, uint64_t created_seq)
{
    uint8_t kb[4];
    hdb__be32(kb, bk->id);
    w->buf.len = 0;
    hdb__bank_encode(&w->buf, bk, created_seq);
    if (w->buf.oom)
        return CORDON_ENOMEM;
    MDB_val k = {4, kb}, d = {w->buf.len, w->buf.p};
    return hdb__err(mdb_put(w->txn, w->db->dbi[HDB__DB_BANKS], &k, &d, 0));
}

static int bank_create_fn(hdb__w_t *w, void *ctx)
{
    hdb_bank_t *bk = ctx;
    MDB_val nk = {strlen(bk->name), (void *)bk->name}, d;
    int rc = mdb_get(w->txn, w->db->dbi[HDB__DB_BANKNAMES], &nk, &d);
    if (rc == 0)
        return CORDON_EEXIST;
    if (rc != MDB_NOTFOUND)
        return hdb__err(rc);
    bk->id = w->next_bank++;
    bk->seq = hdb__next_seq(w);
    bk->created = bk->updated = w->now;
    if ((rc = bank_put(w, bk, bk->seq)))
        return rc;
    uint8_t ib[4];
    hdb__be32(ib, bk->id);
    MDB_val iv = {4, ib};
    if ((rc = hdb__err(
             mdb_put(w->txn, w->db->dbi[HDB__DB_BANKNAMES], &nk, &iv, 0))))
        return rc;
    return hdb__log_put(w, bk->seq, HDB__LOG_BANK, bk->id, 0);
}

int hdb_bank_create(hdb_t *db, const hdb_bank_spec_t *spec, uint32_t *id)
{
    if (!db || !spec || !hdb__valid_name(spec->name) ||
        !hdb__valid_labels(spec->labels, spec->nlabels) ||
        !hdb__valid_text(spec->default_action, HDB_MAX_TEXT))
        return CORDON_EINVAL;
    hdb_bank_t bk = {0};
    bk.name = spec->name;
    bk.enabled = spec->enabled != 0;
    bk.default_action = spec->default_action;
    bk.labels = spec->labels;
    bk.nlabels = spec->nlabels;
    int rc = hdb__write(db, bank_create_fn, &bk);
    if (rc == CORDON_OK && id)
        *id = bk.id;
    return rc;
}

enum { SET_ENABLED, SET_LABELS, SET_ACTION, DELETE };

typedef struct {
    const char *name;
    int what;
    int enabled;
    const char *const *labels;
    size_t nlabels;
    const char *action;
} bank_update_t;

static int bank_update_fn(hdb__w_t *w, void *ctx)
{
    bank_update_t *u = ctx;
    hdb__bank_view_t v;
    hdb__buf_t copy = {0};
    uint32_t id;
    int rc;
    if ((rc = hdb__bank_id(w->db, w->txn, u->name, &id)))
        return rc;
    uint8_t kb[4];
    MDB_val k = {4, kb}, d;
    hdb__be32(kb, id);
    if ((rc = hdb__err(mdb_get(w->txn, w->db->dbi[HDB__DB_BANKS], &k, &d))))
        return rc;
    /* The view points into the page we are about to overwrite. */
    hdb__buf_put(&copy, d.mv_data, d.mv_size);
    if (copy.oom)
        return CORDON_ENOMEM;
    if ((rc = hdb__bank_decode(copy.p, copy.len, &v)))
        goto fail;
    hdb_bank_t bk = v.bank;
    bk.id = id;
    switch (u->what) {
    case SET_ENABLED:
        bk.enabled = u->enabled != 0;
        break;
    case SET_LABELS:
        bk.labels = u->labels;
        bk.nlabels = u->nlabels;
        break;
    case SET_ACTION:
        bk.default_action = u->action;
        break;
    case DELETE: {
        uint64_t c[HDB__NCOUNTS];
        if ((rc = hdb__bank_counts(w->db, w->txn, id, c)))
            goto fail;
        if (c[HDB__C_ITEMS]) {
            rc = CORDON_EBUSY;
            goto fail;
        }
        bk.deleted = 1;
        MDB_val nk = {strlen(u->name), (void *)u->name};
        if ((rc = hdb__err(
                 mdb_del(w->txn, w->db->dbi[HDB__DB_BANKNAMES], &nk, NULL))))
            goto fail;
        break;
    }
    }
    uint64_t old = bk.seq;
    bk.seq = hdb__next_seq(w);
    bk.updated = w->now;
    if ((rc = bank_put(w, &bk, v.created_seq)))
        goto fail;
    rc = hdb__log_put(w, bk.seq, HDB__LOG_BANK, id, old);
fail:
    hdb__buf_free(&copy);
    return rc;
}

static int bank_update(hdb_t *db, bank_update_t *u)
{
    if (!db || !u->name)
        return CORDON_EINVAL;
    return hdb__write(db, bank_update_fn, u);
}

int hdb_bank_set_enabled(hdb_t *db, const char *name, int enabled)
{
    bank_update_t u = {name, SET_ENABLED, enabled, NULL, 0, NULL};
    return bank_update(db, &u);
}

int hdb_bank_set_labels(hdb_t *db, const char *name, const char *const *labels,
                        size_t nlabels)
{
    if (!hdb__valid_labels(labels, nlabels))
        return CORDON_EINVAL;
    bank_update_t u = {name, SET_LABELS, 0, labels, nlabels, NULL};
    return bank_update(db, &u);
}

int hdb_bank_set_default_action(hdb_t *db, const char *name, const char *action)
{
    if (!hdb__valid_text(action, HDB_MAX_TEXT))
        return CORDON_EINVAL;
    bank_update_t u = {name, SET_ACTION, 0, NULL, 0, action};
    return bank_update(db, &u);
}

int hdb_bank_delete(hdb_t *db, const char *name)
{
    bank_update_t u = {name, DELETE, 0, NULL, 0, NULL};
    return bank_update(db, &u);
}

int hdb_bank_get(hdb_t *db, const char *name, hdb_bank_t **out)
{
    MDB_txn *txn;
    hdb__bank_view_t v;
    uint32_t id;
    int rc;
    if (!db || !name || !out)
        return CORDON_EINVAL;
    *out = NULL;
    if ((rc = hdb__rtxn_begin(db, &txn)))
        return rc;
    if (!(rc = hdb__bank_id(db, txn, name, &id)) &&
        !(rc = hdb__bank_load(db, txn, id, &v))) {
        *out = hdb__bank_clone(&v.bank);
        if (!*out)
            rc = CORDON_ENOMEM;
    }
    hdb__rtxn_end(db, txn);
    return rc;
}

int hdb_bank_list(hdb_t *db, hdb_bank_cb cb, void *ctx)
{
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    MDB_val k, d;
    hdb__bank_view_t v;
    int rc;
    if (!db || !cb)
        return CORDON_EINVAL;
    if ((rc = hdb__rtxn_begin(db, &txn)))
        return rc;
    if ((rc = hdb__err(mdb_cursor_open(txn, db->dbi[HDB__DB_BANKS], &cur))))
        goto fail;
    int mrc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
    for (; mrc == 0; mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        if (k.mv_size != 4) {
            rc = CORDON_ECORRUPT;
            goto fail;
        }
        if ((rc = hdb__bank_decode(d.mv_data, d.mv_size, &v)))
            goto fail;
        if (v.bank.deleted)
            continue;
        if ((rc = hdb__bank_load(db, txn, hdb__rd32(k.mv_data), &v)))
            goto fail;
        if ((rc = cb(ctx, &v.bank)))
            goto fail;
    }
    rc = mrc == MDB_NOTFOUND ? CORDON_OK : hdb__err(mrc);
fail:
    if (cur)
        mdb_cursor_close(cur);
    hdb__rtxn_end(db, txn);
    return rc;
}
