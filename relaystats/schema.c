/* The migrations. SQL lives here as C string literals (one line per literal)
 * rather than in .sql files: the binaries need it embedded, and this keeps
 * one source of truth without a code generator in the build. */
#include "schema.h"

#include "schema_version.h"

static const char MIGRATION_001[] =
    /* who owns which account (host label) on which chain */
    "CREATE TABLE providers (\n"
    "    name text PRIMARY KEY,\n"
    "    created_at timestamptz NOT NULL DEFAULT now()\n"
    ");\n"
    "CREATE TABLE accounts (\n"
    "    account text NOT NULL,\n"
    "    chain text NOT NULL,\n"
    "    provider text NOT NULL REFERENCES providers (name) ON DELETE CASCADE,\n"
    "    created_at timestamptz NOT NULL DEFAULT now(),\n"
    "    PRIMARY KEY (account, chain)\n"
    ");\n"
    "CREATE INDEX accounts_provider ON accounts (provider);\n"
    /* API tokens are stored hashed; provider NULL is an admin token */
    "CREATE TABLE api_tokens (\n"
    "    token_sha256 text PRIMARY KEY,\n"
    "    provider text REFERENCES providers (name) ON DELETE CASCADE,\n"
    "    created_at timestamptz NOT NULL DEFAULT now()\n"
    ");\n"
    /* five-minute relay counts, the billing record. Labels compare bytewise
     * (COLLATE "C": they are [a-z0-9-] host labels, and locale-aware
     * comparison makes every index insert slower). */
    "CREATE TABLE relay_counts (\n"
    "    gateway text COLLATE \"C\" NOT NULL,\n"
    "    chain text COLLATE \"C\" NOT NULL,\n"
    "    account text COLLATE \"C\" NOT NULL,\n"
    "    bucket_start timestamptz NOT NULL,\n"
    "    relays bigint NOT NULL CHECK (relays >= 0),\n"
    "    PRIMARY KEY (gateway, chain, account, bucket_start)\n"
    ");\n"
    "CREATE INDEX relay_counts_bucket ON relay_counts (bucket_start);\n"
    /* rollups, kept by cc-gateway in the flush transaction; small enough
     * (1/12 and 1/288 of the rows) that the primary key is their only
     * index. A rollup row is updated by every flush of its hour or day:
     * fillfactor leaves room on each page so that these are HOT updates,
     * which touch no index. */
    "CREATE TABLE relay_counts_hourly (LIKE relay_counts INCLUDING CONSTRAINTS)\n"
    "    WITH (fillfactor = 50);\n"
    "ALTER TABLE relay_counts_hourly ADD PRIMARY KEY (gateway, chain, account, bucket_start);\n"
    "CREATE TABLE relay_counts_daily (LIKE relay_counts INCLUDING CONSTRAINTS)\n"
    "    WITH (fillfactor = 50);\n"
    "ALTER TABLE relay_counts_daily ADD PRIMARY KEY (gateway, chain, account, bucket_start);\n"
    "CREATE TABLE non_relay_counts (\n"
    "    gateway text COLLATE \"C\" NOT NULL,\n"
    "    reason text COLLATE \"C\" NOT NULL,\n"
    "    bucket_start timestamptz NOT NULL,\n"
    "    requests bigint NOT NULL CHECK (requests >= 0),\n"
    "    PRIMARY KEY (gateway, reason, bucket_start)\n"
    ") WITH (fillfactor = 70);\n"
    "CREATE INDEX non_relay_counts_bucket ON non_relay_counts (bucket_start);\n"
    /* the flush ledger: a flush's deltas commit with its row, exactly once */
    "CREATE TABLE relay_flushes (\n"
    "    gateway text NOT NULL,\n"
    "    instance text NOT NULL,\n"
    "    flush_seq bigint NOT NULL,\n"
    "    source text NOT NULL,\n"
    "    rows integer NOT NULL,\n"
    "    relays bigint NOT NULL,\n"
    "    non_relays bigint NOT NULL,\n"
    "    flushed_at timestamptz NOT NULL DEFAULT now(),\n"
    "    PRIMARY KEY (gateway, instance, flush_seq)\n"
    ");\n"
    /* HAProxy notice/warning/alert lines; (origin, origin_seq) dedups a
     * retried batch */
    "CREATE TABLE gateway_events (\n"
    "    id bigserial PRIMARY KEY,\n"
    "    gateway text NOT NULL,\n"
    "    source text NOT NULL,\n"
    "    ts timestamptz NOT NULL,\n"
    "    severity smallint NOT NULL,\n"
    "    message text NOT NULL,\n"
    "    origin text NOT NULL,\n"
    "    origin_seq bigint NOT NULL,\n"
    "    UNIQUE (origin, origin_seq)\n"
    ");\n"
    "CREATE INDEX gateway_events_ts ON gateway_events (gateway, ts);\n";

static const struct schema_migration MIGRATIONS[] = {
    {1, "init: counts, rollups, ledger, events, providers, accounts, tokens", MIGRATION_001},
};

_Static_assert(sizeof(MIGRATIONS) / sizeof(MIGRATIONS[0]) == SCHEMA_VERSION,
               "SCHEMA_VERSION must be the number of migrations");

const struct schema_migration *schema_migrations(size_t *n)
{
    *n = sizeof(MIGRATIONS) / sizeof(MIGRATIONS[0]);
    return MIGRATIONS;
}
