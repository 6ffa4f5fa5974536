#!/bin/bash
# tests/bench/run, the `make bench` harness, on stand-in benchmarks: results
# are collected from every benchmark, one over its limit is stopped (SIGTERM,
# then SIGKILL for one that ignores it) with what it printed kept, a failure
# and a missing required figure make the run exit 1, the total budget stops
# benchmarks from starting, and --readme rewrites only the marked block.
source "$(dirname "$0")/lib.sh"
it_setup
RUN=$CCGW_ROOT/tests/bench/run
B=$IT_DIR/benches
mkdir -p "$B"

cat >"$B/bench_a_ok.sh" <<'SH'
echo "progress on stderr" >&2
echo '{"bench": "fake_ok", "metric": "things/s", "value": 1500.5, "peer": "other", "peer_value": 500, "ratio": 3.001, "target": ">= 2x", "met": true, "extra": 7}'
echo '{"bench": "fake_ok", "metric": "ms", "value": 12, "target": "< 10 ms", "met": false}'
echo 'not json {'
SH
cat >"$B/bench_b_slow.sh" <<'SH'
echo '{"bench": "fake_slow", "metric": "s", "value": 1, "met": null}'
sleep 60 &
echo "$!" >"$PIDS/slow"
wait
SH
cat >"$B/bench_c_stubborn.sh" <<'SH'
trap '' TERM
sleep 60 &
echo "$!" >"$PIDS/stubborn"
wait
SH
cat >"$B/bench_d_fails.sh" <<'SH'
echo "something broke" >&2
exit 3
SH
cat >"$B/bench_e_leaves.sh" <<'SH'
setsid sleep 60 </dev/null >/dev/null 2>&1 &
echo "$!" >"$PIDS/leaves"
SH
# named like the real node benchmark, without the peer figure it must have
cat >"$B/bench_node.sh" <<'SH'
echo '{"bench": "node_getblockcount", "metric": "requests/s", "value": 5}'
SH
mkdir -p "$IT_DIR/pids"

t0=$(date +%s)
PIDS=$IT_DIR/pids BENCH_DIR=$B BENCH_OUT=$IT_DIR/out BENCH_TIMEOUT=3 BENCH_GRACE=2 BENCH_BUDGET=60 \
    BENCH_COMMAND="harness test" "$RUN" >"$IT_DIR/run1.log" 2>&1
rc=$?
took=$(( $(date +%s) - t0 ))
cat "$IT_DIR/run1.log"
assert_eq "$rc" 1 "exit status with failed, stopped and leaking benchmarks"
[ "$took" -lt 30 ] || fail "run took ${took}s, the limits add up to 3+3+2+3 s"
# (seen as setsid when the harness looks before setsid has exec'd sleep)
grep -qE '^== bench_e_leaves.sh: left 1 processes running \([0-9]+:(setsid|sleep)\), stopped them$' \
    "$IT_DIR/run1.log" || fail "leftover message"
# gone: no process, or a zombie waiting for its new parent to reap it
alive() { [ -e "/proc/$1" ] && [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
for p in slow stubborn leaves; do
    pid=$(cat "$IT_DIR/pids/$p") || fail "bench $p did not start"
    for _ in $(seq 20); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && fail "the $p benchmark's child $pid survived the stop"
done
grep -q '^   progress on stderr$' "$IT_DIR/run1.log" || fail "stderr progress not shown"
python3 - "$IT_DIR/out/results.json" <<'PY' || fail "results.json"
import json, sys
doc = json.load(open(sys.argv[1]))
status = {b["script"]: b["status"] for b in doc["benches"]}
want = {"bench_a_ok.sh": "ok", "bench_b_slow.sh": "over its limit",
        "bench_c_stubborn.sh": "over its limit", "bench_d_fails.sh": "failed (exit 3)",
        "bench_e_leaves.sh": "left processes running", "bench_node.sh": "ok"}
assert status == want, status
got = [(r["script"], r["bench"], r["metric"]) for r in doc["results"]]
assert got == [("bench_a_ok.sh", "fake_ok", "things/s"), ("bench_a_ok.sh", "fake_ok", "ms"),
               ("bench_b_slow.sh", "fake_slow", "s"),
               ("bench_node.sh", "node_getblockcount", "requests/s")], got
assert doc["missing"] == ["node requests/s vs nginx"], doc["missing"]
assert doc["command"] == "harness test" and doc["seconds"] <= doc["budget"] == 60, doc
print("ok: statuses, results and the missing figure in results.json")
PY
md=$IT_DIR/out/results.md
grep -qF '| fake_ok | things/s | 1,500 | other | 500 | 3 | >= 2x | yes | extra=7 |' "$md" \
    || fail "row of fake_ok things/s not in results.md"
grep -qF '| fake_ok | ms | 12 |  |  |  | < 10 ms | **no** |  |' "$md" || fail "unmet row not marked"
grep -qF 'Targets: 1 met, 1 not met: fake_ok ms = 12 (target < 10 ms)' "$md" || fail "targets line"
grep -qF 'Missing figures: node requests/s vs nginx.' "$md" || fail "missing figures line"
grep -qE '^\| bench_c_stubborn.sh \| over its limit \| none set \| [0-9]+ \| 3 \| [0-9.]+ [0-9.]+ [0-9.]+ \|$' "$md" || fail "runs table"
grep -qE '^\| bench_a_ok.sh \| ok \| 1 of 2 \| ' "$md" || fail "targets met of bench_a_ok in the runs table"

# --readme: only the marked block changes, and twice is the same as once.
printf '# T\n\nbefore\n\n<!-- bench:begin -->\nold table\n<!-- bench:end -->\n\nafter\n' >"$IT_DIR/README.md"
BENCH_OUT=$IT_DIR/out "$RUN" --readme "$IT_DIR/README.md" || fail "--readme"
cp "$IT_DIR/README.md" "$IT_DIR/README.once"
BENCH_OUT=$IT_DIR/out "$RUN" --readme "$IT_DIR/README.md" || fail "--readme again"
cmp -s "$IT_DIR/README.md" "$IT_DIR/README.once" || fail "--readme is not idempotent"
grep -q 'old table' "$IT_DIR/README.md" && fail "--readme kept the old block"
assert_eq "$(head -n 3 "$IT_DIR/README.md" | tail -n 1)$(tail -n 1 "$IT_DIR/README.md")" "beforeafter" \
    "text around the block"
assert_eq "$(grep -c 'fake_ok' "$IT_DIR/README.md")" 3 "rows and targets line in the block"
printf 'no markers\n' >"$IT_DIR/plain.md"
BENCH_OUT=$IT_DIR/out "$RUN" --readme "$IT_DIR/plain.md" 2>"$IT_DIR/plain.err" && fail "no markers accepted"
grep -q 'has no <!-- bench:begin -->' "$IT_DIR/plain.err" || fail "no-marker message"

# A spent budget: nothing starts, the run says so and fails.
PIDS=$IT_DIR/pids BENCH_DIR=$B BENCH_OUT=$IT_DIR/out2 BENCH_GRACE=2 BENCH_BUDGET=2 "$RUN" a_ok \
    >"$IT_DIR/run2.log" 2>&1
assert_eq "$?" 1 "exit status with the budget spent"
grep -q 'bench_a_ok.sh: not run, the budget of 2s is spent' "$IT_DIR/run2.log" || fail "budget message"
assert_eq "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["results"]))' \
    "$IT_DIR/out2/results.json")" 0 "results with the budget spent"

# SIGTERM to the harness: the running benchmark is stopped, what it printed kept.
rm -f "$IT_DIR/pids/slow"
PIDS=$IT_DIR/pids BENCH_DIR=$B BENCH_OUT=$IT_DIR/out3 BENCH_TIMEOUT=30 BENCH_GRACE=2 "$RUN" b_slow \
    >"$IT_DIR/run3.log" 2>&1 &
harness=$!
for _ in $(seq 100); do [ -s "$IT_DIR/pids/slow" ] && break; sleep 0.1; done
[ -s "$IT_DIR/pids/slow" ] || fail "slow benchmark did not start"
kill -TERM "$harness"
wait "$harness"
assert_eq "$?" 1 "exit status when interrupted"
for _ in $(seq 20); do alive "$(cat "$IT_DIR/pids/slow")" || break; sleep 0.1; done
alive "$(cat "$IT_DIR/pids/slow")" && fail "the interrupted benchmark's child survived"
assert_eq "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
print(d["benches"][0]["status"], len(d["results"]))' "$IT_DIR/out3/results.json")" "interrupted 1" \
    "status and results of the interrupted run"
