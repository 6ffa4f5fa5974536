/* What the peer manager thinks of a peer: its quality score (node_peer_quality
 * of its ping, failures, offences and uptime), its misbehaviour counted by
 * reason, and bans by address (NODE_PEERMGR_BAN_OFFENCES offences ban the
 * address for NODE_PEERMGR_BAN_SECS). Called with the peer manager's lock
 * held. */
#ifndef CCNODE_PEERSCORE_H
#define CCNODE_PEERSCORE_H

#include <stddef.h>

#include "peermgr-types.h"

/* Higher is better; `now` monotonic seconds (uptime counts the current
 * session of a connected peer). */
double node_peerscore_quality(const struct peer *p, double now);

/* Monotonic time until which `judge` (an address or IP) is banned, 0 when
 * it is not. */
double node_peerscore_banned_until(struct node_peermgr *pm, const char *judge, double now);

/* Count a rejected message that is not the peer's fault (no offence). */
void node_peerscore_reject(struct node_peermgr *pm, enum reject_reason r);

/* Count the offence of `p` and ban its address at the threshold (which
 * closes the connection). `drop`: the stream cannot go on (framing lost),
 * close the connection either way. `detail` goes to the log line. */
void node_peerscore_offence(struct node_peermgr *pm, struct peer *p, enum reject_reason r,
                            const char *detail, int drop);

/* "bad_magic", ...; "unknown" out of range. */
const char *node_peerscore_reject_name(size_t reason);

#endif
