/*
 * cordon_pdq.h - PDQ perceptual hashing, bit-compatible with the reference.
 *
 * Caveats:
 * - The core (cordon_pdq_compute) does no I/O and allocates nothing: the
 *   caller hands it a pixel plane and scratch memory sized by
 *   cordon_pdq_scratch_size(). It is reentrant; use one scratch per thread.
 * - "Canonical" means the full-resolution decoded pixels are hashed. Hashing
 *   a downscaled image (fast mode) gives a hash a few bits away.
 * - Planes with either side under 5 pixels hash to all zeros, quality 0.
 * - Results are identical on every SIMD path; CORDON_SIMD=scalar in the
 *   environment forces the portable path (see cordon_cpu.h).
 */
#ifndef CORDON_PDQ_H
#define CORDON_PDQ_H

#include <stddef.h>

#include "cordon_error.h"
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A 256-bit hash. Bit k (0..255) is (w[k >> 6] >> (k & 63)) & 1. For PDQ,
 * bit k = 16*i + j is DCT coefficient (i, j). */
typedef struct {
    uint64_t w[4];
} cordon_hash256_t;

#define CORDON_HASH_HEX_LEN 64
#define CORDON_PDQ_MATCH_DISTANCE 31 /* reference match threshold */
#define CORDON_PDQ_MIN_QUALITY 50    /* below this a hash is not matched */

/* The eight dihedral transforms of an image, in the reference's order. */
typedef enum {
    CORDON_DIH_ORIGINAL = 0,
    CORDON_DIH_ROT90,
    CORDON_DIH_ROT180,
    CORDON_DIH_ROT270,
    CORDON_DIH_FLIPX,
    CORDON_DIH_FLIPY,
    CORDON_DIH_FLIPPLUS1,
    CORDON_DIH_FLIPMINUS1,
    CORDON_DIH_COUNT
} cordon_dihedral_t;

/* Pixel layouts the core accepts. Alpha, where present, is ignored. */
typedef enum {
    CORDON_PIX_GRAY8 = 1, /* one byte per pixel, used as luma directly */
    CORDON_PIX_RGB8 = 3,  /* packed R, G, B */
    CORDON_PIX_RGBA8 = 4  /* packed R, G, B, A; A ignored */
} cordon_pixfmt_t;

/* A borrowed view of pixels; the core never writes through it. */
typedef struct {
    const uint8_t *data;
    int width;
    int height;
    size_t stride; /* bytes from one row to the next, >= width * format */
    cordon_pixfmt_t format;
} cordon_plane_t;

/* The 16x16 DCT block the hash is thresholded from; row i is the vertical
 * frequency, column j the horizontal one. Kept so that the dihedral variants
 * can be derived without decoding again. */
typedef struct {
    float c[16][16];
} cordon_pdq_dct_t;

typedef struct {
    cordon_hash256_t hash;
    int quality; /* 0..100 */
    cordon_pdq_dct_t dct;
} cordon_pdq_result_t;

/*
 * Fast mode. All zero means canonical. With scale > 1 the plane is taken
 * as a 1/scale downscale (JPEG DCT scaling) of an image of src_width x
 * src_height, and hashed as that full-size image would be if each plane
 * pixel were repeated scale x scale times: the filter and the 64x64
 * sampling follow the full-size geometry, computed directly on the small
 * plane. This is not bit-exact, but lands within a few bits of canonical,
 * far closer than hashing the small plane as an image of its own.
 */
typedef struct {
    int src_width, src_height; /* full-size dimensions */
    int scale;                 /* 0 or 1: canonical; 2..8: downscale */
} cordon_pdq_opts_t;

/**
 * Bytes of scratch that cordon_pdq_compute() needs for a width x height
 * plane. Returns 0 if the dimensions are not positive or the size would
 * overflow. Rows are streamed: the amount is about width * height / 128
 * floats, not the whole image.
 */
CORDON_API size_t cordon_pdq_scratch_size(int width, int height);

/** As cordon_pdq_scratch_size(), for cordon_pdq_compute_ex() with opts
 *  (NULL = canonical). */
CORDON_API size_t cordon_pdq_scratch_size_ex(int width, int height,
                                             const cordon_pdq_opts_t *opts);

/**
 * Computes the canonical PDQ hash and quality of a plane.
 *
 * @param img      pixels to hash; not retained.
 * @param scratch  caller-owned memory of at least
 *                 cordon_pdq_scratch_size(img->width, img->height) bytes; any
 *                 alignment. Its contents are undefined afterwards.
 * @param out      receives hash, quality and DCT block.
 * @return CORDON_OK, CORDON_EINVAL (NULL pointers, bad format or stride,
 *         non-positive size) or CORDON_ESCRATCH (scratch too small).
 */
CORDON_API int cordon_pdq_compute(const cordon_plane_t *img, void *scratch,
                       size_t scratch_size, cordon_pdq_result_t *out);

/**
 * As cordon_pdq_compute(), with non-canonical options (NULL = canonical).
 * @return as cordon_pdq_compute(); CORDON_EINVAL also when the plane is
 *         not ceil(src / scale) in size.
 */
CORDON_API int cordon_pdq_compute_ex(const cordon_plane_t *img,
                                     const cordon_pdq_opts_t *opts,
                                     void *scratch, size_t scratch_size,
                                     cordon_pdq_result_t *out);

/**
 * Derives the hashes of the eight dihedral transforms of the image from its
 * DCT block, without touching pixels. out[CORDON_DIH_ORIGINAL] equals the
 * hash computed by cordon_pdq_compute().
 */
CORDON_API void cordon_pdq_dihedral(const cordon_pdq_dct_t *dct,
                         cordon_hash256_t out[CORDON_DIH_COUNT]);

/** Thresholds a DCT block at its lower median into a hash. */
CORDON_API void cordon_pdq_threshold(const cordon_pdq_dct_t *dct, cordon_hash256_t *out);

/** Lower-case name of a dihedral variant: "original", "rot90", ... */
CORDON_API const char *cordon_dihedral_name(cordon_dihedral_t d);

/**
 * Parses exactly 64 hex digits (either case) into a hash.
 * @return CORDON_OK or CORDON_EHEX (wrong length or a non-hex character).
 */
CORDON_API int cordon_hash_from_hex(const char *hex, size_t len, cordon_hash256_t *out);

/** Formats a hash as 64 lower-case hex digits plus a NUL terminator. */
CORDON_API void cordon_hash_to_hex(const cordon_hash256_t *h,
                        char out[CORDON_HASH_HEX_LEN + 1]);

/** Hamming distance between two hashes, 0..256. */
CORDON_API int cordon_hash_distance(const cordon_hash256_t *a, const cordon_hash256_t *b);

#ifdef __cplusplus
}
#endif
#endif
