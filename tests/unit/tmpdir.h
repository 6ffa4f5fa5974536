/* Scratch directories for unit tests: made with mkdtemp, removed with
 * everything below them (what `rm -rf` does, without a shell). */
#ifndef CCGW_TEST_TMPDIR_H
#define CCGW_TEST_TMPDIR_H

#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

/* Make a fresh directory /tmp/<prefix>.XXXXXX into buf; fails the test when
 * it cannot. */
static inline void unit_tmpdir(char *buf, size_t len, const char *prefix)
{
    ck_assert_int_lt(snprintf(buf, len, "/tmp/%s.XXXXXX", prefix), (int)len);
    ck_assert_ptr_nonnull(mkdtemp(buf));
}

static inline int unit_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Remove dir and everything below it. 0, or -1 when something stayed. */
static inline int unit_rmtree(const char *dir)
{
    return nftw(dir, unit_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
