#include <check.h>
#include <stdio.h>
#include <stdlib.h>
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

struct sum_ctx {
    int64_t relays, non_relays;
    const char *first_account; /* pointer of the first row of "acc1" */
    int shared;                /* rows of "acc1" all point to one string */
};

static int sum_row(void *ctx, const struct counter_delta *row)
{
    struct sum_ctx *sc = ctx;
    if (!row->chain) {
        sc->non_relays += row->n;
        return 0;
    }
    sc->relays += row->n;
    if (strcmp(row->account, "acc1") == 0) {
        if (!sc->first_account)
            sc->first_account = row->account;
        else if (sc->first_account != row->account)
            sc->shared = 0;
    }
    return 0;
}

/* 200,000 keys (20 chains x 10,000 accounts) fit in under 80 bytes a key,
 * names are interned once, and iteration sees every count. */
START_TEST(test_compact_many_keys)
{
    counter_t *c = counter_new();
    char acc[32], chain[8];
    ck_assert_ptr_nonnull(c);
    for (int a = 0; a < 10000; a++) {
        snprintf(acc, sizeof(acc), "acc%d", a);
        for (int ch = 0; ch < 20; ch++) {
            snprintf(chain, sizeof(chain), "%04d", ch + 1);
            ck_assert_int_eq(counter_add_relay(c, chain, acc, 1795256400, 1 + a % 3), 0);
        }
    }
    ck_assert_int_eq(counter_add_non_relay(c, NR_UNROUTED, 1795256400, 5), 0);
    ck_assert_int_eq(counter_add_non_relay(c, (enum non_relay_reason)NR_COUNT, 0, 1), -1);
    ck_assert_uint_eq(counter_keys(c), 200001);
    ck_assert_uint_lt(counter_bytes(c) / counter_keys(c), 80);
    struct sum_ctx sc = {0, 0, NULL, 1};
    counter_foreach(c, sum_row, &sc);
    ck_assert_int_eq(sc.relays, counter_total_relays(c));
    ck_assert_int_eq(sc.non_relays, 5);
    ck_assert_ptr_nonnull(sc.first_account);
    ck_assert_int_eq(sc.shared, 1);
    counter_free(c);
}
END_TEST

/* A name longer than an interning block, and take/give back after a prune
 * moved the keys. */
START_TEST(test_long_name_and_prune_moves)
{
    counter_t *c = counter_new();
    size_t n = 70000;
    char *longname = malloc(n + 1);
    ck_assert_ptr_nonnull(longname);
    memset(longname, 'x', n);
    longname[n] = '\0';
    ck_assert_int_eq(counter_add_relay(c, "0001", "old", 0, 1), 0);
    ck_assert_int_eq(counter_add_relay(c, "0001", longname, 600, 2), 0);
    ck_assert_int_eq(counter_add_relay(c, "0001", "new", 600, 3), 0);
    for (int w = 0; w < COUNTER_NCONSUMERS; w++) {
        struct counter_deltas d;
        counter_deltas_init(&d);
        ck_assert_int_eq(counter_take(c, w, &d), 0);
        ck_assert_int_eq(find_row(&d, "0001", longname, -1, 600), 2);
        counter_deltas_free(&d);
    }
    /* PostgreSQL failed for the recent bucket: those keys must survive */
    struct counter_deltas back;
    counter_deltas_init(&back);
    ck_assert_int_eq(counter_deltas_push(&back, "0001", longname, -1, 600, 2), 0);
    ck_assert_int_eq(counter_deltas_push(&back, "0001", "new", -1, 600, 3), 0);
    ck_assert_int_eq(counter_give_back(c, COUNTER_PG, &back), 0);
    counter_deltas_free(&back);
    counter_prune(c, 300);
    ck_assert_uint_eq(counter_keys(c), 2);
    ck_assert_int_eq(counter_add_relay(c, "0001", "new", 600, 1), 0);
    ck_assert_uint_eq(counter_keys(c), 2);
    struct counter_deltas d;
    counter_deltas_init(&d);
    ck_assert_int_eq(counter_take(c, COUNTER_PG, &d), 0);
    ck_assert_uint_eq(d.nrows, 2);
    ck_assert_int_eq(find_row(&d, "0001", longname, -1, 600), 2);
    ck_assert_int_eq(find_row(&d, "0001", "new", -1, 600), 4);
    counter_deltas_free(&d);
    counter_free(c);
    free(longname);
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
    tcase_add_test(tc, test_compact_many_keys);
    tcase_add_test(tc, test_long_name_and_prune_moves);
    suite_add_tcase(s, tc);
    return s;
}
