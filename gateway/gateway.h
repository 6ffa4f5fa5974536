/* The running state of one cc-gateway worker or replay (one HAProxy
 * source), shared by its modules: gateway.c opens and closes it, worker.c
 * feeds it, metrics.c reads it, and the delivery module drains its counter.
 *
 * Locking: `lock` guards `counter`, `ingest`, `cursor`, `reconcile` and
 * `routegap` (the worker holds it for one batch of lines at a time;
 * delivery holds it to take deltas with the cursor; metrics to read).
 * Everything else is immutable after start, atomic, or has its own lock. */
#ifndef CCGW_GATEWAY_H
#define CCGW_GATEWAY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "ccgwconf.h"
#include "counter.h"
#include "delivery.h"
#include "events.h"
#include "ingest.h"
#include "journal.h"
#include "reconcile.h"
#include "relay.h"
#include "routegap.h"
#include "statsock.h"

struct httpd;

struct gateway {
    const struct ccgwconf *conf;
    const struct ccgwconf_tier *tier;
    const char *source; /* tier name */
    pthread_mutex_t lock;
    counter_t *counter;
    relay_table_t *table;
    struct ingest ingest;
    reconcile_t *reconcile; /* counting tiers; NULL otherwise */
    routegap_t *routegap;   /* counting tiers; NULL otherwise */
    /* Where counting stands, as the journal keeps it (worker.c's format:
     * "<segment>:<offset>" then the reconciliation counts). */
    char cursor[JOURNAL_CURSOR_MAX + 1];
    events_t *events;
    statsock_t *statsock; /* NULL without a stats socket */
    struct httpd *httpd;  /* /metrics and /health */
    /* Delivery (journal, Redis, PostgreSQL); NULL when not wired. metrics.c
     * reads it through the function pointer so that the gateway modules do
     * not need the delivery objects to link (unit tests, replay). */
    delivery_t *delivery;
    void (*delivery_stats_fn)(delivery_t *d, struct delivery_stats *out);
    char segments_dir[4096]; /* <logs.dir>/<source> */
    atomic_int source_up;    /* the worker follows the request log */
    /* Request-log bytes written by the supervisor, not yet counted; the
     * segments' total size; times retention had to keep segments over the
     * limit because they were not counted yet. */
    atomic_llong lag_bytes, segments_bytes, retention_blocked_total;
    atomic_llong worker_restarts;  /* earlier workers under this supervisor */
    atomic_llong caught_up_ms;     /* last time the worker was at the end */
    atomic_llong segments_skipped; /* uncounted segments found deleted */
    atomic_llong segments_deleted; /* segments deleted while written (counted) */
    /* The supervisor's word on the request log (segment_status): 1 while
     * it cannot write HAProxy's lines (not ready); its blocked episodes;
     * when the current one began (epoch ms, 0 when none). */
    atomic_int request_log_blocked;
    atomic_llong request_log_blocked_total, request_log_blocked_since_ms;
    int64_t started_ms;
};

struct gateway_open_options {
    const char *source;
    const char *listen; /* /metrics address, NULL: the tier's, "none": off */
    int live;           /* worker: events file, metrics, stats socket too */
};

/* Everything but delivery and the input. 0 or -1 (logged). */
int gateway_open(struct gateway *gw, const struct ccgwconf *conf,
                 const struct gateway_open_options *o);
void gateway_close(struct gateway *gw);

/* Journal, Redis and PostgreSQL for the counter (the journal recovers
 * gw->cursor, calls before_durable with each cursor before it makes it
 * durable and on_durable after; both may be NULL); notices go to
 * gateway_events through it. 0 or -1 (logged). */
int gateway_delivery_begin(struct gateway *gw,
                           void (*before_durable)(void *ctx, const char *cursor),
                           void (*on_durable)(void *ctx, const char *cursor), void *ctx);
/* Stop delivery: last journal append, last flush. 0, or -1 when something
 * stays in the journal for the next start. */
int gateway_delivery_end(struct gateway *gw);

#endif
