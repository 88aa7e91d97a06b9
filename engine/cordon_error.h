/*
 * cordon_error.h - the one error space of Cordon.
 *
 * Caveats:
 * - Every fallible function returns 0 (CORDON_OK) or one of the negative
 *   codes below. Codes are stable within a major version; new ones are only
 *   ever appended.
 * - The table is an X-macro so that the enum, cordon_errname() and
 *   cordon_strerror() can never drift apart.
 */
#ifndef CORDON_ERROR_H
#define CORDON_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the functions libcordon.so exports; everything else is hidden. */
#if defined(__GNUC__)
#define CORDON_API __attribute__((visibility("default")))
#else
#define CORDON_API
#endif

/* X(NAME, value, message) */
#define CORDON_ERRNO_MAP(X)                                                    \
    X(EINVAL, -1, "invalid argument")                                          \
    X(ENOMEM, -2, "out of memory")                                             \
    X(EEMPTY, -3, "empty input")                                               \
    X(EFORMAT, -4, "unsupported or unrecognised format")                       \
    X(ETRUNC, -5, "truncated input")                                           \
    X(ECORRUPT, -6, "corrupt input")                                           \
    X(ELIMIT_BYTES, -7, "input exceeds the byte limit")                        \
    X(ELIMIT_PIXELS, -8, "image exceeds the pixel limit")                      \
    X(ELIMIT_FRAMES, -9, "video exceeds the frame limit")                      \
    X(ELIMIT_DURATION, -10, "video exceeds the duration limit")                \
    X(ENOVIDEO, -11, "no video stream")                                        \
    X(EDECODE, -12, "decoder failure")                                         \
    X(EHEX, -13, "malformed hash")                                             \
    X(ESCRATCH, -14, "scratch buffer too small")                               \
    X(EIO, -15, "I/O error")                                                   \
    X(ENOTFOUND, -16, "not found")                                             \
    X(EEXIST, -17, "already exists")                                           \
    X(EDB, -18, "database error")                                              \
    X(EDBVERSION, -19, "database schema version not supported")                \
    X(EPARSE, -20, "parse error")                                              \
    X(EBUSY, -21, "resource busy")                                             \
    X(ERANGE, -22, "value out of range")                                       \
    X(EPERM, -23, "permission denied")                                         \
    X(EINTERNAL, -24, "internal error")                                        \
    X(EDIMENSIONS, -25, "image dimensions invalid")                            \
    X(ETOOLARGE, -26, "value too large")

typedef enum {
    CORDON_OK = 0,
#define CORDON__ERR_ENUM(name, val, msg) CORDON_##name = (val),
    CORDON_ERRNO_MAP(CORDON__ERR_ENUM)
#undef CORDON__ERR_ENUM
} cordon_err_t;

/** Human-readable message for an error code; never NULL, static storage. */
CORDON_API const char *cordon_strerror(int err);

/** Symbolic name ("CORDON_ETRUNC") of an error code; never NULL, static. */
CORDON_API const char *cordon_errname(int err);

#ifdef __cplusplus
}
#endif
#endif
