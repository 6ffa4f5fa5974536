/* The deployment config: one YAML file describes a whole gateway deployment
 * (gateway name, routing domain, chains and their backends, providers and
 * their accounts, HAProxy tiers, PostgreSQL/Redis, flush and log settings).
 * Every binary but cc-node reads it (`--config F`, default $CCGW_CONFIG).
 * See deploy/ccgw.example.yaml for a commented example. */
#ifndef CCGW_CCGWCONF_H
#define CCGW_CCGWCONF_H

#include <stddef.h>
#include <stdint.h>

#include "yamlcfg.h"

struct ccgwconf_backend {
    char *name;    /* HAProxy server name, unique within the chain */
    char *address; /* "host:port" (IPv4, [IPv6] or DNS name) */
    int64_t weight;
    struct yamlcfg_mark mark; /* where it is in the file */
};

enum ccgwconf_flavour { CCGWCONF_FLAVOUR_BITCOIN = 0, CCGWCONF_FLAVOUR_EVM };

struct ccgwconf_chain {
    char *id;   /* the host label: "0021"; lower-case [a-z0-9-] */
    char *name; /* human name, optional */
    int flavour;
    char *auth_user;     /* optional node RPC credentials; HAProxy adds the */
    char *auth_password; /* Authorization header, clients never see them */
    int websocket;       /* opt-in: WebSocket upgrades reach this chain (sessions, not relays) */
    struct ccgwconf_backend *backends;
    size_t nbackends;
    struct yamlcfg_mark mark;
};

struct ccgwconf_account {
    char *id;      /* the host label: "894334g9f403" */
    char **chains; /* chain ids this account may use */
    size_t nchains;
    struct yamlcfg_mark mark;
};

struct ccgwconf_provider {
    char *name;
    struct ccgwconf_account *accounts;
    size_t naccounts;
    struct yamlcfg_mark mark;
};

enum ccgwconf_role { CCGWCONF_ROLE_EDGE = 0, CCGWCONF_ROLE_HTTP };

struct ccgwconf_tier {
    char *name;           /* "edge", "http0", "http1": the cc-gateway source name */
    int role;             /* enum ccgwconf_role */
    char *bind;           /* HAProxy frontend "127.0.0.1:8080" */
    char *stats_bind;     /* optional: HAProxy stats page + Prometheus exporter */
    char *stats_socket;   /* HAProxy runtime API socket path (admin level) */
    char *gateway_listen; /* cc-gateway /metrics and /health for this source */
    int backup;           /* http role: edge marks this server `backup` */
    int count_relays;     /* default: role == http; edge lines never count */
    int count_relays_set; /* internal: whether count_relays was given */
    struct yamlcfg_mark mark;
};

struct ccgwconf_haproxy {
    char *binary; /* default "haproxy" */
    int64_t timeout_connect_ms, timeout_client_ms, timeout_server_ms;
    int64_t retries;
    int64_t maxconn;
};

struct ccgwconf_postgres {
    char *url; /* libpq conninfo or URI; NULL: PostgreSQL disabled */
};

struct ccgwconf_redis {
    char *host; /* NULL: Redis disabled */
    int64_t port;
    int64_t ttl_secs; /* TTL of real-time keys, default 7200 */
    char *key_prefix; /* default "ccgw" */
};

struct ccgwconf_flush {
    int64_t interval_secs;         /* PostgreSQL flush period, default 300 */
    int64_t fsync_interval_ms;     /* journal fsync period, default 1000 */
    int64_t redis_interval_ms;     /* Redis publish period, default 1000 */
    int64_t retry_max_secs;        /* cap of the flush retry backoff, default 60 */
    int64_t journal_compact_bytes; /* journal compaction threshold, default 16 MB */
};

struct ccgwconf_logs {
    int format;                    /* enum log_format */
    int level;                     /* enum log_level */
    char *dir;                     /* <dir>/<source>/requests.<n>.log segments, events.log */
    int64_t request_log_max_bytes; /* per source, default 40 MB */
    char *time_zone;               /* zone of HAProxy's accept dates, default "UTC" */
    int32_t tz_offset_secs;        /* derived from time_zone */
    struct yamlcfg_mark mark;
};

/* One certificate the edge serves; SNI picks it. */
struct ccgwconf_certificate {
    char *name; /* file and metric label: 1-64 of [A-Za-z0-9._-] */
    char *cert; /* PEM: the certificate, then its chain */
    char *key;  /* PEM private key; NULL when it is in `cert` */
    struct yamlcfg_mark mark;
};

enum ccgwconf_plain_http { CCGWCONF_PLAIN_SERVE = 0, CCGWCONF_PLAIN_REDIRECT };

/* HTTPS at the edge tier. Absent (bind NULL): plain HTTP only. */
struct ccgwconf_tls {
    char *bind;     /* the edge's HTTPS listener, "0.0.0.0:443" */
    int plain_http; /* enum ccgwconf_plain_http: the edge's plain `bind` serves or 308s */
    int64_t hsts_max_age_secs; /* 0: no Strict-Transport-Security header */
    int64_t redirect_port;     /* port of the 308's https:// URL; 0: bind's port */
    struct ccgwconf_certificate *certificates;
    size_t ncertificates;
    struct yamlcfg_mark mark;
};

struct ccgwconf_relaystats {
    char *listen;             /* default 127.0.0.1:8090 */
    char *admin_token_sha256; /* hex SHA-256 of the admin API token, optional */
    struct yamlcfg_mark mark;
};

struct ccgwconf {
    char *path; /* file it was loaded from */
    char *gateway_name;
    char *routing_domain; /* lower-case */
    char *data_dir;       /* journal and state; default "run/data" */
    struct yamlcfg_mark gateway_mark;
    struct ccgwconf_chain *chains;
    size_t nchains;
    struct ccgwconf_provider *providers;
    size_t nproviders;
    struct ccgwconf_tier *tiers;
    size_t ntiers;
    struct ccgwconf_haproxy haproxy;
    struct ccgwconf_postgres postgres;
    struct ccgwconf_redis redis;
    struct ccgwconf_flush flush;
    struct ccgwconf_logs logs;
    struct ccgwconf_relaystats relaystats;
    struct ccgwconf_tls tls;
};

/* Load and validate. Defaults are applied, names are lower-cased where
 * hosts use them, and cross-references are checked (an account naming an
 * unknown chain, duplicate chain ids, duplicate hosts, a chain without
 * backends, a malformed address, ...). 0, or -1 with err filled. */
int ccgwconf_load(const char *path, struct ccgwconf *out, struct yamlcfg_error *err);
int ccgwconf_load_string(const char *name, const char *text, size_t len, struct ccgwconf *out,
                         struct yamlcfg_error *err);
void ccgwconf_free(struct ccgwconf *c);

/* Resolve --config: `arg` if not NULL, else $CCGW_CONFIG, else NULL. */
const char *conf_path(const char *arg);

const struct ccgwconf_chain *ccgwconf_chain_find(const struct ccgwconf *c, const char *id);
const struct ccgwconf_tier *ccgwconf_tier_find(const struct ccgwconf *c, const char *name);

/* Parse "host:port" / "[v6]:port" into host (without brackets) and port.
 * 0 or -1. */
int ccgwconf_split_address(const char *addr, char *host, size_t hostlen, uint16_t *port);

#endif
