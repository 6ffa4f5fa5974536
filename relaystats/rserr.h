/* Errors of relaystats operations, carrying the HTTP status they map to:
 * 400 for bad input, 403/401 for access, 500/503 for server-side failures.
 * The CLI prints `text` and exits 2 for 4xx, 1 otherwise. */
#ifndef CCGW_RSERR_H
#define CCGW_RSERR_H

#define RSERR_TEXT 512

struct rserr {
    int status;
    char text[RSERR_TEXT];
};

/* Fill `e` (which may be NULL) with a status and a printf-style message. */
void rserr_set(struct rserr *e, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
