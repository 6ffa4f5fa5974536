/* The peer manager's chain worker: one thread that does the chain work the
 * peers ask for — connecting the blocks they send (block file, fsyncs,
 * chainstate, under the chain's write lock) and reading the blocks they
 * request (under its read lock) — in the order it was asked, so that the
 * peer thread never waits on the disk or on the chain's lock. The peer
 * thread's timers (reconnection backoff, pings, timeouts) and its other
 * peers would otherwise wait for every block of a batch, or for a whole
 * `generate` holding the write lock: seconds on a loaded disk. Results come
 * back through node_peerwork_results(); node_peerwork_fd() is readable when
 * some wait. Knows nothing of peers but their session numbers. */
#ifndef CCNODE_PEERWORK_H
#define CCNODE_PEERWORK_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

struct node_chain;
struct node_mempool;
struct node_peerwork;

enum node_peerwork_kind {
    NODE_PEERWORK_ACCEPT = 0, /* a block received: rc is an enum node_accept */
    NODE_PEERWORK_SERVE,      /* blocks requested: frames to queue to the peer */
};

struct node_peerwork_result {
    struct node_peerwork_result *next;
    int kind;               /* enum node_peerwork_kind */
    uint64_t session;       /* the peer's session given with the job */
    uint64_t height;        /* ACCEPT: the height the peer sent the block as */
    int rc;                 /* ACCEPT: enum node_accept; SERVE: 0, -1 a block was unavailable */
    char why[256];          /* ACCEPT: reason when not OK; SERVE: why a block was unavailable */
    int64_t unavailable;    /* SERVE: the height that could not be read, -1 none */
    struct node_buf frames; /* SERVE: BLOCK frames (and a REJECT) to queue, in order */
    uint64_t blocks;        /* SERVE: BLOCK frames in `frames` */
};

/* Start the worker for `chain` and `mp` (may be NULL). NULL with err filled. */
struct node_peerwork *node_peerwork_start(struct node_chain *chain, struct node_mempool *mp,
                                          char *err, size_t errlen);

/* Stop the thread (jobs not started are dropped), free everything. NULL is a no-op. */
void node_peerwork_stop(struct node_peerwork *w);

/* An eventfd, readable while results wait (node_peerwork_results() clears it). */
int node_peerwork_fd(const struct node_peerwork *w);

/* Queue the connection of block `raw` (copied) that the peer of `session` sent as
 * `height`. 0, or -1 out of memory. */
int node_peerwork_accept(struct node_peerwork *w, uint64_t session, uint64_t height,
                         const uint8_t *raw, size_t len);

/* Queue the reading of `count` blocks from height `from` for the peer of `session`,
 * stopping once `backlog` (bytes already queued to it) plus the frames made
 * exceed `high_water`. 0, or -1 out of memory. */
int node_peerwork_serve(struct node_peerwork *w, uint64_t session, uint64_t from, uint32_t count,
                        size_t backlog, size_t high_water);

/* Blocks queued for connection and not yet reported back. */
size_t node_peerwork_accepts_pending(const struct node_peerwork *w);

/* Take every finished result, oldest first (NULL when none); the caller
 * frees each with node_peerwork_result_free(). */
struct node_peerwork_result *node_peerwork_results(struct node_peerwork *w);
void node_peerwork_result_free(struct node_peerwork_result *r);

#endif
