#!/bin/bash
# cc-routes on bad and big routing configs: a duplicate host, a chain without
# backends, a bad address, port clashes (two tiers on one port, a wildcard
# listener, a listener on a backend's port or on its cc-node peer port) and a
# config HAProxy rejects are refused with a clear error naming file:line:col
# and leave the output directory untouched; 100,000 hosts render, pass
# haproxy -c, and load live through the runtime API. The clash rules have
# their table-driven cases in tests/data/routes/{bad,good} (unit suite routes).
source "$(dirname "$0")/lib.sh"
it_setup
source "$CCGW_ROOT/tests/data/routes/routes_lib.sh"

EDGE=$(free_port); H0=$(free_port); H1=$(free_port); BK=$(free_port)
OUT=$IT_DIR/out

# config FILE CHAINS ACCOUNTS
config() {
    cat >"$1" <<YAML
gateway: {name: gw-it, routing_domain: chains.it.test, data_dir: $IT_DIR}
chains:
$2
providers:
  - name: acme
    accounts:
$3
tiers:
  - {name: edge, role: edge, bind: "127.0.0.1:$EDGE", stats_socket: $IT_DIR/edge.sock}
  - {name: http0, role: http, bind: "127.0.0.1:$H0", stats_socket: $IT_DIR/http0.sock}
  - {name: http1, role: http, backup: true, bind: "127.0.0.1:$H1", stats_socket: $IT_DIR/http1.sock}
haproxy: {maxconn: 1000}
YAML
}
GOOD_CHAINS="  - id: \"0021\"
    backends:
      - {name: n0021a, address: \"127.0.0.1:$BK\"}"
config "$IT_DIR/good.yaml" "$GOOD_CHAINS" "      - {id: acct1, chains: [\"0021\"]}"
"$CC_ROUTES" render --config "$IT_DIR/good.yaml" --out "$OUT" || fail "good config"
"$CC_ROUTES" check --config "$IT_DIR/good.yaml" | grep -q ": OK$" || fail "check good config"
snapshot() { (cd "$OUT" && ls -A && sha256sum -- *) ; }
before=$(snapshot)

# refused NAME EXPECTED-MESSAGE-REGEX: render and apply refuse it, files unchanged.
refused() {
    local cmd out rc
    for cmd in check render apply; do
        out=$("$CC_ROUTES" "$cmd" --config "$IT_DIR/$1.yaml" --out "$OUT" 2>&1); rc=$?
        assert_eq "$rc" 1 "$1: $cmd exit status"
        echo "$out" | grep -qE "$2" || fail "$1: $cmd said '$out', expected /$2/"
    done
    echo "   message: $out"
    assert_eq "$(snapshot)" "$before" "$1: output directory untouched"
}

config "$IT_DIR/duplicate.yaml" "$GOOD_CHAINS" "      - {id: acct1, chains: [\"0021\"]}
      - {id: ACCT1, chains: [\"0021\"]}"
refused duplicate "duplicate.yaml:[0-9]+:[0-9]+: .*duplicate host acct1.0021.chains.it.test"

config "$IT_DIR/nobackend.yaml" "$GOOD_CHAINS
  - id: \"0001\"
    backends: []" "      - {id: acct1, chains: [\"0021\"]}"
refused nobackend "nobackend.yaml:[0-9]+:[0-9]+: chains\[1\].backends: chain \"0001\" has no backends"

config "$IT_DIR/badaddr.yaml" "  - id: \"0021\"
    backends:
      - {name: n0021a, address: \"127.0.0.1:99999\"}" "      - {id: acct1, chains: [\"0021\"]}"
refused badaddr "badaddr.yaml:[0-9]+:[0-9]+: chains\[0\].backends\[0\]: address \"127.0.0.1:99999\" is not host:port"

config "$IT_DIR/unresolvable.yaml" "  - id: \"0021\"
    backends:
      - {name: n0021a, address: \"no-such-host.invalid:80\"}" "      - {id: acct1, chains: [\"0021\"]}"
refused unresolvable "haproxy -c rejected .*http0.cfg .*no-such-host.invalid"

# clash NAME SED-EXPRESSION: the good config with one listener moved.
clash() { sed "$2" "$IT_DIR/good.yaml" >"$IT_DIR/$1.yaml"; }
clash samebind "s|backup: true, bind: \"127.0.0.1:$H1\"|backup: true, bind: \"127.0.0.1:$H0\"|"
refused samebind "samebind.yaml:13:5: tiers\[2\]\.bind: \"127\.0\.0\.1:$H0\" \(tier http1\) clashes with tiers\[1\]\.bind \"127\.0\.0\.1:$H0\" \(tier http0, .*samebind\.yaml:12:5\)$"
clash wildcard "s|bind: \"127.0.0.1:$EDGE\"|bind: \"0.0.0.0:$H1\"|"
refused wildcard "wildcard.yaml:13:5: tiers\[2\]\.bind: \"127\.0\.0\.1:$H1\" \(tier http1\) clashes with tiers\[0\]\.bind \"0\.0\.0\.0:$H1\" \(tier edge, .*wildcard\.yaml:11:5\): a wildcard address takes the port on every address"
clash onbackend "s|bind: \"127.0.0.1:$H0\"|bind: \"127.0.0.1:$BK\"|"
refused onbackend "onbackend.yaml:12:5: tiers\[1\]\.bind: \"127\.0\.0\.1:$BK\" \(tier http0\) is the address of chains\[0\]\.backends\[0\] \"127\.0\.0\.1:$BK\" \(backend n0021a of chain 0021, .*onbackend\.yaml:5:9\)"
if [ $((BK + 1000)) -le 65535 ]; then
    clash onpeer "s|bind: \"127.0.0.1:$H0\"|bind: \"127.0.0.1:$((BK + 1000))\"|"
    refused onpeer "onpeer.yaml:12:5: tiers\[1\]\.bind: .* is probably the peer port of chains\[0\]\.backends\[0\] .*RPC port \+ 1000"
fi
[ -z "$(ls -A "$OUT" | grep '^\.stage')" ] || fail "staging directory left behind"

note "100,000 hosts"
python3 - "$IT_DIR/big.yaml" "$IT_DIR/good.yaml" <<'PY'
import sys
out, base = sys.argv[1], open(sys.argv[2]).read()
head, _, tail = base.partition("providers:")
tiers = tail[tail.index("tiers:"):]
with open(out, "w") as f:
    f.write(head.replace('chains:\n', 'chains:\n  - id: "0001"\n    backends:\n      - {name: n0001a, address: "127.0.0.1:9"}\n'))
    f.write("providers:\n")
    for p in range(10):
        f.write("  - name: p%d\n    accounts:\n" % p)
        for a in range(5000):
            f.write('      - {id: a%02d%05d, chains: ["0021", "0001"]}\n' % (p, a))
    f.write(tiers)
PY
start=$(date +%s%N)
"$CC_ROUTES" render --config "$IT_DIR/big.yaml" --out "$OUT" || fail "render 100k"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "render + haproxy -c of 3 tiers, 100,000 hosts: ${ms} ms"
assert_eq "$(wc -l <"$OUT/hosts.map")" 100000 "map lines"
assert_eq "$(sort -u "$OUT/hosts.map" | wc -l)" 100000 "distinct map lines"
assert_eq "$(grep -c ' 0021/[^ ]*$' "$OUT/hosts.map")" 50000 "hosts of chain 0021"
assert_eq "$("$CC_ROUTES" hosts --config "$IT_DIR/big.yaml" | cmp - "$OUT/hosts.map" && echo same)" same "hosts command prints the map"
[ "$ms" -lt 30000 ] || fail "render of 100,000 hosts took ${ms} ms"

backend_start bk "$BK"; wait_port "$BK"
haproxy_start http0 "$OUT/http0.cfg"
wait_status "$IT_DIR/http0.sock" be_0021 n0021a UP
code() { curl -s -o /dev/null -w '%{http_code}' --haproxy-protocol -H "Host: $1" "http://127.0.0.1:$H0/"; }
assert_eq "$(code a0904999.0021.chains.it.test)" 200 "last host of the big map routed"
assert_eq "$(code b0000000.0021.chains.it.test)" 404 "host not yet in the map"
sed -i 's/      - {id: a0000000, /      - {id: b0000000, chains: ["0021"]}\n&/' "$IT_DIR/big.yaml"
start=$(date +%s%N)
"$CC_ROUTES" apply --config "$IT_DIR/big.yaml" --out "$OUT" 2>&1 | tail -n 3
rc=${PIPESTATUS[0]}
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "live apply of 100,001 hosts (http0 running, http1 not): ${ms} ms"
assert_eq "$rc" 1 "apply reports the tier that is not running"
assert_eq "$(code b0000000.0021.chains.it.test)" 200 "new host live on http0"
assert_eq "$(code a0904999.0021.chains.it.test)" 200 "old hosts still routed"
assert_eq "$(wc -l <"$OUT/hosts.map")" 100001 "map file rewritten"
assert_eq "$(hapi "$IT_DIR/http0.sock" "show map $OUT/hosts.map" | grep -c ' [0-9a-z-]*/[0-9a-z-]*$')" 100001 "live map entries on http0"
echo PASS
