/* The node's counters and histograms and the /metrics page (Prometheus text
 * via lib/prom.h, `ccnode_` prefix). Counters are atomics and histograms
 * lock-free, so recording costs no lock on the request path. */
#ifndef CCNODE_METRICS_H
#define CCNODE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "prom.h"

struct node;
struct node_metrics;

enum node_rl_layer { NODE_RL_IP = 0, NODE_RL_USER, NODE_RL_METHOD, NODE_RL_LAYERS };

/* Per-method series for the names in `methods` (copied by pointer: static
 * strings) plus one "other" series for unknown names. NULL out of memory. */
struct node_metrics *node_metrics_new(const char *const *methods, size_t n);
void node_metrics_free(struct node_metrics *m);

/* Record one call of `method` (NULL or unknown: "other"). */
void node_metrics_rpc(struct node_metrics *m, const char *method, int failed, double seconds);
void node_metrics_bytes(struct node_metrics *m, uint64_t received, uint64_t sent);
void node_metrics_rate_limited(struct node_metrics *m, enum node_rl_layer layer);
void node_metrics_http(struct node_metrics *m, int status);
/* All RPC calls processed since start. */
uint64_t node_metrics_rpc_total(const struct node_metrics *m);

/* Render the page for `n`. Returns a malloc'd NUL-terminated string, or NULL
 * out of memory. */
char *node_metrics_render(struct node *n, size_t *len);

#endif
