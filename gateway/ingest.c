/* Per-line pipeline: parse, store, judge, count. */
#include "ingest.h"

#include <string.h>

#include "bucket.h"
#include "log.h"
#include "segment.h"

int ingest_init(struct ingest *in, int32_t tz_offset_secs, const relay_table_t *table,
                counter_t *counter, int count_relays, char *err, size_t errlen)
{
    memset(in, 0, sizeof(*in));
    in->parser = logline_parser_new(tz_offset_secs, err, errlen);
    if (!in->parser)
        return -1;
    in->table = table;
    in->counter = counter;
    in->count_relays = count_relays;
    in->last_accept_ms = -1;
    return 0;
}

void ingest_destroy(struct ingest *in)
{
    logline_parser_free(in->parser);
    in->parser = NULL;
}

static void count_non_relay(struct ingest *in, enum non_relay_reason r, int64_t ms)
{
    in->stats.non_relays[r]++;
    if (counter_add_non_relay(in->counter, r, bucket_start(bucket_floor(ms, 1000) / 1000), 1) < 0)
        in->stats.count_errors++;
}

/* An unreadable request-log line, bucketed with the last request read. At
 * the edge it may be a request an HTTP tier counts: the kind counter shows
 * it, no reason does. */
static void count_unparsable(struct ingest *in, int64_t now_ms)
{
    if (in->count_relays)
        count_non_relay(in, NR_UNPARSABLE, in->last_accept_ms >= 0 ? in->last_accept_ms : now_ms);
}

void ingest_too_long(struct ingest *in, enum ingest_origin origin, int64_t now_ms)
{
    in->stats.lines++;
    in->stats.too_long++;
    in->stats.by_kind[LOGLINE_UNPARSABLE]++;
    if (origin == INGEST_STDOUT)
        count_unparsable(in, now_ms);
}

/* "#ccgw segment <n> haproxy_pid=<pid> ..." or "#ccgw stderr <text>". */
static void meta_line(struct ingest *in, const char *line, size_t len, int64_t now_ms)
{
    static const char seg[] = SEGMENT_META_PREFIX "segment ";
    size_t plen = sizeof(SEGMENT_STDERR_PREFIX) - 1;
    in->stats.meta_lines++;
    if (len >= plen && memcmp(line, SEGMENT_STDERR_PREFIX, plen) == 0) {
        ingest_line(in, line + plen, len - plen, INGEST_STDERR, now_ms);
        return;
    }
    if (len > sizeof(seg) - 1 && memcmp(line, seg, sizeof(seg) - 1) == 0) {
        const char *p = memmem(line, len, "haproxy_pid=", 12);
        long pid = 0;
        if (p)
            for (p += 12; p < line + len && *p >= '0' && *p <= '9'; p++)
                pid = pid * 10 + (*p - '0');
        in->haproxy_pid = pid;
    }
}

void ingest_line(struct ingest *in, const char *line, size_t len, enum ingest_origin origin,
                 int64_t now_ms)
{
    struct logline l;
    struct relay_route route;
    enum non_relay_reason reason;

    if (origin == INGEST_STDOUT && len >= sizeof(SEGMENT_META_PREFIX) - 1 &&
        memcmp(line, SEGMENT_META_PREFIX, sizeof(SEGMENT_META_PREFIX) - 1) == 0) {
        meta_line(in, line, len, now_ms);
        return;
    }
    in->stats.lines++;
    in->stats.bytes += len + 1;
    logline_parse(in->parser, line, len, &l);
    if (origin == INGEST_STDERR && l.kind != LOGLINE_EMPTY && l.kind != LOGLINE_EVENT) {
        /* stderr carries no request lines: continuation lines of a
         * multi-line startup message are events too */
        l.kind = LOGLINE_EVENT;
        l.severity = 5;
        l.message = (struct logline_span){line, len};
    }
    in->stats.by_kind[l.kind]++;
    switch (l.kind) {
    case LOGLINE_EMPTY:
        return;
    case LOGLINE_EVENT:
        if (in->events &&
            events_add(in->events, now_ms, l.severity, l.message.p, l.message.len) < 0)
            LOG_EVENT(LOG_ERROR, "event_lost", NULL, "out of memory");
        return;
    case LOGLINE_UNPARSABLE:
        count_unparsable(in, now_ms);
        return;
    case LOGLINE_REQUEST:
        break;
    default:
        return;
    }
    in->last_accept_ms = l.accept_ms;
    in->stats.truncated += (uint64_t)l.truncated;
    if (!in->count_relays) {
        /* the edge: what an HTTP tier took is counted there */
        if (relay_edge_check(&l, &reason))
            count_non_relay(in, reason, l.accept_ms);
        return;
    }
    if (in->on_request)
        in->on_request(in->on_request_ctx, &l);
    if (!relay_rule_check(in->table, &l, &route, &reason)) {
        count_non_relay(in, reason, l.accept_ms);
        return;
    }
    in->stats.relays++;
    if (counter_add_relay(in->counter, route.chain, route.account,
                          bucket_start(bucket_floor(l.accept_ms, 1000) / 1000), 1) < 0)
        in->stats.count_errors++;
    else if (in->on_relay)
        in->on_relay(in->on_request_ctx, &l, &route);
}
