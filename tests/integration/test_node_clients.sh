#!/bin/bash
# Real clients, not ours: the npm packages bitcoin-core and ethers
# (JsonRpcProvider) against cc-node, directly and through HAProxy (mode http,
# keep-alive, the HTTP tier adding the node's Authorization header as the
# design puts it, so clients behind it hold no node credentials).
source "$(dirname "$0")/lib.sh"
it_setup
CLIENTS=$CCGW_ROOT/tests/node-clients
NODE=$CCGW_BIN/cc-node

if [ ! -d "$CLIENTS/node_modules/ethers" ] || [ ! -d "$CLIENTS/node_modules/bitcoin-core" ]; then
    (cd "$CLIENTS" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci"
fi

BPORT=$(free_port); EPORT=$(free_port); HB=$(free_port); HE=$(free_port)
cat >"$IT_DIR/btc.yaml" <<YAML
node: {flavour: bitcoin, data_dir: $IT_DIR/btc, listen: "127.0.0.1:$BPORT"}
rpc: {auth: {user: relay, password: pw-$$, rate_limit_enabled: false}}
logging: {format: text, level: warn}
YAML
cat >"$IT_DIR/evm.yaml" <<YAML
node: {flavour: evm, chain_id: 31337, data_dir: $IT_DIR/evm, listen: "127.0.0.1:$EPORT"}
rpc: {auth: {rate_limit_enabled: false}}
logging: {format: text, level: warn}
YAML
bg btc "$NODE" --config "$IT_DIR/btc.yaml"
bg evm "$NODE" --config "$IT_DIR/evm.yaml"
wait_http "http://127.0.0.1:$BPORT/health/ready"
wait_http "http://127.0.0.1:$EPORT/health/ready"

AUTH=$(printf 'relay:pw-%s' "$$" | base64)
cat >"$IT_DIR/haproxy.cfg" <<CFG
global
    maxconn 1000
defaults
    mode http
    option http-keep-alive
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend btc_in
    bind 127.0.0.1:$HB
    default_backend btc
frontend evm_in
    bind 127.0.0.1:$HE
    default_backend evm
backend btc
    option httpchk GET /health/ready
    http-request set-header Authorization "Basic $AUTH"
    server n1 127.0.0.1:$BPORT check inter 1s
backend evm
    option httpchk GET /health/ready
    server n1 127.0.0.1:$EPORT check inter 1s
CFG
haproxy -c -q -f "$IT_DIR/haproxy.cfg" || fail "haproxy config"
bg haproxy haproxy -db -f "$IT_DIR/haproxy.cfg"
wait_port "$HB"; wait_port "$HE"

note "direct: bitcoin-core"
node "$CLIENTS/clients.js" bitcoin "http://127.0.0.1:$BPORT" relay "pw-$$" || fail "bitcoin-core direct"
note "direct: ethers"
node "$CLIENTS/clients.js" evm "http://127.0.0.1:$EPORT" 31337 || fail "ethers direct"
note "through HAProxy: bitcoin-core (the proxy adds the credentials; the client's are wrong on purpose)"
node "$CLIENTS/clients.js" bitcoin "http://127.0.0.1:$HB" nobody nothing --proxied || fail "bitcoin-core via haproxy"
note "through HAProxy: ethers"
node "$CLIENTS/clients.js" evm "http://127.0.0.1:$HE" 31337 || fail "ethers via haproxy"
echo "node clients: all checks passed"
