/* PostgreSQL access for relaystats: one-off connections for the CLI and a
 * small fixed pool for the HTTP server, whose handlers run on several
 * threads. Every statement is sent with PQexecParams. */
#ifndef CCGW_RSDB_H
#define CCGW_RSDB_H

#include <libpq-fe.h>
#include <stddef.h>

#include "rserr.h"

/* Connect to `conninfo` (URI or key=value). NULL with `err` set (503). */
PGconn *rsdb_connect(const char *conninfo, struct rserr *err);

/* Run a statement with text parameters and expect `expect`
 * (PGRES_TUPLES_OK or PGRES_COMMAND_OK). Returns the result, or NULL with
 * `err` set (500) after clearing it. The caller PQclear()s the result. */
PGresult *rsdb_exec(PGconn *pg, const char *sql, int nparams, const char *const *params,
                    ExecStatusType expect, struct rserr *err);

/* Whether `pg` is a standby (a URL with target_session_attrs=prefer-standby
 * or any may land on one) and how far behind: 0 when it has replayed all the
 * WAL it received, else the time since the last transaction it replayed was
 * committed on the primary (since the standby started, if none). A standby that lost its primary
 * has replayed everything it received, so it says 0 while falling behind: the primary's
 * pg_stat_replication.replay_lag is the authoritative figure. Returns 1
 * (standby, *lag_s set), 0 (primary, *lag_s 0), or -1 with `err`. */
int rsdb_standby_lag(PGconn *pg, double *lag_s, struct rserr *err);

struct rsdb_pool;

/* A pool of at most `size` connections, opened lazily. NULL on OOM. */
struct rsdb_pool *rsdb_pool_new(const char *conninfo, size_t size);
void rsdb_pool_free(struct rsdb_pool *p);

/* Take a connection (waits while all are busy; reconnects a broken one).
 * NULL with `err` set (503) when PostgreSQL cannot be reached. */
PGconn *rsdb_pool_acquire(struct rsdb_pool *p, struct rserr *err);

/* Give a connection back. */
void rsdb_pool_release(struct rsdb_pool *p, PGconn *pg);

#endif
