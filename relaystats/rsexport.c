/* Billing export per provider, account and chain: see rsexport.h. */
#include "rsexport.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bucket.h"
#include "rsdb.h"
#include "rsowner.h"
#include "rsquery.h"

/* relay_totals views: folded counts plus pending deltas (see rsquery.c). */
static const char *export_table(const struct rstime_range *r, int64_t *gran)
{
    if (r->from % RSTIME_STEP_1D == 0 && r->to % RSTIME_STEP_1D == 0) {
        *gran = RSTIME_STEP_1D;
        return "relay_totals_daily";
    }
    if (r->from % RSTIME_STEP_1H == 0 && r->to % RSTIME_STEP_1H == 0) {
        *gran = RSTIME_STEP_1H;
        return "relay_totals_hourly";
    }
    *gran = RSTIME_STEP_5M;
    return "relay_totals";
}

/* Pairs owned at some point of [$1, $2) */
#define OWNED_IN_RANGE                                                                             \
    "valid_from < $2::timestamptz AND (valid_to IS NULL OR valid_to > $1::timestamptz)"
/* o owns relay row r, or t */
#define O_OWNS_R RSOWNER_OWNS("o", "r")
#define O_OWNS_T RSOWNER_OWNS("o", "t")

/* Rows: provider (NULL: unowned), account (NULL: a provider that owned
 * nothing in the range), chain, relays; by provider, account, chain. The
 * fragments (see rsexport_run) narrow it to the provider $3: its pairs'
 * relays only, or every pair's with the unowned ones kept, dropping other
 * providers' rows before they are summed. */
static const char SQL_EXPORT[] =
    "WITH r AS (SELECT account, chain, bucket_start, relays FROM %s t%s),"
    " a AS (SELECT o.provider, r.account, r.chain, sum(r.relays) AS relays"
    " FROM r LEFT JOIN account_owners o ON " O_OWNS_R "%s GROUP BY 1, 2, 3),"
    " w AS (SELECT DISTINCT provider, account, chain FROM account_owners"
    " WHERE " OWNED_IN_RANGE "%s)"
    " SELECT * FROM (SELECT p.name AS provider, x.account, x.chain, x.relays"
    " FROM providers p LEFT JOIN ("
    "SELECT coalesce(a.provider, w.provider) AS provider,"
    " coalesce(a.account, w.account) AS account,"
    " coalesce(a.chain, w.chain) AS chain, coalesce(a.relays, 0)::bigint AS relays"
    " FROM a FULL JOIN w ON a.provider = w.provider AND a.account = w.account"
    " AND a.chain = w.chain WHERE coalesce(a.provider, w.provider) IS NOT NULL) x"
    " ON x.provider = p.name%s"
    " UNION ALL SELECT NULL, account, chain, relays::bigint FROM a"
    " WHERE provider IS NULL AND relays > 0%s) u"
    " ORDER BY provider COLLATE \"C\" NULLS LAST, account NULLS FIRST, chain";

static int provider_exists(PGconn *pg, const char *provider, struct rserr *err)
{
    const char *params[1] = {provider};
    PGresult *res =
        rsdb_exec(pg, "SELECT 1 FROM providers WHERE name = $1", 1, params, PGRES_TUPLES_OK, err);
    int found;

    if (!res)
        return -1;
    found = PQntuples(res) > 0;
    PQclear(res);
    if (!found)
        rserr_set(err, 404, "no provider '%s' (providers come from the config: relaystats sync)",
                  provider);
    return found ? 0 : -1;
}

static int push_row(struct rsexport_row **v, size_t *n, PGresult *res, int i)
{
    struct rsexport_row *rows = realloc(*v, (*n + 1) * sizeof(**v));
    struct rsexport_row *row;

    if (!rows)
        return -1;
    *v = rows;
    row = &rows[*n];
    row->account = strdup(PQgetvalue(res, i, 1));
    row->chain = strdup(PQgetvalue(res, i, 2));
    row->relays = strtoll(PQgetvalue(res, i, 3), NULL, 10);
    (*n)++;
    return row->account && row->chain ? 0 : -1;
}

/* Fill e's providers, rows and unowned rows from the result of SQL_EXPORT. */
static int read_rows(struct rsexport *e, PGresult *res)
{
    int n = PQntuples(res);

    for (int i = 0; i < n; i++) {
        struct rsexport_provider *p;
        if (PQgetisnull(res, i, 0)) {
            if (push_row(&e->unowned, &e->nunowned, res, i) != 0)
                return -1;
            e->unowned_total += e->unowned[e->nunowned - 1].relays;
            continue;
        }
        p = e->nproviders ? &e->providers[e->nproviders - 1] : NULL;
        if (!p || strcmp(p->name, PQgetvalue(res, i, 0)) != 0) {
            p = realloc(e->providers, (e->nproviders + 1) * sizeof(*p));
            if (!p)
                return -1;
            e->providers = p;
            p = &p[e->nproviders++];
            memset(p, 0, sizeof(*p));
            p->first = e->nrows;
            p->name = strdup(PQgetvalue(res, i, 0));
            if (!p->name)
                return -1;
        }
        if (PQgetisnull(res, i, 1))
            continue; /* the provider owned nothing in the range */
        if (push_row(&e->rows, &e->nrows, res, i) != 0)
            return -1;
        p->n++;
        p->total += e->rows[e->nrows - 1].relays;
        e->total += e->rows[e->nrows - 1].relays;
    }
    return 0;
}

int rsexport_run(PGconn *pg, const char *provider, int unowned, const struct rstime_range *range,
                 struct rsexport *e, struct rserr *err)
{
    char src[2048], sql[4096], from_iso[32], to_iso[32];
    const char *params[3];
    PGresult *res = NULL;
    int64_t gran;
    int n;

    memset(e, 0, sizeof(*e));
    if (range->from % RSTIME_STEP_5M != 0 || range->to % RSTIME_STEP_5M != 0) {
        rserr_set(err, 400, "from and to must be aligned to five minutes");
        return -1;
    }
    if (provider && provider_exists(pg, provider, err) != 0)
        return -1;
    e->from = range->from;
    e->to = range->to;
    e->table = export_table(range, &gran);
    if (provider && !(e->provider = strdup(provider))) {
        rserr_set(err, 500, "out of memory");
        goto fail;
    }
    bucket_format_iso(range->from, from_iso, sizeof(from_iso));
    bucket_format_iso(range->to, to_iso, sizeof(to_iso));
    params[0] = from_iso;
    params[1] = to_iso;
    params[2] = provider;
    if (rsowner_source_sql(e->table, gran, src, sizeof(src)) != 0)
        goto too_long;
    /* fragments: the pairs read, the attributed rows summed, the pairs
     * listed, the providers listed, the unowned rows listed */
    if (provider && !unowned)
        n = snprintf(sql, sizeof(sql), SQL_EXPORT, src,
                     " WHERE (t.account, t.chain) IN (SELECT account, chain FROM account_owners"
                     " WHERE provider = $3 AND " OWNED_IN_RANGE ")",
                     " WHERE o.provider = $3", " AND provider = $3", " WHERE p.name = $3",
                     " AND false");
    else if (provider)
        n = snprintf(sql, sizeof(sql), SQL_EXPORT, src, "",
                     " WHERE o.provider = $3 OR o.provider IS NULL", " AND provider = $3",
                     " WHERE p.name = $3", "");
    else
        n = snprintf(sql, sizeof(sql), SQL_EXPORT, src, "", "", "", "", "");
    if (n < 0 || (size_t)n >= sizeof(sql))
        goto too_long;
    res = rsdb_exec(pg, sql, provider ? 3 : 2, params, PGRES_TUPLES_OK, err);
    if (!res)
        goto fail;
    if (read_rows(e, res) != 0) {
        rserr_set(err, 500, "out of memory");
        goto fail;
    }
    PQclear(res);
    return 0;
too_long:
    rserr_set(err, 500, "export query too long");
fail:
    PQclear(res);
    rsexport_free(e);
    return -1;
}

int rsexport_unowned(PGconn *pg, const struct rstime_range *range, int64_t *total, int64_t *pairs,
                     struct rserr *err)
{
    char src[2048], sql[3072], from_iso[32], to_iso[32];
    const char *params[2] = {from_iso, to_iso};
    PGresult *res;
    int64_t gran;
    int n;

    const char *table = export_table(range, &gran);

    *total = *pairs = 0;
    if (rsowner_source_sql(table, gran, src, sizeof(src)) != 0)
        goto too_long;
    n = snprintf(sql, sizeof(sql),
                 "SELECT coalesce(sum(s), 0)::bigint, count(*) FROM (SELECT sum(relays) AS s"
                 " FROM %s t WHERE NOT EXISTS (SELECT 1 FROM account_owners o WHERE " O_OWNS_T
                 ") GROUP BY account, chain HAVING sum(relays) > 0) u",
                 src);
    if (n < 0 || (size_t)n >= sizeof(sql))
        goto too_long;
    bucket_format_iso(range->from, from_iso, sizeof(from_iso));
    bucket_format_iso(range->to, to_iso, sizeof(to_iso));
    res = rsdb_exec(pg, sql, 2, params, PGRES_TUPLES_OK, err);
    if (!res)
        return -1;
    *total = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    *pairs = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    return 0;
too_long:
    rserr_set(err, 500, "unowned query too long");
    return -1;
}

static void rows_free(struct rsexport_row *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].account);
        free(v[i].chain);
    }
    free(v);
}

void rsexport_free(struct rsexport *e)
{
    rows_free(e->rows, e->nrows);
    rows_free(e->unowned, e->nunowned);
    for (size_t i = 0; i < e->nproviders; i++)
        free(e->providers[i].name);
    free(e->providers);
    free(e->provider);
    memset(e, 0, sizeof(*e));
}

/* [{"account","chain","relays"}] of v[0..n); NULL on OOM. */
static json_t *rows_json(const struct rsexport_row *v, size_t n)
{
    json_t *rows = json_array();

    for (size_t i = 0; rows && i < n; i++) {
        json_t *o = json_pack("{sssssI}", "account", v[i].account, "chain", v[i].chain, "relays",
                              (json_int_t)v[i].relays);
        if (!o || json_array_append_new(rows, o) != 0) {
            json_decref(rows);
            return NULL;
        }
    }
    return rows;
}

json_t *rsexport_json(const struct rsexport *e)
{
    char from[32], to[32];
    json_t *root, *list;

    bucket_format_iso(e->from, from, sizeof(from));
    bucket_format_iso(e->to, to, sizeof(to));
    if (e->provider)
        return json_pack("{sssssssssIso}", "provider", e->provider, "from", from, "to", to, "table",
                         e->table, "total", (json_int_t)e->total, "rows",
                         rows_json(e->rows, e->nrows));
    list = json_array();
    root = json_pack("{snsssssssIsos{sIso}}", "provider", "from", from, "to", to, "table", e->table,
                     "total", (json_int_t)(e->total + e->unowned_total), "providers", list,
                     "unowned", "total", (json_int_t)e->unowned_total, "rows",
                     rows_json(e->unowned, e->nunowned));
    if (!root)
        return NULL;
    for (size_t i = 0; i < e->nproviders; i++) {
        const struct rsexport_provider *p = &e->providers[i];
        json_t *o = json_pack("{sssIso}", "provider", p->name, "total", (json_int_t)p->total,
                              "rows", rows_json(e->rows + p->first, p->n));
        if (!o || json_array_append_new(list, o) != 0) {
            json_decref(root);
            return NULL;
        }
    }
    return root;
}

/* The rows of one provider (or of the unowned) and its TOTAL line. */
static int csv_block(FILE *out, const char *provider, const struct rsexport_row *v, size_t n,
                     int64_t total, const char *from, const char *to)
{
    for (size_t i = 0; i < n; i++) {
        if (rsquery_csv_field(out, provider) != 0 || fputc(',', out) == EOF ||
            rsquery_csv_field(out, v[i].account) != 0 || fputc(',', out) == EOF ||
            rsquery_csv_field(out, v[i].chain) != 0 ||
            fprintf(out, ",%s,%s,%" PRId64 "\n", from, to, v[i].relays) < 0)
            return -1;
    }
    if (rsquery_csv_field(out, provider) != 0 ||
        fprintf(out, ",TOTAL,,%s,%s,%" PRId64 "\n", from, to, total) < 0)
        return -1;
    return 0;
}

int rsexport_csv(const struct rsexport *e, FILE *out)
{
    char from[32], to[32];

    bucket_format_iso(e->from, from, sizeof(from));
    bucket_format_iso(e->to, to, sizeof(to));
    if (fputs("provider,account,chain,from,to,relays\n", out) < 0)
        return -1;
    if (e->provider) {
        if (csv_block(out, e->provider, e->rows, e->nrows, e->total, from, to) != 0)
            return -1;
        return fflush(out) == 0 ? 0 : -1;
    }
    for (size_t i = 0; i < e->nproviders; i++) {
        const struct rsexport_provider *p = &e->providers[i];
        if (csv_block(out, p->name, e->rows + p->first, p->n, p->total, from, to) != 0)
            return -1;
    }
    if (csv_block(out, RSEXPORT_UNOWNED, e->unowned, e->nunowned, e->unowned_total, from, to) !=
            0 ||
        fprintf(out, ",TOTAL,,%s,%s,%" PRId64 "\n", from, to, e->total + e->unowned_total) < 0)
        return -1;
    return fflush(out) == 0 ? 0 : -1;
}
