#!/bin/bash
# cc-node: both RPC flavours end to end (every method and error path, via
# tests/data/node/rpc_check.py), warm-up, every health state, persistence
# across restart, cookie lifecycle, the rate limiter (burst, refill,
# per-method override, batch cost, 429 + Retry-After), /metrics through
# promtool, and config errors.
source "$(dirname "$0")/lib.sh"
it_setup
CHECK=$CCGW_ROOT/tests/data/node/rpc_check.py
NODE=$CCGW_BIN/cc-node

http_code() { curl -s -o "$IT_DIR/body" -w '%{http_code}' "$@"; }

# --- config errors: non-zero exit with file:line:col
printf 'node:\n  data_dir: %s/x\n  flavour: dogecoin\n' "$IT_DIR" >"$IT_DIR/bad.yaml"
if "$NODE" --config "$IT_DIR/bad.yaml" 2>"$IT_DIR/bad.err"; then fail "bad flavour accepted"; fi
grep -q 'bad.yaml:3:' "$IT_DIR/bad.err" || fail "no line number in: $(cat "$IT_DIR/bad.err")"
note "config error: $(cat "$IT_DIR/bad.err")"
printf 'node:\n  data_dir: %s/x\nstorage:\n  pruning_threshold_gb: 10\n  pruning_target_gb: 20\n' "$IT_DIR" >"$IT_DIR/bad2.yaml"
if "$NODE" --config "$IT_DIR/bad2.yaml" 2>"$IT_DIR/bad2.err"; then fail "target > threshold accepted"; fi
grep -q 'pruning_target_gb' "$IT_DIR/bad2.err" || fail "pruning error: $(cat "$IT_DIR/bad2.err")"
"$NODE" --version | grep -q '^cc-node ' || fail "--version"

# --- bitcoin flavour with auth, cookie and a 2 s warm-up
PORT=$(free_port)
DATA=$IT_DIR/btc
cat >"$IT_DIR/btc.yaml" <<YAML
node:
  flavour: bitcoin
  data_dir: $DATA
  listen: 127.0.0.1:$PORT
  warmup_secs: 2
rpc:
  auth:
    user: alice
    password: s3cret
    cookie_file: .cookie
    rate_limit_enabled: false
logging: {format: json, level: info}
YAML
bg btc "$NODE" --config "$IT_DIR/btc.yaml"
wait_port "$PORT"
assert_eq "$(http_code "http://127.0.0.1:$PORT/health/ready")" 503 "ready while warming up"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["chain_initialized"] is True and d["warming_up"] is True and d["status"]=="not_ready", d' "$IT_DIR/body" || fail "ready body"
assert_eq "$(http_code "http://127.0.0.1:$PORT/health")" 503 "/health while warming up"
grep -q '"status":"starting"' "$IT_DIR/body" || fail "/health body: $(cat "$IT_DIR/body")"
assert_eq "$(http_code "http://127.0.0.1:$PORT/health/live")" 200 "live while warming up"
assert_eq "$(http_code -u alice:s3cret -d '{"method":"getblockcount","id":1}' "http://127.0.0.1:$PORT/")" 500 "RPC in warm-up is HTTP 500"
grep -q '"code":-28' "$IT_DIR/body" || fail "warm-up error: $(cat "$IT_DIR/body")"
wait_http "http://127.0.0.1:$PORT/health/ready" 10
assert_eq "$(stat -c %a "$DATA/.cookie")" 600 "cookie file mode"
python3 "$CHECK" bitcoin "$PORT" alice s3cret "$DATA/.cookie" >"$IT_DIR/check-btc.log" || { cat "$IT_DIR/check-btc.log"; fail "bitcoin checks"; }
tail -n 1 "$IT_DIR/check-btc.log"
read -r _ HEIGHT TXID < <(grep '^STATE' "$IT_DIR/check-btc.log")

assert_eq "$(http_code "http://127.0.0.1:$PORT/health/detailed")" 200 "detailed when healthy"
python3 - "$IT_DIR/body" "$HEIGHT" <<'PY' || fail "detailed body"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["status"] == "healthy"
assert d["chain"]["initialized"] is True and d["chain"]["height"] == int(sys.argv[2]), d
assert len(d["chain"]["tip_hash"]) == 64
assert d["storage"]["available"] is True and d["storage"]["size_bytes"] > 0
assert d["network"] == {"peers_connected": 0, "peers_max": 125}
assert d["rpc"]["enabled"] is True and d["rpc"]["requests_processed"] > 50
PY
grep -q '"event":"rpc_request","request_id":"[0-9a-f]\{16\}","method":"getblockcount","client_addr":"127.0.0.1:[0-9]*","user":"alice","request_size":' "$IT_DIR/btc.log" || fail "structured request log line"

# storage unavailable: the data dir disappears (root ignores permissions)
mv "$DATA" "$DATA.away"
for _ in $(seq 30); do [ "$(http_code "http://127.0.0.1:$PORT/health/ready")" = 503 ] && break; sleep 0.2; done
assert_eq "$(http_code "http://127.0.0.1:$PORT/health/ready")" 503 "ready when storage is gone"
grep -q '"storage_available":false' "$IT_DIR/body" || fail "storage flag: $(cat "$IT_DIR/body")"
assert_eq "$(http_code "http://127.0.0.1:$PORT/health")" 503 "/health when storage is gone"
grep -q '"status":"unhealthy"' "$IT_DIR/body" || fail "unhealthy body"
assert_eq "$(http_code "http://127.0.0.1:$PORT/health/detailed")" 503 "detailed when storage is gone"
mv "$DATA.away" "$DATA"
wait_http "http://127.0.0.1:$PORT/health/ready" 10
note "storage recovered"

# metrics: conventional names, promtool
curl -fsS "http://127.0.0.1:$PORT/metrics" >"$IT_DIR/metrics.txt"
promtool check metrics <"$IT_DIR/metrics.txt" || fail "promtool check metrics"
for m in ccnode_blocks_processed_total ccnode_block_validation_seconds_bucket ccnode_peers_connected \
         ccnode_network_sent_bytes_total ccnode_network_received_bytes_total ccnode_database_size_bytes \
         ccnode_utxos ccnode_mempool_transactions ccnode_mempool_size_bytes \
         'ccnode_rpc_requests_total{method="getblockcount"}' 'ccnode_rpc_errors_total{method="sendrawtransaction"}' \
         'ccnode_rpc_request_duration_seconds_bucket{method="getblock"' ccnode_rate_limited_requests_total; do
    grep -qF "$m" "$IT_DIR/metrics.txt" || fail "metric $m missing"
done
assert_eq "$(awk '$1=="ccnode_chain_height"{print $2}' "$IT_DIR/metrics.txt")" "$HEIGHT" "ccnode_chain_height"
note "promtool check metrics: ok"

# restart: chain, UTXO set survive; cookie removed at exit and renewed
OLD_COOKIE=$(cat "$DATA/.cookie")
UTXOS=$(awk '$1=="ccnode_utxos"{print $2}' "$IT_DIR/metrics.txt")
stop_bg btc
[ ! -e "$DATA/.cookie" ] || fail "cookie left after exit"
bg btc2 "$NODE" --config "$IT_DIR/btc.yaml"
wait_http "http://127.0.0.1:$PORT/health/ready" 15
[ "$(cat "$DATA/.cookie")" != "$OLD_COOKIE" ] || fail "cookie not renewed"
GOT=$(curl -fsS -u alice:s3cret -d '{"method":"getblockcount","id":1}' "http://127.0.0.1:$PORT/" | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"])')
assert_eq "$GOT" "$HEIGHT" "height after restart"
assert_eq "$(curl -fsS "http://127.0.0.1:$PORT/metrics" | awk '$1=="ccnode_utxos"{print $2}')" "$UTXOS" "UTXO count after restart"
curl -sS -u alice:s3cret -d "{\"method\":\"sendrawtransaction\",\"params\":[\"$(python3 -c 'import hashlib; print("02000000"+"01"+hashlib.sha256(b"a").hexdigest()+"00000000"+"00"+"ffffffff"+"01"+(1000).to_bytes(8,"little").hex()+"0151"+"00000000")')\"],\"id\":1}" "http://127.0.0.1:$PORT/" | grep -q '"code":-27' || fail "confirmed tx not known after restart"
stop_bg btc2

# a corrupt chainstate is refused with a reason, non-zero exit
printf 'garbage' >"$DATA/chainstate.dat"
if "$NODE" --config "$IT_DIR/btc.yaml" 2>"$IT_DIR/corrupt.err"; then fail "corrupt chainstate accepted"; fi
grep -q 'checksum mismatch' "$IT_DIR/corrupt.err" || fail "corrupt reason: $(tail -n 2 "$IT_DIR/corrupt.err")"

# --- rate limiter: ip 5/s burst 10; getblocktemplate 0.5/s burst 2
RPORT=$(free_port)
cat >"$IT_DIR/rl.yaml" <<YAML
node: {data_dir: $IT_DIR/rl, listen: "127.0.0.1:$RPORT"}
rpc:
  auth:
    rate_limit_enabled: true
    rate_limit_rate: 5
    rate_limit_burst: 10
    per_method_limits:
      - {method: getblocktemplate, rate: 0.5, burst: 2}
logging: {format: text, level: warn}
YAML
bg rl "$NODE" --config "$IT_DIR/rl.yaml"
wait_http "http://127.0.0.1:$RPORT/health/ready"
python3 - "$RPORT" <<'PY' || fail "rate limiter"
import http.client, json, sys, time
port = int(sys.argv[1])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
def post(body):
    conn.request("POST", "/", body=json.dumps(body))
    r = conn.getresponse()
    return r.status, r.getheader("Retry-After"), json.loads(r.read() or b"null")
gbt = {"jsonrpc": "2.0", "method": "getblocktemplate", "params": [{"rules": ["segwit"]}], "id": 1}
assert post(gbt)[0] == 200 and post(gbt)[0] == 200, "gbt burst of 2"
s, ra, d = post(gbt)
assert s == 429 and ra == "2" and d["error"]["code"] == -32005 and d["id"] == 1, (s, ra, d)
print("ok: per-method override: 3rd getblocktemplate -> 429, Retry-After 2")
batch = [{"jsonrpc": "2.0", "method": "getblockcount", "id": i} for i in range(8)]
s, ra, d = post(batch)
assert s == 200 and len(d) == 8, (s, d)
s, ra, d = post(batch[:4])
assert s == 429 and int(ra) >= 1, (s, ra)
print("ok: batch costs one token per call (8 fit the 10-token burst, 4 more do not)")
time.sleep(1.3)
n = 0
while post({"method": "getblockcount", "id": 1})[0] == 200:
    n += 1
assert 5 <= n <= 8, n
print("ok: refill at 5/s: %d calls after 1.3 s" % n)
PY
M=$(curl -fsS "http://127.0.0.1:$RPORT/metrics")
echo "$M" | grep -q 'ccnode_rate_limited_requests_total{layer="method"} 1' || fail "method limit metric"
echo "$M" | grep -Eq 'ccnode_rate_limited_requests_total\{layer="ip"\} [1-9]' || fail "ip limit metric"

# --- evm flavour
EPORT=$(free_port)
cat >"$IT_DIR/evm.yaml" <<YAML
node: {flavour: evm, chain_id: 1337, data_dir: $IT_DIR/evm, listen: "127.0.0.1:$EPORT"}
YAML
bg evm "$NODE" --config "$IT_DIR/evm.yaml"
wait_http "http://127.0.0.1:$EPORT/health/ready"
python3 "$CHECK" evm "$EPORT" >"$IT_DIR/check-evm.log" || { cat "$IT_DIR/check-evm.log"; fail "evm checks"; }
tail -n 1 "$IT_DIR/check-evm.log"
curl -fsS "http://127.0.0.1:$EPORT/metrics" | promtool check metrics || fail "promtool (evm)"
echo "node rpc: all checks passed"
