/* What there is to ask about: the chains and gateways that have counts or
 * accounts, and the accounts a provider owns or owned (account_owners,
 * written by `relaystats sync`; see rsowner.h). A provider's view is always
 * limited to its accounts over the time it owned them; these are the
 * lookups that draw that line. */
#ifndef CCGW_RSCATALOG_H
#define CCGW_RSCATALOG_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "rserr.h"

/* A sorted list of names; owned, freed by rscatalog_names_free(). */
struct rscatalog_names {
    char **v;
    size_t n;
};

/* (chain, account) pairs and when they were owned; owned, freed by
 * rscatalog_accounts_free(). */
struct rscatalog_account {
    char *chain, *account;
    int64_t from, to; /* [from, to) in epoch seconds; INT64_MIN, INT64_MAX: unbounded */
};

struct rscatalog_accounts {
    struct rscatalog_account *v;
    size_t n;
};

/* The chains with an account or with counts (`provider` NULL), or those of
 * the accounts the provider owns or owned. 0, or -1 with `err` set. */
int rscatalog_chains(PGconn *pg, const char *provider, struct rscatalog_names *out,
                     struct rserr *err);

/* The gateways that counted relays (`provider` NULL), or relays of the
 * provider's accounts on a day it owned them (days: the daily rollup). 0, or
 * -1 with `err` set. */
int rscatalog_gateways(PGconn *pg, const char *provider, struct rscatalog_names *out,
                       struct rserr *err);

void rscatalog_names_free(struct rscatalog_names *l);

/* *owned = 1 when `account` belongs or belonged to `provider` (on any
 * chain, at any time), else 0: a provider may ask about an account it owned
 * once, and its provider filter keeps the answer to the buckets it owned.
 * 0, or -1 with `err` set. */
int rscatalog_account_owned(PGconn *pg, const char *account, const char *provider, int *owned,
                            struct rserr *err);

/* Every (chain, account) `provider` owns or owned, once per time it owned
 * it. 0, or -1 with `err` set. */
int rscatalog_provider_accounts(PGconn *pg, const char *provider, struct rscatalog_accounts *out,
                                struct rserr *err);

/* 1 when (chain, account) is in `a` for the bucket starting at `bucket`,
 * else 0. */
int rscatalog_accounts_has(const struct rscatalog_accounts *a, const char *chain,
                           const char *account, int64_t bucket);

void rscatalog_accounts_free(struct rscatalog_accounts *a);

#endif
