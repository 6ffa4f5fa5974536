#!/bin/bash
# Flushes append, folds add (relaystats/schema.c, migration 4):
#   - kill -9 of the worker between a flush's commit and its fold
#     (CCGW_TEST_CRASH_AT=fold): the deltas wait in relay_deltas; relaystats
#     (query at every resolution, export, the gateway list) and the
#     relay_totals views show exact totals meanwhile, relay_counts nothing;
#     the gateway's next flush folds them: the base tables hold exactly
#     what was sent, relay_deltas is empty
#   - a gateway that never flushes again: `relaystats serve` folds its
#     leftovers
#   - concurrent folds of one gateway (with flushes committing meanwhile)
#     add each delta once
source "$(dirname "$0")/lib.sh"
it_setup

GW="$CCGW_BIN/cc-gateway"
RS="$CCGW_BIN/relaystats"
API_PORT=$(free_port)
ADMIN_SECRET=fold-admin-secret
ADMIN_SHA=$(printf %s "$ADMIN_SECRET" | sha256sum | cut -d' ' -f1)

pg_start
{
    gw_conf_head gw-fold "$IT_DIR/data"
    cat <<YAML
      - {id: "aaa", chains: ["0021", "0001"]}
      - {id: "bbb", chains: ["0021"]}
postgres:
  url: $PG_URL
flush:
  interval_secs: 1
  fsync_interval_ms: 100
logs:
  dir: $IT_DIR/logs
relaystats:
  listen: 127.0.0.1:$API_PORT
  admin_token_sha256: $ADMIN_SHA
YAML
} >"$IT_DIR/ccgw.yaml"
export CCGW_CONFIG=$IT_DIR/ccgw.yaml
"$RS" migrate || fail "migrate"
"$RS" sync || fail "sync"

# lines N START: N relay lines over (0021, aaa), (0001, aaa), (0021, bbb),
# in the buckets 10:20 and 10:25 of 2026-11-21
lines() {
    python3 - "$1" "$2" <<'PY'
import sys
n, start = int(sys.argv[1]), int(sys.argv[2])
keys = [("0021", "aaa"), ("0001", "aaa"), ("0021", "bbb")]
out = []
for i in range(start, start + n):
    chain, acct = keys[i % 3]
    minute = (20, 25)[(i // 3) % 2]
    out.append('<6>127.0.0.1:%d [21/Nov/2026:10:%02d:33.685] fe_http0 be_%s/n%sa 0/0/0/0/0 200 183 - - ---- 1/1/0/0/0 0/0 {%s.%s.chains.example.tech} "POST / HTTP/1.1"\n'
               % (40000 + i % 20000, minute, chain, chain, acct, chain))
sys.stdout.write("".join(out))
PY
}

base() { psql_q "SELECT coalesce(sum(relays), 0) FROM $1"; }
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
q() { "$RS" query --format json --from 2026-11-21 --to 2026-11-22 "$@" | jget 'd["total"]'; }

# every reader of the counts: the views, relaystats query at each table
# choice, the billing export, the API's gateway list
readers_show() {
    local n=$1 when=$2
    for v in relay_totals relay_totals_hourly relay_totals_daily relay_totals_daily_chain; do
        assert_eq "$(base $v)" "$n" "$v ($when)"
    done
    assert_eq "$(q --step 5m)" "$n" "query 5m ($when)"
    assert_eq "$(q --step 1h)" "$n" "query 1h ($when)"
    assert_eq "$(q --step 1d)" "$n" "query 1d, per-chain daily ($when)"
    assert_eq "$(q --step 1d --by account)" "$n" "query 1d by account ($when)"
    assert_eq "$(q --step 1d --provider acme)" "$n" "query 1d for the provider ($when)"
    assert_eq "$("$RS" export --provider acme --from 2026-11-21 --to 2026-11-22 --format json | jget 'd["total"]')" \
        "$n" "export ($when)"
    assert_eq "$("$RS" export --provider acme --from 2026-11-21T10:00:00Z --to 2026-11-21T10:25:00Z --format json | jget 'd["total"]')" \
        "$(( n - n / 2 ))" "export of the 10:20 bucket, five-minute table ($when)"
}

start_gw() {
    local name=$1; shift
    rm -f "$IT_DIR/$name.in"; mkfifo "$IT_DIR/$name.in"
    exec {FEED}<>"$IT_DIR/$name.in"
    env "$@" "$GW" --config "$IT_DIR/ccgw.yaml" --source http0 --listen none <"$IT_DIR/$name.in" \
        >"$IT_DIR/$name.log" 2>&1 &
    IT_PIDS[$name]=$!
}

note "kill -9 of the worker after its flush committed, before its fold"
SENT=3000
start_gw crash CCGW_TEST_CRASH_AT=fold
lines $SENT 0 >&$FEED
wait_log crash "CCGW_TEST_CRASH_AT=fold" 20 || fail "the crash hook did not fire"
wait_log crash "restarts=1" 10 || fail "the worker was not restarted"
assert_eq "$(psql_q "SELECT sum(relays) FROM relay_flushes")" "$SENT" "ledger: the flush committed"
assert_eq "$(base relay_deltas)" "$SENT" "relay_deltas: the flush's rows wait for a fold"
assert_eq "$(base relay_counts)" 0 "relay_counts: nothing folded"
readers_show $SENT "deltas pending"

note "the gateway's next flush folds them"
lines 600 $SENT >&$FEED
SENT=$((SENT + 600))
for _ in $(seq 100); do [ "$(base relay_counts)" = "$SENT" ] && break; sleep 0.1; done
for t in relay_counts relay_counts_hourly relay_counts_daily relay_counts_daily_chain; do
    assert_eq "$(base $t)" "$SENT" "$t after the next fold"
done
assert_eq "$(psql_q "SELECT count(*) FROM relay_deltas")" 0 "relay_deltas empty after the next fold"
readers_show $SENT "folded"
stop_bg crash; exec {FEED}>&-
assert_eq "$(base relay_counts)" "$SENT" "relay_counts after SIGTERM"
assert_eq "$(psql_q "SELECT count(*) = count(DISTINCT (instance, flush_seq)) FROM relay_flushes")" t "ledger rows unique"

note "a gateway that never flushes again: relaystats serve folds its leftovers"
psql_q "INSERT INTO relay_deltas SELECT 'gw-gone', '0021', 'aaa',
    extract(epoch FROM timestamptz '2026-11-21T10:20Z')::bigint, 1 FROM generate_series(1, 50)"
gateways() {
    curl -s -H "Authorization: Bearer $ADMIN_SECRET" "http://127.0.0.1:$API_PORT/api/v1/gateways" | jget 'd["gateways"]'
}
bg serve0 "$RS" serve --fold-every 0
wait_http "http://127.0.0.1:$API_PORT/health" 20 || fail "relaystats serve"
assert_eq "$(gateways)" "['gw-fold', 'gw-gone']" "API gateway list with gw-gone's deltas pending"
stop_bg serve0
bg serve "$RS" serve --fold-every 1
wait_http "http://127.0.0.1:$API_PORT/health" 20 || fail "relaystats serve"
for _ in $(seq 50); do [ "$(psql_q "SELECT count(*) FROM relay_deltas")" = 0 ] && break; sleep 0.1; done
assert_eq "$(psql_q "SELECT count(*) FROM relay_deltas")" 0 "relay_deltas folded by relaystats serve"
assert_eq "$(psql_q "SELECT relays FROM relay_counts WHERE gateway = 'gw-gone'")" 50 "gw-gone's leftovers in relay_counts"
assert_eq "$(psql_q "SELECT relays FROM relay_counts_daily_chain WHERE gateway = 'gw-gone'")" 50 "and in the daily-chain rollup"
assert_eq "$(gateways)" "['gw-fold', 'gw-gone']" "API gateway list after the fold"
stop_bg serve

note "concurrent folds of one gateway, flushes committing meanwhile: each delta once"
delta_sql() { # delta_sql N: one flush of N relays of gw-c in 7 keys
    echo "INSERT INTO relay_deltas SELECT 'gw-c', '0021', 'k' || (i % 7),
        extract(epoch FROM timestamptz '2026-11-21T10:20Z')::bigint, 1 FROM generate_series(1, $1) i"
}
# a fold holding its transaction open while a flush commits: the flush's
# rows were not in the fold's DELETE snapshot, a second fold waits for the
# first (fold lock) and takes only those
psql_q "$(delta_sql 100)"
psql "$PG_URL" -XAtq -v ON_ERROR_STOP=1 >"$IT_DIR/fold_a.out" 2>&1 <<SQL &
BEGIN;
SELECT relay_deltas_fold('gw-c');
SELECT pg_sleep(1.5);
COMMIT;
SQL
A=$!
sleep 0.5
psql_q "$(delta_sql 30)"
B_OUT=$(psql_q "SELECT relay_deltas_fold('gw-c')") || fail "second fold"
wait $A || fail "first fold"
assert_eq "$(head -n 1 "$IT_DIR/fold_a.out")" 7 "the first fold took the 7 keys committed before it"
assert_eq "$B_OUT" 7 "the second fold took the 7 keys of the flush committed after the first's snapshot"
assert_eq "$(base "relay_counts WHERE gateway = 'gw-c'")" 130 "gw-c folded once"
# four loops of flush + fold on one gateway for a few seconds
for w in 1 2 3 4; do
    ( for k in $(seq 25); do
          psql_q "$(delta_sql 10)" && psql_q "SELECT relay_deltas_fold('gw-c')" >/dev/null || exit 1
      done ) &
    LOOPS[$w]=$!
done
for w in 1 2 3 4; do wait "${LOOPS[$w]}" || fail "loop $w"; done
"$RS" fold || fail "last fold"
assert_eq "$(base "relay_counts WHERE gateway = 'gw-c'")" 1130 "gw-c after 4 x 25 concurrent flush + fold rounds"
assert_eq "$(base "relay_counts_hourly WHERE gateway = 'gw-c'")" 1130 "gw-c hourly"
assert_eq "$(base "relay_counts_daily_chain WHERE gateway = 'gw-c'")" 1130 "gw-c daily-chain"
assert_eq "$(psql_q "SELECT count(*) FROM relay_deltas")" 0 "relay_deltas empty"
