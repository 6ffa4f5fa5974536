/* The headers index: <data_dir>/headers.dat, one fixed-size record per block
 * (80-byte header, transaction count, size, weight, checksum) appended in
 * height order and fdatasync'ed, so the block index survives the pruning of
 * block files and opening a chain does not need them. A record is written
 * only after its block file is durable; a torn or corrupt tail (crash in the
 * middle of an append) is detected by length and checksum and cut off, never
 * trusted. */
#ifndef CCNODE_HEADERS_H
#define CCNODE_HEADERS_H

#include <stddef.h>
#include <stdint.h>

#define NODE_HEADER_SIZE 80

/* A Bitcoin-style block header. */
struct node_header {
    int32_t version;
    uint8_t prev[32];
    uint8_t merkle[32];
    uint32_t time;
    uint32_t bits;
    uint32_t nonce;
};

/* What the index keeps per block. */
struct node_block_meta {
    uint8_t hash[32];
    struct node_header header;
    uint32_t ntx;
    uint32_t size; /* bytes of the serialized block */
    uint32_t weight;
};

#define NODE_HEADERS_MAGIC "CCHDRS01" /* file prefix: format and version */
#define NODE_HEADERS_PREFIX 8
#define NODE_HEADERS_RECORD 96 /* 80 header + ntx, size, weight (u32 LE) + 4 checksum */

struct node_headers;

/* Serialize / parse the 80-byte wire form of a header (little-endian
 * fields, as in Bitcoin). */
void node_headers_pack(const struct node_header *h, uint8_t out[NODE_HEADER_SIZE]);
void node_headers_unpack(const uint8_t in[NODE_HEADER_SIZE], struct node_header *h);

/* Encode one index entry as a record (checksum included). */
void node_headers_encode(const struct node_block_meta *m, uint8_t out[NODE_HEADERS_RECORD]);

/* Decode a record into `m` (hash computed from the header). 0, or -1 when
 * the checksum does not match. */
int node_headers_decode(const uint8_t in[NODE_HEADERS_RECORD], struct node_block_meta *m);

/* Open (or create) the index at `path` and read its valid records into
 * *metas (malloc'd, caller frees; *n entries). A short or corrupt record ends
 * the index there: the file is truncated to the records before it (best
 * effort on a read-only file system: appends then start at that point).
 * NULL with err filled when the file cannot be opened or is not an index. */
struct node_headers *node_headers_open(const char *path, struct node_block_meta **metas, size_t *n,
                                       char *err, size_t errlen);

/* Append the record of height node_headers_count() and make it durable.
 * 0, or -1 with err (errno kept); on failure the index keeps its old count
 * and the file is cut back to it. */
int node_headers_append(struct node_headers *h, const struct node_block_meta *m, char *err,
                        size_t errlen);

/* Forget the records from height `count` on (crash debris above them). 0, or
 * -1 with err. */
int node_headers_truncate(struct node_headers *h, size_t count, char *err, size_t errlen);

/* Records in the index. */
size_t node_headers_count(const struct node_headers *h);

/* Bytes of the file (prefix and records). */
uint64_t node_headers_bytes(const struct node_headers *h);

/* Close the file and free `h` (NULL is fine). */
void node_headers_close(struct node_headers *h);

#endif
