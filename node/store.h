/* Files in the data dir: whole-file reads, and the writability probe behind
 * /health/ready's storage_available (atomic replace is sys_write_file_atomic). */
#ifndef CCNODE_STORE_H
#define CCNODE_STORE_H

#include <stddef.h>
#include <stdint.h>

/* Create `path` (and missing parents) as a directory. 0, or -1 with err. */
int node_store_mkdirs(const char *path, char *err, size_t errlen);

/* Read a whole file (at most `max` bytes) into a malloc'd buffer. 0, or -1
 * with err; errno is ENOENT when the file does not exist. */
int node_store_read(const char *path, size_t max, uint8_t **data, size_t *len, char *err,
                    size_t errlen);

/* Whether `dir` accepts a small durable write and has at least
 * `min_free_bytes` free. 0 when usable, -1 with the reason in err and errno
 * telling why (ENOSPC when below `min_free_bytes`). */
int node_store_probe(const char *dir, uint64_t min_free_bytes, char *err, size_t errlen);

/* Why the data dir cannot be written, from the errno of a failed write. */
enum node_storage_state {
    NODE_STORAGE_OK = 0,
    NODE_STORAGE_READONLY,    /* EROFS (and EACCES/EPERM) */
    NODE_STORAGE_FULL,        /* ENOSPC, EDQUOT, below the free-space floor */
    NODE_STORAGE_UNAVAILABLE, /* anything else: I/O error, dir gone */
};

/* Classify the errno of a failed write or probe. */
enum node_storage_state node_store_classify(int errnum);

/* The /health/ready reason of a state ("storage: read-only", "storage: no
 * space", "storage: unavailable"); NULL for NODE_STORAGE_OK. Static. */
const char *node_store_reason(enum node_storage_state s);

#endif
