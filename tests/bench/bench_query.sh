#!/bin/bash
# relaystats query benchmark: 90 days of five-minute rows for 100
# chain/account series (2,592,000 rows in relay_counts, with their hourly and
# daily rollups), then "daily totals per chain over the whole range" read
# from the daily rollup (what `--step 1d` chooses) and, for comparison, the
# same query folded from the raw table (`--source raw`). Times are wall-clock
# medians of whole `relaystats query` runs (process start, connect, query,
# JSON output). Target: < 100 ms from the rollup.
source "$(dirname "$0")/../integration/lib.sh"
it_setup
RS=$CCGW_BIN/relaystats
RUNS=${BENCH_RUNS:-7}

touch "$IT_DIR/postgres.log" && chown postgres: "$IT_DIR/postgres.log"
pg_start
"$RS" --db "$PG_URL" migrate >/dev/null 2>&1 || fail "migrate"

# Bulk load: the rollups are computed here with one GROUP BY each, which is
# what cc-gateway's incremental flush upserts add up to.
note "loading 90 days x 288 buckets x 100 series"
t0=$(date +%s)
psql_q "INSERT INTO relay_counts (gateway, chain, account, bucket_start, relays)
        SELECT 'gw1', lpad(c::text, 4, '0'), 'acct' || a, b,
               ((extract(epoch FROM b)::bigint / 300) * (c + 3) + a * 7) % 500
        FROM generate_series(1, 10) c, generate_series(1, 10) a,
             generate_series('2026-01-01T00:00Z'::timestamptz, '2026-03-31T23:55Z', '5 minutes') b"
psql_q "INSERT INTO relay_counts_hourly SELECT gateway, chain, account,
          date_trunc('hour', bucket_start, 'UTC'), sum(relays) FROM relay_counts GROUP BY 1, 2, 3, 4"
psql_q "INSERT INTO relay_counts_daily SELECT gateway, chain, account,
          date_trunc('day', bucket_start, 'UTC'), sum(relays) FROM relay_counts GROUP BY 1, 2, 3, 4"
for t in relay_counts relay_counts_hourly relay_counts_daily; do psql_q "VACUUM ANALYZE $t"; done
rows=$(psql_q "SELECT count(*) FROM relay_counts")
note "loaded $rows rows in $(( $(date +%s) - t0 )) s"
[ "$rows" -eq 2592000 ] || fail "expected 2592000 rows, got $rows"

ARGS=(--db "$PG_URL" query --from 2026-01-01 --to 2026-04-01 --step 1d --by chain --format json)
daily_total=$("$RS" "${ARGS[@]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
raw_total=$("$RS" "${ARGS[@]}" --source raw | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
assert_eq "$daily_total" "$raw_total" "rollup and raw totals agree"

# median_ms CMD...: median wall time of $RUNS runs, in milliseconds.
median_ms() {
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
daily_ms=$(median_ms "$RS" "${ARGS[@]}")
raw_ms=$(median_ms "$RS" "${ARGS[@]}" --source raw)
note "daily rollup: $daily_ms ms, raw table: $raw_ms ms (median of $RUNS)"
python3 - "$daily_ms" "$raw_ms" "$rows" <<'PY'
import json, sys
d, r, rows = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
cmd = "relaystats query --from 2026-01-01 --to 2026-04-01 --step 1d --by chain --format json"
print(json.dumps({"bench": "query_daily_per_chain_90d", "metric": "ms (median, whole CLI run)",
                  "value": d, "peer": "same query on raw relay_counts (%d rows)" % rows,
                  "peer_value": r, "ratio": round(r / d, 1), "target": "< 100 ms",
                  "met": d < 100, "command": cmd}))
PY
awk -v d="$daily_ms" 'BEGIN { exit !(d < 100) }' || fail "daily query took $daily_ms ms (target < 100 ms)"
