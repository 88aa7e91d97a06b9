/*
 * cordon_image.h - one call from encoded image bytes to every hash Cordon
 * stores: PDQ (+ quality, + the 8 dihedral variants) and MD5/SHA-256.
 *
 * Caveats:
 * - cordon_hash_image() allocates (decoded pixels, scratch) and frees
 *   before it returns. For many images, keep one cordon_hasher_t per thread:
 *   it reuses its buffers, which matters for large images, whose fresh
 *   memory otherwise costs page faults on every call.
 * - A hasher is not thread-safe; use one per thread.
 */
#ifndef CORDON_IMAGE_H
#define CORDON_IMAGE_H

#include "cordon_decode.h"
#include "cordon_digest.h"
#include "cordon_pdq.h"

#include "cordon_error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    cordon_hash256_t pdq;
    int quality;
    cordon_hash256_t dihedral[CORDON_DIH_COUNT]; /* [0] == pdq */
    uint8_t md5[CORDON_MD5_LEN];
    uint8_t sha256[CORDON_SHA256_LEN];
    int width; /* as declared by the file, not as decoded in fast mode */
    int height;
    cordon_format_t format;
} cordon_image_hashes_t;

/**
 * Decodes and hashes an image.
 * @param opts  decode limits and fast mode; NULL for canonical defaults.
 * @return CORDON_OK or any error of cordon_decode_image(), CORDON_ENOMEM.
 */
CORDON_API int cordon_hash_image(const uint8_t *buf, size_t len,
                      const cordon_decode_opts_t *opts,
                      cordon_image_hashes_t *out);

/* Reusable decoder + PDQ scratch. */
typedef struct cordon_hasher cordon_hasher_t;

/** Creates a hasher. Returns CORDON_OK, CORDON_EINVAL or CORDON_ENOMEM. */
CORDON_API int cordon_hasher_create(cordon_hasher_t **out);

/** Frees a hasher; NULL is a no-op. */
CORDON_API void cordon_hasher_free(cordon_hasher_t *h);

/** As cordon_hash_image(), reusing h's buffers. */
CORDON_API int cordon_hasher_image(cordon_hasher_t *h, const uint8_t *buf,
                                   size_t len,
                                   const cordon_decode_opts_t *opts,
                                   cordon_image_hashes_t *out);

/** PDQ of a plane the caller decoded, using h's scratch (grown as needed).
 *  Returns what cordon_pdq_compute() returns, or CORDON_ENOMEM. */
CORDON_API int cordon_hasher_pdq(cordon_hasher_t *h,
                                 const cordon_plane_t *plane,
                                 cordon_pdq_result_t *out);

/** As cordon_hasher_pdq(), with cordon_pdq_compute_ex() options (for a
 *  fast-mode decode: cordon_image_pdq_opts()). */
CORDON_API int cordon_hasher_pdq_ex(cordon_hasher_t *h,
                                    const cordon_plane_t *plane,
                                    const cordon_pdq_opts_t *opts,
                                    cordon_pdq_result_t *out);

#ifdef __cplusplus
}
#endif
#endif
