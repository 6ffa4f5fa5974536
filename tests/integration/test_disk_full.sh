#!/bin/bash
# The request log on a full disk (a 20 MiB tmpfs over the stack's logs dir),
# wrk at full rate through the edge. Never blind:
#   1. the disk fills (a fill-up file takes what the segments do not): within
#      seconds http0's /health/ready says 503 (request log blocked), its
#      ccgw_gateway_request_log_blocked is 1 and ..._blocked_total counts the
#      episode, and gateway_events has the "request log blocked" event;
#   2. HAProxy drops what its pipe cannot hold, and counts it (DroppedLogs);
#   3. the fill-up file is deleted (never a segment): within seconds, without
#      a restart, http0 is ready again, the gauge is 0, the edge's kept log
#      is written again, the "request log written again" event is there, and
#      new relays are counted while wrk still runs;
#   4. after scripts/stack flush: PostgreSQL's new relays = wrk's relay
#      answers - the DroppedLogs growth of http0 and http1, exactly (nothing
#      lost but what HAProxy says it dropped; 0 doubled).
source "$(dirname "$0")/lib.sh"
it_setup
[ "$(id -u)" = 0 ] || fail "needs root (mount -t tmpfs)"
MNT=$IT_DIR/run/logs
mkdir -p "$MNT"
mount -t tmpfs -o size=20m tmpfs "$MNT" || fail "mount tmpfs on $MNT"
# retention keeps each tier's counted log near 4 MB (segments of 512 KB), so
# that once the fill-up file is gone the disk has room for good
export CCGW_REQUEST_LOG_MAX=4MB
# what stack_start's trap does, then the stack's logs are kept (failures show
# them) and the tmpfs is unmounted
disk_full_cleanup() {
    local rc=$1 f
    trap "" INT TERM
    stack_down
    for f in "$MNT"/*.out; do [ -f "$f" ] && cp "$f" "$IT_DIR/stack-$(basename "$f" .out).log"; done
    umount -l "$MNT"
    (exit "$rc")
    it_cleanup
}
stack_start
trap 'disk_full_cleanup $?' EXIT
HOST=894334g9f403.0021.chains.local.test
M_EDGE=$((9100 + OFF)); M_H0=$((9101 + OFF))

ready_code() { curl -s -o "$IT_DIR/ready.body" -w '%{http_code}' --max-time 5 "http://127.0.0.1:$1/health/ready"; }
events_like() { # events_like PATTERN -> gateway_events rows whose message matches
    psql "postgresql://postgres@127.0.0.1:$((55432 + OFF))/ccgw" -XAtq \
        -c "SELECT count(*) FROM gateway_events WHERE message LIKE '$1'"
}
# wait_for SECS CMD...: until CMD succeeds; prints the seconds it took
wait_for() {
    local secs=$1 t0=$SECONDS; shift
    for _ in $(seq $((secs * 5))); do
        if "$@"; then echo $((SECONDS - t0)); return 0; fi
        sleep 0.2
    done
    return 1
}
is_503() { [ "$(ready_code "$M_H0")" = 503 ]; }
is_200() { [ "$(ready_code "$1")" = 200 ]; }
gauge_is() { [ "$(metric_sum "$1" ccgw_gateway_request_log_blocked)" = "$2" ]; }
relays_above() { [ "$(metric_sum "$M_H0" ccgw_gateway_relays_total)" -gt "$1" ]; }
events_at_least() { [ "$(events_like "$1")" -ge "$2" ]; }

assert_eq "$(ready_code "$M_H0")" 200 "http0 ready before the disk fills"
assert_eq "$(metric_sum "$M_H0" ccgw_gateway_request_log_blocked)" 0 "http0 request log blocked before"
BASE=$(stack_flush_total) || fail "flush"
D0_H0=$(haproxy_dropped_logs http0); D0_H1=$(haproxy_dropped_logs http1)
BLOCKED_EV0=$(events_like 'request log blocked%'); RESUMED_EV0=$(events_like 'request log written again%')

# Everything the segments have not reserved yet goes to a fill-up file but
# 1 MiB, which wrk's lines fill within seconds.
avail=$(df -B1 --output=avail "$MNT" | tail -n 1)
fill=$((avail - (1 << 20)))
[ "$fill" -gt 0 ] && fallocate -l "$fill" "$MNT/fill-up" || fail "fill-up file ($avail bytes free)"
note "tmpfs: $avail bytes free, $fill taken by the fill-up file"

wrk_relay_lua "$IT_DIR/load.lua" "$HOST" getblockcount "$IT_DIR/load.stop"
wrk -t2 -c32 -d60s -s "$IT_DIR/load.lua" "http://127.0.0.1:$EDGE/" >"$IT_DIR/load.wrk" 2>&1 &
WRK=$!

took=$(wait_for 30 is_503) || fail "http0 still ready 30 s into wrk on a full disk ($(ready_code "$M_H0"))"
note "http0 not ready ${took}s into wrk: $(cat "$IT_DIR/ready.body")"
grep -q "request log blocked" "$IT_DIR/ready.body" || fail "503 without the reason: $(cat "$IT_DIR/ready.body")"
assert_eq "$(metric_sum "$M_H0" ccgw_gateway_request_log_blocked)" 1 "http0 request log blocked (gauge)"
[ "$(metric_sum "$M_H0" ccgw_gateway_request_log_blocked_total)" -ge 1 ] || fail "no blocked episode counted"
took=$(wait_for 10 events_at_least 'request log blocked%' $((BLOCKED_EV0 + 1))) \
    || fail "no 'request log blocked' event in gateway_events"
note "the blocked event reached gateway_events ${took}s after"
# blocked for a while: HAProxy drops what the pipe cannot hold
sleep 3
assert_eq "$(metric_sum "$M_H0" ccgw_gateway_request_log_blocked)" 1 "still blocked while the disk is full"
dropped=$(( $(haproxy_dropped_logs http0) - D0_H0 ))
[ "$dropped" -gt 0 ] || fail "HAProxy dropped no lines while blocked: was the disk full?"
note "http0 DroppedLogs +$dropped while blocked"
counted=$(metric_sum "$M_H0" ccgw_gateway_relays_total)

rm -f "$MNT/fill-up"
took=$(wait_for 10 is_200 "$M_H0") || fail "http0 not ready 10 s after space returned: $(cat "$IT_DIR/ready.body")"
note "http0 ready again ${took}s after space returned"
assert_eq "$(metric_sum "$M_H0" ccgw_gateway_request_log_blocked)" 0 "http0 request log blocked after space returned"
took=$(wait_for 10 relays_above "$counted") || fail "http0 counts no new relays after space returned"
note "http0 counts again ${took}s after (was $counted, now $(metric_sum "$M_H0" ccgw_gateway_relays_total))"
wait_for 10 gauge_is "$M_EDGE" 0 >/dev/null || fail "the edge's kept log is not written again"
wait_for 10 is_200 "$M_EDGE" >/dev/null || fail "the edge is not ready again"
took=$(wait_for 10 events_at_least 'request log written again%' $((RESUMED_EV0 + 1))) \
    || fail "no 'request log written again' event in gateway_events"
sleep 2
touch "$IT_DIR/load.stop"
wait "$WRK" || fail "wrk failed: $(cat "$IT_DIR/load.wrk")"

total=$(stack_flush_total) || fail "flush after the load"
relays=$(wrk_field "$IT_DIR/load.wrk" relays)
d_h0=$(( $(haproxy_dropped_logs http0) - D0_H0 )); d_h1=$(( $(haproxy_dropped_logs http1) - D0_H1 ))
note "wrk relays $relays (bad $(wrk_field "$IT_DIR/load.wrk" bad), errors $(wrk_field "$IT_DIR/load.wrk" errors)), DroppedLogs http0 +$d_h0 http1 +$d_h1, PostgreSQL +$((total - BASE))"
[ "$relays" -gt 1000 ] || fail "only $relays relays"
assert_eq "$((total - BASE))" "$((relays - d_h0 - d_h1))" "relays in PostgreSQL = wrk's relays - DroppedLogs growth"
psql "postgresql://postgres@127.0.0.1:$((55432 + OFF))/ccgw" -XAtq \
    -c "SELECT gateway, severity, message FROM gateway_events WHERE message LIKE 'request log%' ORDER BY ts" | sed 's/^/   event: /'
echo "PASS"
