/* cc-routes modules: template filling, the host table, the rendered configs
 * (from the real templates), Basic auth, and the runtime API client against a
 * scripted stand-in for HAProxy's stats socket. */
#include <check.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ccgwconf.h"
#include "haproxy/hapi.h"
#include "haproxy/render.h"
#include "haproxy/routes.h"
#include "haproxy/tls.h"
#include "sys.h"

static const char *templates_dir(void)
{
    static char dir[1024];
    const char *d = getenv("CCGW_TESTDATA");

    snprintf(dir, sizeof(dir), "%s/../../haproxy/templates", d && *d ? d : "tests/data");
    return dir;
}

static const char base_yaml[] = "gateway: {name: gw-unit, routing_domain: Chains.Unit.Test}\n"
                                "chains:\n"
                                "  - id: \"0021\"\n"
                                "    auth: {user: Aladdin, password: open sesame}\n"
                                "    backends:\n"
                                "      - {name: n0021a, address: \"127.0.0.1:18332\"}\n"
                                "      - {name: n0021b, address: \"[::1]:18333\", weight: 7}\n"
                                "  - id: \"0001\"\n"
                                "    backends:\n"
                                "      - {name: n0001a, address: \"127.0.0.1:18334\"}\n"
                                "providers:\n"
                                "  - name: acme\n"
                                "    accounts:\n"
                                "      - {id: ZZZ, chains: [\"0021\"]}\n"
                                "      - {id: aaa, chains: [\"0001\", \"0021\"]}\n";

static const char tiers_yaml[] =
    "tiers:\n"
    "  - {name: edge, role: edge, bind: \"[::]:8080\", stats_bind: \"127.0.0.1:8404\", "
    "stats_socket: /run/ccgw/edge.sock}\n"
    "  - {name: http0, role: http, bind: \"0.0.0.0:8081\", stats_socket: run/http0.sock}\n"
    "  - {name: http1, role: http, backup: true, bind: \"127.0.0.1:8082\", "
    "stats_socket: /run/ccgw/http1.sock}\n";

static void load(struct ccgwconf *c, const char *extra)
{
    struct yamlcfg_error err = {0};
    char *text = NULL;

    ck_assert_int_ge(asprintf(&text, "%s%s", base_yaml, extra), 0);
    if (ccgwconf_load_string("unit.yaml", text, strlen(text), c, &err) < 0)
        ck_abort_msg("ccgwconf_load_string: %s", err.text);
    free(text);
}

START_TEST(fill_replaces_and_drops)
{
    const struct render_var vars[] = {{"A", "x"}, {"EMPTY", ""}, {"BLOCK", "l1\n  l2"}};
    struct yamlcfg_error err = {0};
    char *out = NULL;

    ck_assert_int_eq(render_fill("t", "a=@A@ b=@A@@A@\n  @EMPTY@\nkeep @EMPTY@\n@BLOCK@\nend\n",
                                 vars, ARRAY_LEN(vars), &out, &err),
                     0);
    ck_assert_str_eq(out, "a=x b=xx\nkeep\nl1\n  l2\nend\n");
    free(out);
}
END_TEST

START_TEST(fill_keeps_literal_at)
{
    const struct render_var vars[] = {{"A", "x"}};
    struct yamlcfg_error err = {0};
    char *out = NULL;

    ck_assert_int_eq(render_fill("t", "ipv6@::1 a@b @lower@ @A @@A@ mail@A.com", vars,
                                 ARRAY_LEN(vars), &out, &err),
                     0);
    ck_assert_str_eq(out, "ipv6@::1 a@b @lower@ @A @x mail@A.com");
    free(out);
}
END_TEST

START_TEST(fill_unknown_placeholder)
{
    struct yamlcfg_error err = {0};
    char *out = NULL;

    ck_assert_int_eq(render_fill("edge.cfg.in", "line1\nx @NOPE@\n", NULL, 0, &out, &err), -1);
    ck_assert_ptr_null(out);
    ck_assert_str_eq(err.text, "edge.cfg.in:2: unknown placeholder @NOPE@");
}
END_TEST

START_TEST(basic_auth)
{
    char *s = render_basic_auth("Aladdin", "open sesame");

    ck_assert_str_eq(s, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    free(s);
    s = render_basic_auth("u", "");
    ck_assert_str_eq(s, "Basic dTo=");
    free(s);
}
END_TEST

START_TEST(hosts_sorted_lower_case)
{
    struct ccgwconf c;
    struct routes_host *h = NULL;
    struct yamlcfg_error err = {0};
    size_t n = 0, len = 0;
    char *map = NULL;

    load(&c, tiers_yaml);
    ck_assert_int_eq(routes_check(&c, &err), 0);
    ck_assert_int_eq(routes_hosts(&c, &h, &n, &err), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(render_map(h, n, &map, &len, &err), 0);
    ck_assert_str_eq(map, "aaa.0001.chains.unit.test 0001/aaa\n"
                          "aaa.0021.chains.unit.test 0021/aaa\n"
                          "zzz.0021.chains.unit.test 0021/zzz\n");
    ck_assert_uint_eq(len, strlen(map));
    free(map);
    routes_hosts_free(h, n);
    ccgwconf_free(&c);
}
END_TEST

/* Each case: extra YAML, then the message routes_check() must give. */
static const struct {
    const char *yaml, *message;
} refused[] = {
    {"tiers:\n  - {name: http0, role: http, bind: \"127.0.0.1:1\", stats_socket: /s}\n",
     "unit.yaml: tiers: exactly one edge tier is needed, found 0"},
    {"tiers:\n  - {name: edge, role: edge, bind: \"127.0.0.1:1\", stats_socket: /e}\n"
     "  - {name: http0, role: http, backup: true, bind: \"127.0.0.1:2\", stats_socket: /s}\n",
     "unit.yaml: tiers: at least one http tier must not be a backup"},
    {"tiers:\n  - {name: edge, role: edge, bind: \"127.0.0.1:1\", stats_socket: \"/a b\"}\n"
     "  - {name: http0, role: http, bind: \"127.0.0.1:2\", stats_socket: /s}\n",
     "unit.yaml:17:5: tiers[0]: stats_socket \"/a b\" must not contain blanks, quotes or '#'"},
};

START_TEST(check_refuses)
{
    struct ccgwconf c;
    struct yamlcfg_error err = {0};

    load(&c, refused[_i].yaml);
    ck_assert_int_eq(routes_check(&c, &err), -1);
    ck_assert_str_eq(err.text, refused[_i].message);
    ccgwconf_free(&c);
}
END_TEST

static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;

    if (!f)
        return NULL;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            char *b = realloc(buf, cap = cap * 2 + 4096 + 1);
            ck_assert_ptr_nonnull(b);
            buf = b;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* tests/data/routes/{bad,good}/<case>.yaml: each is loaded under the name
 * "<case>.yaml" (so the expected text does not depend on where the tests
 * run from) and must pass ccgwconf_load(); then routes_check() must refuse a
 * bad case with exactly the message of its .expected twin, and accept a
 * good one. Returns the number of cases. */
static int check_case_dir(const char *kind)
{
    const char *d = getenv("CCGW_TESTDATA");
    char dir[512];
    struct dirent *e;
    DIR *dh;
    int cases = 0;

    snprintf(dir, sizeof(dir), "%s/routes/%s", d && *d ? d : "tests/data", kind);
    dh = opendir(dir);
    ck_assert_msg(dh != NULL, "%s: cannot open", dir);
    while ((e = readdir(dh))) {
        size_t len = strlen(e->d_name), ylen, elen = 0;
        char path[1024];
        char *yaml, *expected = NULL;
        struct yamlcfg_error err = {0};
        struct ccgwconf c;
        int rc;

        if (len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        yaml = read_text(path, &ylen);
        ck_assert_msg(yaml != NULL, "%s: cannot read", path);
        if (strcmp(kind, "bad") == 0) {
            snprintf(path, sizeof(path), "%s/%.*s.expected", dir, (int)(len - 5), e->d_name);
            expected = read_text(path, &elen);
            ck_assert_msg(expected != NULL, "%s: missing", path);
            while (elen && (expected[elen - 1] == '\n' || expected[elen - 1] == '\r'))
                expected[--elen] = '\0';
        }
        if (ccgwconf_load_string(e->d_name, yaml, ylen, &c, &err) < 0)
            ck_abort_msg("%s/%s: ccgwconf_load: %s", dir, e->d_name, err.text);
        rc = routes_check(&c, &err);
        if (expected) {
            ck_assert_msg(rc == -1, "%s/%s: routes_check() accepted it", dir, e->d_name);
            ck_assert_msg(strcmp(err.text, expected) == 0, "%s/%s:\n  got      %s\n  expected %s",
                          dir, e->d_name, err.text, expected);
        } else {
            ck_assert_msg(rc == 0, "%s/%s: %s", dir, e->d_name, err.text);
        }
        ccgwconf_free(&c);
        free(yaml);
        free(expected);
        cases++;
    }
    closedir(dh);
    return cases;
}

START_TEST(check_bad_files)
{
    ck_assert_int_ge(check_case_dir("bad"), 10);
}
END_TEST

START_TEST(check_good_files)
{
    ck_assert_int_ge(check_case_dir("good"), 2);
}
END_TEST

START_TEST(check_refuses_colon_user)
{
    struct ccgwconf c;
    struct yamlcfg_error err = {0};

    load(&c, tiers_yaml);
    free(c.chains[0].auth_user);
    c.chains[0].auth_user = strdup("a:b");
    ck_assert_int_eq(routes_check(&c, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "chains[0].auth.user: a Basic auth user name"));
    ccgwconf_free(&c);
}
END_TEST

START_TEST(tier_address)
{
    static const char *const cases[][2] = {
        {"0.0.0.0:80", "127.0.0.1:80"}, {"[::]:81", "[::1]:81"},        {":82", "127.0.0.1:82"},
        {"[::1]:83", "[::1]:83"},       {"10.1.2.3:84", "10.1.2.3:84"},
    };
    char buf[64];

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct ccgwconf_tier t = {.bind = (char *)cases[i][0]};
        ck_assert_int_eq(routes_tier_address(&t, buf, sizeof(buf)), 0);
        ck_assert_str_eq(buf, cases[i][1]);
    }
}
END_TEST

/* No "@NAME@" may survive rendering. */
static void assert_no_placeholder(const char *text)
{
    for (const char *p = strchr(text, '@'); p; p = strchr(p + 1, '@'))
        ck_assert_msg(!(p[1] >= 'A' && p[1] <= 'Z' && strchr(p + 1, '@') &&
                        strspn(p + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") ==
                            (size_t)(strchr(p + 1, '@') - p - 1)),
                      "placeholder left: %.20s", p);
}

START_TEST(render_tiers)
{
    struct ccgwconf c;
    struct render_templates t;
    struct yamlcfg_error err = {0};
    char *http0 = NULL, *edge = NULL;

    load(&c, tiers_yaml);
    if (render_templates_load(templates_dir(), &t, &err) < 0)
        ck_abort_msg("templates: %s", err.text);
    ck_assert_int_eq(render_tier(&t, &c, &c.tiers[1], "/x/hosts.map", &http0, &err), 0);
    ck_assert_int_eq(render_tier(&t, &c, &c.tiers[0], "/x/hosts.map", &edge, &err), 0);
    assert_no_placeholder(http0);
    assert_no_placeholder(edge);

    ck_assert_ptr_nonnull(strstr(http0, "\n    log stdout len 4096 format short local0 info\n"));
    ck_assert_ptr_nonnull(strstr(http0, "stats socket unix@run/http0.sock mode 600 level admin"));
    ck_assert_ptr_nonnull(strstr(http0, "\n    bind 0.0.0.0:8081 accept-proxy\n"));
    /* One lookup, whose answer is routed and logged. */
    ck_assert_ptr_nonnull(strstr(
        http0,
        "http-request set-var(txn.route) req.hdr(host),lower,field(1,:),map(/x/hosts.map)\n"));
    ck_assert_ptr_nonnull(strstr(
        http0, "use_backend be_%[var(txn.route),field(1,/)] if { var(txn.route) -m found }\n"));
    ck_assert_ptr_nonnull(strstr(http0, " %sq/%bq %[var(txn.route)] %hr "));
    ck_assert_ptr_nonnull(strstr(http0, "http-request track-sc0 var(txn.route) table st_routes"));
    ck_assert_ptr_nonnull(strstr(http0, "http-request capture req.fhdr(host) len 253\n"));
    /* Refusals come before routing; without TLS or WebSocket no such line. */
    ck_assert_ptr_nonnull(strstr(http0, "use_backend be_refuse_host if bad_host\n"
                                        "    use_backend be_refuse_connect if METH_CONNECT\n"
                                        "    use_backend be_refuse_upgrade if upgrade\n"));
    ck_assert_ptr_null(strstr(http0, "]_ws if"));
    ck_assert_ptr_null(strstr(edge, " ssl "));
    ck_assert_ptr_null(strstr(edge, "redirect"));
    ck_assert_ptr_null(strstr(edge, "/metrics/tls"));
    ck_assert_ptr_nonnull(
        strstr(http0, "backend be_reject\n    http-request deny deny_status 404\n"));
    ck_assert_ptr_nonnull(strstr(http0, "\nbackend be_0021\n    balance leastconn\n"
                                        "    option httpchk GET /health/ready\n"));
    ck_assert_ptr_nonnull(strstr(
        http0, "    http-request set-header Authorization \"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\"\n"
               "    http-request track-sc0 var(txn.route) table st_routes if { var(txn.route) -m "
               "found }\n"
               "    http-response sc-inc-gpc0(0) if { status 200:499 }\n"
               "    server n0021a 127.0.0.1:18332 weight 1 check"));
    ck_assert_ptr_nonnull(strstr(http0, "    server n0021b [::1]:18333 weight 7 check"));
    ck_assert_ptr_nonnull(strstr(http0, "    option redispatch\n    http-request track-sc0 "));
    ck_assert_ptr_nonnull(strstr(http0, "status 200:499 }\n    server n0001a "));
    ck_assert_ptr_null(strstr(http0, "frontend stats"));
    ck_assert_ptr_null(strstr(http0, " \n"));

    ck_assert_ptr_nonnull(strstr(edge, "\n    bind 0.0.0.0:8080,[::]:8080 v6only\n"));
    ck_assert_ptr_nonnull(strstr(edge, "stats socket /run/ccgw/edge.sock mode 600 level admin"));
    ck_assert_ptr_nonnull(strstr(edge, "    server http0 127.0.0.1:8081 send-proxy-v2 check "));
    ck_assert_ptr_nonnull(strstr(edge, "    server http1 127.0.0.1:8082 send-proxy-v2 check "
                                       "check-send-proxy inter 1s fall 2 rise 2 observe layer4 "
                                       "error-limit 1 on-error mark-down backup\n"));
    ck_assert_ptr_nonnull(strstr(edge, "option httpchk GET /ccgw-health\n"));
    ck_assert_ptr_nonnull(strstr(edge, "\nfrontend stats\n    bind 127.0.0.1:8404\n"));
    ck_assert_ptr_nonnull(strstr(edge, "prometheus-exporter"));
    ck_assert_ptr_null(strstr(edge, "be_0021"));
    ck_assert_ptr_null(strstr(edge, " \n"));

    free(http0);
    free(edge);
    render_templates_free(&t);
    ccgwconf_free(&c);
}
END_TEST

/* The HTTPS listener, the plain port's redirect to it, HSTS, the expiry
 * metric on the edge's stats listener, and a WebSocket chain's backend. */
START_TEST(render_tls_and_websocket)
{
    static const char yaml[] =
        "gateway: {name: gw-unit, routing_domain: chains.unit.test}\n"
        "chains:\n"
        "  - {id: \"0021\", backends: [{name: a, address: \"127.0.0.1:1\"}]}\n"
        "  - {id: \"0001\", websocket: true, backends: [{name: b, address: \"127.0.0.1:2\"}]}\n"
        "tiers:\n"
        "  - {name: edge, role: edge, bind: \"[::]:80\", stats_bind: \"127.0.0.1:8404\", "
        "stats_socket: /run/e.sock}\n"
        "  - {name: http0, role: http, bind: \"127.0.0.1:8081\", stats_socket: /run/h.sock}\n"
        "tls:\n"
        "  bind: \"[::]:443\"\n"
        "  plain_http: redirect\n"
        "  hsts_max_age_secs: 63072000\n"
        "  certificates: [{name: w, cert: /c.pem}]\n";
    struct ccgwconf c;
    struct render_templates t;
    struct yamlcfg_error err = {0};
    char *http0 = NULL, *edge = NULL;

    if (ccgwconf_load_string("unit.yaml", yaml, strlen(yaml), &c, &err) < 0)
        ck_abort_msg("conf: %s", err.text);
    ck_assert_int_eq(render_templates_load(templates_dir(), &t, &err), 0);
    ck_assert_int_eq(render_tier(&t, &c, &c.tiers[1], "/x/hosts.map", &http0, &err), 0);
    ck_assert_int_eq(render_tier(&t, &c, &c.tiers[0], "/x/hosts.map", &edge, &err), 0);
    assert_no_placeholder(http0);
    assert_no_placeholder(edge);
    ck_assert_ptr_nonnull(strstr(edge, "\n    bind 0.0.0.0:443,[::]:443 v6only ssl crt-list "
                                       "/x/crt-list alpn h2,http/1.1\n"));
    ck_assert_ptr_nonnull(strstr(edge, "ssl-default-bind-options prefer-client-ciphers "
                                       "ssl-min-ver TLSv1.2 no-tls-tickets\n"));
    /* Port 443 is implied in the redirect's location. */
    ck_assert_ptr_nonnull(strstr(edge, "http-request redirect code 308 location "
                                       "https://%[req.hdr(host),field(1,:)]%[pathq] if "
                                       "!{ ssl_fc } !bad_host !METH_CONNECT\n"));
    ck_assert_ptr_nonnull(strstr(edge, "Strict-Transport-Security \"max-age=63072000\" if "
                                       "{ ssl_fc }\n"));
    ck_assert_ptr_nonnull(strstr(edge, "lf-file /x/tls-metrics.lf if { path /metrics/tls }\n"
                                       "    http-request use-service prometheus-exporter"));
    ck_assert_ptr_nonnull(strstr(edge, "http-request set-header X-Ccgw-Refuse bad-host if "
                                       "bad_host\n"));
    ck_assert_ptr_nonnull(strstr(http0, "use_backend be_refuse_connect if METH_CONNECT\n"
                                        "    use_backend be_%[var(txn.route),field(1,/)]"
                                        "_ws if { req.fhdr(upgrade) -m str -i websocket } "
                                        "{ var(txn.route),field(1,/) -m str "
                                        "0001 }\n    use_backend be_refuse_upgrade if upgrade\n"));
    ck_assert_ptr_nonnull(strstr(http0, "\nbackend be_0001_ws\n"));
    ck_assert_ptr_nonnull(strstr(http0, "    timeout tunnel 1h\n"));
    ck_assert_ptr_null(strstr(http0, "backend be_0021_ws"));
    free(http0);
    free(edge);
    ccgwconf_free(&c);

    /* Bound on 8443 behind a 443 mapping: the redirect names the public port
     * (redirect_port); without it, the bind's. */
    char *text = strdup(yaml);
    ck_assert_ptr_nonnull(text);
    memcpy(strstr(text, "[::]:443"), "[::]:844", 8);
    for (int mapped = 0; mapped < 2; mapped++) {
        char *y = NULL;
        ck_assert_int_ge(asprintf(&y, "%s%s", text, mapped ? "  redirect_port: 443\n" : ""), 0);
        if (ccgwconf_load_string("unit.yaml", y, strlen(y), &c, &err) < 0)
            ck_abort_msg("conf: %s", err.text);
        ck_assert_int_eq(render_tier(&t, &c, &c.tiers[0], "/x/hosts.map", &edge, &err), 0);
        ck_assert_ptr_nonnull(
            strstr(edge, mapped ? "location https://%[req.hdr(host),field(1,:)]%[pathq] "
                                : "location https://%[req.hdr(host),field(1,:)]:844%[pathq] "));
        free(edge);
        free(y);
        ccgwconf_free(&c);
    }
    free(text);
    render_templates_free(&t);
}
END_TEST

START_TEST(render_refuses_unsafe_map_path)
{
    struct ccgwconf c;
    struct render_templates t;
    struct yamlcfg_error err = {0};
    char *out = NULL;

    load(&c, tiers_yaml);
    ck_assert_int_eq(render_templates_load(templates_dir(), &t, &err), 0);
    ck_assert_int_eq(render_tier(&t, &c, &c.tiers[1], "/x y/hosts.map", &out, &err), -1);
    ck_assert_ptr_null(out);
    ck_assert_ptr_nonnull(strstr(err.text, "must not contain blanks"));
    render_templates_free(&t);
    ccgwconf_free(&c);
}
END_TEST

/* A scripted stats socket: answers each connection with the next reply and
 * records the request it got. */
struct fake_cli {
    char path[108];
    int fd;
    const char *const *replies;
    size_t nreplies;
    char requests[4][512];
};

static void *fake_cli_run(void *arg)
{
    struct fake_cli *f = arg;

    for (size_t i = 0; i < f->nreplies; i++) {
        int c = accept(f->fd, NULL, NULL);
        size_t len = 0;
        if (c < 0)
            break;
        /* A request ends with "\n", or with "\n\n" when it carries a payload. */
        while (len < sizeof(f->requests[0]) - 1) {
            ssize_t r = read(c, f->requests[i % 4] + len, 1);
            if (r <= 0)
                break;
            len++;
            f->requests[i % 4][len] = '\0';
            if (f->requests[i % 4][len - 1] == '\n' &&
                (!strstr(f->requests[i % 4], "<<\n") ||
                 (len >= 2 && f->requests[i % 4][len - 2] == '\n')))
                break;
        }
        if (write(c, f->replies[i], strlen(f->replies[i])) < 0)
            break;
        close(c);
    }
    return NULL;
}

static pthread_t fake_cli_start(struct fake_cli *f, const char *const *replies, size_t n)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    pthread_t th;

    memset(f, 0, sizeof(*f));
    snprintf(f->path, sizeof(f->path), "/tmp/ccgw-unit-hapi.%d.sock", (int)getpid());
    unlink(f->path);
    strcpy(sa.sun_path, f->path);
    f->fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_ge(f->fd, 0);
    ck_assert_int_eq(bind(f->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(f->fd, 4), 0);
    f->replies = replies;
    f->nreplies = n;
    ck_assert_int_eq(pthread_create(&th, NULL, fake_cli_run, f), 0);
    return th;
}

static void fake_cli_stop(struct fake_cli *f, pthread_t th)
{
    pthread_join(th, NULL);
    close(f->fd);
    unlink(f->path);
}

START_TEST(hapi_expect_replies)
{
    static const char *const replies[] = {"\n", "", "Unknown command.\n\n",
                                          "New version created: 4\n\n"};
    struct fake_cli f;
    struct yamlcfg_error err = {0};
    pthread_t th = fake_cli_start(&f, replies, ARRAY_LEN(replies));

    ck_assert_int_eq(hapi_expect(f.path, "add map @3 /m", "a b\nc d", NULL, &err), 0);
    ck_assert_str_eq(f.requests[0], "add map @3 /m <<\na b\nc d\n\n");
    ck_assert_int_eq(hapi_expect(f.path, "commit map @3 /m", NULL, NULL, &err), -1);
    ck_assert_int_eq(hapi_expect(f.path, "nope", NULL, NULL, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "\"nope\": Unknown command."));
    ck_assert_int_eq(hapi_expect(f.path, "prepare map /m", NULL, "New version created", &err), 0);
    ck_assert_str_eq(f.requests[3], "prepare map /m\n");
    fake_cli_stop(&f, th);
}
END_TEST

START_TEST(hapi_parses_state_and_stat)
{
    static const char *const replies[] = {
        "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
        "srv_iweight srv_time_since_last_change srv_check_status srv_check_result "
        "srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id "
        "srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr "
        "srv_agent_port\n"
        "12 be_0021 1 n0021a 127.0.0.1 2 0 1 1 7 6 3 4 6 0 0 0 - 18332 - 0 0 - - 0\n"
        "12 be_0021 2 n0021b ::1 0 1 7 7 7 6 3 4 6 0 0 0 - 18333 - 0 0 - - 0\n\n",
        "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,"
        "wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,"
        "throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,\n"
        "be_0021,n0021a,0,0,3,5,,9,0,0,,0,,0,0,0,0,UP,1,1,0,0,0,1,0,,1,3,1,,9,,2,0,,1,L7OK,\n"
        "be_0021,n0021b,2,2,0,0,,0,0,0,,0,,0,0,0,0,MAINT,7,1,0,0,0,1,0,,1,3,2,,0,,2,0,,0,,\n\n",
        "No such backend.\n\n",
    };
    struct fake_cli f;
    struct yamlcfg_error err = {0};
    struct hapi_server *s = NULL;
    struct hapi_stat st;
    size_t n = 0;
    pthread_t th = fake_cli_start(&f, replies, ARRAY_LEN(replies));

    ck_assert_int_eq(hapi_servers(f.path, "be_0021", &s, &n, &err), 0);
    ck_assert_str_eq(f.requests[0], "show servers state be_0021\n");
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(s[0].name, "n0021a");
    ck_assert_str_eq(s[0].addr, "127.0.0.1");
    ck_assert_int_eq(s[0].port, 18332);
    ck_assert_int_eq(s[0].op_state, 2);
    ck_assert_str_eq(s[1].addr, "::1");
    ck_assert_int_eq(s[1].admin_state, 1);
    ck_assert_int_eq(s[1].weight, 7);
    free(s);
    ck_assert_int_eq(hapi_server_stat(f.path, "be_0021", "n0021a", &st, &err), 0);
    ck_assert_str_eq(st.status, "UP");
    ck_assert_str_eq(st.check_status, "L7OK");
    ck_assert_int_eq(st.scur, 3);
    ck_assert_int_eq(st.qcur, 0);
    ck_assert_int_eq(hapi_server_stat(f.path, "be_0021", "n0021z", &st, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "unexpected answer"));
    fake_cli_stop(&f, th);
}
END_TEST

START_TEST(hapi_connect_error)
{
    struct yamlcfg_error err = {0};
    char *reply = NULL;

    ck_assert_int_eq(hapi_command("/nonexistent/ccgw.sock", "show info", NULL, &reply, &err), -1);
    ck_assert_ptr_null(reply);
    ck_assert_str_eq(err.text, "/nonexistent/ccgw.sock: connect: No such file or directory");
}
END_TEST

static const char tls_yaml[] =
    "gateway: {name: gw-unit, routing_domain: chains.unit.test}\n"
    "chains:\n"
    "  - {id: \"0021\", backends: [{name: a, address: \"127.0.0.1:1\"}]}\n"
    "  - {id: \"0001\", websocket: true, backends: [{name: b, address: \"127.0.0.1:2\"}]}\n"
    "tls:\n"
    "  bind: \"127.0.0.1:8443\"\n"
    "  certificates: [{name: w21, cert: /a.pem}, {name: w01, cert: /b.pem, key: /b.key}]\n";

/* The files the edge loads, from certificates already read: the crt-list in
 * config order (the first is the default), the expiry map, and the metric's
 * log-format reading that map. */
START_TEST(tls_files)
{
    struct ccgwconf c;
    struct yamlcfg_error err = {0};
    struct ccgwconf_certificate *ct;
    struct tls_cert certs[2] = {{0}};
    char *list = NULL, *map = NULL, *lf = NULL;

    ck_assert_int_eq(ccgwconf_load_string("unit.yaml", tls_yaml, strlen(tls_yaml), &c, &err), 0);
    ct = c.tls.certificates;
    ck_assert_uint_eq(c.tls.ncertificates, 2);
    ck_assert_ptr_null(ct[0].key);
    ck_assert_str_eq(ct[1].key, "/b.key");
    ck_assert_int_eq(c.tls.plain_http, CCGWCONF_PLAIN_SERVE);
    ck_assert(c.chains[1].websocket && !c.chains[0].websocket);
    certs[0].conf = &ct[0];
    certs[0].not_after = 1800000000;
    certs[1].conf = &ct[1];
    certs[1].not_after = 1700000000;
    ck_assert_int_eq(tls_render_crt_list(certs, 2, "/r", &list, &err), 0);
    ck_assert_str_eq(list, "/r/tls-w21.pem\n/r/tls-w01.pem\n");
    ck_assert_int_eq(tls_render_expiry_map(certs, 2, &map, &err), 0);
    ck_assert_str_eq(map, "w21 1800000000\nw01 1700000000\n");
    ck_assert_int_eq(tls_render_metrics_lf(&c, certs, 2, "/r/tls-expiry.map", &lf, &err), 0);
    ck_assert_ptr_nonnull(strstr(lf, "# TYPE ccgw_tls_certificate_not_after_seconds gauge\n"));
    ck_assert_ptr_nonnull(strstr(
        lf, "ccgw_tls_certificate_not_after_seconds{gateway=\"gw-unit\",certificate=\"w01\"} "
            "%[str(w01),map(/r/tls-expiry.map,0)]\n"));
    free(lf);
    ck_assert_int_eq(tls_render_metrics_lf(&c, certs, 2, "/r s/x.map", &lf, &err), -1);
    free(list);
    free(map);
    ccgwconf_free(&c);
}
END_TEST

/* What apply cannot change live on the edge. */
START_TEST(tls_restart)
{
    struct ccgwconf a, b;
    struct yamlcfg_error err = {0};
    char why[1024] = "";
    char *text = NULL;

    ck_assert_int_eq(ccgwconf_load_string("a.yaml", tls_yaml, strlen(tls_yaml), &a, &err), 0);
    ck_assert_int_eq(ccgwconf_load_string("b.yaml", tls_yaml, strlen(tls_yaml), &b, &err), 0);
    tls_restart_reasons(&a, &b, why, sizeof(why));
    ck_assert_str_eq(why, "");
    ccgwconf_free(&b);
    ck_assert_int_ge(asprintf(&text, "%s  plain_http: redirect\n", tls_yaml), 0);
    memcpy(strstr(text, "w01"), "w02", 3);
    memcpy(strstr(text, "websocket: true"), "websocket: no  ", 15);
    ck_assert_int_eq(ccgwconf_load_string("b.yaml", text, strlen(text), &b, &err), 0);
    tls_restart_reasons(&a, &b, why, sizeof(why));
    ck_assert_str_eq(why, "edge plain HTTP policy or HSTS changed; edge certificate removed or "
                          "renamed; "
                          "WebSocket opt-in of chain 0001 changed");
    free(text);
    ccgwconf_free(&a);
    ccgwconf_free(&b);
}
END_TEST

Suite *routes_suite(void)
{
    Suite *s = suite_create("routes");
    TCase *tc = tcase_create("render");

    tcase_add_test(tc, fill_replaces_and_drops);
    tcase_add_test(tc, fill_keeps_literal_at);
    tcase_add_test(tc, fill_unknown_placeholder);
    tcase_add_test(tc, basic_auth);
    tcase_add_test(tc, render_tiers);
    tcase_add_test(tc, render_tls_and_websocket);
    tcase_add_test(tc, render_refuses_unsafe_map_path);
    suite_add_tcase(s, tc);
    tc = tcase_create("routes");
    tcase_add_test(tc, hosts_sorted_lower_case);
    tcase_add_loop_test(tc, check_refuses, 0, ARRAY_LEN(refused));
    tcase_add_test(tc, check_refuses_colon_user);
    tcase_add_test(tc, check_bad_files);
    tcase_add_test(tc, check_good_files);
    tcase_add_test(tc, tier_address);
    suite_add_tcase(s, tc);
    tc = tcase_create("tls");
    tcase_add_test(tc, tls_files);
    tcase_add_test(tc, tls_restart);
    suite_add_tcase(s, tc);
    tc = tcase_create("hapi");
    tcase_add_test(tc, hapi_expect_replies);
    tcase_add_test(tc, hapi_parses_state_and_stat);
    tcase_add_test(tc, hapi_connect_error);
    suite_add_tcase(s, tc);
    return s;
}
