/*
 * ffmpeg_still.c - stills that are neither JPEG nor PNG (WebP, GIF's first
 * frame, BMP, TIFF, ...) decoded through FFmpeg from memory.
 */
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include "cordon_error.h"
#include "decode_internal.h"
#include "ffmpeg_internal.h"

/* Grey formats are used as luma directly, like greyscale JPEG and PNG. */
static int is_grey(enum AVPixelFormat f)
{
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f);
    return d && d->nb_components <= 2 && !(d->flags & AV_PIX_FMT_FLAG_PAL) &&
           !(d->flags & AV_PIX_FMT_FLAG_RGB) && d->log2_chroma_w == 0 &&
           d->log2_chroma_h == 0 && f != AV_PIX_FMT_NONE &&
           (d->nb_components == 1 || (d->flags & AV_PIX_FMT_FLAG_ALPHA));
}

static int first_frame(AVFormatContext *fmt, AVCodecContext *cc, int stream,
                       AVFrame *frame)
{
    AVPacket *pkt = av_packet_alloc();
    if (!pkt)
        return CORDON_ENOMEM;
    int rc = CORDON_ECORRUPT;
    int err;
    while ((err = av_read_frame(fmt, pkt)) >= 0) {
        if (pkt->stream_index != stream) {
            av_packet_unref(pkt);
            continue;
        }
        err = avcodec_send_packet(cc, pkt);
        av_packet_unref(pkt);
        if (err < 0 && err != AVERROR(EAGAIN)) {
            rc = cordon__av_err(err);
            goto done;
        }
        err = avcodec_receive_frame(cc, frame);
        if (err == 0) {
            rc = CORDON_OK;
            goto done;
        }
        if (err != AVERROR(EAGAIN)) {
            rc = cordon__av_err(err);
            goto done;
        }
    }
    /* End of input: drain the decoder for a frame it still holds. */
    avcodec_send_packet(cc, NULL);
    err = avcodec_receive_frame(cc, frame);
    rc = err == 0 ? CORDON_OK : CORDON_ETRUNC;
done:
    av_packet_free(&pkt);
    return rc;
}

int cordon__decode_ffmpeg_still(cordon_decoder_t *d, const uint8_t *buf,
                                size_t len,
                                cordon_format_t fmtid,
                                const cordon_decode_opts_t *o,
                                cordon_image_t *out)
{
    cordon__memsrc_t src = {buf, len, 0};
    AVFormatContext *fmt = NULL;
    AVCodecContext *cc = NULL;
    AVFrame *frame = NULL;
    struct SwsContext *sws = NULL;
    uint8_t *px;
    int rc;

    /* The demuxer follows from the sniffed format: never a probe, so bytes
     * that claim to be a GIF cannot reach a playlist or nested-file
     * demuxer. */
    const char *demuxer = fmtid == CORDON_FMT_GIF    ? "gif"
                          : fmtid == CORDON_FMT_WEBP ? "webp_pipe"
                          : fmtid == CORDON_FMT_BMP  ? "bmp_pipe"
                                                     : "tiff_pipe";
    if ((rc = cordon__avformat_open_mem(&src, demuxer, &fmt)) != CORDON_OK)
        return rc;
    int stream = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (stream < 0) {
        rc = CORDON_EFORMAT;
        goto fail;
    }
    AVCodecParameters *par = fmt->streams[stream]->codecpar;
    if (par->width > 0 && par->height > 0 &&
        (rc = cordon__check_dims(o, par->width, par->height)) != CORDON_OK)
        goto fail;
    const AVCodec *codec = avcodec_find_decoder(par->codec_id);
    if (!codec) {
        rc = CORDON_EFORMAT;
        goto fail;
    }
    cc = avcodec_alloc_context3(codec);
    frame = av_frame_alloc();
    if (!cc || !frame) {
        rc = CORDON_ENOMEM;
        goto fail;
    }
    if (avcodec_parameters_to_context(cc, par) < 0) {
        rc = CORDON_ENOMEM;
        goto fail;
    }
    cc->thread_count = 1;
    /* The decoder refuses to allocate beyond our pixel limit itself. */
    if (o->max_pixels)
        cc->max_pixels = (int64_t)o->max_pixels;
    if (avcodec_open2(cc, codec, NULL) < 0) {
        rc = CORDON_EFORMAT;
        goto fail;
    }
    if ((rc = first_frame(fmt, cc, stream, frame)) != CORDON_OK)
        goto fail;
    if ((rc = cordon__check_dims(o, frame->width, frame->height)) != CORDON_OK)
        goto fail;

    enum AVPixelFormat src_fmt = frame->format;
    int grey = is_grey(src_fmt);
    enum AVPixelFormat dst_fmt = grey ? AV_PIX_FMT_GRAY8 : AV_PIX_FMT_RGB24;
    int w = frame->width, h = frame->height;
    size_t stride = (size_t)w * (grey ? 1 : 3);
    px = cordon__decoder_reserve(d, stride * (size_t)h);
    if (!px) {
        rc = CORDON_ENOMEM;
        goto fail;
    }
    /* Same size in and out: swscale only converts the pixel format.
     * Accurate rounding and full-resolution chroma keep it close to what
     * an image library's own converter produces. */
    sws = sws_getContext(w, h, src_fmt, w, h, dst_fmt,
                         SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT,
                         NULL, NULL, NULL);
    if (!sws) {
        rc = CORDON_EFORMAT;
        goto fail;
    }
    uint8_t *dst[4] = {px, NULL, NULL, NULL};
    int dst_stride[4] = {(int)stride, 0, 0, 0};
    if (sws_scale(sws, (const uint8_t *const *)frame->data, frame->linesize,
                  0, h, dst, dst_stride) != h) {
        rc = CORDON_EDECODE;
        goto fail;
    }
    out->pixels = px;
    out->width = w;
    out->height = h;
    out->stride = stride;
    out->pixfmt = grey ? CORDON_PIX_GRAY8 : CORDON_PIX_RGB8;
    out->src_width = w;
    out->src_height = h;
    out->format = fmtid;
    out->scale = 1;
    rc = CORDON_OK;
fail:
    sws_freeContext(sws);
    av_frame_free(&frame);
    avcodec_free_context(&cc);
    cordon__avformat_close_mem(&fmt);
    return rc;
}
