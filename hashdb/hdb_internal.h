/*
 * hdb_internal.h - shared internals of the hashdb module (not installed).
 *
 * On-disk layout (schema 1). Every integer inside a key is big-endian so
 * that LMDB's default memcmp order is numeric order.
 *   meta       "schema_version" -> u32 BE; "last_seq", "next_item",
 *              "next_apikey" -> u64 BE; "next_bank" -> u32 BE;
 *              "db_id" -> 16 random bytes; "created" -> i64 BE
 *   banks      bank id u32 -> bank record (TLV)
 *   banknames  name bytes -> bank id u32 (live banks only)
 *   items      item id u64 -> item record (TLV), tombstones included
 *   bankitems  bank id u32 | item id u64 -> "" (live items only)
 *   sigval     type u8 | value (md5 16, sha256 32, vpdq a 32-byte digest
 *              of its entries) | bank u32 | item u64 -> "" (live items
 *              only; PDQ is not indexed, see hdb__sig_index_value)
 *   log        seq u64 -> kind u8 | id u64 (the latest change of each
 *              object only: older entries of an object are deleted)
 *   counts     bank id u32 -> 8 x u64 LE (items, tombstones, signals of
 *              types 1..4, 2 spare)
 *   kv         user key bytes -> value bytes
 *   apikeys    key id u64 -> api key record (TLV)
 *   apikeyhash token sha256 (32) -> key id u64
 *
 * Records are "version byte (1), then fields". A field is a varint key
 * (tag << 3 | wire type) followed by a varint (wire type 0), 8 bytes little
 * endian (1) or a varint length and that many bytes (2). Readers skip tags
 * they do not know, so fields can be added without a migration. Strings are
 * stored with their NUL so that decoded records can point into LMDB pages.
 */
#ifndef CORDON_HDB_INTERNAL_H
#define CORDON_HDB_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "cordon_error.h"
#include "hdb.h"

enum {
    HDB__DB_META,
    HDB__DB_BANKS,
    HDB__DB_BANKNAMES,
    HDB__DB_ITEMS,
    HDB__DB_BANKITEMS,
    HDB__DB_SIGVAL,
    HDB__DB_LOG,
    HDB__DB_COUNTS,
    HDB__DB_KV,
    HDB__DB_APIKEYS,
    HDB__DB_APIKEYHASH,
    HDB__NDB
};

/* Internal only: LMDB said MDB_MAP_FULL; the write loop grows and retries. */
#define HDB__EMAPFULL (-100000)

#define HDB__REC_VERSION 1
#define HDB__LOG_BANK 1
#define HDB__LOG_ITEM 2
#define HDB__NCOUNTS 8
#define HDB__C_ITEMS 0
#define HDB__C_TOMBS 1
#define HDB__C_SIG(t) (1 + (t)) /* t in 1..4 */
#define HDB__PDQ_Q_UNKNOWN 255

struct hdb {
    MDB_env *env;
    MDB_dbi dbi[HDB__NDB];
    /* Held shared by every transaction of this handle, exclusively while the
     * map is resized: LMDB requires that no transaction of the process is
     * active then. */
    pthread_rwlock_t maplock;
    int readonly;
    size_t max_map;
    char *path;
};

/* ---- growable byte buffer ---- */
typedef struct {
    uint8_t *p;
    size_t len, cap;
    int oom;
} hdb__buf_t;

void hdb__buf_free(hdb__buf_t *b);
int hdb__buf_reserve(hdb__buf_t *b, size_t extra);
void hdb__buf_put(hdb__buf_t *b, const void *p, size_t n);
void hdb__buf_u8(hdb__buf_t *b, uint8_t v);
void hdb__buf_varint(hdb__buf_t *b, uint64_t v);
void hdb__tlv_u(hdb__buf_t *b, unsigned tag, uint64_t v);
void hdb__tlv_i(hdb__buf_t *b, unsigned tag, int64_t v);
void hdb__tlv_bytes(hdb__buf_t *b, unsigned tag, const void *p, size_t n);
void hdb__tlv_str(hdb__buf_t *b, unsigned tag, const char *s);

/* ---- TLV reader ---- */
typedef struct {
    const uint8_t *p, *end;
} hdb__rd_t;

typedef struct {
    unsigned tag, wt;
    uint64_t u;          /* wire types 0 and 1 */
    const uint8_t *data; /* wire type 2 */
    size_t len;
} hdb__field_t;

/* 1: a field was read; 0: end of record; CORDON_ECORRUPT. */
int hdb__rd_next(hdb__rd_t *r, hdb__field_t *f);
int hdb__rd_varint(hdb__rd_t *r, uint64_t *v);
int64_t hdb__unzigzag(uint64_t v);
/* A wire-type-2 field holding a NUL-terminated string, or NULL. */
const char *hdb__field_str(const hdb__field_t *f);

/* ---- big-endian helpers ---- */
static inline void hdb__be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void hdb__be64(uint8_t *p, uint64_t v)
{
    hdb__be32(p, (uint32_t)(v >> 32));
    hdb__be32(p + 4, (uint32_t)v);
}
static inline uint32_t hdb__rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}
static inline uint64_t hdb__rd64(const uint8_t *p)
{
    return (uint64_t)hdb__rd32(p) << 32 | hdb__rd32(p + 4);
}

/* PDQ hash <-> 32 bytes in hex order (big-endian 256-bit number). */
void hdb__hash_to_bytes(const cordon_hash256_t *h, uint8_t out[32]);
void hdb__hash_from_bytes(const uint8_t in[32], cordon_hash256_t *h);

/* ---- validation (hdb_codec.c) ---- */
int hdb__valid_name(const char *s); /* bank names */
int hdb__valid_label(const char *s);
int hdb__valid_text(const char *s, size_t max); /* NULL ok; no controls */
int hdb__valid_labels(const char *const *l, size_t n);
int hdb__valid_signal(const hdb_signal_t *s);
int hdb__valid_item_fields(const hdb_item_spec_t *spec);

/* ---- signal payloads ---- */
/* Bytes of the index value of a signal (16 or 32), or 0 for none. */
size_t hdb__sig_index_value(const hdb_signal_t *s, uint8_t out[32]);
void hdb__sig_encode(hdb__buf_t *b, const hdb_signal_t *s);

/* ---- records ---- */
typedef struct {
    hdb_item_t item;
    uint64_t created_seq;
    const char *labels[HDB_MAX_LABELS];
    hdb_signal_t sigs[HDB_MAX_SIGNALS];
    hdb_vpdq_frame_t *frames; /* heap, reused across decodes */
    size_t frames_cap;
} hdb__item_view_t;

/* Encodes a whole item record from *it (its id is the key, not stored). */
void hdb__item_encode(hdb__buf_t *b, const hdb_item_t *it,
                      uint64_t created_seq);
/* Decodes into v; pointers refer into p..p+n and v's own arrays. item.bank
 * is left NULL (the caller resolves bank_id). Zero v once before first use
 * and release with hdb__item_view_free(). */
int hdb__item_decode(const void *p, size_t n, hdb__item_view_t *v);
void hdb__item_view_free(hdb__item_view_t *v);
/* One malloc'd block holding a deep copy of *it; NULL on OOM. */
hdb_item_t *hdb__item_clone(const hdb_item_t *it);

typedef struct {
    hdb_bank_t bank;
    uint64_t created_seq;
    const char *labels[HDB_MAX_LABELS];
} hdb__bank_view_t;

void hdb__bank_encode(hdb__buf_t *b, const hdb_bank_t *bk,
                      uint64_t created_seq);
int hdb__bank_decode(const void *p, size_t n, hdb__bank_view_t *v);
hdb_bank_t *hdb__bank_clone(const hdb_bank_t *bk);

/* ---- transactions (hdb.c) ---- */
int hdb__err(int mdb_rc);
int hdb__rtxn_begin(hdb_t *db, MDB_txn **txn);
void hdb__rtxn_end(hdb_t *db, MDB_txn *txn);

typedef struct {
    uint32_t bank;
    int64_t d[HDB__NCOUNTS];
} hdb__delta_t;

typedef struct hdb__w {
    hdb_t *db;
    MDB_txn *txn;
    MDB_cursor *cur[HDB__NDB];
    uint64_t last_seq, first_seq_this_txn;
    uint64_t next_item;
    uint32_t next_bank;
    uint64_t next_apikey;
    int64_t now;
    hdb__delta_t *deltas;
    size_t ndeltas, deltas_cap;
    hdb__buf_t buf;          /* scratch for encoding */
    hdb__item_view_t view;   /* scratch for decoding */
    uint32_t cached_bank_id; /* last bank name resolved */
    char cached_bank_name[HDB_MAX_NAME + 1];
} hdb__w_t;

typedef int (*hdb__wfn)(hdb__w_t *w, void *ctx);

/* Runs fn in a write transaction, growing the map and running it again as
 * often as MDB_MAP_FULL requires. fn must not have effects outside the
 * transaction and its ctx that a rerun would double. */
int hdb__write(hdb_t *db, hdb__wfn fn, void *ctx);
MDB_cursor *hdb__wcur(hdb__w_t *w, int which);
uint64_t hdb__next_seq(hdb__w_t *w);
int64_t *hdb__delta(hdb__w_t *w, uint32_t bank);
int hdb__log_put(hdb__w_t *w, uint64_t seq, int kind, uint64_t id,
                 uint64_t old_seq);
int64_t hdb__now(void);

/* ---- bank cache for readers (bank.c) ---- */
typedef struct {
    uint32_t n;   /* entries 0..n-1, indexed by bank id */
    char **names; /* NULL for unused ids; deleted banks included */
    uint8_t *enabled;
} hdb__banks_t;
int hdb__banks_load(hdb_t *db, MDB_txn *txn, hdb__banks_t *bc);
void hdb__banks_free(hdb__banks_t *bc);
/* Resolves a live bank name to its id in any transaction. */
int hdb__bank_id(hdb_t *db, MDB_txn *txn, const char *name, uint32_t *id);
int hdb__bank_id_w(hdb__w_t *w, const char *name, uint32_t *id);
int hdb__bank_load(hdb_t *db, MDB_txn *txn, uint32_t id, hdb__bank_view_t *v);
int hdb__bank_counts(hdb_t *db, MDB_txn *txn, uint32_t id,
                     uint64_t c[HDB__NCOUNTS]);

/* ---- items (item.c) ---- */
/* Writes a new version of item id (old may be NULL: a new item), keeping
 * the secondary tables, counts and the log in step. new->deleted makes a
 * tombstone. Returns the new seq through *seq. */
int hdb__item_store(hdb__w_t *w, uint64_t id, const hdb_item_t *old,
                    uint64_t old_created_seq, hdb_item_t *nw, uint64_t *seq);
/* Finds a live item of bank with the same index value; 1 found, 0 not. */
int hdb__sig_find(hdb__w_t *w, const hdb_signal_t *s, uint32_t bank,
                  uint64_t *id);

#endif
