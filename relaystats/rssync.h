/* `relaystats sync` (and `serve`, at start and when its config file
 * changes): bring providers, account_owners and accounts in line with the
 * deployment config, by the rules of rsowner.h. Providers of the config are
 * added; a pair never seen is owned from -infinity; a pair whose owner
 * differs moves at the next five-minute boundary; rows of providers and
 * pairs that left the config are kept, because past relays stay billable to
 * whoever owned the account then. `accounts` is then made equal to the
 * open rows of account_owners (each pair's latest owner).
 *
 * One transaction under a transaction advisory lock ("sync" in ASCII), so
 * concurrent syncs run one after the other, the second seeing the first's
 * result; the boundary is computed from the database's clock after the
 * lock is taken. A sync that changes nothing writes nothing.
 *
 * Test hook: CCGW_TEST_NOW=<epoch seconds> replaces the database's clock. */
#ifndef CCGW_RSSYNC_H
#define CCGW_RSSYNC_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "ccgwconf.h"
#include "rserr.h"

struct rssync_stats {
    size_t providers_added;
    size_t added;        /* pairs given an owner (new, or none open) */
    size_t moved;        /* pairs whose owner changed */
    size_t unchanged;    /* pairs of the config already owned as configured */
    size_t unconfigured; /* open rows of pairs not in the config, kept */
    size_t accounts;     /* rows of `accounts` written to match account_owners */
    int64_t now, at;     /* the clock read, and the boundary of the moves */
    int wrote;           /* whether the transaction wrote anything */
};

/* 0, or -1 with `err` set (the transaction is rolled back). Each move is
 * logged (account_moved) once committed. */
int rssync_run(PGconn *pg, const struct ccgwconf *c, struct rssync_stats *stats, struct rserr *err);

#endif
