/* The chain's public calls: open and close, reads of the index and block
 * files, block production and acceptance, pruning and storage health. */
#include "chain.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "block.h"
#include "chain-types.h"
#include "chainindex.h"
#include "chainload.h"
#include "chainstate.h"
#include "codec.h"
#include "headers.h"
#include "hmap.h"
#include "log.h"
#include "mempool.h"
#include "mine.h"
#include "prune.h"
#include "store.h"
#include "sys.h"
#include "validate.h"

#define MIN_FREE_BYTES (16u << 20) /* default floor of node_chain_set_min_free() */

/* Replace the chainstate file with the current tip and UTXO set. */
static int write_state(struct node_chain *c, char *err, size_t errlen)
{
    struct node_buf b = {0};
    struct node_chainstate_tip tip = {.height = (int64_t)c->nblocks - 1,
                                      .pruned_below = atomic_load(&c->pruned_below)};
    int rc = -1;

    if (c->utxo_broken)
        return SYS_ERR("chainstate not written: the UTXO set is incomplete after running out of "
                       "memory (a restart rebuilds it)");
    memcpy(tip.hash, c->blocks[c->nblocks - 1].hash, 32);
    if (node_chainstate_encode(&tip, c->utxo, &b) != 0) {
        SYS_ERR("chainstate: out of memory");
        goto fail;
    }
    if (sys_write_file_atomic(c->state_path, b.data, b.len, 0644, err, errlen) != 0) {
        node_chainindex_storage_failed(c, errno);
        goto fail;
    }
    atomic_store(&c->state_bytes, b.len);
    rc = 0;
fail:
    node_codec_buf_free(&b);
    return rc;
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
    for (int64_t h = height; h >= 0 && n < ARRAY_LEN(t); h--)
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
    node_chainindex_block_path(c, (int64_t)c->nblocks, path, sizeof(path));
    if (sys_write_file_atomic(path, raw, len, 0644, err, errlen) != 0) {
        node_chainindex_storage_failed(c, errno);
        return -1;
    }
    if (node_chainindex_connect(c, raw, len, 1, err, errlen) != 0) {
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
    struct node_buf blk = {0};
    int64_t height = (int64_t)c->nblocks;
    const uint8_t *prev = NULL;
    uint32_t time = NODE_MINE_GENESIS_TIME;
    int rc = -1;

    if (height > 0) {
        uint32_t mtp = median_time_locked(c, height - 1);
        prev = c->blocks[height - 1].hash;
        time = time_now > mtp ? time_now : mtp + 1;
    }
    if (node_mine_block(c->evm, height, prev, time, txs, ntx, script, script_len, &blk, err,
                        errlen) == 0 &&
        store_block(c, blk.data, blk.len, err, errlen) == 0)
        rc = 0;
    node_codec_buf_free(&blk);
    return rc;
}

struct node_chain *node_chain_open(const char *data_dir, int evm, char *err, size_t errlen)
{
    struct node_chain *c = calloc(1, sizeof(*c));
    struct node_block_meta *recs = NULL;
    size_t nrecs = 0;
    struct node_chainstate_tip state;
    uint64_t state_bytes = 0;
    int64_t state_height = -1;
    uint8_t state_tip[32];
    int have_state, replayed = 0;

    if (!c) {
        SYS_ERR("out of memory");
        return NULL;
    }
    pthread_rwlock_init(&c->lock, NULL);
    pthread_mutex_init(&c->tip_lock, NULL);
    c->tip_height = -1;
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
    c->utxo = node_chainstate_new_set();
    if (!c->by_hash || !c->utxo) {
        SYS_ERR("out of memory");
        goto fail;
    }
    if (node_store_mkdirs(c->blocks_dir, err, errlen) != 0)
        goto fail;
    have_state = node_chainstate_read(c->state_path, &state, c->utxo, &state_bytes, err, errlen);
    if (have_state < 0)
        goto fail;
    if (have_state) {
        atomic_store(&c->pruned_below, state.pruned_below);
        atomic_store(&c->state_bytes, state_bytes);
        state_height = state.height;
        memcpy(state_tip, state.hash, 32);
    }
    c->headers = node_headers_open(c->headers_path, &recs, &nrecs, err, errlen);
    if (!c->headers)
        goto fail;
    if (node_chainload_blocks(c, recs, nrecs, have_state, state_height, state_tip, &replayed, err,
                              errlen) != 0)
        goto fail;
    if (c->nblocks > nrecs && nrecs == 0)
        log_msg(LOG_INFO, "headers_index_built", "%s: %zu records from the block files",
                c->headers_path, c->nblocks);
    node_chainload_remove_leftovers(c);
    if (c->nblocks == 0) {
        /* Genesis pays to OP_TRUE; its time is fixed so it is the same everywhere. */
        static const uint8_t op_true[] = {0x51};
        if (make_block(c, NULL, 0, op_true, sizeof(op_true), NODE_MINE_GENESIS_TIME, err, errlen) !=
            0)
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
    pthread_mutex_destroy(&c->tip_lock);
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
        node_chainindex_block_path(c, height, path, sizeof(path));
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
    pthread_rwlock_rdlock(&c->lock);
    int found = node_chainstate_has_unspent(c->utxo, txid);
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
        node_chainindex_storage_failed(c, errno);
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
            node_chainindex_block_path(c, h, path, sizeof(path));
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
    if (node_codec_sha256d(raw, NODE_HEADER_SIZE, NULL, 0, hash) != 0) {
        SYS_ERR("out of memory");
        return NODE_ACCEPT_FAILED;
    }
    pthread_rwlock_wrlock(&c->lock);
    if (node_hmap_get(c->by_hash, hash, &have)) {
        rc = NODE_ACCEPT_HAVE;
        goto out;
    }
    int64_t tip = (int64_t)c->nblocks - 1;
    int checked =
        node_validate_block(c->evm, raw, len, tip >= 0 ? c->blocks[tip].hash : NULL,
                            tip >= 0 ? median_time_locked(c, tip) : 0, &ids, &n, err, errlen);
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

int64_t node_chain_tip(struct node_chain *c, uint8_t hash[32])
{
    pthread_mutex_lock(&c->tip_lock);
    int64_t h = c->tip_height;
    memcpy(hash, c->tip_hash, 32);
    pthread_mutex_unlock(&c->tip_lock);
    return h;
}
