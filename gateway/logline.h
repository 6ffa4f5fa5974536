/* One line of HAProxy 2.6 output, classified and (for request lines) split
 * into the fields the relay rule needs.
 *
 * Accepted forms (`log stdout format short`, `option httplog`):
 *   <6>CLIENT:PORT [DATE] FRONTEND BACKEND/SERVER TR/Tw/Tc/Tr/Ta STATUS BYTES
 *      CC CS TSC ac/fc/bc/sc/rc sq/bq [ROUTE] {CAPTURED_REQ_HDRS} [{RESP_HDRS}] "REQUEST"
 *      [UNIQUE_ID]
 * where ROUTE is the HTTP tier's routing decision: "<chain>/<account>" (the
 * host map's value, chain and account being DNS labels) or "-" (no entry).
 * The edge logs no ROUTE, and neither did the HTTP tiers of releases before
 * it (their lines are judged by the routing table: gateway/relay.h).
 *   <0>..<5>, <7>MESSAGE                        an event (alert ... notice, debug)
 *   [NOTICE]   (pid) : MESSAGE                  HAProxy's stderr ([WARNING], [ALERT] too)
 * A request line cut at HAProxy's log size limit (1024 bytes by default) loses
 * the end of its request line: such a line is still a request line, flagged
 * `truncated`, as long as everything up to the captured headers is there,
 * because host, backend, server and status all come before the request line.
 *
 * The pattern is compiled once (PCRE2 with JIT); parsing allocates nothing
 * and every span points into the caller's buffer. */
#ifndef CCGW_LOGLINE_H
#define CCGW_LOGLINE_H

#include <stddef.h>
#include <stdint.h>

/* Lines longer than this are never parsed: they are unparsable. */
#define LOGLINE_MAX 65536

enum logline_kind {
    LOGLINE_EMPTY = 0,  /* blank line: ignored */
    LOGLINE_REQUEST,    /* <6> httplog line */
    LOGLINE_EVENT,      /* severity 0-5 or 7, or a [LEVEL] stderr line */
    LOGLINE_UNPARSABLE, /* anything else, including <6> lines the pattern rejects */
    LOGLINE_NKINDS
};

struct logline_span {
    const char *p;
    size_t len;
};

struct logline {
    enum logline_kind kind;
    int severity;      /* syslog severity 0-7; 6 for request lines */
    int truncated;     /* request line without its closing quote */
    int status;        /* HTTP status, -1 when none was sent */
    int64_t accept_ms; /* HAProxy's accept date, epoch milliseconds UTC */
    struct logline_span client, frontend, backend, server;
    struct logline_span host;    /* the whole first {...} capture block, raw */
    struct logline_span request; /* without quotes; may be cut when truncated */
    struct logline_span unique_id;
    struct logline_span route;       /* "<chain>/<account>", "-", or NULL: not logged */
    struct logline_span termination; /* 4 chars: "----", "CD--", "sH--", ... */
    struct logline_span timers;      /* "TR/Tw/Tc/Tr/Ta" */
    struct logline_span message;     /* events: the text after the prefix */
};

typedef struct logline_parser logline_parser_t;

/* Compile the patterns. `tz_offset_secs` is the zone of HAProxy's dates
 * (seconds east of UTC). NULL with `err` filled on failure. */
logline_parser_t *logline_parser_new(int32_t tz_offset_secs, char *err, size_t errlen);
void logline_parser_free(logline_parser_t *p);

/* Classify and parse one line (without its newline; a trailing \r is
 * ignored). Fills `out`; always succeeds, out->kind says what it was. Not
 * thread-safe: one parser per thread. */
void logline_parse(logline_parser_t *p, const char *line, size_t len, struct logline *out);

/* Normalise a captured Host for the routing table lookup: the first header of
 * a `|`-separated capture, lower-cased, `:port` removed (also after `[v6]`),
 * one trailing dot removed. Writes a NUL-terminated string into `out`.
 * Returns its length, or -1 when it does not fit in `outsize`. */
int logline_host_normalise(const char *host, size_t len, char *out, size_t outsize);

/* The route an HTTP tier logged: 1 with *chain and *account set (spans
 * into the line), 0 when it routed nowhere ("-": its map had no entry for
 * the Host), -1 when the line carries no route field. */
int logline_route(const struct logline *l, struct logline_span *chain,
                  struct logline_span *account);

/* The five timers TR, Tw, Tc, Tr, Ta (ms; -1 for a phase never reached).
 * Ta may carry a leading '+' (option logasap). 0, or -1 when the field is
 * not five numbers. */
int logline_timers(const struct logline *l, int64_t out[5]);

/* When HAProxy had the response headers of a request line: its request
 * date plus TR, Tw, Tc and Tr (epoch ms), or -1 when no response came. */
int64_t logline_response_ms(const struct logline *l);

/* "empty", "request", "event", "unparsable". */
const char *logline_kind_name(enum logline_kind k);

#endif
