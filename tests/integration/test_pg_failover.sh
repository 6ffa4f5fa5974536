#!/bin/bash
# Exactly once across a database failover, with three gateway deployments on
# one replicated PostgreSQL.
#
# etcd (one member) and two PostgreSQL servers under Patroni run on loopback
# in this test's temp dir (everything as the postgres user, fsync off: a
# kill -9 keeps the page cache, so fsync changes nothing here). Three
# deployments (scripts/stack up with CCGW_GATEWAY_NAME gw-a, gw-b, gw-c, each
# on its own port offset and data dir, flushing every second) write to the
# cluster through one multi-host URL with target_session_attrs=read-write.
# wrk sends relays through each edge for the whole of each phase.
#
# Phase 1, synchronous replication (Patroni synchronous_mode): the primary's
# walsender is stopped (SIGSTOP: the standby falls behind, as over a slow
# link), so commits wait for the standby; those waits are cancelled (as a
# statement_timeout would: PostgreSQL then answers COMMIT with a WARNING, the
# flush being on the primary alone) and retried; then the primary (Patroni and every
# PostgreSQL process) is killed with SIGKILL, Patroni promotes the standby,
# the gateways journal and retry until it answers, and after the load:
# PostgreSQL's relays of each gateway equal wrk's relay answers exactly (0
# lost, 0 doubled), the rollups agree, every flush a gateway logged as
# committed is in relay_flushes once, and each instance's flush_seqs have no
# gap; relaystats --by gateway shows the three side by side, adding up.
#
# Phase 2, asynchronous replication (the old primary rejoins as a standby,
# synchronous_mode off), the same stall and kill the other way round: the
# flushes the old primary acknowledged while its standby was behind vanish
# with it. The test prints the loss and checks that it is exactly the relays
# of the acknowledged flushes missing from relay_flushes (never doubled, and
# more than 0: the loss the synchronous mode exists to prevent).
#
# Between the phases relaystats reads the standby through a prefer-standby
# URL: the same totals, lag 0 when it has replayed what it received, and a
# lag of at least 2 s when its replay has been stopped for 2 s.
source "$(dirname "$0")/lib.sh"
it_setup
for b in patroni patronictl etcd etcdctl wrk jq; do
    command -v $b >/dev/null || fail "$b missing: run scripts/install-deps"
done
LOAD_SECS=${CCGW_HA_LOAD_SECS:-5} # load before the stall
STALL_SECS=3                      # walsender stopped before the kill
AFTER_SECS=4                      # load once the new primary answers
GATEWAYS=(gw-a gw-b gw-c)
HOST=894334g9f403.0001.chains.local.test
HA=$IT_DIR/ha
mkdir -p "$HA" && chown postgres: "$HA"
ETCD_PORT=$(free_port)
ETCD_PEER=$(free_port)
declare -A PGP=([1]=$(free_port) [2]=$(free_port)) REST=([1]=$(free_port) [2]=$(free_port))
declare -A HA_PID=() OFFS=() WRK_PID=() BASE=() SENT=()
DB_URL="postgresql://postgres@127.0.0.1:${PGP[1]},127.0.0.1:${PGP[2]}/ccgw?target_session_attrs=read-write"
ADMIN_URL="postgresql://postgres@127.0.0.1:${PGP[1]},127.0.0.1:${PGP[2]}/postgres?target_session_attrs=read-write&connect_timeout=2"

db() { psql "$DB_URL&connect_timeout=2" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }

stack_cmd() { # GATEWAY ARGS...: scripts/stack for that deployment
    local g=$1; shift
    CCGW_RUN_DIR=$IT_DIR/run-$g CCGW_PORT_OFFSET=${OFFS[$g]} CCGW_GATEWAY_NAME=$g \
        CCGW_DATABASE_URL=$DB_URL CCGW_FLUSH_INTERVAL=1 "$CCGW_ROOT/scripts/stack" "$@"
}

ha_down() {
    local g n pid
    for g in "${!WRK_PID[@]}"; do kill -KILL "${WRK_PID[$g]}" 2>/dev/null; done
    for g in "${!OFFS[@]}"; do stack_cmd "$g" down >>"$IT_DIR/down.log" 2>&1; done
    for n in 1 2; do [ -n "${HA_PID[$n]:-}" ] && kill -TERM "${HA_PID[$n]}" 2>/dev/null; done
    for n in 1 2; do
        pid=${HA_PID[$n]:-}
        [ -n "$pid" ] || continue
        for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
    done
    # a PostgreSQL that Patroni left behind (killed Patroni, slow stop)
    for n in 1 2; do
        [ -f "$HA/pg$n/data/postmaster.pid" ] || continue
        pid=$(head -n 1 "$HA/pg$n/data/postmaster.pid")
        [ -d "/proc/$pid" ] && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$HA/pg$n/data" -m immediate \
            -w stop >/dev/null 2>&1
    done
    [ -n "${HA_PID[etcd]:-}" ] && kill -TERM "${HA_PID[etcd]}" 2>/dev/null
    for _ in $(seq 50); do kill -0 "${HA_PID[etcd]:-0}" 2>/dev/null || break; sleep 0.1; done
    [ -n "${HA_PID[etcd]:-}" ] && kill -KILL "${HA_PID[etcd]}" 2>/dev/null
    return 0
}
trap 'rc=$?; trap "" INT TERM; ha_down; (exit $rc); it_cleanup' EXIT

# ---- etcd and Patroni ----------------------------------------------------
start_etcd() {
    mkdir -p "$HA/etcd" && chown postgres: "$HA/etcd" && chmod 700 "$HA/etcd"
    # setpriv execs etcd in place: $! is etcd's pid (a function would fork)
    setpriv --reuid=postgres --regid=postgres --clear-groups -- etcd --name e1 --data-dir "$HA/etcd/data" --unsafe-no-fsync \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
        --initial-cluster "e1=http://127.0.0.1:$ETCD_PEER" >"$IT_DIR/etcd.log" 2>&1 </dev/null &
    HA_PID[etcd]=$!
    for _ in $(seq 100); do
        ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$ETCD_PORT" endpoint health >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    fail "etcd not healthy on $ETCD_PORT"
}

write_patroni_conf() { # N
    local n=$1
    mkdir -p "$HA/pg$n" && chown postgres: "$HA/pg$n" && chmod 700 "$HA/pg$n"
    # deploy/patroni/patroni.yml with loopback ports, ttl 10 (failover within
    # about 10 s) and the test's relaxations (fsync off, trust on loopback)
    cat >"$HA/pg$n.yml" <<YML
scope: ccgw-test
name: pg$n
log: {level: INFO}
restapi: {listen: "127.0.0.1:${REST[$n]}", connect_address: "127.0.0.1:${REST[$n]}"}
etcd3: {hosts: "127.0.0.1:$ETCD_PORT"}
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 1
    retry_timeout: 4
    maximum_lag_on_failover: 1073741824
    synchronous_mode: true
    postgresql:
      use_pg_rewind: false
      use_slots: true
      parameters: {wal_level: replica, hot_standby: "on", max_wal_senders: 5,
                   max_replication_slots: 5, wal_keep_size: 64MB}
  initdb: [{encoding: UTF8}, {locale: C.UTF-8}, {auth: trust}]
  pg_hba:
    - local all all trust
    - host replication replicator 127.0.0.1/32 trust
    - host all all 127.0.0.1/32 trust
postgresql:
  listen: "127.0.0.1:${PGP[$n]}"
  connect_address: "127.0.0.1:${PGP[$n]}"
  data_dir: $HA/pg$n/data
  bin_dir: $PG_BIN
  pgpass: $HA/pg$n/pgpass
  authentication:
    superuser: {username: postgres, password: ccgw-test}
    replication: {username: replicator, password: ccgw-test}
  parameters: {unix_socket_directories: "$HA/pg$n", fsync: "off", max_connections: 100}
YML
    chown postgres: "$HA/pg$n.yml"
}

start_patroni() { # N
    # from a directory postgres may enter: a clone may sit in one only root
    # can (mode 0700, /root), and Patroni's initdb cannot start in it
    cd "$HA/pg$1"
    env HOME="$HA/pg$1" setpriv --reuid=postgres --regid=postgres --clear-groups -- \
        patroni "$HA/pg$1.yml" >>"$IT_DIR/patroni$1.log" 2>&1 </dev/null &
    HA_PID[$1]=$!
    cd - >/dev/null
}

# wait_primary N [secs]: member N is Patroni's leader and takes writes
wait_primary() {
    local n=$1 secs=${2:-60}
    for _ in $(seq $((secs * 10))); do
        if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:${REST[$n]}/primary" 2>/dev/null &&
            [ "$(psql "postgresql://postgres@127.0.0.1:${PGP[$n]}/postgres?connect_timeout=1" -XAtqc \
                'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ]; then
            return 0
        fi
        sleep 0.1
    done
    patronictl -c "$HA/pg$n.yml" list >&2 || true
    fail "member pg$n is not a writable primary after ${secs}s"
}

# wait_standby N SYNC_STATE: the primary N streams to one standby in that state
wait_standby() {
    local n=$1 want=$2 got
    for _ in $(seq 600); do
        got=$(psql "postgresql://postgres@127.0.0.1:${PGP[$n]}/postgres?connect_timeout=1" -XAtqc \
            "SELECT string_agg(sync_state, ',') FROM pg_stat_replication WHERE state = 'streaming'" 2>/dev/null)
        [ "$got" = "$want" ] && return 0
        sleep 0.1
    done
    patronictl -c "$HA/pg$n.yml" list >&2 || true
    fail "pg$n streams to '$got', not to one '$want' standby, after 60s"
}

postmaster_of() { head -n 1 "$HA/pg$1/data/postmaster.pid"; }

# the primary's standby falls behind: its walsender stops sending
stall_walsender() {
    local pm ws
    pm=$(postmaster_of "$1")
    ws=$(pgrep -P "$pm" -f 'walsender') || fail "no walsender on pg$1"
    kill -STOP $ws
    note "pg$1: walsender $ws stopped (standby falls behind)"
}

# kill -9 member N: Patroni, the postmaster and every backend at once
kill_member() {
    local pm
    pm=$(postmaster_of "$1")
    kill -KILL "${HA_PID[$1]}" "$pm" $(pgrep -P "$pm") 2>/dev/null
    wait "${HA_PID[$1]}" 2>/dev/null
    for _ in $(seq 50); do [ -d "/proc/$pm" ] || break; sleep 0.1; done
    unset "HA_PID[$1]"
    note "pg$1 killed (patroni, postmaster $pm and its children, SIGKILL)"
}

note "etcd on $ETCD_PORT, PostgreSQL pg1 on ${PGP[1]}, pg2 on ${PGP[2]} (Patroni REST ${REST[1]}, ${REST[2]})"
start_etcd
write_patroni_conf 1
write_patroni_conf 2
start_patroni 1
wait_primary 1 60
start_patroni 2
wait_standby 1 sync
psql "$ADMIN_URL" -XAtqc "CREATE DATABASE ccgw" >/dev/null || fail "CREATE DATABASE ccgw"
note "pg1 primary, pg2 synchronous standby"

# ---- three deployments -----------------------------------------------------
for g in "${GATEWAYS[@]}"; do
    for attempt in 1 2 3; do
        stack_offset
        OFFS[$g]=$OFF
        stack_cmd "$g" up >"$IT_DIR/up-$g.log" 2>&1 && break
        cat "$IT_DIR/up-$g.log" >&2
        stack_cmd "$g" down >>"$IT_DIR/down.log" 2>&1
        [ $attempt = 3 ] && fail "stack up of $g"
        rm -rf "$IT_DIR/run-$g"
    done
    note "$g: stack on port offset ${OFFS[$g]}"
done

gw_metric_sum() { # GATEWAY METRIC: sum over its three cc-gateways
    local g=$1 p s=0 v
    for p in 9100 9101 9102; do
        v=$(curl -fsS --max-time 5 "http://127.0.0.1:$((p + ${OFFS[$g]}))/metrics" |
            awk -v m="$2" 'index($1, m "{") == 1 { print $2; exit }')
        s=$(awk -v a="$s" -v b="${v:-0}" 'BEGIN { printf "%d", a + b }')
    done
    echo "$s"
}
pg_relays() { db "SELECT coalesce(sum(relays), 0) FROM relay_counts WHERE gateway = '$1'"; }

# settle GATEWAY: flush its three cc-gateways (SIGUSR1) until nothing is
# pending for PostgreSQL, the last attempts succeeded, and that holds, with
# the database's total, across 1.5 s (more than the 1 s flush interval, so a
# flush cut but not yet committed shows). `scripts/stack flush` waits for a
# new flush, which never comes when the 1 s timer already flushed everything.
settle() {
    local g=$1 prev="" cur t p
    for _ in $(seq 40); do
        for t in edge http0 http1; do kill -USR1 "$(cat "$IT_DIR/run-$g/pids/gw-$t.pid")"; done
        sleep 1.5
        cur=$(pg_relays "$g")
        for p in 9100 9101 9102; do
            cur="$cur $(curl -fsS --max-time 5 "http://127.0.0.1:$((p + ${OFFS[$g]}))/metrics" |
                awk '/^ccgw_gateway_pending_buckets\{.*consumer="postgres"/ { n = $2 }
                     /^ccgw_gateway_last_flush_success\{/ { ok = $2 }
                     /^ccgw_gateway_flush_failures_total\{/ { f = $2 }
                     END { print n "/" ok "/" f }')"
        done
        # " N/" is a tier with N keys pending, "/0/" one whose last flush failed
        if [ "$cur" = "$prev" ] && ! [[ "$cur" =~ \ [1-9][0-9]*/ ]] && ! [[ "$cur" =~ /0/ ]]; then
            return 0
        fi
        prev=$cur
    done
    fail "$g: flushes did not settle in 60s (db total, pending/last ok/failures per tier: $cur)"
}

for g in "${GATEWAYS[@]}"; do
    settle "$g"
    BASE[$g]=$(pg_relays "$g")
    SENT[$g]=0
done
note "relays in PostgreSQL before the load: gw-a ${BASE[gw-a]}, gw-b ${BASE[gw-b]}, gw-c ${BASE[gw-c]}"

start_load() { # PHASE
    local g
    for g in "${GATEWAYS[@]}"; do
        rm -f "$IT_DIR/stop-$g"
        wrk_relay_lua "$IT_DIR/load-$g.lua" "$HOST" eth_blockNumber "$IT_DIR/stop-$g"
        # a few hundred relays/s per deployment: the servers share 2 cores
        echo 'function delay() return 4 end' >>"$IT_DIR/load-$g.lua"
        wrk -t1 -c2 -d600s --timeout 10s -s "$IT_DIR/load-$g.lua" \
            "http://127.0.0.1:$((8080 + ${OFFS[$g]}))/" >"$IT_DIR/wrk-$1-$g.out" 2>&1 &
        WRK_PID[$g]=$!
    done
}

# the lua script turns to monitor requests within a second of the stop file,
# so nothing in flight is a relay when wrk is interrupted (it prints its
# counts on SIGINT)
stop_load() { # PHASE
    local g r
    for g in "${GATEWAYS[@]}"; do touch "$IT_DIR/stop-$g"; done
    sleep 2.5
    for g in "${GATEWAYS[@]}"; do kill -INT "${WRK_PID[$g]}"; done
    for g in "${GATEWAYS[@]}"; do
        wait "${WRK_PID[$g]}" || { cat "$IT_DIR/wrk-$1-$g.out"; fail "wrk for $g"; }
        unset "WRK_PID[$g]"
        r=$(wrk_field "$IT_DIR/wrk-$1-$g.out" relays)
        [[ "$r" =~ ^[0-9]+$ ]] && [ "$r" -gt 100 ] || { cat "$IT_DIR/wrk-$1-$g.out"; fail "wrk for $g: '$r' relays"; }
        [ "$(wrk_field "$IT_DIR/wrk-$1-$g.out" monitors)" -gt 0 ] || fail "$g: the monitor tail never ran"
        assert_eq "$(wrk_field "$IT_DIR/wrk-$1-$g.out" bad)" 0 "$1: $g non-2xx or unexpected answers"
        assert_eq "$(wrk_field "$IT_DIR/wrk-$1-$g.out" errors)" 0 "$1: $g wrk socket errors"
        SENT[$g]=$((SENT[$g] + r))
        note "$1: $g: $r relays answered"
    done
}

# Flushes the gateways logged as committed (flush_done) that relay_flushes
# does not hold: "gateway source seq relays" lines. One instance per source
# here (no gateway restarts), so (gateway, source, seq) names a flush.
vanished_flushes() {
    local g t
    for g in "${GATEWAYS[@]}"; do
        db "SELECT source || ' ' || flush_seq FROM relay_flushes WHERE gateway = '$g'" >"$IT_DIR/ledger-$g"
        for t in edge http0 http1; do
            jq -rRc --arg t "$t" 'fromjson? | select(.event == "flush_done") | "\($t) \(.seq) \(.relays)"' \
                "$IT_DIR/run-$g/logs/gw-$t.out" 2>/dev/null
        done | sort -u | awk -v g="$g" -v f="$IT_DIR/ledger-$g" '
            BEGIN { while ((getline l < f) > 0) have[l] = 1 }
            !(($1 " " $2) in have) { print g, $0 }'
    done
}

# every (gateway, instance) has flush_seqs min..max without a gap
ledger_gaps() {
    db "SELECT gateway || '/' || source || ' has ' || count(*) || ' flushes, seqs '
               || min(flush_seq) || '..' || max(flush_seq)
        FROM relay_flushes GROUP BY gateway, source, instance
        HAVING count(*) <> max(flush_seq) - min(flush_seq) + 1"
}

# run_phase NAME OLD NEW: load, stall OLD's standby, kill OLD, NEW takes over
run_phase() {
    local phase=$1 old=$2 new=$3 t0 t1 g up_seen=0 nopri_seen=0 ready nop before_fail
    declare -A fails0=()
    for g in "${GATEWAYS[@]}"; do fails0[$g]=$(gw_metric_sum "$g" ccgw_gateway_flush_failures_total); done
    start_load "$phase"
    sleep "$LOAD_SECS"
    stall_walsender "$old"
    sleep "$STALL_SECS"
    if [ "$phase" = sync ]; then
        # what a statement_timeout or an operator's cancel does to a COMMIT
        # waiting for the standby: it returns "committed" with a WARNING
        n=$(psql "postgresql://postgres@127.0.0.1:${PGP[$old]}/postgres?connect_timeout=2" -XAtqc \
            "SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity
             WHERE application_name = 'cc-gateway' AND wait_event = 'SyncRep'")
        note "$phase: cancelled $n flush COMMITs waiting for the standby"
        [ "${n:-0}" -gt 0 ] || fail "$phase: no flush was waiting for the synchronous standby"
        sleep 1
    fi
    kill_member "$old"
    t0=$(date +%s.%N)
    # while no primary exists the gateways journal and retry
    sleep 3
    for g in "${GATEWAYS[@]}"; do
        up=$(curl -fsS --max-time 5 "http://127.0.0.1:$((9101 + ${OFFS[$g]}))/metrics" |
            awk 'index($1, "ccgw_gateway_postgres_up{") == 1 { print $2; exit }')
        ready=$(curl -s -w ' %{http_code}' --max-time 5 "http://127.0.0.1:$((9101 + ${OFFS[$g]}))/health/ready")
        nop=$(curl -fsS --max-time 5 "http://127.0.0.1:$((9101 + ${OFFS[$g]}))/metrics" |
            awk 'index($1, "ccgw_gateway_postgres_no_primary{") == 1 { print $2; exit }')
        note "$phase: no primary: $g http0 postgres_up=$up postgres_no_primary=$nop /health/ready: $ready"
        [ "$up" = 0 ] && up_seen=$((up_seen + 1))
        # serving and counting go on: ready, and it says why nothing is flushed
        case $ready in *" 200") ;; *) fail "$phase: $g not ready while only PostgreSQL fails over: $ready" ;; esac
        case $ready in *"postgres: no writable primary"*|*"postgres: down"*) nopri_seen=$((nopri_seen + 1)) ;; esac
    done
    wait_primary "$new" 90
    t1=$(date +%s.%N)
    note "$phase: pg$new is the primary $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s after the kill"
    sleep "$AFTER_SECS"
    stop_load "$phase"
    for g in "${GATEWAYS[@]}"; do
        settle "$g"
        before_fail=${fails0[$g]}
        [ "$(gw_metric_sum "$g" ccgw_gateway_flush_failures_total)" -gt "$before_fail" ] ||
            fail "$phase: $g saw no failed flush: the outage did not reach it"
    done
    [ "$up_seen" -gt 0 ] || fail "$phase: no gateway reported postgres_up 0 while there was no primary"
    [ "$nopri_seen" -gt 0 ] || fail "$phase: no /health/ready said that PostgreSQL has no writable primary"
    # while only the standby answered, the failed connects say why
    n=$(cat "$IT_DIR"/run-gw-*/logs/gw-http0.out | grep -c 'no writable primary')
    note "$phase: $n failed flushes logged 'no writable primary'"
    [ "$n" -gt "${NO_PRIMARY_SEEN:-0}" ] || fail "$phase: no flush failure said 'no writable primary'"
    NO_PRIMARY_SEEN=$n
}

# ---- phase 1: synchronous -------------------------------------------------
note "phase 1: synchronous replication, kill -9 of pg1 under load"
run_phase sync 1 2
total_pg=0
total_sent=0
for g in "${GATEWAYS[@]}"; do
    got=$(pg_relays "$g")
    assert_eq "$((got - BASE[$g]))" "${SENT[$g]}" "sync: $g relays in PostgreSQL (wrk's relay answers)"
    for r in hourly daily daily_chain; do
        assert_eq "$(db "SELECT coalesce(sum(relays), 0) FROM relay_counts_$r WHERE gateway = '$g'")" "$got" \
            "sync: $g relays in relay_counts_$r"
    done
    total_pg=$((total_pg + got))
    total_sent=$((total_sent + BASE[$g] + SENT[$g]))
done
vanished_flushes >"$IT_DIR/vanished-sync"
assert_eq "$(wc -l <"$IT_DIR/vanished-sync")" 0 "sync: flushes logged committed but missing from relay_flushes"
assert_eq "$(ledger_gaps)" "" "sync: gaps in the flush_seqs of relay_flushes"
assert_eq "$(db "SELECT count(*) FROM (SELECT 1 FROM relay_flushes GROUP BY gateway, instance, flush_seq HAVING count(*) > 1) d")" \
    0 "sync: (gateway, instance, flush_seq) more than once in relay_flushes"
logged=$(for g in "${GATEWAYS[@]}"; do cat "$IT_DIR/run-$g"/logs/gw-*.out; done |
    jq -rR 'fromjson? | select(.event == "flush_done") | .relays' | awk '{ s += $1 } END { print s + 0 }')
note "sync: flushes logged committed carry $logged relays; $(db 'SELECT count(*) FROM relay_flushes') ledger rows"

# relaystats shows the deployments side by side, adding up
"$CCGW_BIN/relaystats" --db "$DB_URL" query --from -1d --to now --step 1d --by gateway --format json \
    >"$IT_DIR/by-gateway.json" || fail "relaystats query --by gateway"
"$CCGW_BIN/relaystats" --db "$DB_URL" query --from -1d --to now --step 1d --by gateway --format table
for g in "${GATEWAYS[@]}"; do
    assert_eq "$(jq -r --arg g "$g" '.groups[] | select(.gateway == $g) | .total' "$IT_DIR/by-gateway.json")" \
        "$(pg_relays "$g")" "relaystats --by gateway: $g"
done
assert_eq "$(jq -r .total "$IT_DIR/by-gateway.json")" "$total_sent" "relaystats total of the three gateways"
echo "SYNC RESULT: relays sent $total_sent, in PostgreSQL $total_pg, lost 0, doubled 0"

# ---- phase 2: asynchronous ------------------------------------------------
note "pg1 rejoins as a standby (new data dir, pg_basebackup by Patroni)"
rm -rf "$HA/pg1/data"
start_patroni 1
wait_standby 2 sync
# relaystats may read the standby (prefer-standby) and says how far behind it is
RO_URL="postgresql://postgres@127.0.0.1:${PGP[1]},127.0.0.1:${PGP[2]}/ccgw?target_session_attrs=prefer-standby"
ro_query() { "$CCGW_BIN/relaystats" --db "$RO_URL" query --from -1d --to now --step 1d --format json; }
sleep 0.5
ro_query >"$IT_DIR/ro.json" || fail "relaystats query on the standby"
assert_eq "$(jq -r .total "$IT_DIR/ro.json")" "$total_sent" "relaystats on the standby: total"
assert_eq "$(jq -r .standby.lag_seconds "$IT_DIR/ro.json")" 0 "relaystats on the standby: lag (caught up)"
assert_eq "$(psql "$DB_URL" -XAtqc 'SELECT pg_is_in_recovery()')" f "the read-write URL reaches the primary"
PG1_URL="postgresql://postgres@127.0.0.1:${PGP[1]}/ccgw"
# a commit the standby replays, then replay stopped and one it does not
db "CREATE TABLE ha_probe (x int)"
for _ in $(seq 50); do
    psql "$PG1_URL" -XAtqc "SELECT to_regclass('ha_probe') IS NOT NULL" | grep -q t && break
    sleep 0.1
done
# (Patroni resumes a pg_wal_replay_pause() within a second: the startup
# process, which replays, is stopped instead)
startup=$(pgrep -P "$(postmaster_of 1)" -f 'startup') || fail "no startup process on pg1"
kill -STOP $startup
db "INSERT INTO ha_probe VALUES (1)"
sleep 2
ro_query >"$IT_DIR/ro.json" || { kill -CONT $startup; fail "relaystats query on the paused standby"; }
kill -CONT $startup
lag=$(jq -r .standby.lag_seconds "$IT_DIR/ro.json")
awk -v l="$lag" 'BEGIN { exit !(l >= 2 && l < 10) }' ||
    fail "relaystats on a standby with replay stopped 2 s says lag '$lag' (want 2 to 10 s)"
echo "ok: relaystats on a standby whose replay is stopped: lag_seconds $lag"
patronictl -c "$HA/pg2.yml" edit-config --force -s synchronous_mode=false >"$IT_DIR/edit-config.log" 2>&1 ||
    { cat "$IT_DIR/edit-config.log"; fail "patronictl edit-config"; }
wait_standby 2 async
note "phase 2: asynchronous replication, kill -9 of pg2 under load"
run_phase async 2 1
total_pg=0
total_sent=0
for g in "${GATEWAYS[@]}"; do
    got=$(pg_relays "$g")
    total_pg=$((total_pg + got))
    total_sent=$((total_sent + BASE[$g] + SENT[$g]))
    [ "$got" -le "$((BASE[$g] + SENT[$g]))" ] || fail "async: $g has $got relays, more than the $((BASE[$g] + SENT[$g])) sent"
done
vanished_flushes >"$IT_DIR/vanished-async"
lost=$((total_sent - total_pg))
lost_flushes=$(wc -l <"$IT_DIR/vanished-async")
lost_logged=$(awk '{ s += $4 } END { print s + 0 }' "$IT_DIR/vanished-async")
sed 's/^/   vanished: /' "$IT_DIR/vanished-async"
echo "ASYNC RESULT: relays sent $total_sent, in PostgreSQL $total_pg, lost $lost in $lost_flushes acknowledged flushes"
assert_eq "$lost_logged" "$lost" "async: lost relays = relays of the acknowledged flushes missing from relay_flushes"
[ "$lost" -gt 0 ] || fail "async: nothing was lost: the stall did not leave the standby behind"
