#!/bin/bash
# Migration 002 (relay_counts partitioned by month) runs forward on a
# populated database with every row and total unchanged.
#
# A scratch PostgreSQL is migrated to version 1 only (relaystats migrate
# --to-version 1) and filled: 3 gateways x 4 chains x 25 accounts, one bucket
# every 6 hours for 14 months (2025-10 to 2026-11), a day of five-minute
# buckets, and two stray rows (2019 and 2031), with the rollups made from
# them. Then `relaystats migrate`: version 2, relay_counts is partitioned with
# one partition per month that has data and up to 12 months ahead, the rows
# (count, sum, per month, an md5 over every row in key order) and the daily
# series per gateway and chain are the same as before (after: read through
# the relay_totals view of migration 004, as relaystats query does, whose
# total and groups match); a second run
# changes nothing. A row for a month without a partition lands in
# relay_counts_default, and relay_counts_add_months moves it into its new
# monthly partition.
source "$(dirname "$0")/lib.sh"
it_setup
export PGTZ=UTC
pg_start
RS=("$CCGW_BIN/relaystats" --db "$PG_URL")

"${RS[@]}" migrate --to-version 1 >"$IT_DIR/migrate1.log" 2>&1 || { cat "$IT_DIR/migrate1.log"; fail "migrate --to-version 1"; }
assert_eq "$(psql_q "SELECT max(version) FROM schema_migrations")" 1 "schema version after --to-version 1"
assert_eq "$(psql_q "SELECT relkind FROM pg_class WHERE relname = 'relay_counts'")" r "relay_counts is a plain table at version 1"

psql_q "
INSERT INTO relay_counts (gateway, chain, account, bucket_start, relays)
SELECT 'gw-' || g, lpad(c::text, 4, '0'), 'acct' || a, ts,
       1 + abs(hashtext(g || '/' || c || '/' || a || '/' || ts::text)) % 1000
FROM generate_series(1, 3) g, generate_series(1, 4) c, generate_series(1, 25) a,
     generate_series('2025-10-01 00:00+00'::timestamptz, '2026-11-30 18:00+00', interval '6 hours') ts;
INSERT INTO relay_counts (gateway, chain, account, bucket_start, relays)
SELECT 'gw-1', '0001', 'acct1', ts, 7
FROM generate_series('2026-11-15 00:05+00'::timestamptz, '2026-11-15 23:55+00', interval '5 minutes') ts
WHERE extract(minute FROM ts) <> 0;
INSERT INTO relay_counts VALUES ('gw-2', '0021', 'old', '2019-03-31 23:55+00', 11),
                                ('gw-3', '0021', 'future', '2031-01-01 00:00+00', 13);
INSERT INTO relay_counts_hourly SELECT gateway, chain, account, date_trunc('hour', bucket_start, 'UTC'), sum(relays)
    FROM relay_counts GROUP BY 1, 2, 3, 4;
INSERT INTO relay_counts_daily SELECT gateway, chain, account, date_trunc('day', bucket_start, 'UTC'), sum(relays)
    FROM relay_counts GROUP BY 1, 2, 3, 4;" >/dev/null

SNAP="SELECT count(*) || ' rows, ' || sum(relays) || ' relays, md5 '
        || md5(string_agg(gateway || '|' || chain || '|' || account || '|' || extract(epoch FROM bucket_start)
                          || '|' || relays, ',' ORDER BY gateway, chain, account, bucket_start))
      FROM relay_counts"
MONTHS="SELECT string_agg(m || '=' || n || '/' || r, ' ' ORDER BY m) FROM (
          SELECT to_char(bucket_start AT TIME ZONE 'UTC', 'YYYY-MM') m, count(*) n, sum(relays) r
          FROM relay_counts GROUP BY 1) x"
ROLLUPS="SELECT (SELECT sum(relays) FROM relay_counts_hourly) || '/' || (SELECT sum(relays) FROM relay_counts_daily)"
CHAIN_ROLLUP="SELECT (SELECT sum(relays) FROM relay_counts_daily_chain) || '/' || (SELECT count(*) FROM relay_counts_daily_chain)"
before=$(psql_q "$SNAP")
months_before=$(psql_q "$MONTHS")
rollups_before=$(psql_q "$ROLLUPS")
nmonths=$(psql_q "SELECT count(DISTINCT date_trunc('month', bucket_start, 'UTC')) FROM relay_counts")
note "version 1: $before in $nmonths months"
# the daily series per (gateway, chain) over 14 months of table $1
series() {
    psql_q "SELECT count(*) || '/' || sum(s) || '/' || md5(string_agg(gateway || ' ' || chain || ' ' || d || ' ' || s, ','
            ORDER BY gateway, chain, d)) FROM (SELECT gateway, chain, date_trunc('day', bucket_start, 'UTC') AS d,
            sum(relays) AS s FROM $1 WHERE bucket_start >= '2025-10-01 00:00+00' AND bucket_start < '2026-12-01 00:00+00'
            GROUP BY 1, 2, 3) x"
}
series_before=$(series relay_counts)

start=$(date +%s.%N)
"${RS[@]}" migrate >"$IT_DIR/migrate2.log" 2>&1 || { cat "$IT_DIR/migrate2.log"; fail "migrate"; }
note "migration 002 of $(psql_q "SELECT count(*) FROM relay_counts") rows: $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }') s"

assert_eq "$(psql_q "SELECT max(version) FROM schema_migrations")" 5 "schema version after migrate"
assert_eq "$(psql_q "SELECT relkind FROM pg_class WHERE relname = 'relay_counts'")" p "relay_counts is partitioned"
assert_eq "$(psql_q "$SNAP")" "$before" "rows, relays and md5 of every row"
assert_eq "$(psql_q "$MONTHS")" "$months_before" "rows and relays per month"
assert_eq "$(psql_q "$ROLLUPS")" "$rollups_before" "hourly/daily rollup totals"
assert_eq "$(psql_q "$CHAIN_ROLLUP")" "${rollups_before#*/}/$(psql_q "SELECT count(*) FROM (SELECT DISTINCT gateway, chain, bucket_start FROM relay_counts_daily) d")" \
    "relay_counts_daily_chain (migration 003) total/rows from relay_counts_daily"
assert_eq "$(psql_q "SELECT count(*) FROM relay_counts_default")" 0 "rows in the default partition"
# one partition per month with data, and from this month to the one 12
# months from now
want=$(psql_q "SELECT count(*) FROM (SELECT DISTINCT date_trunc('month', bucket_start, 'UTC') FROM relay_counts
               UNION SELECT date_trunc('month', now() + n * interval '1 month', 'UTC') FROM generate_series(0, 12) n) m")
assert_eq "$(psql_q "SELECT count(*) FROM pg_inherits WHERE inhparent = 'relay_counts'::regclass") " "$((want + 1)) " \
    "partitions (months with data or ahead, and the default)"
assert_eq "$(psql_q "SELECT count(*) FROM relay_counts_2026_11")" \
    "$(psql_q "SELECT count(*) FROM relay_counts WHERE bucket_start >= '2026-11-01 00:00+00' AND bucket_start < '2026-12-01 00:00+00'")" \
    "rows of November 2026 in relay_counts_2026_11"
assert_eq "$(psql_q "SELECT count(*) FROM relay_counts_2019_03")" 1 "the 2019 row in relay_counts_2019_03 (UTC month)"
assert_eq "$(psql_q "SELECT count(*) FROM pg_indexes WHERE tablename = 'relay_counts_2026_11'")" 2 \
    "indexes of a partition (primary key, bucket_start)"
assert_eq "$(series relay_totals)" "$series_before" "daily series per gateway and chain over 14 months (days/relays/md5)"
"${RS[@]}" query --from 2025-10-01 --to 2026-12-01 --step 1d --by gateway,chain --source raw --format json \
    >"$IT_DIR/query-after.json" || fail "relaystats query after"
assert_eq "$(jq -r '.total' "$IT_DIR/query-after.json")" "$(cut -d/ -f2 <<<"$series_before")" "relaystats query total"
assert_eq "$(jq -r '[.groups[] | .series[] | select(.[1] > 0)] | length' "$IT_DIR/query-after.json")" \
    "$(cut -d/ -f1 <<<"$series_before")" "relaystats query: days with relays per gateway and chain"
# a query for one month reads one partition
plan=$(psql_q "EXPLAIN SELECT sum(relays) FROM relay_counts WHERE bucket_start >= '2026-11-01 00:00+00' AND bucket_start < '2026-12-01 00:00+00'")
assert_eq "$(grep -oE 'relay_counts_([0-9]{4}_[0-9]{2}|default)\b' <<<"$plan" | sort -u | tr '\n' ' ')" "relay_counts_2026_11 " \
    "partitions a one-month query reads"

# migration 004: relay_deltas is empty, the relay_totals views equal the
# tables they extend, and a one-month query through a view still reads one
# partition
assert_eq "$(psql_q "SELECT count(*) FROM relay_deltas")" 0 "relay_deltas empty after the migration"
assert_eq "$(psql_q "SELECT (SELECT sum(relays) FROM relay_totals) || '/' || (SELECT sum(relays) FROM relay_totals_hourly)
                     || '/' || (SELECT sum(relays) FROM relay_totals_daily) || '/' || (SELECT sum(relays) FROM relay_totals_daily_chain)")" \
    "$(psql_q "SELECT (SELECT sum(relays) FROM relay_counts) || '/' || (SELECT sum(relays) FROM relay_counts_hourly)
                     || '/' || (SELECT sum(relays) FROM relay_counts_daily) || '/' || (SELECT sum(relays) FROM relay_counts_daily_chain)")" \
    "relay_totals views equal their tables"
plan=$(psql_q "EXPLAIN SELECT sum(relays) FROM relay_totals WHERE bucket_start >= '2026-11-01 00:00+00' AND bucket_start < '2026-12-01 00:00+00'")
assert_eq "$(grep -oE 'relay_counts_([0-9]{4}_[0-9]{2}|default)\b' <<<"$plan" | sort -u | tr '\n' ' ')" "relay_counts_2026_11 " \
    "partitions a one-month query through relay_totals reads"

"${RS[@]}" migrate >"$IT_DIR/migrate3.log" 2>&1 || { cat "$IT_DIR/migrate3.log"; fail "second migrate"; }
assert_eq "$(psql_q "$SNAP")" "$before" "rows after a second migrate"

# a bucket without a partition goes to the default, and moves out of it
psql_q "INSERT INTO relay_counts VALUES ('gw-1', '0001', 'acct1', '2033-03-31 23:55+00', 5)" >/dev/null
assert_eq "$(psql_q "SELECT count(*) FROM relay_counts_default")" 1 "a 2033 row lands in relay_counts_default"
assert_eq "$(psql_q "SET TIME ZONE 'Europe/Berlin'; SELECT relay_counts_add_months('2033-03-10 00:00+00', '2033-03-11 00:00+00')")" \
    1 "partitions added for March 2033 (session in Europe/Berlin, DST starts that month)"
assert_eq "$(psql_q "SELECT count(*) FROM relay_counts_default")" 0 "rows left in relay_counts_default"
assert_eq "$(psql_q "SELECT count(*) || '/' || sum(relays) FROM relay_counts_2033_03")" 1/5 "the row in relay_counts_2033_03"
assert_eq "$(psql_q "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = 'relay_counts_2033_03'")" \
    "FOR VALUES FROM ('2033-03-01 00:00:00+00') TO ('2033-04-01 00:00:00+00')" "bounds of relay_counts_2033_03 (UTC)"
