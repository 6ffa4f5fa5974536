/* cc-gateway: reads one HAProxy's output, stores it, counts relays.
 *
 *   cc-gateway [--config F] --source NAME [options] [-- haproxy ARGS...]
 *   cc-gateway replay [--config F] --source NAME [--write] FILE...
 *
 * main only parses options, loads the config and wires the modules. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "delivery.h"
#include "gateway.h"
#include "log.h"
#include "metrics.h"
#include "replay.h"
#include "source.h"

#ifndef CCGW_VERSION
#define CCGW_VERSION "0.1.0"
#endif

#define EVENTS_QUEUE_MAX 10000
#define STATSOCK_INTERVAL_MS 1000
#define DELIVERY_STOP_TIMEOUT_MS 20000

static const char usage[] =
    "usage: cc-gateway [--config FILE] --source NAME [options] [-- haproxy ARGS...]\n"
    "       cc-gateway replay [--config FILE] --source NAME [--write] FILE...\n"
    "(options may come before or after \"replay\")\n"
    "\n"
    "Reads one HAProxy's log output (stdin, or HAProxy run as a child after --),\n"
    "stores notices and request lines locally and counts relays.\n"
    "\n"
    "  -c, --config FILE     deployment config (default $CCGW_CONFIG)\n"
    "  -s, --source NAME     the tier this HAProxy is (edge, http0, http1)\n"
    "  -l, --listen ADDR     /metrics and /health address (default: the tier's\n"
    "                        gateway_listen; \"none\" disables it)\n"
    "      --restart         restart a child HAProxy that exits on its own\n"
    "                        (default: stop and exit non-zero)\n"
    "      --pipe-size BYTES pipe buffer towards HAProxy (default 16MiB, capped by\n"
    "                        /proc/sys/fs/pipe-max-size without CAP_SYS_RESOURCE)\n"
    "      --no-delivery     count in memory only (no journal, Redis, PostgreSQL)\n"
    "  -h, --help            this text\n"
    "  -V, --version         version\n"
    "replay:\n"
    "      --write           load the counts like live ones (journal, PostgreSQL)\n"
    "      --chunk BYTES     read size (tests)\n"
    "Prints {\"lines\",\"relays\",\"non_relays\",\"by_chain\",\"by_bucket\",...} as JSON.\n"
    "Signals: TERM/INT stop after draining, USR1 flushes now, USR2/HUP go to HAProxy.\n";

struct options {
    const char *config, *source, *listen;
    int restart, no_delivery, write, replay;
    size_t pipe_size, chunk;
    char **rest; /* child command, or replay files */
    int nrest;
};

enum { OPT_RESTART = 256, OPT_PIPE_SIZE, OPT_NO_DELIVERY, OPT_WRITE, OPT_CHUNK };

/* 0 ok, 1 exit 0 (help/version), -1 usage error (message printed). */
static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"source", required_argument, NULL, 's'},
        {"listen", required_argument, NULL, 'l'},
        {"restart", no_argument, NULL, OPT_RESTART},
        {"pipe-size", required_argument, NULL, OPT_PIPE_SIZE},
        {"no-delivery", no_argument, NULL, OPT_NO_DELIVERY},
        {"write", no_argument, NULL, OPT_WRITE},
        {"chunk", required_argument, NULL, OPT_CHUNK},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int64_t size;
    int c;

    optind = 1;
    for (;;) {
        c = getopt_long(argc, argv, "+c:s:l:hV", longopts, NULL);
        /* "replay" may come after options too (cc-gateway --config F replay
         * ...); options may follow it. A "replay" after "--" is a command
         * for the child. */
        if (c == -1 && !o->replay && optind < argc && strcmp(argv[optind], "replay") == 0 &&
            strcmp(argv[optind - 1], "--") != 0) {
            o->replay = 1;
            argc -= optind;
            argv += optind;
            optind = 1;
            continue;
        }
        if (c == -1)
            break;
        switch (c) {
        case 'c':
            o->config = optarg;
            break;
        case 's':
            o->source = optarg;
            break;
        case 'l':
            o->listen = optarg;
            break;
        case OPT_RESTART:
            o->restart = 1;
            break;
        case OPT_NO_DELIVERY:
            o->no_delivery = 1;
            break;
        case OPT_WRITE:
            o->write = 1;
            break;
        case OPT_PIPE_SIZE:
        case OPT_CHUNK:
            if (cfg_parse_size(optarg, &size) < 0 || size <= 0) {
                fprintf(stderr, "cc-gateway: bad size \"%s\"\n", optarg);
                return -1;
            }
            *(c == OPT_CHUNK ? &o->chunk : &o->pipe_size) = (size_t)size;
            break;
        case 'h':
            fputs(usage, stdout);
            return 1;
        case 'V':
            printf("cc-gateway %s\n", CCGW_VERSION);
            return 1;
        default:
            fputs(usage, stderr);
            return -1;
        }
    }
    o->rest = argv + optind;
    o->nrest = argc - optind;
    if (!o->source) {
        fprintf(stderr, "cc-gateway: --source NAME is required\n%s", usage);
        return -1;
    }
    if (o->replay && o->nrest == 0) {
        fprintf(stderr, "cc-gateway replay: no FILE given\n");
        return -1;
    }
    if (!o->replay && o->write) {
        fprintf(stderr, "cc-gateway: --write is a replay option\n");
        return -1;
    }
    return 0;
}

static int event_to_delivery(void *ctx, int64_t ts_ms, int severity, const char *message)
{
    return delivery_event_push(ctx, ts_ms, severity, message);
}

static void flush_now(void *ctx)
{
    delivery_flush_request(ctx);
}

/* Journal, Redis and PostgreSQL for the counter; notices go to
 * gateway_events through it. 0 or -1 (logged). */
static int delivery_begin(struct gateway *gw)
{
    char err[512];
    struct delivery_options d = {
        .conf = gw->conf, .source = gw->source, .counter = gw->counter, .counter_lock = &gw->lock};
    gw->delivery = delivery_start(&d, err, sizeof(err));
    if (!gw->delivery) {
        LOG_EVENT(LOG_ERROR, "delivery_failed", NULL, err, LF_STR("source", gw->source));
        return -1;
    }
    gw->delivery_stats_fn = delivery_stats;
    if (gw->events)
        events_set_sink(gw->events, event_to_delivery, gw->delivery);
    return 0;
}

static int delivery_end(struct gateway *gw)
{
    if (!gw->delivery)
        return 0;
    if (gw->events)
        events_set_sink(gw->events, NULL, NULL);
    int rc = delivery_stop(gw->delivery, DELIVERY_STOP_TIMEOUT_MS);
    gw->delivery = NULL;
    if (rc < 0)
        LOG_EVENT(LOG_WARN, "delivery_incomplete", NULL,
                  "some counts stay in the journal for the next start",
                  LF_STR("source", gw->source));
    return rc;
}

static void gateway_close(struct gateway *gw)
{
    statsock_stop(gw->statsock);
    metrics_stop(gw);
    ingest_destroy(&gw->ingest);
    reqlog_close(gw->reqlog);
    events_close(gw->events);
    counter_free(gw->counter);
    relay_table_free(gw->table);
    pthread_mutex_destroy(&gw->lock);
}

/* Everything but delivery and the source. `live`: request log, events file,
 * metrics and the stats socket poller too. 0 or -1 (logged). */
static int gateway_open(struct gateway *gw, const struct conf *conf, const struct options *o,
                        int live)
{
    char err[512], path[4096];

    memset(gw, 0, sizeof(*gw));
    pthread_mutex_init(&gw->lock, NULL);
    gw->conf = conf;
    gw->started_ms = gateway_now_ms();
    gw->tier = conf_tier_find(conf, o->source);
    if (!gw->tier) {
        snprintf(err, sizeof(err), "%s: no tier named \"%s\"", conf->path, o->source);
        goto fail;
    }
    gw->source = gw->tier->name;
    gw->counter = counter_new();
    if (!gw->counter) {
        snprintf(err, sizeof(err), "out of memory");
        goto fail;
    }
    if (!(gw->table = relay_table_new(conf, err, sizeof(err))) ||
        ingest_init(&gw->ingest, conf->logs.tz_offset_secs, gw->table, gw->counter,
                    gw->tier->count_relays, err, sizeof(err)) < 0)
        goto fail;
    if (!live)
        return 0;
    snprintf(path, sizeof(path), "%s/%s/requests.log", conf->logs.dir, gw->source);
    if (!(gw->reqlog = reqlog_open(path, conf->logs.request_log_max_bytes, err, sizeof(err))))
        goto fail;
    snprintf(path, sizeof(path), "%s/%s/events.log", conf->logs.dir, gw->source);
    if (!(gw->events = events_open(path, EVENTS_QUEUE_MAX, err, sizeof(err))))
        goto fail;
    gw->ingest.reqlog = gw->reqlog;
    gw->ingest.events = gw->events;
    const char *listen = o->listen ? o->listen : gw->tier->gateway_listen;
    if (listen && strcmp(listen, "none") != 0 && metrics_start(gw, listen, err, sizeof(err)) < 0)
        goto fail;
    if (gw->tier->stats_socket &&
        !(gw->statsock =
              statsock_start(gw->tier->stats_socket, STATSOCK_INTERVAL_MS, err, sizeof(err))))
        goto fail;
    return 0;
fail:
    LOG_EVENT(LOG_ERROR, "start_failed", NULL, err, LF_STR("source", o->source));
    gateway_close(gw);
    return -1;
}

static int run_live(const struct conf *conf, const struct options *o)
{
    struct gateway gw;
    int ret = 1;

    if (gateway_open(&gw, conf, o, 1) < 0)
        return 1;
    if (!o->no_delivery && delivery_begin(&gw) < 0)
        goto out;
    struct source_options so = {.child_argv = o->nrest > 0 ? o->rest : NULL,
                                .restart = o->restart,
                                .pipe_size = o->pipe_size,
                                .on_usr1 = gw.delivery ? flush_now : NULL,
                                .usr1_ctx = gw.delivery};
    LOG_EVENT(LOG_INFO, "started", NULL, "cc-gateway running", LF_STR("source", gw.source),
              LF_BOOL("count_relays", gw.tier->count_relays),
              LF_INT("hosts", relay_table_size(gw.table)),
              LF_INT("metrics_port", gw.httpd ? httpd_port(gw.httpd) : 0));
    ret = source_run(&so, &gw);
    delivery_end(&gw);
    LOG_EVENT(LOG_INFO, "stopped", NULL, "cc-gateway stopped", LF_STR("source", gw.source),
              LF_INT("lines", gw.ingest.stats.lines), LF_INT("relays", gw.ingest.stats.relays),
              LF_INT("exit_status", ret));
out:
    gateway_close(&gw);
    return ret;
}

static int run_replay(const struct conf *conf, const struct options *o)
{
    struct gateway gw;
    char err[512];
    int ret = 1;
    json_t *summary = NULL;

    if (gateway_open(&gw, conf, o, 0) < 0)
        return 1;
    for (int i = 0; i < o->nrest; i++) {
        if (replay_file(&gw.ingest, o->rest[i], o->chunk, err, sizeof(err)) < 0) {
            LOG_EVENT(LOG_ERROR, "replay_failed", NULL, err);
            goto out;
        }
    }
    if (!(summary = replay_summary(&gw.ingest)) || json_dumpf(summary, stdout, JSON_COMPACT) < 0 ||
        fputc('\n', stdout) == EOF || fflush(stdout) == EOF) {
        LOG_EVENT(LOG_ERROR, "replay_failed", NULL, "cannot write the summary");
        goto out;
    }
    if (o->write) {
        if (delivery_begin(&gw) < 0 || delivery_end(&gw) < 0)
            goto out;
    }
    ret = 0;
out:
    json_decref(summary);
    gateway_close(&gw);
    return ret;
}

int main(int argc, char **argv)
{
    struct options o = {0};
    struct conf conf;
    struct cfg_error cerr;
    int ret;

    log_setup("cc-gateway", LOG_FORMAT_TEXT, LOG_INFO, 2);
    int rc = parse_options(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    const char *path = conf_path(o.config);
    if (!path) {
        fprintf(stderr, "cc-gateway: no config: give --config FILE or set CCGW_CONFIG\n");
        return 2;
    }
    memset(&conf, 0, sizeof(conf));
    if (conf_load(path, &conf, &cerr) < 0) {
        fprintf(stderr, "cc-gateway: %s\n", cerr.text);
        return 2;
    }
    log_setup("cc-gateway", conf.logs.format, conf.logs.level, 2);
    ret = o.replay ? run_replay(&conf, &o) : run_live(&conf, &o);
    conf_free(&conf);
    return ret;
}
