/* The HTTP surface of cc-node: routes requests to the JSON-RPC endpoint
 * (POST /), the health endpoints (/health, /health/live, /health/ready,
 * /health/detailed) and /metrics, whose page it assembles from each
 * module's part. */
#ifndef CCNODE_SERVER_H
#define CCNODE_SERVER_H

#include <stddef.h>

#include "httpd.h"
#include "node.h"

/* httpd handler; `ctx` is the struct node. */
int node_server_handle(void *ctx, const struct httpd_request *req, struct httpd_response *resp);

#endif
