/* Live application of routing changes to running HTTP tiers. */
#include "apply.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hapi.h"
#include "log.h"
#include "sys.h"

/* Bytes of map entries per `add map` command: a payload must fit HAProxy's
 * buffer (tune.bufsize, 16 kB by default) with the command line. */
#define APPLY_MAP_PAYLOAD 8192
#define APPLY_POLL_MS 200

static void add_reason(struct apply_report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add_reason(struct apply_report *r, const char *fmt, ...)
{
    size_t used = strlen(r->restart);
    va_list ap;

    if (used + 3 >= sizeof(r->restart))
        return;
    if (used) {
        strcpy(r->restart + used, "; ");
        used += 2;
    }
    va_start(ap, fmt);
    vsnprintf(r->restart + used, sizeof(r->restart) - used, fmt, ap);
    va_end(ap);
}

static int str_differs(const char *a, const char *b)
{
    if (!a || !b)
        return a != b;
    return strcmp(a, b) != 0;
}

void apply_restart_reasons(const struct ccgwconf *old, const struct ccgwconf *cur,
                           struct apply_report *report)
{
    for (size_t i = 0; i < cur->nchains; i++) {
        const struct ccgwconf_chain *nc = &cur->chains[i];
        const struct ccgwconf_chain *oc = ccgwconf_chain_find(old, nc->id);
        if (!oc)
            add_reason(report, "new chain backend be_%s", nc->id);
        else if (str_differs(oc->auth_user, nc->auth_user) ||
                 str_differs(oc->auth_password, nc->auth_password))
            add_reason(report, "credentials of chain %s changed", nc->id);
    }
    if (old->ntiers != cur->ntiers)
        add_reason(report, "tiers changed");
    for (size_t i = 0; i < cur->ntiers; i++) {
        const struct ccgwconf_tier *nt = &cur->tiers[i];
        const struct ccgwconf_tier *ot = ccgwconf_tier_find(old, nt->name);
        if (!ot) {
            add_reason(report, "new tier %s", nt->name);
            continue;
        }
        if (ot->role != nt->role || ot->backup != nt->backup || strcmp(ot->bind, nt->bind) != 0 ||
            str_differs(ot->stats_bind, nt->stats_bind) ||
            str_differs(ot->stats_socket, nt->stats_socket))
            add_reason(report, "tier %s changed", nt->name);
    }
    if (old->haproxy.timeout_connect_ms != cur->haproxy.timeout_connect_ms ||
        old->haproxy.timeout_client_ms != cur->haproxy.timeout_client_ms ||
        old->haproxy.timeout_server_ms != cur->haproxy.timeout_server_ms ||
        old->haproxy.retries != cur->haproxy.retries ||
        old->haproxy.maxconn != cur->haproxy.maxconn)
        add_reason(report, "haproxy timeouts, retries or maxconn changed");
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

enum wait_for { WAIT_UP, WAIT_IDLE };

/* Poll `show stat` until the server is UP with a passed check, or has no
 * session and nothing queued. 0, or -1 on timeout or error. */
static int wait_server(const char *sock, const char *be, const char *srv, enum wait_for what,
                       int timeout_ms, struct yamlcfg_error *err)
{
    int64_t deadline = sys_mono_ms() + timeout_ms;
    struct hapi_stat st;

    for (;;) {
        int r = hapi_server_stat(sock, be, srv, &st, err);
        if (r < 0)
            return -1;
        if (r == 1) {
            routes_error(err, "%s: server %s/%s vanished", sock, be, srv);
            return -1;
        }
        if (what == WAIT_UP && strncmp(st.status, "UP", 2) == 0 &&
            strncmp(st.check_status, "L7OK", 4) == 0)
            return 0;
        if (what == WAIT_IDLE && st.scur == 0 && st.qcur == 0)
            return 0;
        if (sys_mono_ms() >= deadline) {
            if (what == WAIT_UP)
                routes_error(err, "%s: server %s/%s not UP after %d ms (status %s, check %s)", sock,
                             be, srv, timeout_ms, st.status, st.check_status);
            else
                routes_error(err, "%s: server %s/%s still has %ld sessions after %d ms", sock, be,
                             srv, st.scur + st.qcur, timeout_ms);
            return -1;
        }
        sleep_ms(APPLY_POLL_MS);
    }
}

static int cmdf(const char *sock, const char *ok_prefix, struct yamlcfg_error *err, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));

/* Format and run one command that must answer `ok_prefix` (NULL: nothing). */
static int cmdf(const char *sock, const char *ok_prefix, struct yamlcfg_error *err, const char *fmt,
                ...)
{
    char cmd[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(cmd)) {
        routes_error(err, "runtime API command too long");
        return -1;
    }
    return hapi_expect(sock, cmd, NULL, ok_prefix, err);
}

/* `add server` from the server line of the config ("server <name> <rest>"),
 * so a live server gets exactly the options a restart would give it. */
static int add_server(const struct render_templates *t, const char *sock, const char *be,
                      const struct ccgwconf_backend *b, struct yamlcfg_error *err)
{
    char *line = NULL, *p, *name_end;
    int rc = -1;

    if (render_server(t, b, &line, err) < 0)
        return -1;
    p = line + strspn(line, " \t");
    if (strncmp(p, "server ", 7) != 0) {
        routes_error(err, "server.cfg.in must hold one \"server\" line");
        goto out;
    }
    p += 7;
    name_end = p + strcspn(p, " ");
    p = name_end + strspn(name_end, " ");
    p[strcspn(p, "\n")] = '\0';
    if (cmdf(sock, "New server registered", err, "add server %s/%s %s", be, b->name, p) < 0 ||
        cmdf(sock, NULL, err, "enable health %s/%s", be, b->name) < 0 ||
        cmdf(sock, NULL, err, "enable server %s/%s", be, b->name) < 0)
        goto out;
    rc = 0;
out:
    free(line);
    return rc;
}

/* Drain a server, wait for its sessions to end, then put it in maintenance. */
static int drain_server(const char *sock, const char *be, const char *srv,
                        const struct apply_opts *o, struct yamlcfg_error *err)
{
    if (cmdf(sock, NULL, err, "set server %s/%s state drain", be, srv) < 0)
        return -1;
    if (wait_server(sock, be, srv, WAIT_IDLE, o->drain_ms, err) < 0)
        return -1;
    return cmdf(sock, NULL, err, "set server %s/%s state maint", be, srv);
}

static int del_server(const char *sock, const char *be, const char *srv, const struct apply_opts *o,
                      struct yamlcfg_error *err)
{
    int64_t deadline;

    if (drain_server(sock, be, srv, o, err) < 0 ||
        cmdf(sock, NULL, err, "disable health %s/%s", be, srv) < 0)
        return -1;
    /* Idle keep-alive connections to the server hold it until they close. */
    deadline = sys_mono_ms() + o->drain_ms;
    while (cmdf(sock, "Server deleted", err, "del server %s/%s", be, srv) < 0) {
        if (sys_mono_ms() >= deadline)
            return -1;
        sleep_ms(APPLY_POLL_MS);
    }
    return 0;
}

/* `set server addr` answers in prose: "IP changed from ..." and/or "port
 * changed from ...", or "no need to change ...". */
static int set_addr(const char *sock, const char *be, const char *srv, const char *ip,
                    unsigned port, struct yamlcfg_error *err)
{
    char cmd[512], *reply = NULL;
    int ok;

    snprintf(cmd, sizeof(cmd), "set server %s/%s addr %s port %u", be, srv, ip, port);
    if (hapi_command(sock, cmd, NULL, &reply, err) < 0)
        return -1;
    ok = strstr(reply, "changed from") || strstr(reply, "no need to change");
    if (!ok)
        routes_error(err, "%s: \"%s\": %.*s", sock, cmd, (int)strcspn(reply, "\n"), reply);
    free(reply);
    return ok ? 0 : -1;
}

/* The normalised numeric form of an address host; 0 if not an IP literal. */
static int numeric_host(const char *host, char *buf, size_t len)
{
    unsigned char bin[16];

    if (inet_pton(AF_INET, host, bin) == 1)
        return inet_ntop(AF_INET, bin, buf, (socklen_t)len) != NULL;
    if (inet_pton(AF_INET6, host, bin) == 1)
        return inet_ntop(AF_INET6, bin, buf, (socklen_t)len) != NULL;
    return 0;
}

static const struct hapi_server *live_find(const struct hapi_server *live, size_t n,
                                           const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(live[i].name, name) == 0)
            return &live[i];
    return NULL;
}

static int apply_chain(const struct render_templates *t, const struct ccgwconf_chain *ch,
                       const char *sock, const struct apply_opts *o, struct apply_report *r,
                       struct yamlcfg_error *err)
{
    struct hapi_server *live = NULL;
    size_t nlive = 0;
    char be[80], host[256], want[64], have[64];
    uint16_t port;
    int rc = -1;

    snprintf(be, sizeof(be), "be_%s", ch->id);
    if (hapi_servers(sock, be, &live, &nlive, err) < 0)
        return -1;
    /* New servers first, and UP, before anything is taken away. */
    for (size_t i = 0; i < ch->nbackends; i++) {
        const struct ccgwconf_backend *b = &ch->backends[i];
        if (live_find(live, nlive, b->name))
            continue;
        if (add_server(t, sock, be, b, err) < 0)
            goto out;
        LOG_EVENT(LOG_INFO, "server_added", NULL, NULL, LF_STR("socket", sock),
                  LF_STR("backend", be), LF_STR("server", b->name), LF_STR("address", b->address));
        r->servers_added++;
    }
    for (size_t i = 0; i < ch->nbackends; i++) {
        const struct ccgwconf_backend *b = &ch->backends[i];
        if (!live_find(live, nlive, b->name) &&
            wait_server(sock, be, b->name, WAIT_UP, o->wait_up_ms, err) < 0)
            goto out;
    }
    for (size_t i = 0; i < ch->nbackends; i++) {
        const struct ccgwconf_backend *b = &ch->backends[i];
        const struct hapi_server *s = live_find(live, nlive, b->name);
        if (!s)
            continue;
        if (s->weight != b->weight) {
            if (cmdf(sock, NULL, err, "set server %s/%s weight %lld", be, b->name,
                     (long long)b->weight) < 0)
                goto out;
            r->weights_changed++;
        }
        if (ccgwconf_split_address(b->address, host, sizeof(host), &port) < 0 ||
            !numeric_host(host, want, sizeof(want)) || !numeric_host(s->addr, have, sizeof(have))) {
            if (s->port != port)
                LOG_EVENT(LOG_WARN, "server_not_moved", NULL,
                          "only IP literal addresses are changed live; restart to apply",
                          LF_STR("backend", be), LF_STR("server", b->name));
            continue;
        }
        if (strcmp(want, have) == 0 && s->port == port)
            continue;
        /* Same name, new place: other servers carry the load meanwhile. */
        if (drain_server(sock, be, b->name, o, err) < 0 ||
            set_addr(sock, be, b->name, want, port, err) < 0)
            goto out;
        if (cmdf(sock, NULL, err, "set server %s/%s state ready", be, b->name) < 0 ||
            wait_server(sock, be, b->name, WAIT_UP, o->wait_up_ms, err) < 0)
            goto out;
        LOG_EVENT(LOG_INFO, "server_moved", NULL, NULL, LF_STR("socket", sock),
                  LF_STR("backend", be), LF_STR("server", b->name), LF_STR("address", b->address));
        r->servers_moved++;
    }
    rc = 0;
out:
    free(live);
    return rc;
}

static int remove_servers(const struct ccgwconf_chain *ch, const char *sock,
                          const struct apply_opts *o, struct apply_report *r,
                          struct yamlcfg_error *err)
{
    struct hapi_server *live = NULL;
    size_t nlive = 0;
    char be[80];
    int rc = -1;

    snprintf(be, sizeof(be), "be_%s", ch->id);
    if (hapi_servers(sock, be, &live, &nlive, err) < 0)
        return -1;
    for (size_t i = 0; i < nlive; i++) {
        int wanted = 0;
        for (size_t j = 0; j < ch->nbackends && !wanted; j++)
            wanted = strcmp(ch->backends[j].name, live[i].name) == 0;
        if (wanted)
            continue;
        if (del_server(sock, be, live[i].name, o, err) < 0)
            goto out;
        LOG_EVENT(LOG_INFO, "server_removed", NULL, NULL, LF_STR("socket", sock),
                  LF_STR("backend", be), LF_STR("server", live[i].name));
        r->servers_removed++;
    }
    rc = 0;
out:
    free(live);
    return rc;
}

/* Swap the whole map in one commit: lookups see the old or the new table,
 * never a mix. */
static int load_map(const char *sock, const char *map_path, const struct routes_host *hosts,
                    size_t nhosts, struct yamlcfg_error *err)
{
    char cmd[PATH_MAX + 64], *reply = NULL, *payload = NULL;
    unsigned long version;
    int rc = -1;

    snprintf(cmd, sizeof(cmd), "prepare map %s", map_path);
    if (hapi_command(sock, cmd, NULL, &reply, err) < 0)
        return -1;
    if (sscanf(reply, "New version created: %lu", &version) != 1) {
        routes_error(err, "%s: \"%s\": %.*s", sock, cmd, (int)strcspn(reply, "\n"), reply);
        goto out;
    }
    payload = malloc(APPLY_MAP_PAYLOAD + ROUTES_MAP_ENTRY_MAX + 2);
    if (!payload) {
        routes_error(err, "out of memory");
        goto out;
    }
    snprintf(cmd, sizeof(cmd), "add map @%lu %s", version, map_path);
    for (size_t i = 0; i < nhosts;) {
        size_t used = 0;
        while (i < nhosts && used < APPLY_MAP_PAYLOAD) {
            if (used)
                payload[used++] = '\n';
            used += (size_t)routes_map_entry(&hosts[i], payload + used, ROUTES_MAP_ENTRY_MAX + 1);
            i++;
        }
        if (hapi_expect(sock, cmd, payload, NULL, err) < 0)
            goto out;
    }
    if (cmdf(sock, NULL, err, "commit map @%lu %s", version, map_path) < 0)
        goto out;
    rc = 0;
out:
    free(reply);
    free(payload);
    return rc;
}

int apply_tier(const struct render_templates *t, const struct ccgwconf *c,
               const struct ccgwconf_tier *tier, const char *map_path,
               const struct routes_host *hosts, size_t nhosts, const struct apply_opts *opts,
               struct apply_report *report, struct yamlcfg_error *err)
{
    const char *sock = tier->stats_socket;
    char be[80];
    int *live = calloc(c->nchains ? c->nchains : 1, sizeof(int));
    int rc = -1;

    if (!live) {
        routes_error(err, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < c->nchains; i++) {
        snprintf(be, sizeof(be), "be_%s", c->chains[i].id);
        live[i] = hapi_backend_exists(sock, be, err);
        if (live[i] < 0)
            goto out;
        if (!live[i])
            add_reason(report, "%s has no backend %s", tier->name, be);
    }
    for (size_t i = 0; i < c->nchains; i++)
        if (live[i] && apply_chain(t, &c->chains[i], sock, opts, report, err) < 0)
            goto out;
    if (load_map(sock, map_path, hosts, nhosts, err) < 0)
        goto out;
    report->hosts += nhosts;
    LOG_EVENT(LOG_INFO, "map_committed", NULL, NULL, LF_STR("tier", tier->name),
              LF_STR("map", map_path), LF_INT("hosts", nhosts));
    for (size_t i = 0; i < c->nchains; i++)
        if (live[i] && remove_servers(&c->chains[i], sock, opts, report, err) < 0)
            goto out;
    rc = 0;
out:
    free(live);
    return rc;
}
