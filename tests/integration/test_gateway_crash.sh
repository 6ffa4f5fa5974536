#!/bin/bash
# Crash-proof metering on the real stack (scripts/stack: edge -> http0 ->
# cc-node, http1 as backup), wrk at full rate through the edge. Each case
# ends with PostgreSQL (after scripts/stack flush) == wrk's relay answers:
#   1. kill -9 of http0's worker (and of the edge's): 0 lost, 0 doubled,
#      same HAProxy pid, 0 socket errors, 0 non-2xx; the worker counts again
#      within 1 s; the kept edge log has no hole (one line per request)
#   2. kill -9 of the worker at seeded random instants of 30 s of load
#   3. kill -9 of http0's HAProxy: its supervisor restarts it, the edge
#      fails over meanwhile, nothing it logged is lost, and every answer a
#      client got is counted (HTTP tiers log at answer-header time): wrk's
#      answers <= counted <= calls the nodes served, each gap <= 32 in flight
#   4. kill -9 of http0's supervisor: within 1 s no HAProxy of http0 runs
#      (parent-death signal), the edge fails over to http1, the orphaned
#      worker drains the pipe; `scripts/stack up` brings the tier back with
#      one listener; the same bounds as 3
#   5. a stale HAProxy of http0 (left serving without a supervisor) is
#      found by its stats socket and stopped by the next supervisor
# and the reconciliation gap of http0 and http1 is 0 after each case.
source "$(dirname "$0")/lib.sh"
it_setup
# the edge's kept log of case 1 (about 500,000 lines) must not be rotated
# away before it is recounted
export CCGW_REQUEST_LOG_MAX=400MB
# this test kills supervisors and looks at what their tier does without one:
# no keeper restarting them behind its back
export CCGW_STACK_KEEPER=off
stack_start
H0=$((8081 + OFF)); M_H0=$((9101 + OFF)); M_H1=$((9102 + OFF))
HOST=894334g9f403.0021.chains.local.test
LOAD_SECS=${CRASH_LOAD_SECS:-10}

# gone PID: not running (a zombie nobody reaped yet counts as gone)
gone() { ! kill -0 "$1" 2>/dev/null || [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
# edge_lines: request lines in the edge's kept log (a recount of its segments)
edge_lines() {
    "$CCGW_BIN/cc-gateway" replay --config "$RUN/ccgw.yaml" --source edge "$RUN"/logs/edge/requests.0*.log \
        | jq -er '.lines - .events'
}
# load NAME SECS: wrk through the edge in the background (relays for SECS,
# then only monitor requests until wrk's -d ends 3 s later)
load() {
    wrk_relay_lua "$IT_DIR/$1.lua" "$HOST" getblockcount "$IT_DIR/$1.stop" "$2"
    wrk -t2 -c32 -d"$(($2 + 3))s" -s "$IT_DIR/$1.lua" "http://127.0.0.1:$EDGE/" >"$IT_DIR/$1.wrk" 2>&1 &
    WRK=$!
}
# settle CASE BASE: flush, then PostgreSQL's new relays must equal wrk's
settle() {
    local total relays
    total=$(stack_flush_total) || fail "$1: flush"
    relays=$(wrk_field "$IT_DIR/$1.wrk" relays)
    note "$1: wrk relays $relays, bad $(wrk_field "$IT_DIR/$1.wrk" bad), errors $(wrk_field "$IT_DIR/$1.wrk" errors), PostgreSQL +$((total - $2))"
    [ "$relays" -gt 1000 ] || fail "$1: only $relays relays"
    assert_eq "$((total - $2))" "$relays" "$1: relays in PostgreSQL = wrk's relay answers"
    BASE=$total
}
# served: getblockcount calls the nodes of chain 0021 processed (their own
# counter): every one came through a valid route, so each is a relay
served() {
    local p n t=0
    for p in $((18332 + OFF)) $((18333 + OFF)); do
        n=$(curl -fsS "http://127.0.0.1:$p/metrics" \
            | awk '$1 == "ccnode_rpc_requests_total{method=\"getblockcount\"}" { print $2 }')
        t=$((t + ${n:-0}))
    done
    echo $t
}
# settle_killed CASE WRK EXTRA WHAT SERVED0: after HAProxy died by SIGKILL,
# flush. The HTTP tiers log a request when the node's answer headers arrive,
# before the client gets them (option logasap), so
#   answered (wrk's relay answers + EXTRA of the test's own)
#     <= counted (PostgreSQL's new relays) <= served (by the nodes)
# counted - answered: answers HAProxy had logged but no client got when it
# was killed; served - counted: calls a node had taken but whose answer
# HAProxy never had. Each is at most the 32 requests in flight; both printed.
settle_killed() {
    local total relays counted srv
    total=$(stack_flush_total) || fail "$1: flush"
    relays=$(( $(wrk_field "$IT_DIR/$2.wrk" relays) + $3 ))
    counted=$((total - BASE))
    srv=$(( $(served) - $5 ))
    note "$1: $4 kill -9: answered $relays, counted $counted, served by the nodes $srv"
    [ "$counted" -ge "$relays" ] || fail "$1: $((relays - counted)) answered relays not counted"
    [ "$counted" -le "$srv" ] || fail "$1: $((counted - srv)) relays counted that no node served (counted twice)"
    [ $((counted - relays)) -le 32 ] || fail "$1: $((counted - relays)) counted but unanswered, more than the 32 in flight"
    [ $((srv - counted)) -le 32 ] || fail "$1: $((srv - counted)) served but not counted, more than the 32 in flight"
    echo "ok: $1: answered $relays <= counted $counted <= served $srv (in flight: 32)"
    BASE=$total
}
# gaps_zero CASE: the reconciliation of both HTTP tiers finds nothing missing
gaps_zero() {
    local m checks0
    for m in $M_H0 $M_H1; do
        checks0=$(metric_sum $m ccgw_gateway_reconcile_checks_total)
        for _ in $(seq 100); do
            [ "$(metric_sum $m ccgw_gateway_reconcile_checks_total)" -gt "${checks0:-0}" ] && break
            sleep 0.1
        done
        assert_eq "$(metric_sum $m ccgw_gateway_reconcile_gap_relays)" 0 "$1: reconciliation gap on :$m"
    done
}

BASE=$(stack_flush_total) || fail "first flush"

note "1. kill -9 of http0's worker and of the edge's worker under load"
hpid=$(cat "$RUN/data/http0/haproxy.pid")
L0=$(edge_lines)
load one "$LOAD_SECS"
sleep 3
w=$(gw_pid http0 worker); [ -n "$w" ] || fail "no http0 worker"
kill -9 "$w"
sleep 2
e=$(gw_pid edge worker); [ -n "$e" ] || fail "no edge worker"
kill -9 "$e"
wait $WRK
assert_eq "$(wrk_field "$IT_DIR/one.wrk" errors)" 0 "1: socket errors"
assert_eq "$(wrk_field "$IT_DIR/one.wrk" bad)" 0 "1: non-2xx answers"
assert_eq "$(cat "$RUN/data/http0/haproxy.pid")" "$hpid" "1: http0 HAProxy pid"
kill -0 "$hpid" || fail "1: http0 HAProxy is gone"
[ "$(metric_sum $M_H0 ccgw_gateway_worker_restarts_total)" -ge 1 ] || fail "1: worker restart not counted"
resume_ms=$(python3 - "$RUN/logs/gw-http0.out" "$w" <<'PY'
import json, sys, datetime
t = lambda s: datetime.datetime.strptime(s["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
died = None
for line in open(sys.argv[1]):
    try: e = json.loads(line)
    except ValueError: continue
    if e.get("event") == "worker_exited" and str(e.get("pid")) == sys.argv[2]: died = t(e)
    elif died and e.get("event") == "started" and "worker" in e.get("msg", ""):
        print(int((t(e) - died) * 1000)); break
PY
)
note "1: the new worker counted again $resume_ms ms after the old one died"
[ -n "$resume_ms" ] && [ "$resume_ms" -lt 1000 ] || fail "1: counting did not resume within 1 s ($resume_ms ms)"
settle one "$BASE"
L1=$(edge_lines) answered=$(wrk_field "$IT_DIR/one.wrk" requests)
# wrk's 32 connections may each have one request in flight at its deadline:
# the edge logs those too (aborted), wrk does not count them
note "1: edge log lines $((L1 - L0)), requests wrk saw answered $answered"
[ $((L1 - L0)) -ge "$answered" ] && [ $((L1 - L0)) -le $((answered + 32)) ] \
    || fail "1: the kept edge log has a hole: $((L1 - L0)) lines for $answered answered requests"
echo "ok: 1: the kept edge log has a line for every answered request"
gaps_zero 1

SEED=${CRASH_SEED:-$RANDOM}
note "2. kill -9 of http0's worker at random instants of 30 s of load (seed $SEED)"
RANDOM=$SEED
load two 30
t=0 kills=0
while [ $t -lt 28 ]; do
    d=$((RANDOM % 5 + 1)); t=$((t + d)); [ $t -ge 28 ] && break
    sleep "$d.$((RANDOM % 10))"
    w=$(gw_pid http0 worker)
    [ -n "$w" ] && kill -9 "$w" && kills=$((kills + 1))
done
wait $WRK
note "2: $kills kills (seed $SEED)"
[ $kills -ge 3 ] || fail "2: only $kills kills"
assert_eq "$(wrk_field "$IT_DIR/two.wrk" errors)" 0 "2: socket errors"
assert_eq "$(wrk_field "$IT_DIR/two.wrk" bad)" 0 "2: non-2xx answers"
settle two "$BASE"
gaps_zero 2

note "3. kill -9 of http0's HAProxy under load"
S0=$(served)
load three "$LOAD_SECS"
sleep 3
hpid=$(cat "$RUN/data/http0/haproxy.pid")
kill -9 "$hpid"
wait $WRK
npid=$(cat "$RUN/data/http0/haproxy.pid")
[ "$npid" != "$hpid" ] && kill -0 "$npid" || fail "3: http0 HAProxy was not restarted"
note "3: HAProxy $hpid -> $npid; the edge answered $(wrk_field "$IT_DIR/three.wrk" bad) non-2xx and $(wrk_field "$IT_DIR/three.wrk" errors) socket errors meanwhile"
settle_killed 3 three 0 HAProxy "$S0"
gaps_zero 3

note "4. kill -9 of http0's supervisor under load"
R1=$(metric_sum $M_H1 ccgw_gateway_relays_total)
S0=$(served)
load four "$LOAD_SECS"
sleep 3
sup=$(gw_pid http0 supervisor); hpid=$(cat "$RUN/data/http0/haproxy.pid")
kill -9 "$sup"
sleep 1
gone "$hpid" || fail "4: http0 HAProxy $hpid still runs 1 s after its supervisor died"
echo "show info" | socat -t 2 - "UNIX-CONNECT:$RUN/data/http0.sock" 2>/dev/null | grep -q '^Pid:' \
    && fail "4: something answers on http0's stats socket"
echo "ok: no HAProxy of http0 1 s after its supervisor died"
wait $WRK
R2=$(metric_sum $M_H1 ccgw_gateway_relays_total)
[ "${R2:-0}" -gt "${R1:-0}" ] || fail "4: the edge did not fail over to http1 ($R1 -> $R2)"
note "4: http1 took $((R2 - R1)) relays; the edge answered $(wrk_field "$IT_DIR/four.wrk" bad) non-2xx meanwhile"
grep -q '"orphan_drain"' "$RUN/logs/gw-http0.out" || fail "4: the orphaned worker did not drain the pipe"
"$CCGW_ROOT/scripts/stack" up >"$IT_DIR/up2.log" 2>&1 || { cat "$IT_DIR/up2.log"; fail "4: stack up"; }
listeners=$(ss -Hltnp "sport = :$H0" | grep -o 'pid=[0-9]*' | sort -u | wc -l)
assert_eq "$listeners" 1 "4: processes listening on http0's port after stack up"
assert_eq "$(pgrep -fc "^haproxy -f $RUN/haproxy/http0.cfg")" 1 "4: http0 HAProxy processes"
# `stack up` sends one relay of its own (it waits for the edge to route)
settle_killed 4 four 1 supervisor "$S0"
gaps_zero 4

note "5. a stale HAProxy of http0 (no supervisor, serving) is stopped before a new one starts"
sup=$(gw_pid http0 supervisor)
kill -9 "$sup"
for _ in $(seq 50); do gone "$(cat "$RUN/data/http0/haproxy.pid")" && break; sleep 0.1; done
# what an older cc-gateway, or a hand-started HAProxy, leaves behind
bg stale haproxy -f "$RUN/haproxy/http0.cfg"
STALE=${IT_PIDS[stale]}
wait_port "$H0" 10
"$CCGW_ROOT/scripts/stack" up >"$IT_DIR/up3.log" 2>&1 || { cat "$IT_DIR/up3.log"; fail "5: stack up"; }
gone "$STALE" || fail "5: the stale HAProxy $STALE still runs beside the new tier"
grep -q '"stale_haproxy"' "$RUN/logs/gw-http0.out" || fail "5: no stale_haproxy event"
assert_eq "$(ss -Hltnp "sport = :$H0" | grep -o 'pid=[0-9]*' | sort -u | wc -l)" 1 "5: processes listening on http0's port"
echo "ok: 5: the stale HAProxy $STALE was stopped, one listener"
