/* Redis publisher: see publish.h. */
#include "publish.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "sys.h"

#define KEY_MAX 512

struct publish {
    char *host;
    int port;
    char *prefix;
    char *gateway;
    int64_t ttl_secs;
    int timeout_ms;
    redisContext *ctx;
};

publish_t *publish_new(const char *host, int port, const char *prefix, const char *gateway,
                       int64_t ttl_secs, int timeout_ms)
{
    publish_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->host = strdup(host);
    p->prefix = strdup(prefix);
    p->gateway = strdup(gateway ? gateway : "");
    if (!p->host || !p->prefix || !p->gateway) {
        publish_free(p);
        return NULL;
    }
    p->port = port;
    p->ttl_secs = ttl_secs > 0 ? ttl_secs : 7200;
    p->timeout_ms = timeout_ms > 0 ? timeout_ms : 1000;
    return p;
}

static void disconnect(publish_t *p)
{
    if (p->ctx)
        redisFree(p->ctx);
    p->ctx = NULL;
}

void publish_free(publish_t *p)
{
    if (!p)
        return;
    disconnect(p);
    free(p->host);
    free(p->prefix);
    free(p->gateway);
    free(p);
}

int publish_connected(const publish_t *p)
{
    return p->ctx != NULL;
}

int publish_connect(publish_t *p, char *err, size_t errlen)
{
    if (p->ctx)
        return 0;
    struct timeval tv = {.tv_sec = p->timeout_ms / 1000, .tv_usec = (p->timeout_ms % 1000) * 1000};
    p->ctx = redisConnectWithTimeout(p->host, p->port, tv);
    if (!p->ctx || p->ctx->err) {
        sys_set_err(err, errlen, "redis %s:%d: %s", p->host, p->port,
                    p->ctx ? p->ctx->errstr : "out of memory");
        goto fail;
    }
    if (redisSetTimeout(p->ctx, tv) != REDIS_OK) {
        sys_set_err(err, errlen, "redis %s:%d: cannot set the command timeout", p->host, p->port);
        goto fail;
    }
    return 0;
fail:
    disconnect(p);
    return -1;
}

/* Distinct keys of a round, for one EXPIRE each. */
struct keyset {
    char (*keys)[KEY_MAX];
    size_t n, cap;
};

static int keyset_add(struct keyset *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->keys[i], key) == 0)
            return 0;
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 8;
        char(*nk)[KEY_MAX] = realloc(s->keys, ncap * sizeof(*nk));
        if (!nk)
            return -1;
        s->keys = nk;
        s->cap = ncap;
    }
    snprintf(s->keys[s->n++], KEY_MAX, "%s", key);
    return 0;
}

int publish_send(publish_t *p, const struct counter_deltas *d, char *err, size_t errlen)
{
    struct keyset keys = {0};
    size_t queued = 0;
    redisReply *reply = NULL;
    if (errlen)
        err[0] = '\0';
    if (!p->ctx) {
        sys_set_err(err, errlen, "redis: not connected");
        return -1;
    }
    if (redisAppendCommand(p->ctx, "MULTI") != REDIS_OK)
        goto oom;
    queued++;
    for (size_t i = 0; i < d->nrows; i++) {
        const struct counter_delta *r = &d->rows[i];
        char key[KEY_MAX], field[KEY_MAX];
        long long n = (long long)r->n;
        if (r->n == 0)
            continue;
        if (r->chain) {
            snprintf(key, sizeof(key), "%s:relays:%s:%" PRId64, p->prefix, p->gateway, r->bucket);
            snprintf(field, sizeof(field), "%s:%s", r->chain, r->account);
            if (keyset_add(&keys, key) < 0 ||
                redisAppendCommand(p->ctx, "HINCRBY %s %s %lld", key, field, n) != REDIS_OK)
                goto oom;
            snprintf(key, sizeof(key), "%s:chain:%s:%" PRId64, p->prefix, p->gateway, r->bucket);
            if (keyset_add(&keys, key) < 0 ||
                redisAppendCommand(p->ctx, "HINCRBY %s %s %lld", key, r->chain, n) != REDIS_OK)
                goto oom;
            queued += 2;
        } else {
            const char *reason = counter_reason_name((enum non_relay_reason)r->reason);
            if (!reason)
                continue;
            snprintf(key, sizeof(key), "%s:nonrelays:%s:%" PRId64, p->prefix, p->gateway,
                     r->bucket);
            if (keyset_add(&keys, key) < 0 ||
                redisAppendCommand(p->ctx, "HINCRBY %s %s %lld", key, reason, n) != REDIS_OK)
                goto oom;
            queued++;
        }
    }
    for (size_t i = 0; i < keys.n; i++) {
        if (redisAppendCommand(p->ctx, "EXPIRE %s %lld", keys.keys[i], (long long)p->ttl_secs) !=
            REDIS_OK)
            goto oom;
        queued++;
    }
    if (redisAppendCommand(p->ctx, "EXEC") != REDIS_OK)
        goto oom;
    queued++;
    /* every reply is read (to keep the connection in step); only EXEC's says
     * whether the round landed */
    int ok = 0;
    for (size_t i = 0; i < queued; i++) {
        if (redisGetReply(p->ctx, (void **)&reply) != REDIS_OK) {
            sys_set_err(err, errlen, "redis %s:%d: %s", p->host, p->port, p->ctx->errstr);
            goto fail;
        }
        if (i + 1 == queued)
            ok = reply->type == REDIS_REPLY_ARRAY;
        if (reply->type == REDIS_REPLY_ERROR && !ok)
            sys_set_err(err, errlen, "redis: %s", reply->str);
        freeReplyObject(reply);
        reply = NULL;
    }
    if (!ok) {
        if (!err[0])
            sys_set_err(err, errlen, "redis: EXEC failed");
        goto fail;
    }
    free(keys.keys);
    return 0;
oom:
    sys_set_err(err, errlen, "redis: out of memory building the pipeline");
fail:
    free(keys.keys);
    disconnect(p);
    return -1;
}
