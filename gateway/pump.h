/* A thread that drains one file descriptor (HAProxy's log pipe) into memory
 * as fast as the kernel hands the bytes out, so that the writer never finds
 * the pipe full while the consumer parses lines, writes the request log, or
 * waits for the counter lock. HAProxy does not block on its log: a full pipe
 * is a dropped line, an uncounted relay.
 *
 * Bytes are held in blocks of PUMP_BLOCK allocated only while they are
 * needed, up to a limit; at the limit the thread stops reading and the pipe
 * buffers the rest (counted in `full`). One consumer thread takes the bytes
 * with pump_read(), which works like read(2) on a non-blocking fd, and waits
 * on pump_fd(). */
#ifndef CCGW_PUMP_H
#define CCGW_PUMP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PUMP_BLOCK (1u << 20)

typedef struct pump pump_t;

struct pump_stats {
    uint64_t bytes;    /* read from the fd */
    size_t held;       /* read, not taken yet */
    size_t high_water; /* most bytes held at once */
    uint64_t full;     /* times the memory limit paused reading */
};

/* Start draining `fd` into at most `max_bytes` of memory (rounded up to whole
 * blocks, at least two). The fd stays the caller's: close it after
 * pump_free(). Returns NULL with a message in err on failure. */
pump_t *pump_start(int fd, size_t max_bytes, char *err, size_t errlen);

/* A descriptor that polls readable while bytes or the end wait for
 * pump_read(). Owned by the pump. */
int pump_fd(const pump_t *p);

/* Copy up to `n` bytes into dst, oldest first. Returns the count; 0 at the
 * end (EOF of the fd, or pump_finish) once every byte was taken; -1 with
 * errno EAGAIN when nothing waits yet, or with the errno of a failed read of
 * the fd once every byte before it was taken. */
ssize_t pump_read(pump_t *p, void *dst, size_t n);

/* Read what the fd holds now without waiting for more, then end (reading
 * stdin after SIGTERM). pump_read() returns 0 after those bytes. */
void pump_finish(pump_t *p);

/* Stop the thread and free everything; bytes not taken are lost. NULL is
 * allowed. */
void pump_free(pump_t *p);

/* A consistent copy of the counters. */
void pump_get_stats(pump_t *p, struct pump_stats *out);

#endif
