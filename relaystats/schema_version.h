/* The PostgreSQL schema version this source tree writes and reads.
 *
 * relaystats owns the schema (relaystats/schema.c holds the migrations);
 * cc-gateway includes only this header, so that it can refuse a database
 * whose schema it does not know without linking relaystats objects. Bump it
 * together with a new entry at the end of the migration table. */
#ifndef CCGW_SCHEMA_VERSION_H
#define CCGW_SCHEMA_VERSION_H

#define SCHEMA_VERSION 5

/* The statement that reads a database's version; 0 when none was applied. */
#define SCHEMA_VERSION_QUERY "SELECT coalesce(max(version), 0) FROM schema_migrations"

#endif
