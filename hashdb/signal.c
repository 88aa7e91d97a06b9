/* signal.c - signal type names, and the text forms of signal values. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cordon_digest.h"
#include "hdb_internal.h"

static const struct {
    const char *name;
    hdb_sigtype_t type;
} type_names[] = {
    {"pdq", HDB_SIG_PDQ},
    {"md5", HDB_SIG_MD5},
    {"sha256", HDB_SIG_SHA256},
    {"vpdq", HDB_SIG_VPDQ},
    /* python-threatexchange's SignalType.get_name() spellings. */
    {"video_md5", HDB_SIG_MD5},
    {"photo_md5", HDB_SIG_MD5},
    {"video_sha256", HDB_SIG_SHA256},
    {"photo_sha256", HDB_SIG_SHA256},
};

const char *hdb_sigtype_name(hdb_sigtype_t t)
{
    switch (t) {
    case HDB_SIG_PDQ:
        return "pdq";
    case HDB_SIG_MD5:
        return "md5";
    case HDB_SIG_SHA256:
        return "sha256";
    case HDB_SIG_VPDQ:
        return "vpdq";
    }
    return "?";
}

int hdb_sigtype_from_name(const char *name, size_t len, hdb_sigtype_t *out)
{
    if (!name || !out)
        return CORDON_EINVAL;
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++) {
        if (strlen(type_names[i].name) == len &&
            strncasecmp(type_names[i].name, name, len) == 0) {
            *out = type_names[i].type;
            return CORDON_OK;
        }
    }
    return CORDON_EPARSE;
}

static const char *const source_names[] = {"unknown", "platform", "exchange",
                                           "file", "peer"};

const char *hdb_source_name(hdb_source_t s)
{
    return (unsigned)s <= HDB_SOURCE_PEER ? source_names[s] : "?";
}

int hdb_source_from_name(const char *name, hdb_source_t *out)
{
    if (!name || !out)
        return CORDON_EINVAL;
    for (unsigned i = 0; i <= HDB_SOURCE_PEER; i++) {
        if (strcasecmp(name, source_names[i]) == 0) {
            *out = (hdb_source_t)i;
            return CORDON_OK;
        }
    }
    return CORDON_EPARSE;
}

/* ---------------------------------------------------------------- */

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void trim(const char **s, size_t *len)
{
    while (*len && is_blank(**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len && is_blank((*s)[*len - 1]))
        (*len)--;
}

/* A decimal integer 0..100. */
static int parse_quality(const char *s, size_t len, int *q)
{
    trim(&s, &len);
    if (len == 0 || len > 3)
        return CORDON_EPARSE;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return CORDON_EPARSE;
        v = v * 10 + (s[i] - '0');
    }
    if (v > 100)
        return CORDON_EPARSE;
    *q = v;
    return CORDON_OK;
}

static int parse_pdq(const char *s, size_t len, cordon_hash256_t *h, int *q)
{
    const char *comma = memchr(s, ',', len);
    size_t hl = comma ? (size_t)(comma - s) : len;
    uint8_t b[32];
    const char *hs = s;
    trim(&hs, &hl);
    int rc = cordon_hex_decode(hs, hl, b, 32);
    if (rc)
        return rc;
    hdb__hash_from_bytes(b, h);
    *q = HDB_QUALITY_UNKNOWN;
    if (comma)
        return parse_quality(comma + 1, (size_t)(s + len - comma - 1), q);
    return CORDON_OK;
}

/* One "pdqhex,quality,timestamp" frame. */
static int parse_frame(const char *s, size_t len, hdb_vpdq_frame_t *f)
{
    const char *c1 = memchr(s, ',', len);
    if (!c1)
        return CORDON_EPARSE;
    const char *rest = c1 + 1;
    size_t rlen = len - (size_t)(rest - s);
    const char *c2 = memchr(rest, ',', rlen);
    if (!c2)
        return CORDON_EPARSE;
    uint8_t b[32];
    const char *hs = s;
    size_t hl = (size_t)(c1 - s);
    trim(&hs, &hl);
    int rc = cordon_hex_decode(hs, hl, b, 32);
    if (rc)
        return rc;
    hdb__hash_from_bytes(b, &f->hash);
    if ((rc = parse_quality(rest, (size_t)(c2 - rest), &f->quality)))
        return rc;
    const char *ts = c2 + 1;
    size_t tl = len - (size_t)(ts - s);
    trim(&ts, &tl);
    char tmp[64];
    if (tl == 0 || tl >= sizeof tmp)
        return CORDON_EPARSE;
    memcpy(tmp, ts, tl);
    tmp[tl] = 0;
    char *end;
    double t = strtod(tmp, &end);
    if (*end || !(t >= 0 && t < 1e12))
        return CORDON_EPARSE;
    f->timestamp = t;
    f->count = 1;
    return CORDON_OK;
}

static int parse_vpdq(const char *s, size_t len, hdb_signal_t *out,
                      hdb_vpdq_frame_t *frames, size_t cap)
{
    size_t i = 0, n = 0;
    double last_ts = 0;
    if (len < 2 || s[0] != '[' || s[len - 1] != ']')
        return CORDON_EPARSE;
    i = 1;
    len--; /* the closing bracket */
    for (;;) {
        while (i < len && is_blank(s[i]))
            i++;
        if (i == len)
            break;
        if (n > 0) {
            if (s[i] != ',')
                return CORDON_EPARSE;
            i++;
            while (i < len && is_blank(s[i]))
                i++;
        }
        if (i == len || s[i] != '"')
            return CORDON_EPARSE;
        size_t start = ++i;
        while (i < len && s[i] != '"') {
            if (s[i] == '\\')
                return CORDON_EPARSE; /* frames never need escapes */
            i++;
        }
        if (i == len)
            return CORDON_EPARSE;
        hdb_vpdq_frame_t f;
        int rc = parse_frame(s + start, i - start, &f);
        if (rc)
            return rc;
        i++;
        if (n > 0 && frames[out->nframes - 1].quality == f.quality &&
            memcmp(&frames[out->nframes - 1].hash, &f.hash, sizeof f.hash) ==
                0 &&
            frames[out->nframes - 1].count < UINT32_MAX) {
            frames[out->nframes - 1].count++;
        } else {
            if (out->nframes >= cap)
                return CORDON_ESCRATCH;
            if (out->nframes >= HDB_MAX_VPDQ_FRAMES)
                return CORDON_EPARSE;
            frames[out->nframes++] = f;
        }
        last_ts = f.timestamp;
        n++;
    }
    if (out->nframes == 0)
        return CORDON_EEMPTY;
    /* A run at the very end keeps its last frame as an entry of its own,
     * so that the run's frame spacing, and with it every frame's time, can
     * be written back out (see hdb_signal_format). */
    hdb_vpdq_frame_t *tail = &frames[out->nframes - 1];
    if (tail->count > 1 && last_ts > tail->timestamp) {
        if (out->nframes >= cap)
            return CORDON_ESCRATCH;
        if (out->nframes >= HDB_MAX_VPDQ_FRAMES)
            return CORDON_EPARSE;
        tail->count--;
        frames[out->nframes] = *tail;
        frames[out->nframes].timestamp = last_ts;
        frames[out->nframes].count = 1;
        out->nframes++;
    }
    out->frames = frames;
    return CORDON_OK;
}

int hdb_signal_parse(hdb_sigtype_t t, const char *s, size_t len,
                     hdb_signal_t *out, hdb_vpdq_frame_t *frames, size_t cap)
{
    if (!s || !out)
        return CORDON_EINVAL;
    memset(out, 0, sizeof *out);
    out->type = t;
    trim(&s, &len);
    switch (t) {
    case HDB_SIG_PDQ:
        return parse_pdq(s, len, &out->pdq, &out->quality);
    case HDB_SIG_MD5:
        return cordon_hex_decode(s, len, out->digest, 16);
    case HDB_SIG_SHA256:
        return cordon_hex_decode(s, len, out->digest, 32);
    case HDB_SIG_VPDQ:
        if (!frames && cap)
            return CORDON_EINVAL;
        return parse_vpdq(s, len, out, frames, cap);
    default:
        return CORDON_EINVAL;
    }
}

/* ---------------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t cap, len;
} out_t;

static void out_put(out_t *o, const char *s, size_t n)
{
    if (o->len < o->cap) {
        size_t room = o->cap - o->len;
        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

static void out_hex(out_t *o, const uint8_t *b, size_t n)
{
    char tmp[2 * 32 + 1];
    cordon_hex_encode(b, n, tmp);
    out_put(o, tmp, 2 * n);
}

/* Shortest of %.15g / %.17g that reads back to the same double. */
static int fmt_double(char *tmp, size_t n, double v)
{
    int k = snprintf(tmp, n, "%.15g", v);
    if (strtod(tmp, NULL) != v)
        k = snprintf(tmp, n, "%.17g", v);
    return k;
}

/* Seconds between the hashed frames of entry i: its span to the next
 * entry over its count, else `prev` (the step of the entry before). */
static double vpdq_step(const hdb_vpdq_frame_t *f, size_t n, size_t i,
                        double prev)
{
    if (i + 1 < n && f[i + 1].timestamp > f[i].timestamp)
        return (f[i + 1].timestamp - f[i].timestamp) / f[i].count;
    return prev;
}

int hdb_signal_format(const hdb_signal_t *sig, int with_quality, char *buf,
                      size_t cap, size_t *len)
{
    out_t o = {buf, cap, 0};
    uint8_t b[32];
    char tmp[64];
    int k;
    if (!sig || (cap && !buf))
        return CORDON_EINVAL;
    switch (sig->type) {
    case HDB_SIG_PDQ:
        hdb__hash_to_bytes(&sig->pdq, b);
        out_hex(&o, b, 32);
        if (with_quality && sig->quality != HDB_QUALITY_UNKNOWN) {
            k = snprintf(tmp, sizeof tmp, ",%d", sig->quality);
            out_put(&o, tmp, (size_t)k);
        }
        break;
    case HDB_SIG_MD5:
        out_hex(&o, sig->digest, 16);
        break;
    case HDB_SIG_SHA256:
        out_hex(&o, sig->digest, 32);
        break;
    case HDB_SIG_VPDQ:
        /* An entry of count n is written as n frames with the same hash
         * and quality, which parse back into the same entry. Each frame
         * gets its own start time, as the reference writes one feature
         * per hashed frame: the entry's frames are spaced evenly up to the
         * next entry's time. The step itself is not stored; parsing (and
         * `cordon add`) keep the last frame of a final run as its own
         * entry so that every run has a next one. Entries without (older
         * data, or equal times) continue the step before them, else keep
         * one time for all their frames. */
        out_put(&o, "[", 1);
        double step = 0;
        for (size_t i = 0, first = 1; i < sig->nframes; i++) {
            const hdb_vpdq_frame_t *f = &sig->frames[i];
            step = vpdq_step(sig->frames, sig->nframes, i, step);
            for (uint32_t c = 0; c < f->count; c++) {
                if (!first)
                    out_put(&o, ", ", 2);
                first = 0;
                out_put(&o, "\"", 1);
                hdb__hash_to_bytes(&f->hash, b);
                out_hex(&o, b, 32);
                k = snprintf(tmp, sizeof tmp, ",%d,",
                             f->quality == HDB_QUALITY_UNKNOWN ? 0
                                                               : f->quality);
                out_put(&o, tmp, (size_t)k);
                k = fmt_double(tmp, sizeof tmp, f->timestamp + c * step);
                out_put(&o, tmp, (size_t)k);
                out_put(&o, "\"", 1);
            }
        }
        out_put(&o, "]", 1);
        break;
    default:
        return CORDON_EINVAL;
    }
    if (len)
        *len = o.len;
    if (o.len >= cap) {
        if (cap)
            buf[cap - 1] = 0;
        return CORDON_ESCRATCH;
    }
    buf[o.len] = 0;
    return CORDON_OK;
}
