/* video_internal.h - vPDQ internals shared between video*.c files. */
#ifndef CORDON_VIDEO_INTERNAL_H
#define CORDON_VIDEO_INTERNAL_H

#include <stddef.h>

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

#endif
