/* HAProxy log line parser: PCRE2 JIT over the httplog format, compiled once,
 * one match-data block reused for every line. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "logline.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bucket.h"
#include "sys.h"

/* Groups of REQUEST_PATTERN, in order. */
enum {
    G_CLIENT = 1,
    G_DATE,
    G_FRONTEND,
    G_BACKEND,
    G_SERVER,
    G_STATUS,
    G_TERMINATION,
    G_ROUTE,
    G_HOST,
    G_OPEN_QUOTE,
    G_COUNT
};

/* Possessive quantifiers everywhere: the JIT never backtracks into a field,
 * which keeps a line near a hundred nanoseconds and makes hostile input
 * linear. The pattern covers every field up to the opening quote of the
 * request line; what follows (request line, closing quote, unique id) is
 * the free-form rest of the line and is split by request_tail(), exactly as
 * the full grammar
 *     (?: "([^"]*+)(?:(")(?: (.*+))?)?)?$
 * would. The client is `ADDRESS:PORT`, split at its last colon by
 * client_split() (an IPv6 address has colons of its own). The captured-
 * header block and the request line are optional so that a line cut at
 * HAProxy's log size limit still yields everything that precedes the cut.
 * The route (an HTTP tier's routing decision, "<chain>/<account>" or "-")
 * is optional too: the edge does not log one, nor did the HTTP tiers before
 * it was added, and neither form can be mistaken for the other because a
 * route never starts with '{' or '"'. */
static const char REQUEST_PATTERN[] =
    "<6>(\\S++) "
    "\\[(\\d\\d/[A-Z][a-z]{2}/\\d{4}:\\d\\d:\\d\\d:\\d\\d(?:\\.\\d{3})?)\\] "
    "(\\S++) "
    "([^/ ]++)/(\\S++) "
    "-?\\d++/-?\\d++/-?\\d++/-?\\d++/\\+?-?\\d++ "
    "(-1|\\d{3}) "
    "\\+?\\d++ \\S++ \\S++ "
    "(\\S{4}) "
    "\\d++/\\d++/\\d++/\\d++/\\+?\\d++ \\d++/\\d++"
    "(?: (-|[a-z0-9-]{1,63}+/[a-z0-9-]{1,63}+))?"
    "(?: \\{([^}]*+)\\}(?: \\{[^}]*+\\})?)?"
    "(?: (\")|$)";

struct logline_parser {
    pcre2_code *re;
    pcre2_match_data *md;
    const PCRE2_SIZE *ov; /* md's ovector: fixed for md's life */
    int32_t tz_offset_secs;
    char date_key[20];    /* "21/Nov/2026:10:22:33" of the last line */
    int64_t date_secs_ms; /* its epoch, milliseconds, whole second */
    int date_valid;
};

logline_parser_t *logline_parser_new(int32_t tz_offset_secs, char *err, size_t errlen)
{
    int rc;
    PCRE2_SIZE off;
    logline_parser_t *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->tz_offset_secs = tz_offset_secs;
    p->re = pcre2_compile((PCRE2_SPTR)REQUEST_PATTERN, PCRE2_ZERO_TERMINATED,
                          PCRE2_ANCHORED | PCRE2_DOLLAR_ENDONLY, &rc, &off, NULL);
    if (!p->re) {
        char msg[256];
        pcre2_get_error_message(rc, (PCRE2_UCHAR *)msg, sizeof(msg));
        snprintf(err, errlen, "log pattern, offset %zu: %s", (size_t)off, msg);
        goto fail;
    }
    rc = pcre2_jit_compile(p->re, PCRE2_JIT_COMPLETE);
    if (rc != 0) {
        char msg[256];
        pcre2_get_error_message(rc, (PCRE2_UCHAR *)msg, sizeof(msg));
        snprintf(err, errlen, "log pattern JIT: %s", msg);
        goto fail;
    }
    p->md = pcre2_match_data_create_from_pattern(p->re, NULL);
    if (!p->md) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    p->ov = pcre2_get_ovector_pointer(p->md);
    return p;
fail:
    logline_parser_free(p);
    return NULL;
}

void logline_parser_free(logline_parser_t *p)
{
    if (!p)
        return;
    pcre2_match_data_free(p->md);
    pcre2_code_free(p->re);
    free(p);
}

static const char *const kind_names[LOGLINE_NKINDS] = {"empty", "request", "event", "unparsable"};

const char *logline_kind_name(enum logline_kind k)
{
    return (unsigned)k < LOGLINE_NKINDS ? kind_names[k] : "unknown";
}

/* Accept date to epoch ms. Consecutive lines mostly share their second, so
 * the calendar arithmetic runs once per second of log, not once per line. */
static int parse_date(logline_parser_t *p, const char *s, size_t len, int64_t *ms)
{
    if (len >= 20 && p->date_valid && memcmp(s, p->date_key, 20) == 0) {
        int64_t frac = 0;
        if (len == 24) {
            for (int i = 21; i < 24; i++)
                frac = frac * 10 + (s[i] - '0');
        }
        *ms = p->date_secs_ms + frac;
        return 0;
    }
    if (bucket_parse_haproxy_date(s, len, p->tz_offset_secs, ms) < 0)
        return -1;
    if (len >= 20) {
        memcpy(p->date_key, s, 20);
        p->date_secs_ms = *ms - *ms % 1000;
        if (*ms < 0 && *ms % 1000)
            p->date_secs_ms -= 1000;
        p->date_valid = 1;
    }
    return 0;
}

static struct logline_span group(const logline_parser_t *p, const char *line, int g)
{
    if (p->ov[2 * g] == PCRE2_UNSET)
        return (struct logline_span){NULL, 0};
    return (struct logline_span){line + p->ov[2 * g], p->ov[2 * g + 1] - p->ov[2 * g]};
}

/* `\S+:\d+` of the client field: the address is everything before the last
 * colon, which must be followed by digits only. 0, or -1 when malformed. */
static int client_split(struct logline_span *client)
{
    const char *colon = memrchr(client->p, ':', client->len);
    const char *end = client->p + client->len;
    if (!colon || colon == client->p || colon + 1 == end)
        return -1;
    for (const char *c = colon + 1; c < end; c++)
        if (*c < '0' || *c > '9')
            return -1;
    client->len = (size_t)(colon - client->p);
    return 0;
}

/* The rest of a line after the request's opening quote, `[^"]*` then
 * optionally `"` and optionally ` UNIQUE_ID` (no newline: PCRE2's `.`) to
 * the end. 0, or -1 when something else follows the closing quote. */
static int request_tail(const char *rest, const char *end, struct logline *out)
{
    const char *quote = memchr(rest, '"', (size_t)(end - rest));
    if (!quote) {
        out->request = (struct logline_span){rest, (size_t)(end - rest)};
        out->truncated = 1;
        return 0;
    }
    out->request = (struct logline_span){rest, (size_t)(quote - rest)};
    if (quote + 1 == end)
        return 0;
    if (quote[1] != ' ' || memchr(quote + 2, '\n', (size_t)(end - quote - 2)))
        return -1;
    out->unique_id = (struct logline_span){quote + 2, (size_t)(end - quote - 2)};
    return 0;
}

static int parse_request(logline_parser_t *p, const char *line, size_t len, struct logline *out)
{
    int rc = pcre2_jit_match(p->re, (PCRE2_SPTR)line, len, 0, 0, p->md, NULL);
    if (rc < 0)
        return -1;
    out->client = group(p, line, G_CLIENT);
    if (client_split(&out->client) < 0)
        return -1;
    if (p->ov[2 * G_OPEN_QUOTE] == PCRE2_UNSET)
        out->truncated = 1; /* the line ends before the request line */
    else if (request_tail(line + p->ov[1], line + len, out) < 0)
        return -1;
    struct logline_span date = group(p, line, G_DATE);
    if (parse_date(p, date.p, date.len, &out->accept_ms) < 0)
        return -1;
    struct logline_span st = group(p, line, G_STATUS);
    out->status =
        st.p[0] == '-' ? -1 : (st.p[0] - '0') * 100 + (st.p[1] - '0') * 10 + (st.p[2] - '0');
    out->frontend = group(p, line, G_FRONTEND);
    out->backend = group(p, line, G_BACKEND);
    out->server = group(p, line, G_SERVER);
    /* the timers follow the server after one space (the pattern checked them) */
    const char *t = out->server.p + out->server.len + 1;
    const char *tend = memchr(t, ' ', (size_t)(line + len - t));
    out->timers = (struct logline_span){t, tend ? (size_t)(tend - t) : 0};
    out->termination = group(p, line, G_TERMINATION);
    out->route = group(p, line, G_ROUTE);
    out->host = group(p, line, G_HOST);
    return 0;
}

int logline_route(const struct logline *l, struct logline_span *chain, struct logline_span *account)
{
    if (!l->route.p)
        return -1;
    const char *slash = memchr(l->route.p, '/', l->route.len);
    if (!slash)
        return 0; /* "-": the map had no entry for the Host */
    *chain = (struct logline_span){l->route.p, (size_t)(slash - l->route.p)};
    *account = (struct logline_span){slash + 1, l->route.len - chain->len - 1};
    return 1;
}

int logline_timers(const struct logline *l, int64_t out[5])
{
    const char *p = l->timers.p, *end;

    if (!p)
        return -1;
    end = p + l->timers.len;
    for (int i = 0; i < 5; i++) {
        int neg = 0, digits = 0;
        int64_t v = 0;
        if (p < end && *p == '+')
            p++;
        if (p < end && *p == '-') {
            neg = 1;
            p++;
        }
        for (; p < end && *p >= '0' && *p <= '9' && digits < 12; p++, digits++)
            v = v * 10 + (*p - '0');
        if (digits == 0)
            return -1;
        if (i < 4) {
            if (p >= end || *p != '/')
                return -1;
            p++;
        }
        out[i] = neg ? -v : v;
    }
    return 0;
}

int64_t logline_response_ms(const struct logline *l)
{
    int64_t v[5];

    if (logline_timers(l, v) < 0 || v[3] < 0)
        return -1; /* no response headers */
    int64_t ms = l->accept_ms;
    for (int i = 0; i < 4; i++)
        ms += v[i] > 0 ? v[i] : 0;
    return ms;
}

/* "[NOTICE]", "[WARNING]", "[ALERT]" at the start of a stderr line. */
static int stderr_severity(const char *line, size_t len)
{
    static const struct {
        const char *tag;
        int severity;
    } tags[] = {{"[ALERT]", 1}, {"[WARNING]", 4}, {"[NOTICE]", 5}, {"[DEBUG]", 7}};
    for (size_t i = 0; i < ARRAY_LEN(tags); i++) {
        size_t n = strlen(tags[i].tag);
        if (len >= n && memcmp(line, tags[i].tag, n) == 0)
            return tags[i].severity;
    }
    return -1;
}

void logline_parse(logline_parser_t *p, const char *line, size_t len, struct logline *out)
{
    memset(out, 0, sizeof(*out));
    out->status = -1;
    out->severity = -1;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len == 0) {
        out->kind = LOGLINE_EMPTY;
        return;
    }
    if (len > LOGLINE_MAX) {
        out->kind = LOGLINE_UNPARSABLE;
        return;
    }
    if (len >= 3 && line[0] == '<' && line[1] >= '0' && line[1] <= '7' && line[2] == '>') {
        out->severity = line[1] - '0';
        if (out->severity == 6) {
            out->kind =
                parse_request(p, line, len, out) == 0 ? LOGLINE_REQUEST : LOGLINE_UNPARSABLE;
            return;
        }
        out->kind = LOGLINE_EVENT;
        out->message = (struct logline_span){line + 3, len - 3};
        return;
    }
    out->severity = stderr_severity(line, len);
    if (out->severity >= 0) {
        out->kind = LOGLINE_EVENT;
        out->message = (struct logline_span){line, len};
        return;
    }
    out->kind = LOGLINE_UNPARSABLE;
}

/* ASCII lower-casing eight bytes at a time: a byte gets 0x20 when it is
 * in 'A'..'Z' (bit 7 clear, >= 0x41 and <= 0x5a, tested by carries). */
static void lower_copy(char *out, const char *in, size_t n)
{
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w, low;
        memcpy(&w, in + i, 8);
        low = w & ~high;
        uint64_t ge_a = low + (0x80 - 'A') * ones;
        uint64_t gt_z = low + (0x80 - 'Z' - 1) * ones;
        w |= (ge_a & ~gt_z & ~w & high) >> 2;
        memcpy(out + i, &w, 8);
    }
    for (; i < n; i++) {
        unsigned char ch = (unsigned char)in[i];
        out[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
}

int logline_host_normalise(const char *host, size_t len, char *out, size_t outsize)
{
    const char *bar = memchr(host, '|', len);
    if (bar)
        len = (size_t)(bar - host);
    if (len > 0 && host[0] == '[') {
        const char *close = memchr(host, ']', len);
        if (close)
            len = (size_t)(close - host) + 1;
    } else {
        const char *colon = memchr(host, ':', len);
        /* one colon: host:port; more: a bare IPv6 literal, left alone */
        if (colon && !memchr(colon + 1, ':', len - (size_t)(colon - host) - 1))
            len = (size_t)(colon - host);
    }
    if (len > 0 && host[len - 1] == '.')
        len--;
    if (len + 1 > outsize)
        return -1;
    lower_copy(out, host, len);
    out[len] = '\0';
    return (int)len;
}
