/* The local journal of one cc-gateway source: the crash-safe copy of counts
 * that PostgreSQL has not committed yet. Files under <data_dir>/<source>/:
 *
 *   instance         random 128-bit hex id of this journal, created once;
 *                    with the flush seq it names a flush in relay_flushes
 *   lock             flock'ed by the process that has the journal open
 *   journal.<gen>    appended delta records, one per line:
 *                      H 2 <check>                      (first line)
 *                      R <bucket> <chain> <account> <n> <check>
 *                      N <bucket> <reason> <n> <check>
 *                      P <cursor> <check>
 *                    one append is a group of deltas closed by a P record
 *                    carrying the caller's cursor (an opaque word: where
 *                    in its input the deltas end), written in one write();
 *                    deltas count only once their P record is there, so a
 *                    crash mid-append drops the group whole and the caller
 *                    resumes from the last cursor (nothing twice)
 *                    <check> is the first 4 bytes of the SHA-256 of the text
 *                    before it, in hex. A last line without its newline
 *                    (the tail of a crashed append) is skipped on replay and
 *                    counted. A whole line that fails its check is damage,
 *                    not a crash (an append is one write()): replay stops
 *                    there, as PostgreSQL's WAL replay stops at a bad
 *                    record. See "Distrust" below.
 *                    A compacted generation starts with
 *                      C <first> <last> <check>
 *                    and holds the summed deltas of generations first..last,
 *                    which recovery then deletes unread (written to a temp
 *                    file, fsynced, renamed, folder fsynced, and only then
 *                    the old generations deleted)
 *   flush.<seq>      intent of an unfinished flush: seq, the generations it
 *                    covers and every delta of it (written to a temp file,
 *                    fsynced, renamed, directory fsynced)
 *   state            last committed seq, covered generation, the newest
 *                    cursor known then and ("flushed") the committed
 *                    intent's cursor (same way; "flushed" is optional)
 *   distrusted.<gen> generations (or copies of them) set aside by
 *                    recovery after a damaged record; never read again
 *
 * Distrust. PostgreSQL holds every delta counted before the cursor of the
 * newest flush whose ledger row exists: the intent on disk (retried; the
 * ledger finds it if it was applied), else the state's "flushed". Every
 * generation after it holds only deltas counted after that cursor (the
 * flush cut a new generation). So the records of those generations before
 * the first damaged one, group by group, are exact, and the rule is:
 *   - replay generations oldest first; at the first whole line failing its
 *     check, apply nothing of its group and nothing after it;
 *   - resume at the last P record before it; when there is none, at the
 *     intent's cursor, else at the state's "flushed" one (a state file
 *     without it: the state's cursor, logged as a possible loss);
 *   - set aside the later generations and cut the damaged one at the end of
 *     its last good group (a copy is kept), so that the next start reads
 *     what this one applied; the lines after the cursor are recounted from
 *     the request log. Nothing before the cursor is counted twice (it is in
 *     PostgreSQL or applied from the journal), nothing after it is in
 *     PostgreSQL (flushes only cover what the journal had before them).
 * The damaged record is reported (event journal_distrusted,
 * journal_distrust_stats() for /metrics).
 *
 * Not thread-safe: delivery.c serialises access. */
#ifndef CCGW_JOURNAL_H
#define CCGW_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "counter.h"

#define JOURNAL_INSTANCE_LEN 32 /* hex characters */
#define JOURNAL_CURSOR_MAX 1024 /* bytes of a cursor word */

typedef struct journal journal_t;

/* What a previous run left behind, found by journal_open(). */
struct journal_recovery {
    int has_intent; /* an unfinished flush must be retried first */
    int64_t intent_seq;
    int64_t intent_gen;           /* generations <= this are in the intent */
    struct counter_deltas intent; /* its deltas */
    struct counter_deltas replay; /* deltas of journal generations after it */
    size_t torn_records;          /* bad tail records ignored */
    size_t dropped_records;       /* records of an append torn before its P record */
    size_t distrusted_records;    /* 1 when a record failed its check (replay stopped) */
    size_t discarded_records;     /* records from it on, not applied (it included) */
    char distrusted_at[96];       /* "journal.<gen>:<line>" of it, or "" */
    /* The caller's position when it took the newest deltas recovered (the
     * last P record, else the intent's, else the state's); NULL: none. */
    char *cursor;
    char *intent_cursor; /* the intent's own (internal) */
};

/* Open (creating) the journal folder `dir`, load or create the instance id,
 * recover: read the intent and the state file, delete generations an intent
 * or the state already covers, read the remaining ones into `rec` (init'd
 * here, free with journal_recovery_free) and open a fresh generation for
 * appending. NULL with `err` filled (path:line: reason for a corrupt file). */
journal_t *journal_open(const char *dir, struct journal_recovery *rec, char *err, size_t errlen);
void journal_close(journal_t *j);
void journal_recovery_free(struct journal_recovery *rec);

/* Path of the folder and the instance id (hex, NUL-terminated). */
const char *journal_dir(const journal_t *j);
const char *journal_instance(const journal_t *j);

/* The seq the next new flush gets (last committed + 1, past any intent). */
int64_t journal_next_seq(const journal_t *j);

/* Append deltas to the current generation (buffered by the kernel; call
 * journal_sync to make them durable). 0, or -1 with err. */
int journal_append(journal_t *j, const struct counter_deltas *d, char *err, size_t errlen);

/* The same, closing the group with `cursor` (a word of printable ASCII, at
 * most JOURNAL_CURSOR_MAX bytes; NULL keeps the last one). Writes nothing
 * when there are no deltas and the cursor did not move. 0 or -1 with err. */
int journal_append_at(journal_t *j, const struct counter_deltas *d, const char *cursor, char *err,
                      size_t errlen);

/* The last cursor appended or recovered; NULL when none. */
const char *journal_cursor(const journal_t *j);

/* fdatasync the current generation. 0 or -1 with err. */
int journal_sync(journal_t *j, char *err, size_t errlen);

/* Start generation gen+1 for later appends; `*covered` gets the last
 * generation the next intent covers. 0 or -1 with err. */
int journal_rotate(journal_t *j, int64_t *covered, char *err, size_t errlen);

/* Make the intent of flush `seq` (covering generations <= `gen`, deltas `d`)
 * durable. 0 or -1 with err; on failure no intent exists. */
int journal_intent_write(journal_t *j, int64_t seq, int64_t gen, const struct counter_deltas *d,
                         char *err, size_t errlen);
/* The same, with the cursor the intent's deltas were taken at (kept in the
 * state file at commit when no later append moved it). */
int journal_intent_write_at(journal_t *j, int64_t seq, int64_t gen, const struct counter_deltas *d,
                            const char *cursor, char *err, size_t errlen);

/* Delete the generations <= `gen` (an intent covers them). 0, -1 with err
 * or JOURNAL_CRASHED. */
int journal_drop(journal_t *j, int64_t gen, char *err, size_t errlen);

/* Flush `seq` committed: record it in the state file, then delete its
 * intent. 0, JOURNAL_CRASHED, or -1 with err (the intent then may stay, and
 * its retry is found already applied by the ledger). */
int journal_commit(journal_t *j, int64_t seq, char *err, size_t errlen);

/* Bytes in the journal generations now. */
int64_t journal_bytes(const journal_t *j);

/* Whether the journal has grown enough to compact: at least `min_bytes`
 * and twice the size the last compaction left (Redis' AOF rewrite rule, so
 * that a large pending state is not rewritten on every append). */
int journal_compact_due(const journal_t *j, int64_t min_bytes);

struct journal_compaction {
    int64_t first, last;  /* generations replaced */
    int64_t bytes_before; /* their size */
    int64_t bytes_after;  /* the new generation's */
    size_t rows;          /* distinct keys written */
    size_t torn_records;  /* bad records skipped while reading */
};

/* Compact: sync, sum every generation that no intent covers into one new
 * generation (header "C first last"), written atomically, append to it from
 * now on, delete the old ones. A crash at any point leaves either the old
 * generations or the new one counting, never both. 0 (res filled), -1 with
 * err (the old generations stay in use), or JOURNAL_CRASHED. */
int journal_compact(journal_t *j, struct journal_compaction *res, char *err, size_t errlen);

/* Damaged records that journal_open found in this process (all journals),
 * and the last one's place and the cursor counting resumed at. */
struct journal_distrust {
    int64_t records;   /* records that failed their check */
    int64_t discarded; /* records not applied because of them */
    char at[96];
    char cursor[128]; /* truncated */
};
void journal_distrust_stats(struct journal_distrust *out);

/* Test hook for crash points: when set, journal.c and delivery.c call it
 * with a step name at each point where a crash is interesting; non-zero
 * makes the caller stop right there, as if the process had died. */
typedef int (*journal_crash_fn)(const char *step);
#define JOURNAL_CRASHED (-2) /* returned by a journal function the hook stopped */
extern journal_crash_fn journal_crash_hook;

#endif
