/* serve's config sync and unowned-relays gauge: see rswatch.h. */
#include "rswatch.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bucket.h"
#include "ccgwconf.h"
#include "log.h"
#include "rsdb.h"
#include "rsexport.h"
#include "rssync.h"
#include "sys.h"

enum { SYNC_OK, SYNC_INVALID, SYNC_FAILED, SYNC_NRESULTS };

/* What the metrics page shows. */
struct watch_metrics {
    int have_unowned;
    int64_t unowned, unowned_pairs, unowned_at;
    int in_sync; /* the file as it is now has been synced */
    uint64_t syncs[SYNC_NRESULTS];
};

struct rswatch {
    char *conninfo, *config_path;
    int poll_secs, unowned_every_secs;
    pthread_t thr;
    pthread_mutex_t lock; /* guards stopping and m */
    pthread_cond_t cond;
    int stopping;
    struct watch_metrics m;
};

/* The thread's own state. */
struct watch_state {
    PGconn *pg;
    struct rswatch_sig done; /* the version last synced, or found invalid */
    struct rswatch_sig seen; /* the version the last poll saw */
    int started;             /* the first sync was attempted */
    int pending;             /* a sync of `done` failed: retry it */
    int sync_failing, unowned_failing, unreadable, deferred;
    int64_t unowned_logged; /* the count last logged: a line per change, not per refresh */
    double next_unowned;    /* sys_mono_s() */
};

int rswatch_sig_read(const char *path, struct rswatch_sig *s)
{
    struct stat st;

    memset(s, 0, sizeof(*s));
    if (stat(path, &st) != 0)
        return -1;
    s->ok = 1;
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    s->size = st.st_size;
    s->mtime = st.st_mtim;
    return 0;
}

int rswatch_sig_equal(const struct rswatch_sig *a, const struct rswatch_sig *b)
{
    return a->ok && b->ok && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

void rswatch_unowned_range(int64_t now, struct rstime_range *r)
{
    r->step = RSTIME_STEP_5M;
    r->to = bucket_start(now) + RSTIME_STEP_5M;
    r->from = r->to - RSTIME_STEP_1D;
}

static void count_sync(struct rswatch *w, int result, int in_sync)
{
    pthread_mutex_lock(&w->lock);
    w->m.syncs[result]++;
    w->m.in_sync = in_sync;
    pthread_mutex_unlock(&w->lock);
}

/* Connect on demand; 1 on a primary, 0 on a standby, -1 with err. */
static int primary(struct rswatch *w, struct watch_state *s, struct rserr *err)
{
    double lag;
    int standby;

    if (!s->pg && !(s->pg = rsdb_connect(w->conninfo, err)))
        return -1;
    standby = rsdb_standby_lag(s->pg, &lag, err);
    if (standby < 0) {
        PQfinish(s->pg);
        s->pg = NULL;
        return -1;
    }
    return !standby;
}

/* Load the file and sync it; 1 when the gauge should be refreshed now. */
static int sync_config(struct rswatch *w, struct watch_state *s, const char *reason)
{
    struct ccgwconf conf;
    struct yamlcfg_error cerr;
    struct rssync_stats st;
    struct rserr err = {0};
    int rc;

    if (ccgwconf_load(w->config_path, &conf, &cerr) != 0) {
        LOG_EVENT(LOG_ERROR, "config_invalid", NULL, cerr.text, LF_STR("path", w->config_path),
                  LF_STR("reason", reason),
                  LF_STR("action", "account ownership left as it was; fix the file"));
        s->pending = 0;
        count_sync(w, SYNC_INVALID, 0);
        return 0;
    }
    rc = primary(w, s, &err);
    if (rc == 0) {
        if (!s->deferred)
            LOG_EVENT(LOG_INFO, "config_sync_deferred", NULL,
                      "connected to a standby: the config is synced once on a primary",
                      LF_STR("path", w->config_path));
        s->deferred = 1;
        s->pending = 1;
        count_sync(w, SYNC_FAILED, 0);
        ccgwconf_free(&conf);
        return 0;
    }
    s->deferred = 0;
    if (rc > 0 && rssync_run(s->pg, &conf, &st, &err) == 0) {
        char at[32];
        bucket_format_iso(st.at, at, sizeof(at));
        LOG_EVENT(LOG_INFO, "config_synced", NULL, "account ownership synced from the config",
                  LF_STR("path", w->config_path), LF_STR("reason", reason),
                  LF_INT("providers_added", st.providers_added), LF_INT("added", st.added),
                  LF_INT("moved", st.moved), LF_INT("unchanged", st.unchanged),
                  LF_INT("unconfigured", st.unconfigured), LF_STR("moves_at", at),
                  LF_BOOL("wrote", st.wrote));
        s->pending = 0;
        s->sync_failing = 0;
        count_sync(w, SYNC_OK, 1);
        ccgwconf_free(&conf);
        return 1;
    }
    /* one line per outage, not one per poll */
    if (!s->sync_failing)
        LOG_EVENT(LOG_WARN, "config_sync_failed", NULL, err.text, LF_STR("path", w->config_path),
                  LF_INT("retry_secs", w->poll_secs));
    s->sync_failing = 1;
    s->pending = 1;
    count_sync(w, SYNC_FAILED, 0);
    PQfinish(s->pg);
    s->pg = NULL;
    ccgwconf_free(&conf);
    return 0;
}

/* One look at the file; 1 when the gauge should be refreshed now. */
static int poll_config(struct rswatch *w, struct watch_state *s)
{
    struct rswatch_sig now;

    if (rswatch_sig_read(w->config_path, &now) != 0) {
        if (!s->unreadable)
            LOG_EVENT(LOG_ERROR, "config_unreadable", NULL, strerror(errno),
                      LF_STR("path", w->config_path),
                      LF_STR("action", "account ownership left as it was"));
        s->unreadable = 1;
        s->seen = now;
        return 0;
    }
    s->unreadable = 0;
    if (!s->started) {
        s->started = 1;
        s->seen = s->done = now;
        return sync_config(w, s, "start");
    }
    if (rswatch_sig_equal(&now, &s->done)) {
        s->seen = now;
        return s->pending ? sync_config(w, s, "retry") : 0;
    }
    /* changed: act once two polls agree */
    if (!rswatch_sig_equal(&now, &s->seen)) {
        s->seen = now;
        pthread_mutex_lock(&w->lock);
        w->m.in_sync = 0;
        pthread_mutex_unlock(&w->lock);
        return 0;
    }
    s->done = now;
    return sync_config(w, s, "changed");
}

static void refresh_unowned(struct rswatch *w, struct watch_state *s)
{
    struct rstime_range range;
    struct rserr err = {0};
    int64_t total, pairs, now = (int64_t)time(NULL);

    rswatch_unowned_range(now, &range);
    if (!s->pg)
        s->pg = rsdb_connect(w->conninfo, &err);
    if (s->pg && rsexport_unowned(s->pg, &range, &total, &pairs, &err) == 0) {
        pthread_mutex_lock(&w->lock);
        w->m.have_unowned = 1;
        w->m.unowned = total;
        w->m.unowned_pairs = pairs;
        w->m.unowned_at = now;
        pthread_mutex_unlock(&w->lock);
        if (total > 0 && total != s->unowned_logged)
            LOG_EVENT(LOG_WARN, "unowned_relays", NULL,
                      "relays of the last 24 hours whose account had no owner: in no export",
                      LF_INT("relays", total), LF_INT("pairs", pairs));
        else if (total == 0 && s->unowned_logged > 0)
            LOG_EVENT(LOG_INFO, "unowned_relays", NULL,
                      "no unowned relays in the last 24 hours any more", LF_INT("relays", 0),
                      LF_INT("pairs", 0));
        s->unowned_logged = total;
        s->unowned_failing = 0;
        return;
    }
    if (!s->unowned_failing)
        LOG_EVENT(LOG_WARN, "unowned_refresh_failed", NULL, err.text,
                  LF_INT("every_secs", w->unowned_every_secs));
    s->unowned_failing = 1;
    PQfinish(s->pg);
    s->pg = NULL;
}

static void *watch_main(void *arg)
{
    struct rswatch *w = arg;
    struct watch_state s = {0};

    pthread_mutex_lock(&w->lock);
    while (!w->stopping) {
        pthread_mutex_unlock(&w->lock);
        int refresh = w->config_path ? poll_config(w, &s) : 0;
        if (refresh || sys_mono_s() >= s.next_unowned) {
            refresh_unowned(w, &s);
            s.next_unowned = sys_mono_s() + w->unowned_every_secs;
        }
        pthread_mutex_lock(&w->lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += w->config_path ? w->poll_secs : 1;
        while (!w->stopping && pthread_cond_timedwait(&w->cond, &w->lock, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&w->lock);
    PQfinish(s.pg);
    return NULL;
}

struct rswatch *rswatch_start(const struct rswatch_options *o)
{
    struct rswatch *w = calloc(1, sizeof(*w));

    if (!w)
        return NULL;
    w->conninfo = strdup(o->conninfo);
    w->config_path = o->config_path ? strdup(o->config_path) : NULL;
    w->poll_secs = o->poll_secs > 0 ? o->poll_secs : 2;
    w->unowned_every_secs = o->unowned_every_secs > 0 ? o->unowned_every_secs : 60;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    if (!w->conninfo || (o->config_path && !w->config_path) ||
        pthread_create(&w->thr, NULL, watch_main, w) != 0) {
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        free(w->conninfo);
        free(w->config_path);
        free(w);
        return NULL;
    }
    return w;
}

void rswatch_stop(struct rswatch *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thr, NULL);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w->conninfo);
    free(w->config_path);
    free(w);
}

int rswatch_metrics(struct rswatch *w, prom_t *p)
{
    static const char *const results[SYNC_NRESULTS] = {"ok", "invalid", "failed"};
    struct watch_metrics copy;
    int rc = 0;

    if (!w)
        return 0;
    pthread_mutex_lock(&w->lock);
    copy = w->m;
    pthread_mutex_unlock(&w->lock);
    rc |= prom_family(p, "ccgw_relaystats_unowned_relays", PROM_GAUGE,
                      "Relays of the last 24 hours (288 five-minute buckets up to the current one) "
                      "whose account and chain had no owner at their bucket time: they are in no "
                      "provider's export.");
    if (copy.have_unowned)
        rc |= prom_sample(p, "ccgw_relaystats_unowned_relays", NULL, (double)copy.unowned);
    rc |= prom_family(p, "ccgw_relaystats_unowned_pairs", PROM_GAUGE,
                      "Account and chain pairs with unowned relays in the last 24 hours.");
    if (copy.have_unowned)
        rc |= prom_sample(p, "ccgw_relaystats_unowned_pairs", NULL, (double)copy.unowned_pairs);
    rc |= prom_family(p, "ccgw_relaystats_unowned_refresh_timestamp_seconds", PROM_GAUGE,
                      "When the unowned relays were last counted.");
    if (copy.have_unowned)
        rc |= prom_sample(p, "ccgw_relaystats_unowned_refresh_timestamp_seconds", NULL,
                          (double)copy.unowned_at);
    if (!w->config_path)
        return rc ? -1 : 0;
    rc |= prom_family(p, "ccgw_relaystats_config_in_sync", PROM_GAUGE,
                      "1 when account ownership was synced from the config file as it is now.");
    rc |= prom_sample(p, "ccgw_relaystats_config_in_sync", NULL, copy.in_sync);
    rc |= prom_family(p, "ccgw_relaystats_config_syncs_total", PROM_COUNTER,
                      "Syncs of account ownership from the config file, by result (invalid: the "
                      "file did not load; failed: the database refused or was a standby).");
    for (int i = 0; i < SYNC_NRESULTS; i++) {
        const char *labels[] = {"result", results[i], NULL};
        rc |= prom_sample(p, "ccgw_relaystats_config_syncs_total", labels, (double)copy.syncs[i]);
    }
    return rc ? -1 : 0;
}
