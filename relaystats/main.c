/* relaystats: relay queries over any time range, billing exports, API
 * tokens, schema migrations, config sync and the HTTP API + dashboard.
 * main() only parses options, loads the config and calls the modules. */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bucket.h"
#include "ccgwconf.h"
#include "httpd.h"
#include "log.h"
#include "migrate.h"
#include "rsapi.h"
#include "schema_version.h"
#include "rsauth.h"
#include "rsdb.h"
#include "rsexport.h"
#include "rsfold.h"
#include "rsquery.h"
#include "rssync.h"
#include "rstime.h"
#include "rswatch.h"
#include "sys.h"

#ifndef CCGW_VERSION
#define CCGW_VERSION "0.1.0"
#endif

#define EXIT_USAGE 2

static const char usage_text[] =
    "usage: relaystats COMMAND [ARGS] [GLOBAL OPTIONS]\n"
    "\n"
    "global options (before or after COMMAND):\n"
    "  --config FILE                 deployment config (default $CCGW_CONFIG)\n"
    "  --db CONNINFO                 PostgreSQL URL or conninfo (default: postgres.url)\n"
    "  --log-level debug|info|warn|error\n"
    "  --log-format text|json\n"
    "  --help, --version\n"
    "\n"
    "commands:\n"
    "  query   --from T --to T [--step 5m|1h|1d] [--gateway G] [--chain C] [--account A]\n"
    "          [--provider P] [--by gateway,chain,account] [--format table|json|csv]\n"
    "          [--source auto|raw|hourly|daily]\n"
    "  export  --provider P | --all  --from T --to T [--format csv|json]\n"
    "                                relays per account and chain, attributed to the provider\n"
    "                                that owned the account at each relay's bucket; --all: every\n"
    "                                provider, then the relays nobody owned, as (unowned)\n"
    "  migrate [--to-version N]      apply the schema migrations (up to N), then add the\n"
    "                                monthly relay_counts partitions of the next 12 months\n"
    "  sync                          bring providers and account ownership in line with the\n"
    "                                config: a moved account changes owner at the next\n"
    "                                five-minute boundary, its past relays stay with the old one\n"
    "  fold                          fold every gateway's pending relay deltas into relay_counts\n"
    "                                and its rollups (queries count them either way)\n"
    "  token create --provider P | --admin\n"
    "                                print a new API token once (only its SHA-256 is stored)\n"
    "  serve   [--listen ADDR] [--threads N] [--fold-every SECS] [--config-poll SECS]\n"
    "          [--unowned-every SECS]\n"
    "                                HTTP API under /api/v1/, dashboard at /, /metrics, /health;\n"
    "                                folds pending relay deltas at start and every SECS (60,\n"
    "                                0: never); syncs the config at start and when the file\n"
    "                                changes (checked every 2 s); counts unowned relays of the\n"
    "                                last 24 hours for /metrics every 60 s\n"
    "\n"
    "Times are ISO 8601 UTC (2026-11-21T10:20:00Z, 2026-11-21) or relative (now, -24h, -7d).\n"
    "Ranges are half-open [from, to). Absolute times must sit on a step boundary (an error\n"
    "names the nearest ones); relative times are rounded outward (from down, to up).\n"
    "Exit status: 0 ok, 1 failure, 2 bad usage or input.\n";

struct globals {
    const char *config_path;
    const char *db;
    const char *log_level;
    const char *log_format;
    struct ccgwconf conf;
    int have_conf;
};

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "relaystats: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'relaystats --help'.\n");
    return EXIT_USAGE;
}

static int fail_with(const struct rserr *e)
{
    fprintf(stderr, "relaystats: %s\n", e->text);
    return e->status >= 400 && e->status < 500 ? EXIT_USAGE : EXIT_FAILURE;
}

static PGconn *connect_db(struct globals *g, struct rserr *err)
{
    const char *url = g->db ? g->db : (g->have_conf ? g->conf.postgres.url : NULL);

    if (!url) {
        rserr_set(err, 400, "no database: give --db or a config with postgres.url");
        return NULL;
    }
    return rsdb_connect(url, err);
}

/* Option values go to vals[] indexed by the option's `val`; the global
 * options share that index space so that they may follow the command. */
enum {
    O_GATEWAY = 1,
    O_CHAIN,
    O_ACCOUNT,
    O_PROVIDER,
    O_FROM,
    O_TO,
    O_STEP,
    O_BY,
    O_FORMAT,
    O_SOURCE,
    O_ADMIN,
    O_LISTEN,
    O_THREADS,
    O_FOLD_EVERY,
    O_CONFIG_POLL,
    O_UNOWNED_EVERY,
    O_ALL,
    O_TO_VERSION,
    O_CONFIG,
    O_DB,
    O_LOG_LEVEL,
    O_LOG_FORMAT,
    O_HELP,
    O_VERSION,
    O_ARG, /* the positional argument (token create) */
    O_COUNT
};

static const struct option global_opts[] = {{"config", required_argument, NULL, O_CONFIG},
                                            {"db", required_argument, NULL, O_DB},
                                            {"log-level", required_argument, NULL, O_LOG_LEVEL},
                                            {"log-format", required_argument, NULL, O_LOG_FORMAT},
                                            {"help", no_argument, NULL, O_HELP},
                                            {"version", no_argument, NULL, O_VERSION},
                                            {NULL, 0, NULL, 0}};

#define GLOBAL_OPTS (ARRAY_LEN(global_opts) - 1)
#define CMD_OPTS_MAX 16

/* Record global option `ch`; 1 when it was one, 0 otherwise. */
static int set_global(struct globals *g, int ch, const char *arg)
{
    switch (ch) {
    case O_CONFIG:
        g->config_path = arg;
        return 1;
    case O_DB:
        g->db = arg;
        return 1;
    case O_LOG_LEVEL:
        g->log_level = arg;
        return 1;
    case O_LOG_FORMAT:
        g->log_format = arg;
        return 1;
    default:
        return 0;
    }
}

/* Print the --help or --version text for `ch`; 1 when it was one of them. */
static int info_option(int ch)
{
    if (ch == O_HELP)
        fputs(usage_text, stdout);
    else if (ch == O_VERSION)
        printf("relaystats %s (schema %d)\n", CCGW_VERSION, SCHEMA_VERSION);
    return ch == O_HELP || ch == O_VERSION;
}

/* Parse what follows COMMAND (argv[0] is the command): the command's
 * options `opts` (ending with a zero entry) and the global options, in any
 * order. Values go to vals[], globals to g; positional arguments are moved
 * to argv[*first..argc). 0, 1 after --help/--version, or EXIT_USAGE. */
static int parse_sub(int argc, char **argv, const struct option *opts, struct globals *g,
                     const char **vals, int *first)
{
    struct option all[CMD_OPTS_MAX + GLOBAL_OPTS + 1];
    size_t n = 0;
    int ch;

    for (; n < CMD_OPTS_MAX && opts[n].name; n++)
        all[n] = opts[n];
    memcpy(all + n, global_opts, sizeof(global_opts));
    /* optind 0 re-initialises getopt: the first scan stopped at COMMAND
     * ("+"), this one permutes, so options may follow positional ones */
    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":", all, NULL)) != -1) {
        if (ch == '?')
            return usage_error("unknown option '%s'", argv[optind - 1]);
        if (ch == ':')
            return usage_error("option '%s' needs a value", argv[optind - 1]);
        if (info_option(ch))
            return 1;
        if (!set_global(g, ch, optarg))
            vals[ch] = optarg ? optarg : "1";
    }
    *first = optind;
    return 0;
}

static int check_names(const char **v, struct rserr *err)
{
    static const struct {
        int idx;
        const char *name;
    } names[] = {{O_GATEWAY, "gateway"},
                 {O_CHAIN, "chain"},
                 {O_ACCOUNT, "account"},
                 {O_PROVIDER, "provider"}};

    for (size_t i = 0; i < ARRAY_LEN(names); i++)
        if (v[names[i].idx] && rsquery_check_name(names[i].name, v[names[i].idx], err) != 0)
            return -1;
    return 0;
}

static const struct option query_opts[] = {{"gateway", required_argument, NULL, O_GATEWAY},
                                           {"chain", required_argument, NULL, O_CHAIN},
                                           {"account", required_argument, NULL, O_ACCOUNT},
                                           {"provider", required_argument, NULL, O_PROVIDER},
                                           {"from", required_argument, NULL, O_FROM},
                                           {"to", required_argument, NULL, O_TO},
                                           {"step", required_argument, NULL, O_STEP},
                                           {"by", required_argument, NULL, O_BY},
                                           {"format", required_argument, NULL, O_FORMAT},
                                           {"source", required_argument, NULL, O_SOURCE},
                                           {NULL, 0, NULL, 0}};

static int cmd_query(struct globals *g, const char **v)
{
    const char *format;
    struct rsquery q = {0};
    struct rsquery_result res;
    struct rserr err = {0};
    int64_t step;
    PGconn *pg = NULL;
    int rc;

    format = v[O_FORMAT] ? v[O_FORMAT] : "table";
    if (strcmp(format, "table") && strcmp(format, "json") && strcmp(format, "csv"))
        return usage_error("--format must be table, json or csv, not '%s'", format);
    if (rstime_parse_step(v[O_STEP] ? v[O_STEP] : "5m", &step) != 0)
        return usage_error("--step must be 5m, 1h or 1d, not '%s'", v[O_STEP]);
    if (v[O_SOURCE] && rsquery_parse_source(v[O_SOURCE], &q.source) != 0)
        return usage_error("--source must be auto, raw, hourly or daily, not '%s'", v[O_SOURCE]);
    if (check_names(v, &err) != 0 || rsquery_parse_by(v[O_BY], &q.by, &err) != 0)
        return fail_with(&err);
    if (rstime_range_parse(v[O_FROM], v[O_TO], step, (int64_t)time(NULL), &q.range, err.text,
                           sizeof(err.text)) != 0) {
        err.status = 400;
        return fail_with(&err);
    }
    q.gateway = v[O_GATEWAY];
    q.chain = v[O_CHAIN];
    q.account = v[O_ACCOUNT];
    q.provider = v[O_PROVIDER];
    pg = connect_db(g, &err);
    if (!pg || rsquery_run(pg, &q, &res, &err) != 0) {
        PQfinish(pg);
        return fail_with(&err);
    }
    PQfinish(pg);
    if (strcmp(format, "json") == 0) {
        json_t *j = rsquery_result_json(&res);
        rc = !j || json_dumpf(j, stdout, JSON_INDENT(2)) != 0 || puts("") == EOF;
        json_decref(j);
    } else if (strcmp(format, "csv") == 0) {
        rc = rsquery_result_csv(&res, stdout) != 0;
    } else {
        rc = rsquery_result_table(&res, stdout) != 0;
    }
    rsquery_result_free(&res);
    if (rc)
        fprintf(stderr, "relaystats: cannot write the result\n");
    return rc ? EXIT_FAILURE : EXIT_SUCCESS;
}

static const struct option export_opts[] = {
    {"provider", required_argument, NULL, O_PROVIDER}, {"all", no_argument, NULL, O_ALL},
    {"from", required_argument, NULL, O_FROM},         {"to", required_argument, NULL, O_TO},
    {"format", required_argument, NULL, O_FORMAT},     {NULL, 0, NULL, 0}};

static int cmd_export(struct globals *g, const char **v)
{
    const char *format;
    struct rstime_range range;
    struct rsexport e;
    struct rserr err = {0};
    PGconn *pg;
    int rc;

    format = v[O_FORMAT] ? v[O_FORMAT] : "csv";
    if (strcmp(format, "json") && strcmp(format, "csv"))
        return usage_error("--format must be csv or json, not '%s'", format);
    if (!v[O_PROVIDER] == !v[O_ALL])
        return usage_error("%s", "export needs exactly one of --provider P or --all");
    if (check_names(v, &err) != 0)
        return fail_with(&err);
    if (rstime_range_parse(v[O_FROM], v[O_TO], RSTIME_STEP_5M, (int64_t)time(NULL), &range,
                           err.text, sizeof(err.text)) != 0) {
        err.status = 400;
        return fail_with(&err);
    }
    pg = connect_db(g, &err);
    /* the unowned relays too, for the warning: nobody's export holds them */
    if (!pg || rsexport_run(pg, v[O_PROVIDER], 1, &range, &e, &err) != 0) {
        PQfinish(pg);
        return fail_with(&err);
    }
    PQfinish(pg);
    if (e.unowned_total > 0)
        fprintf(stderr,
                "relaystats: warning: %" PRId64 " relays of %zu"
                " account/chain pairs in this range had no owner at their bucket time; %s\n",
                e.unowned_total, e.nunowned,
                v[O_PROVIDER] ? "they are in no provider's export (see export --all)"
                              : "listed as " RSEXPORT_UNOWNED);
    if (strcmp(format, "json") == 0) {
        json_t *j = rsexport_json(&e);
        rc = !j || json_dumpf(j, stdout, JSON_INDENT(2)) != 0 || puts("") == EOF;
        json_decref(j);
    } else {
        rc = rsexport_csv(&e, stdout) != 0;
    }
    rsexport_free(&e);
    if (rc)
        fprintf(stderr, "relaystats: cannot write the export\n");
    return rc ? EXIT_FAILURE : EXIT_SUCCESS;
}

static const struct option migrate_opts[] = {{"to-version", required_argument, NULL, O_TO_VERSION},
                                             {NULL, 0, NULL, 0}};

static int cmd_migrate(struct globals *g, const char **v)
{
    struct rserr err = {0};
    char msg[512] = "";
    PGconn *pg;
    int rc, from = 0, to = 0, target = 0;

    if (v[O_TO_VERSION]) {
        char *end;
        long t = strtol(v[O_TO_VERSION], &end, 10);
        if (*end || end == v[O_TO_VERSION] || t < 1 || t > SCHEMA_VERSION)
            return usage_error("--to-version must be a schema version this build knows, not '%s'",
                               v[O_TO_VERSION]);
        target = (int)t;
    }
    pg = connect_db(g, &err);
    if (!pg)
        return fail_with(&err);
    rc = migrate_run(pg, target, &from, &to, msg, sizeof(msg));
    PQfinish(pg);
    if (rc != 0) {
        fprintf(stderr, "relaystats: migrate: %s\n", msg);
        return EXIT_FAILURE;
    }
    LOG_EVENT(LOG_INFO, "migrated", NULL, from == to ? "schema up to date" : "schema migrated",
              LF_INT("from_version", from), LF_INT("to_version", to));
    return EXIT_SUCCESS;
}

static const struct option sync_opts[] = {{NULL, 0, NULL, 0}};

static int cmd_sync(struct globals *g, const char **v)
{
    char at[32];
    struct rssync_stats st;
    struct rserr err = {0};
    PGconn *pg;

    (void)v; /* no options of its own */
    if (!g->have_conf)
        return usage_error("%s", "sync needs --config (or $CCGW_CONFIG)");
    pg = connect_db(g, &err);
    if (!pg || rssync_run(pg, &g->conf, &st, &err) != 0) {
        PQfinish(pg);
        return fail_with(&err);
    }
    PQfinish(pg);
    bucket_format_iso(st.at, at, sizeof(at));
    LOG_EVENT(LOG_INFO, "synced", NULL,
              st.wrote ? "account ownership synced from the config" : "nothing to change",
              LF_INT("providers_added", st.providers_added), LF_INT("added", st.added),
              LF_INT("moved", st.moved), LF_INT("unchanged", st.unchanged),
              LF_INT("unconfigured", st.unconfigured), LF_STR("moves_at", at),
              LF_BOOL("wrote", st.wrote));
    return EXIT_SUCCESS;
}

static const struct option fold_opts[] = {{NULL, 0, NULL, 0}};

static int cmd_fold(struct globals *g, const char **v)
{
    struct rsfold_stats st;
    struct rserr err = {0};
    PGconn *pg;

    (void)v; /* no options of its own */
    pg = connect_db(g, &err);
    if (!pg || rsfold_all(pg, &st, &err) != 0) {
        PQfinish(pg);
        return fail_with(&err);
    }
    PQfinish(pg);
    LOG_EVENT(LOG_INFO, "folded", NULL, "pending relay deltas folded",
              LF_INT("gateways", st.gateways), LF_INT("keys", st.keys));
    return EXIT_SUCCESS;
}

static const struct option token_opts[] = {{"provider", required_argument, NULL, O_PROVIDER},
                                           {"admin", no_argument, NULL, O_ADMIN},
                                           {NULL, 0, NULL, 0}};

static int cmd_token(struct globals *g, const char **v)
{
    char token[RSAUTH_TOKEN_LEN + 1];
    struct rserr err = {0};
    PGconn *pg;

    if (strcmp(v[O_ARG], "create") != 0)
        return usage_error("%s", "usage: relaystats token create --provider P | --admin");
    if (!v[O_PROVIDER] == !v[O_ADMIN])
        return usage_error("%s", "token create needs exactly one of --provider P or --admin");
    if (check_names(v, &err) != 0)
        return fail_with(&err);
    pg = connect_db(g, &err);
    if (!pg || rsauth_token_create(pg, v[O_PROVIDER], token, &err) != 0) {
        PQfinish(pg);
        return fail_with(&err);
    }
    PQfinish(pg);
    puts(token);
    return EXIT_SUCCESS;
}

/* A whole number of seconds in [min, max]. 0 or -1. */
static int seconds_option(const char *s, long min, long max, long *out)
{
    char *end;
    long n = strtol(s, &end, 10);

    if (*end || end == s || n < min || n > max)
        return -1;
    *out = n;
    return 0;
}

static const struct option serve_opts[] = {
    {"listen", required_argument, NULL, O_LISTEN},
    {"threads", required_argument, NULL, O_THREADS},
    {"fold-every", required_argument, NULL, O_FOLD_EVERY},
    {"config-poll", required_argument, NULL, O_CONFIG_POLL},
    {"unowned-every", required_argument, NULL, O_UNOWNED_EVERY},
    {NULL, 0, NULL, 0}};

static int cmd_serve(struct globals *g, const char **v)
{
    const char *url = g->db ? g->db : (g->have_conf ? g->conf.postgres.url : NULL);
    struct httpd_options hopts = {0};
    struct rsdb_pool *pool = NULL;
    struct rsapi *api = NULL;
    struct httpd *h = NULL;
    struct rsfold_loop *fold = NULL;
    struct rswatch *watch = NULL;
    struct rswatch_options wopts = {0};
    char err[256] = "";
    sigset_t set;
    int rc, sig = 0;
    long threads = 4, fold_every = 60, config_poll = 2, unowned_every = 60;

    if (v[O_THREADS]) {
        char *end;
        threads = strtol(v[O_THREADS], &end, 10);
        if (*end || threads < 1 || threads > 64)
            return usage_error("--threads must be 1 to 64, not '%s'", v[O_THREADS]);
    }
    if (v[O_FOLD_EVERY]) {
        char *end;
        fold_every = strtol(v[O_FOLD_EVERY], &end, 10);
        if (*end || end == v[O_FOLD_EVERY] || fold_every < 0 || fold_every > 86400)
            return usage_error("--fold-every must be 0 to 86400 seconds, not '%s'",
                               v[O_FOLD_EVERY]);
    }
    if (v[O_CONFIG_POLL] && seconds_option(v[O_CONFIG_POLL], 1, 3600, &config_poll) != 0)
        return usage_error("--config-poll must be 1 to 3600 seconds, not '%s'", v[O_CONFIG_POLL]);
    if (v[O_UNOWNED_EVERY] && seconds_option(v[O_UNOWNED_EVERY], 1, 86400, &unowned_every) != 0)
        return usage_error("--unowned-every must be 1 to 86400 seconds, not '%s'",
                           v[O_UNOWNED_EVERY]);
    if (!url)
        return usage_error("%s", "serve needs --db or a config with postgres.url");
    hopts.listen = v[O_LISTEN]
                       ? v[O_LISTEN]
                       : (g->conf.relaystats.listen ? g->conf.relaystats.listen : "127.0.0.1:8090");
    hopts.threads = (unsigned)threads;
    pool = rsdb_pool_new(url, (size_t)threads);
    api = calloc(1, sizeof(*api));
    if (!pool || !api || rsapi_init(api, &g->conf, pool) != 0) {
        fprintf(stderr, "relaystats: out of memory\n");
        rc = EXIT_FAILURE;
        goto done;
    }
    /* Block the stop signals before the server's threads start, so that
     * they inherit the mask and only sigwait() below sees them. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* the config's account ownership, synced at start and on every change
     * of the file, and the unowned-relays gauge */
    wopts.conninfo = url;
    wopts.config_path = g->have_conf ? g->config_path : NULL;
    wopts.poll_secs = (int)config_poll;
    wopts.unowned_every_secs = (int)unowned_every;
    if (!(watch = rswatch_start(&wopts))) {
        fprintf(stderr, "relaystats: serve: cannot start the config watch thread\n");
        rc = EXIT_FAILURE;
        goto done;
    }
    api->watch = watch;
    h = httpd_start(&hopts, rsapi_handle, api, err, sizeof(err));
    if (!h) {
        fprintf(stderr, "relaystats: serve: %s\n", err);
        rc = EXIT_FAILURE;
        goto done;
    }
    LOG_EVENT(LOG_INFO, "listening", NULL, "relaystats API and dashboard",
              LF_STR("listen", hopts.listen), LF_INT("port", httpd_port(h)),
              LF_INT("threads", threads));
    if (fold_every > 0 && !(fold = rsfold_loop_start(url, (int)fold_every))) {
        fprintf(stderr, "relaystats: serve: cannot start the fold thread\n");
        rc = EXIT_FAILURE;
        goto done;
    }
    sigwait(&set, &sig);
    LOG_EVENT(LOG_INFO, "stopping", NULL, NULL, LF_INT("signal", sig));
    rc = EXIT_SUCCESS;
done:
    rsfold_loop_stop(fold);
    httpd_stop(h);
    rswatch_stop(watch);
    free(api);
    rsdb_pool_free(pool);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(struct globals *, const char **);
        const struct option *opts;
        int npos; /* positional arguments it takes (at most one, in v[O_ARG]) */
    } cmds[] = {{"query", cmd_query, query_opts, 0},       {"export", cmd_export, export_opts, 0},
                {"migrate", cmd_migrate, migrate_opts, 0}, {"sync", cmd_sync, sync_opts, 0},
                {"token", cmd_token, token_opts, 1},       {"serve", cmd_serve, serve_opts, 0},
                {"fold", cmd_fold, fold_opts, 0}};
    const char *v[O_COUNT] = {0};
    struct globals g = {0};
    enum log_level level = LOG_INFO;
    enum log_format format = LOG_FORMAT_TEXT;
    struct yamlcfg_error cerr;
    size_t c;
    int ch, first = 0, rc = EXIT_USAGE;

    /* global options before COMMAND; "+" stops the scan at COMMAND */
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+:", global_opts, NULL)) != -1) {
        if (ch == ':')
            return usage_error("option '%s' needs a value", argv[optind - 1]);
        if (ch == '?')
            return usage_error("unknown option '%s'", argv[optind - 1]);
        if (info_option(ch))
            return EXIT_SUCCESS;
        set_global(&g, ch, optarg);
    }
    if (optind >= argc)
        return usage_error("%s", "missing COMMAND");
    for (c = 0; c < ARRAY_LEN(cmds); c++)
        if (strcmp(argv[optind], cmds[c].name) == 0)
            break;
    if (c == ARRAY_LEN(cmds))
        return usage_error("unknown command '%s'", argv[optind]);
    argc -= optind;
    argv += optind;
    rc = parse_sub(argc, argv, cmds[c].opts, &g, v, &first);
    if (rc != 0)
        return rc == 1 ? EXIT_SUCCESS : rc;
    if (argc - first > cmds[c].npos)
        return usage_error("unexpected argument '%s'", argv[first + cmds[c].npos]);
    if (argc - first < cmds[c].npos)
        return usage_error("%s needs an argument (see --help)", cmds[c].name);
    g.config_path = conf_path(g.config_path);
    if (g.config_path) {
        if (ccgwconf_load(g.config_path, &g.conf, &cerr) != 0) {
            fprintf(stderr, "relaystats: %s\n", cerr.text);
            return EXIT_USAGE;
        }
        g.have_conf = 1;
        level = (enum log_level)g.conf.logs.level;
        format = (enum log_format)g.conf.logs.format;
    }
    if (g.log_level && log_level_parse(g.log_level, &level) != 0) {
        rc = usage_error("--log-level must be debug, info, warn or error, not '%s'", g.log_level);
        goto done;
    }
    if (g.log_format && log_format_parse(g.log_format, &format) != 0) {
        rc = usage_error("--log-format must be text or json, not '%s'", g.log_format);
        goto done;
    }
    log_setup("relaystats", format, level, 2);
    if (cmds[c].npos)
        v[O_ARG] = argv[first];
    rc = cmds[c].fn(&g, v);
done:
    if (g.have_conf)
        ccgwconf_free(&g.conf);
    return rc;
}
