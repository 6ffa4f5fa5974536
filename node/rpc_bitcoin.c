/* The bitcoin flavour's methods, shaped like Bitcoin Core's replies. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "address.h"
#include "block.h"
#include "chain.h"
#include "codec.h"
#include "mempool.h"
#include "metrics.h"
#include "prune.h"
#include "peerinfo.h"
#include "peermgr.h"
#include "node.h"
#include "rpc_bitcoin.h"
#include "tx.h"

#define MAX_GENERATE 1000 /* blocks per generate call: bounds one request's time */

/* Bitcoin Core's type error text: "JSON value of type string is not of expected type number". */
static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "bool";
    default:
        return "null";
    }
}

static int arg_int(json_t *params, size_t i, int64_t *out, struct node_method_error *e)
{
    json_t *v = json_array_get(params, i);
    if (!json_is_integer(v))
        return node_method_fail(e, RPC_TYPE_ERROR,
                                "JSON value of type %s is not of expected type number",
                                json_type_name(v));
    *out = (int64_t)json_integer_value(v);
    return 0;
}

static int arg_str(json_t *params, size_t i, const char **out, struct node_method_error *e)
{
    json_t *v = json_array_get(params, i);
    if (!json_is_string(v))
        return node_method_fail(e, RPC_TYPE_ERROR,
                                "JSON value of type %s is not of expected type string",
                                json_type_name(v));
    *out = json_string_value(v);
    return 0;
}

/* Core's ParseHashV: 64 hex characters, displayed byte order. */
static int arg_hash(json_t *params, size_t i, const char *name, uint8_t out[32],
                    struct node_method_error *e)
{
    const char *s;
    if (arg_str(params, i, &s, e) != 0)
        return -1;
    if (strlen(s) != 64)
        return node_method_fail(e, RPC_INVALID_PARAMETER,
                                "%s must be of length 64 (not %zu, for '%.80s')", name, strlen(s),
                                s);
    if (node_hex_decode32(s, 1, out) != 0)
        return node_method_fail(e, RPC_INVALID_PARAMETER,
                                "%s must be hexadecimal string (not '%.80s')", name, s);
    return 0;
}

static json_t *hash_json(const uint8_t h[32])
{
    char hex[65];
    node_hex_encode(h, 32, 1, hex);
    return json_string(hex);
}

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
    node_hex_encode(w, 32, 1, hex);
    return json_string(hex);
}

static int oom(struct node_method_error *e)
{
    return node_method_fail(e, RPC_OUT_OF_MEMORY, "Out of memory");
}

/* Header fields shared by getblock and getblockheader. */
static json_t *header_json(struct node *n, int64_t height, const struct node_block_meta *b)
{
    char hex[65], bits[9], vhex[9];
    int64_t tip = node_chain_height(n->chain);
    struct node_block_meta next;
    json_t *o;

    node_hex_encode(b->header.merkle, 32, 1, hex);
    snprintf(bits, sizeof(bits), "%08x", b->header.bits);
    snprintf(vhex, sizeof(vhex), "%08x", (uint32_t)b->header.version);
    o = json_pack("{s:o,s:I,s:I,s:i,s:s,s:s,s:I,s:I,s:I,s:s,s:f,s:o,s:I}", "hash",
                  hash_json(b->hash), "confirmations", (json_int_t)(tip - height + 1), "height",
                  (json_int_t)height, "version", b->header.version, "versionHex", vhex,
                  "merkleroot", hex, "time", (json_int_t)b->header.time, "mediantime",
                  (json_int_t)node_chain_median_time(n->chain, height), "nonce",
                  (json_int_t)b->header.nonce, "bits", bits, "difficulty",
                  difficulty(b->header.bits), "chainwork", chainwork_json(height), "nTx",
                  (json_int_t)b->ntx);
    if (o && height > 0)
        json_object_set_new(o, "previousblockhash", hash_json(b->header.prev));
    if (o && node_chain_get(n->chain, height + 1, &next) == 0)
        json_object_set_new(o, "nextblockhash", hash_json(next.hash));
    return o;
}

static json_t *script_json(const uint8_t *p, size_t len)
{
    char *hex = malloc(len * 2 + 1);
    if (!hex)
        return NULL;
    node_hex_encode(p, len, 0, hex);
    json_t *s = json_string(hex);
    free(hex);
    return s;
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
                           script_json(tx.in[i].script, tx.in[i].script_len), "sequence",
                           (json_int_t)tx.in[i].sequence);
        else
            in = json_pack("{s:o,s:I,s:{s:o},s:I}", "txid", hash_json(tx.in[i].prev_txid), "vout",
                           (json_int_t)tx.in[i].prev_vout, "scriptSig", "hex",
                           script_json(tx.in[i].script, tx.in[i].script_len), "sequence",
                           (json_int_t)tx.in[i].sequence);
        if (!in || json_array_append_new(vin, in) != 0)
            goto fail;
    }
    for (size_t i = 0; vout && i < tx.nout; i++) {
        json_t *out = json_pack("{s:f,s:I,s:{s:o}}", "value", (double)tx.out[i].value / 1e8, "n",
                                (json_int_t)i, "scriptPubKey", "hex",
                                script_json(tx.out[i].script, tx.out[i].script_len));
        if (!out || json_array_append_new(vout, out) != 0)
            goto fail;
    }
    if (!vin || !vout)
        goto fail;
    o = json_pack("{s:o,s:o,s:i,s:I,s:I,s:I,s:I,s:O,s:O,s:o}", "txid", hash_json(tx.txid), "hash",
                  hash_json(tx.wtxid), "version", tx.version, "size", (json_int_t)tx.size, "vsize",
                  (json_int_t)((tx.weight + 3) / 4), "weight", (json_int_t)tx.weight, "locktime",
                  (json_int_t)tx.locktime, "vin", vin, "vout", vout, "hex", script_json(raw, len));
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
    if (arg_hash(params, 0, "blockhash", hash, e) != 0)
        return -1;
    if (node_chain_find(n->chain, hash, height) != 0 ||
        node_chain_get(n->chain, *height, meta) != 0)
        return node_method_fail(e, RPC_INVALID_ADDRESS_OR_KEY, "Block not found");
    return 0;
}

static int m_getblockcount(struct node *n, json_t *params, json_t **result,
                           struct node_method_error *e)
{
    (void)params;
    *result = json_integer(node_chain_height(n->chain));
    return *result ? 0 : oom(e);
}

static int m_getbestblockhash(struct node *n, json_t *params, json_t **result,
                              struct node_method_error *e)
{
    struct node_block_meta b;
    (void)params;
    if (node_chain_get(n->chain, node_chain_height(n->chain), &b) != 0)
        return node_method_fail(e, RPC_INTERNAL_ERROR, "no tip");
    *result = hash_json(b.hash);
    return *result ? 0 : oom(e);
}

static int m_getblockhash(struct node *n, json_t *params, json_t **result,
                          struct node_method_error *e)
{
    int64_t h;
    struct node_block_meta b;
    if (arg_int(params, 0, &h, e) != 0)
        return -1;
    if (node_chain_get(n->chain, h, &b) != 0)
        return node_method_fail(e, RPC_INVALID_PARAMETER, "Block height out of range");
    *result = hash_json(b.hash);
    return *result ? 0 : oom(e);
}

static int m_getblockheader(struct node *n, json_t *params, json_t **result,
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
                                    json_type_name(v));
        verbose = json_is_true(v);
    }
    if (!verbose) {
        uint8_t hdr[NODE_HEADER_SIZE];
        node_headers_pack(&b.header, hdr);
        *result = script_json(hdr, sizeof(hdr));
    } else {
        *result = header_json(n, height, &b);
    }
    return *result ? 0 : oom(e);
}

static int m_getblock(struct node *n, json_t *params, json_t **result, struct node_method_error *e)
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
        else if (arg_int(params, 1, &verbosity, e) != 0)
            return -1;
    }
    if (node_chain_read_block(n->chain, height, &raw, &len, err, sizeof(err)) != 0) {
        if (node_chain_is_pruned(n->chain, height))
            return node_method_fail(e, RPC_MISC_ERROR, "Block not available (pruned data)");
        return node_method_fail(e, RPC_MISC_ERROR, "Block not found on disk");
    }
    if (verbosity <= 0) {
        *result = script_json(raw, len);
        rc = *result ? 0 : oom(e);
        goto out;
    }
    txs = calloc(b.ntx ? b.ntx : 1, sizeof(*txs));
    o = header_json(n, height, &b);
    list = json_array();
    if (!txs || !o || !list || node_block_txs(raw, len, txs, b.ntx) != (long)b.ntx) {
        rc = txs && o && list ? node_method_fail(e, RPC_MISC_ERROR, "Block data corrupt") : oom(e);
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
            rc = oom(e);
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

static int m_getblockchaininfo(struct node *n, json_t *params, json_t **result,
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
        hash_json(b.hash), "difficulty", difficulty(b.header.bits), "time",
        (json_int_t)b.header.time, "mediantime", (json_int_t)node_chain_median_time(n->chain, h),
        "verificationprogress", best > h ? (double)h / (double)best : 1.0, "initialblockdownload",
        node_peermgr_syncing(n->peers), "chainwork", chainwork_json(h), "size_on_disk",
        (json_int_t)node_chain_size_bytes(n->chain), "pruned", 0, "warnings");
    if (!*result || add_prune_info(n, *result) != 0) {
        json_decref(*result);
        *result = NULL;
        return oom(e);
    }
    return 0;
}

/* Bitcoin Core's TIMESTAMP_WINDOW: a time argument also takes blocks up to
 * two hours older. */
#define PRUNE_TIME_WINDOW 7200

/* pruneblockchain height|time: delete the block files up to `height` (the
 * most recent storage.min_blocks_kept always stay); answers the height of
 * the last block pruned, as Core. */
static int m_pruneblockchain(struct node *n, json_t *params, json_t **result,
                             struct node_method_error *e)
{
    struct node_prune_limits l;
    struct node_prune_plan done;
    int64_t height, tip = node_chain_height(n->chain);
    char err[256];

    if (arg_int(params, 0, &height, e) != 0)
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
    return *result ? 0 : oom(e);
}

static int m_getmempoolinfo(struct node *n, json_t *params, json_t **result,
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
    return *result ? 0 : oom(e);
}

static int m_getrawmempool(struct node *n, json_t *params, json_t **result,
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
                                    json_type_name(v));
        verbose = json_is_true(v);
    }
    if (node_mempool_snapshot(n->mempool, 0, &entries, &count) != 0)
        return oom(e);
    out = verbose ? json_object() : json_array();
    for (size_t i = 0; out && i < count; i++) {
        char hex[65];
        int bad;
        node_hex_encode(entries[i].txid, 32, 1, hex);
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
    return out ? 0 : oom(e);
}

static int m_sendrawtransaction(struct node *n, json_t *params, json_t **result,
                                struct node_method_error *e)
{
    const char *hex;
    uint8_t *raw = NULL;
    size_t len;
    struct node_tx tx;
    char why[128];
    int rc = -1;

    if (arg_str(params, 0, &hex, e) != 0)
        return -1;
    if (json_array_size(params) > 1 && !json_is_number(json_array_get(params, 1)))
        return node_method_fail(e, RPC_TYPE_ERROR,
                                "JSON value of type %s is not of expected type number",
                                json_type_name(json_array_get(params, 1)));
    if (node_hex_decode(hex, strlen(hex), &raw, &len) != 0) {
        if (!raw && errno == ENOMEM)
            return oom(e);
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
        *result = hash_json(tx.txid);
        rc = *result ? 0 : oom(e);
        break;
    case NODE_MEMPOOL_FULL:
        node_method_fail(e, RPC_VERIFY_REJECTED, "mempool full");
        break;
    default:
        oom(e);
    }
free_tx:
    node_tx_free(&tx);
out:
    free(raw);
    return rc;
}

static int m_getnetworkinfo(struct node *n, json_t *params, json_t **result,
                            struct node_method_error *e)
{
    size_t in, out;
    (void)params;
    node_peermgr_counts(n->peers, &in, &out);
    *result =
        json_pack("{s:i,s:s,s:i,s:s,s:[],s:b,s:i,s:b,s:I,s:I,s:I,s:[],s:f,s:f,s:[],s:s}", "version",
                  NODE_VERSION_NUM, "subversion", NODE_SUBVERSION, "protocolversion", 70016,
                  "localservices", "0000000000000409", "localservicesnames", "localrelay", 1,
                  "timeoffset", 0, "networkactive", 1, "connections", (json_int_t)(in + out),
                  "connections_in", (json_int_t)in, "connections_out", (json_int_t)out, "networks",
                  "relayfee", 0.00001, "incrementalfee", 0.00001, "localaddresses", "warnings", "");
    return *result ? 0 : oom(e);
}

static int m_getpeerinfo(struct node *n, json_t *params, json_t **result,
                         struct node_method_error *e)
{
    (void)params;
    *result = node_peerinfo_json(n->peers);
    return *result ? 0 : oom(e);
}

static int m_getconnectioncount(struct node *n, json_t *params, json_t **result,
                                struct node_method_error *e)
{
    size_t in, out;
    (void)params;
    node_peermgr_counts(n->peers, &in, &out);
    *result = json_integer((json_int_t)(in + out));
    return *result ? 0 : oom(e);
}

static int m_uptime(struct node *n, json_t *params, json_t **result, struct node_method_error *e)
{
    (void)params;
    *result = json_integer(node_uptime(n));
    return *result ? 0 : oom(e);
}

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

static int m_getblocktemplate(struct node *n, json_t *params, json_t **result,
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
                                json_type_name(req));
    if (!req || !has_segwit_rule(req))
        return node_method_fail(
            e, RPC_INVALID_PARAMETER,
            "getblocktemplate must be called with the segwit rule set (call with "
            "{\"rules\": [\"segwit\"]})");
    if (node_chain_get(n->chain, h, &tip) != 0 ||
        node_mempool_snapshot(n->mempool, NODE_MAX_BLOCK_WEIGHT - 4000, &entries, &count) != 0)
        return oom(e);
    txs = json_array();
    for (size_t i = 0; txs && i < count; i++) {
        struct node_tx tx;
        char why[64];
        if (node_tx_decode(entries[i].raw, entries[i].len, &tx, why, sizeof(why)) != 0)
            continue;
        json_t *t = json_pack("{s:o,s:o,s:o,s:[],s:i,s:i,s:I}", "data",
                              script_json(entries[i].raw, entries[i].len), "txid",
                              hash_json(tx.txid), "hash", hash_json(tx.wtxid), "depends", "fee", 0,
                              "sigops", 0, "weight", (json_int_t)tx.weight);
        node_tx_free(&tx);
        if (!t || json_array_append_new(txs, t) != 0) {
            json_decref(txs);
            txs = NULL;
        }
    }
    node_hex_encode(tip.hash, 32, 1, tiphex);
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
    return o ? 0 : oom(e);
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
            return oom(e);
        if (node_chain_generate(n->chain, n->mempool, script, script_len, (size_t)nblocks, hashes,
                                err, sizeof(err)) != 0) {
            free(hashes);
            return node_method_fail(e, RPC_MISC_ERROR, "Block production failed: %s", err);
        }
    }
    out = json_array();
    for (int64_t i = 0; out && i < nblocks; i++) {
        if (json_array_append_new(out, hash_json(hashes[i])) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    free(hashes);
    *result = out;
    return out ? 0 : oom(e);
}

static int m_generatetoaddress(struct node *n, json_t *params, json_t **result,
                               struct node_method_error *e)
{
    int64_t nblocks;
    const char *addr;
    uint8_t script[NODE_SCRIPT_MAX];
    size_t script_len;

    if (arg_int(params, 0, &nblocks, e) != 0 || arg_str(params, 1, &addr, e) != 0)
        return -1;
    if (json_array_size(params) > 2) {
        int64_t tries;
        if (arg_int(params, 2, &tries, e) != 0)
            return -1;
    }
    if (node_address_script(addr, script, &script_len) != 0)
        return node_method_fail(e, RPC_INVALID_ADDRESS_OR_KEY, "Error: Invalid address");
    return generate(n, nblocks, script, script_len, result, e);
}

static int m_generate(struct node *n, json_t *params, json_t **result, struct node_method_error *e)
{
    static const uint8_t op_true[] = {0x51};
    int64_t nblocks = 1;
    if (json_array_size(params) > 0 && arg_int(params, 0, &nblocks, e) != 0)
        return -1;
    return generate(n, nblocks, op_true, sizeof(op_true), result, e);
}

static int m_help(struct node *n, json_t *params, json_t **result, struct node_method_error *e)
{
    (void)n; /* a bitcoin node: its table is node_rpc_bitcoin_methods */
    const char *cmd = NULL;
    if (json_array_size(params) > 0 && arg_str(params, 0, &cmd, e) != 0)
        return -1;
    if (cmd) {
        const struct node_method *m = node_method_find(node_rpc_bitcoin_methods, cmd);
        if (!m) {
            char buf[160];
            snprintf(buf, sizeof(buf), "help: unknown command: %.100s", cmd);
            *result = json_string(buf);
        } else {
            *result = json_string(m->help);
        }
        return *result ? 0 : oom(e);
    }
    size_t cap = 64, len = 0;
    char *text = malloc(cap);
    if (!text)
        return oom(e);
    text[0] = '\0';
    for (const struct node_method *m = node_rpc_bitcoin_methods; m->name; m++) {
        size_t need = strlen(m->help) + 2;
        if (len + need >= cap) {
            while (len + need >= cap)
                cap *= 2;
            char *t = realloc(text, cap);
            if (!t) {
                free(text);
                return oom(e);
            }
            text = t;
        }
        len += (size_t)snprintf(text + len, cap - len, "%s%s", len ? "\n" : "", m->help);
    }
    *result = json_string(text);
    free(text);
    return *result ? 0 : oom(e);
}

const struct node_method node_rpc_bitcoin_methods[] = {
    {"getbestblockhash", m_getbestblockhash, 0, 0, {NULL}, "getbestblockhash"},
    {"getblock",
     m_getblock,
     1,
     2,
     {"blockhash", "verbosity"},
     "getblock \"blockhash\" ( verbosity )"},
    {"getblockchaininfo", m_getblockchaininfo, 0, 0, {NULL}, "getblockchaininfo"},
    {"getblockcount", m_getblockcount, 0, 0, {NULL}, "getblockcount"},
    {"getblockhash", m_getblockhash, 1, 1, {"height"}, "getblockhash height"},
    {"getblockheader",
     m_getblockheader,
     1,
     2,
     {"blockhash", "verbose"},
     "getblockheader \"blockhash\" ( verbose )"},
    {"getblocktemplate",
     m_getblocktemplate,
     0,
     1,
     {"template_request"},
     "getblocktemplate {\"rules\":[\"segwit\"]}"},
    {"getconnectioncount", m_getconnectioncount, 0, 0, {NULL}, "getconnectioncount"},
    {"getmempoolinfo", m_getmempoolinfo, 0, 0, {NULL}, "getmempoolinfo"},
    {"getnetworkinfo", m_getnetworkinfo, 0, 0, {NULL}, "getnetworkinfo"},
    {"getpeerinfo", m_getpeerinfo, 0, 0, {NULL}, "getpeerinfo"},
    {"getrawmempool",
     m_getrawmempool,
     0,
     2,
     {"verbose", "mempool_sequence"},
     "getrawmempool ( verbose )"},
    {"generate", m_generate, 0, 1, {"nblocks"}, "generate ( nblocks )"},
    {"generatetoaddress",
     m_generatetoaddress,
     2,
     3,
     {"nblocks", "address", "maxtries"},
     "generatetoaddress nblocks \"address\" ( maxtries )"},
    {"help", m_help, 0, 1, {"command"}, "help ( \"command\" )"},
    {"pruneblockchain", m_pruneblockchain, 1, 1, {"height"}, "pruneblockchain height"},
    {"sendrawtransaction",
     m_sendrawtransaction,
     1,
     2,
     {"hexstring", "maxfeerate"},
     "sendrawtransaction \"hexstring\" ( maxfeerate )"},
    {"uptime", m_uptime, 0, 0, {NULL}, "uptime"},
    {NULL, NULL, 0, 0, {NULL}, NULL},
};
