/*
 * cordon_decode.h - still-image decoding from bytes in memory.
 *
 * Caveats:
 * - The format is detected from the bytes, never from a file name.
 * - JPEG goes through TurboJPEG with its defaults (accurate ISLOW IDCT, fancy
 *   upsampling); PNG through libpng's classic API with no colour management;
 *   everything else (WebP, GIF's first frame, BMP, TIFF, ...) through FFmpeg.
 * - EXIF orientation and colour profiles are ignored on purpose: PDQ hashes
 *   pixels as stored.
 * - Limits are checked from the header before any pixel memory is allocated.
 * - Input is untrusted: every malformed input returns an error code.
 */
#ifndef CORDON_DECODE_H
#define CORDON_DECODE_H

#include <stddef.h>

#include "cordon_error.h"
#include <stdint.h>

#include "cordon_pdq.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CORDON_FMT_UNKNOWN = 0,
    CORDON_FMT_JPEG,
    CORDON_FMT_PNG,
    CORDON_FMT_GIF,
    CORDON_FMT_WEBP,
    CORDON_FMT_BMP,
    CORDON_FMT_TIFF,
} cordon_format_t;

#define CORDON_DEFAULT_MAX_BYTES (256ull << 20)  /* 256 MiB */
#define CORDON_DEFAULT_MAX_PIXELS 100000000ull   /* 100 megapixels */
#define CORDON_DEFAULT_FAST_MIN_SIDE 192

typedef struct {
    uint64_t max_bytes;  /* reject larger inputs; 0 = no limit */
    uint64_t max_pixels; /* reject larger images (width*height); 0 = none */
    /* Fast mode: for JPEG, let TurboJPEG scale by 1/2, 1/4 or 1/8 in the
     * IDCT, choosing the smallest scale whose shorter side stays at least
     * fast_min_side pixels. Off (0) gives canonical full-resolution pixels. */
    int fast;
    int fast_min_side;
} cordon_decode_opts_t;

typedef struct {
    uint8_t *pixels; /* owned; release with cordon_image_free() */
    int width;       /* of the decoded (possibly scaled) pixels */
    int height;
    size_t stride;
    cordon_pixfmt_t pixfmt; /* GRAY8 or RGB8 */
    int src_width;          /* as declared by the file */
    int src_height;
    int scale;              /* 1, or the fast-mode downscale (2, 4, 8) */
    cordon_format_t format;
} cordon_image_t;

/** Fills opts with the safe defaults above (canonical, not fast). */
CORDON_API void cordon_decode_opts_default(cordon_decode_opts_t *opts);

/** Detects a still-image format from the first bytes; UNKNOWN otherwise. */
CORDON_API cordon_format_t cordon_sniff_image(const uint8_t *buf, size_t len);

/** Lower-case name of a format: "jpeg", "png", ..., "unknown". */
CORDON_API const char *cordon_format_name(cordon_format_t fmt);

/**
 * Decodes a still image.
 *
 * @param buf, len  the encoded bytes; only read, not retained.
 * @param opts      limits and mode; NULL means the defaults.
 * @param out       on success receives pixels the caller must release with
 *                  cordon_image_free(); on failure it is zeroed.
 * @return CORDON_OK; CORDON_EEMPTY (len 0); CORDON_ELIMIT_BYTES;
 *         CORDON_EFORMAT (not a still image we know); CORDON_ELIMIT_PIXELS;
 *         CORDON_EDIMENSIONS; CORDON_ETRUNC; CORDON_ECORRUPT; CORDON_ENOMEM.
 */
CORDON_API int cordon_decode_image(const uint8_t *buf, size_t len,
                        const cordon_decode_opts_t *opts, cordon_image_t *out);

/* A reusable decoder: keeps its library handles and pixel buffer between
 * calls, so that decoding many images does not allocate (and fault in)
 * fresh memory each time. One decoder per thread. */
typedef struct cordon_decoder cordon_decoder_t;

/** Creates a decoder. Returns CORDON_OK, CORDON_EINVAL or CORDON_ENOMEM. */
CORDON_API int cordon_decoder_create(cordon_decoder_t **out);

/** Frees a decoder and the pixels it last returned; NULL is a no-op. */
CORDON_API void cordon_decoder_free(cordon_decoder_t *d);

/**
 * As cordon_decode_image(), but the pixels in *out belong to the decoder:
 * they stay valid until the next call on d or cordon_decoder_free(d), and
 * must not be passed to cordon_image_free().
 */
CORDON_API int cordon_decoder_decode(cordon_decoder_t *d, const uint8_t *buf,
                                     size_t len,
                                     const cordon_decode_opts_t *opts,
                                     cordon_image_t *out);

/** Releases the pixels of an image; safe on a zeroed struct. */
CORDON_API void cordon_image_free(cordon_image_t *img);

/** The PDQ options that hash a decoded image as its full-size self: fast
 *  mode's scale and source size, or all zero (canonical). */
CORDON_API void cordon_image_pdq_opts(const cordon_image_t *img,
                                      cordon_pdq_opts_t *out);

/** The decoded pixels as a plane for cordon_pdq_compute(). */
CORDON_API cordon_plane_t cordon_image_plane(const cordon_image_t *img);

#ifdef __cplusplus
}
#endif
#endif
