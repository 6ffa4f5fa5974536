#!/bin/bash
# Random kill -9 under load, of every process whose death must cost no relay
# and count none twice: the cc-gateway workers of the three tiers, Redis,
# relaystats and PostgreSQL, at seeded random instants of CHAOS_SECS of wrk
# through the edge, while flushes run back to back (so that kills land in
# the middle of flushes and folds too). `scripts/stack up` brings back what
# died (Redis, relaystats, PostgreSQL; the supervisors restart workers).
# Then, after a last `up` and a flush:
#   PostgreSQL's new relays == wrk's relay answers + the relays `up` itself
#   sent (its probe, /?ccgw-stack-probe in the edge's kept log)
#   == the requests HAProxy's http tiers sent to be_0021 (their counters)
# CHAOS_SEED picks the victims and the instants (printed; default: the clock).
source "$(dirname "$0")/lib.sh"
it_setup
# the edge's kept log must keep every probe line until they are counted
export CCGW_REQUEST_LOG_MAX=1GB
stack_start
HOST=894334g9f403.0021.chains.local.test
SECS=${CHAOS_SECS:-30}
SEED=${CHAOS_SEED:-$(date +%s)}
RANDOM=$SEED
note "seed $SEED ($SECS s of load)"

# probes: the `up` relays in the edge's kept log (distinct request ids)
probes() {
    cat "$RUN"/logs/edge/requests.0*.log | awk '/ccgw-stack-probe/ { print $NF }' | sort -u | wc -l
}
# up: bring back what died; one at a time (-o: the daemons it starts must
# not inherit the lock)
up() { flock -o "$IT_DIR/up.lock" "$CCGW_ROOT/scripts/stack" up >>"$IT_DIR/up-chaos.log" 2>&1; }

BASE=$(stack_flush_total) || fail "first flush"
P0=$(probes) S0=$(be_sent)
wrk_relay_lua "$IT_DIR/c.lua" "$HOST" getblockcount "$IT_DIR/c.stop" "$SECS"
wrk -t2 -c32 -d"$((SECS + 3))s" -s "$IT_DIR/c.lua" "http://127.0.0.1:$EDGE/" >"$IT_DIR/c.wrk" 2>&1 &
WRK=$!
( while kill -0 $WRK 2>/dev/null; do
      timeout 20 "$CCGW_ROOT/scripts/stack" flush >>"$IT_DIR/flush-chaos.log" 2>&1
      sleep 0.5
  done ) &

victims=(gw:edge gw:http0 gw:http1 redis relaystats postgres)
start=$SECONDS end=$((SECONDS + SECS - 1)) kills=0
while [ $SECONDS -lt $end ]; do
    sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.3 + (r % 200) / 100 }')"
    v=${victims[$((RANDOM % ${#victims[@]}))]}
    case $v in
        gw:*) pid=$(gw_pid "${v#gw:}" worker) ;;
        postgres) pid=$(head -n 1 "$RUN/pg/postmaster.pid" 2>/dev/null) ;;
        *) pid=$(cat "$RUN/pids/$v.pid" 2>/dev/null) ;;
    esac
    { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; } || { note "$v: not running"; continue; }
    kills=$((kills + 1))
    note "t=$((SECONDS - start)) kill -9 $v ($pid)"
    case $v in
        redis|relaystats|postgres) (sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.1f", (r % 30) / 10 }')"; up) & ;;
    esac
done
wait
up || { tail -n 20 "$IT_DIR/up-chaos.log" >&2; fail "stack up after the kills"; }
[ "$kills" -ge 5 ] || fail "only $kills kills"
assert_eq "$(wrk_field "$IT_DIR/c.wrk" bad)" 0 "non-2xx answers"
assert_eq "$(wrk_field "$IT_DIR/c.wrk" errors)" 0 "socket errors"
total=$(stack_flush_total) || fail "flush after the kills"
relays=$(wrk_field "$IT_DIR/c.wrk" relays) probed=$(( $(probes) - P0 )) sent=$(( $(be_sent) - S0 ))
note "$kills kills: wrk relays $relays, stack up probes $probed, HAProxy sent $sent, PostgreSQL +$((total - BASE))"
[ "$relays" -gt 1000 ] || fail "only $relays relays"
assert_eq "$sent" "$((relays + probed))" "requests HAProxy sent to be_0021 = wrk's relays + probes"
assert_eq "$((total - BASE))" "$sent" "relays in PostgreSQL = requests HAProxy sent to be_0021"
