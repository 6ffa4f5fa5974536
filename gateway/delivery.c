/* Delivery threads and the exactly-once flush protocol (see delivery.h).
 *
 * Locks: journal_lock before counter_lock, never the other way round. The
 * journal thread holds journal_lock from its take of COUNTER_JOURNAL until
 * the append is written, so a flush's cut (take + rotate under the same
 * lock) never lands between them: every journaled delta is either in a
 * generation the intent covers and inside S, or after the cut and not in S.
 * `lock` (the delivery mutex) guards stats, flags and the event queue; it
 * is never held while calling PostgreSQL, Redis or the disk. */
#include "delivery.h"
#include "delivery_core.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "flush.h"
#include "log.h"
#include "publish.h"
#include "sys.h"

#define EVENTS_MAX 10000 /* queued events kept while PostgreSQL is down */
#define EVENTS_BATCH 256 /* events per insert */
#define EVENTS_PERIOD_MS 1000
#define REDIS_TIMEOUT_MS 1000
#define REDIS_BACKOFF_MAX_MS 10000
#define NO_PRIMARY_RETRY_MS 2000

static int crash_point(const char *step)
{
    return journal_crash_hook && journal_crash_hook(step);
}

/* Test hook CCGW_TEST_CRASH_AT=<step>: the process kills itself with
 * SIGKILL at that crash point, for kill -9 tests at exact places. */
static int test_crash_kill(const char *step)
{
    const char *at = getenv("CCGW_TEST_CRASH_AT");
    if (at && strcmp(at, step) == 0) {
        log_msg(LOG_WARN, "test_crash", "CCGW_TEST_CRASH_AT=%s: SIGKILL", step);
        raise(SIGKILL);
    }
    return 0;
}

static void test_crash_hook_install(void)
{
    if (getenv("CCGW_TEST_CRASH_AT") && !journal_crash_hook)
        journal_crash_hook = test_crash_kill;
}

static void give_back(struct delivery_core *c, enum counter_consumer who,
                      const struct counter_deltas *d)
{
    pthread_mutex_lock(c->counter_lock);
    int rc = counter_give_back(c->counter, who, d);
    pthread_mutex_unlock(c->counter_lock);
    if (rc < 0)
        log_msg(LOG_ERROR, "counter_give_back_failed",
                "out of memory giving back %zu deltas: they are lost in memory (the journal "
                "still holds what it had)",
                d->nrows);
}

int delivery_core_open(struct delivery_core *c, const char *dir, counter_t *counter,
                       pthread_mutex_t *counter_lock, char *err, size_t errlen)
{
    return delivery_core_open_at(c, dir, counter, counter_lock, NULL, err, errlen);
}

int delivery_core_open_at(struct delivery_core *c, const char *dir, counter_t *counter,
                          pthread_mutex_t *counter_lock, char *cursor, char *err, size_t errlen)
{
    struct journal_recovery rec;
    memset(c, 0, sizeof(*c));
    c->cursor = cursor;
    counter_deltas_init(&c->inflight_deltas);
    c->counter = counter;
    c->counter_lock = counter_lock;
    if (pthread_mutex_init(&c->journal_lock, NULL) != 0) {
        snprintf(err, errlen, "journal lock: out of resources");
        return -1;
    }
    c->journal = journal_open(dir, &rec, err, errlen);
    if (!c->journal)
        goto fail;
    pthread_mutex_lock(counter_lock);
    int rc = counter_give_back(counter, COUNTER_PG, &rec.replay);
    if (cursor)
        snprintf(cursor, JOURNAL_CURSOR_MAX + 1, "%s", rec.cursor ? rec.cursor : "");
    pthread_mutex_unlock(counter_lock);
    if (rc < 0) {
        snprintf(err, errlen, "%s: out of memory replaying %zu journal deltas", dir,
                 rec.replay.nrows);
        journal_recovery_free(&rec);
        goto fail;
    }
    c->torn_records = rec.torn_records;
    if (rec.has_intent) {
        c->inflight = 1;
        c->inflight_seq = rec.intent_seq;
        c->inflight_deltas = rec.intent;
        counter_deltas_init(&rec.intent);
    }
    LOG_EVENT(LOG_INFO, "journal_recovered", NULL, NULL, LF_STR("dir", dir),
              LF_STR("instance", journal_instance(c->journal)),
              LF_INT("replayed_rows", rec.replay.nrows), LF_INT("torn_records", rec.torn_records),
              LF_INT("dropped_records", rec.dropped_records),
              LF_STR("cursor", rec.cursor ? rec.cursor : "-"),
              LF_INT("intent_seq", rec.has_intent ? rec.intent_seq : 0),
              LF_INT("next_seq", journal_next_seq(c->journal)));
    journal_recovery_free(&rec);
    return 0;
fail:
    delivery_core_close(c);
    return -1;
}

void delivery_core_close(struct delivery_core *c)
{
    journal_close(c->journal);
    c->journal = NULL;
    counter_deltas_free(&c->inflight_deltas);
    c->inflight = 0;
    pthread_mutex_destroy(&c->journal_lock);
}

int delivery_core_journal(struct delivery_core *c, char *err, size_t errlen)
{
    struct counter_deltas d;
    char cursor[JOURNAL_CURSOR_MAX + 1] = "";
    counter_deltas_init(&d);
    pthread_mutex_lock(&c->journal_lock);
    pthread_mutex_lock(c->counter_lock);
    int rc = counter_take(c->counter, COUNTER_JOURNAL, &d);
    if (c->cursor)
        memcpy(cursor, c->cursor, sizeof(cursor));
    pthread_mutex_unlock(c->counter_lock);
    if (rc < 0) {
        snprintf(err, errlen, "journal: out of memory taking deltas");
        goto fail;
    }
    const char *prev = journal_cursor(c->journal);
    int moved = cursor[0] && (!prev || strcmp(prev, cursor) != 0);
    if (d.nrows == 0 && !moved)
        goto done;
    if (cursor[0] && c->before_durable)
        c->before_durable(c->on_durable_ctx, cursor);
    if (journal_append_at(c->journal, &d, cursor[0] ? cursor : NULL, err, errlen) < 0) {
        /* nothing of it is in the file (a partial record is cut off) */
        give_back(c, COUNTER_JOURNAL, &d);
        goto fail;
    }
    /* After a failed fdatasync the records may or may not be on disk: they
     * are not given back, which would journal them twice. */
    if (journal_sync(c->journal, err, errlen) < 0)
        goto fail;
    if (crash_point("journal_synced"))
        goto crashed;
    if (cursor[0] && c->on_durable)
        c->on_durable(c->on_durable_ctx, cursor);
    if (c->compact_min_bytes > 0 && journal_compact_due(c->journal, c->compact_min_bytes)) {
        struct journal_compaction jc;
        char cerr[512];
        rc = journal_compact(c->journal, &jc, cerr, sizeof(cerr));
        if (rc == JOURNAL_CRASHED)
            goto crashed;
        if (rc < 0) {
            /* the append is durable; the old generations stay in use and
             * the next tick tries again */
            log_msg(LOG_WARN, "journal_compaction_failed", "%s", cerr);
            goto done;
        }
        c->compactions++;
        LOG_EVENT(LOG_INFO, "journal_compacted", NULL, NULL, LF_STR("dir", journal_dir(c->journal)),
                  LF_INT("first_gen", jc.first), LF_INT("last_gen", jc.last),
                  LF_INT("bytes_before", jc.bytes_before), LF_INT("bytes_after", jc.bytes_after),
                  LF_INT("rows", jc.rows), LF_INT("torn_records", jc.torn_records));
    }
done:
    pthread_mutex_unlock(&c->journal_lock);
    counter_deltas_free(&d);
    return 0;
fail:
    pthread_mutex_unlock(&c->journal_lock);
    counter_deltas_free(&d);
    return -1;
crashed:
    pthread_mutex_unlock(&c->journal_lock);
    counter_deltas_free(&d);
    return DELIVERY_CRASHED;
}

/* Steps 1-3: cut a new flush. 0 (c->inflight set, or nothing pending), -1,
 * or DELIVERY_CRASHED. */
static int cut(struct delivery_core *c, char *err, size_t errlen)
{
    struct counter_deltas s, jd;
    char cursor[JOURNAL_CURSOR_MAX + 1] = "";
    int64_t covered = 0, seq;
    counter_deltas_init(&s);
    counter_deltas_init(&jd);
    pthread_mutex_lock(&c->journal_lock);
    pthread_mutex_lock(c->counter_lock);
    if (c->cursor)
        memcpy(cursor, c->cursor, sizeof(cursor));
    if (counter_take(c->counter, COUNTER_PG, &s) < 0) {
        pthread_mutex_unlock(c->counter_lock);
        snprintf(err, errlen, "flush: out of memory taking deltas");
        goto fail;
    }
    if (counter_take(c->counter, COUNTER_JOURNAL, &jd) < 0) {
        counter_give_back(c->counter, COUNTER_PG, &s);
        pthread_mutex_unlock(c->counter_lock);
        snprintf(err, errlen, "flush: out of memory taking deltas");
        goto fail;
    }
    pthread_mutex_unlock(c->counter_lock);
    if (s.nrows == 0) {
        give_back(c, COUNTER_JOURNAL, &jd);
        pthread_mutex_unlock(&c->journal_lock);
        counter_deltas_free(&jd);
        counter_deltas_free(&s);
        return 0;
    }
    if (journal_rotate(c->journal, &covered, err, errlen) < 0)
        goto give_back_fail;
    if (crash_point("cut"))
        goto crashed;
    seq = journal_next_seq(c->journal);
    /* the intent makes its cursor durable, like a journal append */
    if (cursor[0] && c->before_durable)
        c->before_durable(c->on_durable_ctx, cursor);
    if (journal_intent_write_at(c->journal, seq, covered, &s, cursor[0] ? cursor : NULL, err,
                                errlen) < 0)
        goto give_back_fail;
    if (crash_point("intent_written"))
        goto crashed;
    char derr[256];
    int drc = journal_drop(c->journal, covered, derr, sizeof(derr));
    if (drc == JOURNAL_CRASHED)
        goto crashed;
    if (drc < 0) /* harmless: the next start deletes what an intent or state covers */
        log_msg(LOG_WARN, "journal_drop_failed", "%s", derr);
    if (crash_point("journal_dropped"))
        goto crashed;
    pthread_mutex_unlock(&c->journal_lock);
    counter_deltas_free(&jd);
    counter_deltas_free(&c->inflight_deltas);
    c->inflight_deltas = s;
    c->inflight_seq = seq;
    c->inflight = 1;
    return 0;
give_back_fail:
    /* the older generations stay on disk and the next intent covers them */
    give_back(c, COUNTER_PG, &s);
    give_back(c, COUNTER_JOURNAL, &jd);
fail:
    pthread_mutex_unlock(&c->journal_lock);
    counter_deltas_free(&jd);
    counter_deltas_free(&s);
    return -1;
crashed:
    pthread_mutex_unlock(&c->journal_lock);
    counter_deltas_free(&jd);
    counter_deltas_free(&s);
    return DELIVERY_CRASHED;
}

int delivery_core_flush(struct delivery_core *c, delivery_apply_fn apply, void *ctx,
                        struct delivery_flush_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof(*res));
    res->was_inflight = c->inflight;
    if (!c->inflight) {
        int rc = cut(c, err, errlen);
        if (rc != 0)
            return rc;
        if (!c->inflight)
            return 0;
    }
    int already = 0;
    if (apply(ctx, journal_instance(c->journal), c->inflight_seq, &c->inflight_deltas, &already,
              err, errlen) < 0)
        return -1;
    if (crash_point("applied"))
        return DELIVERY_CRASHED;
    int rc = journal_commit(c->journal, c->inflight_seq, err, errlen);
    if (rc < 0)
        return rc;
    res->seq = c->inflight_seq;
    res->rows = c->inflight_deltas.nrows;
    for (size_t i = 0; i < c->inflight_deltas.nrows; i++)
        if (c->inflight_deltas.rows[i].chain)
            res->relays += c->inflight_deltas.rows[i].n;
    res->already_applied = already;
    counter_deltas_free(&c->inflight_deltas);
    c->inflight = 0;
    c->inflight_seq = 0;
    return 0;
}

/* ---- threads ---- */

struct event_slot {
    int64_t ts_ms;
    int severity;
    char *message;
    int64_t seq;
};

struct delivery {
    struct delivery_core core;
    int have_core;
    const struct ccgwconf *conf;
    char *source;
    char origin[64]; /* instance-run: gateway_events dedup key */

    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    int stopping;
    int flush_requested;
    int64_t stop_deadline_ms;
    int final_ok;         /* the last flush committed everything */
    int journal_final_ok; /* the last journal append succeeded */

    pthread_t journal_thr, flush_thr, redis_thr;
    int journal_started, flush_started, redis_started;

    flush_pg_t *pg;
    publish_t *redis;

    struct event_slot *events; /* ring */
    size_t ev_head, ev_len;
    int64_t ev_seq;

    struct delivery_stats st;
    int64_t inflight_rows; /* rows of the cut flush not committed yet */
};

/* Wait on d->cond until `until_ms` (monotonic); d->lock held. */
static void wait_until(struct delivery *d, int64_t until_ms)
{
    struct timespec ts = {.tv_sec = until_ms / 1000, .tv_nsec = (until_ms % 1000) * 1000000};
    pthread_cond_timedwait(&d->cond, &d->lock, &ts);
}

static void *journal_main(void *arg)
{
    struct delivery *d = arg;
    int64_t period = d->conf->flush.fsync_interval_ms > 0 ? d->conf->flush.fsync_interval_ms : 1000;
    int64_t next = sys_mono_ms() + period;
    for (;;) {
        pthread_mutex_lock(&d->lock);
        while (!d->stopping && sys_mono_ms() < next)
            wait_until(d, next);
        int stopping = d->stopping;
        pthread_mutex_unlock(&d->lock);
        next += period;
        if (next < sys_mono_ms())
            next = sys_mono_ms() + period;
        char err[512];
        int rc = delivery_core_journal(&d->core, err, sizeof(err));
        pthread_mutex_lock(&d->lock);
        d->st.journal_bytes = journal_bytes(d->core.journal);
        if (rc < 0)
            d->st.journal_errors++;
        else
            d->st.journal_fsyncs++;
        pthread_mutex_unlock(&d->lock);
        if (rc < 0)
            log_msg(LOG_ERROR, "journal_failed", "%s", err);
        if (stopping) {
            pthread_mutex_lock(&d->lock);
            d->journal_final_ok = rc == 0;
            pthread_mutex_unlock(&d->lock);
            return NULL;
        }
    }
}

static void publish_round(struct delivery *d, int64_t *backoff_ms, int64_t *retry_at)
{
    char err[512];
    struct counter_deltas dl;
    counter_deltas_init(&dl);
    if (!publish_connected(d->redis)) {
        if (sys_mono_ms() < *retry_at)
            return;
        if (publish_connect(d->redis, err, sizeof(err)) < 0) {
            *retry_at = sys_mono_ms() + *backoff_ms;
            *backoff_ms =
                *backoff_ms * 2 > REDIS_BACKOFF_MAX_MS ? REDIS_BACKOFF_MAX_MS : *backoff_ms * 2;
            pthread_mutex_lock(&d->lock);
            int was_up = d->st.redis_up;
            d->st.redis_up = 0;
            d->st.redis_errors++;
            pthread_mutex_unlock(&d->lock);
            if (was_up || *backoff_ms <= 1000)
                log_msg(LOG_WARN, "redis_down", "%s", err);
            return;
        }
        log_msg(LOG_INFO, "redis_connected", "connected to Redis");
        *backoff_ms = 250;
    }
    pthread_mutex_lock(d->core.counter_lock);
    int rc = counter_take(d->core.counter, COUNTER_REDIS, &dl);
    pthread_mutex_unlock(d->core.counter_lock);
    if (rc < 0 || dl.nrows == 0) {
        pthread_mutex_lock(&d->lock);
        d->st.redis_up = 1;
        pthread_mutex_unlock(&d->lock);
        counter_deltas_free(&dl);
        return;
    }
    rc = publish_send(d->redis, &dl, err, sizeof(err));
    if (rc < 0) {
        give_back(&d->core, COUNTER_REDIS, &dl);
        log_msg(LOG_WARN, "redis_publish_failed", "%s", err);
        *retry_at = sys_mono_ms() + *backoff_ms;
    }
    pthread_mutex_lock(&d->lock);
    d->st.redis_up = rc == 0;
    if (rc == 0)
        d->st.redis_publishes++;
    else
        d->st.redis_errors++;
    pthread_mutex_unlock(&d->lock);
    counter_deltas_free(&dl);
}

static void *redis_main(void *arg)
{
    struct delivery *d = arg;
    int64_t period = d->conf->flush.redis_interval_ms > 0 ? d->conf->flush.redis_interval_ms : 1000;
    int64_t next = sys_mono_ms() + period, backoff = 250, retry_at = 0;
    for (;;) {
        pthread_mutex_lock(&d->lock);
        while (!d->stopping && sys_mono_ms() < next)
            wait_until(d, next);
        int stopping = d->stopping;
        pthread_mutex_unlock(&d->lock);
        next = sys_mono_ms() + period;
        publish_round(d, &backoff, &retry_at);
        if (stopping)
            return NULL;
    }
}

/* Insert queued events, one batch. 0 when the queue is empty afterwards or
 * nothing could be done, -1 on a database error. */
static int events_round(struct delivery *d)
{
    struct flush_event batch[EVENTS_BATCH];
    size_t n = 0;
    int rc = 0;
    for (;;) {
        pthread_mutex_lock(&d->lock);
        n = 0;
        for (; n < d->ev_len && n < EVENTS_BATCH; n++) {
            struct event_slot *e = &d->events[(d->ev_head + n) % EVENTS_MAX];
            batch[n] = (struct flush_event){e->ts_ms, e->severity, e->message, e->seq};
        }
        pthread_mutex_unlock(&d->lock);
        if (n == 0)
            return 0;
        char err[512];
        /* the slots stay owned by the queue: only this thread removes them,
         * and a full queue drops new events, not queued ones */
        rc = flush_pg_events(d->pg, d->origin, batch, n, err, sizeof(err));
        pthread_mutex_lock(&d->lock);
        if (rc == 0) {
            for (size_t i = 0; i < n; i++) {
                struct event_slot *e = &d->events[d->ev_head];
                free(e->message);
                e->message = NULL;
                d->ev_head = (d->ev_head + 1) % EVENTS_MAX;
                d->ev_len--;
            }
            d->st.events_written += (int64_t)n;
        }
        d->st.events_pending = (int64_t)d->ev_len;
        pthread_mutex_unlock(&d->lock);
        if (rc < 0) {
            log_msg(LOG_WARN, "events_insert_failed", "%s", err);
            return -1;
        }
    }
}

static void note_flush(struct delivery *d, int rc, const struct delivery_flush_result *res,
                       double secs, const char *err)
{
    pthread_mutex_lock(&d->lock);
    d->st.last_flush_ok = rc == 0;
    d->st.flush_in_progress = d->core.inflight;
    d->inflight_rows = d->core.inflight ? (int64_t)d->core.inflight_deltas.nrows : 0;
    if (rc == 0 && res->seq) {
        d->st.last_flush_ms = sys_wall_ms();
        d->st.last_flush_seq = res->seq;
        d->st.last_flush_rows = (int64_t)res->rows;
        d->st.last_flush_seconds = secs;
        d->st.flushes_ok++;
    } else if (rc != 0) {
        d->st.flush_failures++;
    }
    pthread_mutex_unlock(&d->lock);
    if (rc == 0 && res->seq)
        LOG_EVENT(LOG_INFO, "flush_done", NULL, res->already_applied ? "already applied" : NULL,
                  LF_INT("seq", res->seq), LF_INT("rows", res->rows), LF_INT("relays", res->relays),
                  LF_BOOL("already_applied", res->already_applied),
                  LF_BOOL("retry", res->was_inflight), LF_DBL("seconds", secs));
    else if (rc != 0)
        LOG_EVENT(LOG_WARN, "flush_failed", NULL, err,
                  LF_INT("seq", d->core.inflight ? d->core.inflight_seq : 0));
}

/* Fold the gateway's committed deltas into relay_counts and its rollups
 * (flush.h). The flush is done already: a failure is logged and counted,
 * never retried here; the rows wait for the next fold (this gateway's next
 * flush, or relaystats). */
static void fold(struct delivery *d)
{
    char err[512] = "";
    if (crash_point("fold"))
        return;
    int64_t folded = 0, t0 = sys_mono_ms();
    int rc = flush_pg_fold(d->pg, &folded, err, sizeof(err));
    double secs = (double)(sys_mono_ms() - t0) / 1000.0;
    pthread_mutex_lock(&d->lock);
    if (rc == 0) {
        d->st.folds_ok++;
        d->st.last_fold_seconds = secs;
    } else {
        d->st.fold_failures++;
    }
    pthread_mutex_unlock(&d->lock);
    if (rc == 0)
        LOG_EVENT(LOG_INFO, "fold_done", NULL, NULL, LF_INT("keys", folded),
                  LF_DBL("seconds", secs));
    else
        LOG_EVENT(LOG_WARN, "fold_failed", NULL, err, LF_DBL("seconds", secs));
}

/* Flush everything pending now: the in-flight flush, then a new cut; then
 * fold what was committed. 0 when all committed (folded or not), -1 on
 * error (retry later). */
static int flush_round(struct delivery *d)
{
    char err[512] = "";
    int committed = 0;
    for (int round = 0; round < 2; round++) {
        int rc = flush_pg_connect(d->pg, err, sizeof(err));
        pthread_mutex_lock(&d->lock);
        d->st.pg_up = rc == 0;
        d->st.pg_no_primary = rc < 0 && flush_pg_no_primary(d->pg);
        d->st.schema_ok = rc != FLUSH_SCHEMA_MISMATCH && (rc == 0 || d->st.schema_ok);
        pthread_mutex_unlock(&d->lock);
        if (rc < 0) {
            struct delivery_flush_result none = {0};
            note_flush(d, -1, &none, 0, err);
            return -1;
        }
        struct delivery_flush_result res;
        int64_t t0 = sys_mono_ms();
        rc = delivery_core_flush(&d->core, flush_pg_apply, d->pg, &res, err, sizeof(err));
        note_flush(d, rc, &res, (double)(sys_mono_ms() - t0) / 1000.0, err);
        pthread_mutex_lock(&d->lock);
        d->st.pg_up = rc == 0;
        pthread_mutex_unlock(&d->lock);
        if (rc < 0)
            return -1;
        committed |= res.seq != 0;
        if (!res.was_inflight)
            break;
    }
    if (committed)
        fold(d);
    return 0;
}

static void *flush_main(void *arg)
{
    struct delivery *d = arg;
    int64_t interval =
        (d->conf->flush.interval_secs > 0 ? d->conf->flush.interval_secs : 300) * 1000;
    int64_t retry_max =
        (d->conf->flush.retry_max_secs > 0 ? d->conf->flush.retry_max_secs : 60) * 1000;
    int64_t now = sys_mono_ms();
    int64_t next_flush = d->core.inflight ? now : now + interval;
    int64_t next_events = now + EVENTS_PERIOD_MS, backoff = 1000;
    for (;;) {
        pthread_mutex_lock(&d->lock);
        for (;;) {
            now = sys_mono_ms();
            if (d->stopping || d->flush_requested || now >= next_flush || now >= next_events)
                break;
            wait_until(d, next_flush < next_events ? next_flush : next_events);
        }
        int stopping = d->stopping, requested = d->flush_requested;
        int64_t asked = d->st.flush_requests;
        d->flush_requested = 0;
        pthread_mutex_unlock(&d->lock);
        now = sys_mono_ms();
        if (stopping) {
            int rc = -1;
            for (;;) {
                rc = flush_round(d);
                if (rc == 0 || sys_mono_ms() + 250 >= d->stop_deadline_ms)
                    break;
                struct timespec ts = {0, 250 * 1000000};
                nanosleep(&ts, NULL);
            }
            if (rc == 0)
                events_round(d);
            pthread_mutex_lock(&d->lock);
            d->final_ok = rc == 0;
            pthread_mutex_unlock(&d->lock);
            return NULL;
        }
        if (requested || now >= next_flush) {
            if (flush_round(d) == 0) {
                backoff = 1000;
                next_flush = sys_mono_ms() + interval;
                pthread_mutex_lock(&d->lock);
                if (asked > d->st.flush_requests_done)
                    d->st.flush_requests_done = asked;
                pthread_mutex_unlock(&d->lock);
            } else {
                /* retry the same flush (same seq, same deltas) later */
                next_flush = sys_mono_ms() + backoff;
                backoff = backoff * 2 > retry_max ? retry_max : backoff * 2;
                /* a failover promotes a new primary within seconds: look
                 * for it often rather than back off past it */
                if (flush_pg_no_primary(d->pg) && backoff > NO_PRIMARY_RETRY_MS)
                    backoff = NO_PRIMARY_RETRY_MS;
            }
        }
        if (sys_mono_ms() >= next_events) {
            if (flush_pg_connected(d->pg) || flush_pg_connect(d->pg, NULL, 0) == 0)
                events_round(d);
            next_events = sys_mono_ms() + EVENTS_PERIOD_MS;
        }
    }
}

static void stop_threads(struct delivery *d)
{
    pthread_mutex_lock(&d->lock);
    d->stopping = 1;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
    if (d->redis_started)
        pthread_join(d->redis_thr, NULL);
    /* the journal thread's last append comes before the flush's last cut */
    if (d->journal_started)
        pthread_join(d->journal_thr, NULL);
    if (d->flush_started)
        pthread_join(d->flush_thr, NULL);
    d->redis_started = d->journal_started = d->flush_started = 0;
}

static void delivery_free(struct delivery *d)
{
    if (d->have_core)
        delivery_core_close(&d->core);
    flush_pg_free(d->pg);
    publish_free(d->redis);
    if (d->events) {
        for (size_t i = 0; i < d->ev_len; i++)
            free(d->events[(d->ev_head + i) % EVENTS_MAX].message);
        free(d->events);
    }
    pthread_cond_destroy(&d->cond);
    pthread_mutex_destroy(&d->lock);
    free(d->source);
    free(d);
}

/* Check the schema before counting starts: an unknown schema is fatal, an
 * unreachable database is not. */
static int first_connect(struct delivery *d, char *err, size_t errlen)
{
    char perr[512];
    int rc = flush_pg_connect(d->pg, perr, sizeof(perr));
    if (rc == FLUSH_SCHEMA_MISMATCH) {
        snprintf(err, errlen, "%s", perr);
        return -1;
    }
    d->st.pg_up = rc == 0;
    d->st.schema_ok = rc == 0;
    if (rc < 0)
        log_msg(LOG_WARN, "postgres_down",
                "%s; counting goes on, deltas are journaled and flushes retry", perr);
    return 0;
}

delivery_t *delivery_start(const struct delivery_options *o, char *err, size_t errlen)
{
    const struct ccgwconf *conf = o->conf;
    struct delivery *d = calloc(1, sizeof(*d));
    pthread_condattr_t ca;
    if (!d) {
        snprintf(err, errlen, "delivery: out of memory");
        return NULL;
    }
    pthread_mutex_init(&d->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cond, &ca);
    pthread_condattr_destroy(&ca);
    d->conf = conf;
    d->source = strdup(o->source);
    d->events = calloc(EVENTS_MAX, sizeof(*d->events));
    if (!d->source || !d->events) {
        snprintf(err, errlen, "delivery: out of memory");
        goto fail;
    }
    d->core.counter = o->counter;
    d->core.counter_lock = o->counter_lock;
    /* the journal is kept with or without PostgreSQL: without it, the
     * counts wait in the journal for a run that has a database */
    char dir[PATH_MAX];
    const char *data_dir = conf->data_dir ? conf->data_dir : "run/data";
    if (snprintf(dir, sizeof(dir), "%s/%s", data_dir, o->source) >= (int)sizeof(dir)) {
        snprintf(err, errlen, "%s/%s: path too long", data_dir, o->source);
        goto fail;
    }
    test_crash_hook_install();
    if (delivery_core_open_at(&d->core, dir, o->counter, o->counter_lock, o->cursor, err, errlen) <
        0)
        goto fail;
    d->have_core = 1;
    d->core.on_durable = o->on_durable;
    d->core.before_durable = o->before_durable;
    d->core.on_durable_ctx = o->on_durable_ctx;
    d->core.compact_min_bytes = conf->flush.journal_compact_bytes;
    d->st.journal_bytes = journal_bytes(d->core.journal);
    if (conf->postgres.url) {
        unsigned char run[8];
        if (RAND_bytes(run, sizeof(run)) != 1) {
            snprintf(err, errlen, "delivery: no random bytes");
            goto fail;
        }
        snprintf(d->origin, sizeof(d->origin), "%s-%02x%02x%02x%02x%02x%02x%02x%02x",
                 journal_instance(d->core.journal), run[0], run[1], run[2], run[3], run[4], run[5],
                 run[6], run[7]);
        d->pg = flush_pg_new(conf->postgres.url, conf->gateway_name, o->source);
        if (!d->pg) {
            snprintf(err, errlen, "delivery: out of memory");
            goto fail;
        }
        if (first_connect(d, err, errlen) < 0)
            goto fail;
        d->st.flush_in_progress = d->core.inflight;
        d->inflight_rows = d->core.inflight ? (int64_t)d->core.inflight_deltas.nrows : 0;
    } else {
        log_msg(LOG_WARN, "postgres_disabled",
                "postgres.url is not set: counts are kept in the journal %s until a run with "
                "PostgreSQL flushes them",
                dir);
    }
    if (conf->redis.host) {
        d->redis = publish_new(conf->redis.host, (int)conf->redis.port,
                               conf->redis.key_prefix ? conf->redis.key_prefix : "ccgw",
                               conf->gateway_name, conf->redis.ttl_secs, REDIS_TIMEOUT_MS);
        if (!d->redis) {
            snprintf(err, errlen, "delivery: out of memory");
            goto fail;
        }
    }
    if (pthread_create(&d->journal_thr, NULL, journal_main, d) != 0)
        goto thread_fail;
    d->journal_started = 1;
    if (d->pg) {
        if (pthread_create(&d->flush_thr, NULL, flush_main, d) != 0)
            goto thread_fail;
        d->flush_started = 1;
    }
    if (d->redis) {
        if (pthread_create(&d->redis_thr, NULL, redis_main, d) != 0)
            goto thread_fail;
        d->redis_started = 1;
    }
    return d;
thread_fail:
    snprintf(err, errlen, "delivery: cannot start a thread: %s", strerror(errno));
    d->stop_deadline_ms = sys_mono_ms();
    stop_threads(d);
fail:
    delivery_free(d);
    return NULL;
}

void delivery_flush_request(delivery_t *d)
{
    pthread_mutex_lock(&d->lock);
    d->flush_requested = 1;
    d->st.flush_requests++;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
}

int delivery_event_push(delivery_t *d, int64_t ts_ms, int severity, const char *message)
{
    if (!d->pg)
        return 0;
    pthread_mutex_lock(&d->lock);
    if (d->ev_len == EVENTS_MAX) {
        d->st.events_dropped++;
        pthread_mutex_unlock(&d->lock);
        return 0;
    }
    struct event_slot *e = &d->events[(d->ev_head + d->ev_len) % EVENTS_MAX];
    e->message = strdup(message);
    if (!e->message) {
        pthread_mutex_unlock(&d->lock);
        return -1;
    }
    e->ts_ms = ts_ms;
    e->severity = severity;
    e->seq = ++d->ev_seq;
    d->ev_len++;
    d->st.events_pending = (int64_t)d->ev_len;
    pthread_mutex_unlock(&d->lock);
    return 0;
}

int delivery_stop(delivery_t *d, int64_t timeout_ms)
{
    if (!d)
        return 0;
    pthread_mutex_lock(&d->lock);
    d->stop_deadline_ms = sys_mono_ms() + timeout_ms;
    pthread_mutex_unlock(&d->lock);
    stop_threads(d);
    /* without PostgreSQL, success is the journal's last append */
    int ok = d->pg ? d->final_ok : d->journal_final_ok;
    if (d->pg && !ok)
        log_msg(LOG_WARN, "flush_incomplete_at_exit",
                "PostgreSQL did not take the last flush: it stays in %s for the next start",
                journal_dir(d->core.journal));
    delivery_free(d);
    return ok ? 0 : -1;
}

void delivery_stats(delivery_t *d, struct delivery_stats *out)
{
    size_t pending = 0;
    if (d->have_core) {
        pthread_mutex_lock(d->core.counter_lock);
        pending = counter_pending_keys(d->core.counter, COUNTER_PG);
        pthread_mutex_unlock(d->core.counter_lock);
    }
    pthread_mutex_lock(&d->lock);
    *out = d->st;
    out->pending_rows = (int64_t)pending + d->inflight_rows;
    pthread_mutex_unlock(&d->lock);
}
