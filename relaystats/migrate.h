/* Schema migrations runner (relaystats migrate). Every migration of
 * schema.c with a version above the database's runs in its own transaction
 * together with its schema_migrations row; a session advisory lock makes
 * concurrent runners wait for each other, so running it again (or twice at
 * once) applies nothing twice. */
#ifndef CCGW_MIGRATE_H
#define CCGW_MIGRATE_H

#include <stddef.h>

#include <libpq-fe.h>

/* Apply what is missing, up to version `target` (0: the latest). *from gets
 * the version found, *to the version reached. From version 2 on, it then
 * makes sure relay_counts has the monthly partitions of the next 12 months
 * (relay_counts_add_months; idempotent, so a monthly run keeps them ahead).
 * 0, or -1 with err (a database newer than this build is an error; a failed
 * migration is rolled back and named). */
int migrate_run(PGconn *conn, int target, int *from, int *to, char *err, size_t errlen);

/* Read the database's version into *version (0: none) and compare it with
 * SCHEMA_VERSION: 0 when equal, -1 with a message saying what to do. */
int migrate_check(PGconn *conn, int *version, char *err, size_t errlen);

#endif
