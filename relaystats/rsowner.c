/* Account ownership: the attribution SQL and the sync plan (see rsowner.h). */
#include "rsowner.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t rsowner_boundary(int64_t now)
{
    int64_t b = now / RSOWNER_STEP * RSOWNER_STEP;

    if (b > now) /* C division truncates towards zero */
        b -= RSOWNER_STEP;
    return b + RSOWNER_STEP;
}

int rsowner_source_sql(const char *table, int64_t gran, char *buf, size_t size)
{
    int n;

    if (gran <= RSOWNER_STEP) {
        n = snprintf(buf, size,
                     "(SELECT gateway, chain, account, bucket_start, relays FROM %s "
                     "WHERE bucket_start >= $1::timestamptz AND bucket_start < $2::timestamptz)",
                     table);
        return n < 0 || (size_t)n >= size ? -1 : 0;
    }
    /* split: the (pair, rollup bucket) that an owner change cuts in two.
     * Every boundary inside (from, to) off a multiple of gran: from and to
     * are multiples of it, so its rollup bucket lies within the range. */
    n = snprintf(
        buf, size,
        "(WITH split AS (SELECT DISTINCT account, chain,"
        " to_timestamp(floor(extract(epoch FROM v) / %" PRId64 ") * %" PRId64 ") AS w FROM ("
        "SELECT account, chain, valid_from AS v FROM account_owners"
        " WHERE valid_from > $1::timestamptz AND valid_from < $2::timestamptz"
        " UNION ALL SELECT account, chain, valid_to FROM account_owners"
        " WHERE valid_to > $1::timestamptz AND valid_to < $2::timestamptz) b"
        " WHERE mod(extract(epoch FROM v), %" PRId64 ") <> 0)"
        " SELECT t.gateway, t.chain, t.account, t.bucket_start, t.relays FROM %s t"
        " WHERE t.bucket_start >= $1::timestamptz AND t.bucket_start < $2::timestamptz"
        " AND NOT EXISTS (SELECT 1 FROM split x WHERE x.account = t.account"
        " AND x.chain = t.chain AND x.w = t.bucket_start)"
        " UNION ALL SELECT t.gateway, t.chain, t.account, t.bucket_start, t.relays"
        " FROM split x JOIN relay_totals t ON t.account = x.account AND t.chain = x.chain"
        " AND t.bucket_start >= x.w AND t.bucket_start < x.w + interval '%" PRId64 " seconds'"
        " WHERE t.bucket_start >= $1::timestamptz AND t.bucket_start < $2::timestamptz)",
        gran, gran, gran, table, gran);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

const char *rsowner_op_name(enum rsowner_op op)
{
    static const char *const names[] = {"add", "reopen", "move", "replace", "revert"};

    return (unsigned)op < sizeof(names) / sizeof(names[0]) ? names[op] : "?";
}

static int pair_cmp(const char *a1, const char *c1, const char *a2, const char *c2)
{
    int d = strcmp(a1, a2);

    return d ? d : strcmp(c1, c2);
}

static int want_cmp(const void *x, const void *y)
{
    const struct rsowner_want *a = *(const struct rsowner_want *const *)x;
    const struct rsowner_want *b = *(const struct rsowner_want *const *)y;

    return pair_cmp(a->account, a->chain, b->account, b->chain);
}

static int have_cmp(const void *x, const void *y)
{
    const struct rsowner_have *a = *(const struct rsowner_have *const *)x;
    const struct rsowner_have *b = *(const struct rsowner_have *const *)y;

    return pair_cmp(a->account, a->chain, b->account, b->chain);
}

/* The action for a pair of the config found in account_owners; 0 when it
 * is already owned as it should be. */
static int plan_pair(const struct rsowner_want *w, const struct rsowner_have *h, int64_t at,
                     struct rsowner_action *a)
{
    a->want = w;
    a->have = h;
    a->at = at;
    if (!h->provider) {
        a->op = RSOWNER_REOPEN;
        if (h->last_to > a->at)
            a->at = h->last_to;
        return 1;
    }
    if (strcmp(h->provider, w->provider) == 0)
        return 0;
    if (h->valid_from != RSOWNER_NEG_INF && h->valid_from >= at) {
        /* a change not in effect yet (two syncs within one bucket): undo
         * it rather than leave an owner of no bucket */
        a->op = h->prev_provider && strcmp(h->prev_provider, w->provider) == 0 ? RSOWNER_REVERT
                                                                               : RSOWNER_REPLACE;
        a->at = h->valid_from;
        return 1;
    }
    a->op = RSOWNER_MOVE;
    return 1;
}

int rsowner_plan(const struct rsowner_want *want, size_t nwant, const struct rsowner_have *have,
                 size_t nhave, int64_t now, struct rsowner_plan *out, struct rserr *err)
{
    const struct rsowner_want **ws = NULL;
    const struct rsowner_have **hs = NULL;
    int64_t at = rsowner_boundary(now);
    size_t i = 0, j = 0;

    memset(out, 0, sizeof(*out));
    ws = calloc(nwant ? nwant : 1, sizeof(*ws));
    hs = calloc(nhave ? nhave : 1, sizeof(*hs));
    out->v = calloc(nwant ? nwant : 1, sizeof(*out->v));
    if (!ws || !hs || !out->v) {
        rserr_set(err, 500, "out of memory");
        goto fail;
    }
    for (i = 0; i < nwant; i++)
        ws[i] = &want[i];
    for (j = 0; j < nhave; j++)
        hs[j] = &have[j];
    if (nwant)
        qsort(ws, nwant, sizeof(*ws), want_cmp);
    if (nhave)
        qsort(hs, nhave, sizeof(*hs), have_cmp);
    for (i = 1; i < nwant; i++) {
        if (want_cmp(&ws[i - 1], &ws[i]) == 0) {
            rserr_set(err, 400, "account %s on chain %s is given twice (providers %s and %s)",
                      ws[i]->account, ws[i]->chain, ws[i - 1]->provider, ws[i]->provider);
            goto fail;
        }
    }
    /* merge the two sorted lists */
    i = j = 0;
    while (i < nwant || j < nhave) {
        int d = i == nwant   ? 1
                : j == nhave ? -1
                             : pair_cmp(ws[i]->account, ws[i]->chain, hs[j]->account, hs[j]->chain);
        if (d > 0) {
            out->unconfigured += hs[j]->provider != NULL;
            j++;
        } else if (d < 0) {
            struct rsowner_action *a = &out->v[out->n++];
            a->op = RSOWNER_ADD;
            a->want = ws[i];
            a->have = NULL;
            a->at = RSOWNER_NEG_INF;
            out->added++;
            i++;
        } else {
            struct rsowner_action *a = &out->v[out->n];
            if (!plan_pair(ws[i], hs[j], at, a)) {
                out->unchanged++;
            } else {
                out->n++;
                if (a->op == RSOWNER_REOPEN)
                    out->added++;
                else
                    out->moved++;
            }
            i++;
            j++;
        }
    }
    free(ws);
    free(hs);
    return 0;
fail:
    free(ws);
    free(hs);
    rsowner_plan_free(out);
    return -1;
}

void rsowner_plan_free(struct rsowner_plan *p)
{
    free(p->v);
    memset(p, 0, sizeof(*p));
}
