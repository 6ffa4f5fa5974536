/* Structured logging: one line per event on one stream, `text` or `json`.
 *
 *   text: 2026-11-21T10:22:33.685Z INFO cc-gateway flush_done request_id=ab12 rows=12 msg="..."
 *   json: {"ts":"2026-11-21T10:22:33.685Z","level":"info","component":"cc-gateway",
 *          "event":"flush_done","request_id":"ab12","rows":12,"msg":"..."}
 *
 * JSON lines are byte for byte what jansson's compact dump of the same
 * object would be. Thread-safe: a line is written with one write() under a
 * mutex, so lines from threads never interleave, or queued for a writer
 * thread (log_async_start()). */
#ifndef CCGW_LOG_H
#define CCGW_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sys.h"

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON };

enum log_field_type { LOG_F_STR, LOG_F_INT, LOG_F_DOUBLE, LOG_F_BOOL };

struct log_field {
    const char *key;
    enum log_field_type type;
    union {
        const char *s;
        long long i;
        double d;
        int b;
    } v;
};

#define LF_STR(k, x) ((struct log_field){.key = (k), .type = LOG_F_STR, .v.s = (x)})
#define LF_INT(k, x) ((struct log_field){.key = (k), .type = LOG_F_INT, .v.i = (long long)(x)})
#define LF_DBL(k, x) ((struct log_field){.key = (k), .type = LOG_F_DOUBLE, .v.d = (double)(x)})
#define LF_BOOL(k, x) ((struct log_field){.key = (k), .type = LOG_F_BOOL, .v.b = !!(x)})

/* Configure the process logger. `component` is copied. `fd` is where lines
 * go (2 by default). Can be called again to reconfigure. */
void log_setup(const char *component, enum log_format format, enum log_level min_level, int fd);

/* "debug|info|warn|error" and "text|json"; 0 or -1. */
int log_level_parse(const char *s, enum log_level *out);
int log_format_parse(const char *s, enum log_format *out);
int log_enabled(enum log_level level);

/* Hand lines to a writer thread from now on, so that a caller never waits
 * on a mutex or a write(): a bounded lock-free queue of `slots` lines
 * (rounded up to a power of two), written in ticket order (each thread's
 * lines in its order) in batches: while lines flow, what came in during the
 * last ~5 ms (or a quarter of the queue, whichever is first) goes out in
 * one write() per 64 KiB; the first line after a quiet spell goes out at
 * once. A line that finds the queue full is dropped and counted
 * (log_dropped()); the writer then logs "log_dropped" with the count.
 * Crash-only: lines still queued when the process is killed are lost, those
 * of the last ~5 ms (more while the writer waits for a CPU), and the last
 * line written may be cut short. 0, or -1 (no memory or thread: lines stay
 * synchronous). */
int log_async_start(size_t slots);

/* Write what is queued and stop the writer; later lines are written
 * directly again. No-op when the writer is not running. */
void log_async_stop(void);

/* Lines dropped because the queue was full, since the process started. */
uint64_t log_dropped(void);

/* Emit one event. `request_id` may be NULL. `msg` may be NULL. */
void log_fields(enum log_level level, const char *event, const char *request_id,
                const struct log_field *fields, size_t nfields, const char *msg);

/* Emit one event with a printf-style message and no fields. */
void log_msg(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Convenience: LOG_EVENT(LOG_INFO, "flush_done", NULL, "done", LF_INT("rows", n)) */
#define LOG_EVENT(level, event, reqid, msg, ...)                                                   \
    do {                                                                                           \
        if (log_enabled(level)) {                                                                  \
            const struct log_field log_f_[] = {__VA_ARGS__};                                       \
            log_fields((level), (event), (reqid), log_f_, ARRAY_LEN(log_f_), (msg));               \
        }                                                                                          \
    } while (0)

#endif
