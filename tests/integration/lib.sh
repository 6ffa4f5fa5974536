# Shared helpers for integration tests: sourced by tests/integration/test_*.sh
# and by benchmarks. Every server runs on loopback, on a free port, under a
# temp dir that is removed (and every process stopped) on exit.
#
#   it_setup                 make $IT_DIR, install the cleanup trap
#   free_port                print a free TCP port on 127.0.0.1
#   stack_offset             set OFF so every port of scripts/stack is free
#   pg_start                 PostgreSQL as the postgres user; sets PG_PORT, PG_URL
#   redis_start              redis-server as nobody; sets REDIS_PORT
#   wait_http URL [secs]     wait until URL answers 2xx
#   wait_port PORT [secs]    wait until 127.0.0.1:PORT accepts
#   bg NAME CMD...           start CMD in background, log to $IT_DIR/NAME.log
#   stop_bg NAME             SIGTERM it and wait
#   wait_log NAME PAT SECS   wait until $IT_DIR/NAME.log has PAT
#   assert_eq A B MSG        fail the test unless A == B
#   fail MSG                 print and exit 1

set -u
: "${CCGW_BIN:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/bin}"
: "${CCGW_ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
declare -A IT_PIDS=()

fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "-- $*"; }

assert_eq() {
    if [ "$1" != "$2" ]; then fail "$3: expected '$2', got '$1'"; fi
    echo "ok: $3 = $1"
}

it_cleanup() {
    local rc=$?
    set +e
    # A second SIGTERM/SIGINT (a bench limit, Ctrl-C) must not cut the cleanup short.
    trap '' INT TERM
    for name in "${!IT_PIDS[@]}"; do
        kill -TERM "${IT_PIDS[$name]}" 2>/dev/null
    done
    for name in "${!IT_PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "${IT_PIDS[$name]}" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "${IT_PIDS[$name]}" 2>/dev/null
    done
    if [ -n "${PG_DATA:-}" ] && [ -d "$PG_DATA" ]; then
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1
    fi
    if [ $rc -ne 0 ] && [ -n "${IT_DIR:-}" ]; then
        # every log the test started: its own, and a stack's (stack_start)
        for f in "$IT_DIR"/*.log "$IT_DIR"/*/logs/*.out; do
            [ -f "$f" ] || continue
            echo "---- $f (tail)"; tail -n 20 "$f"
        done
    fi
    [ -n "${IT_DIR:-}" ] && [ -z "${IT_KEEP:-}" ] && rm -rf "$IT_DIR"
    exit $rc
}

it_setup() {
    IT_DIR=$(mktemp -d /tmp/ccgw-it.XXXXXX)
    chmod 755 "$IT_DIR"
    trap it_cleanup EXIT
    trap 'exit 130' INT TERM
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_port() {
    local port=$1 secs=${2:-20} i
    for i in $(seq $((secs * 10))); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    fail "port $port not open after ${secs}s"
}

wait_http() {
    local url=$1 secs=${2:-20} i
    for i in $(seq $((secs * 10))); do
        curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "$url not healthy after ${secs}s"
}

# proc_ticks PID...: the CPU time (utime + stime, in clock ticks) of these
# processes, summed; a process that is gone counts 0. The fields are read
# after the ") " that ends the command name, which may hold blanks.
proc_ticks() {
    local p t=0 n
    for p in "$@"; do
        n=$(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null) || n=0
        t=$((t + ${n:-0}))
    done
    echo "$t"
}

bg() {
    local name=$1; shift
    "$@" >"$IT_DIR/$name.log" 2>&1 &
    IT_PIDS[$name]=$!
}

# wait_log NAME PATTERN SECS: wait until $IT_DIR/NAME.log has PATTERN
wait_log() {
    local i
    for i in $(seq $(($3 * 10))); do
        grep -q "$2" "$IT_DIR/$1.log" && return 0
        sleep 0.1
    done
    return 1
}

stop_bg() {
    local pid=${IT_PIDS[$1]:-}
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    unset "IT_PIDS[$1]"
}

# stack_offset: sets OFF to a port offset at which every DESIGN.md port of
# scripts/stack (and the cc-node peer ports 1000 above the nodes) is free.
stack_offset() {
    local p try busy
    for try in $(seq 20); do
        # 5600..9000: PostgreSQL and Redis (55432, 56379) land above the
        # kernel's ephemeral ports (32768-60999), every other port below them,
        # so no outgoing connection's source port can take one of ours.
        OFF=$(( (RANDOM % 35 + 56) * 100 ))
        busy=0
        for p in 8080 8443 8081 8082 8404 8405 8406 9100 9101 9102 8090 55432 56379 18332 18333 18334 18335 \
                 19332 19333 19334 19335; do
            if (exec 3<>"/dev/tcp/127.0.0.1/$((p + OFF))") 2>/dev/null; then busy=1; break; fi
        done
        [ $busy = 0 ] && return 0
    done
    fail "no free port offset for the stack after 20 tries"
}

# gw_conf_head NAME DATA_DIR: the start of a test gateway config (chains
# 0021 and 0001 on unused addresses, provider acme); the caller appends the
# account lines ("      - {id: ..., chains: [...]}") and the other sections.
gw_conf_head() {
    cat <<YAML
gateway:
  name: $1
  routing_domain: chains.example.tech
  data_dir: $2
chains:
  - id: "0021"
    backends: [{name: n0021a, address: "127.0.0.1:18332"}]
  - id: "0001"
    backends: [{name: n0001a, address: "127.0.0.1:18334"}]
providers:
  - name: acme
    accounts:
YAML
}

# stack_down: scripts/stack down of this test's stack (by its pid files).
stack_down() {
    "$CCGW_ROOT/scripts/stack" down >"$IT_DIR/down.log" 2>&1 || cat "$IT_DIR/down.log" >&2
}

# stack_start: scripts/stack up on a free port offset; sets OFF, RUN and
# EDGE, exports CCGW_RUN_DIR and CCGW_PORT_OFFSET, and takes the stack down
# at exit. Other tests start stacks in parallel: a port taken between
# stack_offset's check and the start makes `up` fail; another offset is tried.
stack_start() {
    local attempt
    export CCGW_RUN_DIR=$IT_DIR/run CCGW_BIN
    # it_cleanup reports the test's exit status: keep it across stack_down.
    trap 'rc=$?; trap "" INT TERM; stack_down; (exit $rc); it_cleanup' EXIT
    for attempt in 1 2 3; do
        stack_offset
        export CCGW_PORT_OFFSET=$OFF
        note "stack on port offset $OFF"
        "$CCGW_ROOT/scripts/stack" up >"$IT_DIR/up.log" 2>&1 && break
        cat "$IT_DIR/up.log" >&2
        stack_down
        [ $attempt = 3 ] && fail "stack up"
        rm -rf "$CCGW_RUN_DIR"
    done
    RUN=$CCGW_RUN_DIR
    EDGE=$((8080 + OFF)); HTTPS=$((8443 + OFF))
}

# gw_pid TIER supervisor|worker: the pid of the stack's cc-gateway supervisor
# of TIER, or of its worker (empty when none runs); this stack's processes
# only (other tests may run stacks of their own)
gw_pid() {
    local sup
    sup=$(cat "$RUN/pids/gw-$1.pid")
    if [ "$2" = supervisor ]; then echo "$sup"; else pgrep -P "$sup" -f "^cc-gateway: $1 worker" | head -n 1; fi
}

# stack_flush_total [QUERY OPTIONS...]: make every cc-gateway of the stack
# flush, then print PostgreSQL's relay total (relaystats query, last day).
stack_flush_total() {
    "$CCGW_ROOT/scripts/stack" flush >"$IT_DIR/flush.log" 2>&1 || { cat "$IT_DIR/flush.log" >&2; return 1; }
    "$CCGW_BIN/relaystats" --config "$RUN/ccgw.yaml" query --from -1d --to now --format json "$@" \
        | jq -er .total
}

# metric_sum PORT NAME [LABEL]: the sum of the samples of metric NAME (with
# LABEL, e.g. 'chain="0021"', in their labels) on 127.0.0.1:PORT/metrics;
# empty when there is none
metric_sum() {
    curl -fsS --max-time 5 "http://127.0.0.1:$1/metrics" | awk -v n="$2" -v l="${3:-}" \
        '($1 == n || index($1, n "{") == 1) && index($1, l) { s += $2; f = 1 } END { if (f) print s + 0 }'
}

# metric_wait_grows PORT NAME SECS: wait until counter NAME on PORT is above
# its value now (a worker judged one more sample, say); 1 when it did not
# within SECS
metric_wait_grows() {
    local c0
    c0=$(metric_sum "$1" "$2")
    for _ in $(seq $(($3 * 10))); do
        [ "$(metric_sum "$1" "$2")" -gt "${c0:-0}" ] && return 0
        sleep 0.1
    done
    return 1
}

# be_sent: requests the stack's HTTP tiers' HAProxys sent to be_0021's
# servers (show stat, stot of the backend), summed over http0 and http1
be_sent() {
    local t n s=0
    for t in http0 http1; do
        n=$(echo "show stat" | socat -t 5 - "UNIX-CONNECT:$RUN/data/$t.sock" \
            | awk -F, '$1 == "be_0021" && $2 == "BACKEND" { print $8 }')
        [ -n "$n" ] || fail "no be_0021 counters from $t"
        s=$((s + n))
    done
    echo $s
}

# haproxy_dropped_logs TIER: DroppedLogs of the stack's HAProxy TIER (show info).
haproxy_dropped_logs() {
    echo "show info" | socat -t 5 - "UNIX-CONNECT:$RUN/data/$1.sock" \
        | awk -F': ' '$1 == "DroppedLogs" { print $2 }'
}

# wrk_relay_lua FILE HOST METHOD STOP_FILE [SECS]: a wrk script that POSTs the
# JSON-RPC METHOD with Host HOST until STOP_FILE exists (checked once a
# second) or SECS have passed, then only the HTTP tiers' monitor request
# (/ccgw-health: answered by the tier itself, never forwarded, never logged),
# so whatever is in flight when wrk stops is no relay. At the end it prints
# "relays N", "monitors N", "bad N" (any other answer), "errors N" (socket
# errors) and "requests N" (answers of any kind); read them with wrk_field.
# Also "answered N" (a node's JSON-RPC answer, status below 500: what the
# relay rule bills, 4xx included) and "refused N" (404 without a JSON-RPC
# body: the HTTP tier had no route for the Host), both among "bad" or "relays".
wrk_relay_lua() {
    local secs=${5:-0}
    cat >"$1" <<LUA
local relay = wrk.format("POST", "/", {["Host"] = "$2", ["Content-Type"] = "application/json"},
                         '{"jsonrpc":"2.0","id":1,"method":"$3","params":[]}')
local monitor = wrk.format("GET", "/ccgw-health")
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
    relays = 0; monitors = 0; bad = 0; answered = 0; refused = 0; checked = 0; stopping = false
    switch_at = $secs > 0 and os.time() + $secs or nil
end
function request()
    local now = os.time()
    if not stopping and now ~= checked then
        checked = now
        if switch_at and now >= switch_at then stopping = true end
        local f = io.open("$4")
        if f then f:close(); stopping = true end
    end
    if stopping then return monitor end
    return relay
end
-- cc-node answers JSON-RPC; the HTTP tier answers the monitor request itself.
function response(status, headers, body)
    local rpc = body:find('"jsonrpc"', 1, true)
    if rpc and status < 500 then answered = answered + 1
    elseif not rpc and status == 404 then refused = refused + 1 end
    if status >= 200 and status < 300 and rpc then relays = relays + 1
    elseif status >= 200 and status < 300 and body:find("Service ready", 1, true) then
        monitors = monitors + 1
    else bad = bad + 1; io.stderr:write("non-2xx or unexpected answer: ", status, "\\n") end
end
function done(summary, latency, requests)
    local r, m, b, a, x = 0, 0, 0, 0, 0
    for _, t in ipairs(threads) do
        r = r + t:get("relays"); m = m + t:get("monitors"); b = b + t:get("bad")
        a = a + t:get("answered"); x = x + t:get("refused")
    end
    io.write(string.format("relays %d\\nmonitors %d\\nbad %d\\nerrors %d\\nrequests %d\\n", r, m, b,
                           summary.errors.connect + summary.errors.read + summary.errors.write +
                           summary.errors.timeout, summary.requests))
    io.write(string.format("answered %d\\nrefused %d\\n", a, x))
end
LUA
}

# wrk_field FILE KEY: a count wrk_relay_lua's script printed into FILE.
wrk_field() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }

# pg_create_seed: the SQL function seed(gateway, chain, account, bucket_start,
# n) in the test's database, which adds n relays to relay_counts and its
# hourly and daily rollups (a database populated without a gateway).
pg_create_seed() {
    psql_q "CREATE FUNCTION seed(g text, c text, a text, t timestamptz, n bigint) RETURNS void
LANGUAGE sql AS \$\$
  INSERT INTO relay_counts AS r VALUES (g, c, a, t, n)
    ON CONFLICT (gateway, chain, account, bucket_start) DO UPDATE SET relays = r.relays + EXCLUDED.relays;
  INSERT INTO relay_counts_hourly AS r VALUES (g, c, a, date_trunc('hour', t, 'UTC'), n)
    ON CONFLICT (gateway, chain, account, bucket_start) DO UPDATE SET relays = r.relays + EXCLUDED.relays;
  INSERT INTO relay_counts_daily AS r VALUES (g, c, a, date_trunc('day', t, 'UTC'), n)
    ON CONFLICT (gateway, chain, account, bucket_start) DO UPDATE SET relays = r.relays + EXCLUDED.relays;
\$\$"
}

pg_start() {
    PG_PORT=${PG_PORT:-$(free_port)}
    PG_DATA=$IT_DIR/pg
    mkdir -p "$PG_DATA" && chown postgres: "$PG_DATA" && chmod 700 "$PG_DATA"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -A trust --no-sync >"$IT_DIR/initdb.log" 2>&1 \
        || { cat "$IT_DIR/initdb.log"; fail "initdb"; }
    touch "$IT_DIR/postgres.log" && chown postgres: "$IT_DIR/postgres.log"
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -w -t 30 -l "$IT_DIR/postgres.log" \
        -o "-p $PG_PORT -k $PG_DATA -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null \
        || { cat "$IT_DIR/postgres.log"; fail "postgres start"; }
    runuser -u postgres -- "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres ccgw
    PG_URL="postgresql://postgres@127.0.0.1:$PG_PORT/ccgw"
}

pg_stop() {
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null
}

pg_restart() {
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -w -t 30 -l "$IT_DIR/postgres.log" \
        -o "-p $PG_PORT -k $PG_DATA -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
}

psql_q() {
    psql "$PG_URL" -XAtq -v ON_ERROR_STOP=1 -c "$1"
}

redis_start() {
    REDIS_PORT=${REDIS_PORT:-$(free_port)}
    mkdir -p "$IT_DIR/redis"
    chown nobody: "$IT_DIR/redis" 2>/dev/null || true
    # setpriv drops to nobody and execs in place: the pid is redis's own, so
    # stop_bg signals redis and not a wrapper that would pass it back to us.
    bg redis setpriv --reuid=nobody --regid=nogroup --clear-groups -- redis-server \
        --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$IT_DIR/redis" --save '' --appendonly no
    wait_port "$REDIS_PORT"
}
