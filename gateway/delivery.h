/* Delivery of one cc-gateway source's counts: the local journal, Redis and
 * PostgreSQL, each driven by its own thread so that a slow or dead store
 * never blocks counting.
 *
 *   journal thread   every flush.fsync_interval_ms: COUNTER_JOURNAL deltas
 *                    are appended to <data_dir>/<source>/journal.<gen> and
 *                    fdatasync'ed (crash safety, like appendfsync everysec)
 *   redis thread     every flush.redis_interval_ms: COUNTER_REDIS deltas are
 *                    pipelined as HINCRBY to Redis (real-time view only)
 *   flush thread     every flush.interval_secs, on delivery_flush_request()
 *                    and at delivery_stop(): COUNTER_PG deltas and a ledger
 *                    row go to PostgreSQL in one transaction, exactly once
 *                    (into relay_deltas); then a second transaction folds
 *                    them into relay_counts (flush.h); gateway events are
 *                    inserted in batches
 *
 * Without postgres.url there is no flush thread: the journal (compacted as
 * it grows) keeps the counts, and the first run with a database replays and
 * flushes them.
 *
 * The exactly-once protocol of a flush, which the threads drive, is in
 * delivery_core.h. */
#ifndef CCGW_DELIVERY_H
#define CCGW_DELIVERY_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "ccgwconf.h"
#include "counter.h"

struct delivery_options {
    const struct ccgwconf *conf;   /* gateway_name, data_dir, postgres, redis, flush */
    const char *source;            /* "edge", "http0", ...: the journal folder name */
    counter_t *counter;            /* shared with ingestion */
    pthread_mutex_t *counter_lock; /* held by every user of `counter` */
    /* Where ingestion stands (a word, see journal.h), JOURNAL_CURSOR_MAX + 1
     * bytes, written by ingestion under counter_lock; "" while it has none.
     * Each journal append and flush intent carries it, so that a restart
     * resumes exactly after the counts the journal holds. delivery_start
     * fills it with the recovered cursor. May be NULL (no cursor). */
    char *cursor;
    /* Called by the journal thread after an append + fdatasync made
     * `cursor` durable (e.g. to drop input that is now counted for good);
     * may be NULL. */
    void (*on_durable)(void *ctx, const char *cursor);
    void *on_durable_ctx;
    /* Called by the journal thread before it makes `cursor` durable, so
     * that what the cursor points into is durable first (the request-log
     * segment's fdatasync); may be NULL. */
    void (*before_durable)(void *ctx, const char *cursor);
};

typedef struct delivery delivery_t;

/* Open the journal (recovering what a previous run left: an unfinished flush
 * is retried first, unflushed journal deltas become pending for PostgreSQL
 * again), check the database schema if PostgreSQL answers, and start the
 * threads. A database with an unknown schema version is an error; an
 * unreachable one is not (flushes retry). Returns NULL with `err` filled. */
delivery_t *delivery_start(const struct delivery_options *opts, char *err, size_t errlen);

/* Ask for a PostgreSQL flush now (SIGUSR1). Returns at once; thread-safe,
 * but not async-signal-safe: call it from the thread that handles signals.
 * Once a flush started after the request has committed everything pending
 * (or found nothing pending), delivery_stats' flush_requests_done reaches
 * flush_requests. */
void delivery_flush_request(delivery_t *d);

/* Queue one notice/warning/alert line for gateway_events. `ts_ms` is the
 * event time (epoch ms UTC), `severity` the syslog level 0-7. The text is
 * copied. When the queue is full (PostgreSQL down for long) the new event
 * is dropped and counted in delivery_stats (the local events log keeps it).
 * 0, or -1 out of memory. */
int delivery_event_push(delivery_t *d, int64_t ts_ms, int severity, const char *message);

/* Stop: a last journal fsync, a last flush of everything pending (bounded by
 * `timeout_ms`; what does not make it stays in the journal for the next
 * start), then join the threads and free. 0 when everything was flushed (or,
 * without PostgreSQL, journaled), -1 when something was left in the journal
 * for lack of a database (or lost: the journal failed). NULL is allowed. */
int delivery_stop(delivery_t *d, int64_t timeout_ms);

struct delivery_stats {
    int pg_up;                   /* last PostgreSQL operation succeeded */
    int pg_no_primary;           /* the last connect found no writable primary (a failover) */
    int redis_up;                /* connected and last publish succeeded */
    int flush_in_progress;       /* a flush is waiting for PostgreSQL */
    int64_t last_flush_ms;       /* epoch ms of the last committed flush, 0: none */
    int last_flush_ok;           /* outcome of the last attempt */
    int64_t last_flush_seq;      /* seq of the last committed flush */
    int64_t last_flush_rows;     /* rows of the last committed flush */
    double last_flush_seconds;   /* duration of the last committed flush */
    int64_t flushes_ok;          /* committed flushes (incl. found already applied) */
    int64_t flush_failures;      /* failed attempts */
    int64_t pending_rows;        /* keys waiting for PostgreSQL (memory + in flight) */
    int64_t journal_bytes;       /* bytes in the journal files now */
    int64_t journal_fsyncs;      /* fdatasync calls done */
    int64_t journal_errors;      /* failed appends/fsyncs */
    int64_t redis_publishes;     /* successful publish rounds */
    int64_t redis_errors;        /* failed publish rounds */
    int64_t events_pending;      /* events queued for gateway_events */
    int64_t events_written;      /* events inserted */
    int64_t events_dropped;      /* events dropped because the queue was full */
    int64_t flush_requests;      /* delivery_flush_request calls */
    int64_t flush_requests_done; /* of them, answered by a flush that left nothing pending */
    int schema_ok;               /* the database schema version matched */
    int64_t folds_ok;            /* folds of relay_deltas done after a flush */
    int64_t fold_failures;       /* failed folds (the deltas wait for the next) */
    double last_fold_seconds;    /* duration of the last successful fold */
};

/* A consistent copy of the counters above; thread-safe. */
void delivery_stats(delivery_t *d, struct delivery_stats *out);

#endif
