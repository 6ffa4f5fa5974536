#!/bin/bash
# cc-node under hostile traffic: malformed JSON, a 10 MB body, a slow client,
# 5,000 idle connections (tests/data/node/abuse_check.py). Each gets a clear
# error or is cut off; memory stays bounded; other clients keep being served.
source "$(dirname "$0")/lib.sh"
it_setup
PORT=$(free_port)
cat >"$IT_DIR/node.yaml" <<YAML
node: {data_dir: $IT_DIR/data, listen: "127.0.0.1:$PORT", threads: 2}
rpc:
  max_body_bytes: 1MiB
  max_connections: 6000
  idle_timeout_secs: 3
  auth: {rate_limit_enabled: false}
logging: {format: json, level: warn}
YAML
bg node "$CCGW_BIN/cc-node" --config "$IT_DIR/node.yaml"
wait_http "http://127.0.0.1:$PORT/health/ready"
python3 "$CCGW_ROOT/tests/data/node/abuse_check.py" "$PORT" "${IT_PIDS[node]}" 3 || fail "abuse checks"
kill -0 "${IT_PIDS[node]}" || fail "cc-node died"
