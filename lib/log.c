/* Structured logging. A line is formatted into a buffer owned by the calling
 * thread (on its stack unless the line is long), then either written with a
 * single write() under a mutex so that lines from threads never interleave,
 * or, once log_async_start() has run, queued for the writer thread. */
#include "log.h"
#include "sys.h"

#include <errno.h>
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

/* Serialises the writes of whole lines (or batches) to log_fd. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

/* Component names are published once and never changed or freed (the list
 * keeps every one reachable), so a line reads the current one without a
 * lock. log_setup() is rare; reconfiguring adds a few bytes. */
struct component {
    struct component *next; /* under log_lock */
    char name[LOG_COMPONENT_MAX];
};
static struct component component_default = {NULL, "ccgw"};
static struct component *components = &component_default; /* under log_lock */
static _Atomic(struct component *) log_component = &component_default;
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

/* Out of memory sets `cap` to `len`, so that every later add comes here
 * and is refused: the line stays a prefix of itself, never one with holes. */
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
        l->cap = l->len;
        return -1;
    }
    l->p = np;
    l->cap = cap;
    l->heap = 1;
    return 0;
}

static inline void line_add(struct line *l, const char *s, size_t n)
{
    if (l->len + n > l->cap && line_reserve(l, n) < 0)
        return;
    memcpy(l->p + l->len, s, n);
    l->len += n;
}

static inline void line_adds(struct line *l, const char *s)
{
    line_add(l, s, strlen(s));
}

static inline void line_addc(struct line *l, char c)
{
    if (l->len < l->cap)
        l->p[l->len++] = c;
    else
        line_add(l, &c, 1);
}

static void line_free(struct line *l)
{
    if (l->heap)
        free(l->p);
}

void log_setup(const char *component, enum log_format format, enum log_level min_level, int fd)
{
    const char *name = component ? component : "ccgw";
    struct component *c;

    pthread_mutex_lock(&log_lock);
    for (c = components; c; c = c->next)
        if (strncmp(c->name, name, sizeof(c->name) - 1) == 0 && strlen(name) < sizeof(c->name))
            break;
    if (!c && (c = calloc(1, sizeof(*c))) != NULL) {
        snprintf(c->name, sizeof(c->name), "%s", name);
        c->next = components;
        components = c;
    }
    if (c) /* out of memory: keep the previous name */
        atomic_store(&log_component, c);
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
    /* The part up to the seconds is formatted once per second per thread. */
    static _Thread_local time_t last_sec = -1;
    static _Thread_local char prefix[32];
    int64_t ms = sys_wall_ms();
    time_t sec = (time_t)(ms / 1000);
    int frac = (int)(ms % 1000);

    if (sec != last_sec) {
        struct tm tm;
        gmtime_r(&sec, &tm);
        snprintf(prefix, sizeof(prefix), "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        last_sec = sec;
    }
    if (size < 25)
        return;
    memcpy(buf, prefix, 20);
    buf[20] = (char)('0' + frac / 100);
    buf[21] = (char)('0' + frac / 10 % 10);
    buf[22] = (char)('0' + frac % 10);
    buf[23] = 'Z';
    buf[24] = '\0';
}

/* `v` in decimal, as "%lld" writes it, ending just before `end`. Returns
 * the start (a buffer of 21 bytes before `end` is enough). */
static const char *format_int(long long v, char *end)
{
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    char *p = end;

    *--p = '\0';
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    return p;
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
            text_pair(l, f->key, format_int(f->v.i, num + sizeof(num)));
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

/* JSON lines are written directly, byte for byte what jansson's
 * json_dumps(JSON_COMPACT) makes of the same object (insertion order,
 * strings escaped as jansson does, reals as "%.17g" with ".0" or a trimmed
 * exponent), without building the object: no allocation per field. */

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when invalid: no
 * overlong forms, surrogates or code points above U+10FFFF (jansson's rule). */
static size_t utf8_seq(const unsigned char *s)
{
    unsigned char u = s[0];
    size_t n;
    uint32_t v;

    if (u < 0x80)
        return 1;
    if (u >= 0xC2 && u <= 0xDF)
        n = 2, v = u & 0x1F;
    else if (u >= 0xE0 && u <= 0xEF)
        n = 3, v = u & 0x0F;
    else if (u >= 0xF0 && u <= 0xF4)
        n = 4, v = u & 0x07;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (n == 3 && v < 0x800) ||
        (n == 4 && v < 0x10000))
        return 0;
    return n;
}

static int utf8_valid(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    while (*u) {
        size_t n = utf8_seq(u);
        if (n == 0)
            return 0;
        u += n;
    }
    return 1;
}

/* Bytes that go into a JSON string as they are: printable ASCII but the
 * quote and the backslash (jansson escapes nothing else by default). */
static const unsigned char json_plain[256] = {
    [' '] = 1,
    ['!'] = 1,
    ['#' ... '['] = 1,
    [']' ... 0x7f] = 1,
};

/* A JSON string. JSON needs UTF-8, so a value that is not valid UTF-8 is
 * written with its non-ASCII bytes replaced by '?'. Plain runs are found
 * with a table and copied whole. Returns 1 when the string was not valid
 * UTF-8, else 0. */
static int json_str(struct line *l, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int lossy = -1; /* unknown until the first non-ASCII byte: most values have none */
    const unsigned char *u = (const unsigned char *)s, *run = u;

    line_addc(l, '"');
    for (;; u++) {
        const char *esc = NULL;
        char buf[6];
        size_t n = 2;

        while (json_plain[*u])
            u++;
        if (*u == 0)
            break;
        if (*u >= 0x80) {
            if (lossy < 0)
                lossy = !utf8_valid((const char *)u); /* all before it is ASCII */
            if (!lossy)
                continue;
        }
        line_add(l, (const char *)run, (size_t)(u - run));
        run = u + 1;
        switch (*u) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        default:
            if (*u >= 0x80) {
                esc = "?";
                n = 1;
            } else {
                memcpy(buf, "\\u00", 4);
                buf[4] = hex[*u >> 4];
                buf[5] = hex[*u & 15];
                esc = buf;
                n = 6;
            }
        }
        line_add(l, esc, n);
    }
    line_add(l, (const char *)run, (size_t)(u - run));
    line_addc(l, '"');
    return lossy > 0;
}

/* A JSON real as jansson writes it: "%.17g", ".0" appended when it has
 * neither '.' nor 'e', the exponent without '+' or leading zeros. */
static void json_real_out(struct line *l, double d)
{
    char buf[64], *e;
    int n = snprintf(buf, sizeof(buf) - 3, "%.17g", d);

    if (n < 0 || n >= (int)sizeof(buf) - 3)
        return;
    if (!strchr(buf, '.') && !strchr(buf, 'e')) {
        memcpy(buf + n, ".0", 3);
        n += 2;
    }
    e = strchr(buf, 'e');
    if (e) {
        char *start = e + 1, *end = e + 2;
        if (*start == '-')
            start++;
        while (*end == '0')
            end++;
        if (end != start) {
            memmove(start, end, (size_t)(buf + n - end) + 1);
            n -= (int)(end - start);
        }
    }
    line_add(l, buf, (size_t)n);
}

/* 1 when the key was not valid UTF-8 (jansson refuses such a key). */
static int json_key(struct line *l, const char *key, int first)
{
    int lossy;

    line_addc(l, first ? '{' : ',');
    lossy = json_str(l, key);
    line_addc(l, ':');
    return lossy;
}

static void json_field_value(struct line *l, const struct log_field *f)
{
    char num[32];

    switch (f->type) {
    case LOG_F_STR:
        json_str(l, f->v.s ? f->v.s : "");
        break;
    case LOG_F_INT:
        line_adds(l, format_int(f->v.i, num + sizeof(num)));
        break;
    case LOG_F_DOUBLE:
        /* JSON has no NaN or infinities: those go out as strings. */
        if (isfinite(f->v.d)) {
            json_real_out(l, f->v.d);
        } else {
            format_double(f->v.d, num, sizeof(num));
            json_str(l, num);
        }
        break;
    case LOG_F_BOOL:
        line_adds(l, f->v.b ? "true" : "false");
        break;
    }
}

/* Whether `key` is already in the line: a core key or an earlier field. */
static int json_key_taken(const char *key, const char *request_id, const struct log_field *fields,
                          size_t i)
{
    switch (key[0]) { /* the core keys */
    case 't':
        if (strcmp(key, "ts") == 0)
            return 1;
        break;
    case 'l':
        if (strcmp(key, "level") == 0)
            return 1;
        break;
    case 'c':
        if (strcmp(key, "component") == 0)
            return 1;
        break;
    case 'e':
        if (strcmp(key, "event") == 0)
            return 1;
        break;
    case 'r':
        if (request_id && strcmp(key, "request_id") == 0)
            return 1;
        break;
    }
    for (size_t k = 0; k < i; k++)
        if (fields[k].key && fields[k].key[0] == key[0] && strcmp(fields[k].key, key) == 0)
            return 1;
    return 0;
}

/* Core keys come first and win over a field of the same name. Returns 0, or
 * -1 out of memory (or a key that is not UTF-8, which jansson refused). */
static int format_json(struct line *l, const char *ts, enum log_level level, const char *component,
                       const char *event, const char *request_id, const struct log_field *fields,
                       size_t nfields, const char *msg)
{
    json_key(l, "ts", 1);
    json_str(l, ts);
    json_key(l, "level", 0);
    json_str(l, level_names[level]);
    json_key(l, "component", 0);
    json_str(l, component);
    json_key(l, "event", 0);
    json_str(l, event);
    if (request_id) {
        json_key(l, "request_id", 0);
        json_str(l, request_id);
    }
    for (size_t i = 0; i < nfields; i++) {
        const char *key = fields[i].key;
        if (!key || json_key_taken(key, request_id, fields, i) || (msg && strcmp(key, "msg") == 0))
            continue;
        if (json_key(l, key, 0))
            return -1;
        json_field_value(l, &fields[i]);
    }
    if (msg) {
        json_key(l, "msg", 0);
        json_str(l, msg);
    }
    line_addc(l, '}');
    line_addc(l, '\n');
    return l->oom ? -1 : 0;
}

static _Thread_local int writer_thread;

/* Write whole lines. The writer thread writes without the mutex: while it
 * runs nobody else writes directly, and log_async_stop() holds the mutex
 * until it has written everything queued, so that a line written directly
 * after the stop never overtakes a queued one of the same thread. */
static void write_line(const char *p, size_t len)
{
    if (writer_thread) {
        (void)sys_write_all(atomic_load(&log_fd), p, len);
        return;
    }
    pthread_mutex_lock(&log_lock);
    (void)sys_write_all(atomic_load(&log_fd), p, len); /* nowhere left to report a failure */
    pthread_mutex_unlock(&log_lock);
}

/* The asynchronous writer: a bounded multi-producer queue of lines (Dmitry
 * Vyukov's: each slot's sequence number says whether it is free for the
 * ticket `pos` or holds the line of ticket `pos`), drained in ticket order by
 * one thread that writes them in batches. A caller only claims a ticket with
 * a compare-and-swap and copies its line: no mutex, no system call. Lines
 * leave in ticket order, so each thread's lines stay in its order. */
#define SLOT_INLINE 480         /* longer lines are handed over on the heap */
#define BATCH_BYTES (64 * 1024) /* one write() per batch at most this big */
/* While lines flow the writer wakes every LOG_FLUSH_MS and writes what came
 * in meanwhile in one go (or sooner, woken by the caller that fills a
 * quarter of the queue): a few hundred wake-ups a second instead of one per
 * line or per short nap, each of which costs a timer, a context switch and
 * cold caches on a busy machine. A process killed at any instant loses at
 * most the lines queued since the last batch: about LOG_FLUSH_MS of them. */
#define LOG_FLUSH_MS 5
#define IDLE_WAIT_MS 100 /* idle: the first queued line wakes the writer */
#define SLEEP_BATCH 1    /* `sleeping`: waiting for the next batch */
#define SLEEP_IDLE 2     /* `sleeping`: nothing came for a whole interval */

struct slot {
    _Atomic size_t seq;
    size_t len;
    char *heap; /* NULL: the line is in `data` */
    char data[SLOT_INLINE];
};

static struct {
    struct slot *slots;
    size_t mask;
    _Alignas(64) _Atomic size_t head; /* next ticket to claim */
    _Alignas(64) _Atomic size_t tail; /* next ticket to write; set by the writer only */
    size_t wake_mark;                 /* queued lines that wake a batch-sleeping writer */
    _Alignas(64) atomic_int users;    /* callers inside async_put() */
    _Atomic uint64_t dropped, reported;
    atomic_int on, stop;
    /* The writer waits on `wake`. A caller takes `wake_lock` to signal it
     * only when it sleeps idle, or when a quarter of the queue is taken. */
    _Alignas(64) atomic_int sleeping;
    pthread_mutex_t wake_lock;
    pthread_cond_t wake;
    pthread_t thread;
} q = {.wake_lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

/* Wake the writer if it waits. */
static void writer_wake(void)
{
    if (!atomic_load(&q.sleeping))
        return;
    pthread_mutex_lock(&q.wake_lock);
    atomic_store(&q.sleeping, 0);
    pthread_cond_signal(&q.wake);
    pthread_mutex_unlock(&q.wake_lock);
}

/* After queueing ticket `pos`: wake a writer that sleeps idle, or one that
 * waits for its next batch while a quarter of the queue is taken. A stale
 * `tail` only makes the wake-up later, never lost: the batch wait is timed. */
static void writer_nudge(size_t pos)
{
    int s = atomic_load(&q.sleeping);

    if (s == SLEEP_IDLE ||
        (s == SLEEP_BATCH &&
         pos + 1 - atomic_load_explicit(&q.tail, memory_order_relaxed) >= q.wake_mark))
        writer_wake();
}

/* Queue the line; 1 when queued or dropped (counted), 0 when the writer is
 * off and the caller writes it itself. Takes over l->p when on the heap. */
static int async_put(struct line *l)
{
    struct slot *s;
    size_t pos;

    /* `users` and `on` pair with log_async_stop(): either it sees this
     * caller inside, or this caller sees the writer off (both seq_cst). */
    if (writer_thread)
        return 0; /* the writer's own lines (drop reports) go straight out */
    atomic_fetch_add(&q.users, 1);
    if (!atomic_load(&q.on)) {
        atomic_fetch_sub(&q.users, 1);
        return 0;
    }
    pos = atomic_load_explicit(&q.head, memory_order_relaxed);
    for (;;) {
        s = &q.slots[pos & q.mask];
        size_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
        intptr_t dif = (intptr_t)seq - (intptr_t)pos;
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&q.head, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed))
                break;
        } else if (dif < 0) {
            atomic_fetch_add_explicit(&q.dropped, 1, memory_order_relaxed);
            atomic_fetch_sub(&q.users, 1);
            return 1;
        } else {
            pos = atomic_load_explicit(&q.head, memory_order_relaxed);
        }
    }
    s->len = l->len;
    s->heap = NULL;
    if (l->len <= SLOT_INLINE) {
        memcpy(s->data, l->p, l->len);
    } else if (l->heap) {
        s->heap = l->p;
        l->heap = 0;
    } else if ((s->heap = malloc(l->len)) != NULL) {
        memcpy(s->heap, l->p, l->len);
    } else {
        s->len = 0; /* out of memory: the line is lost, and counted */
        atomic_fetch_add_explicit(&q.dropped, 1, memory_order_relaxed);
    }
    atomic_store(&s->seq, pos + 1);
    atomic_fetch_sub_explicit(&q.users, 1, memory_order_release);
    writer_nudge(pos);
    return 1;
}

static void batch_flush(char *batch, size_t *len)
{
    if (*len)
        write_line(batch, *len);
    *len = 0;
}

/* Move ready lines into `batch`, writing whenever it fills; the number of
 * lines taken. A claimed slot whose line is still being copied ends the
 * round (it is taken next time, in order). */
static size_t drain(char *batch, size_t *blen)
{
    size_t n = 0, t = atomic_load_explicit(&q.tail, memory_order_relaxed);

    for (;;) {
        struct slot *s = &q.slots[t & q.mask];
        if (atomic_load_explicit(&s->seq, memory_order_acquire) != t + 1)
            break;
        const char *p = s->heap ? s->heap : s->data;
        if (*blen + s->len > BATCH_BYTES)
            batch_flush(batch, blen);
        if (s->len > BATCH_BYTES)
            write_line(p, s->len);
        else {
            memcpy(batch + *blen, p, s->len);
            *blen += s->len;
        }
        free(s->heap);
        s->heap = NULL;
        atomic_store_explicit(&s->seq, t + q.mask + 1, memory_order_release);
        atomic_store_explicit(&q.tail, ++t, memory_order_relaxed);
        n++;
    }
    return n;
}

/* Say how many lines were dropped since the last report, in a line written
 * directly (never queued, so never dropped) after the batch it follows. */
static void report_drops(char *batch, size_t *blen)
{
    uint64_t d = atomic_load_explicit(&q.dropped, memory_order_relaxed);
    uint64_t r = atomic_load_explicit(&q.reported, memory_order_relaxed);
    char msg[128];

    if (d == r)
        return;
    atomic_store_explicit(&q.reported, d, memory_order_relaxed);
    batch_flush(batch, blen);
    snprintf(msg, sizeof(msg), "%llu log lines dropped: the log queue was full (%llu in all)",
             (unsigned long long)(d - r), (unsigned long long)d);
    LOG_EVENT(LOG_ERROR, "log_dropped", NULL, msg, LF_INT("dropped", d - r),
              LF_INT("dropped_total", d));
}

/* Wait for the next batch (`how` SLEEP_BATCH: LOG_FLUSH_MS, or until a
 * quarter of the queue is taken) or, idle, for the first line (SLEEP_IDLE:
 * until a caller queues one, or IDLE_WAIT_MS). `sleeping` is set before
 * the queue is checked once more, and a caller checks it after publishing
 * its line (both seq_cst): one of the two sees the other, so an idle
 * writer never misses a line. */
static void writer_wait(int how)
{
    struct timespec until;
    size_t t = atomic_load(&q.tail);
    int ready;

    atomic_store(&q.sleeping, how);
    if (how == SLEEP_IDLE)
        ready = atomic_load(&q.slots[t & q.mask].seq) == t + 1;
    else
        ready = atomic_load(&q.head) - t >= q.wake_mark;
    if (ready || atomic_load(&q.stop)) {
        atomic_store(&q.sleeping, 0);
        return;
    }
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += (how == SLEEP_IDLE ? IDLE_WAIT_MS : LOG_FLUSH_MS) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&q.wake_lock);
    while (atomic_load(&q.sleeping) && !atomic_load(&q.stop))
        if (pthread_cond_timedwait(&q.wake, &q.wake_lock, &until) != 0)
            break;
    atomic_store(&q.sleeping, 0);
    pthread_mutex_unlock(&q.wake_lock);
}

static void *writer(void *arg)
{
    static char batch[BATCH_BYTES];
    size_t blen = 0;

    (void)arg;
    writer_thread = 1;
    for (;;) {
        int stopping = atomic_load(&q.stop);
        size_t n = drain(batch, &blen);
        batch_flush(batch, &blen);
        report_drops(batch, &blen);
        /* Stopping: nothing is queued any more (log_async_stop() waited for
         * the callers inside); done once every ticket is written. */
        if (stopping) {
            struct timespec ts = {0, 100000L};
            if (atomic_load(&q.tail) == atomic_load(&q.head))
                break;
            nanosleep(&ts, NULL);
            continue;
        }
        writer_wait(n ? SLEEP_BATCH : SLEEP_IDLE);
    }
    return NULL;
}

int log_async_start(size_t slots)
{
    size_t n = 1;

    if (atomic_load(&q.on))
        return 0;
    while (n < slots)
        n <<= 1;
    q.slots = calloc(n, sizeof(*q.slots));
    if (!q.slots)
        return -1;
    for (size_t i = 0; i < n; i++)
        atomic_init(&q.slots[i].seq, i);
    q.mask = n - 1;
    q.wake_mark = n / 4 ? n / 4 : 1;
    atomic_store(&q.head, 0);
    atomic_store(&q.tail, 0);
    atomic_store(&q.stop, 0);
    if (pthread_create(&q.thread, NULL, writer, NULL) != 0) {
        free(q.slots);
        q.slots = NULL;
        return -1;
    }
    atomic_store_explicit(&q.on, 1, memory_order_release);
    return 0;
}

void log_async_stop(void)
{
    if (!atomic_load(&q.on))
        return;
    /* New lines are written directly from now on, but only once the mutex
     * is free again: callers already inside async_put() finish queueing,
     * then the writer writes everything queued, then the mutex opens. */
    pthread_mutex_lock(&log_lock);
    atomic_store(&q.on, 0);
    while (atomic_load(&q.users) > 0) {
        struct timespec ts = {0, 100000L};
        nanosleep(&ts, NULL);
    }
    atomic_store(&q.stop, 1);
    writer_wake();
    pthread_join(q.thread, NULL);
    free(q.slots);
    q.slots = NULL;
    pthread_mutex_unlock(&log_lock);
}

uint64_t log_dropped(void)
{
    return atomic_load(&q.dropped);
}

void log_fields(enum log_level level, const char *event, const char *request_id,
                const struct log_field *fields, size_t nfields, const char *msg)
{
    char stack[LOG_STACK_LINE], ts[32];
    const char *component = atomic_load(&log_component)->name;
    struct line l;

    if (level < LOG_DEBUG || level > LOG_ERROR || !log_enabled(level))
        return;
    if (!event)
        event = "log";
    format_timestamp(ts, sizeof(ts));

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

    if (!async_put(&l))
        write_line(l.p, l.len);
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
