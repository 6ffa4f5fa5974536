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
