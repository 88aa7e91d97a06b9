/* cmd_bank.c - `cordon bank create|ls|enable|disable|rm`: bank curation. */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cordon.h"
#include "db_common.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cordon bank create NAME [--label KEY:VALUE]... "
            "[--action ACTION] [--disabled]\n"
            "       cordon bank ls [--json]\n"
            "       cordon bank enable NAME\n"
            "       cordon bank disable NAME\n"
            "       cordon bank rm NAME\n"
            "\n"
            "A bank is a named collection of known media with its own rules,\n"
            "e.g. ISIS_AMAQ_VIDEO. Matches against a disabled bank are off.\n"
            "rm deletes an empty bank only (remove its items first).\n"
            "\n"
            "bank ls prints one line per bank:\n"
            "  NAME enabled|disabled items=N tombstones=N action=A "
            "labels=K:V,...\n"
            "(action and labels are '-' when unset).\n"
            "\n"
            "options:\n" CLI_DB_HELP
            "  --label KEY:VALUE create: a label of the bank (repeatable)\n"
            "  --action ACTION   create: the default action, e.g. 'block'\n"
            "  --disabled        create: start disabled\n"
            "  --json            ls: JSON Lines output\n"
            "  -h, --help        this help\n"
            "\n"
            "Exit status: 0 on success, 2 on any error.\n");
}

typedef struct {
    int json;
} ls_ctx_t;

static int print_bank(void *vctx, const hdb_bank_t *b)
{
    ls_ctx_t *ctx = vctx;
    if (ctx->json)
        return cli_json_line(stdout, cli_bank_json(b)) ? CORDON_EIO : 0;
    printf("%s %s items=%" PRIu64 " tombstones=%" PRIu64 " action=%s labels=",
           b->name, b->enabled ? "enabled" : "disabled", b->nitems,
           b->ntombstones,
           b->default_action && *b->default_action ? b->default_action : "-");
    if (!b->nlabels)
        fputs("-", stdout);
    for (size_t i = 0; i < b->nlabels; i++)
        printf("%s%s", i ? "," : "", b->labels[i]);
    putchar('\n');
    return 0;
}

int cmd_bank(int argc, char **argv)
{
    enum { OPT_ACTION = CLI_OPT_FIRST_FREE, OPT_DISABLED };
    static const struct option opts[] = {
        CLI_DB_OPTION,
        {"label", required_argument, NULL, CLI_OPT_LABEL},
        {"action", required_argument, NULL, OPT_ACTION},
        {"disabled", no_argument, NULL, OPT_DISABLED},
        {"json", no_argument, NULL, CLI_OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *db_opt = NULL, *action = NULL;
    int json = 0, disabled = 0, c, rc = CLI_ERR;
    cli_strv_t labels = {0};
    hdb_t *db = NULL;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case CLI_OPT_DB:
            db_opt = optarg;
            break;
        case CLI_OPT_LABEL:
            if (cli_strv_push(&labels, optarg, 1, "bank"))
                goto fail;
            break;
        case OPT_ACTION:
            action = optarg;
            break;
        case OPT_DISABLED:
            disabled = 1;
            break;
        case CLI_OPT_JSON:
            json = 1;
            break;
        case 'h':
            usage(stdout);
            rc = CLI_OK;
            goto fail;
        default:
            usage(stderr);
            goto fail;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        goto fail;
    }
    const char *sub = argv[optind++];
    int nargs = argc - optind;
    const char *name = nargs == 1 ? argv[optind] : NULL;
    int is_create = strcmp(sub, "create") == 0;
    int is_ls = strcmp(sub, "ls") == 0 || strcmp(sub, "list") == 0;
    int is_toggle = strcmp(sub, "enable") == 0 || strcmp(sub, "disable") == 0;
    int is_rm = strcmp(sub, "rm") == 0;
    if (!is_create && !is_ls && !is_toggle && !is_rm) {
        cli_error("bank", "unknown subcommand '%s'", sub);
        usage(stderr);
        goto fail;
    }
    if (is_ls ? nargs != 0 : nargs != 1) {
        cli_error("bank", is_ls ? "ls takes no NAME" : "%s takes one NAME",
                  sub);
        goto fail;
    }
    if (!is_create && (labels.n || action || disabled)) {
        cli_error("bank", "--label, --action and --disabled go with create");
        goto fail;
    }
    if (action && strlen(action) > HDB_MAX_TEXT) {
        cli_error("bank", "--action is too long (at most %d bytes)",
                  HDB_MAX_TEXT);
        goto fail;
    }
    if (cli_db_open(db_opt, is_ls ? 0 : CLI_DB_WRITE, &db))
        goto fail;

    int err;
    if (is_ls) {
        ls_ctx_t ctx = {json};
        err = hdb_bank_list(db, print_bank, &ctx);
        if (err) {
            cli_db_error("bank ls", NULL, err);
            goto fail;
        }
    } else if (is_create) {
        hdb_bank_spec_t spec = {name, !disabled, action, labels.v, labels.n};
        uint32_t id;
        err = hdb_bank_create(db, &spec, &id);
        if (err == CORDON_EEXIST) {
            cli_error("bank create", "bank '%s' already exists", name);
            goto fail;
        }
        if (err == CORDON_EINVAL) {
            cli_error("bank create",
                      "bad bank name '%s' (1..%d bytes, no control "
                      "characters, no leading or trailing blank)",
                      name, HDB_MAX_NAME);
            goto fail;
        }
        if (err) {
            cli_db_error("bank create", name, err);
            goto fail;
        }
        printf("created bank %s\n", name);
    } else if (is_toggle) {
        int enable = sub[0] == 'e';
        const char *where = enable ? "bank enable" : "bank disable";
        err = hdb_bank_set_enabled(db, name, enable);
        if (err == CORDON_ENOTFOUND) {
            cli_error(where, "no bank '%s'", name);
            goto fail;
        }
        if (err) {
            cli_db_error(where, name, err);
            goto fail;
        }
        printf("%s bank %s\n", enable ? "enabled" : "disabled", name);
    } else {
        err = hdb_bank_delete(db, name);
        if (err == CORDON_ENOTFOUND) {
            cli_error("bank rm", "no bank '%s'", name);
            goto fail;
        }
        if (err == CORDON_EBUSY) {
            cli_error("bank rm", "bank '%s' still has items", name);
            goto fail;
        }
        if (err) {
            cli_db_error("bank rm", name, err);
            goto fail;
        }
        printf("removed bank %s\n", name);
    }
    rc = fflush(stdout) == 0 ? CLI_OK : CLI_ERR;
fail:
    hdb_close(db);
    cli_strv_free(&labels);
    return rc;
}
