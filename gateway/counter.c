/* Relay and non-relay counters: an open-addressing hash table keyed by
 * (chain, account, reason, bucket) with interned strings, so that one update
 * is one hash and one probe. See counter.h for the consumer model. */
#include "counter.h"

#include <stdlib.h>
#include <string.h>

/* String interning: a set of NUL-terminated copies, each allocated once and
 * never moved, so that pointers handed out stay valid until the pool dies. */
struct counter_strpool {
    char **slots;
    size_t cap, used; /* cap is a power of two */
};

struct counter_key {
    const char *chain;   /* interned; NULL for non-relay keys */
    const char *account; /* interned; NULL for non-relay keys */
    int reason;          /* -1 for relay keys */
    int64_t bucket;
    uint64_t hash;
    int used;
    int64_t total;
    int64_t pending[COUNTER_NCONSUMERS];
};

struct counter {
    struct counter_key *keys;
    size_t cap, used; /* cap is a power of two */
    struct counter_strpool pool;
    int64_t total_relays;
    int64_t total_non_relays[NR_COUNT];
};

static const char *const reason_names[NR_COUNT] = {
    [NR_INVALID_HOST] = "invalid_host", [NR_UNROUTED] = "unrouted",
    [NR_SERVER_ERROR] = "server_error", [NR_NO_RESPONSE] = "no_response",
    [NR_UNPARSABLE] = "unparsable",
};

const char *counter_reason_name(enum non_relay_reason r)
{
    if ((int)r < 0 || r >= NR_COUNT)
        return NULL;
    return reason_names[r];
}

int counter_reason_parse(const char *name)
{
    for (int i = 0; name && i < NR_COUNT; i++)
        if (strcmp(reason_names[i], name) == 0)
            return i;
    return -1;
}

/* FNV-1a: a table index, not a security boundary (keys come from our own
 * routing config, and the table grows before chains get long). */
static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

#define HASH_SEED 14695981039346656037ULL

static uint64_t hash_str(const char *s)
{
    return hash_bytes(HASH_SEED, s, strlen(s));
}

static void strpool_free(struct counter_strpool *p)
{
    for (size_t i = 0; i < p->cap; i++)
        free(p->slots[i]);
    free(p->slots);
    p->slots = NULL;
    p->cap = p->used = 0;
}

static int strpool_grow(struct counter_strpool *p)
{
    size_t ncap = p->cap ? p->cap * 2 : 16;
    char **ns = calloc(ncap, sizeof(*ns));
    if (!ns)
        return -1;
    for (size_t i = 0; i < p->cap; i++) {
        if (!p->slots[i])
            continue;
        size_t j = hash_str(p->slots[i]) & (ncap - 1);
        while (ns[j])
            j = (j + 1) & (ncap - 1);
        ns[j] = p->slots[i];
    }
    free(p->slots);
    p->slots = ns;
    p->cap = ncap;
    return 0;
}

/* The pool's copy of `s`, added if absent; NULL on OOM. */
static const char *strpool_intern(struct counter_strpool *p, const char *s)
{
    if ((p->used + 1) * 4 > p->cap * 3 && strpool_grow(p) < 0)
        return NULL;
    size_t j = hash_str(s) & (p->cap - 1);
    while (p->slots[j]) {
        if (strcmp(p->slots[j], s) == 0)
            return p->slots[j];
        j = (j + 1) & (p->cap - 1);
    }
    char *copy = strdup(s);
    if (!copy)
        return NULL;
    p->slots[j] = copy;
    p->used++;
    return copy;
}

static uint64_t key_hash(const char *chain, const char *account, int reason, int64_t bucket)
{
    uint64_t h = HASH_SEED;
    if (chain) {
        h = hash_bytes(h, chain, strlen(chain) + 1);
        h = hash_bytes(h, account, strlen(account) + 1);
    }
    h = hash_bytes(h, &reason, sizeof(reason));
    h = hash_bytes(h, &bucket, sizeof(bucket));
    return h;
}

static int key_equal(const struct counter_key *k, uint64_t h, const char *chain,
                     const char *account, int reason, int64_t bucket)
{
    if (k->hash != h || k->reason != reason || k->bucket != bucket)
        return 0;
    if (!chain)
        return k->chain == NULL;
    return k->chain && strcmp(k->chain, chain) == 0 && strcmp(k->account, account) == 0;
}

static int table_resize(counter_t *c, size_t ncap)
{
    struct counter_key *nk = calloc(ncap, sizeof(*nk));
    if (!nk)
        return -1;
    for (size_t i = 0; i < c->cap; i++) {
        if (!c->keys[i].used)
            continue;
        size_t j = c->keys[i].hash & (ncap - 1);
        while (nk[j].used)
            j = (j + 1) & (ncap - 1);
        nk[j] = c->keys[i];
    }
    free(c->keys);
    c->keys = nk;
    c->cap = ncap;
    return 0;
}

/* The key's slot, created with zero counts when absent; NULL on OOM. */
static struct counter_key *key_get(counter_t *c, const char *chain, const char *account,
                                   int reason, int64_t bucket)
{
    uint64_t h = key_hash(chain, account, reason, bucket);
    size_t j = h & (c->cap - 1);
    while (c->keys[j].used) {
        if (key_equal(&c->keys[j], h, chain, account, reason, bucket))
            return &c->keys[j];
        j = (j + 1) & (c->cap - 1);
    }
    if ((c->used + 1) * 4 > c->cap * 3) {
        if (table_resize(c, c->cap * 2) < 0)
            return NULL;
        j = h & (c->cap - 1);
        while (c->keys[j].used)
            j = (j + 1) & (c->cap - 1);
    }
    const char *ichain = NULL, *iaccount = NULL;
    if (chain) {
        ichain = strpool_intern(&c->pool, chain);
        iaccount = ichain ? strpool_intern(&c->pool, account) : NULL;
        if (!iaccount)
            return NULL;
    }
    struct counter_key *k = &c->keys[j];
    memset(k, 0, sizeof(*k));
    k->chain = ichain;
    k->account = iaccount;
    k->reason = reason;
    k->bucket = bucket;
    k->hash = h;
    k->used = 1;
    c->used++;
    return k;
}

static void key_add(counter_t *c, struct counter_key *k, int64_t n)
{
    k->total += n;
    for (int w = 0; w < COUNTER_NCONSUMERS; w++)
        k->pending[w] += n;
    if (k->reason < 0)
        c->total_relays += n;
    else
        c->total_non_relays[k->reason] += n;
}

counter_t *counter_new(void)
{
    counter_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->cap = 64;
    c->keys = calloc(c->cap, sizeof(*c->keys));
    if (!c->keys) {
        free(c);
        return NULL;
    }
    return c;
}

void counter_free(counter_t *c)
{
    if (!c)
        return;
    free(c->keys);
    strpool_free(&c->pool);
    free(c);
}

int counter_add_relay(counter_t *c, const char *chain, const char *account, int64_t bucket,
                      int64_t n)
{
    if (!chain || !account)
        return -1;
    struct counter_key *k = key_get(c, chain, account, -1, bucket);
    if (!k)
        return -1;
    key_add(c, k, n);
    return 0;
}

int counter_add_non_relay(counter_t *c, enum non_relay_reason reason, int64_t bucket, int64_t n)
{
    if ((int)reason < 0 || reason >= NR_COUNT)
        return -1;
    struct counter_key *k = key_get(c, NULL, NULL, (int)reason, bucket);
    if (!k)
        return -1;
    key_add(c, k, n);
    return 0;
}

int counter_take(counter_t *c, enum counter_consumer who, struct counter_deltas *out)
{
    size_t start = out->nrows;
    for (size_t i = 0; i < c->cap; i++) {
        const struct counter_key *k = &c->keys[i];
        if (!k->used || k->pending[who] == 0)
            continue;
        if (counter_deltas_push(out, k->chain, k->account, k->reason, k->bucket,
                                k->pending[who]) < 0) {
            out->nrows = start;
            return -1;
        }
    }
    for (size_t i = 0; i < c->cap; i++)
        c->keys[i].pending[who] = 0;
    return 0;
}

static int row_valid(const struct counter_delta *r)
{
    if (r->chain)
        return r->account != NULL;
    return r->reason >= 0 && r->reason < NR_COUNT;
}

/* Create every key of `d` first, so that applying the deltas afterwards
 * cannot fail half-way: either all rows apply or none does. */
static int keys_reserve(counter_t *c, const struct counter_deltas *d)
{
    for (size_t i = 0; i < d->nrows; i++) {
        const struct counter_delta *r = &d->rows[i];
        if (!row_valid(r))
            return -1;
        if (!key_get(c, r->chain, r->account, r->chain ? -1 : r->reason, r->bucket))
            return -1;
    }
    return 0;
}

int counter_give_back(counter_t *c, enum counter_consumer who, const struct counter_deltas *d)
{
    if ((int)who < 0 || who >= COUNTER_NCONSUMERS || keys_reserve(c, d) < 0)
        return -1;
    for (size_t i = 0; i < d->nrows; i++) {
        const struct counter_delta *r = &d->rows[i];
        key_get(c, r->chain, r->account, r->chain ? -1 : r->reason, r->bucket)->pending[who] +=
            r->n;
    }
    return 0;
}

int counter_add_deltas(counter_t *c, const struct counter_deltas *d)
{
    if (keys_reserve(c, d) < 0)
        return -1;
    for (size_t i = 0; i < d->nrows; i++) {
        const struct counter_delta *r = &d->rows[i];
        key_add(c, key_get(c, r->chain, r->account, r->chain ? -1 : r->reason, r->bucket), r->n);
    }
    return 0;
}

int64_t counter_total_relays(const counter_t *c)
{
    return c->total_relays;
}

int64_t counter_total_non_relays(const counter_t *c, enum non_relay_reason r)
{
    if ((int)r < 0 || r >= NR_COUNT)
        return 0;
    return c->total_non_relays[r];
}

size_t counter_pending_keys(const counter_t *c, enum counter_consumer who)
{
    size_t n = 0;
    for (size_t i = 0; i < c->cap; i++)
        if (c->keys[i].used && c->keys[i].pending[who] != 0)
            n++;
    return n;
}

size_t counter_keys(const counter_t *c)
{
    return c->used;
}

void counter_foreach(const counter_t *c, counter_visit_fn fn, void *ctx)
{
    for (size_t i = 0; i < c->cap; i++) {
        const struct counter_key *k = &c->keys[i];
        if (!k->used)
            continue;
        struct counter_delta row = {.chain = k->chain,
                                    .account = k->account,
                                    .reason = k->reason,
                                    .bucket = k->bucket,
                                    .n = k->total};
        if (fn(ctx, &row))
            return;
    }
}

void counter_deltas_init(struct counter_deltas *d)
{
    memset(d, 0, sizeof(*d));
}

void counter_deltas_free(struct counter_deltas *d)
{
    free(d->rows);
    if (d->pool) {
        strpool_free(d->pool);
        free(d->pool);
    }
    memset(d, 0, sizeof(*d));
}

int counter_deltas_push(struct counter_deltas *d, const char *chain, const char *account,
                        int reason, int64_t bucket, int64_t n)
{
    if ((chain == NULL) != (account == NULL))
        return -1;
    if (d->nrows == d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 32;
        struct counter_delta *nr = realloc(d->rows, ncap * sizeof(*nr));
        if (!nr)
            return -1;
        d->rows = nr;
        d->cap = ncap;
    }
    const char *ichain = NULL, *iaccount = NULL;
    if (chain) {
        if (!d->pool && !(d->pool = calloc(1, sizeof(*d->pool))))
            return -1;
        ichain = strpool_intern(d->pool, chain);
        iaccount = ichain ? strpool_intern(d->pool, account) : NULL;
        if (!iaccount)
            return -1;
    }
    d->rows[d->nrows++] = (struct counter_delta){
        .chain = ichain, .account = iaccount, .reason = chain ? -1 : reason,
        .bucket = bucket, .n = n};
    return 0;
}

static int key_prunable(const struct counter_key *k, int64_t before)
{
    if (!k->used || k->bucket >= before)
        return 0;
    for (int w = 0; w < COUNTER_NCONSUMERS; w++)
        if (k->pending[w] != 0)
            return 0;
    return 1;
}

/* Keys are dropped once every consumer has delivered them; the running
 * totals (counter_total_*) are kept apart and do not shrink. Out of memory,
 * nothing is pruned this time (linear probing cannot leave holes). */
void counter_prune(counter_t *c, int64_t before)
{
    size_t removed = 0;
    for (size_t i = 0; i < c->cap; i++)
        removed += key_prunable(&c->keys[i], before);
    if (!removed)
        return;
    struct counter_key *nk = calloc(c->cap, sizeof(*nk));
    if (!nk)
        return;
    for (size_t i = 0; i < c->cap; i++) {
        if (!c->keys[i].used || key_prunable(&c->keys[i], before))
            continue;
        size_t j = c->keys[i].hash & (c->cap - 1);
        while (nk[j].used)
            j = (j + 1) & (c->cap - 1);
        nk[j] = c->keys[i];
    }
    free(c->keys);
    c->keys = nk;
    c->used -= removed;
}
