/* The routing table and the relay rule: host lookup by exact normalised
 * name, the reasons of non-relays, refusals at build, and the table's size
 * for a large deployment. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccgwconf.h"
#include "gateway/relay.h"
#include "sys.h"

static const char routing[] =
    "gateway: {name: gw-t, routing_domain: chains.example.tech}\n"
    "chains:\n"
    "  - {id: \"0021\", backends: [{name: a, address: \"127.0.0.1:1\"}]}\n"
    "  - {id: \"0001\", backends: [{name: b, address: \"127.0.0.1:2\"}]}\n"
    "providers:\n"
    "  - name: p\n"
    "    accounts:\n"
    "      - {id: 894334g9f403, chains: [\"0021\", \"0001\"]}\n"
    "      - {id: abc, chains: [\"0001\"]}\n";

static relay_table_t *table_from(const char *yaml, struct ccgwconf *conf)
{
    struct yamlcfg_error cerr;
    char err[256];
    memset(conf, 0, sizeof(*conf));
    ck_assert_msg(ccgwconf_load_string("t.yaml", yaml, strlen(yaml), conf, &cerr) == 0, "%s",
                  cerr.text);
    relay_table_t *t = relay_table_new(conf, err, sizeof(err));
    ck_assert_msg(t != NULL, "%s", err);
    return t;
}

static int found(const relay_table_t *t, const char *host, struct relay_route *r)
{
    return relay_table_find(t, host, strlen(host), r);
}

START_TEST(test_find)
{
    struct ccgwconf conf;
    struct relay_route r;
    relay_table_t *t = table_from(routing, &conf);
    ck_assert_uint_eq(relay_table_size(t), 3);
    ck_assert_int_eq(found(t, "894334g9f403.0021.chains.example.tech", &r), 1);
    ck_assert_str_eq(r.chain, "0021");
    ck_assert_str_eq(r.account, "894334g9f403");
    ck_assert_str_eq(r.backend, "be_0021");
    ck_assert_uint_eq(r.backend_len, 7);
    ck_assert_int_eq(found(t, "abc.0001.chains.example.tech", &r), 1);
    ck_assert_str_eq(r.account, "abc");
    static const char *const absent[] = {
        "abc.0021.chains.example.tech",  /* account not on that chain */
        "abc.0001.chains.example.tec",   /* other domain, one byte short */
        "abc.0001.chains.example.techx", /* one byte long */
        "abcd.0001.chains.example.tech", "ab.0001.chains.example.tech",
        "abc.00011.chains.example.tech", "abc.0001chains.example.tech",
        "abc-0001.chains.example.tech",  "",
        "chains.example.tech",
    };
    for (size_t i = 0; i < ARRAY_LEN(absent); i++)
        ck_assert_msg(found(t, absent[i], &r) == 0, "%s found", absent[i]);
    relay_table_free(t);
    ccgwconf_free(&conf);
}
END_TEST

static void check_line(const relay_table_t *t, logline_parser_t *p, const char *line, int relay,
                       int reason)
{
    struct logline l;
    struct relay_route r;
    enum non_relay_reason why = NR_COUNT;
    logline_parse(p, line, strlen(line), &l);
    ck_assert_msg(relay_rule_check(t, &l, &r, &why) == relay, "%s", line);
    if (relay)
        ck_assert_str_eq(r.chain, "0021");
    else
        ck_assert_msg((int)why == reason, "%s: reason %d, expected %d", line, (int)why, reason);
}

START_TEST(test_rule)
{
    struct ccgwconf conf;
    char err[256];
    relay_table_t *t = table_from(routing, &conf);
    logline_parser_t *p = logline_parser_new(0, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
#define L(be, srv, st, host)                                                                       \
    "<6>1.2.3.4:5 [21/Nov/2026:10:22:33.685] fe " be "/" srv " 0/0/0/1/1 " st " 1 - - ---- "       \
    "1/1/0/0/0 0/0 {" host "} \"POST / HTTP/1.1\""
    check_line(t, p, L("be_0021", "a", "200", "894334G9F403.0021.Chains.Example.Tech:80"), 1, 0);
    check_line(t, p, L("be_0021", "a", "499", "894334g9f403.0021.chains.example.tech."), 1, 0);
    check_line(t, p, L("be_0021", "a", "200", "nobody.0021.chains.example.tech"), 0,
               NR_INVALID_HOST);
    check_line(t, p, L("be_0021", "a", "200", ""), 0, NR_INVALID_HOST);
    check_line(t, p, L("be_0001", "b", "200", "894334g9f403.0021.chains.example.tech"), 0,
               NR_UNROUTED);
    check_line(t, p, L("be_0021", "<NOSRV>", "503", "894334g9f403.0021.chains.example.tech"), 0,
               NR_UNROUTED);
    check_line(t, p, L("be_0021", "a", "504", "894334g9f403.0021.chains.example.tech"), 0,
               NR_SERVER_ERROR);
    check_line(t, p, L("be_0021", "a", "-1", "894334g9f403.0021.chains.example.tech"), 0,
               NR_NO_RESPONSE);
    check_line(t, p, "<6>garbage", 0, NR_UNPARSABLE);
    /* The HTTP tier's refusals, whatever the Host says. */
    check_line(t, p,
               L("be_refuse_host", "<NOSRV>", "400",
                 "evil.example, 894334g9f403.0021.chains.example.tech"),
               0, NR_BAD_HOST);
    check_line(t, p,
               L("be_refuse_upgrade", "<NOSRV>", "403", "894334g9f403.0021.chains.example.tech"), 0,
               NR_UPGRADE_REFUSED);
    check_line(t, p,
               L("be_refuse_connect", "<NOSRV>", "405", "894334g9f403.0021.chains.example.tech"), 0,
               NR_CONNECT_REFUSED);
    /* be_<chain>_ws: a session is no relay; a plain answer there is one. */
    check_line(t, p, L("be_0021_ws", "a", "101", "894334g9f403.0021.chains.example.tech"), 0,
               NR_WEBSOCKET);
    check_line(t, p, L("be_0021_ws", "a", "200", "894334g9f403.0021.chains.example.tech"), 1, 0);
    check_line(t, p, L("be_0021_ws", "a", "502", "894334g9f403.0021.chains.example.tech"), 0,
               NR_SERVER_ERROR);
    check_line(t, p, L("be_0021_wsx", "a", "101", "894334g9f403.0021.chains.example.tech"), 0,
               NR_UNROUTED);
    check_line(t, p, L("be_0001_ws", "a", "101", "894334g9f403.0021.chains.example.tech"), 0,
               NR_UNROUTED);
#undef L
    logline_parser_free(p);
    relay_table_free(t);
    ccgwconf_free(&conf);
}
END_TEST

/* A line with the HTTP tier's route: what HAProxy routed is counted, to the
 * account it routed, whatever the table or the Host say. */
static void check_routed(const relay_table_t *t, logline_parser_t *p, const char *line,
                         const char *chain, const char *account, int reason)
{
    struct logline l;
    struct relay_route r;
    enum non_relay_reason why = NR_COUNT;
    logline_parse(p, line, strlen(line), &l);
    ck_assert_msg(l.kind == LOGLINE_REQUEST, "%s", line);
    int relay = relay_rule_check(t, &l, &r, &why);
    if (chain) {
        ck_assert_msg(relay == 1, "%s: not a relay (reason %d)", line, (int)why);
        ck_assert_str_eq(r.chain, chain);
        ck_assert_str_eq(r.account, account);
        ck_assert_uint_eq(r.backend_len, strlen(chain) + 3);
    } else {
        ck_assert_msg(relay == 0, "%s: a relay", line);
        ck_assert_msg((int)why == reason, "%s: reason %d, expected %d", line, (int)why, reason);
    }
}

START_TEST(test_rule_routed)
{
    struct ccgwconf conf;
    char err[256];
    relay_table_t *t = table_from(routing, &conf);
    logline_parser_t *p = logline_parser_new(0, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
#define L(be, srv, st, route, host)                                                                \
    "<6>1.2.3.4:5 [21/Nov/2026:10:22:33.685] fe " be "/" srv " 0/0/0/1/1 " st " 1 - - ---- "       \
    "1/1/0/0/0 0/0 " route " {" host "} \"POST / HTTP/1.1\""
    /* Host forms the table would not find: HAProxy routed them, so they count. */
    check_routed(t, p, L("be_0021", "a", "200", "0021/894334g9f403", "894334g9f403.0021.x:0:0"),
                 "0021", "894334g9f403", 0);
    check_routed(t, p, L("be_0021", "a", "200", "0021/894334g9f403", ""), "0021", "894334g9f403",
                 0);
    /* An account added live, unknown to the worker's config. */
    check_routed(t, p, L("be_0001", "b", "404", "0001/new-acct", "new-acct.0001.chains.x"), "0001",
                 "new-acct", 0);
    /* The map had no entry: never a relay, even for a host of the table. */
    check_routed(t, p,
                 L("be_reject", "<NOSRV>", "404", "-", "894334g9f403.0021.chains.example.tech"),
                 NULL, NULL, NR_INVALID_HOST);
    /* Routed, but not to the route's backend or to no server. */
    check_routed(t, p, L("be_0001", "b", "200", "0021/894334g9f403", "h"), NULL, NULL, NR_UNROUTED);
    check_routed(t, p, L("be_reject", "<NOSRV>", "404", "0021/894334g9f403", "h"), NULL, NULL,
                 NR_UNROUTED);
    check_routed(t, p, L("be_0021", "<NOSRV>", "503", "0021/894334g9f403", "h"), NULL, NULL,
                 NR_UNROUTED);
    check_routed(t, p, L("be_0021", "a", "500", "0021/894334g9f403", "h"), NULL, NULL,
                 NR_SERVER_ERROR);
    check_routed(t, p, L("be_0021", "a", "-1", "0021/894334g9f403", "h"), NULL, NULL,
                 NR_NO_RESPONSE);
    check_routed(t, p, L("be_0021_ws", "a", "101", "0021/894334g9f403", "h"), NULL, NULL,
                 NR_WEBSOCKET);
    check_routed(t, p, L("be_0021_ws", "a", "200", "0021/894334g9f403", "h"), "0021",
                 "894334g9f403", 0);
    /* Refusals win over a route (a valid host with a bad port). */
    check_routed(t, p, L("be_refuse_host", "<NOSRV>", "400", "0021/894334g9f403", "h:x"), NULL,
                 NULL, NR_BAD_HOST);
#undef L
    logline_parser_free(p);
    relay_table_free(t);
    ccgwconf_free(&conf);
}
END_TEST

/* 2,000 accounts x 20 chains: every host is found, and the table stays
 * under 32 bytes a host (hosts are id pairs, names are stored once). */
START_TEST(test_large_table)
{
    size_t cap = 1u << 20, len = 0;
    char *yaml = malloc(cap);
    ck_assert_ptr_nonnull(yaml);
    len += (size_t)snprintf(yaml + len, cap - len,
                            "gateway: {name: g, routing_domain: chains.local.test}\nchains:\n");
    for (int c = 1; c <= 20; c++)
        len += (size_t)snprintf(
            yaml + len, cap - len,
            "  - {id: \"%04d\", backends: [{name: n, address: \"127.0.0.1:1\"}]}\n", c);
    len += (size_t)snprintf(yaml + len, cap - len, "providers:\n  - name: p\n    accounts:\n");
    for (int a = 0; a < 2000; a++) {
        len += (size_t)snprintf(yaml + len, cap - len, "      - {id: \"%012x\", chains: [", a);
        for (int c = 1; c <= 20; c++)
            len += (size_t)snprintf(yaml + len, cap - len, "%s\"%04d\"", c > 1 ? ", " : "", c);
        len += (size_t)snprintf(yaml + len, cap - len, "]}\n");
    }
    ck_assert_uint_lt(len, cap - 1);
    struct ccgwconf conf;
    relay_table_t *t = table_from(yaml, &conf);
    ck_assert_uint_eq(relay_table_size(t), 40000);
    ck_assert_uint_lt(relay_table_bytes(t) / relay_table_size(t), 32);
    char host[RELAY_HOST_MAX], want[16];
    struct relay_route r;
    for (int a = 0; a < 2000; a++)
        for (int c = 1; c <= 20; c++) {
            snprintf(host, sizeof(host), "%012x.%04d.chains.local.test", a, c);
            ck_assert_msg(found(t, host, &r) == 1, "%s", host);
            snprintf(want, sizeof(want), "%012x", a);
            ck_assert_str_eq(r.account, want);
        }
    relay_table_free(t);
    ccgwconf_free(&conf);
    free(yaml);
}
END_TEST

/* The table refuses what would make a host ambiguous or unbounded, even if
 * the config loader let it through. */
START_TEST(test_refusals)
{
    struct ccgwconf conf;
    char err[1024];
    relay_table_t *t = table_from(routing, &conf);
    relay_table_free(t);
    char *saved = conf.providers[0].accounts[1].id;
    conf.providers[0].accounts[1].id = conf.providers[0].accounts[0].id;
    ck_assert_ptr_null(relay_table_new(&conf, err, sizeof(err)));
    ck_assert_str_eq(err, "duplicate host 894334g9f403.0001.chains.example.tech");
    char longid[300];
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    conf.providers[0].accounts[1].id = longid;
    ck_assert_ptr_null(relay_table_new(&conf, err, sizeof(err)));
    ck_assert_msg(strstr(err, "is longer than 255") != NULL, "%s", err);
    conf.providers[0].accounts[1].id = saved;
    char *chain = conf.providers[0].accounts[1].chains[0];
    conf.providers[0].accounts[1].chains[0] = (char *)"0999";
    ck_assert_ptr_null(relay_table_new(&conf, err, sizeof(err)));
    ck_assert_str_eq(err, "account abc names unknown chain 0999");
    conf.providers[0].accounts[1].chains[0] = chain;
    ccgwconf_free(&conf);
}
END_TEST

Suite *relay_suite(void)
{
    Suite *s = suite_create("relay");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_find);
    tcase_add_test(tc, test_rule);
    tcase_add_test(tc, test_rule_routed);
    tcase_add_test(tc, test_large_table);
    tcase_add_test(tc, test_refusals);
    suite_add_tcase(s, tc);
    return s;
}
