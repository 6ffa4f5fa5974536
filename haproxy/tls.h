/* The edge's certificates: read and checked with OpenSSL (readable, a key
 * that matches, not expired, every routed host covered), turned into the one
 * PEM per certificate that HAProxy loads through its crt-list, and pushed to
 * a running edge through the runtime API (`set ssl cert`, `commit ssl cert`)
 * when they change. */
#ifndef CCGW_TLS_H
#define CCGW_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "ccgwconf.h"
#include "routes.h"

/* The files `cc-routes render` writes next to the host map. */
#define TLS_CRT_LIST "crt-list"
#define TLS_EXPIRY_MAP "tls-expiry.map"
#define TLS_METRICS_LF "tls-metrics.lf"
/* The URI of the edge's stats listener that serves the expiry metric. */
#define TLS_METRICS_URI "/metrics/tls"

struct tls_cert {
    const struct ccgwconf_certificate *conf;
    char *pem;          /* certificate, chain, then the key: what HAProxy loads */
    int64_t not_after;  /* epoch seconds */
    int64_t not_before; /* epoch seconds */
    char serial[80];    /* hex */
    void *leaf;         /* X509 *, for host checks */
};

/* Load every certificate of c->tls and check it: the file is readable and
 * holds a certificate, the key (in `key` or in `cert`) is readable,
 * unencrypted and matches it, it is valid now. `now` is epoch seconds.
 * *out is the caller's (tls_certs_free). 0, or -1 with err naming the config
 * entry. With no tls section, 0 and *n = 0. */
int tls_certs_load(const struct ccgwconf *c, int64_t now, struct tls_cert **out, size_t *n,
                   struct yamlcfg_error *err);
void tls_certs_free(struct tls_cert *certs, size_t n);

/* Every host must be served by a certificate whose names cover it
 * (X509_check_host: one wildcard label). 0, or -1 naming the first host
 * that none covers. */
int tls_check_hosts(const struct ccgwconf *c, const struct tls_cert *certs, size_t ncerts,
                    const struct routes_host *hosts, size_t nhosts, struct yamlcfg_error *err);

/* The PEM file name of a certificate inside the rendered directory. */
int tls_pem_name(const struct ccgwconf_certificate *ct, char *buf, size_t len);

/* crt-list: one line per certificate, naming `<dir>/<pem name>`; the first
 * is the default for clients without SNI. *out is the caller's. 0 or -1. */
int tls_render_crt_list(const struct tls_cert *certs, size_t n, const char *dir, char **out,
                        struct yamlcfg_error *err);
/* "<name> <notAfter>\n" per certificate. */
int tls_render_expiry_map(const struct tls_cert *certs, size_t n, char **out,
                          struct yamlcfg_error *err);
/* The Prometheus text the edge's stats listener returns on TLS_METRICS_URI,
 * as an HAProxy log-format that reads each notAfter from `map_path` (so a
 * rotation updates it through the runtime API). */
int tls_render_metrics_lf(const struct ccgwconf *c, const struct tls_cert *certs, size_t n,
                          const char *map_path, char **out, struct yamlcfg_error *err);

struct tls_rotate_report {
    size_t added;     /* certificates the running edge did not have, added live */
    size_t rotated;   /* certificates replaced live */
    size_t unchanged; /* already served */
};

/* Load and check c's certificates (tls_certs_load + tls_check_hosts), then,
 * for each whose PEM differs from `<dir>/<pem name>`, replace it in the
 * running edge (`set ssl cert` + `commit ssl cert`, `abort` on failure), write
 * the new PEM file (so a restart loads it) and update the expiry map, live and
 * on disk. A certificate the running edge does not have is added: `new ssl
 * cert`, filled and committed the same way, then `add ssl crt-list` (its
 * notAfter line in the stats listener's metric waits for a restart). 0, or
 * -1 with err filled. */
int tls_rotate(const struct ccgwconf *c, const char *dir, struct tls_rotate_report *report,
               struct yamlcfg_error *err);

/* Append to `buf` ("; "-separated) what only a restart applies between the
 * config the tiers run and `cur`: the HTTPS listener, the plain port's
 * policy, HSTS, a certificate removed or renamed, a chain's WebSocket opt-in or
 * the servers of a chain that has one (apply changes be_<chain> only). */
void tls_restart_reasons(const struct ccgwconf *old, const struct ccgwconf *cur, char *buf,
                         size_t len);

#endif
