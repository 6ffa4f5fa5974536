/* Splitting a byte stream into lines without copying them: the reader reads
 * straight into the splitter's buffer, complete lines are handed out in
 * place, and only the unfinished tail moves to the front. A line that spans
 * several reads comes out whole; a line longer than the maximum is reported
 * once as too long and its bytes are skipped up to the next newline, never
 * buffered. */
#ifndef CCGW_LINES_H
#define CCGW_LINES_H

#include <stddef.h>

struct lines {
    char *buf;
    size_t cap, len; /* bytes held, all of them after the last newline handed out */
    size_t max_line; /* longest line handed out, newline excluded */
    int skipping;    /* inside a too-long line: drop bytes up to the next newline */
};

/* `line` is not NUL-terminated and excludes the newline; valid during the
 * call only. `too_long` calls have len 0. */
typedef void (*lines_fn)(void *ctx, const char *line, size_t len, int too_long);

/* Buffer of `cap` bytes (> max_line). 0, or -1 out of memory. */
int lines_init(struct lines *l, size_t cap, size_t max_line);
void lines_free(struct lines *l);

/* Where to read next, and how much fits. */
char *lines_space(struct lines *l, size_t *avail);

/* `n` bytes were written at lines_space(): hand out every complete line. */
void lines_commit(struct lines *l, size_t n, lines_fn fn, void *ctx);

/* Copy `n` bytes in (for callers that do not read into the buffer). */
void lines_feed(struct lines *l, const char *data, size_t n, lines_fn fn, void *ctx);

/* End of stream: hand out the last line if it had no newline. */
void lines_finish(struct lines *l, lines_fn fn, void *ctx);

#endif
