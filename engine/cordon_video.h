/*
 * cordon_video.h - vPDQ: video hashing with FFmpeg and frame-list matching,
 * compatible with the ThreatExchange vPDQ reference.
 *
 * Caveats:
 * - Frame hashes are PDQ hashes of the decoded luma. For 8-bit YUV video the
 *   Y plane is hashed in place (no colour conversion); limited-range ("TV")
 *   luma is first stretched to full range, because the reference hashes
 *   the luma of an RGB conversion and its quality numbers depend on the
 *   contrast (hashing raw TV-range Y drops frames below quality 50 that the
 *   reference keeps). Other pixel formats (RGB, palette, high bit depth,
 *   packed YUV) go through swscale to RGB24, as in the reference.
 *   Hashes therefore differ from the reference by a few bits per frame; they
 *   agree at the match level (quality >= 50, distance <= 31). See
 *   tests/test_video.c for the measured agreement.
 * - Frame numbers count the frames a full decode outputs, in presentation
 *   order, from 0, as the reference does. To go faster, unsampled
 *   non-reference H.264 frames are not decoded at all; frame numbers stay
 *   exact because every packet's presentation time is tracked. If a stream
 *   breaks the assumptions that makes safe (one frame per packet, unique
 *   and ordered timestamps) or turns out damaged after frames were skipped,
 *   the input is decoded again without skipping (WARN_REDECODED). The
 *   result is identical with skipping on or off, and for any thread count
 *   (on damaged input FFmpeg's frame threads may conceal errors
 *   differently from a single thread, so hashes of damaged frames can
 *   differ there).
 * - With threads > 1 (the default uses every CPU), H.264 in an indexed
 *   container (MP4, MOV) is cut at its IDR keyframes and the stretches
 *   between them are decoded side by side, each by its own single-threaded
 *   decoder that also hashes its frames; the calling thread demuxes.
 *   Stretches without a sampled frame are not decoded at all. Each stretch
 *   checks that it produced one frame per packet; if not, or if the cuts
 *   are not what the index said, the input is decoded again in order
 *   (WARN_REDECODED). cordon_video_hashes_t.segments tells which way ran.
 *   When there are too few IDR frames for that to pay (less than 1.5x
 *   over one decoder, the longest stretch bounding it), and for other
 *   codecs and containers, the calling thread runs one decoder while a
 *   pool of `threads` worker threads hashes sampled frames (decoded frames
 *   are handed over by reference, not copied; at most two per worker are
 *   in flight). FFmpeg's decoder then gets frame threads from the same
 *   budget, fewer the more frames are hashed: with 2 threads and every
 *   frame hashed it decodes on one thread, since frame threading costs
 *   30-50% more CPU and PDQ work already fills the second core. The
 *   calling thread blocks until the result is complete.
 * - Timestamps are frame_number / fps computed in single precision, as the
 *   reference does (not the container's presentation times). fps is the
 *   stream's average frame rate, else its real base frame rate.
 * - Damaged input: a stream that is truncated or has corrupt packets yields
 *   the hashes of every frame that decoded, CORDON_OK, and a warning bit in
 *   cordon_video_hashes_t.warnings. Only when no frame at all could be
 *   hashed is it an error (CORDON_ETRUNC, CORDON_ECORRUPT, CORDON_EDECODE).
 * - Limits (bytes, duration, frames, width, height, pixels) are checked from
 *   the headers before decoding and again on every frame, because headers
 *   lie. Exceeding one is an error (CORDON_ELIMIT_*), with no partial result.
 * - Matching follows python-threatexchange: the percentages are over the
 *   DISTINCT frame hashes of quality >= 50 on each side (identical hashes
 *   count once), and a frame matches at distance <= 31 (inclusive). The
 *   reference C++ matcher instead counts duplicates and uses distance < 31.
 * - Untrusted input: demuxers that would open further files or URLs named
 *   inside the media (HLS, DASH, concat playlists) are refused every nested
 *   open; a file path is always read as a local file.
 * - The library never changes FFmpeg's process-wide log level, so FFmpeg's
 *   default logger may print complaints about damaged input to stderr;
 *   programs that must stay quiet call av_log_set_level(AV_LOG_QUIET).
 */
#ifndef CORDON_VIDEO_H
#define CORDON_VIDEO_H

#include <stddef.h>
#include <stdint.h>

#include "cordon_error.h"
#include "cordon_pdq.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CORDON_VIDEO_DEFAULT_MAX_BYTES (4ull << 30)      /* 4 GiB */
#define CORDON_VIDEO_DEFAULT_MAX_DURATION (4.0 * 3600.0) /* seconds */
#define CORDON_VIDEO_DEFAULT_MAX_FRAMES 2000000ull
#define CORDON_VIDEO_DEFAULT_MAX_SIDE 8192
#define CORDON_VIDEO_DEFAULT_MAX_PIXELS (8192ull * 4352ull)

/* The reference's matching defaults. */
#define CORDON_VPDQ_QUALITY_MIN 50
#define CORDON_VPDQ_DISTANCE_MAX 31
#define CORDON_VPDQ_MATCH_PERCENT 80.0

typedef struct {
    /* One hash every seconds_per_hash seconds: frame n is hashed when
     * n % max(1, (int)(seconds_per_hash * fps)) == 0. 0 hashes every
     * frame. Default 1. */
    double seconds_per_hash;
    /* Decoder threads: 0 = as many as CPUs (capped at 16), 1 = none. */
    int threads;
    /* Non-zero (default): do not decode unsampled non-reference frames
     * where the codec allows it. Results are identical either way. */
    int skip_unsampled;
    /* Limits; 0 means "no limit" for each. */
    uint64_t max_bytes;  /* size of the file or buffer */
    double max_duration; /* seconds, from headers and frame times */
    uint64_t max_frames; /* frames of a full decode */
    int max_width;       /* of any decoded frame */
    int max_height;
    uint64_t max_pixels; /* width * height of any decoded frame */
    /* Non-zero: also derive the eight dihedral hashes of every hashed
     * frame (cordon_video_hashes_t.dihedral), from the frame's DCT with no
     * extra pass over the pixels. Default 0. */
    int dihedral;
} cordon_video_opts_t;

/* One hashed frame. */
typedef struct {
    cordon_hash256_t hash;
    int32_t frame_number; /* 0-based, presentation order */
    int32_t quality;      /* 0..100 */
    double timestamp;     /* seconds: (float)frame_number / (float)fps */
} cordon_vpdq_frame_t;

/* Bits of cordon_video_hashes_t.warnings. */
enum {
    /* The stream ended early: a read error, a short or corrupt packet, or
     * fewer packets than the header announced. */
    CORDON_VIDEO_WARN_TRUNCATED = 1u << 0,
    /* The decoder rejected some packets or flagged frames as corrupt. */
    CORDON_VIDEO_WARN_CORRUPT = 1u << 1,
    /* Frame skipping had to be abandoned and the input decoded again in
     * full (the result is still exact; this only explains the time). */
    CORDON_VIDEO_WARN_REDECODED = 1u << 2,
};

typedef struct {
    cordon_vpdq_frame_t *frames; /* owned: cordon_video_hashes_free() */
    /* With opts.dihedral, dihedral[i][v] is variant v (cordon_dihedral_t)
     * of frames[i]; dihedral[i][CORDON_DIH_ORIGINAL] equals frames[i].hash.
     * NULL otherwise. Owned like frames. */
    cordon_hash256_t (*dihedral)[CORDON_DIH_COUNT];
    size_t count;
    double fps;         /* the rate frame numbers are converted with */
    int frame_interval; /* n of the sampling rule (1 = every frame) */
    double duration;    /* seconds: container's, else frames / fps */
    int width;          /* from the stream header */
    int height;
    uint64_t frame_count;    /* frames a full decode outputs */
    uint64_t frames_decoded; /* frames actually decoded */
    unsigned warnings;       /* CORDON_VIDEO_WARN_* bits */
    /* Stretches between IDR frames that separate decoders took side by
     * side (0: the input was decoded in one go). */
    unsigned segments;
    char codec[32];          /* FFmpeg decoder name, e.g. "h264" */
    char container[32];      /* FFmpeg demuxer name, e.g. "mov,mp4,..." */
} cordon_video_hashes_t;

/** Fills opts with the defaults: 1 hash/s, auto threads, skipping on, and
 *  the CORDON_VIDEO_DEFAULT_* limits. */
CORDON_API void cordon_video_opts_default(cordon_video_opts_t *opts);

/**
 * Decodes and hashes a video file (any container and codec FFmpeg reads).
 *
 * @param path  file to read; the name's extension is not trusted.
 * @param opts  sampling, threads and limits; NULL for the defaults.
 * @param out   on success receives the frames (free with
 *              cordon_video_hashes_free()); on failure it is zeroed.
 * @return CORDON_OK (check out->warnings); CORDON_EINVAL; CORDON_EIO (cannot
 *         open, or not a regular file); CORDON_EEMPTY (zero bytes);
 *         CORDON_EFORMAT (not a media file FFmpeg knows, or no decoder);
 *         CORDON_ECORRUPT (a recognised container whose headers cannot be
 *         read, e.g. an MP4 cut before its index); CORDON_ENOVIDEO (no
 *         video stream); CORDON_ELIMIT_BYTES, _DURATION, _FRAMES, _PIXELS
 *         (the last for width, height or pixel count); CORDON_ETRUNC /
 *         CORDON_ECORRUPT / CORDON_EDECODE (no frame could be hashed);
 *         CORDON_EPERM (a playlist-like input asked to open other files or
 *         URLs, which is refused); CORDON_ENOMEM.
 */
CORDON_API int cordon_video_hash_file(const char *path,
                                      const cordon_video_opts_t *opts,
                                      cordon_video_hashes_t *out);

/**
 * As cordon_video_hash_file(), from bytes in memory (an upload). The bytes
 * are read through a custom AVIOContext with seeking, so containers that
 * keep their index at the end (MP4 without "faststart") work.
 *
 * @param buf, len  the encoded video; only read, and not retained.
 */
CORDON_API int cordon_video_hash_buffer(const uint8_t *buf, size_t len,
                                        const cordon_video_opts_t *opts,
                                        cordon_video_hashes_t *out);

/** Releases the frames of a result and zeroes it; safe on a zeroed one. */
CORDON_API void cordon_video_hashes_free(cordon_video_hashes_t *h);

/**
 * Tells a CLI or server which hasher to route bytes to, from their start
 * (a few KiB suffice). Returns 1 if FFmpeg recognises a container or
 * stream format that is not a still image, else 0. Still images (JPEG, PNG,
 * GIF, WebP, BMP, TIFF) return 0: send them to cordon_decode_image().
 * Audio-only containers also return 1; hashing them gives CORDON_ENOVIDEO.
 */
CORDON_API int cordon_video_sniff(const uint8_t *buf, size_t len);

/* ---- Matching --------------------------------------------------------- */

typedef struct {
    int quality_min;      /* frames below are ignored (default 50) */
    int distance_max;     /* frames match at distance <= this (31) */
    double match_percent; /* decision threshold on the query side (80) */
} cordon_vpdq_match_opts_t;

typedef struct {
    size_t query_count;   /* distinct query hashes of enough quality */
    size_t query_matched; /* of those, how many match some target frame */
    size_t target_count;  /* the same for the target */
    size_t target_matched;
    double query_percent; /* 100 * query_matched / query_count, or 0 */
    double target_percent;
    int is_match; /* query_percent >= match_percent */
} cordon_vpdq_match_t;

/** Fills opts with the reference defaults (50, 31, 80%). */
CORDON_API void cordon_vpdq_match_opts_default(cordon_vpdq_match_opts_t *o);

/**
 * Compares a query video's frames with a target's. Each side is filtered by
 * quality and then deduplicated by hash; a side left empty gives 0% and no
 * match. Cost: O(nq * nt) Hamming distances in the worst case (a matched
 * frame stops at its first hit), with hardware popcount where available.
 *
 * @param opts  NULL for the defaults.
 * @return CORDON_OK, CORDON_EINVAL (NULL lists with non-zero counts, NULL
 *         out) or CORDON_ENOMEM (the deduplication copies).
 */
CORDON_API int cordon_vpdq_compare(const cordon_vpdq_frame_t *query, size_t nq,
                                   const cordon_vpdq_frame_t *target, size_t nt,
                                   const cordon_vpdq_match_opts_t *opts,
                                   cordon_vpdq_match_t *out);

/* ---- Compact form ----------------------------------------------------- */

/* A run of consecutive hashed frames with the same hash and quality. */
typedef struct {
    cordon_hash256_t hash;
    int32_t quality;
    int32_t frame_number; /* of the first frame of the run */
    double timestamp;     /* of the first frame of the run */
    uint32_t count;       /* frames in the run, >= 1 */
} cordon_vpdq_run_t;

/**
 * Run-length compresses a frame list: a frame joins the current run when
 * its hash and quality equal the run's and its frame number is the run's
 * first plus count * frame_interval (so expansion restores it exactly).
 *
 * @param frame_interval  frames between consecutive hashed frames (the
 *                        frame_interval of cordon_video_hashes_t), >= 1.
 * @param runs            receives a malloc'd array (caller frees with
 *                        free()); NULL when n is 0.
 * @return CORDON_OK, CORDON_EINVAL, CORDON_ENOMEM.
 */
CORDON_API int cordon_vpdq_rle_compress(const cordon_vpdq_frame_t *frames,
                                        size_t n, int frame_interval,
                                        cordon_vpdq_run_t **runs,
                                        size_t *nruns);

/**
 * Expands runs back into frames. Frame k of a run gets frame number
 * first + k * frame_interval and, if fps > 0, the reference timestamp of
 * that number; if fps <= 0 it gets the run's first timestamp.
 *
 * @param frames  receives a malloc'd array (free()); NULL when empty.
 * @return CORDON_OK, CORDON_EINVAL, CORDON_ERANGE (frame numbers would
 *         overflow), CORDON_ENOMEM.
 */
CORDON_API int cordon_vpdq_rle_expand(const cordon_vpdq_run_t *runs,
                                      size_t nruns, int frame_interval,
                                      double fps, cordon_vpdq_frame_t **frames,
                                      size_t *n);

/** The reference timestamp of a frame: (float)frame_number / (float)fps. */
CORDON_API double cordon_vpdq_timestamp(int32_t frame_number, double fps);

/* ---- Text ------------------------------------------------------------- */

/* "2147483647,100,<64 hex>,<timestamp>" plus NUL fits in this. */
#define CORDON_VPDQ_LINE_MAX 128

/**
 * Parses one line of the reference hash-file format
 * "frame_number,quality,pdq_hex,timestamp_seconds". A trailing "\n" or
 * "\r\n" is accepted; nothing else may follow.
 *
 * @return CORDON_OK, CORDON_EINVAL, CORDON_EPARSE (wrong field count or a
 *         bad number), CORDON_EHEX (bad hash), CORDON_ERANGE (negative frame
 *         number or timestamp, quality outside 0..100).
 */
CORDON_API int cordon_vpdq_parse_line(const char *line, size_t len,
                                      cordon_vpdq_frame_t *out);

/**
 * Formats a frame as the reference does ("%d,%d,<hex>,%.3f", no newline).
 * @return the length written (excluding the NUL), or CORDON_EINVAL if
 *         size < CORDON_VPDQ_LINE_MAX.
 */
CORDON_API int cordon_vpdq_format_line(const cordon_vpdq_frame_t *f, char *buf,
                                       size_t size);

/**
 * Parses a whole hash file (lines as above; empty lines are skipped).
 *
 * @param frames    receives a malloc'd array (free()); NULL when empty.
 * @param err_line  if not NULL, receives the 1-based line of an error.
 * @return CORDON_OK or the error of the first bad line, CORDON_ENOMEM.
 */
CORDON_API int cordon_vpdq_parse_text(const char *text, size_t len,
                                      cordon_vpdq_frame_t **frames, size_t *n,
                                      size_t *err_line);

/**
 * Serialises frames as a local-file exchange vPDQ signal: a JSON list of
 * "pdqhex,quality,timestamp" strings, written byte for byte as
 * python-threatexchange writes it (json.dumps of str(feature)). Note that
 * this means timestamps keep only 3 significant digits (Python's "{:.3}",
 * so 100 s becomes "1e+02"); frame numbers are not part of the signal.
 *
 * @param json  receives a malloc'd NUL-terminated string (free()).
 * @return CORDON_OK, CORDON_EINVAL, CORDON_ENOMEM.
 */
CORDON_API int cordon_vpdq_to_json(const cordon_vpdq_frame_t *frames, size_t n,
                                   char **json, size_t *len);

/**
 * Parses a local-file exchange vPDQ signal (see cordon_vpdq_to_json()).
 * Frames are numbered by their position in the list, since the signal
 * carries no frame numbers.
 *
 * @param frames  receives a malloc'd array (free()); NULL when empty.
 * @return CORDON_OK, CORDON_EPARSE (not a JSON list of strings, or an entry
 *         without exactly three fields), CORDON_EHEX, CORDON_ERANGE,
 *         CORDON_ETOOLARGE (more than 10 million entries), CORDON_ENOMEM.
 */
CORDON_API int cordon_vpdq_from_json(const char *json, size_t len,
                                     cordon_vpdq_frame_t **frames, size_t *n);

#ifdef __cplusplus
}
#endif
#endif
