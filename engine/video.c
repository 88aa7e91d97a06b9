/*
 * video.c - vPDQ hashing: FFmpeg demux and decode, frame sampling, luma
 * extraction and PDQ per sampled frame.
 *
 * Frame numbering with skipped frames. The reference numbers the frames a
 * full decode outputs. When we tell the H.264 decoder to drop unsampled
 * non-reference frames, those frames never come out, so we cannot simply
 * count outputs. Instead every demuxed packet's presentation time is kept
 * in a small pending set until the frame it produced (or did not produce)
 * is accounted for: when a frame with time P comes out, every pending
 * packet with an earlier time either was sent with skipping allowed (had
 * it been decoded it would have come out just before P, so it takes the
 * next number) or was sent normally and produced nothing (a full decode
 * would not have output it either, so it takes none). This is exact when
 * each packet is one frame, times are unique and frames come out in time
 * order. Any sign to the contrary (missing or repeated times, out-of-order
 * output, a sampled frame lost) abandons skipping, and if anything was
 * skipped already the input is decoded again in full.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/mem.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include "cordon_cpu.h"
#include "cordon_decode.h"
#include "cordon_error.h"
#include "cordon_video.h"
#include "video_internal.h"

#define AVIO_BUF_SIZE 65536
#define MAX_THREADS 16
/* Frames decoded in full before skipping starts, to see that the stream
 * behaves (one frame per packet, times in order). */
#define TRACK_WARMUP 8
/* More packets in flight than this means the decoder is not emitting
 * frames as the model assumes. */
#define MAX_PENDING 1024
#define RESTART 1 /* internal: decode again without skipping */

/* ---- Input ------------------------------------------------------------- */

/* Where the bytes come from: a file (read with stdio, so that only the file
 * protocol is ever involved) or a caller's buffer. */
typedef struct {
    FILE *fp;
    int64_t fsize;
    const uint8_t *buf;
    size_t len;
    size_t pos;
    int denied; /* a demuxer asked to open another file or URL */
} src_t;

static int src_read(void *opaque, uint8_t *dst, int n)
{
    src_t *s = opaque;
    if (s->fp) {
        size_t k = fread(dst, 1, (size_t)n, s->fp);
        if (k == 0)
            return ferror(s->fp) ? AVERROR(EIO) : AVERROR_EOF;
        return (int)k;
    }
    size_t left = s->len - s->pos;
    if (left == 0)
        return AVERROR_EOF;
    size_t k = (size_t)n < left ? (size_t)n : left;
    memcpy(dst, s->buf + s->pos, k);
    s->pos += k;
    return (int)k;
}

static int64_t src_seek(void *opaque, int64_t off, int whence)
{
    src_t *s = opaque;
    int64_t size = s->fp ? s->fsize : (int64_t)s->len;
    int64_t base;
    switch (whence & ~AVSEEK_FORCE) {
    case AVSEEK_SIZE:
        return size;
    case SEEK_SET:
        base = 0;
        break;
    case SEEK_CUR:
        base = s->fp ? (int64_t)ftello(s->fp) : (int64_t)s->pos;
        break;
    case SEEK_END:
        base = size;
        break;
    default:
        return AVERROR(EINVAL);
    }
    if (base < 0 || off < -base || off > size - base)
        return AVERROR(EINVAL);
    if (s->fp) {
        if (fseeko(s->fp, (off_t)(base + off), SEEK_SET) != 0)
            return AVERROR(EIO);
    } else {
        s->pos = (size_t)(base + off);
    }
    return base + off;
}

/* Reads n bytes at offset off without moving the position the demuxer's
 * reads go on from. Returns 0, or -1 when the bytes are not all there. */
static int src_pread(src_t *s, int64_t off, uint8_t *dst, size_t n)
{
    if (off < 0)
        return -1;
    if (s->fp) {
        ssize_t k = pread(fileno(s->fp), dst, n, (off_t)off);
        return k >= 0 && (size_t)k == n ? 0 : -1;
    }
    if ((uint64_t)off > s->len || n > s->len - (size_t)off)
        return -1;
    memcpy(dst, s->buf + off, n);
    return 0;
}

/* Demuxers such as HLS, DASH or concat open further URLs named inside the
 * input. For untrusted media that is a way to make us read local files or
 * reach the network, so every nested open is refused. */
static int deny_io_open(AVFormatContext *s, AVIOContext **pb, const char *url,
                        int flags, AVDictionary **options)
{
    ((src_t *)s->opaque)->denied = 1;
    (void)pb;
    (void)url;
    (void)flags;
    (void)options;
    return AVERROR(EPERM);
}

static int src_rewind(src_t *src)
{
    if (src->fp)
        return fseeko(src->fp, 0, SEEK_SET) == 0 ? CORDON_OK : CORDON_EIO;
    src->pos = 0;
    return CORDON_OK;
}

static void close_input(AVFormatContext **fmt, AVIOContext **io)
{
    if (*fmt)
        avformat_close_input(fmt);
    if (*io) {
        av_freep(&(*io)->buffer);
        avio_context_free(io);
    }
}

/* Demuxers whose input only names other files or URLs. */
static int playlist_demuxer(const char *name)
{
    static const char *const lists[] = {"hls", "dash", "concat", "imf"};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        if (strcmp(name, lists[i]) == 0)
            return 1;
    return 0;
}

/* Why avformat_open_input() failed, judged from the first bytes: a
 * playlist (refused), a recognised container with damaged headers (e.g.
 * an MP4 cut before its index), or not media at all. */
static int open_failure(src_t *src, int averr)
{
    uint8_t *head = av_mallocz(65536 + AVPROBE_PADDING_SIZE);
    size_t n = 0;
    if (!head)
        return CORDON_ENOMEM;
    if (src_rewind(src) == CORDON_OK) {
        while (n < 65536) {
            int k = src_read(src, head + n, (int)(65536 - n));
            if (k <= 0)
                break;
            n += (size_t)k;
        }
    }
    AVProbeData pd = {.filename = "", .buf = head, .buf_size = (int)n};
    int score = 0;
    const AVInputFormat *f = n ? av_probe_input_format3(&pd, 1, &score) : NULL;
    int sniffed = cordon_video_sniff(head, n);
    av_free(head);
    if (src->denied ||
        (f && score > AVPROBE_SCORE_RETRY && playlist_demuxer(f->name)))
        return CORDON_EPERM;
    if (averr == AVERROR(ENOMEM))
        return CORDON_ENOMEM;
    return sniffed ? CORDON_ECORRUPT : CORDON_EFORMAT;
}

static int open_input(src_t *src, AVFormatContext **fmt_out,
                      AVIOContext **io_out)
{
    AVFormatContext *fmt = NULL;
    AVIOContext *io = NULL;
    uint8_t *iobuf = av_malloc(AVIO_BUF_SIZE);
    if (!iobuf)
        return CORDON_ENOMEM;
    io = avio_alloc_context(iobuf, AVIO_BUF_SIZE, 0, src, src_read, NULL,
                            src_seek);
    if (!io) {
        av_free(iobuf);
        return CORDON_ENOMEM;
    }
    fmt = avformat_alloc_context();
    if (!fmt) {
        close_input(&fmt, &io);
        return CORDON_ENOMEM;
    }
    fmt->pb = io;
    fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    fmt->io_open = deny_io_open;
    fmt->opaque = src;
    int err = avformat_open_input(&fmt, NULL, NULL, NULL);
    if (err < 0) {
        /* avformat_open_input() frees fmt on failure, never custom IO. */
        fmt = NULL;
        close_input(&fmt, &io);
        return open_failure(src, err);
    }
    *fmt_out = fmt;
    *io_out = io;
    return CORDON_OK;
}

/* ---- Decoding state ---------------------------------------------------- */

enum { MODE_PLAIN, MODE_TRACK, MODE_SKIP };

typedef struct {
    int64_t pts;
    int eligible; /* sent while the decoder was allowed to drop it */
} pend_t;

/* What one hashing thread owns: conversion buffers and PDQ scratch. */
typedef struct {
    struct SwsContext *sws;
    uint8_t *luma; /* converted pixels when the frame cannot be used as is */
    size_t luma_cap;
    void *scratch;
    size_t scratch_cap;
} hasher_t;

typedef struct pool pool_t;

/* The eight dihedral hashes of one frame. */
typedef cordon_hash256_t dih_t[CORDON_DIH_COUNT];

typedef struct {
    const cordon_video_opts_t *o;
    AVFormatContext *fmt;
    AVCodecContext *cc;
    AVStream *st;
    AVPacket *pkt;
    AVFrame *frame;
    hasher_t inline_h; /* hashes in the decoding thread when pool is NULL */
    pool_t *pool;
    double fps;
    int interval;

    int mode;
    pend_t *pend;
    size_t npend, pend_cap;
    int skipped_any;   /* some packet went out with skipping allowed */
    int track_anomaly; /* a normal packet produced no frame */
    int64_t last_pts;  /* of the last frame out, in TRACK/SKIP modes */
    uint64_t next;     /* frame number of the next frame */
    uint64_t decoded;  /* frames the decoder actually output */
    uint64_t packets;  /* video packets demuxed */
    int64_t max_ts;    /* latest packet end time seen, stream time base */
    double duration;   /* from the headers, 0 if unknown */
    /* Decode positions of the keyframes in the demuxer's index (MP4 and
     * other indexed containers), to drop whole stretches before an IDR
     * frame when no sampled frame lies in them; NULL when unusable. */
    uint64_t *keys;
    size_t nkeys;
    uint64_t drop_until; /* packets before this decode position are dropped */
    int dropping;        /* the current stretch is being dropped */
    /* Where the stretches decoded side by side start (decode positions,
     * cuts[0] = 0); NULL when the input is decoded in one go. */
    uint64_t *cuts;
    size_t ncuts;
    uint64_t seg_end; /* in a worker: where its stretch ends, else 0 */

    cordon_vpdq_frame_t *frames;
    dih_t *dih; /* parallel to frames when o->dihedral */
    size_t count, cap;
    unsigned warnings;
} vctx_t;

static int too_big(const cordon_video_opts_t *o, int w, int h)
{
    if (w <= 0 || h <= 0)
        return 0;
    if (o->max_width && w > o->max_width)
        return 1;
    if (o->max_height && h > o->max_height)
        return 1;
    if (o->max_pixels && (uint64_t)w * (uint64_t)h > o->max_pixels)
        return 1;
    return 0;
}

static int check_frame_limits(vctx_t *v, uint64_t frame_number)
{
    const cordon_video_opts_t *o = v->o;
    if ((o->max_frames && frame_number >= o->max_frames) ||
        frame_number > INT32_MAX)
        return CORDON_ELIMIT_FRAMES;
    if (o->max_duration > 0 && (double)frame_number / v->fps > o->max_duration)
        return CORDON_ELIMIT_DURATION;
    return CORDON_OK;
}

/* ---- Luma -------------------------------------------------------------- */

/* 8-bit formats whose first plane is the luma, one byte per pixel. */
static int y_plane_usable(enum AVPixelFormat f)
{
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f);
    if (!d || (d->flags & (AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_PAL |
                           AV_PIX_FMT_FLAG_BITSTREAM | AV_PIX_FMT_FLAG_HWACCEL |
                           AV_PIX_FMT_FLAG_FLOAT | AV_PIX_FMT_FLAG_BAYER)))
        return 0;
    if (!(d->flags & AV_PIX_FMT_FLAG_PLANAR) && d->nb_components > 2)
        return 0; /* packed YUV such as YUYV interleaves luma with chroma */
    const AVComponentDescriptor *c = &d->comp[0];
    return c->plane == 0 && c->step == 1 && c->offset == 0 && c->shift == 0 &&
           c->depth == 8;
}

/* Whether the Y plane uses the limited 16..235 range. YUVJ formats are
 * full range by definition; otherwise the frame's tag decides, and an
 * untagged YUV stream is limited range, as swscale assumes. Grey without a
 * tag is taken as full range, as the still-image path does. */
static int is_tv_range(const AVFrame *f)
{
    if (f->color_range == AVCOL_RANGE_JPEG)
        return 0;
    switch (f->format) {
    case AV_PIX_FMT_YUVJ420P:
    case AV_PIX_FMT_YUVJ422P:
    case AV_PIX_FMT_YUVJ444P:
    case AV_PIX_FMT_YUVJ440P:
    case AV_PIX_FMT_YUVJ411P:
        return 0;
    case AV_PIX_FMT_GRAY8:
        return f->color_range == AVCOL_RANGE_MPEG;
    default:
        return 1;
    }
}

static int grow(void **p, size_t *cap, size_t need)
{
    if (*cap >= need)
        return CORDON_OK;
    void *q = realloc(*p, need);
    if (!q)
        return CORDON_ENOMEM;
    *p = q;
    *cap = need;
    return CORDON_OK;
}

/* The portable stretch is a table: the rounded quotient, computed the
 * obvious way. */
void cordon__vpdq_tv_stretch_scalar(const uint8_t *src, uint8_t *dst, size_t n)
{
    uint8_t lut[256];
    for (int y = 0; y < 256; y++) {
        int s = y < 16 ? 0 : ((y - 16) * 510 + 219) / 438;
        lut[y] = (uint8_t)(s > 255 ? 255 : s);
    }
    for (size_t i = 0; i < n; i++)
        dst[i] = lut[src[i]];
}

void cordon__vpdq_tv_stretch(const uint8_t *src, uint8_t *dst, size_t n)
{
    if (cordon_cpu_features() & CORDON_CPU_AVX2)
        cordon__vpdq_tv_stretch_avx2(src, dst, n);
    else
        cordon__vpdq_tv_stretch_scalar(src, dst, n);
}

/* Builds the plane PDQ hashes for a decoded frame: the Y plane itself, the
 * Y plane stretched to full range, or an RGB24 conversion for every other
 * pixel format (as the reference converts everything to RGB24). */
static int frame_plane(hasher_t *hs, const AVFrame *f, cordon_plane_t *pl)
{
    int w = f->width, h = f->height;
    pl->width = w;
    pl->height = h;
    if (y_plane_usable(f->format) && f->linesize[0] > 0) {
        if (!is_tv_range(f)) {
            pl->data = f->data[0];
            pl->stride = (size_t)f->linesize[0];
            pl->format = CORDON_PIX_GRAY8;
            return CORDON_OK;
        }
        /* The reference hashes the luma of an RGB conversion, which is
         * full range; its quality numbers depend on that contrast. */
        int rc = grow((void **)&hs->luma, &hs->luma_cap, (size_t)w * h);
        if (rc)
            return rc;
        for (int y = 0; y < h; y++)
            cordon__vpdq_tv_stretch(f->data[0] + (size_t)y * f->linesize[0],
                                    hs->luma + (size_t)y * w, (size_t)w);
        pl->data = hs->luma;
        pl->stride = (size_t)w;
        pl->format = CORDON_PIX_GRAY8;
        return CORDON_OK;
    }
    if (f->format == AV_PIX_FMT_RGB24 && f->linesize[0] > 0) {
        pl->data = f->data[0];
        pl->stride = (size_t)f->linesize[0];
        pl->format = CORDON_PIX_RGB8;
        return CORDON_OK;
    }
    hs->sws =
        sws_getCachedContext(hs->sws, w, h, f->format, w, h, AV_PIX_FMT_RGB24,
                             SWS_AREA, NULL, NULL, NULL);
    if (!hs->sws)
        return CORDON_EFORMAT;
    size_t stride = (size_t)w * 3;
    int rc = grow((void **)&hs->luma, &hs->luma_cap, stride * h);
    if (rc)
        return rc;
    uint8_t *dst[4] = {hs->luma, NULL, NULL, NULL};
    int dst_ls[4] = {(int)stride, 0, 0, 0};
    if (sws_scale(hs->sws, (const uint8_t *const *)f->data, f->linesize, 0, h,
                  dst, dst_ls) != h)
        return CORDON_EDECODE;
    pl->data = hs->luma;
    pl->stride = stride;
    pl->format = CORDON_PIX_RGB8;
    return CORDON_OK;
}

/* Hashes one frame into o and, if dih is not NULL, its eight dihedral
 * hashes into dih[0..7]. */
static int hash_into(hasher_t *hs, const AVFrame *f, uint64_t n, double fps,
                     cordon_vpdq_frame_t *o, cordon_hash256_t *dih)
{
    cordon_plane_t pl;
    int rc = frame_plane(hs, f, &pl);
    if (rc)
        return rc;
    size_t need = cordon_pdq_scratch_size(pl.width, pl.height);
    if (need == 0)
        return CORDON_EDIMENSIONS;
    if ((rc = grow(&hs->scratch, &hs->scratch_cap, need)) != CORDON_OK)
        return rc;
    cordon_pdq_result_t r;
    rc = cordon_pdq_compute(&pl, hs->scratch, hs->scratch_cap, &r);
    if (rc)
        return rc;
    o->hash = r.hash;
    o->frame_number = (int32_t)n;
    o->quality = r.quality;
    o->timestamp = cordon_vpdq_timestamp((int32_t)n, fps);
    if (dih)
        cordon_pdq_dihedral(&r.dct, dih);
    return CORDON_OK;
}

static void hasher_free(hasher_t *hs)
{
    free(hs->scratch);
    free(hs->luma);
    sws_freeContext(hs->sws);
    memset(hs, 0, sizeof *hs);
}

/* ---- Hashing threads --------------------------------------------------- */

/* Sampled frames are hashed by worker threads while decoding goes on, as
 * PDQ over a full-resolution frame costs about as much as decoding it.
 * A job holds a reference to the decoder's frame (no pixel copy) and the
 * index of its slot in the output; slots are only written by workers and
 * the output array is only resized while no job is in flight. */
typedef struct {
    AVFrame *frame;
    uint64_t n;
    size_t slot;
} job_t;

struct pool {
    pthread_mutex_t mu;
    pthread_cond_t cv_job;  /* a job was queued, or stop */
    pthread_cond_t cv_done; /* a job finished */
    job_t *q;               /* ring of capacity qcap */
    size_t qcap, qhead, qlen;
    size_t busy; /* jobs taken but not finished */
    int stop;
    int err; /* first error of any job */
    double fps;
    cordon_vpdq_frame_t **out; /* the caller's output array */
    dih_t **dih;               /* and its dihedral array, if *dih */
    AVFrame **spare;           /* frames not in use by a job */
    size_t nspare;
    int nthreads;
    pthread_t *tids;
    hasher_t *hs;
};

typedef struct {
    pool_t *p;
    int id;
} worker_arg_t;

static void *worker(void *arg)
{
    pool_t *p = ((worker_arg_t *)arg)->p;
    hasher_t *hs = &p->hs[((worker_arg_t *)arg)->id];
    free(arg);
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->qlen == 0)
            pthread_cond_wait(&p->cv_job, &p->mu);
        if (p->qlen == 0)
            break;
        job_t j = p->q[p->qhead];
        p->qhead = (p->qhead + 1) % p->qcap;
        p->qlen--;
        p->busy++;
        cordon_vpdq_frame_t *dst = &(*p->out)[j.slot];
        cordon_hash256_t *ddst = *p->dih ? (*p->dih)[j.slot] : NULL;
        double fps = p->fps;
        pthread_mutex_unlock(&p->mu);

        cordon_vpdq_frame_t r;
        dih_t rd;
        int rc = hash_into(hs, j.frame, j.n, fps, &r, ddst ? rd : NULL);
        av_frame_unref(j.frame);

        pthread_mutex_lock(&p->mu);
        if (rc == CORDON_OK) {
            *dst = r;
            if (ddst)
                memcpy(ddst, rd, sizeof rd);
        } else if (!p->err)
            p->err = rc;
        p->spare[p->nspare++] = j.frame;
        p->busy--;
        pthread_cond_broadcast(&p->cv_done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void pool_destroy(pool_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv_job);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->tids[i], NULL);
    /* Frames of jobs never taken (after an error) are released here. */
    for (size_t i = 0; i < p->qlen; i++) {
        AVFrame *f = p->q[(p->qhead + i) % p->qcap].frame;
        av_frame_free(&f);
    }
    for (size_t i = 0; i < p->nspare; i++)
        av_frame_free(&p->spare[i]);
    if (p->hs)
        for (int i = 0; i < p->nthreads; i++)
            hasher_free(&p->hs[i]);
    pthread_cond_destroy(&p->cv_done);
    pthread_cond_destroy(&p->cv_job);
    pthread_mutex_destroy(&p->mu);
    free(p->hs);
    free(p->tids);
    free(p->spare);
    free(p->q);
    free(p);
}

static int pool_create(int nthreads, double fps, cordon_vpdq_frame_t **out,
                       dih_t **dih, pool_t **pp)
{
    pool_t *p = calloc(1, sizeof *p);
    if (!p)
        return CORDON_ENOMEM;
    /* Two frames per thread keep every worker fed without holding many
     * decoded frames. */
    p->qcap = (size_t)nthreads * 2;
    p->fps = fps;
    p->out = out;
    p->dih = dih;
    p->q = calloc(p->qcap, sizeof *p->q);
    p->spare = calloc(p->qcap, sizeof *p->spare);
    p->tids = calloc((size_t)nthreads, sizeof *p->tids);
    p->hs = calloc((size_t)nthreads, sizeof *p->hs);
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p->q);
        free(p->spare);
        free(p->tids);
        free(p->hs);
        free(p);
        return CORDON_ENOMEM;
    }
    pthread_cond_init(&p->cv_job, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    if (!p->q || !p->spare || !p->tids || !p->hs)
        goto fail;
    for (size_t i = 0; i < p->qcap; i++) {
        if (!(p->spare[i] = av_frame_alloc()))
            goto fail;
        p->nspare++;
    }
    for (int i = 0; i < nthreads; i++) {
        worker_arg_t *a = malloc(sizeof *a);
        if (!a)
            goto fail;
        a->p = p;
        a->id = i;
        if (pthread_create(&p->tids[i], NULL, worker, a) != 0) {
            free(a);
            goto fail;
        }
        p->nthreads++;
    }
    *pp = p;
    return CORDON_OK;
fail:
    pool_destroy(p);
    return CORDON_ENOMEM;
}

/* Queues a frame (its reference is moved out of f); blocks while the
 * queue is full. */
static int pool_submit(pool_t *p, AVFrame *f, uint64_t n, size_t slot)
{
    pthread_mutex_lock(&p->mu);
    while (!p->err && p->nspare == 0)
        pthread_cond_wait(&p->cv_done, &p->mu);
    int rc = p->err;
    if (rc == CORDON_OK) {
        AVFrame *jf = p->spare[--p->nspare];
        av_frame_move_ref(jf, f);
        job_t j = {jf, n, slot};
        p->q[(p->qhead + p->qlen) % p->qcap] = j;
        p->qlen++;
        pthread_cond_signal(&p->cv_job);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* Waits until every queued job is finished; returns the first error. */
static int pool_wait(pool_t *p)
{
    pthread_mutex_lock(&p->mu);
    while (p->qlen || p->busy)
        pthread_cond_wait(&p->cv_done, &p->mu);
    int rc = p->err;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* Reserves the next output slot, growing the array while no worker can be
 * writing to it. */
static int reserve_slot(vctx_t *v, size_t *slot)
{
    if (v->count == v->cap) {
        if (v->pool) {
            int rc = pool_wait(v->pool);
            if (rc)
                return rc;
        }
        size_t nc = v->cap ? v->cap * 2 : 256;
        cordon_vpdq_frame_t *p = realloc(v->frames, nc * sizeof *p);
        if (!p)
            return CORDON_ENOMEM;
        v->frames = p;
        if (v->o->dihedral) {
            dih_t *d = realloc(v->dih, nc * sizeof *d);
            if (!d)
                return CORDON_ENOMEM;
            v->dih = d;
        }
        v->cap = nc;
    }
    *slot = v->count++;
    return CORDON_OK;
}

static int hash_frame(vctx_t *v, AVFrame *f, uint64_t n)
{
    size_t slot;
    int rc = reserve_slot(v, &slot);
    if (rc)
        return rc;
    if (v->pool)
        return pool_submit(v->pool, f, n, slot);
    return hash_into(&v->inline_h, f, n, v->fps, &v->frames[slot],
                     v->dih ? v->dih[slot] : NULL);
}

/* ---- Frame numbering --------------------------------------------------- */

/* Skipping cannot go on: carry on counting outputs if nothing was skipped
 * yet, else ask for a full decode. */
static int abandon_skipping(vctx_t *v)
{
    if (v->skipped_any)
        return RESTART;
    v->mode = MODE_PLAIN;
    v->npend = 0;
    v->cc->skip_frame = AVDISCARD_DEFAULT;
    return CORDON_OK;
}

static int sampled(const vctx_t *v, uint64_t n)
{
    return n % (uint64_t)v->interval == 0;
}

/* How far a frame's number can fall behind its decode position: the
 * stream's reorder depth plus slack. A miss costs no correctness: a
 * dropped frame that turns out to be sampled makes the input decode again
 * in full (settle_missing). */
static uint64_t reorder_margin(const vctx_t *v)
{
    int d = v->st->codecpar->video_delay;
    return (uint64_t)(d > 0 ? d : 0) + 2;
}

/* Keyframe decode positions from the stream's index, if it lists every
 * packet (so that index i is decode position i). */
static int load_keys(vctx_t *v)
{
    int n = avformat_index_get_entries_count(v->st);
    if (n <= 0 || v->st->nb_frames <= 0 || (int64_t)n != v->st->nb_frames)
        return CORDON_OK;
    uint64_t *k = malloc((size_t)n * sizeof *k);
    if (!k)
        return CORDON_ENOMEM;
    size_t m = 0;
    for (int i = 0; i < n; i++) {
        const AVIndexEntry *e = avformat_index_get_entry(v->st, i);
        if (e && (e->flags & AVINDEX_KEYFRAME))
            k[m++] = (uint64_t)i;
    }
    v->keys = k;
    v->nkeys = m;
    return CORDON_OK;
}

/* The first keyframe position after x, or 0 when there is none. */
static uint64_t next_key(const vctx_t *v, uint64_t x)
{
    size_t lo = 0, hi = v->nkeys;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v->keys[mid] <= x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < v->nkeys ? v->keys[lo] : 0;
}

/* The length of a NAL unit from its ls-byte big-endian prefix (MP4). */
static uint32_t nal_length(const uint8_t *d, int ls)
{
    uint32_t len = 0;
    for (int i = 0; i < ls; i++)
        len = len << 8 | d[i];
    return len;
}

/* Whether an H.264 packet holds an IDR slice (NAL type 5), which no later
 * frame can look past. Length-prefixed (MP4) or start-code framing. */
static int has_idr(const AVCodecParameters *par, const uint8_t *d, int n)
{
    if (!d || n <= 0)
        return 0;
    if (par->extradata_size >= 5 && par->extradata[0] == 1) {
        int ls = (par->extradata[4] & 3) + 1;
        int off = 0;
        while (off + ls < n) {
            uint32_t len = nal_length(d + off, ls);
            if ((d[off + ls] & 0x1F) == 5)
                return 1;
            if (len > (uint32_t)(n - off - ls))
                return 0;
            off += ls + (int)len;
        }
        return 0;
    }
    for (int i = 0; i + 3 < n; i++)
        if (d[i] == 0 && d[i + 1] == 0 && d[i + 2] == 1 &&
            (d[i + 3] & 0x1F) == 5)
            return 1;
    return 0;
}

/* Whether frame numbers [a, b) hold a sampled one. */
static int any_sampled(const vctx_t *v, uint64_t a, uint64_t b)
{
    uint64_t i = (uint64_t)v->interval;
    uint64_t first = (a + i - 1) / i * i;
    return first < b;
}

/*
 * Decides whether packet x (decode position) can be left out of decoding
 * entirely: in MP4-indexed H.264, everything from x up to the next
 * keyframe k can go when no frame numbered in [x - margin, k) is sampled,
 * provided k turns out to be an IDR frame (checked when it arrives; if not,
 * the input is decoded again in full). A worker decoding one stretch on
 * its own (seg_end set) may drop up to the stretch's end the same way:
 * the next stretch starts at a checked IDR frame. Returns 1 to drop.
 */
static int drop_stretch(vctx_t *v, const AVPacket *pkt, uint64_t x)
{
    /* Committed: the keyframe's arrival is checked in note_packet. */
    if (v->dropping && x < v->drop_until)
        return 1;
    v->dropping = 0;
    uint64_t k = v->seg_end;
    if (k == 0) {
        if (!v->keys)
            return 0;
        const AVIndexEntry *e = avformat_index_get_entry(v->st, (int)x);
        if (!e || e->timestamp != pkt->dts) {
            /* The packets do not follow the index: stop using it. */
            free(v->keys);
            v->keys = NULL;
            return 0;
        }
        if ((k = next_key(v, x)) == 0)
            return 0;
    }
    uint64_t m = reorder_margin(v);
    uint64_t a = x > m ? x - m : 0;
    if (any_sampled(v, a, k))
        return 0;
    v->dropping = 1;
    v->drop_until = k;
    return 1;
}

/* Records a packet before it is sent and decides whether the decoder may
 * drop it. */
static int note_packet(vctx_t *v, const AVPacket *pkt, int *drop)
{
    uint64_t x = v->packets++;
    *drop = 0;
    if (v->mode == MODE_PLAIN)
        return CORDON_OK;
    if (v->dropping && x == v->drop_until) {
        /* The keyframe that ends a dropped stretch must be an IDR frame,
         * or the frames after it could refer to what was left out. */
        v->dropping = 0;
        if (!has_idr(v->st->codecpar, pkt->data, pkt->size))
            return RESTART;
    }
    if (pkt->pts == AV_NOPTS_VALUE || v->npend >= MAX_PENDING ||
        (v->last_pts != AV_NOPTS_VALUE && pkt->pts <= v->last_pts))
        return abandon_skipping(v);
    size_t before = 0;
    for (size_t i = 0; i < v->npend; i++) {
        if (v->pend[i].pts == pkt->pts)
            return abandon_skipping(v);
        before += v->pend[i].pts < pkt->pts;
    }
    if (v->mode == MODE_TRACK && v->decoded >= TRACK_WARMUP &&
        !v->track_anomaly)
        v->mode = MODE_SKIP;
    int eligible = 0;
    if (v->mode == MODE_SKIP && !(pkt->flags & AV_PKT_FLAG_KEY) &&
        !(pkt->flags & AV_PKT_FLAG_DISCARD)) {
        /* The frame number this packet will get if every earlier frame is
         * already pending or out; a margin of one either side absorbs a
         * reference frame that arrives later than its number suggests. */
        uint64_t n = v->next + before;
        eligible = !sampled(v, n) && !sampled(v, n + 1) &&
                   (n == 0 || !sampled(v, n - 1));
        /* Once a stretch is being dropped, all of it goes: a frame sent
         * after its references were left out would decode to nothing. */
        if (eligible || v->dropping)
            *drop = drop_stretch(v, pkt, x);
        eligible |= *drop;
    }
    if (v->npend == v->pend_cap) {
        size_t nc = v->pend_cap ? v->pend_cap * 2 : 32;
        pend_t *p = realloc(v->pend, nc * sizeof *p);
        if (!p)
            return CORDON_ENOMEM;
        v->pend = p;
        v->pend_cap = nc;
    }
    v->pend[v->npend].pts = pkt->pts;
    v->pend[v->npend].eligible = eligible;
    v->npend++;
    v->skipped_any |= eligible;
    v->cc->skip_frame = eligible ? AVDISCARD_NONREF : AVDISCARD_DEFAULT;
    return CORDON_OK;
}

/* Removes and returns the pending packet with the earliest time. */
static pend_t pop_min(vctx_t *v)
{
    size_t m = 0;
    for (size_t i = 1; i < v->npend; i++)
        if (v->pend[i].pts < v->pend[m].pts)
            m = i;
    pend_t e = v->pend[m];
    v->pend[m] = v->pend[--v->npend];
    return e;
}

static int min_pts(const vctx_t *v, int64_t *pts)
{
    if (v->npend == 0)
        return 0;
    int64_t m = v->pend[0].pts;
    for (size_t i = 1; i < v->npend; i++)
        if (v->pend[i].pts < m)
            m = v->pend[i].pts;
    *pts = m;
    return 1;
}

/* Accounts for a pending packet that produced no frame. */
static int settle_missing(vctx_t *v, pend_t e)
{
    if (!e.eligible) {
        v->track_anomaly = 1;
        return CORDON_OK;
    }
    /* Dropped on purpose: a full decode would have output it here. */
    if (sampled(v, v->next))
        return RESTART;
    int rc = check_frame_limits(v, v->next);
    if (rc)
        return rc;
    v->next++;
    return CORDON_OK;
}

/* The frame number of a frame that came out of the decoder. */
static int number_frame(vctx_t *v, const AVFrame *f, uint64_t *n)
{
    if (v->mode != MODE_PLAIN) {
        int64_t p = f->pts;
        int64_t m = 0;
        int rc;
        if (p == AV_NOPTS_VALUE ||
            (v->last_pts != AV_NOPTS_VALUE && p <= v->last_pts)) {
            if ((rc = abandon_skipping(v)) != CORDON_OK)
                return rc;
            goto plain;
        }
        while (min_pts(v, &m) && m < p)
            if ((rc = settle_missing(v, pop_min(v))) != CORDON_OK)
                return rc;
        if (!min_pts(v, &m) || m != p) {
            if ((rc = abandon_skipping(v)) != CORDON_OK)
                return rc;
            goto plain;
        }
        pop_min(v);
        v->last_pts = p;
    }
plain:
    *n = v->next++;
    return check_frame_limits(v, *n);
}

/* At the end of input every packet still pending produced no frame. */
static int settle_all(vctx_t *v)
{
    if (v->mode == MODE_PLAIN)
        return CORDON_OK;
    while (v->npend) {
        int rc = settle_missing(v, pop_min(v));
        if (rc)
            return rc;
    }
    return CORDON_OK;
}

/* ---- Decode loop ------------------------------------------------------- */

/* Damage is noted and decoding goes on. With frames skipped, a frame that
 * fails to decode makes the numbering uncertain (would a full decode have
 * output it?), so the input is decoded again in full for exact numbers. */
static int note_corrupt(vctx_t *v)
{
    v->warnings |= CORDON_VIDEO_WARN_CORRUPT;
    return v->skipped_any ? RESTART : CORDON_OK;
}

static int on_frame(vctx_t *v, AVFrame *f)
{
    v->decoded++;
    if ((f->flags & AV_FRAME_FLAG_CORRUPT) || f->decode_error_flags) {
        int rc = note_corrupt(v);
        if (rc) {
            av_frame_unref(f);
            return rc;
        }
    }
    if (too_big(v->o, f->width, f->height))
        return CORDON_ELIMIT_PIXELS;
    uint64_t n;
    int rc = number_frame(v, f, &n);
    if (rc == CORDON_OK && sampled(v, n))
        rc = hash_frame(v, f, n);
    av_frame_unref(f);
    return rc;
}

/* Takes every frame the decoder has ready. Decoder errors are damage, not
 * failure: they are noted and decoding goes on. */
static int drain(vctx_t *v)
{
    int errors = 0;
    for (;;) {
        int err = avcodec_receive_frame(v->cc, v->frame);
        if (err == AVERROR(EAGAIN) || err == AVERROR_EOF)
            return CORDON_OK;
        if (err == AVERROR(ENOMEM))
            return CORDON_ENOMEM;
        if (err < 0) {
            int rc = note_corrupt(v);
            if (rc)
                return rc;
            /* A decoder that keeps failing without consuming input must
             * not spin us forever; the next packet gives it new data. */
            if (++errors >= 64)
                return CORDON_OK;
            continue;
        }
        int rc = on_frame(v, v->frame);
        if (rc)
            return rc;
    }
}

static int send_pkt(vctx_t *v, const AVPacket *pkt)
{
    for (;;) {
        int err = avcodec_send_packet(v->cc, pkt);
        if (err == AVERROR(EAGAIN)) {
            int rc = drain(v);
            if (rc)
                return rc;
            continue;
        }
        if (err == AVERROR(ENOMEM))
            return CORDON_ENOMEM;
        if (err < 0 && err != AVERROR_EOF) {
            int rc = note_corrupt(v);
            if (rc)
                return rc;
        }
        return drain(v);
    }
}

/* Input is over: flushes the decoder and accounts for the pending packets
 * that produced no frame. */
static int end_of_input(vctx_t *v)
{
    int rc = send_pkt(v, NULL);
    return rc ? rc : settle_all(v);
}

/* Whether the packets stop well short of what the headers announce. MP4's
 * sample count is exact; elsewhere only the duration is compared, with
 * slack, since containers round it and audio may outlast the video. */
static int ended_early(const vctx_t *v)
{
    const AVStream *st = v->st;
    if (st->nb_frames > 0 && v->packets < (uint64_t)st->nb_frames &&
        strncmp(v->fmt->iformat->name, "mov,", 4) == 0)
        return 1;
    double declared = v->duration;
    if (declared <= 0 || v->max_ts == AV_NOPTS_VALUE)
        return 0;
    int64_t start = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
    double covered = (double)(v->max_ts - start) * av_q2d(st->time_base);
    return covered < 0.9 * declared && declared - covered > 1.0;
}

/* Reads the next packet of the video stream into v->pkt: *got is 1 with a
 * packet, 0 at the end of the input (a read error counts as truncation). */
static int next_packet(vctx_t *v, int *got)
{
    *got = 0;
    for (;;) {
        int err = av_read_frame(v->fmt, v->pkt);
        if (err == AVERROR(EAGAIN))
            continue;
        if (err < 0) {
            if (err == AVERROR(ENOMEM))
                return CORDON_ENOMEM;
            if (err != AVERROR_EOF)
                v->warnings |= CORDON_VIDEO_WARN_TRUNCATED;
            return CORDON_OK;
        }
        if (v->pkt->stream_index != v->st->index) {
            av_packet_unref(v->pkt);
            continue;
        }
        break;
    }
    int64_t ts = v->pkt->pts != AV_NOPTS_VALUE ? v->pkt->pts : v->pkt->dts;
    if (ts != AV_NOPTS_VALUE) {
        ts += v->pkt->duration > 0 ? v->pkt->duration : 0;
        if (v->max_ts == AV_NOPTS_VALUE || ts > v->max_ts)
            v->max_ts = ts;
    }
    if (v->pkt->flags & AV_PKT_FLAG_CORRUPT)
        v->warnings |= CORDON_VIDEO_WARN_TRUNCATED;
    if (v->o->max_bytes && v->fmt->pb &&
        (uint64_t)avio_tell(v->fmt->pb) > v->o->max_bytes) {
        av_packet_unref(v->pkt);
        return CORDON_ELIMIT_BYTES;
    }
    *got = 1;
    return CORDON_OK;
}

/* Sends one demuxed packet to the decoder, unless it can be left out. */
static int decode_packet(vctx_t *v, AVPacket *pkt)
{
    int drop;
    int rc = note_packet(v, pkt, &drop);
    if (rc == CORDON_OK && !drop)
        rc = send_pkt(v, pkt);
    return rc;
}

static int decode_all(vctx_t *v)
{
    int rc, got;
    while ((rc = next_packet(v, &got)) == CORDON_OK && got) {
        rc = decode_packet(v, v->pkt);
        av_packet_unref(v->pkt);
        if (rc)
            return rc;
    }
    if (rc)
        return rc;
    if ((rc = end_of_input(v)) != CORDON_OK)
        return rc;
    if (ended_early(v))
        v->warnings |= CORDON_VIDEO_WARN_TRUNCATED;
    return CORDON_OK;
}

/* ---- Setup ------------------------------------------------------------- */

static double stream_fps(const AVStream *st)
{
    AVRational r = st->avg_frame_rate;
    if (r.num <= 0 || r.den <= 0)
        r = st->r_frame_rate;
    if (r.num <= 0 || r.den <= 0)
        return 0;
    return (double)r.num / (double)r.den;
}

/* The reference takes the first video stream; cover art stored as a video
 * stream (an attached picture in an audio file) is not video. */
static AVStream *first_video(AVFormatContext *fmt)
{
    AVStream *found = NULL;
    for (unsigned i = 0; i < fmt->nb_streams; i++) {
        AVStream *st = fmt->streams[i];
        if (!found && st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO &&
            !(st->disposition & AV_DISPOSITION_ATTACHED_PIC))
            found = st;
        else
            st->discard = AVDISCARD_ALL;
    }
    return found;
}

/* Threads the caller allows in all. */
static int total_threads(const cordon_video_opts_t *o)
{
    if (o->threads > 0)
        return o->threads > MAX_THREADS ? MAX_THREADS : o->threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    return n > MAX_THREADS ? MAX_THREADS : (int)n;
}

/* PDQ of a full frame costs about this fraction of decoding that frame
 * with H.264 (measured on 480p..1080p: 0.68..0.71 with the AVX2 filter,
 * about 0.5 with AVX-512; at 2 threads and every frame both give one
 * decoding thread). */
#define HASH_PER_DECODE 0.7

/*
 * How many of the threads FFmpeg's decoder gets. Frame threading speeds up
 * decoding but costs CPU (each extra thread copies decoder state and waits
 * on its neighbours' progress; 30-50% more CPU with 2 threads measured on
 * H.264). When most frames are hashed, hashing is a large share of the
 * work and runs in parallel on the pool anyway, so the decoder keeps fewer
 * threads: with 2 threads and every frame hashed, one decodes while the
 * pool hashes, which approaches max(decode, hash) in wall time with no
 * frame-threading overhead.
 */
static int decoder_threads(const cordon_video_opts_t *o, int interval)
{
    int t = total_threads(o);
    double h = HASH_PER_DECODE / (interval > 0 ? interval : 1);
    int hashing = (int)lround(t * h / (1.0 + h));
    int d = t - hashing;
    return d < 1 ? 1 : d;
}

static double header_duration(const AVFormatContext *fmt, const AVStream *st)
{
    if (st->duration > 0 && st->time_base.den > 0)
        return (double)st->duration * av_q2d(st->time_base);
    if (fmt->duration > 0)
        return (double)fmt->duration / AV_TIME_BASE;
    return 0;
}

static int open_decoder(vctx_t *v, int threads)
{
    const AVCodecParameters *par = v->st->codecpar;
    const AVCodec *codec = avcodec_find_decoder(par->codec_id);
    if (!codec)
        return CORDON_EFORMAT;
    v->cc = avcodec_alloc_context3(codec);
    if (!v->cc)
        return CORDON_ENOMEM;
    if (avcodec_parameters_to_context(v->cc, par) < 0)
        return CORDON_ENOMEM;
    v->cc->pkt_timebase = v->st->time_base;
    v->cc->thread_count = threads;
    v->cc->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
    int err = avcodec_open2(v->cc, codec, NULL);
    if (err < 0)
        return err == AVERROR(ENOMEM) ? CORDON_ENOMEM : CORDON_EFORMAT;
    return CORDON_OK;
}

static void vctx_free(vctx_t *v)
{
    /* Workers write into frames: stop them first. */
    pool_destroy(v->pool);
    free(v->frames);
    free(v->dih);
    free(v->pend);
    free(v->keys);
    free(v->cuts);
    hasher_free(&v->inline_h);
    av_frame_free(&v->frame);
    av_packet_free(&v->pkt);
    avcodec_free_context(&v->cc);
    memset(v, 0, sizeof *v);
}

/* ---- Stretches between IDR frames, decoded side by side ---------------- */

/*
 * An H.264 IDR frame cuts a stream in two: no frame after it in decode
 * order refers to one before it, and every frame before it is output
 * before it. With an index that lists every packet (MP4), the stretches
 * between IDR keyframes are therefore independent: several single-threaded
 * decoders can take one each, and a stretch starting at decode position a
 * outputs frames a, a+1, ... of a full decode, provided every packet is
 * one frame. Each stretch checks that on its own (frames accounted for ==
 * packets), and any doubt decodes the input again in order. This scales
 * better than FFmpeg's frame threads, which cost 30-50 % more CPU for a
 * 1.2-1.3x gain on 2 threads (measured on H.264 at 480p..1080p); a
 * stretch with no sampled frame is not decoded at all.
 *
 * The calling thread demuxes and hands each stretch's packets to an idle
 * worker (packets are moved, not copied); at most SEG_QUEUE_BYTES of them
 * wait per worker, so a huge stretch degrades to demuxing and decoding in
 * step rather than buffering the file.
 */
#define SEG_QUEUE_BYTES (32u << 20)
/* Stretches checked for an IDR frame in the index before decoding: a few
 * small reads per keyframe. More keyframes than this: the plan uses the
 * first ones only and the rest decode as part of the last stretch. */
#define SEG_MAX 4096
/* Splitting must promise at least this speed-up over one decoder (the
 * longest stretch bounds it), else FFmpeg's frame threads do better. */
#define SEG_MIN_GAIN 1.5

/* Whether a packet stored at e (an MP4 sample of length-prefixed NAL units
 * of ls bytes) starts an IDR picture: its first slice is NAL type 5. Reads
 * only the NAL headers. */
static int stored_idr(src_t *src, const AVIndexEntry *e, int ls)
{
    int64_t off = 0;
    for (int i = 0; i < 64 && off + ls + 1 <= e->size; i++) {
        uint8_t h[5];
        if (src_pread(src, e->pos + off, h, (size_t)ls + 1))
            return 0;
        uint32_t len = nal_length(h, ls);
        int t = h[ls] & 0x1F;
        if (t >= 1 && t <= 5)
            return t == 5;
        off += ls + (int64_t)len;
    }
    return 0;
}

/*
 * Plans the stretches: v->cuts[i] is the decode position where stretch i
 * starts (cuts[0] = 0), from the index's keyframes that are IDR frames.
 * Returns 1 when decoding them side by side is worth it, 0 otherwise (or a
 * negative error).
 */
static int plan_segments(vctx_t *v, src_t *src, int nthreads)
{
    const AVCodecParameters *par = v->st->codecpar;
    if (!v->keys || v->nkeys < 2 || nthreads < 2 ||
        par->codec_id != AV_CODEC_ID_H264 || par->extradata_size < 7 ||
        par->extradata[0] != 1)
        return 0;
    int ls = (par->extradata[4] & 3) + 1;
    size_t nk = v->nkeys < SEG_MAX ? v->nkeys : SEG_MAX;
    uint64_t *cuts = malloc((nk + 1) * sizeof *cuts);
    if (!cuts)
        return CORDON_ENOMEM;
    size_t n = 0;
    cuts[n++] = 0;
    for (size_t i = 0; i < nk; i++) {
        uint64_t k = v->keys[i];
        const AVIndexEntry *e = avformat_index_get_entry(v->st, (int)k);
        if (k > 0 && e && e->pos >= 0 && e->size > 0 &&
            stored_idr(src, e, ls))
            cuts[n++] = k;
    }
    /* The work each stretch costs, roughly its length if it is decoded. */
    uint64_t total = (uint64_t)v->st->nb_frames, sum = 0, longest = 0;
    size_t busy = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t a = cuts[i], b = i + 1 < n ? cuts[i + 1] : total;
        if (v->o->skip_unsampled && !any_sampled(v, a, b))
            continue;
        sum += b - a;
        longest = b - a > longest ? b - a : longest;
        busy++;
    }
    double bound = (double)sum / nthreads;
    double span = (double)longest > bound ? (double)longest : bound;
    if (busy < 2 || (double)sum / span < SEG_MIN_GAIN) {
        free(cuts);
        return 0;
    }
    v->cuts = cuts;
    v->ncuts = n;
    return 1;
}

typedef struct segs segs_t;

/* One worker: its own decoder and numbering state, and the stretch in
 * hand. Fields below `busy` are shared, under segs_t.mu. */
typedef struct {
    segs_t *s;
    pthread_t tid;
    int started;
    vctx_t v;
    int busy;        /* a stretch is assigned */
    uint64_t start;  /* its first decode position */
    uint64_t npkts;  /* packets queued for it so far */
    int complete;    /* all of them are queued */
    AVPacket **q;    /* ring of capacity qcap */
    size_t qcap, qhead, qlen, qbytes;
} segw_t;

struct segs {
    pthread_mutex_t mu;
    pthread_cond_t cv_work; /* packets queued, a stretch completed, stop */
    pthread_cond_t cv_free; /* queue space, an idle worker, an error */
    int err;                /* first error (or RESTART) of any worker */
    int stop;
    segw_t *w;
    int nw;
};

/* Ends a stretch: flushes the decoder, checks that every packet was one
 * frame, and readies the decoder for the next stretch. */
static int seg_finish(vctx_t *w, uint64_t start, uint64_t npkts)
{
    int rc = end_of_input(w);
    if (rc == CORDON_OK && w->next - start != npkts)
        rc = RESTART;
    avcodec_flush_buffers(w->cc);
    return rc;
}

static void *seg_worker(void *arg)
{
    segw_t *w = arg;
    segs_t *s = w->s;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stop && !(w->busy && (w->qlen || w->complete)))
            pthread_cond_wait(&s->cv_work, &s->mu);
        if (s->stop)
            break;
        int rc;
        if (w->qlen) {
            AVPacket *p = w->q[w->qhead];
            w->qhead = (w->qhead + 1) % w->qcap;
            w->qlen--;
            w->qbytes -= (size_t)p->size;
            pthread_cond_signal(&s->cv_free);
            pthread_mutex_unlock(&s->mu);
            rc = decode_packet(&w->v, p);
            av_packet_free(&p);
            pthread_mutex_lock(&s->mu);
        } else {
            uint64_t start = w->start, n = w->npkts;
            pthread_mutex_unlock(&s->mu);
            rc = seg_finish(&w->v, start, n);
            pthread_mutex_lock(&s->mu);
            w->busy = 0;
            pthread_cond_signal(&s->cv_free);
        }
        if (rc) {
            if (!s->err)
                s->err = rc;
            s->stop = 1;
            pthread_cond_broadcast(&s->cv_work);
            pthread_cond_signal(&s->cv_free);
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Queues v->pkt for w, waiting while its queue is full. */
static int seg_push(segs_t *s, segw_t *w, AVPacket *pkt)
{
    AVPacket *p = av_packet_alloc();
    if (!p)
        return CORDON_ENOMEM;
    av_packet_move_ref(p, pkt);
    pthread_mutex_lock(&s->mu);
    while (!s->err && w->qlen && w->qbytes + (size_t)p->size > SEG_QUEUE_BYTES)
        pthread_cond_wait(&s->cv_free, &s->mu);
    int rc = s->err;
    if (rc == CORDON_OK && w->qlen == w->qcap) {
        size_t nc = w->qcap ? w->qcap * 2 : 256;
        AVPacket **q = malloc(nc * sizeof *q);
        if (!q)
            rc = CORDON_ENOMEM;
        else {
            for (size_t i = 0; i < w->qlen; i++)
                q[i] = w->q[(w->qhead + i) % w->qcap];
            free(w->q);
            w->q = q;
            w->qcap = nc;
            w->qhead = 0;
        }
    }
    if (rc == CORDON_OK) {
        w->q[(w->qhead + w->qlen) % w->qcap] = p;
        w->qlen++;
        w->qbytes += (size_t)p->size;
        w->npkts++;
        pthread_cond_broadcast(&s->cv_work);
    }
    pthread_mutex_unlock(&s->mu);
    if (rc)
        av_packet_free(&p);
    return rc;
}

/* Waits for an idle worker and gives it the stretch [start, end) of decode
 * positions (its state is reset here: an idle worker does not touch
 * it). Returns the first error of any worker. */
static int seg_take(segs_t *s, uint64_t start, uint64_t end, segw_t **out)
{
    pthread_mutex_lock(&s->mu);
    segw_t *w = NULL;
    while (!s->err && !w) {
        for (int i = 0; i < s->nw && !w; i++)
            if (!s->w[i].busy)
                w = &s->w[i];
        if (!w)
            pthread_cond_wait(&s->cv_free, &s->mu);
    }
    int rc = s->err;
    if (rc == CORDON_OK) {
        w->v.npend = 0;
        w->v.last_pts = AV_NOPTS_VALUE;
        w->v.next = start;
        w->v.packets = start;
        w->v.seg_end = end;
        w->v.dropping = 0;
        w->start = start;
        w->npkts = 0;
        w->complete = 0;
        w->busy = 1;
    }
    pthread_mutex_unlock(&s->mu);
    *out = rc == CORDON_OK ? w : NULL;
    return rc;
}

/* Marks w's stretch complete (w may be NULL) and returns the first error. */
static int seg_close(segs_t *s, segw_t *w)
{
    pthread_mutex_lock(&s->mu);
    if (w) {
        w->complete = 1;
        pthread_cond_broadcast(&s->cv_work);
    }
    int rc = s->err;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Waits until every worker is idle; returns the first error. */
static int seg_wait(segs_t *s)
{
    pthread_mutex_lock(&s->mu);
    for (;;) {
        int busy = 0;
        for (int i = 0; i < s->nw; i++)
            busy |= s->w[i].busy;
        if (s->err || !busy)
            break;
        pthread_cond_wait(&s->cv_free, &s->mu);
    }
    int rc = s->err;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Appends the workers' frames to v's output in frame order (each worker's
 * own list is in order: it took its stretches in order). */
static int seg_merge(vctx_t *v, segs_t *s)
{
    size_t total = 0;
    for (int i = 0; i < s->nw; i++)
        total += s->w[i].v.count;
    if (total == 0)
        return CORDON_OK;
    v->frames = malloc(total * sizeof *v->frames);
    if (!v->frames)
        return CORDON_ENOMEM;
    v->cap = total;
    if (v->o->dihedral && !(v->dih = malloc(total * sizeof *v->dih)))
        return CORDON_ENOMEM;
    size_t *at = calloc((size_t)s->nw, sizeof *at);
    if (!at)
        return CORDON_ENOMEM;
    for (size_t k = 0; k < total; k++) {
        int best = -1;
        for (int i = 0; i < s->nw; i++) {
            const vctx_t *w = &s->w[i].v;
            if (at[i] < w->count &&
                (best < 0 || w->frames[at[i]].frame_number <
                                 s->w[best].v.frames[at[best]].frame_number))
                best = i;
        }
        const vctx_t *w = &s->w[best].v;
        v->frames[k] = w->frames[at[best]];
        if (v->dih)
            memcpy(v->dih[k], w->dih[at[best]], sizeof v->dih[k]);
        at[best]++;
    }
    free(at);
    v->count = total;
    return CORDON_OK;
}

/* Stops and joins the workers; after it their state can be read. */
static void seg_stop(segs_t *s)
{
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_broadcast(&s->cv_work);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->nw; i++)
        if (s->w[i].started) {
            pthread_join(s->w[i].tid, NULL);
            s->w[i].started = 0;
        }
}

static void segs_free(segs_t *s)
{
    seg_stop(s);
    for (int i = 0; i < s->nw; i++) {
        segw_t *w = &s->w[i];
        for (size_t j = 0; j < w->qlen; j++)
            av_packet_free(&w->q[(w->qhead + j) % w->qcap]);
        free(w->q);
        vctx_free(&w->v);
    }
    pthread_cond_destroy(&s->cv_free);
    pthread_cond_destroy(&s->cv_work);
    pthread_mutex_destroy(&s->mu);
    free(s->w);
}

static int seg_start_workers(vctx_t *v, segs_t *s, int nthreads)
{
    s->w = calloc((size_t)nthreads, sizeof *s->w);
    if (!s->w)
        return CORDON_ENOMEM;
    for (int i = 0; i < nthreads; i++) {
        segw_t *w = &s->w[i];
        s->nw++;
        w->s = s;
        /* Numbering state is reset per stretch (seg_take); a worker never
         * demuxes, so it needs no format context. */
        w->v.o = v->o;
        w->v.st = v->st;
        w->v.fps = v->fps;
        w->v.interval = v->interval;
        w->v.mode = v->mode;
        int rc = open_decoder(&w->v, 1);
        if (rc)
            return rc;
        if (!(w->v.frame = av_frame_alloc()))
            return CORDON_ENOMEM;
        if (pthread_create(&w->tid, NULL, seg_worker, w) != 0)
            return CORDON_ENOMEM;
        w->started = 1;
    }
    return CORDON_OK;
}

/* Checks packet x (in v->pkt) against the plan and, where a stretch
 * starts, completes the previous one and finds a worker for the new one
 * (none if the stretch holds no sampled frame). */
static int seg_route(vctx_t *v, segs_t *s, uint64_t x, size_t *si,
                     segw_t **cur)
{
    int rc = check_frame_limits(v, x);
    if (rc)
        return rc;
    const AVIndexEntry *e = avformat_index_get_entry(v->st, (int)x);
    if (!e || e->timestamp != v->pkt->dts)
        return RESTART;
    if (x > 0) {
        if (*si + 1 >= v->ncuts || x != v->cuts[*si + 1])
            return CORDON_OK;
        (*si)++;
        if (!(v->pkt->flags & AV_PKT_FLAG_KEY) ||
            !has_idr(v->st->codecpar, v->pkt->data, v->pkt->size))
            return RESTART;
    }
    if ((rc = seg_close(s, *cur)) != CORDON_OK)
        return rc;
    *cur = NULL;
    uint64_t end =
        *si + 1 < v->ncuts ? v->cuts[*si + 1] : (uint64_t)v->st->nb_frames;
    if (v->o->skip_unsampled && !any_sampled(v, x, end))
        return CORDON_OK;
    return seg_take(s, x, end, cur);
}

/*
 * Demuxes the input and decodes the planned stretches on up to nthreads
 * workers. The packets must follow the index (each one's decode time is
 * checked) and each cut must be an IDR keyframe (checked on the packet);
 * otherwise RESTART.
 */
static int decode_segments(vctx_t *v, int nthreads)
{
    segs_t s;
    memset(&s, 0, sizeof s);
    if (pthread_mutex_init(&s.mu, NULL) != 0)
        return CORDON_ENOMEM;
    pthread_cond_init(&s.cv_work, NULL);
    pthread_cond_init(&s.cv_free, NULL);
    int rc = seg_start_workers(
        v, &s, nthreads < (int)v->ncuts ? nthreads : (int)v->ncuts);
    segw_t *cur = NULL;
    size_t si = 0;
    int got;
    while (rc == CORDON_OK && (rc = next_packet(v, &got)) == CORDON_OK && got) {
        rc = seg_route(v, &s, v->packets++, &si, &cur);
        if (rc == CORDON_OK && cur)
            rc = seg_push(&s, cur, v->pkt);
        av_packet_unref(v->pkt);
    }
    if (rc == CORDON_OK)
        rc = seg_close(&s, cur);
    if (rc == CORDON_OK)
        rc = seg_wait(&s);
    seg_stop(&s);
    v->next = v->packets;
    for (int i = 0; i < s.nw; i++) {
        v->decoded += s.w[i].v.decoded;
        v->warnings |= s.w[i].v.warnings;
    }
    if (rc == CORDON_OK)
        rc = seg_merge(v, &s);
    if (rc == CORDON_OK && ended_early(v))
        v->warnings |= CORDON_VIDEO_WARN_TRUNCATED;
    segs_free(&s);
    return rc;
}

/* One complete attempt over the input. allow_skip 0 decodes every frame. */
static int hash_once(src_t *src, const cordon_video_opts_t *o, int allow_skip,
                     cordon_video_hashes_t *out)
{
    AVFormatContext *fmt = NULL;
    AVIOContext *io = NULL;
    vctx_t v;
    memset(&v, 0, sizeof v);
    v.o = o;
    v.last_pts = AV_NOPTS_VALUE;
    v.max_ts = AV_NOPTS_VALUE;
    int rc;

    if ((rc = src_rewind(src)) != CORDON_OK)
        return rc;
    if ((rc = open_input(src, &fmt, &io)) != CORDON_OK)
        return rc;
    v.fmt = fmt;
    int err = avformat_find_stream_info(fmt, NULL);
    if (err < 0) {
        rc = err == AVERROR(ENOMEM) ? CORDON_ENOMEM : CORDON_EFORMAT;
        goto fail;
    }
    v.st = first_video(fmt);
    if (!v.st) {
        rc = CORDON_ENOVIDEO;
        goto fail;
    }
    const AVCodecParameters *par = v.st->codecpar;
    if (too_big(o, par->width, par->height)) {
        rc = CORDON_ELIMIT_PIXELS;
        goto fail;
    }
    double dur = header_duration(fmt, v.st);
    v.duration = dur;
    if (o->max_duration > 0 && dur > o->max_duration) {
        rc = CORDON_ELIMIT_DURATION;
        goto fail;
    }
    if (o->max_frames && v.st->nb_frames > 0 &&
        (uint64_t)v.st->nb_frames > o->max_frames) {
        rc = CORDON_ELIMIT_FRAMES;
        goto fail;
    }
    v.fps = stream_fps(v.st);
    if (!(v.fps > 0) || !isfinite(v.fps)) {
        rc = CORDON_ECORRUPT;
        goto fail;
    }
    double per = o->seconds_per_hash > 0 ? o->seconds_per_hash * v.fps : 0;
    v.interval = per >= 1 && per < INT_MAX ? (int)per : 1;
    if (per >= INT_MAX)
        v.interval = INT_MAX;

    v.pkt = av_packet_alloc();
    v.frame = av_frame_alloc();
    if (!v.pkt || !v.frame) {
        rc = CORDON_ENOMEM;
        goto fail;
    }
    /* Only H.264 is known here to drop non-reference frames cleanly with
     * one frame per packet; interlaced field pairs may span packets. */
    int h264 = par->codec_id == AV_CODEC_ID_H264 &&
               (par->field_order == AV_FIELD_PROGRESSIVE ||
                par->field_order == AV_FIELD_UNKNOWN);
    int nthreads = total_threads(o);
    v.mode = MODE_PLAIN;
    if (allow_skip && o->skip_unsampled && v.interval > 1 && h264)
        v.mode = MODE_TRACK;
    if ((v.mode == MODE_TRACK || (allow_skip && h264 && nthreads > 1)) &&
        (rc = load_keys(&v)) != CORDON_OK)
        goto fail;
    int split = allow_skip && h264 ? plan_segments(&v, src, nthreads) : 0;
    if (split < 0) {
        rc = split;
        goto fail;
    }
    if (split) {
        rc = decode_segments(&v, nthreads);
    } else {
        if ((rc = open_decoder(&v, decoder_threads(o, v.interval))) !=
            CORDON_OK)
            goto fail;
        if (nthreads > 1 && (rc = pool_create(nthreads, v.fps, &v.frames,
                                              &v.dih, &v.pool)) != CORDON_OK)
            goto fail;
        rc = decode_all(&v);
        if (rc == CORDON_OK && v.pool)
            rc = pool_wait(v.pool);
    }
    if (rc)
        goto fail;
    if (v.count == 0) {
        if (v.warnings & CORDON_VIDEO_WARN_CORRUPT)
            rc = CORDON_ECORRUPT;
        else if (v.warnings & CORDON_VIDEO_WARN_TRUNCATED)
            rc = CORDON_ETRUNC;
        else
            rc = CORDON_EDECODE;
        goto fail;
    }

    out->frames = v.frames;
    out->dihedral = v.dih;
    out->count = v.count;
    v.frames = NULL;
    v.dih = NULL;
    out->fps = v.fps;
    out->frame_interval = v.interval;
    out->duration = dur > 0 ? dur : (double)v.next / v.fps;
    out->width = par->width;
    out->height = par->height;
    out->frame_count = v.next;
    out->frames_decoded = v.decoded;
    out->warnings = v.warnings;
    out->segments = split ? (unsigned)v.ncuts : 0;
    const AVCodec *dec = avcodec_find_decoder(par->codec_id);
    snprintf(out->codec, sizeof out->codec, "%s", dec ? dec->name : "");
    snprintf(out->container, sizeof out->container, "%s", fmt->iformat->name);
    rc = CORDON_OK;
fail:
    vctx_free(&v);
    close_input(&fmt, &io);
    return rc;
}

static int hash_src(src_t *src, const cordon_video_opts_t *opts,
                    cordon_video_hashes_t *out)
{
    cordon_video_opts_t o;
    if (!out)
        return CORDON_EINVAL;
    memset(out, 0, sizeof *out);
    if (opts)
        o = *opts;
    else
        cordon_video_opts_default(&o);
    if (!(o.seconds_per_hash >= 0) || !isfinite(o.seconds_per_hash) ||
        o.threads < 0)
        return CORDON_EINVAL;
    src->denied = 0;
    int rc = hash_once(src, &o, 1, out);
    if (rc == RESTART) {
        memset(out, 0, sizeof *out);
        rc = hash_once(src, &o, 0, out);
        if (rc == CORDON_OK)
            out->warnings |= CORDON_VIDEO_WARN_REDECODED;
    }
    if (rc != CORDON_OK) {
        memset(out, 0, sizeof *out);
        /* Whatever failed after a refused nested open, that is the cause. */
        if (src->denied && rc != CORDON_ENOMEM)
            rc = CORDON_EPERM;
    }
    return rc;
}

/* ---- Public ------------------------------------------------------------ */

void cordon_video_opts_default(cordon_video_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->seconds_per_hash = 1.0;
    o->threads = 0;
    o->skip_unsampled = 1;
    o->max_bytes = CORDON_VIDEO_DEFAULT_MAX_BYTES;
    o->max_duration = CORDON_VIDEO_DEFAULT_MAX_DURATION;
    o->max_frames = CORDON_VIDEO_DEFAULT_MAX_FRAMES;
    o->max_width = CORDON_VIDEO_DEFAULT_MAX_SIDE;
    o->max_height = CORDON_VIDEO_DEFAULT_MAX_SIDE;
    o->max_pixels = CORDON_VIDEO_DEFAULT_MAX_PIXELS;
}

int cordon_video_hash_file(const char *path, const cordon_video_opts_t *opts,
                           cordon_video_hashes_t *out)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!path || !out)
        return CORDON_EINVAL;
    src_t src;
    memset(&src, 0, sizeof src);
    src.fp = fopen(path, "rb");
    if (!src.fp)
        return errno == ENOMEM ? CORDON_ENOMEM : CORDON_EIO;
    struct stat sb;
    int rc;
    if (fstat(fileno(src.fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        rc = CORDON_EIO;
        goto fail;
    }
    src.fsize = (int64_t)sb.st_size;
    if (src.fsize == 0) {
        rc = CORDON_EEMPTY;
        goto fail;
    }
    if (opts && opts->max_bytes && (uint64_t)src.fsize > opts->max_bytes) {
        rc = CORDON_ELIMIT_BYTES;
        goto fail;
    }
    if (!opts && (uint64_t)src.fsize > CORDON_VIDEO_DEFAULT_MAX_BYTES) {
        rc = CORDON_ELIMIT_BYTES;
        goto fail;
    }
    rc = hash_src(&src, opts, out);
fail:
    fclose(src.fp);
    return rc;
}

int cordon_video_hash_buffer(const uint8_t *buf, size_t len,
                             const cordon_video_opts_t *opts,
                             cordon_video_hashes_t *out)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!out || (!buf && len))
        return CORDON_EINVAL;
    if (len == 0)
        return CORDON_EEMPTY;
    uint64_t max = opts ? opts->max_bytes : CORDON_VIDEO_DEFAULT_MAX_BYTES;
    if (max && (uint64_t)len > max)
        return CORDON_ELIMIT_BYTES;
    src_t src;
    memset(&src, 0, sizeof src);
    src.buf = buf;
    src.len = len;
    return hash_src(&src, opts, out);
}

void cordon_video_hashes_free(cordon_video_hashes_t *h)
{
    if (!h)
        return;
    free(h->frames);
    free(h->dihedral);
    memset(h, 0, sizeof *h);
}

/* Demuxers that read single images, by name. */
static int image_demuxer(const char *name)
{
    size_t n = strlen(name);
    if (n >= 5 && strcmp(name + n - 5, "_pipe") == 0)
        return 1;
    static const char *const still[] = {"image2", "gif",  "apng", "ico", "webp",
                                        "bmp",    "tiff", "png",  "jpeg"};
    for (size_t i = 0; i < sizeof still / sizeof still[0]; i++)
        if (strcmp(name, still[i]) == 0)
            return 1;
    return 0;
}

int cordon_video_sniff(const uint8_t *buf, size_t len)
{
    if (!buf || len == 0)
        return 0;
    if (cordon_sniff_image(buf, len) != CORDON_FMT_UNKNOWN)
        return 0;
    /* Probing wants zeroed padding after the data; 1 MiB is plenty for
     * every demuxer's signature. */
    size_t n = len < (1u << 20) ? len : (1u << 20);
    uint8_t *p = av_mallocz(n + AVPROBE_PADDING_SIZE);
    if (!p)
        return 0;
    memcpy(p, buf, n);
    AVProbeData pd = {.filename = "", .buf = p, .buf_size = (int)n};
    int score = 0;
    const AVInputFormat *f = av_probe_input_format3(&pd, 1, &score);
    av_free(p);
    return f && score > AVPROBE_SCORE_RETRY && !image_demuxer(f->name);
}
