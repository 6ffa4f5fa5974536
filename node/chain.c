/* Chain index, block files, UTXO set and block production. */
#include "chain.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "sys.h"
#include "headers.h"
#include "hmap.h"
#include "log.h"
#include "mempool.h"
#include "prune.h"
#include "store.h"
#include "tx.h"

#define STATE_MAGIC 0x53434343u /* "CCCS" little-endian */
#define STATE_VERSION 2         /* 2 adds the prune height; 1 is still read */
#define OUTPOINT_SIZE 36
#define MAX_BLOCK_FILE (64u << 20)
#define MIN_FREE_BYTES (16u << 20) /* default floor of node_chain_set_min_free() */
#define GENESIS_TIME 1296688602u

struct node_chain {
    pthread_rwlock_t lock;
    char *dir;
    char *blocks_dir;
    char *state_path;
    char *headers_path;
    int evm;
    struct node_block_meta *blocks; /* by height */
    size_t nblocks, cap;
    struct node_hmap *by_hash; /* hash -> height */
    struct node_hmap *utxo;    /* txid||vout -> value */
    struct node_headers *headers;
    _Atomic int64_t height;
    _Atomic int64_t pruned_below; /* block files below this height are deleted */
    _Atomic uint64_t block_bytes; /* sizes of the stored block files */
    _Atomic uint64_t state_bytes; /* size of the chainstate file */
    _Atomic uint64_t min_free_bytes;
    atomic_int storage_state; /* enum node_storage_state */
    int utxo_broken;          /* an update ran out of memory: never write the chainstate */
    struct node_chain_stats stats;
};

/* Record that a write failed with `errnum`: /health/ready turns 503 with
 * the reason until the disk monitor's next probe succeeds. */
static void storage_failed(struct node_chain *c, int errnum)
{
    enum node_storage_state s = node_store_classify(errnum);
    atomic_store(&c->storage_state, s == NODE_STORAGE_OK ? NODE_STORAGE_UNAVAILABLE : s);
}

void node_header_write(const struct node_header *h, uint8_t out[NODE_HEADER_SIZE])
{
    struct node_buf b = {.data = out, .cap = NODE_HEADER_SIZE};
    node_buf_u32le(&b, (uint32_t)h->version);
    node_buf_put(&b, h->prev, 32);
    node_buf_put(&b, h->merkle, 32);
    node_buf_u32le(&b, h->time);
    node_buf_u32le(&b, h->bits);
    node_buf_u32le(&b, h->nonce);
}

void node_header_read(const uint8_t in[NODE_HEADER_SIZE], struct node_header *h)
{
    struct node_reader r = {in, NODE_HEADER_SIZE, 0};
    const uint8_t *p;
    uint32_t v;
    node_read_u32le(&r, &v);
    h->version = (int32_t)v;
    node_read_bytes(&r, 32, &p);
    memcpy(h->prev, p, 32);
    node_read_bytes(&r, 32, &p);
    memcpy(h->merkle, p, 32);
    node_read_u32le(&r, &h->time);
    node_read_u32le(&r, &h->bits);
    node_read_u32le(&r, &h->nonce);
}

int64_t node_chain_subsidy(int64_t height)
{
    int64_t halvings = height / 150;
    return halvings >= 64 ? 0 : (50LL * 100000000LL) >> halvings;
}

/* hash <= target of the compact `bits`, both as 256-bit little-endian numbers. */
static int check_pow(const uint8_t hash[32], uint32_t bits)
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

long node_block_txs(const uint8_t *raw, size_t len, struct node_slice *txs, size_t max)
{
    struct node_reader r = {raw, len, NODE_HEADER_SIZE};
    uint64_t n, tlen;
    if (len < NODE_HEADER_SIZE || node_read_varint(&r, &n) != 0 || n > len)
        return -1;
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *p;
        if (node_read_varint(&r, &tlen) != 0 || node_read_bytes(&r, (size_t)tlen, &p) != 0)
            return -1;
        if (i < max) {
            txs[i].p = p;
            txs[i].len = (size_t)tlen;
        }
    }
    return r.pos == len ? (long)n : -1;
}

/* The id a transaction is known by: txid (Bitcoin) or Keccak hash (EVM). */
static int tx_id(const struct node_chain *c, const uint8_t *raw, size_t len, uint8_t out[32],
                 struct node_tx *decoded, char *err, size_t errlen)
{
    if (c->evm) {
        node_keccak256(raw, len, out);
        return 0;
    }
    if (node_tx_decode(raw, len, decoded, err, errlen) != 0)
        return -1;
    memcpy(out, decoded->txid, 32);
    return 0;
}

static int merkle_root(uint8_t (*ids)[32], size_t n, uint8_t out[32])
{
    if (n == 0) {
        memset(out, 0, 32);
        return 0;
    }
    while (n > 1) {
        size_t k = 0;
        for (size_t i = 0; i < n; i += 2) {
            const uint8_t *right = ids[i + 1 < n ? i + 1 : i];
            if (node_sha256d(ids[i], 32, right, 32, ids[k++]) != 0)
                return -1;
        }
        n = k;
    }
    memcpy(out, ids[0], 32);
    return 0;
}

static void utxo_key(uint8_t key[OUTPOINT_SIZE], const uint8_t txid[32], uint32_t vout)
{
    memcpy(key, txid, 32);
    for (int i = 0; i < 4; i++)
        key[32 + i] = (uint8_t)(vout >> (8 * i));
}

static int utxo_apply(struct node_chain *c, const struct node_tx *tx)
{
    uint8_t key[OUTPOINT_SIZE];
    if (!node_tx_is_coinbase(tx)) {
        for (size_t i = 0; i < tx->nin; i++) {
            utxo_key(key, tx->in[i].prev_txid, tx->in[i].prev_vout);
            node_hmap_del(c->utxo, key);
        }
    }
    for (size_t i = 0; i < tx->nout; i++) {
        /* OP_RETURN outputs are provably unspendable: never in the set. */
        if (tx->out[i].script_len > 0 && tx->out[i].script[0] == 0x6a)
            continue;
        utxo_key(key, tx->txid, (uint32_t)i);
        if (node_hmap_put(c->utxo, key, (uint64_t)tx->out[i].value) != 0)
            return -1;
    }
    return 0;
}

/* Make room for the next index entry and map its hash: the part of adding
 * a block that can fail (out of memory, -1), undone by node_hmap_del().
 * Caller holds the write lock. */
static int index_reserve(struct node_chain *c, const struct node_block_meta *meta)
{
    if (c->nblocks == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 1024;
        struct node_block_meta *b = realloc(c->blocks, cap * sizeof(*b));
        if (!b)
            return -1;
        c->blocks = b;
        c->cap = cap;
    }
    return node_hmap_put(c->by_hash, meta->hash, c->nblocks);
}

/* Add the reserved entry as the new tip. */
static void index_commit(struct node_chain *c, const struct node_block_meta *meta)
{
    if ((int64_t)c->nblocks >= atomic_load(&c->pruned_below))
        atomic_fetch_add(&c->block_bytes, meta->size);
    c->blocks[c->nblocks++] = *meta;
    atomic_store(&c->height, (int64_t)c->nblocks - 1);
}

/* Validate a serialized block against the tip and add it to the index;
 * with `apply_utxo`, update the UTXO set. A block the headers index does not
 * hold yet gets its record appended (durably) before any state changes, so
 * the caller must have made its block file durable first. Caller holds the
 * write lock. */
static int connect_block(struct node_chain *c, const uint8_t *raw, size_t len, int apply_utxo,
                         char *err, size_t errlen)
{
    struct node_header h;
    struct node_block_meta meta;
    uint8_t(*ids)[32] = NULL;
    uint8_t root[32];
    struct node_slice *txs = NULL;
    struct node_tx *decoded = NULL;
    double t0 = sys_mono_s();
    long n, ndecoded = 0;
    size_t weight = NODE_HEADER_SIZE * 4;
    int rc = -1;

    memset(&meta, 0, sizeof(meta));
    n = node_block_txs(raw, len, NULL, 0);
    if (n < 0)
        return SYS_ERR("malformed block body");
    if (n > 0) {
        txs = calloc((size_t)n, sizeof(*txs));
        ids = calloc((size_t)n, 32);
        decoded = c->evm ? NULL : calloc((size_t)n, sizeof(*decoded));
        if (!txs || !ids || (!c->evm && !decoded)) {
            SYS_ERR("out of memory");
            goto fail;
        }
        node_block_txs(raw, len, txs, (size_t)n);
    }
    node_header_read(raw, &h);
    if (node_sha256d(raw, NODE_HEADER_SIZE, NULL, 0, meta.hash) != 0) {
        SYS_ERR("out of memory");
        goto fail;
    }
    if (c->nblocks == 0) {
        static const uint8_t zero[32];
        if (memcmp(h.prev, zero, 32) != 0) {
            SYS_ERR("genesis block has a parent");
            goto fail;
        }
    } else if (memcmp(h.prev, c->blocks[c->nblocks - 1].hash, 32) != 0) {
        SYS_ERR("block does not extend the tip");
        goto fail;
    }
    if (!check_pow(meta.hash, h.bits)) {
        SYS_ERR("proof of work does not meet the target");
        goto fail;
    }
    for (long i = 0; i < n; i++) {
        struct node_tx *tx = c->evm ? NULL : &decoded[i];
        struct node_tx scratch;
        if (tx_id(c, txs[i].p, txs[i].len, ids[i], tx ? tx : &scratch, err, errlen) != 0)
            goto fail;
        if (!c->evm) {
            ndecoded++;
            weight += tx->weight;
            if ((i == 0) != node_tx_is_coinbase(tx)) {
                SYS_ERR("transaction %ld: coinbase misplaced", i);
                goto fail;
            }
        } else {
            weight += txs[i].len * 4;
        }
    }
    if (merkle_root(ids, (size_t)n, root) != 0 || memcmp(root, h.merkle, 32) != 0) {
        SYS_ERR("merkle root mismatch");
        goto fail;
    }
    meta.header = h;
    meta.ntx = (uint32_t)n;
    meta.size = (uint32_t)len;
    meta.weight = (uint32_t)weight;
    if (index_reserve(c, &meta) != 0) {
        SYS_ERR("out of memory");
        goto fail;
    }
    if (c->nblocks >= node_headers_count(c->headers) &&
        node_headers_append(c->headers, &meta, err, errlen) != 0) {
        storage_failed(c, errno);
        node_hmap_del(c->by_hash, meta.hash);
        goto fail;
    }
    index_commit(c, &meta);
    for (long i = 0; apply_utxo && i < ndecoded; i++) {
        if (!c->utxo_broken && utxo_apply(c, &decoded[i]) != 0) {
            /* The set is now partly updated. The block is durable, so the
             * chainstate is no longer written and a restart replays it. */
            c->utxo_broken = 1;
            log_msg(LOG_ERROR, "utxo_incomplete",
                    "out of memory applying block %zu: chainstate frozen until restart",
                    c->nblocks - 1);
        }
    }
    atomic_fetch_add(&c->stats.blocks_processed, 1);
    prom_histogram_observe(&c->stats.validation_seconds, sys_mono_s() - t0);
    rc = 0;
fail:
    for (long i = 0; i < ndecoded; i++)
        node_tx_free(&decoded[i]);
    free(decoded);
    free(txs);
    free(ids);
    return rc;
}

static void block_path(const struct node_chain *c, int64_t height, char *out, size_t size)
{
    snprintf(out, size, "%s/%010lld.blk", c->blocks_dir, (long long)height);
}

struct state_writer {
    struct node_buf *b;
};

static int state_put_utxo(void *ctx, const void *key, uint64_t v)
{
    struct state_writer *w = ctx;
    node_buf_put(w->b, key, OUTPOINT_SIZE);
    node_buf_u64le(w->b, v);
    return w->b->failed;
}

/* Replace the chainstate file with the current tip and UTXO set. */
static int write_state(struct node_chain *c, char *err, size_t errlen)
{
    struct node_buf b = {0};
    struct state_writer w = {&b};
    uint8_t sum[32];
    int rc = -1;

    if (c->utxo_broken)
        return SYS_ERR("chainstate not written: the UTXO set is incomplete after running out of "
                       "memory (a restart rebuilds it)");
    node_buf_u32le(&b, STATE_MAGIC);
    node_buf_u32le(&b, STATE_VERSION);
    node_buf_u64le(&b, (uint64_t)(c->nblocks - 1));
    node_buf_put(&b, c->blocks[c->nblocks - 1].hash, 32);
    node_buf_u64le(&b, (uint64_t)atomic_load(&c->pruned_below));
    node_buf_u64le(&b, node_hmap_count(c->utxo));
    node_hmap_each(c->utxo, state_put_utxo, &w);
    if (b.failed || node_sha256d(b.data, b.len, NULL, 0, sum) != 0 ||
        node_buf_put(&b, sum, 32) != 0) {
        SYS_ERR("chainstate: out of memory");
        goto fail;
    }
    if (sys_write_file_atomic(c->state_path, b.data, b.len, 0644, err, errlen) != 0) {
        storage_failed(c, errno);
        goto fail;
    }
    atomic_store(&c->state_bytes, b.len);
    rc = 0;
fail:
    node_buf_free(&b);
    return rc;
}

/* Load the chainstate: tip height and hash, prune height (version 2), UTXO
 * set. 1 loaded, 0 absent, -1 corrupt (err filled). */
static int read_state(struct node_chain *c, int64_t *height, uint8_t tip[32], char *err,
                      size_t errlen)
{
    uint8_t *data = NULL, sum[32];
    size_t len;
    uint32_t magic, version;
    uint64_t h, count, pruned = 0;
    const uint8_t *p;
    int rc = -1;

    if (node_store_read(c->state_path, (size_t)1 << 34, &data, &len, err, errlen) != 0)
        return errno == ENOENT ? 0 : -1;
    struct node_reader r = {data, len < 32 ? 0 : len - 32, 0};
    if (len < 32 || node_sha256d(data, len - 32, NULL, 0, sum) != 0 ||
        memcmp(sum, data + len - 32, 32) != 0) {
        SYS_ERR("%s: checksum mismatch", c->state_path);
        goto fail;
    }
    if (node_read_u32le(&r, &magic) != 0 || magic != STATE_MAGIC ||
        node_read_u32le(&r, &version) != 0 || version < 1 || version > STATE_VERSION ||
        node_read_u64le(&r, &h) != 0 || node_read_bytes(&r, 32, &p) != 0 ||
        (version >= 2 && node_read_u64le(&r, &pruned) != 0) || node_read_u64le(&r, &count) != 0 ||
        count > (r.len - r.pos) / (OUTPOINT_SIZE + 8) || pruned > h) {
        SYS_ERR("%s: not a chainstate file of this version", c->state_path);
        goto fail;
    }
    atomic_store(&c->pruned_below, (int64_t)pruned);
    memcpy(tip, p, 32);
    *height = (int64_t)h;
    for (uint64_t i = 0; i < count; i++) {
        const uint8_t *key;
        uint64_t v;
        node_read_bytes(&r, OUTPOINT_SIZE, &key);
        node_read_u64le(&r, &v);
        if (node_hmap_put(c->utxo, key, v) != 0) {
            SYS_ERR("%s: out of memory", c->state_path);
            goto fail;
        }
    }
    atomic_store(&c->state_bytes, len);
    rc = 1;
fail:
    free(data);
    return rc;
}

/* Coinbase for `height` paying `value` to `script`: BIP34 height push plus
 * an 8-byte tag so coinbases of equal height on other nodes differ. */
static int build_coinbase(struct node_buf *b, int64_t height, const uint8_t *script,
                          size_t script_len)
{
    static const uint8_t null_prev[32];
    uint8_t sig[16];
    size_t sl = 0;
    uint64_t h = (uint64_t)height;
    uint8_t num[8];
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
    node_buf_u32le(b, 2);
    node_buf_varint(b, 1);
    node_buf_put(b, null_prev, 32);
    node_buf_u32le(b, 0xffffffff);
    node_buf_varint(b, sl);
    node_buf_put(b, sig, sl);
    node_buf_u32le(b, 0xffffffff);
    node_buf_varint(b, 1);
    node_buf_u64le(b, (uint64_t)node_chain_subsidy(height));
    node_buf_varint(b, script_len);
    node_buf_put(b, script, script_len);
    node_buf_u32le(b, 0);
    return b->failed ? -1 : 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Caller holds a lock or is the writer. */
static uint32_t median_time_locked(const struct node_chain *c, int64_t height)
{
    uint32_t t[11];
    size_t n = 0;
    for (int64_t h = height; h >= 0 && n < 11; h--)
        t[n++] = c->blocks[h].header.time;
    if (n == 0)
        return 0;
    qsort(t, n, sizeof(t[0]), cmp_u32);
    return t[n / 2];
}

/* Write a block file for the next height and connect it (UTXO applied): the
 * one path by which produced and received blocks enter the chain. Caller
 * holds the write lock and writes the chainstate afterwards. */
static int store_block(struct node_chain *c, const uint8_t *raw, size_t len, char *err,
                       size_t errlen)
{
    char path[4096];
    block_path(c, (int64_t)c->nblocks, path, sizeof(path));
    if (sys_write_file_atomic(path, raw, len, 0644, err, errlen) != 0) {
        storage_failed(c, errno);
        return -1;
    }
    if (connect_block(c, raw, len, 1, err, errlen) != 0) {
        unlink(path);
        return -1;
    }
    return 0;
}

/* Assemble, mine, store and connect one block. Caller holds the write lock. */
static int make_block(struct node_chain *c, const struct node_mempool_entry *txs, size_t ntx,
                      const uint8_t *script, size_t script_len, uint32_t time_now, char *err,
                      size_t errlen)
{
    struct node_buf cb = {0}, blk = {0};
    struct node_header h;
    uint8_t(*ids)[32] = NULL;
    uint8_t hdr[NODE_HEADER_SIZE], hash[32];
    size_t total = ntx + (c->evm ? 0 : 1), k = 0;
    int64_t height = (int64_t)c->nblocks;
    int rc = -1;

    memset(&h, 0, sizeof(h));
    h.version = 0x20000000;
    h.bits = NODE_REGTEST_BITS;
    if (height == 0) {
        h.time = GENESIS_TIME;
    } else {
        memcpy(h.prev, c->blocks[height - 1].hash, 32);
        uint32_t mtp = median_time_locked(c, height - 1);
        h.time = time_now > mtp ? time_now : mtp + 1;
    }
    ids = calloc(total ? total : 1, 32);
    if (!ids) {
        SYS_ERR("out of memory");
        goto fail;
    }
    if (!c->evm) {
        struct node_tx tx;
        if (build_coinbase(&cb, height, script, script_len) != 0 ||
            tx_id(c, cb.data, cb.len, ids[k++], &tx, err, errlen) != 0) {
            SYS_ERR("coinbase: out of memory");
            goto fail;
        }
        node_tx_free(&tx);
    }
    for (size_t i = 0; i < ntx; i++)
        memcpy(ids[k++], txs[i].txid, 32);
    if (merkle_root(ids, total, h.merkle) != 0) {
        SYS_ERR("out of memory");
        goto fail;
    }
    for (;;) {
        node_header_write(&h, hdr);
        if (node_sha256d(hdr, sizeof(hdr), NULL, 0, hash) != 0) {
            SYS_ERR("out of memory");
            goto fail;
        }
        if (check_pow(hash, h.bits))
            break;
        h.nonce++;
    }
    node_buf_put(&blk, hdr, sizeof(hdr));
    node_buf_varint(&blk, total);
    if (!c->evm) {
        node_buf_varint(&blk, cb.len);
        node_buf_put(&blk, cb.data, cb.len);
    }
    for (size_t i = 0; i < ntx; i++) {
        node_buf_varint(&blk, txs[i].len);
        node_buf_put(&blk, txs[i].raw, txs[i].len);
    }
    if (blk.failed) {
        SYS_ERR("out of memory");
        goto fail;
    }
    if (store_block(c, blk.data, blk.len, err, errlen) != 0)
        goto fail;
    rc = 0;
fail:
    free(ids);
    node_buf_free(&cb);
    node_buf_free(&blk);
    return rc;
}

/* Add a record of the headers index without reading its block file: it
 * must extend the tip and meet its proof of work. 0, or -1 with err. */
static int index_header(struct node_chain *c, const struct node_block_meta *m, char *err,
                        size_t errlen)
{
    static const uint8_t zero[32];
    const uint8_t *prev = c->nblocks ? c->blocks[c->nblocks - 1].hash : zero;
    if (memcmp(m->header.prev, prev, 32) != 0)
        return SYS_ERR("header does not extend the one before it");
    if (!check_pow(m->hash, m->header.bits))
        return SYS_ERR("proof of work does not meet the target");
    if (index_reserve(c, m) != 0)
        return SYS_ERR("out of memory");
    index_commit(c, m);
    return 0;
}

/* Crash debris from `height` on: remove its block file and cut the headers
 * index there. 0, or -1 with err when the index cannot be cut. */
static int discard_from(struct node_chain *c, int64_t height, const char *path, const char *why,
                        char *err, size_t errlen)
{
    log_msg(LOG_WARN, "block_discarded", "%s: %s", path, why);
    unlink(path);
    return node_headers_truncate(c->headers, (size_t)height, err, errlen);
}

/* Build the index: records of the headers index up to the chainstate tip
 * need no block file (they may be pruned); blocks above the tip are replayed
 * into the UTXO set from their files; block files beyond the last record
 * (a data dir from before the headers index, or a crash between a block
 * file and its record) are connected and their records appended. What does
 * not connect above the chainstate is crash debris and is removed. */
static int load_blocks(struct node_chain *c, const struct node_block_meta *recs, size_t nrecs,
                       int have_state, int64_t state_height, const uint8_t state_tip[32],
                       int *replayed, char *err, size_t errlen)
{
    int64_t pruned = atomic_load(&c->pruned_below);
    char path[4096];
    for (int64_t height = 0;; height++) {
        uint8_t *raw, hash[32];
        size_t len;
        char why[256];
        int beyond = !have_state || height > state_height;
        int known = (size_t)height < nrecs;

        block_path(c, height, path, sizeof(path));
        if (known && !beyond) {
            /* A stat, not a read: a missing file is a hole, not debris. */
            if (height >= pruned && access(path, F_OK) != 0)
                return SYS_ERR("%s: %s", path, strerror(errno));
            if (index_header(c, &recs[height], why, sizeof(why)) != 0)
                return SYS_ERR("%s: height %lld: %s", c->headers_path, (long long)height, why);
        } else if (node_store_read(path, MAX_BLOCK_FILE, &raw, &len, why, sizeof(why)) != 0) {
            int missing = errno == ENOENT;
            if (!beyond && height < pruned)
                return SYS_ERR("%s: the headers index ends at height %lld and the block files "
                               "below %lld are pruned: cannot rebuild it",
                               c->headers_path, (long long)height, (long long)pruned);
            if (!beyond)
                return SYS_ERR("%s", why);
            if (known && (size_t)height + 1 < nrecs)
                return SYS_ERR("%s: block file of indexed height %lld missing above the chainstate "
                               "(%s)",
                               c->dir, (long long)height, why);
            if (missing && !known)
                break;
            if (discard_from(c, height, path, why, err, errlen) != 0)
                return -1;
            break;
        } else {
            int rc = -1;
            if (node_sha256d(raw, len < NODE_HEADER_SIZE ? len : NODE_HEADER_SIZE, NULL, 0, hash) !=
                0)
                snprintf(why, sizeof(why), "out of memory");
            else if (known && memcmp(hash, recs[height].hash, 32) != 0)
                snprintf(why, sizeof(why), "block file does not match the headers index");
            else
                rc = connect_block(c, raw, len, beyond, why, sizeof(why));
            free(raw);
            if (rc != 0) {
                /* Not debris when its record could not be written. */
                if (!beyond || atomic_load(&c->storage_state) != NODE_STORAGE_OK)
                    return SYS_ERR("%s: %s", path, why);
                if (discard_from(c, height, path, why, err, errlen) != 0)
                    return -1;
                break;
            }
            if (beyond)
                (*replayed)++;
        }
        if (have_state && height == state_height &&
            memcmp(c->blocks[height].hash, state_tip, 32) != 0)
            return SYS_ERR("%s: chainstate tip does not match the block index", c->state_path);
    }
    if (have_state && (int64_t)c->nblocks <= state_height)
        return SYS_ERR("%s: blocks end at height %lld below the chainstate tip %lld", c->dir,
                       (long long)c->nblocks - 1, (long long)state_height);
    return 0;
}

/* Delete block files below the prune height that a crash left behind: a
 * prune persists its height first, then unlinks upward, so leftovers are
 * the highest ones below it. */
static void remove_pruned_leftovers(struct node_chain *c)
{
    char path[4096];
    long long removed = 0;
    for (int64_t h = atomic_load(&c->pruned_below) - 1; h >= 0; h--) {
        block_path(c, h, path, sizeof(path));
        if (unlink(path) != 0)
            break;
        removed++;
    }
    if (removed)
        log_msg(LOG_INFO, "prune_leftovers", "%lld block files below the prune height removed",
                removed);
}

struct node_chain *node_chain_open(const char *data_dir, int evm, char *err, size_t errlen)
{
    struct node_chain *c = calloc(1, sizeof(*c));
    struct node_block_meta *recs = NULL;
    size_t nrecs = 0;
    int64_t state_height = -1;
    uint8_t state_tip[32];
    int have_state, replayed = 0;

    if (!c) {
        SYS_ERR("out of memory");
        return NULL;
    }
    pthread_rwlock_init(&c->lock, NULL);
    c->evm = evm;
    atomic_store(&c->height, -1);
    atomic_store(&c->min_free_bytes, MIN_FREE_BYTES);
    prom_histogram_init(&c->stats.validation_seconds, PROM_LATENCY_BOUNDS, PROM_LATENCY_NBOUNDS);
    if (asprintf(&c->dir, "%s", data_dir) < 0 ||
        asprintf(&c->blocks_dir, "%s/blocks", data_dir) < 0 ||
        asprintf(&c->state_path, "%s/chainstate.dat", data_dir) < 0 ||
        asprintf(&c->headers_path, "%s/headers.dat", data_dir) < 0) {
        SYS_ERR("out of memory");
        goto fail;
    }
    c->by_hash = node_hmap_new(32);
    c->utxo = node_hmap_new(OUTPOINT_SIZE);
    if (!c->by_hash || !c->utxo) {
        SYS_ERR("out of memory");
        goto fail;
    }
    if (node_store_mkdirs(c->blocks_dir, err, errlen) != 0)
        goto fail;
    have_state = read_state(c, &state_height, state_tip, err, errlen);
    if (have_state < 0)
        goto fail;
    c->headers = node_headers_open(c->headers_path, &recs, &nrecs, err, errlen);
    if (!c->headers)
        goto fail;
    if (load_blocks(c, recs, nrecs, have_state, state_height, state_tip, &replayed, err, errlen) !=
        0)
        goto fail;
    if (c->nblocks > nrecs && nrecs == 0)
        log_msg(LOG_INFO, "headers_index_built", "%s: %zu records from the block files",
                c->headers_path, c->nblocks);
    remove_pruned_leftovers(c);
    if (c->nblocks == 0) {
        /* Genesis pays to OP_TRUE; its time is fixed so it is the same everywhere. */
        static const uint8_t op_true[] = {0x51};
        if (make_block(c, NULL, 0, op_true, sizeof(op_true), GENESIS_TIME, err, errlen) != 0)
            goto fail;
        replayed = 1;
    }
    if (replayed) {
        if (replayed > 1 || have_state)
            log_msg(LOG_INFO, "chain_replayed", "%d blocks replayed above the chainstate",
                    replayed);
        if (write_state(c, err, errlen) != 0)
            goto fail;
    }
    free(recs);
    return c;
fail:
    free(recs);
    node_chain_close(c);
    return NULL;
}

void node_chain_close(struct node_chain *c)
{
    if (!c)
        return;
    node_hmap_free(c->by_hash);
    node_hmap_free(c->utxo);
    free(c->blocks);
    free(c->dir);
    free(c->blocks_dir);
    free(c->state_path);
    free(c->headers_path);
    node_headers_close(c->headers);
    pthread_rwlock_destroy(&c->lock);
    free(c);
}

int64_t node_chain_height(const struct node_chain *c)
{
    return atomic_load(&((struct node_chain *)c)->height);
}

int node_chain_get(struct node_chain *c, int64_t height, struct node_block_meta *out)
{
    int rc = -1;
    pthread_rwlock_rdlock(&c->lock);
    if (height >= 0 && (size_t)height < c->nblocks) {
        *out = c->blocks[height];
        rc = 0;
    }
    pthread_rwlock_unlock(&c->lock);
    return rc;
}

int node_chain_find(struct node_chain *c, const uint8_t hash[32], int64_t *height)
{
    uint64_t v;
    pthread_rwlock_rdlock(&c->lock);
    int found = node_hmap_get(c->by_hash, hash, &v);
    pthread_rwlock_unlock(&c->lock);
    if (!found)
        return -1;
    *height = (int64_t)v;
    return 0;
}

uint32_t node_chain_median_time(struct node_chain *c, int64_t height)
{
    pthread_rwlock_rdlock(&c->lock);
    uint32_t t = (height >= 0 && (size_t)height < c->nblocks) ? median_time_locked(c, height) : 0;
    pthread_rwlock_unlock(&c->lock);
    return t;
}

int node_chain_read_block(struct node_chain *c, int64_t height, uint8_t **raw, size_t *len,
                          char *err, size_t errlen)
{
    char path[4096];
    int rc;

    /* Under the read lock: a prune (write lock) cannot unlink the file
     * between the check and the read. */
    pthread_rwlock_rdlock(&c->lock);
    if (height < 0 || (size_t)height >= c->nblocks) {
        rc = SYS_ERR("block height out of range");
    } else if (height < atomic_load(&c->pruned_below)) {
        rc = SYS_ERR("block %lld: pruned data", (long long)height);
        errno = ENOENT;
    } else {
        block_path(c, height, path, sizeof(path));
        rc = node_store_read(path, MAX_BLOCK_FILE, raw, len, err, errlen);
    }
    pthread_rwlock_unlock(&c->lock);
    return rc;
}

int node_chain_generate(struct node_chain *c, struct node_mempool *mp, const uint8_t *script,
                        size_t script_len, size_t n, uint8_t (*hashes)[32], char *err,
                        size_t errlen)
{
    int rc = 0;
    size_t made = 0;

    pthread_rwlock_wrlock(&c->lock);
    for (size_t i = 0; i < n; i++) {
        struct node_mempool_entry *txs = NULL;
        size_t ntx = 0;
        if (node_mempool_snapshot(mp, NODE_MAX_BLOCK_WEIGHT - 4000, &txs, &ntx) != 0) {
            rc = SYS_ERR("out of memory");
            break;
        }
        rc = make_block(c, txs, ntx, script, script_len, (uint32_t)time(NULL), err, errlen);
        if (rc == 0) {
            for (size_t k = 0; k < ntx; k++)
                node_mempool_remove(mp, txs[k].txid);
            if (hashes)
                memcpy(hashes[i], c->blocks[c->nblocks - 1].hash, 32);
            made++;
        }
        node_mempool_entries_free(txs, ntx);
        if (rc != 0)
            break;
    }
    if (made) {
        char why[256];
        if (write_state(c, why, sizeof(why)) != 0) {
            if (rc == 0)
                rc = SYS_ERR("%s", why);
        }
    }
    pthread_rwlock_unlock(&c->lock);
    return rc;
}

size_t node_chain_utxo_count(struct node_chain *c)
{
    pthread_rwlock_rdlock(&c->lock);
    size_t n = node_hmap_count(c->utxo);
    pthread_rwlock_unlock(&c->lock);
    return n;
}

int node_chain_has_unspent(struct node_chain *c, const uint8_t txid[32])
{
    /* Outputs are numbered densely; checking the first few catches a
     * resubmitted confirmed transaction without an index of all txids. */
    uint8_t key[OUTPOINT_SIZE];
    int found = 0;
    pthread_rwlock_rdlock(&c->lock);
    for (uint32_t v = 0; v < 4 && !found; v++) {
        utxo_key(key, txid, v);
        found = node_hmap_get(c->utxo, key, NULL);
    }
    pthread_rwlock_unlock(&c->lock);
    return found;
}

uint64_t node_chain_size_bytes(const struct node_chain *c)
{
    struct node_chain *m = (struct node_chain *)c;
    uint64_t headers =
        NODE_HEADERS_PREFIX + (uint64_t)(node_chain_height(c) + 1) * NODE_HEADERS_RECORD;
    return atomic_load(&m->block_bytes) + atomic_load(&m->state_bytes) + headers;
}

void node_chain_set_min_free(struct node_chain *c, uint64_t bytes)
{
    atomic_store(&c->min_free_bytes, bytes);
}

int node_chain_check_storage(struct node_chain *c, char *err, size_t errlen)
{
    int rc = node_store_probe(c->blocks_dir, atomic_load(&c->min_free_bytes), err, errlen);
    if (rc == 0)
        atomic_store(&c->storage_state, NODE_STORAGE_OK);
    else
        storage_failed(c, errno);
    return rc;
}

int node_chain_storage_ok(const struct node_chain *c)
{
    return atomic_load(&((struct node_chain *)c)->storage_state) == NODE_STORAGE_OK;
}

const char *node_chain_storage_reason(const struct node_chain *c)
{
    return node_store_reason(atomic_load(&((struct node_chain *)c)->storage_state));
}

int64_t node_chain_prune_height(const struct node_chain *c)
{
    return atomic_load(&((struct node_chain *)c)->pruned_below);
}

int node_chain_is_pruned(const struct node_chain *c, int64_t height)
{
    return height >= 0 && height < node_chain_prune_height(c);
}

int node_chain_prune(struct node_chain *c, uint64_t target, int64_t keep, int64_t upto,
                     struct node_prune_plan *done, char *err, size_t errlen)
{
    struct node_prune_plan plan;
    char path[4096];
    int rc = -1;

    pthread_rwlock_wrlock(&c->lock);
    int64_t old = atomic_load(&c->pruned_below);
    node_prune_plan(c->blocks, (int64_t)c->nblocks, old, keep, node_chain_size_bytes(c), target,
                    upto, &plan);
    if (plan.to > plan.from) {
        /* The new height is durable before any file goes: a crash now leaves
         * files below it (removed at the next open), never a hole. */
        atomic_store(&c->pruned_below, plan.to);
        if (write_state(c, err, errlen) != 0) {
            atomic_store(&c->pruned_below, old);
            goto out;
        }
        atomic_fetch_sub(&c->block_bytes, plan.bytes);
        for (int64_t h = plan.from; h < plan.to; h++) {
            block_path(c, h, path, sizeof(path));
            if (unlink(path) != 0 && errno != ENOENT)
                log_msg(LOG_WARN, "prune_unlink_failed", "%s: %s", path, strerror(errno));
        }
        atomic_fetch_add(&c->stats.prune_runs, 1);
        atomic_fetch_add(&c->stats.pruned_blocks, (uint64_t)(plan.to - plan.from));
        atomic_fetch_add(&c->stats.pruned_bytes, plan.bytes);
        LOG_EVENT(LOG_INFO, "blocks_pruned", NULL, NULL, LF_INT("from_height", plan.from),
                  LF_INT("to_height", plan.to - 1), LF_INT("blocks", plan.to - plan.from),
                  LF_INT("bytes_freed", plan.bytes), LF_INT("size_bytes", node_chain_size_bytes(c)),
                  LF_INT("tip", (int64_t)c->nblocks - 1));
    }
    *done = plan;
    rc = 0;
out:
    pthread_rwlock_unlock(&c->lock);
    return rc;
}

struct node_chain_stats *node_chain_stats(struct node_chain *c)
{
    return &c->stats;
}

/* Checks of a block from a peer that need no state change: everything
 * connect_block() would refuse after it had already touched the UTXO set.
 * Fills the transaction ids (ids[n]) for the mempool. Caller holds a lock.
 * 0, -1 invalid (err: the reason), -2 out of memory. */
static int check_peer_block(struct node_chain *c, const uint8_t *raw, size_t len,
                            uint8_t (**ids_out)[32], long *nout, char *err, size_t errlen)
{
    struct node_header h;
    struct node_slice *txs = NULL;
    uint8_t(*ids)[32] = NULL;
    uint8_t hash[32], root[32];
    int64_t tip = (int64_t)c->nblocks - 1;
    long n;
    int rc = -1;

    if (len > NODE_MAX_BLOCK_WEIGHT)
        return SYS_ERR("bad-blk-length");
    n = node_block_txs(raw, len, NULL, 0);
    if (n < 0)
        return SYS_ERR("bad-blk-malformed");
    if (!c->evm && n == 0)
        return SYS_ERR("bad-cb-missing");
    node_header_read(raw, &h);
    if (h.bits != NODE_REGTEST_BITS)
        return SYS_ERR("bad-diffbits");
    if (node_sha256d(raw, NODE_HEADER_SIZE, NULL, 0, hash) != 0)
        return SYS_ERR("out of memory") - 1;
    if (!check_pow(hash, h.bits))
        return SYS_ERR("high-hash");
    if (tip < 0 || memcmp(h.prev, c->blocks[tip].hash, 32) != 0)
        return SYS_ERR("bad-prevblk");
    if (h.time <= median_time_locked(c, tip))
        return SYS_ERR("time-too-old");
    txs = calloc((size_t)(n ? n : 1), sizeof(*txs));
    ids = calloc((size_t)(n ? n : 1), 32);
    if (!txs || !ids) {
        rc = SYS_ERR("out of memory") - 1;
        goto fail;
    }
    node_block_txs(raw, len, txs, (size_t)n);
    for (long i = 0; i < n; i++) {
        struct node_tx tx;
        if (tx_id(c, txs[i].p, txs[i].len, ids[i], &tx, err, errlen) != 0)
            goto fail;
        if (!c->evm) {
            int bad = (i == 0) != node_tx_is_coinbase(&tx);
            node_tx_free(&tx);
            if (bad) {
                SYS_ERR(i == 0 ? "bad-cb-missing" : "bad-cb-multiple");
                goto fail;
            }
        }
    }
    if (merkle_root(ids, (size_t)n, root) != 0) {
        rc = SYS_ERR("out of memory") - 1;
        goto fail;
    }
    if (memcmp(root, h.merkle, 32) != 0) {
        SYS_ERR("bad-txnmrklroot");
        goto fail;
    }
    /* merkle_root() folded the ids in place: compute them again. */
    for (long i = 0; i < n; i++) {
        struct node_tx tx;
        if (tx_id(c, txs[i].p, txs[i].len, ids[i], &tx, err, errlen) != 0)
            goto fail;
        if (!c->evm)
            node_tx_free(&tx);
    }
    *ids_out = ids;
    *nout = n;
    ids = NULL;
    rc = 0;
fail:
    free(txs);
    free(ids);
    return rc;
}

int node_chain_accept_block(struct node_chain *c, struct node_mempool *mp, const uint8_t *raw,
                            size_t len, char *err, size_t errlen)
{
    uint8_t hash[32], (*ids)[32] = NULL;
    uint64_t have;
    long n = 0;
    int rc = NODE_ACCEPT_INVALID;

    if (len < NODE_HEADER_SIZE) {
        SYS_ERR("bad-blk-length");
        return NODE_ACCEPT_INVALID;
    }
    if (node_sha256d(raw, NODE_HEADER_SIZE, NULL, 0, hash) != 0) {
        SYS_ERR("out of memory");
        return NODE_ACCEPT_FAILED;
    }
    pthread_rwlock_wrlock(&c->lock);
    if (node_hmap_get(c->by_hash, hash, &have)) {
        rc = NODE_ACCEPT_HAVE;
        goto out;
    }
    int checked = check_peer_block(c, raw, len, &ids, &n, err, errlen);
    if (checked != 0) {
        rc = checked == -2 ? NODE_ACCEPT_FAILED : NODE_ACCEPT_INVALID;
        goto out;
    }
    if (store_block(c, raw, len, err, errlen) != 0 || write_state(c, err, errlen) != 0) {
        rc = NODE_ACCEPT_FAILED;
        goto out;
    }
    for (long i = 0; mp && i < n; i++)
        node_mempool_remove(mp, ids[i]);
    rc = NODE_ACCEPT_OK;
out:
    pthread_rwlock_unlock(&c->lock);
    free(ids);
    return rc;
}
