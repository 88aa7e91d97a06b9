/* server_feed.c - GET /v1/feed?since=SEQ&limit=N, the change feed of
 * docs/feed.md that `cordon sync` replicates from. The page is
 * built by hdbjson (shared with the sync client). */
#include "hdbjson.h"
#include "server.h"

void srv_h_feed(srv_req_t *r)
{
    long long since, limit;
    if (srv_arg_int(r, "since", 0, INT64_MAX, 0, &since) ||
        srv_arg_int(r, "limit", 1, HDBJSON_FEED_LIMIT_MAX,
                    HDBJSON_FEED_LIMIT_DEFAULT, &limit))
        return;
    json_t *page = NULL;
    int rc =
        hdbjson_feed_page(r->srv->db, (uint64_t)since, (size_t)limit, &page);
    if (rc != CORDON_OK) {
        srv_reply_hdb(r, rc, "change feed");
        return;
    }
    srv_reply_json(r, 200, page);
}
