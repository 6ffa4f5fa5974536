/* The deployment config: schema, defaults and cross-checks. */
#include "conf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bucket.h"
#include "log.h"
#include "sys.h"

#define FLD(type_, key_, struct_, member_, ...)                                                    \
    {                                                                                              \
        .key = (key_), .type = (type_), .offset = offsetof(struct_, member_), __VA_ARGS__          \
    }

static const char *const flavours[] = {"bitcoin", "evm", NULL};
static const char *const roles[] = {"edge", "http", NULL};
static const char *const log_formats[] = {"text", "json", NULL};
static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const plain_http_modes[] = {"serve", "redirect", NULL};

static const struct cfg_field backend_fields[] = {
    FLD(CFG_STR, "name", struct conf_backend, name, .required = 1),
    FLD(CFG_STR, "address", struct conf_backend, address, .required = 1),
    FLD(CFG_INT, "weight", struct conf_backend, weight, .min = 0, .max = 256),
};
static const struct cfg_schema backend_schema = {
    "backend", backend_fields, ARRAY_LEN(backend_fields), 1, offsetof(struct conf_backend, mark)};

static const struct cfg_field auth_fields[] = {
    FLD(CFG_STR, "user", struct conf_chain, auth_user, .required = 1),
    FLD(CFG_STR, "password", struct conf_chain, auth_password, .required = 1),
};
static const struct cfg_schema auth_schema = {"auth", auth_fields, 2, 0, 0};

static const struct cfg_field chain_fields[] = {
    FLD(CFG_STR, "id", struct conf_chain, id, .required = 1),
    FLD(CFG_STR, "name", struct conf_chain, name),
    FLD(CFG_ENUM, "flavour", struct conf_chain, flavour, .enums = flavours),
    {.key = "auth", .type = CFG_STRUCT, .offset = 0, .sub = &auth_schema},
    FLD(CFG_BOOL, "websocket", struct conf_chain, websocket),
    FLD(CFG_LIST, "backends", struct conf_chain, backends, .required = 1, .sub = &backend_schema,
        .elem_size = sizeof(struct conf_backend),
        .count_offset = offsetof(struct conf_chain, nbackends)),
};
static const struct cfg_schema chain_schema = {"chain", chain_fields, ARRAY_LEN(chain_fields), 1,
                                               offsetof(struct conf_chain, mark)};

static const struct cfg_field account_fields[] = {
    FLD(CFG_STR, "id", struct conf_account, id, .required = 1),
    FLD(CFG_LIST, "chains", struct conf_account, chains, .required = 1, .elem_size = sizeof(char *),
        .count_offset = offsetof(struct conf_account, nchains)),
};
static const struct cfg_schema account_schema = {"account", account_fields, 2, 1,
                                                 offsetof(struct conf_account, mark)};

static const struct cfg_field provider_fields[] = {
    FLD(CFG_STR, "name", struct conf_provider, name, .required = 1),
    FLD(CFG_LIST, "accounts", struct conf_provider, accounts, .required = 1, .sub = &account_schema,
        .elem_size = sizeof(struct conf_account),
        .count_offset = offsetof(struct conf_provider, naccounts)),
};
static const struct cfg_schema provider_schema = {"provider", provider_fields, 2, 1,
                                                  offsetof(struct conf_provider, mark)};

static const struct cfg_field tier_fields[] = {
    FLD(CFG_STR, "name", struct conf_tier, name, .required = 1),
    FLD(CFG_ENUM, "role", struct conf_tier, role, .required = 1, .enums = roles),
    FLD(CFG_STR, "bind", struct conf_tier, bind, .required = 1),
    FLD(CFG_STR, "stats_bind", struct conf_tier, stats_bind),
    FLD(CFG_STR, "stats_socket", struct conf_tier, stats_socket),
    FLD(CFG_STR, "gateway_listen", struct conf_tier, gateway_listen),
    FLD(CFG_BOOL, "backup", struct conf_tier, backup),
    FLD(CFG_BOOL, "count_relays", struct conf_tier, count_relays, .track_present = 1,
        .present_offset = offsetof(struct conf_tier, count_relays_set)),
};
static const struct cfg_schema tier_schema = {"tier", tier_fields, ARRAY_LEN(tier_fields), 1,
                                              offsetof(struct conf_tier, mark)};

static const struct cfg_field gateway_fields[] = {
    FLD(CFG_STR, "name", struct conf, gateway_name, .required = 1),
    FLD(CFG_STR, "routing_domain", struct conf, routing_domain, .required = 1),
    FLD(CFG_STR, "data_dir", struct conf, data_dir),
};
static const struct cfg_schema gateway_schema = {"gateway", gateway_fields, 3, 1,
                                                 offsetof(struct conf, gateway_mark)};

static const struct cfg_field haproxy_fields[] = {
    FLD(CFG_STR, "binary", struct conf_haproxy, binary),
    FLD(CFG_INT, "timeout_connect_ms", struct conf_haproxy, timeout_connect_ms, .min = 1,
        .max = 3600000),
    FLD(CFG_INT, "timeout_client_ms", struct conf_haproxy, timeout_client_ms, .min = 1,
        .max = 3600000),
    FLD(CFG_INT, "timeout_server_ms", struct conf_haproxy, timeout_server_ms, .min = 1,
        .max = 3600000),
    FLD(CFG_INT, "retries", struct conf_haproxy, retries, .min = 0, .max = 100),
    FLD(CFG_INT, "maxconn", struct conf_haproxy, maxconn, .min = 1, .max = 10000000),
};
static const struct cfg_schema haproxy_schema = {"haproxy", haproxy_fields,
                                                 ARRAY_LEN(haproxy_fields), 0, 0};

static const struct cfg_field postgres_fields[] = {
    FLD(CFG_STR, "url", struct conf_postgres, url, .required = 1),
};
static const struct cfg_schema postgres_schema = {"postgres", postgres_fields, 1, 0, 0};

static const struct cfg_field redis_fields[] = {
    FLD(CFG_STR, "host", struct conf_redis, host, .required = 1),
    FLD(CFG_INT, "port", struct conf_redis, port, .min = 1, .max = 65535),
    FLD(CFG_INT, "ttl_secs", struct conf_redis, ttl_secs, .min = 60, .max = 31536000),
    FLD(CFG_STR, "key_prefix", struct conf_redis, key_prefix),
};
static const struct cfg_schema redis_schema = {"redis", redis_fields, 4, 0, 0};

static const struct cfg_field flush_fields[] = {
    FLD(CFG_INT, "interval_secs", struct conf_flush, interval_secs, .min = 1, .max = 3600),
    FLD(CFG_INT, "fsync_interval_ms", struct conf_flush, fsync_interval_ms, .min = 10, .max = 1000),
    FLD(CFG_INT, "redis_interval_ms", struct conf_flush, redis_interval_ms, .min = 10,
        .max = 60000),
    FLD(CFG_INT, "retry_max_secs", struct conf_flush, retry_max_secs, .min = 1, .max = 3600),
    FLD(CFG_SIZE, "journal_compact_bytes", struct conf_flush, journal_compact_bytes, .min = 4096,
        .max = 1e12),
};
static const struct cfg_schema flush_schema = {"flush", flush_fields, 5, 0, 0};

static const struct cfg_field logs_fields[] = {
    FLD(CFG_ENUM, "format", struct conf_logs, format, .enums = log_formats),
    FLD(CFG_ENUM, "level", struct conf_logs, level, .enums = log_levels),
    FLD(CFG_STR, "dir", struct conf_logs, dir),
    FLD(CFG_SIZE, "request_log_max_bytes", struct conf_logs, request_log_max_bytes, .min = 65536,
        .max = 1e12),
    FLD(CFG_STR, "time_zone", struct conf_logs, time_zone),
};
static const struct cfg_schema logs_schema = {"logs", logs_fields, 5, 1,
                                              offsetof(struct conf_logs, mark)};

static const struct cfg_field relaystats_fields[] = {
    FLD(CFG_STR, "listen", struct conf_relaystats, listen),
    FLD(CFG_STR, "admin_token_sha256", struct conf_relaystats, admin_token_sha256),
};
static const struct cfg_schema relaystats_schema = {"relaystats", relaystats_fields, 2, 1,
                                                    offsetof(struct conf_relaystats, mark)};

static const struct cfg_field certificate_fields[] = {
    FLD(CFG_STR, "name", struct conf_certificate, name, .required = 1),
    FLD(CFG_STR, "cert", struct conf_certificate, cert, .required = 1),
    FLD(CFG_STR, "key", struct conf_certificate, key),
};
static const struct cfg_schema certificate_schema = {"certificate", certificate_fields, 3, 1,
                                                     offsetof(struct conf_certificate, mark)};

static const struct cfg_field tls_fields[] = {
    FLD(CFG_STR, "bind", struct conf_tls, bind, .required = 1),
    FLD(CFG_ENUM, "plain_http", struct conf_tls, plain_http, .enums = plain_http_modes),
    FLD(CFG_INT, "hsts_max_age_secs", struct conf_tls, hsts_max_age_secs, .min = 0,
        .max = 157680000),
    FLD(CFG_INT, "redirect_port", struct conf_tls, redirect_port, .min = 1, .max = 65535),
    FLD(CFG_LIST, "certificates", struct conf_tls, certificates, .required = 1,
        .sub = &certificate_schema, .elem_size = sizeof(struct conf_certificate),
        .count_offset = offsetof(struct conf_tls, ncertificates)),
};
static const struct cfg_schema tls_schema = {"tls", tls_fields, ARRAY_LEN(tls_fields), 1,
                                             offsetof(struct conf_tls, mark)};

static const struct cfg_field conf_fields[] = {
    {.key = "gateway", .type = CFG_STRUCT, .offset = 0, .required = 1, .sub = &gateway_schema},
    FLD(CFG_LIST, "chains", struct conf, chains, .required = 1, .sub = &chain_schema,
        .elem_size = sizeof(struct conf_chain), .count_offset = offsetof(struct conf, nchains)),
    FLD(CFG_LIST, "providers", struct conf, providers, .sub = &provider_schema,
        .elem_size = sizeof(struct conf_provider),
        .count_offset = offsetof(struct conf, nproviders)),
    FLD(CFG_LIST, "tiers", struct conf, tiers, .sub = &tier_schema,
        .elem_size = sizeof(struct conf_tier), .count_offset = offsetof(struct conf, ntiers)),
    FLD(CFG_STRUCT, "haproxy", struct conf, haproxy, .sub = &haproxy_schema),
    FLD(CFG_STRUCT, "postgres", struct conf, postgres, .sub = &postgres_schema),
    FLD(CFG_STRUCT, "redis", struct conf, redis, .sub = &redis_schema),
    FLD(CFG_STRUCT, "flush", struct conf, flush, .sub = &flush_schema),
    FLD(CFG_STRUCT, "logs", struct conf, logs, .sub = &logs_schema),
    FLD(CFG_STRUCT, "relaystats", struct conf, relaystats, .sub = &relaystats_schema),
    FLD(CFG_STRUCT, "tls", struct conf, tls, .sub = &tls_schema),
};
static const struct cfg_schema conf_schema = {"config", conf_fields, ARRAY_LEN(conf_fields), 0, 0};

const char *conf_path(const char *arg)
{
    const char *env;

    if (arg && *arg)
        return arg;
    env = getenv("CCGW_CONFIG");
    return env && *env ? env : NULL;
}

const struct conf_chain *conf_chain_find(const struct conf *c, const char *id)
{
    for (size_t i = 0; i < c->nchains; i++)
        if (strcmp(c->chains[i].id, id) == 0)
            return &c->chains[i];
    return NULL;
}

const struct conf_tier *conf_tier_find(const struct conf *c, const char *name)
{
    for (size_t i = 0; i < c->ntiers; i++)
        if (strcmp(c->tiers[i].name, name) == 0)
            return &c->tiers[i];
    return NULL;
}

int conf_split_address(const char *addr, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon;
    const char *h = addr;
    size_t hlen;
    char *end;
    long p;

    if (!addr || !*addr)
        return -1;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':')
            return -1;
        h = addr + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
        for (size_t i = 0; i < hlen; i++)
            if (!isxdigit((unsigned char)h[i]) && h[i] != ':' && h[i] != '.')
                return -1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon || memchr(addr, ':', (size_t)(colon - addr)))
            return -1; /* no port, or an unbracketed IPv6 address */
        hlen = (size_t)(colon - addr);
        for (size_t i = 0; i < hlen; i++)
            if (!isalnum((unsigned char)h[i]) && h[i] != '.' && h[i] != '-' && h[i] != '_')
                return -1;
    }
    if (hlen == 0 || hlen >= hostlen)
        return -1;
    if (!isdigit((unsigned char)colon[1]))
        return -1;
    p = strtol(colon + 1, &end, 10);
    if (*end || p < 1 || p > 65535)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (uint16_t)p;
    return 0;
}

/* Listen addresses may also be ":port" (every IPv4 address). */
static int valid_listen(const char *addr)
{
    char host[256];
    uint16_t port;

    if (addr[0] == ':') {
        char buf[300];
        snprintf(buf, sizeof(buf), "0.0.0.0%s", addr);
        return conf_split_address(buf, host, sizeof(host), &port) == 0;
    }
    return conf_split_address(addr, host, sizeof(host), &port) == 0;
}

static void lower(char *s)
{
    for (; s && *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* A DNS label as used in hosts: 1-63 of [a-z0-9-], not starting or ending
 * with '-'. Input already lower-cased. */
static int valid_label(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '-')
            return 0;
    return 1;
}

static int valid_domain(const char *s)
{
    char label[64];
    size_t n = strlen(s), start = 0;

    if (n == 0 || n > 200)
        return 0;
    for (size_t i = 0; i <= n; i++) {
        if (s[i] == '.' || s[i] == '\0') {
            size_t len = i - start;
            if (len == 0 || len >= sizeof(label))
                return 0;
            memcpy(label, s + start, len);
            label[len] = '\0';
            if (!valid_label(label))
                return 0;
            start = i + 1;
        }
    }
    return 1;
}

/* A name used in file names, HAProxy identifiers and metrics labels. */
static int valid_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64 || !isalnum((unsigned char)s[0]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return 0;
    return 1;
}

static int set_default_str(char **slot, const char *value)
{
    if (*slot)
        return 0;
    *slot = strdup(value);
    return *slot ? 0 : -1;
}

static int default_tiers(struct conf *c)
{
    static const struct {
        const char *name, *bind, *stats_bind, *listen;
        int role, backup;
    } def[] = {
        {"edge", "127.0.0.1:8080", "127.0.0.1:8404", "127.0.0.1:9100", CONF_ROLE_EDGE, 0},
        {"http0", "127.0.0.1:8081", NULL, "127.0.0.1:9101", CONF_ROLE_HTTP, 0},
        {"http1", "127.0.0.1:8082", NULL, "127.0.0.1:9102", CONF_ROLE_HTTP, 1},
    };
    char sock[512];

    c->tiers = calloc(ARRAY_LEN(def), sizeof(*c->tiers));
    if (!c->tiers)
        return -1;
    for (size_t i = 0; i < ARRAY_LEN(def); i++) {
        struct conf_tier *t = &c->tiers[i];
        c->ntiers++;
        snprintf(sock, sizeof(sock), "%s/%s.sock", c->data_dir, def[i].name);
        t->role = def[i].role;
        t->backup = def[i].backup;
        if (set_default_str(&t->name, def[i].name) < 0 ||
            set_default_str(&t->bind, def[i].bind) < 0 ||
            (def[i].stats_bind && set_default_str(&t->stats_bind, def[i].stats_bind) < 0) ||
            set_default_str(&t->stats_socket, sock) < 0 ||
            set_default_str(&t->gateway_listen, def[i].listen) < 0)
            return -1;
    }
    return 0;
}

static int apply_defaults(struct conf *c)
{
    if (set_default_str(&c->data_dir, "run/data") < 0 ||
        set_default_str(&c->haproxy.binary, "haproxy") < 0 ||
        set_default_str(&c->logs.dir, "run/logs") < 0 ||
        set_default_str(&c->logs.time_zone, "UTC") < 0 ||
        set_default_str(&c->relaystats.listen, "127.0.0.1:8090") < 0)
        return -1;
    if (c->redis.host && set_default_str(&c->redis.key_prefix, "ccgw") < 0)
        return -1;
    if (c->ntiers == 0 && default_tiers(c) < 0)
        return -1;
    for (size_t i = 0; i < c->ntiers; i++) {
        struct conf_tier *t = &c->tiers[i];
        if (!t->count_relays_set)
            t->count_relays = t->role == CONF_ROLE_HTTP;
    }
    for (size_t i = 0; i < c->nchains; i++)
        for (size_t j = 0; j < c->chains[i].nbackends; j++)
            if (c->chains[i].backends[j].weight == 0)
                c->chains[i].backends[j].weight = 1;
    return 0;
}

/* Numeric defaults go in before decoding so that absent keys keep them. */
static void preset_numbers(struct conf *c)
{
    c->haproxy.timeout_connect_ms = 2000;
    c->haproxy.timeout_client_ms = 30000;
    c->haproxy.timeout_server_ms = 30000;
    c->haproxy.retries = 3;
    c->haproxy.maxconn = 20000;
    c->redis.port = 6379;
    c->redis.ttl_secs = 7200;
    c->flush.interval_secs = 300;
    c->flush.fsync_interval_ms = 1000;
    c->flush.redis_interval_ms = 500;
    c->flush.retry_max_secs = 60;
    c->flush.journal_compact_bytes = 16 * 1000 * 1000;
    c->logs.format = LOG_FORMAT_TEXT;
    c->logs.level = LOG_INFO;
    c->logs.request_log_max_bytes = 40 * 1000 * 1000;
}

static int validate_chains(struct conf *c, const char *file, struct cfg_error *err)
{
    char path[64], host[256];
    uint16_t port;

    for (size_t i = 0; i < c->nchains; i++) {
        struct conf_chain *ch = &c->chains[i];
        snprintf(path, sizeof(path), "chains[%zu]", i);
        lower(ch->id);
        if (!valid_label(ch->id)) {
            cfg_error_at(err, file, &ch->mark, path,
                         "id \"%s\" is not a host label (1-63 of a-z, 0-9, '-')", ch->id);
            return -1;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(c->chains[k].id, ch->id) == 0) {
                cfg_error_at(err, file, &ch->mark, path, "duplicate chain id \"%s\"", ch->id);
                return -1;
            }
        }
        if (ch->nbackends == 0) {
            snprintf(path, sizeof(path), "chains[%zu].backends", i);
            cfg_error_at(err, file, &ch->mark, path, "chain \"%s\" has no backends", ch->id);
            return -1;
        }
        for (size_t j = 0; j < ch->nbackends; j++) {
            struct conf_backend *b = &ch->backends[j];
            snprintf(path, sizeof(path), "chains[%zu].backends[%zu]", i, j);
            if (!valid_name(b->name)) {
                cfg_error_at(err, file, &b->mark, path,
                             "name \"%s\" must be 1-64 of A-Z, a-z, 0-9, '-', '_', '.'", b->name);
                return -1;
            }
            if (conf_split_address(b->address, host, sizeof(host), &port) < 0) {
                cfg_error_at(err, file, &b->mark, path,
                             "address \"%s\" is not host:port (port 1-65535, IPv6 in brackets)",
                             b->address);
                return -1;
            }
            for (size_t k = 0; k < j; k++) {
                if (strcmp(ch->backends[k].name, b->name) == 0) {
                    cfg_error_at(err, file, &b->mark, path, "duplicate backend name \"%s\"",
                                 b->name);
                    return -1;
                }
            }
        }
    }
    return 0;
}

static int validate_providers(struct conf *c, const char *file, struct cfg_error *err)
{
    char path[96];

    for (size_t p = 0; p < c->nproviders; p++) {
        struct conf_provider *pr = &c->providers[p];
        snprintf(path, sizeof(path), "providers[%zu]", p);
        if (!valid_name(pr->name)) {
            cfg_error_at(err, file, &pr->mark, path,
                         "name \"%s\" must be 1-64 of A-Z, a-z, 0-9, '-', '_', '.'", pr->name);
            return -1;
        }
        for (size_t q = 0; q < p; q++) {
            if (strcmp(c->providers[q].name, pr->name) == 0) {
                cfg_error_at(err, file, &pr->mark, path, "duplicate provider \"%s\"", pr->name);
                return -1;
            }
        }
        for (size_t a = 0; a < pr->naccounts; a++) {
            struct conf_account *ac = &pr->accounts[a];
            snprintf(path, sizeof(path), "providers[%zu].accounts[%zu]", p, a);
            lower(ac->id);
            if (!valid_label(ac->id)) {
                cfg_error_at(err, file, &ac->mark, path,
                             "id \"%s\" is not a host label (1-63 of a-z, 0-9, '-')", ac->id);
                return -1;
            }
            if (ac->nchains == 0) {
                cfg_error_at(err, file, &ac->mark, path, "account \"%s\" serves no chain", ac->id);
                return -1;
            }
            for (size_t k = 0; k < ac->nchains; k++) {
                lower(ac->chains[k]);
                if (!conf_chain_find(c, ac->chains[k])) {
                    cfg_error_at(err, file, &ac->mark, path, "unknown chain \"%s\"", ac->chains[k]);
                    return -1;
                }
            }
        }
    }
    return 0;
}

struct host_seen {
    const char *account, *chain;
    const struct conf_account *where;
    size_t provider, index;
};

static int cmp_host(const void *a, const void *b)
{
    const struct host_seen *x = a, *y = b;
    int r = strcmp(x->account, y->account);
    return r ? r : strcmp(x->chain, y->chain);
}

/* Every (account, chain) pair is one host: it may appear once in the whole
 * config, whichever provider lists it. Sorted, so 100,000 hosts stay cheap. */
static int check_duplicate_hosts(struct conf *c, const char *file, struct cfg_error *err)
{
    size_t n = 0, k = 0;
    struct host_seen *hosts;

    for (size_t p = 0; p < c->nproviders; p++)
        for (size_t a = 0; a < c->providers[p].naccounts; a++)
            n += c->providers[p].accounts[a].nchains;
    if (n == 0)
        return 0;
    hosts = calloc(n, sizeof(*hosts));
    if (!hosts) {
        cfg_error_set(err, file, NULL, "out of memory");
        return -1;
    }
    for (size_t p = 0; p < c->nproviders; p++) {
        for (size_t a = 0; a < c->providers[p].naccounts; a++) {
            const struct conf_account *ac = &c->providers[p].accounts[a];
            for (size_t j = 0; j < ac->nchains; j++)
                hosts[k++] = (struct host_seen){ac->id, ac->chains[j], ac, p, a};
        }
    }
    qsort(hosts, n, sizeof(*hosts), cmp_host);
    for (size_t i = 1; i < n; i++) {
        if (cmp_host(&hosts[i - 1], &hosts[i]) == 0) {
            const struct host_seen *h = hosts[i - 1].where->mark.line > hosts[i].where->mark.line
                                            ? &hosts[i - 1]
                                            : &hosts[i];
            char path[64];
            snprintf(path, sizeof(path), "providers[%zu].accounts[%zu]", h->provider, h->index);
            cfg_error_at(err, file, &h->where->mark, path, "duplicate host %s.%s.%s", h->account,
                         h->chain, c->routing_domain);
            free(hosts);
            return -1;
        }
    }
    free(hosts);
    return 0;
}

static int validate_tiers(struct conf *c, const char *file, struct cfg_error *err)
{
    char path[64];
    size_t nedge = 0, nhttp = 0;

    for (size_t i = 0; i < c->ntiers; i++) {
        struct conf_tier *t = &c->tiers[i];
        snprintf(path, sizeof(path), "tiers[%zu]", i);
        if (!valid_name(t->name)) {
            cfg_error_at(err, file, &t->mark, path,
                         "name \"%s\" must be 1-64 of A-Z, a-z, 0-9, '-', '_', '.'", t->name);
            return -1;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(c->tiers[k].name, t->name) == 0) {
                cfg_error_at(err, file, &t->mark, path, "duplicate tier \"%s\"", t->name);
                return -1;
            }
        }
        if (!valid_listen(t->bind)) {
            cfg_error_at(err, file, &t->mark, path, "bind \"%s\" is not host:port", t->bind);
            return -1;
        }
        if (t->stats_bind && !valid_listen(t->stats_bind)) {
            cfg_error_at(err, file, &t->mark, path, "stats_bind \"%s\" is not host:port",
                         t->stats_bind);
            return -1;
        }
        if (t->gateway_listen && !valid_listen(t->gateway_listen)) {
            cfg_error_at(err, file, &t->mark, path, "gateway_listen \"%s\" is not host:port",
                         t->gateway_listen);
            return -1;
        }
        if (t->role == CONF_ROLE_EDGE) {
            nedge++;
            if (t->count_relays) {
                cfg_error_at(err, file, &t->mark, path,
                             "an edge tier never counts relays (every relay would count twice)");
                return -1;
            }
            if (t->backup) {
                cfg_error_at(err, file, &t->mark, path, "backup applies to http tiers only");
                return -1;
            }
        } else {
            nhttp++;
        }
    }
    if (nedge > 1) {
        cfg_error_set(err, file, "tiers", "at most one edge tier, found %zu", nedge);
        return -1;
    }
    if (nhttp == 0) {
        cfg_error_set(err, file, "tiers", "at least one http tier is needed");
        return -1;
    }
    return 0;
}

/* File contents are checked by cc-routes (it reads the certificates); here
 * only the shape: names, a listener, and no listener shared with a tier. */
static int validate_tls(struct conf *c, const char *file, struct cfg_error *err)
{
    char path[64];
    struct conf_tls *t = &c->tls;

    if (!t->bind)
        return 0;
    if (!valid_listen(t->bind)) {
        cfg_error_at(err, file, &t->mark, "tls.bind", "\"%s\" is not host:port", t->bind);
        return -1;
    }
    for (size_t i = 0; i < c->ntiers; i++) {
        if (strcmp(c->tiers[i].bind, t->bind) == 0) {
            cfg_error_at(err, file, &t->mark, "tls.bind", "\"%s\" is also tier %s's bind", t->bind,
                         c->tiers[i].name);
            return -1;
        }
    }
    if (t->ncertificates == 0) {
        cfg_error_at(err, file, &t->mark, "tls.certificates", "at least one certificate is needed");
        return -1;
    }
    for (size_t i = 0; i < t->ncertificates; i++) {
        struct conf_certificate *ct = &t->certificates[i];
        snprintf(path, sizeof(path), "tls.certificates[%zu]", i);
        if (!valid_name(ct->name)) {
            cfg_error_at(err, file, &ct->mark, path,
                         "name \"%s\" must be 1-64 of A-Z, a-z, 0-9, '-', '_', '.'", ct->name);
            return -1;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(t->certificates[k].name, ct->name) == 0) {
                cfg_error_at(err, file, &ct->mark, path, "duplicate certificate name \"%s\"",
                             ct->name);
                return -1;
            }
        }
    }
    return 0;
}

static int validate(struct conf *c, const char *file, struct cfg_error *err)
{
    lower(c->routing_domain);
    if (!valid_domain(c->routing_domain)) {
        cfg_error_at(err, file, &c->gateway_mark, "gateway.routing_domain",
                     "\"%s\" is not a domain name (labels of a-z, 0-9, '-')", c->routing_domain);
        return -1;
    }
    if (!valid_name(c->gateway_name)) {
        cfg_error_at(err, file, &c->gateway_mark, "gateway.name",
                     "\"%s\" must be 1-64 of A-Z, a-z, 0-9, '-', '_', '.'", c->gateway_name);
        return -1;
    }
    if (c->nchains == 0) {
        cfg_error_set(err, file, "chains", "at least one chain is needed");
        return -1;
    }
    if (validate_chains(c, file, err) < 0 || validate_providers(c, file, err) < 0 ||
        check_duplicate_hosts(c, file, err) < 0 || validate_tiers(c, file, err) < 0 ||
        validate_tls(c, file, err) < 0)
        return -1;
    if (bucket_zone_parse(c->logs.time_zone, &c->logs.tz_offset_secs) < 0) {
        cfg_error_at(err, file, &c->logs.mark, "logs.time_zone",
                     "\"%s\" is not a zone (UTC, Z, +HH:MM, -HHMM)", c->logs.time_zone);
        return -1;
    }
    if (c->relaystats.listen && !valid_listen(c->relaystats.listen)) {
        cfg_error_at(err, file, &c->relaystats.mark, "relaystats.listen", "\"%s\" is not host:port",
                     c->relaystats.listen);
        return -1;
    }
    if (c->relaystats.admin_token_sha256) {
        const char *h = c->relaystats.admin_token_sha256;
        size_t n = strlen(h);
        int ok = n == 64;
        for (size_t i = 0; ok && i < n; i++)
            ok = isxdigit((unsigned char)h[i]);
        if (!ok) {
            cfg_error_at(err, file, &c->relaystats.mark, "relaystats.admin_token_sha256",
                         "expected 64 hex digits (sha256sum of the token)");
            return -1;
        }
        lower(c->relaystats.admin_token_sha256);
    }
    return 0;
}

static int finish(const char *name, struct conf *out, struct cfg_error *err)
{
    if (apply_defaults(out) < 0) {
        cfg_error_set(err, name, NULL, "out of memory");
        goto fail;
    }
    if (validate(out, name, err) < 0)
        goto fail;
    out->path = strdup(name);
    if (!out->path) {
        cfg_error_set(err, name, NULL, "out of memory");
        goto fail;
    }
    return 0;
fail:
    conf_free(out);
    return -1;
}

int conf_load(const char *path, struct conf *out, struct cfg_error *err)
{
    memset(out, 0, sizeof(*out));
    preset_numbers(out);
    if (cfg_load_file(path, &conf_schema, out, err) < 0)
        return -1;
    return finish(path, out, err);
}

int conf_load_string(const char *name, const char *text, size_t len, struct conf *out,
                     struct cfg_error *err)
{
    memset(out, 0, sizeof(*out));
    preset_numbers(out);
    if (cfg_load_string(name, text, len, &conf_schema, out, err) < 0)
        return -1;
    return finish(name, out, err);
}

void conf_free(struct conf *c)
{
    if (!c)
        return;
    cfg_free(&conf_schema, c);
    free(c->path);
    c->path = NULL;
}
