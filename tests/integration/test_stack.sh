#!/bin/bash
# End to end: scripts/stack up on free ports, a known mix of traffic through
# the edge, scripts/stack flush, and relaystats' totals equal the expected
# relays exactly; scripts/stack down leaves no process behind.
source "$(dirname "$0")/lib.sh"
it_setup

# Every DESIGN.md port shifted by one offset where all are free.
stack_offset
export CCGW_PORT_OFFSET=$OFF CCGW_RUN_DIR=$IT_DIR/run CCGW_BIN
EDGE=$((8080 + OFF))
note "stack on port offset $OFF"

stack_down() { "$CCGW_ROOT/scripts/stack" down >"$IT_DIR/down.log" 2>&1 || cat "$IT_DIR/down.log"; }
trap 'rc=$?; stack_down; (exit $rc); it_cleanup' EXIT

"$CCGW_ROOT/scripts/stack" up >"$IT_DIR/up.log" 2>&1 || { cat "$IT_DIR/up.log"; fail "stack up"; }
"$CCGW_ROOT/scripts/stack" up >"$IT_DIR/up2.log" 2>&1 || { cat "$IT_DIR/up2.log"; fail "second stack up"; }
grep -q "already running" "$IT_DIR/up2.log" || fail "second up did not notice the running stack"

q() {
    "$CCGW_BIN/relaystats" --config "$CCGW_RUN_DIR/ccgw.yaml" query --from -1h --to now "$@" \
        --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'
}

# `up` itself sends one relay through the edge to prove routing: the
# baseline, flushed, is subtracted.
"$CCGW_ROOT/scripts/stack" flush >"$IT_DIR/flush0.log" 2>&1 || { cat "$IT_DIR/flush0.log"; fail "first flush"; }
base_0021=$(q --chain 0021); base_0001=$(q --chain 0001)
note "baseline: chain 0021 $base_0021, chain 0001 $base_0001"

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

"$CCGW_ROOT/scripts/stack" flush >"$IT_DIR/flush.log" 2>&1 || { cat "$IT_DIR/flush.log"; fail "stack flush"; }

assert_eq "$(q --chain 0021)" "$((base_0021 + exp_0021))" "relays of chain 0021 in PostgreSQL"
assert_eq "$(q --chain 0001)" "$((base_0001 + exp_0001))" "relays of chain 0001 in PostgreSQL"
assert_eq "$(q)" "$((base_0021 + base_0001 + exp_0021 + exp_0001))" "all relays in PostgreSQL"

"$CCGW_ROOT/scripts/stack" status >"$IT_DIR/status.log" 2>&1 || true
grep -q "gw-http0 .* running" "$IT_DIR/status.log" || { cat "$IT_DIR/status.log"; fail "status does not show gw-http0 running"; }

pids=$(cat "$CCGW_RUN_DIR"/pids/*.pid)
"$CCGW_ROOT/scripts/stack" down >"$IT_DIR/down.log" 2>&1 || { cat "$IT_DIR/down.log"; fail "stack down"; }
for p in $pids; do
    [ -d "/proc/$p" ] && fail "process $p ($(cat /proc/$p/comm 2>/dev/null)) still running after down"
done
left=$(pgrep -f "$CCGW_RUN_DIR" || true)
[ -z "$left" ] || fail "processes under $CCGW_RUN_DIR left behind: $left"
echo "ok: stack down left no process"
