#!/usr/bin/env python3
"""Scripted HTTP clients for cc-routes tests (stdlib only).

    client.py persistent PORT HOST...   one TCP connection, one GET per Host;
                                        prints "<status> <tag or ->" per request
    client.py nohost PORT               HTTP/1.0 GET without a Host header;
                                        prints the status
    client.py load PORT HOST SECS N     N threads, each its own keep-alive
                                        connection, GET for SECS seconds;
                                        prints "ok=<n> failed=<n> tags=<t:n,...>"
"""
import http.client
import json
import socket
import sys
import threading
import time


def persistent(port, hosts):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    for host in hosts:
        conn.request("GET", "/", headers={"Host": host})
        resp = conn.getresponse()
        body = resp.read()
        tag = "-"
        if resp.status == 200:
            tag = json.loads(body)["tag"]
        print(resp.status, tag, flush=True)
        if resp.will_close:
            print("connection closed by server", flush=True)
            return 1
    conn.close()
    return 0


def nohost(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    print(data.split(b" ", 2)[1].decode())
    return 0


def load(port, host, secs, nthreads):
    lock = threading.Lock()
    stats = {"ok": 0, "failed": 0, "tags": {}, "errors": []}
    deadline = time.monotonic() + secs

    def worker():
        conn = None
        while time.monotonic() < deadline:
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", "/load", headers={"Host": host})
                resp = conn.getresponse()
                body = resp.read()
                ok = resp.status == 200
                tag = json.loads(body)["tag"] if ok else None
                if resp.will_close:
                    conn.close()
                    conn = None
            except Exception as e:  # a failed request, whatever the cause
                ok, tag = False, None
                err = repr(e)
                if conn is not None:
                    conn.close()
                conn = None
            else:
                err = None if ok else "status %d" % resp.status
            with lock:
                if ok:
                    stats["ok"] += 1
                    stats["tags"][tag] = stats["tags"].get(tag, 0) + 1
                else:
                    stats["failed"] += 1
                    stats["errors"].append(err)
            time.sleep(0.005)
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tags = ",".join("%s:%d" % kv for kv in sorted(stats["tags"].items()))
    print("ok=%d failed=%d tags=%s" % (stats["ok"], stats["failed"], tags))
    for e in stats["errors"][:10]:
        print("error:", e)
    return 0


def main():
    cmd, port = sys.argv[1], int(sys.argv[2])
    if cmd == "persistent":
        return persistent(port, sys.argv[3:])
    if cmd == "nohost":
        return nohost(port)
    if cmd == "load":
        return load(port, sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))
    print("unknown command", cmd, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
