/* Events file and bounded in-memory queue; see events.h. */
#include "events.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bucket.h"
#include "log.h"
#include "sys.h"

struct events {
    pthread_mutex_t lock;
    int fd;
    struct events_item *ring;
    size_t cap, head, count;
    struct events_stats stats;
    events_sink_fn sink;
    void *sink_ctx;
};

static const char *const severity_names[8] = {"emerg",   "alert",  "crit", "err",
                                              "warning", "notice", "info", "debug"};

const char *events_severity_name(int severity)
{
    return severity >= 0 && severity < 8 ? severity_names[severity] : "unknown";
}

events_t *events_open(const char *path, size_t max_queue, char *err, size_t errlen)
{
    events_t *e = calloc(1, sizeof(*e));
    if (!e || max_queue == 0 || !(e->ring = calloc(max_queue, sizeof(*e->ring)))) {
        snprintf(err, errlen, max_queue ? "out of memory" : "event queue size must be > 0");
        free(e);
        return NULL;
    }
    e->cap = max_queue;
    e->fd = -1;
    pthread_mutex_init(&e->lock, NULL);
    if (path) {
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir)
            *slash = '\0';
        if ((slash && slash != dir && sys_mkdirs(dir) < 0) ||
            (e->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            events_close(e);
            return NULL;
        }
    }
    return e;
}

void events_close(events_t *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->count; i++)
        free(e->ring[(e->head + i) % e->cap].message);
    free(e->ring);
    if (e->fd >= 0)
        close(e->fd);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

/* PostgreSQL text must be valid UTF-8 without NUL; HAProxy's own messages
 * are ASCII, so anything else is replaced rather than validated. */
static char *sanitise(const char *msg, size_t len)
{
    char *s = malloc(len + 1);
    if (!s)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)msg[i];
        s[i] = (char)((ch >= 0x20 && ch < 0x7f) || ch == '\t' ? ch : '?');
    }
    s[len] = '\0';
    return s;
}

static void write_file_line(events_t *e, int64_t ts_ms, int severity, const char *msg)
{
    char ts[32], *line = NULL;
    bucket_format_iso(ts_ms / 1000, ts, sizeof(ts));
    int n = asprintf(&line, "%.19s.%03dZ %s %s\n", ts, (int)(ts_ms % 1000),
                     events_severity_name(severity), msg);
    if (n < 0 || write(e->fd, line, (size_t)n) != n) {
        if (e->stats.file_errors++ == 0)
            LOG_EVENT(LOG_ERROR, "events_write_failed", NULL,
                      n < 0 ? "out of memory" : strerror(errno));
    }
    free(n < 0 ? NULL : line);
}

int events_add(events_t *e, int64_t ts_ms, int severity, const char *msg, size_t len)
{
    char *s = sanitise(msg, len);
    pthread_mutex_lock(&e->lock);
    e->stats.added++;
    if (e->fd >= 0)
        write_file_line(e, ts_ms, severity, s ? s : "(out of memory)");
    if (!s) {
        e->stats.dropped++;
        pthread_mutex_unlock(&e->lock);
        return -1;
    }
    if (e->sink) {
        int rc = e->sink(e->sink_ctx, ts_ms, severity, s);
        e->stats.dropped += rc < 0;
        pthread_mutex_unlock(&e->lock);
        free(s);
        return rc < 0 ? -1 : 0;
    }
    if (e->count == e->cap) {
        free(e->ring[e->head].message);
        e->head = (e->head + 1) % e->cap;
        e->count--;
        e->stats.dropped++;
    }
    e->ring[(e->head + e->count) % e->cap] =
        (struct events_item){.ts_ms = ts_ms, .severity = severity, .message = s};
    e->count++;
    pthread_mutex_unlock(&e->lock);
    return 0;
}

void events_set_sink(events_t *e, events_sink_fn fn, void *ctx)
{
    pthread_mutex_lock(&e->lock);
    e->sink = fn;
    e->sink_ctx = ctx;
    pthread_mutex_unlock(&e->lock);
}

size_t events_take(events_t *e, struct events_item *out, size_t max)
{
    pthread_mutex_lock(&e->lock);
    size_t n = e->count < max ? e->count : max;
    for (size_t i = 0; i < n; i++) {
        out[i] = e->ring[e->head];
        e->head = (e->head + 1) % e->cap;
    }
    e->count -= n;
    pthread_mutex_unlock(&e->lock);
    return n;
}

void events_give_back(events_t *e, struct events_item *items, size_t n)
{
    pthread_mutex_lock(&e->lock);
    /* walk backwards so that the first item ends up at the head */
    for (size_t i = n; i-- > 0;) {
        if (e->count == e->cap) {
            free(items[i].message);
            e->stats.dropped++;
            continue;
        }
        e->head = (e->head + e->cap - 1) % e->cap;
        e->ring[e->head] = items[i];
        e->count++;
    }
    pthread_mutex_unlock(&e->lock);
}

void events_items_free(struct events_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(items[i].message);
        items[i].message = NULL;
    }
}

void events_get_stats(events_t *e, struct events_stats *out)
{
    pthread_mutex_lock(&e->lock);
    *out = e->stats;
    out->queued = e->count;
    pthread_mutex_unlock(&e->lock);
}
