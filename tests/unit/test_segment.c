/* The request log as a write-ahead log: segments written from a pipe and
 * followed line by line across a cut, positions that resume exactly, the
 * journal's cursor groups (a torn append counts nothing, the newest cursor
 * wins, the intent and the state keep it), retention that keeps what is not
 * counted, and the reconciliation of counts with HAProxy's show stat. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/follow.h"
#include "gateway/journal.h"
#include "gateway/reconcile.h"
#include "gateway/segment.h"
#include "lib/ccgwconf.h"
#include "lib/log.h"
#include "tests/unit/tmpdir.h"

static char dir[64];

static void setup(void)
{
    log_setup("test", LOG_FORMAT_TEXT, LOG_ERROR, 2);
    unit_tmpdir(dir, sizeof(dir), "ccgw-segment");
}

static void teardown(void)
{
    ck_assert_int_eq(unit_rmtree(dir), 0);
}

struct seen {
    char lines[64][64];
    int n;
};

static void on_line(void *ctx, const char *line, size_t len, int too_long)
{
    struct seen *s = ctx;
    ck_assert_int_eq(too_long, 0);
    ck_assert_int_lt(s->n, 64);
    ck_assert_uint_lt(len, 64);
    memcpy(s->lines[s->n], line, len);
    s->lines[s->n][len] = '\0';
    s->n++;
}

/* Write `text` into a pipe and move it into the segment. */
static void feed(segment_writer_t *w, const char *text)
{
    int p[2];
    char err[256];
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(write(p[1], text, strlen(text)), (ssize_t)strlen(text));
    close(p[1]);
    ssize_t n = segment_writer_move(w, p[0], err, sizeof(err));
    ck_assert_msg(n == (ssize_t)strlen(text), "%zd: %s", n, err);
    close(p[0]);
}

START_TEST(test_write_follow_resume)
{
    char err[256];
    /* 95-byte segments: the 58-byte header, 8 bytes, the 25-byte stderr line
     * (91) and "three" (97) fill the first, so "four" starts the second */
    segment_writer_t *w = segment_writer_open(dir, 95, err, sizeof(err));
    ck_assert_msg(w != NULL, "%s", err);
    ck_assert_int_eq(segment_writer_start(w, 4242, err, sizeof(err)), 0);
    ck_assert_int_eq(segment_writer_current(w), 1);
    feed(w, "one\ntwo\n");
    ck_assert_int_eq(
        segment_writer_line(w, SEGMENT_STDERR_PREFIX "[NOTICE] hi", 24, err, sizeof(err)), 0);
    ck_assert_int_eq(segment_writer_current(w), 1);
    feed(w, "three\n");
    feed(w, "four\n"); /* segment 1 is over 64 bytes now: this goes to 2 */
    ck_assert_int_eq(segment_writer_current(w), 2);
    ck_assert_int_eq(segment_pid(dir, 2), 4242);

    struct follow f;
    struct segment_pos from = {0, 0};
    struct seen s = {0};
    int at_end = 0;
    ck_assert_int_eq(follow_open(&f, dir, &from, err, sizeof(err)), 0);
    ck_assert_int_gt(follow_step(&f, 1 << 20, on_line, &s, &at_end, err, sizeof(err)), 0);
    ck_assert_int_eq(at_end, 1);
    /* segment 1: its header, two lines, the stderr line, three; segment 2:
     * its header, four */
    ck_assert_int_eq(s.n, 7);
    ck_assert_str_eq(s.lines[1], "one");
    ck_assert_str_eq(s.lines[3], SEGMENT_STDERR_PREFIX "[NOTICE] hi");
    ck_assert_str_eq(s.lines[4], "three");
    ck_assert_int_eq(strncmp(s.lines[5], SEGMENT_META_PREFIX "segment 2 haproxy_pid=4242 ", 33), 0);
    ck_assert_str_eq(s.lines[6], "four");
    struct segment_pos end = follow_pos(&f);
    ck_assert_int_eq(end.seg, 2);
    follow_close(&f);

    /* a position, through its cursor word, resumes after what was read */
    char word[64];
    struct segment_pos back;
    const char *rest;
    segment_pos_format(&end, word, sizeof(word));
    strcat(word, ":77:1,2");
    ck_assert_int_eq(segment_pos_parse(word, &back, &rest), 0);
    ck_assert_int_eq(back.seg, end.seg);
    ck_assert_int_eq(back.off, end.off);
    ck_assert_str_eq(rest, "77:1,2");
    ck_assert_int_eq(segment_pos_parse("x:1", &back, NULL), -1);
    feed(w, "five\n");
    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(follow_open(&f, dir, &back, err, sizeof(err)), 0);
    ck_assert_int_gt(follow_step(&f, 1 << 20, on_line, &s, &at_end, err, sizeof(err)), 0);
    ck_assert_int_eq(s.n, 1);
    ck_assert_str_eq(s.lines[0], "five");
    follow_close(&f);

    /* retention: 2 segments over a tiny limit; nothing at or past the
     * counted segment goes */
    int blocked = 0;
    ck_assert_int_eq(segment_retain(dir, 1, 10, &blocked, err, sizeof(err)), 0);
    ck_assert_int_eq(blocked, 1);
    ck_assert_int_eq(segment_retain(dir, 2, 10, &blocked, err, sizeof(err)), 1);
    int64_t lo, hi;
    ck_assert_int_eq(segment_range(dir, &lo, &hi, NULL, err, sizeof(err)), 0);
    ck_assert_int_eq(lo, 2);
    ck_assert_int_eq(hi, 2);
    segment_writer_close(w);
}
END_TEST

/* The current segment renamed (mv), then a new follower (a restarted
 * worker) at a position in it: found by its header line, read to the end,
 * including what the writer appends to it after the rename. */
START_TEST(test_follow_renamed_segment)
{
    char err[256], path[128], moved[128];
    segment_writer_t *w = segment_writer_open(dir, 1 << 20, err, sizeof(err));
    ck_assert_msg(w != NULL, "%s", err);
    ck_assert_int_eq(segment_writer_start(w, 4242, err, sizeof(err)), 0);
    feed(w, "one\ntwo\n");
    struct follow f;
    struct segment_pos from = {0, 0};
    struct seen s = {0};
    int at_end = 0;
    ck_assert_int_eq(follow_open(&f, dir, &from, err, sizeof(err)), 0);
    ck_assert_int_gt(follow_step(&f, 1 << 20, on_line, &s, &at_end, err, sizeof(err)), 0);
    ck_assert_int_eq(s.n, 3);
    struct segment_pos at = follow_pos(&f);
    follow_close(&f);

    ck_assert_int_eq(segment_path(dir, 1, path, sizeof(path)), 0);
    snprintf(moved, sizeof(moved), "%s/old.log", dir);
    ck_assert_int_eq(rename(path, moved), 0);
    feed(w, "three\n");
    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(follow_open(&f, dir, &at, err, sizeof(err)), 0);
    ck_assert_int_gt(follow_step(&f, 1 << 20, on_line, &s, &at_end, err, sizeof(err)), 0);
    ck_assert_int_eq(s.n, 1);
    ck_assert_str_eq(s.lines[0], "three");
    ck_assert_int_eq(f.skipped_segments, 0);
    follow_close(&f);
    /* a deleted one is reported lost once the next segment exists */
    ck_assert_int_eq(unlink(moved), 0);
    ck_assert_int_eq(segment_writer_start(w, 4243, err, sizeof(err)), 0);
    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(follow_open(&f, dir, &at, err, sizeof(err)), 0);
    ck_assert_int_gt(follow_step(&f, 1 << 20, on_line, &s, &at_end, err, sizeof(err)), 0);
    ck_assert_int_eq(f.skipped_segments, 1);
    follow_close(&f);
    segment_writer_close(w);
}
END_TEST

/* The segment being written deleted (rm): its lines are still read through
 * the open file and counted, and the loss of the kept log is said once. */
START_TEST(test_follow_deleted_segment)
{
    char err[256], path[128];
    segment_writer_t *w = segment_writer_open(dir, 1 << 20, err, sizeof(err));
    ck_assert_msg(w != NULL, "%s", err);
    ck_assert_int_eq(segment_writer_start(w, 4242, err, sizeof(err)), 0);
    feed(w, "one\n");
    struct follow f;
    struct segment_pos from = {0, 0};
    struct seen s = {0};
    int at_end = 0;
    ck_assert_int_eq(follow_open(&f, dir, &from, err, sizeof(err)), 0);
    ck_assert_int_gt(follow_step(&f, 1 << 20, on_line, &s, &at_end, err, sizeof(err)), 0);
    ck_assert_int_eq(f.deleted_segments, 0);
    ck_assert_int_eq(segment_path(dir, 1, path, sizeof(path)), 0);
    ck_assert_int_eq(unlink(path), 0);
    feed(w, "two\n");
    memset(&s, 0, sizeof(s));
    ck_assert_int_gt(follow_step(&f, 1 << 20, on_line, &s, &at_end, err, sizeof(err)), 0);
    ck_assert_int_eq(s.n, 1);
    ck_assert_str_eq(s.lines[0], "two");
    ck_assert_int_eq(at_end, 1);
    ck_assert_int_eq(f.deleted_segments, 1);
    ck_assert_int_eq(follow_step(&f, 1 << 20, on_line, &s, &at_end, err, sizeof(err)), 0);
    ck_assert_int_eq(f.deleted_segments, 1);
    follow_close(&f);
    segment_writer_close(w);
}
END_TEST

/* The segment after the follower's renamed before it got there, and none
 * after it yet: requests.log still names it, so it is complete, found by
 * its header, and read (not waited on forever). */
START_TEST(test_follow_next_segment_renamed)
{
    char err[256], path[128], moved[128];
    segment_writer_t *w = segment_writer_open(dir, 1 << 20, err, sizeof(err));
    ck_assert_msg(w != NULL, "%s", err);
    ck_assert_int_eq(segment_writer_start(w, 4242, err, sizeof(err)), 0);
    feed(w, "one\n");
    struct follow f;
    struct segment_pos from = {0, 0};
    struct seen s = {0};
    int at_end = 0;
    ck_assert_int_eq(follow_open(&f, dir, &from, err, sizeof(err)), 0);
    ck_assert_int_gt(follow_step(&f, 1 << 20, on_line, &s, &at_end, err, sizeof(err)), 0);
    ck_assert_int_eq(s.n, 2);
    ck_assert_int_eq(segment_writer_start(w, 4243, err, sizeof(err)), 0);
    feed(w, "two\n");
    ck_assert_int_eq(segment_path(dir, 2, path, sizeof(path)), 0);
    snprintf(moved, sizeof(moved), "%s/elsewhere", dir);
    ck_assert_int_eq(rename(path, moved), 0);
    memset(&s, 0, sizeof(s));
    ck_assert_int_gt(follow_step(&f, 1 << 20, on_line, &s, &at_end, err, sizeof(err)), 0);
    ck_assert_int_eq(s.n, 2); /* segment 2's header and "two" */
    ck_assert_str_eq(s.lines[1], "two");
    ck_assert_int_eq(follow_pos(&f).seg, 2);
    follow_close(&f);
    segment_writer_close(w);
}
END_TEST

static void deltas(struct counter_deltas *d, int64_t n)
{
    counter_deltas_init(d);
    ck_assert_int_eq(counter_deltas_push(d, "0021", "894334g9f403", -1, 1700000100, n), 0);
}

static int64_t total(const struct counter_deltas *d)
{
    int64_t s = 0;
    for (size_t i = 0; i < d->nrows; i++)
        s += d->rows[i].n;
    return s;
}

START_TEST(test_journal_cursor)
{
    struct journal_recovery rec;
    struct counter_deltas d;
    char err[256], jdir[128], path[192];
    snprintf(jdir, sizeof(jdir), "%s/j", dir);
    journal_t *j = journal_open(jdir, &rec, err, sizeof(err));
    ck_assert_msg(j != NULL, "%s", err);
    ck_assert_ptr_null(rec.cursor);
    journal_recovery_free(&rec);
    deltas(&d, 5);
    ck_assert_int_eq(journal_append_at(j, &d, "1:100", err, sizeof(err)), 0);
    counter_deltas_free(&d);
    deltas(&d, 7);
    ck_assert_int_eq(journal_append_at(j, &d, "1:250", err, sizeof(err)), 0);
    counter_deltas_free(&d);
    ck_assert_int_eq(journal_append_at(j, &d, "bad cursor", err, sizeof(err)), -1);
    ck_assert_str_eq(journal_cursor(j), "1:250");
    journal_close(j);
    /* a crash in the middle of the next append: its deltas without the P */
    snprintf(path, sizeof(path), "%s/journal.1", jdir);
    int fd = open(path, O_WRONLY | O_APPEND);
    ck_assert_int_ge(fd, 0);
    const char *torn = "R 1700000100 0021 894334g9f403 1000 00000000\n";
    ck_assert_int_eq(write(fd, torn, strlen(torn)), (ssize_t)strlen(torn));
    close(fd);

    j = journal_open(jdir, &rec, err, sizeof(err));
    ck_assert_msg(j != NULL, "%s", err);
    ck_assert_int_eq(total(&rec.replay), 12);
    ck_assert_str_eq(rec.cursor, "1:250");
    ck_assert_uint_eq(rec.torn_records + rec.dropped_records + rec.distrusted_records, 1);
    journal_recovery_free(&rec);

    /* a flush cut: its intent carries the cursor, the state keeps it after
     * the commit, when nothing was appended since */
    int64_t covered;
    deltas(&d, 12);
    ck_assert_int_eq(journal_rotate(j, &covered, err, sizeof(err)), 0);
    ck_assert_int_eq(journal_intent_write_at(j, 1, covered, &d, "1:250", err, sizeof(err)), 0);
    ck_assert_int_eq(journal_drop(j, covered, err, sizeof(err)), 0);
    journal_close(j);
    j = journal_open(jdir, &rec, err, sizeof(err));
    ck_assert_msg(j != NULL, "%s", err);
    ck_assert_int_eq(rec.has_intent, 1);
    ck_assert_str_eq(rec.cursor, "1:250");
    ck_assert_int_eq(total(&rec.replay), 0);
    journal_recovery_free(&rec);
    ck_assert_int_eq(journal_commit(j, 1, err, sizeof(err)), 0);
    journal_close(j);
    j = journal_open(jdir, &rec, err, sizeof(err));
    ck_assert_msg(j != NULL, "%s", err);
    ck_assert_int_eq(rec.has_intent, 0);
    ck_assert_str_eq(rec.cursor, "1:250");
    journal_recovery_free(&rec);

    /* a cut whose intent is ahead of the last append (deltas counted since
     * it, not yet journaled, are in the intent), committed without a reopen
     * and with nothing appended since: the state keeps the intent's cursor,
     * or a restart would count the lines between the two again */
    ck_assert_int_eq(journal_append_at(j, &d, "1:300", err, sizeof(err)), 0);
    ck_assert_int_eq(journal_rotate(j, &covered, err, sizeof(err)), 0);
    ck_assert_int_eq(journal_intent_write_at(j, 2, covered, &d, "1:420", err, sizeof(err)), 0);
    ck_assert_int_eq(journal_drop(j, covered, err, sizeof(err)), 0);
    ck_assert_int_eq(journal_commit(j, 2, err, sizeof(err)), 0);
    journal_close(j);
    j = journal_open(jdir, &rec, err, sizeof(err));
    ck_assert_msg(j != NULL, "%s", err);
    ck_assert_int_eq(rec.has_intent, 0);
    ck_assert_int_eq(total(&rec.replay), 0);
    ck_assert_str_eq(rec.cursor, "1:420");
    journal_recovery_free(&rec);
    /* the same when the process dies between the intent and the commit */
    ck_assert_int_eq(journal_append_at(j, &d, "1:500", err, sizeof(err)), 0);
    ck_assert_int_eq(journal_rotate(j, &covered, err, sizeof(err)), 0);
    ck_assert_int_eq(journal_intent_write_at(j, 3, covered, &d, "1:640", err, sizeof(err)), 0);
    journal_close(j);
    j = journal_open(jdir, &rec, err, sizeof(err));
    ck_assert_msg(j != NULL, "%s", err);
    ck_assert_int_eq(rec.has_intent, 1);
    ck_assert_str_eq(rec.cursor, "1:640");
    journal_recovery_free(&rec);
    journal_close(j);
    counter_deltas_free(&d);
}
END_TEST

/* A log line of be_<chain> with status and timers; accept at ms. */
static void line(struct logline *l, const char *backend, int status, int64_t accept_ms,
                 const char *timers)
{
    memset(l, 0, sizeof(*l));
    l->kind = LOGLINE_REQUEST;
    l->status = status;
    l->accept_ms = accept_ms;
    l->backend = (struct logline_span){backend, strlen(backend)};
    l->timers = (struct logline_span){timers, strlen(timers)};
}

START_TEST(test_reconcile)
{
    struct ccgwconf conf;
    struct ccgwconf_chain chains[2] = {{.id = "0021"}, {.id = "0001"}};
    memset(&conf, 0, sizeof(conf));
    conf.chains = chains;
    conf.nchains = 2;
    reconcile_t *r = reconcile_new(&conf);
    ck_assert_ptr_nonnull(r);
    struct logline l;
    /* responses at 1000+2 and 1000+5 ms; a 503 and a 101 are left out */
    line(&l, "be_0021", 200, 1000, "0/0/1/1/3");
    reconcile_line(r, 99, &l);
    line(&l, "be_0021", 404, 1000, "1/0/1/3/9");
    reconcile_line(r, 99, &l);
    line(&l, "be_0021", 503, 1000, "0/0/1/1/3");
    reconcile_line(r, 99, &l);
    line(&l, "be_0001", 101, 1000, "0/0/1/1/3");
    reconcile_line(r, 99, &l);
    ck_assert_int_eq(logline_response_ms(&l), 1002);
    const char *stat = "# pxname,svname,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx\n"
                       "be_0021,BACKEND,0,4,0,1,1\n"
                       "be_0001,BACKEND,1,0,0,0,0\n";
    /* HAProxy counted 5 answers of be_0021 by t = 1000; we saw 2, only 1
     * of them by then (+ the margin): the gap is judged once settled */
    ck_assert_int_eq(reconcile_sample(r, 99, stat, strlen(stat), 1000), 0);
    ck_assert_uint_eq(reconcile_evaluate(r, 1000 + RECONCILE_SETTLE_MS - 1), 0);
    ck_assert_uint_eq(reconcile_evaluate(r, 1000 + RECONCILE_SETTLE_MS), 1);
    struct reconcile_backend b;
    reconcile_backend(r, 0, &b);
    ck_assert_str_eq(b.chain, "0021");
    ck_assert_int_eq(b.ours, 2);
    ck_assert_int_eq(b.haproxy, 5);
    ck_assert_int_eq(b.gap, 3);
    reconcile_backend(r, 1, &b);
    ck_assert_int_eq(b.gap, 0);
    /* a sample of another HAProxy process is not ours to judge */
    ck_assert_int_eq(reconcile_sample(r, 100, stat, strlen(stat), 2000), 0);
    ck_assert_uint_eq(reconcile_evaluate(r, 10000), 0);
    /* the counts go through the journal cursor and back */
    char word[128];
    ck_assert_int_eq(reconcile_format(r, word, sizeof(word)), 0);
    ck_assert_str_eq(word, "99:2,0");
    reconcile_t *r2 = reconcile_new(&conf);
    ck_assert_int_eq(reconcile_restore(r2, word), 0);
    reconcile_backend(r2, 0, &b);
    ck_assert_int_eq(b.ours, 2);
    ck_assert_int_eq(reconcile_restore(r2, "nonsense"), -1);
    /* a header without the columns is refused */
    ck_assert_int_eq(reconcile_sample(r2, 99, "# pxname,svname\nx,y\n", 21, 5), -1);
    reconcile_free(r2);
    reconcile_free(r);
}
END_TEST

Suite *segment_suite(void)
{
    Suite *s = suite_create("segment");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_write_follow_resume);
    tcase_add_test(tc, test_follow_renamed_segment);
    tcase_add_test(tc, test_follow_deleted_segment);
    tcase_add_test(tc, test_follow_next_segment_renamed);
    tcase_add_test(tc, test_journal_cursor);
    tcase_add_test(tc, test_reconcile);
    suite_add_tcase(s, tc);
    return s;
}
