# Prometheus helpers for integration tests; source after lib.sh (needs
# it_setup's $IT_DIR, bg, free_port, fail, note).
#
#   prom_scrape_check CONFIG [SECS]
#       Start the Debian prometheus on a free loopback port with a copy of
#       CONFIG (rule_files made absolute), wait until every target has been
#       scraped at least twice, and fail unless every target of
#       /api/v1/targets has health "up". Leaves PROM_URL set and Prometheus
#       running (stopped by it_cleanup) so the caller can query it.
#       Environment:
#         PROM_SCRAPE_INTERVAL  e.g. 2s: replaces global.scrape_interval (and
#                               every job's) so the check takes seconds
#         PROM_PORT_OFFSET      added to the port of every static target,
#                               for a stack started with CCGW_PORT_OFFSET
#       SECS bounds the wait (default 60).

prom_scrape_check() {
    local config=$1 secs=${2:-60} port dir
    [ -f "$config" ] || fail "prom_scrape_check: $config not found"
    command -v prometheus >/dev/null || fail "prometheus is not installed (scripts/install-deps)"
    port=$(free_port)
    dir=$IT_DIR/prometheus
    mkdir -p "$dir/data"
    python3 - "$config" "$dir/prometheus.yml" "${PROM_SCRAPE_INTERVAL:-}" "${PROM_PORT_OFFSET:-0}" <<'PY' \
        || fail "prom_scrape_check: cannot prepare $config"
import os, sys, yaml
src, dst, interval, offset = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with open(src) as fh:
    cfg = yaml.safe_load(fh)
base = os.path.dirname(os.path.abspath(src))
cfg["rule_files"] = [os.path.join(base, r) for r in cfg.get("rule_files") or []]
if interval:
    cfg.setdefault("global", {})["scrape_interval"] = interval
    cfg["global"]["evaluation_interval"] = interval
for job in cfg.get("scrape_configs") or []:
    if interval:
        job["scrape_interval"] = interval
        job.pop("scrape_timeout", None)
    for st in job.get("static_configs") or []:
        out = []
        for t in st.get("targets") or []:
            host, _, p = t.rpartition(":")
            out.append(f"{host}:{int(p) + offset}")
        st["targets"] = out
with open(dst, "w") as fh:
    yaml.safe_dump(cfg, fh)
PY
    bg prometheus prometheus --config.file="$dir/prometheus.yml" \
        --web.listen-address="127.0.0.1:$port" --storage.tsdb.path="$dir/data" \
        --log.level=warn
    PROM_URL=http://127.0.0.1:$port
    wait_http "$PROM_URL/-/ready" 30
    note "prometheus on $PROM_URL scraping $config"
    local deadline=$(( $(date +%s) + secs )) report
    while :; do
        # ok when every target was scraped twice and is up; prints a report.
        report=$(curl -fsS --max-time 5 "$PROM_URL/api/v1/targets?state=active" | python3 -c '
import json, sys
targets = json.load(sys.stdin)["data"]["activeTargets"]
bad = 0
for t in targets:
    labels = t["labels"]
    line = "%-10s %-16s %-5s %s" % (labels.get("job"), labels.get("instance"), t["health"],
                                     t.get("lastError") or "")
    print(line)
    if t["health"] != "up":
        bad += 1
sys.exit(0 if targets and bad == 0 else 1)
' 2>&1) && sleep "${PROM_SCRAPE_INTERVAL:-15}" 2>/dev/null && break
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "$report"
            fail "prom_scrape_check: not every target is up after ${secs}s"
        fi
        sleep 1
    done
    # A second look after another scrape interval: still every target up.
    report=$(curl -fsS --max-time 5 "$PROM_URL/api/v1/query?query=up" | python3 -c '
import json, sys
res = json.load(sys.stdin)["data"]["result"]
down = [r["metric"] for r in res if r["value"][1] != "1"]
for r in res:
    print(r["metric"].get("job"), r["metric"].get("instance"), "up =", r["value"][1])
sys.exit(1 if down or not res else 0)
') || { echo "$report"; fail "prom_scrape_check: up != 1 for some target"; }
    echo "$report"
    note "prom_scrape_check: $(echo "$report" | wc -l) targets, every up == 1"
}
