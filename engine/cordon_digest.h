/*
 * cordon_digest.h - exact-copy digests (MD5, SHA-256) through libcrypto.
 *
 * Caveats: MD5 is kept only because hash-sharing databases carry it; it is
 * not collision resistant. Prefer SHA-256 for anything new.
 */
#ifndef CORDON_DIGEST_H
#define CORDON_DIGEST_H

#include <stddef.h>

#include "cordon_error.h"
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CORDON_MD5_LEN 16
#define CORDON_SHA256_LEN 32

/** MD5 and SHA-256 of buf in one call. Returns CORDON_OK or CORDON_EINTERNAL
 *  if libcrypto fails. Either output may be NULL to skip it. */
CORDON_API int cordon_digest(const uint8_t *buf, size_t len,
                  uint8_t md5[CORDON_MD5_LEN],
                  uint8_t sha256[CORDON_SHA256_LEN]);

/** Writes 2*n lower-case hex digits and a NUL into out. */
CORDON_API void cordon_hex_encode(const uint8_t *bytes, size_t n, char *out);

/** Parses exactly 2*n hex digits of hex (length len) into bytes.
 *  Returns CORDON_OK or CORDON_EHEX. */
CORDON_API int cordon_hex_decode(const char *hex, size_t len, uint8_t *bytes, size_t n);

#ifdef __cplusplus
}
#endif
#endif
