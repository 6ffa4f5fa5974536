/* The peer manager: one thread with a poll() loop that keeps TCP connections
 * to the configured peers (network.peers) and accepts others on
 * network.listen, speaks the protocol of peer.h, downloads missing blocks and
 * announces new ones.
 *
 * Reconnection: a configured peer that fails or disconnects is retried after
 * node_peer_backoff(initial, max, retries so far, jitter), at most
 * reconnect_max_retries times in a row (then it is given up: log line
 * peer_give_up, counter); a completed handshake resets the count;
 * reconnect_enabled=false means no retry at all. Peers due at the same time
 * are tried in the order of node_peer_queue_cmp (quality, then due time).
 * The thread never waits on the disk or the chain's lock: blocks are
 * connected and read on the chain worker (peerwork.h), the tip is read
 * without the lock (node_chain_tip()), so an attempt comes on time, late by
 * at most a tick, whatever the chain is doing.
 *
 * Misbehaviour (bad frame, malformed or unexpected message, wrong chain, an
 * invalid block) is counted by reason and costs the address an offence;
 * NODE_PEERMGR_BAN_OFFENCES offences ban it for NODE_PEERMGR_BAN_SECS
 * (inbound peers are judged by IP, configured ones by their address).
 *
 * Sync: the node is "syncing" from start until it has caught up with a peer
 * after the handshake (or no configured peer could be reached, or none is
 * configured), and later whenever a connected peer reports a height more than
 * NODE_PEERMGR_SYNC_LAG blocks above ours (so one block in flight does not
 * flip readiness). There are no reorganisations: a peer whose block does not
 * extend our tip is marked forked and not synced from. */
#ifndef CCNODE_PEERMGR_H
#define CCNODE_PEERMGR_H

#include <stddef.h>
#include <stdint.h>

#include "peer.h"

#define NODE_PEERMGR_BAN_OFFENCES 5
#define NODE_PEERMGR_BAN_SECS 60
#define NODE_PEERMGR_SYNC_LAG 6

struct node;
struct node_peermgr;

/* Bind network.listen (when set) and start the peer thread for `n`, whose
 * chain must be open. NULL with err filled ("network.listen 1.2.3.4:5: ..."). */
struct node_peermgr *node_peermgr_start(struct node *n, char *err, size_t errlen);

/* Stop the thread, close every connection, free. NULL is a no-op. */
void node_peermgr_stop(struct node_peermgr *pm);

/* 1 while the node is behind its peers (see above); 0 for NULL. Lock-free. */
int node_peermgr_syncing(const struct node_peermgr *pm);

/* Best height reported by connected peers, -1 when none (or pm NULL); the
 * height the current sync started from (-1 when not syncing). Lock-free. */
int64_t node_peermgr_best_height(const struct node_peermgr *pm);
int64_t node_peermgr_sync_start(const struct node_peermgr *pm);

/* Connected (handshaken) peers, inbound and outbound. 0 for NULL. */
void node_peermgr_counts(const struct node_peermgr *pm, size_t *in, size_t *out);

#define NODE_PEERMGR_REJECT_REASONS 10

/* Counters of the peer manager (zeros, best height -1, for NULL). */
struct node_peermgr_stats {
    size_t configured; /* network.peers */
    size_t connected_in, connected_out;
    int syncing;
    int64_t best_height;
    uint64_t reconnect_attempts, give_ups, bans, blocks_received, blocks_sent;
    uint64_t rejected[NODE_PEERMGR_REJECT_REASONS]; /* by node_peermgr_reject_name() */
};

void node_peermgr_stats(const struct node_peermgr *pm, struct node_peermgr_stats *out);

/* Name of a reject reason ("bad_magic", ...), 0 <= reason < NODE_PEERMGR_REJECT_REASONS. */
const char *node_peermgr_reject_name(size_t reason);

/* What getpeerinfo shows of one known peer. Times are epoch seconds, 0
 * when not applicable; pingtime and minping in seconds, -1 unknown. */
struct node_peer_view {
    unsigned id;
    char addr[96];
    int inbound;
    int64_t conntime, lastsend, lastrecv;
    uint64_t bytes_sent, bytes_recv;
    uint32_t version;
    char subver[NODE_PEER_MAX_STR + 1];
    int64_t startingheight, synced_blocks, best_height;
    const char *state; /* "waiting", "connecting", "handshake", "connected", ... */
    unsigned attempts;
    int64_t next_attempt; /* while waiting for a retry */
    double score;
    unsigned offences;
    int64_t banned_until;
    double pingtime, minping;
    int forked;
};

/* A copy of every known peer (configured ones too while they wait for a
 * retry or were given up), in table order: *out malloc'd (NULL when none),
 * *n entries. 0, or -1 out of memory. pm NULL: no peers. */
int node_peermgr_snapshot(struct node_peermgr *pm, struct node_peer_view **out, size_t *n);

#endif
