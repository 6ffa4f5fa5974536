#!/bin/bash
# cc-node getblockcount throughput: wrk with keep-alive (POST of one
# JSON-RPC call, 2 threads, 64 connections, ~10 s) against cc-node, and in
# the same run against nginx answering a fixed 200 on the same machine with
# as many workers as cc-node has threads. Prints both figures, the ratio
# (target >= 0.7) and a JSON result line. cc-node runs with rate limiting
# off and request logs on (level info) written to /dev/null, so every
# request still builds its log line; BENCH_NODE_LOG=warn drops them.
source "$(dirname "$0")/../integration/lib.sh"
it_setup
SECS=${BENCH_SECS:-10}
CONNS=${BENCH_CONNS:-64}
LEVEL=${BENCH_NODE_LOG:-info}
NPORT=$(free_port); GPORT=$(free_port)

cat >"$IT_DIR/node.yaml" <<YAML
node: {data_dir: $IT_DIR/data, listen: "127.0.0.1:$NPORT", threads: 2}
rpc: {auth: {rate_limit_enabled: false}}
logging: {format: json, level: $LEVEL}
YAML
"$CCGW_BIN/cc-node" --config "$IT_DIR/node.yaml" 2>/dev/null &
IT_PIDS[node]=$!
mkdir -p "$IT_DIR/nginx"
cat >"$IT_DIR/nginx/nginx.conf" <<CONF
worker_processes 2;
pid $IT_DIR/nginx/nginx.pid;
error_log $IT_DIR/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
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
curl -fsS -d @<(printf '{"method":"getblockcount","id":1}') "http://127.0.0.1:$NPORT/" | grep -q '"result":0' \
    || fail "cc-node does not answer getblockcount"

run_wrk() { # url -> requests/s
    wrk -t2 -c"$CONNS" -d"${SECS}s" -s "$IT_DIR/post.lua" "$1" >"$IT_DIR/wrk.out" 2>&1 || fail "wrk $1"
    cat "$IT_DIR/wrk.out" >&2
    grep -q 'Non-2xx' "$IT_DIR/wrk.out" && fail "non-2xx answers from $1"
    awk '/^Requests\/sec:/{print $2}' "$IT_DIR/wrk.out"
}
note "wrk against cc-node (getblockcount, keep-alive, ${CONNS} connections, ${SECS}s)"
NODE_RPS=$(run_wrk "http://127.0.0.1:$NPORT/")
note "wrk against nginx (fixed 200)"
NGINX_RPS=$(run_wrk "http://127.0.0.1:$GPORT/")
python3 - "$NODE_RPS" "$NGINX_RPS" "$CONNS" "$SECS" "$LEVEL" <<'PY'
import json, sys
node, nginx, conns, secs, level = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ratio = node / nginx if nginx else 0.0
print("cc-node getblockcount: %.0f req/s; nginx fixed 200: %.0f req/s; ratio %.2f (target >= 0.7)" % (node, nginx, ratio))
print(json.dumps({"bench": "node_getblockcount", "metric": "requests/s", "value": round(node),
                  "peer": "nginx return 200", "peer_value": round(nginx), "ratio": round(ratio, 3),
                  "target": ">= 0.7x nginx", "met": ratio >= 0.7,
                  "command": "wrk -t2 -c%s -d%ss POST getblockcount (keep-alive), cc-node threads 2 log level %s, nginx 2 workers" % (conns, secs, level)}))
PY
