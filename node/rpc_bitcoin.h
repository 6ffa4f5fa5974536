/* The methods of a bitcoin node (Bitcoin Core's names, arguments, results
 * and error codes for the subset cc-node serves). */
#ifndef CCNODE_RPC_BITCOIN_H
#define CCNODE_RPC_BITCOIN_H

#include "method.h"

/* NULL-name terminated. */
extern const struct node_method node_rpc_bitcoin_methods[];

#endif
