/* Replay: files through the line splitter into ingest, then a summary. */
#include "replay.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bucket.h"
#include "lines.h"

#define REPLAY_BUF (4u << 20)

struct replay_ctx {
    struct ingest *in;
    int64_t now_ms;
};

static void on_line(void *ctx, const char *line, size_t len, int too_long)
{
    struct replay_ctx *rc = ctx;
    if (too_long)
        ingest_too_long(rc->in, INGEST_STDOUT, rc->now_ms);
    else
        ingest_line(rc->in, line, len, INGEST_STDOUT, rc->now_ms);
}

/* A whole regular file mapped at once: lines are handed out in place, with
 * the splitter's rules (a line over LOGLINE_MAX is too long, a last line
 * without a newline still counts), and nothing is copied. 0, or -1 when the
 * file cannot be mapped (the caller reads it instead). */
static int replay_mapped(int fd, struct replay_ctx *rc)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0)
        return -1;
    size_t size = (size_t)st.st_size;
    char *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (map == MAP_FAILED)
        return -1;
    madvise(map, size, MADV_SEQUENTIAL);
    const char *p = map, *end = map + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        if (len > LOGLINE_MAX)
            on_line(rc, p, 0, 1);
        else
            on_line(rc, p, len, 0);
        p += len + 1;
    }
    munmap(map, size);
    return 0;
}

int replay_file(struct ingest *in, const char *path, size_t chunk, char *err, size_t errlen)
{
    struct lines lines = {0};
    struct replay_ctx rc = {.in = in, .now_ms = (int64_t)time(NULL) * 1000};
    int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
    int ret = -1;

    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (chunk == 0 && replay_mapped(fd, &rc) == 0) {
        ret = 0;
        goto out;
    }
    if (lines_init(&lines, REPLAY_BUF, LOGLINE_MAX) < 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (;;) {
        size_t avail;
        char *dst = lines_space(&lines, &avail);
        if (chunk && avail > chunk)
            avail = chunk;
        ssize_t n = read(fd, dst, avail);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        lines_commit(&lines, (size_t)n, on_line, &rc);
    }
    lines_finish(&lines, on_line, &rc);
    ret = 0;
out:
    lines_free(&lines);
    if (fd > 0)
        close(fd);
    return ret;
}

struct summary_ctx {
    json_t *by_chain, *by_bucket;
    int failed;
};

static int add_to(json_t *obj, const char *key, int64_t n)
{
    json_t *cur = json_object_get(obj, key);
    json_int_t v = (cur ? json_integer_value(cur) : 0) + n;
    return json_object_set_new(obj, key, json_integer(v));
}

static int summary_row(void *ctx, const struct counter_delta *row)
{
    struct summary_ctx *sc = ctx;
    char iso[32];
    if (!row->chain)
        return 0;
    bucket_format_iso(row->bucket, iso, sizeof(iso));
    if (add_to(sc->by_chain, row->chain, row->n) < 0 || add_to(sc->by_bucket, iso, row->n) < 0) {
        sc->failed = 1;
        return 1;
    }
    return 0;
}

/* The child objects are attached to `out` first (jansson steals them even
 * on error), so that one json_decref(out) is the only cleanup. */
json_t *replay_summary(const struct ingest *in)
{
    const struct ingest_stats *st = &in->stats;
    struct summary_ctx sc = {NULL, NULL, 0};
    json_t *out = json_object();
    json_t *nr = json_object();

    if (!out || json_object_set_new(out, "non_relays", nr) < 0)
        goto fail;
    sc.by_chain = json_object();
    if (json_object_set_new(out, "by_chain", sc.by_chain) < 0)
        goto fail;
    sc.by_bucket = json_object();
    if (json_object_set_new(out, "by_bucket", sc.by_bucket) < 0)
        goto fail;
    for (int r = 0; r < NR_COUNT; r++)
        if (json_object_set_new(nr, counter_reason_name(r),
                                json_integer((json_int_t)st->non_relays[r])) < 0)
            goto fail;
    counter_foreach(in->counter, summary_row, &sc);
    if (sc.failed || json_object_set_new(out, "lines", json_integer((json_int_t)st->lines)) < 0 ||
        json_object_set_new(out, "relays", json_integer((json_int_t)st->relays)) < 0 ||
        json_object_set_new(out, "events", json_integer((json_int_t)st->by_kind[LOGLINE_EVENT])) <
            0 ||
        json_object_set_new(out, "truncated", json_integer((json_int_t)st->truncated)) < 0 ||
        json_object_set_new(out, "too_long", json_integer((json_int_t)st->too_long)) < 0)
        goto fail;
    return out;
fail:
    if (!out)
        json_decref(nr);
    json_decref(out);
    return NULL;
}
