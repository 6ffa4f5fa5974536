// A WebSocket backend and client (npm ws) for the upgrade policy test:
//   node ws.js server PORT        echo server that accepts every upgrade; any
//                                 plain request (HAProxy's health check too)
//                                 gets 200 with a JSON-RPC body. Prints
//                                 "upgrade N" for each upgrade it accepts.
//   node ws.js client URL HOST N  open a WebSocket to URL with Host HOST, send
//                                 N messages, check each echo; prints
//                                 "ok N messages, B bytes" (exit 0), or
//                                 "refused STATUS" when the handshake is
//                                 answered without 101 (exit 3).
'use strict';
const http = require('node:http');
const { WebSocketServer, WebSocket } = require('ws');

const [mode, a, b, c] = process.argv.slice(2);

if (mode === 'server') {
  let upgrades = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"jsonrpc":"2.0","id":1,"result":"plain"}');
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    upgrades++;
    console.log(`upgrade ${upgrades}`);
    wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (m) => ws.send(m)));
  });
  server.listen(Number(a), '127.0.0.1', () => console.log('listening'));
} else if (mode === 'client') {
  const n = Number(c);
  const ws = new WebSocket(a, { headers: { Host: b }, handshakeTimeout: 5000 });
  let got = 0;
  let bytes = 0;
  ws.on('unexpected-response', (req, res) => {
    console.log(`refused ${res.statusCode}`);
    process.exit(3);
  });
  ws.on('open', () => {
    for (let i = 0; i < n; i++) ws.send(`{"jsonrpc":"2.0","id":${i},"method":"eth_blockNumber"}`);
  });
  ws.on('message', (m) => {
    const want = `{"jsonrpc":"2.0","id":${got},"method":"eth_blockNumber"}`;
    if (m.toString() !== want) {
      console.log(`bad echo ${m}`);
      process.exit(1);
    }
    got++;
    bytes += m.length;
    if (got === n) ws.close();
  });
  ws.on('close', () => {
    console.log(`ok ${got} messages, ${bytes} bytes`);
    process.exit(got === n ? 0 : 1);
  });
  ws.on('error', (e) => {
    console.log(`error ${e.message}`);
    process.exit(1);
  });
} else {
  console.error('usage: ws.js server PORT | ws.js client URL HOST N');
  process.exit(2);
}
