#!/bin/bash
# The relaystats dashboard in headless Chromium (Debian's chromium, driven by
# playwright-core from tests/browser; `npm ci` runs when node_modules is
# missing) against a running relaystats with seeded PostgreSQL and Redis
# data. The screenshot goes to build/browser/dashboard.png.
source "$(dirname "$0")/lib.sh"
it_setup
RS=$CCGW_BIN/relaystats
BROWSER_DIR=$CCGW_ROOT/tests/browser
SHOT_DIR=$CCGW_ROOT/build/browser

[ -x /usr/bin/chromium ] || fail "/usr/bin/chromium missing (scripts/install-deps installs it)"
if [ ! -d "$BROWSER_DIR/node_modules/playwright-core" ]; then
    (cd "$BROWSER_DIR" && npm ci --no-audit --no-fund) || fail "npm ci in tests/browser"
fi

pg_start
redis_start
API_PORT=$(free_port)
cat >"$IT_DIR/ccgw.yaml" <<YAML
gateway:
  name: gw1
  routing_domain: chains.local.test
chains:
  - id: "0021"
    name: bitcoin
    backends: [{name: b1, address: "127.0.0.1:18332"}]
  - id: "0001"
    name: ethereum
    backends: [{name: e1, address: "127.0.0.1:18333"}]
providers:
  - name: acme
    accounts: [{id: aaa, chains: ["0021", "0001"]}]
  - name: beta
    accounts: [{id: bbb, chains: ["0021"]}]
postgres:
  url: $PG_URL
redis:
  host: 127.0.0.1
  port: $REDIS_PORT
relaystats:
  listen: 127.0.0.1:$API_PORT
YAML
export CCGW_CONFIG=$IT_DIR/ccgw.yaml
"$RS" migrate && "$RS" sync || fail "migrate/sync"

# Seed the way cc-gateway's flush writes (raw + hourly + daily upserts).
CUR=$(( $(date +%s) / 300 * 300 ))
seed() {
    psql_q "INSERT INTO relay_counts VALUES ('$1','$2','$3',to_timestamp($4),$5);
            INSERT INTO relay_counts_hourly VALUES ('$1','$2','$3',date_trunc('hour',to_timestamp($4),'UTC'),$5)
              ON CONFLICT (gateway,chain,account,bucket_start) DO UPDATE SET relays = relay_counts_hourly.relays + EXCLUDED.relays;
            INSERT INTO relay_counts_daily VALUES ('$1','$2','$3',date_trunc('day',to_timestamp($4),'UTC'),$5)
              ON CONFLICT (gateway,chain,account,bucket_start) DO UPDATE SET relays = relay_counts_daily.relays + EXCLUDED.relays"
}
seed gw1 0021 aaa $((CUR - 3600)) 120
seed gw1 0021 aaa $((CUR - 7200)) 30
seed gw2 0001 aaa $((CUR - 600)) 50
seed gw1 0021 bbb $((CUR - 18000)) 200
seed gw1 0021 aaa $((CUR - 3 * 86400)) 1000
psql_q "INSERT INTO non_relay_counts VALUES ('gw1','invalid_host',to_timestamp($((CUR - 600))),7),
        ('gw1','server_error',to_timestamp($((CUR - 1200))),2)"
redis-cli -p "$REDIS_PORT" HSET "ccgw:relays:gw1:$CUR" "0021:aaa" 5 >/dev/null

TOKEN=$("$RS" token create --admin) || fail "token"
bg api "$RS" serve --threads 2
wait_http "http://127.0.0.1:$API_PORT/health"

mkdir -p "$SHOT_DIR"
rm -f "$SHOT_DIR/dashboard.png"
RS_URL=http://127.0.0.1:$API_PORT RS_TOKEN=$TOKEN RS_SCREENSHOT=$SHOT_DIR/dashboard.png \
RS_EXPECT='{"total24h": 400, "total7d": 1400, "chains": {"0021": 350, "0001": 50},
            "reasons": {"invalid_host": 7, "server_error": 2}}' \
RS_BUMP="redis-cli -p $REDIS_PORT HINCRBY ccgw:relays:gw1:\$(( \$(date +%s) / 300 * 300 )) 0021:aaa 100 >/dev/null" \
    node "$BROWSER_DIR/dashboard.test.mjs" || fail "browser checks"
[ -s "$SHOT_DIR/dashboard.png" ] || fail "no screenshot"
note "screenshot: $SHOT_DIR/dashboard.png"
redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
