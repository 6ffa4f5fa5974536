/* Pruning policy and planning (see prune.h). */
#include "prune.h"

#include <math.h>

static uint64_t gb_bytes(double gb)
{
    double b = gb * 1e9;
    return b >= 1.8e19 ? UINT64_MAX : (uint64_t)llround(b);
}

void node_prune_limits_of(const struct node_config *cfg, struct node_prune_limits *out)
{
    out->enabled = cfg->storage.pruning_mode != NODE_PRUNE_DISABLED;
    out->threshold = gb_bytes(cfg->storage.pruning_threshold_gb);
    out->target = gb_bytes(cfg->storage.pruning_target_gb);
    out->keep = cfg->storage.min_blocks_kept > 0 ? cfg->storage.min_blocks_kept : 1;
    switch (cfg->storage.pruning_mode) {
    case NODE_PRUNE_NORMAL:
        if (out->target < NODE_PRUNE_MIN_TARGET)
            out->target = NODE_PRUNE_MIN_TARGET;
        if (out->threshold < out->target)
            out->threshold = out->target;
        break;
    case NODE_PRUNE_AGGRESSIVE:
        out->target = 0;
        break;
    default:
        break;
    }
}

void node_prune_plan(const struct node_block_meta *blocks, int64_t nblocks, int64_t pruned_below,
                     int64_t keep, uint64_t own, uint64_t target, int64_t upto,
                     struct node_prune_plan *out)
{
    int64_t limit = nblocks - (keep < 1 ? 1 : keep);
    int64_t h = pruned_below < 0 ? 0 : pruned_below;

    if (upto < INT64_MAX && upto + 1 < limit)
        limit = upto + 1;
    out->from = h;
    out->bytes = 0;
    while (h < limit && own > target) {
        uint64_t sz = blocks[h].size;
        own = own > sz ? own - sz : 0;
        out->bytes += sz;
        h++;
    }
    out->to = h;
}
