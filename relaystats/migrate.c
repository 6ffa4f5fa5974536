/* Migrations runner: see migrate.h. */
#include "migrate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"
#include "schema_version.h"
#include "sys.h"

/* pg_advisory_lock key: "ccgw" in ASCII, shared by every runner */
#define MIGRATE_LOCK_KEY "1668507511"

static const char SQL_TABLE[] = "CREATE TABLE IF NOT EXISTS schema_migrations (\n"
                                "    version integer PRIMARY KEY,\n"
                                "    name text NOT NULL,\n"
                                "    applied_at timestamptz NOT NULL DEFAULT now()\n"
                                ")";

static void pg_err(PGconn *conn, const char *what, char *err, size_t errlen)
{
    const char *m = PQerrorMessage(conn);
    size_t n = strlen(m);
    while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
        n--;
    sys_set_err(err, errlen, "%s: %.*s", what, (int)n, m);
}

static int exec_cmd(PGconn *conn, const char *sql, int nparams, const char *const *params,
                    const char *what, char *err, size_t errlen)
{
    PGresult *r =
        nparams ? PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0) : PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        pg_err(conn, what, err, errlen);
    PQclear(r);
    return ok ? 0 : -1;
}

static int read_version(PGconn *conn, int *version, char *err, size_t errlen)
{
    PGresult *r = PQexec(conn, SCHEMA_VERSION_QUERY);
    ExecStatusType st = PQresultStatus(r);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    int rc = 0;
    if (st == PGRES_FATAL_ERROR && state && strcmp(state, "42P01") == 0)
        *version = 0; /* no schema_migrations table: nothing applied */
    else if (st == PGRES_TUPLES_OK && PQntuples(r) == 1)
        *version = atoi(PQgetvalue(r, 0, 0));
    else {
        pg_err(conn, "reading the schema version", err, errlen);
        rc = -1;
    }
    PQclear(r);
    return rc;
}

int migrate_check(PGconn *conn, int *version, char *err, size_t errlen)
{
    if (read_version(conn, version, err, errlen) < 0)
        return -1;
    if (*version == SCHEMA_VERSION)
        return 0;
    if (*version < SCHEMA_VERSION)
        sys_set_err(
            err, errlen,
            "database schema version %d is older than %d: run `relaystats migrate --config F`",
            *version, SCHEMA_VERSION);
    else
        sys_set_err(err, errlen,
                    "database schema version %d is newer than %d, the latest this build knows: "
                    "upgrade relaystats",
                    *version, SCHEMA_VERSION);
    return -1;
}

static int apply_one(PGconn *conn, const struct schema_migration *m, char *err, size_t errlen)
{
    char what[128], ver[16];
    snprintf(what, sizeof(what), "migration %03d (%s)", m->version, m->name);
    snprintf(ver, sizeof(ver), "%d", m->version);
    const char *params[] = {ver, m->name};
    if (exec_cmd(conn, "BEGIN", 0, NULL, what, err, errlen) < 0)
        return -1;
    if (exec_cmd(conn, m->sql, 0, NULL, what, err, errlen) < 0 ||
        exec_cmd(conn, "INSERT INTO schema_migrations (version, name) VALUES ($1::integer, $2)", 2,
                 params, what, err, errlen) < 0 ||
        exec_cmd(conn, "COMMIT", 0, NULL, what, err, errlen) < 0) {
        PQclear(PQexec(conn, "ROLLBACK"));
        return -1;
    }
    return 0;
}

int migrate_run(PGconn *conn, int target, int *from, int *to, char *err, size_t errlen)
{
    size_t n;
    const struct schema_migration *m = schema_migrations(&n);
    int locked = 0, version = 0;
    *from = *to = 0;
    /* the lock is taken before the table exists: two first runs race on
     * CREATE TABLE otherwise */
    if (exec_cmd(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", 0, NULL,
                 "taking the migration lock", err, errlen) < 0)
        goto fail;
    locked = 1;
    if (exec_cmd(conn, "SET client_min_messages = warning", 0, NULL, "set client_min_messages", err,
                 errlen) < 0 ||
        exec_cmd(conn, SQL_TABLE, 0, NULL, "creating schema_migrations", err, errlen) < 0 ||
        read_version(conn, &version, err, errlen) < 0)
        goto fail;
    *from = *to = version;
    if (version > SCHEMA_VERSION) {
        sys_set_err(err, errlen,
                    "database schema version %d is newer than %d, the latest this build knows: "
                    "upgrade relaystats",
                    version, SCHEMA_VERSION);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        if (m[i].version <= version || (target > 0 && m[i].version > target))
            continue;
        if (apply_one(conn, &m[i], err, errlen) < 0)
            goto fail;
        *to = m[i].version;
    }
    if (*to >= 2 &&
        exec_cmd(conn, "SELECT relay_counts_add_months(now(), now() + interval '12 months')", 0,
                 NULL, "adding relay_counts partitions", err, errlen) < 0)
        goto fail;
    exec_cmd(conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", 0, NULL, "unlock", err,
             errlen);
    return 0;
fail:
    if (locked)
        PQclear(PQexec(conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")"));
    return -1;
}
