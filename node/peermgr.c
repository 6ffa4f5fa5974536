/* The peer thread and what it knows: start and stop, the poll() loop that
 * drives connections (peerconn.h), messages (peermsg.h) and sync
 * (peersync.h), and the counters and snapshot read by health, RPC and
 * metrics. */
#include "peermgr.h"

#include <openssl/rand.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chain.h"
#include "log.h"
#include "node.h"
#include "peerconn.h"
#include "peermsg.h"
#include "peermgr-types.h"
#include "peerscore.h"
#include "peersync.h"
#include "sys.h"

#define TICK_MS 50

static const char *const state_names[] = {"waiting", "connecting",   "handshake", "connected",
                                          "gave_up", "disconnected", "closed"};

static void sweep_closed(struct node_peermgr *pm)
{
    size_t k = 0;
    for (size_t i = 0; i < pm->npeers; i++) {
        struct peer *p = pm->peers[i];
        if (p->state == PS_CLOSED && !p->configured) {
            node_peerconn_reset(p);
            free(p);
        } else {
            pm->peers[k++] = p;
        }
    }
    pm->npeers = k;
}

static void *peer_thread(void *arg)
{
    struct node_peermgr *pm = arg;
    struct pollfd *fds = NULL;
    struct peer **owners = NULL;
    size_t fcap = 0;

    while (!atomic_load(&pm->stop)) {
        double now = sys_mono_s();
        size_t nf = 0;

        pthread_mutex_lock(&pm->lock);
        node_peermsg_work_done(pm, now);
        node_peerconn_run_queue(pm, now);
        for (size_t i = 0; i < pm->npeers; i++)
            node_peerconn_housekeeping(pm, pm->peers[i], now);
        node_peersync_announce(pm);
        node_peersync_next(pm, now);
        node_peersync_update(pm);
        sweep_closed(pm);
        if (fcap < pm->npeers + 2) {
            size_t cap = pm->npeers + 16;
            struct pollfd *nfds = realloc(fds, cap * sizeof(*nfds));
            if (nfds)
                fds = nfds;
            struct peer **nown = realloc(owners, cap * sizeof(*nown));
            if (nown)
                owners = nown;
            if (nfds && nown)
                fcap = cap;
        }
        /* The chain worker's results wake the loop (no owner, not listen_fd). */
        if (fcap > 0) {
            fds[nf] = (struct pollfd){.fd = node_peerwork_fd(pm->work), .events = POLLIN};
            owners[nf++] = NULL;
        }
        if (pm->listen_fd >= 0 && fcap > 1) {
            fds[nf] = (struct pollfd){.fd = pm->listen_fd, .events = POLLIN};
            owners[nf++] = NULL;
        }
        for (size_t i = 0; i < pm->npeers && nf < fcap; i++) {
            struct peer *p = pm->peers[i];
            if (p->fd < 0)
                continue;
            short ev = POLLIN;
            if (p->state == PS_CONNECTING || p->wpos < p->wbuf.len)
                ev |= POLLOUT;
            fds[nf] = (struct pollfd){.fd = p->fd, .events = ev};
            owners[nf++] = p;
        }
        pthread_mutex_unlock(&pm->lock);

        int rc = poll(fds, nf, TICK_MS);
        if (rc <= 0)
            continue;
        now = sys_mono_s();
        pthread_mutex_lock(&pm->lock);
        for (size_t i = 0; i < nf; i++) {
            struct peer *p = owners[i];
            short re = fds[i].revents;
            if (!re)
                continue;
            if (!p) {
                if (fds[i].fd == pm->listen_fd)
                    node_peerconn_accept(pm, now);
                else
                    node_peermsg_work_done(pm, now);
                continue;
            }
            if (p->fd != fds[i].fd)
                continue; /* closed and maybe reopened during this tick */
            if (p->state == PS_CONNECTING) {
                if (re & (POLLOUT | POLLERR | POLLHUP))
                    node_peerconn_connected(pm, p, now);
                continue;
            }
            if (re & (POLLIN | POLLHUP | POLLERR))
                node_peerconn_read(pm, p, now);
            if (p->fd >= 0 && p->wpos < p->wbuf.len)
                node_peerconn_write(pm, p, now);
        }
        /* Flush what the handlers queued without waiting for the next tick. */
        for (size_t i = 0; i < pm->npeers; i++) {
            struct peer *p = pm->peers[i];
            if (p->fd >= 0 && p->state != PS_CONNECTING && p->wpos < p->wbuf.len)
                node_peerconn_write(pm, p, now);
        }
        pthread_mutex_unlock(&pm->lock);
    }
    free(fds);
    free(owners);
    return NULL;
}

struct node_peermgr *node_peermgr_start(struct node *n, char *err, size_t errlen)
{
    const struct node_config *cfg = n->cfg;
    struct node_peermgr *pm = calloc(1, sizeof(*pm));
    struct node_block_meta genesis;

    if (!pm) {
        SYS_ERR("out of memory");
        return NULL;
    }
    pm->n = n;
    pm->listen_fd = -1;
    pm->next_id = 1;
    pthread_mutex_init(&pm->lock, NULL);
    atomic_store(&pm->best_height, -1);
    atomic_store(&pm->sync_start, -1);
    atomic_store(&pm->syncing, 1);
    if (RAND_bytes((unsigned char *)&pm->nonce, sizeof(pm->nonce)) != 1 ||
        RAND_bytes((unsigned char *)&pm->rng, sizeof(pm->rng)) != 1) {
        SYS_ERR("no randomness from libcrypto");
        goto fail;
    }
    pm->rng |= 1;
    snprintf(pm->chain_name, sizeof(pm->chain_name), "%s-%lld",
             cfg->node.flavour == NODE_FLAVOUR_EVM ? "evm" : "bitcoin",
             (long long)cfg->node.chain_id);
    if (node_chain_get(n->chain, 0, &genesis) != 0) {
        SYS_ERR("chain has no genesis block");
        goto fail;
    }
    memcpy(pm->genesis, genesis.hash, 32);
    pm->announced = node_chain_height(n->chain);
    atomic_store(&pm->sync_start, pm->announced);
    if (cfg->network.npeers == 0) {
        /* Nobody to catch up with: a single node is ready at once. */
        pm->initial_done = 1;
        atomic_store(&pm->syncing, 0);
        atomic_store(&pm->sync_start, -1);
    }
    for (size_t i = 0; i < cfg->network.npeers; i++) {
        struct peer *p = node_peerconn_add(pm, cfg->network.peers[i], 0);
        if (!p) {
            SYS_ERR("out of memory");
            goto fail;
        }
        snprintf(p->judge, sizeof(p->judge), "%s", p->addr);
        p->next_attempt = sys_mono_s();
    }
    pm->work = node_peerwork_start(n->chain, n->mempool, err, errlen);
    if (!pm->work)
        goto fail;
    if (cfg->network.listen) {
        pm->listen_fd = node_peerconn_listen(cfg->network.listen, err, errlen);
        if (pm->listen_fd < 0)
            goto fail;
    }
    if (pthread_create(&pm->thread, NULL, peer_thread, pm) != 0) {
        SYS_ERR("cannot start the peer thread");
        goto fail;
    }
    pm->started = 1;
    LOG_EVENT(LOG_INFO, "peers_start", NULL, NULL,
              LF_STR("listen", cfg->network.listen ? cfg->network.listen : "-"),
              LF_INT("configured", cfg->network.npeers), LF_STR("chain", pm->chain_name));
    return pm;
fail:
    node_peermgr_stop(pm);
    return NULL;
}

void node_peermgr_stop(struct node_peermgr *pm)
{
    if (!pm)
        return;
    if (pm->started) {
        atomic_store(&pm->stop, 1);
        pthread_join(pm->thread, NULL);
    }
    node_peerwork_stop(pm->work);
    for (size_t i = 0; i < pm->npeers; i++) {
        node_peerconn_reset(pm->peers[i]);
        free(pm->peers[i]);
    }
    free(pm->peers);
    if (pm->listen_fd >= 0)
        close(pm->listen_fd);
    pthread_mutex_destroy(&pm->lock);
    free(pm);
}

int node_peermgr_syncing(const struct node_peermgr *pm)
{
    return pm ? atomic_load(&((struct node_peermgr *)pm)->syncing) : 0;
}

int64_t node_peermgr_best_height(const struct node_peermgr *pm)
{
    return pm ? atomic_load(&((struct node_peermgr *)pm)->best_height) : -1;
}

int64_t node_peermgr_sync_start(const struct node_peermgr *pm)
{
    return pm ? atomic_load(&((struct node_peermgr *)pm)->sync_start) : -1;
}

void node_peermgr_counts(const struct node_peermgr *pm, size_t *in, size_t *out)
{
    struct node_peermgr *m = (struct node_peermgr *)pm;
    *in = m ? atomic_load(&m->connected_in) : 0;
    *out = m ? atomic_load(&m->connected_out) : 0;
}

const char *node_peermgr_reject_name(size_t reason)
{
    return node_peerscore_reject_name(reason);
}

void node_peermgr_stats(const struct node_peermgr *pm, struct node_peermgr_stats *out)
{
    struct node_peermgr *m = (struct node_peermgr *)pm;
    memset(out, 0, sizeof(*out));
    out->best_height = node_peermgr_best_height(pm);
    out->syncing = node_peermgr_syncing(pm);
    node_peermgr_counts(pm, &out->connected_in, &out->connected_out);
    if (!m)
        return;
    out->configured = m->n->cfg->network.npeers;
    out->reconnect_attempts = atomic_load(&m->reconnect_attempts);
    out->give_ups = atomic_load(&m->give_ups);
    out->bans = atomic_load(&m->bans_total);
    out->blocks_received = atomic_load(&m->blocks_received);
    out->blocks_sent = atomic_load(&m->blocks_sent);
    for (size_t i = 0; i < RJ_COUNT; i++)
        out->rejected[i] = atomic_load(&m->rejected[i]);
}

static void peer_view(struct node_peermgr *pm, const struct peer *p, double now,
                      struct node_peer_view *v)
{
    double banned = node_peerscore_banned_until(pm, p->judge, now);

    memset(v, 0, sizeof(*v));
    v->id = p->id;
    snprintf(v->addr, sizeof(v->addr), "%s", p->addr);
    v->inbound = p->inbound;
    v->conntime = p->handshaken ? p->conntime : 0;
    v->lastsend = p->lastsend;
    v->lastrecv = p->lastrecv;
    v->bytes_sent = p->bytes_sent;
    v->bytes_recv = p->bytes_recv;
    v->version = p->version;
    snprintf(v->subver, sizeof(v->subver), "%s", p->subver);
    v->startingheight = p->startingheight;
    v->synced_blocks = p->synced_blocks;
    v->best_height = p->best_height;
    v->state = state_names[p->state];
    v->attempts = p->attempts;
    v->next_attempt = p->state == PS_WAITING ? p->next_attempt_wall : 0;
    v->score = node_peerscore_quality(p, now);
    v->offences = p->offences;
    v->banned_until = banned > now ? (int64_t)time(NULL) + (int64_t)(banned - now) : 0;
    v->pingtime = p->pingtime;
    v->minping = p->minping;
    v->forked = p->forked;
}

int node_peermgr_snapshot(struct node_peermgr *pm, struct node_peer_view **out, size_t *n)
{
    double now = sys_mono_s();

    *out = NULL;
    *n = 0;
    if (!pm)
        return 0;
    pthread_mutex_lock(&pm->lock);
    if (pm->npeers > 0) {
        *out = calloc(pm->npeers, sizeof(**out));
        if (!*out) {
            pthread_mutex_unlock(&pm->lock);
            return -1;
        }
        for (size_t i = 0; i < pm->npeers; i++)
            peer_view(pm, pm->peers[i], now, &(*out)[i]);
        *n = pm->npeers;
    }
    pthread_mutex_unlock(&pm->lock);
    return 0;
}
