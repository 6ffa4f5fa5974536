#!/bin/bash
# Served means billed, through live changes. On the real stack, one wrk per
# host (nine hosts of test accounts on chains 0021, 0001 and a chain 0002
# that does not exist yet) sends JSON-RPC through the edge at full rate,
# while a seeded loop applies LIVE_CHANGES (20) random changes with
# scripts/swap-backends: add, remove and move accounts between providers,
# remove and add back a server, add chain 0002 (the restart path: both HTTP
# tiers restart, drained), and kill -9 the HTTP tiers' workers now and then.
# At the end, per account and chain:
#   - relays in PostgreSQL = the node answers wrk got for that host (a
#     JSON-RPC body, status below 500), exactly;
#   - invalid_host + unrouted in PostgreSQL = the 404s wrk got (hosts not
#     routed at the time: removed, or before their chain existed), so no
#     request a node answered was counted as a non-relay;
#   - each HTTP tier's per-account reconciliation with HAProxy's own count
#     (stick table st_routes) shows no gap and no excess;
#   - each provider's export holds exactly its accounts' relays for the
#     buckets it owned them (a move takes effect at the next five-minute
#     boundary after the swap's sync), as this test recorded the moves.
# LIVE_SEED picks the changes (printed; rerun with it to replay a failure).
source "$(dirname "$0")/lib.sh"
it_setup
stack_start
SEED=${LIVE_SEED:-$((RANDOM % 1000))}
CHANGES=${LIVE_CHANGES:-20}
note "seed $SEED, $CHANGES changes"
DOMAIN=chains.local.test
GW=$(awk '$1 == "name:" { print $2; exit }' "$RUN/ccgw.yaml")
STATE=$IT_DIR/state.json
psql_stack() { psql -h 127.0.0.1 -p $((55432 + OFF)) -U postgres -XAtq ccgw -c "$1"; }

# The test's accounts: id, chain. lc-a8 is on chain 0002, added live later.
POOL="lc-a0:0021 lc-a1:0021 lc-a2:0021 lc-a3:0021 lc-a4:0021 lc-a5:0001 lc-a6:0001 lc-a7:0021 lc-a8:0002"

# config.py STATE OUT: the stack's config with the test's accounts, servers
# and chains as STATE says.
cat >"$IT_DIR/config.py" <<'PY'
import json, sys, yaml
state = json.load(open(sys.argv[1]))
conf = yaml.safe_load(open(sys.argv[3]))
if state["chain0002"] and not any(c["id"] == "0002" for c in conf["chains"]):
    evm = next(c for c in conf["chains"] if c["id"] == "0001")
    conf["chains"].append({"id": "0002", "name": "evm-two", "flavour": "evm",
                           "backends": [dict(b) for b in evm["backends"]]})
    # the edge needs a certificate for the new chain's hosts
    certs = conf["tls"]["certificates"]
    d = certs[0]["cert"].rsplit("/", 1)[0]
    certs.append({"name": "chain-0002", "cert": d + "/0002.crt", "key": d + "/0002.key"})
for c in conf["chains"]:
    if c["id"] == "0001" and not state["evm_b"]:
        c["backends"] = [b for b in c["backends"] if b["name"] != "evm-b"]
provs = {p["name"]: p for p in conf["providers"]}
for name in ("lc-p1", "lc-p2", "lc-p3"):
    provs.setdefault(name, {"name": name, "accounts": []})
for p in provs.values():
    p["accounts"] = [a for a in p["accounts"] if not a["id"].startswith("lc-")]
for acct, a in sorted(state["accounts"].items()):
    if a["provider"]:
        provs[a["provider"]]["accounts"].append({"id": acct, "chains": [a["chain"]]})
conf["providers"] = [p for p in provs.values() if p["accounts"]]
yaml.safe_dump(conf, open(sys.argv[2], "w"), sort_keys=False)
PY
cp "$RUN/ccgw.yaml" "$IT_DIR/base.yaml"
"$CCGW_ROOT/scripts/local-ca" "$RUN/tls" ensure "$DOMAIN" 0002 >"$IT_DIR/local-ca.log" 2>&1 \
    || { cat "$IT_DIR/local-ca.log"; fail "local-ca for chain 0002"; }
# the evm-b server as the stack has it, to add back
python3 - "$STATE" "$POOL" <<'PY'
import json, sys
accounts = {}
for i, item in enumerate(sys.argv[2].split()):
    acct, chain = item.split(":")
    p = ["lc-p1", "lc-p2", None][i % 3] if chain != "0002" else None
    # provider: the config's; owner: PostgreSQL's (a removed account keeps its owner)
    accounts[acct] = {"chain": chain, "provider": p, "owner": p}
json.dump({"accounts": accounts, "chain0002": False, "evm_b": True, "moves": []}, open(sys.argv[1], "w"))
PY

apply_state() { # apply_state WHAT: write the config of STATE and swap to it
    python3 "$IT_DIR/config.py" "$STATE" "$IT_DIR/next.yaml" "$IT_DIR/base.yaml" || fail "config.py"
    local rc=0
    "$CCGW_ROOT/scripts/swap-backends" "$IT_DIR/next.yaml" >>"$IT_DIR/swaps.log" 2>&1 || rc=$?
    [ $rc = 0 ] || { tail -n 20 "$IT_DIR/swaps.log"; fail "swap-backends ($1) exit $rc"; }
}
apply_state "initial accounts"
BASE_T=$(date +%s)
BASE_REFUSED=$(psql_stack "SELECT coalesce(sum(requests), 0) FROM non_relay_counts WHERE gateway = '$GW' AND reason IN ('invalid_host', 'unrouted')")

note "one wrk per host through the edge"
WRKS=()
for item in $POOL; do
    acct=${item%%:*}; chain=${item##*:}
    wrk_relay_lua "$IT_DIR/$acct.lua" "$acct.$chain.$DOMAIN" getblockcount "$IT_DIR/stop"
    wrk -t1 -c2 -d600s -s "$IT_DIR/$acct.lua" "http://127.0.0.1:$EDGE/" >"$IT_DIR/$acct.wrk" 2>/dev/null &
    WRKS+=($!)
done
trap 'rc=$?; kill "${WRKS[@]}" 2>/dev/null; trap "" INT TERM; stack_down; (exit $rc); it_cleanup' EXIT

# change.py STATE SEED N: pick and record change N; prints what to do
cat >"$IT_DIR/change.py" <<'PY'
import json, random, sys, time
state_file, seed, n, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
st = json.load(open(state_file))
rnd = random.Random(seed * 1000 + n)
accts = st["accounts"]
live = [a for a, v in accts.items() if v["provider"] and (v["chain"] != "0002" or st["chain0002"])]
gone = [a for a, v in accts.items() if not v["provider"] and (v["chain"] != "0002" or st["chain0002"])]
# an owner change made too close to a bucket boundary would leave it
# unclear which side the sync fell on: none is made then
near = (300 - time.time() % 300) < 25 or time.time() % 300 < 5
kinds = ["add", "remove", "move", "move", "server", "kill"]
if n == total // 2 and not st["chain0002"]:
    kind = "chain"
else:
    kind = rnd.choice(kinds)
    if kind == "move" and near: kind = "add"
    if kind == "add" and not gone: kind = "remove"
    if kind == "remove" and len(live) < 3: kind = "add"
    if kind in ("remove", "move") and not live: kind = "server"
out = kind
st["pending"] = None
if kind == "add":
    a = rnd.choice(sorted(gone))
    to = rnd.choice(["lc-p1", "lc-p2", "lc-p3"])
    if near and accts[a]["owner"]:
        to = accts[a]["owner"]
    accts[a]["provider"] = to
    out += " " + a + " to " + to
    if accts[a]["owner"] and accts[a]["owner"] != to:
        # back in the config under another provider: an owner change
        st["pending"] = {"account": a, "from": accts[a]["owner"], "to": to}
    accts[a]["owner"] = to
elif kind == "remove":
    a = rnd.choice(sorted(live)); accts[a]["provider"] = None; out += " " + a
elif kind == "move":
    a = rnd.choice(sorted(live))
    to = rnd.choice([p for p in ["lc-p1", "lc-p2", "lc-p3"] if p != accts[a]["provider"]])
    out += " " + a + " from " + accts[a]["provider"] + " to " + to
    st["pending"] = {"account": a, "from": accts[a]["owner"], "to": to}
    accts[a]["provider"] = accts[a]["owner"] = to
elif kind == "server":
    st["evm_b"] = not st["evm_b"]; out += (" add" if st["evm_b"] else " remove") + " evm-b"
elif kind == "chain":
    st["chain0002"] = True; accts["lc-a8"]["provider"] = accts["lc-a8"]["owner"] = "lc-p3"
    out += " 0002 with lc-a8 (restart path)"
elif kind == "kill":
    out += " " + rnd.choice(["http0", "http1"])
json.dump(st, open(state_file, "w"))
print(out)
PY

for n in $(seq "$CHANGES"); do
    what=$(python3 "$IT_DIR/change.py" "$STATE" "$SEED" "$n" "$CHANGES") || fail "change.py"
    note "change $n: $what"
    case $what in
        kill*)
            tier=${what#kill }
            pid=$(gw_pid "$tier" worker)
            [ -n "$pid" ] && kill -9 "$pid"
            sleep 1
            ;;
        *)
            t0=$(date +%s)
            apply_state "$what"
            t1=$(date +%s)
            # an owner change takes effect at the next boundary after the sync
            b0=$(( t0 / 300 * 300 + 300 )); b1=$(( t1 / 300 * 300 + 300 ))
            python3 - "$STATE" "$b0" "$b1" <<'PY' || fail "an owner change straddled a bucket boundary: its boundary is unknown"
import json, sys
st = json.load(open(sys.argv[1]))
m = st.get("pending")
if m:
    if sys.argv[2] != sys.argv[3]:
        sys.exit(1)
    m["at"] = int(sys.argv[2])
    st["moves"].append(m)
    st["pending"] = None
json.dump(st, open(sys.argv[1], "w"))
PY
            ;;
    esac
done

note "stop the load, flush"
sleep 2
touch "$IT_DIR/stop"
sleep 2 # each wrk thread looks for the stop file once a second, then sends monitor requests only
kill -INT "${WRKS[@]}" # wrk ends its run and prints its counts
for p in "${WRKS[@]}"; do wait "$p" || fail "a wrk failed"; done
END_T=$(date +%s)
"$CCGW_ROOT/scripts/stack" flush >"$IT_DIR/flush.log" 2>&1 || { cat "$IT_DIR/flush.log"; fail "flush"; }

note "per account: PostgreSQL = what the nodes answered"
total_answered=0; total_refused=0
for item in $POOL; do
    acct=${item%%:*}; chain=${item##*:}
    answered=$(wrk_field "$IT_DIR/$acct.wrk" answered); refused=$(wrk_field "$IT_DIR/$acct.wrk" refused)
    other=$(( $(wrk_field "$IT_DIR/$acct.wrk" requests) - answered - refused - $(wrk_field "$IT_DIR/$acct.wrk" monitors) ))
    billed=$(psql_stack "SELECT coalesce(sum(relays), 0) FROM relay_totals WHERE gateway = '$GW' AND account = '$acct' AND chain = '$chain'")
    echo "   $acct.$chain: answered $answered, refused $refused, other $other, billed $billed"
    assert_eq "$billed" "$answered" "$acct on $chain: billed = answered by a node"
    total_answered=$((total_answered + answered)); total_refused=$((total_refused + refused))
done
[ "$total_answered" -gt 1000 ] || fail "only $total_answered relays: the load did not run"
# A 404 is invalid_host (the map had no entry) or unrouted: while chain
# 0002 is added, apply loads the map with its hosts into the running tiers
# before their restart brings be_0002, and HAProxy sends such a route to
# be_reject. Nothing a node answered is among them.
refused_pg=$(psql_stack "SELECT coalesce(sum(requests), 0) FROM non_relay_counts WHERE gateway = '$GW' AND reason IN ('invalid_host', 'unrouted')")
note "non-relays: $(psql_stack "SELECT string_agg(reason || ' ' || n, ', ') FROM (SELECT reason, sum(requests) AS n FROM non_relay_counts WHERE gateway = '$GW' GROUP BY 1) x")"
assert_eq "$((refused_pg - BASE_REFUSED))" "$total_refused" "invalid_host + unrouted = the 404s for hosts not routed at the time"

note "per-account reconciliation with HAProxy's st_routes"
for t in http0 http1; do
    port=$(( $([ $t = http0 ] && echo 9101 || echo 9102) + OFF ))
    # a newer judgement if one comes (the backup tier may have nothing to judge)
    metric_wait_grows "$port" ccgw_gateway_reconcile_account_checks_total 30 || true
    assert_eq "$(metric_sum "$port" ccgw_gateway_reconcile_account_gap_relays)" 0 "$t: per-account gap"
    assert_eq "$(metric_sum "$port" ccgw_gateway_reconcile_account_excess_relays)" 0 "$t: per-account excess"
done

note "each provider's export: its accounts' relays for the buckets it owned them"
FROM=$(( BASE_T / 300 * 300 - 300 )); TO=$(( END_T / 300 * 300 + 600 ))
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
psql_stack "SELECT account, chain, extract(epoch FROM bucket_start)::bigint, sum(relays) FROM relay_totals
            WHERE gateway = '$GW' AND account LIKE 'lc-%' GROUP BY 1, 2, 3" >"$IT_DIR/buckets.txt"
for p in lc-p1 lc-p2 lc-p3; do
    "$CCGW_BIN/relaystats" --config "$RUN/ccgw.yaml" export --provider "$p" --from "$(iso $FROM)" \
        --to "$(iso $TO)" --format json >"$IT_DIR/export-$p.json" 2>"$IT_DIR/export-$p.err" \
        || { cat "$IT_DIR/export-$p.err"; fail "export $p"; }
done
python3 - "$STATE" "$IT_DIR" <<'PY' || fail "exports differ from the recorded ownership"
import json, sys
st = json.load(open(sys.argv[1])); d = sys.argv[2]
# the owner of each account at each bucket: the first owner it had, then the moves
moves = sorted(st["moves"], key=lambda m: m["at"])
def owner(acct, bucket, final):
    # walk the moves of this account backwards from its final owner
    o = final
    for m in reversed([m for m in moves if m["account"] == acct]):
        if bucket < m["at"]:
            o = m["from"]
    return o
want = {}
for line in open(d + "/buckets.txt"):
    acct, chain, bucket, relays = line.strip().split("|")
    o = owner(acct, int(bucket), st["accounts"][acct]["owner"])
    if o is None:
        continue
    want.setdefault(o, {}).setdefault((acct, chain), 0)
    want[o][(acct, chain)] += int(relays)
bad = 0
for p in ("lc-p1", "lc-p2", "lc-p3"):
    e = json.load(open("%s/export-%s.json" % (d, p)))
    got = {(r["account"], r["chain"]): r["relays"] for r in e["rows"] if r["relays"]}
    w = {k: v for k, v in want.get(p, {}).items() if v}
    print("   %s: export %s, expected %s" % (p, sorted(got.items()), sorted(w.items())))
    if got != w:
        bad = 1
print("   moves:", moves)
sys.exit(bad)
PY
echo "ok: every provider's export matches the recorded ownership"
