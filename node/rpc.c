/* JSON-RPC envelope, auth, rate limiting and request logging. */
#include "rpc.h"

#include <math.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chain.h"
#include "log.h"
#include "metrics.h"
#include "peermgr.h"
#include "ratelimit.h"
#include "rpc_bitcoin.h"
#include "rpc_evm.h"
#include "sys.h"

#define MAX_LIMITED_METHODS 16 /* distinct overridden methods checked per request */

static int is_evm(const struct node *n)
{
    return n->cfg->node.flavour == NODE_FLAVOUR_EVM;
}

const struct node_method *node_rpc_methods(const struct node_config *cfg)
{
    return cfg->node.flavour == NODE_FLAVOUR_EVM ? node_rpc_evm_methods : node_rpc_bitcoin_methods;
}

static int secret_eq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    /* Compare in constant time for equal lengths; lengths are not secret. */
    return la == lb && CRYPTO_memcmp(a, b, la) == 0;
}

int node_rpc_authorize(const struct node *n, const char *authorization, char *user, size_t userlen)
{
    const struct node_config *c = n->cfg;
    unsigned char decoded[512];
    size_t b64len;
    int dlen;

    user[0] = '\0';
    if (!c->rpc.auth.user && !n->cookie[0])
        return 1;
    if (!authorization || strncasecmp(authorization, "Basic ", 6) != 0)
        return 0;
    authorization += 6;
    while (*authorization == ' ')
        authorization++;
    b64len = strlen(authorization);
    while (b64len && authorization[b64len - 1] == ' ')
        b64len--;
    if (b64len == 0 || b64len % 4 || b64len / 4 * 3 >= sizeof(decoded))
        return 0;
    dlen = EVP_DecodeBlock(decoded, (const unsigned char *)authorization, (int)b64len);
    if (dlen < 0)
        return 0;
    /* EVP_DecodeBlock counts padding as zero bytes. */
    for (size_t i = b64len; i > 0 && authorization[i - 1] == '='; i--)
        dlen--;
    decoded[dlen] = '\0';
    if (memchr(decoded, '\0', (size_t)dlen))
        return 0;
    char *colon = strchr((char *)decoded, ':');
    if (!colon)
        return 0;
    *colon = '\0';
    const char *name = (const char *)decoded, *pass = colon + 1;
    int ok = 0;
    if (n->cookie[0] && strcmp(name, "__cookie__") == 0)
        ok = secret_eq(pass, n->cookie);
    else if (c->rpc.auth.user && strcmp(name, c->rpc.auth.user) == 0)
        ok = secret_eq(pass, c->rpc.auth.password);
    if (ok)
        snprintf(user, userlen, "%s", name);
    OPENSSL_cleanse(decoded, sizeof(decoded));
    return ok;
}

/* One call of a request, as Bitcoin Core's JSONRPCRequest::parse reads it. */
struct call {
    json_t *id;       /* borrowed; NULL when absent */
    int v2;           /* "jsonrpc":"2.0" */
    int notification; /* v2 without "id" */
    const char *method;
    json_t *params; /* borrowed, or NULL */
};

static int parse_call(const struct node *n, json_t *obj, struct call *c,
                      struct node_method_error *e)
{
    memset(c, 0, sizeof(*c));
    if (!json_is_object(obj))
        return node_method_fail(e, RPC_INVALID_REQUEST, "Invalid Request object");
    c->id = json_object_get(obj, "id");
    json_t *ver = json_object_get(obj, "jsonrpc");
    if (ver) {
        if (!json_is_string(ver))
            return node_method_fail(e, RPC_INVALID_REQUEST, "jsonrpc field must be a string");
        if (strcmp(json_string_value(ver), "2.0") == 0)
            c->v2 = 1;
        else if (is_evm(n) || strcmp(json_string_value(ver), "1.0") != 0)
            return node_method_fail(e, RPC_INVALID_REQUEST, "JSON-RPC version not supported");
    } else if (is_evm(n)) {
        return node_method_fail(e, RPC_INVALID_REQUEST, "invalid request: missing jsonrpc \"2.0\"");
    }
    c->notification = c->v2 && !c->id;
    json_t *m = json_object_get(obj, "method");
    if (!m)
        return node_method_fail(e, RPC_INVALID_REQUEST, "Missing method");
    if (!json_is_string(m))
        return node_method_fail(e, RPC_INVALID_REQUEST, "Method must be a string");
    c->method = json_string_value(m);
    c->params = json_object_get(obj, "params");
    if (c->params && !json_is_null(c->params) && !json_is_array(c->params) &&
        !json_is_object(c->params))
        return node_method_fail(e, RPC_INVALID_REQUEST, "Params must be an array or object");
    return 0;
}

/* Positional arguments from an array or (named) object. New reference. */
static json_t *positional(const struct node_method *m, json_t *params, struct node_method_error *e)
{
    if (!params || json_is_null(params))
        return json_array();
    if (json_is_array(params))
        return json_incref(params);
    json_t *arr = json_array();
    size_t nargs = 0;
    while (nargs < 4 && m->args[nargs])
        nargs++;
    const char *key;
    json_t *v;
    json_object_foreach(params, key, v)
    {
        size_t i = 0;
        while (i < nargs && strcmp(m->args[i], key) != 0)
            i++;
        if (i == nargs) {
            json_decref(arr);
            node_method_fail(e, RPC_INVALID_PARAMETER, "Unknown named parameter %s", key);
            return NULL;
        }
    }
    for (size_t i = 0; arr && i < nargs; i++) {
        v = json_object_get(params, m->args[i]);
        if (json_array_append(arr, v ? v : json_null()) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    /* Trailing absent arguments are simply not given. */
    while (arr && json_array_size(arr) &&
           json_is_null(json_array_get(arr, json_array_size(arr) - 1)))
        json_array_remove(arr, json_array_size(arr) - 1);
    if (!arr)
        node_method_fail(e, RPC_OUT_OF_MEMORY, "out of memory");
    return arr;
}

static const char *warmup_message(const struct node *n)
{
    return atomic_load(&((struct node *)n)->phase) == NODE_PHASE_LOADING
               ? "Loading block index\xe2\x80\xa6"
               : "Verifying blocks\xe2\x80\xa6";
}

/* Whether `m` is refused while the node is behind its peers. Bitcoin: what
 * Bitcoin Core refuses in initial block download (getblocktemplate) plus
 * block production, which would fork the chain; reads answer from the
 * partial chain, as in Core. EVM: everything but the identity and sync
 * status methods, since a lagging state is a wrong answer there. */
static int refused_while_syncing(const struct node *n, const char *m)
{
    static const char *const btc[] = {"getblocktemplate", "generate", "generatetoaddress", NULL};
    static const char *const evm_ok[] = {"eth_chainId", "eth_syncing",        "net_peerCount",
                                         "net_version", "web3_clientVersion", NULL};
    const char *const *list = is_evm(n) ? evm_ok : btc;
    int listed = 0;
    for (size_t i = 0; list[i]; i++)
        listed |= strcmp(list[i], m) == 0;
    return is_evm(n) ? !listed : listed;
}

/* Execute one parsed call. 0 with *result, or -1 with e. */
static int exec_call(struct node *n, const struct call *c, json_t **result,
                     struct node_method_error *e)
{
    const struct node_method *m = node_method_find(node_rpc_methods(n->cfg), c->method);
    int phase = atomic_load(&n->phase);

    *result = NULL;
    if (phase != NODE_PHASE_READY)
        return node_method_fail(e, is_evm(n) ? RPC_SERVER_ERROR : RPC_IN_WARMUP, "%s",
                                warmup_message(n));
    if (!m) {
        if (is_evm(n))
            return node_method_fail(e, RPC_METHOD_NOT_FOUND,
                                    "the method %.128s does not exist/is not available", c->method);
        return node_method_fail(e, RPC_METHOD_NOT_FOUND, "Method not found");
    }
    if (node_peermgr_syncing(n->peers) && refused_while_syncing(n, m->name)) {
        int64_t h = node_chain_height(n->chain), best = node_peermgr_best_height(n->peers);
        if (is_evm(n))
            return node_method_fail(e, RPC_SERVER_ERROR, "node is syncing: block %lld of %lld",
                                    (long long)h, (long long)(best > h ? best : h));
        return node_method_fail(e, RPC_CLIENT_IN_INITIAL_DOWNLOAD,
                                "Bitcoin Core is in initial sync and waiting for blocks...");
    }
    json_t *args = positional(m, c->params, e);
    if (!args)
        return -1;
    size_t nargs = json_array_size(args);
    int rc;
    if (nargs < m->min_args || nargs > m->max_args) {
        if (is_evm(n) && nargs < m->min_args)
            rc = node_method_fail(e, RPC_INVALID_PARAMS, "missing value for required argument %zu",
                                  nargs);
        else if (is_evm(n))
            rc = node_method_fail(e, RPC_INVALID_PARAMS, "too many arguments, want at most %u",
                                  m->max_args);
        else
            rc = node_method_fail(e, RPC_INVALID_PARAMS,
                                  "Invalid params: %s takes %u to %u arguments, got %zu\nUsage: %s",
                                  m->name, m->min_args, m->max_args, nargs, m->help);
    } else {
        rc = m->fn(n, args, result, e);
    }
    json_decref(args);
    return rc;
}

static json_t *reply_obj(const struct node *n, int v2, json_t *result,
                         const struct node_method_error *e, json_t *id)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = 0;
    if (v2 || is_evm(n))
        bad |= json_object_set_new(o, "jsonrpc", json_string("2.0"));
    if (e) {
        json_t *err = json_pack("{s:i,s:s}", "code", e->code, "message", e->message);
        if (!v2 && !is_evm(n))
            bad |= json_object_set_new(o, "result", json_null());
        bad |= json_object_set_new(o, "error", err);
    } else {
        bad |= json_object_set_new(o, "result", result ? json_incref(result) : json_null());
        if (!v2 && !is_evm(n))
            bad |= json_object_set_new(o, "error", json_null());
    }
    bad |= json_object_set_new(o, "id", id ? json_incref(id) : json_null());
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Status of a failed single legacy call, as Bitcoin Core's JSONErrorReply. */
static int legacy_status(int code)
{
    if (code == RPC_INVALID_REQUEST)
        return 400;
    if (code == RPC_METHOD_NOT_FOUND)
        return 404;
    return 500;
}

/* One call's outcome: the parsed call (its id borrowed from the request),
 * and a result (owned) or an error. */
struct answer {
    struct call c;
    int rc; /* 0: result, -1: e */
    json_t *result;
    struct node_method_error e;
};

struct exchange {
    struct node *n;
    const struct httpd_request *req;
    double t0;
    char reqid[25];
    char user[128];
    char ip[64];
    const char *log_method;
    size_t ncalls;
    int status;
    json_t *reply; /* NULL: empty body, unless `direct` */
    /* A single call that succeeded is written straight from `single`, in
     * the bytes jansson would make of reply_obj()'s object, without
     * building that object. */
    int direct;
    struct answer single;
};

/* The address of "a.b.c.d:port" or "[v6]:port", without the port. */
static void client_ip(const char *addr, char *out, size_t size)
{
    const char *start = addr, *end;
    size_t len;

    if (addr[0] == '[') {
        start = addr + 1;
        end = strchr(start, ']');
    } else {
        end = strrchr(addr, ':');
    }
    len = end ? (size_t)(end - start) : strlen(start);
    if (len >= size)
        len = size - 1;
    memcpy(out, start, len);
    out[len] = '\0';
}

/* `v` in lower-case hex, at least 8 digits, at `out`; returns the end. */
static char *hex8(char *out, uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    int n = 8;

    while (n < 16 && v >> (4 * n))
        n++;
    for (int i = n - 1; i >= 0; i--)
        *out++ = digits[(v >> (4 * i)) & 15];
    return out;
}

/* Request ids are the seed's low 32 bits and a sequence number, as
 * "%08llx%08llx". Each thread takes its numbers from the shared counter a
 * block at a time, so that a request does not contend for its cache line:
 * ids stay unique, and only roughly ordered across threads. */
#define REQID_BLOCK 256

static void request_id(struct node *n, char out[static 25])
{
    static _Thread_local uint64_t next, end;
    char *p;

    if (next == end) {
        next = atomic_fetch_add(&n->request_counter, REQID_BLOCK);
        end = next + REQID_BLOCK;
    }
    p = hex8(out, n->request_seed & 0xffffffffULL);
    p = hex8(p, next++);
    *p = '\0';
}

/* Parse (unless `parsed`: a->c holds the call) and execute one call and
 * record its metrics: its result (owned) or its error in `a`. */
static void run_call(struct exchange *x, json_t *obj, struct answer *a, int parsed)
{
    double t0 = sys_mono_s();

    a->result = NULL;
    a->e.code = 0;
    a->e.message[0] = '\0';
    a->rc = parsed ? 0 : parse_call(x->n, obj, &a->c, &a->e);
    if (a->rc == 0)
        a->rc = exec_call(x->n, &a->c, &a->result, &a->e);
    node_metrics_rpc(x->n->metrics, a->c.method, a->rc != 0, sys_mono_s() - t0);
}

/* Whether the call was a notification, which gets no answer. */
static int answer_none(const struct answer *a)
{
    return a->c.notification && a->c.method;
}

/* Per-call wrapper for batches: execute, record metrics, build the reply
 * object (NULL for notifications). */
static json_t *run_one(struct exchange *x, json_t *obj, int *failed_code)
{
    struct answer a;
    json_t *reply = NULL;

    run_call(x, obj, &a, 0);
    *failed_code = a.rc == 0 ? 0 : a.e.code;
    if (!answer_none(&a))
        reply = reply_obj(x->n, a.c.v2, a.result, a.rc == 0 ? NULL : &a.e, a.c.id);
    json_decref(a.result);
    return reply;
}

/* Take tokens for the whole request from every layer, or none. */
static int rate_limit(struct exchange *x, json_t *root, double *retry_after)
{
    const struct node_config *cfg = x->n->cfg;
    struct {
        const struct node_method_limit *limit;
        double cost;
        char key[NODE_RATELIMIT_KEY_MAX];
    } methods[MAX_LIMITED_METHODS];
    size_t nmethods = 0;
    char ipkey[NODE_RATELIMIT_KEY_MAX], userkey[NODE_RATELIMIT_KEY_MAX];
    const char *ident = x->user[0] ? x->user : x->ip;
    double now = sys_mono_s(), cost = (double)(x->ncalls ? x->ncalls : 1);
    int r;

    for (size_t i = 0; i < x->ncalls; i++) {
        json_t *obj = json_is_array(root) ? json_array_get(root, i) : root;
        const char *mname = json_string_value(json_object_get(obj, "method"));
        const struct node_method_limit *l = mname ? node_config_method_limit(cfg, mname) : NULL;
        if (!l)
            continue;
        size_t k = 0;
        while (k < nmethods && methods[k].limit != l)
            k++;
        if (k == nmethods) {
            if (nmethods == MAX_LIMITED_METHODS)
                continue;
            methods[k].limit = l;
            methods[k].cost = 0;
            snprintf(methods[k].key, sizeof(methods[k].key), "method:%.64s:%.64s", ident,
                     l->method);
            nmethods++;
        }
        methods[k].cost += 1;
    }
    snprintf(ipkey, sizeof(ipkey), "ip:%s", x->ip);
    snprintf(userkey, sizeof(userkey), "user:%.64s", x->user);
    r = node_ratelimit_take(x->n->rl, ipkey, cfg->rpc.auth.rate_limit_rate,
                            cfg->rpc.auth.rate_limit_burst, cost, now, retry_after);
    if (r != 1) {
        node_metrics_rate_limited(x->n->metrics, NODE_RATELIMIT_IP);
        return r;
    }
    if (x->user[0]) {
        r = node_ratelimit_take(x->n->rl, userkey, cfg->rpc.auth.rate_limit_rate,
                                cfg->rpc.auth.rate_limit_burst, cost, now, retry_after);
        if (r != 1) {
            node_ratelimit_refund(x->n->rl, ipkey, cost);
            node_metrics_rate_limited(x->n->metrics, NODE_RATELIMIT_USER);
            return r;
        }
    }
    for (size_t k = 0; k < nmethods; k++) {
        r = node_ratelimit_take(x->n->rl, methods[k].key, methods[k].limit->rate,
                                methods[k].limit->burst, methods[k].cost, now, retry_after);
        if (r == 1)
            continue;
        for (size_t j = 0; j < k; j++)
            node_ratelimit_refund(x->n->rl, methods[j].key, methods[j].cost);
        node_ratelimit_refund(x->n->rl, ipkey, cost);
        if (x->user[0])
            node_ratelimit_refund(x->n->rl, userkey, cost);
        node_metrics_rate_limited(x->n->metrics, NODE_RATELIMIT_METHOD);
        return r;
    }
    return 1;
}

static int add_header(struct httpd_response *resp, const char *name, const char *value)
{
    return httpd_add_header(resp, name, value);
}

/* A reply body under construction: most replies fit the first allocation
 * (json_dumps starts at 16 bytes and grows, then we added the newline). */
#define BODY_START 512

struct body {
    char *p;
    size_t len, cap;
};

static int body_add(const char *buf, size_t size, void *data)
{
    struct body *b = data;

    if (b->len + size > b->cap) {
        size_t cap = b->cap;
        char *np;
        while (cap < b->len + size)
            cap *= 2;
        if (!(np = realloc(b->p, cap)))
            return -1;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, buf, size);
    b->len += size;
    return 0;
}

/* Hand a finished JSON body to the response (it owns the buffer then); on
 * `failed`, free it. 0 or -1. */
static int body_hand(struct body *b, int failed, struct httpd_response *resp)
{
    if (failed) {
        free(b->p);
        return -1;
    }
    resp->content_type = "application/json";
    resp->body = b->p;
    resp->body_len = b->len;
    return 0;
}

static int body_adds(struct body *b, const char *s)
{
    return body_add(s, strlen(s), b);
}

static int body_dump(struct body *b, const json_t *v)
{
    if (!v)
        return body_adds(b, "null");
    return json_dump_callback(v, body_add, b, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* The reply of a single call that succeeded, as reply_obj() orders it:
 * "jsonrpc" (2.0 or EVM), "result", "error" (legacy), "id". 0 or -1. */
static int answer_send(const struct exchange *x, struct httpd_response *resp)
{
    const struct answer *a = &x->single;
    int legacy = !a->c.v2 && !is_evm(x->n);
    struct body b = {.cap = BODY_START};
    int rc;

    if (!(b.p = malloc(b.cap)))
        return -1;
    rc = body_adds(&b, legacy ? "{\"result\":" : "{\"jsonrpc\":\"2.0\",\"result\":");
    rc |= body_dump(&b, a->result);
    rc |= body_adds(&b, legacy ? ",\"error\":null,\"id\":" : ",\"id\":");
    rc |= body_dump(&b, a->c.id);
    rc |= body_adds(&b, "}\n");
    return body_hand(&b, rc, resp);
}

/* Serialize the reply (or nothing) into resp. 0 or -1. */
static int send_reply(struct exchange *x, struct httpd_response *resp)
{
    resp->status = x->status;
    if (x->direct)
        return answer_send(x, resp);
    if (!x->reply)
        return httpd_reply(resp, x->status, "application/json", "", 0);
    struct body b = {.cap = BODY_START};
    if (!(b.p = malloc(b.cap)))
        return -1;
    return body_hand(
        &b, json_dump_callback(x->reply, body_add, &b, JSON_COMPACT) != 0 || body_add("\n", 1, &b),
        resp);
}

static void finish_log(struct exchange *x, size_t sent)
{
    /* Whole microseconds: an integer is written without printf's floating
     * point, which was a tenth of the line's cost. */
    long long us = llround((sys_mono_s() - x->t0) * 1e6);
    node_metrics_bytes(x->n->metrics, x->req->body_len, sent);
    node_metrics_http(x->n->metrics, x->status);
    LOG_EVENT(x->status >= 500 ? LOG_WARN : LOG_INFO, "rpc_request", x->reqid, NULL,
              LF_STR("method", x->log_method ? x->log_method : "-"),
              LF_STR("client_addr", x->req->client_addr),
              LF_STR("user", x->user[0] ? x->user : "-"), LF_INT("request_size", x->req->body_len),
              LF_INT("calls", x->ncalls), LF_INT("status", x->status), LF_INT("duration_us", us),
              LF_INT("response_size", sent));
}

static json_t *simple_error(struct exchange *x, int code, const char *msg, json_t *id)
{
    struct node_method_error e = {.code = code};
    snprintf(e.message, sizeof(e.message), "%s", msg);
    return reply_obj(x->n, 0, NULL, &e, id);
}

/* Dispatch a parsed body: single call or batch. */
static void dispatch(struct exchange *x, json_t *root)
{
    int code;
    if (json_is_object(root)) {
        struct call c;
        struct node_method_error e;
        int parsed = parse_call(x->n, root, &c, &e) == 0;
        x->log_method = parsed ? c.method : json_string_value(json_object_get(root, "method"));
        if (!parsed && !is_evm(x->n)) {
            /* Bitcoin Core: a request that does not parse is an HTTP error. */
            node_metrics_rpc(x->n->metrics, NULL, 1, 0);
            x->reply = reply_obj(x->n, c.v2, NULL, &e, c.id);
            x->status = legacy_status(e.code);
            return;
        }
        struct answer *a = &x->single;
        a->c = c;
        run_call(x, root, a, parsed);
        code = a->rc == 0 ? 0 : a->e.code;
        if (answer_none(a)) {
            x->status = 204;
            return;
        }
        if (a->rc == 0) {
            x->direct = 1;
            x->status = 200;
            return;
        }
        x->reply = reply_obj(x->n, a->c.v2, NULL, &a->e, a->c.id);
        if (!x->reply) {
            x->status = 204;
        } else if (code && !a->c.v2 && !is_evm(x->n)) {
            x->status = legacy_status(code);
        } else {
            x->status = 200;
        }
        return;
    }
    /* Batch: always 200; notifications get no element. */
    x->log_method = "batch";
    x->status = 200;
    if (json_array_size(root) == 0 && is_evm(x->n)) {
        x->reply = simple_error(x, RPC_INVALID_REQUEST, "empty batch", NULL);
        return;
    }
    x->reply = json_array();
    for (size_t i = 0; x->reply && i < json_array_size(root); i++) {
        json_t *r = run_one(x, json_array_get(root, i), &code);
        if (r && json_array_append_new(x->reply, r) != 0) {
            json_decref(x->reply);
            x->reply = NULL;
        }
    }
    if (!x->reply) {
        x->status = 500;
        x->reply = simple_error(x, RPC_OUT_OF_MEMORY, "out of memory", NULL);
    } else if (json_array_size(x->reply) == 0 && json_array_size(root) > 0) {
        json_decref(x->reply);
        x->reply = NULL;
        x->status = 204;
    }
}

int node_rpc_handle(struct node *n, const struct httpd_request *req, struct httpd_response *resp)
{
    struct exchange x = {.n = n, .req = req, .t0 = sys_mono_s(), .status = 200};
    json_t *root = NULL;
    json_error_t jerr;
    int rc = -1;

    request_id(n, x.reqid);
    client_ip(req->client_addr, x.ip, sizeof(x.ip));
    if (add_header(resp, "X-Request-Id", x.reqid) != 0)
        goto out;
    if (strcmp(req->method, "POST") != 0) {
        x.status = 405;
        x.log_method = "-";
        rc = httpd_reply(resp, 405, "text/plain; charset=utf-8",
                         "JSONRPC server handles only POST requests\n", 42);
        goto log;
    }
    /* Without credentials configured nobody is asked for any: the header
     * is not even looked up. */
    if ((n->cfg->rpc.auth.user || n->cookie[0]) &&
        !node_rpc_authorize(n, httpd_header(req, "Authorization"), x.user, sizeof(x.user))) {
        x.status = 401;
        x.log_method = "-";
        rc = add_header(resp, "WWW-Authenticate", "Basic realm=\"jsonrpc\"");
        if (rc == 0)
            rc = httpd_reply(resp, 401, "text/plain; charset=utf-8", "", 0);
        goto log;
    }
    root = json_loadb(req->body, req->body_len, 0, &jerr);
    if (!root || (!json_is_object(root) && !json_is_array(root))) {
        x.log_method = "-";
        node_metrics_rpc(n->metrics, NULL, 1, 0);
        x.reply = simple_error(&x, RPC_PARSE_ERROR,
                               root ? "Top-level object parse error" : "Parse error", NULL);
        x.status = is_evm(n) ? 200 : 500;
        goto send;
    }
    x.ncalls = json_is_array(root) ? json_array_size(root) : 1;
    if (n->rl) {
        double retry = 1;
        int r = rate_limit(&x, root, &retry);
        if (r != 1) {
            char secs[32];
            x.log_method =
                json_is_object(root) ? json_string_value(json_object_get(root, "method")) : "batch";
            snprintf(secs, sizeof(secs), "%.0f", retry < 1 ? 1 : ceil(retry));
            x.status = 429;
            json_t *id = json_is_object(root) ? json_object_get(root, "id") : NULL;
            x.reply =
                simple_error(&x, RPC_LIMIT_EXCEEDED,
                             r < 0 ? "rate limiter out of memory" : "Rate limit exceeded", id);
            if (x.reply && json_is_object(root) && json_object_get(root, "jsonrpc") && !is_evm(n)) {
                /* 2.0 shape for 2.0 callers: error without "result". */
                json_object_del(x.reply, "result");
                json_object_set_new(x.reply, "jsonrpc", json_string("2.0"));
            }
            if (add_header(resp, "Retry-After", secs) != 0)
                goto out;
            goto send;
        }
    }
    dispatch(&x, root);
send:
    rc = send_reply(&x, resp);
log:
    finish_log(&x, resp->body_len);
out:
    json_decref(x.reply);
    json_decref(x.single.result);
    json_decref(root);
    return rc;
}
