/* Recounting saved request logs: `cc-gateway replay`. The same ingest path
 * as live traffic, fed from files, so an audit recount applies exactly the
 * rule that produced the live counts. */
#ifndef CCGW_REPLAY_H
#define CCGW_REPLAY_H

#include <jansson.h>
#include <stddef.h>

#include "ingest.h"

/* Read `path` ("-" for stdin) through `chunk` byte reads (0: a large
 * default; tests use tiny chunks to split lines across reads) into `in`.
 * 0, or -1 with `err` filled. */
int replay_file(struct ingest *in, const char *path, size_t chunk, char *err, size_t errlen);

/* {"lines":…, "relays":…, "non_relays":{reason:n}, "by_chain":{chain:n},
 *  "by_bucket":{"2026-11-21T10:20:00Z":n}, "events":…, "truncated":…,
 *  "too_long":…} from the ingest stats and its counter. New reference, or
 * NULL out of memory. */
json_t *replay_summary(const struct ingest *in);

#endif
