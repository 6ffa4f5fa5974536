/* Watching HAProxy's stats socket: DroppedLogs, and the backend counters
 * for reconciliation (reconcile.h). HAProxy drops a log line rather than
 * block when the pipe to cc-gateway is full, and says so only in the
 * DroppedLogs field of `show info`. A thread polls the stats socket once
 * per interval, keeps a running total across HAProxy restarts (a counter
 * that goes down means a new process) and logs a warning the moment it
 * grows: a silent undercount is the worst bug this product can have. */
#ifndef CCGW_STATSOCK_H
#define CCGW_STATSOCK_H

#include <stddef.h>
#include <stdint.h>

typedef struct statsock statsock_t;

struct statsock_stats {
    int64_t dropped_total; /* DroppedLogs summed over HAProxy processes seen */
    int64_t polls_ok, polls_failed;
    int last_ok;         /* the last poll succeeded */
    int64_t haproxy_pid; /* of the last answer */
};

/* Called from the poller's thread after each good `show info` with that
 * HAProxy's pid and its `show stat` answer for backends (CSV), and the
 * wall-clock time just after the answer. */
typedef void (*statsock_stat_fn)(void *ctx, long pid, const char *stat, size_t len, int64_t t_ms);

/* Called from the poller's thread with the answer to `show table <table>`
 * of HAProxy `pid`, and the wall-clock times (epoch ms) just before the
 * command was sent and just after the answer ended. */
typedef void (*statsock_table_fn)(void *ctx, long pid, const char *text, size_t len, int64_t t0_ms,
                                  int64_t t1_ms);

struct statsock_options {
    const char *path;         /* the stats socket */
    int64_t interval_ms;      /* `show info` (DroppedLogs) every interval */
    statsock_stat_fn stat_fn; /* `show stat` of backends after each; may be NULL */
    const char *table;        /* a stick table to dump, NULL: none */
    int table_every;          /* ... every this many polls */
    statsock_table_fn table_fn;
    void *ctx; /* for stat_fn and table_fn */
};

/* Parse the DroppedLogs value out of a `show info` answer. 0, or -1 when
 * the field is absent or malformed. */
int statsock_parse_dropped(const char *info, size_t len, int64_t *dropped);

/* The numeric field `name` ("Pid", "DroppedLogs", ...) of a `show info`
 * answer. 0, or -1 when absent or malformed. */
int statsock_parse_field(const char *info, size_t len, const char *name, int64_t *value);

/* Send `cmd` (with its newline) on the UNIX socket `path` and read the whole
 * answer, at most `max` bytes, into a new NUL-terminated buffer (*answer,
 * free it). 0 or -1 with err. */
int statsock_command(const char *path, const char *cmd, char **answer, size_t *len, size_t max,
                     char *err, size_t errlen);

/* The pid of the HAProxy answering on `path` (`show info` Pid). 0 or -1
 * with err (nobody answers: no HAProxy there). */
int statsock_query_pid(const char *path, int64_t *pid, char *err, size_t errlen);

/* One synchronous `show info` on the UNIX socket `path`. 0 or -1 with err. */
int statsock_query(const char *path, int64_t *dropped, char *err, size_t errlen);

/* Start polling as `o` says (copied). NULL with err on failure to start the
 * thread (an absent socket is not an error: HAProxy may be starting; failed
 * polls are counted). */
statsock_t *statsock_start(const struct statsock_options *o, char *err, size_t errlen);

/* Stop the thread and free; NULL is a no-op. */
void statsock_stop(statsock_t *s);

void statsock_get_stats(statsock_t *s, struct statsock_stats *out);

#endif
