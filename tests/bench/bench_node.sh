#!/bin/bash
# cc-node getblockcount throughput against nginx answering a fixed 200, both
# on this machine, driven by the same wrk (keep-alive POSTs of one JSON-RPC
# call, 2 threads, BENCH_CONNS connections). The two servers take turns,
# BENCH_ROUNDS rounds of BENCH_SECS seconds each, so that a burst of other
# work on the machine hits both; each side's figure is its best round, and the
# ratio (target >= 0.7) is best against best, with the per-round ratios shown.
# Like for like: nginx has as many workers as cc-node has threads (2), and
# each logs every request in its default format to /dev/null (cc-node's
# rpc_request line at level info, nginx's combined access log), with rate
# limiting off. BENCH_NODE_LOG=warn drops cc-node's request lines.
source "$(dirname "$0")/../integration/lib.sh"
it_setup
SECS=${BENCH_SECS:-5}
ROUNDS=${BENCH_ROUNDS:-4}
CONNS=${BENCH_CONNS:-64}
LEVEL=${BENCH_NODE_LOG:-info}
THREADS=2
NPORT=$(free_port); GPORT=$(free_port)
[ -x "$CCGW_BIN/cc-node" ] || fail "$CCGW_BIN/cc-node missing: run make first"
progress() { echo "-- $*" >&2; }

cat >"$IT_DIR/node.yaml" <<YAML
node: {data_dir: $IT_DIR/data, listen: "127.0.0.1:$NPORT", threads: $THREADS}
rpc: {auth: {rate_limit_enabled: false}}
logging: {format: json, level: $LEVEL}
YAML
"$CCGW_BIN/cc-node" --config "$IT_DIR/node.yaml" >/dev/null 2>&1 &
IT_PIDS[node]=$!
mkdir -p "$IT_DIR/nginx"
cat >"$IT_DIR/nginx/nginx.conf" <<CONF
worker_processes $THREADS;
pid $IT_DIR/nginx/nginx.pid;
error_log $IT_DIR/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log /dev/null combined;
    client_body_temp_path $IT_DIR/nginx;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$GPORT;
        location / { default_type application/json; return 200 '{"result":0,"error":null,"id":1}\n'; }
    }
}
CONF
bg nginx nginx -p "$IT_DIR/nginx" -c "$IT_DIR/nginx/nginx.conf" -g 'daemon off;'
wait_http "http://127.0.0.1:$NPORT/health/ready"
wait_port "$GPORT"

cat >"$IT_DIR/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"jsonrpc":"1.0","method":"getblockcount","params":[],"id":1}'
wrk.headers["Content-Type"] = "application/json"
LUA
curl -fsS -d '{"jsonrpc":"1.0","method":"getblockcount","params":[],"id":1}' \
    "http://127.0.0.1:$NPORT/" | grep -q '"result":0' || fail "cc-node does not answer getblockcount"

run_wrk() { # name url -> requests/s; fails on socket errors or non-2xx answers
    local out=$IT_DIR/wrk-$1.out
    wrk -t2 -c"$CONNS" -d"${SECS}s" -s "$IT_DIR/post.lua" "$2" >"$out" 2>&1 \
        || { cat "$out" >&2; fail "wrk $2"; }
    grep -qE 'Non-2xx|Socket errors' "$out" && { cat "$out" >&2; fail "errors from $1 ($2)"; }
    awk '/^Requests\/sec:/ { print $2 }' "$out"
}
NODE=() NGINX=()
for r in $(seq "$ROUNDS"); do
    progress "round $r/$ROUNDS: wrk -t2 -c$CONNS -d${SECS}s against cc-node, then nginx"
    NODE+=("$(run_wrk node "http://127.0.0.1:$NPORT/")")
    NGINX+=("$(run_wrk nginx "http://127.0.0.1:$GPORT/")")
    progress "round $r: cc-node ${NODE[-1]} req/s, nginx ${NGINX[-1]} req/s"
done
python3 - "$CONNS" "$SECS" "$LEVEL" "$THREADS" "${NODE[*]}" "${NGINX[*]}" <<'PY'
import json, sys
conns, secs, level, threads = sys.argv[1:5]
node, nginx = [float(x) for x in sys.argv[5].split()], [float(x) for x in sys.argv[6].split()]
best_node, best_nginx = max(node), max(nginx)
ratio = best_node / best_nginx
rounds = " ".join("%.2f" % (a / b) for a, b in zip(node, nginx))
print("cc-node getblockcount: best %.0f req/s; nginx fixed 200: best %.0f req/s; ratio %.2f "
      "(target >= 0.7); per-round ratios %s" % (best_node, best_nginx, ratio, rounds))
print(json.dumps({"bench": "node_getblockcount", "metric": "requests/s (best of %d rounds)" % len(node),
                  "value": round(best_node), "peer": "nginx return 200", "peer_value": round(best_nginx),
                  "ratio": round(ratio, 3), "target": ">= 0.7x nginx", "met": ratio >= 0.7,
                  "round_ratios": rounds,
                  "command": "wrk -t2 -c%s -d%ss POST getblockcount (keep-alive), alternating rounds; "
                             "cc-node threads %s, log level %s; nginx %s workers, access log on"
                             % (conns, secs, threads, level, threads)}))
PY
