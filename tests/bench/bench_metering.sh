#!/bin/bash
# What metering costs: the same rendered HAProxy trio and the same cc-nodes,
# driven by the same wrk through the edge, once as the stack runs (every
# tier logging into its cc-gateway, which counts) and once with logging off
# in every tier (the rendered configs without their `log` lines, HAProxy
# run directly, nothing reading). Alternating rounds (BENCH_ROUNDS, default
# 2 each), best against best: ratio = ccgw / off (goal >= 0.9).
source "$(dirname "$0")/../integration/lib.sh"
it_setup
SECS=${BENCH_SECS:-10}
ROUNDS=${BENCH_ROUNDS:-2}
CONNS=${BENCH_CONNS:-64}
HOST=894334g9f403.0001.chains.local.test
[ -x "$CCGW_BIN/cc-gateway" ] || fail "$CCGW_BIN/cc-gateway missing: run make first"
stack_start

cat >"$IT_DIR/relay.lua" <<LUA
wrk.method = "POST"; wrk.headers["Host"] = "$HOST"; wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}'
LUA
for t in edge http0 http1; do
    grep -Ev '^[[:space:]]*log[[:space:]]' "$RUN/haproxy/$t.cfg" >"$RUN/haproxy/$t-nolog.cfg"
done

# rps NAME: wrk through the edge; prints requests/s (all 2xx, or it fails)
rps() {
    wrk -t2 -c"$CONNS" -d"${SECS}s" -s "$IT_DIR/relay.lua" "http://127.0.0.1:$EDGE/" >"$IT_DIR/$1.wrk" 2>&1 \
        || { cat "$IT_DIR/$1.wrk" >&2; fail "wrk $1"; }
    grep -q "Non-2xx" "$IT_DIR/$1.wrk" && { cat "$IT_DIR/$1.wrk" >&2; fail "$1: non-2xx answers"; }
    awk '/^Requests\/sec:/ { print int($2) }' "$IT_DIR/$1.wrk"
}
wait_edge() {
    for _ in $(seq 100); do
        curl -fsS -o /dev/null --max-time 1 -H "Host: $HOST" \
            -d '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}' \
            "http://127.0.0.1:$EDGE/" 2>/dev/null && return 0
        sleep 0.2
    done
    fail "the edge does not route"
}
gateways_down() {
    local t pid
    for t in edge http0 http1; do
        pid=$(cat "$RUN/pids/gw-$t.pid")
        kill -TERM "$pid"
        for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        rm -f "$RUN/pids/gw-$t.pid"
    done
}

CCGW=() OFFS=()
for r in $(seq "$ROUNDS"); do
    wait_edge
    v=$(rps "ccgw$r"); CCGW+=("$v")
    note "round $r: with metering $v req/s"
    gateways_down
    for t in http0 http1 edge; do bg "nolog-$t" haproxy -f "$RUN/haproxy/$t-nolog.cfg"; done
    sleep 1; wait_edge
    v=$(rps "off$r"); OFFS+=("$v")
    note "round $r: logging off $v req/s"
    for t in edge http0 http1; do stop_bg "nolog-$t"; done
    "$CCGW_ROOT/scripts/stack" up >"$IT_DIR/up$r.log" 2>&1 || { cat "$IT_DIR/up$r.log" >&2; fail "stack up"; }
done

python3 - "${CCGW[*]}" "${OFFS[*]}" "$SECS" "$CONNS" <<'PY'
import json, sys
ccgw = [int(x) for x in sys.argv[1].split()]
off = [int(x) for x in sys.argv[2].split()]
b, o = max(ccgw), max(off)
print("with metering: %s req/s; logging off: %s req/s; best/best %.3f" % (ccgw, off, b / o))
print(json.dumps({"bench": "metering_overhead", "metric": "requests/s", "value": b,
                  "peer": "same stack, HAProxy logging off", "peer_value": o, "ratio": round(b / o, 3),
                  "target": ">= 0.9", "met": b / o >= 0.9,
                  "command": "wrk -t2 -c%s -d%ss POST through the edge, alternating rounds, best vs best"
                             % (sys.argv[4], sys.argv[3]),
                  "details": "rounds ccgw %s, off %s" % (ccgw, off)}))
PY
