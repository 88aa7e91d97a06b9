/*
 * hdb_matcher.h - the live in-memory match index over a hash database.
 *
 * Caveats:
 * - Loads every live PDQ hash and vPDQ frame hash of the database into an
 *   exact Hamming index (engine/cordon_index.h), and follows the database's
 *   change log, so that writes by this process (after a refresh) or by
 *   another process (after the next refresh) become visible without a
 *   rebuild. Call hdb_matcher_refresh() after your own writes and at least
 *   once a second in long-running processes.
 * - Disabled banks, items disabled until a future time, and stored hashes
 *   below the quality floor are kept in the index but skipped at query
 *   time, so enabling them again costs nothing.
 * - An item's signals are treated as fixed once written: updates change
 *   its flags (disable, bank state), deletes remove its hashes.
 * - Thread-safe: queries from any number of threads run concurrently;
 *   refresh takes an internal write lock only while it applies changes.
 */
#ifndef HDB_MATCHER_H
#define HDB_MATCHER_H

#include <stddef.h>
#include <stdint.h>

#include "cordon_index.h"
#include "cordon_pdq.h"
#include "hdb.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hdb_matcher hdb_matcher_t;

typedef struct {
    int threshold;        /* match at distance <= threshold; default 31 */
    int min_quality;      /* stored hashes below are skipped; default 50 */
    int include_disabled; /* also match disabled banks and items */
    size_t max_hits;      /* keep the best max_hits items; 0 = all */
} hdb_match_opts_t;

/* One matching item: the best of its hashes against any query variant. */
typedef struct {
    uint64_t item_id;
    cordon_hash256_t hash; /* the stored hash that matched */
    int distance;
    int variant; /* index of the query hash (cordon_dihedral_t for 8) */
    int video;   /* the stored hash is a frame of a video item */
} hdb_match_hit_t;

/* Caller-owned, reusable result buffer; zero it before first use. */
typedef struct {
    hdb_match_hit_t *hits; /* count hits, by distance, then item id */
    size_t count;
    size_t cap;
    cordon_index_results_t raw; /* private scratch */
} hdb_match_results_t;

/** Defaults: threshold 31, min_quality 50, enabled content only. */
CORDON_API void hdb_match_opts_default(hdb_match_opts_t *o);

/** Frees a results buffer's memory; NULL is a no-op. */
CORDON_API void hdb_match_results_free(hdb_match_results_t *r);

/**
 * Builds the index from the database. db must outlive the matcher.
 * @return CORDON_OK, CORDON_ENOMEM, or a database error.
 */
CORDON_API int hdb_matcher_open(hdb_t *db, hdb_matcher_t **out);

/** Frees the matcher (not the database). NULL is a no-op. */
CORDON_API void hdb_matcher_close(hdb_matcher_t *m);

/**
 * Applies the database changes made since the last refresh (by any
 * process), and re-enables items whose disable-until time has passed.
 * Cheap when nothing changed. *applied (may be NULL) receives the number of
 * changes applied.
 * @return CORDON_OK, CORDON_ENOMEM, or a database error (the index then
 *         reflects the changes applied before it).
 */
CORDON_API int hdb_matcher_refresh(hdb_matcher_t *m, size_t *applied);

/** The change-log position the index reflects. */
CORDON_API uint64_t hdb_matcher_seq(hdb_matcher_t *m);

/** Hashes in the index (PDQ and vPDQ frames), and its heap bytes. */
CORDON_API size_t hdb_matcher_size(hdb_matcher_t *m);
CORDON_API size_t hdb_matcher_memory(hdb_matcher_t *m);

/**
 * Finds the items with a stored hash within the threshold of any of the nq
 * query hashes (1, or the 8 dihedral variants). Each item is reported once,
 * with its best distance. res is overwritten.
 * @return CORDON_OK, CORDON_EINVAL or CORDON_ENOMEM.
 */
CORDON_API int hdb_matcher_query(hdb_matcher_t *m, const cordon_hash256_t *q,
                                 int nq, const hdb_match_opts_t *o,
                                 hdb_match_results_t *res);

#ifdef __cplusplus
}
#endif
#endif
