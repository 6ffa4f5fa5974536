/* Opening and closing a gateway's running state; see gateway.h. */
#include "gateway.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "sys.h"

#define EVENTS_QUEUE_MAX 10000
#define STATSOCK_INTERVAL_MS 1000
/* The per-route table every 5 s: its dump grows with the accounts served. */
#define STATSOCK_TABLE_EVERY 5
#define DELIVERY_STOP_TIMEOUT_MS 20000

static void on_request(void *ctx, const struct logline *l)
{
    struct gateway *gw = ctx;
    reconcile_line(gw->reconcile, gw->ingest.haproxy_pid, l);
}

static void on_relay(void *ctx, const struct logline *l, const struct relay_route *r)
{
    struct gateway *gw = ctx;
    if (routegap_relay(gw->routegap, gw->ingest.haproxy_pid, r->chain, r->account, l->status,
                       logline_response_ms(l)) < 0)
        LOG_EVENT(LOG_ERROR, "routegap_failed", NULL,
                  "out of memory: a relay is missing from the per-account reconciliation");
}

/* The stats poller's thread: HAProxy's count of relays per route, parsed
 * before the lock is taken (a big table is tens of MB). */
static void on_table(void *ctx, long pid, const char *text, size_t len, int64_t t0_ms,
                     int64_t t1_ms)
{
    struct gateway *gw = ctx;
    struct routegap_sample *s = routegap_sample_parse(pid, text, len, t0_ms, t1_ms);
    if (!s)
        return;
    pthread_mutex_lock(&gw->lock);
    routegap_add_sample(gw->routegap, gw->ingest.haproxy_pid, s);
    pthread_mutex_unlock(&gw->lock);
}

/* The stats poller's thread: a sample of HAProxy's counters. */
static void on_stat(void *ctx, long pid, const char *stat, size_t len, int64_t t_ms)
{
    struct gateway *gw = ctx;
    pthread_mutex_lock(&gw->lock);
    reconcile_sample(gw->reconcile, pid, stat, len, t_ms);
    pthread_mutex_unlock(&gw->lock);
}

void gateway_close(struct gateway *gw)
{
    statsock_stop(gw->statsock);
    gw->statsock = NULL;
    metrics_stop(gw);
    ingest_destroy(&gw->ingest);
    events_close(gw->events);
    reconcile_free(gw->reconcile);
    routegap_free(gw->routegap);
    counter_free(gw->counter);
    relay_table_free(gw->table);
    pthread_mutex_destroy(&gw->lock);
}

int gateway_open(struct gateway *gw, const struct ccgwconf *conf,
                 const struct gateway_open_options *o)
{
    char err[512], path[4096];

    memset(gw, 0, sizeof(*gw));
    pthread_mutex_init(&gw->lock, NULL);
    gw->conf = conf;
    gw->started_ms = sys_wall_ms();
    gw->tier = ccgwconf_tier_find(conf, o->source);
    if (!gw->tier) {
        snprintf(err, sizeof(err), "%s: no tier named \"%s\"", conf->path, o->source);
        goto fail;
    }
    gw->source = gw->tier->name;
    snprintf(gw->segments_dir, sizeof(gw->segments_dir), "%s/%s", conf->logs.dir, gw->source);
    gw->counter = counter_new();
    if (!gw->counter) {
        snprintf(err, sizeof(err), "out of memory");
        goto fail;
    }
    if (!(gw->table = relay_table_new(conf, err, sizeof(err))) ||
        ingest_init(&gw->ingest, conf->logs.tz_offset_secs, gw->table, gw->counter,
                    gw->tier->count_relays, err, sizeof(err)) < 0)
        goto fail;
    if (gw->tier->count_relays) {
        if (!(gw->reconcile = reconcile_new(conf)) ||
            !(gw->routegap = routegap_new(gw->started_ms))) {
            snprintf(err, sizeof(err), "out of memory");
            goto fail;
        }
        gw->ingest.on_request = on_request;
        gw->ingest.on_relay = on_relay;
        gw->ingest.on_request_ctx = gw;
    }
    if (!o->live)
        return 0;
    snprintf(path, sizeof(path), "%s/%s/events.log", conf->logs.dir, gw->source);
    if (!(gw->events = events_open(path, EVENTS_QUEUE_MAX, err, sizeof(err))))
        goto fail;
    gw->ingest.events = gw->events;
    const char *listen = o->listen ? o->listen : gw->tier->gateway_listen;
    if (listen && strcmp(listen, "none") != 0 && metrics_start(gw, listen, err, sizeof(err)) < 0)
        goto fail;
    struct statsock_options so = {.path = gw->tier->stats_socket,
                                  .interval_ms = STATSOCK_INTERVAL_MS,
                                  .stat_fn = gw->reconcile ? on_stat : NULL,
                                  .table = gw->routegap ? ROUTEGAP_TABLE : NULL,
                                  .table_every = STATSOCK_TABLE_EVERY,
                                  .table_fn = on_table,
                                  .ctx = gw};
    if (gw->tier->stats_socket && !(gw->statsock = statsock_start(&so, err, sizeof(err))))
        goto fail;
    return 0;
fail:
    LOG_EVENT(LOG_ERROR, "start_failed", NULL, err, LF_STR("source", o->source));
    gateway_close(gw);
    return -1;
}

static int event_to_delivery(void *ctx, int64_t ts_ms, int severity, const char *message)
{
    return delivery_event_push(ctx, ts_ms, severity, message);
}

int gateway_delivery_begin(struct gateway *gw,
                           void (*before_durable)(void *ctx, const char *cursor),
                           void (*on_durable)(void *ctx, const char *cursor), void *ctx)
{
    char err[512];
    struct delivery_options d = {.conf = gw->conf,
                                 .source = gw->source,
                                 .counter = gw->counter,
                                 .counter_lock = &gw->lock,
                                 .cursor = gw->cursor,
                                 .on_durable = on_durable,
                                 .before_durable = before_durable,
                                 .on_durable_ctx = ctx};
    gw->delivery = delivery_start(&d, err, sizeof(err));
    if (!gw->delivery) {
        LOG_EVENT(LOG_ERROR, "delivery_failed", NULL, err, LF_STR("source", gw->source));
        return -1;
    }
    gw->delivery_stats_fn = delivery_stats;
    if (gw->events)
        events_set_sink(gw->events, event_to_delivery, gw->delivery);
    return 0;
}

int gateway_delivery_end(struct gateway *gw)
{
    if (!gw->delivery)
        return 0;
    if (gw->events)
        events_set_sink(gw->events, NULL, NULL);
    int rc = delivery_stop(gw->delivery, DELIVERY_STOP_TIMEOUT_MS);
    gw->delivery = NULL;
    if (rc < 0)
        LOG_EVENT(LOG_WARN, "delivery_incomplete", NULL,
                  "some counts stay in the journal for the next start",
                  LF_STR("source", gw->source));
    return rc;
}
