/* Peer protocol codec: frames, message bodies, backoff and quality. */
#include "peer.h"

#include <math.h>
#include <nettle/sha2.h>
#include <string.h>

static uint32_t get_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* First 4 bytes of SHA-256d: nettle needs no allocation, so the decoder
 * stays a pure function that cannot fail on memory. */
static void checksum(const uint8_t *p, size_t len, uint8_t out[4])
{
    struct sha256_ctx ctx;
    uint8_t once[SHA256_DIGEST_SIZE], twice[SHA256_DIGEST_SIZE];
    sha256_init(&ctx);
    sha256_update(&ctx, len, p);
    sha256_digest(&ctx, sizeof(once), once);
    sha256_init(&ctx);
    sha256_update(&ctx, sizeof(once), once);
    sha256_digest(&ctx, sizeof(twice), twice);
    memcpy(out, twice, 4);
}

int node_peer_frame_decode(const uint8_t *buf, size_t len, struct node_peer_frame *f,
                           enum node_peer_frame_error *why)
{
    uint8_t sum[4];
    uint32_t plen;

    memset(f, 0, sizeof(*f));
    *why = NODE_PEER_E_NONE;
    /* Judge the magic as soon as its first bytes arrive: garbage is refused
     * without waiting for a whole header. */
    for (size_t i = 0; i < 4 && i < len; i++) {
        if (buf[i] != (uint8_t)(NODE_PEER_MAGIC >> (8 * i))) {
            *why = NODE_PEER_E_MAGIC;
            return NODE_PEER_ERROR;
        }
    }
    if (len < 5)
        return NODE_PEER_NEED_MORE;
    if (buf[4] == 0 || buf[4] > NODE_PEER_TYPE_MAX) {
        *why = NODE_PEER_E_TYPE;
        return NODE_PEER_ERROR;
    }
    if (len < NODE_PEER_HEADER_SIZE)
        return NODE_PEER_NEED_MORE;
    plen = get_u32le(buf + 5);
    if (plen > NODE_PEER_MAX_PAYLOAD) {
        *why = NODE_PEER_E_OVERSIZE;
        return NODE_PEER_ERROR;
    }
    if (len - NODE_PEER_HEADER_SIZE < (size_t)plen + NODE_PEER_CHECKSUM_SIZE)
        return NODE_PEER_NEED_MORE;
    f->type = buf[4];
    f->payload = buf + NODE_PEER_HEADER_SIZE;
    f->len = plen;
    f->consumed = NODE_PEER_HEADER_SIZE + (size_t)plen + NODE_PEER_CHECKSUM_SIZE;
    checksum(f->payload, plen, sum);
    if (memcmp(sum, f->payload + plen, NODE_PEER_CHECKSUM_SIZE) != 0) {
        *why = NODE_PEER_E_CHECKSUM;
        return NODE_PEER_ERROR;
    }
    return NODE_PEER_FRAME;
}

int node_peer_frame_append(struct node_buf *out, uint8_t type, const void *payload, size_t len)
{
    uint8_t sum[4];
    if (len > NODE_PEER_MAX_PAYLOAD)
        return -1;
    checksum(payload, len, sum);
    node_codec_buf_u32le(out, NODE_PEER_MAGIC);
    node_codec_buf_put(out, &type, 1);
    node_codec_buf_u32le(out, (uint32_t)len);
    node_codec_buf_put(out, payload, len);
    node_codec_buf_put(out, sum, sizeof(sum));
    return out->failed ? -1 : 0;
}

const char *node_peer_frame_error_name(enum node_peer_frame_error e)
{
    switch (e) {
    case NODE_PEER_E_MAGIC:
        return "bad_magic";
    case NODE_PEER_E_TYPE:
        return "bad_type";
    case NODE_PEER_E_OVERSIZE:
        return "oversize";
    case NODE_PEER_E_CHECKSUM:
        return "bad_checksum";
    case NODE_PEER_E_NONE:
        break;
    }
    return "none";
}

const char *node_peer_type_name(uint8_t type)
{
    static const char *const names[] = {"unknown", "hello", "hello_ack", "announce", "getblocks",
                                        "block",   "ping",  "pong",      "reject"};
    return type <= NODE_PEER_TYPE_MAX ? names[type] : names[0];
}

static int put_str(struct node_buf *out, const char *s)
{
    size_t n = strnlen(s, NODE_PEER_MAX_STR);
    uint8_t len = (uint8_t)n;
    node_codec_buf_put(out, &len, 1);
    return node_codec_buf_put(out, s, n);
}

static int get_str(struct node_reader *r, char out[NODE_PEER_MAX_STR + 1])
{
    const uint8_t *p;
    if (node_codec_read_bytes(r, 1, &p) != 0 || *p > NODE_PEER_MAX_STR)
        return -1;
    size_t n = *p;
    if (node_codec_read_bytes(r, n, &p) != 0 || memchr(p, '\0', n))
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

static int get_u8(struct node_reader *r, uint8_t *v)
{
    const uint8_t *p;
    if (node_codec_read_bytes(r, 1, &p) != 0)
        return -1;
    *v = *p;
    return 0;
}

static int get_hash(struct node_reader *r, uint8_t out[32])
{
    const uint8_t *p;
    if (node_codec_read_bytes(r, 32, &p) != 0)
        return -1;
    memcpy(out, p, 32);
    return 0;
}

int node_peer_hello_encode(struct node_buf *out, const struct node_peer_hello *h)
{
    node_codec_buf_u32le(out, h->version);
    put_str(out, h->chain);
    node_codec_buf_put(out, &h->flavour, 1);
    node_codec_buf_u64le(out, h->height);
    node_codec_buf_put(out, h->tip, 32);
    node_codec_buf_put(out, h->genesis, 32);
    node_codec_buf_u64le(out, h->nonce);
    put_str(out, h->subver);
    return out->failed ? -1 : 0;
}

int node_peer_hello_decode(const uint8_t *p, size_t len, struct node_peer_hello *h)
{
    struct node_reader r = {p, len, 0};
    memset(h, 0, sizeof(*h));
    if (node_codec_read_u32le(&r, &h->version) != 0 || get_str(&r, h->chain) != 0 ||
        get_u8(&r, &h->flavour) != 0 || node_codec_read_u64le(&r, &h->height) != 0 ||
        get_hash(&r, h->tip) != 0 || get_hash(&r, h->genesis) != 0 ||
        node_codec_read_u64le(&r, &h->nonce) != 0 || get_str(&r, h->subver) != 0)
        return -1;
    return r.pos == len ? 0 : -1;
}

int node_peer_announce_encode(struct node_buf *out, uint64_t height, const uint8_t hash[32])
{
    node_codec_buf_u64le(out, height);
    return node_codec_buf_put(out, hash, 32);
}

int node_peer_announce_decode(const uint8_t *p, size_t len, uint64_t *height, uint8_t hash[32])
{
    struct node_reader r = {p, len, 0};
    if (node_codec_read_u64le(&r, height) != 0 || get_hash(&r, hash) != 0)
        return -1;
    return r.pos == len ? 0 : -1;
}

int node_peer_getblocks_encode(struct node_buf *out, uint64_t from, uint32_t count)
{
    node_codec_buf_u64le(out, from);
    return node_codec_buf_u32le(out, count);
}

int node_peer_getblocks_decode(const uint8_t *p, size_t len, uint64_t *from, uint32_t *count)
{
    struct node_reader r = {p, len, 0};
    if (node_codec_read_u64le(&r, from) != 0 || node_codec_read_u32le(&r, count) != 0)
        return -1;
    return r.pos == len && *count >= 1 && *count <= NODE_PEER_MAX_GETBLOCKS ? 0 : -1;
}

int node_peer_block_encode(struct node_buf *out, uint64_t height, const uint8_t *raw, size_t len)
{
    node_codec_buf_u64le(out, height);
    return node_codec_buf_put(out, raw, len);
}

int node_peer_block_decode(const uint8_t *p, size_t len, uint64_t *height, const uint8_t **raw,
                           size_t *rawlen)
{
    struct node_reader r = {p, len, 0};
    if (node_codec_read_u64le(&r, height) != 0)
        return -1;
    *raw = p + r.pos;
    *rawlen = len - r.pos;
    return 0;
}

int node_peer_nonce_encode(struct node_buf *out, uint64_t nonce)
{
    return node_codec_buf_u64le(out, nonce);
}

int node_peer_nonce_decode(const uint8_t *p, size_t len, uint64_t *nonce)
{
    struct node_reader r = {p, len, 0};
    if (node_codec_read_u64le(&r, nonce) != 0)
        return -1;
    return r.pos == len ? 0 : -1;
}

int node_peer_reject_encode(struct node_buf *out, const struct node_peer_reject *rj)
{
    node_codec_buf_put(out, &rj->type, 1);
    return put_str(out, rj->reason);
}

int node_peer_reject_decode(const uint8_t *p, size_t len, struct node_peer_reject *rj)
{
    struct node_reader r = {p, len, 0};
    memset(rj, 0, sizeof(*rj));
    if (get_u8(&r, &rj->type) != 0 || get_str(&r, rj->reason) != 0)
        return -1;
    return r.pos == len ? 0 : -1;
}

double node_peer_backoff(double initial, double max, unsigned attempt, double u)
{
    /* 2^attempt overflows nothing as a double, but cap the exponent so the
     * product stays finite for absurd attempt counts. */
    double d = initial * ldexp(1.0, attempt > 60 ? 60 : (int)attempt);
    if (d > max)
        d = max;
    if (u < 0)
        u = 0;
    if (u >= 1)
        u = 1;
    return d * (0.5 + 0.5 * u);
}

double node_peer_quality(double ping_ms, unsigned failures, unsigned offences, double uptime_secs)
{
    double q = 100.0;
    double lat = ping_ms < 0 ? 10.0 : ping_ms / 25.0;
    q -= lat > 40 ? 40 : lat;
    q -= failures > 4 ? 40 : 10.0 * failures;
    q -= 20.0 * offences;
    q += uptime_secs > 1200 ? 20 : uptime_secs / 60.0;
    if (q < 0)
        q = 0;
    if (q > 100)
        q = 100;
    return q;
}

int node_peer_queue_cmp(double qa, double ta, double qb, double tb)
{
    if (qa != qb)
        return qa > qb ? -1 : 1;
    if (ta != tb)
        return ta < tb ? -1 : 1;
    return 0;
}
