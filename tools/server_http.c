/* server_http.c - libmicrohttpd plumbing of `cordon serve`: the daemon,
 * request bodies and their limits, replies, the access log and draining. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server.h"

/* After a body passes --max-body, this much more is read and dropped so
 * that a client streaming without Content-Length still gets its 413;
 * beyond it the connection is closed. */
#define DISCARD_MIN (16ull << 20)
/* Buffer of the post processor: the largest piece a field arrives in. */
#define PP_BUFFER (64u << 10)

/* ---- small helpers ---------------------------------------------------- */

int64_t srv_now(void)
{
    return (int64_t)time(NULL);
}

double srv_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Appends n bytes, keeping a NUL after the data so that text fields can be
 * used as C strings. Returns 0 or -1 (out of memory). */
static int buf_append(srv_buf_t *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        uint8_t *d = realloc(b->data, cap);
        if (!d)
            return -1;
        b->data = d;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

static int buf_reserve(srv_buf_t *b, size_t n)
{
    if (n + 1 <= b->cap)
        return 0;
    uint8_t *d = realloc(b->data, n + 1);
    if (!d)
        return -1;
    b->data = d;
    b->cap = n + 1;
    return 0;
}

static void buf_free(srv_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

static void req_free(srv_req_t *r)
{
    if (!r)
        return;
    if (r->pp)
        MHD_destroy_post_processor(r->pp);
    for (int i = 0; i < r->nseg; i++)
        free(r->seg[i]);
    for (size_t i = 0; i < r->nfields; i++) {
        free(r->fields[i].name);
        free(r->fields[i].filename);
        free(r->fields[i].content_type);
        buf_free(&r->fields[i].value);
    }
    buf_free(&r->body);
    free(r->resp);
    free(r);
}

/* ---- replies ------------------------------------------------------------ */

void srv_reply(srv_req_t *r, int status, const char *ctype, char *body,
               size_t len)
{
    if (r->status) { /* the first answer wins */
        free(body);
        return;
    }
    r->status = status;
    r->ctype = ctype;
    r->resp = body;
    r->resp_len = body ? len : 0;
}

void srv_reply_json(srv_req_t *r, int status, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    if (!s) {
        static const char oom[] = "{\"message\":\"out of memory\"}";
        char *m = strdup(oom);
        srv_reply(r, 503, "application/json", m, m ? sizeof oom - 1 : 0);
        return;
    }
    srv_reply(r, status, "application/json", s, strlen(s));
}

void srv_reply_error(srv_req_t *r, int status, const char *message,
                     const char *details_fmt, ...)
{
    json_t *j = json_object();
    json_object_set_new(j, "message", json_string(message));
    if (details_fmt) {
        char d[512];
        va_list ap;
        va_start(ap, details_fmt);
        vsnprintf(d, sizeof d, details_fmt, ap);
        va_end(ap);
        /* Details may quote client input: keep the JSON valid UTF-8. */
        json_t *ds = json_string(d);
        json_object_set_new(j, "details", ds ? ds : json_string("(binary)"));
    }
    srv_reply_json(r, status, j);
}

/* Queues r's answer. */
static enum MHD_Result finish(srv_req_t *r)
{
    if (!r->status)
        srv_reply_error(r, 500, "internal error", "the handler gave no answer");
    struct MHD_Response *resp;
    if (r->resp_len) {
        resp = MHD_create_response_from_buffer(r->resp_len, r->resp,
                                               MHD_RESPMEM_MUST_FREE);
        if (resp)
            r->resp = NULL; /* MHD frees it with the response */
    } else {
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    }
    if (!resp)
        return MHD_NO;
    if (r->ctype)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (r->www_auth)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"cordon\"");
    if (r->allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    enum MHD_Result ret =
        MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    r->queued = 1;
    return ret;
}

/* ---- arguments ---------------------------------------------------------- */

const char *srv_arg(srv_req_t *r, const char *key)
{
    const char *v = NULL;
    size_t vl = 0;
    if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, key,
                                      strlen(key), &v, &vl) != MHD_YES)
        return NULL;
    return v ? v : "";
}

const char *srv_header(srv_req_t *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

int srv_arg_bool(srv_req_t *r, const char *key, int def, int *out)
{
    const char *v = srv_arg(r, key);
    *out = def;
    if (!v)
        return 0;
    /* A bare "?dihedral" means yes. */
    if (!*v || !strcasecmp(v, "true") || !strcmp(v, "1") ||
        !strcasecmp(v, "yes")) {
        *out = 1;
        return 0;
    }
    if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no")) {
        *out = 0;
        return 0;
    }
    srv_reply_error(r, 400, "invalid boolean parameter - prefer true/false",
                    "%s='%.64s'", key, v);
    return -1;
}

int srv_arg_int(srv_req_t *r, const char *key, long long lo, long long hi,
                long long def, long long *out)
{
    const char *v = srv_arg(r, key);
    *out = def;
    if (!v)
        return 0;
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi) {
        srv_reply_error(r, 400, "invalid integer parameter",
                        "%s='%.64s' (expected %lld..%lld)", key, v, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

const srv_field_t *srv_field(srv_req_t *r, const char *name, size_t *count)
{
    const srv_field_t *first = NULL;
    size_t n = 0;
    for (size_t i = 0; i < r->nfields; i++) {
        if (strcmp(r->fields[i].name, name) == 0) {
            if (!first)
                first = &r->fields[i];
            n++;
        }
    }
    if (count)
        *count = n;
    return first;
}

const char *srv_text_param(srv_req_t *r, const char *name)
{
    const srv_field_t *f = srv_field(r, name, NULL);
    if (f)
        return f->value.data ? (const char *)f->value.data : "";
    return srv_arg(r, name);
}

json_t *srv_body_json(srv_req_t *r)
{
    if (!r->body.len) {
        srv_reply_error(r, 400, "a JSON body is required", NULL);
        return NULL;
    }
    json_error_t err;
    json_t *j = json_loadb((const char *)r->body.data, r->body.len,
                           JSON_DECODE_ANY, &err);
    if (!j)
        srv_reply_error(r, 400, "malformed JSON body", "line %d column %d: %s",
                        err.line, err.column, err.text);
    return j;
}

/* ---- per-thread worker state ------------------------------------------- */

static void worker_free(void *p)
{
    srv_worker_t *w = p;
    if (!w)
        return;
    cordon_hasher_free(w->hasher);
    hdb_match_results_free(&w->res);
    free(w);
}

srv_worker_t *srv_worker(srv_req_t *r)
{
    srv_t *s = r->srv;
    srv_worker_t *w = pthread_getspecific(s->worker_key);
    if (w)
        return w;
    w = calloc(1, sizeof *w);
    if (!w || cordon_hasher_create(&w->hasher) != CORDON_OK ||
        pthread_setspecific(s->worker_key, w) != 0) {
        worker_free(w);
        srv_reply_error(r, 503, "out of memory", NULL);
        return NULL;
    }
    return w;
}

/* ---- request bodies ----------------------------------------------------- */

static enum MHD_Result on_field(void *cls, enum MHD_ValueKind kind,
                                const char *key, const char *filename,
                                const char *content_type,
                                const char *transfer_encoding, const char *data,
                                uint64_t off, size_t size)
{
    (void)kind;
    (void)transfer_encoding;
    srv_req_t *r = cls;
    if (!key)
        key = "";
    srv_field_t *f = r->nfields ? &r->fields[r->nfields - 1] : NULL;
    /* A value arrives in pieces at increasing offsets; offset 0 starts a
     * new field, even one with the same name. */
    if (!f || off == 0 || strcmp(f->name, key) != 0) {
        if (r->nfields == SRV_MAX_FIELDS) {
            r->form_error = 2;
            return MHD_NO;
        }
        f = &r->fields[r->nfields++];
        memset(f, 0, sizeof *f);
        f->name = strdup(key);
        f->filename = filename ? strdup(filename) : NULL;
        f->content_type = content_type ? strdup(content_type) : NULL;
        if (!f->name || (filename && !f->filename) ||
            (content_type && !f->content_type)) {
            r->form_error = 3;
            return MHD_NO;
        }
    }
    if (buf_append(&f->value, data, size) != 0) {
        r->form_error = 3;
        return MHD_NO;
    }
    return MHD_YES;
}

static int is_form_type(const char *ct)
{
    if (!ct)
        return 0;
    while (*ct == ' ')
        ct++;
    return !strncasecmp(ct, "multipart/form-data", 19) ||
           !strncasecmp(ct, "application/x-www-form-urlencoded", 33);
}

/* Most body bytes read in all, the dropped ones included. */
static uint64_t discard_cap(const srv_t *s)
{
    uint64_t max = s->cfg.max_body;
    return max + (max > DISCARD_MIN ? max : DISCARD_MIN);
}

/* Sends an answer decided from the headers alone. With no body to come, a
 * client waiting for "100 Continue", or more body than we would read, it
 * goes out at once and libmicrohttpd closes the connection. Otherwise the
 * body is read and dropped first: closing a socket that still holds unread
 * data resets the connection, and the client might never see the answer. */
static enum MHD_Result refuse(srv_req_t *r)
{
    const char *cl = srv_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te = srv_header(r, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    const char *ex = srv_header(r, MHD_HTTP_HEADER_EXPECT);
    unsigned long long len = cl ? strtoull(cl, NULL, 10) : 0;
    if ((len == 0 && !te) || (ex && strcasestr(ex, "100-continue")) ||
        len > discard_cap(r->srv))
        return finish(r);
    r->deferred = 1;
    return MHD_YES;
}

/* Copies url into a printable, bounded form for the log. */
static void log_path(char *dst, size_t cap, const char *url)
{
    size_t i = 0;
    for (; url[i] && i + 1 < cap; i++) {
        unsigned char ch = (unsigned char)url[i];
        dst[i] = (ch < 0x20 || ch == 0x7f || ch == ' ') ? '?' : (char)ch;
    }
    dst[i] = 0;
}

/* Splits the (already unescaped) path into segments. -1 if too many. */
static int split_path(srv_req_t *r, const char *url)
{
    const char *p = url;
    if (*p == '/')
        p++;
    if (!*p)
        return 0;
    for (;;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (!e && n == 0)
            break; /* one trailing slash is forgiven */
        if (r->nseg == SRV_MAX_SEGS)
            return -1;
        char *s = strndup(p, n);
        if (!s)
            return -1;
        r->seg[r->nseg++] = s;
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    srv_t *s = cls;
    srv_req_t *r = *con_cls;
    size_t nroutes;
    const srv_route_t *routes = srv_routes(&nroutes);

    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        atomic_fetch_add(&s->inflight, 1);
        clock_gettime(CLOCK_MONOTONIC, &r->t0);
        r->srv = s;
        r->conn = c;
        snprintf(r->method, sizeof r->method, "%s", method);
        r->route_index = (int)nroutes; /* the "unmatched" metrics slot */
        log_path(r->log_path, sizeof r->log_path, url);
        if (split_path(r, url) != 0) {
            srv_reply_error(r, 404, "not found", NULL);
            return refuse(r);
        }
        /* HEAD is GET without the body; MHD drops the body itself. */
        const char *m = strcmp(method, "HEAD") == 0 ? "GET" : method;
        int idx = srv_route_find(m, r->seg, r->nseg, r->allow_buf,
                                 sizeof r->allow_buf);
        if (idx == -1) {
            srv_reply_error(r, 404, "not found", "no endpoint %.100s",
                            r->log_path);
            return refuse(r);
        }
        if (idx == -2) {
            r->allow = r->allow_buf;
            srv_reply_error(r, 405, "method not allowed", "%s %.100s", method,
                            r->log_path);
            return refuse(r);
        }
        r->route = &routes[idx];
        r->route_index = idx;
        if (srv_auth(r) != 0)
            return refuse(r);
        const char *cl = srv_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
        unsigned long long len = cl ? strtoull(cl, NULL, 10) : 0;
        if (len > s->cfg.max_body) {
            srv_reply_error(r, 413, "request body too large",
                            "%llu bytes; the limit is %llu", len,
                            (unsigned long long)s->cfg.max_body);
            return refuse(r);
        }
        if (r->route->flags & SRV_BODY) {
            const char *ct = srv_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
            if ((r->route->flags & SRV_FORM) && is_form_type(ct)) {
                r->is_form = 1;
                r->pp = MHD_create_post_processor(c, PP_BUFFER, on_field, r);
                if (!r->pp) {
                    srv_reply_error(r, 400, "malformed form body",
                                    "bad Content-Type '%.100s'", ct);
                    return refuse(r);
                }
            } else if (len && buf_reserve(&r->body, (size_t)len) != 0) {
                srv_reply_error(r, 503, "out of memory", NULL);
                return refuse(r);
            }
        }
        return MHD_YES;
    }

    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        r->received += n;
        uint64_t max = s->cfg.max_body;
        if (r->deferred || r->too_large)
            return r->received > discard_cap(s) ? MHD_NO : MHD_YES;
        if (r->received > max) {
            r->too_large = 1;
            buf_free(&r->body);
            return MHD_YES;
        }
        if (!(r->route->flags & SRV_BODY) || r->form_error)
            return MHD_YES;
        if (r->pp) {
            if (MHD_post_process(r->pp, upload_data, n) != MHD_YES &&
                !r->form_error)
                r->form_error = 1;
        } else if (buf_append(&r->body, upload_data, n) != 0) {
            r->form_error = 3;
        }
        return MHD_YES;
    }

    /* The whole request is in. */
    if (r->deferred)
        return finish(r);
    if (r->pp) {
        if (MHD_destroy_post_processor(r->pp) != MHD_YES && !r->form_error)
            r->form_error = 1;
        r->pp = NULL;
    }
    if (r->too_large)
        srv_reply_error(r, 413, "request body too large",
                        "more than %llu bytes",
                        (unsigned long long)s->cfg.max_body);
    else if (r->form_error == 3)
        srv_reply_error(r, 503, "out of memory", NULL);
    else if (r->form_error == 2)
        srv_reply_error(r, 400, "malformed form body", "more than %d fields",
                        SRV_MAX_FIELDS);
    else if (r->form_error)
        srv_reply_error(r, 400, "malformed form body",
                        "the multipart or urlencoded data does not parse");
    else
        r->route->handler(r);
    return finish(r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    srv_t *s = cls;
    srv_req_t *r = *con_cls;
    if (!r)
        return;
    *con_cls = NULL;
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - r->t0.tv_sec) +
                  (double)(t1.tv_nsec - r->t0.tv_nsec) * 1e-9;
    /* A request that never got an answer (client gone, body refused)
     * counts with status 0. */
    int status = r->queued ? r->status : 0;
    srv_metrics_request(s->metrics, r->route_index, status, secs, r->received,
                        r->queued ? r->resp_len : 0);
    if (!s->cfg.quiet) {
        char ts[32], addr[INET6_ADDRSTRLEN] = "-";
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr) {
            const struct sockaddr *sa = ci->client_addr;
            if (sa->sa_family == AF_INET)
                inet_ntop(
                    AF_INET,
                    &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
                    addr, sizeof addr);
            else if (sa->sa_family == AF_INET6)
                inet_ntop(
                    AF_INET6,
                    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                    addr, sizeof addr);
        }
        /* One write per line keeps lines whole across threads. Never the
         * query string (it may carry hashes of interest) nor a token. */
        fprintf(stderr, "%s %s %s %s %d %.3fms in=%llu out=%zu%s%s\n", ts, addr,
                r->method, r->log_path, status, secs * 1e3,
                (unsigned long long)r->received,
                r->queued ? r->resp_len : (size_t)0,
                r->key_name[0] ? " key=" : "", r->key_name);
    }
    atomic_fetch_sub(&s->inflight, 1);
    req_free(r);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    fprintf(stderr, "cordon serve: http: %s\n", msg);
}

/* ---- start / stop ------------------------------------------------------- */

/* "host:port", "[v6]:port" or ":port" (all interfaces). */
static int parse_listen(const char *spec, struct sockaddr_storage *ss,
                        socklen_t *sl)
{
    char host[256];
    const char *port;
    if (spec[0] == '[') {
        const char *e = strchr(spec, ']');
        if (!e || e[1] != ':' || (size_t)(e - spec - 1) >= sizeof host)
            return -1;
        memcpy(host, spec + 1, (size_t)(e - spec - 1));
        host[e - spec - 1] = 0;
        port = e + 2;
    } else {
        const char *e = strrchr(spec, ':');
        if (!e || (size_t)(e - spec) >= sizeof host)
            return -1;
        memcpy(host, spec, (size_t)(e - spec));
        host[e - spec] = 0;
        port = e + 1;
    }
    if (!*port)
        return -1;
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (getaddrinfo(*host ? host : NULL, port, &hints, &ai) != 0 || !ai)
        return -1;
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *sl = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

int srv_http_start(srv_t *s)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (parse_listen(s->cfg.listen, &ss, &sl) != 0) {
        fprintf(stderr, "cordon serve: bad --listen '%s' (host:port)\n",
                s->cfg.listen);
        return -1;
    }
    if (pthread_key_create(&s->worker_key, worker_free) != 0) {
        fprintf(stderr, "cordon serve: pthread_key_create failed\n");
        return -1;
    }
    s->worker_key_ok = 1;
    unsigned flags =
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_log, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)s->cfg.threads,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)s->cfg.timeout,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)s->cfg.max_conns,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SRV_DEFAULT_CONN_MEMORY,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
    if (!s->daemon) {
        fprintf(stderr, "cordon serve: cannot listen on %s\n", s->cfg.listen);
        return -1;
    }
    snprintf(s->bound, sizeof s->bound, "%s", s->cfg.listen);
    return 0;
}

void srv_http_stop(srv_t *s, unsigned grace_s)
{
    if (s->daemon) {
        /* Stop accepting at once, let in-flight requests finish. */
        MHD_socket fd = MHD_quiesce_daemon(s->daemon);
        if (fd != MHD_INVALID_SOCKET)
            close(fd);
        double end = srv_mono() + grace_s;
        while (atomic_load(&s->inflight) > 0 && srv_mono() < end) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        MHD_stop_daemon(s->daemon);
        s->daemon = NULL;
    }
    if (s->worker_key_ok) {
        pthread_key_delete(s->worker_key);
        s->worker_key_ok = 0;
    }
}
