/* The RPC auth cookie file (see cookie.h). */
#include "cookie.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <unistd.h>

#include "codec.h"
#include "sys.h"

int node_cookie_create(struct node *n, const char *path, char *err, size_t errlen)
{
    uint8_t secret[32];
    char line[128];
    int len;

    if (RAND_bytes(secret, sizeof(secret)) != 1)
        return sys_set_err(err, errlen, "cookie: no randomness from libcrypto");
    node_codec_hex_encode(secret, sizeof(secret), 0, n->cookie);
    len = snprintf(line, sizeof(line), "__cookie__:%s", n->cookie);
    /* Created 0600 from the start: the secret is never readable by others. */
    return sys_write_file_atomic(path, line, (size_t)len, 0600, err, errlen);
}

void node_cookie_remove(const char *path)
{
    if (path)
        unlink(path);
}
