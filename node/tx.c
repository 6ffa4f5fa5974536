/* Raw transaction decoding (Bitcoin) and RLP envelope checks (Ethereum). */
#include "tx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "sys.h"

/* Smallest possible input (36 prevout + 1 script length + 4 sequence) and
 * output (8 value + 1 script length): bounds counts before allocating. */
#define MIN_IN_BYTES 41
#define MIN_OUT_BYTES 9

static int decode_inputs(struct node_reader *r, struct node_tx *tx, char *err, size_t errlen)
{
    uint64_t n;
    if (node_codec_read_varint(r, &n) != 0)
        return SYS_ERR("truncated input count");
    if (n > (r->len - r->pos) / MIN_IN_BYTES)
        return SYS_ERR("input count %llu exceeds the data", (unsigned long long)n);
    if (n == 0)
        return SYS_ERR("no inputs");
    tx->in = calloc((size_t)n, sizeof(*tx->in));
    if (!tx->in)
        return SYS_ERR("out of memory");
    tx->nin = (size_t)n;
    for (size_t i = 0; i < tx->nin; i++) {
        struct node_tx_in *in = &tx->in[i];
        const uint8_t *p;
        uint64_t slen;
        if (node_codec_read_bytes(r, 32, &p) != 0 || node_codec_read_u32le(r, &in->prev_vout) != 0)
            return SYS_ERR("input %zu: truncated prevout", i);
        memcpy(in->prev_txid, p, 32);
        if (node_codec_read_varint(r, &slen) != 0 ||
            node_codec_read_bytes(r, (size_t)slen, &in->script) != 0 || slen > r->len)
            return SYS_ERR("input %zu: truncated script", i);
        in->script_len = (size_t)slen;
        if (node_codec_read_u32le(r, &in->sequence) != 0)
            return SYS_ERR("input %zu: truncated sequence", i);
    }
    return 0;
}

static int decode_outputs(struct node_reader *r, struct node_tx *tx, char *err, size_t errlen)
{
    uint64_t n;
    if (node_codec_read_varint(r, &n) != 0)
        return SYS_ERR("truncated output count");
    if (n > (r->len - r->pos) / MIN_OUT_BYTES)
        return SYS_ERR("output count %llu exceeds the data", (unsigned long long)n);
    if (n) {
        tx->out = calloc((size_t)n, sizeof(*tx->out));
        if (!tx->out)
            return SYS_ERR("out of memory");
    }
    tx->nout = (size_t)n;
    for (size_t i = 0; i < tx->nout; i++) {
        struct node_tx_out *out = &tx->out[i];
        uint64_t value, slen;
        if (node_codec_read_u64le(r, &value) != 0)
            return SYS_ERR("output %zu: truncated value", i);
        if (value > (uint64_t)NODE_MAX_MONEY)
            return SYS_ERR("output %zu: value out of range", i);
        out->value = (int64_t)value;
        if (node_codec_read_varint(r, &slen) != 0 || slen > r->len ||
            node_codec_read_bytes(r, (size_t)slen, &out->script) != 0)
            return SYS_ERR("output %zu: truncated script", i);
        out->script_len = (size_t)slen;
    }
    return 0;
}

static int decode_witnesses(struct node_reader *r, struct node_tx *tx, char *err, size_t errlen)
{
    int any = 0;
    for (size_t i = 0; i < tx->nin; i++) {
        uint64_t items, ilen;
        const uint8_t *p;
        if (node_codec_read_varint(r, &items) != 0 || items > r->len - r->pos)
            return SYS_ERR("input %zu: truncated witness", i);
        for (uint64_t k = 0; k < items; k++) {
            if (node_codec_read_varint(r, &ilen) != 0 || ilen > r->len ||
                node_codec_read_bytes(r, (size_t)ilen, &p) != 0)
                return SYS_ERR("input %zu: truncated witness item", i);
        }
        tx->in[i].nwitness = (size_t)items;
        any |= items > 0;
    }
    if (!any)
        return SYS_ERR("superfluous witness record");
    return 0;
}

int node_tx_decode(const uint8_t *raw, size_t len, struct node_tx *tx, char *err, size_t errlen)
{
    struct node_reader r = {raw, len, 0};
    uint32_t version;
    size_t body_start, body_end;

    memset(tx, 0, sizeof(*tx));
    if (node_codec_read_u32le(&r, &version) != 0) {
        SYS_ERR("truncated version");
        goto fail;
    }
    tx->version = (int32_t)version;
    if (len - r.pos >= 2 && raw[r.pos] == 0x00) {
        if (raw[r.pos + 1] != 0x01) {
            SYS_ERR("unknown segwit flag 0x%02x", raw[r.pos + 1]);
            goto fail;
        }
        tx->segwit = 1;
        r.pos += 2;
    }
    body_start = r.pos;
    if (decode_inputs(&r, tx, err, errlen) != 0 || decode_outputs(&r, tx, err, errlen) != 0)
        goto fail;
    body_end = r.pos;
    if (tx->segwit && decode_witnesses(&r, tx, err, errlen) != 0)
        goto fail;
    if (node_codec_read_u32le(&r, &tx->locktime) != 0) {
        SYS_ERR("truncated locktime");
        goto fail;
    }
    if (r.pos != len) {
        SYS_ERR("%zu trailing bytes", len - r.pos);
        goto fail;
    }
    tx->size = len;
    tx->base_size = 4 + (body_end - body_start) + 4;
    tx->weight = tx->base_size * 3 + tx->size;
    {
        /* txid: the serialization without marker, flag and witnesses. */
        struct node_buf b = {0};
        node_codec_buf_put(&b, raw, 4);
        node_codec_buf_put(&b, raw + body_start, body_end - body_start);
        node_codec_buf_u32le(&b, tx->locktime);
        int rc = b.failed ? -1 : node_codec_sha256d(b.data, b.len, NULL, 0, tx->txid);
        node_codec_buf_free(&b);
        if (rc != 0 || node_codec_sha256d(raw, len, NULL, 0, tx->wtxid) != 0) {
            SYS_ERR("out of memory");
            goto fail;
        }
    }
    return 0;
fail:
    node_tx_free(tx);
    return -1;
}

void node_tx_free(struct node_tx *tx)
{
    free(tx->in);
    free(tx->out);
    tx->in = NULL;
    tx->out = NULL;
    tx->nin = tx->nout = 0;
}

int node_tx_is_coinbase(const struct node_tx *tx)
{
    static const uint8_t zero[32];
    return tx->nin == 1 && tx->in[0].prev_vout == 0xffffffff &&
           memcmp(tx->in[0].prev_txid, zero, 32) == 0;
}

/* One RLP item at r: its payload bounds and whether it is a list. Enforces
 * canonical lengths (no leading zeros, long form only for >= 56 bytes). */
static int rlp_item(struct node_reader *r, int *is_list, size_t *plen, char *err, size_t errlen)
{
    const uint8_t *p;
    if (node_codec_read_bytes(r, 1, &p) != 0)
        return SYS_ERR("rlp: unexpected end of input");
    uint8_t b = *p;
    if (b < 0x80) {
        *is_list = 0;
        r->pos--; /* the byte is its own payload */
        *plen = 1;
        return 0;
    }
    *is_list = b >= 0xc0;
    uint8_t base = *is_list ? 0xc0 : 0x80;
    if (b - base < 56) {
        *plen = (size_t)(b - base);
    } else {
        size_t nl = (size_t)(b - base - 55);
        const uint8_t *lp;
        uint64_t l = 0;
        if (node_codec_read_bytes(r, nl, &lp) != 0)
            return SYS_ERR("rlp: truncated length");
        if (lp[0] == 0)
            return SYS_ERR("rlp: non-canonical size information");
        for (size_t i = 0; i < nl; i++)
            l = l << 8 | lp[i];
        if (l < 56)
            return SYS_ERR("rlp: non-canonical size information");
        *plen = (size_t)l;
    }
    if (*plen > r->len - r->pos)
        return SYS_ERR("rlp: value size exceeds available input length");
    return 0;
}

int node_tx_evm_check(const uint8_t *raw, size_t len, char *err, size_t errlen)
{
    struct node_reader r = {raw, len, 0};
    int is_list;
    size_t plen, end, fields = 0;

    if (len == 0)
        return SYS_ERR("typed transaction too short");
    if (raw[0] < 0x80) {
        if (raw[0] > 0x7f || raw[0] == 0)
            return SYS_ERR("transaction type not supported");
        r.pos = 1;
    }
    if (rlp_item(&r, &is_list, &plen, err, errlen) != 0)
        return -1;
    if (!is_list)
        return SYS_ERR("rlp: expected input list for types.Transaction");
    end = r.pos + plen;
    if (end != len)
        return SYS_ERR("rlp: input contains more than one value");
    while (r.pos < end) {
        size_t flen;
        if (rlp_item(&r, &is_list, &flen, err, errlen) != 0)
            return -1;
        if (flen > end - r.pos)
            return SYS_ERR("rlp: element larger than containing list");
        r.pos += flen;
        fields++;
    }
    if (fields < 9)
        return SYS_ERR("rlp: too few elements for a signed transaction");
    return 0;
}
