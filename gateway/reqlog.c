/* Rotating request log; see reqlog.h. */
#include "reqlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define REQLOG_BUF (256 * 1024)

struct reqlog {
    char *path;
    char *rotated; /* path + ".1" */
    int fd;
    int64_t half;      /* rotate when the current file would exceed this */
    int64_t file_size; /* bytes in the current file, buffer excluded */
    char *buf;
    size_t len, cap;
    struct reqlog_stats stats;
};

int reqlog_mkdirs(const char *path)
{
    char tmp[4096];
    size_t n = strlen(path);
    if (n >= sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(tmp, path, n + 1);
    char *slash = strrchr(tmp, '/');
    if (!slash)
        return 0;
    *slash = '\0';
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (tmp[0] && mkdir(tmp, 0755) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

static int open_current(reqlog_t *r)
{
    struct stat st;
    r->fd = open(r->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (r->fd < 0)
        return -1;
    r->file_size = fstat(r->fd, &st) == 0 ? st.st_size : 0;
    return 0;
}

reqlog_t *reqlog_open(const char *path, int64_t max_bytes, char *err, size_t errlen)
{
    reqlog_t *r = calloc(1, sizeof(*r));
    if (!r)
        goto oom;
    r->fd = -1;
    if (max_bytes < 2048) {
        snprintf(err, errlen, "%s: request log size %lld is below 2 KiB", path,
                 (long long)max_bytes);
        goto fail;
    }
    r->half = max_bytes / 2;
    r->cap = (size_t)r->half < REQLOG_BUF ? (size_t)r->half : REQLOG_BUF;
    r->path = strdup(path);
    r->buf = malloc(r->cap);
    if (!r->path || !r->buf || asprintf(&r->rotated, "%s.1", path) < 0) {
        r->rotated = NULL;
        goto oom;
    }
    if (reqlog_mkdirs(path) < 0 || open_current(r) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    return r;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    reqlog_close(r);
    return NULL;
}

/* requests.log becomes requests.log.1 (the previous .1, the oldest half,
 * is dropped), and a new empty requests.log starts. */
static void rotate(reqlog_t *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    if (rename(r->path, r->rotated) < 0)
        LOG_EVENT(LOG_WARN, "reqlog_rotate_failed", NULL, strerror(errno), LF_STR("path", r->path));
    r->stats.rotations++;
    if (open_current(r) < 0)
        LOG_EVENT(LOG_ERROR, "reqlog_open_failed", NULL, strerror(errno), LF_STR("path", r->path));
}

void reqlog_flush(reqlog_t *r)
{
    if (!r || r->len == 0)
        return;
    if (r->file_size + (int64_t)r->len > r->half)
        rotate(r);
    size_t off = 0;
    while (r->fd >= 0 && off < r->len) {
        ssize_t n = write(r->fd, r->buf + off, r->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (r->stats.write_errors++ == 0)
                LOG_EVENT(LOG_ERROR, "reqlog_write_failed", NULL, strerror(errno),
                          LF_STR("path", r->path));
            break;
        }
        off += (size_t)n;
    }
    r->file_size += (int64_t)off;
    r->stats.bytes_written += off;
    r->stats.bytes_dropped += r->len - off;
    r->len = 0;
}

void reqlog_write(reqlog_t *r, const char *line, size_t len)
{
    if (len + 1 > r->cap) {
        r->stats.bytes_dropped += len + 1;
        return;
    }
    if (r->len + len + 1 > r->cap)
        reqlog_flush(r);
    memcpy(r->buf + r->len, line, len);
    r->buf[r->len + len] = '\n';
    r->len += len + 1;
}

void reqlog_close(reqlog_t *r)
{
    if (!r)
        return;
    reqlog_flush(r);
    if (r->fd >= 0)
        close(r->fd);
    free(r->buf);
    free(r->path);
    free(r->rotated);
    free(r);
}

void reqlog_get_stats(const reqlog_t *r, struct reqlog_stats *out)
{
    *out = r->stats;
}
