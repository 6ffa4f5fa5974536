/* The peer manager's chain worker (see peerwork.h). */
#include "peerwork.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "chain.h"
#include "log.h"
#include "peer.h"
#include "sys.h"

struct job {
    struct job *next;
    int kind;
    uint64_t session;
    uint64_t height; /* ACCEPT: as sent; SERVE: from */
    uint32_t count;
    size_t backlog, high_water;
    size_t len;
    uint8_t raw[]; /* ACCEPT: the block */
};

struct node_peerwork {
    struct node_chain *chain;
    struct node_mempool *mp;
    pthread_t thread;
    int started;
    int efd;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int stop;                                   /* under mu */
    struct job *head, *tail;                    /* under mu */
    struct node_peerwork_result *rhead, *rtail; /* under mu */
    _Atomic size_t accepts_pending;
};

static void serve(struct node_peerwork *w, const struct job *j, struct node_peerwork_result *r)
{
    int64_t tip = node_chain_height(w->chain);

    r->unavailable = -1;
    for (uint64_t h = j->height; h < j->height + j->count && (int64_t)h <= tip; h++) {
        uint8_t *raw = NULL;
        size_t len;
        struct node_buf b = {0};
        if (j->backlog + r->frames.len > j->high_water)
            break;
        if (node_chain_read_block(w->chain, (int64_t)h, &raw, &len, r->why, sizeof(r->why)) != 0) {
            struct node_peer_reject rj = {.type = NODE_PEER_GETBLOCKS};
            snprintf(rj.reason, sizeof(rj.reason), "block not available");
            node_peer_reject_encode(&b, &rj);
            node_peer_frame_append(&r->frames, NODE_PEER_REJECT, b.data, b.len);
            node_codec_buf_free(&b);
            r->rc = -1;
            r->unavailable = (int64_t)h;
            break;
        }
        node_peer_block_encode(&b, h, raw, len);
        free(raw);
        int rc = b.failed ? -1 : node_peer_frame_append(&r->frames, NODE_PEER_BLOCK, b.data, b.len);
        node_codec_buf_free(&b);
        if (rc != 0)
            break;
        r->blocks++;
    }
}

static void *run(void *arg)
{
    struct node_peerwork *w = arg;

    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->stop && !w->head)
            pthread_cond_wait(&w->cond, &w->mu);
        if (w->stop)
            break;
        struct job *j = w->head;
        w->head = j->next;
        if (!w->head)
            w->tail = NULL;
        pthread_mutex_unlock(&w->mu);

        struct node_peerwork_result *r = calloc(1, sizeof(*r));
        if (r) {
            r->kind = j->kind;
            r->session = j->session;
            r->height = j->height;
            if (j->kind == NODE_PEERWORK_ACCEPT)
                r->rc = node_chain_accept_block(w->chain, w->mp, j->raw, j->len, r->why,
                                                sizeof(r->why));
            else
                serve(w, j, r);
        } else {
            log_msg(LOG_ERROR, "peer_work_failed", "out of memory: a peer's %s job is dropped",
                    j->kind == NODE_PEERWORK_ACCEPT ? "block" : "getblocks");
        }
        int accept = j->kind == NODE_PEERWORK_ACCEPT;
        free(j);

        pthread_mutex_lock(&w->mu);
        if (r) {
            if (w->rtail)
                w->rtail->next = r;
            else
                w->rhead = r;
            w->rtail = r;
        }
        /* Counted down with the result queued, under the same lock the peer
         * thread takes them with: it never sees neither. */
        if (accept)
            atomic_fetch_sub(&w->accepts_pending, 1);
        uint64_t one = 1;
        if (write(w->efd, &one, sizeof(one)) < 0) {
            /* The counter cannot overflow with one write per job; nothing to do. */
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

struct node_peerwork *node_peerwork_start(struct node_chain *chain, struct node_mempool *mp,
                                          char *err, size_t errlen)
{
    struct node_peerwork *w = calloc(1, sizeof(*w));

    if (!w) {
        SYS_ERR("out of memory");
        return NULL;
    }
    w->chain = chain;
    w->mp = mp;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd < 0) {
        SYS_ERR("eventfd: %s", strerror(errno));
        goto fail;
    }
    if (pthread_create(&w->thread, NULL, run, w) != 0) {
        SYS_ERR("cannot start the peer chain worker");
        goto fail;
    }
    w->started = 1;
    return w;
fail:
    node_peerwork_stop(w);
    return NULL;
}

void node_peerwork_stop(struct node_peerwork *w)
{
    if (!w)
        return;
    if (w->started) {
        pthread_mutex_lock(&w->mu);
        w->stop = 1;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
    }
    while (w->head) {
        struct job *j = w->head;
        w->head = j->next;
        free(j);
    }
    node_peerwork_result_free(w->rhead);
    if (w->efd >= 0)
        close(w->efd);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

int node_peerwork_fd(const struct node_peerwork *w)
{
    return w->efd;
}

static void push(struct node_peerwork *w, struct job *j)
{
    pthread_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = j;
    else
        w->head = j;
    w->tail = j;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

int node_peerwork_accept(struct node_peerwork *w, uint64_t session, uint64_t height,
                         const uint8_t *raw, size_t len)
{
    struct job *j = malloc(sizeof(*j) + len);

    if (!j)
        return -1;
    *j = (struct job){
        .kind = NODE_PEERWORK_ACCEPT, .session = session, .height = height, .len = len};
    memcpy(j->raw, raw, len);
    atomic_fetch_add(&w->accepts_pending, 1);
    push(w, j);
    return 0;
}

int node_peerwork_serve(struct node_peerwork *w, uint64_t session, uint64_t from, uint32_t count,
                        size_t backlog, size_t high_water)
{
    struct job *j = malloc(sizeof(*j));

    if (!j)
        return -1;
    *j = (struct job){.kind = NODE_PEERWORK_SERVE,
                      .session = session,
                      .height = from,
                      .count = count,
                      .backlog = backlog,
                      .high_water = high_water};
    push(w, j);
    return 0;
}

size_t node_peerwork_accepts_pending(const struct node_peerwork *w)
{
    return atomic_load(&((struct node_peerwork *)w)->accepts_pending);
}

struct node_peerwork_result *node_peerwork_results(struct node_peerwork *w)
{
    struct node_peerwork_result *r;
    uint64_t n;

    pthread_mutex_lock(&w->mu);
    if (read(w->efd, &n, sizeof(n)) < 0) {
        /* EAGAIN: nothing was signalled since the last call. */
    }
    r = w->rhead;
    w->rhead = w->rtail = NULL;
    pthread_mutex_unlock(&w->mu);
    return r;
}

void node_peerwork_result_free(struct node_peerwork_result *r)
{
    while (r) {
        struct node_peerwork_result *next = r->next;
        node_codec_buf_free(&r->frames);
        free(r);
        r = next;
    }
}
