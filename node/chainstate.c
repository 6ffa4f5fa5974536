/* UTXO set updates and the chainstate file format (see chainstate.h). */
#include "chainstate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "hmap.h"
#include "store.h"
#include "sys.h"
#include "tx.h"

#define STATE_MAGIC 0x53434343u /* "CCCS" little-endian */
#define STATE_VERSION 2         /* 2 adds the prune height; 1 is still read */
#define OUTPOINT_SIZE NODE_CHAINSTATE_OUTPOINT

struct node_hmap *node_chainstate_new_set(void)
{
    return node_hmap_new(OUTPOINT_SIZE);
}

static void outpoint_key(uint8_t key[OUTPOINT_SIZE], const uint8_t txid[32], uint32_t vout)
{
    memcpy(key, txid, 32);
    for (int i = 0; i < 4; i++)
        key[32 + i] = (uint8_t)(vout >> (8 * i));
}

int node_chainstate_apply(struct node_hmap *utxo, const struct node_tx *tx)
{
    uint8_t key[OUTPOINT_SIZE];
    if (!node_tx_is_coinbase(tx)) {
        for (size_t i = 0; i < tx->nin; i++) {
            outpoint_key(key, tx->in[i].prev_txid, tx->in[i].prev_vout);
            node_hmap_del(utxo, key);
        }
    }
    for (size_t i = 0; i < tx->nout; i++) {
        /* OP_RETURN outputs are provably unspendable: never in the set. */
        if (tx->out[i].script_len > 0 && tx->out[i].script[0] == 0x6a)
            continue;
        outpoint_key(key, tx->txid, (uint32_t)i);
        if (node_hmap_put(utxo, key, (uint64_t)tx->out[i].value) != 0)
            return -1;
    }
    return 0;
}

int node_chainstate_has_unspent(const struct node_hmap *utxo, const uint8_t txid[32])
{
    /* Outputs are numbered densely; checking the first few is enough. */
    uint8_t key[OUTPOINT_SIZE];
    int found = 0;
    for (uint32_t v = 0; v < 4 && !found; v++) {
        outpoint_key(key, txid, v);
        found = node_hmap_get(utxo, key, NULL);
    }
    return found;
}

static int put_outpoint(void *ctx, const void *key, uint64_t v)
{
    struct node_buf *b = ctx;
    node_codec_buf_put(b, key, OUTPOINT_SIZE);
    node_codec_buf_u64le(b, v);
    return b->failed;
}

int node_chainstate_encode(const struct node_chainstate_tip *tip, const struct node_hmap *utxo,
                           struct node_buf *b)
{
    uint8_t sum[32];
    size_t start = b->len;

    node_codec_buf_u32le(b, STATE_MAGIC);
    node_codec_buf_u32le(b, STATE_VERSION);
    node_codec_buf_u64le(b, (uint64_t)tip->height);
    node_codec_buf_put(b, tip->hash, 32);
    node_codec_buf_u64le(b, (uint64_t)tip->pruned_below);
    node_codec_buf_u64le(b, node_hmap_count(utxo));
    node_hmap_each(utxo, put_outpoint, b);
    if (b->failed || node_codec_sha256d(b->data + start, b->len - start, NULL, 0, sum) != 0 ||
        node_codec_buf_put(b, sum, 32) != 0)
        return -1;
    return 0;
}

int node_chainstate_read(const char *path, struct node_chainstate_tip *tip, struct node_hmap *utxo,
                         uint64_t *bytes, char *err, size_t errlen)
{
    uint8_t *data = NULL, sum[32];
    size_t len;
    uint32_t magic, version;
    uint64_t h, count, pruned = 0;
    const uint8_t *p;
    int rc = -1;

    if (node_store_read(path, (size_t)1 << 34, &data, &len, err, errlen) != 0)
        return errno == ENOENT ? 0 : -1;
    struct node_reader r = {data, len < 32 ? 0 : len - 32, 0};
    if (len < 32 || node_codec_sha256d(data, len - 32, NULL, 0, sum) != 0 ||
        memcmp(sum, data + len - 32, 32) != 0) {
        SYS_ERR("%s: checksum mismatch", path);
        goto fail;
    }
    if (node_codec_read_u32le(&r, &magic) != 0 || magic != STATE_MAGIC ||
        node_codec_read_u32le(&r, &version) != 0 || version < 1 || version > STATE_VERSION ||
        node_codec_read_u64le(&r, &h) != 0 || node_codec_read_bytes(&r, 32, &p) != 0 ||
        (version >= 2 && node_codec_read_u64le(&r, &pruned) != 0) ||
        node_codec_read_u64le(&r, &count) != 0 || count > (r.len - r.pos) / (OUTPOINT_SIZE + 8) ||
        pruned > h) {
        SYS_ERR("%s: not a chainstate file of this version", path);
        goto fail;
    }
    tip->pruned_below = (int64_t)pruned;
    memcpy(tip->hash, p, 32);
    tip->height = (int64_t)h;
    for (uint64_t i = 0; i < count; i++) {
        const uint8_t *key;
        uint64_t v;
        node_codec_read_bytes(&r, OUTPOINT_SIZE, &key);
        node_codec_read_u64le(&r, &v);
        if (node_hmap_put(utxo, key, v) != 0) {
            SYS_ERR("%s: out of memory", path);
            goto fail;
        }
    }
    *bytes = len;
    rc = 1;
fail:
    free(data);
    return rc;
}
