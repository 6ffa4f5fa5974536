/* Prometheus text format writer. A page is one growing buffer; any failed
 * call marks the page failed so that a half-written or invalid page is never
 * served (prom_text() returns NULL). */
#include "prom.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sys.h"

const double PROM_LATENCY_BOUNDS[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                      0.1,    0.25,  0.5,    1,     2.5,  5,     10};
const size_t PROM_LATENCY_NBOUNDS = ARRAY_LEN(PROM_LATENCY_BOUNDS);

struct prom {
    char *buf;
    size_t len, cap;
    int failed;
    char **families; /* names already written, to refuse duplicates */
    size_t nfamilies, capfamilies;
    const char *cur; /* current family name (an entry of families) */
    enum prom_type cur_type;
};

prom_t *prom_new(void)
{
    prom_t *p = calloc(1, sizeof(*p));

    if (!p)
        return NULL;
    p->cap = 4096;
    p->buf = malloc(p->cap);
    if (!p->buf) {
        free(p);
        return NULL;
    }
    p->buf[0] = '\0';
    return p;
}

void prom_free(prom_t *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nfamilies; i++)
        free(p->families[i]);
    free(p->families);
    free(p->buf);
    free(p);
}

static int mark_failed(prom_t *p)
{
    p->failed = 1;
    return -1;
}

/* Keeps the buffer NUL-terminated. */
static int put(prom_t *p, const char *s, size_t n)
{
    if (p->failed)
        return -1;
    if (p->len + n + 1 > p->cap) {
        size_t cap = p->cap;
        char *nb;
        while (cap < p->len + n + 1)
            cap *= 2;
        nb = realloc(p->buf, cap);
        if (!nb)
            return mark_failed(p);
        p->buf = nb;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, s, n);
    p->len += n;
    p->buf[p->len] = '\0';
    return 0;
}

static int put_str(prom_t *p, const char *s)
{
    return put(p, s, strlen(s));
}

static int is_alpha_(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* */
static int valid_metric_name(const char *s)
{
    if (!s || !(is_alpha_(*s) || *s == ':'))
        return 0;
    for (s++; *s; s++)
        if (!(is_alpha_(*s) || is_digit(*s) || *s == ':'))
            return 0;
    return 1;
}

/* [a-zA-Z_][a-zA-Z0-9_]*, names starting with __ are reserved. */
static int valid_label_name(const char *s)
{
    if (!s || !is_alpha_(*s) || (s[0] == '_' && s[1] == '_'))
        return 0;
    for (s++; *s; s++)
        if (!(is_alpha_(*s) || is_digit(*s)))
            return 0;
    return 1;
}

/* Label values and HELP must be UTF-8 (the exposition format says so and
 * Prometheus rejects a page otherwise). Rejects overlongs, surrogates and > U+10FFFF. */
static int valid_utf8(const unsigned char *s)
{
    while (*s) {
        unsigned c = *s, n, cp;
        if (c < 0x80) {
            s++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        for (unsigned k = 1; k <= n; k++) {
            if ((s[k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[k] & 0x3f);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;
        s += n + 1;
    }
    return 1;
}

/* Escape \\ and \n (HELP) and also \" (label values). */
static int put_escaped(prom_t *p, const char *s, int quote)
{
    const char *run = s;

    for (; *s; s++) {
        const char *esc = NULL;
        if (*s == '\\')
            esc = "\\\\";
        else if (*s == '\n')
            esc = "\\n";
        else if (quote && *s == '"')
            esc = "\\\"";
        if (!esc)
            continue;
        if (put(p, run, (size_t)(s - run)) < 0 || put(p, esc, 2) < 0)
            return -1;
        run = s + 1;
    }
    return put(p, run, (size_t)(s - run));
}

/* Integral values below 2^53 print as integers (exact, and what people read);
 * other finite values as the shortest decimal that reads back exactly. */
static void format_value(double v, char *buf, size_t size)
{
    if (isnan(v)) {
        snprintf(buf, size, "NaN");
    } else if (isinf(v)) {
        snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
    } else if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        snprintf(buf, size, "%lld", (long long)v);
    } else {
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, size, "%.*g", prec, v);
            if (strtod(buf, NULL) == v)
                break;
        }
    }
}

static const char *type_name(enum prom_type t)
{
    switch (t) {
    case PROM_COUNTER:
        return "counter";
    case PROM_GAUGE:
        return "gauge";
    case PROM_HISTOGRAM:
        return "histogram";
    }
    return NULL;
}

int prom_family(prom_t *p, const char *name, enum prom_type type, const char *help)
{
    const char *tname = type_name(type);
    char *copy;

    if (!p || p->failed)
        return -1;
    if (!valid_metric_name(name) || !tname || (help && !valid_utf8((const unsigned char *)help)))
        return mark_failed(p);
    for (size_t i = 0; i < p->nfamilies; i++)
        if (strcmp(p->families[i], name) == 0)
            return mark_failed(p);
    if (p->nfamilies == p->capfamilies) {
        size_t cap = p->capfamilies ? p->capfamilies * 2 : 32;
        char **nf = realloc(p->families, cap * sizeof(*nf));
        if (!nf)
            return mark_failed(p);
        p->families = nf;
        p->capfamilies = cap;
    }
    copy = strdup(name);
    if (!copy)
        return mark_failed(p);
    p->families[p->nfamilies++] = copy;
    p->cur = copy;
    p->cur_type = type;

    if (help && (put_str(p, "# HELP ") < 0 || put_str(p, name) < 0 || put(p, " ", 1) < 0 ||
                 put_escaped(p, help, 0) < 0 || put(p, "\n", 1) < 0))
        return -1;
    if (put_str(p, "# TYPE ") < 0 || put_str(p, name) < 0 || put(p, " ", 1) < 0 ||
        put_str(p, tname) < 0 || put(p, "\n", 1) < 0)
        return -1;
    return 0;
}

/* `name` belongs to the current family: equal to it, or for a histogram the
 * family name plus _bucket, _sum or _count. */
static int sample_name_ok(const prom_t *p, const char *name)
{
    size_t n = strlen(p->cur);

    if (strcmp(name, p->cur) == 0)
        return p->cur_type != PROM_HISTOGRAM;
    if (p->cur_type != PROM_HISTOGRAM || strncmp(name, p->cur, n) != 0)
        return 0;
    return strcmp(name + n, "_bucket") == 0 || strcmp(name + n, "_sum") == 0 ||
           strcmp(name + n, "_count") == 0;
}

/* Write `name{labels,extra_key="extra_value"} value\n`. */
static int write_sample(prom_t *p, const char *name, const char *const *labels,
                        const char *extra_key, const char *extra_value, double value)
{
    char num[40];
    int nlabels = 0;

    if (!p || p->failed)
        return -1;
    if (!p->cur || !name || !sample_name_ok(p, name))
        return mark_failed(p);
    for (const char *const *l = labels; l && l[0]; l += 2) {
        if (!l[1] || !valid_label_name(l[0]) || !valid_utf8((const unsigned char *)l[1]))
            return mark_failed(p);
        if (extra_key && strcmp(l[0], extra_key) == 0)
            return mark_failed(p);
        for (const char *const *m = labels; m != l; m += 2)
            if (strcmp(m[0], l[0]) == 0)
                return mark_failed(p);
        nlabels++;
    }
    if (put_str(p, name) < 0)
        return -1;
    if (nlabels > 0 || extra_key) {
        int first = 1;
        if (put(p, "{", 1) < 0)
            return -1;
        for (const char *const *l = labels; l && l[0]; l += 2) {
            if ((!first && put(p, ",", 1) < 0) || put_str(p, l[0]) < 0 || put(p, "=\"", 2) < 0 ||
                put_escaped(p, l[1], 1) < 0 || put(p, "\"", 1) < 0)
                return -1;
            first = 0;
        }
        if (extra_key &&
            ((!first && put(p, ",", 1) < 0) || put_str(p, extra_key) < 0 || put(p, "=\"", 2) < 0 ||
             put_escaped(p, extra_value, 1) < 0 || put(p, "\"", 1) < 0))
            return -1;
        if (put(p, "}", 1) < 0)
            return -1;
    }
    format_value(value, num, sizeof(num));
    if (put(p, " ", 1) < 0 || put_str(p, num) < 0 || put(p, "\n", 1) < 0)
        return -1;
    return 0;
}

int prom_sample(prom_t *p, const char *name, const char *const *labels, double value)
{
    return write_sample(p, name, labels, NULL, NULL, value);
}

const char *prom_text(const prom_t *p, size_t *len)
{
    if (!p || p->failed)
        return NULL;
    if (len)
        *len = p->len;
    return p->buf;
}

int prom_histogram_init(struct prom_histogram *h, const double *bounds, size_t n)
{
    if (!h || n > PROM_MAX_BUCKETS || (n > 0 && !bounds))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
            return -1;
    memset(h, 0, sizeof(*h));
    h->nbounds = n;
    if (n > 0)
        memcpy(h->bounds, bounds, n * sizeof(*bounds));
    return 0;
}

/* NaN observations are dropped: they fit no bucket and would poison _sum. */
void prom_histogram_observe(struct prom_histogram *h, double v)
{
    size_t lo = 0, hi = h->nbounds;
    double old, upd;

    if (isnan(v))
        return;
    /* First bucket whose upper bound is >= v (le is inclusive). */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v <= h->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    atomic_fetch_add_explicit(&h->counts[lo], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    old = atomic_load_explicit(&h->sum, memory_order_relaxed);
    do {
        upd = old + v;
    } while (!atomic_compare_exchange_weak_explicit(&h->sum, &old, upd, memory_order_relaxed,
                                                    memory_order_relaxed));
}

int prom_histogram_write(prom_t *p, const char *name, const char *const *labels,
                         const struct prom_histogram *h)
{
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    char le[40], *sample = NULL;
    uint64_t cumulative = 0;
    size_t n;
    double s;
    int rc = -1;

    if (!p || p->failed)
        return -1;
    if (!h || !name || !p->cur || p->cur_type != PROM_HISTOGRAM || strcmp(name, p->cur) != 0) {
        mark_failed(p);
        goto fail;
    }
    n = strlen(name);
    sample = malloc(n + sizeof("_bucket"));
    if (!sample) {
        mark_failed(p);
        goto fail;
    }
    memcpy(sample, name, n);
    strcpy(sample + n, suffixes[0]);
    /* Buckets are read one by one while observers may run: _count is the
     * total of what was read, so that le="+Inf" and _count always agree. */
    for (size_t i = 0; i <= h->nbounds; i++) {
        cumulative += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        if (i < h->nbounds)
            format_value(h->bounds[i], le, sizeof(le));
        else
            snprintf(le, sizeof(le), "+Inf");
        if (write_sample(p, sample, labels, "le", le, (double)cumulative) < 0)
            goto fail;
    }
    s = atomic_load_explicit(&h->sum, memory_order_relaxed);
    strcpy(sample + n, suffixes[1]);
    if (write_sample(p, sample, labels, NULL, NULL, s) < 0)
        goto fail;
    strcpy(sample + n, suffixes[2]);
    if (write_sample(p, sample, labels, NULL, NULL, (double)cumulative) < 0)
        goto fail;
    rc = 0;
fail:
    free(sample);
    return rc;
}
