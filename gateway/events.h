/* HAProxy's notice, warning and alert lines of one source ("events"):
 * appended to a local file at once, and queued in memory for PostgreSQL
 * (`gateway_events`), which the delivery module drains with events_take()
 * and, when an insert fails, returns with events_give_back().
 *
 * The queue is bounded: when it is full the oldest queued event is dropped
 * (it is still in the local file) and counted. Thread-safe. */
#ifndef CCGW_EVENTS_H
#define CCGW_EVENTS_H

#include <stddef.h>
#include <stdint.h>

typedef struct events events_t;

struct events_item {
    int64_t ts_ms; /* when cc-gateway read the line, epoch milliseconds */
    int severity;  /* syslog 0-7 */
    char *message; /* malloc'd, printable ASCII (other bytes became '?') */
};

struct events_stats {
    uint64_t added;   /* events seen */
    uint64_t dropped; /* pushed out of a full queue */
    uint64_t file_errors;
    size_t queued;
};

/* `path`: the local file (appended; its directory is created), or NULL for
 * none. `max_queue` >= 1. NULL with `err` filled on failure. */
events_t *events_open(const char *path, size_t max_queue, char *err, size_t errlen);
void events_close(events_t *e);

/* Hand every new event to `fn` instead of the internal queue (cc-gateway
 * points it at the delivery module, which has its own queue for
 * PostgreSQL). `fn` is called with the events lock held; it must not call
 * back into this module. NULL restores the internal queue. */
typedef int (*events_sink_fn)(void *ctx, int64_t ts_ms, int severity, const char *message);
void events_set_sink(events_t *e, events_sink_fn fn, void *ctx);

/* Record one event: one line in the file, one item at the queue's tail.
 * 0, or -1 out of memory (the file line is written regardless). */
int events_add(events_t *e, int64_t ts_ms, int severity, const char *msg, size_t len);

/* Move up to `max` of the oldest events into `out`; returns how many. The
 * caller owns the messages (events_items_free, or give them back). */
size_t events_take(events_t *e, struct events_item *out, size_t max);

/* Put items taken earlier back at the head of the queue, in their order,
 * taking ownership of their messages. Items that no longer fit are dropped
 * (and counted), newest queue entries are kept. */
void events_give_back(events_t *e, struct events_item *items, size_t n);

void events_items_free(struct events_item *items, size_t n);

void events_get_stats(events_t *e, struct events_stats *out);

/* "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug". */
const char *events_severity_name(int severity);

#endif
