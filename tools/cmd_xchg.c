/*
 * cmd_xchg.c - `cordon import` and `cordon export`: hash lists in
 * python-threatexchange's CSV and local-file formats (DESIGN 5), through
 * hdb_import / hdb_export.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cordon.h"
#include "db_common.h"

/* The format from --format, else from the file name's extension. */
static int pick_format(const char *where, const char *name, const char *file,
                       hdb_format_t *out)
{
    if (name) {
        if (hdb_format_from_name(name, out) != CORDON_OK) {
            cli_error(where, "bad --format '%s' (te-csv or local)", name);
            return CLI_ERR;
        }
        return CLI_OK;
    }
    const char *dot = file ? strrchr(file, '.') : NULL;
    if (dot && strcasecmp(dot, ".csv") == 0) {
        *out = HDB_FMT_TE_CSV;
        return CLI_OK;
    }
    if (dot && strcasecmp(dot, ".txt") == 0) {
        *out = HDB_FMT_LOCAL;
        return CLI_OK;
    }
    cli_error(where, "--format is required (te-csv or local)%s",
              file ? " unless FILE ends in .csv or .txt" : "");
    return CLI_ERR;
}

/* ------------------------------------------------------------------ */
/* import                                                               */

typedef struct {
    const char *file;
    uint64_t reported;
} err_ctx_t;

static void on_bad_line(void *vctx, uint64_t line, int err, const char *msg)
{
    err_ctx_t *ctx = vctx;
    (void)err;
    fprintf(stderr, "%s:%" PRIu64 ": %s\n", ctx->file, line, msg);
    ctx->reported++;
}

static void import_usage(FILE *f)
{
    fprintf(
        f,
        "usage: cordon import [--format te-csv|local] [options] FILE|-\n"
        "\n"
        "Imports a hash list, one item per signal record:\n"
        "  te-csv  python-threatexchange's CSV: signal_type,signal_str,\n"
        "          collab,category,tags (a header line is optional and, when\n"
        "          present, decides the column order). collab names the bank\n"
        "          (an empty one uses --bank); category becomes the label\n"
        "          category:<c>; each tag becomes a label (tag:<t> unless it\n"
        "          holds ':').\n"
        "  local   python-threatexchange's local-file format: one\n"
        "          '<signal_type> <signal>' per line, all into --bank\n"
        "          (required). Blank lines and '#' comments are skipped.\n"
        "Without --format, a FILE ending in .csv is te-csv and one ending\n"
        "in .txt is local. Missing banks are created (enabled) unless\n"
        "--no-create-banks. A record whose signal already is in its bank is\n"
        "counted as a duplicate and skipped, so re-running an import is\n"
        "harmless.\n"
        "\n"
        "Error policy: bad lines are reported on stderr as FILE:LINE: "
        "message.\n"
        "By default an import is strict: the whole file is checked first\n"
        "and if any line is bad NOTHING is written. With --skip-bad-lines\n"
        "the bad lines are reported and skipped, and the good ones imported.\n"
        "Items are written in transactions of whole items: an interrupted\n"
        "import never leaves half an item.\n"
        "\n"
        "Prints a summary: added N, duplicates N, bad lines N (and banks\n"
        "created, unknown types skipped, when any).\n"
        "\n"
        "options:\n" CLI_DB_HELP "  --format F        te-csv or local\n"
        "  --bank NAME       local: the bank; te-csv: bank of rows with an\n"
        "                    empty collab\n"
        "  --skip-bad-lines  import the good lines, skip (and report) the bad\n"
        "  --no-create-banks refuse records for banks that do not exist\n"
        "  --ignore-unknown-types  skip rows of unsupported signal types\n"
        "                    silently (counted) instead of as bad lines\n"
        "  --label KEY:VALUE a label added to every item (repeatable)\n"
        "  --source S        provenance: file (default), exchange, platform,\n"
        "                    peer or unknown\n"
        "  --source-name N   provenance: where from (default: FILE)\n"
        "  --added-by WHO    provenance: who (default $USER, else 'cli')\n"
        "  --max-errors N    report at most N bad lines (default 100)\n"
        "  --json            print the summary as one JSON object\n"
        "  -h, --help        this help\n"
        "\n"
        "Exit status: 0 when every line was imported (or a duplicate), 2 on\n"
        "any bad line (even with --skip-bad-lines, after importing the good\n"
        "ones) or any other error.\n");
}

int cmd_import(int argc, char **argv)
{
    enum {
        OPT_FORMAT = CLI_OPT_FIRST_FREE,
        OPT_SKIP,
        OPT_NOCREATE,
        OPT_IGNTYPES,
        OPT_MAXERR,
    };
    static const struct option opts[] = {
        CLI_DB_OPTION,
        {"format", required_argument, NULL, OPT_FORMAT},
        {"bank", required_argument, NULL, CLI_OPT_BANK},
        {"skip-bad-lines", no_argument, NULL, OPT_SKIP},
        {"no-create-banks", no_argument, NULL, OPT_NOCREATE},
        {"ignore-unknown-types", no_argument, NULL, OPT_IGNTYPES},
        {"label", required_argument, NULL, CLI_OPT_LABEL},
        {"source", required_argument, NULL, CLI_OPT_SOURCE},
        {"source-name", required_argument, NULL, CLI_OPT_SOURCE_NAME},
        {"added-by", required_argument, NULL, CLI_OPT_ADDED_BY},
        {"max-errors", required_argument, NULL, OPT_MAXERR},
        {"json", no_argument, NULL, CLI_OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    hdb_import_params_t p;
    hdb_import_result_t res;
    const char *db_opt = NULL, *fmt = NULL;
    cli_strv_t labels = {0};
    int json = 0, c, rc = CLI_ERR;
    hdb_t *db = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;

    memset(&p, 0, sizeof p);
    memset(&res, 0, sizeof res);
    p.create_banks = 1;
    p.prov.source = HDB_SOURCE_FILE;
    p.prov.added_by = cli_default_added_by();
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case CLI_OPT_DB:
            db_opt = optarg;
            break;
        case OPT_FORMAT:
            fmt = optarg;
            break;
        case CLI_OPT_BANK:
            p.bank = optarg;
            break;
        case OPT_SKIP:
            p.skip_bad_lines = 1;
            break;
        case OPT_NOCREATE:
            p.create_banks = 0;
            break;
        case OPT_IGNTYPES:
            p.ignore_unknown_types = 1;
            break;
        case CLI_OPT_LABEL:
            if (cli_strv_push(&labels, optarg, 1, "import"))
                goto fail;
            break;
        case CLI_OPT_SOURCE:
            if (hdb_source_from_name(optarg, &p.prov.source) != CORDON_OK) {
                cli_error("import",
                          "bad --source '%s' (platform, exchange, file, peer "
                          "or unknown)",
                          optarg);
                goto fail;
            }
            break;
        case CLI_OPT_SOURCE_NAME:
            p.prov.source_name = optarg;
            break;
        case CLI_OPT_ADDED_BY:
            p.prov.added_by = optarg;
            break;
        case OPT_MAXERR: {
            uint64_t n;
            if (cli_parse_u64(optarg, &n) != 0 || n < 1 || n > 1000000) {
                cli_error("import", "bad --max-errors '%s'", optarg);
                goto fail;
            }
            p.max_errors = (size_t)n;
            break;
        }
        case CLI_OPT_JSON:
            json = 1;
            break;
        case 'h':
            import_usage(stdout);
            rc = CLI_OK;
            goto fail;
        default:
            import_usage(stderr);
            goto fail;
        }
    }
    if (argc - optind != 1) {
        cli_error("import", "expected one FILE (or - for stdin)");
        goto fail;
    }
    const char *file = argv[optind];
    int is_stdin = strcmp(file, "-") == 0;
    if (pick_format("import", fmt, is_stdin ? NULL : file, &p.format))
        goto fail;
    if (p.format == HDB_FMT_LOCAL && !p.bank) {
        cli_error("import", "--bank is required with --format local");
        goto fail;
    }
    if (p.bank && !*p.bank) {
        cli_error("import", "empty --bank");
        goto fail;
    }
    if (!p.prov.source_name)
        p.prov.source_name = is_stdin ? "stdin" : file;
    if (strlen(p.prov.source_name) > HDB_MAX_TEXT ||
        strlen(p.prov.added_by) > HDB_MAX_TEXT) {
        cli_error("import",
                  "--source-name/--added-by (or FILE's name) is "
                  "too long for provenance (at most %d bytes; use "
                  "--source-name)",
                  HDB_MAX_TEXT);
        goto fail;
    }
    p.labels = labels.v;
    p.nlabels = labels.n;
    err_ctx_t ectx = {is_stdin ? "-" : file, 0};
    p.on_error = on_bad_line;
    p.error_ctx = &ectx;

    /* Read the input before touching the database: a missing file must
     * not leave a new empty database behind. */
    if (is_stdin) {
        int r = cli_read_file("-", 0, &buf, &len);
        if (r) {
            cli_error("-", "%s",
                      r == CORDON_EIO ? strerror(errno) : cordon_strerror(r));
            goto fail;
        }
    } else {
        struct stat st;
        if (stat(file, &st) != 0 || access(file, R_OK) != 0) {
            cli_error(file, "%s", strerror(errno));
            goto fail;
        }
        if (S_ISDIR(st.st_mode)) {
            cli_error(file, "is a directory");
            goto fail;
        }
    }
    if (cli_db_open(db_opt, CLI_DB_WRITE, &db))
        goto fail;

    int irc = is_stdin ? hdb_import(db, &p, (const char *)buf, len, &res)
                       : hdb_import_file(db, &p, file, &res);
    if (irc == CORDON_ENOTFOUND && p.format == HDB_FMT_LOCAL) {
        cli_error("import", "no bank '%s' (and --no-create-banks)", p.bank);
        goto fail;
    }
    if (irc && irc != CORDON_EPARSE) {
        cli_db_error("import", ectx.file, irc);
        goto fail;
    }
    if (res.bad > ectx.reported)
        cli_error(ectx.file, "%" PRIu64 " more bad lines not shown",
                  res.bad - ectx.reported);
    if (irc == CORDON_EPARSE && !p.skip_bad_lines) {
        cli_error("import",
                  "%s: %" PRIu64 " bad line%s: nothing imported "
                  "(--skip-bad-lines imports the good lines)",
                  ectx.file, res.bad, res.bad == 1 ? "" : "s");
        goto fail;
    }
    if (json) {
        json_t *o = json_pack(
            "{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "file", ectx.file,
            "records", (json_int_t)res.records, "added", (json_int_t)res.added,
            "duplicates", (json_int_t)res.duplicates, "bad_lines",
            (json_int_t)res.bad, "unknown_types", (json_int_t)res.unknown_types,
            "banks_created", (json_int_t)res.banks_created, "first_seq",
            (json_int_t)res.first_seq, "last_seq", (json_int_t)res.last_seq);
        cli_json_line(stdout, o);
    } else {
        printf("added %" PRIu64 ", duplicates %" PRIu64 ", bad lines %" PRIu64,
               res.added, res.duplicates, res.bad);
        if (res.banks_created)
            printf(", banks created %" PRIu64, res.banks_created);
        if (res.unknown_types)
            printf(", unknown types skipped %" PRIu64, res.unknown_types);
        putchar('\n');
    }
    rc = fflush(stdout) == 0 && !res.bad ? CLI_OK : CLI_ERR;
fail:
    hdb_close(db);
    free(buf);
    cli_strv_free(&labels);
    return rc;
}

/* ------------------------------------------------------------------ */
/* export                                                               */

static void export_usage(FILE *f)
{
    fprintf(f,
            "usage: cordon export [--format te-csv|local] [options] "
            "[-o FILE]\n"
            "\n"
            "Writes the live items as a hash list (see 'cordon import "
            "--help'\n"
            "for the formats), in change-log order, from one snapshot:\n"
            "  te-csv  one row per signal, with a header line; collab is the\n"
            "          bank, labels become category and tags;\n"
            "  local   one '<signal_type> <signal>' line per signal (banks\n"
            "          and labels are not kept).\n"
            "The default format is te-csv, or taken from -o FILE's .csv/.txt\n"
            "extension. PDQ hashes are written without their quality, as the\n"
            "formats define. Deleted items are left out (these formats cannot\n"
            "say 'deleted'). With -o, prints a summary with the sequence to\n"
            "pass as --since next time; the file is replaced only when the\n"
            "export is complete.\n"
            "\n"
            "options:\n" CLI_DB_HELP "  --format F        te-csv or local\n"
            "  --bank NAME       only this bank\n"
            "  --since SEQ       only items changed after change SEQ\n"
            "  --type T          only signals of type T: pdq, md5, sha256,\n"
            "                    vpdq (repeatable)\n"
            "  --no-header       te-csv: no header line\n"
            "  --pytx-names      write video_md5 / video_sha256 type names\n"
            "  -o, --output FILE write to FILE instead of stdout\n"
            "  -h, --help        this help\n"
            "\n"
            "Exit status: 0 on success, 2 on any error.\n");
}

static int stdout_write(void *ctx, const char *buf, size_t len)
{
    (void)ctx;
    return fwrite(buf, 1, len, stdout) == len ? 0 : CORDON_EIO;
}

int cmd_export(int argc, char **argv)
{
    enum {
        OPT_FORMAT = CLI_OPT_FIRST_FREE,
        OPT_SINCE,
        OPT_TYPE,
        OPT_NOHEADER,
        OPT_PYTX,
    };
    static const struct option opts[] = {
        CLI_DB_OPTION,
        {"format", required_argument, NULL, OPT_FORMAT},
        {"bank", required_argument, NULL, CLI_OPT_BANK},
        {"since", required_argument, NULL, OPT_SINCE},
        {"type", required_argument, NULL, OPT_TYPE},
        {"no-header", no_argument, NULL, OPT_NOHEADER},
        {"pytx-names", no_argument, NULL, OPT_PYTX},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    hdb_export_params_t p;
    hdb_export_result_t res;
    const char *db_opt = NULL, *fmt = NULL, *out = NULL;
    char *tmp = NULL;
    FILE *f = NULL;
    hdb_t *db = NULL;
    int c, rc = CLI_ERR;

    memset(&p, 0, sizeof p);
    memset(&res, 0, sizeof res);
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case CLI_OPT_DB:
            db_opt = optarg;
            break;
        case OPT_FORMAT:
            fmt = optarg;
            break;
        case CLI_OPT_BANK:
            p.bank = optarg;
            break;
        case OPT_SINCE:
            if (cli_parse_u64(optarg, &p.since_seq) != 0) {
                cli_error("export", "bad --since '%s'", optarg);
                goto fail;
            }
            break;
        case OPT_TYPE: {
            hdb_sigtype_t t;
            if (hdb_sigtype_from_name(optarg, strlen(optarg), &t) !=
                CORDON_OK) {
                cli_error("export", "bad --type '%s' (pdq, md5, sha256, vpdq)",
                          optarg);
                goto fail;
            }
            p.types |= 1u << t;
            break;
        }
        case OPT_NOHEADER:
            p.no_header = 1;
            break;
        case OPT_PYTX:
            p.pytx_names = 1;
            break;
        case 'o':
            out = optarg;
            break;
        case 'h':
            export_usage(stdout);
            rc = CLI_OK;
            goto fail;
        default:
            export_usage(stderr);
            goto fail;
        }
    }
    if (optind != argc) {
        cli_error("export", "unexpected argument '%s'", argv[optind]);
        goto fail;
    }
    if (out && strcmp(out, "-") == 0)
        out = NULL;
    if (!fmt && !(out && strrchr(out, '.') &&
                  (strcasecmp(strrchr(out, '.'), ".csv") == 0 ||
                   strcasecmp(strrchr(out, '.'), ".txt") == 0)))
        fmt = "te-csv";
    if (pick_format("export", fmt, out, &p.format))
        goto fail;
    if (cli_db_open(db_opt, 0, &db))
        goto fail;
    if (p.bank) {
        hdb_bank_t *b = NULL;
        int brc = hdb_bank_get(db, p.bank, &b);
        hdb_free(b);
        if (brc == CORDON_ENOTFOUND) {
            cli_error("export", "no bank '%s'", p.bank);
            goto fail;
        }
    }
    int erc;
    if (out) {
        /* Write beside the target and rename at the end, so that a failed
         * export never leaves a truncated list where a good one was. */
        size_t n = strlen(out) + 32;
        if (!(tmp = malloc(n))) {
            cli_error("export", "%s", cordon_strerror(CORDON_ENOMEM));
            goto fail;
        }
        snprintf(tmp, n, "%s.tmp.%ld", out, (long)getpid());
        if (!(f = fopen(tmp, "wb"))) {
            cli_error(out, "%s", strerror(errno));
            goto fail;
        }
        erc = hdb_export_file(db, &p, f, &res);
        if (fclose(f) != 0 && !erc)
            erc = CORDON_EIO;
        f = NULL;
        if (!erc && rename(tmp, out) != 0) {
            cli_error(out, "%s", strerror(errno));
            goto fail;
        }
    } else {
        erc = hdb_export(db, &p, stdout_write, NULL, &res);
        if (!erc && fflush(stdout) != 0)
            erc = CORDON_EIO;
    }
    if (erc) {
        if (erc == CORDON_EIO)
            cli_error(out ? out : "export", "write failed: %s",
                      strerror(errno));
        else
            cli_db_error("export", NULL, erc);
        goto fail;
    }
    if (out)
        printf("exported %" PRIu64 " items (%" PRIu64
               " rows) to %s; next --since %" PRIu64 "\n",
               res.items, res.rows, out, res.last_seq);
    else if (cli_progress_enabled())
        fprintf(stderr,
                "exported %" PRIu64 " items (%" PRIu64
                " rows); next --since %" PRIu64 "\n",
                res.items, res.rows, res.last_seq);
    rc = fflush(stdout) == 0 ? CLI_OK : CLI_ERR;
fail:
    if (f)
        fclose(f);
    if (tmp) {
        if (rc != CLI_OK)
            unlink(tmp);
        free(tmp);
    }
    hdb_close(db);
    return rc;
}
