/* Relay count queries over a time range: filters, grouping, the choice of
 * table, and the result in table, JSON and CSV form.
 *
 * The table is the coarsest that fits the step: 5m -> relay_totals,
 * 1h -> relay_totals_hourly, 1d -> relay_totals_daily (or
 * relay_totals_daily_chain without accounts). These views add the deltas
 * not folded yet to relay_counts and its rollups (relaystats/schema.c,
 * migration 4), so a query is exact, late counts included. Series are
 * dense: every bucket of [from, to) has a point, 0 where nothing was
 * counted. A provider filter counts a bucket when the provider owned its
 * (account, chain) at its bucket_start (account_owners, rsowner.h), reading
 * five-minute rows where an owner change cuts a rollup bucket in two. */
#ifndef CCGW_RSQUERY_H
#define CCGW_RSQUERY_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>

#include "rserr.h"
#include "rstime.h"

/* Grouping dimensions (bit set, in this order in output). */
enum rsquery_dim { RSQUERY_BY_GATEWAY = 1, RSQUERY_BY_CHAIN = 2, RSQUERY_BY_ACCOUNT = 4 };
#define RSQUERY_NDIMS 3

/* Which table to read: the one the step selects, or one forced (benchmarks). */
enum rsquery_source {
    RSQUERY_SRC_AUTO = 0,
    RSQUERY_SRC_RAW,
    RSQUERY_SRC_HOURLY,
    RSQUERY_SRC_DAILY
};

/* Most points (groups x buckets) one result may hold. */
#define RSQUERY_MAX_POINTS 2000000

struct rsquery {
    const char *gateway, *chain, *account, *provider; /* NULL: any; not owned */
    struct rstime_range range;
    unsigned by; /* enum rsquery_dim bits */
    int source;  /* enum rsquery_source */
};

struct rsquery_group {
    char *keys[RSQUERY_NDIMS]; /* gateway, chain, account; NULL when not grouped */
    int64_t total;
    int64_t *points; /* nbuckets */
};

struct rsquery_result {
    struct rstime_range range;
    unsigned by;
    const char *table; /* static */
    size_t nbuckets;
    int64_t total;
    int64_t *points; /* nbuckets: sum over groups */
    struct rsquery_group *groups;
    size_t ngroups;
    int standby;          /* read from a standby (see rsdb_standby_lag) */
    double standby_lag_s; /* how far behind it was */
};

/* A name given as filter (gateway, chain, account, provider): 1 to 64 of
 * [A-Za-z0-9._-]. 0, or -1 with `err` (400) naming `what`. */
int rsquery_check_name(const char *what, const char *value, struct rserr *err);

/* Parse "gateway,chain,account" (any subset, any order; "" or "none" for
 * no grouping). 0, or -1 with `err` (400). */
int rsquery_parse_by(const char *s, unsigned *by, struct rserr *err);

/* Parse "auto|raw|hourly|daily". 0 or -1. */
int rsquery_parse_source(const char *s, int *source);

/* The table a query reads. */
const char *rsquery_table(const struct rsquery *q);

/* Run the query. 0, or -1 with `err` set (400 when the result would exceed
 * RSQUERY_MAX_POINTS, 500 on database errors). `res` is filled on success and
 * must be released with rsquery_result_free(). */
int rsquery_run(PGconn *pg, const struct rsquery *q, struct rsquery_result *res, struct rserr *err);

void rsquery_result_free(struct rsquery_result *res);

/* {"from","to","step","table","by","total","series":[[t,n]...],
 *  "groups":[{"gateway"?,"chain"?,"account"?,"total","series"}]}.
 * New reference, NULL on OOM. */
json_t *rsquery_result_json(const struct rsquery_result *res);

/* CSV with a header (bucket_start,<dims>,relays) or an aligned text table
 * with a closing total line. 0, or -1 on a write error. */
int rsquery_result_csv(const struct rsquery_result *res, FILE *out);
int rsquery_result_table(const struct rsquery_result *res, FILE *out);

/* Write one CSV field, quoted (RFC 4180) when it holds , " CR or LF. */
int rsquery_csv_field(FILE *out, const char *s);

/* Column names of the dimensions, indexed like rsquery_group.keys. */
extern const char *const rsquery_dim_names[RSQUERY_NDIMS];

#endif
