/* Reconciliation: the worker's count of answered requests per chain
 * backend, against HAProxy's own counters for the same HAProxy process, so
 * that no loss of log lines is ever silent.
 *
 * HAProxy counts a response in `be_<chain>` (hrsp_2xx..hrsp_4xx of `show
 * stat`) when its headers arrive; it writes the log line when the request
 * ends, a little later. So a sample of HAProxy's counters taken at time T is
 * compared with the log lines whose response arrived by T: the request date
 * of the line plus its TR, Tw, Tc and Tr timers. Lines are kept per
 * millisecond for the last RECONCILE_WINDOW_MS, and a sample is judged once
 * the worker has read everything HAProxy wrote until RECONCILE_SETTLE_MS
 * after it. The gap is HAProxy's count minus ours, at least 0: the lines
 * HAProxy answered and we never saw (a dropped log line, a lost segment).
 * Under load its resolution is the requests of a few milliseconds; idle it
 * is exact.
 *
 * 1xx responses are left out (an interim 100 Continue is counted by HAProxy
 * besides the final status), and so are 5xx (never relays). Counts restart
 * with each HAProxy process (its counters do); they are carried in the
 * journal cursor across worker restarts. Not thread-safe. */
#ifndef CCGW_RECONCILE_H
#define CCGW_RECONCILE_H

#include <stddef.h>
#include <stdint.h>

#include "ccgwconf.h"
#include "logline.h"

#define RECONCILE_WINDOW_MS 16384
#define RECONCILE_SETTLE_MS 2000

typedef struct reconcile reconcile_t;

/* One backend "be_<id>" per chain of the config. NULL out of memory. */
reconcile_t *reconcile_new(const struct ccgwconf *conf);
void reconcile_free(reconcile_t *r);

/* A request line read from the log of HAProxy process `pid`. */
void reconcile_line(reconcile_t *r, long pid, const struct logline *l);

/* "<pid>:<n>,<n>,..." (counts per backend, in config order), for the
 * journal cursor; restore it after a restart. 0, or -1 when it does not
 * fit / is malformed (then nothing is restored). */
int reconcile_format(const reconcile_t *r, char *buf, size_t len);
int reconcile_restore(reconcile_t *r, const char *s);

/* HAProxy process `pid` answered `show stat` (CSV, `stat`) by `t_ms` (epoch
 * ms, taken after the answer). 0, or -1 when the answer has no usable
 * header (the sample is ignored). */
int reconcile_sample(reconcile_t *r, long pid, const char *stat, size_t len, int64_t t_ms);

/* Judge every sample taken more than RECONCILE_SETTLE_MS before
 * `caught_up_ms` (the last time the worker had read everything). Returns
 * how many were judged. */
size_t reconcile_evaluate(reconcile_t *r, int64_t caught_up_ms);

struct reconcile_backend {
    const char *chain;
    int64_t ours;    /* answered requests counted from the log, this HAProxy */
    int64_t haproxy; /* HAProxy's count at the last judged sample (-1: none) */
    int64_t gap;     /* of the last judged sample, >= 0 */
    int64_t gap_max; /* largest gap seen */
};

size_t reconcile_nbackends(const reconcile_t *r);
void reconcile_backend(const reconcile_t *r, size_t i, struct reconcile_backend *out);
/* Samples judged so far, and the time of the last one (epoch ms, 0: none). */
int64_t reconcile_checks(const reconcile_t *r);
int64_t reconcile_last_check_ms(const reconcile_t *r);

#endif
