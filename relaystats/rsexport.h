/* The billing export: relays over [from, to) per provider, account and
 * chain, attributed by account_owners (rsowner.h): a bucket's relays go to
 * the owner of its (account, chain) at its bucket_start, so an account that
 * moved is split between the two providers at the boundary. Every pair a
 * provider owned at some point of the range is listed (0 when it had no
 * relays then).
 *
 * Two forms: one provider (`provider` given, which must exist), or every
 * provider (`provider` NULL) followed by the unowned section: relays of
 * pairs that nobody owned at their bucket time, so that an export never
 * drops relays silently.
 *
 * Counts are read from the coarsest relay_totals view whose buckets the
 * range is aligned to (deltas not folded yet included), the five-minute
 * rows standing in for a rollup bucket that an owner change cuts in two
 * (rsowner_source_sql), so the totals are exact whatever the view, and
 * equal `rsquery` totals for the same range and provider. */
#ifndef CCGW_RSEXPORT_H
#define CCGW_RSEXPORT_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>

#include "rserr.h"
#include "rstime.h"

/* Provider name of the unowned rows in CSV output. */
#define RSEXPORT_UNOWNED "(unowned)"

struct rsexport_row {
    char *account, *chain;
    int64_t relays;
};

/* One provider's rows: rows[first .. first + n) of the export. */
struct rsexport_provider {
    char *name;
    size_t first, n;
    int64_t total;
};

struct rsexport {
    char *provider; /* NULL: every provider, with the unowned section */
    int64_t from, to;
    const char *table; /* static */
    int64_t total;     /* relays of the listed providers */
    struct rsexport_row *rows;
    size_t nrows;
    struct rsexport_provider *providers; /* in name order; one when `provider` is set */
    size_t nproviders;
    struct rsexport_row *unowned; /* every-provider form only */
    size_t nunowned;
    int64_t unowned_total;
};

/* Run the export for `provider` (NULL: every provider and the unowned
 * relays) over `range` (its step is ignored; the range must be aligned to
 * five minutes). With `provider` and `unowned`, the unowned relays are
 * counted too (unowned, unowned_total; not part of the provider's output):
 * every pair is read then, in the one pass of the every-provider form,
 * rather than the provider's pairs alone. 0, or -1 with `err` set (404 for
 * a provider that does not exist). Release with rsexport_free(). */
int rsexport_run(PGconn *pg, const char *provider, int unowned, const struct rstime_range *range,
                 struct rsexport *out, struct rserr *err);

void rsexport_free(struct rsexport *e);

/* Relays over `range` (aligned to five minutes) whose pair had no owner at
 * their bucket time: *total relays of *pairs (account, chain) pairs. 0, or
 * -1 with `err`. */
int rsexport_unowned(PGconn *pg, const struct rstime_range *range, int64_t *total, int64_t *pairs,
                     struct rserr *err);

/* One provider: {"provider","from","to","table","total","rows":[{"account",
 * "chain","relays"}]}. Every provider: {"provider":null,"from","to","table",
 * "total" (owned and unowned),"providers":[{"provider","total","rows"}],
 * "unowned":{"total","rows"}}. New reference, NULL on OOM. */
json_t *rsexport_json(const struct rsexport *e);

/* provider,account,chain,from,to,relays lines after a header, each
 * provider's rows ending with a "<provider>,TOTAL" line. Every provider:
 * then the unowned rows and their TOTAL line (provider "(unowned)"), and
 * ",TOTAL" with everything. 0 or -1. */
int rsexport_csv(const struct rsexport *e, FILE *out);

#endif
