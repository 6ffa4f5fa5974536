/* PostgreSQL side of delivery: applying a flush exactly once, folding it,
 * inserting gateway events, and checking the schema version.
 *
 * A flush is one transaction: a transaction lock on the gateway's name (its
 * sources share the ledger checks), the ledger row (gateway, instance,
 * flush_seq) in relay_flushes, ON CONFLICT DO NOTHING; when it already
 * existed the flush is reported "already applied" once a write after it
 * has committed (with a synchronous standby: once the standby has it);
 * otherwise the relay rows are COPY'd into relay_deltas (append-only) and
 * the non-relay rows, through a temp table, added to non_relay_counts.
 * That commit is the flush: the journal may forget its counts then.
 *
 * A fold is a transaction of its own, after the flush's: relay_deltas_fold
 * (relaystats/schema.c, migration 4) moves the gateway's committed deltas
 * into relay_counts and its hourly and daily rollups (additive upsert and
 * MERGEs, PostgreSQL 15 or later). Until then the relay_totals views count
 * them. A failed or lost fold loses nothing: the next fold takes the rows.
 * Values travel as COPY data or statement parameters only.
 *
 * Replicated databases: the URL may list several hosts with
 * target_session_attrs=read-write (libpq finds the primary). A COMMIT has no
 * statement_timeout and a COMMIT answered with a WARNING (a cancelled wait
 * for the synchronous standby) is a failure, so an acknowledged flush is on
 * the synchronous standby and survives a failover. */
#ifndef CCGW_FLUSH_H
#define CCGW_FLUSH_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "counter.h"

typedef struct flush_pg flush_pg_t;

#define FLUSH_SCHEMA_MISMATCH (-2)

/* A connection-to-be. Strings are copied. NULL on OOM. */
flush_pg_t *flush_pg_new(const char *conninfo, const char *gateway, const char *source);
void flush_pg_free(flush_pg_t *f);

/* Connect unless connected, and check the schema version. 0, -1 with err
 * (unreachable: retry later), or FLUSH_SCHEMA_MISMATCH with err (do not
 * write to this database). */
int flush_pg_connect(flush_pg_t *f, char *err, size_t errlen);
int flush_pg_connected(const flush_pg_t *f);

/* Flush as another gateway on the same connection (a pooled connection
 * serving many gateways, as tests/bench/bench_flush_load.sh simulates).
 * 0, or -1 on OOM. */
int flush_pg_set_gateway(flush_pg_t *f, const char *gateway);

/* 1 when the last connect attempt reached servers but none took writes
 * (with target_session_attrs=read-write: only standbys, or servers starting
 * or stopping): a failover is under way, counts stay in the journal. 0 once
 * connected. Same thread as flush_pg_connect. */
int flush_pg_no_primary(const flush_pg_t *f);

/* Apply flush `seq` of `instance` (a delivery_apply_fn; ctx is the
 * flush_pg_t). 0 with *already_applied set, or -1 with err; after -1 the
 * connection is dropped and the outcome may be unknown: retry the same
 * (instance, seq, deltas) and the ledger decides. */
int flush_pg_apply(void *ctx, const char *instance, int64_t seq, const struct counter_deltas *d,
                   int *already_applied, char *err, size_t errlen);

/* Fold this gateway's pending deltas (all of them, whichever source or
 * process flushed them) into relay_counts and its rollups. 0 with *folded
 * (the keys moved), or -1 with err. Never needed for a flush's exactness:
 * call it after flush_pg_apply committed, and log a failure. */
int flush_pg_fold(flush_pg_t *f, int64_t *folded, char *err, size_t errlen);

struct flush_event {
    int64_t ts_ms; /* epoch ms UTC */
    int severity;  /* syslog 0-7 */
    char *message;
    int64_t seq; /* unique within `origin` */
};

/* Insert events into gateway_events; (origin, seq) makes a retried batch
 * land once. 0 or -1 with err. */
int flush_pg_events(flush_pg_t *f, const char *origin, const struct flush_event *ev, size_t n,
                    char *err, size_t errlen);

/* Read the schema version (0 when no migration ran) and compare it with
 * SCHEMA_VERSION. 0 when equal; FLUSH_SCHEMA_MISMATCH with a message saying
 * what to do; -1 when the query failed. */
int flush_schema_check(PGconn *conn, int *version, char *err, size_t errlen);

#endif
