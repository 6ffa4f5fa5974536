/* The peer manager's connections: the table of peers and their sockets,
 * the reconnection queue of configured peers (node_peer_backoff and
 * node_peer_queue_cmp of peer.h, at most reconnect_max_retries in a row),
 * inbound connections on network.listen, non-blocking reads and writes,
 * and timeouts (connect, handshake, idle) and pings. A connection that ends
 * is accounted for here: a configured peer is scheduled again or given up,
 * an inbound one is marked PS_CLOSED for the peer thread to free. Called
 * with the peer manager's lock held (except node_peerconn_listen). */
#ifndef CCNODE_PEERCONN_H
#define CCNODE_PEERCONN_H

#include <stddef.h>

#include "peermgr-types.h"

/* Add a peer (no socket yet) to the table of `pm`. NULL out of memory. */
struct peer *node_peerconn_add(struct node_peermgr *pm, const char *addr, int inbound);

/* Close the socket of `p` and forget its connection state (buffers, ping,
 * request in flight). The entry stays. */
void node_peerconn_reset(struct peer *p);

/* Start connecting the configured peers whose retry is due, best first,
 * within MAX_CONNECTING at a time and network.max_peers. */
void node_peerconn_run_queue(struct node_peermgr *pm, double now);

/* Accept every pending inbound connection (refused when banned or at
 * network.max_peers). */
void node_peerconn_accept(struct node_peermgr *pm, double now);

/* The socket of `p` is readable / writable / (while connecting) ready. */
void node_peerconn_read(struct node_peermgr *pm, struct peer *p, double now);
void node_peerconn_write(struct node_peermgr *pm, struct peer *p, double now);
void node_peerconn_connected(struct node_peermgr *pm, struct peer *p, double now);

/* Timeouts, pings, the close of connections marked closing. */
void node_peerconn_housekeeping(struct node_peermgr *pm, struct peer *p, double now);

/* A non-blocking listening socket on `listen_addr` ("host:port"), or -1 with
 * err ("network.listen 1.2.3.4:5: ..."). */
int node_peerconn_listen(const char *listen_addr, char *err, size_t errlen);

#endif
