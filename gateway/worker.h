/* cc-gateway's worker: the counting process. It follows the request-log
 * segments the supervisor writes (follow.h), parses and counts every line
 * (ingest.h), journals the counts with the position they reach (the
 * cursor), delivers them to Redis and PostgreSQL, serves /metrics and
 * /health, and reconciles its counts with HAProxy's (reconcile.h).
 *
 * A worker may be killed at any instant: the next one resumes at the
 * journal's cursor, so nothing is lost and nothing is counted twice. On
 * SIGTERM it counts to the end of what the supervisor wrote, makes a last
 * journal append and flush, and exits; if its supervisor is gone (a parent-
 * death SIGTERM), it first moves what is left in HAProxy's pipe into the
 * segment itself. SIGUSR1: catch up, then flush to PostgreSQL. */
#ifndef CCGW_WORKER_H
#define CCGW_WORKER_H

#include <stdint.h>

#include "ccgwconf.h"

struct worker_options {
    const char *source;
    const char *listen; /* NULL: the tier's gateway_listen; "none": off */
    int no_delivery;    /* count in memory only */
    int drain_fd;       /* read end of HAProxy's stdout, for the orphan drain; -1 */
    int64_t restarts;   /* workers that ran before this one (metrics) */
};

/* The worker could not start (a config or database it refuses): restarting
 * it cannot help, and the supervisor stops with an error. */
#define WORKER_EXIT_FATAL 3

/* Run until SIGTERM/SIGINT. Returns the exit status: 0, 1 with the reason
 * logged, or WORKER_EXIT_FATAL when it could not start. */
int worker_run(const struct ccgwconf *conf, const struct worker_options *o);

#endif
