/* db_common.c - helpers shared by the database commands (see db_common.h). */
#include "db_common.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cordon.h"

const char *cli_db_path(const char *opt)
{
    if (opt && *opt)
        return opt;
    const char *env = getenv("CORDON_DB");
    if (env && *env)
        return env;
    return CLI_DB_DEFAULT;
}

int cli_db_error(const char *where, const char *what, int rc)
{
    const char *msg;
    switch (rc) {
    case CORDON_EFORMAT:
        msg = "not a Cordon database (not an LMDB file)";
        break;
    case CORDON_EDBVERSION:
        msg = "database schema not supported by this version of cordon";
        break;
    case CORDON_EPERM:
        msg = "permission denied";
        break;
    case CORDON_ETOOLARGE:
        msg = "database reached its maximum size";
        break;
    default:
        msg = cordon_strerror(rc);
        break;
    }
    if (what)
        cli_error(where, "%s: %s", what, msg);
    else
        cli_error(where, "%s", msg);
    return CLI_ERR;
}

int cli_db_open(const char *db_opt, unsigned flags, hdb_t **out)
{
    const char *path = cli_db_path(db_opt);
    hdb_opts_t o;
    memset(&o, 0, sizeof o);
    o.readonly = !(flags & CLI_DB_WRITE);
    o.nosync = (flags & CLI_DB_NOSYNC) != 0;
    errno = 0;
    int rc = hdb_open(path, &o, out);
    if (rc == CORDON_OK)
        return CLI_OK;
    if (rc == CORDON_ENOTFOUND && (flags & CLI_DB_WRITE)) {
        cli_error(path, "cannot create the database: %s",
                  errno ? strerror(errno) : "no such directory");
        return CLI_ERR;
    }
    if (rc == CORDON_ENOTFOUND) {
        cli_error(path,
                  "no database here (commands that write create one, e.g. "
                  "'cordon bank create NAME'; choose another with --db or "
                  "$CORDON_DB)");
        return CLI_ERR;
    }
    if (rc == CORDON_EIO || rc == CORDON_EDB) {
        /* hdb maps most system errors to these; errno usually still says
         * what really happened (a directory that does not exist, ...). */
        if (errno) {
            cli_error(path, "cannot open database: %s", strerror(errno));
            return CLI_ERR;
        }
    }
    return cli_db_error(path, "cannot open database", rc);
}

int cli_strv_push(cli_strv_t *sv, const char *s, int is_label,
                  const char *where)
{
    if (is_label) {
        const char *why = cli_label_problem(s);
        if (why) {
            cli_error(where, "bad label '%s': %s", s, why);
            return CLI_ERR;
        }
        if (sv->n >= HDB_MAX_LABELS) {
            cli_error(where, "too many labels (at most %d)", HDB_MAX_LABELS);
            return CLI_ERR;
        }
    }
    if (sv->n == sv->cap) {
        size_t cap = sv->cap ? sv->cap * 2 : 8;
        const char **v = realloc(sv->v, cap * sizeof *v);
        if (!v) {
            cli_error(where, "%s", cordon_strerror(CORDON_ENOMEM));
            return CLI_ERR;
        }
        sv->v = v;
        sv->cap = cap;
    }
    sv->v[sv->n++] = s;
    return CLI_OK;
}

void cli_strv_free(cli_strv_t *sv)
{
    free(sv->v);
    memset(sv, 0, sizeof *sv);
}

const char *cli_label_problem(const char *label)
{
    const char *colon = strchr(label, ':');
    if (!colon)
        return "expected key:value";
    if (colon == label)
        return "empty key";
    if (!colon[1])
        return "empty value";
    if (strlen(label) > HDB_MAX_LABEL)
        return "too long";
    for (const unsigned char *p = (const unsigned char *)label; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return "no blanks or control characters allowed";
    return NULL;
}

/* Parses exactly n digits at *p into *v; advances *p. */
static int digits(const char **p, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        x = x * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *v = x;
    return 0;
}

static int parse_iso(const char *s, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int y, mo, d, h = 0, mi = 0, sec = 0;
    const char *p = s;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
        digits(&p, 2, &d))
        return -1;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi))
            return -1;
        if (*p == ':') {
            p++;
            if (digits(&p, 2, &sec))
                return -1;
        }
        /* Only UTC: a time without a zone would silently depend on TZ. */
        if ((*p != 'Z' && *p != 'z') || p[1])
            return -1;
    } else if (*p) {
        return -1;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    /* timegm normalises 2026-02-31 into March: refuse such dates. */
    if (tm.tm_mday != d || tm.tm_mon != mo - 1)
        return -1;
    *out = (int64_t)t;
    return 0;
}

int cli_parse_time(const char *s, int64_t now, int64_t *out)
{
    if (!s || !*s)
        return -1;
    if (s[0] == '+') {
        char *end;
        errno = 0;
        if (!isdigit((unsigned char)s[1]))
            return -1;
        unsigned long long n = strtoull(s + 1, &end, 10);
        if (errno || end[0] == 0 || end[1] != 0)
            return -1;
        uint64_t unit;
        switch (end[0]) {
        case 's':
            unit = 1;
            break;
        case 'm':
            unit = 60;
            break;
        case 'h':
            unit = 3600;
            break;
        case 'd':
            unit = 86400;
            break;
        case 'w':
            unit = 7 * 86400;
            break;
        default:
            return -1;
        }
        /* Keep clear of CLI_FOREVER, which means something else. */
        if (n > (uint64_t)(INT64_MAX / 2) / unit || now > INT64_MAX / 2)
            return -1;
        *out = now + (int64_t)(n * unit);
        return 0;
    }
    int all_digits = 1;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p))
            all_digits = 0;
    if (all_digits) {
        uint64_t v;
        if (cli_parse_u64(s, &v) != 0 || v >= (uint64_t)INT64_MAX)
            return -1;
        *out = (int64_t)v;
        return 0;
    }
    return parse_iso(s, out);
}

char *cli_format_time(int64_t t, char *buf, size_t cap)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (t == CLI_FOREVER)
        snprintf(buf, cap, "forever");
    else if (!gmtime_r(&tt, &tm) ||
             !strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, cap, "%" PRId64, t);
    return buf;
}

const char *cli_default_added_by(void)
{
    const char *u = getenv("USER");
    if (!u || !*u || strlen(u) > HDB_MAX_TEXT)
        return "cli";
    for (const unsigned char *p = (const unsigned char *)u; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return "cli";
    return u;
}

const char *cli_item_state(const hdb_item_t *it, int64_t now)
{
    if (it->deleted)
        return "deleted";
    if (it->disable_until == CLI_FOREVER)
        return "disabled";
    if (it->disable_until > now)
        return "disabled-until";
    return "active";
}

static json_t *labels_json(const char *const *labels, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(labels[i]));
    return a;
}

static json_t *signal_json(const hdb_signal_t *s, int full)
{
    char hex[65];
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "type", json_string(hdb_sigtype_name(s->type)));
    switch (s->type) {
    case HDB_SIG_PDQ:
        cordon_hash_to_hex(&s->pdq, hex);
        json_object_set_new(o, "value", json_string(hex));
        json_object_set_new(o, "quality",
                            s->quality == HDB_QUALITY_UNKNOWN
                                ? json_null()
                                : json_integer(s->quality));
        break;
    case HDB_SIG_MD5:
    case HDB_SIG_SHA256: {
        size_t n = s->type == HDB_SIG_MD5 ? 16 : 32;
        cordon_hex_encode(s->digest, n, hex);
        json_object_set_new(o, "value", json_string(hex));
        break;
    }
    case HDB_SIG_VPDQ: {
        uint64_t frames = 0;
        for (size_t i = 0; i < s->nframes; i++)
            frames += s->frames[i].count;
        json_object_set_new(o, "frames", json_integer((json_int_t)frames));
        json_object_set_new(o, "entries", json_integer((json_int_t)s->nframes));
        if (full) {
            json_t *a = json_array();
            for (size_t i = 0; a && i < s->nframes; i++) {
                const hdb_vpdq_frame_t *f = &s->frames[i];
                cordon_hash_to_hex(&f->hash, hex);
                json_array_append_new(
                    a, json_pack("{s:s, s:o, s:f, s:I}", "pdq", hex, "quality",
                                 f->quality == HDB_QUALITY_UNKNOWN
                                     ? json_null()
                                     : json_integer(f->quality),
                                 "timestamp", f->timestamp, "count",
                                 (json_int_t)f->count));
            }
            json_object_set_new(o, "value", a);
        }
        break;
    }
    }
    return o;
}

static json_t *opt_string(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

json_t *cli_item_json(const hdb_item_t *it, int64_t now, int full)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "id", json_integer((json_int_t)it->id));
    json_object_set_new(o, "bank", json_string(it->bank));
    json_object_set_new(o, "state", json_string(cli_item_state(it, now)));
    json_object_set_new(o, "deleted", json_boolean(it->deleted));
    json_object_set_new(o, "disable_until",
                        it->disable_until ? json_integer(it->disable_until)
                                          : json_null());
    json_object_set_new(o, "labels", labels_json(it->labels, it->nlabels));
    json_object_set_new(o, "note", opt_string(it->note));
    json_object_set_new(o, "added_by", opt_string(it->prov.added_by));
    json_object_set_new(o, "source",
                        json_string(hdb_source_name(it->prov.source)));
    json_object_set_new(o, "source_name", opt_string(it->prov.source_name));
    json_object_set_new(o, "added_at", json_integer(it->prov.added_at));
    json_object_set_new(o, "created", json_integer(it->created));
    json_object_set_new(o, "updated", json_integer(it->updated));
    json_object_set_new(o, "seq", json_integer((json_int_t)it->seq));
    json_t *sigs = json_array();
    for (size_t i = 0; sigs && i < it->nsignals; i++)
        json_array_append_new(sigs, signal_json(&it->signals[i], full));
    json_object_set_new(o, "signals", sigs);
    return o;
}

json_t *cli_bank_json(const hdb_bank_t *b)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "id", json_integer(b->id));
    json_object_set_new(o, "name", json_string(b->name));
    json_object_set_new(o, "enabled", json_boolean(b->enabled));
    json_object_set_new(o, "action", opt_string(b->default_action));
    json_object_set_new(o, "labels", labels_json(b->labels, b->nlabels));
    json_object_set_new(o, "items", json_integer((json_int_t)b->nitems));
    json_object_set_new(o, "tombstones",
                        json_integer((json_int_t)b->ntombstones));
    json_object_set_new(o, "created", json_integer(b->created));
    json_object_set_new(o, "updated", json_integer(b->updated));
    json_object_set_new(o, "seq", json_integer((json_int_t)b->seq));
    return o;
}

int cli_json_line(FILE *f, json_t *o)
{
    if (!o)
        return -1;
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s)
        return -1;
    int rc = fprintf(f, "%s\n", s) < 0 ? -1 : 0;
    free(s);
    return rc;
}

char *cli_signal_text(const hdb_signal_t *s, char *buf, size_t cap)
{
    if (s->type == HDB_SIG_VPDQ) {
        uint64_t frames = 0;
        for (size_t i = 0; i < s->nframes; i++)
            frames += s->frames[i].count;
        snprintf(buf, cap, "vpdq:%" PRIu64 "frames", frames);
        return buf;
    }
    const char *name = hdb_sigtype_name(s->type);
    size_t n = strlen(name);
    if (cap < n + 2) {
        if (cap)
            buf[0] = 0;
        return buf;
    }
    memcpy(buf, name, n);
    buf[n] = ':';
    if (hdb_signal_format(s, 1, buf + n + 1, cap - n - 1, NULL) != CORDON_OK)
        buf[n + 1] = 0;
    return buf;
}

void cli_put_escaped(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\\')
            fputs("\\\\", f);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p == '\r')
            fputs("\\r", f);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\x%02x", *p);
        else
            fputc(*p, f);
    }
}
