#!/bin/bash
# HTTPS at the edge of the real local stack (scripts/stack up: local CA under
# run/tls/, HTTPS on 8443+offset):
# - what openssl s_client sees: TLS 1.0/1.1 refused, 1.2 and 1.3 served, ALPN
#   h2, the leaf and the intermediate served, verified against run/tls/ca.crt;
# - curl --http2 (several streams on one connection) and --http1.1 to every
#   valid host, verified against the CA, each request one relay in PostgreSQL,
#   by (chain, account);
# - an unknown host over TLS: 404, a non-relay (invalid_host);
# - bad Host, protocol upgrades and CONNECT: their status, their own non-relay
#   reason in PostgreSQL, and no request reaches a chain backend;
# - the npm clients ethers and bitcoin-core over HTTPS (NODE_EXTRA_CA_CERTS).
source "$(dirname "$0")/lib.sh"
it_setup
stack_start
CA=$RUN/tls/ca.crt
D=chains.local.test
HOSTS="894334g9f403.0021.$D 894334g9f403.0001.$D 5e2a91c07d3b.0001.$D a1b2c3d4e5f6.0021.$D"
PG="postgresql://postgres@127.0.0.1:$((55432 + OFF))/ccgw"
BODY='{"jsonrpc":"2.0","id":1,"method":"getblockcount","params":[]}'
EBODY='{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}'

body_for() { case $1 in *.0021.*) echo "$BODY" ;; *) echo "$EBODY" ;; esac; }
resolve() { echo "--resolve $1:$HTTPS:127.0.0.1"; }
sclient() { # sclient HOST ARGS...: openssl s_client's output for one handshake
    local h=$1; shift
    timeout 10 openssl s_client -connect "127.0.0.1:$HTTPS" -servername "$h" -CAfile "$CA" "$@" </dev/null 2>&1
}
psql_q() { psql "$PG" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
relays_by_host() {
    psql_q "SELECT account || '.' || chain || '.$D=' || sum(relays) FROM relay_counts GROUP BY account, chain"
}
non_relays() { psql_q "SELECT coalesce(sum(requests), 0) FROM non_relay_counts WHERE reason = '$1'"; }
# Requests the chain backends of http0 and http1 got (HAProxy's own count).
backend_sessions() {
    local t n=0
    for t in http0 http1; do
        n=$((n + $(echo "show stat" | socat -t 5 - "UNIX-CONNECT:$RUN/data/$t.sock" \
            | awk -F, '$2 == "BACKEND" && ($1 == "be_0021" || $1 == "be_0001") { s += $8 } END { print s + 0 }')))
    done
    echo $n
}

H=894334g9f403.0021.$D
note "openssl s_client: protocols, ALPN, chain"
for v in tls1 tls1_1; do
    out=$(sclient "$H" -$v)
    echo "$out" | grep -q "^New, (NONE), Cipher is (NONE)" \
        || fail "-$v: a session was negotiated: $(echo "$out" | grep '^New,')"
    echo "$out" | grep -qi "alert protocol version\|no protocols available" \
        || fail "-$v: expected a protocol version failure, got: $(echo "$out" | head -n 3)"
done
out=$(sclient "$H" -tls1_2)
echo "$out" | grep -q "^New, TLSv1.2," || fail "TLS 1.2 not served: $(echo "$out" | tail -n 5)"
out=$(sclient "$H" -tls1_3 -alpn h2,http/1.1 -showcerts)
echo "$out" | grep -q "^New, TLSv1.3," || fail "TLS 1.3 not served"
echo "$out" | grep -q "^ALPN protocol: h2$" || fail "no h2 ALPN answer: $(echo "$out" | grep -i alpn)"
echo "$out" | grep -q "Verify return code: 0 (ok)" || fail "chain does not verify against $CA"
assert_eq "$(echo "$out" | grep -c 'BEGIN CERTIFICATE')" 2 "leaf and intermediate served"
echo "$out" | grep -q "^ 1 s:.*CN *= *ccgw local intermediate CA" || fail "intermediate not second in chain"
out=$(sclient "$H" -tls1_2 -alpn http/1.1)
echo "$out" | grep -q "^ALPN protocol: http/1.1$" || fail "http/1.1 ALPN"
out=$(sclient "$H" -tls1_2 -cipher AES128-SHA)
echo "$out" | grep -q "^New, TLSv1.2, Cipher is AES128-SHA" && fail "a non-forward-secret cipher was accepted"
for h in $HOSTS; do
    sclient "$h" -tls1_2 | grep -q "Verify return code: 0 (ok)" || fail "$h: certificate does not verify"
done

note "relays over HTTP/2 and HTTP/1.1, counted exactly"
scripts_flush() { "$CCGW_ROOT/scripts/stack" flush >"$IT_DIR/flush.log" 2>&1 || { cat "$IT_DIR/flush.log"; fail "flush"; }; }
scripts_flush
before=$(relays_by_host)
inv_before=$(non_relays invalid_host)
N2=7; N1=5
for h in $HOSTS; do
    urls=(); for i in $(seq $N2); do urls+=("https://$h:$HTTPS/"); done
    # --parallel over HTTP/2: one connection, several streams at once.
    out=$(curl -s --cacert "$CA" $(resolve "$h") --http2 --parallel --parallel-max 10 --no-progress-meter \
        -H 'Content-Type: application/json' -d "$(body_for "$h")" \
        -w '%{http_code} %{http_version} %{num_connects}\n' -o /dev/null "${urls[@]}")
    assert_eq "$(echo "$out" | awk '$1 == 200 && $2 == 2' | wc -l)" $N2 "$h: $N2 HTTP/2 answers 200"
    conns=$(echo "$out" | awk '{ n += $3 } END { print n }')
    [ "$conns" -le 2 ] || fail "$h: $N2 HTTP/2 requests took $conns connections"
    for i in $(seq $N1); do
        out=$(curl -s --cacert "$CA" $(resolve "$h") --http1.1 -H 'Content-Type: application/json' \
            -d "$(body_for "$h")" -w '%{http_code} %{http_version}' -o "$IT_DIR/body" "https://$h:$HTTPS/")
        assert_eq "$out" "200 1.1" "$h: HTTP/1.1 answer"
        grep -q '"result"' "$IT_DIR/body" || fail "$h: no JSON-RPC result: $(cat "$IT_DIR/body")"
    done
done
note "an unknown host over TLS"
code=$(curl -s --cacert "$CA" $(resolve "nobody.0021.$D") --http2 -o /dev/null -w '%{http_code}' \
    -d "$BODY" "https://nobody.0021.$D:$HTTPS/")
assert_eq "$code" 404 "unknown account over TLS -> 404"
scripts_flush
after=$(relays_by_host)
for h in $HOSTS; do
    b=$(echo "$before" | awk -F= -v h="$h" '$1 == h { print $2 }')
    a=$(echo "$after" | awk -F= -v h="$h" '$1 == h { print $2 }')
    assert_eq "$(( ${a:-0} - ${b:-0} ))" $((N2 + N1)) "$h: relays in PostgreSQL"
done
assert_eq "$(echo "$after" | grep -c "nobody")" 0 "the unknown host is no relay"
assert_eq "$(( $(non_relays invalid_host) - inv_before ))" 1 "the unknown host is one invalid_host"
# The HTTP/2 streams of one connection are one request each in the edge log.
edge_log=$RUN/logs/edge/requests.log
[ -f "$edge_log" ] || edge_log=$(ls "$RUN"/logs/edge/*.log | head -n 1)
ports=$(grep "HTTP/2.0\"" "$edge_log" | grep -F "{$H:$HTTPS}" | awk '{ print $1 }' | sort | uniq -c | sort -rn | head -n 1)
assert_eq "$(echo "$ports" | awk '{ print $1 }')" $N2 "edge log: the $N2 HTTP/2 requests of $H came on one connection"

note "bad Host, upgrades, CONNECT: refused, own reasons, no backend reached"
sess_before=$(backend_sessions)
REASONS="bad_host upgrade_refused connect_refused bad_request"
declare -A want=([bad_host]=0 [upgrade_refused]=0 [connect_refused]=0 [bad_request]=0)
declare -A base
for r in $REASONS; do base[$r]=$(non_relays $r); done
tls() { curl -s --cacert "$CA" $(resolve "$H") -o /dev/null -w '%{http_code}' "$@"; }
assert_eq "$(tls --http1.1 -H "Host: evil.example, $H" -d "$BODY" "https://$H:$HTTPS/")" 400 "comma in Host (TLS)"
want[bad_host]=$((want[bad_host] + 1))
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: evil.example, $H" -d "$BODY" "http://127.0.0.1:$EDGE/")" 400 "comma in Host (plain)"
want[bad_host]=$((want[bad_host] + 1))
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $H evil" -d "$BODY" "http://127.0.0.1:$EDGE/")" 400 "blank in Host"
want[bad_host]=$((want[bad_host] + 1))
code=$(printf 'POST / HTTP/1.1\r\nHost: %s\x01\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' "$H" ${#BODY} "$BODY" \
    | socat -t 5 - "TCP:127.0.0.1:$EDGE" | head -n 1 | awk '{ print $2 }')
assert_eq "$code" 400 "control character in Host"
want[bad_host]=$((want[bad_host] + 1))
code=$(printf 'POST / HTTP/1.1\r\nHost: %s\r\nHost: evil.example\r\nContent-Length: 0\r\nConnection: close\r\n\r\n' "$H" \
    | socat -t 5 - "TCP:127.0.0.1:$EDGE" | head -n 1 | awk '{ print $2 }')
assert_eq "$code" 400 "two Host headers (HAProxy's parser refuses them at the edge)"
want[bad_request]=$((want[bad_request] + 1)) # counted by the edge, where it ended
assert_eq "$(tls --http1.1 -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
    -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' "https://$H:$HTTPS/")" 403 "WebSocket upgrade (TLS)"
want[upgrade_refused]=$((want[upgrade_refused] + 1))
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' --http1.1 -H "Host: $H" -H 'Connection: Upgrade, HTTP2-Settings' \
    -H 'Upgrade: h2c' -H 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA' "http://127.0.0.1:$EDGE/")" 403 "h2c upgrade"
want[upgrade_refused]=$((want[upgrade_refused] + 1))
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $H" -H 'Connection: Upgrade' -H 'Upgrade: foo/1' "http://127.0.0.1:$EDGE/")" 403 "any other upgrade"
want[upgrade_refused]=$((want[upgrade_refused] + 1))
code=$(printf 'CONNECT %s:443 HTTP/1.1\r\nHost: %s:443\r\nConnection: close\r\n\r\n' "$H" "$H" \
    | socat -t 5 - "TCP:127.0.0.1:$EDGE" | head -n 1 | awk '{ print $2 }')
assert_eq "$code" 405 "CONNECT"
want[connect_refused]=$((want[connect_refused] + 1))
assert_eq "$(backend_sessions)" "$sess_before" "no refused request reached a chain backend"
scripts_flush
for r in $REASONS; do
    assert_eq "$(( $(non_relays $r) - base[$r] ))" "${want[$r]}" "non-relays $r in PostgreSQL"
done

note "npm clients over HTTPS (NODE_EXTRA_CA_CERTS, names resolved to loopback)"
CLIENTS=$CCGW_ROOT/tests/node-clients
if [ ! -d "$CLIENTS/node_modules/ethers" ] || [ ! -d "$CLIENTS/node_modules/bitcoin-core" ] || [ ! -d "$CLIENTS/node_modules/ws" ]; then
    (cd "$CLIENTS" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci"
fi
chain_id=$(curl -s --cacert "$CA" $(resolve "894334g9f403.0001.$D") -H 'Content-Type: application/json' \
    -d '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' "https://894334g9f403.0001.$D:$HTTPS/" \
    | jq -r .result)
export NODE_EXTRA_CA_CERTS=$CA
node -r "$CLIENTS/resolve-local.js" "$CLIENTS/clients.js" evm "https://894334g9f403.0001.$D:$HTTPS/" "$((chain_id))" \
    || fail "ethers over HTTPS"
# The client mines and reads back: one node, so that no read lands on a peer
# that has not synced the new blocks yet.
for t in http0 http1; do
    echo "set server be_0021/btc-b state maint" | socat -t 5 - "UNIX-CONNECT:$RUN/data/$t.sock" >/dev/null
done
node -r "$CLIENTS/resolve-local.js" "$CLIENTS/clients.js" bitcoin "https://894334g9f403.0021.$D:$HTTPS" nobody nothing --proxied \
    || fail "bitcoin-core over HTTPS"
unset NODE_EXTRA_CA_CERTS
for t in http0 http1; do
    echo "set server be_0021/btc-b state ready" | socat -t 5 - "UNIX-CONNECT:$RUN/data/$t.sock" >/dev/null
done

note "live rotation under HTTPS load: cc-routes rotate, no restart, no failed request"
edge_pid() { echo "show info" | socat -t 5 - "UNIX-CONNECT:$RUN/data/edge.sock" | awk -F': ' '$1 == "Pid" { print $2 }'; }
served_serial() { sclient "$H" -tls1_3 | openssl x509 -noout -serial | cut -d= -f2; }
tls_metric() {
    curl -fsS "http://127.0.0.1:$((8404 + OFF))/metrics/tls" \
        | awk -v c="certificate=\"$1\"" 'index($0, c) { print $2 }'
}
scripts_flush
relays_h() { relays_by_host | awk -F= -v h="$H" '$1 == h { print $2 }'; }
relays_before=$(relays_h)
pid0=$(edge_pid); serial0=$(served_serial)
[ -n "$pid0" ] && [ -n "$serial0" ] || fail "edge pid or serial unknown"
assert_eq "$(tls_metric chain-0021)" "$(date -d "$(openssl x509 -in "$RUN/tls/0021.crt" -noout -enddate | cut -d= -f2)" +%s)" \
    "notAfter metric before rotation"
wrk_relay_lua "$IT_DIR/relay.lua" "$H" getblockcount "$IT_DIR/stop"
# wrk sends SNI 127.0.0.1: the edge answers with its default certificate,
# chain-0021, the one rotated here (first in the crt-list).
wrk -t2 -c16 -d20s -s "$IT_DIR/relay.lua" "https://127.0.0.1:$HTTPS/" >"$IT_DIR/wrk.out" 2>&1 &
wrk_pid=$!
# New connections all along, each verifying the certificate it is served.
( while [ ! -f "$IT_DIR/stop" ]; do
      curl -s --cacert "$CA" $(resolve "$H") --http2 -o /dev/null -w '%{http_code} %{ssl_verify_result}\n' \
          -d "$BODY" "https://$H:$HTTPS/" || echo "curl-failed $?"
  done >"$IT_DIR/handshakes.out" ) &
hs_pid=$!
sleep 3
"$CCGW_ROOT/scripts/local-ca" "$RUN/tls" issue "$D" 0021 30 || fail "local-ca issue"
new_serial=$(openssl x509 -in "$RUN/tls/0021.crt" -noout -serial | cut -d= -f2)
"$CCGW_BIN/cc-routes" rotate --config "$RUN/ccgw.yaml" --out "$RUN/haproxy" >"$IT_DIR/rotate.out" 2>&1 \
    || { cat "$IT_DIR/rotate.out"; fail "cc-routes rotate"; }
grep -q "0 certificate(s) added, 1 rotated, 1 already served" "$IT_DIR/rotate.out" || fail "rotate: $(cat "$IT_DIR/rotate.out")"
sleep 3
touch "$IT_DIR/stop"
wait "$wrk_pid" || fail "wrk: $(cat "$IT_DIR/wrk.out")"
wait "$hs_pid"
cat "$IT_DIR/wrk.out"
assert_eq "$(wrk_field "$IT_DIR/wrk.out" bad)" 0 "wrk: no failed answer during the rotation"
assert_eq "$(wrk_field "$IT_DIR/wrk.out" errors)" 0 "wrk: no socket error during the rotation"
[ "$(wrk_field "$IT_DIR/wrk.out" relays)" -gt 1000 ] || fail "wrk made too few relays: $(cat "$IT_DIR/wrk.out")"
hs=$(wc -l <"$IT_DIR/handshakes.out")
[ "$hs" -gt 10 ] || fail "too few new connections during the rotation: $hs"
assert_eq "$(grep -cv '^200 0$' "$IT_DIR/handshakes.out")" 0 "all $hs new verified connections answered 200"
assert_eq "$(edge_pid)" "$pid0" "the same HAProxy process serves"
assert_eq "$(served_serial)" "$new_serial" "the new certificate is served"
[ "$new_serial" != "$serial0" ] || fail "the serial did not change"
assert_eq "$(tls_metric chain-0021)" "$(date -d "$(openssl x509 -in "$RUN/tls/0021.crt" -noout -enddate | cut -d= -f2)" +%s)" \
    "notAfter metric follows the rotation"
"$CCGW_BIN/cc-routes" rotate --config "$RUN/ccgw.yaml" --out "$RUN/haproxy" | grep -q "0 certificate(s) added, 0 rotated, 2 already served" \
    || fail "a second rotate changes nothing"
# Every answer wrk and the handshake loop got was one relay, none lost or
# doubled across the rotation.
scripts_flush
assert_eq "$(( $(relays_h) - relays_before ))" "$(( $(wrk_field "$IT_DIR/wrk.out" relays) + hs ))" \
    "relays in PostgreSQL = wrk's JSON-RPC answers + the new connections' answers"
echo "PASS"
