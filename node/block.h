/* The block format and its rules that need no chain state: splitting a
 * serialized block (80-byte header, varint count, transactions) into its
 * transactions, transaction ids, merkle roots, regtest proof of work, the
 * subsidy schedule and the coinbase of produced blocks. Pure functions. */
#ifndef CCNODE_BLOCK_H
#define CCNODE_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "headers.h"

#define NODE_REGTEST_BITS 0x207fffffu
#define NODE_MAX_BLOCK_WEIGHT 4000000

struct node_buf;
struct node_tx;

/* One transaction inside a serialized block. */
struct node_slice {
    const uint8_t *p;
    size_t len;
};

/* Split a serialized block into its transactions: fills up to `max` slices.
 * Returns the transaction count, or -1 when malformed. */
long node_block_txs(const uint8_t *raw, size_t len, struct node_slice *txs, size_t max);

/* Whether `hash` meets the compact target `bits` (both compared as 256-bit
 * little-endian numbers). */
int node_block_check_pow(const uint8_t hash[32], uint32_t bits);

/* Fold `n` ids into their merkle root (Bitcoin's: the last one paired with
 * itself on odd levels; 32 zero bytes for none). `ids` is overwritten.
 * 0, or -1 out of memory. */
int node_block_merkle_root(uint8_t (*ids)[32], size_t n, uint8_t out[32]);

/* The id a transaction is known by: its txid (Bitcoin, `decoded` then holds
 * the decoded transaction, freed by the caller with node_tx_free()) or its
 * Keccak hash (`evm`, `decoded` untouched). 0, or -1 with err. */
int node_block_tx_id(int evm, const uint8_t *raw, size_t len, uint8_t out[32],
                     struct node_tx *decoded, char *err, size_t errlen);

/* Block subsidy in satoshis at `height` (regtest halving every 150). */
int64_t node_block_subsidy(int64_t height);

/* Append the coinbase of `height` paying the subsidy to `script`: BIP34
 * height push plus OP_0. 0, or -1 out of memory. */
int node_block_coinbase(struct node_buf *b, int64_t height, const uint8_t *script,
                        size_t script_len);

#endif
