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

/* The segment requests.log names (the newest the writer started, even when
 * it was renamed since), 0 when none. One readlink. */
int64_t segment_linked(const char *dir);

/* A segment moved away from its name (mv) but still in `dir`: the path of
 * the regular file whose first line is segment `seg`'s header, into out.
 * 0, or -1 when there is none. */
int segment_find_moved(const char *dir, int64_t seg, char *out, size_t outlen);

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
 * Its space, up to `max_bytes`, is preallocated where the file system can
 * (fallocate, KEEP_SIZE: the size stays what is written; the rest is given
 * back when the next segment starts). 0, or -1 with err and errno. For a
 * new pid, a failure leaves the writer without a segment: the next
 * segment_writer_move tries to start it again (the pid's lines never go
 * into another pid's segment). */
int segment_writer_start(segment_writer_t *w, pid_t pid, char *err, size_t errlen);

/* Continue the newest segment on disk where it ends (the worker, draining
 * the pipe after the supervisor died). Never cuts it. 0 or -1 with err. */
int segment_writer_adopt(segment_writer_t *w, char *err, size_t errlen);

/* Move what the pipe `fd` holds now into the segment (splice; read/write
 * when fd is no pipe). Returns bytes moved (> 0), 0 at the end of the input,
 * -1 with errno EAGAIN when nothing waits, -1 with err and errno on failure
 * (ENOSPC, EIO, ...: what splice could not write stays in the pipe, so a
 * later call carries on where this one stopped). When the segment is over
 * its size and ends with a line, a new one is started for the same pid
 * first; when that fails, this one takes the lines meanwhile. */
ssize_t segment_writer_move(segment_writer_t *w, int fd, char *err, size_t errlen);

/* Append one whole line of our own (a SEGMENT_META_PREFIX line, without its
 * newline). Only at a line end: when the segment does not end with one
 * yet, returns 1 and writes nothing (try again after more input). 0 or -1. */
int segment_writer_line(segment_writer_t *w, const char *line, size_t len, char *err,
                        size_t errlen);

/* Whether `bytes` more could be written now: reserves them past the end
 * (fallocate, KEEP_SIZE). 0 (also where the file system cannot tell), or -1
 * with err and errno (ENOSPC). Used to see that a full disk has room again
 * while the pipe is empty. */
int segment_writer_probe(segment_writer_t *w, int64_t bytes, char *err, size_t errlen);

/* The segment being written (0 before the first) and its size. */
int64_t segment_writer_current(const segment_writer_t *w);
int64_t segment_writer_size(const segment_writer_t *w);

/* Whether the supervisor can write the request log, told to the worker
 * (which says it on /health/ready, /metrics and as events). The supervisor
 * keeps it in a small file under its state dir, written in place at a
 * fixed size, so that saying "blocked" never needs space on a full disk:
 *
 *   state=<ok|blocked> since_ms=<epoch ms> episodes=<n> error=<text> end
 *
 * padded with blanks to SEGMENT_STATUS_BYTES. */
#define SEGMENT_STATUS_FILE "request_log.status"
#define SEGMENT_STATUS_BYTES 512

struct segment_status {
    int blocked;      /* the supervisor cannot write HAProxy's lines now */
    int64_t since_ms; /* when this blocked episode began (epoch ms); 0 when ok */
    int64_t episodes; /* blocked episodes since the supervisor started */
    char error[256];  /* the last write error ("" when none) */
};

/* Create (or reuse) the status file at `path`, its SEGMENT_STATUS_BYTES
 * written once. Returns its fd, or -1 with err. */
int segment_status_open(const char *path, char *err, size_t errlen);

/* Overwrite the status in place. 0, or -1 with errno. */
int segment_status_write(int fd, const struct segment_status *st);

/* Read the status at `path`. 0, or -1 when there is none or it is torn
 * (read again later). */
int segment_status_read(const char *path, struct segment_status *st);

#endif
