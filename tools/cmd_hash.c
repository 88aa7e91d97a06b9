/* cmd_hash.c - `cordon hash`: perceptual and exact hashes of media files. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "cordon.h"
#include "video_cli.h"

typedef struct {
    int fast, dihedral, json;
    cordon_decode_opts_t dopts;
    cordon_video_opts_t vopts;
    cordon_hasher_t *hasher;
    int failed;
} hash_ctx_t;

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: cordon hash [options] FILE|DIR|- ...\n"
        "\n"
        "Computes the PDQ hash and quality, MD5 and SHA-256 of each image.\n"
        "Text output, one line per file:\n"
        "  pdq quality md5 sha256 file\n"
        "With --dihedral, the seven other dihedral PDQ hashes follow\n"
        "sha256, in the order rot90 rot180 rot270 flipx flipy flipplus1\n"
        "flipminus1.\n"
        "\n"
        "Videos (any format FFmpeg reads that is not a still image) get\n"
        "vPDQ: one line per hashed frame, in the reference's hash-file\n"
        "format\n"
        "  frame_number,quality,pdq,timestamp_seconds\n"
        "and with --json one object per file with its duration, fps,\n"
        "size, md5, sha256 and frames. With --dihedral each frame's line\n"
        "ends with seven more comma-separated hashes in the order above\n"
        "(JSON: a \"dihedral\" object per frame). A truncated or corrupt\n"
        "video gives the frames that decoded and a warning on stderr.\n"
        "\n"
        "options:\n"
        "  --fast            decode JPEGs at reduced scale (a few bits of\n"
        "                    drift from canonical; not for databases)\n"
        "  --dihedral        also print the 8 dihedral variants\n"
        "  --json            JSON Lines output\n"
        "  -r, --recursive   descend into subdirectories\n"
        "  --max-pixels N    refuse larger images (default %llu)\n"
        "  --max-bytes N     refuse larger files (default %llu for\n"
        "                    images, %llu for videos)\n"
        "  --seconds-per-hash S  videos: hash one frame every S seconds\n"
        "                    (default 1; 0 = every frame)\n"
        "  -h, --help        this help\n"
        "\n"
        "Exit status: 0 when every file was hashed, 2 when any failed.\n",
        (unsigned long long)CORDON_DEFAULT_MAX_PIXELS,
        (unsigned long long)CORDON_DEFAULT_MAX_BYTES,
        (unsigned long long)CORDON_VIDEO_DEFAULT_MAX_BYTES);
}

/* The seven non-identity variants as a JSON object, as for images. */
static json_t *dihedral_json(const cordon_hash256_t h[CORDON_DIH_COUNT])
{
    json_t *d = json_object();
    for (int v = 1; d && v < CORDON_DIH_COUNT; v++) {
        char hex[65];
        cordon_hash_to_hex(&h[v], hex);
        json_object_set_new(d, cordon_dihedral_name(v), json_string(hex));
    }
    return d;
}

static int hash_video(hash_ctx_t *ctx, const char *path, const vcli_input_t *in)
{
    cordon_video_hashes_t vh;
    uint8_t md5[CORDON_MD5_LEN], sha[CORDON_SHA256_LEN];
    int rc = vcli_hash(path, in, &ctx->vopts, &vh);
    if (rc != CORDON_OK) {
        cli_error(path, "%s", cordon_strerror(rc));
        ctx->failed++;
        return rc;
    }
    vcli_warn(path, &vh);
    if (ctx->json && (rc = vcli_digest(path, in, md5, sha)) != CORDON_OK) {
        cli_error(path, "digest: %s", cordon_strerror(rc));
        cordon_video_hashes_free(&vh);
        ctx->failed++;
        return rc;
    }
    if (ctx->json) {
        char md5h[33], shah[65];
        cordon_hex_encode(md5, sizeof md5, md5h);
        cordon_hex_encode(sha, sizeof sha, shah);
        json_t *o = json_pack("{s:s, s:s, s:f, s:f, s:i, s:i, s:s, s:s}",
                              "file", path, "type", "video", "duration",
                              vh.duration, "fps", vh.fps, "width", vh.width,
                              "height", vh.height, "md5", md5h, "sha256", shah);
        json_t *fr = json_array();
        for (size_t i = 0; o && fr && i < vh.count; i++) {
            char hex[65];
            cordon_hash_to_hex(&vh.frames[i].hash, hex);
            json_t *f = json_pack("{s:i, s:i, s:s, s:f}", "frame",
                                  (int)vh.frames[i].frame_number, "quality",
                                  (int)vh.frames[i].quality, "pdq", hex,
                                  "timestamp", vh.frames[i].timestamp);
            if (f && vh.dihedral)
                json_object_set_new(f, "dihedral",
                                    dihedral_json(vh.dihedral[i]));
            json_array_append_new(fr, f);
        }
        if (o && fr) {
            json_object_set_new(o, "frames", fr);
            char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER |
                                        JSON_REAL_PRECISION(10));
            if (s)
                puts(s);
            free(s);
        } else {
            json_decref(fr);
        }
        json_decref(o);
    } else {
        char line[CORDON_VPDQ_LINE_MAX];
        for (size_t i = 0; i < vh.count; i++) {
            if (cordon_vpdq_format_line(&vh.frames[i], line, sizeof line) <= 0)
                continue;
            fputs(line, stdout);
            for (int v = 1; vh.dihedral && v < CORDON_DIH_COUNT; v++) {
                char hex[65];
                cordon_hash_to_hex(&vh.dihedral[i][v], hex);
                printf(",%s", hex);
            }
            putchar('\n');
        }
    }
    cordon_video_hashes_free(&vh);
    return CORDON_OK;
}

static void print_json(const char *path, const cordon_image_hashes_t *h,
                       int dihedral)
{
    char pdq[65], md5[33], sha[65];
    cordon_hash_to_hex(&h->pdq, pdq);
    cordon_hex_encode(h->md5, sizeof h->md5, md5);
    cordon_hex_encode(h->sha256, sizeof h->sha256, sha);
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:i, s:i}", "file", path,
                  "type", "image", "pdq", pdq, "quality", h->quality, "md5",
                  md5, "sha256", sha, "width", h->width, "height", h->height);
    if (!o)
        return;
    if (dihedral)
        json_object_set_new(o, "dihedral", dihedral_json(h->dihedral));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s) {
        puts(s);
        free(s);
    }
    json_decref(o);
}

static int hash_one(const char *path, void *vctx)
{
    hash_ctx_t *ctx = vctx;
    vcli_input_t in;
    cordon_image_hashes_t h;
    int rc =
        vcli_read_image(path, ctx->hasher, &ctx->dopts, &ctx->vopts, &in, &h);
    if (rc != CORDON_OK) {
        cli_error(path, "%s", vcli_input_error(rc, &in));
        ctx->failed++;
        return rc;
    }
    if (in.is_video) {
        rc = hash_video(ctx, path, &in);
        vcli_input_free(&in);
        return rc;
    }
    if (ctx->json) {
        print_json(path, &h, ctx->dihedral);
    } else {
        char pdq[65], md5[33], sha[65];
        cordon_hash_to_hex(&h.pdq, pdq);
        cordon_hex_encode(h.md5, sizeof h.md5, md5);
        cordon_hex_encode(h.sha256, sizeof h.sha256, sha);
        printf("%s %d %s %s", pdq, h.quality, md5, sha);
        if (ctx->dihedral)
            for (int v = 1; v < CORDON_DIH_COUNT; v++) {
                cordon_hash_to_hex(&h.dihedral[v], pdq);
                printf(" %s", pdq);
            }
        printf(" %s\n", path);
    }
    return CORDON_OK;
}

int cli_parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int cmd_hash(int argc, char **argv)
{
    enum {
        OPT_FAST = 256,
        OPT_DIH,
        OPT_JSON,
        OPT_MAXPIX,
        OPT_MAXBYTES,
        OPT_SPH
    };
    static const struct option opts[] = {
        {"fast", no_argument, NULL, OPT_FAST},
        {"dihedral", no_argument, NULL, OPT_DIH},
        {"json", no_argument, NULL, OPT_JSON},
        {"recursive", no_argument, NULL, 'r'},
        {"max-pixels", required_argument, NULL, OPT_MAXPIX},
        {"max-bytes", required_argument, NULL, OPT_MAXBYTES},
        {"seconds-per-hash", required_argument, NULL, OPT_SPH},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    hash_ctx_t ctx;
    memset(&ctx, 0, sizeof ctx);
    cordon_decode_opts_default(&ctx.dopts);
    cordon_video_opts_default(&ctx.vopts);
    int recursive = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "rh", opts, NULL)) != -1) {
        switch (c) {
        case OPT_FAST:
            ctx.fast = 1;
            break;
        case OPT_DIH:
            ctx.dihedral = 1;
            break;
        case OPT_JSON:
            ctx.json = 1;
            break;
        case 'r':
            recursive = 1;
            break;
        case OPT_MAXPIX:
            if (cli_parse_u64(optarg, &ctx.dopts.max_pixels) != 0) {
                cli_error("hash", "bad --max-pixels '%s'", optarg);
                return CLI_ERR;
            }
            break;
        case OPT_MAXBYTES:
            if (cli_parse_u64(optarg, &ctx.dopts.max_bytes) != 0) {
                cli_error("hash", "bad --max-bytes '%s'", optarg);
                return CLI_ERR;
            }
            ctx.vopts.max_bytes = ctx.dopts.max_bytes;
            break;
        case OPT_SPH:
            if (vcli_parse_seconds(optarg, &ctx.vopts.seconds_per_hash) != 0) {
                cli_error("hash", "bad --seconds-per-hash '%s'", optarg);
                return CLI_ERR;
            }
            break;
        case 'h':
            usage(stdout);
            return CLI_OK;
        default:
            usage(stderr);
            return CLI_ERR;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return CLI_ERR;
    }
    ctx.dopts.fast = ctx.fast;
    ctx.vopts.dihedral = ctx.dihedral;
    vcli_quiet_ffmpeg();
    if (cordon_hasher_create(&ctx.hasher) != CORDON_OK) {
        cli_error("hash", "%s", cordon_strerror(CORDON_ENOMEM));
        return CLI_ERR;
    }
    int bad = cli_walk(argv + optind, argc - optind, recursive, hash_one, &ctx);
    cordon_hasher_free(ctx.hasher);
    fflush(stdout);
    return (bad || ctx.failed) ? CLI_ERR : CLI_OK;
}
