/* Lookup in the embedded dashboard files. */
#include "rsweb.h"

#include <string.h>

const struct rsweb_asset *rsweb_find(const char *path)
{
    for (size_t i = 0; i < rsweb_nassets; i++)
        if (strcmp(rsweb_assets[i].path, path) == 0)
            return &rsweb_assets[i];
    return NULL;
}
