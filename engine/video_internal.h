/* video_internal.h - vPDQ internals shared between video*.c files. */
#ifndef CORDON_VIDEO_INTERNAL_H
#define CORDON_VIDEO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "cordon_pdq.h"

/* How many hashes of a[] lie within max_distance of at least one hash of
 * b[]. One function per instruction set, identical results; the dispatcher
 * picks by cordon_cpu_features(). */
size_t cordon__vpdq_count_matched(const cordon_hash256_t *a, size_t na,
                                  const cordon_hash256_t *b, size_t nb,
                                  int max_distance);
size_t cordon__vpdq_count_matched_scalar(const cordon_hash256_t *a, size_t na,
                                         const cordon_hash256_t *b, size_t nb,
                                         int max_distance);
size_t cordon__vpdq_count_matched_avx2(const cordon_hash256_t *a, size_t na,
                                       const cordon_hash256_t *b, size_t nb,
                                       int max_distance);

/* Limited-range luma (16..235) to full range: dst = round((y - 16) * 255 /
 * 219) clamped to 0..255. (max(y - 16, 0) * K + R) >> S equals that for
 * all 256 inputs (checked exhaustively by tests/test_video.c), which lets
 * SIMD compute it with 16x16->32-bit multiplies. */
#define CORDON__TV_K 2385
#define CORDON__TV_R 986
#define CORDON__TV_S 11
void cordon__vpdq_tv_stretch(const uint8_t *src, uint8_t *dst, size_t n);
void cordon__vpdq_tv_stretch_scalar(const uint8_t *src, uint8_t *dst, size_t n);
void cordon__vpdq_tv_stretch_avx2(const uint8_t *src, uint8_t *dst, size_t n);

#endif
