#!/bin/bash
# lib/prom output passes Prometheus' own parser and linter (`promtool check
# metrics`): counters, gauges, NaN/+Inf/-Inf, histograms, label values with
# quotes, backslashes, newlines and non-ASCII. The same promtool must reject
# deliberately broken variants of the page, so the check can fail.
source "$(dirname "$0")/lib.sh"
it_setup

command -v promtool >/dev/null || fail "promtool not installed (Debian package prometheus)"
runner=${CCGW_UNIT:-$CCGW_BIN/../tests/unit-tests}
[ -x "$runner" ] || fail "unit test runner not found at $runner (set CCGW_UNIT)"

page=$IT_DIR/page.prom
CCGW_PROM_OUT=$page "$runner" prom >"$IT_DIR/unit.log" 2>&1 || { cat "$IT_DIR/unit.log"; fail "prom unit suite"; }
[ -s "$page" ] || fail "no page written to $page"

# The awkward values are on the page, escaped as the format wants.
grep -qF 'gateway="quote\"back\\slash\nnewline"' "$page" || fail "escaped label value missing"
grep -qF "chain=\"$(printf '\xe2\x9c\x93 \xc3\xa9\xf0\x9f\x9a\x80')\"" "$page" || fail "UTF-8 label value missing"
grep -qF '# HELP ccgw_relays_total Relays counted.\nSecond line with a back\\slash.' "$page" \
    || fail "escaped HELP missing"
grep -qx 'ccgw_specials{v="nan"} NaN' "$page" || fail "NaN sample missing"
grep -qx 'ccgw_request_seconds_bucket{route="/rpc",le="+Inf"} 1000' "$page" || fail "+Inf bucket missing"
assert_eq "$(grep -c '^# TYPE ' "$page")" 4 "families on the page"

check() { promtool check metrics <"$1" >"$IT_DIR/promtool.out" 2>&1; }

check "$page"; rc=$?
cat "$IT_DIR/promtool.out"
assert_eq "$rc" 0 "promtool exit status on the generated page"
assert_eq "$(wc -c <"$IT_DIR/promtool.out")" 0 "promtool complaints on the generated page"

# Broken variants must be rejected.
sed 's/\\"/"/g' "$page" >"$IT_DIR/unescaped.prom"
check "$IT_DIR/unescaped.prom" && fail "promtool accepted unescaped quotes in a label value"
grep -q 'unexpected end of label value' "$IT_DIR/promtool.out" || fail "unexpected promtool message: $(cat "$IT_DIR/promtool.out")"
echo "ok: unescaped quote rejected"

{ cat "$page"; grep -m1 -A1 '^# TYPE ccgw_relays_total' "$page"; } >"$IT_DIR/dup.prom"
check "$IT_DIR/dup.prom" && fail "promtool accepted a family written twice"
grep -q 'second TYPE line' "$IT_DIR/promtool.out" || fail "unexpected promtool message: $(cat "$IT_DIR/promtool.out")"
echo "ok: duplicate family rejected"

sed 's/^ccgw_queue_depth /ccgw-queue-depth /' "$page" >"$IT_DIR/badname.prom"
check "$IT_DIR/badname.prom" && fail "promtool accepted an invalid metric name"
echo "ok: invalid metric name rejected"
echo "promtool: generated page of $(wc -l <"$page") lines passes, 3 broken variants rejected"
