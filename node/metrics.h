/* The counters and histograms of RPC and network traffic: a leaf that the
 * RPC envelope, the HTTP server and the peer manager write into, and that
 * writes its own families into the /metrics page server.c assembles
 * (Prometheus text via lib/prom.h, `ccnode_` prefix). Counters are atomics
 * and histograms lock-free, so recording costs no lock on the request path. */
#ifndef CCNODE_METRICS_H
#define CCNODE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "prom.h"
#include "ratelimit.h"

struct node_metrics;

/* Per-method series for the names in `methods` (copied by pointer: static
 * strings) plus one "other" series for unknown names. NULL out of memory. */
struct node_metrics *node_metrics_new(const char *const *methods, size_t n);
void node_metrics_free(struct node_metrics *m);

/* Record one call of `method` (NULL or unknown: "other"). */
void node_metrics_rpc(struct node_metrics *m, const char *method, int failed, double seconds);
void node_metrics_bytes(struct node_metrics *m, uint64_t received, uint64_t sent);
void node_metrics_rate_limited(struct node_metrics *m, enum node_ratelimit_layer layer);
void node_metrics_http(struct node_metrics *m, int status);
/* All RPC calls processed since start. */
uint64_t node_metrics_rpc_total(const struct node_metrics *m);

/* Write the ccnode_network_* families (bytes received and sent), and the
 * RPC families (calls, errors and durations by method, rate-limited
 * requests by layer, HTTP responses by class) to `p`. 0, or -1 when the page
 * failed. */
int node_metrics_write_network(const struct node_metrics *m, prom_t *p);
int node_metrics_write_rpc(const struct node_metrics *m, prom_t *p);

#endif
