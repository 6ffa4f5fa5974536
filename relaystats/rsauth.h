/* API tokens. A token is 32 random bytes written as 64 hex digits with an
 * "rst_" prefix; only its SHA-256 (hex) is stored, in api_tokens
 * (token_sha256, provider NULL for admin). The config's
 * relaystats.admin_token_sha256 also grants admin; that hash is compared in
 * constant time. Database tokens are looked up by their hash (an index
 * lookup on a hash leaks nothing about the token). */
#ifndef CCGW_RSAUTH_H
#define CCGW_RSAUTH_H

#include <libpq-fe.h>
#include <stddef.h>

#include "rserr.h"

#define RSAUTH_TOKEN_LEN 68 /* "rst_" + 64 hex digits */
#define RSAUTH_HEX_LEN 64

struct rsauth_principal {
    int admin;
    char provider[65]; /* "" for admin */
};

/* SHA-256 of `token` as lower-case hex into `hex` (65 bytes). 0 or -1. */
int rsauth_hash(const char *token, char hex[RSAUTH_HEX_LEN + 1]);

/* A fresh random token into `token` (RSAUTH_TOKEN_LEN + 1 bytes). 0 or -1. */
int rsauth_token_new(char token[RSAUTH_TOKEN_LEN + 1]);

/* Create a token for `provider` (NULL: admin), store its hash and write the
 * token into `token`. The provider must exist in the providers table.
 * 0, or -1 with `err` set. */
int rsauth_token_create(PGconn *pg, const char *provider, char token[RSAUTH_TOKEN_LEN + 1],
                        struct rserr *err);

/* Authenticate an Authorization header value ("Bearer <token>"; NULL when
 * absent). `admin_sha256` is the config's hash or NULL. 0 with `out`
 * filled, or -1 with `err` set: 401 for a missing or unknown token, 500/503
 * on database errors. */
int rsauth_check(PGconn *pg, const char *admin_sha256, const char *authorization,
                 struct rsauth_principal *out, struct rserr *err);

#endif
