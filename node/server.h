/* The HTTP surface of cc-node: routes requests to the JSON-RPC endpoint
 * (POST /), the health endpoints (/health, /health/live, /health/ready,
 * /health/detailed) and /metrics; and the RPC auth cookie file. */
#ifndef CCNODE_SERVER_H
#define CCNODE_SERVER_H

#include <stddef.h>

#include "httpd.h"
#include "node.h"

/* httpd handler; `ctx` is the struct node. */
int node_server_handle(void *ctx, const struct httpd_request *req, struct httpd_response *resp);

/* Fill `status` (HTTP code) and return the JSON body of a health endpoint
 * ("", "live", "ready", "detailed"), or NULL out of memory / unknown. */
struct json_t *node_health_report(struct node *n, const char *which, int *status);

/* Create the cookie file (0600) with "__cookie__:<64 hex>" and keep the
 * secret in n->cookie. 0, or -1 with err. */
int node_cookie_create(struct node *n, const char *path, char *err, size_t errlen);

/* Remove the cookie file written by node_cookie_create(). */
void node_cookie_remove(const char *path);

#endif
