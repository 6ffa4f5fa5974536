/* The dashboard's static files (relaystats/web/), embedded in the binary.
 * The table is generated at build time by relaystats/web/embed.sh into
 * build/.../gen/rsweb_assets.c (a Makefile rule), so the page needs no build
 * step and no network on the user's side. */
#ifndef CCGW_RSWEB_H
#define CCGW_RSWEB_H

#include <stddef.h>

struct rsweb_asset {
    const char *path;         /* "/", "/app.js", "/style.css" */
    const char *content_type; /* static */
    const unsigned char *data;
    size_t len;
};

extern const struct rsweb_asset rsweb_assets[];
extern const size_t rsweb_nassets;

/* The asset served at `path`, or NULL. */
const struct rsweb_asset *rsweb_find(const char *path);

#endif
