/* The relaystats HTTP API, dashboard, metrics and health endpoints. */
#include "rsapi.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bucket.h"
#include "log.h"
#include "rsauth.h"
#include "rscatalog.h"
#include "rsexport.h"
#include "rsnonrelay.h"
#include "rsquery.h"
#include "rsrealtime.h"
#include "rstime.h"
#include "rsweb.h"
#include "sys.h"

#define RSAPI_MAX_PARAMS 16
#define RSAPI_REALTIME_DEFAULT 12
#define RSAPI_REALTIME_MAX 288

static const char *const endpoint_names[RSAPI_EP_COUNT] = {
    "relays",     "export",    "realtime", "chains", "gateways",
    "non_relays", "dashboard", "metrics",  "health", "other",
};

/* One request in progress. */
struct call {
    struct rsapi *api;
    const struct httpd_request *req;
    struct httpd_response *resp;
    PGconn *pg;
    struct rsauth_principal who;
    struct rserr err;
};

int rsapi_init(struct rsapi *api, const struct ccgwconf *conf, struct rsdb_pool *pool)
{
    memset(api, 0, sizeof(*api));
    api->conf = conf;
    api->pool = pool;
    api->started = (int64_t)time(NULL);
    return prom_histogram_init(&api->latency, PROM_LATENCY_BOUNDS, PROM_LATENCY_NBOUNDS);
}

static int64_t now_secs(void)
{
    return (int64_t)time(NULL);
}

/* Parameter check: every argument must be in `allowed`, and appear once. */
struct param_check {
    const char *const *allowed;
    const char *bad;
    int dup;
    const char *seen[RSAPI_MAX_PARAMS];
    size_t nseen;
};

static int param_visit(void *ctx, const char *key, const char *value)
{
    struct param_check *pc = ctx;
    int ok = 0;

    (void)value;
    for (size_t i = 0; pc->allowed[i]; i++)
        if (strcmp(pc->allowed[i], key) == 0)
            ok = 1;
    for (size_t i = 0; ok && i < pc->nseen; i++)
        if (strcmp(pc->seen[i], key) == 0)
            pc->dup = 1;
    if (!ok || pc->dup || pc->nseen == RSAPI_MAX_PARAMS) {
        pc->bad = key;
        return 1;
    }
    pc->seen[pc->nseen++] = key;
    return 0;
}

static int check_params(struct call *c, const char *const *allowed)
{
    struct param_check pc = {.allowed = allowed};

    httpd_query_each(c->req, param_visit, &pc);
    if (pc.bad) {
        char shown[48];
        snprintf(shown, sizeof(shown), "%s", pc.bad);
        for (char *p = shown; *p; p++)
            if (*p < 0x20 || *p > 0x7e)
                *p = '?';
        rserr_set(&c->err, 400, pc.dup ? "parameter '%s' given twice" : "unknown parameter '%s'",
                  shown);
        return -1;
    }
    return 0;
}

static const char *param(struct call *c, const char *key)
{
    return httpd_query(c->req, key);
}

/* Optional name parameter: NULL when absent, validated when present. */
static int name_param(struct call *c, const char *key, const char **out)
{
    *out = param(c, key);
    if (*out && rsquery_check_name(key, *out, &c->err) != 0)
        return -1;
    return 0;
}

/* Restrict a provider token to its own data: `*provider` becomes the
 * token's provider; asking for another provider or account is a 403. */
static int scope(struct call *c, const char **provider, const char *account)
{
    int owned = 0;

    if (c->who.admin)
        return 0;
    if (*provider && strcmp(*provider, c->who.provider) != 0) {
        rserr_set(&c->err, 403, "this token may only read provider '%s'", c->who.provider);
        return -1;
    }
    *provider = c->who.provider;
    if (account) {
        if (rscatalog_account_owned(c->pg, account, c->who.provider, &owned, &c->err) != 0)
            return -1;
        if (!owned) {
            rserr_set(&c->err, 403, "account '%s' does not belong to provider '%s'", account,
                      c->who.provider);
            return -1;
        }
    }
    return 0;
}

static int parse_range(struct call *c, const char *default_step, struct rstime_range *range)
{
    const char *s = param(c, "step");
    int64_t step;

    if (!s)
        s = default_step;
    if (rstime_parse_step(s, &step) != 0) {
        rserr_set(&c->err, 400, "step must be 5m, 1h or 1d");
        return -1;
    }
    if (rstime_range_parse(param(c, "from"), param(c, "to"), step, now_secs(), range, c->err.text,
                           sizeof(c->err.text)) != 0) {
        c->err.status = 400;
        return -1;
    }
    return 0;
}

static int reply_json(struct call *c, json_t *j)
{
    int rv;

    if (!j) {
        rserr_set(&c->err, 500, "out of memory");
        return -1;
    }
    rv = httpd_reply_json(c->resp, 200, j);
    json_decref(j);
    return rv;
}

static int handle_relays(struct call *c)
{
    static const char *const allowed[] = {"from",    "to",       "step", "gateway", "chain",
                                          "account", "provider", "by",   NULL};
    struct rsquery q = {0};
    struct rsquery_result res;
    int rv;

    if (check_params(c, allowed) != 0 || parse_range(c, "5m", &q.range) != 0 ||
        name_param(c, "gateway", &q.gateway) != 0 || name_param(c, "chain", &q.chain) != 0 ||
        name_param(c, "account", &q.account) != 0 || name_param(c, "provider", &q.provider) != 0 ||
        rsquery_parse_by(param(c, "by"), &q.by, &c->err) != 0 ||
        scope(c, &q.provider, q.account) != 0)
        return -1;
    if (rsquery_run(c->pg, &q, &res, &c->err) != 0)
        return -1;
    rv = reply_json(c, rsquery_result_json(&res));
    rsquery_result_free(&res);
    return rv;
}

static int handle_export(struct call *c)
{
    static const char *const allowed[] = {"from", "to", "provider", "format", NULL};
    const char *provider, *format = param(c, "format");
    struct rstime_range range;
    struct rsexport e;
    int rv = -1;

    if (check_params(c, allowed) != 0 || name_param(c, "provider", &provider) != 0)
        return -1;
    if (format && strcmp(format, "json") != 0 && strcmp(format, "csv") != 0) {
        rserr_set(&c->err, 400, "format must be json or csv");
        return -1;
    }
    if (c->who.admin && !provider) {
        rserr_set(&c->err, 400, "provider is required");
        return -1;
    }
    if (scope(c, &provider, NULL) != 0 ||
        rstime_range_parse(param(c, "from"), param(c, "to"), RSTIME_STEP_5M, now_secs(), &range,
                           c->err.text, sizeof(c->err.text)) != 0) {
        if (!c->err.status)
            c->err.status = 400;
        return -1;
    }
    if (rsexport_run(c->pg, provider, 0, &range, &e, &c->err) != 0)
        return -1;
    if (format && strcmp(format, "csv") == 0) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (f && rsexport_csv(&e, f) == 0 && fclose(f) == 0) {
            f = NULL;
            rv = httpd_reply(c->resp, 200, "text/csv; charset=utf-8", buf, len);
        } else {
            rserr_set(&c->err, 500, "out of memory");
        }
        if (f)
            fclose(f);
        free(buf);
    } else {
        rv = reply_json(c, rsexport_json(&e));
    }
    rsexport_free(&e);
    return rv;
}

/* Whether a Redis row passes the filters and the token's scope. */
static int row_allowed(const struct rsrealtime_row *r, const char *gateway, const char *chain,
                       const struct rscatalog_accounts *owned, int admin)
{
    if ((gateway && strcmp(r->gateway, gateway) != 0) || (chain && strcmp(r->chain, chain) != 0))
        return 0;
    return admin || rscatalog_accounts_has(owned, r->chain, r->account, r->bucket);
}

/* Add `n` to the "current"/"total" members of obj[name]. */
static int tally(json_t *obj, const char *name, int current, int64_t n)
{
    json_t *o = json_object_get(obj, name);

    if (!o) {
        o = json_pack("{sIsI}", "current", (json_int_t)0, "total", (json_int_t)0);
        if (!o || json_object_set_new(obj, name, o) != 0)
            return -1;
    }
    if (current && json_integer_set(json_object_get(o, "current"),
                                    json_integer_value(json_object_get(o, "current")) + n) != 0)
        return -1;
    return json_integer_set(json_object_get(o, "total"),
                            json_integer_value(json_object_get(o, "total")) + n);
}

static json_t *realtime_json(const struct rsrealtime_rows *rows, const struct rstime_range *range,
                             int64_t now, const char *redis_error)
{
    size_t nb = rstime_nbuckets(range);
    int64_t *points = calloc(nb, sizeof(*points)), total = 0, current = 0;
    int64_t cur_bucket = range->to - range->step;
    json_t *root = NULL, *series, *chains, *gateways;
    char iso[32], now_iso[32], from_iso[32], cur_iso[32];

    if (!points)
        return NULL;
    series = json_array();
    chains = json_object();
    gateways = json_object();
    bucket_format_iso(now, now_iso, sizeof(now_iso));
    bucket_format_iso(range->from, from_iso, sizeof(from_iso));
    bucket_format_iso(cur_bucket, cur_iso, sizeof(cur_iso));
    root = json_pack("{sssssssss{sbss?}soso}", "now", now_iso, "from", from_iso, "bucket_start",
                     cur_iso, "step", "5m", "redis", "available", !redis_error, "error",
                     redis_error, "chains", chains, "gateways", gateways);
    if (!root || !series)
        goto fail;
    for (size_t i = 0; i < rows->n; i++) {
        const struct rsrealtime_row *r = &rows->rows[i];
        int is_cur = r->bucket == cur_bucket;
        if (r->bucket < range->from || r->bucket >= range->to)
            continue;
        points[(r->bucket - range->from) / range->step] += r->relays;
        total += r->relays;
        current += is_cur ? r->relays : 0;
        if (tally(chains, r->chain, is_cur, r->relays) != 0 ||
            tally(gateways, r->gateway, is_cur, r->relays) != 0)
            goto fail;
    }
    for (size_t i = 0; i < nb; i++) {
        bucket_format_iso(range->from + (int64_t)i * range->step, iso, sizeof(iso));
        if (json_array_append_new(series, json_pack("[sI]", iso, (json_int_t)points[i])) != 0)
            goto fail;
    }
    if (json_object_set_new(root, "series", series) != 0)
        goto fail_series_gone;
    series = NULL;
    if (json_object_set_new(root, "current", json_integer(current)) != 0 ||
        json_object_set_new(root, "total", json_integer(total)) != 0)
        goto fail_series_gone;
    free(points);
    return root;
fail:
    json_decref(series);
fail_series_gone:
    json_decref(root);
    free(points);
    return NULL;
}

static int handle_realtime(struct call *c)
{
    static const char *const allowed[] = {"gateway", "chain", "window", NULL};
    const char *gateway, *chain, *provider = NULL, *w = param(c, "window");
    struct rsrealtime_rows rows = {0}, redis = {0}, kept = {0};
    struct rscatalog_accounts owned = {0};
    struct rsquery q = {0};
    struct rsquery_result res = {0};
    char redis_err[256] = "";
    int64_t now = now_secs(), window = RSAPI_REALTIME_DEFAULT;
    int rv = -1, redis_ok;

    if (check_params(c, allowed) != 0 || name_param(c, "gateway", &gateway) != 0 ||
        name_param(c, "chain", &chain) != 0 || scope(c, &provider, NULL) != 0)
        return -1;
    if (w) {
        char *end;
        window = strtoll(w, &end, 10);
        if (*w == '\0' || *end != '\0' || window < 1 || window > RSAPI_REALTIME_MAX) {
            rserr_set(&c->err, 400, "window must be a number of 5m buckets from 1 to %d",
                      RSAPI_REALTIME_MAX);
            return -1;
        }
    }
    q.range.step = RSTIME_STEP_5M;
    q.range.to = bucket_start(now) + RSTIME_STEP_5M;
    q.range.from = q.range.to - window * RSTIME_STEP_5M;
    q.gateway = gateway;
    q.chain = chain;
    q.provider = provider;
    q.by = RSQUERY_BY_GATEWAY | RSQUERY_BY_CHAIN | RSQUERY_BY_ACCOUNT;
    if (rsquery_run(c->pg, &q, &res, &c->err) != 0)
        return -1;
    for (size_t g = 0; g < res.ngroups; g++)
        for (size_t i = 0; i < res.nbuckets; i++)
            if (res.groups[g].points[i] &&
                rsrealtime_rows_push(
                    &rows, res.groups[g].keys[0], res.groups[g].keys[1], res.groups[g].keys[2],
                    q.range.from + (int64_t)i * q.range.step, res.groups[g].points[i]) != 0)
                goto oom;
    redis_ok = rsrealtime_fetch(&c->api->conf->redis, q.range.from, q.range.to, &redis, redis_err,
                                sizeof(redis_err)) == 0;
    if (!redis_ok) {
        __atomic_add_fetch(&c->api->redis_errors, 1, __ATOMIC_RELAXED);
        LOG_EVENT(LOG_WARN, "redis_unavailable", NULL, redis_err, LF_STR("endpoint", "realtime"));
    } else {
        if (!c->who.admin &&
            rscatalog_provider_accounts(c->pg, c->who.provider, &owned, &c->err) != 0)
            goto done;
        for (size_t i = 0; i < redis.n; i++) {
            const struct rsrealtime_row *r = &redis.rows[i];
            if (row_allowed(r, gateway, chain, &owned, c->who.admin) &&
                rsrealtime_rows_push(&kept, r->gateway, r->chain, r->account, r->bucket,
                                     r->relays) != 0)
                goto oom;
        }
        if (rsrealtime_merge(&rows, &kept) != 0)
            goto oom;
    }
    rv = reply_json(c, realtime_json(&rows, &q.range, now, redis_ok ? NULL : redis_err));
    goto done;
oom:
    rserr_set(&c->err, 500, "out of memory");
done:
    rsquery_result_free(&res);
    rsrealtime_rows_free(&rows);
    rsrealtime_rows_free(&redis);
    rscatalog_accounts_free(&owned);
    rsrealtime_rows_free(&kept);
    return rv;
}

/* {"chains": [{"chain", "name"}...]}: the configured name of each chain. */
static int handle_chains(struct call *c)
{
    static const char *const allowed[] = {NULL};
    struct rscatalog_names chains;
    json_t *list, *root;

    if (check_params(c, allowed) != 0 ||
        rscatalog_chains(c->pg, c->who.admin ? NULL : c->who.provider, &chains, &c->err) != 0)
        return -1;
    list = json_array();
    root = json_pack("{so}", "chains", list);
    for (size_t i = 0; root && i < chains.n; i++) {
        const struct ccgwconf_chain *ch = ccgwconf_chain_find(c->api->conf, chains.v[i]);
        json_t *o = json_pack("{ssss?}", "chain", chains.v[i], "name", ch ? ch->name : NULL);
        if (json_array_append_new(list, o) != 0) {
            json_decref(root);
            root = NULL;
        }
    }
    rscatalog_names_free(&chains);
    return reply_json(c, root);
}

/* {"gateways": [...]} */
static int handle_gateways(struct call *c)
{
    static const char *const allowed[] = {NULL};
    struct rscatalog_names gateways;
    json_t *list, *root;

    if (check_params(c, allowed) != 0 ||
        rscatalog_gateways(c->pg, c->who.admin ? NULL : c->who.provider, &gateways, &c->err) != 0)
        return -1;
    list = json_array();
    root = json_pack("{so}", "gateways", list);
    for (size_t i = 0; root && i < gateways.n; i++) {
        if (json_array_append_new(list, json_string(gateways.v[i])) != 0) {
            json_decref(root);
            root = NULL;
        }
    }
    rscatalog_names_free(&gateways);
    return reply_json(c, root);
}

static int handle_non_relays(struct call *c)
{
    static const char *const allowed[] = {"from", "to", "step", "gateway", NULL};
    struct rstime_range range;
    struct rsnonrelay nr;
    const char *gateway;
    int rv;

    if (check_params(c, allowed) != 0 || parse_range(c, "5m", &range) != 0 ||
        name_param(c, "gateway", &gateway) != 0)
        return -1;
    if (!c->who.admin) {
        rserr_set(&c->err, 403, "non-relay counts are visible to admin tokens only");
        return -1;
    }
    if (rsnonrelay_run(c->pg, &range, gateway, &nr, &c->err) != 0)
        return -1;
    rv = reply_json(c, rsnonrelay_json(&nr));
    rsnonrelay_free(&nr);
    return rv;
}

static int handle_metrics(struct call *c)
{
    static const char *const classes[RSAPI_NCLASSES] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    struct rsapi *api = c->api;
    prom_t *p = prom_new();
    const char *text;
    size_t len;
    int rv = -1;

    if (!p)
        goto oom;
    prom_family(p, "relaystats_http_requests_total", PROM_COUNTER,
                "HTTP requests served, by endpoint and status class.");
    for (int e = 0; e < RSAPI_EP_COUNT; e++) {
        for (int k = 0; k < RSAPI_NCLASSES; k++) {
            const char *labels[] = {"endpoint", endpoint_names[e], "code", classes[k], NULL};
            uint64_t v = __atomic_load_n(&api->requests[e][k], __ATOMIC_RELAXED);
            if (v)
                prom_sample(p, "relaystats_http_requests_total", labels, (double)v);
        }
    }
    prom_family(p, "relaystats_http_request_duration_seconds", PROM_HISTOGRAM,
                "Time to answer an HTTP request.");
    prom_histogram_write(p, "relaystats_http_request_duration_seconds", NULL, &api->latency);
    prom_family(p, "relaystats_db_errors_total", PROM_COUNTER,
                "Requests that failed on a PostgreSQL error.");
    prom_sample(p, "relaystats_db_errors_total", NULL,
                (double)__atomic_load_n(&api->db_errors, __ATOMIC_RELAXED));
    prom_family(p, "relaystats_redis_errors_total", PROM_COUNTER,
                "Realtime requests answered without Redis because it failed.");
    prom_sample(p, "relaystats_redis_errors_total", NULL,
                (double)__atomic_load_n(&api->redis_errors, __ATOMIC_RELAXED));
    prom_family(p, "relaystats_start_time_seconds", PROM_GAUGE, "Start time of the process.");
    prom_sample(p, "relaystats_start_time_seconds", NULL, (double)api->started);
    rswatch_metrics(api->watch, p);
    text = prom_text(p, &len);
    if (!text)
        goto oom;
    rv = httpd_reply(c->resp, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    prom_free(p);
    return rv;
oom:
    prom_free(p);
    rserr_set(&c->err, 500, "out of memory");
    return -1;
}

static int handle_health(struct call *c)
{
    if (strcmp(c->req->path, "/health/ready") != 0)
        return httpd_reply(c->resp, 200, "application/json", "{\"status\":\"ok\"}", 15);
    double lag = 0;
    int standby = rsdb_standby_lag(c->pg, &lag, &c->err);
    char body[96];
    int n;

    if (standby < 0) {
        c->err.status = 503;
        return -1;
    }
    /* a standby answers (ready) but says how far behind it is */
    n = standby ? snprintf(body, sizeof(body),
                           "{\"status\":\"ready\",\"standby\":true,\"lag_seconds\":%.3f}", lag)
                : snprintf(body, sizeof(body), "{\"status\":\"ready\"}");
    return httpd_reply(c->resp, 200, "application/json", body, (size_t)n);
}

static int handle_asset(struct call *c)
{
    const struct rsweb_asset *a =
        rsweb_find(strcmp(c->req->path, "/index.html") == 0 ? "/" : c->req->path);

    /* Browsers ask for it on their own; the page has no icon. */
    if (!a && strcmp(c->req->path, "/favicon.ico") == 0)
        return httpd_reply(c->resp, 204, "image/x-icon", "", 0);
    if (!a) {
        rserr_set(&c->err, 404, "not found");
        return -1;
    }
    if (httpd_reply(c->resp, 200, a->content_type, (const char *)a->data, a->len) != 0 ||
        httpd_add_header(c->resp, "Cache-Control", "no-cache") != 0 ||
        httpd_add_header(c->resp, "Content-Security-Policy",
                         "default-src 'self'; style-src 'self'; script-src 'self'") != 0 ||
        httpd_add_header(c->resp, "X-Content-Type-Options", "nosniff") != 0) {
        rserr_set(&c->err, 500, "out of memory");
        return -1;
    }
    return 0;
}

static enum rsapi_endpoint route(const char *path)
{
    static const struct {
        const char *path;
        enum rsapi_endpoint ep;
    } routes[] = {
        {"/api/v1/relays", RSAPI_EP_RELAYS},     {"/api/v1/export", RSAPI_EP_EXPORT},
        {"/api/v1/realtime", RSAPI_EP_REALTIME}, {"/api/v1/chains", RSAPI_EP_CHAINS},
        {"/api/v1/gateways", RSAPI_EP_GATEWAYS}, {"/api/v1/non-relays", RSAPI_EP_NON_RELAYS},
        {"/metrics", RSAPI_EP_METRICS},          {"/health", RSAPI_EP_HEALTH},
        {"/health/live", RSAPI_EP_HEALTH},       {"/health/ready", RSAPI_EP_HEALTH},
    };

    for (size_t i = 0; i < ARRAY_LEN(routes); i++)
        if (strcmp(path, routes[i].path) == 0)
            return routes[i].ep;
    if (strncmp(path, "/api/", 5) == 0)
        return RSAPI_EP_OTHER;
    return RSAPI_EP_DASHBOARD;
}

static int dispatch(struct call *c, enum rsapi_endpoint ep)
{
    const char *admin_hash = c->api->conf->relaystats.admin_token_sha256;

    switch (ep) {
    case RSAPI_EP_DASHBOARD:
        return handle_asset(c);
    case RSAPI_EP_METRICS:
        return handle_metrics(c);
    case RSAPI_EP_OTHER:
        rserr_set(&c->err, 404, "no such endpoint");
        return -1;
    default:
        break;
    }
    c->pg = rsdb_pool_acquire(c->api->pool, &c->err);
    if (!c->pg)
        return -1;
    if (ep == RSAPI_EP_HEALTH)
        return handle_health(c);
    if (rsauth_check(c->pg, admin_hash, httpd_header(c->req, "Authorization"), &c->who, &c->err) !=
        0)
        return -1;
    switch (ep) {
    case RSAPI_EP_RELAYS:
        return handle_relays(c);
    case RSAPI_EP_EXPORT:
        return handle_export(c);
    case RSAPI_EP_REALTIME:
        return handle_realtime(c);
    case RSAPI_EP_CHAINS:
        return handle_chains(c);
    case RSAPI_EP_GATEWAYS:
        return handle_gateways(c);
    case RSAPI_EP_NON_RELAYS:
        return handle_non_relays(c);
    default:
        rserr_set(&c->err, 404, "no such endpoint");
        return -1;
    }
}

int rsapi_handle(void *ctx, const struct httpd_request *req, struct httpd_response *resp)
{
    struct call c = {.api = ctx, .req = req, .resp = resp};
    enum rsapi_endpoint ep = route(req->path);
    double t0 = sys_mono_s();
    int rv, cls;

    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        rserr_set(&c.err, 405, "method not allowed");
        rv = -1;
    } else {
        rv = dispatch(&c, ep);
    }
    if (c.pg)
        rsdb_pool_release(c.api->pool, c.pg);
    if (rv != 0) {
        int status = c.err.status ? c.err.status : 500;
        if (status >= 500) {
            if (c.pg || status == 503)
                __atomic_add_fetch(&c.api->db_errors, 1, __ATOMIC_RELAXED);
            LOG_EVENT(LOG_WARN, "request_failed", NULL, c.err.text, LF_STR("path", req->path),
                      LF_INT("status", status));
        }
        free(resp->body);
        resp->body = NULL;
        resp->body_len = 0;
        if (httpd_reply_error(resp, status, c.err.text[0] ? c.err.text : "internal error") != 0)
            return -1;
        if (status == 401)
            httpd_add_header(resp, "WWW-Authenticate", "Bearer realm=\"relaystats\"");
        if (status == 405)
            httpd_add_header(resp, "Allow", "GET, HEAD");
    }
    cls = resp->status / 100 - 1;
    if (cls < 0 || cls >= RSAPI_NCLASSES)
        cls = 1;
    __atomic_add_fetch(&c.api->requests[ep][cls], 1, __ATOMIC_RELAXED);
    prom_histogram_observe(&c.api->latency, sys_mono_s() - t0);
    return 0;
}
