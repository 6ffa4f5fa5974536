/* cc-gateway's supervisor: the small process that owns what must outlive a
 * crash of the counting process (HAProxy's master-worker, nginx's master,
 * PostgreSQL's postmaster are the models). It
 *   - holds the tier lock (one tier instance at a time: a stale HAProxy of
 *     the tier, found by its pid file or its stats socket, is stopped before
 *     a new one starts, never run beside it);
 *   - runs HAProxy as its child with a parent-death signal, so HAProxy never
 *     serves without its log reader; restarts it when it dies;
 *   - moves HAProxy's stdout into the request-log segments with splice(2)
 *     (segment.h) and its stderr lines into them as SEGMENT_STDERR_PREFIX
 *     lines;
 *   - runs the worker (the counting process: parse, count, journal,
 *     deliver) as its child, also with a parent-death signal, and restarts
 *     it when it dies. The worker inherits the tier lock and the read end of
 *     HAProxy's stdout, which it drains into the segment itself only if the
 *     supervisor is gone.
 * It parses nothing and allocates almost nothing after start. */
#ifndef CCGW_SUPERVISOR_H
#define CCGW_SUPERVISOR_H

#include <stddef.h>
#include <stdint.h>

struct supervisor_options {
    const char *source;        /* tier name, for messages */
    char *const *child_argv;   /* HAProxy's command line; NULL: read stdin */
    int restart;               /* restart HAProxy when it exits on its own */
    size_t pipe_size;          /* requested pipe buffer (0: 16 MiB, capped by the system) */
    const char *segments_dir;  /* <logs.dir>/<source> */
    int64_t segment_max_bytes; /* cut segments after this size */
    const char *state_dir;     /* <data_dir>/<source>: tier.lock, haproxy.pid */
    const char *stats_socket;  /* the tier's HAProxy stats socket, or NULL */
    const char *worker_path;   /* the cc-gateway binary */
    char **worker_argv;        /* its argv; the slot worker_fd_arg is filled in */
    int worker_fd_arg;         /* index in worker_argv of the inherited-fd value */
    int worker_fatal_status;   /* a worker exiting with it is not restarted: stop */
};

/* Run until stdin ends, a SIGTERM/SIGINT (HAProxy stopped, its output
 * moved, the worker stopped after counting it), or HAProxy exiting when it
 * is not restarted. Returns the exit status (0, or 1 with the reason
 * logged). */
int supervisor_run(const struct supervisor_options *o);

/* Set a pipe's buffer to `want` bytes or, when that is refused, to the
 * system maximum. Returns the size in effect, or -1 when fd is no pipe. */
long supervisor_set_pipe_size(int fd, size_t want);

#endif
