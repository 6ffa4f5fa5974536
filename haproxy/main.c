/* cc-routes: renders the HAProxy tier configs and the host map from the
 * deployment config, checks them with `haproxy -c`, and applies routing
 * changes to running HTTP tiers through the runtime API. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apply.h"
#include "ccgwconf.h"
#include "install.h"
#include "log.h"
#include "render.h"
#include "routes.h"
#include "tls.h"
#include "sys.h"

#define CC_ROUTES_VERSION "0.1.0"

/* Exit codes: 3 says the files are in place and what could be applied live
 * was, but a restart of the tiers is needed for the rest. */
enum { EXIT_OK = 0, EXIT_ERROR = 1, EXIT_USAGE = 2, EXIT_RESTART = 3 };

struct options {
    const char *command;
    const char *config;
    const char *out;
    const char *previous;
    const char *templates;
    double wait_up_secs;
    double drain_secs;
};

static void usage(FILE *f)
{
    fputs(
        "usage: cc-routes COMMAND [options]\n"
        "\n"
        "commands:\n"
        "  render --config F --out DIR   write <tier>.cfg for every tier and hosts.map into DIR,\n"
        "                                each checked with `haproxy -c`, atomically\n"
        "  check  --config F             validate the config and check the rendered files\n"
        "                                with `haproxy -c`; writes nothing\n"
        "  hosts  --config F             print the host map (\"<host> <chain>/<account>\")\n"
        "  apply  --config NEW --out DIR [--previous OLD]\n"
        "                                render NEW into DIR, then apply host and server\n"
        "                                changes to the running HTTP tiers without restart\n"
        "                                (OLD defaults to DIR/" INSTALL_STATE "); with a tls\n"
        "                                section, rotates the edge's certificates too\n"
        "  rotate --config F --out DIR   read the certificates of F again, check them, and\n"
        "                                replace every one the running edge does not serve yet\n"
        "                                (set/commit ssl cert), no restart; also updates the\n"
        "                                notAfter metric and DIR's files (ACME deploy hooks)\n"
        "\n"
        "options:\n"
        "  -c, --config F      deployment config (default $CCGW_CONFIG)\n"
        "  -o, --out DIR       output directory of render and apply\n"
        "  -p, --previous F    the config the running tiers were rendered from\n"
        "  -t, --templates DIR templates (default $CCGW_TEMPLATES, ./haproxy/templates,\n"
        "                      or share/ccgw/templates next to the binary)\n"
        "      --wait-up SECS  how long a new server may take to pass checks (default 30)\n"
        "      --drain SECS    how long a removed server may take to finish (default 30)\n"
        "  -h, --help          this help\n"
        "  -V, --version       print the version\n"
        "\n"
        "exit status: 0 done, 1 error, 2 usage, 3 applied but a restart is still needed\n",
        f);
}

static int is_dir(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The templates directory: --templates, $CCGW_TEMPLATES, the source tree
 * from its root, then installed or build-tree layouts next to the binary. */
static int find_templates(const char *arg, char *buf, size_t len)
{
    static const char *const rel[] = {"../share/ccgw/templates", "../../haproxy/templates",
                                      "../../../haproxy/templates"};
    const char *env = getenv("CCGW_TEMPLATES");
    char exe[PATH_MAX];
    ssize_t n;

    if (arg || env) {
        snprintf(buf, len, "%s", arg ? arg : env);
        return 0;
    }
    if (is_dir("haproxy/templates")) {
        snprintf(buf, len, "haproxy/templates");
        return 0;
    }
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';
    for (size_t i = 0; i < ARRAY_LEN(rel); i++) {
        if ((size_t)snprintf(buf, len, "%s/%s", exe, rel[i]) < len && is_dir(buf))
            return 0;
    }
    return -1;
}

static int load_config(const char *path, struct ccgwconf *c)
{
    struct yamlcfg_error err = {0};

    if (ccgwconf_load(path, c, &err) < 0 || routes_check(c, &err) < 0) {
        fprintf(stderr, "cc-routes: %s\n", err.text);
        return -1;
    }
    return 0;
}

static int cmd_hosts(const struct ccgwconf *c)
{
    struct routes_host *hosts = NULL;
    struct yamlcfg_error err = {0};
    size_t n = 0, len = 0;
    char *map = NULL;
    int rc = EXIT_ERROR;

    if (routes_hosts(c, &hosts, &n, &err) < 0 || render_map(hosts, n, &map, &len, &err) < 0) {
        fprintf(stderr, "cc-routes: %s\n", err.text);
        goto out;
    }
    if (fwrite(map, 1, len, stdout) != len || fflush(stdout) != 0) {
        fprintf(stderr, "cc-routes: stdout: %s\n", strerror(errno));
        goto out;
    }
    rc = EXIT_OK;
out:
    free(map);
    routes_hosts_free(hosts, n);
    return rc;
}

static int cmd_render(const struct render_templates *t, const struct ccgwconf *c, const char *out)
{
    struct install_result res;
    struct yamlcfg_error err = {0};

    if (install_render(t, c, out, &res, &err) < 0) {
        fprintf(stderr, "cc-routes: %s\n", err.text);
        return EXIT_ERROR;
    }
    LOG_EVENT(LOG_INFO, "rendered", NULL, NULL, LF_STR("dir", res.dir), LF_INT("hosts", res.nhosts),
              LF_INT("tiers", c->ntiers));
    return EXIT_OK;
}

/* Remove the plain files of a directory cc-routes made. */
static void remove_files(const char *dir, char *path, size_t len)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        if (e->d_type == DT_DIR)
            continue;
        snprintf(path, len, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

/* Render into a private temporary directory and throw it away. */
static int cmd_check(const struct render_templates *t, const struct ccgwconf *c)
{
    char dir[] = "/tmp/cc-routes-check.XXXXXX", path[PATH_MAX];
    int rc;

    if (!mkdtemp(dir)) {
        fprintf(stderr, "cc-routes: mkdtemp: %s\n", strerror(errno));
        return EXIT_ERROR;
    }
    rc = cmd_render(t, c, dir);
    remove_files(dir, path, sizeof(path));
    rmdir(dir);
    if (rc == EXIT_OK)
        printf("%s: OK\n", c->path);
    return rc;
}

static int cmd_apply(const struct render_templates *t, const struct ccgwconf *c,
                     const struct options *o)
{
    struct ccgwconf old;
    struct install_result res;
    struct apply_report report = {0};
    struct apply_opts aopts = {(int)(o->wait_up_secs * 1000), (int)(o->drain_secs * 1000)};
    struct routes_host *hosts = NULL;
    struct yamlcfg_error err = {0};
    char state[PATH_MAX];
    const char *previous = o->previous;
    size_t nhosts = 0;
    int rc = EXIT_ERROR, have_old = 0, failed = 0;

    if (!previous) {
        snprintf(state, sizeof(state), "%s/%s", o->out, INSTALL_STATE);
        if (access(state, R_OK) == 0)
            previous = state;
    }
    if (previous) {
        if (ccgwconf_load(previous, &old, &err) < 0) {
            fprintf(stderr, "cc-routes: previous config: %s\n", err.text);
            return EXIT_ERROR;
        }
        have_old = 1;
        apply_restart_reasons(&old, c, &report);
        tls_restart_reasons(&old, c, report.restart, sizeof(report.restart));
    }
    if (routes_hosts(c, &hosts, &nhosts, &err) < 0) {
        fprintf(stderr, "cc-routes: %s\n", err.text);
        goto out;
    }
    /* Files first: checked by haproxy -c, they are what a restart loads. */
    if (install_render(t, c, o->out, &res, &err) < 0) {
        fprintf(stderr, "cc-routes: %s\n", err.text);
        goto out;
    }
    for (size_t i = 0; i < c->ntiers; i++) {
        const struct ccgwconf_tier *tier = &c->tiers[i];
        if (tier->role != CCGWCONF_ROLE_HTTP)
            continue;
        if (apply_tier(t, c, tier, res.map_path, hosts, nhosts, &aopts, &report, &err) < 0) {
            fprintf(stderr, "cc-routes: tier %s: %s\n", tier->name, err.text);
            failed = 1;
        }
    }
    /* Certificates the running edge knows are replaced live; a new edge
     * TLS setup waits for the restart reported above. */
    if (c->tls.bind && have_old && old.tls.bind && strcmp(old.tls.bind, c->tls.bind) == 0) {
        struct tls_rotate_report tr;
        if (tls_rotate(c, res.dir, &tr, &err) < 0) {
            fprintf(stderr, "cc-routes: edge certificates: %s\n", err.text);
            failed = 1;
        }
    }
    LOG_EVENT(LOG_INFO, "applied", NULL, report.restart[0] ? "restart needed" : NULL,
              LF_STR("dir", res.dir), LF_INT("hosts", nhosts),
              LF_INT("servers_added", report.servers_added),
              LF_INT("servers_removed", report.servers_removed),
              LF_INT("servers_moved", report.servers_moved),
              LF_INT("weights_changed", report.weights_changed), LF_BOOL("failed", failed));
    if (failed) {
        fprintf(stderr,
                "cc-routes: files in %s are updated; restart the failed tiers to load "
                "them\n",
                res.dir);
        goto out;
    }
    if (report.restart[0]) {
        fprintf(stderr, "cc-routes: restart needed: %s\n", report.restart);
        rc = EXIT_RESTART;
        goto out;
    }
    rc = EXIT_OK;
out:
    routes_hosts_free(hosts, nhosts);
    if (have_old)
        ccgwconf_free(&old);
    return rc;
}

static int cmd_rotate(const struct ccgwconf *c, const char *out)
{
    struct tls_rotate_report r;
    struct yamlcfg_error err = {0};

    if (tls_rotate(c, out, &r, &err) < 0) {
        fprintf(stderr, "cc-routes: rotate: %s\n", err.text);
        return EXIT_ERROR;
    }
    LOG_EVENT(LOG_INFO, "rotated", NULL, NULL, LF_STR("dir", out), LF_INT("added", r.added),
              LF_INT("rotated", r.rotated), LF_INT("unchanged", r.unchanged));
    printf("%s: %zu certificate(s) added, %zu rotated, %zu already served\n", c->path, r.added,
           r.rotated, r.unchanged);
    return EXIT_OK;
}

static int parse_options(int argc, char **argv, struct options *o)
{
    enum { OPT_WAIT_UP = 256, OPT_DRAIN };
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"out", required_argument, NULL, 'o'},
        {"previous", required_argument, NULL, 'p'},
        {"templates", required_argument, NULL, 't'},
        {"wait-up", required_argument, NULL, OPT_WAIT_UP},
        {"drain", required_argument, NULL, OPT_DRAIN},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    o->wait_up_secs = 30;
    o->drain_secs = 30;
    while ((ch = getopt_long(argc, argv, "c:o:p:t:hV", longopts, NULL)) != -1) {
        char *end;
        switch (ch) {
        case 'c':
            o->config = optarg;
            break;
        case 'o':
            o->out = optarg;
            break;
        case 'p':
            o->previous = optarg;
            break;
        case 't':
            o->templates = optarg;
            break;
        case OPT_WAIT_UP:
        case OPT_DRAIN: {
            double v = strtod(optarg, &end);
            if (*end || v <= 0 || v > 3600) {
                fprintf(stderr, "cc-routes: --%s wants seconds in (0, 3600]\n",
                        ch == OPT_DRAIN ? "drain" : "wait-up");
                return -1;
            }
            *(ch == OPT_DRAIN ? &o->drain_secs : &o->wait_up_secs) = v;
            break;
        }
        case 'h':
            usage(stdout);
            exit(EXIT_OK);
        case 'V':
            printf("cc-routes %s\n", CC_ROUTES_VERSION);
            exit(EXIT_OK);
        default:
            return -1;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "cc-routes: expected one command (render, check, hosts, apply, rotate)\n");
        return -1;
    }
    o->command = argv[optind];
    o->config = conf_path(o->config);
    if (!o->config) {
        fprintf(stderr, "cc-routes: no config: use --config F or set CCGW_CONFIG\n");
        return -1;
    }
    if ((strcmp(o->command, "render") == 0 || strcmp(o->command, "apply") == 0 ||
         strcmp(o->command, "rotate") == 0) &&
        !o->out) {
        fprintf(stderr, "cc-routes: %s needs --out DIR\n", o->command);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct options o = {0};
    struct ccgwconf c;
    struct render_templates t = {0};
    struct yamlcfg_error err = {0};
    char tdir[PATH_MAX];
    int rc = EXIT_ERROR;

    log_setup("cc-routes", LOG_FORMAT_TEXT, LOG_INFO, 2);
    /* HAProxy closes the runtime API socket once it has answered: a late
     * write is an error to report, not a reason to die. */
    signal(SIGPIPE, SIG_IGN);
    if (parse_options(argc, argv, &o) < 0) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(o.command, "render") != 0 && strcmp(o.command, "check") != 0 &&
        strcmp(o.command, "hosts") != 0 && strcmp(o.command, "apply") != 0 &&
        strcmp(o.command, "rotate") != 0) {
        fprintf(stderr, "cc-routes: unknown command \"%s\"\n", o.command);
        usage(stderr);
        return EXIT_USAGE;
    }
    if (load_config(o.config, &c) < 0)
        return EXIT_ERROR;
    log_setup("cc-routes", (enum log_format)c.logs.format, (enum log_level)c.logs.level, 2);
    if (strcmp(o.command, "hosts") == 0) {
        rc = cmd_hosts(&c);
        goto out;
    }
    if (strcmp(o.command, "rotate") == 0) {
        rc = cmd_rotate(&c, o.out);
        goto out;
    }
    if (find_templates(o.templates, tdir, sizeof(tdir)) < 0) {
        fprintf(stderr, "cc-routes: cannot find the templates; use --templates DIR\n");
        goto out;
    }
    if (render_templates_load(tdir, &t, &err) < 0) {
        fprintf(stderr, "cc-routes: %s\n", err.text);
        goto out;
    }
    if (strcmp(o.command, "render") == 0)
        rc = cmd_render(&t, &c, o.out);
    else if (strcmp(o.command, "check") == 0)
        rc = cmd_check(&t, &c);
    else
        rc = cmd_apply(&t, &c, &o);
out:
    render_templates_free(&t);
    ccgwconf_free(&c);
    return rc;
}
