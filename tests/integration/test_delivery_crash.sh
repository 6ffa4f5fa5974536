#!/bin/bash
# cc-gateway fed on stdin during steady traffic:
#   - kill -9 of its worker (the counting process) mid-traffic: the supervisor
#     restarts it, it resumes at the journal's position; after SIGTERM
#     PostgreSQL holds exactly what was sent (nothing lost, nothing twice)
#   - kill -9 of the supervisor: the orphaned worker moves what is left in
#     the pipe into the request log, counts it and stops; the next run
#     resumes at the journal's position. DB <= sent, and sent - DB is at most
#     what the feeder wrote after that drain (slack)
#   - a run stopped with SIGTERM during traffic loses nothing.
source "$(dirname "$0")/lib.sh"
it_setup

GW="$CCGW_BIN/cc-gateway"
RATE=2000          # lines per second
FSYNC_MS=1000
SLACK=600          # lines: pipe buffer and the read-to-count path

pg_start
cat >"$IT_DIR/ccgw.yaml" <<YAML
gateway:
  name: gw-crash
  routing_domain: chains.example.tech
  data_dir: $IT_DIR/data
chains:
  - id: "0021"
    backends: [{name: n0021a, address: "127.0.0.1:18332"}]
providers:
  - name: acme
    accounts:
      - {id: 894334g9f403, chains: ["0021"]}
      - {id: a1b2c3d4e5f6, chains: ["0021"]}
postgres:
  url: $PG_URL
flush:
  interval_secs: 300
  fsync_interval_ms: $FSYNC_MS
logs:
  dir: $IT_DIR/logs
YAML
"$CCGW_BIN/relaystats" --config "$IT_DIR/ccgw.yaml" migrate || fail "migrate"

total() { psql_q "SELECT coalesce(sum(relays), 0) FROM relay_counts"; }

# feed SECONDS SIGNAL LOG: run cc-gateway, feed it RATE lines/s, send SIGNAL
# after SECONDS while still feeding; prints the number of lines written
feed() {
    python3 - "$GW" "$IT_DIR/ccgw.yaml" "$RATE" "$1" "$2" "$IT_DIR/$3" <<'PY'
import os, signal, subprocess, sys, time
gw, cfg, rate, secs, sig, log = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5], sys.argv[6]
p = subprocess.Popen([gw, "--config", cfg, "--source", "http0", "--listen", "none"],
                     stdin=subprocess.PIPE, stdout=open(log, "ab"), stderr=subprocess.STDOUT)
time.sleep(0.5)
worker_killed = False
def kill_worker():
    # the worker is the supervisor's child ("cc-gateway: http0 worker")
    out = subprocess.run(["pgrep", "-P", str(p.pid), "-f", "http0 worker"], capture_output=True, text=True).stdout.split()
    assert out, "no worker found"
    os.kill(int(out[0]), signal.SIGKILL)
accts = ["894334g9f403", "a1b2c3d4e5f6"]
sent, t0, tick = 0, time.monotonic(), 0.02
while time.monotonic() - t0 < secs:
    due = int((time.monotonic() - t0) * rate)
    buf = "".join('<6>127.0.0.1:4%04d [21/Nov/2026:10:22:33.685] fe_http0 be_0021/n0021a 0/0/0/0/0 200 183 - - ---- 1/1/0/0/0 0/0 {%s.0021.chains.example.tech} "POST / HTTP/1.1"\n'
                  % (i % 10000, accts[i % 2]) for i in range(sent, due))
    try:
        p.stdin.write(buf.encode()); p.stdin.flush()
    except BrokenPipeError:
        break
    sent = due
    if sig == "WORKER" and not worker_killed and time.monotonic() - t0 > secs / 2:
        kill_worker(); worker_killed = True
    time.sleep(tick)
p.send_signal(signal.SIGTERM if sig == "WORKER" else getattr(signal, sig))
try:
    p.stdin.close()
except BrokenPipeError:
    pass
p.wait(timeout=30)
print(sent)
PY
}

note "kill -9 of the worker after 2 s of 4 s at $RATE lines/s"
SENT=$(feed 4 WORKER run0.log) || fail "feeder"
grep -q '"worker_exited"\|worker_exited.*signal 9' "$IT_DIR/run0.log" || fail "the worker was not killed"
grep -q "restarts=1" "$IT_DIR/run0.log" || fail "the worker was not restarted"
assert_eq "$(total)" "$SENT" "relays in PostgreSQL after a worker kill -9 (nothing lost, nothing twice)"
BASE=$SENT

note "kill -9 of the supervisor after 4 s of $RATE lines/s"
SENT=$(feed 4 SIGKILL run1.log) || fail "feeder"
note "sent $SENT lines before kill -9"
grep -q "orphan_drain" "$IT_DIR/run1.log" || fail "the orphaned worker did not drain the pipe"
ls "$IT_DIR/data/http0" | grep -q '^journal\.' || fail "no journal on disk"
"$GW" --config "$IT_DIR/ccgw.yaml" --source http0 --listen none </dev/null >>"$IT_DIR/run2.log" 2>&1 \
    || fail "restart after kill -9"
grep -q "started.*from_segment=[1-9]" "$IT_DIR/run2.log" || fail "the restart did not resume at the journal's position"
DB=$(( $(total) - BASE ))
LOST=$((SENT - DB))
note "PostgreSQL has $DB of $SENT: $LOST lost (allowed: $SLACK, what the feeder wrote after the drain)"
[ "$DB" -le "$SENT" ] || fail "more counted ($DB) than sent ($SENT)"
[ "$LOST" -le "$SLACK" ] || fail "lost $LOST lines"
[ "$DB" -gt 0 ] || fail "nothing recovered"
echo "ok: supervisor kill -9 lost $LOST <= $SLACK, doubled nothing"
DB=$(total)

note "SIGTERM after 3 s of traffic loses nothing"
BASE=$DB
SENT=$(feed 3 SIGTERM run3.log) || fail "feeder"
assert_eq "$(( $(total) - BASE ))" "$SENT" "relays stored after SIGTERM"
assert_eq "$(psql_q "SELECT count(*) = count(DISTINCT (instance, flush_seq)) FROM relay_flushes")" "t" "ledger rows unique"
