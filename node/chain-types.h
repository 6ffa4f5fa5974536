/* The chain's state, shared by the files that implement chain.h and by no
 * other module: chain.c (the public calls: open, reads, block production
 * and acceptance, pruning, storage health), chainindex.c (the index in
 * memory and the path by which a block is connected to it) and chainload.c
 * (rebuilding the index at open: crash recovery). `lock` is a rwlock: reads
 * take it shared, every change exclusive; the atomics are also read without
 * it. */
#ifndef CCNODE_CHAIN_TYPES_H
#define CCNODE_CHAIN_TYPES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "chain.h"
#include "headers.h"

#define MAX_BLOCK_FILE (64u << 20)

struct node_hmap;
struct node_headers;

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
    /* The tip (height and hash) for readers that must not wait for the
     * write lock (the peer thread): set under tip_lock with each commit. */
    pthread_mutex_t tip_lock;
    int64_t tip_height;
    uint8_t tip_hash[32];
    _Atomic int64_t pruned_below; /* block files below this height are deleted */
    _Atomic uint64_t block_bytes; /* sizes of the stored block files */
    _Atomic uint64_t state_bytes; /* size of the chainstate file */
    _Atomic uint64_t min_free_bytes;
    atomic_int storage_state; /* enum node_storage_state */
    int utxo_broken;          /* an update ran out of memory: never write the chainstate */
    struct node_chain_stats stats;
};

#endif
