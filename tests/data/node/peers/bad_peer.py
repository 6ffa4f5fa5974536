#!/usr/bin/env python3
"""A misbehaving peer for cc-node (stdlib only): garbage, a truncated frame,
a HELLO of another chain, a block whose hash misses the target and one whose
merkle root is wrong. Each must be refused (REJECT or disconnect), the node
must keep answering RPC, and the fifth offence must get 127.0.0.1 banned.

usage: bad_peer.py RPC_PORT PEER_PORT CHAIN (e.g. bitcoin-1337)
Prints one "ok: ..." line per check; exits 1 on the first failure."""
import hashlib
import json
import socket
import struct
import sys
import urllib.request

RPC_PORT, PEER_PORT, CHAIN = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
MAGIC = bytes([0xCC, 0x9E, 0xE7, 0x01])
HELLO, HELLO_ACK, BLOCK, PING, PONG, REJECT = 1, 2, 5, 6, 7, 8


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def ok(cond, msg):
    if not cond:
        fail(msg)
    print("ok:", msg)


def rpc(method, params=()):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    with urllib.request.urlopen(urllib.request.Request(
            "http://127.0.0.1:%d/" % RPC_PORT, data=body.encode()), timeout=10) as r:
        d = json.loads(r.read())
    if d.get("error"):
        fail("rpc %s: %s" % (method, d["error"]))
    return d["result"]


def sha256d(b):
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


def frame(mtype, payload):
    return MAGIC + bytes([mtype]) + struct.pack("<I", len(payload)) + payload + sha256d(payload)[:4]


def pstr(s):
    b = s.encode()
    return bytes([len(b)]) + b


def hello(chain, height, tip, genesis):
    return (struct.pack("<I", 1) + pstr(chain) + bytes([0]) + struct.pack("<Q", height) + tip +
            genesis + struct.pack("<Q", 0x1234567890abcdef) + pstr("/bad_peer.py/"))


def connect():
    s = socket.create_connection(("127.0.0.1", PEER_PORT), timeout=5)
    s.settimeout(5)
    return s


def read_frame(s):
    buf = b""
    while len(buf) < 9:
        chunk = s.recv(9 - len(buf))
        if not chunk:
            return None, None
        buf += chunk
    assert buf[:4] == MAGIC, buf
    n = struct.unpack("<I", buf[5:9])[0]
    body = b""
    while len(body) < n + 4:
        chunk = s.recv(n + 4 - len(body))
        if not chunk:
            return None, None
        body += chunk
    assert sha256d(body[:n])[:4] == body[n:], "checksum from the node"
    return buf[4], body[:n]


def closed_by_node(s):
    """True when the node closes (or resets) the connection, after any frames
    it sends; False when it is still open after 5 s."""
    try:
        while True:
            t, _ = read_frame(s)
            if t is None:
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def read_reject(s):
    while True:
        t, body = read_frame(s)
        if t is None:
            return None
        if t == REJECT:
            return body[2:2 + body[1]].decode()


def pow_ok(header):
    return int.from_bytes(sha256d(header), "little") <= 0x7fffff << (8 * 29)


def grind(header, want_ok):
    """Change the nonce until the header meets (or misses) the regtest target."""
    h = bytearray(header)
    for nonce in range(1 << 20):
        h[76:80] = struct.pack("<I", nonce)
        if pow_ok(bytes(h)) == want_ok:
            return bytes(h)
    fail("no nonce found")


# The chain as the node has it: genesis, and one block to build on.
rpc("generatetoaddress", [1, "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"])
genesis = bytes.fromhex(rpc("getblockhash", [0]))[::-1]
tip_hash = bytes.fromhex(rpc("getblockhash", [1]))[::-1]
block1 = bytes.fromhex(rpc("getblock", [rpc("getblockhash", [1]), 0]))
height = rpc("getblockcount")

# 1. garbage: not our magic, the connection is cut
s = connect()
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
ok(closed_by_node(s), "garbage: connection closed by the node")
s.close()

# 2. a truncated frame: header says 100 bytes, 10 come, then EOF
s = connect()
s.sendall((MAGIC + bytes([HELLO]) + struct.pack("<I", 100) + b"x" * 10))
s.shutdown(socket.SHUT_WR)
ok(closed_by_node(s), "truncated frame: connection closed")
s.close()

# 3. HELLO of another chain: REJECT, then closed
s = connect()
s.sendall(frame(HELLO, hello("bitcoin-9999", height, tip_hash, genesis)))
reason = read_reject(s)
ok(reason is not None and "wrong chain" in reason, "wrong chain id: REJECT \"%s\"" % reason)
ok(closed_by_node(s), "wrong chain id: connection closed")
s.close()
ok(rpc("getblockcount") == height, "RPC still served after three offences")

# 4. a proper handshake, then a block whose hash misses the target
s = connect()
s.sendall(frame(HELLO, hello(CHAIN, height, tip_hash, genesis)))
t, _ = read_frame(s)
ok(t == HELLO_ACK, "handshake with the right chain id")
bad_pow = grind(block1[:80], False) + block1[80:]
s.sendall(frame(BLOCK, struct.pack("<Q", 1) + bad_pow))
reason = read_reject(s)
ok(reason == "high-hash", "block with a bad hash: REJECT \"%s\"" % reason)
s.sendall(frame(PING, struct.pack("<Q", 42)))
while True:
    t, body = read_frame(s)
    if t == PONG:
        break
    if t is None:
        fail("connection closed after one bad block")
ok(struct.unpack("<Q", body)[0] == 42, "connection kept after one bad block (PONG 42)")
me = [p for p in rpc("getpeerinfo") if p["inbound"] and p["subver"] == "/bad_peer.py/"]
ok(len(me) == 1 and me[0]["offences"] == 1 and me[0]["score"] < 100,
   "getpeerinfo shows the offence (score %s)" % (me and me[0]["score"]))

# 5. a block on the tip with a wrong merkle root: fifth offence, banned
hdr = bytearray(block1[:80])
hdr[4:36] = tip_hash
hdr[36:68] = b"\x11" * 32
hdr[68:72] = struct.pack("<I", struct.unpack("<I", block1[68:72])[0] + 1)
bad_merkle = grind(bytes(hdr), True) + block1[80:]
s.sendall(frame(BLOCK, struct.pack("<Q", height + 1) + bad_merkle))
reason = read_reject(s)
ok(reason == "bad-txnmrklroot", "block with a bad merkle root: REJECT \"%s\"" % reason)
ok(closed_by_node(s), "fifth offence: connection closed")
s.close()

# 6. banned: a new connection is dropped at once
s = connect()
s.sendall(frame(HELLO, hello(CHAIN, height, tip_hash, genesis)))
ok(closed_by_node(s), "banned address: new connection dropped")
s.close()
ok(rpc("getblockcount") == height, "RPC still served, chain unchanged at %d" % height)
