/* The bitcoin flavour's mempool and raw-transaction methods:
 * getmempoolinfo, getrawmempool and sendrawtransaction, with Bitcoin Core's
 * results and errors. Entries of the method table in rpc_bitcoin.c; the
 * signature is method.h's node_method_fn. */
#ifndef CCNODE_RPC_BTCMEMPOOL_H
#define CCNODE_RPC_BTCMEMPOOL_H

#include "method.h"

int node_rpc_btcmempool_getmempoolinfo(struct node *n, json_t *params, json_t **result,
                                       struct node_method_error *e);
int node_rpc_btcmempool_getrawmempool(struct node *n, json_t *params, json_t **result,
                                      struct node_method_error *e);
int node_rpc_btcmempool_sendrawtransaction(struct node *n, json_t *params, json_t **result,
                                           struct node_method_error *e);

#endif
