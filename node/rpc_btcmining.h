/* The bitcoin flavour's mining methods: getblocktemplate, and block
 * production on request (generate, generatetoaddress; at most 1000 blocks
 * per call), with Bitcoin Core's results and errors. Entries of the method
 * table in rpc_bitcoin.c; the signature is method.h's node_method_fn. */
#ifndef CCNODE_RPC_BTCMINING_H
#define CCNODE_RPC_BTCMINING_H

#include "method.h"

int node_rpc_btcmining_getblocktemplate(struct node *n, json_t *params, json_t **result,
                                        struct node_method_error *e);
int node_rpc_btcmining_generate(struct node *n, json_t *params, json_t **result,
                                struct node_method_error *e);
int node_rpc_btcmining_generatetoaddress(struct node *n, json_t *params, json_t **result,
                                         struct node_method_error *e);

#endif
