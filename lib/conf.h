/* The deployment config: one YAML file describes a whole gateway deployment
 * (gateway name, routing domain, chains and their backends, providers and
 * their accounts, HAProxy tiers, PostgreSQL/Redis, flush and log settings).
 * Every binary but cc-node reads it (`--config F`, default $CCGW_CONFIG).
 * See deploy/ccgw.example.yaml for a commented example. */
#ifndef CCGW_CONF_H
#define CCGW_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "cfg.h"

struct conf_backend {
    char *name;    /* HAProxy server name, unique within the chain */
    char *address; /* "host:port" (IPv4, [IPv6] or DNS name) */
    int64_t weight;
    struct cfg_mark mark; /* where it is in the file */
};

enum conf_flavour { CONF_FLAVOUR_BITCOIN = 0, CONF_FLAVOUR_EVM };

struct conf_chain {
    char *id;   /* the host label: "0021"; lower-case [a-z0-9-] */
    char *name; /* human name, optional */
    int flavour;
    char *auth_user;     /* optional node RPC credentials; HAProxy adds the */
    char *auth_password; /* Authorization header, clients never see them */
    int websocket;       /* opt-in: WebSocket upgrades reach this chain (sessions, not relays) */
    struct conf_backend *backends;
    size_t nbackends;
    struct cfg_mark mark;
};

struct conf_account {
    char *id;      /* the host label: "894334g9f403" */
    char **chains; /* chain ids this account may use */
    size_t nchains;
    struct cfg_mark mark;
};

struct conf_provider {
    char *name;
    struct conf_account *accounts;
    size_t naccounts;
    struct cfg_mark mark;
};

enum conf_role { CONF_ROLE_EDGE = 0, CONF_ROLE_HTTP };

struct conf_tier {
    char *name;           /* "edge", "http0", "http1": the cc-gateway source name */
    int role;             /* enum conf_role */
    char *bind;           /* HAProxy frontend "127.0.0.1:8080" */
    char *stats_bind;     /* optional: HAProxy stats page + Prometheus exporter */
    char *stats_socket;   /* HAProxy runtime API socket path (admin level) */
    char *gateway_listen; /* cc-gateway /metrics and /health for this source */
    int backup;           /* http role: edge marks this server `backup` */
    int count_relays;     /* default: role == http; edge lines never count */
    int count_relays_set; /* internal: whether count_relays was given */
    struct cfg_mark mark;
};

struct conf_haproxy {
    char *binary; /* default "haproxy" */
    int64_t timeout_connect_ms, timeout_client_ms, timeout_server_ms;
    int64_t retries;
    int64_t maxconn;
};

struct conf_postgres {
    char *url; /* libpq conninfo or URI; NULL: PostgreSQL disabled */
};

struct conf_redis {
    char *host; /* NULL: Redis disabled */
    int64_t port;
    int64_t ttl_secs; /* TTL of real-time keys, default 7200 */
    char *key_prefix; /* default "ccgw" */
};

struct conf_flush {
    int64_t interval_secs;         /* PostgreSQL flush period, default 300 */
    int64_t fsync_interval_ms;     /* journal fsync period, default 1000 */
    int64_t redis_interval_ms;     /* Redis publish period, default 1000 */
    int64_t retry_max_secs;        /* cap of the flush retry backoff, default 60 */
    int64_t journal_compact_bytes; /* journal compaction threshold, default 16 MB */
};

struct conf_logs {
    int format;                    /* enum log_format */
    int level;                     /* enum log_level */
    char *dir;                     /* <dir>/<source>/requests.<n>.log segments, events.log */
    int64_t request_log_max_bytes; /* per source, default 40 MB */
    char *time_zone;               /* zone of HAProxy's accept dates, default "UTC" */
    int32_t tz_offset_secs;        /* derived from time_zone */
    struct cfg_mark mark;
};

/* One certificate the edge serves; SNI picks it. */
struct conf_certificate {
    char *name; /* file and metric label: 1-64 of [A-Za-z0-9._-] */
    char *cert; /* PEM: the certificate, then its chain */
    char *key;  /* PEM private key; NULL when it is in `cert` */
    struct cfg_mark mark;
};

enum conf_plain_http { CONF_PLAIN_SERVE = 0, CONF_PLAIN_REDIRECT };

/* HTTPS at the edge tier. Absent (bind NULL): plain HTTP only. */
struct conf_tls {
    char *bind;                /* the edge's HTTPS listener, "0.0.0.0:443" */
    int plain_http;            /* enum conf_plain_http: the edge's plain `bind` serves or 308s */
    int64_t hsts_max_age_secs; /* 0: no Strict-Transport-Security header */
    int64_t redirect_port;     /* port of the 308's https:// URL; 0: bind's port */
    struct conf_certificate *certificates;
    size_t ncertificates;
    struct cfg_mark mark;
};

struct conf_relaystats {
    char *listen;             /* default 127.0.0.1:8090 */
    char *admin_token_sha256; /* hex SHA-256 of the admin API token, optional */
    struct cfg_mark mark;
};

struct conf {
    char *path; /* file it was loaded from */
    char *gateway_name;
    char *routing_domain; /* lower-case */
    char *data_dir;       /* journal and state; default "run/data" */
    struct cfg_mark gateway_mark;
    struct conf_chain *chains;
    size_t nchains;
    struct conf_provider *providers;
    size_t nproviders;
    struct conf_tier *tiers;
    size_t ntiers;
    struct conf_haproxy haproxy;
    struct conf_postgres postgres;
    struct conf_redis redis;
    struct conf_flush flush;
    struct conf_logs logs;
    struct conf_relaystats relaystats;
    struct conf_tls tls;
};

/* Load and validate. Defaults are applied, names are lower-cased where
 * hosts use them, and cross-references are checked (an account naming an
 * unknown chain, duplicate chain ids, duplicate hosts, a chain without
 * backends, a malformed address, ...). 0, or -1 with err filled. */
int conf_load(const char *path, struct conf *out, struct cfg_error *err);
int conf_load_string(const char *name, const char *text, size_t len, struct conf *out,
                     struct cfg_error *err);
void conf_free(struct conf *c);

/* Resolve --config: `arg` if not NULL, else $CCGW_CONFIG, else NULL. */
const char *conf_path(const char *arg);

const struct conf_chain *conf_chain_find(const struct conf *c, const char *id);
const struct conf_tier *conf_tier_find(const struct conf *c, const char *name);

/* Parse "host:port" / "[v6]:port" into host (without brackets) and port.
 * 0 or -1. */
int conf_split_address(const char *addr, char *host, size_t hostlen, uint16_t *port);

#endif
