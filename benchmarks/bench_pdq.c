/*
 * bench_pdq - how much PDQ costs on top of decoding, and what fast mode buys.
 *
 * Usage: bench_pdq [--json] [--reps N] [--no-sweep] FILE...|DIR...
 *
 * For every image, in one process and interleaved rep by rep so that a noisy
 * machine slows every variant alike, it measures the median over N reps
 * (after one warm-up rep) of:
 *   decode     the baseline: JPEG decoded directly with TurboJPEG exactly as
 *              the canonical path does (tjDecompress2 to RGB, or GRAY for
 *              greyscale JPEGs, flags 0 = ISLOW IDCT + fancy upsampling, a
 *              handle per image); other formats with cordon_decode_image();
 *   canonical  cordon_decode_image() + cordon_pdq_compute(), both parts
 *              timed separately (the pdq part includes its scratch malloc);
 *   scalar     the same with the SIMD paths switched off
 *              (cordon_cpu_set_features(0));
 *   all        cordon_hash_image(): PDQ + dihedral + MD5 + SHA-256;
 *   fast       decode with opts.fast = 1 at the library's default
 *              fast_min_side, then PDQ;
 *   .r         decode, canonical and fast again on the reuse path: one
 *              TurboJPEG handle and buffer, or one cordon_decoder_t and
 *              cordon_hasher_t, kept for the whole run as a server would;
 * and, for JPEG only, a sweep of scale rules: the library's fast mode at
 * fast_min_side 64/128/256/512; fixed IDCT scales 1/2, 1/4, 1/8 decoded
 * directly with TurboJPEG to RGB ("scale") and to the JPEG's own Y channel
 * ("gray"); and, as a drift-only experiment, the scaled pixels replicated
 * back to full size ("repl"). Drift is the Hamming distance of each hash
 * from the canonical one. The scalar, hash_image and reuse paths must give
 * the canonical hash exactly; any difference is flagged !MISMATCH.
 *
 * A table goes to stdout, or to stderr with --json, in which case stdout gets
 * JSON lines: one {"type":"image"} per image and one {"type":"summary"}.
 * Single-threaded; nothing is pinned. Targets are reported as PASS/MISS and
 * never change the exit status (0, or 2 for usage or I/O errors).
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <turbojpeg.h>

#include "cordon.h"

#define MAX_REPS 1001
#define PHOTO_MP 1.5 /* "photos >= 1.5 MP": JPEGs at least this large */

/* Targets the lead set; the benchmark only reports against them. */
#define TARGET_CANON_RATIO 1.25 /* canonical <= 1.25 x decode-only */
#define TARGET_FAST_SPEEDUP 5.0 /* fast >= 5 x canonical on photos */
#define TARGET_FAST_P95 6       /* with p95 drift <= 6 bits */

/* ---- variants ---------------------------------------------------------- */

typedef enum {
    K_DECODE,    /* baseline, decode only */
    K_CANON,     /* library decode + pdq */
    K_SCALAR,    /* K_CANON with SIMD off */
    K_ALL,       /* cordon_hash_image */
    K_DECODE_R,  /* K_DECODE reusing one handle/decoder and buffer */
    K_CANON_R,   /* cordon_decoder_decode + cordon_hasher_pdq, reused */
    K_FAST_R,    /* K_CANON_R with the default fast rule */
    K_RULE,      /* library fast mode with fast_min_side = param */
    K_TJ_SCALED, /* TurboJPEG at 1/param + pdq */
    K_TJ_GRAY,   /* TurboJPEG at 1/param straight to luma (Y) + pdq */
    K_TJ_REPL,   /* TurboJPEG at 1/param, blown back up to full size by
                    pixel replication, + pdq: a drift experiment */
} kind_t;

typedef struct {
    kind_t kind;
    int param;
    int jpeg_only;
    int drift_only; /* hashed once, not timed */
    char name[24];
} variant_t;

#define MAX_VARIANTS 32
static variant_t variants[MAX_VARIANTS];
static int n_variants;
static int v_decode, v_canon, v_scalar, v_all, v_fast; /* indexes */
static int v_decode_r, v_canon_r, v_fast_r;
static int first_sweep; /* rules and scales */

static int add_variant(kind_t k, int param, int jpeg_only, const char *fmt, ...)
{
    if (n_variants == MAX_VARIANTS) {
        fprintf(stderr, "bench_pdq: raise MAX_VARIANTS\n");
        exit(2);
    }
    variant_t *v = &variants[n_variants];
    v->kind = k;
    v->param = param;
    v->jpeg_only = jpeg_only;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->name, sizeof v->name, fmt, ap);
    va_end(ap);
    return n_variants++;
}

/* Adds the variants; the sweep of fast-mode rules and scale experiments
 * (JPEG only) unless no_sweep. */
static void setup_variants(int no_sweep)
{
    static const int rules[] = {64, 128, 256, 512};
    static const int denoms[] = {2, 4, 8};
    v_decode = add_variant(K_DECODE, 0, 0, "decode");
    v_canon = add_variant(K_CANON, 0, 0, "canonical");
    v_scalar = add_variant(K_SCALAR, 0, 0, "scalar");
    v_all = add_variant(K_ALL, 0, 0, "all");
    v_decode_r = add_variant(K_DECODE_R, 0, 0, "decode.r");
    v_canon_r = add_variant(K_CANON_R, 0, 0, "canonical.r");
    v_fast_r = add_variant(K_FAST_R, 0, 0, "fast.r");
    /* The default rule is measured for every image (it is what "fast" means
     * to a user); the others only for JPEG, the only format it changes. */
    v_fast = add_variant(K_RULE, CORDON_DEFAULT_FAST_MIN_SIDE, 0, "min_side=%d",
                         CORDON_DEFAULT_FAST_MIN_SIDE);
    first_sweep = v_fast;
    if (no_sweep)
        return;
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
        if (rules[i] != CORDON_DEFAULT_FAST_MIN_SIDE)
            add_variant(K_RULE, rules[i], 1, "min_side=%d", rules[i]);
    for (size_t i = 0; i < sizeof denoms / sizeof denoms[0]; i++)
        add_variant(K_TJ_SCALED, denoms[i], 1, "scale=1/%d", denoms[i]);
    /* Not a library option (yet): asking TurboJPEG for GRAY output from a
     * colour JPEG returns the stored Y channel, which skips chroma IDCT,
     * upsampling and colour conversion. It shows what fast mode could gain
     * beyond scaling, and at what drift (the JPEG's Y is not PDQ's luma). */
    for (size_t i = 0; i < sizeof denoms / sizeof denoms[0]; i++)
        add_variant(K_TJ_GRAY, denoms[i], 1, "gray=1/%d", denoms[i]);
    /* Hashing the scaled pixels replicated back to full size makes PDQ use
     * the full-resolution box window. If these drift far less than scale=1/N,
     * the drift of fast mode comes from the window being computed from the
     * scaled size (and a scale-aware window would fix it), not from the
     * detail the scaled IDCT throws away. Speed is meaningless here. */
    for (size_t i = 0; i < sizeof denoms / sizeof denoms[0]; i++)
        variants[add_variant(K_TJ_REPL, denoms[i], 1, "repl=1/%d", denoms[i])]
            .drift_only = 1;
}

/* ---- one measurement --------------------------------------------------- */

typedef struct {
    double total, dec, pdq; /* ms */
    cordon_hash256_t hash;
    int quality;
    int w, h; /* pixels actually hashed */
} meas_t;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* PDQ of a decoded image as the library hashes it: a fast-mode decode is
 * hashed with the full-size geometry (cordon_image_pdq_opts). */
static int pdq_plane(const cordon_plane_t *p, const cordon_pdq_opts_t *po,
                     meas_t *m)
{
    size_t need = cordon_pdq_scratch_size_ex(p->width, p->height, po);
    void *scratch = malloc(need ? need : 1);
    if (!scratch)
        return CORDON_ENOMEM;
    cordon_pdq_result_t res;
    int rc = cordon_pdq_compute_ex(p, po, scratch, need, &res);
    free(scratch);
    if (rc == CORDON_OK) {
        m->hash = res.hash;
        m->quality = res.quality;
        m->w = p->width;
        m->h = p->height;
    }
    return rc;
}

/* Nearest-neighbour enlargement of a 1/denom decode back to w x h: pixel
 * (x, y) takes scaled pixel (x / denom, y / denom), so that each scaled
 * pixel covers exactly the source block it came from. Returns NULL if out
 * of memory; the caller frees. */
static unsigned char *replicate(const unsigned char *px, int sw, int sh,
                                size_t stride, int ps, int w, int h, int denom)
{
    size_t ostride = (size_t)w * (size_t)ps;
    unsigned char *out = malloc(ostride * (size_t)h);
    if (!out)
        return NULL;
    for (int y = 0; y < h; y++) {
        int sy = y / denom < sh ? y / denom : sh - 1;
        const unsigned char *srow = px + (size_t)sy * stride;
        unsigned char *d = out + (size_t)y * ostride;
        for (int x = 0; x < w; x++) {
            int sx = x / denom < sw ? x / denom : sw - 1;
            memcpy(d + (size_t)x * ps, srow + (size_t)sx * ps, (size_t)ps);
        }
    }
    return out;
}

/* TurboJPEG directly, at scale 1/denom, to RGB (GRAY for greyscale JPEGs,
 * or always if gray); hashes only if want_pdq, after enlarging back to full
 * size if repl. Returns 0 or -1 with a message in err. */
static int run_tj(const uint8_t *buf, size_t len, int denom, int gray, int repl,
                  int want_pdq, meas_t *m, char *err, size_t errlen)
{
    int rc = -1;
    unsigned char *px = NULL, *big = NULL;
    double t0 = now_ms();
    tjhandle tj = tjInitDecompress();
    if (!tj) {
        snprintf(err, errlen, "tjInitDecompress failed");
        return -1;
    }
    int w, h, subsamp, cs;
    if (tjDecompressHeader3(tj, buf, (unsigned long)len, &w, &h, &subsamp,
                            &cs) != 0) {
        snprintf(err, errlen, "header: %s", tjGetErrorStr2(tj));
        goto fail;
    }
    if (cs == TJCS_CMYK || cs == TJCS_YCCK) {
        snprintf(err, errlen, "CMYK JPEG: no baseline");
        goto fail;
    }
    tjscalingfactor sf = {1, denom};
    int sw = TJSCALED(w, sf), sh = TJSCALED(h, sf);
    int pf = gray || cs == TJCS_GRAY ? TJPF_GRAY : TJPF_RGB;
    size_t stride = (size_t)sw * (size_t)tjPixelSize[pf];
    px = malloc(stride * (size_t)sh);
    if (!px) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (tjDecompress2(tj, buf, (unsigned long)len, px, sw, (int)stride, sh, pf,
                      0) != 0 &&
        tjGetErrorCode(tj) == TJERR_FATAL) {
        snprintf(err, errlen, "decode: %s", tjGetErrorStr2(tj));
        goto fail;
    }
    double t1 = now_ms();
    m->dec = t1 - t0;
    m->pdq = 0;
    m->w = sw;
    m->h = sh;
    if (want_pdq) {
        cordon_plane_t p = {px, sw, sh, stride,
                            pf == TJPF_GRAY ? CORDON_PIX_GRAY8
                                            : CORDON_PIX_RGB8};
        if (repl) {
            big = replicate(px, sw, sh, stride, tjPixelSize[pf], w, h, denom);
            if (!big) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            p.data = big;
            p.width = w;
            p.height = h;
            p.stride = (size_t)w * (size_t)tjPixelSize[pf];
        }
        int prc = pdq_plane(&p, NULL, m);
        if (prc != CORDON_OK) {
            snprintf(err, errlen, "pdq: %s", cordon_strerror(prc));
            goto fail;
        }
        m->pdq = now_ms() - t1;
        /* The scaled size, for the table's scale column. */
        m->w = sw;
        m->h = sh;
    }
    m->total = now_ms() - t0;
    rc = 0;
fail:
    free(big);
    free(px);
    tjDestroy(tj);
    return rc;
}

/* The library's decoder, then PDQ unless decode_only. */
static int run_lib(const uint8_t *buf, size_t len,
                   const cordon_decode_opts_t *o, int decode_only, meas_t *m,
                   char *err, size_t errlen)
{
    cordon_image_t img;
    double t0 = now_ms();
    int rc = cordon_decode_image(buf, len, o, &img);
    if (rc != CORDON_OK) {
        snprintf(err, errlen, "decode: %s", cordon_strerror(rc));
        return -1;
    }
    double t1 = now_ms();
    m->dec = t1 - t0;
    m->pdq = 0;
    m->w = img.width;
    m->h = img.height;
    if (!decode_only) {
        cordon_plane_t p = cordon_image_plane(&img);
        cordon_pdq_opts_t po;
        cordon_image_pdq_opts(&img, &po);
        rc = pdq_plane(&p, &po, m);
        if (rc != CORDON_OK) {
            cordon_image_free(&img);
            snprintf(err, errlen, "pdq: %s", cordon_strerror(rc));
            return -1;
        }
        m->pdq = now_ms() - t1;
    }
    cordon_image_free(&img);
    m->total = now_ms() - t0;
    return 0;
}

static unsigned full_features;

/* State kept across calls for the reuse (".r") variants, as a server that
 * hashes many images keeps it: large buffers are then not freshly mapped
 * and page-faulted on every image. Each variant has its own, so that one
 * variant's buffer sizes never favour another. */
static struct {
    tjhandle tj;
    unsigned char *buf;
    size_t cap;
    cordon_decoder_t *dec_base, *dec_canon, *dec_fast;
    cordon_hasher_t *h_canon, *h_fast;
} reuse;

static int reuse_init(void)
{
    if (!(reuse.tj = tjInitDecompress()))
        return -1;
    if (cordon_decoder_create(&reuse.dec_base) != CORDON_OK ||
        cordon_decoder_create(&reuse.dec_canon) != CORDON_OK ||
        cordon_decoder_create(&reuse.dec_fast) != CORDON_OK ||
        cordon_hasher_create(&reuse.h_canon) != CORDON_OK ||
        cordon_hasher_create(&reuse.h_fast) != CORDON_OK)
        return -1;
    return 0;
}

static void reuse_free(void)
{
    if (reuse.tj)
        tjDestroy(reuse.tj);
    free(reuse.buf);
    cordon_decoder_free(reuse.dec_base);
    cordon_decoder_free(reuse.dec_canon);
    cordon_decoder_free(reuse.dec_fast);
    cordon_hasher_free(reuse.h_canon);
    cordon_hasher_free(reuse.h_fast);
    memset(&reuse, 0, sizeof reuse);
}

/* The TurboJPEG baseline with the handle and buffer kept. */
static int run_tj_reuse(const uint8_t *buf, size_t len, meas_t *m, char *err,
                        size_t errlen)
{
    double t0 = now_ms();
    int w, h, subsamp, cs;
    if (tjDecompressHeader3(reuse.tj, buf, (unsigned long)len, &w, &h, &subsamp,
                            &cs) != 0) {
        snprintf(err, errlen, "header: %s", tjGetErrorStr2(reuse.tj));
        return -1;
    }
    if (cs == TJCS_CMYK || cs == TJCS_YCCK) {
        snprintf(err, errlen, "CMYK JPEG: no baseline");
        return -1;
    }
    int pf = cs == TJCS_GRAY ? TJPF_GRAY : TJPF_RGB;
    size_t stride = (size_t)w * (size_t)tjPixelSize[pf];
    if (stride * (size_t)h > reuse.cap) {
        free(reuse.buf);
        reuse.cap = 0;
        if (!(reuse.buf = malloc(stride * (size_t)h))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        reuse.cap = stride * (size_t)h;
    }
    if (tjDecompress2(reuse.tj, buf, (unsigned long)len, reuse.buf, w,
                      (int)stride, h, pf, 0) != 0 &&
        tjGetErrorCode(reuse.tj) == TJERR_FATAL) {
        snprintf(err, errlen, "decode: %s", tjGetErrorStr2(reuse.tj));
        return -1;
    }
    m->total = m->dec = now_ms() - t0;
    m->w = w;
    m->h = h;
    return 0;
}

/* A kept decoder, then PDQ with a kept hasher unless h is NULL. */
static int run_reuse(cordon_decoder_t *d, cordon_hasher_t *h,
                     const uint8_t *buf, size_t len,
                     const cordon_decode_opts_t *o, meas_t *m, char *err,
                     size_t errlen)
{
    cordon_image_t img;
    double t0 = now_ms();
    int rc = cordon_decoder_decode(d, buf, len, o, &img);
    if (rc != CORDON_OK) {
        snprintf(err, errlen, "decode: %s", cordon_strerror(rc));
        return -1;
    }
    double t1 = now_ms();
    m->dec = t1 - t0;
    m->w = img.width;
    m->h = img.height;
    if (h) {
        cordon_plane_t p = cordon_image_plane(&img);
        cordon_pdq_opts_t po;
        cordon_image_pdq_opts(&img, &po);
        cordon_pdq_result_t res;
        if ((rc = cordon_hasher_pdq_ex(h, &p, &po, &res)) != CORDON_OK) {
            snprintf(err, errlen, "pdq: %s", cordon_strerror(rc));
            return -1;
        }
        m->pdq = now_ms() - t1;
        m->hash = res.hash;
        m->quality = res.quality;
    }
    m->total = now_ms() - t0;
    return 0;
}

static int run_variant(const variant_t *v, const uint8_t *buf, size_t len,
                       int is_jpeg, meas_t *m, char *err, size_t errlen)
{
    cordon_decode_opts_t o;
    cordon_decode_opts_default(&o);
    memset(m, 0, sizeof *m);
    switch (v->kind) {
    case K_DECODE:
        if (is_jpeg)
            return run_tj(buf, len, 1, 0, 0, 0, m, err, errlen);
        return run_lib(buf, len, &o, 1, m, err, errlen);
    case K_CANON:
        return run_lib(buf, len, &o, 0, m, err, errlen);
    case K_DECODE_R:
        if (is_jpeg)
            return run_tj_reuse(buf, len, m, err, errlen);
        return run_reuse(reuse.dec_base, NULL, buf, len, &o, m, err, errlen);
    case K_CANON_R:
        return run_reuse(reuse.dec_canon, reuse.h_canon, buf, len, &o, m, err,
                         errlen);
    case K_FAST_R:
        o.fast = 1;
        return run_reuse(reuse.dec_fast, reuse.h_fast, buf, len, &o, m, err,
                         errlen);
    case K_SCALAR: {
        cordon_cpu_set_features(0);
        int rc = run_lib(buf, len, &o, 0, m, err, errlen);
        cordon_cpu_set_features(full_features);
        return rc;
    }
    case K_ALL: {
        cordon_image_hashes_t h;
        double t0 = now_ms();
        int rc = cordon_hash_image(buf, len, &o, &h);
        m->total = now_ms() - t0;
        if (rc != CORDON_OK) {
            snprintf(err, errlen, "hash_image: %s", cordon_strerror(rc));
            return -1;
        }
        m->hash = h.pdq;
        m->quality = h.quality;
        m->w = h.width;
        m->h = h.height;
        return 0;
    }
    case K_RULE:
        o.fast = 1;
        o.fast_min_side = v->param;
        return run_lib(buf, len, &o, 0, m, err, errlen);
    case K_TJ_SCALED:
        return run_tj(buf, len, v->param, 0, 0, 1, m, err, errlen);
    case K_TJ_GRAY:
        return run_tj(buf, len, v->param, 1, 0, 1, m, err, errlen);
    case K_TJ_REPL:
        return run_tj(buf, len, v->param, 0, 1, 1, m, err, errlen);
    }
    return -1;
}

/* ---- statistics --------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v in place. Median averages the middle pair; p95 is nearest-rank. */
static double median(double *v, int n)
{
    if (n <= 0)
        return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double pct(double *v, int n, double p)
{
    if (n <= 0)
        return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int k = (int)ceil(p / 100.0 * n) - 1;
    return v[k < 0 ? 0 : k >= n ? n - 1 : k];
}

/* ---- per-image results -------------------------------------------------- */

typedef struct {
    int ok; /* measured without error */
    double total, dec, pdq;
    meas_t last;  /* hash, quality and size of the last rep */
    int drift;    /* Hamming distance from the canonical hash */
    int unstable; /* a rep gave a different hash */
} vres_t;

typedef struct {
    char *path;
    const char *name; /* base name, inside path */
    cordon_format_t fmt;
    int progressive;   /* a progressive JPEG */
    int width, height; /* as stored */
    double mp;
    size_t bytes;
    int ok;
    char err[160];
    vres_t v[MAX_VARIANTS];
} image_t;

static int is_photo(const image_t *im)
{
    return im->fmt == CORDON_FMT_JPEG && im->mp >= PHOTO_MP;
}

static int read_file(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    uint8_t *buf = NULL;
    if (fseek(f, 0, SEEK_END) != 0)
        goto fail;
    long n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto fail;
    buf = malloc(n ? (size_t)n : 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
        goto fail;
    fclose(f);
    *out = buf;
    *len = (size_t)n;
    return 0;
fail:
    free(buf);
    fclose(f);
    return -1;
}

/* Whether the first frame header of a JPEG is progressive (SOF2, SOF6,
 * SOF10, SOF14). Progressive files decode much slower and gain less from
 * DCT scaling, since every scan must still be entropy-decoded. */
static int jpeg_is_progressive(const uint8_t *b, size_t len)
{
    size_t i = 2;
    while (i + 4 <= len) {
        if (b[i] != 0xFF) {
            i++;
            continue;
        }
        uint8_t m = b[i + 1];
        if (m == 0xFF || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) {
            i += m == 0xFF ? 1 : 2;
            continue;
        }
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC)
            return m == 0xC2 || m == 0xC6 || m == 0xCA || m == 0xCE;
        if (m == 0xD9 || m == 0xDA)
            return 0;
        i += 2 + (((size_t)b[i + 2] << 8) | b[i + 3]);
    }
    return 0;
}

static void measure_image(image_t *im, int reps)
{
    uint8_t *buf;
    size_t len;
    if (read_file(im->path, &buf, &len) != 0) {
        snprintf(im->err, sizeof im->err, "read: %s", strerror(errno));
        return;
    }
    im->bytes = len;
    im->fmt = cordon_sniff_image(buf, len);
    int is_jpeg = im->fmt == CORDON_FMT_JPEG;
    im->progressive = is_jpeg && jpeg_is_progressive(buf, len);
    double *t = malloc(sizeof(double) * 3 * (size_t)reps * n_variants);
    if (!t) {
        snprintf(im->err, sizeof im->err, "out of memory");
        free(buf);
        return;
    }
    int active[MAX_VARIANTS];
    for (int i = 0; i < n_variants; i++)
        active[i] = !variants[i].jpeg_only || is_jpeg;

    /* Rep 0 warms caches and the allocator and is not counted. Reps are
     * interleaved across variants so that a burst of load from elsewhere on
     * the machine hits every variant of this image alike. */
    for (int r = 0; r <= reps; r++) {
        for (int i = 0; i < n_variants; i++) {
            if (!active[i] || (r > 0 && variants[i].drift_only))
                continue;
            meas_t m;
            char err[128];
            if (run_variant(&variants[i], buf, len, is_jpeg, &m, err,
                            sizeof err) != 0) {
                /* The baseline or canonical failing sinks the image; a
                 * sweep variant failing only drops that variant. */
                if (i == v_decode || i == v_canon) {
                    snprintf(im->err, sizeof im->err, "%s: %s",
                             variants[i].name, err);
                    goto done;
                }
                active[i] = 0;
                im->v[i].ok = 0;
                continue;
            }
            vres_t *vr = &im->v[i];
            if (r == 0) {
                vr->ok = 1;
                vr->last = m;
                continue;
            }
            if (memcmp(&m.hash, &vr->last.hash, sizeof m.hash) != 0)
                vr->unstable = 1;
            vr->last = m;
            double *s = t + 3 * (size_t)reps * i;
            s[r - 1] = m.total;
            s[reps + r - 1] = m.dec;
            s[2 * reps + r - 1] = m.pdq;
        }
    }
    for (int i = 0; i < n_variants; i++) {
        vres_t *vr = &im->v[i];
        if (!active[i]) {
            vr->ok = 0;
            continue;
        }
        if (variants[i].drift_only) {
            vr->total = vr->dec = vr->pdq = NAN;
            continue;
        }
        double *s = t + 3 * (size_t)reps * i;
        vr->total = median(s, reps);
        vr->dec = median(s + reps, reps);
        vr->pdq = median(s + 2 * reps, reps);
    }
    const cordon_hash256_t *canon = &im->v[v_canon].last.hash;
    for (int i = 0; i < n_variants; i++)
        if (im->v[i].ok && i != v_decode && i != v_decode_r)
            im->v[i].drift = cordon_hash_distance(canon, &im->v[i].last.hash);
    im->width = im->v[v_canon].last.w;
    im->height = im->v[v_canon].last.h;
    im->mp = (double)im->width * im->height / 1e6;
    im->ok = 1;
done:
    free(t);
    free(buf);
}

/* ---- input files -------------------------------------------------------- */

typedef struct {
    char **v;
    size_t n, cap;
} strvec_t;

static int push(strvec_t *sv, const char *s)
{
    if (sv->n == sv->cap) {
        size_t cap = sv->cap ? sv->cap * 2 : 64;
        char **nv = realloc(sv->v, cap * sizeof *nv);
        if (!nv)
            return -1;
        sv->v = nv;
        sv->cap = cap;
    }
    if (!(sv->v[sv->n] = strdup(s)))
        return -1;
    sv->n++;
    return 0;
}

static void free_strvec(strvec_t *sv)
{
    for (size_t i = 0; i < sv->n; i++)
        free(sv->v[i]);
    free(sv->v);
    memset(sv, 0, sizeof *sv);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds FILE, or every regular file directly inside DIR in name order. */
static int add_path(strvec_t *sv, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "bench_pdq: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return push(sv, path);
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "bench_pdq: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t first = sv->n;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *p;
        if (asprintf(&p, "%s/%s", path, e->d_name) < 0) {
            closedir(d);
            return -1;
        }
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && push(sv, p) != 0) {
            free(p);
            closedir(d);
            return -1;
        }
        free(p);
    }
    closedir(d);
    qsort(sv->v + first, sv->n - first, sizeof *sv->v, cmp_str);
    return 0;
}

/* ---- output ------------------------------------------------------------- */

static FILE *tab; /* the human table: stdout, or stderr with --json */
static int json;

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

/* JSON has no NaN: absent values are null. */
static void json_num(const char *key, double v, int comma)
{
    if (isnan(v) || isinf(v))
        printf("\"%s\":null%s", key, comma ? "," : "");
    else
        printf("\"%s\":%.4g%s", key, v, comma ? "," : "");
}

static const char *short_name(const char *s, char *buf, size_t n)
{
    size_t len = strlen(s);
    if (len < n)
        return s;
    snprintf(buf, n, "..%s", s + len - (n - 3));
    return buf;
}

static void scale_str(const image_t *im, const vres_t *vr, char *buf, size_t n)
{
    if (!vr->ok || vr->last.w <= 0) {
        snprintf(buf, n, "-");
        return;
    }
    int den = (int)lround((double)im->width / vr->last.w);
    if (den <= 1)
        snprintf(buf, n, "1/1");
    else
        snprintf(buf, n, "1/%d", den);
}

/* printf of a double, or "-" when there is no value. */
static const char *fmtd(char *buf, size_t n, const char *fmt, double v)
{
    if (isnan(v) || isinf(v))
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, fmt, v);
    return buf;
}
#define FD(fmt, v) fmtd((char[32]){0}, 32, fmt, v)

/* Paths that must give the canonical hash bit for bit. */
static int hash_mismatch(const image_t *im)
{
    const int must_match[] = {v_scalar, v_all, v_canon_r};
    for (size_t k = 0; k < sizeof must_match / sizeof must_match[0]; k++) {
        const vres_t *v = &im->v[must_match[k]];
        if (v->ok && v->drift)
            return 1;
    }
    return 0;
}

static void print_table_header(void)
{
    fprintf(tab,
            "%-30s %-4s %9s %5s | %7s %7s %7s %6s %5s | %7s %7s %5s | %6s "
            "%4s | %7s | %6s %6s %4s %5s %5s | %3s\n",
            "image", "fmt", "WxH", "MP", "dec", "canon", "c.dec", "pdq",
            "ratio", "dec.r", "canon.r", "rat.r", "s.pdq", "simd", "all",
            "fast", "fast.r", "scl", "x", "drift", "Q");
}

static void print_row(const image_t *im)
{
    char nb[31];
    const char *name = short_name(im->name, nb, sizeof nb);
    if (!im->ok) {
        fprintf(tab, "%-30s skipped: %s\n", name, im->err);
        return;
    }
    const vres_t *d = &im->v[v_decode], *c = &im->v[v_canon],
                 *s = &im->v[v_scalar], *a = &im->v[v_all], *f = &im->v[v_fast],
                 *dr = &im->v[v_decode_r], *cr = &im->v[v_canon_r],
                 *fr = &im->v[v_fast_r];
    char wh[24], sc[16];
    snprintf(wh, sizeof wh, "%dx%d", im->width, im->height);
    scale_str(im, f, sc, sizeof sc);
    fprintf(tab,
            "%-30s %-4s %9s %5.2f | %7.2f %7.2f %7.2f %6.2f %5.2f | %7s %7s "
            "%5s | %6s %4s | %7s | %6.2f %6s %4s %5.1f %5d | %3d%s\n",
            name, im->progressive ? "pjpg" : cordon_format_name(im->fmt), wh,
            im->mp, d->total, c->total, c->dec, c->pdq, c->total / d->total,
            FD("%.2f", dr->ok ? dr->total : NAN),
            FD("%.2f", cr->ok ? cr->total : NAN),
            FD("%.2f", dr->ok && cr->ok ? cr->total / dr->total : NAN),
            FD("%.2f", s->ok ? s->pdq : NAN),
            FD("%.1f", s->ok ? s->pdq / c->pdq : NAN),
            FD("%.2f", a->ok ? a->total : NAN), f->total,
            FD("%.2f", fr->ok ? fr->total : NAN), sc, c->total / f->total,
            f->drift, c->last.quality,
            hash_mismatch(im) || c->unstable ? "  !MISMATCH" : "");
}

static void print_json_image(const image_t *im)
{
    printf("{\"type\":\"image\",\"file\":");
    json_str(im->name);
    printf(",\"path\":");
    json_str(im->path);
    if (!im->ok) {
        printf(",\"error\":");
        json_str(im->err);
        printf("}\n");
        return;
    }
    const vres_t *d = &im->v[v_decode], *c = &im->v[v_canon],
                 *s = &im->v[v_scalar], *a = &im->v[v_all], *f = &im->v[v_fast],
                 *dr = &im->v[v_decode_r], *cr = &im->v[v_canon_r],
                 *fr = &im->v[v_fast_r];
    char hex[CORDON_HASH_HEX_LEN + 1];
    cordon_hash_to_hex(&c->last.hash, hex);
    printf(",\"format\":\"%s\",\"progressive\":%s,\"width\":%d,"
           "\"height\":%d,\"bytes\":%zu,",
           cordon_format_name(im->fmt), im->progressive ? "true" : "false",
           im->width, im->height, im->bytes);
    json_num("mp", im->mp, 1);
    json_num("decode_ms", d->total, 1);
    json_num("canonical_ms", c->total, 1);
    json_num("canonical_decode_ms", c->dec, 1);
    json_num("canonical_pdq_ms", c->pdq, 1);
    json_num("ratio", c->total / d->total, 1);
    json_num("scalar_ms", s->ok ? s->total : NAN, 1);
    json_num("scalar_pdq_ms", s->ok ? s->pdq : NAN, 1);
    json_num("hash_image_ms", a->ok ? a->total : NAN, 1);
    json_num("decode_reuse_ms", dr->ok ? dr->total : NAN, 1);
    json_num("canonical_reuse_ms", cr->ok ? cr->total : NAN, 1);
    json_num("canonical_reuse_pdq_ms", cr->ok ? cr->pdq : NAN, 1);
    json_num("ratio_reuse", dr->ok && cr->ok ? cr->total / dr->total : NAN, 1);
    json_num("fast_reuse_ms", fr->ok ? fr->total : NAN, 1);
    json_num("fast_ms", f->total, 1);
    json_num("fast_pdq_ms", f->pdq, 1);
    json_num("fast_speedup", c->total / f->total, 1);
    json_num("images_per_s", 1e3 / c->total, 1);
    json_num("mp_per_s", im->mp * 1e3 / c->total, 1);
    json_num("fast_mp_per_s", im->mp * 1e3 / f->total, 1);
    printf("\"fast_width\":%d,\"fast_height\":%d,\"drift\":%d,"
           "\"quality\":%d,\"fast_quality\":%d,\"pdq\":\"%s\","
           "\"scalar_identical\":%s,\"hash_image_identical\":%s,"
           "\"reuse_identical\":%s,\"stable\":%s,\"sweep\":[",
           f->last.w, f->last.h, f->drift, c->last.quality, f->last.quality,
           hex, s->ok && !s->drift ? "true" : "false",
           a->ok && !a->drift ? "true" : "false",
           cr->ok && !cr->drift ? "true" : "false",
           c->unstable ? "false" : "true");
    int first = 1;
    for (int i = first_sweep; i < n_variants; i++) {
        const vres_t *v = &im->v[i];
        if (!v->ok)
            continue;
        printf("%s{\"rule\":\"%s\",\"width\":%d,\"height\":%d,",
               first ? "" : ",", variants[i].name, v->last.w, v->last.h);
        json_num("ms", v->total, 1);
        json_num("speedup", c->total / v->total, 1);
        printf("\"drift\":%d}", v->drift);
        first = 0;
    }
    printf("]}\n");
    fflush(stdout);
}

/* ---- summary ------------------------------------------------------------ */

typedef int (*filter_fn)(const image_t *);

static int f_all(const image_t *im)
{
    (void)im;
    return 1;
}
static int f_jpeg(const image_t *im)
{
    return im->fmt == CORDON_FMT_JPEG;
}
static int f_png(const image_t *im)
{
    return im->fmt == CORDON_FMT_PNG;
}
static int f_base_photo(const image_t *im)
{
    return is_photo(im) && !im->progressive;
}

/* Totals are sums of per-image medians (what a batch of these images costs);
 * the _med fields are medians of per-image ratios (what a typical image
 * sees, robust to one huge file). */
typedef struct {
    int n;
    double mp, dec, canon, pdq, all, fast;
    double scalar_pdq, simd_pdq; /* over images with a scalar run */
    double ratio_med, ratio_max, fast_x_med;
    double dec_r, canon_r, fast_r; /* the reuse path */
    double ratio_r_med, ratio_r_max, fast_r_x_med;
} group_t;

/* Median and max over the selected images of num/den variant totals. */
static void ratio_stats(const image_t *ims, size_t n, filter_fn keep, int num,
                        int den, double *tmp, double *med, double *max)
{
    int k = 0;
    *max = NAN;
    for (size_t i = 0; i < n; i++) {
        const image_t *im = &ims[i];
        if (!im->ok || !keep(im) || !im->v[num].ok || !im->v[den].ok)
            continue;
        double r = im->v[num].total / im->v[den].total;
        if (!(r <= *max))
            *max = r;
        tmp[k++] = r;
    }
    *med = median(tmp, k);
}

static group_t group_over(const image_t *ims, size_t n, filter_fn keep,
                          double *tmp)
{
    group_t g = {0};
    for (size_t i = 0; i < n; i++) {
        const image_t *im = &ims[i];
        if (!im->ok || !keep(im))
            continue;
        const vres_t *v = im->v;
        g.n++;
        g.mp += im->mp;
        g.dec += v[v_decode].total;
        g.canon += v[v_canon].total;
        g.pdq += v[v_canon].pdq;
        g.all += v[v_all].ok ? v[v_all].total : NAN;
        g.fast += v[v_fast].total;
        g.dec_r += v[v_decode_r].ok ? v[v_decode_r].total : NAN;
        g.canon_r += v[v_canon_r].ok ? v[v_canon_r].total : NAN;
        g.fast_r += v[v_fast_r].ok ? v[v_fast_r].total : NAN;
        if (v[v_scalar].ok) {
            g.scalar_pdq += v[v_scalar].pdq;
            g.simd_pdq += v[v_canon].pdq;
        }
    }
    double unused;
    ratio_stats(ims, n, keep, v_canon, v_decode, tmp, &g.ratio_med,
                &g.ratio_max);
    ratio_stats(ims, n, keep, v_canon, v_fast, tmp, &g.fast_x_med, &unused);
    ratio_stats(ims, n, keep, v_canon_r, v_decode_r, tmp, &g.ratio_r_med,
                &g.ratio_r_max);
    ratio_stats(ims, n, keep, v_canon_r, v_fast_r, tmp, &g.fast_r_x_med,
                &unused);
    return g;
}

typedef struct {
    int n;
    double med, p95, max;
} dist_t;

/* Drift of variant vi over the images that keep() selects. */
static dist_t drift_over(const image_t *ims, size_t n, int vi, filter_fn keep,
                         double *tmp)
{
    dist_t d = {0, NAN, NAN, NAN};
    for (size_t i = 0; i < n; i++)
        if (ims[i].ok && keep(&ims[i]) && ims[i].v[vi].ok)
            tmp[d.n++] = ims[i].v[vi].drift;
    if (d.n) {
        d.med = median(tmp, d.n);
        d.p95 = pct(tmp, d.n, 95);
        d.max = tmp[d.n - 1];
    }
    return d;
}

/* Speedup of variant vi over canonical on the images keep() selects: the
 * aggregate (sum of canonical / sum of variant) and the per-image median. */
static void speedup_over(const image_t *ims, size_t n, int vi, filter_fn keep,
                         double *tmp, double *agg, double *med)
{
    double sc = 0, sv = 0;
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        const image_t *im = &ims[i];
        if (!im->ok || !keep(im) || !im->v[vi].ok)
            continue;
        sc += im->v[v_canon].total;
        sv += im->v[vi].total;
        tmp[k++] = im->v[v_canon].total / im->v[vi].total;
    }
    *agg = k ? sc / sv : NAN;
    *med = median(tmp, k);
}

/* One fast-mode rule (or scale experiment) judged on the photos. */
typedef struct {
    dist_t dj, dp;             /* drift: all JPEGs, photos >= 1.5 MP */
    double agg, med, base_med; /* speedups on photos; baseline photos */
    int scales[4];             /* photos decoded at 1/1, 1/2, 1/4, 1/8 */
    int judged, pass;
} rule_t;

static rule_t rule_over(const image_t *ims, size_t n, int vi, double *tmp)
{
    rule_t r = {0};
    double agg;
    r.dj = drift_over(ims, n, vi, f_jpeg, tmp);
    r.dp = drift_over(ims, n, vi, is_photo, tmp);
    speedup_over(ims, n, vi, is_photo, tmp, &r.agg, &r.med);
    speedup_over(ims, n, vi, f_base_photo, tmp, &agg, &r.base_med);
    for (size_t i = 0; i < n; i++) {
        const vres_t *v = &ims[i].v[vi];
        if (!ims[i].ok || !is_photo(&ims[i]) || !v->ok || v->last.w <= 0)
            continue;
        int den = (int)lround((double)ims[i].width / v->last.w);
        r.scales[den >= 8 ? 3 : den >= 4 ? 2 : den >= 2 ? 1 : 0]++;
    }
    r.judged = r.dp.n > 0 && !variants[vi].drift_only;
    r.pass =
        r.judged && r.med >= TARGET_FAST_SPEEDUP && r.dp.p95 <= TARGET_FAST_P95;
    return r;
}

static const char *verdict(int ok)
{
    return ok ? "PASS" : "MISS";
}

static void print_group_reuse(const char *label, group_t g)
{
    if (!g.n)
        return;
    fprintf(tab,
            "  %-13s %3d %6.1f | %7.1f %6.1f %6.1f | %7.1f %6.1f %6.1f | "
            "%5.3f %5.3f %5s | %7.1f %6.1f %6.1f | %5.2f %5.2f\n",
            label, g.n, g.mp, g.dec_r, g.n * 1e3 / g.dec_r,
            g.mp * 1e3 / g.dec_r, g.canon_r, g.n * 1e3 / g.canon_r,
            g.mp * 1e3 / g.canon_r, g.canon_r / g.dec_r, g.ratio_r_med,
            FD("%.2f", g.ratio_r_max), g.fast_r, g.n * 1e3 / g.fast_r,
            g.mp * 1e3 / g.fast_r, g.canon_r / g.fast_r, g.fast_r_x_med);
}

static void print_group(const char *label, group_t g)
{
    if (!g.n)
        return;
    fprintf(tab,
            "  %-13s %3d %6.1f | %7.1f %6.1f %6.1f | %7.1f %6.1f %6.1f | "
            "%5.3f %5.3f %5s | %4.1f%% | %7.1f %6.1f %6.1f | %5.2f %5.2f\n",
            label, g.n, g.mp, g.dec, g.n * 1e3 / g.dec, g.mp * 1e3 / g.dec,
            g.canon, g.n * 1e3 / g.canon, g.mp * 1e3 / g.canon, g.canon / g.dec,
            g.ratio_med, FD("%.2f", g.ratio_max), 100 * g.pdq / g.canon, g.fast,
            g.n * 1e3 / g.fast, g.mp * 1e3 / g.fast, g.canon / g.fast,
            g.fast_x_med);
}

static void json_group(const char *key, group_t g, int comma)
{
    printf("\"%s\":{\"images\":%d,", key, g.n);
    json_num("mp", g.mp, 1);
    json_num("decode_ms", g.dec, 1);
    json_num("canonical_ms", g.canon, 1);
    json_num("canonical_pdq_ms", g.pdq, 1);
    json_num("hash_image_ms", g.all, 1);
    json_num("fast_ms", g.fast, 1);
    json_num("ratio", g.canon / g.dec, 1);
    json_num("ratio_median", g.ratio_med, 1);
    json_num("ratio_max", g.ratio_max, 1);
    json_num("fast_speedup", g.canon / g.fast, 1);
    json_num("fast_speedup_median", g.fast_x_med, 1);
    json_num("simd_pdq_speedup", g.scalar_pdq / g.simd_pdq, 1);
    json_num("decode_images_per_s", g.n * 1e3 / g.dec, 1);
    json_num("canonical_images_per_s", g.n * 1e3 / g.canon, 1);
    json_num("fast_images_per_s", g.n * 1e3 / g.fast, 1);
    json_num("decode_mp_per_s", g.mp * 1e3 / g.dec, 1);
    json_num("canonical_mp_per_s", g.mp * 1e3 / g.canon, 1);
    json_num("fast_mp_per_s", g.mp * 1e3 / g.fast, 1);
    json_num("decode_reuse_ms", g.dec_r, 1);
    json_num("canonical_reuse_ms", g.canon_r, 1);
    json_num("fast_reuse_ms", g.fast_r, 1);
    json_num("ratio_reuse", g.canon_r / g.dec_r, 1);
    json_num("ratio_reuse_median", g.ratio_r_med, 1);
    json_num("ratio_reuse_max", g.ratio_r_max, 1);
    json_num("fast_reuse_speedup", g.canon_r / g.fast_r, 1);
    json_num("fast_reuse_speedup_median", g.fast_r_x_med, 1);
    json_num("canonical_reuse_images_per_s", g.n * 1e3 / g.canon_r, 1);
    json_num("canonical_reuse_mp_per_s", g.mp * 1e3 / g.canon_r, 0);
    printf("}%s", comma ? "," : "");
}

static void json_dist(const char *key, dist_t d, int comma)
{
    printf("\"%s\":{\"images\":%d,", key, d.n);
    json_num("median", d.med, 1);
    json_num("p95", d.p95, 1);
    json_num("max", d.max, 0);
    printf("}%s", comma ? "," : "");
}

static void summarize(const image_t *ims, size_t n, int reps)
{
    double *tmp = malloc((n ? n : 1) * sizeof *tmp);
    rule_t *rules = calloc((size_t)n_variants, sizeof *rules);
    if (!tmp || !rules) {
        free(tmp);
        free(rules);
        return;
    }
    static const struct {
        const char *label, *key;
        filter_fn keep;
    } groups[] = {
        {"all", "all", f_all},
        {"jpeg", "jpeg", f_jpeg},
        {"png", "png", f_png},
        {"photo>=1.5MP", "photo", is_photo},
        {"baseline ph.", "baseline_photo", f_base_photo},
    };
    enum { G_ALL, G_JPEG, G_PNG, G_PHOTO, G_BASE, G_N };
    group_t g[G_N];
    for (int i = 0; i < G_N; i++)
        g[i] = group_over(ims, n, groups[i].keep, tmp);

    int failed = 0, mismatch = 0, unstable = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ims[i].ok) {
            failed++;
            continue;
        }
        mismatch += hash_mismatch(&ims[i]);
        for (int k = 0; k < n_variants; k++)
            unstable += ims[i].v[k].ok && ims[i].v[k].unstable;
    }

    fprintf(tab,
            "\nSummary: %d images measured, %d skipped; %d images whose"
            " scalar, hash_image or reuse hash differs from canonical "
            "(must be 0); %d unstable hashes\n",
            g[G_ALL].n, failed, mismatch, unstable);
    fprintf(tab,
            "  SIMD path %s: PDQ alone is %.2fx faster than scalar "
            "(all images, sums)\n",
            cordon_cpu_path_name(), g[G_ALL].scalar_pdq / g[G_ALL].simd_pdq);
    fprintf(tab,
            "  hash_image (PDQ + dihedral + MD5 + SHA-256): %.1f ms vs "
            "canonical PDQ %.1f ms (all images)\n",
            g[G_ALL].all, g[G_ALL].canon);
    fprintf(tab,
            "\n  %-13s %3s %6s | %-22s | %-22s | %-17s | %-5s | "
            "%-22s | %-11s\n",
            "group", "n", "MP", "decode-only", "canonical", "canonical/decode",
            "pdq", "fast (default rule)", "canon/fast");
    fprintf(tab,
            "  %-13s %3s %6s | %7s %6s %6s | %7s %6s %6s | %5s %5s %5s |"
            " %5s | %7s %6s %6s | %5s %5s\n",
            "", "", "", "ms", "img/s", "MP/s", "ms", "img/s", "MP/s", "agg",
            "med", "max", "share", "ms", "img/s", "MP/s", "agg", "med");
    for (int i = 0; i < G_N; i++)
        print_group(groups[i].label, g[i]);
    fprintf(tab,
            "\n  The reuse path: one TurboJPEG handle + buffer (decode.r), "
            "one cordon_decoder_t + cordon_hasher_t (canonical.r, "
            "fast.r) kept for the whole run\n");
    fprintf(tab, "  %-13s %3s %6s | %-22s | %-22s | %-17s | %-22s | %-11s\n",
            "group", "n", "MP", "decode-only.r", "canonical.r",
            "canonical/decode", "fast.r", "canon/fast");
    for (int i = 0; i < G_N; i++)
        print_group_reuse(groups[i].label, g[i]);

    fprintf(tab,
            "\nFast-mode rules and scale experiments (JPEG only; drift "
            "in bits from canonical; x = canonical/variant on photos "
            ">= 1.5 MP;\n"
            "target: median x >= %.0f and p95 drift <= %d on photos; "
            "'base' = baseline (non-progressive) photos only)\n",
            TARGET_FAST_SPEEDUP, TARGET_FAST_P95);
    fprintf(tab, "  %-13s | %-19s | %-14s | %-14s | %-20s | %s\n", "rule",
            "photos at 1/1,2,4,8", "drift all jpeg", "drift photos",
            "x agg   med  base", "target");
    for (int vi = first_sweep; vi < n_variants; vi++) {
        rule_t r = rules[vi] = rule_over(ims, n, vi, tmp);
        char used[40];
        snprintf(used, sizeof used, "%d %d %d %d", r.scales[0], r.scales[1],
                 r.scales[2], r.scales[3]);
        fprintf(tab,
                "  %-13s | %-19s | %4s %4s %4s | %4s %4s %4s | %6s %6s %6s "
                "| %s%s\n",
                variants[vi].name, used, FD("%.0f", r.dj.med),
                FD("%.0f", r.dj.p95), FD("%.0f", r.dj.max),
                FD("%.0f", r.dp.med), FD("%.0f", r.dp.p95),
                FD("%.0f", r.dp.max), FD("%.2f", r.agg), FD("%.2f", r.med),
                FD("%.2f", r.base_med), r.judged ? verdict(r.pass) : "n/a",
                vi == v_fast              ? "  (default)"
                : variants[vi].drift_only ? "  (drift only)"
                                          : "");
    }

    dist_t d_all = drift_over(ims, n, v_fast, f_all, tmp);
    const rule_t *rf = &rules[v_fast];
    int t_ratio = g[G_ALL].ratio_med <= TARGET_CANON_RATIO;
    int t_ratio_ph = g[G_PHOTO].n && g[G_PHOTO].ratio_med <= TARGET_CANON_RATIO;
    int t_ratio_r = g[G_ALL].ratio_r_med <= TARGET_CANON_RATIO;
    int t_ratio_ph_r =
        g[G_PHOTO].n && g[G_PHOTO].ratio_r_med <= TARGET_CANON_RATIO;
    int t_fast = rf->med >= TARGET_FAST_SPEEDUP;
    int t_fast_r = g[G_PHOTO].fast_r_x_med >= TARGET_FAST_SPEEDUP;
    int t_drift = rf->dp.n && rf->dp.p95 <= TARGET_FAST_P95;

    fprintf(tab, "\nTargets (judged on per-image medians; aggregates in "
                 "brackets)\n");
    fprintf(tab,
            "  canonical <= %.2fx decode-only, all images:      %5.3f "
            "(agg %5.3f)  %s\n",
            TARGET_CANON_RATIO, g[G_ALL].ratio_med,
            g[G_ALL].canon / g[G_ALL].dec, verdict(t_ratio));
    fprintf(tab,
            "    reuse path (canonical.r / decode.r):           %5.3f "
            "(agg %5.3f)  %s\n",
            g[G_ALL].ratio_r_med, g[G_ALL].canon_r / g[G_ALL].dec_r,
            verdict(t_ratio_r));
    if (g[G_PHOTO].n) {
        fprintf(tab,
                "  canonical <= %.2fx decode-only, photos>=1.5MP:   %5.3f "
                "(agg %5.3f)  %s\n",
                TARGET_CANON_RATIO, g[G_PHOTO].ratio_med,
                g[G_PHOTO].canon / g[G_PHOTO].dec, verdict(t_ratio_ph));
        fprintf(tab,
                "    reuse path:                                    %5.3f "
                "(agg %5.3f)  %s\n",
                g[G_PHOTO].ratio_r_med, g[G_PHOTO].canon_r / g[G_PHOTO].dec_r,
                verdict(t_ratio_ph_r));
        fprintf(tab,
                "  fast >= %.0fx canonical on photos>=1.5MP:         "
                "%5.2f (agg %5.2f)  %s\n",
                TARGET_FAST_SPEEDUP, rf->med, rf->agg, verdict(t_fast));
        fprintf(tab,
                "    reuse path (canonical.r / fast.r):             %5.2f "
                "(agg %5.2f)  %s\n",
                g[G_PHOTO].fast_r_x_med, g[G_PHOTO].canon_r / g[G_PHOTO].fast_r,
                verdict(t_fast_r));
        fprintf(tab,
                "  fast p95 drift <= %d bits on photos>=1.5MP:       "
                "%5.0f (median %.0f, max %.0f)  %s\n",
                TARGET_FAST_P95, rf->dp.p95, rf->dp.med, rf->dp.max,
                verdict(t_drift));
    }
    fprintf(tab,
            "  fast drift, all images (PNG is never scaled): median "
            "%.0f, p95 %.0f, max %.0f\n",
            d_all.med, d_all.p95, d_all.max);
    fprintf(tab, "  (scale: the reference library spends ~60 ms on a "
                 "1600x1004 JPEG, 23 ms decode + 32 ms box filter)\n");

    if (json) {
        printf("{\"type\":\"summary\",\"reps\":%d,\"simd_path\":\"%s\","
               "\"images\":%d,\"skipped\":%d,\"mismatches\":%d,"
               "\"unstable\":%d,\"fast_min_side\":%d,",
               reps, cordon_cpu_path_name(), g[G_ALL].n, failed, mismatch,
               unstable, CORDON_DEFAULT_FAST_MIN_SIDE);
        printf("\"groups\":{");
        for (int i = 0; i < G_N; i++)
            json_group(groups[i].key, g[i], i + 1 < G_N);
        printf("},\"fast_drift\":{");
        json_dist("all", d_all, 1);
        json_dist("jpeg", rf->dj, 1);
        json_dist("photo", rf->dp, 0);
        printf("},\"rules\":[");
        for (int vi = first_sweep; vi < n_variants; vi++) {
            const rule_t *r = &rules[vi];
            printf("%s{\"rule\":\"%s\",\"default\":%s,\"drift_only\":%s,",
                   vi > first_sweep ? "," : "", variants[vi].name,
                   vi == v_fast ? "true" : "false",
                   variants[vi].drift_only ? "true" : "false");
            printf("\"photo_scales\":[%d,%d,%d,%d],", r->scales[0],
                   r->scales[1], r->scales[2], r->scales[3]);
            json_dist("drift_jpeg", r->dj, 1);
            json_dist("drift_photo", r->dp, 1);
            json_num("photo_speedup", r->agg, 1);
            json_num("photo_speedup_median", r->med, 1);
            json_num("baseline_photo_speedup_median", r->base_med, 1);
            printf("\"target\":\"%s\"}", r->judged ? verdict(r->pass) : "n/a");
        }
        printf("],\"targets\":{\"canonical_ratio\":\"%s\","
               "\"photo_canonical_ratio\":\"%s\","
               "\"canonical_ratio_reuse\":\"%s\","
               "\"photo_canonical_ratio_reuse\":\"%s\","
               "\"fast_speedup\":\"%s\",\"fast_speedup_reuse\":\"%s\","
               "\"fast_drift\":\"%s\"}}\n",
               verdict(t_ratio), verdict(t_ratio_ph), verdict(t_ratio_r),
               verdict(t_ratio_ph_r), verdict(t_fast), verdict(t_fast_r),
               verdict(t_drift));
    }
    free(rules);
    free(tmp);
}

/* ---- main --------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_pdq [--json] [--reps N] [--no-sweep] "
               "FILE...|DIR...\n"
               "  Times JPEG decode (TurboJPEG baseline), canonical PDQ, "
               "scalar PDQ,\n  cordon_hash_image, the reusable decoder/hasher "
               "path and fast-mode rules\n  per image; medians of N reps "
               "(default 5) after a warm-up.\n  --json: JSON lines on stdout, "
               "the table on stderr.\n  --no-sweep: only the default fast "
               "rule, no scale experiments.\n");
}

int main(int argc, char **argv)
{
    int reps = 5, no_sweep = 0;
    strvec_t files = {0};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "--no-sweep") == 0) {
            no_sweep = 1;
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > MAX_REPS) {
                fprintf(stderr, "bench_pdq: --reps wants 1..%d\n", MAX_REPS);
                return 2;
            }
            reps = (int)v;
        } else if (strcmp(argv[i], "-h") == 0 ||
                   strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            usage(stderr);
            return 2;
        } else if (add_path(&files, argv[i]) != 0) {
            free_strvec(&files);
            return 2;
        }
    }
    if (!files.n) {
        usage(stderr);
        return 2;
    }
    tab = json ? stderr : stdout;
    full_features = cordon_cpu_features();
    setup_variants(no_sweep);
    if (reuse_init() != 0) {
        fprintf(stderr, "bench_pdq: cannot create decoders\n");
        return 2;
    }

    image_t *ims = calloc(files.n, sizeof *ims);
    if (!ims)
        return 2;
    fprintf(tab,
            "bench_pdq: %zu files, %d reps + 1 warm-up, SIMD path %s, "
            "fast_min_side default %d\n",
            files.n, reps, cordon_cpu_path_name(),
            CORDON_DEFAULT_FAST_MIN_SIDE);
    fprintf(
        tab,
        "times in ms; dec = decode-only baseline; c.dec and pdq = "
        "the parts of canon; ratio = canon/dec;\ns.pdq = pdq part with SIMD "
        "off; simd = s.pdq/pdq; all = cordon_hash_image;\n"
        "fast at the default rule, scl = IDCT scale used, x = "
        "canon/fast, drift = bits from canonical, Q = quality\n\n");
    print_table_header();
    for (size_t i = 0; i < files.n; i++) {
        image_t *im = &ims[i];
        im->path = files.v[i];
        const char *slash = strrchr(im->path, '/');
        im->name = slash ? slash + 1 : im->path;
        measure_image(im, reps);
        print_row(im);
        fflush(tab);
        if (json)
            print_json_image(im);
    }
    summarize(ims, files.n, reps);
    reuse_free();
    free_strvec(&files);
    free(ims);
    return 0;
}
