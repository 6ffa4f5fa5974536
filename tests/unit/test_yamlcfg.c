/* The generic YAML loader: types, ranges, sizes, presence tracking, alias
 * bombs and multi-document streams. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "yamlcfg.h"

struct item {
    char *name;
    int64_t n;
    struct yamlcfg_mark mark;
};

struct sample {
    char *s;
    int64_t i;
    double d;
    int b, b_present;
    int64_t size;
    int e;
    struct item *items;
    size_t nitems;
    char **tags;
    size_t ntags;
};

static const char *const colours[] = {"red", "green", NULL};

static const struct yamlcfg_field item_fields[] = {
    {.key = "name", .type = YAMLCFG_STR, .offset = offsetof(struct item, name), .required = 1},
    {.key = "n", .type = YAMLCFG_INT, .offset = offsetof(struct item, n), .min = 0, .max = 10},
};
static const struct yamlcfg_schema item_schema = {"item", item_fields, 2, 1,
                                                  offsetof(struct item, mark)};

static const struct yamlcfg_field sample_fields[] = {
    {.key = "s", .type = YAMLCFG_STR, .offset = offsetof(struct sample, s)},
    {.key = "i", .type = YAMLCFG_INT, .offset = offsetof(struct sample, i)},
    {.key = "d", .type = YAMLCFG_DOUBLE, .offset = offsetof(struct sample, d), .min = 0, .max = 1},
    {.key = "b",
     .type = YAMLCFG_BOOL,
     .offset = offsetof(struct sample, b),
     .track_present = 1,
     .present_offset = offsetof(struct sample, b_present)},
    {.key = "size", .type = YAMLCFG_SIZE, .offset = offsetof(struct sample, size)},
    {.key = "e", .type = YAMLCFG_ENUM, .offset = offsetof(struct sample, e), .enums = colours},
    {.key = "items",
     .type = YAMLCFG_LIST,
     .offset = offsetof(struct sample, items),
     .sub = &item_schema,
     .elem_size = sizeof(struct item),
     .count_offset = offsetof(struct sample, nitems)},
    {.key = "tags",
     .type = YAMLCFG_LIST,
     .offset = offsetof(struct sample, tags),
     .elem_size = sizeof(char *),
     .count_offset = offsetof(struct sample, ntags)},
};
static const struct yamlcfg_schema sample_schema = {"sample", sample_fields, 8, 0, 0};

static int load(const char *text, struct sample *out, struct yamlcfg_error *err)
{
    memset(out, 0, sizeof(*out));
    out->i = 42; /* a default that survives an absent key */
    return yamlcfg_load_string("t.yaml", text, strlen(text), &sample_schema, out, err);
}

START_TEST(all_types)
{
    struct sample s;
    struct yamlcfg_error err;
    const char *y = "s: hello\nd: 0.25\nb: off\nsize: 1.5KiB\ne: green\n"
                    "items:\n  - {name: a, n: 3}\n  - name: b\ntags: [x, \"0021\"]\n";

    ck_assert_msg(load(y, &s, &err) == 0, "%s", err.text);
    ck_assert_str_eq(s.s, "hello");
    ck_assert_int_eq(s.i, 42);
    ck_assert_double_eq(s.d, 0.25);
    ck_assert_int_eq(s.b, 0);
    ck_assert_int_eq(s.b_present, 1);
    ck_assert_int_eq(s.size, 1536);
    ck_assert_int_eq(s.e, 1);
    ck_assert_uint_eq(s.nitems, 2);
    ck_assert_str_eq(s.items[1].name, "b");
    ck_assert_int_eq(s.items[0].n, 3);
    ck_assert_int_eq(s.items[1].mark.line, 8);
    ck_assert_int_eq(s.items[1].mark.column, 5);
    ck_assert_uint_eq(s.ntags, 2);
    ck_assert_str_eq(s.tags[1], "0021");
    yamlcfg_free(&sample_schema, &s);
    ck_assert_ptr_null(s.s);
    ck_assert_ptr_null(s.items);
}
END_TEST

START_TEST(absent_bool_not_present)
{
    struct sample s;
    struct yamlcfg_error err;

    ck_assert_int_eq(load("s: x\n", &s, &err), 0);
    ck_assert_int_eq(s.b_present, 0);
    yamlcfg_free(&sample_schema, &s);
}
END_TEST

static void expect_error(const char *yaml, const char *message)
{
    struct sample s;
    struct yamlcfg_error err;

    ck_assert_msg(load(yaml, &s, &err) == -1, "loaded: %s", yaml);
    ck_assert_str_eq(err.text, message);
    /* failed loads free what they decoded */
    ck_assert_ptr_null(s.s);
    ck_assert_ptr_null(s.items);
    ck_assert_ptr_null(s.tags);
}

START_TEST(errors)
{
    expect_error("d: 2\n", "t.yaml:1:4: d: must be between 0 and 1");
    expect_error("d: nan\n", "t.yaml:1:4: d: expected a number, got \"nan\"");
    expect_error("i: 12abc\n", "t.yaml:1:4: i: expected an integer, got \"12abc\"");
    expect_error("i: 99999999999999999999\n",
                 "t.yaml:1:4: i: expected an integer, got \"99999999999999999999\"");
    expect_error("b: maybe\n", "t.yaml:1:4: b: expected a boolean (true/false), got \"maybe\"");
    expect_error("s:\n", "t.yaml:1:3: s: expected a string, got null");
    expect_error("s: x\nitems:\n  - {name: a, n: 11}\n",
                 "t.yaml:3:18: items[0].n: must be between 0 and 10");
    expect_error("s: x\nitems:\n  - {n: 1}\n",
                 "t.yaml:3:5: items[0]: missing required key \"name\"");
    expect_error("tags: [a, [b]]\n", "t.yaml:1:11: tags[1]: expected a string, got a sequence");
    expect_error("? [a]\n: b\n", "t.yaml:1:3: keys must be strings, got a sequence");
    expect_error("size: -1\n",
                 "t.yaml:1:7: size: expected a size such as 40MB or 512KiB, got \"-1\"");
    expect_error("e: Red\n", "t.yaml:1:4: e: expected one of red, green, got \"Red\"");
    expect_error("s: a\n---\ns: b\n", "t.yaml:3:1: a second YAML document is not allowed");
    expect_error("s: [unclosed\n",
                 "t.yaml:2:1: syntax error: did not find expected ',' or ']' while parsing a flow "
                 "sequence at 1:4");
}
END_TEST

/* Nine levels of nine aliases expand to 9^9 nodes: refused, quickly. */
START_TEST(alias_bomb)
{
    const char *y = "a: &a [x, x, x, x, x, x, x, x, x]\n"
                    "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                    "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                    "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                    "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                    "tags: [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n";
    struct sample s;
    struct yamlcfg_error err;

    /* "a" is not a key of the schema: the first error wins. */
    ck_assert_int_eq(load(y, &s, &err), -1);
    ck_assert_str_eq(err.text, "t.yaml:1:1: a: unknown key");
}
END_TEST

START_TEST(sizes)
{
    int64_t v;

    ck_assert_int_eq(yamlcfg_parse_size("40MB", &v), 0);
    ck_assert_int_eq(v, 40000000);
    ck_assert_int_eq(yamlcfg_parse_size("40MiB", &v), 0);
    ck_assert_int_eq(v, 41943040);
    ck_assert_int_eq(yamlcfg_parse_size("512k", &v), 0);
    ck_assert_int_eq(v, 512000);
    ck_assert_int_eq(yamlcfg_parse_size("0.5 GB", &v), 0);
    ck_assert_int_eq(v, 500000000);
    ck_assert_int_eq(yamlcfg_parse_size("123", &v), 0);
    ck_assert_int_eq(v, 123);
    ck_assert_int_eq(yamlcfg_parse_size("", &v), -1);
    ck_assert_int_eq(yamlcfg_parse_size("MB", &v), -1);
    ck_assert_int_eq(yamlcfg_parse_size("12 XB", &v), -1);
    ck_assert_int_eq(yamlcfg_parse_size("1e30", &v), -1);
    ck_assert_int_eq(yamlcfg_parse_size("inf", &v), -1);
}
END_TEST

Suite *yamlcfg_suite(void)
{
    Suite *s = suite_create("yamlcfg");
    TCase *tc = tcase_create("yamlcfg");

    tcase_add_test(tc, all_types);
    tcase_add_test(tc, absent_bool_not_present);
    tcase_add_test(tc, errors);
    tcase_add_test(tc, alias_bomb);
    tcase_add_test(tc, sizes);
    suite_add_tcase(s, tc);
    return s;
}
