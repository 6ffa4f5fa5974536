/* The running node: what every request handler needs, wired by main.c.
 * Shared read-mostly state; the parts that change are atomics or have their
 * own locks (chain: rwlock, mempool: mutex, rate limiter: striped mutexes). */
#ifndef CCNODE_NODE_H
#define CCNODE_NODE_H

#include <stdatomic.h>
#include <stdint.h>

#include "config.h"

#define NODE_VERSION "0.1.0"
#define NODE_VERSION_NUM 10000 /* getnetworkinfo "version" */
#define NODE_SUBVERSION "/cc-node:" NODE_VERSION "/"

struct node_chain;
struct node_mempool;
struct node_disk;
struct node_ratelimit;
struct node_metrics;
struct node_peermgr;

enum node_phase {
    NODE_PHASE_LOADING = 0, /* chain being opened: RPC in warm-up, not ready */
    NODE_PHASE_WARMUP,      /* chain open, warmup_secs not yet elapsed */
    NODE_PHASE_READY,
    NODE_PHASE_FAILED, /* chain could not be opened */
};

struct node {
    const struct node_config *cfg;
    struct node_chain *chain; /* NULL until loaded */
    struct node_mempool *mempool;
    struct node_ratelimit *rl; /* NULL when rate limiting is off */
    struct node_disk *disk;    /* disk monitor; NULL until the chain is open */
    struct node_metrics *metrics;
    struct node_peermgr *peers; /* NULL until the chain is open */
    atomic_int phase;           /* enum node_phase */
    int64_t start_time;         /* epoch seconds */
    char cookie[65];            /* hex secret of __cookie__, "" when none */
    uint64_t request_seed;      /* random prefix of request ids */
    _Atomic uint64_t request_counter;
};

/* Seconds since the process started. */
int64_t node_uptime(const struct node *n);

/* Whether the chain is open (its index usable by handlers). */
int node_has_chain(const struct node *n);

#endif
