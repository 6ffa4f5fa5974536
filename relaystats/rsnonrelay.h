/* Non-relay counts over a time range: the requests cc-gateway saw but did
 * not bill (non_relay_counts), per reason, in dense series of the range's
 * step (0 where nothing was counted). An admin view: no provider owns them. */
#ifndef CCGW_RSNONRELAY_H
#define CCGW_RSNONRELAY_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "rserr.h"
#include "rstime.h"

struct rsnonrelay_reason {
    char *reason;
    int64_t total;
    int64_t *points; /* nbuckets */
};

struct rsnonrelay {
    struct rstime_range range;
    size_t nbuckets;
    int64_t total;
    struct rsnonrelay_reason *reasons; /* sorted by reason */
    size_t nreasons;
};

/* Count the non-relays of [range.from, range.to) per reason and step, of
 * one gateway or of all (`gateway` NULL). 0, or -1 with `err` set. Release
 * with rsnonrelay_free(). */
int rsnonrelay_run(PGconn *pg, const struct rstime_range *range, const char *gateway,
                   struct rsnonrelay *out, struct rserr *err);

void rsnonrelay_free(struct rsnonrelay *nr);

/* {"from","to","step","total","reasons":[{"reason","series":[[t,n]...],"total"}]};
 * new reference, NULL on OOM. */
json_t *rsnonrelay_json(const struct rsnonrelay *nr);

#endif
