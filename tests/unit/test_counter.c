#include <check.h>
#include <stdio.h>
#include <string.h>

#include "gateway/counter.h"

static int64_t find_row(const struct counter_deltas *d, const char *chain, const char *account,
                        int reason, int64_t bucket)
{
    for (size_t i = 0; i < d->nrows; i++) {
        const struct counter_delta *r = &d->rows[i];
        if (r->bucket != bucket || r->reason != reason)
            continue;
        if (!chain && !r->chain)
            return r->n;
        if (chain && r->chain && !strcmp(chain, r->chain) && !strcmp(account, r->account))
            return r->n;
    }
    return -999;
}

START_TEST(test_reason_names)
{
    for (int r = 0; r < NR_COUNT; r++)
        ck_assert_int_eq(counter_reason_parse(counter_reason_name(r)), r);
    ck_assert_ptr_null(counter_reason_name(NR_COUNT));
    ck_assert_int_eq(counter_reason_parse("nope"), -1);
    ck_assert_str_eq(counter_reason_name(NR_INVALID_HOST), "invalid_host");
}
END_TEST

START_TEST(test_add_and_take)
{
    counter_t *c = counter_new();
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(counter_add_relay(c, "0021", "acc1", 300, 2), 0);
    ck_assert_int_eq(counter_add_relay(c, "0021", "acc1", 300, 3), 0);
    ck_assert_int_eq(counter_add_relay(c, "0021", "acc2", 300, 1), 0);
    ck_assert_int_eq(counter_add_relay(c, "0021", "acc1", 600, 1), 0);
    ck_assert_int_eq(counter_add_non_relay(c, NR_SERVER_ERROR, 300, 4), 0);
    ck_assert_int_eq(counter_total_relays(c), 7);
    ck_assert_int_eq(counter_total_non_relays(c, NR_SERVER_ERROR), 4);
    ck_assert_uint_eq(counter_keys(c), 4);
    ck_assert_uint_eq(counter_pending_keys(c, COUNTER_PG), 4);

    struct counter_deltas d;
    counter_deltas_init(&d);
    ck_assert_int_eq(counter_take(c, COUNTER_PG, &d), 0);
    ck_assert_uint_eq(d.nrows, 4);
    ck_assert_int_eq(find_row(&d, "0021", "acc1", -1, 300), 5);
    ck_assert_int_eq(find_row(&d, "0021", "acc2", -1, 300), 1);
    ck_assert_int_eq(find_row(&d, NULL, NULL, NR_SERVER_ERROR, 300), 4);
    ck_assert_uint_eq(counter_pending_keys(c, COUNTER_PG), 0);
    /* other consumers keep their pending deltas */
    ck_assert_uint_eq(counter_pending_keys(c, COUNTER_REDIS), 4);

    /* failed delivery: give back, and the next take sees the sum */
    ck_assert_int_eq(counter_give_back(c, COUNTER_PG, &d), 0);
    ck_assert_int_eq(counter_add_relay(c, "0021", "acc1", 300, 1), 0);
    ck_assert_int_eq(counter_total_relays(c), 8);
    struct counter_deltas d2;
    counter_deltas_init(&d2);
    ck_assert_int_eq(counter_take(c, COUNTER_PG, &d2), 0);
    ck_assert_int_eq(find_row(&d2, "0021", "acc1", -1, 300), 6);
    counter_deltas_free(&d2);
    counter_deltas_free(&d);
    counter_free(c);
}
END_TEST

START_TEST(test_many_keys_and_prune)
{
    counter_t *c = counter_new();
    char acc[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(acc, sizeof(acc), "acc%d", i % 500);
        ck_assert_int_eq(counter_add_relay(c, "0001", acc, (int64_t)(i / 500) * 300, 1), 0);
    }
    ck_assert_uint_eq(counter_keys(c), 5000);
    ck_assert_int_eq(counter_total_relays(c), 5000);
    for (int w = 0; w < COUNTER_NCONSUMERS; w++) {
        struct counter_deltas d;
        counter_deltas_init(&d);
        ck_assert_int_eq(counter_take(c, w, &d), 0);
        ck_assert_uint_eq(d.nrows, 5000);
        counter_deltas_free(&d);
    }
    /* all delivered: buckets before 1500 go, totals stay */
    counter_add_relay(c, "0001", "late", 0, 1);
    counter_prune(c, 1500);
    ck_assert_uint_eq(counter_keys(c), 2500 + 1);
    ck_assert_int_eq(counter_total_relays(c), 5001);
    /* surviving keys are still found after the rehash */
    counter_add_relay(c, "0001", "acc7", 2700, 1);
    ck_assert_uint_eq(counter_keys(c), 2501);
    counter_free(c);
}
END_TEST

START_TEST(test_add_deltas)
{
    counter_t *c = counter_new();
    struct counter_deltas d;
    counter_deltas_init(&d);
    ck_assert_int_eq(counter_deltas_push(&d, "0021", "a", -1, 0, 3), 0);
    ck_assert_int_eq(counter_deltas_push(&d, NULL, NULL, NR_UNROUTED, 0, 2), 0);
    ck_assert_int_eq(counter_deltas_push(&d, "0021", NULL, -1, 0, 1), -1);
    ck_assert_int_eq(counter_add_deltas(c, &d), 0);
    ck_assert_int_eq(counter_total_relays(c), 3);
    ck_assert_int_eq(counter_total_non_relays(c, NR_UNROUTED), 2);
    ck_assert_uint_eq(counter_pending_keys(c, COUNTER_JOURNAL), 2);
    /* an invalid row rejects the whole set */
    d.rows[1].reason = 99;
    ck_assert_int_eq(counter_add_deltas(c, &d), -1);
    ck_assert_int_eq(counter_total_relays(c), 3);
    counter_deltas_free(&d);
    counter_free(c);
}
END_TEST

Suite *counter_suite(void)
{
    Suite *s = suite_create("counter");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_reason_names);
    tcase_add_test(tc, test_add_and_take);
    tcase_add_test(tc, test_many_keys_and_prune);
    tcase_add_test(tc, test_add_deltas);
    suite_add_tcase(s, tc);
    return s;
}
