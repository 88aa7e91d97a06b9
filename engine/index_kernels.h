/*
 * index_kernels.h - the SIMD kernels of engine/index (internal).
 *
 * Every kernel has a scalar version in index.c and may have AVX2 and
 * AVX-512 versions in index_avx2.c and index_avx512.c; index.c picks one per
 * call from cordon_cpu_features(). All versions give identical output,
 * element for element and in the same order.
 */
#ifndef CORDON_INDEX_KERNELS_H
#define CORDON_INDEX_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "cordon_pdq.h"

/* A staged hit: record number, distance and query variant in one sortable
 * word, so that sorting groups a record's hits with the best one first. */
#define CORDON__HIT(rec, dist, var)                                            \
    (((uint64_t)(rec) << 12) | ((uint64_t)(dist) << 3) | (uint64_t)(var))
#define CORDON__HIT_REC(h) ((uint32_t)((h) >> 12))
#define CORDON__HIT_DIST(h) ((int)(((h) >> 3) & 511))
#define CORDON__HIT_VAR(h) ((int)((h)&7))

/* Most query hashes a scan kernel compares at once. */
#define CORDON_INDEX_KERNEL_MAX_Q 8

/* Secondary-table entries are 16..32 bits wide, and the packed array is
 * followed by this many readable padding bytes so that kernels may load
 * whole vectors past the last entry. */
#define CORDON_INDEX_ENT_PAD 64

/*
 * Compares records[0..n) with the nq (1..8) query hashes. For every record
 * whose smallest distance over the queries is <= t, appends
 * CORDON__HIT(base + i, distance, lowest variant with that distance) to out,
 * in record order. out must have room for n words. Returns the number
 * appended.
 */
typedef size_t (*cordon__scan_fn)(const cordon_hash256_t *recs, size_t n,
                                  const cordon_hash256_t *q, int nq, int t,
                                  uint32_t base, uint64_t *out);

size_t cordon__index_scan_scalar(const cordon_hash256_t *recs, size_t n,
                                 const cordon_hash256_t *q, int nq, int t,
                                 uint32_t base, uint64_t *out);
size_t cordon__index_scan_avx2(const cordon_hash256_t *recs, size_t n,
                               const cordon_hash256_t *q, int nq, int t,
                               uint32_t base, uint64_t *out);
size_t cordon__index_scan_avx512(const cordon_hash256_t *recs, size_t n,
                                 const cordon_hash256_t *q, int nq, int t,
                                 uint32_t base, uint64_t *out);

/*
 * Secondary-table bucket filter. ent holds entries of ebits bits packed
 * back to back (entry j starts at bit j*ebits, little-endian; the array is
 * followed by CORDON_INDEX_ENT_PAD readable bytes). An entry is (fingerprint << pbits) | page.
 * For every entry j in [lo, hi) whose fingerprint is within rr bits of qfp,
 * appends its page to out, in entry order. out must have room for hi - lo
 * words. Returns the number appended.
 */
typedef size_t (*cordon__filter_fn)(const uint8_t *ent, size_t lo, size_t hi,
                                    int ebits, int pbits, uint32_t qfp, int rr,
                                    uint32_t *out);

size_t cordon__index_filter_scalar(const uint8_t *ent, size_t lo, size_t hi,
                                   int ebits, int pbits, uint32_t qfp, int rr,
                                   uint32_t *out);
size_t cordon__index_filter_avx512(const uint8_t *ent, size_t lo, size_t hi,
                                   int ebits, int pbits, uint32_t qfp, int rr,
                                   uint32_t *out);

#endif
