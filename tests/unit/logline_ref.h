/* The reference grammar of an HAProxy request line: the whole line as one
 * PCRE2 pattern, request line and unique id included. logline_parse()
 * matches only up to the request's opening quote with PCRE2 and splits the
 * rest in C; the unit tests and the fuzz target check with this file that it
 * accepts exactly the lines this pattern accepts, with the same fields, so
 * that no count can differ. Header-only (static functions), for one test
 * binary each; include it after logline.h and bucket.h. */
#ifndef CCGW_LOGLINE_REF_H
#define CCGW_LOGLINE_REF_H

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

static const char LOGLINE_REF_PATTERN[] =
    "<6>(\\S+):\\d++ "
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
    "(?: \"([^\"]*+)(?:(\")(?: (.*+))?)?)?"
    "$";

struct logline_ref {
    pcre2_code *re;
    pcre2_match_data *md;
};

/* 0, or -1 when the pattern cannot be compiled or memory is short. */
static int logline_ref_init(struct logline_ref *r)
{
    int rc;
    PCRE2_SIZE off;
    r->md = NULL;
    r->re = pcre2_compile((PCRE2_SPTR)LOGLINE_REF_PATTERN, PCRE2_ZERO_TERMINATED,
                          PCRE2_ANCHORED | PCRE2_DOLLAR_ENDONLY, &rc, &off, NULL);
    if (!r->re)
        return -1;
    r->md = pcre2_match_data_create_from_pattern(r->re, NULL);
    return r->md ? 0 : -1;
}

static void logline_ref_free(struct logline_ref *r)
{
    pcre2_match_data_free(r->md);
    pcre2_code_free(r->re);
    r->md = NULL;
    r->re = NULL;
}

static int logline_ref_span_eq(const PCRE2_SIZE *ov, int g, const char *line, struct logline_span s)
{
    if (ov[2 * g] == PCRE2_UNSET)
        return s.p == NULL && s.len == 0;
    return s.p == line + ov[2 * g] && s.len == ov[2 * g + 1] - ov[2 * g];
}

/* NULL when `got` (logline_parse of the same bytes) agrees with the
 * reference, else the name of the first field that differs. Only request
 * candidates are judged: other lines return NULL. */
static const char *logline_ref_diff(struct logline_ref *r, const char *line, size_t len,
                                    const struct logline *got)
{
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len < 3 || len > LOGLINE_MAX || memcmp(line, "<6>", 3) != 0)
        return NULL;
    int rc = pcre2_match(r->re, (PCRE2_SPTR)line, len, 0, 0, r->md, NULL);
    if (rc < 0)
        return got->kind == LOGLINE_UNPARSABLE ? NULL : "kind (reference: no match)";
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->md);
    int64_t ms;
    if (bucket_parse_haproxy_date(line + ov[4], ov[5] - ov[4], 0, &ms) < 0)
        return got->kind == LOGLINE_UNPARSABLE ? NULL : "kind (reference: bad date)";
    if (got->kind != LOGLINE_REQUEST)
        return "kind (reference: request)";
    static const char *const names[] = {
        NULL,          "client", "date", "frontend", "backend",     "server",   "status",
        "termination", "route",  "host", "request",  "close quote", "unique_id"};
    const struct logline_span *spans[] = {
        NULL,           &got->client,      NULL,        &got->frontend, &got->backend, &got->server,
        NULL,           &got->termination, &got->route, &got->host,     &got->request, NULL,
        &got->unique_id};
    for (int g = 1; g <= 12; g++)
        if (spans[g] && !logline_ref_span_eq(ov, g, line, *spans[g]))
            return names[g];
    int status = line[ov[12]] == '-' ? -1 : atoi(line + ov[12]);
    if (got->status != status)
        return "status";
    if (got->truncated != (ov[22] == PCRE2_UNSET))
        return "truncated";
    return NULL;
}

#endif
