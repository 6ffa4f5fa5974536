/* Routing, health endpoints and the /metrics page. */
#include "server.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chain.h"
#include "codec.h"
#include "disk.h"
#include "log.h"
#include "mempool.h"
#include "metrics.h"
#include "peerinfo.h"
#include "peermgr.h"
#include "prune.h"
#include "rpc.h"

static json_t *tip_hash_json(struct node *n, struct node_block_meta *b)
{
    char hex[67];
    if (n->cfg->node.flavour == NODE_FLAVOUR_EVM) {
        hex[0] = '0';
        hex[1] = 'x';
        node_codec_hex_encode(b->hash, 32, 0, hex + 2);
    } else {
        node_codec_hex_encode(b->hash, 32, 1, hex);
    }
    return json_string(hex);
}

/* Why storage is unusable, as /health/ready's reason ("storage: no space"). */
static const char *storage_reason(const struct node *n)
{
    const char *r = n->chain ? node_chain_storage_reason(n->chain) : NULL;
    return r ? r : "storage: unavailable";
}

/* The "storage" object of /health/detailed: availability and its reason,
 * own size, the file system's free and total bytes, and pruning. */
static json_t *storage_json(struct node *n, int chain_ok, int storage_ok)
{
    static const char *const modes[] = {"disabled", "normal", "aggressive", "custom"};
    struct node_disk_stats ds = {0};
    struct node_prune_limits l;
    struct node_chain_stats *cs = chain_ok ? node_chain_stats(n->chain) : NULL;
    int mode = n->cfg->storage.pruning_mode;

    if (n->disk)
        node_disk_stats_get(n->disk, &ds);
    node_prune_limits_of(n->cfg, &l);
    return json_pack("{s:b,s:s?,s:I,s:I,s:I,s:{s:s,s:I,s:I,s:I,s:I,s:I,s:I}}", "available",
                     storage_ok, "reason", storage_ok ? NULL : storage_reason(n), "size_bytes",
                     (json_int_t)(chain_ok ? node_chain_size_bytes(n->chain) : 0),
                     "disk_free_bytes", (json_int_t)ds.free_bytes, "disk_total_bytes",
                     (json_int_t)ds.total_bytes, "pruning", "mode",
                     modes[mode >= 0 && mode < 4 ? mode : 0], "prune_height",
                     (json_int_t)(chain_ok ? node_chain_prune_height(n->chain) : 0),
                     "threshold_bytes", (json_int_t)(l.enabled ? l.threshold : 0), "target_bytes",
                     (json_int_t)(l.enabled ? l.target : 0), "min_blocks_kept", (json_int_t)l.keep,
                     "runs", (json_int_t)(cs ? atomic_load(&cs->prune_runs) : 0), "pruned_blocks",
                     (json_int_t)(cs ? atomic_load(&cs->pruned_blocks) : 0));
}

/* Fill `status` (HTTP code) and return the JSON body of a health endpoint
 * ("", "live", "ready", "detailed"), or NULL out of memory / unknown. */
static json_t *health_report(struct node *n, const char *which, int *status)
{
    int phase = atomic_load(&n->phase);
    int chain_ok = node_has_chain(n);
    int storage_ok = chain_ok && node_chain_storage_ok(n->chain);
    int syncing = node_peermgr_syncing(n->peers);
    int ready = phase == NODE_PHASE_READY && storage_ok && !syncing;
    /* "starting" while the chain loads or warms up; "unhealthy" once storage
     * fails or the chain could not be opened. */
    const char *state = ready                                                     ? "healthy"
                        : phase == NODE_PHASE_FAILED || (chain_ok && !storage_ok) ? "unhealthy"
                        : phase == NODE_PHASE_READY                               ? "syncing"
                                                                                  : "starting";
    /* The first thing that keeps the node out of rotation. */
    const char *reason = ready                        ? NULL
                         : phase == NODE_PHASE_FAILED ? "chain_failed"
                         : !chain_ok                  ? "loading"
                         : !storage_ok                ? storage_reason(n)
                         : phase != NODE_PHASE_READY  ? "warming_up"
                                                      : "syncing";

    *status = ready ? 200 : 503;
    if (strcmp(which, "") == 0)
        return json_pack("{s:s,s:I}", "status", state, "timestamp", (json_int_t)time(NULL));
    if (strcmp(which, "live") == 0) {
        *status = 200;
        return json_pack("{s:s,s:I}", "status", "alive", "uptime_seconds",
                         (json_int_t)node_uptime(n));
    }
    if (strcmp(which, "ready") == 0)
        return json_pack("{s:s,s:b,s:b,s:b,s:b,s:s*}", "status", ready ? "ready" : "not_ready",
                         "chain_initialized", chain_ok, "storage_available", storage_ok,
                         "warming_up", phase != NODE_PHASE_READY, "syncing", syncing, "reason",
                         reason);
    if (strcmp(which, "detailed") != 0)
        return NULL;

    struct node_block_meta tip;
    size_t mp_count, mp_bytes;
    json_t *chain;
    int have_tip = chain_ok && node_chain_get(n->chain, node_chain_height(n->chain), &tip) == 0;
    if (have_tip)
        chain =
            json_pack("{s:b,s:I,s:o}", "initialized", 1, "height",
                      (json_int_t)node_chain_height(n->chain), "tip_hash", tip_hash_json(n, &tip));
    else
        chain = json_pack("{s:b,s:n,s:n}", "initialized", 0, "height", "tip_hash");
    size_t in, out;
    node_peermgr_counts(n->peers, &in, &out);
    node_mempool_stats(n->mempool, &mp_count, &mp_bytes);
    return json_pack(
        "{s:s,s:I,s:I,s:s,s:s,s:o,s:o,s:{s:I,s:I},s:o,s:{s:b,s:I},"
        "s:{s:I,s:I}}",
        "status", state, "timestamp", (json_int_t)time(NULL), "uptime_seconds",
        (json_int_t)node_uptime(n), "version", NODE_VERSION, "flavour",
        n->cfg->node.flavour == NODE_FLAVOUR_EVM ? "evm" : "bitcoin", "chain", chain, "storage",
        storage_json(n, chain_ok, storage_ok), "network", "peers_connected", (json_int_t)(in + out),
        "peers_max", (json_int_t)n->cfg->network.max_peers, "peers", node_peerinfo_health(n->peers),
        "rpc", "enabled", 1, "requests_processed", (json_int_t)node_metrics_rpc_total(n->metrics),
        "mempool", "transactions", (json_int_t)mp_count, "size_bytes", (json_int_t)mp_bytes);
}

static int serve_health(struct node *n, const char *which, struct httpd_response *resp)
{
    int status;
    json_t *body = health_report(n, which, &status);
    if (!body)
        return httpd_reply_error(resp, 404, "not found");
    int rc = httpd_reply_json(resp, status, body);
    json_decref(body);
    return rc;
}

#define FAM(name, type, help) (rc |= prom_family(p, name, type, help))
#define SAMPLE(name, labels, v) (rc |= prom_sample(p, name, labels, (double)(v)))

/* The /metrics page: the node's own families, then each module's part in
 * turn. A malloc'd NUL-terminated string, or NULL out of memory. */
static char *metrics_page(struct node *n, size_t *len)
{
    prom_t *p = prom_new();
    const char *text;
    char *out = NULL;
    int rc = 0;
    int chain_open = node_has_chain(n);

    if (!p)
        return NULL;
    FAM("ccnode_info", PROM_GAUGE, "Build and flavour of this node (always 1).");
    {
        const char *l[] = {"version", NODE_VERSION,
                           "flavour", n->cfg->node.flavour == NODE_FLAVOUR_EVM ? "evm" : "bitcoin",
                           "name",    n->cfg->node.name,
                           NULL};
        SAMPLE("ccnode_info", l, 1);
    }
    FAM("ccnode_start_time_seconds", PROM_GAUGE, "Start time of the process since the epoch.");
    SAMPLE("ccnode_start_time_seconds", NULL, n->start_time);
    FAM("ccnode_ready", PROM_GAUGE, "1 when the node serves RPC (chain loaded, warm-up over).");
    SAMPLE("ccnode_ready", NULL, atomic_load(&n->phase) == NODE_PHASE_READY);

    FAM("ccnode_blocks_processed_total", PROM_COUNTER, "Blocks validated and connected.");
    SAMPLE("ccnode_blocks_processed_total", NULL,
           chain_open ? atomic_load(&node_chain_stats(n->chain)->blocks_processed) : 0);
    FAM("ccnode_block_validation_seconds", PROM_HISTOGRAM,
        "Time to validate and connect one block.");
    if (chain_open) {
        rc |= prom_histogram_write(p, "ccnode_block_validation_seconds", NULL,
                                   &node_chain_stats(n->chain)->validation_seconds);
    } else {
        struct prom_histogram empty;
        prom_histogram_init(&empty, PROM_LATENCY_BOUNDS, PROM_LATENCY_NBOUNDS);
        rc |= prom_histogram_write(p, "ccnode_block_validation_seconds", NULL, &empty);
    }
    FAM("ccnode_chain_height", PROM_GAUGE, "Height of the best block.");
    SAMPLE("ccnode_chain_height", NULL, chain_open ? node_chain_height(n->chain) : -1);

    rc |= node_peerinfo_metrics(n->peers, p);
    FAM("ccnode_peers_max", PROM_GAUGE, "Configured maximum number of peers.");
    SAMPLE("ccnode_peers_max", NULL, n->cfg->network.max_peers);
    rc |= node_metrics_write_network(n->metrics, p);

    FAM("ccnode_database_size_bytes", PROM_GAUGE,
        "Bytes of block files, headers index and chainstate (as ccnode_storage_bytes).");
    SAMPLE("ccnode_database_size_bytes", NULL, chain_open ? node_chain_size_bytes(n->chain) : 0);
    FAM("ccnode_utxos", PROM_GAUGE, "Unspent transaction outputs in the UTXO set.");
    SAMPLE("ccnode_utxos", NULL, chain_open ? node_chain_utxo_count(n->chain) : 0);
    FAM("ccnode_storage_available", PROM_GAUGE, "1 when the data dir accepts durable writes.");
    SAMPLE("ccnode_storage_available", NULL, chain_open && node_chain_storage_ok(n->chain));
    rc |= node_disk_metrics(n->disk, chain_open ? n->chain : NULL, n->cfg, p);

    rc |= node_mempool_metrics(n->mempool, p);
    rc |= node_metrics_write_rpc(n->metrics, p);
    FAM("ccnode_log_dropped_lines_total", PROM_COUNTER,
        "Log lines dropped because the log writer's queue was full.");
    SAMPLE("ccnode_log_dropped_lines_total", NULL, log_dropped());
    text = rc == 0 ? prom_text(p, len) : NULL;
    if (text) {
        out = malloc(*len + 1);
        if (out) {
            memcpy(out, text, *len);
            out[*len] = '\0';
        }
    }
    prom_free(p);
    return out;
}

static int serve_metrics(struct node *n, struct httpd_response *resp)
{
    size_t len;
    char *text = metrics_page(n, &len);
    if (!text)
        return -1;
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    resp->body = text;
    resp->body_len = len;
    return 0;
}

int node_server_handle(void *ctx, const struct httpd_request *req, struct httpd_response *resp)
{
    struct node *n = ctx;
    const char *path = req->path;
    int rc;

    if (strcmp(path, "/") == 0 || strncmp(path, "/wallet/", 8) == 0)
        return node_rpc_handle(n, req, resp);
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        rc = httpd_reply_error(resp, 405, "method not allowed");
    } else if (strcmp(path, "/metrics") == 0 && n->cfg->rpc.metrics_enabled) {
        rc = serve_metrics(n, resp);
    } else if (n->cfg->rpc.health_checks_enabled && strcmp(path, "/health") == 0) {
        rc = serve_health(n, "", resp);
    } else if (n->cfg->rpc.health_checks_enabled && strncmp(path, "/health/", 8) == 0) {
        rc = serve_health(n, path + 8, resp);
    } else {
        rc = httpd_reply_error(resp, 404, "not found");
    }
    node_metrics_http(n->metrics, rc == 0 ? resp->status : 500);
    return rc;
}
