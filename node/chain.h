/* The chain: the block index (headers.h keeps it on disk), one file per
 * block under <data_dir>/blocks/ so pruning can delete the oldest, and the
 * chainstate (chainstate.h: tip and UTXO set) replaced atomically after the
 * block files are durable. Opening replays block files written after the
 * last chainstate (crash recovery). Blocks enter by production (mine.h) or
 * from peers (validate.h), both through one store-and-connect path. Reads
 * take a read lock, block production and acceptance the write lock. */
#ifndef CCNODE_CHAIN_H
#define CCNODE_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "headers.h"
#include "prom.h"

struct node_mempool;

struct node_chain_stats {
    _Atomic uint64_t blocks_processed; /* connected since start */
    struct prom_histogram validation_seconds;
    _Atomic uint64_t prune_runs;    /* prunes that deleted at least one block file */
    _Atomic uint64_t pruned_blocks; /* block files deleted by them */
    _Atomic uint64_t pruned_bytes;  /* bytes freed by them */
};

struct node_chain;

/* Open (or create, with a genesis block) the chain under `data_dir`.
 * `evm` selects opaque transactions and no coinbase. NULL with err filled. */
struct node_chain *node_chain_open(const char *data_dir, int evm, char *err, size_t errlen);
void node_chain_close(struct node_chain *c);

/* Tip height; lock-free. */
int64_t node_chain_height(const struct node_chain *c);

/* Tip height and hash (internal byte order), without waiting for the write
 * lock (a block being stored, a `generate`): the last tip committed. */
int64_t node_chain_tip(struct node_chain *c, uint8_t hash[32]);

/* Copy the index entry at `height`. 0, or -1 when out of range. */
int node_chain_get(struct node_chain *c, int64_t height, struct node_block_meta *out);

/* Height of the block with this hash (internal byte order). 0 or -1. */
int node_chain_find(struct node_chain *c, const uint8_t hash[32], int64_t *height);

/* Median time of the 11 blocks ending at `height`. */
uint32_t node_chain_median_time(struct node_chain *c, int64_t height);

/* The serialized block at `height` (malloc'd). 0, or -1 with err; for a
 * pruned block err says "pruned data" and node_chain_is_pruned() is true. */
int node_chain_read_block(struct node_chain *c, int64_t height, uint8_t **raw, size_t *len,
                          char *err, size_t errlen);

/* Produce `n` blocks on top of the tip, each taking what fits from the
 * mempool; bitcoin blocks pay the coinbase to `script`. Hashes go to
 * `hashes` (n entries, may be NULL). 0, or -1 with err (blocks made before
 * the failure stay). */
int node_chain_generate(struct node_chain *c, struct node_mempool *mp, const uint8_t *script,
                        size_t script_len, size_t n, uint8_t (*hashes)[32], char *err,
                        size_t errlen);

size_t node_chain_utxo_count(struct node_chain *c);
/* Whether any output of transaction `txid` is unspent (already confirmed). */
int node_chain_has_unspent(struct node_chain *c, const uint8_t txid[32]);
/* The node's own storage: bytes of the stored block files, the headers
 * index and the chainstate. Lock-free. */
uint64_t node_chain_size_bytes(const struct node_chain *c);

/* Re-check that the data dir is usable (a durable probe write and at least
 * the node_chain_set_min_free() floor free, 16 MiB by default); updates the
 * state read by node_chain_storage_ok(). A failed block or chainstate write
 * sets it too. 0 usable, -1 with err. */
int node_chain_check_storage(struct node_chain *c, char *err, size_t errlen);
void node_chain_set_min_free(struct node_chain *c, uint64_t bytes);
int node_chain_storage_ok(const struct node_chain *c);
/* "storage: read-only", "storage: no space", "storage: unavailable", or
 * NULL when usable (static strings). */
const char *node_chain_storage_reason(const struct node_chain *c);

/* First height whose block file is stored (Bitcoin Core's pruneheight; 0
 * when nothing is pruned). Lock-free. */
int64_t node_chain_prune_height(const struct node_chain *c);
/* Whether the block at `height` was pruned (its header is still indexed). */
int node_chain_is_pruned(const struct node_chain *c, int64_t height);

struct node_prune_plan;
/* Delete the oldest block files per node_prune_plan() (prune.h): while own
 * size > `target`, keeping the `keep` most recent blocks, up to height
 * `upto` (INT64_MAX: no bound). The new prune height is written to the
 * chainstate before any file is removed. `done` gets what was deleted
 * (from == to: nothing). 0, or -1 with err (nothing deleted). */
int node_chain_prune(struct node_chain *c, uint64_t target, int64_t keep, int64_t upto,
                     struct node_prune_plan *done, char *err, size_t errlen);

struct node_chain_stats *node_chain_stats(struct node_chain *c);

enum node_accept {
    NODE_ACCEPT_OK = 0,      /* connected as the new tip, block file and chainstate written */
    NODE_ACCEPT_HAVE = 1,    /* already in the chain */
    NODE_ACCEPT_INVALID = 2, /* refused; err holds Bitcoin Core's reason ("high-hash") */
    NODE_ACCEPT_FAILED = 3,  /* our side failed (storage, memory); err says why */
};

/* Accept a serialized block received from a peer: it must extend the tip
 * (bad-prevblk otherwise: no reorganisations), carry regtest bits and meet
 * them, have a later time than the median of the last 11, fit the weight
 * limit, a coinbase first (bitcoin) and a matching merkle root. It is then
 * stored and connected the way produced blocks are, and its transactions
 * leave `mp` (may be NULL). Returns an enum node_accept. */
int node_chain_accept_block(struct node_chain *c, struct node_mempool *mp, const uint8_t *raw,
                            size_t len, char *err, size_t errlen);

#endif
