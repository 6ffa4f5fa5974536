/* PostgreSQL connections and a small thread-safe pool. */
#include "rsdb.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* libpq messages end with a newline; drop it so messages fit on one line. */
static void set_pg_error(struct rserr *err, int status, const char *what, const char *msg)
{
    size_t n = strlen(msg);

    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        n--;
    rserr_set(err, status, "%s: %.*s", what, (int)n, msg);
}

PGconn *rsdb_connect(const char *conninfo, struct rserr *err)
{
    PGconn *pg = PQconnectdb(conninfo);

    if (!pg) {
        rserr_set(err, 503, "postgres: out of memory");
        return NULL;
    }
    if (PQstatus(pg) != CONNECTION_OK) {
        set_pg_error(err, 503, "postgres: connect", PQerrorMessage(pg));
        PQfinish(pg);
        return NULL;
    }
    return pg;
}

PGresult *rsdb_exec(PGconn *pg, const char *sql, int nparams, const char *const *params,
                    ExecStatusType expect, struct rserr *err)
{
    PGresult *res = PQexecParams(pg, sql, nparams, NULL, params, NULL, NULL, 0);

    if (!res) {
        set_pg_error(err, 500, "postgres", PQerrorMessage(pg));
        return NULL;
    }
    if (PQresultStatus(res) != expect) {
        const char *msg = PQresultErrorMessage(res);
        set_pg_error(err, PQstatus(pg) == CONNECTION_OK ? 500 : 503, "postgres",
                     msg && *msg ? msg : PQresStatus(PQresultStatus(res)));
        PQclear(res);
        return NULL;
    }
    return res;
}

int rsdb_standby_lag(PGconn *pg, double *lag_s, struct rserr *err)
{
    PGresult *res = rsdb_exec(
        pg,
        "SELECT pg_is_in_recovery(),"
        " CASE WHEN NOT pg_is_in_recovery() THEN 0"
        "      WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
        /* nothing replayed since it started: behind since then at least */
        "      ELSE greatest(0, extract(epoch FROM now() - "
        "coalesce(pg_last_xact_replay_timestamp(),"
        "                                                          pg_postmaster_start_time())))"
        " END",
        0, NULL, PGRES_TUPLES_OK, err);
    if (!res)
        return -1;
    int standby = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    *lag_s = PQgetisnull(res, 0, 1) ? 0 : strtod(PQgetvalue(res, 0, 1), NULL);
    PQclear(res);
    return standby;
}

struct rsdb_pool {
    char *conninfo;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t size, nopen, nidle;
    PGconn **idle; /* size slots */
};

struct rsdb_pool *rsdb_pool_new(const char *conninfo, size_t size)
{
    struct rsdb_pool *p = calloc(1, sizeof(*p));

    if (!p)
        return NULL;
    p->size = size ? size : 1;
    p->conninfo = strdup(conninfo);
    p->idle = calloc(p->size, sizeof(*p->idle));
    if (!p->conninfo || !p->idle)
        goto fail;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    return p;
fail:
    free(p->conninfo);
    free(p->idle);
    free(p);
    return NULL;
}

void rsdb_pool_free(struct rsdb_pool *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nidle; i++)
        PQfinish(p->idle[i]);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p->idle);
    free(p->conninfo);
    free(p);
}

PGconn *rsdb_pool_acquire(struct rsdb_pool *p, struct rserr *err)
{
    PGconn *pg = NULL;

    pthread_mutex_lock(&p->lock);
    while (p->nidle == 0 && p->nopen >= p->size)
        pthread_cond_wait(&p->cond, &p->lock);
    if (p->nidle > 0)
        pg = p->idle[--p->nidle];
    else
        p->nopen++;
    pthread_mutex_unlock(&p->lock);

    if (pg && PQstatus(pg) != CONNECTION_OK) {
        PQreset(pg);
        if (PQstatus(pg) == CONNECTION_OK)
            return pg;
        set_pg_error(err, 503, "postgres: reconnect", PQerrorMessage(pg));
        PQfinish(pg);
        pg = NULL;
    } else if (!pg) {
        pg = rsdb_connect(p->conninfo, err);
    }
    if (pg)
        return pg;
    pthread_mutex_lock(&p->lock);
    p->nopen--;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

void rsdb_pool_release(struct rsdb_pool *p, PGconn *pg)
{
    pthread_mutex_lock(&p->lock);
    p->idle[p->nidle++] = pg;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}
