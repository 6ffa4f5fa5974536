/* A hash map from fixed-size binary keys (block hashes, outpoints) to 64-bit
 * values: open addressing, linear probing, backward-shift deletion. Keys are
 * hashes already, so slots are chosen from the key's own bytes. Not
 * thread-safe: owners lock. */
#ifndef CCNODE_HMAP_H
#define CCNODE_HMAP_H

#include <stddef.h>
#include <stdint.h>

struct node_hmap;

/* A map for keys of `keylen` bytes (8..64). NULL when out of memory. */
struct node_hmap *node_hmap_new(size_t keylen);
void node_hmap_free(struct node_hmap *m);

/* Insert or overwrite. 0, or -1 out of memory (the map is unchanged). */
int node_hmap_put(struct node_hmap *m, const void *key, uint64_t value);
/* 1 and *value set when found, else 0. `value` may be NULL. */
int node_hmap_get(const struct node_hmap *m, const void *key, uint64_t *value);
/* 1 when removed, 0 when absent. */
int node_hmap_del(struct node_hmap *m, const void *key);
size_t node_hmap_count(const struct node_hmap *m);

/* Visit every entry; stop early when `fn` returns non-zero. */
void node_hmap_each(const struct node_hmap *m, int (*fn)(void *ctx, const void *key, uint64_t v),
                    void *ctx);

#endif
