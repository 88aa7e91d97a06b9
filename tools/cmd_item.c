/*
 * cmd_item.c - item inspection and curation: `cordon ls`, `show`, `rm`,
 * `disable`, `enable`, and `stats`.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cordon.h"
#include "db_common.h"

/* Parses an item id argument; prints and returns CLI_ERR when bad. */
static int parse_id(const char *where, const char *s, uint64_t *id)
{
    if (cli_parse_u64(s, id) != 0 || *id == 0) {
        cli_error(where, "bad item id '%s' (a positive integer)", s);
        return CLI_ERR;
    }
    return CLI_OK;
}

/* Reports a failed write on an item, telling a tombstone from an id that
 * was never used. Returns CLI_ERR. */
static int item_error(hdb_t *db, const char *where, uint64_t id, int rc)
{
    if (rc != CORDON_ENOTFOUND)
        return cli_db_error(where, NULL, rc);
    hdb_item_t *it = NULL;
    if (hdb_item_get(db, id, &it) == CORDON_OK && it->deleted)
        cli_error(where, "item %" PRIu64 " is deleted", id);
    else
        cli_error(where, "no item %" PRIu64, id);
    hdb_free(it);
    return CLI_ERR;
}

/* ------------------------------------------------------------------ */
/* ls                                                                   */

typedef struct {
    int json;
    int64_t now;
} ls_ctx_t;

static void print_item_line(const hdb_item_t *it, int64_t now)
{
    char buf[256], t[32];
    printf("%" PRIu64 " %s ", it->id, it->bank);
    const char *state = cli_item_state(it, now);
    if (strcmp(state, "disabled-until") == 0)
        printf("disabled-until:%s",
               cli_format_time(it->disable_until, t, sizeof t));
    else
        fputs(state, stdout);
    for (size_t i = 0; i < it->nsignals; i++)
        printf(" %s", cli_signal_text(&it->signals[i], buf, sizeof buf));
    putchar(' ');
    if (it->prov.source_name && *it->prov.source_name)
        cli_put_escaped(stdout, it->prov.source_name);
    else
        putchar('-');
    putchar('\n');
}

static int ls_item(void *vctx, const hdb_item_t *it)
{
    ls_ctx_t *ctx = vctx;
    if (ctx->json)
        return cli_json_line(stdout, cli_item_json(it, ctx->now, 0))
                   ? CORDON_EIO
                   : 0;
    print_item_line(it, ctx->now);
    return ferror(stdout) ? CORDON_EIO : 0;
}

static void ls_usage(FILE *f)
{
    fprintf(f, "usage: cordon ls [--bank NAME] [--limit N] [--after ID] "
               "[--all] [--json]\n"
               "\n"
               "Lists live items in id order, one line each:\n"
               "  ID BANK STATE TYPE:VALUE... SOURCE_NAME\n"
               "STATE is active, disabled (indefinitely),\n"
               "disabled-until:<ISO-8601 time>, or deleted (with --all).\n"
               "A PDQ value is printed as HEX,QUALITY; a vPDQ one as "
               "vpdq:<N>frames.\n"
               "\n"
               "options:\n" CLI_DB_HELP
               "  --bank NAME       only items of this bank\n"
               "  --limit N         at most N items\n"
               "  --after ID        only items with a larger id (paging)\n"
               "  --all             include deleted items (tombstones); not "
               "with --bank\n"
               "  --json            JSON Lines output, one object per item\n"
               "  -h, --help        this help\n"
               "\n"
               "Exit status: 0 on success, 2 on any error.\n");
}

int cmd_ls(int argc, char **argv)
{
    enum { OPT_LIMIT = CLI_OPT_FIRST_FREE, OPT_AFTER, OPT_ALL };
    static const struct option opts[] = {
        CLI_DB_OPTION,
        {"bank", required_argument, NULL, CLI_OPT_BANK},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"after", required_argument, NULL, OPT_AFTER},
        {"all", no_argument, NULL, OPT_ALL},
        {"json", no_argument, NULL, CLI_OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *db_opt = NULL, *bank = NULL;
    uint64_t limit = 0, after = 0;
    int all = 0, c;
    ls_ctx_t ctx = {0, (int64_t)time(NULL)};

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case CLI_OPT_DB:
            db_opt = optarg;
            break;
        case CLI_OPT_BANK:
            bank = optarg;
            break;
        case OPT_LIMIT:
            if (cli_parse_u64(optarg, &limit) != 0 || limit > SIZE_MAX) {
                cli_error("ls", "bad --limit '%s'", optarg);
                return CLI_ERR;
            }
            break;
        case OPT_AFTER:
            if (cli_parse_u64(optarg, &after) != 0) {
                cli_error("ls", "bad --after '%s'", optarg);
                return CLI_ERR;
            }
            break;
        case OPT_ALL:
            all = 1;
            break;
        case CLI_OPT_JSON:
            ctx.json = 1;
            break;
        case 'h':
            ls_usage(stdout);
            return CLI_OK;
        default:
            ls_usage(stderr);
            return CLI_ERR;
        }
    }
    if (optind != argc) {
        cli_error("ls", "unexpected argument '%s'", argv[optind]);
        return CLI_ERR;
    }
    if (all && bank) {
        cli_error("ls", "--all lists every bank: it does not go with --bank");
        return CLI_ERR;
    }
    /* --limit 0 means none, as everywhere in hashdb. */
    hdb_t *db;
    if (cli_db_open(db_opt, 0, &db))
        return CLI_ERR;
    int rc = hdb_item_list(db, bank, after, (size_t)limit,
                           all ? HDB_LIST_TOMBSTONES : 0, ls_item, &ctx, NULL);
    if (rc == CORDON_ENOTFOUND && bank)
        cli_error("ls", "no bank '%s'", bank);
    else if (rc == CORDON_EIO)
        cli_error("ls", "cannot write the output");
    else if (rc)
        cli_db_error("ls", NULL, rc);
    hdb_close(db);
    if (fflush(stdout) != 0)
        rc = CORDON_EIO;
    return rc ? CLI_ERR : CLI_OK;
}

/* ------------------------------------------------------------------ */
/* show                                                                 */

static void show_text(const hdb_item_t *it, int64_t now)
{
    char t[32], buf[256];
    printf("id: %" PRIu64 "\n", it->id);
    printf("bank: %s\n", it->bank);
    printf("state: %s\n", cli_item_state(it, now));
    printf("disable_until: %s\n",
           it->disable_until ? cli_format_time(it->disable_until, t, sizeof t)
                             : "-");
    fputs("labels:", stdout);
    for (size_t i = 0; i < it->nlabels; i++)
        printf(" %s", it->labels[i]);
    if (!it->nlabels)
        fputs(" -", stdout);
    fputs("\nnote: ", stdout);
    if (it->note && *it->note)
        cli_put_escaped(stdout, it->note);
    else
        putchar('-');
    fputs("\nadded_by: ", stdout);
    cli_put_escaped(stdout, it->prov.added_by && *it->prov.added_by
                                ? it->prov.added_by
                                : "-");
    printf("\nsource: %s\nsource_name: ", hdb_source_name(it->prov.source));
    cli_put_escaped(stdout, it->prov.source_name && *it->prov.source_name
                                ? it->prov.source_name
                                : "-");
    printf("\nadded_at: %s\n", cli_format_time(it->prov.added_at, t, sizeof t));
    printf("created: %s\n", cli_format_time(it->created, t, sizeof t));
    printf("updated: %s\n", cli_format_time(it->updated, t, sizeof t));
    printf("seq: %" PRIu64 "\n", it->seq);
    for (size_t i = 0; i < it->nsignals; i++) {
        const hdb_signal_t *s = &it->signals[i];
        if (s->type == HDB_SIG_PDQ) {
            char hex[65];
            cordon_hash_to_hex(&s->pdq, hex);
            if (s->quality == HDB_QUALITY_UNKNOWN)
                printf("pdq: %s quality unknown\n", hex);
            else
                printf("pdq: %s quality %d\n", hex, s->quality);
        } else if (s->type == HDB_SIG_VPDQ) {
            uint64_t frames = 0;
            for (size_t k = 0; k < s->nframes; k++)
                frames += s->frames[k].count;
            printf("vpdq: %" PRIu64 " frames in %zu entries\n", frames,
                   s->nframes);
        } else {
            /* "md5:HEX" -> "md5: HEX" */
            cli_signal_text(s, buf, sizeof buf);
            char *colon = strchr(buf, ':');
            if (colon) {
                *colon = 0;
                printf("%s: %s\n", buf, colon + 1);
            }
        }
    }
}

static void show_usage(FILE *f)
{
    fprintf(
        f, "usage: cordon show [--json] ID...\n"
           "\n"
           "Prints every field of items, deleted ones (tombstones) too, as\n"
           "'key: value' lines: id, bank, state, disable_until, labels, note,\n"
           "added_by, source, source_name, added_at, created, updated, seq,\n"
           "then one line per signal ('pdq: HEX quality Q', 'md5: HEX',\n"
           "'sha256: HEX', 'vpdq: N frames in M entries'). Times are\n"
           "ISO-8601 UTC. Items are separated by a blank line.\n"
           "\n"
           "options:\n" CLI_DB_HELP
           "  --json            one JSON object per item (vPDQ with frames)\n"
           "  -h, --help        this help\n"
           "\n"
           "Exit status: 0 on success, 2 when any item is missing.\n");
}

/*
 * Options of the commands that take only --db, --json and --help. Returns
 * -1 to go on (optind then indexes the operands), else the exit status to
 * return (help printed, or a usage error).
 */
static int parse_db_json(int argc, char **argv, void (*usage)(FILE *),
                         const char **db_opt, int *json)
{
    static const struct option opts[] = {
        CLI_DB_OPTION,
        {"json", no_argument, NULL, CLI_OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c;
    *db_opt = NULL;
    *json = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case CLI_OPT_DB:
            *db_opt = optarg;
            break;
        case CLI_OPT_JSON:
            *json = 1;
            break;
        case 'h':
            usage(stdout);
            return CLI_OK;
        default:
            usage(stderr);
            return CLI_ERR;
        }
    }
    return -1;
}

int cmd_show(int argc, char **argv)
{
    const char *db_opt;
    int json;
    int done = parse_db_json(argc, argv, show_usage, &db_opt, &json);
    if (done >= 0)
        return done;
    if (optind >= argc) {
        show_usage(stderr);
        return CLI_ERR;
    }
    for (int i = optind; i < argc; i++) {
        uint64_t id;
        if (parse_id("show", argv[i], &id))
            return CLI_ERR;
    }
    hdb_t *db;
    if (cli_db_open(db_opt, 0, &db))
        return CLI_ERR;
    int64_t now = (int64_t)time(NULL);
    int bad = 0;
    for (int i = optind; i < argc; i++) {
        uint64_t id;
        cli_parse_u64(argv[i], &id);
        hdb_item_t *it = NULL;
        int rc = hdb_item_get(db, id, &it);
        if (rc == CORDON_ENOTFOUND) {
            cli_error("show", "no item %" PRIu64, id);
            bad++;
            continue;
        }
        if (rc) {
            cli_db_error("show", NULL, rc);
            bad++;
            continue;
        }
        if (json) {
            if (cli_json_line(stdout, cli_item_json(it, now, 1)))
                bad++;
        } else {
            if (i > optind)
                putchar('\n');
            show_text(it, now);
        }
        hdb_free(it);
    }
    hdb_close(db);
    if (fflush(stdout) != 0)
        bad++;
    return bad ? CLI_ERR : CLI_OK;
}

/* ------------------------------------------------------------------ */
/* rm, disable, enable                                                  */

typedef enum { ACT_RM, ACT_DISABLE, ACT_ENABLE } act_t;

static void act_usage(FILE *f, act_t act)
{
    switch (act) {
    case ACT_RM:
        fprintf(f, "usage: cordon rm ID...\n"
                   "\n"
                   "Deletes items. Each leaves a tombstone, so that replicas "
                   "and\n"
                   "exports after it learn of the delete; 'cordon show ID' "
                   "still\n"
                   "prints a deleted item, 'cordon ls' no longer lists it.\n");
        break;
    case ACT_DISABLE:
        fprintf(f,
                "usage: cordon disable [--until TIME] ID...\n"
                "\n"
                "Disables items: they stay in the database but do not match.\n"
                "Without --until, until 'cordon enable'. TIME is one of:\n"
                "  1764547200              Unix seconds\n"
                "  2026-12-01T00:00:00Z    ISO-8601, UTC only "
                "(also 2026-12-01)\n"
                "  +7d                     from now: s, m, h, d or w\n"
                "A TIME in the past is refused.\n");
        break;
    case ACT_ENABLE:
        fprintf(f, "usage: cordon enable ID...\n"
                   "\n"
                   "Enables disabled items again.\n");
        break;
    }
    fprintf(f, "\noptions:\n" CLI_DB_HELP);
    if (act == ACT_DISABLE)
        fprintf(f, "  --until TIME      disable until then (see above)\n");
    fprintf(f, "  -h, --help        this help\n"
               "\n"
               "Exit status: 0 on success, 2 when any item failed.\n");
}

static int run_act(int argc, char **argv, act_t act)
{
    enum { OPT_UNTIL = CLI_OPT_FIRST_FREE };
    static const struct option opts_dis[] = {
        CLI_DB_OPTION,
        {"until", required_argument, NULL, OPT_UNTIL},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const struct option *opts = opts_dis;
    static const struct option opts_plain[] = {
        CLI_DB_OPTION, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    const char *where = argv[0], *db_opt = NULL, *until_s = NULL;
    int c;
    if (act != ACT_DISABLE)
        opts = opts_plain;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case CLI_OPT_DB:
            db_opt = optarg;
            break;
        case OPT_UNTIL:
            until_s = optarg;
            break;
        case 'h':
            act_usage(stdout, act);
            return CLI_OK;
        default:
            act_usage(stderr, act);
            return CLI_ERR;
        }
    }
    if (optind >= argc) {
        act_usage(stderr, act);
        return CLI_ERR;
    }
    for (int i = optind; i < argc; i++) {
        uint64_t id;
        if (parse_id(where, argv[i], &id))
            return CLI_ERR;
    }
    int64_t now = (int64_t)time(NULL), until = CLI_FOREVER;
    if (until_s) {
        if (cli_parse_time(until_s, now, &until) != 0) {
            cli_error(where,
                      "bad --until '%s' (Unix seconds, "
                      "2026-12-01T00:00:00Z, or +7d)",
                      until_s);
            return CLI_ERR;
        }
        if (until <= now) {
            char t[32];
            cli_error(where,
                      "--until %s is in the past: the item would not be "
                      "disabled",
                      cli_format_time(until, t, sizeof t));
            return CLI_ERR;
        }
    }
    hdb_t *db;
    if (cli_db_open(db_opt, CLI_DB_WRITE, &db))
        return CLI_ERR;
    int bad = 0;
    for (int i = optind; i < argc; i++) {
        uint64_t id;
        cli_parse_u64(argv[i], &id);
        int rc;
        switch (act) {
        case ACT_RM:
            rc = hdb_item_remove(db, id, NULL);
            break;
        case ACT_DISABLE:
            rc = hdb_item_set_disable_until(db, id, until);
            break;
        default:
            rc = hdb_item_set_disable_until(db, id, 0);
            break;
        }
        if (rc) {
            item_error(db, where, id, rc);
            bad++;
            continue;
        }
        if (act == ACT_RM) {
            printf("removed item %" PRIu64 "\n", id);
        } else if (act == ACT_ENABLE) {
            printf("enabled item %" PRIu64 "\n", id);
        } else if (until == CLI_FOREVER) {
            printf("disabled item %" PRIu64 " indefinitely\n", id);
        } else {
            char t[32];
            printf("disabled item %" PRIu64 " until %s\n", id,
                   cli_format_time(until, t, sizeof t));
        }
    }
    hdb_close(db);
    if (fflush(stdout) != 0)
        bad++;
    return bad ? CLI_ERR : CLI_OK;
}

int cmd_rm(int argc, char **argv)
{
    return run_act(argc, argv, ACT_RM);
}

int cmd_disable(int argc, char **argv)
{
    return run_act(argc, argv, ACT_DISABLE);
}

int cmd_enable(int argc, char **argv)
{
    return run_act(argc, argv, ACT_ENABLE);
}

/* ------------------------------------------------------------------ */
/* stats                                                                */

static void stats_usage(FILE *f)
{
    fprintf(f, "usage: cordon stats [--json]\n"
               "\n"
               "Prints database counts as 'key: value' lines: path, schema,\n"
               "banks, items (live), tombstones, signals.pdq, signals.md5,\n"
               "signals.sha256, signals.vpdq (live signals by type),\n"
               "last_seq (the change log position), file_size and map_used\n"
               "(bytes).\n"
               "\n"
               "options:\n" CLI_DB_HELP "  --json            one JSON object\n"
               "  -h, --help        this help\n"
               "\n"
               "Exit status: 0 on success, 2 on any error.\n");
}

int cmd_stats(int argc, char **argv)
{
    const char *db_opt;
    int json;
    int done = parse_db_json(argc, argv, stats_usage, &db_opt, &json);
    if (done >= 0)
        return done;
    if (optind != argc) {
        cli_error("stats", "unexpected argument '%s'", argv[optind]);
        return CLI_ERR;
    }
    hdb_t *db;
    if (cli_db_open(db_opt, 0, &db))
        return CLI_ERR;
    hdb_stats_t st;
    int rc = hdb_stats(db, &st);
    if (rc) {
        hdb_close(db);
        return cli_db_error("stats", NULL, rc);
    }
    const char *path = cli_db_path(db_opt);
    if (json) {
        json_t *sig = json_object();
        for (int t = 1; sig && t <= HDB_SIG_MAX; t++)
            json_object_set_new(sig, hdb_sigtype_name((hdb_sigtype_t)t),
                                json_integer((json_int_t)st.signals[t]));
        json_t *o = json_pack(
            "{s:s, s:i, s:I, s:I, s:I, s:o, s:I, s:I, s:I, s:I}", "path", path,
            "schema", (int)st.schema_version, "banks", (json_int_t)st.banks,
            "items", (json_int_t)st.items, "tombstones",
            (json_int_t)st.tombstones, "signals", sig ? sig : json_null(),
            "last_seq", (json_int_t)st.last_seq, "file_size",
            (json_int_t)st.file_size, "map_size", (json_int_t)st.map_size,
            "map_used", (json_int_t)st.map_used);
        if (cli_json_line(stdout, o))
            rc = CORDON_EIO;
    } else {
        printf("path: %s\nschema: %u\nbanks: %" PRIu64 "\nitems: %" PRIu64
               "\ntombstones: %" PRIu64 "\n",
               path, st.schema_version, st.banks, st.items, st.tombstones);
        for (int t = 1; t <= HDB_SIG_MAX; t++)
            printf("signals.%s: %" PRIu64 "\n",
                   hdb_sigtype_name((hdb_sigtype_t)t), st.signals[t]);
        printf("last_seq: %" PRIu64 "\nfile_size: %" PRIu64
               "\nmap_used: %" PRIu64 "\n",
               st.last_seq, st.file_size, st.map_used);
    }
    hdb_close(db);
    if (fflush(stdout) != 0)
        rc = CORDON_EIO;
    return rc ? CLI_ERR : CLI_OK;
}
