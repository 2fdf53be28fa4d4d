/*
 * nullfs — the null provider: what FUSE and FS9 cost with nothing behind
 * them.  A benchmark plugin, never installed.
 *
 *   /file    a regular file of `size` bytes: reads return zeros, writes
 *            are discarded (the size never changes), stat answers at once
 *   /.calls  how many provider calls each operation received since the
 *            last reset, one "operation count" line each; writing
 *            anything to it resets the counts.  Calls on /.calls itself
 *            are not counted.
 *
 * Settings:
 *   size=BYTES       size of /file, with an optional K, M or G suffix (1G)
 *   nonblocking=0|1  1 (default): declare FS9_CAP_NONBLOCKING, so FS9 calls
 *                    nullfs on the thread that received the request; 0:
 *                    every call goes through the dispatcher's thread pool.
 *                    Comparing the two measures the pool hop.
 *
 *   fs9 -o plugin=build/bench/nullfs.so nullfs MNT
 *   fs9 -o plugin=build/bench/nullfs.so -o nonblocking=0 nullfs MNT
 *
 * Nothing here allocates on the paths a benchmark exercises: open of
 * /file hands out a static handle, read fills the caller's buffer with
 * zeros, write only counts.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fs9/provider.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { OBJ_ROOT, OBJ_FILE, OBJ_CALLS, OBJ_COUNT };

static const char *const obj_names[OBJ_COUNT] = {"", "file", ".calls"};

/* Counted operations, in the order /.calls lists them. */
enum { C_STAT, C_WSTAT, C_STATFS, C_OPEN, C_READ, C_WRITE, C_CLOSE,
       C_READDIR, C_REMOVE, C_OTHER, C_COUNT };

static const char *const call_names[C_COUNT] = {
    "stat", "wstat", "statfs", "open", "read", "write", "close", "readdir",
    "remove", "other",
};

struct null_handle {
    int obj;
    char *text; /* /.calls: the snapshot taken at open; owned */
    size_t len;
};

struct nullfs {
    uint64_t size;
    int nonblocking;
    uint32_t uid, gid;
    struct timespec birth;
    struct null_handle root, file; /* static handles: no allocation */
    /* One counter per cache line: two cores adding to neighbours would
     * otherwise bounce the line between them. */
    struct {
        _Alignas(64) atomic_ullong n;
    } calls[C_COUNT];
};

static void count(struct nullfs *fs, int op)
{
    atomic_fetch_add_explicit(&fs->calls[op].n, 1, memory_order_relaxed);
}

static int lookup(const char *path)
{
    for (int i = 0; i < OBJ_COUNT; i++)
        if (strcmp(obj_names[i], path) == 0)
            return i;
    if (strncmp(path, "file/", 5) == 0 || strncmp(path, ".calls/", 7) == 0)
        return -ENOTDIR;
    return -ENOENT;
}

static void obj_attr(const struct nullfs *fs, int i, struct fs9_attr *out)
{
    memset(out, 0, sizeof *out);
    out->ino = (uint64_t)i + 1;
    out->mode = i == OBJ_ROOT    ? S_IFDIR | 0755
                : i == OBJ_FILE ? S_IFREG | 0666
                                : S_IFREG | 0644;
    out->nlink = i == OBJ_ROOT ? 2 : 1;
    out->uid = fs->uid;
    out->gid = fs->gid;
    out->size = i == OBJ_FILE ? fs->size : 0;
    out->blocks = 0; /* nothing is stored */
    out->blksize = 1u << 20;
    out->atime = out->mtime = out->ctime = fs->birth;
}

static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -EINVAL;
    switch (*end) {
    case 'K': case 'k': v <<= 10; end++; break;
    case 'M': case 'm': v <<= 20; end++; break;
    case 'G': case 'g': v <<= 30; end++; break;
    default: break;
    }
    if (*end)
        return -EINVAL;
    *out = v;
    return 0;
}

static int nullfs_create(const struct fs9_host *host,
                         const struct fs9_config *cfg, void **self, char *err,
                         size_t errlen)
{
    static const char *const known[] = {"size", "nonblocking", NULL};
    const char *unknown = fs9_config_unknown_key(cfg, known);
    if (unknown) {
        snprintf(err, errlen, "unknown key '%s' (nullfs knows size, "
                 "nonblocking)", unknown);
        return -EINVAL;
    }
    struct nullfs *fs = calloc(1, sizeof *fs);
    if (!fs)
        return -ENOMEM;
    fs->size = UINT64_C(1) << 30;
    fs->nonblocking = 1;
    const char *v = fs9_config_get(cfg, "size");
    if (v && parse_size(v, &fs->size) < 0) {
        snprintf(err, errlen, "size=%s: not a size (BYTES[KMG])", v);
        free(fs);
        return -EINVAL;
    }
    v = fs9_config_get(cfg, "nonblocking");
    if (v) {
        if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0) {
            snprintf(err, errlen, "nonblocking=%s: must be 0 or 1", v);
            free(fs);
            return -EINVAL;
        }
        fs->nonblocking = v[0] == '1';
    }
    fs->uid = (uint32_t)getuid();
    fs->gid = (uint32_t)getgid();
    fs->birth = host->now(host->ctx, CLOCK_REALTIME);
    fs->root.obj = OBJ_ROOT;
    fs->file.obj = OBJ_FILE;
    *self = fs;
    return 0;
}

static void nullfs_destroy(void *self)
{
    free(self);
}

static uint64_t nullfs_capabilities(void *self)
{
    struct nullfs *fs = self;
    uint64_t caps = FS9_CAP_READ | FS9_CAP_WRITE | FS9_CAP_TRUNCATE |
                    FS9_CAP_RANDOM_WRITE | FS9_CAP_DIRECTORY;
    if (fs->nonblocking)
        caps |= FS9_CAP_NONBLOCKING;
    return caps;
}

static int nullfs_stat(void *self, const struct fs9_ctx *ctx,
                       const char *path, void *handle, struct fs9_attr *out)
{
    struct nullfs *fs = self;
    (void)ctx;
    int i = handle ? ((struct null_handle *)handle)->obj : lookup(path);
    if (i != OBJ_CALLS)
        count(fs, C_STAT);
    if (i < 0)
        return i;
    obj_attr(fs, i, out);
    return 0;
}

/* Changes are accepted and forgotten, like the data. */
static int nullfs_wstat(void *self, const struct fs9_ctx *ctx,
                        const char *path, void *handle,
                        const struct fs9_wstat *w, struct fs9_attr *out)
{
    struct nullfs *fs = self;
    (void)ctx;
    (void)w;
    int i = handle ? ((struct null_handle *)handle)->obj : lookup(path);
    if (i != OBJ_CALLS)
        count(fs, C_WSTAT);
    if (i < 0)
        return i;
    obj_attr(fs, i, out);
    return 0;
}

static int nullfs_statfs(void *self, const char *path, struct fs9_statfs *out)
{
    struct nullfs *fs = self;
    (void)path;
    count(fs, C_STATFS);
    memset(out, 0, sizeof *out);
    out->bsize = 4096;
    out->blocks = out->bfree = out->bavail = (fs->size + 4095) / 4096;
    out->files = OBJ_COUNT;
    out->namemax = 255;
    return 0;
}

static char *calls_text(struct nullfs *fs, size_t *len)
{
    size_t cap = 64 * C_COUNT;
    char *t = malloc(cap);
    if (!t)
        return NULL;
    size_t n = 0;
    for (int i = 0; i < C_COUNT; i++)
        n += (size_t)snprintf(t + n, cap - n, "%s %llu\n", call_names[i],
                              (unsigned long long)atomic_load(
                                  &fs->calls[i].n));
    *len = n;
    return t;
}

static int nullfs_open(void *self, const struct fs9_ctx *ctx,
                       const char *path, uint32_t flags, uint32_t mode,
                       struct fs9_open_out *out)
{
    struct nullfs *fs = self;
    (void)ctx;
    (void)mode;
    int i = lookup(path);
    if (i != OBJ_CALLS)
        count(fs, C_OPEN);
    if (i < 0)
        return (i == -ENOENT && (flags & FS9_OPEN_CREATE)) ? -EACCES : i;
    if ((flags & FS9_OPEN_CREATE) && (flags & FS9_OPEN_EXCL))
        return -EEXIST;
    if (i == OBJ_ROOT && (flags & (FS9_OPEN_WRITE | FS9_OPEN_TRUNC)))
        return -EISDIR;
    if (i != OBJ_ROOT && (flags & FS9_OPEN_DIRECTORY))
        return -ENOTDIR;
    obj_attr(fs, i, &out->attr);
    out->flags = 0;
    out->created = 0;
    if (flags & FS9_OPEN_NOHANDLE) {
        out->handle = NULL;
        return 0;
    }
    if (i == OBJ_ROOT) {
        out->handle = &fs->root;
    } else if (i == OBJ_FILE) {
        out->handle = &fs->file;
    } else {
        struct null_handle *h = calloc(1, sizeof *h);
        if (!h)
            return -ENOMEM;
        h->obj = OBJ_CALLS;
        if (flags & FS9_OPEN_TRUNC) {
            for (int c = 0; c < C_COUNT; c++)
                atomic_store(&fs->calls[c].n, 0);
        }
        h->text = calls_text(fs, &h->len);
        if (!h->text) {
            free(h);
            return -ENOMEM;
        }
        out->handle = h;
        out->flags = FS9_OPEN_OUT_DIRECT_IO; /* size 0, content generated */
    }
    return 0;
}

static ssize_t nullfs_read(void *self, void *handle, void *buf, size_t size,
                           uint64_t offset)
{
    struct nullfs *fs = self;
    struct null_handle *h = handle;
    if (h->obj == OBJ_ROOT)
        return -EISDIR;
    if (h->obj == OBJ_CALLS) {
        if (offset >= h->len)
            return 0;
        size_t n = h->len - (size_t)offset;
        if (n > size)
            n = size;
        memcpy(buf, h->text + offset, n);
        return (ssize_t)n;
    }
    count(fs, C_READ);
    if (offset >= fs->size)
        return 0;
    if (size > fs->size - offset)
        size = (size_t)(fs->size - offset);
    memset(buf, 0, size);
    return (ssize_t)size;
}

static ssize_t nullfs_write(void *self, void *handle, const void *buf,
                            size_t size, uint64_t offset)
{
    struct nullfs *fs = self;
    struct null_handle *h = handle;
    (void)buf;
    (void)offset;
    if (h->obj == OBJ_ROOT)
        return -EISDIR;
    if (h->obj == OBJ_CALLS) {
        for (int c = 0; c < C_COUNT; c++)
            atomic_store(&fs->calls[c].n, 0);
        return (ssize_t)size;
    }
    count(fs, C_WRITE);
    return (ssize_t)size;
}

static int nullfs_close(void *self, void *handle, int sync)
{
    struct nullfs *fs = self;
    struct null_handle *h = handle;
    (void)sync;
    if (h->obj == OBJ_CALLS) {
        free(h->text);
        free(h);
        return 0;
    }
    count(fs, C_CLOSE);
    return 0;
}

static int nullfs_readdir(void *self, void *handle, uint64_t cookie,
                          uint32_t flags, fs9_dirent_fn emit, void *emit_arg)
{
    struct nullfs *fs = self;
    struct null_handle *h = handle;
    (void)flags;
    count(fs, C_READDIR);
    if (h->obj != OBJ_ROOT)
        return -ENOTDIR;
    for (uint64_t i = cookie + 1; i < OBJ_COUNT; i++) {
        struct fs9_dirent e = {.name = obj_names[i], .cookie = i,
                               .full_attr = 1};
        obj_attr(fs, (int)i, &e.attr);
        int rc = emit(emit_arg, &e);
        if (rc != 0)
            return rc < 0 ? rc : 0;
    }
    return 0;
}

static int nullfs_remove(void *self, const struct fs9_ctx *ctx,
                         const char *path, uint32_t flags)
{
    struct nullfs *fs = self;
    (void)ctx;
    (void)flags;
    count(fs, C_REMOVE);
    int i = lookup(path);
    return i < 0 ? i : -EACCES;
}

static ssize_t nullfs_getxattr(void *self, const char *path, const char *name,
                               void *buf, size_t size)
{
    struct nullfs *fs = self;
    (void)path;
    (void)name;
    (void)buf;
    (void)size;
    count(fs, C_OTHER);
    return -ENODATA;
}

static const struct fs9_provider_ops nullfs_ops = {
    .abi_version = FS9_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct fs9_provider_ops),
    .name = "nullfs",
    .version = "1.0.0",
    .description = "benchmark: reads give zeros, writes vanish, every call "
                   "counted in /.calls",
    .create = nullfs_create,
    .destroy = nullfs_destroy,
    .capabilities = nullfs_capabilities,
    .stat = nullfs_stat,
    .wstat = nullfs_wstat,
    .statfs = nullfs_statfs,
    .open = nullfs_open,
    .read = nullfs_read,
    .write = nullfs_write,
    .close = nullfs_close,
    .readdir = nullfs_readdir,
    .remove = nullfs_remove,
    .getxattr = nullfs_getxattr,
};

__attribute__((visibility("default")))
const struct fs9_provider_ops *fs9_provider_entry(void);

const struct fs9_provider_ops *fs9_provider_entry(void)
{
    return &nullfs_ops;
}
