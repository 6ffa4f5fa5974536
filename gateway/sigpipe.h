/* Signals as bytes on a pipe (the self-pipe trick): the handler only
 * writes the signal number to a non-blocking pipe, and the process's event
 * loop polls sigpipe_fd() and reads them with sigpipe_next(), so that no
 * work ever runs in a signal handler. One per process (the supervisor's and
 * the worker's loops). */
#ifndef CCGW_SIGPIPE_H
#define CCGW_SIGPIPE_H

#include <stddef.h>

/* Route the `n` signals of `sigs` to the pipe, ignore SIGPIPE, then unblock
 * every signal (the supervisor starts the worker with signals blocked, so
 * that one sent before this point waits and arrives here). 0, or -1 with
 * errno. */
int sigpipe_install(const int *sigs, size_t n);

/* The read end, to poll for POLLIN. */
int sigpipe_fd(void);

/* The next pending signal, or 0 when none is pending. */
int sigpipe_next(void);

#endif
