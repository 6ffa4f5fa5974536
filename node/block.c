/* Block format, proof of work, merkle roots and coinbases (see block.h). */
#include "block.h"

#include <string.h>

#include "codec.h"
#include "tx.h"

long node_block_txs(const uint8_t *raw, size_t len, struct node_slice *txs, size_t max)
{
    struct node_reader r = {raw, len, NODE_HEADER_SIZE};
    uint64_t n, tlen;
    if (len < NODE_HEADER_SIZE || node_codec_read_varint(&r, &n) != 0 || n > len)
        return -1;
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *p;
        if (node_codec_read_varint(&r, &tlen) != 0 ||
            node_codec_read_bytes(&r, (size_t)tlen, &p) != 0)
            return -1;
        if (i < max) {
            txs[i].p = p;
            txs[i].len = (size_t)tlen;
        }
    }
    return r.pos == len ? (long)n : -1;
}

int node_block_check_pow(const uint8_t hash[32], uint32_t bits)
{
    uint8_t target[32] = {0};
    unsigned exp = bits >> 24;
    uint32_t mant = bits & 0x7fffff;
    for (unsigned i = 0; i < 3; i++) {
        int pos = (int)exp - 3 + (int)i;
        if (pos >= 0 && pos < 32)
            target[pos] = (uint8_t)(mant >> (8 * i));
    }
    for (int i = 31; i >= 0; i--) {
        if (hash[i] != target[i])
            return hash[i] < target[i];
    }
    return 1;
}

int node_block_merkle_root(uint8_t (*ids)[32], size_t n, uint8_t out[32])
{
    if (n == 0) {
        memset(out, 0, 32);
        return 0;
    }
    while (n > 1) {
        size_t k = 0;
        for (size_t i = 0; i < n; i += 2) {
            const uint8_t *right = ids[i + 1 < n ? i + 1 : i];
            if (node_codec_sha256d(ids[i], 32, right, 32, ids[k++]) != 0)
                return -1;
        }
        n = k;
    }
    memcpy(out, ids[0], 32);
    return 0;
}

int node_block_tx_id(int evm, const uint8_t *raw, size_t len, uint8_t out[32],
                     struct node_tx *decoded, char *err, size_t errlen)
{
    if (evm) {
        node_codec_keccak256(raw, len, out);
        return 0;
    }
    if (node_tx_decode(raw, len, decoded, err, errlen) != 0)
        return -1;
    memcpy(out, decoded->txid, 32);
    return 0;
}

int64_t node_block_subsidy(int64_t height)
{
    int64_t halvings = height / 150;
    return halvings >= 64 ? 0 : (int64_t)((uint64_t)(50LL * 100000000LL) >> halvings);
}

int node_block_coinbase(struct node_buf *b, int64_t height, const uint8_t *script,
                        size_t script_len)
{
    static const uint8_t null_prev[32];
    uint8_t sig[16];
    size_t sl = 0;
    uint64_t h = (uint64_t)height;
    uint8_t num[8] = {0};
    size_t nl = 0;

    while (h) {
        num[nl++] = (uint8_t)h;
        h >>= 8;
    }
    if (nl && (num[nl - 1] & 0x80))
        num[nl++] = 0;
    sig[sl++] = (uint8_t)nl; /* push of the minimal script number; 0 pushes nothing */
    memcpy(sig + sl, num, nl);
    sl += nl;
    sig[sl++] = 0x00; /* OP_0: keeps scriptSig at least 2 bytes */
    node_codec_buf_u32le(b, 2);
    node_codec_buf_varint(b, 1);
    node_codec_buf_put(b, null_prev, 32);
    node_codec_buf_u32le(b, 0xffffffff);
    node_codec_buf_varint(b, sl);
    node_codec_buf_put(b, sig, sl);
    node_codec_buf_u32le(b, 0xffffffff);
    node_codec_buf_varint(b, 1);
    node_codec_buf_u64le(b, (uint64_t)node_block_subsidy(height));
    node_codec_buf_varint(b, script_len);
    node_codec_buf_put(b, script, script_len);
    node_codec_buf_u32le(b, 0);
    return b->failed ? -1 : 0;
}
