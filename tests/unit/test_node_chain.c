/* cc-node chain store and config: genesis, block production with the
 * mempool, persistence, crash recovery (block files above the chainstate are
 * replayed; debris is discarded), corruption, and config validation. */
#include <check.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node/chain.h"
#include "node/codec.h"
#include "node/config.h"
#include "node/mempool.h"
#include "node/tx.h"
#include "tests/unit/tmpdir.h"
#include "sys.h"

static char dir[64];

static void setup(void)
{
    unit_tmpdir(dir, sizeof(dir), "ccnode-unit");
}

static void teardown(void)
{
    ck_assert_int_eq(unit_rmtree(dir), 0);
}

/* A minimal valid transaction spending a made-up outpoint. */
static size_t make_tx(uint8_t seed, uint8_t *out)
{
    struct node_buf b = {0};
    uint8_t prev[32];
    memset(prev, seed, 32);
    node_codec_buf_u32le(&b, 2);
    node_codec_buf_varint(&b, 1);
    node_codec_buf_put(&b, prev, 32);
    node_codec_buf_u32le(&b, 0);
    node_codec_buf_varint(&b, 0);
    node_codec_buf_u32le(&b, 0xffffffff);
    node_codec_buf_varint(&b, 2);
    node_codec_buf_u64le(&b, 1000);
    node_codec_buf_put(&b, "\x01\x51", 2);
    node_codec_buf_u64le(&b, 0);
    node_codec_buf_put(&b, "\x01\x6a", 2); /* OP_RETURN: not a UTXO */
    node_codec_buf_u32le(&b, 0);
    memcpy(out, b.data, b.len);
    size_t n = b.len;
    node_codec_buf_free(&b);
    return n;
}

START_TEST(test_genesis_generate_restart)
{
    char err[256];
    static const uint8_t op_true[] = {0x51};
    struct node_chain *c = node_chain_open(dir, 0, err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_eq(node_chain_height(c), 0);
    ck_assert_uint_eq(node_chain_utxo_count(c), 1);
    struct node_block_meta g;
    ck_assert_int_eq(node_chain_get(c, 0, &g), 0);

    struct node_mempool *mp = node_mempool_new(1 << 20);
    uint8_t raw[128];
    size_t len = make_tx(9, raw);
    struct node_tx tx;
    ck_assert_int_eq(node_tx_decode(raw, len, &tx, err, sizeof(err)), 0);
    ck_assert_int_eq(node_mempool_add(mp, tx.txid, raw, len, tx.weight), NODE_MEMPOOL_ADDED);
    ck_assert_int_eq(node_mempool_add(mp, tx.txid, raw, len, tx.weight), NODE_MEMPOOL_DUPLICATE);

    uint8_t hashes[3][32];
    ck_assert_int_eq(node_chain_generate(c, mp, op_true, 1, 3, hashes, err, sizeof(err)), 0);
    ck_assert_int_eq(node_chain_height(c), 3);
    size_t count, bytes;
    node_mempool_stats(mp, &count, &bytes);
    ck_assert_uint_eq(count, 0);
    /* genesis + 3 coinbases + 1 spendable output of the tx */
    ck_assert_uint_eq(node_chain_utxo_count(c), 5);
    ck_assert(node_chain_has_unspent(c, tx.txid));
    struct node_block_meta b1;
    ck_assert_int_eq(node_chain_get(c, 1, &b1), 0);
    ck_assert_uint_eq(b1.ntx, 2);
    ck_assert(memcmp(b1.header.prev, g.hash, 32) == 0);
    ck_assert(memcmp(b1.hash, hashes[0], 32) == 0);
    int64_t h;
    ck_assert_int_eq(node_chain_find(c, hashes[2], &h), 0);
    ck_assert_int_eq(h, 3);
    ck_assert_uint_gt(node_chain_median_time(c, 3), 0);
    uint64_t processed = atomic_load(&node_chain_stats(c)->blocks_processed);
    ck_assert_uint_eq(processed, 4);
    node_tx_free(&tx);
    node_chain_close(c);

    /* reopen: same tip, same UTXO set */
    c = node_chain_open(dir, 0, err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_eq(node_chain_height(c), 3);
    ck_assert_uint_eq(node_chain_utxo_count(c), 5);
    struct node_block_meta tip;
    ck_assert_int_eq(node_chain_get(c, 3, &tip), 0);
    ck_assert(memcmp(tip.hash, hashes[2], 32) == 0);
    ck_assert_int_eq(node_chain_check_storage(c, err, sizeof(err)), 0);
    ck_assert(node_chain_storage_ok(c));
    node_chain_close(c);
    node_mempool_free(mp);
}
END_TEST

START_TEST(test_crash_recovery)
{
    char err[256], path[256], cmd[512];
    static const uint8_t op_true[] = {0x51};
    struct node_mempool *mp = node_mempool_new(1 << 20);
    struct node_chain *c = node_chain_open(dir, 0, err, sizeof(err));
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(node_chain_generate(c, mp, op_true, 1, 2, NULL, err, sizeof(err)), 0);
    node_chain_close(c);
    /* keep the chainstate of height 2, grow to 4, put the old chainstate back:
     * as if the process died after writing blocks 3 and 4 */
    snprintf(cmd, sizeof(cmd), "cp '%s/chainstate.dat' '%s/cs.keep'", dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    c = node_chain_open(dir, 0, err, sizeof(err));
    ck_assert_int_eq(node_chain_generate(c, mp, op_true, 1, 2, NULL, err, sizeof(err)), 0);
    node_chain_close(c);
    snprintf(cmd, sizeof(cmd), "mv '%s/cs.keep' '%s/chainstate.dat'", dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    /* and a torn sixth block file */
    snprintf(path, sizeof(path), "%s/blocks/0000000005.blk", dir);
    FILE *f = fopen(path, "w");
    fputs("torn", f);
    fclose(f);
    c = node_chain_open(dir, 0, err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_eq(node_chain_height(c), 4);
    ck_assert_uint_eq(node_chain_utxo_count(c), 5);
    ck_assert_int_eq(access(path, F_OK), -1);
    node_chain_close(c);

    /* a missing block below the chainstate tip is an error, not a silent rewind */
    snprintf(path, sizeof(path), "%s/blocks/0000000002.blk", dir);
    ck_assert_int_eq(unlink(path), 0);
    c = node_chain_open(dir, 0, err, sizeof(err));
    ck_assert_ptr_null(c);
    ck_assert_ptr_nonnull(strstr(err, "0000000002.blk"));
    node_mempool_free(mp);
}
END_TEST

START_TEST(test_evm_chain)
{
    char err[256];
    struct node_mempool *mp = node_mempool_new(1 << 20);
    struct node_chain *c = node_chain_open(dir, 1, err, sizeof(err));
    ck_assert_ptr_nonnull(c);
    const uint8_t tx[] = {0xc9, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    uint8_t h[32];
    node_codec_keccak256(tx, sizeof(tx), h);
    ck_assert_int_eq(node_mempool_add(mp, h, tx, sizeof(tx), sizeof(tx) * 4), NODE_MEMPOOL_ADDED);
    ck_assert_int_eq(node_chain_generate(c, mp, NULL, 0, 1, NULL, err, sizeof(err)), 0);
    struct node_block_meta b;
    ck_assert_int_eq(node_chain_get(c, 1, &b), 0);
    ck_assert_uint_eq(b.ntx, 1);
    ck_assert_uint_eq(node_chain_utxo_count(c), 0);
    node_chain_close(c);
    c = node_chain_open(dir, 1, err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_eq(node_chain_height(c), 1);
    node_chain_close(c);
    node_mempool_free(mp);
}
END_TEST

static int load(const char *text, struct node_config *c, struct yamlcfg_error *e)
{
    return node_config_load_string("node.yaml", text, strlen(text), c, e);
}

START_TEST(test_config)
{
    struct node_config c;
    struct yamlcfg_error e;
    ck_assert_int_eq(load("node:\n  data_dir: /tmp/x\n", &c, &e), 0);
    ck_assert_str_eq(c.node.listen, "127.0.0.1:18332");
    ck_assert_int_eq(c.node.flavour, NODE_FLAVOUR_BITCOIN);
    ck_assert_double_eq(c.rpc.auth.rate_limit_rate, 100);
    ck_assert_double_eq(c.rpc.auth.rate_limit_burst, 200);
    ck_assert_ptr_null(c.cookie_path);
    node_config_free(&c);

    const char *full =
        "node: {flavour: evm, chain_id: 5, data_dir: /d, listen: '[::1]:8545'}\n"
        "network:\n  peers: ['10.0.0.1:8333']\n  max_peers: 8\n"
        "storage: {pruning_mode: aggressive, pruning_threshold_gb: 2.5, pruning_target_gb: 1.5}\n"
        "rpc:\n  auth:\n    cookie_file: .cookie\n    per_method_limits:\n"
        "      - {method: getblocktemplate, rate: 10, burst: 20}\n"
        "logging: {format: text, level: trace}\n";
    ck_assert_msg(load(full, &c, &e) == 0, "%s", e.text);
    ck_assert_int_eq(c.node.flavour, NODE_FLAVOUR_EVM);
    ck_assert_uint_eq(c.network.npeers, 1);
    ck_assert_int_eq(c.storage.pruning_mode, NODE_PRUNE_AGGRESSIVE);
    ck_assert_double_eq(c.storage.pruning_threshold_gb, 2.5);
    ck_assert_str_eq(c.cookie_path, "/d/.cookie");
    ck_assert_double_eq(node_config_method_limit(&c, "getblocktemplate")->burst, 20);
    ck_assert_ptr_null(node_config_method_limit(&c, "getblockcount"));
    ck_assert_int_eq(c.logging.level, 0);
    node_config_free(&c);

    struct {
        const char *text, *want;
    } bad[] = {
        {"node: {}\n", "data_dir"},
        {"node: {data_dir: /d, flavour: doge}\n", "node.yaml:1:"},
        {"node: {data_dir: /d, listen: nope}\n", "node.listen"},
        {"node: {data_dir: /d}\nstorage: {pruning_threshold_gb: 1, pruning_target_gb: 2}\n",
         "pruning_target_gb"},
        {"node: {data_dir: /d}\nrpc: {auth: {user: a}}\n", "together"},
        {"node: {data_dir: /d}\nrpc: {auth: {per_method_limits: [{method: a, rate: 1, burst: 1},"
         " {method: a, rate: 2, burst: 2}]}}\n",
         "duplicate"},
        {"node: {data_dir: /d}\nnetwork: {peers: [x]}\n", "network.peers"},
        {"node: {data_dir: /d, bogus: 1}\n", "bogus"},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        memset(&c, 0, sizeof(c));
        ck_assert_int_eq(load(bad[i].text, &c, &e), -1);
        ck_assert_msg(strstr(e.text, bad[i].want) != NULL, "case %zu: %s", i, e.text);
    }
}
END_TEST

Suite *node_chain_suite(void)
{
    Suite *s = suite_create("node_chain");
    TCase *tc = tcase_create("chain");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_genesis_generate_restart);
    tcase_add_test(tc, test_crash_recovery);
    tcase_add_test(tc, test_evm_chain);
    tcase_add_test(tc, test_config);
    suite_add_tcase(s, tc);
    return s;
}
