#!/bin/bash
# The upgrade policy against backends that would accept the upgrade (a
# WebSocket echo server, npm ws): the tiers rendered by cc-routes, HTTPS at
# the edge, each HAProxy under its cc-gateway (--no-delivery: the counts are
# read from the gateways' /metrics).
# - chain 0021 did not opt in: WebSocket (over HTTP/1.1 and over TLS), h2c
#   and any other Upgrade get 403 and CONNECT 405; the server never sees an
#   upgrade; http0 counts upgrade_refused / connect_refused, no relay;
# - chain 0001 opted in (websocket: true): sessions work through the edge
#   over wss://, each is one websocket_session, never a relay, whatever the
#   number of messages; its bytes show on HAProxy's be_0001_ws counters;
# - plain requests to both chains stay relays, one each.
source "$(dirname "$0")/lib.sh"
it_setup
CLIENTS=$CCGW_ROOT/tests/node-clients
if [ ! -d "$CLIENTS/node_modules/ws" ]; then
    (cd "$CLIENTS" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci"
fi

W21=$(free_port); W01=$(free_port)
EDGE=$(free_port); TLS=$(free_port); H0=$(free_port); STATS0=$(free_port)
M_EDGE=$(free_port); M_H0=$(free_port)
D=chains.local.test
A=894334g9f403
"$CCGW_ROOT/scripts/local-ca" "$IT_DIR/tls" ensure "$D" 0021 0001 || fail "local-ca"
cat >"$IT_DIR/ccgw.yaml" <<YAML
gateway: {name: gw-upgrade, routing_domain: $D, data_dir: $IT_DIR/data}
chains:
  - id: "0021"
    backends: [{name: w21, address: "127.0.0.1:$W21"}]
  - id: "0001"
    websocket: true
    backends: [{name: w01, address: "127.0.0.1:$W01"}]
providers:
  - name: acme
    accounts:
      - {id: $A, chains: ["0021", "0001"]}
tiers:
  - {name: edge, role: edge, bind: "127.0.0.1:$EDGE", stats_socket: $IT_DIR/edge.sock, gateway_listen: "127.0.0.1:$M_EDGE"}
  - {name: http0, role: http, bind: "127.0.0.1:$H0", stats_bind: "127.0.0.1:$STATS0",
     stats_socket: $IT_DIR/http0.sock, gateway_listen: "127.0.0.1:$M_H0"}
logs: {dir: $IT_DIR/logs}
tls:
  bind: "127.0.0.1:$TLS"
  certificates:
    - {name: chain-0021, cert: $IT_DIR/tls/0021.crt, key: $IT_DIR/tls/0021.key}
    - {name: chain-0001, cert: $IT_DIR/tls/0001.crt, key: $IT_DIR/tls/0001.key}
YAML
"$CCGW_BIN/cc-routes" render --config "$IT_DIR/ccgw.yaml" --out "$IT_DIR/out" || fail "render"

bg w21 node "$CLIENTS/ws.js" server "$W21"
bg w01 node "$CLIENTS/ws.js" server "$W01"
wait_port "$W21"; wait_port "$W01"
for t in http0 edge; do
    bg "gw_$t" env TZ=UTC "$CCGW_BIN/cc-gateway" --config "$IT_DIR/ccgw.yaml" --source "$t" \
        --no-delivery -- haproxy -f "$IT_DIR/out/$t.cfg"
done
wait_http "http://127.0.0.1:$M_H0/health/ready"
wait_http "http://127.0.0.1:$M_EDGE/health/ready"
wait_port "$EDGE"; wait_port "$TLS"
for _ in $(seq 50); do
    curl -s -o /dev/null -w '%{http_code}' -H "Host: $A.0021.$D" "http://127.0.0.1:$EDGE/" | grep -q 200 && break
    sleep 0.2
done

metric() { # metric PORT NAME [LABEL]
    curl -fsS "http://127.0.0.1:$1/metrics" | awk -v n="$2" -v l="${3:-}" \
        '!f && ($1 == n || index($1, n "{") == 1) && index($1, l) { print $2; f = 1 }'
}
upgrades() { grep -c '^upgrade' "$IT_DIR/$1.log" || true; }
H21=$A.0021.$D; H01=$A.0001.$D
R=(--resolve "$H21:$TLS:127.0.0.1" --resolve "$H01:$TLS:127.0.0.1" --cacert "$IT_DIR/tls/ca.crt")
# the readiness request above is a relay the worker counts a batch later:
# let it in before the baseline
for _ in $(seq 50); do
    [ "$(metric "$M_H0" ccgw_gateway_relays_total)" -ge 1 ] && break
    sleep 0.1
done
relays0=$(metric "$M_H0" ccgw_gateway_relays_total)

note "chain 0021 (no opt-in): refused, the server sees no upgrade"
export NODE_EXTRA_CA_CERTS=$IT_DIR/tls/ca.crt
out=$(node -r "$CLIENTS/resolve-local.js" "$CLIENTS/ws.js" client "ws://127.0.0.1:$EDGE/" "$H21" 3)
assert_eq "$out" "refused 403" "WebSocket to a chain without opt-in"
out=$(node -r "$CLIENTS/resolve-local.js" "$CLIENTS/ws.js" client "wss://$H21:$TLS/" "$H21" 3)
assert_eq "$out" "refused 403" "WebSocket over TLS to a chain without opt-in"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' --http1.1 -H "Host: $H21" -H 'Connection: Upgrade, HTTP2-Settings' \
    -H 'Upgrade: h2c' -H 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA' "http://127.0.0.1:$EDGE/")" 403 "h2c upgrade"
body=$(curl -s "${R[@]}" --http1.1 -H 'Connection: Upgrade' -H 'Upgrade: foo/2' "https://$H21:$TLS/")
assert_eq "$body" "protocol upgrade refused: this chain does not accept WebSocket or h2c" "a clear refusal"
code=$(printf 'CONNECT %s:443 HTTP/1.1\r\nHost: %s:443\r\n\r\n' "$H21" "$H21" \
    | socat -t 5 - "TCP:127.0.0.1:$EDGE" | head -n 1 | awk '{ print $2 }')
assert_eq "$code" 405 "CONNECT"
assert_eq "$(upgrades w21)" 0 "the WebSocket server behind chain 0021 saw no upgrade"

note "chain 0001 (websocket: true): sessions through the edge, never relays"
out=$(node -r "$CLIENTS/resolve-local.js" "$CLIENTS/ws.js" client "wss://$H01:$TLS/" "$H01" 50)
assert_eq "${out%%,*}" "ok 50 messages" "a session of 50 calls over wss://"
echoed=$(echo "$out" | awk '{ print $4 }')
out=$(node -r "$CLIENTS/resolve-local.js" "$CLIENTS/ws.js" client "ws://127.0.0.1:$EDGE/" "$H01" 5)
assert_eq "${out%%,*}" "ok 5 messages" "a session of 5 calls over ws://"
echoed=$((echoed + $(echo "$out" | awk '{ print $4 }')))
assert_eq "$(upgrades w01)" 2 "the server behind chain 0001 accepted 2 upgrades"
unset NODE_EXTRA_CA_CERTS
# An Upgrade other than websocket is still refused on the opted-in chain.
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' --http1.1 -H "Host: $H01" -H 'Connection: Upgrade' -H 'Upgrade: h2c' \
    "http://127.0.0.1:$EDGE/")" 403 "h2c on the opted-in chain"

note "plain requests stay relays"
assert_eq "$(curl -s "${R[@]}" --http2 -d '{}' "https://$H21:$TLS/")" '{"jsonrpc":"2.0","id":1,"result":"plain"}' "0021 plain"
assert_eq "$(curl -s "${R[@]}" --http2 -d '{}' "https://$H01:$TLS/")" '{"jsonrpc":"2.0","id":1,"result":"plain"}' "0001 plain"

# The HTTP tier logs each request when its answer headers arrive (101 for a
# session, option logasap): wait until every line expected is counted, the
# sessions' and the plain requests'.
for _ in $(seq 50); do
    [ "$(metric "$M_H0" ccgw_gateway_non_relays_total 'reason="websocket_session"')" = 2 ] &&
        [ "$(( $(metric "$M_H0" ccgw_gateway_relays_total) - relays0 ))" -ge 2 ] && break
    sleep 0.1
done
assert_eq "$(metric "$M_H0" ccgw_gateway_non_relays_total 'reason="websocket_session"')" 2 "websocket_session non-relays"
assert_eq "$(metric "$M_H0" ccgw_gateway_non_relays_total 'reason="upgrade_refused"')" 5 "upgrade_refused (ws, wss, h2c, foo/2, h2c on 0001)"
assert_eq "$(metric "$M_H0" ccgw_gateway_non_relays_total 'reason="connect_refused"')" 1 "connect_refused"
assert_eq "$(( $(metric "$M_H0" ccgw_gateway_relays_total) - relays0 ))" 2 "relays: the two plain requests only"
# The bytes of the sessions: HAProxy's own counters of be_0001_ws.
bytes=$(curl -fsS "http://127.0.0.1:$STATS0/metrics" \
    | awk '$1 ~ /^haproxy_backend_bytes_out_total\{proxy="be_0001_ws"/ { print $2 }')
[ "${bytes:-0}" -ge "$echoed" ] || fail "be_0001_ws bytes out: ${bytes:-none} (the echoes alone are $echoed bytes)"
note "be_0001_ws: $bytes bytes to the clients"
grep -q ' be_0001_ws/w01 .* 101 ' "$IT_DIR/logs/http0/requests.log" || fail "no 101 line of be_0001_ws in the request log"
echo "PASS"
