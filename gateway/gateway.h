/* The running state of one cc-gateway process (one HAProxy source), shared
 * by its modules: main.c wires it, source.c feeds it, metrics.c reads it,
 * and the delivery module drains its counter.
 *
 * Locking: `lock` guards `counter` and `ingest` (the ingest thread holds it
 * for one read buffer at a time; delivery holds it to take deltas; metrics
 * to read). Everything else is either immutable after start or has its own
 * lock. */
#ifndef CCGW_GATEWAY_H
#define CCGW_GATEWAY_H

#include <pthread.h>
#include <stdint.h>

#include "conf.h"
#include "counter.h"
#include "delivery.h"
#include "events.h"
#include "ingest.h"
#include "relay.h"
#include "reqlog.h"
#include "statsock.h"

struct httpd;

struct gateway {
    const struct conf *conf;
    const struct conf_tier *tier;
    const char *source; /* tier name */
    pthread_mutex_t lock;
    counter_t *counter;
    relay_table_t *table;
    struct ingest ingest;
    reqlog_t *reqlog;
    events_t *events;
    statsock_t *statsock; /* NULL without a stats socket */
    struct httpd *httpd;  /* /metrics and /health */
    /* Delivery (journal, Redis, PostgreSQL); NULL when not wired. metrics.c
     * reads it through the function pointer so that the gateway modules do
     * not need the delivery objects to link (unit tests, replay). */
    delivery_t *delivery;
    void (*delivery_stats_fn)(delivery_t *d, struct delivery_stats *out);
    int source_up; /* reading a live HAProxy output (atomic access) */
    /* HAProxy output read off the pipe but not yet ingested (source.c's
     * pump): bytes now, most ever, times the memory limit was hit. Atomic. */
    uint64_t backlog_bytes, backlog_high_water_bytes, backlog_full_total;
    int64_t started_ms;
};

/* Epoch milliseconds, wall clock. */
int64_t gateway_now_ms(void);

#endif
