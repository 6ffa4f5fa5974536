#!/bin/bash
# Delivery to PostgreSQL through cc-gateway fed on stdin (the relay rule is
# the ingest tests' business; here the lines are all relays):
#   - relaystats migrate is idempotent; cc-gateway refuses an unmigrated db
#   - SIGUSR1 flushes: relay_counts holds exactly N by chain and account,
#     and the hourly/daily rollups agree
#   - a COMMIT whose answer is lost (test hook) is retried and applied once
#   - PostgreSQL stopped for more than two flush intervals during traffic,
#     then started: totals exact, each flush once in the ledger
#   - notice/alert lines land in gateway_events (quotes, backslash intact)
#   - SIGTERM right after traffic loses nothing
source "$(dirname "$0")/lib.sh"
it_setup

GW="$CCGW_BIN/cc-gateway"
RS="$CCGW_BIN/relaystats"

# write_config FILE DATA_DIR PG_URL [flush interval secs]
write_config() {
    {
        gw_conf_head gw-it "$2"
        cat <<YAML
      - {id: 894334g9f403, chains: ["0021", "0001"]}
      - {id: a1b2c3d4e5f6, chains: ["0021"]}
      - {id: c0ffee000001, chains: ["0001"]}
postgres:
  url: $3
flush:
  interval_secs: ${4:-300}
  fsync_interval_ms: 200
  retry_max_secs: 1
logs:
  dir: $IT_DIR/logs
YAML
    } >"$1"
}

# lines N [START]: N relay lines of http0, spread over 4 (chain, account)
# pairs and two five-minute buckets, deterministic
lines() {
    python3 - "$1" "${2:-0}" <<'PY'
import sys
n, start = int(sys.argv[1]), int(sys.argv[2])
pairs = [("0021", "894334g9f403"), ("0001", "894334g9f403"), ("0021", "a1b2c3d4e5f6"), ("0001", "c0ffee000001")]
out = sys.stdout
for i in range(start, start + n):
    chain, acct = pairs[i % 4]
    minute = 20 + (i // 4) % 2 * 5
    out.write('<6>127.0.0.1:%d [21/Nov/2026:10:%02d:33.685] fe_http0 be_%s/n%sa 0/0/0/0/0 200 183 - - ---- 1/1/0/0/0 0/0 {%s.%s.chains.example.tech} "POST / HTTP/1.1"\n'
              % (40000 + i % 20000, minute, chain, chain, acct, chain))
PY
}

total() { psql_q "SELECT coalesce(sum(relays), 0) FROM relay_counts WHERE gateway = 'gw-it'"; }

wait_total() { # wait_total N SECS
    local i
    for i in $(seq $(($2 * 10))); do
        [ "$(total)" = "$1" ] && return 0
        sleep 0.1
    done
    return 1
}


# start_gw NAME CONFIG [ENV...]: cc-gateway reading the fifo $IT_DIR/NAME.in
start_gw() {
    local name=$1 cfg=$2; shift 2
    rm -f "$IT_DIR/$name.in"; mkfifo "$IT_DIR/$name.in"
    exec {FEED}<>"$IT_DIR/$name.in" # open first: the reader's open then does not block
    # not `bg`: a background command's stdin is /dev/null unless redirected on it
    env "$@" "$GW" --config "$cfg" --source http0 --listen none <"$IT_DIR/$name.in" \
        >"$IT_DIR/$name.log" 2>&1 &
    IT_PIDS[$name]=$!
}

pg_start
write_config "$IT_DIR/ccgw.yaml" "$IT_DIR/data" "$PG_URL" 2

note "schema: an unmigrated database is refused"
if "$GW" --config "$IT_DIR/ccgw.yaml" --source http0 --listen none </dev/null >"$IT_DIR/refused.log" 2>&1; then
    fail "cc-gateway started against an unmigrated database"
fi
grep -q "schema version 0" "$IT_DIR/refused.log" || { cat "$IT_DIR/refused.log"; fail "no schema message"; }
echo "ok: refused with: $(grep -o 'database schema version 0[^"]*' "$IT_DIR/refused.log" | head -1)"

note "schema: migrate twice, global options after and before the command"
"$RS" migrate --config "$IT_DIR/ccgw.yaml" || fail "relaystats migrate --config F"
"$RS" --config "$IT_DIR/ccgw.yaml" migrate || fail "relaystats --config F migrate"
"$RS" migrate --bogus 2>/dev/null; assert_eq "$?" "2" "unknown option after the command: usage error"
"$RS" migrate extra --config "$IT_DIR/ccgw.yaml" 2>/dev/null; assert_eq "$?" "2" "stray argument: usage error"
"$RS" sync --help | grep -q "global options (before or after COMMAND)" || fail "--help after the command"
assert_eq "$(psql_q "SELECT count(*) || '/' || max(version) FROM schema_migrations")" "5/5" "schema_migrations rows/version"
runuser -u postgres -- "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres ccgw_race
RACE_URL="postgresql://postgres@127.0.0.1:$PG_PORT/ccgw_race"
"$RS" --db "$RACE_URL" migrate >"$IT_DIR/race1.log" 2>&1 & r1=$!
"$RS" --db "$RACE_URL" migrate >"$IT_DIR/race2.log" 2>&1 & r2=$!
wait $r1 || { cat "$IT_DIR/race1.log"; fail "concurrent migrate 1"; }
wait $r2 || { cat "$IT_DIR/race2.log"; fail "concurrent migrate 2"; }
assert_eq "$(psql "$RACE_URL" -XAtqc "SELECT count(*) FROM schema_migrations")" "5" "two concurrent migrates applied once"
psql_q "INSERT INTO schema_migrations (version, name) VALUES (99, 'future')"
if "$GW" --config "$IT_DIR/ccgw.yaml" --source http0 --listen none </dev/null >"$IT_DIR/refused2.log" 2>&1; then
    fail "cc-gateway started against a newer schema"
fi
grep -q "schema version 99 is newer" "$IT_DIR/refused2.log" || { cat "$IT_DIR/refused2.log"; fail "no newer-schema message"; }
echo "ok: newer schema refused"
psql_q "DELETE FROM schema_migrations WHERE version = 99"

note "SIGUSR1 flush, with the first COMMIT's answer lost"
start_gw gw1 "$IT_DIR/ccgw.yaml" CCGW_TEST_LOSE_COMMIT_ACK=1
N=2000
lines $N >&$FEED
sleep 0.5
kill -USR1 "${IT_PIDS[gw1]}"
wait_total $N 20 || fail "relay_counts total $(total), expected $N"
assert_eq "$(total)" "$N" "relay_counts after SIGUSR1 and a lost COMMIT answer"
assert_eq "$(psql_q "SELECT string_agg(chain || ':' || account || '=' || s, ' ' ORDER BY chain, account) FROM (SELECT chain, account, sum(relays) s FROM relay_counts GROUP BY 1, 2) x")" \
    "0001:894334g9f403=500 0001:c0ffee000001=500 0021:894334g9f403=500 0021:a1b2c3d4e5f6=500" "by chain and account"
assert_eq "$(psql_q "SELECT count(*) FROM relay_counts")" "8" "rows (4 pairs x 2 buckets)"
assert_eq "$(psql_q "SELECT sum(relays) FROM relay_counts_hourly")" "$N" "hourly rollup"
assert_eq "$(psql_q "SELECT sum(relays) || '@' || min(bucket_start AT TIME ZONE 'UTC') FROM relay_counts_daily")" "$N@2026-11-21 00:00:00" "daily rollup"
grep -q "test hook" "$IT_DIR/gw1.log" || fail "the lost-answer hook did not fire"
wait_log gw1 "already_applied=true" 10 || fail "the retry was not found already applied"
assert_eq "$(total)" "$N" "relay_counts after the retry"
echo "ok: lost COMMIT answer retried, found in the ledger, applied once"
Q=(--from 2026-11-21T10:00:00Z --to 2026-11-21T11:00:00Z --step 1h --format csv)
A=$("$RS" query "${Q[@]}" --config "$IT_DIR/ccgw.yaml" --log-level error) || fail "query --config after"
B=$("$RS" --config "$IT_DIR/ccgw.yaml" --log-level error query "${Q[@]}") || fail "query --config before"
assert_eq "$A" "$B" "relaystats query: same answer with --config before or after the command"
echo "$A" | grep -q ",$N\$" || fail "query total is not $N: $A"

note "notice/warning/alert lines land in gateway_events"
printf '%s\n' '<1>Server be_0021/n0021a is DOWN, reason: Layer4 connection problem, info: "Connection refused", tab:	, quote: \' >&$FEED
printf '%s\n' '<5>Server be_0021/n0021a is UP, reason: Layer4 check passed.' >&$FEED
for i in $(seq 50); do [ "$(psql_q 'SELECT count(*) FROM gateway_events')" = 2 ] && break; sleep 0.1; done
assert_eq "$(psql_q "SELECT string_agg(severity || ':' || source || ':' || split_part(message, ',', 1), ' | ' ORDER BY severity) FROM gateway_events WHERE gateway = 'gw-it'")" \
    "1:http0:Server be_0021/n0021a is DOWN | 5:http0:Server be_0021/n0021a is UP" "gateway_events"
assert_eq "$(psql_q "SELECT position('\"Connection refused\", tab:' IN message) > 0 AND right(message, 8) = 'quote: \\' FROM gateway_events WHERE severity = 1")" "t" "event text with quotes and a backslash kept"

note "PostgreSQL down for more than two flush intervals during traffic"
pg_stop
for k in 1 2 3 4 5 6; do lines 500 $((N + (k - 1) * 500)) >&$FEED; sleep 1; done
N=$((N + 3000))
grep -q "flush_failed" "$IT_DIR/gw1.log" || fail "no failed flush while PostgreSQL was down"
pg_restart
wait_total $N 30 || fail "after PostgreSQL came back: total $(total), expected $N"
assert_eq "$(total)" "$N" "relay_counts after the outage"
assert_eq "$(psql_q "SELECT sum(relays) FROM relay_flushes")" "$N" "ledger relays"
assert_eq "$(psql_q "SELECT count(*) = count(DISTINCT (instance, flush_seq)) FROM relay_flushes")" "t" "each flush once in the ledger"
note "ledger: $(psql_q "SELECT count(*) || ' flushes, seqs ' || min(flush_seq) || '..' || max(flush_seq) FROM relay_flushes")"

note "SIGTERM right after traffic loses nothing"
lines 1234 $N >&$FEED
N=$((N + 1234))
sleep 0.2
stop_bg gw1
exec {FEED}>&-
assert_eq "$(total)" "$N" "relay_counts after SIGTERM"
assert_eq "$(ls "$IT_DIR/data/http0" | grep -c '^flush\.')" "0" "no unfinished flush left"

note "restart: nothing replayed twice"
start_gw gw2 "$IT_DIR/ccgw.yaml"
sleep 1
stop_bg gw2
exec {FEED}>&-
assert_eq "$(total)" "$N" "relay_counts after a restart with nothing new"

note "cc-gateway replay --write, with --config before and after \"replay\""
lines 100 $N >"$IT_DIR/replay.log"
"$GW" --config "$IT_DIR/ccgw.yaml" replay --source http0 --write "$IT_DIR/replay.log" >/dev/null \
    2>"$IT_DIR/replay1.log" || { cat "$IT_DIR/replay1.log"; fail "cc-gateway --config F replay"; }
"$GW" replay --source http0 --write --config "$IT_DIR/ccgw.yaml" "$IT_DIR/replay.log" >/dev/null \
    2>"$IT_DIR/replay2.log" || { cat "$IT_DIR/replay2.log"; fail "cc-gateway replay ... --config F"; }
assert_eq "$(total)" "$((N + 200))" "relay_counts after two replays of 100 lines"
