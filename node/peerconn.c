/* Peer sockets: connecting, reconnecting, accepting, reading, writing, timeouts. */
#include "peerconn.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ccgwconf.h"
#include "log.h"
#include "metrics.h"
#include "node.h"
#include "peermsg.h"
#include "peerscore.h"
#include "sys.h"

#define CONNECT_TIMEOUT 3.0
#define HANDSHAKE_TIMEOUT 5.0
#define PING_INTERVAL 5.0
#define IDLE_TIMEOUT 30.0
#define MAX_CONNECTING 8
#define SEND_MAX (64u << 20) /* a peer that does not read is dropped */
#define READ_CHUNK 65536

/* xorshift64*: jitter only, seeded from libcrypto. */
static double rng_uniform(struct node_peermgr *pm)
{
    pm->rng ^= pm->rng >> 12;
    pm->rng ^= pm->rng << 25;
    pm->rng ^= pm->rng >> 27;
    return (double)((pm->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

struct peer *node_peerconn_add(struct node_peermgr *pm, const char *addr, int inbound)
{
    struct peer *p;
    if (pm->npeers == pm->cap) {
        size_t cap = pm->cap ? pm->cap * 2 : 16;
        struct peer **v = realloc(pm->peers, cap * sizeof(*v));
        if (!v)
            return NULL;
        pm->peers = v;
        pm->cap = cap;
    }
    p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->id = pm->next_id++;
    p->fd = -1;
    p->inbound = inbound;
    p->configured = !inbound;
    snprintf(p->addr, sizeof(p->addr), "%s", addr);
    p->pingtime = p->minping = -1;
    p->startingheight = p->best_height = p->synced_blocks = -1;
    p->req_end = -1;
    pm->peers[pm->npeers++] = p;
    return p;
}

void node_peerconn_reset(struct peer *p)
{
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    node_codec_buf_free(&p->rbuf);
    node_codec_buf_free(&p->wbuf);
    p->wpos = 0;
    p->closing = 0;
    p->closing_at = 0;
    p->handshaken = 0;
    p->session = 0;
    p->ping_nonce = 0;
    p->req_end = -1;
    p->forked = 0;
    p->no_blocks = 0;
}

static void set_nonblock(int fd)
{
    int one = 1;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Start a non-blocking connect to a configured peer. 0 (state CONNECTING),
 * or -1 with the reason in `why`. */
static int start_connect(struct peer *p, double now, char *why, size_t whylen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV},
                    *res = NULL;
    char host[256], port[8];
    uint16_t portnum;
    int fd = -1, rc;

    p->state = PS_CONNECTING;
    p->since = now;
    LOG_EVENT(LOG_INFO, "peer_connect", NULL, NULL, LF_STR("peer", p->addr),
              LF_INT("attempt", p->attempts + 1));
    if (ccgwconf_split_address(p->addr, host, sizeof(host), &portnum) != 0) {
        snprintf(why, whylen, "not host:port");
        return -1;
    }
    snprintf(port, sizeof(port), "%u", portnum);
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(why, whylen, "%s", gai_strerror(rc));
        return -1;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    set_nonblock(fd);
    if (connect(fd, res->ai_addr, res->ai_addrlen) != 0 && errno != EINPROGRESS)
        goto fail;
    freeaddrinfo(res);
    p->fd = fd;
    return 0;
fail:
    snprintf(why, whylen, "%s", strerror(errno));
    freeaddrinfo(res);
    if (fd >= 0)
        close(fd);
    return -1;
}

/* A connection is over: account for it and, for configured peers, schedule
 * the next attempt or give up. */
static void connection_over(struct node_peermgr *pm, struct peer *p, const char *reason, double now)
{
    const struct node_config *cfg = pm->n->cfg;
    int was_connected = p->state == PS_CONNECTED;

    if (p->rbuf.len > 0 && !p->closing)
        node_peerscore_offence(pm, p, RJ_TRUNCATED, "connection closed inside a frame", 1);
    if (was_connected) {
        p->uptime += now - p->since;
        if (p->inbound)
            atomic_fetch_sub(&pm->connected_in, 1);
        else
            atomic_fetch_sub(&pm->connected_out, 1);
        LOG_EVENT(LOG_INFO, "peer_disconnected", NULL, reason, LF_STR("peer", p->addr),
                  LF_INT("id", p->id));
    } else if (p->configured) {
        /* Every connection that ends before its handshake is a failed attempt. */
        p->failures++;
        p->attempts++;
        LOG_EVENT(LOG_WARN, "peer_connect_failed", NULL, reason, LF_STR("peer", p->addr),
                  LF_INT("attempt", p->attempts));
    }
    if (pm->sync_peer == p)
        pm->sync_peer = NULL;
    node_peerconn_reset(p);
    if (!p->configured) {
        p->state = PS_CLOSED;
        return;
    }
    if (!cfg->network.reconnect_enabled) {
        p->state = PS_DISCONNECTED;
        LOG_EVENT(LOG_INFO, "peer_not_retried", NULL, "reconnect_enabled is false",
                  LF_STR("peer", p->addr));
        return;
    }
    if ((int64_t)p->attempts >= cfg->network.reconnect_max_retries) {
        p->state = PS_GAVE_UP;
        p->next_attempt_wall = 0;
        atomic_fetch_add(&pm->give_ups, 1);
        LOG_EVENT(LOG_WARN, "peer_give_up", NULL, NULL, LF_STR("peer", p->addr),
                  LF_INT("attempts", p->attempts),
                  LF_INT("max_retries", cfg->network.reconnect_max_retries));
        return;
    }
    double delay =
        node_peer_backoff(cfg->network.reconnect_initial_delay_secs,
                          cfg->network.reconnect_max_delay_secs, p->attempts, rng_uniform(pm));
    double until = node_peerscore_banned_until(pm, p->judge, now);
    p->state = PS_WAITING;
    p->next_attempt = now + delay;
    if (until > p->next_attempt)
        p->next_attempt = until;
    p->next_attempt_wall = (int64_t)time(NULL) + (int64_t)(p->next_attempt - now + 0.999);
    LOG_EVENT(LOG_INFO, "peer_retry_scheduled", NULL, NULL, LF_STR("peer", p->addr),
              LF_INT("attempt", p->attempts + 1), LF_DBL("delay_ms", delay * 1000.0),
              LF_DBL("wait_ms", (p->next_attempt - now) * 1000.0),
              LF_INT("max_retries", cfg->network.reconnect_max_retries));
}

static int cmp_due(const void *a, const void *b, void *arg)
{
    const struct peer *x = *(struct peer *const *)a, *y = *(struct peer *const *)b;
    double now = *(const double *)arg;
    return node_peer_queue_cmp(node_peerscore_quality(x, now), x->next_attempt,
                               node_peerscore_quality(y, now), y->next_attempt);
}

/* The reconnection queue: start the due configured peers, best first. */
void node_peerconn_run_queue(struct node_peermgr *pm, double now)
{
    struct peer *due[MAX_CONNECTING];
    size_t ndue = 0, connecting = 0, busy = 0;

    for (size_t i = 0; i < pm->npeers; i++) {
        struct peer *p = pm->peers[i];
        if (p->state == PS_CONNECTING)
            connecting++;
        if (p->state == PS_CONNECTING || p->state == PS_HANDSHAKE || p->state == PS_CONNECTED)
            busy++;
    }
    for (size_t i = 0; i < pm->npeers; i++) {
        struct peer *p = pm->peers[i];
        if (p->state != PS_WAITING || p->next_attempt > now)
            continue;
        if (ndue < MAX_CONNECTING) {
            due[ndue++] = p;
        } else {
            /* Keep the best MAX_CONNECTING: replace the worst when better. */
            size_t worst = 0;
            for (size_t k = 1; k < ndue; k++)
                if (cmp_due(&due[k], &due[worst], &now) > 0)
                    worst = k;
            if (cmp_due(&p, &due[worst], &now) < 0)
                due[worst] = p;
        }
    }
    qsort_r(due, ndue, sizeof(due[0]), cmp_due, &now);
    for (size_t i = 0; i < ndue && connecting < MAX_CONNECTING; i++) {
        struct peer *p = due[i];
        if ((int64_t)busy >= pm->n->cfg->network.max_peers)
            break;
        if (node_peerscore_banned_until(pm, p->judge, now) > now)
            continue;
        char why[256];
        if (p->attempts > 0 || p->failures > 0 || p->uptime > 0)
            atomic_fetch_add(&pm->reconnect_attempts, 1);
        connecting++;
        busy++;
        if (start_connect(p, now, why, sizeof(why)) != 0)
            connection_over(pm, p, why, now);
    }
}

void node_peerconn_accept(struct node_peermgr *pm, double now)
{
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        char host[NI_MAXHOST], serv[NI_MAXSERV], addr[96];
        int fd = accept4(pm->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        size_t busy = 0;
        if (fd < 0)
            return;
        if (getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), serv, sizeof(serv),
                        NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
            close(fd);
            continue;
        }
        snprintf(addr, sizeof(addr), strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, serv);
        for (size_t i = 0; i < pm->npeers; i++)
            if (pm->peers[i]->fd >= 0)
                busy++;
        if (node_peerscore_banned_until(pm, host, now) > now ||
            (int64_t)busy >= pm->n->cfg->network.max_peers) {
            LOG_EVENT(LOG_INFO, "peer_refused", NULL, NULL, LF_STR("peer", addr),
                      LF_STR("reason", busy >= (size_t)pm->n->cfg->network.max_peers ? "max_peers"
                                                                                     : "banned"));
            close(fd);
            continue;
        }
        struct peer *p = node_peerconn_add(pm, addr, 1);
        if (!p) {
            log_msg(LOG_ERROR, "peer_refused", "%s: out of memory", addr);
            close(fd);
            continue;
        }
        snprintf(p->judge, sizeof(p->judge), "%s", host);
        set_nonblock(fd);
        p->fd = fd;
        p->state = PS_HANDSHAKE;
        p->since = now;
        LOG_EVENT(LOG_DEBUG, "peer_accepted", NULL, NULL, LF_STR("peer", addr),
                  LF_INT("id", p->id));
    }
}

void node_peerconn_read(struct node_peermgr *pm, struct peer *p, double now)
{
    uint8_t chunk[READ_CHUNK];
    for (int i = 0; i < 64; i++) {
        ssize_t r = recv(p->fd, chunk, sizeof(chunk), 0);
        if (r > 0) {
            if (node_codec_buf_put(&p->rbuf, chunk, (size_t)r) != 0) {
                log_msg(LOG_ERROR, "peer_recv_failed", "%s: out of memory", p->addr);
                p->closing = 1;
                p->rbuf.len = 0;
                return;
            }
            p->bytes_recv += (uint64_t)r;
            p->lastrecv = (int64_t)time(NULL);
            node_metrics_bytes(pm->n->metrics, (uint64_t)r, 0);
            node_peermsg_process(pm, p, now);
            if (p->closing)
                return;
            continue;
        }
        if (r == 0) {
            connection_over(pm, p, "closed by peer", now);
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            connection_over(pm, p, strerror(errno), now);
        return;
    }
}

void node_peerconn_write(struct node_peermgr *pm, struct peer *p, double now)
{
    while (p->wpos < p->wbuf.len) {
        ssize_t w = send(p->fd, p->wbuf.data + p->wpos, p->wbuf.len - p->wpos, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                p->closing = 1;
                p->wpos = p->wbuf.len;
                connection_over(pm, p, strerror(errno), now);
            }
            return;
        }
        p->wpos += (size_t)w;
        p->bytes_sent += (uint64_t)w;
        p->lastsend = (int64_t)time(NULL);
        node_metrics_bytes(pm->n->metrics, 0, (uint64_t)w);
    }
    p->wbuf.len = p->wpos = 0;
}

void node_peerconn_connected(struct node_peermgr *pm, struct peer *p, double now)
{
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
        connection_over(pm, p, strerror(soerr ? soerr : errno), now);
        return;
    }
    p->state = PS_HANDSHAKE;
    p->since = now;
    node_peermsg_send_hello(pm, p, NODE_PEER_HELLO);
}

/* Timeouts, pings, the close of connections marked closing. */
void node_peerconn_housekeeping(struct node_peermgr *pm, struct peer *p, double now)
{
    if (p->fd < 0)
        return;
    if (p->closing && !p->closing_at)
        p->closing_at = now;
    /* A peer that does not read its REJECT is closed anyway after a while. */
    if (p->closing && (p->wpos >= p->wbuf.len || now - p->closing_at > 2.0)) {
        connection_over(pm, p, "closed", now);
        return;
    }
    if (p->state == PS_CONNECTING && now - p->since > CONNECT_TIMEOUT) {
        connection_over(pm, p, "connect timeout", now);
    } else if (p->state == PS_HANDSHAKE && now - p->since > HANDSHAKE_TIMEOUT) {
        connection_over(pm, p, "handshake timeout", now);
    } else if (p->state == PS_CONNECTED) {
        double last = p->lastrecv ? (double)(time(NULL) - p->lastrecv) : now - p->since;
        if (last > IDLE_TIMEOUT) {
            connection_over(pm, p, "idle timeout", now);
            return;
        }
        if (!p->ping_nonce && now - p->ping_sent > PING_INTERVAL) {
            p->ping_nonce = pm->rng | 1;
            rng_uniform(pm);
            p->ping_sent = now;
            node_peermsg_send_nonce(p, NODE_PEER_PING, p->ping_nonce);
        }
        if (p->wbuf.len - p->wpos > SEND_MAX)
            connection_over(pm, p, "send buffer full", now);
    }
}

int node_peerconn_listen(const char *listen_addr, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *res = NULL;
    char host[256], port[8];
    uint16_t portnum;
    int fd = -1, one = 1, rc;

    if (ccgwconf_split_address(listen_addr, host, sizeof(host), &portnum) != 0)
        return SYS_ERR("network.listen: expected host:port, got \"%s\"", listen_addr);
    snprintf(port, sizeof(port), "%u", portnum);
    rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (rc != 0)
        return SYS_ERR("network.listen %s: %s", listen_addr, gai_strerror(rc));
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 64) != 0) {
        SYS_ERR("network.listen %s: %s", listen_addr, strerror(errno));
        goto fail;
    }
    freeaddrinfo(res);
    return fd;
fail:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    return -1;
}
