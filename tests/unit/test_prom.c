/* prom: exact exposition text, name validation, escaping, histograms. With
 * CCGW_PROM_OUT set, test_prom_sample_page also writes its page there for
 * tests/integration/test_promtool.sh to check with promtool. */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"
#include "sys.h"

static const char *page(prom_t *p)
{
    const char *t = prom_text(p, NULL);
    ck_assert_ptr_nonnull(t);
    return t;
}

START_TEST(test_prom_counter_gauge)
{
    prom_t *p = prom_new();
    const char *const labels[] = {"chain", "0021", "account", "894334g9f403", NULL};
    size_t len;

    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(prom_family(p, "ccgw_relays_total", PROM_COUNTER, "Relays counted."), 0);
    ck_assert_int_eq(prom_sample(p, "ccgw_relays_total", labels, 12), 0);
    ck_assert_int_eq(prom_sample(p, "ccgw_relays_total", NULL, 3), 0);
    ck_assert_int_eq(prom_family(p, "ccgw_up", PROM_GAUGE, NULL), 0);
    ck_assert_int_eq(prom_sample(p, "ccgw_up", NULL, 1), 0);
    ck_assert_str_eq(page(p), "# HELP ccgw_relays_total Relays counted.\n"
                              "# TYPE ccgw_relays_total counter\n"
                              "ccgw_relays_total{chain=\"0021\",account=\"894334g9f403\"} 12\n"
                              "ccgw_relays_total 3\n"
                              "# TYPE ccgw_up gauge\n"
                              "ccgw_up 1\n");
    ck_assert_ptr_nonnull(prom_text(p, &len));
    ck_assert_uint_eq(len, strlen(page(p)));
    prom_free(p);
}
END_TEST

START_TEST(test_prom_escaping)
{
    prom_t *p = prom_new();
    const char *const labels[] = {"v", "a\\b \"q\"\nnext", "u", "h\xc3\xa9llo \xe2\x82\xac", NULL};

    ck_assert_int_eq(prom_family(p, "x", PROM_GAUGE, "line1\nline2 back\\slash \"quoted\""), 0);
    ck_assert_int_eq(prom_sample(p, "x", labels, 0.5), 0);
    ck_assert_str_eq(page(p),
                     "# HELP x line1\\nline2 back\\\\slash \"quoted\"\n"
                     "# TYPE x gauge\n"
                     "x{v=\"a\\\\b \\\"q\\\"\\nnext\",u=\"h\xc3\xa9llo \xe2\x82\xac\"} 0.5\n");
    prom_free(p);
}
END_TEST

START_TEST(test_prom_values)
{
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {0, "0"},
        {1, "1"},
        {-1, "-1"},
        {1.5, "1.5"},
        {0.1, "0.1"},
        {1e-9, "1e-09"},
        {123456789012, "123456789012"},
        {9007199254740991.0, "9007199254740991"},
        {9007199254740992.0, "9007199254740992"},
        {1e300, "1e+300"},
        {0.1 + 0.2, "0.30000000000000004"},
        {-2.5e-3, "-0.0025"},
        {1.0 / 3.0, "0.3333333333333333"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        prom_t *p = prom_new();
        char want[128];
        ck_assert_int_eq(prom_family(p, "v", PROM_GAUGE, NULL), 0);
        ck_assert_int_eq(prom_sample(p, "v", NULL, cases[i].v), 0);
        snprintf(want, sizeof(want), "# TYPE v gauge\nv %s\n", cases[i].text);
        ck_assert_str_eq(page(p), want);
        /* Whatever the spelling, it reads back as the same double. */
        ck_assert(strtod(strrchr(page(p), ' ') + 1, NULL) == cases[i].v);
        prom_free(p);
    }
}
END_TEST

START_TEST(test_prom_special_values)
{
    prom_t *p = prom_new();

    ck_assert_int_eq(prom_family(p, "s", PROM_GAUGE, NULL), 0);
    ck_assert_int_eq(prom_sample(p, "s", (const char *const[]){"k", "nan", NULL}, NAN), 0);
    ck_assert_int_eq(prom_sample(p, "s", (const char *const[]){"k", "pinf", NULL}, INFINITY), 0);
    ck_assert_int_eq(prom_sample(p, "s", (const char *const[]){"k", "ninf", NULL}, -INFINITY), 0);
    ck_assert_str_eq(page(p), "# TYPE s gauge\ns{k=\"nan\"} NaN\ns{k=\"pinf\"} +Inf\n"
                              "s{k=\"ninf\"} -Inf\n");
    prom_free(p);
}
END_TEST

/* Each bad call fails and poisons the page. */
START_TEST(test_prom_rejects)
{
    static const char *const bad_metric[] = {"", "1abc", "a-b", "a b", "é", "a.b", NULL};
    static const char *const good_metric[] = {"a", "_a", ":a", "a:b_c9", "A", NULL};
    static const char *const bad_label[] = {"", "1a", "__name", "a:b", "a-b", "le x", NULL};
    static const char *const good_label[] = {"a", "_a", "a_9", "A", "_", NULL};

    for (const char *const *n = bad_metric; *n; n++) {
        prom_t *p = prom_new();
        ck_assert_int_eq(prom_family(p, *n, PROM_GAUGE, NULL), -1);
        ck_assert_ptr_null(prom_text(p, NULL));
        prom_free(p);
    }
    for (const char *const *n = good_metric; *n; n++) {
        prom_t *p = prom_new();
        ck_assert_int_eq(prom_family(p, *n, PROM_GAUGE, NULL), 0);
        prom_free(p);
    }
    for (const char *const *n = bad_label; *n; n++) {
        prom_t *p = prom_new();
        const char *const labels[] = {*n, "v", NULL};
        ck_assert_int_eq(prom_family(p, "m", PROM_GAUGE, NULL), 0);
        ck_assert_msg(prom_sample(p, "m", labels, 1) == -1, "label '%s'", *n);
        ck_assert_ptr_null(prom_text(p, NULL));
        ck_assert_int_eq(prom_family(p, "other", PROM_GAUGE, NULL), -1);
        prom_free(p);
    }
    for (const char *const *n = good_label; *n; n++) {
        prom_t *p = prom_new();
        const char *const labels[] = {*n, "v", NULL};
        ck_assert_int_eq(prom_family(p, "m", PROM_GAUGE, NULL), 0);
        ck_assert_msg(prom_sample(p, "m", labels, 1) == 0, "label '%s'", *n);
        prom_free(p);
    }
}
END_TEST

START_TEST(test_prom_rejects_misuse)
{
    prom_t *p;

    /* Family written twice. */
    p = prom_new();
    ck_assert_int_eq(prom_family(p, "dup", PROM_COUNTER, NULL), 0);
    ck_assert_int_eq(prom_family(p, "other", PROM_COUNTER, NULL), 0);
    ck_assert_int_eq(prom_family(p, "dup", PROM_COUNTER, NULL), -1);
    ck_assert_ptr_null(prom_text(p, NULL));
    prom_free(p);
    /* HELP that is not UTF-8. */
    p = prom_new();
    ck_assert_int_eq(prom_family(p, "x", PROM_GAUGE, "bad \xc3("), -1);
    ck_assert_ptr_null(prom_text(p, NULL));
    prom_free(p);
    /* Sample before any family, or of another family. */
    p = prom_new();
    ck_assert_int_eq(prom_sample(p, "x", NULL, 1), -1);
    prom_free(p);
    p = prom_new();
    ck_assert_int_eq(prom_family(p, "x", PROM_GAUGE, NULL), 0);
    ck_assert_int_eq(prom_sample(p, "y", NULL, 1), -1);
    prom_free(p);
    /* A histogram suffix on a gauge; a bare name on a histogram. */
    p = prom_new();
    ck_assert_int_eq(prom_family(p, "x", PROM_GAUGE, NULL), 0);
    ck_assert_int_eq(prom_sample(p, "x_sum", NULL, 1), -1);
    prom_free(p);
    p = prom_new();
    ck_assert_int_eq(prom_family(p, "h", PROM_HISTOGRAM, NULL), 0);
    ck_assert_int_eq(prom_sample(p, "h", NULL, 1), -1);
    prom_free(p);
    /* Duplicate label, odd label array, invalid UTF-8 value. */
    p = prom_new();
    ck_assert_int_eq(prom_family(p, "x", PROM_GAUGE, NULL), 0);
    ck_assert_int_eq(prom_sample(p, "x", (const char *const[]){"a", "1", "a", "2", NULL}, 1), -1);
    prom_free(p);
    p = prom_new();
    ck_assert_int_eq(prom_family(p, "x", PROM_GAUGE, NULL), 0);
    ck_assert_int_eq(prom_sample(p, "x", (const char *const[]){"a", NULL}, 1), -1);
    prom_free(p);
    p = prom_new();
    ck_assert_int_eq(prom_family(p, "x", PROM_GAUGE, NULL), 0);
    ck_assert_int_eq(prom_sample(p, "x", (const char *const[]){"a", "\xff", NULL}, 1), -1);
    prom_free(p);
    p = prom_new();
    ck_assert_int_eq(prom_family(p, "x", PROM_GAUGE, NULL), 0);
    ck_assert_int_eq(prom_sample(p, "x", (const char *const[]){"a", "\xed\xa0\x80", NULL}, 1), -1);
    prom_free(p);
}
END_TEST

START_TEST(test_prom_histogram_text)
{
    static const double bounds[] = {0.1, 1, 2.5};
    struct prom_histogram h;
    prom_t *p = prom_new();
    const char *const labels[] = {"route", "/rpc", NULL};

    ck_assert_int_eq(prom_histogram_init(&h, bounds, ARRAY_LEN(bounds)), 0);
    prom_histogram_observe(&h, 0.05);
    prom_histogram_observe(&h, 0.1); /* le is inclusive */
    prom_histogram_observe(&h, 0.5);
    prom_histogram_observe(&h, 3);
    prom_histogram_observe(&h, 1e9);
    prom_histogram_observe(&h, NAN); /* dropped */
    ck_assert_int_eq(prom_family(p, "lat_seconds", PROM_HISTOGRAM, "Latency."), 0);
    ck_assert_int_eq(prom_histogram_write(p, "lat_seconds", labels, &h), 0);
    ck_assert_str_eq(page(p), "# HELP lat_seconds Latency.\n"
                              "# TYPE lat_seconds histogram\n"
                              "lat_seconds_bucket{route=\"/rpc\",le=\"0.1\"} 2\n"
                              "lat_seconds_bucket{route=\"/rpc\",le=\"1\"} 3\n"
                              "lat_seconds_bucket{route=\"/rpc\",le=\"2.5\"} 3\n"
                              "lat_seconds_bucket{route=\"/rpc\",le=\"+Inf\"} 5\n"
                              "lat_seconds_sum{route=\"/rpc\"} 1000000003.65\n"
                              "lat_seconds_count{route=\"/rpc\"} 5\n");
    prom_free(p);

    /* Without labels, le is the only label; with a user "le" label it fails. */
    p = prom_new();
    ck_assert_int_eq(prom_histogram_init(&h, NULL, 0), 0);
    ck_assert_int_eq(prom_family(p, "e", PROM_HISTOGRAM, NULL), 0);
    ck_assert_int_eq(prom_histogram_write(p, "e", NULL, &h), 0);
    ck_assert_str_eq(page(p), "# TYPE e histogram\ne_bucket{le=\"+Inf\"} 0\ne_sum 0\ne_count 0\n");
    ck_assert_int_eq(prom_histogram_write(p, "e", (const char *const[]){"le", "1", NULL}, &h), -1);
    prom_free(p);

    /* Writing a histogram into a gauge family fails. */
    p = prom_new();
    ck_assert_int_eq(prom_family(p, "g", PROM_GAUGE, NULL), 0);
    ck_assert_int_eq(prom_histogram_write(p, "g", NULL, &h), -1);
    prom_free(p);
}
END_TEST

START_TEST(test_prom_histogram_init_rejects)
{
    struct prom_histogram h;
    double many[PROM_MAX_BUCKETS + 1];

    for (size_t i = 0; i < PROM_MAX_BUCKETS + 1; i++)
        many[i] = (double)i;
    ck_assert_int_eq(prom_histogram_init(&h, many, PROM_MAX_BUCKETS), 0);
    ck_assert_int_eq(prom_histogram_init(&h, many, PROM_MAX_BUCKETS + 1), -1);
    ck_assert_int_eq(prom_histogram_init(&h, (const double[]){1, 1}, 2), -1);
    ck_assert_int_eq(prom_histogram_init(&h, (const double[]){2, 1}, 2), -1);
    ck_assert_int_eq(prom_histogram_init(&h, (const double[]){1, NAN}, 2), -1);
    ck_assert_int_eq(prom_histogram_init(&h, (const double[]){1, INFINITY}, 2), -1);
    ck_assert_int_eq(prom_histogram_init(&h, PROM_LATENCY_BOUNDS, PROM_LATENCY_NBOUNDS), 0);
    ck_assert(PROM_LATENCY_BOUNDS[0] == 0.0005);
    ck_assert(PROM_LATENCY_BOUNDS[PROM_LATENCY_NBOUNDS - 1] == 10);
}
END_TEST

#define OBS_THREADS 4
#define OBS_EACH 100000

static void *observe_thread(void *arg)
{
    struct prom_histogram *h = arg;
    for (int i = 0; i < OBS_EACH; i++)
        prom_histogram_observe(h, (double)(i % 4));
    return NULL;
}

/* Concurrent observers lose nothing: counts and the CAS-updated sum are exact. */
START_TEST(test_prom_histogram_concurrent)
{
    static const double bounds[] = {0, 1, 2};
    struct prom_histogram h;
    pthread_t th[OBS_THREADS];

    ck_assert_int_eq(prom_histogram_init(&h, bounds, ARRAY_LEN(bounds)), 0);
    for (int i = 0; i < OBS_THREADS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, observe_thread, &h), 0);
    for (int i = 0; i < OBS_THREADS; i++)
        pthread_join(th[i], NULL);
    ck_assert_uint_eq(h.count, OBS_THREADS * OBS_EACH);
    for (size_t i = 0; i <= ARRAY_LEN(bounds); i++) /* and +Inf */
        ck_assert_uint_eq(h.counts[i], OBS_THREADS * OBS_EACH / 4);
    ck_assert(h.sum == (double)OBS_THREADS * (OBS_EACH / 4) * (0 + 1 + 2 + 3));
}
END_TEST

START_TEST(test_prom_large_page)
{
    prom_t *p = prom_new();
    char name[64];
    size_t len;

    for (int i = 0; i < 2000; i++) {
        snprintf(name, sizeof(name), "family_%d", i);
        ck_assert_int_eq(prom_family(p, name, PROM_COUNTER, "A family with a long help text."), 0);
        ck_assert_int_eq(prom_sample(p, name, (const char *const[]){"i", name, NULL}, i), 0);
    }
    ck_assert_ptr_nonnull(prom_text(p, &len));
    ck_assert_uint_gt(len, 2000 * 60);
    ck_assert_ptr_nonnull(strstr(page(p), "family_1999{i=\"family_1999\"} 1999\n"));
    ck_assert_int_eq(prom_family(p, "family_7", PROM_COUNTER, NULL), -1);
    prom_free(p);
}
END_TEST

/* A page with every kind of family and awkward label values; written to
 * $CCGW_PROM_OUT for promtool when set. */
START_TEST(test_prom_sample_page)
{
    const char *out = getenv("CCGW_PROM_OUT");
    struct prom_histogram h;
    prom_t *p = prom_new();
    const char *text;
    size_t len;

    ck_assert_int_eq(prom_family(p, "ccgw_relays_total", PROM_COUNTER,
                                 "Relays counted.\nSecond line with a back\\slash."),
                     0);
    ck_assert_int_eq(prom_sample(p, "ccgw_relays_total",
                                 (const char *const[]){"gateway", "gw1", "chain", "0021", NULL},
                                 1234567),
                     0);
    ck_assert_int_eq(
        prom_sample(p, "ccgw_relays_total",
                    (const char *const[]){"gateway", "quote\"back\\slash\nnewline", "chain",
                                          "\xe2\x9c\x93 \xc3\xa9\xf0\x9f\x9a\x80", NULL},
                    1),
        0);
    ck_assert_int_eq(prom_family(p, "ccgw_queue_depth", PROM_GAUGE, "Queue depth."), 0);
    ck_assert_int_eq(prom_sample(p, "ccgw_queue_depth", NULL, -2.5), 0);
    ck_assert_int_eq(prom_family(p, "ccgw_specials", PROM_GAUGE, "Special values."), 0);
    ck_assert_int_eq(prom_sample(p, "ccgw_specials", (const char *const[]){"v", "nan", NULL}, NAN),
                     0);
    ck_assert_int_eq(
        prom_sample(p, "ccgw_specials", (const char *const[]){"v", "inf", NULL}, INFINITY), 0);
    ck_assert_int_eq(
        prom_sample(p, "ccgw_specials", (const char *const[]){"v", "ninf", NULL}, -INFINITY), 0);
    ck_assert_int_eq(
        prom_sample(p, "ccgw_specials", (const char *const[]){"v", "tiny", NULL}, 1e-300), 0);
    ck_assert_int_eq(prom_histogram_init(&h, PROM_LATENCY_BOUNDS, PROM_LATENCY_NBOUNDS), 0);
    for (int i = 0; i < 1000; i++)
        prom_histogram_observe(&h, i * 0.0137);
    ck_assert_int_eq(prom_family(p, "ccgw_request_seconds", PROM_HISTOGRAM, "Request latency."), 0);
    ck_assert_int_eq(prom_histogram_write(p, "ccgw_request_seconds",
                                          (const char *const[]){"route", "/metrics", NULL}, &h),
                     0);
    ck_assert_int_eq(prom_histogram_write(p, "ccgw_request_seconds",
                                          (const char *const[]){"route", "/rpc", NULL}, &h),
                     0);
    text = prom_text(p, &len);
    ck_assert_ptr_nonnull(text);
    if (out) {
        FILE *f = fopen(out, "w");
        ck_assert_msg(f != NULL, "cannot write %s", out);
        ck_assert_uint_eq(fwrite(text, 1, len, f), len);
        ck_assert_int_eq(fclose(f), 0);
    }
    prom_free(p);
}
END_TEST

Suite *prom_suite(void)
{
    Suite *s = suite_create("prom");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_prom_counter_gauge);
    tcase_add_test(tc, test_prom_escaping);
    tcase_add_test(tc, test_prom_values);
    tcase_add_test(tc, test_prom_special_values);
    tcase_add_test(tc, test_prom_rejects);
    tcase_add_test(tc, test_prom_rejects_misuse);
    tcase_add_test(tc, test_prom_histogram_text);
    tcase_add_test(tc, test_prom_histogram_init_rejects);
    tcase_add_test(tc, test_prom_histogram_concurrent);
    tcase_add_test(tc, test_prom_large_page);
    tcase_add_test(tc, test_prom_sample_page);
    suite_add_tcase(s, tc);
    return s;
}
