/* Writing the rendered files into the output directory: everything is
 * rendered into a staging directory next to the target, every tier config is
 * checked with `haproxy -c` against the staged map, and only then are the
 * files renamed into place, map first. A config HAProxy rejects is never left
 * in place, and a reader never sees a half-written file. */
#ifndef CCGW_INSTALL_H
#define CCGW_INSTALL_H

#include <limits.h>
#include <stddef.h>

#include "ccgwconf.h"
#include "render.h"

#define INSTALL_MAP "hosts.map"
/* A copy of the deployment config the files were rendered from: the
 * "previous" config of the next `cc-routes apply`. */
#define INSTALL_STATE "routes.state.yaml"

struct install_result {
    char dir[PATH_MAX];      /* absolute output directory */
    char map_path[PATH_MAX]; /* absolute map path, as the configs name it */
    size_t nhosts;
};

/* Render the host map and every tier's config (<tier>.cfg) of `c` into
 * `dir` (created if missing), check each with `haproxy -c` and install them.
 * 0, or -1 with err filled and nothing in `dir` changed. */
int install_render(const struct render_templates *t, const struct ccgwconf *c, const char *dir,
                   struct install_result *res, struct yamlcfg_error *err);

/* Run `<haproxy> -c -f <cfg>`. 0 when HAProxy accepts it; -1 with HAProxy's
 * first alerts in err otherwise. */
int install_check_config(const char *haproxy, const char *cfg, struct yamlcfg_error *err);

/* The absolute map path that install_render() writes for `dir`, which must
 * exist. 0 or -1. */
int install_map_path(const char *dir, char *buf, size_t len, struct yamlcfg_error *err);

#endif
