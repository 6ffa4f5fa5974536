#!/bin/bash
# relaystats against real PostgreSQL and Redis: ranges across bucket, hour
# and day boundaries, empty ranges, a late count for an already rolled-up
# hour and day, query == export totals, provider isolation over the HTTP API,
# parameter validation (SQL-looking input included) and the realtime merge
# with Redis up and down.
#
# Counts are written the way cc-gateway's fold writes them
# (relay_deltas_fold): additive upserts into relay_counts and the hourly and
# daily rollups in one transaction, mirrored by the seed() SQL function below;
# the late count arrives the way a flush writes it (a row in relay_deltas),
# counted by every query before and after `relaystats fold`.
source "$(dirname "$0")/lib.sh"
it_setup
RS=$CCGW_BIN/relaystats

pg_start
redis_start
API_PORT=$(free_port)
ADMIN_SECRET=config-admin-secret
ADMIN_SHA=$(printf %s "$ADMIN_SECRET" | sha256sum | cut -d' ' -f1)

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
    accounts:
      - id: aaa
        chains: ["0021", "0001"]
  - name: beta
    accounts:
      - id: bbb
        chains: ["0021"]
postgres:
  url: $PG_URL
redis:
  host: 127.0.0.1
  port: $REDIS_PORT
relaystats:
  listen: 127.0.0.1:$API_PORT
  admin_token_sha256: $ADMIN_SHA
YAML
export CCGW_CONFIG=$IT_DIR/ccgw.yaml

# jget EXPR: evaluate a Python expression over the JSON document on stdin (d).
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

"$RS" migrate || fail "migrate"
"$RS" migrate || fail "migrate twice"
"$RS" sync || fail "sync"
assert_eq "$(psql_q "SELECT count(*) FROM accounts")" 3 "accounts synced"
assert_eq "$(psql_q "SELECT provider FROM accounts WHERE account='bbb'")" beta "bbb belongs to beta"

pg_create_seed
D=2026-01-10
psql_q "SELECT seed('gw1','0021','aaa','2026-01-09T23:55Z',5),
               seed('gw1','0021','aaa','${D}T00:00Z',7),
               seed('gw1','0021','aaa','${D}T00:05Z',11),
               seed('gw1','0021','aaa','${D}T00:55Z',13),
               seed('gw1','0021','aaa','${D}T01:00Z',17),
               seed('gw1','0021','aaa','${D}T23:55Z',19),
               seed('gw1','0021','aaa','2026-01-11T00:00Z',23),
               seed('gw2','0001','aaa','${D}T00:00Z',100),
               seed('gw1','0021','bbb','${D}T00:05Z',1000)" >/dev/null
psql_q "INSERT INTO non_relay_counts VALUES ('gw1','invalid_host','${D}T00:00Z',3),
        ('gw1','server_error','${D}T00:05Z',2), ('gw2','invalid_host','${D}T01:00Z',4)"

q() { "$RS" query --format json "$@"; }

note "five-minute buckets across a bucket boundary"
out=$(q --from ${D}T00:00:00Z --to ${D}T00:10:00Z --step 5m)
assert_eq "$(jget 'd["total"]' <<<"$out")" 1118 "5m total"
assert_eq "$(jget 'd["series"]' <<<"$out")" "[['2026-01-10T00:00:00Z', 107], ['2026-01-10T00:05:00Z', 1011]]" "5m series"
assert_eq "$(jget 'd["table"]' <<<"$out")" relay_totals "5m reads the raw table"
assert_eq "$(q --from ${D}T00:00:00Z --to ${D}T00:10:00Z --provider acme | jget 'd["total"]')" 118 "5m total for acme"

note "hour boundary"
out=$(q --from ${D}T00:00:00Z --to ${D}T02:00:00Z --step 1h --by gateway)
assert_eq "$(jget 'd["series"]' <<<"$out")" "[['2026-01-10T00:00:00Z', 1131], ['2026-01-10T01:00:00Z', 17]]" "hourly series"
assert_eq "$(jget 'd["table"]' <<<"$out")" relay_totals_hourly "1h reads the hourly rollup"
assert_eq "$(jget '[(g["gateway"], g["total"]) for g in d["groups"]]' <<<"$out")" "[('gw1', 1048), ('gw2', 100)]" "hourly by gateway"

note "day boundary"
out=$(q --from 2026-01-09 --to 2026-01-12 --step 1d --by chain)
assert_eq "$(jget '[p[1] for p in d["series"]]' <<<"$out")" "[5, 1167, 23]" "daily series"
assert_eq "$(jget 'd["table"]' <<<"$out")" relay_totals_daily_chain "1d by chain reads the per-chain daily rollup"
assert_eq "$(jget '{g["chain"]: g["total"] for g in d["groups"]}' <<<"$out")" "{'0001': 100, '0021': 1095}" "daily by chain"
out=$(q --from 2026-01-09 --to 2026-01-12 --step 1d --by chain,account)
assert_eq "$(jget 'd["table"]' <<<"$out")" relay_totals_daily "1d by account reads the daily rollup"
assert_eq "$(jget '[p[1] for p in d["series"]]' <<<"$out")" "[5, 1167, 23]" "daily series by account"
raw=$(q --from 2026-01-09 --to 2026-01-12 --step 1d --source raw | jget '[p[1] for p in d["series"]]')
assert_eq "$raw" "[5, 1167, 23]" "daily from the raw table equals the rollup"

note "empty ranges"
out=$(q --from 2026-01-15 --to 2026-01-16 --step 1d)
assert_eq "$(jget '(d["total"], d["series"])' <<<"$out")" "(0, [['2026-01-15T00:00:00Z', 0]])" "range without data"
assert_eq "$(q --from ${D}T00:00:00Z --to ${D}T00:00:00Z | jget '(d["total"], len(d["series"]))')" "(0, 0)" "from == to"
assert_eq "$(q --from ${D}T00:00:00Z --to ${D}T00:10:00Z --chain 9999 | jget 'd["total"]')" 0 "unknown chain"

note "late count for an already rolled-up hour and day, flushed (relay_deltas), then folded"
psql_q "INSERT INTO relay_deltas VALUES ('gw1','0021','aaa',extract(epoch FROM timestamptz '${D}T00:05Z'),3),
        ('gw1','0021','aaa',extract(epoch FROM timestamptz '${D}T00:05Z'),1)"
for when in pending folded; do
    assert_eq "$(q --from ${D}T00:00:00Z --to ${D}T01:00:00Z --step 1h | jget 'd["total"]')" 1135 "hour after late count ($when)"
    assert_eq "$(q --from $D --to 2026-01-11 --step 1d | jget 'd["total"]')" 1171 "day after late count ($when)"
    assert_eq "$(q --from $D --to 2026-01-11 --step 1d --by account | jget 'd["total"]')" 1171 "day by account after late count ($when)"
    assert_eq "$(q --from $D --to 2026-01-11 --step 1d --source raw | jget 'd["total"]')" 1171 "raw day after late count ($when)"
    assert_eq "$(q --from ${D}T00:05:00Z --to ${D}T00:10:00Z | jget 'd["total"]')" 1015 "bucket after late count ($when)"
    [ $when = folded ] && break
    "$RS" fold || fail "fold"
    assert_eq "$(psql_q "SELECT count(*) FROM relay_deltas")" 0 "relay_deltas empty after relaystats fold"
    assert_eq "$(psql_q "SELECT relays FROM relay_counts WHERE gateway='gw1' AND account='aaa' AND bucket_start='${D}T00:05Z'")" 15 "the late count folded into its bucket"
done

note "query and export agree"
for range in "$D 2026-01-11 1d" "${D}T00:00:00Z ${D}T02:00:00Z 1h" "${D}T00:05:00Z ${D}T00:15:00Z 5m"; do
    set -- $range
    qt=$(q --from "$1" --to "$2" --step "$3" --provider acme | jget 'd["total"]')
    et=$("$RS" export --provider acme --from "$1" --to "$2" --format json | jget 'd["total"]')
    ct=$("$RS" export --provider acme --from "$1" --to "$2" --format csv | awk -F, '$2=="TOTAL"{print $6}')
    assert_eq "$et" "$qt" "export json total == query total ($3 range)"
    assert_eq "$ct" "$qt" "export csv total == query total ($3 range)"
done
out=$("$RS" export --provider acme --from $D --to 2026-01-11 --format json)
assert_eq "$(jget '[(r["account"], r["chain"], r["relays"]) for r in d["rows"]]' <<<"$out")" \
    "[('aaa', '0001', 100), ('aaa', '0021', 71)]" "export rows per account and chain"
out=$("$RS" export --all --from $D --to 2026-01-11 --format json 2>"$IT_DIR/all.err") || fail "export --all"
assert_eq "$(jget '(d["total"], [(p["provider"], p["total"]) for p in d["providers"]], d["unowned"]["total"])' <<<"$out")" \
    "(1171, [('acme', 171), ('beta', 1000)], 0)" "export --all: every relay owned, by provider"
assert_eq "$(cat "$IT_DIR/all.err")" "" "export --all: no unowned warning"
"$RS" query --from $D --to 2026-01-11 --step 1d --format table --by chain >"$IT_DIR/table.txt" || fail "table format"
grep -q '^total .* 1171$' "$IT_DIR/table.txt" || fail "table total line"
"$RS" query --from $D --to 2026-01-11 --step 1d --format csv >"$IT_DIR/q.csv" || fail "csv format"
assert_eq "$(cat "$IT_DIR/q.csv")" "$(printf 'bucket_start,relays\n2026-01-10T00:00:00Z,1171')" "csv output"

note "CLI validation"
set +e
msg=$("$RS" query --from ${D}T00:07:00Z --to ${D}T01:00:00Z 2>&1); rc=$?
assert_eq "$rc" 2 "unaligned from exits 2"
grep -q "not aligned" <<<"$msg" || fail "unaligned message: $msg"
"$RS" query --from $D --to 2026-01-11 --chain "0021' OR '1'='1" >/dev/null 2>&1; assert_eq $? 2 "SQL-looking chain exits 2"
"$RS" query --from "2026-01-10'; DROP TABLE relay_counts; --" --to now >/dev/null 2>&1; assert_eq $? 2 "SQL-looking time exits 2"
"$RS" query --from $D --to 2026-01-11 --step 7m >/dev/null 2>&1; assert_eq $? 2 "bad step exits 2"
"$RS" export --from $D --to 2026-01-11 >/dev/null 2>&1; assert_eq $? 2 "export without provider exits 2"
"$RS" --db "postgresql://postgres@127.0.0.1:1/x" query --from $D --to 2026-01-11 >/dev/null 2>&1; assert_eq $? 1 "unreachable db exits 1"
set -e
assert_eq "$(psql_q "SELECT count(*) FROM relay_counts")" 9 "relay_counts intact"

note "tokens"
TA=$("$RS" token create --provider acme) || fail "token acme"
TB=$("$RS" token create --provider beta) || fail "token beta"
TADM=$("$RS" token create --admin) || fail "token admin"
assert_eq "$(psql_q "SELECT count(*) FROM api_tokens WHERE token_sha256 = '$(printf %s "$TA" | sha256sum | cut -d' ' -f1)'")" 1 "token stored hashed"
assert_eq "$(psql_q "SELECT count(*) FROM api_tokens WHERE token_sha256 = '$TA'")" 0 "token not stored in clear"
set +e; "$RS" token create --provider nobody >/dev/null 2>&1; assert_eq $? 2 "token for unknown provider"; set -e

bg api "$RS" serve --threads 2
wait_http "http://127.0.0.1:$API_PORT/health"
BASE=http://127.0.0.1:$API_PORT
# get TOKEN PATH: prints "<status> <body>"
get() {
    local auth=()
    [ -n "$1" ] && auth=(-H "Authorization: Bearer $1")
    curl -s -o "$IT_DIR/body" -w '%{http_code}' "${auth[@]}" "$BASE$2"
    printf ' '; cat "$IT_DIR/body"
}
status() { get "$@" | cut -d' ' -f1; }
body() { get "$@" | cut -d' ' -f2-; }
R="from=$D&to=2026-01-11&step=1d"

note "HTTP authentication and provider isolation"
assert_eq "$(status "" "/api/v1/relays?$R")" 401 "no token"
assert_eq "$(status "rst_0000" "/api/v1/relays?$R")" 401 "unknown token"
assert_eq "$(body "$TADM" "/api/v1/relays?$R" | jget 'd["total"]')" 1171 "admin sees all"
assert_eq "$(body "$ADMIN_SECRET" "/api/v1/relays?$R" | jget 'd["total"]')" 1171 "config admin token"
assert_eq "$(body "$TA" "/api/v1/relays?$R" | jget 'd["total"]')" 171 "acme sees its own"
assert_eq "$(body "$TB" "/api/v1/relays?$R" | jget 'd["total"]')" 1000 "beta sees its own"
assert_eq "$(body "$TA" "/api/v1/relays?$R&by=account" | jget '[g["account"] for g in d["groups"]]')" "['aaa']" "acme groups"
assert_eq "$(status "$TA" "/api/v1/relays?$R&provider=beta")" 403 "acme asking for beta"
assert_eq "$(status "$TA" "/api/v1/relays?$R&account=bbb")" 403 "acme asking for beta's account"
assert_eq "$(body "$TA" "/api/v1/relays?$R&account=aaa&chain=0001" | jget 'd["total"]')" 100 "acme own account"
assert_eq "$(status "$TA" "/api/v1/export?from=$D&to=2026-01-11&provider=beta")" 403 "acme exporting beta"
assert_eq "$(body "$TA" "/api/v1/export?from=$D&to=2026-01-11" | jget 'd["total"]')" 171 "acme export"
assert_eq "$(body "$TADM" "/api/v1/export?from=$D&to=2026-01-11&provider=beta&format=csv" | tail -n 1)" \
    "beta,TOTAL,,2026-01-10T00:00:00Z,2026-01-11T00:00:00Z,1000" "admin csv export"
assert_eq "$(status "$TADM" "/api/v1/export?from=$D&to=2026-01-11")" 400 "admin export needs provider"
assert_eq "$(body "$TA" "/api/v1/chains" | jget 'd["chains"]')" "[{'chain': '0001', 'name': 'ethereum'}, {'chain': '0021', 'name': 'bitcoin'}]" "acme chains"
assert_eq "$(body "$TB" "/api/v1/gateways" | jget 'd["gateways"]')" "['gw1']" "beta gateways"
assert_eq "$(body "$TADM" "/api/v1/gateways" | jget 'd["gateways"]')" "['gw1', 'gw2']" "admin gateways"
assert_eq "$(status "$TA" "/api/v1/non-relays?$R")" 403 "non-relays for providers"
out=$(body "$TADM" "/api/v1/non-relays?from=$D&to=2026-01-11&step=1h")
assert_eq "$(jget '(d["total"], [(r["reason"], r["total"]) for r in d["reasons"]])' <<<"$out")" \
    "(9, [('invalid_host', 7), ('server_error', 2)])" "non-relays by reason"
assert_eq "$(body "$TADM" "/api/v1/non-relays?from=$D&to=2026-01-11&step=1d&gateway=gw1" | jget 'd["total"]')" 5 "non-relays of gw1"

note "HTTP parameter validation"
for bad in "step=7m&from=$D&to=2026-01-11" "$R&chain=0021'%20OR%20'1'%3D'1" "$R&by=relays" \
           "from=2026-01-10T00:07:00Z&to=2026-01-11&step=5m" "from=yesterday&to=now" "to=now" \
           "$R&limit=5" "$R&gateway=" "$R&step=1h" "$R&account=a%3Bdrop" \
           "from=-100000d&to=now&step=5m" "from=2026-01-12&to=2026-01-11&step=1d"; do
    got=$(get "$TADM" "/api/v1/relays?$bad")
    assert_eq "${got%% *}" 400 "400 for $bad"
    jget 'd["error"]' <<<"${got#* }" >/dev/null || fail "no error message for $bad"
done
assert_eq "$(body "$TADM" "/api/v1/relays?from=$D&to=2026-01-11&step=5m&step=1h" | jget 'd["error"]')" "parameter 'step' given twice" "duplicate parameter message"
assert_eq "$(status "$TADM" "/api/v1/realtime?window=0")" 400 "realtime window"
assert_eq "$(status "$TADM" "/api/v1/nothing")" 404 "unknown endpoint"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $TADM" "$BASE/api/v1/relays?$R")" 405 "POST"
assert_eq "$(psql_q "SELECT count(*) FROM relay_counts")" 9 "relay_counts intact after hostile input"

note "realtime: Redis merged with PostgreSQL"
NOW=$(date +%s); CUR=$((NOW / 300 * 300))
psql_q "SELECT seed('gw1','0021','aaa',to_timestamp($CUR),40)" >/dev/null
redis-cli -p "$REDIS_PORT" HSET "ccgw:relays:gw1:$CUR" "0021:aaa" 42 "0021:bbb" 8 >/dev/null
redis-cli -p "$REDIS_PORT" HSET "ccgw:relays:gw3:$CUR" "0001:aaa" 5 >/dev/null
redis-cli -p "$REDIS_PORT" HSET "ccgw:relays:gw1:$((CUR - 7200))" "0021:aaa" 999 >/dev/null
out=$(body "$TADM" "/api/v1/realtime")
assert_eq "$(jget '(d["redis"]["available"], d["total"])' <<<"$out")" "(True, 55)" "admin realtime: max(pg 40, redis 42) + 8 + 5"
assert_eq "$(jget 'sorted(d["gateways"])' <<<"$out")" "['gw1', 'gw3']" "realtime gateways include Redis-only ones"
assert_eq "$(body "$TA" "/api/v1/realtime" | jget 'd["total"]')" 47 "acme realtime"
assert_eq "$(body "$TB" "/api/v1/realtime" | jget 'd["chains"]')" "{'0021': {'current': 8, 'total': 8}}" "beta realtime" || true
assert_eq "$(body "$TADM" "/api/v1/realtime?gateway=gw1&chain=0021" | jget 'd["total"]')" 50 "realtime filters"
# Shut Redis down through its own protocol: a SIGTERM to the runuser
# wrapper that lib.sh starts it under is relayed to this script too.
redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
for _ in $(seq 50); do kill -0 "${IT_PIDS[redis]}" 2>/dev/null || break; sleep 0.1; done
out=$(body "$TADM" "/api/v1/realtime")
assert_eq "$(jget '(d["redis"]["available"], d["total"])' <<<"$out")" "(False, 40)" "Redis down: PostgreSQL only"
jget 'd["redis"]["error"]' <<<"$out" | grep -q redis || fail "Redis error is reported"

note "dashboard, metrics, health"
curl -fsS "$BASE/" | grep -q '<title>ccgw relaystats</title>' || fail "dashboard html"
curl -fsS "$BASE/app.js" | grep -q 'api("realtime"' || fail "dashboard js"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/health/ready")" 200 "ready"
curl -fsS "$BASE/metrics" >"$IT_DIR/metrics.txt"
grep -q 'relaystats_http_requests_total{endpoint="relays",code="4xx"}' "$IT_DIR/metrics.txt" || fail "metrics: 4xx relays"
grep -q 'relaystats_redis_errors_total 1' "$IT_DIR/metrics.txt" || fail "metrics: redis errors"
stop_bg api
grep -q 'listening' "$IT_DIR/api.log" || fail "structured start log"
echo "relaystats integration: all checks passed"
