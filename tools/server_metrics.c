/* server_metrics.c - Prometheus metrics of `cordon serve` (text format
 * 0.0.4): requests by route and status, latency histograms, bytes, index
 * and database sizes, matches by bank, check verdicts. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

/* Status codes with their own series; anything else is "other". Status 0
 * is a request that never got an answer. */
static const int status_codes[] = {0,   200, 201, 204, 400, 401, 403, 404,
                                   405, 409, 413, 415, 500, 501, 503};
#define NSTATUS (sizeof status_codes / sizeof status_codes[0] + 1)

/* Latency bucket bounds, seconds. */
static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                 0.025,  0.05,  0.1,    0.25,  0.5,
                                 1,      2.5,   5,      10};
#define NBUCKETS (sizeof buckets / sizeof buckets[0])

typedef struct {
    uint32_t bank_id;
    char name[HDB_MAX_NAME + 1];
    uint64_t n;
} bank_count_t;

struct srv_metrics {
    size_t nroutes;           /* table routes + 1 unmatched */
    _Atomic uint64_t *req;    /* [route][NSTATUS] */
    _Atomic uint64_t *lat;    /* [route][NBUCKETS] (non-cumulative) */
    _Atomic uint64_t *lat_us; /* [route] sum of microseconds */
    _Atomic uint64_t *lat_n;  /* [route] */
    _Atomic uint64_t bytes_in, bytes_out;
    _Atomic uint64_t verdicts[2];
    pthread_mutex_t mu; /* guards banks */
    bank_count_t *banks;
    size_t nbanks, capbanks;
};

int srv_metrics_create(size_t nroutes, srv_metrics_t **out)
{
    srv_metrics_t *m = calloc(1, sizeof *m);
    if (!m)
        return CORDON_ENOMEM;
    m->nroutes = nroutes;
    m->req = calloc(nroutes * NSTATUS, sizeof *m->req);
    m->lat = calloc(nroutes * NBUCKETS, sizeof *m->lat);
    m->lat_us = calloc(nroutes, sizeof *m->lat_us);
    m->lat_n = calloc(nroutes, sizeof *m->lat_n);
    if (!m->req || !m->lat || !m->lat_us || !m->lat_n ||
        pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m->req);
        free(m->lat);
        free(m->lat_us);
        free(m->lat_n);
        free(m);
        return CORDON_ENOMEM;
    }
    *out = m;
    return CORDON_OK;
}

void srv_metrics_free(srv_metrics_t *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m->req);
    free(m->lat);
    free(m->lat_us);
    free(m->lat_n);
    free(m->banks);
    free(m);
}

static size_t status_slot(int status)
{
    for (size_t i = 0; i + 1 < NSTATUS; i++)
        if (status_codes[i] == status)
            return i;
    return NSTATUS - 1;
}

void srv_metrics_request(srv_metrics_t *m, int route, int status,
                         double seconds, uint64_t in, uint64_t out)
{
    if (!m || route < 0 || (size_t)route >= m->nroutes)
        return;
    size_t rt = (size_t)route;
    atomic_fetch_add_explicit(&m->req[rt * NSTATUS + status_slot(status)], 1,
                              memory_order_relaxed);
    size_t b = 0;
    while (b < NBUCKETS && seconds > buckets[b])
        b++;
    if (b < NBUCKETS)
        atomic_fetch_add_explicit(&m->lat[rt * NBUCKETS + b], 1,
                                  memory_order_relaxed);
    atomic_fetch_add_explicit(&m->lat_us[rt], (uint64_t)(seconds * 1e6),
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&m->lat_n[rt], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->bytes_in, in, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->bytes_out, out, memory_order_relaxed);
}

void srv_metrics_match(srv_metrics_t *m, uint32_t bank_id, const char *bank)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    size_t i = 0;
    while (i < m->nbanks && m->banks[i].bank_id != bank_id)
        i++;
    if (i == m->nbanks) {
        if (m->nbanks == m->capbanks) {
            size_t cap = m->capbanks ? 2 * m->capbanks : 16;
            bank_count_t *b = realloc(m->banks, cap * sizeof *b);
            if (!b) {
                pthread_mutex_unlock(&m->mu);
                return;
            }
            m->banks = b;
            m->capbanks = cap;
        }
        memset(&m->banks[i], 0, sizeof m->banks[i]);
        m->banks[i].bank_id = bank_id;
        m->nbanks++;
    }
    /* The latest name wins (a bank id is never reused for another name). */
    snprintf(m->banks[i].name, sizeof m->banks[i].name, "%s", bank);
    m->banks[i].n++;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_verdict(srv_metrics_t *m, int matched)
{
    if (m)
        atomic_fetch_add_explicit(&m->verdicts[matched ? 1 : 0], 1,
                                  memory_order_relaxed);
}

/* ---- rendering ---------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} text_t;

static void put(text_t *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void put(text_t *t, const char *fmt, ...)
{
    if (t->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->oom = 1;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = 2 * t->cap + (size_t)n;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->oom = 1;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
}

/* A label value with \, " and newlines escaped. */
static void put_label(text_t *t, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            put(t, "\\\\");
        else if (*v == '"')
            put(t, "\\\"");
        else if (*v == '\n')
            put(t, "\\n");
        else
            put(t, "%c", *v);
    }
}

static void head(text_t *t, const char *name, const char *type,
                 const char *help)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void srv_h_metrics(srv_req_t *r)
{
    srv_t *s = r->srv;
    srv_metrics_t *m = s->metrics;
    size_t nr;
    const srv_route_t *routes = srv_routes(&nr);
    text_t t = {malloc(16384), 0, 16384, 0};
    if (!t.p) {
        srv_reply_error(r, 503, "out of memory", NULL);
        return;
    }

    head(&t, "cordon_http_requests_total", "counter",
         "HTTP requests by route, method and status (0 = no answer sent).");
    for (size_t i = 0; i < m->nroutes; i++) {
        const char *meth = i < nr ? routes[i].method : "*";
        const char *pat = i < nr ? routes[i].pattern : "unmatched";
        for (size_t k = 0; k < NSTATUS; k++) {
            uint64_t v = atomic_load_explicit(&m->req[i * NSTATUS + k],
                                              memory_order_relaxed);
            if (!v)
                continue;
            char st[16];
            if (k + 1 < NSTATUS)
                snprintf(st, sizeof st, "%d", status_codes[k]);
            else
                snprintf(st, sizeof st, "other");
            put(&t,
                "cordon_http_requests_total{route=\"%s\",method=\"%s\","
                "status=\"%s\"} %llu\n",
                pat, meth, st, (unsigned long long)v);
        }
    }

    head(&t, "cordon_http_request_duration_seconds", "histogram",
         "Time from the request's headers to its completion.");
    for (size_t i = 0; i < m->nroutes; i++) {
        uint64_t n = atomic_load_explicit(&m->lat_n[i], memory_order_relaxed);
        if (!n)
            continue;
        const char *meth = i < nr ? routes[i].method : "*";
        const char *pat = i < nr ? routes[i].pattern : "unmatched";
        uint64_t cum = 0;
        for (size_t b = 0; b < NBUCKETS; b++) {
            cum += atomic_load_explicit(&m->lat[i * NBUCKETS + b],
                                        memory_order_relaxed);
            put(&t,
                "cordon_http_request_duration_seconds_bucket{route=\"%s\","
                "method=\"%s\",le=\"%g\"} %llu\n",
                pat, meth, buckets[b], (unsigned long long)cum);
        }
        put(&t,
            "cordon_http_request_duration_seconds_bucket{route=\"%s\","
            "method=\"%s\",le=\"+Inf\"} %llu\n",
            pat, meth, (unsigned long long)n);
        put(&t,
            "cordon_http_request_duration_seconds_sum{route=\"%s\",method="
            "\"%s\"} %.6f\n",
            pat, meth,
            (double)atomic_load_explicit(&m->lat_us[i], memory_order_relaxed) *
                1e-6);
        put(&t,
            "cordon_http_request_duration_seconds_count{route=\"%s\","
            "method=\"%s\"} %llu\n",
            pat, meth, (unsigned long long)n);
    }

    head(&t, "cordon_http_received_bytes_total", "counter",
         "Request body bytes received.");
    put(&t, "cordon_http_received_bytes_total %llu\n",
        (unsigned long long)atomic_load(&m->bytes_in));
    head(&t, "cordon_http_sent_bytes_total", "counter",
         "Response body bytes sent.");
    put(&t, "cordon_http_sent_bytes_total %llu\n",
        (unsigned long long)atomic_load(&m->bytes_out));
    head(&t, "cordon_http_requests_in_flight", "gauge",
         "Requests being received or processed.");
    put(&t, "cordon_http_requests_in_flight %d\n", atomic_load(&s->inflight));

    head(&t, "cordon_check_verdicts_total", "counter",
         "Verdicts of /v1/check.");
    put(&t, "cordon_check_verdicts_total{verdict=\"match\"} %llu\n",
        (unsigned long long)atomic_load(&m->verdicts[1]));
    put(&t, "cordon_check_verdicts_total{verdict=\"no_match\"} %llu\n",
        (unsigned long long)atomic_load(&m->verdicts[0]));

    head(&t, "cordon_matches_total", "counter",
         "Matched items by bank, over /v1/check and /m/lookup.");
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->nbanks; i++) {
        put(&t, "cordon_matches_total{bank=\"");
        put_label(&t, m->banks[i].name);
        put(&t, "\"} %llu\n", (unsigned long long)m->banks[i].n);
    }
    pthread_mutex_unlock(&m->mu);

    head(&t, "cordon_index_hashes", "gauge",
         "Hashes in the in-memory match index (PDQ and vPDQ frames).");
    put(&t, "cordon_index_hashes %zu\n", hdb_matcher_size(s->matcher));
    head(&t, "cordon_index_memory_bytes", "gauge",
         "Heap bytes of the match index.");
    put(&t, "cordon_index_memory_bytes %zu\n", hdb_matcher_memory(s->matcher));
    head(&t, "cordon_index_seq", "gauge",
         "Change-log sequence number the index reflects.");
    put(&t, "cordon_index_seq %llu\n",
        (unsigned long long)hdb_matcher_seq(s->matcher));
    head(&t, "cordon_index_last_refresh_timestamp_seconds", "gauge",
         "When the index last caught up with the database.");
    put(&t, "cordon_index_last_refresh_timestamp_seconds %lld\n",
        (long long)atomic_load(&s->last_refresh));

    hdb_stats_t st;
    if (hdb_stats(s->db, &st) == CORDON_OK) {
        head(&t, "cordon_db_file_bytes", "gauge", "Size of the database file.");
        put(&t, "cordon_db_file_bytes %llu\n",
            (unsigned long long)st.file_size);
        head(&t, "cordon_db_map_used_bytes", "gauge",
             "Bytes of the database map in use.");
        put(&t, "cordon_db_map_used_bytes %llu\n",
            (unsigned long long)st.map_used);
        head(&t, "cordon_db_banks", "gauge", "Live banks.");
        put(&t, "cordon_db_banks %llu\n", (unsigned long long)st.banks);
        head(&t, "cordon_db_items", "gauge", "Live items.");
        put(&t, "cordon_db_items %llu\n", (unsigned long long)st.items);
        head(&t, "cordon_db_signals", "gauge", "Live signals by type.");
        for (int k = 1; k <= HDB_SIG_MAX; k++)
            put(&t, "cordon_db_signals{type=\"%s\"} %llu\n",
                hdb_sigtype_name((hdb_sigtype_t)k),
                (unsigned long long)st.signals[k]);
        head(&t, "cordon_db_last_seq", "gauge",
             "Sequence number of the database's latest write.");
        put(&t, "cordon_db_last_seq %llu\n", (unsigned long long)st.last_seq);
    }
    head(&t, "cordon_start_time_seconds", "gauge",
         "When the server started, Unix seconds.");
    put(&t, "cordon_start_time_seconds %lld\n", (long long)s->started);

    if (t.oom) {
        free(t.p);
        srv_reply_error(r, 503, "out of memory", NULL);
        return;
    }
    srv_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", t.p, t.len);
}
