/*
 * video_avx2.c - vPDQ kernels built with -mavx2 -mpopcnt, called only when
 * cordon_cpu_features() reports AVX2. Each computes exactly what its
 * portable twin in video.c / video_match.c computes.
 */
#include <immintrin.h>
#include <stdint.h>

#include "video_internal.h"

size_t cordon__vpdq_count_matched_avx2(const cordon_hash256_t *a, size_t na,
                                       const cordon_hash256_t *b, size_t nb,
                                       int max_distance)
{
    size_t matched = 0;
    for (size_t i = 0; i < na; i++) {
        const uint64_t x0 = a[i].w[0], x1 = a[i].w[1], x2 = a[i].w[2],
                       x3 = a[i].w[3];
        for (size_t j = 0; j < nb; j++) {
            const uint64_t *y = b[j].w;
            int d = __builtin_popcountll(x0 ^ y[0]) +
                    __builtin_popcountll(x1 ^ y[1]) +
                    __builtin_popcountll(x2 ^ y[2]) +
                    __builtin_popcountll(x3 ^ y[3]);
            if (d <= max_distance) {
                matched++;
                break;
            }
        }
    }
    return matched;
}

/* (t * K + R) >> S with t = max(y - 16, 0), saturated to 255, is exactly
 * the rounded (y - 16) * 255 / 219 for every byte (see video_internal.h). */
void cordon__vpdq_tv_stretch_avx2(const uint8_t *src, uint8_t *dst, size_t n)
{
    const __m256i sixteen = _mm256_set1_epi8(16);
    const __m256i kr = _mm256_set1_epi32(CORDON__TV_K | (CORDON__TV_R << 16));
    const __m256i zero = _mm256_setzero_si256();
    const __m256i one16 = _mm256_set1_epi16(1);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i y = _mm256_loadu_si256((const __m256i *)(src + i));
        __m256i t = _mm256_subs_epu8(y, sixteen);
        __m256i lo = _mm256_unpacklo_epi8(t, zero); /* 16-bit t */
        __m256i hi = _mm256_unpackhi_epi8(t, zero);
        /* Pairs (t, 1) . (K, R) = t*K + R in 32-bit lanes. */
        __m256i a0 = _mm256_madd_epi16(_mm256_unpacklo_epi16(lo, one16), kr);
        __m256i a1 = _mm256_madd_epi16(_mm256_unpackhi_epi16(lo, one16), kr);
        __m256i a2 = _mm256_madd_epi16(_mm256_unpacklo_epi16(hi, one16), kr);
        __m256i a3 = _mm256_madd_epi16(_mm256_unpackhi_epi16(hi, one16), kr);
        a0 = _mm256_srai_epi32(a0, CORDON__TV_S);
        a1 = _mm256_srai_epi32(a1, CORDON__TV_S);
        a2 = _mm256_srai_epi32(a2, CORDON__TV_S);
        a3 = _mm256_srai_epi32(a3, CORDON__TV_S);
        /* The unpacks and packs work within 128-bit lanes and undo each
         * other, so the bytes come back in their original order. */
        __m256i w0 = _mm256_packs_epi32(a0, a1);
        __m256i w1 = _mm256_packs_epi32(a2, a3);
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_packus_epi16(w0, w1));
    }
    for (; i < n; i++) {
        int t = src[i] > 16 ? src[i] - 16 : 0;
        int v = (t * CORDON__TV_K + CORDON__TV_R) >> CORDON__TV_S;
        dst[i] = (uint8_t)(v > 255 ? 255 : v);
    }
}
