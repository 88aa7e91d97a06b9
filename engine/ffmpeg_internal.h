/* ffmpeg_internal.h - FFmpeg plumbing shared inside the engine. */
#ifndef CORDON_FFMPEG_INTERNAL_H
#define CORDON_FFMPEG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <libavformat/avformat.h>

/* A read-only, seekable view of a caller's buffer, for AVIOContext. */
typedef struct {
    const uint8_t *buf;
    size_t len;
    size_t pos;
} cordon__memsrc_t;

/*
 * Opens a demuxer over bytes in memory. `src` must outlive the returned
 * context. `demuxer` names the FFmpeg demuxer to use (no probing), or NULL
 * to let FFmpeg probe. On success *fmt_out is open; close it with
 * cordon__avformat_close_mem(). Returns CORDON_OK, CORDON_ENOMEM or
 * CORDON_EFORMAT (FFmpeg recognised nothing).
 */
int cordon__avformat_open_mem(cordon__memsrc_t *src, const char *demuxer,
                              AVFormatContext **fmt_out);

/* Closes a context from cordon__avformat_open_mem(), with its AVIO. */
void cordon__avformat_close_mem(AVFormatContext **fmt);

/* Maps an FFmpeg error code to a Cordon one. */
int cordon__av_err(int averr);

#endif
