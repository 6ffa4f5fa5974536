/* The relay rule (DESIGN.md, "The relay rule"): a request counts when the
 * HTTP tier routed it (its line carries the route "<chain>/<account>" that
 * the tier's host map answered), HAProxy sent it to that chain's backend
 * `be_<chain>` and to a real server (not <NOSRV>), and the status is
 * 100-499. The routing decision is HAProxy's, made once; the worker reads it
 * from the line and never looks the Host up again, so a live map change or
 * any Host form HAProxy accepts is counted exactly as it was routed.
 *
 * The host table below is only for lines without a route field, which HTTP
 * tiers before the route was logged wrote (a worker resuming in such a
 * segment after an upgrade). It is built once at start from the config and
 * is read-only afterwards (safe to share between threads).
 *
 * Hosts are not stored as strings: a host is `<account>.<chain>.<domain>`,
 * so the table keeps each account and chain id once, and a host is a pair of
 * small integer ids in an open-addressing array, compared piecewise against
 * the looked-up name (about 20 bytes per host for 200,000 hosts). */
#ifndef CCGW_RELAY_H
#define CCGW_RELAY_H

#include <stddef.h>

#include "ccgwconf.h"
#include "counter.h"
#include "logline.h"

/* Longest host we look up; longer hosts are never valid. */
#define RELAY_HOST_MAX 256

/* A request's route. The strings point into the table, or into the
 * struct's own buffers when the route came from the line. */
struct relay_route {
    const char *chain;   /* chain id: "0021" */
    const char *account; /* account id: "894334g9f403" */
    const char *backend; /* "be_<chain>" */
    size_t backend_len;
    char chain_id[64], account_id[64], backend_name[68]; /* DNS labels, "be_" + one */
};

typedef struct relay_table relay_table_t;

/* Build the host table from every provider's accounts x chains. NULL with
 * `err` filled on failure (out of memory, a host too long, a duplicate host,
 * an account naming an unknown chain). */
relay_table_t *relay_table_new(const struct ccgwconf *conf, char *err, size_t errlen);
void relay_table_free(relay_table_t *t);

/* Number of hosts. */
size_t relay_table_size(const relay_table_t *t);

/* Bytes the table holds (for metrics and the memory benchmark). */
size_t relay_table_bytes(const relay_table_t *t);

/* Look up a normalised host (see logline_host_normalise): 1 with *out
 * filled, 0 when it is not a host of the table. */
int relay_table_find(const relay_table_t *t, const char *host, size_t len, struct relay_route *out);

/* Judge one request line (kind LOGLINE_REQUEST). Returns 1 for a relay, with
 * *route filled (valid while *route and `t` live); 0 for a non-relay, with
 * *reason set. `t` is read only for a line without a route field. */
int relay_rule_check(const relay_table_t *t, const struct logline *line, struct relay_route *route,
                     enum non_relay_reason *reason);

/* The edge tier counts only the requests that ended at the edge: the ones no
 * HTTP tier saw, so that each answered request is counted once, by one tier.
 * A request ended at the edge when it has no server (<NOSRV>: HAProxy's
 * parser refused it, a redirect to HTTPS, no HTTP tier up) or no connection
 * to one was made (Tc = -1: the client left while it was queued or being
 * connected). Returns 1 with *reason set for such a line: 3xx redirected,
 * 4xx bad_request (among them two different Host lines, which the parser
 * refuses), no status no_response, anything else unrouted. 0 for a request
 * an HTTP tier took, and for lines that are not requests. */
int relay_edge_check(const struct logline *line, enum non_relay_reason *reason);

#endif
