/* What happens to each line of one source: classify and parse it
 * (logline), store it (request log, or events for notices), and apply the
 * relay rule to update the counters. Shared by the live path (source.c)
 * and by replay. Not thread-safe: cc-gateway calls it with the counter lock
 * held, one read buffer at a time. */
#ifndef CCGW_INGEST_H
#define CCGW_INGEST_H

#include <stdint.h>

#include "counter.h"
#include "events.h"
#include "logline.h"
#include "relay.h"

/* Where a line came from: HAProxy's stdout (logs) or stderr (startup
 * messages, where every line is an event). */
enum ingest_origin { INGEST_STDOUT = 0, INGEST_STDERR };

struct ingest_stats {
    uint64_t lines; /* every line, too-long ones included */
    uint64_t bytes; /* newlines included */
    uint64_t by_kind[LOGLINE_NKINDS];
    uint64_t too_long;  /* lines over LOGLINE_MAX (also in by_kind unparsable) */
    uint64_t truncated; /* request lines cut by HAProxy's log size limit */
    uint64_t relays;    /* counted relays (0 when the source does not count) */
    uint64_t non_relays[NR_COUNT];
    uint64_t count_errors; /* counter updates lost to out-of-memory */
    uint64_t meta_lines;   /* lines the supervisor wrote (segment starts, stderr) */
};

/* Called for every request line of a counting source with what the
 * reconciliation with HAProxy's own counters needs (see reconcile.h). */
typedef void (*ingest_request_fn)(void *ctx, const struct logline *l);

/* Called for every relay counted, with its route (see routegap.h). */
typedef void (*ingest_relay_fn)(void *ctx, const struct logline *l, const struct relay_route *r);

struct ingest {
    logline_parser_t *parser;     /* owned */
    const relay_table_t *table;   /* borrowed */
    counter_t *counter;           /* borrowed */
    events_t *events;             /* borrowed, may be NULL */
    ingest_request_fn on_request; /* may be NULL */
    ingest_relay_fn on_relay;     /* may be NULL */
    void *on_request_ctx;         /* for both */
    long haproxy_pid;             /* of the segment being read (its first line); 0: unknown */
    int count_relays;             /* 0: lines are stored, never counted (edge) */
    int64_t last_accept_ms;       /* of the last request line; -1 before one */
    struct ingest_stats stats;
};

/* Set up with a new parser for `tz_offset_secs`. 0, or -1 with err. */
int ingest_init(struct ingest *in, int32_t tz_offset_secs, const relay_table_t *table,
                counter_t *counter, int count_relays, char *err, size_t errlen);
void ingest_destroy(struct ingest *in);

/* One line without its newline. Lines the supervisor wrote into the
 * request log (segment.h: a segment's first line, HAProxy's stderr) are
 * recognised here, so that live counting and replay agree. `now_ms` is the wall clock (events, and
 * the bucket of an unparsable line before any request line was seen: such a line has no accept date
 * of its own, so it goes to the bucket of the last request line, which keeps replay deterministic).
 */
void ingest_line(struct ingest *in, const char *line, size_t len, enum ingest_origin origin,
                 int64_t now_ms);

/* A line longer than LOGLINE_MAX was skipped: count it as unparsable. */
void ingest_too_long(struct ingest *in, enum ingest_origin origin, int64_t now_ms);

#endif
