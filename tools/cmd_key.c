/* cmd_key.c - `cordon key`: API keys of the HTTP server (create, ls,
 * revoke). Only a token's SHA-256 is stored; the token itself is shown once,
 * when it is created. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "cli.h"
#include "cordon.h"
#include "db_common.h"
#include "hdb.h"

#define TOKEN_PREFIX "cordon_"
#define TOKEN_BYTES 32

static const char *const roles[] = {"matcher", "curator", "admin"};

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: cordon key create --role ROLE [--name NAME] [--json]\n"
        "       cordon key ls [--json]\n"
        "       cordon key revoke ID\n"
        "\n"
        "Manages the API keys of `cordon serve`. A key's token is printed\n"
        "once, by create; the database keeps only its SHA-256, so a lost\n"
        "token cannot be recovered: revoke it and create another.\n"
        "\n"
        "Roles: matcher (match media), curator (also edit banks and\n"
        "items), admin (everything, including the change feed).\n"
        "\n"
        "options:\n" CLI_DB_HELP
        "  --role ROLE       create: matcher, curator or admin\n"
        "  --name NAME       create: a label for the key (default: the role)\n"
        "  --json            JSON output\n"
        "  -h, --help        this help\n");
}

/* write: 0 read-only, 1 read-write on an existing database, 2 read-write,
 * created if missing (only create: a typo in --db must not conjure an
 * empty database for ls or revoke). */
static int open_db(const char *db_opt, int write, hdb_t **db)
{
    if (write == 1 && access(cli_db_path(db_opt), F_OK) != 0)
        write = 0; /* fails with cli_db_open's message for a missing file */
    return cli_db_open(db_opt, write ? CLI_DB_WRITE : 0, db);
}

/* RFC 4648 base64url without padding. */
static void base64url(const uint8_t *in, size_t n, char *out)
{
    static const char al[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v =
            (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = al[v >> 18 & 63];
        out[o++] = al[v >> 12 & 63];
        out[o++] = al[v >> 6 & 63];
        out[o++] = al[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = al[v >> 18 & 63];
        out[o++] = al[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = al[v >> 18 & 63];
        out[o++] = al[v >> 12 & 63];
        out[o++] = al[v >> 6 & 63];
    }
    out[o] = 0;
}

enum { O_DB = 256, O_ROLE, O_NAME, O_JSON };

static const struct option opts[] = {{"db", required_argument, NULL, O_DB},
                                     {"role", required_argument, NULL, O_ROLE},
                                     {"name", required_argument, NULL, O_NAME},
                                     {"json", no_argument, NULL, O_JSON},
                                     {"help", no_argument, NULL, 'h'},
                                     {NULL, 0, NULL, 0}};

typedef struct {
    const char *db, *role, *name;
    int json;
} key_opts_t;

/* Parses the options of a subcommand; *done is set when --help was shown
 * or an error printed (the return value is then the exit status). */
static int parse_opts(int argc, char **argv, key_opts_t *o, int *done)
{
    int c;
    *done = 0;
    memset(o, 0, sizeof *o);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_DB:
            o->db = optarg;
            break;
        case O_ROLE:
            o->role = optarg;
            break;
        case O_NAME:
            o->name = optarg;
            break;
        case O_JSON:
            o->json = 1;
            break;
        case 'h':
            usage(stdout);
            *done = 1;
            return CLI_OK;
        default:
            usage(stderr);
            *done = 1;
            return CLI_ERR;
        }
    }
    return CLI_OK;
}

static int key_create(int argc, char **argv)
{
    key_opts_t o;
    int done, rc = parse_opts(argc, argv, &o, &done);
    hdb_t *db = NULL;
    if (done)
        return rc;
    if (optind != argc) {
        cli_error("key create", "unexpected argument '%s'", argv[optind]);
        return CLI_ERR;
    }
    int role_ok = 0;
    for (size_t i = 0; o.role && i < sizeof roles / sizeof roles[0]; i++)
        role_ok |= strcmp(o.role, roles[i]) == 0;
    if (!role_ok) {
        cli_error("key create", "--role must be matcher, curator or admin");
        return CLI_ERR;
    }
    const char *name = o.name ? o.name : o.role;
    if (!*name || strlen(name) > HDB_MAX_TEXT) {
        cli_error("key create", "--name must be 1..%d bytes", HDB_MAX_TEXT);
        return CLI_ERR;
    }
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == 0x7f) {
            cli_error("key create", "--name holds a control character");
            return CLI_ERR;
        }

    uint8_t raw[TOKEN_BYTES], digest[32];
    char token[sizeof TOKEN_PREFIX + (TOKEN_BYTES * 4 + 2) / 3 + 1];
    if (RAND_bytes(raw, sizeof raw) != 1) {
        cli_error("key create", "no randomness from OpenSSL");
        return CLI_ERR;
    }
    memcpy(token, TOKEN_PREFIX, sizeof TOKEN_PREFIX - 1);
    base64url(raw, sizeof raw, token + sizeof TOKEN_PREFIX - 1);
    memset(raw, 0, sizeof raw);
    /* The server hashes the whole bearer token, prefix included. */
    if (cordon_digest((const uint8_t *)token, strlen(token), NULL, digest)) {
        cli_error("key create", "SHA-256 failed");
        return CLI_ERR;
    }
    const char *path = cli_db_path(o.db);
    if ((rc = open_db(o.db, 2, &db)) != CLI_OK)
        return rc;
    uint64_t id = 0;
    int hrc = hdb_apikey_add(db, name, o.role, digest, &id);
    hdb_close(db);
    if (hrc != CORDON_OK) {
        cli_error(path, "adding the key: %s", cordon_strerror(hrc));
        return CLI_ERR;
    }
    if (o.json) {
        json_t *j = json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)id,
                              "name", name, "role", o.role, "token", token);
        char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (s)
            puts(s);
        free(s);
        json_decref(j);
    } else {
        puts(token);
    }
    fprintf(stderr,
            "cordon: key %llu (%s, role %s) created. Store the token now: it "
            "cannot be shown again.\n",
            (unsigned long long)id, name, o.role);
    memset(token, 0, sizeof token);
    return fflush(stdout) == 0 ? CLI_OK : CLI_ERR;
}

typedef struct {
    int json;
    int n;
} ls_ctx_t;

static int ls_cb(void *ctx, const hdb_apikey_t *k)
{
    ls_ctx_t *c = ctx;
    char created[32], revoked[32];
    cli_format_time(k->created, created, sizeof created);
    if (k->revoked_at)
        cli_format_time(k->revoked_at, revoked, sizeof revoked);
    else
        strcpy(revoked, "-");
    if (c->json) {
        json_t *j = json_pack(
            "{s:I, s:s, s:s, s:s, s:I, s:b, s:o}", "id", (json_int_t)k->id,
            "name", k->name, "role", k->role, "created", created, "created_at",
            (json_int_t)k->created, "revoked", k->revoked_at != 0, "revoked_at",
            k->revoked_at ? json_string(revoked) : json_null());
        char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (s)
            puts(s);
        free(s);
        json_decref(j);
    } else {
        /* Names are free text: keep the line a line. */
        printf("%llu\t", (unsigned long long)k->id);
        for (const char *p = k->name; *p; p++)
            putchar(*p == '\t' ? ' ' : *p);
        printf("\t%s\t%s\t%s\n", k->role, created, revoked);
    }
    c->n++;
    return 0;
}

static int key_ls(int argc, char **argv)
{
    key_opts_t o;
    int done, rc = parse_opts(argc, argv, &o, &done);
    hdb_t *db = NULL;
    if (done)
        return rc;
    if (optind != argc) {
        cli_error("key ls", "unexpected argument '%s'", argv[optind]);
        return CLI_ERR;
    }
    const char *path = cli_db_path(o.db);
    if ((rc = open_db(o.db, 0, &db)) != CLI_OK)
        return rc;
    ls_ctx_t c = {o.json, 0};
    if (!o.json && isatty(STDOUT_FILENO))
        printf("ID\tNAME\tROLE\tCREATED\tREVOKED\n");
    int hrc = hdb_apikey_list(db, ls_cb, &c);
    hdb_close(db);
    if (hrc != CORDON_OK) {
        cli_error(path, "listing keys: %s", cordon_strerror(hrc));
        return CLI_ERR;
    }
    return fflush(stdout) == 0 ? CLI_OK : CLI_ERR;
}

static int key_revoke(int argc, char **argv)
{
    key_opts_t o;
    int done, rc = parse_opts(argc, argv, &o, &done);
    hdb_t *db = NULL;
    uint64_t id;
    if (done)
        return rc;
    if (optind + 1 != argc || cli_parse_u64(argv[optind], &id) != 0 || !id) {
        cli_error("key revoke", "expected one key ID (see cordon key ls)");
        return CLI_ERR;
    }
    const char *path = cli_db_path(o.db);
    if ((rc = open_db(o.db, 1, &db)) != CLI_OK)
        return rc;
    int hrc = hdb_apikey_revoke(db, id);
    hdb_close(db);
    if (hrc == CORDON_ENOTFOUND) {
        cli_error("key revoke", "no active key %llu", (unsigned long long)id);
        return CLI_ERR;
    }
    if (hrc != CORDON_OK) {
        cli_error(path, "revoking key %llu: %s", (unsigned long long)id,
                  cordon_strerror(hrc));
        return CLI_ERR;
    }
    if (!o.json)
        fprintf(stderr, "cordon: key %llu revoked\n", (unsigned long long)id);
    return CLI_OK;
}

int cmd_key(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_ERR;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 ||
        strcmp(sub, "help") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(sub, "create") == 0)
        return key_create(argc - 1, argv + 1);
    if (strcmp(sub, "ls") == 0 || strcmp(sub, "list") == 0)
        return key_ls(argc - 1, argv + 1);
    if (strcmp(sub, "revoke") == 0)
        return key_revoke(argc - 1, argv + 1);
    cli_error("key", "unknown subcommand '%s' (create, ls, revoke)", sub);
    return CLI_ERR;
}
