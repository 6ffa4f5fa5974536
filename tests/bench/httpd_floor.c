/* httpd-floor: cc-node's HTTP and logging layers without JSON-RPC, for
 * bench_node.sh. It serves through lib/httpd (libmicrohttpd, the same
 * options and threads as cc-node) and logs one line per request through
 * lib/log's writer thread, with the fields of cc-node's rpc_request line,
 * then answers the fixed body nginx answers in that bench. cc-node against
 * this floor is what JSON-RPC costs (parsing, dispatch, the reply, metrics);
 * this floor against nginx is what our HTTP server and log line cost.
 *
 *   httpd-floor LISTEN THREADS    e.g. httpd-floor 127.0.0.1:8545 2
 *
 * Logs go to stderr as JSON lines; SIGINT or SIGTERM stops it. */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpd.h"
#include "log.h"
#include "sys.h"

#define FLOOR_BODY "{\"result\":0,\"error\":null,\"id\":1}\n"
#define FLOOR_LOG_QUEUE 8192 /* cc-node's NODE_LOG_QUEUE_LINES */

static atomic_ullong served;

static int handle(void *ctx, const struct httpd_request *req, struct httpd_response *resp)
{
    double t0 = sys_mono_s();
    unsigned long long n = atomic_fetch_add_explicit(&served, 1, memory_order_relaxed);
    char reqid[24];

    (void)ctx;
    snprintf(reqid, sizeof(reqid), "%016llx", n);
    if (httpd_add_header(resp, "X-Request-Id", reqid) != 0 ||
        httpd_reply(resp, 200, "application/json", FLOOR_BODY, sizeof(FLOOR_BODY) - 1) != 0)
        return -1;
    LOG_EVENT(LOG_INFO, "rpc_request", reqid, NULL, LF_STR("method", "getblockcount"),
              LF_STR("client_addr", req->client_addr), LF_STR("user", "-"),
              LF_INT("request_size", req->body_len), LF_INT("calls", 1), LF_INT("status", 200),
              LF_INT("duration_us", (long long)((sys_mono_s() - t0) * 1e6)),
              LF_INT("response_size", resp->body_len));
    return 0;
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv)
{
    struct httpd_options o = {0};
    struct httpd *h;
    char err[256];
    long threads;

    if (argc != 3 || (threads = strtol(argv[2], NULL, 10)) < 1 || threads > 64) {
        fprintf(stderr, "usage: httpd-floor LISTEN THREADS (1-64)\n");
        return 2;
    }
    log_setup("httpd-floor", LOG_FORMAT_JSON, LOG_INFO, 2);
    if (log_async_start(FLOOR_LOG_QUEUE) != 0) {
        fprintf(stderr, "httpd-floor: cannot start the log writer\n");
        return 1;
    }
    o.listen = argv[1];
    o.threads = (unsigned)threads;
    if (!(h = httpd_start(&o, handle, NULL, err, sizeof(err)))) {
        fprintf(stderr, "httpd-floor: %s\n", err);
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    while (!stop)
        pause();
    httpd_stop(h);
    log_async_stop();
    return 0;
}
