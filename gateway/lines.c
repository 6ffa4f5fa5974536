/* Zero-copy line splitter; see lines.h. */
#include "lines.h"

#include <stdlib.h>
#include <string.h>

int lines_init(struct lines *l, size_t cap, size_t max_line)
{
    memset(l, 0, sizeof(*l));
    if (cap <= max_line)
        return -1;
    l->buf = malloc(cap);
    if (!l->buf)
        return -1;
    l->cap = cap;
    l->max_line = max_line;
    return 0;
}

void lines_free(struct lines *l)
{
    free(l->buf);
    l->buf = NULL;
    l->cap = l->len = 0;
}

char *lines_space(struct lines *l, size_t *avail)
{
    *avail = l->cap - l->len;
    return l->buf + l->len;
}

void lines_commit(struct lines *l, size_t n, lines_fn fn, void *ctx)
{
    /* Only the new bytes can hold a newline: the held tail had none. */
    size_t scan = l->len;
    size_t start = 0;
    l->len += n;
    for (;;) {
        char *nl = memchr(l->buf + scan, '\n', l->len - scan);
        if (!nl)
            break;
        size_t end = (size_t)(nl - l->buf);
        if (l->skipping)
            l->skipping = 0;
        else if (end - start > l->max_line)
            fn(ctx, l->buf, 0, 1);
        else
            fn(ctx, l->buf + start, end - start, 0);
        start = scan = end + 1;
    }
    if (l->skipping) {
        l->len = 0;
        return;
    }
    size_t rest = l->len - start;
    if (rest > l->max_line) {
        fn(ctx, l->buf, 0, 1);
        l->skipping = 1;
        l->len = 0;
        return;
    }
    if (start > 0 && rest > 0)
        memmove(l->buf, l->buf + start, rest);
    l->len = rest;
}

void lines_feed(struct lines *l, const char *data, size_t n, lines_fn fn, void *ctx)
{
    while (n > 0) {
        size_t avail;
        char *dst = lines_space(l, &avail);
        size_t k = n < avail ? n : avail;
        memcpy(dst, data, k);
        lines_commit(l, k, fn, ctx);
        data += k;
        n -= k;
    }
}

void lines_finish(struct lines *l, lines_fn fn, void *ctx)
{
    if (!l->skipping && l->len > 0)
        fn(ctx, l->buf, l->len, 0);
    l->len = 0;
    l->skipping = 0;
}
