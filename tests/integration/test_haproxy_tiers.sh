#!/bin/bash
# The HAProxy trio rendered by cc-routes, against real HAProxy on loopback:
# host routing and the reject path, Host normalisation, the log format, one
# persistent connection carrying good/bad/good hosts (the seed's attack), and
# edge failover from http0 to the backup http1 and back.
source "$(dirname "$0")/lib.sh"
it_setup
source "$CCGW_ROOT/tests/data/routes/routes_lib.sh"

B21=$(free_port); B01=$(free_port)
EDGE=$(free_port); H0=$(free_port); H1=$(free_port); STATS=$(free_port)
D=chains.it.test
GOOD=894334g9f403.0021.$D
cat >"$IT_DIR/ccgw.yaml" <<YAML
gateway:
  name: gw-it
  routing_domain: $D
  data_dir: $IT_DIR
chains:
  - id: "0021"
    auth: {user: rpcuser, password: "s3cret:pw"}
    backends:
      - {name: n0021a, address: "127.0.0.1:$B21"}
  - id: "0001"
    backends:
      - {name: n0001a, address: "127.0.0.1:$B01"}
providers:
  - name: acme
    accounts:
      - {id: 894334G9F403, chains: ["0021", "0001"]}
tiers:
  - {name: edge, role: edge, bind: "[::]:$EDGE", stats_bind: "127.0.0.1:$STATS", stats_socket: $IT_DIR/edge.sock}
  - {name: http0, role: http, bind: "127.0.0.1:$H0", stats_socket: $IT_DIR/http0.sock}
  - {name: http1, role: http, backup: true, bind: "127.0.0.1:$H1", stats_socket: $IT_DIR/http1.sock}
haproxy: {timeout_connect_ms: 1000, timeout_client_ms: 5000, timeout_server_ms: 5000, retries: 2}
YAML

"$CC_ROUTES" render --config "$IT_DIR/ccgw.yaml" --out "$IT_DIR/out" || fail "render"
assert_eq "$(cat "$IT_DIR/out/hosts.map")" "894334g9f403.0001.$D 0001/894334g9f403
$GOOD 0021/894334g9f403" "map: lower-case, sorted, one line per account and chain, valued <chain>/<account>"

backend_start b21 "$B21"; backend_start b01 "$B01"
wait_port "$B21"; wait_port "$B01"
haproxy_start http0 "$IT_DIR/out/http0.cfg"
haproxy_start http1 "$IT_DIR/out/http1.cfg"
haproxy_start edge "$IT_DIR/out/edge.cfg"
wait_port "$EDGE"
wait_status "$IT_DIR/http0.sock" be_0021 n0021a UP
wait_status "$IT_DIR/http1.sock" be_0021 n0021a UP
wait_status "$IT_DIR/edge.sock" be_http http0 UP

note "routing"
assert_eq "$(http_tag "$EDGE" "$GOOD")" b21 "valid host -> its chain's backend"
assert_eq "$(http_tag "$EDGE" "894334g9f403.0001.$D")" b01 "second chain"
auth=$(curl -s -H "Host: $GOOD" "http://127.0.0.1:$EDGE/" | python3 -c 'import json,sys; print(json.load(sys.stdin)["authorization"])')
assert_eq "$auth" "Basic $(printf 'rpcuser:s3cret:pw' | base64)" "HAProxy adds the chain's credentials"
assert_eq "$(http_code "$EDGE" "unknown.0021.$D")" 404 "unknown account -> 404"
assert_eq "$(http_code "$EDGE" "894334g9f403.0021.other.test")" 404 "other routing domain -> 404"
assert_eq "$(http_code "$EDGE" "894334g9f403.9999.$D")" 404 "unknown chain -> 404"
assert_eq "$(python3 "$ROUTES_DATA/client.py" nohost "$EDGE")" 404 "no Host header -> 404"
assert_eq "$(http_tag "$EDGE" "894334G9F403.0021.CHAINS.IT.TEST")" b21 "upper-case Host is routed"
assert_eq "$(http_tag "$EDGE" "$GOOD:$EDGE")" b21 "host:port is routed (port stripped)"
assert_eq "$(http_code "$EDGE" "[::1]:$EDGE")" 400 "IPv6 literal Host (two colons) -> 400, refused as bad_host"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $GOOD" "http://[::1]:$EDGE/")" 200 "IPv6 client"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: evil.0021.$D" "http://127.0.0.1:$EDGE/" --request-target "http://$GOOD/")" 400 "absolute URI naming another host than Host -> 400"
assert_eq "$(http_code "$EDGE" "$GOOD.")" 404 "trailing-dot Host -> 404 (not normalised)"
assert_eq "$(http_code "$H0" "$GOOD")" 000 "http0 takes only PROXY-protocol connections from the edge"

note "one persistent connection: good, bad, good"
out=$(python3 "$ROUTES_DATA/client.py" persistent "$EDGE" "$GOOD" "evil.0021.$D" "$GOOD")
assert_eq "$out" "200 b21
404 -
200 b21" "routed request by request"
sleep 0.5
# Every client request of the persistent connection, on http0, same client port.
grep -E "\{(evil\.0021|894334g9f403\.0021)\.$D\}" "$IT_DIR/http0.log" | tail -n 3 >"$IT_DIR/persist.txt"
cat "$IT_DIR/persist.txt"
assert_eq "$(awk '{print $1}' "$IT_DIR/persist.txt" | sort -u | wc -l)" 1 "same client address:port on all three lines"
assert_eq "$(awk '{print $4}' "$IT_DIR/persist.txt" | tr '\n' ' ')" "be_0021/n0021a be_reject/<NOSRV> be_0021/n0021a " "backend per request in the log"

note "log format"
# the HTTP tiers log at answer-header time (option logasap): Ta and the bytes
# are those of that instant, with a leading '+'
line=$(grep -F "{unknown.0021.$D}" "$IT_DIR/http0.log" | head -n 1)
echo "$line"
[[ "$line" =~ ^\<6\>127\.0\.0\.1:[0-9]+\ \[[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9:.]+\]\ fe_http0\ be_reject/\<NOSRV\>\ [-0-9/]+\+[0-9]+\ 404\ \+[0-9]+\ -\ -\ PR--\ [0-9/]+\ [0-9/]+\ -\ \{unknown\.0021\.$D\}\ \"GET\ /\ HTTP/1\.1\"\ [0-9A-F]+:[0-9A-F]+_[0-9A-F]+:[0-9A-F]+_[0-9A-F]+_[0-9A-F]+:[0-9A-F]+$ ]] \
    || fail "reject line does not match the httplog + request id format"
echo "ok: reject line format"
grep -q "{}" "$IT_DIR/http0.log" || fail "no log line for the request without Host"
grep -qF "{894334G9F403.0021.CHAINS.IT.TEST} " "$IT_DIR/http0.log" || fail "upper-case Host not logged as sent"
grep -qE '^<6>::1:[0-9]+ .* be_0021/n0021a ' "$IT_DIR/http0.log" || fail "IPv6 client address not in http0's log"
echo "ok: IPv6 client address reaches http0's log"
rid=$(curl -s -H "Host: $GOOD" "http://127.0.0.1:$EDGE/" | python3 -c 'import json,sys; print(json.load(sys.stdin)["request_id"])')
sleep 0.3
grep -q " $rid\$" "$IT_DIR/edge.log" || fail "request id $rid not in the edge log"
grep -q " $rid\$" "$IT_DIR/http0.log" || fail "request id $rid not in the http0 log"
echo "ok: one request id across edge, http0 and the backend ($rid)"
curl -fsS "http://127.0.0.1:$STATS/metrics" | grep -q '^haproxy_backend_active_servers{proxy="be_http"} 1' \
    || fail "Prometheus exporter on the edge stats port"
echo "ok: Prometheus exporter"
hapi "$IT_DIR/edge.sock" "show cli level" | grep -q admin || fail "edge stats socket not admin"
echo "ok: edge stats socket at admin level"

note "failover: stop http0"
stop_bg http0
wait_status "$IT_DIR/edge.sock" be_http http0 DOWN
before=$(grep -c "fe_http1 be_0021" "$IT_DIR/http1.log" || true)
for i in 1 2 3 4 5; do
    assert_eq "$(http_tag "$EDGE" "$GOOD")" b21 "request $i with http0 down"
done
after=$(grep -c "fe_http1 be_0021" "$IT_DIR/http1.log" || true)
assert_eq "$((after - before))" 5 "http1 served them"
grep -q "be_http/http1 " "$IT_DIR/edge.log" || fail "edge log does not show http1"

note "http0 back"
mv "$IT_DIR/http0.log" "$IT_DIR/http0-first.log"
haproxy_start http0 "$IT_DIR/out/http0.cfg"
wait_status "$IT_DIR/edge.sock" be_http http0 UP
before=$(grep -c "fe_http1 be_0021" "$IT_DIR/http1.log" || true)
for i in 1 2 3; do
    assert_eq "$(http_tag "$EDGE" "$GOOD")" b21 "request $i after http0 returned"
done
sleep 0.3
assert_eq "$(grep -c "fe_http0 be_0021" "$IT_DIR/http0.log")" 3 "traffic is back on http0"
assert_eq "$(grep -c "fe_http1 be_0021" "$IT_DIR/http1.log" || true)" "$before" "http1 idle again"
echo "PASS"
