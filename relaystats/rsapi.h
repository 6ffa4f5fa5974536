/* The relaystats HTTP server: the provider API under /api/v1/, the
 * dashboard at /, /metrics and /health*.
 *
 *   GET /api/v1/relays     from, to, step, gateway, chain, account, provider, by
 *   GET /api/v1/export     provider, from, to, format=json|csv
 *   GET /api/v1/realtime   gateway, chain, window (buckets of 5m, 1..288, default 12)
 *   GET /api/v1/chains
 *   GET /api/v1/gateways
 *   GET /api/v1/non-relays from, to, step, gateway (admin only)
 *
 * Every /api/v1/ request needs "Authorization: Bearer <token>": 401 without
 * a valid token, 403 when a provider's token asks for another provider or an
 * account it does not own; a provider's queries are always restricted to its
 * own accounts. Unknown or malformed parameters are a 400 with a message. */
#ifndef CCGW_RSAPI_H
#define CCGW_RSAPI_H

#include <stdint.h>

#include "ccgwconf.h"
#include "httpd.h"
#include "prom.h"
#include "rsdb.h"
#include "rswatch.h"

enum rsapi_endpoint {
    RSAPI_EP_RELAYS = 0,
    RSAPI_EP_EXPORT,
    RSAPI_EP_REALTIME,
    RSAPI_EP_CHAINS,
    RSAPI_EP_GATEWAYS,
    RSAPI_EP_NON_RELAYS,
    RSAPI_EP_DASHBOARD,
    RSAPI_EP_METRICS,
    RSAPI_EP_HEALTH,
    RSAPI_EP_OTHER,
    RSAPI_EP_COUNT
};

#define RSAPI_NCLASSES 5 /* 1xx..5xx */

struct rsapi {
    const struct ccgwconf *conf; /* redis settings, admin token hash, chain names */
    struct rsdb_pool *pool;
    struct rswatch *watch; /* its metrics are on /metrics; NULL: none. Set before serving */
    int64_t started;
    /* metrics, updated atomically from the server's threads */
    uint64_t requests[RSAPI_EP_COUNT][RSAPI_NCLASSES];
    uint64_t db_errors, redis_errors;
    struct prom_histogram latency;
};

/* Initialise the server state. 0 or -1. */
int rsapi_init(struct rsapi *api, const struct ccgwconf *conf, struct rsdb_pool *pool);

/* The httpd handler (ctx is a struct rsapi *). Thread-safe. */
int rsapi_handle(void *ctx, const struct httpd_request *req, struct httpd_response *resp);

#endif
