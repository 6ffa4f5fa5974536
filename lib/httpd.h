/* HTTP serving for the small endpoints every daemon serves (/metrics,
 * /health*, JSON APIs, RPC). The server parses HTTP/1.1 and keeps connections
 * alive, collects the request body up to a limit (413 beyond it), calls one
 * handler per complete request, and sends the handler's response.
 *
 * The contract is this header alone: a handler reads a request (method, path,
 * client address, body; query arguments and headers through the functions
 * below) and fills a response (status, content type, body, extra headers).
 * How HTTP is parsed (libmicrohttpd) is lib/httpd.c's business only. */
#ifndef CCGW_HTTPD_H
#define CCGW_HTTPD_H

#include <stddef.h>
#include <stdint.h>

/* The server's state of the connection a request came on; opaque. */
struct httpd_conn;

/* A complete request, valid (with everything it points to) until the handler
 * returns. */
struct httpd_request {
    const char *method;      /* "GET", "POST", ... */
    const char *path;        /* URL path without the query string */
    const char *client_addr; /* "127.0.0.1:5555" or "[::1]:5555" */
    const char *body;        /* NUL-terminated copy, may contain NULs; "" when none */
    size_t body_len;
    /* For httpd_query(), httpd_query_each() and httpd_header(); NULL in a
     * request built by hand, which then has no arguments and no headers. */
    struct httpd_conn *conn;
};

#define HTTPD_MAX_HEADERS 8

struct httpd_response {
    int status;               /* default 200 */
    const char *content_type; /* static string; default "text/plain; charset=utf-8" */
    char *body;               /* malloc'd, freed by the server after sending */
    size_t body_len;
    int nheaders;
    char *header_names[HTTPD_MAX_HEADERS];  /* malloc'd, freed by the server */
    char *header_values[HTTPD_MAX_HEADERS]; /* malloc'd, freed by the server */
};

/* Handler: fill `resp`; return 0, or -1 to send a 500. Called from the
 * server's threads: handlers must be thread-safe. */
typedef int (*httpd_handler_fn)(void *ctx, const struct httpd_request *req,
                                struct httpd_response *resp);

struct httpd_options {
    const char *listen;          /* "127.0.0.1:9100", "[::1]:80", ":9100" (all IPv4) */
    size_t max_body_bytes;       /* default 1 MiB */
    unsigned threads;            /* worker threads; default 1 */
    unsigned connection_limit;   /* default 1024 */
    unsigned connection_timeout; /* seconds idle before a connection is cut; default 30 */
    unsigned per_ip_limit;       /* 0 = none */
};

struct httpd;

/* Start serving. Returns NULL with `err` (>= 256 bytes) filled on failure
 * (bad address, port in use, ...). */
struct httpd *httpd_start(const struct httpd_options *opts, httpd_handler_fn handler, void *ctx,
                          char *err, size_t errlen);

/* The port actually bound (useful with port 0). */
uint16_t httpd_port(const struct httpd *h);

void httpd_stop(struct httpd *h);

/* Query-string argument (URL-decoded) or request header (name compared
 * without case); NULL when absent. The first one when given several times. */
const char *httpd_query(const struct httpd_request *req, const char *key);
const char *httpd_header(const struct httpd_request *req, const char *name);

/* Called for each query-string argument, in the order of the URL; `value` is
 * NULL for an argument without '=' ("?flag"). Return 0 to go on, non-zero to
 * stop. */
typedef int (*httpd_arg_fn)(void *ctx, const char *key, const char *value);

/* Visit the query-string arguments of `req`, repeated ones included. Returns
 * how many were visited (the one that stopped the walk included). */
unsigned httpd_query_each(const struct httpd_request *req, httpd_arg_fn fn, void *ctx);

/* Response helpers: they copy their input. 0, or -1 out of memory. */
int httpd_reply(struct httpd_response *resp, int status, const char *content_type, const char *body,
                size_t len);
/* Serialise a jansson json_t (not stolen) compactly, content type JSON. */
struct json_t;
int httpd_reply_json(struct httpd_response *resp, int status, const struct json_t *json);
/* {"error": message} with the status. */
int httpd_reply_error(struct httpd_response *resp, int status, const char *message);
int httpd_add_header(struct httpd_response *resp, const char *name, const char *value);

#endif
