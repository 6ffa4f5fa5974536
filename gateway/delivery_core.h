/* The exactly-once flush protocol of delivery (delivery.h) without its
 * threads: delivery.c's threads drive it, the unit tests drive it directly and
 * stop it at each crash point. Not part of delivery's contract: only
 * delivery.c and tests/unit/test_delivery.c include it. */
#ifndef CCGW_DELIVERY_CORE_H
#define CCGW_DELIVERY_CORE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "counter.h"
#include "journal.h"

/* A flush of seq N (crash points: journal.h's journal_crash_hook):
 *   1. under the journal lock and the counter lock: take COUNTER_PG (S) and
 *      COUNTER_JOURNAL (its part not yet journaled is inside S), and start a
 *      new journal generation, so later deltas land after the cut;
 *   2. write the intent flush.N = (instance, N, generations <= g, S) durably;
 *   3. delete journal generations <= g (their deltas are in the intent);
 *   4. apply S with the ledger row (instance, N) in one transaction; "already
 *      applied" (the ledger row exists) counts as committed;
 *   5. record N as committed in the state file and delete the intent.
 * A failed step 4 is retried later with the same N and S; flush N+1 does not
 * start before N committed. At start, an intent is retried first and the
 * generations after it are replayed into COUNTER_PG (not COUNTER_JOURNAL:
 * they are journaled already). */
typedef int (*delivery_apply_fn)(void *ctx, const char *instance, int64_t seq,
                                 const struct counter_deltas *d, int *already_applied, char *err,
                                 size_t errlen);

struct delivery_core {
    journal_t *journal;
    counter_t *counter;
    pthread_mutex_t *counter_lock;
    char *cursor; /* see delivery_options; NULL: appends carry no cursor */
    void (*on_durable)(void *ctx, const char *cursor); /* see delivery_options */
    void (*before_durable)(void *ctx, const char *cursor);
    void *on_durable_ctx;         /* for both */
    pthread_mutex_t journal_lock; /* journal appends vs. the flush's cut */
    int inflight;                 /* a flush was cut and is not committed yet */
    int64_t inflight_seq;
    struct counter_deltas inflight_deltas;
    size_t torn_records;       /* bad journal records skipped at open */
    int64_t compact_min_bytes; /* compact the journal from this size; 0: never */
    int64_t compactions;       /* journal compactions done */
};

#define DELIVERY_CRASHED JOURNAL_CRASHED /* the crash hook stopped the protocol */

struct delivery_flush_result {
    int64_t seq;         /* the flush committed (0: nothing to flush) */
    size_t rows;         /* its rows */
    int64_t relays;      /* its relays */
    int already_applied; /* the ledger had it: a retry after a lost answer */
    int was_inflight;    /* it was cut earlier (retry or recovered intent) */
};

/* Open the journal in `dir` and recover it into `counter` (see above). 0, or
 * -1 with err. */
int delivery_core_open(struct delivery_core *c, const char *dir, counter_t *counter,
                       pthread_mutex_t *counter_lock, char *err, size_t errlen);

/* The same, keeping the journal's cursor in `cursor` (see
 * delivery_options): filled with the recovered one, carried by appends and
 * intents. */
int delivery_core_open_at(struct delivery_core *c, const char *dir, counter_t *counter,
                          pthread_mutex_t *counter_lock, char *cursor, char *err, size_t errlen);

/* Append COUNTER_JOURNAL deltas to the journal and fdatasync; then compact
 * the journal when it has grown past c->compact_min_bytes (see
 * journal_compact_due). 0, -1 with err, or DELIVERY_CRASHED. */
int delivery_core_journal(struct delivery_core *c, char *err, size_t errlen);

/* One flush: commit the in-flight one if any, else cut a new one from the
 * pending deltas and commit it. 0 (res filled; res->seq 0 when nothing was
 * pending), -1 with err (retry later), or DELIVERY_CRASHED. */
int delivery_core_flush(struct delivery_core *c, delivery_apply_fn apply, void *ctx,
                        struct delivery_flush_result *res, char *err, size_t errlen);

/* Free memory and close files; writes nothing. */
void delivery_core_close(struct delivery_core *c);

#endif
