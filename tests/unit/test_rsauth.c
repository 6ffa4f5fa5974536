/* relaystats tokens: hashing and generation (lookup runs in the
 * integration test against PostgreSQL). */
#include <check.h>
#include <string.h>

#include "relaystats/rsauth.h"

START_TEST(hash_vector)
{
    char hex[RSAUTH_HEX_LEN + 1];
    ck_assert_int_eq(rsauth_hash("abc", hex), 0);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
END_TEST

START_TEST(fresh_tokens)
{
    char a[RSAUTH_TOKEN_LEN + 1], b[RSAUTH_TOKEN_LEN + 1];
    ck_assert_int_eq(rsauth_token_new(a), 0);
    ck_assert_int_eq(rsauth_token_new(b), 0);
    ck_assert_int_eq(strlen(a), RSAUTH_TOKEN_LEN);
    ck_assert_int_eq(strncmp(a, "rst_", 4), 0);
    ck_assert_str_ne(a, b);
    ck_assert_int_eq(strspn(a + 4, "0123456789abcdef"), 64);
}
END_TEST

START_TEST(header_checks_before_db)
{
    struct rsauth_principal who;
    struct rserr e = {0};
    char hex[RSAUTH_HEX_LEN + 1];

    /* no database needed for these: missing header, admin hash match */
    ck_assert_int_eq(rsauth_check(NULL, NULL, NULL, &who, &e), -1);
    ck_assert_int_eq(e.status, 401);
    ck_assert_int_eq(rsauth_check(NULL, NULL, "Basic eDp5", &who, &e), -1);
    ck_assert_int_eq(e.status, 401);
    ck_assert_int_eq(rsauth_check(NULL, NULL, "Bearer ", &who, &e), -1);
    ck_assert_int_eq(e.status, 401);
    rsauth_hash("secret-admin", hex);
    for (char *p = hex; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    ck_assert_int_eq(rsauth_check(NULL, hex, "Bearer secret-admin", &who, &e), 0);
    ck_assert_int_eq(who.admin, 1);
}
END_TEST

Suite *rsauth_suite(void)
{
    Suite *s = suite_create("rsauth");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, hash_vector);
    tcase_add_test(tc, fresh_tokens);
    tcase_add_test(tc, header_checks_before_db);
    suite_add_tcase(s, tc);
    return s;
}
