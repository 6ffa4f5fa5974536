#!/bin/bash
# cc-gateway against a real HAProxy trio on loopback: edge -> http0 (primary)
# / http1 (backup) -> two chain backends (python http.server). Each HAProxy
# runs as cc-gateway's child. A scripted client sends a known mix through the
# edge, including the persistent-socket attack (good Host first, then bad
# ones on the same connection) and backend 5xx; http0's counts must equal
# the expected numbers exactly, the edge must count nothing (it counts only
# what ended there, and every request here reached an HTTP tier), HAProxy must
# have dropped no log line, and a replay of the kept request log must agree.
source "$(dirname "$0")/lib.sh"
it_setup

P_EDGE=$(free_port); P_H0=$(free_port); P_H1=$(free_port)
M_EDGE=$(free_port); M_H0=$(free_port); M_H1=$(free_port)
B21=$(free_port); B01=$(free_port)
D=chains.it.test
A=894334g9f403

cat > "$IT_DIR/backend.py" <<'PY'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        code = 500 if self.path.startswith("/err") else 200
        body = b'{"jsonrpc":"2.0","id":1,"result":"ok"}'
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_POST = do_GET
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
bg b21 python3 "$IT_DIR/backend.py" "$B21"
bg b01 python3 "$IT_DIR/backend.py" "$B01"

cat > "$IT_DIR/ccgw.yaml" <<YAML
gateway:
  name: gw-it
  routing_domain: $D
  data_dir: $IT_DIR/data
chains:
  - id: "0021"
    backends: [{name: n0021a, address: "127.0.0.1:$B21"}]
  - id: "0001"
    backends: [{name: n0001a, address: "127.0.0.1:$B01"}]
providers:
  - name: acme
    accounts:
      - id: $A
        chains: ["0021", "0001"]
tiers:
  - {name: edge, role: edge, bind: "127.0.0.1:$P_EDGE", stats_socket: "$IT_DIR/edge.sock", gateway_listen: "127.0.0.1:$M_EDGE"}
  - {name: http0, role: http, bind: "127.0.0.1:$P_H0", stats_socket: "$IT_DIR/http0.sock", gateway_listen: "127.0.0.1:$M_H0"}
  - {name: http1, role: http, backup: true, bind: "127.0.0.1:$P_H1", stats_socket: "$IT_DIR/http1.sock", gateway_listen: "127.0.0.1:$M_H1"}
logs:
  dir: $IT_DIR/logs
  time_zone: UTC
YAML
printf '%s be_0021\n%s be_0001\n' "$A.0021.$D" "$A.0001.$D" > "$IT_DIR/hosts.map"

haproxy_global() {
    printf 'global\n  log stdout format short local0 info\n  stats socket %s/%s.sock mode 600 level admin\n' "$IT_DIR" "$1"
    printf 'defaults\n  mode http\n  log global\n  option httplog\n  option dontlognull\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n'
}
for t in http0:$P_H0 http1:$P_H1; do
    name=${t%%:*}; port=${t#*:}
    { haproxy_global "$name"
      printf 'frontend fe_%s\n  bind 127.0.0.1:%s\n  capture request header Host len 128\n' "$name" "$port"
      printf '  use_backend %%[req.hdr(host),lower,map(%s/hosts.map)]\n  default_backend be_reject\n' "$IT_DIR"
      printf 'backend be_0021\n  server n0021a 127.0.0.1:%s\n' "$B21"
      printf 'backend be_0001\n  server n0001a 127.0.0.1:%s\n' "$B01"
      printf 'backend be_reject\n  http-request deny deny_status 404\n'
    } > "$IT_DIR/$name.cfg"
done
{ haproxy_global edge
  printf 'frontend fe_edge\n  bind 127.0.0.1:%s\n  capture request header Host len 128\n  default_backend be_http\n' "$P_EDGE"
  printf 'backend be_http\n  server http0 127.0.0.1:%s check inter 500\n  server http1 127.0.0.1:%s check inter 500 backup\n' "$P_H0" "$P_H1"
} > "$IT_DIR/edge.cfg"

for t in http0 http1 edge; do
    bg "gw_$t" env TZ=UTC "$CCGW_BIN/cc-gateway" --config "$IT_DIR/ccgw.yaml" --source "$t" \
        --no-delivery -- haproxy -f "$IT_DIR/$t.cfg"
done
wait_http "http://127.0.0.1:$M_H0/health/ready"
wait_http "http://127.0.0.1:$M_EDGE/health/ready"
wait_port "$P_EDGE"; wait_port "$B21"; wait_port "$B01"
sleep 1 # the edge's first health checks mark http0 up

cat > "$IT_DIR/client.py" <<'PY'
import socket, sys
port, A, D = int(sys.argv[1]), sys.argv[2], sys.argv[3]
G21, G01 = f"{A}.0021.{D}", f"{A}.0001.{D}"
def read_response(s):
    data = b""
    while b"\r\n\r\n" not in data:
        b = s.recv(65536)
        if not b: raise EOFError("connection closed")
        data += b
    head, rest = data.split(b"\r\n\r\n", 1)
    n = 0
    for h in head.split(b"\r\n")[1:]:
        k, v = h.split(b":", 1)
        if k.strip().lower() == b"content-length": n = int(v)
    while len(rest) < n: rest += s.recv(65536)
    return int(head.split(b" ", 2)[1])
def one(host, path="/"):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    code = read_response(s)
    s.close()
    return code
codes = {}
for i in range(30): codes.setdefault("good21", []).append(one(G21))
for i in range(20): codes.setdefault("good01", []).append(one(G01))
for i in range(5): codes.setdefault("upper", []).append(one(G21.upper()))
for i in range(10): codes.setdefault("err", []).append(one(G21, "/err"))
for i in range(5): codes.setdefault("unknown", []).append(one(f"nobody.0021.{D}"))
for i in range(5): codes.setdefault("port", []).append(one(G21 + ":8080"))
# the persistent-socket attack: a good Host first, then bad ones, same socket
s = socket.create_connection(("127.0.0.1", port))
for h in (G21, f"evil.0021.{D}", G21, "example.com", G21):
    s.sendall(f"GET / HTTP/1.1\r\nHost: {h}\r\n\r\n".encode())
    codes.setdefault("persistent", []).append(read_response(s))
s.close()
print(codes)
assert set(codes["good21"]) == {200} and set(codes["good01"]) == {200}, codes
assert set(codes["err"]) == {500} and set(codes["unknown"]) == {404}, codes
assert codes["persistent"] == [200, 404, 200, 404, 200], codes
PY
python3 "$IT_DIR/client.py" "$P_EDGE" "$A" "$D" || fail "client"

metric() { # metric PORT NAME [LABEL=VALUE]
    curl -fsS "http://127.0.0.1:$1/metrics" | awk -v n="$2" -v l="${3:-}" \
        '($1 == n || index($1, n "{") == 1) && index($1, l) { print $2; exit }'
}
wait_metric() { # wait_metric PORT NAME LABEL VALUE
    for _ in $(seq 100); do
        [ "$(metric "$1" "$2" "$3")" = "$4" ] && return 0
        sleep 0.1
    done
}
expected_lines=80
wait_metric "$M_H0" ccgw_gateway_lines_total 'kind="request"' "$expected_lines"
assert_eq "$(metric "$M_H0" ccgw_gateway_lines_total 'kind="request"')" "$expected_lines" "http0 request lines"
assert_eq "$(metric "$M_H0" ccgw_gateway_relays_total)" 58 "http0 relays (30+20+5 upper + 3 persistent)"
assert_eq "$(metric "$M_H0" ccgw_gateway_non_relays_total 'reason="server_error"')" 10 "http0 server_error"
assert_eq "$(metric "$M_H0" ccgw_gateway_non_relays_total 'reason="invalid_host"')" 7 "http0 invalid_host (5 + 2 on the persistent socket)"
assert_eq "$(metric "$M_H0" ccgw_gateway_non_relays_total 'reason="unrouted"')" 5 "http0 unrouted (host:port)"
assert_eq "$(metric "$M_H0" ccgw_gateway_non_relays_total 'reason="unparsable"')" 0 "http0 unparsable"
assert_eq "$(metric "$M_H1" ccgw_gateway_lines_total 'kind="request"')" 0 "http1 (backup) request lines"
wait_metric "$M_EDGE" ccgw_gateway_lines_total 'kind="request"' "$expected_lines"
assert_eq "$(metric "$M_EDGE" ccgw_gateway_lines_total 'kind="request"')" "$expected_lines" "edge request lines (stored)"
assert_eq "$(metric "$M_EDGE" ccgw_gateway_relays_total)" 0 "edge relays (never counted)"
edge_nr=$(curl -fsS "http://127.0.0.1:$M_EDGE/metrics" | awk '/^ccgw_gateway_non_relays_total[{]/ { s += $2 } END { print s + 0 }')
assert_eq "$edge_nr" 0 "edge non-relays (every request reached an HTTP tier)"
sleep 1.2 # one more DroppedLogs poll
for m in "$M_EDGE" "$M_H0"; do
    assert_eq "$(metric "$m" ccgw_gateway_stats_socket_up)" 1 "stats socket polled on :$m"
    assert_eq "$(metric "$m" ccgw_gateway_haproxy_dropped_logs_total)" 0 "HAProxy DroppedLogs on :$m"
done
curl -fsS "http://127.0.0.1:$M_H0/health" | grep -q '"status":"ok"' || fail "/health not ok"

# SIGTERM: cc-gateway stops its HAProxy, drains the pipe and exits 0
pid=${IT_PIDS[gw_http0]}
kill -TERM "$pid"
wait "$pid"; rc=$?
unset "IT_PIDS[gw_http0]"
assert_eq "$rc" 0 "cc-gateway exit status after SIGTERM"
pgrep -f "haproxy -f $IT_DIR/http0.cfg" >/dev/null && fail "http0 HAProxy still running"

# the kept request log recounts to the same figures
out=$("$CCGW_BIN/cc-gateway" replay --config "$IT_DIR/ccgw.yaml" --source http0 "$IT_DIR"/logs/http0/requests.0*.log)
echo "replay: $out"
python3 - "$out" <<'PY' || fail "replay differs"
import json, sys
s = json.loads(sys.argv[1])
assert s["relays"] == 58 and s["by_chain"] == {"0021": 38, "0001": 20}, s
assert s["non_relays"] == {"invalid_host": 7, "unrouted": 5, "server_error": 10, "no_response": 0, "unparsable": 0,
                           "bad_host": 0, "upgrade_refused": 0, "connect_refused": 0, "websocket_session": 0,
                           "bad_request": 0, "redirected": 0}, s
PY
echo "ok: replay of the request-log segments = live counts"

# No worker died on its own (a sanitizer abort or a crash would be restarted
# by the supervisor and could otherwise go unseen).
for t in edge http0 http1; do
    if grep -q '"worker_exited"\|worker_exited' "$IT_DIR/gw_$t.log"; then
        grep 'worker_exited' "$IT_DIR/gw_$t.log" >&2
        fail "the $t worker exited during the test"
    fi
done
echo "ok: no worker exited during the test"
