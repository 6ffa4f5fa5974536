/* The supervisor process; see supervisor.h. */
#include "supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "segment.h"
#include "sigpipe.h"
#include "statsock.h"
#include "sys.h"

#define SUP_PIPE_DEFAULT (16u << 20)
#define SUP_LOCK_WAIT_MS 60000 /* for a previous worker to finish counting */
#define SUP_STALE_TERM_MS 5000 /* a stale HAProxy gets this long after SIGTERM */
#define SUP_HAPROXY_BACKOFF_MAX_MS 10000
#define SUP_WORKER_BACKOFF_MIN_MS 50
#define SUP_WORKER_BACKOFF_MAX_MS 5000
#define SUP_STABLE_MS 10000        /* a HAProxy that lived this long restarts fast again */
#define SUP_WORKER_STARTED_MS 1000 /* a worker that lived this long restarts at once */
#define SUP_WORKER_STOP_MS 60000   /* its last flush is bounded by delivery's own timeout */
#define SUP_KILL_AFTER_MS 15000
#define SUP_STDERR_BUF 8192
#define SUP_STDERR_QUEUE 64
/* HAProxy writes one log line per request: rather than a wake-up and a
 * splice per line, let a batch gather for this long once the pipe has data,
 * unless it already holds SUP_BATCH_BYTES. A 1 MiB pipe takes about 115 ms
 * to fill at 20,000 lines/s of 450 bytes, so 50 ms leaves it half empty at
 * that rate; at 100 lines/s it makes about 16 batches (32 wake-ups) a second
 * where 20 ms made 40 (80). */
#define SUP_BATCH_MS 50
#define SUP_BATCH_BYTES (256 * 1024)
/* While the request log cannot be written (a full disk, I/O errors), the
 * lines wait in the pipe and the write is tried again this often; HAProxy
 * drops what does not fit in the pipe and counts it (DroppedLogs). */
#define SUP_RETRY_MS 200
#define SUP_PROBE_BYTES 4096

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

long supervisor_set_pipe_size(int fd, size_t want)
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

/* Whether `pid` runs a program named haproxy (a pid file may be stale and
 * the pid recycled: never signal anything else). */
static int is_haproxy(pid_t pid)
{
    char path[64], comm[64] = "";
    snprintf(path, sizeof(path), "/proc/%ld/comm", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    if (!fgets(comm, sizeof(comm), f))
        comm[0] = '\0';
    fclose(f);
    comm[strcspn(comm, "\n")] = '\0';
    return strncmp(comm, "haproxy", 7) == 0;
}

static void stop_stale(pid_t pid, const char *found_by, const char *source)
{
    if (pid <= 1 || pid == getpid() || !is_haproxy(pid))
        return;
    LOG_EVENT(LOG_WARN, "stale_haproxy", NULL,
              "a HAProxy of this tier still runs without its supervisor: stopping it before "
              "starting a new one",
              LF_INT("pid", pid), LF_STR("found_by", found_by), LF_STR("source", source));
    kill(pid, SIGTERM);
    for (int64_t waited = 0; waited < SUP_STALE_TERM_MS; waited += 50) {
        if (kill(pid, 0) < 0 && errno == ESRCH)
            return;
        sleep_ms(50);
    }
    kill(pid, SIGKILL);
    for (int i = 0; i < 100 && !(kill(pid, 0) < 0 && errno == ESRCH); i++)
        sleep_ms(20);
}

/* Stop any HAProxy of this tier that its pid file or its stats socket
 * names. */
static void stop_stale_haproxy(const struct supervisor_options *o, const char *pidfile)
{
    FILE *f = fopen(pidfile, "r");
    long pid = 0;
    if (f) {
        if (fscanf(f, "%ld", &pid) != 1)
            pid = 0;
        fclose(f);
        stop_stale((pid_t)pid, "pid file", o->source);
    }
    if (o->stats_socket) {
        char err[256];
        int64_t spid;
        if (statsock_query_pid(o->stats_socket, &spid, err, sizeof(err)) == 0)
            stop_stale((pid_t)spid, "stats socket", o->source);
    }
}

/* A live supervisor holds the tier (its pid is in the lock file), as
 * opposed to what a dead one left behind. */
static long live_holder(int fd)
{
    char buf[32] = "", path[64], cmd[256] = "";
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    long pid = n > 0 ? strtol(buf, NULL, 10) : 0;
    if (pid <= 1 || kill((pid_t)pid, 0) < 0)
        return 0;
    snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t m = fread(cmd, 1, sizeof(cmd) - 1, f);
    fclose(f);
    cmd[m] = '\0'; /* argv[0] only: the title */
    return strstr(cmd, " supervisor") ? pid : 0;
}

/* The tier lock: held by the supervisor, inherited by HAProxy and the
 * worker, so it is free only when no process of a previous instance of the
 * tier is left. A live supervisor holding it is refused at once; what a
 * dead one left (its HAProxy is stopped, its worker finishes counting) is
 * waited for. Returns the fd, or -1 (logged). */
static int take_tier_lock(const struct supervisor_options *o, const char *pidfile)
{
    char path[PATH_MAX], me[32];
    snprintf(path, sizeof(path), "%s/tier.lock", o->state_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        LOG_EVENT(LOG_ERROR, "tier_lock_failed", NULL, strerror(errno), LF_STR("path", path));
        return -1;
    }
    int got = flock(fd, LOCK_EX | LOCK_NB) == 0;
    long holder = got ? 0 : live_holder(fd);
    if (holder) {
        LOG_EVENT(LOG_ERROR, "tier_in_use", NULL,
                  "this tier is in use by a running cc-gateway: refusing to run beside it",
                  LF_INT("pid", holder), LF_STR("path", path), LF_STR("source", o->source));
        close(fd);
        return -1;
    }
    /* a HAProxy left by a dead supervisor (or an older cc-gateway) */
    stop_stale_haproxy(o, pidfile);
    if (!got) {
        LOG_EVENT(LOG_WARN, "tier_busy", NULL,
                  "what a previous instance of this tier left still runs: its HAProxy was "
                  "stopped, waiting for its worker to finish counting",
                  LF_STR("source", o->source));
        for (int64_t waited = 0; !got && waited < SUP_LOCK_WAIT_MS; waited += 100) {
            sleep_ms(100);
            got = flock(fd, LOCK_EX | LOCK_NB) == 0;
        }
    }
    if (!got) {
        LOG_EVENT(LOG_ERROR, "tier_busy", NULL,
                  "another instance of this tier holds its lock: refusing to run beside it",
                  LF_STR("path", path), LF_STR("source", o->source));
        close(fd);
        return -1;
    }
    int n = snprintf(me, sizeof(me), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, me, (size_t)n, 0) != n) {
        /* only the refusal message is lost */
    }
    return fd;
}

static void set_cloexec(int fd, int on)
{
    int fl = fcntl(fd, F_GETFD);
    if (fl >= 0)
        (void)fcntl(fd, F_SETFD, on ? fl | FD_CLOEXEC : fl & ~FD_CLOEXEC);
}

/* In a new child, before exec: default signal handlers, die with the
 * parent (checked again after setting it, the parent may be gone already).
 * Signals are blocked around fork (fork_blocked), so none sent to the new
 * pid is taken by the supervisor's handler copy and lost: with `unblock`
 * they arrive now (HAProxy), without they stay pending across exec until
 * the worker has installed its handlers. */
static void child_prepare(pid_t parent, int deathsig, int unblock)
{
    const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGCHLD, SIGPIPE};
    for (size_t i = 0; i < ARRAY_LEN(sigs); i++)
        signal(sigs[i], SIG_DFL);
    if (prctl(PR_SET_PDEATHSIG, deathsig) < 0 || getppid() != parent)
        _exit(127);
    if (unblock) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
    }
}

/* fork() with every signal blocked in both processes until the parent's
 * mask is restored (the child keeps it blocked: child_prepare). */
static pid_t fork_blocked(void)
{
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t pid = fork();
    if (pid != 0)
        sigprocmask(SIG_SETMASK, &old, NULL);
    return pid;
}

struct sup {
    const struct supervisor_options *o;
    pid_t self;
    int lock_fd;
    char pidfile[PATH_MAX];
    segment_writer_t *seg;
    /* HAProxy's stdout (or stdin) and stderr pipes, made once and kept for
     * every HAProxy this supervisor runs: the worker inherits the read end
     * of stdout once. The write ends stay open here (never inherited by the
     * worker), so the end of a HAProxy is its exit, seen by SIGCHLD. */
    int out_fd, err_fd, out_w, err_w;
    int drain_fd; /* what the worker inherits: out_fd, or a copy of stdin */
    int out_eof;
    pid_t haproxy, worker;
    int64_t haproxy_started, worker_started;
    int64_t haproxy_backoff, worker_backoff, worker_due;
    int64_t worker_restarts;
    int worker_failed; /* the worker could not start, or its last stop failed */
    char errbuf[SUP_STDERR_BUF];
    size_t errlen;
    char *queue[SUP_STDERR_QUEUE]; /* stderr lines waiting for a line end in the segment */
    size_t nqueue;
    /* whether the request log can be written, for the worker to tell */
    struct segment_status st;
    int status_fd;
    int64_t retry_at; /* while blocked: the next try (monotonic ms) */
};

/* The pipes HAProxy writes to, for the supervisor's whole life. 0 or -1. */
static int make_pipes(struct sup *s)
{
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) < 0)
        return -1;
    if (pipe2(pe, O_CLOEXEC) < 0) {
        close(po[0]);
        close(po[1]);
        return -1;
    }
    long got =
        supervisor_set_pipe_size(po[0], s->o->pipe_size ? s->o->pipe_size : SUP_PIPE_DEFAULT);
    (void)supervisor_set_pipe_size(pe[0], 1u << 16);
    s->out_fd = po[0];
    s->out_w = po[1];
    s->err_fd = pe[0];
    s->err_w = pe[1];
    int fl = fcntl(s->err_fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(s->err_fd, F_SETFL, fl | O_NONBLOCK);
    LOG_EVENT(LOG_INFO, "pipe_ready", NULL, NULL, LF_INT("pipe_bytes", got),
              LF_STR("source", s->o->source));
    return 0;
}

static void write_status(struct sup *s)
{
    if (s->status_fd >= 0 && segment_status_write(s->status_fd, &s->st) < 0)
        LOG_EVENT(LOG_ERROR, "status_write_failed", NULL, strerror(errno),
                  LF_STR("source", s->o->source));
}

/* The request log cannot take HAProxy's lines now: say so (our log, the
 * status file the worker reads) once per episode, and try again soon. */
static void writer_blocked(struct sup *s, const char *err)
{
    s->retry_at = sys_mono_ms() + SUP_RETRY_MS;
    if (s->st.blocked)
        return;
    s->st.blocked = 1;
    s->st.since_ms = sys_wall_ms();
    s->st.episodes++;
    snprintf(s->st.error, sizeof(s->st.error), "%s", err);
    write_status(s);
    LOG_EVENT(LOG_ERROR, "request_log_blocked", NULL,
              "the request log cannot be written: HAProxy's lines wait in the pipe, and what "
              "does not fit is dropped by HAProxy (DroppedLogs); trying again",
              LF_STR("error", err), LF_INT("retry_ms", SUP_RETRY_MS),
              LF_INT("segment", segment_writer_current(s->seg)), LF_STR("source", s->o->source));
}

static void writer_ok(struct sup *s)
{
    if (!s->st.blocked)
        return;
    int64_t lasted = sys_wall_ms() - s->st.since_ms;
    s->st.blocked = 0;
    s->st.since_ms = 0;
    write_status(s);
    LOG_EVENT(LOG_WARN, "request_log_resumed", NULL,
              "the request log is written again: HAProxy's lines move into it",
              LF_INT("blocked_ms", lasted), LF_INT("segment", segment_writer_current(s->seg)),
              LF_STR("source", s->o->source));
}

static pid_t spawn_haproxy(struct sup *s)
{
    const struct supervisor_options *o = s->o;
    char err[256];
    pid_t pid = fork_blocked();
    if (pid < 0) {
        LOG_EVENT(LOG_ERROR, "child_spawn_failed", NULL, strerror(errno));
        return -1;
    }
    if (pid == 0) {
        child_prepare(s->self, SIGKILL, 1);
        if (dup2(s->out_w, 1) < 0 || dup2(s->err_w, 2) < 0)
            _exit(127);
        set_cloexec(s->lock_fd, 0);
        execvp(o->child_argv[0], o->child_argv);
        dprintf(2, "[ALERT] cc-gateway: cannot run %s: %s\n", o->child_argv[0], strerror(errno));
        _exit(127);
    }
    FILE *f = fopen(s->pidfile, "w");
    if (f) {
        fprintf(f, "%ld\n", (long)pid);
        fclose(f);
    }
    /* a segment that cannot be started now (a full disk) is retried: its
     * lines wait in the pipe meanwhile, and the tier says it is blind */
    if (segment_writer_start(s->seg, pid, err, sizeof(err)) < 0)
        writer_blocked(s, err);
    LOG_EVENT(LOG_INFO, "child_started", NULL, "HAProxy started", LF_INT("pid", pid),
              LF_STR("command", o->child_argv[0]),
              LF_INT("segment", segment_writer_current(s->seg)), LF_STR("source", o->source));
    s->haproxy_started = sys_mono_ms();
    return pid;
}

static pid_t spawn_worker(struct sup *s)
{
    const struct supervisor_options *o = s->o;
    char fdarg[32], restarts[32];
    snprintf(fdarg, sizeof(fdarg), "%d", s->drain_fd);
    snprintf(restarts, sizeof(restarts), "%lld", (long long)s->worker_restarts);
    o->worker_argv[o->worker_fd_arg] = fdarg;
    o->worker_argv[o->worker_fd_arg + 2] = restarts;
    pid_t pid = fork_blocked();
    if (pid < 0) {
        LOG_EVENT(LOG_ERROR, "worker_spawn_failed", NULL, strerror(errno));
        return -1;
    }
    if (pid == 0) {
        child_prepare(s->self, SIGTERM, 0);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0 && devnull != 0) {
            dup2(devnull, 0);
            close(devnull);
        }
        if (s->drain_fd >= 0)
            set_cloexec(s->drain_fd, 0);
        set_cloexec(s->lock_fd, 0);
        execv(o->worker_path, o->worker_argv);
        execv("/proc/self/exe", o->worker_argv);
        dprintf(2, "cc-gateway: cannot run the worker %s: %s\n", o->worker_path, strerror(errno));
        _exit(127);
    }
    s->worker_started = sys_mono_ms();
    LOG_EVENT(LOG_INFO, "worker_started", NULL, NULL, LF_INT("pid", pid),
              LF_INT("restarts", s->worker_restarts), LF_STR("source", o->source));
    return pid;
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

/* Queued stderr lines go into the segment once it ends with a line. */
static void write_stderr_queue(struct sup *s)
{
    char err[256];
    size_t i = 0;
    for (; i < s->nqueue; i++) {
        int rc = segment_writer_line(s->seg, s->queue[i], strlen(s->queue[i]), err, sizeof(err));
        if (rc == 1)
            break;
        if (rc < 0)
            LOG_EVENT(LOG_WARN, "segment_write_failed", NULL, err, LF_STR("source", s->o->source));
        free(s->queue[i]);
    }
    memmove(s->queue, s->queue + i, (s->nqueue - i) * sizeof(char *));
    s->nqueue -= i;
}

static void queue_stderr_line(struct sup *s, const char *line, size_t len)
{
    if (len == 0)
        return;
    /* our own log says it too, in case the segment cannot */
    LOG_EVENT(LOG_INFO, "haproxy_stderr", NULL, NULL, LF_STR("line", line),
              LF_STR("source", s->o->source));
    if (s->nqueue == SUP_STDERR_QUEUE)
        return;
    size_t plen = strlen(SEGMENT_STDERR_PREFIX);
    char *l = malloc(plen + len + 1);
    if (!l)
        return;
    memcpy(l, SEGMENT_STDERR_PREFIX, plen);
    memcpy(l + plen, line, len);
    l[plen + len] = '\0';
    s->queue[s->nqueue++] = l;
}

/* Read HAProxy's stderr; whole lines are queued for the segment. */
static void read_stderr(struct sup *s)
{
    ssize_t n = read(s->err_fd, s->errbuf + s->errlen, sizeof(s->errbuf) - 1 - s->errlen);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        if (s->errlen > 0) {
            s->errbuf[s->errlen] = '\0';
            queue_stderr_line(s, s->errbuf, s->errlen);
        }
        s->errlen = 0;
        close(s->err_fd);
        s->err_fd = -1;
        return;
    }
    s->errlen += (size_t)n;
    char *start = s->errbuf, *end = s->errbuf + s->errlen, *nl;
    while ((nl = memchr(start, '\n', (size_t)(end - start))) != NULL) {
        *nl = '\0';
        queue_stderr_line(s, start, (size_t)(nl - start));
        start = nl + 1;
    }
    s->errlen = (size_t)(end - start);
    if (s->errlen == sizeof(s->errbuf) - 1) { /* a very long line: cut it */
        s->errbuf[s->errlen] = '\0';
        queue_stderr_line(s, s->errbuf, s->errlen);
        s->errlen = 0;
    } else if (start != s->errbuf) {
        memmove(s->errbuf, start, s->errlen);
    }
}

/* Move what HAProxy's stdout holds into the segment. 0 ok (or nothing),
 * 1 at its end, -1 when the request log cannot take it now (blocked: what
 * was not written stays in the pipe, tried again at retry_at). An empty
 * pipe while blocked proves nothing: there, room for the next lines is
 * reserved to see whether the disk has space again. */
static int move_out(struct sup *s)
{
    char err[256];
    int64_t moved = 0;
    for (;;) {
        ssize_t n = segment_writer_move(s->seg, s->out_fd, err, sizeof(err));
        if (n > 0) {
            moved += n;
            continue;
        }
        if (n == 0 || errno == EAGAIN) {
            if (moved > 0 || !s->st.blocked ||
                segment_writer_probe(s->seg, SUP_PROBE_BYTES, err, sizeof(err)) == 0)
                writer_ok(s);
            else
                writer_blocked(s, err);
            return n == 0 ? 1 : 0;
        }
        writer_blocked(s, err);
        return -1;
    }
}

static void reap(struct sup *s, int *haproxy_status, int *haproxy_done)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        char why[64];
        describe_exit(status, why, sizeof(why));
        if (pid == s->worker && WIFEXITED(status) && s->o->worker_fatal_status &&
            WEXITSTATUS(status) == s->o->worker_fatal_status) {
            LOG_EVENT(LOG_ERROR, "worker_fatal", NULL,
                      "the worker cannot start (see its message above): stopping",
                      LF_INT("pid", pid), LF_STR("source", s->o->source));
            s->worker = -1;
            s->worker_failed = 1;
        } else if (pid == s->worker) {
            int64_t lived = sys_mono_ms() - s->worker_started;
            /* a worker that got going is restarted at once; only one that
             * dies while starting (a crash loop) is backed off */
            if (lived > SUP_WORKER_STARTED_MS)
                s->worker_backoff = SUP_WORKER_BACKOFF_MIN_MS;
            LOG_EVENT(LOG_WARN, "worker_exited", NULL, why, LF_INT("pid", pid),
                      LF_INT("lived_ms", lived), LF_INT("restart_in_ms", s->worker_backoff),
                      LF_STR("source", s->o->source));
            s->worker = -1;
            s->worker_due = sys_mono_ms() + s->worker_backoff;
            s->worker_backoff = s->worker_backoff * 2 > SUP_WORKER_BACKOFF_MAX_MS
                                    ? SUP_WORKER_BACKOFF_MAX_MS
                                    : s->worker_backoff * 2;
        } else if (pid == s->haproxy) {
            *haproxy_status = status;
            *haproxy_done = 1;
            s->haproxy = -1;
        }
    }
}

/* Wait for the worker to end (it counts what is left, journals, flushes);
 * SIGKILL after SUP_WORKER_STOP_MS. */
static void stop_worker(struct sup *s)
{
    if (s->worker <= 0)
        return;
    kill(s->worker, SIGTERM);
    for (int64_t waited = 0;; waited += 20) {
        int status;
        pid_t r = waitpid(s->worker, &status, WNOHANG);
        if (r == s->worker || (r < 0 && errno != EINTR)) {
            if (r == s->worker && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
                s->worker_failed = 1;
                char why[64];
                describe_exit(status, why, sizeof(why));
                LOG_EVENT(LOG_WARN, "worker_stop_failed", NULL, why,
                          LF_STR("source", s->o->source));
            }
            break;
        }
        if (waited == SUP_WORKER_STOP_MS) {
            LOG_EVENT(LOG_ERROR, "worker_stop_timeout", NULL, "SIGKILL",
                      LF_STR("source", s->o->source));
            kill(s->worker, SIGKILL);
        }
        sleep_ms(20);
    }
    s->worker = -1;
}

static int install_signals(void)
{
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGCHLD};
    return sigpipe_install(sigs, ARRAY_LEN(sigs));
}

/* HAProxy ended: what it wrote is all in the pipes now; move it. */
static void drain_after_haproxy(struct sup *s)
{
    while (move_out(s) == 0) {
        struct pollfd p1 = {.fd = s->out_fd, .events = POLLIN};
        if (poll(&p1, 1, 0) <= 0)
            break;
    }
    for (int i = 0; i < 64 && s->err_fd >= 0; i++) {
        struct pollfd p2 = {.fd = s->err_fd, .events = POLLIN};
        if (poll(&p2, 1, 0) <= 0)
            break;
        read_stderr(s);
    }
    write_stderr_queue(s);
}

/* Read pending signals: 1 when asked to stop. */
static int take_signals(struct sup *s)
{
    int sig, stop = 0;
    while ((sig = sigpipe_next()) != 0) {
        if (sig == SIGCHLD)
            continue;
        if (sig == SIGUSR1) {
            if (s->worker > 0)
                kill(s->worker, SIGUSR1);
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT)
            stop = 1;
        if (s->haproxy > 0)
            kill(s->haproxy, sig);
    }
    return stop;
}

int supervisor_run(const struct supervisor_options *o)
{
    struct sup s;
    char err[256], status_path[PATH_MAX];
    int ret = 1, stopping = 0;
    memset(&s, 0, sizeof(s));
    s.o = o;
    s.status_fd = -1;
    s.self = getpid();
    s.out_fd = s.err_fd = s.out_w = s.err_w = s.drain_fd = -1;
    s.haproxy = s.worker = -1;
    s.haproxy_backoff = 100;
    s.worker_backoff = SUP_WORKER_BACKOFF_MIN_MS;
    snprintf(s.pidfile, sizeof(s.pidfile), "%s/haproxy.pid", o->state_dir);
    if (sys_mkdirs(o->state_dir) < 0) {
        LOG_EVENT(LOG_ERROR, "start_failed", NULL, strerror(errno), LF_STR("dir", o->state_dir));
        return 1;
    }
    if (install_signals() < 0) {
        LOG_EVENT(LOG_ERROR, "start_failed", NULL, strerror(errno));
        return 1;
    }
    if ((s.lock_fd = take_tier_lock(o, s.pidfile)) < 0)
        return 1;
    snprintf(status_path, sizeof(status_path), "%s/%s", o->state_dir, SEGMENT_STATUS_FILE);
    if ((s.status_fd = segment_status_open(status_path, err, sizeof(err))) < 0)
        LOG_EVENT(LOG_ERROR, "status_open_failed", NULL, err,
                  LF_STR("effect", "the worker cannot tell when the request log is blocked"),
                  LF_STR("source", o->source));
    if (!(s.seg = segment_writer_open(o->segments_dir, o->segment_max_bytes, err, sizeof(err)))) {
        LOG_EVENT(LOG_ERROR, "start_failed", NULL, err);
        goto out;
    }
    if (o->child_argv) {
        if (make_pipes(&s) < 0) {
            LOG_EVENT(LOG_ERROR, "start_failed", NULL, strerror(errno));
            goto out;
        }
        s.drain_fd = s.out_fd;
        if ((s.haproxy = spawn_haproxy(&s)) < 0)
            goto out;
    } else {
        s.out_fd = 0;
        /* the worker's stdin is /dev/null: it gets stdin as another fd */
        s.drain_fd = fcntl(0, F_DUPFD_CLOEXEC, 3);
        long got = supervisor_set_pipe_size(0, o->pipe_size ? o->pipe_size : SUP_PIPE_DEFAULT);
        if (segment_writer_start(s.seg, 0, err, sizeof(err)) < 0) {
            LOG_EVENT(LOG_ERROR, "start_failed", NULL, err);
            goto out;
        }
        LOG_EVENT(LOG_INFO, "source_stdin", NULL, "reading HAProxy output from stdin",
                  LF_INT("pipe_bytes", got), LF_STR("source", o->source));
    }
    if ((s.worker = spawn_worker(&s)) < 0)
        goto out;

    for (;;) {
        int haproxy_status = 0, haproxy_done = 0;
        /* blocked: the lines wait in the pipe until the next try */
        struct pollfd pfd[3] = {{.fd = sigpipe_fd(), .events = POLLIN},
                                {.fd = s.out_eof || s.st.blocked ? -1 : s.out_fd, .events = POLLIN},
                                {.fd = s.err_fd, .events = POLLIN}};
        int timeout = -1;
        if (s.worker < 0) {
            int64_t left = s.worker_due - sys_mono_ms();
            timeout = left > 0 ? (int)left : 0;
        }
        if (s.st.blocked && !s.out_eof) {
            int64_t left = s.retry_at - sys_mono_ms();
            int t = left > 0 ? (int)left : 0;
            timeout = timeout < 0 || t < timeout ? t : timeout;
        }
        int pr = poll(pfd, 3, timeout);
        if (pr < 0 && errno != EINTR) {
            LOG_EVENT(LOG_ERROR, "supervisor_failed", NULL, strerror(errno));
            break;
        }
        if (pr > 0 && (pfd[0].revents & POLLIN) && take_signals(&s))
            stopping = 1;
        if (pr > 0 && !s.out_eof && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            int queued = 0;
            if (!(pfd[1].revents & POLLHUP) && ioctl(s.out_fd, FIONREAD, &queued) == 0 &&
                queued < SUP_BATCH_BYTES)
                sleep_ms(SUP_BATCH_MS);
            if (move_out(&s) == 1)
                s.out_eof = 1;
        }
        if (s.st.blocked && !s.out_eof && sys_mono_ms() >= s.retry_at && move_out(&s) == 1)
            s.out_eof = 1;
        if (pr > 0 && s.err_fd >= 0 && (pfd[2].revents & (POLLIN | POLLHUP | POLLERR)))
            read_stderr(&s);
        if (s.nqueue && !s.st.blocked)
            write_stderr_queue(&s);
        reap(&s, &haproxy_status, &haproxy_done);
        if (s.worker_failed)
            break;
        if (!o->child_argv) {
            if (stopping || s.out_eof) {
                /* stdin: what is there is in the segment once it is empty */
                if (!s.out_eof)
                    move_out(&s);
                ret = 0;
                break;
            }
        }
        if (s.worker < 0 && sys_mono_ms() >= s.worker_due) {
            s.worker_restarts++;
            s.worker = spawn_worker(&s);
            if (s.worker < 0)
                s.worker_due = sys_mono_ms() + s.worker_backoff;
        }
        if (!haproxy_done)
            continue;
        drain_after_haproxy(&s);
        char why[64];
        describe_exit(haproxy_status, why, sizeof(why));
        if (stopping) {
            LOG_EVENT(LOG_INFO, "child_stopped", NULL, why, LF_STR("source", o->source));
            ret = 0;
            break;
        }
        if (!o->restart) {
            LOG_EVENT(LOG_ERROR, "child_exited", NULL, why, LF_STR("source", o->source));
            break;
        }
        if (sys_mono_ms() - s.haproxy_started > SUP_STABLE_MS)
            s.haproxy_backoff = 100;
        LOG_EVENT(LOG_WARN, "child_exited", NULL, why, LF_INT("restart_in_ms", s.haproxy_backoff),
                  LF_STR("source", o->source));
        int64_t until = sys_mono_ms() + s.haproxy_backoff;
        while (!stopping && sys_mono_ms() < until) {
            struct pollfd sp = {.fd = sigpipe_fd(), .events = POLLIN};
            if (poll(&sp, 1, (int)(until - sys_mono_ms())) > 0 && take_signals(&s))
                stopping = 1;
        }
        if (stopping) {
            ret = 0;
            break;
        }
        s.haproxy_backoff = s.haproxy_backoff * 2 > SUP_HAPROXY_BACKOFF_MAX_MS
                                ? SUP_HAPROXY_BACKOFF_MAX_MS
                                : s.haproxy_backoff * 2;
        if ((s.haproxy = spawn_haproxy(&s)) < 0)
            break;
    }
out:
    if (s.haproxy > 0) {
        kill(s.haproxy, SIGTERM);
        for (int64_t waited = 0; waited < SUP_KILL_AFTER_MS; waited += 20) {
            if (waitpid(s.haproxy, NULL, WNOHANG) == s.haproxy) {
                s.haproxy = -1;
                break;
            }
            if (!s.out_eof && move_out(&s) == 1)
                s.out_eof = 1;
            sleep_ms(20);
        }
        if (s.haproxy > 0) {
            kill(s.haproxy, SIGKILL);
            waitpid(s.haproxy, NULL, 0);
        }
        drain_after_haproxy(&s);
    }
    /* the worker counts up to the end of the last segment, then stops */
    stop_worker(&s);
    if (s.worker_failed)
        ret = 1;
    const int fds[] = {s.out_fd > 0 ? s.out_fd : -1, s.err_fd, s.out_w, s.err_w,
                       s.drain_fd != s.out_fd ? s.drain_fd : -1};
    for (size_t i = 0; i < ARRAY_LEN(fds); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    for (size_t i = 0; i < s.nqueue; i++)
        free(s.queue[i]);
    if (o->child_argv)
        unlink(s.pidfile);
    segment_writer_close(s.seg);
    if (s.status_fd >= 0)
        close(s.status_fd);
    close(s.lock_fd);
    return ret;
}
