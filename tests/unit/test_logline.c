/* Log line parser and the relay rule over real HAProxy output. Data-driven:
 * every tests/data/logline/cases/<case>/ holds input.log and expected.json
 * (the replay summary it must yield, key by key); each case is replayed
 * whole and with tiny reads so that lines split across reads are covered. */
#include <check.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bucket.h"
#include "ccgwconf.h"
#include "sys.h"
#include "gateway/ingest.h"
#include "gateway/lines.h"
#include "gateway/replay.h"
#include "logline_ref.h"
#include "sys.h"

static const char *datadir(void)
{
    const char *d = getenv("CCGW_TESTDATA");
    return d ? d : "tests/data";
}

struct fixture {
    struct ccgwconf conf;
    relay_table_t *table;
    counter_t *counter;
    struct ingest in;
};

static void fixture_open(struct fixture *f, const char *source)
{
    char path[1024], err[512];
    struct yamlcfg_error cerr;
    memset(f, 0, sizeof(*f));
    snprintf(path, sizeof(path), "%s/logline/routing.yaml", datadir());
    ck_assert_msg(ccgwconf_load(path, &f->conf, &cerr) == 0, "%s", cerr.text);
    f->table = relay_table_new(&f->conf, err, sizeof(err));
    ck_assert_msg(f->table != NULL, "%s", err);
    f->counter = counter_new();
    ck_assert_ptr_nonnull(f->counter);
    const struct ccgwconf_tier *t = ccgwconf_tier_find(&f->conf, source);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(
        ingest_init(&f->in, 0, f->table, f->counter, t->count_relays, err, sizeof(err)), 0);
}

static void fixture_close(struct fixture *f)
{
    ingest_destroy(&f->in);
    counter_free(f->counter);
    relay_table_free(f->table);
    ccgwconf_free(&f->conf);
}

/* Every key of `want` must be in `got` with an equal value (objects are
 * compared the same way, recursively, plus the same number of keys). */
static void assert_subset(const json_t *want, const json_t *got, const char *where)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)want, key, v)
    {
        json_t *g = json_object_get(got, key);
        ck_assert_msg(g != NULL, "%s: missing key %s", where, key);
        if (json_is_object(v)) {
            char sub[256];
            snprintf(sub, sizeof(sub), "%s.%s", where, key);
            assert_subset(v, g, sub);
            size_t nonzero = 0;
            const char *k2;
            json_t *v2;
            json_object_foreach(g, k2, v2) nonzero +=
                json_integer_value(v2) != 0 || json_object_get(v, k2);
            ck_assert_msg(nonzero == json_object_size(v), "%s: %zu keys, expected %zu", sub,
                          nonzero, json_object_size(v));
        } else {
            ck_assert_msg(json_equal(v, g), "%s.%s: got %lld, expected %lld", where, key,
                          (long long)json_integer_value(g), (long long)json_integer_value(v));
        }
    }
}

static json_t *replay_one(const char *path, size_t chunk)
{
    struct fixture f;
    char err[512];
    fixture_open(&f, "http0");
    ck_assert_msg(replay_file(&f.in, path, chunk, err, sizeof(err)) == 0, "%s", err);
    json_t *s = replay_summary(&f.in);
    ck_assert_ptr_nonnull(s);
    fixture_close(&f);
    return s;
}

static const size_t chunks[] = {0, 1, 7, 100, 1023};

START_TEST(test_shared_capture)
{
    char path[1024], where[256];
    json_error_t jerr;
    snprintf(path, sizeof(path), "%s/logline/haproxy-2.6/haproxy-2.6-http-tier.log", datadir());
    /* 8 relays: 6 on 0021 (incl. upper-case Host, the persistent socket's
     * two good requests, the truncated line, the IPv6 client), 2 on 0001. */
    json_t *want =
        json_loads("{\"lines\":20,\"relays\":8,\"events\":3,\"truncated\":1,"
                   "\"non_relays\":{\"invalid_host\":3,\"unrouted\":2,\"server_error\":4,"
                   "\"no_response\":0,\"unparsable\":0},\"by_chain\":{\"0021\":6,\"0001\":2},"
                   "\"by_bucket\":{\"2026-11-21T10:20:00Z\":7,\"2026-11-21T10:25:00Z\":1}}",
                   0, &jerr);
    ck_assert_ptr_nonnull(want);
    for (size_t i = 0; i < ARRAY_LEN(chunks); i++) {
        json_t *got = replay_one(path, chunks[i]);
        snprintf(where, sizeof(where), "shared capture, chunk %zu", chunks[i]);
        assert_subset(want, got, where);
        json_decref(got);
    }
    json_decref(want);
}
END_TEST

START_TEST(test_cases)
{
    char dir[1024], path[1400], where[512];
    snprintf(dir, sizeof(dir), "%s/logline/cases", datadir());
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "%s", dir);
    int ncases = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        json_error_t jerr;
        snprintf(path, sizeof(path), "%s/%s/expected.json", dir, e->d_name);
        json_t *want = json_load_file(path, 0, &jerr);
        ck_assert_msg(want != NULL, "%s:%d: %s", path, jerr.line, jerr.text);
        snprintf(path, sizeof(path), "%s/%s/input.log", dir, e->d_name);
        for (size_t i = 0; i < ARRAY_LEN(chunks); i++) {
            json_t *got = replay_one(path, chunks[i]);
            snprintf(where, sizeof(where), "%s, chunk %zu", e->d_name, chunks[i]);
            assert_subset(want, got, where);
            json_decref(got);
        }
        json_decref(want);
        ncases++;
    }
    closedir(d);
    ck_assert_int_ge(ncases, 2);
}
END_TEST

START_TEST(test_fields)
{
    char err[256];
    struct logline l;
    logline_parser_t *p = logline_parser_new(0, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    const char *line = "<6>::1:59788 [21/Nov/2026:10:27:25.558] fe_http0 be_0021/n0021a "
                       "0/0/0/0/0 200 183 - - ---- 1/1/0/0/0 0/0 {Host.Example:80|ua} "
                       "\"GET / HTTP/1.1\" 7F00:01";
    logline_parse(p, line, strlen(line), &l);
    ck_assert_int_eq(l.kind, LOGLINE_REQUEST);
    ck_assert_int_eq(l.status, 200);
    ck_assert_int_eq(l.truncated, 0);
    ck_assert_int_eq(l.accept_ms, 1795256845558LL);
    ck_assert_int_eq((int)l.client.len, 3);
    ck_assert(memcmp(l.client.p, "::1", 3) == 0);
    ck_assert(l.backend.len == 7 && memcmp(l.backend.p, "be_0021", 7) == 0);
    ck_assert(l.server.len == 6 && memcmp(l.server.p, "n0021a", 6) == 0);
    ck_assert(l.host.len == 18 && memcmp(l.host.p, "Host.Example:80|ua", 18) == 0);
    ck_assert(l.unique_id.len == 7 && memcmp(l.unique_id.p, "7F00:01", 7) == 0);
    ck_assert(l.request.len == 14 && memcmp(l.request.p, "GET / HTTP/1.1", 14) == 0);

    /* consecutive lines in the same second reuse the cached date */
    const char *l2 = "<6>1.2.3.4:1 [21/Nov/2026:10:27:25.001] f b/s 0/0/0/0/0 -1 0 - - CD-- "
                     "1/1/0/0/0 0/0 {} \"GET /";
    logline_parse(p, l2, strlen(l2), &l);
    ck_assert_int_eq(l.kind, LOGLINE_REQUEST);
    ck_assert_int_eq(l.status, -1);
    ck_assert_int_eq(l.truncated, 1);
    ck_assert_int_eq(l.accept_ms, 1795256845001LL);
    ck_assert_int_eq((int)l.host.len, 0);

    const char *ev = "<1>Server be_0001/n0001a is DOWN";
    logline_parse(p, ev, strlen(ev), &l);
    ck_assert_int_eq(l.kind, LOGLINE_EVENT);
    ck_assert_int_eq(l.severity, 1);
    ck_assert(l.message.len == strlen(ev) - 3);
    const char *notice = "[NOTICE]   (1234) : haproxy version is 2.6.12";
    logline_parse(p, notice, strlen(notice), &l);
    ck_assert_int_eq(l.kind, LOGLINE_EVENT);
    ck_assert_int_eq(l.severity, 5);
    logline_parse(p, "", 0, &l);
    ck_assert_int_eq(l.kind, LOGLINE_EMPTY);
    logline_parser_free(p);
}
END_TEST

START_TEST(test_host_normalise)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"A.B.C", "a.b.c"},
        {"a.b.c:8080", "a.b.c"},
        {"a.b.c.", "a.b.c"},
        {"A.B.C.:443", "a.b.c"},
        {"a.b|ua|x", "a.b"},
        {"[::1]:80", "[::1]"},
        {"[::1]", "[::1]"},
        {"::1", "::1"},
        {"", ""},
        {"a.b.c:", "a.b.c"},
        {"894334G9F403.0021.CHAINS.Example.Tech:443", "894334g9f403.0021.chains.example.tech"},
        {"@[`{AZaz\xc1\xda\xc3\x89XYZ.", "@[`{azaz\xc1\xda\xc3\x89xyz"},
    };
    char out[64];
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        int n = logline_host_normalise(cases[i].in, strlen(cases[i].in), out, sizeof(out));
        ck_assert_int_eq(n, (int)strlen(cases[i].out));
        ck_assert_str_eq(out, cases[i].out);
    }
    ck_assert_int_eq(logline_host_normalise("abcdef", 6, out, 4), -1);
}
END_TEST

static void feed_line(void *ctx, const char *line, size_t len, int too_long)
{
    struct fixture *f = ctx;
    if (too_long)
        ingest_too_long(&f->in, INGEST_STDOUT, 0);
    else
        ingest_line(&f->in, line, len, INGEST_STDOUT, 0);
}

/* A 1 MB line between two relays is one unparsable line, skipped without
 * being buffered whole; a line split across two reads comes out whole. */
START_TEST(test_huge_and_split_lines)
{
    static const char good[] = "<6>127.0.0.1:1 [21/Nov/2026:10:22:33.685] fe be_0021/n0021a "
                               "0/0/0/0/0 200 1 - - ---- 1/1/0/0/0 0/0 "
                               "{894334g9f403.0021.chains.example.tech} \"GET / HTTP/1.1\"\n";
    struct fixture f;
    struct lines lines;
    size_t big = 1u << 20;
    char *huge = malloc(big + 1);
    ck_assert_ptr_nonnull(huge);
    memset(huge, 'x', big);
    huge[big] = '\n';
    fixture_open(&f, "http0");
    ck_assert_int_eq(lines_init(&lines, 128 * 1024, LOGLINE_MAX), 0);
    lines_feed(&lines, good, 40, feed_line, &f);
    lines_feed(&lines, good + 40, strlen(good) - 40, feed_line, &f);
    for (size_t off = 0; off <= big; off += 4096)
        lines_feed(&lines, huge + off, off + 4096 <= big + 1 ? 4096 : big + 1 - off, feed_line, &f);
    lines_feed(&lines, good, strlen(good) - 1, feed_line, &f);
    lines_finish(&lines, feed_line, &f);
    ck_assert_int_eq(f.in.stats.lines, 3);
    ck_assert_int_eq(f.in.stats.relays, 2);
    ck_assert_int_eq(f.in.stats.too_long, 1);
    ck_assert_int_eq(f.in.stats.non_relays[NR_UNPARSABLE], 1);
    ck_assert_int_eq(counter_total_relays(f.counter), 2);

    /* parsed directly, a line over LOGLINE_MAX is unparsable too */
    struct logline l;
    logline_parse(f.in.parser, huge, big, &l);
    ck_assert_int_eq(l.kind, LOGLINE_UNPARSABLE);
    lines_free(&lines);
    fixture_close(&f);
    free(huge);
}
END_TEST

/* The edge counts only what ended there: requests it forwarded are judged
 * by the HTTP tier that took them, while requests the edge answered itself
 * or never forwarded each count once under their reason.
 * The first two lines are real HAProxy 2.6 edge lines (two Host headers, and
 * a relay); the others follow the same format. */
START_TEST(test_edge_counts_what_ended_there)
{
    static const struct {
        const char *line;
        int reason; /* -1: not counted at the edge */
    } cases[] = {
        {"<6>127.0.0.1:56300 [05/Dec/2026:16:21:38.708] fe_edge fe_edge/<NOSRV> -1/-1/-1/-1/0 "
         "400 0 - - PR-- 1/1/0/0/0 0/0 \"<BADREQ>\" -",
         NR_BAD_REQUEST},
        {"<6>127.0.0.1:41132 [05/Dec/2026:16:21:37.349] fe_edge be_http/http0 0/0/0/0/0 200 176 "
         "- - ---- 1/1/0/0/0 0/0 {894334g9f403.0021.chains.local.test} \"POST / HTTP/1.1\" "
         "7F000001:A0AC_7F000001:20BC_6B143A11_0001:5A01",
         -1},
        /* an HTTP tier answered 503 (a node down): counted there */
        {"<6>127.0.0.1:41140 [05/Dec/2026:16:21:37.400] fe_edge be_http/http0 0/0/0/3/3 503 220 "
         "- - ---- 1/1/0/0/0 0/0 {894334g9f403.0021.chains.local.test} \"POST / HTTP/1.1\" -",
         -1},
        /* plain HTTP redirected to HTTPS */
        {"<6>127.0.0.1:41150 [05/Dec/2026:16:21:37.500] fe_edge fe_edge/<NOSRV> 0/-1/-1/-1/0 308 "
         "120 - - LR-- 1/1/0/0/0 0/0 {894334g9f403.0021.chains.local.test} \"GET / HTTP/1.1\" -",
         NR_REDIRECTED},
        /* neither HTTP tier up */
        {"<6>127.0.0.1:41160 [05/Dec/2026:16:21:37.600] fe_edge be_http/<NOSRV> 0/-1/-1/-1/0 503 "
         "217 - - SC-- 1/1/0/0/0 0/0 {894334g9f403.0021.chains.local.test} \"POST / HTTP/1.1\" -",
         NR_UNROUTED},
        /* the client left while its connection to http0 was being made */
        {"<6>127.0.0.1:41170 [05/Dec/2026:16:21:37.700] fe_edge be_http/http0 0/0/-1/-1/4 -1 0 "
         "- - CC-- 1/1/0/0/0 0/0 {894334g9f403.0021.chains.local.test} \"POST / HTTP/1.1\" -",
         NR_NO_RESPONSE},
    };
    int64_t want[NR_COUNT] = {0};
    struct fixture f;

    fixture_open(&f, "edge");
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        ingest_line(&f.in, cases[i].line, strlen(cases[i].line), INGEST_STDOUT, 0);
        if (cases[i].reason >= 0)
            want[cases[i].reason]++;
        for (int r = 0; r < NR_COUNT; r++)
            ck_assert_msg(counter_total_non_relays(f.counter, (enum non_relay_reason)r) == want[r],
                          "after line %zu: %s is %lld, want %lld", i, counter_reason_name(r),
                          (long long)counter_total_non_relays(f.counter, (enum non_relay_reason)r),
                          (long long)want[r]);
    }
    ck_assert_int_eq(f.in.stats.by_kind[LOGLINE_REQUEST], ARRAY_LEN(cases));
    ck_assert_int_eq(f.in.stats.relays, 0);
    ck_assert_int_eq(counter_total_relays(f.counter), 0);
    fixture_close(&f);
}
END_TEST

/* Parse `line` and compare with the reference grammar; fails the test with
 * the line and the field on any difference. */
static void check_ref(logline_parser_t *p, struct logline_ref *ref, const char *line, size_t len)
{
    struct logline l;
    logline_parse(p, line, len, &l);
    const char *diff = logline_ref_diff(ref, line, len, &l);
    ck_assert_msg(diff == NULL, "%s differs from the reference on: %.*s", diff, (int)len, line);
}

/* Every request line of the test data, and every variant of it cut at each
 * byte, with each byte deleted or replaced by a separator, parses exactly as
 * the reference whole-line pattern does (same acceptance, same fields). */
START_TEST(test_reference_grammar)
{
    static const char *const files[] = {"logline/haproxy-2.6/haproxy-2.6-http-tier.log",
                                        "logline/cases/synthetic/input.log",
                                        "logline/cases/real-2.6-uid/input.log"};
    static const char subst[] = " \"{}:|\n\r-x/[].0";
    char path[1024], err[256], buf[2048], var[2048];
    struct logline_ref ref;
    logline_parser_t *p = logline_parser_new(0, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    ck_assert_int_eq(logline_ref_init(&ref), 0);
    size_t nlines = 0;
    for (size_t f = 0; f < ARRAY_LEN(files); f++) {
        snprintf(path, sizeof(path), "%s/%s", datadir(), files[f]);
        FILE *in = fopen(path, "r");
        ck_assert_msg(in != NULL, "%s", path);
        while (fgets(buf, sizeof(buf), in)) {
            size_t len = strcspn(buf, "\n");
            if (strncmp(buf, "<6>", 3) != 0)
                continue;
            nlines++;
            check_ref(p, &ref, buf, len);
            for (size_t i = 0; i < len; i++) {
                check_ref(p, &ref, buf, i);
                memcpy(var, buf, i);
                memcpy(var + i, buf + i + 1, len - i - 1);
                check_ref(p, &ref, var, len - 1);
                memcpy(var, buf, len);
                for (const char *c = subst; *c; c++) {
                    var[i] = *c;
                    check_ref(p, &ref, var, len);
                }
            }
        }
        fclose(in);
    }
    ck_assert_uint_ge(nlines, 40);
    /* client forms that single-byte edits of real lines do not reach */
    static const char *const clients[] = {":1",    "::1",  "a:",         "a:1x",  "[::1]:80",
                                          "a:1:2", "a::1", "1.2.3.4:+1", "x:1\"y"};
    for (size_t i = 0; i < ARRAY_LEN(clients); i++) {
        int n = snprintf(buf, sizeof(buf),
                         "<6>%s [21/Nov/2026:10:22:33.685] fe be_0021/a 0/0/0/0/0 200 1 - - ---- "
                         "1/1/0/0/0 0/0 {h} \"GET / HTTP/1.1\" id",
                         clients[i]);
        check_ref(p, &ref, buf, (size_t)n);
    }
    logline_ref_free(&ref);
    logline_parser_free(p);
}
END_TEST

Suite *logline_suite(void)
{
    Suite *s = suite_create("logline");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_shared_capture);
    tcase_add_test(tc, test_cases);
    tcase_add_test(tc, test_fields);
    tcase_add_test(tc, test_host_normalise);
    tcase_add_test(tc, test_huge_and_split_lines);
    tcase_add_test(tc, test_edge_counts_what_ended_there);
    tcase_add_test(tc, test_reference_grammar);
    suite_add_tcase(s, tc);
    return s;
}
