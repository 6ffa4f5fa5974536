/* Rendering of the HAProxy configs and the host map from the deployment
 * config. The fixed parts live in haproxy/templates/ *.cfg.in; a template is
 * plain text in which @NAME@ (upper-case letters, digits, '_') is replaced by
 * a value. A line that holds nothing but one placeholder whose value is
 * empty is dropped, so optional directives leave no blank line behind. */
#ifndef CCGW_RENDER_H
#define CCGW_RENDER_H

#include <stddef.h>

#include "ccgwconf.h"
#include "routes.h"

struct render_templates {
    char *edge;        /* edge.cfg.in: the edge tier */
    char *http;        /* http.cfg.in: an HTTP tier (http0, http1) */
    char *backend;     /* backend.cfg.in: one chain's backend */
    char *server;      /* server.cfg.in: one chain server line */
    char *edge_server; /* edge-server.cfg.in: one HTTP tier as the edge's server */
    char *stats;       /* stats.cfg.in: stats page and Prometheus exporter */
};

struct render_var {
    const char *name; /* without the '@' */
    const char *value;
};

/* Read every template from `dir`. 0, or -1 with err filled; free with
 * render_templates_free() either way. */
int render_templates_load(const char *dir, struct render_templates *t, struct yamlcfg_error *err);
void render_templates_free(struct render_templates *t);

/* Replace the placeholders of `tmpl` (called `name` in messages). *out is
 * malloc'd and the caller's. An unknown or unterminated placeholder is an
 * error naming the template line. 0 or -1. */
int render_fill(const char *name, const char *tmpl, const struct render_var *vars, size_t nvars,
                char **out, struct yamlcfg_error *err);

/* The whole config of one tier; `map_path` is the host map the HTTP tiers
 * load (and the name the runtime API knows it by). *out is the caller's. */
int render_tier(const struct render_templates *t, const struct ccgwconf *c,
                const struct ccgwconf_tier *tier, const char *map_path, char **out,
                struct yamlcfg_error *err);

/* One chain server line ("    server <name> <address> <options>\n"), as in
 * the config; cc-routes apply turns it into `add server`. */
int render_server(const struct render_templates *t, const struct ccgwconf_backend *b, char **out,
                  struct yamlcfg_error *err);

/* The map file: "<host> be_<chain>\n" per host, in the order given. */
int render_map(const struct routes_host *hosts, size_t n, char **out, size_t *len,
               struct yamlcfg_error *err);

/* "Basic <base64(user:password)>" for the Authorization header. NULL on OOM. */
char *render_basic_auth(const char *user, const char *password);

#endif
