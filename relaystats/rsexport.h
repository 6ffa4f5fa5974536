/* The billing export: relays of one provider over [from, to), per account
 * and chain, with the grand total. Every account the provider owns is listed
 * (0 when it had no relays). The totals are read from the coarsest table
 * whose buckets the range is aligned to (a relay_totals view: deltas not
 * folded yet included), and equal `rsquery` totals for the
 * same range and provider, because the rollups are exact sums of the
 * five-minute rows. */
#ifndef CCGW_RSEXPORT_H
#define CCGW_RSEXPORT_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>

#include "rserr.h"
#include "rstime.h"

struct rsexport_row {
    char *account, *chain;
    int64_t relays;
};

struct rsexport {
    char *provider;
    int64_t from, to;
    const char *table; /* static */
    int64_t total;
    struct rsexport_row *rows;
    size_t nrows;
};

/* Run the export for `provider` over `range` (its step is ignored; the
 * range must be aligned to five minutes). 0, or -1 with `err` set. Release
 * with rsexport_free(). */
int rsexport_run(PGconn *pg, const char *provider, const struct rstime_range *range,
                 struct rsexport *out, struct rserr *err);

void rsexport_free(struct rsexport *e);

/* {"provider","from","to","total","rows":[{"account","chain","relays"}]};
 * new reference, NULL on OOM. */
json_t *rsexport_json(const struct rsexport *e);

/* provider,account,chain,from,to,relays lines after a header. 0 or -1. */
int rsexport_csv(const struct rsexport *e, FILE *out);

#endif
