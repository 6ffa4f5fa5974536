/* Reconciliation at the billing key: the relays the worker counted per
 * route (chain and account, as the HTTP tier routed them) against HAProxy's
 * own count per route, so that a relay served and never billed is seen per
 * account, not only per chain backend (reconcile.h), where a drift between
 * accounts of one chain would cancel out.
 *
 * HAProxy's side: each be_<chain> of an HTTP tier tracks the request's
 * route in the stick table `st_routes` and adds one to its gpc0 for every
 * 2xx-4xx answer (haproxy/templates). The stats poller reads `show table
 * st_routes`; a sample is the table at time T of one HAProxy process.
 *
 * Our side: every relay with a 2xx-4xx status, keyed by its route and the
 * time HAProxy had its response (logline_response_ms). The first sample a
 * worker takes after it started is the baseline B: every line whose
 * response came after B was written after the worker started, so the worker
 * reads all of them, whatever journal position it resumed at (no per-route
 * state survives a restart, and none needs to). For each later sample S,
 * judged once the worker has read everything until RECONCILE_SETTLE_MS
 * after it, HAProxy's count moved by h = S[route] - B[route], and we
 * counted the relays of that route answered between the two dumps. A dump
 * is not an instant we know, only an interval (from the command to its
 * answer, widened by ROUTEGAP_MARGIN_MS for HAProxy's clock), so our count
 * is a range: at least the relays answered after B's interval and before
 * S's, at most those answered from B's start to S's end. Only what lies
 * outside it is reported: h above the most is a gap (relays HAProxy
 * answered that were not billed to that account: a dropped line, a line
 * counted to another key); h below the least is an excess (relays billed
 * that HAProxy did not answer there). So load does not make a gap appear,
 * and one lost line shows as soon as it is outside the dumps' intervals. A
 * new HAProxy process starts over (new baseline).
 *
 * Memory: a route is interned once (its name and three counters, about
 * 150 bytes); lines wait in a queue until the sample after them is judged
 * (16 bytes each, a few seconds of relays). Not thread-safe except
 * routegap_sample_parse, which touches no shared state. */
#ifndef CCGW_ROUTEGAP_H
#define CCGW_ROUTEGAP_H

#include <stddef.h>
#include <stdint.h>

/* The stick table the HTTP tiers count relays per route in. */
#define ROUTEGAP_TABLE "st_routes"

typedef struct routegap routegap_t;
struct routegap_sample;

/* `start_ms`: when the worker started (wall clock, epoch ms); samples
 * taken before it are never the baseline. NULL out of memory. */
routegap_t *routegap_new(int64_t start_ms);
void routegap_free(routegap_t *g);

/* A relay of HAProxy process `pid`, route "<chain>/<account>", status
 * `status`, response headers at `response_ms` (-1: unknown, ignored).
 * 0, or -1 out of memory (the line is not tracked; the next judgement
 * shows it as a gap, loudly). */
int routegap_relay(routegap_t *g, long pid, const char *chain, const char *account, int status,
                   int64_t response_ms);

/* Parse a `show table st_routes` answer of process `pid`, asked for at
 * `t0_ms` and answered by `t1_ms` (epoch ms). NULL when the answer is not
 * that table (an HTTP tier without it, an error message) or out of
 * memory. Any thread. */
struct routegap_sample *routegap_sample_parse(long pid, const char *text, size_t len, int64_t t0_ms,
                                              int64_t t1_ms);
void routegap_sample_free(struct routegap_sample *s);

/* Hand a sample over (the routegap owns it from then on) while the worker
 * reads the log of HAProxy process `reading_pid`; a sample of another
 * process is dropped. */
void routegap_add_sample(routegap_t *g, long reading_pid, struct routegap_sample *s);

/* Judge every sample taken more than RECONCILE_SETTLE_MS before
 * `caught_up_ms`. Returns how many were judged. */
size_t routegap_evaluate(routegap_t *g, int64_t caught_up_ms);

struct routegap_stats {
    int64_t checks;        /* samples judged against a baseline */
    int64_t last_check_ms; /* time of the last one, 0: none */
    int64_t gap;           /* sum of the positive gaps at the last check */
    int64_t excess;        /* sum of the negative gaps, as a positive number */
    size_t routes_gap;     /* routes with a positive gap */
    size_t routes_excess;  /* routes with a negative gap */
    size_t routes;         /* routes known */
    int64_t restarts;      /* comparisons started over: no sample came for too long */
};
void routegap_stats(const routegap_t *g, struct routegap_stats *out);

struct routegap_route {
    const char *route; /* "<chain>/<account>", owned by the routegap */
    int64_t gap;       /* at the last check; negative: excess */
    int64_t haproxy;   /* HAProxy's count since the baseline */
};
/* The `n` routes with the largest |gap| at the last check, largest first.
 * Returns how many were filled (only routes with a gap). */
size_t routegap_worst(const routegap_t *g, struct routegap_route *out, size_t n);

#endif
