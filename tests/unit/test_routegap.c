/* Per-route reconciliation: HAProxy's st_routes table against the relays
 * counted per route, from the baseline sample on. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "gateway/routegap.h"

/* A `show table st_routes` answer with the given "route=count" entries. */
static struct routegap_sample *table(long pid, int64_t t_ms, const char *const *entries)
{
    char buf[4096];
    int off =
        snprintf(buf, sizeof(buf), "# table: st_routes, type: string, size:4194304, used:%d\n", 2);
    for (int i = 0; entries[i]; i++) {
        const char *eq = strchr(entries[i], '=');
        off += snprintf(buf + off, sizeof(buf) - (size_t)off,
                        "0x55d0c8a1e%03x: key=%.*s use=0 exp=0 gpc0=%s\n", i,
                        (int)(eq - entries[i]), entries[i], eq + 1);
    }
    off += snprintf(buf + off, sizeof(buf) - (size_t)off, "\n");
    return routegap_sample_parse(pid, buf, (size_t)off, t_ms, t_ms);
}

static void relays(routegap_t *g, long pid, const char *chain, const char *account, int n,
                   int64_t ms)
{
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(routegap_relay(g, pid, chain, account, 200, ms), 0);
}

START_TEST(test_parse)
{
    static const char answer[] = "# table: st_routes, type: string, size:4194304, used:3\n"
                                 "0x5582de1ee208: key=0021/894334g9f403 use=0 exp=0 gpc0=4\n"
                                 "0x5582de1ee209: key=0001/a-b use=1 exp=0 gpc0=0\n"
                                 "0x5582de1ee20a: key=BAD/Key use=0 exp=0 gpc0=9\n"
                                 "0x5582de1ee20b: key=0021/x use=0 exp=0 gpc0=-3\n"
                                 "garbage\n\n";
    struct routegap_sample *s = routegap_sample_parse(7, answer, strlen(answer), 990, 1000);
    ck_assert_ptr_nonnull(s);
    routegap_t *g = routegap_new(0);
    ck_assert_int_eq(routegap_relay(g, 7, "0021", "894334g9f403", 200, 100), 0);
    routegap_add_sample(g, 7, s);
    struct routegap_stats st;
    routegap_stats(g, &st);
    /* the two good entries, and nothing from the bad ones */
    ck_assert_uint_eq(st.routes, 2);
    routegap_free(g);
    /* not the table: an HTTP tier rendered before st_routes, an error */
    static const char none[] = "No such table\n";
    ck_assert_ptr_null(routegap_sample_parse(7, none, strlen(none), 990, 1000));
    static const char other[] = "# table: st_other, type: string, size:1, used:0\n\n";
    ck_assert_ptr_null(routegap_sample_parse(7, other, strlen(other), 990, 1000));
}
END_TEST

START_TEST(test_agree_and_gap)
{
    routegap_t *g = routegap_new(1000);
    struct routegap_stats st;
    /* before the baseline: already in HAProxy's baseline count */
    relays(g, 1, "0021", "a", 5, 1500);
    routegap_add_sample(g, 1, table(1, 2000, (const char *const[]){"0021/a=5", NULL}));
    relays(g, 1, "0021", "a", 3, 2500);
    relays(g, 1, "0021", "b", 2, 2600);
    /* answered after the next sample: judged with the one after it */
    relays(g, 1, "0021", "a", 1, 3500);
    routegap_add_sample(g, 1, table(1, 3000, (const char *const[]){"0021/a=8", "0021/b=2", NULL}));
    ck_assert_uint_eq(routegap_evaluate(g, 4999), 1); /* the baseline */
    ck_assert_uint_eq(routegap_evaluate(g, 5000), 1);
    routegap_stats(g, &st);
    ck_assert_int_eq(st.checks, 1);
    ck_assert_int_eq(st.gap, 0);
    ck_assert_int_eq(st.excess, 0);
    /* HAProxy answered 4 more of a and 1 of c: we saw only 1 of a */
    routegap_add_sample(
        g, 1, table(1, 4000, (const char *const[]){"0021/a=12", "0021/b=2", "0001/c=1", NULL}));
    ck_assert_uint_eq(routegap_evaluate(g, 6000), 1);
    routegap_stats(g, &st);
    ck_assert_int_eq(st.gap, 4);
    ck_assert_uint_eq(st.routes_gap, 2);
    struct routegap_route worst[4];
    ck_assert_uint_eq(routegap_worst(g, worst, 4), 2);
    ck_assert_str_eq(worst[0].route, "0021/a");
    ck_assert_int_eq(worst[0].gap, 3);
    ck_assert_int_eq(worst[0].haproxy, 7);
    ck_assert_str_eq(worst[1].route, "0001/c");
    /* billed to the wrong account: b gets relays HAProxy counted for a */
    relays(g, 1, "0021", "b", 3, 4500);
    routegap_add_sample(
        g, 1, table(1, 5000, (const char *const[]){"0021/a=12", "0021/b=2", "0001/c=1", NULL}));
    ck_assert_uint_eq(routegap_evaluate(g, 7000), 1);
    routegap_stats(g, &st);
    ck_assert_int_eq(st.excess, 3);
    ck_assert_uint_eq(st.routes_excess, 1);
    routegap_free(g);
}
END_TEST

START_TEST(test_restart_and_new_process)
{
    struct routegap_stats st;
    /* a worker started at 10,000 never takes an older sample as baseline */
    routegap_t *g = routegap_new(10000);
    relays(g, 1, "0021", "a", 1, 9000);
    routegap_add_sample(g, 1, table(1, 9500, (const char *const[]){"0021/a=100", NULL}));
    routegap_add_sample(g, 1, table(1, 10500, (const char *const[]){"0021/a=101", NULL}));
    relays(g, 1, "0021", "a", 2, 11000);
    routegap_add_sample(g, 1, table(1, 11500, (const char *const[]){"0021/a=103", NULL}));
    ck_assert_uint_eq(routegap_evaluate(g, 20000), 3);
    routegap_stats(g, &st);
    ck_assert_int_eq(st.checks, 1);
    ck_assert_int_eq(st.gap, 0);
    /* a sample of a process whose log is not read yet is ignored */
    routegap_add_sample(g, 1, table(2, 12000, (const char *const[]){"0021/a=1", NULL}));
    ck_assert_uint_eq(routegap_evaluate(g, 20000), 0);
    /* a new HAProxy process: a new baseline, then agreement again */
    relays(g, 2, "0021", "a", 1, 13000);
    routegap_add_sample(g, 2, table(2, 14000, (const char *const[]){"0021/a=1", NULL}));
    relays(g, 2, "0021", "a", 1, 15000);
    routegap_add_sample(g, 2, table(2, 16000, (const char *const[]){"0021/a=3", NULL}));
    ck_assert_uint_eq(routegap_evaluate(g, 30000), 2);
    routegap_stats(g, &st);
    ck_assert_int_eq(st.checks, 2);
    ck_assert_int_eq(st.gap, 1);
    /* only 2xx-4xx are compared, as HAProxy's gpc0 counts */
    ck_assert_int_eq(routegap_relay(g, 2, "0021", "a", 101, 16500), 0);
    ck_assert_int_eq(routegap_relay(g, 2, "0021", "a", 503, 16500), 0);
    routegap_add_sample(g, 2, table(2, 17000, (const char *const[]){"0021/a=3", NULL}));
    ck_assert_uint_eq(routegap_evaluate(g, 30000), 1);
    routegap_stats(g, &st);
    ck_assert_int_eq(st.gap, 1);
    ck_assert_int_eq(st.excess, 0);
    routegap_free(g);
}
END_TEST

/* Under load relays keep coming while HAProxy dumps its table: those
 * answered during a dump may or may not be in it, and are no gap either
 * way; one lost relay outside the dumps is. */
START_TEST(test_dump_interval)
{
    struct routegap_stats st;
    /* the baseline held 0 or 1, S 11 or 12 (10 to 12 more): 9 is an
     * excess of one, 13 a gap of one */
    static const char s11[] = "# table: st_routes, x\n0x1: key=0021/a use=0 exp=0 gpc0=11\n";
    static const char s12[] = "# table: st_routes, x\n0x1: key=0021/a use=0 exp=0 gpc0=12\n";
    static const char s9[] = "# table: st_routes, x\n0x1: key=0021/a use=0 exp=0 gpc0=9\n";
    static const char s13[] = "# table: st_routes, x\n0x1: key=0021/a use=0 exp=0 gpc0=13\n";
    const char *const answers[] = {s11, s12, s9, s13};
    const int64_t want_gap[] = {0, 0, -1, 1};
    for (int i = 0; i < 4; i++) {
        routegap_t *h = routegap_new(0);
        routegap_add_sample(h, 1,
                            routegap_sample_parse(1, "# table: st_routes, x\n", 21, 1000, 1100));
        /* maybe in the baseline, surely between, maybe in S */
        ck_assert_int_eq(routegap_relay(h, 1, "0021", "a", 200, 1050), 0);
        relays(h, 1, "0021", "a", 10, 1500);
        ck_assert_int_eq(routegap_relay(h, 1, "0021", "a", 200, 2050), 0);
        routegap_add_sample(h, 1,
                            routegap_sample_parse(1, answers[i], strlen(answers[i]), 2000, 2100));
        ck_assert_uint_eq(routegap_evaluate(h, 10000), 2);
        routegap_stats(h, &st);
        ck_assert_int_eq(st.checks, 1);
        ck_assert_int_eq(st.gap - st.excess, want_gap[i]);
        routegap_free(h);
    }
}
END_TEST

/* No sample for a long time (an HTTP tier without st_routes): the queue
 * stays bounded, and the next samples start a new comparison, no false gap. */
START_TEST(test_no_samples_bounded)
{
    struct routegap_stats st;
    routegap_t *g = routegap_new(0);
    for (int i = 0; i < (1 << 20) + 10; i++)
        ck_assert_int_eq(routegap_relay(g, 1, "0021", "a", 200, 1000 + i / 1000), 0);
    routegap_stats(g, &st);
    ck_assert_int_eq(st.restarts, 1);
    routegap_add_sample(g, 1, table(1, 5000, (const char *const[]){"0021/a=2000000", NULL}));
    ck_assert_int_eq(routegap_relay(g, 1, "0021", "a", 200, 5500), 0);
    routegap_add_sample(g, 1, table(1, 6000, (const char *const[]){"0021/a=2000001", NULL}));
    ck_assert_uint_eq(routegap_evaluate(g, 9000), 2);
    routegap_stats(g, &st);
    ck_assert_int_eq(st.checks, 1);
    ck_assert_int_eq(st.gap, 0);
    ck_assert_int_eq(st.excess, 0);
    routegap_free(g);
}
END_TEST

START_TEST(test_many_routes)
{
    /* the intern table grows past its first size */
    routegap_t *g = routegap_new(0);
    char acct[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(acct, sizeof(acct), "a%d", i);
        ck_assert_int_eq(routegap_relay(g, 1, "0021", acct, 200, 10), 0);
    }
    struct routegap_stats st;
    routegap_stats(g, &st);
    ck_assert_uint_eq(st.routes, 5000);
    ck_assert_int_eq(routegap_relay(g, 1, "0021", "a4999", 200, 10), 0);
    routegap_stats(g, &st);
    ck_assert_uint_eq(st.routes, 5000);
    routegap_free(g);
}
END_TEST

Suite *routegap_suite(void)
{
    Suite *s = suite_create("routegap");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_parse);
    tcase_add_test(tc, test_agree_and_gap);
    tcase_add_test(tc, test_restart_and_new_process);
    tcase_add_test(tc, test_dump_interval);
    tcase_add_test(tc, test_no_samples_bounded);
    tcase_add_test(tc, test_many_routes);
    suite_add_tcase(s, tc);
    return s;
}
