/* Journal files: records round-trip, a torn or corrupt record is skipped,
 * intents and the state file survive a reopen. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/journal.h"
#include "lib/log.h"
#include "tests/unit/tmpdir.h"

static char dir[64];

static void setup(void)
{
    log_setup("test", LOG_FORMAT_TEXT, LOG_ERROR, 2);
    unit_tmpdir(dir, sizeof(dir), "ccgw-journal");
}

static void teardown(void)
{
    unit_rmtree(dir);
}

static int64_t sum(const struct counter_deltas *d)
{
    int64_t s = 0;
    for (size_t i = 0; i < d->nrows; i++)
        s += d->rows[i].n;
    return s;
}

static void sample(struct counter_deltas *d)
{
    counter_deltas_init(d);
    ck_assert_int_eq(counter_deltas_push(d, "0021", "894334g9f403", -1, 1700000100, 5), 0);
    ck_assert_int_eq(counter_deltas_push(d, "0001", "a1b2c3d4e5f6", -1, 1700000400, 7), 0);
    ck_assert_int_eq(counter_deltas_push(d, NULL, NULL, NR_SERVER_ERROR, 1700000100, 2), 0);
}

static void append_raw(const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_APPEND);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

START_TEST(test_roundtrip_and_instance)
{
    struct journal_recovery rec;
    struct counter_deltas d;
    char err[256], instance[JOURNAL_INSTANCE_LEN + 1];
    journal_t *j = journal_open(dir, &rec, err, sizeof(err));
    ck_assert_msg(j != NULL, "%s", err);
    ck_assert_uint_eq(rec.replay.nrows, 0);
    ck_assert_int_eq(rec.has_intent, 0);
    ck_assert_uint_eq(strlen(journal_instance(j)), JOURNAL_INSTANCE_LEN);
    strcpy(instance, journal_instance(j));
    ck_assert_int_eq(journal_next_seq(j), 1);
    sample(&d);
    ck_assert_int_eq(journal_append(j, &d, err, sizeof(err)), 0);
    ck_assert_int_eq(journal_sync(j, err, sizeof(err)), 0);
    ck_assert_int_gt(journal_bytes(j), 0);
    journal_close(j);
    journal_recovery_free(&rec);

    j = journal_open(dir, &rec, err, sizeof(err));
    ck_assert_msg(j != NULL, "%s", err);
    ck_assert_str_eq(journal_instance(j), instance);
    ck_assert_uint_eq(rec.replay.nrows, 3);
    ck_assert_int_eq(sum(&rec.replay), 14);
    ck_assert_str_eq(rec.replay.rows[0].chain, "0021");
    ck_assert_str_eq(rec.replay.rows[0].account, "894334g9f403");
    ck_assert_int_eq(rec.replay.rows[0].bucket, 1700000100);
    ck_assert_int_eq(rec.replay.rows[2].reason, NR_SERVER_ERROR);
    ck_assert_uint_eq(rec.torn_records, 0);
    journal_close(j);
    journal_recovery_free(&rec);
    counter_deltas_free(&d);
}
END_TEST

START_TEST(test_torn_and_corrupt_records)
{
    struct journal_recovery rec;
    struct counter_deltas d;
    char err[256];
    journal_t *j = journal_open(dir, &rec, err, sizeof(err));
    ck_assert_msg(j != NULL, "%s", err);
    sample(&d);
    ck_assert_int_eq(journal_append(j, &d, err, sizeof(err)), 0);
    /* a record whose check does not match, then valid ones, then a torn tail */
    append_raw("journal.1", "R 1700000100 0021 894334g9f403 1000 00000000\n");
    ck_assert_int_eq(journal_append(j, &d, err, sizeof(err)), 0);
    append_raw("journal.1", "R 1700000100 0021 8943");
    journal_close(j);
    journal_recovery_free(&rec);

    j = journal_open(dir, &rec, err, sizeof(err));
    ck_assert_msg(j != NULL, "%s", err);
    /* the torn tail is skipped; the damaged record stops the replay: the
     * append after it is not applied */
    ck_assert_uint_eq(rec.torn_records, 0);
    ck_assert_uint_eq(rec.distrusted_records, 1);
    ck_assert_uint_eq(rec.discarded_records, 6);
    ck_assert_int_eq(sum(&rec.replay), 14);
    journal_close(j);
    journal_recovery_free(&rec);
    counter_deltas_free(&d);
}
END_TEST

/* Flip two bits of line `lineno` (1-based) of journal file `name`. */
static void flip_bits(const char *name, int lineno)
{
    char path[128], buf[8192];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    ssize_t n = read(fd, buf, sizeof(buf));
    ck_assert_int_gt(n, 0);
    ssize_t i = 0;
    for (int l = 1; l < lineno && i < n; i++)
        l += buf[i] == '\n';
    ck_assert_int_lt(i + 4, n);
    buf[i + 2] ^= 0x01;
    buf[i + 3] ^= 0x04;
    ck_assert_int_eq(pwrite(fd, buf, (size_t)n, 0), n);
    close(fd);
}

static int file_exists(const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

START_TEST(test_distrust_mid_group)
{
    struct journal_recovery rec;
    struct counter_deltas d;
    struct journal_distrust before, after;
    char err[256];
    journal_distrust_stats(&before);
    journal_t *j = journal_open(dir, &rec, err, sizeof(err));
    ck_assert_msg(j != NULL, "%s", err);
    journal_recovery_free(&rec);
    sample(&d);
    /* journal.1: H, group 1 (lines 2-5), group 2 (6-9), group 3 (10-13) */
    ck_assert_int_eq(journal_append_at(j, &d, "1:100", err, sizeof(err)), 0);
    ck_assert_int_eq(journal_append_at(j, &d, "1:200", err, sizeof(err)), 0);
    ck_assert_int_eq(journal_append_at(j, &d, "1:300", err, sizeof(err)), 0);
    journal_close(j);
    flip_bits("journal.1", 7); /* the middle record of group 2 */

    j = journal_open(dir, &rec, err, sizeof(err));
    ck_assert_msg(j != NULL, "%s", err);
    ck_assert_str_eq(rec.cursor, "1:100");
    ck_assert_str_eq(journal_cursor(j), "1:100");
    ck_assert_int_eq(sum(&rec.replay), 14); /* group 1 only */
    ck_assert_uint_eq(rec.distrusted_records, 1);
    ck_assert_uint_eq(rec.discarded_records, 8); /* group 2 and group 3 */
    ck_assert_str_eq(rec.distrusted_at, "journal.1:7");
    journal_distrust_stats(&after);
    ck_assert_int_eq(after.records - before.records, 1);
    ck_assert_str_eq(after.cursor, "1:100");
    ck_assert(file_exists("distrusted.1"));
    journal_recovery_free(&rec);
    /* the recount lands after the cut: the next start reads group 1 and it */
    ck_assert_int_eq(journal_append_at(j, &d, "1:400", err, sizeof(err)), 0);
    journal_close(j);
    j = journal_open(dir, &rec, err, sizeof(err));
    ck_assert_msg(j != NULL, "%s", err);
    ck_assert_str_eq(rec.cursor, "1:400");
    ck_assert_int_eq(sum(&rec.replay), 28);
    ck_assert_uint_eq(rec.distrusted_records, 0);
    journal_close(j);
    journal_recovery_free(&rec);
    counter_deltas_free(&d);
}
END_TEST

/* Damage in the first group after a committed flush: resume at the flush's
 * cursor, not at the state's newer one (an append made while it committed). */
START_TEST(test_distrust_after_flush)
{
    struct journal_recovery rec;
    struct counter_deltas d;
    char err[256];
    int64_t covered;
    journal_t *j = journal_open(dir, &rec, err, sizeof(err));
    ck_assert_msg(j != NULL, "%s", err);
    journal_recovery_free(&rec);
    sample(&d);
    ck_assert_int_eq(journal_append_at(j, &d, "1:40", err, sizeof(err)), 0);
    ck_assert_int_eq(journal_rotate(j, &covered, err, sizeof(err)), 0);
    ck_assert_int_eq(journal_intent_write_at(j, 1, covered, &d, "1:50", err, sizeof(err)), 0);
    ck_assert_int_eq(journal_drop(j, covered, err, sizeof(err)), 0);
    /* journal.2: H, group (lines 2-5) at 1:60, group (6-9) at 1:70 */
    ck_assert_int_eq(journal_append_at(j, &d, "1:60", err, sizeof(err)), 0);
    ck_assert_int_eq(journal_commit(j, 1, err, sizeof(err)), 0);
    ck_assert_int_eq(journal_append_at(j, &d, "1:70", err, sizeof(err)), 0);
    journal_close(j);
    flip_bits("journal.2", 3);

    j = journal_open(dir, &rec, err, sizeof(err));
    ck_assert_msg(j != NULL, "%s", err);
    ck_assert_str_eq(rec.cursor, "1:50");
    ck_assert_int_eq(sum(&rec.replay), 0);
    ck_assert_int_eq(rec.has_intent, 0);
    ck_assert_uint_eq(rec.distrusted_records, 1);
    ck_assert(file_exists("distrusted.2"));
    journal_close(j);
    journal_recovery_free(&rec);
    /* and the start after that one too, though the state says 1:60 */
    j = journal_open(dir, &rec, err, sizeof(err));
    ck_assert_msg(j != NULL, "%s", err);
    ck_assert_str_eq(rec.cursor, "1:50");
    ck_assert_int_eq(sum(&rec.replay), 0);
    ck_assert_uint_eq(rec.distrusted_records, 0);
    journal_close(j);
    journal_recovery_free(&rec);
    counter_deltas_free(&d);
}
END_TEST

START_TEST(test_intent_drop_commit)
{
    struct journal_recovery rec;
    struct counter_deltas d, later;
    char err[256];
    int64_t covered = 0;
    journal_t *j = journal_open(dir, &rec, err, sizeof(err));
    ck_assert_msg(j != NULL, "%s", err);
    sample(&d);
    ck_assert_int_eq(journal_append(j, &d, err, sizeof(err)), 0);
    ck_assert_int_eq(journal_rotate(j, &covered, err, sizeof(err)), 0);
    ck_assert_int_eq(covered, 1);
    counter_deltas_init(&later);
    ck_assert_int_eq(counter_deltas_push(&later, "0021", "zz", -1, 1700000700, 3), 0);
    ck_assert_int_eq(journal_append(j, &later, err, sizeof(err)), 0);
    ck_assert_int_eq(journal_sync(j, err, sizeof(err)), 0);
    ck_assert_int_eq(journal_intent_write(j, 1, covered, &d, err, sizeof(err)), 0);
    ck_assert_int_eq(journal_next_seq(j), 2);
    ck_assert_int_eq(journal_drop(j, covered, err, sizeof(err)), 0);
    journal_close(j);
    journal_recovery_free(&rec);

    /* the intent and only the generation after it come back */
    j = journal_open(dir, &rec, err, sizeof(err));
    ck_assert_msg(j != NULL, "%s", err);
    ck_assert_int_eq(rec.has_intent, 1);
    ck_assert_int_eq(rec.intent_seq, 1);
    ck_assert_int_eq(rec.intent_gen, 1);
    ck_assert_int_eq(sum(&rec.intent), 14);
    ck_assert_int_eq(sum(&rec.replay), 3);
    ck_assert_int_eq(journal_next_seq(j), 2);
    ck_assert_int_eq(journal_commit(j, 1, err, sizeof(err)), 0);
    journal_close(j);
    journal_recovery_free(&rec);

    /* committed: no intent, the seq is not reused */
    j = journal_open(dir, &rec, err, sizeof(err));
    ck_assert_msg(j != NULL, "%s", err);
    ck_assert_int_eq(rec.has_intent, 0);
    ck_assert_int_eq(journal_next_seq(j), 2);
    ck_assert_int_eq(sum(&rec.replay), 3);
    journal_close(j);
    journal_recovery_free(&rec);
    counter_deltas_free(&d);
    counter_deltas_free(&later);
}
END_TEST

START_TEST(test_bad_instance_file)
{
    struct journal_recovery rec;
    char err[256], path[128];
    snprintf(path, sizeof(path), "%s/instance", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("not-hex\n", f);
    fclose(f);
    journal_t *j = journal_open(dir, &rec, err, sizeof(err));
    ck_assert_ptr_null(j);
    ck_assert_msg(strstr(err, "instance:1:1:") != NULL, "%s", err);
}
END_TEST

START_TEST(test_corrupt_intent_is_an_error)
{
    struct journal_recovery rec;
    struct counter_deltas d;
    char err[256];
    journal_t *j = journal_open(dir, &rec, err, sizeof(err));
    ck_assert_msg(j != NULL, "%s", err);
    sample(&d);
    ck_assert_int_eq(journal_intent_write(j, 1, 0, &d, err, sizeof(err)), 0);
    journal_close(j);
    journal_recovery_free(&rec);
    append_raw("flush.1", "R 1 x y 1 deadbeef\n");
    j = journal_open(dir, &rec, err, sizeof(err));
    ck_assert_ptr_null(j);
    ck_assert_msg(strstr(err, "flush.1:") != NULL, "%s", err);
    counter_deltas_free(&d);
}
END_TEST

/* Number of journal.<gen> files in the folder. */
static int generations(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "ls %s | grep -c '^journal\\.[0-9]*$'", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(fscanf(p, "%d", &n), 1);
    pclose(p);
    return n;
}

static const char *crash_step;
static int crash_hook(const char *step)
{
    return crash_step && strcmp(step, crash_step) == 0;
}

/* `appends` appends of the sample over `rotations`+1 generations, then a
 * compaction that the hook may stop at `step`; a reopen replays exactly
 * what was appended, whether the crash came before or after the rename. */
static void compact_and_reopen(const char *step, int rotations)
{
    struct journal_recovery rec;
    struct journal_compaction jc;
    struct counter_deltas d;
    char err[256];
    int64_t covered;
    journal_t *j = journal_open(dir, &rec, err, sizeof(err));
    ck_assert_msg(j != NULL, "%s", err);
    journal_recovery_free(&rec);
    sample(&d);
    for (int r = 0; r <= rotations; r++) {
        for (int i = 0; i < 50; i++)
            ck_assert_int_eq(journal_append(j, &d, err, sizeof(err)), 0);
        if (r < rotations)
            ck_assert_int_eq(journal_rotate(j, &covered, err, sizeof(err)), 0);
    }
    int64_t before = journal_bytes(j);
    ck_assert_int_eq(journal_compact_due(j, before), 1);
    crash_step = step;
    journal_crash_hook = crash_hook;
    int rc = journal_compact(j, &jc, err, sizeof(err));
    journal_crash_hook = NULL;
    crash_step = NULL;
    if (step) {
        ck_assert_int_eq(rc, JOURNAL_CRASHED);
    } else {
        ck_assert_msg(rc == 0, "%s", err);
        ck_assert_int_eq(jc.first, 1);
        ck_assert_int_eq(jc.last, rotations + 1);
        ck_assert_int_eq(jc.bytes_before, before);
        ck_assert_uint_eq(jc.rows, 3);
        ck_assert_int_lt(jc.bytes_after * 20, before);
        ck_assert_int_eq(journal_bytes(j), jc.bytes_after);
        ck_assert_int_eq(generations(), 1);
        /* it stays the current generation: appends go on after it */
        ck_assert_int_eq(journal_append(j, &d, err, sizeof(err)), 0);
        ck_assert_int_eq(journal_compact_due(j, 1), 0);
    }
    journal_close(j);

    j = journal_open(dir, &rec, err, sizeof(err));
    ck_assert_msg(j != NULL, "%s", err);
    ck_assert_uint_eq(rec.torn_records, 0);
    ck_assert_int_eq(sum(&rec.replay), 14 * (50 * (rotations + 1) + (step ? 0 : 1)));
    journal_close(j);
    journal_recovery_free(&rec);
    counter_deltas_free(&d);
}

START_TEST(test_compact)
{
    compact_and_reopen(NULL, 2);
}
END_TEST

START_TEST(test_compact_crash_before_rename)
{
    compact_and_reopen("compact_written", 1);
}
END_TEST

START_TEST(test_compact_crash_after_rename)
{
    compact_and_reopen("compact_renamed", 2);
}
END_TEST

START_TEST(test_compact_crash_while_deleting)
{
    compact_and_reopen("compact_drop_one", 3);
}
END_TEST

/* A compaction while a flush is in flight leaves the intent's generations
 * alone: the intent and the compacted rest come back, once each. */
START_TEST(test_compact_with_intent)
{
    struct journal_recovery rec;
    struct journal_compaction jc;
    struct counter_deltas d;
    char err[256];
    int64_t covered = 0;
    journal_t *j = journal_open(dir, &rec, err, sizeof(err));
    ck_assert_msg(j != NULL, "%s", err);
    journal_recovery_free(&rec);
    sample(&d);
    ck_assert_int_eq(journal_append(j, &d, err, sizeof(err)), 0);
    ck_assert_int_eq(journal_rotate(j, &covered, err, sizeof(err)), 0);
    ck_assert_int_eq(journal_intent_write(j, 1, covered, &d, err, sizeof(err)), 0);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(journal_append(j, &d, err, sizeof(err)), 0);
    ck_assert_msg(journal_compact(j, &jc, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(jc.first, 2);
    ck_assert_int_eq(jc.last, 2);
    journal_close(j);

    j = journal_open(dir, &rec, err, sizeof(err));
    ck_assert_msg(j != NULL, "%s", err);
    ck_assert_int_eq(rec.has_intent, 1);
    ck_assert_int_eq(sum(&rec.intent), 14);
    ck_assert_int_eq(sum(&rec.replay), 140);
    journal_close(j);
    journal_recovery_free(&rec);
    counter_deltas_free(&d);
}
END_TEST

/* One process per journal: a second open is refused while the first holds
 * it, and allowed after it closed. */
START_TEST(test_second_open_refused)
{
    struct journal_recovery rec, rec2;
    char err[256];
    journal_t *j = journal_open(dir, &rec, err, sizeof(err));
    ck_assert_msg(j != NULL, "%s", err);
    journal_t *j2 = journal_open(dir, &rec2, err, sizeof(err));
    ck_assert_ptr_null(j2);
    ck_assert_msg(strstr(err, "in use by another process") != NULL, "%s", err);
    journal_close(j);
    journal_recovery_free(&rec);
    j2 = journal_open(dir, &rec2, err, sizeof(err));
    ck_assert_msg(j2 != NULL, "%s", err);
    journal_close(j2);
    journal_recovery_free(&rec2);
}
END_TEST

Suite *journal_suite(void)
{
    Suite *s = suite_create("journal");
    TCase *tc = tcase_create("files");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_roundtrip_and_instance);
    tcase_add_test(tc, test_torn_and_corrupt_records);
    tcase_add_test(tc, test_distrust_mid_group);
    tcase_add_test(tc, test_distrust_after_flush);
    tcase_add_test(tc, test_intent_drop_commit);
    tcase_add_test(tc, test_bad_instance_file);
    tcase_add_test(tc, test_corrupt_intent_is_an_error);
    tcase_add_test(tc, test_compact);
    tcase_add_test(tc, test_compact_crash_before_rename);
    tcase_add_test(tc, test_compact_crash_after_rename);
    tcase_add_test(tc, test_compact_crash_while_deleting);
    tcase_add_test(tc, test_compact_with_intent);
    tcase_add_test(tc, test_second_open_refused);
    suite_add_tcase(s, tc);
    return s;
}
