/* `relaystats sync`: make the providers and accounts tables match the
 * deployment config. Providers and (account, chain) pairs of the config are
 * inserted, an account that moved to another provider is updated; rows that
 * are no longer in the config are kept, because past relays stay billable to
 * whoever owned the account then. One transaction. */
#ifndef CCGW_RSSYNC_H
#define CCGW_RSSYNC_H

#include <libpq-fe.h>
#include <stddef.h>

#include "ccgwconf.h"
#include "rserr.h"

struct rssync_stats {
    size_t providers, accounts; /* rows upserted */
};

/* 0, or -1 with `err` set (the transaction is rolled back). */
int rssync_run(PGconn *pg, const struct ccgwconf *c, struct rssync_stats *stats, struct rserr *err);

#endif
