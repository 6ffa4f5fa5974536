#!/bin/bash
# Reconciliation makes a loss loud. On the real stack with wrk at full rate
# through the edge, http0's supervisor is stopped (SIGSTOP) for 3 s, so
# nobody reads HAProxy's log pipe: it fills and HAProxy drops log lines.
# Then:
#   - HAProxy's DroppedLogs counts them, and the reconciliation gap of
#     be_0021 equals it (each dropped line was an answered relay);
#   - PostgreSQL holds wrk's relays minus exactly that gap;
#   - the gap is on /metrics, in `scripts/stack status`, written to
#     gateway_events, and the CcgwReconcileGap alert of
#     deploy/prometheus/alerts.yml fires in a real Prometheus;
#   - at the billing key too: HAProxy's per-account count (stick table
#     st_routes) is ahead of the relays billed to the account by exactly
#     DroppedLogs, the event names the account, CcgwAccountReconcileGap fires.
# Before the stop, with the same load, both gaps are 0.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/prom.sh"
it_setup
stack_start
M_H0=$((9101 + OFF))
HOST=894334g9f403.0021.chains.local.test

metric() { # metric PORT NAME [LABEL] -> the first matching sample
    curl -fsS --max-time 5 "http://127.0.0.1:$1/metrics" | awk -v n="$2" -v l="${3:-}" \
        '!f && ($1 == n || index($1, n "{") == 1) && index($1, l) { print $2; f = 1 }'
}
# one_more_check: wait until the worker has judged a newer sample
one_more_check() {
    metric_wait_grows $M_H0 ccgw_gateway_reconcile_checks_total 15 || fail "no reconciliation check in 15 s"
}
# one_more_account_check: the same for the per-account table (every 5 s)
one_more_account_check() {
    metric_wait_grows $M_H0 ccgw_gateway_reconcile_account_checks_total 30 \
        || fail "no per-account reconciliation check in 30 s"
}
psql_stack() { psql -h 127.0.0.1 -p $((55432 + OFF)) -U postgres -XAtq ccgw -c "$1"; }

PROM_SCRAPE_INTERVAL=1s PROM_PORT_OFFSET=$OFF PROM_RULE_FOR=1s prom_start "$CCGW_ROOT/deploy/prometheus/prometheus.yml"
prom_wait_up 60
BASE=$(stack_flush_total) || fail "first flush"

note "full load, nothing lost: the gap stays 0"
wrk_relay_lua "$IT_DIR/a.lua" "$HOST" getblockcount "$IT_DIR/a.stop" 5
wrk -t2 -c32 -d7s -s "$IT_DIR/a.lua" "http://127.0.0.1:$EDGE/" >"$IT_DIR/a.wrk" 2>&1
one_more_check; one_more_check
assert_eq "$(metric $M_H0 ccgw_gateway_reconcile_gap_relays 'chain="0021"')" 0 "gap after a clean run"
one_more_account_check
assert_eq "$(metric $M_H0 ccgw_gateway_reconcile_account_gap_relays)" 0 "per-account gap after a clean run"
assert_eq "$(metric $M_H0 ccgw_gateway_reconcile_account_excess_relays)" 0 "per-account excess after a clean run"
T=$(stack_flush_total) || fail "flush"
assert_eq "$((T - BASE))" "$(wrk_field "$IT_DIR/a.wrk" relays)" "relays in PostgreSQL after a clean run"
BASE=$T

note "http0's supervisor stopped for 3 s under load: HAProxy drops log lines"
D0=$(haproxy_dropped_logs http0)
wrk_relay_lua "$IT_DIR/b.lua" "$HOST" getblockcount "$IT_DIR/b.stop" 8
wrk -t2 -c32 -d10s -s "$IT_DIR/b.lua" "http://127.0.0.1:$EDGE/" >"$IT_DIR/b.wrk" 2>&1 &
WRK=$!
sleep 2
SUP=$(cat "$RUN/pids/gw-http0.pid")
kill -STOP "$SUP"
sleep 3
kill -CONT "$SUP"
wait $WRK
DROPPED=$(( $(haproxy_dropped_logs http0) - D0 ))
note "HAProxy http0 dropped $DROPPED log lines"
[ "$DROPPED" -gt 0 ] || fail "nothing dropped: the pipe did not fill"
one_more_check; one_more_check
GAP=$(metric $M_H0 ccgw_gateway_reconcile_gap_relays 'chain="0021"')
assert_eq "$GAP" "$DROPPED" "reconciliation gap of be_0021 = HAProxy's DroppedLogs"
T=$(stack_flush_total) || fail "flush"
RELAYS=$(wrk_field "$IT_DIR/b.wrk" relays)
assert_eq "$((T - BASE))" "$((RELAYS - GAP))" "PostgreSQL = wrk's relays - the gap"
"$CCGW_ROOT/scripts/stack" status >"$IT_DIR/status.txt" 2>&1
grep -q "http0 .*gap 0021=$GAP " "$IT_DIR/status.txt" || { cat "$IT_DIR/status.txt"; fail "stack status does not show the gap"; }
echo "ok: scripts/stack status shows gap 0021=$GAP"
for _ in $(seq 50); do
    [ "$(psql_stack "SELECT count(*) FROM gateway_events WHERE source = 'http0' AND message LIKE 'reconciliation: HAProxy answered $GAP requests of be_0021%'")" -ge 1 ] && break
    sleep 0.2
done
assert_eq "$(psql_stack "SELECT count(*) > 0 FROM gateway_events WHERE source = 'http0' AND message LIKE 'reconciliation: HAProxy answered $GAP requests of be_0021%'")" t \
    "the gap is an event in gateway_events"
note "alert CcgwReconcileGap: $(prom_wait_alert CcgwReconcileGap 30)"
for _ in $(seq 20); do # pending, then firing once its (shortened) `for:` has passed
    [ "$(prom_rules | awk '$1 == "CcgwReconcileGap" { print $2 }')" = firing ] && break
    sleep 1
done
assert_eq "$(prom_rules | awk '$1 == "CcgwReconcileGap" { print $2 }')" firing "CcgwReconcileGap fires"

note "the same loss at the billing key: account 894334g9f403 on chain 0021"
one_more_account_check; one_more_account_check
assert_eq "$(metric $M_H0 ccgw_gateway_reconcile_account_gap_relays)" "$DROPPED" \
    "per-account gap = HAProxy's DroppedLogs"
assert_eq "$(metric $M_H0 ccgw_gateway_reconcile_accounts_with_gap)" 1 "one account with a gap"
for _ in $(seq 50); do
    [ "$(psql_stack "SELECT count(*) FROM gateway_events WHERE source = 'http0' AND message LIKE 'reconciliation per account: HAProxy answered % relays of 1 accounts%: 0021/894334g9f403 +%'")" -ge 1 ] && break
    sleep 0.2
done
assert_eq "$(psql_stack "SELECT count(*) > 0 FROM gateway_events WHERE source = 'http0' AND message LIKE 'reconciliation per account: HAProxy answered % relays of 1 accounts%: 0021/894334g9f403 +%'")" t \
    "the per-account gap is an event naming the account (logged when it appears or doubles)"
note "alert CcgwAccountReconcileGap: $(prom_wait_alert CcgwAccountReconcileGap 30)"
for _ in $(seq 20); do
    [ "$(prom_rules | awk '$1 == "CcgwAccountReconcileGap" { print $2 }')" = firing ] && break
    sleep 1
done
assert_eq "$(prom_rules | awk '$1 == "CcgwAccountReconcileGap" { print $2 }')" firing "CcgwAccountReconcileGap fires"
