#!/bin/bash
# cc-node pruning with real processes:
#  1. custom mode, threshold 2 MB / target 1 MB crossed by block production
#     (blocks made big with ~95 kB transactions): the disk monitor prunes to
#     <= target, the bytes on disk are what the node reports, pruned blocks
#     answer Core's error while their headers stay, getblockchaininfo and
#     /metrics show the prune; a restart keeps all of it and new blocks work.
#  2. pruneblockchain: Core's answers and errors, min_blocks_kept respected,
#     refused when pruning is disabled; aggressive mode keeps only
#     min_blocks_kept blocks; the evm flavour answers -32000 "block pruned".
source "$(dirname "$0")/lib.sh"
it_setup
NODE=$CCGW_BIN/cc-node

# rpc PORT METHOD JSON-PARAMS: prints the whole reply
rpc() {
    printf '{"jsonrpc":"2.0","method":"%s","params":%s,"id":1}' "$2" "$3" |
        curl -s --max-time 30 --data-binary @- "http://127.0.0.1:$1/"
}
# field JSON JQ-FILTER: prints the value
field() { jq -r "$2" <<<"$1"; }
result() { rpc "$@" | jq -r .result; }
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2}'; }

# start_node NAME PORT STORAGE-YAML [FLAVOUR [EXTRA-NODE-YAML]]
start_node() {
    cat >"$IT_DIR/$1.yaml" <<YAML
node:
  flavour: ${4:-bitcoin}
  data_dir: $IT_DIR/$1
  listen: 127.0.0.1:$2
  ${5:-}
storage: $3
rpc: {auth: {rate_limit_enabled: false}}
logging: {format: json, level: info}
YAML
    bg "$1" "$NODE" --config "$IT_DIR/$1.yaml"
    wait_http "http://127.0.0.1:$2/health/ready" 20
}

# Transactions of ~95 kB, one file each: one made-up input
# (sendrawtransaction does not look inputs up) and an OP_RETURN output
# carrying the bulk; different seeds make different transactions.
big_txs() {
    python3 - "$1" "$2" <<'PY'
import struct, sys
def varint(n):
    return bytes([n]) if n < 0xfd else b"\xfd" + struct.pack("<H", n) if n <= 0xffff else b"\xfe" + struct.pack("<I", n)
for seed in range(1, int(sys.argv[2]) + 1):
    prev = seed.to_bytes(4, "little") * 8
    data = bytes((seed + i) & 0xff for i in range(95000))
    script = b"\x6a\x4e" + struct.pack("<I", len(data)) + data
    tx = struct.pack("<i", 2) + b"\x01" + prev + struct.pack("<I", 0) + b"\x00" + struct.pack("<I", 0xffffffff)
    tx += b"\x01" + struct.pack("<q", 0) + varint(len(script)) + script + struct.pack("<I", 0)
    with open("%s/tx%d.hex" % (sys.argv[1], seed), "w") as f:
        f.write(tx.hex())
PY
}

# Bytes of the node's files, as the node counts them.
disk_bytes() {
    local d=$1
    find "$d/blocks" -name '*.blk' -printf '%s\n' | awk -v h="$(stat -c %s "$d/headers.dat")" \
        -v s="$(stat -c %s "$d/chainstate.dat")" '{t += $1} END {print t + h + s}'
}

# ---------------------------------------------------------------- 1. automatic
P1=$(free_port)
D1=$IT_DIR/auto
start_node auto "$P1" "{pruning_mode: custom, pruning_threshold_gb: 0.002, pruning_target_gb: 0.001, min_blocks_kept: 5, check_interval_secs: 0.2}"
info=$(rpc "$P1" getblockchaininfo '[]')
assert_eq "$(field "$info" '.result.pruned')" true "pruned in custom mode"
assert_eq "$(field "$info" '.result.pruneheight')" 0 "pruneheight before any prune"
assert_eq "$(field "$info" '.result.prune_target_size')" 1000000 "prune_target_size"
assert_eq "$(field "$info" '.result.automatic_pruning')" true "automatic_pruning"

big_txs "$IT_DIR" 30
for i in $(seq 1 30); do
    r=$(rpc "$P1" sendrawtransaction "[\"$(cat "$IT_DIR/tx$i.hex")\"]")
    case $r in *'"error"'*) fail "sendrawtransaction $i: $r" ;; esac
    r=$(rpc "$P1" generate '[1]')
    case $r in *'"error"'*) fail "generate $i: $r" ;; esac
done
TIP=$(result "$P1" getblockcount '[]')
assert_eq "$TIP" 30 "tip after 30 big blocks"
# 30 blocks of ~95 kB crossed the 2 MB threshold: wait for the monitor
for _ in $(seq 50); do
    [ "$(metric "$P1" ccnode_prune_runs_total)" != 0 ] && break
    sleep 0.1
done
[ "$(metric "$P1" ccnode_prune_runs_total)" != 0 ] || fail "no prune after crossing the threshold"
sleep 0.5 # one more tick: nothing left above the threshold
grep '"event":"blocks_pruned"' "$IT_DIR/auto.log" >"$IT_DIR/prunes" || fail "no blocks_pruned log line"
note "prunes: $(wc -l <"$IT_DIR/prunes"), last: $(tail -n 1 "$IT_DIR/prunes")"
python3 - "$IT_DIR/prunes" <<'PY' || fail "prune log lines"
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    assert e["size_bytes"] <= 1000000, e          # down to the target
    assert e["bytes_freed"] > 0 and e["to_height"] >= e["from_height"], e
    assert e["tip"] - e["to_height"] >= 5, e      # min_blocks_kept
PY
info=$(rpc "$P1" getblockchaininfo '[]')
PH=$(field "$info" '.result.pruneheight')
SIZE=$(field "$info" '.result.size_on_disk')
[ "$PH" -gt 0 ] || fail "pruneheight $PH after pruning"
[ "$SIZE" -le 2000000 ] || fail "size_on_disk $SIZE above the threshold after the monitor ran"
assert_eq "$(disk_bytes "$D1")" "$SIZE" "bytes on disk = size_on_disk"
assert_eq "$(metric "$P1" ccnode_storage_bytes)" "$SIZE" "ccnode_storage_bytes"
assert_eq "$(metric "$P1" ccnode_pruned_height)" "$PH" "ccnode_pruned_height"
[ "$(metric "$P1" ccnode_pruned_blocks_total)" = "$PH" ] || fail "pruned blocks total != pruneheight"
for h in 0 $((PH - 1)); do
    [ ! -e "$D1/blocks/$(printf %010d "$h").blk" ] || fail "block file $h still there"
done
for h in $(seq "$PH" "$TIP"); do
    [ -e "$D1/blocks/$(printf %010d "$h").blk" ] || fail "block file $h missing"
done
PRUNED_HASH=$(result "$P1" getblockhash "[$((PH - 1))]")
KEPT_HASH=$(result "$P1" getblockhash "[$PH]")
TIP_HASH=$(result "$P1" getbestblockhash '[]')
r=$(rpc "$P1" getblock "[\"$PRUNED_HASH\"]")
assert_eq "$(field "$r" '.error.code')" -1 "getblock pruned: code"
assert_eq "$(field "$r" '.error.message')" "Block not available (pruned data)" "getblock pruned: message"
r=$(rpc "$P1" getblockheader "[\"$PRUNED_HASH\"]")
assert_eq "$(field "$r" '.result.height')" $((PH - 1)) "getblockheader of a pruned block"
assert_eq "$(field "$r" '.result.nTx')" 2 "pruned block's nTx from the headers index"
r=$(rpc "$P1" getblock "[\"$KEPT_HASH\"]")
assert_eq "$(field "$r" '.result.tx | length')" 2 "getblock of the first kept block"
d=$(curl -s "http://127.0.0.1:$P1/health/detailed")
assert_eq "$(field "$d" '.storage.pruning.prune_height')" "$PH" "detailed prune_height"
[ "$(field "$d" '.storage.disk_free_bytes')" -gt 0 ] || fail "detailed disk_free_bytes"

note "restart"
stop_bg auto
bg auto "$NODE" --config "$IT_DIR/auto.yaml"
wait_http "http://127.0.0.1:$P1/health/ready" 20
info=$(rpc "$P1" getblockchaininfo '[]')
assert_eq "$(field "$info" '.result.pruneheight')" "$PH" "pruneheight after restart"
assert_eq "$(field "$info" '.result.blocks')" "$TIP" "tip height after restart"
assert_eq "$(field "$info" '.result.bestblockhash')" "$TIP_HASH" "tip hash after restart"
r=$(rpc "$P1" getblock "[\"$PRUNED_HASH\"]")
assert_eq "$(field "$r" '.error.message')" "Block not available (pruned data)" "pruned after restart"
assert_eq "$(result "$P1" getblockhash "[$((PH - 1))]")" "$PRUNED_HASH" "pruned block's hash after restart"
r=$(rpc "$P1" generate '[1]')
assert_eq "$(result "$P1" getblockcount '[]')" $((TIP + 1)) "a new block after restart"
r=$(rpc "$P1" getblock "[\"$(result "$P1" getbestblockhash '[]')\"]")
assert_eq "$(field "$r" '.result.previousblockhash')" "$TIP_HASH" "new block extends the old tip"

# ---------------------------------------------------------------- 2. manual
P2=$(free_port)
start_node manual "$P2" "{pruning_mode: custom, pruning_threshold_gb: 10, pruning_target_gb: 5, min_blocks_kept: 10, check_interval_secs: 0.2}"
rpc "$P2" generate '[50]' >/dev/null
assert_eq "$(result "$P2" pruneblockchain '[20]')" 20 "pruneblockchain 20 answers the last pruned height"
assert_eq "$(field "$(rpc "$P2" getblockchaininfo '[]')" '.result.pruneheight')" 21 "pruneheight after manual prune"
r=$(rpc "$P2" pruneblockchain '[51]')
assert_eq "$(field "$r" '.error.code')" -8 "prune beyond the tip: code"
assert_eq "$(field "$r" '.error.message')" "Blockchain is shorter than the attempt to prune." "prune beyond the tip"
r=$(rpc "$P2" pruneblockchain '[-1]')
assert_eq "$(field "$r" '.error.message')" "Negative block height." "negative height"
assert_eq "$(result "$P2" pruneblockchain '[10]')" 20 "pruning below the prune height changes nothing"
# min_blocks_kept 10 of tip 50: heights 41..50 stay whatever is asked
assert_eq "$(result "$P2" pruneblockchain '[50]')" 40 "pruneblockchain capped by min_blocks_kept"
r=$(rpc "$P2" getblock "[\"$(result "$P2" getblockhash '[40]')\"]")
assert_eq "$(field "$r" '.error.message')" "Block not available (pruned data)" "height 40 pruned"
r=$(rpc "$P2" getblock "[\"$(result "$P2" getblockhash '[41]')\"]")
assert_eq "$(field "$r" '.result.height')" 41 "height 41 kept"
assert_eq "$(find "$IT_DIR/manual/blocks" -name '*.blk' | wc -l)" 10 "block files left"
# a block time instead of a height: every block is newer than 2001
assert_eq "$(result "$P2" pruneblockchain '[1000000001]')" 40 "pruneblockchain by time"

P3=$(free_port)
start_node off "$P3" "{pruning_mode: disabled}"
r=$(rpc "$P3" pruneblockchain '[1]')
assert_eq "$(field "$r" '.error.code')" -1 "pruneblockchain when disabled: code"
assert_eq "$(field "$r" '.error.message')" "Cannot prune blocks because node is not in prune mode." "pruneblockchain when disabled"
info=$(rpc "$P3" getblockchaininfo '[]')
assert_eq "$(field "$info" '.result.pruned')" false "not pruned when disabled"
assert_eq "$(field "$info" '.result | has("pruneheight")')" false "no pruneheight when disabled"

# aggressive: over 30 kB of own storage, down to the 8 most recent blocks (the
# headers index of 301 blocks alone is 29 kB: the threshold stays crossed)
P4=$(free_port)
start_node aggr "$P4" "{pruning_mode: aggressive, pruning_threshold_gb: 0.00003, pruning_target_gb: 0.00002, min_blocks_kept: 8, check_interval_secs: 0.2}"
rpc "$P4" generate '[300]' >/dev/null
for _ in $(seq 50); do
    [ "$(metric "$P4" ccnode_pruned_height)" = 293 ] && break
    sleep 0.1
done
assert_eq "$(metric "$P4" ccnode_pruned_height)" 293 "aggressive keeps min_blocks_kept (tip 300)"
assert_eq "$(find "$IT_DIR/aggr/blocks" -name '*.blk' | wc -l)" 8 "aggressive: block files left"
grep -q '"event":"prune_limited"' "$IT_DIR/aggr.log" || fail "no prune_limited warning while the kept blocks exceed the threshold"

# evm: a pruned block is an error, not null
P5=$(free_port)
start_node evm "$P5" "{pruning_mode: aggressive, pruning_threshold_gb: 0.000001, pruning_target_gb: 0.000001, min_blocks_kept: 1, check_interval_secs: 0.2}" evm "block_interval_secs: 1"
for _ in $(seq 150); do
    [ "$(metric "$P5" ccnode_pruned_height)" -ge 2 ] 2>/dev/null && break
    sleep 0.1
done
[ "$(metric "$P5" ccnode_pruned_height)" -ge 2 ] || fail "evm node did not prune"
r=$(rpc "$P5" eth_getBlockByNumber '["0x1", false]')
assert_eq "$(field "$r" '.error.code')" -32000 "evm pruned block: code"
assert_eq "$(field "$r" '.error.message')" "block pruned" "evm pruned block: message"
r=$(rpc "$P5" eth_getBlockByNumber '["latest", false]')
[ "$(field "$r" '.result.number')" != null ] || fail "evm latest block: $r"
note "pruning ok"
