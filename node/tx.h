/* Raw transaction decoding: Bitcoin's serialization (version, inputs,
 * outputs, optional segwit marker and witnesses, locktime; trailing bytes
 * rejected) and a structural check of Ethereum's signed transactions (legacy
 * RLP list or EIP-2718 typed envelope). */
#ifndef CCNODE_TX_H
#define CCNODE_TX_H

#include <stddef.h>
#include <stdint.h>

#define NODE_MAX_MONEY (21000000LL * 100000000LL)

struct node_tx_in {
    uint8_t prev_txid[32];
    uint32_t prev_vout;
    const uint8_t *script; /* points into the raw bytes */
    size_t script_len;
    uint32_t sequence;
    size_t nwitness; /* witness stack items */
};

struct node_tx_out {
    int64_t value; /* satoshis */
    const uint8_t *script;
    size_t script_len;
};

struct node_tx {
    int32_t version;
    int segwit;
    size_t nin, nout;
    struct node_tx_in *in;   /* malloc'd */
    struct node_tx_out *out; /* malloc'd */
    uint32_t locktime;
    uint8_t txid[32]; /* internal byte order */
    uint8_t wtxid[32];
    size_t size;      /* total bytes */
    size_t base_size; /* without witness data */
    size_t weight;    /* base_size * 3 + size */
};

/* Decode `len` bytes of a serialized transaction. The decoded inputs and
 * outputs point into `raw`, which must outlive `tx`. 0, or -1 with a reason
 * in `err`. Free with node_tx_free(). */
int node_tx_decode(const uint8_t *raw, size_t len, struct node_tx *tx, char *err, size_t errlen);

/* Release the arrays of a decoded transaction. */
void node_tx_free(struct node_tx *tx);

/* Whether the transaction is a coinbase (one input with a null prevout). */
int node_tx_is_coinbase(const struct node_tx *tx);

/* Check that `raw` is one complete Ethereum signed transaction: an RLP list
 * (legacy) or a type byte 0x01..0x7f followed by an RLP list, with no
 * trailing bytes and canonical lengths. 0, or -1 with a reason in `err`. */
int node_tx_evm_check(const uint8_t *raw, size_t len, char *err, size_t errlen);

#endif
