/* Rebuilding the chain's index when it is opened (crash recovery): records
 * of the headers index up to the chainstate tip are taken without reading
 * their block files (they may be pruned); blocks above the tip are replayed
 * into the UTXO set from their files; block files beyond the last record (a
 * data dir from before the headers index, or a crash between a block file
 * and its record) are connected and their records appended. What does not
 * connect above the chainstate is crash debris and is removed, as are block
 * files a crash left below the prune height. Called by node_chain_open(). */
#ifndef CCNODE_CHAINLOAD_H
#define CCNODE_CHAINLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "chain-types.h"

/* Build the index of `c` (empty) from the headers index records `recs`
 * and the block files; `have_state`: a chainstate with tip `state_height`
 * / `state_tip` was read. *replayed counts the blocks replayed above it.
 * 0, or -1 with err. */
int node_chainload_blocks(struct node_chain *c, const struct node_block_meta *recs, size_t nrecs,
                          int have_state, int64_t state_height, const uint8_t state_tip[32],
                          int *replayed, char *err, size_t errlen);

/* Delete block files below the prune height that a crash left behind. */
void node_chainload_remove_leftovers(struct node_chain *c);

#endif
