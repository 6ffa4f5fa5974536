/* Schema migrations runner (relaystats migrate). Every migration of
 * schema.c with a version above the database's runs in its own transaction
 * together with its schema_migrations row; a session advisory lock makes
 * concurrent runners wait for each other, so running it again (or twice at
 * once) applies nothing twice. */
#ifndef CCGW_MIGRATE_H
#define CCGW_MIGRATE_H

#include <stddef.h>

#include <libpq-fe.h>

/* Apply what is missing. *from gets the version found, *to the version
 * reached. 0, or -1 with err (a database newer than this build is an error;
 * a failed migration is rolled back and named). */
int migrate_run(PGconn *conn, int *from, int *to, char *err, size_t errlen);

/* Read the database's version into *version (0: none) and compare it with
 * SCHEMA_VERSION: 0 when equal, -1 with a message saying what to do. */
int migrate_check(PGconn *conn, int *version, char *err, size_t errlen);

#endif
