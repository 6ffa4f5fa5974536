#!/usr/bin/env python3
"""Hostile traffic against cc-node (stdlib only):  abuse_check.py PORT PID IDLE_SECS
malformed JSON, a 10 MB body, a slow client trickling one byte a second, and
5,000 idle connections. Each must get a clear error or be cut off, the
node's memory must stay bounded, and other clients must keep being served."""
import http.client
import json
import resource
import socket
import sys
import time

PORT, PID, IDLE = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
checks = 0


def ok(cond, msg):
    global checks
    if not cond:
        print("FAIL: " + msg)
        sys.exit(1)
    checks += 1
    print("ok: " + msg)


def rss_mb():
    for line in open("/proc/%d/status" % PID):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return -1


def probe(timeout=2.0):
    """A well-behaved client: getblockcount on a fresh connection; seconds taken."""
    t0 = time.monotonic()
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
    c.request("POST", "/", body='{"method":"getblockcount","id":1}')
    r = c.getresponse()
    body = json.loads(r.read())
    c.close()
    assert r.status == 200 and body["result"] >= 0, (r.status, body)
    return time.monotonic() - t0


base_rss = rss_mb()
print("-- rss at start: %.1f MB" % base_rss)

# 1. malformed JSON on one keep-alive connection: each answered, connection stays usable
c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
bad = [b'{"method":', b"\xff\xfe\x00garbage", b"[" * 100000, b'{"method":"getblockcount","id":1}}',
       b"", b"null", b'{"method":"getblockcount","id":1,"method":"uptime"', b"\x00" * 64]
for body in bad:
    c.request("POST", "/", body=body)
    r = c.getresponse()
    d = json.loads(r.read())
    ok(r.status == 500 and d["error"]["code"] == -32700, "malformed %r... -> 500 -32700" % body[:12])
c.request("POST", "/", body='{"method":"getblockcount","id":1}')
r = c.getresponse()
ok(r.status == 200 and json.loads(r.read())["result"] >= 0, "same connection still served after 8 bad bodies")
c.close()

# 2. a 10 MB body: 413 with a clear message, not buffered
s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (10 << 20))
chunk = b"[" + b"1," * 32767 + b"1"
sent, status_line = 0, b""
try:
    while sent < (10 << 20):
        s.sendall(chunk[: min(len(chunk), (10 << 20) - sent)])
        sent += len(chunk)
except (BrokenPipeError, ConnectionResetError):
    pass
s.settimeout(5)
try:
    resp = s.recv(4096)
except (ConnectionResetError, socket.timeout):
    resp = b""
s.close()
ok(b" 413 " in resp.split(b"\r\n")[0] and b"too large" in resp, "10 MB body -> 413 request body too large")
ok(rss_mb() < base_rss + 32, "10 MB body not buffered (rss %.1f MB)" % rss_mb())

# 3. a slow client, one byte a second: others keep being served meanwhile;
#    once it goes quiet it is cut off after the idle timeout
slow = socket.create_connection(("127.0.0.1", PORT), timeout=10)
req = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 33\r\n\r\n"
worst = 0.0
for i in range(6):
    slow.send(req[i:i + 1])
    worst = max(worst, probe())
    time.sleep(1)
ok(worst < 0.5, "other clients served during the slow client (worst %.3f s)" % worst)
slow.settimeout(IDLE + 5)
t0 = time.monotonic()
try:
    got = slow.recv(1024)
except ConnectionResetError:
    got = b""
waited = time.monotonic() - t0
ok(got == b"" and waited <= IDLE + 3, "quiet slow client cut off after %.1f s (idle timeout %d s)" % (waited, IDLE))
slow.close()

# 4. 5,000 idle connections
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
idle = []
t0 = time.monotonic()
for i in range(5000):
    idle.append(socket.create_connection(("127.0.0.1", PORT), timeout=5))
ok(len(idle) == 5000, "5000 idle connections open (%.1f s)" % (time.monotonic() - t0))
time.sleep(0.5)
lat = max(probe() for _ in range(20))
ok(lat < 0.5, "fresh clients served with 5000 idle connections open (worst %.3f s)" % lat)
peak = rss_mb()
ok(peak < base_rss + 100, "memory bounded with 5000 idle connections: %.1f MB (start %.1f MB)" % (peak, base_rss))
time.sleep(IDLE + 2)
closed = 0
for s in idle:
    s.setblocking(False)
    try:
        if s.recv(1) == b"":
            closed += 1
    except (BlockingIOError, ConnectionResetError):
        if isinstance(sys.exc_info()[1], ConnectionResetError):
            closed += 1
    s.close()
ok(closed == 5000, "all 5000 idle connections cut off after the idle timeout (%d closed)" % closed)
ok(probe() < 0.5, "node serves normally afterwards")
print("-- rss at end: %.1f MB" % rss_mb())
print("%d passed, 0 failed" % checks)
