#!/bin/bash
# Ingest under load: the local stack (scripts/stack up on free ports) driven
# by wrk through the edge at its maximum rate for BENCH_SECS (default 60):
# keep-alive POSTs of one JSON-RPC call with a valid Host of the evm chain.
# Reports relays/s, HAProxy DroppedLogs on edge, http0 and http1 (target 0),
# and the relays counted by the http-tier gateways and, after
# `scripts/stack flush`, by relaystats (chain 0001), against the relays wrk
# got answered (target equal) and HAProxy's own be_0001 count.
#
# For an exact count at wrk's deadline the lua script sends, for the last 2 s,
# the HTTP tiers' monitor request (/ccgw-health: answered by the tier itself,
# never forwarded nor logged): the requests wrk abandons at its deadline are
# no relays. The one request `stack up` sends goes to chain 0021; nothing
# else may reach chain 0001, or the counts would differ by it.
source "$(dirname "$0")/../integration/lib.sh"
it_setup
SECS=${BENCH_SECS:-60}
CONNS=${BENCH_CONNS:-64}
HOST=894334g9f403.0001.chains.local.test
[ -x "$CCGW_BIN/cc-gateway" ] || fail "$CCGW_BIN/cc-gateway missing: run make first"

stack_start
GW_HTTP0=$((9101 + OFF)); GW_HTTP1=$((9102 + OFF))

metric() { # port name -> value (0 when absent)
    curl -fsS --max-time 2 "http://127.0.0.1:$1/metrics" 2>/dev/null \
        | awk -v m="$2" '$1 == m || index($1, m "{") == 1 { v = $2; exit } END { print v + 0 }'
}
tier_sum() { # name -> sum over http0 and http1
    echo $(( $(metric "$GW_HTTP0" "$1") + $(metric "$GW_HTTP1" "$1") ))
}

# stack up's own request (chain 0021) is counted a batch after it was
# answered: wait for it, so that it is in R0, not in the run's count
for _ in $(seq 50); do
    R0=$(tier_sum ccgw_gateway_relays_total)
    [ "$R0" -ge 1 ] && break
    sleep 0.1
done
D0=$(tier_sum ccgw_gateway_haproxy_dropped_logs_total)
note "before: gateways counted $R0 relays (stack up's own request), dropped logs $D0"

wrk_relay_lua "$IT_DIR/ingest.lua" "$HOST" eth_blockNumber "$IT_DIR/no-stop-file" "$SECS"
note "wrk -t2 -c$CONNS -d$((SECS + 2))s through the edge (Host $HOST, keep-alive; monitor requests in the last 2 s)"
wrk -t2 -c"$CONNS" -d"$((SECS + 2))s" --timeout 10s --latency -s "$IT_DIR/ingest.lua" \
    "http://127.0.0.1:$EDGE/" >"$IT_DIR/wrk.out" 2>&1 || { cat "$IT_DIR/wrk.out" >&2; fail "wrk"; }
cat "$IT_DIR/wrk.out"
WANT=$(wrk_field "$IT_DIR/wrk.out" relays); BAD=$(wrk_field "$IT_DIR/wrk.out" bad)
ERRORS=$(wrk_field "$IT_DIR/wrk.out" errors)
[[ "$WANT" =~ ^[0-9]+$ ]] || fail "cannot read wrk's output"
[ "$(wrk_field "$IT_DIR/wrk.out" monitors)" -gt 0 ] || note "the monitor tail never ran: wrk's count may miss in-flight relays"

# The gateways read HAProxy's log asynchronously: wait until the count settles.
note "waiting for the gateways to count the run"
prev=-1 stable=0
for _ in $(seq 60); do
    R1=$(tier_sum ccgw_gateway_relays_total)
    if [ "$R1" = "$prev" ]; then stable=$((stable + 1)); else stable=0; fi
    prev=$R1
    [ "$R1" -ge $((R0 + WANT)) ] && [ $stable -ge 1 ] && break
    [ $stable -ge 6 ] && break
    sleep 0.5
done
D1=$(tier_sum ccgw_gateway_haproxy_dropped_logs_total)
# HAProxy's own DroppedLogs on every tier (the edge too: its lines are kept).
HA_DROPPED=0
for t in edge http0 http1; do
    n=$(haproxy_dropped_logs $t)
    [[ "$n" =~ ^[0-9]+$ ]] || fail "show info on $t"
    note "HAProxy $t DroppedLogs $n"
    HA_DROPPED=$((HA_DROPPED + n))
done
# What the http tier answered on be_0001 with a relay status: HAProxy's own
# count, a second witness besides wrk.
HA=0
for t in http0 http1; do
    n=$(echo "show stat" | socat - "UNIX-CONNECT:$CCGW_RUN_DIR/data/$t.sock" | python3 -c '
import csv, sys
rows = csv.DictReader(l.lstrip("# ") for l in sys.stdin if l.strip())
print(sum(int(r.get(k) or 0) for r in rows if r["pxname"] == "be_0001" and r["svname"] == "BACKEND"
          for k in ("hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx")))') || fail "show stat on $t"
    HA=$((HA + n))
done
# stack up's request went to chain 0021: relaystats counts 0001 alone. A
# failed flush is a finding of the benchmark, reported, not an abort.
note "scripts/stack flush, then relaystats query --chain 0001"
if ! DB=$(stack_flush_total --chain 0001 2>"$IT_DIR/query.err"); then
    DB=""
    note "flush or query failed: $(tail -n 1 "$IT_DIR/query.err")"
    grep -h '"flush_failed"' "$CCGW_RUN_DIR"/logs/gw-http*.out | tail -n 1
fi
GW=$((R1 - R0)); GW_DROPPED=$((D1 - D0))

python3 - "$WANT" "$GW" "${DB:-}" "$HA_DROPPED" "$GW_DROPPED" "$CONNS" "$SECS" "$HA" "$BAD" "$ERRORS" <<'PY'
import json, sys
want, gw, db, dropped, gw_dropped, conns, secs, ha, bad, errors = sys.argv[1:11]
want, gw, dropped, gw_dropped, ha, bad, errors = (int(x) for x in (want, gw, dropped, gw_dropped, ha, bad, errors))
db = int(db) if db else None
rps = want / float(secs)
cmd = ("scripts/stack up; wrk -t2 -c%s -d%ss POST eth_blockNumber via the edge (keep-alive), "
       "then 2 s of /ccgw-health" % (conns, secs))
print("edge throughput: %.0f relays/s (%d relays answered in %s s; %d non-2xx, %d socket errors)"
      % (rps, want, secs, bad, errors))
print("HAProxy DroppedLogs on edge+http0+http1: %d (target 0); exported by the http-tier gateways: %d"
      % (dropped, gw_dropped))
print("relays counted by the gateways: %d; in relaystats after flush: %s; HAProxy http tier answered %d "
      "(be_0001, 1xx-4xx); wrk got %d" % (gw, db if db is not None else "unavailable", ha, want))
r = lambda a, b: round(a / b, 6) if a is not None and b else None
out = [
    {"bench": "ingest", "metric": "requests/s through the edge (relays)", "value": round(rps),
     "peer": None, "peer_value": None, "ratio": None, "target": "max rate, no loss", "met": None,
     "command": cmd},
    {"bench": "ingest", "metric": "HAProxy DroppedLogs (edge+http0+http1)", "value": dropped,
     "peer": None, "peer_value": None, "ratio": None, "target": "0", "met": dropped == 0, "command": cmd},
    {"bench": "ingest", "metric": "relays counted by cc-gateway", "value": gw,
     "peer": "wrk relay answers (2xx JSON-RPC)", "peer_value": want, "ratio": r(gw, want),
     "target": "equal", "met": gw == want, "command": cmd},
    {"bench": "ingest", "metric": "relays counted by cc-gateway", "value": gw,
     "peer": "HAProxy http tier be_0001 1xx-4xx", "peer_value": ha, "ratio": r(gw, ha),
     "target": "equal", "met": gw == ha, "command": cmd},
    {"bench": "ingest", "metric": "relays in relaystats after flush", "value": db,
     "peer": "wrk relay answers (2xx JSON-RPC)", "peer_value": want, "ratio": r(db, want),
     "target": "equal", "met": db == want,
     "command": cmd + "; scripts/stack flush; relaystats query --chain 0001"},
]
for o in out:
    print(json.dumps(o))
PY
