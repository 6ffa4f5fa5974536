/* Errors carrying an HTTP status. */
#include "rserr.h"

#include <stdarg.h>
#include <stdio.h>

void rserr_set(struct rserr *e, int status, const char *fmt, ...)
{
    va_list ap;

    if (!e)
        return;
    e->status = status;
    va_start(ap, fmt);
    vsnprintf(e->text, sizeof(e->text), fmt, ap);
    va_end(ap);
}
