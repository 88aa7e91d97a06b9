/*
 * decode.c - still-image decoding: format sniffing, limits, and the three
 * decoders (TurboJPEG, libpng, FFmpeg). Only this file and ffmpeg_still.c
 * include decoder libraries.
 */
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>
#include <turbojpeg.h>

#include "cordon_decode.h"
#include "cordon_error.h"
#include "decode_internal.h"

void cordon_decode_opts_default(cordon_decode_opts_t *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->max_bytes = CORDON_DEFAULT_MAX_BYTES;
    opts->max_pixels = CORDON_DEFAULT_MAX_PIXELS;
    opts->fast = 0;
    opts->fast_min_side = CORDON_DEFAULT_FAST_MIN_SIDE;
}

cordon_format_t cordon_sniff_image(const uint8_t *b, size_t n)
{
    if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF)
        return CORDON_FMT_JPEG;
    if (n >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0)
        return CORDON_FMT_PNG;
    if (n >= 6 && (memcmp(b, "GIF87a", 6) == 0 || memcmp(b, "GIF89a", 6) == 0))
        return CORDON_FMT_GIF;
    if (n >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0)
        return CORDON_FMT_WEBP;
    if (n >= 14 && b[0] == 'B' && b[1] == 'M')
        return CORDON_FMT_BMP;
    if (n >= 4 && (memcmp(b, "II*\0", 4) == 0 || memcmp(b, "MM\0*", 4) == 0))
        return CORDON_FMT_TIFF;
    return CORDON_FMT_UNKNOWN;
}

const char *cordon_format_name(cordon_format_t fmt)
{
    switch (fmt) {
    case CORDON_FMT_JPEG:
        return "jpeg";
    case CORDON_FMT_PNG:
        return "png";
    case CORDON_FMT_GIF:
        return "gif";
    case CORDON_FMT_WEBP:
        return "webp";
    case CORDON_FMT_BMP:
        return "bmp";
    case CORDON_FMT_TIFF:
        return "tiff";
    case CORDON_FMT_UNKNOWN:
        break;
    }
    return "unknown";
}

uint8_t *cordon__decoder_reserve(cordon_decoder_t *d, size_t n)
{
    if (n > d->cap) {
        /* No realloc: the old pixels are never needed again. */
        free(d->px);
        d->cap = 0;
        d->px = malloc(n);
        if (!d->px)
            return NULL;
        d->cap = n;
    }
    return d->px;
}

int cordon_decoder_create(cordon_decoder_t **out)
{
    if (!out)
        return CORDON_EINVAL;
    *out = calloc(1, sizeof **out);
    return *out ? CORDON_OK : CORDON_ENOMEM;
}

void cordon_decoder_free(cordon_decoder_t *d)
{
    if (!d)
        return;
    if (d->tj)
        tjDestroy(d->tj);
    free(d->px);
    free(d);
}

void cordon_image_free(cordon_image_t *img)
{
    if (img) {
        free(img->pixels);
        memset(img, 0, sizeof *img);
    }
}

void cordon_image_pdq_opts(const cordon_image_t *img, cordon_pdq_opts_t *out)
{
    memset(out, 0, sizeof *out);
    if (img->scale > 1) {
        out->src_width = img->src_width;
        out->src_height = img->src_height;
        out->scale = img->scale;
    }
}

cordon_plane_t cordon_image_plane(const cordon_image_t *img)
{
    cordon_plane_t p = {img->pixels, img->width, img->height, img->stride,
                        img->pixfmt};
    return p;
}

int cordon__check_dims(const cordon_decode_opts_t *o, long long w, long long h)
{
    if (w <= 0 || h <= 0)
        return CORDON_EDIMENSIONS;
    /* w and h come from 32-bit header fields, so w * h cannot overflow. */
    if (o->max_pixels && (unsigned long long)(w * h) > o->max_pixels)
        return CORDON_ELIMIT_PIXELS;
    if (w > CORDON__MAX_SIDE || h > CORDON__MAX_SIDE)
        return CORDON_EDIMENSIONS;
    return CORDON_OK;
}

/* ---- JPEG ------------------------------------------------------------ */

/* What the marker walk learns before TurboJPEG sees the bytes. */
typedef struct {
    int width, height;
    int adobe; /* an Adobe APP14 segment: CMYK is stored inverted */
    size_t sos; /* offset of the first start-of-scan marker */
} jpeg_info_t;

/* True when an EOI marker follows the first scan. Inside entropy-coded
 * data 0xFF is always followed by 0x00 or a restart marker, so FF D9 there
 * can only be the real end of the image. */
static int jpeg_has_eoi(const uint8_t *b, size_t n, size_t from)
{
    for (size_t i = n; i-- > from + 1;)
        if (b[i] == 0xD9 && b[i - 1] == 0xFF)
            return 1;
    return 0;
}

static unsigned be16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/*
 * Walks the JPEG markers from SOI to the first SOS, so that a cut-off file
 * is told apart from a corrupt one and the frame size is known before
 * anything else happens. Returns CORDON_OK, CORDON_ETRUNC (the bytes end
 * inside the headers) or CORDON_ECORRUPT.
 */
static int jpeg_walk_headers(const uint8_t *b, size_t n, jpeg_info_t *ji)
{
    size_t pos = 2;
    int have_sof = 0;
    memset(ji, 0, sizeof *ji);
    for (;;) {
        if (pos >= n)
            return CORDON_ETRUNC;
        if (b[pos] != 0xFF)
            return CORDON_ECORRUPT;
        while (pos < n && b[pos] == 0xFF) /* fill bytes */
            pos++;
        if (pos >= n)
            return CORDON_ETRUNC;
        unsigned m = b[pos++];
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD8))
            continue; /* standalone markers */
        if (m == 0xD9 || m == 0x00)
            return CORDON_ECORRUPT; /* EOI or a stuffed zero in headers */
        if (pos + 2 > n)
            return CORDON_ETRUNC;
        size_t len = be16(b + pos);
        if (len < 2)
            return CORDON_ECORRUPT;
        int is_sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 &&
                     m != 0xCC;
        if (is_sof) {
            if (len < 8)
                return CORDON_ECORRUPT;
            if (pos + 7 > n)
                return CORDON_ETRUNC;
            ji->height = (int)be16(b + pos + 3);
            ji->width = (int)be16(b + pos + 5);
            have_sof = 1;
        }
        if (m == 0xEE && len >= 7 && pos + 7 <= n &&
            memcmp(b + pos + 2, "Adobe", 5) == 0)
            ji->adobe = 1;
        if (m == 0xDA) {
            if (pos + len > n)
                return CORDON_ETRUNC;
            ji->sos = pos;
            return have_sof ? CORDON_OK : CORDON_ECORRUPT;
        }
        if (pos + len > n)
            return CORDON_ETRUNC;
        pos += len;
    }
}

static uint8_t clip255(int v)
{
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* CMYK to RGB as Pillow converts it (R = 255 - min(255, C + K)), so that
 * hashes agree with tools built on it. Converts in place: 4 bytes -> 3. */
static void cmyk_to_rgb(uint8_t *px, int w, int h, size_t stride_in,
                        size_t stride_out, int inverted)
{
    for (int y = 0; y < h; y++) {
        const uint8_t *s = px + (size_t)y * stride_in;
        uint8_t *d = px + (size_t)y * stride_out;
        for (int x = 0; x < w; x++, s += 4, d += 3) {
            int c = s[0], m = s[1], yy = s[2], k = s[3];
            if (inverted) {
                c = 255 - c;
                m = 255 - m;
                yy = 255 - yy;
                k = 255 - k;
            }
            d[0] = clip255(255 - (c + k));
            d[1] = clip255(255 - (m + k));
            d[2] = clip255(255 - (yy + k));
        }
    }
}

static int decode_jpeg(cordon_decoder_t *d, const uint8_t *buf, size_t len,
                       const cordon_decode_opts_t *o, cordon_image_t *out)
{
    int rc = CORDON_OK;
    uint8_t *px;
    jpeg_info_t ji;
    int walk = jpeg_walk_headers(buf, len, &ji);
    /* A declared size over the limits is refused even when the rest of
     * the file is missing or damaged. */
    if (ji.width || ji.height) {
        if ((rc = cordon__check_dims(o, ji.width, ji.height)) != CORDON_OK)
            return rc;
    }
    if (walk != CORDON_OK)
        return walk;
    if (!d->tj && !(d->tj = tjInitDecompress()))
        return CORDON_ENOMEM;
    tjhandle tj = d->tj;
    int w, h, subsamp, cs;
    if (tjDecompressHeader3(tj, buf, (unsigned long)len, &w, &h, &subsamp,
                            &cs) != 0 ||
        w != ji.width || h != ji.height) {
        rc = CORDON_ECORRUPT;
        goto fail;
    }

    int sw = w, sh = h;
    tjscalingfactor sf = {1, 1};
    if (o->fast) {
        /* The smallest IDCT scale that keeps the short side >= min_side:
         * PDQ only ever reads 64x64 filtered samples. */
        int min_side = o->fast_min_side > 0 ? o->fast_min_side : 1;
        int shorter = w < h ? w : h;
        /* 1/8 is left out: even with scaled windows its drift is
         * several times that of 1/4 (benchmarks/README.md). */
        static const int denoms[] = {4, 2};
        for (size_t i = 0; i < sizeof denoms / sizeof denoms[0]; i++) {
            tjscalingfactor f = {1, denoms[i]};
            if (TJSCALED(shorter, f) >= min_side) {
                sf = f;
                break;
            }
        }
        sw = TJSCALED(w, sf);
        sh = TJSCALED(h, sf);
    }

    int cmyk = (cs == TJCS_CMYK || cs == TJCS_YCCK);
    int pf = cs == TJCS_GRAY ? TJPF_GRAY : cmyk ? TJPF_CMYK : TJPF_RGB;
    size_t stride = (size_t)sw * (size_t)tjPixelSize[pf];
    px = cordon__decoder_reserve(d, stride * (size_t)sh);
    if (!px) {
        rc = CORDON_ENOMEM;
        goto fail;
    }
    /* Defaults: accurate ISLOW IDCT and fancy upsampling, as the canonical
     * vectors were made with. Warnings do not stop decoding; we judge them
     * afterwards. */
    if (tjDecompress2(tj, buf, (unsigned long)len, px, sw, (int)stride, sh, pf,
                      0) != 0) {
        const char *msg = tjGetErrorStr2(tj);
        if (tjGetErrorCode(tj) == TJERR_FATAL) {
            /* A file that also lacks its end marker was cut off. */
            rc = (msg && strstr(msg, "Premature end")) ||
                         !jpeg_has_eoi(buf, len, ji.sos)
                     ? CORDON_ETRUNC
                     : CORDON_ECORRUPT;
            goto fail;
        }
        /* A recoverable warning. libjpeg pads a cut-off file with grey
         * (or, if progressive, stops refining it); reject that rather than
         * hash filler. Warnings on complete files (extraneous bytes and
         * the like) are tolerated, as other decoders tolerate them. */
        if ((msg && strstr(msg, "Premature end")) ||
            !jpeg_has_eoi(buf, len, ji.sos)) {
            rc = CORDON_ETRUNC;
            goto fail;
        }
    }
    if (cmyk) {
        cmyk_to_rgb(px, sw, sh, stride, (size_t)sw * 3, ji.adobe);
        stride = (size_t)sw * 3;
        pf = TJPF_RGB;
    }
    out->pixels = px;
    out->width = sw;
    out->height = sh;
    out->stride = stride;
    out->pixfmt = pf == TJPF_GRAY ? CORDON_PIX_GRAY8 : CORDON_PIX_RGB8;
    out->src_width = w;
    out->src_height = h;
    out->format = CORDON_FMT_JPEG;
    out->scale = sf.denom;
    return CORDON_OK;
fail:
    return rc;
}

/* ---- PNG ------------------------------------------------------------- */

typedef struct {
    const uint8_t *buf;
    size_t len, pos;
    int eof;         /* the decoder wanted bytes past the end */
    jmp_buf jmp;
} png_src_t;

static void png_read_mem(png_structp png, png_bytep dst, png_size_t n)
{
    png_src_t *s = png_get_io_ptr(png);
    if (n > s->len - s->pos) {
        s->eof = 1;
        png_error(png, "truncated");
    }
    memcpy(dst, s->buf + s->pos, n);
    s->pos += n;
}

static void png_on_error(png_structp png, png_const_charp msg)
{
    (void)msg;
    png_src_t *s = png_get_error_ptr(png);
    longjmp(s->jmp, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg; /* colour-profile and similar warnings are irrelevant */
}

static int decode_png(cordon_decoder_t *d, const uint8_t *buf, size_t len,
                      const cordon_decode_opts_t *o, cordon_image_t *out)
{
    /* The IHDR chunk must come first; read the size from it directly so
     * that limits hold even when the rest of the file is missing. */
    if (len < 8 + 8 + 13)
        return CORDON_ETRUNC;
    if (memcmp(buf + 12, "IHDR", 4) != 0 || be16(buf + 8) != 0 ||
        be16(buf + 10) != 13)
        return CORDON_ECORRUPT;
    uint32_t hw = (uint32_t)be16(buf + 16) << 16 | be16(buf + 18);
    uint32_t hh = (uint32_t)be16(buf + 20) << 16 | be16(buf + 22);
    if (hw > 0x7fffffffu || hh > 0x7fffffffu)
        return CORDON_ECORRUPT;
    int chk0 = cordon__check_dims(o, (long long)hw, (long long)hh);
    if (chk0 != CORDON_OK)
        return chk0;

    png_src_t src;
    memset(&src, 0, sizeof src);
    src.buf = buf;
    src.len = len;
    png_structp png = NULL;
    png_infop info = NULL;
    uint8_t *volatile px = NULL;
    png_bytep *volatile rows = NULL;
    volatile int rc = CORDON_OK;

    png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error,
                                 png_on_warning);
    if (!png)
        return CORDON_ENOMEM;
    info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return CORDON_ENOMEM;
    }
    if (setjmp(src.jmp)) {
        if (rc == CORDON_OK)
            rc = src.eof ? CORDON_ETRUNC : CORDON_ECORRUPT;
        goto fail;
    }
    png_set_read_fn(png, &src, png_read_mem);
    /* Bound what ancillary chunks may allocate; pixel memory is bounded by
     * our own pixel limit below. */
    png_set_chunk_malloc_max(png, 8u << 20);
    png_read_info(png, info);

    png_uint_32 w = png_get_image_width(png, info);
    png_uint_32 h = png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info);
    int ctype = png_get_color_type(png, info);
    int chk = cordon__check_dims(o, (long long)w, (long long)h);
    if (chk != CORDON_OK) {
        rc = chk;
        goto fail;
    }
    /* No colour management: no gamma, no profile; stored samples only. */
    if (depth == 16)
        png_set_strip_16(png); /* keeps the high byte of each sample */
    if (ctype == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (ctype & PNG_COLOR_MASK_ALPHA)
        png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    int channels = png_get_channels(png, info);
    if (channels != 1 && channels != 3) {
        rc = CORDON_EFORMAT;
        goto fail;
    }
    size_t stride = png_get_rowbytes(png, info);
    if (stride != (size_t)w * (size_t)channels) {
        rc = CORDON_ECORRUPT;
        goto fail;
    }
    px = cordon__decoder_reserve(d, stride * h);
    rows = malloc(sizeof(png_bytep) * h);
    if (!px || !rows) {
        rc = CORDON_ENOMEM;
        goto fail;
    }
    for (png_uint_32 y = 0; y < h; y++)
        rows[y] = px + (size_t)y * stride;
    png_read_image(png, rows);
    /* The pixels are complete; trailing chunks do not affect them. */
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    out->pixels = px;
    out->width = (int)w;
    out->height = (int)h;
    out->stride = stride;
    out->pixfmt = channels == 1 ? CORDON_PIX_GRAY8 : CORDON_PIX_RGB8;
    out->src_width = (int)w;
    out->src_height = (int)h;
    out->format = CORDON_FMT_PNG;
    out->scale = 1;
    return CORDON_OK;
fail:
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    return rc;
}

int cordon_decoder_decode(cordon_decoder_t *d, const uint8_t *buf, size_t len,
                          const cordon_decode_opts_t *opts, cordon_image_t *out)
{
    cordon_decode_opts_t defaults;
    if (!out || !d)
        return CORDON_EINVAL;
    memset(out, 0, sizeof *out);
    if (!opts) {
        cordon_decode_opts_default(&defaults);
        opts = &defaults;
    }
    if (!buf && len)
        return CORDON_EINVAL;
    if (len == 0)
        return CORDON_EEMPTY;
    if (opts->max_bytes && len > opts->max_bytes)
        return CORDON_ELIMIT_BYTES;
    cordon_format_t fmt = cordon_sniff_image(buf, len);
    switch (fmt) {
    case CORDON_FMT_JPEG:
        return decode_jpeg(d, buf, len, opts, out);
    case CORDON_FMT_PNG:
        return decode_png(d, buf, len, opts, out);
    case CORDON_FMT_GIF:
    case CORDON_FMT_WEBP:
    case CORDON_FMT_BMP:
    case CORDON_FMT_TIFF:
        return cordon__decode_ffmpeg_still(d, buf, len, fmt, opts, out);
    case CORDON_FMT_UNKNOWN:
        break;
    }
    return CORDON_EFORMAT;
}

int cordon_decode_image(const uint8_t *buf, size_t len,
                        const cordon_decode_opts_t *opts, cordon_image_t *out)
{
    cordon_decoder_t d;
    memset(&d, 0, sizeof d);
    int rc = cordon_decoder_decode(&d, buf, len, opts, out);
    if (d.tj)
        tjDestroy(d.tj);
    if (rc != CORDON_OK) {
        free(d.px);
        return rc;
    }
    /* The caller takes the decoder's buffer. */
    out->pixels = d.px;
    return CORDON_OK;
}
