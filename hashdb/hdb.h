/*
 * hdb.h - the Cordon hash database: banks, items, signals, labels and a
 * change log, stored in LMDB.
 *
 * Caveats:
 * - A database is one LMDB environment kept in a single file at `path`
 *   (LMDB's MDB_NOSUBDIR layout) plus a lock file `path`-lock beside it.
 *   One writer and any number of readers may use it at once, across
 *   processes. Readers never block the writer and see a consistent snapshot.
 * - Threads: an hdb_t may be shared by threads. Every call runs in its own
 *   LMDB transaction (read transactions are not tied to threads: MDB_NOTLS),
 *   and writers are serialised by LMDB. A batch (hdb_batch_t) must be used
 *   by one thread at a time.
 * - Callbacks run inside a read transaction of the handle. They must not
 *   call any write function of the same handle (a write may need to grow the
 *   map, which waits for every transaction of the handle to end, so it
 *   would wait forever); read functions are fine. Pointers handed to a
 *   callback are valid only until it returns. A callback returns 0 to go on,
 *   anything else to stop: the iterating function then returns that value.
 * - LMDB forbids opening the same file twice in one process, and a handle
 *   must not be used across fork(): open the database after forking.
 * - The map grows by itself: a write that finds the map full is aborted,
 *   the map is doubled and the whole transaction is run again. A process
 *   whose map another process grew adopts the new size transparently.
 * - Durability: each write call and each batch commit is one transaction;
 *   it is synced to disk at commit unless hdb_opts_t.nosync is set. A crash
 *   leaves every item either whole or absent, never half written.
 * - Strings are NUL-terminated UTF-8; control characters are refused in
 *   names and labels (not in notes). Times are Unix seconds.
 * - Labels are free-form "key:value" strings: a non-empty key without ':',
 *   a non-empty value, no whitespace or control characters.
 * - PDQ quality HDB_QUALITY_UNKNOWN (-1) marks hashes imported without one
 *   (exchange formats carry only the hex); matchers should trust them.
 * - Error codes are those of cordon_error.h. Beyond the ones listed per
 *   function, every call may return CORDON_EDB (LMDB failure), CORDON_EIO,
 *   CORDON_ENOMEM, CORDON_ECORRUPT (a record that does not decode) and
 *   CORDON_ETOOLARGE (the map reached hdb_opts_t.max_map_size).
 */
#ifndef CORDON_HDB_H
#define CORDON_HDB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cordon_error.h"
#include "cordon_pdq.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Schema version written by this library. Newer files are refused with
 *  CORDON_EDBVERSION; older ones are migrated on a writable open. */
#define HDB_SCHEMA_VERSION 1

/* Hard limits, checked before anything is written. */
#define HDB_MAX_NAME 128           /* bank names, bytes */
#define HDB_MAX_LABEL 256          /* one label, bytes */
#define HDB_MAX_LABELS 64          /* labels per item or bank */
#define HDB_MAX_TEXT 256           /* added_by, source_name, default_action */
#define HDB_MAX_NOTE 65536         /* note, bytes */
#define HDB_MAX_SIGNALS 16         /* signals per item */
#define HDB_MAX_VPDQ_FRAMES 131072 /* distinct frame entries per vPDQ */

#define HDB_QUALITY_UNKNOWN (-1)

typedef struct hdb hdb_t;
typedef struct hdb_batch hdb_batch_t;

typedef struct {
    int readonly;            /* open read-only; the file must exist */
    int nosync;              /* do not fsync at commit (bulk loads, tests) */
    size_t initial_map_size; /* bytes; 0 = 64 MiB; the map grows by itself */
    size_t max_map_size;     /* growth stops here; 0 = 1 TiB */
    unsigned max_readers;    /* concurrent read transactions; 0 = 126 */
} hdb_opts_t;

/* ------------------------------------------------------------------ */
/* Signals                                                              */

typedef enum {
    HDB_SIG_PDQ = 1,    /* 256-bit PDQ hash + quality */
    HDB_SIG_MD5 = 2,    /* 16-byte MD5 of the file */
    HDB_SIG_SHA256 = 3, /* 32-byte SHA-256 of the file */
    HDB_SIG_VPDQ = 4    /* list of frame hashes (vPDQ) */
} hdb_sigtype_t;
#define HDB_SIG_MAX 4

/* One entry of a vPDQ signal: consecutive frames with the same hash and
 * quality are stored once, with the timestamp of the first and a count. */
typedef struct {
    cordon_hash256_t hash;
    int quality;      /* 0..100 or HDB_QUALITY_UNKNOWN */
    double timestamp; /* seconds from the start of the video */
    uint32_t count;   /* >= 1 consecutive frames with this hash */
} hdb_vpdq_frame_t;

/* A signal value. Only the members of its type are meaningful. */
typedef struct {
    hdb_sigtype_t type;
    int quality;                    /* PDQ: 0..100 or HDB_QUALITY_UNKNOWN */
    cordon_hash256_t pdq;           /* PDQ */
    uint8_t digest[32];             /* MD5 (first 16 bytes) or SHA-256 */
    const hdb_vpdq_frame_t *frames; /* vPDQ: borrowed, never freed by hdb */
    size_t nframes;
} hdb_signal_t;

/** Canonical lower-case name of a type: "pdq", "md5", "sha256", "vpdq";
 *  "?" for anything else. Static storage. */
CORDON_API const char *hdb_sigtype_name(hdb_sigtype_t t);

/**
 * Parses a signal type name, case-insensitively. Besides the canonical
 * names it accepts python-threatexchange's SignalType names "video_md5",
 * "photo_md5", "video_sha256" and "photo_sha256" (its "pdq" and "vpdq" are
 * ours already). Returns CORDON_OK or CORDON_EPARSE.
 */
CORDON_API int hdb_sigtype_from_name(const char *name, size_t len,
                                     hdb_sigtype_t *out);

/**
 * Parses the text form of a signal of type t (len bytes, no NUL needed):
 * - pdq: 64 hex digits, optionally followed by ",quality" (0..100); without
 *   it the quality is HDB_QUALITY_UNKNOWN;
 * - md5 / sha256: 32 / 64 hex digits;
 * - vpdq: a JSON list of "pdqhex,quality,timestamp" strings (the local-file
 *   exchange format). Consecutive identical (hash, quality) frames are
 *   folded into one entry with a count. Frames go to the caller's array
 *   `frames` of `cap` entries; out->frames points into it.
 * Surrounding blanks are ignored; hex may be either case.
 * @return CORDON_OK, CORDON_EHEX (bad hex or length), CORDON_EPARSE (bad
 *         syntax or quality), CORDON_ESCRATCH (vpdq: cap too small),
 *         CORDON_EEMPTY (vpdq: no frames), CORDON_EINVAL.
 */
CORDON_API int hdb_signal_parse(hdb_sigtype_t t, const char *s, size_t len,
                                hdb_signal_t *out, hdb_vpdq_frame_t *frames,
                                size_t cap);

/**
 * Formats a signal's value as text (the inverse of hdb_signal_parse; PDQ
 * is written as bare hex unless with_quality is set and the quality known).
 * Writes at most cap bytes including the NUL; *len (may be NULL) receives
 * the length the full text needs, without the NUL.
 * @return CORDON_OK, CORDON_ESCRATCH (cap too small; *len tells how much is
 *         needed), CORDON_EINVAL.
 */
CORDON_API int hdb_signal_format(const hdb_signal_t *sig, int with_quality,
                                 char *buf, size_t cap, size_t *len);

/* ------------------------------------------------------------------ */
/* Records                                                              */

typedef enum {
    HDB_SOURCE_UNKNOWN = 0,
    HDB_SOURCE_PLATFORM = 1, /* added by the platform's own moderators */
    HDB_SOURCE_EXCHANGE = 2, /* fetched from a hash-sharing exchange */
    HDB_SOURCE_FILE = 3,     /* imported from a file */
    HDB_SOURCE_PEER = 4      /* replicated from another Cordon */
} hdb_source_t;

/** "unknown", "platform", "exchange", "file", "peer"; static storage. */
CORDON_API const char *hdb_source_name(hdb_source_t s);
/** Inverse of hdb_source_name; CORDON_OK or CORDON_EPARSE. */
CORDON_API int hdb_source_from_name(const char *name, hdb_source_t *out);

typedef struct {
    const char *added_by;    /* who added it (user, key name); may be NULL */
    hdb_source_t source;     /* where it came from */
    const char *source_name; /* which platform/exchange/file/peer; or NULL */
    int64_t added_at;        /* when it was first added; 0 = now (on add) */
} hdb_provenance_t;

typedef struct {
    const char *name;           /* 1..HDB_MAX_NAME bytes */
    int enabled;                /* matches against a disabled bank are off */
    const char *default_action; /* free text, e.g. "block"; may be NULL */
    const char *const *labels;
    size_t nlabels;
} hdb_bank_spec_t;

typedef struct {
    uint32_t id;
    const char *name;
    int enabled;
    const char *default_action; /* "" when none */
    const char *const *labels;
    size_t nlabels;
    int64_t created, updated;
    uint64_t seq;         /* change-log sequence of its last change */
    int deleted;          /* a tombstone (only seen in the change log) */
    uint64_t nitems;      /* live items */
    uint64_t ntombstones; /* deleted items */
} hdb_bank_t;

typedef struct {
    const char *bank; /* bank name; must exist */
    const char *const *labels;
    size_t nlabels;
    const char *note; /* may be NULL */
    hdb_provenance_t prov;
    int64_t disable_until; /* 0 = enabled */
    const hdb_signal_t *signals;
    size_t nsignals; /* 1..HDB_MAX_SIGNALS */
} hdb_item_spec_t;

typedef struct {
    uint64_t id;
    uint32_t bank_id;
    const char *bank; /* name */
    int deleted;      /* tombstone */
    const char *const *labels;
    size_t nlabels;
    const char *note; /* "" when none */
    hdb_provenance_t prov;
    int64_t disable_until;
    int64_t created, updated; /* local times */
    uint64_t seq;             /* change-log sequence of its last change */
    const hdb_signal_t *signals;
    size_t nsignals; /* tombstones keep their signals for the record */
} hdb_item_t;

/** Frees a record returned by hdb_bank_get(), hdb_item_get() or
 *  hdb_apikey_lookup(); NULL is fine. */
CORDON_API void hdb_free(void *record);

/* ------------------------------------------------------------------ */
/* Environment                                                          */

/**
 * Opens (creating unless readonly) the database at path.
 * A new file gets schema HDB_SCHEMA_VERSION; an older schema is migrated in
 * one write transaction; a newer one is refused.
 * @param opts may be NULL for defaults.
 * @return CORDON_OK, CORDON_EINVAL, CORDON_ENOTFOUND (readonly and no such
 *         database), CORDON_EPERM, CORDON_EFORMAT (not an LMDB file),
 *         CORDON_EDBVERSION (newer schema, or older and readonly),
 *         CORDON_EDB.
 */
CORDON_API int hdb_open(const char *path, const hdb_opts_t *opts, hdb_t **out);

/** Closes the handle. No call on it may be running. NULL is fine. */
CORDON_API void hdb_close(hdb_t *db);

typedef struct {
    unsigned schema_version;
    uint64_t banks;                    /* live banks */
    uint64_t items;                    /* live items */
    uint64_t tombstones;               /* deleted items */
    uint64_t signals[HDB_SIG_MAX + 1]; /* live signals by type */
    uint64_t last_seq;
    uint64_t file_size; /* bytes on disk */
    uint64_t map_size;  /* current map size */
    uint64_t map_used;  /* bytes of the map in use */
    unsigned page_size;
    unsigned max_readers, readers_used;
} hdb_stats_t;

/** Fills *out. @return CORDON_OK or an LMDB error. */
CORDON_API int hdb_stats(hdb_t *db, hdb_stats_t *out);

/** The path the handle was opened with; valid until hdb_close(). */
CORDON_API const char *hdb_path(const hdb_t *db);

/* ------------------------------------------------------------------ */
/* Banks                                                                */

/**
 * Creates a bank. @param id may be NULL.
 * @return CORDON_OK, CORDON_EEXIST (a live bank has that name),
 *         CORDON_EINVAL (bad name, label or action), CORDON_EPERM (readonly).
 */
CORDON_API int hdb_bank_create(hdb_t *db, const hdb_bank_spec_t *spec,
                               uint32_t *id);

/** Looks a live bank up by name; *out is one malloc'd block to free with
 *  hdb_free(). @return CORDON_OK or CORDON_ENOTFOUND. */
CORDON_API int hdb_bank_get(hdb_t *db, const char *name, hdb_bank_t **out);

typedef int (*hdb_bank_cb)(void *ctx, const hdb_bank_t *bank);

/** Calls cb for every live bank, in creation order, from one snapshot. */
CORDON_API int hdb_bank_list(hdb_t *db, hdb_bank_cb cb, void *ctx);

/** @return CORDON_OK, CORDON_ENOTFOUND, CORDON_EPERM. Each change is
 *  logged with a new sequence number (even when nothing changed). */
CORDON_API int hdb_bank_set_enabled(hdb_t *db, const char *name, int enabled);
CORDON_API int hdb_bank_set_labels(hdb_t *db, const char *name,
                                   const char *const *labels, size_t nlabels);
CORDON_API int hdb_bank_set_default_action(hdb_t *db, const char *name,
                                           const char *action);

/** Deletes an empty bank (its item tombstones stay). The name becomes free
 *  again. @return CORDON_OK, CORDON_ENOTFOUND, CORDON_EBUSY (live items). */
CORDON_API int hdb_bank_delete(hdb_t *db, const char *name);

/* ------------------------------------------------------------------ */
/* Items                                                                */

typedef struct {
    uint64_t id;   /* new item, or the existing one for a duplicate */
    uint64_t seq;  /* change-log sequence of the add; 0 for a duplicate */
    int duplicate; /* 1 if an identical signal already was in the bank */
} hdb_add_result_t;

/* Flags of hdb_item_add() / hdb_batch_add(). */
#define HDB_ADD_DEDUP_VPDQ                                                     \
    1u /* also treat an identical vPDQ signal in the                           \
          bank as a duplicate (MD5 and SHA-256 always                          \
          are; PDQ hashes are not indexed by value,                            \
          hdb_import deduplicates them itself) */

/**
 * Adds an item with its signals to a bank. If any of its MD5 or SHA-256
 * signals (and, with HDB_ADD_DEDUP_VPDQ, vPDQ ones) already belongs to a
 * live item of the same bank, nothing is written: the call returns
 * CORDON_EEXIST with res->id = that item and res->duplicate = 1. Identical
 * signals in different banks are not duplicates.
 * @param res may be NULL.
 * @return CORDON_OK, CORDON_EEXIST (duplicate), CORDON_ENOTFOUND (no such
 *         bank), CORDON_EINVAL (limits, bad labels or signals), CORDON_EPERM.
 */
CORDON_API int hdb_item_add(hdb_t *db, const hdb_item_spec_t *spec,
                            unsigned flags, hdb_add_result_t *res);

/** Reads an item, tombstones included (deleted = 1). *out is one malloc'd
 *  block to free with hdb_free(). @return CORDON_OK or CORDON_ENOTFOUND. */
CORDON_API int hdb_item_get(hdb_t *db, uint64_t id, hdb_item_t **out);

typedef int (*hdb_item_cb)(void *ctx, const hdb_item_t *item);

#define HDB_LIST_TOMBSTONES 1u /* hdb_item_list: include deleted items */

/**
 * Calls cb for items with id > after_id in increasing id order, at most
 * limit of them (0 = no limit), from one snapshot. bank NULL lists every
 * bank. *last_id (may be NULL) receives the id of the last item delivered,
 * or after_id if none: pass it back as after_id for the next page.
 * Tombstones are skipped unless flags has HDB_LIST_TOMBSTONES (and are never
 * listed by bank).
 * @return CORDON_OK, CORDON_ENOTFOUND (no such bank), or cb's value.
 */
CORDON_API int hdb_item_list(hdb_t *db, const char *bank, uint64_t after_id,
                             size_t limit, unsigned flags, hdb_item_cb cb,
                             void *ctx, uint64_t *last_id);

/** Deletes an item, leaving a tombstone. @param seq may be NULL.
 *  @return CORDON_OK, CORDON_ENOTFOUND (no such live item), CORDON_EPERM. */
CORDON_API int hdb_item_remove(hdb_t *db, uint64_t id, uint64_t *seq);

/** Disables an item until a time (0 = enable again).
 *  @return CORDON_OK, CORDON_ENOTFOUND, CORDON_EINVAL, CORDON_EPERM. */
CORDON_API int hdb_item_set_disable_until(hdb_t *db, uint64_t id,
                                          int64_t until);
/** Replaces the note (NULL clears it). */
CORDON_API int hdb_item_set_note(hdb_t *db, uint64_t id, const char *note);
/** Replaces the labels. */
CORDON_API int hdb_item_set_labels(hdb_t *db, uint64_t id,
                                   const char *const *labels, size_t nlabels);

/**
 * Writes an item with the given id as it is (replication and sync): creates
 * it, or replaces it whole; item->deleted turns it into a tombstone. The
 * bank must exist. No deduplication; created/updated/seq of *item are
 * ignored (the local change log gives it a new sequence).
 * @param seq may be NULL. @return CORDON_OK, CORDON_ENOTFOUND (bank),
 *        CORDON_EINVAL, CORDON_EPERM.
 */
CORDON_API int hdb_item_put(hdb_t *db, const hdb_item_t *item, uint64_t *seq);

/* ------------------------------------------------------------------ */
/* Batches (bulk import)                                                */

typedef struct {
    uint64_t added, duplicates;
    uint64_t first_seq, last_seq; /* 0 when nothing was added */
} hdb_batch_result_t;

/** Starts an empty batch. Nothing touches the database until commit. */
CORDON_API int hdb_batch_begin(hdb_t *db, hdb_batch_t **out);

/**
 * Queues an item; everything is copied, so spec may be reused at once.
 * Validation happens here: a refused spec returns CORDON_EINVAL and leaves
 * the batch as it was.
 * @return CORDON_OK, CORDON_EINVAL, CORDON_ENOMEM.
 */
CORDON_API int hdb_batch_add(hdb_batch_t *b, const hdb_item_spec_t *spec,
                             unsigned flags);

/** Items queued so far. */
CORDON_API size_t hdb_batch_count(const hdb_batch_t *b);

/**
 * Writes every queued item in one transaction (all or nothing), in order,
 * then frees the batch whatever the outcome. Duplicates (as in
 * hdb_item_add, also within the batch) are skipped and counted.
 * @param results NULL, or an array of hdb_batch_count() entries that gets
 *        each item's outcome.
 * @param res may be NULL.
 * @return CORDON_OK, CORDON_ENOTFOUND (a bank is missing: nothing written),
 *         CORDON_EPERM.
 */
CORDON_API int hdb_batch_commit(hdb_batch_t *b, hdb_add_result_t *results,
                                hdb_batch_result_t *res);

/** Drops a batch without writing. NULL is fine. */
CORDON_API void hdb_batch_abort(hdb_batch_t *b);

/* ------------------------------------------------------------------ */
/* Signal lookups and bulk iteration                                    */

/**
 * Exact lookup: live items holding exactly this signal value, optionally
 * only in one bank. Fills ids[0..cap) in increasing (bank, id) order; *n
 * receives the total found, which may exceed cap.
 * MD5 and SHA-256 are indexed. vPDQ is found by a 256-bit digest of all its
 * entries (hash, quality, timestamp, count): only an identical list matches.
 * PDQ compares the hash only and is NOT indexed: this scans every item of
 * the bank (or database), about 0.3 s per million; match PDQ through the
 * in-memory Hamming index (distance 0) instead when speed matters.
 * @return CORDON_OK (also when none: *n = 0), CORDON_ENOTFOUND (no such
 *         bank), CORDON_EINVAL.
 */
CORDON_API int hdb_lookup(hdb_t *db, const hdb_signal_t *sig, const char *bank,
                          uint64_t *ids, size_t cap, size_t *n);

/* One perceptual hash for the in-memory index. */
typedef struct {
    uint64_t item_id;
    cordon_hash256_t hash;
    int64_t disable_until; /* item's; 0 = enabled */
    uint32_t bank_id;
    uint32_t frame; /* vPDQ: entry index within the signal; PDQ: 0 */
    int quality;    /* 0..100 or HDB_QUALITY_UNKNOWN */
    uint8_t type;   /* HDB_SIG_PDQ or HDB_SIG_VPDQ */
    uint8_t bank_enabled;
    uint8_t signal; /* index of the signal within its item */
} hdb_hash_entry_t;

typedef int (*hdb_hash_cb)(void *ctx, const hdb_hash_entry_t *entries,
                           size_t n);

#define HDB_ITER_PDQ 1u  /* PDQ signals */
#define HDB_ITER_VPDQ 2u /* every frame entry of vPDQ signals */

/**
 * Calls cb with chunks (up to 4096 entries) of every perceptual hash of the
 * live items, in item id order, from one snapshot. Disabled banks and items
 * are included, with their flags, so that an index can honour them at
 * query time. flags selects the types (0 = HDB_ITER_PDQ).
 * *last_seq (may be NULL) receives the change-log position of the snapshot:
 * follow up with hdb_changes_since(*last_seq) to stay current.
 */
CORDON_API int hdb_iter_hashes(hdb_t *db, unsigned flags, hdb_hash_cb cb,
                               void *ctx, uint64_t *last_seq);

/* ------------------------------------------------------------------ */
/* Change log                                                           */

typedef enum {
    HDB_CHANGE_BANK_ADD = 1,
    HDB_CHANGE_BANK_UPDATE = 2,
    HDB_CHANGE_BANK_DELETE = 3,
    HDB_CHANGE_ITEM_ADD = 4,
    HDB_CHANGE_ITEM_UPDATE = 5,
    HDB_CHANGE_ITEM_DELETE = 6
} hdb_change_kind_t;

/** "bank_add", ..., "item_delete"; static storage. */
CORDON_API const char *hdb_change_kind_name(hdb_change_kind_t k);

typedef struct {
    uint64_t seq;
    hdb_change_kind_t kind;
    const hdb_bank_t *bank; /* bank changes, else NULL */
    const hdb_item_t *item; /* item changes (full record), else NULL */
} hdb_change_t;

typedef int (*hdb_change_cb)(void *ctx, const hdb_change_t *change);

/**
 * Delivers the changes with seq > since, in sequence order, at most limit
 * (0 = all), from one snapshot. The log keeps only the latest change of each
 * bank and item, with the record as it is now: an object changed twice after
 * `since` is delivered once, at its last sequence number. So a reader that
 * applies the changes as upserts (tombstones as deletes) ends up with the
 * same state. ITEM_ADD means created and unchanged since; treat UPDATE as
 * an upsert too.
 * *last (may be NULL) receives the seq of the last change delivered, or
 * `since` if none: pass it back for the next page.
 */
CORDON_API int hdb_changes_since(hdb_t *db, uint64_t since, size_t limit,
                                 hdb_change_cb cb, void *ctx, uint64_t *last);

/** The sequence number of the latest write (0 for a new database). Cheap:
 *  a long-running reader may poll it to notice other processes' writes. */
CORDON_API int hdb_last_seq(hdb_t *db, uint64_t *seq);

/* ------------------------------------------------------------------ */
/* Key-value meta (sync checkpoints and the like)                       */

/** Stores value (len <= 65536 bytes) under key (1..256 bytes). Not logged. */
CORDON_API int hdb_kv_set(hdb_t *db, const char *key, const void *value,
                          size_t len);
/** Copies the value into buf (cap bytes); *len receives its size.
 *  @return CORDON_OK, CORDON_ENOTFOUND, CORDON_ESCRATCH (cap too small). */
CORDON_API int hdb_kv_get(hdb_t *db, const char *key, void *buf, size_t cap,
                          size_t *len);
/** @return CORDON_OK or CORDON_ENOTFOUND. */
CORDON_API int hdb_kv_del(hdb_t *db, const char *key);

/* ------------------------------------------------------------------ */
/* API keys (for the HTTP server). Only SHA-256 digests of tokens are kept. */

typedef struct {
    uint64_t id;
    const char *name;
    const char *role; /* free text, e.g. "read", "write", "admin" */
    uint8_t token_sha256[32];
    int64_t created;
    int64_t revoked_at; /* 0 = active */
} hdb_apikey_t;

/** Adds a key. @param id may be NULL.
 *  @return CORDON_OK, CORDON_EEXIST (same token digest), CORDON_EINVAL. */
CORDON_API int hdb_apikey_add(hdb_t *db, const char *name, const char *role,
                              const uint8_t token_sha256[32], uint64_t *id);
typedef int (*hdb_apikey_cb)(void *ctx, const hdb_apikey_t *key);
/** Calls cb for every key, revoked ones included, in id order. */
CORDON_API int hdb_apikey_list(hdb_t *db, hdb_apikey_cb cb, void *ctx);
/** @return CORDON_OK or CORDON_ENOTFOUND (no such active key). */
CORDON_API int hdb_apikey_revoke(hdb_t *db, uint64_t id);
/** Finds an active key by token digest; *out to free with hdb_free().
 *  @return CORDON_OK, CORDON_ENOTFOUND, CORDON_EPERM (revoked). */
CORDON_API int hdb_apikey_lookup(hdb_t *db, const uint8_t token_sha256[32],
                                 hdb_apikey_t **out);

/* ------------------------------------------------------------------ */
/* Interchange (hashdb/interchange.c)                                   */

/*
 * Formats:
 * - HDB_FMT_TE_CSV, python-threatexchange's dataset CSV: columns
 *   signal_type,signal_str,collab,category,tags (tags separated by spaces),
 *   RFC 4180 quoting. On import a header line is optional; when present its
 *   column names decide the order (python-threatexchange itself writes
 *   collab first). Mapping:
 *     collab   <-> bank name (an empty collab uses params.bank);
 *     category <-> label "category:<category>" (first such label on export);
 *     tags     <-> one label per tag: a tag holding ':' is the label itself,
 *                  any other tag T is the label "tag:T" (and back);
 *     each row is one item with one signal (an item with several signals
 *     exports as several rows).
 * Duplicates: a record whose signal already is in its bank is counted as a
 *   duplicate and skipped: MD5/SHA-256/vPDQ through the value index, PDQ
 *   through an in-memory set of the whole 256-bit hashes already in each
 *   bank the import touches (read once per import; about 46 bytes per
 *   hash). keep_pdq_duplicates turns the PDQ and vPDQ checks off.
 * - HDB_FMT_LOCAL, python-threatexchange's local-file exchange: one
 *   "<signal_type> <signal>" per line, all into params.bank. Blank lines and
 *   lines starting with '#' are skipped. With params.default_type set, a
 *   line may hold just the signal.
 * Signal type names: see hdb_sigtype_from_name(). Export writes canonical
 *   names, or python-threatexchange's (video_md5, video_sha256) when
 *   pytx_names is set.
 *
 * Import error policy: by default an import is all or nothing with respect
 * to bad lines. The input is first parsed whole; if any line is bad, every
 * bad line is reported (up to max_errors) through on_error with its line
 * number and nothing is written (CORDON_EPARSE). With skip_bad_lines, bad
 * lines are reported and skipped and the good ones imported. Either way the
 * items are written in transactions of batch_items items, so an interrupted
 * import leaves whole items, never half ones; duplicates are counted, not
 * errors, which makes re-running an import harmless.
 */
typedef enum { HDB_FMT_TE_CSV = 1, HDB_FMT_LOCAL = 2 } hdb_format_t;

/** "te-csv" (also "csv") or "local" (also "txt"); CORDON_EPARSE else. */
CORDON_API int hdb_format_from_name(const char *name, hdb_format_t *out);

/* line is 1-based (the first line of a multi-line CSV record); err is a
 * cordon error code; msg is a static or temporary English description. */
typedef void (*hdb_import_error_cb)(void *ctx, uint64_t line, int err,
                                    const char *msg);

typedef struct {
    hdb_format_t format;
    const char *bank;           /* local: target bank (required); te-csv: bank
                                   for rows with an empty collab (optional) */
    int create_banks;           /* create missing banks (enabled) */
    int skip_bad_lines;         /* see the policy above */
    int ignore_unknown_types;   /* skip rows of unsupported signal types
                                   silently (counted) instead of as errors */
    int keep_pdq_duplicates;    /* do not deduplicate identical PDQ hashes */
    hdb_sigtype_t default_type; /* local: type of lines without one; 0 none */
    const char *const *labels;  /* added to every item */
    size_t nlabels;
    hdb_provenance_t prov; /* of every item (added_at 0 = now) */
    size_t batch_items;    /* items per transaction; 0 = 20000 */
    size_t max_errors;     /* reports at most; 0 = 100 */
    hdb_import_error_cb on_error;
    void *error_ctx;
} hdb_import_params_t;

typedef struct {
    uint64_t lines;         /* physical lines read */
    uint64_t records;       /* signal records seen (after header/blanks) */
    uint64_t added;         /* items written */
    uint64_t duplicates;    /* records already present */
    uint64_t bad;           /* bad lines (all of them, even past max_errors) */
    uint64_t unknown_types; /* skipped with ignore_unknown_types */
    uint64_t first_bad_line;
    uint64_t banks_created;
    uint64_t first_seq, last_seq; /* of the items written; 0 if none */
} hdb_import_result_t;

/**
 * Imports len bytes of text in the given format (see the policy above).
 * @param res may be NULL.
 * @return CORDON_OK, CORDON_EPARSE (bad lines: strict mode wrote nothing),
 *         CORDON_ENOTFOUND (local format: params.bank missing and not
 *         create_banks), CORDON_EINVAL, CORDON_EPERM.
 */
CORDON_API int hdb_import(hdb_t *db, const hdb_import_params_t *params,
                          const char *text, size_t len,
                          hdb_import_result_t *res);

/** hdb_import() on the contents of a file ("-" is not special).
 *  @return as hdb_import(), plus CORDON_EIO / CORDON_ENOTFOUND for the file. */
CORDON_API int hdb_import_file(hdb_t *db, const hdb_import_params_t *params,
                               const char *path, hdb_import_result_t *res);

typedef struct {
    hdb_format_t format;
    const char *bank;   /* only this bank; NULL = all */
    uint64_t since_seq; /* only items changed after this sequence; 0 = all */
    unsigned types;     /* bit (1 << hdb_sigtype_t) per type; 0 = all */
    int no_header;      /* te-csv: omit the header line */
    int pytx_names;     /* write video_md5 / video_sha256 */
} hdb_export_params_t;

typedef struct {
    uint64_t items;    /* live items exported */
    uint64_t rows;     /* lines written (header excluded) */
    uint64_t last_seq; /* snapshot position: the next --since */
} hdb_export_result_t;

/* Output sink: returns 0 on success, non-zero to abort the export (that
 * value is returned). */
typedef int (*hdb_write_cb)(void *ctx, const char *buf, size_t len);

/**
 * Exports the live items changed after since_seq (all with 0), in
 * change-log order, from one snapshot. Tombstones cannot be expressed in
 * these formats and are left out; a replica that needs deletes reads
 * hdb_changes_since() instead.
 * @param res may be NULL.
 * @return CORDON_OK, CORDON_ENOTFOUND (no such bank), CORDON_EINVAL, or the
 *         writer's value.
 */
CORDON_API int hdb_export(hdb_t *db, const hdb_export_params_t *params,
                          hdb_write_cb write, void *ctx,
                          hdb_export_result_t *res);

/** hdb_export() into a stdio stream. @return as hdb_export(), CORDON_EIO. */
CORDON_API int hdb_export_file(hdb_t *db, const hdb_export_params_t *params,
                               FILE *f, hdb_export_result_t *res);

#ifdef __cplusplus
}
#endif
#endif
