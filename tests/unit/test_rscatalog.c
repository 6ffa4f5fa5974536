/* Who may see a Redis realtime row: the provider that owned its account and
 * chain at its bucket (the lookups themselves run against PostgreSQL in
 * tests/integration/test_ownership.sh). */
#include <check.h>
#include <stdint.h>

#include "relaystats/rscatalog.h"

#define T0 1768003200

START_TEST(accounts_has_by_time)
{
    static char c[] = "0021", a[] = "xxx", b[] = "yyy";
    struct rscatalog_account v[] = {
        {c, a, INT64_MIN, T0 + 600},  /* owned until the move */
        {c, a, T0 + 7200, INT64_MAX}, /* and again from 02:00 */
        {c, b, T0, INT64_MAX},
    };
    struct rscatalog_accounts owned = {v, 3};

    ck_assert_int_eq(rscatalog_accounts_has(&owned, "0021", "xxx", T0), 1);
    ck_assert_int_eq(rscatalog_accounts_has(&owned, "0021", "xxx", T0 + 300), 1);
    ck_assert_int_eq(rscatalog_accounts_has(&owned, "0021", "xxx", T0 + 600), 0);
    ck_assert_int_eq(rscatalog_accounts_has(&owned, "0021", "xxx", T0 + 6900), 0);
    ck_assert_int_eq(rscatalog_accounts_has(&owned, "0021", "xxx", T0 + 7200), 1);
    ck_assert_int_eq(rscatalog_accounts_has(&owned, "0021", "yyy", T0 - 300), 0);
    ck_assert_int_eq(rscatalog_accounts_has(&owned, "0021", "yyy", T0), 1);
    ck_assert_int_eq(rscatalog_accounts_has(&owned, "0001", "xxx", T0), 0);
    ck_assert_int_eq(rscatalog_accounts_has(&owned, "0021", "zzz", T0), 0);
}
END_TEST

Suite *rscatalog_suite(void)
{
    Suite *s = suite_create("rscatalog");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, accounts_has_by_time);
    suite_add_tcase(s, tc);
    return s;
}
