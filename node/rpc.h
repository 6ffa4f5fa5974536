/* JSON-RPC over HTTP for both flavours: the envelope (single, batch,
 * notifications, legacy 1.0 vs 2.0 status rules), authentication, rate
 * limiting, warm-up, request ids and the per-request log line. Methods live
 * in rpc_bitcoin.c and rpc_evm.c. */
#ifndef CCNODE_RPC_H
#define CCNODE_RPC_H

#include <jansson.h>

#include "httpd.h"
#include "node.h"

/* Bitcoin Core's codes (src/rpc/protocol.h) and JSON-RPC's. */
enum {
    RPC_PARSE_ERROR = -32700,
    RPC_INVALID_REQUEST = -32600,
    RPC_METHOD_NOT_FOUND = -32601,
    RPC_INVALID_PARAMS = -32602,
    RPC_INTERNAL_ERROR = -32603,
    RPC_LIMIT_EXCEEDED = -32005, /* EIP-1474 "limit exceeded": rate limiting */
    RPC_SERVER_ERROR = -32000,
    RPC_MISC_ERROR = -1,
    RPC_TYPE_ERROR = -3,
    RPC_INVALID_ADDRESS_OR_KEY = -5,
    RPC_OUT_OF_MEMORY = -7,
    RPC_INVALID_PARAMETER = -8,
    RPC_CLIENT_IN_INITIAL_DOWNLOAD = -10,
    RPC_DESERIALIZATION_ERROR = -22,
    RPC_VERIFY_REJECTED = -26,
    RPC_VERIFY_ALREADY_IN_CHAIN = -27,
    RPC_IN_WARMUP = -28,
};

struct node_rpc_error {
    int code;
    char message[256];
};

/* Set an error and return -1 (the method idiom). */
int node_rpc_fail(struct node_rpc_error *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A method: `params` is always an array (named parameters are mapped to
 * positions with `args`). Fill *result (a new reference) and return 0, or
 * return -1 with `err` set. */
typedef int (*node_rpc_fn)(struct node *n, json_t *params, json_t **result,
                           struct node_rpc_error *err);

struct node_rpc_method {
    const char *name;
    node_rpc_fn fn;
    unsigned min_args, max_args;
    const char *args[4]; /* names of the positional arguments */
    const char *help;    /* one line: "getblockhash height" */
};

/* Method tables of the two flavours (NULL-name terminated). */
extern const struct node_rpc_method node_btc_methods[];
extern const struct node_rpc_method node_evm_methods[];

/* The HTTP handler of the RPC endpoint (POST /). `ctx` is the struct node. */
int node_rpc_handle(struct node *n, const struct httpd_request *req, struct httpd_response *resp);

/* Look up a method of the node's flavour; NULL when unknown. */
const struct node_rpc_method *node_rpc_find(const struct node *n, const char *name);

/* Check `value` against the Basic credentials and cookie of the node:
 * 1 accepted (user name copied into `user`, "" when auth is off),
 * 0 refused. `authorization` is the header value or NULL. */
int node_rpc_authorize(const struct node *n, const char *authorization, char *user, size_t userlen);

#endif
