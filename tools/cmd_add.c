/*
 * cmd_add.c - `cordon add` (hash media files into a bank) and
 * `cordon add-hash` (store a hash received from a partner, no media).
 *
 * add hashes with a small pool of worker threads (one cordon_hasher_t
 * each) that claim files in input order; the main thread consumes the
 * results strictly in that order, queues them into hdb batches and prints
 * after each commit. So the output and the item ids are the same whatever
 * the thread timing, and an interrupted add leaves whole items only: the
 * batch being filled is committed on SIGINT/SIGTERM, anything later is not
 * written at all.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cordon.h"
#include "db_common.h"
#include "video_cli.h"

#define LOW_QUALITY 50 /* DESIGN 2: matching ignores hashes below this */
#define DEFAULT_BATCH 100
#define DEFAULT_JOBS 2
#define MAX_JOBS 64

/* Set by SIGINT/SIGTERM: the one piece of global state, as a signal
 * handler cannot be given a context. */
static atomic_int g_stop;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&g_stop, 1);
}

/* Provenance and labels shared by every item of one command. */
typedef struct {
    const char *bank;
    cli_strv_t labels;
    const char *note;
    const char *added_by;
    hdb_source_t source;
    const char *source_name; /* NULL: add uses each file's path */
} common_t;

/* Parses the options add and add-hash share; returns 1 when c was one of
 * them, 0 when not, -1 on a bad value (already reported). */
static int common_opt(common_t *cm, int c, const char *where)
{
    switch (c) {
    case CLI_OPT_BANK:
        cm->bank = optarg;
        return 1;
    case CLI_OPT_LABEL:
        return cli_strv_push(&cm->labels, optarg, 1, where) ? -1 : 1;
    case CLI_OPT_NOTE:
        if (strlen(optarg) > HDB_MAX_NOTE) {
            cli_error(where, "--note is too long (at most %d bytes)",
                      HDB_MAX_NOTE);
            return -1;
        }
        cm->note = optarg;
        return 1;
    case CLI_OPT_ADDED_BY:
    case CLI_OPT_SOURCE_NAME:
        if (strlen(optarg) > HDB_MAX_TEXT) {
            cli_error(where, "--%s is too long (at most %d bytes)",
                      c == CLI_OPT_ADDED_BY ? "added-by" : "source-name",
                      HDB_MAX_TEXT);
            return -1;
        }
        for (const unsigned char *p = (const unsigned char *)optarg; *p; p++)
            if (*p < 0x20 || *p == 0x7f) {
                cli_error(where, "control characters in --%s",
                          c == CLI_OPT_ADDED_BY ? "added-by" : "source-name");
                return -1;
            }
        if (c == CLI_OPT_ADDED_BY)
            cm->added_by = optarg;
        else
            cm->source_name = optarg;
        return 1;
    case CLI_OPT_SOURCE:
        if (hdb_source_from_name(optarg, &cm->source) != CORDON_OK) {
            cli_error(where,
                      "bad --source '%s' (platform, exchange, file, peer or "
                      "unknown)",
                      optarg);
            return -1;
        }
        return 1;
    default:
        return 0;
    }
}

#define COMMON_OPTIONS                                                         \
    CLI_DB_OPTION, {"bank", required_argument, NULL, CLI_OPT_BANK},            \
        {"label", required_argument, NULL, CLI_OPT_LABEL},                     \
        {"note", required_argument, NULL, CLI_OPT_NOTE},                       \
        {"source", required_argument, NULL, CLI_OPT_SOURCE},                   \
        {"source-name", required_argument, NULL, CLI_OPT_SOURCE_NAME},         \
        {"added-by", required_argument, NULL, CLI_OPT_ADDED_BY},               \
        {"json", no_argument, NULL, CLI_OPT_JSON},                             \
    {                                                                          \
        "help", no_argument, NULL, 'h'                                         \
    }

#define COMMON_HELP                                                            \
    CLI_DB_HELP                                                                \
    "  --bank NAME       the bank (required; 'cordon bank create' "            \
    "makes one)\n"                                                             \
    "  --label KEY:VALUE a label of the item (repeatable)\n"                   \
    "  --note TEXT       a free-text note\n"                                   \
    "  --added-by WHO    provenance: who (default $USER, else 'cli')\n"

/* Checks the bank before any work; prints and returns CLI_ERR if absent. */
static int check_bank(hdb_t *db, const char *where, const char *bank)
{
    hdb_bank_t *b = NULL;
    int rc = hdb_bank_get(db, bank, &b);
    hdb_free(b);
    if (rc == CORDON_ENOTFOUND) {
        cli_error(where,
                  "no bank '%s' (create it with 'cordon bank create %s')", bank,
                  bank);
        return CLI_ERR;
    }
    if (rc)
        return cli_db_error(where, NULL, rc);
    return CLI_OK;
}

/* ------------------------------------------------------------------ */
/* add: work items and the hashing pool                                 */

typedef struct {
    char *path;
    int rc;     /* CORDON_OK, or why it failed */
    int errno_; /* for CORDON_EIO from reading */
    int done;   /* under pool.mu */
    int quality;
    cordon_hash256_t pdq;
    uint8_t md5[CORDON_MD5_LEN];
    uint8_t sha256[CORDON_SHA256_LEN];
    /* Videos: the vPDQ entries (owned, freed after the flush). */
    int is_video;
    hdb_vpdq_frame_t *frames;
    size_t nframes;     /* entries */
    size_t hashed;      /* frames hashed, before folding */
    size_t good_frames; /* of those, quality >= LOW_QUALITY */
    unsigned vwarnings; /* CORDON_VIDEO_WARN_* */
    char *source_name;  /* sanitised copy of path for provenance */
    hdb_add_result_t res;
} slot_t;

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t next; /* next slot to claim */
    size_t nslots;
    slot_t *slots;
    cordon_decode_opts_t dopts;
    cordon_video_opts_t vopts;
    unsigned running; /* workers not yet finished */
} pool_t;

/* A video: its vPDQ frames folded into hdb entries, and its digests. */
static void hash_video_slot(const cordon_video_opts_t *vopts, slot_t *s,
                            const vcli_input_t *in)
{
    cordon_video_hashes_t vh;
    s->is_video = 1;
    s->rc = vcli_hash(s->path, in, vopts, &vh);
    if (s->rc != CORDON_OK)
        return;
    s->vwarnings = vh.warnings;
    s->hashed = vh.count;
    for (size_t i = 0; i < vh.count; i++)
        if (vh.frames[i].quality >= LOW_QUALITY)
            s->good_frames++;
    s->rc = vcli_frames_to_hdb(&vh, &s->frames, &s->nframes);
    cordon_video_hashes_free(&vh);
    if (s->rc == CORDON_OK)
        s->rc = vcli_digest(s->path, in, s->md5, s->sha256);
}

/* Hashes one file: images to PDQ, videos to vPDQ (routed by content). */
static void hash_slot(cordon_hasher_t *h, const cordon_decode_opts_t *dopts,
                      const cordon_video_opts_t *vopts, slot_t *s)
{
    vcli_input_t in;
    cordon_image_hashes_t ih;
    /* Canonical decode always: a database must hold canonical hashes. */
    s->rc = vcli_read_image(s->path, h, dopts, vopts, &in, &ih);
    if (s->rc != CORDON_OK) {
        s->errno_ = in.errno_;
        return;
    }
    if (in.is_video) {
        hash_video_slot(vopts, s, &in);
        vcli_input_free(&in);
        return;
    }
    s->pdq = ih.pdq;
    s->quality = ih.quality;
    memcpy(s->md5, ih.md5, sizeof s->md5);
    memcpy(s->sha256, ih.sha256, sizeof s->sha256);
}

static void *worker(void *vp)
{
    pool_t *p = vp;
    cordon_hasher_t *h = NULL;
    int hrc = cordon_hasher_create(&h);
    for (;;) {
        pthread_mutex_lock(&p->mu);
        if (atomic_load(&g_stop) || p->next >= p->nslots) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        slot_t *s = &p->slots[p->next++];
        pthread_mutex_unlock(&p->mu);
        if (hrc == CORDON_OK)
            hash_slot(h, &p->dopts, &p->vopts, s);
        else
            s->rc = hrc;
        pthread_mutex_lock(&p->mu);
        s->done = 1;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    cordon_hasher_free(h);
    pthread_mutex_lock(&p->mu);
    p->running--;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Waits until slot i is hashed. Returns 0, or -1 when it never will be
 * (interrupted before any worker claimed it). */
static int wait_slot(pool_t *p, size_t i)
{
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    while (!p->slots[i].done) {
        if (i >= p->next && (atomic_load(&g_stop) || p->running == 0)) {
            rc = -1;
            break;
        }
        /* Timed, because a signal handler cannot wake the condition. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* ------------------------------------------------------------------ */
/* add: the consumer                                                    */

typedef struct {
    common_t cm;
    int json, progress;
    size_t batch_max;
    hdb_t *db;
    hdb_batch_t *batch;
    size_t *pending; /* slot indexes queued or failed since the last commit */
    size_t npending, nqueued;
    uint64_t added, duplicates, failed, low_quality, done;
    size_t total;
    int progress_shown;
    double last_draw; /* CLOCK_MONOTONIC seconds */
} add_t;

static void progress_clear(add_t *a)
{
    if (a->progress_shown) {
        fputs("\r\033[K", stderr);
        a->progress_shown = 0;
    }
}

static void progress_draw(add_t *a, int force)
{
    if (!a->progress || !a->total)
        return;
    /* A terminal redrawn per file would slow down a run of tiny files. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double now = (double)ts.tv_sec + ts.tv_nsec * 1e-9;
    if (!force && a->progress_shown && now - a->last_draw < 0.1)
        return;
    a->last_draw = now;
    enum { W = 30 };
    size_t fill = (size_t)(a->done * W / a->total);
    char bar[W + 1];
    for (size_t i = 0; i < W; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[W] = 0;
    fprintf(stderr, "\r[%s] %" PRIu64 "/%zu files, %" PRIu64 " failed", bar,
            a->done, a->total, a->failed);
    a->progress_shown = 1;
}

/* Provenance text must be short and free of control characters: keep the
 * tail of a long path (the file name is what tells most). */
static char *sanitize_source(const char *path)
{
    const char *p = strcmp(path, "-") == 0 ? "stdin" : path;
    size_t n = strlen(p);
    const char *lead = "";
    if (n > HDB_MAX_TEXT) {
        lead = "...";
        p += n - (HDB_MAX_TEXT - 3);
    }
    size_t ln = strlen(lead), pn = strlen(p);
    char *s = malloc(ln + pn + 1);
    if (!s)
        return NULL;
    memcpy(s, lead, ln);
    for (size_t i = 0; i < pn; i++) {
        unsigned char ch = (unsigned char)p[i];
        s[ln + i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    s[ln + pn] = 0;
    return s;
}

static int queue_slot(add_t *a, slot_t *s)
{
    hdb_signal_t sig[3];
    memset(sig, 0, sizeof sig);
    if (s->is_video) {
        sig[0].type = HDB_SIG_VPDQ;
        sig[0].frames = s->frames;
        sig[0].nframes = s->nframes;
    } else {
        sig[0].type = HDB_SIG_PDQ;
        sig[0].pdq = s->pdq;
        sig[0].quality = s->quality;
    }
    sig[1].type = HDB_SIG_MD5;
    memcpy(sig[1].digest, s->md5, sizeof s->md5);
    sig[2].type = HDB_SIG_SHA256;
    memcpy(sig[2].digest, s->sha256, sizeof s->sha256);
    if (!a->cm.source_name && !(s->source_name = sanitize_source(s->path)))
        return CORDON_ENOMEM;
    hdb_item_spec_t spec;
    memset(&spec, 0, sizeof spec);
    spec.bank = a->cm.bank;
    spec.labels = a->cm.labels.v;
    spec.nlabels = a->cm.labels.n;
    spec.note = a->cm.note;
    spec.prov.added_by = a->cm.added_by;
    spec.prov.source = a->cm.source;
    spec.prov.source_name =
        a->cm.source_name ? a->cm.source_name : s->source_name;
    spec.signals = sig;
    spec.nsignals = 3;
    if (!a->batch) {
        int rc = hdb_batch_begin(a->db, &a->batch);
        if (rc)
            return rc;
    }
    return hdb_batch_add(a->batch, &spec, 0);
}

static void print_slot(add_t *a, const slot_t *s)
{
    if (a->json) {
        json_t *o = json_object();
        if (!o)
            return;
        json_object_set_new(o, "file", json_string(s->path));
        if (s->rc) {
            json_object_set_new(o, "status", json_string("failed"));
            json_object_set_new(o, "error",
                                json_string(s->rc == CORDON_EIO && s->errno_
                                                ? strerror(s->errno_)
                                                : cordon_strerror(s->rc)));
        } else {
            char pdq[65], md5[33], sha[65];
            cordon_hash_to_hex(&s->pdq, pdq);
            cordon_hex_encode(s->md5, sizeof s->md5, md5);
            cordon_hex_encode(s->sha256, sizeof s->sha256, sha);
            json_object_set_new(
                o, "status",
                json_string(s->res.duplicate ? "duplicate" : "added"));
            json_object_set_new(o, "id", json_integer((json_int_t)s->res.id));
            if (s->is_video) {
                json_object_set_new(o, "type", json_string("video"));
                json_object_set_new(o, "frames",
                                    json_integer((json_int_t)s->hashed));
                json_object_set_new(o, "vpdq_entries",
                                    json_integer((json_int_t)s->nframes));
            } else {
                json_object_set_new(o, "pdq", json_string(pdq));
                json_object_set_new(o, "quality", json_integer(s->quality));
            }
            json_object_set_new(o, "md5", json_string(md5));
            json_object_set_new(o, "sha256", json_string(sha));
        }
        cli_json_line(stdout, o);
        return;
    }
    if (s->rc)
        return; /* reported on stderr as it happened */
    if (s->res.duplicate)
        printf("%s: duplicate of item %" PRIu64 "\n", s->path, s->res.id);
    else
        printf("%s: added item %" PRIu64 "\n", s->path, s->res.id);
}

/* Writes the queued items and prints every pending line in input order. */
static int flush(add_t *a, slot_t *slots)
{
    int rc = CORDON_OK;
    hdb_add_result_t *res = NULL;
    if (a->batch) {
        size_t n = hdb_batch_count(a->batch);
        res = calloc(n ? n : 1, sizeof *res);
        if (!res) {
            hdb_batch_abort(a->batch);
            a->batch = NULL;
            return CORDON_ENOMEM;
        }
        rc = hdb_batch_commit(a->batch, res, NULL);
        a->batch = NULL;
        if (rc) {
            free(res);
            return rc;
        }
    }
    progress_clear(a);
    for (size_t k = 0, q = 0; k < a->npending; k++) {
        slot_t *s = &slots[a->pending[k]];
        if (s->rc == CORDON_OK) {
            s->res = res[q++];
            if (s->res.duplicate)
                a->duplicates++;
            else
                a->added++;
        }
        print_slot(a, s);
        free(s->source_name);
        s->source_name = NULL;
        free(s->frames);
        s->frames = NULL;
    }
    free(res);
    a->npending = a->nqueued = 0;
    fflush(stdout);
    progress_draw(a, 1);
    return CORDON_OK;
}

typedef struct {
    char **v;
    size_t n, cap;
    int oom;
} paths_t;

static int collect(const char *path, void *ctx)
{
    paths_t *p = ctx;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        char **v = realloc(p->v, cap * sizeof *v);
        if (!v) {
            p->oom = 1;
            return CORDON_ENOMEM;
        }
        p->v = v;
        p->cap = cap;
    }
    if (!(p->v[p->n] = strdup(path))) {
        p->oom = 1;
        return CORDON_ENOMEM;
    }
    p->n++;
    return CORDON_OK;
}

static void add_usage(FILE *f)
{
    fprintf(
        f,
        "usage: cordon add --bank NAME [options] FILE|DIR|- ...\n"
        "\n"
        "Hashes image files (canonical PDQ + quality, MD5, SHA-256) and\n"
        "videos (vPDQ, one frame hash per --seconds-per-hash, runs of\n"
        "identical frames stored once with their count; MD5, SHA-256) and\n"
        "stores one item per file in the bank, with provenance. A file\n"
        "whose MD5 or SHA-256 is already in the bank is not stored again.\n"
        "One line per file, in input order:\n"
        "  FILE: added item ID\n"
        "  FILE: duplicate of item ID\n"
        "then a summary: added N, duplicates N, failed N.\n"
        "A file that cannot be read or decoded is reported on stderr and\n"
        "skipped. A hash of quality below %d is stored with a warning:\n"
        "matching ignores such hashes by default (for a video: when no\n"
        "frame reaches it). A truncated or corrupt video is stored from\n"
        "the frames that decoded, with a warning. Items are committed in\n"
        "batches: an interrupted add (Ctrl-C)\n"
        "commits the files already hashed and leaves no partial item.\n"
        "\n"
        "options:\n" COMMON_HELP
        "  --source S        provenance: platform, exchange, file (default),\n"
        "                    peer or unknown\n"
        "  --source-name N   provenance: where from (default: each file's "
        "path)\n"
        "  -r, --recursive   descend into subdirectories\n"
        "  -j, --jobs N      hashing threads (default %d)\n"
        "  --batch N         items per transaction (default %d)\n"
        "  --max-pixels N    refuse larger images (default %llu)\n"
        "  --max-bytes N     refuse larger files (default %llu for\n"
        "                    images, %llu for videos)\n"
        "  --seconds-per-hash S  videos: one frame hash every S seconds\n"
        "                    (default 1; 0 = every frame)\n"
        "  --json            JSON Lines: one object per file (status added,\n"
        "                    duplicate or failed), then {\"summary\": ...}\n"
        "  -h, --help        this help\n"
        "\n"
        "Exit status: 0 when every file was stored (or a duplicate), 2 when\n"
        "any failed or on any other error.\n",
        LOW_QUALITY, DEFAULT_JOBS, DEFAULT_BATCH,
        (unsigned long long)CORDON_DEFAULT_MAX_PIXELS,
        (unsigned long long)CORDON_DEFAULT_MAX_BYTES,
        (unsigned long long)CORDON_VIDEO_DEFAULT_MAX_BYTES);
}

int cmd_add(int argc, char **argv)
{
    enum {
        OPT_BATCH = CLI_OPT_FIRST_FREE,
        OPT_MAXPIX,
        OPT_MAXBYTES,
        OPT_SPH,
    };
    static const struct option opts[] = {
        COMMON_OPTIONS,
        {"recursive", no_argument, NULL, 'r'},
        {"jobs", required_argument, NULL, 'j'},
        {"batch", required_argument, NULL, OPT_BATCH},
        {"max-pixels", required_argument, NULL, OPT_MAXPIX},
        {"max-bytes", required_argument, NULL, OPT_MAXBYTES},
        {"seconds-per-hash", required_argument, NULL, OPT_SPH},
        {NULL, 0, NULL, 0}};
    add_t a;
    pool_t pool;
    paths_t paths = {0};
    slot_t *slots = NULL;
    pthread_t threads[MAX_JOBS];
    unsigned nthreads = 0;
    const char *db_opt = NULL;
    uint64_t jobs = DEFAULT_JOBS, batch = DEFAULT_BATCH;
    int recursive = 0, c, rc = CLI_ERR, pool_init = 0;
    struct sigaction old_int, old_term;
    int sig_set = 0;

    memset(&a, 0, sizeof a);
    memset(&pool, 0, sizeof pool);
    a.cm.source = HDB_SOURCE_FILE;
    a.cm.added_by = cli_default_added_by();
    cordon_decode_opts_default(&pool.dopts);
    cordon_video_opts_default(&pool.vopts);
    atomic_store(&g_stop, 0);

    optind = 1;
    while ((c = getopt_long(argc, argv, "rj:h", opts, NULL)) != -1) {
        int k = common_opt(&a.cm, c, "add");
        if (k < 0)
            goto fail;
        if (k > 0)
            continue;
        switch (c) {
        case CLI_OPT_DB:
            db_opt = optarg;
            break;
        case CLI_OPT_JSON:
            a.json = 1;
            break;
        case 'r':
            recursive = 1;
            break;
        case 'j':
            if (cli_parse_u64(optarg, &jobs) != 0 || jobs < 1 ||
                jobs > MAX_JOBS) {
                cli_error("add", "bad --jobs '%s' (1..%d)", optarg, MAX_JOBS);
                goto fail;
            }
            break;
        case OPT_BATCH:
            if (cli_parse_u64(optarg, &batch) != 0 || batch < 1 ||
                batch > 1000000) {
                cli_error("add", "bad --batch '%s' (1..1000000)", optarg);
                goto fail;
            }
            break;
        case OPT_MAXPIX:
            if (cli_parse_u64(optarg, &pool.dopts.max_pixels) != 0) {
                cli_error("add", "bad --max-pixels '%s'", optarg);
                goto fail;
            }
            break;
        case OPT_MAXBYTES:
            if (cli_parse_u64(optarg, &pool.dopts.max_bytes) != 0) {
                cli_error("add", "bad --max-bytes '%s'", optarg);
                goto fail;
            }
            pool.vopts.max_bytes = pool.dopts.max_bytes;
            break;
        case OPT_SPH:
            if (vcli_parse_seconds(optarg, &pool.vopts.seconds_per_hash)) {
                cli_error("add", "bad --seconds-per-hash '%s'", optarg);
                goto fail;
            }
            break;
        case 'h':
            add_usage(stdout);
            rc = CLI_OK;
            goto fail;
        default:
            add_usage(stderr);
            goto fail;
        }
    }
    if (!a.cm.bank) {
        cli_error("add", "--bank is required");
        goto fail;
    }
    if (optind >= argc) {
        cli_error("add", "no files given");
        goto fail;
    }
    pool.dopts.fast = 0;
    /* The pool already runs files in parallel: one decoder thread each
     * keeps a many-video add from oversubscribing the CPUs. */
    if (jobs > 1)
        pool.vopts.threads = 1;
    vcli_quiet_ffmpeg();
    a.batch_max = (size_t)batch;
    a.progress = cli_progress_enabled();

    if (cli_db_open(db_opt, CLI_DB_WRITE, &a.db) ||
        check_bank(a.db, "add", a.cm.bank))
        goto fail;

    /* Unreadable inputs are reported by the walk and count as failed. */
    int bad_inputs =
        cli_walk(argv + optind, argc - optind, recursive, collect, &paths);
    if (paths.oom) {
        cli_error("add", "%s", cordon_strerror(CORDON_ENOMEM));
        goto fail;
    }
    a.failed = (uint64_t)bad_inputs;
    a.total = paths.n;
    if (paths.n) {
        slots = calloc(paths.n, sizeof *slots);
        a.pending = malloc(a.batch_max * 2 * sizeof *a.pending);
        if (!slots || !a.pending) {
            cli_error("add", "%s", cordon_strerror(CORDON_ENOMEM));
            goto fail;
        }
    }
    for (size_t i = 0; i < paths.n; i++)
        slots[i].path = paths.v[i];

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C kills at once */
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sig_set = 1;

    pool.slots = slots;
    pool.nslots = paths.n;
    pthread_mutex_init(&pool.mu, NULL);
    pthread_cond_init(&pool.cv, NULL);
    pool_init = 1;
    unsigned want = (unsigned)(jobs < paths.n ? jobs : paths.n);
    pool.running = want;
    for (unsigned t = 0; t < want; t++) {
        if (pthread_create(&threads[t], NULL, worker, &pool) != 0) {
            pthread_mutex_lock(&pool.mu);
            pool.running -= want - t;
            pthread_mutex_unlock(&pool.mu);
            break;
        }
        nthreads++;
    }
    if (paths.n && !nthreads) {
        cli_error("add", "cannot start hashing threads");
        goto fail;
    }

    int interrupted = 0, fatal = 0;
    progress_draw(&a, 1);
    for (size_t i = 0; i < paths.n && !fatal; i++) {
        if (wait_slot(&pool, i) != 0) {
            interrupted = 1;
            break;
        }
        slot_t *s = &slots[i];
        a.done++;
        if (s->rc != CORDON_OK) {
            progress_clear(&a);
            cli_error(s->path, "%s",
                      s->rc == CORDON_EIO && s->errno_
                          ? strerror(s->errno_)
                          : cordon_strerror(s->rc));
            a.failed++;
        } else {
            if (s->is_video) {
                progress_clear(&a);
                vcli_warn(s->path,
                          &(cordon_video_hashes_t){.count = s->hashed,
                                                   .warnings = s->vwarnings});
                if (!s->good_frames) {
                    cli_error(s->path,
                              "warning: no video frame reaches quality %d: "
                              "stored, but not matched by default",
                              LOW_QUALITY);
                    a.low_quality++;
                }
            } else if (s->quality < LOW_QUALITY) {
                progress_clear(&a);
                cli_error(s->path,
                          "warning: PDQ quality %d is below %d: stored, but "
                          "not matched by default",
                          s->quality, LOW_QUALITY);
                a.low_quality++;
            }
            int qrc = queue_slot(&a, s);
            if (qrc) {
                progress_clear(&a);
                cli_db_error(s->path, "cannot queue", qrc);
                fatal = 1;
                break;
            }
            a.nqueued++;
        }
        a.pending[a.npending++] = i;
        if (a.nqueued >= a.batch_max || a.npending >= a.batch_max * 2) {
            int frc = flush(&a, slots);
            if (frc) {
                progress_clear(&a);
                cli_db_error("add", "commit", frc);
                fatal = 1;
                break;
            }
        } else {
            progress_draw(&a, a.done == a.total);
        }
    }
    if (!fatal) {
        int frc = flush(&a, slots);
        if (frc) {
            progress_clear(&a);
            cli_db_error("add", "commit", frc);
            fatal = 1;
        }
    } else {
        hdb_batch_abort(a.batch);
        a.batch = NULL;
        a.npending = 0;
    }
    /* Stop the pool before summing up (after a fatal error it may still be
     * hashing files nobody will store). */
    atomic_store(&g_stop, 1);
    for (unsigned t = 0; t < nthreads; t++)
        pthread_join(threads[t], NULL);
    nthreads = 0;
    progress_clear(&a);
    if (interrupted)
        cli_error("add", "interrupted: %" PRIu64 " of %zu files not stored",
                  (uint64_t)(paths.n - a.done), paths.n);
    if (a.json) {
        json_t *o = json_pack(
            "{s:{s:I, s:I, s:I, s:I}}", "summary", "added", (json_int_t)a.added,
            "duplicates", (json_int_t)a.duplicates, "failed",
            (json_int_t)a.failed, "low_quality", (json_int_t)a.low_quality);
        cli_json_line(stdout, o);
    } else {
        printf("added %" PRIu64 ", duplicates %" PRIu64 ", failed %" PRIu64
               "\n",
               a.added, a.duplicates, a.failed);
    }
    rc = (fflush(stdout) == 0 && !fatal && !interrupted && !a.failed) ? CLI_OK
                                                                      : CLI_ERR;
fail:
    if (nthreads) {
        atomic_store(&g_stop, 1);
        for (unsigned t = 0; t < nthreads; t++)
            pthread_join(threads[t], NULL);
    }
    if (sig_set) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
    }
    if (pool_init) {
        pthread_cond_destroy(&pool.cv);
        pthread_mutex_destroy(&pool.mu);
    }
    hdb_batch_abort(a.batch);
    for (size_t i = 0; i < paths.n; i++) {
        free(paths.v[i]);
        if (slots) {
            free(slots[i].source_name);
            free(slots[i].frames);
        }
    }
    free(paths.v);
    free(slots);
    free(a.pending);
    hdb_close(a.db);
    cli_strv_free(&a.cm.labels);
    return rc;
}

/* ------------------------------------------------------------------ */
/* add-hash                                                             */

static void add_hash_usage(FILE *f)
{
    fprintf(f,
            "usage: cordon add-hash --bank NAME [options] TYPE VALUE\n"
            "\n"
            "Stores a hash received from a partner, without media, as one\n"
            "item. TYPE and VALUE:\n"
            "  pdq     64 hex digits, optionally followed by ',QUALITY'\n"
            "  md5     32 hex digits\n"
            "  sha256  64 hex digits\n"
            "  vpdq    a JSON list of \"pdqhex,quality,timestamp\" strings\n"
            "A value already in the bank (the same MD5, SHA-256, PDQ hash or\n"
            "vPDQ list) is not stored again. Prints 'added item ID' or\n"
            "'duplicate of item ID'. A PDQ hash of quality below %d is\n"
            "stored with a warning (matching ignores it by default); one\n"
            "without a quality is trusted.\n"
            "\n"
            "options:\n" COMMON_HELP
            "  --quality Q       PDQ quality, 0..100 (default: unknown)\n"
            "  --source S        provenance: platform, exchange (default),\n"
            "                    file, peer or unknown\n"
            "  --source-name N   provenance: which partner or exchange\n"
            "  --json            one JSON object {status, id}\n"
            "  -h, --help        this help\n"
            "\n"
            "Exit status: 0 when stored or a duplicate, 2 on a bad value or\n"
            "any other error.\n",
            LOW_QUALITY);
}

int cmd_add_hash(int argc, char **argv)
{
    enum { OPT_QUALITY = CLI_OPT_FIRST_FREE };
    static const struct option opts[] = {
        COMMON_OPTIONS,
        {"quality", required_argument, NULL, OPT_QUALITY},
        {NULL, 0, NULL, 0}};
    common_t cm;
    const char *db_opt = NULL;
    int json = 0, c, rc = CLI_ERR, quality = -2;
    hdb_t *db = NULL;
    hdb_vpdq_frame_t *frames = NULL;

    memset(&cm, 0, sizeof cm);
    cm.source = HDB_SOURCE_EXCHANGE;
    cm.added_by = cli_default_added_by();
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int k = common_opt(&cm, c, "add-hash");
        if (k < 0)
            goto fail;
        if (k > 0)
            continue;
        switch (c) {
        case CLI_OPT_DB:
            db_opt = optarg;
            break;
        case CLI_OPT_JSON:
            json = 1;
            break;
        case OPT_QUALITY: {
            uint64_t q;
            if (cli_parse_u64(optarg, &q) != 0 || q > 100) {
                cli_error("add-hash", "bad --quality '%s' (0..100)", optarg);
                goto fail;
            }
            quality = (int)q;
            break;
        }
        case 'h':
            add_hash_usage(stdout);
            rc = CLI_OK;
            goto fail;
        default:
            add_hash_usage(stderr);
            goto fail;
        }
    }
    if (!cm.bank) {
        cli_error("add-hash", "--bank is required");
        goto fail;
    }
    if (argc - optind != 2) {
        cli_error("add-hash", "expected TYPE and VALUE");
        add_hash_usage(stderr);
        goto fail;
    }
    const char *tname = argv[optind], *value = argv[optind + 1];
    hdb_sigtype_t type;
    if (hdb_sigtype_from_name(tname, strlen(tname), &type) != CORDON_OK) {
        cli_error("add-hash",
                  "unknown hash type '%s' (pdq, md5, sha256 or vpdq)", tname);
        goto fail;
    }
    size_t cap = 0;
    if (type == HDB_SIG_VPDQ) {
        cap = HDB_MAX_VPDQ_FRAMES;
        if (!(frames = malloc(cap * sizeof *frames))) {
            cli_error("add-hash", "%s", cordon_strerror(CORDON_ENOMEM));
            goto fail;
        }
    }
    hdb_signal_t sig;
    int prc = hdb_signal_parse(type, value, strlen(value), &sig, frames, cap);
    if (prc) {
        const char *want = type == HDB_SIG_PDQ   ? "64 hex digits[,quality]"
                           : type == HDB_SIG_MD5 ? "32 hex digits"
                           : type == HDB_SIG_SHA256
                               ? "64 hex digits"
                               : "a JSON list of \"pdqhex,quality,timestamp\"";
        cli_error("add-hash", "bad %s value '%.80s%s': %s (expected %s)",
                  hdb_sigtype_name(type), value,
                  strlen(value) > 80 ? "..." : "", cordon_strerror(prc), want);
        goto fail;
    }
    if (quality != -2) {
        if (type != HDB_SIG_PDQ) {
            cli_error("add-hash", "--quality is for pdq hashes only");
            goto fail;
        }
        if (sig.quality != HDB_QUALITY_UNKNOWN && sig.quality != quality) {
            cli_error("add-hash",
                      "two different qualities (%d in the value, "
                      "%d from --quality)",
                      sig.quality, quality);
            goto fail;
        }
        sig.quality = quality;
    }

    if (cli_db_open(db_opt, CLI_DB_WRITE, &db) ||
        check_bank(db, "add-hash", cm.bank))
        goto fail;

    hdb_add_result_t res;
    memset(&res, 0, sizeof res);
    int arc;
    /* hdb indexes MD5, SHA-256 and (with the flag) vPDQ by value, not
     * PDQ: look that up here. It scans the bank, which is fine for one
     * hash at a time. */
    if (type == HDB_SIG_PDQ) {
        uint64_t id = 0;
        size_t n = 0;
        arc = hdb_lookup(db, &sig, cm.bank, &id, 1, &n);
        if (arc) {
            cli_db_error("add-hash", "lookup", arc);
            goto fail;
        }
        if (n) {
            res.id = id;
            res.duplicate = 1;
        }
    }
    if (!res.duplicate) {
        hdb_item_spec_t spec;
        memset(&spec, 0, sizeof spec);
        spec.bank = cm.bank;
        spec.labels = cm.labels.v;
        spec.nlabels = cm.labels.n;
        spec.note = cm.note;
        spec.prov.added_by = cm.added_by;
        spec.prov.source = cm.source;
        spec.prov.source_name = cm.source_name;
        spec.signals = &sig;
        spec.nsignals = 1;
        arc = hdb_item_add(db, &spec, HDB_ADD_DEDUP_VPDQ, &res);
        if (arc && arc != CORDON_EEXIST) {
            cli_db_error("add-hash", NULL, arc);
            goto fail;
        }
    }
    if (type == HDB_SIG_PDQ && sig.quality != HDB_QUALITY_UNKNOWN &&
        sig.quality < LOW_QUALITY && !res.duplicate)
        cli_error("add-hash",
                  "warning: PDQ quality %d is below %d: stored, but not "
                  "matched by default",
                  sig.quality, LOW_QUALITY);
    if (json)
        cli_json_line(stdout, json_pack("{s:s, s:I}", "status",
                                        res.duplicate ? "duplicate" : "added",
                                        "id", (json_int_t)res.id));
    else if (res.duplicate)
        printf("duplicate of item %" PRIu64 "\n", res.id);
    else
        printf("added item %" PRIu64 "\n", res.id);
    rc = fflush(stdout) == 0 ? CLI_OK : CLI_ERR;
fail:
    hdb_close(db);
    free(frames);
    cli_strv_free(&cm.labels);
    return rc;
}
