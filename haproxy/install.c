/* Staged, checked, atomic installation of the rendered files. */
#include "install.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "routes.h"
#include "sys.h"
#include "tls.h"

extern char **environ;

#define CHECK_OUTPUT_MAX 65536

/* mkdir -p */
static int make_dirs(const char *dir, struct yamlcfg_error *err)
{
    char path[PATH_MAX];
    size_t n = strlen(dir);

    if (n == 0 || n >= sizeof(path)) {
        routes_error(err, "bad output directory \"%s\"", dir);
        return -1;
    }
    memcpy(path, dir, n + 1);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) < 0 && errno != EEXIST) {
            routes_error(err, "%s: mkdir: %s", path, strerror(errno));
            return -1;
        }
        *p = '/';
    }
    if (mkdir(path, 0755) < 0 && errno != EEXIST) {
        routes_error(err, "%s: mkdir: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int install_map_path(const char *dir, char *buf, size_t len, struct yamlcfg_error *err)
{
    char abs[PATH_MAX];

    if (!realpath(dir, abs)) {
        routes_error(err, "%s: %s", dir, strerror(errno));
        return -1;
    }
    if ((size_t)snprintf(buf, len, "%s/%s", abs, INSTALL_MAP) >= len) {
        routes_error(err, "%s: path too long", abs);
        return -1;
    }
    return 0;
}

/* Write and fsync a new file. */
static int write_file(const char *path, const char *data, size_t len, mode_t mode,
                      struct yamlcfg_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

    if (fd < 0) {
        routes_error(err, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (sys_write_all(fd, data, len) < 0) {
        routes_error(err, "%s: write: %s", path, strerror(errno));
        goto fail;
    }
    if (fsync(fd) < 0) {
        routes_error(err, "%s: fsync: %s", path, strerror(errno));
        goto fail;
    }
    if (close(fd) < 0) {
        routes_error(err, "%s: close: %s", path, strerror(errno));
        return -1;
    }
    return 0;
fail:
    close(fd);
    return -1;
}

static int read_file(const char *path, char **out, size_t *len, struct yamlcfg_error *err)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long size;

    if (!f) {
        routes_error(err, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fseek(f, 0, SEEK_END) < 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0) {
        routes_error(err, "%s: cannot size it", path);
        goto fail;
    }
    buf = malloc((size_t)size + 1);
    if (!buf) {
        routes_error(err, "out of memory");
        goto fail;
    }
    if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
        routes_error(err, "%s: read error", path);
        goto fail;
    }
    buf[size] = '\0';
    fclose(f);
    *out = buf;
    *len = (size_t)size;
    return 0;
fail:
    free(buf);
    fclose(f);
    return -1;
}

/* Keep HAProxy's [ALERT] lines (the reasons) for the message. */
static void check_failure(const char *cfg, const char *output, int status,
                          struct yamlcfg_error *err)
{
    char reasons[400] = "";
    size_t used = 0;

    for (const char *p = output; *p && used < sizeof(reasons) - 1;) {
        size_t n = strcspn(p, "\n");
        if (strncmp(p, "[ALERT]", 7) == 0) {
            int w = snprintf(reasons + used, sizeof(reasons) - used, "%s%.*s", used ? " | " : "",
                             (int)n, p);
            if (w < 0)
                break;
            used += (size_t)w;
        }
        p += n;
        if (*p)
            p++;
    }
    routes_error(err, "haproxy -c rejected %s (exit %d): %s", cfg, status, used ? reasons : output);
}

int install_check_config(const char *haproxy, const char *cfg, struct yamlcfg_error *err)
{
    posix_spawn_file_actions_t fa;
    char *argv[] = {(char *)haproxy, "-c", "-f", (char *)cfg, NULL};
    char *out = NULL;
    size_t len = 0;
    int pipefd[2] = {-1, -1}, status = 0, rc = -1, fa_init = 0;
    pid_t pid;

    out = malloc(CHECK_OUTPUT_MAX + 1);
    if (!out) {
        routes_error(err, "out of memory");
        return -1;
    }
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        routes_error(err, "pipe: %s", strerror(errno));
        goto out;
    }
    if (posix_spawn_file_actions_init(&fa) != 0) {
        routes_error(err, "out of memory");
        goto out;
    }
    fa_init = 1;
    if (posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1) != 0 ||
        posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2) != 0 ||
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) != 0) {
        routes_error(err, "out of memory");
        goto out;
    }
    int serr = posix_spawnp(&pid, haproxy, &fa, NULL, argv, environ);
    if (serr != 0) {
        routes_error(err, "cannot run %s: %s", haproxy, strerror(serr));
        goto out;
    }
    close(pipefd[1]);
    pipefd[1] = -1;
    for (;;) {
        char sink[4096];
        char *dst = len < CHECK_OUTPUT_MAX ? out + len : sink;
        size_t room = len < CHECK_OUTPUT_MAX ? CHECK_OUTPUT_MAX - len : sizeof(sink);
        ssize_t r = read(pipefd[0], dst, room);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (dst != sink)
            len += (size_t)r;
    }
    out[len] = '\0';
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            routes_error(err, "waitpid: %s", strerror(errno));
            goto out;
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        rc = 0;
    } else {
        check_failure(cfg, out, WIFEXITED(status) ? WEXITSTATUS(status) : -1, err);
    }
out:
    if (fa_init)
        posix_spawn_file_actions_destroy(&fa);
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    free(out);
    return rc;
}

/* The files of one installation, staged under `stage`. */
struct staged {
    char name[128];
};

static void remove_stage(const char *stage, const struct staged *files, size_t n)
{
    char path[PATH_MAX];

    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%s", stage, files[i].name);
        unlink(path);
    }
    rmdir(stage);
}

static int stage_path(char *buf, size_t len, const char *stage, const char *name,
                      struct yamlcfg_error *err)
{
    if ((size_t)snprintf(buf, len, "%s/%s", stage, name) >= len) {
        routes_error(err, "%s: path too long", stage);
        return -1;
    }
    return 0;
}

/* Write the crt-list, the expiry map and the metric's log-format into
 * `stage`, naming files in `dir` (the stage itself for `haproxy -c`, then the
 * final directory). With `staged`, the names are recorded. 0 or -1. */
static int stage_tls_lists(const struct ccgwconf *c, const struct tls_cert *certs, size_t n,
                           const char *stage, const char *dir, struct staged *staged,
                           size_t *nstaged, struct yamlcfg_error *err)
{
    static const char *const names[] = {TLS_CRT_LIST, TLS_EXPIRY_MAP, TLS_METRICS_LF};
    char path[PATH_MAX], map_path[PATH_MAX];
    char *text[ARRAY_LEN(names)] = {NULL, NULL, NULL};
    int rc = -1;

    if ((size_t)snprintf(map_path, sizeof(map_path), "%s/%s", dir, TLS_EXPIRY_MAP) >=
        sizeof(map_path)) {
        routes_error(err, "%s: path too long", dir);
        return -1;
    }
    if (tls_render_crt_list(certs, n, dir, &text[0], err) < 0 ||
        tls_render_expiry_map(certs, n, &text[1], err) < 0 ||
        tls_render_metrics_lf(c, certs, n, map_path, &text[2], err) < 0)
        goto out;
    for (size_t i = 0; i < ARRAY_LEN(text); i++) {
        if (stage_path(path, sizeof(path), stage, names[i], err) < 0 ||
            write_file(path, text[i], strlen(text[i]), 0644, err) < 0)
            goto out;
        if (staged)
            snprintf(staged[(*nstaged)++].name, sizeof(staged[0].name), "%s", names[i]);
    }
    rc = 0;
out:
    for (size_t i = 0; i < ARRAY_LEN(text); i++)
        free(text[i]);
    return rc;
}

int install_render(const struct render_templates *t, const struct ccgwconf *c, const char *dir,
                   struct install_result *res, struct yamlcfg_error *err)
{
    struct routes_host *hosts = NULL;
    size_t nhosts = 0, maplen = 0, nstaged = 0, statelen = 0;
    struct staged *staged = NULL;
    char stage[PATH_MAX], path[PATH_MAX], final[PATH_MAX], stage_map[PATH_MAX];
    char *map = NULL, *text = NULL, *state = NULL;
    struct tls_cert *certs = NULL;
    size_t ncerts = 0;
    int have_stage = 0, rc = -1;

    memset(res, 0, sizeof(*res));
    if (routes_check(c, err) < 0 || routes_hosts(c, &hosts, &nhosts, err) < 0)
        goto out;
    if (read_file(c->path, &state, &statelen, err) < 0)
        goto out;
    if (make_dirs(dir, err) < 0)
        goto out;
    if (!realpath(dir, res->dir)) {
        routes_error(err, "%s: %s", dir, strerror(errno));
        goto out;
    }
    if (install_map_path(res->dir, res->map_path, sizeof(res->map_path), err) < 0)
        goto out;
    if ((size_t)snprintf(stage, sizeof(stage), "%s/.stage.XXXXXX", res->dir) >= sizeof(stage)) {
        routes_error(err, "%s: path too long", res->dir);
        goto out;
    }
    if (!mkdtemp(stage)) {
        routes_error(err, "%s: mkdtemp: %s", stage, strerror(errno));
        goto out;
    }
    have_stage = 1;
    staged = calloc(c->ntiers + c->tls.ncertificates + 5, sizeof(*staged));
    if (!staged) {
        routes_error(err, "out of memory");
        goto out;
    }
    if (render_map(hosts, nhosts, &map, &maplen, err) < 0 ||
        stage_path(stage_map, sizeof(stage_map), stage, INSTALL_MAP, err) < 0)
        goto out;
    snprintf(staged[nstaged++].name, sizeof(staged[0].name), "%s", INSTALL_MAP);
    if (write_file(stage_map, map, maplen, 0644, err) < 0)
        goto out;
    if (tls_certs_load(c, sys_wall_ms() / 1000, &certs, &ncerts, err) < 0 ||
        tls_check_hosts(c, certs, ncerts, hosts, nhosts, err) < 0)
        goto out;
    /* Certificates first, then the crt-list and the metric naming the
     * staged files for `haproxy -c`; renamed, they name the final ones. */
    for (size_t i = 0; i < ncerts; i++) {
        char name[128];
        if (tls_pem_name(certs[i].conf, name, sizeof(name)) < 0 ||
            stage_path(path, sizeof(path), stage, name, err) < 0)
            goto out;
        snprintf(staged[nstaged++].name, sizeof(staged[0].name), "%s", name);
        if (write_file(path, certs[i].pem, strlen(certs[i].pem), 0600, err) < 0)
            goto out;
    }
    if (ncerts > 0 && stage_tls_lists(c, certs, ncerts, stage, stage, staged, &nstaged, err) < 0)
        goto out;
    for (size_t i = 0; i < c->ntiers; i++) {
        const struct ccgwconf_tier *tier = &c->tiers[i];
        char name[128];
        snprintf(name, sizeof(name), "%s.cfg", tier->name);
        if (stage_path(path, sizeof(path), stage, name, err) < 0)
            goto out;
        snprintf(staged[nstaged++].name, sizeof(staged[0].name), "%s", name);
        /* Checked against the staged map; installed naming the final one. */
        if (render_tier(t, c, tier, stage_map, &text, err) < 0 ||
            write_file(path, text, strlen(text), 0600, err) < 0 ||
            install_check_config(c->haproxy.binary, path, err) < 0)
            goto out;
        free(text);
        text = NULL;
        if (render_tier(t, c, tier, res->map_path, &text, err) < 0 ||
            write_file(path, text, strlen(text), 0600, err) < 0)
            goto out;
        free(text);
        text = NULL;
    }
    if (ncerts > 0 && stage_tls_lists(c, certs, ncerts, stage, res->dir, NULL, NULL, err) < 0)
        goto out;
    if (stage_path(path, sizeof(path), stage, INSTALL_STATE, err) < 0)
        goto out;
    snprintf(staged[nstaged++].name, sizeof(staged[0].name), "%s", INSTALL_STATE);
    if (write_file(path, state, statelen, 0600, err) < 0)
        goto out;
    /* Everything is valid: move into place, the map before the configs
     * that load it, the state last. */
    for (size_t i = 0; i < nstaged; i++) {
        if (stage_path(path, sizeof(path), stage, staged[i].name, err) < 0 ||
            stage_path(final, sizeof(final), res->dir, staged[i].name, err) < 0)
            goto out;
        if (rename(path, final) < 0) {
            routes_error(err, "rename %s -> %s: %s", path, final, strerror(errno));
            goto out;
        }
    }
    (void)sys_fsync_dir(res->dir);
    res->nhosts = nhosts;
    rc = 0;
out:
    if (have_stage)
        remove_stage(stage, staged, nstaged);
    free(staged);
    free(text);
    free(map);
    free(state);
    routes_hosts_free(hosts, nhosts);
    tls_certs_free(certs, ncerts);
    return rc;
}
