/*
 * db_common.h - plumbing shared by the cordon commands that use the hash
 * database (not a public API): finding and opening the database, options
 * every such command takes, times, labels, and the text / JSON forms of
 * banks and items.
 *
 * Caveats:
 * - Functions named cli_db_* print their own error messages (DESIGN 6.12
 *   form "cordon: <where>: <msg>") and return CLI_OK or CLI_ERR, so that a
 *   command can simply return what they return.
 * - "Disabled indefinitely" is stored as disable_until = CLI_FOREVER
 *   (INT64_MAX): hashdb only knows "disabled until a time", and a matcher
 *   that compares disable_until > now honours it without a special case.
 */
#ifndef CORDON_DB_COMMON_H
#define CORDON_DB_COMMON_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "hdb.h"

#define CLI_FOREVER INT64_MAX

/* The database a command uses when nothing says otherwise. */
#define CLI_DB_DEFAULT "cordon.db"

/* getopt_long values shared by the database commands (above any char). */
enum {
    CLI_OPT_DB = 1000,
    CLI_OPT_JSON,
    CLI_OPT_LABEL,
    CLI_OPT_NOTE,
    CLI_OPT_SOURCE,
    CLI_OPT_SOURCE_NAME,
    CLI_OPT_ADDED_BY,
    CLI_OPT_BANK,
    CLI_OPT_FIRST_FREE /* commands number their own options from here */
};

/* The --db option entry, for a command's struct option table. */
#define CLI_DB_OPTION                                                          \
    {                                                                          \
        "db", required_argument, NULL, CLI_OPT_DB                              \
    }

/* The help text line for --db, for usage() texts. */
#define CLI_DB_HELP                                                            \
    "  --db PATH         database file (default: $CORDON_DB, else "            \
    "./" CLI_DB_DEFAULT ")\n"

/**
 * The database path a command should use: opt (the --db value) if set, else
 * $CORDON_DB if set and non-empty, else CLI_DB_DEFAULT. The result points to
 * opt, the environment or static storage; it is never NULL.
 */
const char *cli_db_path(const char *opt);

/* Flags of cli_db_open(). */
#define CLI_DB_WRITE 1u  /* open for writing, creating the file if missing */
#define CLI_DB_NOSYNC 2u /* do not fsync at each commit (tests, bulk work) */

/**
 * Opens the database named by cli_db_path(db_opt). Read-only opens (flags
 * without CLI_DB_WRITE) never create anything: a missing file is reported
 * as such, with a hint, so that a typo in --db does not look like an empty
 * database. Errors are printed; *out is the handle on success (close with
 * hdb_close()).
 * @return CLI_OK or CLI_ERR.
 */
int cli_db_open(const char *db_opt, unsigned flags, hdb_t **out);

/**
 * Prints a database error of a command: "cordon: <where>: <what>: <msg>"
 * (what may be NULL), with friendlier words for the common codes.
 * Returns CLI_ERR.
 */
int cli_db_error(const char *where, const char *what, int rc);

/* A growing list of strings owned by the caller's argv (--label values). */
typedef struct {
    const char **v;
    size_t n, cap;
} cli_strv_t;

/** Appends s (not copied). Prints and returns CLI_ERR on a bad label when
 *  is_label is set (the same rules as hdb.h's) or past HDB_MAX_LABELS. */
int cli_strv_push(cli_strv_t *sv, const char *s, int is_label,
                  const char *where);
void cli_strv_free(cli_strv_t *sv);

/** Checks a "key:value" label by hdb's rules. Returns NULL when good, else
 *  a static English reason. */
const char *cli_label_problem(const char *label);

/**
 * Parses a time for --until and the like, relative to now:
 * - Unix seconds: "1764547200";
 * - ISO-8601 UTC: "2026-12-01T00:00:00Z", also without the seconds
 *   ("2026-12-01T00:00Z") or as a date alone ("2026-12-01", midnight UTC);
 * - relative: "+30s", "+15m", "+12h", "+7d", "+2w".
 * @return 0 and *out, or -1 on anything else (including overflow).
 */
int cli_parse_time(const char *s, int64_t now, int64_t *out);

/** Formats t as ISO-8601 UTC ("2026-12-01T00:00:00Z") into buf (>= 32
 *  bytes); CLI_FOREVER gives "forever". Returns buf. */
char *cli_format_time(int64_t t, char *buf, size_t cap);

/** The provenance defaults of commands that add items: added_by from
 *  $USER, else "cli". Static or environment storage. */
const char *cli_default_added_by(void);

/**
 * An item's state word at time now: "deleted", "active", "disabled"
 * (indefinitely) or "disabled-until" (a disable in the future; the time is
 * the item's disable_until). A disable that has expired is "active".
 */
const char *cli_item_state(const hdb_item_t *it, int64_t now);

/**
 * The item as a JSON object: id, bank, state, labels, note, provenance,
 * times (Unix seconds), seq and signals. vPDQ signals carry their frame
 * count, and with full set also their frames. Returns a new reference, or
 * NULL when out of memory.
 */
json_t *cli_item_json(const hdb_item_t *it, int64_t now, int full);

/** The bank as a JSON object (name, enabled, action, labels, counts, ...).
 *  Returns a new reference, or NULL when out of memory. */
json_t *cli_bank_json(const hdb_bank_t *b);

/** Writes o compactly as one line to f and releases it (NULL is ignored:
 *  out of memory already). Returns 0, or -1 when it could not be written. */
int cli_json_line(FILE *f, json_t *o);

/**
 * Formats a signal as "type:value" for text output: PDQ as "pdq:hex,quality"
 * (bare hex when the quality is unknown), vPDQ as "vpdq:<n>frames". Writes
 * at most cap bytes (>= 160 is always enough) into buf and returns buf.
 */
char *cli_signal_text(const hdb_signal_t *s, char *buf, size_t cap);

/** Writes s to f with backslash escapes for '\\' and control characters,
 *  so that free text keeps a line-oriented output line-oriented. */
void cli_put_escaped(FILE *f, const char *s);

#endif
