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

/* A verification task: a run of consecutive records to compare with one
 * query variant. */
#define CORDON__TASK(rec, cnt, var)                                            \
    (((uint64_t)(rec) << 19) | ((uint64_t)(cnt) << 3) | (uint64_t)(var))
#define CORDON__TASK_REC(t) ((uint32_t)((t) >> 19))
#define CORDON__TASK_CNT(t) ((uint32_t)(((t) >> 3) & 0xffff))
#define CORDON__TASK_VAR(t) ((int)((t)&7))
#define CORDON__TASK_MAX 65535

/*
 * Runs verification tasks: for every record of every task whose distance to
 * q[variant] is <= t, appends CORDON__HIT(record, distance, variant) to out,
 * in task order. out must have room for the tasks' total record count.
 * Returns the number appended.
 */
typedef size_t (*cordon__verify_fn)(const cordon_hash256_t *recs,
                                    const uint64_t *tasks, size_t ntasks,
                                    const cordon_hash256_t *q, int t,
                                    uint64_t *out);

size_t cordon__index_verify_scalar(const cordon_hash256_t *recs,
                                   const uint64_t *tasks, size_t ntasks,
                                   const cordon_hash256_t *q, int t,
                                   uint64_t *out);
size_t cordon__index_verify_avx2(const cordon_hash256_t *recs,
                                 const uint64_t *tasks, size_t ntasks,
                                 const cordon_hash256_t *q, int t,
                                 uint64_t *out);
size_t cordon__index_verify_avx512(const cordon_hash256_t *recs,
                                   const uint64_t *tasks, size_t ntasks,
                                   const cordon_hash256_t *q, int t,
                                   uint64_t *out);

/* How many tasks ahead the verifiers prefetch. */
#define CORDON__PF_TASK 12

/* The verifier's body, shared so that each kernel file compiles it with its
 * own instruction set (hardware popcount where the file may use it). Runs of
 * up to `short_run` records are compared one by one; longer ones go to
 * `scan`. */
static inline size_t cordon__verify_body(const cordon_hash256_t *recs,
                                         const uint64_t *tasks, size_t ntasks,
                                         const cordon_hash256_t *q, int t,
                                         uint64_t *out, uint32_t short_run,
                                         cordon__scan_fn scan)
{
    size_t m = 0;
    for (size_t i = 0; i < ntasks; i++) {
        if (i + CORDON__PF_TASK < ntasks) {
            uint64_t pt = tasks[i + CORDON__PF_TASK];
            const char *p = (const char *)&recs[CORDON__TASK_REC(pt)];
            uint32_t c = CORDON__TASK_CNT(pt);
            const char *e = p + (size_t)(c < 16 ? c : 16) * sizeof *recs;
            for (; p < e; p += 64)
                __builtin_prefetch(p);
        }
        uint64_t tk = tasks[i];
        uint32_t r0 = CORDON__TASK_REC(tk), c = CORDON__TASK_CNT(tk);
        int v = CORDON__TASK_VAR(tk);
        const cordon_hash256_t *qv = &q[v];
        if (c <= short_run) {
            for (uint32_t j = 0; j < c; j++) {
                const cordon_hash256_t *r = &recs[r0 + j];
                int d = __builtin_popcountll(r->w[0] ^ qv->w[0]) +
                        __builtin_popcountll(r->w[1] ^ qv->w[1]) +
                        __builtin_popcountll(r->w[2] ^ qv->w[2]) +
                        __builtin_popcountll(r->w[3] ^ qv->w[3]);
                if (d <= t)
                    out[m++] = CORDON__HIT(r0 + j, d, v);
            }
        } else {
            size_t k = scan(recs + r0, c, qv, 1, t, r0, out + m);
            for (size_t j = 0; j < k; j++)
                out[m + j] |= (uint64_t)v;
            m += k;
        }
    }
    return m;
}

/*
 * Secondary-table bucket filter. ent holds entries of ebits bits packed
 * back to back (entry j starts at bit j*ebits, little-endian; the array is
 * followed by CORDON_INDEX_ENT_PAD readable bytes). An entry is (fingerprint <<
 * pbits) | page. For every entry j in [lo, hi) whose fingerprint is within rr
 * bits of qfp, appends its page to out, in entry order. out must have room for
 * hi - lo words. Returns the number appended.
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
