/* cc-node configuration: one YAML file (lib/yamlcfg.h schema tables) with the
 * sections node, network, storage, rpc (with rpc.auth) and logging. See
 * deploy/node.example.yaml for a commented example. network.* and storage.*
 * are parsed and validated now; peers and pruning use them. */
#ifndef CCNODE_CONFIG_H
#define CCNODE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "yamlcfg.h"

enum node_flavour { NODE_FLAVOUR_BITCOIN = 0, NODE_FLAVOUR_EVM };
enum node_pruning {
    NODE_PRUNE_DISABLED = 0,
    NODE_PRUNE_NORMAL,
    NODE_PRUNE_AGGRESSIVE,
    NODE_PRUNE_CUSTOM
};

struct node_method_limit {
    char *method;
    double rate;  /* tokens per second */
    double burst; /* bucket capacity */
};

struct node_config {
    char *path; /* file it was loaded from */
    struct {
        char *name;
        int flavour; /* enum node_flavour */
        int64_t chain_id;
        char *data_dir;
        char *listen;                /* "127.0.0.1:18332" */
        int64_t block_interval_secs; /* 0: blocks only on demand */
        int64_t warmup_secs;         /* extra time in RPC warm-up after loading */
        int64_t threads;             /* HTTP worker threads */
        int64_t max_mempool_bytes;
    } node;
    struct {
        char *listen;
        char **peers;
        size_t npeers;
        int64_t max_peers;
        int reconnect_enabled;
        int64_t reconnect_max_retries;
        double reconnect_initial_delay_secs; /* fractional: tests use 0.2 s */
        double reconnect_max_delay_secs;
    } network;
    struct {
        int pruning_mode; /* enum node_pruning */
        double pruning_threshold_gb;
        double pruning_target_gb;
        int64_t min_blocks_kept;
        double check_interval_secs; /* disk monitor period */
        int64_t min_free_bytes;     /* below this free, storage is "no space" */
    } storage;
    struct {
        int metrics_enabled;
        int health_checks_enabled;
        int64_t max_body_bytes;
        int64_t max_connections;
        int64_t idle_timeout_secs;
        struct {
            char *user;
            char *password;
            char *cookie_file; /* relative to node.data_dir unless absolute */
            int rate_limit_enabled;
            double rate_limit_rate;
            double rate_limit_burst;
            int64_t rate_limit_max_keys; /* bound of the bucket table */
            struct node_method_limit *per_method_limits;
            size_t nper_method_limits;
        } auth;
    } rpc;
    struct {
        int format; /* enum log_format */
        int level;  /* enum log_level */
    } logging;
    char *cookie_path; /* derived: absolute or data_dir-relative cookie file, or NULL */
};

/* Load `path`, apply defaults and validate (listen addresses, pruning sizes,
 * credentials given in pairs, unique per-method limits). 0, or -1 with `err`
 * filled ("file:line:col: path: message"). Free with node_config_free(). */
int node_config_load(const char *path, struct node_config *out, struct yamlcfg_error *err);

/* Same from memory; `name` stands for the file name in messages. */
int node_config_load_string(const char *name, const char *text, size_t len, struct node_config *out,
                            struct yamlcfg_error *err);

/* Release everything node_config_load() allocated. */
void node_config_free(struct node_config *c);

/* The per-method override for `method`, or NULL. */
const struct node_method_limit *node_config_method_limit(const struct node_config *c,
                                                         const char *method);

#endif
