/* The mempool as Bitcoin Core shows it, and transactions entering it. */
#include "rpc_btcmempool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "btcjson.h"
#include "chain.h"
#include "codec.h"
#include "mempool.h"
#include "node.h"
#include "tx.h"

int node_rpc_btcmempool_getmempoolinfo(struct node *n, json_t *params, json_t **result,
                                       struct node_method_error *e)
{
    size_t count, bytes;
    (void)params;
    node_mempool_stats(n->mempool, &count, &bytes);
    *result = json_pack("{s:b,s:I,s:I,s:I,s:f,s:I,s:f,s:f,s:f,s:I,s:b}", "loaded", 1, "size",
                        (json_int_t)count, "bytes", (json_int_t)bytes, "usage",
                        (json_int_t)(bytes + count * 128), "total_fee", 0.0, "maxmempool",
                        (json_int_t)node_mempool_max_bytes(n->mempool), "mempoolminfee", 0.00001,
                        "minrelaytxfee", 0.00001, "incrementalrelayfee", 0.00001,
                        "unbroadcastcount", (json_int_t)0, "fullrbf", 0);
    return *result ? 0 : node_btcjson_oom(e);
}

int node_rpc_btcmempool_getrawmempool(struct node *n, json_t *params, json_t **result,
                                      struct node_method_error *e)
{
    struct node_mempool_entry *entries;
    size_t count;
    int verbose = 0;
    int64_t height = node_chain_height(n->chain);
    json_t *out;

    if (json_array_size(params) > 0) {
        json_t *v = json_array_get(params, 0);
        if (!json_is_boolean(v))
            return node_method_fail(e, RPC_TYPE_ERROR,
                                    "JSON value of type %s is not of expected type bool",
                                    node_btcjson_type_name(v));
        verbose = json_is_true(v);
    }
    if (node_mempool_snapshot(n->mempool, 0, &entries, &count) != 0)
        return node_btcjson_oom(e);
    out = verbose ? json_object() : json_array();
    for (size_t i = 0; out && i < count; i++) {
        char hex[65];
        int bad;
        node_codec_hex_encode(entries[i].txid, 32, 1, hex);
        if (verbose)
            bad = json_object_set_new(
                out, hex,
                json_pack("{s:I,s:I,s:I,s:I,s:{s:f,s:f,s:f,s:f},s:[],s:[],s:b,s:b}", "vsize",
                          (json_int_t)((entries[i].weight + 3) / 4), "weight",
                          (json_int_t)entries[i].weight, "time", (json_int_t)entries[i].time,
                          "height", (json_int_t)height, "fees", "base", 0.0, "modified", 0.0,
                          "ancestor", 0.0, "descendant", 0.0, "depends", "spentby",
                          "bip125-replaceable", 0, "unbroadcast", 0));
        else
            bad = json_array_append_new(out, json_string(hex));
        if (bad) {
            json_decref(out);
            out = NULL;
        }
    }
    node_mempool_entries_free(entries, count);
    *result = out;
    return out ? 0 : node_btcjson_oom(e);
}

int node_rpc_btcmempool_sendrawtransaction(struct node *n, json_t *params, json_t **result,
                                           struct node_method_error *e)
{
    const char *hex;
    uint8_t *raw = NULL;
    size_t len;
    struct node_tx tx;
    char why[128];
    int rc = -1;

    if (node_btcjson_arg_str(params, 0, &hex, e) != 0)
        return -1;
    if (json_array_size(params) > 1 && !json_is_number(json_array_get(params, 1)))
        return node_method_fail(e, RPC_TYPE_ERROR,
                                "JSON value of type %s is not of expected type number",
                                node_btcjson_type_name(json_array_get(params, 1)));
    if (node_codec_hex_decode(hex, strlen(hex), &raw, &len) != 0) {
        if (!raw && errno == ENOMEM)
            return node_btcjson_oom(e);
        return node_method_fail(e, RPC_DESERIALIZATION_ERROR,
                                "TX decode failed. Make sure the tx has at least one input.");
    }
    if (node_tx_decode(raw, len, &tx, why, sizeof(why)) != 0) {
        node_method_fail(e, RPC_DESERIALIZATION_ERROR,
                         "TX decode failed. Make sure the tx has at least one input. (%s)", why);
        goto out;
    }
    if (node_tx_is_coinbase(&tx)) {
        node_method_fail(e, RPC_VERIFY_REJECTED, "coinbase");
        goto free_tx;
    }
    if (node_chain_has_unspent(n->chain, tx.txid)) {
        node_method_fail(e, RPC_VERIFY_ALREADY_IN_CHAIN, "Transaction outputs already in utxo set");
        goto free_tx;
    }
    switch (node_mempool_add(n->mempool, tx.txid, raw, len, tx.weight)) {
    case NODE_MEMPOOL_ADDED:
    case NODE_MEMPOOL_DUPLICATE: /* Core answers the txid again */
        *result = node_btcjson_hash(tx.txid);
        rc = *result ? 0 : node_btcjson_oom(e);
        break;
    case NODE_MEMPOOL_FULL:
        node_method_fail(e, RPC_VERIFY_REJECTED, "mempool full");
        break;
    default:
        node_btcjson_oom(e);
    }
free_tx:
    node_tx_free(&tx);
out:
    free(raw);
    return rc;
}
