#!/bin/bash
# The journal on its own:
#   - without postgres.url, counts are journaled; a later run with
#     PostgreSQL (same data_dir) flushes them, exactly
#   - a long PostgreSQL outage with many appends: compaction keeps the
#     journal bounded, and when PostgreSQL is back totals are exact and the
#     ledger holds each flush once
#   - kill -9 of the worker inside a compaction (CCGW_TEST_CRASH_AT): the
#     supervisor restarts it, it recovers the journal and resumes at its
#     position: totals exact, nothing lost, nothing doubled
#   - a second cc-gateway on the same journal is refused
source "$(dirname "$0")/lib.sh"
it_setup

GW="$CCGW_BIN/cc-gateway"
ACCOUNTS=40
COMPACT=16384

# write_config FILE [PG_URL]: 40 accounts on two chains; no postgres
# section without PG_URL
write_config() {
    {
        gw_conf_head gw-journal "$IT_DIR/data"
        for a in $(seq -f "%012g" 1 $ACCOUNTS); do
            echo "      - {id: \"$a\", chains: [\"0021\", \"0001\"]}"
        done
        [ -n "${2:-}" ] && printf 'postgres:\n  url: %s\n' "$2"
        cat <<YAML
flush:
  interval_secs: 1
  fsync_interval_ms: 100
  retry_max_secs: 1
  journal_compact_bytes: $COMPACT
logs:
  dir: $IT_DIR/logs
YAML
    } >"$1"
}

# lines N START: N relay lines over every (chain, account) and 3 buckets
lines() {
    python3 - "$1" "$2" "$ACCOUNTS" <<'PY'
import sys
n, start, accounts = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
out = []
for i in range(start, start + n):
    chain = ("0021", "0001")[i % 2]
    acct = "%012d" % (1 + (i // 2) % accounts)
    minute = (20, 25, 30)[(i // 7) % 3]
    out.append('<6>127.0.0.1:%d [21/Nov/2026:10:%02d:33.685] fe_http0 be_%s/n%sa 0/0/0/0/0 200 183 - - ---- 1/1/0/0/0 0/0 {%s.%s.chains.example.tech} "POST / HTTP/1.1"\n'
               % (40000 + i % 20000, minute, chain, chain, acct, chain))
sys.stdout.write("".join(out))
PY
}

total() { psql_q "SELECT coalesce(sum(relays), 0) FROM relay_counts"; }
journal_size() { cat "$IT_DIR"/data/http0/journal.* 2>/dev/null | wc -c; }

# start_gw NAME CONFIG [ENV...]: cc-gateway reading the fifo $IT_DIR/NAME.in
start_gw() {
    local name=$1 cfg=$2; shift 2
    rm -f "$IT_DIR/$name.in"; mkfifo "$IT_DIR/$name.in"
    exec {FEED}<>"$IT_DIR/$name.in"
    env "$@" "$GW" --config "$cfg" --source http0 --listen none <"$IT_DIR/$name.in" \
        >"$IT_DIR/$name.log" 2>&1 &
    IT_PIDS[$name]=$!
}

pg_start
write_config "$IT_DIR/nodb.yaml"
write_config "$IT_DIR/db.yaml" "$PG_URL"
"$CCGW_BIN/relaystats" migrate --config "$IT_DIR/db.yaml" || fail "migrate"

note "no postgres.url: counted, journaled, flushed by the next run with PostgreSQL"
start_gw nodb "$IT_DIR/nodb.yaml"
SENT=3000
lines $SENT 0 >&$FEED
sleep 0.5
grep -q "postgres_disabled.*kept in the journal" "$IT_DIR/nodb.log" || fail "no journal-only notice"
kill -TERM "${IT_PIDS[nodb]}"
wait "${IT_PIDS[nodb]}"; assert_eq "$?" "0" "exit status of a journal-only run after SIGTERM"
unset "IT_PIDS[nodb]"; exec {FEED}>&-
[ "$(journal_size)" -gt 0 ] || fail "nothing journaled without PostgreSQL"
assert_eq "$(total)" "0" "nothing in PostgreSQL yet"
"$GW" --config "$IT_DIR/db.yaml" --source http0 --listen none </dev/null >"$IT_DIR/db1.log" 2>&1 \
    || fail "run with PostgreSQL"
assert_eq "$(total)" "$SENT" "relay_counts after the run with PostgreSQL"

note "a second cc-gateway on the same journal is refused"
start_gw first "$IT_DIR/db.yaml"
sleep 0.5
if "$GW" --config "$IT_DIR/db.yaml" --source http0 --listen none </dev/null >"$IT_DIR/second.log" 2>&1; then
    fail "a second cc-gateway opened the same journal"
fi
grep -q "tier is in use by a running cc-gateway" "$IT_DIR/second.log" || { cat "$IT_DIR/second.log"; fail "no in-use message"; }
echo "ok: second cc-gateway refused"

note "PostgreSQL down, 40 batches: compaction keeps the journal bounded"
pg_stop
MAX=0 APPENDED=0
for k in $(seq 40); do
    lines 400 $SENT >&$FEED
    SENT=$((SENT + 400))
    sleep 0.25
    s=$(journal_size)
    [ "$s" -gt "$MAX" ] && MAX=$s
done
COMPACTIONS=$(grep -c "journal_compacted" "$IT_DIR/first.log")
note "journal at most $MAX bytes over the outage, $COMPACTIONS compactions"
[ "$COMPACTIONS" -ge 3 ] || fail "only $COMPACTIONS compactions"
# 240 keys of ~70 bytes compact to ~17 KB; the rule lets it double, plus one append
[ "$MAX" -le $((4 * COMPACT + 40000)) ] || fail "journal grew to $MAX bytes"
grep -q "flush_failed" "$IT_DIR/first.log" || fail "no failed flush during the outage"
pg_restart
for _ in $(seq 100); do [ "$(total)" = "$SENT" ] && break; sleep 0.1; done
assert_eq "$(total)" "$SENT" "relay_counts after the outage"
assert_eq "$(psql_q "SELECT sum(relays) FROM relay_flushes")" "$SENT" "ledger relays"
assert_eq "$(psql_q "SELECT count(*) = count(DISTINCT (instance, flush_seq)) FROM relay_flushes")" "t" "each flush once in the ledger"
stop_bg first; exec {FEED}>&-

for step in compact_written compact_renamed compact_drop_one; do
    note "kill -9 of the worker inside a compaction at $step, PostgreSQL down"
    pg_stop
    start_gw "crash_$step" "$IT_DIR/db.yaml" CCGW_TEST_CRASH_AT=$step
    pid=${IT_PIDS[crash_$step]}
    BATCH=400 BASE=$SENT
    for k in $(seq 100); do
        grep -q "CCGW_TEST_CRASH_AT=$step" "$IT_DIR/crash_$step.log" && break
        lines $BATCH $SENT >&$FEED
        SENT=$((SENT + BATCH))
        sleep 0.3 # longer than fsync_interval_ms: each batch is journaled before the next
    done
    grep -q "CCGW_TEST_CRASH_AT=$step" "$IT_DIR/crash_$step.log" || fail "the crash hook did not fire"
    # the supervisor restarts the worker (without the hook); it recovers
    # the journal, resumes at its position and counts what follows
    wait_log "crash_$step" "restarts=1" 10 || fail "the worker was not restarted after the crash at $step"
    for k in 1 2 3; do
        lines $BATCH $SENT >&$FEED
        SENT=$((SENT + BATCH))
        sleep 0.3
    done
    kill -0 "$pid" 2>/dev/null || fail "the supervisor died with its worker at $step"
    pg_restart
    stop_bg "crash_$step"; exec {FEED}>&-
    DB=$(total)
    note "sent $SENT, PostgreSQL has $DB"
    assert_eq "$DB" "$SENT" "relays after a worker kill -9 at $step (nothing lost, nothing twice)"
    [ "$DB" -gt "$BASE" ] || fail "nothing of the outage recovered"
done
assert_eq "$(psql_q "SELECT count(*) = count(DISTINCT (instance, flush_seq)) FROM relay_flushes")" "t" "ledger rows unique"

note "a data_dir restored from before a flush: its reused seq is refused, not dropped or doubled"
cp -a "$IT_DIR/data/http0" "$IT_DIR/snapshot"
lines 300 $SENT >"$IT_DIR/more.log"
"$GW" --config "$IT_DIR/db.yaml" --source http0 --listen none <"$IT_DIR/more.log" >"$IT_DIR/more.out" 2>&1 \
    || fail "run after the snapshot"
SENT=$((SENT + 300))
assert_eq "$(total)" "$SENT" "relay_counts after the run after the snapshot"
rm -rf "$IT_DIR/data/http0" && cp -a "$IT_DIR/snapshot" "$IT_DIR/data/http0"
start_gw restored "$IT_DIR/db.yaml"
lines 200 $SENT >&$FEED
sleep 0.5
kill -USR1 "${IT_PIDS[restored]}"
for _ in $(seq 100); do grep -q "journal is older than the database" "$IT_DIR/restored.log" && break; sleep 0.1; done
grep -q "journal is older than the database" "$IT_DIR/restored.log" || fail "the restored journal's flush was not refused"
assert_eq "$(total)" "$SENT" "relay_counts unchanged by the restored journal"
kill -KILL "${IT_PIDS[restored]}"; wait "${IT_PIDS[restored]}" 2>/dev/null
unset "IT_PIDS[restored]"; exec {FEED}>&-
