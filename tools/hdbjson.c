/* hdbjson.c - JSON <-> hdb records for the change feed (see hdbjson.h). */
#include "hdbjson.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cordon_digest.h"
#include "cordon_pdq.h"

/* A vPDQ frame string is at most "<64 hex>,-1,<timestamp>,<count>"; anything
 * much longer is refused before it is looked at. */
#define FRAME_MAX_LEN 160

/* ---------------------------------------------------------------- */
/* Storage of parsed records: a chain of blocks freed together.       */

struct hdbjson__blk {
    struct hdbjson__blk *next;
    max_align_t data[];
};

static void *blk_alloc(hdbjson__blk_t **mem, size_t n)
{
    if (n > SIZE_MAX - sizeof(hdbjson__blk_t))
        return NULL;
    hdbjson__blk_t *b = malloc(sizeof *b + (n ? n : 1));
    if (!b)
        return NULL;
    b->next = *mem;
    *mem = b;
    return b->data;
}

static void blk_free(hdbjson__blk_t **mem)
{
    hdbjson__blk_t *b = *mem;
    while (b) {
        hdbjson__blk_t *next = b->next;
        free(b);
        b = next;
    }
    *mem = NULL;
}

/* ---------------------------------------------------------------- */
/* Encoding                                                           */

static json_t *str_or_empty(const char *s)
{
    return json_string(s ? s : "");
}

static json_t *labels_json(const char *const *labels, size_t n)
{
    json_t *a = json_array();
    if (!a)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(a, json_string(labels[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* Shortest of %.15g / %.17g that reads back to the same double. */
static int fmt_double(char *buf, size_t cap, double v)
{
    int k = snprintf(buf, cap, "%.15g", v);
    if (strtod(buf, NULL) != v)
        k = snprintf(buf, cap, "%.17g", v);
    return k;
}

static json_t *frame_json(const hdb_vpdq_frame_t *f)
{
    char hex[65], ts[40], buf[FRAME_MAX_LEN];
    cordon_hash_to_hex(&f->hash, hex);
    fmt_double(ts, sizeof ts, f->timestamp);
    if (f->count > 1)
        snprintf(buf, sizeof buf, "%s,%d,%s,%" PRIu32, hex, f->quality, ts,
                 f->count);
    else
        snprintf(buf, sizeof buf, "%s,%d,%s", hex, f->quality, ts);
    return json_string(buf);
}

json_t *hdbjson_signal(const hdb_signal_t *s)
{
    char hex[65];
    json_t *v = NULL;
    if (!s)
        return NULL;
    switch (s->type) {
    case HDB_SIG_PDQ:
        cordon_hash_to_hex(&s->pdq, hex);
        return json_pack("{s:s, s:s, s:i}", "type", "pdq", "value", hex,
                         "quality", s->quality);
    case HDB_SIG_MD5:
        cordon_hex_encode(s->digest, 16, hex);
        return json_pack("{s:s, s:s}", "type", "md5", "value", hex);
    case HDB_SIG_SHA256:
        cordon_hex_encode(s->digest, 32, hex);
        return json_pack("{s:s, s:s}", "type", "sha256", "value", hex);
    case HDB_SIG_VPDQ:
        if (!(v = json_array()))
            return NULL;
        for (size_t i = 0; i < s->nframes; i++)
            if (json_array_append_new(v, frame_json(&s->frames[i]))) {
                json_decref(v);
                return NULL;
            }
        return json_pack("{s:s, s:o}", "type", "vpdq", "value", v);
    default:
        return NULL;
    }
}

json_t *hdbjson_bank(const hdb_bank_t *b)
{
    if (!b)
        return NULL;
    json_t *labels = labels_json(b->labels, b->nlabels);
    if (!labels)
        return NULL;
    return json_pack("{s:I, s:s, s:b, s:o, s:o, s:b}", "id", (json_int_t)b->id,
                     "name", b->name ? b->name : "", "enabled", b->enabled,
                     "default_action", str_or_empty(b->default_action),
                     "labels", labels, "deleted", b->deleted);
}

json_t *hdbjson_item(const hdb_item_t *it)
{
    if (!it)
        return NULL;
    json_t *sigs = json_array();
    if (!sigs)
        return NULL;
    for (size_t i = 0; i < it->nsignals; i++)
        if (json_array_append_new(sigs, hdbjson_signal(&it->signals[i]))) {
            json_decref(sigs);
            return NULL;
        }
    json_t *labels = labels_json(it->labels, it->nlabels);
    if (!labels) {
        json_decref(sigs);
        return NULL;
    }
    json_t *prov = json_pack("{s:o, s:s, s:o, s:I}", "added_by",
                             str_or_empty(it->prov.added_by), "source",
                             hdb_source_name(it->prov.source), "source_name",
                             str_or_empty(it->prov.source_name), "added_at",
                             (json_int_t)it->prov.added_at);
    if (!prov) {
        json_decref(sigs);
        json_decref(labels);
        return NULL;
    }
    /* "o" steals its reference even when json_pack fails. */
    return json_pack(
        "{s:I, s:s, s:o, s:o, s:b, s:I, s:o, s:o}", "id", (json_int_t)it->id,
        "bank", it->bank ? it->bank : "", "labels", labels, "note",
        str_or_empty(it->note), "deleted", it->deleted, "disable_until",
        (json_int_t)it->disable_until, "provenance", prov, "signals", sigs);
}

json_t *hdbjson_change(const hdb_change_t *c)
{
    if (!c)
        return NULL;
    const char *kind = hdb_change_kind_name(c->kind);
    if (c->item)
        return json_pack("{s:I, s:s, s:o}", "seq", (json_int_t)c->seq, "kind",
                         kind, "item", hdbjson_item(c->item));
    if (c->bank)
        return json_pack("{s:I, s:s, s:o}", "seq", (json_int_t)c->seq, "kind",
                         kind, "bank", hdbjson_bank(c->bank));
    return NULL;
}

static int feed_cb(void *ctx, const hdb_change_t *c)
{
    json_t *changes = ctx;
    return json_array_append_new(changes, hdbjson_change(c)) ? CORDON_ENOMEM
                                                             : 0;
}

int hdbjson_feed_page(hdb_t *db, uint64_t since, size_t limit, json_t **out)
{
    uint64_t next = since, last = 0;
    json_t *changes = NULL;
    int rc;
    if (!db || !out || limit > HDBJSON_FEED_LIMIT_MAX ||
        since > (uint64_t)INT64_MAX)
        return CORDON_EINVAL;
    *out = NULL;
    if (!limit)
        limit = HDBJSON_FEED_LIMIT_DEFAULT;
    if (!(changes = json_array()))
        return CORDON_ENOMEM;
    if ((rc = hdb_changes_since(db, since, limit, feed_cb, changes, &next)))
        goto fail;
    /* Read after the page, so that a write racing with it shows as more. */
    if ((rc = hdb_last_seq(db, &last)))
        goto fail;
    if (last < next)
        last = next;
    *out = json_pack("{s:O, s:I, s:I, s:b}", "changes", changes, "next",
                     (json_int_t)next, "last_seq", (json_int_t)last, "more",
                     next < last);
    rc = *out ? CORDON_OK : CORDON_ENOMEM;
fail:
    json_decref(changes);
    return rc;
}

/* ---------------------------------------------------------------- */
/* Parsing                                                            */

typedef struct {
    char *err;
    size_t errcap;
    hdbjson__blk_t **mem;
    const char *where; /* "item", "change.bank", ... */
} pctx_t;

static int perr(pctx_t *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int perr(pctx_t *p, const char *fmt, ...)
{
    va_list ap;
    int k = snprintf(p->err, p->errcap, "%s", p->where);
    if (k < 0 || (size_t)k >= p->errcap)
        return CORDON_EPARSE;
    va_start(ap, fmt);
    vsnprintf(p->err + k, p->errcap - (size_t)k, fmt, ap);
    va_end(ap);
    return CORDON_EPARSE;
}

static int no_mem(pctx_t *p)
{
    snprintf(p->err, p->errcap, "%s: out of memory", p->where);
    return CORDON_ENOMEM;
}

static const char *json_type_word(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a real number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

static int has_control(const char *s)
{
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return 1;
    return 0;
}

/* The rules of hdb.h, checked here so that a bad page is refused whole
 * before anything of it is written, with a message that says why. */
static const char *name_problem(const char *s)
{
    size_t n = strlen(s);
    if (n == 0)
        return "is empty";
    if (n > HDB_MAX_NAME)
        return "is too long";
    if (has_control(s))
        return "holds a control character";
    if (s[0] == ' ' || s[n - 1] == ' ')
        return "starts or ends with a space";
    return NULL;
}

static const char *label_problem(const char *s)
{
    size_t n = strlen(s);
    const char *colon = strchr(s, ':');
    if (n > HDB_MAX_LABEL)
        return "is too long";
    if (!colon || colon == s || !colon[1])
        return "is not key:value";
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        if (*c <= 0x20 || *c == 0x7f)
            return "holds whitespace or a control character";
    return NULL;
}

/* A member of an object; NULL (and *rc = 0) when absent and optional. */
static json_t *member(pctx_t *p, const json_t *o, const char *key, int required,
                      int *rc)
{
    json_t *v = json_object_get(o, key);
    *rc = CORDON_OK;
    if (!v && required)
        *rc = perr(p, ": missing \"%s\"", key);
    return v;
}

/* A string member (jansson-owned) of at most max bytes, without NULs. */
static int get_string(pctx_t *p, const json_t *o, const char *key, int required,
                      size_t max, const char **out)
{
    int rc;
    json_t *v = member(p, o, key, required, &rc);
    *out = NULL;
    if (!v)
        return rc;
    if (!json_is_string(v))
        return perr(p, ".%s: expected a string, got %s", key,
                    json_type_word(v));
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (strlen(s) != len)
        return perr(p, ".%s: holds a NUL character", key);
    if (len > max)
        return perr(p, ".%s: longer than %zu bytes", key, max);
    *out = s;
    return CORDON_OK;
}

static int get_int(pctx_t *p, const json_t *o, const char *key, int required,
                   int64_t lo, int64_t hi, int64_t dflt, int64_t *out)
{
    int rc;
    json_t *v = member(p, o, key, required, &rc);
    *out = dflt;
    if (!v)
        return rc;
    if (!json_is_integer(v))
        return perr(p, ".%s: expected an integer, got %s", key,
                    json_type_word(v));
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return perr(p, ".%s: %lld is out of range %lld..%lld", key,
                    (long long)x, (long long)lo, (long long)hi);
    *out = (int64_t)x;
    return CORDON_OK;
}

static int get_bool(pctx_t *p, const json_t *o, const char *key, int dflt,
                    int *out)
{
    json_t *v = json_object_get(o, key);
    *out = dflt;
    if (!v)
        return CORDON_OK;
    if (!json_is_boolean(v))
        return perr(p, ".%s: expected a boolean, got %s", key,
                    json_type_word(v));
    *out = json_is_true(v);
    return CORDON_OK;
}

static char *dup_str(pctx_t *p, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = blk_alloc(p->mem, n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* An optional text member copied into storage: NULL when absent or "" and
 * empty_is_null, else the copy. */
static int get_text(pctx_t *p, const json_t *o, const char *key, size_t max,
                    int control_ok, int empty_is_null, const char **out)
{
    const char *s;
    int rc = get_string(p, o, key, 0, max, &s);
    *out = empty_is_null ? NULL : "";
    if (rc || !s)
        return rc;
    if (!control_ok && has_control(s))
        return perr(p, ".%s: holds a control character", key);
    if (!*s)
        return CORDON_OK;
    if (!(*out = dup_str(p, s)))
        return no_mem(p);
    return CORDON_OK;
}

static int get_labels(pctx_t *p, const json_t *o, const char *const **out,
                      size_t *n)
{
    json_t *a = json_object_get(o, "labels");
    *out = NULL;
    *n = 0;
    if (!a)
        return CORDON_OK;
    if (!json_is_array(a))
        return perr(p, ".labels: expected an array, got %s", json_type_word(a));
    size_t cnt = json_array_size(a);
    if (cnt > HDB_MAX_LABELS)
        return perr(p, ".labels: more than %d labels", HDB_MAX_LABELS);
    if (!cnt)
        return CORDON_OK;
    const char **v = blk_alloc(p->mem, cnt * sizeof *v);
    if (!v)
        return no_mem(p);
    for (size_t i = 0; i < cnt; i++) {
        json_t *e = json_array_get(a, i);
        const char *why;
        if (!json_is_string(e))
            return perr(p, ".labels[%zu]: expected a string, got %s", i,
                        json_type_word(e));
        const char *s = json_string_value(e);
        if (strlen(s) != json_string_length(e))
            return perr(p, ".labels[%zu]: holds a NUL character", i);
        if ((why = label_problem(s)))
            return perr(p, ".labels[%zu]: \"%.64s\" %s", i, s, why);
        if (!(v[i] = dup_str(p, s)))
            return no_mem(p);
    }
    *out = v;
    *n = cnt;
    return CORDON_OK;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int all_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (hexval((unsigned char)s[i]) < 0)
            return 0;
    return 1;
}

/* Strict decimal integer in [lo, hi]: optional '-', digits only. */
static int parse_dec(const char *s, size_t n, int64_t lo, int64_t hi,
                     int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    uint64_t v = 0;
    if (n && s[0] == '-') {
        neg = 1;
        i = 1;
    }
    if (i == n || n - i > 19)
        return -1;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX)
        return -1;
    int64_t x = neg ? -(int64_t)v : (int64_t)v;
    if (x < lo || x > hi)
        return -1;
    *out = x;
    return 0;
}

/* "pdqhex,quality,timestamp[,count]". */
static int parse_frame(pctx_t *p, size_t si, size_t fi, const char *s,
                       size_t len, hdb_vpdq_frame_t *f)
{
    const char *field[5];
    size_t flen[5], nf = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == ',') {
            if (nf == 4)
                return perr(p, ".signals[%zu].value[%zu]: more than 4 fields",
                            si, fi);
            field[nf] = s + start;
            flen[nf++] = i - start;
            start = i + 1;
        }
    }
    if (nf < 3)
        return perr(p,
                    ".signals[%zu].value[%zu]: expected "
                    "\"pdqhex,quality,timestamp[,count]\"",
                    si, fi);
    if (flen[0] != 64 || !all_hex(field[0], 64) ||
        cordon_hash_from_hex(field[0], 64, &f->hash) != CORDON_OK)
        return perr(p, ".signals[%zu].value[%zu]: expected 64 hex digits", si,
                    fi);
    int64_t q, count = 1;
    if (parse_dec(field[1], flen[1], HDB_QUALITY_UNKNOWN, 100, &q))
        return perr(p, ".signals[%zu].value[%zu]: quality is not -1..100", si,
                    fi);
    /* Digits, one dot, an exponent: no blanks, signs up front, hex floats,
     * infinities or NaNs, which strtod would otherwise take. */
    char ts[48];
    if (flen[2] == 0 || flen[2] >= sizeof ts ||
        !((field[2][0] >= '0' && field[2][0] <= '9') || field[2][0] == '.'))
        return perr(p, ".signals[%zu].value[%zu]: bad timestamp", si, fi);
    for (size_t i = 0; i < flen[2]; i++) {
        char c = field[2][i];
        if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' ||
              c == '+' || c == '-'))
            return perr(p, ".signals[%zu].value[%zu]: bad timestamp", si, fi);
    }
    memcpy(ts, field[2], flen[2]);
    ts[flen[2]] = 0;
    char *end;
    double t = strtod(ts, &end);
    if (*end || !isfinite(t) || !(t >= 0 && t < 1e12))
        return perr(p, ".signals[%zu].value[%zu]: bad timestamp", si, fi);
    if (nf == 4 && parse_dec(field[3], flen[3], 1, UINT32_MAX, &count))
        return perr(p, ".signals[%zu].value[%zu]: count is not 1..%" PRIu32, si,
                    fi, UINT32_MAX);
    f->quality = (int)q;
    f->timestamp = t;
    f->count = (uint32_t)count;
    return CORDON_OK;
}

static int parse_signal(pctx_t *p, size_t si, const json_t *o, hdb_signal_t *s)
{
    memset(s, 0, sizeof *s);
    if (!json_is_object(o))
        return perr(p, ".signals[%zu]: expected an object, got %s", si,
                    json_type_word(o));
    json_t *t = json_object_get(o, "type");
    if (!json_is_string(t))
        return perr(p, ".signals[%zu].type: missing or not a string", si);
    const char *type = json_string_value(t);
    json_t *v = json_object_get(o, "value");
    if (!v)
        return perr(p, ".signals[%zu]: missing \"value\"", si);

    if (strcmp(type, "vpdq") == 0) {
        s->type = HDB_SIG_VPDQ;
        if (!json_is_array(v))
            return perr(p, ".signals[%zu].value: expected an array, got %s", si,
                        json_type_word(v));
        size_t n = json_array_size(v);
        if (n == 0)
            return perr(p, ".signals[%zu].value: no frames", si);
        if (n > HDB_MAX_VPDQ_FRAMES)
            return perr(p, ".signals[%zu].value: more than %d frames", si,
                        HDB_MAX_VPDQ_FRAMES);
        hdb_vpdq_frame_t *frames = blk_alloc(p->mem, n * sizeof *frames);
        if (!frames)
            return no_mem(p);
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_array_get(v, i);
            if (!json_is_string(e))
                return perr(p,
                            ".signals[%zu].value[%zu]: expected a string, "
                            "got %s",
                            si, i, json_type_word(e));
            size_t len = json_string_length(e);
            if (len > FRAME_MAX_LEN)
                return perr(p, ".signals[%zu].value[%zu]: too long", si, i);
            int rc =
                parse_frame(p, si, i, json_string_value(e), len, &frames[i]);
            if (rc)
                return rc;
        }
        s->frames = frames;
        s->nframes = n;
        return CORDON_OK;
    }

    if (!json_is_string(v))
        return perr(p, ".signals[%zu].value: expected a string, got %s", si,
                    json_type_word(v));
    const char *hex = json_string_value(v);
    size_t len = json_string_length(v);
    if (strcmp(type, "pdq") == 0) {
        s->type = HDB_SIG_PDQ;
        if (len != 64 || !all_hex(hex, 64) ||
            cordon_hash_from_hex(hex, 64, &s->pdq) != CORDON_OK)
            return perr(p, ".signals[%zu].value: expected 64 hex digits", si);
        int64_t q;
        int rc = get_int(p, o, "quality", 0, HDB_QUALITY_UNKNOWN, 100,
                         HDB_QUALITY_UNKNOWN, &q);
        if (rc)
            return perr(p,
                        ".signals[%zu].quality: expected an integer "
                        "-1..100",
                        si);
        s->quality = (int)q;
        return CORDON_OK;
    }
    size_t nbytes;
    if (strcmp(type, "md5") == 0) {
        s->type = HDB_SIG_MD5;
        nbytes = 16;
    } else if (strcmp(type, "sha256") == 0) {
        s->type = HDB_SIG_SHA256;
        nbytes = 32;
    } else {
        return perr(p, ".signals[%zu].type: unknown signal type \"%.32s\"", si,
                    type);
    }
    if (len != 2 * nbytes || !all_hex(hex, len) ||
        cordon_hex_decode(hex, len, s->digest, nbytes) != CORDON_OK)
        return perr(p, ".signals[%zu].value: expected %zu hex digits", si,
                    2 * nbytes);
    return CORDON_OK;
}

static int parse_item(pctx_t *p, const json_t *j, hdb_item_t *it)
{
    int64_t x;
    int rc;
    const char *s, *why;
    memset(it, 0, sizeof *it);
    it->note = "";
    if (!json_is_object(j))
        return perr(p, ": expected an object, got %s", json_type_word(j));
    if ((rc = get_int(p, j, "id", 1, 1, INT64_MAX, 0, &x)))
        return rc;
    it->id = (uint64_t)x;
    if ((rc = get_bool(p, j, "deleted", 0, &it->deleted)))
        return rc;
    if ((rc = get_string(p, j, "bank", 1, HDB_MAX_NAME, &s)))
        return rc;
    /* A tombstone may name no bank: hdb reports "" when the bank is gone. */
    if ((*s || !it->deleted) && (why = name_problem(s)))
        return perr(p, ".bank: \"%.64s\" %s", s, why);
    if (!(it->bank = dup_str(p, s)))
        return no_mem(p);
    if ((rc = get_labels(p, j, &it->labels, &it->nlabels)))
        return rc;
    if ((rc = get_text(p, j, "note", HDB_MAX_NOTE, 1, 0, &it->note)))
        return rc;
    if ((rc = get_int(p, j, "disable_until", 0, 0, INT64_MAX, 0, &x)))
        return rc;
    it->disable_until = x;

    json_t *prov = json_object_get(j, "provenance");
    if (prov) {
        const char *where = p->where;
        char sub[64];
        if (!json_is_object(prov))
            return perr(p, ".provenance: expected an object, got %s",
                        json_type_word(prov));
        snprintf(sub, sizeof sub, "%s.provenance", where);
        p->where = sub;
        rc = get_text(p, prov, "added_by", HDB_MAX_TEXT, 0, 1,
                      &it->prov.added_by);
        if (!rc)
            rc = get_text(p, prov, "source_name", HDB_MAX_TEXT, 0, 1,
                          &it->prov.source_name);
        if (!rc)
            rc = get_int(p, prov, "added_at", 0, 0, INT64_MAX, 0, &x);
        if (!rc)
            it->prov.added_at = x;
        if (!rc && !(rc = get_string(p, prov, "source", 0, 32, &s)) && s &&
            hdb_source_from_name(s, &it->prov.source) != CORDON_OK)
            rc = perr(p, ".source: unknown source \"%s\"", s);
        p->where = where;
        if (rc)
            return rc;
    }

    json_t *sigs = json_object_get(j, "signals");
    if (!sigs)
        return perr(p, ": missing \"signals\"");
    if (!json_is_array(sigs))
        return perr(p, ".signals: expected an array, got %s",
                    json_type_word(sigs));
    size_t n = json_array_size(sigs);
    if (n == 0 || n > HDB_MAX_SIGNALS)
        return perr(p, ".signals: expected 1..%d signals, got %zu",
                    HDB_MAX_SIGNALS, n);
    hdb_signal_t *sv = blk_alloc(p->mem, n * sizeof *sv);
    if (!sv)
        return no_mem(p);
    for (size_t i = 0; i < n; i++)
        if ((rc = parse_signal(p, i, json_array_get(sigs, i), &sv[i])))
            return rc;
    it->signals = sv;
    it->nsignals = n;
    return CORDON_OK;
}

static int parse_bank(pctx_t *p, const json_t *j, hdb_bank_t *b)
{
    int64_t x;
    int rc;
    const char *s, *why;
    memset(b, 0, sizeof *b);
    if (!json_is_object(j))
        return perr(p, ": expected an object, got %s", json_type_word(j));
    if ((rc = get_int(p, j, "id", 0, 0, UINT32_MAX, 0, &x)))
        return rc;
    b->id = (uint32_t)x;
    if ((rc = get_string(p, j, "name", 1, HDB_MAX_NAME, &s)))
        return rc;
    if ((why = name_problem(s)))
        return perr(p, ".name: \"%.64s\" %s", s, why);
    if (!(b->name = dup_str(p, s)))
        return no_mem(p);
    if ((rc = get_bool(p, j, "enabled", 1, &b->enabled)) ||
        (rc = get_bool(p, j, "deleted", 0, &b->deleted)))
        return rc;
    if ((rc = get_text(p, j, "default_action", HDB_MAX_TEXT, 0, 0,
                       &b->default_action)))
        return rc;
    return get_labels(p, j, &b->labels, &b->nlabels);
}

int hdbjson_item_parse(const json_t *j, hdbjson_item_buf_t *buf)
{
    if (!buf)
        return CORDON_EINVAL;
    hdbjson_item_buf_free(buf);
    pctx_t p = {buf->error, sizeof buf->error, &buf->mem, "item"};
    if (!j)
        return perr(&p, ": missing");
    return parse_item(&p, j, &buf->item);
}

void hdbjson_item_buf_free(hdbjson_item_buf_t *buf)
{
    if (!buf)
        return;
    blk_free(&buf->mem);
    memset(&buf->item, 0, sizeof buf->item);
    buf->error[0] = 0;
}

int hdbjson_bank_parse(const json_t *j, hdbjson_bank_buf_t *buf)
{
    if (!buf)
        return CORDON_EINVAL;
    hdbjson_bank_buf_free(buf);
    pctx_t p = {buf->error, sizeof buf->error, &buf->mem, "bank"};
    if (!j)
        return perr(&p, ": missing");
    return parse_bank(&p, j, &buf->bank);
}

void hdbjson_bank_buf_free(hdbjson_bank_buf_t *buf)
{
    if (!buf)
        return;
    blk_free(&buf->mem);
    memset(&buf->bank, 0, sizeof buf->bank);
    buf->error[0] = 0;
}

static const hdb_change_kind_t kinds[] = {
    HDB_CHANGE_BANK_ADD, HDB_CHANGE_BANK_UPDATE, HDB_CHANGE_BANK_DELETE,
    HDB_CHANGE_ITEM_ADD, HDB_CHANGE_ITEM_UPDATE, HDB_CHANGE_ITEM_DELETE};

int hdbjson_change_parse(const json_t *j, hdbjson_change_buf_t *buf)
{
    int64_t seq;
    const char *kind;
    int rc;
    if (!buf)
        return CORDON_EINVAL;
    hdbjson_change_buf_free(buf);
    hdbjson__blk_t *none = NULL;
    pctx_t p = {buf->error, sizeof buf->error, &none, "change"};
    if (!json_is_object(j))
        return perr(&p, ": expected an object, got %s",
                    j ? json_type_word(j) : "nothing");
    if ((rc = get_int(&p, j, "seq", 1, 1, INT64_MAX, 0, &seq)) ||
        (rc = get_string(&p, j, "kind", 1, 32, &kind)))
        return rc;
    hdb_change_t *c = &buf->change;
    c->seq = (uint64_t)seq;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kind, hdb_change_kind_name(kinds[i])) == 0)
            c->kind = kinds[i];
    if (!c->kind)
        return perr(&p, ".kind: unknown kind \"%s\"", kind);
    int is_item = c->kind >= HDB_CHANGE_ITEM_ADD;
    int is_delete =
        c->kind == HDB_CHANGE_ITEM_DELETE || c->kind == HDB_CHANGE_BANK_DELETE;
    json_t *rec = json_object_get(j, is_item ? "item" : "bank");
    if (!rec)
        return perr(&p, ": kind %s without \"%s\"", kind,
                    is_item ? "item" : "bank");
    const char *msg;
    int deleted;
    if (is_item) {
        rc = hdbjson_item_parse(rec, &buf->item_buf);
        msg = buf->item_buf.error;
        c->item = &buf->item_buf.item;
        deleted = buf->item_buf.item.deleted;
    } else {
        rc = hdbjson_bank_parse(rec, &buf->bank_buf);
        msg = buf->bank_buf.error;
        c->bank = &buf->bank_buf.bank;
        deleted = buf->bank_buf.bank.deleted;
    }
    if (rc) {
        snprintf(buf->error, sizeof buf->error, "change %lld: %.200s",
                 (long long)seq, msg);
        return rc;
    }
    /* A delete is a tombstone and only a delete is: a mismatch would make
     * the two fields say different things. */
    if (deleted != is_delete)
        return perr(&p, " %lld: kind %s but \"deleted\": %s", (long long)seq,
                    kind, deleted ? "true" : "false");
    return CORDON_OK;
}

void hdbjson_change_buf_free(hdbjson_change_buf_t *buf)
{
    if (!buf)
        return;
    hdbjson_item_buf_free(&buf->item_buf);
    hdbjson_bank_buf_free(&buf->bank_buf);
    memset(&buf->change, 0, sizeof buf->change);
    buf->error[0] = 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The same object twice in a page would be applied twice; the feed keeps
 * one change per object, so a page that repeats one is malformed. */
static int check_unique(hdbjson_feed_t *f)
{
    uint64_t *ids = malloc((f->n ? f->n : 1) * sizeof *ids);
    size_t n = 0;
    int rc = CORDON_OK;
    if (!ids) {
        snprintf(f->error, sizeof f->error, "feed: out of memory");
        return CORDON_ENOMEM;
    }
    for (int items = 0; items < 2 && !rc; items++) {
        n = 0;
        for (size_t i = 0; i < f->n; i++) {
            const hdb_change_t *c = &f->changes[i].change;
            if (items && c->item)
                ids[n++] = c->item->id;
            else if (!items && c->bank)
                ids[n++] = c->bank->id;
        }
        qsort(ids, n, sizeof *ids, cmp_u64);
        for (size_t i = 1; i < n && !rc; i++)
            if (ids[i] == ids[i - 1] && (items || ids[i] != 0)) {
                snprintf(f->error, sizeof f->error,
                         "feed: %s %llu appears twice in one page",
                         items ? "item" : "bank", (unsigned long long)ids[i]);
                rc = CORDON_EPARSE;
            }
    }
    free(ids);
    return rc;
}

int hdbjson_feed_parse(const json_t *j, uint64_t since, size_t limit,
                       hdbjson_feed_t *feed)
{
    int64_t next, last;
    int rc;
    if (!feed)
        return CORDON_EINVAL;
    hdbjson_feed_free(feed);
    hdbjson__blk_t *none = NULL;
    pctx_t p = {feed->error, sizeof feed->error, &none, "feed"};
    if (!limit || limit > HDBJSON_FEED_LIMIT_MAX)
        limit = HDBJSON_FEED_LIMIT_MAX;
    if (!json_is_object(j))
        return perr(&p, ": expected an object, got %s",
                    j ? json_type_word(j) : "nothing");
    json_t *changes = json_object_get(j, "changes");
    if (!json_is_array(changes))
        return perr(&p, ".changes: missing or not an array");
    size_t n = json_array_size(changes);
    if (n > limit)
        return perr(&p, ".changes: %zu changes, more than the %zu asked for", n,
                    limit);
    if ((rc = get_int(&p, j, "next", 1, 0, INT64_MAX, 0, &next)) ||
        (rc = get_int(&p, j, "last_seq", 1, 0, INT64_MAX, 0, &last)))
        return rc;
    json_t *more = json_object_get(j, "more");
    if (!json_is_boolean(more))
        return perr(&p, ".more: missing or not a boolean");
    if (n && !(feed->changes = calloc(n, sizeof *feed->changes)))
        return no_mem(&p);
    uint64_t prev = since;
    for (size_t i = 0; i < n; i++) {
        hdbjson_change_buf_t *cb = &feed->changes[i];
        feed->n = i + 1;
        if ((rc = hdbjson_change_parse(json_array_get(changes, i), cb))) {
            snprintf(feed->error, sizeof feed->error, "changes[%zu]: %.200s", i,
                     cb->error);
            return rc;
        }
        if (cb->change.seq <= prev)
            return perr(&p, ".changes[%zu]: seq %llu does not follow %llu", i,
                        (unsigned long long)cb->change.seq,
                        (unsigned long long)prev);
        prev = cb->change.seq;
    }
    if ((uint64_t)next < prev)
        return perr(&p, ".next: %lld is behind the page (%llu)",
                    (long long)next, (unsigned long long)prev);
    if (last < next)
        return perr(&p, ".last_seq: %lld is behind next (%lld)",
                    (long long)last, (long long)next);
    if ((rc = check_unique(feed)))
        return rc;
    feed->next = (uint64_t)next;
    feed->last_seq = (uint64_t)last;
    feed->more = json_is_true(more);
    return CORDON_OK;
}

void hdbjson_feed_free(hdbjson_feed_t *feed)
{
    if (!feed)
        return;
    for (size_t i = 0; i < feed->n; i++)
        hdbjson_change_buf_free(&feed->changes[i]);
    free(feed->changes);
    feed->changes = NULL;
    feed->n = 0;
    feed->next = feed->last_seq = 0;
    feed->more = 0;
    feed->error[0] = 0;
}
