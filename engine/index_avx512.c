/*
 * index_avx512.c - AVX-512 kernels of engine/index (F, BW, VL, VPOPCNTDQ).
 *
 * The scan transposes eight records to word-major order once, so that each
 * query variant then costs four xor+popcount pairs and three adds for eight
 * distances. The bucket filter unpacks eight bit-packed entries per vector
 * with one word permute and one variable shift.
 */
#include "index_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

size_t cordon__index_scan_avx512(const cordon_hash256_t *recs, size_t n,
                                 const cordon_hash256_t *q, int nq, int t,
                                 uint32_t base, uint64_t *out)
{
    size_t m = 0, i = 0;
    __m512i qw[CORDON_INDEX_KERNEL_MAX_Q][4];
    for (int v = 0; v < nq; v++)
        for (int w = 0; w < 4; w++)
            qw[v][w] = _mm512_set1_epi64((long long)q[v].w[w]);
    const __m512i tv = _mm512_set1_epi64(t);
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
        __m512i w0 = _mm512_permutex2var_epi64(x01, cat_lo, y01);
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
        m += cordon__index_scan_scalar(recs + i, n - i, q, nq, t,
                                       base + (uint32_t)i, out + m);
    return m;
}

size_t cordon__index_verify_avx512(const cordon_hash256_t *recs,
                                   const uint64_t *tasks, size_t ntasks,
                                   const cordon_hash256_t *q, int t,
                                   uint64_t *out)
{
    return cordon__verify_body(recs, tasks, ntasks, q, t, out, 8,
                               cordon__index_scan_avx512);
}

/* For entry width e, lane u of a group of eight entries needs the 64 bits
 * starting at word (u*e)/16 of the group, shifted right by (u*e)%16. */
#define PW(e, u, j) ((((u) * (e)) >> 4) + (j))
#define PLANE(e, u) PW(e, u, 0), PW(e, u, 1), PW(e, u, 2), PW(e, u, 3)
#define PIDX(e)                                                                \
    {                                                                          \
        PLANE(e, 0), PLANE(e, 1), PLANE(e, 2), PLANE(e, 3), PLANE(e, 4),       \
            PLANE(e, 5), PLANE(e, 6), PLANE(e, 7)                              \
    }
#define PSH(e)                                                                 \
    {                                                                          \
        0, (e)&15, (2 * (e)) & 15, (3 * (e)) & 15, (4 * (e)) & 15,             \
            (5 * (e)) & 15, (6 * (e)) & 15, (7 * (e)) & 15                     \
    }

static const uint16_t perm_idx[17][32] = {
    PIDX(16), PIDX(17), PIDX(18), PIDX(19), PIDX(20), PIDX(21),
    PIDX(22), PIDX(23), PIDX(24), PIDX(25), PIDX(26), PIDX(27),
    PIDX(28), PIDX(29), PIDX(30), PIDX(31), PIDX(32)};
static const uint64_t perm_sh[17][8] = {
    PSH(16), PSH(17), PSH(18), PSH(19), PSH(20), PSH(21),
    PSH(22), PSH(23), PSH(24), PSH(25), PSH(26), PSH(27),
    PSH(28), PSH(29), PSH(30), PSH(31), PSH(32)};

size_t cordon__index_filter_avx512(const uint8_t *ent, size_t lo, size_t hi,
                                   int ebits, int pbits, uint32_t qfp, int rr,
                                   uint32_t *out)
{
    if (ebits < 16 || ebits > 32)
        return cordon__index_filter_scalar(ent, lo, hi, ebits, pbits, qfp, rr,
                                           out);
    size_t m = 0;
    const __m512i idxv = _mm512_loadu_si512(perm_idx[ebits - 16]);
    const __m512i shv = _mm512_loadu_si512(perm_sh[ebits - 16]);
    const __m512i emask = _mm512_set1_epi64((long long)((1ull << ebits) - 1));
    const __m512i pmask = _mm512_set1_epi64((long long)((1ull << pbits) - 1));
    const __m128i pcount = _mm_cvtsi32_si128(pbits);
    const __m512i qv = _mm512_set1_epi64(qfp), rv = _mm512_set1_epi64(rr);
    for (size_t g = lo & ~(size_t)7; g < hi; g += 8) {
        /* Eight entries take ebits bytes, starting on a byte boundary. */
        __m512i raw = _mm512_loadu_si512(ent + (g >> 3) * (unsigned)ebits);
        __m512i x = _mm512_and_si512(
            _mm512_srlv_epi64(_mm512_permutexvar_epi16(idxv, raw), shv), emask);
        __m512i dv = _mm512_popcnt_epi64(
            _mm512_xor_si512(_mm512_srl_epi64(x, pcount), qv));
        __mmask8 k = _mm512_cmple_epu64_mask(dv, rv);
        unsigned vm = 0xff;
        if (g < lo)
            vm &= 0xffu << (lo - g);
        if (g + 8 > hi)
            vm &= 0xffu >> (g + 8 - hi);
        k &= (__mmask8)vm;
        if (k) {
            __m256i pg = _mm512_cvtepi64_epi32(_mm512_and_si512(x, pmask));
            _mm256_mask_compressstoreu_epi32(out + m, k, pg);
            m += (size_t)__builtin_popcount(k);
        }
    }
    return m;
}

#endif
