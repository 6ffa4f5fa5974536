/* The kept request log of one source, as numbered segment files that are
 * also cc-gateway's write-ahead log:
 *
 *   <logs.dir>/<source>/requests.<NNNNNNNNNN>.log   segments, oldest first
 *   <logs.dir>/<source>/requests.log                 symlink to the newest
 *
 * The supervisor moves HAProxy's output from its pipe into the newest
 * segment with splice(2), so every byte is in the pipe or in the file, never
 * only in a process's memory. Each segment belongs to one HAProxy process
 * and starts with a line the supervisor writes:
 *
 *   #ccgw segment <n> haproxy_pid=<pid> started_ms=<epoch ms>
 *
 * and segments are cut only at line ends. The worker follows the segments
 * and remembers how far it counted as a (segment, offset) position in its
 * journal; after a crash it resumes there. Retention deletes the oldest
 * segments beyond the size limit, never one at or past the counted
 * position. */
#ifndef CCGW_SEGMENT_H
#define CCGW_SEGMENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Lines the supervisor writes start with this; ingestion treats them apart
 * (they are never HAProxy's). */
#define SEGMENT_META_PREFIX "#ccgw "
/* HAProxy's stderr lines, carried in the segment as events. */
#define SEGMENT_STDERR_PREFIX "#ccgw stderr "

struct segment_pos {
    int64_t seg; /* 0: none */
    int64_t off; /* bytes into the segment, at a line start */
};

/* "<dir>/requests.<seg zero-padded to 10>.log". 0, or -1 when it does not fit. */
int segment_path(const char *dir, int64_t seg, char *out, size_t outlen);

/* The lowest and highest segment numbers in `dir` (0 and 0 when there is
 * none), and their total size. 0, or -1 with err. */
int segment_range(const char *dir, int64_t *lowest, int64_t *highest, int64_t *total_bytes,
                  char *err, size_t errlen);

/* The lowest segment number above `after`, 0 when none. */
int64_t segment_next(const char *dir, int64_t after);

/* Delete the oldest segments, below `keep_from`, while the total exceeds
 * `max_bytes`. Returns the number deleted (>= 0), or -1 with err. *blocked
 * (may be NULL) is set when the total stays over the limit because the
 * segments it holds are not counted yet. */
int segment_retain(const char *dir, int64_t keep_from, int64_t max_bytes, int *blocked, char *err,
                   size_t errlen);

/* The HAProxy pid a segment's first line names; 0 when unknown. */
long segment_pid(const char *dir, int64_t seg);

/* Position as a cursor word "<seg>:<off>" into buf; parse one back (0, or -1
 * when malformed; it stops at the second field, so that callers may append
 * fields after another ':'). */
void segment_pos_format(const struct segment_pos *p, char *buf, size_t len);
int segment_pos_parse(const char *s, struct segment_pos *p, const char **rest);

/* The writer side (the supervisor). */
typedef struct segment_writer segment_writer_t;

/* Open `dir` (created if needed) for writing; the first segment is created
 * by segment_writer_start. `max_bytes` is the size after which a segment is
 * cut at the next line end. NULL with err on failure. */
segment_writer_t *segment_writer_open(const char *dir, int64_t max_bytes, char *err, size_t errlen);
void segment_writer_close(segment_writer_t *w);

/* Start a new segment (the highest number on disk + 1) for the HAProxy
 * process `pid`: its first line says so, and requests.log points at it.
 * 0 or -1 with err. */
int segment_writer_start(segment_writer_t *w, pid_t pid, char *err, size_t errlen);

/* Continue the newest segment on disk where it ends (the worker, draining
 * the pipe after the supervisor died). Never cuts it. 0 or -1 with err. */
int segment_writer_adopt(segment_writer_t *w, char *err, size_t errlen);

/* Move what the pipe `fd` holds now into the segment (splice; read/write
 * when fd is no pipe). Returns bytes moved (> 0), 0 at the end of the input,
 * -1 with errno EAGAIN when nothing waits, -1 with err on failure. When the
 * segment is over its size and ends with a line, a new one is started for
 * the same pid first. */
ssize_t segment_writer_move(segment_writer_t *w, int fd, char *err, size_t errlen);

/* Append one whole line of our own (a SEGMENT_META_PREFIX line, without its
 * newline). Only at a line end: when the segment does not end with one
 * yet, returns 1 and writes nothing (try again after more input). 0 or -1. */
int segment_writer_line(segment_writer_t *w, const char *line, size_t len, char *err,
                        size_t errlen);

/* The segment being written (0 before the first) and its size. */
int64_t segment_writer_current(const segment_writer_t *w);
int64_t segment_writer_size(const segment_writer_t *w);

#endif
