/* cc-node configuration loading and validation. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ccgwconf.h"
#include "log.h"
#include "sys.h"

#define OFF(f) offsetof(struct node_config, f)

static const char *const flavours[] = {"bitcoin", "evm", NULL};
static const char *const prunings[] = {"disabled", "normal", "aggressive", "custom", NULL};
static const char *const formats[] = {"text", "json", NULL};
/* "trace" is accepted for the seed's sake and logs like "debug". */
static const char *const levels[] = {"trace", "debug", "info", "warn", "error", NULL};

static const struct yamlcfg_field node_fields[] = {
    {.key = "name", .type = YAMLCFG_STR, .offset = OFF(node.name)},
    {.key = "flavour", .type = YAMLCFG_ENUM, .offset = OFF(node.flavour), .enums = flavours},
    {.key = "chain_id",
     .type = YAMLCFG_INT,
     .offset = OFF(node.chain_id),
     .min = 1,
     .max = 4503599627370495.0},
    {.key = "data_dir", .type = YAMLCFG_STR, .offset = OFF(node.data_dir), .required = 1},
    {.key = "listen", .type = YAMLCFG_STR, .offset = OFF(node.listen)},
    {.key = "block_interval_secs",
     .type = YAMLCFG_INT,
     .offset = OFF(node.block_interval_secs),
     .min = 0,
     .max = 86400},
    {.key = "warmup_secs",
     .type = YAMLCFG_INT,
     .offset = OFF(node.warmup_secs),
     .min = 0,
     .max = 3600},
    {.key = "threads", .type = YAMLCFG_INT, .offset = OFF(node.threads), .min = 1, .max = 256},
    {.key = "max_mempool_bytes",
     .type = YAMLCFG_SIZE,
     .offset = OFF(node.max_mempool_bytes),
     .min = 1024,
     .max = 1e12},
};

static const struct yamlcfg_field network_fields[] = {
    {.key = "listen", .type = YAMLCFG_STR, .offset = OFF(network.listen)},
    {.key = "peers",
     .type = YAMLCFG_LIST,
     .offset = OFF(network.peers),
     .count_offset = OFF(network.npeers),
     .elem_size = sizeof(char *)},
    {.key = "max_peers",
     .type = YAMLCFG_INT,
     .offset = OFF(network.max_peers),
     .min = 0,
     .max = 10000},
    {.key = "reconnect_enabled", .type = YAMLCFG_BOOL, .offset = OFF(network.reconnect_enabled)},
    {.key = "reconnect_max_retries",
     .type = YAMLCFG_INT,
     .offset = OFF(network.reconnect_max_retries),
     .min = 0,
     .max = 1000000},
    {.key = "reconnect_initial_delay_secs",
     .type = YAMLCFG_DOUBLE,
     .offset = OFF(network.reconnect_initial_delay_secs),
     .min = 0.01,
     .max = 86400},
    {.key = "reconnect_max_delay_secs",
     .type = YAMLCFG_DOUBLE,
     .offset = OFF(network.reconnect_max_delay_secs),
     .min = 0.01,
     .max = 604800},
};

static const struct yamlcfg_field storage_fields[] = {
    {.key = "pruning_mode",
     .type = YAMLCFG_ENUM,
     .offset = OFF(storage.pruning_mode),
     .enums = prunings},
    {.key = "pruning_threshold_gb",
     .type = YAMLCFG_DOUBLE,
     .offset = OFF(storage.pruning_threshold_gb),
     .min = 0.000001,
     .max = 1e6},
    {.key = "pruning_target_gb",
     .type = YAMLCFG_DOUBLE,
     .offset = OFF(storage.pruning_target_gb),
     .min = 0.000001,
     .max = 1e6},
    {.key = "min_blocks_kept",
     .type = YAMLCFG_INT,
     .offset = OFF(storage.min_blocks_kept),
     .min = 1,
     .max = 1e9},
    {.key = "check_interval_secs",
     .type = YAMLCFG_DOUBLE,
     .offset = OFF(storage.check_interval_secs),
     .min = 0.05,
     .max = 3600},
    {.key = "min_free_bytes",
     .type = YAMLCFG_SIZE,
     .offset = OFF(storage.min_free_bytes),
     .min = 0,
     .max = 1e15},
};

#define LOFF(f) offsetof(struct node_method_limit, f)
static const struct yamlcfg_field method_limit_fields[] = {
    {.key = "method", .type = YAMLCFG_STR, .offset = LOFF(method), .required = 1},
    {.key = "rate",
     .type = YAMLCFG_DOUBLE,
     .offset = LOFF(rate),
     .required = 1,
     .min = 0.001,
     .max = 1e9},
    {.key = "burst",
     .type = YAMLCFG_DOUBLE,
     .offset = LOFF(burst),
     .required = 1,
     .min = 1,
     .max = 1e9},
};
static const struct yamlcfg_schema method_limit_schema = {
    .name = "per_method_limits", .fields = method_limit_fields, .nfields = 3};

static const struct yamlcfg_field auth_fields[] = {
    {.key = "user", .type = YAMLCFG_STR, .offset = OFF(rpc.auth.user)},
    {.key = "password", .type = YAMLCFG_STR, .offset = OFF(rpc.auth.password)},
    {.key = "cookie_file", .type = YAMLCFG_STR, .offset = OFF(rpc.auth.cookie_file)},
    {.key = "rate_limit_enabled", .type = YAMLCFG_BOOL, .offset = OFF(rpc.auth.rate_limit_enabled)},
    {.key = "rate_limit_rate",
     .type = YAMLCFG_DOUBLE,
     .offset = OFF(rpc.auth.rate_limit_rate),
     .min = 0.001,
     .max = 1e9},
    {.key = "rate_limit_burst",
     .type = YAMLCFG_DOUBLE,
     .offset = OFF(rpc.auth.rate_limit_burst),
     .min = 1,
     .max = 1e9},
    {.key = "rate_limit_max_keys",
     .type = YAMLCFG_INT,
     .offset = OFF(rpc.auth.rate_limit_max_keys),
     .min = 64,
     .max = 10000000},
    {.key = "per_method_limits",
     .type = YAMLCFG_LIST,
     .offset = OFF(rpc.auth.per_method_limits),
     .count_offset = OFF(rpc.auth.nper_method_limits),
     .sub = &method_limit_schema,
     .elem_size = sizeof(struct node_method_limit)},
};

/* Sub-schemas decode into the same struct: every offset above is relative to
 * struct node_config, so nested sections are declared with offset 0. */
static const struct yamlcfg_schema auth_schema = {
    .name = "auth", .fields = auth_fields, .nfields = ARRAY_LEN(auth_fields)};

static const struct yamlcfg_field rpc_fields[] = {
    {.key = "metrics_enabled", .type = YAMLCFG_BOOL, .offset = OFF(rpc.metrics_enabled)},
    {.key = "health_checks_enabled",
     .type = YAMLCFG_BOOL,
     .offset = OFF(rpc.health_checks_enabled)},
    {.key = "max_body_bytes",
     .type = YAMLCFG_SIZE,
     .offset = OFF(rpc.max_body_bytes),
     .min = 1024,
     .max = 1073741824.0},
    {.key = "max_connections",
     .type = YAMLCFG_INT,
     .offset = OFF(rpc.max_connections),
     .min = 16,
     .max = 1000000},
    {.key = "idle_timeout_secs",
     .type = YAMLCFG_INT,
     .offset = OFF(rpc.idle_timeout_secs),
     .min = 1,
     .max = 3600},
    {.key = "auth", .type = YAMLCFG_STRUCT, .offset = 0, .sub = &auth_schema},
};

static const struct yamlcfg_field logging_fields[] = {
    {.key = "format", .type = YAMLCFG_ENUM, .offset = OFF(logging.format), .enums = formats},
    {.key = "level", .type = YAMLCFG_ENUM, .offset = OFF(logging.level), .enums = levels},
};

#define SCHEMA(n, f)                                                                               \
    {                                                                                              \
        .name = n, .fields = f, .nfields = ARRAY_LEN(f)                                            \
    }
static const struct yamlcfg_schema node_schema = SCHEMA("node", node_fields);
static const struct yamlcfg_schema network_schema = SCHEMA("network", network_fields);
static const struct yamlcfg_schema storage_schema = SCHEMA("storage", storage_fields);
static const struct yamlcfg_schema rpc_schema = SCHEMA("rpc", rpc_fields);
static const struct yamlcfg_schema logging_schema = SCHEMA("logging", logging_fields);

static const struct yamlcfg_field top_fields[] = {
    {.key = "node", .type = YAMLCFG_STRUCT, .offset = 0, .sub = &node_schema, .required = 1},
    {.key = "network", .type = YAMLCFG_STRUCT, .offset = 0, .sub = &network_schema},
    {.key = "storage", .type = YAMLCFG_STRUCT, .offset = 0, .sub = &storage_schema},
    {.key = "rpc", .type = YAMLCFG_STRUCT, .offset = 0, .sub = &rpc_schema},
    {.key = "logging", .type = YAMLCFG_STRUCT, .offset = 0, .sub = &logging_schema},
};
static const struct yamlcfg_schema top_schema = SCHEMA("cc-node", top_fields);

static int set_default_str(char **dst, const char *value)
{
    if (*dst)
        return 0;
    *dst = strdup(value);
    return *dst ? 0 : -1;
}

static void set_defaults(struct node_config *c)
{
    c->node.flavour = NODE_FLAVOUR_BITCOIN;
    c->node.chain_id = 1337;
    c->node.block_interval_secs = 0;
    c->node.warmup_secs = 0;
    c->node.threads = 2;
    c->node.max_mempool_bytes = 300 * 1000 * 1000;
    c->network.max_peers = 125;
    c->network.reconnect_enabled = 1;
    c->network.reconnect_max_retries = 10;
    c->network.reconnect_initial_delay_secs = 5;
    c->network.reconnect_max_delay_secs = 3600;
    c->storage.pruning_mode = NODE_PRUNE_DISABLED;
    c->storage.pruning_threshold_gb = 100;
    c->storage.pruning_target_gb = 80;
    c->storage.min_blocks_kept = 288;
    c->storage.check_interval_secs = 2;
    c->storage.min_free_bytes = 16 << 20;
    c->rpc.metrics_enabled = 1;
    c->rpc.health_checks_enabled = 1;
    c->rpc.max_body_bytes = 1 << 20;
    c->rpc.max_connections = 8192;
    c->rpc.idle_timeout_secs = 30;
    c->rpc.auth.rate_limit_enabled = 1;
    c->rpc.auth.rate_limit_rate = 100;
    c->rpc.auth.rate_limit_burst = 200;
    c->rpc.auth.rate_limit_max_keys = 65536;
    c->logging.format = LOG_FORMAT_JSON;
    c->logging.level = 2; /* "info" in `levels` */
}

static int validate(struct node_config *c, const char *file, struct yamlcfg_error *err)
{
    char host[256];
    uint16_t port;

    if (set_default_str(&c->node.name, c->node.flavour == NODE_FLAVOUR_EVM ? "evm" : "bitcoin") ||
        set_default_str(&c->node.listen, "127.0.0.1:18332")) {
        yamlcfg_error_set(err, file, "node", "out of memory");
        return -1;
    }
    if (c->node.data_dir[0] == '\0') {
        yamlcfg_error_set(err, file, "node.data_dir", "must not be empty");
        return -1;
    }
    if (ccgwconf_split_address(c->node.listen, host, sizeof(host), &port) != 0) {
        yamlcfg_error_set(err, file, "node.listen", "expected host:port, got \"%s\"",
                          c->node.listen);
        return -1;
    }
    if (c->network.listen &&
        ccgwconf_split_address(c->network.listen, host, sizeof(host), &port) != 0) {
        yamlcfg_error_set(err, file, "network.listen", "expected host:port, got \"%s\"",
                          c->network.listen);
        return -1;
    }
    for (size_t i = 0; i < c->network.npeers; i++) {
        if (ccgwconf_split_address(c->network.peers[i], host, sizeof(host), &port) != 0) {
            yamlcfg_error_set(err, file, "network.peers", "[%zu]: expected host:port, got \"%s\"",
                              i, c->network.peers[i]);
            return -1;
        }
    }
    if (c->network.reconnect_initial_delay_secs > c->network.reconnect_max_delay_secs) {
        yamlcfg_error_set(err, file, "network.reconnect_initial_delay_secs",
                          "must not exceed reconnect_max_delay_secs");
        return -1;
    }
    if (c->storage.pruning_target_gb > c->storage.pruning_threshold_gb) {
        yamlcfg_error_set(err, file, "storage.pruning_target_gb",
                          "must not exceed pruning_threshold_gb (%g > %g)",
                          c->storage.pruning_target_gb, c->storage.pruning_threshold_gb);
        return -1;
    }
    if (!c->rpc.auth.user != !c->rpc.auth.password) {
        yamlcfg_error_set(err, file, "rpc.auth", "user and password must be given together");
        return -1;
    }
    if (c->rpc.auth.user && strchr(c->rpc.auth.user, ':')) {
        yamlcfg_error_set(err, file, "rpc.auth.user", "must not contain ':'");
        return -1;
    }
    for (size_t i = 0; i < c->rpc.auth.nper_method_limits; i++) {
        const struct node_method_limit *l = &c->rpc.auth.per_method_limits[i];
        for (size_t j = 0; j < i; j++) {
            if (strcmp(c->rpc.auth.per_method_limits[j].method, l->method) == 0) {
                yamlcfg_error_set(err, file, "rpc.auth.per_method_limits",
                                  "[%zu]: duplicate method \"%s\"", i, l->method);
                return -1;
            }
        }
    }
    c->logging.level = c->logging.level > 0 ? c->logging.level - 1 : LOG_DEBUG;
    if (c->rpc.auth.cookie_file && c->rpc.auth.cookie_file[0]) {
        int n;
        if (c->rpc.auth.cookie_file[0] == '/')
            n = asprintf(&c->cookie_path, "%s", c->rpc.auth.cookie_file);
        else
            n = asprintf(&c->cookie_path, "%s/%s", c->node.data_dir, c->rpc.auth.cookie_file);
        if (n < 0) {
            c->cookie_path = NULL;
            yamlcfg_error_set(err, file, "rpc.auth.cookie_file", "out of memory");
            return -1;
        }
    }
    return 0;
}

static int finish(const char *name, struct node_config *out, struct yamlcfg_error *err)
{
    out->path = strdup(name);
    if (!out->path) {
        yamlcfg_error_set(err, name, "", "out of memory");
        goto fail;
    }
    if (validate(out, name, err) != 0)
        goto fail;
    return 0;
fail:
    node_config_free(out);
    return -1;
}

int node_config_load(const char *path, struct node_config *out, struct yamlcfg_error *err)
{
    memset(out, 0, sizeof(*out));
    set_defaults(out);
    if (yamlcfg_load_file(path, &top_schema, out, err) != 0)
        return -1;
    return finish(path, out, err);
}

int node_config_load_string(const char *name, const char *text, size_t len, struct node_config *out,
                            struct yamlcfg_error *err)
{
    memset(out, 0, sizeof(*out));
    set_defaults(out);
    if (yamlcfg_load_string(name, text, len, &top_schema, out, err) != 0)
        return -1;
    return finish(name, out, err);
}

void node_config_free(struct node_config *c)
{
    if (!c)
        return;
    yamlcfg_free(&top_schema, c);
    free(c->path);
    free(c->cookie_path);
    memset(c, 0, sizeof(*c));
}

const struct node_method_limit *node_config_method_limit(const struct node_config *c,
                                                         const char *method)
{
    for (size_t i = 0; i < c->rpc.auth.nper_method_limits; i++)
        if (strcmp(c->rpc.auth.per_method_limits[i].method, method) == 0)
            return &c->rpc.auth.per_method_limits[i];
    return NULL;
}
