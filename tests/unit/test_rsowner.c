/* Account ownership: the boundary of a change, the sync plan, and the
 * attribution SQL's shape (its results are checked against PostgreSQL in
 * tests/integration/test_ownership.sh). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "relaystats/rsowner.h"

/* 2026-01-10T00:00:00Z */
#define T0 1768003200

START_TEST(boundary)
{
    ck_assert_int_eq(rsowner_boundary(T0), T0 + 300);
    ck_assert_int_eq(rsowner_boundary(T0 + 1), T0 + 300);
    ck_assert_int_eq(rsowner_boundary(T0 + 299), T0 + 300);
    ck_assert_int_eq(rsowner_boundary(T0 + 420), T0 + 600);
    ck_assert_int_eq(rsowner_boundary(0), 300);
    ck_assert_int_eq(rsowner_boundary(-1), 0);
    ck_assert_int_eq(rsowner_boundary(-300), 0);
    ck_assert_int_eq(rsowner_boundary(-301), -300);
}
END_TEST

static const struct rsowner_action *find(const struct rsowner_plan *p, const char *account,
                                         const char *chain)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->v[i].want->account, account) == 0 && strcmp(p->v[i].want->chain, chain) == 0)
            return &p->v[i];
    return NULL;
}

START_TEST(plan_every_case)
{
    /* deliberately unsorted */
    const struct rsowner_want want[] = {
        {"moved", "0021", "p2"},  {"new", "0021", "p1"},     {"same", "0021", "p1"},
        {"closed", "0021", "p1"}, {"pending", "0021", "p3"}, {"back", "0021", "p1"},
        {"same", "0001", "p1"},   {"fresh", "0021", "p2"},
    };
    const struct rsowner_have have[] = {
        {"same", "0021", "p1", RSOWNER_NEG_INF, NULL, 0},
        {"gone", "0021", "p1", RSOWNER_NEG_INF, NULL, 0},
        {"moved", "0021", "p1", T0 - 3000, "p0", 0},
        /* closed by hand in the future and in the past */
        {"closed", "0021", NULL, 0, NULL, T0 + 900},
        /* a move made earlier in this bucket, to p2 at T0+300: now p3 */
        {"pending", "0021", "p2", T0 + 300, "p1", 0},
        /* the same, and back to the owner before it */
        {"back", "0021", "p2", T0 + 300, "p1", 0},
        {"same", "0001", "p1", RSOWNER_NEG_INF, NULL, 0},
        {"gone2", "0001", NULL, 0, NULL, T0},
        /* moved from -infinity */
        {"fresh", "0021", "p1", RSOWNER_NEG_INF, NULL, 0},
    };
    struct rsowner_plan p;
    struct rserr err = {0};
    const struct rsowner_action *a;

    ck_assert_int_eq(rsowner_plan(want, 8, have, 9, T0 + 120, &p, &err), 0);
    ck_assert_uint_eq(p.added, 2);        /* new, closed */
    ck_assert_uint_eq(p.moved, 4);        /* moved, pending, back, fresh */
    ck_assert_uint_eq(p.unchanged, 2);    /* same/0021, same/0001 */
    ck_assert_uint_eq(p.unconfigured, 1); /* gone (gone2 has no open row) */
    ck_assert_uint_eq(p.n, 6);

    a = find(&p, "new", "0021");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->op, RSOWNER_ADD);
    ck_assert(a->at == RSOWNER_NEG_INF);
    ck_assert_ptr_null(a->have);

    a = find(&p, "moved", "0021");
    ck_assert_int_eq(a->op, RSOWNER_MOVE);
    ck_assert_int_eq(a->at, T0 + 300);
    ck_assert_str_eq(a->have->provider, "p1");
    ck_assert_str_eq(a->want->provider, "p2");

    a = find(&p, "fresh", "0021");
    ck_assert_int_eq(a->op, RSOWNER_MOVE);
    ck_assert_int_eq(a->at, T0 + 300);

    a = find(&p, "closed", "0021");
    ck_assert_int_eq(a->op, RSOWNER_REOPEN);
    ck_assert_int_eq(a->at, T0 + 900); /* not before the last row ends */

    a = find(&p, "pending", "0021");
    ck_assert_int_eq(a->op, RSOWNER_REPLACE);
    ck_assert_int_eq(a->at, T0 + 300);

    a = find(&p, "back", "0021");
    ck_assert_int_eq(a->op, RSOWNER_REVERT);
    ck_assert_int_eq(a->at, T0 + 300);

    ck_assert_ptr_null(find(&p, "same", "0021"));
    ck_assert_ptr_null(find(&p, "gone", "0021"));
    /* actions in (account, chain) order */
    for (size_t i = 1; i < p.n; i++)
        ck_assert_int_lt(strcmp(p.v[i - 1].want->account, p.v[i].want->account), 0);
    rsowner_plan_free(&p);
    ck_assert_ptr_null(p.v);
}
END_TEST

START_TEST(plan_reopen_after_past_close)
{
    const struct rsowner_want want[] = {{"a", "0021", "p1"}};
    const struct rsowner_have have[] = {{"a", "0021", NULL, 0, NULL, T0 - 86400}};
    struct rsowner_plan p;
    struct rserr err = {0};

    ck_assert_int_eq(rsowner_plan(want, 1, have, 1, T0, &p, &err), 0);
    ck_assert_uint_eq(p.n, 1);
    ck_assert_int_eq(p.v[0].op, RSOWNER_REOPEN);
    /* the gap stays unowned: it starts at the next boundary */
    ck_assert_int_eq(p.v[0].at, T0 + 300);
    rsowner_plan_free(&p);
}
END_TEST

START_TEST(plan_noop_and_empty)
{
    const struct rsowner_want want[] = {{"a", "0021", "p1"}, {"b", "0021", "p1"}};
    const struct rsowner_have have[] = {{"b", "0021", "p1", T0 - 600, "p0", 0},
                                        {"a", "0021", "p1", RSOWNER_NEG_INF, NULL, 0}};
    struct rsowner_plan p;
    struct rserr err = {0};

    ck_assert_int_eq(rsowner_plan(want, 2, have, 2, T0, &p, &err), 0);
    ck_assert_uint_eq(p.n, 0);
    ck_assert_uint_eq(p.unchanged, 2);
    rsowner_plan_free(&p);

    ck_assert_int_eq(rsowner_plan(NULL, 0, NULL, 0, T0, &p, &err), 0);
    ck_assert_uint_eq(p.n + p.added + p.moved + p.unchanged + p.unconfigured, 0);
    rsowner_plan_free(&p);

    /* nothing configured: every open row is kept, none touched */
    ck_assert_int_eq(rsowner_plan(NULL, 0, have, 2, T0, &p, &err), 0);
    ck_assert_uint_eq(p.n, 0);
    ck_assert_uint_eq(p.unconfigured, 2);
    rsowner_plan_free(&p);

    /* the first sync: everything is new */
    ck_assert_int_eq(rsowner_plan(want, 2, NULL, 0, T0, &p, &err), 0);
    ck_assert_uint_eq(p.n, 2);
    ck_assert_uint_eq(p.added, 2);
    ck_assert_int_eq(p.v[0].op, RSOWNER_ADD);
    ck_assert_str_eq(p.v[0].want->account, "a");
    rsowner_plan_free(&p);
}
END_TEST

START_TEST(plan_duplicate)
{
    const struct rsowner_want want[] = {
        {"a", "0021", "p1"}, {"b", "0021", "p1"}, {"a", "0021", "p2"}};
    struct rsowner_plan p;
    struct rserr err = {0};

    ck_assert_int_eq(rsowner_plan(want, 3, NULL, 0, T0, &p, &err), -1);
    ck_assert_int_eq(err.status, 400);
    ck_assert_ptr_nonnull(strstr(err.text, "account a on chain 0021"));
    ck_assert_ptr_null(p.v);
}
END_TEST

START_TEST(op_names)
{
    ck_assert_str_eq(rsowner_op_name(RSOWNER_ADD), "add");
    ck_assert_str_eq(rsowner_op_name(RSOWNER_MOVE), "move");
    ck_assert_str_eq(rsowner_op_name(RSOWNER_REVERT), "revert");
    ck_assert_str_eq(rsowner_op_name((enum rsowner_op)42), "?");
}
END_TEST

START_TEST(source_sql)
{
    char buf[2048], small[64];

    ck_assert_int_eq(rsowner_source_sql("relay_totals", 300, buf, sizeof(buf)), 0);
    ck_assert_ptr_nonnull(strstr(buf, "FROM relay_totals WHERE bucket_start >= $1"));
    ck_assert_ptr_null(strstr(buf, "account_owners"));

    ck_assert_int_eq(rsowner_source_sql("relay_totals_hourly", 3600, buf, sizeof(buf)), 0);
    ck_assert_ptr_nonnull(strstr(buf, "FROM relay_totals_hourly t"));
    ck_assert_ptr_nonnull(strstr(buf, "mod(extract(epoch FROM v), 3600) <> 0"));
    /* the split pairs' five-minute rows, one rollup bucket each */
    ck_assert_ptr_nonnull(strstr(buf, "JOIN relay_totals t"));
    ck_assert_ptr_nonnull(strstr(buf, "x.w + interval '3600 seconds'"));
    ck_assert(buf[0] == '(' && buf[strlen(buf) - 1] == ')');

    ck_assert_int_eq(rsowner_source_sql("relay_totals_daily", 86400, small, sizeof(small)), -1);
    ck_assert_int_eq(rsowner_source_sql("relay_totals", 300, small, 20), -1);
}
END_TEST

Suite *rsowner_suite(void)
{
    Suite *s = suite_create("rsowner");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, boundary);
    tcase_add_test(tc, plan_every_case);
    tcase_add_test(tc, plan_reopen_after_past_close);
    tcase_add_test(tc, plan_noop_and_empty);
    tcase_add_test(tc, plan_duplicate);
    tcase_add_test(tc, op_names);
    tcase_add_test(tc, source_sql);
    suite_add_tcase(s, tc);
    return s;
}
