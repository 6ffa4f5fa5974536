/* Time ranges of relay queries.
 *
 * A range is half-open, [from, to), in epoch seconds UTC, and both ends sit on
 * a boundary of the query's step (300, 3600 or 86400 s; days are UTC days).
 * Times are ISO 8601 ("2026-11-21T10:20:00Z", "2026-11-21", with an optional
 * offset) or relative to now ("now", "-24h", "-90d", "-30m", "-2w").
 *
 * Alignment rule: an absolute time that is not on a step boundary is an error
 * (the caller answers 400) because silently moving a billing boundary would
 * change totals. A relative time is rounded outward (from down, to up) so
 * that "-24h" .. "now" covers the whole last 24 hours including the current,
 * still open bucket. */
#ifndef CCGW_RSTIME_H
#define CCGW_RSTIME_H

#include <stddef.h>
#include <stdint.h>

#define RSTIME_STEP_5M 300
#define RSTIME_STEP_1H 3600
#define RSTIME_STEP_1D 86400

/* Largest number of buckets a range may span (one year at five minutes). */
#define RSTIME_MAX_BUCKETS 105408

struct rstime_range {
    int64_t from, to; /* [from, to), aligned to step */
    int64_t step;     /* seconds */
};

/* Parse a step: "5m", "1h" or "1d" (also "300", "3600", "86400"). 0 or -1. */
int rstime_parse_step(const char *s, int64_t *step);

/* "5m", "1h", "1d" for the three steps, NULL otherwise. */
const char *rstime_step_name(int64_t step);

/* Parse one time at `now`. `*relative` is set to 1 for "now" and "-N<unit>"
 * forms. 0, or -1 with `err` filled. */
int rstime_parse(const char *s, int64_t now, int64_t *epoch, int *relative, char *err,
                 size_t errlen);

/* Resolve a range from its two textual ends (both required) and a step, at
 * `now`. Checks alignment, order (from <= to) and the bucket limit. `what`
 * names the ends in messages ("from"/"to"). 0, or -1 with `err` filled with a
 * message meant for the user. */
int rstime_range_parse(const char *from, const char *to, int64_t step, int64_t now,
                       struct rstime_range *out, char *err, size_t errlen);

/* Number of buckets in a range. */
size_t rstime_nbuckets(const struct rstime_range *r);

#endif
