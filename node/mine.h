/* Block production: assemble a block from mempool entries (with a coinbase
 * for bitcoin chains) and mine it to the regtest target. Pure: the chain
 * decides the height, parent and time, then stores and connects the result. */
#ifndef CCNODE_MINE_H
#define CCNODE_MINE_H

#include <stddef.h>
#include <stdint.h>

struct node_buf;
struct node_mempool_entry;

/* Genesis time: fixed, so the genesis block is the same on every node. */
#define NODE_MINE_GENESIS_TIME 1296688602u

/* Append to `out` the serialized block at `height` on top of `prev` (ignored
 * at height 0) with header time `time`, holding `ntx` entries after, unless
 * `evm`, a coinbase paying to `script`. 0, or -1 with err (out of memory). */
int node_mine_block(int evm, int64_t height, const uint8_t prev[32], uint32_t time,
                    const struct node_mempool_entry *txs, size_t ntx, const uint8_t *script,
                    size_t script_len, struct node_buf *out, char *err, size_t errlen);

#endif
