/* httpd: a real server on an ephemeral loopback port, driven with raw HTTP/1.1
 * over plain sockets (no client library). */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpd.h"
#include "log.h"
#include "sys.h"

/* Appends "key=value;" (value "(null)" without '='); stops after "stop". */
static int arg_append(void *ctx, const char *key, const char *value)
{
    char *list = ctx;
    size_t n = strlen(list);

    snprintf(list + n, 256 - n, "%s=%s;", key, value ? value : "(null)");
    return strcmp(key, "stop") == 0;
}

/* Echoes what the layer handed over; some paths exercise other replies. */
static int echo_handler(void *ctx, const struct httpd_request *req, struct httpd_response *resp)
{
    const char *q = httpd_query(req, "q");
    const char *x = httpd_header(req, "X-Test");
    char *text = NULL;
    int n, rc;

    (void)ctx;
    if (strcmp(req->path, "/fail") == 0) {
        /* Partial work is released by the server on failure. */
        httpd_add_header(resp, "X-Leak", "no");
        httpd_reply(resp, 200, NULL, "partial", 7);
        return -1;
    }
    if (strcmp(req->path, "/json") == 0) {
        json_t *o = json_pack("{s:s,s:i}", "path", req->path, "n", 42);
        rc = httpd_reply_json(resp, 201, o);
        json_decref(o);
        return rc;
    }
    if (strcmp(req->path, "/empty") == 0) {
        resp->status = 204;
        return 0;
    }
    if (strcmp(req->path, "/args") == 0) {
        char list[256] = "", line[300];
        unsigned visited = httpd_query_each(req, arg_append, list);
        n = snprintf(line, sizeof(line), "%u %s", visited, list);
        return httpd_reply(resp, 200, NULL, line, (size_t)n);
    }
    n = asprintf(&text, "method=%s path=%s q=%s x=%s len=%zu client=%s body=", req->method,
                 req->path, q ? q : "-", x ? x : "-", req->body_len, req->client_addr);
    if (n < 0)
        return -1;
    rc = httpd_reply(resp, 200, "text/plain", text, (size_t)n);
    free(text);
    if (rc < 0)
        return -1;
    /* Append the body as is (it may contain NULs). */
    char *grown = realloc(resp->body, resp->body_len + req->body_len);
    if (!grown)
        return -1;
    memcpy(grown + resp->body_len, req->body, req->body_len);
    resp->body = grown;
    resp->body_len += req->body_len;
    if (req->body[req->body_len] != '\0')
        return -1; /* the copy must be NUL-terminated */
    if (httpd_add_header(resp, "X-Served-By", "ccgw-test") < 0 ||
        httpd_add_header(resp, "Cache-Control", "no-store") < 0)
        return -1;
    return 0;
}

static struct httpd *start(const char *listen, size_t max_body, unsigned threads)
{
    struct httpd_options o = {.listen = listen, .max_body_bytes = max_body, .threads = threads};
    char err[256] = "";
    struct httpd *h = httpd_start(&o, echo_handler, NULL, err, sizeof(err));

    ck_assert_msg(h != NULL, "httpd_start(%s): %s", listen, err);
    ck_assert_uint_ne(httpd_port(h), 0);
    return h;
}

static int dial(int family, uint16_t port)
{
    struct sockaddr_storage ss = {0};
    socklen_t len;
    int fd = socket(family, SOCK_STREAM, 0);
    struct timeval tv = {.tv_sec = 5};

    ck_assert_int_ge(fd, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*in);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        in6->sin6_addr = in6addr_loopback;
        len = sizeof(*in6);
    }
    if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        ck_assert_int_gt(w, 0);
        p += w;
        n -= (size_t)w;
    }
}

struct reply {
    int status;
    char head[4096]; /* status line and headers */
    char body[8192];
    size_t body_len;
};

/* Read one response (Content-Length framed, as MHD sends our buffers).
 * 0, or -1 when the connection closed or failed first. */
static int read_reply(int fd, struct reply *r)
{
    char buf[16384];
    size_t len = 0, hlen;
    char *end = NULL, *cl;
    ssize_t n;

    memset(r, 0, sizeof(*r));
    while (!end) {
        n = recv(fd, buf + len, sizeof(buf) - len - 1, 0);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    hlen = (size_t)(end - buf) + 4;
    ck_assert_uint_lt(hlen, sizeof(r->head));
    memcpy(r->head, buf, hlen);
    ck_assert_int_eq(sscanf(r->head, "HTTP/1.1 %d ", &r->status), 1);
    cl = strcasestr(r->head, "\r\nContent-Length: ");
    r->body_len = cl ? strtoul(cl + 18, NULL, 10) : 0;
    ck_assert_uint_lt(r->body_len, sizeof(r->body));
    while (len < hlen + r->body_len) {
        n = recv(fd, buf + len, sizeof(buf) - len - 1, 0);
        if (n <= 0)
            return -1;
        len += (size_t)n;
    }
    ck_assert_uint_eq(len, hlen + r->body_len); /* nothing beyond one response */
    memcpy(r->body, buf + hlen, r->body_len);
    r->body[r->body_len] = '\0';
    return 0;
}

/* The peer closed: recv sees EOF (or a reset) before any byte. */
static int closed_by_peer(int fd)
{
    char c;
    ssize_t n = recv(fd, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

static void exchange(uint16_t port, const char *request, struct reply *r)
{
    int fd = dial(AF_INET, port);
    ck_assert_int_ge(fd, 0);
    send_all(fd, request, strlen(request));
    ck_assert_int_eq(read_reply(fd, r), 0);
    close(fd);
}

START_TEST(test_httpd_get_query_headers)
{
    struct httpd *h = start("127.0.0.1:0", 0, 1);
    struct reply r;

    exchange(httpd_port(h),
             "GET /hello%20world?q=a%26b&z=1 HTTP/1.1\r\nHost: x\r\nX-Test: yes please\r\n\r\n",
             &r);
    ck_assert_int_eq(r.status, 200);
    static const char want[] = "method=GET path=/hello world q=a&b x=yes please len=0 "
                               "client=127.0.0.1:";
    ck_assert_msg(strncmp(r.body, want, strlen(want)) == 0, "%s", r.body);
    ck_assert_ptr_nonnull(strcasestr(r.head, "\r\nContent-Type: text/plain\r\n"));
    ck_assert_ptr_nonnull(strcasestr(r.head, "\r\nX-Served-By: ccgw-test\r\n"));
    ck_assert_ptr_nonnull(strcasestr(r.head, "\r\nCache-Control: no-store\r\n"));

    exchange(httpd_port(h), "GET /json HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    ck_assert_int_eq(r.status, 201);
    ck_assert_str_eq(r.body, "{\"path\":\"/json\",\"n\":42}");
    ck_assert_ptr_nonnull(strcasestr(r.head, "\r\nContent-Type: application/json\r\n"));

    exchange(httpd_port(h), "GET /empty HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    ck_assert_int_eq(r.status, 204);
    ck_assert_uint_eq(r.body_len, 0);

    /* Every argument in order, repeated and value-less ones included. */
    exchange(httpd_port(h), "GET /args?b=2&a=%41&b=3&flag&e= HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "5 b=2;a=A;b=3;flag=(null);e=;");
    exchange(httpd_port(h), "GET /args?a=1&stop=x&c=3 HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    ck_assert_str_eq(r.body, "2 a=1;stop=x;");
    exchange(httpd_port(h), "GET /args HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    ck_assert_str_eq(r.body, "0 ");
    /* httpd_query() answers the first of repeated arguments. */
    exchange(httpd_port(h), "GET /two?q=first&q=second HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    ck_assert_ptr_nonnull(strstr(r.body, " q=first "));
    httpd_stop(h);
}
END_TEST

/* A request built by hand (no connection) has no arguments and no headers. */
START_TEST(test_httpd_request_by_hand)
{
    struct httpd_request req = {.method = "GET", .path = "/", .body = ""};
    char list[256] = "";

    ck_assert_ptr_null(httpd_query(&req, "q"));
    ck_assert_ptr_null(httpd_header(&req, "Host"));
    ck_assert_uint_eq(httpd_query_each(&req, arg_append, list), 0);
    ck_assert_str_eq(list, "");
}
END_TEST

START_TEST(test_httpd_post_body)
{
    struct httpd *h = start("127.0.0.1:0", 0, 1);
    static const char req[] = "POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\nab\0cdef";
    char big_req[9000];
    struct reply r;
    int fd = dial(AF_INET, httpd_port(h)), n;

    ck_assert_int_ge(fd, 0);
    send_all(fd, req, sizeof(req) - 1);
    ck_assert_int_eq(read_reply(fd, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert(r.body_len > 7);
    ck_assert_int_eq(memcmp(r.body + r.body_len - 7, "ab\0cdef", 7), 0);
    ck_assert_ptr_nonnull(strstr(r.body, "method=POST path=/rpc q=- x=- len=7 "));
    close(fd);

    /* A body that arrives in pieces, with Expect: 100-continue. */
    fd = dial(AF_INET, httpd_port(h));
    n = snprintf(
        big_req, sizeof(big_req),
        "PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n");
    send_all(fd, big_req, (size_t)n);
    ck_assert_int_eq(read_reply(fd, &r), 0);
    ck_assert_int_eq(r.status, 100);
    memset(big_req, 'z', 5000);
    send_all(fd, big_req, 2500);
    usleep(20000);
    send_all(fd, big_req + 2500, 2500);
    ck_assert_int_eq(read_reply(fd, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, " len=5000 "));
    close(fd);
    httpd_stop(h);
}
END_TEST

/* Three requests on one socket; the body buffer of the first request
 * does not leak into the second. */
START_TEST(test_httpd_keep_alive)
{
    struct httpd *h = start("127.0.0.1:0", 0, 1);
    struct reply r1, r2, r3;
    char client1[64], client2[64];
    int fd = dial(AF_INET, httpd_port(h));
    static const char post[] =
        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789";
    static const char post2[] = "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz";
    static const char get[] = "GET /c?q=3 HTTP/1.1\r\nHost: x\r\n\r\n";

    ck_assert_int_ge(fd, 0);
    send_all(fd, post, strlen(post));
    ck_assert_int_eq(read_reply(fd, &r1), 0);
    send_all(fd, post2, strlen(post2));
    ck_assert_int_eq(read_reply(fd, &r2), 0);
    send_all(fd, get, strlen(get));
    ck_assert_int_eq(read_reply(fd, &r3), 0);
    ck_assert_int_eq(r1.status, 200);
    ck_assert_int_eq(r2.status, 200);
    ck_assert_int_eq(r3.status, 200);
    ck_assert_ptr_nonnull(strstr(r1.body, "path=/a q=- x=- len=10 "));
    ck_assert_ptr_nonnull(strstr(r1.body, "body=0123456789"));
    ck_assert_ptr_nonnull(strstr(r2.body, "path=/b q=- x=- len=3 "));
    ck_assert_str_eq(strstr(r2.body, "body="), "body=xyz");
    ck_assert_str_eq(strstr(r3.body, "body="), "body=");
    ck_assert_ptr_nonnull(strstr(r3.body, "path=/c q=3 "));
    /* Same connection, same client port. */
    sscanf(strstr(r1.body, "client="), "client=%63s", client1);
    sscanf(strstr(r3.body, "client="), "client=%63s", client2);
    ck_assert_str_eq(client1, client2);

    close(fd);
    httpd_stop(h);
}
END_TEST

START_TEST(test_httpd_body_too_large)
{
    struct httpd *h = start("127.0.0.1:0", 1024, 1);
    char req[2048], chunk[700];
    struct reply r;
    json_t *j;
    int fd, n;

    /* Exactly at the limit is fine. */
    fd = dial(AF_INET, httpd_port(h));
    n = snprintf(req, sizeof(req), "POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 1024\r\n\r\n");
    memset(req + n, 'a', 1024);
    send_all(fd, req, (size_t)n + 1024);
    ck_assert_int_eq(read_reply(fd, &r), 0);
    ck_assert_int_eq(r.status, 200);
    close(fd);

    /* Declared larger: 413 with a JSON error, and the connection is closed
     * without the body being read. */
    fd = dial(AF_INET, httpd_port(h));
    n = snprintf(req, sizeof(req), "POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 1025\r\n\r\n");
    send_all(fd, req, (size_t)n);
    ck_assert_int_eq(read_reply(fd, &r), 0);
    ck_assert_int_eq(r.status, 413);
    ck_assert_ptr_nonnull(strcasestr(r.head, "\r\nContent-Type: application/json\r\n"));
    j = json_loads(r.body, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "error")), "request body too large");
    json_decref(j);
    ck_assert(closed_by_peer(fd));
    close(fd);

    /* Chunked past the limit: the connection is cut. */
    fd = dial(AF_INET, httpd_port(h));
    n = snprintf(req, sizeof(req),
                 "POST /chunked HTTP/1.1\r\nHost: x\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n");
    send_all(fd, req, (size_t)n);
    memset(chunk, 'c', sizeof(chunk));
    for (int i = 0; i < 2; i++) {
        n = snprintf(req, sizeof(req), "%zx\r\n", sizeof(chunk));
        send_all(fd, req, (size_t)n);
        send_all(fd, chunk, sizeof(chunk));
        send_all(fd, "\r\n", 2);
    }
    send(fd, "0\r\n\r\n", 5, MSG_NOSIGNAL);
    ck_assert(closed_by_peer(fd));
    close(fd);

    /* Chunked within the limit is assembled. */
    fd = dial(AF_INET, httpd_port(h));
    n = snprintf(req, sizeof(req),
                 "POST /chunked HTTP/1.1\r\nHost: x\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    send_all(fd, req, (size_t)n);
    ck_assert_int_eq(read_reply(fd, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(strstr(r.body, "body="), "body=abcde");
    close(fd);

    /* The server is still healthy. */
    exchange(httpd_port(h), "GET /after HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    ck_assert_int_eq(r.status, 200);
    httpd_stop(h);
}
END_TEST

START_TEST(test_httpd_handler_error)
{
    struct httpd *h = start("127.0.0.1:0", 0, 1);
    struct reply r;
    json_t *j;
    int fd = dial(AF_INET, httpd_port(h));
    static const char req[] = "GET /fail HTTP/1.1\r\nHost: x\r\n\r\n";

    send_all(fd, req, strlen(req));
    ck_assert_int_eq(read_reply(fd, &r), 0);
    ck_assert_int_eq(r.status, 500);
    ck_assert_ptr_null(strcasestr(r.head, "X-Leak"));
    j = json_loads(r.body, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "error")), "internal error");
    json_decref(j);
    /* The connection survives a handler error. */
    send_all(fd, req, strlen(req));
    ck_assert_int_eq(read_reply(fd, &r), 0);
    ck_assert_int_eq(r.status, 500);
    close(fd);
    httpd_stop(h);
}
END_TEST

START_TEST(test_httpd_bad_listen)
{
    static const struct {
        const char *listen, *needle;
    } cases[] = {
        {"", "empty"},
        {"127.0.0.1", "expected host:port"},
        {"127.0.0.1:", "bad port"},
        {"127.0.0.1:99999", "bad port"},
        {"127.0.0.1:80x", "bad port"},
        {"127.0.0.1:-1", "bad port"},
        {"::1:80", "expected host:port"},
        {"[::1:80", "expected [ipv6]:port"},
        {"[::1]80", "expected [ipv6]:port"},
        {"[zz]:80", "not an IPv6 address"},
        {"no-such-host.invalid:80", "cannot resolve"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct httpd_options o = {.listen = cases[i].listen};
        char err[256] = "";
        struct httpd *h = httpd_start(&o, echo_handler, NULL, err, sizeof(err));
        ck_assert_msg(h == NULL, "'%s' accepted", cases[i].listen);
        ck_assert_msg(strstr(err, cases[i].needle) != NULL, "'%s': '%s'", cases[i].listen, err);
    }
}
END_TEST

START_TEST(test_httpd_port_in_use)
{
    struct httpd *h = start("127.0.0.1:0", 0, 1);
    char listen[64], err[256] = "";
    struct httpd_options o = {.listen = listen};

    snprintf(listen, sizeof(listen), "127.0.0.1:%u", httpd_port(h));
    ck_assert_ptr_null(httpd_start(&o, echo_handler, NULL, err, sizeof(err)));
    ck_assert_msg(strstr(err, listen) && strstr(err, "in use"), "%s", err);
    httpd_stop(h);
    /* Free again once stopped. */
    h = httpd_start(&o, echo_handler, NULL, err, sizeof(err));
    ck_assert_msg(h != NULL, "%s", err);
    httpd_stop(h);
}
END_TEST

START_TEST(test_httpd_ipv6_and_dual_stack)
{
    struct httpd *h;
    struct reply r;
    int fd;
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    struct httpd_options o = {.listen = "[::1]:0"};
    char err[256];

    h = httpd_start(&o, echo_handler, NULL, err, sizeof(err));
    if (!h) {
        fprintf(stderr, "test_httpd_ipv6: skipped, no IPv6 loopback: %s\n", err);
        return;
    }
    fd = dial(AF_INET6, httpd_port(h));
    ck_assert_int_ge(fd, 0);
    send_all(fd, req, strlen(req));
    ck_assert_int_eq(read_reply(fd, &r), 0);
    ck_assert_ptr_nonnull(strstr(r.body, "client=[::1]:"));
    close(fd);
    httpd_stop(h);

    /* [::] accepts IPv4 too; IPv4 clients are shown as IPv4. */
    h = start("[::]:0", 0, 1);
    fd = dial(AF_INET, httpd_port(h));
    ck_assert_int_ge(fd, 0);
    send_all(fd, req, strlen(req));
    ck_assert_int_eq(read_reply(fd, &r), 0);
    ck_assert_ptr_nonnull(strstr(r.body, "client=127.0.0.1:"));
    close(fd);
    httpd_stop(h);
}
END_TEST

/* per_ip_limit refuses a second connection from the same address;
 * connection_timeout cuts an idle keep-alive connection. */
START_TEST(test_httpd_limits)
{
    struct httpd_options o = {.listen = "127.0.0.1:0", .per_ip_limit = 1, .connection_timeout = 1};
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    char err[256];
    struct httpd *h = httpd_start(&o, echo_handler, NULL, err, sizeof(err));
    struct reply r;
    struct pollfd pfd;
    int a, b;

    ck_assert_msg(h != NULL, "%s", err);
    a = dial(AF_INET, httpd_port(h));
    send_all(a, req, strlen(req));
    ck_assert_int_eq(read_reply(a, &r), 0);
    b = dial(AF_INET, httpd_port(h));
    ck_assert_int_ge(b, 0);
    ck_assert(closed_by_peer(b));
    close(b);
    /* The first one is idle and is closed after about a second. */
    pfd = (struct pollfd){.fd = a, .events = POLLIN};
    ck_assert_int_eq(poll(&pfd, 1, 5000), 1);
    ck_assert(closed_by_peer(a));
    close(a);
    /* Its slot is free again. */
    exchange(httpd_port(h), req, &r);
    ck_assert_int_eq(r.status, 200);
    httpd_stop(h);
}
END_TEST

#define LOAD_CLIENTS 4
#define LOAD_REQUESTS 250

static void *load_client(void *arg)
{
    uint16_t port = *(uint16_t *)arg;
    int fd = dial(AF_INET, port), ok = 0;
    char req[128];
    struct reply r;

    for (int i = 0; fd >= 0 && i < LOAD_REQUESTS; i++) {
        int n = snprintf(req, sizeof(req), "GET /load?q=%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
        char want[32];
        send_all(fd, req, (size_t)n);
        if (read_reply(fd, &r) < 0 || r.status != 200)
            break;
        snprintf(want, sizeof(want), " q=%d ", i);
        if (strstr(r.body, want))
            ok++;
    }
    if (fd >= 0)
        close(fd);
    return (void *)(intptr_t)ok;
}

/* A thread pool serves concurrent keep-alive clients, every answer matching
 * its request. */
START_TEST(test_httpd_thread_pool_load)
{
    struct httpd *h = start("127.0.0.1:0", 0, 2);
    uint16_t port = httpd_port(h);
    pthread_t th[LOAD_CLIENTS];
    void *ok;

    for (int i = 0; i < LOAD_CLIENTS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, load_client, &port), 0);
    for (int i = 0; i < LOAD_CLIENTS; i++) {
        pthread_join(th[i], &ok);
        ck_assert_int_eq((int)(intptr_t)ok, LOAD_REQUESTS);
    }
    httpd_stop(h);
}
END_TEST

START_TEST(test_httpd_reply_helpers)
{
    struct httpd_response r = {0};

    ck_assert_int_eq(httpd_reply(&r, 404, "text/html", "<p>no</p>", 9), 0);
    ck_assert_int_eq(r.status, 404);
    ck_assert_str_eq(r.content_type, "text/html");
    ck_assert_int_eq(memcmp(r.body, "<p>no</p>", 9), 0);
    ck_assert_int_eq(httpd_reply_error(&r, 400, "bad \"input\""), 0);
    ck_assert_int_eq(r.status, 400);
    ck_assert_uint_eq(r.body_len, strlen("{\"error\":\"bad \\\"input\\\"\"}"));
    ck_assert_int_eq(memcmp(r.body, "{\"error\":\"bad \\\"input\\\"\"}", r.body_len), 0);
    for (int i = 0; i < HTTPD_MAX_HEADERS; i++)
        ck_assert_int_eq(httpd_add_header(&r, "X-N", "v"), 0);
    ck_assert_int_eq(httpd_add_header(&r, "X-N", "v"), -1);
    free(r.body);
    for (int i = 0; i < r.nheaders; i++) {
        free(r.header_names[i]);
        free(r.header_values[i]);
    }
}
END_TEST

static void quiet_logs(void)
{
    log_setup("test", LOG_FORMAT_TEXT, LOG_ERROR, 2);
}

Suite *httpd_suite(void)
{
    Suite *s = suite_create("httpd");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, quiet_logs, NULL);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_httpd_get_query_headers);
    tcase_add_test(tc, test_httpd_request_by_hand);
    tcase_add_test(tc, test_httpd_post_body);
    tcase_add_test(tc, test_httpd_keep_alive);
    tcase_add_test(tc, test_httpd_body_too_large);
    tcase_add_test(tc, test_httpd_handler_error);
    tcase_add_test(tc, test_httpd_bad_listen);
    tcase_add_test(tc, test_httpd_port_in_use);
    tcase_add_test(tc, test_httpd_ipv6_and_dual_stack);
    tcase_add_test(tc, test_httpd_limits);
    tcase_add_test(tc, test_httpd_thread_pool_load);
    tcase_add_test(tc, test_httpd_reply_helpers);
    suite_add_tcase(s, tc);
    return s;
}
