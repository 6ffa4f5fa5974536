/* cc-gateway's own HTTP endpoints on the tier's gateway_listen address:
 *   /metrics       Prometheus text (lines, bytes, kinds, relays, non-relays
 *                  by reason, unparsable, HAProxy dropped logs, pending
 *                  buckets, last flush time and outcome, ...)
 *   /health        JSON summary, 200 when ready, 503 otherwise
 *   /health/live   200 while the process runs
 *   /health/ready  200 while a source is being read (and, with a stats
 *                  socket, its last poll succeeded); 503 otherwise */
#ifndef CCGW_METRICS_H
#define CCGW_METRICS_H

#include <stddef.h>

#include "gateway.h"
#include "httpd.h"

/* Render the /metrics page into a malloc'd string (*len set). NULL on OOM. */
char *metrics_render(struct gateway *gw, size_t *len);

/* The httpd handler; ctx is the struct gateway. */
int metrics_handle(void *ctx, const struct httpd_request *req, struct httpd_response *resp);

/* Serve on `listen`. 0, or -1 with err. */
int metrics_start(struct gateway *gw, const char *listen, char *err, size_t errlen);
void metrics_stop(struct gateway *gw);

#endif
