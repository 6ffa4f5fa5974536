/* The disk monitor: a thread that every storage.check_interval_secs probes
 * the data dir (a durable write and the free-space floor, which also clears
 * a storage failure once the disk is usable again), reads statvfs (free and
 * total bytes), and when pruning is on and the node's own storage exceeds
 * the threshold of the mode (prune.h) prunes the oldest block files. */
#ifndef CCNODE_DISK_H
#define CCNODE_DISK_H

#include <stddef.h>
#include <stdint.h>

#include "prom.h"

struct node_chain;
struct node_config;
struct node_disk;

struct node_disk_stats {
    uint64_t free_bytes;  /* available to the node (statvfs f_bavail) */
    uint64_t total_bytes; /* size of the file system */
    uint64_t checks;      /* rounds done */
    uint64_t prune_failures;
};

/* Run one round now (so health and metrics are filled from the start),
 * then start the thread. NULL with err filled (out of memory, thread). */
struct node_disk *node_disk_start(struct node_chain *c, const struct node_config *cfg, char *err,
                                  size_t errlen);

/* Stop the thread and free `d` (NULL is fine). */
void node_disk_stop(struct node_disk *d);

/* One round: probe, statvfs, prune when over the threshold. Called by the
 * thread; exposed for tests. */
void node_disk_check(struct node_disk *d);

/* Copy the counters and last statvfs figures. Lock-free. */
void node_disk_stats_get(const struct node_disk *d, struct node_disk_stats *out);

/* Write the storage, disk and pruning families to `p`: the monitor's
 * figures (`d` NULL: zeros), the pruning limits of `cfg` and the chain's
 * size and prune counters (`c` NULL while the chain is not open: zeros).
 * 0, or -1 when the page failed. */
int node_disk_metrics(const struct node_disk *d, struct node_chain *c,
                      const struct node_config *cfg, prom_t *p);

#endif
