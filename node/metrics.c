/* Metrics registry and exposition. */
#include "metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chain.h"
#include "disk.h"
#include "mempool.h"
#include "node.h"
#include "peermgr.h"
#include "prune.h"

struct method_series {
    const char *name;
    _Atomic uint64_t requests, errors;
    struct prom_histogram seconds;
};

struct node_metrics {
    size_t n; /* series, the last one "other" */
    struct method_series *methods;
    _Atomic uint64_t rpc_total;
    _Atomic uint64_t bytes_received, bytes_sent;
    _Atomic uint64_t rate_limited[NODE_RL_LAYERS];
    _Atomic uint64_t http[6]; /* by status class 1xx..5xx, [0] unused */
};

struct node_metrics *node_metrics_new(const char *const *methods, size_t n)
{
    struct node_metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->methods = calloc(n + 1, sizeof(*m->methods));
    if (!m->methods) {
        free(m);
        return NULL;
    }
    m->n = n + 1;
    for (size_t i = 0; i <= n; i++) {
        m->methods[i].name = i < n ? methods[i] : "other";
        prom_histogram_init(&m->methods[i].seconds, PROM_LATENCY_BOUNDS, PROM_LATENCY_NBOUNDS);
    }
    return m;
}

void node_metrics_free(struct node_metrics *m)
{
    if (!m)
        return;
    free(m->methods);
    free(m);
}

static struct method_series *series(struct node_metrics *m, const char *method)
{
    if (method) {
        for (size_t i = 0; i + 1 < m->n; i++)
            if (strcmp(m->methods[i].name, method) == 0)
                return &m->methods[i];
    }
    return &m->methods[m->n - 1];
}

void node_metrics_rpc(struct node_metrics *m, const char *method, int failed, double seconds)
{
    struct method_series *s = series(m, method);
    atomic_fetch_add_explicit(&s->requests, 1, memory_order_relaxed);
    if (failed)
        atomic_fetch_add_explicit(&s->errors, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->rpc_total, 1, memory_order_relaxed);
    prom_histogram_observe(&s->seconds, seconds);
}

void node_metrics_bytes(struct node_metrics *m, uint64_t received, uint64_t sent)
{
    atomic_fetch_add_explicit(&m->bytes_received, received, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->bytes_sent, sent, memory_order_relaxed);
}

void node_metrics_rate_limited(struct node_metrics *m, enum node_rl_layer layer)
{
    atomic_fetch_add_explicit(&m->rate_limited[layer], 1, memory_order_relaxed);
}

void node_metrics_http(struct node_metrics *m, int status)
{
    int cls = status / 100;
    if (cls >= 1 && cls <= 5)
        atomic_fetch_add_explicit(&m->http[cls], 1, memory_order_relaxed);
}

uint64_t node_metrics_rpc_total(const struct node_metrics *m)
{
    return atomic_load(&((struct node_metrics *)m)->rpc_total);
}

#define FAM(name, type, help) (rc |= prom_family(p, name, type, help))
#define SAMPLE(name, labels, v) (rc |= prom_sample(p, name, labels, (double)(v)))

/* Disk monitor and pruning families. 0, or -1 out of memory. */
static int render_storage(prom_t *p, struct node *n, int chain_open)
{
    struct node_disk_stats ds = {0};
    struct node_prune_limits l;
    struct node_chain_stats *cs = chain_open ? node_chain_stats(n->chain) : NULL;
    int rc = 0;

    if (n->disk)
        node_disk_stats_get(n->disk, &ds);
    node_prune_limits_of(n->cfg, &l);
    FAM("ccnode_storage_bytes", PROM_GAUGE,
        "The node's own storage: block files, headers index, chainstate.");
    SAMPLE("ccnode_storage_bytes", NULL, chain_open ? node_chain_size_bytes(n->chain) : 0);
    FAM("ccnode_disk_free_bytes", PROM_GAUGE, "Bytes available on the data dir's file system.");
    SAMPLE("ccnode_disk_free_bytes", NULL, ds.free_bytes);
    FAM("ccnode_disk_total_bytes", PROM_GAUGE, "Size of the data dir's file system.");
    SAMPLE("ccnode_disk_total_bytes", NULL, ds.total_bytes);
    FAM("ccnode_disk_checks_total", PROM_COUNTER, "Disk monitor rounds.");
    SAMPLE("ccnode_disk_checks_total", NULL, ds.checks);
    FAM("ccnode_pruning_enabled", PROM_GAUGE, "1 unless storage.pruning_mode is disabled.");
    SAMPLE("ccnode_pruning_enabled", NULL, l.enabled);
    FAM("ccnode_prune_threshold_bytes", PROM_GAUGE, "Own storage above which pruning starts.");
    SAMPLE("ccnode_prune_threshold_bytes", NULL, l.enabled ? l.threshold : 0);
    FAM("ccnode_prune_target_bytes", PROM_GAUGE, "Own storage pruning brings it down to.");
    SAMPLE("ccnode_prune_target_bytes", NULL, l.enabled ? l.target : 0);
    FAM("ccnode_pruned_height", PROM_GAUGE,
        "First block height whose data is stored (getblockchaininfo pruneheight); 0 when "
        "nothing is pruned.");
    SAMPLE("ccnode_pruned_height", NULL, chain_open ? node_chain_prune_height(n->chain) : 0);
    FAM("ccnode_prune_runs_total", PROM_COUNTER, "Prunes that deleted block files.");
    SAMPLE("ccnode_prune_runs_total", NULL, cs ? atomic_load(&cs->prune_runs) : 0);
    FAM("ccnode_pruned_blocks_total", PROM_COUNTER, "Block files deleted by pruning.");
    SAMPLE("ccnode_pruned_blocks_total", NULL, cs ? atomic_load(&cs->pruned_blocks) : 0);
    FAM("ccnode_pruned_bytes_total", PROM_COUNTER, "Bytes freed by pruning.");
    SAMPLE("ccnode_pruned_bytes_total", NULL, cs ? atomic_load(&cs->pruned_bytes) : 0);
    FAM("ccnode_prune_failures_total", PROM_COUNTER,
        "Automatic prunes that failed (the prune height could not be written).");
    SAMPLE("ccnode_prune_failures_total", NULL, ds.prune_failures);
    return rc;
}

char *node_metrics_render(struct node *n, size_t *len)
{
    struct node_metrics *m = n->metrics;
    prom_t *p = prom_new();
    const char *text;
    char *out = NULL;
    size_t count = 0, bytes = 0;
    int rc = 0;
    int chain_open = node_chain_ready(n);
    static const char *const layers[NODE_RL_LAYERS] = {"ip", "user", "method"};
    static const char *const classes[6] = {"", "1xx", "2xx", "3xx", "4xx", "5xx"};

    if (!p)
        return NULL;
    FAM("ccnode_info", PROM_GAUGE, "Build and flavour of this node (always 1).");
    {
        const char *l[] = {"version", NODE_VERSION,
                           "flavour", n->cfg->node.flavour == NODE_FLAVOUR_EVM ? "evm" : "bitcoin",
                           "name",    n->cfg->node.name,
                           NULL};
        SAMPLE("ccnode_info", l, 1);
    }
    FAM("ccnode_start_time_seconds", PROM_GAUGE, "Start time of the process since the epoch.");
    SAMPLE("ccnode_start_time_seconds", NULL, n->start_time);
    FAM("ccnode_ready", PROM_GAUGE, "1 when the node serves RPC (chain loaded, warm-up over).");
    SAMPLE("ccnode_ready", NULL, atomic_load(&n->phase) == NODE_PHASE_READY);

    FAM("ccnode_blocks_processed_total", PROM_COUNTER, "Blocks validated and connected.");
    SAMPLE("ccnode_blocks_processed_total", NULL,
           chain_open ? atomic_load(&node_chain_stats(n->chain)->blocks_processed) : 0);
    FAM("ccnode_block_validation_seconds", PROM_HISTOGRAM,
        "Time to validate and connect one block.");
    if (chain_open) {
        rc |= prom_histogram_write(p, "ccnode_block_validation_seconds", NULL,
                                   &node_chain_stats(n->chain)->validation_seconds);
    } else {
        struct prom_histogram empty;
        prom_histogram_init(&empty, PROM_LATENCY_BOUNDS, PROM_LATENCY_NBOUNDS);
        rc |= prom_histogram_write(p, "ccnode_block_validation_seconds", NULL, &empty);
    }
    FAM("ccnode_chain_height", PROM_GAUGE, "Height of the best block.");
    SAMPLE("ccnode_chain_height", NULL, chain_open ? node_chain_height(n->chain) : -1);

    rc |= node_peermgr_metrics(n->peers, p);
    FAM("ccnode_peers_max", PROM_GAUGE, "Configured maximum number of peers.");
    SAMPLE("ccnode_peers_max", NULL, n->cfg->network.max_peers);
    FAM("ccnode_network_received_bytes_total", PROM_COUNTER,
        "Bytes received (RPC request bodies; peer traffic once peers exist).");
    SAMPLE("ccnode_network_received_bytes_total", NULL, atomic_load(&m->bytes_received));
    FAM("ccnode_network_sent_bytes_total", PROM_COUNTER,
        "Bytes sent (RPC response bodies; peer traffic once peers exist).");
    SAMPLE("ccnode_network_sent_bytes_total", NULL, atomic_load(&m->bytes_sent));

    FAM("ccnode_database_size_bytes", PROM_GAUGE,
        "Bytes of block files, headers index and chainstate (as ccnode_storage_bytes).");
    SAMPLE("ccnode_database_size_bytes", NULL, chain_open ? node_chain_size_bytes(n->chain) : 0);
    FAM("ccnode_utxos", PROM_GAUGE, "Unspent transaction outputs in the UTXO set.");
    SAMPLE("ccnode_utxos", NULL, chain_open ? node_chain_utxo_count(n->chain) : 0);
    FAM("ccnode_storage_available", PROM_GAUGE, "1 when the data dir accepts durable writes.");
    SAMPLE("ccnode_storage_available", NULL, chain_open && node_chain_storage_ok(n->chain));
    rc |= render_storage(p, n, chain_open);

    node_mempool_stats(n->mempool, &count, &bytes);
    FAM("ccnode_mempool_transactions", PROM_GAUGE, "Transactions in the mempool.");
    SAMPLE("ccnode_mempool_transactions", NULL, count);
    FAM("ccnode_mempool_size_bytes", PROM_GAUGE, "Serialized bytes of mempool transactions.");
    SAMPLE("ccnode_mempool_size_bytes", NULL, bytes);
    FAM("ccnode_mempool_max_bytes", PROM_GAUGE, "Mempool capacity.");
    SAMPLE("ccnode_mempool_max_bytes", NULL, node_mempool_max_bytes(n->mempool));

    FAM("ccnode_rpc_requests_total", PROM_COUNTER, "RPC calls processed, by method.");
    for (size_t i = 0; i < m->n; i++) {
        const char *l[] = {"method", m->methods[i].name, NULL};
        SAMPLE("ccnode_rpc_requests_total", l, atomic_load(&m->methods[i].requests));
    }
    FAM("ccnode_rpc_errors_total", PROM_COUNTER, "RPC calls answered with an error, by method.");
    for (size_t i = 0; i < m->n; i++) {
        const char *l[] = {"method", m->methods[i].name, NULL};
        SAMPLE("ccnode_rpc_errors_total", l, atomic_load(&m->methods[i].errors));
    }
    FAM("ccnode_rpc_request_duration_seconds", PROM_HISTOGRAM,
        "Time to execute one RPC call, by method.");
    for (size_t i = 0; i < m->n; i++) {
        const char *l[] = {"method", m->methods[i].name, NULL};
        rc |= prom_histogram_write(p, "ccnode_rpc_request_duration_seconds", l,
                                   &m->methods[i].seconds);
    }
    FAM("ccnode_rate_limited_requests_total", PROM_COUNTER,
        "RPC requests refused with 429, by the limiting layer.");
    for (int i = 0; i < NODE_RL_LAYERS; i++) {
        const char *l[] = {"layer", layers[i], NULL};
        SAMPLE("ccnode_rate_limited_requests_total", l, atomic_load(&m->rate_limited[i]));
    }
    FAM("ccnode_http_responses_total", PROM_COUNTER, "HTTP responses, by status class.");
    for (int i = 1; i <= 5; i++) {
        const char *l[] = {"code", classes[i], NULL};
        SAMPLE("ccnode_http_responses_total", l, atomic_load(&m->http[i]));
    }
    text = rc == 0 ? prom_text(p, len) : NULL;
    if (text) {
        out = malloc(*len + 1);
        if (out) {
            memcpy(out, text, *len);
            out[*len] = '\0';
        }
    }
    prom_free(p);
    return out;
}
