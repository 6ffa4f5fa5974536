/* sys: complete writes, durable replacement, clocks, error messages. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sys.h"
#include "tmpdir.h"

START_TEST(test_sys_array_len)
{
    int a[7];
    const char *b[] = {"x", "y", NULL};
    struct {
        char c[3];
    } s[5];

    ck_assert_uint_eq(ARRAY_LEN(a), 7);
    ck_assert_uint_eq(ARRAY_LEN(b), 3);
    ck_assert_uint_eq(ARRAY_LEN(s), 5);
    ck_assert_uint_eq(ARRAY_LEN(s[0].c), 3);
}
END_TEST

static int fails_with(char *err, size_t errlen, int v)
{
    return SYS_ERR("value %d is %s", v, "bad");
}

START_TEST(test_sys_set_err)
{
    char err[64], small[8];

    errno = EACCES;
    ck_assert_int_eq(sys_set_err(err, sizeof(err), "%s: %d", "x", 42), -1);
    ck_assert_str_eq(err, "x: 42");
    ck_assert_int_eq(errno, EACCES);
    ck_assert_int_eq(fails_with(err, sizeof(err), 7), -1);
    ck_assert_str_eq(err, "value 7 is bad");
    ck_assert_int_eq(sys_set_err(small, sizeof(small), "%s", "truncated message"), -1);
    ck_assert_str_eq(small, "truncat");
    ck_assert_int_eq(sys_set_err(NULL, 0, "ignored %d", 1), -1);
    ck_assert_int_eq(fails_with(NULL, 0, 1), -1);
}
END_TEST

struct reader {
    int fd;
    size_t got;
    unsigned sum;
};

static void *drain(void *arg)
{
    struct reader *r = arg;
    unsigned char buf[4096];
    ssize_t n;

    while ((n = read(r->fd, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++)
            r->sum += buf[i];
        r->got += (size_t)n;
    }
    return NULL;
}

START_TEST(test_sys_write_all_pipe)
{
    /* Far more than a pipe holds: write() returns short counts. */
    size_t len = 1 << 20;
    unsigned char *buf = malloc(len);
    unsigned sum = 0;
    int fds[2];
    pthread_t t;
    struct reader r = {0};

    ck_assert_ptr_nonnull(buf);
    for (size_t i = 0; i < len; i++) {
        buf[i] = (unsigned char)(i * 31 + 7);
        sum += buf[i];
    }
    ck_assert_int_eq(pipe(fds), 0);
    r.fd = fds[0];
    ck_assert_int_eq(pthread_create(&t, NULL, drain, &r), 0);
    ck_assert_int_eq(sys_write_all(fds[1], buf, len), 0);
    ck_assert_int_eq(sys_write_all(fds[1], buf, 0), 0);
    close(fds[1]);
    pthread_join(t, NULL);
    close(fds[0]);
    ck_assert_uint_eq(r.got, len);
    ck_assert_uint_eq(r.sum, sum);
    free(buf);
}
END_TEST

START_TEST(test_sys_write_all_error)
{
    int fds[2];

    signal(SIGPIPE, SIG_IGN);
    ck_assert_int_eq(pipe(fds), 0);
    close(fds[0]);
    errno = 0;
    ck_assert_int_eq(sys_write_all(fds[1], "abc", 3), -1);
    ck_assert_int_eq(errno, EPIPE);
    close(fds[1]);
    ck_assert_int_eq(sys_write_all(-1, "abc", 3), -1);
    ck_assert_int_eq(errno, EBADF);
}
END_TEST

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    static char buf[4096];

    if (!f)
        return NULL;
    *len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    return buf;
}

START_TEST(test_sys_write_file_atomic)
{
    char dir[256], path[512], tmp[520], err[256];
    struct stat st;
    size_t len;
    const char *got;

    unit_tmpdir(dir, sizeof(dir), "ccgw-sys");
    snprintf(path, sizeof(path), "%s/state", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);

    ck_assert_int_eq(sys_write_file_atomic(path, "first", 5, 0644, err, sizeof(err)), 0);
    got = slurp(path, &len);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(len, 5);
    ck_assert_int_eq(memcmp(got, "first", 5), 0);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0644);
    ck_assert_int_eq(access(tmp, F_OK), -1);

    /* Replacing, over a stale temp file of a crashed writer with a wider mode. */
    FILE *f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    fputs("stale stale stale", f);
    fclose(f);
    chmod(tmp, 0666);
    ck_assert_int_eq(sys_write_file_atomic(path, "2nd", 3, 0600, err, sizeof(err)), 0);
    got = slurp(path, &len);
    ck_assert_uint_eq(len, 3);
    ck_assert_int_eq(memcmp(got, "2nd", 3), 0);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(access(tmp, F_OK), -1);

    ck_assert_int_eq(sys_write_file_atomic(path, "", 0, 0644, err, sizeof(err)), 0);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, 0);

    ck_assert_int_eq(sys_fsync_dir(dir), 0);
    ck_assert_int_eq(unit_rmtree(dir), 0);
}
END_TEST

START_TEST(test_sys_write_file_atomic_fails)
{
    char dir[256], path[512], err[256] = "";

    unit_tmpdir(dir, sizeof(dir), "ccgw-sys");
    snprintf(path, sizeof(path), "%s/missing/state", dir);
    errno = 0;
    ck_assert_int_eq(sys_write_file_atomic(path, "x", 1, 0644, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "missing/state.tmp"));

    /* A directory in the way of the rename: the old content stays. */
    snprintf(path, sizeof(path), "%s/sub", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/sub/x", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/sub", dir);
    ck_assert_int_eq(sys_write_file_atomic(path, "x", 1, 0644, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "rename"));
    snprintf(path, sizeof(path), "%s/sub.tmp", dir);
    ck_assert_int_eq(access(path, F_OK), -1);

    ck_assert_int_eq(sys_fsync_dir(path), -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_int_eq(unit_rmtree(dir), 0);
}
END_TEST

START_TEST(test_sys_mkdirs)
{
    char dir[256], path[512];
    struct stat st;

    unit_tmpdir(dir, sizeof(dir), "ccgw-sys");
    snprintf(path, sizeof(path), "%s/a/b/c", dir);
    ck_assert_int_eq(sys_mkdirs(path), 0);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_int_eq(sys_mkdirs(path), 0); /* already there */
    snprintf(path, sizeof(path), "%s/a/b/c/", dir);
    ck_assert_int_eq(sys_mkdirs(path), 0); /* trailing slash */
    snprintf(path, sizeof(path), "%s/a/file", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/a/file/d", dir);
    errno = 0;
    ck_assert_int_eq(sys_mkdirs(path), -1);
    ck_assert_int_eq(errno, ENOTDIR);
    ck_assert_int_eq(sys_mkdirs(""), -1);
    ck_assert_int_eq(unit_rmtree(dir), 0);
}
END_TEST

START_TEST(test_sys_clocks)
{
    int64_t m0 = sys_mono_ms(), w = sys_wall_ms();
    double s0 = sys_mono_s();
    struct timespec nap = {0, 20 * 1000000L};
    int64_t now = (int64_t)time(NULL) * 1000;

    ck_assert_int_ge(w, now - 2000);
    ck_assert_int_le(w, now + 2000);
    ck_assert_int_ge(m0, 0);
    /* The two monotonic readings agree on the same clock. */
    ck_assert_int_le(llabs((long long)(s0 * 1000.0) - m0), 5);
    nanosleep(&nap, NULL);
    ck_assert_int_ge(sys_mono_ms() - m0, 20);
    ck_assert(sys_mono_s() - s0 >= 0.020);
}
END_TEST

Suite *sys_suite(void)
{
    Suite *s = suite_create("sys");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_sys_array_len);
    tcase_add_test(tc, test_sys_set_err);
    tcase_add_test(tc, test_sys_write_all_pipe);
    tcase_add_test(tc, test_sys_write_all_error);
    tcase_add_test(tc, test_sys_write_file_atomic);
    tcase_add_test(tc, test_sys_write_file_atomic_fails);
    tcase_add_test(tc, test_sys_mkdirs);
    tcase_add_test(tc, test_sys_clocks);
    suite_add_tcase(s, tc);
    return s;
}
