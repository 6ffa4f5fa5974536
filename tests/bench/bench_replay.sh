#!/bin/bash
# cc-gateway replay throughput: a generated 2,000,000-line HAProxy log is
# recounted on one core (taskset -c 0); the counts must equal the
# generator's expected ones. GoAccess and mtail parse the same file on the
# same core for comparison. Prints figures and JSON result lines.
#   BENCH_LINES (default 2000000)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
: "${CCGW_BIN:=$root/build/bin}"
lines=${BENCH_LINES:-2000000}
dir=$root/build/bench/replay
mkdir -p "$dir"
log=$dir/gen-$lines.log
if [ ! -s "$log" ] || [ ! -s "$log.json" ]; then
    echo "generating $lines lines ..." >&2
    "$root/scripts/genlog" --lines "$lines" --seed 1 -o "$log.tmp" --expect "$log.json"
    mv "$log.tmp" "$log"
fi
"$root/scripts/genlog" --print-config > "$dir/routing.yaml"
cat "$log" > /dev/null   # page cache: every tool reads from memory
pin="taskset -c 0"
command -v taskset >/dev/null || pin=""

# best of 3; CPU time (user+sys) is reported too: on a shared machine the
# wall clock includes time the core spent on other processes
best=; best_cpu=
for _ in 1 2 3; do
    TIMEFORMAT='%R %U %S'
    t=$( { time $pin "$CCGW_BIN/cc-gateway" replay --config "$dir/routing.yaml" --source http0 \
            "$log" > "$dir/summary.json"; } 2>&1 )
    read -r wall user sys <<< "$t"
    cpu=$(echo "$user + $sys" | bc -l)
    if [ -z "$best" ] || [ "$(echo "$wall < $best" | bc -l)" = 1 ]; then best=$wall; fi
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
printf 'cc-gateway replay: %d lines in %.3f s = %.0f lines/s on one core (CPU time %.3f s = %.0f lines/s)\n' \
    "$lines" "$best" "$rate" "$best_cpu" "$cpu_rate"

ga_rate=null
if command -v goaccess >/dev/null; then
    s=$(date +%s.%N)
    $pin goaccess "$log" --log-format='<6>%h:%^ [%d:%t.%^] %^ %^ %^ %s %b %^ %^ %^ %^ %^ {%v} "%r"' \
        --date-format='%d/%b/%Y' --time-format='%H:%M:%S' -o "$dir/goaccess.json" \
        --no-global-config >/dev/null 2>&1 || true
    e=$(date +%s.%N)
    ga_rate=$(echo "$lines / ($e - $s)" | bc -l)
fi
mt_rate=null
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
    s=$(date +%s.%N)
    $pin mtail --one_shot --one_shot_format=json --progs "$dir/mtail" --logs "$dir/mtail-input.log" \
        >/dev/null 2>&1 || true
    e=$(date +%s.%N)
    mt_rate=$(echo "$mt_lines / ($e - $s)" | bc -l)
fi
[ "$ga_rate" != null ] && printf 'goaccess:          %.0f lines/s (cc-gateway is %.1fx)\n' "$ga_rate" "$(echo "$rate / $ga_rate" | bc -l)"
[ "$mt_rate" != null ] && printf 'mtail:             %.0f lines/s (cc-gateway is %.1fx)\n' "$mt_rate" "$(echo "$rate / $mt_rate" | bc -l)"
python3 - "$rate" "$ga_rate" "$mt_rate" "$lines" "$cpu_rate" <<'PY'
import json, sys
rate = float(sys.argv[1]); lines = int(sys.argv[4]); cpu_rate = float(sys.argv[5])
cmd = "cc-gateway replay --config routing.yaml --source http0 gen-%d.log (taskset -c 0)" % lines
for peer, v in (("goaccess", sys.argv[2]), ("mtail", sys.argv[3])):
    pv = None if v == "null" else float(v)
    print(json.dumps({"bench": "replay", "metric": "lines/s", "value": round(rate),
                      "peer": peer, "peer_value": None if pv is None else round(pv),
                      "ratio": None if pv is None else round(rate / pv, 1),
                      "cpu_lines_per_s": round(cpu_rate),
                      "target": ">= 2000000 lines/s", "met": rate >= 2e6, "command": cmd}))
PY
