/* Block templates for miners, and blocks produced on request. */
#include "rpc_btcmining.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "address.h"
#include "block.h"
#include "btcjson.h"
#include "chain.h"
#include "codec.h"
#include "mempool.h"
#include "node.h"
#include "tx.h"

#define MAX_GENERATE 1000 /* blocks per generate call: bounds one request's time */

static int has_segwit_rule(json_t *req)
{
    json_t *rules = json_object_get(req, "rules"), *r;
    size_t i;
    json_array_foreach(rules, i, r)
    {
        if (json_is_string(r) && strcmp(json_string_value(r), "segwit") == 0)
            return 1;
    }
    return 0;
}

int node_rpc_btcmining_getblocktemplate(struct node *n, json_t *params, json_t **result,
                                        struct node_method_error *e)
{
    json_t *req = json_array_get(params, 0), *txs = NULL, *o = NULL;
    struct node_mempool_entry *entries = NULL;
    struct node_block_meta tip;
    size_t count = 0;
    int64_t h = node_chain_height(n->chain);
    char longpoll[96], tiphex[65];

    if (req && !json_is_object(req))
        return node_method_fail(e, RPC_TYPE_ERROR,
                                "JSON value of type %s is not of expected type object",
                                node_btcjson_type_name(req));
    if (!req || !has_segwit_rule(req))
        return node_method_fail(
            e, RPC_INVALID_PARAMETER,
            "getblocktemplate must be called with the segwit rule set (call with "
            "{\"rules\": [\"segwit\"]})");
    if (node_chain_get(n->chain, h, &tip) != 0 ||
        node_mempool_snapshot(n->mempool, NODE_MAX_BLOCK_WEIGHT - 4000, &entries, &count) != 0)
        return node_btcjson_oom(e);
    txs = json_array();
    for (size_t i = 0; txs && i < count; i++) {
        struct node_tx tx;
        char why[64];
        if (node_tx_decode(entries[i].raw, entries[i].len, &tx, why, sizeof(why)) != 0)
            continue;
        json_t *t = json_pack("{s:o,s:o,s:o,s:[],s:i,s:i,s:I}", "data",
                              node_btcjson_hex(entries[i].raw, entries[i].len), "txid",
                              node_btcjson_hash(tx.txid), "hash", node_btcjson_hash(tx.wtxid),
                              "depends", "fee", 0, "sigops", 0, "weight", (json_int_t)tx.weight);
        node_tx_free(&tx);
        if (!t || json_array_append_new(txs, t) != 0) {
            json_decref(txs);
            txs = NULL;
        }
    }
    node_codec_hex_encode(tip.hash, 32, 1, tiphex);
    snprintf(longpoll, sizeof(longpoll), "%s%zu", tiphex, count);
    if (txs)
        o = json_pack("{s:[sss],s:{},s:i,s:[s],s:i,s:s,s:O,s:I,s:s,s:I,s:[sss],s:s,s:i,s:i,s:i,"
                      "s:I,s:s,s:I,s:s}",
                      "rules", "csv", "!segwit", "taproot", "vbavailable", "vbrequired", 0,
                      "capabilities", "proposal", "version", 0x20000000, "previousblockhash",
                      tiphex, "transactions", txs, "coinbasevalue",
                      (json_int_t)node_block_subsidy(h + 1), "longpollid", longpoll, "mintime",
                      (json_int_t)node_chain_median_time(n->chain, h) + 1, "mutable", "time",
                      "transactions", "prevblock", "noncerange", "00000000ffffffff", "sigoplimit",
                      80000, "sizelimit", 4000000, "weightlimit", 4000000, "curtime",
                      (json_int_t)time(NULL), "bits", "207fffff", "height", (json_int_t)(h + 1),
                      "target", "7fffff0000000000000000000000000000000000000000000000000000000000");
    json_decref(txs);
    node_mempool_entries_free(entries, count);
    *result = o;
    return o ? 0 : node_btcjson_oom(e);
}

static int generate(struct node *n, int64_t nblocks, const uint8_t *script, size_t script_len,
                    json_t **result, struct node_method_error *e)
{
    uint8_t(*hashes)[32] = NULL;
    char err[256];
    json_t *out;

    if (nblocks < 0 || nblocks > MAX_GENERATE)
        return node_method_fail(e, RPC_INVALID_PARAMETER, "nblocks must be between 0 and %d",
                                MAX_GENERATE);
    if (nblocks > 0) {
        hashes = calloc((size_t)nblocks, 32);
        if (!hashes)
            return node_btcjson_oom(e);
        if (node_chain_generate(n->chain, n->mempool, script, script_len, (size_t)nblocks, hashes,
                                err, sizeof(err)) != 0) {
            free(hashes);
            return node_method_fail(e, RPC_MISC_ERROR, "Block production failed: %s", err);
        }
    }
    out = json_array();
    for (int64_t i = 0; out && i < nblocks; i++) {
        if (json_array_append_new(out, node_btcjson_hash(hashes[i])) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    free(hashes);
    *result = out;
    return out ? 0 : node_btcjson_oom(e);
}

int node_rpc_btcmining_generatetoaddress(struct node *n, json_t *params, json_t **result,
                                         struct node_method_error *e)
{
    int64_t nblocks;
    const char *addr;
    uint8_t script[NODE_SCRIPT_MAX];
    size_t script_len;

    if (node_btcjson_arg_int(params, 0, &nblocks, e) != 0 ||
        node_btcjson_arg_str(params, 1, &addr, e) != 0)
        return -1;
    if (json_array_size(params) > 2) {
        int64_t tries;
        if (node_btcjson_arg_int(params, 2, &tries, e) != 0)
            return -1;
    }
    if (node_address_script(addr, script, &script_len) != 0)
        return node_method_fail(e, RPC_INVALID_ADDRESS_OR_KEY, "Error: Invalid address");
    return generate(n, nblocks, script, script_len, result, e);
}

int node_rpc_btcmining_generate(struct node *n, json_t *params, json_t **result,
                                struct node_method_error *e)
{
    static const uint8_t op_true[] = {0x51};
    int64_t nblocks = 1;
    if (json_array_size(params) > 0 && node_btcjson_arg_int(params, 0, &nblocks, e) != 0)
        return -1;
    return generate(n, nblocks, op_true, sizeof(op_true), result, e);
}
