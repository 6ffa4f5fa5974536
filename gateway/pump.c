/* Draining a descriptor on its own thread; see pump.h. */
#include "pump.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* While the limit is reached (or memory is short), look again this often
 * even without a wake-up. */
#define PUMP_RETRY_MS 100

struct block {
    struct block *next;
    size_t off; /* taken by the consumer */
    size_t len; /* written by the thread; grows under the lock */
    char data[];
};

struct pump {
    int fd;
    int ready_fd; /* eventfd: bytes or the end wait for the consumer */
    int wake_fd;  /* eventfd: pump_finish/pump_free wake the thread from poll */
    pthread_t thread;
    int started;
    pthread_mutex_t lock;
    pthread_cond_t room; /* a block came free, or stop */
    struct block *head, *tail;
    struct block *spare; /* one emptied block kept for reuse */
    size_t nblocks;      /* allocated, the spare included */
    size_t max_blocks;
    int consumer_waiting; /* pump_read found nothing: signal ready_fd on new bytes */
    int paused;           /* at the limit since the last block was taken */
    int finishing, stopping, ended, error;
    struct pump_stats st;
};

static void signal_fd(int fd)
{
    uint64_t one = 1;
    if (write(fd, &one, sizeof(one)) < 0) {
        /* only at the counter's maximum, when the fd is readable anyway */
    }
}

static void clear_fd(int fd)
{
    uint64_t v;
    if (read(fd, &v, sizeof(v)) < 0) {
        /* EAGAIN: it was clear */
    }
}

/* Blocks are mapped and unmapped directly: freed, they go back to the
 * system at once, so a burst does not leave the process tens of MB larger
 * (malloc would keep them in the pump thread's arena). */
static struct block *block_new(void)
{
    void *m = mmap(NULL, sizeof(struct block) + PUMP_BLOCK, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

static void block_free(struct block *b)
{
    if (b)
        munmap(b, sizeof(*b) + PUMP_BLOCK);
}

/* Under the lock: the block to read into, linked at the tail; NULL at the
 * limit or out of memory. */
static struct block *write_block(struct pump *p)
{
    struct block *b;

    if (p->tail && p->tail->len < PUMP_BLOCK)
        return p->tail;
    if (p->spare) {
        b = p->spare;
        p->spare = NULL;
    } else {
        if (p->nblocks >= p->max_blocks || !(b = block_new()))
            return NULL;
        p->nblocks++;
    }
    b->next = NULL;
    b->off = b->len = 0;
    if (p->tail)
        p->tail->next = b;
    else
        p->head = b;
    p->tail = b;
    return b;
}

/* Under the lock: a consumed block goes to the spare slot or is freed. */
static void recycle(struct pump *p, struct block *b)
{
    if (!p->spare) {
        p->spare = b;
    } else {
        block_free(b);
        p->nblocks--;
    }
    pthread_cond_signal(&p->room);
}

static void wait_room(struct pump *p)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += PUMP_RETRY_MS * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&p->room, &p->lock, &ts);
}

static void *pump_main(void *arg)
{
    struct pump *p = arg;
    struct pollfd pfd[2] = {{.fd = p->fd, .events = POLLIN}, {.fd = p->wake_fd, .events = POLLIN}};
    int err = 0;

    pthread_mutex_lock(&p->lock);
    while (!p->stopping) {
        struct block *b = write_block(p);
        if (!b) {
            if (!p->paused)
                p->st.full++;
            p->paused = 1;
            wait_room(p);
            continue;
        }
        p->paused = 0;
        int finishing = p->finishing;
        size_t off = b->len;
        pthread_mutex_unlock(&p->lock);

        /* The thread alone writes past b->len, so it reads there unlocked. */
        ssize_t n = -1;
        int pr = poll(pfd, 2, finishing ? 0 : -1);
        if (pr < 0 && errno != EINTR)
            err = errno;
        if (pr > 0 && (pfd[1].revents & POLLIN))
            clear_fd(p->wake_fd);
        if (pr > 0 && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            n = read(p->fd, b->data + off, PUMP_BLOCK - off);
            if (n < 0 && errno != EINTR && errno != EAGAIN)
                err = errno;
        } else if (pr == 0 && finishing) {
            n = 0; /* nothing left to read now: that is the end */
        }

        pthread_mutex_lock(&p->lock);
        if (n > 0) {
            b->len += (size_t)n;
            p->st.bytes += (uint64_t)n;
            p->st.held += (size_t)n;
            if (p->st.held > p->st.high_water)
                p->st.high_water = p->st.held;
            if (p->consumer_waiting) {
                p->consumer_waiting = 0;
                signal_fd(p->ready_fd);
            }
        } else if (n == 0 || err) {
            break;
        }
    }
    p->ended = 1;
    p->error = err;
    signal_fd(p->ready_fd);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

pump_t *pump_start(int fd, size_t max_bytes, char *err, size_t errlen)
{
    struct pump *p = calloc(1, sizeof(*p));
    pthread_condattr_t ca;
    sigset_t all, old;
    int rc;

    if (!p) {
        snprintf(err, errlen, "pump: out of memory");
        return NULL;
    }
    p->fd = fd;
    p->ready_fd = p->wake_fd = -1;
    p->max_blocks = (max_bytes + PUMP_BLOCK - 1) / PUMP_BLOCK;
    if (p->max_blocks < 2)
        p->max_blocks = 2;
    p->consumer_waiting = 1;
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->room, &ca);
    pthread_condattr_destroy(&ca);
    p->ready_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    p->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->ready_fd < 0 || p->wake_fd < 0) {
        snprintf(err, errlen, "pump: eventfd: %s", strerror(errno));
        goto fail;
    }
    /* Signals stay with the threads that handle them. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&p->thread, NULL, pump_main, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "pump: thread: %s", strerror(rc));
        goto fail;
    }
    p->started = 1;
    return p;
fail:
    pump_free(p);
    return NULL;
}

int pump_fd(const pump_t *p)
{
    return p->ready_fd;
}

ssize_t pump_read(pump_t *p, void *dst, size_t n)
{
    size_t got = 0;
    ssize_t rc;

    pthread_mutex_lock(&p->lock);
    while (got < n && p->head) {
        struct block *b = p->head;
        size_t k = b->len - b->off;
        if (k > n - got)
            k = n - got;
        memcpy((char *)dst + got, b->data + b->off, k);
        b->off += k;
        got += k;
        if (b->off < PUMP_BLOCK)
            break; /* n is reached, or the thread still writes this block */
        p->head = b->next;
        if (!p->head)
            p->tail = NULL;
        recycle(p, b);
    }
    p->st.held -= got;
    if (got > 0) {
        rc = (ssize_t)got;
    } else if (p->ended) {
        errno = p->error;
        rc = p->error ? -1 : 0;
    } else {
        clear_fd(p->ready_fd);
        p->consumer_waiting = 1;
        errno = EAGAIN;
        rc = -1;
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

void pump_finish(pump_t *p)
{
    pthread_mutex_lock(&p->lock);
    p->finishing = 1;
    pthread_mutex_unlock(&p->lock);
    signal_fd(p->wake_fd);
}

void pump_free(pump_t *p)
{
    if (!p)
        return;
    if (p->started) {
        pthread_mutex_lock(&p->lock);
        p->stopping = 1;
        pthread_cond_broadcast(&p->room);
        pthread_mutex_unlock(&p->lock);
        signal_fd(p->wake_fd);
        pthread_join(p->thread, NULL);
    }
    while (p->head) {
        struct block *b = p->head;
        p->head = b->next;
        block_free(b);
    }
    block_free(p->spare);
    if (p->ready_fd >= 0)
        close(p->ready_fd);
    if (p->wake_fd >= 0)
        close(p->wake_fd);
    pthread_cond_destroy(&p->room);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

void pump_get_stats(pump_t *p, struct pump_stats *out)
{
    pthread_mutex_lock(&p->lock);
    *out = p->st;
    pthread_mutex_unlock(&p->lock);
}
