/* The counting process; see worker.h. */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "follow.h"
#include "gateway.h"
#include "httpd.h"
#include "log.h"
#include "sigpipe.h"
#include "sys.h"

/* While caught up, the worker sleeps until the supervisor writes to a
 * segment (inotify; the supervisor writes in batches, so a wake-up is a
 * batch, never a line), and looks anyway this often. Without inotify it
 * looks every WORKER_TICK_MS. */
#define WORKER_IDLE_MS 1000
#define WORKER_TICK_MS 20
/* Once caught up after reading something, the worker lets the next batch
 * gather this long before it reads again (signals still wake it): at low
 * rates one read and one count per 100 ms instead of one per supervisor
 * batch, at most 100 ms more before Redis shows a relay (it must within 1 s),
 * and larger batches at full rate. The lines wait in the segment, which a
 * crash does not lose. */
#define WORKER_GATHER_MS 100
#define WORKER_BATCH (8u << 20)
#define WORKER_DRAIN_WAIT_MS 3000
#define WORKER_RETAIN_PERIOD_MS 1000

struct worker {
    struct gateway gw;
    struct follow follow;
    const struct worker_options *o;
    int64_t max_bytes;
    int64_t now_ms; /* of the batch being read */
    int64_t gap_logged[64];
    int64_t route_gap_logged, route_excess_logged; /* per-account gap last reported */
    int64_t synced_seg;               /* the journal thread's: last segment fdatasync'ed */
    char status_path[4096];           /* the supervisor's segment_status */
    struct segment_status log_status; /* as last reported */
    int64_t dropped_at_block;         /* DroppedLogs when it was reported blocked */
};

static void on_line(void *ctx, const char *line, size_t len, int too_long)
{
    struct worker *w = ctx;
    if (too_long)
        ingest_too_long(&w->gw.ingest, INGEST_STDOUT, w->now_ms);
    else
        ingest_line(&w->gw.ingest, line, len, INGEST_STDOUT, w->now_ms);
}

/* Under gw.lock: the cursor the journal keeps with the counts. */
static void update_cursor(struct worker *w)
{
    struct segment_pos p = follow_pos(&w->follow);
    char *c = w->gw.cursor;
    size_t cap = sizeof(w->gw.cursor);
    segment_pos_format(&p, c, cap);
    size_t n = strlen(c);
    if (w->gw.reconcile && n + 1 < cap) {
        c[n] = ':';
        if (reconcile_format(w->gw.reconcile, c + n + 1, cap - n - 1) < 0)
            c[n] = '\0';
    }
}

/* Segments fully counted and journaled may go when over the size limit. */
static void retain(struct worker *w, int64_t counted_seg)
{
    char err[256];
    int blocked = 0;
    int rc =
        segment_retain(w->gw.segments_dir, counted_seg, w->max_bytes, &blocked, err, sizeof(err));
    if (rc < 0)
        LOG_EVENT(LOG_WARN, "retention_failed", NULL, err, LF_STR("source", w->gw.source));
    if (blocked) {
        long long was = atomic_fetch_add(&w->gw.retention_blocked_total, 1);
        if (was == 0)
            LOG_EVENT(LOG_WARN, "retention_blocked", NULL,
                      "the request log is over its size limit, but its oldest segments are not "
                      "counted yet: they are kept until they are",
                      LF_STR("dir", w->gw.segments_dir), LF_INT("max_bytes", w->max_bytes));
    }
    int64_t lo, hi, total = 0;
    if (segment_range(w->gw.segments_dir, &lo, &hi, &total, err, sizeof(err)) == 0)
        atomic_store(&w->gw.segments_bytes, total);
}

/* The journal thread is about to make `cursor` durable: the request log up
 * to it must be on disk first, or a power loss could leave counts in the
 * journal for lines the kept log lost. */
static void before_durable(void *ctx, const char *cursor)
{
    struct worker *w = ctx;
    struct segment_pos p;
    char path[4096];
    if (segment_pos_parse(cursor, &p, NULL) < 0)
        return;
    /* every segment finished since the last time, and the current one */
    int64_t from = w->synced_seg > 0 && w->synced_seg <= p.seg ? w->synced_seg : p.seg;
    for (int64_t seg = from; seg <= p.seg; seg++) {
        if (segment_path(w->gw.segments_dir, seg, path, sizeof(path)) < 0)
            return;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (fdatasync(fd) < 0)
            LOG_EVENT(LOG_WARN, "segment_sync_failed", NULL, strerror(errno), LF_STR("path", path));
        close(fd);
    }
    w->synced_seg = p.seg;
}

/* The journal thread made `cursor` durable. */
static void on_durable(void *ctx, const char *cursor)
{
    struct segment_pos p;
    if (segment_pos_parse(cursor, &p, NULL) == 0)
        retain(ctx, p.seg);
}

/* A changed reconciliation gap is logged and becomes an event (the local
 * events file and gateway_events). */
static void report_gaps(struct worker *w)
{
    reconcile_t *r = w->gw.reconcile;
    size_t n = reconcile_nbackends(r);
    for (size_t i = 0; i < n && i < ARRAY_LEN(w->gap_logged); i++) {
        struct reconcile_backend b;
        reconcile_backend(r, i, &b);
        if (b.gap == w->gap_logged[i])
            continue;
        w->gap_logged[i] = b.gap;
        char msg[256];
        if (b.gap > 0)
            snprintf(msg, sizeof(msg),
                     "reconciliation: HAProxy answered %" PRId64 " requests of be_%s that its log "
                     "lines do not show (HAProxy %" PRId64 ", counted %" PRId64 ")",
                     b.gap, b.chain, b.haproxy, b.haproxy - b.gap);
        else
            snprintf(msg, sizeof(msg), "reconciliation: be_%s agrees with HAProxy again", b.chain);
        LOG_EVENT(b.gap > 0 ? LOG_WARN : LOG_INFO, "reconcile_gap", NULL, msg,
                  LF_STR("chain", b.chain), LF_INT("gap", b.gap), LF_INT("haproxy", b.haproxy),
                  LF_STR("source", w->gw.source));
        if (w->gw.events)
            events_add(w->gw.events, sys_wall_ms(), b.gap > 0 ? 4 : 6, msg, strlen(msg));
    }
}

/* Under gw.lock: a changed per-account gap is logged and becomes an
 * event, naming the accounts with the largest gaps. */
static void report_route_gaps(struct worker *w)
{
    struct routegap_stats st;
    struct routegap_route worst[5];
    char msg[1024];
    routegap_stats(w->gw.routegap, &st);
    /* an event when accounts start or stop disagreeing, or the gap doubles:
     * not one per sample while a gap of a few requests wobbles under load */
    int was_bad = w->route_gap_logged > 0 || w->route_excess_logged > 0;
    int grew = st.gap > 2 * w->route_gap_logged || st.excess > 2 * w->route_excess_logged;
    if ((st.gap > 0 || st.excess > 0) == was_bad && !grew)
        return;
    w->route_gap_logged = st.gap;
    w->route_excess_logged = st.excess;
    size_t n = routegap_worst(w->gw.routegap, worst, ARRAY_LEN(worst));
    int off = 0;
    if (st.gap == 0 && st.excess == 0)
        off = snprintf(msg, sizeof(msg),
                       "reconciliation per account: every account agrees with HAProxy again");
    else
        off = snprintf(msg, sizeof(msg),
                       "reconciliation per account: HAProxy answered %" PRId64
                       " relays of %zu accounts that were not billed to them, and %" PRId64
                       " relays of %zu accounts were billed that HAProxy did not answer there:",
                       st.gap, st.routes_gap, st.excess, st.routes_excess);
    for (size_t i = 0; i < n && off > 0 && (size_t)off < sizeof(msg); i++)
        off +=
            snprintf(msg + off, sizeof(msg) - (size_t)off, " %s %+" PRId64 " (HAProxy %" PRId64 ")",
                     worst[i].route, worst[i].gap, worst[i].haproxy);
    int bad = st.gap > 0 || st.excess > 0;
    LOG_EVENT(bad ? LOG_WARN : LOG_INFO, "reconcile_account_gap", NULL, msg, LF_INT("gap", st.gap),
              LF_INT("excess", st.excess), LF_INT("accounts_gap", (int64_t)st.routes_gap),
              LF_STR("source", w->gw.source));
    if (w->gw.events)
        events_add(w->gw.events, sys_wall_ms(), bad ? 4 : 6, msg, strlen(msg));
}

static int64_t dropped_logs(struct worker *w)
{
    struct statsock_stats st = {0};
    if (w->gw.statsock)
        statsock_get_stats(w->gw.statsock, &st);
    return st.dropped_total;
}

/* The supervisor's word on the request log: while it cannot be written,
 * the tier is not ready (metrics.c) and says so as an event; when it is
 * written again, the event tells what HAProxy dropped meanwhile. */
static void check_request_log(struct worker *w)
{
    struct segment_status st;
    struct segment_status *was = &w->log_status;
    char msg[512];
    if (segment_status_read(w->status_path, &st) < 0)
        return;
    atomic_store(&w->gw.request_log_blocked, st.blocked);
    atomic_store(&w->gw.request_log_blocked_total, st.episodes);
    atomic_store(&w->gw.request_log_blocked_since_ms, st.since_ms);
    int64_t dropped = dropped_logs(w);
    int severity;
    if (st.blocked && (!was->blocked || st.episodes != was->episodes)) {
        w->dropped_at_block = dropped;
        severity = 3;
        snprintf(msg, sizeof(msg),
                 "request log blocked (%s): the supervisor cannot write HAProxy's lines (%s); "
                 "they "
                 "are not counted until it can, and HAProxy drops what its pipe cannot hold "
                 "(DroppedLogs, %" PRId64 " so far)",
                 w->gw.source, st.error, dropped);
    } else if (!st.blocked && was->blocked) {
        severity = 4;
        snprintf(msg, sizeof(msg),
                 "request log written again (%s) after %.1f s: counting resumes; HAProxy dropped "
                 "%" PRId64 " log lines meanwhile (DroppedLogs), uncounted",
                 w->gw.source, (double)(sys_wall_ms() - was->since_ms) / 1000.0,
                 dropped - w->dropped_at_block);
    } else if (!st.blocked && st.episodes > was->episodes && was->episodes + was->blocked > 0) {
        severity = 4;
        snprintf(msg, sizeof(msg),
                 "request log was blocked for a moment (%s: %s); HAProxy's DroppedLogs is %" PRId64,
                 w->gw.source, st.error, dropped);
    } else {
        *was = st;
        return;
    }
    LOG_EVENT(severity <= 3 ? LOG_ERROR : LOG_WARN,
              st.blocked ? "request_log_blocked" : "request_log_resumed", NULL, msg,
              LF_INT("haproxy_dropped_logs", dropped), LF_INT("episodes", st.episodes),
              LF_STR("source", w->gw.source));
    if (w->gw.events)
        events_add(w->gw.events, sys_wall_ms(), severity, msg, strlen(msg));
    *was = st;
}

/* Read and count one batch. Returns bytes read, -1 on error (logged). */
static int64_t step(struct worker *w, int *at_end)
{
    char err[256];
    w->now_ms = sys_wall_ms();
    pthread_mutex_lock(&w->gw.lock);
    int64_t n = follow_step(&w->follow, WORKER_BATCH, on_line, w, at_end, err, sizeof(err));
    update_cursor(w);
    size_t judged = 0;
    if (*at_end) {
        atomic_store(&w->gw.caught_up_ms, w->now_ms);
        if (w->gw.reconcile)
            judged = reconcile_evaluate(w->gw.reconcile, w->now_ms);
        if (w->gw.routegap && routegap_evaluate(w->gw.routegap, w->now_ms))
            report_route_gaps(w);
    }
    pthread_mutex_unlock(&w->gw.lock);
    atomic_store(&w->gw.segments_skipped, w->follow.skipped_segments);
    if (w->follow.deleted_segments > atomic_load(&w->gw.segments_deleted)) {
        atomic_store(&w->gw.segments_deleted, w->follow.deleted_segments);
        char msg[256];
        snprintf(msg, sizeof(msg),
                 "request-log segment %lld of %s was deleted while written: its lines are "
                 "counted, the kept request log has lost them",
                 (long long)w->follow.deleted_seen_seg, w->gw.source);
        if (w->gw.events)
            events_add(w->gw.events, sys_wall_ms(), 3, msg, strlen(msg));
    }
    atomic_store(&w->gw.lag_bytes, *at_end ? 0 : follow_lag(&w->follow));
    if (judged)
        report_gaps(w);
    if (n < 0)
        LOG_EVENT(LOG_ERROR, "follow_failed", NULL, err, LF_STR("source", w->gw.source));
    return n;
}

/* Whether HAProxy `pid` has ended (gone, or a zombie nobody reaped yet). */
static int process_gone(long pid)
{
    char path[64], buf[256];
    if (pid <= 0)
        return 1;
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

/* The supervisor is gone: HAProxy got its parent-death signal and ends.
 * Move what it wrote into the pipe into the segment, as the supervisor
 * would have. */
static void orphan_drain(struct worker *w)
{
    char err[256];
    int64_t lo, hi;
    long pid = 0;
    if (segment_range(w->gw.segments_dir, &lo, &hi, NULL, err, sizeof(err)) == 0 && hi > 0)
        pid = segment_pid(w->gw.segments_dir, hi);
    segment_writer_t *sw = segment_writer_open(w->gw.segments_dir, w->max_bytes, err, sizeof(err));
    if (!sw || segment_writer_adopt(sw, err, sizeof(err)) < 0) {
        LOG_EVENT(LOG_ERROR, "orphan_drain_failed", NULL, err, LF_STR("source", w->gw.source));
        segment_writer_close(sw);
        return;
    }
    int fl = fcntl(w->o->drain_fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(w->o->drain_fd, F_SETFL, fl | O_NONBLOCK);
    int64_t moved = 0, until = sys_mono_ms() + WORKER_DRAIN_WAIT_MS;
    for (;;) {
        int gone = process_gone(pid);
        ssize_t n;
        while ((n = segment_writer_move(sw, w->o->drain_fd, err, sizeof(err))) > 0)
            moved += n;
        if (n == 0 || gone || sys_mono_ms() >= until)
            break;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    LOG_EVENT(LOG_WARN, "orphan_drain", NULL,
              "the supervisor died: the worker moved what HAProxy had left in its pipe",
              LF_INT("bytes", moved), LF_INT("haproxy_pid", pid),
              LF_BOOL("haproxy_gone", process_gone(pid)), LF_STR("source", w->gw.source));
    segment_writer_close(sw);
}

static int install_signals(void)
{
    static const int sigs[] = {SIGTERM, SIGINT, SIGUSR1, SIGHUP, SIGUSR2};
    return sigpipe_install(sigs, ARRAY_LEN(sigs));
}

/* Where to start: the journal's cursor, or the oldest segment there is. A
 * journal record that failed its check moved the cursor back (journal.h,
 * "Distrust"): that is an event in gateway_events too. */
static void start_position(struct worker *w, struct segment_pos *pos)
{
    const char *rest = NULL;
    struct journal_distrust jd;
    journal_distrust_stats(&jd);
    if (jd.records > 0 && w->gw.events) {
        char msg[512];
        snprintf(msg, sizeof(msg),
                 "journal_distrusted: %s (source %s) failed its check; %" PRId64
                 " journal records from it on were not applied and the request log is "
                 "recounted from %s",
                 jd.at, w->gw.source, jd.discarded, jd.cursor);
        events_add(w->gw.events, sys_wall_ms(), 3, msg, strlen(msg));
    }
    memset(pos, 0, sizeof(*pos));
    if (!w->gw.cursor[0] || segment_pos_parse(w->gw.cursor, pos, &rest) < 0) {
        if (w->gw.cursor[0])
            LOG_EVENT(LOG_ERROR, "cursor_invalid", NULL, "the journal's position is unreadable",
                      LF_STR("cursor", w->gw.cursor));
        memset(pos, 0, sizeof(*pos));
        LOG_EVENT(LOG_INFO, "counting_from_oldest", NULL,
                  "no position in the journal: counting from the oldest kept segment",
                  LF_STR("dir", w->gw.segments_dir), LF_STR("source", w->gw.source));
        return;
    }
    if (w->gw.reconcile && rest && *rest && reconcile_restore(w->gw.reconcile, rest) < 0)
        LOG_EVENT(LOG_WARN, "cursor_reconcile_invalid", NULL,
                  "reconciliation counts not restored: the gap may read high until HAProxy "
                  "restarts",
                  LF_STR("cursor", w->gw.cursor));
    if (w->gw.reconcile && rest && *rest) {
        char *end;
        long pid = strtol(rest, &end, 10);
        w->gw.ingest.haproxy_pid = pid;
    }
}

int worker_run(const struct ccgwconf *conf, const struct worker_options *o)
{
    struct worker *w = calloc(1, sizeof(*w));
    struct gateway_open_options go = {.source = o->source, .listen = o->listen, .live = 1};
    char err[256];
    int ret = 1, stopping = 0, flush_asked = 0;
    if (!w) {
        LOG_EVENT(LOG_ERROR, "start_failed", NULL, "out of memory");
        return 1;
    }
    w->o = o;
    w->max_bytes = conf->logs.request_log_max_bytes;
    snprintf(w->status_path, sizeof(w->status_path), "%s/%s/%s",
             conf->data_dir ? conf->data_dir : "run/data", o->source, SEGMENT_STATUS_FILE);
    /* a blocked request log found at start is reported (episodes 0 = new) */
    w->log_status.episodes = -1;
    pid_t ppid = getppid();
    if (install_signals() < 0) {
        LOG_EVENT(LOG_ERROR, "start_failed", NULL, strerror(errno));
        free(w);
        return 1;
    }
    if (gateway_open(&w->gw, conf, &go) < 0) {
        free(w);
        return WORKER_EXIT_FATAL;
    }
    atomic_store(&w->gw.worker_restarts, o->restarts);
    /* the crash-point test hook fires in the first worker only: its
     * restarted successor is the recovery under test */
    if (o->restarts > 0)
        unsetenv("CCGW_TEST_CRASH_AT");
    if (!o->no_delivery && gateway_delivery_begin(&w->gw, before_durable, on_durable, w) < 0) {
        ret = WORKER_EXIT_FATAL;
        goto out;
    }
    struct segment_pos pos;
    start_position(w, &pos);
    if (follow_open(&w->follow, w->gw.segments_dir, &pos, err, sizeof(err)) < 0) {
        LOG_EVENT(LOG_ERROR, "start_failed", NULL, err);
        goto out_delivery;
    }
    LOG_EVENT(LOG_INFO, "started", NULL, "cc-gateway worker counting",
              LF_STR("source", w->gw.source), LF_BOOL("count_relays", w->gw.tier->count_relays),
              LF_INT("hosts", relay_table_size(w->gw.table)), LF_INT("from_segment", pos.seg),
              LF_INT("from_offset", pos.off), LF_INT("restarts", o->restarts),
              LF_INT("metrics_port", w->gw.httpd ? httpd_port(w->gw.httpd) : 0));
    atomic_store(&w->gw.source_up, 1);
    int64_t next_retain = sys_mono_ms();
    int ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (ino >= 0 &&
        inotify_add_watch(ino, w->gw.segments_dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO) < 0) {
        close(ino);
        ino = -1;
    }
    if (ino < 0)
        LOG_EVENT(LOG_WARN, "inotify_unavailable", NULL, strerror(errno),
                  LF_STR("dir", w->gw.segments_dir), LF_INT("tick_ms", WORKER_TICK_MS));
    else /* wakes the worker when the supervisor's word changes */
        (void)inotify_add_watch(ino, w->status_path, IN_MODIFY);
    for (;;) {
        int at_end = 0;
        check_request_log(w);
        int64_t n = step(w, &at_end);
        if (n < 0)
            break;
        if (flush_asked && at_end) {
            if (w->gw.delivery)
                delivery_flush_request(w->gw.delivery);
            flush_asked = 0;
        }
        if (stopping && at_end) {
            ret = 0;
            break;
        }
        if (o->no_delivery && sys_mono_ms() >= next_retain) {
            retain(w, follow_pos(&w->follow).seg);
            next_retain = sys_mono_ms() + WORKER_RETAIN_PERIOD_MS;
        }
        struct pollfd pfd[2] = {{.fd = sigpipe_fd(), .events = POLLIN},
                                {.fd = ino, .events = POLLIN}};
        int wait_ms = !at_end ? 0 : ino >= 0 ? WORKER_IDLE_MS : WORKER_TICK_MS;
        if (flush_asked || stopping)
            wait_ms = 0;
        else if (at_end && n > 0 && ino >= 0) {
            pfd[1].fd = -1; /* signals only, then read: WORKER_GATHER_MS */
            wait_ms = WORKER_GATHER_MS;
        }
        if (poll(pfd, 2, wait_ms) > 0 && (pfd[1].revents & POLLIN)) {
            char evbuf[4096];
            while (read(ino, evbuf, sizeof(evbuf)) > 0)
                ;
        }
        if (pfd[0].revents & POLLIN) {
            int sig;
            while ((sig = sigpipe_next()) != 0) {
                if (sig == SIGUSR1)
                    flush_asked = 1;
                else if (sig == SIGTERM || sig == SIGINT) {
                    if (!stopping && o->drain_fd >= 0 && getppid() != ppid)
                        orphan_drain(w);
                    stopping = 1;
                }
            }
        }
    }
    atomic_store(&w->gw.source_up, 0);
    if (ino >= 0)
        close(ino);
    follow_close(&w->follow);
out_delivery:
    /* what does not reach PostgreSQL now waits in the journal: not an error
     * of the worker's (delivery logs it) */
    gateway_delivery_end(&w->gw);
out:
    LOG_EVENT(LOG_INFO, "stopped", NULL, "cc-gateway worker stopped",
              LF_STR("source", w->gw.source), LF_INT("lines", w->gw.ingest.stats.lines),
              LF_INT("relays", w->gw.ingest.stats.relays), LF_INT("exit_status", ret));
    gateway_close(&w->gw);
    free(w);
    return ret;
}
