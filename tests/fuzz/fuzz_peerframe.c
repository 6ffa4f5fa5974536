/* libFuzzer target: the peer frame decoder and message decoders on an
 * arbitrary byte stream, as a peer's socket would deliver it. Every frame
 * the decoder accepts must re-encode to the same bytes; a message body that
 * decodes must re-encode to the same payload; consumed sizes stay in bounds.
 * fuzz-components: node
 * fuzz-libs: -lnettle */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "codec.h"
#include "peer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Re-encode a decoded body and require the original payload back. */
static void check_body(const struct node_peer_frame *f)
{
    struct node_buf b = {0};
    struct node_peer_hello h;
    struct node_peer_reject rj;
    uint64_t u, height;
    uint32_t count;
    uint8_t hash[32];
    const uint8_t *raw;
    size_t rawlen;
    int decoded = 0;

    switch (f->type) {
    case NODE_PEER_HELLO:
    case NODE_PEER_HELLO_ACK:
        if (node_peer_hello_decode(f->payload, f->len, &h) == 0)
            decoded = node_peer_hello_encode(&b, &h) == 0;
        break;
    case NODE_PEER_ANNOUNCE:
        if (node_peer_announce_decode(f->payload, f->len, &height, hash) == 0)
            decoded = node_peer_announce_encode(&b, height, hash) == 0;
        break;
    case NODE_PEER_GETBLOCKS:
        if (node_peer_getblocks_decode(f->payload, f->len, &u, &count) == 0)
            decoded = node_peer_getblocks_encode(&b, u, count) == 0;
        break;
    case NODE_PEER_BLOCK:
        if (node_peer_block_decode(f->payload, f->len, &height, &raw, &rawlen) == 0) {
            if (raw < f->payload || raw + rawlen != f->payload + f->len)
                __builtin_trap();
            decoded = node_peer_block_encode(&b, height, raw, rawlen) == 0;
        }
        break;
    case NODE_PEER_PING:
    case NODE_PEER_PONG:
        if (node_peer_nonce_decode(f->payload, f->len, &u) == 0)
            decoded = node_peer_nonce_encode(&b, u) == 0;
        break;
    case NODE_PEER_REJECT:
        if (node_peer_reject_decode(f->payload, f->len, &rj) == 0)
            decoded = node_peer_reject_encode(&b, &rj) == 0;
        break;
    default:
        __builtin_trap(); /* the frame decoder lets no unknown type through */
    }
    if (decoded && (b.len != f->len || memcmp(b.data, f->payload, f->len) != 0))
        __builtin_trap();
    node_codec_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t pos = 0;
    while (pos < size) {
        struct node_peer_frame f;
        enum node_peer_frame_error why;
        int rc = node_peer_frame_decode(data + pos, size - pos, &f, &why);
        if (rc == NODE_PEER_NEED_MORE)
            break;
        if (f.consumed > size - pos)
            __builtin_trap();
        if (rc == NODE_PEER_ERROR) {
            if (why == NODE_PEER_E_NONE || (why == NODE_PEER_E_CHECKSUM) != (f.consumed > 0))
                __builtin_trap();
            if (f.consumed == 0)
                break;
            pos += f.consumed;
            continue;
        }
        struct node_buf again = {0};
        if (node_peer_frame_append(&again, f.type, f.payload, f.len) == 0 &&
            (again.len != f.consumed || memcmp(again.data, data + pos, f.consumed) != 0))
            __builtin_trap();
        node_codec_buf_free(&again);
        check_body(&f);
        pos += f.consumed;
    }
    return 0;
}
