/* The node's own counters (see metrics.h). */
#include "metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    _Atomic uint64_t rate_limited[NODE_RATELIMIT_LAYERS];
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

void node_metrics_rate_limited(struct node_metrics *m, enum node_ratelimit_layer layer)
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

int node_metrics_write_network(const struct node_metrics *cm, prom_t *p)
{
    struct node_metrics *m = (struct node_metrics *)cm;
    int rc = 0;

    FAM("ccnode_network_received_bytes_total", PROM_COUNTER,
        "Bytes received (RPC request bodies; peer traffic once peers exist).");
    SAMPLE("ccnode_network_received_bytes_total", NULL, atomic_load(&m->bytes_received));
    FAM("ccnode_network_sent_bytes_total", PROM_COUNTER,
        "Bytes sent (RPC response bodies; peer traffic once peers exist).");
    SAMPLE("ccnode_network_sent_bytes_total", NULL, atomic_load(&m->bytes_sent));
    return rc ? -1 : 0;
}

int node_metrics_write_rpc(const struct node_metrics *cm, prom_t *p)
{
    struct node_metrics *m = (struct node_metrics *)cm;
    static const char *const layers[NODE_RATELIMIT_LAYERS] = {"ip", "user", "method"};
    static const char *const classes[6] = {"", "1xx", "2xx", "3xx", "4xx", "5xx"};
    int rc = 0;

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
    for (int i = 0; i < NODE_RATELIMIT_LAYERS; i++) {
        const char *l[] = {"layer", layers[i], NULL};
        SAMPLE("ccnode_rate_limited_requests_total", l, atomic_load(&m->rate_limited[i]));
    }
    FAM("ccnode_http_responses_total", PROM_COUNTER, "HTTP responses, by status class.");
    for (int i = 1; i <= 5; i++) {
        const char *l[] = {"code", classes[i], NULL};
        SAMPLE("ccnode_http_responses_total", l, atomic_load(&m->http[i]));
    }
    return rc ? -1 : 0;
}
