/*
 * slowfs — a provider whose calls take as long as you tell them to: the
 * test plugin for timeouts, overload and fairness (tests/integration/
 * suite_overload.sh, scripts/bench.sh).  Never installed.
 *
 *   /file    SIZE bytes of text ("slowfs\n" repeated); writes are
 *            accepted and discarded (the content never changes)
 *   /dir     an empty directory
 *   /.calls  "name count" lines: calls per operation since the mount, and
 *            `active`, the calls inside the provider right now; `leaked`
 *            is opens minus closes (handles it gave out and got back).
 *            Calls on /.calls itself never sleep and are not counted.
 *
 * Settings:
 *   delay_ms=N     how long each slow call sleeps (1000)
 *   ops=LIST       which calls sleep: comma-separated names among stat,
 *                  open, read, write, readdir, close, statfs, or all
 *                  (read)
 *   direct_io=0|1  1 (default): files are opened with direct I/O, so every
 *                  read(2) reaches the provider instead of the page cache
 *   size=BYTES     size of /file (4096)
 *
 *   fs9 -o plugin=build/tests/slow/slowfs.so slowfs MNT
 *   echo 'mount /slow slowfs delay_ms=3000 ops=open,read' >MNT/.fs9/ctl
 *
 * It blocks on purpose, so it never declares FS9_CAP_NONBLOCKING: every
 * call runs on the dispatcher's thread pool.
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

enum { OBJ_ROOT, OBJ_FILE, OBJ_DIR, OBJ_CALLS, OBJ_COUNT };

static const char *const obj_names[OBJ_COUNT] = {"", "file", "dir",
                                                 ".calls"};

enum { C_STAT, C_OPEN, C_READ, C_WRITE, C_READDIR, C_CLOSE, C_STATFS,
       C_COUNT };

static const char *const call_names[C_COUNT] = {
    "stat", "open", "read", "write", "readdir", "close", "statfs",
};

struct slow_handle {
    int obj;
    char *text; /* /.calls: snapshot at open; owned */
    size_t len;
};

struct slowfs {
    unsigned delay_ms;
    unsigned slow_mask; /* 1 << C_* for the calls that sleep */
    int direct_io;
    uint64_t size;
    uint32_t uid, gid;
    struct timespec birth;
    atomic_ullong calls[C_COUNT];
    atomic_llong active;
};

static int lookup(const char *path)
{
    for (int i = 0; i < OBJ_COUNT; i++)
        if (strcmp(obj_names[i], path) == 0)
            return i;
    if (strncmp(path, "dir/", 4) == 0)
        return -ENOENT;
    if (strchr(path, '/'))
        return -ENOTDIR;
    return -ENOENT;
}

/* Count call `op` and, when it is one of the slow ones, sleep.  Returns
 * with `active` raised; leave() lowers it. */
static void enter(struct slowfs *fs, int op)
{
    atomic_fetch_add(&fs->calls[op], 1);
    atomic_fetch_add(&fs->active, 1);
    if (fs->slow_mask & (1u << op)) {
        struct timespec d = {fs->delay_ms / 1000,
                             (long)(fs->delay_ms % 1000) * 1000000};
        while (nanosleep(&d, &d) != 0 && errno == EINTR)
            ;
    }
}

static void leave(struct slowfs *fs)
{
    atomic_fetch_sub(&fs->active, 1);
}

static void obj_attr(const struct slowfs *fs, int i, struct fs9_attr *out)
{
    memset(out, 0, sizeof *out);
    out->ino = (uint64_t)i + 1;
    out->mode = (i == OBJ_ROOT || i == OBJ_DIR) ? S_IFDIR | 0755
                : i == OBJ_FILE                 ? S_IFREG | 0666
                                                : S_IFREG | 0444;
    out->nlink = (i == OBJ_ROOT || i == OBJ_DIR) ? 2 : 1;
    out->uid = fs->uid;
    out->gid = fs->gid;
    out->size = i == OBJ_FILE ? fs->size : 0;
    out->blocks = (out->size + 511) / 512;
    out->atime = out->mtime = out->ctime = fs->birth;
}

static int parse_ops(const char *s, unsigned *mask)
{
    *mask = 0;
    while (*s) {
        size_t len = strcspn(s, ",");
        int found = 0;
        if (len == 3 && strncmp(s, "all", 3) == 0) {
            *mask = (1u << C_COUNT) - 1;
            found = 1;
        }
        for (int i = 0; i < C_COUNT && !found; i++) {
            if (strlen(call_names[i]) == len &&
                strncmp(call_names[i], s, len) == 0) {
                *mask |= 1u << i;
                found = 1;
            }
        }
        if (!found)
            return -EINVAL;
        s += len;
        if (*s == ',')
            s++;
    }
    return 0;
}

static int slowfs_create(const struct fs9_host *host,
                         const struct fs9_config *cfg, void **self, char *err,
                         size_t errlen)
{
    static const char *const known[] = {"delay_ms", "ops", "direct_io",
                                        "size", NULL};
    const char *unknown = fs9_config_unknown_key(cfg, known);
    if (unknown) {
        snprintf(err, errlen, "unknown key '%s' (slowfs knows delay_ms, "
                 "ops, direct_io, size)", unknown);
        return -EINVAL;
    }
    struct slowfs *fs = calloc(1, sizeof *fs);
    if (!fs)
        return -ENOMEM;
    fs->delay_ms = 1000;
    fs->slow_mask = 1u << C_READ;
    fs->direct_io = 1;
    fs->size = 4096;
    const char *v;
    char *end;
    if ((v = fs9_config_get(cfg, "delay_ms"))) {
        unsigned long n = strtoul(v, &end, 10);
        if (*end || end == v || n > 3600000) {
            snprintf(err, errlen, "delay_ms=%s: milliseconds, at most one "
                     "hour", v);
            goto bad;
        }
        fs->delay_ms = (unsigned)n;
    }
    if ((v = fs9_config_get(cfg, "ops")) && parse_ops(v, &fs->slow_mask)) {
        snprintf(err, errlen, "ops=%s: a list of stat, open, read, write, "
                 "readdir, close, statfs or all", v);
        goto bad;
    }
    if ((v = fs9_config_get(cfg, "direct_io"))) {
        if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0) {
            snprintf(err, errlen, "direct_io=%s: must be 0 or 1", v);
            goto bad;
        }
        fs->direct_io = v[0] == '1';
    }
    if ((v = fs9_config_get(cfg, "size"))) {
        unsigned long long n = strtoull(v, &end, 10);
        if (*end || end == v || n > (1ull << 40)) {
            snprintf(err, errlen, "size=%s: bytes", v);
            goto bad;
        }
        fs->size = n;
    }
    fs->uid = (uint32_t)getuid();
    fs->gid = (uint32_t)getgid();
    fs->birth = host->now(host->ctx, CLOCK_REALTIME);
    *self = fs;
    return 0;
bad:
    free(fs);
    return -EINVAL;
}

static void slowfs_destroy(void *self)
{
    free(self);
}

static uint64_t slowfs_capabilities(void *self)
{
    (void)self;
    return FS9_CAP_READ | FS9_CAP_WRITE | FS9_CAP_RANDOM_WRITE |
           FS9_CAP_DIRECTORY;
}

static int slowfs_stat(void *self, const struct fs9_ctx *ctx,
                       const char *path, void *handle, struct fs9_attr *out)
{
    struct slowfs *fs = self;
    (void)ctx;
    int i = handle ? ((struct slow_handle *)handle)->obj : lookup(path);
    if (i == OBJ_CALLS) {
        obj_attr(fs, i, out);
        return 0;
    }
    enter(fs, C_STAT);
    if (i >= 0)
        obj_attr(fs, i, out);
    leave(fs);
    return i < 0 ? i : 0;
}

static int slowfs_statfs(void *self, const char *path, struct fs9_statfs *out)
{
    struct slowfs *fs = self;
    (void)path;
    enter(fs, C_STATFS);
    memset(out, 0, sizeof *out);
    out->bsize = 4096;
    out->blocks = (fs->size + 4095) / 4096;
    out->files = OBJ_COUNT;
    out->namemax = 255;
    leave(fs);
    return 0;
}

static char *calls_text(struct slowfs *fs, size_t *len)
{
    size_t cap = 48 * (C_COUNT + 2);
    char *t = malloc(cap);
    if (!t)
        return NULL;
    size_t n = 0;
    for (int i = 0; i < C_COUNT; i++)
        n += (size_t)snprintf(t + n, cap - n, "%s %llu\n", call_names[i],
                              (unsigned long long)atomic_load(&fs->calls[i]));
    n += (size_t)snprintf(t + n, cap - n, "active %lld\nleaked %lld\n",
                          (long long)atomic_load(&fs->active),
                          (long long)(atomic_load(&fs->calls[C_OPEN]) -
                                      atomic_load(&fs->calls[C_CLOSE])));
    *len = n;
    return t;
}

static int slowfs_open(void *self, const struct fs9_ctx *ctx,
                       const char *path, uint32_t flags, uint32_t mode,
                       struct fs9_open_out *out)
{
    struct slowfs *fs = self;
    (void)ctx;
    (void)mode;
    int i = lookup(path);
    if (i == OBJ_CALLS) {
        if (flags & (FS9_OPEN_WRITE | FS9_OPEN_TRUNC | FS9_OPEN_CREATE))
            return -EACCES;
        struct slow_handle *h = calloc(1, sizeof *h);
        if (!h)
            return -ENOMEM;
        h->obj = OBJ_CALLS;
        h->text = calls_text(fs, &h->len);
        if (!h->text) {
            free(h);
            return -ENOMEM;
        }
        obj_attr(fs, i, &out->attr);
        out->handle = h;
        out->flags = FS9_OPEN_OUT_DIRECT_IO;
        return 0;
    }
    /* Errors come before the delay and are not counted as opens: only
     * what hands out a handle must be matched by a close. */
    if (i < 0)
        return (i == -ENOENT && (flags & FS9_OPEN_CREATE)) ? -EACCES : i;
    int dir = i == OBJ_ROOT || i == OBJ_DIR;
    if ((flags & FS9_OPEN_CREATE) && (flags & FS9_OPEN_EXCL))
        return -EEXIST;
    if ((flags & (FS9_OPEN_WRITE | FS9_OPEN_TRUNC)) && i != OBJ_FILE)
        return dir ? -EISDIR : -EACCES;
    if ((flags & FS9_OPEN_DIRECTORY) && !dir)
        return -ENOTDIR;
    struct slow_handle *h = NULL;
    if (!(flags & FS9_OPEN_NOHANDLE)) {
        h = calloc(1, sizeof *h);
        if (!h)
            return -ENOMEM;
        h->obj = i;
    }
    enter(fs, C_OPEN);
    obj_attr(fs, i, &out->attr);
    out->handle = h;
    out->flags = (fs->direct_io && !dir) ? FS9_OPEN_OUT_DIRECT_IO : 0;
    leave(fs);
    return 0;
}

static ssize_t slowfs_read(void *self, void *handle, void *buf, size_t size,
                           uint64_t offset)
{
    struct slowfs *fs = self;
    struct slow_handle *h = handle;
    if (h->obj == OBJ_CALLS) {
        if (offset >= h->len)
            return 0;
        size_t n = h->len - (size_t)offset;
        if (n > size)
            n = size;
        memcpy(buf, h->text + offset, n);
        return (ssize_t)n;
    }
    if (h->obj != OBJ_FILE)
        return -EISDIR;
    enter(fs, C_READ);
    size_t n = 0;
    if (offset < fs->size) {
        n = (size_t)(fs->size - offset);
        if (n > size)
            n = size;
        static const char pattern[] = "slowfs\n";
        for (size_t k = 0; k < n; k++)
            ((char *)buf)[k] = pattern[(offset + k) % (sizeof pattern - 1)];
    }
    leave(fs);
    return (ssize_t)n;
}

static ssize_t slowfs_write(void *self, void *handle, const void *buf,
                            size_t size, uint64_t offset)
{
    struct slowfs *fs = self;
    struct slow_handle *h = handle;
    (void)buf;
    (void)offset;
    if (h->obj != OBJ_FILE)
        return -EBADF;
    enter(fs, C_WRITE);
    leave(fs);
    return (ssize_t)size;
}

static int slowfs_close(void *self, void *handle, int sync)
{
    struct slowfs *fs = self;
    struct slow_handle *h = handle;
    (void)sync;
    if (h->obj == OBJ_CALLS) {
        free(h->text);
        free(h);
        return 0;
    }
    enter(fs, C_CLOSE);
    free(h);
    leave(fs);
    return 0;
}

static int slowfs_readdir(void *self, void *handle, uint64_t cookie,
                          uint32_t flags, fs9_dirent_fn emit, void *emit_arg)
{
    struct slowfs *fs = self;
    struct slow_handle *h = handle;
    (void)flags;
    enter(fs, C_READDIR);
    int rc = 0;
    if (h->obj == OBJ_ROOT) {
        for (uint64_t i = cookie + 1; i < OBJ_COUNT && rc == 0; i++) {
            struct fs9_dirent e = {.name = obj_names[i], .cookie = i,
                                   .full_attr = 1};
            obj_attr(fs, (int)i, &e.attr);
            rc = emit(emit_arg, &e);
        }
    } else if (h->obj != OBJ_DIR) {
        rc = -ENOTDIR;
    }
    leave(fs);
    return rc < 0 ? rc : 0;
}

static const struct fs9_provider_ops slowfs_ops = {
    .abi_version = FS9_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct fs9_provider_ops),
    .name = "slowfs",
    .version = "1.0.0",
    .description = "test: calls that sleep delay_ms (timeouts, overload)",
    .create = slowfs_create,
    .destroy = slowfs_destroy,
    .capabilities = slowfs_capabilities,
    .stat = slowfs_stat,
    .statfs = slowfs_statfs,
    .open = slowfs_open,
    .read = slowfs_read,
    .write = slowfs_write,
    .close = slowfs_close,
    .readdir = slowfs_readdir,
};

__attribute__((visibility("default")))
const struct fs9_provider_ops *fs9_provider_entry(void);

const struct fs9_provider_ops *fs9_provider_entry(void)
{
    return &slowfs_ops;
}
