#!/bin/bash
# Static checks of the deployment files (docker-compose.yml, deploy/): YAML
# parses, compose ports are DESIGN.md's, every referenced path exists, health
# checks hit paths the daemons serve, the shipped configs pass the daemons'
# own loaders and cc-routes/haproxy -c, promtool accepts the scrape config and
# the alert rules (and their unit tests), the Grafana panels are complete and
# valid PromQL over metrics the daemons export, systemd units verify, and the
# Dockerfile passes a small lint. Then breaks copies of the files one way at a
# time and asserts that the checker catches each break.
source "$(dirname "$0")/lib.sh"
it_setup

check=$CCGW_ROOT/tests/tools/deploy_check.py
objs=$(cd "$CCGW_BIN/.." && pwd)

note "build the config checker against the daemons' loaders"
confcheck=$IT_DIR/deploy_confcheck
# shellcheck disable=SC2046
cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes -Werror \
    -I"$CCGW_ROOT/lib" -I"$CCGW_ROOT" $(pkg-config --cflags yaml-0.1 jansson) \
    -o "$confcheck" "$CCGW_ROOT/tests/tools/deploy_confcheck.c" \
    "$objs/obj/libhaproxy.a" "$objs/obj/libnode.a" "$objs/libcc.a" \
    $(pkg-config --libs libpcre2-8 hiredis libpq jansson yaml-0.1 libmicrohttpd libcrypto) \
    -lm -lpthread ${SANITIZER:+-fsanitize=$SANITIZER} \
    || fail "cannot build tests/tools/deploy_confcheck.c"

note "the repository's deployment files"
python3 "$check" --root "$CCGW_ROOT" --confcheck "$confcheck" --bin "$CCGW_BIN" \
    >"$IT_DIR/check.log" 2>&1
rc=$?
cat "$IT_DIR/check.log"
assert_eq "$rc" 0 "deploy_check on the repository"
assert_eq "$(grep -c '^FAIL' "$IT_DIR/check.log")" 0 "failed checks"
grep -q 'SKIPPED' "$IT_DIR/check.log" && note "(a check was skipped, see above)"
for must in "compose edge: host ports" "as in the node seed" "promtool test rules" \
            "valid PromQL" "systemd-analyze verify" "accepted by the node config loader" \
            "apt lists cleaned"; do
    grep -q "^ok: .*$must" "$IT_DIR/check.log" || fail "no passing check for '$must'"
done

# mutate NAME FILE PYTHON-EXPR EXPECTED: copy the checked tree, rewrite FILE
# with the Python expression over `s`, and expect a FAIL line matching EXPECTED
# from the group of checks that covers FILE (the whole run is done above).
mutate() {
    local name=$1 file=$2 expr=$3 want=$4 tree=$IT_DIR/mut-$1 out group
    case $file in
        docker-compose.yml) group=compose ;;
        deploy/k8s/*) group=k8s ;;
        deploy/compose/*) group=configs ;;
        deploy/Dockerfile*) group=dockerfiles ;;
        deploy/prometheus/*) group=prometheus ;;
        deploy/grafana/*) group=grafana ;;
        deploy/systemd/*) group=systemd ;;
        *) fail "mutation $name: no check group for $file" ;;
    esac
    mkdir -p "$tree/tests"
    cp -r "$CCGW_ROOT"/{docker-compose.yml,deploy,Makefile,lib,gateway,node,relaystats,haproxy,scripts} "$tree/"
    cp -r "$CCGW_ROOT/tests/unit" "$tree/tests/"
    python3 - "$tree/$file" "$expr" <<'PY' || fail "mutation $name: $file unchanged"
import sys
p, expr = sys.argv[1], sys.argv[2]
s = open(p).read()
t = eval(expr, {"s": s})
if t == s:
    sys.exit(1)
open(p, "w").write(t)
PY
    out=$(python3 "$check" --root "$tree" --confcheck "$confcheck" --bin "$CCGW_BIN" --only "$group" 2>&1)
    if [ $? -eq 0 ]; then
        fail "mutation $name was not caught"
    fi
    # A crash of the checker is not a catch.
    echo "$out" | tail -n 1 | grep -Eq '^deploy-check: [1-9][0-9]* failed$' \
        || { echo "$out" | tail -n 5; fail "mutation $name: the checker did not finish"; }
    echo "$out" | grep -E "^FAIL: .*$want" >/dev/null \
        || { echo "$out" | grep '^FAIL'; fail "mutation $name: no FAIL matching '$want'"; }
    echo "ok: mutation $name caught: $(echo "$out" | grep -E "^FAIL: .*$want" | head -n 1)"
    rm -rf "$tree"
}

note "broken copies must fail"
mutate port docker-compose.yml 's.replace("\"8080:8080\"", "\"8088:8080\"")' "compose edge: host ports"
mutate volume docker-compose.yml 's.replace("./deploy/compose/node-evm-a.yaml", "./deploy/compose/node-evm-x.yaml", 1)' \
    "volume source ./deploy/compose/node-evm-x.yaml does not exist"
mutate health docker-compose.yml 's.replace("18334/health/ready", "18334/health/readyz")' "does not serve /health/readyz"
mutate probe deploy/k8s/nodes.yaml 's.replace("initialDelaySeconds: 10\n            periodSeconds: 5", "initialDelaySeconds: 10\n            periodSeconds: 7", 1)' \
    "readinessProbe .* differs from the node seed"
mutate yaml deploy/k8s/redis.yaml 's.replace("  replicas: 1", "  replicas: [1")' "deploy/k8s/redis.yaml"
mutate loader deploy/compose/node-btc-b.yaml 's.replace("block_interval_secs", "block_intervall_secs")' \
    "refused by the node loader"
mutate routes deploy/compose/ccgw.yaml 's.replace("address: node-evm-b:18335", "address: node-evm-b:0")' \
    "refused by the ccgw loader"
mutate copy deploy/Dockerfile 's.replace("COPY node/ node/", "COPY nodes/ nodes/")' "COPY source nodes/ does not exist"
mutate latest deploy/Dockerfile 's.replace("FROM debian:12-slim AS runtime", "FROM debian:latest AS runtime")' "latest tag"
mutate lists deploy/Dockerfile 's.replace("    && rm -rf /var/lib/apt/lists/* \\\n    && groupadd", "    && groupadd")' \
    "apt lists not cleaned"
mutate headers deploy/Dockerfile 's.replace(" libxxhash-dev", "")' "build stage lacks libxxhash-dev"
mutate runtime deploy/Dockerfile 's.replace("libjansson4 ", "")' "runtime stage lacks libjansson4|no built binaries"
mutate rule deploy/prometheus/alerts.yml 's.replace("ccgw_gateway_source_up == 0", "ccgw_gateway_source_up == = 0")' \
    "promtool check rules"
mutate metric deploy/prometheus/alerts.yml 's.replace("ccnode_ready == 0", "ccnode_is_ready == 0")' \
    "ccnode_is_ready is not exported"
mutate alerttest deploy/prometheus/alerts.yml 's.replace("for: 2m\n        labels:\n          severity: warning", "for: 9m\n        labels:\n          severity: warning")' \
    "promtool test rules"
mutate scrape deploy/prometheus/prometheus.yml 's.replace("127.0.0.1:9102", "127.0.0.1:9103")' "prometheus.yml scrapes"
mutate panel deploy/grafana/ccgw-dashboard.json 's.replace("\"datasource\": {", "\"datasourc\": {", 1)' "has no datasource"
mutate promql deploy/grafana/ccgw-dashboard.json 's.replace("rate(ccnode_rpc_requests_total[1m])", "rate(ccnode_rpc_requests_total[1m]")' \
    "not valid PromQL"
mutate unit deploy/systemd/relaystats.service 's.replace("ProtectClock=yes", "ProtectClok=yes")' "systemd-analyze verify"
mutate hardening deploy/systemd/cc-node@.service 's.replace("NoNewPrivileges=yes\n", "")' "NoNewPrivileges=yes missing"
mutate stop deploy/systemd/cc-gateway@.service 's.replace("TimeoutStopSec=150", "TimeoutStopSec=30")' "leaves no time for the final flush"
mutate certkey deploy/compose/ccgw.yaml 's.replace("key: /etc/ccgw/tls/0001.key", "key: /etc/ccgw/tls/0021.key")' \
    "does not match certificate"
mutate tlssecret deploy/k8s/gateway.yaml 's.replace("secretName: ccgw-tls", "secretName: ccgw-tlz")' \
    "Secret ccgw-tlz not defined"
mutate tlsport docker-compose.yml 's.replace("\"8443:8443\"", "\"8444:8443\"")' "compose edge: host ports"
echo "test_deploy_static: all checks passed, 23 mutations caught"
