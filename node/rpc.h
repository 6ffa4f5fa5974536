/* JSON-RPC over HTTP for both flavours: the envelope (single, batch,
 * notifications, legacy 1.0 vs 2.0 status rules), authentication, rate
 * limiting, warm-up, request ids and the per-request log line. Methods live
 * in rpc_bitcoin.c (with rpc_btcchain.c, rpc_btcmempool.c, rpc_btcmining.c)
 * and rpc_evm.c. */
#ifndef CCNODE_RPC_H
#define CCNODE_RPC_H

#include <jansson.h>

#include "httpd.h"
#include "method.h"
#include "node.h"

/* The flavour's method table: node_rpc_evm_methods or
 * node_rpc_bitcoin_methods. */
const struct node_method *node_rpc_methods(const struct node_config *cfg);

/* The HTTP handler of the RPC endpoint (POST /). `ctx` is the struct node. */
int node_rpc_handle(struct node *n, const struct httpd_request *req, struct httpd_response *resp);

/* Check `value` against the Basic credentials and cookie of the node:
 * 1 accepted (user name copied into `user`, "" when auth is off),
 * 0 refused. `authorization` is the header value or NULL. */
int node_rpc_authorize(const struct node *n, const char *authorization, char *user, size_t userlen);

#endif
