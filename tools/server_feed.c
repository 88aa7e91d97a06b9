/* server_feed.c - GET /v1/feed, the change feed of feed-contract.md. */
#include "server.h"

void srv_h_feed(srv_req_t *r)
{
    srv_reply_error(r, 501, "the change feed is not built yet", NULL);
}
