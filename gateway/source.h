/* Where one HAProxy's output comes from: cc-gateway's stdin
 * (`haproxy ... | cc-gateway`) or a child HAProxy that cc-gateway runs.
 * With a child, cc-gateway owns the pipes: it enlarges them (HAProxy drops
 * log lines when the pipe is full), reads stdout (logs) and stderr (startup
 * messages), forwards SIGTERM/SIGINT/SIGUSR2/SIGHUP, and when the child
 * exits on its own either restarts it (with backoff) or stops and reports.
 * In both modes a SIGTERM ends reading only after the pipes are drained.
 * HAProxy's stdout is drained by a pump thread (pump.h) into memory, so that
 * ingestion (parsing, the request log's writes, the counter lock) never
 * leaves the pipe full: HAProxy drops a log line rather than wait for it. */
#ifndef CCGW_SOURCE_H
#define CCGW_SOURCE_H

#include <stddef.h>

#include "gateway.h"

struct source_options {
    char *const *child_argv; /* HAProxy command line; NULL: read stdin */
    int restart;             /* restart a child that exited on its own */
    /* Requested pipe buffer, bytes (0: 16 MiB). Without CAP_SYS_RESOURCE the
     * kernel caps it at /proc/sys/fs/pipe-max-size (1 MiB by default). */
    size_t pipe_size;
    void (*on_usr1)(void *ctx); /* SIGUSR1 (e.g. flush now); may be NULL */
    void *usr1_ctx;
};

/* Set a pipe's buffer to `want` bytes or, when that is refused, to the
 * system maximum. Returns the size in effect, or -1 when fd is no pipe. */
long source_set_pipe_size(int fd, size_t want);

/* Read until the end: stdin's EOF, a SIGTERM, or a child that ended and is
 * not restarted. Every buffer taken from the pump is ingested under gw->lock. Returns the
 * process exit status: 0, or 1 with the reason logged (the child failed,
 * could not start, or a read error). */
int source_run(const struct source_options *o, struct gateway *gw);

#endif
