/* Reading HAProxy's output from stdin or a child process; see source.h. */
#include "source.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lines.h"
#include "log.h"
#include "pump.h"

extern char **environ;

#define SOURCE_READ_BUF (1u << 20)
#define SOURCE_PIPE_DEFAULT (16u << 20)
/* Bytes of HAProxy output held in memory beyond the pipe while ingestion
 * lags (a slow disk under the request log, a long hold of the counter lock). */
#define SOURCE_PUMP_MAX (64u << 20)
#define SOURCE_KILL_AFTER_MS 15000
#define SOURCE_BACKOFF_MAX_MS 30000
#define SOURCE_STABLE_MS 60000

static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    if (write(sig_pipe[1], &b, 1) < 0) {
        /* the pipe is full: a signal of each kind is already pending */
    }
    errno = saved;
}

struct stream {
    int fd; /* -1 once at EOF */
    enum ingest_origin origin;
    struct lines lines;
    pump_t *pump;       /* drains fd on its own thread; NULL: fd is read directly */
    uint64_t full_seen; /* pump stats.full already reported */
};

struct line_ctx {
    struct gateway *gw;
    enum ingest_origin origin;
    int64_t now_ms;
};

static void on_line(void *ctx, const char *line, size_t len, int too_long)
{
    struct line_ctx *lc = ctx;
    if (too_long)
        ingest_too_long(&lc->gw->ingest, lc->origin, lc->now_ms);
    else
        ingest_line(&lc->gw->ingest, line, len, lc->origin, lc->now_ms);
}

long source_set_pipe_size(int fd, size_t want)
{
    if (fcntl(fd, F_SETPIPE_SZ, (int)want) < 0) {
        FILE *f = fopen("/proc/sys/fs/pipe-max-size", "r");
        long max = 0;
        if (f) {
            if (fscanf(f, "%ld", &max) != 1)
                max = 0;
            fclose(f);
        }
        if (max > 0 && (size_t)max < want)
            (void)fcntl(fd, F_SETPIPE_SZ, (int)max);
    }
    int got = fcntl(fd, F_GETPIPE_SZ);
    return got < 0 ? -1 : got;
}

/* HAProxy's log output is drained by a pump thread, so that neither parsing,
 * the request log's writes nor the counter lock ever leave the pipe full
 * (HAProxy drops a log line rather than wait). Without a pump (no memory,
 * no thread) the stream is read directly, as before. */
static void stream_pump(struct gateway *gw, struct stream *s)
{
    char err[256];
    s->full_seen = 0;
    s->pump = pump_start(s->fd, SOURCE_PUMP_MAX, err, sizeof(err));
    if (!s->pump)
        LOG_EVENT(LOG_WARN, "source_pump_failed", NULL, err, LF_STR("source", gw->source));
}

/* The stream ended: stop its pump, close its fd (never stdin's 0 twice). */
static void stream_close(struct gateway *gw, struct stream *s)
{
    if (s->pump) {
        struct pump_stats ps;
        pump_get_stats(s->pump, &ps);
        LOG_EVENT(LOG_INFO, "source_closed", NULL, "HAProxy output ended",
                  LF_INT("bytes", ps.bytes), LF_INT("backlog_high_water_bytes", ps.high_water),
                  LF_INT("backlog_full", ps.full), LF_STR("source", gw->source));
    }
    pump_free(s->pump);
    s->pump = NULL;
    if (s->fd > 0)
        close(s->fd);
    s->fd = -1;
}

static int stream_poll_fd(const struct stream *s)
{
    if (s->fd < 0)
        return -1;
    return s->pump ? pump_fd(s->pump) : s->fd;
}

/* Publish the pump's backlog for /metrics; log when it reached its memory
 * limit (from then on the pipe fills). */
static void check_backlog(struct gateway *gw, struct stream *s)
{
    struct pump_stats ps;
    pump_get_stats(s->pump, &ps);
    __atomic_store_n(&gw->backlog_bytes, (uint64_t)ps.held, __ATOMIC_RELAXED);
    if ((uint64_t)ps.high_water > __atomic_load_n(&gw->backlog_high_water_bytes, __ATOMIC_RELAXED))
        __atomic_store_n(&gw->backlog_high_water_bytes, (uint64_t)ps.high_water, __ATOMIC_RELAXED);
    if (ps.full == s->full_seen)
        return;
    __atomic_add_fetch(&gw->backlog_full_total, ps.full - s->full_seen, __ATOMIC_RELAXED);
    s->full_seen = ps.full;
    LOG_EVENT(LOG_WARN, "source_backlog_full", NULL,
              "ingestion lags: HAProxy output held in memory reached its limit, the pipe "
              "buffers the rest (HAProxy drops log lines when it is full)",
              LF_INT("held_bytes", ps.held), LF_INT("limit_bytes", SOURCE_PUMP_MAX),
              LF_STR("source", gw->source));
}

/* Read what is there into the stream's splitter and ingest it. 0 after
 * data, 2 when nothing was there (EAGAIN/EINTR), 1 at EOF (the last
 * unterminated line was ingested), -1 on error. */
static int read_stream(struct gateway *gw, struct stream *s)
{
    size_t avail;
    char *dst = lines_space(&s->lines, &avail);
    ssize_t n = s->pump ? pump_read(s->pump, dst, avail) : read(s->fd, dst, avail);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 2;
    if (s->pump)
        check_backlog(gw, s);
    struct line_ctx lc = {gw, s->origin, gateway_now_ms()};
    pthread_mutex_lock(&gw->lock);
    if (n > 0)
        lines_commit(&s->lines, (size_t)n, on_line, &lc);
    else
        lines_finish(&s->lines, on_line, &lc);
    if (gw->reqlog)
        reqlog_flush(gw->reqlog);
    pthread_mutex_unlock(&gw->lock);
    if (n > 0)
        return 0;
    if (n < 0)
        LOG_EVENT(LOG_ERROR, "source_read_failed", NULL, strerror(errno),
                  LF_STR("source", gw->source));
    return n < 0 ? -1 : 1;
}

/* Ingest what the stream holds now, without waiting for more (after
 * SIGTERM on stdin). */
static void drain_stream(struct gateway *gw, struct stream *s)
{
    if (!s->pump) {
        int fl = fcntl(s->fd, F_GETFL);
        if (fl >= 0)
            (void)fcntl(s->fd, F_SETFL, fl | O_NONBLOCK);
        while (read_stream(gw, s) == 0)
            ;
        return;
    }
    pump_finish(s->pump);
    for (;;) {
        struct pollfd pfd = {.fd = pump_fd(s->pump), .events = POLLIN};
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
            return;
        int rc = read_stream(gw, s);
        if (rc == 1 || rc == -1)
            return;
    }
}

static int install_signals(void)
{
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGCHLD};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        if (sigaction(sigs[i], &sa, NULL) < 0)
            return -1;
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static void restore_signals(void)
{
    const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGCHLD};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        signal(sigs[i], SIG_DFL);
    for (int i = 0; i < 2; i++) {
        if (sig_pipe[i] >= 0)
            close(sig_pipe[i]);
        sig_pipe[i] = -1;
    }
}

/* Start HAProxy with its stdout and stderr on fresh, enlarged pipes. */
static pid_t spawn_child(const struct source_options *o, struct gateway *gw, struct stream *out,
                         struct stream *err)
{
    int po[2] = {-1, -1}, pe[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    pid_t pid = -1;

    if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
        LOG_EVENT(LOG_ERROR, "child_spawn_failed", NULL, strerror(errno));
        goto out;
    }
    size_t want = o->pipe_size ? o->pipe_size : SOURCE_PIPE_DEFAULT;
    long got = source_set_pipe_size(po[0], want);
    (void)source_set_pipe_size(pe[0], 1u << 16);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    int rc = posix_spawnp(&pid, o->child_argv[0], &fa, NULL, o->child_argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        LOG_EVENT(LOG_ERROR, "child_spawn_failed", NULL, strerror(rc),
                  LF_STR("command", o->child_argv[0]));
        pid = -1;
        goto out;
    }
    out->fd = po[0];
    err->fd = pe[0];
    po[0] = pe[0] = -1;
    LOG_EVENT(LOG_INFO, "child_started", NULL, "HAProxy started", LF_INT("pid", pid),
              LF_STR("command", o->child_argv[0]), LF_INT("pipe_bytes", got),
              LF_STR("source", gw->source));
out:
    for (int i = 0; i < 2; i++) {
        if (po[i] >= 0)
            close(po[i]);
        if (pe[i] >= 0)
            close(pe[i]);
    }
    return pid;
}

/* Wait for the child after its pipes closed; SIGKILL after a grace period.
 * Returns the wait status. */
static int reap_child(pid_t pid)
{
    int status = 0;
    for (int waited = 0;; waited += 50) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR))
            return status;
        if (waited == SOURCE_KILL_AFTER_MS)
            kill(pid, SIGKILL);
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
}

static void describe_exit(int status, char *buf, size_t len)
{
    if (WIFEXITED(status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(buf, len, "ended (wait status %d)", status);
}

int source_run(const struct source_options *o, struct gateway *gw)
{
    struct stream st[2] = {{.fd = -1, .origin = INGEST_STDOUT},
                           {.fd = -1, .origin = INGEST_STDERR}};
    int child = o->child_argv != NULL;
    pid_t pid = -1;
    int stopping = 0, ret = 1;
    int64_t backoff_ms = 1000, child_started_ms = 0;

    if (lines_init(&st[0].lines, SOURCE_READ_BUF, LOGLINE_MAX) < 0 ||
        lines_init(&st[1].lines, SOURCE_READ_BUF, LOGLINE_MAX) < 0) {
        LOG_EVENT(LOG_ERROR, "source_failed", NULL, "out of memory");
        goto out;
    }
    if (install_signals() < 0) {
        LOG_EVENT(LOG_ERROR, "source_failed", NULL, strerror(errno));
        goto out;
    }
    if (child) {
        if ((pid = spawn_child(o, gw, &st[0], &st[1])) < 0)
            goto out;
        child_started_ms = gateway_now_ms();
    } else {
        st[0].fd = 0;
        long got = source_set_pipe_size(0, o->pipe_size ? o->pipe_size : SOURCE_PIPE_DEFAULT);
        LOG_EVENT(LOG_INFO, "source_stdin", NULL, "reading HAProxy output from stdin",
                  LF_INT("pipe_bytes", got), LF_STR("source", gw->source));
    }
    stream_pump(gw, &st[0]);
    __atomic_store_n(&gw->source_up, 1, __ATOMIC_RELAXED);
    for (;;) {
        if (st[0].fd < 0 && st[1].fd < 0) {
            if (!child) {
                ret = 0;
                break;
            }
            char why[64];
            int status = reap_child(pid);
            describe_exit(status, why, sizeof(why));
            pid = -1;
            if (stopping) {
                LOG_EVENT(LOG_INFO, "child_stopped", NULL, why);
                ret = 0;
                break;
            }
            __atomic_store_n(&gw->source_up, 0, __ATOMIC_RELAXED);
            if (!o->restart) {
                LOG_EVENT(LOG_ERROR, "child_exited", NULL, why, LF_STR("source", gw->source));
                break;
            }
            if (gateway_now_ms() - child_started_ms > SOURCE_STABLE_MS)
                backoff_ms = 1000;
            LOG_EVENT(LOG_WARN, "child_exited", NULL, why, LF_INT("restart_in_ms", backoff_ms),
                      LF_STR("source", gw->source));
            struct pollfd sp = {.fd = sig_pipe[0], .events = POLLIN};
            if (poll(&sp, 1, (int)backoff_ms) > 0) {
                unsigned char sig;
                while (read(sig_pipe[0], &sig, 1) == 1)
                    if (sig == SIGTERM || sig == SIGINT)
                        stopping = 1;
                if (stopping) {
                    ret = 0;
                    break;
                }
            }
            backoff_ms =
                backoff_ms * 2 > SOURCE_BACKOFF_MAX_MS ? SOURCE_BACKOFF_MAX_MS : backoff_ms * 2;
            if ((pid = spawn_child(o, gw, &st[0], &st[1])) < 0)
                break;
            stream_pump(gw, &st[0]);
            child_started_ms = gateway_now_ms();
            __atomic_store_n(&gw->source_up, 1, __ATOMIC_RELAXED);
            continue;
        }
        struct pollfd pfd[3] = {{.fd = sig_pipe[0], .events = POLLIN},
                                {.fd = stream_poll_fd(&st[0]), .events = POLLIN},
                                {.fd = stream_poll_fd(&st[1]), .events = POLLIN}};
        int pr = poll(pfd, 3, -1);
        if (pr < 0 && errno != EINTR) {
            LOG_EVENT(LOG_ERROR, "source_failed", NULL, strerror(errno));
            break;
        }
        if (pr > 0 && (pfd[0].revents & POLLIN)) {
            unsigned char sig;
            while (read(sig_pipe[0], &sig, 1) == 1) {
                if (sig == SIGCHLD)
                    continue;
                if (sig == SIGUSR1 && o->on_usr1) {
                    o->on_usr1(o->usr1_ctx);
                    continue;
                }
                if (sig == SIGTERM || sig == SIGINT)
                    stopping = 1;
                if (pid > 0 && sig != SIGUSR1)
                    kill(pid, sig);
            }
            if (stopping && !child) {
                drain_stream(gw, &st[0]);
                ret = 0;
                break;
            }
        }
        for (int i = 0; i < 2; i++) {
            if (st[i].fd < 0 || !(pfd[i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            int rc = read_stream(gw, &st[i]);
            if (rc == 1 || rc == -1)
                stream_close(gw, &st[i]);
            if (rc < 0 && !child)
                goto out;
        }
    }
out:
    __atomic_store_n(&gw->source_up, 0, __ATOMIC_RELAXED);
    for (int i = 0; i < 2; i++) {
        stream_close(gw, &st[i]);
        lines_free(&st[i].lines);
    }
    if (pid > 0) {
        kill(pid, SIGTERM);
        reap_child(pid);
    }
    restore_signals();
    return ret;
}
