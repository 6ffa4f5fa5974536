/* The routing table and cc-routes' own config checks. */
#include "routes.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void routes_error(struct yamlcfg_error *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err->text, sizeof(err->text), fmt, ap);
    va_end(ap);
    err->line = 0;
    err->column = 0;
}

int routes_safe_token(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == '"' || *s == '\'' || *s == '#' || *s == '\\' ||
            (unsigned char)*s == 0x7f)
            return 0;
    return 1;
}

/* One socket address of the config, for the clash checks. */
struct sockaddr_ref {
    const char *addr; /* as written */
    char host[256];   /* lower-case, without brackets; "" for ":port" */
    uint16_t port;
    int wildcard;   /* every address of the machine */
    int loopback;   /* 127.0.0.0/8, ::1, localhost */
    char path[80];  /* "tiers[1].stats_bind" */
    char owner[96]; /* "tier http0", "backend n0021a of chain 0021" */
    const struct yamlcfg_mark *mark;
};

/* Listeners may be ":port" (every IPv4 address); backends may not. */
static int sockaddr_ref_parse(struct sockaddr_ref *r, const char *addr, int listener)
{
    r->addr = addr;
    if (listener && addr[0] == ':') {
        char buf[300];
        snprintf(buf, sizeof(buf), "0.0.0.0%s", addr);
        if (ccgwconf_split_address(buf, r->host, sizeof(r->host), &r->port) < 0)
            return -1;
        r->host[0] = '\0';
    } else if (ccgwconf_split_address(addr, r->host, sizeof(r->host), &r->port) < 0) {
        return -1;
    }
    for (char *s = r->host; *s; s++)
        *s = (char)tolower((unsigned char)*s);
    r->wildcard = !r->host[0] || strcmp(r->host, "0.0.0.0") == 0 || strcmp(r->host, "::") == 0 ||
                  strcmp(r->host, "*") == 0;
    r->loopback = strncmp(r->host, "127.", 4) == 0 || strcmp(r->host, "::1") == 0 ||
                  strcmp(r->host, "localhost") == 0;
    return 0;
}

/* The same host written two ways ("localhost" is the loopback address). */
static int same_host(const struct sockaddr_ref *a, const struct sockaddr_ref *b)
{
    if (strcmp(a->host, b->host) == 0)
        return 1;
    if (strcmp(a->host, "localhost") == 0)
        return strcmp(b->host, "127.0.0.1") == 0 || strcmp(b->host, "::1") == 0;
    if (strcmp(b->host, "localhost") == 0)
        return strcmp(a->host, "127.0.0.1") == 0 || strcmp(a->host, "::1") == 0;
    return 0;
}

/* Every listener of the config runs on this machine (the tiers share a
 * network namespace: the edge reaches them on loopback), so a wildcard takes
 * the port on every address, whatever the other's host. */
static int listeners_clash(const struct sockaddr_ref *a, const struct sockaddr_ref *b)
{
    return a->port == b->port && (a->wildcard || b->wildcard || same_host(a, b));
}

/* A backend is on this machine only when its address says so: the same
 * host as the listener, or a loopback or wildcard address facing a wildcard
 * listener. A DNS name or another address may be another machine, where
 * the port is free (compose, Kubernetes). */
static int listener_hits_backend(const struct sockaddr_ref *l, const struct sockaddr_ref *b,
                                 unsigned port)
{
    if (l->port != port)
        return 0;
    if (same_host(l, b) || b->wildcard)
        return 1;
    return l->wildcard && b->loopback;
}

static const char *mark_where(char *buf, size_t len, const char *file, const struct yamlcfg_mark *m)
{
    if (m && m->line > 0)
        snprintf(buf, len, "%s:%d:%d", file, m->line, m->column);
    else
        snprintf(buf, len, "a default, not in %s", file);
    return buf;
}

static int mark_before(const struct yamlcfg_mark *a, const struct yamlcfg_mark *b)
{
    return a->line < b->line || (a->line == b->line && a->column < b->column);
}

static void listener_add(struct sockaddr_ref *ls, size_t *n, const char *addr, size_t tier,
                         const char *key, const char *owner, const struct yamlcfg_mark *mark)
{
    struct sockaddr_ref *r = &ls[*n];

    if (!addr || sockaddr_ref_parse(r, addr, 1) < 0)
        return; /* absent, or refused by ccgwconf_load() already */
    if (key)
        snprintf(r->path, sizeof(r->path), "tiers[%zu].%s", tier, key);
    else
        snprintf(r->path, sizeof(r->path), "tls.bind");
    snprintf(r->owner, sizeof(r->owner), "%s", owner);
    r->mark = mark;
    (*n)++;
}

/* The listeners of the trio (each tier's bind, stats_bind, gateway_listen,
 * and tls.bind) against each other and against every backend server's
 * address and, by the local stack's convention, its cc-node peer port.
 * relaystats.listen is left out: relaystats may run on another machine. */
static int check_ports(const struct ccgwconf *c, struct yamlcfg_error *err)
{
    struct sockaddr_ref *ls;
    size_t n = 0;
    char where[300], owner[96];
    int rc = -1;

    ls = calloc(3 * c->ntiers + 1, sizeof(*ls));
    if (!ls) {
        routes_error(err, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < c->ntiers; i++) {
        const struct ccgwconf_tier *t = &c->tiers[i];
        snprintf(owner, sizeof(owner), "tier %s", t->name);
        listener_add(ls, &n, t->bind, i, "bind", owner, &t->mark);
        listener_add(ls, &n, t->stats_bind, i, "stats_bind", owner, &t->mark);
        listener_add(ls, &n, t->gateway_listen, i, "gateway_listen", owner, &t->mark);
    }
    listener_add(ls, &n, c->tls.bind, 0, NULL, "the edge's HTTPS listener", &c->tls.mark);

    for (size_t j = 1; j < n; j++) {
        for (size_t i = 0; i < j; i++) {
            const struct sockaddr_ref *at = &ls[j], *other = &ls[i];
            if (!listeners_clash(at, other))
                continue;
            /* The error is at the later place; the message names the other. */
            if (mark_before(at->mark, other->mark)) {
                at = &ls[i];
                other = &ls[j];
            }
            yamlcfg_error_at(err, c->path, at->mark, at->path,
                             "\"%s\" (%s) clashes with %s \"%s\" (%s, %s)%s", at->addr, at->owner,
                             other->path, other->addr, other->owner,
                             mark_where(where, sizeof(where), c->path, other->mark),
                             at->wildcard || other->wildcard
                                 ? ": a wildcard address takes the port on every address"
                                 : "");
            goto out;
        }
    }

    for (size_t k = 0; k < c->nchains; k++) {
        const struct ccgwconf_chain *ch = &c->chains[k];
        for (size_t b = 0; b < ch->nbackends; b++) {
            const struct ccgwconf_backend *be = &ch->backends[b];
            struct sockaddr_ref ba;
            if (sockaddr_ref_parse(&ba, be->address, 0) < 0)
                continue; /* refused by ccgwconf_load() already */
            mark_where(where, sizeof(where), c->path, &be->mark);
            for (size_t i = 0; i < n; i++) {
                const struct sockaddr_ref *l = &ls[i];
                if (listener_hits_backend(l, &ba, ba.port)) {
                    yamlcfg_error_at(err, c->path, l->mark, l->path,
                                     "\"%s\" (%s) is the address of chains[%zu].backends[%zu] "
                                     "\"%s\" (backend %s of chain %s, %s): a listener must not "
                                     "take a node's port",
                                     l->addr, l->owner, k, b, be->address, be->name, ch->id, where);
                    goto out;
                }
                if (ba.port + ROUTES_NODE_PEER_PORT_DELTA <= 65535 &&
                    listener_hits_backend(l, &ba, ba.port + ROUTES_NODE_PEER_PORT_DELTA)) {
                    yamlcfg_error_at(
                        err, c->path, l->mark, l->path,
                        "\"%s\" (%s) is probably the peer port of chains[%zu].backends[%zu] "
                        "\"%s\" (backend %s of chain %s, %s): by the convention of the local "
                        "stack a cc-node's peer port is its RPC port + %d; use another port",
                        l->addr, l->owner, k, b, be->address, be->name, ch->id, where,
                        ROUTES_NODE_PEER_PORT_DELTA);
                    goto out;
                }
            }
        }
    }
    rc = 0;
out:
    free(ls);
    return rc;
}

int routes_check(const struct ccgwconf *c, struct yamlcfg_error *err)
{
    size_t nedge = 0, nprimary = 0;
    char path[64];

    for (size_t i = 0; i < c->ntiers; i++) {
        const struct ccgwconf_tier *t = &c->tiers[i];
        snprintf(path, sizeof(path), "tiers[%zu]", i);
        if (!t->stats_socket || !*t->stats_socket) {
            yamlcfg_error_at(
                err, c->path, &t->mark, path,
                "tier \"%s\" needs a stats_socket (cc-routes applies changes through it)", t->name);
            return -1;
        }
        if (!routes_safe_token(t->stats_socket)) {
            yamlcfg_error_at(err, c->path, &t->mark, path,
                             "stats_socket \"%s\" must not contain blanks, quotes or '#'",
                             t->stats_socket);
            return -1;
        }
        if (t->role == CCGWCONF_ROLE_EDGE)
            nedge++;
        else if (!t->backup)
            nprimary++;
    }
    if (nedge != 1) {
        yamlcfg_error_set(err, c->path, "tiers", "exactly one edge tier is needed, found %zu",
                          nedge);
        return -1;
    }
    if (nprimary == 0) {
        yamlcfg_error_set(err, c->path, "tiers", "at least one http tier must not be a backup");
        return -1;
    }
    for (size_t i = 0; i < c->nchains; i++) {
        const struct ccgwconf_chain *ch = &c->chains[i];
        if (ch->auth_user && strchr(ch->auth_user, ':')) {
            snprintf(path, sizeof(path), "chains[%zu].auth.user", i);
            yamlcfg_error_at(err, c->path, &ch->mark, path,
                             "a Basic auth user name cannot contain ':'");
            return -1;
        }
    }
    for (size_t p = 0; p < c->nproviders; p++) {
        for (size_t a = 0; a < c->providers[p].naccounts; a++) {
            const struct ccgwconf_account *ac = &c->providers[p].accounts[a];
            for (size_t k = 0; k < ac->nchains; k++) {
                size_t len = strlen(ac->id) + strlen(ac->chains[k]) + strlen(c->routing_domain) + 2;
                if (len > ROUTES_HOST_MAX) {
                    snprintf(path, sizeof(path), "providers[%zu].accounts[%zu]", p, a);
                    yamlcfg_error_at(err, c->path, &ac->mark, path,
                                     "host %s.%s.%s is longer than %d characters", ac->id,
                                     ac->chains[k], c->routing_domain, ROUTES_HOST_MAX);
                    return -1;
                }
            }
        }
    }
    return check_ports(c, err);
}

static int host_cmp(const void *a, const void *b)
{
    const struct routes_host *x = a, *y = b;

    return strcmp(x->host, y->host);
}

int routes_hosts(const struct ccgwconf *c, struct routes_host **out, size_t *n,
                 struct yamlcfg_error *err)
{
    struct routes_host *hosts = NULL;
    size_t total = 0, k = 0;

    for (size_t p = 0; p < c->nproviders; p++)
        for (size_t a = 0; a < c->providers[p].naccounts; a++)
            total += c->providers[p].accounts[a].nchains;
    if (total > 0) {
        hosts = calloc(total, sizeof(*hosts));
        if (!hosts)
            goto oom;
    }
    for (size_t p = 0; p < c->nproviders; p++) {
        for (size_t a = 0; a < c->providers[p].naccounts; a++) {
            const struct ccgwconf_account *ac = &c->providers[p].accounts[a];
            for (size_t j = 0; j < ac->nchains; j++) {
                const struct ccgwconf_chain *ch = ccgwconf_chain_find(c, ac->chains[j]);
                if (!ch) {
                    routes_error(err, "%s: account \"%s\" names unknown chain \"%s\"", c->path,
                                 ac->id, ac->chains[j]);
                    goto fail;
                }
                if (asprintf(&hosts[k].host, "%s.%s.%s", ac->id, ch->id, c->routing_domain) < 0) {
                    hosts[k].host = NULL;
                    goto oom;
                }
                for (char *s = hosts[k].host; *s; s++)
                    if (*s >= 'A' && *s <= 'Z')
                        *s = (char)(*s - 'A' + 'a');
                hosts[k].chain = ch->id;
                hosts[k].account = ac->id;
                k++;
            }
        }
    }
    if (k > 1)
        qsort(hosts, k, sizeof(*hosts), host_cmp);
    for (size_t i = 1; i < k; i++) {
        if (strcmp(hosts[i - 1].host, hosts[i].host) == 0) {
            routes_error(err, "%s: duplicate host %s", c->path, hosts[i].host);
            goto fail;
        }
    }
    *out = hosts;
    *n = k;
    return 0;
oom:
    routes_error(err, "out of memory");
fail:
    routes_hosts_free(hosts, k);
    return -1;
}

int routes_map_entry(const struct routes_host *h, char *buf, size_t len)
{
    int r = snprintf(buf, len, "%s %s/%s", h->host, h->chain, h->account);

    return r < 0 || (size_t)r >= len ? -1 : r;
}

void routes_hosts_free(struct routes_host *hosts, size_t n)
{
    if (!hosts)
        return;
    for (size_t i = 0; i < n; i++)
        free(hosts[i].host);
    free(hosts);
}

int routes_tier_address(const struct ccgwconf_tier *t, char *buf, size_t len)
{
    char host[256];
    uint16_t port;
    int r;

    if (t->bind[0] == ':') {
        r = snprintf(buf, len, "127.0.0.1%s", t->bind);
        return r < 0 || (size_t)r >= len ? -1 : 0;
    }
    if (ccgwconf_split_address(t->bind, host, sizeof(host), &port) < 0)
        return -1;
    if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "*") == 0)
        r = snprintf(buf, len, "127.0.0.1:%u", port);
    else if (strcmp(host, "::") == 0)
        r = snprintf(buf, len, "[::1]:%u", port);
    else if (strchr(host, ':'))
        r = snprintf(buf, len, "[%s]:%u", host, port);
    else
        r = snprintf(buf, len, "%s:%u", host, port);
    return r < 0 || (size_t)r >= len ? -1 : 0;
}
