/* Method errors and table lookup (see method.h). */
#include "method.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int node_method_fail(struct node_method_error *e, int code, const char *fmt, ...)
{
    va_list ap;
    e->code = code;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return -1;
}

const struct node_method *node_method_find(const struct node_method *table, const char *name)
{
    for (const struct node_method *m = table; m->name; m++)
        if (strcmp(m->name, name) == 0)
            return m;
    return NULL;
}
