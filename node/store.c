/* Durable file helpers for the chain store. */
#include "store.h"

#include "codec.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

int node_store_mkdirs(const char *path, char *err, size_t errlen)
{
    struct stat st;

    if (sys_mkdirs(path) != 0)
        return SYS_ERR("%s: %s", path, strerror(errno));
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return SYS_ERR("%s: not a directory", path);
    return 0;
}

int node_store_read(const char *path, size_t max, uint8_t **data, size_t *len, char *err,
                    size_t errlen)
{
    uint8_t *buf = NULL;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    *data = NULL;
    *len = 0;
    if (fd < 0) {
        int e = errno;
        SYS_ERR("%s: %s", path, strerror(e));
        errno = e;
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        SYS_ERR("%s: %s", path, strerror(errno));
        goto fail;
    }
    if ((uint64_t)st.st_size > max) {
        SYS_ERR("%s: larger than %zu bytes", path, max);
        goto fail;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        SYS_ERR("%s: out of memory", path);
        goto fail;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            SYS_ERR("%s: %s", path, r < 0 ? strerror(errno) : "short read");
            goto fail;
        }
        got += (size_t)r;
    }
    close(fd);
    *data = buf;
    *len = got;
    return 0;
fail:
    close(fd);
    free(buf);
    errno = EIO;
    return -1;
}

int node_store_probe(const char *dir, uint64_t min_free_bytes, char *err, size_t errlen)
{
    char path[4096];
    struct statvfs vfs;
    int fd;

    if (snprintf(path, sizeof(path), "%s/.probe", dir) >= (int)sizeof(path))
        return SYS_ERR("%s: path too long", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        SYS_ERR("%s: %s", path, strerror(e));
        errno = e;
        return -1;
    }
    if (sys_write_all(fd, "ok", 2) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(path);
        SYS_ERR("%s: %s", path, strerror(e));
        errno = e;
        return -1;
    }
    close(fd);
    unlink(path);
    if (statvfs(dir, &vfs) != 0) {
        int e = errno;
        SYS_ERR("%s: statvfs: %s", dir, strerror(e));
        errno = e;
        return -1;
    }
    if ((uint64_t)vfs.f_bavail * vfs.f_frsize < min_free_bytes) {
        SYS_ERR("%s: less than %llu bytes free", dir, (unsigned long long)min_free_bytes);
        errno = ENOSPC;
        return -1;
    }
    return 0;
}

enum node_storage_state node_store_classify(int errnum)
{
    switch (errnum) {
    case 0:
        return NODE_STORAGE_OK;
    case EROFS:
    case EACCES:
    case EPERM:
        return NODE_STORAGE_READONLY;
    case ENOSPC:
    case EDQUOT:
        return NODE_STORAGE_FULL;
    default:
        return NODE_STORAGE_UNAVAILABLE;
    }
}

const char *node_store_reason(enum node_storage_state s)
{
    switch (s) {
    case NODE_STORAGE_READONLY:
        return "storage: read-only";
    case NODE_STORAGE_FULL:
        return "storage: no space";
    case NODE_STORAGE_UNAVAILABLE:
        return "storage: unavailable";
    default:
        return NULL;
    }
}
