# Prometheus helpers for integration tests; source after lib.sh (needs
# it_setup's $IT_DIR, bg, free_port, wait_http, fail, note). Prometheus runs
# through `bg`, so it_cleanup stops it with the test.
#
#   prom_start CONFIG
#       Start the Debian prometheus on a free loopback port, storage under
#       $IT_DIR/prometheus, with a generated copy of CONFIG and of its rule
#       files. Sets PROM_URL and PROM_DIR. Environment:
#         PROM_SCRAPE_INTERVAL  e.g. 1s: replaces global.scrape_interval,
#                               evaluation_interval and every job's interval
#         PROM_PORT_OFFSET      added to the port of every static target,
#                               for a stack started with CCGW_PORT_OFFSET
#         PROM_RULE_FOR         e.g. 1s: replaces the `for:` of every alerting
#                               rule in the copies, so alerts fire in seconds
#   prom_wait_up [SECS]
#       Wait until every active target is up, then check after one more
#       scrape interval that the query `up` is 1 for each. Sets PROM_TARGETS
#       to the number of targets. SECS bounds the wait (default 60).
#   prom_scrape_check CONFIG [SECS]     prom_start, then prom_wait_up
#   prom_rules                 "<alert> <state> <health>" for every loaded alerting rule
#   prom_wait_alert NAME [SECS]  wait until alert NAME is pending or firing
#   prom_metric_names          every metric name Prometheus ingested, one per line
#   prom_used_metrics FILE...  metric names (ccgw_, ccnode_, relaystats_, haproxy_)
#                              used by the exprs of rule files (.yml) and
#                              Grafana dashboards (.json), one per line

prom_start() {
    local config=$1 port
    [ -f "$config" ] || fail "prom_start: $config not found"
    command -v prometheus >/dev/null || fail "prometheus is not installed (scripts/install-deps)"
    port=$(free_port)
    PROM_DIR=$IT_DIR/prometheus
    mkdir -p "$PROM_DIR/data" "$PROM_DIR/rules"
    python3 - "$config" "$PROM_DIR" "${PROM_SCRAPE_INTERVAL:-}" "${PROM_PORT_OFFSET:-0}" \
        "${PROM_RULE_FOR:-}" <<'PY' || fail "prom_start: cannot prepare $config"
import os, sys, yaml
src, out, interval, offset, rule_for = sys.argv[1:6]
offset = int(offset)
with open(src) as fh:
    cfg = yaml.safe_load(fh)
base = os.path.dirname(os.path.abspath(src))
rules = []
for i, r in enumerate(cfg.get("rule_files") or []):
    with open(os.path.join(base, r)) as fh:
        doc = yaml.safe_load(fh)
    for g in doc.get("groups") or []:
        for rule in g.get("rules") or []:
            if rule_for and "alert" in rule and "for" in rule:
                rule["for"] = rule_for
    dst = os.path.join(out, "rules", f"{i}-{os.path.basename(r)}")
    with open(dst, "w") as fh:
        yaml.safe_dump(doc, fh)
    rules.append(dst)
cfg["rule_files"] = rules
if interval:
    cfg.setdefault("global", {})["scrape_interval"] = interval
    cfg["global"]["evaluation_interval"] = interval
for job in cfg.get("scrape_configs") or []:
    if interval:
        job["scrape_interval"] = interval
        job.pop("scrape_timeout", None)
    for st in job.get("static_configs") or []:
        targets = []
        for t in st.get("targets") or []:
            host, _, p = t.rpartition(":")
            targets.append(f"{host}:{int(p) + offset}")
        st["targets"] = targets
with open(os.path.join(out, "prometheus.yml"), "w") as fh:
    yaml.safe_dump(cfg, fh)
PY
    bg prometheus prometheus --config.file="$PROM_DIR/prometheus.yml" \
        --web.listen-address="127.0.0.1:$port" --storage.tsdb.path="$PROM_DIR/data" \
        --log.level=warn
    PROM_URL=http://127.0.0.1:$port
    wait_http "$PROM_URL/-/ready" 30
    note "prometheus on $PROM_URL scraping a copy of $config"
}

prom_api() { # prom_api PATH -> JSON body, fails the test when the API does not answer
    curl -fsS --max-time 5 "$PROM_URL$1" || fail "prometheus API $1 does not answer"
}

prom_wait_up() {
    local secs=${1:-60} deadline report
    deadline=$(( $(date +%s) + secs ))
    while :; do
        report=$(curl -fsS --max-time 5 "$PROM_URL/api/v1/targets?state=active" | python3 -c '
import json, sys
targets = json.load(sys.stdin)["data"]["activeTargets"]
bad = 0
for t in targets:
    labels = t["labels"]
    print("%-10s %-6s %-16s %-5s %s" % (labels.get("job"), labels.get("tier", ""),
          labels.get("instance"), t["health"], t.get("lastError") or ""))
    bad += t["health"] != "up"
sys.exit(0 if targets and bad == 0 else 1)
' 2>&1) && break
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "$report"
            fail "prom_wait_up: not every target is up after ${secs}s"
        fi
        sleep 1
    done
    # A second look one scrape later: every target still up, through PromQL.
    sleep "${PROM_SCRAPE_INTERVAL:-15}"
    report=$(prom_api "/api/v1/query?query=up" | python3 -c '
import json, sys
res = json.load(sys.stdin)["data"]["result"]
for r in res:
    print(r["metric"].get("job"), r["metric"].get("instance"), "up =", r["value"][1])
sys.exit(1 if not res or any(r["value"][1] != "1" for r in res) else 0)
') || { echo "$report"; fail "prom_wait_up: up != 1 for some target"; }
    echo "$report"
    PROM_TARGETS=$(echo "$report" | wc -l)
    note "prom_wait_up: $PROM_TARGETS targets, every up == 1"
}

prom_scrape_check() {
    prom_start "$1"
    prom_wait_up "${2:-60}"
}

prom_rules() {
    prom_api "/api/v1/rules?type=alert" | python3 -c '
import json, sys
for g in json.load(sys.stdin)["data"]["groups"]:
    for r in g["rules"]:
        print(r["name"], r["state"], r["health"])
'
}

prom_wait_alert() {
    local name=$1 secs=${2:-30} i state
    for i in $(seq "$secs"); do
        state=$(prom_rules | awk -v n="$name" '$1 == n { print $2 }')
        case $state in pending|firing) echo "$state"; return 0 ;; esac
        sleep 1
    done
    prom_rules >&2
    fail "prom_wait_alert: $name is not pending or firing after ${secs}s"
}

prom_metric_names() {
    prom_api "/api/v1/label/__name__/values" | python3 -c '
import json, sys
print("\n".join(json.load(sys.stdin)["data"]))
'
}

prom_used_metrics() {
    python3 - "$@" <<'PY' || fail "prom_used_metrics: cannot read $*"
import json, re, sys, yaml
exprs = []
def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels") or [])
for path in sys.argv[1:]:
    with open(path) as fh:
        if path.endswith(".json"):
            exprs += [t["expr"] for p in walk(json.load(fh).get("panels") or [])
                      for t in p.get("targets") or [] if t.get("expr")]
        else:
            exprs += [r["expr"] for g in yaml.safe_load(fh).get("groups") or []
                      for r in g.get("rules") or []]
names = set()
for e in exprs:
    names |= set(re.findall(r"\b((?:ccgw|ccnode|relaystats|haproxy)_[a-zA-Z0-9_]+)", e))
print("\n".join(sorted(names)))
PY
}
