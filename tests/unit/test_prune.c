/* cc-node headers index and pruning: record encoding, torn and corrupt
 * tails cut off on open, migration of a data dir without an index, prune
 * planning for given sizes and minimum kept blocks, the effective limits of
 * each pruning mode, pruning a real chain (prune height durable, pruned
 * reads refused, reopen without the deleted files, crash leftovers), and
 * the disk monitor (statvfs figures, automatic prune, free-space floor). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node/block.h"
#include "node/chain.h"
#include "node/codec.h"
#include "node/config.h"
#include "node/disk.h"
#include "node/headers.h"
#include "node/mempool.h"
#include "node/prune.h"
#include "sys.h"
#include "tests/unit/tmpdir.h"

static char dir[64];
static char path[128];

static void setup(void)
{
    unit_tmpdir(dir, sizeof(dir), "ccnode-prune");
    snprintf(path, sizeof(path), "%s/headers.dat", dir);
}

static void teardown(void)
{
    ck_assert_int_eq(unit_rmtree(dir), 0);
}

/* A made-up chain of `n` entries; only linkage fields matter to the index. */
static void fake_meta(struct node_block_meta *m, uint32_t i)
{
    memset(m, 0, sizeof(*m));
    m->header.version = 0x20000000;
    m->header.time = 1000 + i;
    m->header.bits = NODE_REGTEST_BITS;
    m->header.nonce = i * 7;
    m->header.prev[0] = (uint8_t)i;
    m->ntx = i + 1;
    m->size = 200 + i;
    m->weight = 800 + 4 * i;
}

static off_t file_size(const char *p)
{
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    return st.st_size;
}

static struct node_headers *open_index(struct node_block_meta **m, size_t *n)
{
    char err[256];
    struct node_headers *h = node_headers_open(path, m, n, err, sizeof(err));
    ck_assert_msg(h != NULL, "%s", err);
    return h;
}

static void append_n(struct node_headers *h, uint32_t n)
{
    char err[256];
    for (uint32_t i = 0; i < n; i++) {
        struct node_block_meta m;
        fake_meta(&m, i);
        ck_assert_msg(node_headers_append(h, &m, err, sizeof(err)) == 0, "%s", err);
    }
}

START_TEST(test_record_roundtrip)
{
    struct node_block_meta in, out;
    uint8_t rec[NODE_HEADERS_RECORD];
    fake_meta(&in, 5);
    node_headers_encode(&in, rec);
    ck_assert_int_eq(node_headers_decode(rec, &out), 0);
    ck_assert_uint_eq(out.ntx, 6);
    ck_assert_uint_eq(out.size, 205);
    ck_assert_uint_eq(out.weight, 820);
    ck_assert_uint_eq(out.header.nonce, 35);
    ck_assert_int_eq(memcmp(&out.header, &in.header, sizeof(in.header)), 0);
    /* the hash is the block hash: double SHA-256 of the 80-byte header */
    uint8_t hdr[NODE_HEADER_SIZE], hash[32];
    node_headers_pack(&in.header, hdr);
    ck_assert_int_eq(node_codec_sha256d(hdr, sizeof(hdr), NULL, 0, hash), 0);
    ck_assert_int_eq(memcmp(out.hash, hash, 32), 0);
    /* any flipped bit is caught */
    for (size_t i = 0; i < sizeof(rec); i += 13) {
        rec[i] ^= 0x10;
        ck_assert_int_eq(node_headers_decode(rec, &out), -1);
        rec[i] ^= 0x10;
    }
}
END_TEST

START_TEST(test_index_append_reopen)
{
    struct node_block_meta *m;
    size_t n;
    struct node_headers *h = open_index(&m, &n);
    ck_assert_uint_eq(n, 0);
    free(m);
    ck_assert_int_eq(file_size(path), NODE_HEADERS_PREFIX);
    append_n(h, 4);
    ck_assert_uint_eq(node_headers_count(h), 4);
    ck_assert_uint_eq(node_headers_bytes(h), NODE_HEADERS_PREFIX + 4 * NODE_HEADERS_RECORD);
    node_headers_close(h);

    h = open_index(&m, &n);
    ck_assert_uint_eq(n, 4);
    ck_assert_uint_eq(m[3].size, 203);
    ck_assert_uint_eq(m[0].header.time, 1000);
    free(m);
    /* debris above height 2 is cut */
    char err[256];
    ck_assert_int_eq(node_headers_truncate(h, 2, err, sizeof(err)), 0);
    ck_assert_uint_eq(node_headers_count(h), 2);
    node_headers_close(h);
    ck_assert_int_eq(file_size(path), NODE_HEADERS_PREFIX + 2 * NODE_HEADERS_RECORD);
}
END_TEST

START_TEST(test_index_torn_tail)
{
    struct node_block_meta *m;
    size_t n;
    struct node_headers *h = open_index(&m, &n);
    free(m);
    append_n(h, 3);
    node_headers_close(h);
    /* a crash in the middle of the third record's write */
    ck_assert_int_eq(truncate(path, NODE_HEADERS_PREFIX + 2 * NODE_HEADERS_RECORD + 50), 0);
    h = open_index(&m, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(node_headers_count(h), 2);
    free(m);
    ck_assert_int_eq(file_size(path), NODE_HEADERS_PREFIX + 2 * NODE_HEADERS_RECORD);
    /* the next append lands where the torn record was */
    struct node_block_meta next;
    char err[256];
    fake_meta(&next, 2);
    ck_assert_int_eq(node_headers_append(h, &next, err, sizeof(err)), 0);
    node_headers_close(h);
    h = open_index(&m, &n);
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(m[2].size, 202);
    free(m);
    node_headers_close(h);
}
END_TEST

START_TEST(test_index_corrupt_record)
{
    struct node_block_meta *m;
    size_t n;
    struct node_headers *h = open_index(&m, &n);
    free(m);
    append_n(h, 5);
    node_headers_close(h);
    /* a full-length record with garbage (a torn page) ends the trusted part */
    int fd = open(path, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, "garbage", 7, NODE_HEADERS_PREFIX + 3 * NODE_HEADERS_RECORD + 9),
                     7);
    close(fd);
    h = open_index(&m, &n);
    ck_assert_uint_eq(n, 3);
    free(m);
    node_headers_close(h);
    ck_assert_int_eq(file_size(path), NODE_HEADERS_PREFIX + 3 * NODE_HEADERS_RECORD);
}
END_TEST

START_TEST(test_index_bad_magic)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("NOTANINDEX-AT-ALL", f);
    fclose(f);
    struct node_block_meta *m = NULL;
    size_t n = 9;
    char err[256];
    ck_assert_ptr_null(node_headers_open(path, &m, &n, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "not a headers index"));
    ck_assert_ptr_null(m);
    ck_assert_uint_eq(n, 0);
    /* a file torn before its prefix was complete is simply started again */
    f = fopen(path, "w");
    fputs("CCH", f);
    fclose(f);
    struct node_headers *h = open_index(&m, &n);
    ck_assert_uint_eq(n, 0);
    free(m);
    node_headers_close(h);
    ck_assert_int_eq(file_size(path), NODE_HEADERS_PREFIX);
}
END_TEST

/* Blocks of the given sizes, heights 0..n-1. */
static struct node_block_meta *sized(const uint32_t *sizes, size_t n)
{
    struct node_block_meta *b = calloc(n, sizeof(*b));
    ck_assert_ptr_nonnull(b);
    for (size_t i = 0; i < n; i++)
        b[i].size = sizes[i];
    return b;
}

START_TEST(test_plan)
{
    static const uint32_t sizes[] = {100, 100, 100, 100, 100, 100, 100, 100, 100, 100};
    const int64_t n = (int64_t)ARRAY_LEN(sizes);
    struct node_block_meta *b = sized(sizes, (size_t)n);
    struct node_prune_plan p;

    /* own 1000 + 50 overhead, target 700: delete 4 blocks (1050 -> 650) */
    node_prune_plan(b, n, 0, 2, 1050, 700, INT64_MAX, &p);
    ck_assert_int_eq(p.from, 0);
    ck_assert_int_eq(p.to, 4);
    ck_assert_uint_eq(p.bytes, 400);
    /* already under the target: nothing */
    node_prune_plan(b, n, 0, 2, 650, 700, INT64_MAX, &p);
    ck_assert_int_eq(p.to, p.from);
    ck_assert_uint_eq(p.bytes, 0);
    /* min kept wins over the target: heights 8 and 9 stay */
    node_prune_plan(b, n, 0, 2, 1050, 0, INT64_MAX, &p);
    ck_assert_int_eq(p.to, 8);
    ck_assert_uint_eq(p.bytes, 800);
    /* starts above what is already pruned */
    node_prune_plan(b, n, 3, 2, 750, 0, INT64_MAX, &p);
    ck_assert_int_eq(p.from, 3);
    ck_assert_int_eq(p.to, 8);
    ck_assert_uint_eq(p.bytes, 500);
    /* keep < 1 still keeps the tip */
    node_prune_plan(b, n, 0, 0, 1050, 0, INT64_MAX, &p);
    ck_assert_int_eq(p.to, 9);
    /* keep larger than the chain: nothing */
    node_prune_plan(b, n, 0, 288, 1050, 0, INT64_MAX, &p);
    ck_assert_int_eq(p.to, 0);
    /* manual: up to height 4 inclusive */
    node_prune_plan(b, n, 0, 2, 1050, 0, 4, &p);
    ck_assert_int_eq(p.to, 5);
    ck_assert_uint_eq(p.bytes, 500);
    /* manual beyond the kept blocks is capped */
    node_prune_plan(b, n, 0, 3, 1050, 0, 9, &p);
    ck_assert_int_eq(p.to, 7);
    /* manual below the prune height: nothing more */
    node_prune_plan(b, n, 6, 2, 1050, 0, 4, &p);
    ck_assert_int_eq(p.from, 6);
    ck_assert_int_eq(p.to, 6);
    free(b);

    /* uneven sizes: stops at the first height that brings it under */
    static const uint32_t uneven[] = {500, 10, 10, 300, 20, 20};
    b = sized(uneven, ARRAY_LEN(uneven));
    node_prune_plan(b, (int64_t)ARRAY_LEN(uneven), 0, 1, 870, 350, INT64_MAX, &p);
    ck_assert_int_eq(p.to, 3); /* 870 - 500 - 10 - 10 = 350: at the target, done */
    ck_assert_uint_eq(p.bytes, 520);
    node_prune_plan(b, (int64_t)ARRAY_LEN(uneven), 0, 1, 870, 360, INT64_MAX, &p);
    ck_assert_int_eq(p.to, 2);
    ck_assert_uint_eq(p.bytes, 510);
    free(b);
}
END_TEST

START_TEST(test_limits)
{
    struct node_config c;
    struct node_prune_limits l;
    memset(&c, 0, sizeof(c));
    c.storage.pruning_threshold_gb = 0.002;
    c.storage.pruning_target_gb = 0.001;
    c.storage.min_blocks_kept = 5;

    c.storage.pruning_mode = NODE_PRUNE_DISABLED;
    node_prune_limits_of(&c, &l);
    ck_assert_int_eq(l.enabled, 0);

    c.storage.pruning_mode = NODE_PRUNE_CUSTOM;
    node_prune_limits_of(&c, &l);
    ck_assert_int_eq(l.enabled, 1);
    ck_assert_uint_eq(l.threshold, 2000000);
    ck_assert_uint_eq(l.target, 1000000);
    ck_assert_int_eq(l.keep, 5);

    c.storage.pruning_mode = NODE_PRUNE_AGGRESSIVE;
    node_prune_limits_of(&c, &l);
    ck_assert_uint_eq(l.threshold, 2000000);
    ck_assert_uint_eq(l.target, 0);

    c.storage.pruning_mode = NODE_PRUNE_NORMAL;
    node_prune_limits_of(&c, &l);
    ck_assert_uint_eq(l.target, NODE_PRUNE_MIN_TARGET);
    ck_assert_uint_eq(l.threshold, NODE_PRUNE_MIN_TARGET);
    c.storage.pruning_threshold_gb = 100;
    c.storage.pruning_target_gb = 80;
    node_prune_limits_of(&c, &l);
    ck_assert_uint_eq(l.threshold, 100000000000ULL);
    ck_assert_uint_eq(l.target, 80000000000ULL);
}
END_TEST

static const uint8_t op_true[] = {0x51};

static struct node_chain *open_chain(void)
{
    char err[256];
    struct node_chain *c = node_chain_open(dir, 0, err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    return c;
}

static void block_file(int64_t h, char *out, size_t size)
{
    snprintf(out, size, "%s/blocks/%010lld.blk", dir, (long long)h);
}

START_TEST(test_chain_migration)
{
    char err[256];
    struct node_mempool *mp = node_mempool_new(1 << 20);
    struct node_chain *c = open_chain();
    struct node_block_meta tip, again;
    ck_assert_int_eq(node_chain_generate(c, mp, op_true, 1, 6, NULL, err, sizeof(err)), 0);
    ck_assert_int_eq(node_chain_get(c, 6, &tip), 0);
    node_chain_close(c);
    /* a data dir from before the headers index */
    ck_assert_int_eq(unlink(path), 0);
    c = open_chain();
    ck_assert_int_eq(node_chain_height(c), 6);
    ck_assert_int_eq(node_chain_get(c, 6, &again), 0);
    ck_assert_int_eq(memcmp(tip.hash, again.hash, 32), 0);
    ck_assert_uint_eq(again.size, tip.size);
    node_chain_close(c);
    ck_assert_int_eq(file_size(path), NODE_HEADERS_PREFIX + 7 * NODE_HEADERS_RECORD);
    node_mempool_free(mp);
}
END_TEST

START_TEST(test_chain_prune)
{
    char err[256], file[256];
    struct node_mempool *mp = node_mempool_new(1 << 20);
    struct node_chain *c = open_chain();
    struct node_prune_plan done;
    struct node_block_meta tip, b3;
    uint8_t *raw;
    size_t len;

    ck_assert_int_eq(node_chain_generate(c, mp, op_true, 1, 10, NULL, err, sizeof(err)), 0);
    ck_assert_int_eq(node_chain_get(c, 10, &tip), 0);
    ck_assert_int_eq(node_chain_get(c, 3, &b3), 0);
    uint64_t before = node_chain_size_bytes(c);
    ck_assert_int_eq(node_chain_prune_height(c), 0);

    /* aggressive: everything but the 3 most recent (heights 8..10) */
    ck_assert_int_eq(node_chain_prune(c, 0, 3, INT64_MAX, &done, err, sizeof(err)), 0);
    ck_assert_int_eq(done.from, 0);
    ck_assert_int_eq(done.to, 8);
    ck_assert_int_eq(node_chain_prune_height(c), 8);
    ck_assert_uint_eq(node_chain_size_bytes(c), before - done.bytes);
    ck_assert_uint_eq(atomic_load(&node_chain_stats(c)->pruned_blocks), 8);
    ck_assert_uint_eq(atomic_load(&node_chain_stats(c)->prune_runs), 1);
    for (int64_t h = 0; h <= 10; h++) {
        block_file(h, file, sizeof(file));
        ck_assert_int_eq(access(file, F_OK) == 0, h >= 8);
    }
    ck_assert(node_chain_is_pruned(c, 7));
    ck_assert(!node_chain_is_pruned(c, 8));
    ck_assert_int_eq(node_chain_read_block(c, 3, &raw, &len, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "pruned data"));
    ck_assert_int_eq(node_chain_read_block(c, 9, &raw, &len, err, sizeof(err)), 0);
    free(raw);
    /* nothing left to prune: an empty plan, no second run counted */
    ck_assert_int_eq(node_chain_prune(c, 0, 3, INT64_MAX, &done, err, sizeof(err)), 0);
    ck_assert_int_eq(done.to, done.from);
    ck_assert_uint_eq(atomic_load(&node_chain_stats(c)->prune_runs), 1);
    node_chain_close(c);

    /* a crash between the durable prune height and the unlinks leaves files
     * below it: put one back, the next open removes it */
    block_file(7, file, sizeof(file));
    FILE *f = fopen(file, "w");
    fputs("left over", f);
    fclose(f);
    c = open_chain();
    ck_assert_int_eq(access(file, F_OK), -1);
    ck_assert_int_eq(node_chain_height(c), 10);
    ck_assert_int_eq(node_chain_prune_height(c), 8);
    struct node_block_meta m;
    ck_assert_int_eq(node_chain_get(c, 3, &m), 0); /* headers survive pruning */
    ck_assert_int_eq(memcmp(m.hash, b3.hash, 32), 0);
    ck_assert_int_eq(node_chain_get(c, 10, &m), 0);
    ck_assert_int_eq(memcmp(m.hash, tip.hash, 32), 0);
    int64_t h;
    ck_assert_int_eq(node_chain_find(c, b3.hash, &h), 0);
    ck_assert_int_eq(h, 3);
    /* new blocks go on and a manual prune up to height 9 keeps 2 */
    ck_assert_int_eq(node_chain_generate(c, mp, op_true, 1, 2, NULL, err, sizeof(err)), 0);
    ck_assert_int_eq(node_chain_prune(c, 0, 2, 9, &done, err, sizeof(err)), 0);
    ck_assert_int_eq(done.from, 8);
    ck_assert_int_eq(done.to, 10);
    node_chain_close(c);
    c = open_chain();
    ck_assert_int_eq(node_chain_height(c), 12);
    ck_assert_int_eq(node_chain_prune_height(c), 10);
    node_chain_close(c);

    /* without the index, pruned blocks cannot be rebuilt: refused, not guessed */
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_ptr_null(node_chain_open(dir, 0, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "pruned"));
    node_mempool_free(mp);
}
END_TEST

START_TEST(test_chain_torn_index_tip)
{
    char err[256];
    struct node_mempool *mp = node_mempool_new(1 << 20);
    struct node_chain *c = open_chain();
    struct node_block_meta tip, m;
    ck_assert_int_eq(node_chain_generate(c, mp, op_true, 1, 4, NULL, err, sizeof(err)), 0);
    ck_assert_int_eq(node_chain_get(c, 4, &tip), 0);
    node_chain_close(c);
    /* the tip's record is torn: its block file restores it */
    ck_assert_int_eq(truncate(path, NODE_HEADERS_PREFIX + 4 * NODE_HEADERS_RECORD + 30), 0);
    c = open_chain();
    ck_assert_int_eq(node_chain_height(c), 4);
    ck_assert_int_eq(node_chain_get(c, 4, &m), 0);
    ck_assert_int_eq(memcmp(m.hash, tip.hash, 32), 0);
    ck_assert_uint_eq(node_chain_utxo_count(c), 5);
    node_chain_close(c);
    ck_assert_int_eq(file_size(path), NODE_HEADERS_PREFIX + 5 * NODE_HEADERS_RECORD);
    node_mempool_free(mp);
}
END_TEST

START_TEST(test_disk_monitor)
{
    char err[256];
    struct node_mempool *mp = node_mempool_new(1 << 20);
    struct node_chain *c = open_chain();
    struct node_config cfg;
    struct node_disk_stats ds;

    ck_assert_int_eq(node_chain_generate(c, mp, op_true, 1, 20, NULL, err, sizeof(err)), 0);
    memset(&cfg, 0, sizeof(cfg));
    cfg.node.data_dir = dir;
    cfg.storage.pruning_mode = NODE_PRUNE_DISABLED;
    cfg.storage.pruning_threshold_gb = 0.000001; /* 1000 bytes: crossed */
    cfg.storage.pruning_target_gb = 0.000001;
    cfg.storage.min_blocks_kept = 4;
    cfg.storage.check_interval_secs = 0.05;
    cfg.storage.min_free_bytes = 0;

    /* disabled: the monitor measures but never prunes */
    struct node_disk *d = node_disk_start(c, &cfg, err, sizeof(err));
    ck_assert_msg(d != NULL, "%s", err);
    node_disk_stats_get(d, &ds);
    ck_assert_uint_ge(ds.checks, 1);
    ck_assert_uint_gt(ds.total_bytes, 0);
    ck_assert_uint_le(ds.free_bytes, ds.total_bytes);
    ck_assert(node_chain_storage_ok(c));
    ck_assert_ptr_null(node_chain_storage_reason(c));
    node_disk_stop(d);
    ck_assert_int_eq(node_chain_prune_height(c), 0);

    /* custom: the first round (run by start) prunes all but 4 of 21 */
    cfg.storage.pruning_mode = NODE_PRUNE_CUSTOM;
    d = node_disk_start(c, &cfg, err, sizeof(err));
    ck_assert_msg(d != NULL, "%s", err);
    ck_assert_int_eq(node_chain_prune_height(c), 17);
    /* the thread keeps checking */
    for (int i = 0; i < 100; i++) {
        node_disk_stats_get(d, &ds);
        if (ds.checks >= 3)
            break;
        usleep(20000);
    }
    ck_assert_uint_ge(ds.checks, 3);
    ck_assert_uint_eq(ds.prune_failures, 0);
    node_disk_stop(d);

    /* a floor above the free space: "no space" */
    cfg.storage.min_free_bytes = INT64_MAX / 2;
    d = node_disk_start(c, &cfg, err, sizeof(err));
    ck_assert_msg(d != NULL, "%s", err);
    ck_assert(!node_chain_storage_ok(c));
    ck_assert_str_eq(node_chain_storage_reason(c), "storage: no space");
    node_disk_stop(d);
    node_chain_close(c);
    node_mempool_free(mp);
}
END_TEST

Suite *prune_suite(void)
{
    Suite *s = suite_create("prune");
    TCase *tc = tcase_create("index");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_record_roundtrip);
    tcase_add_test(tc, test_index_append_reopen);
    tcase_add_test(tc, test_index_torn_tail);
    tcase_add_test(tc, test_index_corrupt_record);
    tcase_add_test(tc, test_index_bad_magic);
    suite_add_tcase(s, tc);
    tc = tcase_create("plan");
    tcase_add_test(tc, test_plan);
    tcase_add_test(tc, test_limits);
    suite_add_tcase(s, tc);
    tc = tcase_create("chain");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_chain_migration);
    tcase_add_test(tc, test_chain_prune);
    tcase_add_test(tc, test_chain_torn_index_tip);
    tcase_add_test(tc, test_disk_monitor);
    suite_add_tcase(s, tc);
    return s;
}
