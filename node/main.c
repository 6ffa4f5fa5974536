/* cc-node: options, config, wiring, and the housekeeping loop (warm-up,
 * storage checks, timed block production, signals). */
#include <errno.h>
#include <getopt.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "chain.h"
#include "config.h"
#include "cookie.h"
#include "disk.h"
#include "httpd.h"
#include "log.h"
#include "mempool.h"
#include "metrics.h"
#include "peermgr.h"
#include "ratelimit.h"
#include "rpc.h"
#include "server.h"
#include "store.h"
#include "sys.h"

/* Lines the log writer's queue holds (512 bytes each): about 200 ms of
 * request lines at 40,000 requests/s. */
#define NODE_LOG_QUEUE_LINES 8192

static void usage(FILE *f)
{
    fprintf(f, "usage: cc-node --config FILE [--check]\n"
               "  -c, --config FILE  YAML config (see deploy/node.example.yaml)\n"
               "      --check        validate the config and exit\n"
               "  -h, --help         this text\n"
               "  -V, --version      print the version\n");
}

/* Idle keep-alive connections each hold a descriptor: allow as many as the
 * hard limit permits. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int method_names(const struct node_config *cfg, const char ***names, size_t *n)
{
    const struct node_method *m = node_rpc_methods(cfg);
    size_t count = 0;
    while (m[count].name)
        count++;
    *names = calloc(count ? count : 1, sizeof(**names));
    if (!*names)
        return -1;
    for (size_t i = 0; i < count; i++)
        (*names)[i] = m[i].name;
    *n = count;
    return 0;
}

/* Housekeeping until SIGINT/SIGTERM: returns the signal number. */
static int run_loop(struct node *n, const sigset_t *sigs)
{
    const struct node_config *cfg = n->cfg;
    double ready_at = sys_mono_s() + (double)cfg->node.warmup_secs;
    double next_block = sys_mono_s() + (double)cfg->node.block_interval_secs;

    for (;;) {
        struct timespec tick = {0, 250 * 1000 * 1000};
        int sig = sigtimedwait(sigs, NULL, &tick);
        if (sig > 0)
            return sig;
        double now = sys_mono_s();
        if (atomic_load(&n->phase) == NODE_PHASE_WARMUP && now >= ready_at) {
            atomic_store(&n->phase, NODE_PHASE_READY);
            LOG_EVENT(LOG_INFO, "node_ready", NULL, "warm-up over, serving RPC",
                      LF_INT("height", node_chain_height(n->chain)));
        }
        char why[512];
        int ok = node_chain_storage_ok(n->chain); /* probed by the disk monitor */
        /* No timed blocks while behind the peers: they would fork the chain. */
        if (cfg->node.block_interval_secs > 0 && now >= next_block && ok &&
            atomic_load(&n->phase) == NODE_PHASE_READY && !node_peermgr_syncing(n->peers)) {
            static const uint8_t op_true[] = {0x51};
            next_block = now + (double)cfg->node.block_interval_secs;
            if (node_chain_generate(n->chain, n->mempool, op_true, sizeof(op_true), 1, NULL, why,
                                    sizeof(why)) != 0)
                log_msg(LOG_ERROR, "block_failed", "%s", why);
            else
                LOG_EVENT(LOG_INFO, "block_produced", NULL, NULL,
                          LF_INT("height", node_chain_height(n->chain)));
        }
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"check", no_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    struct node_config cfg;
    struct yamlcfg_error cerr;
    struct node n;
    struct httpd *http = NULL;
    const char *config_path = NULL;
    const char **names = NULL;
    size_t nnames = 0;
    char err[512];
    int check_only = 0, c, rc = EXIT_FAILURE, cookie_made = 0;
    sigset_t sigs;

    memset(&n, 0, sizeof(n));
    while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_path = optarg;
            break;
        case 'k':
            check_only = 1;
            break;
        case 'h':
            usage(stdout);
            return EXIT_SUCCESS;
        case 'V':
            printf("cc-node %s\n", NODE_VERSION);
            return EXIT_SUCCESS;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!config_path || optind != argc) {
        usage(stderr);
        fprintf(stderr, "cc-node: --config FILE is required\n");
        return 2;
    }
    if (node_config_load(config_path, &cfg, &cerr) != 0) {
        fprintf(stderr, "cc-node: %s\n", cerr.text);
        return EXIT_FAILURE;
    }
    if (check_only) {
        printf("cc-node: %s: ok\n", config_path);
        node_config_free(&cfg);
        return EXIT_SUCCESS;
    }
    log_setup("cc-node", (enum log_format)cfg.logging.format, (enum log_level)cfg.logging.level, 2);
    raise_fd_limit();

    n.cfg = &cfg;
    n.start_time = (int64_t)time(NULL);
    atomic_store(&n.phase, NODE_PHASE_LOADING);
    if (RAND_bytes((unsigned char *)&n.request_seed, sizeof(n.request_seed)) != 1)
        n.request_seed = (uint64_t)time(NULL);
    n.mempool = node_mempool_new((size_t)cfg.node.max_mempool_bytes);
    if (method_names(&cfg, &names, &nnames) == 0)
        n.metrics = node_metrics_new(names, nnames);
    if (cfg.rpc.auth.rate_limit_enabled)
        n.rl = node_ratelimit_new((size_t)cfg.rpc.auth.rate_limit_max_keys);
    if (!n.mempool || !n.metrics || (cfg.rpc.auth.rate_limit_enabled && !n.rl)) {
        log_msg(LOG_ERROR, "startup_failed", "out of memory");
        goto out;
    }
    if (node_store_mkdirs(cfg.node.data_dir, err, sizeof(err)) != 0) {
        log_msg(LOG_ERROR, "startup_failed", "data_dir: %s", err);
        goto out;
    }
    if (cfg.cookie_path) {
        if (node_cookie_create(&n, cfg.cookie_path, err, sizeof(err)) != 0) {
            log_msg(LOG_ERROR, "startup_failed", "%s", err);
            goto out;
        }
        cookie_made = 1;
    }

    /* Signals are taken synchronously by run_loop; threads inherit the mask. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Request lines go through the writer thread: no handler waits on the
     * log mutex or a write(). Without it they are written directly. A node
     * killed with -9 loses the lines still queued (about its last 5 ms). */
    if (log_async_start(NODE_LOG_QUEUE_LINES) != 0)
        log_msg(LOG_WARN, "log_sync", "no log writer thread: lines are written directly");

    struct httpd_options hopts = {
        .listen = cfg.node.listen,
        .max_body_bytes = (size_t)cfg.rpc.max_body_bytes,
        .threads = (unsigned)cfg.node.threads,
        .connection_limit = (unsigned)cfg.rpc.max_connections,
        .connection_timeout = (unsigned)cfg.rpc.idle_timeout_secs,
    };
    http = httpd_start(&hopts, node_server_handle, &n, err, sizeof(err));
    if (!http) {
        log_msg(LOG_ERROR, "startup_failed", "listen %s: %s", cfg.node.listen, err);
        goto out;
    }
    LOG_EVENT(LOG_INFO, "node_start", NULL, "serving; loading the chain",
              LF_STR("listen", cfg.node.listen), LF_INT("port", httpd_port(http)),
              LF_STR("flavour", cfg.node.flavour == NODE_FLAVOUR_EVM ? "evm" : "bitcoin"),
              LF_STR("data_dir", cfg.node.data_dir), LF_STR("version", NODE_VERSION));

    n.chain =
        node_chain_open(cfg.node.data_dir, cfg.node.flavour == NODE_FLAVOUR_EVM, err, sizeof(err));
    if (!n.chain) {
        atomic_store(&n.phase, NODE_PHASE_FAILED);
        log_msg(LOG_ERROR, "startup_failed", "chain: %s", err);
        goto out;
    }
    n.disk = node_disk_start(n.chain, &cfg, err, sizeof(err));
    if (!n.disk) {
        atomic_store(&n.phase, NODE_PHASE_FAILED);
        log_msg(LOG_ERROR, "startup_failed", "%s", err);
        goto out;
    }
    n.peers = node_peermgr_start(&n, err, sizeof(err));
    if (!n.peers) {
        atomic_store(&n.phase, NODE_PHASE_FAILED);
        log_msg(LOG_ERROR, "startup_failed", "peers: %s", err);
        goto out;
    }
    atomic_store(&n.phase, NODE_PHASE_WARMUP);
    LOG_EVENT(LOG_INFO, "chain_loaded", NULL, NULL, LF_INT("height", node_chain_height(n.chain)),
              LF_INT("utxos", node_chain_utxo_count(n.chain)),
              LF_INT("warmup_secs", cfg.node.warmup_secs));

    int sig = run_loop(&n, &sigs);
    log_msg(LOG_INFO, "node_stop", "signal %d, shutting down", sig);
    rc = EXIT_SUCCESS;
out:
    httpd_stop(http);
    node_peermgr_stop(n.peers);
    if (cookie_made)
        node_cookie_remove(cfg.cookie_path);
    node_disk_stop(n.disk);
    node_chain_close(n.chain);
    node_ratelimit_free(n.rl);
    node_metrics_free(n.metrics);
    node_mempool_free(n.mempool);
    free(names);
    log_async_stop();
    node_config_free(&cfg);
    return rc;
}
