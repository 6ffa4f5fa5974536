/* The local request log of one source: `requests.log` plus one rotated
 * `requests.log.1`, together never more than `max_bytes` (each file holds at
 * most half), so the oldest half is dropped first. Lines are buffered and
 * written in large appends; a write error (disk full, ...) drops the data
 * and is counted, it never stops or slows ingestion. Not thread-safe. */
#ifndef CCGW_REQLOG_H
#define CCGW_REQLOG_H

#include <stddef.h>
#include <stdint.h>

typedef struct reqlog reqlog_t;

struct reqlog_stats {
    uint64_t bytes_written;
    uint64_t bytes_dropped; /* lost to write errors */
    uint64_t rotations;
    uint64_t write_errors;
};

/* Create every missing directory of `path` (like mkdir -p of its dirname).
 * 0, or -1 with errno set. */
int reqlog_mkdirs(const char *path);

/* Open (append) `path`, creating its directory. `max_bytes` >= 2 KiB.
 * NULL with `err` filled on failure. */
reqlog_t *reqlog_open(const char *path, int64_t max_bytes, char *err, size_t errlen);

/* Append one line (a newline is added). */
void reqlog_write(reqlog_t *r, const char *line, size_t len);

/* Write out what is buffered. */
void reqlog_flush(reqlog_t *r);

/* Flush, close and free; NULL is a no-op. */
void reqlog_close(reqlog_t *r);

void reqlog_get_stats(const reqlog_t *r, struct reqlog_stats *out);

#endif
