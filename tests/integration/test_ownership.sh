#!/bin/bash
# Account ownership history (account_owners, migration 5) against a real
# PostgreSQL:
#
# - migration 5 on a populated version-4 database: every accounts row
#   becomes an owner row from -infinity, relays unchanged, each provider's
#   bill the same as the old join with accounts, and a sync of the same
#   config then writes nothing;
# - a move at a controlled "now" (CCGW_TEST_NOW, read by sync only) takes
#   effect at the next five-minute boundary: the old provider keeps the
#   relays before it, the new one gets those after, in exports and provider
#   queries read from the 5-minute, hourly and daily views (the move cuts an
#   hour and a day in two), with pending deltas; the parts add up to the
#   total exactly, and unowned relays are the rest;
# - a move on an hour boundary, a move undone and a move replaced within
#   one bucket, an account removed from the config, two syncs at once, a
#   sync that changes nothing (no row touched), accounts always equal to the
#   open rows;
# - `export --all` (csv and json) lists the unowned relays with a warning,
#   `export --provider nosuch` exits 2;
# - `serve`: provider tokens see their past accounts' relays of their time
#   only, the ccgw_relaystats_unowned_relays gauge, the config synced at
#   start and when the file changes, a bad config logged and the ownership
#   kept.
source "$(dirname "$0")/lib.sh"
it_setup
export PGTZ=UTC
RS=$CCGW_BIN/relaystats
pg_start
API_PORT=$(free_port)
ADMIN_SECRET=ownership-admin-secret
ADMIN_SHA=$(printf %s "$ADMIN_SECRET" | sha256sum | cut -d' ' -f1)
CONF=$IT_DIR/ccgw.yaml

# write_conf FILE "PROVIDER=ACCOUNT:CHAIN,CHAIN ACCOUNT:CHAIN" ...: a config
# with chains 0021 and 0001 and these providers, written by rename.
write_conf() {
    local file=$1 spec acc
    shift
    {
        cat <<YAML
gateway:
  name: gw1
  routing_domain: chains.local.test
chains:
  - id: "0021"
    backends: [{name: b1, address: "127.0.0.1:18332"}]
  - id: "0001"
    backends: [{name: e1, address: "127.0.0.1:18333"}]
providers:
YAML
        for spec in "$@"; do
            echo "  - name: ${spec%%=*}"
            echo "    accounts:"
            for acc in ${spec#*=}; do
                echo "      - {id: ${acc%%:*}, chains: [$(sed 's/[^,]*/"&"/g' <<<"${acc#*:}")]}"
            done
        done
        cat <<YAML
postgres:
  url: $PG_URL
relaystats:
  listen: 127.0.0.1:$API_PORT
  admin_token_sha256: $ADMIN_SHA
YAML
    } >"$file.tmp" && mv "$file.tmp" "$file"
}

ep() { date -u -d "$1" +%s; }
D=2026-01-10
D1=2026-01-11

# accounts must equal the open rows of account_owners after every sync
check_accounts() {
    assert_eq "$(psql_q "SELECT count(*) FROM accounts a FULL JOIN
        (SELECT * FROM account_owners WHERE valid_to IS NULL) o USING (account, chain)
        WHERE a.provider IS DISTINCT FROM o.provider")" 0 "accounts equal the open rows ($1)"
}

# sync_at NAME EPOCH: sync $CONF at that "now", its log in $IT_DIR/NAME.log
sync_at() {
    CCGW_TEST_NOW=$2 "$RS" --config "$CONF" sync 2>"$IT_DIR/$1.log" \
        || { cat "$IT_DIR/$1.log"; fail "sync $1"; }
    check_accounts "$1"
}

# synced NAME: the counts of the "synced" line of a sync's log
synced() {
    grep ' synced ' "$IT_DIR/$1.log" | grep -oE '(providers_added|added|moved|unchanged|unconfigured|wrote)=[a-z0-9]+' \
        | tr '\n' ' ' | sed 's/ $//'
}

# owners ACCOUNT CHAIN: its rows, "provider from..to" in time order
owners() {
    psql_q "SELECT string_agg(provider || ' ' || CASE WHEN isfinite(valid_from)
            THEN to_char(valid_from, 'YYYY-MM-DD\"T\"HH24:MI') ELSE valid_from::text END || '..'
            || coalesce(to_char(valid_to, 'YYYY-MM-DD\"T\"HH24:MI'), ''), ', ' ORDER BY valid_from)
            FROM account_owners WHERE account = '$1' AND chain = '$2'"
}

# rows_state: every row of the three tables sync writes, with its version
# (xmin, xmax, ctid): a sync that changes nothing leaves it as it was
rows_state() {
    psql_q "SELECT md5(string_agg(x, ',' ORDER BY x)) FROM (
        SELECT 'o' || xmin || '/' || xmax || '/' || ctid::text AS x FROM account_owners
        UNION ALL SELECT 'a' || xmin || '/' || xmax || '/' || ctid::text FROM accounts
        UNION ALL SELECT 'p' || xmin || '/' || xmax || '/' || ctid::text FROM providers) s"
}

etotal() { "$RS" --db "$PG_URL" export --provider "$1" --from "$2" --to "$3" --format json 2>/dev/null | jq -er .total; }
qtotal() { "$RS" --db "$PG_URL" query --provider "$1" --from "$2" --to "$3" --step "$4" --format json | jq -er .total; }
erows() {
    "$RS" --db "$PG_URL" export --provider "$1" --from "$2" --to "$3" --format json 2>/dev/null \
        | jq -r '[.rows[] | "\(.account)/\(.chain)=\(.relays)"] | join(" ")'
}
# range_sum FROM TO: every relay of [FROM, TO), straight from the view
range_sum() { psql_q "SELECT coalesce(sum(relays), 0) FROM relay_totals WHERE bucket_start >= '$1' AND bucket_start < '$2'"; }

note "migration 5 on a populated version-4 database"
"$RS" --db "$PG_URL" migrate --to-version 4 >"$IT_DIR/migrate4.log" 2>&1 || { cat "$IT_DIR/migrate4.log"; fail "migrate --to-version 4"; }
pg_create_seed
# what the version-4 sync wrote for config A
psql_q "INSERT INTO providers (name) VALUES ('p1'), ('p2');
        INSERT INTO accounts (account, chain, provider) VALUES
            ('xxx', '0021', 'p1'), ('xxx', '0001', 'p1'), ('yyy', '0021', 'p2')"
# xxx (p1, both chains) and yyy (p2); www and zzz are in no config yet;
# two deltas not folded yet
psql_q "SELECT seed('gw1','0021','xxx','2026-01-09T23:55Z',1), seed('gw1','0021','xxx','${D}T00:00Z',2),
               seed('gw1','0021','xxx','${D}T00:05Z',4), seed('gw1','0021','xxx','${D}T00:10Z',8),
               seed('gw1','0021','xxx','${D}T00:15Z',16), seed('gw2','0021','xxx','${D}T01:00Z',32),
               seed('gw1','0001','xxx','${D}T00:05Z',256), seed('gw1','0021','yyy','${D}T00:05Z',512),
               seed('gw1','0021','zzz','${D}T00:10Z',1024), seed('gw2','0021','www','${D}T00:00Z',8192)" >/dev/null
psql_q "INSERT INTO relay_deltas VALUES ('gw1','0021','xxx',$(ep ${D}T00:05Z),64), ('gw2','0021','xxx',$(ep ${D}T00:10Z),128)"
assert_eq "$(range_sum $D $D1)" 10238 "relays of the day (seeded)"
old_bill() {
    psql_q "SELECT coalesce(sum(r.relays), 0) FROM relay_totals r JOIN accounts a USING (account, chain)
            WHERE a.provider = '$1' AND r.bucket_start >= '$D' AND r.bucket_start < '$D1'"
}
bill_p1=$(old_bill p1); bill_p2=$(old_bill p2)
assert_eq "$bill_p1/$bill_p2" "510/512" "version-4 bills (join with accounts)"
"$RS" --db "$PG_URL" migrate >"$IT_DIR/migrate5.log" 2>&1 || { cat "$IT_DIR/migrate5.log"; fail "migrate"; }
assert_eq "$(psql_q "SELECT max(version) FROM schema_migrations")" 5 "schema version after migrate"
assert_eq "$(psql_q "SELECT string_agg(account || '/' || chain || '=' || provider || ' ' || valid_from || '..' || coalesce(valid_to::text, ''), ', '
                     ORDER BY account, chain) FROM account_owners")" \
    "xxx/0001=p1 -infinity.., xxx/0021=p1 -infinity.., yyy/0021=p2 -infinity.." "owner rows backfilled from accounts"
check_accounts "after migration 5"
assert_eq "$(range_sum $D $D1)" 10238 "relays of the day after migration 5"
assert_eq "$(etotal p1 $D $D1)/$(etotal p2 $D $D1)" "$bill_p1/$bill_p2" "bills after migration 5 equal the version-4 join"
# the schema refuses overlapping and 'infinity' rows
psql_q "INSERT INTO account_owners VALUES ('yyy', '0021', 'p1', '2026-01-01', NULL)" 2>/dev/null \
    && fail "an overlapping owner row was accepted"
psql_q "INSERT INTO account_owners VALUES ('new', '0021', 'p1', '-infinity', 'infinity')" 2>/dev/null \
    && fail "an 'infinity' valid_to was accepted"

note "a sync of the config the database already holds writes nothing"
write_conf "$CONF" "p1=xxx:0021,0001" "p2=yyy:0021"
before=$(rows_state)
sync_at syncA "$(ep ${D}T00:02Z)"
assert_eq "$(synced syncA)" "providers_added=0 added=0 moved=0 unchanged=3 unconfigured=0 wrote=false" "sync A counts"
assert_eq "$(rows_state)" "$before" "no row written by a sync that changes nothing"

note "config B at 00:07: xxx moves to p2 (at 00:10), www (never seen) joins p1"
write_conf "$CONF" "p1=www:0021" "p2=yyy:0021 xxx:0021,0001"
sync_at syncB "$(ep ${D}T00:07Z)"
assert_eq "$(synced syncB)" "providers_added=0 added=1 moved=2 unchanged=1 unconfigured=0 wrote=true" "sync B counts"
assert_eq "$(owners xxx 0021)" "p1 -infinity..2026-01-10T00:10, p2 2026-01-10T00:10.." "xxx/0021 history"
assert_eq "$(owners xxx 0001)" "p1 -infinity..2026-01-10T00:10, p2 2026-01-10T00:10.." "xxx/0001 history"
assert_eq "$(owners www 0021)" "p1 -infinity.." "www owned from -infinity"
assert_eq "$(psql_q "SELECT provider FROM accounts WHERE account = 'xxx' AND chain = '0021'")" p2 "accounts: xxx's latest owner"
grep -q 'account_moved account=xxx chain=0021 from_provider=p1 to_provider=p2 at=2026-01-10T00:10:00Z op=move' "$IT_DIR/syncB.log" \
    || fail "the move is logged: $(cat "$IT_DIR/syncB.log")"

note "p1 keeps xxx's relays before 00:10, p2 gets those after"
assert_eq "$(erows p1 ${D}T00:05:00Z ${D}T00:15:00Z)" "www/0021=0 xxx/0001=256 xxx/0021=68" "p1 over 00:05-00:15 (5m rows)"
assert_eq "$(erows p2 ${D}T00:05:00Z ${D}T00:15:00Z)" "xxx/0001=0 xxx/0021=136 yyy/0021=512" "p2 over 00:05-00:15 (5m rows)"
assert_eq "$(erows p1 $D $D1)" "www/0021=8192 xxx/0001=256 xxx/0021=70" "p1 over the day (daily view, cut at 00:10)"
assert_eq "$(erows p2 $D $D1)" "xxx/0001=0 xxx/0021=184 yyy/0021=512" "p2 over the day (daily view, cut at 00:10)"
assert_eq "$("$RS" --db "$PG_URL" export --provider p1 --from $D --to $D1 --format json 2>/dev/null | jq -r .table)" \
    relay_totals_daily "a day-aligned export reads the daily view"
# expected totals per range and step: p1, p2, the unowned rest, all relays
for range in "$D $D1 1d 8518 696 1024 10238" "2026-01-09 2026-01-12 1d 8519 696 1024 10239" \
             "${D}T00:00:00Z ${D}T02:00:00Z 1h 8518 696 1024 10238" \
             "${D}T00:00:00Z ${D}T00:20:00Z 5m 8518 664 1024 10206"; do
    set -- $range
    e1=$(etotal p1 $1 $2); e2=$(etotal p2 $1 $2)
    eu=$("$RS" --db "$PG_URL" export --all --from $1 --to $2 --format json 2>/dev/null | jq -r '.unowned.total')
    assert_eq "$e1" "$4" "p1 export total [$1, $2)"
    assert_eq "$e2" "$5" "p2 export total [$1, $2)"
    assert_eq "$eu" "$6" "unowned relays of [$1, $2)"
    assert_eq "$(qtotal p1 $1 $2 $3)" "$4" "p1 query total, step $3"
    assert_eq "$(qtotal p2 $1 $2 $3)" "$5" "p2 query total, step $3"
    assert_eq "$(range_sum $1 $2)" "$7" "all relays of [$1, $2)"
    assert_eq "$((e1 + e2 + eu))" "$(range_sum $1 $2)" "p1 + p2 + unowned exports = the view's relays of [$1, $2)"
done
# the hourly series of p1's query: the cut hour holds p1's part only
assert_eq "$("$RS" --db "$PG_URL" query --provider p1 --account xxx --from ${D}T00:00:00Z --to ${D}T02:00:00Z --step 1h --format json | jq -c '[.series[][1]]')" \
    "[326,0]" "p1's hourly series of xxx"
assert_eq "$("$RS" --db "$PG_URL" query --provider p2 --account xxx --from ${D}T00:00:00Z --to ${D}T02:00:00Z --step 1h --format json | jq -c '[.series[][1]]')" \
    "[152,32]" "p2's hourly series of xxx"
"$RS" --db "$PG_URL" fold >/dev/null 2>&1 || fail "fold"
assert_eq "$(psql_q "SELECT count(*) FROM relay_deltas")" 0 "deltas folded"
assert_eq "$(etotal p1 $D $D1)/$(etotal p2 $D $D1)/$(qtotal p2 ${D}T00:00:00Z ${D}T01:00:00Z 1h)" "8518/696/664" "the same after the fold"

note "a move on an hour boundary (config C at 01:57:30: xxx back to p1 at 02:00), vvv joins p1"
psql_q "SELECT seed('gw1','0021','xxx','${D}T01:55Z',10000), seed('gw1','0021','xxx','${D}T02:00Z',20000),
               seed('gw1','0021','vvv','${D}T03:00Z',5), seed('gw1','0021','vvv','${D}T03:05Z',7)" >/dev/null
write_conf "$CONF" "p1=www:0021 xxx:0021,0001 vvv:0021" "p2=yyy:0021"
sync_at syncC "$(ep ${D}T01:57:30Z)"
assert_eq "$(synced syncC)" "providers_added=0 added=1 moved=2 unchanged=2 unconfigured=0 wrote=true" "sync C counts"
assert_eq "$(owners xxx 0021)" "p1 -infinity..2026-01-10T00:10, p2 2026-01-10T00:10..2026-01-10T02:00, p1 2026-01-10T02:00.." "xxx/0021 history after C"
assert_eq "$(erows p2 ${D}T01:00:00Z ${D}T03:00:00Z)" "xxx/0001=0 xxx/0021=10032 yyy/0021=0" "p2 over 01:00-03:00 (hourly view)"
assert_eq "$(erows p1 ${D}T01:00:00Z ${D}T03:00:00Z)" "vvv/0021=0 www/0021=0 xxx/0001=0 xxx/0021=20000" "p1 over 01:00-03:00 (hourly view)"
assert_eq "$(qtotal p1 ${D}T01:00:00Z ${D}T03:00:00Z 1h)/$(qtotal p2 ${D}T01:00:00Z ${D}T03:00:00Z 1h)" "20000/10032" "hourly queries"

note "a move undone within its bucket (vvv to p2 at 03:01, back at 03:03), then replaced (p2, then p3)"
write_conf "$CONF" "p1=www:0021 xxx:0021,0001" "p2=yyy:0021 vvv:0021"
sync_at syncD1 "$(ep ${D}T03:01Z)"
assert_eq "$(owners vvv 0021)" "p1 -infinity..2026-01-10T03:05, p2 2026-01-10T03:05.." "vvv to move at 03:05"
write_conf "$CONF" "p1=www:0021 xxx:0021,0001 vvv:0021" "p2=yyy:0021"
sync_at syncC2 "$(ep ${D}T03:03Z)"
assert_eq "$(synced syncC2)" "providers_added=0 added=0 moved=1 unchanged=4 unconfigured=0 wrote=true" "revert counts"
grep -q 'account_moved account=vvv .* op=revert' "$IT_DIR/syncC2.log" || fail "revert logged: $(cat "$IT_DIR/syncC2.log")"
assert_eq "$(owners vvv 0021)" "p1 -infinity.." "vvv back with p1 as if it never moved"
write_conf "$CONF" "p1=www:0021 xxx:0021,0001" "p2=yyy:0021 vvv:0021"
sync_at syncD2 "$(ep ${D}T03:03Z)"
write_conf "$CONF" "p1=www:0021 xxx:0021,0001" "p2=yyy:0021" "p3=vvv:0021"
sync_at syncE "$(ep ${D}T03:04Z)"
assert_eq "$(synced syncE)" "providers_added=1 added=0 moved=1 unchanged=4 unconfigured=0 wrote=true" "replace counts"
assert_eq "$(owners vvv 0021)" "p1 -infinity..2026-01-10T03:05, p3 2026-01-10T03:05.." "vvv goes to p3 at 03:05, p2 never owned it"
assert_eq "$(erows p1 ${D}T03:00:00Z ${D}T04:00:00Z | grep -o 'vvv/0021=[0-9]*')/$(erows p3 ${D}T03:00:00Z ${D}T04:00:00Z)" \
    "vvv/0021=5/vvv/0021=7" "vvv's 03:00 bucket to p1, 03:05 to p3"

note "two syncs at once (yyy to p1 at 04:05; p2 leaves the config)"
write_conf "$CONF" "p1=www:0021 xxx:0021,0001 yyy:0021" "p3=vvv:0021"
CCGW_TEST_NOW=$(ep ${D}T04:00Z) "$RS" --config "$CONF" sync 2>"$IT_DIR/syncF1.log" & f1=$!
CCGW_TEST_NOW=$(ep ${D}T04:00Z) "$RS" --config "$CONF" sync 2>"$IT_DIR/syncF2.log" & f2=$!
wait $f1 || { cat "$IT_DIR/syncF1.log"; fail "concurrent sync 1"; }
wait $f2 || { cat "$IT_DIR/syncF2.log"; fail "concurrent sync 2"; }
check_accounts "concurrent syncs"
m1=$(synced syncF1 | grep -o 'moved=[0-9]*'); m2=$(synced syncF2 | grep -o 'moved=[0-9]*')
assert_eq "$(( ${m1#moved=} + ${m2#moved=} ))" 1 "one concurrent sync moved yyy, the other found it moved ($m1, $m2)"
assert_eq "$(owners yyy 0021)" "p2 -infinity..2026-01-10T04:05, p1 2026-01-10T04:05.." "yyy history"

note "www leaves the config: its row stays open, its relays stay billable"
write_conf "$CONF" "p1=xxx:0021,0001 yyy:0021" "p3=vvv:0021"
sync_at syncG "$(ep ${D}T05:00Z)"
assert_eq "$(synced syncG)" "providers_added=0 added=0 moved=0 unchanged=4 unconfigured=1 wrote=false" "sync G counts"
assert_eq "$(owners www 0021)" "p1 -infinity.." "www keeps its open row"
before=$(rows_state)
sync_at syncG2 "$(ep ${D}T05:30Z)"
assert_eq "$(rows_state)" "$before" "no row written by a second sync of G"

note "the whole day: every provider plus the unowned equals every relay"
assert_eq "$(range_sum $D $D1)" 40250 "relays of the day"
"$RS" --db "$PG_URL" export --all --from $D --to $D1 >"$IT_DIR/all.csv" 2>"$IT_DIR/all.err"; rc=$?
assert_eq "$rc" 0 "export --all exits 0 with unowned relays"
cat "$IT_DIR/all.csv"
assert_eq "$(cat "$IT_DIR/all.csv")" "provider,account,chain,from,to,relays
p1,vvv,0021,2026-01-10T00:00:00Z,2026-01-11T00:00:00Z,5
p1,www,0021,2026-01-10T00:00:00Z,2026-01-11T00:00:00Z,8192
p1,xxx,0001,2026-01-10T00:00:00Z,2026-01-11T00:00:00Z,256
p1,xxx,0021,2026-01-10T00:00:00Z,2026-01-11T00:00:00Z,20070
p1,yyy,0021,2026-01-10T00:00:00Z,2026-01-11T00:00:00Z,0
p1,TOTAL,,2026-01-10T00:00:00Z,2026-01-11T00:00:00Z,28523
p2,xxx,0001,2026-01-10T00:00:00Z,2026-01-11T00:00:00Z,0
p2,xxx,0021,2026-01-10T00:00:00Z,2026-01-11T00:00:00Z,10184
p2,yyy,0021,2026-01-10T00:00:00Z,2026-01-11T00:00:00Z,512
p2,TOTAL,,2026-01-10T00:00:00Z,2026-01-11T00:00:00Z,10696
p3,vvv,0021,2026-01-10T00:00:00Z,2026-01-11T00:00:00Z,7
p3,TOTAL,,2026-01-10T00:00:00Z,2026-01-11T00:00:00Z,7
(unowned),zzz,0021,2026-01-10T00:00:00Z,2026-01-11T00:00:00Z,1024
(unowned),TOTAL,,2026-01-10T00:00:00Z,2026-01-11T00:00:00Z,1024
,TOTAL,,2026-01-10T00:00:00Z,2026-01-11T00:00:00Z,40250" "export --all csv"
grep -q '^relaystats: warning: 1024 relays of 1 account/chain pairs in this range had no owner at their bucket time; listed as (unowned)$' "$IT_DIR/all.err" \
    || fail "export --all warning: $(cat "$IT_DIR/all.err")"
"$RS" --db "$PG_URL" export --all --from $D --to $D1 --format json >"$IT_DIR/all.json" 2>/dev/null || fail "export --all json"
assert_eq "$(jq -c '[.total, [.providers[] | [.provider, .total]], .unowned.total, [.unowned.rows[] | .account]]' "$IT_DIR/all.json")" \
    '[40250,[["p1",28523],["p2",10696],["p3",7]],1024,["zzz"]]' "export --all json"
"$RS" --db "$PG_URL" export --provider p2 --from $D --to $D1 >/dev/null 2>"$IT_DIR/p2.err" || fail "export p2"
grep -q "^relaystats: warning: 1024 relays .* they are in no provider's export (see export --all)$" "$IT_DIR/p2.err" \
    || fail "a provider's export warns of unowned relays: $(cat "$IT_DIR/p2.err")"
"$RS" --db "$PG_URL" export --provider p3 --from ${D}T03:00:00Z --to ${D}T04:00:00Z >/dev/null 2>"$IT_DIR/p3.err" || fail "export p3"
assert_eq "$(cat "$IT_DIR/p3.err")" "" "no warning without unowned relays in the range"
msg=$("$RS" --db "$PG_URL" export --provider nosuch --from $D --to $D1 2>&1); rc=$?
assert_eq "$rc" 2 "export --provider nosuch exits 2"
assert_eq "$msg" "relaystats: no provider 'nosuch' (providers come from the config: relaystats sync)" "unknown provider message"
"$RS" --db "$PG_URL" export --provider p1 --all --from $D --to $D1 >/dev/null 2>&1; assert_eq $? 2 "--provider with --all exits 2"

note "serve: provider tokens, the unowned gauge, the config watch"
TP1=$("$RS" --db "$PG_URL" token create --provider p1) || fail "token p1"
TP2=$("$RS" --db "$PG_URL" token create --provider p2) || fail "token p2"
TP3=$("$RS" --db "$PG_URL" token create --provider p3) || fail "token p3"
NOW=$(date +%s); CUR=$((NOW / 300 * 300))
# unowned now: zzz in the current bucket (folded 2048, pending 4096); not
# counted: zzz 25 hours ago, xxx (owned) now
psql_q "SELECT seed('gw1','0021','zzz',to_timestamp($CUR),2048), seed('gw1','0021','zzz',to_timestamp($((CUR - 90000))),77),
               seed('gw1','0021','xxx',to_timestamp($CUR),99)" >/dev/null
psql_q "INSERT INTO relay_deltas VALUES ('gw2','0021','zzz',$CUR,4096)"
bg api "$RS" --config "$CONF" serve --threads 2 --config-poll 1 --unowned-every 1
wait_http "http://127.0.0.1:$API_PORT/health"
BASE=http://127.0.0.1:$API_PORT
wait_log api 'config_synced .*reason=start' 15 || fail "sync at start: $(cat "$IT_DIR/api.log")"
grep 'config_synced' "$IT_DIR/api.log"
grep -q 'config_synced .*reason=start.*unchanged=4 unconfigured=1 .*wrote=false' "$IT_DIR/api.log" || fail "start sync counts"
# metric NAME: its value on /metrics (empty when absent)
metric() { curl -fsS "$BASE/metrics" | awk -v n="$1" '$1 == n { print $2 }'; }
for _ in $(seq 50); do [ -n "$(metric ccgw_relaystats_unowned_relays)" ] && break; sleep 0.1; done
assert_eq "$(metric ccgw_relaystats_unowned_relays)" 6144 "unowned relays of the last 24 hours"
assert_eq "$(metric ccgw_relaystats_unowned_pairs)" 1 "unowned pairs of the last 24 hours"
assert_eq "$(metric ccgw_relaystats_config_in_sync)" 1 "config in sync"
assert_eq "$(metric 'ccgw_relaystats_config_syncs_total{result="ok"}')" 1 "syncs ok"
age=$(( $(date +%s) - $(metric ccgw_relaystats_unowned_refresh_timestamp_seconds) ))
[ "$age" -ge 0 ] && [ "$age" -le 5 ] || fail "unowned gauge refreshed $age s ago"
curl -fsS "$BASE/metrics" >"$IT_DIR/metrics.txt"
promtool check metrics <"$IT_DIR/metrics.txt" || fail "promtool check metrics"
# refreshed every second, logged once: a line per change, not per refresh
ts1=$(metric ccgw_relaystats_unowned_refresh_timestamp_seconds)
for _ in $(seq 50); do [ "$(metric ccgw_relaystats_unowned_refresh_timestamp_seconds)" -ge $((ts1 + 2)) ] && break; sleep 0.1; done
[ "$(metric ccgw_relaystats_unowned_refresh_timestamp_seconds)" -ge $((ts1 + 2)) ] || fail "the unowned gauge is not refreshed every second"
assert_eq "$(grep -c 'WARN relaystats unowned_relays relays=6144 pairs=1 ' "$IT_DIR/api.log")" 1 "unowned relays logged once"

get() { curl -s -H "Authorization: Bearer $1" "$BASE$2"; }
status() { curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" "$BASE$2"; }
R="from=$D&to=$D1&step=1d"
assert_eq "$(get "$TP1" "/api/v1/relays?$R" | jq -r .total)" 28523 "p1's day over the API"
assert_eq "$(get "$TP2" "/api/v1/export?from=$D&to=$D1" | jq -r .total)" 10696 "p2's export over the API"
assert_eq "$(get "$TP2" "/api/v1/relays?$R&account=xxx" | jq -r .total)" 10184 "p2 may ask about xxx, for its time only"
assert_eq "$(get "$TP1" "/api/v1/relays?$R&account=xxx&by=chain" | jq -c '[.groups[] | [.chain, .total]]')" \
    '[["0001",256],["0021",20070]]' "p1's part of xxx by chain"
assert_eq "$(status "$TP3" "/api/v1/relays?$R&account=xxx")" 403 "p3 never owned xxx"
assert_eq "$(get "$TP2" "/api/v1/chains" | jq -c '[.chains[].chain]')" '["0001","0021"]' "p2's chains, past accounts included"
assert_eq "$(get "$TP3" "/api/v1/gateways" | jq -c .gateways)" '["gw1"]' "p3's gateways"
assert_eq "$(status "$ADMIN_SECRET" "/api/v1/export?from=$D&to=$D1&provider=nosuch")" 404 "admin export of an unknown provider"

note "the config file changes: zzz joins p3, owned from -infinity, nothing unowned any more"
write_conf "$CONF" "p1=xxx:0021,0001 yyy:0021" "p3=vvv:0021 zzz:0021"
wait_log api 'config_synced .*reason=changed' 15 || fail "no sync after the change: $(tail -n 5 "$IT_DIR/api.log")"
grep -q 'config_synced .*reason=changed.*added=1 moved=0 unchanged=4 unconfigured=1 .*wrote=true' "$IT_DIR/api.log" \
    || fail "changed sync counts: $(grep config_synced "$IT_DIR/api.log")"
assert_eq "$(owners zzz 0021)" "p3 -infinity.." "zzz owned by p3 from -infinity"
check_accounts "serve's sync"
for _ in $(seq 50); do [ "$(metric ccgw_relaystats_unowned_relays)" = 0 ] && break; sleep 0.1; done
assert_eq "$(metric ccgw_relaystats_unowned_relays)" 0 "no unowned relays left"
wait_log api 'INFO relaystats unowned_relays relays=0 pairs=0 ' 5 || fail "the end of the unowned relays is not logged"
assert_eq "$(etotal p3 $D $D1)" 1031 "p3 now bills zzz's past relays too"

note "a bad config: logged, ownership kept, serve still up"
before=$(rows_state)
printf 'providers: [\n' >"$CONF.tmp" && mv "$CONF.tmp" "$CONF"
wait_log api 'ERROR relaystats config_invalid' 15 || fail "bad config not logged: $(tail -n 5 "$IT_DIR/api.log")"
grep 'config_invalid' "$IT_DIR/api.log"
grep -q "config_invalid path=$CONF reason=changed action=\"account ownership left as it was; fix the file\"" "$IT_DIR/api.log" \
    || fail "config_invalid fields: $(grep config_invalid "$IT_DIR/api.log")"
assert_eq "$(metric 'ccgw_relaystats_config_syncs_total{result="invalid"}')" 1 "invalid config counted"
assert_eq "$(metric ccgw_relaystats_config_in_sync)" 0 "config not in sync"
assert_eq "$(rows_state)" "$before" "nothing written after the bad config"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/health/ready")" 200 "serve still ready"
write_conf "$CONF" "p1=xxx:0021,0001 yyy:0021" "p3=vvv:0021 zzz:0021 uuu:0001"
wait_log api 'config_synced .*reason=changed.*added=1 moved=0 unchanged=5' 15 || fail "no sync after the fix: $(tail -n 5 "$IT_DIR/api.log")"
assert_eq "$(metric ccgw_relaystats_config_in_sync)" 1 "config in sync after the fix"
assert_eq "$(metric 'ccgw_relaystats_config_syncs_total{result="ok"}')" 3 "syncs ok after the fix"
stop_bg api
echo "ownership integration: all checks passed"
