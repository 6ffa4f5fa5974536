/* HAProxy runtime API over its unix socket, with plain socket I/O. */
#include "hapi.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "routes.h"
#include "sys.h"

#define HAPI_TIMEOUT_MS 10000
#define HAPI_REPLY_MAX (64 * 1024 * 1024)

/* Read until HAProxy closes, at most HAPI_TIMEOUT_MS between chunks. */
static int read_all(int fd, char **out, const char *path, struct yamlcfg_error *err)
{
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);

    if (!buf) {
        routes_error(err, "out of memory");
        return -1;
    }
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, HAPI_TIMEOUT_MS);
        ssize_t r;
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0) {
            routes_error(err, "%s: no answer from HAProxy within %d ms", path, HAPI_TIMEOUT_MS);
            goto fail;
        }
        if (cap - len < 2) {
            char *nb;
            if (cap >= HAPI_REPLY_MAX) {
                routes_error(err, "%s: answer larger than %d bytes", path, HAPI_REPLY_MAX);
                goto fail;
            }
            nb = realloc(buf, cap * 2);
            if (!nb) {
                routes_error(err, "out of memory");
                goto fail;
            }
            buf = nb;
            cap *= 2;
        }
        r = read(fd, buf + len, cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            routes_error(err, "%s: read: %s", path, strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    *out = buf;
    return 0;
fail:
    free(buf);
    return -1;
}

int hapi_command(const char *path, const char *cmd, const char *payload, char **reply,
                 struct yamlcfg_error *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = -1;

    *reply = NULL;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        routes_error(err, "%s: socket path too long", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        routes_error(err, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        routes_error(err, "%s: connect: %s", path, strerror(errno));
        goto fail;
    }
    if (sys_write_all(fd, cmd, strlen(cmd)) < 0 ||
        (payload &&
         (sys_write_all(fd, " <<\n", 4) < 0 || sys_write_all(fd, payload, strlen(payload)) < 0 ||
          sys_write_all(fd, "\n", 1) < 0)) ||
        sys_write_all(fd, "\n", 1) < 0) {
        routes_error(err, "%s: write: %s", path, strerror(errno));
        goto fail;
    }
    if (read_all(fd, reply, path, err) < 0)
        goto fail;
    close(fd);
    return 0;
fail:
    close(fd);
    return -1;
}

/* Whether a reply says nothing: HAProxy ends every answer with an empty
 * line, so a reply with no byte at all means the command was cut off (a
 * payload larger than HAProxy's buffer, for one) and is not a success. */
static int blank(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s != '\n' && *s != '\r' && *s != ' ')
            return 0;
    return 1;
}

int hapi_expect(const char *path, const char *cmd, const char *payload, const char *ok_prefix,
                struct yamlcfg_error *err)
{
    char *reply = NULL;
    int ok;

    if (hapi_command(path, cmd, payload, &reply, err) < 0)
        return -1;
    ok = ok_prefix ? strncmp(reply, ok_prefix, strlen(ok_prefix)) == 0 : blank(reply);
    if (!ok) {
        size_t n = strcspn(reply, "\n");
        routes_error(err, "%s: \"%s\": %.*s", path, cmd, (int)(n > 300 ? 300 : n), reply);
    }
    free(reply);
    return ok ? 0 : -1;
}

int hapi_backend_exists(const char *path, const char *backend, struct yamlcfg_error *err)
{
    char *reply = NULL, *save = NULL;
    int found = 0;

    if (hapi_command(path, "show backend", NULL, &reply, err) < 0)
        return -1;
    for (char *line = strtok_r(reply, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        if (strcmp(line, backend) == 0)
            found = 1;
    free(reply);
    return found;
}

int hapi_servers(const char *path, const char *backend, struct hapi_server **out, size_t *n,
                 struct yamlcfg_error *err)
{
    char cmd[256], *reply = NULL, *save = NULL;
    struct hapi_server *list = NULL;
    size_t count = 0;

    snprintf(cmd, sizeof(cmd), "show servers state %s", backend);
    if (hapi_command(path, cmd, NULL, &reply, err) < 0)
        return -1;
    for (char *line = strtok_r(reply, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        /* be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state
         * srv_uweight srv_iweight ... srv_fqdn srv_port ... */
        char name[65], addr[64], fqdn[256];
        int op, admin, uweight, port;
        struct hapi_server *nl;
        if (line[0] == '#' || strcmp(line, "1") == 0)
            continue;
        if (sscanf(line,
                   "%*d %*s %*d %64s %63s %d %d %d %*d %*d %*d %*d %*d %*d %*d %*d %*d %255s %d",
                   name, addr, &op, &admin, &uweight, fqdn, &port) != 7) {
            if (strncmp(line, "Can't find", 10) == 0 || strstr(line, "not found")) {
                routes_error(err, "%s: no backend %s", path, backend);
                goto fail;
            }
            continue;
        }
        nl = realloc(list, (count + 1) * sizeof(*list));
        if (!nl) {
            routes_error(err, "out of memory");
            goto fail;
        }
        list = nl;
        memset(&list[count], 0, sizeof(list[count]));
        snprintf(list[count].name, sizeof(list[count].name), "%s", name);
        snprintf(list[count].addr, sizeof(list[count].addr), "%s", addr);
        list[count].port = port;
        list[count].op_state = op;
        list[count].admin_state = admin;
        list[count].weight = uweight;
        count++;
    }
    free(reply);
    *out = list;
    *n = count;
    return 0;
fail:
    free(reply);
    free(list);
    return -1;
}

/* Field `idx` of a CSV line, copied into buf. */
static void csv_field(const char *line, int idx, char *buf, size_t len)
{
    const char *p = line;
    size_t n;

    for (int i = 0; i < idx && p; i++) {
        p = strchr(p, ',');
        if (p)
            p++;
    }
    if (!p) {
        buf[0] = '\0';
        return;
    }
    n = strcspn(p, ",\n");
    if (n >= len)
        n = len - 1;
    memcpy(buf, p, n);
    buf[n] = '\0';
}

static int csv_index(const char *header, const char *name)
{
    char f[64];

    for (int i = 0; i < 200; i++) {
        csv_field(header, i, f, sizeof(f));
        if (strcmp(f, name) == 0)
            return i;
    }
    return -1;
}

int hapi_server_stat(const char *path, const char *backend, const char *server,
                     struct hapi_stat *st, struct yamlcfg_error *err)
{
    char cmd[256], *reply = NULL, *save = NULL, f[64];
    int i_status, i_scur, i_qcur, i_check, rc = 1;

    snprintf(cmd, sizeof(cmd), "show stat %s 4 -1", backend);
    if (hapi_command(path, cmd, NULL, &reply, err) < 0)
        return -1;
    char *header = strtok_r(reply, "\n", &save);
    if (!header || strncmp(header, "# ", 2) != 0) {
        routes_error(err, "%s: unexpected answer to \"%s\"", path, cmd);
        rc = -1;
        goto out;
    }
    header += 2;
    i_status = csv_index(header, "status");
    i_scur = csv_index(header, "scur");
    i_qcur = csv_index(header, "qcur");
    i_check = csv_index(header, "check_status");
    if (i_status < 0 || i_scur < 0 || i_qcur < 0 || i_check < 0) {
        routes_error(err, "%s: \"%s\" lacks status/scur/qcur/check_status", path, cmd);
        rc = -1;
        goto out;
    }
    for (char *line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        csv_field(line, 0, f, sizeof(f));
        if (strcmp(f, backend) != 0)
            continue;
        csv_field(line, 1, f, sizeof(f));
        if (strcmp(f, server) != 0)
            continue;
        csv_field(line, i_status, st->status, sizeof(st->status));
        csv_field(line, i_check, st->check_status, sizeof(st->check_status));
        csv_field(line, i_scur, f, sizeof(f));
        st->scur = strtol(f, NULL, 10);
        csv_field(line, i_qcur, f, sizeof(f));
        st->qcur = strtol(f, NULL, 10);
        rc = 0;
        break;
    }
out:
    free(reply);
    return rc;
}
