/* Real-time counts from Redis and their merge with PostgreSQL's. */
#include "rsrealtime.h"

#include <hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define RSRT_REDIS_TIMEOUT_MS 500
#define RSRT_MAX_KEYS 100000

void rsrealtime_rows_free(struct rsrealtime_rows *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->rows[i].gateway);
        free(r->rows[i].chain);
        free(r->rows[i].account);
    }
    free(r->rows);
    memset(r, 0, sizeof(*r));
}

int rsrealtime_rows_push(struct rsrealtime_rows *r, const char *gateway, const char *chain,
                         const char *account, int64_t bucket, int64_t relays)
{
    struct rsrealtime_row *row;

    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        struct rsrealtime_row *rows = realloc(r->rows, cap * sizeof(*rows));
        if (!rows)
            return -1;
        r->rows = rows;
        r->cap = cap;
    }
    row = &r->rows[r->n];
    row->gateway = strdup(gateway);
    row->chain = strdup(chain);
    row->account = strdup(account);
    if (!row->gateway || !row->chain || !row->account) {
        free(row->gateway);
        free(row->chain);
        free(row->account);
        return -1;
    }
    row->bucket = bucket;
    row->relays = relays;
    r->n++;
    return 0;
}

int rsrealtime_parse_key(const char *prefix, const char *key, char *gateway, size_t size,
                         int64_t *bucket)
{
    size_t plen = strlen(prefix);
    const char *g, *last;
    char *end;
    long long b;

    if (strncmp(key, prefix, plen) != 0 || strncmp(key + plen, ":relays:", 8) != 0)
        return -1;
    g = key + plen + 8;
    last = strrchr(g, ':');
    if (!last || last == g || (size_t)(last - g) >= size || last[1] == '\0')
        return -1;
    b = strtoll(last + 1, &end, 10);
    if (*end != '\0' || b < 0 || b % 300 != 0)
        return -1;
    memcpy(gateway, g, (size_t)(last - g));
    gateway[last - g] = '\0';
    *bucket = b;
    return 0;
}

/* One hash: fields "<chain>:<account>" -> count. */
static int read_hash(redisContext *rc, const char *key, const char *gateway, int64_t bucket,
                     struct rsrealtime_rows *out, char *err, size_t errlen)
{
    redisReply *r = redisCommand(rc, "HGETALL %s", key);
    int rv = -1;

    if (!r || r->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errlen, "redis HGETALL: %s", r ? "unexpected reply" : rc->errstr);
        goto done;
    }
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *field = r->element[i]->str, *colon;
        long long n;
        char chain[128];

        if (!field || !r->element[i + 1]->str)
            continue;
        colon = strchr(field, ':');
        if (!colon || (size_t)(colon - field) >= sizeof(chain))
            continue;
        memcpy(chain, field, (size_t)(colon - field));
        chain[colon - field] = '\0';
        n = strtoll(r->element[i + 1]->str, NULL, 10);
        if (rsrealtime_rows_push(out, gateway, chain, colon + 1, bucket, n) != 0) {
            snprintf(err, errlen, "out of memory");
            goto done;
        }
    }
    rv = 0;
done:
    if (r)
        freeReplyObject(r);
    return rv;
}

int rsrealtime_fetch(const struct ccgwconf_redis *cr, int64_t from, int64_t to,
                     struct rsrealtime_rows *out, char *err, size_t errlen)
{
    struct timeval tv = {0, RSRT_REDIS_TIMEOUT_MS * 1000};
    const char *prefix = cr->key_prefix ? cr->key_prefix : "ccgw";
    char pattern[256], cursor[32] = "0", gateway[128];
    redisContext *rc = NULL;
    redisReply *r = NULL;
    size_t seen = 0;
    int rv = -1;

    if (!cr->host) {
        snprintf(err, errlen, "redis is not configured");
        return -1;
    }
    rc = redisConnectWithTimeout(cr->host, (int)cr->port, tv);
    if (!rc || rc->err) {
        snprintf(err, errlen, "redis %s:%lld: %s", cr->host, (long long)cr->port,
                 rc ? rc->errstr : "out of memory");
        goto done;
    }
    redisSetTimeout(rc, tv);
    snprintf(pattern, sizeof(pattern), "%s:relays:*", prefix);
    do {
        r = redisCommand(rc, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
            snprintf(err, errlen, "redis SCAN: %s",
                     !r ? rc->errstr : (r->type == REDIS_REPLY_ERROR ? r->str : "bad reply"));
            goto done;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const char *key = r->element[1]->element[i]->str;
            int64_t bucket;
            if (!key || rsrealtime_parse_key(prefix, key, gateway, sizeof(gateway), &bucket) != 0)
                continue;
            if (bucket < from || bucket >= to)
                continue;
            if (++seen > RSRT_MAX_KEYS) {
                snprintf(err, errlen, "redis: more than %d relay keys in range", RSRT_MAX_KEYS);
                goto done;
            }
            if (read_hash(rc, key, gateway, bucket, out, err, errlen) != 0)
                goto done;
        }
        freeReplyObject(r);
        r = NULL;
    } while (strcmp(cursor, "0") != 0);
    rv = 0;
done:
    if (r)
        freeReplyObject(r);
    if (rc)
        redisFree(rc);
    return rv;
}

static int row_cmp(const void *pa, const void *pb)
{
    const struct rsrealtime_row *a = pa, *b = pb;
    int c;

    if ((c = strcmp(a->gateway, b->gateway)) != 0 || (c = strcmp(a->chain, b->chain)) != 0 ||
        (c = strcmp(a->account, b->account)) != 0)
        return c;
    return (a->bucket > b->bucket) - (a->bucket < b->bucket);
}

int rsrealtime_merge(struct rsrealtime_rows *base, const struct rsrealtime_rows *add)
{
    size_t nbase = base->n;

    qsort(base->rows, nbase, sizeof(*base->rows), row_cmp);
    for (size_t i = 0; i < add->n; i++) {
        const struct rsrealtime_row *a = &add->rows[i];
        struct rsrealtime_row *hit =
            nbase ? bsearch(a, base->rows, nbase, sizeof(*base->rows), row_cmp) : NULL;
        if (hit) {
            if (a->relays > hit->relays)
                hit->relays = a->relays;
        } else if (rsrealtime_rows_push(base, a->gateway, a->chain, a->account, a->bucket,
                                        a->relays) != 0) {
            return -1;
        }
    }
    qsort(base->rows, base->n, sizeof(*base->rows), row_cmp);
    return 0;
}
