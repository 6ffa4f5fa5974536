/* cc-node peer protocol: frame decoding (every prefix, every refusal),
 * message bodies, the backoff schedule and queue order, and the acceptance
 * of blocks from a peer by the chain (valid, duplicate, each invalid kind). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node/chain.h"
#include "node/codec.h"
#include "node/mempool.h"
#include "node/peer.h"
#include "sys.h"
#include "tests/unit/tmpdir.h"

static struct node_buf sample_frame(uint8_t type, const char *payload)
{
    struct node_buf b = {0};
    ck_assert_int_eq(node_peer_frame_append(&b, type, payload, strlen(payload)), 0);
    return b;
}

START_TEST(test_frame_roundtrip_and_prefixes)
{
    struct node_buf b = sample_frame(NODE_PEER_PING, "12345678");
    struct node_peer_frame f;
    enum node_peer_frame_error why;

    ck_assert_uint_eq(b.len, NODE_PEER_HEADER_SIZE + 8 + NODE_PEER_CHECKSUM_SIZE);
    ck_assert_int_eq(node_peer_frame_decode(b.data, b.len, &f, &why), NODE_PEER_FRAME);
    ck_assert_uint_eq(f.type, NODE_PEER_PING);
    ck_assert_uint_eq(f.len, 8);
    ck_assert_mem_eq(f.payload, "12345678", 8);
    ck_assert_uint_eq(f.consumed, b.len);
    /* Every strict prefix is incomplete, never an error. */
    for (size_t n = 0; n < b.len; n++)
        ck_assert_int_eq(node_peer_frame_decode(b.data, n, &f, &why), NODE_PEER_NEED_MORE);
    /* Two frames back to back: the first is decoded, its size consumed. */
    ck_assert_int_eq(node_peer_frame_append(&b, NODE_PEER_PONG, "x", 1), 0);
    ck_assert_int_eq(node_peer_frame_decode(b.data, b.len, &f, &why), NODE_PEER_FRAME);
    ck_assert_int_eq(node_peer_frame_decode(b.data + f.consumed, b.len - f.consumed, &f, &why),
                     NODE_PEER_FRAME);
    ck_assert_uint_eq(f.type, NODE_PEER_PONG);
    node_codec_buf_free(&b);
}
END_TEST

START_TEST(test_frame_refusals)
{
    struct node_buf b = sample_frame(NODE_PEER_ANNOUNCE, "payload");
    struct node_peer_frame f;
    enum node_peer_frame_error why;

    /* garbage is refused at its first byte */
    ck_assert_int_eq(node_peer_frame_decode((const uint8_t *)"G", 1, &f, &why), NODE_PEER_ERROR);
    ck_assert_int_eq(why, NODE_PEER_E_MAGIC);
    ck_assert_uint_eq(f.consumed, 0);
    b.data[4] = 0;
    ck_assert_int_eq(node_peer_frame_decode(b.data, 5, &f, &why), NODE_PEER_ERROR);
    ck_assert_int_eq(why, NODE_PEER_E_TYPE);
    b.data[4] = NODE_PEER_TYPE_MAX + 1;
    ck_assert_int_eq(node_peer_frame_decode(b.data, b.len, &f, &why), NODE_PEER_ERROR);
    ck_assert_int_eq(why, NODE_PEER_E_TYPE);
    b.data[4] = NODE_PEER_ANNOUNCE;
    /* a length one past the bound, judged from the header alone */
    uint32_t big = NODE_PEER_MAX_PAYLOAD + 1;
    memcpy(b.data + 5, &big, 4);
    ck_assert_int_eq(node_peer_frame_decode(b.data, NODE_PEER_HEADER_SIZE, &f, &why),
                     NODE_PEER_ERROR);
    ck_assert_int_eq(why, NODE_PEER_E_OVERSIZE);
    uint32_t len = 7;
    memcpy(b.data + 5, &len, 4);
    /* a flipped payload byte: checksum error, but the frame can be skipped */
    b.data[NODE_PEER_HEADER_SIZE] ^= 1;
    ck_assert_int_eq(node_peer_frame_decode(b.data, b.len, &f, &why), NODE_PEER_ERROR);
    ck_assert_int_eq(why, NODE_PEER_E_CHECKSUM);
    ck_assert_uint_eq(f.consumed, b.len);
    ck_assert_str_eq(node_peer_frame_error_name(NODE_PEER_E_CHECKSUM), "bad_checksum");
    /* oversize payloads are not encoded either */
    ck_assert_int_eq(node_peer_frame_append(&b, NODE_PEER_BLOCK, b.data, NODE_PEER_MAX_PAYLOAD + 1),
                     -1);
    node_codec_buf_free(&b);
}
END_TEST

START_TEST(test_messages)
{
    struct node_peer_hello h = {.version = 1, .flavour = 1, .height = 42, .nonce = 7}, back;
    struct node_buf b = {0};
    uint64_t u, height;
    uint32_t count;
    uint8_t hash[32], tip[32];
    const uint8_t *raw;
    size_t rawlen;

    strcpy(h.chain, "evm-1");
    strcpy(h.subver, "/cc-node:0.1.0/x");
    memset(h.tip, 0xab, 32);
    memset(h.genesis, 0xcd, 32);
    ck_assert_int_eq(node_peer_hello_encode(&b, &h), 0);
    ck_assert_int_eq(node_peer_hello_decode(b.data, b.len, &back), 0);
    ck_assert_str_eq(back.chain, "evm-1");
    ck_assert_str_eq(back.subver, "/cc-node:0.1.0/x");
    ck_assert_uint_eq(back.height, 42);
    ck_assert_uint_eq(back.nonce, 7);
    ck_assert_mem_eq(back.genesis, h.genesis, 32);
    /* short, or with a trailing byte: malformed */
    ck_assert_int_eq(node_peer_hello_decode(b.data, b.len - 1, &back), -1);
    node_codec_buf_put(&b, "", 1);
    ck_assert_int_eq(node_peer_hello_decode(b.data, b.len, &back), -1);
    node_codec_buf_free(&b);

    memset(tip, 3, 32);
    node_peer_announce_encode(&b, 9, tip);
    ck_assert_int_eq(node_peer_announce_decode(b.data, b.len, &height, hash), 0);
    ck_assert_uint_eq(height, 9);
    ck_assert_mem_eq(hash, tip, 32);
    node_codec_buf_free(&b);

    node_peer_getblocks_encode(&b, 5, NODE_PEER_MAX_GETBLOCKS);
    ck_assert_int_eq(node_peer_getblocks_decode(b.data, b.len, &u, &count), 0);
    ck_assert_uint_eq(u, 5);
    node_codec_buf_free(&b);
    node_peer_getblocks_encode(&b, 5, NODE_PEER_MAX_GETBLOCKS + 1);
    ck_assert_int_eq(node_peer_getblocks_decode(b.data, b.len, &u, &count), -1);
    node_codec_buf_free(&b);
    node_peer_getblocks_encode(&b, 5, 0);
    ck_assert_int_eq(node_peer_getblocks_decode(b.data, b.len, &u, &count), -1);
    node_codec_buf_free(&b);

    node_peer_block_encode(&b, 3, (const uint8_t *)"blockbytes", 10);
    ck_assert_int_eq(node_peer_block_decode(b.data, b.len, &height, &raw, &rawlen), 0);
    ck_assert_uint_eq(height, 3);
    ck_assert_uint_eq(rawlen, 10);
    ck_assert_mem_eq(raw, "blockbytes", 10);
    ck_assert_int_eq(node_peer_block_decode(b.data, 7, &height, &raw, &rawlen), -1);
    node_codec_buf_free(&b);

    struct node_peer_reject rj = {.type = NODE_PEER_BLOCK}, rb;
    strcpy(rj.reason, "high-hash");
    node_peer_reject_encode(&b, &rj);
    ck_assert_int_eq(node_peer_reject_decode(b.data, b.len, &rb), 0);
    ck_assert_str_eq(rb.reason, "high-hash");
    ck_assert_uint_eq(rb.type, NODE_PEER_BLOCK);
    /* a string with a NUL inside is malformed */
    b.data[3] = 0;
    ck_assert_int_eq(node_peer_reject_decode(b.data, b.len, &rb), -1);
    node_codec_buf_free(&b);
}
END_TEST

START_TEST(test_backoff_schedule)
{
    /* initial 0.2 s, max 1 s: 0.2, 0.4, 0.8, 1, 1 ... before jitter */
    static const double full[] = {0.2, 0.4, 0.8, 1.0, 1.0, 1.0};
    for (unsigned k = 0; k < ARRAY_LEN(full); k++) {
        ck_assert_double_eq_tol(node_peer_backoff(0.2, 1.0, k, 0.0), full[k] / 2, 1e-9);
        ck_assert_double_eq_tol(node_peer_backoff(0.2, 1.0, k, 0.5), full[k] * 0.75, 1e-9);
        double hi = node_peer_backoff(0.2, 1.0, k, 0.999999);
        ck_assert(hi <= full[k] && hi > full[k] * 0.999);
    }
    /* the seed's defaults: 5 s doubling up to an hour, no overflow far out */
    ck_assert_double_eq_tol(node_peer_backoff(5, 3600, 9, 1.0), 2560, 1e-9);
    ck_assert_double_eq_tol(node_peer_backoff(5, 3600, 10, 1.0), 3600, 1e-9);
    ck_assert_double_eq_tol(node_peer_backoff(5, 3600, 4000000000u, 1.0), 3600, 1e-9);
    /* out-of-range jitter inputs are clamped into [0.5, 1] x */
    ck_assert_double_eq_tol(node_peer_backoff(1, 10, 0, -3), 0.5, 1e-9);
    ck_assert_double_eq_tol(node_peer_backoff(1, 10, 0, 7), 1.0, 1e-9);
}
END_TEST

START_TEST(test_quality_and_queue)
{
    double fresh = node_peer_quality(-1, 0, 0, 0);
    double fast = node_peer_quality(1, 0, 0, 0), slow = node_peer_quality(500, 0, 0, 0);
    ck_assert(fast > slow);
    ck_assert(fast > fresh); /* a measured 1 ms beats unknown latency */
    ck_assert(node_peer_quality(1, 2, 0, 0) < fast);
    ck_assert(node_peer_quality(1, 0, 1, 0) < fast);
    ck_assert(node_peer_quality(1, 0, 0, 600) > node_peer_quality(1, 0, 0, 0));
    ck_assert_double_eq(node_peer_quality(5000, 100, 100, 0), 0);
    ck_assert(node_peer_quality(0, 0, 0, 1e9) <= 100);
    /* quality first, then the earlier due time */
    ck_assert_int_lt(node_peer_queue_cmp(90, 5, 80, 1), 0);
    ck_assert_int_gt(node_peer_queue_cmp(80, 1, 90, 5), 0);
    ck_assert_int_lt(node_peer_queue_cmp(80, 1, 80, 2), 0);
    ck_assert_int_eq(node_peer_queue_cmp(80, 1, 80, 1), 0);
}
END_TEST

static char dir_a[64], dir_b[64];

static void chains_setup(void)
{
    unit_tmpdir(dir_a, sizeof(dir_a), "ccnode-peer-a");
    unit_tmpdir(dir_b, sizeof(dir_b), "ccnode-peer-b");
}

static void chains_teardown(void)
{
    ck_assert_int_eq(unit_rmtree(dir_a), 0);
    ck_assert_int_eq(unit_rmtree(dir_b), 0);
}

/* Regrind the nonce of a header until its proof of work passes (`want` 1)
 * or fails (`want` 0). */
static void grind(uint8_t *raw, int want)
{
    struct node_header h;
    uint8_t hash[32];
    node_headers_unpack(raw, &h);
    for (;; h.nonce++) {
        node_headers_pack(&h, raw);
        ck_assert_int_eq(node_codec_sha256d(raw, NODE_HEADER_SIZE, NULL, 0, hash), 0);
        /* regtest target: the top byte of the little-endian hash below 0x80 */
        if ((hash[31] < 0x7f) == want && (hash[31] != 0x7f))
            return;
    }
}

START_TEST(test_accept_block)
{
    static const uint8_t op_true[] = {0x51};
    char err[256];
    struct node_chain *a = node_chain_open(dir_a, 0, err, sizeof(err));
    struct node_chain *b = node_chain_open(dir_b, 0, err, sizeof(err));
    struct node_mempool *mp = node_mempool_new(1 << 20);
    uint8_t *raw = NULL, *bad = NULL;
    size_t len;

    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_nonnull(mp);
    ck_assert_int_eq(node_chain_generate(a, mp, op_true, 1, 2, NULL, err, sizeof(err)), 0);
    /* block 2 before block 1 does not extend b's tip */
    ck_assert_int_eq(node_chain_read_block(a, 2, &raw, &len, err, sizeof(err)), 0);
    ck_assert_int_eq(node_chain_accept_block(b, mp, raw, len, err, sizeof(err)),
                     NODE_ACCEPT_INVALID);
    ck_assert_str_eq(err, "bad-prevblk");
    free(raw);
    ck_assert_int_eq(node_chain_read_block(a, 1, &raw, &len, err, sizeof(err)), 0);

    bad = malloc(len);
    ck_assert_ptr_nonnull(bad);
    /* a hash above the target */
    memcpy(bad, raw, len);
    grind(bad, 0);
    ck_assert_int_eq(node_chain_accept_block(b, mp, bad, len, err, sizeof(err)),
                     NODE_ACCEPT_INVALID);
    ck_assert_str_eq(err, "high-hash");
    /* easier bits than regtest's */
    memcpy(bad, raw, len);
    bad[72 + 3] = 0x21;
    ck_assert_int_eq(node_chain_accept_block(b, mp, bad, len, err, sizeof(err)),
                     NODE_ACCEPT_INVALID);
    ck_assert_str_eq(err, "bad-diffbits");
    /* a wrong merkle root with a valid proof of work */
    memcpy(bad, raw, len);
    bad[36] ^= 0xff;
    grind(bad, 1);
    ck_assert_int_eq(node_chain_accept_block(b, mp, bad, len, err, sizeof(err)),
                     NODE_ACCEPT_INVALID);
    ck_assert_str_eq(err, "bad-txnmrklroot");
    /* a truncated body */
    ck_assert_int_eq(node_chain_accept_block(b, mp, raw, len - 1, err, sizeof(err)),
                     NODE_ACCEPT_INVALID);
    ck_assert_str_eq(err, "bad-blk-malformed");
    ck_assert_int_eq(node_chain_height(b), 0);

    /* the real block is accepted once, then known */
    ck_assert_int_eq(node_chain_accept_block(b, mp, raw, len, err, sizeof(err)), NODE_ACCEPT_OK);
    ck_assert_int_eq(node_chain_height(b), 1);
    ck_assert_int_eq(node_chain_accept_block(b, mp, raw, len, err, sizeof(err)), NODE_ACCEPT_HAVE);
    free(raw);
    ck_assert_int_eq(node_chain_read_block(a, 2, &raw, &len, err, sizeof(err)), 0);
    ck_assert_int_eq(node_chain_accept_block(b, mp, raw, len, err, sizeof(err)), NODE_ACCEPT_OK);
    free(raw);
    raw = NULL;

    /* b reopens at the same tip as a: block files and chainstate written */
    struct node_block_meta ma, mb;
    node_chain_close(b);
    b = node_chain_open(dir_b, 0, err, sizeof(err));
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(node_chain_height(b), 2);
    ck_assert_int_eq(node_chain_get(a, 2, &ma), 0);
    ck_assert_int_eq(node_chain_get(b, 2, &mb), 0);
    ck_assert_mem_eq(ma.hash, mb.hash, 32);
    ck_assert_uint_eq(node_chain_utxo_count(a), node_chain_utxo_count(b));

    free(bad);
    node_mempool_free(mp);
    node_chain_close(a);
    node_chain_close(b);
}
END_TEST

Suite *peer_suite(void)
{
    Suite *s = suite_create("peer");
    TCase *tc = tcase_create("codec");
    tcase_add_test(tc, test_frame_roundtrip_and_prefixes);
    tcase_add_test(tc, test_frame_refusals);
    tcase_add_test(tc, test_messages);
    tcase_add_test(tc, test_backoff_schedule);
    tcase_add_test(tc, test_quality_and_queue);
    suite_add_tcase(s, tc);
    tc = tcase_create("accept");
    tcase_add_checked_fixture(tc, chains_setup, chains_teardown);
    tcase_add_test(tc, test_accept_block);
    suite_add_tcase(s, tc);
    return s;
}
