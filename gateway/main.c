/* cc-gateway: reads one HAProxy's output, stores it, counts relays.
 *
 *   cc-gateway [--config F] --source NAME [options] [-- haproxy ARGS...]
 *   cc-gateway replay [--config F] --source NAME [--write] FILE...
 *
 * Live, it is two processes (supervisor.h, worker.h): this one becomes the
 * supervisor ("cc-gateway: <tier> supervisor" in ps), which runs HAProxy and
 * the worker ("cc-gateway: <tier> worker"). main only parses options, loads
 * the config and wires the modules. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ccgwconf.h"
#include "gateway.h"
#include "log.h"
#include "replay.h"
#include "supervisor.h"
#include "worker.h"

#ifndef CCGW_VERSION
#define CCGW_VERSION "0.2.0"
#endif

/* A segment of the request log is cut after this share of the limit. */
#define SEGMENTS_PER_LIMIT 8

static const char usage[] =
    "usage: cc-gateway [--config FILE] --source NAME [options] [-- haproxy ARGS...]\n"
    "       cc-gateway replay [--config FILE] --source NAME [--write] FILE...\n"
    "(options may come before or after \"replay\")\n"
    "\n"
    "Reads one HAProxy's log output (stdin, or HAProxy run as a child after --),\n"
    "keeps it as the request log (<logs.dir>/<source>/requests.*.log), counts relays.\n"
    "Two processes: a supervisor that runs HAProxy and moves its output into the\n"
    "request log, and a worker that counts, journals and delivers (restarted when\n"
    "it dies; the journal's position makes the recount exact).\n"
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
    "Signals: TERM/INT stop after counting everything, USR1 flushes now, USR2/HUP go\n"
    "to HAProxy.\n";

struct options {
    const char *config, *source, *listen;
    int restart, no_delivery, write, replay, worker;
    int inherit_fd;
    int64_t restarts;
    size_t pipe_size, chunk;
    char **rest; /* child command, or replay files */
    int nrest;
};

enum {
    OPT_RESTART = 256,
    OPT_PIPE_SIZE,
    OPT_NO_DELIVERY,
    OPT_WRITE,
    OPT_CHUNK,
    OPT_WORKER,
    OPT_INHERIT_FD,
    OPT_RESTARTS
};

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
        /* internal: how the supervisor starts the worker */
        {"worker", no_argument, NULL, OPT_WORKER},
        {"inherit-fd", required_argument, NULL, OPT_INHERIT_FD},
        {"restarts", required_argument, NULL, OPT_RESTARTS},
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
        case OPT_WORKER:
            o->worker = 1;
            break;
        case OPT_INHERIT_FD:
            o->inherit_fd = atoi(optarg);
            break;
        case OPT_RESTARTS:
            o->restarts = atoll(optarg);
            break;
        case OPT_PIPE_SIZE:
        case OPT_CHUNK:
            if (yamlcfg_parse_size(optarg, &size) < 0 || size <= 0) {
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

/* The supervisor: re-run ourselves once so that ps shows the role (argv[0]
 * "cc-gateway: <tier> supervisor"), then supervise. */
static int run_supervisor(const struct ccgwconf *conf, const struct options *o, int argc,
                          char **argv)
{
    char self[PATH_MAX], title[128], state_dir[PATH_MAX], seg_dir[PATH_MAX], cfg[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) {
        fprintf(stderr, "cc-gateway: /proc/self/exe: %s\n", strerror(errno));
        return 1;
    }
    self[n] = '\0';
    char *del = strstr(self, " (deleted)");
    if (del)
        *del = '\0';
    snprintf(title, sizeof(title), "cc-gateway: %s supervisor", o->source);
    if (strcmp(argv[0], title) != 0) {
        char **nargv = calloc((size_t)argc + 1, sizeof(char *));
        if (nargv) {
            memcpy(nargv, argv, (size_t)argc * sizeof(char *));
            nargv[0] = title;
            execv(self, nargv);
            free(nargv);
        }
        /* not fatal: the title is for people */
    }
    const struct ccgwconf_tier *tier = ccgwconf_tier_find(conf, o->source);
    if (!tier) {
        fprintf(stderr, "cc-gateway: %s: no tier named \"%s\"\n", conf->path, o->source);
        return 2;
    }
    const char *data_dir = conf->data_dir ? conf->data_dir : "run/data";
    snprintf(state_dir, sizeof(state_dir), "%s/%s", data_dir, tier->name);
    snprintf(seg_dir, sizeof(seg_dir), "%s/%s", conf->logs.dir, tier->name);
    if (!realpath(conf->path, cfg))
        snprintf(cfg, sizeof(cfg), "%s", conf->path);
    char wtitle[128];
    snprintf(wtitle, sizeof(wtitle), "cc-gateway: %s worker", tier->name);
    /* title --worker --inherit-fd FD --restarts N --config F --source S [--listen L]
     * [--no-delivery] */
    char *wargv[16] = {wtitle, "--worker", "--inherit-fd",    NULL, "--restarts", NULL, "--config",
                       cfg,    "--source", (char *)tier->name};
    int k = 10;
    if (o->listen) {
        wargv[k++] = "--listen";
        wargv[k++] = (char *)o->listen;
    }
    if (o->no_delivery)
        wargv[k++] = "--no-delivery";
    wargv[k] = NULL;
    struct supervisor_options so = {
        .source = tier->name,
        .child_argv = o->nrest > 0 ? o->rest : NULL,
        .restart = o->restart,
        .pipe_size = o->pipe_size,
        .segments_dir = seg_dir,
        .segment_max_bytes = conf->logs.request_log_max_bytes / SEGMENTS_PER_LIMIT,
        .state_dir = state_dir,
        .stats_socket = tier->stats_socket,
        .worker_path = self,
        .worker_argv = wargv,
        .worker_fd_arg = 3,
        .worker_fatal_status = WORKER_EXIT_FATAL,
    };
    LOG_EVENT(LOG_INFO, "supervisor_started", NULL, NULL, LF_STR("source", tier->name),
              LF_STR("segments", seg_dir), LF_BOOL("child", so.child_argv != NULL));
    return supervisor_run(&so);
}

static int run_worker(const struct ccgwconf *conf, const struct options *o)
{
    struct worker_options wo = {.source = o->source,
                                .listen = o->listen,
                                .no_delivery = o->no_delivery,
                                .drain_fd = o->inherit_fd > 0 ? o->inherit_fd : -1,
                                .restarts = o->restarts};
    return worker_run(conf, &wo);
}

static int run_replay(const struct ccgwconf *conf, const struct options *o)
{
    struct gateway gw;
    char err[512];
    int ret = 1;
    json_t *summary = NULL;

    struct gateway_open_options go = {.source = o->source, .live = 0};
    if (gateway_open(&gw, conf, &go) < 0)
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
        if (gateway_delivery_begin(&gw, NULL, NULL, NULL) < 0 || gateway_delivery_end(&gw) < 0)
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
    struct ccgwconf conf;
    struct yamlcfg_error cerr;
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
    if (ccgwconf_load(path, &conf, &cerr) < 0) {
        fprintf(stderr, "cc-gateway: %s\n", cerr.text);
        return 2;
    }
    log_setup("cc-gateway", conf.logs.format, conf.logs.level, 2);
    if (o.replay)
        ret = run_replay(&conf, &o);
    else if (o.worker)
        ret = run_worker(&conf, &o);
    else
        ret = run_supervisor(&conf, &o, argc, argv);
    ccgwconf_free(&conf);
    return ret;
}
