/* The peer manager's messages (the protocol of peer.h): queueing frames in
 * a peer's write buffer, and handling every frame read from it — the
 * handshake, announcements, GETBLOCKS answered from our chain, blocks
 * accepted into it, pings and rejects. A peer that misbehaves is judged by
 * peerscore.h and marked `closing`; closing the socket is peerconn.c's.
 * Called with the peer manager's lock held. */
#ifndef CCNODE_PEERMSG_H
#define CCNODE_PEERMSG_H

#include <stdint.h>

#include "peermgr-types.h"

/* Queue one frame of `type` with `payload` (a failed buffer counts as out of
 * memory). 0, or -1: out of memory, logged, and the peer is marked closing. */
int node_peermsg_send(struct peer *p, uint8_t type, const struct node_buf *payload);

/* Apply what the chain worker finished: blocks connected (or refused, or
 * failed) and blocks read for GETBLOCKS, queued to their peer if it is still
 * there. */
void node_peermsg_work_done(struct node_peermgr *pm, double now);

/* Queue our HELLO (or HELLO_ACK): chain, tip, genesis, nonce, subversion. */
void node_peermsg_send_hello(struct node_peermgr *pm, struct peer *p, uint8_t type);
/* Queue a REJECT of a message of `type`, with `reason`. */
void node_peermsg_send_reject(struct peer *p, uint8_t type, const char *reason);
/* Queue a PING or PONG carrying `nonce`. */
void node_peermsg_send_nonce(struct peer *p, uint8_t type, uint64_t nonce);

/* Decode and handle every whole frame in the peer's read buffer; what is
 * left is the start of an incomplete frame. */
void node_peermsg_process(struct node_peermgr *pm, struct peer *p, double now);

#endif
