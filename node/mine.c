/* Block assembly and mining (see mine.h). */
#include "mine.h"

#include <stdlib.h>
#include <string.h>

#include "block.h"
#include "codec.h"
#include "headers.h"
#include "mempool.h"
#include "sys.h"
#include "tx.h"

int node_mine_block(int evm, int64_t height, const uint8_t prev[32], uint32_t time,
                    const struct node_mempool_entry *txs, size_t ntx, const uint8_t *script,
                    size_t script_len, struct node_buf *out, char *err, size_t errlen)
{
    struct node_buf cb = {0};
    struct node_header h;
    uint8_t(*ids)[32] = NULL;
    uint8_t hdr[NODE_HEADER_SIZE], hash[32];
    size_t total = ntx + (evm ? 0 : 1), k = 0;
    int rc = -1;

    memset(&h, 0, sizeof(h));
    h.version = 0x20000000;
    h.bits = NODE_REGTEST_BITS;
    h.time = time;
    if (height > 0)
        memcpy(h.prev, prev, 32);
    ids = calloc(total ? total : 1, 32);
    if (!ids) {
        SYS_ERR("out of memory");
        goto fail;
    }
    if (!evm) {
        struct node_tx tx;
        if (node_block_coinbase(&cb, height, script, script_len) != 0 ||
            node_block_tx_id(0, cb.data, cb.len, ids[k++], &tx, err, errlen) != 0) {
            SYS_ERR("coinbase: out of memory");
            goto fail;
        }
        node_tx_free(&tx);
    }
    for (size_t i = 0; i < ntx; i++)
        memcpy(ids[k++], txs[i].txid, 32);
    if (node_block_merkle_root(ids, total, h.merkle) != 0) {
        SYS_ERR("out of memory");
        goto fail;
    }
    for (;;) {
        node_headers_pack(&h, hdr);
        if (node_codec_sha256d(hdr, sizeof(hdr), NULL, 0, hash) != 0) {
            SYS_ERR("out of memory");
            goto fail;
        }
        if (node_block_check_pow(hash, h.bits))
            break;
        h.nonce++;
    }
    node_codec_buf_put(out, hdr, sizeof(hdr));
    node_codec_buf_varint(out, total);
    if (!evm) {
        node_codec_buf_varint(out, cb.len);
        node_codec_buf_put(out, cb.data, cb.len);
    }
    for (size_t i = 0; i < ntx; i++) {
        node_codec_buf_varint(out, txs[i].len);
        node_codec_buf_put(out, txs[i].raw, txs[i].len);
    }
    if (out->failed) {
        SYS_ERR("out of memory");
        goto fail;
    }
    rc = 0;
fail:
    free(ids);
    node_codec_buf_free(&cb);
    return rc;
}
