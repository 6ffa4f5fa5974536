/* The evm flavour's methods: JSON-RPC 2.0 with hex quantities as the
 * Ethereum execution API specifies (0x-prefixed, no leading zeros). The chain
 * underneath is the same block store; block hashes are shown in internal
 * byte order and transaction hashes are Keccak-256 of the signed bytes. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block.h"
#include "chain.h"
#include "codec.h"
#include "mempool.h"
#include "peermgr.h"
#include "node.h"
#include "rpc_evm.h"
#include "tx.h"

#define GAS_PRICE_WEI 1000000000ULL /* 1 gwei */
#define BLOCK_GAS_LIMIT 30000000ULL

static json_t *quantity(uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "0x%" PRIx64, v);
    return json_string(buf);
}

static json_t *data_json(const uint8_t *p, size_t len)
{
    char *hex = malloc(len * 2 + 3);
    if (!hex)
        return NULL;
    hex[0] = '0';
    hex[1] = 'x';
    node_codec_hex_encode(p, len, 0, hex + 2);
    json_t *s = json_string(hex);
    free(hex);
    return s;
}

static int oom(struct node_method_error *e)
{
    return node_method_fail(e, RPC_INTERNAL_ERROR, "out of memory");
}

/* A 0x-prefixed hex string of exactly `bytes` bytes (0: any even length). */
static int arg_data(json_t *params, size_t i, size_t bytes, uint8_t **out, size_t *len,
                    struct node_method_error *e)
{
    json_t *v = json_array_get(params, i);
    const char *s = json_string_value(v);
    *out = NULL;
    if (!s)
        return node_method_fail(e, RPC_INVALID_PARAMS,
                                "invalid argument %zu: json: cannot unmarshal "
                                "non-string into Go value of type hexutil.Bytes",
                                i);
    if (strncmp(s, "0x", 2) != 0 && strncmp(s, "0X", 2) != 0)
        return node_method_fail(e, RPC_INVALID_PARAMS,
                                "invalid argument %zu: hex string without 0x prefix", i);
    if (node_codec_hex_decode(s + 2, strlen(s + 2), out, len) != 0) {
        if (errno == ENOMEM)
            return oom(e);
        return node_method_fail(e, RPC_INVALID_PARAMS,
                                "invalid argument %zu: json: cannot unmarshal invalid hex string",
                                i);
    }
    if (bytes && *len != bytes) {
        free(*out);
        *out = NULL;
        return node_method_fail(e, RPC_INVALID_PARAMS,
                                "invalid argument %zu: hex string has length %zu, want %zu", i,
                                *len * 2, bytes * 2);
    }
    return 0;
}

/* Block number or tag. Sets *height; -1 when the number is beyond the tip
 * (a null result, not an error). */
static int arg_block(struct node *n, json_t *params, size_t i, int64_t *height,
                     struct node_method_error *e)
{
    const char *s = json_string_value(json_array_get(params, i));
    int64_t tip = node_chain_height(n->chain);
    if (!s)
        return node_method_fail(e, RPC_INVALID_PARAMS,
                                "invalid argument %zu: block number or tag "
                                "must be a string",
                                i);
    if (!strcmp(s, "latest") || !strcmp(s, "safe") || !strcmp(s, "finalized") ||
        !strcmp(s, "pending")) {
        *height = tip;
        return 0;
    }
    if (!strcmp(s, "earliest")) {
        *height = 0;
        return 0;
    }
    if (strncmp(s, "0x", 2) != 0 || !s[2] || strlen(s) > 18 || (s[2] == '0' && s[3]))
        return node_method_fail(e, RPC_INVALID_PARAMS,
                                "invalid argument %zu: hex number with "
                                "leading zero digits or without 0x prefix",
                                i);
    char *end;
    unsigned long long v = strtoull(s + 2, &end, 16);
    if (*end)
        return node_method_fail(e, RPC_INVALID_PARAMS, "invalid argument %zu: invalid hex number",
                                i);
    *height = v > (unsigned long long)tip ? -1 : (int64_t)v;
    return 0;
}

static int arg_bool(json_t *params, size_t i, int *out, struct node_method_error *e)
{
    json_t *v = json_array_get(params, i);
    if (!v) {
        *out = 0;
        return 0;
    }
    if (!json_is_boolean(v))
        return node_method_fail(e, RPC_INVALID_PARAMS,
                                "invalid argument %zu: json: cannot unmarshal "
                                "into Go value of type bool",
                                i);
    *out = json_is_true(v);
    return 0;
}

static int m_block_number(struct node *n, json_t *params, json_t **result,
                          struct node_method_error *e)
{
    (void)params;
    *result = quantity((uint64_t)node_chain_height(n->chain));
    return *result ? 0 : oom(e);
}

static int m_chain_id(struct node *n, json_t *params, json_t **result, struct node_method_error *e)
{
    (void)params;
    *result = quantity((uint64_t)n->cfg->node.chain_id);
    return *result ? 0 : oom(e);
}

static int m_net_version(struct node *n, json_t *params, json_t **result,
                         struct node_method_error *e)
{
    char buf[24];
    (void)params;
    snprintf(buf, sizeof(buf), "%lld", (long long)n->cfg->node.chain_id);
    *result = json_string(buf);
    return *result ? 0 : oom(e);
}

/* false, or the progress object geth answers while it syncs. */
static int m_syncing(struct node *n, json_t *params, json_t **result, struct node_method_error *e)
{
    int64_t start = node_peermgr_sync_start(n->peers), best = node_peermgr_best_height(n->peers);
    int64_t h = node_chain_height(n->chain);
    (void)params;
    if (!node_peermgr_syncing(n->peers))
        *result = json_false();
    else
        *result =
            json_pack("{s:o,s:o,s:o}", "startingBlock", quantity((uint64_t)(start < 0 ? h : start)),
                      "currentBlock", quantity((uint64_t)h), "highestBlock",
                      quantity((uint64_t)(best > h ? best : h)));
    return *result ? 0 : oom(e);
}

static int m_peer_count(struct node *n, json_t *params, json_t **result,
                        struct node_method_error *e)
{
    size_t in, out;
    (void)params;
    node_peermgr_counts(n->peers, &in, &out);
    *result = quantity((uint64_t)(in + out));
    return *result ? 0 : oom(e);
}

static int m_client_version(struct node *n, json_t *params, json_t **result,
                            struct node_method_error *e)
{
    (void)n;
    (void)params;
    *result = json_string("cc-node/v" NODE_VERSION "/linux-amd64/c11");
    return *result ? 0 : oom(e);
}

static int m_gas_price(struct node *n, json_t *params, json_t **result, struct node_method_error *e)
{
    (void)n;
    (void)params;
    *result = quantity(GAS_PRICE_WEI);
    return *result ? 0 : oom(e);
}

static int m_get_balance(struct node *n, json_t *params, json_t **result,
                         struct node_method_error *e)
{
    uint8_t *addr;
    size_t len;
    int64_t height = 0;
    if (arg_data(params, 0, 20, &addr, &len, e) != 0)
        return -1;
    free(addr);
    if (json_array_size(params) > 1 && arg_block(n, params, 1, &height, e) != 0)
        return -1;
    if (json_array_size(params) > 1 && height < 0)
        return node_method_fail(e, RPC_SERVER_ERROR, "header not found");
    /* No account state is kept: every account holds zero. */
    *result = quantity(0);
    return *result ? 0 : oom(e);
}

/* An Ethereum-shaped block object for the block at `height`. */
static json_t *block_json(struct node *n, int64_t height, int full, struct node_method_error *e)
{
    struct node_block_meta b;
    uint8_t *raw = NULL;
    size_t len;
    char err[256];
    struct node_slice *txs = NULL;
    json_t *o = NULL, *list = NULL;
    static const uint8_t zero32[32], zero20[20], zero8[8], zero256[256];

    if (node_chain_get(n->chain, height, &b) != 0)
        return json_null();
    if (node_chain_read_block(n->chain, height, &raw, &len, err, sizeof(err)) != 0) {
        /* The header is kept, the body is gone: an error, not null ("not
         * found") that a client would take for a block that never was. */
        if (node_chain_is_pruned(n->chain, height))
            node_method_fail(e, RPC_SERVER_ERROR, "block pruned");
        else
            node_method_fail(e, RPC_SERVER_ERROR, "block unavailable: %s", err);
        return NULL;
    }
    txs = calloc(b.ntx ? b.ntx : 1, sizeof(*txs));
    list = json_array();
    if (!txs || !list || node_block_txs(raw, len, txs, b.ntx) != (long)b.ntx)
        goto fail;
    for (uint32_t i = 0; i < b.ntx; i++) {
        uint8_t h[32];
        json_t *t;
        node_codec_keccak256(txs[i].p, txs[i].len, h);
        if (full)
            t = json_pack("{s:o,s:o,s:o,s:o,s:o}", "hash", data_json(h, 32), "blockHash",
                          data_json(b.hash, 32), "blockNumber", quantity((uint64_t)height),
                          "transactionIndex", quantity(i), "raw", data_json(txs[i].p, txs[i].len));
        else
            t = data_json(h, 32);
        if (!t || json_array_append_new(list, t) != 0)
            goto fail;
    }
    o = json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,"
                  "s:O,s:[]}",
                  "number", quantity((uint64_t)height), "hash", data_json(b.hash, 32), "parentHash",
                  data_json(height > 0 ? b.header.prev : zero32, 32), "nonce", data_json(zero8, 8),
                  "sha3Uncles", data_json(zero32, 32), "logsBloom", data_json(zero256, 256),
                  "transactionsRoot", data_json(b.header.merkle, 32), "stateRoot",
                  data_json(zero32, 32), "receiptsRoot", data_json(zero32, 32), "miner",
                  data_json(zero20, 20), "difficulty", quantity(0), "totalDifficulty", quantity(0),
                  "extraData", data_json(NULL, 0), "size", quantity(b.size), "gasLimit",
                  quantity(BLOCK_GAS_LIMIT), "gasUsed", quantity(0), "timestamp",
                  quantity(b.header.time), "baseFeePerGas", quantity(GAS_PRICE_WEI), "mixHash",
                  data_json(zero32, 32), "transactions", list, "uncles");
    if (!o)
        goto fail;
    json_decref(list);
    free(txs);
    free(raw);
    return o;
fail:
    json_decref(list);
    free(txs);
    free(raw);
    oom(e);
    return NULL;
}

static int m_get_block_by_number(struct node *n, json_t *params, json_t **result,
                                 struct node_method_error *e)
{
    int64_t height = 0;
    int full = 0;
    if (arg_block(n, params, 0, &height, e) != 0 || arg_bool(params, 1, &full, e) != 0)
        return -1;
    *result = height < 0 ? json_null() : block_json(n, height, full, e);
    return *result ? 0 : -1;
}

static int m_get_block_by_hash(struct node *n, json_t *params, json_t **result,
                               struct node_method_error *e)
{
    uint8_t *hash;
    size_t len;
    int64_t height = 0;
    int full = 0;
    if (arg_data(params, 0, 32, &hash, &len, e) != 0 || arg_bool(params, 1, &full, e) != 0) {
        free(hash);
        return -1;
    }
    int found = node_chain_find(n->chain, hash, &height) == 0;
    free(hash);
    *result = found ? block_json(n, height, full, e) : json_null();
    return *result ? 0 : -1;
}

static int m_send_raw_transaction(struct node *n, json_t *params, json_t **result,
                                  struct node_method_error *e)
{
    uint8_t *raw, hash[32];
    size_t len;
    char why[160];
    int rc;

    if (arg_data(params, 0, 0, &raw, &len, e) != 0)
        return -1;
    if (node_tx_evm_check(raw, len, why, sizeof(why)) != 0) {
        free(raw);
        return node_method_fail(e, RPC_SERVER_ERROR, "%s", why);
    }
    node_codec_keccak256(raw, len, hash);
    rc = node_mempool_add(n->mempool, hash, raw, len, len * 4);
    free(raw);
    if (rc == NODE_MEMPOOL_DUPLICATE)
        return node_method_fail(e, RPC_SERVER_ERROR, "already known");
    if (rc == NODE_MEMPOOL_FULL)
        return node_method_fail(e, RPC_SERVER_ERROR, "txpool is full");
    if (rc != NODE_MEMPOOL_ADDED)
        return oom(e);
    *result = data_json(hash, 32);
    return *result ? 0 : oom(e);
}

const struct node_method node_rpc_evm_methods[] = {
    {"eth_blockNumber", m_block_number, 0, 0, {NULL}, "eth_blockNumber"},
    {"eth_chainId", m_chain_id, 0, 0, {NULL}, "eth_chainId"},
    {"eth_gasPrice", m_gas_price, 0, 0, {NULL}, "eth_gasPrice"},
    {"eth_getBalance", m_get_balance, 1, 2, {"address", "block"}, "eth_getBalance address block"},
    {"eth_getBlockByHash",
     m_get_block_by_hash,
     1,
     2,
     {"hash", "full"},
     "eth_getBlockByHash hash full"},
    {"eth_getBlockByNumber",
     m_get_block_by_number,
     1,
     2,
     {"number", "full"},
     "eth_getBlockByNumber number full"},
    {"eth_sendRawTransaction",
     m_send_raw_transaction,
     1,
     1,
     {"data"},
     "eth_sendRawTransaction data"},
    {"eth_syncing", m_syncing, 0, 0, {NULL}, "eth_syncing"},
    {"net_peerCount", m_peer_count, 0, 0, {NULL}, "net_peerCount"},
    {"net_version", m_net_version, 0, 0, {NULL}, "net_version"},
    {"web3_clientVersion", m_client_version, 0, 0, {NULL}, "web3_clientVersion"},
    {NULL, NULL, 0, 0, {NULL}, NULL},
};
