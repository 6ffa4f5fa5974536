/* Deployment config: the example loads with the values it shows, defaults
 * apply, and every file of tests/data/config/bad/ fails with exactly the
 * message in its .expected twin. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccgwconf.h"

static const char *data_dir(void)
{
    const char *d = getenv("CCGW_TESTDATA");
    return d && *d ? d : "tests/data";
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
            buf[n] = '\0';
            *len = (size_t)n;
        } else {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

START_TEST(example_loads)
{
    struct ccgwconf c;
    struct yamlcfg_error err;

    ck_assert_msg(ccgwconf_load("deploy/ccgw.example.yaml", &c, &err) == 0, "%s", err.text);
    ck_assert_str_eq(c.gateway_name, "gw-local-1");
    ck_assert_str_eq(c.routing_domain, "chains.local.test");
    ck_assert_uint_eq(c.nchains, 2);
    ck_assert_str_eq(c.chains[0].id, "0021");
    ck_assert_int_eq(c.chains[0].flavour, CCGWCONF_FLAVOUR_BITCOIN);
    ck_assert_int_eq(c.chains[1].flavour, CCGWCONF_FLAVOUR_EVM);
    ck_assert_str_eq(c.chains[0].auth_user, "ccgw");
    ck_assert_uint_eq(c.chains[0].nbackends, 2);
    ck_assert_str_eq(c.chains[0].backends[1].address, "127.0.0.1:18333");
    ck_assert_int_eq(c.chains[0].backends[0].weight, 1);
    ck_assert_uint_eq(c.nproviders, 2);
    ck_assert_uint_eq(c.providers[0].accounts[0].nchains, 2);
    ck_assert_uint_eq(c.ntiers, 3);
    ck_assert_int_eq(c.tiers[0].count_relays, 0);
    ck_assert_int_eq(c.tiers[1].count_relays, 1);
    ck_assert_int_eq(c.tiers[2].backup, 1);
    ck_assert_int_eq(c.redis.port, 56379);
    ck_assert_int_eq(c.logs.request_log_max_bytes, 40000000);
    ck_assert_int_eq(c.flush.interval_secs, 300);
    ck_assert_ptr_nonnull(ccgwconf_tier_find(&c, "http1"));
    ck_assert_ptr_null(ccgwconf_tier_find(&c, "http2"));
    ck_assert_str_eq(c.path, "deploy/ccgw.example.yaml");
    ccgwconf_free(&c);
}
END_TEST

START_TEST(minimal_gets_defaults)
{
    char path[512];
    struct ccgwconf c;
    struct yamlcfg_error err;

    snprintf(path, sizeof(path), "%s/config/good/minimal.yaml", data_dir());
    ck_assert_msg(ccgwconf_load(path, &c, &err) == 0, "%s", err.text);
    /* hosts are case-insensitive: stored lower-case */
    ck_assert_str_eq(c.routing_domain, "chains.example.tech");
    ck_assert_str_eq(c.providers[0].accounts[0].id, "894334g9f403");
    ck_assert_str_eq(c.data_dir, "run/data");
    ck_assert_str_eq(c.haproxy.binary, "haproxy");
    ck_assert_ptr_null(c.postgres.url);
    ck_assert_ptr_null(c.redis.host);
    ck_assert_uint_eq(c.ntiers, 3);
    ck_assert_str_eq(c.tiers[0].name, "edge");
    ck_assert_str_eq(c.tiers[2].stats_socket, "run/data/http1.sock");
    ck_assert_int_eq(c.logs.tz_offset_secs, 0);
    ck_assert_int_eq(c.flush.fsync_interval_ms, 1000);
    ccgwconf_free(&c);
}
END_TEST

START_TEST(missing_file)
{
    struct ccgwconf c;
    struct yamlcfg_error err;

    ck_assert_int_eq(ccgwconf_load("/nonexistent/ccgw.yaml", &c, &err), -1);
    ck_assert_str_eq(err.text, "/nonexistent/ccgw.yaml: cannot open: No such file or directory");
}
END_TEST

/* Each bad/<case>.yaml is loaded under the name "<case>.yaml" so the
 * expected text does not depend on where the tests run from. */
START_TEST(bad_configs)
{
    char dir[512];
    DIR *d;
    struct dirent *e;
    int cases = 0;

    snprintf(dir, sizeof(dir), "%s/config/bad", data_dir());
    d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d))) {
        char path[1024], expected_path[1024];
        size_t len = strlen(e->d_name), ylen, elen;
        char *yaml, *expected;
        struct ccgwconf c;
        struct yamlcfg_error err;

        if (len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        snprintf(expected_path, sizeof(expected_path), "%s/%.*s.expected", dir, (int)(len - 5),
                 e->d_name);
        yaml = slurp(path, &ylen);
        expected = slurp(expected_path, &elen);
        ck_assert_msg(yaml && expected, "%s: missing .yaml or .expected", path);
        while (elen && (expected[elen - 1] == '\n' || expected[elen - 1] == '\r'))
            expected[--elen] = '\0';
        ck_assert_msg(ccgwconf_load_string(e->d_name, yaml, ylen, &c, &err) == -1,
                      "%s: loaded but must fail", path);
        ck_assert_msg(strcmp(err.text, expected) == 0, "%s:\n  got      %s\n  expected %s", path,
                      err.text, expected);
        free(yaml);
        free(expected);
        cases++;
    }
    closedir(d);
    ck_assert_int_ge(cases, 10);
}
END_TEST

START_TEST(split_address)
{
    char host[64];
    uint16_t port;

    ck_assert_int_eq(ccgwconf_split_address("127.0.0.1:8080", host, sizeof(host), &port), 0);
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_uint_eq(port, 8080);
    ck_assert_int_eq(ccgwconf_split_address("[::1]:18332", host, sizeof(host), &port), 0);
    ck_assert_str_eq(host, "::1");
    ck_assert_uint_eq(port, 18332);
    ck_assert_int_eq(ccgwconf_split_address("node-a.internal:1", host, sizeof(host), &port), 0);
    ck_assert_int_eq(ccgwconf_split_address("::1:80", host, sizeof(host), &port), -1);
    ck_assert_int_eq(ccgwconf_split_address("host", host, sizeof(host), &port), -1);
    ck_assert_int_eq(ccgwconf_split_address("host:0", host, sizeof(host), &port), -1);
    ck_assert_int_eq(ccgwconf_split_address("host:65536", host, sizeof(host), &port), -1);
    ck_assert_int_eq(ccgwconf_split_address("host:80x", host, sizeof(host), &port), -1);
    ck_assert_int_eq(ccgwconf_split_address(":80", host, sizeof(host), &port), -1);
    ck_assert_int_eq(ccgwconf_split_address("ho st:80", host, sizeof(host), &port), -1);
    ck_assert_int_eq(ccgwconf_split_address("[::1]80", host, sizeof(host), &port), -1);
}
END_TEST

START_TEST(config_path_env)
{
    setenv("CCGW_CONFIG", "/etc/ccgw.yaml", 1);
    ck_assert_str_eq(conf_path(NULL), "/etc/ccgw.yaml");
    ck_assert_str_eq(conf_path("x.yaml"), "x.yaml");
    unsetenv("CCGW_CONFIG");
    ck_assert_ptr_null(conf_path(NULL));
}
END_TEST

Suite *ccgwconf_suite(void)
{
    Suite *s = suite_create("ccgwconf");
    TCase *tc = tcase_create("ccgwconf");

    tcase_add_test(tc, example_loads);
    tcase_add_test(tc, minimal_gets_defaults);
    tcase_add_test(tc, missing_file);
    tcase_add_test(tc, bad_configs);
    tcase_add_test(tc, split_address);
    tcase_add_test(tc, config_path_env);
    suite_add_tcase(s, tc);
    return s;
}
