/* `relaystats serve`'s ownership upkeep, on a thread of its own with its
 * own connection:
 *
 * - the config file: synced (rssync) at start and whenever it changes. The
 *   file's device, inode, size and mtime are polled every `poll_secs`; a
 *   change is acted on once two polls in a row agree (an editor that
 *   truncates then writes is not read half-way). Each sync logs
 *   config_synced with its counts. A config that does not load is logged
 *   (config_invalid, at error level) and the ownership left as it was until
 *   the file changes again; a sync that fails on the database (or waits on a
 *   standby) is retried at every poll. Only ownership follows the file: the
 *   other settings serve read at start stay as they were.
 *
 * - the unowned relays: every `unowned_every_secs`, and after each sync,
 *   the relays of the last 24 hours whose (account, chain) had no owner at
 *   their bucket time (rsexport_unowned over rswatch_unowned_range()), for
 *   the gauge ccgw_relaystats_unowned_relays. */
#ifndef CCGW_RSWATCH_H
#define CCGW_RSWATCH_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "prom.h"
#include "rstime.h"

struct rswatch_options {
    const char *conninfo;
    const char *config_path; /* NULL: no sync, the gauge only */
    int poll_secs;           /* 0: 2 */
    int unowned_every_secs;  /* 0: 60 */
};

struct rswatch;

/* Start the thread (it syncs and refreshes the gauge at once). NULL on OOM
 * or when the thread cannot start. Strings are copied. */
struct rswatch *rswatch_start(const struct rswatch_options *o);

/* Stop and join the thread; NULL is allowed. */
void rswatch_stop(struct rswatch *w);

/* Write its metric families into `p` (thread-safe): the unowned gauge
 * (absent until a first refresh succeeded) and when it was refreshed, and
 * the config syncs. NULL `w` writes nothing. 0 or -1. */
int rswatch_metrics(struct rswatch *w, prom_t *p);

/* What identifies a version of the config file. */
struct rswatch_sig {
    int ok; /* 0: stat failed */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
};

/* stat() `path` into *s. 0, or -1 (s->ok 0, errno set). */
int rswatch_sig_read(const char *path, struct rswatch_sig *s);

/* 1 when both name the same readable version of the file. */
int rswatch_sig_equal(const struct rswatch_sig *a, const struct rswatch_sig *b);

/* The gauge's window at `now`: the 288 five-minute buckets up to and
 * including the current one. */
void rswatch_unowned_range(int64_t now, struct rstime_range *r);

#endif
