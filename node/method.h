/* The contract between the JSON-RPC envelope (rpc.c) and the methods of
 * each flavour (rpc_bitcoin.c's table, whose methods are in rpc_bitcoin.c,
 * rpc_btcchain.c, rpc_btcmempool.c and rpc_btcmining.c; rpc_evm.c): error
 * codes, the error a method fills, the method table entry, and lookup in a
 * table. */
#ifndef CCNODE_METHOD_H
#define CCNODE_METHOD_H

#include <jansson.h>

struct node;

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

struct node_method_error {
    int code;
    char message[256];
};

/* Set an error and return -1 (the method idiom). */
int node_method_fail(struct node_method_error *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A method: `params` is always an array (named parameters are mapped to
 * positions with `args`). Fill *result (a new reference) and return 0, or
 * return -1 with `err` set. */
typedef int (*node_method_fn)(struct node *n, json_t *params, json_t **result,
                              struct node_method_error *err);

struct node_method {
    const char *name;
    node_method_fn fn;
    unsigned min_args, max_args;
    const char *args[4]; /* names of the positional arguments */
    const char *help;    /* one line: "getblockhash height" */
};

/* Look `name` up in `table` (NULL-name terminated); NULL when absent. */
const struct node_method *node_method_find(const struct node_method *table, const char *name);

#endif
