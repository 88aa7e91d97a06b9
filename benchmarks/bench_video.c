/*
 * bench_video - vPDQ hashing speed against a full single-threaded decode.
 *
 * Usage: bench_video [-r RUNS] FILE...
 *
 * For each file, in one run and interleaved so that load on the machine
 * hits every configuration alike, it times:
 *   - the baseline: `ffmpeg -threads 1 -i FILE -f null -` (a full decode of
 *     every frame on one thread, through the ffmpeg CLI), and the same
 *     decode done in this process with libavcodec (no CLI start-up);
 *   - cordon_video_hash_file() at 1 hash/s and at every frame, with 1 and 2
 *     decoder/hashing threads, and at 1 hash/s with frame skipping off.
 * It reports medians of wall time, CPU time, frames/s (frames of the video
 * per second of wall time), the realtime factor (video seconds per wall
 * second) and our wall and CPU time divided by the baseline's (below 1 is
 * faster; on a loaded machine the CPU ratio is the steadier one), and how
 * many stretches between IDR frames were decoded side by side (0: one
 * decoder), as JSON lines on stdout followed by a table on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/log.h>

#include "cordon_error.h"
#include "cordon_video.h"

#define MAX_RUNS 15

typedef struct {
    const char *name;
    double sph;
    int threads;
    int skip;
} config_t;

/* sph -1: the ffmpeg CLI baseline; -2: the same decode in-process. */
static const config_t configs[] = {
    {"ffmpeg -threads 1 (baseline)", -1, 1, 0},
    {"libavcodec decode, 1 thread", -2, 1, 0},
    {"1 hash/s, 1 thread", 1.0, 1, 1},
    {"1 hash/s, 2 threads", 1.0, 2, 1},
    {"1 hash/s, 1 thread, no skip", 1.0, 1, 0},
    {"every frame, 1 thread", 0.0, 1, 1},
    {"every frame, 2 threads", 0.0, 2, 1},
};
#define NCONF (sizeof configs / sizeof configs[0])

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double rusage_cpu(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Runs the baseline decode; returns 0 on success. */
static int run_ffmpeg(const char *file, double *wall, double *cpu)
{
    double c0 = rusage_cpu(RUSAGE_CHILDREN), t0 = now();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        execlp("ffmpeg", "ffmpeg", "-nostdin", "-v", "error", "-threads", "1",
               "-i", file, "-f", "null", "-", (char *)NULL);
        _exit(127);
    }
    int st;
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return -1;
    *wall = now() - t0;
    *cpu = rusage_cpu(RUSAGE_CHILDREN) - c0;
    return 0;
}

/* A full single-threaded decode with the FFmpeg libraries in this process:
 * the baseline without the CLI's start-up and output plumbing. Returns the
 * number of frames, or -1. */
static long decode_only(const char *file)
{
    AVFormatContext *fmt = NULL;
    AVCodecContext *cc = NULL;
    AVPacket *pkt = av_packet_alloc();
    AVFrame *fr = av_frame_alloc();
    long frames = -1;
    if (!pkt || !fr || avformat_open_input(&fmt, file, NULL, NULL) < 0)
        goto fail;
    if (avformat_find_stream_info(fmt, NULL) < 0)
        goto fail;
    int si = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (si < 0)
        goto fail;
    const AVCodec *codec =
        avcodec_find_decoder(fmt->streams[si]->codecpar->codec_id);
    if (!codec || !(cc = avcodec_alloc_context3(codec)) ||
        avcodec_parameters_to_context(cc, fmt->streams[si]->codecpar) < 0)
        goto fail;
    cc->thread_count = 1;
    if (avcodec_open2(cc, codec, NULL) < 0)
        goto fail;
    frames = 0;
    for (int eof = 0; !eof;) {
        if (av_read_frame(fmt, pkt) < 0) {
            eof = 1;
            avcodec_send_packet(cc, NULL);
        } else if (pkt->stream_index == si) {
            avcodec_send_packet(cc, pkt);
            av_packet_unref(pkt);
        } else {
            av_packet_unref(pkt);
            continue;
        }
        while (avcodec_receive_frame(cc, fr) == 0)
            frames++;
    }
fail:
    avcodec_free_context(&cc);
    avformat_close_input(&fmt);
    av_frame_free(&fr);
    av_packet_free(&pkt);
    return frames;
}

int main(int argc, char **argv)
{
    int runs = 3, first = 1;
    if (argc > 2 && strcmp(argv[1], "-r") == 0) {
        runs = atoi(argv[2]);
        first = 3;
    }
    if (runs < 1 || runs > MAX_RUNS || first >= argc) {
        fprintf(stderr, "usage: bench_video [-r RUNS(1..%d)] FILE...\n",
                MAX_RUNS);
        return 2;
    }
    av_log_set_level(AV_LOG_QUIET);
    fprintf(stderr, "%-22s %-29s %7s %7s %8s %6s %7s %7s %5s\n", "file",
            "config", "wall s", "cpu s", "frames/s", "x rt", "t/base",
            "cpu/base", "segs");
    for (int a = first; a < argc; a++) {
        const char *file = argv[a];
        const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
        double wall[NCONF][MAX_RUNS], cpu[NCONF][MAX_RUNS];
        cordon_video_hashes_t info[NCONF];
        memset(info, 0, sizeof info);
        int failed = 0;
        for (int r = 0; r < runs && !failed; r++) {
            for (size_t c = 0; c < NCONF; c++) {
                const config_t *cf = &configs[c];
                if (cf->sph == -2) {
                    double c0 = rusage_cpu(RUSAGE_SELF), t0 = now();
                    long k = decode_only(file);
                    wall[c][r] = now() - t0;
                    cpu[c][r] = rusage_cpu(RUSAGE_SELF) - c0;
                    if (k < 0) {
                        failed = 1;
                        break;
                    }
                    continue;
                }
                if (cf->sph < 0) {
                    if (run_ffmpeg(file, &wall[c][r], &cpu[c][r]) != 0) {
                        fprintf(stderr, "%s: ffmpeg baseline failed\n", file);
                        failed = 1;
                        break;
                    }
                    continue;
                }
                cordon_video_opts_t o;
                cordon_video_opts_default(&o);
                o.seconds_per_hash = cf->sph;
                o.threads = cf->threads;
                o.skip_unsampled = cf->skip;
                cordon_video_hashes_free(&info[c]);
                double c0 = rusage_cpu(RUSAGE_SELF), t0 = now();
                int rc = cordon_video_hash_file(file, &o, &info[c]);
                wall[c][r] = now() - t0;
                cpu[c][r] = rusage_cpu(RUSAGE_SELF) - c0;
                if (rc != CORDON_OK) {
                    fprintf(stderr, "%s: %s\n", file, cordon_strerror(rc));
                    failed = 1;
                    break;
                }
            }
        }
        if (failed)
            continue;
        /* The frame count and duration come from one of our runs. */
        const cordon_video_hashes_t *ref = &info[2];
        double frames = (double)ref->frame_count;
        double seconds = frames / ref->fps;
        double base_wall = median(wall[0], runs);
        double base_cpu = median(cpu[0], runs);
        for (size_t c = 0; c < NCONF; c++) {
            double w = median(wall[c], runs), u = median(cpu[c], runs);
            double decoded =
                configs[c].sph < 0 ? frames : (double)info[c].frames_decoded;
            size_t hashed = configs[c].sph < 0 ? 0 : info[c].count;
            printf("{\"bench\":\"video\",\"file\":\"%s\",\"width\":%d,"
                   "\"height\":%d,\"frames\":%.0f,\"seconds\":%.3f,"
                   "\"config\":\"%s\",\"seconds_per_hash\":%g,\"threads\":%d,"
                   "\"skip\":%d,\"runs\":%d,\"wall_median\":%.4f,"
                   "\"cpu_median\":%.4f,\"frames_decoded\":%.0f,"
                   "\"hashes\":%zu,\"segments\":%u,\"frames_per_s\":%.1f,"
                   "\"realtime\":%.2f,\"time_vs_baseline\":%.3f,"
                   "\"cpu_vs_baseline\":%.3f}\n",
                   base, ref->width, ref->height, frames, seconds,
                   configs[c].name, configs[c].sph, configs[c].threads,
                   configs[c].skip, runs, w, u, decoded, hashed,
                   info[c].segments, frames / w, seconds / w, w / base_wall,
                   u / base_cpu);
            fprintf(stderr,
                    "%-22.22s %-29s %7.3f %7.3f %8.1f %6.1f %6.2fx %7.2fx "
                    "%5u\n",
                    c == 0 ? base : "", configs[c].name, w, u, frames / w,
                    seconds / w, w / base_wall, u / base_cpu,
                    info[c].segments);
        }
        for (size_t c = 0; c < NCONF; c++)
            cordon_video_hashes_free(&info[c]);
        fflush(stdout);
    }
    return 0;
}
