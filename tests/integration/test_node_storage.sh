#!/bin/bash
# cc-node with its data dir on a small tmpfs of its own (root ignores file
# permissions, so chmod proves nothing): the disk fills up, then the file
# system turns read-only. Each time /health/ready is 503 with the reason,
# reads keep being served, block production fails cleanly (no block file,
# no header record, same tip), and when the disk is usable again the node
# recovers by itself at the next monitor tick. A restart finds the same
# chain: every height has the hash it had.
source "$(dirname "$0")/lib.sh"
it_setup
NODE=$CCGW_BIN/cc-node
MNT=$IT_DIR/mnt

cleanup_mount() {
    local rc=$?
    umount -l "$MNT" 2>/dev/null
    (exit $rc)
    it_cleanup
}
trap cleanup_mount EXIT

mkdir -p "$MNT"
mount -t tmpfs -o size=8m tmpfs "$MNT" ||
    fail "mount -t tmpfs is not permitted here: this test must run as root with mount rights"

rpc() {
    printf '{"jsonrpc":"2.0","method":"%s","params":%s,"id":1}' "$2" "$3" |
        curl -s --max-time 30 --data-binary @- "http://127.0.0.1:$1/"
}
result() { rpc "$@" | jq -r .result; }
http_code() { curl -s -o "$IT_DIR/body" -w '%{http_code}' "$@"; }
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2}'; }

# wait_ready PORT CODE: until /health/ready answers CODE (monitor ticks 0.2 s)
wait_ready() {
    for _ in $(seq 50); do
        [ "$(http_code "http://127.0.0.1:$1/health/ready")" = "$2" ] && return 0
        sleep 0.1
    done
    fail "/health/ready never answered $2: $(cat "$IT_DIR/body")"
}

# hashes PORT: "height hash" for every block
hashes() {
    local tip h
    tip=$(result "$1" getblockcount '[]')
    for h in $(seq 0 "$tip"); do echo "$h $(result "$1" getblockhash "[$h]")"; done
}

# unusable PORT REASON: the checks that hold while storage is unusable
unusable() {
    local port=$1 reason=$2 tip hash r
    wait_ready "$port" 503
    assert_eq "$(jq -r .reason "$IT_DIR/body")" "$reason" "ready reason"
    assert_eq "$(jq -r .storage_available "$IT_DIR/body")" false "storage_available"
    assert_eq "$(curl -s "http://127.0.0.1:$port/health/detailed" | jq -r .storage.reason)" "$reason" "detailed reason"
    assert_eq "$(metric "$port" ccnode_storage_available)" 0 "ccnode_storage_available"
    grep -q "\"event\":\"storage_unavailable\".*$reason" "$IT_DIR/node.log" || fail "no storage_unavailable log line"
    tip=$(result "$port" getblockcount '[]')
    hash=$(result "$port" getbestblockhash '[]')
    # reads are served
    assert_eq "$(rpc "$port" getblock "[\"$hash\"]" | jq -r .result.height)" "$tip" "getblock of the tip"
    assert_eq "$(rpc "$port" getblockheader "[\"$(result "$port" getblockhash '[3]')\"]" | jq -r .result.height)" 3 "getblockheader"
    # production fails cleanly
    r=$(rpc "$port" generate '[1]')
    assert_eq "$(jq -r .error.code <<<"$r")" -1 "generate refused"
    note "generate: $(jq -r .error.message <<<"$r")"
    assert_eq "$(result "$port" getblockcount '[]')" "$tip" "tip unchanged"
    assert_eq "$(result "$port" getbestblockhash '[]')" "$hash" "tip hash unchanged"
    [ ! -e "$DATA/blocks/$(printf %010d $((tip + 1))).blk" ] || fail "block file of the failed block left"
    [ -z "$(find "$DATA" -name '*.tmp')" ] || fail "temp files left: $(find "$DATA" -name '*.tmp')"
    assert_eq "$(stat -c %s "$DATA/headers.dat")" $((8 + (tip + 1) * 96)) "headers index unchanged"
}

PORT=$(free_port)
DATA=$MNT/data
cat >"$IT_DIR/node.yaml" <<YAML
node: {flavour: bitcoin, data_dir: $DATA, listen: "127.0.0.1:$PORT"}
storage: {pruning_mode: disabled, check_interval_secs: 0.2, min_free_bytes: 1MiB}
rpc: {auth: {rate_limit_enabled: false}}
logging: {format: json, level: info}
YAML
bg node "$NODE" --config "$IT_DIR/node.yaml"
wait_ready "$PORT" 200
rpc "$PORT" generate '[20]' >/dev/null
assert_eq "$(result "$PORT" getblockcount '[]')" 20 "20 blocks"
hashes "$PORT" >"$IT_DIR/hashes.before"

note "disk full"
dd if=/dev/zero of="$MNT/fill" bs=4k 2>/dev/null && fail "8 MB tmpfs never filled"
unusable "$PORT" "storage: no space"
rm "$MNT/fill"
wait_ready "$PORT" 200
grep -q '"event":"storage_available"' "$IT_DIR/node.log" || fail "no storage_available log line"
rpc "$PORT" generate '[1]' >/dev/null
assert_eq "$(result "$PORT" getblockcount '[]')" 21 "a block once the space is back"

note "read-only"
mount -o remount,ro "$MNT" || fail "remount read-only (a descriptor open for writing?)"
unusable "$PORT" "storage: read-only"
mount -o remount,rw "$MNT" || fail "remount read-write"
wait_ready "$PORT" 200
rpc "$PORT" generate '[1]' >/dev/null
assert_eq "$(result "$PORT" getblockcount '[]')" 22 "a block once writable again"
assert_eq "$(metric "$PORT" ccnode_storage_available)" 1 "ccnode_storage_available again"

note "restart"
hashes "$PORT" >"$IT_DIR/hashes.after"
head -n 21 "$IT_DIR/hashes.after" | cmp -s - "$IT_DIR/hashes.before" || fail "hashes of 0..20 changed"
stop_bg node
bg node "$NODE" --config "$IT_DIR/node.yaml"
wait_ready "$PORT" 200
hashes "$PORT" >"$IT_DIR/hashes.restart"
cmp -s "$IT_DIR/hashes.after" "$IT_DIR/hashes.restart" || fail "chain differs after restart"
assert_eq "$(wc -l <"$IT_DIR/hashes.restart")" 23 "heights 0..22 after restart"
rpc "$PORT" generate '[1]' >/dev/null
assert_eq "$(result "$PORT" getblockcount '[]')" 23 "production after restart"
note "storage ok"
