/* Relay count queries: SQL built from a fixed set of fragments, every value
 * passed as a parameter. */
#include "rsquery.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "bucket.h"
#include "rsdb.h"
#include "rsowner.h"

const char *const rsquery_dim_names[RSQUERY_NDIMS] = {"gateway", "chain", "account"};

int rsquery_check_name(const char *what, const char *value, struct rserr *err)
{
    size_t n = value ? strlen(value) : 0;

    if (n == 0 || n > 64) {
        rserr_set(err, 400, "%s must be 1 to 64 characters", what);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char c = value[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            rserr_set(err, 400, "%s may only hold letters, digits, '.', '_' and '-'", what);
            return -1;
        }
    }
    return 0;
}

int rsquery_parse_by(const char *s, unsigned *by, struct rserr *err)
{
    const char *p = s;

    *by = 0;
    if (!s || !*s || strcmp(s, "none") == 0)
        return 0;
    while (*p) {
        size_t n = strcspn(p, ",");
        int found = 0;
        for (int d = 0; d < RSQUERY_NDIMS; d++) {
            if (strlen(rsquery_dim_names[d]) == n && strncmp(p, rsquery_dim_names[d], n) == 0) {
                *by |= 1u << d;
                found = 1;
            }
        }
        if (!found) {
            rserr_set(err, 400, "by: unknown dimension '%.*s' (expected gateway, chain, account)",
                      (int)(n > 32 ? 32 : n), p);
            return -1;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

int rsquery_parse_source(const char *s, int *source)
{
    static const char *const names[] = {"auto", "raw", "hourly", "daily"};

    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *source = i;
            return 0;
        }
    }
    return -1;
}

/* Every source is a relay_totals view (relaystats/schema.c, migration 4):
 * the folded rows of relay_counts or its rollup plus the deltas not folded
 * yet, so a query is exact whenever it runs. A view may hold several rows
 * per key: the queries sum. */
static const char *source_table(int source, int64_t *granularity)
{
    switch (source) {
    case RSQUERY_SRC_DAILY:
        *granularity = RSTIME_STEP_1D;
        return "relay_totals_daily";
    case RSQUERY_SRC_HOURLY:
        *granularity = RSTIME_STEP_1H;
        return "relay_totals_hourly";
    default:
        *granularity = RSTIME_STEP_5M;
        return "relay_totals";
    }
}

static int effective_source(const struct rsquery *q)
{
    if (q->source != RSQUERY_SRC_AUTO)
        return q->source;
    if (q->range.step >= RSTIME_STEP_1D)
        return RSQUERY_SRC_DAILY;
    if (q->range.step >= RSTIME_STEP_1H)
        return RSQUERY_SRC_HOURLY;
    return RSQUERY_SRC_RAW;
}

/* The daily source without accounts (no account dimension or filter, no
 * provider filter, which names accounts) reads the per-chain daily rollup. */
static const char *query_table(const struct rsquery *q, int64_t *granularity)
{
    const char *t = source_table(effective_source(q), granularity);
    if (effective_source(q) == RSQUERY_SRC_DAILY && !(q->by & RSQUERY_BY_ACCOUNT) && !q->account &&
        !q->provider)
        return "relay_totals_daily_chain";
    return t;
}

const char *rsquery_table(const struct rsquery *q)
{
    int64_t g;
    return query_table(q, &g);
}

/* Append to a fixed buffer; the SQL is built from short constant fragments
 * so the buffer cannot overflow, but stay defensive. */
static int sql_add(char *buf, size_t size, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int sql_add(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf + *len, size - *len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size - *len)
        return -1;
    *len += (size_t)n;
    return 0;
}

/* With a provider filter, a bucket counts when that provider owned its
 * (account, chain) at its bucket_start (rsowner.h); a rollup bucket that an
 * owner change cuts in two is read as its five-minute rows, which the step
 * folds back. */
static int build_sql(const struct rsquery *q, char *sql, size_t size, const char **params,
                     int *nparams, char *from_iso, char *to_iso)
{
    int64_t gran;
    const char *table = query_table(q, &gran);
    const char *filters[4] = {q->gateway, q->chain, q->account, q->provider};
    char dims[64] = "", src[2048];
    size_t len = 0, dlen = 0;
    int n = 0;

    for (int d = 0; d < RSQUERY_NDIMS; d++)
        if (q->by & (1u << d))
            if (sql_add(dims, sizeof(dims), &dlen, "%s, ", rsquery_dim_names[d]) != 0)
                return -1;
    bucket_format_iso(q->range.from, from_iso, 32);
    bucket_format_iso(q->range.to, to_iso, 32);
    params[n++] = from_iso;
    params[n++] = to_iso;
    if (q->provider) {
        if (rsowner_source_sql(table, gran, src, sizeof(src)) != 0)
            return -1;
        table = src;
    }
    /* A table finer than the step is folded to the step in SQL (this is how
     * the raw-table comparison of the benchmark runs). */
    if (gran == q->range.step && !q->provider) {
        if (sql_add(sql, size, &len,
                    "SELECT %sextract(epoch FROM bucket_start)::bigint AS b, sum(relays)::bigint "
                    "FROM %s t WHERE bucket_start >= $1::timestamptz AND bucket_start < "
                    "$2::timestamptz",
                    dims, table) != 0)
            return -1;
    } else if (sql_add(sql, size, &len,
                       "SELECT %s(extract(epoch FROM bucket_start)::bigint / %" PRId64
                       ") * %" PRId64
                       " AS b, sum(relays)::bigint FROM %s t WHERE bucket_start >= $1::timestamptz "
                       "AND bucket_start < $2::timestamptz",
                       dims, q->range.step, q->range.step, table) != 0) {
        return -1;
    }
    for (int d = 0; d < RSQUERY_NDIMS; d++) {
        if (!filters[d])
            continue;
        params[n++] = filters[d];
        if (sql_add(sql, size, &len, " AND %s = $%d", rsquery_dim_names[d], n) != 0)
            return -1;
    }
    if (filters[3]) {
        params[n++] = filters[3];
        if (sql_add(sql, size, &len,
                    " AND EXISTS (SELECT 1 FROM account_owners o WHERE o.provider = $%d "
                    "AND " RSOWNER_OWNS("o", "t") ")",
                    n) != 0)
            return -1;
    }
    if (sql_add(sql, size, &len, " GROUP BY %sb ORDER BY %sb", dims, dims) != 0)
        return -1;
    *nparams = n;
    return 0;
}

static int same_keys(const struct rsquery_group *g, PGresult *res, int row, int ndims)
{
    for (int k = 0, d = 0; d < RSQUERY_NDIMS; d++) {
        if (!g->keys[d])
            continue;
        if (strcmp(g->keys[d], PQgetvalue(res, row, k)) != 0)
            return 0;
        k++;
    }
    (void)ndims;
    return 1;
}

static struct rsquery_group *new_group(struct rsquery_result *r, PGresult *res, int row,
                                       struct rserr *err)
{
    struct rsquery_group *groups, *g;

    if ((r->ngroups + 1) * (r->nbuckets ? r->nbuckets : 1) > RSQUERY_MAX_POINTS) {
        rserr_set(err, 400,
                  "result too large (more than %d points); narrow the range, the grouping or "
                  "use a coarser step",
                  RSQUERY_MAX_POINTS);
        return NULL;
    }
    groups = realloc(r->groups, (r->ngroups + 1) * sizeof(*groups));
    if (!groups)
        goto oom;
    r->groups = groups;
    g = &groups[r->ngroups];
    memset(g, 0, sizeof(*g));
    r->ngroups++;
    g->points = calloc(r->nbuckets ? r->nbuckets : 1, sizeof(*g->points));
    if (!g->points)
        goto oom;
    for (int k = 0, d = 0; d < RSQUERY_NDIMS; d++) {
        if (!(r->by & (1u << d)))
            continue;
        g->keys[d] = strdup(PQgetvalue(res, row, k++));
        if (!g->keys[d])
            goto oom;
    }
    return g;
oom:
    rserr_set(err, 500, "out of memory");
    return NULL;
}

int rsquery_run(PGconn *pg, const struct rsquery *q, struct rsquery_result *r, struct rserr *err)
{
    char sql[4096], from_iso[32], to_iso[32];
    const char *params[8];
    int nparams = 0, ndims = 0;
    PGresult *res = NULL;
    struct rsquery_group *g = NULL;

    memset(r, 0, sizeof(*r));
    r->range = q->range;
    r->by = q->by;
    r->table = rsquery_table(q);
    r->nbuckets = rstime_nbuckets(&q->range);
    for (int d = 0; d < RSQUERY_NDIMS; d++)
        ndims += (q->by >> d) & 1;
    r->points = calloc(r->nbuckets ? r->nbuckets : 1, sizeof(*r->points));
    if (!r->points) {
        rserr_set(err, 500, "out of memory");
        goto fail;
    }
    if (build_sql(q, sql, sizeof(sql), params, &nparams, from_iso, to_iso) != 0) {
        rserr_set(err, 500, "query too long");
        goto fail;
    }
    res = rsdb_exec(pg, sql, nparams, params, PGRES_TUPLES_OK, err);
    if (!res)
        goto fail;
    for (int row = 0; row < PQntuples(res); row++) {
        int64_t b = strtoll(PQgetvalue(res, row, ndims), NULL, 10);
        int64_t n = strtoll(PQgetvalue(res, row, ndims + 1), NULL, 10);
        size_t i;

        if (b < r->range.from || b >= r->range.to)
            continue;
        i = (size_t)((b - r->range.from) / r->range.step);
        if (ndims > 0) {
            if (!g || !same_keys(g, res, row, ndims)) {
                g = new_group(r, res, row, err);
                if (!g)
                    goto fail;
            }
            g->points[i] += n;
            g->total += n;
        }
        r->points[i] += n;
        r->total += n;
    }
    PQclear(res);
    res = NULL;
    r->standby = rsdb_standby_lag(pg, &r->standby_lag_s, err);
    if (r->standby < 0)
        goto fail;
    return 0;
fail:
    PQclear(res);
    rsquery_result_free(r);
    return -1;
}

void rsquery_result_free(struct rsquery_result *r)
{
    for (size_t i = 0; i < r->ngroups; i++) {
        for (int d = 0; d < RSQUERY_NDIMS; d++)
            free(r->groups[i].keys[d]);
        free(r->groups[i].points);
    }
    free(r->groups);
    free(r->points);
    r->groups = NULL;
    r->points = NULL;
    r->ngroups = 0;
}

static json_t *series_json(const struct rsquery_result *r, const int64_t *points)
{
    json_t *series = json_array();
    char iso[32];

    if (!series)
        return NULL;
    for (size_t i = 0; i < r->nbuckets; i++) {
        bucket_format_iso(r->range.from + (int64_t)i * r->range.step, iso, sizeof(iso));
        if (json_array_append_new(series, json_pack("[sI]", iso, (json_int_t)points[i])) != 0) {
            json_decref(series);
            return NULL;
        }
    }
    return series;
}

json_t *rsquery_result_json(const struct rsquery_result *r)
{
    char from[32], to[32];
    json_t *root = NULL, *by = NULL, *groups = NULL;

    bucket_format_iso(r->range.from, from, sizeof(from));
    bucket_format_iso(r->range.to, to, sizeof(to));
    by = json_array();
    if (!by)
        goto fail;
    for (int d = 0; d < RSQUERY_NDIMS; d++)
        if ((r->by & (1u << d)) && json_array_append_new(by, json_string(rsquery_dim_names[d])))
            goto fail;
    root = json_pack("{sssssssssOsIso}", "from", from, "to", to, "step",
                     rstime_step_name(r->range.step), "table", r->table, "by", by, "total",
                     (json_int_t)r->total, "series", series_json(r, r->points));
    if (!root)
        goto fail;
    if (r->standby && json_object_set_new(root, "standby",
                                          json_pack("{sf}", "lag_seconds", r->standby_lag_s)) != 0)
        goto fail;
    if (r->by) {
        groups = json_array();
        if (!groups || json_object_set_new(root, "groups", groups) != 0)
            goto fail;
        for (size_t i = 0; i < r->ngroups; i++) {
            const struct rsquery_group *g = &r->groups[i];
            json_t *o = json_pack("{sIso}", "total", (json_int_t)g->total, "series",
                                  series_json(r, g->points));
            if (!o || json_array_append_new(groups, o) != 0)
                goto fail;
            for (int d = 0; d < RSQUERY_NDIMS; d++)
                if (g->keys[d] &&
                    json_object_set_new(o, rsquery_dim_names[d], json_string(g->keys[d])) != 0)
                    goto fail;
        }
    }
    json_decref(by);
    return root;
fail:
    json_decref(by);
    json_decref(root);
    return NULL;
}

int rsquery_csv_field(FILE *out, const char *s)
{
    if (strpbrk(s, ",\"\r\n") == NULL)
        return fputs(s, out) < 0 ? -1 : 0;
    if (fputc('"', out) == EOF)
        return -1;
    for (; *s; s++) {
        if (*s == '"' && fputc('"', out) == EOF)
            return -1;
        if (fputc(*s, out) == EOF)
            return -1;
    }
    return fputc('"', out) == EOF ? -1 : 0;
}

/* One output line per (group, bucket); with no grouping, the total series. */
static int write_rows(const struct rsquery_result *r, FILE *out, int csv, const int width[])
{
    char iso[32];
    size_t ng = r->by ? r->ngroups : 1;

    for (size_t gi = 0; gi < ng; gi++) {
        const struct rsquery_group *g = r->by ? &r->groups[gi] : NULL;
        const int64_t *points = g ? g->points : r->points;
        for (size_t i = 0; i < r->nbuckets; i++) {
            bucket_format_iso(r->range.from + (int64_t)i * r->range.step, iso, sizeof(iso));
            if (fputs(iso, out) < 0)
                return -1;
            for (int d = 0; g && d < RSQUERY_NDIMS; d++) {
                if (!g->keys[d])
                    continue;
                if (csv) {
                    if (fputc(',', out) == EOF || rsquery_csv_field(out, g->keys[d]) != 0)
                        return -1;
                } else if (fprintf(out, "  %-*s", width[d], g->keys[d]) < 0) {
                    return -1;
                }
            }
            if (fprintf(out, csv ? ",%" PRId64 "\n" : "  %12" PRId64 "\n", points[i]) < 0)
                return -1;
        }
    }
    return 0;
}

int rsquery_result_csv(const struct rsquery_result *r, FILE *out)
{
    if (fputs("bucket_start", out) < 0)
        return -1;
    for (int d = 0; d < RSQUERY_NDIMS; d++)
        if ((r->by & (1u << d)) && fprintf(out, ",%s", rsquery_dim_names[d]) < 0)
            return -1;
    if (fputs(",relays\n", out) < 0 || write_rows(r, out, 1, NULL) != 0)
        return -1;
    return fflush(out) == 0 ? 0 : -1;
}

int rsquery_result_table(const struct rsquery_result *r, FILE *out)
{
    int width[RSQUERY_NDIMS] = {0, 0, 0};
    int pad = 0;

    for (int d = 0; d < RSQUERY_NDIMS; d++) {
        if (!(r->by & (1u << d)))
            continue;
        width[d] = (int)strlen(rsquery_dim_names[d]);
        for (size_t i = 0; i < r->ngroups; i++)
            if (r->groups[i].keys[d] && (int)strlen(r->groups[i].keys[d]) > width[d])
                width[d] = (int)strlen(r->groups[i].keys[d]);
    }
    if (fprintf(out, "%-20s", "bucket_start") < 0)
        return -1;
    for (int d = 0; d < RSQUERY_NDIMS; d++) {
        if (!(r->by & (1u << d)))
            continue;
        if (fprintf(out, "  %-*s", width[d], rsquery_dim_names[d]) < 0)
            return -1;
        pad += width[d] + 2;
    }
    if (fprintf(out, "  %12s\n", "relays") < 0 || write_rows(r, out, 0, width) != 0)
        return -1;
    if (fprintf(out, "%-20s%*s  %12" PRId64 "\n", "total", pad, "", r->total) < 0)
        return -1;
    if (r->standby &&
        fprintf(out, "(read from a standby, %.1f s behind its primary)\n", r->standby_lag_s) < 0)
        return -1;
    return fflush(out) == 0 ? 0 : -1;
}
