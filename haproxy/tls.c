/* Certificates of the edge: OpenSSL does the reading and checking. */
#include "tls.h"

#include <errno.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "hapi.h"
#include "sys.h"

#define TLS_METRIC "ccgw_tls_certificate_not_after_seconds"

/* OpenSSL's last error as text, then its queue cleared. */
static const char *ssl_reason(void)
{
    static char buf[200];
    unsigned long e = ERR_peek_last_error();

    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    else
        snprintf(buf, sizeof(buf), "no PEM data");
    ERR_clear_error();
    return buf;
}

static int asn1_epoch(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;

    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return -1;
    *out = (int64_t)timegm(&tm);
    return 0;
}

static void utc_text(int64_t epoch, char *buf, size_t len)
{
    time_t t = (time_t)epoch;
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* Can the file be opened? Gives the errno text of why not. */
static int readable(const char *path, struct yamlcfg_error *err, const struct ccgwconf *c,
                    const struct ccgwconf_certificate *ct, const char *where, const char *what)
{
    FILE *f = fopen(path, "r");

    if (!f) {
        yamlcfg_error_at(err, c->path, &ct->mark, where, "%s %s: %s", what, path, strerror(errno));
        return -1;
    }
    fclose(f);
    return 0;
}

/* Read the certificate, its chain and the key of one entry; build the PEM. */
static int load_one(const struct ccgwconf *c, size_t i, int64_t now, struct tls_cert *out,
                    struct yamlcfg_error *err)
{
    const struct ccgwconf_certificate *ct = &c->tls.certificates[i];
    const char *keyfile = ct->key ? ct->key : ct->cert;
    char where[64], when[40];
    BIO *in = NULL, *mem = NULL;
    X509 *leaf = NULL, *extra = NULL;
    EVP_PKEY *key = NULL;
    ASN1_INTEGER *serial;
    BIGNUM *bn = NULL;
    char *hex = NULL, *data;
    long len;
    int rc = -1;

    snprintf(where, sizeof(where), "tls.certificates[%zu]", i);
    out->conf = ct;
    if (readable(ct->cert, err, c, ct, where, "certificate") < 0 ||
        readable(keyfile, err, c, ct, where, "key") < 0)
        return -1;
    ERR_clear_error();
    mem = BIO_new(BIO_s_mem());
    in = BIO_new_file(ct->cert, "r");
    if (!mem || !in) {
        yamlcfg_error_at(err, c->path, &ct->mark, where, "certificate %s: %s", ct->cert,
                         ssl_reason());
        goto out;
    }
    leaf = PEM_read_bio_X509(in, NULL, NULL, NULL);
    if (!leaf) {
        yamlcfg_error_at(err, c->path, &ct->mark, where,
                         "certificate %s: not a PEM certificate (%s)", ct->cert, ssl_reason());
        goto out;
    }
    if (!PEM_write_bio_X509(mem, leaf))
        goto ssl_fail;
    /* The rest of the file is the chain; a key there is read below. */
    while ((extra = PEM_read_bio_X509(in, NULL, NULL, NULL)) != NULL) {
        if (!PEM_write_bio_X509(mem, extra))
            goto ssl_fail;
        X509_free(extra);
        extra = NULL;
    }
    ERR_clear_error();
    BIO_free(in);
    in = BIO_new_file(keyfile, "r");
    if (!in)
        goto ssl_fail;
    /* No passphrase callback: an encrypted key is refused, HAProxy could not
     * load it unattended either. */
    key = PEM_read_bio_PrivateKey(in, NULL, NULL, (void *)"");
    if (!key) {
        yamlcfg_error_at(err, c->path, &ct->mark, where,
                         "key %s: no unencrypted PEM private key (%s)", keyfile, ssl_reason());
        goto out;
    }
    if (X509_check_private_key(leaf, key) != 1) {
        ERR_clear_error();
        yamlcfg_error_at(err, c->path, &ct->mark, where, "key %s does not match certificate %s",
                         keyfile, ct->cert);
        goto out;
    }
    if (!PEM_write_bio_PrivateKey(mem, key, NULL, NULL, 0, NULL, NULL))
        goto ssl_fail;
    if (asn1_epoch(X509_get0_notAfter(leaf), &out->not_after) < 0 ||
        asn1_epoch(X509_get0_notBefore(leaf), &out->not_before) < 0) {
        yamlcfg_error_at(err, c->path, &ct->mark, where,
                         "certificate %s: unreadable validity dates", ct->cert);
        goto out;
    }
    if (out->not_after <= now) {
        utc_text(out->not_after, when, sizeof(when));
        yamlcfg_error_at(err, c->path, &ct->mark, where, "certificate %s expired on %s", ct->cert,
                         when);
        goto out;
    }
    if (out->not_before > now) {
        utc_text(out->not_before, when, sizeof(when));
        yamlcfg_error_at(err, c->path, &ct->mark, where, "certificate %s is not valid before %s",
                         ct->cert, when);
        goto out;
    }
    serial = X509_get_serialNumber(leaf);
    bn = ASN1_INTEGER_to_BN(serial, NULL);
    hex = bn ? BN_bn2hex(bn) : NULL;
    snprintf(out->serial, sizeof(out->serial), "%s", hex ? hex : "?");
    len = BIO_get_mem_data(mem, &data);
    out->pem = malloc((size_t)len + 1);
    if (!out->pem) {
        routes_error(err, "out of memory");
        goto out;
    }
    memcpy(out->pem, data, (size_t)len);
    out->pem[len] = '\0';
    out->leaf = leaf;
    leaf = NULL;
    rc = 0;
    goto out;
ssl_fail:
    yamlcfg_error_at(err, c->path, &ct->mark, where, "%s: %s", ct->cert, ssl_reason());
out:
    OPENSSL_free(hex);
    BN_free(bn);
    EVP_PKEY_free(key);
    X509_free(extra);
    X509_free(leaf);
    BIO_free(in);
    BIO_free(mem);
    return rc;
}

int tls_certs_load(const struct ccgwconf *c, int64_t now, struct tls_cert **out, size_t *n,
                   struct yamlcfg_error *err)
{
    struct tls_cert *certs;

    *out = NULL;
    *n = 0;
    if (!c->tls.bind)
        return 0;
    certs = calloc(c->tls.ncertificates, sizeof(*certs));
    if (!certs) {
        routes_error(err, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < c->tls.ncertificates; i++) {
        if (load_one(c, i, now, &certs[i], err) < 0) {
            tls_certs_free(certs, i + 1);
            return -1;
        }
    }
    *out = certs;
    *n = c->tls.ncertificates;
    return 0;
}

void tls_certs_free(struct tls_cert *certs, size_t n)
{
    for (size_t i = 0; certs && i < n; i++) {
        free(certs[i].pem);
        X509_free(certs[i].leaf);
    }
    free(certs);
}

int tls_check_hosts(const struct ccgwconf *c, const struct tls_cert *certs, size_t ncerts,
                    const struct routes_host *hosts, size_t nhosts, struct yamlcfg_error *err)
{
    if (!c->tls.bind)
        return 0;
    for (size_t h = 0; h < nhosts; h++) {
        int covered = 0;
        for (size_t i = 0; i < ncerts && !covered; i++)
            covered = X509_check_host(certs[i].leaf, hosts[h].host, 0, 0, NULL) == 1;
        if (!covered) {
            yamlcfg_error_at(err, c->path, &c->tls.mark, "tls.certificates",
                             "no certificate covers host %s (chain %s needs *.%s.%s or that name)",
                             hosts[h].host, hosts[h].chain, hosts[h].chain, c->routing_domain);
            return -1;
        }
    }
    return 0;
}

int tls_pem_name(const struct ccgwconf_certificate *ct, char *buf, size_t len)
{
    return (size_t)snprintf(buf, len, "tls-%s.pem", ct->name) < len ? 0 : -1;
}

int tls_render_crt_list(const struct tls_cert *certs, size_t n, const char *dir, char **out,
                        struct yamlcfg_error *err)
{
    char *buf = NULL, name[128];
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);

    if (!f)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        if (tls_pem_name(certs[i].conf, name, sizeof(name)) < 0)
            goto oom;
        fprintf(f, "%s/%s\n", dir, name);
    }
    if (fclose(f) != 0)
        goto oom;
    *out = buf;
    return 0;
oom:
    routes_error(err, "out of memory");
    free(buf);
    return -1;
}

int tls_render_expiry_map(const struct tls_cert *certs, size_t n, char **out,
                          struct yamlcfg_error *err)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);

    if (!f)
        goto oom;
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s %lld\n", certs[i].conf->name, (long long)certs[i].not_after);
    if (fclose(f) != 0)
        goto oom;
    *out = buf;
    return 0;
oom:
    routes_error(err, "out of memory");
    free(buf);
    return -1;
}

int tls_render_metrics_lf(const struct ccgwconf *c, const struct tls_cert *certs, size_t n,
                          const char *map_path, char **out, struct yamlcfg_error *err)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f;

    if (!routes_safe_token(map_path)) {
        routes_error(err, "path \"%s\" must not contain blanks, quotes or '#'", map_path);
        return -1;
    }
    f = open_memstream(&buf, &size);
    if (!f)
        goto oom;
    fputs("# HELP " TLS_METRIC " When the certificate the edge serves expires (notAfter, "
          "epoch seconds).\n"
          "# TYPE " TLS_METRIC " gauge\n",
          f);
    /* Names are [A-Za-z0-9._-] (conf.c), safe in a label and a log-format. */
    for (size_t i = 0; i < n; i++)
        fprintf(f,
                TLS_METRIC "{gateway=\"%s\",certificate=\"%s\"} "
                           "%%[str(%s),map(%s,0)]\n",
                c->gateway_name, certs[i].conf->name, certs[i].conf->name, map_path);
    if (fclose(f) != 0)
        goto oom;
    *out = buf;
    return 0;
oom:
    routes_error(err, "out of memory");
    free(buf);
    return -1;
}

static char *read_small(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t size = 0;
    FILE *m;
    char chunk[4096];
    size_t r;

    if (!f)
        return NULL;
    m = open_memstream(&buf, &size);
    if (!m) {
        fclose(f);
        return NULL;
    }
    while ((r = fread(chunk, 1, sizeof(chunk), f)) > 0)
        fwrite(chunk, 1, r, m);
    fclose(f);
    if (fclose(m) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* The serial the running edge serves for `file` ("" when it has no such
 * certificate), from `show ssl cert`. 0 or -1. */
static int live_serial(const char *sock, const char *file, char *buf, size_t len,
                       struct yamlcfg_error *err)
{
    char cmd[PATH_MAX + 32], *reply = NULL, *p;

    buf[0] = '\0';
    snprintf(cmd, sizeof(cmd), "show ssl cert %s", file);
    if (hapi_command(sock, cmd, NULL, &reply, err) < 0)
        return -1;
    p = strstr(reply, "\nSerial: ");
    if (p) {
        p += 9;
        snprintf(buf, len, "%.*s", (int)strcspn(p, "\r\n"), p);
    }
    free(reply);
    return 0;
}

/* Hex serials, case and leading zeros aside. */
static int same_serial(const char *a, const char *b)
{
    while (*a == '0')
        a++;
    while (*b == '0')
        b++;
    return strcasecmp(a, b) == 0;
}

static const struct ccgwconf_tier *edge_tier(const struct ccgwconf *c)
{
    for (size_t i = 0; i < c->ntiers; i++)
        if (c->tiers[i].role == CCGWCONF_ROLE_EDGE)
            return &c->tiers[i];
    return NULL;
}

/* Replace one certificate in the running edge: a transaction that is either
 * committed whole or aborted. */
static int push_cert(const char *sock, const char *file, const char *pem, struct yamlcfg_error *err)
{
    char cmd[PATH_MAX + 32];
    struct yamlcfg_error ignored;

    char *reply = NULL;
    int ok;

    /* hapi_command ends the payload's last line and then the payload (an
     * empty line): a trailing newline of its own would make one more line,
     * written after HAProxy has answered and closed. */
    size_t n = strlen(pem);
    char *payload = strndup(pem, n);
    if (!payload) {
        routes_error(err, "out of memory");
        return -1;
    }
    while (n > 0 && payload[n - 1] == '\n')
        payload[--n] = '\0';
    snprintf(cmd, sizeof(cmd), "set ssl cert %s", file);
    if (hapi_command(sock, cmd, payload, &reply, err) < 0) {
        free(payload);
        goto abort;
    }
    free(payload);
    ok = strncmp(reply, "Transaction created", 19) == 0 ||
         strncmp(reply, "Transaction updated", 19) == 0;
    if (!ok)
        routes_error(err, "%s: %s: %.200s", sock, cmd, reply);
    free(reply);
    if (!ok)
        goto abort;
    snprintf(cmd, sizeof(cmd), "commit ssl cert %s", file);
    if (hapi_expect(sock, cmd, NULL, "Committing", err) < 0)
        goto abort;
    return 0;
abort:
    snprintf(cmd, sizeof(cmd), "abort ssl cert %s", file);
    (void)hapi_expect(sock, cmd, NULL, NULL, &ignored);
    return -1;
}

/* A certificate the running edge does not have yet: an empty store, filled
 * and committed like a replacement, then inserted into the bind's crt-list
 * (a new chain's certificate, added with its chain; no restart). */
static int add_cert(const char *sock, const char *dir, const char *file, const char *pem,
                    struct yamlcfg_error *err)
{
    char cmd[2 * PATH_MAX + 64];

    snprintf(cmd, sizeof(cmd), "new ssl cert %s", file);
    if (hapi_expect(sock, cmd, NULL, "New empty certificate store", err) < 0 ||
        push_cert(sock, file, pem, err) < 0)
        return -1;
    snprintf(cmd, sizeof(cmd), "add ssl crt-list %s/%s %s", dir, TLS_CRT_LIST, file);
    return hapi_expect(sock, cmd, NULL, "Inserting certificate", err);
}

int tls_rotate(const struct ccgwconf *c, const char *dir, struct tls_rotate_report *report,
               struct yamlcfg_error *err)
{
    const struct ccgwconf_tier *edge = edge_tier(c);
    struct routes_host *hosts = NULL;
    struct tls_cert *certs = NULL;
    size_t nhosts = 0, ncerts = 0;
    char abs[PATH_MAX], file[PATH_MAX + 140], name[128], cmd[PATH_MAX + 200], serr[256];
    char live[80];
    char *map = NULL, *old = NULL;
    int rc = -1;

    memset(report, 0, sizeof(*report));
    if (!c->tls.bind || !edge) {
        routes_error(err, "%s: no tls section: nothing to rotate", c->path);
        return -1;
    }
    if (!realpath(dir, abs)) {
        routes_error(err, "%s: %s", dir, strerror(errno));
        return -1;
    }
    if (tls_certs_load(c, sys_wall_ms() / 1000, &certs, &ncerts, err) < 0 ||
        routes_hosts(c, &hosts, &nhosts, err) < 0 ||
        tls_check_hosts(c, certs, ncerts, hosts, nhosts, err) < 0)
        goto out;
    for (size_t i = 0; i < ncerts; i++) {
        if (tls_pem_name(certs[i].conf, name, sizeof(name)) < 0)
            goto out;
        snprintf(file, sizeof(file), "%s/%s", abs, name);
        if (live_serial(edge->stats_socket, file, live, sizeof(live), err) < 0)
            goto out;
        if (!live[0]) {
            if (add_cert(edge->stats_socket, abs, file, certs[i].pem, err) < 0)
                goto out;
            report->added++;
        } else if (same_serial(live, certs[i].serial)) {
            report->unchanged++;
        } else {
            if (push_cert(edge->stats_socket, file, certs[i].pem, err) < 0)
                goto out;
            report->rotated++;
        }
        /* What a restart loads must be what is served. */
        old = read_small(file);
        if (!old || strcmp(old, certs[i].pem) != 0) {
            if (sys_write_file_atomic(file, certs[i].pem, strlen(certs[i].pem), 0600, serr,
                                      sizeof(serr)) < 0) {
                routes_error(err, "%s (the edge serves the new certificate already)", serr);
                goto out;
            }
        }
        free(old);
        old = NULL;
        /* The metric follows what the edge serves, also when unchanged. The
         * map is loaded only by the stats listener's metric rule. */
        snprintf(cmd, sizeof(cmd), "%s map %s/%s %s %lld", live[0] ? "set" : "add", abs,
                 TLS_EXPIRY_MAP, certs[i].conf->name, (long long)certs[i].not_after);
        if (edge->stats_bind && hapi_expect(edge->stats_socket, cmd, NULL, NULL, err) < 0)
            goto out;
    }
    if (tls_render_expiry_map(certs, ncerts, &map, err) < 0)
        goto out;
    snprintf(file, sizeof(file), "%s/%s", abs, TLS_EXPIRY_MAP);
    if (sys_write_file_atomic(file, map, strlen(map), 0644, serr, sizeof(serr)) < 0) {
        routes_error(err, "%s", serr);
        goto out;
    }
    rc = 0;
out:
    free(old);
    free(map);
    routes_hosts_free(hosts, nhosts);
    tls_certs_free(certs, ncerts);
    return rc;
}

static void add_reason(char *buf, size_t len, const char *what)
{
    size_t used = strlen(buf);

    snprintf(buf + used, len - used, "%s%s", used ? "; " : "", what);
}

static int str_differs(const char *a, const char *b)
{
    return (!a || !b) ? a != b : strcmp(a, b) != 0;
}

void tls_restart_reasons(const struct ccgwconf *old, const struct ccgwconf *cur, char *buf,
                         size_t len)
{
    char what[200];
    int names = 0;

    if (str_differs(old->tls.bind, cur->tls.bind))
        add_reason(buf, len, "edge HTTPS listener changed");
    if (old->tls.plain_http != cur->tls.plain_http ||
        old->tls.hsts_max_age_secs != cur->tls.hsts_max_age_secs)
        add_reason(buf, len, "edge plain HTTP policy or HSTS changed");
    /* A new certificate is added live (tls_rotate); one removed or renamed
     * stays in the running edge's crt-list until a restart. */
    for (size_t i = 0; !names && i < old->tls.ncertificates; i++) {
        names = 1;
        for (size_t j = 0; names && j < cur->tls.ncertificates; j++)
            names = strcmp(old->tls.certificates[i].name, cur->tls.certificates[j].name) != 0;
    }
    if (names && old->tls.bind && cur->tls.bind)
        add_reason(buf, len, "edge certificate removed or renamed");
    for (size_t i = 0; i < cur->nchains; i++) {
        const struct ccgwconf_chain *nc = &cur->chains[i];
        const struct ccgwconf_chain *oc = ccgwconf_chain_find(old, nc->id);
        int servers = 0;
        if (!oc)
            continue;
        if (oc->websocket != nc->websocket) {
            snprintf(what, sizeof(what), "WebSocket opt-in of chain %s changed", nc->id);
            add_reason(buf, len, what);
            continue;
        }
        servers = nc->websocket && oc->nbackends != nc->nbackends;
        for (size_t j = 0; nc->websocket && !servers && j < nc->nbackends; j++)
            servers = strcmp(oc->backends[j].name, nc->backends[j].name) != 0 ||
                      strcmp(oc->backends[j].address, nc->backends[j].address) != 0 ||
                      oc->backends[j].weight != nc->backends[j].weight;
        if (servers) {
            snprintf(what, sizeof(what), "servers of WebSocket chain %s changed (be_%s_ws)", nc->id,
                     nc->id);
            add_reason(buf, len, what);
        }
    }
}
