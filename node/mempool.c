/* Mempool: an arrival-ordered array indexed by a txid map. */
#include "mempool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hmap.h"

struct node_mempool {
    pthread_mutex_t lock;
    struct node_hmap *index; /* txid -> position in entries */
    struct node_mempool_entry *entries;
    size_t n, cap, bytes, max_bytes;
};

struct node_mempool *node_mempool_new(size_t max_bytes)
{
    struct node_mempool *mp = calloc(1, sizeof(*mp));
    if (!mp)
        return NULL;
    mp->index = node_hmap_new(32);
    if (!mp->index) {
        free(mp);
        return NULL;
    }
    pthread_mutex_init(&mp->lock, NULL);
    mp->max_bytes = max_bytes;
    return mp;
}

void node_mempool_free(struct node_mempool *mp)
{
    if (!mp)
        return;
    for (size_t i = 0; i < mp->n; i++)
        free(mp->entries[i].raw);
    free(mp->entries);
    node_hmap_free(mp->index);
    pthread_mutex_destroy(&mp->lock);
    free(mp);
}

int node_mempool_add(struct node_mempool *mp, const uint8_t txid[32], const uint8_t *raw,
                     size_t len, size_t weight)
{
    int rc = -1;
    uint8_t *copy = NULL;

    pthread_mutex_lock(&mp->lock);
    if (node_hmap_get(mp->index, txid, NULL)) {
        rc = NODE_MEMPOOL_DUPLICATE;
        goto out;
    }
    if (mp->bytes + len > mp->max_bytes) {
        rc = NODE_MEMPOOL_FULL;
        goto out;
    }
    if (mp->n == mp->cap) {
        size_t cap = mp->cap ? mp->cap * 2 : 64;
        struct node_mempool_entry *e = realloc(mp->entries, cap * sizeof(*e));
        if (!e)
            goto out;
        mp->entries = e;
        mp->cap = cap;
    }
    copy = malloc(len ? len : 1);
    if (!copy || node_hmap_put(mp->index, txid, mp->n) != 0)
        goto out;
    memcpy(copy, raw, len);
    struct node_mempool_entry *e = &mp->entries[mp->n++];
    memcpy(e->txid, txid, 32);
    e->raw = copy;
    copy = NULL;
    e->len = len;
    e->weight = weight;
    e->time = (int64_t)time(NULL);
    mp->bytes += len;
    rc = NODE_MEMPOOL_ADDED;
out:
    pthread_mutex_unlock(&mp->lock);
    free(copy);
    return rc;
}

int node_mempool_has(struct node_mempool *mp, const uint8_t txid[32])
{
    pthread_mutex_lock(&mp->lock);
    int found = node_hmap_get(mp->index, txid, NULL);
    pthread_mutex_unlock(&mp->lock);
    return found;
}

int node_mempool_remove(struct node_mempool *mp, const uint8_t txid[32])
{
    uint64_t pos;
    pthread_mutex_lock(&mp->lock);
    if (!node_hmap_get(mp->index, txid, &pos)) {
        pthread_mutex_unlock(&mp->lock);
        return 0;
    }
    node_hmap_del(mp->index, txid);
    mp->bytes -= mp->entries[pos].len;
    free(mp->entries[pos].raw);
    /* Keep arrival order: shift the tail down and renumber it. */
    memmove(&mp->entries[pos], &mp->entries[pos + 1], (mp->n - pos - 1) * sizeof(*mp->entries));
    mp->n--;
    for (size_t i = (size_t)pos; i < mp->n; i++)
        node_hmap_put(mp->index, mp->entries[i].txid, i); /* overwrite: cannot fail */
    pthread_mutex_unlock(&mp->lock);
    return 1;
}

void node_mempool_stats(struct node_mempool *mp, size_t *count, size_t *bytes)
{
    pthread_mutex_lock(&mp->lock);
    *count = mp->n;
    *bytes = mp->bytes;
    pthread_mutex_unlock(&mp->lock);
}

size_t node_mempool_max_bytes(const struct node_mempool *mp)
{
    return mp->max_bytes;
}

int node_mempool_snapshot(struct node_mempool *mp, size_t max_weight,
                          struct node_mempool_entry **out, size_t *n)
{
    struct node_mempool_entry *copy = NULL;
    size_t k = 0, weight = 0;

    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&mp->lock);
    if (mp->n) {
        copy = calloc(mp->n, sizeof(*copy));
        if (!copy)
            goto fail;
    }
    for (size_t i = 0; i < mp->n; i++) {
        const struct node_mempool_entry *e = &mp->entries[i];
        if (max_weight && weight + e->weight > max_weight)
            break;
        copy[k] = *e;
        copy[k].raw = malloc(e->len ? e->len : 1);
        if (!copy[k].raw)
            goto fail;
        memcpy(copy[k].raw, e->raw, e->len);
        weight += e->weight;
        k++;
    }
    pthread_mutex_unlock(&mp->lock);
    *out = copy;
    *n = k;
    return 0;
fail:
    pthread_mutex_unlock(&mp->lock);
    node_mempool_entries_free(copy, k);
    return -1;
}

void node_mempool_entries_free(struct node_mempool_entry *e, size_t n)
{
    if (!e)
        return;
    for (size_t i = 0; i < n; i++)
        free(e[i].raw);
    free(e);
}

int node_mempool_metrics(struct node_mempool *mp, prom_t *p)
{
    size_t count = 0, bytes = 0;
    int rc = 0;

    node_mempool_stats(mp, &count, &bytes);
    rc |= prom_family(p, "ccnode_mempool_transactions", PROM_GAUGE, "Transactions in the mempool.");
    rc |= prom_sample(p, "ccnode_mempool_transactions", NULL, (double)count);
    rc |= prom_family(p, "ccnode_mempool_size_bytes", PROM_GAUGE,
                      "Serialized bytes of mempool transactions.");
    rc |= prom_sample(p, "ccnode_mempool_size_bytes", NULL, (double)bytes);
    rc |= prom_family(p, "ccnode_mempool_max_bytes", PROM_GAUGE, "Mempool capacity.");
    rc |= prom_sample(p, "ccnode_mempool_max_bytes", NULL, (double)node_mempool_max_bytes(mp));
    return rc ? -1 : 0;
}
