/* Open-addressing hash map over binary keys. */
#include "hmap.h"

#include <stdlib.h>
#include <string.h>

struct node_hmap {
    size_t keylen, slot_size;
    size_t cap, count; /* cap is a power of two */
    uint8_t *slots;    /* [used:1][pad:7][value:8][key] per slot */
};

#define SLOT(m, i) ((m)->slots + (i) * (m)->slot_size)

static uint64_t key_hash(const struct node_hmap *m, const uint8_t *key)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i + 8 <= m->keylen; i += 8) {
        uint64_t w;
        memcpy(&w, key + i, 8);
        h ^= w;
        h *= 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 31;
    }
    for (size_t i = m->keylen & ~(size_t)7; i < m->keylen; i++) {
        h ^= key[i];
        h *= 0x94d049bb133111ebULL;
    }
    return h ^ (h >> 29);
}

struct node_hmap *node_hmap_new(size_t keylen)
{
    if (keylen < 8 || keylen > 64)
        return NULL;
    struct node_hmap *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->keylen = keylen;
    m->slot_size = (16 + keylen + 7) & ~(size_t)7;
    m->cap = 64;
    m->slots = calloc(m->cap, m->slot_size);
    if (!m->slots) {
        free(m);
        return NULL;
    }
    return m;
}

void node_hmap_free(struct node_hmap *m)
{
    if (!m)
        return;
    free(m->slots);
    free(m);
}

static size_t find_slot(const struct node_hmap *m, const void *key, int *found)
{
    size_t i = key_hash(m, key) & (m->cap - 1);
    for (;;) {
        uint8_t *s = SLOT(m, i);
        if (!s[0]) {
            *found = 0;
            return i;
        }
        if (memcmp(s + 16, key, m->keylen) == 0) {
            *found = 1;
            return i;
        }
        i = (i + 1) & (m->cap - 1);
    }
}

static int grow(struct node_hmap *m)
{
    struct node_hmap bigger = *m;
    bigger.cap = m->cap * 2;
    bigger.count = 0;
    bigger.slots = calloc(bigger.cap, bigger.slot_size);
    if (!bigger.slots)
        return -1;
    for (size_t i = 0; i < m->cap; i++) {
        uint8_t *s = SLOT(m, i);
        int found;
        if (!s[0])
            continue;
        size_t j = find_slot(&bigger, s + 16, &found);
        memcpy(SLOT(&bigger, j), s, m->slot_size);
        bigger.count++;
    }
    free(m->slots);
    *m = bigger;
    return 0;
}

int node_hmap_put(struct node_hmap *m, const void *key, uint64_t value)
{
    int found;
    if ((m->count + 1) * 4 > m->cap * 3 && grow(m) != 0)
        return -1;
    size_t i = find_slot(m, key, &found);
    uint8_t *s = SLOT(m, i);
    if (!found) {
        s[0] = 1;
        memcpy(s + 16, key, m->keylen);
        m->count++;
    }
    memcpy(s + 8, &value, 8);
    return 0;
}

int node_hmap_get(const struct node_hmap *m, const void *key, uint64_t *value)
{
    int found;
    size_t i = find_slot(m, key, &found);
    if (found && value)
        memcpy(value, SLOT(m, i) + 8, 8);
    return found;
}

int node_hmap_del(struct node_hmap *m, const void *key)
{
    int found;
    size_t i = find_slot(m, key, &found);
    if (!found)
        return 0;
    /* Backward-shift: move later members of the probe run into the hole. */
    size_t hole = i, j = i;
    for (;;) {
        j = (j + 1) & (m->cap - 1);
        uint8_t *s = SLOT(m, j);
        if (!s[0])
            break;
        size_t home = key_hash(m, s + 16) & (m->cap - 1);
        /* s may fill the hole if its home is not cyclically in (hole, j]. */
        int in_range = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!in_range) {
            memcpy(SLOT(m, hole), s, m->slot_size);
            hole = j;
        }
    }
    memset(SLOT(m, hole), 0, m->slot_size);
    m->count--;
    return 1;
}

size_t node_hmap_count(const struct node_hmap *m)
{
    return m->count;
}

void node_hmap_each(const struct node_hmap *m, int (*fn)(void *ctx, const void *key, uint64_t v),
                    void *ctx)
{
    for (size_t i = 0; i < m->cap; i++) {
        uint8_t *s = SLOT(m, i);
        uint64_t v;
        if (!s[0])
            continue;
        memcpy(&v, s + 8, 8);
        if (fn(ctx, s + 16, v))
            return;
    }
}
