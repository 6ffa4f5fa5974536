#!/bin/bash
# cc-node peers: a misbehaving peer (tests/data/node/peers/bad_peer.py) sends
# garbage, a truncated frame, a HELLO of another chain, a block with a bad
# hash and one with a bad merkle root. Each is refused and counted by reason,
# RPC keeps working, the fifth offence bans the address (log + metrics).
source "$(dirname "$0")/lib.sh"
it_setup
NODE=$CCGW_BIN/cc-node
PORT=$(free_port)
PPORT=$(free_port)
cat >"$IT_DIR/n.yaml" <<YAML
node: {name: target, data_dir: $IT_DIR/n, listen: "127.0.0.1:$PORT", chain_id: 1337}
network: {listen: "127.0.0.1:$PPORT"}
rpc: {auth: {rate_limit_enabled: false}}
logging: {format: json, level: info}
YAML
bg n "$NODE" --config "$IT_DIR/n.yaml"
wait_http "http://127.0.0.1:$PORT/health/ready" 20
python3 "$CCGW_ROOT/tests/data/node/peers/bad_peer.py" "$PORT" "$PPORT" bitcoin-1337 || fail "bad peer checks"

curl -s "http://127.0.0.1:$PORT/metrics" >"$IT_DIR/metrics.txt"
for want in 'reason="bad_magic"} 1' 'reason="truncated"} 1' 'reason="wrong_chain"} 1' \
            'reason="bad_block"} 2'; do
    grep -q "^ccnode_peer_rejected_messages_total{$want\$" "$IT_DIR/metrics.txt" \
        || fail "metric $want: $(grep rejected_messages "$IT_DIR/metrics.txt")"
done
grep -q '^ccnode_peer_bans_total 1$' "$IT_DIR/metrics.txt" || fail "bans_total: $(grep bans_total "$IT_DIR/metrics.txt")"
if command -v promtool >/dev/null; then
    promtool check metrics <"$IT_DIR/metrics.txt" || fail "promtool check metrics"
fi
assert_eq "$(grep -c '"event":"peer_misbehaving"' "$IT_DIR/n.log")" 5 "peer_misbehaving log lines"
grep -q '"event":"peer_banned","peer":"127.0.0.1","secs":60' "$IT_DIR/n.log" || fail "no peer_banned line"
grep -q '"event":"peer_refused","peer":"127.0.0.1:[0-9]*","reason":"banned"' "$IT_DIR/n.log" || fail "no peer_refused line"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health/ready")" 200 "still ready"
