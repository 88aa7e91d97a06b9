/* server_route.c - the route table of `cordon serve`, path matching and
 * API-key checks. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "server.h"

#define R(m, p, need, flags, h)                                                \
    {                                                                          \
        m, p, need, flags, h                                                   \
    }
#define MATCHER SRV_ROLE_MATCHER
#define CURATOR SRV_ROLE_CURATOR
#define ADMIN SRV_ROLE_ADMIN
#define BODY SRV_BODY
#define FORM (SRV_BODY | SRV_FORM)

/* Order matters only between routes with the same shape: the first match
 * wins. */
static const srv_route_t routes[] = {
    R("GET", "/status", MATCHER, 0, srv_h_status),
    R("GET", "/metrics", SRV_ROLE_METRICS, 0, srv_h_metrics),

    /* HMA: hashing */
    R("GET", "/h/hash", MATCHER, 0, srv_h_hash_get),
    R("POST", "/h/hash", MATCHER, FORM, srv_h_hash_post),

    /* HMA: matching */
    R("GET", "/m/raw_lookup", MATCHER, 0, srv_h_raw_lookup),
    R("GET", "/m/lookup", MATCHER, 0, srv_h_lookup_get),
    R("POST", "/m/lookup", MATCHER, FORM, srv_h_lookup_post),
    R("POST", "/m/compare", MATCHER, BODY, srv_h_compare),
    R("GET", "/m/index/status", MATCHER, 0, srv_h_index_status),

    /* HMA: curation */
    R("GET", "/c/banks", MATCHER, 0, srv_h_banks_list),
    R("POST", "/c/banks", CURATOR, BODY, srv_h_bank_create),
    R("GET", "/c/bank/{bank}", MATCHER, 0, srv_h_bank_get),
    R("PUT", "/c/bank/{bank}", CURATOR, BODY, srv_h_bank_update),
    R("DELETE", "/c/bank/{bank}", CURATOR, 0, srv_h_bank_delete),
    R("POST", "/c/bank/{bank}/content", CURATOR, FORM, srv_h_content_add),
    R("POST", "/c/bank/{bank}/signal", CURATOR, BODY, srv_h_signal_add),
    R("GET", "/c/bank/{bank}/content/{id}", MATCHER, 0, srv_h_content_get),
    R("PUT", "/c/bank/{bank}/content/{id}", CURATOR, BODY,
      srv_h_content_update),
    R("DELETE", "/c/bank/{bank}/content/{id}", CURATOR, 0,
      srv_h_content_delete),

    /* HMA endpoints Cordon does not serve: 501 with a message. */
    R("*", "/c/exchanges", MATCHER, 0, srv_h_unsupported),
    R("*", "/c/exchanges/apis", MATCHER, 0, srv_h_unsupported),
    R("*", "/c/exchanges/api/{api}", MATCHER, 0, srv_h_unsupported),
    R("*", "/c/exchange/{name}", MATCHER, 0, srv_h_unsupported),
    R("*", "/c/exchange/{name}/status", MATCHER, 0, srv_h_unsupported),
    R("*", "/c/signal_type", MATCHER, 0, srv_h_unsupported),
    R("*", "/c/signal_type/index", MATCHER, 0, srv_h_unsupported),
    R("*", "/c/signal_type/{name}", MATCHER, 0, srv_h_unsupported),
    R("*", "/c/content_type", MATCHER, 0, srv_h_unsupported),
    R("*", "/site-map", MATCHER, 0, srv_h_unsupported),

    /* Cordon-native */
    R("POST", "/v1/check", MATCHER, FORM, srv_h_check),
    R("GET", "/v1/feed", ADMIN, 0, srv_h_feed),
    R("GET", "/v1/keys", ADMIN, 0, srv_h_keys_list),
    R("POST", "/v1/keys", ADMIN, BODY, srv_h_keys_create),
    R("DELETE", "/v1/keys/{id}", ADMIN, 0, srv_h_keys_revoke),
};

#define NROUTES (sizeof routes / sizeof routes[0])

const srv_route_t *srv_routes(size_t *n)
{
    *n = NROUTES;
    return routes;
}

/* Does the pattern match the segments? */
static int path_match(const char *pat, char *const *seg, int nseg)
{
    const char *p = pat;
    if (*p == '/')
        p++;
    int i = 0;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (i >= nseg)
            return 0;
        if (p[0] == '{') {
            if (!seg[i][0])
                return 0;
        } else if (strlen(seg[i]) != n || memcmp(seg[i], p, n) != 0) {
            return 0;
        }
        i++;
        if (!e)
            break;
        p = e + 1;
    }
    return i == nseg;
}

int srv_route_find(const char *method, char *const *seg, int nseg, char *allow,
                   size_t cap)
{
    int path_seen = 0;
    allow[0] = 0;
    for (size_t i = 0; i < NROUTES; i++) {
        if (!path_match(routes[i].pattern, seg, nseg))
            continue;
        if (!strcmp(routes[i].method, "*") || !strcmp(routes[i].method, method))
            return (int)i;
        size_t used = strlen(allow);
        snprintf(allow + used, cap - used, "%s%s", used ? ", " : "",
                 routes[i].method);
        path_seen = 1;
    }
    return path_seen ? -2 : -1;
}

/* ---- roles and keys ----------------------------------------------------- */

static const char *const role_names[] = {"none", "metrics", "matcher",
                                         "curator", "admin"};

srv_role_t srv_role_from_name(const char *name)
{
    for (int i = SRV_ROLE_METRICS; i <= SRV_ROLE_ADMIN; i++)
        if (name && !strcmp(name, role_names[i]))
            return (srv_role_t)i;
    return SRV_ROLE_NONE;
}

const char *srv_role_name(srv_role_t r)
{
    return (unsigned)r <= SRV_ROLE_ADMIN ? role_names[r] : "none";
}

/* matcher < curator < admin; "metrics" may only read /metrics, which admin
 * may too. */
static int role_allows(srv_role_t have, srv_role_t need)
{
    if (have == SRV_ROLE_NONE)
        return 0;
    if (need == SRV_ROLE_METRICS)
        return have == SRV_ROLE_METRICS || have == SRV_ROLE_ADMIN;
    if (have == SRV_ROLE_METRICS)
        return 0;
    return have >= need;
}

#define MAX_TOKEN 1024

int srv_auth(srv_req_t *r)
{
    srv_t *s = r->srv;
    if (s->cfg.no_auth) {
        r->role = SRV_ROLE_ADMIN;
        return 0;
    }
    const char *h = srv_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h) {
        r->www_auth = 1;
        srv_reply_error(r, 401, "missing API key",
                        "send the header 'Authorization: Bearer <token>'");
        return -1;
    }
    while (*h == ' ' || *h == '\t')
        h++;
    if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t')) {
        r->www_auth = 1;
        srv_reply_error(r, 401, "unsupported authorization scheme",
                        "send the header 'Authorization: Bearer <token>'");
        return -1;
    }
    const char *tok = h + 6;
    while (*tok == ' ' || *tok == '\t')
        tok++;
    size_t n = strlen(tok);
    while (n && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
        n--;
    if (n == 0 || n > MAX_TOKEN) {
        r->www_auth = 1;
        srv_reply_error(r, 401, "invalid or revoked API key", NULL);
        return -1;
    }
    /* Only digests are stored; the lookup is by digest, and the digest is
     * compared again in constant time so that the answer never depends on
     * how much of a guess was right. */
    uint8_t d[CORDON_SHA256_LEN];
    if (cordon_digest((const uint8_t *)tok, n, NULL, d) != CORDON_OK) {
        srv_reply_error(r, 503, "internal error", "digest failed");
        return -1;
    }
    hdb_apikey_t *k = NULL;
    int rc = hdb_apikey_lookup(s->db, d, &k);
    if (rc == CORDON_ENOTFOUND || rc == CORDON_EPERM ||
        (rc == CORDON_OK && CRYPTO_memcmp(k->token_sha256, d, sizeof d))) {
        hdb_free(k);
        r->www_auth = 1;
        srv_reply_error(r, 401, "invalid or revoked API key", NULL);
        return -1;
    }
    if (rc != CORDON_OK) {
        srv_reply_error(r, 503, "database error", "%s", cordon_strerror(rc));
        return -1;
    }
    r->role = srv_role_from_name(k->role);
    /* The name goes to the access log: printable characters only. */
    snprintf(r->key_name, sizeof r->key_name, "%s", k->name);
    for (char *p = r->key_name; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            *p = '?';
    char role[64];
    snprintf(role, sizeof role, "%s", k->role);
    hdb_free(k);
    if (!role_allows(r->role, r->route->need)) {
        srv_reply_error(r, 403, "this key's role does not allow this",
                        "role '%s'; %s %s needs '%s'", role, r->method,
                        r->route->pattern, srv_role_name(r->route->need));
        return -1;
    }
    return 0;
}
