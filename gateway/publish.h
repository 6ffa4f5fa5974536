/* Redis side of delivery: the real-time view. Deltas are added with HINCRBY,
 * pipelined inside MULTI/EXEC (a round lands whole or not at all), to
 *   <prefix>:relays:<gateway>:<bucket>     field <chain>:<account>
 *   <prefix>:chain:<gateway>:<bucket>      field <chain>
 *   <prefix>:nonrelays:<gateway>:<bucket>  field <reason>
 * (<bucket> in epoch seconds), each key with EXPIRE ttl. hiredis with
 * connect and command timeouts, so a hung Redis fails a round instead of
 * hanging it. Not thread-safe: one thread owns a publisher. */
#ifndef CCGW_PUBLISH_H
#define CCGW_PUBLISH_H

#include <stddef.h>
#include <stdint.h>

#include "counter.h"

typedef struct publish publish_t;

/* Strings are copied; nothing connects yet. NULL on OOM. */
publish_t *publish_new(const char *host, int port, const char *prefix, const char *gateway,
                       int64_t ttl_secs, int timeout_ms);
void publish_free(publish_t *p);

/* Connect unless connected. 0 or -1 with err. */
int publish_connect(publish_t *p, char *err, size_t errlen);
int publish_connected(const publish_t *p);

/* Publish the deltas in one MULTI/EXEC round. 0 when applied; -1 with err
 * when not (the connection is then dropped; the caller gives the deltas
 * back and reconnects later). */
int publish_send(publish_t *p, const struct counter_deltas *d, char *err, size_t errlen);

#endif
