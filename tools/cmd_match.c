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

typedef struct {
    hdb_t *db;
    hdb_matcher_t *matcher;
    cordon_hasher_t *hasher;
    cordon_decode_opts_t dopts;
    hdb_match_opts_t mopts;
    hdb_match_results_t res;
    int dihedral, json;
    int matched_files, failed;
} match_ctx_t;

/* One reported match. */
typedef struct {
    uint64_t item;
    const char *signal; /* "pdq", "md5", "sha256" */
    int distance;
    int variant;
} found_t;

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
            "options:\n"
            CLI_DB_HELP
            "  --threshold N      PDQ match distance, 0..256 (default 31)\n"
            "  --dihedral         also match rotated and flipped copies\n"
            "  --fast             hash JPEGs from a reduced-scale decode\n"
            "  --min-quality Q    ignore hashes below quality Q, stored or\n"
            "                     computed (default 50)\n"
            "  --include-disabled also match disabled banks and items\n"
            "  --json             JSON Lines output, one object per file\n"
            "  -r, --recursive    descend into subdirectories\n"
            "  -h, --help         this help\n"
            "\n"
            "Exit status: 0 if anything matched, 1 if nothing matched, 2 on\n"
            "error.\n");
}

/* Live, enabled items holding exactly this digest. */
static int exact_hits(match_ctx_t *c, hdb_sigtype_t type, const uint8_t *d,
                      size_t dlen, found_t *out, size_t cap, size_t *n)
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
    for (size_t i = 0; i < found && *n < cap; i++) {
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
        out[*n].item = ids[i];
        out[*n].signal = hdb_sigtype_name(type);
        out[*n].distance = 0;
        out[*n].variant = CORDON_DIH_ORIGINAL;
        (*n)++;
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

static void report(match_ctx_t *c, const char *path,
                   const cordon_image_hashes_t *h, const found_t *f, size_t n)
{
    char pdq[65];
    cordon_hash_to_hex(&h->pdq, pdq);
    json_t *root = NULL, *arr = NULL;
    if (c->json) {
        root = json_pack("{s:s, s:s, s:i}", "file", path, "pdq", pdq, "quality",
                         h->quality);
        arr = json_array();
    } else if (n == 0) {
        printf("%s\t-\tno match\n", path);
    }
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
            json_array_append_new(arr, m);
        } else {
            printf("%s\t%s\t%llu\t%s\t%d\t%s\t", path, it->bank,
                   (unsigned long long)f[i].item, f[i].signal, f[i].distance,
                   variant);
            for (size_t l = 0; l < it->nlabels; l++)
                printf("%s%s", l ? "," : "", it->labels[l]);
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

static int match_one(const char *path, void *vctx)
{
    match_ctx_t *c = vctx;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = cli_read_file(path, c->dopts.max_bytes, &buf, &len);
    if (rc != CORDON_OK) {
        cli_error(path, "%s",
                  rc == CORDON_EIO ? strerror(errno) : cordon_strerror(rc));
        c->failed++;
        return rc;
    }
    cordon_image_hashes_t h;
    rc = cordon_hasher_image(c->hasher, buf, len, &c->dopts, &h);
    free(buf);
    if (rc != CORDON_OK) {
        cli_error(path, "%s", cordon_strerror(rc));
        c->failed++;
        return rc;
    }
    found_t found[256];
    size_t n = 0;
    if ((rc = exact_hits(c, HDB_SIG_MD5, h.md5, sizeof h.md5, found, 64, &n)) !=
            CORDON_OK ||
        (rc = exact_hits(c, HDB_SIG_SHA256, h.sha256, sizeof h.sha256, found,
                         64, &n)) != CORDON_OK) {
        cli_error(path, "database: %s", cordon_strerror(rc));
        c->failed++;
        return rc;
    }
    /* A hash below the quality floor says too little to match on. */
    if (h.quality >= c->mopts.min_quality) {
        int nq = c->dihedral ? CORDON_DIH_COUNT : 1;
        rc = hdb_matcher_query(c->matcher, h.dihedral, nq, &c->mopts, &c->res);
        if (rc != CORDON_OK) {
            cli_error(path, "%s", cordon_strerror(rc));
            c->failed++;
            return rc;
        }
        for (size_t i = 0; i < c->res.count && n < 256; i++) {
            found[n].item = c->res.hits[i].item_id;
            found[n].signal = c->res.hits[i].video ? "vpdq" : "pdq";
            found[n].distance = c->res.hits[i].distance;
            found[n].variant = c->res.hits[i].variant;
            n++;
        }
    } else if (!c->json) {
        fprintf(stderr, "cordon: %s: quality %d is below %d; PDQ not matched\n",
                path, h.quality, c->mopts.min_quality);
    }
    report(c, path, &h, found, n);
    if (n)
        c->matched_files++;
    return CORDON_OK;
}

int cmd_match(int argc, char **argv)
{
    enum { O_DB = 256, O_THR, O_DIH, O_FAST, O_MINQ, O_DIS, O_JSON };
    static const struct option opts[] = {
        {"db", required_argument, NULL, O_DB},
        {"threshold", required_argument, NULL, O_THR},
        {"dihedral", no_argument, NULL, O_DIH},
        {"fast", no_argument, NULL, O_FAST},
        {"min-quality", required_argument, NULL, O_MINQ},
        {"include-disabled", no_argument, NULL, O_DIS},
        {"json", no_argument, NULL, O_JSON},
        {"recursive", no_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    match_ctx_t c;
    memset(&c, 0, sizeof c);
    cordon_decode_opts_default(&c.dopts);
    hdb_match_opts_default(&c.mopts);
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
