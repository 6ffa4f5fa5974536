/* The methods of an EVM node (Ethereum JSON-RPC names and results for the
 * subset cc-node serves). */
#ifndef CCNODE_RPC_EVM_H
#define CCNODE_RPC_EVM_H

#include "method.h"

/* NULL-name terminated. */
extern const struct node_method node_rpc_evm_methods[];

#endif
