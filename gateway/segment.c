/* Request-log segments; see segment.h. */
#include "segment.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sys.h"

#define SEGMENT_SPLICE_MAX (16u << 20) /* more than any pipe holds */
#define SEGMENT_COPY_BUF (64u << 10)

int segment_path(const char *dir, int64_t seg, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s/requests.%010" PRId64 ".log", dir, seg);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* The number of a segment file name, or 0 when it is none. */
static int64_t segment_number(const char *name)
{
    static const char pre[] = "requests.", suf[] = ".log";
    size_t n = strlen(name), pl = sizeof(pre) - 1, sl = sizeof(suf) - 1;
    if (n != pl + 10 + sl || strncmp(name, pre, pl) || strcmp(name + n - sl, suf))
        return 0;
    int64_t v = 0;
    for (size_t i = pl; i < pl + 10; i++) {
        if (name[i] < '0' || name[i] > '9')
            return 0;
        v = v * 10 + (name[i] - '0');
    }
    return v;
}

struct seg_list {
    int64_t *num, *size;
    size_t n, cap;
};

static void seg_list_free(struct seg_list *l)
{
    free(l->num);
    free(l->size);
    memset(l, 0, sizeof(*l));
}

static int cmp_seg(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Every segment of dir, sorted, with sizes (sizes only when want_sizes). */
static int seg_list_read(const char *dir, struct seg_list *l, int want_sizes, char *err,
                         size_t errlen)
{
    memset(l, 0, sizeof(*l));
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int64_t num = segment_number(e->d_name);
        if (num <= 0)
            continue;
        if (l->n == l->cap) {
            size_t ncap = l->cap ? l->cap * 2 : 64;
            int64_t *nn = realloc(l->num, ncap * sizeof(*nn));
            if (nn)
                l->num = nn;
            int64_t *ns = nn ? realloc(l->size, ncap * sizeof(*ns)) : NULL;
            if (!ns) {
                closedir(d);
                seg_list_free(l);
                snprintf(err, errlen, "%s: out of memory", dir);
                return -1;
            }
            l->size = ns;
            l->cap = ncap;
        }
        l->num[l->n++] = num;
    }
    closedir(d);
    if (l->n > 1) /* num is NULL when there is none: not for qsort */
        qsort(l->num, l->n, sizeof(int64_t), cmp_seg);
    for (size_t i = 0; want_sizes && i < l->n; i++) {
        char path[PATH_MAX];
        struct stat st;
        l->size[i] = 0;
        if (segment_path(dir, l->num[i], path, sizeof(path)) == 0 && stat(path, &st) == 0)
            l->size[i] = st.st_size;
    }
    return 0;
}

int segment_range(const char *dir, int64_t *lowest, int64_t *highest, int64_t *total_bytes,
                  char *err, size_t errlen)
{
    struct seg_list l;
    if (seg_list_read(dir, &l, total_bytes != NULL, err, errlen) < 0)
        return -1;
    *lowest = l.n ? l.num[0] : 0;
    *highest = l.n ? l.num[l.n - 1] : 0;
    if (total_bytes) {
        *total_bytes = 0;
        for (size_t i = 0; i < l.n; i++)
            *total_bytes += l.size[i];
    }
    seg_list_free(&l);
    return 0;
}

int64_t segment_next(const char *dir, int64_t after)
{
    struct seg_list l;
    char err[64];
    int64_t next = 0;
    if (seg_list_read(dir, &l, 0, err, sizeof(err)) < 0)
        return 0;
    for (size_t i = 0; i < l.n && !next; i++)
        if (l.num[i] > after)
            next = l.num[i];
    seg_list_free(&l);
    return next;
}

int segment_retain(const char *dir, int64_t keep_from, int64_t max_bytes, int *blocked, char *err,
                   size_t errlen)
{
    struct seg_list l;
    int deleted = 0;
    if (blocked)
        *blocked = 0;
    if (seg_list_read(dir, &l, 1, err, errlen) < 0)
        return -1;
    int64_t total = 0;
    for (size_t i = 0; i < l.n; i++)
        total += l.size[i];
    for (size_t i = 0; i < l.n && total > max_bytes; i++) {
        if (l.num[i] >= keep_from || i + 1 == l.n) {
            if (blocked)
                *blocked = 1;
            break;
        }
        char path[PATH_MAX];
        if (segment_path(dir, l.num[i], path, sizeof(path)) < 0 ||
            (unlink(path) < 0 && errno != ENOENT)) {
            snprintf(err, errlen, "%s: unlink: %s", path, strerror(errno));
            seg_list_free(&l);
            return -1;
        }
        total -= l.size[i];
        deleted++;
    }
    seg_list_free(&l);
    return deleted;
}

void segment_pos_format(const struct segment_pos *p, char *buf, size_t len)
{
    snprintf(buf, len, "%" PRId64 ":%" PRId64, p->seg, p->off);
}

int segment_pos_parse(const char *s, struct segment_pos *p, const char **rest)
{
    char *end;
    errno = 0;
    long long seg = strtoll(s, &end, 10);
    if (errno || end == s || *end != ':' || seg < 0)
        return -1;
    const char *o = end + 1;
    long long off = strtoll(o, &end, 10);
    if (errno || end == o || off < 0 || (*end != '\0' && *end != ':'))
        return -1;
    p->seg = seg;
    p->off = off;
    if (rest)
        *rest = *end == ':' ? end + 1 : end;
    return 0;
}

long segment_pid(const char *dir, int64_t seg)
{
    char path[PATH_MAX], line[256];
    if (segment_path(dir, seg, path, sizeof(path)) < 0)
        return 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    long pid = 0;
    if (fgets(line, sizeof(line), f)) {
        const char *p = strstr(line, " haproxy_pid=");
        if (strncmp(line, SEGMENT_META_PREFIX "segment ", sizeof(SEGMENT_META_PREFIX) + 7) == 0 &&
            p)
            pid = strtol(p + 13, NULL, 10);
    }
    fclose(f);
    return pid;
}

struct segment_writer {
    char *dir;
    int dirfd;
    int fd; /* current segment, -1 before the first */
    int64_t seg, size, max_bytes;
    pid_t pid;
    int ends_line; /* the segment ends with '\n' (or is empty) */
    int no_splice; /* the input is no pipe: read/write */
};

segment_writer_t *segment_writer_open(const char *dir, int64_t max_bytes, char *err, size_t errlen)
{
    segment_writer_t *w = calloc(1, sizeof(*w));
    if (!w || !(w->dir = strdup(dir))) {
        free(w);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->fd = w->dirfd = -1;
    w->max_bytes = max_bytes > 64 ? max_bytes : 64;
    if (sys_mkdirs(dir) < 0 || (w->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        segment_writer_close(w);
        return NULL;
    }
    return w;
}

void segment_writer_close(segment_writer_t *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    if (w->dirfd >= 0)
        close(w->dirfd);
    free(w->dir);
    free(w);
}

static int write_at(int fd, const char *p, size_t len, int64_t *off)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, *off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
        *off += n;
    }
    return 0;
}

int segment_writer_start(segment_writer_t *w, pid_t pid, char *err, size_t errlen)
{
    int64_t lo, hi;
    char path[PATH_MAX], line[160], name[64];
    if (segment_range(w->dir, &lo, &hi, NULL, err, errlen) < 0)
        return -1;
    int64_t seg = (hi > w->seg ? hi : w->seg) + 1;
    if (segment_path(w->dir, seg, path, sizeof(path)) < 0) {
        snprintf(err, errlen, "%s: path too long", w->dir);
        return -1;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int n =
        snprintf(line, sizeof(line),
                 SEGMENT_META_PREFIX "segment %" PRId64 " haproxy_pid=%ld started_ms=%" PRId64 "\n",
                 seg, (long)pid, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    int64_t off = 0;
    if (write_at(fd, line, (size_t)n, &off) < 0 || fsync(w->dirfd) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (w->fd >= 0)
        close(w->fd);
    w->fd = fd;
    w->seg = seg;
    w->size = off;
    w->pid = pid;
    w->ends_line = 1;
    /* requests.log follows the newest segment (for people: tail -F) */
    snprintf(name, sizeof(name), "requests.%010" PRId64 ".log", seg);
    unlinkat(w->dirfd, "requests.log.tmp", 0);
    if (symlinkat(name, w->dirfd, "requests.log.tmp") < 0 ||
        renameat(w->dirfd, "requests.log.tmp", w->dirfd, "requests.log") < 0) {
        /* not fatal: only a convenience */
    }
    return 0;
}

int segment_writer_adopt(segment_writer_t *w, char *err, size_t errlen)
{
    int64_t lo, hi;
    char path[PATH_MAX];
    struct stat st;
    if (segment_range(w->dir, &lo, &hi, NULL, err, errlen) < 0)
        return -1;
    if (hi == 0) {
        snprintf(err, errlen, "%s: no segment to adopt", w->dir);
        return -1;
    }
    if (segment_path(w->dir, hi, path, sizeof(path)) < 0) {
        snprintf(err, errlen, "%s: path too long", w->dir);
        return -1;
    }
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char last = '\n';
    if (st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) != 1)
        last = 0;
    if (w->fd >= 0)
        close(w->fd);
    w->fd = fd;
    w->seg = hi;
    w->size = st.st_size;
    w->ends_line = last == '\n';
    w->max_bytes = INT64_MAX; /* never cut: the supervisor is gone */
    return 0;
}

ssize_t segment_writer_move(segment_writer_t *w, int fd, char *err, size_t errlen)
{
    if (w->fd < 0) {
        snprintf(err, errlen, "%s: no segment started", w->dir);
        errno = EINVAL;
        return -1;
    }
    if (w->size >= w->max_bytes && w->ends_line && segment_writer_start(w, w->pid, err, errlen) < 0)
        return -1;
    ssize_t n = -1;
    if (!w->no_splice) {
        loff_t off = w->size;
        n = splice(fd, NULL, w->fd, &off, SEGMENT_SPLICE_MAX, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n < 0 && errno == EINVAL)
            w->no_splice = 1;
    }
    if (w->no_splice) {
        static char buf[SEGMENT_COPY_BUF];
        n = read(fd, buf, sizeof(buf));
        if (n > 0) {
            int64_t off = w->size;
            if (write_at(w->fd, buf, (size_t)n, &off) < 0) {
                snprintf(err, errlen, "segment %" PRId64 ": write: %s", w->seg, strerror(errno));
                return -1;
            }
        }
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) {
            errno = EAGAIN;
            return -1;
        }
        snprintf(err, errlen, "segment %" PRId64 ": %s", w->seg, strerror(errno));
        return -1;
    }
    if (n > 0) {
        char last = 0;
        w->size += n;
        w->ends_line = pread(w->fd, &last, 1, w->size - 1) == 1 && last == '\n';
    }
    return n;
}

int segment_writer_line(segment_writer_t *w, const char *line, size_t len, char *err, size_t errlen)
{
    if (w->fd < 0 || !w->ends_line)
        return 1;
    char buf[4096];
    if (len > sizeof(buf) - 1)
        len = sizeof(buf) - 1;
    memcpy(buf, line, len);
    for (size_t i = 0; i < len; i++)
        if (buf[i] == '\n' || buf[i] == '\r')
            buf[i] = ' ';
    buf[len] = '\n';
    int64_t off = w->size;
    if (write_at(w->fd, buf, len + 1, &off) < 0) {
        snprintf(err, errlen, "segment %" PRId64 ": write: %s", w->seg, strerror(errno));
        return -1;
    }
    w->size = off;
    return 0;
}

int64_t segment_writer_current(const segment_writer_t *w)
{
    return w->seg;
}

int64_t segment_writer_size(const segment_writer_t *w)
{
    return w->size;
}
