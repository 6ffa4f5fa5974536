/* Folding of pending relay deltas (relaystats/schema.c, migration 4) for
 * every gateway: what a gateway's own fold after its flush did not do (it
 * crashed first, its fold failed, or it never flushes again). Readers never
 * need it for exactness (the relay_totals views count pending deltas); it
 * keeps relay_deltas small. `relaystats fold` runs it once, `relaystats
 * serve` at start and then periodically. */
#ifndef CCGW_RSFOLD_H
#define CCGW_RSFOLD_H

#include <libpq-fe.h>
#include <stdint.h>

#include "rserr.h"

struct rsfold_stats {
    int64_t gateways; /* gateways folded */
    int64_t keys;     /* (chain, account, bucket) keys moved */
};

/* Fold the pending deltas of every gateway that has some, one transaction
 * per gateway (relay_deltas_fold). A primary only. 0, or -1 with `err` (the
 * gateways folded before the failure stay folded). */
int rsfold_all(PGconn *pg, struct rsfold_stats *st, struct rserr *err);

struct rsfold_loop;

/* A thread that connects to `conninfo` and runs rsfold_all now and then
 * every `every_secs`, logging what it did and its failures (on a standby
 * it does nothing). NULL on OOM or when the thread cannot start. */
struct rsfold_loop *rsfold_loop_start(const char *conninfo, int every_secs);

/* Stop and join the thread, close its connection; NULL is allowed. */
void rsfold_loop_stop(struct rsfold_loop *l);

#endif
