/* Per-route reconciliation with HAProxy's stick table; see routegap.h. */
#include "routegap.h"

#include <stdlib.h>
#include <string.h>

#include "reconcile.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

/* Samples waiting to be judged (one every few seconds; the settle time is
 * two seconds). */
#define ROUTEGAP_PENDING 8
/* HAProxy dates a request from its poll loop's clock, which may lag the
 * instant it counts it by a loop's run: a relay dated this close to a dump
 * may or may not be in it. */
#define ROUTEGAP_MARGIN_MS 20
/* Relays waiting for a judgement: a few seconds' worth at full rate. More
 * means no sample comes (an HTTP tier without st_routes, a stats socket
 * that does not answer): the comparison starts over rather than grow. */
#define ROUTEGAP_QUEUE_MAX (1u << 20)
/* "<chain>/<account>": two DNS labels and a slash. */
#define ROUTEGAP_ROUTE_MAX 128

struct route {
    char *name;
    int64_t base;       /* HAProxy's count at the baseline */
    int64_t cur;        /* HAProxy's count at the last judged sample */
    int64_t base_maybe; /* our relays answered while the baseline was dumped */
    int64_t since;      /* our relays answered after it, up to the last sample */
    int64_t maybe;      /* ... and while the last sample was dumped */
    int64_t gap;        /* at the last judged sample */
};

struct queued {
    int64_t ms;
    uint32_t route;
};

struct routegap_sample {
    long pid;
    int64_t t0_ms, t_ms; /* the dump was made between them */
    size_t n;
    char *text;      /* the answer, keys NUL-terminated in place */
    char **keys;     /* into text */
    int64_t *counts; /* gpc0 per key */
    uint32_t *idx;   /* interned keys, filled by routegap_add_sample */
};

struct routegap {
    int64_t start_ms;
    long pid;
    int have_base;
    int64_t base0_ms, base1_ms; /* the baseline's dump, margins included */
    struct route *routes;
    size_t nroutes, cap;
    uint32_t *slots; /* route index + 1; mask + 1 entries */
    size_t mask;
    struct queued *queue;
    size_t nqueue, qcap;
    struct routegap_sample *pending[ROUTEGAP_PENDING];
    size_t npending;
    struct routegap_stats stats;
};

routegap_t *routegap_new(int64_t start_ms)
{
    routegap_t *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->start_ms = start_ms;
    g->mask = 1023;
    g->slots = calloc(g->mask + 1, sizeof(*g->slots));
    if (!g->slots) {
        free(g);
        return NULL;
    }
    return g;
}

void routegap_sample_free(struct routegap_sample *s)
{
    if (!s)
        return;
    free(s->text);
    free(s->keys);
    free(s->counts);
    free(s->idx);
    free(s);
}

void routegap_free(routegap_t *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->nroutes; i++)
        free(g->routes[i].name);
    for (size_t i = 0; i < g->npending; i++)
        routegap_sample_free(g->pending[i]);
    free(g->routes);
    free(g->slots);
    free(g->queue);
    free(g);
}

static int grow_slots(routegap_t *g)
{
    size_t cap = (g->mask + 1) * 2;
    uint32_t *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return -1;
    for (size_t i = 0; i < g->nroutes; i++) {
        const char *name = g->routes[i].name;
        size_t s = (size_t)XXH3_64bits(name, strlen(name)) & (cap - 1);
        while (slots[s])
            s = (s + 1) & (cap - 1);
        slots[s] = (uint32_t)i + 1;
    }
    free(g->slots);
    g->slots = slots;
    g->mask = cap - 1;
    return 0;
}

/* The index of route `name` (len bytes), interned if new; -1 out of memory. */
static int64_t intern(routegap_t *g, const char *name, size_t len)
{
    size_t s = (size_t)XXH3_64bits(name, len) & g->mask;
    while (g->slots[s]) {
        const char *have = g->routes[g->slots[s] - 1].name;
        if (strlen(have) == len && memcmp(have, name, len) == 0)
            return g->slots[s] - 1;
        s = (s + 1) & g->mask;
    }
    if ((g->nroutes + 1) * 2 > g->mask + 1) {
        if (grow_slots(g) < 0)
            return -1;
        return intern(g, name, len);
    }
    if (g->nroutes == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        struct route *r = realloc(g->routes, cap * sizeof(*r));
        if (!r)
            return -1;
        g->routes = r;
        g->cap = cap;
    }
    struct route *r = &g->routes[g->nroutes];
    memset(r, 0, sizeof(*r));
    if (!(r->name = strndup(name, len)))
        return -1;
    g->slots[s] = (uint32_t)g->nroutes + 1;
    return (int64_t)g->nroutes++;
}

static void clear_route(struct route *r)
{
    r->base = r->cur = r->base_maybe = r->since = r->maybe = r->gap = 0;
}

/* Forget the baseline and what waits: the next sample is a new one. */
static void start_over(routegap_t *g)
{
    g->have_base = 0;
    g->nqueue = 0;
    for (size_t i = 0; i < g->nroutes; i++)
        clear_route(&g->routes[i]);
    for (size_t i = 0; i < g->npending; i++)
        routegap_sample_free(g->pending[i]);
    g->npending = 0;
}

/* A new HAProxy process: its table starts empty, and so do we. */
static void new_process(routegap_t *g, long pid)
{
    if (pid == g->pid)
        return;
    g->pid = pid;
    start_over(g);
}

int routegap_relay(routegap_t *g, long pid, const char *chain, const char *account, int status,
                   int64_t response_ms)
{
    char name[ROUTEGAP_ROUTE_MAX];
    size_t cl = strlen(chain), al = strlen(account);

    new_process(g, pid);
    if (status < 200 || status > 499 || response_ms < 0 || cl + al + 2 > sizeof(name))
        return 0;
    memcpy(name, chain, cl);
    name[cl] = '/';
    memcpy(name + cl + 1, account, al);
    int64_t idx = intern(g, name, cl + 1 + al);
    if (idx < 0)
        return -1;
    if (g->nqueue >= ROUTEGAP_QUEUE_MAX) {
        start_over(g);
        g->stats.restarts++;
    }
    if (g->nqueue == g->qcap) {
        size_t cap = g->qcap ? g->qcap * 2 : 4096;
        struct queued *q = realloc(g->queue, cap * sizeof(*q));
        if (!q)
            return -1;
        g->queue = q;
        g->qcap = cap;
    }
    g->queue[g->nqueue++] = (struct queued){response_ms, (uint32_t)idx};
    return 0;
}

/* `0x55d0c8a1e2b0: key=0021/acct use=0 exp=0 gpc0=4`: the key and gpc0 of
 * one entry line, NUL-terminating the key in place. 0, or -1 when the line
 * is not an entry. */
static int parse_entry(char *line, char **key, int64_t *count)
{
    char *k = strstr(line, " key="), *g = strstr(line, " gpc0=");
    if (!k || !g)
        return -1;
    k += 5;
    size_t klen = strcspn(k, " ");
    if (klen == 0 || klen >= ROUTEGAP_ROUTE_MAX || k + klen > g)
        return -1;
    for (size_t i = 0; i < klen; i++)
        if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') || k[i] == '-' ||
              k[i] == '/'))
            return -1;
    char *end;
    long long v = strtoll(g + 6, &end, 10);
    if (end == g + 6 || v < 0 || (*end != '\0' && *end != ' '))
        return -1;
    k[klen] = '\0';
    *key = k;
    *count = v;
    return 0;
}

struct routegap_sample *routegap_sample_parse(long pid, const char *text, size_t len, int64_t t0_ms,
                                              int64_t t1_ms)
{
    static const char head[] = "# table: " ROUTEGAP_TABLE ",";
    if (len < sizeof(head) - 1 || memcmp(text, head, sizeof(head) - 1) != 0)
        return NULL;
    struct routegap_sample *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->pid = pid;
    s->t0_ms = t0_ms;
    s->t_ms = t1_ms;
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    s->text = malloc(len + 1);
    s->keys = malloc(lines * sizeof(*s->keys));
    s->counts = malloc(lines * sizeof(*s->counts));
    s->idx = malloc(lines * sizeof(*s->idx));
    if (!s->text || !s->keys || !s->counts || !s->idx) {
        routegap_sample_free(s);
        return NULL;
    }
    memcpy(s->text, text, len);
    s->text[len] = '\0';
    for (char *p = s->text; p && *p;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        if (p[0] == '0' && p[1] == 'x' && parse_entry(p, &s->keys[s->n], &s->counts[s->n]) == 0)
            s->n++;
        p = nl ? nl + 1 : NULL;
    }
    return s;
}

void routegap_add_sample(routegap_t *g, long reading_pid, struct routegap_sample *s)
{
    new_process(g, reading_pid);
    if (!s)
        return;
    if (s->pid != g->pid) {
        /* the worker has not reached this HAProxy's log yet, or left it */
        routegap_sample_free(s);
        return;
    }
    for (size_t i = 0; i < s->n; i++) {
        int64_t idx = intern(g, s->keys[i], strlen(s->keys[i]));
        if (idx < 0) { /* out of memory: this sample cannot be judged */
            routegap_sample_free(s);
            return;
        }
        s->idx[i] = (uint32_t)idx;
    }
    if (g->npending == ROUTEGAP_PENDING) {
        routegap_sample_free(g->pending[0]);
        memmove(g->pending, g->pending + 1, (ROUTEGAP_PENDING - 1) * sizeof(g->pending[0]));
        g->npending--;
    }
    g->pending[g->npending++] = s;
}

/* Move queued relays answered by `sure` into the routes' counts; those
 * answered by the baseline's dump are dropped (HAProxy's baseline holds
 * them) or, while it was dumped, kept aside. Relays answered while the
 * sample was dumped (up to `maybe`) are counted in `maybe` and stay
 * queued for the next sample. */
static void drain_queue(routegap_t *g, int64_t sure, int64_t maybe)
{
    size_t keep = 0;
    for (size_t i = 0; i < g->nroutes; i++)
        g->routes[i].maybe = 0;
    for (size_t i = 0; i < g->nqueue; i++) {
        const struct queued *q = &g->queue[i];
        struct route *r = &g->routes[q->route];
        if (q->ms <= g->base0_ms)
            continue;
        if (q->ms <= g->base1_ms) {
            r->base_maybe++;
            continue;
        }
        if (q->ms <= sure) {
            r->since++;
            continue;
        }
        if (q->ms <= maybe)
            r->maybe++;
        g->queue[keep++] = *q;
    }
    g->nqueue = keep;
}

/* HAProxy's count moved by `h` between the dumps; we counted at least
 * since and at most since + base_maybe + maybe relays in that time. Only
 * what lies outside that range is a gap. */
static void judge(routegap_t *g, const struct routegap_sample *s)
{
    if (!g->have_base) {
        if (s->t0_ms < g->start_ms)
            return;
        for (size_t i = 0; i < g->nroutes; i++)
            clear_route(&g->routes[i]);
        for (size_t i = 0; i < s->n; i++)
            g->routes[s->idx[i]].base = g->routes[s->idx[i]].cur = s->counts[i];
        g->base0_ms = s->t0_ms - ROUTEGAP_MARGIN_MS;
        g->base1_ms = s->t_ms + ROUTEGAP_MARGIN_MS;
        g->have_base = 1;
        drain_queue(g, g->base1_ms, g->base1_ms);
        return;
    }
    drain_queue(g, s->t0_ms - ROUTEGAP_MARGIN_MS, s->t_ms + ROUTEGAP_MARGIN_MS);
    for (size_t i = 0; i < s->n; i++)
        g->routes[s->idx[i]].cur = s->counts[i];
    struct routegap_stats *st = &g->stats;
    st->gap = st->excess = 0;
    st->routes_gap = st->routes_excess = 0;
    for (size_t i = 0; i < g->nroutes; i++) {
        struct route *r = &g->routes[i];
        int64_t h = r->cur - r->base, most = r->since + r->base_maybe + r->maybe;
        r->gap = h > most ? h - most : h < r->since ? h - r->since : 0;
        if (r->gap > 0) {
            st->gap += r->gap;
            st->routes_gap++;
        } else if (r->gap < 0) {
            st->excess -= r->gap;
            st->routes_excess++;
        }
    }
    st->checks++;
    st->last_check_ms = s->t_ms;
}

size_t routegap_evaluate(routegap_t *g, int64_t caught_up_ms)
{
    size_t done = 0;
    while (done < g->npending && g->pending[done]->t_ms + RECONCILE_SETTLE_MS <= caught_up_ms) {
        if (g->pending[done]->pid == g->pid)
            judge(g, g->pending[done]);
        routegap_sample_free(g->pending[done]);
        done++;
    }
    memmove(g->pending, g->pending + done, (g->npending - done) * sizeof(g->pending[0]));
    g->npending -= done;
    return done;
}

void routegap_stats(const routegap_t *g, struct routegap_stats *out)
{
    *out = g->stats;
    out->routes = g->nroutes;
}

static int64_t abs64(int64_t v)
{
    return v < 0 ? -v : v;
}

size_t routegap_worst(const routegap_t *g, struct routegap_route *out, size_t n)
{
    size_t have = 0;
    for (size_t i = 0; i < g->nroutes && n > 0; i++) {
        const struct route *r = &g->routes[i];
        if (r->gap == 0)
            continue;
        size_t at = have < n ? have++ : n;
        if (at == n) {
            if (abs64(r->gap) <= abs64(out[n - 1].gap))
                continue;
            at = n - 1;
        }
        while (at > 0 && abs64(out[at - 1].gap) < abs64(r->gap)) {
            out[at] = out[at - 1];
            at--;
        }
        out[at] = (struct routegap_route){r->name, r->gap, r->cur - r->base};
    }
    return have;
}
