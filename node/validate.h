/* Block validation. A block received from a peer must pass, before it may
 * touch the chain, checks with Bitcoin Core's reject reasons: size, shape,
 * regtest bits and proof of work, parent, time against the median of the
 * last 11 blocks, coinbase placement and merkle root. A block the node
 * stored itself is checked again when it is connected (parent, proof of
 * work, merkle root), which also yields its index entry. Pure: the chain
 * supplies its tip. */
#ifndef CCNODE_VALIDATE_H
#define CCNODE_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

/* Check the serialized block `raw` as the child of `tip_hash` (NULL when the
 * chain is empty: always bad-prevblk) whose median time is `tip_mtp`. On
 * success fills *ids (malloc'd, *n transaction ids, for the mempool) and
 * returns 0; -1 invalid (err: the reason, such as "high-hash"); -2 out of
 * memory. */
int node_validate_block(int evm, const uint8_t *raw, size_t len, const uint8_t *tip_hash,
                        uint32_t tip_mtp, uint8_t (**ids)[32], long *n, char *err, size_t errlen);

struct node_block_meta;
struct node_tx;

/* Check a block the node wrote itself (produced, or replayed from its block
 * files) as the child of `parent` (NULL: it must be a genesis block): parent
 * link, proof of work, coinbase placement, merkle root. Fills `meta` (hash,
 * header, ntx, size, weight) and, for bitcoin, *decoded (malloc'd,
 * *ndecoded entries, each freed with node_tx_free(), then the array); `evm`
 * leaves *decoded NULL. 0, or -1 with err (nothing to free). */
int node_validate_stored_block(int evm, const uint8_t *raw, size_t len, const uint8_t *parent,
                               struct node_block_meta *meta, struct node_tx **decoded,
                               long *ndecoded, char *err, size_t errlen);

#endif
