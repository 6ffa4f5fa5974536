#!/bin/bash
# End to end: scripts/stack up on free ports (twice), a real Prometheus
# scraping every target of deploy/prometheus/ with the alert rules loaded and
# quiet, a known mix of traffic through the edge (valid, invalid hosts, the
# persistent-socket attack, a stopped chain giving 503s, which makes the
# backend-down and node-not-ready alerts fire), scripts/stack flush, and
# `relaystats query --format json` totals equal the expected relays exactly;
# scripts/stack down leaves no process behind. Then two scripts/stack up at
# the same instant: both exit 0 (one waits for run/stack.lock), one healthy
# stack (one HAProxy per tier, one listener per port), no daemon holding the
# lock, and down again leaves nothing.
#
# Prometheus runs a generated copy of deploy/prometheus/: the stack's ports,
# a 1 s scrape and evaluation interval, and every alert's `for:` cut to 1s.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/prom.sh"
it_setup

# Every DESIGN.md port shifted by one offset where all are free (stack_start
# tries another offset when a port is taken meanwhile).
stack_start
"$CCGW_ROOT/scripts/stack" up >"$IT_DIR/up2.log" 2>&1 || { cat "$IT_DIR/up2.log"; fail "second stack up"; }
grep -q "already running" "$IT_DIR/up2.log" || fail "second up did not notice the running stack"
grep -q "curl -s -H 'Host: 894334g9f403.0021.chains.local.test'" "$IT_DIR/up.log" \
    || { cat "$IT_DIR/up.log"; fail "up does not print a curl through the edge"; }
grep -q "curl -s --cacert $CCGW_RUN_DIR/tls/ca.crt --resolve 894334g9f403.0021.chains.local.test:$((8443 + OFF)):127.0.0.1" \
    "$IT_DIR/up.log" || { cat "$IT_DIR/up.log"; fail "up does not print an https curl through the edge"; }

note "Prometheus against the stack"
PROM_SCRAPE_INTERVAL=1s PROM_PORT_OFFSET=$OFF PROM_RULE_FOR=1s prom_start "$CCGW_ROOT/deploy/prometheus/prometheus.yml"
prom_wait_up 60
# Targets the stack runs: each cc-gateway and the HAProxy under it, each
# cc-node, relaystats (PostgreSQL, Redis and the keeper are not scraped).
want=0
for f in "$CCGW_RUN_DIR"/pids/*.pid; do
    case $(basename "$f" .pid) in
        gw-*) want=$((want + 2)) ;; postgres|redis|keeper) ;; *) want=$((want + 1)) ;;
    esac
done
want=$((want + 1))   # the edge's certificate expiry (/metrics/tls)
assert_eq "$PROM_TARGETS" "$want" "Prometheus targets (every process of the stack that serves /metrics)"

sleep 2   # a few rule evaluations on the healthy stack
prom_rules >"$IT_DIR/rules.txt"
cat "$IT_DIR/rules.txt"
assert_eq "$(wc -l <"$IT_DIR/rules.txt")" "$(grep -c '^ *- alert:' "$CCGW_ROOT/deploy/prometheus/alerts.yml")" \
    "alert rules loaded"
for a in CcgwHaproxyLogsDropped CcgwFlushFailing CcgwHaproxyBackendDown CcgwNodeNotReady; do
    grep -q "^$a " "$IT_DIR/rules.txt" || fail "alert rule $a is not loaded"
done
assert_eq "$(awk '$2 != "inactive" || $3 != "ok"' "$IT_DIR/rules.txt")" "" "alerts not inactive on a healthy stack"

# Drift: every metric name of the alert rules and the dashboard is exported
# by some target of the running stack.
prom_metric_names >"$IT_DIR/scraped.txt"
prom_used_metrics "$CCGW_ROOT/deploy/prometheus/alerts.yml" "$CCGW_ROOT/deploy/grafana/ccgw-dashboard.json" \
    >"$IT_DIR/used.txt"
[ -s "$IT_DIR/used.txt" ] || fail "no metric names found in the rules and the dashboard"
missing=$(comm -23 <(sort -u "$IT_DIR/used.txt") <(sort -u "$IT_DIR/scraped.txt"))
assert_eq "$missing" "" "metric names of the rules and dashboard that no target exports"
note "$(wc -l <"$IT_DIR/used.txt") metric names of the rules and dashboard, all scraped"

# Every live page of ours passes Prometheus' own parser and linter.
for port in $((9100 + OFF)) $((9101 + OFF)) $((9102 + OFF)) $((8090 + OFF)) \
            $((18332 + OFF)) $((18333 + OFF)) $((18334 + OFF)) $((18335 + OFF)); do
    curl -fsS --max-time 5 "http://127.0.0.1:$port/metrics" >"$IT_DIR/page-$port.prom" \
        || fail "no /metrics on :$port"
    out=$(promtool check metrics <"$IT_DIR/page-$port.prom" 2>&1) \
        || fail "promtool check metrics on :$port: $out"
    assert_eq "$out" "" "promtool findings on the live page of :$port"
done

q() {
    "$CCGW_BIN/relaystats" --config "$CCGW_RUN_DIR/ccgw.yaml" query --from -1h --to now "$@" \
        --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'
}

# `up` itself sends one relay through the edge to prove routing: the
# baseline, flushed, is subtracted.
"$CCGW_ROOT/scripts/stack" flush >"$IT_DIR/flush0.log" 2>&1 || { cat "$IT_DIR/flush0.log"; fail "first flush"; }
base_0021=$(q --chain 0021); base_0001=$(q --chain 0001)
note "baseline: chain 0021 $base_0021, chain 0001 $base_0001"
PG_URL="postgresql://postgres@127.0.0.1:$((55432 + OFF))/ccgw"
nonrelays() { psql_q "SELECT reason || '=' || sum(requests) FROM non_relay_counts GROUP BY reason ORDER BY reason" | tr '\n' ' '; }
note "non-relays before: $(nonrelays)"
nr() { psql_q "SELECT coalesce(sum(requests), 0) FROM non_relay_counts WHERE reason = '$1'"; }
base_invalid=$(nr invalid_host); base_down=$(( $(nr unrouted) + $(nr server_error) ))

# The traffic mix; the python client prints the relays it expects per chain.
python3 - "$EDGE" >"$IT_DIR/expected.json" <<'EOF'
import http.client, json, socket, sys
edge = int(sys.argv[1])
D = "chains.local.test"
exp = {"0021": 0, "0001": 0}
def rpc(conn, host, method, chain=None):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": []})
    conn.request("POST", "/", body, {"Host": host, "Content-Type": "application/json"})
    r = conn.getresponse(); r.read()
    if chain and 200 <= r.status < 500:
        exp[chain] += 1
    return r.status
c = http.client.HTTPConnection("127.0.0.1", edge, timeout=10)
for i in range(40):
    assert rpc(c, f"894334g9f403.0021.{D}", "getblockcount", "0021") == 200
for i in range(30):
    assert rpc(c, f"5e2a91c07d3b.0001.{D}", "eth_blockNumber", "0001") == 200
for i in range(10):   # upper case and :port are the same host
    assert rpc(c, f"A1B2C3D4E5F6.0021.{D.upper()}:{edge}", "getblockcount", "0021") == 200
for i in range(15):   # invalid hosts: refused, never relays
    assert rpc(c, f"nobody{i}.0021.{D}", "getblockcount") == 404
assert rpc(c, "894334g9f403.0021.other.test", "getblockcount") == 404
# The persistent-socket attack: good, bad, good on one connection.
s = socket.create_connection(("127.0.0.1", edge))
body = b'{"jsonrpc":"2.0","id":1,"method":"getblockcount","params":[]}'
for host in (f"894334g9f403.0021.{D}", f"evil.0021.{D}", f"894334g9f403.0021.{D}"):
    s.sendall(b"POST / HTTP/1.1\r\nHost: " + host.encode() + b"\r\nContent-Type: application/json\r\n"
              b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
statuses = []
buf = b""
while len(statuses) < 3:
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
    while b"\r\n\r\n" in buf:
        head, rest = buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for l in lines[1:]:
            if l.lower().startswith(b"content-length:"):
                length = int(l.split(b":")[1])
        if len(rest) < length:
            break
        statuses.append(status)
        buf = rest[length:]
s.close()
assert statuses[0] == 200 and statuses[1] == 404, statuses
exp["0021"] += sum(1 for st in statuses if st == 200)
print(json.dumps(exp))
EOF
[ -s "$IT_DIR/expected.json" ] || fail "traffic mix failed"
cat "$IT_DIR/expected.json"
exp_0021=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["0021"])' "$IT_DIR/expected.json")
exp_0001=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["0001"])' "$IT_DIR/expected.json")

# The nodes of one chain are peers (network.peers from scripts/stack).
for port in $((18332 + OFF)) $((18333 + OFF)) $((18334 + OFF)) $((18335 + OFF)); do
    n=0
    for _ in $(seq 50); do
        n=$(curl -fsS --max-time 2 "http://127.0.0.1:$port/health/detailed" | jq -r '.network.peers_connected')
        [ "$n" -ge 1 ] 2>/dev/null && break
        sleep 0.2
    done
    [ "$n" -ge 1 ] 2>/dev/null || fail "node on $port has no connected peer ($n)"
done
note "every node has a connected peer"

note "stop chain 0001 (evm-a, evm-b): its requests get 503, never relays"
for n in evm-a evm-b; do
    pid=$(cat "$CCGW_RUN_DIR/pids/$n.pid")
    kill -TERM "$pid"
    for _ in $(seq 100); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    [ -d "/proc/$pid" ] && fail "$n (pid $pid) did not stop"
done
stopped=20
codes=$(for i in $(seq $stopped); do
    curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 -H "Host: 5e2a91c07d3b.0001.chains.local.test" \
        -d '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}' "http://127.0.0.1:$EDGE/"
done | sort | uniq -c | awk '{ print $2 "x" $1 }' | tr '\n' ' ')
assert_eq "$codes" "503x$stopped " "answers for the stopped chain"
# The other chain still serves.
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H "Host: 894334g9f403.0021.chains.local.test" \
    -d '{"jsonrpc":"2.0","id":1,"method":"getblockcount","params":[]}' "http://127.0.0.1:$EDGE/")" 200 \
    "a relay of chain 0021 while 0001 is down"
exp_0021=$((exp_0021 + 1))
for a in CcgwHaproxyBackendDown CcgwNodeNotReady; do
    note "alert $a: $(prom_wait_alert "$a" 30)"
done

note "a certificate 10 days from expiry, rotated in: CcgwTlsCertificateExpiring"
"$CCGW_ROOT/scripts/local-ca" "$CCGW_RUN_DIR/tls" issue chains.local.test 0021 10 || fail "local-ca issue"
"$CCGW_BIN/cc-routes" rotate --config "$CCGW_RUN_DIR/ccgw.yaml" --out "$CCGW_RUN_DIR/haproxy" \
    || fail "cc-routes rotate"
note "alert CcgwTlsCertificateExpiring: $(prom_wait_alert CcgwTlsCertificateExpiring 30)"
sleep 3   # `for:` is 1s here, evaluations every second
assert_eq "$(prom_rules | awk '$1 == "CcgwTlsCertificateExpiring" { print $2 }')" firing \
    "the 10-day certificate fires the expiry alert"

"$CCGW_ROOT/scripts/stack" flush >"$IT_DIR/flush.log" 2>&1 || { cat "$IT_DIR/flush.log"; fail "stack flush"; }

assert_eq "$(q --chain 0021)" "$((base_0021 + exp_0021))" "relays of chain 0021 in PostgreSQL"
assert_eq "$(q --chain 0001)" "$((base_0001 + exp_0001))" "relays of chain 0001 in PostgreSQL"
assert_eq "$(q)" "$((base_0021 + base_0001 + exp_0021 + exp_0001))" "all relays in PostgreSQL"
note "non-relays after: $(nonrelays)"
assert_eq "$(( $(nr invalid_host) - base_invalid ))" 17 "invalid-host non-relays (15 + other domain + attack)"
# <NOSRV> once HAProxy's checks marked the servers down (unrouted), a
# refused connection to a named server before that (server_error).
assert_eq "$(( $(nr unrouted) + $(nr server_error) - base_down ))" "$stopped" \
    "unrouted + server-error non-relays (the stopped chain)"

"$CCGW_ROOT/scripts/stack" status >"$IT_DIR/status.log" 2>&1 || true
cat "$IT_DIR/status.log"
for p in gw-edge gw-http0 gw-http1 relaystats btc-a btc-b; do
    grep -Eq "^$p +[0-9]+ +running +200 " "$IT_DIR/status.log" || fail "status does not show $p running and ready"
done
for p in postgres redis; do
    grep -Eq "^$p +[0-9]+ +running +ok " "$IT_DIR/status.log" || fail "status does not show $p running and ok"
done
for p in evm-a evm-b; do
    grep -Eq "^$p +[0-9]* +stopped" "$IT_DIR/status.log" || fail "status does not show $p stopped"
done
assert_eq "$(awk '($1 == "http0" || $1 == "http1") && $2 == "relays" { n += $3 } END { print n }' "$IT_DIR/status.log")" \
    "$((base_0021 + base_0001 + exp_0021 + exp_0001))" "relays counted by the cc-gateways, shown by status"
for t in http0 http1; do
    grep -Eq "^  $t +relays [0-9]+ +gap 0021=0 0001=0\$" "$IT_DIR/status.log" || fail "status does not show $t's reconciliation gap 0"
    grep -Eq "^  $t +supervisor [0-9]+ +worker [0-9]+ +haproxy [0-9]+\$" "$IT_DIR/status.log" || fail "status does not show $t's processes"
done
assert_eq "$(sed -n '/relays in PostgreSQL/,$p' "$IT_DIR/status.log" | awk '$1 == "total" { print $2 }')" \
    "$((base_0021 + base_0001 + exp_0021 + exp_0001))" "relay total shown by status"

note "the edge's supervisor killed: the stack's keeper starts it again, no person needed"
old_sup=$(cat "$CCGW_RUN_DIR/pids/gw-edge.pid")
kill -9 "$old_sup"
back=""
for _ in $(seq 300); do
    new_sup=$(cat "$CCGW_RUN_DIR/pids/gw-edge.pid" 2>/dev/null || true)
    if [ -n "$new_sup" ] && [ "$new_sup" != "$old_sup" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
            -H "Host: 894334g9f403.0021.chains.local.test" -d '{"jsonrpc":"2.0","id":1,"method":"getblockcount","params":[]}' \
            "http://127.0.0.1:$EDGE/?ccgw-stack-probe")" = 200 ]; then
        back=yes; break
    fi
    sleep 0.1
done
[ -n "$back" ] || { tail -n 20 "$CCGW_RUN_DIR/logs/keeper.out" >&2; fail "the edge did not come back within 30 s of its supervisor's death"; }
grep -q "keeper: gw-edge is gone: starting it again" "$CCGW_RUN_DIR/logs/keeper.out" || fail "keeper.out does not say it restarted gw-edge"
echo "ok: edge supervisor $old_sup killed, $new_sup started by the keeper, the edge routes again"

pids=$(cat "$CCGW_RUN_DIR"/pids/*.pid)
# HAProxy children have no pid file but name the run dir: they must go too.
# At least the three cc-gateways and their HAProxy name it (config paths).
before=$(pgrep -f "$CCGW_RUN_DIR" | wc -l)
[ "$before" -ge 6 ] || fail "only $before processes name $CCGW_RUN_DIR before down"
"$CCGW_ROOT/scripts/stack" down >"$IT_DIR/down.log" 2>&1 || { cat "$IT_DIR/down.log"; fail "stack down"; }
for p in $pids; do
    [ -d "/proc/$p" ] && fail "process $p ($(cat /proc/$p/comm 2>/dev/null)) still running after down"
done
left=$(pgrep -f "$CCGW_RUN_DIR" || true)
[ -z "$left" ] || fail "processes under $CCGW_RUN_DIR left behind: $left"
echo "ok: stack down left no process (of $before that named the run dir)"

note "two scripts/stack up at the same instant: one waits for the other, both exit 0, one stack"
"$CCGW_ROOT/scripts/stack" up >"$IT_DIR/upA.log" 2>&1 &
UPA=$!
"$CCGW_ROOT/scripts/stack" up >"$IT_DIR/upB.log" 2>&1 &
UPB=$!
rca=0; wait $UPA || rca=$?
rcb=0; wait $UPB || rcb=$?
[ "$rca $rcb" = "0 0" ] || { cat "$IT_DIR/upA.log" "$IT_DIR/upB.log"; fail "concurrent ups exited $rca and $rcb"; }
echo "ok: both concurrent ups exited 0"
grep -h "stack.lock" "$IT_DIR/upA.log" "$IT_DIR/upB.log"
grep -q "^stack: waiting for $CCGW_RUN_DIR/stack.lock" "$IT_DIR/upA.log" "$IT_DIR/upB.log" \
    || fail "neither up waited for the other's lock"
"$CCGW_ROOT/scripts/stack" status >"$IT_DIR/status2.log" 2>&1 || true
for p in gw-edge gw-http0 gw-http1 relaystats btc-a btc-b evm-a evm-b; do
    grep -Eq "^$p +[0-9]+ +running +200 " "$IT_DIR/status2.log" \
        || { cat "$IT_DIR/status2.log"; fail "after the concurrent ups, status does not show $p running and ready"; }
done
for t in edge http0 http1; do
    assert_eq "$(pgrep -fc "^haproxy -f $CCGW_RUN_DIR/haproxy/$t.cfg")" 1 "HAProxy processes of $t after the concurrent ups"
done
for port in $EDGE $((8081 + OFF)) $((8082 + OFF)); do
    assert_eq "$(ss -Hltnp "sport = :$port" | grep -o 'pid=[0-9]*' | sort -u | wc -l)" 1 \
        "processes listening on :$port after the concurrent ups"
done
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H "Host: 894334g9f403.0021.chains.local.test" \
    -d '{"jsonrpc":"2.0","id":1,"method":"getblockcount","params":[]}' "http://127.0.0.1:$EDGE/")" 200 \
    "a relay through the stack of the concurrent ups"
# No process the stack started may hold the lock: it would block every later up or down.
# (The keeper opens it for a moment each second, with flock -n: it never blocks one.)
keeper=$(cat "$CCGW_RUN_DIR/pids/keeper.pid" 2>/dev/null || true)
for p in $(cat "$CCGW_RUN_DIR"/pids/*.pid) $(pgrep -f "$CCGW_RUN_DIR"); do
    [ "$p" = "$keeper" ] && continue
    if find "/proc/$p/fd" -lname "$CCGW_RUN_DIR/stack.lock" 2>/dev/null | grep -q .; then
        fail "process $p ($(cat "/proc/$p/comm" 2>/dev/null)) holds $CCGW_RUN_DIR/stack.lock"
    fi
done
echo "ok: no process of the stack holds its lock"
pids=$(cat "$CCGW_RUN_DIR"/pids/*.pid)
"$CCGW_ROOT/scripts/stack" down >"$IT_DIR/down2.log" 2>&1 || { cat "$IT_DIR/down2.log"; fail "stack down after the concurrent ups"; }
for p in $pids; do
    [ -d "/proc/$p" ] && fail "process $p ($(cat "/proc/$p/comm" 2>/dev/null)) still running after the second down"
done
left=$(pgrep -f "$CCGW_RUN_DIR" || true)
[ -z "$left" ] || fail "processes under $CCGW_RUN_DIR left behind after the second down: $left"
echo "ok: the stack of the concurrent ups went down without leftovers"
