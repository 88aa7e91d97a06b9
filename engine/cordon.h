/*
 * cordon.h - the umbrella public header of libcordon.
 *
 * Modules (each with its own header and prefix):
 *   cordon_error.h   error codes, cordon_strerror()
 *   cordon_pdq.h     PDQ hashing core, hex, Hamming distance
 *   cordon_decode.h  still-image decoding with limits
 *   cordon_digest.h  MD5 / SHA-256
 *   cordon_image.h   bytes -> all image hashes in one call
 *   cordon_cpu.h     SIMD dispatch
 *   cordon_index.h   exact Hamming radius search (multi-index hashing)
 *   cordon_video.h   vPDQ video hashing and matching
 */
#ifndef CORDON_H
#define CORDON_H

#include "cordon_cpu.h"
#include "cordon_decode.h"
#include "cordon_digest.h"
#include "cordon_error.h"
#include "cordon_image.h"
#include "cordon_index.h"
#include "cordon_pdq.h"
#include "cordon_video.h"

/** The library version, e.g. "0.1.0". */
CORDON_API const char *cordon_version(void);

#endif
