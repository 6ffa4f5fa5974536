#!/bin/bash
# NOT run by make test: fails about 3 runs in 7 because HAProxy drops log lines
# under load (issue #4). Move back to tests/integration/ once DroppedLogs stays 0.
# scripts/swap-backends under load: the stack up on free ports, keep-alive
# clients through the edge while the swap replaces every backend of chain 0021
# with two new cc-node processes and adds a chain (the restart path). No
# request may fail, and PostgreSQL must count exactly the relays the load made.
source "$(dirname "$0")/../lib.sh"
it_setup

# Every DESIGN.md port shifted by one offset; pick one where all are free.
ports_free() {
    local p
    for p in 8080 8081 8082 8404 9100 9101 9102 8090 55432 56379 18332 18333 18334 18335 \
             19332 19333 19334 19335; do
        (exec 3<>"/dev/tcp/127.0.0.1/$((p + $1))") 2>/dev/null && return 1
    done
    return 0
}
pick_offset() {
    for _ in $(seq 20); do
        OFF=$(( (RANDOM % 80 + 10) * 100 ))
        ports_free "$OFF" && break
    done
}
stack_down() { "$CCGW_ROOT/scripts/stack" down >"$IT_DIR/down.log" 2>&1 || cat "$IT_DIR/down.log"; }
# it_cleanup reports the test's exit status: keep it across stack_down.
trap 'rc=$?; stack_down; (exit $rc); it_cleanup' EXIT

# Other stacks start in parallel: a port taken between the check and the
# start makes `up` fail; try another offset then.
export CCGW_RUN_DIR=$IT_DIR/run CCGW_BIN
for attempt in 1 2 3; do
    pick_offset
    export CCGW_PORT_OFFSET=$OFF
    note "stack on port offset $OFF"
    "$CCGW_ROOT/scripts/stack" up >"$IT_DIR/up.log" 2>&1 && break
    cat "$IT_DIR/up.log"
    stack_down
    [ $attempt = 3 ] && fail "stack up"
    rm -rf "$CCGW_RUN_DIR"
done
RUN=$CCGW_RUN_DIR
EDGE=$((8080 + OFF))

# Two new bitcoin nodes for chain 0021, peers of each other.
declare -A RPC PEER
for n in btc-c btc-d; do RPC[$n]=$(free_port); PEER[$n]=$(free_port); done
for n in btc-c btc-d; do
    other=btc-c; [ $n = btc-c ] && other=btc-d
    mkdir -p "$IT_DIR/nodes/$n"
    cat >"$IT_DIR/nodes/$n.yaml" <<EOF
node:
  name: $n
  flavour: bitcoin
  data_dir: $IT_DIR/nodes/$n
  listen: "127.0.0.1:${RPC[$n]}"
  block_interval_secs: 30
network:
  listen: "127.0.0.1:${PEER[$n]}"
  peers: ["127.0.0.1:${PEER[$other]}"]
rpc:
  auth: {user: ccgw, password: $(cat "$RUN/node.secret")}
logging:
  format: json
  level: info
EOF
    bg "$n" "$CCGW_BIN/cc-node" --config "$IT_DIR/nodes/$n.yaml"
done
for n in btc-c btc-d; do wait_http "http://127.0.0.1:${RPC[$n]}/health/ready" 30; done

# NEW: chain 0021 on btc-c/btc-d only, plus chain 0002 (a new backend: restart).
python3 - "$RUN/ccgw.yaml" "$IT_DIR/new.yaml" "${RPC[btc-c]}" "${RPC[btc-d]}" <<'EOF'
import re, sys
src, dst, pc, pd = sys.argv[1:]
text = open(src).read()
text, n = re.subn(r'\{name: btc-a, address: "127\.0\.0\.1:\d+"\}',
                  '{name: btc-c, address: "127.0.0.1:%s"}' % pc, text)
assert n == 1
text, n = re.subn(r'\{name: btc-b, address: "127\.0\.0\.1:\d+"\}',
                  '{name: btc-d, address: "127.0.0.1:%s"}' % pd, text)
assert n == 1
evm = re.findall(r'\{name: evm-a, address: "[^"]+"\}', text)
assert len(evm) == 1
new_chain = ('  - id: "0002"\n    name: evm-second\n    flavour: evm\n    backends:\n'
             '      - ' + evm[0].replace("evm-a", "evm2-a") + '\n')
assert "\nproviders:" in text
text = text.replace("\nproviders:", "\n" + new_chain + "providers:", 1)
open(dst, "w").write(text)
EOF
"$CCGW_BIN/cc-routes" check --config "$IT_DIR/new.yaml" >"$IT_DIR/check.log" 2>&1 \
    || { cat "$IT_DIR/check.log"; fail "the new config is refused"; }

pg_total() {
    "$CCGW_BIN/relaystats" --config "$RUN/ccgw.yaml" query --from -1h --to now --format json \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'
}
flush_total() { # make every gateway flush, print PostgreSQL's relay total
    "$CCGW_ROOT/scripts/stack" flush >"$IT_DIR/flush.log" 2>&1 || { cat "$IT_DIR/flush.log" >&2; return 1; }
    pg_total
}
# Before the load: the stack's own relays (wait_edge_routes' request).
base=$(flush_total) && [[ "$base" =~ ^[0-9]+$ ]] || fail "relay total before the load: '$base'"
note "relays before the load: $base"

# The load: 4 keep-alive clients, about 60 requests/s in all (cc-node limits a
# user to 100/s per node), until the stop file appears (at most 90 s).
STOP=$IT_DIR/stop-load
python3 - "$EDGE" "$STOP" >"$IT_DIR/load.json" 2>"$IT_DIR/load.log" <<'EOF' &
import http.client, json, os, sys, threading, time
edge, stop = int(sys.argv[1]), sys.argv[2]
body = '{"jsonrpc":"2.0","id":1,"method":"getblockcount","params":[]}'
hdrs = {"Host": "894334g9f403.0021.chains.local.test", "Content-Type": "application/json"}
res = {"ok": 0, "bad": 0, "errors": 0, "statuses": {}}
lock = threading.Lock()
deadline = time.time() + 90
def client():
    c = http.client.HTTPConnection("127.0.0.1", edge, timeout=10)
    while not os.path.exists(stop) and time.time() < deadline:
        try:
            c.request("POST", "/", body, hdrs)
            r = c.getresponse(); r.read()
        except Exception as e:
            print("error:", repr(e), file=sys.stderr)
            with lock: res["errors"] += 1
            c.close(); c = http.client.HTTPConnection("127.0.0.1", edge, timeout=10)
            continue
        with lock:
            if 200 <= r.status < 300: res["ok"] += 1
            else:
                res["bad"] += 1
                res["statuses"][str(r.status)] = res["statuses"].get(str(r.status), 0) + 1
        time.sleep(0.066)
ts = [threading.Thread(target=client) for _ in range(4)]
for t in ts: t.start()
for t in ts: t.join()
print(json.dumps(res))
EOF
LOAD=$!
sleep 2
"$CCGW_ROOT/scripts/swap-backends" "$IT_DIR/new.yaml" >"$IT_DIR/swap.log" 2>&1
swap_rc=$?
sleep 2
touch "$STOP"
wait $LOAD || fail "the load client failed"
cat "$IT_DIR/swap.log"
[ $swap_rc = 0 ] || fail "swap-backends exited $swap_rc"
cat "$IT_DIR/load.json"

field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$IT_DIR/load.json" "$1"; }
ok=$(field ok)
[ "$ok" -gt 100 ] || fail "the load made only $ok requests"
assert_eq "$(field bad)" 0 "non-2xx responses during the swap"
assert_eq "$(field errors)" 0 "connection errors during the swap"
grep -q "restart needed" "$IT_DIR/swap.log" || fail "the swap did not take the restart path"
cmp -s "$IT_DIR/new.yaml" "$RUN/ccgw.yaml" || fail "run/ccgw.yaml is not the new config"

# The new backends took over chain 0021; the old ones are gone from http0/http1.
for t in http0 http1; do
    grep -q "btc-c" "$RUN/haproxy/$t.cfg" && ! grep -q "btc-a" "$RUN/haproxy/$t.cfg" \
        || fail "$t.cfg does not hold the new backends"
done
sock=$(awk '$1 == "stats" && $2 == "socket" { print $3; exit }' "$RUN/haproxy/http0.cfg")
servers=$(echo "show servers state be_0021" | socat -t 5 - "UNIX-CONNECT:$sock")
echo "$servers" | grep -q " btc-c " || fail "running http0 has no btc-c: $servers"
echo "$servers" | grep -q " btc-a " && fail "running http0 still has btc-a: $servers"
echo "ok: the running http0 serves chain 0021 from the new backends"

after=$(flush_total) && [[ "$after" =~ ^[0-9]+$ ]] || fail "relay total after the load: '$after'"
# A log line HAProxy could not write to its gateway is a relay lost before
# the gateway sees it; the gateway logs it as haproxy_dropped_logs.
dropped=$(cat "$RUN"/logs/gw-*.out | grep -c '"event":"haproxy_dropped_logs"' || true)
[ "$dropped" = 0 ] || note "HAProxy reported dropped log lines $dropped time(s) (see $RUN/logs/gw-*.out)"
assert_eq "$((after - base))" "$ok" "relays counted in PostgreSQL during the load"
