/* The append-only headers index (see headers.h). */
#include "headers.h"

#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "sys.h"
#include "log.h"

#define BODY (NODE_HEADERS_RECORD - 4)
#define MAX_RECORDS ((size_t)1 << 28) /* far above any chain this node keeps */

/* No descriptor is kept open between calls: a file open for writing would
 * keep the file system from being remounted read-only (EBUSY). */
struct node_headers {
    char *path;
    size_t count;
};

/* SHA-256 applied twice (nettle's: no allocation, cannot fail). */
static void sha256d(const uint8_t *p, size_t n, uint8_t out[32])
{
    struct sha256_ctx ctx;
    uint8_t first[SHA256_DIGEST_SIZE];
    sha256_init(&ctx);
    sha256_update(&ctx, n, p);
    sha256_digest(&ctx, sizeof(first), first);
    sha256_init(&ctx);
    sha256_update(&ctx, sizeof(first), first);
    sha256_digest(&ctx, SHA256_DIGEST_SIZE, out);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void node_headers_pack(const struct node_header *h, uint8_t out[NODE_HEADER_SIZE])
{
    struct node_buf b = {.data = out, .cap = NODE_HEADER_SIZE};
    node_codec_buf_u32le(&b, (uint32_t)h->version);
    node_codec_buf_put(&b, h->prev, 32);
    node_codec_buf_put(&b, h->merkle, 32);
    node_codec_buf_u32le(&b, h->time);
    node_codec_buf_u32le(&b, h->bits);
    node_codec_buf_u32le(&b, h->nonce);
}

void node_headers_unpack(const uint8_t in[NODE_HEADER_SIZE], struct node_header *h)
{
    struct node_reader r = {in, NODE_HEADER_SIZE, 0};
    const uint8_t *p;
    uint32_t v;
    node_codec_read_u32le(&r, &v);
    h->version = (int32_t)v;
    node_codec_read_bytes(&r, 32, &p);
    memcpy(h->prev, p, 32);
    node_codec_read_bytes(&r, 32, &p);
    memcpy(h->merkle, p, 32);
    node_codec_read_u32le(&r, &h->time);
    node_codec_read_u32le(&r, &h->bits);
    node_codec_read_u32le(&r, &h->nonce);
}

void node_headers_encode(const struct node_block_meta *m, uint8_t out[NODE_HEADERS_RECORD])
{
    uint8_t sum[32];
    node_headers_pack(&m->header, out);
    put_u32(out + NODE_HEADER_SIZE, m->ntx);
    put_u32(out + NODE_HEADER_SIZE + 4, m->size);
    put_u32(out + NODE_HEADER_SIZE + 8, m->weight);
    sha256d(out, BODY, sum);
    memcpy(out + BODY, sum, 4);
}

int node_headers_decode(const uint8_t in[NODE_HEADERS_RECORD], struct node_block_meta *m)
{
    uint8_t sum[32];
    sha256d(in, BODY, sum);
    if (memcmp(sum, in + BODY, 4) != 0)
        return -1;
    memset(m, 0, sizeof(*m));
    node_headers_unpack(in, &m->header);
    sha256d(in, NODE_HEADER_SIZE, m->hash);
    m->ntx = get_u32(in + NODE_HEADER_SIZE);
    m->size = get_u32(in + NODE_HEADER_SIZE + 4);
    m->weight = get_u32(in + NODE_HEADER_SIZE + 8);
    return 0;
}

static int read_full(int fd, uint8_t *p, size_t len, off_t off)
{
    while (len) {
        ssize_t r = pread(fd, p, len, off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        off += r;
        len -= (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const uint8_t *p, size_t len, off_t off)
{
    while (len) {
        ssize_t w = pwrite(fd, p, len, off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        off += w;
        len -= (size_t)w;
    }
    return 0;
}

static off_t record_offset(size_t height)
{
    return (off_t)NODE_HEADERS_PREFIX + (off_t)height * NODE_HEADERS_RECORD;
}

/* Write the magic of a new (or torn-at-creation) file. */
static int write_prefix(struct node_headers *h, int fd, char *err, size_t errlen)
{
    if (ftruncate(fd, 0) != 0 ||
        write_full(fd, (const uint8_t *)NODE_HEADERS_MAGIC, NODE_HEADERS_PREFIX, 0) != 0 ||
        fdatasync(fd) != 0)
        return SYS_ERR("%s: %s", h->path, strerror(errno));
    return 0;
}

/* Cut the file after `count` records and make that durable. 0 or -1 (errno). */
static int cut_at(const struct node_headers *h, size_t count)
{
    int fd = open(h->path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = ftruncate(fd, record_offset(count)) == 0 && fdatasync(fd) == 0 ? 0 : -1;
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

struct node_headers *node_headers_open(const char *path, struct node_block_meta **metas, size_t *n,
                                       char *err, size_t errlen)
{
    struct node_headers *h = calloc(1, sizeof(*h));
    struct node_block_meta *m = NULL;
    uint8_t *data = NULL;
    struct stat st;
    size_t nrec, good = 0;
    int fd = -1;

    *metas = NULL;
    *n = 0;
    if (!h) {
        SYS_ERR("%s: out of memory", path);
        return NULL;
    }
    if (!(h->path = strdup(path))) {
        SYS_ERR("%s: out of memory", path);
        goto fail;
    }
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EROFS)
        fd = open(path, O_RDONLY | O_CLOEXEC); /* serve reads; appends will fail */
    if (fd < 0) {
        SYS_ERR("%s: %s", path, strerror(errno));
        goto fail;
    }
    if (fstat(fd, &st) != 0) {
        SYS_ERR("%s: %s", path, strerror(errno));
        goto fail;
    }
    if (st.st_size < NODE_HEADERS_PREFIX) {
        /* New, or torn before its first record: nothing in it to lose. */
        if (write_prefix(h, fd, err, errlen) != 0)
            goto fail;
        close(fd);
        return h;
    }
    nrec = (size_t)(st.st_size - NODE_HEADERS_PREFIX) / NODE_HEADERS_RECORD;
    if (nrec > MAX_RECORDS) {
        SYS_ERR("%s: %zu records is more than this node keeps", path, nrec);
        goto fail;
    }
    data = malloc(NODE_HEADERS_PREFIX + nrec * NODE_HEADERS_RECORD);
    m = calloc(nrec ? nrec : 1, sizeof(*m));
    if (!data || !m) {
        SYS_ERR("%s: out of memory", path);
        goto fail;
    }
    if (read_full(fd, data, NODE_HEADERS_PREFIX + nrec * NODE_HEADERS_RECORD, 0) != 0) {
        SYS_ERR("%s: read: %s", path, errno ? strerror(errno) : "short read");
        goto fail;
    }
    if (memcmp(data, NODE_HEADERS_MAGIC, NODE_HEADERS_PREFIX) != 0) {
        SYS_ERR("%s: not a headers index of this version", path);
        goto fail;
    }
    while (good < nrec &&
           node_headers_decode(data + NODE_HEADERS_PREFIX + good * NODE_HEADERS_RECORD, &m[good]) ==
               0)
        good++;
    h->count = good;
    /* Failing to cut the tail (read-only) is harmless: appends overwrite it. */
    if (record_offset(good) != st.st_size && cut_at(h, good) != 0)
        log_msg(LOG_WARN, "headers_truncate_failed", "%s: %s", path, strerror(errno));
    close(fd);
    free(data);
    *metas = m;
    *n = good;
    return h;
fail:
    if (fd >= 0)
        close(fd);
    free(data);
    free(m);
    node_headers_close(h);
    return NULL;
}

int node_headers_append(struct node_headers *h, const struct node_block_meta *m, char *err,
                        size_t errlen)
{
    uint8_t rec[NODE_HEADERS_RECORD];
    off_t off = record_offset(h->count);
    int fd = open(h->path, O_WRONLY | O_CLOEXEC);

    node_headers_encode(m, rec);
    if (fd < 0 || write_full(fd, rec, sizeof(rec), off) != 0 || fdatasync(fd) != 0) {
        int e = errno;
        SYS_ERR("%s: %s", h->path, strerror(e));
        /* A record left behind is harmless: the next append overwrites it,
         * and on reopen a record above the chainstate without its block file
         * is discarded. */
        if (fd >= 0 && ftruncate(fd, off) != 0)
            log_msg(LOG_WARN, "headers_truncate_failed", "%s: %s", h->path, strerror(errno));
        if (fd >= 0)
            close(fd);
        errno = e;
        return -1;
    }
    if (close(fd) != 0) {
        int e = errno;
        SYS_ERR("%s: close: %s", h->path, strerror(e));
        errno = e;
        return -1;
    }
    h->count++;
    return 0;
}

int node_headers_truncate(struct node_headers *h, size_t count, char *err, size_t errlen)
{
    if (count >= h->count)
        return 0;
    if (cut_at(h, count) != 0)
        return SYS_ERR("%s: truncate: %s", h->path, strerror(errno));
    h->count = count;
    return 0;
}

size_t node_headers_count(const struct node_headers *h)
{
    return h->count;
}

uint64_t node_headers_bytes(const struct node_headers *h)
{
    return (uint64_t)record_offset(h->count);
}

void node_headers_close(struct node_headers *h)
{
    if (!h)
        return;
    free(h->path);
    free(h);
}
