/* Routing table lookup and the relay rule. The table is an open-addressing
 * hash set of hosts with the route strings in one arena. */
#include "relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct relay_table {
    struct relay_route *routes;
    size_t nroutes;
    struct relay_route **slots; /* cap entries, power of two */
    size_t cap;
    char *arena; /* every string of every route */
    size_t arena_len, arena_cap;
};

/* FNV-1a over the host bytes: a table index, not a security boundary. */
static uint64_t host_hash(const char *s, size_t n)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static size_t count_hosts(const struct conf *conf)
{
    size_t n = 0;
    for (size_t i = 0; i < conf->nproviders; i++)
        for (size_t j = 0; j < conf->providers[i].naccounts; j++)
            n += conf->providers[i].accounts[j].nchains;
    return n;
}

/* Offsets into the arena are stored while it is being filled (it may still
 * move); they become pointers once every string is in. */
static size_t arena_printf(relay_table_t *t, const char *fmt, const char *a, const char *b,
                           const char *c)
{
    size_t at = t->arena_len;
    int n = snprintf(t->arena + at, t->arena_cap - at, fmt, a, b, c);
    t->arena_len += (size_t)n + 1;
    return at;
}

relay_table_t *relay_table_new(const struct conf *conf, char *err, size_t errlen)
{
    relay_table_t *t = calloc(1, sizeof(*t));
    size_t nhosts = count_hosts(conf);
    size_t domain_len = strlen(conf->routing_domain);
    size_t *offs = NULL;

    if (!t)
        goto oom;
    for (size_t i = 0; i < conf->nproviders; i++)
        for (size_t j = 0; j < conf->providers[i].naccounts; j++) {
            const struct conf_account *a = &conf->providers[i].accounts[j];
            for (size_t k = 0; k < a->nchains; k++) {
                size_t hl = strlen(a->id) + strlen(a->chains[k]) + domain_len + 2;
                if (hl >= RELAY_HOST_MAX) {
                    snprintf(err, errlen, "host of account %s on chain %s is longer than %d",
                             a->id, a->chains[k], RELAY_HOST_MAX - 1);
                    goto fail;
                }
                t->arena_cap += hl + 1 + 2 * (strlen(a->id) + 1) + 2 * (strlen(a->chains[k]) + 4);
            }
        }
    t->cap = 16;
    while (t->cap < nhosts * 2)
        t->cap *= 2;
    t->routes = calloc(nhosts ? nhosts : 1, sizeof(*t->routes));
    t->slots = calloc(t->cap, sizeof(*t->slots));
    t->arena = malloc(t->arena_cap ? t->arena_cap : 1);
    offs = malloc((nhosts ? nhosts : 1) * 4 * sizeof(*offs));
    if (!t->routes || !t->slots || !t->arena || !offs)
        goto oom;
    for (size_t i = 0; i < conf->nproviders; i++)
        for (size_t j = 0; j < conf->providers[i].naccounts; j++) {
            const struct conf_account *a = &conf->providers[i].accounts[j];
            for (size_t k = 0; k < a->nchains; k++) {
                size_t *o = &offs[4 * t->nroutes];
                o[0] = arena_printf(t, "%s.%s.%s", a->id, a->chains[k], conf->routing_domain);
                o[1] = arena_printf(t, "%s%s%s", a->chains[k], "", "");
                o[2] = arena_printf(t, "%s%s%s", a->id, "", "");
                o[3] = arena_printf(t, "be_%s%s%s", a->chains[k], "", "");
                t->nroutes++;
            }
        }
    for (size_t r = 0; r < t->nroutes; r++) {
        struct relay_route *rt = &t->routes[r];
        rt->host = t->arena + offs[4 * r];
        rt->chain = t->arena + offs[4 * r + 1];
        rt->account = t->arena + offs[4 * r + 2];
        rt->backend = t->arena + offs[4 * r + 3];
        rt->backend_len = strlen(rt->backend);
        size_t hl = strlen(rt->host);
        size_t s = host_hash(rt->host, hl) & (t->cap - 1);
        while (t->slots[s]) {
            if (strcmp(t->slots[s]->host, rt->host) == 0) {
                snprintf(err, errlen, "duplicate host %s", rt->host);
                goto fail;
            }
            s = (s + 1) & (t->cap - 1);
        }
        t->slots[s] = rt;
    }
    free(offs);
    return t;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    free(offs);
    relay_table_free(t);
    return NULL;
}

void relay_table_free(relay_table_t *t)
{
    if (!t)
        return;
    free(t->routes);
    free(t->slots);
    free(t->arena);
    free(t);
}

size_t relay_table_size(const relay_table_t *t)
{
    return t->nroutes;
}

const struct relay_route *relay_table_find(const relay_table_t *t, const char *host, size_t len)
{
    size_t s = host_hash(host, len) & (t->cap - 1);
    while (t->slots[s]) {
        const struct relay_route *rt = t->slots[s];
        if (strncmp(rt->host, host, len) == 0 && rt->host[len] == '\0')
            return rt;
        s = (s + 1) & (t->cap - 1);
    }
    return NULL;
}

/* HAProxy names pseudo-servers in angle brackets: <NOSRV>, <STATS>,
 * <CACHE>, ...; none of them is a node. */
static int span_eq(struct logline_span s, const char *str, size_t len)
{
    return s.len == len && memcmp(s.p, str, len) == 0;
}

int relay_rule_check(const relay_table_t *t, const struct logline *line,
                     const struct relay_route **route, enum non_relay_reason *reason)
{
    char host[RELAY_HOST_MAX];
    const struct relay_route *rt = NULL;
    int hl;

    *route = NULL;
    if (line->kind != LOGLINE_REQUEST) {
        *reason = NR_UNPARSABLE;
        return 0;
    }
    hl = line->host.p ? logline_host_normalise(line->host.p, line->host.len, host, sizeof(host))
                      : -1;
    if (hl > 0)
        rt = relay_table_find(t, host, (size_t)hl);
    if (!rt) {
        *reason = NR_INVALID_HOST;
        return 0;
    }
    if (!span_eq(line->backend, rt->backend, rt->backend_len) ||
        line->server.len == 0 || line->server.p[0] == '<') {
        *reason = NR_UNROUTED;
        return 0;
    }
    if (line->status < 100) {
        *reason = NR_NO_RESPONSE;
        return 0;
    }
    if (line->status >= 500) {
        *reason = NR_SERVER_ERROR;
        return 0;
    }
    *route = rt;
    return 1;
}
