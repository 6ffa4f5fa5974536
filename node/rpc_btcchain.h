/* The bitcoin flavour's blockchain methods (Bitcoin Core's "Blockchain"
 * category without the mempool): blocks, headers, chain state and pruning
 * on request, with Core's results and errors. Entries of the method table
 * in rpc_bitcoin.c; the signature is method.h's node_method_fn. */
#ifndef CCNODE_RPC_BTCCHAIN_H
#define CCNODE_RPC_BTCCHAIN_H

#include "method.h"

int node_rpc_btcchain_getbestblockhash(struct node *n, json_t *params, json_t **result,
                                       struct node_method_error *e);
int node_rpc_btcchain_getblock(struct node *n, json_t *params, json_t **result,
                               struct node_method_error *e);
int node_rpc_btcchain_getblockchaininfo(struct node *n, json_t *params, json_t **result,
                                        struct node_method_error *e);
int node_rpc_btcchain_getblockcount(struct node *n, json_t *params, json_t **result,
                                    struct node_method_error *e);
int node_rpc_btcchain_getblockhash(struct node *n, json_t *params, json_t **result,
                                   struct node_method_error *e);
int node_rpc_btcchain_getblockheader(struct node *n, json_t *params, json_t **result,
                                     struct node_method_error *e);
/* pruneblockchain height|time: see rpc_btcchain.c. */
int node_rpc_btcchain_pruneblockchain(struct node *n, json_t *params, json_t **result,
                                      struct node_method_error *e);

#endif
