/* Peer reports: JSON and metric families (see peerinfo.h). */
#include "peerinfo.h"

#include <stdlib.h>

#include "peermgr.h"

static json_t *opt_time(int64_t t)
{
    return t > 0 ? json_integer(t) : json_null();
}

static json_t *peer_json(const struct node_peer_view *v)
{
    json_t *o =
        json_pack("{s:I,s:s,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:s,s:I,s:I,s:I,s:s,s:I,s:o,s:f,s:I,s:o}",
                  "id", (json_int_t)v->id, "addr", v->addr, "inbound", v->inbound, "conntime",
                  (json_int_t)v->conntime, "lastsend", (json_int_t)v->lastsend, "lastrecv",
                  (json_int_t)v->lastrecv, "bytessent", (json_int_t)v->bytes_sent, "bytesrecv",
                  (json_int_t)v->bytes_recv, "version", (json_int_t)v->version, "subver", v->subver,
                  "startingheight", (json_int_t)v->startingheight, "synced_blocks",
                  (json_int_t)v->synced_blocks, "best_height", (json_int_t)v->best_height,
                  "connection_state", v->state, "attempts", (json_int_t)v->attempts, "next_attempt",
                  opt_time(v->next_attempt), "score", v->score, "offences", (json_int_t)v->offences,
                  "banned_until", opt_time(v->banned_until));
    if (o && v->pingtime >= 0) {
        json_object_set_new(o, "pingtime", json_real(v->pingtime));
        json_object_set_new(o, "minping", json_real(v->minping));
    }
    if (o && v->forked)
        json_object_set_new(o, "forked", json_true());
    return o;
}

json_t *node_peerinfo_json(struct node_peermgr *pm)
{
    struct node_peer_view *views = NULL;
    size_t n = 0;
    json_t *arr = json_array();

    if (!arr)
        return NULL;
    if (node_peermgr_snapshot(pm, &views, &n) != 0) {
        json_decref(arr);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *o = peer_json(&views[i]);
        if (!o || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            arr = NULL;
            break;
        }
    }
    free(views);
    return arr;
}

json_t *node_peerinfo_health(struct node_peermgr *pm)
{
    struct node_peermgr_stats st;
    json_t *list = node_peerinfo_json(pm);

    if (!list)
        return NULL;
    node_peermgr_stats(pm, &st);
    return json_pack("{s:I,s:I,s:I,s:I,s:b,s:I,s:o}", "configured", (json_int_t)st.configured,
                     "connected", (json_int_t)(st.connected_in + st.connected_out), "inbound",
                     (json_int_t)st.connected_in, "outbound", (json_int_t)st.connected_out,
                     "syncing", st.syncing, "best_height", (json_int_t)st.best_height, "list",
                     list);
}

#define FAM(name, type, help) (rc |= prom_family(p, name, type, help))
#define SAMPLE(name, labels, v) (rc |= prom_sample(p, name, labels, (double)(v)))

int node_peerinfo_metrics(struct node_peermgr *pm, prom_t *p)
{
    struct node_peermgr_stats st;
    int rc = 0;

    node_peermgr_stats(pm, &st);
    FAM("ccnode_peers_connected", PROM_GAUGE, "Peers connected (handshake done), by direction.");
    {
        const char *l[] = {"direction", "inbound", NULL};
        SAMPLE("ccnode_peers_connected", l, st.connected_in);
        l[1] = "outbound";
        SAMPLE("ccnode_peers_connected", l, st.connected_out);
    }
    FAM("ccnode_peer_best_height", PROM_GAUGE,
        "Best height reported by connected peers (-1 none).");
    SAMPLE("ccnode_peer_best_height", NULL, st.best_height);
    FAM("ccnode_syncing", PROM_GAUGE, "1 while the node is behind its peers.");
    SAMPLE("ccnode_syncing", NULL, st.syncing);
    FAM("ccnode_peer_reconnect_attempts_total", PROM_COUNTER,
        "Connection attempts to configured peers after a failure or disconnect.");
    SAMPLE("ccnode_peer_reconnect_attempts_total", NULL, st.reconnect_attempts);
    FAM("ccnode_peer_give_ups_total", PROM_COUNTER,
        "Configured peers given up after reconnect_max_retries failures in a row.");
    SAMPLE("ccnode_peer_give_ups_total", NULL, st.give_ups);
    FAM("ccnode_peer_bans_total", PROM_COUNTER, "Peer addresses banned for misbehaviour.");
    SAMPLE("ccnode_peer_bans_total", NULL, st.bans);
    FAM("ccnode_peer_rejected_messages_total", PROM_COUNTER,
        "Frames and messages from peers refused, by reason.");
    for (size_t i = 0; i < NODE_PEERMGR_REJECT_REASONS; i++) {
        const char *l[] = {"reason", node_peermgr_reject_name(i), NULL};
        SAMPLE("ccnode_peer_rejected_messages_total", l, st.rejected[i]);
    }
    FAM("ccnode_peer_blocks_received_total", PROM_COUNTER, "Blocks from peers connected.");
    SAMPLE("ccnode_peer_blocks_received_total", NULL, st.blocks_received);
    FAM("ccnode_peer_blocks_sent_total", PROM_COUNTER, "Blocks sent to peers.");
    SAMPLE("ccnode_peer_blocks_sent_total", NULL, st.blocks_sent);
    return rc ? -1 : 0;
}
