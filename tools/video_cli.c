/* video_cli.c - see video_cli.h. */
#include "video_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavutil/log.h>

#include "cli.h"

void vcli_input_free(vcli_input_t *in)
{
    free(in->buf);
    memset(in, 0, sizeof *in);
}

/* Inputs that cannot be read twice (stdin, pipes): read whole. */
static int read_stream(const char *path, uint64_t max_image_bytes,
                       uint64_t max_video_bytes, vcli_input_t *in)
{
    /* Take it whole under the larger limit, then apply the image limit if
     * it turns out to be an image. */
    uint64_t lim = max_video_bytes;
    if (lim && max_image_bytes > lim)
        lim = max_image_bytes;
    if (!max_image_bytes)
        lim = 0;
    errno = 0;
    int rc = cli_read_file(path, lim, &in->buf, &in->len);
    if (rc) {
        in->errno_ = errno;
        return rc;
    }
    in->is_video = cordon_video_sniff(in->buf, in->len);
    if (!in->is_video && max_image_bytes && in->len > max_image_bytes) {
        vcli_input_free(in);
        return CORDON_ELIMIT_BYTES;
    }
    return CORDON_OK;
}

const char *vcli_input_error(int rc, const vcli_input_t *in)
{
    return rc == CORDON_EIO && in->errno_ ? strerror(in->errno_)
                                          : cordon_strerror(rc);
}

int vcli_input_read(const char *path, uint64_t max_image_bytes,
                    uint64_t max_video_bytes, vcli_input_t *in)
{
    memset(in, 0, sizeof *in);
    if (strcmp(path, "-") == 0)
        return read_stream(path, max_image_bytes, max_video_bytes, in);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        in->errno_ = errno;
        return CORDON_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        in->errno_ = errno;
        close(fd);
        return CORDON_EIO;
    }
    if (!S_ISREG(st.st_mode)) {
        /* A pipe (e.g. <(curl ...)) would lose the bytes read to sniff. */
        close(fd);
        return read_stream(path, max_image_bytes, max_video_bytes, in);
    }
    uint8_t head[VCLI_SNIFF_BYTES];
    size_t got = 0;
    while (got < sizeof head) {
        ssize_t r = read(fd, head + got, sizeof head - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            in->errno_ = errno;
            close(fd);
            return CORDON_EIO;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got > 0 && cordon_video_sniff(head, got)) {
        in->is_video = 1;
        return CORDON_OK;
    }
    errno = 0;
    int rc = cli_read_file(path, max_image_bytes, &in->buf, &in->len);
    if (rc)
        in->errno_ = errno;
    return rc;
}

int vcli_read_image(const char *path, cordon_hasher_t *h,
                    const cordon_decode_opts_t *dopts,
                    const cordon_video_opts_t *vopts, vcli_input_t *in,
                    cordon_image_hashes_t *out)
{
    int rc = vcli_input_read(path, dopts->max_bytes, vopts->max_bytes, in);
    if (rc != CORDON_OK || in->is_video)
        return rc;
    rc = cordon_hasher_image(h, in->buf, in->len, dopts, out);
    vcli_input_free(in);
    return rc;
}

int vcli_hash(const char *path, const vcli_input_t *in,
              const cordon_video_opts_t *opts, cordon_video_hashes_t *out)
{
    if (in->buf)
        return cordon_video_hash_buffer(in->buf, in->len, opts, out);
    return cordon_video_hash_file(path, opts, out);
}

int vcli_digest(const char *path, const vcli_input_t *in,
                uint8_t md5[CORDON_MD5_LEN], uint8_t sha256[CORDON_SHA256_LEN])
{
    if (in->buf)
        return cordon_digest(in->buf, in->len, md5, sha256);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return CORDON_EIO;
    struct stat st;
    int rc = CORDON_EIO;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        goto fail;
    if (st.st_size == 0) {
        rc = cordon_digest((const uint8_t *)"", 0, md5, sha256);
        goto fail;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED)
        goto fail;
    rc = cordon_digest(map, (size_t)st.st_size, md5, sha256);
    munmap(map, (size_t)st.st_size);
fail:
    close(fd);
    return rc;
}

void vcli_warn(const char *path, const cordon_video_hashes_t *h)
{
    if (h->warnings & CORDON_VIDEO_WARN_TRUNCATED)
        cli_error(path,
                  "warning: video is truncated; hashed the %zu frame(s) "
                  "that decoded",
                  h->count);
    if (h->warnings & CORDON_VIDEO_WARN_CORRUPT)
        cli_error(path,
                  "warning: video has corrupt data; hashed the %zu "
                  "frame(s) that decoded",
                  h->count);
}

int vcli_parse_seconds(const char *s, double *out)
{
    char *end;
    if (!s || !*s || *s == '-')
        return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !(v >= 0) || v > 86400.0)
        return -1;
    *out = v;
    return 0;
}

int vcli_frames_to_hdb(const cordon_video_hashes_t *h, hdb_vpdq_frame_t **out,
                       size_t *n)
{
    cordon_vpdq_run_t *runs = NULL;
    size_t nruns = 0;
    *out = NULL;
    *n = 0;
    if (!h->count)
        return CORDON_EEMPTY;
    int rc = cordon_vpdq_rle_compress(
        h->frames, h->count, h->frame_interval > 0 ? h->frame_interval : 1,
        &runs, &nruns);
    if (rc)
        return rc;
    /* A final run keeps its last frame as an entry of its own, as hashdb
     * does on import: the step between frames is not stored, and this way
     * every run ends where a later entry starts, so hdb_signal_format()
     * can give each frame of a run its own time on export. */
    size_t split = runs[nruns - 1].count > 1;
    if (nruns + split > HDB_MAX_VPDQ_FRAMES) {
        rc = CORDON_ETOOLARGE;
        goto fail;
    }
    hdb_vpdq_frame_t *f = malloc((nruns + split) * sizeof *f);
    if (!f) {
        rc = CORDON_ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < nruns; i++) {
        f[i].hash = runs[i].hash;
        f[i].quality = runs[i].quality;
        f[i].timestamp = runs[i].timestamp;
        f[i].count = runs[i].count;
    }
    if (split) {
        f[nruns] = f[nruns - 1];
        f[nruns - 1].count--;
        f[nruns].count = 1;
        f[nruns].timestamp = h->frames[h->count - 1].timestamp;
    }
    *out = f;
    *n = nruns + split;
fail:
    free(runs);
    return rc;
}

int vcli_frames_from_hdb(const hdb_signal_t *sig, cordon_vpdq_frame_t **out,
                         size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!sig->nframes)
        return CORDON_OK;
    cordon_vpdq_frame_t *f = calloc(sig->nframes, sizeof *f);
    if (!f)
        return CORDON_ENOMEM;
    for (size_t i = 0; i < sig->nframes; i++) {
        f[i].hash = sig->frames[i].hash;
        /* Unknown quality (a partner's signal without one) is trusted, as
         * add-hash does for PDQ. */
        f[i].quality =
            sig->frames[i].quality < 0 ? 100 : sig->frames[i].quality;
        f[i].frame_number = (int32_t)i;
        f[i].timestamp = sig->frames[i].timestamp;
    }
    *out = f;
    *n = sig->nframes;
    return CORDON_OK;
}

void vcli_quiet_ffmpeg(void)
{
    /* Damaged uploads would otherwise flood stderr with FFmpeg's own
     * messages; the commands print one warning per file instead. */
    if (!getenv("CORDON_FFMPEG_LOG"))
        av_log_set_level(AV_LOG_QUIET);
}
