/* The deployment config: schema, defaults and cross-checks. */
#include "ccgwconf.h"

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

static const struct yamlcfg_field backend_fields[] = {
    FLD(YAMLCFG_STR, "name", struct ccgwconf_backend, name, .required = 1),
    FLD(YAMLCFG_STR, "address", struct ccgwconf_backend, address, .required = 1),
    FLD(YAMLCFG_INT, "weight", struct ccgwconf_backend, weight, .min = 0, .max = 256),
};
static const struct yamlcfg_schema backend_schema = {"backend", backend_fields,
                                                     ARRAY_LEN(backend_fields), 1,
                                                     offsetof(struct ccgwconf_backend, mark)};

static const struct yamlcfg_field auth_fields[] = {
    FLD(YAMLCFG_STR, "user", struct ccgwconf_chain, auth_user, .required = 1),
    FLD(YAMLCFG_STR, "password", struct ccgwconf_chain, auth_password, .required = 1),
};
static const struct yamlcfg_schema auth_schema = {"auth", auth_fields, 2, 0, 0};

static const struct yamlcfg_field chain_fields[] = {
    FLD(YAMLCFG_STR, "id", struct ccgwconf_chain, id, .required = 1),
    FLD(YAMLCFG_STR, "name", struct ccgwconf_chain, name),
    FLD(YAMLCFG_ENUM, "flavour", struct ccgwconf_chain, flavour, .enums = flavours),
    {.key = "auth", .type = YAMLCFG_STRUCT, .offset = 0, .sub = &auth_schema},
    FLD(YAMLCFG_BOOL, "websocket", struct ccgwconf_chain, websocket),
    FLD(YAMLCFG_LIST, "backends", struct ccgwconf_chain, backends, .required = 1,
        .sub = &backend_schema, .elem_size = sizeof(struct ccgwconf_backend),
        .count_offset = offsetof(struct ccgwconf_chain, nbackends)),
};
static const struct yamlcfg_schema chain_schema = {"chain", chain_fields, ARRAY_LEN(chain_fields),
                                                   1, offsetof(struct ccgwconf_chain, mark)};

static const struct yamlcfg_field account_fields[] = {
    FLD(YAMLCFG_STR, "id", struct ccgwconf_account, id, .required = 1),
    FLD(YAMLCFG_LIST, "chains", struct ccgwconf_account, chains, .required = 1,
        .elem_size = sizeof(char *), .count_offset = offsetof(struct ccgwconf_account, nchains)),
};
static const struct yamlcfg_schema account_schema = {"account", account_fields, 2, 1,
                                                     offsetof(struct ccgwconf_account, mark)};

static const struct yamlcfg_field provider_fields[] = {
    FLD(YAMLCFG_STR, "name", struct ccgwconf_provider, name, .required = 1),
    FLD(YAMLCFG_LIST, "accounts", struct ccgwconf_provider, accounts, .required = 1,
        .sub = &account_schema, .elem_size = sizeof(struct ccgwconf_account),
        .count_offset = offsetof(struct ccgwconf_provider, naccounts)),
};
static const struct yamlcfg_schema provider_schema = {"provider", provider_fields, 2, 1,
                                                      offsetof(struct ccgwconf_provider, mark)};

static const struct yamlcfg_field tier_fields[] = {
    FLD(YAMLCFG_STR, "name", struct ccgwconf_tier, name, .required = 1),
    FLD(YAMLCFG_ENUM, "role", struct ccgwconf_tier, role, .required = 1, .enums = roles),
    FLD(YAMLCFG_STR, "bind", struct ccgwconf_tier, bind, .required = 1),
    FLD(YAMLCFG_STR, "stats_bind", struct ccgwconf_tier, stats_bind),
    FLD(YAMLCFG_STR, "stats_socket", struct ccgwconf_tier, stats_socket),
    FLD(YAMLCFG_STR, "gateway_listen", struct ccgwconf_tier, gateway_listen),
    FLD(YAMLCFG_BOOL, "backup", struct ccgwconf_tier, backup),
    FLD(YAMLCFG_BOOL, "count_relays", struct ccgwconf_tier, count_relays, .track_present = 1,
        .present_offset = offsetof(struct ccgwconf_tier, count_relays_set)),
};
static const struct yamlcfg_schema tier_schema = {"tier", tier_fields, ARRAY_LEN(tier_fields), 1,
                                                  offsetof(struct ccgwconf_tier, mark)};

static const struct yamlcfg_field gateway_fields[] = {
    FLD(YAMLCFG_STR, "name", struct ccgwconf, gateway_name, .required = 1),
    FLD(YAMLCFG_STR, "routing_domain", struct ccgwconf, routing_domain, .required = 1),
    FLD(YAMLCFG_STR, "data_dir", struct ccgwconf, data_dir),
};
static const struct yamlcfg_schema gateway_schema = {"gateway", gateway_fields, 3, 1,
                                                     offsetof(struct ccgwconf, gateway_mark)};

static const struct yamlcfg_field haproxy_fields[] = {
    FLD(YAMLCFG_STR, "binary", struct ccgwconf_haproxy, binary),
    FLD(YAMLCFG_INT, "timeout_connect_ms", struct ccgwconf_haproxy, timeout_connect_ms, .min = 1,
        .max = 3600000),
    FLD(YAMLCFG_INT, "timeout_client_ms", struct ccgwconf_haproxy, timeout_client_ms, .min = 1,
        .max = 3600000),
    FLD(YAMLCFG_INT, "timeout_server_ms", struct ccgwconf_haproxy, timeout_server_ms, .min = 1,
        .max = 3600000),
    FLD(YAMLCFG_INT, "retries", struct ccgwconf_haproxy, retries, .min = 0, .max = 100),
    FLD(YAMLCFG_INT, "maxconn", struct ccgwconf_haproxy, maxconn, .min = 1, .max = 10000000),
};
static const struct yamlcfg_schema haproxy_schema = {"haproxy", haproxy_fields,
                                                     ARRAY_LEN(haproxy_fields), 0, 0};

static const struct yamlcfg_field postgres_fields[] = {
    FLD(YAMLCFG_STR, "url", struct ccgwconf_postgres, url, .required = 1),
};
static const struct yamlcfg_schema postgres_schema = {"postgres", postgres_fields, 1, 0, 0};

static const struct yamlcfg_field redis_fields[] = {
    FLD(YAMLCFG_STR, "host", struct ccgwconf_redis, host, .required = 1),
    FLD(YAMLCFG_INT, "port", struct ccgwconf_redis, port, .min = 1, .max = 65535),
    FLD(YAMLCFG_INT, "ttl_secs", struct ccgwconf_redis, ttl_secs, .min = 60, .max = 31536000),
    FLD(YAMLCFG_STR, "key_prefix", struct ccgwconf_redis, key_prefix),
};
static const struct yamlcfg_schema redis_schema = {"redis", redis_fields, 4, 0, 0};

static const struct yamlcfg_field flush_fields[] = {
    FLD(YAMLCFG_INT, "interval_secs", struct ccgwconf_flush, interval_secs, .min = 1, .max = 3600),
    FLD(YAMLCFG_INT, "fsync_interval_ms", struct ccgwconf_flush, fsync_interval_ms, .min = 10,
        .max = 1000),
    FLD(YAMLCFG_INT, "redis_interval_ms", struct ccgwconf_flush, redis_interval_ms, .min = 10,
        .max = 60000),
    FLD(YAMLCFG_INT, "retry_max_secs", struct ccgwconf_flush, retry_max_secs, .min = 1,
        .max = 3600),
    FLD(YAMLCFG_SIZE, "journal_compact_bytes", struct ccgwconf_flush, journal_compact_bytes,
        .min = 4096, .max = 1e12),
};
static const struct yamlcfg_schema flush_schema = {"flush", flush_fields, 5, 0, 0};

static const struct yamlcfg_field logs_fields[] = {
    FLD(YAMLCFG_ENUM, "format", struct ccgwconf_logs, format, .enums = log_formats),
    FLD(YAMLCFG_ENUM, "level", struct ccgwconf_logs, level, .enums = log_levels),
    FLD(YAMLCFG_STR, "dir", struct ccgwconf_logs, dir),
    FLD(YAMLCFG_SIZE, "request_log_max_bytes", struct ccgwconf_logs, request_log_max_bytes,
        .min = 65536, .max = 1e12),
    FLD(YAMLCFG_STR, "time_zone", struct ccgwconf_logs, time_zone),
};
static const struct yamlcfg_schema logs_schema = {"logs", logs_fields, 5, 1,
                                                  offsetof(struct ccgwconf_logs, mark)};

static const struct yamlcfg_field relaystats_fields[] = {
    FLD(YAMLCFG_STR, "listen", struct ccgwconf_relaystats, listen),
    FLD(YAMLCFG_STR, "admin_token_sha256", struct ccgwconf_relaystats, admin_token_sha256),
};
static const struct yamlcfg_schema relaystats_schema = {"relaystats", relaystats_fields, 2, 1,
                                                        offsetof(struct ccgwconf_relaystats, mark)};

static const struct yamlcfg_field certificate_fields[] = {
    FLD(YAMLCFG_STR, "name", struct ccgwconf_certificate, name, .required = 1),
    FLD(YAMLCFG_STR, "cert", struct ccgwconf_certificate, cert, .required = 1),
    FLD(YAMLCFG_STR, "key", struct ccgwconf_certificate, key),
};
static const struct yamlcfg_schema certificate_schema = {
    "certificate", certificate_fields, 3, 1, offsetof(struct ccgwconf_certificate, mark)};

static const struct yamlcfg_field tls_fields[] = {
    FLD(YAMLCFG_STR, "bind", struct ccgwconf_tls, bind, .required = 1),
    FLD(YAMLCFG_ENUM, "plain_http", struct ccgwconf_tls, plain_http, .enums = plain_http_modes),
    FLD(YAMLCFG_INT, "hsts_max_age_secs", struct ccgwconf_tls, hsts_max_age_secs, .min = 0,
        .max = 157680000),
    FLD(YAMLCFG_INT, "redirect_port", struct ccgwconf_tls, redirect_port, .min = 1, .max = 65535),
    FLD(YAMLCFG_LIST, "certificates", struct ccgwconf_tls, certificates, .required = 1,
        .sub = &certificate_schema, .elem_size = sizeof(struct ccgwconf_certificate),
        .count_offset = offsetof(struct ccgwconf_tls, ncertificates)),
};
static const struct yamlcfg_schema tls_schema = {"tls", tls_fields, ARRAY_LEN(tls_fields), 1,
                                                 offsetof(struct ccgwconf_tls, mark)};

static const struct yamlcfg_field ccgwconf_fields[] = {
    {.key = "gateway", .type = YAMLCFG_STRUCT, .offset = 0, .required = 1, .sub = &gateway_schema},
    FLD(YAMLCFG_LIST, "chains", struct ccgwconf, chains, .required = 1, .sub = &chain_schema,
        .elem_size = sizeof(struct ccgwconf_chain),
        .count_offset = offsetof(struct ccgwconf, nchains)),
    FLD(YAMLCFG_LIST, "providers", struct ccgwconf, providers, .sub = &provider_schema,
        .elem_size = sizeof(struct ccgwconf_provider),
        .count_offset = offsetof(struct ccgwconf, nproviders)),
    FLD(YAMLCFG_LIST, "tiers", struct ccgwconf, tiers, .sub = &tier_schema,
        .elem_size = sizeof(struct ccgwconf_tier),
        .count_offset = offsetof(struct ccgwconf, ntiers)),
    FLD(YAMLCFG_STRUCT, "haproxy", struct ccgwconf, haproxy, .sub = &haproxy_schema),
    FLD(YAMLCFG_STRUCT, "postgres", struct ccgwconf, postgres, .sub = &postgres_schema),
    FLD(YAMLCFG_STRUCT, "redis", struct ccgwconf, redis, .sub = &redis_schema),
    FLD(YAMLCFG_STRUCT, "flush", struct ccgwconf, flush, .sub = &flush_schema),
    FLD(YAMLCFG_STRUCT, "logs", struct ccgwconf, logs, .sub = &logs_schema),
    FLD(YAMLCFG_STRUCT, "relaystats", struct ccgwconf, relaystats, .sub = &relaystats_schema),
    FLD(YAMLCFG_STRUCT, "tls", struct ccgwconf, tls, .sub = &tls_schema),
};
static const struct yamlcfg_schema ccgwconf_schema = {"config", ccgwconf_fields,
                                                      ARRAY_LEN(ccgwconf_fields), 0, 0};

const char *conf_path(const char *arg)
{
    const char *env;

    if (arg && *arg)
        return arg;
    env = getenv("CCGW_CONFIG");
    return env && *env ? env : NULL;
}

const struct ccgwconf_chain *ccgwconf_chain_find(const struct ccgwconf *c, const char *id)
{
    for (size_t i = 0; i < c->nchains; i++)
        if (strcmp(c->chains[i].id, id) == 0)
            return &c->chains[i];
    return NULL;
}

const struct ccgwconf_tier *ccgwconf_tier_find(const struct ccgwconf *c, const char *name)
{
    for (size_t i = 0; i < c->ntiers; i++)
        if (strcmp(c->tiers[i].name, name) == 0)
            return &c->tiers[i];
    return NULL;
}

int ccgwconf_split_address(const char *addr, char *host, size_t hostlen, uint16_t *port)
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
        return ccgwconf_split_address(buf, host, sizeof(host), &port) == 0;
    }
    return ccgwconf_split_address(addr, host, sizeof(host), &port) == 0;
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

static int default_tiers(struct ccgwconf *c)
{
    static const struct {
        const char *name, *bind, *stats_bind, *listen;
        int role, backup;
    } def[] = {
        {"edge", "127.0.0.1:8080", "127.0.0.1:8404", "127.0.0.1:9100", CCGWCONF_ROLE_EDGE, 0},
        {"http0", "127.0.0.1:8081", NULL, "127.0.0.1:9101", CCGWCONF_ROLE_HTTP, 0},
        {"http1", "127.0.0.1:8082", NULL, "127.0.0.1:9102", CCGWCONF_ROLE_HTTP, 1},
    };
    char sock[512];

    c->tiers = calloc(ARRAY_LEN(def), sizeof(*c->tiers));
    if (!c->tiers)
        return -1;
    for (size_t i = 0; i < ARRAY_LEN(def); i++) {
        struct ccgwconf_tier *t = &c->tiers[i];
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

static int apply_defaults(struct ccgwconf *c)
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
        struct ccgwconf_tier *t = &c->tiers[i];
        if (!t->count_relays_set)
            t->count_relays = t->role == CCGWCONF_ROLE_HTTP;
    }
    for (size_t i = 0; i < c->nchains; i++)
        for (size_t j = 0; j < c->chains[i].nbackends; j++)
            if (c->chains[i].backends[j].weight == 0)
                c->chains[i].backends[j].weight = 1;
    return 0;
}

/* Numeric defaults go in before decoding so that absent keys keep them. */
static void preset_numbers(struct ccgwconf *c)
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

static int validate_chains(struct ccgwconf *c, const char *file, struct yamlcfg_error *err)
{
    char path[64], host[256];
    uint16_t port;

    for (size_t i = 0; i < c->nchains; i++) {
        struct ccgwconf_chain *ch = &c->chains[i];
        snprintf(path, sizeof(path), "chains[%zu]", i);
        lower(ch->id);
        if (!valid_label(ch->id)) {
            yamlcfg_error_at(err, file, &ch->mark, path,
                             "id \"%s\" is not a host label (1-63 of a-z, 0-9, '-')", ch->id);
            return -1;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(c->chains[k].id, ch->id) == 0) {
                yamlcfg_error_at(err, file, &ch->mark, path, "duplicate chain id \"%s\"", ch->id);
                return -1;
            }
        }
        if (ch->nbackends == 0) {
            snprintf(path, sizeof(path), "chains[%zu].backends", i);
            yamlcfg_error_at(err, file, &ch->mark, path, "chain \"%s\" has no backends", ch->id);
            return -1;
        }
        for (size_t j = 0; j < ch->nbackends; j++) {
            struct ccgwconf_backend *b = &ch->backends[j];
            snprintf(path, sizeof(path), "chains[%zu].backends[%zu]", i, j);
            if (!valid_name(b->name)) {
                yamlcfg_error_at(err, file, &b->mark, path,
                                 "name \"%s\" must be 1-64 of A-Z, a-z, 0-9, '-', '_', '.'",
                                 b->name);
                return -1;
            }
            if (ccgwconf_split_address(b->address, host, sizeof(host), &port) < 0) {
                yamlcfg_error_at(err, file, &b->mark, path,
                                 "address \"%s\" is not host:port (port 1-65535, IPv6 in brackets)",
                                 b->address);
                return -1;
            }
            for (size_t k = 0; k < j; k++) {
                if (strcmp(ch->backends[k].name, b->name) == 0) {
                    yamlcfg_error_at(err, file, &b->mark, path, "duplicate backend name \"%s\"",
                                     b->name);
                    return -1;
                }
            }
        }
    }
    return 0;
}

static int validate_providers(struct ccgwconf *c, const char *file, struct yamlcfg_error *err)
{
    char path[96];

    for (size_t p = 0; p < c->nproviders; p++) {
        struct ccgwconf_provider *pr = &c->providers[p];
        snprintf(path, sizeof(path), "providers[%zu]", p);
        if (!valid_name(pr->name)) {
            yamlcfg_error_at(err, file, &pr->mark, path,
                             "name \"%s\" must be 1-64 of A-Z, a-z, 0-9, '-', '_', '.'", pr->name);
            return -1;
        }
        for (size_t q = 0; q < p; q++) {
            if (strcmp(c->providers[q].name, pr->name) == 0) {
                yamlcfg_error_at(err, file, &pr->mark, path, "duplicate provider \"%s\"", pr->name);
                return -1;
            }
        }
        for (size_t a = 0; a < pr->naccounts; a++) {
            struct ccgwconf_account *ac = &pr->accounts[a];
            snprintf(path, sizeof(path), "providers[%zu].accounts[%zu]", p, a);
            lower(ac->id);
            if (!valid_label(ac->id)) {
                yamlcfg_error_at(err, file, &ac->mark, path,
                                 "id \"%s\" is not a host label (1-63 of a-z, 0-9, '-')", ac->id);
                return -1;
            }
            if (ac->nchains == 0) {
                yamlcfg_error_at(err, file, &ac->mark, path, "account \"%s\" serves no chain",
                                 ac->id);
                return -1;
            }
            for (size_t k = 0; k < ac->nchains; k++) {
                lower(ac->chains[k]);
                if (!ccgwconf_chain_find(c, ac->chains[k])) {
                    yamlcfg_error_at(err, file, &ac->mark, path, "unknown chain \"%s\"",
                                     ac->chains[k]);
                    return -1;
                }
            }
        }
    }
    return 0;
}

struct host_seen {
    const char *account, *chain;
    const struct ccgwconf_account *where;
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
static int check_duplicate_hosts(struct ccgwconf *c, const char *file, struct yamlcfg_error *err)
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
        yamlcfg_error_set(err, file, NULL, "out of memory");
        return -1;
    }
    for (size_t p = 0; p < c->nproviders; p++) {
        for (size_t a = 0; a < c->providers[p].naccounts; a++) {
            const struct ccgwconf_account *ac = &c->providers[p].accounts[a];
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
            yamlcfg_error_at(err, file, &h->where->mark, path, "duplicate host %s.%s.%s",
                             h->account, h->chain, c->routing_domain);
            free(hosts);
            return -1;
        }
    }
    free(hosts);
    return 0;
}

static int validate_tiers(struct ccgwconf *c, const char *file, struct yamlcfg_error *err)
{
    char path[64];
    size_t nedge = 0, nhttp = 0;

    for (size_t i = 0; i < c->ntiers; i++) {
        struct ccgwconf_tier *t = &c->tiers[i];
        snprintf(path, sizeof(path), "tiers[%zu]", i);
        if (!valid_name(t->name)) {
            yamlcfg_error_at(err, file, &t->mark, path,
                             "name \"%s\" must be 1-64 of A-Z, a-z, 0-9, '-', '_', '.'", t->name);
            return -1;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(c->tiers[k].name, t->name) == 0) {
                yamlcfg_error_at(err, file, &t->mark, path, "duplicate tier \"%s\"", t->name);
                return -1;
            }
        }
        if (!valid_listen(t->bind)) {
            yamlcfg_error_at(err, file, &t->mark, path, "bind \"%s\" is not host:port", t->bind);
            return -1;
        }
        if (t->stats_bind && !valid_listen(t->stats_bind)) {
            yamlcfg_error_at(err, file, &t->mark, path, "stats_bind \"%s\" is not host:port",
                             t->stats_bind);
            return -1;
        }
        if (t->gateway_listen && !valid_listen(t->gateway_listen)) {
            yamlcfg_error_at(err, file, &t->mark, path, "gateway_listen \"%s\" is not host:port",
                             t->gateway_listen);
            return -1;
        }
        if (t->role == CCGWCONF_ROLE_EDGE) {
            nedge++;
            if (t->count_relays) {
                yamlcfg_error_at(
                    err, file, &t->mark, path,
                    "an edge tier never counts relays (every relay would count twice)");
                return -1;
            }
            if (t->backup) {
                yamlcfg_error_at(err, file, &t->mark, path, "backup applies to http tiers only");
                return -1;
            }
        } else {
            nhttp++;
        }
    }
    if (nedge > 1) {
        yamlcfg_error_set(err, file, "tiers", "at most one edge tier, found %zu", nedge);
        return -1;
    }
    if (nhttp == 0) {
        yamlcfg_error_set(err, file, "tiers", "at least one http tier is needed");
        return -1;
    }
    return 0;
}

/* File contents are checked by cc-routes (it reads the certificates); here
 * only the shape: names, a listener, and no listener shared with a tier. */
static int validate_tls(struct ccgwconf *c, const char *file, struct yamlcfg_error *err)
{
    char path[64];
    struct ccgwconf_tls *t = &c->tls;

    if (!t->bind)
        return 0;
    if (!valid_listen(t->bind)) {
        yamlcfg_error_at(err, file, &t->mark, "tls.bind", "\"%s\" is not host:port", t->bind);
        return -1;
    }
    for (size_t i = 0; i < c->ntiers; i++) {
        if (strcmp(c->tiers[i].bind, t->bind) == 0) {
            yamlcfg_error_at(err, file, &t->mark, "tls.bind", "\"%s\" is also tier %s's bind",
                             t->bind, c->tiers[i].name);
            return -1;
        }
    }
    if (t->ncertificates == 0) {
        yamlcfg_error_at(err, file, &t->mark, "tls.certificates",
                         "at least one certificate is needed");
        return -1;
    }
    for (size_t i = 0; i < t->ncertificates; i++) {
        struct ccgwconf_certificate *ct = &t->certificates[i];
        snprintf(path, sizeof(path), "tls.certificates[%zu]", i);
        if (!valid_name(ct->name)) {
            yamlcfg_error_at(err, file, &ct->mark, path,
                             "name \"%s\" must be 1-64 of A-Z, a-z, 0-9, '-', '_', '.'", ct->name);
            return -1;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(t->certificates[k].name, ct->name) == 0) {
                yamlcfg_error_at(err, file, &ct->mark, path, "duplicate certificate name \"%s\"",
                                 ct->name);
                return -1;
            }
        }
    }
    return 0;
}

static int validate(struct ccgwconf *c, const char *file, struct yamlcfg_error *err)
{
    lower(c->routing_domain);
    if (!valid_domain(c->routing_domain)) {
        yamlcfg_error_at(err, file, &c->gateway_mark, "gateway.routing_domain",
                         "\"%s\" is not a domain name (labels of a-z, 0-9, '-')",
                         c->routing_domain);
        return -1;
    }
    if (!valid_name(c->gateway_name)) {
        yamlcfg_error_at(err, file, &c->gateway_mark, "gateway.name",
                         "\"%s\" must be 1-64 of A-Z, a-z, 0-9, '-', '_', '.'", c->gateway_name);
        return -1;
    }
    if (c->nchains == 0) {
        yamlcfg_error_set(err, file, "chains", "at least one chain is needed");
        return -1;
    }
    if (validate_chains(c, file, err) < 0 || validate_providers(c, file, err) < 0 ||
        check_duplicate_hosts(c, file, err) < 0 || validate_tiers(c, file, err) < 0 ||
        validate_tls(c, file, err) < 0)
        return -1;
    if (bucket_zone_parse(c->logs.time_zone, &c->logs.tz_offset_secs) < 0) {
        yamlcfg_error_at(err, file, &c->logs.mark, "logs.time_zone",
                         "\"%s\" is not a zone (UTC, Z, +HH:MM, -HHMM)", c->logs.time_zone);
        return -1;
    }
    if (c->relaystats.listen && !valid_listen(c->relaystats.listen)) {
        yamlcfg_error_at(err, file, &c->relaystats.mark, "relaystats.listen",
                         "\"%s\" is not host:port", c->relaystats.listen);
        return -1;
    }
    if (c->relaystats.admin_token_sha256) {
        const char *h = c->relaystats.admin_token_sha256;
        size_t n = strlen(h);
        int ok = n == 64;
        for (size_t i = 0; ok && i < n; i++)
            ok = isxdigit((unsigned char)h[i]);
        if (!ok) {
            yamlcfg_error_at(err, file, &c->relaystats.mark, "relaystats.admin_token_sha256",
                             "expected 64 hex digits (sha256sum of the token)");
            return -1;
        }
        lower(c->relaystats.admin_token_sha256);
    }
    return 0;
}

static int finish(const char *name, struct ccgwconf *out, struct yamlcfg_error *err)
{
    if (apply_defaults(out) < 0) {
        yamlcfg_error_set(err, name, NULL, "out of memory");
        goto fail;
    }
    if (validate(out, name, err) < 0)
        goto fail;
    out->path = strdup(name);
    if (!out->path) {
        yamlcfg_error_set(err, name, NULL, "out of memory");
        goto fail;
    }
    return 0;
fail:
    ccgwconf_free(out);
    return -1;
}

int ccgwconf_load(const char *path, struct ccgwconf *out, struct yamlcfg_error *err)
{
    memset(out, 0, sizeof(*out));
    preset_numbers(out);
    if (yamlcfg_load_file(path, &ccgwconf_schema, out, err) < 0)
        return -1;
    return finish(path, out, err);
}

int ccgwconf_load_string(const char *name, const char *text, size_t len, struct ccgwconf *out,
                         struct yamlcfg_error *err)
{
    memset(out, 0, sizeof(*out));
    preset_numbers(out);
    if (yamlcfg_load_string(name, text, len, &ccgwconf_schema, out, err) < 0)
        return -1;
    return finish(name, out, err);
}

void ccgwconf_free(struct ccgwconf *c)
{
    if (!c)
        return;
    yamlcfg_free(&ccgwconf_schema, c);
    free(c->path);
    c->path = NULL;
}
