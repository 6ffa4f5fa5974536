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
#define SEGMENT_PREALLOC_MAX ((int64_t)64 << 20)

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

int64_t segment_linked(const char *dir)
{
    char path[PATH_MAX], target[256];
    if (snprintf(path, sizeof(path), "%s/requests.log", dir) >= (int)sizeof(path))
        return 0;
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    if (n <= 0)
        return 0;
    target[n] = '\0';
    const char *base = strrchr(target, '/');
    return segment_number(base ? base + 1 : target);
}

int segment_find_moved(const char *dir, int64_t seg, char *out, size_t outlen)
{
    char want[64], head[64], path[PATH_MAX];
    int wlen = snprintf(want, sizeof(want), SEGMENT_META_PREFIX "segment %" PRId64 " ", seg);
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int found = -1;
    struct dirent *e;
    while (found < 0 && (e = readdir(d)) != NULL) {
        struct stat st;
        if (e->d_name[0] == '.' || segment_number(e->d_name) == seg)
            continue;
        if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path) ||
            lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = pread(fd, head, sizeof(head), 0);
        close(fd);
        if (n >= wlen && memcmp(head, want, (size_t)wlen) == 0 &&
            snprintf(out, outlen, "%s", path) < (int)outlen)
            found = 0;
    }
    closedir(d);
    return found;
}

struct segment_writer {
    char *dir;
    int dirfd;
    int fd; /* current segment, -1 before the first */
    int64_t seg, size, max_bytes;
    pid_t pid;
    int ends_line;     /* the segment ends with '\n' (or is empty) */
    int no_splice;     /* the input is no pipe: read/write */
    int pending_start; /* pid's segment could not be started yet */
    int preallocated;  /* space past the end was reserved (fallocate) */
};

/* Give back what was preallocated past the end of the segment being left
 * (ftruncate to its own size frees the blocks past it). */
static void release_current(segment_writer_t *w)
{
    if (w->fd < 0)
        return;
    if (w->preallocated && ftruncate(w->fd, w->size) < 0) {
        /* only space is lost, until retention deletes the segment */
    }
    close(w->fd);
    w->fd = -1;
    w->preallocated = 0;
}

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
    release_current(w);
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

/* A new segment's header is written to a temp file that is then linked
 * under the segment's name, so that a full disk never leaves a segment
 * without its first line for the worker to follow. */
#define SEGMENT_NEW_TMP "requests.new.tmp"

int segment_writer_start(segment_writer_t *w, pid_t pid, char *err, size_t errlen)
{
    int64_t lo, hi;
    char path[PATH_MAX], line[160], name[64];
    int fd = -1, saved;
    if (pid != w->pid || w->fd < 0) {
        /* a new HAProxy's lines never go into its predecessor's segment:
         * until this one exists, they wait in the pipe (segment_writer_move
         * tries again) */
        release_current(w);
        w->pid = pid;
        w->pending_start = 1;
    }
    if (segment_range(w->dir, &lo, &hi, NULL, err, errlen) < 0)
        return -1;
    int64_t seg = (hi > w->seg ? hi : w->seg) + 1;
    if (segment_path(w->dir, seg, path, sizeof(path)) < 0) {
        snprintf(err, errlen, "%s: path too long", w->dir);
        errno = ENAMETOOLONG;
        return -1;
    }
    unlinkat(w->dirfd, SEGMENT_NEW_TMP, 0);
    fd = openat(w->dirfd, SEGMENT_NEW_TMP, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        goto fail;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int n =
        snprintf(line, sizeof(line),
                 SEGMENT_META_PREFIX "segment %" PRId64 " haproxy_pid=%ld started_ms=%" PRId64 "\n",
                 seg, (long)pid, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    int64_t off = 0;
    if (write_at(fd, line, (size_t)n, &off) < 0)
        goto fail;
    /* best effort: the segment's space is taken now, so that a disk that
     * fills up later does not stop it (the size stays that of what is
     * written: KEEP_SIZE) */
    int64_t want = w->max_bytes < SEGMENT_PREALLOC_MAX ? w->max_bytes : SEGMENT_PREALLOC_MAX;
    int preallocated = fallocate(fd, FALLOC_FL_KEEP_SIZE, off, want) == 0;
    if (linkat(w->dirfd, SEGMENT_NEW_TMP, w->dirfd, strrchr(path, '/') + 1, 0) < 0)
        goto fail;
    unlinkat(w->dirfd, SEGMENT_NEW_TMP, 0);
    if (fsync(w->dirfd) < 0)
        goto fail_linked;
    release_current(w);
    w->fd = fd;
    w->seg = seg;
    w->size = off;
    w->ends_line = 1;
    w->pending_start = 0;
    w->preallocated = preallocated;
    /* requests.log follows the newest segment (for people: tail -F) */
    snprintf(name, sizeof(name), "requests.%010" PRId64 ".log", seg);
    unlinkat(w->dirfd, "requests.log.tmp", 0);
    if (symlinkat(name, w->dirfd, "requests.log.tmp") < 0 ||
        renameat(w->dirfd, "requests.log.tmp", w->dirfd, "requests.log") < 0) {
        /* not fatal: only a convenience */
    }
    return 0;
fail_linked:
    saved = errno;
    snprintf(err, errlen, "%s: %s", path, strerror(saved));
    unlinkat(w->dirfd, strrchr(path, '/') + 1, 0);
    close(fd);
    errno = saved;
    return -1;
fail:
    saved = errno;
    snprintf(err, errlen, "%s: %s", path, strerror(saved));
    if (fd >= 0)
        close(fd);
    unlinkat(w->dirfd, SEGMENT_NEW_TMP, 0);
    errno = saved;
    return -1;
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
    if (w->fd < 0 && w->pending_start && segment_writer_start(w, w->pid, err, errlen) < 0)
        return -1;
    if (w->fd < 0) {
        snprintf(err, errlen, "%s: no segment started", w->dir);
        errno = EINVAL;
        return -1;
    }
    /* a cut that fails (a full disk) leaves the lines in this segment while
     * it can still take them: the cut is tried again with the next move */
    if (w->size >= w->max_bytes && w->ends_line)
        (void)segment_writer_start(w, w->pid, err, errlen);
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
                /* what was read is lost: only when the input is no pipe */
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

int segment_writer_probe(segment_writer_t *w, int64_t bytes, char *err, size_t errlen)
{
    if (w->fd < 0)
        return 0; /* segment_writer_move starts it, and says */
    if (fallocate(w->fd, FALLOC_FL_KEEP_SIZE, w->size, bytes) == 0 || errno == EOPNOTSUPP ||
        errno == ENOSYS)
        return 0;
    int saved = errno;
    snprintf(err, errlen, "segment %" PRId64 ": %s", w->seg, strerror(saved));
    errno = saved;
    return -1;
}

int segment_status_open(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    struct segment_status ok = {0};
    if (fd < 0 || segment_status_write(fd, &ok) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

int segment_status_write(int fd, const struct segment_status *st)
{
    char buf[SEGMENT_STATUS_BYTES];
    int n = snprintf(buf, sizeof(buf), "state=%s since_ms=%" PRId64 " episodes=%" PRId64 " error=",
                     st->blocked ? "blocked" : "ok", st->since_ms, st->episodes);
    for (size_t i = 0; st->error[i] && (size_t)n < sizeof(buf) - 8; i++)
        buf[n++] = st->error[i] == '\n' ? ' ' : st->error[i];
    memcpy(buf + n, " end", 4);
    n += 4;
    memset(buf + n, ' ', sizeof(buf) - 1 - (size_t)n);
    buf[sizeof(buf) - 1] = '\n';
    return pwrite(fd, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf) ? 0 : -1;
}

int segment_status_read(const char *path, struct segment_status *st)
{
    char buf[SEGMENT_STATUS_BYTES + 1], state[16];
    long long since, episodes;
    int at = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = pread(fd, buf, SEGMENT_STATUS_BYTES, 0);
    close(fd);
    if (n != SEGMENT_STATUS_BYTES)
        return -1;
    buf[n] = '\0';
    if (sscanf(buf, "state=%15s since_ms=%lld episodes=%lld error=%n", state, &since, &episodes,
               &at) != 3 ||
        at == 0)
        return -1;
    /* the error runs to the end mark; a torn read (the supervisor writing
     * meanwhile) misses it */
    char *end = NULL;
    for (char *p = buf + at; (p = strstr(p, " end")) != NULL; p++)
        end = p;
    if (!end || strspn(end + 4, " \n") != strlen(end + 4))
        return -1;
    memset(st, 0, sizeof(*st));
    st->blocked = strcmp(state, "blocked") == 0;
    st->since_ms = since;
    st->episodes = episodes;
    size_t elen = (size_t)(end - (buf + at));
    if (elen >= sizeof(st->error))
        elen = sizeof(st->error) - 1;
    memcpy(st->error, buf + at, elen);
    st->error[elen] = '\0';
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
