/* Real-time relay counts: the newest five-minute buckets, merged from Redis
 * (written by cc-gateway about every second) and PostgreSQL (flushed every
 * five minutes).
 *
 * Redis keys: `<prefix>:relays:<gateway>:<bucket_epoch>`, a hash whose fields
 * are `<chain>:<account>` and values relay counts. For one (gateway, chain,
 * account, bucket), Redis holds the live running count and PostgreSQL the
 * count flushed so far, so the merge takes the larger of the two: Redis is
 * ahead between flushes, PostgreSQL is right when Redis lost its keys
 * (restart, TTL). When Redis is unavailable the answer is PostgreSQL's alone
 * and says so. */
#ifndef CCGW_RSREALTIME_H
#define CCGW_RSREALTIME_H

#include <stddef.h>
#include <stdint.h>

#include "ccgwconf.h"

struct rsrealtime_row {
    char *gateway, *chain, *account;
    int64_t bucket, relays;
};

struct rsrealtime_rows {
    struct rsrealtime_row *rows;
    size_t n, cap;
};

void rsrealtime_rows_free(struct rsrealtime_rows *r);

/* Append a row (strings copied). 0 or -1 on OOM. */
int rsrealtime_rows_push(struct rsrealtime_rows *r, const char *gateway, const char *chain,
                         const char *account, int64_t bucket, int64_t relays);

/* Parse a Redis key "<prefix>:relays:<gateway>:<epoch>": the gateway (into
 * `gateway`, `size` bytes) and the bucket. 0, or -1 when it is not one. */
int rsrealtime_parse_key(const char *prefix, const char *key, char *gateway, size_t size,
                         int64_t *bucket);

/* Read every relay hash of buckets in [from, to) from Redis into `out`.
 * 0, or -1 with `err` (Redis unreachable or erroring); `out` may then hold
 * part of the rows and is still to be freed. */
int rsrealtime_fetch(const struct ccgwconf_redis *rc, int64_t from, int64_t to,
                     struct rsrealtime_rows *out, char *err, size_t errlen);

/* Merge `add` into `base`: per key the larger count wins, keys only in
 * `add` are appended. `base` ends sorted by key. 0 or -1 on OOM. */
int rsrealtime_merge(struct rsrealtime_rows *base, const struct rsrealtime_rows *add);

#endif
