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

stack_down() { "$CCGW_ROOT/scripts/stack" down >"$IT_DIR/down.log" 2>&1 || cat "$IT_DIR/down.log"; }
# it_cleanup reports the test's exit status: keep it across stack_down.
trap 'rc=$?; stack_down; (exit $rc); it_cleanup' EXIT

# Other stacks start in parallel: a port taken between stack_offset's check
# and the start makes `up` fail; try another offset then.
export CCGW_RUN_DIR=$IT_DIR/run CCGW_BIN
for attempt in 1 2 3; do
    stack_offset
    export CCGW_PORT_OFFSET=$OFF
    note "stack on port offset $OFF"
    "$CCGW_ROOT/scripts/stack" up >"$IT_DIR/up.log" 2>&1 && break
    cat "$IT_DIR/up.log"
    stack_down
    [ $attempt = 3 ] && fail "stack up"
    rm -rf "$CCGW_RUN_DIR"
done
RUN=$CCGW_RUN_DIR
EDGE=$((8080 + OFF))

pg_total() {
    "$CCGW_BIN/relaystats" --config "$RUN/ccgw.yaml" query --from -1h --to now --format json \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'
}
flush_total() { # make every gateway flush, print PostgreSQL's relay total
    "$CCGW_ROOT/scripts/stack" flush >"$IT_DIR/flush.log" 2>&1 || { cat "$IT_DIR/flush.log" >&2; return 1; }
    pg_total
}
dropped_logs() { # TIER -> HAProxy's DroppedLogs from its stats socket
    echo "show info" | socat -t 5 - "UNIX-CONNECT:$RUN/data/$1.sock" \
        | awk -F': ' '$1 == "DroppedLogs" { print $2 }'
}
gw_metric() { # PORT NAME -> value of the metric (one sample, gateway/source labels)
    curl -fsS --max-time 2 "http://127.0.0.1:$1/metrics" \
        | awk -v m="$2" 'index($1, m "{") == 1 { print $2; exit }'
}

# `stack up` sends one relay to prove routing: flushed, it is the baseline.
base=$(flush_total) && [[ "$base" =~ ^[0-9]+$ ]] || fail "relay total before the load: '$base'"
note "relays before the load: $base (stack up's own request)"

cat >"$IT_DIR/load.lua" <<LUA
local relay = wrk.format("POST", "/", {["Host"] = "$HOST", ["Content-Type"] = "application/json"},
                         '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}')
local monitor = wrk.format("GET", "/ccgw-health")
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
    relays = 0; monitors = 0; bad = 0
    switch_at = os.time() + $LOAD_SECS
end
function request()
    if os.time() < switch_at then return relay end
    return monitor
end
-- cc-node answers JSON-RPC; the HTTP tier answers the monitor request itself.
function response(status, headers, body)
    if status >= 200 and status < 300 and body:find('"jsonrpc"', 1, true) then relays = relays + 1
    elseif status >= 200 and status < 300 and body:find("Service ready", 1, true) then
        monitors = monitors + 1
    else bad = bad + 1 end
end
function done(summary, latency, requests)
    local r, m, b = 0, 0, 0
    for _, t in ipairs(threads) do r = r + t:get("relays"); m = m + t:get("monitors"); b = b + t:get("bad") end
    io.write(string.format("relays %d\nmonitors %d\nbad %d\n", r, m, b))
    io.write(string.format("errors %d\n", summary.errors.connect + summary.errors.read +
                           summary.errors.write + summary.errors.timeout))
end
LUA

note "wrk -t2 -c$CONNS for $((LOAD_SECS + TAIL_SECS))s through the edge ($LOAD_SECS s Host $HOST, then monitor requests)"
wrk -t2 -c"$CONNS" -d"$((LOAD_SECS + TAIL_SECS))s" --timeout 10s -s "$IT_DIR/load.lua" \
    "http://127.0.0.1:$EDGE/" >"$IT_DIR/wrk.out" 2>&1 || { cat "$IT_DIR/wrk.out"; fail "wrk"; }
cat "$IT_DIR/wrk.out"
wrk_field() { awk -v k="$1" '$1 == k { print $2 }' "$IT_DIR/wrk.out"; }
relays=$(wrk_field relays); monitors=$(wrk_field monitors)
[[ "$relays" =~ ^[0-9]+$ && "$monitors" =~ ^[0-9]+$ ]] || fail "cannot read wrk's output"
[ "$relays" -gt 1000 ] || fail "wrk got only $relays relays answered"
[ "$monitors" -gt 0 ] || fail "the monitor tail never ran: in-flight requests may be relays"
note "rate: $((relays / LOAD_SECS)) relays/s through edge -> http0 -> cc-node ($relays in ${LOAD_SECS}s)"
# Every answer is a relay or a monitor answer; a request wrk gave up on (read
# error, timeout) may or may not have been a relay, so the run must have none.
assert_eq "$(wrk_field bad)" 0 "non-2xx or unexpected answers"
assert_eq "$(wrk_field errors)" 0 "wrk socket errors"

for t in edge http0 http1; do
    assert_eq "$(dropped_logs $t)" 0 "HAProxy DroppedLogs on $t"
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

after=$(flush_total) && [[ "$after" =~ ^[0-9]+$ ]] || fail "relay total after the load: '$after'"
assert_eq "$((after - base))" "$relays" "relays in PostgreSQL after the load (wrk's relay answers)"
