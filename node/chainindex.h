/* The chain's index in memory (block metadata by height, heights by hash)
 * and the one path by which a block joins it: checked against the tip
 * (validate.h), its record appended to the headers index, then the index
 * and optionally the UTXO set updated. Used by chain.c (produced and
 * accepted blocks) and chainload.c (blocks replayed at open); the caller
 * holds the chain's write lock. */
#ifndef CCNODE_CHAININDEX_H
#define CCNODE_CHAININDEX_H

#include <stddef.h>
#include <stdint.h>

#include "chain-types.h"

/* Record that a write failed with `errnum`: /health/ready turns 503 with
 * the reason until the disk monitor's next probe succeeds. */
void node_chainindex_storage_failed(struct node_chain *c, int errnum);

/* Make room for the next entry and map its hash: the part of adding a
 * block that can fail (out of memory: -1), undone by node_hmap_del(). */
int node_chainindex_reserve(struct node_chain *c, const struct node_block_meta *meta);

/* Add the reserved entry as the new tip. */
void node_chainindex_commit(struct node_chain *c, const struct node_block_meta *meta);

/* Validate a serialized block against the tip and add it to the index;
 * with `apply_utxo`, update the UTXO set. A block the headers index does not
 * hold yet gets its record appended (durably) first, so the caller must
 * have made its block file durable before. 0, or -1 with err. */
int node_chainindex_connect(struct node_chain *c, const uint8_t *raw, size_t len, int apply_utxo,
                            char *err, size_t errlen);

/* "<data_dir>/blocks/<height, 10 digits>.blk". */
void node_chainindex_block_path(const struct node_chain *c, int64_t height, char *out, size_t size);

#endif
