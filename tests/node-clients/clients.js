// Drives cc-node with real third-party clients: bitcoin-core (Bitcoin Core's
// RPC client for Node.js) and ethers v6 (JsonRpcProvider).
//   node clients.js bitcoin URL USER PASSWORD [--proxied]
//   node clients.js evm URL CHAIN_ID
// Prints one "ok:" line per check and "N passed, 0 failed"; exits 1 on failure.
'use strict';
const assert = require('node:assert/strict');
const crypto = require('node:crypto');

let passed = 0;
function ok(cond, msg) {
  assert.ok(cond, msg);
  passed++;
  console.log('ok: ' + msg);
}

function b58check(payload) {
  const alphabet = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
  const sha = (b) => crypto.createHash('sha256').update(b).digest();
  const data = Buffer.concat([payload, sha(sha(payload)).subarray(0, 4)]);
  let n = BigInt('0x' + data.toString('hex'));
  let out = '';
  while (n > 0n) { out = alphabet[Number(n % 58n)] + out; n /= 58n; }
  for (const b of data) { if (b !== 0) break; out = '1' + out; }
  return out;
}

async function bitcoin(url, username, password, proxied) {
  const Client = require('bitcoin-core');
  const client = new Client({ host: url, username, password, timeout: 10000 });
  const start = await client.getBlockCount();
  ok(Number.isInteger(start), 'getBlockCount ' + start);
  const addr = b58check(Buffer.concat([Buffer.from([0x6f]), crypto.randomBytes(20)]));
  const hashes = await client.generateToAddress(2, addr);
  ok(hashes.length === 2, 'generateToAddress 2 -> ' + hashes[1].slice(0, 16));
  ok(await client.getBestBlockHash() === hashes[1], 'getBestBlockHash');
  ok(await client.getBlockHash(start + 2) === hashes[1], 'getBlockHash');
  const block = await client.getBlock(hashes[0]);
  ok(block.height === start + 1 && block.nextblockhash === hashes[1], 'getBlock');
  const header = await client.getBlockHeader(hashes[1]);
  ok(header.previousblockhash === hashes[0], 'getBlockHeader');
  const info = await client.getBlockchainInfo();
  ok(info.blocks === start + 2 && info.chain === 'regtest', 'getBlockchainInfo');
  const net = await client.getNetworkInfo();
  ok(net.subversion.startsWith('/cc-node:'), 'getNetworkInfo ' + net.subversion);
  ok((await client.getMempoolInfo()).loaded === true, 'getMempoolInfo');
  ok(await client.command('getblockhash', start + 1) === hashes[0], 'command(getblockhash)');
  // batch through the client's batch API
  const batch = await client.command([{ method: 'getblockcount' }, { method: 'getbestblockhash' }]);
  ok(batch[0] === start + 2 && batch[1] === hashes[1], 'batch command');
  // error mapping: Bitcoin Core codes surface as RpcError codes
  await assert.rejects(client.getBlockHash(999999), (e) => e.code === -8);
  ok(true, 'getBlockHash out of range -> code -8');
  await assert.rejects(client.sendRawTransaction('00'), (e) => e.code === -22);
  ok(true, 'sendRawTransaction malformed -> code -22');
  await assert.rejects(client.command('nosuchmethod'), (e) => e.code === -32601);
  ok(true, 'unknown method -> code -32601');
  if (proxied) {
    ok(true, 'client without node credentials served (the proxy authenticates)');
    return;
  }
  const bad = new Client({ host: url, username, password: 'wrong', timeout: 10000 });
  await assert.rejects(bad.getBlockCount(), (e) => e.code === 401 || /401|Unauthorized/i.test(String(e.message)));
  ok(true, 'wrong password -> 401');
}

async function evm(url, chainId) {
  const { JsonRpcProvider, Wallet, Network } = require('ethers');
  const provider = new JsonRpcProvider(url, undefined, { staticNetwork: false });
  const network = await provider.getNetwork();
  ok(network.chainId === BigInt(chainId), 'getNetwork chainId ' + network.chainId);
  const n = await provider.getBlockNumber();
  ok(Number.isInteger(n), 'getBlockNumber ' + n);
  const latest = await provider.getBlock('latest');
  ok(latest.number === n && latest.hash.length === 66, 'getBlock(latest)');
  const byHash = await provider.getBlock(latest.hash);
  ok(byHash.number === n, 'getBlock(hash)');
  const genesis = await provider.getBlock(0);
  ok(genesis.number === 0 && genesis.parentHash === '0x' + '00'.repeat(32), 'getBlock(0)');
  ok(await provider.getBlock(n + 1000) === null, 'getBlock(future) -> null');
  const wallet = Wallet.createRandom();
  ok((await provider.getBalance(wallet.address)) === 0n, 'getBalance');
  const fee = await provider.getFeeData();
  ok(fee.gasPrice === 1000000000n, 'getFeeData gasPrice 1 gwei');
  ok((await provider.send('web3_clientVersion', [])).startsWith('cc-node/'), 'web3_clientVersion');
  ok((await provider.send('net_version', [])) === String(chainId), 'net_version');
  // a real signed EIP-1559 transaction; ethers checks the returned hash itself
  const signed = await wallet.signTransaction({
    type: 2, chainId: BigInt(chainId), nonce: 0, to: Wallet.createRandom().address,
    value: 1n, gasLimit: 21000n, maxFeePerGas: 2000000000n, maxPriorityFeePerGas: 1000000000n,
  });
  const tx = await provider.broadcastTransaction(signed);
  ok(tx.hash.length === 66, 'broadcastTransaction (Keccak-256 hash matches ethers)');
  await assert.rejects(provider.send('eth_sendRawTransaction', ['0x1234']), /rlp/);
  ok(true, 'malformed raw transaction rejected');
  await assert.rejects(provider.send('eth_nosuch', []), /does not exist/);
  ok(true, 'unknown method rejected');
  provider.destroy();
}

(async () => {
  const [flavour, url, a, b, c] = process.argv.slice(2);
  if (flavour === 'bitcoin') await bitcoin(url, a, b, c === '--proxied');
  else await evm(url, Number(a));
  console.log(`${passed} passed, 0 failed`);
})().catch((e) => {
  console.error('FAIL:', e);
  process.exit(1);
});
