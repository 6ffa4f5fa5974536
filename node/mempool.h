/* The mempool: raw transactions waiting for a block, keyed by txid (Bitcoin)
 * or transaction hash (EVM), bounded in bytes. Thread-safe (one mutex). */
#ifndef CCNODE_MEMPOOL_H
#define CCNODE_MEMPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "prom.h"

struct node_mempool_entry {
    uint8_t txid[32];
    uint8_t *raw; /* malloc'd */
    size_t len;
    size_t weight;
    int64_t time; /* epoch seconds of acceptance */
};

struct node_mempool;

enum { NODE_MEMPOOL_ADDED = 0, NODE_MEMPOOL_DUPLICATE = 1, NODE_MEMPOOL_FULL = -2 };

/* NULL when out of memory. */
struct node_mempool *node_mempool_new(size_t max_bytes);
void node_mempool_free(struct node_mempool *mp);

/* Add a copy of `raw`. NODE_MEMPOOL_ADDED, NODE_MEMPOOL_DUPLICATE,
 * NODE_MEMPOOL_FULL, or -1 out of memory. */
int node_mempool_add(struct node_mempool *mp, const uint8_t txid[32], const uint8_t *raw,
                     size_t len, size_t weight);

/* 1 if present. */
int node_mempool_has(struct node_mempool *mp, const uint8_t txid[32]);

/* Remove by txid; 1 when removed. */
int node_mempool_remove(struct node_mempool *mp, const uint8_t txid[32]);

void node_mempool_stats(struct node_mempool *mp, size_t *count, size_t *bytes);
size_t node_mempool_max_bytes(const struct node_mempool *mp);

/* Write the ccnode_mempool_* families to `p`. 0, or -1 when the page failed. */
int node_mempool_metrics(struct node_mempool *mp, prom_t *p);

/* A copy of up to `max_weight` worth of entries (0: all), in arrival order.
 * The caller owns the array and frees it with node_mempool_entries_free().
 * 0, or -1 out of memory. */
int node_mempool_snapshot(struct node_mempool *mp, size_t max_weight,
                          struct node_mempool_entry **out, size_t *n);
void node_mempool_entries_free(struct node_mempool_entry *e, size_t n);

#endif
