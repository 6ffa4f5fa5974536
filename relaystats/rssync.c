/* Providers, account ownership and accounts from the config: see rssync.h. */
#include "rssync.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bucket.h"
#include "log.h"
#include "rsdb.h"
#include "rsowner.h"

/* pg_advisory_xact_lock key: "sync" in ASCII */
#define RSSYNC_LOCK_KEY "1937337955"

/* Each pair's open row, with the owner of the row it follows; and the
 * pairs with rows but none open, with their latest end. */
static const char SQL_HAVE[] =
    "SELECT o.account, o.chain, o.provider,"
    " CASE WHEN isfinite(o.valid_from) THEN extract(epoch FROM o.valid_from)::bigint END,"
    " p.provider, NULL::bigint"
    " FROM account_owners o LEFT JOIN account_owners p ON p.account = o.account"
    " AND p.chain = o.chain AND p.valid_to = o.valid_from"
    " WHERE o.valid_to IS NULL"
    " UNION ALL"
    " SELECT account, chain, NULL, NULL, NULL, extract(epoch FROM max(valid_to))::bigint"
    " FROM account_owners GROUP BY account, chain"
    " HAVING count(*) FILTER (WHERE valid_to IS NULL) = 0";

/* accounts := the open rows, touching only the rows that differ */
static const char SQL_ACCOUNTS_UPSERT[] =
    "INSERT INTO accounts AS a (account, chain, provider)"
    " SELECT o.account, o.chain, o.provider FROM account_owners o"
    " LEFT JOIN accounts c ON c.account = o.account AND c.chain = o.chain"
    " WHERE o.valid_to IS NULL AND c.provider IS DISTINCT FROM o.provider"
    " ON CONFLICT (account, chain) DO UPDATE SET provider = EXCLUDED.provider";
static const char SQL_ACCOUNTS_DELETE[] =
    "DELETE FROM accounts c WHERE NOT EXISTS (SELECT 1 FROM account_owners o"
    " WHERE o.account = c.account AND o.chain = c.chain AND o.valid_to IS NULL)";

/* Run a statement; *rows (if not NULL) gets the rows it touched. */
static int exec_cmd(PGconn *pg, const char *sql, int n, const char *const *params, size_t *rows,
                    struct rserr *err)
{
    PGresult *res = rsdb_exec(pg, sql, n, params, PGRES_COMMAND_OK, err);

    if (!res)
        return -1;
    if (rows)
        *rows = (size_t)strtoull(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return 0;
}

static int64_t test_now(void)
{
    const char *s = getenv("CCGW_TEST_NOW");
    char *end;
    long long v;

    if (!s || !*s)
        return -1;
    v = strtoll(s, &end, 10);
    return *end || v < 0 ? -1 : (int64_t)v;
}

static int read_now(PGconn *pg, int64_t *now, struct rserr *err)
{
    PGresult *res;

    *now = test_now();
    if (*now >= 0)
        return 0;
    res = rsdb_exec(pg, "SELECT extract(epoch FROM clock_timestamp())::bigint", 0, NULL,
                    PGRES_TUPLES_OK, err);
    if (!res)
        return -1;
    *now = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return 0;
}

static int add_providers(PGconn *pg, const struct ccgwconf *c, size_t *added, struct rserr *err)
{
    for (size_t i = 0; i < c->nproviders; i++) {
        const char *pp[1] = {c->providers[i].name};
        size_t n = 0;
        if (exec_cmd(pg, "INSERT INTO providers (name) VALUES ($1) ON CONFLICT DO NOTHING", 1, pp,
                     &n, err) != 0)
            return -1;
        *added += n;
    }
    return 0;
}

/* The config's pairs, pointing into `c`. NULL with `err` on OOM. */
static struct rsowner_want *config_pairs(const struct ccgwconf *c, size_t *n, struct rserr *err)
{
    struct rsowner_want *v;
    size_t total = 0, k = 0;

    for (size_t p = 0; p < c->nproviders; p++)
        for (size_t a = 0; a < c->providers[p].naccounts; a++)
            total += c->providers[p].accounts[a].nchains;
    v = calloc(total ? total : 1, sizeof(*v));
    if (!v) {
        rserr_set(err, 500, "out of memory");
        return NULL;
    }
    for (size_t p = 0; p < c->nproviders; p++) {
        const struct ccgwconf_provider *pr = &c->providers[p];
        for (size_t a = 0; a < pr->naccounts; a++)
            for (size_t ch = 0; ch < pr->accounts[a].nchains; ch++)
                v[k++] =
                    (struct rsowner_want){pr->accounts[a].id, pr->accounts[a].chains[ch], pr->name};
    }
    *n = total;
    return v;
}

/* The rows of SQL_HAVE, pointing into `res`. NULL with `err` on OOM. */
static struct rsowner_have *read_have(PGresult *res, size_t *n, struct rserr *err)
{
    int rows = PQntuples(res);
    struct rsowner_have *v = calloc(rows ? (size_t)rows : 1, sizeof(*v));

    if (!v) {
        rserr_set(err, 500, "out of memory");
        return NULL;
    }
    for (int i = 0; i < rows; i++) {
        struct rsowner_have *h = &v[i];
        h->account = PQgetvalue(res, i, 0);
        h->chain = PQgetvalue(res, i, 1);
        h->provider = PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2);
        h->valid_from =
            PQgetisnull(res, i, 3) ? RSOWNER_NEG_INF : strtoll(PQgetvalue(res, i, 3), NULL, 10);
        h->prev_provider = PQgetisnull(res, i, 4) ? NULL : PQgetvalue(res, i, 4);
        h->last_to =
            PQgetisnull(res, i, 5) ? RSOWNER_NEG_INF : strtoll(PQgetvalue(res, i, 5), NULL, 10);
    }
    *n = (size_t)rows;
    return v;
}

/* A text[] literal element: double-quoted, with " and \ escaped. */
static int array_elem(FILE *f, const char *s, int first)
{
    if ((!first && fputc(',', f) == EOF) || fputc('"', f) == EOF)
        return -1;
    for (; *s; s++)
        if (((*s == '"' || *s == '\\') && fputc('\\', f) == EOF) || fputc(*s, f) == EOF)
            return -1;
    return fputc('"', f) == EOF ? -1 : 0;
}

/* Every RSOWNER_ADD of the plan in one INSERT: a first sync may add
 * thousands of pairs. */
static int apply_adds(PGconn *pg, const struct rsowner_plan *plan, struct rserr *err)
{
    char *lit[3] = {NULL, NULL, NULL};
    size_t len[3];
    FILE *f[3] = {NULL, NULL, NULL};
    size_t nadd = 0;
    int rc = -1;

    for (int k = 0; k < 3; k++) {
        f[k] = open_memstream(&lit[k], &len[k]);
        if (!f[k] || fputc('{', f[k]) == EOF)
            goto oom;
    }
    for (size_t i = 0; i < plan->n; i++) {
        const struct rsowner_want *w = plan->v[i].want;
        if (plan->v[i].op != RSOWNER_ADD)
            continue;
        if (array_elem(f[0], w->account, nadd == 0) != 0 ||
            array_elem(f[1], w->chain, nadd == 0) != 0 ||
            array_elem(f[2], w->provider, nadd == 0) != 0)
            goto oom;
        nadd++;
    }
    for (int k = 0; k < 3; k++) {
        int bad = fputc('}', f[k]) == EOF;
        bad |= fclose(f[k]) != 0;
        f[k] = NULL;
        if (bad)
            goto oom;
    }
    if (nadd == 0) {
        rc = 0;
        goto done;
    }
    const char *params[3] = {lit[0], lit[1], lit[2]};
    rc = exec_cmd(pg,
                  "INSERT INTO account_owners (account, chain, provider, valid_from)"
                  " SELECT a, c, p, '-infinity' FROM unnest($1::text[], $2::text[], $3::text[])"
                  " AS u (a, c, p)",
                  3, params, NULL, err);
    goto done;
oom:
    rserr_set(err, 500, "out of memory");
done:
    for (int k = 0; k < 3; k++) {
        if (f[k])
            fclose(f[k]);
        free(lit[k]);
    }
    return rc;
}

/* One action other than RSOWNER_ADD. */
static int apply_one(PGconn *pg, const struct rsowner_action *a, struct rserr *err)
{
    char at[32];
    const char *p[4] = {a->want->account, a->want->chain, a->want->provider, at};
    size_t n = 0;
    PGresult *res;

    snprintf(at, sizeof(at), "%" PRId64, a->at);
    switch (a->op) {
    case RSOWNER_REOPEN:
        return exec_cmd(pg,
                        "INSERT INTO account_owners (account, chain, provider, valid_from)"
                        " VALUES ($1, $2, $3, to_timestamp($4::bigint))",
                        4, p, NULL, err);
    case RSOWNER_MOVE:
        if (exec_cmd(pg,
                     "UPDATE account_owners SET valid_to = to_timestamp($3::bigint)"
                     " WHERE account = $1 AND chain = $2 AND valid_to IS NULL",
                     3, (const char *const[]){p[0], p[1], p[3]}, &n, err) != 0)
            return -1;
        if (n != 1) {
            rserr_set(err, 500, "account %s on chain %s: its open row changed during the sync",
                      p[0], p[1]);
            return -1;
        }
        return exec_cmd(pg,
                        "INSERT INTO account_owners (account, chain, provider, valid_from)"
                        " VALUES ($1, $2, $3, to_timestamp($4::bigint))",
                        4, p, NULL, err);
    case RSOWNER_REPLACE:
        return exec_cmd(pg,
                        "UPDATE account_owners SET provider = $3"
                        " WHERE account = $1 AND chain = $2 AND valid_to IS NULL",
                        3, p, NULL, err);
    case RSOWNER_REVERT:
        /* the deleted row's exact start is where the previous one ends */
        res = rsdb_exec(pg,
                        "DELETE FROM account_owners WHERE account = $1 AND chain = $2"
                        " AND valid_to IS NULL RETURNING valid_from::text",
                        2, p, PGRES_TUPLES_OK, err);
        if (!res)
            return -1;
        if (PQntuples(res) != 1) {
            PQclear(res);
            rserr_set(err, 500, "account %s on chain %s: its open row changed during the sync",
                      p[0], p[1]);
            return -1;
        }
        snprintf(at, sizeof(at), "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        return exec_cmd(pg,
                        "UPDATE account_owners SET valid_to = NULL"
                        " WHERE account = $1 AND chain = $2 AND valid_to = $3::timestamptz",
                        3, (const char *const[]){p[0], p[1], at}, NULL, err);
    case RSOWNER_ADD:
        break;
    }
    return 0;
}

static void log_changes(const struct rsowner_plan *plan)
{
    char at[32];

    for (size_t i = 0; i < plan->n; i++) {
        const struct rsowner_action *a = &plan->v[i];
        if (a->op == RSOWNER_ADD || a->op == RSOWNER_REOPEN) {
            if (a->at == RSOWNER_NEG_INF)
                snprintf(at, sizeof(at), "-infinity");
            else
                bucket_format_iso(a->at, at, sizeof(at));
            LOG_EVENT(LOG_DEBUG, "account_added", NULL, "account given an owner",
                      LF_STR("account", a->want->account), LF_STR("chain", a->want->chain),
                      LF_STR("provider", a->want->provider), LF_STR("from", at),
                      LF_STR("op", rsowner_op_name(a->op)));
            continue;
        }
        bucket_format_iso(a->at, at, sizeof(at));
        LOG_EVENT(LOG_INFO, "account_moved", NULL, "account moved to another provider",
                  LF_STR("account", a->want->account), LF_STR("chain", a->want->chain),
                  LF_STR("from_provider", a->have->provider),
                  LF_STR("to_provider", a->want->provider), LF_STR("at", at),
                  LF_STR("op", rsowner_op_name(a->op)));
    }
}

int rssync_run(PGconn *pg, const struct ccgwconf *c, struct rssync_stats *stats, struct rserr *err)
{
    struct rsowner_want *want = NULL;
    struct rsowner_have *have = NULL;
    struct rsowner_plan plan = {0};
    PGresult *hres = NULL, *res;
    size_t nwant = 0, nhave = 0, n;

    memset(stats, 0, sizeof(*stats));
    want = config_pairs(c, &nwant, err);
    if (!want)
        return -1;
    if (exec_cmd(pg, "BEGIN", 0, NULL, NULL, err) != 0)
        goto fail_notx;
    res = rsdb_exec(pg, "SELECT pg_advisory_xact_lock(" RSSYNC_LOCK_KEY ")", 0, NULL,
                    PGRES_TUPLES_OK, err);
    if (!res)
        goto fail;
    PQclear(res);
    if (read_now(pg, &stats->now, err) != 0 ||
        add_providers(pg, c, &stats->providers_added, err) != 0)
        goto fail;
    hres = rsdb_exec(pg, SQL_HAVE, 0, NULL, PGRES_TUPLES_OK, err);
    if (!hres || !(have = read_have(hres, &nhave, err)) ||
        rsowner_plan(want, nwant, have, nhave, stats->now, &plan, err) != 0)
        goto fail;
    stats->at = rsowner_boundary(stats->now);
    stats->added = plan.added;
    stats->moved = plan.moved;
    stats->unchanged = plan.unchanged;
    stats->unconfigured = plan.unconfigured;
    if (apply_adds(pg, &plan, err) != 0)
        goto fail;
    for (size_t i = 0; i < plan.n; i++)
        if (apply_one(pg, &plan.v[i], err) != 0)
            goto fail;
    if (exec_cmd(pg, SQL_ACCOUNTS_UPSERT, 0, NULL, &n, err) != 0)
        goto fail;
    stats->accounts = n;
    if (exec_cmd(pg, SQL_ACCOUNTS_DELETE, 0, NULL, &n, err) != 0)
        goto fail;
    stats->accounts += n;
    res = rsdb_exec(pg, "SELECT pg_current_xact_id_if_assigned() IS NOT NULL", 0, NULL,
                    PGRES_TUPLES_OK, err);
    if (!res)
        goto fail;
    stats->wrote = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (exec_cmd(pg, "COMMIT", 0, NULL, NULL, err) != 0)
        goto fail;
    log_changes(&plan);
    rsowner_plan_free(&plan);
    free(have);
    PQclear(hres);
    free(want);
    return 0;
fail:
    PQclear(rsdb_exec(pg, "ROLLBACK", 0, NULL, PGRES_COMMAND_OK, NULL));
fail_notx:
    rsowner_plan_free(&plan);
    free(have);
    PQclear(hres);
    free(want);
    return -1;
}
