/* Reconciliation with HAProxy's counters; see reconcile.h. */
#include "reconcile.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECONCILE_SAMPLES 16
/* HAProxy's date moves once per poll loop: a sample at T covers lines up
 * to a few milliseconds later. */
#define RECONCILE_MARGIN_MS 5

struct slot {
    int64_t ms;
    uint32_t n;
};

struct backend {
    char name[64]; /* "be_<chain>" */
    const char *chain;
    int64_t total; /* this HAProxy process */
    struct slot *ring;
    int64_t haproxy, gap, gap_max;
};

struct sample {
    long pid;
    int64_t t_ms;
    int64_t *counts; /* per backend, -1: absent */
};

struct reconcile {
    struct backend *be;
    size_t nbe;
    long pid;
    struct sample samples[RECONCILE_SAMPLES];
    size_t nsamples;
    int64_t checks, last_check_ms;
};

reconcile_t *reconcile_new(const struct ccgwconf *conf)
{
    reconcile_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->be = calloc(conf->nchains ? conf->nchains : 1, sizeof(*r->be));
    if (!r->be)
        goto fail;
    r->nbe = conf->nchains;
    for (size_t i = 0; i < r->nbe; i++) {
        snprintf(r->be[i].name, sizeof(r->be[i].name), "be_%s", conf->chains[i].id);
        r->be[i].chain = conf->chains[i].id;
        r->be[i].haproxy = -1;
        if (!(r->be[i].ring = calloc(RECONCILE_WINDOW_MS, sizeof(struct slot))))
            goto fail;
    }
    for (size_t k = 0; k < RECONCILE_SAMPLES; k++)
        if (!(r->samples[k].counts = calloc(r->nbe ? r->nbe : 1, sizeof(int64_t))))
            goto fail;
    return r;
fail:
    reconcile_free(r);
    return NULL;
}

void reconcile_free(reconcile_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; r->be && i < r->nbe; i++)
        free(r->be[i].ring);
    for (size_t k = 0; k < RECONCILE_SAMPLES; k++)
        free(r->samples[k].counts);
    free(r->be);
    free(r);
}

/* A new HAProxy process: its counters start at 0, so do ours. */
static void new_process(reconcile_t *r, long pid)
{
    r->pid = pid;
    r->nsamples = 0;
    for (size_t i = 0; i < r->nbe; i++) {
        r->be[i].total = 0;
        memset(r->be[i].ring, 0, RECONCILE_WINDOW_MS * sizeof(struct slot));
    }
}

static struct backend *find_backend(reconcile_t *r, const char *name, size_t len)
{
    for (size_t i = 0; i < r->nbe; i++)
        if (strlen(r->be[i].name) == len && memcmp(r->be[i].name, name, len) == 0)
            return &r->be[i];
    return NULL;
}

void reconcile_line(reconcile_t *r, long pid, const struct logline *l)
{
    if (pid != r->pid)
        new_process(r, pid);
    if (l->status < 200 || l->status > 499)
        return;
    struct backend *b = find_backend(r, l->backend.p, l->backend.len);
    if (!b)
        return;
    b->total++;
    int64_t ms = logline_response_ms(l);
    if (ms < 0)
        return;
    struct slot *s = &b->ring[(uint64_t)ms % RECONCILE_WINDOW_MS];
    if (s->ms != ms) {
        s->ms = ms;
        s->n = 0;
    }
    s->n++;
}

int reconcile_format(const reconcile_t *r, char *buf, size_t len)
{
    size_t off = 0;
    int n = snprintf(buf, len, "%ld:", r->pid);
    if (n < 0 || (size_t)n >= len)
        return -1;
    off = (size_t)n;
    for (size_t i = 0; i < r->nbe; i++) {
        n = snprintf(buf + off, len - off, "%s%" PRId64, i ? "," : "", r->be[i].total);
        if (n < 0 || (size_t)n >= len - off)
            return -1;
        off += (size_t)n;
    }
    return 0;
}

int reconcile_restore(reconcile_t *r, const char *s)
{
    char *end;
    long pid = strtol(s, &end, 10);
    if (end == s || *end != ':' || pid < 0)
        return -1;
    int64_t *v = calloc(r->nbe ? r->nbe : 1, sizeof(*v));
    if (!v)
        return -1;
    const char *p = end + 1;
    for (size_t i = 0; i < r->nbe; i++) {
        long long x = strtoll(p, &end, 10);
        if (end == p || x < 0 || (*end != ',' && *end != '\0' && *end != ':')) {
            free(v);
            return -1;
        }
        v[i] = x;
        p = *end == ',' ? end + 1 : end;
    }
    new_process(r, pid);
    for (size_t i = 0; i < r->nbe; i++)
        r->be[i].total = v[i];
    free(v);
    return 0;
}

/* Column index of `name` in a CSV header line (without "# "), or -1. */
static int column(const char *hdr, size_t len, const char *name)
{
    size_t nlen = strlen(name);
    int col = 0;
    const char *p = hdr, *end = hdr + len;
    while (p <= end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        const char *fe = c ? c : end;
        if ((size_t)(fe - p) == nlen && memcmp(p, name, nlen) == 0)
            return col;
        if (!c)
            break;
        p = c + 1;
        col++;
    }
    return -1;
}

/* Field `col` of a CSV line as an integer (empty: 0). */
static int64_t field_i64(const char *line, size_t len, int col, const char **str, size_t *slen)
{
    const char *p = line, *end = line + len;
    for (int i = 0; i < col; i++) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        if (!c)
            return -1;
        p = c + 1;
    }
    const char *c = memchr(p, ',', (size_t)(end - p));
    const char *fe = c ? c : end;
    if (str) {
        *str = p;
        *slen = (size_t)(fe - p);
    }
    int64_t v = 0;
    for (; p < fe && *p >= '0' && *p <= '9'; p++)
        v = v * 10 + (*p - '0');
    return v;
}

int reconcile_sample(reconcile_t *r, long pid, const char *stat, size_t len, int64_t t_ms)
{
    const char *end = stat + len;
    const char *nl = memchr(stat, '\n', len);
    if (len < 2 || stat[0] != '#' || !nl)
        return -1;
    const char *hdr = stat + 2;
    size_t hlen = (size_t)(nl - hdr);
    int c_px = column(hdr, hlen, "pxname"), c_sv = column(hdr, hlen, "svname");
    int c_2 = column(hdr, hlen, "hrsp_2xx"), c_3 = column(hdr, hlen, "hrsp_3xx"),
        c_4 = column(hdr, hlen, "hrsp_4xx");
    if (c_px < 0 || c_sv < 0 || c_2 < 0 || c_3 < 0 || c_4 < 0)
        return -1;
    if (pid != r->pid)
        return 0; /* the worker has not reached this HAProxy's log yet */
    if (r->nsamples == RECONCILE_SAMPLES) {
        int64_t *keep = r->samples[0].counts;
        memmove(r->samples, r->samples + 1, (RECONCILE_SAMPLES - 1) * sizeof(struct sample));
        r->samples[RECONCILE_SAMPLES - 1].counts = keep;
        r->nsamples--;
    }
    struct sample *s = &r->samples[r->nsamples];
    for (size_t i = 0; i < r->nbe; i++)
        s->counts[i] = -1;
    for (const char *p = nl + 1; p < end;) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        size_t llen = (size_t)((e ? e : end) - p);
        const char *px, *sv;
        size_t pxlen, svlen;
        field_i64(p, llen, c_px, &px, &pxlen);
        field_i64(p, llen, c_sv, &sv, &svlen);
        if (svlen == 7 && memcmp(sv, "BACKEND", 7) == 0) {
            struct backend *b = find_backend(r, px, pxlen);
            if (b) {
                int64_t a = field_i64(p, llen, c_2, NULL, NULL),
                        bb = field_i64(p, llen, c_3, NULL, NULL),
                        c = field_i64(p, llen, c_4, NULL, NULL);
                if (a >= 0 && bb >= 0 && c >= 0)
                    s->counts[b - r->be] = a + bb + c;
            }
        }
        p += llen + 1;
    }
    s->pid = pid;
    s->t_ms = t_ms;
    r->nsamples++;
    return 0;
}

/* Our count of lines whose response came by `t_ms`. */
static int64_t ours_at(const struct backend *b, int64_t t_ms)
{
    int64_t later = 0;
    for (size_t k = 0; k < RECONCILE_WINDOW_MS; k++)
        if (b->ring[k].n && b->ring[k].ms > t_ms && b->ring[k].ms <= t_ms + RECONCILE_WINDOW_MS)
            later += b->ring[k].n;
    return b->total - later;
}

size_t reconcile_evaluate(reconcile_t *r, int64_t caught_up_ms)
{
    size_t done = 0;
    while (done < r->nsamples && r->samples[done].t_ms + RECONCILE_SETTLE_MS <= caught_up_ms) {
        struct sample *s = &r->samples[done];
        if (s->pid == r->pid) {
            for (size_t i = 0; i < r->nbe; i++) {
                struct backend *b = &r->be[i];
                if (s->counts[i] < 0)
                    continue;
                int64_t gap = s->counts[i] - ours_at(b, s->t_ms + RECONCILE_MARGIN_MS);
                b->haproxy = s->counts[i];
                b->gap = gap > 0 ? gap : 0;
                if (b->gap > b->gap_max)
                    b->gap_max = b->gap;
            }
            r->checks++;
            r->last_check_ms = s->t_ms;
        }
        done++;
    }
    for (size_t k = done; k < r->nsamples; k++) {
        struct sample tmp = r->samples[k - done];
        r->samples[k - done] = r->samples[k];
        r->samples[k] = tmp;
    }
    r->nsamples -= done;
    return done;
}

size_t reconcile_nbackends(const reconcile_t *r)
{
    return r->nbe;
}

void reconcile_backend(const reconcile_t *r, size_t i, struct reconcile_backend *out)
{
    const struct backend *b = &r->be[i];
    *out = (struct reconcile_backend){b->chain, b->total, b->haproxy, b->gap, b->gap_max};
}

int64_t reconcile_checks(const reconcile_t *r)
{
    return r->checks;
}

int64_t reconcile_last_check_ms(const reconcile_t *r)
{
    return r->last_check_ms;
}
