/* What the node shows of its peers: getpeerinfo, the "peers" section of
 * /health/detailed and the ccnode_peer* metric families, rendered from the
 * peer manager's counters and snapshot (peermgr.h). */
#ifndef CCNODE_PEERINFO_H
#define CCNODE_PEERINFO_H

#include <jansson.h>

#include "prom.h"

struct node_peermgr;

/* getpeerinfo: a new JSON array, one object per known peer. pm NULL: [].
 * NULL out of memory. */
json_t *node_peerinfo_json(struct node_peermgr *pm);

/* The "peers" section of /health/detailed. NULL out of memory. */
json_t *node_peerinfo_health(struct node_peermgr *pm);

/* Write the ccnode_peer* metric families to `p` (pm may be NULL: zeros).
 * 0, or -1 when the page failed. */
int node_peerinfo_metrics(struct node_peermgr *pm, prom_t *p);

#endif
