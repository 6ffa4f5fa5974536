#!/bin/bash
# cc-routes and the edge's certificates: `check` and `render` refuse, with a
# message naming the config entry, a missing, unreadable or non-PEM
# certificate, an encrypted or mismatched key, an expired or not yet valid
# certificate, and a host no certificate covers; a refused render leaves the
# output directory untouched. Against running tiers: `rotate` refuses a bad
# renewal and the edge keeps serving the old certificate; `apply` of the
# same config after a renewal puts the new one in service without restart.
# With plain_http: redirect the plain port answers 308 to https (but still
# refuses a bad Host or a CONNECT itself) and HTTPS answers carry HSTS.
source "$(dirname "$0")/lib.sh"
it_setup
CC_ROUTES=$CCGW_BIN/cc-routes
D=chains.it.test
EDGE=$(free_port); TLS=$(free_port); H0=$(free_port); H1=$(free_port); BK=$(free_port)
OUT=$IT_DIR/out
T=$IT_DIR/tls
"$CCGW_ROOT/scripts/local-ca" "$T" ensure "$D" 0021 0001 || fail "local-ca"

# config FILE CERT21 KEY21 CERT01 KEY01 (an empty CERT01 leaves chain 0001 uncovered)
config() {
    {
        cat <<YAML
gateway: {name: gw-it, routing_domain: $D, data_dir: $IT_DIR}
chains:
  - {id: "0021", backends: [{name: n21, address: "127.0.0.1:$BK"}]}
  - {id: "0001", backends: [{name: n01, address: "127.0.0.1:$BK"}]}
providers:
  - name: acme
    accounts:
      - {id: acct1, chains: ["0021", "0001"]}
tiers:
  - {name: edge, role: edge, bind: "127.0.0.1:$EDGE", stats_socket: $IT_DIR/edge.sock}
  - {name: http0, role: http, bind: "127.0.0.1:$H0", stats_socket: $IT_DIR/http0.sock}
  - {name: http1, role: http, backup: true, bind: "127.0.0.1:$H1", stats_socket: $IT_DIR/http1.sock}
tls:
  bind: "127.0.0.1:$TLS"
  certificates:
    - {name: c21, cert: $2, key: $3}
YAML
        [ -n "$4" ] && echo "    - {name: c01, cert: $4, key: $5}"
    } >"$1"
}
config "$IT_DIR/good.yaml" "$T/0021.crt" "$T/0021.key" "$T/0001.crt" "$T/0001.key"
"$CC_ROUTES" render --config "$IT_DIR/good.yaml" --out "$OUT" >/dev/null 2>&1 || fail "good config"
"$CC_ROUTES" check --config "$IT_DIR/good.yaml" 2>/dev/null | grep -q ": OK$" || fail "check good config"
for f in crt-list tls-c21.pem tls-c01.pem tls-expiry.map tls-metrics.lf; do
    [ -s "$OUT/$f" ] || fail "render did not write $f"
done
assert_eq "$(stat -c %a "$OUT/tls-c21.pem")" 600 "the PEM with the key is private"
snapshot() { (cd "$OUT" && ls -A && sha256sum -- *); }
before=$(snapshot)

# refused NAME REGEX CONFIG-ARGS...: check and render refuse with REGEX, files unchanged.
refused() {
    local name=$1 want=$2 out; shift 2
    config "$IT_DIR/$name.yaml" "$@"
    if out=$("$CC_ROUTES" check --config "$IT_DIR/$name.yaml" 2>&1); then fail "$name: check accepted it"; fi
    echo "$out" | grep -Eq "$want" || fail "$name: check said: $out"
    echo "$out" | grep -q "^cc-routes: $IT_DIR/$name.yaml:[0-9]*:[0-9]*: tls.certificates" \
        || fail "$name: the message does not name the config entry: $out"
    if out=$("$CC_ROUTES" render --config "$IT_DIR/$name.yaml" --out "$OUT" 2>&1); then fail "$name: render accepted it"; fi
    assert_eq "$(snapshot)" "$before" "$name: output directory untouched"
    echo "ok: $name refused: $(echo "$out" | tail -n 1)"
}

# Certificates the local CA does not make: expired, not yet valid, encrypted key.
mkdir -p "$IT_DIR/ca/newcerts" && : >"$IT_DIR/ca/index.txt" && echo 1000 >"$IT_DIR/ca/serial"
cat >"$IT_DIR/ca/ca.cnf" <<CNF
[ca]
default_ca = d
[d]
database = $IT_DIR/ca/index.txt
new_certs_dir = $IT_DIR/ca/newcerts
serial = $IT_DIR/ca/serial
default_md = sha256
policy = p
unique_subject = no
[p]
commonName = supplied
[ext]
subjectAltName = DNS:*.0001.$D
CNF
openssl req -new -key "$T/0001.key" -subj "/CN=*.0001.$D" -out "$IT_DIR/ca/0001.csr" 2>/dev/null
# dated ISSUE NAME START END
dated() {
    openssl ca -batch -config "$IT_DIR/ca/ca.cnf" -cert "$T/int.crt" -keyfile "$T/int.key" -notext \
        -extensions ext -startdate "$2" -enddate "$3" -in "$IT_DIR/ca/0001.csr" -out "$IT_DIR/$1.crt" \
        >/dev/null 2>&1 || fail "openssl ca $1"
}
dated expired 20240101000000Z 20250101000000Z
dated future 20400101000000Z 20410101000000Z
openssl pkey -in "$T/0001.key" -aes256 -passout pass:secret -out "$IT_DIR/encrypted.key" 2>/dev/null
echo "not a certificate" >"$IT_DIR/junk.pem"
cp "$T/0001.crt" "$IT_DIR/locked.crt" && chmod 000 "$IT_DIR/locked.crt"

refused missing "certificate $IT_DIR/nope.crt: No such file or directory" \
    "$T/0021.crt" "$T/0021.key" "$IT_DIR/nope.crt" "$T/0001.key"
refused not_pem "certificate $IT_DIR/junk.pem: not a PEM certificate" \
    "$T/0021.crt" "$T/0021.key" "$IT_DIR/junk.pem" "$T/0001.key"
refused key_mismatch "key $T/0021.key does not match certificate $T/0001.crt" \
    "$T/0021.crt" "$T/0021.key" "$T/0001.crt" "$T/0021.key"
refused encrypted_key "key $IT_DIR/encrypted.key: no unencrypted PEM private key" \
    "$T/0021.crt" "$T/0021.key" "$T/0001.crt" "$IT_DIR/encrypted.key"
refused expired "certificate $IT_DIR/expired.crt expired on 2025-01-01 00:00:00 UTC" \
    "$T/0021.crt" "$T/0021.key" "$IT_DIR/expired.crt" "$T/0001.key"
refused not_yet_valid "certificate $IT_DIR/future.crt is not valid before 2040-01-01 00:00:00 UTC" \
    "$T/0021.crt" "$T/0021.key" "$IT_DIR/future.crt" "$T/0001.key"
refused uncovered "no certificate covers host acct1.0001.$D \(chain 0001 needs \*.0001.$D" \
    "$T/0021.crt" "$T/0021.key" "" ""
# The wrong chain's wildcard does not cover it either.
refused wrong_name "no certificate covers host acct1.0001.$D" \
    "$T/0021.crt" "$T/0021.key" "$T/0021.crt" "$T/0021.key"
if [ "$(id -u)" = 0 ] && runuser -u nobody -- true 2>/dev/null; then
    # Everything else readable by nobody: only the certificate is locked.
    mkdir -p "$IT_DIR/pub" && cp "$T/0021.crt" "$T/0021.key" "$T/0001.key" "$IT_DIR/pub/"
    chmod 755 "$IT_DIR" "$IT_DIR/pub"; chmod 644 "$IT_DIR"/pub/*
    config "$IT_DIR/locked.yaml" "$IT_DIR/pub/0021.crt" "$IT_DIR/pub/0021.key" "$IT_DIR/locked.crt" "$IT_DIR/pub/0001.key"
    chmod 644 "$IT_DIR/locked.yaml"
    # nobody runs a copy: the clone may sit in a directory only root can enter
    cp "$CC_ROUTES" "$IT_DIR/pub/cc-routes" && cp -r "$CCGW_ROOT/haproxy/templates" "$IT_DIR/pub/"
    chmod -R a+rX "$IT_DIR/pub"
    out=$(cd / && runuser -u nobody -- "$IT_DIR/pub/cc-routes" check --templates "$IT_DIR/pub/templates" \
        --config "$IT_DIR/locked.yaml" 2>&1) \
        && fail "unreadable certificate accepted"
    echo "$out" | grep -q "certificate $IT_DIR/locked.crt: Permission denied" || fail "unreadable: $out"
    echo "ok: unreadable refused: $out"
fi

note "rotate refuses a bad renewal; the edge keeps the old certificate"
bg http0 haproxy -db -f "$OUT/http0.cfg"
bg http1 haproxy -db -f "$OUT/http1.cfg"
bg edge haproxy -db -f "$OUT/edge.cfg"
wait_port "$TLS"
serial() {
    openssl s_client -connect "127.0.0.1:$TLS" -servername "acct1.0021.$D" </dev/null 2>/dev/null \
        | openssl x509 -noout -serial | cut -d= -f2
}
s0=$(serial)
[ -n "$s0" ] || fail "no certificate served"
cp "$T/0021.key" "$IT_DIR/0021.key.good"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/0021.key" 2>/dev/null
out=$("$CC_ROUTES" rotate --config "$IT_DIR/good.yaml" --out "$OUT" 2>&1) && fail "rotate accepted a mismatched key"
echo "$out" | grep -q "does not match certificate" || fail "rotate said: $out"
assert_eq "$(serial)" "$s0" "the edge still serves the old certificate"
assert_eq "$(snapshot)" "$before" "a refused rotation leaves the files"
cp "$IT_DIR/0021.key.good" "$T/0021.key"

note "apply after a renewal: the new certificate in service, same process"
pid=$(echo "show info" | socat -t 5 - "UNIX-CONNECT:$IT_DIR/edge.sock" | awk -F': ' '$1 == "Pid" { print $2 }')
"$CCGW_ROOT/scripts/local-ca" "$T" issue "$D" 0021 20 || fail "issue"
want=$(openssl x509 -in "$T/0021.crt" -noout -serial | cut -d= -f2)
"$CC_ROUTES" apply --config "$IT_DIR/good.yaml" --out "$OUT" --wait-up 5 --drain 5 >"$IT_DIR/apply.out" 2>&1 \
    || { cat "$IT_DIR/apply.out"; fail "apply"; }
assert_eq "$(serial)" "$want" "apply put the renewed certificate in service"
assert_eq "$(echo "show info" | socat -t 5 - "UNIX-CONNECT:$IT_DIR/edge.sock" | awk -F': ' '$1 == "Pid" { print $2 }')" \
    "$pid" "same edge process"
assert_eq "$(awk '$1 == "c21" { print $2 }' "$OUT/tls-expiry.map")" \
    "$(date -d "$(openssl x509 -in "$T/0021.crt" -noout -enddate | cut -d= -f2)" +%s)" "expiry map on disk follows"
note "plain_http: redirect and HSTS"
sed -e 's/^tls:$/tls:\n  plain_http: redirect\n  hsts_max_age_secs: 600/' "$IT_DIR/good.yaml" >"$IT_DIR/redirect.yaml"
grep -q "plain_http: redirect" "$IT_DIR/redirect.yaml" || fail "redirect config"
"$CC_ROUTES" render --config "$IT_DIR/redirect.yaml" --out "$OUT" >/dev/null 2>&1 || fail "render redirect"
stop_bg edge
bg edge haproxy -db -f "$OUT/edge.cfg"
wait_port "$TLS"; wait_port "$EDGE"
H=acct1.0021.$D
out=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' -H "Host: $H" "http://127.0.0.1:$EDGE/x/y?a=1&b=2")
assert_eq "$out" "308 https://$H:$TLS/x/y?a=1&b=2" "plain request: 308 to the same host, port and path over https"
out=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $H" -d '{}' "http://127.0.0.1:$EDGE/")
assert_eq "$out" 308 "a POST is redirected with 308 (method and body kept by the client)"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: evil.example, $H" "http://127.0.0.1:$EDGE/")" 400 \
    "a bad Host on the plain port is refused, not redirected"
code=$(printf 'CONNECT %s:443 HTTP/1.1\r\nHost: %s:443\r\n\r\n' "$H" "$H" \
    | socat -t 5 - "TCP:127.0.0.1:$EDGE" | head -n 1 | awk '{ print $2 }')
assert_eq "$code" 405 "a CONNECT on the plain port is refused, not redirected"
hsts=$(curl -s -D - -o /dev/null --cacert "$T/ca.crt" --resolve "$H:$TLS:127.0.0.1" --http2 "https://$H:$TLS/" \
    | tr -d '\r' | awk -F': ' 'tolower($1) == "strict-transport-security" { print $2 }')
assert_eq "$hsts" "max-age=600" "HSTS on HTTPS answers"
# The edge's policy is in its config only: apply says a restart is needed.
"$CC_ROUTES" apply --config "$IT_DIR/good.yaml" --out "$OUT" --wait-up 5 --drain 5 >"$IT_DIR/apply2.out" 2>&1
assert_eq "$?" 3 "apply of a changed plain HTTP policy: exit 3 (restart needed)"
grep -q "restart needed: .*edge plain HTTP policy or HSTS changed" "$IT_DIR/apply2.out" \
    || fail "apply did not say why: $(cat "$IT_DIR/apply2.out")"
echo "PASS"
