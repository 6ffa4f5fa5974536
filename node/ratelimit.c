/* Striped token-bucket table. */
#include "ratelimit.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define STRIPES 64
#define SLOTS_PER_STRIPE 256 /* hash chains per stripe */

struct rl_bucket {
    char key[NODE_RATELIMIT_KEY_MAX];
    double tokens, burst, last;
    struct rl_bucket *next;
};

struct rl_stripe {
    pthread_mutex_t lock;
    struct rl_bucket *slots[SLOTS_PER_STRIPE];
    size_t count, cap;
};

struct node_ratelimit {
    struct rl_stripe stripes[STRIPES];
};

static uint64_t key_hash(const char *s)
{
    /* FNV-1a: keys are short ASCII; a table hash, not a security boundary
     * (the table is bounded and evicts, so collisions cost time, not memory). */
    uint64_t h = 14695981039346656037ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

struct node_ratelimit *node_ratelimit_new(size_t max_keys)
{
    struct node_ratelimit *rl = calloc(1, sizeof(*rl));
    if (!rl)
        return NULL;
    size_t cap = max_keys / STRIPES;
    for (size_t i = 0; i < STRIPES; i++) {
        pthread_mutex_init(&rl->stripes[i].lock, NULL);
        rl->stripes[i].cap = cap ? cap : 1;
    }
    return rl;
}

void node_ratelimit_free(struct node_ratelimit *rl)
{
    if (!rl)
        return;
    for (size_t i = 0; i < STRIPES; i++) {
        struct rl_stripe *s = &rl->stripes[i];
        for (size_t j = 0; j < SLOTS_PER_STRIPE; j++) {
            struct rl_bucket *b = s->slots[j];
            while (b) {
                struct rl_bucket *next = b->next;
                free(b);
                b = next;
            }
        }
        pthread_mutex_destroy(&s->lock);
    }
    free(rl);
}

static struct rl_bucket **find(struct rl_stripe *s, uint64_t h, const char *key)
{
    struct rl_bucket **pp = &s->slots[(h >> 6) % SLOTS_PER_STRIPE];
    while (*pp && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->next;
    return pp;
}

/* Unlink and return the least recently used bucket of a full stripe. */
static struct rl_bucket *evict(struct rl_stripe *s)
{
    struct rl_bucket **victim = NULL;
    for (size_t j = 0; j < SLOTS_PER_STRIPE; j++) {
        for (struct rl_bucket **pp = &s->slots[j]; *pp; pp = &(*pp)->next) {
            if (!victim || (*pp)->last < (*victim)->last)
                victim = pp;
        }
    }
    struct rl_bucket *b = *victim;
    *victim = b->next;
    s->count--;
    return b;
}

int node_ratelimit_take(struct node_ratelimit *rl, const char *key, double rate, double burst,
                        double cost, double now, double *retry_after)
{
    char k[NODE_RATELIMIT_KEY_MAX];
    size_t n = strlen(key);
    if (n >= sizeof(k))
        n = sizeof(k) - 1;
    memcpy(k, key, n);
    k[n] = '\0';

    uint64_t h = key_hash(k);
    struct rl_stripe *s = &rl->stripes[h % STRIPES];
    int rc;

    pthread_mutex_lock(&s->lock);
    struct rl_bucket **pp = find(s, h, k);
    struct rl_bucket *b = *pp;
    if (!b) {
        b = s->count >= s->cap ? evict(s) : malloc(sizeof(*b));
        if (!b) {
            pthread_mutex_unlock(&s->lock);
            return -1;
        }
        memcpy(b->key, k, n + 1);
        b->tokens = burst;
        b->last = now;
        b->next = NULL;
        pp = find(s, h, k); /* eviction may have changed the chain */
        *pp = b;
        s->count++;
    }
    b->burst = burst;
    if (now > b->last)
        b->tokens += (now - b->last) * rate;
    if (b->tokens > burst)
        b->tokens = burst;
    b->last = now > b->last ? now : b->last;
    if (b->tokens >= cost) {
        b->tokens -= cost;
        rc = 1;
    } else {
        if (retry_after)
            *retry_after = (cost - b->tokens) / rate;
        rc = 0;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void node_ratelimit_refund(struct node_ratelimit *rl, const char *key, double cost)
{
    char k[NODE_RATELIMIT_KEY_MAX];
    size_t n = strlen(key);
    if (n >= sizeof(k))
        n = sizeof(k) - 1;
    memcpy(k, key, n);
    k[n] = '\0';
    uint64_t h = key_hash(k);
    struct rl_stripe *s = &rl->stripes[h % STRIPES];
    pthread_mutex_lock(&s->lock);
    struct rl_bucket *b = *find(s, h, k);
    if (b) {
        b->tokens += cost;
        if (b->tokens > b->burst)
            b->tokens = b->burst;
    }
    pthread_mutex_unlock(&s->lock);
}

size_t node_ratelimit_count(struct node_ratelimit *rl)
{
    size_t n = 0;
    for (size_t i = 0; i < STRIPES; i++) {
        pthread_mutex_lock(&rl->stripes[i].lock);
        n += rl->stripes[i].count;
        pthread_mutex_unlock(&rl->stripes[i].lock);
    }
    return n;
}
