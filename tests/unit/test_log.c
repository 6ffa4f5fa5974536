/* log: exact shapes of text and JSON lines, captured through a pipe or a file. */
#include <check.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static int cap_fds[2] = {-1, -1};

static void cap_start(enum log_format format, enum log_level level)
{
    ck_assert_int_eq(pipe(cap_fds), 0);
    log_setup("test-comp", format, level, cap_fds[1]);
}

/* Everything logged since cap_start(); malloc'd, NUL-terminated. */
static char *cap_end(void)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    ssize_t n;

    ck_assert_ptr_nonnull(buf);
    log_setup(NULL, LOG_FORMAT_TEXT, LOG_INFO, 2);
    close(cap_fds[1]);
    while ((n = read(cap_fds[0], buf + len, cap - len - 1)) > 0)
        len += (size_t)n;
    close(cap_fds[0]);
    buf[len] = '\0';
    return buf;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void assert_matches(const char *s, const char *pattern)
{
    regex_t re;
    ck_assert_int_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    ck_assert_msg(regexec(&re, s, 0, NULL, 0) == 0, "'%s' !~ /%s/", s, pattern);
    regfree(&re);
}

#define TS_RE "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z"

START_TEST(test_log_text_shape)
{
    char *out;

    cap_start(LOG_FORMAT_TEXT, LOG_INFO);
    LOG_EVENT(LOG_INFO, "flush_done", "ab12", "flushed rows", LF_INT("rows", 12),
              LF_STR("table", "relay_counts"), LF_DBL("secs", 0.25), LF_BOOL("retry", 0));
    out = cap_end();
    assert_matches(out, "^" TS_RE " INFO test-comp flush_done request_id=ab12 rows=12 "
                        "table=relay_counts secs=0.25 retry=false msg=\"flushed rows\"\n$");
    free(out);
}
END_TEST

START_TEST(test_log_text_quoting)
{
    char *out, *p;

    cap_start(LOG_FORMAT_TEXT, LOG_DEBUG);
    LOG_EVENT(LOG_WARN, "odd", NULL, NULL, LF_STR("a", "x y"), LF_STR("b", "say \"hi\""),
              LF_STR("c", "k=v"), LF_STR("d", "back\\slash"), LF_STR("e", "two\nlines"),
              LF_STR("f", ""), LF_STR("g", NULL), LF_STR("h", "bell\a"), LF_STR("i", "plain"));
    out = cap_end();
    p = strstr(out, " WARN test-comp odd ");
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(p, " WARN test-comp odd a=\"x y\" b=\"say \\\"hi\\\"\" c=\"k=v\" "
                        "d=\"back\\\\slash\" e=\"two\\nlines\" f=\"\" g=\"\" h=\"bell\\x07\" "
                        "i=plain\n");
    ck_assert_int_eq(count_lines(out), 1);
    free(out);
}
END_TEST

START_TEST(test_log_json_shape)
{
    json_error_t jerr;
    json_t *j;
    char *out;

    cap_start(LOG_FORMAT_JSON, LOG_INFO);
    LOG_EVENT(LOG_ERROR, "flush_failed", "req-7", "connection \"refused\"\n", LF_INT("rows", -3),
              LF_DBL("secs", 1.5), LF_BOOL("retry", 1), LF_STR("db", "pg"), LF_DBL("nan", NAN),
              LF_STR("level", "spoof"));
    out = cap_end();
    ck_assert_int_eq(count_lines(out), 1);
    ck_assert_msg(strncmp(out, "{\"ts\":\"", 7) == 0, "%s", out);
    j = json_loads(out, 0, &jerr);
    ck_assert_msg(j != NULL, "%s: %s", out, jerr.text);
    assert_matches(json_string_value(json_object_get(j, "ts")), "^" TS_RE "$");
    ck_assert_str_eq(json_string_value(json_object_get(j, "level")), "error");
    ck_assert_str_eq(json_string_value(json_object_get(j, "component")), "test-comp");
    ck_assert_str_eq(json_string_value(json_object_get(j, "event")), "flush_failed");
    ck_assert_str_eq(json_string_value(json_object_get(j, "request_id")), "req-7");
    ck_assert_str_eq(json_string_value(json_object_get(j, "msg")), "connection \"refused\"\n");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "rows")), -3);
    ck_assert(json_real_value(json_object_get(j, "secs")) == 1.5);
    ck_assert(json_is_true(json_object_get(j, "retry")));
    ck_assert_str_eq(json_string_value(json_object_get(j, "db")), "pg");
    ck_assert_str_eq(json_string_value(json_object_get(j, "nan")), "NaN");
    json_decref(j);
    free(out);
}
END_TEST

START_TEST(test_log_json_invalid_utf8)
{
    json_t *j;
    char *out;

    cap_start(LOG_FORMAT_JSON, LOG_INFO);
    LOG_EVENT(LOG_INFO, "bad_bytes", NULL, NULL,
              LF_STR("host", "a\xff\xfe"
                             "b"),
              LF_STR("ok", "caf\xc3\xa9"));
    out = cap_end();
    j = json_loads(out, 0, NULL);
    ck_assert_msg(j != NULL, "%s", out);
    ck_assert_str_eq(json_string_value(json_object_get(j, "host")), "a??b");
    ck_assert_str_eq(json_string_value(json_object_get(j, "ok")), "caf\xc3\xa9");
    ck_assert_ptr_null(json_object_get(j, "request_id"));
    ck_assert_ptr_null(json_object_get(j, "msg"));
    json_decref(j);
    free(out);
}
END_TEST

/* The line the logger wrote before it formatted JSON itself: jansson's
 * compact dump of the object, built the same way (core keys first and
 * winning, non-UTF-8 strings with '?' for non-ASCII bytes). NULL when
 * jansson refused the object (a key that is not UTF-8). */
static json_t *ref_str(const char *s)
{
    json_t *j = json_string(s ? s : "");
    char *copy;

    if (j || !s)
        return j;
    copy = strdup(s);
    for (char *c = copy; *c; c++)
        if ((unsigned char)*c >= 0x80)
            *c = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

static char *ref_line(const char *ts, const char *level, const char *event, const char *reqid,
                      const struct log_field *f, size_t n, const char *msg)
{
    json_t *o = json_object();
    char *out = NULL;

    json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "level", json_string(level));
    json_object_set_new(o, "component", ref_str("test-comp"));
    json_object_set_new(o, "event", ref_str(event));
    if (reqid)
        json_object_set_new(o, "request_id", ref_str(reqid));
    for (size_t i = 0; i < n; i++) {
        json_t *v = NULL;
        if (json_object_get(o, f[i].key) || (msg && strcmp(f[i].key, "msg") == 0))
            continue;
        switch (f[i].type) {
        case LOG_F_STR:
            v = ref_str(f[i].v.s);
            break;
        case LOG_F_INT:
            v = json_integer(f[i].v.i);
            break;
        case LOG_F_DOUBLE:
            v = isfinite(f[i].v.d) ? json_real(f[i].v.d)
                                   : json_string(isnan(f[i].v.d) ? "NaN"
                                                 : f[i].v.d > 0  ? "+Inf"
                                                                 : "-Inf");
            break;
        case LOG_F_BOOL:
            v = json_boolean(f[i].v.b);
            break;
        }
        if (json_object_set_new(o, f[i].key, v) < 0)
            goto out;
    }
    if (msg)
        json_object_set_new(o, "msg", ref_str(msg));
    out = json_dumps(o, JSON_COMPACT);
out:
    json_decref(o);
    return out;
}

static unsigned rnd_state = 12345;

static unsigned rnd(unsigned n)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (rnd_state >> 8) % n;
}

/* A string of pieces: ASCII, escapes, control bytes, valid and invalid UTF-8. */
static void rnd_string(char *buf, size_t size)
{
    static const char *const pieces[] = {"a",
                                         "Z",
                                         "0",
                                         " ",
                                         "/",
                                         "\"",
                                         "\\",
                                         "\n",
                                         "\r",
                                         "\t",
                                         "\b",
                                         "\f",
                                         "\x01",
                                         "\x1f",
                                         "\x7f",
                                         "caf\xc3\xa9",
                                         "\xe2\x82\xac",
                                         "\xf0\x9f\x98\x80",
                                         "\xff",
                                         "\xc0\x80",
                                         "\x80",
                                         "\xed\xa0\x80",
                                         "\xe0\x80\x80",
                                         "\xf4\x90\x80\x80",
                                         "\xc3",
                                         "\xf5\x80\x80\x80",
                                         "key=value",
                                         "{}[],:",
                                         "\xef\xbf\xbf",
                                         "\xf4\x8f\xbf\xbf"};
    size_t len = 0, n = rnd(8);

    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *p = pieces[rnd(ARRAY_LEN(pieces))];
        if (len + strlen(p) + 1 > size)
            break;
        strcpy(buf + len, p);
        len += strlen(p);
    }
}

/* JSON lines are exactly what jansson dumped, for random events. */
START_TEST(test_log_json_matches_jansson)
{
    static const char *const keys[] = {"ts", "level", "msg",         "request_id", "x",
                                       "y",  "rows",  "caf\xc3\xa9", "component",  "event"};
    static const double reals[] = {0.0,
                                   -0.0,
                                   1.5,
                                   3.0,
                                   0.1,
                                   1e21,
                                   1e16,
                                   1e300,
                                   1e-300,
                                   5e-324,
                                   -2.5e-7,
                                   1e100,
                                   NAN,
                                   INFINITY,
                                   -INFINITY,
                                   123456789012345678.0,
                                   0.041999999999999996,
                                   1e-5};

    for (int iter = 0; iter < 2000; iter++) {
        char strs[8][64], event[64], reqid[64], msg[64];
        struct log_field f[6];
        size_t n = rnd(7);
        const char *ts_end;
        char ts[40], *out, *ref;

        rnd_string(event, sizeof(event));
        rnd_string(reqid, sizeof(reqid));
        rnd_string(msg, sizeof(msg));
        for (size_t i = 0; i < n; i++) {
            const char *key = keys[rnd(ARRAY_LEN(keys))];
            rnd_string(strs[i], sizeof(strs[i]));
            switch (rnd(4)) {
            case 0:
                f[i] = LF_STR(key, rnd(5) ? strs[i] : NULL);
                break;
            case 1:
                f[i] = LF_INT(key, rnd(3) == 0   ? LLONG_MIN
                                   : rnd(2) == 0 ? LLONG_MAX
                                                 : (long long)rnd(100000) - 50000);
                break;
            case 2:
                f[i] = LF_DBL(key, rnd(2) ? reals[rnd(ARRAY_LEN(reals))]
                                          : (double)rnd(1000000) / (double)(rnd(999) + 1));
                break;
            default:
                f[i] = LF_BOOL(key, rnd(2));
            }
        }
        int with_id = rnd(2), with_msg = rnd(2);
        cap_start(LOG_FORMAT_JSON, LOG_DEBUG);
        log_fields(LOG_WARN, event, with_id ? reqid : NULL, f, n, with_msg ? msg : NULL);
        out = cap_end();
        ck_assert_msg(strncmp(out, "{\"ts\":\"", 7) == 0, "%s", out);
        ts_end = strchr(out + 7, '"');
        ck_assert_ptr_nonnull(ts_end);
        snprintf(ts, sizeof(ts), "%.*s", (int)(ts_end - out - 7), out + 7);
        ref = ref_line(ts, "warn", event, with_id ? reqid : NULL, f, n, with_msg ? msg : NULL);
        ck_assert_ptr_nonnull(ref);
        ck_assert_msg(strlen(out) == strlen(ref) + 1 && strncmp(out, ref, strlen(ref)) == 0 &&
                          out[strlen(ref)] == '\n',
                      "iteration %d:\n got %s want %s", iter, out, ref);
        free(ref);
        free(out);
    }
}
END_TEST

START_TEST(test_log_level_filter)
{
    char *out;

    cap_start(LOG_FORMAT_TEXT, LOG_WARN);
    ck_assert(!log_enabled(LOG_INFO));
    ck_assert(log_enabled(LOG_WARN));
    log_msg(LOG_DEBUG, "dropped", "debug %d", 1);
    log_msg(LOG_INFO, "dropped", "info %d", 2);
    log_msg(LOG_WARN, "kept", "warn %d", 3);
    log_fields(LOG_ERROR, "kept", NULL, NULL, 0, NULL);
    out = cap_end();
    ck_assert_int_eq(count_lines(out), 2);
    ck_assert_ptr_null(strstr(out, "dropped"));
    ck_assert_ptr_nonnull(strstr(out, " WARN test-comp kept msg=\"warn 3\"\n"));
    ck_assert_ptr_nonnull(strstr(out, " ERROR test-comp kept\n"));
    free(out);
}
END_TEST

START_TEST(test_log_long_lines)
{
    char big[5000];
    char *out;
    json_t *j;

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cap_start(LOG_FORMAT_JSON, LOG_INFO);
    log_msg(LOG_INFO, "long", "%s|%s", big, big);
    LOG_EVENT(LOG_INFO, "long_field", NULL, NULL, LF_STR("v", big));
    out = cap_end();
    ck_assert_int_eq(count_lines(out), 2);
    j = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_uint_eq(strlen(json_string_value(json_object_get(j, "msg"))), 2 * strlen(big) + 1);
    json_decref(j);
    free(out);
}
END_TEST

START_TEST(test_log_parse)
{
    enum log_level l;
    enum log_format f;

    ck_assert_int_eq(log_level_parse("debug", &l), 0);
    ck_assert_int_eq(l, LOG_DEBUG);
    ck_assert_int_eq(log_level_parse("error", &l), 0);
    ck_assert_int_eq(l, LOG_ERROR);
    ck_assert_int_eq(log_level_parse("warn", &l), 0);
    ck_assert_int_eq(l, LOG_WARN);
    ck_assert_int_eq(log_level_parse("INFO", &l), -1);
    ck_assert_int_eq(log_level_parse("", &l), -1);
    ck_assert_int_eq(log_level_parse(NULL, &l), -1);
    ck_assert_int_eq(log_format_parse("json", &f), 0);
    ck_assert_int_eq(f, LOG_FORMAT_JSON);
    ck_assert_int_eq(log_format_parse("text", &f), 0);
    ck_assert_int_eq(f, LOG_FORMAT_TEXT);
    ck_assert_int_eq(log_format_parse("yaml", &f), -1);
}
END_TEST

#define LOG_THREADS 4
#define LOG_PER_THREAD 500

static void *log_thread(void *arg)
{
    long id = (long)arg;
    char pad[300];

    memset(pad, 'a' + (int)id, sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    for (int i = 0; i < LOG_PER_THREAD; i++)
        LOG_EVENT(LOG_INFO, "tick", NULL, pad, LF_INT("thread", id), LF_INT("i", i));
    return NULL;
}

/* Lines written concurrently never interleave: each one parses whole. */
START_TEST(test_log_threads_no_interleave)
{
    char path[] = "/tmp/ccgw-test-log.XXXXXX";
    int fd = mkstemp(path);
    pthread_t th[LOG_THREADS];
    FILE *f;
    char *line = NULL;
    size_t cap = 0;
    int n = 0, per[LOG_THREADS] = {0};

    ck_assert_int_ge(fd, 0);
    unlink(path);
    log_setup("threads", LOG_FORMAT_JSON, LOG_INFO, fd);
    for (long i = 0; i < LOG_THREADS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, log_thread, (void *)i), 0);
    for (int i = 0; i < LOG_THREADS; i++)
        pthread_join(th[i], NULL);
    log_setup(NULL, LOG_FORMAT_TEXT, LOG_INFO, 2);

    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    f = fdopen(fd, "r");
    ck_assert_ptr_nonnull(f);
    while (getline(&line, &cap, f) > 0) {
        json_t *j = json_loads(line, 0, NULL);
        ck_assert_msg(j != NULL, "line %d does not parse: %s", n, line);
        long id = (long)json_integer_value(json_object_get(j, "thread"));
        ck_assert(id >= 0 && id < LOG_THREADS);
        per[id]++;
        json_decref(j);
        n++;
    }
    free(line);
    fclose(f);
    ck_assert_int_eq(n, LOG_THREADS * LOG_PER_THREAD);
    for (int i = 0; i < LOG_THREADS; i++)
        ck_assert_int_eq(per[i], LOG_PER_THREAD);
}
END_TEST

#define ASYNC_THREADS 4
#define ASYNC_PER_THREAD 5000

/* Every 7th line is longer than a queue slot holds inline. */
static void *async_thread(void *arg)
{
    long id = (long)arg;
    char pad[2000];

    memset(pad, 'a' + (int)id, sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    for (int i = 0; i < ASYNC_PER_THREAD; i++)
        LOG_EVENT(LOG_INFO, "tick", NULL, i % 7 == 0 ? pad : pad + sizeof(pad) - 100,
                  LF_INT("thread", id), LF_INT("i", i));
    return NULL;
}

/* Check what was logged: every line parses, each thread's "i" counts up
 * without a gap when nothing was dropped (and strictly up otherwise). The
 * number of tick lines, and the sum of the "dropped" fields of log_dropped
 * lines, go to *ticks and *reported. */
static void check_async_lines(FILE *f, int *ticks, long long *reported, int gapless)
{
    char *line = NULL;
    size_t cap = 0;
    int next[ASYNC_THREADS] = {0};

    *ticks = 0;
    *reported = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *j = json_loads(line, 0, NULL);
        ck_assert_msg(j != NULL, "line %d does not parse: %.200s", *ticks, line);
        const char *event = json_string_value(json_object_get(j, "event"));
        if (strcmp(event, "log_dropped") == 0) {
            *reported += json_integer_value(json_object_get(j, "dropped"));
            json_decref(j);
            continue;
        }
        ck_assert_str_eq(event, "tick");
        long id = (long)json_integer_value(json_object_get(j, "thread"));
        int i = (int)json_integer_value(json_object_get(j, "i"));
        ck_assert(id >= 0 && id < ASYNC_THREADS);
        if (gapless)
            ck_assert_int_eq(i, next[id]);
        else
            ck_assert_int_ge(i, next[id]);
        next[id] = i + 1;
        (*ticks)++;
        json_decref(j);
    }
    free(line);
}

/* Through the writer thread, and on across its stop: complete, whole lines,
 * each thread's in order. */
START_TEST(test_log_async_complete_ordered)
{
    char path[] = "/tmp/ccgw-test-log.XXXXXX";
    int fd = mkstemp(path);
    pthread_t th[ASYNC_THREADS];
    uint64_t dropped0 = log_dropped();
    long long reported;
    int ticks;
    FILE *f;

    ck_assert_int_ge(fd, 0);
    unlink(path);
    log_setup("async", LOG_FORMAT_JSON, LOG_INFO, fd);
    /* Room for every line: nothing can be dropped. */
    ck_assert_int_eq(log_async_start(ASYNC_THREADS * ASYNC_PER_THREAD), 0);
    for (long i = 0; i < ASYNC_THREADS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, async_thread, (void *)i), 0);
    /* Stop while the threads log: their later lines, written directly,
     * still come after their queued ones. */
    struct timespec nap = {0, 2000000L};
    nanosleep(&nap, NULL);
    log_async_stop();
    for (int i = 0; i < ASYNC_THREADS; i++)
        pthread_join(th[i], NULL);
    log_async_stop(); /* a second stop is a no-op */
    log_setup(NULL, LOG_FORMAT_TEXT, LOG_INFO, 2);

    ck_assert_uint_eq(log_dropped(), dropped0);
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    f = fdopen(fd, "r");
    ck_assert_ptr_nonnull(f);
    check_async_lines(f, &ticks, &reported, 1);
    fclose(f);
    ck_assert_int_eq(ticks, ASYNC_THREADS * ASYNC_PER_THREAD);
    ck_assert_int_eq(reported, 0);
}
END_TEST

struct pipe_reader {
    int fd;
    FILE *out;
};

static void *read_pipe(void *arg)
{
    struct pipe_reader *r = arg;
    char buf[65536];
    ssize_t n;

    while ((n = read(r->fd, buf, sizeof(buf))) > 0)
        fwrite(buf, 1, (size_t)n, r->out);
    return NULL;
}

/* A writer stuck on a full pipe: callers do not wait, the lines that do not
 * fit are dropped, counted and reported, and the rest stay in order. */
START_TEST(test_log_async_overflow)
{
    int fds[2];
    pthread_t th, rd;
    struct pipe_reader r;
    uint64_t dropped0 = log_dropped(), dropped;
    long long reported;
    int ticks;

    ck_assert_int_eq(pipe(fds), 0);
    r.fd = fds[0];
    r.out = tmpfile();
    ck_assert_ptr_nonnull(r.out);
    log_setup("async", LOG_FORMAT_JSON, LOG_INFO, fds[1]);
    ck_assert_int_eq(log_async_start(8), 0);
    /* Nobody reads yet: the pipe fills, then the queue. */
    ck_assert_int_eq(pthread_create(&th, NULL, async_thread, (void *)0), 0);
    pthread_join(th, NULL);
    dropped = log_dropped() - dropped0;
    ck_assert_uint_gt(dropped, 0);
    ck_assert_int_eq(pthread_create(&rd, NULL, read_pipe, &r), 0);
    log_async_stop();
    log_setup(NULL, LOG_FORMAT_TEXT, LOG_INFO, 2);
    close(fds[1]);
    pthread_join(rd, NULL);
    close(fds[0]);

    rewind(r.out);
    check_async_lines(r.out, &ticks, &reported, 0);
    fclose(r.out);
    ck_assert_uint_eq(log_dropped() - dropped0, dropped);
    ck_assert_int_eq(ticks + (long long)dropped, ASYNC_PER_THREAD);
    ck_assert_int_eq(reported, (long long)dropped);
}
END_TEST

Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_log_text_shape);
    tcase_add_test(tc, test_log_text_quoting);
    tcase_add_test(tc, test_log_json_shape);
    tcase_add_test(tc, test_log_json_invalid_utf8);
    tcase_add_test(tc, test_log_json_matches_jansson);
    tcase_add_test(tc, test_log_level_filter);
    tcase_add_test(tc, test_log_long_lines);
    tcase_add_test(tc, test_log_parse);
    tcase_add_test(tc, test_log_threads_no_interleave);
    tcase_add_test(tc, test_log_async_complete_ordered);
    tcase_add_test(tc, test_log_async_overflow);
    suite_add_tcase(s, tc);
    return s;
}
