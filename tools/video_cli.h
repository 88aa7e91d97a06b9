/*
 * video_cli.h - video plumbing shared by `cordon hash`, `add` and `match`
 * (not a public API): routing bytes to the video hasher, file digests,
 * decode warnings, and the conversions between the engine's frame lists
 * and hashdb's vPDQ signal entries.
 *
 * Caveats:
 * - Routing reads only the first VCLI_SNIFF_BYTES of a file; a video given
 *   by path is then hashed from the path (never read whole into memory),
 *   stdin ("-") from a buffer.
 * - hashdb stores no frame numbers, so frames rebuilt from a stored signal
 *   are numbered by entry position, one frame per entry (see
 *   vcli_frames_from_hdb).
 */
#ifndef CORDON_VIDEO_CLI_H
#define CORDON_VIDEO_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "cordon.h"
#include "cordon_video.h"
#include "hdb.h"

#define VCLI_SNIFF_BYTES 65536

/* One input: read enough to route it. */
typedef struct {
    int is_video; /* route to the video hasher */
    uint8_t *buf; /* whole file for images and stdin; else NULL */
    size_t len;
    int errno_; /* for CORDON_EIO */
} vcli_input_t;

/**
 * Reads path ("-" is stdin) far enough to decide image or video. Images and
 * stdin are read whole (max_image_bytes, resp. max_video_bytes for stdin
 * video; 0 = no limit); a video file is left for the path hasher.
 * @return CORDON_OK, CORDON_EIO (errno_ set), CORDON_ELIMIT_BYTES,
 *         CORDON_ENOMEM. Free with vcli_input_free().
 */
int vcli_input_read(const char *path, uint64_t max_image_bytes,
                    uint64_t max_video_bytes, vcli_input_t *in);

/**
 * vcli_input_read(), then, for an image, its hashes with h (the input is
 * freed); a video stays in *in (is_video set) for the caller to hash and
 * free. On failure nothing is left to free, and *in is what
 * vcli_input_error() needs for the message.
 * @return CORDON_OK, a vcli_input_read() error or a cordon_hasher_image()
 *         error.
 */
int vcli_read_image(const char *path, cordon_hasher_t *h,
                    const cordon_decode_opts_t *dopts,
                    const cordon_video_opts_t *vopts, vcli_input_t *in,
                    cordon_image_hashes_t *out);

/* The message for a failed vcli_input_read(): strerror for I/O errors,
 * else the Cordon error text. Static storage. */
const char *vcli_input_error(int rc, const vcli_input_t *in);
void vcli_input_free(vcli_input_t *in);

/** Hashes a video input: by path, or from in->buf for stdin. */
int vcli_hash(const char *path, const vcli_input_t *in,
              const cordon_video_opts_t *opts, cordon_video_hashes_t *out);

/** MD5 and SHA-256 of the input's bytes (mapping the file if not read). */
int vcli_digest(const char *path, const vcli_input_t *in,
                uint8_t md5[CORDON_MD5_LEN], uint8_t sha256[CORDON_SHA256_LEN]);

/** Prints decode warnings of a partial result to stderr with the path. */
void vcli_warn(const char *path, const cordon_video_hashes_t *h);

/** Parses --seconds-per-hash (a non-negative decimal); 0 or -1. */
int vcli_parse_seconds(const char *s, double *out);

/**
 * Folds a frame list into hashdb vPDQ entries (consecutive frames with the
 * same hash and quality once, with their count).
 * @param out  malloc'd array (free()); NULL when n is 0.
 * @return CORDON_OK, CORDON_ENOMEM, CORDON_ETOOLARGE (more entries than
 *         HDB_MAX_VPDQ_FRAMES), CORDON_EEMPTY (no frames).
 */
int vcli_frames_to_hdb(const cordon_video_hashes_t *h, hdb_vpdq_frame_t **out,
                       size_t *n);

/**
 * The frames of a stored vPDQ signal for cordon_vpdq_compare(): one frame
 * per entry. Run counts are not expanded because the comparison counts
 * distinct hashes, so repeats cannot change its result, and an entry's
 * count comes from the database (a signal imported from a partner could
 * claim billions of frames).
 * @param out  malloc'd array (free()); NULL when n is 0.
 */
int vcli_frames_from_hdb(const hdb_signal_t *sig, cordon_vpdq_frame_t **out,
                         size_t *n);

/** Silences FFmpeg's logger unless $CORDON_FFMPEG_LOG is set. */
void vcli_quiet_ffmpeg(void);

#endif
