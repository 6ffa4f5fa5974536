/* Segment follower; see follow.h. */
#include "follow.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "logline.h"

#define FOLLOW_BUF (4u << 20)

int follow_open(struct follow *f, const char *dir, const struct segment_pos *from, char *err,
                size_t errlen)
{
    memset(f, 0, sizeof(*f));
    f->fd = -1;
    f->seg = from ? from->seg : 0;
    f->read_off = from && from->seg ? from->off : 0;
    if (!(f->dir = strdup(dir)) || lines_init(&f->lines, FOLLOW_BUF, LOGLINE_MAX) < 0) {
        free(f->dir);
        f->dir = NULL;
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

void follow_close(struct follow *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    lines_free(&f->lines);
    free(f->dir);
    f->dir = NULL;
}

struct segment_pos follow_pos(const struct follow *f)
{
    struct segment_pos p = {f->seg, f->read_off - (int64_t)f->lines.len};
    if (p.off < 0)
        p.off = 0;
    return p;
}

int64_t follow_lag(const struct follow *f)
{
    struct stat st;
    if (f->fd < 0 || fstat(f->fd, &st) < 0 || st.st_size <= f->read_off)
        return 0;
    return st.st_size - f->read_off;
}

static int seg_exists(const struct follow *f, int64_t seg)
{
    char path[PATH_MAX];
    struct stat st;
    return segment_path(f->dir, seg, path, sizeof(path)) == 0 && stat(path, &st) == 0;
}

/* Whether the writer has started a segment after f->seg: the next one by
 * name, or requests.log naming a later one (the next may have been renamed;
 * open_current finds it by its header line). */
static int later_started(const struct follow *f)
{
    return seg_exists(f, f->seg + 1) || segment_linked(f->dir) > f->seg;
}

/* Open f->seg, or the first segment after it when it is gone (loudly: its
 * uncounted bytes are lost). 1 when open, 0 when there is nothing to open
 * yet, -1 with err. */
static int open_current(struct follow *f, char *err, size_t errlen)
{
    char path[PATH_MAX];
    if (f->seg == 0) {
        int64_t lo, hi;
        if (segment_range(f->dir, &lo, &hi, NULL, err, errlen) < 0)
            return -1;
        if (lo == 0)
            return 0;
        f->seg = lo;
        f->read_off = 0;
    }
    for (;;) {
        if (segment_path(f->dir, f->seg, path, sizeof(path)) < 0) {
            snprintf(err, errlen, "%s: path too long", f->dir);
            return -1;
        }
        f->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (f->fd >= 0)
            return 1;
        if (errno != ENOENT) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            return -1;
        }
        /* renamed (mv) but still here: its header line names it */
        char moved[PATH_MAX];
        if (segment_find_moved(f->dir, f->seg, moved, sizeof(moved)) == 0 &&
            (f->fd = open(moved, O_RDONLY | O_CLOEXEC)) >= 0) {
            LOG_EVENT(LOG_WARN, "segment_moved", NULL,
                      "a request-log segment not counted yet was renamed: found by its header "
                      "line, counted there",
                      LF_STR("dir", f->dir), LF_INT("segment", f->seg), LF_STR("path", moved),
                      LF_INT("offset", f->read_off));
            return 1;
        }
        int64_t next = segment_next(f->dir, f->seg);
        if (next == 0)
            return 0; /* not written yet */
        LOG_EVENT(LOG_ERROR, "segment_missing", NULL,
                  "a request-log segment that was not counted yet is gone: its relays are lost",
                  LF_STR("dir", f->dir), LF_INT("segment", f->seg), LF_INT("offset", f->read_off),
                  LF_INT("next_segment", next));
        f->skipped_segments++;
        f->seg = next;
        f->read_off = 0;
    }
}

/* At the end of the current segment: one that someone deleted (its link
 * count is 0) is still read through the open file, so nothing goes
 * uncounted, but the kept request log (the audit trail) lost it: said once
 * per segment. */
static void note_deleted(struct follow *f)
{
    struct stat st;
    if (f->deleted_seen_seg == f->seg || fstat(f->fd, &st) < 0 || st.st_nlink > 0)
        return;
    f->deleted_seen_seg = f->seg;
    f->deleted_segments++;
    LOG_EVENT(LOG_ERROR, "segment_deleted", NULL,
              "the request-log segment being written was deleted: its lines are still counted, "
              "but the kept request log has lost them",
              LF_STR("dir", f->dir), LF_INT("segment", f->seg));
}

int64_t follow_step(struct follow *f, size_t max_bytes, lines_fn fn, void *ctx, int *at_end,
                    char *err, size_t errlen)
{
    int64_t total = 0;
    int next_seen = 0;
    *at_end = 0;
    if (f->fd < 0) {
        int rc = open_current(f, err, errlen);
        if (rc <= 0) {
            *at_end = rc == 0;
            return rc < 0 ? -1 : 0;
        }
    }
    while ((size_t)total < max_bytes) {
        size_t avail;
        char *dst = lines_space(&f->lines, &avail);
        if (avail > max_bytes - (size_t)total)
            avail = max_bytes - (size_t)total;
        ssize_t n = pread(f->fd, dst, avail, f->read_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "%s segment %lld: %s", f->dir, (long long)f->seg,
                     strerror(errno));
            return -1;
        }
        if (n > 0) {
            f->read_off += n;
            total += n;
            lines_commit(&f->lines, (size_t)n, fn, ctx);
            next_seen = 0;
            continue;
        }
        /* At the end of this segment. The supervisor never writes to it
         * again once the next one exists: read once more after seeing the
         * next one, then this one is complete. */
        if (!next_seen) {
            if (!later_started(f)) {
                *at_end = 1;
                note_deleted(f);
                break;
            }
            next_seen = 1;
            continue;
        }
        lines_finish(&f->lines, fn, ctx);
        close(f->fd);
        f->fd = -1;
        f->seg++;
        f->read_off = 0;
        next_seen = 0;
        int rc = open_current(f, err, errlen);
        if (rc < 0)
            return -1;
        if (rc == 0) {
            *at_end = 1;
            break;
        }
    }
    return total;
}
