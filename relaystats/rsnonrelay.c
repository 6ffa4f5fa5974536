/* Non-relay counts per reason from non_relay_counts. */
#include "rsnonrelay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bucket.h"
#include "rsdb.h"

static struct rsnonrelay_reason *new_reason(struct rsnonrelay *nr, const char *reason)
{
    struct rsnonrelay_reason *v = realloc(nr->reasons, (nr->nreasons + 1) * sizeof(*v)), *r;

    if (!v)
        return NULL;
    nr->reasons = v;
    r = &v[nr->nreasons];
    memset(r, 0, sizeof(*r));
    r->reason = strdup(reason);
    r->points = calloc(nr->nbuckets ? nr->nbuckets : 1, sizeof(*r->points));
    nr->nreasons++;
    return r->reason && r->points ? r : NULL;
}

int rsnonrelay_run(PGconn *pg, const struct rstime_range *range, const char *gateway,
                   struct rsnonrelay *nr, struct rserr *err)
{
    char from_iso[32], to_iso[32], step[24], sql[512];
    const char *params[4];
    struct rsnonrelay_reason *r = NULL;
    PGresult *res;

    memset(nr, 0, sizeof(*nr));
    nr->range = *range;
    nr->nbuckets = rstime_nbuckets(range);
    bucket_format_iso(range->from, from_iso, sizeof(from_iso));
    bucket_format_iso(range->to, to_iso, sizeof(to_iso));
    snprintf(step, sizeof(step), "%lld", (long long)range->step);
    params[0] = from_iso;
    params[1] = to_iso;
    params[2] = step;
    params[3] = gateway;
    snprintf(sql, sizeof(sql),
             "SELECT reason, (extract(epoch FROM bucket_start)::bigint / $3::bigint) * "
             "$3::bigint AS b, sum(requests)::bigint FROM non_relay_counts WHERE bucket_start >= "
             "$1::timestamptz AND bucket_start < $2::timestamptz%s GROUP BY reason, b ORDER BY "
             "reason, b",
             gateway ? " AND gateway = $4" : "");
    res = rsdb_exec(pg, sql, gateway ? 4 : 3, params, PGRES_TUPLES_OK, err);
    if (!res)
        return -1;
    for (int row = 0; row < PQntuples(res); row++) {
        const char *reason = PQgetvalue(res, row, 0);
        int64_t b = strtoll(PQgetvalue(res, row, 1), NULL, 10);
        int64_t v = strtoll(PQgetvalue(res, row, 2), NULL, 10);

        if (!r || strcmp(r->reason, reason) != 0) {
            r = new_reason(nr, reason);
            if (!r)
                goto oom;
        }
        if (b >= range->from && b < range->to)
            r->points[(b - range->from) / range->step] += v;
        r->total += v;
        nr->total += v;
    }
    PQclear(res);
    return 0;
oom:
    rserr_set(err, 500, "out of memory");
    PQclear(res);
    rsnonrelay_free(nr);
    return -1;
}

void rsnonrelay_free(struct rsnonrelay *nr)
{
    for (size_t i = 0; i < nr->nreasons; i++) {
        free(nr->reasons[i].reason);
        free(nr->reasons[i].points);
    }
    free(nr->reasons);
    memset(nr, 0, sizeof(*nr));
}

json_t *rsnonrelay_json(const struct rsnonrelay *nr)
{
    const struct rstime_range *range = &nr->range;
    char from_iso[32], to_iso[32], iso[32];
    json_t *root, *reasons = json_array();

    bucket_format_iso(range->from, from_iso, sizeof(from_iso));
    bucket_format_iso(range->to, to_iso, sizeof(to_iso));
    root = json_pack("{sssssssIso}", "from", from_iso, "to", to_iso, "step",
                     rstime_step_name(range->step), "total", (json_int_t)nr->total, "reasons",
                     reasons);
    if (!root)
        return NULL;
    for (size_t k = 0; k < nr->nreasons; k++) {
        const struct rsnonrelay_reason *r = &nr->reasons[k];
        json_t *series = json_array();
        json_t *o = json_pack("{sssosI}", "reason", r->reason, "series", series, "total",
                              (json_int_t)r->total);
        if (!o || json_array_append_new(reasons, o) != 0)
            goto fail;
        for (size_t i = 0; i < nr->nbuckets; i++) {
            bucket_format_iso(range->from + (int64_t)i * range->step, iso, sizeof(iso));
            if (json_array_append_new(series, json_pack("[sI]", iso, (json_int_t)r->points[i])))
                goto fail;
        }
    }
    return root;
fail:
    json_decref(root);
    return NULL;
}
