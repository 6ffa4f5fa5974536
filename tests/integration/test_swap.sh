#!/bin/bash
# scripts/swap-backends under load: the stack up on free ports, wrk through
# the edge (keep-alive POSTs with a valid Host of chain 0021) while the swap
# replaces every backend of chain 0021 with two new cc-node processes and adds
# a chain (the restart path: http0 drained and restarted, then http1). No
# request may fail, and PostgreSQL must count exactly the relays wrk made.
#
# Exactness at wrk's end: when the swap is done, a stop file makes the lua
# script send the HTTP tiers' monitor request (/ccgw-health: answered by the
# HTTP tier itself, never forwarded, never logged) instead of the relay, and
# wrk is stopped a few seconds later. What is in flight then is no relay, and
# every relay was answered to wrk.
#
# Then, without load: two live swaps that each add an account, the first with
# a relaystats that fails (the swap warns, exits 3, routing has changed), the
# second syncing both accounts into PostgreSQL; `scripts/stack up` afterwards
# keeps the swapped run/ccgw.yaml, and hosts.map and the edge still route both.
source "$(dirname "$0")/lib.sh"
it_setup
CONNS=16
HOST=894334g9f403.0021.chains.local.test

stack_start

# Two new bitcoin nodes for chain 0021, peers of each other. Behind HAProxy
# every request comes from one address: the per-client limit is set high, as
# scripts/stack does for its own nodes.
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
  auth: {user: ccgw, password: $(cat "$RUN/node.secret"), rate_limit_enabled: true,
         rate_limit_rate: 1000000, rate_limit_burst: 1000000}
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

# Before the load: the stack's own relays (wait_edge_routes' request).
base=$(stack_flush_total) && [[ "$base" =~ ^[0-9]+$ ]] || fail "relay total before the load: '$base'"
note "relays before the load: $base"

# The load: wrk at its full rate over CONNS keep-alive connections until the
# stop file appears (checked once a second per thread), then monitor requests.
STOP=$IT_DIR/stop-load
wrk_relay_lua "$IT_DIR/swap.lua" "$HOST" getblockcount "$STOP"
# -d bounds the load: the swap must be done well before it.
wrk -t2 -c"$CONNS" -d120s --timeout 10s -s "$IT_DIR/swap.lua" "http://127.0.0.1:$EDGE/" \
    >"$IT_DIR/wrk.out" 2>"$IT_DIR/wrk.err" &
WRK=$!
sleep 2
t0=$(date +%s)
"$CCGW_ROOT/scripts/swap-backends" "$IT_DIR/new.yaml" >"$IT_DIR/swap.log" 2>&1
swap_rc=$?
note "swap-backends took $(( $(date +%s) - t0 ))s under load"
sleep 2
kill -0 $WRK 2>/dev/null || fail "wrk ended before the swap did (bound: 120 s)"
touch "$STOP"
sleep 3
kill -INT $WRK
wait $WRK || { cat "$IT_DIR/wrk.out" "$IT_DIR/wrk.err"; fail "wrk failed"; }
cat "$IT_DIR/swap.log" "$IT_DIR/wrk.out"
[ $swap_rc = 0 ] || fail "swap-backends exited $swap_rc"

ok=$(wrk_field "$IT_DIR/wrk.out" relays)
[[ "$ok" =~ ^[0-9]+$ ]] || fail "cannot read wrk's output"
[ "$ok" -gt 1000 ] || fail "wrk made only $ok relays"
[ "$(wrk_field "$IT_DIR/wrk.out" monitors)" -gt 0 ] || fail "the monitor tail never ran: in-flight requests may be relays"
sort "$IT_DIR/wrk.err" | uniq -c | head
assert_eq "$(wrk_field "$IT_DIR/wrk.out" bad)" 0 "non-2xx answers during the swap"
assert_eq "$(wrk_field "$IT_DIR/wrk.out" errors)" 0 "wrk socket errors during the swap"
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

after=$(stack_flush_total) && [[ "$after" =~ ^[0-9]+$ ]] || fail "relay total after the load: '$after'"
# A log line HAProxy could not write to its gateway is a relay lost before
# the gateway sees it; the gateways log it as haproxy_dropped_logs.
dropped=$(cat "$RUN"/logs/gw-*.out | grep -c '"event":"haproxy_dropped_logs"' || true)
assert_eq "$dropped" 0 "HAProxy dropped-logs warnings of the gateways"
assert_eq "$((after - base))" "$ok" "relays counted in PostgreSQL during the load"

# The swap syncs PostgreSQL's providers and accounts from the new config
# (relaystats sync) once routing has changed; `stack up` afterwards keeps the
# swapped config (live state is the truth) and renders from it.
grep -q "relaystats sync done" "$IT_DIR/swap.log" || fail "the restart-path swap did not run relaystats sync"
PG_URL="postgresql://postgres@127.0.0.1:$((55432 + OFF))/ccgw"   # for psql_q (lib.sh)
export PG_URL
D=chains.local.test
# add_account SRC DST ID: SRC with account ID (provider globex, chain 0021) added
add_account() {
    sed "s/      - {id: a1b2c3d4e5f6, chains: \[\"0021\"\]}/&\n      - {id: $3, chains: [\"0021\"]}/" "$1" >"$2"
    grep -q "id: $3," "$2" || fail "could not add account $3 to $2"
}
relay_code() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H "Host: $1.0021.$D" \
        -d '{"jsonrpc":"2.0","id":1,"method":"getblockcount","params":[]}' "http://127.0.0.1:$EDGE/"
}
# wait_routed ACCOUNT: the edge answers a relay of ACCOUNT with 200 (the live
# map change reaches both HTTP tiers through their runtime API)
wait_routed() {
    local c=
    for _ in $(seq 100); do
        c=$(relay_code "$1"); [ "$c" = 200 ] && return 0
        sleep 0.1
    done
    fail "account $1 not routed after 10 s (last answer $c)"
}
owner() { psql_q "SELECT provider FROM accounts WHERE account = '$1' AND chain = '0021'"; }

note "a live swap whose relaystats sync fails: WARNING, exit 3, routing changed anyway"
FAKE=$IT_DIR/fakebin
mkdir -p "$FAKE"
for b in cc-routes cc-gateway cc-node; do ln -s "$CCGW_BIN/$b" "$FAKE/$b"; done
printf '#!/bin/sh\necho "relaystats (test double): PostgreSQL unreachable" >&2\nexit 1\n' >"$FAKE/relaystats"
chmod +x "$FAKE/relaystats"
add_account "$RUN/ccgw.yaml" "$IT_DIR/new2.yaml" c0ffee000001
rc=0
CCGW_BIN=$FAKE "$CCGW_ROOT/scripts/swap-backends" "$IT_DIR/new2.yaml" >"$IT_DIR/swap2.log" 2>"$IT_DIR/swap2.err" || rc=$?
cat "$IT_DIR/swap2.log" "$IT_DIR/swap2.err"
assert_eq "$rc" 3 "exit status of a swap whose sync failed"
grep -q "applied live, no restart needed" "$IT_DIR/swap2.log" || fail "the account swap did not take the live path"
grep -q "WARNING: relaystats sync FAILED (exit 1); the swap itself is complete" "$IT_DIR/swap2.err" \
    || fail "no loud warning on stderr for the failed sync"
cmp -s "$IT_DIR/new2.yaml" "$RUN/ccgw.yaml" || fail "run/ccgw.yaml is not the new config after the failed sync"
wait_routed c0ffee000001
# (Whether PostgreSQL has c0ffee000001 now is not asserted: a relaystats serve
# that watches its config file may have synced it on its own.)

note "a live swap with its sync: PostgreSQL follows the config"
add_account "$RUN/ccgw.yaml" "$IT_DIR/new3.yaml" c0ffee000002
"$CCGW_ROOT/scripts/swap-backends" "$IT_DIR/new3.yaml" >"$IT_DIR/swap3.log" 2>&1 \
    || { cat "$IT_DIR/swap3.log"; fail "account swap"; }
cat "$IT_DIR/swap3.log"
grep -q "relaystats sync done" "$IT_DIR/swap3.log" || fail "the account swap did not sync"
wait_routed c0ffee000002
assert_eq "$(owner c0ffee000002)" globex "provider of the swapped-in account c0ffee000002 in PostgreSQL"
assert_eq "$(owner c0ffee000001)" globex "provider of c0ffee000001 (the failed sync's account, synced now)"

note "stack up after the swaps keeps run/ccgw.yaml"
"$CCGW_ROOT/scripts/stack" up >"$IT_DIR/up-after-swap.log" 2>&1 \
    || { cat "$IT_DIR/up-after-swap.log"; fail "stack up after the swaps"; }
grep "ccgw.yaml" "$IT_DIR/up-after-swap.log" | head -n 3
grep -q "^stack: kept $RUN/ccgw.yaml: it is not what up wrote" "$IT_DIR/up-after-swap.log" \
    || fail "stack up did not say that it kept the swapped config"
cmp -s "$IT_DIR/new3.yaml" "$RUN/ccgw.yaml" || fail "stack up changed the swapped run/ccgw.yaml"
for a in c0ffee000001 c0ffee000002; do
    grep -q "^$a\.0021\.$D " "$RUN/haproxy/hosts.map" || fail "hosts.map lost $a after stack up"
    assert_eq "$(relay_code "$a")" 200 "a relay of $a after stack up"
done
grep -q "id: c0ffee000002," "$RUN/ccgw.template.yaml" && fail "the swapped account leaked into the template"
echo "ok: stack up keeps the swapped config, its accounts routed and in PostgreSQL"
