/* Account ownership over time (account_owners, relaystats/schema.c
 * migration 5): the rule that attributes relays to providers, and the plan
 * that brings the table in line with the config. No I/O: rssync runs the
 * plan, the query modules paste the SQL below.
 *
 * The rule: a bucket's relays belong to the owner whose [valid_from,
 * valid_to) holds its bucket_start; a bucket no row holds is unowned.
 * Changes take effect at a five-minute bucket boundary, the next one after
 * the sync that makes them, so the bucket in progress stays with the owner
 * it started with.
 *
 * Rollups: an hourly or daily row sums buckets that may straddle an owner
 * change. RSOWNER_SOURCE_SQL reads such a pair's rows of that range from
 * relay_totals instead, every other pair's from the rollup: exact whatever
 * the view, and as cheap as the rollup when nothing moved. */
#ifndef CCGW_RSOWNER_H
#define CCGW_RSOWNER_H

#include <stddef.h>
#include <stdint.h>

#include "rserr.h"

#define RSOWNER_STEP 300
/* valid_from '-infinity': owned since before any relay */
#define RSOWNER_NEG_INF INT64_MIN

/* The boundary at which a change made at `now` (epoch seconds) takes
 * effect: floor(now / 300) * 300 + 300, the start of the next bucket. */
int64_t rsowner_boundary(int64_t now);

/* SQL: row `o` of account_owners owns row `t` (account, chain,
 * bucket_start) of a relay_totals view. Both are alias literals. */
#define RSOWNER_OWNS(o, t)                                                                         \
    o ".account = " t ".account AND " o ".chain = " t ".chain AND " o ".valid_from <= " t          \
      ".bucket_start AND (" o ".valid_to IS NULL OR " t ".bucket_start < " o ".valid_to)"

/* Write into buf a parenthesised derived table of the relay rows (gateway,
 * chain, account, bucket_start, relays) with bucket_start in [$1, $2) (the
 * statement's first two parameters, timestamptz text), read from the
 * relay_totals view `table` of `gran` seconds (300, 3600 or 86400), except
 * that the rows of a pair with an owner change inside [$1, $2) not on a
 * multiple of `gran` come from relay_totals. 0, or -1 if buf is too small. */
int rsowner_source_sql(const char *table, int64_t gran, char *buf, size_t size);

/* One (account, chain) and its owner in the config. */
struct rsowner_want {
    const char *account, *chain, *provider;
};

/* One (account, chain) of account_owners, as rssync reads it. */
struct rsowner_have {
    const char *account, *chain;
    const char *provider;      /* the open row's (valid_to NULL); NULL: none open */
    int64_t valid_from;        /* the open row's, RSOWNER_NEG_INF for -infinity */
    const char *prev_provider; /* owner of the row that ends at valid_from, or NULL */
    int64_t last_to;           /* none open: the latest valid_to */
};

enum rsowner_op {
    RSOWNER_ADD,     /* never seen: the owner's row from -infinity */
    RSOWNER_REOPEN,  /* rows, none open (closed by hand): a row from max(at, last_to) */
    RSOWNER_MOVE,    /* close the open row at `at`, open the new owner's from `at` */
    RSOWNER_REPLACE, /* the open row starts at or after `at`, so it has not taken
                        effect: it goes to the new owner instead */
    RSOWNER_REVERT   /* the same, and the new owner is the one before it: drop the
                        open row and reopen the previous one */
};

struct rsowner_action {
    enum rsowner_op op;
    const struct rsowner_want *want;
    const struct rsowner_have *have; /* NULL for RSOWNER_ADD */
    int64_t at;                      /* where the new owner starts */
};

struct rsowner_plan {
    struct rsowner_action *v; /* in (account, chain) order */
    size_t n;
    size_t added, moved, unchanged; /* pairs of the config */
    size_t unconfigured;            /* open rows of pairs not in the config (kept) */
};

/* What to change so that every pair of `want` is owned by its provider from
 * rsowner_boundary(now) on: nothing for a pair already owned by it (nor for
 * a pair that is not in `want`). Neither array needs an order. Pointers into
 * both are kept in the plan, so both must outlive it. 0, or -1 with `err`
 * (400: a pair twice in `want`; 500: out of memory). Free with
 * rsowner_plan_free(). */
int rsowner_plan(const struct rsowner_want *want, size_t nwant, const struct rsowner_have *have,
                 size_t nhave, int64_t now, struct rsowner_plan *out, struct rserr *err);

void rsowner_plan_free(struct rsowner_plan *p);

/* "add", "reopen", "move", "replace", "revert". */
const char *rsowner_op_name(enum rsowner_op op);

#endif
