/* The flush protocol at every crash point: a fake database with a ledger
 * stands in for PostgreSQL, the crash hook stops the protocol where a kill
 * would, and a "restart" reopens the journal into a fresh counter. After
 * recovery the database total must equal every journaled count: nothing
 * lost, nothing doubled. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gateway/delivery_core.h"
#include "lib/log.h"
#include "tests/unit/tmpdir.h"

#define MAX_FLUSHES 64

struct fake_db {
    int64_t relays;
    int64_t non_relays;
    char ledger[MAX_FLUSHES][JOURNAL_INSTANCE_LEN + 24];
    int nledger;
    int down;     /* every apply fails, nothing applied */
    int lose_ack; /* next apply commits but reports failure */
    int applies;  /* apply calls */
};

static char dir[64];
static const char *crash_at;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int crash_hook(const char *step)
{
    return crash_at && strcmp(step, crash_at) == 0;
}

static int fake_apply(void *ctx, const char *instance, int64_t seq, const struct counter_deltas *d,
                      int *already, char *err, size_t errlen)
{
    struct fake_db *db = ctx;
    char key[JOURNAL_INSTANCE_LEN + 24];
    db->applies++;
    *already = 0;
    if (db->down) {
        snprintf(err, errlen, "fake: down");
        return -1;
    }
    snprintf(key, sizeof(key), "%s/%lld", instance, (long long)seq);
    for (int i = 0; i < db->nledger; i++)
        if (strcmp(db->ledger[i], key) == 0) {
            *already = 1;
            return 0;
        }
    ck_assert_int_lt(db->nledger, MAX_FLUSHES);
    snprintf(db->ledger[db->nledger++], sizeof(key), "%s", key);
    for (size_t i = 0; i < d->nrows; i++) {
        if (d->rows[i].chain)
            db->relays += d->rows[i].n;
        else
            db->non_relays += d->rows[i].n;
    }
    if (db->lose_ack) {
        db->lose_ack = 0;
        snprintf(err, errlen, "fake: answer lost");
        return -1;
    }
    return 0;
}

static void setup(void)
{
    log_setup("test", LOG_FORMAT_TEXT, LOG_ERROR, 2);
    unit_tmpdir(dir, sizeof(dir), "ccgw-delivery");
    crash_at = NULL;
    journal_crash_hook = crash_hook;
}

static void teardown(void)
{
    journal_crash_hook = NULL;
    unit_rmtree(dir);
}

/* A running "process": counter + core. */
struct proc {
    counter_t *counter;
    struct delivery_core core;
};

static void start(struct proc *p)
{
    char err[256];
    p->counter = counter_new();
    ck_assert_ptr_nonnull(p->counter);
    ck_assert_msg(delivery_core_open(&p->core, dir, p->counter, &lock, err, sizeof(err)) == 0, "%s",
                  err);
}

/* kill -9: memory is gone, files stay as they are */
static void crash(struct proc *p)
{
    delivery_core_close(&p->core);
    counter_free(p->counter);
}

static void count(struct proc *p, int n, int64_t bucket)
{
    char acct[16];
    for (int i = 0; i < n; i++) {
        snprintf(acct, sizeof(acct), "acct%02d", i % 7);
        ck_assert_int_eq(counter_add_relay(p->counter, i % 2 ? "0021" : "0001", acct, bucket, 1),
                         0);
    }
    ck_assert_int_eq(counter_add_non_relay(p->counter, NR_INVALID_HOST, bucket, 1), 0);
}

static void journal_tick(struct proc *p)
{
    char err[256];
    ck_assert_msg(delivery_core_journal(&p->core, err, sizeof(err)) == 0, "%s", err);
}

/* Flush until nothing is in flight or pending. */
static void flush_all(struct proc *p, struct fake_db *db)
{
    char err[256];
    struct delivery_flush_result res;
    for (int i = 0; i < 4; i++) {
        int rc = delivery_core_flush(&p->core, fake_apply, db, &res, err, sizeof(err));
        ck_assert_msg(rc == 0, "flush: %s", err);
        if (res.seq == 0)
            return;
    }
}

static void check_ledger_unique(const struct fake_db *db)
{
    for (int i = 0; i < db->nledger; i++)
        for (int k = i + 1; k < db->nledger; k++)
            ck_assert_str_ne(db->ledger[i], db->ledger[k]);
}

/* Journaled 150 relays (+2 non-relays), crash at `step` during the flush,
 * restart, flush everything, count 40 more, flush: the database holds
 * exactly 190 (+3). */
static void crash_during_flush(const char *step)
{
    struct fake_db db = {0};
    struct proc p;
    char err[256];
    struct delivery_flush_result res;
    start(&p);
    count(&p, 100, 300);
    journal_tick(&p);
    count(&p, 50, 600);
    journal_tick(&p);
    crash_at = step;
    int rc = delivery_core_flush(&p.core, fake_apply, &db, &res, err, sizeof(err));
    ck_assert_msg(rc == DELIVERY_CRASHED, "step %s: rc %d (%s)", step, rc, err);
    crash_at = NULL;
    crash(&p);

    start(&p);
    flush_all(&p, &db);
    ck_assert_int_eq(db.relays, 150);
    ck_assert_int_eq(db.non_relays, 2);
    count(&p, 40, 900);
    journal_tick(&p);
    flush_all(&p, &db);
    ck_assert_int_eq(db.relays, 190);
    ck_assert_int_eq(db.non_relays, 3);
    check_ledger_unique(&db);
    crash(&p);

    /* and a last restart finds nothing left to replay */
    start(&p);
    flush_all(&p, &db);
    ck_assert_int_eq(db.relays, 190);
    crash(&p);
}

START_TEST(test_crash_after_cut)
{
    crash_during_flush("cut");
}
END_TEST

START_TEST(test_crash_after_intent)
{
    crash_during_flush("intent_written");
}
END_TEST

START_TEST(test_crash_while_dropping_journals)
{
    crash_during_flush("journal_drop_one");
}
END_TEST

START_TEST(test_crash_after_dropping_journals)
{
    crash_during_flush("journal_dropped");
}
END_TEST

START_TEST(test_crash_after_commit_before_state)
{
    crash_during_flush("applied");
}
END_TEST

START_TEST(test_crash_after_state_before_intent_delete)
{
    crash_during_flush("commit_state_saved");
}
END_TEST

/* The commit lands but its answer is lost: the retry in the same process
 * finds the ledger row and applies nothing twice. */
START_TEST(test_lost_ack_retry)
{
    struct fake_db db = {0};
    struct proc p;
    char err[256];
    struct delivery_flush_result res;
    start(&p);
    count(&p, 100, 300);
    db.lose_ack = 1;
    ck_assert_int_eq(delivery_core_flush(&p.core, fake_apply, &db, &res, err, sizeof(err)), -1);
    ck_assert_int_eq(db.relays, 100);
    count(&p, 10, 300);
    ck_assert_int_eq(delivery_core_flush(&p.core, fake_apply, &db, &res, err, sizeof(err)), 0);
    ck_assert_int_eq(res.already_applied, 1);
    ck_assert_int_eq(res.was_inflight, 1);
    ck_assert_int_eq(db.relays, 100);
    flush_all(&p, &db);
    ck_assert_int_eq(db.relays, 110);
    ck_assert_int_eq(db.nledger, 2);
    crash(&p);
}
END_TEST

/* Database down for several rounds while counting goes on and journal
 * ticks run: the same flush is retried, nothing new starts before it, and
 * everything lands once when the database is back. */
START_TEST(test_database_down_then_back)
{
    struct fake_db db = {.down = 1};
    struct proc p;
    char err[256];
    struct delivery_flush_result res;
    start(&p);
    for (int round = 0; round < 5; round++) {
        count(&p, 20, 300 * (round + 1));
        journal_tick(&p);
        ck_assert_int_eq(delivery_core_flush(&p.core, fake_apply, &db, &res, err, sizeof(err)), -1);
        ck_assert_int_eq(p.core.inflight_seq, 1);
    }
    ck_assert_int_eq(db.relays, 0);
    db.down = 0;
    flush_all(&p, &db);
    ck_assert_int_eq(db.relays, 100);
    ck_assert_int_eq(db.non_relays, 5);
    ck_assert_int_eq(db.nledger, 2);
    crash(&p);
}
END_TEST

/* kill -9 with counts not yet journaled: those are lost (at most one fsync
 * interval), the journaled ones are not; replayed deltas are not journaled
 * again, so two crashes in a row do not double them. */
START_TEST(test_crash_unjournaled_and_double_restart)
{
    struct fake_db db = {0};
    struct proc p;
    start(&p);
    count(&p, 70, 300);
    journal_tick(&p);
    count(&p, 30, 300); /* not journaled */
    crash(&p);

    start(&p);
    journal_tick(&p); /* must not write the replayed deltas again */
    crash(&p);

    start(&p);
    flush_all(&p, &db);
    ck_assert_int_eq(db.relays, 70);
    ck_assert_int_eq(db.non_relays, 1);
    crash(&p);
}
END_TEST

/* A crash while the database is down, with an intent in flight and newer
 * deltas journaled after it: both come back, once each. */
START_TEST(test_crash_with_intent_and_newer_journal)
{
    struct fake_db db = {.down = 1};
    struct proc p;
    char err[256];
    struct delivery_flush_result res;
    start(&p);
    count(&p, 60, 300);
    journal_tick(&p);
    ck_assert_int_eq(delivery_core_flush(&p.core, fake_apply, &db, &res, err, sizeof(err)), -1);
    count(&p, 25, 600);
    journal_tick(&p);
    crash(&p);

    db.down = 0;
    start(&p);
    ck_assert_int_eq(p.core.inflight, 1);
    flush_all(&p, &db);
    ck_assert_int_eq(db.relays, 85);
    ck_assert_int_eq(db.non_relays, 2);
    ck_assert_int_eq(db.nledger, 2);
    crash(&p);
}
END_TEST

/* A long outage: many journal appends while every flush fails. Compaction
 * keeps the journal near the size of its distinct keys instead of growing
 * with every append, and when the database is back everything lands once. */
START_TEST(test_outage_compaction_keeps_journal_bounded)
{
    struct fake_db db = {.down = 1};
    struct proc p;
    char err[256];
    struct delivery_flush_result res;
    int64_t max_bytes = 0, appended = 0;
    start(&p);
    p.core.compact_min_bytes = 8192;
    for (int round = 0; round < 300; round++) {
        int64_t before = journal_bytes(p.core.journal);
        count(&p, 20, 300 * (1 + round % 3));
        journal_tick(&p);
        int64_t after = journal_bytes(p.core.journal);
        appended += after > before ? after - before : 0;
        if (after > max_bytes)
            max_bytes = after;
        if (round % 25 == 0)
            ck_assert_int_eq(delivery_core_flush(&p.core, fake_apply, &db, &res, err, sizeof(err)),
                             -1);
    }
    ck_assert_int_gt(p.core.compactions, 10);
    ck_assert_int_lt(max_bytes, 2 * 8192);
    ck_assert_int_eq(db.relays, 0);
    crash(&p);

    /* and across a restart, with the database back */
    db.down = 0;
    start(&p);
    flush_all(&p, &db);
    ck_assert_int_eq(db.relays, 300 * 20);
    ck_assert_int_eq(db.non_relays, 300);
    check_ledger_unique(&db);
    crash(&p);
}
END_TEST

/* kill -9 inside a compaction (the database down, a flush in flight): the
 * restart recovers every journaled count once. */
static void crash_during_compaction(const char *step)
{
    struct fake_db db = {.down = 1};
    struct proc p;
    char err[256];
    struct delivery_flush_result res;
    int rounds = 0, rc = 0;
    start(&p);
    p.core.compact_min_bytes = 4096;
    count(&p, 30, 300);
    journal_tick(&p);
    ck_assert_int_eq(delivery_core_flush(&p.core, fake_apply, &db, &res, err, sizeof(err)), -1);
    crash_at = step;
    while (rc == 0) {
        ck_assert_int_lt(rounds, 1000);
        count(&p, 20, 600);
        rounds++;
        rc = delivery_core_journal(&p.core, err, sizeof(err));
    }
    ck_assert_msg(rc == DELIVERY_CRASHED, "step %s: rc %d (%s)", step, rc, err);
    crash_at = NULL;
    crash(&p);

    db.down = 0;
    start(&p);
    ck_assert_int_eq(p.core.inflight, 1);
    flush_all(&p, &db);
    ck_assert_int_eq(db.relays, 30 + 20 * rounds);
    ck_assert_int_eq(db.non_relays, 1 + rounds);
    check_ledger_unique(&db);
    crash(&p);
}

START_TEST(test_crash_compaction_before_rename)
{
    crash_during_compaction("compact_written");
}
END_TEST

START_TEST(test_crash_compaction_after_rename)
{
    crash_during_compaction("compact_renamed");
}
END_TEST

START_TEST(test_crash_compaction_while_deleting)
{
    crash_during_compaction("compact_drop_one");
}
END_TEST

Suite *delivery_suite(void)
{
    Suite *s = suite_create("delivery");
    TCase *tc = tcase_create("crash_points");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_crash_after_cut);
    tcase_add_test(tc, test_crash_after_intent);
    tcase_add_test(tc, test_crash_while_dropping_journals);
    tcase_add_test(tc, test_crash_after_dropping_journals);
    tcase_add_test(tc, test_crash_after_commit_before_state);
    tcase_add_test(tc, test_crash_after_state_before_intent_delete);
    tcase_add_test(tc, test_lost_ack_retry);
    tcase_add_test(tc, test_database_down_then_back);
    tcase_add_test(tc, test_crash_unjournaled_and_double_restart);
    tcase_add_test(tc, test_crash_with_intent_and_newer_journal);
    tcase_add_test(tc, test_outage_compaction_keeps_journal_bounded);
    tcase_add_test(tc, test_crash_compaction_before_rename);
    tcase_add_test(tc, test_crash_compaction_after_rename);
    tcase_add_test(tc, test_crash_compaction_while_deleting);
    suite_add_tcase(s, tc);
    return s;
}
