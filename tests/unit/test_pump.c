/* The pump: every byte written to a pipe comes out of pump_read() once, in
 * order, whatever the sizes of writes and reads; memory stays within the
 * limit while the consumer does not read (the pipe buffers the rest);
 * pump_finish ends after what is there; a failed read of the fd is reported
 * after the bytes before it. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gateway/pump.h"

/* Byte i of the test stream: a pattern that catches reordering and loss. */
static char pattern(size_t i)
{
    return (char)((i * 7 + i / 4093) & 0xff);
}

struct writer {
    int fd;
    size_t total;
    size_t chunk;
};

static void *write_all(void *arg)
{
    struct writer *w = arg;
    char *buf = malloc(w->chunk);
    size_t off = 0;
    ck_assert_ptr_nonnull(buf);
    while (off < w->total) {
        size_t n = w->total - off < w->chunk ? w->total - off : w->chunk;
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern(off + i);
        size_t done = 0;
        while (done < n) {
            ssize_t k = write(w->fd, buf + done, n - done);
            ck_assert_int_gt(k, 0);
            done += (size_t)k;
        }
        off += n;
    }
    free(buf);
    close(w->fd);
    return NULL;
}

/* Read through the pump until the end; checks every byte; returns the count. */
static size_t read_all(pump_t *p, size_t chunk)
{
    char *buf = malloc(chunk);
    size_t got = 0;
    ck_assert_ptr_nonnull(buf);
    for (;;) {
        ssize_t n = pump_read(p, buf, chunk);
        if (n == 0)
            break;
        if (n < 0) {
            ck_assert_int_eq(errno, EAGAIN);
            struct pollfd pfd = {.fd = pump_fd(p), .events = POLLIN};
            ck_assert_int_eq(poll(&pfd, 1, 10000), 1);
            continue;
        }
        for (ssize_t i = 0; i < n; i++)
            ck_assert_msg(buf[i] == pattern(got + (size_t)i), "byte %zu differs", got + (size_t)i);
        got += (size_t)n;
    }
    free(buf);
    return got;
}

static void check_stream(size_t total, size_t wchunk, size_t rchunk, size_t limit)
{
    int fds[2];
    char err[128];
    pthread_t t;

    ck_assert_int_eq(pipe(fds), 0);
    pump_t *p = pump_start(fds[0], limit, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    struct writer w = {fds[1], total, wchunk};
    ck_assert_int_eq(pthread_create(&t, NULL, write_all, &w), 0);
    ck_assert_uint_eq(read_all(p, rchunk), total);
    pthread_join(t, NULL);
    struct pump_stats st;
    pump_get_stats(p, &st);
    ck_assert_uint_eq(st.bytes, total);
    ck_assert_uint_eq(st.held, 0);
    size_t blocks = (limit + PUMP_BLOCK - 1) / PUMP_BLOCK;
    ck_assert_uint_le(st.high_water, (blocks < 2 ? 2 : blocks) * PUMP_BLOCK);
    pump_free(p);
    close(fds[0]);
}

START_TEST(test_every_byte_in_order)
{
    /* Writes and reads of odd sizes that straddle block boundaries. */
    check_stream(5 * PUMP_BLOCK + 12345, 4099, 65521, 8 * PUMP_BLOCK);
    check_stream(3 * PUMP_BLOCK, PUMP_BLOCK, 1, 2 * PUMP_BLOCK + 1);
    check_stream(1, 1, 4096, 0);
    check_stream(0, 1, 4096, 0);
}
END_TEST

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

START_TEST(test_limit_holds_while_consumer_is_away)
{
    int fds[2];
    char err[128];
    pthread_t t;
    struct pump_stats st;
    const size_t total = 5 * PUMP_BLOCK;

    ck_assert_int_eq(pipe(fds), 0);
    pump_t *p = pump_start(fds[0], 2 * PUMP_BLOCK, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    struct writer w = {fds[1], total, 65536};
    ck_assert_int_eq(pthread_create(&t, NULL, write_all, &w), 0);
    /* Nobody reads: the pump fills its two blocks and stops reading. */
    for (int i = 0; i < 500; i++) {
        pump_get_stats(p, &st);
        if (st.full > 0)
            break;
        sleep_ms(10);
    }
    pump_get_stats(p, &st);
    ck_assert_uint_eq(st.full, 1);
    ck_assert_uint_eq(st.held, 2 * PUMP_BLOCK);
    sleep_ms(50);
    pump_get_stats(p, &st);
    ck_assert_uint_eq(st.held, 2 * PUMP_BLOCK);
    ck_assert_uint_le(st.high_water, 2 * PUMP_BLOCK);
    /* Reading again frees blocks: everything arrives, in order. */
    ck_assert_uint_eq(read_all(p, 100000), total);
    pthread_join(t, NULL);
    pump_free(p);
    close(fds[0]);
}
END_TEST

START_TEST(test_finish_ends_after_what_is_there)
{
    int fds[2];
    char err[128], buf[64];

    ck_assert_int_eq(pipe(fds), 0);
    pump_t *p = pump_start(fds[0], 0, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    ck_assert_int_eq(write(fds[1], "abc\n", 4), 4);
    /* The writer stays open: only pump_finish can end the stream. */
    pump_finish(p);
    size_t got = 0;
    for (;;) {
        struct pollfd pfd = {.fd = pump_fd(p), .events = POLLIN};
        ck_assert_int_eq(poll(&pfd, 1, 10000), 1);
        ssize_t n = pump_read(p, buf + got, sizeof(buf) - got);
        if (n == 0)
            break;
        if (n < 0) {
            ck_assert_int_eq(errno, EAGAIN);
            continue;
        }
        got += (size_t)n;
    }
    ck_assert_uint_eq(got, 4);
    ck_assert_int_eq(memcmp(buf, "abc\n", 4), 0);
    pump_free(p);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

START_TEST(test_nothing_waiting_is_eagain_and_not_readable)
{
    int fds[2];
    char err[128], buf[16];

    ck_assert_int_eq(pipe(fds), 0);
    pump_t *p = pump_start(fds[0], 0, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    struct pollfd pfd = {.fd = pump_fd(p), .events = POLLIN};
    ck_assert_int_eq(poll(&pfd, 1, 50), 0);
    ck_assert_int_eq(pump_read(p, buf, sizeof(buf)), -1);
    ck_assert_int_eq(errno, EAGAIN);
    ck_assert_int_eq(write(fds[1], "x", 1), 1);
    ck_assert_int_eq(poll(&pfd, 1, 10000), 1);
    ck_assert_int_eq(pump_read(p, buf, sizeof(buf)), 1);
    ck_assert_int_eq(buf[0], 'x');
    ck_assert_int_eq(pump_read(p, buf, sizeof(buf)), -1);
    ck_assert_int_eq(errno, EAGAIN);
    ck_assert_int_eq(poll(&pfd, 1, 0), 0);
    /* Freed while the thread waits in poll: it stops. */
    pump_free(p);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

START_TEST(test_read_error_is_reported)
{
    char err[128], buf[16];
    int fd = open(".", O_RDONLY | O_DIRECTORY);
    ck_assert_int_ge(fd, 0);
    pump_t *p = pump_start(fd, 0, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    struct pollfd pfd = {.fd = pump_fd(p), .events = POLLIN};
    ck_assert_int_eq(poll(&pfd, 1, 10000), 1);
    ck_assert_int_eq(pump_read(p, buf, sizeof(buf)), -1);
    ck_assert_int_eq(errno, EISDIR);
    pump_free(p);
    close(fd);
}
END_TEST

Suite *pump_suite(void)
{
    Suite *s = suite_create("pump");
    TCase *tc = tcase_create("pump");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_every_byte_in_order);
    tcase_add_test(tc, test_limit_holds_while_consumer_is_away);
    tcase_add_test(tc, test_finish_ends_after_what_is_there);
    tcase_add_test(tc, test_nothing_waiting_is_eagain_and_not_readable);
    tcase_add_test(tc, test_read_error_is_reported);
    suite_add_tcase(s, tc);
    return s;
}
