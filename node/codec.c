/* Buffers, varints, hex and hashes for the chain modules. */
#include "codec.h"

#include <errno.h>
#include <nettle/sha3.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sys.h"

int node_codec_buf_put(struct node_buf *b, const void *p, size_t n)
{
    if (b->failed)
        return -1;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *d = realloc(b->data, cap);
        if (!d) {
            b->failed = 1;
            return -1;
        }
        b->data = d;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int node_codec_buf_u32le(struct node_buf *b, uint32_t v)
{
    uint8_t x[4] = {v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >> 24};
    return node_codec_buf_put(b, x, sizeof(x));
}

int node_codec_buf_u64le(struct node_buf *b, uint64_t v)
{
    uint8_t x[8];
    for (size_t i = 0; i < ARRAY_LEN(x); i++)
        x[i] = (uint8_t)(v >> (8 * i));
    return node_codec_buf_put(b, x, sizeof(x));
}

int node_codec_buf_varint(struct node_buf *b, uint64_t v)
{
    uint8_t x[9];
    size_t n;
    if (v < 0xfd) {
        x[0] = (uint8_t)v;
        n = 1;
    } else if (v <= 0xffff) {
        x[0] = 0xfd;
        x[1] = v & 0xff;
        x[2] = (uint8_t)(v >> 8);
        n = 3;
    } else if (v <= 0xffffffff) {
        x[0] = 0xfe;
        for (int i = 0; i < 4; i++)
            x[1 + i] = (uint8_t)(v >> (8 * i));
        n = 5;
    } else {
        x[0] = 0xff;
        for (int i = 0; i < 8; i++)
            x[1 + i] = (uint8_t)(v >> (8 * i));
        n = 9;
    }
    return node_codec_buf_put(b, x, n);
}

void node_codec_buf_free(struct node_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

int node_codec_read_bytes(struct node_reader *r, size_t n, const uint8_t **out)
{
    if (n > r->len - r->pos)
        return -1;
    *out = r->p + r->pos;
    r->pos += n;
    return 0;
}

int node_codec_read_u32le(struct node_reader *r, uint32_t *v)
{
    const uint8_t *p;
    if (node_codec_read_bytes(r, 4, &p) != 0)
        return -1;
    *v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    return 0;
}

int node_codec_read_u64le(struct node_reader *r, uint64_t *v)
{
    const uint8_t *p;
    if (node_codec_read_bytes(r, 8, &p) != 0)
        return -1;
    *v = 0;
    for (int i = 7; i >= 0; i--)
        *v = *v << 8 | p[i];
    return 0;
}

int node_codec_read_varint(struct node_reader *r, uint64_t *v)
{
    const uint8_t *p;
    uint32_t v32;
    if (node_codec_read_bytes(r, 1, &p) != 0)
        return -1;
    if (*p < 0xfd) {
        *v = *p;
        return 0;
    }
    if (*p == 0xfd) {
        if (node_codec_read_bytes(r, 2, &p) != 0)
            return -1;
        *v = (uint64_t)p[0] | (uint64_t)p[1] << 8;
        return *v < 0xfd ? -1 : 0;
    }
    if (*p == 0xfe) {
        if (node_codec_read_u32le(r, &v32) != 0)
            return -1;
        *v = v32;
        return *v <= 0xffff ? -1 : 0;
    }
    if (node_codec_read_u64le(r, v) != 0)
        return -1;
    return *v <= 0xffffffff ? -1 : 0;
}

void node_codec_hex_encode(const uint8_t *p, size_t n, int reverse, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[reverse ? n - 1 - i : i];
        out[2 * i] = digits[c >> 4];
        out[2 * i + 1] = digits[c & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int node_codec_hex_decode(const char *s, size_t len, uint8_t **out, size_t *outlen)
{
    *out = NULL;
    if (len % 2)
        return -1;
    uint8_t *d = malloc(len / 2 + 1);
    if (!d) {
        errno = ENOMEM;
        return -1;
    }
    for (size_t i = 0; i < len / 2; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(d);
            errno = EINVAL;
            return -1;
        }
        d[i] = (uint8_t)(hi << 4 | lo);
    }
    *out = d;
    *outlen = len / 2;
    return 0;
}

int node_codec_hex_decode32(const char *s, int reverse, uint8_t out[32])
{
    if (strlen(s) != 64)
        return -1;
    for (size_t i = 0; i < 32; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[reverse ? 31 - i : i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int node_codec_sha256d(const void *p, size_t n, const void *p2, size_t n2, uint8_t out[32])
{
    uint8_t first[32];
    unsigned int len = 0;
    int rc = -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    if (!ctx)
        return -1;
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(ctx, p, n) != 1)
        goto fail;
    if (p2 && n2 && EVP_DigestUpdate(ctx, p2, n2) != 1)
        goto fail;
    if (EVP_DigestFinal_ex(ctx, first, &len) != 1)
        goto fail;
    if (EVP_Digest(first, sizeof(first), out, &len, EVP_sha256(), NULL) != 1)
        goto fail;
    rc = 0;
fail:
    EVP_MD_CTX_free(ctx);
    return rc;
}

/* The Keccak sponge around nettle's permutation: rate 136 bytes, capacity
 * 512 bits, Keccak's original multi-rate padding 0x01 ... 0x80 (SHA-3 uses
 * 0x06, which is why OpenSSL 3.0's SHA3-256 cannot be used here). */
#define KECCAK256_RATE 136

static void keccak_absorb(struct sha3_state *st, const uint8_t *block)
{
    for (size_t i = 0; i < KECCAK256_RATE / 8; i++) {
        uint64_t lane = 0;
        for (int b = 7; b >= 0; b--)
            lane = lane << 8 | block[8 * i + (size_t)b];
        st->a[i] ^= lane;
    }
    sha3_permute(st);
}

void node_codec_keccak256(const void *p, size_t n, uint8_t out[32])
{
    struct sha3_state st;
    uint8_t last[KECCAK256_RATE];
    const uint8_t *in = p;

    memset(&st, 0, sizeof(st));
    while (n >= KECCAK256_RATE) {
        keccak_absorb(&st, in);
        in += KECCAK256_RATE;
        n -= KECCAK256_RATE;
    }
    memset(last, 0, sizeof(last));
    if (n)
        memcpy(last, in, n);
    last[n] ^= 0x01;
    last[KECCAK256_RATE - 1] ^= 0x80;
    keccak_absorb(&st, last);
    for (size_t i = 0; i < 32; i++)
        out[i] = (uint8_t)(st.a[i / 8] >> (8 * (i % 8)));
}
