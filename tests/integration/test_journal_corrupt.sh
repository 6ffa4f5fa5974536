#!/bin/bash
# A damaged journal (bits flipped in one record) on the real stack
# (scripts/stack: edge -> http0 -> cc-node, http1 as backup), wrk at full
# rate through the edge: http0's worker is frozen (SIGSTOP), two bits of one
# record in one of the last groups of its journal are flipped, the worker is
# killed (kill -9) and its supervisor starts a new one. The new worker must
# distrust the record and everything after it and recount the request log
# from the last good position before it. After a flush:
#   PostgreSQL's new relays == the requests HAProxy's http tiers sent to
#   be_0021 (show stat) == wrk's relay answers: none lost, none doubled;
#   ccgw_gateway_journal_distrusted_records_total of http0 is 1, and the
#   event journal_distrusted is in gateway_events.
# Case 2: http0's current request-log segment renamed (mv) under load while
# its worker is frozen, then the worker killed: the new worker finds the segment by its header line
# (event segment_moved), and the counts are exact again, none lost
# (ccgw_gateway_request_log_segments_lost_total stays 0).
source "$(dirname "$0")/lib.sh"
it_setup
stack_start
M_H0=$((9101 + OFF))
PG_URL="postgresql://postgres@127.0.0.1:$((55432 + OFF))/ccgw"
HOST=894334g9f403.0021.chains.local.test
LOAD_SECS=${CORRUPT_LOAD_SECS:-12}
CASES=${CORRUPT_CASES:-12} # which cases to run

# flip_journal DIR: flip two bits of the first record of the third group
# from the end of the newest journal generation in DIR that has one; prints
# "<file>:<line> <groups after it>"
flip_journal() {
    python3 - "$1" <<'EOF'
import os, re, sys
d = sys.argv[1]
gens = sorted((int(m.group(1)), f) for f in os.listdir(d) if (m := re.fullmatch(r"journal\.(\d+)", f)))
for _, f in reversed(gens):
    path = os.path.join(d, f)
    data = bytearray(open(path, "rb").read())
    lines = data.split(b"\n")
    groups, start = [], None  # (first record line, P line)
    for i, l in enumerate(lines):
        if l[:2] in (b"R ", b"N ") and start is None:
            start = i
        elif l.startswith(b"P ") and start is not None:
            groups.append((start, i))
            start = None
    if len(groups) < 3:
        continue
    first, _ = groups[-3]
    off = sum(len(l) + 1 for l in lines[:first])
    data[off + 3] ^= 0x01
    data[off + 4] ^= 0x02
    with open(path, "r+b") as fh:
        fh.write(data)
    print(f"{f}:{first + 1} 2")
    sys.exit(0)
sys.exit("no journal generation with 3 groups in " + d)
EOF
}

total=$(stack_flush_total) || fail "first flush"
if [[ $CASES == *1* ]]; then
BASE=$total S0=$(be_sent)
note "1. wrk through the edge; http0's worker frozen, its journal damaged, then kill -9"
wrk_relay_lua "$IT_DIR/j.lua" "$HOST" getblockcount "$IT_DIR/j.stop" "$LOAD_SECS"
wrk -t2 -c32 -d"$((LOAD_SECS + 3))s" -s "$IT_DIR/j.lua" "http://127.0.0.1:$EDGE/" >"$IT_DIR/j.wrk" 2>&1 &
WRK=$!
sleep 5
w=$(gw_pid http0 worker); [ -n "$w" ] || fail "no http0 worker"
kill -STOP "$w"
where=$(flip_journal "$RUN/data/http0") || { kill -9 "$w"; fail "no journal group to damage"; }
kill -9 "$w"
note "damaged $where (http0 worker $w killed)"
for _ in $(seq 50); do
    nw=$(gw_pid http0 worker)
    [ -n "$nw" ] && [ "$nw" != "$w" ] && break
    sleep 0.1
done
[ -n "$nw" ] && [ "$nw" != "$w" ] || fail "the supervisor started no new http0 worker"
wait $WRK
assert_eq "$(wrk_field "$IT_DIR/j.wrk" bad)" 0 "non-2xx answers"
assert_eq "$(wrk_field "$IT_DIR/j.wrk" errors)" 0 "socket errors"

total=$(stack_flush_total) || fail "flush after the damage"
relays=$(wrk_field "$IT_DIR/j.wrk" relays) sent=$(( $(be_sent) - S0 ))
note "wrk relays $relays, HAProxy sent $sent, PostgreSQL +$((total - BASE))"
[ "$relays" -gt 1000 ] || fail "only $relays relays"
assert_eq "$sent" "$relays" "requests HAProxy sent to be_0021 = wrk's relays"
assert_eq "$((total - BASE))" "$sent" "relays in PostgreSQL = requests HAProxy sent to be_0021"

assert_eq "$(metric_sum $M_H0 ccgw_gateway_journal_distrusted_records_total)" 1 \
    "http0: ccgw_gateway_journal_distrusted_records_total"
discarded=$(metric_sum $M_H0 ccgw_gateway_journal_discarded_records_total)
[ "${discarded:-0}" -ge 2 ] || fail "http0: discarded records ${discarded:-none}, expected the damaged group and the two after it"
ls "$RUN/data/http0"/distrusted.* >/dev/null 2>&1 || fail "no distrusted.<gen> kept in $RUN/data/http0"
ev=0
for _ in $(seq 100); do
    ev=$(psql "$PG_URL" -XAtq -c "SELECT count(*) FROM gateway_events WHERE source = 'http0' AND message LIKE 'journal_distrusted:%'")
    [ "$ev" -ge 1 ] && break
    sleep 0.1
done
assert_eq "$ev" 1 "journal_distrusted events of http0 in gateway_events"
echo "ok: damaged journal record: $relays relays, none lost, none doubled; distrusted 1, discarded $discarded"
fi
[[ $CASES == *2* ]] || exit 0

note "2. http0's current segment renamed under load, then its worker killed"
BASE=$total S0=$(be_sent)
wrk_relay_lua "$IT_DIR/m.lua" "$HOST" getblockcount "$IT_DIR/m.stop" "$LOAD_SECS"
wrk -t2 -c32 -d"$((LOAD_SECS + 3))s" -s "$IT_DIR/m.lua" "http://127.0.0.1:$EDGE/" >"$IT_DIR/m.wrk" 2>&1 &
WRK=$!
sleep 4
# frozen first: its position (and its journal's) is then at or before the
# segment renamed, which the next worker must read
w=$(gw_pid http0 worker); [ -n "$w" ] || fail "2: no http0 worker"
kill -STOP "$w"
cur=$(readlink -f "$RUN/logs/http0/requests.log")
[ -f "$cur" ] || { kill -9 "$w"; fail "2: no current segment of http0"; }
mv "$cur" "$RUN/logs/http0/moved-away.log"
sleep 1
kill -9 "$w"
note "2: renamed $(basename "$cur"), killed http0 worker $w"
wait $WRK
assert_eq "$(wrk_field "$IT_DIR/m.wrk" bad)" 0 "2: non-2xx answers"
assert_eq "$(wrk_field "$IT_DIR/m.wrk" errors)" 0 "2: socket errors"
total=$(stack_flush_total) || fail "2: flush after the rename"
relays=$(wrk_field "$IT_DIR/m.wrk" relays) sent=$(( $(be_sent) - S0 ))
note "2: wrk relays $relays, HAProxy sent $sent, PostgreSQL +$((total - BASE))"
[ "$relays" -gt 1000 ] || fail "2: only $relays relays"
assert_eq "$sent" "$relays" "2: requests HAProxy sent to be_0021 = wrk's relays"
assert_eq "$((total - BASE))" "$sent" "2: relays in PostgreSQL = requests HAProxy sent to be_0021"
assert_eq "$(metric_sum $M_H0 ccgw_gateway_request_log_segments_lost_total)" 0 "2: http0 segments lost"
grep -q '"event":"segment_moved"' "$RUN/logs/gw-http0.out" || fail "2: no segment_moved event in the http0 log"
echo "ok: renamed segment: $relays relays, none lost, none doubled"
