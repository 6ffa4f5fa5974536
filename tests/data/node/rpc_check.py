#!/usr/bin/env python3
"""Scripted JSON-RPC client for cc-node integration tests (stdlib only).

    rpc_check.py bitcoin PORT USER PASSWORD COOKIE_FILE
    rpc_check.py evm PORT

Checks every method and error path of one flavour: envelope and HTTP status
rules, auth, named params, batches, notifications. Prints one "ok:" line per
check and exits 1 at the first failure."""
import base64
import hashlib
import http.client
import json
import sys

PORT = int(sys.argv[2])
checks = 0


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def ok(cond, msg):
    global checks
    if not cond:
        fail(msg)
    checks += 1
    print("ok: " + msg)


class Client:
    def __init__(self, auth=None):
        self.conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
        self.auth = auth

    def raw(self, body, auth=True, method="POST", headers=None):
        h = {"Content-Type": "application/json"}
        if auth and self.auth:
            h["Authorization"] = "Basic " + base64.b64encode(self.auth.encode()).decode()
        h.update(headers or {})
        self.conn.request(method, "/", body=body, headers=h)
        r = self.conn.getresponse()
        data = r.read()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data

    def call(self, payload, **kw):
        status, headers, data = self.raw(json.dumps(payload), **kw)
        return status, headers, (json.loads(data) if data.strip() else None)


def sha256d(b):
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


def b58check(payload):
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    data = payload + sha256d(payload)[:4]
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = alphabet[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def raw_tx(seed, segwit=False):
    prev = hashlib.sha256(seed.encode()).digest()
    tx = (2).to_bytes(4, "little")
    if segwit:
        tx += b"\x00\x01"
    tx += b"\x01" + prev + (0).to_bytes(4, "little") + b"\x00" + b"\xff\xff\xff\xff"
    tx += b"\x01" + (1000).to_bytes(8, "little") + b"\x01\x51"
    if segwit:
        tx += b"\x01\x20" + b"\x11" * 32
    tx += (0).to_bytes(4, "little")
    return tx


def bitcoin():
    user, password, cookie_file = sys.argv[3], sys.argv[4], sys.argv[5]
    c = Client(user + ":" + password)

    # auth: none, wrong, basic, cookie
    s, h, d = c.raw('{"method":"getblockcount","id":1}', auth=False)
    ok(s == 401 and h.get("www-authenticate") == 'Basic realm="jsonrpc"', "no auth -> 401 + WWW-Authenticate")
    s, _, _ = Client(user + ":wrong").raw('{"method":"getblockcount","id":1}')
    ok(s == 401, "wrong password -> 401")
    cookie = open(cookie_file).read().strip()
    ok(cookie.startswith("__cookie__:") and len(cookie) == 11 + 64, "cookie file __cookie__:<64 hex>")
    s, _, d = Client(cookie).call({"method": "getblockcount", "id": 1})
    ok(s == 200 and d["result"] >= 0, "cookie auth accepted")

    # envelope: legacy vs 2.0
    s, h, d = c.call({"method": "getblockcount", "id": 7})
    ok(s == 200 and d == {"result": d["result"], "error": None, "id": 7}, "legacy success shape")
    ok(len(h.get("x-request-id", "")) == 16, "X-Request-Id header")
    base = d["result"]
    s, _, d = c.call({"jsonrpc": "2.0", "method": "getblockcount", "id": "a"})
    ok(s == 200 and d == {"jsonrpc": "2.0", "result": base, "id": "a"}, "2.0 success shape (no error key)")
    s, _, d = c.call({"jsonrpc": "1.0", "method": "nosuch", "id": 1})
    ok(s == 404 and d["error"]["code"] == -32601 and d["result"] is None, "legacy method not found -> 404 -32601")
    s, _, d = c.call({"jsonrpc": "2.0", "method": "nosuch", "id": 1})
    ok(s == 200 and d["error"]["code"] == -32601 and "result" not in d, "2.0 method not found -> 200 -32601")
    s, _, d = c.raw('{"method": "getblockcount", "id": 1')
    d = json.loads(d)
    ok(s == 500 and d["error"]["code"] == -32700 and d["id"] is None, "parse error -> 500 -32700")
    s, _, d = c.call({"method": 12, "id": 1})
    ok(s == 400 and d["error"]["code"] == -32600, "method not a string -> 400 -32600")
    s, _, d = c.call({"jsonrpc": "3.0", "method": "getblockcount", "id": 1})
    ok(s == 400 and d["error"]["code"] == -32600, "unknown jsonrpc version -> 400 -32600")
    s, _, d = c.call({"method": "getblockcount", "params": "x", "id": 1})
    ok(s == 400 and d["error"]["code"] == -32600, "params not array/object -> 400 -32600")
    s, _, d = c.call({"method": "getblockhash", "params": [], "id": 1})
    ok(s == 500 and d["error"]["code"] == -32602, "missing argument -> -32602")
    s, _, d = c.call({"method": "getblockhash", "params": ["x"], "id": 1})
    ok(s == 500 and d["error"]["code"] == -3, "wrong type -> -3")
    s, _, d = c.call({"method": "getblockhash", "params": {"height": 0}, "id": 1})
    ok(s == 200 and len(d["result"]) == 64, "named params")
    s, _, d = c.call({"method": "getblockhash", "params": {"hight": 0}, "id": 1})
    ok(d["error"]["code"] == -8, "unknown named param -> -8")
    s, h, d = c.raw('{"jsonrpc":"2.0","method":"getblockcount"}')
    ok(s == 204 and d == b"", "2.0 notification -> 204 no body")
    s, h, d = c.raw('"just a string"')
    ok(s == 500 and json.loads(d)["error"]["code"] == -32700, "top-level non-object -> -32700")
    s, _, d = c.raw('{}', method="GET")
    ok(s == 405, "GET on RPC -> 405")

    # batches
    s, _, d = c.call([{"jsonrpc": "2.0", "method": "getblockcount", "id": 1},
                      {"jsonrpc": "2.0", "method": "nosuch", "id": 2},
                      {"jsonrpc": "2.0", "method": "getblockcount"},
                      {"method": "getblockhash", "params": [999999], "id": 3},
                      5])
    ok(s == 200 and len(d) == 4, "batch -> 200, notification omitted")
    ok(d[0]["result"] == base and d[1]["error"]["code"] == -32601, "batch elements in order")
    ok(d[2]["error"]["code"] == -8 and d[2]["id"] == 3 and "result" in d[2], "batch legacy element shape, -8 out of range")
    ok(d[3]["error"]["code"] == -32600 and d[3]["id"] is None, "batch non-object element -> -32600")
    s, _, d = c.call([])
    ok(s == 200 and d == [], "empty batch -> []")
    s, _, d = c.raw('[{"jsonrpc":"2.0","method":"getblockcount"}]')
    ok(s == 204, "all-notification batch -> 204")

    # chain methods
    addr = b58check(b"\x6f" + b"\x22" * 20)
    s, _, d = c.call({"method": "generatetoaddress", "params": [3, addr], "id": 1})
    ok(s == 200 and len(d["result"]) == 3, "generatetoaddress 3")
    hashes = d["result"]
    s, _, d = c.call({"method": "generatetoaddress", "params": [1, "notanaddress"], "id": 1})
    ok(s == 500 and d["error"]["code"] == -5, "invalid address -> -5")
    s, _, d = c.call({"method": "generatetoaddress", "params": [1, "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"], "id": 1})
    ok(d["error"]["code"] == -5, "mainnet address on regtest -> -5")
    s, _, d = c.call({"method": "generate", "params": [1], "id": 1})
    ok(len(d["result"]) == 1, "generate 1")
    hashes += d["result"]
    s, _, d = c.call({"method": "getblockcount", "id": 1})
    ok(d["result"] == base + 4, "height grew by 4")
    height = d["result"]
    s, _, d = c.call({"method": "getbestblockhash", "id": 1})
    ok(d["result"] == hashes[-1], "getbestblockhash is the last generated")
    s, _, d = c.call({"method": "getblockhash", "params": [height], "id": 1})
    ok(d["result"] == hashes[-1], "getblockhash(tip)")
    s, _, d = c.call({"method": "getblockhash", "params": [-1], "id": 1})
    ok(d["error"]["code"] == -8 and d["error"]["message"] == "Block height out of range", "getblockhash -1 -> -8")
    s, _, d = c.call({"method": "getblockheader", "params": [hashes[0]], "id": 1})
    hdr = d["result"]
    ok(hdr["height"] == base + 1 and hdr["nextblockhash"] == hashes[1] and hdr["bits"] == "207fffff", "getblockheader verbose")
    s, _, d = c.call({"method": "getblockheader", "params": [hashes[0], False], "id": 1})
    raw = bytes.fromhex(d["result"])
    ok(len(raw) == 80 and sha256d(raw)[::-1].hex() == hashes[0], "header hex hashes (double SHA-256) to the block hash")
    s, _, d = c.call({"method": "getblockheader", "params": ["00" * 32], "id": 1})
    ok(s == 500 and d["error"]["code"] == -5, "unknown block -> -5")
    s, _, d = c.call({"method": "getblockheader", "params": ["zz"], "id": 1})
    ok(d["error"]["code"] == -8, "bad hash length -> -8")
    s, _, d = c.call({"method": "getblock", "params": [hashes[0]], "id": 1})
    ok(d["result"]["tx"] and len(d["result"]["tx"][0]) == 64 and d["result"]["height"] == base + 1, "getblock verbosity 1")
    s, _, d = c.call({"method": "getblock", "params": [hashes[0], 2], "id": 1})
    cb = d["result"]["tx"][0]
    ok("coinbase" in cb["vin"][0] and cb["vout"][0]["value"] == 50.0, "getblock verbosity 2 decodes the coinbase")
    ok(cb["vout"][0]["scriptPubKey"]["hex"] == "76a914" + "22" * 20 + "88ac", "coinbase pays the address script")
    s, _, d = c.call({"method": "getblock", "params": [hashes[0], 0], "id": 1})
    ok(sha256d(bytes.fromhex(d["result"])[:80])[::-1].hex() == hashes[0], "getblock verbosity 0 is the serialized block")
    s, _, d = c.call({"method": "getblockchaininfo", "id": 1})
    ok(d["result"]["blocks"] == height and d["result"]["bestblockhash"] == hashes[-1] and d["result"]["chain"] == "regtest", "getblockchaininfo")

    # mempool
    tx1, tx2 = raw_tx("a"), raw_tx("b", segwit=True)
    s, _, d = c.call({"method": "sendrawtransaction", "params": [tx1.hex()], "id": 1})
    txid1 = sha256d(tx1)[::-1].hex()
    ok(d["result"] == txid1, "sendrawtransaction returns the txid")
    s, _, d = c.call({"method": "sendrawtransaction", "params": [tx2.hex()], "id": 1})
    nowit = tx2[:4] + tx2[6:6 + 41 + 1 + 11] + tx2[-4:]
    txid2 = sha256d(nowit)[::-1].hex()
    ok(d["result"] == txid2, "segwit tx: txid excludes the witness")
    s, _, d = c.call({"method": "sendrawtransaction", "params": [tx1.hex()], "id": 1})
    ok(d["result"] == txid1, "resubmission answers the txid again")
    for bad, what in [("zz", "non-hex"), (tx1.hex() + "00", "trailing bytes"), (tx1.hex()[:-10], "truncated"), ("", "empty")]:
        s, _, d = c.call({"method": "sendrawtransaction", "params": [bad], "id": 1})
        ok(s == 500 and d["error"]["code"] == -22 and "TX decode failed" in d["error"]["message"], "malformed tx (%s) -> -22" % what)
    s, _, d = c.call({"method": "getmempoolinfo", "id": 1})
    ok(d["result"]["size"] == 2 and d["result"]["bytes"] == len(tx1) + len(tx2), "getmempoolinfo size/bytes")
    s, _, d = c.call({"method": "getrawmempool", "id": 1})
    ok(sorted(d["result"]) == sorted([txid1, txid2]), "getrawmempool")
    s, _, d = c.call({"method": "getrawmempool", "params": [True], "id": 1})
    ok(d["result"][txid1]["vsize"] == len(tx1), "getrawmempool verbose")
    s, _, d = c.call({"method": "getblocktemplate", "params": [{"rules": ["segwit"]}], "id": 1})
    ok(len(d["result"]["transactions"]) == 2 and d["result"]["height"] == height + 1, "getblocktemplate lists the mempool")
    s, _, d = c.call({"method": "getblocktemplate", "id": 1})
    ok(d["error"]["code"] == -8 and "segwit" in d["error"]["message"], "getblocktemplate without segwit rule -> -8")
    s, _, d = c.call({"method": "generate", "params": [1], "id": 1})
    s, _, d = c.call({"method": "getblock", "params": [d["result"][0]], "id": 1})
    ok(d["result"]["tx"][1:] == [txid1, txid2], "mined block carries the mempool txs")
    s, _, d = c.call({"method": "getmempoolinfo", "id": 1})
    ok(d["result"]["size"] == 0, "mempool emptied by the block")
    s, _, d = c.call({"method": "sendrawtransaction", "params": [tx1.hex()], "id": 1})
    ok(d["error"]["code"] == -27, "confirmed tx resubmitted -> -27")

    # network and misc
    s, _, d = c.call({"method": "getnetworkinfo", "id": 1})
    ok(d["result"]["subversion"].startswith("/cc-node:") and d["result"]["connections"] == 0, "getnetworkinfo")
    s, _, d = c.call({"method": "getpeerinfo", "id": 1})
    ok(d["result"] == [], "getpeerinfo")
    s, _, d = c.call({"method": "getconnectioncount", "id": 1})
    ok(d["result"] == 0, "getconnectioncount")
    s, _, d = c.call({"method": "uptime", "id": 1})
    ok(isinstance(d["result"], int) and d["result"] >= 0, "uptime")
    s, _, d = c.call({"method": "help", "id": 1})
    ok("getblockcount" in d["result"] and "generatetoaddress" in d["result"], "help lists commands")
    s, _, d = c.call({"method": "help", "params": ["getblockhash"], "id": 1})
    ok(d["result"].startswith("getblockhash"), "help <command>")
    s, _, d = c.call({"method": "help", "params": ["nosuch"], "id": 1})
    ok("unknown command" in d["result"], "help unknown command")
    print("STATE %d %s" % (height + 1, txid1))


def evm():
    c = Client()
    def call(method, params=None, id=1):
        return c.call({"jsonrpc": "2.0", "method": method, "params": params or [], "id": id})

    s, _, d = call("eth_chainId")
    ok(s == 200 and d == {"jsonrpc": "2.0", "result": "0x539", "id": 1}, "eth_chainId 1337")
    s, _, d = call("net_version")
    ok(d["result"] == "1337", "net_version decimal")
    s, _, d = call("web3_clientVersion")
    ok(d["result"].startswith("cc-node/"), "web3_clientVersion")
    s, _, d = call("eth_blockNumber")
    ok(d["result"].startswith("0x") and (d["result"] == "0x0" or not d["result"].startswith("0x0")), "eth_blockNumber hex quantity")
    s, _, d = call("eth_gasPrice")
    ok(d["result"] == "0x3b9aca00", "eth_gasPrice")
    s, _, d = call("eth_getBalance", ["0x" + "ab" * 20, "latest"])
    ok(d["result"] == "0x0", "eth_getBalance")
    s, _, d = call("eth_getBalance", ["ab" * 20, "latest"])
    ok(d["error"]["code"] == -32602 and "0x prefix" in d["error"]["message"], "eth_getBalance without 0x -> -32602")
    s, _, d = call("eth_getBalance", ["0x1234", "latest"])
    ok(d["error"]["code"] == -32602, "eth_getBalance short address -> -32602")
    s, _, d = call("eth_getBalance", [])
    ok(d["error"]["code"] == -32602, "missing argument -> -32602")
    s, _, d = call("eth_getBlockByNumber", ["latest", False])
    blk = d["result"]
    ok(blk["number"] == "0x0" or blk["number"].startswith("0x"), "eth_getBlockByNumber latest")
    for k in ["hash", "parentHash", "timestamp", "gasLimit", "gasUsed", "miner", "extraData", "baseFeePerGas", "transactions", "nonce", "difficulty"]:
        if k not in blk:
            fail("block lacks " + k)
    ok(len(blk["hash"]) == 66, "block object has the Ethereum fields")
    s, _, d = call("eth_getBlockByHash", [blk["hash"], False])
    ok(d["result"]["number"] == blk["number"], "eth_getBlockByHash")
    s, _, d = call("eth_getBlockByHash", ["0x" + "00" * 32, False])
    ok(d["result"] is None, "unknown hash -> null")
    s, _, d = call("eth_getBlockByNumber", ["0xffffff", False])
    ok(d["result"] is None, "future number -> null")
    s, _, d = call("eth_getBlockByNumber", ["0x01", False])
    ok(d["error"]["code"] == -32602, "leading zero quantity -> -32602")
    s, _, d = call("eth_getBlockByNumber", ["earliest", True])
    ok(d["result"]["number"] == "0x0", "earliest -> genesis")
    # A legacy signed tx shape: RLP list of 9 items.
    items = [b"\x01", b"\x3b\x9a\xca\x00", b"\x52\x08", b"\x11" * 20, b"\x01", b"", b"\x1b", b"\x22" * 32, b"\x33" * 32]
    def rlp_item(b):
        if len(b) == 1 and b[0] < 0x80:
            return b
        return bytes([0x80 + len(b)]) + b
    payload = b"".join(rlp_item(i) for i in items)
    tx = bytes([0xc0 + len(payload)]) + payload if len(payload) < 56 else bytes([0xf8, len(payload)]) + payload
    s, _, d = call("eth_sendRawTransaction", ["0x" + tx.hex()])
    ok(s == 200 and len(d["result"]) == 66, "eth_sendRawTransaction returns the hash")
    txhash = d["result"]
    s, _, d = call("eth_sendRawTransaction", ["0x" + tx.hex()])
    ok(d["error"]["code"] == -32000 and d["error"]["message"] == "already known", "duplicate -> already known")
    s, _, d = call("eth_sendRawTransaction", ["0x" + tx.hex() + "00"])
    ok(d["error"]["code"] == -32000 and "rlp" in d["error"]["message"], "trailing bytes -> rlp error")
    s, _, d = call("eth_sendRawTransaction", ["0xzz"])
    ok(d["error"]["code"] == -32602, "bad hex -> -32602")
    s, _, d = call("eth_nosuch")
    ok(s == 200 and d["error"]["code"] == -32601, "unknown method -> -32601, HTTP 200")
    s, _, d = c.raw('{"jsonrpc":"2.0",')
    d = json.loads(d)
    ok(s == 200 and d["error"]["code"] == -32700 and d["jsonrpc"] == "2.0", "parse error -> 200 -32700")
    s, _, d = c.call({"method": "eth_chainId", "id": 1})
    ok(d["error"]["code"] == -32600, "missing jsonrpc -> -32600")
    s, _, d = c.call([])
    ok(s == 200 and d["error"]["code"] == -32600, "empty batch -> single -32600")
    s, _, d = c.call([{"jsonrpc": "2.0", "method": "eth_chainId", "id": 1}, {"jsonrpc": "2.0", "method": "eth_blockNumber", "id": 2}])
    ok(s == 200 and [x["id"] for x in d] == [1, 2], "batch")
    s, _, d = c.raw('{"jsonrpc":"2.0","method":"eth_chainId"}')
    ok(s == 204, "notification -> 204")
    print("STATE %s" % txhash)


if sys.argv[1] == "bitcoin":
    bitcoin()
else:
    evm()
print("%d passed, 0 failed" % checks)
