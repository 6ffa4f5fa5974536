/* Routing table lookup and the relay rule. Every account and chain id is
 * stored once in one arena; a host is an (account, chain) index pair, found
 * through an open-addressing array of 32-bit host indices hashed with XXH3
 * over the host name. */
#include "relay.h"
#include "sys.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

struct relay_chain {
    const char *id;      /* in the arena */
    const char *backend; /* "be_<id>", in the arena */
    size_t id_len, backend_len;
};

struct relay_account {
    uint32_t off, len; /* the id, in the arena */
};

struct relay_host {
    uint32_t account; /* index into accounts */
    uint32_t chain;   /* index into chains */
};

struct relay_table {
    struct relay_chain *chains;
    size_t nchains;
    struct relay_account *accounts;
    size_t naccounts;
    struct relay_host *hosts;
    size_t nhosts;
    uint32_t *slots; /* host index + 1, 0 when empty; mask + 1 entries */
    size_t mask;
    char *arena;
    size_t arena_len, arena_cap;
    const char *domain; /* in the arena */
    size_t domain_len;
};

/* Chain ids sorted by name, to resolve each account's chains at build. */
struct chain_ref {
    const char *id;
    uint32_t index;
};

static int chain_ref_cmp(const void *a, const void *b)
{
    return strcmp(((const struct chain_ref *)a)->id, ((const struct chain_ref *)b)->id);
}

/* Copy `s` into the arena (sized beforehand); its offset. */
static size_t arena_add(relay_table_t *t, const char *prefix, const char *s)
{
    size_t at = t->arena_len;
    size_t pl = strlen(prefix), sl = strlen(s);
    memcpy(t->arena + at, prefix, pl);
    memcpy(t->arena + at + pl, s, sl + 1);
    t->arena_len += pl + sl + 1;
    return at;
}

static int host_matches(const relay_table_t *t, const struct relay_host *h, const char *s,
                        size_t len)
{
    const struct relay_account *a = &t->accounts[h->account];
    const struct relay_chain *c = &t->chains[h->chain];
    if (len != a->len + c->id_len + t->domain_len + 2)
        return 0;
    const char *rest = s + a->len + 1;
    return memcmp(s, t->arena + a->off, a->len) == 0 && s[a->len] == '.' &&
           memcmp(rest, c->id, c->id_len) == 0 && rest[c->id_len] == '.' &&
           memcmp(rest + c->id_len + 1, t->domain, t->domain_len) == 0;
}

/* Insert host number `i` named `name`: 0, or -1 when it is already there. */
static int host_insert(relay_table_t *t, uint32_t i, const char *name, size_t len)
{
    size_t s = (size_t)XXH3_64bits(name, len) & t->mask;
    while (t->slots[s]) {
        if (host_matches(t, &t->hosts[t->slots[s] - 1], name, len))
            return -1;
        s = (s + 1) & t->mask;
    }
    t->slots[s] = i + 1;
    return 0;
}

/* Count accounts and hosts and size the arena; -1 when they do not fit
 * 32-bit indices. */
static int table_size(relay_table_t *t, const struct ccgwconf *conf)
{
    t->arena_cap = strlen(conf->routing_domain) + 1;
    for (size_t i = 0; i < conf->nchains; i++)
        t->arena_cap += 2 * strlen(conf->chains[i].id) + 5;
    for (size_t i = 0; i < conf->nproviders; i++) {
        t->naccounts += conf->providers[i].naccounts;
        for (size_t j = 0; j < conf->providers[i].naccounts; j++) {
            t->arena_cap += strlen(conf->providers[i].accounts[j].id) + 1;
            t->nhosts += conf->providers[i].accounts[j].nchains;
        }
    }
    return t->nhosts < UINT32_MAX / 4 && t->arena_cap < UINT32_MAX && conf->nchains < UINT32_MAX
               ? 0
               : -1;
}

/* One account's hosts. 0, or -1 with err filled. */
static int add_account(relay_table_t *t, const struct ccgwconf_account *a,
                       const struct chain_ref *refs, char *err, size_t errlen)
{
    char host[RELAY_HOST_MAX];
    uint32_t ai = (uint32_t)t->naccounts;
    size_t off = arena_add(t, "", a->id);

    t->accounts[ai] = (struct relay_account){(uint32_t)off, (uint32_t)strlen(a->id)};
    t->naccounts++;
    for (size_t k = 0; k < a->nchains; k++) {
        struct chain_ref key = {a->chains[k], 0};
        const struct chain_ref *ref = bsearch(&key, refs, t->nchains, sizeof(*refs), chain_ref_cmp);
        if (!ref) {
            snprintf(err, errlen, "account %s names unknown chain %s", a->id, a->chains[k]);
            return -1;
        }
        int hl = snprintf(host, sizeof(host), "%s.%s.%s", a->id, a->chains[k], t->domain);
        if (hl < 0 || (size_t)hl >= sizeof(host)) {
            snprintf(err, errlen, "host of account %s on chain %s is longer than %d", a->id,
                     a->chains[k], RELAY_HOST_MAX - 1);
            return -1;
        }
        uint32_t hi = (uint32_t)t->nhosts;
        t->hosts[hi] = (struct relay_host){ai, ref->index};
        if (host_insert(t, hi, host, (size_t)hl) < 0) {
            snprintf(err, errlen, "duplicate host %s", host);
            return -1;
        }
        t->nhosts++;
    }
    return 0;
}

relay_table_t *relay_table_new(const struct ccgwconf *conf, char *err, size_t errlen)
{
    relay_table_t *t = calloc(1, sizeof(*t));
    struct chain_ref *refs = NULL;
    size_t nhosts, naccounts, cap = 16;

    if (!t)
        goto oom;
    if (table_size(t, conf) < 0) {
        snprintf(err, errlen, "routing table too large: %zu hosts", t->nhosts);
        goto fail;
    }
    nhosts = t->nhosts;
    naccounts = t->naccounts;
    t->nhosts = t->naccounts = 0;
    while (cap < nhosts * 2)
        cap *= 2;
    t->mask = cap - 1;
    t->slots = calloc(cap, sizeof(*t->slots));
    t->hosts = malloc((nhosts ? nhosts : 1) * sizeof(*t->hosts));
    t->accounts = malloc((naccounts ? naccounts : 1) * sizeof(*t->accounts));
    t->chains = calloc(conf->nchains ? conf->nchains : 1, sizeof(*t->chains));
    refs = malloc((conf->nchains ? conf->nchains : 1) * sizeof(*refs));
    t->arena = malloc(t->arena_cap);
    if (!t->slots || !t->hosts || !t->accounts || !t->chains || !refs || !t->arena)
        goto oom;
    t->domain = t->arena + arena_add(t, "", conf->routing_domain);
    t->domain_len = strlen(t->domain);
    for (size_t i = 0; i < conf->nchains; i++) {
        struct relay_chain *c = &t->chains[i];
        c->id = t->arena + arena_add(t, "", conf->chains[i].id);
        c->backend = t->arena + arena_add(t, "be_", conf->chains[i].id);
        c->id_len = strlen(c->id);
        c->backend_len = strlen(c->backend);
        refs[i] = (struct chain_ref){c->id, (uint32_t)i};
    }
    t->nchains = conf->nchains;
    qsort(refs, t->nchains, sizeof(*refs), chain_ref_cmp);
    for (size_t i = 0; i < conf->nproviders; i++)
        for (size_t j = 0; j < conf->providers[i].naccounts; j++)
            if (add_account(t, &conf->providers[i].accounts[j], refs, err, errlen) < 0)
                goto fail;
    free(refs);
    return t;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    free(refs);
    relay_table_free(t);
    return NULL;
}

void relay_table_free(relay_table_t *t)
{
    if (!t)
        return;
    free(t->slots);
    free(t->hosts);
    free(t->accounts);
    free(t->chains);
    free(t->arena);
    free(t);
}

size_t relay_table_size(const relay_table_t *t)
{
    return t->nhosts;
}

size_t relay_table_bytes(const relay_table_t *t)
{
    return sizeof(*t) + (t->mask + 1) * sizeof(*t->slots) + t->nhosts * sizeof(*t->hosts) +
           t->naccounts * sizeof(*t->accounts) + t->nchains * sizeof(*t->chains) + t->arena_cap;
}

int relay_table_find(const relay_table_t *t, const char *host, size_t len, struct relay_route *out)
{
    size_t s = (size_t)XXH3_64bits(host, len) & t->mask;
    while (t->slots[s]) {
        const struct relay_host *h = &t->hosts[t->slots[s] - 1];
        if (host_matches(t, h, host, len)) {
            const struct relay_chain *c = &t->chains[h->chain];
            out->chain = c->id;
            out->account = t->arena + t->accounts[h->account].off;
            out->backend = c->backend;
            out->backend_len = c->backend_len;
            return 1;
        }
        s = (s + 1) & t->mask;
    }
    return 0;
}

/* HAProxy names pseudo-servers in angle brackets: <NOSRV>, <STATS>,
 * <CACHE>, ...; none of them is a node. */
static int span_eq(struct logline_span s, const char *str, size_t len)
{
    return s.len == len && memcmp(s.p, str, len) == 0;
}

/* The route an HTTP tier logged, copied into *route: 1, or 0 when a part is
 * longer than a DNS label (never from our map). */
static int route_from_line(struct logline_span chain, struct logline_span account,
                           struct relay_route *route)
{
    if (chain.len >= sizeof(route->chain_id) || account.len >= sizeof(route->account_id))
        return 0;
    memcpy(route->chain_id, chain.p, chain.len);
    route->chain_id[chain.len] = '\0';
    memcpy(route->account_id, account.p, account.len);
    route->account_id[account.len] = '\0';
    memcpy(route->backend_name, "be_", 3);
    memcpy(route->backend_name + 3, chain.p, chain.len);
    route->backend_name[3 + chain.len] = '\0';
    route->chain = route->chain_id;
    route->account = route->account_id;
    route->backend = route->backend_name;
    route->backend_len = chain.len + 3;
    return 1;
}

int relay_rule_check(const relay_table_t *t, const struct logline *line, struct relay_route *route,
                     enum non_relay_reason *reason)
{
    static const struct {
        const char *backend;
        enum non_relay_reason reason;
    } refusals[] = {
        {"be_refuse_host", NR_BAD_HOST},
        {"be_refuse_upgrade", NR_UPGRADE_REFUSED},
        {"be_refuse_connect", NR_CONNECT_REFUSED},
    };
    struct logline_span chain, account;
    char host[RELAY_HOST_MAX];
    int hl, websocket, routed;

    route->chain = route->account = route->backend = NULL;
    route->backend_len = 0;
    if (line->kind != LOGLINE_REQUEST) {
        *reason = NR_UNPARSABLE;
        return 0;
    }
    /* The HTTP tier's refusals (haproxy/templates/http.cfg.in) come first:
     * their Host may be anything, even a valid host followed by a comma. */
    for (size_t i = 0; i < ARRAY_LEN(refusals); i++) {
        if (span_eq(line->backend, refusals[i].backend, strlen(refusals[i].backend))) {
            *reason = refusals[i].reason;
            return 0;
        }
    }
    /* The HTTP tier logged its routing decision: count what it routed,
     * whatever the Host looked like and whatever the map held then. Only a
     * line without one (an older HTTP tier's) is judged by the table. */
    routed = logline_route(line, &chain, &account);
    if (routed >= 0) {
        if (!routed || !route_from_line(chain, account, route)) {
            *reason = NR_INVALID_HOST;
            return 0;
        }
    } else {
        hl = line->host.p ? logline_host_normalise(line->host.p, line->host.len, host, sizeof(host))
                          : -1;
        if (hl <= 0 || !relay_table_find(t, host, (size_t)hl, route)) {
            *reason = NR_INVALID_HOST;
            return 0;
        }
    }
    /* be_<chain>_ws carries the upgrades of a chain that opted in: a session
     * (101) is counted as one, never as a relay; any other answer there is an
     * ordinary request judged like one on be_<chain>. */
    websocket = line->backend.len == route->backend_len + 3 &&
                memcmp(line->backend.p, route->backend, route->backend_len) == 0 &&
                memcmp(line->backend.p + route->backend_len, "_ws", 3) == 0;
    if ((!websocket && !span_eq(line->backend, route->backend, route->backend_len)) ||
        line->server.len == 0 || line->server.p[0] == '<') {
        *reason = NR_UNROUTED;
        return 0;
    }
    if (websocket && line->status == 101) {
        *reason = NR_WEBSOCKET;
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
    return 1;
}

int relay_edge_check(const struct logline *line, enum non_relay_reason *reason)
{
    int64_t t[5];

    if (line->kind != LOGLINE_REQUEST)
        return 0;
    if (!(line->server.len == 0 || line->server.p[0] == '<') &&
        !(logline_timers(line, t) == 0 && t[2] < 0))
        return 0;
    if (line->status >= 300 && line->status < 400)
        *reason = NR_REDIRECTED;
    else if (line->status >= 400 && line->status < 500)
        *reason = NR_BAD_REQUEST;
    else if (line->status < 100)
        *reason = NR_NO_RESPONSE;
    else
        *reason = NR_UNROUTED;
    return 1;
}
