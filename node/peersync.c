/* Downloading blocks from peers, announcing ours, and whether we are syncing. */
#include "peersync.h"

#include <stdatomic.h>

#include "chain.h"
#include "log.h"
#include "node.h"
#include "peermsg.h"
#include "peerscore.h"

#define SYNC_BATCH 100

static void request_blocks(struct node_peermgr *pm, struct peer *p, double now)
{
    int64_t ours = node_chain_height(pm->n->chain);
    int64_t count = p->best_height - ours;
    struct node_buf b = {0};

    if (count > SYNC_BATCH)
        count = SYNC_BATCH;
    node_peer_getblocks_encode(&b, (uint64_t)(ours + 1), (uint32_t)count);
    if (node_peermsg_send(p, NODE_PEER_GETBLOCKS, &b) == 0) {
        p->req_end = ours + count;
        p->req_deadline = now + STALL_TIMEOUT;
        pm->sync_peer = p;
        LOG_EVENT(LOG_DEBUG, "sync_request", NULL, NULL, LF_STR("peer", p->addr),
                  LF_INT("from", ours + 1), LF_INT("count", count));
    }
    node_codec_buf_free(&b);
}

/* Pick the connected peer with the best height above ours (quality breaks
 * ties) and ask it for the next batch, unless a request is in flight. */
void node_peersync_next(struct node_peermgr *pm, double now)
{
    struct peer *best = NULL;
    int64_t ours = node_chain_height(pm->n->chain);

    /* Blocks received are still being connected (peerwork.h): our height is
     * not yet where the next request starts, and the peer is not stalling. */
    if (node_peerwork_accepts_pending(pm->work) > 0)
        return;
    if (pm->sync_peer) {
        struct peer *p = pm->sync_peer;
        if (p->req_end >= 0 && now < p->req_deadline && ours < p->req_end)
            return;
        if (p->req_end >= 0 && ours < p->req_end && now >= p->req_deadline)
            LOG_EVENT(LOG_WARN, "sync_stalled", NULL, NULL, LF_STR("peer", p->addr),
                      LF_INT("height", ours), LF_INT("expected", p->req_end));
        p->req_end = -1;
        pm->sync_peer = NULL;
    }
    for (size_t i = 0; i < pm->npeers; i++) {
        struct peer *p = pm->peers[i];
        if (p->state != PS_CONNECTED || p->forked || p->no_blocks || p->closing ||
            p->best_height <= ours)
            continue;
        if (!best || p->best_height > best->best_height ||
            (p->best_height == best->best_height &&
             node_peerscore_quality(p, now) > node_peerscore_quality(best, now)))
            best = p;
    }
    if (best)
        request_blocks(pm, best, now);
}

void node_peersync_announce(struct node_peermgr *pm)
{
    uint8_t tip[32];
    int64_t h;
    struct node_buf b = {0};

    if (node_chain_height(pm->n->chain) <= pm->announced)
        return;
    h = node_chain_tip(pm->n->chain, tip);
    if (h <= pm->announced)
        return;
    pm->announced = h;
    node_peer_announce_encode(&b, (uint64_t)h, tip);
    for (size_t i = 0; i < pm->npeers; i++) {
        struct peer *p = pm->peers[i];
        if (p->state == PS_CONNECTED && !p->closing && p->best_height < h)
            node_peermsg_send(p, NODE_PEER_ANNOUNCE, &b);
    }
    node_codec_buf_free(&b);
}

/* Recompute the lock-free summary: best height, syncing. */
void node_peersync_update(struct node_peermgr *pm)
{
    int64_t best = -1, ours = node_chain_height(pm->n->chain);
    int any_connected = 0, pending = 0;

    for (size_t i = 0; i < pm->npeers; i++) {
        struct peer *p = pm->peers[i];
        if (p->state == PS_CONNECTED) {
            any_connected = 1;
            if (!p->forked && p->best_height > best)
                best = p->best_height;
        }
        /* A configured peer not yet tried, or mid-attempt, may still report
         * a better chain. */
        if (p->configured && (p->state == PS_CONNECTING || p->state == PS_HANDSHAKE ||
                              (p->state == PS_WAITING && p->failures == 0 && p->uptime == 0)))
            pending = 1;
    }
    atomic_store(&pm->best_height, best);
    if (!pm->initial_done) {
        if ((any_connected && ours >= best) || (!any_connected && !pending)) {
            pm->initial_done = 1;
            LOG_EVENT(LOG_INFO, "initial_sync_done", NULL, NULL, LF_INT("height", ours),
                      LF_INT("peer_height", best));
        }
    }
    int syncing = !pm->initial_done || best > ours + NODE_PEERMGR_SYNC_LAG;
    int was = atomic_exchange(&pm->syncing, syncing);
    if (syncing && !was) {
        atomic_store(&pm->sync_start, ours);
        LOG_EVENT(LOG_INFO, "sync_started", NULL, NULL, LF_INT("height", ours),
                  LF_INT("peer_height", best));
    } else if (!syncing && was) {
        atomic_store(&pm->sync_start, -1);
        LOG_EVENT(LOG_INFO, "sync_done", NULL, NULL, LF_INT("height", ours),
                  LF_INT("peer_height", best));
    }
}
