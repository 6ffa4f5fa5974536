/* The billing export's output forms: one provider, and every provider with
 * the unowned section (the SQL runs in tests/integration/test_ownership.sh
 * and test_relaystats.sh). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "relaystats/rsexport.h"

/* 2026-11-26 */
#define DAY 1795651200

/* Every provider: p1 with two rows, p2 with none in the range, and one
 * unowned pair. */
static void sample_all(struct rsexport *e, struct rsexport_row *rows,
                       struct rsexport_provider *prov, struct rsexport_row *unowned)
{
    static char a1[] = "acc1", a2[] = "acc,2", c1[] = "0021", c2[] = "0001", z[] = "zzz";
    static char p1[] = "p1", p2[] = "p2";

    rows[0] = (struct rsexport_row){a1, c1, 5};
    rows[1] = (struct rsexport_row){a2, c2, 0};
    prov[0] = (struct rsexport_provider){p1, 0, 2, 5};
    prov[1] = (struct rsexport_provider){p2, 2, 0, 0};
    unowned[0] = (struct rsexport_row){z, c1, 7};
    memset(e, 0, sizeof(*e));
    e->from = DAY;
    e->to = DAY + 86400;
    e->table = "relay_totals_daily";
    e->total = 5;
    e->rows = rows;
    e->nrows = 2;
    e->providers = prov;
    e->nproviders = 2;
    e->unowned = unowned;
    e->nunowned = 1;
    e->unowned_total = 7;
}

START_TEST(all_providers_csv)
{
    struct rsexport e;
    struct rsexport_row rows[2], unowned[1];
    struct rsexport_provider prov[2];
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    sample_all(&e, rows, prov, unowned);
    ck_assert_int_eq(rsexport_csv(&e, f), 0);
    fclose(f);
    ck_assert_str_eq(buf, "provider,account,chain,from,to,relays\n"
                          "p1,acc1,0021,2026-11-26T00:00:00Z,2026-11-27T00:00:00Z,5\n"
                          "p1,\"acc,2\",0001,2026-11-26T00:00:00Z,2026-11-27T00:00:00Z,0\n"
                          "p1,TOTAL,,2026-11-26T00:00:00Z,2026-11-27T00:00:00Z,5\n"
                          "p2,TOTAL,,2026-11-26T00:00:00Z,2026-11-27T00:00:00Z,0\n"
                          "(unowned),zzz,0021,2026-11-26T00:00:00Z,2026-11-27T00:00:00Z,7\n"
                          "(unowned),TOTAL,,2026-11-26T00:00:00Z,2026-11-27T00:00:00Z,7\n"
                          ",TOTAL,,2026-11-26T00:00:00Z,2026-11-27T00:00:00Z,12\n");
    free(buf);
}
END_TEST

START_TEST(all_providers_json)
{
    struct rsexport e;
    struct rsexport_row rows[2], unowned[1];
    struct rsexport_provider prov[2];
    json_t *j, *p, *u;

    sample_all(&e, rows, prov, unowned);
    j = rsexport_json(&e);
    ck_assert_ptr_nonnull(j);
    ck_assert(json_is_null(json_object_get(j, "provider")));
    ck_assert_int_eq(json_integer_value(json_object_get(j, "total")), 12);
    ck_assert_ptr_null(json_object_get(j, "rows"));
    p = json_object_get(j, "providers");
    ck_assert_int_eq(json_array_size(p), 2);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(p, 0), "provider")), "p1");
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(p, 0), "total")), 5);
    ck_assert_int_eq(json_array_size(json_object_get(json_array_get(p, 0), "rows")), 2);
    ck_assert_int_eq(json_array_size(json_object_get(json_array_get(p, 1), "rows")), 0);
    u = json_object_get(j, "unowned");
    ck_assert_int_eq(json_integer_value(json_object_get(u, "total")), 7);
    ck_assert_str_eq(json_string_value(
                         json_object_get(json_array_get(json_object_get(u, "rows"), 0), "account")),
                     "zzz");
    json_decref(j);
}
END_TEST

/* One provider: its rows only, whatever else the struct holds. */
START_TEST(one_provider)
{
    struct rsexport e;
    struct rsexport_row rows[2], unowned[1];
    struct rsexport_provider prov[2];
    char *buf = NULL, name[] = "p1";
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    json_t *j;

    sample_all(&e, rows, prov, unowned);
    e.provider = name;
    e.nproviders = 1;
    e.unowned = NULL;
    e.nunowned = 0;
    e.unowned_total = 0;
    ck_assert_int_eq(rsexport_csv(&e, f), 0);
    fclose(f);
    ck_assert_ptr_null(strstr(buf, "unowned"));
    ck_assert_ptr_nonnull(strstr(buf, "\np1,TOTAL,,2026-11-26T00:00:00Z,2026-11-27T00:00:00Z,5\n"));
    ck_assert_ptr_null(strstr(buf, "\n,TOTAL"));
    free(buf);
    j = rsexport_json(&e);
    ck_assert_str_eq(json_string_value(json_object_get(j, "provider")), "p1");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "total")), 5);
    ck_assert_int_eq(json_array_size(json_object_get(j, "rows")), 2);
    ck_assert_ptr_null(json_object_get(j, "unowned"));
    json_decref(j);
}
END_TEST

/* Nothing at all: every section is still there, with 0. */
START_TEST(all_providers_empty)
{
    struct rsexport e = {.from = DAY, .to = DAY + 300, .table = "relay_totals"};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    ck_assert_int_eq(rsexport_csv(&e, f), 0);
    fclose(f);
    ck_assert_str_eq(buf, "provider,account,chain,from,to,relays\n"
                          "(unowned),TOTAL,,2026-11-26T00:00:00Z,2026-11-26T00:05:00Z,0\n"
                          ",TOTAL,,2026-11-26T00:00:00Z,2026-11-26T00:05:00Z,0\n");
    free(buf);
    json_t *j = rsexport_json(&e);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "unowned"), "total")),
                     0);
    json_decref(j);
}
END_TEST

Suite *rsexport_suite(void)
{
    Suite *s = suite_create("rsexport");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, all_providers_csv);
    tcase_add_test(tc, all_providers_json);
    tcase_add_test(tc, one_provider);
    tcase_add_test(tc, all_providers_empty);
    suite_add_tcase(s, tc);
    return s;
}
