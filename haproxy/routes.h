/* The routing table of a deployment: every host "<account>.<chain>.<domain>"
 * a provider account serves, and the checks cc-routes needs on top of the
 * deployment config's own validation (lib/ccgwconf.c). */
#ifndef CCGW_ROUTES_H
#define CCGW_ROUTES_H

#include <stddef.h>

#include "ccgwconf.h"

/* Longest Host HAProxy captures for the log; a longer host could not be
 * judged by the gateway's relay rule. */
#define ROUTES_HOST_MAX 253

struct routes_host {
    char *host;        /* lower-case, malloc'd */
    const char *chain; /* chain id, points into the conf */
};

/* Fill err->text with a message that has no file position. */
void routes_error(struct yamlcfg_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* 1 when `s` can be written into an HAProxy config as one word: no blanks,
 * control characters, quotes, backslashes or '#'. */
int routes_safe_token(const char *s);

/* Checks cc-routes needs beyond ccgwconf_load(): an edge tier, at least one
 * non-backup http tier, a stats socket on every tier, hosts that fit the log
 * capture, Basic auth users without ':'. 0, or -1 with err filled. */
int routes_check(const struct ccgwconf *c, struct yamlcfg_error *err);

/* Every host of the config, sorted by host, one per (account, chain). The
 * array and its strings are the caller's: release with routes_hosts_free().
 * A duplicate host is an error. 0, or -1 with err filled. */
int routes_hosts(const struct ccgwconf *c, struct routes_host **out, size_t *n,
                 struct yamlcfg_error *err);
void routes_hosts_free(struct routes_host *hosts, size_t n);

/* The address other HAProxy processes use to reach a tier's `bind`: a
 * wildcard host becomes loopback. Writes "host:port" into buf; 0 or -1. */
int routes_tier_address(const struct ccgwconf_tier *t, char *buf, size_t len);

#endif
