/* cc-node byte-level modules: hashes, hex/varint, raw transaction decoding,
 * EVM envelope checks, addresses, the hash map and the token buckets. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/address.h"
#include "node/codec.h"
#include "node/hmap.h"
#include "node/ratelimit.h"
#include "node/tx.h"

static void hex32(const uint8_t h[32], int reverse, char out[65])
{
    node_codec_hex_encode(h, 32, reverse, out);
}

START_TEST(test_hashes)
{
    uint8_t h[32];
    char hex[65];
    ck_assert_int_eq(node_codec_sha256d("", 0, NULL, 0, h), 0);
    hex32(h, 0, hex);
    ck_assert_str_eq(hex, "5df6e0e2761359d30a8275058e299fcc0381534545f55cf43e41983f5d4c9456");
    node_codec_keccak256("", 0, h);
    hex32(h, 0, hex);
    ck_assert_str_eq(hex, "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
    node_codec_keccak256("abc", 3, h);
    hex32(h, 0, hex);
    ck_assert_str_eq(hex, "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45");
    /* exactly one rate block (136 bytes) exercises the padding-only block */
    uint8_t block[136];
    memset(block, 'a', sizeof(block));
    uint8_t h2[32];
    node_codec_keccak256(block, sizeof(block), h);
    node_codec_keccak256(block, sizeof(block) - 1, h2);
    ck_assert(memcmp(h, h2, 32) != 0);
}
END_TEST

START_TEST(test_varint_hex)
{
    struct node_buf b = {0};
    uint64_t v;
    ck_assert_int_eq(node_codec_buf_varint(&b, 0xfc), 0);
    ck_assert_int_eq(node_codec_buf_varint(&b, 0xfd), 0);
    ck_assert_int_eq(node_codec_buf_varint(&b, 0x10000), 0);
    ck_assert_int_eq(node_codec_buf_varint(&b, 0x100000000ULL), 0);
    ck_assert_uint_eq(b.len, 1 + 3 + 5 + 9);
    struct node_reader r = {b.data, b.len, 0};
    ck_assert_int_eq(node_codec_read_varint(&r, &v), 0);
    ck_assert_uint_eq(v, 0xfc);
    ck_assert_int_eq(node_codec_read_varint(&r, &v), 0);
    ck_assert_uint_eq(v, 0xfd);
    ck_assert_int_eq(node_codec_read_varint(&r, &v), 0);
    ck_assert_uint_eq(v, 0x10000);
    ck_assert_int_eq(node_codec_read_varint(&r, &v), 0);
    ck_assert_uint_eq(v, 0x100000000ULL);
    ck_assert_int_eq(node_codec_read_varint(&r, &v), -1);
    node_codec_buf_free(&b);
    /* non-canonical: 0xfd prefix for a value < 0xfd */
    const uint8_t nc[] = {0xfd, 0x10, 0x00};
    struct node_reader r2 = {nc, sizeof(nc), 0};
    ck_assert_int_eq(node_codec_read_varint(&r2, &v), -1);

    uint8_t *out;
    size_t len;
    ck_assert_int_eq(node_codec_hex_decode("00ffA0", 6, &out, &len), 0);
    ck_assert_uint_eq(len, 3);
    ck_assert_uint_eq(out[2], 0xa0);
    free(out);
    ck_assert_int_eq(node_codec_hex_decode("0", 1, &out, &len), -1);
    ck_assert_int_eq(node_codec_hex_decode("zz", 2, &out, &len), -1);
    ck_assert_ptr_null(out);
}
END_TEST

/* Bitcoin's genesis coinbase: a real transaction with a known txid. */
static const char *GENESIS_TX =
    "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff4d04ffff00"
    "1d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e206272696e6b"
    "206f66207365636f6e64206261696c6f757420666f722062616e6b73ffffffff0100f2052a0100000043410467"
    "8afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec1"
    "12de5c384df7ba0b8d578a4c702b6bf11d5fac00000000";

START_TEST(test_tx_genesis)
{
    uint8_t *raw;
    size_t len;
    struct node_tx tx;
    char err[128], hex[65];
    ck_assert_int_eq(node_codec_hex_decode(GENESIS_TX, strlen(GENESIS_TX), &raw, &len), 0);
    ck_assert_int_eq(node_tx_decode(raw, len, &tx, err, sizeof(err)), 0);
    hex32(tx.txid, 1, hex);
    ck_assert_str_eq(hex, "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b");
    ck_assert(node_tx_is_coinbase(&tx));
    ck_assert_uint_eq(tx.nout, 1);
    ck_assert_int_eq(tx.out[0].value, 5000000000LL);
    ck_assert_uint_eq(tx.weight, len * 4);
    node_tx_free(&tx);
    /* every truncation and one trailing byte are rejected */
    for (size_t cut = 0; cut < len; cut++)
        ck_assert_int_eq(node_tx_decode(raw, cut, &tx, err, sizeof(err)), -1);
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, raw, len);
    longer[len] = 0;
    ck_assert_int_eq(node_tx_decode(longer, len + 1, &tx, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "1 trailing bytes");
    free(longer);
    free(raw);
}
END_TEST

START_TEST(test_tx_segwit)
{
    /* version 2, marker+flag, 1 input, 1 output (OP_TRUE), witness [32 bytes], locktime */
    struct node_buf b = {0};
    uint8_t prev[32];
    memset(prev, 7, 32);
    node_codec_buf_u32le(&b, 2);
    node_codec_buf_put(&b, "\x00\x01", 2);
    node_codec_buf_varint(&b, 1);
    node_codec_buf_put(&b, prev, 32);
    node_codec_buf_u32le(&b, 0);
    node_codec_buf_varint(&b, 0);
    node_codec_buf_u32le(&b, 0xffffffff);
    node_codec_buf_varint(&b, 1);
    node_codec_buf_u64le(&b, 1000);
    node_codec_buf_put(&b, "\x01\x51", 2);
    node_codec_buf_put(&b, "\x01\x20", 2);
    for (int i = 0; i < 32; i++)
        node_codec_buf_put(&b, "\x11", 1);
    node_codec_buf_u32le(&b, 0);
    struct node_tx tx;
    char err[128];
    ck_assert_int_eq(node_tx_decode(b.data, b.len, &tx, err, sizeof(err)), 0);
    ck_assert(tx.segwit);
    ck_assert_uint_eq(tx.base_size, b.len - 2 - 34);
    ck_assert_uint_eq(tx.weight, tx.base_size * 3 + b.len);
    ck_assert(memcmp(tx.txid, tx.wtxid, 32) != 0);
    ck_assert_uint_eq(tx.in[0].nwitness, 1);
    node_tx_free(&tx);
    /* bad flag; an empty witness record is superfluous */
    b.data[5] = 0x02;
    ck_assert_int_eq(node_tx_decode(b.data, b.len, &tx, err, sizeof(err)), -1);
    b.data[5] = 0x01;
    b.data[b.len - 4 - 34] = 0x00; /* witness item count 0 ... */
    ck_assert_int_eq(node_tx_decode(b.data, b.len - 33, &tx, err, sizeof(err)), -1);
    /* huge input count does not allocate */
    const uint8_t huge[] = {1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    ck_assert_int_eq(node_tx_decode(huge, sizeof(huge), &tx, err, sizeof(err)), -1);
    node_codec_buf_free(&b);
}
END_TEST

START_TEST(test_evm_envelope)
{
    char err[128];
    /* legacy: list of 9 single-byte items */
    const uint8_t legacy[] = {0xc9, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    ck_assert_int_eq(node_tx_evm_check(legacy, sizeof(legacy), err, sizeof(err)), 0);
    const uint8_t typed[] = {0x02, 0xc9, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    ck_assert_int_eq(node_tx_evm_check(typed, sizeof(typed), err, sizeof(err)), 0);
    ck_assert_int_eq(node_tx_evm_check(legacy, sizeof(legacy) - 1, err, sizeof(err)), -1);
    const uint8_t trailing[] = {0xc9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0};
    ck_assert_int_eq(node_tx_evm_check(trailing, sizeof(trailing), err, sizeof(err)), -1);
    const uint8_t not_list[] = {0x83, 1, 2, 3};
    ck_assert_int_eq(node_tx_evm_check(not_list, sizeof(not_list), err, sizeof(err)), -1);
    const uint8_t noncanon[] = {0xf8, 0x05, 1, 2, 3, 4, 5};
    ck_assert_int_eq(node_tx_evm_check(noncanon, sizeof(noncanon), err, sizeof(err)), -1);
    const uint8_t overrun[] = {0xc9, 0x88, 1, 2, 3, 4, 5, 6, 7, 8};
    ck_assert_int_eq(node_tx_evm_check(overrun, sizeof(overrun), err, sizeof(err)), -1);
    ck_assert_int_eq(node_tx_evm_check(NULL, 0, err, sizeof(err)), -1);
}
END_TEST

START_TEST(test_addresses)
{
    uint8_t s[NODE_SCRIPT_MAX];
    size_t n;
    ck_assert_int_eq(node_address_script("midSACfDe3qAxJZZXA9gkwBZgPqJJUpy1w", s, &n), 0);
    ck_assert_uint_eq(n, 25);
    ck_assert_uint_eq(s[0], 0x76);
    ck_assert_uint_eq(s[3], 0x22);
    ck_assert_int_eq(node_address_script("2MwuwnWHKuPv74ExQ17YvwboZ5yMGwqUamA", s, &n), 0);
    ck_assert_uint_eq(n, 23);
    ck_assert_uint_eq(s[0], 0xa9);
    ck_assert_int_eq(node_address_script("bcrt1qg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyay3npn", s, &n), 0);
    ck_assert_uint_eq(n, 22);
    ck_assert_uint_eq(s[0], 0x00);
    ck_assert_uint_eq(s[2], 0x44);
    ck_assert_int_eq(node_address_script(
                         "bcrt1p242424242424242424242424242424242424242424242424242sx5qtnj", s, &n),
                     0);
    ck_assert_uint_eq(n, 34);
    ck_assert_uint_eq(s[0], 0x51);
    /* checksum errors, mainnet, wrong hrp, mixed case, garbage */
    ck_assert_int_eq(node_address_script("midSACfDe3qAxJZZXA9gkwBZgPqJJUpy1x", s, &n), -1);
    ck_assert_int_eq(node_address_script("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", s, &n), -1);
    ck_assert_int_eq(node_address_script("bcrt1qg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyay3npq", s, &n),
                     -1);
    ck_assert_int_eq(node_address_script("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", s, &n), -1);
    ck_assert_int_eq(node_address_script("bcrt1Qg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyay3npn", s, &n),
                     -1);
    ck_assert_int_eq(node_address_script("", s, &n), -1);
    ck_assert_int_eq(node_address_script("0OIl", s, &n), -1);
}
END_TEST

START_TEST(test_hmap)
{
    struct node_hmap *m = node_hmap_new(36);
    uint8_t key[36];
    uint64_t v;
    ck_assert_ptr_nonnull(m);
    for (uint32_t i = 0; i < 5000; i++) {
        memset(key, 0, sizeof(key));
        memcpy(key + 32, &i, 4); /* equal first 32 bytes: worst case for clustering */
        ck_assert_int_eq(node_hmap_put(m, key, i * 2), 0);
    }
    ck_assert_uint_eq(node_hmap_count(m), 5000);
    for (uint32_t i = 0; i < 5000; i += 2) {
        memset(key, 0, sizeof(key));
        memcpy(key + 32, &i, 4);
        ck_assert_int_eq(node_hmap_del(m, key), 1);
        ck_assert_int_eq(node_hmap_del(m, key), 0);
    }
    for (uint32_t i = 0; i < 5000; i++) {
        memset(key, 0, sizeof(key));
        memcpy(key + 32, &i, 4);
        int found = node_hmap_get(m, key, &v);
        ck_assert_int_eq(found, (int)(i % 2));
        if (found)
            ck_assert_uint_eq(v, i * 2);
    }
    ck_assert_uint_eq(node_hmap_count(m), 2500);
    node_hmap_free(m);
    ck_assert_ptr_null(node_hmap_new(4));
}
END_TEST

START_TEST(test_ratelimit)
{
    struct node_ratelimit *rl = node_ratelimit_new(64 * 4); /* 4 keys per stripe */
    double retry = 0;
    ck_assert_ptr_nonnull(rl);
    /* burst 3 at t=0, then refusal with the time to the next token */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(node_ratelimit_take(rl, "ip:a", 2, 3, 1, 100.0, &retry), 1);
    ck_assert_int_eq(node_ratelimit_take(rl, "ip:a", 2, 3, 1, 100.0, &retry), 0);
    ck_assert_double_eq_tol(retry, 0.5, 1e-9);
    /* refill at 2/s: after 1 s, two tokens */
    ck_assert_int_eq(node_ratelimit_take(rl, "ip:a", 2, 3, 1, 101.0, &retry), 1);
    ck_assert_int_eq(node_ratelimit_take(rl, "ip:a", 2, 3, 1, 101.0, &retry), 1);
    ck_assert_int_eq(node_ratelimit_take(rl, "ip:a", 2, 3, 1, 101.0, &retry), 0);
    /* never above burst, however long idle */
    ck_assert_int_eq(node_ratelimit_take(rl, "ip:a", 2, 3, 4, 1000.0, &retry), 0);
    ck_assert_double_eq_tol(retry, 0.5, 1e-9);
    ck_assert_int_eq(node_ratelimit_take(rl, "ip:a", 2, 3, 3, 1000.0, &retry), 1);
    /* a batch cost and a refund */
    ck_assert_int_eq(node_ratelimit_take(rl, "ip:b", 1, 10, 8, 0, &retry), 1);
    node_ratelimit_refund(rl, "ip:b", 8);
    ck_assert_int_eq(node_ratelimit_take(rl, "ip:b", 1, 10, 10, 0, &retry), 1);
    /* keys are independent */
    ck_assert_int_eq(node_ratelimit_take(rl, "ip:c", 1, 1, 1, 0, &retry), 1);
    ck_assert_int_eq(node_ratelimit_take(rl, "ip:c", 1, 1, 1, 0, &retry), 0);
    /* the table is bounded: 10,000 distinct keys keep at most 256 buckets */
    char key[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof(key), "ip:10.0.%d.%d", i / 256, i % 256);
        ck_assert_int_eq(node_ratelimit_take(rl, key, 1, 1, 1, 2000.0 + i, NULL), 1);
    }
    ck_assert_uint_le(node_ratelimit_count(rl), 256);
    node_ratelimit_free(rl);
}
END_TEST

Suite *node_codec_suite(void)
{
    Suite *s = suite_create("node_codec");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_hashes);
    tcase_add_test(tc, test_varint_hex);
    tcase_add_test(tc, test_tx_genesis);
    tcase_add_test(tc, test_tx_segwit);
    tcase_add_test(tc, test_evm_envelope);
    tcase_add_test(tc, test_addresses);
    tcase_add_test(tc, test_hmap);
    tcase_add_test(tc, test_ratelimit);
    suite_add_tcase(s, tc);
    return s;
}
