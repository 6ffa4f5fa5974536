#!/bin/bash
# The gateway path's cost: wrk with the same settings (keep-alive POSTs of
# eth_blockNumber, -t2 -c32, BENCH_SECS default 10, --latency) through
# edge -> http0 -> cc-node of the local stack, and directly to one cc-node of
# that stack (evm-a, chain 0001, no auth). Reports requests/s and p50/p99 of
# both and their ratios, plus the 4xx share of each run.
source "$(dirname "$0")/../integration/lib.sh"
it_setup
SECS=${BENCH_SECS:-10}
CONNS=${BENCH_CONNS:-32}
HOST=894334g9f403.0001.chains.local.test
[ -x "$CCGW_BIN/cc-gateway" ] || fail "$CCGW_BIN/cc-gateway missing: run make first"

stack_start
NODE=$((18332 + 2 + OFF))

cat >"$IT_DIR/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}'
wrk.headers["Host"] = "$HOST"
wrk.headers["Content-Type"] = "application/json"
LUA

# run_wrk NAME URL: sets <NAME>_RPS, _P50, _P99 (ms) and _NON2XX.
run_wrk() {
    local out=$IT_DIR/wrk-$1.out
    wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$IT_DIR/post.lua" "$2" >"$out" 2>&1 \
        || { cat "$out" >&2; fail "wrk $2"; }
    cat "$out"
    read -r rps p50 p99 non2xx < <(python3 - "$out" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
def ms(v):
    n, u = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[u]
rps = re.search(r"Requests/sec:\s+([\d.]+)", t).group(1)
p50 = ms(re.search(r"\s50%\s+(\S+)", t).group(1))
p99 = ms(re.search(r"\s99%\s+(\S+)", t).group(1))
m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
print(rps, p50, p99, m.group(1) if m else 0)
PY
    ) || fail "cannot read $out"
    printf -v "${1}_RPS" %s "$rps"; printf -v "${1}_P50" %s "$p50"
    printf -v "${1}_P99" %s "$p99"; printf -v "${1}_NON2XX" %s "$non2xx"
}

note "wrk -t2 -c$CONNS -d${SECS}s directly to cc-node evm-a (127.0.0.1:$NODE)"
run_wrk DIRECT "http://127.0.0.1:$NODE/"
note "wrk -t2 -c$CONNS -d${SECS}s through edge -> http0 -> cc-node (Host $HOST)"
run_wrk EDGE "http://127.0.0.1:$EDGE/"

python3 - "$EDGE_RPS" "$EDGE_P50" "$EDGE_P99" "$EDGE_NON2XX" "$DIRECT_RPS" "$DIRECT_P50" \
    "$DIRECT_P99" "$DIRECT_NON2XX" "$CONNS" "$SECS" <<'PY'
import json, sys
e_rps, e50, e99, e_bad, d_rps, d50, d99, d_bad = (float(x) for x in sys.argv[1:9])
conns, secs = sys.argv[9], sys.argv[10]
cmd = "wrk -t2 -c%s -d%ss --latency POST eth_blockNumber (keep-alive), stack's evm-a" % (conns, secs)
print("through edge -> http0 -> cc-node: %.0f req/s, p50 %.2f ms, p99 %.2f ms, %d non-2xx"
      % (e_rps, e50, e99, e_bad))
print("directly to cc-node:             %.0f req/s, p50 %.2f ms, p99 %.2f ms, %d non-2xx"
      % (d_rps, d50, d99, d_bad))
r = lambda a, b: round(a / b, 3) if b else None
for metric, v, p in (("requests/s", e_rps, d_rps), ("p50 latency ms", e50, d50), ("p99 latency ms", e99, d99)):
    print(json.dumps({"bench": "gateway_overhead", "metric": metric, "value": round(v, 2),
                      "peer": "cc-node directly", "peer_value": round(p, 2), "ratio": r(v, p),
                      "target": "report", "met": None, "command": cmd}))
PY
