/* cmd_match.c - `cordon match`: check media against the hash database. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli.h"
#include "cordon.h"
#include "db_common.h"
#include "hdb.h"
#include "hdb_matcher.h"
#include "video_cli.h"

typedef struct {
    hdb_t *db;
    hdb_matcher_t *matcher;
    cordon_hasher_t *hasher;
    cordon_decode_opts_t dopts;
    hdb_match_opts_t mopts;
    hdb_match_results_t res;
    cordon_video_opts_t vopts;
    double video_threshold; /* percent of query frames, DESIGN 3 */
    int dihedral, json;
    int matched_files, failed;
} match_ctx_t;

/* One reported match. */
typedef struct {
    uint64_t item;
    const char *signal; /* "pdq", "md5", "sha256", "vpdq" */
    int distance;
    int variant;
    cordon_hash256_t hash; /* the stored hash hit (pdq / vpdq) */
    /* A video upload's frame that hit an image item (frame >= 0). */
    int frame;
    double frame_ts;
    /* An image upload hitting a stored video frame: its time, if found. */
    int has_ts;
    double timestamp;
    /* A video upload compared with a stored video (vpdq set). */
    int vpdq;
    cordon_vpdq_match_t cmp;
    int is_match; /* counts for the exit status */
} found_t;

/* A growing list of found_t. */
typedef struct {
    found_t *v;
    size_t n, cap;
} found_list_t;

static found_t *found_push(found_list_t *l)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        found_t *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return NULL;
        l->v = v;
        l->cap = cap;
    }
    found_t *f = &l->v[l->n++];
    memset(f, 0, sizeof *f);
    f->frame = -1;
    f->is_match = 1;
    return f;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cordon match [options] FILE|DIR|- ...\n"
            "\n"
            "Checks each image against the hash database: PDQ within the\n"
            "threshold, and exact MD5/SHA-256 copies. Text output, one line\n"
            "per match:\n"
            "  file  bank  item  signal  distance  variant  labels\n"
            "or 'file  -  no match'.\n"
            "\n"
            "options:\n" CLI_DB_HELP
            "  --threshold N      PDQ match distance, 0..256 (default 31)\n"
            "  --dihedral         also match rotated and flipped copies\n"
            "  --fast             hash JPEGs from a reduced-scale decode\n"
            "  --min-quality Q    ignore hashes below quality Q, stored or\n"
            "                     computed (default 50)\n"
            "  --include-disabled also match disabled banks and items\n"
            "  --json             JSON Lines output, one object per file\n"
            "  --seconds-per-hash S  videos: hash one frame every S seconds\n"
            "                     (default 1; 0 = every frame)\n"
            "  --video-threshold P  a video matches a stored video when P%%\n"
            "                     of its distinct frame hashes match\n"
            "                     (default 80)\n"
            "  -r, --recursive    descend into subdirectories\n"
            "  -h, --help         this help\n"
            "\n"
            "Videos are hashed with vPDQ; each frame of quality >= Q is\n"
            "looked up, and every stored video hit is compared frame list\n"
            "against frame list. Its line ends with\n"
            "  query%%=P  target%%=P  frames=N  verdict=match|partial\n"
            "(percent of distinct frame hashes matched on each side; match\n"
            "when query%% reaches --video-threshold). Images hit by a frame\n"
            "end with frame=N timestamp=S; an image hitting a stored video\n"
            "frame (signal vpdq) ends with timestamp=S. --dihedral applies\n"
            "to images only.\n"
            "\n"
            "Exit status: 0 if anything matched (a partial video match does\n"
            "not count), 1 if nothing matched, 2 on error.\n");
}

/* Live, enabled items holding exactly this digest. */
static int exact_hits(match_ctx_t *c, hdb_sigtype_t type, const uint8_t *d,
                      size_t dlen, found_list_t *out)
{
    hdb_signal_t sig;
    memset(&sig, 0, sizeof sig);
    sig.type = type;
    memcpy(sig.digest, d, dlen);
    uint64_t ids[64];
    size_t found = 0;
    int rc = hdb_lookup(c->db, &sig, NULL, ids, 64, &found);
    if (rc != CORDON_OK)
        return rc;
    if (found > 64)
        found = 64;
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < found; i++) {
        if (!c->mopts.include_disabled) {
            hdb_item_t *it = NULL;
            hdb_bank_t *b = NULL;
            int live = hdb_item_get(c->db, ids[i], &it) == CORDON_OK &&
                       !it->deleted && it->disable_until <= now &&
                       hdb_bank_get(c->db, it->bank, &b) == CORDON_OK &&
                       b->enabled;
            hdb_free(b);
            hdb_free(it);
            if (!live)
                continue;
        }
        found_t *f = found_push(out);
        if (!f)
            return CORDON_ENOMEM;
        f->item = ids[i];
        f->signal = hdb_sigtype_name(type);
        f->distance = 0;
        f->variant = CORDON_DIH_ORIGINAL;
    }
    return CORDON_OK;
}

/* Labels "k:v" as a JSON object; a repeated key collects an array. */
static json_t *labels_json(const hdb_item_t *it)
{
    json_t *o = json_object();
    for (size_t i = 0; i < it->nlabels; i++) {
        const char *l = it->labels[i];
        const char *colon = strchr(l, ':');
        char key[256];
        size_t kl = colon ? (size_t)(colon - l) : strlen(l);
        if (kl >= sizeof key)
            kl = sizeof key - 1;
        memcpy(key, l, kl);
        key[kl] = 0;
        json_t *v = json_string(colon ? colon + 1 : "");
        json_t *old = json_object_get(o, key);
        if (!old) {
            json_object_set_new(o, key, v);
        } else if (json_is_array(old)) {
            json_array_append_new(old, v);
        } else {
            json_t *a = json_array();
            json_array_append(a, old);
            json_array_append_new(a, v);
            json_object_set_new(o, key, a);
        }
    }
    return o;
}

/* The stored vPDQ signal of an item, or NULL. */
static const hdb_signal_t *item_vpdq(const hdb_item_t *it)
{
    for (size_t i = 0; i < it->nsignals; i++)
        if (it->signals[i].type == HDB_SIG_VPDQ)
            return &it->signals[i];
    return NULL;
}

/* root: the per-file JSON header (consumed), or NULL for text output. */
static void report(match_ctx_t *c, const char *path, json_t *root,
                   const found_t *f, size_t n)
{
    json_t *arr = NULL;
    if (c->json)
        arr = json_array();
    else if (n == 0)
        printf("%s\t-\tno match\n", path);
    for (size_t i = 0; i < n; i++) {
        hdb_item_t *it = NULL;
        if (hdb_item_get(c->db, f[i].item, &it) != CORDON_OK)
            continue;
        const char *variant = cordon_dihedral_name(f[i].variant);
        if (c->json) {
            json_t *m =
                json_pack("{s:s, s:I, s:s, s:i, s:s}", "bank", it->bank, "item",
                          (json_int_t)f[i].item, "signal", f[i].signal,
                          "distance", f[i].distance, "variant", variant);
            json_object_set_new(m, "labels", labels_json(it));
            if (f[i].vpdq) {
                json_object_set_new(
                    m, "verdict",
                    json_string(f[i].is_match ? "match" : "partial"));
                json_object_set_new(m, "query_pct",
                                    json_real(f[i].cmp.query_percent));
                json_object_set_new(m, "target_pct",
                                    json_real(f[i].cmp.target_percent));
                json_object_set_new(
                    m, "frames_matched",
                    json_integer((json_int_t)f[i].cmp.query_matched));
            }
            if (f[i].frame >= 0) {
                json_object_set_new(m, "frame", json_integer(f[i].frame));
                json_object_set_new(m, "timestamp", json_real(f[i].frame_ts));
            }
            if (f[i].has_ts)
                json_object_set_new(m, "timestamp", json_real(f[i].timestamp));
            json_array_append_new(arr, m);
        } else {
            printf("%s\t%s\t%llu\t%s\t%d\t%s\t", path, it->bank,
                   (unsigned long long)f[i].item, f[i].signal, f[i].distance,
                   variant);
            for (size_t l = 0; l < it->nlabels; l++)
                printf("%s%s", l ? "," : "", it->labels[l]);
            if (f[i].vpdq)
                printf("\tquery%%=%.1f\ttarget%%=%.1f\tframes=%zu\tverdict=%s",
                       f[i].cmp.query_percent, f[i].cmp.target_percent,
                       f[i].cmp.query_matched,
                       f[i].is_match ? "match" : "partial");
            if (f[i].frame >= 0)
                printf("\tframe=%d\ttimestamp=%.3f", f[i].frame, f[i].frame_ts);
            if (f[i].has_ts)
                printf("\ttimestamp=%.3f", f[i].timestamp);
            printf("\n");
        }
        hdb_free(it);
    }
    if (c->json) {
        json_object_set_new(root, "matches", arr);
        char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (s)
            puts(s);
        free(s);
        json_decref(root);
    }
}

/* For an image hit on a stored video frame: that frame's timestamp. */
static void find_frame_time(match_ctx_t *c, found_t *f)
{
    hdb_item_t *it = NULL;
    if (hdb_item_get(c->db, f->item, &it) != CORDON_OK)
        return;
    const hdb_signal_t *v = item_vpdq(it);
    for (size_t i = 0; v && i < v->nframes; i++)
        if (cordon_hash_distance(&v->frames[i].hash, &f->hash) == 0) {
            f->has_ts = 1;
            f->timestamp = v->frames[i].timestamp;
            break;
        }
    hdb_free(it);
}

/* Compares the upload's frames with a stored video item's. */
static int compare_video(match_ctx_t *c, const cordon_video_hashes_t *vh,
                         found_t *f)
{
    hdb_item_t *it = NULL;
    cordon_vpdq_frame_t *target = NULL;
    size_t nt = 0;
    int rc = hdb_item_get(c->db, f->item, &it);
    if (rc)
        goto fail;
    const hdb_signal_t *v = item_vpdq(it);
    if (v && (rc = vcli_frames_from_hdb(v, &target, &nt)) != CORDON_OK)
        goto fail;
    cordon_vpdq_match_opts_t mo;
    cordon_vpdq_match_opts_default(&mo);
    mo.quality_min = c->mopts.min_quality;
    mo.distance_max = c->mopts.threshold;
    mo.match_percent = c->video_threshold;
    rc = cordon_vpdq_compare(vh->frames, vh->count, target, nt, &mo, &f->cmp);
    if (rc)
        goto fail;
    f->vpdq = 1;
    f->is_match = f->cmp.is_match;
fail:
    free(target);
    hdb_free(it);
    return rc;
}

/* Video uploads: exact digests, then every good frame through the index;
 * stored videos hit are compared as whole frame lists. */
static int match_video(match_ctx_t *c, const char *path, const vcli_input_t *in)
{
    cordon_video_hashes_t vh;
    found_list_t fl = {0};
    uint8_t md5[CORDON_MD5_LEN], sha[CORDON_SHA256_LEN];
    int rc = vcli_hash(path, in, &c->vopts, &vh);
    if (rc != CORDON_OK) {
        cli_error(path, "%s", cordon_strerror(rc));
        c->failed++;
        return rc;
    }
    vcli_warn(path, &vh);
    if ((rc = vcli_digest(path, in, md5, sha)) != CORDON_OK ||
        (rc = exact_hits(c, HDB_SIG_MD5, md5, sizeof md5, &fl)) != CORDON_OK ||
        (rc = exact_hits(c, HDB_SIG_SHA256, sha, sizeof sha, &fl)) !=
            CORDON_OK) {
        cli_error(path, "database: %s", cordon_strerror(rc));
        goto fail;
    }
    size_t nexact = fl.n, good = 0;
    for (size_t i = 0; i < vh.count; i++) {
        const cordon_vpdq_frame_t *fr = &vh.frames[i];
        if (fr->quality < c->mopts.min_quality)
            continue;
        good++;
        /* Frame hashes carry no DCT, so no dihedral variants. */
        rc = hdb_matcher_query(c->matcher, &fr->hash, 1, &c->mopts, &c->res);
        if (rc) {
            cli_error(path, "%s", cordon_strerror(rc));
            goto fail;
        }
        for (size_t h = 0; h < c->res.count; h++) {
            const hdb_match_hit_t *hit = &c->res.hits[h];
            found_t *f = NULL;
            for (size_t k = nexact; k < fl.n; k++)
                if (fl.v[k].item == hit->item_id) {
                    f = &fl.v[k];
                    break;
                }
            if (f && f->distance <= hit->distance)
                continue;
            if (!f) {
                if (!(f = found_push(&fl))) {
                    rc = CORDON_ENOMEM;
                    cli_error(path, "%s", cordon_strerror(rc));
                    goto fail;
                }
                f->item = hit->item_id;
                f->signal = hit->video ? "vpdq" : "pdq";
            }
            f->distance = hit->distance;
            f->variant = CORDON_DIH_ORIGINAL;
            f->hash = hit->hash;
            if (!hit->video) {
                f->frame = fr->frame_number;
                f->frame_ts = fr->timestamp;
            }
        }
    }
    if (!good && !c->json)
        fprintf(stderr,
                "cordon: %s: no frame reaches quality %d; vPDQ not matched\n",
                path, c->mopts.min_quality);
    /* Whole-video comparison of every stored video a frame hit. */
    size_t keep = nexact;
    for (size_t k = nexact; k < fl.n; k++) {
        found_t *f = &fl.v[k];
        if (strcmp(f->signal, "vpdq") == 0) {
            if ((rc = compare_video(c, &vh, f)) != CORDON_OK) {
                cli_error(path, "item %llu: %s", (unsigned long long)f->item,
                          cordon_strerror(rc));
                goto fail;
            }
            if (!f->cmp.query_matched)
                continue; /* below the reporting floor */
        }
        fl.v[keep++] = *f;
    }
    fl.n = keep;
    json_t *root = NULL;
    if (c->json)
        root =
            json_pack("{s:s, s:s, s:f, s:I}", "file", path, "type", "video",
                      "duration", vh.duration, "frames", (json_int_t)vh.count);
    report(c, path, root, fl.v, fl.n);
    for (size_t k = 0; k < fl.n; k++)
        if (fl.v[k].is_match) {
            c->matched_files++;
            break;
        }
    rc = CORDON_OK;
fail:
    if (rc)
        c->failed++;
    free(fl.v);
    cordon_video_hashes_free(&vh);
    return rc;
}

static int match_one(const char *path, void *vctx)
{
    match_ctx_t *c = vctx;
    vcli_input_t in;
    cordon_image_hashes_t h;
    int rc = vcli_read_image(path, c->hasher, &c->dopts, &c->vopts, &in, &h);
    if (rc != CORDON_OK) {
        cli_error(path, "%s", vcli_input_error(rc, &in));
        c->failed++;
        return rc;
    }
    if (in.is_video) {
        rc = match_video(c, path, &in);
        vcli_input_free(&in);
        return rc;
    }
    found_list_t fl = {0};
    if ((rc = exact_hits(c, HDB_SIG_MD5, h.md5, sizeof h.md5, &fl)) !=
            CORDON_OK ||
        (rc = exact_hits(c, HDB_SIG_SHA256, h.sha256, sizeof h.sha256, &fl)) !=
            CORDON_OK) {
        cli_error(path, "database: %s", cordon_strerror(rc));
        c->failed++;
        free(fl.v);
        return rc;
    }
    /* A hash below the quality floor says too little to match on. */
    if (h.quality >= c->mopts.min_quality) {
        int nq = c->dihedral ? CORDON_DIH_COUNT : 1;
        rc = hdb_matcher_query(c->matcher, h.dihedral, nq, &c->mopts, &c->res);
        if (rc != CORDON_OK) {
            cli_error(path, "%s", cordon_strerror(rc));
            c->failed++;
            free(fl.v);
            return rc;
        }
        for (size_t i = 0; i < c->res.count; i++) {
            found_t *f = found_push(&fl);
            if (!f) {
                cli_error(path, "%s", cordon_strerror(CORDON_ENOMEM));
                c->failed++;
                free(fl.v);
                return CORDON_ENOMEM;
            }
            f->item = c->res.hits[i].item_id;
            f->signal = c->res.hits[i].video ? "vpdq" : "pdq";
            f->distance = c->res.hits[i].distance;
            f->variant = c->res.hits[i].variant;
            f->hash = c->res.hits[i].hash;
            if (c->res.hits[i].video)
                find_frame_time(c, f);
        }
    } else if (!c->json) {
        fprintf(stderr, "cordon: %s: quality %d is below %d; PDQ not matched\n",
                path, h.quality, c->mopts.min_quality);
    }
    json_t *root = NULL;
    if (c->json) {
        char pdq[65];
        cordon_hash_to_hex(&h.pdq, pdq);
        root = json_pack("{s:s, s:s, s:i}", "file", path, "pdq", pdq, "quality",
                         h.quality);
    }
    report(c, path, root, fl.v, fl.n);
    if (fl.n)
        c->matched_files++;
    free(fl.v);
    return CORDON_OK;
}

int cmd_match(int argc, char **argv)
{
    enum {
        O_DB = 256,
        O_THR,
        O_DIH,
        O_FAST,
        O_MINQ,
        O_DIS,
        O_JSON,
        O_SPH,
        O_VTHR
    };
    static const struct option opts[] = {
        {"db", required_argument, NULL, O_DB},
        {"threshold", required_argument, NULL, O_THR},
        {"dihedral", no_argument, NULL, O_DIH},
        {"fast", no_argument, NULL, O_FAST},
        {"min-quality", required_argument, NULL, O_MINQ},
        {"include-disabled", no_argument, NULL, O_DIS},
        {"json", no_argument, NULL, O_JSON},
        {"seconds-per-hash", required_argument, NULL, O_SPH},
        {"video-threshold", required_argument, NULL, O_VTHR},
        {"recursive", no_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    match_ctx_t c;
    memset(&c, 0, sizeof c);
    cordon_decode_opts_default(&c.dopts);
    hdb_match_opts_default(&c.mopts);
    cordon_video_opts_default(&c.vopts);
    c.video_threshold = CORDON_VPDQ_MATCH_PERCENT;
    const char *dbopt = NULL;
    int recursive = 0, ch;
    uint64_t v;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "rh", opts, NULL)) != -1) {
        switch (ch) {
        case O_DB:
            dbopt = optarg;
            break;
        case O_THR:
            if (cli_parse_u64(optarg, &v) != 0 || v > 256) {
                cli_error("match", "bad --threshold '%s' (0..256)", optarg);
                return CLI_ERR;
            }
            c.mopts.threshold = (int)v;
            break;
        case O_DIH:
            c.dihedral = 1;
            break;
        case O_FAST:
            c.dopts.fast = 1;
            break;
        case O_MINQ:
            if (cli_parse_u64(optarg, &v) != 0 || v > 100) {
                cli_error("match", "bad --min-quality '%s' (0..100)", optarg);
                return CLI_ERR;
            }
            c.mopts.min_quality = (int)v;
            break;
        case O_DIS:
            c.mopts.include_disabled = 1;
            break;
        case O_JSON:
            c.json = 1;
            break;
        case O_SPH:
            if (vcli_parse_seconds(optarg, &c.vopts.seconds_per_hash) != 0) {
                cli_error("match", "bad --seconds-per-hash '%s'", optarg);
                return CLI_ERR;
            }
            break;
        case O_VTHR: {
            char *end;
            errno = 0;
            double p = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(p >= 0 && p <= 100)) {
                cli_error("match", "bad --video-threshold '%s' (0..100)",
                          optarg);
                return CLI_ERR;
            }
            c.video_threshold = p;
            break;
        }
        case 'r':
            recursive = 1;
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
    const char *path = cli_db_path(dbopt);
    vcli_quiet_ffmpeg();
    if (cli_db_open(dbopt, 0, &c.db) != CLI_OK)
        return CLI_ERR;
    int rc;
    int status = CLI_ERR;
    if ((rc = hdb_matcher_open(c.db, &c.matcher)) != CORDON_OK) {
        cli_error(path, "loading the index: %s", cordon_strerror(rc));
        goto done;
    }
    if ((rc = cordon_hasher_create(&c.hasher)) != CORDON_OK) {
        cli_error("match", "%s", cordon_strerror(rc));
        goto done;
    }
    int bad = cli_walk(argv + optind, argc - optind, recursive, match_one, &c);
    fflush(stdout);
    status = (bad || c.failed) ? CLI_ERR
             : c.matched_files ? CLI_OK
                               : CLI_NOMATCH;
done:
    hdb_match_results_free(&c.res);
    cordon_hasher_free(c.hasher);
    hdb_matcher_close(c.matcher);
    hdb_close(c.db);
    return status;
}
