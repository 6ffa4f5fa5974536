/* The disk monitor thread (see disk.h). */
#include "disk.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "chain.h"
#include "codec.h"
#include "sys.h"
#include "config.h"
#include "log.h"
#include "prune.h"

struct node_disk {
    struct node_chain *chain;
    const struct node_config *cfg;
    struct node_prune_limits limits;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int stop; /* under mu */
    int was_ok;
    int blocked_logged; /* "cannot get under the threshold" said once per episode */
    _Atomic uint64_t free_bytes, total_bytes, checks, prune_failures;
};

void node_disk_check(struct node_disk *d)
{
    struct statvfs vfs;
    char why[512];
    int ok = node_chain_check_storage(d->chain, why, sizeof(why)) == 0;

    if (ok != d->was_ok) {
        if (ok)
            log_msg(LOG_INFO, "storage_available", "data dir usable again");
        else
            log_msg(LOG_ERROR, "storage_unavailable", "%s (%s)",
                    node_chain_storage_reason(d->chain), why);
        d->was_ok = ok;
    }
    if (statvfs(d->cfg->node.data_dir, &vfs) == 0) {
        atomic_store(&d->free_bytes, (uint64_t)vfs.f_bavail * vfs.f_frsize);
        atomic_store(&d->total_bytes, (uint64_t)vfs.f_blocks * vfs.f_frsize);
    }
    atomic_fetch_add(&d->checks, 1);
    if (!ok || !d->limits.enabled || node_chain_size_bytes(d->chain) <= d->limits.threshold) {
        d->blocked_logged = 0;
        return;
    }
    struct node_prune_plan plan;
    if (node_chain_prune(d->chain, d->limits.target, d->limits.keep, INT64_MAX, &plan, why,
                         sizeof(why)) != 0) {
        atomic_fetch_add(&d->prune_failures, 1);
        log_msg(LOG_ERROR, "prune_failed", "%s", why);
        return;
    }
    uint64_t own = node_chain_size_bytes(d->chain);
    if (own > d->limits.threshold && !d->blocked_logged) {
        /* Everything prunable is gone: the kept blocks alone exceed it. */
        LOG_EVENT(LOG_WARN, "prune_limited", NULL,
                  "own storage stays above the pruning threshold: min_blocks_kept holds it",
                  LF_INT("size_bytes", own), LF_INT("threshold_bytes", d->limits.threshold),
                  LF_INT("min_blocks_kept", d->limits.keep));
        d->blocked_logged = 1;
    }
}

static void *run(void *arg)
{
    struct node_disk *d = arg;
    double interval = d->cfg->storage.check_interval_secs;

    pthread_mutex_lock(&d->mu);
    while (!d->stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        long long ns = (long long)until.tv_nsec + (long long)(interval * 1e9);
        until.tv_sec += (time_t)(ns / 1000000000LL);
        until.tv_nsec = (long)(ns % 1000000000LL);
        int r = 0;
        while (!d->stop && r != ETIMEDOUT)
            r = pthread_cond_timedwait(&d->cond, &d->mu, &until);
        if (d->stop)
            break;
        pthread_mutex_unlock(&d->mu);
        node_disk_check(d);
        pthread_mutex_lock(&d->mu);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

struct node_disk *node_disk_start(struct node_chain *c, const struct node_config *cfg, char *err,
                                  size_t errlen)
{
    struct node_disk *d = calloc(1, sizeof(*d));
    pthread_condattr_t attr;
    int rc;

    if (!d) {
        sys_set_err(err, errlen, "disk monitor: out of memory");
        return NULL;
    }
    d->chain = c;
    d->cfg = cfg;
    d->was_ok = 1;
    node_prune_limits_of(cfg, &d->limits);
    node_chain_set_min_free(c, (uint64_t)cfg->storage.min_free_bytes);
    pthread_mutex_init(&d->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cond, &attr);
    pthread_condattr_destroy(&attr);
    node_disk_check(d);
    rc = pthread_create(&d->thread, NULL, run, d);
    if (rc != 0) {
        sys_set_err(err, errlen, "disk monitor: %s", strerror(rc));
        node_disk_stop(d);
        return NULL;
    }
    d->started = 1;
    return d;
}

void node_disk_stop(struct node_disk *d)
{
    if (!d)
        return;
    if (d->started) {
        pthread_mutex_lock(&d->mu);
        d->stop = 1;
        pthread_cond_signal(&d->cond);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->thread, NULL);
    }
    pthread_cond_destroy(&d->cond);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

void node_disk_stats_get(const struct node_disk *d, struct node_disk_stats *out)
{
    struct node_disk *m = (struct node_disk *)d;
    out->free_bytes = atomic_load(&m->free_bytes);
    out->total_bytes = atomic_load(&m->total_bytes);
    out->checks = atomic_load(&m->checks);
    out->prune_failures = atomic_load(&m->prune_failures);
}

#define FAM(name, type, help) (rc |= prom_family(p, name, type, help))
#define SAMPLE(name, labels, v) (rc |= prom_sample(p, name, labels, (double)(v)))

int node_disk_metrics(const struct node_disk *d, struct node_chain *c,
                      const struct node_config *cfg, prom_t *p)
{
    struct node_disk_stats ds = {0};
    struct node_prune_limits l;
    struct node_chain_stats *cs = c ? node_chain_stats(c) : NULL;
    int rc = 0;

    if (d)
        node_disk_stats_get(d, &ds);
    node_prune_limits_of(cfg, &l);
    FAM("ccnode_storage_bytes", PROM_GAUGE,
        "The node's own storage: block files, headers index, chainstate.");
    SAMPLE("ccnode_storage_bytes", NULL, c ? node_chain_size_bytes(c) : 0);
    FAM("ccnode_disk_free_bytes", PROM_GAUGE, "Bytes available on the data dir's file system.");
    SAMPLE("ccnode_disk_free_bytes", NULL, ds.free_bytes);
    FAM("ccnode_disk_total_bytes", PROM_GAUGE, "Size of the data dir's file system.");
    SAMPLE("ccnode_disk_total_bytes", NULL, ds.total_bytes);
    FAM("ccnode_disk_checks_total", PROM_COUNTER, "Disk monitor rounds.");
    SAMPLE("ccnode_disk_checks_total", NULL, ds.checks);
    FAM("ccnode_pruning_enabled", PROM_GAUGE, "1 unless storage.pruning_mode is disabled.");
    SAMPLE("ccnode_pruning_enabled", NULL, l.enabled);
    FAM("ccnode_prune_threshold_bytes", PROM_GAUGE, "Own storage above which pruning starts.");
    SAMPLE("ccnode_prune_threshold_bytes", NULL, l.enabled ? l.threshold : 0);
    FAM("ccnode_prune_target_bytes", PROM_GAUGE, "Own storage pruning brings it down to.");
    SAMPLE("ccnode_prune_target_bytes", NULL, l.enabled ? l.target : 0);
    FAM("ccnode_pruned_height", PROM_GAUGE,
        "First block height whose data is stored (getblockchaininfo pruneheight); 0 when "
        "nothing is pruned.");
    SAMPLE("ccnode_pruned_height", NULL, c ? node_chain_prune_height(c) : 0);
    FAM("ccnode_prune_runs_total", PROM_COUNTER, "Prunes that deleted block files.");
    SAMPLE("ccnode_prune_runs_total", NULL, cs ? atomic_load(&cs->prune_runs) : 0);
    FAM("ccnode_pruned_blocks_total", PROM_COUNTER, "Block files deleted by pruning.");
    SAMPLE("ccnode_pruned_blocks_total", NULL, cs ? atomic_load(&cs->pruned_blocks) : 0);
    FAM("ccnode_pruned_bytes_total", PROM_COUNTER, "Bytes freed by pruning.");
    SAMPLE("ccnode_pruned_bytes_total", NULL, cs ? atomic_load(&cs->pruned_bytes) : 0);
    FAM("ccnode_prune_failures_total", PROM_COUNTER,
        "Automatic prunes that failed (the prune height could not be written).");
    SAMPLE("ccnode_prune_failures_total", NULL, ds.prune_failures);
    return rc ? -1 : 0;
}
