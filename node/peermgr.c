/* Peer connections, reconnection queue, misbehaviour and block sync; what
 * it knows is read with node_peermgr_stats() and node_peermgr_snapshot(). */
#include "peermgr.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/rand.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "chain.h"
#include "conf.h"
#include "log.h"
#include "metrics.h"
#include "node.h"
#include "peer.h"
#include "sys.h"

#define TICK_MS 50
#define CONNECT_TIMEOUT 3.0
#define HANDSHAKE_TIMEOUT 5.0
#define PING_INTERVAL 5.0
#define IDLE_TIMEOUT 30.0
#define STALL_TIMEOUT 5.0
#define SYNC_BATCH 100
#define MAX_CONNECTING 8
#define SEND_HIGH_WATER (8u << 20) /* GETBLOCKS answers stop queueing here */
#define SEND_MAX (64u << 20)       /* a peer that does not read is dropped */
#define READ_CHUNK 65536
#define MAX_BANS 256

enum peer_state {
    PS_WAITING = 0, /* configured, waiting for its next attempt */
    PS_CONNECTING,  /* non-blocking connect in progress */
    PS_HANDSHAKE,   /* connected, HELLO exchange not done */
    PS_CONNECTED,
    PS_GAVE_UP,      /* reconnect_max_retries failures in a row */
    PS_DISCONNECTED, /* reconnect disabled: not retried */
    PS_CLOSED,       /* inbound connection over: removed at the end of the tick */
};

static const char *const state_names[] = {"waiting", "connecting",   "handshake", "connected",
                                          "gave_up", "disconnected", "closed"};

/* Reasons of ccnode_peer_rejected_messages_total. */
enum reject_reason {
    RJ_BAD_MAGIC = 0,
    RJ_BAD_TYPE,
    RJ_OVERSIZE,
    RJ_BAD_CHECKSUM,
    RJ_TRUNCATED,
    RJ_MALFORMED,
    RJ_UNEXPECTED,
    RJ_WRONG_CHAIN,
    RJ_BAD_BLOCK,
    RJ_BAD_PREV,
    RJ_COUNT,
};

_Static_assert(RJ_COUNT == NODE_PEERMGR_REJECT_REASONS, "reject reasons of peermgr.h");

static const char *const reject_names[RJ_COUNT] = {
    "bad_magic", "bad_type",   "oversize",    "bad_checksum", "truncated",
    "malformed", "unexpected", "wrong_chain", "bad_block",    "bad_prev"};

struct peer {
    unsigned id;
    char addr[96];  /* "host:port" as configured, or the inbound "ip:port" */
    char judge[96]; /* ban key: configured address, or inbound IP */
    int inbound, configured;
    int fd;
    int state;   /* enum peer_state */
    int closing; /* close once the send buffer is flushed */
    double closing_at;
    struct node_buf rbuf, wbuf;
    size_t wpos;
    /* connection */
    double since;                         /* monotonic: connect start or handshake */
    int64_t conntime, lastsend, lastrecv; /* epoch seconds */
    uint64_t bytes_sent, bytes_recv;
    double ping_sent;
    uint64_t ping_nonce;
    double pingtime, minping; /* seconds, -1 unknown */
    int handshaken;
    uint32_t version;
    char subver[NODE_PEER_MAX_STR + 1];
    int64_t startingheight, best_height, synced_blocks;
    int forked;    /* its blocks do not extend our tip: not synced from */
    int no_blocks; /* refused our GETBLOCKS (pruned): not synced from */
    /* sync */
    int64_t req_end; /* last height of the GETBLOCKS in flight, -1 none */
    double req_deadline;
    /* reconnection (configured peers) */
    unsigned attempts; /* retries since the last handshake */
    double next_attempt;
    int64_t next_attempt_wall;
    unsigned failures, offences;
    double uptime; /* seconds connected in earlier sessions */
};

struct ban {
    char judge[96];
    unsigned offences;
    double until; /* monotonic; 0 not banned */
};

struct node_peermgr {
    struct node *n;
    pthread_t thread;
    int started;
    atomic_int stop;
    pthread_mutex_t lock; /* the peer table, bans */
    int listen_fd;
    struct peer **peers;
    size_t npeers, cap;
    unsigned next_id;
    uint64_t nonce; /* ours, in HELLO */
    uint64_t rng;
    char chain_name[NODE_PEER_MAX_STR + 1];
    uint8_t genesis[32];
    int64_t announced;      /* our height last announced */
    struct peer *sync_peer; /* the peer a GETBLOCKS is in flight to */
    int initial_done;
    struct ban bans[MAX_BANS];
    size_t nbans;
    /* read lock-free by health, RPC, metrics */
    _Atomic int syncing;
    _Atomic int64_t best_height, sync_start;
    _Atomic size_t connected_in, connected_out;
    _Atomic uint64_t reconnect_attempts, give_ups, bans_total, blocks_received, blocks_sent;
    _Atomic uint64_t rejected[RJ_COUNT];
};

/* xorshift64*: jitter only, seeded from libcrypto. */
static double rng_uniform(struct node_peermgr *pm)
{
    pm->rng ^= pm->rng >> 12;
    pm->rng ^= pm->rng << 25;
    pm->rng ^= pm->rng >> 27;
    return (double)((pm->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static int64_t chain_height(struct node_peermgr *pm)
{
    return node_chain_height(pm->n->chain);
}

/* ---- peers table ---- */

static struct peer *peer_new(struct node_peermgr *pm, const char *addr, int inbound)
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

static void peer_reset_conn(struct peer *p)
{
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    node_buf_free(&p->rbuf);
    node_buf_free(&p->wbuf);
    p->wpos = 0;
    p->closing = 0;
    p->closing_at = 0;
    p->handshaken = 0;
    p->ping_nonce = 0;
    p->req_end = -1;
    p->forked = 0;
    p->no_blocks = 0;
}

static double peer_quality(const struct peer *p, double now)
{
    double up = p->uptime + (p->state == PS_CONNECTED ? now - p->since : 0);
    return node_peer_quality(p->pingtime < 0 ? -1 : p->pingtime * 1000.0, p->failures, p->offences,
                             up);
}

/* ---- bans ---- */

static struct ban *ban_find(struct node_peermgr *pm, const char *judge, int create)
{
    for (size_t i = 0; i < pm->nbans; i++)
        if (strcmp(pm->bans[i].judge, judge) == 0)
            return &pm->bans[i];
    if (!create)
        return NULL;
    if (pm->nbans == MAX_BANS) {
        /* Full: reuse the entry of an expired ban or the fewest offences. */
        size_t victim = 0;
        for (size_t i = 1; i < pm->nbans; i++)
            if (pm->bans[i].offences < pm->bans[victim].offences)
                victim = i;
        memset(&pm->bans[victim], 0, sizeof(pm->bans[victim]));
        snprintf(pm->bans[victim].judge, sizeof(pm->bans[victim].judge), "%s", judge);
        return &pm->bans[victim];
    }
    struct ban *b = &pm->bans[pm->nbans++];
    memset(b, 0, sizeof(*b));
    snprintf(b->judge, sizeof(b->judge), "%s", judge);
    return b;
}

static double banned_until(struct node_peermgr *pm, const char *judge, double now)
{
    struct ban *b = ban_find(pm, judge, 0);
    return b && b->until > now ? b->until : 0;
}

/* ---- sending ---- */

static int send_msg(struct peer *p, uint8_t type, const struct node_buf *payload)
{
    if (payload->failed ||
        node_peer_frame_append(&p->wbuf, type, payload->data, payload->len) != 0) {
        log_msg(LOG_ERROR, "peer_send_failed", "%s: out of memory queueing %s", p->addr,
                node_peer_type_name(type));
        p->closing = 1;
        return -1;
    }
    return 0;
}

static void send_hello(struct node_peermgr *pm, struct peer *p, uint8_t type)
{
    struct node_peer_hello h;
    struct node_block_meta tip;
    struct node_buf b = {0};
    int64_t height = chain_height(pm);

    memset(&h, 0, sizeof(h));
    h.version = NODE_PEER_VERSION;
    snprintf(h.chain, sizeof(h.chain), "%s", pm->chain_name);
    h.flavour = (uint8_t)pm->n->cfg->node.flavour;
    if (node_chain_get(pm->n->chain, height, &tip) == 0)
        memcpy(h.tip, tip.hash, 32);
    h.height = (uint64_t)height;
    memcpy(h.genesis, pm->genesis, 32);
    h.nonce = pm->nonce;
    snprintf(h.subver, sizeof(h.subver), "%s%s", NODE_SUBVERSION, pm->n->cfg->node.name);
    node_peer_hello_encode(&b, &h);
    send_msg(p, type, &b);
    node_buf_free(&b);
}

static void send_reject(struct peer *p, uint8_t type, const char *reason)
{
    struct node_peer_reject r = {.type = type};
    struct node_buf b = {0};
    snprintf(r.reason, sizeof(r.reason), "%s", reason);
    node_peer_reject_encode(&b, &r);
    send_msg(p, NODE_PEER_REJECT, &b);
    node_buf_free(&b);
}

static void send_nonce(struct peer *p, uint8_t type, uint64_t nonce)
{
    struct node_buf b = {0};
    node_peer_nonce_encode(&b, nonce);
    send_msg(p, type, &b);
    node_buf_free(&b);
}

/* ---- misbehaviour ---- */

static void reject_count(struct node_peermgr *pm, enum reject_reason r)
{
    atomic_fetch_add(&pm->rejected[r], 1);
}

/* Count the offence; ban the address at the threshold. `drop`: the stream
 * cannot go on (framing lost), close the connection either way. */
static void offence(struct node_peermgr *pm, struct peer *p, enum reject_reason r,
                    const char *detail, int drop)
{
    struct ban *b = ban_find(pm, p->judge, 1);
    reject_count(pm, r);
    p->offences++;
    b->offences++;
    LOG_EVENT(LOG_WARN, "peer_misbehaving", NULL, detail, LF_STR("peer", p->addr),
              LF_INT("id", p->id), LF_STR("reason", reject_names[r]),
              LF_INT("offences", b->offences));
    if (b->offences >= NODE_PEERMGR_BAN_OFFENCES && b->until <= sys_mono_s()) {
        b->until = sys_mono_s() + NODE_PEERMGR_BAN_SECS;
        b->offences = 0;
        atomic_fetch_add(&pm->bans_total, 1);
        LOG_EVENT(LOG_WARN, "peer_banned", NULL, NULL, LF_STR("peer", p->judge),
                  LF_INT("secs", NODE_PEERMGR_BAN_SECS));
        drop = 1;
    }
    if (drop)
        p->closing = 1;
}

/* ---- sync ---- */

static void request_blocks(struct node_peermgr *pm, struct peer *p, double now)
{
    int64_t ours = chain_height(pm);
    int64_t count = p->best_height - ours;
    struct node_buf b = {0};

    if (count > SYNC_BATCH)
        count = SYNC_BATCH;
    node_peer_getblocks_encode(&b, (uint64_t)(ours + 1), (uint32_t)count);
    if (send_msg(p, NODE_PEER_GETBLOCKS, &b) == 0) {
        p->req_end = ours + count;
        p->req_deadline = now + STALL_TIMEOUT;
        pm->sync_peer = p;
        LOG_EVENT(LOG_DEBUG, "sync_request", NULL, NULL, LF_STR("peer", p->addr),
                  LF_INT("from", ours + 1), LF_INT("count", count));
    }
    node_buf_free(&b);
}

/* Pick the connected peer with the best height above ours (quality breaks
 * ties) and ask it for the next batch, unless a request is in flight. */
static void sync_next(struct node_peermgr *pm, double now)
{
    struct peer *best = NULL;
    int64_t ours = chain_height(pm);

    if (pm->sync_peer) {
        struct peer *p = pm->sync_peer;
        if (p->req_end >= 0 && now < p->req_deadline && ours < p->req_end)
            return;
        if (p->req_end >= 0 && ours < p->req_end && now >= p->req_deadline)
            LOG_EVENT(LOG_WARN, "sync_stalled", NULL, NULL, LF_STR("peer", p->addr),
                      LF_INT("height", ours), LF_INT("expected", p->req_end));
        p->req_end = -1;
        pm->sync_peer = NULL;
    }
    for (size_t i = 0; i < pm->npeers; i++) {
        struct peer *p = pm->peers[i];
        if (p->state != PS_CONNECTED || p->forked || p->no_blocks || p->closing ||
            p->best_height <= ours)
            continue;
        if (!best || p->best_height > best->best_height ||
            (p->best_height == best->best_height && peer_quality(p, now) > peer_quality(best, now)))
            best = p;
    }
    if (best)
        request_blocks(pm, best, now);
}

static void serve_blocks(struct node_peermgr *pm, struct peer *p, uint64_t from, uint32_t count)
{
    int64_t tip = chain_height(pm);
    if (from > (uint64_t)tip)
        return;
    for (uint64_t h = from; h < from + count && (int64_t)h <= tip; h++) {
        uint8_t *raw = NULL;
        size_t len;
        char why[256];
        struct node_buf b = {0};
        if (p->wbuf.len - p->wpos > SEND_HIGH_WATER)
            break;
        if (node_chain_read_block(pm->n->chain, (int64_t)h, &raw, &len, why, sizeof(why)) != 0) {
            send_reject(p, NODE_PEER_GETBLOCKS, "block not available");
            LOG_EVENT(LOG_WARN, "peer_block_unavailable", NULL, why, LF_STR("peer", p->addr),
                      LF_INT("height", h));
            break;
        }
        node_peer_block_encode(&b, h, raw, len);
        free(raw);
        int rc = send_msg(p, NODE_PEER_BLOCK, &b);
        node_buf_free(&b);
        if (rc != 0)
            break;
        atomic_fetch_add(&pm->blocks_sent, 1);
    }
}

/* ---- message handling ---- */

static void handshake_done(struct node_peermgr *pm, struct peer *p, const struct node_peer_hello *h,
                           double now)
{
    p->handshaken = 1;
    p->state = PS_CONNECTED;
    p->since = now;
    p->conntime = (int64_t)time(NULL);
    p->version = h->version;
    snprintf(p->subver, sizeof(p->subver), "%s", h->subver);
    p->startingheight = p->best_height = (int64_t)h->height;
    p->attempts = 0;
    p->next_attempt_wall = 0;
    if (p->inbound)
        atomic_fetch_add(&pm->connected_in, 1);
    else
        atomic_fetch_add(&pm->connected_out, 1);
    LOG_EVENT(LOG_INFO, "peer_connected", NULL, NULL, LF_STR("peer", p->addr), LF_INT("id", p->id),
              LF_BOOL("inbound", p->inbound), LF_INT("height", p->best_height),
              LF_STR("subver", p->subver), LF_INT("our_height", chain_height(pm)));
}

static void on_hello(struct node_peermgr *pm, struct peer *p, uint8_t type, const uint8_t *payload,
                     size_t len, double now)
{
    struct node_peer_hello h;
    char why[160];

    if (p->handshaken || (type == NODE_PEER_HELLO) != p->inbound) {
        offence(pm, p, RJ_UNEXPECTED, node_peer_type_name(type), 1);
        return;
    }
    if (node_peer_hello_decode(payload, len, &h) != 0) {
        offence(pm, p, RJ_MALFORMED, "hello", 1);
        return;
    }
    if (strcmp(h.chain, pm->chain_name) != 0 || memcmp(h.genesis, pm->genesis, 32) != 0 ||
        h.flavour != (uint8_t)pm->n->cfg->node.flavour) {
        snprintf(why, sizeof(why), "wrong chain: \"%s\", ours \"%s\"", h.chain, pm->chain_name);
        send_reject(p, type, why);
        offence(pm, p, RJ_WRONG_CHAIN, why, 1);
        return;
    }
    if (h.nonce == pm->nonce) {
        LOG_EVENT(LOG_INFO, "peer_self", NULL, "connected to ourselves", LF_STR("peer", p->addr));
        p->closing = 1;
        return;
    }
    if (type == NODE_PEER_HELLO)
        send_hello(pm, p, NODE_PEER_HELLO_ACK);
    handshake_done(pm, p, &h, now);
}

static void on_block(struct node_peermgr *pm, struct peer *p, const uint8_t *payload, size_t len,
                     double now)
{
    uint64_t height;
    const uint8_t *raw;
    size_t rawlen;
    char why[256] = "";

    if (node_peer_block_decode(payload, len, &height, &raw, &rawlen) != 0) {
        offence(pm, p, RJ_MALFORMED, "block", 1);
        return;
    }
    int rc = node_chain_accept_block(pm->n->chain, pm->n->mempool, raw, rawlen, why, sizeof(why));
    switch (rc) {
    case NODE_ACCEPT_OK:
        atomic_fetch_add(&pm->blocks_received, 1);
        p->synced_blocks = (int64_t)height;
        if ((int64_t)height > p->best_height)
            p->best_height = (int64_t)height;
        LOG_EVENT(LOG_DEBUG, "block_received", NULL, NULL, LF_STR("peer", p->addr),
                  LF_INT("height", chain_height(pm)));
        break;
    case NODE_ACCEPT_HAVE:
        p->synced_blocks = (int64_t)height;
        break;
    case NODE_ACCEPT_INVALID:
        send_reject(p, NODE_PEER_BLOCK, why);
        if (strcmp(why, "bad-prevblk") == 0) {
            /* Another branch, not misbehaviour: stop syncing from it. */
            reject_count(pm, RJ_BAD_PREV);
            p->forked = 1;
            LOG_EVENT(LOG_WARN, "peer_forked", NULL, "block does not extend our tip",
                      LF_STR("peer", p->addr), LF_INT("height", height),
                      LF_INT("our_height", chain_height(pm)));
        } else {
            offence(pm, p, RJ_BAD_BLOCK, why, 0);
        }
        break;
    default:
        LOG_EVENT(LOG_ERROR, "block_store_failed", NULL, why, LF_STR("peer", p->addr),
                  LF_INT("height", height));
        break;
    }
    if (p == pm->sync_peer) {
        p->req_deadline = now + STALL_TIMEOUT;
        if (rc == NODE_ACCEPT_INVALID || rc == NODE_ACCEPT_FAILED ||
            (int64_t)height >= p->req_end) {
            p->req_end = -1;
            pm->sync_peer = NULL;
        }
    }
}

static void handle_frame(struct node_peermgr *pm, struct peer *p, const struct node_peer_frame *f,
                         double now)
{
    uint64_t u64, height;
    uint32_t count;
    uint8_t hash[32];
    struct node_peer_reject rj;

    if (!p->handshaken && f->type != NODE_PEER_HELLO && f->type != NODE_PEER_HELLO_ACK &&
        f->type != NODE_PEER_PING && f->type != NODE_PEER_PONG && f->type != NODE_PEER_REJECT) {
        offence(pm, p, RJ_UNEXPECTED, "before handshake", 1);
        return;
    }
    switch (f->type) {
    case NODE_PEER_HELLO:
    case NODE_PEER_HELLO_ACK:
        on_hello(pm, p, f->type, f->payload, f->len, now);
        break;
    case NODE_PEER_ANNOUNCE:
        if (node_peer_announce_decode(f->payload, f->len, &height, hash) != 0) {
            offence(pm, p, RJ_MALFORMED, "announce", 1);
            break;
        }
        if ((int64_t)height > p->best_height)
            p->best_height = (int64_t)height;
        break;
    case NODE_PEER_GETBLOCKS:
        if (node_peer_getblocks_decode(f->payload, f->len, &u64, &count) != 0) {
            offence(pm, p, RJ_MALFORMED, "getblocks", 1);
            break;
        }
        serve_blocks(pm, p, u64, count);
        break;
    case NODE_PEER_BLOCK:
        on_block(pm, p, f->payload, f->len, now);
        break;
    case NODE_PEER_PING:
        if (node_peer_nonce_decode(f->payload, f->len, &u64) != 0) {
            offence(pm, p, RJ_MALFORMED, "ping", 1);
            break;
        }
        send_nonce(p, NODE_PEER_PONG, u64);
        break;
    case NODE_PEER_PONG:
        if (node_peer_nonce_decode(f->payload, f->len, &u64) != 0) {
            offence(pm, p, RJ_MALFORMED, "pong", 1);
            break;
        }
        if (p->ping_nonce && u64 == p->ping_nonce) {
            p->pingtime = now - p->ping_sent;
            if (p->minping < 0 || p->pingtime < p->minping)
                p->minping = p->pingtime;
            p->ping_nonce = 0;
        }
        break;
    case NODE_PEER_REJECT:
        if (node_peer_reject_decode(f->payload, f->len, &rj) != 0) {
            offence(pm, p, RJ_MALFORMED, "reject", 1);
            break;
        }
        LOG_EVENT(LOG_WARN, "peer_rejected_us", NULL, rj.reason, LF_STR("peer", p->addr),
                  LF_STR("message", node_peer_type_name(rj.type)));
        if (rj.type == NODE_PEER_GETBLOCKS) {
            /* It cannot serve what we need (pruned): ask someone else. */
            p->no_blocks = 1;
            if (pm->sync_peer == p) {
                p->req_end = -1;
                pm->sync_peer = NULL;
            }
        }
        break;
    default:
        break;
    }
}

/* Decode and handle every whole frame in the read buffer. */
static void process_input(struct node_peermgr *pm, struct peer *p, double now)
{
    size_t pos = 0;
    while (!p->closing && pos < p->rbuf.len) {
        struct node_peer_frame f;
        enum node_peer_frame_error why;
        int rc = node_peer_frame_decode(p->rbuf.data + pos, p->rbuf.len - pos, &f, &why);
        if (rc == NODE_PEER_NEED_MORE)
            break;
        if (rc == NODE_PEER_ERROR) {
            static const enum reject_reason map[] = {[NODE_PEER_E_MAGIC] = RJ_BAD_MAGIC,
                                                     [NODE_PEER_E_TYPE] = RJ_BAD_TYPE,
                                                     [NODE_PEER_E_OVERSIZE] = RJ_OVERSIZE,
                                                     [NODE_PEER_E_CHECKSUM] = RJ_BAD_CHECKSUM};
            offence(pm, p, map[why], node_peer_frame_error_name(why), f.consumed == 0);
            if (f.consumed == 0) {
                pos = p->rbuf.len;
                break;
            }
            pos += f.consumed;
            continue;
        }
        handle_frame(pm, p, &f, now);
        pos += f.consumed;
    }
    if (pos >= p->rbuf.len) {
        p->rbuf.len = 0;
    } else if (pos > 0) {
        memmove(p->rbuf.data, p->rbuf.data + pos, p->rbuf.len - pos);
        p->rbuf.len -= pos;
    }
}

/* ---- connections ---- */

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
    if (conf_split_address(p->addr, host, sizeof(host), &portnum) != 0) {
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
        offence(pm, p, RJ_TRUNCATED, "connection closed inside a frame", 1);
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
    peer_reset_conn(p);
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
    double until = banned_until(pm, p->judge, now);
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
    return node_peer_queue_cmp(peer_quality(x, now), x->next_attempt, peer_quality(y, now),
                               y->next_attempt);
}

/* The reconnection queue: start the due configured peers, best first. */
static void run_queue(struct node_peermgr *pm, double now)
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
        if (banned_until(pm, p->judge, now) > now)
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

static void accept_inbound(struct node_peermgr *pm, double now)
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
        if (banned_until(pm, host, now) > now || (int64_t)busy >= pm->n->cfg->network.max_peers) {
            LOG_EVENT(LOG_INFO, "peer_refused", NULL, NULL, LF_STR("peer", addr),
                      LF_STR("reason", busy >= (size_t)pm->n->cfg->network.max_peers ? "max_peers"
                                                                                     : "banned"));
            close(fd);
            continue;
        }
        struct peer *p = peer_new(pm, addr, 1);
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

static void do_read(struct node_peermgr *pm, struct peer *p, double now)
{
    uint8_t chunk[READ_CHUNK];
    for (int i = 0; i < 64; i++) {
        ssize_t r = recv(p->fd, chunk, sizeof(chunk), 0);
        if (r > 0) {
            if (node_buf_put(&p->rbuf, chunk, (size_t)r) != 0) {
                log_msg(LOG_ERROR, "peer_recv_failed", "%s: out of memory", p->addr);
                p->closing = 1;
                p->rbuf.len = 0;
                return;
            }
            p->bytes_recv += (uint64_t)r;
            p->lastrecv = (int64_t)time(NULL);
            node_metrics_bytes(pm->n->metrics, (uint64_t)r, 0);
            process_input(pm, p, now);
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

static void do_write(struct node_peermgr *pm, struct peer *p, double now)
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

static void on_connected(struct node_peermgr *pm, struct peer *p, double now)
{
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
        connection_over(pm, p, strerror(soerr ? soerr : errno), now);
        return;
    }
    p->state = PS_HANDSHAKE;
    p->since = now;
    send_hello(pm, p, NODE_PEER_HELLO);
}

/* Timeouts, pings, the close of connections marked closing. */
static void housekeeping(struct node_peermgr *pm, struct peer *p, double now)
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
            send_nonce(p, NODE_PEER_PING, p->ping_nonce);
        }
        if (p->wbuf.len - p->wpos > SEND_MAX)
            connection_over(pm, p, "send buffer full", now);
    }
}

static void announce_tip(struct node_peermgr *pm)
{
    int64_t h = chain_height(pm);
    struct node_block_meta tip;
    struct node_buf b = {0};

    if (h <= pm->announced || node_chain_get(pm->n->chain, h, &tip) != 0)
        return;
    pm->announced = h;
    node_peer_announce_encode(&b, (uint64_t)h, tip.hash);
    for (size_t i = 0; i < pm->npeers; i++) {
        struct peer *p = pm->peers[i];
        if (p->state == PS_CONNECTED && !p->closing && p->best_height < h)
            send_msg(p, NODE_PEER_ANNOUNCE, &b);
    }
    node_buf_free(&b);
}

/* Recompute the lock-free summary: best height, syncing. */
static void update_sync_state(struct node_peermgr *pm)
{
    int64_t best = -1, ours = chain_height(pm);
    int any_connected = 0, pending = 0;

    for (size_t i = 0; i < pm->npeers; i++) {
        struct peer *p = pm->peers[i];
        if (p->state == PS_CONNECTED) {
            any_connected = 1;
            if (!p->forked && p->best_height > best)
                best = p->best_height;
        }
        /* A configured peer not yet tried, or mid-attempt, may still report
         * a better chain. */
        if (p->configured && (p->state == PS_CONNECTING || p->state == PS_HANDSHAKE ||
                              (p->state == PS_WAITING && p->failures == 0 && p->uptime == 0)))
            pending = 1;
    }
    atomic_store(&pm->best_height, best);
    if (!pm->initial_done) {
        if ((any_connected && ours >= best) || (!any_connected && !pending)) {
            pm->initial_done = 1;
            LOG_EVENT(LOG_INFO, "initial_sync_done", NULL, NULL, LF_INT("height", ours),
                      LF_INT("peer_height", best));
        }
    }
    int syncing = !pm->initial_done || best > ours + NODE_PEERMGR_SYNC_LAG;
    int was = atomic_exchange(&pm->syncing, syncing);
    if (syncing && !was) {
        atomic_store(&pm->sync_start, ours);
        LOG_EVENT(LOG_INFO, "sync_started", NULL, NULL, LF_INT("height", ours),
                  LF_INT("peer_height", best));
    } else if (!syncing && was) {
        atomic_store(&pm->sync_start, -1);
        LOG_EVENT(LOG_INFO, "sync_done", NULL, NULL, LF_INT("height", ours),
                  LF_INT("peer_height", best));
    }
}

static void sweep_closed(struct node_peermgr *pm)
{
    size_t k = 0;
    for (size_t i = 0; i < pm->npeers; i++) {
        struct peer *p = pm->peers[i];
        if (p->state == PS_CLOSED && !p->configured) {
            peer_reset_conn(p);
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
        run_queue(pm, now);
        for (size_t i = 0; i < pm->npeers; i++)
            housekeeping(pm, pm->peers[i], now);
        announce_tip(pm);
        sync_next(pm, now);
        update_sync_state(pm);
        sweep_closed(pm);
        if (fcap < pm->npeers + 1) {
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
        if (pm->listen_fd >= 0 && fcap > 0) {
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
                accept_inbound(pm, now);
                continue;
            }
            if (p->fd != fds[i].fd)
                continue; /* closed and maybe reopened during this tick */
            if (p->state == PS_CONNECTING) {
                if (re & (POLLOUT | POLLERR | POLLHUP))
                    on_connected(pm, p, now);
                continue;
            }
            if (re & (POLLIN | POLLHUP | POLLERR))
                do_read(pm, p, now);
            if (p->fd >= 0 && p->wpos < p->wbuf.len)
                do_write(pm, p, now);
        }
        /* Flush what the handlers queued without waiting for the next tick. */
        for (size_t i = 0; i < pm->npeers; i++) {
            struct peer *p = pm->peers[i];
            if (p->fd >= 0 && p->state != PS_CONNECTING && p->wpos < p->wbuf.len)
                do_write(pm, p, now);
        }
        pthread_mutex_unlock(&pm->lock);
    }
    free(fds);
    free(owners);
    return NULL;
}

static int open_listener(const char *listen_addr, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *res = NULL;
    char host[256], port[8];
    uint16_t portnum;
    int fd = -1, one = 1, rc;

    if (conf_split_address(listen_addr, host, sizeof(host), &portnum) != 0)
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
        struct peer *p = peer_new(pm, cfg->network.peers[i], 0);
        if (!p) {
            SYS_ERR("out of memory");
            goto fail;
        }
        snprintf(p->judge, sizeof(p->judge), "%s", p->addr);
        p->next_attempt = sys_mono_s();
    }
    if (cfg->network.listen) {
        pm->listen_fd = open_listener(cfg->network.listen, err, errlen);
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
    for (size_t i = 0; i < pm->npeers; i++) {
        peer_reset_conn(pm->peers[i]);
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
    return reason < RJ_COUNT ? reject_names[reason] : "unknown";
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
    double banned = banned_until(pm, p->judge, now);

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
    v->score = peer_quality(p, now);
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
