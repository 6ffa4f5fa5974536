/* Template filling and the rendering of every file HAProxy loads. */
#include "render.h"
#include "tls.h"
#include "sys.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEMPLATE_MAX (1024 * 1024)

static char *read_text(const char *path, struct yamlcfg_error *err)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t len;

    if (!f) {
        routes_error(err, "%s: %s", path, strerror(errno));
        return NULL;
    }
    buf = malloc(TEMPLATE_MAX + 1);
    if (!buf) {
        routes_error(err, "out of memory");
        goto fail;
    }
    len = fread(buf, 1, TEMPLATE_MAX + 1, f);
    if (ferror(f)) {
        routes_error(err, "%s: read error", path);
        goto fail;
    }
    if (len > TEMPLATE_MAX) {
        routes_error(err, "%s: larger than %d bytes", path, TEMPLATE_MAX);
        goto fail;
    }
    buf[len] = '\0';
    fclose(f);
    return buf;
fail:
    free(buf);
    fclose(f);
    return NULL;
}

int render_templates_load(const char *dir, struct render_templates *t, struct yamlcfg_error *err)
{
    static const struct {
        const char *file;
        size_t offset;
    } files[] = {
        {"edge.cfg.in", offsetof(struct render_templates, edge)},
        {"http.cfg.in", offsetof(struct render_templates, http)},
        {"backend.cfg.in", offsetof(struct render_templates, backend)},
        {"server.cfg.in", offsetof(struct render_templates, server)},
        {"edge-server.cfg.in", offsetof(struct render_templates, edge_server)},
        {"stats.cfg.in", offsetof(struct render_templates, stats)},
    };
    char path[4096];

    memset(t, 0, sizeof(*t));
    for (size_t i = 0; i < ARRAY_LEN(files); i++) {
        char **slot = (char **)((char *)t + files[i].offset);
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, files[i].file) >= sizeof(path)) {
            routes_error(err, "%s: template path too long", dir);
            return -1;
        }
        *slot = read_text(path, err);
        if (!*slot)
            return -1;
    }
    return 0;
}

void render_templates_free(struct render_templates *t)
{
    free(t->edge);
    free(t->http);
    free(t->backend);
    free(t->server);
    free(t->edge_server);
    free(t->stats);
    memset(t, 0, sizeof(*t));
}

/* Length of the placeholder name at s (just after an '@'), when s holds
 * NAME@ ; 0 when the '@' is a literal. */
static size_t placeholder_len(const char *s)
{
    size_t n = 0;

    if (!isupper((unsigned char)s[0]))
        return 0;
    while (isupper((unsigned char)s[n]) || isdigit((unsigned char)s[n]) || s[n] == '_')
        n++;
    return s[n] == '@' ? n : 0;
}

static const char *lookup(const struct render_var *vars, size_t nvars, const char *name, size_t len)
{
    for (size_t i = 0; i < nvars; i++)
        if (strlen(vars[i].name) == len && memcmp(vars[i].name, name, len) == 0)
            return vars[i].value ? vars[i].value : "";
    return NULL;
}

/* Whether [line, end) is blanks around exactly one placeholder whose value
 * is empty. */
static int drops_line(const char *line, const char *end, const struct render_var *vars,
                      size_t nvars)
{
    const char *p = line, *v;
    size_t n;

    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p >= end || *p != '@')
        return 0;
    n = placeholder_len(p + 1);
    if (n == 0)
        return 0;
    v = lookup(vars, nvars, p + 1, n);
    if (!v || *v)
        return 0;
    p += n + 2;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p == end;
}

/* Drop blanks at line ends, e.g. after an empty inline value. In place. */
static void strip_trailing_blanks(char *s)
{
    char *w = s, *blank = NULL;

    for (char *r = s; *r; r++) {
        if (*r == ' ' || *r == '\t') {
            if (!blank)
                blank = w;
        } else if (*r == '\n' && blank) {
            w = blank;
            blank = NULL;
        } else {
            blank = NULL;
        }
        *w++ = *r;
    }
    *(blank ? blank : w) = '\0';
}

int render_fill(const char *name, const char *tmpl, const struct render_var *vars, size_t nvars,
                char **out, struct yamlcfg_error *err)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    const char *line = tmpl;
    int lineno = 1;

    *out = NULL;
    if (!f) {
        routes_error(err, "out of memory");
        return -1;
    }
    while (*line) {
        const char *eol = strchr(line, '\n');
        const char *end = eol ? eol : line + strlen(line);
        if (!drops_line(line, end, vars, nvars)) {
            for (const char *p = line; p < end; p++) {
                size_t n;
                const char *v;
                if (*p != '@' || (n = placeholder_len(p + 1)) == 0) {
                    fputc(*p, f);
                    continue;
                }
                v = lookup(vars, nvars, p + 1, n);
                if (!v) {
                    routes_error(err, "%s:%d: unknown placeholder @%.*s@", name, lineno, (int)n,
                                 p + 1);
                    goto fail;
                }
                fputs(v, f);
                p += n + 1;
            }
            if (eol)
                fputc('\n', f);
        }
        if (!eol)
            break;
        line = eol + 1;
        lineno++;
    }
    if (fclose(f) != 0) {
        f = NULL;
        routes_error(err, "out of memory");
        goto fail;
    }
    strip_trailing_blanks(buf);
    *out = buf;
    return 0;
fail:
    if (f)
        fclose(f);
    free(buf);
    return -1;
}

char *render_basic_auth(const char *user, const char *password)
{
    char *plain = NULL, *out = NULL;
    int n;

    n = asprintf(&plain, "%s:%s", user, password);
    if (n < 0)
        return NULL;
    out = malloc(6 + 4 * (((size_t)n + 2) / 3) + 1);
    if (out) {
        memcpy(out, "Basic ", 6);
        EVP_EncodeBlock((unsigned char *)out + 6, (const unsigned char *)plain, n);
    }
    free(plain);
    return out;
}

int render_server(const struct render_templates *t, const struct ccgwconf_backend *b, char **out,
                  struct yamlcfg_error *err)
{
    char weight[24];

    snprintf(weight, sizeof(weight), "%lld", (long long)b->weight);
    const struct render_var vars[] = {
        {"NAME", b->name},
        {"ADDRESS", b->address},
        {"WEIGHT", weight},
    };
    return render_fill("server.cfg.in", t->server, vars, ARRAY_LEN(vars), out, err);
}

/* Append `s` to the memstream, failing on a stream error. */
static int put(FILE *f, const char *s)
{
    return fputs(s, f) < 0 ? -1 : 0;
}

/* Drop one trailing newline so a block fits a placeholder on its own line. */
static void chomp(char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n > 0 && s[n - 1] == '\n')
        s[n - 1] = '\0';
}

static int render_backends(const struct render_templates *t, const struct ccgwconf *c,
                           const char *retries, char **out, struct yamlcfg_error *err)
{
    char *buf = NULL, *block = NULL, *servers = NULL, *line = NULL, *auth = NULL;
    size_t size = 0, ssize = 0;
    FILE *f = open_memstream(&buf, &size), *sf = NULL;

    if (!f)
        goto oom;
    for (size_t i = 0; i < c->nchains; i++) {
        const struct ccgwconf_chain *ch = &c->chains[i];
        char *auth_line = NULL;

        sf = open_memstream(&servers, &ssize);
        if (!sf)
            goto oom;
        for (size_t j = 0; j < ch->nbackends; j++) {
            if (render_server(t, &ch->backends[j], &line, err) < 0)
                goto fail;
            if (put(sf, line) < 0)
                goto oom;
            free(line);
            line = NULL;
        }
        if (fclose(sf) != 0) {
            sf = NULL;
            goto oom;
        }
        sf = NULL;
        chomp(servers);
        if (ch->auth_user) {
            auth = render_basic_auth(ch->auth_user, ch->auth_password ? ch->auth_password : "");
            if (!auth ||
                asprintf(&auth_line, "http-request set-header Authorization \"%s\"", auth) < 0)
                goto oom;
        }
        /* A chain that opted in to WebSocket gets be_<chain>_ws too: the same
         * servers, a tunnel timeout, and log lines the relay rule tells apart. */
        int r = 0;
        for (int ws = 0; ws <= (ch->websocket ? 1 : 0) && r == 0; ws++) {
            char name[80];
            snprintf(name, sizeof(name), "%s%s", ch->id, ws ? "_ws" : "");
            const struct render_var vars[] = {
                {"CHAIN", name},
                {"RETRIES", retries},
                {"TUNNEL", ws ? "timeout tunnel 1h" : ""},
                {"AUTH", auth_line ? auth_line : ""},
                {"SERVERS", servers},
            };
            r = render_fill("backend.cfg.in", t->backend, vars, ARRAY_LEN(vars), &block, err);
            if (r == 0 && put(f, block) < 0)
                r = -2;
            free(block);
            block = NULL;
        }
        free(auth_line);
        free(auth);
        auth = NULL;
        free(servers);
        servers = NULL;
        if (r == -2)
            goto oom;
        if (r < 0)
            goto fail;
    }
    if (fclose(f) != 0) {
        f = NULL;
        goto oom;
    }
    chomp(buf);
    *out = buf;
    return 0;
oom:
    routes_error(err, "out of memory");
fail:
    if (sf)
        fclose(sf);
    if (f)
        fclose(f);
    free(servers);
    free(line);
    free(block);
    free(auth);
    free(buf);
    return -1;
}

static int render_edge_servers(const struct render_templates *t, const struct ccgwconf *c,
                               char **out, struct yamlcfg_error *err)
{
    char *buf = NULL, *line = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    char addr[300];

    if (!f)
        goto oom;
    for (size_t i = 0; i < c->ntiers; i++) {
        const struct ccgwconf_tier *tier = &c->tiers[i];
        if (tier->role != CCGWCONF_ROLE_HTTP)
            continue;
        if (routes_tier_address(tier, addr, sizeof(addr)) < 0) {
            routes_error(err, "%s: tier %s: bad bind \"%s\"", c->path, tier->name, tier->bind);
            goto fail;
        }
        const struct render_var vars[] = {
            {"NAME", tier->name},
            {"ADDRESS", addr},
            {"BACKUP", tier->backup ? "backup" : ""},
        };
        if (render_fill("edge-server.cfg.in", t->edge_server, vars, ARRAY_LEN(vars), &line, err) <
            0)
            goto fail;
        if (put(f, line) < 0)
            goto oom;
        free(line);
        line = NULL;
    }
    if (fclose(f) != 0) {
        f = NULL;
        goto oom;
    }
    chomp(buf);
    *out = buf;
    return 0;
oom:
    routes_error(err, "out of memory");
fail:
    if (f)
        fclose(f);
    free(line);
    free(buf);
    return -1;
}

/* The optional lines of a tier's config (all "" when they do not apply). */
struct tls_lines {
    char *bind, *plain, *hsts, *metrics, *websocket;
};

static void render_tls_lines_free(struct tls_lines *l)
{
    free(l->bind);
    free(l->plain);
    free(l->hsts);
    free(l->metrics);
    free(l->websocket);
    memset(l, 0, sizeof(*l));
}

/* `bind ADDR ssl crt-list DIR/crt-list alpn h2,http/1.1`, the plain port's
 * redirect, HSTS and the expiry metric for the edge; the WebSocket routing
 * rule for an HTTP tier. The TLS files live next to the map. */
static int render_tls_lines(const struct ccgwconf *c, const struct ccgwconf_tier *tier,
                            const char *map_path, struct tls_lines *l, struct yamlcfg_error *err)
{
    const struct ccgwconf_tls *tls = &c->tls;
    const char *slash = strrchr(map_path, '/');
    int dirlen = slash ? (int)(slash - map_path) : 1;
    const char *dir = slash ? map_path : ".";
    char host[256], port[8] = "", *list = NULL;
    uint16_t p = 0;
    size_t nws = 0, size = 0;
    FILE *f;

    if (tier->role == CCGWCONF_ROLE_HTTP) {
        f = open_memstream(&list, &size);
        if (!f)
            goto oom;
        for (size_t i = 0; i < c->nchains; i++)
            if (c->chains[i].websocket)
                fprintf(f, " %s", c->chains[i].id), nws++;
        if (fclose(f) != 0)
            goto oom;
        if (nws > 0 && asprintf(&l->websocket,
                                "use_backend be_%%[var(txn.route),field(1,/)]_ws if "
                                "{ req.fhdr(upgrade) -m str -i websocket } "
                                "{ var(txn.route),field(1,/) -m str%s }",
                                list) < 0)
            goto oom;
        free(list);
        list = NULL;
    }
    if (tier->role == CCGWCONF_ROLE_EDGE && tls->bind) {
        char bind[300];
        if (strncmp(tls->bind, "[::]:", 5) == 0)
            snprintf(bind, sizeof(bind), "0.0.0.0:%s,%s v6only", tls->bind + 5, tls->bind);
        else
            snprintf(bind, sizeof(bind), "%s", tls->bind);
        if (asprintf(&l->bind, "bind %s ssl crt-list %.*s/%s alpn h2,http/1.1", bind, dirlen, dir,
                     TLS_CRT_LIST) < 0)
            goto oom;
        if (tls->bind[0] == ':') {
            p = (uint16_t)atoi(tls->bind + 1);
        } else if (ccgwconf_split_address(tls->bind, host, sizeof(host), &p) < 0) {
            routes_error(err, "%s: tls.bind \"%s\" is not host:port", c->path, tls->bind);
            return -1;
        }
        /* Behind a port mapping (Kubernetes: Service 443 -> 8443) clients
         * know the public port, not the bind's. */
        if (tls->redirect_port)
            p = (uint16_t)tls->redirect_port;
        if (p != 443)
            snprintf(port, sizeof(port), ":%u", p);
        if (tls->plain_http == CCGWCONF_PLAIN_REDIRECT &&
            asprintf(&l->plain,
                     "http-request redirect code 308 location "
                     "https://%%[req.hdr(host),field(1,:)]%s%%[pathq] if !{ ssl_fc } !bad_host "
                     "!METH_CONNECT",
                     port) < 0)
            goto oom;
        if (tls->hsts_max_age_secs > 0 &&
            asprintf(&l->hsts,
                     "http-response set-header Strict-Transport-Security \"max-age=%lld\" if "
                     "{ ssl_fc }",
                     (long long)tls->hsts_max_age_secs) < 0)
            goto oom;
        if (asprintf(&l->metrics,
                     "http-request return status 200 content-type \"text/plain; version=0.0.4\" "
                     "lf-file %.*s/%s if { path %s }",
                     dirlen, dir, TLS_METRICS_LF, TLS_METRICS_URI) < 0)
            goto oom;
    }
    return 0;
oom:
    free(list);
    routes_error(err, "out of memory");
    return -1;
}

int render_tier(const struct render_templates *t, const struct ccgwconf *c,
                const struct ccgwconf_tier *tier, const char *map_path, char **out,
                struct yamlcfg_error *err)
{
    char connect[24], client[24], server[24], retries[24], maxconn[24], bind[300];
    char sock[PATH_MAX + 8];
    char *stats = NULL, *body = NULL;
    struct tls_lines tl = {0};
    int r = -1;

    *out = NULL;
    if (!routes_safe_token(map_path)) {
        routes_error(err, "map path \"%s\" must not contain blanks, quotes or '#'", map_path);
        return -1;
    }
    snprintf(connect, sizeof(connect), "%lld", (long long)c->haproxy.timeout_connect_ms);
    snprintf(client, sizeof(client), "%lld", (long long)c->haproxy.timeout_client_ms);
    snprintf(server, sizeof(server), "%lld", (long long)c->haproxy.timeout_server_ms);
    snprintf(retries, sizeof(retries), "%lld", (long long)c->haproxy.retries);
    snprintf(maxconn, sizeof(maxconn), "%lld", (long long)c->haproxy.maxconn);
    /* A bind on every IPv6 address also takes IPv4 clients, on a socket of
     * their own so the log shows them as IPv4 rather than ::ffff:a.b.c.d. */
    if (strncmp(tier->bind, "[::]:", 5) == 0)
        snprintf(bind, sizeof(bind), "0.0.0.0:%s,%s v6only", tier->bind + 5, tier->bind);
    else
        snprintf(bind, sizeof(bind), "%s", tier->bind);
    /* HAProxy reads a path that does not start with '/' as an address. */
    snprintf(sock, sizeof(sock), "%s%s", tier->stats_socket[0] == '/' ? "" : "unix@",
             tier->stats_socket);
    if (render_tls_lines(c, tier, map_path, &tl, err) < 0)
        goto out;
    if (tier->stats_bind) {
        const struct render_var svars[] = {{"STATS_BIND", tier->stats_bind},
                                           {"TLS_METRICS", tl.metrics}};
        if (render_fill("stats.cfg.in", t->stats, svars, ARRAY_LEN(svars), &stats, err) < 0)
            goto out;
        chomp(stats);
    }
    if (tier->role == CCGWCONF_ROLE_EDGE) {
        if (render_edge_servers(t, c, &body, err) < 0)
            goto out;
    } else if (render_backends(t, c, retries, &body, err) < 0) {
        goto out;
    }
    const struct render_var vars[] = {
        {"TIER", tier->name},
        {"GATEWAY", c->gateway_name},
        {"STATS_SOCKET", sock},
        {"MAXCONN", maxconn},
        {"TIMEOUT_CONNECT", connect},
        {"TIMEOUT_CLIENT", client},
        {"TIMEOUT_SERVER", server},
        {"RETRIES", retries},
        {"BIND", bind},
        {"MAP", map_path},
        {"STATS", stats ? stats : ""},
        {"BACKENDS", tier->role == CCGWCONF_ROLE_EDGE ? "" : body},
        {"HTTP_SERVERS", tier->role == CCGWCONF_ROLE_EDGE ? body : ""},
        {"TLS_BIND", tl.bind},
        {"PLAIN_HTTP", tl.plain},
        {"HSTS", tl.hsts},
        {"WEBSOCKET", tl.websocket},
    };
    r = render_fill(tier->role == CCGWCONF_ROLE_EDGE ? "edge.cfg.in" : "http.cfg.in",
                    tier->role == CCGWCONF_ROLE_EDGE ? t->edge : t->http, vars, ARRAY_LEN(vars),
                    out, err);
out:
    free(stats);
    free(body);
    render_tls_lines_free(&tl);
    return r;
}

int render_map(const struct routes_host *hosts, size_t n, char **out, size_t *len,
               struct yamlcfg_error *err)
{
    size_t total = 1;
    char *buf, *p;

    for (size_t i = 0; i < n; i++)
        total += strlen(hosts[i].host) + strlen(hosts[i].chain) + strlen(hosts[i].account) + 3;
    buf = malloc(total);
    if (!buf) {
        routes_error(err, "out of memory");
        return -1;
    }
    p = buf;
    for (size_t i = 0; i < n; i++) {
        p += routes_map_entry(&hosts[i], p, total - (size_t)(p - buf));
        *p++ = '\n';
    }
    *p = '\0';
    *out = buf;
    *len = (size_t)(p - buf);
    return 0;
}
