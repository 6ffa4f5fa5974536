#!/bin/bash
# cc-routes apply against running HAProxy tiers under a bounded load: a host
# added, a host removed, a chain server replaced by another, a server moved to
# a new address and re-weighted; zero failed requests, no restart, files
# rewritten. Then a new chain: files rendered, exit 3 (restart needed).
source "$(dirname "$0")/lib.sh"
it_setup
source "$CCGW_ROOT/tests/data/routes/routes_lib.sh"

A=$(free_port); B=$(free_port); C=$(free_port); D=$(free_port); E=$(free_port)
EDGE=$(free_port); H0=$(free_port); H1=$(free_port)
DOM=chains.it.test

# write_config FILE: chains and accounts come from $CHAIN21, $CHAIN01, $ACCOUNTS.
write_config() {
    cat >"$1" <<YAML
gateway: {name: gw-it, routing_domain: $DOM, data_dir: $IT_DIR}
chains:
  - id: "0021"
    backends:
$CHAIN21
  - id: "0001"
    backends:
$CHAIN01
$EXTRA_CHAIN
providers:
  - name: acme
    accounts:
$ACCOUNTS
tiers:
  - {name: edge, role: edge, bind: "127.0.0.1:$EDGE", stats_socket: $IT_DIR/edge.sock}
  - {name: http0, role: http, bind: "127.0.0.1:$H0", stats_socket: $IT_DIR/http0.sock}
  - {name: http1, role: http, backup: true, bind: "127.0.0.1:$H1", stats_socket: $IT_DIR/http1.sock}
haproxy: {timeout_connect_ms: 1000, timeout_client_ms: 5000, timeout_server_ms: 5000, retries: 3, maxconn: 1000}
YAML
}

CHAIN21="      - {name: n0021a, address: \"127.0.0.1:$A\"}"
CHAIN01="      - {name: n0001a, address: \"127.0.0.1:$C\"}
      - {name: n0001b, address: \"127.0.0.1:$D\"}"
EXTRA_CHAIN=""
ACCOUNTS="      - {id: acct1, chains: [\"0021\", \"0001\"]}
      - {id: acct2, chains: [\"0021\"]}"
write_config "$IT_DIR/v1.yaml"

for b in A B C D E; do backend_start "$b" "${!b}"; wait_port "${!b}"; done
"$CC_ROUTES" render --config "$IT_DIR/v1.yaml" --out "$IT_DIR/out" || fail "render v1"
haproxy_start http0 "$IT_DIR/out/http0.cfg"
haproxy_start http1 "$IT_DIR/out/http1.cfg"
haproxy_start edge "$IT_DIR/out/edge.cfg"
wait_port "$EDGE"
for t in http0 http1; do
    wait_status "$IT_DIR/$t.sock" be_0021 n0021a UP
    wait_status "$IT_DIR/$t.sock" be_0001 n0001b UP
done
wait_status "$IT_DIR/edge.sock" be_http http0 UP
pids_before="${IT_PIDS[http0]} ${IT_PIDS[http1]} ${IT_PIDS[edge]}"

assert_eq "$(http_tag "$EDGE" "acct1.0021.$DOM")" A "v1: acct1.0021 on n0021a"
assert_eq "$(http_code "$EDGE" "acct2.0021.$DOM")" 200 "v1: acct2.0021 routed"
assert_eq "$(http_code "$EDGE" "acct3.0021.$DOM")" 404 "v1: acct3.0021 unknown"

note "v2 applied under load"
CHAIN21="      - {name: n0021b, address: \"127.0.0.1:$B\"}"
CHAIN01="      - {name: n0001a, address: \"127.0.0.1:$C\", weight: 2}
      - {name: n0001b, address: \"127.0.0.1:$E\"}"
ACCOUNTS="      - {id: acct1, chains: [\"0021\", \"0001\"]}
      - {id: acct3, chains: [\"0021\"]}"
write_config "$IT_DIR/v2.yaml"

python3 "$ROUTES_DATA/client.py" load "$EDGE" "acct1.0021.$DOM" 10 4 >"$IT_DIR/load21.txt" &
load21=$!
python3 "$ROUTES_DATA/client.py" load "$EDGE" "acct1.0001.$DOM" 10 4 >"$IT_DIR/load01.txt" &
load01=$!
sleep 2
start=$(date +%s.%N)
"$CC_ROUTES" apply --config "$IT_DIR/v2.yaml" --out "$IT_DIR/out" --wait-up 15 --drain 15 \
    2>&1 | tee "$IT_DIR/apply.txt"
rc=${PIPESTATUS[0]}
echo "apply took $(echo "$(date +%s.%N) - $start" | bc)s"
assert_eq "$rc" 0 "cc-routes apply exit status"
wait "$load21" "$load01"
cat "$IT_DIR/load21.txt" "$IT_DIR/load01.txt"
assert_eq "$(grep -o 'failed=[0-9]*' "$IT_DIR/load21.txt")" failed=0 "chain 0021 load: no failed request"
assert_eq "$(grep -o 'failed=[0-9]*' "$IT_DIR/load01.txt")" failed=0 "chain 0001 load: no failed request"
grep -q 'tags=A:[0-9]*,B:[0-9]*$' "$IT_DIR/load21.txt" || fail "load did not move from A to B"
grep -q 'E:[0-9]*' "$IT_DIR/load01.txt" || fail "load did not reach the moved server"
ok=$(grep -o 'ok=[0-9]*' "$IT_DIR/load21.txt" | cut -d= -f2)
[ "$ok" -gt 200 ] || fail "load too small to mean anything ($ok requests)"

note "live state"
assert_eq "$(http_tag "$EDGE" "acct3.0021.$DOM")" B "added host routed to the new server"
assert_eq "$(http_code "$EDGE" "acct2.0021.$DOM")" 404 "removed host rejected"
assert_eq "$(http_tag "$EDGE" "acct1.0021.$DOM")" B "replaced server serves"
for t in http0 http1; do
    assert_eq "$(hapi "$IT_DIR/$t.sock" "show servers state be_0021" | awk 'NR > 2 && NF { print $4 }' | tr '\n' ' ')" "n0021b " "$t: be_0021 servers"
    assert_eq "$(hapi "$IT_DIR/$t.sock" "show servers state be_0001" | awk 'NR > 2 && NF { print $4 ":" $19 ":" $8 }' | tr '\n' ' ')" "n0001a:$C:2 n0001b:$E:1 " "$t: be_0001 servers, ports and weights"
    assert_eq "$(hapi "$IT_DIR/$t.sock" "show map $IT_DIR/out/hosts.map" | awk 'NF { print $2 }' | sort | tr '\n' ' ')" "acct1.0001.$DOM acct1.0021.$DOM acct3.0021.$DOM " "$t: live map"
done
assert_eq "${IT_PIDS[http0]} ${IT_PIDS[http1]} ${IT_PIDS[edge]}" "$pids_before" "same processes"
for n in http0 http1 edge; do kill -0 "${IT_PIDS[$n]}" || fail "$n died"; done
grep -qi "reload\|exiting" "$IT_DIR/http0.log" && fail "http0 restarted"
echo "ok: no restart"

note "files rewritten for the next restart"
assert_eq "$(cut -d' ' -f1 "$IT_DIR/out/hosts.map" | tr '\n' ' ')" "acct1.0001.$DOM acct1.0021.$DOM acct3.0021.$DOM " "hosts.map"
grep -q "server n0021b 127.0.0.1:$B " "$IT_DIR/out/http0.cfg" || fail "http0.cfg lacks n0021b"
grep -q "n0021a" "$IT_DIR/out/http0.cfg" && fail "http0.cfg still has n0021a"
cmp -s "$IT_DIR/v2.yaml" "$IT_DIR/out/routes.state.yaml" || fail "state is not v2"
echo "ok: files"

note "apply again: nothing to do"
"$CC_ROUTES" apply --config "$IT_DIR/v2.yaml" --out "$IT_DIR/out" 2>&1 | tee "$IT_DIR/apply2.txt"
grep -q "servers_added=0 servers_removed=0 servers_moved=0 weights_changed=0" "$IT_DIR/apply2.txt" \
    || fail "second apply changed servers"

note "a new chain needs a restart"
EXTRA_CHAIN="  - id: \"0042\"
    backends:
      - {name: n0042a, address: \"127.0.0.1:$A\"}"
ACCOUNTS="$ACCOUNTS
      - {id: acct4, chains: [\"0042\"]}"
write_config "$IT_DIR/v3.yaml"
"$CC_ROUTES" apply --config "$IT_DIR/v3.yaml" --out "$IT_DIR/out" 2>"$IT_DIR/apply3.txt"
rc=$?
cat "$IT_DIR/apply3.txt"
assert_eq "$rc" 3 "exit status: restart needed"
grep -q "restart needed: new chain backend be_0042" "$IT_DIR/apply3.txt" || fail "reason not given"
grep -q "^backend be_0042" "$IT_DIR/out/http0.cfg" || fail "new backend not in the files"
assert_eq "$(http_code "$EDGE" "acct4.0042.$DOM")" 404 "new chain's host not live before the restart"
stop_bg http0
haproxy_start http0 "$IT_DIR/out/http0.cfg"
wait_status "$IT_DIR/http0.sock" be_0042 n0042a UP
wait_status "$IT_DIR/edge.sock" be_http http0 UP
assert_eq "$(http_tag "$EDGE" "acct4.0042.$DOM")" A "new chain live after the restart"
echo PASS
