/* Pruning policy: what each storage.pruning_mode means in bytes and blocks,
 * and which block files to delete. Pure functions; the chain applies a plan
 * (node_chain_prune) and the disk monitor decides when.
 *
 *   disabled    never prune; pruneblockchain is refused.
 *   normal      prune when own size > threshold, down to target, with
 *               Bitcoin Core's floor: the target is at least 550 MiB (and
 *               the threshold at least the target).
 *   aggressive  prune when own size > threshold, down to the
 *               min_blocks_kept most recent blocks whatever the target.
 *   custom      threshold and target exactly as configured (MB-sized values
 *               allowed).
 *
 * In every mode the most recent min_blocks_kept blocks (default 288, as
 * Core's MIN_BLOCKS_TO_KEEP) and the tip are never deleted. */
#ifndef CCNODE_PRUNE_H
#define CCNODE_PRUNE_H

#include <stdint.h>

#include "chain.h"
#include "config.h"

#define NODE_PRUNE_MIN_TARGET (550ULL << 20) /* Core's MIN_DISK_SPACE_FOR_BLOCK_FILES */

struct node_prune_limits {
    int enabled;        /* 0: pruning_mode disabled */
    uint64_t threshold; /* prune when own size is above this (bytes) */
    uint64_t target;    /* down to this (bytes); 0 in aggressive mode */
    int64_t keep;       /* most recent blocks never pruned (>= 1) */
};

/* Heights [from, to) whose block files a prune deletes, and their bytes. */
struct node_prune_plan {
    int64_t from, to;
    uint64_t bytes;
};

/* The effective limits of the configured mode (see above). */
void node_prune_limits_of(const struct node_config *cfg, struct node_prune_limits *out);

/* Plan a prune of a chain of `nblocks` blocks (sizes in blocks[h].size)
 * whose files below `pruned_below` are already gone and whose own size is
 * `own` bytes: delete from the oldest stored block up while the size is
 * above `target`, never a block at or above nblocks - keep (keep < 1 counts
 * as 1: the tip stays) and never above `upto` (last height a manual prune
 * asks for; INT64_MAX when size-driven). An empty plan has from == to. */
void node_prune_plan(const struct node_block_meta *blocks, int64_t nblocks, int64_t pruned_below,
                     int64_t keep, uint64_t own, uint64_t target, int64_t upto,
                     struct node_prune_plan *out);

#endif
