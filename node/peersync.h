/* Block sync of the peer manager: which peer to download the next batch of
 * blocks from (the best height above ours, quality breaking ties; one
 * GETBLOCKS in flight, given up after STALL_TIMEOUT without a block), the
 * announcement of our new tip, and the lock-free summary read by health and
 * RPC: best peer height, syncing or not (see peermgr.h). Called by the peer
 * thread once per tick with the lock held. */
#ifndef CCNODE_PEERSYNC_H
#define CCNODE_PEERSYNC_H

#include "peermgr-types.h"

/* Ask a peer for the next batch unless a request is in flight. */
void node_peersync_next(struct node_peermgr *pm, double now);

/* ANNOUNCE our tip to connected peers below it, once per new height. */
void node_peersync_announce(struct node_peermgr *pm);

/* Recompute best_height, syncing and sync_start (logs sync_started,
 * sync_done, initial_sync_done). */
void node_peersync_update(struct node_peermgr *pm);

#endif
