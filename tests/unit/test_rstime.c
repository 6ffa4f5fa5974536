/* relaystats time ranges: steps, ISO and relative times, alignment. */
#include <check.h>
#include <string.h>

#include "relaystats/rstime.h"

#define T0 1795688400 /* 2026-11-26T10:20:00Z, on a 5m boundary */

START_TEST(steps)
{
    int64_t s;
    ck_assert_int_eq(rstime_parse_step("5m", &s), 0);
    ck_assert_int_eq(s, 300);
    ck_assert_int_eq(rstime_parse_step("1h", &s), 0);
    ck_assert_int_eq(s, 3600);
    ck_assert_int_eq(rstime_parse_step("1d", &s), 0);
    ck_assert_int_eq(s, 86400);
    ck_assert_int_eq(rstime_parse_step("15m", &s), -1);
    ck_assert_int_eq(rstime_parse_step("", &s), -1);
    ck_assert_int_eq(rstime_parse_step(NULL, &s), -1);
    ck_assert_str_eq(rstime_step_name(3600), "1h");
    ck_assert_ptr_null(rstime_step_name(60));
}
END_TEST

START_TEST(relative_times)
{
    char err[200];
    int64_t t;
    int rel;
    ck_assert_int_eq(rstime_parse("-24h", T0, &t, &rel, err, sizeof(err)), 0);
    ck_assert_int_eq(t, T0 - 86400);
    ck_assert_int_eq(rel, 1);
    ck_assert_int_eq(rstime_parse("now", T0, &t, &rel, err, sizeof(err)), 0);
    ck_assert_int_eq(t, T0);
    ck_assert_int_eq(rstime_parse("-2w", T0, &t, &rel, err, sizeof(err)), 0);
    ck_assert_int_eq(t, T0 - 14 * 86400);
    ck_assert_int_eq(rstime_parse("-h", T0, &t, &rel, err, sizeof(err)), -1);
    ck_assert_int_eq(rstime_parse("-5y", T0, &t, &rel, err, sizeof(err)), -1);
    ck_assert_int_eq(rstime_parse("-12345678h", T0, &t, &rel, err, sizeof(err)), -1);
    ck_assert_int_eq(rstime_parse("-1h; DROP TABLE x", T0, &t, &rel, err, sizeof(err)), -1);
    ck_assert_int_eq(rstime_parse("", T0, &t, &rel, err, sizeof(err)), -1);
}
END_TEST

START_TEST(absolute_times)
{
    char err[200];
    int64_t t;
    int rel;
    ck_assert_int_eq(rstime_parse("2026-11-26T10:20:00Z", 0, &t, &rel, err, sizeof(err)), 0);
    ck_assert_int_eq(t, T0);
    ck_assert_int_eq(rel, 0);
    ck_assert_int_eq(rstime_parse("2026-11-26", 0, &t, &rel, err, sizeof(err)), 0);
    ck_assert_int_eq(t, T0 - 10 * 3600 - 20 * 60);
    ck_assert_int_eq(rstime_parse("yesterday", 0, &t, &rel, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "ISO 8601"));
}
END_TEST

START_TEST(ranges)
{
    struct rstime_range r;
    char err[200];

    ck_assert_int_eq(rstime_range_parse("2026-11-26T10:00:00Z", "2026-11-26T11:00:00Z", 300, T0, &r,
                                        err, sizeof(err)),
                     0);
    ck_assert_int_eq(rstime_nbuckets(&r), 12);
    /* unaligned absolute end: an error naming the neighbours */
    ck_assert_int_eq(rstime_range_parse("2026-11-26T10:07:00Z", "2026-11-26T11:00:00Z", 300, T0, &r,
                                        err, sizeof(err)),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "2026-11-26T10:05:00Z"));
    ck_assert_ptr_nonnull(strstr(err, "2026-11-26T10:10:00Z"));
    ck_assert_int_eq(rstime_range_parse("2026-11-26T10:00:00Z", "2026-11-26T11:00:00Z", 86400, T0,
                                        &r, err, sizeof(err)),
                     -1);
    /* relative ends go outward: -1h at 10:22:30 with 1h step is 09:00 .. 11:00 */
    ck_assert_int_eq(rstime_range_parse("-1h", "now", 3600, T0 + 150, &r, err, sizeof(err)), 0);
    ck_assert_int_eq(r.from, T0 - 20 * 60 - 3600);
    ck_assert_int_eq(r.to, T0 - 20 * 60 + 3600);
    /* empty range is fine, reversed is not */
    ck_assert_int_eq(
        rstime_range_parse("2026-11-26", "2026-11-26", 86400, T0, &r, err, sizeof(err)), 0);
    ck_assert_int_eq(rstime_nbuckets(&r), 0);
    ck_assert_int_eq(
        rstime_range_parse("2026-11-27", "2026-11-26", 86400, T0, &r, err, sizeof(err)), -1);
    ck_assert_int_eq(rstime_range_parse(NULL, "now", 300, T0, &r, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "from is required");
    /* bucket limit */
    ck_assert_int_eq(rstime_range_parse("-1000d", "now", 300, T0, &r, err, sizeof(err)), -1);
    ck_assert_int_eq(rstime_range_parse("-1000d", "now", 86400, T0, &r, err, sizeof(err)), 0);
}
END_TEST

Suite *rstime_suite(void)
{
    Suite *s = suite_create("rstime");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, steps);
    tcase_add_test(tc, relative_times);
    tcase_add_test(tc, absolute_times);
    tcase_add_test(tc, ranges);
    suite_add_tcase(s, tc);
    return s;
}
