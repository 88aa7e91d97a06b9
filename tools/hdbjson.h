/*
 * hdbjson.h - JSON forms of hash-database records (banks, items, change-log
 * entries and change-feed pages), per the change-feed contract shared by
 * `cordon serve` (GET /v1/feed) and `cordon sync`. Not a public API of
 * libcordon: it lives with the tools.
 *
 * Caveats:
 * - Encoding never fails on a valid record except for lack of memory
 *   (NULL). The caller owns the returned reference (json_decref()).
 * - Parsing treats its input as untrusted peer data: every field is type
 *   and range checked against hdb.h's rules and limits (names, labels,
 *   texts, hex lengths, qualities, timestamps, counts) before anything is
 *   allocated for it, so a record that parses is one hdb accepts. Unknown
 *   object members are ignored (forward compatibility); missing required
 *   ones, wrong types, embedded NULs and unknown signal types, sources or
 *   change kinds are errors.
 * - Parsed records point into storage owned by their buffer struct. A
 *   buffer must be zero-initialised before its first use; parsing into a
 *   used buffer first releases what it held. The record stays valid until
 *   the buffer's free function (or the next parse into it); it never points
 *   into the json_t, which may be released at once.
 * - On a parse error the buffer's `error` holds an English description
 *   naming the offending member, e.g. "signals[1].value: expected 64 hex
 *   digits"; the record is then unspecified.
 * - Strings: NULL added_by / source_name / note are written as "" and ""
 *   parses back to NULL (added_by, source_name) or "" (note): hdb itself does
 *   not tell them apart.
 * - vPDQ frames are strings "pdqhex,quality,timestamp" with a fourth field
 *   ",count" when an entry stands for more than one consecutive frame.
 *   Quality -1 means unknown (as for PDQ). Timestamps are written in the
 *   shortest form that reads back to the same double. Entries are kept as
 *   given: the parser does not fold equal neighbours.
 */
#ifndef CORDON_HDBJSON_H
#define CORDON_HDBJSON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "hdb.h"

/* Change-feed limits of the contract: GET /v1/feed?since=SEQ&limit=N. */
#define HDBJSON_FEED_LIMIT_DEFAULT 1000
#define HDBJSON_FEED_LIMIT_MAX 10000

/* Storage of parsed records (internal). */
typedef struct hdbjson__blk hdbjson__blk_t;

typedef struct {
    hdb_item_t item;
    hdbjson__blk_t *mem;
    char error[256];
} hdbjson_item_buf_t;

typedef struct {
    hdb_bank_t bank;
    hdbjson__blk_t *mem;
    char error[256];
} hdbjson_bank_buf_t;

typedef struct {
    hdb_change_t change; /* .item or .bank points into item_buf / bank_buf */
    hdbjson_item_buf_t item_buf;
    hdbjson_bank_buf_t bank_buf;
    char error[256];
} hdbjson_change_buf_t;

/* One parsed page of the change feed. */
typedef struct {
    hdbjson_change_buf_t *changes; /* n entries, in increasing seq order */
    size_t n;
    uint64_t next;     /* pass as since= for the following page */
    uint64_t last_seq; /* the peer's newest sequence number */
    int more;          /* the peer says more changes follow */
    char error[256];
} hdbjson_feed_t;

/* ---------------------------------------------------------------- */
/* Encoding                                                           */

/** {"id", "name", "enabled", "default_action", "labels", "deleted"}.
 *  @return a new reference, or NULL when out of memory. */
json_t *hdbjson_bank(const hdb_bank_t *b);

/** {"id", "bank", "labels", "note", "deleted", "disable_until",
 *  "provenance": {"added_by", "source", "source_name", "added_at"},
 *  "signals": [...]}. Tombstones keep their signals.
 *  @return a new reference, or NULL when out of memory (or a signal of an
 *  unknown type). */
json_t *hdbjson_item(const hdb_item_t *it);

/** One signal: {"type", "value"[, "quality"]}. PDQ carries "quality"
 *  (-1 = unknown); vPDQ's value is the array of frame strings.
 *  @return a new reference, or NULL (out of memory, unknown type). */
json_t *hdbjson_signal(const hdb_signal_t *s);

/** {"seq", "kind", "item"|"bank"}. @return a new reference or NULL. */
json_t *hdbjson_change(const hdb_change_t *c);

/**
 * Builds one page of the change feed from db: the changes with seq > since,
 * at most limit of them (0 = HDBJSON_FEED_LIMIT_DEFAULT; more than
 * HDBJSON_FEED_LIMIT_MAX is CORDON_EINVAL), as
 * {"changes": [...], "next": N, "last_seq": N, "more": bool}.
 * @param out receives a new reference on success.
 * @return CORDON_OK, CORDON_EINVAL, CORDON_ENOMEM, or hdb's errors.
 */
int hdbjson_feed_page(hdb_t *db, uint64_t since, size_t limit, json_t **out);

/* ---------------------------------------------------------------- */
/* Parsing (untrusted input)                                          */

/**
 * Parses an item object into buf->item. Required members: "id" (1 ..
 * 2^63-1), "bank" (a bank name; may be "" only in a tombstone) and
 * "signals" (1..HDB_MAX_SIGNALS). Optional, with their defaults: "labels"
 * ([]), "note" (""), "deleted" (false), "disable_until" (0), "provenance"
 * (source unknown, added_at 0). created, updated, seq and bank_id of the
 * record are 0.
 * @return CORDON_OK, CORDON_EPARSE (see buf->error), CORDON_ENOMEM,
 *         CORDON_EINVAL (NULL argument).
 */
int hdbjson_item_parse(const json_t *j, hdbjson_item_buf_t *buf);
/** Releases a parsed item's storage; the buffer may be parsed into again.
 *  NULL is fine. */
void hdbjson_item_buf_free(hdbjson_item_buf_t *buf);

/**
 * Parses a bank object into buf->bank. Required: "name". Optional:
 * "id" (0 .. 2^32-1; default 0), "enabled" (true), "default_action" (""),
 * "labels" ([]), "deleted" (false). Counts and times of the record are 0.
 * @return as hdbjson_item_parse().
 */
int hdbjson_bank_parse(const json_t *j, hdbjson_bank_buf_t *buf);
void hdbjson_bank_buf_free(hdbjson_bank_buf_t *buf);

/**
 * Parses one change: "seq" (1 .. 2^63-1), "kind" (an hdb_change_kind_name)
 * and, matching the kind, "item" or "bank".
 * @return as hdbjson_item_parse().
 */
int hdbjson_change_parse(const json_t *j, hdbjson_change_buf_t *buf);
void hdbjson_change_buf_free(hdbjson_change_buf_t *buf);

/**
 * Parses and checks a feed page answered to since=`since`&limit=`limit`:
 * at most `limit` changes (0 = HDBJSON_FEED_LIMIT_MAX), sequence numbers
 * strictly increasing and above since, "next" equal to the last change's seq
 * (or to since when there is none), "last_seq" >= "next", "more" a boolean.
 * The whole page is validated before this returns, so a caller can refuse
 * a page without having applied any part of it.
 * @param feed must be zero-initialised or freed; released first otherwise.
 * @return CORDON_OK, CORDON_EPARSE (see feed->error), CORDON_ENOMEM,
 *         CORDON_EINVAL.
 */
int hdbjson_feed_parse(const json_t *j, uint64_t since, size_t limit,
                       hdbjson_feed_t *feed);
void hdbjson_feed_free(hdbjson_feed_t *feed);

#endif
