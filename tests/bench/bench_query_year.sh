#!/bin/bash
# relaystats query over a year: daily totals per chain for 1 year x 1,000
# series from the rollups (`--step 1d --by chain` reads the per-chain daily
# rollup relay_counts_daily_chain of migration 003), against the same
# query folded from the raw five-minute table (`--source raw`, monthly
# partitions of relay_counts since migration 002).
#
# 1,000 series (gateway, chain, account) over 2026 are 105 million raw rows,
# more than this benchmark can load on a 2-core machine in its time limit. So
# the daily rollup holds all 1,000 series (365,000 rows), and the raw table
# holds 50 of them (gateway gw-raw: 5 chains x 10 accounts, 5,256,000 rows,
# with their rollup rows made from them). Measured: the 1,000-series query
# from the rollup (target < 100 ms), and the 50-series query from the rollup
# and from the raw table (their totals must agree). The raw figure for 1,000
# series is an estimate, the 50-series time x 20 (the raw query reads every
# row of the range, so its time grows with the rows), and says so. Times
# are medians of whole `relaystats query` runs (start, connect, query, JSON).
source "$(dirname "$0")/../integration/lib.sh"
it_setup
RS=$CCGW_BIN/relaystats
RUNS=${BENCH_RUNS:-5}

pg_start
"$RS" --db "$PG_URL" migrate >/dev/null 2>&1 || fail "migrate"
# monthly partitions for the whole of 2026 (migrate adds them from now on)
psql_q "SELECT relay_counts_add_months('2026-01-01 00:00+00', '2027-01-01 00:00+00')" >/dev/null

note "loading 2026: 50 series x 105,120 five-minute buckets into relay_counts"
t0=$(date +%s)
psql_q "INSERT INTO relay_counts (gateway, chain, account, bucket_start, relays)
        SELECT 'gw-raw', lpad(c::text, 4, '0'), 'acct' || a, b,
               ((extract(epoch FROM b)::bigint / 300) * (c + 3) + a * 7) % 500
        FROM generate_series(1, 5) c, generate_series(1, 10) a,
             generate_series('2026-01-01T00:00Z'::timestamptz, '2026-12-31T23:55Z', '5 minutes') b"
psql_q "INSERT INTO relay_counts_daily SELECT gateway, chain, account,
          date_trunc('day', bucket_start, 'UTC'), sum(relays) FROM relay_counts GROUP BY 1, 2, 3, 4"
note "loading the daily rollup of the other 950 series (19 gateways x 5 chains x 10 accounts)"
psql_q "INSERT INTO relay_counts_daily (gateway, chain, account, bucket_start, relays)
        SELECT 'gw-' || lpad(g::text, 2, '0'), lpad(c::text, 4, '0'), 'acct' || a, d,
               (extract(epoch FROM d)::bigint / 86400 * (c + 3) + a * 7 + g) % 100000
        FROM generate_series(1, 19) g, generate_series(1, 5) c, generate_series(1, 10) a,
             generate_series('2026-01-01T00:00Z'::timestamptz, '2026-12-31T00:00Z', '1 day') d"
for t in relay_counts relay_counts_daily relay_counts_daily_chain; do psql_q "VACUUM ANALYZE $t"; done
raw_rows=$(psql_q "SELECT count(*) FROM relay_counts")
daily_rows=$(psql_q "SELECT count(*) FROM relay_counts_daily")
series=$(psql_q "SELECT count(*) FROM (SELECT DISTINCT gateway, chain, account FROM relay_counts_daily) s")
note "loaded $raw_rows raw rows, $daily_rows daily rows ($series series) in $(( $(date +%s) - t0 )) s"
assert_eq "$raw_rows" 5256000 "raw rows (50 series x 105,120 buckets)"
assert_eq "$daily_rows" 365000 "daily rollup rows (1,000 series x 365 days)"
assert_eq "$(psql_q "SELECT count(*) FROM pg_inherits WHERE inhparent = 'relay_counts'::regclass AND inhrelid::regclass::text LIKE 'relay_counts_2026_%'")" \
    12 "monthly partitions of 2026"

Q=(--db "$PG_URL" query --from 2026-01-01 --to 2027-01-01 --step 1d --by chain --format json)
total() { "$RS" "${Q[@]}" "$@" | jq -er .total; }
all_total=$(total) || fail "query"
[ "$all_total" -gt 0 ] || fail "the 1,000-series query found nothing"
assert_eq "$(total --gateway gw-raw --source raw)" "$(total --gateway gw-raw)" "gw-raw totals: raw table vs daily rollup"
assert_eq "$("$RS" "${Q[@]}" | jq '.groups | length')" 5 "groups (chains) in the answer"
table=$("$RS" "${Q[@]}" | jq -r .table)
chain_rows=$(psql_q "SELECT count(*) FROM relay_counts_daily_chain")
note "the query reads $table ($chain_rows rows: daily totals per gateway and chain, kept by a trigger on relay_counts_daily)"

median_ms() { # CMD...: median wall time of $RUNS runs, ms
    python3 - "$RUNS" "$@" <<'PY'
import statistics, subprocess, sys, time
runs, cmd = int(sys.argv[1]), sys.argv[2:]
times = []
for _ in range(runs):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    times.append((time.perf_counter() - t) * 1000)
print(f"{statistics.median(times):.1f}")
PY
}
all_ms=$(median_ms "$RS" "${Q[@]}")
d50_ms=$(median_ms "$RS" "${Q[@]}" --gateway gw-raw)
r50_ms=$(median_ms "$RS" "${Q[@]}" --gateway gw-raw --source raw)
note "daily rollup, 1,000 series: $all_ms ms; 50 series: rollup $d50_ms ms, raw table $r50_ms ms (median of $RUNS)"
python3 - "$all_ms" "$d50_ms" "$r50_ms" "$raw_rows" "$table" "$chain_rows" <<'PY'
import json, sys
a, d50, r50, rows = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
table, chain_rows = sys.argv[5], int(sys.argv[6])
cmd = "relaystats query --from 2026-01-01 --to 2027-01-01 --step 1d --by chain --format json"
est = r50 * 20
print(json.dumps({"bench": "query_daily_per_chain_1y_1000_series", "metric": "ms (median, whole CLI run)",
                  "value": a, "peer": "same query on raw relay_counts, estimated: 50 series measured x 20",
                  "peer_value": round(est, 1), "ratio": round(est / a, 1), "target": "< 100 ms",
                  "met": a < 100, "raw_50_series_ms": r50, "raw_50_series_rows": rows,
                  "rollup_50_series_ms": d50, "rollup_table": table, "rollup_rows": chain_rows,
                  "command": cmd}))
print(json.dumps({"bench": "query_daily_per_chain_1y_50_series", "metric": "ms (median, whole CLI run)",
                  "value": d50, "peer": "same query on raw relay_counts (%d rows, 12 partitions)" % rows,
                  "peer_value": r50, "ratio": round(r50 / d50, 1), "target": "report", "met": None,
                  "command": cmd + " --gateway gw-raw"}))
PY
awk -v d="$all_ms" 'BEGIN { exit !(d < 100) }' || fail "daily query over 1,000 series took $all_ms ms (target < 100 ms)"
