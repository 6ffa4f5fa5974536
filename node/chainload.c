/* Opening the chain: the index rebuilt from the headers index and the
 * block files, crash debris removed. */
#include "chainload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block.h"
#include "chainindex.h"
#include "codec.h"
#include "log.h"
#include "store.h"
#include "sys.h"

/* Add a record of the headers index without reading its block file: it
 * must extend the tip and meet its proof of work. 0, or -1 with err. */
static int index_header(struct node_chain *c, const struct node_block_meta *m, char *err,
                        size_t errlen)
{
    static const uint8_t zero[32];
    const uint8_t *prev = c->nblocks ? c->blocks[c->nblocks - 1].hash : zero;
    if (memcmp(m->header.prev, prev, 32) != 0)
        return SYS_ERR("header does not extend the one before it");
    if (!node_block_check_pow(m->hash, m->header.bits))
        return SYS_ERR("proof of work does not meet the target");
    if (node_chainindex_reserve(c, m) != 0)
        return SYS_ERR("out of memory");
    node_chainindex_commit(c, m);
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
int node_chainload_blocks(struct node_chain *c, const struct node_block_meta *recs, size_t nrecs,
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

        node_chainindex_block_path(c, height, path, sizeof(path));
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
            if (node_codec_sha256d(raw, len < NODE_HEADER_SIZE ? len : NODE_HEADER_SIZE, NULL, 0,
                                   hash) != 0)
                snprintf(why, sizeof(why), "out of memory");
            else if (known && memcmp(hash, recs[height].hash, 32) != 0)
                snprintf(why, sizeof(why), "block file does not match the headers index");
            else
                rc = node_chainindex_connect(c, raw, len, beyond, why, sizeof(why));
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
void node_chainload_remove_leftovers(struct node_chain *c)
{
    char path[4096];
    long long removed = 0;
    for (int64_t h = atomic_load(&c->pruned_below) - 1; h >= 0; h--) {
        node_chainindex_block_path(c, h, path, sizeof(path));
        if (unlink(path) != 0)
            break;
        removed++;
    }
    if (removed)
        log_msg(LOG_INFO, "prune_leftovers", "%lld block files below the prune height removed",
                removed);
}
