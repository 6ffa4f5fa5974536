#!/bin/bash
# cc-gateway replay throughput: a generated 2,000,000-line HAProxy log is
# recounted on one core (CPU 0); the counts must equal the generator's
# expected ones. GoAccess and mtail parse the same file on the same core for
# comparison. Prints figures and JSON result lines.
#
# Every run is measured from outside: wall clock, CPU time (user+sys) from
# wait4(), and from /proc/PID/schedstat the time the process was runnable
# but waiting for the core. On a quiet machine wall ~= CPU; when other
# processes share CPU 0, wall = CPU + that wait, and the wait says how much
# of the wall clock was not ours.
#   BENCH_LINES (default 2000000), BENCH_RUNS (best of, default 5)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
: "${CCGW_BIN:=$root/build/bin}"
lines=${BENCH_LINES:-2000000}
runs=${BENCH_RUNS:-5}
dir=$root/build/bench/replay
mkdir -p "$dir"
# the cached log and its expected counts belong to this genlog: a new
# non-relay reason changes the expectations
log=$dir/gen-$lines-$(sha256sum "$root/scripts/genlog" | cut -c1-12).log
if [ ! -s "$log" ] || [ ! -s "$log.json" ]; then
    echo "generating $lines lines ..." >&2
    "$root/scripts/genlog" --lines "$lines" --seed 1 -o "$log.tmp" --expect "$log.json"
    mv "$log.tmp" "$log"
fi
"$root/scripts/genlog" --print-config > "$dir/routing.yaml"
cat "$log" > /dev/null   # page cache: every tool reads from memory

# measure OUT CMD...: run CMD on CPU 0 with stdout to OUT; prints
# "wall cpu runqueue_wait major_faults exit_status" (seconds).
cat > "$dir/measure.py" <<'PY'
import os, sys, time
out, cmd = sys.argv[1], sys.argv[2:]
t0 = time.monotonic()
pid = os.fork()
if pid == 0:
    try:
        os.sched_setaffinity(0, {0})
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
# WNOWAIT keeps the child a zombie, so its schedstat can still be read
os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
wall = time.monotonic() - t0
try:
    with open("/proc/%d/schedstat" % pid) as f:
        wait = int(f.read().split()[1]) / 1e9
except OSError:
    wait = -1.0
_, status, ru = os.wait4(pid, 0)
print("%.4f %.4f %.4f %d %d" % (wall, ru.ru_utime + ru.ru_stime, wait, ru.ru_majflt,
                                os.waitstatus_to_exitcode(status)))
PY
measure() { python3 "$dir/measure.py" "$@"; }

best=; best_cpu=; best_wait=
for _ in $(seq "$runs"); do
    read -r wall cpu wait majflt rc < <(measure "$dir/summary.json" "$CCGW_BIN/cc-gateway" replay \
        --config "$dir/routing.yaml" --source http0 "$log")
    [ "$rc" = 0 ] || { echo "cc-gateway replay failed (exit $rc)" >&2; exit 1; }
    if [ -z "$best" ] || [ "$(echo "$wall < $best" | bc -l)" = 1 ]; then best=$wall; best_wait=$wait; fi
    if [ -z "$best_cpu" ] || [ "$(echo "$cpu < $best_cpu" | bc -l)" = 1 ]; then best_cpu=$cpu; fi
done
python3 - "$dir/summary.json" "$log.json" <<'PY'
import json, sys
got, want = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
for k in ("lines", "relays", "non_relays", "by_chain", "by_bucket", "truncated", "events"):
    if got[k] != want[k]:
        sys.exit("replay counts differ from the generator's on %s: %s != %s" % (k, got[k], want[k]))
print("counts equal the generator's expected counts (relays=%d)" % got["relays"], file=sys.stderr)
PY
rate=$(echo "$lines / $best" | bc -l)
cpu_rate=$(echo "$lines / $best_cpu" | bc -l)
printf 'cc-gateway replay: %d lines in %.3f s = %.0f lines/s on one core (CPU time %.3f s = %.0f lines/s; %.3f s waiting for CPU 0 behind other processes)\n' \
    "$lines" "$best" "$rate" "$best_cpu" "$cpu_rate" "$best_wait"

ga_rate=null; ga_cpu_rate=null
if command -v goaccess >/dev/null; then
    read -r wall cpu wait majflt rc < <(measure /dev/null goaccess "$log" \
        --log-format='<6>%h:%^ [%d:%t.%^] %^ %^ %^ %s %b %^ %^ %^ %^ %^ {%v} "%r"' \
        --date-format='%d/%b/%Y' --time-format='%H:%M:%S' -o "$dir/goaccess.json" --no-global-config)
    ga_rate=$(echo "$lines / $wall" | bc -l); ga_cpu_rate=$(echo "$lines / $cpu" | bc -l)
    printf 'goaccess:          %.0f lines/s (CPU time %.0f lines/s, %.3f s waiting): cc-gateway is %.1fx (%.1fx in CPU time)\n' \
        "$ga_rate" "$ga_cpu_rate" "$wait" "$(echo "$rate / $ga_rate" | bc -l)" "$(echo "$cpu_rate / $ga_cpu_rate" | bc -l)"
fi
mt_rate=null; mt_cpu_rate=null
if command -v mtail >/dev/null; then
    # mtail runs ~100x slower: it reads the first 100,000 lines only
    mt_lines=$(( lines < 100000 ? lines : 100000 ))
    head -n "$mt_lines" "$log" > "$dir/mtail-input.log"
    mkdir -p "$dir/mtail"
    cat > "$dir/mtail/relays.mtail" <<'MT'
counter lines_by_status by status
/^<6>\S+ \[[^\]]+\] \S+ \S+ \S+ (?P<status>-?\d+) / {
  lines_by_status[$status]++
}
MT
    read -r wall cpu wait majflt rc < <(measure /dev/null mtail --one_shot --one_shot_format=json \
        --progs "$dir/mtail" --logs "$dir/mtail-input.log")
    mt_rate=$(echo "$mt_lines / $wall" | bc -l); mt_cpu_rate=$(echo "$mt_lines / $cpu" | bc -l)
    printf 'mtail:             %.0f lines/s (CPU time %.0f lines/s, %.3f s waiting): cc-gateway is %.1fx (%.1fx in CPU time)\n' \
        "$mt_rate" "$mt_cpu_rate" "$wait" "$(echo "$rate / $mt_rate" | bc -l)" "$(echo "$cpu_rate / $mt_cpu_rate" | bc -l)"
fi
python3 - "$rate" "$cpu_rate" "$best_wait" "$lines" "$ga_rate" "$ga_cpu_rate" "$mt_rate" "$mt_cpu_rate" <<'PY'
import json, sys
rate, cpu_rate, wait = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
lines = int(sys.argv[4])
cmd = "cc-gateway replay --config routing.yaml --source http0 gen-%d.log (CPU 0)" % lines
num = lambda v: None if v == "null" else float(v)
for peer, v, vc, target in (("goaccess", sys.argv[5], sys.argv[6], ">= 2000000 lines/s and >= 20x goaccess"),
                            ("mtail", sys.argv[7], sys.argv[8], ">= 2000000 lines/s")):
    pv, pvc = num(v), num(vc)
    ratio = None if pv is None else round(rate / pv, 1)
    met = rate >= 2e6 and (peer != "goaccess" or (ratio is not None and ratio >= 20))
    print(json.dumps({"bench": "replay", "metric": "lines/s", "value": round(rate),
                      "peer": peer, "peer_value": None if pv is None else round(pv),
                      "ratio": ratio, "cpu_lines_per_s": round(cpu_rate),
                      "cpu_ratio": None if pvc is None else round(cpu_rate / pvc, 1),
                      "runqueue_wait_s": round(wait, 3),
                      "target": target, "met": met, "command": cmd}))
PY
