/* The chainstate: the UTXO set (outpoint txid||vout -> value, in a
 * node_hmap) and its file, <data_dir>/chainstate.dat: magic, version, tip
 * height and hash, prune height (version 2), the outpoints, and a double
 * SHA-256 checksum. The chain owns the set and its lock, and replaces the
 * file atomically after the block files it covers are durable. */
#ifndef CCNODE_CHAINSTATE_H
#define CCNODE_CHAINSTATE_H

#include <stddef.h>
#include <stdint.h>

#define NODE_CHAINSTATE_OUTPOINT 36 /* key size: txid (32) and vout (u32 LE) */

struct node_buf;
struct node_hmap;
struct node_tx;

/* What the file records besides the set. */
struct node_chainstate_tip {
    int64_t height;
    uint8_t hash[32];
    int64_t pruned_below; /* block files below this height are deleted */
};

/* A new, empty UTXO set. NULL out of memory. */
struct node_hmap *node_chainstate_new_set(void);

/* Spend the inputs of `tx` (unless a coinbase) and add its outputs
 * (OP_RETURN outputs excepted). 0, or -1 out of memory: the set is then
 * partly updated. */
int node_chainstate_apply(struct node_hmap *utxo, const struct node_tx *tx);

/* Whether any of the first outputs of `txid` is unspent: enough to catch a
 * resubmitted confirmed transaction without an index of every txid. */
int node_chainstate_has_unspent(const struct node_hmap *utxo, const uint8_t txid[32]);

/* Append the file's bytes for `tip` and `utxo` to `out`. 0, or -1 out of
 * memory. */
int node_chainstate_encode(const struct node_chainstate_tip *tip, const struct node_hmap *utxo,
                           struct node_buf *out);

/* Load the file at `path` into `tip` and the (empty) set `utxo`; *bytes gets
 * the file size. 1 loaded, 0 absent, -1 unreadable or corrupt (err filled). */
int node_chainstate_read(const char *path, struct node_chainstate_tip *tip, struct node_hmap *utxo,
                         uint64_t *bytes, char *err, size_t errlen);

#endif
