/* Upsert providers and accounts from the config. */
#include "rssync.h"

#include <string.h>

#include "rsdb.h"

static int exec_cmd(PGconn *pg, const char *sql, int n, const char *const *params,
                    struct rserr *err)
{
    PGresult *res = rsdb_exec(pg, sql, n, params, PGRES_COMMAND_OK, err);

    if (!res)
        return -1;
    PQclear(res);
    return 0;
}

int rssync_run(PGconn *pg, const struct ccgwconf *c, struct rssync_stats *stats, struct rserr *err)
{
    memset(stats, 0, sizeof(*stats));
    if (exec_cmd(pg, "BEGIN", 0, NULL, err) != 0)
        return -1;
    for (size_t i = 0; i < c->nproviders; i++) {
        const struct ccgwconf_provider *p = &c->providers[i];
        const char *pp[1] = {p->name};

        if (exec_cmd(pg, "INSERT INTO providers (name) VALUES ($1) ON CONFLICT DO NOTHING", 1, pp,
                     err) != 0)
            goto fail;
        stats->providers++;
        for (size_t a = 0; a < p->naccounts; a++) {
            for (size_t k = 0; k < p->accounts[a].nchains; k++) {
                const char *ap[3] = {p->accounts[a].id, p->accounts[a].chains[k], p->name};
                if (exec_cmd(pg,
                             "INSERT INTO accounts (account, chain, provider) VALUES ($1, $2, $3) "
                             "ON CONFLICT (account, chain) DO UPDATE SET provider = "
                             "EXCLUDED.provider WHERE accounts.provider IS DISTINCT FROM "
                             "EXCLUDED.provider",
                             3, ap, err) != 0)
                    goto fail;
                stats->accounts++;
            }
        }
    }
    return exec_cmd(pg, "COMMIT", 0, NULL, err);
fail:
    PQclear(rsdb_exec(pg, "ROLLBACK", 0, NULL, PGRES_COMMAND_OK, NULL));
    return -1;
}
