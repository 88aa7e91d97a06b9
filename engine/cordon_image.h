/*
 * cordon_image.h - one call from encoded image bytes to every hash Cordon
 * stores: PDQ (+ quality, + the 8 dihedral variants) and MD5/SHA-256.
 *
 * Caveats: this allocates (decoded pixels, scratch) and frees before it
 * returns. Use the lower-level decode and pdq modules to reuse buffers.
 */
#ifndef CORDON_IMAGE_H
#define CORDON_IMAGE_H

#include "cordon_decode.h"
#include "cordon_digest.h"
#include "cordon_pdq.h"

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
int cordon_hash_image(const uint8_t *buf, size_t len,
                      const cordon_decode_opts_t *opts,
                      cordon_image_hashes_t *out);

#ifdef __cplusplus
}
#endif
#endif
