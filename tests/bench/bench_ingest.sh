#!/bin/bash
# Ingest under load: the local stack (scripts/stack up on free ports) driven
# by wrk through the edge at its maximum rate for BENCH_SECS (default 60):
# keep-alive POSTs of one JSON-RPC call with a valid Host of the evm chain.
# Reports requests/s, HAProxy DroppedLogs on http0/http1 (target 0), and the
# relays counted by the http-tier gateways and, after `scripts/stack flush`,
# by relaystats (chain 0001) against the responses wrk got with a relay status
# (100-499; target equal). The one request `stack up` sends is subtracted.
source "$(dirname "$0")/../integration/lib.sh"
it_setup
SECS=${BENCH_SECS:-60}
CONNS=${BENCH_CONNS:-64}
HOST=894334g9f403.0001.chains.local.test
[ -x "$CCGW_BIN/cc-gateway" ] || fail "$CCGW_BIN/cc-gateway missing: run make first"

# Every DESIGN.md port shifted by one offset where all are free.
stack_offset
export CCGW_PORT_OFFSET=$OFF CCGW_RUN_DIR=$IT_DIR/run CCGW_BIN
EDGE=$((8080 + OFF)); GW_HTTP0=$((9101 + OFF)); GW_HTTP1=$((9102 + OFF))

stack_down() { "$CCGW_ROOT/scripts/stack" down >"$IT_DIR/down.log" 2>&1 || cat "$IT_DIR/down.log" >&2; }
trap 'rc=$?; stack_down; (exit $rc); it_cleanup' EXIT

metric() { # port name -> value (0 when absent)
    curl -fsS --max-time 2 "http://127.0.0.1:$1/metrics" 2>/dev/null \
        | awk -v m="$2" '$1 == m || index($1, m "{") == 1 { v = $2; exit } END { print v + 0 }'
}
tier_sum() { # name -> sum over http0 and http1
    echo $(( $(metric "$GW_HTTP0" "$1") + $(metric "$GW_HTTP1" "$1") ))
}
db_relays() {
    "$CCGW_BIN/relaystats" --config "$CCGW_RUN_DIR/ccgw.yaml" query --from -1d --to now \
        --step 1d --chain 0001 --format csv 2>"$IT_DIR/query.err" | python3 -c '
import csv, sys
rows = list(csv.DictReader(sys.stdin))
col = next((c for c in (rows[0].keys() if rows else []) if c in ("relays", "count", "total")), None)
print(sum(int(float(r[col] or 0)) for r in rows) if col else "")'
}

note "stack up on port offset $OFF"
"$CCGW_ROOT/scripts/stack" up >"$IT_DIR/up.log" 2>&1 || { cat "$IT_DIR/up.log" >&2; fail "stack up"; }
R0=$(tier_sum ccgw_gateway_relays_total)
D0=$(tier_sum ccgw_gateway_haproxy_dropped_logs_total)
note "before: gateways counted $R0 relays (stack up's own request), dropped logs $D0"

# Counts responses by status class per thread; done() prints the totals.
cat >"$IT_DIR/ingest.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}'
wrk.headers["Host"] = "$HOST"
wrk.headers["Content-Type"] = "application/json"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; c4 = 0; other = 0 end
function response(status, headers, body)
    if status >= 100 and status < 400 then ok = ok + 1
    elseif status < 500 then c4 = c4 + 1 else other = other + 1 end
end
function done(summary, latency, requests)
    local a, b, c = 0, 0, 0
    for _, t in ipairs(threads) do a = a + t:get("ok"); b = b + t:get("c4"); c = c + t:get("other") end
    io.write(string.format("status-1xx-3xx %d\nstatus-4xx %d\nstatus-5xx-other %d\nrelay-status %d\n",
                           a, b, c, a + b))
end
LUA
note "sample answer: $(curl -sS -w ' (HTTP %{http_code})' -H "Host: $HOST" \
    -d '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}' "http://127.0.0.1:$EDGE/")"
note "wrk -t2 -c$CONNS -d${SECS}s through the edge (Host $HOST, keep-alive)"
wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$IT_DIR/ingest.lua" "http://127.0.0.1:$EDGE/" \
    >"$IT_DIR/wrk.out" 2>&1 || { cat "$IT_DIR/wrk.out" >&2; fail "wrk"; }
cat "$IT_DIR/wrk.out"
RPS=$(awk '/^Requests\/sec:/ { print $2 }' "$IT_DIR/wrk.out")
TOTAL=$(awk '/ requests in / { print $1 }' "$IT_DIR/wrk.out")
NON2XX=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$IT_DIR/wrk.out")
SOCKERR=$(awk '/Socket errors:/ { s = 0; for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) s += $i; print s }' "$IT_DIR/wrk.out")
WANT=$(awk '/^relay-status/ { print $2 }' "$IT_DIR/wrk.out")
[ -n "$RPS" ] && [ -n "$TOTAL" ] && [ -n "$WANT" ] || fail "cannot read wrk's output"
OK=$((TOTAL - ${NON2XX:-0} - ${SOCKERR:-0}))

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
# What the http tier answered on be_0001 with a relay status: HAProxy's own
# count, exact where wrk's misses the requests in flight at its deadline.
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
DB=""
if "$CCGW_ROOT/scripts/stack" flush >"$IT_DIR/flush.log" 2>&1; then
    DB=$(db_relays)
    [ -n "$DB" ] || note "relaystats query failed: $(tail -n 1 "$IT_DIR/query.err")"
else
    note "flush failed: $(tail -n 1 "$IT_DIR/flush.log")"
    grep -h '"flush_failed"' "$CCGW_RUN_DIR"/logs/gw-http*.out | tail -n 1
fi
GW=$((R1 - R0)); DROPPED=$((D1 - D0))

python3 - "$RPS" "$TOTAL" "$OK" "$WANT" "$GW" "${DB:-}" "$DROPPED" "$CONNS" "$SECS" "$HA" <<'PY'
import json, sys
rps, total, ok, want, gw, db, dropped, conns, secs, ha = sys.argv[1:11]
rps, total, ok, want, gw, dropped, ha = float(rps), int(total), int(ok), int(want), int(gw), int(dropped), int(ha)
cmd = "scripts/stack up; wrk -t2 -c%s -d%ss POST eth_blockNumber via the edge (keep-alive)" % (conns, secs)
print("edge throughput: %.0f requests/s (%d requests, %d 2xx/3xx, %d with a relay status 100-499)"
      % (rps, total, ok, want))
print("HAProxy DroppedLogs on http0+http1 during the run: %d (target 0)" % dropped)
print("relays counted by the gateways: %d; in relaystats after flush: %s; HAProxy http tier answered %d "
      "(be_0001, 1xx-4xx); wrk saw %d (up to %s more were in flight at its deadline)"
      % (gw, db if db else "unavailable", ha, want, conns))
out = [
    {"bench": "ingest", "metric": "requests/s through the edge", "value": round(rps), "peer": None,
     "peer_value": None, "ratio": None, "target": "max rate, no loss", "met": None, "command": cmd},
    {"bench": "ingest", "metric": "HAProxy DroppedLogs (http0+http1)", "value": dropped, "peer": None,
     "peer_value": None, "ratio": None, "target": "0", "met": dropped == 0, "command": cmd},
    {"bench": "ingest", "metric": "relays counted by cc-gateway", "value": gw,
     "peer": "HAProxy http tier be_0001 1xx-4xx", "peer_value": ha, "ratio": round(gw / ha, 6) if ha else None,
     "target": "equal", "met": gw == ha, "command": cmd},
    {"bench": "ingest", "metric": "relays counted by cc-gateway", "value": gw, "peer": "wrk responses 100-499",
     "peer_value": want, "ratio": round(gw / want, 6) if want else None,
     "target": "equal (+ <= %s in flight)" % conns, "met": 0 <= gw - want <= int(conns), "command": cmd},
]
db = int(db) if db else None
out.append({"bench": "ingest", "metric": "relays in relaystats after flush", "value": db,
            "peer": "HAProxy http tier be_0001 1xx-4xx", "peer_value": ha,
            "ratio": round(db / ha, 6) if ha and db is not None else None, "target": "equal",
            "met": db == ha, "command": cmd + "; scripts/stack flush; relaystats query --chain 0001"})
for o in out:
    print(json.dumps(o))
PY
