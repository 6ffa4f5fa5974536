#!/bin/bash
# Redis real-time view: counts reach Redis within a second (HINCRBY per
# chain:account and per chain, with a TTL); Redis stopped during traffic
# does not disturb counting or PostgreSQL; restarted, it catches up.
source "$(dirname "$0")/lib.sh"
it_setup

GW="$CCGW_BIN/cc-gateway"
pg_start
redis_start
{
    gw_conf_head gw-rt "$IT_DIR/data"
    cat <<YAML
      - {id: 894334g9f403, chains: ["0021", "0001"]}
postgres:
  url: $PG_URL
redis:
  host: 127.0.0.1
  port: $REDIS_PORT
  ttl_secs: 600
  key_prefix: it
flush:
  interval_secs: 300
  redis_interval_ms: 200
logs:
  dir: $IT_DIR/logs
YAML
} >"$IT_DIR/ccgw.yaml"
"$CCGW_BIN/relaystats" --config "$IT_DIR/ccgw.yaml" migrate || fail "migrate"

lines() { # lines N: alternating chains, one account
    python3 - "$1" <<'PY'
import sys
for i in range(int(sys.argv[1])):
    c = ("0021", "0001")[i % 2]
    sys.stdout.write('<6>127.0.0.1:4%04d [21/Nov/2026:10:22:33.685] fe_http0 be_%s/n%sa 0/0/0/0/0 200 183 - - ---- 1/1/0/0/0 0/0 {894334g9f403.%s.chains.example.tech} "POST / HTTP/1.1"\n' % (i % 10000, c, c, c))
PY
}

# redis_sum KIND: sum of every field of it:KIND:gw-rt:*
redis_sum() {
    local k s=0 v
    for k in $(redis-cli -p "$REDIS_PORT" --scan --pattern "it:$1:gw-rt:*"); do
        for v in $(redis-cli -p "$REDIS_PORT" hvals "$k"); do s=$((s + v)); done
    done
    echo $s
}

wait_redis() { # wait_redis N SECS
    local i
    for i in $(seq $(($2 * 10))); do
        [ "$(redis_sum relays)" = "$1" ] && return 0
        sleep 0.1
    done
    return 1
}

rm -f "$IT_DIR/gw.in"; mkfifo "$IT_DIR/gw.in"
exec {FEED}<>"$IT_DIR/gw.in"
"$GW" --config "$IT_DIR/ccgw.yaml" --source http0 --listen none <"$IT_DIR/gw.in" >"$IT_DIR/gw.log" 2>&1 &
IT_PIDS[gw]=$!

note "counts reach Redis"
lines 1000 >&$FEED
wait_redis 1000 5 || fail "Redis has $(redis_sum relays), expected 1000"
assert_eq "$(redis_sum relays)" "1000" "Redis relays"
assert_eq "$(redis_sum chain)" "1000" "Redis per-chain totals"
KEY=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'it:relays:gw-rt:*' | head -1)
assert_eq "$(redis-cli -p "$REDIS_PORT" hget "$KEY" 0021:894334g9f403)" "500" "field chain:account"
TTL=$(redis-cli -p "$REDIS_PORT" ttl "$KEY")
[ "$TTL" -gt 0 ] && [ "$TTL" -le 600 ] || fail "TTL of $KEY is $TTL"
echo "ok: $KEY has TTL $TTL"

note "Redis stopped during traffic (its data saved), counting goes on"
redis-cli -p "$REDIS_PORT" shutdown save >/dev/null 2>&1
wait "${IT_PIDS[redis]}" 2>/dev/null
unset "IT_PIDS[redis]"
for k in 1 2 3; do lines 1000 >&$FEED; sleep 0.5; done
kill -USR1 "${IT_PIDS[gw]}"
for i in $(seq 100); do
    [ "$(psql_q 'SELECT coalesce(sum(relays), 0) FROM relay_counts')" = 4000 ] && break
    sleep 0.1
done
assert_eq "$(psql_q 'SELECT sum(relays) FROM relay_counts')" "4000" "PostgreSQL while Redis is down"
grep -q "redis_down\|redis_publish_failed" "$IT_DIR/gw.log" || fail "Redis outage not logged"

note "Redis back: it catches up"
redis_start
lines 500 >&$FEED
wait_redis 4500 15 || fail "Redis has $(redis_sum relays) after the restart, expected 4500"
assert_eq "$(redis_sum relays)" "4500" "Redis relays after catching up"
assert_eq "$(redis_sum chain)" "4500" "Redis per-chain totals after catching up"
stop_bg gw
assert_eq "$(psql_q 'SELECT sum(relays) FROM relay_counts')" "4500" "PostgreSQL totals unaffected"
