/* HTTP serving on libmicrohttpd: MHD parses HTTP/1.1, keeps connections
 * alive and runs the event loop (epoll, a fixed pool of threads; no thread
 * per request). This layer keeps one small state per TCP connection (client
 * address and a body buffer reused by every request on that connection),
 * collects the body up to the limit, calls the handler once per complete
 * request and hands its buffer to MHD without copying. */
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"

#define HTTPD_DEFAULT_MAX_BODY (1024 * 1024)
#define HTTPD_DEFAULT_CONN_LIMIT 1024
#define HTTPD_DEFAULT_TIMEOUT 30
/* A body buffer larger than this is released after its request, so that one
 * big upload does not pin memory for the rest of a keep-alive connection. */
#define HTTPD_KEEP_BODY_CAP (64 * 1024)
/* MHD's memory pool per connection holds the request line and headers, the
 * read buffer and the response headers; MHD zeroes what a request used
 * when the next one starts on the connection. Its default (32 KiB) made that
 * memset, and the cache misses of 32 KiB per connection, one of the larger
 * costs of a small keep-alive request; 8 KiB halves them (measured with a
 * fixed-answer handler, 2 threads, 64 connections: 4.5 -> 3.5 us of CPU per
 * request). A request whose header section passes about 7 KiB gets 431, as
 * with nginx's 8 KiB header buffers. Bodies are not bounded by it: they go
 * through the read buffer into the connection's own buffer. */
#define HTTPD_CONN_MEMORY (8 * 1024)
#define HTTPD_DEFAULT_CONTENT_TYPE "text/plain; charset=utf-8"
#define HTTPD_JSON_CONTENT_TYPE "application/json"

struct httpd {
    struct MHD_Daemon *daemon;
    httpd_handler_fn handler;
    void *ctx;
    size_t max_body;
    uint16_t port;
    /* While starting, MHD's error messages are captured here for the caller. */
    atomic_int starting;
    char start_error[256];
};

/* Per TCP connection; requests point to it (httpd.h's opaque struct). */
struct httpd_conn {
    struct MHD_Connection *mhd;      /* for arguments and headers */
    char addr[INET6_ADDRSTRLEN + 9]; /* "[v6]:port" */
    char *body;
    size_t len, cap;
    int oom; /* the current request's body could not be stored */
};

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    struct httpd *h = cls;
    char msg[512];
    size_t n;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    if (atomic_load(&h->starting)) {
        /* Keep the first message: it names the cause (bind, listen...). */
        if (h->start_error[0] == '\0')
            snprintf(h->start_error, sizeof(h->start_error), "%s", msg);
        return;
    }
    LOG_EVENT(LOG_WARN, "httpd_mhd", NULL, msg, LF_INT("port", h->port));
}

static void format_addr(const struct sockaddr *sa, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN];

    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        snprintf(buf, size, "%s:%u", ip, ntohs(in->sin_port));
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        /* Dual-stack sockets see IPv4 clients as ::ffff:a.b.c.d: show them as IPv4. */
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], ip, sizeof(ip));
            snprintf(buf, size, "%s:%u", ip, ntohs(in6->sin6_port));
        } else {
            inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
            snprintf(buf, size, "[%s]:%u", ip, ntohs(in6->sin6_port));
        }
    } else {
        snprintf(buf, size, "unknown");
    }
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct httpd_conn *hc;
    const union MHD_ConnectionInfo *info;

    (void)cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        /* On allocation failure the context stays NULL and requests get a 503. */
        hc = calloc(1, sizeof(*hc));
        if (!hc)
            return;
        hc->mhd = c;
        info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        format_addr(info ? info->client_addr : NULL, hc->addr, sizeof(hc->addr));
        *socket_context = hc;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        hc = *socket_context;
        if (hc) {
            free(hc->body);
            free(hc);
        }
        *socket_context = NULL;
    }
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct httpd_conn *hc = *req_cls;

    (void)cls;
    (void)c;
    (void)toe;
    if (hc && hc->cap > HTTPD_KEEP_BODY_CAP) {
        free(hc->body);
        hc->body = NULL;
        hc->cap = 0;
    }
    if (hc)
        hc->len = 0;
    *req_cls = NULL;
}

/* Make room for `need` body bytes plus the NUL. 0 or -1. */
static int body_reserve(struct httpd_conn *hc, size_t need)
{
    size_t cap = hc->cap ? hc->cap : 1024;
    char *nb;

    if (need + 1 <= hc->cap)
        return 0;
    while (cap < need + 1)
        cap *= 2;
    nb = realloc(hc->body, cap);
    if (!nb)
        return -1;
    hc->body = nb;
    hc->cap = cap;
    return 0;
}

static void response_clear(struct httpd_response *r)
{
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
    for (int i = 0; i < r->nheaders; i++) {
        free(r->header_names[i]);
        free(r->header_values[i]);
        r->header_names[i] = r->header_values[i] = NULL;
    }
    r->nheaders = 0;
}

/* Queue `r` on the connection and release what it owns (the body goes to
 * MHD). Returns MHD's verdict. */
static enum MHD_Result send_response(struct MHD_Connection *c, struct httpd_response *r)
{
    struct MHD_Response *resp = NULL;
    enum MHD_Result ret = MHD_NO;
    const char *ctype = r->content_type ? r->content_type : HTTPD_DEFAULT_CONTENT_TYPE;

    if (r->body && r->body_len > 0) {
        resp = MHD_create_response_from_buffer(r->body_len, r->body, MHD_RESPMEM_MUST_FREE);
        if (resp)
            r->body = NULL; /* MHD owns it now */
    } else {
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    }
    if (!resp)
        goto fail;
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) != MHD_YES)
        goto fail;
    for (int i = 0; i < r->nheaders; i++) {
        if (MHD_add_response_header(resp, r->header_names[i], r->header_values[i]) != MHD_YES)
            LOG_EVENT(LOG_WARN, "httpd_bad_header", NULL, "response header dropped",
                      LF_STR("name", r->header_names[i]));
    }
    ret = MHD_queue_response(c, (unsigned)r->status, resp);
fail:
    if (resp)
        MHD_destroy_response(resp);
    response_clear(r);
    return ret;
}

/* A JSON error response built without a handler (413, 500, 503). */
static enum MHD_Result send_error(struct MHD_Connection *c, int status, const char *message)
{
    struct httpd_response r = {0};

    if (httpd_reply_error(&r, status, message) < 0) {
        /* Out of memory: an empty response with the status still tells the client. */
        r.status = status;
    }
    return send_response(c, &r);
}

/* Content-Length as a number; -1 when absent or not a plain decimal. */
static long long content_length(struct MHD_Connection *c)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    long long n = 0;

    if (!v || !*v)
        return -1;
    for (; *v; v++) {
        if (*v < '0' || *v > '9' || n > (LLONG_MAX - 9) / 10)
            return -1;
        n = n * 10 + (*v - '0');
    }
    return n;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct httpd *h = cls;
    struct httpd_conn *hc = *req_cls;
    struct httpd_request req;
    struct httpd_response resp = {.status = 200};
    const union MHD_ConnectionInfo *info;
    long long clen;

    (void)version;
    (void)upload_data;
    if (!hc) {
        /* Headers are in: the first call of a request. */
        info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        hc = info ? info->socket_context : NULL;
        if (!hc)
            return send_error(c, 503, "out of memory");
        hc->len = 0;
        hc->oom = 0;
        *req_cls = hc;
        clen = content_length(c);
        if (clen > (long long)h->max_body) {
            /* Answering now makes MHD skip the body and close the connection. */
            LOG_EVENT(LOG_INFO, "httpd_body_too_large", NULL, NULL, LF_STR("client", hc->addr),
                      LF_INT("content_length", clen), LF_INT("limit", h->max_body));
            return send_error(c, 413, "request body too large");
        }
        if (clen > 0 && body_reserve(hc, (size_t)clen) < 0)
            hc->oom = 1;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (hc->len + n > h->max_body) {
            /* A chunked body past the limit: MHD cannot answer in the middle of
             * an upload, so the connection is closed rather than read on. */
            LOG_EVENT(LOG_INFO, "httpd_body_too_large", NULL, "chunked body, connection closed",
                      LF_STR("client", hc->addr), LF_INT("limit", h->max_body));
            return MHD_NO;
        }
        if (hc->oom || body_reserve(hc, hc->len + n) < 0) {
            hc->oom = 1;
            return MHD_YES;
        }
        memcpy(hc->body + hc->len, upload_data, n);
        hc->len += n;
        return MHD_YES;
    }
    if (hc->oom)
        return send_error(c, 503, "out of memory");

    /* The request is complete. */
    if (hc->body)
        hc->body[hc->len] = '\0';
    req = (struct httpd_request){
        .method = method,
        .path = url,
        .client_addr = hc->addr,
        .body = hc->body ? hc->body : "",
        .body_len = hc->len,
        .conn = hc,
    };
    if (h->handler(h->ctx, &req, &resp) < 0 || resp.status < 100 || resp.status > 999 ||
        (resp.body_len > 0 && !resp.body)) {
        LOG_EVENT(LOG_WARN, "httpd_handler_error", NULL, NULL, LF_STR("method", method),
                  LF_STR("path", url), LF_STR("client", hc->addr));
        response_clear(&resp);
        return send_error(c, 500, "internal error");
    }
    return send_response(c, &resp);
}

/* Split "host:port", "[v6]:port", ":port" into a socket address. 0 or -1
 * with a message. */
static int parse_listen(const char *listen, struct sockaddr_storage *ss, int *ipv6, char *err,
                        size_t errlen)
{
    char host[256];
    const char *colon, *hs, *he;
    unsigned long port;
    char *end;

    if (!listen || !*listen) {
        snprintf(err, errlen, "listen address is empty");
        return -1;
    }
    if (listen[0] == '[') {
        hs = listen + 1;
        he = strchr(hs, ']');
        if (!he || he[1] != ':') {
            snprintf(err, errlen, "listen '%s': expected [ipv6]:port", listen);
            return -1;
        }
        colon = he + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon || memchr(listen, ':', (size_t)(colon - listen))) {
            snprintf(err, errlen, "listen '%s': expected host:port, [ipv6]:port or :port", listen);
            return -1;
        }
        hs = listen;
        he = colon;
    }
    errno = 0;
    port = strtoul(colon + 1, &end, 10);
    if (colon[1] < '0' || colon[1] > '9' || *end || errno || port > 65535) {
        snprintf(err, errlen, "listen '%s': bad port '%s'", listen, colon + 1);
        return -1;
    }
    if ((size_t)(he - hs) >= sizeof(host)) {
        snprintf(err, errlen, "listen '%s': host name too long", listen);
        return -1;
    }
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';

    memset(ss, 0, sizeof(*ss));
    if (listen[0] == '[') {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1) {
            snprintf(err, errlen, "listen '%s': '%s' is not an IPv6 address", listen, host);
            return -1;
        }
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *ipv6 = 1;
        return 0;
    }
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
    *ipv6 = 0;
    if (host[0] == '\0' || strcmp(host, "*") == 0) {
        in->sin_addr.s_addr = htonl(INADDR_ANY);
        return 0;
    }
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1)
        return 0;
    /* A name: its first IPv4 address, else its first IPv6 address. */
    static const int families[] = {AF_INET, AF_INET6};
    for (size_t i = 0; i < 2; i++) {
        struct addrinfo hints = {.ai_family = families[i], .ai_socktype = SOCK_STREAM};
        struct addrinfo *res = NULL;
        if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
            continue;
        memcpy(ss, res->ai_addr, res->ai_addrlen);
        if (families[i] == AF_INET)
            ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
        else
            ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
        *ipv6 = families[i] == AF_INET6;
        freeaddrinfo(res);
        return 0;
    }
    snprintf(err, errlen, "listen '%s': cannot resolve host '%s'", listen, host);
    return -1;
}

struct httpd *httpd_start(const struct httpd_options *opts, httpd_handler_fn handler, void *ctx,
                          char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    struct httpd *h = NULL;
    const union MHD_DaemonInfo *info;
    unsigned int flags, threads, conn_limit, timeout, per_ip;
    uint16_t port;
    int ipv6 = 0;

    if (!opts || !handler) {
        snprintf(err, errlen, "httpd: no options or no handler");
        goto fail;
    }
    if (parse_listen(opts->listen, &ss, &ipv6, err, errlen) < 0)
        goto fail;
    port = ntohs(ipv6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                      : ((struct sockaddr_in *)&ss)->sin_port);
    h = calloc(1, sizeof(*h));
    if (!h) {
        snprintf(err, errlen, "httpd: out of memory");
        goto fail;
    }
    h->handler = handler;
    h->ctx = ctx;
    h->max_body = opts->max_body_bytes ? opts->max_body_bytes : HTTPD_DEFAULT_MAX_BODY;
    threads = opts->threads ? opts->threads : 1;
    conn_limit = opts->connection_limit ? opts->connection_limit : HTTPD_DEFAULT_CONN_LIMIT;
    timeout = opts->connection_timeout ? opts->connection_timeout : HTTPD_DEFAULT_TIMEOUT;
    per_ip = opts->per_ip_limit;

    flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
        flags |= MHD_USE_EPOLL | MHD_USE_TURBO;
    else
        flags |= MHD_USE_POLL;
    if (ipv6)
        flags |= MHD_USE_DUAL_STACK;

    /* The logger goes first so that MHD reports even option errors through it. */
    struct MHD_OptionItem ops[11];
    size_t nops = 0;
    ops[nops++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_logger, h};
    ops[nops++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
    ops[nops++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, conn_limit, NULL};
    ops[nops++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, timeout, NULL};
    ops[nops++] =
        (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTPD_CONN_MEMORY, NULL};
    if (per_ip > 0)
        ops[nops++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip, NULL};
    if (threads > 1)
        ops[nops++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, threads, NULL};
    ops[nops++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, h};
    ops[nops++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, h};
    ops[nops++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

    atomic_store(&h->starting, 1);
    /* MHD binds the address of MHD_OPTION_SOCK_ADDR; the port argument only
     * names it in MHD's messages. With port 0 the kernel picks one, and
     * httpd_port() reports it. */
    h->daemon = MHD_start_daemon(flags, port, NULL, NULL, on_request, h, MHD_OPTION_ARRAY, ops,
                                 MHD_OPTION_END);
    atomic_store(&h->starting, 0);
    if (!h->daemon) {
        snprintf(err, errlen, "httpd: cannot listen on %s: %s", opts->listen,
                 h->start_error[0] ? h->start_error : "libmicrohttpd failed to start");
        goto fail;
    }
    info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    return h;
fail:
    free(h);
    return NULL;
}

uint16_t httpd_port(const struct httpd *h)
{
    return h ? h->port : 0;
}

void httpd_stop(struct httpd *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->daemon);
    free(h);
}

const char *httpd_query(const struct httpd_request *req, const char *key)
{
    if (!req->conn)
        return NULL;
    return MHD_lookup_connection_value(req->conn->mhd, MHD_GET_ARGUMENT_KIND, key);
}

const char *httpd_header(const struct httpd_request *req, const char *name)
{
    if (!req->conn)
        return NULL;
    return MHD_lookup_connection_value(req->conn->mhd, MHD_HEADER_KIND, name);
}

struct arg_walk {
    httpd_arg_fn fn;
    void *ctx;
};

static enum MHD_Result arg_visit(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    struct arg_walk *w = cls;

    (void)kind;
    return w->fn(w->ctx, key, value) == 0 ? MHD_YES : MHD_NO;
}

unsigned httpd_query_each(const struct httpd_request *req, httpd_arg_fn fn, void *ctx)
{
    struct arg_walk w = {.fn = fn, .ctx = ctx};
    int n;

    if (!req->conn || !fn)
        return 0;
    n = MHD_get_connection_values(req->conn->mhd, MHD_GET_ARGUMENT_KIND, arg_visit, &w);
    return n > 0 ? (unsigned)n : 0;
}

int httpd_reply(struct httpd_response *resp, int status, const char *content_type, const char *body,
                size_t len)
{
    char *copy = NULL;

    if (len > 0) {
        copy = malloc(len);
        if (!copy)
            return -1;
        memcpy(copy, body, len);
    }
    free(resp->body);
    resp->body = copy;
    resp->body_len = len;
    resp->status = status;
    resp->content_type = content_type;
    return 0;
}

int httpd_reply_json(struct httpd_response *resp, int status, const struct json_t *json)
{
    size_t len = json_dumpb(json, NULL, 0, JSON_COMPACT);
    char *buf;

    if (len == 0)
        return -1;
    buf = malloc(len);
    if (!buf)
        return -1;
    if (json_dumpb(json, buf, len, JSON_COMPACT) != len) {
        free(buf);
        return -1;
    }
    free(resp->body);
    resp->body = buf;
    resp->body_len = len;
    resp->status = status;
    resp->content_type = HTTPD_JSON_CONTENT_TYPE;
    return 0;
}

int httpd_reply_error(struct httpd_response *resp, int status, const char *message)
{
    json_t *o = json_pack("{s:s}", "error", message ? message : "");
    int rc;

    if (!o)
        return -1;
    rc = httpd_reply_json(resp, status, o);
    json_decref(o);
    return rc;
}

int httpd_add_header(struct httpd_response *resp, const char *name, const char *value)
{
    char *n, *v;

    if (resp->nheaders >= HTTPD_MAX_HEADERS || !name || !value)
        return -1;
    n = strdup(name);
    v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return -1;
    }
    resp->header_names[resp->nheaders] = n;
    resp->header_values[resp->nheaders] = v;
    resp->nheaders++;
    return 0;
}
