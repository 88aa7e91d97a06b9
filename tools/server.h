/*
 * server.h - internals of `cordon serve`, the upload-time HTTP service (not
 * a public API; only tools/server*.c and tools/cmd_serve.c include it).
 *
 * Layout:
 *   server_http.c     libmicrohttpd plumbing: daemon, request bodies (raw
 *                     and multipart), limits, replies, access log, drain
 *   server_route.c    the route table, path matching, API-key checks
 *   server_metrics.c  Prometheus counters and histograms, GET /metrics
 *   server_media.c    uploads -> hashes -> matches, shared JSON pieces
 *   server_hma.c      the HMA-compatible /h, /m, /c endpoints and /status
 *   server_native.c   /v1/check, /v1/feed, /v1/keys
 *   cmd_serve.c       the command: options, signals, index refresher
 *
 * Caveats:
 * - Requests run on libmicrohttpd's pool threads. Everything in srv_t is
 *   shared by them: the database handle and the matcher are thread-safe,
 *   metrics use atomics, and each pool thread keeps its own hasher
 *   (srv_worker()).
 * - A handler answers exactly once through srv_reply*(); the first answer
 *   wins. Handlers never see a request whose body broke a limit: that is
 *   answered (413 / 400) before dispatch.
 */
#ifndef CORDON_SERVER_H
#define CORDON_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>
#include <microhttpd.h>

#include "cordon.h"
#include "hdb.h"
#include "hdb_matcher.h"

/* Defaults of the command-line options. */
#define SRV_DEFAULT_MAX_BODY (64ull << 20)
#define SRV_DEFAULT_TIMEOUT 30 /* seconds of client inactivity */
#define SRV_DEFAULT_MAX_CONNS 256
#define SRV_DEFAULT_CONN_MEMORY (256u << 10) /* per-connection header pool */
#define SRV_REFRESH_MS 200                   /* index refresh period */
#define SRV_STALE_SECONDS 10 /* /status says INDEX-STALE past this */
#define SRV_DRAIN_SECONDS 10 /* grace for in-flight requests on stop */

/* Most multipart fields a request may carry. */
#define SRV_MAX_FIELDS 16
/* Most path segments a route has. */
#define SRV_MAX_SEGS 8

typedef enum {
    SRV_ROLE_NONE = 0, /* unknown role: everything is 403 */
    SRV_ROLE_METRICS,  /* GET /metrics only */
    SRV_ROLE_MATCHER,  /* hash, lookup, compare, check, status, reads */
    SRV_ROLE_CURATOR,  /* + add/change/remove banks and content */
    SRV_ROLE_ADMIN     /* + feed, keys, metrics */
} srv_role_t;

/* "matcher" -> SRV_ROLE_MATCHER, ...; SRV_ROLE_NONE when unknown. */
srv_role_t srv_role_from_name(const char *name);
const char *srv_role_name(srv_role_t r);

typedef struct {
    const char *db_path;
    const char *listen; /* "host:port" or "[v6]:port" */
    unsigned threads;
    uint64_t max_body;
    unsigned timeout; /* seconds */
    unsigned max_conns;
    int no_auth;
    int nosync;
    int quiet; /* no access log */
} srv_config_t;

typedef struct srv_metrics srv_metrics_t;
typedef struct srv_route srv_route_t;

typedef struct srv {
    srv_config_t cfg;
    hdb_t *db;
    hdb_matcher_t *matcher;
    struct MHD_Daemon *daemon;
    srv_metrics_t *metrics;
    int worker_key_ok;
    pthread_key_t worker_key; /* srv_worker_t of each pool thread */
    atomic_int inflight;
    atomic_llong last_refresh; /* Unix seconds of the last good refresh */
    int64_t started;
    char bound[64]; /* the address actually listened on, for the log */
} srv_t;

/* A growable byte buffer. */
typedef struct {
    uint8_t *data;
    size_t len, cap;
} srv_buf_t;

/* One multipart/urlencoded field. */
typedef struct {
    char *name;
    char *filename;     /* NULL for plain fields */
    char *content_type; /* NULL when the part had none */
    srv_buf_t value;
} srv_field_t;

typedef struct srv_req {
    srv_t *srv;
    struct MHD_Connection *conn;
    const srv_route_t *route;
    int route_index; /* for metrics; the unmatched slot when none */
    char method[16];
    char log_path[200];
    char *seg[SRV_MAX_SEGS]; /* path segments (decoded, owned) */
    int nseg;
    struct timespec t0;

    /* Body. */
    uint64_t received;
    int too_large, form_error;
    int deferred; /* answered from the headers; the body is dropped */
    struct MHD_PostProcessor *pp;
    srv_buf_t body; /* raw bodies */
    srv_field_t fields[SRV_MAX_FIELDS];
    size_t nfields;
    int is_form;

    /* Caller. */
    srv_role_t role;
    char key_name[HDB_MAX_NAME + 1];

    /* Answer. */
    int status;
    const char *ctype;
    char *resp;
    size_t resp_len;
    const char *allow; /* Allow header for 405 (points into allow_buf) */
    char allow_buf[48];
    int www_auth;
    int queued;
} srv_req_t;

typedef void (*srv_handler_fn)(srv_req_t *r);

/* Route flags. */
#define SRV_BODY 1u /* keeps a body (raw, or form fields with SRV_FORM) */
#define SRV_FORM 2u /* parses multipart/form-data and urlencoded bodies */

struct srv_route {
    const char *method;  /* "GET", ..., or "*" for any */
    const char *pattern; /* "/c/bank/{bank}/content/{id}"; {x} = 1 segment */
    srv_role_t need;
    unsigned flags;
    srv_handler_fn handler;
};

/* ---- server_route.c ---------------------------------------------------- */

/* The table and its size (routes + 1 metrics slot for unmatched paths). */
const srv_route_t *srv_routes(size_t *n);

/* Finds the route for method + the request's segments. Returns its index,
 * or -1 (404) or -2 (the path exists for other methods: 405, with the
 * methods it has written to allow, e.g. "GET, PUT"). */
int srv_route_find(const char *method, char *const *seg, int nseg, char *allow,
                   size_t cap);

/* Checks the Authorization header against the route's role. Returns 0 when
 * allowed; otherwise answers 401/403 itself and returns -1. */
int srv_auth(srv_req_t *r);

/* ---- server_http.c ----------------------------------------------------- */

/* Starts the daemon on cfg.listen. Returns 0, or -1 with a message printed. */
int srv_http_start(srv_t *s);
/* Stops accepting, waits up to grace_s for in-flight requests, stops. */
void srv_http_stop(srv_t *s, unsigned grace_s);

/* Answers. body is malloc'd and taken over (NULL with len 0 is fine). */
void srv_reply(srv_req_t *r, int status, const char *ctype, char *body,
               size_t len);
/* Steals j. */
void srv_reply_json(srv_req_t *r, int status, json_t *j);
/* {"message": message, "details": details} */
void srv_reply_error(srv_req_t *r, int status, const char *message,
                     const char *details_fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Query arguments. srv_arg returns NULL when absent, "" when valueless. */
const char *srv_arg(srv_req_t *r, const char *key);
/* Each returns 0, or answers 400 and returns -1. */
int srv_arg_bool(srv_req_t *r, const char *key, int def, int *out);
int srv_arg_int(srv_req_t *r, const char *key, long long lo, long long hi,
                long long def, long long *out);
/* A request header, or NULL. */
const char *srv_header(srv_req_t *r, const char *name);

/* The first form field of that name, or NULL; *count gets how many. */
const srv_field_t *srv_field(srv_req_t *r, const char *name, size_t *count);
/* A text parameter from the form, else the query; NULL when absent. The
 * form value is NUL-terminated in place. */
const char *srv_text_param(srv_req_t *r, const char *name);

/* Parses the raw body as JSON. Returns the value (caller decrefs), or NULL
 * after answering 400. */
json_t *srv_body_json(srv_req_t *r);

/* Per-thread hasher and match buffer, created on first use; NULL (and a
 * 503 answered) if that fails. */
typedef struct {
    cordon_hasher_t *hasher;
    hdb_match_results_t res;
} srv_worker_t;
srv_worker_t *srv_worker(srv_req_t *r);

/* Seconds since the epoch, and a monotonic clock in seconds. */
int64_t srv_now(void);
double srv_mono(void);

/* ---- server_metrics.c -------------------------------------------------- */

int srv_metrics_create(size_t nroutes, srv_metrics_t **out);
void srv_metrics_free(srv_metrics_t *m);
void srv_metrics_request(srv_metrics_t *m, int route, int status,
                         double seconds, uint64_t in, uint64_t out);
void srv_metrics_match(srv_metrics_t *m, uint32_t bank_id, const char *bank);
void srv_metrics_verdict(srv_metrics_t *m, int matched);
void srv_h_metrics(srv_req_t *r);

/* ---- server_media.c ---------------------------------------------------- */

typedef enum { SRV_MEDIA_PHOTO = 1, SRV_MEDIA_VIDEO = 2 } srv_media_kind_t;

typedef struct {
    const uint8_t *data;
    size_t len;
    srv_media_kind_t kind;
    const char *field; /* the form field it came in, or "body" */
} srv_media_t;

/* Finds the one upload of a request: a multipart file (or value) in one of
 * the fields "photo", "video" and, when allow_file, "file"; or the raw body
 * (Content-Type image/..., video/..., application/octet-stream or none).
 * Answers 400 and returns -1 when there is none, or more than one. */
int srv_media_get(srv_req_t *r, int allow_file, srv_media_t *m);

/* Decodes and hashes a photo. Answers 400 (bad media), 413 (pixel or byte
 * limit) or 503 and returns -1 on failure. */
int srv_media_hash_photo(srv_req_t *r, const srv_media_t *m, int fast,
                         cordon_image_hashes_t *h);

/* One matched item. */
typedef struct {
    uint64_t item;
    hdb_sigtype_t signal; /* HDB_SIG_PDQ, _MD5, _SHA256, _VPDQ */
    int distance;         /* PDQ; 0 for exact copies */
    int variant;          /* cordon_dihedral_t */
    double timestamp;     /* a video frame that matched a photo; else -1 */
    double query_pct;     /* vPDQ: % of the upload's frames matched */
    double target_pct;    /* vPDQ: % of the stored video's frames matched */
} srv_found_t;

typedef struct {
    srv_found_t *v;
    size_t n, cap;
    int truncated;
} srv_found_list_t;

void srv_found_free(srv_found_list_t *l);
/* Appends a hit (timestamp -1, percentages 0). 0, or -1 out of memory. */
int srv_found_push(srv_found_list_t *l, uint64_t item, hdb_sigtype_t sig,
                   int distance, int variant);

/* Matching as `cordon match` does it: exact MD5/SHA-256 copies through the
 * database, then PDQ (and its dihedral variants when nq == 8) through the
 * matcher when quality >= o->min_quality. types selects the signal types
 * (bit 1 << hdb_sigtype_t; 0 = all). Exact hits on disabled content are
 * dropped unless o->include_disabled. Returns 0, or answers 503 and
 * returns -1. */
int srv_match_image(srv_req_t *r, const cordon_image_hashes_t *h, int nq,
                    const hdb_match_opts_t *o, unsigned types,
                    srv_found_list_t *out);

/* Exact lookup of one MD5/SHA-256 signal; the same filtering. */
int srv_match_exact(srv_req_t *r, const hdb_signal_t *sig, int include_disabled,
                    srv_found_list_t *out);

/* PDQ lookup of one hash through the matcher. */
int srv_match_pdq(srv_req_t *r, const cordon_hash256_t *q, int nq,
                  const hdb_match_opts_t *o, srv_found_list_t *out);

/* A JSON string of s. Text from the database or a form need not be UTF-8;
 * bytes that do not decode become '?', so that an answer never loses a
 * member (json_string() would give NULL). */
json_t *srv_jstr(const char *s);
/* Is s valid UTF-8 (and not NULL)? */
int srv_utf8_ok(const char *s);

/* Labels as a JSON array of strings. */
json_t *srv_labels_json(const char *const *labels, size_t n);

/* Parses a signal type name (hdb_sigtype_from_name) or answers 400. */
int srv_sigtype(srv_req_t *r, const char *name, hdb_sigtype_t *t);

/* Parses a signal value of type t into *sig; vPDQ frames go to a malloc'd
 * array returned in *frames (free it). Answers 400 and returns -1 on a bad
 * value. */
int srv_signal_parse(srv_req_t *r, hdb_sigtype_t t, const char *value,
                     hdb_signal_t *sig, hdb_vpdq_frame_t **frames);

/* Formats a signal value as text (malloc'd), NULL on failure. */
char *srv_signal_text(const hdb_signal_t *sig);

/* Splits "a,b,c" into a malloc'd array of strings (one block; free()).
 * Returns -1 and answers 400 when there are too many. */
int srv_split_list(srv_req_t *r, const char *s, size_t max, char ***out,
                   size_t *n);

/* Answers an hdb error code with the closest HTTP status (400 for bad
 * input, 404 not found, 409/403 conflicts, 503 otherwise). */
void srv_reply_hdb(srv_req_t *r, int rc, const char *what);

/* ---- server_video.c ---------------------------------------------------- */

/* A hashed video upload. */
typedef struct {
    cordon_video_hashes_t vh; /* vPDQ frames (1 per second) and facts */
    uint8_t md5[CORDON_MD5_LEN];
    uint8_t sha256[CORDON_SHA256_LEN];
} srv_video_t;

/* Hashes a video upload (vPDQ + MD5/SHA-256). Answers 400 (not a video
 * FFmpeg can decode), 413 (limits) or 503 and returns -1 on failure. */
int srv_media_hash_video(srv_req_t *r, const srv_media_t *m, srv_video_t *v);
void srv_video_free(srv_video_t *v);

/* Matches vPDQ frames: each distinct frame hash (quality >= 50) goes
 * through the index; the stored videos it reaches are compared whole with
 * cordon_vpdq_compare() (python-threatexchange's rule: a match when at
 * least 80% of the upload's distinct frames match) and reported as
 * HDB_SIG_VPDQ with both percentages; stored photos that a frame matches
 * are reported as HDB_SIG_PDQ with that frame's timestamp. */
int srv_match_vpdq(srv_req_t *r, const cordon_vpdq_frame_t *f, size_t n,
                   int threshold, int include_disabled, srv_found_list_t *out);

/* Parses a vPDQ signal text (a JSON list of "pdqhex,quality,timestamp")
 * into malloc'd frames, or answers 400. */
int srv_vpdq_parse(srv_req_t *r, const char *text, cordon_vpdq_frame_t **f,
                   size_t *n);

/* Folds frames into hdb entries (runs of equal hash and quality) for
 * storage; *out is malloc'd. Answers 400/413/503 and returns -1. */
int srv_vpdq_fold(srv_req_t *r, const cordon_vpdq_frame_t *f, size_t n,
                  hdb_vpdq_frame_t **out, size_t *nout);

/* ---- server_hma.c / server_native.c ------------------------------------ */

void srv_h_status(srv_req_t *r);
void srv_h_unsupported(srv_req_t *r);
void srv_h_hash_get(srv_req_t *r);
void srv_h_hash_post(srv_req_t *r);
void srv_h_raw_lookup(srv_req_t *r);
void srv_h_lookup_get(srv_req_t *r);
void srv_h_lookup_post(srv_req_t *r);
void srv_h_compare(srv_req_t *r);
void srv_h_index_status(srv_req_t *r);
void srv_h_banks_list(srv_req_t *r);
void srv_h_bank_create(srv_req_t *r);
void srv_h_bank_get(srv_req_t *r);
void srv_h_bank_update(srv_req_t *r);
void srv_h_bank_delete(srv_req_t *r);
void srv_h_content_add(srv_req_t *r);
void srv_h_signal_add(srv_req_t *r);
void srv_h_content_get(srv_req_t *r);
void srv_h_content_update(srv_req_t *r);
void srv_h_content_delete(srv_req_t *r);

void srv_h_check(srv_req_t *r);
void srv_h_feed(srv_req_t *r);
void srv_h_keys_list(srv_req_t *r);
void srv_h_keys_create(srv_req_t *r);
void srv_h_keys_revoke(srv_req_t *r);

/* Makes the index reflect this process's writes before answering. */
void srv_refresh_now(srv_t *s);

#endif
