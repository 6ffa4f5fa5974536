/* Structured logging. A line is formatted into a buffer owned by the calling
 * thread (on its stack unless the line is long), then written with a single
 * write() under a mutex so that lines from threads never interleave. */
#include "log.h"
#include "sys.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_COMPONENT_MAX 64
#define LOG_STACK_LINE 1024

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_component[LOG_COMPONENT_MAX] = "ccgw"; /* under log_lock */
static atomic_int log_min_level = LOG_INFO;
static atomic_int log_format_cur = LOG_FORMAT_TEXT;
static atomic_int log_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const level_upper[] = {"DEBUG", "INFO", "WARN", "ERROR"};

/* A line under construction: starts in caller-provided stack storage, moves
 * to the heap when it outgrows it. On out-of-memory the line is truncated and
 * `oom` set; logging never fails its caller. */
struct line {
    char *p;
    size_t len, cap;
    int heap, oom;
};

static void line_init(struct line *l, char *stack, size_t size)
{
    l->p = stack;
    l->len = 0;
    l->cap = size;
    l->heap = 0;
    l->oom = 0;
}

static int line_reserve(struct line *l, size_t more)
{
    size_t cap = l->cap;
    char *np;

    if (l->oom)
        return -1;
    if (l->len + more <= l->cap)
        return 0;
    while (cap < l->len + more)
        cap *= 2;
    if (l->heap) {
        np = realloc(l->p, cap);
    } else {
        np = malloc(cap);
        if (np)
            memcpy(np, l->p, l->len);
    }
    if (!np) {
        l->oom = 1;
        return -1;
    }
    l->p = np;
    l->cap = cap;
    l->heap = 1;
    return 0;
}

static void line_add(struct line *l, const char *s, size_t n)
{
    if (line_reserve(l, n) < 0)
        return;
    memcpy(l->p + l->len, s, n);
    l->len += n;
}

static void line_adds(struct line *l, const char *s)
{
    line_add(l, s, strlen(s));
}

static void line_addc(struct line *l, char c)
{
    line_add(l, &c, 1);
}

static void line_free(struct line *l)
{
    if (l->heap)
        free(l->p);
}

void log_setup(const char *component, enum log_format format, enum log_level min_level, int fd)
{
    pthread_mutex_lock(&log_lock);
    snprintf(log_component, sizeof(log_component), "%s", component ? component : "ccgw");
    pthread_mutex_unlock(&log_lock);
    atomic_store(&log_format_cur, (int)format);
    atomic_store(&log_min_level, (int)min_level);
    atomic_store(&log_fd, fd);
}

int log_level_parse(const char *s, enum log_level *out)
{
    for (int i = LOG_DEBUG; i <= LOG_ERROR; i++) {
        if (s && strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

int log_format_parse(const char *s, enum log_format *out)
{
    if (s && strcmp(s, "text") == 0)
        *out = LOG_FORMAT_TEXT;
    else if (s && strcmp(s, "json") == 0)
        *out = LOG_FORMAT_JSON;
    else
        return -1;
    return 0;
}

int log_enabled(enum log_level level)
{
    return (int)level >= atomic_load_explicit(&log_min_level, memory_order_relaxed);
}

/* "2026-11-21T10:22:33.685Z" (24 chars) into buf. */
static void format_timestamp(char *buf, size_t size)
{
    int64_t ms = sys_wall_ms();
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&sec, &tm);
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* Shortest "%.Ng" that reads back as the same double. */
static void format_double(double d, char *buf, size_t size)
{
    if (isnan(d)) {
        snprintf(buf, size, "NaN");
        return;
    }
    if (isinf(d)) {
        snprintf(buf, size, d > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

/* Text values are bare unless they are empty or contain a space, a quote, an
 * '=', a backslash or a control character; then they are quoted with C-style
 * escapes, so every line splits unambiguously into key=value pairs. */
static void text_value(struct line *l, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u;
    int quote = *s == '\0';

    for (u = (const unsigned char *)s; *u && !quote; u++)
        quote = *u <= ' ' || *u == '"' || *u == '=' || *u == '\\' || *u == 0x7f;
    if (!quote) {
        line_adds(l, s);
        return;
    }
    line_addc(l, '"');
    for (u = (const unsigned char *)s; *u; u++) {
        switch (*u) {
        case '"':
            line_add(l, "\\\"", 2);
            break;
        case '\\':
            line_add(l, "\\\\", 2);
            break;
        case '\n':
            line_add(l, "\\n", 2);
            break;
        case '\r':
            line_add(l, "\\r", 2);
            break;
        case '\t':
            line_add(l, "\\t", 2);
            break;
        default:
            if (*u < ' ' || *u == 0x7f) {
                char esc[4] = {'\\', 'x', hex[*u >> 4], hex[*u & 15]};
                line_add(l, esc, sizeof(esc));
            } else {
                line_addc(l, (char)*u);
            }
        }
    }
    line_addc(l, '"');
}

static void text_pair(struct line *l, const char *key, const char *value)
{
    line_addc(l, ' ');
    line_adds(l, key);
    line_addc(l, '=');
    text_value(l, value);
}

static void format_text(struct line *l, const char *ts, enum log_level level, const char *component,
                        const char *event, const char *request_id, const struct log_field *fields,
                        size_t nfields, const char *msg)
{
    char num[32];

    line_adds(l, ts);
    line_addc(l, ' ');
    line_adds(l, level_upper[level]);
    line_addc(l, ' ');
    line_adds(l, component);
    line_addc(l, ' ');
    line_adds(l, event);
    if (request_id)
        text_pair(l, "request_id", request_id);
    for (size_t i = 0; i < nfields; i++) {
        const struct log_field *f = &fields[i];
        switch (f->type) {
        case LOG_F_STR:
            text_pair(l, f->key, f->v.s ? f->v.s : "");
            break;
        case LOG_F_INT:
            snprintf(num, sizeof(num), "%lld", f->v.i);
            text_pair(l, f->key, num);
            break;
        case LOG_F_DOUBLE:
            format_double(f->v.d, num, sizeof(num));
            text_pair(l, f->key, num);
            break;
        case LOG_F_BOOL:
            text_pair(l, f->key, f->v.b ? "true" : "false");
            break;
        }
    }
    if (msg)
        text_pair(l, "msg", msg);
    line_addc(l, '\n');
}

/* A JSON string from arbitrary bytes: JSON needs UTF-8, so a value that is
 * not valid UTF-8 is logged with its non-ASCII bytes replaced by '?'. */
static json_t *json_str_lossy(const char *s)
{
    json_t *j = json_string(s ? s : "");
    char *copy;

    if (j || !s)
        return j;
    copy = strdup(s);
    if (!copy)
        return NULL;
    for (char *c = copy; *c; c++)
        if ((unsigned char)*c >= 0x80)
            *c = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

static json_t *json_field_value(const struct log_field *f)
{
    char num[32];

    switch (f->type) {
    case LOG_F_STR:
        return json_str_lossy(f->v.s);
    case LOG_F_INT:
        return json_integer(f->v.i);
    case LOG_F_DOUBLE:
        /* JSON has no NaN or infinities: those go out as strings. */
        if (isfinite(f->v.d))
            return json_real(f->v.d);
        format_double(f->v.d, num, sizeof(num));
        return json_string(num);
    case LOG_F_BOOL:
        return json_boolean(f->v.b);
    }
    return NULL;
}

static int json_line_cb(const char *buffer, size_t size, void *data)
{
    struct line *l = data;

    line_add(l, buffer, size);
    return l->oom ? -1 : 0;
}

/* Core keys come first and win over a field of the same name. Returns 0, or
 * -1 out of memory. */
static int format_json(struct line *l, const char *ts, enum log_level level, const char *component,
                       const char *event, const char *request_id, const struct log_field *fields,
                       size_t nfields, const char *msg)
{
    json_t *o = json_object();
    int rc = -1;

    if (!o)
        goto fail;
    if (json_object_set_new(o, "ts", json_string(ts)) < 0 ||
        json_object_set_new(o, "level", json_string(level_names[level])) < 0 ||
        json_object_set_new(o, "component", json_str_lossy(component)) < 0 ||
        json_object_set_new(o, "event", json_str_lossy(event)) < 0)
        goto fail;
    if (request_id && json_object_set_new(o, "request_id", json_str_lossy(request_id)) < 0)
        goto fail;
    for (size_t i = 0; i < nfields; i++) {
        const char *key = fields[i].key;
        if (!key || json_object_get(o, key) || (msg && strcmp(key, "msg") == 0))
            continue;
        if (json_object_set_new(o, key, json_field_value(&fields[i])) < 0)
            goto fail;
    }
    if (msg && json_object_set_new(o, "msg", json_str_lossy(msg)) < 0)
        goto fail;
    if (json_dump_callback(o, json_line_cb, l, JSON_COMPACT) < 0)
        goto fail;
    line_addc(l, '\n');
    rc = l->oom ? -1 : 0;
fail:
    json_decref(o);
    return rc;
}

void log_fields(enum log_level level, const char *event, const char *request_id,
                const struct log_field *fields, size_t nfields, const char *msg)
{
    char stack[LOG_STACK_LINE], ts[32], component[LOG_COMPONENT_MAX];
    struct line l;
    int fd;

    if (level < LOG_DEBUG || level > LOG_ERROR || !log_enabled(level))
        return;
    if (!event)
        event = "log";
    format_timestamp(ts, sizeof(ts));
    pthread_mutex_lock(&log_lock);
    memcpy(component, log_component, sizeof(component));
    pthread_mutex_unlock(&log_lock);

    line_init(&l, stack, sizeof(stack));
    if (atomic_load(&log_format_cur) == LOG_FORMAT_JSON) {
        if (format_json(&l, ts, level, component, event, request_id, fields, nfields, msg) < 0) {
            /* Out of memory: still say something, in the same format. */
            line_free(&l);
            line_init(&l, stack, sizeof(stack));
            snprintf(stack, sizeof(stack),
                     "{\"ts\":\"%s\",\"level\":\"error\",\"event\":\"log_oom\"}\n", ts);
            l.len = strlen(stack);
        }
    } else {
        format_text(&l, ts, level, component, event, request_id, fields, nfields, msg);
        if (l.oom && l.len > 0)
            l.p[l.len - 1] = '\n'; /* truncated: still end the line */
    }

    pthread_mutex_lock(&log_lock);
    fd = atomic_load(&log_fd);
    (void)sys_write_all(fd, l.p, l.len); /* nowhere left to report a failure */
    pthread_mutex_unlock(&log_lock);
    line_free(&l);
}

void log_msg(enum log_level level, const char *event, const char *fmt, ...)
{
    char stack[512];
    char *msg = stack;
    va_list ap;
    int n;

    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    n = vsnprintf(stack, sizeof(stack), fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof(stack)) {
        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
            msg = stack; /* out of memory: log the truncated message */
        va_end(ap);
    } else if (n < 0) {
        stack[0] = '\0';
    }
    log_fields(level, event, NULL, NULL, 0, msg);
    if (msg != stack)
        free(msg);
}
