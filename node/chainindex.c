/* The chain's index in memory and the path that connects a block to it. */
#include "chainindex.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chainstate.h"
#include "hmap.h"
#include "log.h"
#include "store.h"
#include "sys.h"
#include "tx.h"
#include "validate.h"

/* Record that a write failed with `errnum`: /health/ready turns 503 with
 * the reason until the disk monitor's next probe succeeds. */
void node_chainindex_storage_failed(struct node_chain *c, int errnum)
{
    enum node_storage_state s = node_store_classify(errnum);
    atomic_store(&c->storage_state, s == NODE_STORAGE_OK ? NODE_STORAGE_UNAVAILABLE : s);
}

/* Make room for the next index entry and map its hash: the part of adding
 * a block that can fail (out of memory, -1), undone by node_hmap_del().
 * Caller holds the write lock. */
int node_chainindex_reserve(struct node_chain *c, const struct node_block_meta *meta)
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
void node_chainindex_commit(struct node_chain *c, const struct node_block_meta *meta)
{
    if ((int64_t)c->nblocks >= atomic_load(&c->pruned_below))
        atomic_fetch_add(&c->block_bytes, meta->size);
    c->blocks[c->nblocks++] = *meta;
    atomic_store(&c->height, (int64_t)c->nblocks - 1);
    pthread_mutex_lock(&c->tip_lock);
    c->tip_height = (int64_t)c->nblocks - 1;
    memcpy(c->tip_hash, meta->hash, 32);
    pthread_mutex_unlock(&c->tip_lock);
}

/* Validate a serialized block against the tip and add it to the index;
 * with `apply_utxo`, update the UTXO set. A block the headers index does not
 * hold yet gets its record appended (durably) before any state changes, so
 * the caller must have made its block file durable first. Caller holds the
 * write lock. */
int node_chainindex_connect(struct node_chain *c, const uint8_t *raw, size_t len, int apply_utxo,
                            char *err, size_t errlen)
{
    struct node_block_meta meta;
    struct node_tx *decoded = NULL;
    double t0 = sys_mono_s();
    long ndecoded = 0;
    int rc = -1;

    if (node_validate_stored_block(c->evm, raw, len,
                                   c->nblocks ? c->blocks[c->nblocks - 1].hash : NULL, &meta,
                                   &decoded, &ndecoded, err, errlen) != 0)
        return -1;
    if (node_chainindex_reserve(c, &meta) != 0) {
        SYS_ERR("out of memory");
        goto fail;
    }
    if (c->nblocks >= node_headers_count(c->headers) &&
        node_headers_append(c->headers, &meta, err, errlen) != 0) {
        node_chainindex_storage_failed(c, errno);
        node_hmap_del(c->by_hash, meta.hash);
        goto fail;
    }
    node_chainindex_commit(c, &meta);
    for (long i = 0; apply_utxo && i < ndecoded; i++) {
        if (!c->utxo_broken && node_chainstate_apply(c->utxo, &decoded[i]) != 0) {
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
    return rc;
}

void node_chainindex_block_path(const struct node_chain *c, int64_t height, char *out, size_t size)
{
    snprintf(out, size, "%s/%010lld.blk", c->blocks_dir, (long long)height);
}
