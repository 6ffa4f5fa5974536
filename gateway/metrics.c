/* /metrics and /health of cc-gateway; see metrics.h. */
#include "metrics.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "prom.h"
#include "sys.h"

#define RECONCILE_MAX 64

/* A consistent copy of everything the pages show, taken under the locks
 * once, so that rendering holds no lock. */
struct snapshot {
    struct ingest_stats ingest;
    size_t pending[COUNTER_NCONSUMERS];
    size_t keys;
    struct events_stats events;
    struct statsock_stats statsock;
    int has_statsock, has_delivery, source_up, log_blocked;
    int64_t log_blocked_total, log_blocked_since_ms;
    int64_t lag, segments_bytes, retention_blocked, segments_skipped, segments_deleted, restarts,
        caught_up_ms;
    struct delivery_stats delivery;
    struct reconcile_backend rec[RECONCILE_MAX];
    size_t nrec;
    int64_t rec_checks, rec_last_ms;
    int has_routegap;
    struct routegap_stats routegap;
};

static void take_snapshot(struct gateway *gw, struct snapshot *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_lock(&gw->lock);
    s->ingest = gw->ingest.stats;
    for (int w = 0; w < COUNTER_NCONSUMERS; w++)
        s->pending[w] = counter_pending_keys(gw->counter, w);
    s->keys = counter_keys(gw->counter);
    if (gw->reconcile) {
        s->nrec = reconcile_nbackends(gw->reconcile);
        if (s->nrec > RECONCILE_MAX)
            s->nrec = RECONCILE_MAX;
        for (size_t i = 0; i < s->nrec; i++)
            reconcile_backend(gw->reconcile, i, &s->rec[i]);
        s->rec_checks = reconcile_checks(gw->reconcile);
        s->rec_last_ms = reconcile_last_check_ms(gw->reconcile);
    }
    if (gw->routegap) {
        s->has_routegap = 1;
        routegap_stats(gw->routegap, &s->routegap);
    }
    pthread_mutex_unlock(&gw->lock);
    if (gw->events)
        events_get_stats(gw->events, &s->events);
    if (gw->statsock) {
        s->has_statsock = 1;
        statsock_get_stats(gw->statsock, &s->statsock);
    }
    if (gw->delivery && gw->delivery_stats_fn) {
        s->has_delivery = 1;
        gw->delivery_stats_fn(gw->delivery, &s->delivery);
    }
    s->source_up = atomic_load(&gw->source_up);
    s->log_blocked = atomic_load(&gw->request_log_blocked);
    s->log_blocked_total = atomic_load(&gw->request_log_blocked_total);
    s->log_blocked_since_ms = atomic_load(&gw->request_log_blocked_since_ms);
    s->lag = atomic_load(&gw->lag_bytes);
    s->segments_bytes = atomic_load(&gw->segments_bytes);
    s->retention_blocked = atomic_load(&gw->retention_blocked_total);
    s->segments_skipped = atomic_load(&gw->segments_skipped);
    s->segments_deleted = atomic_load(&gw->segments_deleted);
    s->restarts = atomic_load(&gw->worker_restarts);
    s->caught_up_ms = atomic_load(&gw->caught_up_ms);
}

static int ready(const struct snapshot *s)
{
    return s->source_up && !s->log_blocked && (!s->has_statsock || s->statsock.last_ok);
}

/* One family with a single sample labelled gateway/source (+ one pair). */
static int one(prom_t *p, const char *const *base, const char *name, enum prom_type type,
               const char *help, double v)
{
    if (prom_family(p, name, type, help) < 0)
        return -1;
    return prom_sample(p, name, base, v);
}

static const char *const consumer_names[COUNTER_NCONSUMERS] = {"postgres", "journal", "redis"};

char *metrics_render(struct gateway *gw, size_t *len)
{
    struct snapshot s;
    const char *gname = gw->conf->gateway_name, *src = gw->source;
    const char *const base[] = {"gateway", gname, "source", src, NULL};
    char *out = NULL;
    int rc = 0;
    prom_t *p = prom_new();

    if (!p)
        return NULL;
    take_snapshot(gw, &s);
    rc |= one(p, base, "ccgw_gateway_lines_read_total", PROM_COUNTER, "Lines read from HAProxy.",
              (double)s.ingest.lines);
    rc |= one(p, base, "ccgw_gateway_bytes_read_total", PROM_COUNTER, "Bytes read from HAProxy.",
              (double)s.ingest.bytes);
    rc |= prom_family(p, "ccgw_gateway_lines_total", PROM_COUNTER, "Lines read, by kind.");
    for (int k = 0; k < LOGLINE_NKINDS; k++) {
        const char *const l[] = {"gateway", gname, "source", src, "kind", logline_kind_name(k),
                                 NULL};
        rc |= prom_sample(p, "ccgw_gateway_lines_total", l, (double)s.ingest.by_kind[k]);
    }
    rc |= one(p, base, "ccgw_gateway_unparsable_lines_total", PROM_COUNTER,
              "Lines that could not be parsed (too long ones included).",
              (double)s.ingest.by_kind[LOGLINE_UNPARSABLE]);
    rc |= one(p, base, "ccgw_gateway_too_long_lines_total", PROM_COUNTER,
              "Lines over the maximum length, skipped.", (double)s.ingest.too_long);
    rc |= one(p, base, "ccgw_gateway_truncated_lines_total", PROM_COUNTER,
              "Request lines cut by HAProxy's log size limit (still judged).",
              (double)s.ingest.truncated);
    rc |= one(p, base, "ccgw_gateway_relays_total", PROM_COUNTER, "Relays counted.",
              (double)s.ingest.relays);
    rc |= prom_family(p, "ccgw_gateway_non_relays_total", PROM_COUNTER,
                      "Requests that are not relays, by reason.");
    for (int r = 0; r < NR_COUNT; r++) {
        const char *const l[] = {"gateway", gname, "source", src, "reason", counter_reason_name(r),
                                 NULL};
        rc |= prom_sample(p, "ccgw_gateway_non_relays_total", l, (double)s.ingest.non_relays[r]);
    }
    rc |= one(p, base, "ccgw_gateway_count_errors_total", PROM_COUNTER,
              "Counter updates lost to out-of-memory.", (double)s.ingest.count_errors);
    rc |= prom_family(p, "ccgw_gateway_pending_buckets", PROM_GAUGE,
                      "Counter keys with deltas not yet delivered, by consumer.");
    for (int w = 0; w < COUNTER_NCONSUMERS; w++) {
        const char *const l[] = {"gateway",         gname, "source", src, "consumer",
                                 consumer_names[w], NULL};
        rc |= prom_sample(p, "ccgw_gateway_pending_buckets", l, (double)s.pending[w]);
    }
    rc |= one(p, base, "ccgw_gateway_keys", PROM_GAUGE, "Counter keys held in memory.",
              (double)s.keys);
    rc |= one(p, base, "ccgw_gateway_haproxy_dropped_logs_total", PROM_COUNTER,
              "Log lines HAProxy could not write and dropped (show info DroppedLogs).",
              (double)s.statsock.dropped_total);
    rc |= one(p, base, "ccgw_gateway_stats_socket_up", PROM_GAUGE,
              "1 when the last stats socket poll succeeded (1 without a stats socket).",
              s.has_statsock ? s.statsock.last_ok : 1);
    rc |= one(p, base, "ccgw_gateway_source_up", PROM_GAUGE,
              "1 while the worker follows the request log.", s.source_up);
    rc |= one(p, base, "ccgw_gateway_worker_restarts_total", PROM_COUNTER,
              "Workers that ended and were restarted by the supervisor.", (double)s.restarts);
    rc |= one(p, base, "ccgw_gateway_request_log_lag_bytes", PROM_GAUGE,
              "Request-log bytes written by the supervisor and not counted yet.", (double)s.lag);
    rc |= one(p, base, "ccgw_gateway_request_log_bytes", PROM_GAUGE,
              "Bytes in the request-log segments.", (double)s.segments_bytes);
    rc |= one(p, base, "ccgw_gateway_request_log_retention_blocked_total", PROM_COUNTER,
              "Times retention kept segments over the limit because they were not counted yet.",
              (double)s.retention_blocked);
    rc |= one(p, base, "ccgw_gateway_request_log_blocked", PROM_GAUGE,
              "1 while the supervisor cannot write HAProxy's lines into the request log (disk "
              "full, I/O errors): they wait in the pipe, HAProxy drops what does not fit "
              "(ccgw_gateway_haproxy_dropped_logs_total), and the tier is not ready.",
              s.log_blocked);
    rc |= one(p, base, "ccgw_gateway_request_log_blocked_total", PROM_COUNTER,
              "Times the request log became unwritable since the supervisor started.",
              (double)s.log_blocked_total);
    rc |= one(p, base, "ccgw_gateway_request_log_blocked_seconds", PROM_GAUGE,
              "How long the request log has been unwritable (0 while it is written).",
              s.log_blocked && s.log_blocked_since_ms > 0
                  ? (double)(sys_wall_ms() - s.log_blocked_since_ms) / 1000.0
                  : 0);
    rc |= one(p, base, "ccgw_gateway_request_log_segments_lost_total", PROM_COUNTER,
              "Request-log segments found deleted before they were counted.",
              (double)s.segments_skipped);
    rc |= one(p, base, "ccgw_gateway_request_log_segments_deleted_total", PROM_COUNTER,
              "Request-log segments deleted while still written: counted, but gone from the kept "
              "log.",
              (double)s.segments_deleted);
    struct journal_distrust jd;
    journal_distrust_stats(&jd);
    rc |= one(p, base, "ccgw_gateway_journal_distrusted_records_total", PROM_COUNTER,
              "Journal records that failed their check at this worker's start: replay stopped "
              "there and the request log was recounted from the last good position.",
              (double)jd.records);
    rc |= one(p, base, "ccgw_gateway_journal_discarded_records_total", PROM_COUNTER,
              "Journal records not applied because a record before them failed its check.",
              (double)jd.discarded);
    rc |= one(p, base, "ccgw_gateway_caught_up_timestamp_seconds", PROM_GAUGE,
              "Last time the worker had counted everything written.",
              (double)s.caught_up_ms / 1000.0);
    if (s.nrec > 0) {
        rc |= prom_family(p, "ccgw_gateway_reconcile_gap_relays", PROM_GAUGE,
                          "Requests HAProxy answered in be_<chain> (2xx-4xx, show stat) that no "
                          "log line shows, at the last check of this HAProxy process.");
        for (size_t i = 0; i < s.nrec; i++) {
            const char *const l[] = {"gateway", gname,          "source", src,
                                     "chain",   s.rec[i].chain, NULL};
            rc |= prom_sample(p, "ccgw_gateway_reconcile_gap_relays", l, (double)s.rec[i].gap);
        }
        rc |= prom_family(p, "ccgw_gateway_reconcile_answered", PROM_GAUGE,
                          "Answered requests (2xx-4xx) of be_<chain> counted from the log, this "
                          "HAProxy process.");
        for (size_t i = 0; i < s.nrec; i++) {
            const char *const l[] = {"gateway", gname,          "source", src,
                                     "chain",   s.rec[i].chain, NULL};
            rc |= prom_sample(p, "ccgw_gateway_reconcile_answered", l, (double)s.rec[i].ours);
        }
        rc |= one(p, base, "ccgw_gateway_reconcile_checks_total", PROM_COUNTER,
                  "Samples of HAProxy's counters judged.", (double)s.rec_checks);
        rc |= one(p, base, "ccgw_gateway_reconcile_last_check_timestamp_seconds", PROM_GAUGE,
                  "Time of the last judged sample (0: none).", (double)s.rec_last_ms / 1000.0);
    }
    if (s.has_routegap) {
        const struct routegap_stats *g = &s.routegap;
        rc |= one(p, base, "ccgw_gateway_reconcile_account_gap_relays", PROM_GAUGE,
                  "Relays HAProxy answered per account (st_routes gpc0) that were not billed to "
                  "that account, summed over accounts, at the last check.",
                  (double)g->gap);
        rc |= one(p, base, "ccgw_gateway_reconcile_account_excess_relays", PROM_GAUGE,
                  "Relays billed to an account beyond what HAProxy answered for it, summed over "
                  "accounts, at the last check.",
                  (double)g->excess);
        rc |= one(p, base, "ccgw_gateway_reconcile_accounts_with_gap", PROM_GAUGE,
                  "Accounts whose billed relays differ from HAProxy's count at the last check.",
                  (double)(g->routes_gap + g->routes_excess));
        rc |= one(p, base, "ccgw_gateway_reconcile_account_checks_total", PROM_COUNTER,
                  "Samples of HAProxy's per-account table judged.", (double)g->checks);
        rc |= one(p, base, "ccgw_gateway_reconcile_account_restarts_total", PROM_COUNTER,
                  "Per-account comparisons started over because no sample of HAProxy's table "
                  "came for too long (no st_routes table, or no stats socket).",
                  (double)g->restarts);
        rc |= one(p, base, "ccgw_gateway_reconcile_account_last_check_timestamp_seconds",
                  PROM_GAUGE, "Time of the last judged per-account sample (0: none).",
                  (double)g->last_check_ms / 1000.0);
    }
    rc |= one(p, base, "ccgw_gateway_events_total", PROM_COUNTER,
              "Notice, warning and alert lines.", (double)s.events.added);
    rc |= one(p, base, "ccgw_gateway_events_dropped_total", PROM_COUNTER,
              "Events dropped from the PostgreSQL queue.", (double)s.events.dropped);
    rc |= one(p, base, "ccgw_gateway_last_flush_timestamp_seconds", PROM_GAUGE,
              "Time of the last committed PostgreSQL flush (0: none).",
              (double)s.delivery.last_flush_ms / 1000.0);
    rc |= one(p, base, "ccgw_gateway_last_flush_success", PROM_GAUGE,
              "1 when the last flush attempt succeeded.",
              s.has_delivery ? s.delivery.last_flush_ok : 0);
    if (s.has_delivery) {
        rc |= one(p, base, "ccgw_gateway_postgres_up", PROM_GAUGE,
                  "1 when the last PostgreSQL operation succeeded.", s.delivery.pg_up);
        rc |= one(p, base, "ccgw_gateway_postgres_no_primary", PROM_GAUGE,
                  "1 while PostgreSQL answers but no node is a writable primary (a failover): "
                  "counts wait in the journal, flushes retry.",
                  s.delivery.pg_no_primary);
        rc |= one(p, base, "ccgw_gateway_redis_up", PROM_GAUGE,
                  "1 when the last Redis publish succeeded.", s.delivery.redis_up);
        rc |= one(p, base, "ccgw_gateway_flush_failures_total", PROM_COUNTER,
                  "Failed flush attempts.", (double)s.delivery.flush_failures);
        rc |= one(p, base, "ccgw_gateway_fold_failures_total", PROM_COUNTER,
                  "Failed folds of committed flushes into relay_counts (the deltas wait in "
                  "relay_deltas for the next fold; totals stay exact).",
                  (double)s.delivery.fold_failures);
        rc |= one(p, base, "ccgw_gateway_folds_total", PROM_COUNTER,
                  "Folds of committed flushes into relay_counts.", (double)s.delivery.folds_ok);
        rc |= one(p, base, "ccgw_gateway_flush_pending_rows", PROM_GAUGE,
                  "Counter rows not committed to PostgreSQL yet (recovered ones included).",
                  (double)s.delivery.pending_rows);
        rc |= one(p, base, "ccgw_gateway_flush_requests_total", PROM_COUNTER,
                  "Flushes asked for (SIGUSR1).", (double)s.delivery.flush_requests);
        rc |= one(p, base, "ccgw_gateway_flush_requests_done_total", PROM_COUNTER,
                  "Flushes asked for that committed everything pending.",
                  (double)s.delivery.flush_requests_done);
    }
    size_t n;
    const char *text = prom_text(p, &n);
    if (rc == 0 && text && (out = malloc(n + 1))) {
        memcpy(out, text, n + 1);
        *len = n;
    }
    prom_free(p);
    return out;
}

/* "up", "no_primary" (a failover: counts are journaled, flushes retry),
 * "down", or "none" without PostgreSQL. */
static const char *postgres_state(const struct snapshot *s)
{
    if (!s->has_delivery)
        return "none";
    return s->delivery.pg_up ? "up" : s->delivery.pg_no_primary ? "no_primary" : "down";
}

static int health_json(struct gateway *gw, struct httpd_response *resp)
{
    struct snapshot s;
    take_snapshot(gw, &s);
    int ok = ready(&s);
    json_t *j = json_pack("{s:s, s:s, s:s, s:b, s:b, s:I, s:I, s:I, s:I, s:s, s:I, s:I}", "status",
                          ok ? "ok" : "not ready", "gateway", gw->conf->gateway_name, "source",
                          gw->source, "source_up", s.source_up, "stats_socket_ok",
                          !s.has_statsock || s.statsock.last_ok, "lines",
                          (json_int_t)s.ingest.lines, "relays", (json_int_t)s.ingest.relays,
                          "haproxy_dropped_logs", (json_int_t)s.statsock.dropped_total, "uptime_ms",
                          (json_int_t)(sys_wall_ms() - gw->started_ms), "postgres",
                          postgres_state(&s), "pending_rows", (json_int_t)s.delivery.pending_rows,
                          "worker_restarts", (json_int_t)s.restarts);
    if (j)
        json_object_set_new(j, "request_log_blocked", json_boolean(s.log_blocked));
    if (!j)
        return -1;
    int rc = httpd_reply_json(resp, ok ? 200 : 503, j);
    json_decref(j);
    return rc;
}

/* Ready means HAProxy serves and its log is counted; PostgreSQL being down
 * or failing over does not change that (counts are journaled), but the
 * answer says so. */
static int health_ready(struct gateway *gw, struct httpd_response *resp)
{
    struct snapshot s;
    char body[160];
    take_snapshot(gw, &s);
    if (s.log_blocked) {
        int n = snprintf(body, sizeof(body),
                         "not ready (request log blocked: HAProxy's lines are not kept, "
                         "see ccgw_gateway_haproxy_dropped_logs_total)\n");
        return httpd_reply(resp, 503, NULL, body, (size_t)n);
    }
    if (!ready(&s))
        return httpd_reply(resp, 503, NULL, "not ready\n", 10);
    const char *pg = postgres_state(&s);
    int n;
    if (strcmp(pg, "no_primary") == 0)
        n = snprintf(body, sizeof(body),
                     "ready (postgres: no writable primary, counts journaled, flush retrying)\n");
    else if (strcmp(pg, "down") == 0)
        n = snprintf(body, sizeof(body),
                     "ready (postgres: down, counts journaled, flush retrying)\n");
    else
        n = snprintf(body, sizeof(body), "ready\n");
    return httpd_reply(resp, 200, NULL, body, (size_t)n);
}

int metrics_handle(void *ctx, const struct httpd_request *req, struct httpd_response *resp)
{
    struct gateway *gw = ctx;
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0)
        return httpd_reply_error(resp, 405, "method not allowed");
    if (strcmp(req->path, "/metrics") == 0) {
        size_t len;
        char *page = metrics_render(gw, &len);
        if (!page)
            return -1;
        resp->status = 200;
        resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
        resp->body = page;
        resp->body_len = len;
        return 0;
    }
    if (strcmp(req->path, "/health") == 0)
        return health_json(gw, resp);
    if (strcmp(req->path, "/health/live") == 0)
        return httpd_reply(resp, 200, NULL, "ok\n", 3);
    if (strcmp(req->path, "/health/ready") == 0)
        return health_ready(gw, resp);
    return httpd_reply_error(resp, 404, "not found");
}

int metrics_start(struct gateway *gw, const char *listen, char *err, size_t errlen)
{
    struct httpd_options o = {.listen = listen, .max_body_bytes = 4096, .threads = 1};
    gw->httpd = httpd_start(&o, metrics_handle, gw, err, errlen);
    return gw->httpd ? 0 : -1;
}

void metrics_stop(struct gateway *gw)
{
    if (gw->httpd)
        httpd_stop(gw->httpd);
    gw->httpd = NULL;
}
