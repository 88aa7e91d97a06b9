/* decode_internal.h - shared by the still-image decoders (not public). */
#ifndef CORDON_DECODE_INTERNAL_H
#define CORDON_DECODE_INTERNAL_H

#include "cordon_decode.h"

/* No side may exceed this, whatever the pixel limit: keeps every size
 * computation far from overflow. */
#define CORDON__MAX_SIDE 65535

/* Checks declared dimensions against the hard side cap and opts. */
int cordon__check_dims(const cordon_decode_opts_t *o, long long w, long long h);

/* GIF (first frame), WebP, BMP, TIFF and other stills through FFmpeg. */
int cordon__decode_ffmpeg_still(const uint8_t *buf, size_t len,
                                cordon_format_t fmt,
                                const cordon_decode_opts_t *o,
                                cordon_image_t *out);

#endif
