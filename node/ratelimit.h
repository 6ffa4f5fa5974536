/* Token buckets keyed by strings ("ip:127.0.0.1", "user:alice",
 * "method:alice:getblocktemplate"), in a table of bounded size split into
 * independently locked stripes. A full stripe evicts its least recently used
 * bucket (a bucket left idle long enough is full again, so evicting it loses
 * nothing). Time is passed in, in seconds, so tests control refill. */
#ifndef CCNODE_RATELIMIT_H
#define CCNODE_RATELIMIT_H

#include <stddef.h>

#define NODE_RL_KEY_MAX 160

struct node_rl;

/* A table holding at most `max_keys` buckets. NULL when out of memory. */
struct node_rl *node_rl_new(size_t max_keys);
void node_rl_free(struct node_rl *rl);

/* Take `cost` tokens from the bucket `key` (created full with `burst`
 * tokens, refilled at `rate` per second). Returns 1 when taken; 0 when not,
 * with *retry_after (may be NULL) set to the seconds until `cost` tokens
 * will be there. -1 out of memory. Keys longer than NODE_RL_KEY_MAX-1 are
 * truncated. */
int node_rl_take(struct node_rl *rl, const char *key, double rate, double burst, double cost,
                 double now, double *retry_after);

/* Give back tokens taken by a request that another layer refused. */
void node_rl_refund(struct node_rl *rl, const char *key, double cost);

/* Buckets currently held. */
size_t node_rl_count(struct node_rl *rl);

#endif
