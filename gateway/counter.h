/* Relay and non-relay counters of one cc-gateway source, in memory.
 *
 * Keys: relays by (chain, account, bucket_start), non-relays by (reason,
 * bucket_start); the gateway name is the process's. Every key carries three
 * independent pending deltas, one per consumer, so that each consumer can
 * take what it has not yet seen and give it back if its delivery fails:
 *   COUNTER_PG       deltas not yet committed to PostgreSQL
 *   COUNTER_JOURNAL  deltas not yet appended to the local journal
 *   COUNTER_REDIS    deltas not yet published to Redis
 * plus the running total since start (for metrics and replay).
 * Updates are O(1) (hash table keyed by the tuple). Memory: chain and account
 * strings are interned once, a key is 48 bytes plus a 32-bit lookup slot
 * (about 60 bytes a key in all), with no allocation per key. Not
 * thread-safe: the owner serialises access (cc-gateway holds a mutex around
 * it). */
#ifndef CCGW_COUNTER_H
#define CCGW_COUNTER_H

#include <stddef.h>
#include <stdint.h>

enum counter_consumer { COUNTER_PG = 0, COUNTER_JOURNAL, COUNTER_REDIS, COUNTER_NCONSUMERS };

enum non_relay_reason {
    NR_INVALID_HOST = 0, /* Host not in the routing table (or empty, or other domain) */
    NR_UNROUTED,         /* valid host, but reject backend, <NOSRV>, or wrong backend */
    NR_SERVER_ERROR,     /* 5xx */
    NR_NO_RESPONSE,      /* status -1: aborted before a response */
    NR_UNPARSABLE,       /* a request line we could not parse */
    NR_BAD_HOST,         /* ambiguous Host (comma, blank, control char): 400, be_refuse_host */
    NR_UPGRADE_REFUSED,  /* Upgrade (websocket, h2c, ...) on a chain without opt-in: 403 */
    NR_CONNECT_REFUSED,  /* CONNECT method: 405, be_refuse_connect */
    NR_WEBSOCKET,        /* a WebSocket session (101) on an opted-in chain: never a relay */
    NR_BAD_REQUEST,      /* edge only: 4xx from the edge itself (parser: two Host lines...) */
    NR_REDIRECTED,       /* edge only: 3xx from the edge itself (plain HTTP to HTTPS) */
    NR_COUNT
};

/* "invalid_host", ... ; NULL for out-of-range. */
const char *counter_reason_name(enum non_relay_reason r);
/* Reverse of counter_reason_name; -1 when unknown. */
int counter_reason_parse(const char *name);

typedef struct counter counter_t;

/* One delta row. chain/account point into memory owned by the delta set. */
struct counter_delta {
    const char *chain;   /* relay rows; NULL for non-relay rows */
    const char *account; /* relay rows */
    int reason;          /* non-relay rows: enum non_relay_reason; -1 for relay rows */
    int64_t bucket;      /* bucket start, epoch seconds UTC */
    int64_t n;
};

/* A detached list of deltas (from counter_take, or read from a journal). */
struct counter_deltas {
    struct counter_delta *rows;
    size_t nrows, cap;
    struct counter_strpool *pool; /* owns the chain/account strings */
};

counter_t *counter_new(void);
void counter_free(counter_t *c);

/* Add n relays / non-relays. Strings are copied (interned). 0, or -1 on OOM
 * (nothing is counted then, and the caller must report it). */
int counter_add_relay(counter_t *c, const char *chain, const char *account, int64_t bucket,
                      int64_t n);
int counter_add_non_relay(counter_t *c, enum non_relay_reason reason, int64_t bucket, int64_t n);

/* Move every pending delta of `who` into `out` (appending) and zero them in
 * the counter. 0, or -1 on OOM (then nothing was moved). */
int counter_take(counter_t *c, enum counter_consumer who, struct counter_deltas *out);

/* Give deltas back to `who` (a failed delivery, or a journal replayed at
 * start). Only `who`'s pending counts change, not the totals. 0 or -1. */
int counter_give_back(counter_t *c, enum counter_consumer who, const struct counter_deltas *d);

/* Add deltas as new counts: totals and every consumer's pending (replay
 * --write). 0 or -1. */
int counter_add_deltas(counter_t *c, const struct counter_deltas *d);

/* Totals since start. */
int64_t counter_total_relays(const counter_t *c);
int64_t counter_total_non_relays(const counter_t *c, enum non_relay_reason r);
/* Number of keys with a non-zero pending delta for `who`. */
size_t counter_pending_keys(const counter_t *c, enum counter_consumer who);
/* Number of distinct keys held. */
size_t counter_keys(const counter_t *c);
/* Bytes the counter holds, allocated capacity included. */
size_t counter_bytes(const counter_t *c);

/* Iterate every key with its total: fn returns non-zero to stop. */
typedef int (*counter_visit_fn)(void *ctx, const struct counter_delta *row);
void counter_foreach(const counter_t *c, counter_visit_fn fn, void *ctx);

/* Delta lists. */
void counter_deltas_init(struct counter_deltas *d);
void counter_deltas_free(struct counter_deltas *d);
/* Append a row, copying strings into the list's pool. 0 or -1. */
int counter_deltas_push(struct counter_deltas *d, const char *chain, const char *account,
                        int reason, int64_t bucket, int64_t n);

/* Forget keys whose total and every pending delta are zero and whose bucket
 * is older than `before` (memory stays bounded over months). */
void counter_prune(counter_t *c, int64_t before);

#endif
