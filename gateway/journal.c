/* The local journal: see journal.h for the files. Every file that must
 * survive a crash intact (instance, state, flush intents) is written to a
 * temp file, fsynced, renamed over the final name and the folder fsynced;
 * journal generations are appended and fdatasync'ed by the caller's clock. */
#include "journal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pthread.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "log.h"
#include "sys.h"

#define STATE_MAGIC "ccgw-journal-state 1"
#define INTENT_MAGIC "ccgw-flush-intent 1"
#define CHECK_HEX 8

journal_crash_fn journal_crash_hook;

struct journal {
    char *dir;
    int dirfd;
    char instance[JOURNAL_INSTANCE_LEN + 1];
    int lockfd;            /* "lock", flock'ed while open: one process per journal */
    int fd;                /* current generation, append-only */
    int64_t gen;           /* current generation */
    int64_t oldest_gen;    /* lowest generation that may still be on disk */
    int64_t size;          /* bytes in the current generation */
    int64_t old_bytes;     /* bytes in older generations still on disk */
    int64_t committed_seq; /* last committed flush (state file) */
    int64_t covered_gen;   /* generations <= this are committed or in an intent */
    int64_t intent_seq;    /* 0: no intent on disk */
    int64_t intent_gen;
    int64_t next_seq;
    int64_t base_bytes; /* size of the last compaction's output */
    char *cursor;       /* newest cursor: appended, an intent's or recovered (NULL: none) */
    /* The cursor of the intent on disk, and of the last committed flush (the
     * state's "flushed" line): PostgreSQL holds every delta counted before
     * it. A damaged first group resumes there. */
    char *intent_cursor;
    char *flushed_cursor;
    int has_flushed_cursor; /* the state file has the line (older ones do not) */
};

/* Damaged records found by journal_open in this process, for /metrics. */
static pthread_mutex_t distrust_lock = PTHREAD_MUTEX_INITIALIZER;
static struct journal_distrust distrust_seen;

/* A growable text buffer for records. */
struct buf {
    char *p;
    size_t len, cap;
};

static int crash_point(const char *step)
{
    return journal_crash_hook && journal_crash_hook(step);
}

static int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int buf_printf(struct buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return -1;
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return 0;
        }
        size_t ncap = b->cap ? b->cap * 2 : 4096;
        while (ncap - b->len <= (size_t)n)
            ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (!np)
            return -1;
        b->p = np;
        b->cap = ncap;
    }
}

/* First 4 bytes of SHA-256(text[0..len)) as 8 lower-case hex digits. */
static int record_check(const char *text, size_t len, char out[CHECK_HEX + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(text, len, md, &mdlen, EVP_sha256(), NULL) || mdlen < CHECK_HEX / 2)
        return -1;
    for (int i = 0; i < CHECK_HEX / 2; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

static int word_ok(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (isspace((unsigned char)*s) || iscntrl((unsigned char)*s))
            return 0;
    return 1;
}

/* Append one record line "<fields> <check>\n" for row r. */
static int record_format(struct buf *b, const struct counter_delta *r)
{
    size_t start = b->len;
    int rc;
    if (r->chain) {
        if (!word_ok(r->chain) || !word_ok(r->account))
            return -1;
        rc = buf_printf(b, "R %" PRId64 " %s %s %" PRId64, r->bucket, r->chain, r->account, r->n);
    } else {
        const char *reason = counter_reason_name((enum non_relay_reason)r->reason);
        if (!reason)
            return -1;
        rc = buf_printf(b, "N %" PRId64 " %s %" PRId64, r->bucket, reason, r->n);
    }
    char check[CHECK_HEX + 1];
    if (rc < 0 || record_check(b->p + start, b->len - start, check) < 0)
        return -1;
    return buf_printf(b, " %s\n", check);
}

static int parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

/* Parse one record line (without its newline, NUL-terminated and writable)
 * and push it to d. 0, -1 when the record is malformed or its check fails,
 * -2 out of memory. */
static int record_parse(char *line, size_t len, struct counter_deltas *d)
{
    char *sp = memrchr(line, ' ', len);
    if (!sp || (size_t)(line + len - sp - 1) != CHECK_HEX)
        return -1;
    char check[CHECK_HEX + 1];
    if (record_check(line, (size_t)(sp - line), check) < 0 || memcmp(check, sp + 1, CHECK_HEX))
        return -1;
    *sp = '\0';
    char *f[5];
    int nf = 0;
    char *save = NULL;
    for (char *t = strtok_r(line, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        if (nf == 5)
            return -1;
        f[nf++] = t;
    }
    int64_t bucket, n;
    if (nf == 5 && strcmp(f[0], "R") == 0) {
        if (parse_i64(f[1], &bucket) < 0 || parse_i64(f[4], &n) < 0)
            return -1;
        return counter_deltas_push(d, f[2], f[3], -1, bucket, n) < 0 ? -2 : 0;
    }
    if (nf == 4 && strcmp(f[0], "N") == 0) {
        int reason = counter_reason_parse(f[2]);
        if (reason < 0 || parse_i64(f[1], &bucket) < 0 || parse_i64(f[3], &n) < 0)
            return -1;
        return counter_deltas_push(d, NULL, NULL, reason, bucket, n) < 0 ? -2 : 0;
    }
    return -1;
}

/* The first line of a compacted generation: "C <first> <last> <check>",
 * saying that it replaces generations first..last. */
static int compact_header_format(struct buf *b, int64_t first, int64_t last)
{
    size_t start = b->len;
    char check[CHECK_HEX + 1];
    if (buf_printf(b, "C %" PRId64 " %" PRId64, first, last) < 0 ||
        record_check(b->p + start, b->len - start, check) < 0)
        return -1;
    return buf_printf(b, " %s\n", check);
}

/* Parse a compaction header line (len bytes, no newline). 0 when it is one
 * with a good check, -1 otherwise. */
static int compact_header_parse(const char *line, size_t len, int64_t *first, int64_t *last)
{
    char check[CHECK_HEX + 1], copy[96];
    long long a, b;
    int n = 0;
    if (len < 2 || len >= sizeof(copy) || line[0] != 'C' || line[1] != ' ')
        return -1;
    memcpy(copy, line, len);
    copy[len] = '\0';
    char *sp = strrchr(copy, ' ');
    if (!sp || strlen(sp + 1) != CHECK_HEX || record_check(copy, (size_t)(sp - copy), check) < 0 ||
        memcmp(check, sp + 1, CHECK_HEX))
        return -1;
    *sp = '\0';
    if (sscanf(copy, "C %lld %lld%n", &a, &b, &n) != 2 || copy[n] != '\0' || a < 0 || b < a)
        return -1;
    *first = a;
    *last = b;
    return 0;
}

/* A cursor is one word of printable ASCII (no space), at most
 * JOURNAL_CURSOR_MAX bytes; "-" stands for "no cursor". */
static int cursor_ok(const char *c)
{
    size_t n = 0;
    for (; c[n]; n++)
        if (n >= JOURNAL_CURSOR_MAX || c[n] <= ' ' || c[n] > '~')
            return 0;
    return n > 0;
}

/* "P <cursor> <check>": the deltas of the group before it are committed,
 * and the caller had counted up to <cursor> when it took them. */
static int cursor_record_format(struct buf *b, const char *cursor)
{
    size_t start = b->len;
    char check[CHECK_HEX + 1];
    if (buf_printf(b, "P %s", cursor ? cursor : "-") < 0 ||
        record_check(b->p + start, b->len - start, check) < 0)
        return -1;
    return buf_printf(b, " %s\n", check);
}

/* A "P" record or a generation header "H 2" (len bytes, no newline, check
 * verified). Returns 'P' (then *cursor points at the cursor inside line,
 * NUL-terminated, or is NULL for "-"), 'H', or 0 when it is neither. */
static int marker_parse(char *line, size_t len, char **cursor)
{
    char check[CHECK_HEX + 1];
    if (len < 4 || (line[0] != 'P' && line[0] != 'H') || line[1] != ' ')
        return 0;
    char *sp = memrchr(line, ' ', len);
    if (!sp || sp == line + 1 || (size_t)(line + len - sp - 1) != CHECK_HEX ||
        record_check(line, (size_t)(sp - line), check) < 0 || memcmp(check, sp + 1, CHECK_HEX))
        return 0;
    *sp = '\0';
    if (line[0] == 'H')
        return strcmp(line, "H 2") == 0 ? 'H' : 0;
    char *c = line + 2;
    if (!cursor_ok(c))
        return 0;
    *cursor = strcmp(c, "-") == 0 ? NULL : c;
    return 'P';
}

static int set_cursor(char **slot, const char *cursor)
{
    char *copy = NULL;
    if (cursor && !(copy = strdup(cursor)))
        return -1;
    free(*slot);
    *slot = copy;
    return 0;
}

/* Read a whole file (relative to dirfd) into a NUL-terminated buffer. */
static int read_file_at(int dirfd, const char *name, char **out, size_t *len, char *err,
                        size_t errlen)
{
    struct buf b = {0};
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        sys_set_err(err, errlen, "%s: %s", name, strerror(errno));
        return -1;
    }
    for (;;) {
        if (b.cap - b.len < 4096) {
            size_t ncap = b.cap ? b.cap * 2 : 8192;
            char *np = realloc(b.p, ncap);
            if (!np) {
                sys_set_err(err, errlen, "%s: out of memory", name);
                goto fail;
            }
            b.p = np;
            b.cap = ncap;
        }
        ssize_t n = read(fd, b.p + b.len, b.cap - b.len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            sys_set_err(err, errlen, "%s: read: %s", name, strerror(errno));
            goto fail;
        }
        if (n == 0)
            break;
        b.len += (size_t)n;
    }
    close(fd);
    b.p[b.len] = '\0';
    *out = b.p;
    *len = b.len;
    return 0;
fail:
    close(fd);
    free(b.p);
    return -1;
}

/* Write `name` atomically: temp file, fsync, rename, fsync of the folder.
 * `crash_step` (or NULL) names the crash point between fsync and rename.
 * 0, -1 with err, or JOURNAL_CRASHED. */
static int write_atomic(journal_t *j, const char *name, const char *data, size_t len,
                        const char *crash_step, char *err, size_t errlen)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s.tmp", name);
    int fd = openat(j->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        sys_set_err(err, errlen, "%s/%s: %s", j->dir, tmp, strerror(errno));
        return -1;
    }
    if (sys_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
        sys_set_err(err, errlen, "%s/%s: write: %s", j->dir, tmp, strerror(errno));
        close(fd);
        goto fail;
    }
    if (close(fd) < 0) {
        sys_set_err(err, errlen, "%s/%s: close: %s", j->dir, tmp, strerror(errno));
        goto fail;
    }
    if (crash_step && crash_point(crash_step))
        return JOURNAL_CRASHED;
    if (renameat(j->dirfd, tmp, j->dirfd, name) < 0) {
        sys_set_err(err, errlen, "%s/%s: rename: %s", j->dir, name, strerror(errno));
        goto fail;
    }
    if (fsync(j->dirfd) < 0) {
        sys_set_err(err, errlen, "%s: fsync: %s", j->dir, strerror(errno));
        return -1;
    }
    return 0;
fail:
    unlinkat(j->dirfd, tmp, 0);
    return -1;
}

static int load_instance(journal_t *j, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    if (faccessat(j->dirfd, "instance", F_OK, 0) == 0) {
        if (read_file_at(j->dirfd, "instance", &text, &len, err, errlen) < 0)
            return -1;
        while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
            text[--len] = '\0';
        int ok = len == JOURNAL_INSTANCE_LEN;
        for (size_t i = 0; ok && i < len; i++)
            ok = isxdigit((unsigned char)text[i]) && !isupper((unsigned char)text[i]);
        if (!ok) {
            sys_set_err(err, errlen, "%s/instance:1:1: expected %d lower-case hex digits", j->dir,
                        JOURNAL_INSTANCE_LEN);
            free(text);
            return -1;
        }
        memcpy(j->instance, text, JOURNAL_INSTANCE_LEN + 1);
        free(text);
        return 0;
    }
    unsigned char raw[JOURNAL_INSTANCE_LEN / 2];
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        sys_set_err(err, errlen, "%s/instance: no random bytes", j->dir);
        return -1;
    }
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(j->instance + 2 * i, 3, "%02x", raw[i]);
    char line[JOURNAL_INSTANCE_LEN + 2];
    snprintf(line, sizeof(line), "%s\n", j->instance);
    return write_atomic(j, "instance", line, strlen(line), NULL, err, errlen);
}

/* "key value" header line of the state and intent files. */
static int header_i64(char **cursor, const char *key, int64_t *out)
{
    char *line = *cursor, *nl = strchr(line, '\n');
    if (!nl)
        return -1;
    *nl = '\0';
    *cursor = nl + 1;
    size_t klen = strlen(key);
    if (strncmp(line, key, klen) || line[klen] != ' ')
        return -1;
    return parse_i64(line + klen + 1, out);
}

/* An optional "<key> WORD" line: 0 with *out set (a copy; NULL for "-") and
 * *found (may be NULL) set when the next line is one, 0 leaving *out and
 * the cursor alone when it is not, -1 when it is malformed or out of memory. */
static int header_word(char **cursor, const char *key, char **out, int *found)
{
    size_t klen = strlen(key);
    char *line = *cursor, *nl = strchr(line, '\n');
    if (!nl || strncmp(line, key, klen) != 0 || line[klen] != ' ')
        return 0;
    *nl = '\0';
    *cursor = nl + 1;
    char *w = line + klen + 1;
    if (!cursor_ok(w))
        return -1;
    if (found)
        *found = 1;
    return set_cursor(out, strcmp(w, "-") == 0 ? NULL : w);
}

static int header_cursor(char **cursor, char **out)
{
    return header_word(cursor, "cursor", out, NULL);
}

static int load_state(journal_t *j, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    if (faccessat(j->dirfd, "state", F_OK, 0) < 0)
        return 0;
    if (read_file_at(j->dirfd, "state", &text, &len, err, errlen) < 0)
        return -1;
    char *cur = text;
    size_t mlen = strlen(STATE_MAGIC);
    if (strncmp(cur, STATE_MAGIC "\n", mlen + 1) != 0) {
        sys_set_err(err, errlen, "%s/state:1:1: not a journal state file", j->dir);
        goto fail;
    }
    cur += mlen + 1;
    if (header_i64(&cur, "seq", &j->committed_seq) < 0 ||
        header_i64(&cur, "gen", &j->covered_gen) < 0 || j->committed_seq < 0 ||
        header_cursor(&cur, &j->cursor) < 0 ||
        header_word(&cur, "flushed", &j->flushed_cursor, &j->has_flushed_cursor) < 0) {
        sys_set_err(err, errlen, "%s/state: corrupt (expected seq, gen and cursor lines)", j->dir);
        goto fail;
    }
    free(text);
    return 0;
fail:
    free(text);
    return -1;
}

/* "flushed" (read since the journal distrusts damaged records; older
 * versions ignore it): the cursor of the committed flush's intent. */
static int save_state(journal_t *j, int64_t seq, int64_t gen, const char *cursor,
                      const char *flushed, char *err, size_t errlen)
{
    char text[128 + 2 * JOURNAL_CURSOR_MAX];
    int n = snprintf(text, sizeof(text),
                     STATE_MAGIC "\nseq %" PRId64 "\ngen %" PRId64 "\ncursor %s\nflushed %s\n", seq,
                     gen, cursor ? cursor : "-", flushed ? flushed : "-");
    return write_atomic(j, "state", text, (size_t)n, NULL, err, errlen);
}

/* What parse_records found besides the deltas. */
struct parse_out {
    size_t torn;        /* a last line without its newline (the tail of a crashed write) */
    size_t dropped;     /* records of a trailing group without its "P" */
    char *cursor;       /* the last "P" cursor seen (NULL: none, or "-") */
    int bad_line;       /* the first record failing its check (0: none) */
    size_t discarded;   /* records from the bad one on (it included), not applied */
    size_t trusted_len; /* bytes of text up to the end of the last record applied */
};

/* Parse the records of `text` into d; name is for messages. With `strict`
 * (an intent, written atomically) any bad record is an error; otherwise
 * (a journal generation) `o` says what was found (o->cursor is the
 * caller's to free).
 *
 * A generation that starts with "H 2" is grouped: its deltas count only once
 * a "P <cursor>" record follows them (one append = deltas + P in one write),
 * so a group torn by a crash is dropped whole, and the caller recounts it
 * from its log. A compacted generation ("C ...") is one group ending with
 * its "P". Older ones (no header) count every good record up to their first
 * "P".
 *
 * A whole line that fails its check is not the tail of a crashed append
 * (one write, kill -9 cannot tear it in the middle): the file is damaged
 * there. Like PostgreSQL's WAL replay at a bad record, reading stops: its
 * group and everything after it are not applied (o->bad_line,
 * o->discarded), and o->cursor stays at the last "P" before it, from
 * which the caller recounts. */
static int parse_records(const char *name, char *text, size_t len, int line0, int strict,
                         struct counter_deltas *d, struct parse_out *o, char *err, size_t errlen)
{
    char *p = text, *end = text + len;
    int grouped = 0, rc = -1;
    struct counter_deltas pending;
    counter_deltas_init(&pending);
    for (int lineno = line0; p < end; lineno++) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t llen = nl ? (size_t)(nl - p) : (size_t)(end - p);
        p[llen] = '\0';
        int64_t first, last;
        char *cur = NULL;
        if (!strict && lineno == line0 && nl && compact_header_parse(p, llen, &first, &last) == 0) {
            grouped = 1; /* the summed body counts with its closing P */
            p += llen + 1;
            continue;
        }
        int kind = !strict && nl ? marker_parse(p, llen, &cur) : 0;
        if (kind == 'H' && lineno == line0) {
            grouped = 1;
            p += llen + 1;
            o->trusted_len = (size_t)(p - text);
            continue;
        }
        if (kind == 'P') {
            if (grouped) {
                for (size_t i = 0; i < pending.nrows; i++) {
                    const struct counter_delta *r = &pending.rows[i];
                    if (counter_deltas_push(d, r->chain, r->account, r->reason, r->bucket, r->n) <
                        0) {
                        sys_set_err(err, errlen, "%s:%d: out of memory", name, lineno);
                        goto out;
                    }
                }
                counter_deltas_free(&pending);
                counter_deltas_init(&pending);
            }
            /* from here on appends are grouped (after an old-format body) */
            grouped = 1;
            if (set_cursor(&o->cursor, cur) < 0) {
                sys_set_err(err, errlen, "%s:%d: out of memory", name, lineno);
                goto out;
            }
            p += llen + 1;
            o->trusted_len = (size_t)(p - text);
            continue;
        }
        int prc = nl ? record_parse(p, llen, grouped ? &pending : d) : -1;
        if (prc == -2) {
            sys_set_err(err, errlen, "%s:%d: out of memory", name, lineno);
            goto out;
        }
        if (prc == -1 && strict) {
            sys_set_err(err, errlen, "%s:%d:1: corrupt record", name, lineno);
            goto out;
        }
        if (prc == -1 && nl) {
            /* damaged: distrust it, its group and every record after it */
            o->bad_line = lineno;
            o->discarded = pending.nrows + 1;
            for (char *q = nl + 1; q < end; q++)
                o->discarded += *q == '\n' || q + 1 == end;
            counter_deltas_free(&pending);
            counter_deltas_init(&pending);
            log_msg(LOG_ERROR, "journal_record_distrusted",
                    "%s:%d:1: record fails its check: it and the %zu records after it are not "
                    "applied; counting resumes at the last good position",
                    name, lineno, o->discarded - 1);
            break;
        }
        if (prc == -1) {
            o->torn++;
            log_msg(LOG_WARN, "journal_record_skipped", "%s:%d:1: torn (incomplete) tail skipped",
                    name, lineno);
        } else if (!grouped) {
            o->trusted_len = (size_t)(p + llen + 1 - text);
        }
        p += llen + 1;
    }
    if (pending.nrows > 0) {
        o->dropped += pending.nrows;
        log_msg(LOG_WARN, "journal_group_dropped",
                "%s: %zu records of an append without its position record dropped (a crash "
                "during the append; they are recounted from the request log)",
                name, pending.nrows);
    }
    rc = 0;
out:
    counter_deltas_free(&pending);
    return rc;
}

static int load_intent(journal_t *j, int64_t seq, struct journal_recovery *rec, char *err,
                       size_t errlen)
{
    char name[64], path[PATH_MAX];
    char *text = NULL;
    size_t len = 0;
    snprintf(name, sizeof(name), "flush.%" PRId64, seq);
    snprintf(path, sizeof(path), "%s/%s", j->dir, name);
    if (read_file_at(j->dirfd, name, &text, &len, err, errlen) < 0)
        return -1;
    char *cur = text;
    size_t mlen = strlen(INTENT_MAGIC);
    int64_t fseq, gen, rows;
    if (strncmp(cur, INTENT_MAGIC "\n", mlen + 1) != 0) {
        sys_set_err(err, errlen, "%s:1:1: not a flush intent", path);
        goto fail;
    }
    cur += mlen + 1;
    char *iline = cur, *nl = strchr(cur, '\n');
    if (!nl || strncmp(iline, "instance ", 9) || (size_t)(nl - iline) != 9 + JOURNAL_INSTANCE_LEN ||
        strncmp(iline + 9, j->instance, JOURNAL_INSTANCE_LEN)) {
        sys_set_err(err, errlen, "%s:2:1: instance line missing or not %s", path, j->instance);
        goto fail;
    }
    cur = nl + 1;
    if (header_i64(&cur, "seq", &fseq) < 0 || fseq != seq || header_i64(&cur, "gen", &gen) < 0 ||
        header_i64(&cur, "rows", &rows) < 0) {
        sys_set_err(err, errlen, "%s:3:1: expected seq %" PRId64 ", gen and rows lines", path, seq);
        goto fail;
    }
    char *icursor = NULL;
    if (header_cursor(&cur, &icursor) < 0) {
        sys_set_err(err, errlen, "%s:6:1: bad cursor line", path);
        goto fail;
    }
    free(rec->intent_cursor);
    rec->intent_cursor = icursor;
    struct parse_out po = {0};
    if (parse_records(path, cur, len - (size_t)(cur - text), icursor ? 7 : 6, 1, &rec->intent, &po,
                      err, errlen) < 0)
        goto fail;
    if ((int64_t)rec->intent.nrows != rows) {
        sys_set_err(err, errlen, "%s: %zu records, header says %" PRId64, path, rec->intent.nrows,
                    rows);
        goto fail;
    }
    rec->has_intent = 1;
    rec->intent_seq = seq;
    rec->intent_gen = gen;
    free(text);
    return 0;
fail:
    free(text);
    return -1;
}

static int name_number(const char *name, const char *prefix, int64_t *out)
{
    size_t plen = strlen(prefix);
    if (strncmp(name, prefix, plen) || !isdigit((unsigned char)name[plen]))
        return 0;
    return parse_i64(name + plen, out) == 0 && *out >= 0;
}

struct dir_scan {
    int64_t *gens;
    size_t ngens, cap;
    int64_t intent_seq[2]; /* the two highest, to detect more than one */
    size_t nintents;
};

static int scan_dir(journal_t *j, struct dir_scan *s, char *err, size_t errlen)
{
    int fd = dup(j->dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        sys_set_err(err, errlen, "%s: %s", j->dir, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    rewinddir(d);
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int64_t n;
        size_t nlen = strlen(e->d_name);
        if (nlen > 4 && strcmp(e->d_name + nlen - 4, ".tmp") == 0) {
            unlinkat(j->dirfd, e->d_name, 0);
        } else if (name_number(e->d_name, "journal.", &n)) {
            if (s->ngens == s->cap) {
                size_t ncap = s->cap ? s->cap * 2 : 16;
                int64_t *ng = realloc(s->gens, ncap * sizeof(*ng));
                if (!ng) {
                    sys_set_err(err, errlen, "%s: out of memory", j->dir);
                    rc = -1;
                    break;
                }
                s->gens = ng;
                s->cap = ncap;
            }
            s->gens[s->ngens++] = n;
        } else if (name_number(e->d_name, "flush.", &n)) {
            if (s->nintents < 2)
                s->intent_seq[s->nintents++] = n;
            else {
                sys_set_err(err, errlen, "%s: more than two flush intents", j->dir);
                rc = -1;
                break;
            }
        }
    }
    closedir(d);
    return rc;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int open_gen(journal_t *j, int64_t gen, char *err, size_t errlen)
{
    char name[64];
    snprintf(name, sizeof(name), "journal.%" PRId64, gen);
    int fd = openat(j->dirfd, name, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        sys_set_err(err, errlen, "%s/%s: %s", j->dir, name, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || fsync(j->dirfd) < 0) {
        sys_set_err(err, errlen, "%s/%s: %s", j->dir, name, strerror(errno));
        close(fd);
        return -1;
    }
    if (st.st_size == 0) {
        /* grouped generation: deltas count only with the P record after them */
        struct buf b = {0};
        size_t start = 0;
        char check[CHECK_HEX + 1];
        int bad = buf_printf(&b, "H 2") < 0 || record_check(b.p + start, b.len, check) < 0 ||
                  buf_printf(&b, " %s\n", check) < 0 || sys_write_all(fd, b.p, b.len) < 0;
        free(b.p);
        if (bad) {
            sys_set_err(err, errlen, "%s/%s: header: %s", j->dir, name, strerror(errno));
            close(fd);
            return -1;
        }
        st.st_size = (off_t)b.len;
    }
    if (j->fd >= 0) {
        close(j->fd);
        j->old_bytes += j->size;
    }
    j->fd = fd;
    j->gen = gen;
    j->size = st.st_size;
    return 0;
}

static int drop_intent(journal_t *j, int64_t seq, char *err, size_t errlen)
{
    char name[64];
    snprintf(name, sizeof(name), "flush.%" PRId64, seq);
    if ((unlinkat(j->dirfd, name, 0) < 0 && errno != ENOENT) || fsync(j->dirfd) < 0) {
        sys_set_err(err, errlen, "%s/%s: unlink: %s", j->dir, name, strerror(errno));
        return -1;
    }
    return 0;
}

/* Whether generation `name` starts with a compaction header (0, filling
 * first and last) or not (-1). */
static int gen_compact_header(journal_t *j, const char *name, int64_t *first, int64_t *last)
{
    char head[128];
    int fd = openat(j->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = pread(fd, head, sizeof(head), 0);
    close(fd);
    char *nl = n > 0 ? memchr(head, '\n', (size_t)n) : NULL;
    return nl ? compact_header_parse(head, (size_t)(nl - head), first, last) : -1;
}

static size_t count_lines(const char *text, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += text[i] == '\n' || i + 1 == len;
    return n;
}

/* Generation live[k] has a damaged record after its first `keep` bytes:
 * set aside (as distrusted.<gen>, never read again) the generations after
 * it, newest first, then a copy of it, and cut it to those bytes, so that
 * the next start reads what this one applied and nothing else. A crash
 * half-way leaves the damaged record in place, and the next start does the
 * same again. `discarded` gets the records of the later generations. */
static int distrust_from(journal_t *j, const int64_t *live, size_t k, size_t keep,
                         size_t *discarded, char *err, size_t errlen)
{
    char name[64], aside[64], *text = NULL;
    size_t len = 0;
    for (size_t i = 0; i <= k; i++) {
        snprintf(name, sizeof(name), "journal.%" PRId64, live[i]);
        snprintf(aside, sizeof(aside), "distrusted.%" PRId64, live[i]);
        if (i < k && read_file_at(j->dirfd, name, &text, &len, err, errlen) == 0) {
            *discarded += count_lines(text, len);
            free(text);
            text = NULL;
        }
        if (i == k && keep > 0)
            break;
        if (renameat(j->dirfd, name, j->dirfd, aside) < 0 && errno != ENOENT) {
            sys_set_err(err, errlen, "%s/%s: rename: %s", j->dir, name, strerror(errno));
            return -1;
        }
    }
    if (fsync(j->dirfd) < 0) {
        sys_set_err(err, errlen, "%s: fsync: %s", j->dir, strerror(errno));
        return -1;
    }
    if (keep == 0)
        return 0;
    if (read_file_at(j->dirfd, name, &text, &len, err, errlen) < 0)
        return -1;
    int rc = write_atomic(j, aside, text, len, NULL, err, errlen);
    free(text);
    if (rc < 0)
        return -1;
    int fd = openat(j->dirfd, name, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)keep) < 0 || fsync(fd) < 0) {
        sys_set_err(err, errlen, "%s/%s: truncate: %s", j->dir, name, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

static void journal_distrust_note(const struct journal_recovery *rec, const char *cursor)
{
    LOG_EVENT(LOG_ERROR, "journal_distrusted", NULL,
              "a journal record fails its check: it and every record after it are set aside, "
              "and counting resumes at the last good position before it",
              LF_STR("at", rec->distrusted_at),
              LF_INT("distrusted_records", rec->distrusted_records),
              LF_INT("discarded_records", rec->discarded_records),
              LF_STR("cursor", cursor ? cursor : "-"));
    pthread_mutex_lock(&distrust_lock);
    distrust_seen.records += (int64_t)rec->distrusted_records;
    distrust_seen.discarded += (int64_t)rec->discarded_records;
    snprintf(distrust_seen.at, sizeof(distrust_seen.at), "%s", rec->distrusted_at);
    snprintf(distrust_seen.cursor, sizeof(distrust_seen.cursor), "%s", cursor ? cursor : "-");
    pthread_mutex_unlock(&distrust_lock);
}

void journal_distrust_stats(struct journal_distrust *out)
{
    pthread_mutex_lock(&distrust_lock);
    *out = distrust_seen;
    pthread_mutex_unlock(&distrust_lock);
}

/* After a distrust the resume cursor may be older than the state's: an
 * empty group at it in the new generation makes the next start resume there
 * too, before anything is appended. */
static int resume_mark(journal_t *j, char *err, size_t errlen)
{
    struct buf b = {0};
    int rc = -1;
    if (cursor_record_format(&b, j->cursor) < 0) {
        sys_set_err(err, errlen, "%s: out of memory", j->dir);
        goto out;
    }
    if (sys_write_all(j->fd, b.p, b.len) < 0 || fdatasync(j->fd) < 0) {
        sys_set_err(err, errlen, "%s/journal.%" PRId64 ": write: %s", j->dir, j->gen,
                    strerror(errno));
        goto out;
    }
    j->size += (int64_t)b.len;
    rc = 0;
out:
    free(b.p);
    return rc;
}

/* Recovery after load of instance and state: see journal_open. */
static int recover(journal_t *j, struct journal_recovery *rec, char *err, size_t errlen)
{
    struct dir_scan s = {0};
    char *text = NULL;
    int64_t *live = NULL; /* generations to read, newest first */
    if (scan_dir(j, &s, err, errlen) < 0)
        goto fail;
    qsort(s.intent_seq, s.nintents, sizeof(int64_t), cmp_i64);
    for (size_t i = 0; i < s.nintents; i++) {
        int64_t seq = s.intent_seq[i];
        if (seq <= j->committed_seq) {
            /* committed, the crash came before its intent was deleted */
            if (drop_intent(j, seq, err, errlen) < 0)
                goto fail;
        } else if (rec->has_intent) {
            sys_set_err(err, errlen, "%s: two unfinished flushes (%" PRId64 " and %" PRId64 ")",
                        j->dir, rec->intent_seq, seq);
            goto fail;
        } else if (load_intent(j, seq, rec, err, errlen) < 0) {
            goto fail;
        }
    }
    if (rec->has_intent) {
        j->intent_seq = rec->intent_seq;
        j->intent_gen = rec->intent_gen;
        if (set_cursor(&j->intent_cursor, rec->intent_cursor) < 0) {
            sys_set_err(err, errlen, "%s: out of memory", j->dir);
            goto fail;
        }
        if (rec->intent_gen > j->covered_gen)
            j->covered_gen = rec->intent_gen;
    }
    if (s.ngens > 1) /* gens is NULL when there is none: not for qsort */
        qsort(s.gens, s.ngens, sizeof(int64_t), cmp_i64);
    int64_t maxgen = j->covered_gen, skip_first = 1, skip_last = 0;
    int found_cursor = 0;
    size_t nlive = 0;
    if (s.ngens && !(live = calloc(s.ngens, sizeof(*live)))) {
        sys_set_err(err, errlen, "%s: out of memory", j->dir);
        goto fail;
    }
    /* without a position in a generation, the intent's (newer than the
     * state's) or the state's holds */
    if (rec->has_intent && rec->intent_cursor && set_cursor(&j->cursor, rec->intent_cursor) < 0) {
        sys_set_err(err, errlen, "%s: out of memory", j->dir);
        goto fail;
    }
    j->oldest_gen = s.ngens ? s.gens[0] : maxgen + 1;
    /* newest first: a compacted generation (header "C first last") holds
     * the deltas of generations first..last, which are deleted unread */
    for (size_t k = s.ngens; k-- > 0;) {
        char name[64];
        int64_t g = s.gens[k], first, last;
        snprintf(name, sizeof(name), "journal.%" PRId64, g);
        if (g > maxgen)
            maxgen = g;
        if (g <= j->covered_gen || (g >= skip_first && g <= skip_last)) {
            /* its deltas are in the intent, committed, or compacted */
            if (unlinkat(j->dirfd, name, 0) < 0 && errno != ENOENT) {
                sys_set_err(err, errlen, "%s/%s: unlink: %s", j->dir, name, strerror(errno));
                goto fail;
            }
            continue;
        }
        if (gen_compact_header(j, name, &first, &last) == 0 && last < g) {
            skip_first = first;
            skip_last = last;
        }
        live[nlive++] = g;
    }
    if (fsync(j->dirfd) < 0) {
        sys_set_err(err, errlen, "%s: fsync: %s", j->dir, strerror(errno));
        goto fail;
    }
    /* oldest first, stopping at the first record that fails its check */
    for (size_t k = nlive; k-- > 0;) {
        char name[64], path[PATH_MAX];
        size_t len = 0;
        int64_t g = live[k];
        snprintf(name, sizeof(name), "journal.%" PRId64, g);
        snprintf(path, sizeof(path), "%s/%s", j->dir, name);
        if (read_file_at(j->dirfd, name, &text, &len, err, errlen) < 0)
            goto fail;
        struct parse_out po = {0};
        int prc = parse_records(path, text, len, 1, 0, &rec->replay, &po, err, errlen);
        free(text);
        text = NULL;
        if (prc < 0) {
            free(po.cursor);
            goto fail;
        }
        rec->torn_records += po.torn;
        rec->dropped_records += po.dropped;
        if (po.cursor) {
            free(j->cursor);
            j->cursor = po.cursor;
            found_cursor = 1;
        }
        if (!po.bad_line) {
            j->old_bytes += (int64_t)len;
            continue;
        }
        rec->distrusted_records = 1;
        rec->discarded_records = po.discarded;
        snprintf(rec->distrusted_at, sizeof(rec->distrusted_at), "%s:%d", name, po.bad_line);
        j->old_bytes += (int64_t)po.trusted_len;
        if (distrust_from(j, live, k, po.trusted_len, &rec->discarded_records, err, errlen) < 0)
            goto fail;
        if (!found_cursor && !rec->has_intent && j->has_flushed_cursor &&
            set_cursor(&j->cursor, j->flushed_cursor) < 0) {
            sys_set_err(err, errlen, "%s: out of memory", j->dir);
            goto fail;
        }
        if (!found_cursor && !rec->has_intent && !j->has_flushed_cursor)
            log_msg(LOG_ERROR, "journal_distrusted_unknown_position",
                    "%s: no position before the damaged record (a state file of an older "
                    "version): resuming at the state's, relays between the two are lost",
                    j->dir);
        journal_distrust_note(rec, j->cursor);
        break;
    }
    free(live);
    live = NULL;
    j->next_seq = (rec->has_intent ? rec->intent_seq : j->committed_seq) + 1;
    if (open_gen(j, maxgen + 1, err, errlen) < 0)
        goto fail;
    if (rec->distrusted_records && resume_mark(j, err, errlen) < 0)
        goto fail;
    if (j->cursor && !(rec->cursor = strdup(j->cursor))) {
        sys_set_err(err, errlen, "%s: out of memory", j->dir);
        goto fail;
    }
    free(s.gens);
    return 0;
fail:
    free(live);
    free(text);
    free(s.gens);
    return -1;
}

journal_t *journal_open(const char *dir, struct journal_recovery *rec, char *err, size_t errlen)
{
    memset(rec, 0, sizeof(*rec));
    counter_deltas_init(&rec->intent);
    counter_deltas_init(&rec->replay);
    journal_t *j = calloc(1, sizeof(*j));
    if (!j || !(j->dir = strdup(dir))) {
        sys_set_err(err, errlen, "%s: out of memory", dir);
        goto fail;
    }
    j->fd = -1;
    j->dirfd = -1;
    j->lockfd = -1;
    if (sys_mkdirs(dir) < 0) {
        sys_set_err(err, errlen, "%s: mkdir: %s", dir, strerror(errno));
        goto fail;
    }
    j->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (j->dirfd < 0) {
        sys_set_err(err, errlen, "%s: %s", dir, strerror(errno));
        goto fail;
    }
    /* two processes on one journal would each replay and flush it */
    j->lockfd = openat(j->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (j->lockfd < 0) {
        sys_set_err(err, errlen, "%s/lock: %s", dir, strerror(errno));
        goto fail;
    }
    if (flock(j->lockfd, LOCK_EX | LOCK_NB) < 0) {
        sys_set_err(err, errlen,
                    errno == EWOULDBLOCK
                        ? "%s: journal in use by another process (a cc-gateway of the "
                          "same source is running)"
                        : "%s/lock: %s",
                    dir, strerror(errno));
        goto fail;
    }
    if (load_instance(j, err, errlen) < 0 || load_state(j, err, errlen) < 0 ||
        recover(j, rec, err, errlen) < 0)
        goto fail;
    return j;
fail:
    journal_recovery_free(rec);
    journal_close(j);
    return NULL;
}

void journal_close(journal_t *j)
{
    if (!j)
        return;
    if (j->fd >= 0)
        close(j->fd);
    if (j->dirfd >= 0)
        close(j->dirfd);
    if (j->lockfd >= 0)
        close(j->lockfd);
    free(j->dir);
    free(j->cursor);
    free(j->intent_cursor);
    free(j->flushed_cursor);
    free(j);
}

void journal_recovery_free(struct journal_recovery *rec)
{
    counter_deltas_free(&rec->intent);
    counter_deltas_free(&rec->replay);
    free(rec->cursor);
    free(rec->intent_cursor);
    rec->cursor = rec->intent_cursor = NULL;
    rec->has_intent = 0;
}

const char *journal_dir(const journal_t *j)
{
    return j->dir;
}

const char *journal_instance(const journal_t *j)
{
    return j->instance;
}

int64_t journal_next_seq(const journal_t *j)
{
    return j->next_seq;
}

int64_t journal_bytes(const journal_t *j)
{
    return j->old_bytes + j->size;
}

int journal_append(journal_t *j, const struct counter_deltas *d, char *err, size_t errlen)
{
    return journal_append_at(j, d, NULL, err, errlen);
}

int journal_append_at(journal_t *j, const struct counter_deltas *d, const char *cursor, char *err,
                      size_t errlen)
{
    struct buf b = {0};
    int moved = (cursor == NULL) != (j->cursor == NULL) ||
                (cursor && j->cursor && strcmp(cursor, j->cursor) != 0);
    if (cursor && !cursor_ok(cursor)) {
        sys_set_err(err, errlen, "journal: bad cursor \"%.64s\"", cursor);
        return -1;
    }
    for (size_t i = 0; i < d->nrows; i++) {
        if (d->rows[i].n == 0)
            continue;
        if (record_format(&b, &d->rows[i]) < 0) {
            sys_set_err(err, errlen, "journal: cannot format record %zu (out of memory or bad key)",
                        i);
            goto fail;
        }
    }
    if (b.len == 0 && !moved)
        return 0;
    if (cursor_record_format(&b, cursor ? cursor : j->cursor) < 0 ||
        (cursor && set_cursor(&j->cursor, cursor) < 0)) {
        sys_set_err(err, errlen, "journal: out of memory");
        goto fail;
    }
    if (sys_write_all(j->fd, b.p, b.len) < 0) {
        sys_set_err(err, errlen, "%s/journal.%" PRId64 ": write: %s", j->dir, j->gen,
                    strerror(errno));
        /* cut a partial record so that later appends start on a line */
        if (ftruncate(j->fd, j->size) < 0)
            log_msg(LOG_ERROR, "journal_truncate_failed", "%s/journal.%" PRId64 ": %s", j->dir,
                    j->gen, strerror(errno));
        goto fail;
    }
    j->size += (int64_t)b.len;
    free(b.p);
    return 0;
fail:
    free(b.p);
    return -1;
}

const char *journal_cursor(const journal_t *j)
{
    return j->cursor;
}

int journal_sync(journal_t *j, char *err, size_t errlen)
{
    if (fdatasync(j->fd) < 0) {
        sys_set_err(err, errlen, "%s/journal.%" PRId64 ": fdatasync: %s", j->dir, j->gen,
                    strerror(errno));
        return -1;
    }
    return 0;
}

int journal_rotate(journal_t *j, int64_t *covered, char *err, size_t errlen)
{
    int64_t old = j->gen;
    if (journal_sync(j, err, errlen) < 0 || open_gen(j, old + 1, err, errlen) < 0)
        return -1;
    *covered = old;
    return 0;
}

int journal_intent_write(journal_t *j, int64_t seq, int64_t gen, const struct counter_deltas *d,
                         char *err, size_t errlen)
{
    return journal_intent_write_at(j, seq, gen, d, NULL, err, errlen);
}

int journal_intent_write_at(journal_t *j, int64_t seq, int64_t gen, const struct counter_deltas *d,
                            const char *cursor, char *err, size_t errlen)
{
    struct buf b = {0};
    char name[64];
    size_t rows = 0;
    for (size_t i = 0; i < d->nrows; i++)
        rows += d->rows[i].n != 0;
    if (cursor && !cursor_ok(cursor))
        goto oom;
    if (buf_printf(&b, INTENT_MAGIC "\ninstance %s\nseq %" PRId64 "\ngen %" PRId64 "\nrows %zu\n",
                   j->instance, seq, gen, rows) < 0 ||
        (cursor && buf_printf(&b, "cursor %s\n", cursor) < 0))
        goto oom;
    for (size_t i = 0; i < d->nrows; i++)
        if (d->rows[i].n != 0 && record_format(&b, &d->rows[i]) < 0)
            goto oom;
    snprintf(name, sizeof(name), "flush.%" PRId64, seq);
    if (write_atomic(j, name, b.p, b.len, NULL, err, errlen) < 0)
        goto fail;
    j->intent_seq = seq;
    j->intent_gen = gen;
    if (set_cursor(&j->intent_cursor, cursor) < 0)
        goto oom;
    /* The intent holds every delta counted up to its cursor, journaled or
     * not: it is the newest durable position now, ahead of the last append
     * when lines were counted since. journal_commit() keeps it in the state
     * unless a later append moves it on; keeping the last append's there
     * instead made a restart count those lines a second time. */
    if (cursor && set_cursor(&j->cursor, cursor) < 0)
        goto oom;
    if (seq >= j->next_seq)
        j->next_seq = seq + 1;
    free(b.p);
    return 0;
oom:
    sys_set_err(err, errlen, "%s/flush.%" PRId64 ": out of memory or bad key", j->dir, seq);
fail:
    free(b.p);
    return -1;
}

int journal_drop(journal_t *j, int64_t gen, char *err, size_t errlen)
{
    for (int64_t g = j->oldest_gen; g <= gen && g < j->gen; g++) {
        char name[64];
        snprintf(name, sizeof(name), "journal.%" PRId64, g);
        if (unlinkat(j->dirfd, name, 0) < 0 && errno != ENOENT) {
            sys_set_err(err, errlen, "%s/%s: unlink: %s", j->dir, name, strerror(errno));
            return -1;
        }
        j->oldest_gen = g + 1;
        if (crash_point("journal_drop_one"))
            return JOURNAL_CRASHED;
    }
    if (fsync(j->dirfd) < 0) {
        sys_set_err(err, errlen, "%s: fsync: %s", j->dir, strerror(errno));
        return -1;
    }
    if (gen >= j->gen - 1) {
        j->old_bytes = 0;
        j->base_bytes = 0;
    }
    return 0;
}

int journal_commit(journal_t *j, int64_t seq, char *err, size_t errlen)
{
    int64_t gen = seq == j->intent_seq ? j->intent_gen : j->covered_gen;
    const char *flushed = seq == j->intent_seq ? j->intent_cursor : j->flushed_cursor;
    /* the state keeps the newest position known: the intent's (made the
     * journal's by journal_intent_write_at and by recovery), or a later
     * append's; and the intent's as "flushed" */
    if (save_state(j, seq, gen, j->cursor, flushed, err, errlen) < 0)
        return -1;
    if (flushed != j->flushed_cursor && set_cursor(&j->flushed_cursor, flushed) < 0) {
        sys_set_err(err, errlen, "%s: out of memory", j->dir);
        return -1;
    }
    j->has_flushed_cursor = 1;
    j->committed_seq = seq;
    if (gen > j->covered_gen)
        j->covered_gen = gen;
    if (crash_point("commit_state_saved"))
        return JOURNAL_CRASHED;
    if (drop_intent(j, seq, err, errlen) < 0)
        return -1;
    if (seq == j->intent_seq)
        j->intent_seq = 0;
    return 0;
}

int journal_compact_due(const journal_t *j, int64_t min_bytes)
{
    int64_t bytes = journal_bytes(j);
    return bytes >= min_bytes && bytes >= 2 * j->base_bytes;
}

/* Sum the records of generation `g` into `sum` (COUNTER_PG). 0 (also when
 * the file is gone), -1 with err. */
static int compact_read(journal_t *j, int64_t g, counter_t *sum, size_t *bad, int64_t *bytes,
                        char *err, size_t errlen)
{
    char name[64], path[PATH_MAX], *text = NULL;
    size_t len = 0;
    struct counter_deltas d;
    counter_deltas_init(&d);
    snprintf(name, sizeof(name), "journal.%" PRId64, g);
    snprintf(path, sizeof(path), "%s/%s", j->dir, name);
    if (faccessat(j->dirfd, name, F_OK, 0) < 0 && errno == ENOENT)
        return 0;
    if (read_file_at(j->dirfd, name, &text, &len, err, errlen) < 0)
        goto fail;
    struct parse_out po = {0};
    int prc = parse_records(path, text, len, 1, 0, &d, &po, err, errlen);
    free(po.cursor);
    if (prc < 0)
        goto fail;
    *bad += po.torn;
    if (po.bad_line) {
        /* keep the generations as they are: the next start distrusts them */
        sys_set_err(err, errlen, "%s:%d:1: record fails its check: not compacting", path,
                    po.bad_line);
        goto fail;
    }
    if (counter_give_back(sum, COUNTER_PG, &d) < 0) {
        sys_set_err(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    *bytes += (int64_t)len;
    free(text);
    counter_deltas_free(&d);
    return 0;
fail:
    free(text);
    counter_deltas_free(&d);
    return -1;
}

int journal_compact(journal_t *j, struct journal_compaction *res, char *err, size_t errlen)
{
    struct buf b = {0};
    struct counter_deltas sum_rows;
    counter_t *sum = counter_new();
    int64_t covered =
        j->intent_seq && j->intent_gen > j->covered_gen ? j->intent_gen : j->covered_gen;
    int64_t first = covered + 1, last = j->gen, gen = j->gen + 1, read_bytes = 0;
    char name[64];
    int fd = -1, rc = -1;
    memset(res, 0, sizeof(*res));
    counter_deltas_init(&sum_rows);
    if (!sum) {
        sys_set_err(err, errlen, "%s: compaction: out of memory", j->dir);
        goto out;
    }
    if (journal_sync(j, err, errlen) < 0)
        goto out;
    for (int64_t g = first; g <= last; g++)
        if (compact_read(j, g, sum, &res->torn_records, &read_bytes, err, errlen) < 0)
            goto out;
    if (counter_take(sum, COUNTER_PG, &sum_rows) < 0 || compact_header_format(&b, first, last) < 0)
        goto oom;
    for (size_t i = 0; i < sum_rows.nrows; i++)
        if (sum_rows.rows[i].n != 0 && record_format(&b, &sum_rows.rows[i]) < 0)
            goto oom;
    if (cursor_record_format(&b, j->cursor) < 0)
        goto oom;
    snprintf(name, sizeof(name), "journal.%" PRId64, gen);
    rc = write_atomic(j, name, b.p, b.len, "compact_written", err, errlen);
    if (rc != 0)
        goto out;
    rc = -1;
    if (crash_point("compact_renamed")) {
        rc = JOURNAL_CRASHED;
        goto out;
    }
    /* from here on the new generation holds everything: appends go to it */
    fd = openat(j->dirfd, name, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) {
        sys_set_err(err, errlen, "%s/%s: %s", j->dir, name, strerror(errno));
        goto out;
    }
    close(j->fd);
    j->old_bytes -= read_bytes - j->size; /* the older ones read, now gone */
    if (j->old_bytes < 0)
        j->old_bytes = 0;
    j->fd = fd;
    j->gen = gen;
    j->size = (int64_t)b.len;
    j->base_bytes = (int64_t)b.len;
    res->bytes_before = read_bytes;
    res->bytes_after = (int64_t)b.len;
    res->rows = sum_rows.nrows;
    res->first = first;
    res->last = last;
    for (int64_t g = first; g <= last; g++) {
        char old[64];
        snprintf(old, sizeof(old), "journal.%" PRId64, g);
        if (unlinkat(j->dirfd, old, 0) < 0 && errno != ENOENT) {
            /* harmless: the header makes the next start skip it */
            log_msg(LOG_WARN, "journal_unlink_failed", "%s/%s: %s", j->dir, old, strerror(errno));
            continue;
        }
        if (crash_point("compact_drop_one")) {
            rc = JOURNAL_CRASHED;
            goto out;
        }
    }
    if (fsync(j->dirfd) < 0) {
        sys_set_err(err, errlen, "%s: fsync: %s", j->dir, strerror(errno));
        goto out;
    }
    rc = 0;
    goto out;
oom:
    sys_set_err(err, errlen, "%s: compaction: out of memory", j->dir);
out:
    free(b.p);
    counter_deltas_free(&sum_rows);
    counter_free(sum);
    return rc;
}
