#!/bin/bash
# cc-gateway resident memory with live counters: a deployment of 20 chains and
# 10,000 accounts each serving all 20 chains (200,000 routed hosts), and a log
# with one relay line per (account, chain) fed through stdin with
# --no-delivery, so every counter stays in memory. Reads VmRSS/VmHWM from
# /proc once ccgw_gateway_keys shows them all live. Baseline: the
# same binary with a one-account routing table and no input; and the full
# routing table with no input, to tell the table from the counters.
# Target < 64 MB.
source "$(dirname "$0")/../integration/lib.sh"
it_setup
CHAINS=${BENCH_CHAINS:-20}
ACCOUNTS=${BENCH_ACCOUNTS:-10000}
[ -x "$CCGW_BIN/cc-gateway" ] || fail "$CCGW_BIN/cc-gateway missing: run make first"

# conf FILE CHAINS ACCOUNTS: a deployment config in the shape of DESIGN.md.
gen_conf() {
    python3 - "$@" "$IT_DIR" <<'PY' || fail "config generation"
import sys
path, nchains, naccounts, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
chains = ["%04d" % (i + 1) for i in range(nchains)]
with open(path, "w") as f:
    f.write("gateway: {name: gw-bench, routing_domain: chains.local.test, data_dir: %s/data}\n" % d)
    f.write("chains:\n")
    if not chains:  # a chain with no account keeps the config valid: nothing routes
        chains_cfg = ["0001"]
    else:
        chains_cfg = chains
    for c in chains_cfg:
        f.write('  - {id: "%s", backends: [{name: n%sa, address: "127.0.0.1:1"}]}\n' % (c, c))
    f.write("providers:\n  - name: bench\n    accounts:\n")
    lst = ", ".join('"%s"' % c for c in chains)
    for a in range(naccounts):
        f.write('      - {id: "%012x", chains: [%s]}\n' % (0xb00000000000 + a, lst))
    if naccounts == 0:
        f.write('      - {id: "%012x", chains: ["0001"]}\n' % 0xb00000000000)
    f.write("tiers:\n  - {name: http0, role: http, bind: \"127.0.0.1:1\"}\n")
    f.write("logs: {format: json, level: warn, dir: %s/logs}\n" % d)
PY
}

# A relay line per (account, chain), all in one minute.
gen_log() {
    python3 - "$@" <<'PY' || fail "log generation"
import sys
path, nchains, naccounts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "w") as f:
    n = 0
    for a in range(naccounts):
        acc = "%012x" % (0xb00000000000 + a)
        for c in range(1, nchains + 1):
            ch = "%04d" % c
            f.write('<6>127.0.0.1:%d [21/Nov/2026:10:22:%02d.%03d] fe_http0 be_%s/n%sa 0/0/0/1/1 200 183 - - '
                    '---- 1/1/0/0/0 0/0 {%s.%s.chains.local.test} "POST / HTTP/1.1"\n'
                    % (1024 + n % 60000, (n // 1000) % 60, n % 1000, ch, ch, acc, ch))
            n += 1
PY
}

metric() { # port name
    curl -fsS --max-time 2 "http://127.0.0.1:$1/metrics" 2>/dev/null \
        | awk -v m="$2" '$1 == m || index($1, m "{") == 1 { print $2; exit }'
}

kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# measure NAME CONF LOG WANT_KEYS: sets M_RSS, M_HWM (kB) and M_KEYS
measure() {
    local name=$1 conf=$2 log=$3 want=$4 port pid keys="" i
    port=$(free_port)
    mkdir -p "$IT_DIR/data" "$IT_DIR/logs"
    rm -f "$IT_DIR/in.fifo" && mkfifo "$IT_DIR/in.fifo"
    TZ=UTC "$CCGW_BIN/cc-gateway" --config "$conf" --source http0 --no-delivery \
        --listen "127.0.0.1:$port" <"$IT_DIR/in.fifo" >"$IT_DIR/$name.log" 2>&1 &
    pid=$!
    IT_PIDS[$name]=$pid
    # This shell holds the write end open after the log, so the gateway keeps
    # running with its counters live until it is stopped.
    exec 3>"$IT_DIR/in.fifo"
    cat "$log" >&3
    wait_http "http://127.0.0.1:$port/health/live" 30
    for i in $(seq 600); do
        keys=$(metric "$port" ccgw_gateway_keys)
        [ "${keys%.*}" -ge "$want" ] 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || fail "$name: cc-gateway exited (see $IT_DIR/$name.log)"
        sleep 0.1
    done
    [ "${keys%.*}" -ge "$want" ] 2>/dev/null || fail "$name: counter keys ${keys:-none} < $want after 60s"
    sleep 1
    M_RSS=$(kb "$pid" VmRSS); M_HWM=$(kb "$pid" VmHWM); M_KEYS=${keys%.*}
    exec 3>&-
    stop_bg "$name"
}

note "generating a config of $CHAINS chains x $ACCOUNTS accounts and a log of $((CHAINS * ACCOUNTS)) lines"
gen_conf "$IT_DIR/full.yaml" "$CHAINS" "$ACCOUNTS"
gen_log "$IT_DIR/full.in" "$CHAINS" "$ACCOUNTS"
gen_conf "$IT_DIR/empty.yaml" 0 0
: >"$IT_DIR/empty.in"

note "baseline: empty routing table, no input"
measure empty "$IT_DIR/empty.yaml" "$IT_DIR/empty.in" 0
B_RSS=$M_RSS B_HWM=$M_HWM
note "routing table of $((CHAINS * ACCOUNTS)) hosts, no input"
measure table "$IT_DIR/full.yaml" "$IT_DIR/empty.in" 0
T_RSS=$M_RSS
note "loaded: $((CHAINS * ACCOUNTS)) live (account, chain) counters"
measure full "$IT_DIR/full.yaml" "$IT_DIR/full.in" $((CHAINS * ACCOUNTS))
F_RSS=$M_RSS F_HWM=$M_HWM F_KEYS=$M_KEYS

python3 - "$B_RSS" "$B_HWM" "$F_RSS" "$F_HWM" "$F_KEYS" "$T_RSS" "$CHAINS" "$ACCOUNTS" <<'PY'
import json, sys
b_rss, b_hwm, f_rss, f_hwm, keys, t_rss = (int(x) for x in sys.argv[1:7])
chains, accounts = sys.argv[7], sys.argv[8]
mb = lambda k: round(k / 1024, 1)
print("cc-gateway empty routing table: VmRSS %.1f MB, VmHWM %.1f MB" % (mb(b_rss), mb(b_hwm)))
print("cc-gateway routing table of %s chains x %s accounts, no input: VmRSS %.1f MB" % (chains, accounts, mb(t_rss)))
print("cc-gateway %s chains x %s accounts, %d counter keys: VmRSS %.1f MB, VmHWM %.1f MB (target < 64 MB)"
      % (chains, accounts, keys, mb(f_rss), mb(f_hwm)))
print("breakdown: baseline %.1f MB + routing table and config %.1f MB + %d live counters %.1f MB (%.0f bytes a key)"
      % (mb(b_rss), mb(t_rss - b_rss), keys, mb(f_rss - t_rss), (f_rss - t_rss) * 1024 / max(keys, 1)))
breakdown = {"baseline_mb": mb(b_rss), "table_mb": mb(t_rss - b_rss), "counters_mb": mb(f_rss - t_rss),
             "counter_keys": keys}
cmd = "log via a held-open fifo into cc-gateway --source http0 --no-delivery, %s chains x %s accounts, one line per (account, chain)" % (chains, accounts)
print(json.dumps({"bench": "gateway_memory", "metric": "VmRSS MB (live counters)", "value": mb(f_rss),
                  "peer": "empty routing table", "peer_value": mb(b_rss), "ratio": None, **breakdown,
                  "target": "< 64 MB", "met": f_rss < 64 * 1024, "command": cmd}))
print(json.dumps({"bench": "gateway_memory", "metric": "VmHWM MB (peak)", "value": mb(f_hwm),
                  "peer": "empty routing table", "peer_value": mb(b_hwm), "ratio": None,
                  "target": "< 64 MB", "met": f_hwm < 64 * 1024, "command": cmd}))
print(json.dumps({"bench": "gateway_memory", "metric": "VmRSS MB (routing table, no counters)",
                  "value": mb(t_rss), "peer": "empty routing table", "peer_value": mb(b_rss), "ratio": None,
                  "target": "< 64 MB", "met": t_rss < 64 * 1024, "command": cmd.split(",")[0] + ", no input"}))
PY
