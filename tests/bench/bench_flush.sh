#!/bin/bash
# PostgreSQL flush benchmark: 100,000 dirty rows (10 gateways x 50 chains x
# 200 accounts, one five-minute bucket) go through gateway/flush.c's
# flush_pg_apply exactly as cc-gateway sends them: one transaction per
# gateway with its ledger row, COPY into a temp table, an additive upsert
# into relay_counts and additive MERGEs into the hourly and daily rollups.
# Round "first" is the first flush of a day (new rows everywhere); round
# "steady" is the next flush, five minutes later: new relay_counts rows,
# updates of the hourly and daily rows, as every flush after it.
# Target: each round < 2 s. Prints rows/s.
source "$(dirname "$0")/../integration/lib.sh"
it_setup

ROOT=$CCGW_ROOT
OBJ=$(cd "$CCGW_BIN/.." && pwd)
[ -f "$OBJ/obj/libgateway.a" ] && [ -f "$OBJ/libcc.a" ] || fail "build first: $OBJ/obj/libgateway.a"

cat >"$IT_DIR/bench_flush.c" <<'C'
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "counter.h"
#include "flush.h"

enum { GATEWAYS = 10, CHAINS = 50, ACCOUNTS = 200 };

static flush_pg_t *pg[GATEWAYS];
static struct counter_deltas d[GATEWAYS];
static int workers, seq, failed;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *worker(void *arg)
{
    char err[512];
    for (int g = (int)(intptr_t)arg; g < GATEWAYS; g += workers) {
        int already = 0;
        if (flush_pg_apply(pg[g], "benchinstance", seq, &d[g], &already, err, sizeof(err)) != 0 ||
            already) {
            fprintf(stderr, "flush: %s\n", already ? "already applied" : err);
            failed = 1;
        }
    }
    return NULL;
}

/* One round: every gateway flushes its 10,000 rows as flush `seq`, in the
 * five-minute bucket after the previous round's. */
static double round_secs(int nworkers)
{
    pthread_t t[GATEWAYS];
    for (int g = 0; g < GATEWAYS && seq > 0; g++)
        for (size_t i = 0; i < d[g].nrows; i++)
            d[g].rows[i].bucket += 300;
    workers = nworkers;
    seq++;
    double t0 = now();
    for (int w = 0; w < workers; w++)
        pthread_create(&t[w], NULL, worker, (void *)(intptr_t)w);
    for (int w = 0; w < workers; w++)
        pthread_join(t[w], NULL);
    return now() - t0;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    char err[512], name[32], chain[16], acct[32];
    for (int g = 0; g < GATEWAYS; g++) {
        snprintf(name, sizeof(name), "gw%02d", g);
        pg[g] = flush_pg_new(argv[1], name, "http0");
        if (!pg[g] || flush_pg_connect(pg[g], err, sizeof(err)) != 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        counter_deltas_init(&d[g]);
        for (int c = 0; c < CHAINS; c++)
            for (int a = 0; a < ACCOUNTS; a++) {
                snprintf(chain, sizeof(chain), "%04d", c);
                snprintf(acct, sizeof(acct), "acct%06d", a);
                if (counter_deltas_push(&d[g], chain, acct, -1, 1795256400, 1 + (a + c) % 7) < 0)
                    return 1;
            }
    }
    int n = atoi(argv[2]);
    /* the first flush of a day, then steady flushes: sequential, concurrent */
    double first = round_secs(n);
    double steady_seq = round_secs(1);
    double steady = round_secs(n);
    printf("first %d %d %.3f\nsteady %d %d %.3f\nsteady-sequential %d 1 %.3f\n",
           GATEWAYS * CHAINS * ACCOUNTS, n, first, GATEWAYS * CHAINS * ACCOUNTS, n, steady,
           GATEWAYS * CHAINS * ACCOUNTS, steady_seq);
    for (int g = 0; g < GATEWAYS; g++) {
        counter_deltas_free(&d[g]);
        flush_pg_free(pg[g]);
    }
    return failed;
}
C
PKGS="libpcre2-8 hiredis libpq jansson yaml-0.1 libmicrohttpd libcrypto"
cc -O2 -std=c11 -D_GNU_SOURCE -I"$ROOT/lib" -I"$ROOT/gateway" $(pkg-config --cflags $PKGS) \
    -o "$IT_DIR/bench_flush" "$IT_DIR/bench_flush.c" "$OBJ/obj/libgateway.a" "$OBJ/libcc.a" \
    $(pkg-config --libs $PKGS) -lm -lpthread || fail "compile"

pg_start
"$CCGW_BIN/relaystats" --db "$PG_URL" migrate >/dev/null || fail "migrate"
[ -n "${BENCH_LOG_SQL:-}" ] && psql_q "ALTER SYSTEM SET log_min_duration_statement = 0" && psql_q "SELECT pg_reload_conf()" >/dev/null
WORKERS=${WORKERS:-$(nproc)}
"$IT_DIR/bench_flush" "$PG_URL" "$WORKERS" >"$IT_DIR/out" || fail "bench_flush"
EXPECT=$(psql_q "SELECT 3 * sum(1 + (a + c) % 7) * 10 FROM generate_series(0, 49) c, generate_series(0, 199) a")
assert_eq "$(psql_q 'SELECT sum(relays) FROM relay_counts')" "$EXPECT" "relay_counts total"
assert_eq "$(psql_q 'SELECT count(*) FROM relay_counts')" "300000" "relay_counts rows (3 buckets)"
assert_eq "$(psql_q 'SELECT count(*) FROM relay_counts_hourly')" "100000" "hourly rows"
assert_eq "$(psql_q 'SELECT sum(relays) FROM relay_counts_daily')" "$EXPECT" "daily rollup total"
slow=""
while read -r kind rows nw secs; do
    rps=$(python3 -c "print(round($rows / $secs))")
    note "$kind: $rows rows on $nw connection(s) in $secs s = $rps rows/s"
    [ "$kind" = steady-sequential ] && continue
    python3 -c "import json; print(json.dumps({'bench': 'flush_100k_rows_$kind', 'metric': 's',
        'value': $secs, 'peer': None, 'peer_value': None, 'ratio': None, 'rows_per_s': $rps,
        'connections': $nw, 'target': '< 2 s', 'met': $secs < 2.0,
        'command': 'tests/bench/bench_flush.sh'}))"
    python3 -c "import sys; sys.exit(0 if $secs < 2.0 else 1)" || slow="$slow $kind took $secs s (>= 2 s);"
done <"$IT_DIR/out"
[ -z "$slow" ] || fail "$slow"
