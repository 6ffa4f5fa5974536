/* Time ranges of relay queries: parsing, alignment and limits. */
#include "rstime.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bucket.h"
#include "sys.h"

int rstime_parse_step(const char *s, int64_t *step)
{
    static const struct {
        const char *name;
        int64_t secs;
    } steps[] = {
        {"5m", RSTIME_STEP_5M},   {"300", RSTIME_STEP_5M}, {"1h", RSTIME_STEP_1H},
        {"3600", RSTIME_STEP_1H}, {"1d", RSTIME_STEP_1D},  {"86400", RSTIME_STEP_1D},
    };

    if (!s)
        return -1;
    for (size_t i = 0; i < ARRAY_LEN(steps); i++) {
        if (strcmp(s, steps[i].name) == 0) {
            *step = steps[i].secs;
            return 0;
        }
    }
    return -1;
}

const char *rstime_step_name(int64_t step)
{
    switch (step) {
    case RSTIME_STEP_5M:
        return "5m";
    case RSTIME_STEP_1H:
        return "1h";
    case RSTIME_STEP_1D:
        return "1d";
    default:
        return NULL;
    }
}

/* "-24h": a minus sign, 1 to 7 digits and one unit letter. */
static int parse_relative(const char *s, int64_t now, int64_t *epoch)
{
    const char *p = s + 1;
    int64_t n = 0, unit;
    size_t digits = 0;

    while (*p >= '0' && *p <= '9' && digits < 8) {
        n = n * 10 + (*p - '0');
        p++;
        digits++;
    }
    if (digits == 0 || digits > 7 || p[0] == '\0' || p[1] != '\0')
        return -1;
    switch (*p) {
    case 's':
        unit = 1;
        break;
    case 'm':
        unit = 60;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'd':
        unit = 86400;
        break;
    case 'w':
        unit = 7 * 86400;
        break;
    default:
        return -1;
    }
    *epoch = now - n * unit;
    return 0;
}

int rstime_parse(const char *s, int64_t now, int64_t *epoch, int *relative, char *err,
                 size_t errlen)
{
    if (!s || !*s) {
        snprintf(err, errlen, "empty time");
        return -1;
    }
    if (strlen(s) > 40) {
        snprintf(err, errlen, "time too long");
        return -1;
    }
    if (strcmp(s, "now") == 0) {
        *epoch = now;
        *relative = 1;
        return 0;
    }
    if (s[0] == '-') {
        if (parse_relative(s, now, epoch) != 0) {
            snprintf(err, errlen,
                     "bad relative time '%s' (expected -N followed by s, m, h, d or w)", s);
            return -1;
        }
        *relative = 1;
        return 0;
    }
    if (bucket_parse_iso(s, epoch) != 0) {
        snprintf(err, errlen,
                 "bad time '%s' (expected ISO 8601 like 2026-11-21T10:20:00Z, or -24h, or now)", s);
        return -1;
    }
    *relative = 0;
    return 0;
}

static int64_t ceil_to(int64_t t, int64_t step)
{
    int64_t f = bucket_floor(t, step);
    return f == t ? t : f + step;
}

/* Align one end: relative ends are moved outward, absolute ends must already
 * be on a boundary. */
static int align_end(const char *name, const char *text, int64_t t, int relative, int up,
                     int64_t step, int64_t *out, char *err, size_t errlen)
{
    int64_t lo = bucket_floor(t, step);

    if (relative) {
        *out = up ? ceil_to(t, step) : lo;
        return 0;
    }
    if (lo != t) {
        char a[32], b[32];
        bucket_format_iso(lo, a, sizeof(a));
        bucket_format_iso(lo + step, b, sizeof(b));
        snprintf(err, errlen, "%s '%s' is not aligned to the %s step (use %s or %s)", name, text,
                 rstime_step_name(step) ? rstime_step_name(step) : "query", a, b);
        return -1;
    }
    *out = t;
    return 0;
}

int rstime_range_parse(const char *from, const char *to, int64_t step, int64_t now,
                       struct rstime_range *out, char *err, size_t errlen)
{
    char msg[200];
    int64_t f, t;
    int frel, trel;

    if (!from || !to) {
        snprintf(err, errlen, "%s is required", !from ? "from" : "to");
        return -1;
    }
    if (!rstime_step_name(step)) {
        snprintf(err, errlen, "step must be 5m, 1h or 1d");
        return -1;
    }
    if (rstime_parse(from, now, &f, &frel, msg, sizeof(msg)) != 0) {
        snprintf(err, errlen, "from: %s", msg);
        return -1;
    }
    if (rstime_parse(to, now, &t, &trel, msg, sizeof(msg)) != 0) {
        snprintf(err, errlen, "to: %s", msg);
        return -1;
    }
    if (align_end("from", from, f, frel, 0, step, &out->from, err, errlen) != 0 ||
        align_end("to", to, t, trel, 1, step, &out->to, err, errlen) != 0)
        return -1;
    if (out->from > out->to) {
        snprintf(err, errlen, "from must not be after to");
        return -1;
    }
    out->step = step;
    if ((out->to - out->from) / step > RSTIME_MAX_BUCKETS) {
        snprintf(err, errlen, "range spans more than %d buckets of %s; use a coarser step",
                 RSTIME_MAX_BUCKETS, rstime_step_name(step));
        return -1;
    }
    return 0;
}

size_t rstime_nbuckets(const struct rstime_range *r)
{
    return (size_t)((r->to - r->from) / r->step);
}
