#!/bin/bash
# The heaviest load wrk can push through the local stack loses no log line:
# scripts/stack up on free ports, wrk (2 threads, 64 keep-alive connections,
# POSTs of one JSON-RPC call with a valid Host) for CCGW_LOAD_SECS (default 20)
# at its maximum rate. Then HAProxy's DroppedLogs is 0 on edge, http0 and http1,
# and after `scripts/stack flush` PostgreSQL's relay total grew by exactly the
# relays wrk got answered.
#
# Exactness at wrk's deadline: wrk abandons the requests in flight when its
# time is up, and HAProxy may still log them as relays. So for the last
# TAIL_SECS the lua script sends the HTTP tiers' monitor request instead
# (/ccgw-health: answered by the HTTP tier itself, never forwarded, never
# logged): what is in flight at the deadline is no relay, and every relay was
# answered to wrk.
source "$(dirname "$0")/lib.sh"
it_setup
LOAD_SECS=${CCGW_LOAD_SECS:-20}
TAIL_SECS=2
CONNS=64
DOMAIN=chains.local.test
HOST=894334g9f403.0001.$DOMAIN

stack_start

gw_metric() { # PORT NAME -> value of the metric (one sample, gateway/source labels)
    curl -fsS --max-time 2 "http://127.0.0.1:$1/metrics" \
        | awk -v m="$2" 'index($1, m "{") == 1 { print $2; exit }'
}

# `stack up` sends one relay to prove routing: flushed, it is the baseline.
base=$(stack_flush_total) && [[ "$base" =~ ^[0-9]+$ ]] || fail "relay total before the load: '$base'"
note "relays before the load: $base (stack up's own request)"

wrk_relay_lua "$IT_DIR/load.lua" "$HOST" eth_blockNumber "$IT_DIR/no-stop-file" "$LOAD_SECS"

note "wrk -t2 -c$CONNS for $((LOAD_SECS + TAIL_SECS))s through the edge ($LOAD_SECS s Host $HOST, then monitor requests)"
wrk -t2 -c"$CONNS" -d"$((LOAD_SECS + TAIL_SECS))s" --timeout 10s -s "$IT_DIR/load.lua" \
    "http://127.0.0.1:$EDGE/" >"$IT_DIR/wrk.out" 2>&1 || { cat "$IT_DIR/wrk.out"; fail "wrk"; }
cat "$IT_DIR/wrk.out"
relays=$(wrk_field "$IT_DIR/wrk.out" relays); monitors=$(wrk_field "$IT_DIR/wrk.out" monitors)
[[ "$relays" =~ ^[0-9]+$ && "$monitors" =~ ^[0-9]+$ ]] || fail "cannot read wrk's output"
[ "$relays" -gt 1000 ] || fail "wrk got only $relays relays answered"
[ "$monitors" -gt 0 ] || fail "the monitor tail never ran: in-flight requests may be relays"
note "rate: $((relays / LOAD_SECS)) relays/s through edge -> http0 -> cc-node ($relays in ${LOAD_SECS}s)"
# Every answer is a relay or a monitor answer; a request wrk gave up on (read
# error, timeout) may or may not have been a relay, so the run must have none.
assert_eq "$(wrk_field "$IT_DIR/wrk.out" bad)" 0 "non-2xx or unexpected answers"
assert_eq "$(wrk_field "$IT_DIR/wrk.out" errors)" 0 "wrk socket errors"

for t in edge http0 http1; do
    assert_eq "$(haproxy_dropped_logs $t)" 0 "HAProxy DroppedLogs on $t"
done

# The gateways poll DroppedLogs every second and export it; wait for a poll
# after the load, then it must agree (and the poll must have worked).
sleep 1.5
declare -A GW_PORT=([edge]=$((9100 + OFF)) [http0]=$((9101 + OFF)) [http1]=$((9102 + OFF)))
for t in edge http0 http1; do
    assert_eq "$(gw_metric "${GW_PORT[$t]}" ccgw_gateway_stats_socket_up)" 1 \
        "ccgw_gateway_stats_socket_up of gw-$t"
    assert_eq "$(gw_metric "${GW_PORT[$t]}" ccgw_gateway_haproxy_dropped_logs_total)" 0 \
        "ccgw_gateway_haproxy_dropped_logs_total of gw-$t"
done

after=$(stack_flush_total) && [[ "$after" =~ ^[0-9]+$ ]] || fail "relay total after the load: '$after'"
assert_eq "$((after - base))" "$relays" "relays in PostgreSQL after the load (wrk's relay answers)"
