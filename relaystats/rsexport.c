/* Billing export per provider, account and chain. */
#include "rsexport.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bucket.h"
#include "rsdb.h"
#include "rsquery.h"

/* relay_totals views: folded counts plus pending deltas (see rsquery.c). */
static const char *export_table(const struct rstime_range *r)
{
    if (r->from % RSTIME_STEP_1D == 0 && r->to % RSTIME_STEP_1D == 0)
        return "relay_totals_daily";
    if (r->from % RSTIME_STEP_1H == 0 && r->to % RSTIME_STEP_1H == 0)
        return "relay_totals_hourly";
    return "relay_totals";
}

int rsexport_run(PGconn *pg, const char *provider, const struct rstime_range *range,
                 struct rsexport *e, struct rserr *err)
{
    char sql[768], from_iso[32], to_iso[32];
    const char *params[3];
    PGresult *res = NULL;
    int n;

    memset(e, 0, sizeof(*e));
    if (range->from % RSTIME_STEP_5M != 0 || range->to % RSTIME_STEP_5M != 0) {
        rserr_set(err, 400, "from and to must be aligned to five minutes");
        return -1;
    }
    e->from = range->from;
    e->to = range->to;
    e->table = export_table(range);
    e->provider = strdup(provider);
    if (!e->provider) {
        rserr_set(err, 500, "out of memory");
        goto fail;
    }
    bucket_format_iso(range->from, from_iso, sizeof(from_iso));
    bucket_format_iso(range->to, to_iso, sizeof(to_iso));
    params[0] = provider;
    params[1] = from_iso;
    params[2] = to_iso;
    /* Accounts come from the accounts table (who owns what); counts of
     * accounts the provider does not own are never joined in. */
    snprintf(sql, sizeof(sql),
             "SELECT a.account, a.chain, coalesce(sum(r.relays), 0)::bigint "
             "FROM accounts a LEFT JOIN %s r ON r.account = a.account AND r.chain = a.chain "
             "AND r.bucket_start >= $2::timestamptz AND r.bucket_start < $3::timestamptz "
             "WHERE a.provider = $1 GROUP BY a.account, a.chain ORDER BY a.account, a.chain",
             e->table);
    res = rsdb_exec(pg, sql, 3, params, PGRES_TUPLES_OK, err);
    if (!res)
        goto fail;
    n = PQntuples(res);
    e->rows = calloc(n ? (size_t)n : 1, sizeof(*e->rows));
    if (!e->rows) {
        rserr_set(err, 500, "out of memory");
        goto fail;
    }
    for (int i = 0; i < n; i++) {
        struct rsexport_row *row = &e->rows[i];
        row->account = strdup(PQgetvalue(res, i, 0));
        row->chain = strdup(PQgetvalue(res, i, 1));
        e->nrows++;
        if (!row->account || !row->chain) {
            rserr_set(err, 500, "out of memory");
            goto fail;
        }
        row->relays = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        e->total += row->relays;
    }
    PQclear(res);
    return 0;
fail:
    PQclear(res);
    rsexport_free(e);
    return -1;
}

void rsexport_free(struct rsexport *e)
{
    for (size_t i = 0; i < e->nrows; i++) {
        free(e->rows[i].account);
        free(e->rows[i].chain);
    }
    free(e->rows);
    free(e->provider);
    memset(e, 0, sizeof(*e));
}

json_t *rsexport_json(const struct rsexport *e)
{
    char from[32], to[32];
    json_t *root, *rows = json_array();

    bucket_format_iso(e->from, from, sizeof(from));
    bucket_format_iso(e->to, to, sizeof(to));
    root = json_pack("{sssssssssIso}", "provider", e->provider, "from", from, "to", to, "table",
                     e->table, "total", (json_int_t)e->total, "rows", rows);
    if (!root)
        return NULL;
    for (size_t i = 0; i < e->nrows; i++) {
        json_t *o = json_pack("{sssssI}", "account", e->rows[i].account, "chain", e->rows[i].chain,
                              "relays", (json_int_t)e->rows[i].relays);
        if (!o || json_array_append_new(rows, o) != 0) {
            json_decref(root);
            return NULL;
        }
    }
    return root;
}

int rsexport_csv(const struct rsexport *e, FILE *out)
{
    char from[32], to[32];

    bucket_format_iso(e->from, from, sizeof(from));
    bucket_format_iso(e->to, to, sizeof(to));
    if (fputs("provider,account,chain,from,to,relays\n", out) < 0)
        return -1;
    for (size_t i = 0; i < e->nrows; i++) {
        if (rsquery_csv_field(out, e->provider) != 0 || fputc(',', out) == EOF ||
            rsquery_csv_field(out, e->rows[i].account) != 0 || fputc(',', out) == EOF ||
            rsquery_csv_field(out, e->rows[i].chain) != 0 ||
            fprintf(out, ",%s,%s,%" PRId64 "\n", from, to, e->rows[i].relays) < 0)
            return -1;
    }
    if (rsquery_csv_field(out, e->provider) != 0 ||
        fprintf(out, ",TOTAL,,%s,%s,%" PRId64 "\n", from, to, e->total) < 0)
        return -1;
    return fflush(out) == 0 ? 0 : -1;
}
