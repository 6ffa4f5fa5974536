/* Token buckets keyed by strings ("ip:127.0.0.1", "user:alice",
 * "method:alice:getblocktemplate"), in a table of bounded size split into
 * independently locked stripes. A full stripe evicts its least recently used
 * bucket (a bucket left idle long enough is full again, so evicting it loses
 * nothing). Time is passed in, in seconds, so tests control refill. */
#ifndef CCNODE_RATELIMIT_H
#define CCNODE_RATELIMIT_H

#include <stddef.h>

#define NODE_RATELIMIT_KEY_MAX 160

struct node_ratelimit;

/* The layers that refuse requests (ccnode_rate_limited_requests_total). */
enum node_ratelimit_layer {
    NODE_RATELIMIT_IP = 0,
    NODE_RATELIMIT_USER,
    NODE_RATELIMIT_METHOD,
    NODE_RATELIMIT_LAYERS
};

/* A table holding at most `max_keys` buckets. NULL when out of memory. */
struct node_ratelimit *node_ratelimit_new(size_t max_keys);
void node_ratelimit_free(struct node_ratelimit *rl);

/* Take `cost` tokens from the bucket `key` (created full with `burst`
 * tokens, refilled at `rate` per second). Returns 1 when taken; 0 when not,
 * with *retry_after (may be NULL) set to the seconds until `cost` tokens
 * will be there. -1 out of memory. Keys longer than NODE_RATELIMIT_KEY_MAX-1 are
 * truncated. */
int node_ratelimit_take(struct node_ratelimit *rl, const char *key, double rate, double burst,
                        double cost, double now, double *retry_after);

/* Give back tokens taken by a request that another layer refused. */
void node_ratelimit_refund(struct node_ratelimit *rl, const char *key, double cost);

/* Buckets currently held. */
size_t node_ratelimit_count(struct node_ratelimit *rl);

#endif
