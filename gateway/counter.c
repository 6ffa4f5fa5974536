/* Relay and non-relay counters. Chain and account ids are interned once
 * into 32-bit name ids; a key is (chain id, account id, bucket) or, for a
 * non-relay, (NON_RELAY, reason, bucket). Keys and their counts live in one
 * dense array (48 bytes a key, no per-key allocation, no per-key string),
 * found through an open-addressing array of 32-bit entry indices hashed with
 * XXH3. Names are turned back into strings only when keys are handed out.
 * See counter.h for the consumer model. */
#include "counter.h"

#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

/* String interning. The bytes go into blocks that never move, so a name's
 * pointer stays valid until the pool dies; the lookup array holds ids. */
#define POOL_BLOCK 65536
#define NO_ID UINT32_MAX

struct counter_strpool {
    char **blocks;
    size_t nblocks, block_used, block_size; /* fill and size of the last block */
    size_t block_bytes;                     /* all blocks */
    const char **names;                     /* id -> string */
    uint32_t nnames, names_cap;
    uint32_t *slots; /* id + 1, 0 when empty; mask + 1 entries */
    size_t mask;
};

/* The chain id of non-relay keys (their account id is the reason). */
#define NON_RELAY NO_ID

struct counter_entry {
    uint32_t chain;   /* name id, or NON_RELAY */
    uint32_t account; /* name id, or the reason of a non-relay key */
    int64_t bucket;
    int64_t total;
    int64_t pending[COUNTER_NCONSUMERS];
};

struct counter {
    struct counter_entry *entries; /* dense, in insertion order */
    size_t used, cap;
    uint32_t *slots; /* entry index + 1, 0 when empty; mask + 1 entries */
    size_t mask;
    struct counter_strpool pool;
    int64_t total_relays;
    int64_t total_non_relays[NR_COUNT];
};

static const char *const reason_names[NR_COUNT] = {
    [NR_INVALID_HOST] = "invalid_host",       [NR_UNROUTED] = "unrouted",
    [NR_SERVER_ERROR] = "server_error",       [NR_NO_RESPONSE] = "no_response",
    [NR_UNPARSABLE] = "unparsable",           [NR_BAD_HOST] = "bad_host",
    [NR_UPGRADE_REFUSED] = "upgrade_refused", [NR_CONNECT_REFUSED] = "connect_refused",
    [NR_WEBSOCKET] = "websocket_session",     [NR_BAD_REQUEST] = "bad_request",
    [NR_REDIRECTED] = "redirected",
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

static void strpool_free(struct counter_strpool *p)
{
    for (size_t i = 0; i < p->nblocks; i++)
        free(p->blocks[i]);
    free(p->blocks);
    free(p->names);
    free(p->slots);
    memset(p, 0, sizeof(*p));
}

/* Room for `n` bytes in the last block (a name longer than a block gets a
 * block of its own). NULL on OOM. */
static char *strpool_room(struct counter_strpool *p, size_t n)
{
    if (p->nblocks > 0 && p->block_size - p->block_used >= n)
        return p->blocks[p->nblocks - 1] + p->block_used;
    size_t size = n > POOL_BLOCK ? n : POOL_BLOCK;
    char **nb = realloc(p->blocks, (p->nblocks + 1) * sizeof(*nb));
    if (!nb)
        return NULL;
    p->blocks = nb;
    if (!(nb[p->nblocks] = malloc(size)))
        return NULL;
    p->nblocks++;
    p->block_used = 0;
    p->block_size = size;
    p->block_bytes += size;
    return nb[p->nblocks - 1];
}

static void strpool_place(struct counter_strpool *p, uint32_t id, uint64_t h)
{
    size_t j = (size_t)h & p->mask;
    while (p->slots[j])
        j = (j + 1) & p->mask;
    p->slots[j] = id + 1;
}

/* Make room for one more name: the id array and the lookup array (kept at
 * most half full). 0, or -1 on OOM with the pool unchanged. */
static int strpool_reserve(struct counter_strpool *p)
{
    if (p->nnames == p->names_cap) {
        if (p->names_cap > UINT32_MAX / 2)
            return -1;
        uint32_t ncap = p->names_cap ? p->names_cap * 2 : 16;
        const char **nn = realloc(p->names, ncap * sizeof(*nn));
        if (!nn)
            return -1;
        p->names = nn;
        p->names_cap = ncap;
    }
    if (p->slots && (size_t)(p->nnames + 1) * 2 <= p->mask + 1)
        return 0;
    size_t ncap = p->slots ? (p->mask + 1) * 2 : 32;
    uint32_t *ns = calloc(ncap, sizeof(*ns));
    if (!ns)
        return -1;
    free(p->slots);
    p->slots = ns;
    p->mask = ncap - 1;
    for (uint32_t id = 0; id < p->nnames; id++)
        strpool_place(p, id, XXH3_64bits(p->names[id], strlen(p->names[id])));
    return 0;
}

/* The id of `s` (`len` bytes), added if absent; NO_ID on OOM. */
static uint32_t strpool_intern(struct counter_strpool *p, const char *s, size_t len)
{
    uint64_t h = XXH3_64bits(s, len);
    if (p->slots) {
        for (size_t j = (size_t)h & p->mask; p->slots[j]; j = (j + 1) & p->mask) {
            const char *name = p->names[p->slots[j] - 1];
            if (strncmp(name, s, len) == 0 && name[len] == '\0')
                return p->slots[j] - 1;
        }
    }
    if (p->nnames >= NO_ID - 1 || strpool_reserve(p) < 0)
        return NO_ID;
    char *copy = strpool_room(p, len + 1);
    if (!copy)
        return NO_ID;
    memcpy(copy, s, len);
    copy[len] = '\0';
    p->block_used += len + 1;
    p->names[p->nnames] = copy;
    strpool_place(p, p->nnames, h);
    return p->nnames++;
}

static uint64_t key_hash(uint32_t chain, uint32_t account, int64_t bucket)
{
    struct {
        uint32_t chain, account;
        int64_t bucket;
    } k = {chain, account, bucket};
    return XXH3_64bits(&k, sizeof(k));
}

static void slot_place(uint32_t *slots, size_t mask, const struct counter_entry *e, uint32_t i)
{
    size_t j = (size_t)key_hash(e->chain, e->account, e->bucket) & mask;
    while (slots[j])
        j = (j + 1) & mask;
    slots[j] = i + 1;
}

/* Room for one more key: the entry array doubles, the lookup array stays
 * at most half full. 0, or -1 on OOM with the table unchanged. */
static int table_reserve(counter_t *c)
{
    if (c->used == c->cap) {
        size_t ncap = c->cap * 2;
        struct counter_entry *ne = realloc(c->entries, ncap * sizeof(*ne));
        if (!ne)
            return -1;
        c->entries = ne;
        c->cap = ncap;
    }
    if ((c->used + 1) * 2 <= c->mask + 1)
        return 0;
    size_t ncap = (c->mask + 1) * 2;
    uint32_t *ns = calloc(ncap, sizeof(*ns));
    if (!ns)
        return -1;
    free(c->slots);
    c->slots = ns;
    c->mask = ncap - 1;
    for (size_t i = 0; i < c->used; i++)
        slot_place(c->slots, c->mask, &c->entries[i], (uint32_t)i);
    return 0;
}

/* The entry of a key, created with zero counts when absent; NULL on OOM.
 * The pointer is valid until the next key is created. */
static struct counter_entry *key_get(counter_t *c, uint32_t chain, uint32_t account, int64_t bucket)
{
    size_t j = (size_t)key_hash(chain, account, bucket) & c->mask;
    for (; c->slots[j]; j = (j + 1) & c->mask) {
        struct counter_entry *e = &c->entries[c->slots[j] - 1];
        if (e->chain == chain && e->account == account && e->bucket == bucket)
            return e;
    }
    if (c->used >= UINT32_MAX - 1 || table_reserve(c) < 0)
        return NULL;
    struct counter_entry *e = &c->entries[c->used];
    *e = (struct counter_entry){.chain = chain, .account = account, .bucket = bucket};
    slot_place(c->slots, c->mask, e, (uint32_t)c->used);
    c->used++;
    return e;
}

/* The entry of a delta row's key (created when absent); NULL on OOM or for
 * a malformed row. */
static struct counter_entry *row_key(counter_t *c, const char *chain, const char *account,
                                     int reason, int64_t bucket)
{
    if (!chain) {
        if (reason < 0 || reason >= NR_COUNT)
            return NULL;
        return key_get(c, NON_RELAY, (uint32_t)reason, bucket);
    }
    if (!account)
        return NULL;
    uint32_t ci = strpool_intern(&c->pool, chain, strlen(chain));
    uint32_t ai = ci == NO_ID ? NO_ID : strpool_intern(&c->pool, account, strlen(account));
    return ai == NO_ID ? NULL : key_get(c, ci, ai, bucket);
}

static void key_add(counter_t *c, struct counter_entry *e, int64_t n)
{
    e->total += n;
    for (int w = 0; w < COUNTER_NCONSUMERS; w++)
        e->pending[w] += n;
    if (e->chain != NON_RELAY)
        c->total_relays += n;
    else
        c->total_non_relays[e->account] += n;
}

/* An entry as a row; its strings belong to the counter's pool. */
static struct counter_delta entry_row(const counter_t *c, const struct counter_entry *e, int64_t n)
{
    int relay = e->chain != NON_RELAY;
    return (struct counter_delta){.chain = relay ? c->pool.names[e->chain] : NULL,
                                  .account = relay ? c->pool.names[e->account] : NULL,
                                  .reason = relay ? -1 : (int)e->account,
                                  .bucket = e->bucket,
                                  .n = n};
}

counter_t *counter_new(void)
{
    counter_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->cap = 32;
    c->mask = 63;
    c->entries = malloc(c->cap * sizeof(*c->entries));
    c->slots = calloc(c->mask + 1, sizeof(*c->slots));
    if (!c->entries || !c->slots) {
        counter_free(c);
        return NULL;
    }
    return c;
}

void counter_free(counter_t *c)
{
    if (!c)
        return;
    free(c->entries);
    free(c->slots);
    strpool_free(&c->pool);
    free(c);
}

int counter_add_relay(counter_t *c, const char *chain, const char *account, int64_t bucket,
                      int64_t n)
{
    if (!chain || !account)
        return -1;
    struct counter_entry *e = row_key(c, chain, account, -1, bucket);
    if (!e)
        return -1;
    key_add(c, e, n);
    return 0;
}

int counter_add_non_relay(counter_t *c, enum non_relay_reason reason, int64_t bucket, int64_t n)
{
    struct counter_entry *e = row_key(c, NULL, NULL, (int)reason, bucket);
    if (!e)
        return -1;
    key_add(c, e, n);
    return 0;
}

int counter_take(counter_t *c, enum counter_consumer who, struct counter_deltas *out)
{
    size_t start = out->nrows;
    for (size_t i = 0; i < c->used; i++) {
        const struct counter_entry *e = &c->entries[i];
        if (e->pending[who] == 0)
            continue;
        struct counter_delta r = entry_row(c, e, e->pending[who]);
        if (counter_deltas_push(out, r.chain, r.account, r.reason, r.bucket, r.n) < 0) {
            out->nrows = start;
            return -1;
        }
    }
    for (size_t i = 0; i < c->used; i++)
        c->entries[i].pending[who] = 0;
    return 0;
}

/* Create every key of `d` first, so that applying the deltas afterwards
 * cannot fail half-way: either all rows apply or none does. */
static int keys_reserve(counter_t *c, const struct counter_deltas *d)
{
    for (size_t i = 0; i < d->nrows; i++) {
        const struct counter_delta *r = &d->rows[i];
        if (!row_key(c, r->chain, r->account, r->reason, r->bucket))
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
        row_key(c, r->chain, r->account, r->reason, r->bucket)->pending[who] += r->n;
    }
    return 0;
}

int counter_add_deltas(counter_t *c, const struct counter_deltas *d)
{
    if (keys_reserve(c, d) < 0)
        return -1;
    for (size_t i = 0; i < d->nrows; i++) {
        const struct counter_delta *r = &d->rows[i];
        key_add(c, row_key(c, r->chain, r->account, r->reason, r->bucket), r->n);
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
    for (size_t i = 0; i < c->used; i++)
        n += c->entries[i].pending[who] != 0;
    return n;
}

size_t counter_keys(const counter_t *c)
{
    return c->used;
}

size_t counter_bytes(const counter_t *c)
{
    const struct counter_strpool *p = &c->pool;
    size_t n = sizeof(*c) + c->cap * sizeof(*c->entries) + (c->mask + 1) * sizeof(*c->slots);
    n += p->nblocks * sizeof(*p->blocks) + p->block_bytes + p->names_cap * sizeof(*p->names);
    return n + (p->slots ? (p->mask + 1) * sizeof(*p->slots) : 0);
}

void counter_foreach(const counter_t *c, counter_visit_fn fn, void *ctx)
{
    for (size_t i = 0; i < c->used; i++) {
        struct counter_delta row = entry_row(c, &c->entries[i], c->entries[i].total);
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
        uint32_t ci = strpool_intern(d->pool, chain, strlen(chain));
        uint32_t ai = ci == NO_ID ? NO_ID : strpool_intern(d->pool, account, strlen(account));
        if (ai == NO_ID)
            return -1;
        ichain = d->pool->names[ci];
        iaccount = d->pool->names[ai];
    }
    d->rows[d->nrows++] = (struct counter_delta){.chain = ichain,
                                                 .account = iaccount,
                                                 .reason = chain ? -1 : reason,
                                                 .bucket = bucket,
                                                 .n = n};
    return 0;
}

static int entry_prunable(const struct counter_entry *e, int64_t before)
{
    if (e->bucket >= before)
        return 0;
    for (int w = 0; w < COUNTER_NCONSUMERS; w++)
        if (e->pending[w] != 0)
            return 0;
    return 1;
}

/* Keys are dropped once every consumer has delivered them; the running
 * totals (counter_total_*) are kept apart and do not shrink. The entries
 * are compacted in place and the lookup array rebuilt in place, so pruning
 * needs no memory. Interned names stay: they come from the routing config
 * and are few. */
void counter_prune(counter_t *c, int64_t before)
{
    size_t kept = 0;
    for (size_t i = 0; i < c->used; i++) {
        if (entry_prunable(&c->entries[i], before))
            continue;
        c->entries[kept++] = c->entries[i];
    }
    if (kept == c->used)
        return;
    c->used = kept;
    memset(c->slots, 0, (c->mask + 1) * sizeof(*c->slots));
    for (size_t i = 0; i < c->used; i++)
        slot_place(c->slots, c->mask, &c->entries[i], (uint32_t)i);
}
