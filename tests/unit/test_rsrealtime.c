/* relaystats realtime: Redis key parsing and the Redis/PostgreSQL merge. */
#include <check.h>
#include <string.h>

#include "relaystats/rsrealtime.h"

START_TEST(keys)
{
    char gw[64];
    int64_t b;
    ck_assert_int_eq(rsrealtime_parse_key("ccgw", "ccgw:relays:gw1:1795774800", gw, sizeof(gw), &b),
                     0);
    ck_assert_str_eq(gw, "gw1");
    ck_assert_int_eq(b, 1795774800);
    ck_assert_int_eq(
        rsrealtime_parse_key("ccgw", "ccgw:relays:eu:gw:1795774800", gw, sizeof(gw), &b), 0);
    ck_assert_str_eq(gw, "eu:gw");
    ck_assert_int_eq(rsrealtime_parse_key("ccgw", "ccgw:chain:gw1:1795774800", gw, sizeof(gw), &b),
                     -1);
    ck_assert_int_eq(rsrealtime_parse_key("ccgw", "ccgw:relays:gw1:17957748x", gw, sizeof(gw), &b),
                     -1);
    ck_assert_int_eq(rsrealtime_parse_key("ccgw", "ccgw:relays:gw1:1795774801", gw, sizeof(gw), &b),
                     -1);
    ck_assert_int_eq(rsrealtime_parse_key("ccgw", "ccgw:relays::1795774800", gw, sizeof(gw), &b),
                     -1);
    ck_assert_int_eq(
        rsrealtime_parse_key("other", "ccgw:relays:gw1:1795774800", gw, sizeof(gw), &b), -1);
}
END_TEST

START_TEST(merge_takes_larger)
{
    struct rsrealtime_rows pg = {0}, redis = {0};

    ck_assert_int_eq(rsrealtime_rows_push(&pg, "gw1", "0021", "a", 300, 10), 0);
    ck_assert_int_eq(rsrealtime_rows_push(&pg, "gw1", "0021", "a", 600, 7), 0);
    ck_assert_int_eq(rsrealtime_rows_push(&redis, "gw1", "0021", "a", 600, 9), 0); /* ahead */
    ck_assert_int_eq(rsrealtime_rows_push(&redis, "gw1", "0021", "a", 300, 4), 0); /* lost keys */
    ck_assert_int_eq(rsrealtime_rows_push(&redis, "gw2", "0001", "b", 600, 5), 0); /* new */
    ck_assert_int_eq(rsrealtime_merge(&pg, &redis), 0);
    ck_assert_int_eq(pg.n, 3);
    ck_assert_str_eq(pg.rows[0].gateway, "gw1");
    ck_assert_int_eq(pg.rows[0].bucket, 300);
    ck_assert_int_eq(pg.rows[0].relays, 10);
    ck_assert_int_eq(pg.rows[1].relays, 9);
    ck_assert_str_eq(pg.rows[2].gateway, "gw2");
    ck_assert_int_eq(pg.rows[2].relays, 5);
    rsrealtime_rows_free(&pg);
    rsrealtime_rows_free(&redis);
}
END_TEST

START_TEST(redis_down)
{
    struct ccgwconf_redis rc = {.host = "127.0.0.1", .port = 1, .key_prefix = "ccgw"};
    struct rsrealtime_rows rows = {0};
    char err[256];
    ck_assert_int_eq(rsrealtime_fetch(&rc, 0, 600, &rows, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "redis"));
    rc.host = NULL;
    ck_assert_int_eq(rsrealtime_fetch(&rc, 0, 600, &rows, err, sizeof(err)), -1);
    rsrealtime_rows_free(&rows);
}
END_TEST

Suite *rsrealtime_suite(void)
{
    Suite *s = suite_create("rsrealtime");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, keys);
    tcase_add_test(tc, merge_takes_larger);
    tcase_add_test(tc, redis_down);
    suite_add_tcase(s, tc);
    return s;
}
