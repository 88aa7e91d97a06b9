/*
 * video_match_avx2.c - the frame-list scan built with -mavx2 -mpopcnt: the
 * same loop as the scalar path, with the hardware popcount instruction.
 * Only called when cordon_cpu_features() reports AVX2.
 */
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
