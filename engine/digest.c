#include <openssl/evp.h>

#include "cordon_digest.h"
#include "cordon_error.h"

static int one_digest(const EVP_MD *md, const uint8_t *buf, size_t len,
                      uint8_t *out)
{
    unsigned int n = 0;
    return EVP_Digest(buf, len, out, &n, md, NULL) == 1 ? CORDON_OK
                                                         : CORDON_EINTERNAL;
}

int cordon_digest(const uint8_t *buf, size_t len, uint8_t md5[CORDON_MD5_LEN],
                  uint8_t sha256[CORDON_SHA256_LEN])
{
    static const uint8_t empty = 0;
    if (!buf)
        buf = &empty; /* libcrypto wants a pointer even for len 0 */
    int rc = CORDON_OK;
    if (md5 && (rc = one_digest(EVP_md5(), buf, len, md5)) != CORDON_OK)
        return rc;
    if (sha256)
        rc = one_digest(EVP_sha256(), buf, len, sha256);
    return rc;
}

void cordon_hex_encode(const uint8_t *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = 0;
}

static int nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int cordon_hex_decode(const char *hex, size_t len, uint8_t *bytes, size_t n)
{
    if (!hex || len != 2 * n)
        return CORDON_EHEX;
    for (size_t i = 0; i < n; i++) {
        int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return CORDON_EHEX;
        bytes[i] = (uint8_t)(hi << 4 | lo);
    }
    return CORDON_OK;
}
