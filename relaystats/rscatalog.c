/* Chains, gateways and account ownership from PostgreSQL. Counts are read
 * through the relay_totals views, so that a gateway or chain whose only
 * relays are not folded yet is listed too; ownership from account_owners. */
#include "rscatalog.h"

#include <stdlib.h>
#include <string.h>

#include "rsdb.h"

/* The first column of every row of `sql` into `out`. */
static int names_query(PGconn *pg, const char *sql, const char *provider,
                       struct rscatalog_names *out, struct rserr *err)
{
    const char *params[1] = {provider};
    PGresult *res =
        rsdb_exec(pg, sql, provider ? 1 : 0, provider ? params : NULL, PGRES_TUPLES_OK, err);
    int n;

    memset(out, 0, sizeof(*out));
    if (!res)
        return -1;
    n = PQntuples(res);
    out->v = calloc(n ? (size_t)n : 1, sizeof(*out->v));
    if (!out->v)
        goto oom;
    for (int i = 0; i < n; i++) {
        out->v[i] = strdup(PQgetvalue(res, i, 0));
        if (!out->v[i])
            goto oom;
        out->n++;
    }
    PQclear(res);
    return 0;
oom:
    rserr_set(err, 500, "out of memory");
    PQclear(res);
    rscatalog_names_free(out);
    return -1;
}

int rscatalog_chains(PGconn *pg, const char *provider, struct rscatalog_names *out,
                     struct rserr *err)
{
    if (!provider)
        return names_query(pg,
                           "SELECT chain FROM account_owners UNION SELECT DISTINCT chain FROM "
                           "relay_totals_daily_chain ORDER BY 1",
                           NULL, out, err);
    return names_query(pg,
                       "SELECT DISTINCT chain FROM account_owners WHERE provider = $1 ORDER BY 1",
                       provider, out, err);
}

int rscatalog_gateways(PGconn *pg, const char *provider, struct rscatalog_names *out,
                       struct rserr *err)
{
    if (!provider)
        return names_query(pg, "SELECT DISTINCT gateway FROM relay_totals_daily_chain ORDER BY 1",
                           NULL, out, err);
    return names_query(pg,
                       "SELECT DISTINCT r.gateway FROM relay_totals_daily r JOIN account_owners o"
                       " ON o.account = r.account AND o.chain = r.chain AND o.provider = $1"
                       " AND r.bucket_start + interval '1 day' > o.valid_from"
                       " AND (o.valid_to IS NULL OR r.bucket_start < o.valid_to) ORDER BY 1",
                       provider, out, err);
}

void rscatalog_names_free(struct rscatalog_names *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

int rscatalog_account_owned(PGconn *pg, const char *account, const char *provider, int *owned,
                            struct rserr *err)
{
    const char *params[2] = {account, provider};
    PGresult *res =
        rsdb_exec(pg, "SELECT 1 FROM account_owners WHERE account = $1 AND provider = $2 LIMIT 1",
                  2, params, PGRES_TUPLES_OK, err);

    if (!res)
        return -1;
    *owned = PQntuples(res) > 0;
    PQclear(res);
    return 0;
}

int rscatalog_provider_accounts(PGconn *pg, const char *provider, struct rscatalog_accounts *out,
                                struct rserr *err)
{
    const char *params[1] = {provider};
    PGresult *res =
        rsdb_exec(pg,
                  "SELECT chain, account,"
                  " CASE WHEN isfinite(valid_from) THEN extract(epoch FROM valid_from)::bigint END,"
                  " extract(epoch FROM valid_to)::bigint FROM account_owners WHERE provider = $1",
                  1, params, PGRES_TUPLES_OK, err);
    int n;

    memset(out, 0, sizeof(*out));
    if (!res)
        return -1;
    n = PQntuples(res);
    out->v = calloc(n ? (size_t)n : 1, sizeof(*out->v));
    if (!out->v)
        goto oom;
    for (int i = 0; i < n; i++) {
        struct rscatalog_account *a = &out->v[i];
        a->chain = strdup(PQgetvalue(res, i, 0));
        a->account = strdup(PQgetvalue(res, i, 1));
        a->from = PQgetisnull(res, i, 2) ? INT64_MIN : strtoll(PQgetvalue(res, i, 2), NULL, 10);
        a->to = PQgetisnull(res, i, 3) ? INT64_MAX : strtoll(PQgetvalue(res, i, 3), NULL, 10);
        out->n++;
        if (!a->chain || !a->account)
            goto oom;
    }
    PQclear(res);
    return 0;
oom:
    rserr_set(err, 500, "out of memory");
    PQclear(res);
    rscatalog_accounts_free(out);
    return -1;
}

int rscatalog_accounts_has(const struct rscatalog_accounts *a, const char *chain,
                           const char *account, int64_t bucket)
{
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i].chain, chain) == 0 && strcmp(a->v[i].account, account) == 0 &&
            a->v[i].from <= bucket && bucket < a->v[i].to)
            return 1;
    return 0;
}

void rscatalog_accounts_free(struct rscatalog_accounts *a)
{
    for (size_t i = 0; i < a->n; i++) {
        free(a->v[i].chain);
        free(a->v[i].account);
    }
    free(a->v);
    memset(a, 0, sizeof(*a));
}
