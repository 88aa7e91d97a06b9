/* hdb.c - the environment: open/close, schema version and migrations,
 * transactions that survive map growth, the change log, stats, key-value
 * meta and API keys. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hdb_internal.h"

#define DEFAULT_MAP ((size_t)64 << 20)
#define MIN_MAP ((size_t)128 << 10)
#define DEFAULT_MAX_MAP ((size_t)1 << 40)
#define MAX_KV_KEY 256
#define MAX_KV_VALUE 65536

static const char *const db_names[HDB__NDB] = {
    [HDB__DB_META] = "meta",
    [HDB__DB_BANKS] = "banks",
    [HDB__DB_BANKNAMES] = "banknames",
    [HDB__DB_ITEMS] = "items",
    [HDB__DB_BANKITEMS] = "bankitems",
    [HDB__DB_SIGVAL] = "sigval",
    [HDB__DB_LOG] = "log",
    [HDB__DB_COUNTS] = "counts",
    [HDB__DB_KV] = "kv",
    [HDB__DB_APIKEYS] = "apikeys",
    [HDB__DB_APIKEYHASH] = "apikeyhash",
};

int64_t hdb__now(void)
{
    return (int64_t)time(NULL);
}

int hdb__err(int rc)
{
    switch (rc) {
    case 0:
        return CORDON_OK;
    case MDB_NOTFOUND:
    case ENOENT:
        return CORDON_ENOTFOUND;
    case MDB_KEYEXIST:
        return CORDON_EEXIST;
    case MDB_MAP_FULL:
        return HDB__EMAPFULL;
    case ENOMEM:
        return CORDON_ENOMEM;
    case EACCES:
    case EPERM:
    case EROFS:
        return CORDON_EPERM;
    case EIO:
    case ENOSPC:
        return CORDON_EIO;
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
        return CORDON_EFORMAT;
    case MDB_READERS_FULL:
    case EBUSY:
    case EAGAIN:
        return CORDON_EBUSY;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
        return CORDON_ECORRUPT;
    default:
        return CORDON_EDB;
    }
}

/* ---------------------------------------------------------------- */
/* Map size                                                           */

/* Adopts a map size another process grew. Needs no transaction of this
 * handle to be active, hence the exclusive lock. */
static int adopt_map(hdb_t *db)
{
    pthread_rwlock_wrlock(&db->maplock);
    int rc = mdb_env_set_mapsize(db->env, 0);
    pthread_rwlock_unlock(&db->maplock);
    return hdb__err(rc);
}

static int grow_map(hdb_t *db)
{
    MDB_envinfo info;
    int rc = CORDON_OK;
    pthread_rwlock_wrlock(&db->maplock);
    mdb_env_info(db->env, &info);
    size_t cur = info.me_mapsize;
    if (cur >= db->max_map) {
        rc = CORDON_ETOOLARGE;
    } else {
        size_t nw = cur > db->max_map / 2 ? db->max_map : cur * 2;
        rc = hdb__err(mdb_env_set_mapsize(db->env, nw));
    }
    pthread_rwlock_unlock(&db->maplock);
    return rc;
}

int hdb__rtxn_begin(hdb_t *db, MDB_txn **txn)
{
    for (;;) {
        pthread_rwlock_rdlock(&db->maplock);
        int rc = mdb_txn_begin(db->env, NULL, MDB_RDONLY, txn);
        if (rc == 0)
            return CORDON_OK;
        pthread_rwlock_unlock(&db->maplock);
        if (rc != MDB_MAP_RESIZED)
            return hdb__err(rc);
        if ((rc = adopt_map(db)) != CORDON_OK)
            return rc;
    }
}

void hdb__rtxn_end(hdb_t *db, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&db->maplock);
}

/* ---------------------------------------------------------------- */
/* Meta helpers                                                       */

static int meta_get_u64(MDB_txn *txn, MDB_dbi dbi, const char *key, uint64_t *v)
{
    MDB_val k = {strlen(key), (void *)key}, d;
    int rc = mdb_get(txn, dbi, &k, &d);
    if (rc == MDB_NOTFOUND) {
        *v = 0;
        return CORDON_OK;
    }
    if (rc)
        return hdb__err(rc);
    if (d.mv_size == 8)
        *v = hdb__rd64(d.mv_data);
    else if (d.mv_size == 4)
        *v = hdb__rd32(d.mv_data);
    else
        return CORDON_ECORRUPT;
    return CORDON_OK;
}

static int meta_put(MDB_txn *txn, MDB_dbi dbi, const char *key, const void *p,
                    size_t n)
{
    MDB_val k = {strlen(key), (void *)key}, d = {n, (void *)p};
    return hdb__err(mdb_put(txn, dbi, &k, &d, 0));
}

static int meta_put_u64(MDB_txn *txn, MDB_dbi dbi, const char *key, uint64_t v)
{
    uint8_t b[8];
    hdb__be64(b, v);
    return meta_put(txn, dbi, key, b, 8);
}

static int meta_put_u32(MDB_txn *txn, MDB_dbi dbi, const char *key, uint32_t v)
{
    uint8_t b[4];
    hdb__be32(b, v);
    return meta_put(txn, dbi, key, b, 4);
}

/* ---------------------------------------------------------------- */
/* Write transactions                                                 */

MDB_cursor *hdb__wcur(hdb__w_t *w, int which)
{
    if (!w->cur[which] &&
        mdb_cursor_open(w->txn, w->db->dbi[which], &w->cur[which]) != 0)
        return NULL;
    return w->cur[which];
}

uint64_t hdb__next_seq(hdb__w_t *w)
{
    w->last_seq++;
    if (!w->first_seq_this_txn)
        w->first_seq_this_txn = w->last_seq;
    return w->last_seq;
}

int64_t *hdb__delta(hdb__w_t *w, uint32_t bank)
{
    for (size_t i = 0; i < w->ndeltas; i++)
        if (w->deltas[i].bank == bank)
            return w->deltas[i].d;
    if (w->ndeltas == w->deltas_cap) {
        size_t cap = w->deltas_cap ? w->deltas_cap * 2 : 8;
        hdb__delta_t *nd = realloc(w->deltas, cap * sizeof *nd);
        if (!nd)
            return NULL;
        w->deltas = nd;
        w->deltas_cap = cap;
    }
    hdb__delta_t *d = &w->deltas[w->ndeltas++];
    memset(d, 0, sizeof *d);
    d->bank = bank;
    return d->d;
}

int hdb__log_put(hdb__w_t *w, uint64_t seq, int kind, uint64_t id,
                 uint64_t old_seq)
{
    uint8_t kb[8], vb[9];
    MDB_val k = {8, kb}, d = {9, vb};
    int rc;
    if (old_seq) {
        hdb__be64(kb, old_seq);
        rc = mdb_del(w->txn, w->db->dbi[HDB__DB_LOG], &k, NULL);
        if (rc && rc != MDB_NOTFOUND)
            return hdb__err(rc);
    }
    MDB_cursor *c = hdb__wcur(w, HDB__DB_LOG);
    if (!c)
        return CORDON_EDB;
    hdb__be64(kb, seq);
    vb[0] = (uint8_t)kind;
    hdb__be64(vb + 1, id);
    return hdb__err(mdb_cursor_put(c, &k, &d, MDB_APPEND));
}

static int flush_counts(hdb__w_t *w)
{
    for (size_t i = 0; i < w->ndeltas; i++) {
        uint8_t kb[4], vb[8 * HDB__NCOUNTS];
        uint64_t c[HDB__NCOUNTS] = {0};
        MDB_val k = {4, kb}, d;
        hdb__be32(kb, w->deltas[i].bank);
        int rc = mdb_get(w->txn, w->db->dbi[HDB__DB_COUNTS], &k, &d);
        if (rc == 0 && d.mv_size == sizeof vb) {
            for (int j = 0; j < HDB__NCOUNTS; j++) {
                const uint8_t *p = (const uint8_t *)d.mv_data + 8 * j;
                for (int b = 7; b >= 0; b--)
                    c[j] = c[j] << 8 | p[b];
            }
        } else if (rc != 0 && rc != MDB_NOTFOUND) {
            return hdb__err(rc);
        }
        for (int j = 0; j < HDB__NCOUNTS; j++) {
            c[j] += (uint64_t)w->deltas[i].d[j];
            for (int b = 0; b < 8; b++)
                vb[8 * j + b] = (uint8_t)(c[j] >> (8 * b));
        }
        d.mv_size = sizeof vb;
        d.mv_data = vb;
        if ((rc = mdb_put(w->txn, w->db->dbi[HDB__DB_COUNTS], &k, &d, 0)))
            return hdb__err(rc);
    }
    return CORDON_OK;
}

static int load_meta(hdb__w_t *w)
{
    MDB_dbi m = w->db->dbi[HDB__DB_META];
    uint64_t nb;
    int rc;
    if ((rc = meta_get_u64(w->txn, m, "last_seq", &w->last_seq)) ||
        (rc = meta_get_u64(w->txn, m, "next_item", &w->next_item)) ||
        (rc = meta_get_u64(w->txn, m, "next_bank", &nb)) ||
        (rc = meta_get_u64(w->txn, m, "next_apikey", &w->next_apikey)))
        return rc;
    w->next_bank = (uint32_t)nb;
    if (!w->next_item)
        w->next_item = 1;
    if (!w->next_bank)
        w->next_bank = 1;
    if (!w->next_apikey)
        w->next_apikey = 1;
    return CORDON_OK;
}

static int store_meta(hdb__w_t *w, const hdb__w_t *before)
{
    MDB_dbi m = w->db->dbi[HDB__DB_META];
    int rc = CORDON_OK;
    if (w->last_seq != before->last_seq)
        rc = meta_put_u64(w->txn, m, "last_seq", w->last_seq);
    if (!rc && w->next_item != before->next_item)
        rc = meta_put_u64(w->txn, m, "next_item", w->next_item);
    if (!rc && w->next_bank != before->next_bank)
        rc = meta_put_u32(w->txn, m, "next_bank", w->next_bank);
    if (!rc && w->next_apikey != before->next_apikey)
        rc = meta_put_u64(w->txn, m, "next_apikey", w->next_apikey);
    return rc;
}

int hdb__write(hdb_t *db, hdb__wfn fn, void *ctx)
{
    hdb__w_t w;
    int rc;

    if (db->readonly)
        return CORDON_EPERM;
    memset(&w, 0, sizeof w);
    w.db = db;
    for (;;) {
        pthread_rwlock_rdlock(&db->maplock);
        rc = mdb_txn_begin(db->env, NULL, 0, &w.txn);
        if (rc) {
            pthread_rwlock_unlock(&db->maplock);
            if (rc == MDB_MAP_RESIZED && (rc = adopt_map(db)) == CORDON_OK)
                continue;
            rc = hdb__err(rc);
            break;
        }
        memset(w.cur, 0, sizeof w.cur);
        w.ndeltas = 0;
        w.first_seq_this_txn = 0;
        w.cached_bank_name[0] = 0;
        w.now = hdb__now();
        rc = load_meta(&w);
        hdb__w_t before = w;
        if (rc == CORDON_OK)
            rc = fn(&w, ctx);
        if (rc == CORDON_OK)
            rc = flush_counts(&w);
        if (rc == CORDON_OK)
            rc = store_meta(&w, &before);
        if (rc == CORDON_OK)
            rc = hdb__err(mdb_txn_commit(w.txn));
        else
            mdb_txn_abort(w.txn);
        w.txn = NULL;
        pthread_rwlock_unlock(&db->maplock);
        if (rc != HDB__EMAPFULL)
            break;
        if ((rc = grow_map(db)) != CORDON_OK)
            break;
    }
    free(w.deltas);
    hdb__buf_free(&w.buf);
    hdb__item_view_free(&w.view);
    return rc;
}

/* ---------------------------------------------------------------- */
/* Open, schema, migrations                                            */

/* Migrates schema `from` to from + 1 inside txn. Schema 1 is the first, so
 * there is nothing yet; a future schema 2 adds `case 1:` here. */
static int migrate_step(hdb_t *db, MDB_txn *txn, unsigned from)
{
    (void)db;
    (void)txn;
    switch (from) {
    default:
        return CORDON_EDBVERSION;
    }
}

static int init_or_migrate(hdb_t *db, MDB_txn *txn)
{
    MDB_dbi m = db->dbi[HDB__DB_META];
    uint64_t ver;
    int rc = meta_get_u64(txn, m, "schema_version", &ver);
    if (rc)
        return rc;
    if (ver == 0) {
        uint8_t id[16];
        if (getrandom(id, sizeof id, 0) != (ssize_t)sizeof id) {
            for (size_t i = 0; i < sizeof id; i++)
                id[i] = (uint8_t)(rand() ^ (int)(hdb__now() >> i));
        }
        if ((rc = meta_put_u32(txn, m, "schema_version", HDB_SCHEMA_VERSION)) ||
            (rc = meta_put(txn, m, "db_id", id, sizeof id)) ||
            (rc = meta_put_u64(txn, m, "created", (uint64_t)hdb__now())))
            return rc;
        return CORDON_OK;
    }
    if (ver > HDB_SCHEMA_VERSION)
        return CORDON_EDBVERSION;
    while (ver < HDB_SCHEMA_VERSION) {
        if ((rc = migrate_step(db, txn, (unsigned)ver)))
            return rc;
        ver++;
    }
    return meta_put_u32(txn, m, "schema_version", HDB_SCHEMA_VERSION);
}

static int open_dbis(hdb_t *db, MDB_txn *txn, unsigned flags)
{
    for (int i = 0; i < HDB__NDB; i++) {
        int rc = mdb_dbi_open(txn, db_names[i], flags, &db->dbi[i]);
        if (rc)
            return hdb__err(rc);
    }
    return CORDON_OK;
}

static int open_writable(hdb_t *db)
{
    for (;;) {
        MDB_txn *txn;
        int rc = mdb_txn_begin(db->env, NULL, 0, &txn);
        if (rc == MDB_MAP_RESIZED) {
            if ((rc = hdb__err(mdb_env_set_mapsize(db->env, 0))))
                return rc;
            continue;
        }
        if (rc)
            return hdb__err(rc);
        rc = open_dbis(db, txn, MDB_CREATE);
        if (rc == CORDON_OK)
            rc = init_or_migrate(db, txn);
        if (rc == CORDON_OK)
            rc = hdb__err(mdb_txn_commit(txn));
        else
            mdb_txn_abort(txn);
        if (rc != HDB__EMAPFULL)
            return rc;
        if ((rc = grow_map(db)))
            return rc;
    }
}

static int open_readonly(hdb_t *db)
{
    for (;;) {
        MDB_txn *txn;
        int rc = mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn);
        if (rc == MDB_MAP_RESIZED) {
            if ((rc = hdb__err(mdb_env_set_mapsize(db->env, 0))))
                return rc;
            continue;
        }
        if (rc)
            return hdb__err(rc);
        uint64_t ver = 0;
        rc = open_dbis(db, txn, 0);
        if (rc == CORDON_OK)
            rc = meta_get_u64(txn, db->dbi[HDB__DB_META], "schema_version",
                              &ver);
        if (rc == CORDON_OK && ver != HDB_SCHEMA_VERSION)
            rc = ver == 0 ? CORDON_ENOTFOUND : CORDON_EDBVERSION;
        if (rc == CORDON_OK)
            rc = hdb__err(mdb_txn_commit(txn));
        else
            mdb_txn_abort(txn);
        return rc;
    }
}

int hdb_open(const char *path, const hdb_opts_t *opts, hdb_t **out)
{
    hdb_opts_t o = {0};
    hdb_t *db = NULL;
    struct stat st;
    int rc;

    if (!path || !*path || !out)
        return CORDON_EINVAL;
    *out = NULL;
    if (opts)
        o = *opts;
    long psz = sysconf(_SC_PAGESIZE);
    size_t page = psz > 0 ? (size_t)psz : 4096;
    size_t map = o.initial_map_size ? o.initial_map_size : DEFAULT_MAP;
    size_t max = o.max_map_size ? o.max_map_size : DEFAULT_MAX_MAP;
    if (map < MIN_MAP)
        map = MIN_MAP;
    if (stat(path, &st) == 0) {
        /* An existing file gets room to grow at once rather than a first
         * write that always finds the map full. */
        if ((size_t)st.st_size > map / 2)
            map = (size_t)st.st_size * 2;
    } else if (o.readonly) {
        return errno == ENOENT ? CORDON_ENOTFOUND : hdb__err(errno);
    }
    if (max < map)
        max = map;
    map = (map + page - 1) / page * page;

    db = calloc(1, sizeof *db);
    if (!db)
        return CORDON_ENOMEM;
    if (pthread_rwlock_init(&db->maplock, NULL) != 0) {
        free(db);
        return CORDON_ENOMEM;
    }
    db->readonly = o.readonly != 0;
    db->max_map = max;
    if (!(db->path = strdup(path))) {
        rc = CORDON_ENOMEM;
        goto fail;
    }
    if ((rc = hdb__err(mdb_env_create(&db->env))))
        goto fail;
    if ((rc = hdb__err(mdb_env_set_maxdbs(db->env, 16))) ||
        (rc = hdb__err(mdb_env_set_mapsize(db->env, map))) ||
        (rc = hdb__err(mdb_env_set_maxreaders(
             db->env, o.max_readers ? o.max_readers : 126))))
        goto fail;
    unsigned flags = MDB_NOSUBDIR | MDB_NOTLS;
    if (o.readonly)
        flags |= MDB_RDONLY;
    if (o.nosync)
        flags |= MDB_NOSYNC;
    if ((rc = hdb__err(mdb_env_open(db->env, path, flags, 0644))))
        goto fail;
    int dead;
    mdb_reader_check(db->env, &dead); /* slots of crashed readers */
    rc = o.readonly ? open_readonly(db) : open_writable(db);
    if (rc)
        goto fail;
    *out = db;
    return CORDON_OK;

fail:
    if (db->env)
        mdb_env_close(db->env);
    free(db->path);
    pthread_rwlock_destroy(&db->maplock);
    free(db);
    return rc;
}

void hdb_close(hdb_t *db)
{
    if (!db)
        return;
    mdb_env_close(db->env);
    pthread_rwlock_destroy(&db->maplock);
    free(db->path);
    free(db);
}

const char *hdb_path(const hdb_t *db)
{
    return db ? db->path : NULL;
}

void hdb_free(void *record)
{
    free(record);
}

/* ---------------------------------------------------------------- */
/* Stats and the change log                                            */

int hdb_last_seq(hdb_t *db, uint64_t *seq)
{
    MDB_txn *txn;
    if (!db || !seq)
        return CORDON_EINVAL;
    int rc = hdb__rtxn_begin(db, &txn);
    if (rc)
        return rc;
    rc = meta_get_u64(txn, db->dbi[HDB__DB_META], "last_seq", seq);
    hdb__rtxn_end(db, txn);
    return rc;
}

int hdb_stats(hdb_t *db, hdb_stats_t *out)
{
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    MDB_val k, d;
    MDB_stat ms;
    MDB_envinfo info;
    uint64_t ver;
    int rc;

    if (!db || !out)
        return CORDON_EINVAL;
    memset(out, 0, sizeof *out);
    if ((rc = hdb__rtxn_begin(db, &txn)))
        return rc;
    if ((rc = meta_get_u64(txn, db->dbi[HDB__DB_META], "schema_version",
                           &ver)) ||
        (rc = meta_get_u64(txn, db->dbi[HDB__DB_META], "last_seq",
                           &out->last_seq)))
        goto fail;
    out->schema_version = (unsigned)ver;
    if ((rc = hdb__err(mdb_stat(txn, db->dbi[HDB__DB_BANKNAMES], &ms))))
        goto fail;
    out->banks = ms.ms_entries;
    if ((rc = hdb__err(mdb_cursor_open(txn, db->dbi[HDB__DB_COUNTS], &cur))))
        goto fail;
    int mrc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
    for (; mrc == 0; mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        if (d.mv_size != 8 * HDB__NCOUNTS) {
            rc = CORDON_ECORRUPT;
            goto fail;
        }
        uint64_t c[HDB__NCOUNTS];
        for (int j = 0; j < HDB__NCOUNTS; j++) {
            const uint8_t *p = (const uint8_t *)d.mv_data + 8 * j;
            c[j] = 0;
            for (int b = 7; b >= 0; b--)
                c[j] = c[j] << 8 | p[b];
        }
        out->items += c[HDB__C_ITEMS];
        out->tombstones += c[HDB__C_TOMBS];
        for (int t = 1; t <= HDB_SIG_MAX; t++)
            out->signals[t] += c[HDB__C_SIG(t)];
    }
    if (mrc != MDB_NOTFOUND) {
        rc = hdb__err(mrc);
        goto fail;
    }
    mdb_env_info(db->env, &info);
    mdb_env_stat(db->env, &ms);
    out->map_size = info.me_mapsize;
    out->page_size = ms.ms_psize;
    out->map_used = (uint64_t)(info.me_last_pgno + 1) * ms.ms_psize;
    out->max_readers = info.me_maxreaders;
    out->readers_used = info.me_numreaders;
    struct stat st;
    if (stat(db->path, &st) == 0)
        out->file_size = (uint64_t)st.st_size;
    rc = CORDON_OK;
fail:
    if (cur)
        mdb_cursor_close(cur);
    hdb__rtxn_end(db, txn);
    return rc;
}

const char *hdb_change_kind_name(hdb_change_kind_t k)
{
    switch (k) {
    case HDB_CHANGE_BANK_ADD:
        return "bank_add";
    case HDB_CHANGE_BANK_UPDATE:
        return "bank_update";
    case HDB_CHANGE_BANK_DELETE:
        return "bank_delete";
    case HDB_CHANGE_ITEM_ADD:
        return "item_add";
    case HDB_CHANGE_ITEM_UPDATE:
        return "item_update";
    case HDB_CHANGE_ITEM_DELETE:
        return "item_delete";
    }
    return "?";
}

int hdb_changes_since(hdb_t *db, uint64_t since, size_t limit, hdb_change_cb cb,
                      void *ctx, uint64_t *last)
{
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    hdb__banks_t banks = {0};
    hdb__item_view_t iv;
    hdb__bank_view_t bv;
    uint8_t kb[8];
    MDB_val k = {8, kb}, d;
    size_t n = 0;
    int rc;

    if (!db || !cb)
        return CORDON_EINVAL;
    if (last)
        *last = since;
    memset(&iv, 0, sizeof iv);
    if (since == UINT64_MAX)
        return CORDON_OK;
    if ((rc = hdb__rtxn_begin(db, &txn)))
        return rc;
    if ((rc = hdb__banks_load(db, txn, &banks)))
        goto fail;
    if ((rc = hdb__err(mdb_cursor_open(txn, db->dbi[HDB__DB_LOG], &cur))))
        goto fail;
    hdb__be64(kb, since + 1);
    int mrc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
    for (; mrc == 0 && (!limit || n < limit);
         mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        if (k.mv_size != 8 || d.mv_size != 9) {
            rc = CORDON_ECORRUPT;
            goto fail;
        }
        hdb_change_t ch = {0};
        const uint8_t *v = d.mv_data;
        uint64_t id = hdb__rd64(v + 1);
        ch.seq = hdb__rd64(k.mv_data);
        uint8_t ob[8];
        MDB_val ok = {8, ob}, od;
        if (v[0] == HDB__LOG_ITEM) {
            hdb__be64(ob, id);
            if ((rc = hdb__err(
                     mdb_get(txn, db->dbi[HDB__DB_ITEMS], &ok, &od))) ||
                (rc = hdb__item_decode(od.mv_data, od.mv_size, &iv)))
                goto fail;
            iv.item.id = id;
            iv.item.bank =
                iv.item.bank_id < banks.n && banks.names[iv.item.bank_id]
                    ? banks.names[iv.item.bank_id]
                    : "";
            ch.item = &iv.item;
            ch.kind = iv.item.deleted                 ? HDB_CHANGE_ITEM_DELETE
                      : iv.created_seq == iv.item.seq ? HDB_CHANGE_ITEM_ADD
                                                      : HDB_CHANGE_ITEM_UPDATE;
        } else if (v[0] == HDB__LOG_BANK) {
            if (id > UINT32_MAX) {
                rc = CORDON_ECORRUPT;
                goto fail;
            }
            if ((rc = hdb__bank_load(db, txn, (uint32_t)id, &bv)))
                goto fail;
            ch.bank = &bv.bank;
            ch.kind = bv.bank.deleted                 ? HDB_CHANGE_BANK_DELETE
                      : bv.created_seq == bv.bank.seq ? HDB_CHANGE_BANK_ADD
                                                      : HDB_CHANGE_BANK_UPDATE;
        } else {
            rc = CORDON_ECORRUPT;
            goto fail;
        }
        n++;
        if (last)
            *last = ch.seq;
        if ((rc = cb(ctx, &ch)))
            goto fail;
    }
    rc = (mrc == 0 || mrc == MDB_NOTFOUND) ? CORDON_OK : hdb__err(mrc);
fail:
    if (cur)
        mdb_cursor_close(cur);
    hdb__rtxn_end(db, txn);
    hdb__banks_free(&banks);
    hdb__item_view_free(&iv);
    return rc;
}

/* ---------------------------------------------------------------- */
/* Key-value meta                                                     */

typedef struct {
    const char *key;
    const void *value;
    size_t len;
    int del;
} kv_op_t;

static int kv_write(hdb__w_t *w, void *ctx)
{
    kv_op_t *op = ctx;
    MDB_val k = {strlen(op->key), (void *)op->key};
    if (op->del)
        return hdb__err(mdb_del(w->txn, w->db->dbi[HDB__DB_KV], &k, NULL));
    MDB_val d = {op->len, (void *)op->value};
    return hdb__err(mdb_put(w->txn, w->db->dbi[HDB__DB_KV], &k, &d, 0));
}

static int kv_key_ok(const char *key)
{
    return key && *key && strlen(key) <= MAX_KV_KEY;
}

int hdb_kv_set(hdb_t *db, const char *key, const void *value, size_t len)
{
    if (!db || !kv_key_ok(key) || len > MAX_KV_VALUE || (len && !value))
        return CORDON_EINVAL;
    kv_op_t op = {key, value, len, 0};
    return hdb__write(db, kv_write, &op);
}

int hdb_kv_del(hdb_t *db, const char *key)
{
    if (!db || !kv_key_ok(key))
        return CORDON_EINVAL;
    kv_op_t op = {key, NULL, 0, 1};
    return hdb__write(db, kv_write, &op);
}

int hdb_kv_get(hdb_t *db, const char *key, void *buf, size_t cap, size_t *len)
{
    MDB_txn *txn;
    if (!db || !kv_key_ok(key) || (cap && !buf))
        return CORDON_EINVAL;
    int rc = hdb__rtxn_begin(db, &txn);
    if (rc)
        return rc;
    MDB_val k = {strlen(key), (void *)key}, d;
    rc = hdb__err(mdb_get(txn, db->dbi[HDB__DB_KV], &k, &d));
    if (rc == CORDON_OK) {
        if (len)
            *len = d.mv_size;
        if (d.mv_size > cap)
            rc = CORDON_ESCRATCH;
        else if (d.mv_size)
            memcpy(buf, d.mv_data, d.mv_size);
    }
    hdb__rtxn_end(db, txn);
    return rc;
}

/* ---------------------------------------------------------------- */
/* API keys                                                           */

enum { AK_NAME = 1, AK_ROLE = 2, AK_HASH = 3, AK_CREATED = 4, AK_REVOKED = 5 };

static int apikey_decode(const void *p, size_t n, uint64_t id, hdb_apikey_t *k)
{
    hdb__rd_t r = {(const uint8_t *)p, (const uint8_t *)p + n};
    hdb__field_t f;
    int rc, have_hash = 0;
    memset(k, 0, sizeof *k);
    k->id = id;
    if (n < 1 || *r.p != HDB__REC_VERSION)
        return CORDON_ECORRUPT;
    r.p++;
    while ((rc = hdb__rd_next(&r, &f)) == 1) {
        switch (f.tag) {
        case AK_NAME:
            k->name = hdb__field_str(&f);
            break;
        case AK_ROLE:
            k->role = hdb__field_str(&f);
            break;
        case AK_HASH:
            if (f.wt != 2 || f.len != 32)
                return CORDON_ECORRUPT;
            memcpy(k->token_sha256, f.data, 32);
            have_hash = 1;
            break;
        case AK_CREATED:
            k->created = hdb__unzigzag(f.u);
            break;
        case AK_REVOKED:
            k->revoked_at = hdb__unzigzag(f.u);
            break;
        default:
            break;
        }
    }
    if (rc < 0 || !k->name || !k->role || !have_hash)
        return CORDON_ECORRUPT;
    return CORDON_OK;
}

static void apikey_encode(hdb__buf_t *b, const hdb_apikey_t *k)
{
    hdb__buf_u8(b, HDB__REC_VERSION);
    hdb__tlv_str(b, AK_NAME, k->name);
    hdb__tlv_str(b, AK_ROLE, k->role);
    hdb__tlv_bytes(b, AK_HASH, k->token_sha256, 32);
    hdb__tlv_i(b, AK_CREATED, k->created);
    if (k->revoked_at)
        hdb__tlv_i(b, AK_REVOKED, k->revoked_at);
}

typedef struct {
    hdb_apikey_t key;
    uint64_t id_out;
} apikey_op_t;

static int apikey_add_fn(hdb__w_t *w, void *ctx)
{
    apikey_op_t *op = ctx;
    MDB_val hk = {32, op->key.token_sha256}, d;
    int rc = mdb_get(w->txn, w->db->dbi[HDB__DB_APIKEYHASH], &hk, &d);
    if (rc == 0)
        return CORDON_EEXIST;
    if (rc != MDB_NOTFOUND)
        return hdb__err(rc);
    uint64_t id = w->next_apikey++;
    uint8_t kb[8];
    hdb__be64(kb, id);
    op->key.created = w->now;
    w->buf.len = 0;
    apikey_encode(&w->buf, &op->key);
    if (w->buf.oom)
        return CORDON_ENOMEM;
    MDB_val k = {8, kb}, v = {w->buf.len, w->buf.p}, iv = {8, kb};
    if ((rc = mdb_put(w->txn, w->db->dbi[HDB__DB_APIKEYS], &k, &v, 0)) ||
        (rc = mdb_put(w->txn, w->db->dbi[HDB__DB_APIKEYHASH], &hk, &iv, 0)))
        return hdb__err(rc);
    op->id_out = id;
    return CORDON_OK;
}

int hdb_apikey_add(hdb_t *db, const char *name, const char *role,
                   const uint8_t token_sha256[32], uint64_t *id)
{
    if (!db || !token_sha256 || !name || !*name || !role || !*role ||
        !hdb__valid_text(name, HDB_MAX_TEXT) ||
        !hdb__valid_text(role, HDB_MAX_TEXT))
        return CORDON_EINVAL;
    apikey_op_t op = {{0}, 0};
    op.key.name = name;
    op.key.role = role;
    memcpy(op.key.token_sha256, token_sha256, 32);
    int rc = hdb__write(db, apikey_add_fn, &op);
    if (rc == CORDON_OK && id)
        *id = op.id_out;
    return rc;
}

static int apikey_revoke_fn(hdb__w_t *w, void *ctx)
{
    uint64_t id = *(uint64_t *)ctx;
    uint8_t kb[8];
    hdb__be64(kb, id);
    MDB_val k = {8, kb}, d;
    hdb_apikey_t key;
    int rc = hdb__err(mdb_get(w->txn, w->db->dbi[HDB__DB_APIKEYS], &k, &d));
    if (rc)
        return rc;
    /* Decoded strings point into the page; copy before writing over it. */
    hdb__buf_t copy = {0};
    hdb__buf_put(&copy, d.mv_data, d.mv_size);
    if (copy.oom)
        return CORDON_ENOMEM;
    rc = apikey_decode(copy.p, copy.len, id, &key);
    if (rc == CORDON_OK && key.revoked_at)
        rc = CORDON_ENOTFOUND;
    if (rc == CORDON_OK) {
        key.revoked_at = w->now > 0 ? w->now : 1;
        w->buf.len = 0;
        apikey_encode(&w->buf, &key);
        MDB_val v = {w->buf.len, w->buf.p};
        rc = w->buf.oom ? CORDON_ENOMEM
                        : hdb__err(mdb_put(w->txn, w->db->dbi[HDB__DB_APIKEYS],
                                           &k, &v, 0));
    }
    hdb__buf_free(&copy);
    return rc;
}

int hdb_apikey_revoke(hdb_t *db, uint64_t id)
{
    if (!db)
        return CORDON_EINVAL;
    return hdb__write(db, apikey_revoke_fn, &id);
}

int hdb_apikey_list(hdb_t *db, hdb_apikey_cb cb, void *ctx)
{
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    MDB_val k, d;
    int rc;
    if (!db || !cb)
        return CORDON_EINVAL;
    if ((rc = hdb__rtxn_begin(db, &txn)))
        return rc;
    if ((rc = hdb__err(mdb_cursor_open(txn, db->dbi[HDB__DB_APIKEYS], &cur))))
        goto fail;
    int mrc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
    for (; mrc == 0; mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        hdb_apikey_t key;
        if (k.mv_size != 8) {
            rc = CORDON_ECORRUPT;
            goto fail;
        }
        if ((rc = apikey_decode(d.mv_data, d.mv_size, hdb__rd64(k.mv_data),
                                &key)))
            goto fail;
        if ((rc = cb(ctx, &key)))
            goto fail;
    }
    rc = mrc == MDB_NOTFOUND ? CORDON_OK : hdb__err(mrc);
fail:
    if (cur)
        mdb_cursor_close(cur);
    hdb__rtxn_end(db, txn);
    return rc;
}

int hdb_apikey_lookup(hdb_t *db, const uint8_t token_sha256[32],
                      hdb_apikey_t **out)
{
    MDB_txn *txn;
    MDB_val hk = {32, (void *)token_sha256}, d;
    hdb_apikey_t key;
    int rc;
    if (!db || !token_sha256 || !out)
        return CORDON_EINVAL;
    *out = NULL;
    if ((rc = hdb__rtxn_begin(db, &txn)))
        return rc;
    if ((rc = hdb__err(mdb_get(txn, db->dbi[HDB__DB_APIKEYHASH], &hk, &d))))
        goto fail;
    if (d.mv_size != 8) {
        rc = CORDON_ECORRUPT;
        goto fail;
    }
    uint64_t id = hdb__rd64(d.mv_data);
    MDB_val k = {8, d.mv_data};
    if ((rc = hdb__err(mdb_get(txn, db->dbi[HDB__DB_APIKEYS], &k, &d))) ||
        (rc = apikey_decode(d.mv_data, d.mv_size, id, &key)))
        goto fail;
    if (key.revoked_at) {
        rc = CORDON_EPERM;
        goto fail;
    }
    size_t nn = strlen(key.name) + 1, nr = strlen(key.role) + 1;
    hdb_apikey_t *o = malloc(sizeof *o + nn + nr);
    if (!o) {
        rc = CORDON_ENOMEM;
        goto fail;
    }
    *o = key;
    char *s = (char *)(o + 1);
    o->name = memcpy(s, key.name, nn);
    o->role = memcpy(s + nn, key.role, nr);
    *out = o;
fail:
    hdb__rtxn_end(db, txn);
    return rc;
}
