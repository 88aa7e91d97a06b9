/*
 * video_match.c - vPDQ frame lists: comparison, run-length compact form,
 * the reference's text line format and the exchange's JSON signal.
 *
 * Numbers are parsed and printed without the C library's locale-dependent
 * conversions, so a host program that calls setlocale() still reads and
 * writes "0.033", never "0,033".
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cordon_cpu.h"
#include "cordon_error.h"
#include "cordon_video.h"
#include "video_internal.h"

#define JSON_MAX_ENTRIES 10000000u

/* ---- Comparison -------------------------------------------------------- */

static int popcount64(uint64_t x)
{
    /* Portable SWAR popcount: without -mpopcnt the builtin becomes a libgcc
     * call, which is slower than this. */
    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
    return (int)((x * 0x0101010101010101ull) >> 56);
}

size_t cordon__vpdq_count_matched_scalar(const cordon_hash256_t *a, size_t na,
                                         const cordon_hash256_t *b, size_t nb,
                                         int max_distance)
{
    size_t matched = 0;
    for (size_t i = 0; i < na; i++) {
        const uint64_t *x = a[i].w;
        for (size_t j = 0; j < nb; j++) {
            const uint64_t *y = b[j].w;
            int d = popcount64(x[0] ^ y[0]) + popcount64(x[1] ^ y[1]) +
                    popcount64(x[2] ^ y[2]) + popcount64(x[3] ^ y[3]);
            if (d <= max_distance) {
                matched++;
                break;
            }
        }
    }
    return matched;
}

size_t cordon__vpdq_count_matched(const cordon_hash256_t *a, size_t na,
                                  const cordon_hash256_t *b, size_t nb,
                                  int max_distance)
{
    if (cordon_cpu_features() & CORDON_CPU_AVX2)
        return cordon__vpdq_count_matched_avx2(a, na, b, nb, max_distance);
    return cordon__vpdq_count_matched_scalar(a, na, b, nb, max_distance);
}

static int hash_cmp(const void *pa, const void *pb)
{
    const cordon_hash256_t *a = pa, *b = pb;
    for (int i = 3; i >= 0; i--)
        if (a->w[i] != b->w[i])
            return a->w[i] < b->w[i] ? -1 : 1;
    return 0;
}

/* The distinct hashes of the frames with quality >= qmin, sorted. */
static int distinct(const cordon_vpdq_frame_t *f, size_t n, int qmin,
                    cordon_hash256_t **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (n == 0)
        return CORDON_OK;
    cordon_hash256_t *h = malloc(n * sizeof *h);
    if (!h)
        return CORDON_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (f[i].quality >= qmin)
            h[k++] = f[i].hash;
    qsort(h, k, sizeof *h, hash_cmp);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || hash_cmp(&h[u - 1], &h[i]) != 0)
            h[u++] = h[i];
    *out = h;
    *nout = u;
    return CORDON_OK;
}

void cordon_vpdq_match_opts_default(cordon_vpdq_match_opts_t *o)
{
    o->quality_min = CORDON_VPDQ_QUALITY_MIN;
    o->distance_max = CORDON_VPDQ_DISTANCE_MAX;
    o->match_percent = CORDON_VPDQ_MATCH_PERCENT;
}

int cordon_vpdq_compare(const cordon_vpdq_frame_t *query, size_t nq,
                        const cordon_vpdq_frame_t *target, size_t nt,
                        const cordon_vpdq_match_opts_t *opts,
                        cordon_vpdq_match_t *out)
{
    cordon_vpdq_match_opts_t o;
    cordon_hash256_t *qh = NULL, *th = NULL;
    size_t qn = 0, tn = 0;
    int rc;
    if (!out || (!query && nq) || (!target && nt))
        return CORDON_EINVAL;
    memset(out, 0, sizeof *out);
    if (opts)
        o = *opts;
    else
        cordon_vpdq_match_opts_default(&o);
    if ((rc = distinct(query, nq, o.quality_min, &qh, &qn)) != CORDON_OK)
        goto fail;
    if ((rc = distinct(target, nt, o.quality_min, &th, &tn)) != CORDON_OK)
        goto fail;
    out->query_count = qn;
    out->target_count = tn;
    if (qn && tn) {
        out->query_matched =
            cordon__vpdq_count_matched(qh, qn, th, tn, o.distance_max);
        out->target_matched =
            cordon__vpdq_count_matched(th, tn, qh, qn, o.distance_max);
        out->query_percent = 100.0 * (double)out->query_matched / (double)qn;
        out->target_percent = 100.0 * (double)out->target_matched / (double)tn;
        out->is_match = out->query_percent >= o.match_percent;
    }
    rc = CORDON_OK;
fail:
    free(th);
    free(qh);
    return rc;
}

/* ---- Compact form ------------------------------------------------------ */

double cordon_vpdq_timestamp(int32_t frame_number, double fps)
{
    /* The reference divides a float frame number by a float frame rate. */
    return (double)((float)frame_number / (float)fps);
}

int cordon_vpdq_rle_compress(const cordon_vpdq_frame_t *frames, size_t n,
                             int frame_interval, cordon_vpdq_run_t **runs,
                             size_t *nruns)
{
    if (!runs || !nruns)
        return CORDON_EINVAL;
    *runs = NULL;
    *nruns = 0;
    if ((!frames && n) || frame_interval < 1)
        return CORDON_EINVAL;
    if (n == 0)
        return CORDON_OK;
    /* One pass to size exactly: hashdb keeps these arrays. */
    size_t k = 0;
    cordon_vpdq_run_t *r = malloc(n * sizeof *r);
    if (!r)
        return CORDON_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const cordon_vpdq_frame_t *f = &frames[i];
        if (k) {
            cordon_vpdq_run_t *c = &r[k - 1];
            int64_t want =
                (int64_t)c->frame_number + (int64_t)c->count * frame_interval;
            if (c->quality == f->quality && c->count < UINT32_MAX &&
                want == f->frame_number &&
                memcmp(&c->hash, &f->hash, sizeof c->hash) == 0) {
                c->count++;
                continue;
            }
        }
        r[k].hash = f->hash;
        r[k].quality = f->quality;
        r[k].frame_number = f->frame_number;
        r[k].timestamp = f->timestamp;
        r[k].count = 1;
        k++;
    }
    cordon_vpdq_run_t *shrunk = realloc(r, k * sizeof *r);
    *runs = shrunk ? shrunk : r;
    *nruns = k;
    return CORDON_OK;
}

int cordon_vpdq_rle_expand(const cordon_vpdq_run_t *runs, size_t nruns,
                           int frame_interval, double fps,
                           cordon_vpdq_frame_t **frames, size_t *n)
{
    if (!frames || !n)
        return CORDON_EINVAL;
    *frames = NULL;
    *n = 0;
    if ((!runs && nruns) || frame_interval < 1)
        return CORDON_EINVAL;
    uint64_t total = 0;
    for (size_t i = 0; i < nruns; i++) {
        if (runs[i].count == 0)
            return CORDON_EINVAL;
        total += runs[i].count;
        int64_t last = (int64_t)runs[i].frame_number +
                       (int64_t)(runs[i].count - 1) * frame_interval;
        if (last > INT32_MAX)
            return CORDON_ERANGE;
    }
    if (total == 0)
        return CORDON_OK;
    if (total > SIZE_MAX / sizeof(cordon_vpdq_frame_t))
        return CORDON_ERANGE;
    cordon_vpdq_frame_t *f = malloc((size_t)total * sizeof *f);
    if (!f)
        return CORDON_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < nruns; i++) {
        for (uint32_t j = 0; j < runs[i].count; j++, k++) {
            int32_t fn = runs[i].frame_number + (int32_t)j * frame_interval;
            f[k].hash = runs[i].hash;
            f[k].quality = runs[i].quality;
            f[k].frame_number = fn;
            f[k].timestamp =
                fps > 0 ? cordon_vpdq_timestamp(fn, fps) : runs[i].timestamp;
        }
    }
    *frames = f;
    *n = k;
    return CORDON_OK;
}

/* ---- Numbers ----------------------------------------------------------- */

/* A non-negative decimal integer that fits in int32. */
static int parse_uint31(const char *s, size_t n, int32_t *out)
{
    if (n == 0 || n > 10)
        return CORDON_EPARSE;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return CORDON_EPARSE;
        v = v * 10 + (s[i] - '0');
    }
    if (v > INT32_MAX)
        return CORDON_ERANGE;
    *out = (int32_t)v;
    return CORDON_OK;
}

/* digits [. digits] [e|E [+|-] digits], or a leading '-' (reported as
 * CORDON_ERANGE since no field here may be negative). */
static int parse_decimal(const char *s, size_t n, double *out)
{
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    uint64_t mant = 0;
    int sig = 0, exp10 = 0, digits = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
        if (sig < 19) {
            mant = mant * 10 + (uint64_t)(s[i] - '0');
            sig += mant != 0;
        } else {
            exp10++;
        }
    }
    if (i < n && s[i] == '.') {
        i++;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
            if (sig < 19) {
                mant = mant * 10 + (uint64_t)(s[i] - '0');
                sig += mant != 0;
                exp10--;
            }
        }
    }
    if (digits == 0)
        return CORDON_EPARSE;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        int eneg = 0, e = 0, ed = 0;
        if (i < n && (s[i] == '-' || s[i] == '+'))
            eneg = s[i++] == '-';
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, ed++)
            if (e < 10000)
                e = e * 10 + (s[i] - '0');
        if (ed == 0)
            return CORDON_EPARSE;
        exp10 += eneg ? -e : e;
    }
    if (i != n)
        return CORDON_EPARSE;
    double v = (double)mant;
    /* Exact for the short numbers timestamps are; within an ulp otherwise. */
    if (exp10 >= 0)
        v *= pow(10.0, exp10);
    else
        v /= pow(10.0, -exp10);
    if (!isfinite(v))
        return CORDON_ERANGE;
    if (neg && v != 0)
        return CORDON_ERANGE;
    *out = v;
    return CORDON_OK;
}

/* Rewrites whatever decimal separator the locale put in a %e or %f result
 * into '.', in place. The separator is all non-digit characters between the
 * first digit run and the next digit. */
static size_t fix_point(char *s, size_t n)
{
    size_t i = 0;
    while (i < n && (s[i] == '-' || (s[i] >= '0' && s[i] <= '9')))
        i++;
    size_t j = i;
    while (j < n && !(s[j] >= '0' && s[j] <= '9') && s[j] != 'e')
        j++;
    if (j == i || j >= n || s[j] == 'e')
        return n;
    s[i] = '.';
    memmove(s + i + 1, s + j, n - j + 1);
    return n - (j - i - 1);
}

/* printf("%.3f"), independent of the locale. */
static int fmt_fixed3(char *buf, size_t size, double v)
{
    int k = snprintf(buf, size, "%.3f", v);
    if (k < 0 || (size_t)k >= size)
        return -1;
    return (int)fix_point(buf, (size_t)k);
}

/* Python's format(v, ".3"): 3 significant digits like %g, but exponent
 * notation from 100 on (the exponent is >= precision - 1) and at least one
 * digit after the point in fixed notation ("5.0"). */
static int fmt_python3(char *buf, size_t size, double v)
{
    char e[32];
    int k = snprintf(e, sizeof e, "%.2e", v);
    if (k < 0 || (size_t)k >= sizeof e)
        return -1;
    k = (int)fix_point(e, (size_t)k);
    const char *ep = strchr(e, 'e');
    if (!ep)
        return -1; /* inf or nan; timestamps are validated before this */
    int x = atoi(ep + 1);
    if (x < -4 || x >= 2) {
        /* Mantissa without trailing zeros, then Python's "e+02" exponent. */
        size_t m = (size_t)(ep - e);
        while (m > 0 && e[m - 1] == '0')
            m--;
        if (m > 0 && e[m - 1] == '.')
            m--;
        int r = snprintf(buf, size, "%.*s%s", (int)m, e, ep);
        return r < 0 || (size_t)r >= size ? -1 : r;
    }
    int r = snprintf(buf, size, "%.*f", 2 - x, v);
    if (r < 0 || (size_t)r >= size)
        return -1;
    size_t len = fix_point(buf, (size_t)r);
    char *dot = strchr(buf, '.');
    if (dot) {
        while (len > (size_t)(dot - buf) + 2 && buf[len - 1] == '0')
            len--;
        buf[len] = 0;
    } else if (len + 2 < size) {
        memcpy(buf + len, ".0", 3);
        len += 2;
    }
    return (int)len;
}

/* ---- Reference text lines ---------------------------------------------- */

/* Splits s[0..n) at commas into at most max fields; returns the count. */
static int split(const char *s, size_t n, const char **f, size_t *fl, int max)
{
    int k = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == ',') {
            if (k == max)
                return max + 1;
            f[k] = s + start;
            fl[k] = i - start;
            k++;
            start = i + 1;
        }
    }
    return k;
}

static int check_ts(double ts)
{
    return ts >= 0 && isfinite(ts) ? CORDON_OK : CORDON_ERANGE;
}

int cordon_vpdq_parse_line(const char *line, size_t len,
                           cordon_vpdq_frame_t *out)
{
    if (!line || !out)
        return CORDON_EINVAL;
    if (len && line[len - 1] == '\n')
        len--;
    if (len && line[len - 1] == '\r')
        len--;
    const char *f[4];
    size_t fl[4];
    if (split(line, len, f, fl, 4) != 4)
        return CORDON_EPARSE;
    cordon_vpdq_frame_t r;
    int rc;
    if (fl[0] && f[0][0] == '-')
        return CORDON_ERANGE;
    if ((rc = parse_uint31(f[0], fl[0], &r.frame_number)) != CORDON_OK)
        return rc;
    if (fl[1] && f[1][0] == '-')
        return CORDON_ERANGE;
    if ((rc = parse_uint31(f[1], fl[1], &r.quality)) != CORDON_OK)
        return rc;
    if (r.quality > 100)
        return CORDON_ERANGE;
    if ((rc = cordon_hash_from_hex(f[2], fl[2], &r.hash)) != CORDON_OK)
        return rc;
    if ((rc = parse_decimal(f[3], fl[3], &r.timestamp)) != CORDON_OK)
        return rc;
    if ((rc = check_ts(r.timestamp)) != CORDON_OK)
        return rc;
    *out = r;
    return CORDON_OK;
}

int cordon_vpdq_format_line(const cordon_vpdq_frame_t *f, char *buf,
                            size_t size)
{
    if (!f || !buf || size < CORDON_VPDQ_LINE_MAX)
        return CORDON_EINVAL;
    char hex[CORDON_HASH_HEX_LEN + 1];
    char ts[64];
    cordon_hash_to_hex(&f->hash, hex);
    if (fmt_fixed3(ts, sizeof ts, f->timestamp) < 0)
        return CORDON_EINVAL;
    int k = snprintf(buf, size, "%d,%d,%s,%s", (int)f->frame_number,
                     (int)f->quality, hex, ts);
    if (k < 0 || (size_t)k >= size)
        return CORDON_EINVAL;
    return k;
}

static int push_frame(cordon_vpdq_frame_t **a, size_t *n, size_t *cap,
                      const cordon_vpdq_frame_t *f)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        cordon_vpdq_frame_t *p = realloc(*a, nc * sizeof *p);
        if (!p)
            return CORDON_ENOMEM;
        *a = p;
        *cap = nc;
    }
    (*a)[(*n)++] = *f;
    return CORDON_OK;
}

int cordon_vpdq_parse_text(const char *text, size_t len,
                           cordon_vpdq_frame_t **frames, size_t *n,
                           size_t *err_line)
{
    if (err_line)
        *err_line = 0;
    if (!frames || !n)
        return CORDON_EINVAL;
    *frames = NULL;
    *n = 0;
    if (!text && len)
        return CORDON_EINVAL;
    cordon_vpdq_frame_t *a = NULL;
    size_t cnt = 0, cap = 0, lineno = 0, pos = 0;
    int rc = CORDON_OK;
    while (pos < len) {
        const char *s = text + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t l = nl ? (size_t)(nl - s) : len - pos;
        pos += l + (nl ? 1 : 0);
        lineno++;
        if (l && s[l - 1] == '\r')
            l--;
        if (l == 0)
            continue;
        cordon_vpdq_frame_t f;
        if ((rc = cordon_vpdq_parse_line(s, l, &f)) != CORDON_OK ||
            (rc = push_frame(&a, &cnt, &cap, &f)) != CORDON_OK) {
            if (err_line)
                *err_line = lineno;
            goto fail;
        }
    }
    *frames = a;
    *n = cnt;
    return CORDON_OK;
fail:
    free(a);
    return rc;
}

/* ---- Exchange JSON signal ---------------------------------------------- */

int cordon_vpdq_to_json(const cordon_vpdq_frame_t *frames, size_t n,
                        char **json, size_t *len)
{
    if (!json)
        return CORDON_EINVAL;
    *json = NULL;
    if (len)
        *len = 0;
    if (!frames && n)
        return CORDON_EINVAL;
    /* Each entry: quote, 64 hex, comma, quality <= 3, comma, timestamp,
     * quote, ", " - 100 bytes is a safe bound. */
    if (n > (SIZE_MAX - 8) / 100)
        return CORDON_ERANGE;
    size_t cap = n * 100 + 8, k = 0;
    char *s = malloc(cap);
    if (!s)
        return CORDON_ENOMEM;
    s[k++] = '[';
    for (size_t i = 0; i < n; i++) {
        const cordon_vpdq_frame_t *f = &frames[i];
        char hex[CORDON_HASH_HEX_LEN + 1], ts[40];
        if (f->quality < 0 || f->quality > 100 ||
            check_ts(f->timestamp) != CORDON_OK ||
            fmt_python3(ts, sizeof ts, f->timestamp) < 0) {
            free(s);
            return CORDON_ERANGE;
        }
        cordon_hash_to_hex(&f->hash, hex);
        int w = snprintf(s + k, cap - k, "%s\"%s,%d,%s\"", i ? ", " : "", hex,
                         (int)f->quality, ts);
        if (w < 0 || (size_t)w >= cap - k) {
            free(s);
            return CORDON_EINTERNAL;
        }
        k += (size_t)w;
    }
    s[k++] = ']';
    s[k] = 0;
    *json = s;
    if (len)
        *len = k;
    return CORDON_OK;
}

int cordon_vpdq_from_json(const char *json, size_t len,
                          cordon_vpdq_frame_t **frames, size_t *n)
{
    if (!frames || !n)
        return CORDON_EINVAL;
    *frames = NULL;
    *n = 0;
    if (!json)
        return CORDON_EINVAL;
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    cordon_vpdq_frame_t *a = NULL;
    int rc;
    if (!root || !json_is_array(root)) {
        rc = CORDON_EPARSE;
        goto fail;
    }
    size_t cnt = json_array_size(root);
    if (cnt > JSON_MAX_ENTRIES) {
        rc = CORDON_ETOOLARGE;
        goto fail;
    }
    if (cnt) {
        a = malloc(cnt * sizeof *a);
        if (!a) {
            rc = CORDON_ENOMEM;
            goto fail;
        }
    }
    for (size_t i = 0; i < cnt; i++) {
        json_t *e = json_array_get(root, i);
        if (!json_is_string(e)) {
            rc = CORDON_EPARSE;
            goto fail;
        }
        const char *s = json_string_value(e);
        size_t sl = json_string_length(e);
        const char *f[3];
        size_t fl[3];
        if (split(s, sl, f, fl, 3) != 3) {
            rc = CORDON_EPARSE;
            goto fail;
        }
        if ((rc = cordon_hash_from_hex(f[0], fl[0], &a[i].hash)) != CORDON_OK)
            goto fail;
        if (fl[1] && f[1][0] == '-') {
            rc = CORDON_ERANGE;
            goto fail;
        }
        if ((rc = parse_uint31(f[1], fl[1], &a[i].quality)) != CORDON_OK)
            goto fail;
        if (a[i].quality > 100) {
            rc = CORDON_ERANGE;
            goto fail;
        }
        if ((rc = parse_decimal(f[2], fl[2], &a[i].timestamp)) != CORDON_OK ||
            (rc = check_ts(a[i].timestamp)) != CORDON_OK)
            goto fail;
        a[i].frame_number = (int32_t)i;
    }
    json_decref(root);
    *frames = a;
    *n = cnt;
    return CORDON_OK;
fail:
    free(a);
    json_decref(root);
    return rc;
}
