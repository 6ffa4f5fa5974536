/* DroppedLogs poller; see statsock.h. */
#include "statsock.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define STATSOCK_TIMEOUT_MS 2000
#define STATSOCK_MAX_ANSWER (64 * 1024)
#define STATSOCK_MAX_STAT (4 * 1024 * 1024)
/* A stick table of a million routes is about 70 MB of text. */
#define STATSOCK_MAX_TABLE (128 * 1024 * 1024)

struct statsock {
    char *path;
    int64_t interval_ms;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stopping;
    int64_t last_seen; /* DroppedLogs of the current HAProxy process; -1: none yet */
    int64_t last_pid;
    struct statsock_stats stats;
    statsock_stat_fn stat_fn; /* may be NULL */
    void *stat_ctx;
    char *table; /* may be NULL */
    int table_every;
    statsock_table_fn table_fn;
    int64_t polls;
};

int statsock_parse_field(const char *info, size_t len, const char *name, int64_t *value)
{
    size_t klen = strlen(name);
    const char *end = info + len;
    for (const char *p = info; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        if ((size_t)(eol - p) > klen + 1 && memcmp(p, name, klen) == 0 && p[klen] == ':') {
            const char *v = p + klen + 1;
            int64_t n = 0;
            int digits = 0;
            while (v < eol && *v == ' ')
                v++;
            for (; v < eol && *v >= '0' && *v <= '9' && digits < 18; v++, digits++)
                n = n * 10 + (*v - '0');
            if (digits == 0 || (v < eol && *v != '\r'))
                return -1;
            *value = n;
            return 0;
        }
        p = eol + 1;
    }
    return -1;
}

int statsock_parse_dropped(const char *info, size_t len, int64_t *dropped)
{
    return statsock_parse_field(info, len, "DroppedLogs", dropped);
}

/* Send `cmd` on the UNIX socket `path` and read the whole answer (at most
 * `max` bytes) into a new NUL-terminated buffer. 0 or -1 with err. */
int statsock_command(const char *path, const char *cmd, char **answer, size_t *len, size_t max,
                     char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char *buf = NULL;
    size_t got = 0, clen = strlen(cmd);
    int ret = -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "%s: socket path too long", path);
        goto out;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        send(fd, cmd, clen, MSG_NOSIGNAL) != (ssize_t)clen) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    /* grown as the answer comes: a big table's dump may be tens of MB */
    size_t cap = max < STATSOCK_MAX_ANSWER ? max : STATSOCK_MAX_ANSWER;
    if (!(buf = malloc(cap + 1))) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (;;) {
        if (got == cap) {
            size_t ncap = cap * 2 < max ? cap * 2 : max;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                snprintf(err, errlen, "out of memory");
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, STATSOCK_TIMEOUT_MS);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0) {
            snprintf(err, errlen, "%s: no answer to %.*s", path, (int)strcspn(cmd, "\n"), cmd);
            goto out;
        }
        ssize_t n = read(fd, buf + got, cap - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        if ((got += (size_t)n) == max) {
            snprintf(err, errlen, "%s: answer to %.*s longer than %zu bytes", path,
                     (int)strcspn(cmd, "\n"), cmd, max);
            goto out;
        }
    }
    buf[got] = '\0';
    *answer = buf;
    *len = got;
    buf = NULL;
    ret = 0;
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return ret;
}

/* One `show info` and its numeric field `name`. 0 or -1 with err. */
static int query_field(const char *path, const char *name, int64_t *value, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    if (statsock_command(path, "show info\n", &buf, &len, STATSOCK_MAX_ANSWER, err, errlen) < 0)
        return -1;
    int rc = statsock_parse_field(buf, len, name, value);
    if (rc < 0)
        snprintf(err, errlen, "%s: no %s in show info", path, name);
    free(buf);
    return rc;
}

int statsock_query(const char *path, int64_t *dropped, char *err, size_t errlen)
{
    return query_field(path, "DroppedLogs", dropped, err, errlen);
}

int statsock_query_pid(const char *path, int64_t *pid, char *err, size_t errlen)
{
    return query_field(path, "Pid", pid, err, errlen);
}

static void poll_once(statsock_t *s)
{
    char err[512];
    char *info = NULL, *stat = NULL;
    size_t ilen = 0, slen = 0;
    int64_t v = 0, pid = 0;
    int ok = statsock_command(s->path, "show info\n", &info, &ilen, STATSOCK_MAX_ANSWER, err,
                              sizeof(err)) == 0;
    if (ok && statsock_parse_dropped(info, ilen, &v) < 0) {
        snprintf(err, sizeof(err), "%s: no DroppedLogs in show info", s->path);
        ok = 0;
    }
    if (ok && statsock_parse_field(info, ilen, "Pid", &pid) < 0)
        pid = 0;
    free(info);
    /* the counters of the same process, just after: backends only */
    if (ok && s->stat_fn &&
        statsock_command(s->path, "show stat -1 2 -1\n", &stat, &slen, STATSOCK_MAX_STAT, err,
                         sizeof(err)) == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s->stat_fn(s->stat_ctx, (long)pid, stat, slen,
                   (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    }
    free(stat);
    if (ok && s->table_fn && s->polls++ % s->table_every == 0) {
        char cmd[256], *text = NULL;
        size_t tlen = 0;
        struct timespec t0, t1;
        snprintf(cmd, sizeof(cmd), "show table %s\n", s->table);
        clock_gettime(CLOCK_REALTIME, &t0);
        if (statsock_command(s->path, cmd, &text, &tlen, STATSOCK_MAX_TABLE, err, sizeof(err)) ==
            0) {
            clock_gettime(CLOCK_REALTIME, &t1);
            s->table_fn(s->stat_ctx, (long)pid, text, tlen,
                        (int64_t)t0.tv_sec * 1000 + t0.tv_nsec / 1000000,
                        (int64_t)t1.tv_sec * 1000 + t1.tv_nsec / 1000000);
        }
        free(text);
    }

    pthread_mutex_lock(&s->lock);
    int64_t grew = 0;
    if (ok) {
        /* a new process (its counter restarts) */
        int64_t base =
            s->last_seen < 0 || v < s->last_seen || pid != s->last_pid ? 0 : s->last_seen;
        grew = v - base;
        s->last_seen = v;
        s->last_pid = pid;
        s->stats.dropped_total += grew;
        s->stats.polls_ok++;
        s->stats.haproxy_pid = pid;
    } else {
        s->stats.polls_failed++;
    }
    int was_ok = s->stats.last_ok;
    s->stats.last_ok = ok;
    int64_t total = s->stats.dropped_total;
    pthread_mutex_unlock(&s->lock);

    if (grew > 0)
        LOG_EVENT(LOG_WARN, "haproxy_dropped_logs", NULL,
                  "HAProxy dropped log lines: relays are undercounted", LF_INT("dropped", grew),
                  LF_INT("dropped_total", total), LF_STR("socket", s->path));
    if (!ok && was_ok)
        LOG_EVENT(LOG_WARN, "stats_socket_failed", NULL, err);
}

static void *poll_thread(void *arg)
{
    statsock_t *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        pthread_mutex_unlock(&s->lock);
        poll_once(s);
        pthread_mutex_lock(&s->lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += s->interval_ms / 1000;
        until.tv_nsec += (s->interval_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        while (!s->stopping && pthread_cond_timedwait(&s->wake, &s->lock, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

statsock_t *statsock_start(const struct statsock_options *o, char *err, size_t errlen)
{
    statsock_t *s = calloc(1, sizeof(*s));
    if (!s || !(s->path = strdup(o->path)) || (o->table && !(s->table = strdup(o->table)))) {
        snprintf(err, errlen, "out of memory");
        if (s)
            free(s->path);
        free(s);
        return NULL;
    }
    s->interval_ms = o->interval_ms > 0 ? o->interval_ms : 1000;
    s->stat_fn = o->stat_fn;
    s->stat_ctx = o->ctx;
    s->table_fn = o->table ? o->table_fn : NULL;
    s->table_every = o->table_every > 0 ? o->table_every : 1;
    s->last_seen = -1;
    s->stats.last_ok = 1;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    int rc = pthread_create(&s->thread, NULL, poll_thread, s);
    if (rc != 0) {
        snprintf(err, errlen, "stats socket thread: %s", strerror(rc));
        pthread_cond_destroy(&s->wake);
        pthread_mutex_destroy(&s->lock);
        free(s->path);
        free(s->table);
        free(s);
        return NULL;
    }
    return s;
}

void statsock_stop(statsock_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    free(s->path);
    free(s->table);
    free(s);
}

void statsock_get_stats(statsock_t *s, struct statsock_stats *out)
{
    pthread_mutex_lock(&s->lock);
    *out = s->stats;
    pthread_mutex_unlock(&s->lock);
}
