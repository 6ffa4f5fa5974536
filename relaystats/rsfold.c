/* Folding of pending relay deltas: see rsfold.h. */
#include "rsfold.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "rsdb.h"

int rsfold_all(PGconn *pg, struct rsfold_stats *st, struct rserr *err)
{
    PGresult *res =
        rsdb_exec(pg, "SELECT DISTINCT gateway FROM relay_deltas", 0, NULL, PGRES_TUPLES_OK, err);

    memset(st, 0, sizeof(*st));
    if (!res)
        return -1;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *gw[1] = {PQgetvalue(res, i, 0)};
        PGresult *r = rsdb_exec(pg, "SELECT relay_deltas_fold($1)", 1, gw, PGRES_TUPLES_OK, err);
        if (!r) {
            PQclear(res);
            return -1;
        }
        st->keys += strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        st->gateways++;
        PQclear(r);
    }
    PQclear(res);
    return 0;
}

struct rsfold_loop {
    char *conninfo;
    int every_secs;
    pthread_t thr;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stopping;
};

/* One round on *pg (connected on demand, dropped after a failure). */
static void fold_round(struct rsfold_loop *l, PGconn **pg, int *failing)
{
    struct rserr err = {0};
    struct rsfold_stats st;
    double lag;

    if (!*pg)
        *pg = rsdb_connect(l->conninfo, &err);
    int standby = *pg ? rsdb_standby_lag(*pg, &lag, &err) : -1;
    if (standby == 1)
        return;
    if (standby == 0 && rsfold_all(*pg, &st, &err) == 0) {
        if (st.keys)
            LOG_EVENT(LOG_INFO, "folded", NULL, "pending relay deltas folded",
                      LF_INT("gateways", st.gateways), LF_INT("keys", st.keys));
        *failing = 0;
        return;
    }
    /* one line per outage, not one per round */
    if (!*failing)
        LOG_EVENT(LOG_WARN, "fold_failed", NULL, err.text, LF_INT("every_secs", l->every_secs));
    *failing = 1;
    PQfinish(*pg);
    *pg = NULL;
}

static void *fold_main(void *arg)
{
    struct rsfold_loop *l = arg;
    PGconn *pg = NULL;
    int failing = 0;

    pthread_mutex_lock(&l->lock);
    while (!l->stopping) {
        pthread_mutex_unlock(&l->lock);
        fold_round(l, &pg, &failing);
        pthread_mutex_lock(&l->lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += l->every_secs;
        while (!l->stopping && pthread_cond_timedwait(&l->cond, &l->lock, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&l->lock);
    PQfinish(pg);
    return NULL;
}

struct rsfold_loop *rsfold_loop_start(const char *conninfo, int every_secs)
{
    struct rsfold_loop *l = calloc(1, sizeof(*l));

    if (!l)
        return NULL;
    l->conninfo = strdup(conninfo);
    l->every_secs = every_secs > 0 ? every_secs : 60;
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->cond, NULL);
    if (!l->conninfo || pthread_create(&l->thr, NULL, fold_main, l) != 0) {
        pthread_cond_destroy(&l->cond);
        pthread_mutex_destroy(&l->lock);
        free(l->conninfo);
        free(l);
        return NULL;
    }
    return l;
}

void rsfold_loop_stop(struct rsfold_loop *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->lock);
    l->stopping = 1;
    pthread_cond_signal(&l->cond);
    pthread_mutex_unlock(&l->lock);
    pthread_join(l->thr, NULL);
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->lock);
    free(l->conninfo);
    free(l);
}
