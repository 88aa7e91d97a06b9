/*
 * index_avx512.c - AVX-512 kernels of engine/index (F, BW, VL, VPOPCNTDQ,
 * and BMI2, which every AVX-512 processor has).
 *
 * The scan transposes eight records to word-major order once, so that each
 * query variant then costs four xor+popcount pairs and three adds for eight
 * distances. The bucket filter unpacks sixteen bit-packed entries per
 * vector (eight when fingerprints are wider than 17 bits) with one word
 * permute and one variable shift.
 */
#include "index_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

size_t cordon__index_scan_avx512(const cordon_hash256_t *recs, size_t n,
                                 const cordon_hash256_t *q, int nq, int t,
                                 uint64_t m0, uint32_t base, uint64_t *out)
{
    size_t m = 0, i = 0;
    __m512i qw[CORDON_INDEX_KERNEL_MAX_Q][4];
    for (int v = 0; v < nq; v++)
        for (int w = 0; w < 4; w++)
            qw[v][w] = _mm512_set1_epi64(
                (long long)(w ? q[v].w[w] : q[v].w[w] & m0));
    const __m512i tv = _mm512_set1_epi64(t);
    const __m512i mv = _mm512_set1_epi64((long long)m0);
    /* Word j of records 0..3 from a, b (two records per vector each). */
    const __m512i lo4 = _mm512_setr_epi64(0, 4, 8, 12, 1, 5, 9, 13);
    const __m512i hi4 = _mm512_setr_epi64(2, 6, 10, 14, 3, 7, 11, 15);
    const __m512i cat_lo = _mm512_setr_epi64(0, 1, 2, 3, 8, 9, 10, 11);
    const __m512i cat_hi = _mm512_setr_epi64(4, 5, 6, 7, 12, 13, 14, 15);
    for (; i + 8 <= n; i += 8) {
        const char *p = (const char *)&recs[i];
        __m512i a = _mm512_loadu_si512(p), b = _mm512_loadu_si512(p + 64);
        __m512i c = _mm512_loadu_si512(p + 128);
        __m512i d = _mm512_loadu_si512(p + 192);
        __m512i x01 = _mm512_permutex2var_epi64(a, lo4, b); /* w0 | w1 */
        __m512i x23 = _mm512_permutex2var_epi64(a, hi4, b); /* w2 | w3 */
        __m512i y01 = _mm512_permutex2var_epi64(c, lo4, d);
        __m512i y23 = _mm512_permutex2var_epi64(c, hi4, d);
        /* Masking both sides: (a & m) ^ (b & m) == (a ^ b) & m. */
        __m512i w0 =
            _mm512_and_si512(_mm512_permutex2var_epi64(x01, cat_lo, y01), mv);
        __m512i w1 = _mm512_permutex2var_epi64(x01, cat_hi, y01);
        __m512i w2 = _mm512_permutex2var_epi64(x23, cat_lo, y23);
        __m512i w3 = _mm512_permutex2var_epi64(x23, cat_hi, y23);
        __m512i best = _mm512_set1_epi64(1024), bestv = _mm512_setzero_si512();
        for (int v = 0; v < nq; v++) {
            __m512i s = _mm512_add_epi64(
                _mm512_add_epi64(
                    _mm512_popcnt_epi64(_mm512_xor_si512(w0, qw[v][0])),
                    _mm512_popcnt_epi64(_mm512_xor_si512(w1, qw[v][1]))),
                _mm512_add_epi64(
                    _mm512_popcnt_epi64(_mm512_xor_si512(w2, qw[v][2])),
                    _mm512_popcnt_epi64(_mm512_xor_si512(w3, qw[v][3]))));
            __mmask8 lt = _mm512_cmplt_epu64_mask(s, best);
            best = _mm512_mask_mov_epi64(best, lt, s);
            bestv = _mm512_mask_mov_epi64(bestv, lt, _mm512_set1_epi64(v));
        }
        __mmask8 hit = _mm512_cmple_epu64_mask(best, tv);
        if (hit) {
            uint64_t bd[8], bv[8];
            _mm512_storeu_si512(bd, best);
            _mm512_storeu_si512(bv, bestv);
            for (int j = 0; j < 8; j++)
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

size_t cordon__index_verify_avx512(const cordon_hash256_t *recs,
                                   const uint64_t *tasks, size_t ntasks,
                                   const cordon_hash256_t *q, int t,
                                   uint64_t m0, uint64_t *out)
{
    return cordon__verify_body(recs, tasks, ntasks, q, t, m0, out, 8,
                               cordon__index_scan_avx512);
}

/* The word permute's index vector for entries of f bits from bit b0 on,
 * one entry per 2^lgw 16-bit lanes: lane i fetches word
 * ((b0 + (i >> lgw) * f) >> 4) + (i & (2^lgw - 1)). */
static inline __m512i word_index(unsigned b0, int f, int lgw)
{
    static const uint16_t iota[32] = {
        0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
        16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
    const __m512i i16 = _mm512_loadu_si512(iota);
    __m512i u = _mm512_srl_epi16(i16, _mm_cvtsi32_si128(lgw));
    __m512i start =
        _mm512_add_epi16(_mm512_set1_epi16((short)b0),
                         _mm512_mullo_epi16(u, _mm512_set1_epi16((short)f)));
    return _mm512_add_epi16(
        _mm512_srli_epi16(start, 4),
        _mm512_and_si512(i16, _mm512_set1_epi16((short)((1 << lgw) - 1))));
}

/* Sixteen entries per vector, for fingerprints of up to 17 bits: 32-bit
 * lane u takes the two 16-bit words holding entry u's bits (one word
 * permute) and shifts them down by the entry's offset in the first, which
 * with f <= 17 leaves the whole fingerprint in the lane. Sixteen entries
 * take 2f bytes, so every group starts at the same bit offset b0. */
static size_t filter16(const uint8_t *p, unsigned b0, uint32_t nb, int f,
                       uint32_t qfp, int rr, uint32_t *out)
{
    const __m512i idxv = word_index(b0, f, 1);
    const __m512i lane =
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i shv = _mm512_and_si512(
        _mm512_add_epi32(_mm512_set1_epi32((int)b0),
                         _mm512_mullo_epi32(lane, _mm512_set1_epi32(f))),
        _mm512_set1_epi32(15));
    const __m512i fmask = _mm512_set1_epi32((int)((1u << f) - 1));
    const __m512i qv = _mm512_set1_epi32((int)qfp);
    const __m512i rv = _mm512_set1_epi32(rr);
    size_t m = 0;
    for (uint32_t g = 0; g < nb; g += 16, p += 2 * f) {
        __m512i raw = _mm512_loadu_si512(p);
        __m512i x = _mm512_and_si512(
            _mm512_srlv_epi32(_mm512_permutexvar_epi16(idxv, raw), shv), fmask);
        __m512i dv = _mm512_popcnt_epi32(_mm512_xor_si512(x, qv));
        uint32_t left = nb - g < 16 ? nb - g : 16;
        __mmask16 k = _mm512_mask_cmple_epu32_mask(
            (__mmask16)(0xffffu >> (16 - left)), dv, rv);
        _mm512_storeu_si512(
            out + m, _mm512_maskz_compress_epi32(
                         k, _mm512_add_epi32(lane, _mm512_set1_epi32((int)g))));
        m += (size_t)__builtin_popcount(k);
    }
    return m;
}

/* Eight entries per vector, for any width up to 32 bits: eight entries
 * take f bytes, so each group of eight starts at the same bit offset b0
 * within its first byte; the four 16-bit words holding entry u go to 64-bit
 * lane u, which then shifts by (b0 + u * f) & 15. */
static size_t filter8(const uint8_t *p, unsigned b0, uint32_t nb, int f,
                      uint32_t qfp, int rr, uint32_t *out)
{
    const __m512i idxv = word_index(b0, f, 2);
    const __m512i u64v = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    const __m512i shv = _mm512_and_si512(
        _mm512_add_epi64(_mm512_set1_epi64(b0),
                         _mm512_mul_epu32(u64v, _mm512_set1_epi64(f))),
        _mm512_set1_epi64(15));
    const __m512i fmask = _mm512_set1_epi64((long long)((1ull << f) - 1));
    const __m512i qv = _mm512_set1_epi64(qfp), rv = _mm512_set1_epi64(rr);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    size_t m = 0;
    for (uint32_t g = 0; g < nb; g += 8, p += f) {
        __m512i raw = _mm512_loadu_si512(p);
        __m512i x = _mm512_and_si512(
            _mm512_srlv_epi64(_mm512_permutexvar_epi16(idxv, raw), shv), fmask);
        __m512i dv = _mm512_popcnt_epi64(_mm512_xor_si512(x, qv));
        uint32_t left = nb - g < 8 ? nb - g : 8;
        __mmask8 k = _mm512_mask_cmple_epu64_mask(
            (__mmask8)(0xffu >> (8 - left)), dv, rv);
        __m256i js = _mm256_add_epi32(lane, _mm256_set1_epi32((int)g));
        _mm256_storeu_si256((__m256i *)(void *)(out + m),
                            _mm256_maskz_compress_epi32(k, js));
        m += (size_t)__builtin_popcount(k);
    }
    return m;
}

/* Both widths are branch-free: most groups have no survivor, and which do
 * is unpredictable, so every group's survivors are compressed in a
 * register and stored whole (the memory form of vpcompressd is microcoded
 * on AMD cores), and the last group's lanes past nb are masked off. */
size_t cordon__index_efilter_avx512(const uint8_t *data, uint64_t boff,
                                    uint32_t nb, int f, int l, uint32_t H,
                                    uint32_t qfp, int rr, uint32_t *out)
{
    if (f < 1 || f > 32 || nb > 4096)
        return cordon__efilter_body(data, boff, nb, f, l, H, qfp, rr, out);
    const uint8_t *p = data + (boff >> 3);
    unsigned b0 = (unsigned)(boff & 7);
    size_t m = f <= 17 ? filter16(p, b0, nb, f, qfp, rr, out)
                       : filter8(p, b0, nb, f, qfp, rr, out);
    cordon__ef_pages(data, boff, nb, f, l, H, out, m);
    return m;
}

#endif
