#!/bin/bash
# What metering costs: the same rendered HAProxy trio and the same cc-nodes,
# driven by the same wrk through the edge, once as the stack runs (every
# tier logging into its cc-gateway, which counts) and once with logging off
# in every tier (the rendered configs without their `log` lines, HAProxy
# run directly, nothing reading). Alternating rounds (BENCH_ROUNDS, default
# 2 each), best against best: ratio = ccgw / off (goal >= 0.9).
#
# Where the time goes: each round also reads the CPU time (/proc) of the
# stack's HAProxys, cc-gateways and cc-nodes and of wrk, per request, and the
# connections the edge opened to the HTTP tiers per 1,000 requests (its
# `show stat`: connect against reuse). Both modes must reuse those
# connections; a churning edge (a connection per request) would weigh on
# one side only and make the ratio meaningless.
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

# cpu_ticks: "haproxy cc-gateway cc-node" CPU ticks of this stack's
# processes: HAProxys on its configs (the -nolog ones are there too), its
# cc-gateway supervisors and workers, its nodes
cpu_ticks() {
    echo "$(proc_ticks $(pgrep -f "^haproxy -f $RUN/"))" \
        "$(proc_ticks $(pgrep -f "^cc-gateway: .*--config $RUN/"))" \
        "$(proc_ticks $(pgrep -f "cc-node --config $RUN/"))"
}
# edge_connects: connections the edge opened to http0 so far (show stat)
edge_connects() {
    echo "show stat be_http 4 -1" | socat - "UNIX:$RUN/data/edge.sock" \
        | awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "connect") c = i } $2 == "http0" { print $c + 0 }'
}
# rps NAME: wrk through the edge; prints requests/s (all 2xx, or it fails);
# appends "NAME haproxy_us cc-gateway_us cc-node_us wrk_us connects_per_1k"
# per request to $IT_DIR/cpu
rps() {
    local c0 c1 k0 k1
    read -r -a c0 < <(cpu_ticks); k0=$(edge_connects)
    /usr/bin/time -f '%U %S' -o "$IT_DIR/$1.time" \
        wrk -t2 -c"$CONNS" -d"${SECS}s" -s "$IT_DIR/relay.lua" "http://127.0.0.1:$EDGE/" >"$IT_DIR/$1.wrk" 2>&1 \
        || { cat "$IT_DIR/$1.wrk" >&2; fail "wrk $1"; }
    read -r -a c1 < <(cpu_ticks); k1=$(edge_connects)
    grep -q "Non-2xx" "$IT_DIR/$1.wrk" && { cat "$IT_DIR/$1.wrk" >&2; fail "$1: non-2xx answers"; }
    python3 - "$1" "${c0[*]}" "${c1[*]}" "$(cat "$IT_DIR/$1.time")" "$k0" "$k1" "$IT_DIR/$1.wrk" \
        >>"$IT_DIR/cpu" <<'PY'
import os, re, sys
name, a, b, wt, k0, k1, out = sys.argv[1:8]
n = int(re.search(r"(\d+) requests in", open(out).read()).group(1))
tick = os.sysconf("SC_CLK_TCK")
us = [(int(y) - int(x)) / tick * 1e6 / n for x, y in zip(a.split(), b.split())]
wrk = sum(map(float, wt.split()[-2:])) * 1e6 / n
print(name, " ".join("%.1f" % u for u in us), "%.1f" % wrk, "%.1f" % ((int(k1) - int(k0)) * 1000 / n))
PY
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

python3 - "${CCGW[*]}" "${OFFS[*]}" "$SECS" "$CONNS" "$IT_DIR/cpu" <<'PY'
import json, sys
ccgw = [int(x) for x in sys.argv[1].split()]
off = [int(x) for x in sys.argv[2].split()]
b, o = max(ccgw), max(off)
print("with metering: %s req/s; logging off: %s req/s; best/best %.3f" % (ccgw, off, b / o))
# CPU per request of each mode, mean of its rounds
cpu = {"ccgw": [], "off": []}
for line in open(sys.argv[5]):
    f = line.split()
    cpu["ccgw" if f[0].startswith("ccgw") else "off"].append([float(x) for x in f[1:]])
mean = {m: [sum(c) / len(v) for c in zip(*v)] for m, v in cpu.items()}
for m in ("ccgw", "off"):
    h, g, nd, w, k = mean[m]
    print("%-4s CPU us/request: haproxy %.1f, cc-gateway %.1f, cc-node %.1f, wrk %.1f, all %.1f;"
          " edge connects per 1,000 requests %.1f" % (m, h, g, nd, w, h + g + nd + w, k))
tot = {m: sum(mean[m][:4]) for m in mean}
print(json.dumps({"bench": "metering_overhead", "metric": "requests/s", "value": b,
                  "peer": "same stack, HAProxy logging off", "peer_value": o, "ratio": round(b / o, 3),
                  "target": ">= 0.9", "met": b / o >= 0.9,
                  "command": "wrk -t2 -c%s -d%ss POST through the edge, alternating rounds, best vs best"
                             % (sys.argv[4], sys.argv[3]),
                  "details": "rounds ccgw %s, off %s" % (ccgw, off),
                  "cpu_us_per_req": "ccgw %.1f (haproxy %.1f, cc-gateway %.1f), off %.1f (haproxy %.1f)"
                                    % (tot["ccgw"], mean["ccgw"][0], mean["ccgw"][1], tot["off"], mean["off"][0]),
                  "cpu_ratio": round(tot["off"] / tot["ccgw"], 3),
                  "edge_connects_per_1k": "ccgw %.1f, off %.1f" % (mean["ccgw"][4], mean["off"][4])}))
PY
