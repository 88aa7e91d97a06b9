/*
 * cordon_index.h - exact Hamming radius search over 256-bit hashes.
 *
 * Caveats:
 * - Exact: a query returns every live entry whose Hamming distance to the
 *   query is at most the threshold, with that exact distance. Nothing is
 *   approximate; filters only discard entries that provably lie farther.
 * - Concurrency: there is no internal lock. Any number of threads may run
 *   the const functions (cordon_index_query(), _size(), _memory(), _stats())
 *   at once, each with its own cordon_index_results_t, as long as no thread
 *   modifies the index meanwhile. Modifying calls (add, add_bulk, remove,
 *   set_flags, compact) need exclusive access. The intended use is a
 *   pthread_rwlock_t: readers take it shared, writers exclusively.
 * - Updates are visible to the next query. Single adds go to a small
 *   unindexed tail that every query scans; removals from the indexed part
 *   only mark the entry dead. When the tail outgrows its limit (or a quarter
 *   of the entries are dead) the modifying call that crossed the limit
 *   rebuilds the index, which takes O(N) time (2 to 4 s per 10 million
 *   entries on one core) while the caller holds the write lock. Call
 *   cordon_index_compact() at a quiet moment to choose when that happens.
 * - The index is a set of (hash, id) pairs: one hash may be stored under
 *   several ids and one id under several hashes, but adding an existing
 *   pair is refused with CORDON_EEXIST.
 * - Entry flags are 8 caller-defined bits, returned with each hit and usable
 *   to skip entries in a query. Deciding what to skip (disabled items,
 *   quality below 50) is the caller's business.
 * - Queries with a large threshold degrade gracefully to a linear SIMD scan;
 *   the query picks the cheaper method itself. Results never depend on the
 *   method or on the SIMD path.
 * - Memory at 10 million entries is about 63 bytes per entry when the ids
 *   are below 2^24 (about 64 with 32-bit ids, 68 with 64-bit ones): the
 *   32-byte hash, which also carries the low 21 bits of the id in place of
 *   hash bits its position implies, the rest of the id bit-packed, 10
 *   secondary tables of about 23.5 bits per entry (Elias-Fano coded) and 2
 *   bytes of directory per bucket. Fewer bytes (opts.entry_bits,
 *   opts.substrings) cost query speed; see benchmarks/index.md.
 *   cordon_index_memory() reports the exact figure.
 * - Multi-index hashing pays off from about a million entries (10x faster
 *   than the scan for single queries at 1 million, 30x at 10 million);
 *   below that, hashes fit in cache and the scan is as fast.
 */
#ifndef CORDON_INDEX_H
#define CORDON_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "cordon_error.h"
#include "cordon_pdq.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cordon_index cordon_index_t;

/* Most entries one index holds (the indexed part plus the tail). */
#define CORDON_INDEX_MAX_ENTRIES 2000000000u
/* Most query variants per call: the eight dihedral transforms. */
#define CORDON_INDEX_MAX_VARIANTS 8
/* Largest meaningful threshold: every hash is within 256 of every other. */
#define CORDON_INDEX_MAX_THRESHOLD 256

typedef struct {
    /* Substrings for multi-index hashing, 8..16; 0 chooses from the number
     * of entries at each rebuild (11 from a million entries up). Each
     * substring but the first costs one table entry per hash. */
    int substrings;
    /* Page size of the secondary tables, as the bits an entry would take
     * uncompressed, 16..32; 0 = automatic (pages of four records, about 24
     * bits per entry at 10 million entries). Each bit below 27 doubles the
     * records an entry points at (up to 64), saving about a bit per entry
     * and table and slowing queries; 28 means pages of two, 29 and more
     * single records. */
    int entry_bits;
    /* Most entries in the unindexed tail before the next add rebuilds the
     * index; 0 = automatic (N/128, clamped to 4096..65536). */
    size_t tail_limit;
} cordon_index_opts_t;

/** Fills opts with the defaults (all automatic). */
CORDON_API void cordon_index_opts_default(cordon_index_opts_t *opts);

/**
 * Creates an empty index.
 *
 * @param opts  tuning; NULL means the defaults. Copied, not retained.
 * @param out   receives the index, to be released with cordon_index_free().
 * @return CORDON_OK, CORDON_EINVAL (NULL out, option out of range) or
 *         CORDON_ENOMEM.
 */
CORDON_API int cordon_index_create(const cordon_index_opts_t *opts,
                                   cordon_index_t **out);

/** Releases an index and everything it owns. NULL is a no-op. */
CORDON_API void cordon_index_free(cordon_index_t *idx);

/**
 * Adds one entry. It is searchable by the next query.
 *
 * @param flags  caller-defined bits stored with the entry.
 * @return CORDON_OK; CORDON_EEXIST if the (hash, id) pair is already
 *         stored (nothing changes); CORDON_ETOOLARGE at
 *         CORDON_INDEX_MAX_ENTRIES; CORDON_EINVAL; CORDON_ENOMEM (the index
 *         is unchanged).
 */
CORDON_API int cordon_index_add(cordon_index_t *idx,
                                const cordon_hash256_t *hash, uint64_t id,
                                uint8_t flags);

/**
 * Adds many entries and rebuilds the index once, which is far faster than
 * adding them one by one (2 to 4 s per 10 million on one core).
 *
 * @param hashes, ids  n entries; only read.
 * @param flags        n flag bytes, or NULL for all zero.
 * @param added        if not NULL, receives how many entries were new; pairs
 *                     already stored, or repeated within the arrays, are
 *                     skipped without error.
 * @return CORDON_OK, CORDON_EINVAL, CORDON_ETOOLARGE or CORDON_ENOMEM (the
 *         index is then unchanged).
 */
CORDON_API int cordon_index_add_bulk(cordon_index_t *idx,
                                     const cordon_hash256_t *hashes,
                                     const uint64_t *ids, const uint8_t *flags,
                                     size_t n, size_t *added);

/**
 * Removes the entry (hash, id). A removal that leaves a quarter of the
 * indexed entries dead rebuilds the index (if that rebuild runs out of
 * memory, the dead entries simply wait for the next one).
 * @return CORDON_OK, CORDON_ENOTFOUND (no such pair; nothing changes),
 *         CORDON_EINVAL or CORDON_ENOMEM (nothing changes).
 */
CORDON_API int cordon_index_remove(cordon_index_t *idx,
                                   const cordon_hash256_t *hash, uint64_t id);

/**
 * Replaces the flags of the entry (hash, id).
 * @return CORDON_OK, CORDON_ENOTFOUND, CORDON_EINVAL or CORDON_ENOMEM.
 */
CORDON_API int cordon_index_set_flags(cordon_index_t *idx,
                                      const cordon_hash256_t *hash, uint64_t id,
                                      uint8_t flags);

/**
 * Folds the tail into the indexed part and drops removed entries, so that
 * queries run at full speed and no later add pays for a rebuild.
 * @return CORDON_OK or CORDON_ENOMEM (the index is unchanged).
 */
CORDON_API int cordon_index_compact(cordon_index_t *idx);

/** Number of live entries. */
CORDON_API size_t cordon_index_size(const cordon_index_t *idx);

/** Bytes of heap memory the index holds, excluding result buffers. */
CORDON_API size_t cordon_index_memory(const cordon_index_t *idx);

typedef struct {
    size_t entries;     /* live entries */
    size_t indexed;     /* entries in the indexed part, dead ones included */
    size_t dead;        /* removed entries still occupying the indexed part */
    size_t tail;        /* entries in the unindexed tail */
    size_t memory;      /* as cordon_index_memory() */
    int substrings;     /* multi-index substrings; 0 = scan only */
    int entry_bits;     /* bits per secondary-table entry (average) */
    int page_records;   /* records a secondary entry points at */
    int primary_bits;   /* directory bits of the primary table */
    int secondary_bits; /* directory bits of the secondary tables */
} cordon_index_stats_t;

/** Describes the index's current layout, for status pages and tuning. */
CORDON_API void cordon_index_stats(const cordon_index_t *idx,
                                   cordon_index_stats_t *out);

/* One match. */
typedef struct {
    uint64_t id;
    cordon_hash256_t hash; /* the stored hash */
    uint16_t distance;     /* 0..256 */
    uint8_t variant;       /* index of the query hash that matched best */
    uint8_t flags;         /* the entry's flags */
} cordon_index_hit_t;

/*
 * A growable result buffer, owned by the caller and reused across queries:
 * each query overwrites it. Zero-initialise it (or call
 * cordon_index_results_init()) before first use; release it with
 * cordon_index_results_free(). One results struct serves one thread at a
 * time; it also carries the query's scratch memory, so reusing it saves
 * allocations.
 */
typedef struct {
    cordon_index_hit_t *hits; /* count hits, sorted by distance, then id */
    size_t count;
    size_t cap;    /* allocated hits */
    int truncated; /* 1 if max_hits cut the list short */
    void *scratch; /* private */
} cordon_index_results_t;

/** Zeroes a results struct. */
CORDON_API void cordon_index_results_init(cordon_index_results_t *res);

/** Frees a results struct's memory and zeroes it. NULL is a no-op. */
CORDON_API void cordon_index_results_free(cordon_index_results_t *res);

/* Return nonzero to keep the hit, zero to drop it. Called from the querying
 * thread for stored entries that lie within the threshold (with max_hits
 * set, possibly more than once for the same entry), so it must give the
 * same answer each time and be cheap. */
typedef int (*cordon_index_filter_fn)(void *ctx, uint64_t id, uint8_t flags);

typedef enum {
    CORDON_INDEX_AUTO = 0, /* the cheaper of the two for this query */
    CORDON_INDEX_SCAN,     /* linear SIMD scan of every entry */
    CORDON_INDEX_MIH       /* multi-index hashing, whatever it costs */
} cordon_index_method_t;

typedef struct {
    uint8_t skip_flags; /* skip entries with (flags & skip_flags) != 0 */
    cordon_index_filter_fn filter; /* NULL = keep all */
    void *filter_ctx;
    /* Keep only the best max_hits hits (by distance, then id); 0 = all.
     * Bounds memory for large thresholds. */
    size_t max_hits;
    cordon_index_method_t method;
} cordon_index_query_opts_t;

/**
 * Finds every live entry within threshold of any of the nq query hashes.
 *
 * For dihedral matching pass the eight variants from cordon_pdq_dihedral():
 * each entry is reported once, with the smallest distance over the variants
 * and, on ties, the lowest variant index.
 *
 * @param q          nq hashes (1..CORDON_INDEX_MAX_VARIANTS); only read.
 * @param threshold  0..CORDON_INDEX_MAX_THRESHOLD; distances <= threshold
 *                   match (CORDON_PDQ_MATCH_DISTANCE is the PDQ default).
 * @param qopts      NULL for no filtering and no limit.
 * @param res        overwritten with the hits, sorted by distance, then id,
 *                   then stored hash. Its memory stays owned by the caller.
 * @return CORDON_OK, CORDON_EINVAL or CORDON_ENOMEM (res then holds no
 *         hits). The index is never modified.
 */
CORDON_API int cordon_index_query(const cordon_index_t *idx,
                                  const cordon_hash256_t *q, int nq,
                                  int threshold,
                                  const cordon_index_query_opts_t *qopts,
                                  cordon_index_results_t *res);

#ifdef __cplusplus
}
#endif
#endif
