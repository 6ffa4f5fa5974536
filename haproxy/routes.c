/* The routing table and cc-routes' own config checks. */
#include "routes.h"

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
    return 0;
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
