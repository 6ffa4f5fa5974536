/* The peer protocol of cc-node: nodes of one chain talk over TCP in frames.
 *
 * Frame (all integers little-endian):
 *
 *   offset  size  field
 *   0       4     magic 0xCC 0x9E 0xE7 0x01 ("NODE_PEER_MAGIC")
 *   4       1     message type (below)
 *   5       4     payload length, at most NODE_PEER_MAX_PAYLOAD (4 MiB + 64)
 *   9       len   payload
 *   9+len   4     checksum: first 4 bytes of SHA-256(SHA-256(payload)), as Bitcoin
 *
 * A bad magic, an unknown type or an oversize length lose the framing: the
 * receiver rejects and disconnects. A bad checksum only drops that frame.
 *
 * Messages (strings are a 1-byte length then that many bytes, no NUL):
 *
 *   HELLO      1  u32 protocol version, str chain ("bitcoin-1337"), u8 flavour
 *                 (0 bitcoin, 1 evm), u64 best height, 32 tip hash, 32 genesis
 *                 hash, u64 nonce (instance id: detects self-connections),
 *                 str subver ("/cc-node:0.1.0/name")
 *   HELLO_ACK  2  same body as HELLO: the answer of the accepting side
 *   ANNOUNCE   3  u64 height, 32 hash: a new tip
 *   GETBLOCKS  4  u64 first height, u32 count (at most NODE_PEER_MAX_GETBLOCKS)
 *   BLOCK      5  u64 height, then the serialized block (rest of the payload)
 *   PING       6  u64 nonce
 *   PONG       7  u64 nonce of the PING it answers
 *   REJECT     8  u8 type of the rejected message, str reason
 *
 * Handshake: the connecting side sends HELLO, the accepting side checks chain
 * string and genesis hash and answers HELLO_ACK (or REJECT and closes). Only
 * PING, PONG and REJECT are accepted before the handshake. Hashes are in
 * internal byte order (as in block headers). */
#ifndef CCNODE_PEER_H
#define CCNODE_PEER_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

#define NODE_PEER_MAGIC 0x01e79eccu /* bytes CC 9E E7 01 on the wire */
#define NODE_PEER_VERSION 1u
#define NODE_PEER_HEADER_SIZE 9
#define NODE_PEER_CHECKSUM_SIZE 4
#define NODE_PEER_MAX_PAYLOAD ((4u << 20) + 64)
#define NODE_PEER_MAX_GETBLOCKS 500
#define NODE_PEER_MAX_STR 128

enum node_peer_type {
    NODE_PEER_HELLO = 1,
    NODE_PEER_HELLO_ACK,
    NODE_PEER_ANNOUNCE,
    NODE_PEER_GETBLOCKS,
    NODE_PEER_BLOCK,
    NODE_PEER_PING,
    NODE_PEER_PONG,
    NODE_PEER_REJECT,
    NODE_PEER_TYPE_MAX = NODE_PEER_REJECT,
};

/* Result of node_peer_frame_decode(). */
enum node_peer_decode {
    NODE_PEER_ERROR = -1,
    NODE_PEER_NEED_MORE = 0,
    NODE_PEER_FRAME = 1,
};

/* Why a frame was refused. */
enum node_peer_frame_error {
    NODE_PEER_E_NONE = 0,
    NODE_PEER_E_MAGIC,
    NODE_PEER_E_TYPE,
    NODE_PEER_E_OVERSIZE,
    NODE_PEER_E_CHECKSUM,
};

struct node_peer_frame {
    uint8_t type;
    const uint8_t *payload; /* points into the decoded buffer */
    uint32_t len;
    size_t consumed; /* bytes of the whole frame; 0 when the framing is lost */
};

struct node_peer_hello {
    uint32_t version;
    char chain[NODE_PEER_MAX_STR + 1];
    uint8_t flavour;
    uint64_t height;
    uint8_t tip[32];
    uint8_t genesis[32];
    uint64_t nonce;
    char subver[NODE_PEER_MAX_STR + 1];
};

struct node_peer_reject {
    uint8_t type;
    char reason[NODE_PEER_MAX_STR + 1];
};

/* Decode the frame at the start of buf[0..len). NODE_PEER_NEED_MORE when
 * the buffer holds only part of it; NODE_PEER_FRAME with *f filled (payload
 * points into buf); NODE_PEER_ERROR with *why set and f->consumed the size of
 * the bad frame when it can be skipped (bad checksum), 0 when the stream is
 * unusable. Pure: no allocation, no state. */
int node_peer_frame_decode(const uint8_t *buf, size_t len, struct node_peer_frame *f,
                           enum node_peer_frame_error *why);

/* Append a whole frame (header, payload, checksum) to `out`. 0, or -1 out of
 * memory (out->failed set) or payload too large. */
int node_peer_frame_append(struct node_buf *out, uint8_t type, const void *payload, size_t len);

/* Stable names for the reject reasons of frames and messages (metrics labels). */
const char *node_peer_frame_error_name(enum node_peer_frame_error e);
const char *node_peer_type_name(uint8_t type);

/* Message bodies: encoders append the payload to `out` (0, or -1 out of
 * memory); decoders return 0, or -1 when the payload is malformed (short,
 * trailing bytes, over-long strings). */
int node_peer_hello_encode(struct node_buf *out, const struct node_peer_hello *h);
int node_peer_hello_decode(const uint8_t *p, size_t len, struct node_peer_hello *h);
int node_peer_announce_encode(struct node_buf *out, uint64_t height, const uint8_t hash[32]);
int node_peer_announce_decode(const uint8_t *p, size_t len, uint64_t *height, uint8_t hash[32]);
int node_peer_getblocks_encode(struct node_buf *out, uint64_t from, uint32_t count);
int node_peer_getblocks_decode(const uint8_t *p, size_t len, uint64_t *from, uint32_t *count);
/* BLOCK: the block bytes are returned as a slice of `p`. */
int node_peer_block_encode(struct node_buf *out, uint64_t height, const uint8_t *raw, size_t len);
int node_peer_block_decode(const uint8_t *p, size_t len, uint64_t *height, const uint8_t **raw,
                           size_t *rawlen);
int node_peer_nonce_encode(struct node_buf *out, uint64_t nonce);
int node_peer_nonce_decode(const uint8_t *p, size_t len, uint64_t *nonce);
int node_peer_reject_encode(struct node_buf *out, const struct node_peer_reject *r);
int node_peer_reject_decode(const uint8_t *p, size_t len, struct node_peer_reject *r);

/* Reconnection delay before retry number attempt+1 (attempt counts the
 * consecutive failures so far, from 0): min(max, initial * 2^attempt), scaled
 * by a jitter factor 0.5 + 0.5 * u for u uniform in [0, 1), so the delay is
 * uniform in [0.5, 1.0] x the exponential value ("equal jitter"): retries of
 * many nodes spread out, yet never come sooner than half the schedule. */
double node_peer_backoff(double initial, double max, unsigned attempt, double u);

/* Quality of a peer in [0, 100], higher is better: starts at 100, loses up
 * to 40 for latency (ping_ms / 25; -1 = unknown costs 10), 10 per failed
 * connection attempt (at most 40) and 20 per offence, gains up to 20 for
 * uptime (one per minute connected). */
double node_peer_quality(double ping_ms, unsigned failures, unsigned offences, double uptime_secs);

/* Order of the reconnection queue: higher quality first, then the earlier
 * next attempt. qsort-style: <0 when (qa, ta) goes before (qb, tb). */
int node_peer_queue_cmp(double qa, double ta, double qb, double tb);

#endif
