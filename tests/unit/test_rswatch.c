/* serve's config watch: what counts as a new version of the file, and the
 * unowned gauge's window (the thread runs in tests/integration/
 * test_ownership.sh). */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "relaystats/rswatch.h"
#include "tmpdir.h"

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_ge(fputs(text, f), 0);
    ck_assert_int_eq(fclose(f), 0);
}

START_TEST(signature)
{
    char dir[64], path[128], other[128];
    struct rswatch_sig a, b, missing;
    struct timespec times[2];

    unit_tmpdir(dir, sizeof(dir), "rswatch");
    snprintf(path, sizeof(path), "%s/ccgw.yaml", dir);
    snprintf(other, sizeof(other), "%s/ccgw.yaml.new", dir);
    write_file(path, "a: 1\n");
    ck_assert_int_eq(rswatch_sig_read(path, &a), 0);
    ck_assert_int_eq(rswatch_sig_read(path, &b), 0);
    ck_assert_int_eq(rswatch_sig_equal(&a, &b), 1);

    /* same size, same second: the nanoseconds of the mtime tell */
    times[0] = a.mtime;
    times[1] = a.mtime;
    times[1].tv_nsec = (times[1].tv_nsec + 1) % 1000000000;
    write_file(path, "a: 2\n");
    ck_assert_int_eq(utimensat(AT_FDCWD, path, times, 0), 0);
    ck_assert_int_eq(rswatch_sig_read(path, &b), 0);
    ck_assert_int_eq(rswatch_sig_equal(&a, &b), 0);

    /* another size, the mtime put back */
    write_file(path, "a: 10\n");
    times[1] = a.mtime;
    ck_assert_int_eq(utimensat(AT_FDCWD, path, times, 0), 0);
    ck_assert_int_eq(rswatch_sig_read(path, &b), 0);
    ck_assert_int_eq(rswatch_sig_equal(&a, &b), 0);

    /* replaced by rename with the same size and mtime: another inode */
    ck_assert_int_eq(rswatch_sig_read(path, &a), 0);
    write_file(other, "a: 11\n");
    ck_assert_int_eq(utimensat(AT_FDCWD, other, times, 0), 0);
    ck_assert_int_eq(rename(other, path), 0);
    ck_assert_int_eq(rswatch_sig_read(path, &b), 0);
    ck_assert_int_eq(rswatch_sig_equal(&a, &b), 0);

    /* a missing file equals nothing, itself included */
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(rswatch_sig_read(path, &missing), -1);
    ck_assert_int_eq(missing.ok, 0);
    ck_assert_int_eq(rswatch_sig_equal(&missing, &missing), 0);
    ck_assert_int_eq(unit_rmtree(dir), 0);
}
END_TEST

START_TEST(unowned_window)
{
    struct rstime_range r;

    /* 2026-01-10T00:07:00Z: up to the bucket of 00:05 included */
    rswatch_unowned_range(1768003620, &r);
    ck_assert_int_eq(r.step, 300);
    ck_assert_int_eq(r.to, 1768003200 + 600);
    ck_assert_int_eq(r.to - r.from, 86400);
    ck_assert_int_eq(rstime_nbuckets(&r), 288);
    rswatch_unowned_range(1768003200, &r);
    ck_assert_int_eq(r.to, 1768003500);
}
END_TEST

START_TEST(metrics_without_watch)
{
    prom_t *p = prom_new();
    size_t len = 1;

    ck_assert_int_eq(rswatch_metrics(NULL, p), 0);
    ck_assert_ptr_nonnull(prom_text(p, &len));
    ck_assert_uint_eq(len, 0);
    prom_free(p);
}
END_TEST

Suite *rswatch_suite(void)
{
    Suite *s = suite_create("rswatch");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, signature);
    tcase_add_test(tc, unowned_window);
    tcase_add_test(tc, metrics_without_watch);
    suite_add_tcase(s, tc);
    return s;
}
