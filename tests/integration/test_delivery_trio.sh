#!/bin/bash
# N relays through the real HAProxy trio (edge -> http0 -> cc-node, the
# local stack on free ports), SIGUSR1 to every cc-gateway (scripts/stack
# flush), and relay_counts holds exactly N more, by chain and by account;
# Redis' real-time hashes agree.
source "$(dirname "$0")/lib.sh"
it_setup

STACK="$CCGW_ROOT/scripts/stack"
stack_start
PG_URL="postgresql://postgres@127.0.0.1:$((55432 + OFF))/ccgw"
REDIS_PORT=$((56379 + OFF))

by_pair() {
    psql_q "SELECT string_agg(chain || ':' || account || '=' || s, ' ' ORDER BY chain, account)
            FROM (SELECT chain, account, sum(relays) s FROM relay_counts GROUP BY 1, 2) x"
}
# stack up sends relays of its own to prove routing: flush them first
"$STACK" flush >"$IT_DIR/flush0.log" 2>&1 || { cat "$IT_DIR/flush0.log"; fail "first flush"; }
BEFORE=$(by_pair)
note "before: ${BEFORE:-nothing}"

N=800
python3 - "$EDGE" "$N" >"$IT_DIR/sent.json" <<'PY'
import http.client, json, sys
edge, n = int(sys.argv[1]), int(sys.argv[2])
pairs = [("0021", "894334g9f403"), ("0001", "894334g9f403"), ("0001", "5e2a91c07d3b"),
         ("0021", "a1b2c3d4e5f6")]
sent = {}
conns = [http.client.HTTPConnection("127.0.0.1", edge, timeout=10) for _ in range(4)]
for i in range(n):
    chain, acct = pairs[i % 4]
    method = "getblockcount" if chain == "0021" else "eth_blockNumber"
    body = json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": []})
    c = conns[i % 4]
    c.request("POST", "/", body, {"Host": f"{acct}.{chain}.chains.local.test",
                                  "Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    if r.status != 200:
        sys.exit(f"request {i} to {acct}.{chain}: HTTP {r.status}")
    sent[f"{chain}:{acct}"] = sent.get(f"{chain}:{acct}", 0) + 1
print(json.dumps(sent))
PY
[ -s "$IT_DIR/sent.json" ] || fail "traffic failed"
note "sent: $(cat "$IT_DIR/sent.json")"

"$STACK" flush >"$IT_DIR/flush.log" 2>&1 || { cat "$IT_DIR/flush.log"; fail "stack flush (SIGUSR1)"; }
AFTER=$(by_pair)
EXPECT=$(python3 - "$BEFORE" "$IT_DIR/sent.json" <<'PY'
import json, sys
d = {}
for kv in sys.argv[1].split():
    k, v = kv.rsplit("=", 1)
    d[k] = int(v)
for k, v in json.load(open(sys.argv[2])).items():
    d[k] = d.get(k, 0) + v
print(" ".join(f"{k}={d[k]}" for k in sorted(d)))
PY
)
assert_eq "$AFTER" "$EXPECT" "relay_counts by chain and account = before + sent"
assert_eq "$(psql_q "SELECT count(*) = count(DISTINCT (gateway, instance, flush_seq)) FROM relay_flushes")" "t" "ledger rows unique"

# Redis (real time, published every second) reaches the same per-pair totals
redis_pairs() {
    local k
    for k in $(redis-cli -p "$REDIS_PORT" --scan --pattern 'ccgw:relays:*'); do
        redis-cli -p "$REDIS_PORT" hgetall "$k" | paste - -
    done | awk '{ s[$1] += $2 } END { for (k in s) print k "=" s[k] }' | sort | tr '\n' ' ' | sed 's/ $//'
}
for _ in $(seq 50); do [ "$(redis_pairs)" = "$EXPECT" ] && break; sleep 0.1; done
assert_eq "$(redis_pairs)" "$EXPECT" "Redis by chain:account"
