#!/bin/bash
# cc-node peers: a peer that never comes back. Node a retries it with backoff
# (initial 0.2 s, max 1 s) reconnect_max_retries=3 times, then gives up: log
# line peer_give_up, ccnode_peer_give_ups_total, getpeerinfo "gave_up". Node d
# has reconnect_enabled=false: no retry at all.
source "$(dirname "$0")/lib.sh"
it_setup
NODE=$CCGW_BIN/cc-node

rpc() {
    curl -s --max-time 10 -d "{\"method\":\"$2\",\"params\":${3:-[]},\"id\":1}" "http://127.0.0.1:$1/" \
        | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["result"]))'
}
node_cfg() { # NAME RPC PEERPORT RECONNECT PEERS...
    local name=$1 port=$2 pport=$3 rec=$4; shift 4
    local peers="" p
    for p in "$@"; do peers="$peers\"127.0.0.1:$p\", "; done
    cat >"$IT_DIR/$name.yaml" <<YAML
node: {name: $name, data_dir: $IT_DIR/$name, listen: "127.0.0.1:$port"}
network:
  listen: 127.0.0.1:$pport
  peers: [${peers%, }]
  reconnect_enabled: $rec
  reconnect_max_retries: 3
  reconnect_initial_delay_secs: 0.2
  reconnect_max_delay_secs: 1
rpc: {auth: {rate_limit_enabled: false}}
logging: {format: json, level: info}
YAML
}
declare -A RP PP
for n in a b d; do RP[$n]=$(free_port); PP[$n]=$(free_port); done
node_cfg b "${RP[b]}" "${PP[b]}" true
node_cfg a "${RP[a]}" "${PP[a]}" true "${PP[b]}"
node_cfg d "${RP[d]}" "${PP[d]}" false "${PP[b]}"
bg b "$NODE" --config "$IT_DIR/b.yaml"
wait_http "http://127.0.0.1:${RP[b]}/health/ready" 20
bg a "$NODE" --config "$IT_DIR/a.yaml"
bg d "$NODE" --config "$IT_DIR/d.yaml"
for n in a d; do wait_http "http://127.0.0.1:${RP[$n]}/health/ready" 20; done
for n in a d; do
    for _ in $(seq 50); do grep -q '"event":"peer_connected"' "$IT_DIR/$n.log" && break; sleep 0.1; done
    grep -q '"event":"peer_connected"' "$IT_DIR/$n.log" || fail "$n never connected to b"
done

stop_bg b
# a: retries 1..3 at ~0.1-0.2, 0.2-0.4, 0.4-0.8 s, then gives up
for _ in $(seq 50); do grep -q '"event":"peer_give_up"' "$IT_DIR/a.log" && break; sleep 0.1; done
grep -q "\"event\":\"peer_give_up\",\"peer\":\"127.0.0.1:${PP[b]}\",\"attempts\":3,\"max_retries\":3" "$IT_DIR/a.log" \
    || fail "no peer_give_up line with 3 attempts"
sleep 1.5 # nothing more may happen
assert_eq "$(grep -c '"event":"peer_connect",' "$IT_DIR/a.log")" 4 "a's connection attempts (first + 3 retries)"
assert_eq "$(grep -c '"event":"peer_retry_scheduled"' "$IT_DIR/a.log")" 3 "a's scheduled retries"
python3 - "$IT_DIR/a.log" <<'PY' || fail "backoff delays"
import json, sys
d = [json.loads(l) for l in open(sys.argv[1]) if '"peer_retry_scheduled"' in l]
for e in d:
    base = min(1.0, 0.2 * 2 ** (e["attempt"] - 1)) * 1000
    assert 0.5 * base - 1 <= e["delay_ms"] <= base + 1, e
print("delays", [(e["attempt"], round(e["delay_ms"])) for e in d])
PY
rpc "${RP[a]}" getpeerinfo | python3 -c '
import json, sys
p = json.load(sys.stdin)
out = [x for x in p if not x["inbound"]]
assert len(out) == 1 and out[0]["connection_state"] == "gave_up" and out[0]["attempts"] == 3, p
assert out[0]["next_attempt"] is None, p' || fail "getpeerinfo after give-up"
curl -s "http://127.0.0.1:${RP[a]}/metrics" >"$IT_DIR/metrics-a.txt"
grep -q '^ccnode_peer_give_ups_total 1$' "$IT_DIR/metrics-a.txt" || fail "give_ups metric"
grep -q '^ccnode_peer_reconnect_attempts_total 3$' "$IT_DIR/metrics-a.txt" || fail "reconnect attempts metric: $(grep reconnect_attempts "$IT_DIR/metrics-a.txt")"
grep -q '^ccnode_peers_connected{direction="outbound"} 0$' "$IT_DIR/metrics-a.txt" || fail "peers_connected after give-up"
if command -v promtool >/dev/null; then
    promtool check metrics <"$IT_DIR/metrics-a.txt" || fail "promtool check metrics"
fi
# a single node whose peers are gone is still ready (nothing to catch up with)
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${RP[a]}/health/ready")" 200 "a ready after give-up"

# d: reconnect disabled, no attempt after the disconnect
grep -q '"event":"peer_not_retried"' "$IT_DIR/d.log" || fail "d: no peer_not_retried line"
assert_eq "$(grep -c '"event":"peer_connect",' "$IT_DIR/d.log")" 1 "d's connection attempts"
rpc "${RP[d]}" getpeerinfo | grep -q '"connection_state": "disconnected"' || fail "d: state disconnected"
grep -q '^ccnode_peer_reconnect_attempts_total 0$' <(curl -s "http://127.0.0.1:${RP[d]}/metrics") || fail "d: reconnect attempts"

# s: its only peer accepts TCP but never answers the HELLO. Until the
# handshake times out (5 s) the node cannot know whether it is behind: 503
# "syncing", getblocktemplate/generate refused with -10 as Bitcoin Core does
# in initial block download, reads served. Once the attempt has failed and
# no peer is reachable, it is a single node and turns ready.
SILENT=$(free_port)
python3 - "$SILENT" >"$IT_DIR/silent.log" 2>&1 <<'PY' &
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
held = []
s.settimeout(30)
try:
    while True:
        c, _ = s.accept()
        held.append(c)
except OSError:
    pass
PY
IT_PIDS[silent]=$!
wait_port "$SILENT"
RP[s]=$(free_port); PP[s]=$(free_port)
node_cfg s "${RP[s]}" "${PP[s]}" true "$SILENT"
RP[se]=$(free_port); PP[se]=$(free_port)
node_cfg se "${RP[se]}" "${PP[se]}" true "$SILENT"
sed -i 's/^node: {name: se,/node: {name: se, flavour: evm,/' "$IT_DIR/se.yaml"
bg s "$NODE" --config "$IT_DIR/s.yaml"
bg se "$NODE" --config "$IT_DIR/se.yaml"
wait_port "${RP[s]}"
wait_port "${RP[se]}"
for _ in $(seq 30); do grep -q '"event":"node_ready"' "$IT_DIR/s.log" && break; sleep 0.1; done
code=$(curl -s -o "$IT_DIR/ready.json" -w '%{http_code}' "http://127.0.0.1:${RP[s]}/health/ready")
assert_eq "$code" 503 "ready while the only peer has not answered"
grep -q '"reason":"syncing"' "$IT_DIR/ready.json" || fail "reason: $(cat "$IT_DIR/ready.json")"
code=$(curl -s -o "$IT_DIR/gbt.json" -w '%{http_code}' -d '{"method":"getblocktemplate","params":[{"rules":["segwit"]}],"id":1}' "http://127.0.0.1:${RP[s]}/")
assert_eq "$code" 500 "getblocktemplate while syncing (HTTP)"
grep -q '"code":-10,"message":"Bitcoin Core is in initial sync and waiting for blocks..."' "$IT_DIR/gbt.json" || fail "-10: $(cat "$IT_DIR/gbt.json")"
grep -q '"code":-10' <(curl -s -d '{"method":"generate","params":[1],"id":1}' "http://127.0.0.1:${RP[s]}/") || fail "generate while syncing"
assert_eq "$(rpc "${RP[s]}" getblockcount)" 0 "reads served while syncing"
rpc "${RP[s]}" getblockchaininfo | grep -q '"initialblockdownload": true' || fail "initialblockdownload while syncing"
evm() { curl -s -d "{\"jsonrpc\":\"2.0\",\"method\":\"$1\",\"params\":[],\"id\":1}" "http://127.0.0.1:${RP[se]}/"; }
for _ in $(seq 30); do grep -q '"event":"node_ready"' "$IT_DIR/se.log" && break; sleep 0.1; done
evm eth_blockNumber | grep -q '"error":{"code":-32000,"message":"node is syncing: block 0 of 0"}' || fail "evm while syncing: $(evm eth_blockNumber)"
evm eth_syncing | grep -q '"result":{"startingBlock":"0x0","currentBlock":"0x0","highestBlock":"0x0"}' || fail "eth_syncing: $(evm eth_syncing)"
evm eth_chainId | grep -q '"result":"0x539"' || fail "eth_chainId while syncing"
wait_http "http://127.0.0.1:${RP[s]}/health/ready" 10
wait_http "http://127.0.0.1:${RP[se]}/health/ready" 10
evm eth_blockNumber | grep -q '"result":"0x0"' || fail "evm after sync: $(evm eth_blockNumber)"
grep -q '"event":"peer_connect_failed","peer":"127.0.0.1:'"$SILENT"'","attempt":1,"msg":"handshake timeout"' "$IT_DIR/s.log" || fail "no handshake timeout logged"
note "silent peer: syncing until the handshake timed out, then ready"
