/* The peer manager's state, shared by the files that implement it and by no
 * other module (the rest of the node sees struct node_peermgr only through
 * peermgr.h): peermgr.c (thread, start/stop, counters, snapshot), peerconn.c
 * (sockets, reconnection queue, timeouts), peermsg.c (sending and handling
 * messages), peersync.c (block download, tip announcements, syncing state)
 * and peerscore.c (quality score, misbehaviour, bans); their chain work runs
 * on peerwork.c's thread. Everything below is
 * touched only by the peer thread under `lock`, except the atomics at the
 * end of struct node_peermgr. */
#ifndef CCNODE_PEERMGR_TYPES_H
#define CCNODE_PEERMGR_TYPES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "peer.h"
#include "peermgr.h"
#include "peerwork.h"

#define STALL_TIMEOUT 5.0 /* a GETBLOCKS answer that stops for this long is given up */
#define MAX_BANS 256

enum peer_state {
    PS_WAITING = 0, /* configured, waiting for its next attempt */
    PS_CONNECTING,  /* non-blocking connect in progress */
    PS_HANDSHAKE,   /* connected, HELLO exchange not done */
    PS_CONNECTED,
    PS_GAVE_UP,      /* reconnect_max_retries failures in a row */
    PS_DISCONNECTED, /* reconnect disabled: not retried */
    PS_CLOSED,       /* inbound connection over: removed at the end of the tick */
};

/* Reasons of ccnode_peer_rejected_messages_total. */
enum reject_reason {
    RJ_BAD_MAGIC = 0,
    RJ_BAD_TYPE,
    RJ_OVERSIZE,
    RJ_BAD_CHECKSUM,
    RJ_TRUNCATED,
    RJ_MALFORMED,
    RJ_UNEXPECTED,
    RJ_WRONG_CHAIN,
    RJ_BAD_BLOCK,
    RJ_BAD_PREV,
    RJ_COUNT,
};

_Static_assert(RJ_COUNT == NODE_PEERMGR_REJECT_REASONS, "reject reasons of peermgr.h");

struct peer {
    unsigned id;
    char addr[96];  /* "host:port" as configured, or the inbound "ip:port" */
    char judge[96]; /* ban key: configured address, or inbound IP */
    int inbound, configured;
    int fd;
    int state;   /* enum peer_state */
    int closing; /* close once the send buffer is flushed */
    double closing_at;
    struct node_buf rbuf, wbuf;
    size_t wpos;
    /* connection */
    double since;                         /* monotonic: connect start or handshake */
    int64_t conntime, lastsend, lastrecv; /* epoch seconds */
    uint64_t bytes_sent, bytes_recv;
    double ping_sent;
    uint64_t ping_nonce;
    double pingtime, minping; /* seconds, -1 unknown */
    int handshaken;
    uint64_t session; /* this connection's number once handshaken, 0 before */
    uint32_t version;
    char subver[NODE_PEER_MAX_STR + 1];
    int64_t startingheight, best_height, synced_blocks;
    int forked;    /* its blocks do not extend our tip: not synced from */
    int no_blocks; /* refused our GETBLOCKS (pruned): not synced from */
    /* sync */
    int64_t req_end; /* last height of the GETBLOCKS in flight, -1 none */
    double req_deadline;
    /* reconnection (configured peers) */
    unsigned attempts; /* retries since the last handshake */
    double next_attempt;
    int64_t next_attempt_wall;
    unsigned failures, offences;
    double uptime; /* seconds connected in earlier sessions */
};

struct ban {
    char judge[96];
    unsigned offences;
    double until; /* monotonic; 0 not banned */
};

struct node_peermgr {
    struct node *n;
    pthread_t thread;
    int started;
    atomic_int stop;
    pthread_mutex_t lock; /* the peer table, bans */
    int listen_fd;
    struct peer **peers;
    size_t npeers, cap;
    unsigned next_id;
    uint64_t next_session; /* numbers the handshaken connections, from 1 */
    uint64_t nonce;        /* ours, in HELLO */
    uint64_t rng;
    char chain_name[NODE_PEER_MAX_STR + 1];
    uint8_t genesis[32];
    int64_t announced;          /* our height last announced */
    struct peer *sync_peer;     /* the peer a GETBLOCKS is in flight to */
    struct node_peerwork *work; /* the chain worker (peerwork.h) */
    int initial_done;
    struct ban bans[MAX_BANS];
    size_t nbans;
    /* read lock-free by health, RPC, metrics */
    _Atomic int syncing;
    _Atomic int64_t best_height, sync_start;
    _Atomic size_t connected_in, connected_out;
    _Atomic uint64_t reconnect_attempts, give_ups, bans_total, blocks_received, blocks_sent;
    _Atomic uint64_t rejected[RJ_COUNT];
};

#endif
