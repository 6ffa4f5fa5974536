/* Byte-level helpers shared by the chain modules: growable buffers, Bitcoin
 * varints, hex, and the two hashes (double SHA-256 through libcrypto's EVP,
 * Keccak-256 on nettle's Keccak-f[1600] permutation). */
#ifndef CCNODE_CODEC_H
#define CCNODE_CODEC_H

#include <stddef.h>
#include <stdint.h>

struct node_buf {
    uint8_t *data; /* malloc'd */
    size_t len, cap;
    int failed; /* set when an append ran out of memory; later appends are no-ops */
};

/* Appenders: they set buf->failed on allocation failure and return -1. */
int node_codec_buf_put(struct node_buf *b, const void *p, size_t n);
int node_codec_buf_u32le(struct node_buf *b, uint32_t v);
int node_codec_buf_u64le(struct node_buf *b, uint64_t v);
int node_codec_buf_varint(struct node_buf *b, uint64_t v);
void node_codec_buf_free(struct node_buf *b);

/* A read cursor over bytes; reads return 0, or -1 past the end. */
struct node_reader {
    const uint8_t *p;
    size_t len, pos;
};
int node_codec_read_bytes(struct node_reader *r, size_t n, const uint8_t **out);
int node_codec_read_u32le(struct node_reader *r, uint32_t *v);
int node_codec_read_u64le(struct node_reader *r, uint64_t *v);
/* Canonical (shortest) encoding only, as Bitcoin Core's ReadCompactSize. */
int node_codec_read_varint(struct node_reader *r, uint64_t *v);

/* Lower-case hex of n bytes into out (2n+1 bytes); reversed when `reverse`
 * (Bitcoin displays hashes byte-reversed). */
void node_codec_hex_encode(const uint8_t *p, size_t n, int reverse, char *out);
/* Decode an even-length hex string of `len` chars into a malloc'd buffer.
 * 0, or -1 on odd length or a non-hex character (or out of memory, *out NULL
 * and errno ENOMEM). */
int node_codec_hex_decode(const char *s, size_t len, uint8_t **out, size_t *outlen);
/* Decode exactly 32 bytes of hex (64 chars), reversed when `reverse`. 0 or -1. */
int node_codec_hex_decode32(const char *s, int reverse, uint8_t out[32]);

/* SHA-256(SHA-256(p)) of one or two slices (p2 may be NULL). 0 or -1. */
int node_codec_sha256d(const void *p, size_t n, const void *p2, size_t n2, uint8_t out[32]);
/* Keccak-256 (Ethereum's hash, pre-standard padding). */
void node_codec_keccak256(const void *p, size_t n, uint8_t out[32]);

#endif
