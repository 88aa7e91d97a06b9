#include <libavutil/error.h>
#include <libavutil/mem.h>

#include "cordon_error.h"
#include "ffmpeg_internal.h"

#define AVIO_BUF 32768

static int mem_read(void *opaque, uint8_t *dst, int n)
{
    cordon__memsrc_t *s = opaque;
    size_t left = s->len - s->pos;
    if (left == 0)
        return AVERROR_EOF;
    size_t k = (size_t)n < left ? (size_t)n : left;
    memcpy(dst, s->buf + s->pos, k);
    s->pos += k;
    return (int)k;
}

static int64_t mem_seek(void *opaque, int64_t off, int whence)
{
    cordon__memsrc_t *s = opaque;
    int64_t base;
    switch (whence & ~AVSEEK_FORCE) {
    case AVSEEK_SIZE:
        return (int64_t)s->len;
    case SEEK_SET:
        base = 0;
        break;
    case SEEK_CUR:
        base = (int64_t)s->pos;
        break;
    case SEEK_END:
        base = (int64_t)s->len;
        break;
    default:
        return AVERROR(EINVAL);
    }
    if (off > (int64_t)s->len - base || base + off < 0)
        return AVERROR(EINVAL);
    s->pos = (size_t)(base + off);
    return (int64_t)s->pos;
}

int cordon__avformat_open_mem(cordon__memsrc_t *src, const char *demuxer,
                              AVFormatContext **fmt_out)
{
    AVFormatContext *fmt = NULL;
    AVIOContext *io = NULL;
    uint8_t *iobuf = av_malloc(AVIO_BUF);
    if (!iobuf)
        return CORDON_ENOMEM;
    io = avio_alloc_context(iobuf, AVIO_BUF, 0, src, mem_read, NULL, mem_seek);
    if (!io) {
        av_free(iobuf);
        return CORDON_ENOMEM;
    }
    fmt = avformat_alloc_context();
    if (!fmt) {
        av_freep(&io->buffer);
        avio_context_free(&io);
        return CORDON_ENOMEM;
    }
    const AVInputFormat *ifmt = NULL;
    if (demuxer && !(ifmt = av_find_input_format(demuxer))) {
        avformat_free_context(fmt);
        av_freep(&io->buffer);
        avio_context_free(&io);
        return CORDON_EFORMAT;
    }
    fmt->pb = io;
    fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    /* Stills never open other files or URLs: no protocols at all. */
    fmt->protocol_whitelist = av_strdup("");
    int err = avformat_open_input(&fmt, NULL, ifmt, NULL);
    if (err < 0) {
        /* avformat_open_input frees fmt on failure, but not custom IO. */
        av_freep(&io->buffer);
        avio_context_free(&io);
        return err == AVERROR(ENOMEM) ? CORDON_ENOMEM : CORDON_EFORMAT;
    }
    *fmt_out = fmt;
    return CORDON_OK;
}

void cordon__avformat_close_mem(AVFormatContext **fmt)
{
    if (!fmt || !*fmt)
        return;
    AVIOContext *io = (*fmt)->pb;
    avformat_close_input(fmt);
    if (io) {
        av_freep(&io->buffer);
        avio_context_free(&io);
    }
}

int cordon__av_err(int averr)
{
    if (averr >= 0)
        return CORDON_OK;
    if (averr == AVERROR(ENOMEM))
        return CORDON_ENOMEM;
    if (averr == AVERROR_EOF)
        return CORDON_ETRUNC;
    if (averr == AVERROR_INVALIDDATA)
        return CORDON_ECORRUPT;
    if (averr == AVERROR_DECODER_NOT_FOUND ||
        averr == AVERROR_DEMUXER_NOT_FOUND || averr == AVERROR_PATCHWELCOME)
        return CORDON_EFORMAT;
    return CORDON_EDECODE;
}
