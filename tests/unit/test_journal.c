/* Journal files: records round-trip, a torn or corrupt record is skipped,
 * intents and the state file survive a reopen. */
#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/journal.h"
#include "lib/log.h"

static char dir[64];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void setup(void)
{
    log_setup("test", LOG_FORMAT_TEXT, LOG_ERROR, 2);
    snprintf(dir, sizeof(dir), "/tmp/ccgw-journal-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
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
    ck_assert_uint_eq(rec.torn_records, 2);
    ck_assert_int_eq(sum(&rec.replay), 28);
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

Suite *journal_suite(void)
{
    Suite *s = suite_create("journal");
    TCase *tc = tcase_create("files");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_roundtrip_and_instance);
    tcase_add_test(tc, test_torn_and_corrupt_records);
    tcase_add_test(tc, test_intent_drop_commit);
    tcase_add_test(tc, test_bad_instance_file);
    tcase_add_test(tc, test_corrupt_intent_is_an_error);
    suite_add_tcase(s, tc);
    return s;
}
