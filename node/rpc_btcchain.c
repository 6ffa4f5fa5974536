/* Blocks, headers and chain state as Bitcoin Core shows them; pruning on request. */
#include "rpc_btcchain.h"

#include <stdio.h>
#include <stdlib.h>

#include "block.h"
#include "btcjson.h"
#include "chain.h"
#include "codec.h"
#include "node.h"
#include "peermgr.h"
#include "prune.h"
#include "tx.h"

/* Bitcoin Core's TIMESTAMP_WINDOW: a time argument of pruneblockchain also
 * takes blocks up to two hours older. */
#define PRUNE_TIME_WINDOW 7200

static double difficulty(uint32_t bits)
{
    int shift = (bits >> 24) & 0xff;
    double diff = (double)0x0000ffff / (double)(bits & 0x00ffffff);
    while (shift < 29) {
        diff *= 256.0;
        shift++;
    }
    while (shift > 29) {
        diff /= 256.0;
        shift--;
    }
    return diff;
}

/* Regtest work is 2 per block (target 0x7fffff << 232), so chainwork is 2(h+1). */
static json_t *chainwork_json(int64_t height)
{
    char hex[65];
    uint8_t w[32] = {0};
    uint64_t v = (uint64_t)(height + 1) * 2;
    for (int i = 0; i < 8; i++)
        w[i] = (uint8_t)(v >> (8 * i));
    node_codec_hex_encode(w, 32, 1, hex);
    return json_string(hex);
}

/* Header fields shared by getblock and getblockheader. */
static json_t *header_json(struct node *n, int64_t height, const struct node_block_meta *b)
{
    char hex[65], bits[9], vhex[9];
    int64_t tip = node_chain_height(n->chain);
    struct node_block_meta next;
    json_t *o;

    node_codec_hex_encode(b->header.merkle, 32, 1, hex);
    snprintf(bits, sizeof(bits), "%08x", b->header.bits);
    snprintf(vhex, sizeof(vhex), "%08x", (uint32_t)b->header.version);
    o = json_pack("{s:o,s:I,s:I,s:i,s:s,s:s,s:I,s:I,s:I,s:s,s:f,s:o,s:I}", "hash",
                  node_btcjson_hash(b->hash), "confirmations", (json_int_t)(tip - height + 1),
                  "height", (json_int_t)height, "version", b->header.version, "versionHex", vhex,
                  "merkleroot", hex, "time", (json_int_t)b->header.time, "mediantime",
                  (json_int_t)node_chain_median_time(n->chain, height), "nonce",
                  (json_int_t)b->header.nonce, "bits", bits, "difficulty",
                  difficulty(b->header.bits), "chainwork", chainwork_json(height), "nTx",
                  (json_int_t)b->ntx);
    if (o && height > 0)
        json_object_set_new(o, "previousblockhash", node_btcjson_hash(b->header.prev));
    if (o && node_chain_get(n->chain, height + 1, &next) == 0)
        json_object_set_new(o, "nextblockhash", node_btcjson_hash(next.hash));
    return o;
}

/* Decoded transaction, as getrawtransaction verbose / getblock verbosity 2. */
static json_t *tx_json(const uint8_t *raw, size_t len)
{
    struct node_tx tx;
    char err[128];
    json_t *o = NULL, *vin = NULL, *vout = NULL;

    if (node_tx_decode(raw, len, &tx, err, sizeof(err)) != 0)
        return NULL;
    int coinbase = node_tx_is_coinbase(&tx);
    vin = json_array();
    vout = json_array();
    for (size_t i = 0; vin && i < tx.nin; i++) {
        json_t *in;
        if (coinbase)
            in = json_pack("{s:o,s:I}", "coinbase",
                           node_btcjson_hex(tx.in[i].script, tx.in[i].script_len), "sequence",
                           (json_int_t)tx.in[i].sequence);
        else
            in = json_pack("{s:o,s:I,s:{s:o},s:I}", "txid", node_btcjson_hash(tx.in[i].prev_txid),
                           "vout", (json_int_t)tx.in[i].prev_vout, "scriptSig", "hex",
                           node_btcjson_hex(tx.in[i].script, tx.in[i].script_len), "sequence",
                           (json_int_t)tx.in[i].sequence);
        if (!in || json_array_append_new(vin, in) != 0)
            goto fail;
    }
    for (size_t i = 0; vout && i < tx.nout; i++) {
        json_t *out = json_pack("{s:f,s:I,s:{s:o}}", "value", (double)tx.out[i].value / 1e8, "n",
                                (json_int_t)i, "scriptPubKey", "hex",
                                node_btcjson_hex(tx.out[i].script, tx.out[i].script_len));
        if (!out || json_array_append_new(vout, out) != 0)
            goto fail;
    }
    if (!vin || !vout)
        goto fail;
    o = json_pack("{s:o,s:o,s:i,s:I,s:I,s:I,s:I,s:O,s:O,s:o}", "txid", node_btcjson_hash(tx.txid),
                  "hash", node_btcjson_hash(tx.wtxid), "version", tx.version, "size",
                  (json_int_t)tx.size, "vsize", (json_int_t)((tx.weight + 3) / 4), "weight",
                  (json_int_t)tx.weight, "locktime", (json_int_t)tx.locktime, "vin", vin, "vout",
                  vout, "hex", node_btcjson_hex(raw, len));
fail:
    json_decref(vin);
    json_decref(vout);
    node_tx_free(&tx);
    return o;
}

static int lookup_block(struct node *n, json_t *params, int64_t *height,
                        struct node_block_meta *meta, struct node_method_error *e)
{
    uint8_t hash[32];
    if (node_btcjson_arg_hash(params, 0, "blockhash", hash, e) != 0)
        return -1;
    if (node_chain_find(n->chain, hash, height) != 0 ||
        node_chain_get(n->chain, *height, meta) != 0)
        return node_method_fail(e, RPC_INVALID_ADDRESS_OR_KEY, "Block not found");
    return 0;
}

int node_rpc_btcchain_getblockcount(struct node *n, json_t *params, json_t **result,
                                    struct node_method_error *e)
{
    (void)params;
    *result = json_integer(node_chain_height(n->chain));
    return *result ? 0 : node_btcjson_oom(e);
}

int node_rpc_btcchain_getbestblockhash(struct node *n, json_t *params, json_t **result,
                                       struct node_method_error *e)
{
    struct node_block_meta b;
    (void)params;
    if (node_chain_get(n->chain, node_chain_height(n->chain), &b) != 0)
        return node_method_fail(e, RPC_INTERNAL_ERROR, "no tip");
    *result = node_btcjson_hash(b.hash);
    return *result ? 0 : node_btcjson_oom(e);
}

int node_rpc_btcchain_getblockhash(struct node *n, json_t *params, json_t **result,
                                   struct node_method_error *e)
{
    int64_t h;
    struct node_block_meta b;
    if (node_btcjson_arg_int(params, 0, &h, e) != 0)
        return -1;
    if (node_chain_get(n->chain, h, &b) != 0)
        return node_method_fail(e, RPC_INVALID_PARAMETER, "Block height out of range");
    *result = node_btcjson_hash(b.hash);
    return *result ? 0 : node_btcjson_oom(e);
}

int node_rpc_btcchain_getblockheader(struct node *n, json_t *params, json_t **result,
                                     struct node_method_error *e)
{
    int64_t height;
    struct node_block_meta b;
    int verbose = 1;
    if (lookup_block(n, params, &height, &b, e) != 0)
        return -1;
    if (json_array_size(params) > 1) {
        json_t *v = json_array_get(params, 1);
        if (!json_is_boolean(v))
            return node_method_fail(e, RPC_TYPE_ERROR,
                                    "JSON value of type %s is not of expected type bool",
                                    node_btcjson_type_name(v));
        verbose = json_is_true(v);
    }
    if (!verbose) {
        uint8_t hdr[NODE_HEADER_SIZE];
        node_headers_pack(&b.header, hdr);
        *result = node_btcjson_hex(hdr, sizeof(hdr));
    } else {
        *result = header_json(n, height, &b);
    }
    return *result ? 0 : node_btcjson_oom(e);
}

int node_rpc_btcchain_getblock(struct node *n, json_t *params, json_t **result,
                               struct node_method_error *e)
{
    int64_t height, verbosity = 1;
    struct node_block_meta b;
    uint8_t *raw = NULL;
    size_t len;
    char err[256];
    struct node_slice *txs = NULL;
    json_t *o = NULL, *list = NULL;
    int rc = -1;

    if (lookup_block(n, params, &height, &b, e) != 0)
        return -1;
    if (json_array_size(params) > 1) {
        json_t *v = json_array_get(params, 1);
        if (json_is_boolean(v))
            verbosity = json_is_true(v) ? 1 : 0;
        else if (node_btcjson_arg_int(params, 1, &verbosity, e) != 0)
            return -1;
    }
    if (node_chain_read_block(n->chain, height, &raw, &len, err, sizeof(err)) != 0) {
        if (node_chain_is_pruned(n->chain, height))
            return node_method_fail(e, RPC_MISC_ERROR, "Block not available (pruned data)");
        return node_method_fail(e, RPC_MISC_ERROR, "Block not found on disk");
    }
    if (verbosity <= 0) {
        *result = node_btcjson_hex(raw, len);
        rc = *result ? 0 : node_btcjson_oom(e);
        goto out;
    }
    txs = calloc(b.ntx ? b.ntx : 1, sizeof(*txs));
    o = header_json(n, height, &b);
    list = json_array();
    if (!txs || !o || !list || node_block_txs(raw, len, txs, b.ntx) != (long)b.ntx) {
        rc = txs && o && list ? node_method_fail(e, RPC_MISC_ERROR, "Block data corrupt")
                              : node_btcjson_oom(e);
        goto out;
    }
    for (uint32_t i = 0; i < b.ntx; i++) {
        json_t *t = tx_json(txs[i].p, txs[i].len);
        if (t && verbosity == 1) {
            json_t *id = json_incref(json_object_get(t, "txid"));
            json_decref(t);
            t = id;
        }
        if (!t || json_array_append_new(list, t) != 0) {
            rc = node_btcjson_oom(e);
            goto out;
        }
    }
    json_object_set_new(o, "strippedsize", json_integer((json_int_t)(b.weight - b.size) / 3));
    json_object_set_new(o, "size", json_integer(b.size));
    json_object_set_new(o, "weight", json_integer(b.weight));
    json_object_set(o, "tx", list);
    *result = o;
    o = NULL;
    rc = 0;
out:
    json_decref(o);
    json_decref(list);
    free(txs);
    free(raw);
    return rc;
}

/* Bitcoin Core's pruning fields of getblockchaininfo: "pruned" and, when
 * pruned, "pruneheight" (first block with data), "automatic_pruning" and
 * "prune_target_size"; "warnings" stays last. 0, or -1 out of memory. */
static int add_prune_info(struct node *n, json_t *o)
{
    struct node_prune_limits l;
    json_t *warnings = json_incref(json_object_get(o, "warnings"));
    int bad;

    node_prune_limits_of(n->cfg, &l);
    json_object_del(o, "warnings");
    bad = json_object_set_new(o, "pruned", json_boolean(l.enabled));
    if (l.enabled) {
        bad |=
            json_object_set_new(o, "pruneheight", json_integer(node_chain_prune_height(n->chain)));
        bad |= json_object_set_new(o, "automatic_pruning", json_true());
        bad |= json_object_set_new(o, "prune_target_size", json_integer((json_int_t)l.target));
    }
    bad |= json_object_set_new(o, "warnings", warnings ? warnings : json_array());
    return bad ? -1 : 0;
}

int node_rpc_btcchain_getblockchaininfo(struct node *n, json_t *params, json_t **result,
                                        struct node_method_error *e)
{
    struct node_block_meta b;
    int64_t h = node_chain_height(n->chain);
    int64_t best = node_peermgr_best_height(n->peers);
    (void)params;
    if (node_chain_get(n->chain, h, &b) != 0)
        return node_method_fail(e, RPC_INTERNAL_ERROR, "no tip");
    *result = json_pack(
        "{s:s,s:I,s:I,s:o,s:f,s:I,s:I,s:f,s:b,s:o,s:I,s:b,s:[]}", "chain", "regtest", "blocks",
        (json_int_t)h, "headers", (json_int_t)(best > h ? best : h), "bestblockhash",
        node_btcjson_hash(b.hash), "difficulty", difficulty(b.header.bits), "time",
        (json_int_t)b.header.time, "mediantime", (json_int_t)node_chain_median_time(n->chain, h),
        "verificationprogress", best > h ? (double)h / (double)best : 1.0, "initialblockdownload",
        node_peermgr_syncing(n->peers), "chainwork", chainwork_json(h), "size_on_disk",
        (json_int_t)node_chain_size_bytes(n->chain), "pruned", 0, "warnings");
    if (!*result || add_prune_info(n, *result) != 0) {
        json_decref(*result);
        *result = NULL;
        return node_btcjson_oom(e);
    }
    return 0;
}

/* pruneblockchain height|time: delete the block files up to `height` (the
 * most recent storage.min_blocks_kept always stay); answers the height of
 * the last block pruned, as Core. */
int node_rpc_btcchain_pruneblockchain(struct node *n, json_t *params, json_t **result,
                                      struct node_method_error *e)
{
    struct node_prune_limits l;
    struct node_prune_plan done;
    int64_t height, tip = node_chain_height(n->chain);
    char err[256];

    if (node_btcjson_arg_int(params, 0, &height, e) != 0)
        return -1;
    node_prune_limits_of(n->cfg, &l);
    if (!l.enabled)
        return node_method_fail(e, RPC_MISC_ERROR,
                                "Cannot prune blocks because node is not in prune mode.");
    if (height < 0)
        return node_method_fail(e, RPC_INVALID_PARAMETER, "Negative block height.");
    if (height > 1000000000) {
        /* Too high for a height: a block time. */
        struct node_block_meta b;
        int64_t h = 0;
        while (h <= tip && node_chain_get(n->chain, h, &b) == 0 &&
               (int64_t)b.header.time < height - PRUNE_TIME_WINDOW)
            h++;
        if (h > tip)
            return node_method_fail(e, RPC_INVALID_PARAMETER,
                                    "Could not find block with at least the specified timestamp.");
        height = h;
    }
    if (height > tip)
        return node_method_fail(e, RPC_INVALID_PARAMETER,
                                "Blockchain is shorter than the attempt to prune.");
    if (node_chain_prune(n->chain, 0, l.keep, height, &done, err, sizeof(err)) != 0)
        return node_method_fail(e, RPC_MISC_ERROR, "Prune failed: %s", err);
    *result = json_integer(node_chain_prune_height(n->chain) - 1);
    return *result ? 0 : node_btcjson_oom(e);
}
