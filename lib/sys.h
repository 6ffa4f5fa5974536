/* System helpers shared by every binary: complete writes, durable file
 * replacement, clocks, error messages and the array-count macro. Each has
 * exactly one home here; grep for a twin before writing another. */
#ifndef CCGW_SYS_H
#define CCGW_SYS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Number of elements of an array (not a pointer). */
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Fill `err` (of `errlen` bytes, may be NULL/0) with a printf-style message,
 * truncated to fit. Always returns -1 so that a failing function can end
 * with `return sys_set_err(err, errlen, ...)`. errno is preserved. */
int sys_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* sys_set_err() into the `err` / `errlen` parameters of the calling
 * function: the usual shape of `int f(..., char *err, size_t errlen)`. */
#define SYS_ERR(...) sys_set_err(err, errlen, __VA_ARGS__)

/* Write all `len` bytes of `buf` to `fd`, retrying short writes and EINTR.
 * 0, or -1 with errno set (the number of bytes written is then unknown). */
int sys_write_all(int fd, const void *buf, size_t len);

/* Create the directory `dir` and every missing parent (mkdir -p), mode
 * 0755. 0, or -1 with errno set. */
int sys_mkdirs(const char *dir);

/* fsync the directory `dir`, so that a rename or create in it is durable.
 * 0, or -1 with errno set. */
int sys_fsync_dir(const char *dir);

/* Replace `path` with `len` bytes durably: write "<path>.tmp" (created with
 * `mode`), fsync it, rename it over `path`, fsync the directory. After 0 the
 * new content survives a crash; on -1 `err` says why, errno is that of the
 * failing call, the temp file is removed and the old content is intact
 * (unless only the final directory fsync failed: the rename is done then). */
int sys_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, char *err,
                          size_t errlen);

/* Monotonic clock (CLOCK_MONOTONIC): milliseconds, and seconds as a double
 * with nanosecond resolution for durations and latency histograms. */
int64_t sys_mono_ms(void);
double sys_mono_s(void);

/* Wall clock (CLOCK_REALTIME): milliseconds since the Unix epoch. */
int64_t sys_wall_ms(void);

#endif
