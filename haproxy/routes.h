/* The routing table of a deployment: every host "<account>.<chain>.<domain>"
 * a provider account serves, and the checks cc-routes needs on top of the
 * deployment config's own validation (lib/ccgwconf.c). */
#ifndef CCGW_ROUTES_H
#define CCGW_ROUTES_H

#include <stddef.h>
#include <stdint.h>

#include "ccgwconf.h"

/* Longest Host HAProxy captures for the log; a longer host could not be
 * judged by the gateway's relay rule. */
#define ROUTES_HOST_MAX 253

struct routes_host {
    char *host;          /* lower-case, malloc'd */
    const char *chain;   /* chain id, points into the conf */
    const char *account; /* account id, points into the conf */
};

/* Longest map entry: host, blank, chain id (a DNS label), '/', account id. */
#define ROUTES_MAP_ENTRY_MAX (ROUTES_HOST_MAX + 1 + 63 + 1 + 63)

/* Fill err->text with a message that has no file position. */
void routes_error(struct yamlcfg_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* 1 when `s` can be written into an HAProxy config as one word: no blanks,
 * control characters, quotes, backslashes or '#'. */
int routes_safe_token(const char *s);

/* cc-node's peer port (network.listen) is its RPC port + 1000 in the local
 * stack (scripts/stack), the deploy/ examples and DESIGN.md's port table: a
 * convention of ours, not a rule of cc-node, which reads both from node.yaml. */
#define ROUTES_NODE_PEER_PORT_DELTA 1000

/* Checks cc-routes needs beyond ccgwconf_load(): an edge tier, at least one
 * non-backup http tier, a stats socket on every tier, hosts that fit the log
 * capture, Basic auth users without ':', and no port clash. The listeners
 * (each tier's bind, stats_bind and gateway_listen, and tls.bind) all run on
 * one machine: two on one port clash when their hosts are the same or either
 * is a wildcard (0.0.0.0, [::], ":port"). A listener must not take a
 * backend's address, nor, by the convention above, its peer port; a backend
 * counts as local when its host is the listener's, or a loopback or wildcard
 * address facing a wildcard listener (a DNS name may be another machine).
 * The message is at the later of the two places (file:line:col of its tier,
 * tls or backend mapping) and names the other with its position.
 * 0, or -1 with err filled. */
int routes_check(const struct ccgwconf *c, struct yamlcfg_error *err);

/* Every host of the config, sorted by host, one per (account, chain). The
 * array and its strings are the caller's: release with routes_hosts_free().
 * A duplicate host is an error. 0, or -1 with err filled. */
int routes_hosts(const struct ccgwconf *c, struct routes_host **out, size_t *n,
                 struct yamlcfg_error *err);
void routes_hosts_free(struct routes_host *hosts, size_t n);

/* One line of the HTTP tiers' host map, without its newline:
 * "<host> <chain>/<account>". The value is the route: HAProxy picks
 * be_<chain> from it and logs it whole, and cc-gateway counts the logged
 * route (gateway/relay.c), so this is the one place its form is written.
 * Its length, or -1 when it does not fit `len`. */
int routes_map_entry(const struct routes_host *h, char *buf, size_t len);

/* The address other HAProxy processes use to reach a tier's `bind`: a
 * wildcard host becomes loopback. Writes "host:port" into buf; 0 or -1. */
int routes_tier_address(const struct ccgwconf_tier *t, char *buf, size_t len);

#endif
