/* Live routing changes through the runtime API: the host map is swapped as a
 * whole with prepare/add/commit map, chain servers are added, re-weighted,
 * re-addressed and removed without failing a request (a new server must be
 * UP before an old one is drained, and a drained one is deleted only when its
 * last session ended). Changes the runtime API cannot make (a new chain
 * backend, a new tier, new timeouts or credentials) are reported as needing
 * a restart. */
#ifndef CCGW_APPLY_H
#define CCGW_APPLY_H

#include <stddef.h>

#include "ccgwconf.h"
#include "render.h"
#include "routes.h"

struct apply_opts {
    int wait_up_ms; /* how long a new or moved server may take to pass its checks */
    int drain_ms;   /* how long a removed server's sessions may take to end */
};

struct apply_report {
    size_t hosts; /* map entries loaded, summed over tiers */
    size_t servers_added, servers_removed, servers_moved, weights_changed;
    char restart[1024]; /* why a restart is still needed; "" when none */
};

/* Append to report->restart the differences between `old` and `cur` that
 * only a restart applies. */
void apply_restart_reasons(const struct ccgwconf *old, const struct ccgwconf *cur,
                           struct apply_report *report);

/* Bring the running HTTP tier `tier` in line with `c`, whose hosts are
 * `hosts`; `map_path` is the map name the tier loaded. 0, or -1 with err
 * filled (changes made before the failure stay made). */
int apply_tier(const struct render_templates *t, const struct ccgwconf *c,
               const struct ccgwconf_tier *tier, const char *map_path,
               const struct routes_host *hosts, size_t nhosts, const struct apply_opts *opts,
               struct apply_report *report, struct yamlcfg_error *err);

#endif
