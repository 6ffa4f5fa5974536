/* A client of the HAProxy runtime API (the stats socket at admin level).
 * The protocol is line-based text: one command per connection, the reply
 * runs until HAProxy closes. Commands that take a payload ("add map @1 m <<")
 * send it after the command line, ended by an empty line. */
#ifndef CCGW_HAPI_H
#define CCGW_HAPI_H

#include <stddef.h>

#include "yamlcfg.h"

/* One server of a backend as `show servers state` reports it. */
struct hapi_server {
    char name[65];
    char addr[64]; /* numeric IP */
    int port;
    int op_state;    /* 0 stopped, 1 starting, 2 running, 3 stopping */
    int admin_state; /* SRV_ADMF_* bits: 0x01 forced maint, 0x08 forced drain, ... */
    int weight;      /* user weight */
};

/* Live load of one server (`show stat`). */
struct hapi_stat {
    char status[32];       /* "UP", "DOWN", "MAINT", "DRAIN", "no check", "UP 1/2", ... */
    char check_status[16]; /* "L7OK", "L4CON", ... */
    long scur;             /* current sessions */
    long qcur;             /* queued requests */
};

/* Send `cmd` (no newline) and the optional `payload` to the socket at
 * `path`; *reply gets HAProxy's answer (malloc'd, NUL-terminated, the
 * caller's). 0, or -1 with err filled (connection or I/O failure only: a
 * command HAProxy refuses still returns 0 with its message in *reply). */
int hapi_command(const char *path, const char *cmd, const char *payload, char **reply,
                 struct yamlcfg_error *err);

/* Like hapi_command(), and succeeds only if the reply is empty (when
 * `ok_prefix` is NULL) or starts with `ok_prefix`; the reply goes to err. */
int hapi_expect(const char *path, const char *cmd, const char *payload, const char *ok_prefix,
                struct yamlcfg_error *err);

/* Whether `backend` exists: 1 yes, 0 no, -1 error. */
int hapi_backend_exists(const char *path, const char *backend, struct yamlcfg_error *err);

/* The servers of `backend`; *out is the caller's (free()). 0 or -1. */
int hapi_servers(const char *path, const char *backend, struct hapi_server **out, size_t *n,
                 struct yamlcfg_error *err);

/* The live status of one server. 0, 1 when no such server, -1 on error. */
int hapi_server_stat(const char *path, const char *backend, const char *server,
                     struct hapi_stat *st, struct yamlcfg_error *err);

#endif
