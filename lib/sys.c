/* System helpers: see sys.h. */
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int sys_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    int e = errno;
    va_list ap;

    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    errno = e;
    return -1;
}

int sys_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int sys_mkdirs(const char *dir)
{
    char p[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof(p)) {
        errno = n ? ENAMETOOLONG : ENOENT;
        return -1;
    }
    memcpy(p, dir, n + 1);
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
            return -1;
        *s = c;
        if (!c)
            return 0;
    }
}

int sys_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc, e;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* fsync the directory holding `path`. */
static int fsync_parent(const char *path)
{
    char buf[PATH_MAX];

    if (strlen(path) >= sizeof(buf)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(buf, path);
    return sys_fsync_dir(dirname(buf));
}

int sys_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, char *err,
                          size_t errlen)
{
    char tmp[PATH_MAX];
    int fd = -1, e;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return SYS_ERR("%s: path too long", path);
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        SYS_ERR("%s: %s", tmp, strerror(errno));
        goto fail;
    }
    /* A temp file left by a crash keeps its old mode through O_CREAT. */
    if (fchmod(fd, mode) != 0 || sys_write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        SYS_ERR("%s: %s", tmp, strerror(errno));
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        SYS_ERR("%s: %s", tmp, strerror(errno));
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        SYS_ERR("%s: rename: %s", path, strerror(errno));
        goto fail;
    }
    if (fsync_parent(path) != 0)
        return SYS_ERR("%s: fsync of directory: %s", path, strerror(errno));
    return 0;
fail:
    e = errno; /* callers classify the failure by it */
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    errno = e;
    return -1;
}

static struct timespec clock_now(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return ts;
}

int64_t sys_mono_ms(void)
{
    struct timespec ts = clock_now(CLOCK_MONOTONIC);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double sys_mono_s(void)
{
    struct timespec ts = clock_now(CLOCK_MONOTONIC);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t sys_wall_ms(void)
{
    struct timespec ts = clock_now(CLOCK_REALTIME);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
