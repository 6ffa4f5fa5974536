/* bucket: five-minute buckets, HAProxy accept dates, ISO 8601, zones. The
 * arithmetic is cross-checked against libc's timegm/gmtime_r here (the tests
 * may use libc time functions; the parser must not). */
#include <check.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "bucket.h"
#include "sys.h"

START_TEST(test_bucket_start)
{
    static const struct {
        int64_t epoch, start;
    } cases[] = {
        {0, 0},
        {1, 0},
        {299, 0},
        {300, 300},
        {301, 300},
        {-1, -300},
        {-299, -300},
        {-300, -300},
        {-301, -600},
        {1795256553, 1795256400}, /* 2026-11-21T10:22:33Z -> 10:20:00Z */
        {1795256700, 1795256700},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++)
        ck_assert_msg(bucket_start(cases[i].epoch) == cases[i].start, "bucket_start(%lld)",
                      (long long)cases[i].epoch);
}
END_TEST

START_TEST(test_bucket_floor_steps)
{
    ck_assert_int_eq(bucket_floor(1795256553, 3600), 1795255200);
    ck_assert_int_eq(bucket_floor(1795256553, 86400), 1795219200);
    ck_assert_int_eq(bucket_floor(-1, 86400), -86400);
    ck_assert_int_eq(bucket_floor(-86400, 86400), -86400);
    ck_assert_int_eq(bucket_floor(7, 1), 7);
    ck_assert_int_eq(bucket_floor(-7, 1), -7);
}
END_TEST

START_TEST(test_bucket_days_from_civil_vs_timegm)
{
    ck_assert_int_eq(bucket_days_from_civil(1970, 1, 1), 0);
    ck_assert_int_eq(bucket_days_from_civil(1969, 12, 31), -1);
    ck_assert_int_eq(bucket_days_from_civil(2000, 3, 1), 11017);
    /* Every day from 1600 to 2500 against timegm. */
    for (int y = 1600; y <= 2500; y++) {
        for (unsigned m = 1; m <= 12; m++) {
            struct tm tm = {.tm_year = y - 1900, .tm_mon = (int)m - 1, .tm_mday = 1};
            time_t t = timegm(&tm);
            ck_assert_msg(bucket_days_from_civil(y, m, 1) * 86400 == (int64_t)t, "%d-%u-01", y, m);
        }
    }
}
END_TEST

START_TEST(test_bucket_format_iso_vs_gmtime)
{
    char buf[32], want[32];
    int64_t e = -5000000000LL;

    bucket_format_iso(1795256400, buf, sizeof(buf));
    ck_assert_str_eq(buf, "2026-11-21T10:20:00Z");
    bucket_format_iso(0, buf, sizeof(buf));
    ck_assert_str_eq(buf, "1970-01-01T00:00:00Z");
    bucket_format_iso(-1, buf, sizeof(buf));
    ck_assert_str_eq(buf, "1969-12-31T23:59:59Z");
    for (int i = 0; i < 20000; i++) {
        time_t t = (time_t)e;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%SZ", &tm);
        bucket_format_iso(e, buf, sizeof(buf));
        ck_assert_str_eq(buf, want);
        e += 987654321LL / 1000 + 7;
    }
}
END_TEST

/* Every accept date of the HAProxy 2.6 capture in the shared testdata
 * (haproxy-2.6-http-tier.log, taken with TZ=UTC). */
START_TEST(test_bucket_haproxy_dates_of_capture)
{
    static const struct {
        const char *date;
        int64_t ms;
    } cases[] = {
        {"[21/Nov/2026:10:22:33.685]", 1795256553685LL},
        {"[21/Nov/2026:10:22:33.691]", 1795256553691LL},
        {"[21/Nov/2026:10:22:33.698]", 1795256553698LL},
        {"[21/Nov/2026:10:22:33.704]", 1795256553704LL},
        {"[21/Nov/2026:10:22:33.710]", 1795256553710LL},
        {"[21/Nov/2026:10:22:34.718]", 1795256554718LL},
        {"[21/Nov/2026:10:22:35.726]", 1795256555726LL},
        {"[21/Nov/2026:10:22:35.741]", 1795256555741LL},
        {"[21/Nov/2026:10:22:35.755]", 1795256555755LL},
        {"[21/Nov/2026:10:22:37.966]", 1795256557966LL},
        {"[21/Nov/2026:10:22:39.975]", 1795256559975LL},
        {"[21/Nov/2026:10:27:25.558]", 1795256845558LL},
        {"21/Nov/2026:10:27:25.558", 1795256845558LL},
        {"21/Nov/2026:10:27:25", 1795256845000LL},
        {"21/Nov/2026:10:27:25.5", 1795256845500LL},
        {"21/Nov/2026:10:27:25.05", 1795256845050LL},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        int64_t ms = 0;
        ck_assert_msg(bucket_parse_haproxy_date(cases[i].date, strlen(cases[i].date), 0, &ms) == 0,
                      "%s", cases[i].date);
        ck_assert_msg(ms == cases[i].ms, "%s: %lld", cases[i].date, (long long)ms);
    }
    /* All but the last land in the 10:20 bucket; 10:27:25 in 10:25. */
    int64_t ms;
    ck_assert_int_eq(bucket_parse_haproxy_date("[21/Nov/2026:10:22:33.685]", 26, 0, &ms), 0);
    ck_assert_int_eq(bucket_start(ms / 1000), 1795256400);
    ck_assert_int_eq(bucket_parse_haproxy_date("[21/Nov/2026:10:27:25.558]", 26, 0, &ms), 0);
    ck_assert_int_eq(bucket_start(ms / 1000), 1795256700);
}
END_TEST

START_TEST(test_bucket_haproxy_dates_leap_and_ranges)
{
    static const struct {
        const char *date;
        int ok;
    } cases[] = {
        {"29/Feb/2024:00:00:00.000", 1},
        {"29/Feb/2000:12:00:00.000", 1},
        {"29/Feb/2100:00:00:00.000", 0},
        {"29/Feb/2023:00:00:00.000", 0},
        {"28/Feb/2100:23:59:59.999", 1},
        {"30/Feb/2024:00:00:00.000", 0},
        {"31/Apr/2026:00:00:00.000", 0},
        {"30/Apr/2026:00:00:00.000", 1},
        {"31/Jun/2026:00:00:00.000", 0},
        {"31/Sep/2026:00:00:00.000", 0},
        {"31/Nov/2026:00:00:00.000", 0},
        {"31/Dec/2026:23:59:59.999", 1},
        {"00/Jan/2026:00:00:00.000", 0},
        {"32/Jan/2026:00:00:00.000", 0},
        {"21/Nov/2026:24:00:00.000", 0},
        {"21/Nov/2026:23:60:00.000", 0},
        {"21/Nov/2026:23:00:60.000", 0},
        {"21/Foo/2026:10:00:00.000", 0},
        {"21/nov/2026:10:00:00.000", 0},
        {"21/Nov/26:10:00:00.000", 0},
        {"1/Nov/2026:10:00:00.000", 0},
        {"21/Nov/2026 10:00:00.000", 0},
        {"21/Nov/2026:10:00:00.", 0},
        {"21/Nov/2026:10:00:00.1234", 0},
        {"21/Nov/2026:10:00:00.12a", 0},
        {"[21/Nov/2026:10:00:00.000", 0},
        {"21/Nov/2026:10:00:00.000]", 0},
        {"", 0},
        {"[]", 0},
        {"21/Nov/2026:10:00:0x", 0},
        {"21/Nov/2026:10:00:00.000 ", 0},
        {"+1/Nov/2026:10:00:00.000", 0},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        int64_t ms;
        int rc = bucket_parse_haproxy_date(cases[i].date, strlen(cases[i].date), 0, &ms);
        ck_assert_msg(rc == (cases[i].ok ? 0 : -1), "%s: rc %d", cases[i].date, rc);
    }
    int64_t a, b;
    ck_assert_int_eq(bucket_parse_haproxy_date("29/Feb/2024:00:00:00.000", 24, 0, &a), 0);
    ck_assert_int_eq(bucket_parse_haproxy_date("01/Mar/2024:00:00:00.000", 24, 0, &b), 0);
    ck_assert_int_eq(b - a, 86400000);
    /* Length bounds the parse: a valid prefix of a longer buffer. */
    ck_assert_int_eq(bucket_parse_haproxy_date("21/Nov/2026:10:00:00.000 fe", 24, 0, &a), 0);
    ck_assert_int_eq(a, 1795255200000LL);
}
END_TEST

START_TEST(test_bucket_haproxy_dates_with_offset)
{
    int64_t utc, local;
    int32_t off;

    ck_assert_int_eq(bucket_parse_haproxy_date("21/Nov/2026:10:22:33.685", 24, 0, &utc), 0);
    ck_assert_int_eq(bucket_zone_parse("+01:00", &off), 0);
    ck_assert_int_eq(bucket_parse_haproxy_date("21/Nov/2026:11:22:33.685", 24, off, &local), 0);
    ck_assert_int_eq(local, utc);
    ck_assert_int_eq(bucket_zone_parse("-0530", &off), 0);
    ck_assert_int_eq(bucket_parse_haproxy_date("21/Nov/2026:04:52:33.685", 24, off, &local), 0);
    ck_assert_int_eq(local, utc);
    /* Crossing midnight backwards into the previous day. */
    ck_assert_int_eq(bucket_zone_parse("+02", &off), 0);
    ck_assert_int_eq(bucket_parse_haproxy_date("01/Jan/2027:01:00:00.000", 24, off, &local), 0);
    ck_assert_int_eq(local / 1000, bucket_days_from_civil(2026, 12, 31) * 86400 + 23 * 3600);
}
END_TEST

START_TEST(test_bucket_zone_parse)
{
    static const struct {
        const char *s;
        int ok;
        int32_t off;
    } cases[] = {
        {"UTC", 1, 0},        {"Z", 1, 0},          {"+00:00", 1, 0},  {"+01:00", 1, 3600},
        {"-0530", 1, -19800}, {"+05:45", 1, 20700}, {"+14", 1, 50400}, {"-12:00", 1, -43200},
        {"", 0, 0},           {"utc", 0, 0},        {"+1", 0, 0},      {"+24:00", 0, 0},
        {"+01:60", 0, 0},     {"01:00", 0, 0},      {"+01:00x", 0, 0}, {"+01:0", 0, 0},
        {"+0100 ", 0, 0},     {"CET", 0, 0},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        int32_t off = 12345;
        int rc = bucket_zone_parse(cases[i].s, &off);
        ck_assert_msg(rc == (cases[i].ok ? 0 : -1), "'%s': rc %d", cases[i].s, rc);
        if (cases[i].ok)
            ck_assert_msg(off == cases[i].off, "'%s': %d", cases[i].s, off);
    }
    ck_assert_int_eq(bucket_zone_parse(NULL, &(int32_t){0}), -1);
}
END_TEST

START_TEST(test_bucket_parse_iso)
{
    static const struct {
        const char *s;
        int ok;
        int64_t epoch;
    } cases[] = {
        {"2026-11-21T10:20:00Z", 1, 1795256400},
        {"2026-11-21T10:20Z", 1, 1795256400},
        {"2026-11-21T10:20:00", 1, 1795256400},
        {"2026-11-21 10:20:00Z", 1, 1795256400},
        {"2026-11-21T11:20:00+01:00", 1, 1795256400},
        {"2026-11-21T04:50:00-0530", 1, 1795256400},
        {"2026-11-21T10:20:00.999Z", 1, 1795256400},
        {"2026-11-21", 1, 1795219200},
        {"1970-01-01T00:00:00Z", 1, 0},
        {"1969-12-31T23:59:59Z", 1, -1},
        {"2024-02-29", 1, 1709164800},
        {"2000-02-29", 1, 951782400},
        {"2100-02-29", 0, 0},
        {"2026-02-29", 0, 0},
        {"2026-04-31", 0, 0},
        {"2026-13-01", 0, 0},
        {"2026-00-01", 0, 0},
        {"2026-11-21T24:00:00Z", 0, 0},
        {"2026-11-21T10:60:00Z", 0, 0},
        {"2026-11-21T10:20:00ZZ", 0, 0},
        {"2026-11-21T10:20:00.Z", 0, 0},
        {"2026-11-21T", 0, 0},
        {"2026-11-21T10", 0, 0},
        {"2026-1-21", 0, 0},
        {"26-11-21", 0, 0},
        {"2026/11/21", 0, 0},
        {"2026-11-21x", 0, 0},
        {"", 0, 0},
        {"now", 0, 0},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        int64_t e = 0;
        int rc = bucket_parse_iso(cases[i].s, &e);
        ck_assert_msg(rc == (cases[i].ok ? 0 : -1), "'%s': rc %d", cases[i].s, rc);
        if (cases[i].ok)
            ck_assert_msg(e == cases[i].epoch, "'%s': %lld", cases[i].s, (long long)e);
    }
}
END_TEST

START_TEST(test_bucket_iso_round_trip)
{
    char buf[32];
    int64_t back;

    for (int64_t e = -4000000000LL; e < 9000000000LL; e += 123456789) {
        bucket_format_iso(e, buf, sizeof(buf));
        ck_assert_int_eq(bucket_parse_iso(buf, &back), 0);
        ck_assert_int_eq(back, e);
    }
}
END_TEST

Suite *bucket_suite(void)
{
    Suite *s = suite_create("bucket");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_bucket_start);
    tcase_add_test(tc, test_bucket_floor_steps);
    tcase_add_test(tc, test_bucket_days_from_civil_vs_timegm);
    tcase_add_test(tc, test_bucket_format_iso_vs_gmtime);
    tcase_add_test(tc, test_bucket_haproxy_dates_of_capture);
    tcase_add_test(tc, test_bucket_haproxy_dates_leap_and_ranges);
    tcase_add_test(tc, test_bucket_haproxy_dates_with_offset);
    tcase_add_test(tc, test_bucket_zone_parse);
    tcase_add_test(tc, test_bucket_parse_iso);
    tcase_add_test(tc, test_bucket_iso_round_trip);
    suite_add_tcase(s, tc);
    return s;
}
