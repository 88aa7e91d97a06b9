/* decode_internal.h - shared by the still-image decoders (not public). */
#ifndef CORDON_DECODE_INTERNAL_H
#define CORDON_DECODE_INTERNAL_H

#include "cordon_decode.h"

/* No side may exceed this, whatever the pixel limit: keeps every size
 * computation far from overflow. */
#define CORDON__MAX_SIDE 65535

/* The reusable state behind cordon_decoder_t. */
struct cordon_decoder {
    void *tj;    /* TurboJPEG handle, created on first JPEG */
    uint8_t *px; /* pixel buffer, grown as needed, never shrunk */
    size_t cap;
};

/* A pixel buffer of at least n bytes owned by d; NULL if out of memory. */
uint8_t *cordon__decoder_reserve(cordon_decoder_t *d, size_t n);

/* Checks declared dimensions against the hard side cap and opts. */
int cordon__check_dims(const cordon_decode_opts_t *o, long long w, long long h);

/* GIF (first frame), WebP, BMP, TIFF and other stills through FFmpeg. */
int cordon__decode_ffmpeg_still(cordon_decoder_t *d, const uint8_t *buf,
                                size_t len,
                                cordon_format_t fmt,
                                const cordon_decode_opts_t *o,
                                cordon_image_t *out);

#endif
