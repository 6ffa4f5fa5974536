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
