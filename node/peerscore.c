/* A peer's quality score, its misbehaviour and the bans of addresses. */
#include "peerscore.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "sys.h"

static const char *const reject_names[RJ_COUNT] = {
    "bad_magic", "bad_type",   "oversize",    "bad_checksum", "truncated",
    "malformed", "unexpected", "wrong_chain", "bad_block",    "bad_prev"};

double node_peerscore_quality(const struct peer *p, double now)
{
    double up = p->uptime + (p->state == PS_CONNECTED ? now - p->since : 0);
    return node_peer_quality(p->pingtime < 0 ? -1 : p->pingtime * 1000.0, p->failures, p->offences,
                             up);
}

static struct ban *ban_find(struct node_peermgr *pm, const char *judge, int create)
{
    for (size_t i = 0; i < pm->nbans; i++)
        if (strcmp(pm->bans[i].judge, judge) == 0)
            return &pm->bans[i];
    if (!create)
        return NULL;
    if (pm->nbans == MAX_BANS) {
        /* Full: reuse the entry of an expired ban or the fewest offences. */
        size_t victim = 0;
        for (size_t i = 1; i < pm->nbans; i++)
            if (pm->bans[i].offences < pm->bans[victim].offences)
                victim = i;
        memset(&pm->bans[victim], 0, sizeof(pm->bans[victim]));
        snprintf(pm->bans[victim].judge, sizeof(pm->bans[victim].judge), "%s", judge);
        return &pm->bans[victim];
    }
    struct ban *b = &pm->bans[pm->nbans++];
    memset(b, 0, sizeof(*b));
    snprintf(b->judge, sizeof(b->judge), "%s", judge);
    return b;
}

double node_peerscore_banned_until(struct node_peermgr *pm, const char *judge, double now)
{
    struct ban *b = ban_find(pm, judge, 0);
    return b && b->until > now ? b->until : 0;
}

void node_peerscore_reject(struct node_peermgr *pm, enum reject_reason r)
{
    atomic_fetch_add(&pm->rejected[r], 1);
}

/* Count the offence; ban the address at the threshold. `drop`: the stream
 * cannot go on (framing lost), close the connection either way. */
void node_peerscore_offence(struct node_peermgr *pm, struct peer *p, enum reject_reason r,
                            const char *detail, int drop)
{
    struct ban *b = ban_find(pm, p->judge, 1);
    node_peerscore_reject(pm, r);
    p->offences++;
    b->offences++;
    LOG_EVENT(LOG_WARN, "peer_misbehaving", NULL, detail, LF_STR("peer", p->addr),
              LF_INT("id", p->id), LF_STR("reason", reject_names[r]),
              LF_INT("offences", b->offences));
    if (b->offences >= NODE_PEERMGR_BAN_OFFENCES && b->until <= sys_mono_s()) {
        b->until = sys_mono_s() + NODE_PEERMGR_BAN_SECS;
        b->offences = 0;
        atomic_fetch_add(&pm->bans_total, 1);
        LOG_EVENT(LOG_WARN, "peer_banned", NULL, NULL, LF_STR("peer", p->judge),
                  LF_INT("secs", NODE_PEERMGR_BAN_SECS));
        drop = 1;
    }
    if (drop)
        p->closing = 1;
}

const char *node_peerscore_reject_name(size_t reason)
{
    return reason < RJ_COUNT ? reject_names[reason] : "unknown";
}
