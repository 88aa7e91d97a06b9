/*
 * index_avx2.c - AVX2 kernels of engine/index (built with -mavx2 -mpopcnt).
 *
 * AVX2 has no vector popcount, so the scan counts bits with the nibble
 * lookup (vpshufb) over four records at a time, laid out word-major so that
 * one vpsadbw yields the four distances.
 */
#include "index_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

static inline __m256i popcnt_bytes(__m256i x)
{
    const __m256i lut =
        _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1,
                         1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low = _mm256_set1_epi8(0x0f);
    __m256i lo = _mm256_and_si256(x, low);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low);
    return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo),
                           _mm256_shuffle_epi8(lut, hi));
}

size_t cordon__index_scan_avx2(const cordon_hash256_t *recs, size_t n,
                               const cordon_hash256_t *q, int nq, int t,
                               uint64_t m0, uint32_t base, uint64_t *out)
{
    size_t m = 0, i = 0;
    __m256i qw[CORDON_INDEX_KERNEL_MAX_Q][4];
    for (int v = 0; v < nq; v++)
        for (int w = 0; w < 4; w++)
            qw[v][w] = _mm256_set1_epi64x(
                (long long)(w ? q[v].w[w] : q[v].w[w] & m0));
    const __m256i tv = _mm256_set1_epi64x(t);
    const __m256i mv = _mm256_set1_epi64x((long long)m0);
    for (; i + 4 <= n; i += 4) {
        const __m256i *p = (const __m256i *)(const void *)&recs[i];
        __m256i r0 = _mm256_loadu_si256(p), r1 = _mm256_loadu_si256(p + 1);
        __m256i r2 = _mm256_loadu_si256(p + 2), r3 = _mm256_loadu_si256(p + 3);
        /* Transpose to word-major: w[j] holds word j of the four records. */
        __m256i t0 = _mm256_unpacklo_epi64(r0, r1);
        __m256i t1 = _mm256_unpackhi_epi64(r0, r1);
        __m256i t2 = _mm256_unpacklo_epi64(r2, r3);
        __m256i t3 = _mm256_unpackhi_epi64(r2, r3);
        /* Masking both sides: (a & m) ^ (b & m) == (a ^ b) & m. */
        __m256i w0 =
            _mm256_and_si256(_mm256_permute2x128_si256(t0, t2, 0x20), mv);
        __m256i w1 = _mm256_permute2x128_si256(t1, t3, 0x20);
        __m256i w2 = _mm256_permute2x128_si256(t0, t2, 0x31);
        __m256i w3 = _mm256_permute2x128_si256(t1, t3, 0x31);
        __m256i best = _mm256_set1_epi64x(1024), bestv = _mm256_setzero_si256();
        for (int v = 0; v < nq; v++) {
            /* Per-byte counts of four words sum to at most 32: no overflow. */
            __m256i c = _mm256_add_epi8(
                _mm256_add_epi8(popcnt_bytes(_mm256_xor_si256(w0, qw[v][0])),
                                popcnt_bytes(_mm256_xor_si256(w1, qw[v][1]))),
                _mm256_add_epi8(popcnt_bytes(_mm256_xor_si256(w2, qw[v][2])),
                                popcnt_bytes(_mm256_xor_si256(w3, qw[v][3]))));
            __m256i d = _mm256_sad_epu8(c, _mm256_setzero_si256());
            __m256i lt = _mm256_cmpgt_epi64(best, d);
            best = _mm256_blendv_epi8(best, d, lt);
            bestv = _mm256_blendv_epi8(bestv, _mm256_set1_epi64x(v), lt);
        }
        int over = _mm256_movemask_pd(
            _mm256_castsi256_pd(_mm256_cmpgt_epi64(best, tv)));
        int hit = ~over & 15;
        if (hit) {
            uint64_t bd[4], bv[4];
            _mm256_storeu_si256((__m256i *)(void *)bd, best);
            _mm256_storeu_si256((__m256i *)(void *)bv, bestv);
            for (int j = 0; j < 4; j++)
                if (hit >> j & 1)
                    out[m++] =
                        CORDON__HIT(base + (uint32_t)(i + j), bd[j], bv[j]);
        }
    }
    if (i < n)
        m += cordon__index_scan_scalar(recs + i, n - i, q, nq, t, m0,
                                       base + (uint32_t)i, out + m);
    return m;
}

size_t cordon__index_verify_avx2(const cordon_hash256_t *recs,
                                 const uint64_t *tasks, size_t ntasks,
                                 const cordon_hash256_t *q, int t,
                                 uint64_t m0, uint64_t *out)
{
    return cordon__verify_body(recs, tasks, ntasks, q, t, m0, out, 16,
                               cordon__index_scan_avx2);
}

size_t cordon__index_efilter_avx2(const uint8_t *data, uint64_t boff,
                                  uint32_t nb, int f, int l, uint32_t H,
                                  uint32_t qfp, int rr, uint32_t *out)
{
    return cordon__efilter_body(data, boff, nb, f, l, H, qfp, rr, out);
}

#endif
