/* Sending messages to a peer and handling those it sends. */
#include "peermsg.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chain.h"
#include "log.h"
#include "node.h"
#include "peerscore.h"

#define SEND_HIGH_WATER (8u << 20) /* GETBLOCKS answers stop queueing here */

int node_peermsg_send(struct peer *p, uint8_t type, const struct node_buf *payload)
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

void node_peermsg_send_hello(struct node_peermgr *pm, struct peer *p, uint8_t type)
{
    struct node_peer_hello h;
    struct node_buf b = {0};
    uint8_t tip[32];
    int64_t height = node_chain_tip(pm->n->chain, tip);

    memset(&h, 0, sizeof(h));
    h.version = NODE_PEER_VERSION;
    snprintf(h.chain, sizeof(h.chain), "%s", pm->chain_name);
    h.flavour = (uint8_t)pm->n->cfg->node.flavour;
    memcpy(h.tip, tip, 32);
    h.height = (uint64_t)height;
    memcpy(h.genesis, pm->genesis, 32);
    h.nonce = pm->nonce;
    snprintf(h.subver, sizeof(h.subver), "%s%s", NODE_SUBVERSION, pm->n->cfg->node.name);
    node_peer_hello_encode(&b, &h);
    node_peermsg_send(p, type, &b);
    node_codec_buf_free(&b);
}

void node_peermsg_send_reject(struct peer *p, uint8_t type, const char *reason)
{
    struct node_peer_reject r = {.type = type};
    struct node_buf b = {0};
    snprintf(r.reason, sizeof(r.reason), "%s", reason);
    node_peer_reject_encode(&b, &r);
    node_peermsg_send(p, NODE_PEER_REJECT, &b);
    node_codec_buf_free(&b);
}

void node_peermsg_send_nonce(struct peer *p, uint8_t type, uint64_t nonce)
{
    struct node_buf b = {0};
    node_peer_nonce_encode(&b, nonce);
    node_peermsg_send(p, type, &b);
    node_codec_buf_free(&b);
}

static void handshake_done(struct node_peermgr *pm, struct peer *p, const struct node_peer_hello *h,
                           double now)
{
    p->handshaken = 1;
    p->session = ++pm->next_session;
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
              LF_STR("subver", p->subver), LF_INT("our_height", node_chain_height(pm->n->chain)));
}

static void on_hello(struct node_peermgr *pm, struct peer *p, uint8_t type, const uint8_t *payload,
                     size_t len, double now)
{
    struct node_peer_hello h;
    char why[160];

    if (p->handshaken || (type == NODE_PEER_HELLO) != p->inbound) {
        node_peerscore_offence(pm, p, RJ_UNEXPECTED, node_peer_type_name(type), 1);
        return;
    }
    if (node_peer_hello_decode(payload, len, &h) != 0) {
        node_peerscore_offence(pm, p, RJ_MALFORMED, "hello", 1);
        return;
    }
    if (strcmp(h.chain, pm->chain_name) != 0 || memcmp(h.genesis, pm->genesis, 32) != 0 ||
        h.flavour != (uint8_t)pm->n->cfg->node.flavour) {
        snprintf(why, sizeof(why), "wrong chain: \"%s\", ours \"%s\"", h.chain, pm->chain_name);
        node_peermsg_send_reject(p, type, why);
        node_peerscore_offence(pm, p, RJ_WRONG_CHAIN, why, 1);
        return;
    }
    if (h.nonce == pm->nonce) {
        LOG_EVENT(LOG_INFO, "peer_self", NULL, "connected to ourselves", LF_STR("peer", p->addr));
        p->closing = 1;
        return;
    }
    if (type == NODE_PEER_HELLO)
        node_peermsg_send_hello(pm, p, NODE_PEER_HELLO_ACK);
    handshake_done(pm, p, &h, now);
}

/* A block from a peer goes to the chain worker; what becomes of it comes
 * back to node_peermsg_work_done(). */
static void on_block(struct node_peermgr *pm, struct peer *p, const uint8_t *payload, size_t len,
                     double now)
{
    uint64_t height;
    const uint8_t *raw;
    size_t rawlen;

    if (node_peer_block_decode(payload, len, &height, &raw, &rawlen) != 0) {
        node_peerscore_offence(pm, p, RJ_MALFORMED, "block", 1);
        return;
    }
    if (node_peerwork_accept(pm->work, p->session, height, raw, rawlen) != 0) {
        log_msg(LOG_ERROR, "block_store_failed", "%s: out of memory queueing block %llu", p->addr,
                (unsigned long long)height);
        return;
    }
    if (p == pm->sync_peer)
        p->req_deadline = now + STALL_TIMEOUT;
}

/* The peer whose connection asked: a result for a connection that has
 * since ended is not applied to the next one of the same address. */
static struct peer *peer_by_session(struct node_peermgr *pm, uint64_t session)
{
    for (size_t i = 0; i < pm->npeers; i++)
        if (pm->peers[i]->session == session)
            return pm->peers[i];
    return NULL;
}

/* What the worker made of a block from `p`. */
static void block_done(struct node_peermgr *pm, struct peer *p, uint64_t height, int rc,
                       const char *why, double now)
{
    if (p && p == pm->sync_peer)
        p->req_deadline = now + STALL_TIMEOUT;
    switch (rc) {
    case NODE_ACCEPT_OK:
        atomic_fetch_add(&pm->blocks_received, 1);
        if (!p)
            return;
        p->synced_blocks = (int64_t)height;
        if ((int64_t)height > p->best_height)
            p->best_height = (int64_t)height;
        LOG_EVENT(LOG_DEBUG, "block_received", NULL, NULL, LF_STR("peer", p->addr),
                  LF_INT("height", node_chain_height(pm->n->chain)));
        break;
    case NODE_ACCEPT_HAVE:
        if (p)
            p->synced_blocks = (int64_t)height;
        break;
    case NODE_ACCEPT_INVALID:
        if (!p || p->fd < 0)
            return; /* gone meanwhile: nobody to tell or to judge */
        node_peermsg_send_reject(p, NODE_PEER_BLOCK, why);
        if (strcmp(why, "bad-prevblk") == 0) {
            /* Another branch, not misbehaviour: stop syncing from it. */
            node_peerscore_reject(pm, RJ_BAD_PREV);
            p->forked = 1;
            LOG_EVENT(LOG_WARN, "peer_forked", NULL, "block does not extend our tip",
                      LF_STR("peer", p->addr), LF_INT("height", height),
                      LF_INT("our_height", node_chain_height(pm->n->chain)));
        } else {
            node_peerscore_offence(pm, p, RJ_BAD_BLOCK, why, 0);
        }
        break;
    default:
        LOG_EVENT(LOG_ERROR, "block_store_failed", NULL, why, LF_STR("peer", p ? p->addr : "-"),
                  LF_INT("height", height));
        break;
    }
    if (p && p == pm->sync_peer &&
        (rc == NODE_ACCEPT_INVALID || rc == NODE_ACCEPT_FAILED || (int64_t)height >= p->req_end)) {
        p->req_end = -1;
        pm->sync_peer = NULL;
    }
}

void node_peermsg_work_done(struct node_peermgr *pm, double now)
{
    struct node_peerwork_result *all = node_peerwork_results(pm->work);

    for (struct node_peerwork_result *r = all; r; r = r->next) {
        struct peer *p = peer_by_session(pm, r->session);
        if (r->kind == NODE_PEERWORK_ACCEPT) {
            block_done(pm, p, r->height, r->rc, r->why, now);
            continue;
        }
        if (r->unavailable >= 0)
            LOG_EVENT(LOG_WARN, "peer_block_unavailable", NULL, r->why,
                      LF_STR("peer", p ? p->addr : "-"), LF_INT("height", r->unavailable));
        if (!p || p->fd < 0 || p->closing || r->frames.len == 0)
            continue;
        if (r->frames.failed || node_codec_buf_put(&p->wbuf, r->frames.data, r->frames.len) != 0) {
            log_msg(LOG_ERROR, "peer_send_failed", "%s: out of memory queueing blocks", p->addr);
            p->closing = 1;
            continue;
        }
        atomic_fetch_add(&pm->blocks_sent, r->blocks);
    }
    node_peerwork_result_free(all);
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
        node_peerscore_offence(pm, p, RJ_UNEXPECTED, "before handshake", 1);
        return;
    }
    switch (f->type) {
    case NODE_PEER_HELLO:
    case NODE_PEER_HELLO_ACK:
        on_hello(pm, p, f->type, f->payload, f->len, now);
        break;
    case NODE_PEER_ANNOUNCE:
        if (node_peer_announce_decode(f->payload, f->len, &height, hash) != 0) {
            node_peerscore_offence(pm, p, RJ_MALFORMED, "announce", 1);
            break;
        }
        if ((int64_t)height > p->best_height)
            p->best_height = (int64_t)height;
        break;
    case NODE_PEER_GETBLOCKS:
        if (node_peer_getblocks_decode(f->payload, f->len, &u64, &count) != 0) {
            node_peerscore_offence(pm, p, RJ_MALFORMED, "getblocks", 1);
            break;
        }
        /* Read on the chain worker: a `generate` holding the write lock
         * must not stop this thread. */
        if (u64 <= (uint64_t)node_chain_height(pm->n->chain) &&
            node_peerwork_serve(pm->work, p->session, u64, count, p->wbuf.len - p->wpos,
                                SEND_HIGH_WATER) != 0) {
            log_msg(LOG_ERROR, "peer_send_failed", "%s: out of memory queueing getblocks", p->addr);
            p->closing = 1;
        }
        break;
    case NODE_PEER_BLOCK:
        on_block(pm, p, f->payload, f->len, now);
        break;
    case NODE_PEER_PING:
        if (node_peer_nonce_decode(f->payload, f->len, &u64) != 0) {
            node_peerscore_offence(pm, p, RJ_MALFORMED, "ping", 1);
            break;
        }
        node_peermsg_send_nonce(p, NODE_PEER_PONG, u64);
        break;
    case NODE_PEER_PONG:
        if (node_peer_nonce_decode(f->payload, f->len, &u64) != 0) {
            node_peerscore_offence(pm, p, RJ_MALFORMED, "pong", 1);
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
            node_peerscore_offence(pm, p, RJ_MALFORMED, "reject", 1);
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
void node_peermsg_process(struct node_peermgr *pm, struct peer *p, double now)
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
            node_peerscore_offence(pm, p, map[why], node_peer_frame_error_name(why),
                                   f.consumed == 0);
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
