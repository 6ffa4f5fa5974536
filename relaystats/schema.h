/* The PostgreSQL schema as an ordered list of migrations, embedded in the
 * binary (relaystats migrate applies them; cc-gateway only knows the last
 * version, from schema_version.h). Migrations are append-only: a released
 * one is never edited, a change is a new entry. */
#ifndef CCGW_SCHEMA_H
#define CCGW_SCHEMA_H

#include <stddef.h>

struct schema_migration {
    int version;      /* 1, 2, ...: consecutive */
    const char *name; /* short description, stored in schema_migrations */
    const char *sql;  /* one or more statements, run in one transaction */
};

/* The migrations in version order; *n gets their count. The last one's
 * version equals SCHEMA_VERSION. */
const struct schema_migration *schema_migrations(size_t *n);

#endif
