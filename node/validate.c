/* Checks of peer blocks (see validate.h). */
#include "validate.h"

#include <stdlib.h>
#include <string.h>

#include "block.h"
#include "codec.h"
#include "headers.h"
#include "sys.h"
#include "tx.h"

int node_validate_block(int evm, const uint8_t *raw, size_t len, const uint8_t *tip_hash,
                        uint32_t tip_mtp, uint8_t (**ids_out)[32], long *nout, char *err,
                        size_t errlen)
{
    struct node_header h;
    struct node_slice *txs = NULL;
    uint8_t(*ids)[32] = NULL;
    uint8_t hash[32], root[32];
    long n;
    int rc = -1;

    if (len > NODE_MAX_BLOCK_WEIGHT)
        return SYS_ERR("bad-blk-length");
    n = node_block_txs(raw, len, NULL, 0);
    if (n < 0)
        return SYS_ERR("bad-blk-malformed");
    if (!evm && n == 0)
        return SYS_ERR("bad-cb-missing");
    node_headers_unpack(raw, &h);
    if (h.bits != NODE_REGTEST_BITS)
        return SYS_ERR("bad-diffbits");
    if (node_codec_sha256d(raw, NODE_HEADER_SIZE, NULL, 0, hash) != 0)
        return SYS_ERR("out of memory") - 1;
    if (!node_block_check_pow(hash, h.bits))
        return SYS_ERR("high-hash");
    if (!tip_hash || memcmp(h.prev, tip_hash, 32) != 0)
        return SYS_ERR("bad-prevblk");
    if (h.time <= tip_mtp)
        return SYS_ERR("time-too-old");
    txs = calloc((size_t)(n ? n : 1), sizeof(*txs));
    ids = calloc((size_t)(n ? n : 1), 32);
    if (!txs || !ids) {
        rc = SYS_ERR("out of memory") - 1;
        goto fail;
    }
    node_block_txs(raw, len, txs, (size_t)n);
    for (long i = 0; i < n; i++) {
        struct node_tx tx;
        if (node_block_tx_id(evm, txs[i].p, txs[i].len, ids[i], &tx, err, errlen) != 0)
            goto fail;
        if (!evm) {
            int bad = (i == 0) != node_tx_is_coinbase(&tx);
            node_tx_free(&tx);
            if (bad) {
                SYS_ERR(i == 0 ? "bad-cb-missing" : "bad-cb-multiple");
                goto fail;
            }
        }
    }
    if (node_block_merkle_root(ids, (size_t)n, root) != 0) {
        rc = SYS_ERR("out of memory") - 1;
        goto fail;
    }
    if (memcmp(root, h.merkle, 32) != 0) {
        SYS_ERR("bad-txnmrklroot");
        goto fail;
    }
    /* The merkle fold overwrote the ids in place: compute them again. */
    for (long i = 0; i < n; i++) {
        struct node_tx tx;
        if (node_block_tx_id(evm, txs[i].p, txs[i].len, ids[i], &tx, err, errlen) != 0)
            goto fail;
        if (!evm)
            node_tx_free(&tx);
    }
    *ids_out = ids;
    *nout = n;
    ids = NULL;
    rc = 0;
fail:
    free(txs);
    free(ids);
    return rc;
}

int node_validate_stored_block(int evm, const uint8_t *raw, size_t len, const uint8_t *parent,
                               struct node_block_meta *meta, struct node_tx **decoded_out,
                               long *ndecoded_out, char *err, size_t errlen)
{
    static const uint8_t zero[32];
    struct node_header h;
    uint8_t(*ids)[32] = NULL;
    uint8_t root[32];
    struct node_slice *txs = NULL;
    struct node_tx *decoded = NULL;
    long n, ndecoded = 0;
    size_t weight = NODE_HEADER_SIZE * 4;
    int rc = -1;

    memset(meta, 0, sizeof(*meta));
    n = node_block_txs(raw, len, NULL, 0);
    if (n < 0)
        return SYS_ERR("malformed block body");
    if (n > 0) {
        txs = calloc((size_t)n, sizeof(*txs));
        ids = calloc((size_t)n, 32);
        decoded = evm ? NULL : calloc((size_t)n, sizeof(*decoded));
        if (!txs || !ids || (!evm && !decoded)) {
            SYS_ERR("out of memory");
            goto fail;
        }
        node_block_txs(raw, len, txs, (size_t)n);
    }
    node_headers_unpack(raw, &h);
    if (node_codec_sha256d(raw, NODE_HEADER_SIZE, NULL, 0, meta->hash) != 0) {
        SYS_ERR("out of memory");
        goto fail;
    }
    if (!parent) {
        if (memcmp(h.prev, zero, 32) != 0) {
            SYS_ERR("genesis block has a parent");
            goto fail;
        }
    } else if (memcmp(h.prev, parent, 32) != 0) {
        SYS_ERR("block does not extend the tip");
        goto fail;
    }
    if (!node_block_check_pow(meta->hash, h.bits)) {
        SYS_ERR("proof of work does not meet the target");
        goto fail;
    }
    for (long i = 0; i < n; i++) {
        struct node_tx *tx = evm ? NULL : &decoded[i];
        struct node_tx scratch;
        if (node_block_tx_id(evm, txs[i].p, txs[i].len, ids[i], tx ? tx : &scratch, err, errlen) !=
            0)
            goto fail;
        if (!evm) {
            ndecoded++;
            weight += tx->weight;
            if ((i == 0) != node_tx_is_coinbase(tx)) {
                SYS_ERR("transaction %ld: coinbase misplaced", i);
                goto fail;
            }
        } else {
            weight += txs[i].len * 4;
        }
    }
    if (node_block_merkle_root(ids, (size_t)n, root) != 0 || memcmp(root, h.merkle, 32) != 0) {
        SYS_ERR("merkle root mismatch");
        goto fail;
    }
    meta->header = h;
    meta->ntx = (uint32_t)n;
    meta->size = (uint32_t)len;
    meta->weight = (uint32_t)weight;
    *decoded_out = decoded;
    *ndecoded_out = ndecoded;
    decoded = NULL;
    ndecoded = 0;
    rc = 0;
fail:
    for (long i = 0; i < ndecoded; i++)
        node_tx_free(&decoded[i]);
    free(decoded);
    free(txs);
    free(ids);
    return rc;
}
