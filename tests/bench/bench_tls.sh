#!/bin/bash
# HTTPS at the edge of the local stack, against plain HTTP through the same
# edge in the same run (the same stack, the same wrk, rounds alternated so
# that bursts of other work hit both):
# - relays/s with keep-alive (wrk -t2 -c32, POST eth_blockNumber, HTTP/1.1;
#   TLS 1.3, ECDSA P-256, the edge's default certificate for SNI 127.0.0.1);
# - new TLS handshakes/s: the same with `Connection: close`, one request per
#   connection (no session tickets, wrk does not resume), against new plain
#   TCP connections/s.
# Figures are best of BENCH_ROUNDS (2) rounds of BENCH_SECS (5) each. The CPU
# each HAProxy (edge, http0) and wrk used during the round is in the details:
# the edge is one thread (nbthread 1), so at 100% it is what bounds the rate;
# CPU time per request (edge_us_per_req, wrk_us_per_req) says what TLS costs
# each side whatever else the machine runs.
source "$(dirname "$0")/../integration/lib.sh"
it_setup
SECS=${BENCH_SECS:-5}
ROUNDS=${BENCH_ROUNDS:-2}
CONNS=${BENCH_CONNS:-32}
HOST=894334g9f403.0001.chains.local.test
[ -x "$CCGW_BIN/cc-gateway" ] || fail "$CCGW_BIN/cc-gateway missing: run make first"

stack_start
HZ=$(getconf CLK_TCK)

for mode in keep close; do
    cat >"$IT_DIR/post-$mode.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}'
wrk.headers["Host"] = "$HOST"
wrk.headers["Content-Type"] = "application/json"
$([ $mode = close ] && echo 'wrk.headers["Connection"] = "close"')
LUA
done

haproxy_pid() { echo "show info" | socat -t 5 - "UNIX-CONNECT:$RUN/data/$1.sock" | awk -F': ' '$1 == "Pid" { print $2 }'; }
EDGE_PID=$(haproxy_pid edge); H0_PID=$(haproxy_pid http0)
[ -n "$EDGE_PID" ] && [ -n "$H0_PID" ] || fail "HAProxy pids unknown"

# run NAME MODE URL: one wrk round; prints "rps edge_cpu% http0_cpu% wrk_cpu%".
run() {
    local out=$IT_DIR/wrk-$1.out e0 h0 e1 h1 t0 t1
    e0=$(proc_ticks "$EDGE_PID"); h0=$(proc_ticks "$H0_PID"); t0=$(date +%s.%N)
    /usr/bin/time -f '%U %S' -o "$IT_DIR/time-$1" \
        wrk -t2 -c"$CONNS" -d"${SECS}s" -s "$IT_DIR/post-$2.lua" "$3" >"$out" 2>&1 \
        || { cat "$out" >&2; fail "wrk $3"; }
    e1=$(proc_ticks "$EDGE_PID"); h1=$(proc_ticks "$H0_PID"); t1=$(date +%s.%N)
    grep -q "Non-2xx" "$out" && { cat "$out" >&2; fail "wrk $1: non-2xx answers"; }
    grep -q "Socket errors" "$out" && [ "$2" = keep ] && { cat "$out" >&2; fail "wrk $1: socket errors"; }
    python3 - "$out" "$IT_DIR/time-$1" "$e0" "$e1" "$h0" "$h1" "$t0" "$t1" "$HZ" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
u, s = (float(x) for x in open(sys.argv[2]).read().split()[-2:])
e0, e1, h0, h1 = (int(x) for x in sys.argv[3:7])
t0, t1, hz = float(sys.argv[7]), float(sys.argv[8]), int(sys.argv[9])
wall = t1 - t0
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
print("%.0f %.0f %.0f %.0f" % (rps, 100 * (e1 - e0) / hz / wall, 100 * (h1 - h0) / hz / wall,
                               100 * (u + s) / wall))
PY
}

declare -A best cpu
for r in $(seq "$ROUNDS"); do
    for case in "plain keep http://127.0.0.1:$EDGE/" "https keep https://127.0.0.1:$HTTPS/" \
                "plain_new close http://127.0.0.1:$EDGE/" "https_new close https://127.0.0.1:$HTTPS/"; do
        set -- $case
        read -r rps e h w < <(run "$1-$r" "$2" "$3")
        note "round $r $1: $rps requests/s (CPU: edge $e%, http0 $h%, wrk $w%)"
        if [ -z "${best[$1]:-}" ] || [ "$rps" -gt "${best[$1]}" ]; then
            best[$1]=$rps; cpu[$1]="edge_cpu_pct=$e, http0_cpu_pct=$h, wrk_cpu_pct=$w"
        fi
    done
done

python3 - "${best[https]}" "${best[plain]}" "${best[https_new]}" "${best[plain_new]}" \
    "${cpu[https]}" "${cpu[plain]}" "${cpu[https_new]}" "${cpu[plain_new]}" "$CONNS" "$SECS" "$ROUNDS" <<'PY'
import json, sys
h, p, hn, pn = (float(x) for x in sys.argv[1:5])
ch, cp, chn, cpn = sys.argv[5:9]
conns, secs, rounds = sys.argv[9:12]
base = "wrk -t2 -c%s -d%ss POST eth_blockNumber through the edge, best of %s alternated rounds" % (conns, secs, rounds)
def details(s, rps):
    d = {k: float(v) for k, v in (kv.split("=") for kv in s.split(", "))}
    # CPU time per request: what each side spends, whatever else runs.
    d["edge_us_per_req"] = round(d["edge_cpu_pct"] / 100 / rps * 1e6, 1)
    d["wrk_us_per_req"] = round(d["wrk_cpu_pct"] / 100 / rps * 1e6, 1)
    return d
rows = [
    {"bench": "tls_edge", "metric": "relays/s over HTTPS (keep-alive, HTTP/1.1)", "value": round(h),
     "peer": "plain HTTP, same edge", "peer_value": round(p), "ratio": round(h / p, 3),
     "target": "report", "met": None, "command": base + " (keep-alive), https:// vs http://",
     **details(ch, h), **{"peer_" + k: v for k, v in details(cp, p).items()}},
    {"bench": "tls_handshakes", "metric": "new TLS handshakes/s (one request each)", "value": round(hn),
     "peer": "new plain TCP connections/s", "peer_value": round(pn), "ratio": round(hn / pn, 3),
     "target": "report", "met": None, "command": base + ", Connection: close",
     **details(chn, hn), **{"peer_" + k: v for k, v in details(cpn, pn).items()}},
]
print("HTTPS keep-alive: %.0f relays/s vs plain %.0f (%.2fx); new TLS connections: %.0f/s vs plain %.0f/s (%.2fx)"
      % (h, p, h / p, hn, pn, hn / pn))
for r in rows:
    print(json.dumps(r))
PY
