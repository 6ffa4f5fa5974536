/* API tokens: generation, hashing, lookup. */
#include "rsauth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "rsdb.h"

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int rsauth_hash(const char *token, char hex[RSAUTH_HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    if (EVP_Digest(token, strlen(token), md, &len, EVP_sha256(), NULL) != 1 || len != 32)
        return -1;
    to_hex(md, len, hex);
    return 0;
}

int rsauth_token_new(char token[RSAUTH_TOKEN_LEN + 1])
{
    unsigned char raw[32];

    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -1;
    memcpy(token, "rst_", 4);
    to_hex(raw, sizeof(raw), token + 4);
    OPENSSL_cleanse(raw, sizeof(raw));
    return 0;
}

int rsauth_token_create(PGconn *pg, const char *provider, char token[RSAUTH_TOKEN_LEN + 1],
                        struct rserr *err)
{
    char hex[RSAUTH_HEX_LEN + 1];
    const char *params[2];
    PGresult *res;

    if (provider) {
        params[0] = provider;
        res = rsdb_exec(pg, "SELECT 1 FROM providers WHERE name = $1", 1, params, PGRES_TUPLES_OK,
                        err);
        if (!res)
            return -1;
        if (PQntuples(res) == 0) {
            PQclear(res);
            rserr_set(err, 400, "unknown provider '%s' (run `relaystats sync` first)", provider);
            return -1;
        }
        PQclear(res);
    }
    if (rsauth_token_new(token) != 0 || rsauth_hash(token, hex) != 0) {
        rserr_set(err, 500, "cannot generate a token (libcrypto)");
        return -1;
    }
    params[0] = hex;
    params[1] = provider;
    res = rsdb_exec(pg, "INSERT INTO api_tokens (token_sha256, provider) VALUES ($1, $2)", 2,
                    params, PGRES_COMMAND_OK, err);
    if (!res) {
        OPENSSL_cleanse(token, RSAUTH_TOKEN_LEN + 1);
        return -1;
    }
    PQclear(res);
    return 0;
}

int rsauth_check(PGconn *pg, const char *admin_sha256, const char *authorization,
                 struct rsauth_principal *out, struct rserr *err)
{
    char hex[RSAUTH_HEX_LEN + 1];
    const char *token, *params[1];
    PGresult *res;

    memset(out, 0, sizeof(*out));
    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0) {
        rserr_set(err, 401, "missing API token (Authorization: Bearer <token>)");
        return -1;
    }
    token = authorization + 7;
    while (*token == ' ')
        token++;
    if (strlen(token) == 0 || strlen(token) > 256 || rsauth_hash(token, hex) != 0) {
        rserr_set(err, 401, "invalid API token");
        return -1;
    }
    if (admin_sha256 && strlen(admin_sha256) == RSAUTH_HEX_LEN) {
        char want[RSAUTH_HEX_LEN + 1];
        for (size_t i = 0; i <= RSAUTH_HEX_LEN; i++)
            want[i] = (char)((admin_sha256[i] >= 'A' && admin_sha256[i] <= 'F')
                                 ? admin_sha256[i] - 'A' + 'a'
                                 : admin_sha256[i]);
        if (CRYPTO_memcmp(want, hex, RSAUTH_HEX_LEN) == 0) {
            out->admin = 1;
            return 0;
        }
    }
    params[0] = hex;
    res = rsdb_exec(pg, "SELECT provider FROM api_tokens WHERE token_sha256 = $1", 1, params,
                    PGRES_TUPLES_OK, err);
    if (!res)
        return -1;
    if (PQntuples(res) != 1) {
        PQclear(res);
        rserr_set(err, 401, "invalid API token");
        return -1;
    }
    if (PQgetisnull(res, 0, 0)) {
        out->admin = 1;
    } else {
        snprintf(out->provider, sizeof(out->provider), "%s", PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    return 0;
}
