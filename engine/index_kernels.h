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

#if defined(__BMI2__)
#include <immintrin.h>
#endif

/* A staged hit: record number, distance and query variant in one sortable
 * word, so that sorting groups a record's hits with the best one first. */
#define CORDON__HIT(rec, dist, var)                                            \
    (((uint64_t)(rec) << 12) | ((uint64_t)(dist) << 3) | (uint64_t)(var))
#define CORDON__HIT_REC(h) ((uint32_t)((h) >> 12))
#define CORDON__HIT_DIST(h) ((int)(((h) >> 3) & 511))
#define CORDON__HIT_VAR(h) ((int)((h)&7))

/* Most query hashes a scan kernel compares at once. */
#define CORDON_INDEX_KERNEL_MAX_Q 8

/* The secondary tables' bit streams are followed by this many readable
 * padding bytes so that kernels may load whole vectors past a bucket's
 * end. */
#define CORDON_INDEX_ENT_PAD 64

/* Distance marker of a staged hit whose distance the caller must still
 * complete (see m0 below). */
#define CORDON__HIT_OPEN 511

/*
 * Compares records[0..n) with the nq (1..8) query hashes. Word 0 of each
 * record is masked with m0 first: the indexed part stores id bits in place of
 * the primary directory bits, so there the distance is a lower bound that the
 * caller completes (~0 compares all 256 bits). For every record whose
 * smallest (masked) distance over the queries is <= t, appends
 * CORDON__HIT(base + i, distance, lowest variant with that distance) to out,
 * in record order. out must have room for n words. Returns the number
 * appended.
 */
typedef size_t (*cordon__scan_fn)(const cordon_hash256_t *recs, size_t n,
                                  const cordon_hash256_t *q, int nq, int t,
                                  uint64_t m0, uint32_t base, uint64_t *out);

size_t cordon__index_scan_scalar(const cordon_hash256_t *recs, size_t n,
                                 const cordon_hash256_t *q, int nq, int t,
                                 uint64_t m0, uint32_t base, uint64_t *out);
size_t cordon__index_scan_avx2(const cordon_hash256_t *recs, size_t n,
                               const cordon_hash256_t *q, int nq, int t,
                               uint64_t m0, uint32_t base, uint64_t *out);
size_t cordon__index_scan_avx512(const cordon_hash256_t *recs, size_t n,
                                 const cordon_hash256_t *q, int nq, int t,
                                 uint64_t m0, uint32_t base, uint64_t *out);

/* A verification task: a run of consecutive records to compare with one
 * query variant, and what the masked bits of word 0 add to the distance:
 * 0..62 when known (the run lies in one primary bucket), CORDON__ADD_OPEN
 * when not (the hit is then staged with CORDON__HIT_OPEN). */
#define CORDON__ADD_OPEN 63
#define CORDON__TASK(rec, cnt, var, add)                                       \
    (((uint64_t)(add) << 56) | ((uint64_t)(rec) << 19) |                       \
     ((uint64_t)(cnt) << 3) | (uint64_t)(var))
#define CORDON__TASK_REC(t) ((uint32_t)((t) >> 19))
#define CORDON__TASK_ADD(t) ((int)((t) >> 56))
#define CORDON__TASK_CNT(t) ((uint32_t)(((t) >> 3) & 0xffff))
#define CORDON__TASK_VAR(t) ((int)((t)&7))
#define CORDON__TASK_MAX 65535

/*
 * Runs verification tasks: for every record of every task whose distance
 * (masked with m0, plus the task's add) to q[variant] is <= t, appends
 * CORDON__HIT(record, distance, variant) to out, in task order; with an open
 * add, CORDON__HIT(record, CORDON__HIT_OPEN, variant) when the masked
 * distance alone is <= t. out must have room for the tasks' total record
 * count. Returns the number appended.
 */
typedef size_t (*cordon__verify_fn)(const cordon_hash256_t *recs,
                                    const uint64_t *tasks, size_t ntasks,
                                    const cordon_hash256_t *q, int t,
                                    uint64_t m0, uint64_t *out);

size_t cordon__index_verify_scalar(const cordon_hash256_t *recs,
                                   const uint64_t *tasks, size_t ntasks,
                                   const cordon_hash256_t *q, int t,
                                   uint64_t m0, uint64_t *out);
size_t cordon__index_verify_avx2(const cordon_hash256_t *recs,
                                 const uint64_t *tasks, size_t ntasks,
                                 const cordon_hash256_t *q, int t,
                                 uint64_t m0, uint64_t *out);
size_t cordon__index_verify_avx512(const cordon_hash256_t *recs,
                                   const uint64_t *tasks, size_t ntasks,
                                   const cordon_hash256_t *q, int t,
                                   uint64_t m0, uint64_t *out);

/* Tasks whose records the verifiers load as one batch. */
#define CORDON__VERIFY_BATCH 64

/* Completes a staged distance d <= t (masked) with a task's add: returns
 * the hit word to append, or 0 when the completed distance exceeds t. */
static inline uint64_t cordon__finish(uint32_t rec, int d, int v, int add,
                                      int t)
{
    if (add == CORDON__ADD_OPEN)
        return CORDON__HIT(rec, CORDON__HIT_OPEN, v) | (1ull << 63);
    d += add;
    return d <= t ? CORDON__HIT(rec, d, v) | (1ull << 63) : 0;
}

/* The verifier's body, shared so that each kernel file compiles it with its
 * own instruction set (hardware popcount where the file may use it). Runs of
 * up to `short_run` records are compared one by one; longer ones go to
 * `scan`. */
static inline size_t cordon__verify_body(const cordon_hash256_t *recs,
                                         const uint64_t *tasks, size_t ntasks,
                                         const cordon_hash256_t *q, int t,
                                         uint64_t m0, uint64_t *out,
                                         uint32_t short_run,
                                         cordon__scan_fn scan)
{
    size_t m = 0;
    uint64_t sink = 0;
    for (size_t i = 0; i < ntasks; i++) {
        /* Every CORDON__VERIFY_BATCH tasks, load a word of each of the
         * batch's cache lines first: these loads are independent, so the
         * core keeps dozens of misses in flight. Measured 30% faster at 10
         * million records than software prefetches a dozen tasks ahead,
         * which stalled in the miss queue (benchmarks/index.md). */
        if (i % CORDON__VERIFY_BATCH == 0) {
            size_t e = i + CORDON__VERIFY_BATCH < ntasks
                           ? i + CORDON__VERIFY_BATCH
                           : ntasks;
            for (size_t k = i; k < e; k++) {
                const cordon_hash256_t *p = &recs[CORDON__TASK_REC(tasks[k])];
                uint32_t c = CORDON__TASK_CNT(tasks[k]);
                for (uint32_t j = 0; j < c && j < 8; j += 2)
                    sink ^= p[j].w[0];
            }
            /* Keeps the loads: their value is never used otherwise. */
            __asm__ volatile("" : : "r"(sink));
        }
        uint64_t tk = tasks[i];
        uint32_t r0 = CORDON__TASK_REC(tk), c = CORDON__TASK_CNT(tk);
        int v = CORDON__TASK_VAR(tk), add = CORDON__TASK_ADD(tk);
        const cordon_hash256_t *qv = &q[v];
        if (c <= short_run) {
            for (uint32_t j = 0; j < c; j++) {
                const cordon_hash256_t *r = &recs[r0 + j];
                int d = __builtin_popcountll((r->w[0] ^ qv->w[0]) & m0) +
                        __builtin_popcountll(r->w[1] ^ qv->w[1]) +
                        __builtin_popcountll(r->w[2] ^ qv->w[2]) +
                        __builtin_popcountll(r->w[3] ^ qv->w[3]);
                if (d <= t) {
                    uint64_t h = cordon__finish(r0 + j, d, v, add, t);
                    if (h)
                        out[m++] = h & ~(1ull << 63);
                }
            }
        } else {
            size_t k = scan(recs + r0, c, qv, 1, t, m0, r0, out + m);
            size_t kept = 0;
            for (size_t j = 0; j < k; j++) {
                uint64_t h = cordon__finish(CORDON__HIT_REC(out[m + j]),
                                            CORDON__HIT_DIST(out[m + j]), v,
                                            add, t);
                if (h)
                    out[m + kept++] = h & ~(1ull << 63);
            }
            m += kept;
        }
    }
    return m;
}

/* 64 bits of a bit stream from bit pos on, of which the low 57 are valid
 * (the stream must be followed by 8 readable bytes). */
static inline uint64_t cordon__bits57(const uint8_t *p, uint64_t pos)
{
    uint64_t v;
    __builtin_memcpy(&v, p + (pos >> 3), 8);
    return v >> (pos & 7);
}

/*
 * Secondary buckets. Bucket b of a table holds nb entries, one per record
 * whose substring falls in it, in record order, as a bit stream starting at
 * bit boff: nb fingerprints of f bits (the substring bits below the
 * directory bits), then the pages the entries point at in Elias-Fano form:
 * the high parts (page >> l) in unary over nb + H bits (entry j's one sits
 * at j + high), then nb low parts of l bits. Since records are ordered,
 * pages rise within a bucket, and a page costs l + (nb + H) / nb bits
 * instead of log2(pages).
 *
 * Appends to out the pages of the entries whose fingerprint lies within rr
 * bits of qfp, in entry order; out must have room for nb + 16 words (vector
 * versions store whole groups). Returns
 * the number appended. The stream must be followed by CORDON_INDEX_ENT_PAD
 * readable bytes.
 */
typedef size_t (*cordon__efilter_fn)(const uint8_t *data, uint64_t boff,
                                     uint32_t nb, int f, int l, uint32_t H,
                                     uint32_t qfp, int rr, uint32_t *out);

size_t cordon__index_efilter_scalar(const uint8_t *data, uint64_t boff,
                                    uint32_t nb, int f, int l, uint32_t H,
                                    uint32_t qfp, int rr, uint32_t *out);
size_t cordon__index_efilter_avx2(const uint8_t *data, uint64_t boff,
                                  uint32_t nb, int f, int l, uint32_t H,
                                  uint32_t qfp, int rr, uint32_t *out);
size_t cordon__index_efilter_avx512(const uint8_t *data, uint64_t boff,
                                    uint32_t nb, int f, int l, uint32_t H,
                                    uint32_t qfp, int rr, uint32_t *out);

/* Position of the r-th (from 0) set bit of w, which has more than r. */
static inline unsigned cordon__select64(uint64_t w, unsigned r)
{
#if defined(__BMI2__)
    return (unsigned)__builtin_ctzll(_pdep_u64(1ull << r, w));
#else
    for (; r; r--)
        w &= w - 1;
    return (unsigned)__builtin_ctzll(w);
#endif
}

/* Turns the entry numbers sel[0..ns) (rising) of a bucket into pages, in
 * place: entry j's high part is the position of the j-th one of the unary
 * bits, minus j, selected a word at a time. */
static inline void cordon__ef_pages(const uint8_t *data, uint64_t boff,
                                    uint32_t nb, int f, int l, uint32_t H,
                                    uint32_t *sel, size_t ns)
{
    uint64_t u0 = boff + (uint64_t)nb * (unsigned)f;
    uint64_t l0 = u0 + nb + H;
    uint64_t lmask = (1ull << l) - 1;
    uint64_t pos = u0;    /* start of the unread unary bits */
    uint32_t before = 0;  /* ones before pos */
    for (size_t i = 0; i < ns; i++) {
        uint32_t j = sel[i];
        for (;;) {
            uint64_t w = cordon__bits57(data, pos) & ((1ull << 57) - 1);
            uint32_t c = (uint32_t)__builtin_popcountll(w);
            if (before + c > j) {
                uint64_t one = pos + cordon__select64(w, j - before);
                uint64_t high = one - u0 - j;
                uint64_t low = cordon__bits57(data, l0 + (uint64_t)j *
                                                             (unsigned)l) &
                               lmask;
                sel[i] = (uint32_t)((high << l) | low);
                break;
            }
            before += c;
            pos += 57;
        }
    }
}

/* The filter's scalar body, for the files without a vector version. */
static inline size_t cordon__efilter_body(const uint8_t *data, uint64_t boff,
                                          uint32_t nb, int f, int l,
                                          uint32_t H, uint32_t qfp, int rr,
                                          uint32_t *out)
{
    size_t m = 0;
    uint64_t fmask = (1ull << f) - 1;
    for (uint32_t j = 0; j < nb; j++) {
        uint64_t fp =
            cordon__bits57(data, boff + (uint64_t)j * (unsigned)f) & fmask;
        if (__builtin_popcountll(fp ^ qfp) <= rr)
            out[m++] = j;
    }
    cordon__ef_pages(data, boff, nb, f, l, H, out, m);
    return m;
}

#endif
