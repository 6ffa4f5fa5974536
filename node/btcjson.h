/* Bitcoin Core's JSON conventions, shared by the bitcoin flavour's methods
 * (rpc_bitcoin.c, rpc_btcchain.c, rpc_btcmempool.c, rpc_btcmining.c):
 * positional arguments checked with Core's type errors, hashes in display
 * byte order, hex strings, and Core's out-of-memory error. */
#ifndef CCNODE_BTCJSON_H
#define CCNODE_BTCJSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "method.h"

/* "object", "array", "string", "number", "bool" or "null": the words of
 * Core's "JSON value of type %s is not of expected type %s". */
const char *node_btcjson_type_name(const json_t *v);

/* params[i] as an integer / a string (borrowed from params). 0, or -1 with
 * `e` set to Core's RPC_TYPE_ERROR. */
int node_btcjson_arg_int(json_t *params, size_t i, int64_t *out, struct node_method_error *e);
int node_btcjson_arg_str(json_t *params, size_t i, const char **out, struct node_method_error *e);

/* params[i] as a hash (Core's ParseHashV: 64 hex characters, display byte
 * order) into internal byte order; `name` goes into the error. 0 or -1. */
int node_btcjson_arg_hash(json_t *params, size_t i, const char *name, uint8_t out[32],
                          struct node_method_error *e);

/* A new JSON string: the hash in display byte order / `len` bytes in hex.
 * NULL out of memory. */
json_t *node_btcjson_hash(const uint8_t h[32]);
json_t *node_btcjson_hex(const uint8_t *p, size_t len);

/* Set Core's RPC_OUT_OF_MEMORY error; returns -1. */
int node_btcjson_oom(struct node_method_error *e);

#endif
