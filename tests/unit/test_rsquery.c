/* relaystats queries: input validation, table choice and output formats
 * (the SQL itself runs in tests/integration/test_relaystats.sh). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "relaystats/rsexport.h"
#include "relaystats/rsquery.h"

START_TEST(names)
{
    struct rserr e = {0};
    ck_assert_int_eq(rsquery_check_name("chain", "0021", &e), 0);
    ck_assert_int_eq(rsquery_check_name("gateway", "gw-eu.1_a", &e), 0);
    ck_assert_int_eq(rsquery_check_name("account", "x' OR '1'='1", &e), -1);
    ck_assert_int_eq(e.status, 400);
    ck_assert_ptr_nonnull(strstr(e.text, "account"));
    ck_assert_int_eq(rsquery_check_name("chain", "", &e), -1);
    ck_assert_int_eq(rsquery_check_name("chain", NULL, &e), -1);
    ck_assert_int_eq(
        rsquery_check_name("chain",
                           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", &e),
        -1);
}
END_TEST

START_TEST(by_dims)
{
    struct rserr e = {0};
    unsigned by;
    ck_assert_int_eq(rsquery_parse_by("chain,gateway", &by, &e), 0);
    ck_assert_uint_eq(by, RSQUERY_BY_CHAIN | RSQUERY_BY_GATEWAY);
    ck_assert_int_eq(rsquery_parse_by(NULL, &by, &e), 0);
    ck_assert_uint_eq(by, 0);
    ck_assert_int_eq(rsquery_parse_by("account", &by, &e), 0);
    ck_assert_uint_eq(by, RSQUERY_BY_ACCOUNT);
    ck_assert_int_eq(rsquery_parse_by("chain,relays", &by, &e), -1);
    ck_assert_int_eq(e.status, 400);
    ck_assert_int_eq(rsquery_parse_by("chainx", &by, &e), -1);
}
END_TEST

START_TEST(tables)
{
    struct rsquery q = {0};
    q.range.step = 300;
    ck_assert_str_eq(rsquery_table(&q), "relay_totals");
    q.range.step = 3600;
    ck_assert_str_eq(rsquery_table(&q), "relay_totals_hourly");
    q.range.step = 86400;
    ck_assert_str_eq(rsquery_table(&q), "relay_totals_daily_chain");
    q.by = RSQUERY_BY_GATEWAY | RSQUERY_BY_CHAIN;
    ck_assert_str_eq(rsquery_table(&q), "relay_totals_daily_chain");
    q.by = RSQUERY_BY_ACCOUNT;
    ck_assert_str_eq(rsquery_table(&q), "relay_totals_daily");
    q.by = 0;
    q.provider = "p1";
    ck_assert_str_eq(rsquery_table(&q), "relay_totals_daily");
    q.provider = NULL;
    q.account = "a1";
    ck_assert_str_eq(rsquery_table(&q), "relay_totals_daily");
    q.account = NULL;
    q.source = RSQUERY_SRC_RAW;
    ck_assert_str_eq(rsquery_table(&q), "relay_totals");
    ck_assert_int_eq(rsquery_parse_source("hourly", &q.source), 0);
    ck_assert_int_eq(q.source, RSQUERY_SRC_HOURLY);
    ck_assert_int_eq(rsquery_parse_source("x", &q.source), -1);
}
END_TEST

/* A hand-made result: two chains over three hourly buckets. */
static void sample(struct rsquery_result *r, int64_t *tot, int64_t *p0, int64_t *p1)
{
    static char c0[] = "0021", c1[] = "a,\"b";
    static struct rsquery_group g[2];
    memset(r, 0, sizeof(*r));
    r->range.from = 1795665600;
    r->range.to = r->range.from + 3 * 3600;
    r->range.step = 3600;
    r->by = RSQUERY_BY_CHAIN;
    r->table = "relay_counts_hourly";
    r->nbuckets = 3;
    p0[0] = 1, p0[1] = 0, p0[2] = 2;
    p1[0] = 10, p1[1] = 0, p1[2] = 0;
    for (int i = 0; i < 3; i++)
        tot[i] = p0[i] + p1[i];
    r->points = tot;
    r->total = 13;
    memset(g, 0, sizeof(g));
    g[0].keys[1] = c0;
    g[0].points = p0;
    g[0].total = 3;
    g[1].keys[1] = c1;
    g[1].points = p1;
    g[1].total = 10;
    r->groups = g;
    r->ngroups = 2;
}

START_TEST(json_output)
{
    struct rsquery_result r;
    int64_t tot[3], p0[3], p1[3];
    sample(&r, tot, p0, p1);
    json_t *j = rsquery_result_json(&r);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "total")), 13);
    ck_assert_str_eq(json_string_value(json_object_get(j, "step")), "1h");
    json_t *series = json_object_get(j, "series");
    ck_assert_int_eq(json_array_size(series), 3);
    ck_assert_str_eq(json_string_value(json_array_get(json_array_get(series, 0), 0)),
                     "2026-11-26T04:00:00Z");
    ck_assert_int_eq(json_integer_value(json_array_get(json_array_get(series, 0), 1)), 11);
    json_t *g1 = json_array_get(json_object_get(j, "groups"), 1);
    ck_assert_str_eq(json_string_value(json_object_get(g1, "chain")), "a,\"b");
    ck_assert_ptr_null(json_object_get(g1, "gateway"));
    ck_assert_int_eq(json_integer_value(json_object_get(g1, "total")), 10);
    json_decref(j);
}
END_TEST

START_TEST(csv_and_table_output)
{
    struct rsquery_result r;
    int64_t tot[3], p0[3], p1[3];
    char *buf = NULL;
    size_t len = 0;
    FILE *f;

    sample(&r, tot, p0, p1);
    f = open_memstream(&buf, &len);
    ck_assert_int_eq(rsquery_result_csv(&r, f), 0);
    fclose(f);
    ck_assert_str_eq(buf, "bucket_start,chain,relays\n"
                          "2026-11-26T04:00:00Z,0021,1\n"
                          "2026-11-26T05:00:00Z,0021,0\n"
                          "2026-11-26T06:00:00Z,0021,2\n"
                          "2026-11-26T04:00:00Z,\"a,\"\"b\",10\n"
                          "2026-11-26T05:00:00Z,\"a,\"\"b\",0\n"
                          "2026-11-26T06:00:00Z,\"a,\"\"b\",0\n");
    free(buf);
    buf = NULL;
    f = open_memstream(&buf, &len);
    ck_assert_int_eq(rsquery_result_table(&r, f), 0);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(buf, "total"));
    ck_assert_ptr_nonnull(strstr(buf, "13\n"));
    free(buf);
}
END_TEST

START_TEST(export_output)
{
    struct rsexport_row rows[2] = {{"acc1", "0021", 5}, {"acc2", "0001", 0}};
    struct rsexport e = {.provider = "p1",
                         .from = 1795651200,
                         .to = 1795737600,
                         .table = "relay_counts_daily",
                         .total = 5,
                         .rows = rows,
                         .nrows = 2};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    ck_assert_int_eq(rsexport_csv(&e, f), 0);
    fclose(f);
    ck_assert_str_eq(buf, "provider,account,chain,from,to,relays\n"
                          "p1,acc1,0021,2026-11-26T00:00:00Z,2026-11-27T00:00:00Z,5\n"
                          "p1,acc2,0001,2026-11-26T00:00:00Z,2026-11-27T00:00:00Z,0\n"
                          "p1,TOTAL,,2026-11-26T00:00:00Z,2026-11-27T00:00:00Z,5\n");
    free(buf);
    json_t *j = rsexport_json(&e);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "total")), 5);
    ck_assert_int_eq(json_array_size(json_object_get(j, "rows")), 2);
    json_decref(j);
}
END_TEST

Suite *rsquery_suite(void)
{
    Suite *s = suite_create("rsquery");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, names);
    tcase_add_test(tc, by_dims);
    tcase_add_test(tc, tables);
    tcase_add_test(tc, json_output);
    tcase_add_test(tc, csv_and_table_output);
    tcase_add_test(tc, export_output);
    suite_add_tcase(s, tc);
    return s;
}
