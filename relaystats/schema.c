/* The migrations. SQL lives here as C string literals (one line per literal)
 * rather than in .sql files: the binaries need it embedded, and this keeps
 * one source of truth without a code generator in the build. */
#include "schema.h"

#include "schema_version.h"
#include "sys.h"

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

/* relay_counts partitioned by month (UTC), so that keeping five-minute
 * counts forever costs old months nothing: a query or a vacuum of this month
 * reads this month's partition, and an old month can be detached, archived
 * or moved to other storage as one table. The primary key includes
 * bucket_start, as a partitioned table's must, so the flush's upsert is
 * unchanged. relay_counts_default takes any row without a monthly partition
 * (a bucket far in the future or the past): no flush can fail for lack of a
 * partition. relay_counts_add_months(from, to) creates the partitions of the
 * UTC months [from, to) that are missing, moving their rows out of the
 * default partition first; `relaystats migrate` calls it for the next 12
 * months on every run (see migrate.c), this migration for every month that
 * has data. The rows move in this migration's transaction: on a large table
 * it holds the gateways' flushes (they retry) for as long as the copy takes. */
static const char MIGRATION_002[] =
    "ALTER TABLE relay_counts RENAME TO relay_counts_v1;\n"
    "ALTER INDEX relay_counts_pkey RENAME TO relay_counts_v1_pkey;\n"
    "ALTER INDEX relay_counts_bucket RENAME TO relay_counts_v1_bucket;\n"
    "CREATE TABLE relay_counts (\n"
    "    gateway text COLLATE \"C\" NOT NULL,\n"
    "    chain text COLLATE \"C\" NOT NULL,\n"
    "    account text COLLATE \"C\" NOT NULL,\n"
    "    bucket_start timestamptz NOT NULL,\n"
    "    relays bigint NOT NULL CHECK (relays >= 0),\n"
    "    PRIMARY KEY (gateway, chain, account, bucket_start)\n"
    ") PARTITION BY RANGE (bucket_start);\n"
    "CREATE INDEX relay_counts_bucket ON relay_counts (bucket_start);\n"
    "CREATE TABLE relay_counts_default PARTITION OF relay_counts DEFAULT;\n"
    "CREATE FUNCTION relay_counts_add_months(from_ts timestamptz, to_ts timestamptz)\n"
    "RETURNS integer LANGUAGE plpgsql AS $f$\n"
    "DECLARE\n"
    "    m timestamptz := date_trunc('month', from_ts, 'UTC');\n"
    "    nxt timestamptz;\n"
    "    part text;\n"
    "    added integer := 0;\n"
    "BEGIN\n"
    "    WHILE m < to_ts LOOP\n"
    /* month arithmetic in UTC, whatever the session's TimeZone */
    "        nxt := (m AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC';\n"
    "        part := 'relay_counts_' || to_char(m AT TIME ZONE 'UTC', 'YYYY_MM');\n"
    "        IF to_regclass(part) IS NULL THEN\n"
    "            EXECUTE format('CREATE TABLE %I (LIKE relay_counts INCLUDING DEFAULTS"
    " INCLUDING CONSTRAINTS)', part);\n"
    "            EXECUTE format('WITH moved AS (DELETE FROM relay_counts_default"
    " WHERE bucket_start >= %L AND bucket_start < %L RETURNING *)"
    " INSERT INTO %I SELECT * FROM moved', m, nxt, part);\n"
    "            EXECUTE format('ALTER TABLE relay_counts ATTACH PARTITION %I"
    " FOR VALUES FROM (%L) TO (%L)', part, m, nxt);\n"
    "            added := added + 1;\n"
    "        END IF;\n"
    "        m := nxt;\n"
    "    END LOOP;\n"
    "    RETURN added;\n"
    "END\n"
    "$f$;\n"
    "SET LOCAL TIME ZONE 'UTC';\n"
    "SELECT relay_counts_add_months(m, m + interval '1 day')\n"
    "    FROM (SELECT DISTINCT date_trunc('month', bucket_start, 'UTC') AS m\n"
    "          FROM relay_counts_v1) months;\n"
    "INSERT INTO relay_counts SELECT gateway, chain, account, bucket_start, relays\n"
    "    FROM relay_counts_v1;\n"
    "DROP TABLE relay_counts_v1;\n";

/* Daily totals per (gateway, chain), without the account: what a query by
 * chain or gateway over months reads (a year of 1,000 accounts' daily rows
 * folds into a few per chain). A statement trigger with transition tables
 * keeps it from whatever writes relay_counts_daily (the flush's MERGE, a
 * backfill, a correction), in the writer's transaction. */
static const char MIGRATION_003[] =
    "CREATE TABLE relay_counts_daily_chain (\n"
    "    gateway text COLLATE \"C\" NOT NULL,\n"
    "    chain text COLLATE \"C\" NOT NULL,\n"
    "    bucket_start timestamptz NOT NULL,\n"
    "    relays bigint NOT NULL CHECK (relays >= 0),\n"
    "    PRIMARY KEY (gateway, chain, bucket_start)\n"
    ") WITH (fillfactor = 50);\n"
    "INSERT INTO relay_counts_daily_chain\n"
    "    SELECT gateway, chain, bucket_start, sum(relays) FROM relay_counts_daily GROUP BY 1, 2, "
    "3;\n"
    "CREATE FUNCTION relay_counts_daily_chain_apply() RETURNS trigger LANGUAGE plpgsql AS $f$\n"
    "BEGIN\n"
    "    IF TG_OP = 'INSERT' THEN\n"
    "        INSERT INTO relay_counts_daily_chain AS t\n"
    "            SELECT gateway, chain, bucket_start, sum(relays) FROM new_rows GROUP BY 1, 2, 3\n"
    "            ON CONFLICT (gateway, chain, bucket_start)\n"
    "            DO UPDATE SET relays = t.relays + EXCLUDED.relays;\n"
    "    ELSIF TG_OP = 'UPDATE' THEN\n"
    "        INSERT INTO relay_counts_daily_chain AS t\n"
    "            SELECT gateway, chain, bucket_start, sum(relays) FROM (\n"
    "                SELECT gateway, chain, bucket_start, relays FROM new_rows\n"
    "                UNION ALL\n"
    "                SELECT gateway, chain, bucket_start, -relays FROM old_rows) d\n"
    "            GROUP BY 1, 2, 3\n"
    "            ON CONFLICT (gateway, chain, bucket_start)\n"
    "            DO UPDATE SET relays = t.relays + EXCLUDED.relays;\n"
    "    ELSE\n"
    "        UPDATE relay_counts_daily_chain AS t SET relays = t.relays - d.relays\n"
    "            FROM (SELECT gateway, chain, bucket_start, sum(relays) AS relays FROM old_rows\n"
    "                  GROUP BY 1, 2, 3) d\n"
    "            WHERE t.gateway = d.gateway AND t.chain = d.chain\n"
    "              AND t.bucket_start = d.bucket_start;\n"
    "    END IF;\n"
    "    RETURN NULL;\n"
    "END\n"
    "$f$;\n"
    "CREATE TRIGGER relay_counts_daily_chain_ins AFTER INSERT ON relay_counts_daily\n"
    "    REFERENCING NEW TABLE AS new_rows\n"
    "    FOR EACH STATEMENT EXECUTE FUNCTION relay_counts_daily_chain_apply();\n"
    "CREATE TRIGGER relay_counts_daily_chain_upd AFTER UPDATE ON relay_counts_daily\n"
    "    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows\n"
    "    FOR EACH STATEMENT EXECUTE FUNCTION relay_counts_daily_chain_apply();\n"
    "CREATE TRIGGER relay_counts_daily_chain_del AFTER DELETE ON relay_counts_daily\n"
    "    REFERENCING OLD TABLE AS old_rows\n"
    "    FOR EACH STATEMENT EXECUTE FUNCTION relay_counts_daily_chain_apply();\n";

/* Flushes append, folds add. A flush COPYs its relay rows into
 * relay_deltas, an append-only logged table without an index, in the
 * transaction of its ledger row: that commit is all the journal waits for.
 * relay_deltas_fold(gateway) then moves that gateway's deltas into
 * relay_counts and the hourly and daily rollups (and, by the trigger of
 * migration 3, relay_counts_daily_chain) in a transaction of its own: a
 * DELETE ... RETURNING takes the rows it moves, so that each delta is
 * added by exactly one fold (a row can be deleted once), and rows that a
 * flush commits after the DELETE's snapshot stay for the next fold. A fold
 * lock per gateway (not the flush's: a flush never waits for a fold)
 * serialises folds of one gateway, whose MERGEs would otherwise race to
 * insert the same new rollup row.
 *
 * Pending deltas are part of the totals: the relay_totals views add them to
 * relay_counts and its rollups, bucketed like each. A view may hold several
 * rows per key; readers sum. The bucket is epoch seconds (bigint), the
 * cheapest column to COPY. relay_deltas is small at rest (folded after every
 * flush); its dead rows are vacuumed after a fixed count, not a fraction.
 * The fold lock's key is "fold" in ASCII (the flush's is "ccgw"). */
static const char MIGRATION_004[] =
    "CREATE TABLE relay_deltas (\n"
    "    gateway text COLLATE \"C\" NOT NULL,\n"
    "    chain text COLLATE \"C\" NOT NULL,\n"
    "    account text COLLATE \"C\" NOT NULL,\n"
    "    bucket bigint NOT NULL,\n"
    "    relays bigint NOT NULL CHECK (relays >= 0)\n"
    ") WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 20000);\n"
    "CREATE FUNCTION relay_deltas_fold(gw text) RETURNS bigint LANGUAGE plpgsql\n"
    "SET client_min_messages = warning AS $f$\n"
    "DECLARE\n"
    "    n bigint;\n"
    "BEGIN\n"
    "    PERFORM pg_advisory_xact_lock(hashtextextended(gw, 1718578276));\n"
    "    CREATE TEMP TABLE IF NOT EXISTS relay_fold (chain text COLLATE \"C\",\n"
    "        account text COLLATE \"C\", bucket bigint, relays bigint) ON COMMIT DELETE ROWS;\n"
    /* a second fold in the same transaction starts empty too */
    "    DELETE FROM relay_fold;\n"
    "    WITH d AS (DELETE FROM relay_deltas WHERE gateway = gw\n"
    "               RETURNING chain, account, bucket, relays)\n"
    "    INSERT INTO relay_fold SELECT chain, account, bucket, sum(relays) FROM d\n"
    "        GROUP BY chain, account, bucket;\n"
    "    GET DIAGNOSTICS n = ROW_COUNT;\n"
    "    IF n = 0 THEN\n"
    "        RETURN 0;\n"
    "    END IF;\n"
    "    INSERT INTO relay_counts AS t (gateway, chain, account, bucket_start, relays)\n"
    "        SELECT gw, chain, account, to_timestamp(bucket), relays FROM relay_fold\n"
    "        ON CONFLICT (gateway, chain, account, bucket_start)\n"
    "        DO UPDATE SET relays = t.relays + EXCLUDED.relays;\n"
    "    MERGE INTO relay_counts_hourly AS t\n"
    "        USING (SELECT chain, account, to_timestamp(bucket / 3600 * 3600) AS b,\n"
    "               sum(relays) AS r FROM relay_fold GROUP BY 1, 2, 3) AS s\n"
    "        ON t.gateway = gw AND t.chain = s.chain AND t.account = s.account\n"
    "           AND t.bucket_start = s.b\n"
    "        WHEN MATCHED THEN UPDATE SET relays = t.relays + s.r\n"
    "        WHEN NOT MATCHED THEN INSERT (gateway, chain, account, bucket_start, relays)\n"
    "            VALUES (gw, s.chain, s.account, s.b, s.r);\n"
    "    MERGE INTO relay_counts_daily AS t\n"
    "        USING (SELECT chain, account, to_timestamp(bucket / 86400 * 86400) AS b,\n"
    "               sum(relays) AS r FROM relay_fold GROUP BY 1, 2, 3) AS s\n"
    "        ON t.gateway = gw AND t.chain = s.chain AND t.account = s.account\n"
    "           AND t.bucket_start = s.b\n"
    "        WHEN MATCHED THEN UPDATE SET relays = t.relays + s.r\n"
    "        WHEN NOT MATCHED THEN INSERT (gateway, chain, account, bucket_start, relays)\n"
    "            VALUES (gw, s.chain, s.account, s.b, s.r);\n"
    "    RETURN n;\n"
    "END\n"
    "$f$;\n"
    "CREATE VIEW relay_totals AS\n"
    "    SELECT gateway, chain, account, bucket_start, relays FROM relay_counts\n"
    "    UNION ALL\n"
    "    SELECT gateway, chain, account, to_timestamp(bucket), relays FROM relay_deltas;\n"
    "CREATE VIEW relay_totals_hourly AS\n"
    "    SELECT gateway, chain, account, bucket_start, relays FROM relay_counts_hourly\n"
    "    UNION ALL\n"
    "    SELECT gateway, chain, account, to_timestamp(bucket / 3600 * 3600), relays\n"
    "    FROM relay_deltas;\n"
    "CREATE VIEW relay_totals_daily AS\n"
    "    SELECT gateway, chain, account, bucket_start, relays FROM relay_counts_daily\n"
    "    UNION ALL\n"
    "    SELECT gateway, chain, account, to_timestamp(bucket / 86400 * 86400), relays\n"
    "    FROM relay_deltas;\n"
    "CREATE VIEW relay_totals_daily_chain AS\n"
    "    SELECT gateway, chain, bucket_start, relays FROM relay_counts_daily_chain\n"
    "    UNION ALL\n"
    "    SELECT gateway, chain, to_timestamp(bucket / 86400 * 86400), relays FROM relay_deltas;\n";

/* Who owned which (account, chain) when: billing attributes a bucket's relays
 * to the owner whose [valid_from, valid_to) holds its bucket_start (valid_to
 * NULL: still owned), so moving an account to another provider leaves its
 * past where it was. No two rows of a pair overlap (an exclusion constraint
 * over btree_gist, which Debian's postgresql-15 and the postgres:15 images
 * ship), so a pair has at most one open row and one owner at any instant.
 * `relaystats sync` (rssync.c) writes it: a pair it has never seen gets a
 * row from -infinity, a move closes the open row at the next five-minute
 * bucket boundary and opens the new owner's there, a pair that left the
 * config keeps its open row. `accounts` stays the table of each pair's
 * latest owner (its open row), which sync keeps equal to the open rows;
 * they start equal here, every row from -infinity. The provider reference
 * does not cascade: a provider with billed history cannot be dropped. */
static const char MIGRATION_005[] =
    "CREATE EXTENSION IF NOT EXISTS btree_gist;\n"
    "CREATE TABLE account_owners (\n"
    "    account text COLLATE \"C\" NOT NULL,\n"
    "    chain text COLLATE \"C\" NOT NULL,\n"
    "    provider text NOT NULL REFERENCES providers (name),\n"
    "    valid_from timestamptz NOT NULL,\n"
    "    valid_to timestamptz,\n"
    /* open is NULL, never 'infinity': one way to say it */
    "    CONSTRAINT account_owners_range\n"
    "        CHECK (valid_to IS NULL OR (valid_to > valid_from AND isfinite(valid_to))),\n"
    "    CONSTRAINT account_owners_no_overlap EXCLUDE USING gist\n"
    "        (account WITH =, chain WITH =, tstzrange(valid_from, valid_to) WITH &&)\n"
    ");\n"
    "CREATE INDEX account_owners_provider ON account_owners (provider);\n"
    "INSERT INTO account_owners (account, chain, provider, valid_from)\n"
    "    SELECT account, chain, provider, '-infinity' FROM accounts;\n";

static const struct schema_migration MIGRATIONS[] = {
    {1, "init: counts, rollups, ledger, events, providers, accounts, tokens", MIGRATION_001},
    {2, "relay_counts partitioned by month", MIGRATION_002},
    {3, "relay_counts_daily_chain: daily totals per gateway and chain", MIGRATION_003},
    {4, "relay_deltas: flushes append, folds add; relay_totals views", MIGRATION_004},
    {5, "account_owners: who owned which account when", MIGRATION_005},
};

_Static_assert(ARRAY_LEN(MIGRATIONS) == SCHEMA_VERSION,
               "SCHEMA_VERSION must be the number of migrations");

const struct schema_migration *schema_migrations(size_t *n)
{
    *n = ARRAY_LEN(MIGRATIONS);
    return MIGRATIONS;
}
