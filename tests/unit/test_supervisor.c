/* What the supervisor relies on when the request log cannot be written: a
 * write that fails leaves HAProxy's lines in the pipe, and the next move
 * carries on exactly where the failed one stopped (a file size limit stands
 * in for a full disk: the same partial write, then an error); a segment
 * that cannot be started is retried by the next move; the status file the
 * worker reads says blocked or ok, error text included, and a torn one is
 * refused. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "gateway/segment.h"
#include "lib/log.h"
#include "tests/unit/tmpdir.h"

static char dir[64];

static void setup(void)
{
    log_setup("test", LOG_FORMAT_TEXT, LOG_ERROR, 2);
    unit_tmpdir(dir, sizeof(dir), "ccgw-supervisor");
}

static void teardown(void)
{
    struct rlimit r = {RLIM_INFINITY, RLIM_INFINITY};
    setrlimit(RLIMIT_FSIZE, &r);
    ck_assert_int_eq(unit_rmtree(dir), 0);
}

static void limit_file_size(rlim_t bytes)
{
    struct rlimit r;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &r), 0);
    r.rlim_cur = bytes;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &r), 0);
}

static char *slurp(const char *path, size_t *len)
{
    static char buf[8192];
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    ck_assert_int_ge(n, 0);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

START_TEST(test_failed_write_stays_in_pipe)
{
    char err[256], path[256], expect[4096] = "";
    int p[2];
    signal(SIGXFSZ, SIG_IGN);
    segment_writer_t *w = segment_writer_open(dir, 1 << 20, err, sizeof(err));
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(segment_writer_start(w, 4242, err, sizeof(err)), 0);
    int64_t header = segment_writer_size(w);
    ck_assert_int_eq(pipe(p), 0);
    for (int i = 0; i < 40; i++) {
        char line[64];
        int n = snprintf(line, sizeof(line), "line %02d of forty, forty-eight bytes long...\n", i);
        ck_assert_int_eq(write(p[1], line, (size_t)n), n);
        strcat(expect, line);
    }
    close(p[1]);
    /* room for a few lines and a half: the rest must stay in the pipe */
    limit_file_size((rlim_t)header + 300);
    ssize_t moved = 0, n;
    while ((n = segment_writer_move(w, p[0], err, sizeof(err))) > 0)
        moved += n;
    ck_assert_int_eq(n, -1);
    ck_assert_int_eq(errno, EFBIG);
    ck_assert_int_eq(moved, 300);
    ck_assert_str_ne(err, "");
    /* a failed try again moves nothing and loses nothing */
    ck_assert_int_eq(segment_writer_move(w, p[0], err, sizeof(err)), -1);
    limit_file_size(RLIM_INFINITY);
    while ((n = segment_writer_move(w, p[0], err, sizeof(err))) > 0)
        moved += n;
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(moved, (ssize_t)strlen(expect));
    close(p[0]);
    ck_assert_int_eq(segment_path(dir, 1, path, sizeof(path)), 0);
    size_t len;
    char *text = slurp(path, &len);
    ck_assert_int_eq(len, (size_t)header + strlen(expect));
    ck_assert_str_eq(text + header, expect);
    /* the preallocated space is not part of the size the worker reads */
    ck_assert_int_eq(segment_writer_size(w), (int64_t)len);
    segment_writer_close(w);
}
END_TEST

START_TEST(test_start_retried_by_move)
{
    char err[256], path[256];
    int p[2];
    signal(SIGXFSZ, SIG_IGN);
    segment_writer_t *w = segment_writer_open(dir, 1 << 20, err, sizeof(err));
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(segment_writer_start(w, 100, err, sizeof(err)), 0);
    /* a new HAProxy whose segment cannot be started: not even its header */
    limit_file_size(10);
    ck_assert_int_eq(segment_writer_start(w, 200, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EFBIG);
    ck_assert_int_eq(segment_path(dir, 2, path, sizeof(path)), 0);
    ck_assert_int_eq(access(path, F_OK), -1); /* no segment without its header */
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(write(p[1], "GET / 200\n", 10), 10);
    /* its line never goes into the previous HAProxy's segment */
    ck_assert_int_eq(segment_writer_move(w, p[0], err, sizeof(err)), -1);
    ck_assert_int_eq(segment_writer_current(w), 1);
    limit_file_size(RLIM_INFINITY);
    ck_assert_int_eq(segment_writer_move(w, p[0], err, sizeof(err)), 10);
    ck_assert_int_eq(segment_writer_current(w), 2);
    ck_assert_int_eq(segment_pid(dir, 2), 200);
    close(p[0]);
    close(p[1]);
    size_t len;
    char *text = slurp(path, &len);
    ck_assert_ptr_nonnull(strstr(text, "haproxy_pid=200"));
    ck_assert_str_eq(text + len - 10, "GET / 200\n");
    ck_assert_int_eq(access(path, F_OK), 0);
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%s/requests.new.tmp", dir);
    ck_assert_int_eq(access(tmp, F_OK), -1);
    segment_writer_close(w);
}
END_TEST

START_TEST(test_status_round_trip)
{
    char err[256], path[256];
    struct segment_status st = {0}, got;
    snprintf(path, sizeof(path), "%s/%s", dir, SEGMENT_STATUS_FILE);
    ck_assert_int_eq(segment_status_read(path, &got), -1); /* none yet */
    int fd = segment_status_open(path, err, sizeof(err));
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(segment_status_read(path, &got), 0);
    ck_assert_int_eq(got.blocked, 0);
    ck_assert_int_eq(got.episodes, 0);
    st.blocked = 1;
    st.since_ms = 1700000000123;
    st.episodes = 3;
    snprintf(st.error, sizeof(st.error), "segment 7: No space left on device end");
    ck_assert_int_eq(segment_status_write(fd, &st), 0);
    ck_assert_int_eq(segment_status_read(path, &got), 0);
    ck_assert_int_eq(got.blocked, 1);
    ck_assert_int_eq(got.since_ms, 1700000000123);
    ck_assert_int_eq(got.episodes, 3);
    ck_assert_str_eq(got.error, "segment 7: No space left on device end");
    /* written in place: the size never changes, a full disk cannot stop it */
    st.blocked = 0;
    st.since_ms = 0;
    ck_assert_int_eq(segment_status_write(fd, &st), 0);
    ck_assert_int_eq(lseek(fd, 0, SEEK_END), SEGMENT_STATUS_BYTES);
    ck_assert_int_eq(segment_status_read(path, &got), 0);
    ck_assert_int_eq(got.blocked, 0);
    ck_assert_int_eq(got.episodes, 3);
    /* a torn read (no end mark) is refused */
    ck_assert_int_eq(pwrite(fd, "state=blocked since_ms=1 episodes=4 error=x", 43, 0), 43);
    ck_assert_int_eq(pwrite(fd, "                                        ", 40, 100), 40);
    char buf[SEGMENT_STATUS_BYTES];
    memset(buf, ' ', sizeof(buf));
    memcpy(buf, "state=blocked since_ms=1 episodes=4 error=x", 43);
    ck_assert_int_eq(pwrite(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
    ck_assert_int_eq(segment_status_read(path, &got), -1);
    close(fd);
}
END_TEST

Suite *supervisor_suite(void)
{
    Suite *s = suite_create("supervisor");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_failed_write_stays_in_pipe);
    tcase_add_test(tc, test_start_retried_by_move);
    tcase_add_test(tc, test_status_round_trip);
    suite_add_tcase(s, tc);
    return s;
}
