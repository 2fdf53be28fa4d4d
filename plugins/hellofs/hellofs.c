/*
 * hellofs — the smallest useful FS9 plugin, and the one to copy.
 *
 *   /              a directory whose names are fixed (mode 0555)
 *   /hello         read-only: the greeting and a newline
 *   /notes, /todo  ordinary files you can write, truncate and read back
 *                  (in memory, at most 1 MiB each, gone at unmount)
 *
 * Settings: greeting=TEXT (default "Hello, world!").  The table's arg_key
 * is "greeting", so `fs9 hellofs:Hi /mnt/hello` mounts it saying "Hi".
 * An unknown key is refused with a one-line message.
 *
 * What each operation answers, so a plugin's errors read like a kernel
 * filesystem's (the ABI wants negative errno values):
 *
 *   - creating or removing any name, renaming: EACCES — the directory is
 *     read-only (0555) and its names are fixed; root, who passes the
 *     kernel's permission checks, gets the same answer from here;
 *   - opening /hello for writing, truncating it, setting its times: EACCES;
 *   - chmod or chown of anything: EPERM — the modes are fixed;
 *   - writing a file past 1 MiB: EFBIG, after writing what fits;
 *   - a name below a file: ENOTDIR; a missing name: ENOENT; opening the
 *     directory for writing: EISDIR.
 *
 * Writing your own: copy this file, change the name in the table at the
 * bottom, and replace the objects.  Every function below says which part
 * of the contract in <fs9/provider.h> it follows.  Build it alone with
 *
 *   cc -shared -fPIC $(pkg-config --cflags fs9-provider) hellofs.c \
 *      -o hellofs.so
 *
 * and load it with `fs9 -o plugin=./hellofs.so hellofs /mnt/hello`.
 * Only fs9_provider_entry is exported; everything else is static.
 *
 * Thread safety: FS9 calls a provider from several threads at once.  All
 * state here is behind one mutex, held only for memory copies, so no call
 * ever blocks and the provider declares FS9_CAP_NONBLOCKING (FS9 may then
 * call it straight from the thread that received the request).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fs9/provider.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HELLOFS_VERSION "1.0.0"
#define HELLOFS_DEFAULT_GREETING "Hello, world!"
#define HELLOFS_GREETING_MAX 4096
#define HELLOFS_FILE_MAX (1u << 20) /* bytes per writable file */

/* The objects: fixed, so an index names each one and doubles (plus one)
 * as its inode number and readdir cookie. */
enum { OBJ_ROOT, OBJ_HELLO, OBJ_NOTES, OBJ_TODO, OBJ_COUNT };

static const char *const obj_names[OBJ_COUNT] = {"", "hello", "notes",
                                                 "todo"};

struct hello_obj {
    uint32_t mode; /* type and permission bits */
    char *data;    /* owned; the content (NULL while empty) */
    size_t size;
    struct timespec atime, mtime, ctime;
};

struct hellofs {
    const struct fs9_host *host; /* borrowed from create() to destroy() */
    uint32_t uid, gid;           /* everything belongs to the mounter */
    pthread_mutex_t lock;        /* guards objs[] */
    struct hello_obj objs[OBJ_COUNT];
};

/* What open() hands out: which object, and how it was opened. */
struct hello_handle {
    int obj;
    uint32_t flags; /* FS9_OPEN_* */
};

static bool writable(int obj)
{
    return obj == OBJ_NOTES || obj == OBJ_TODO;
}

static struct timespec now(const struct hellofs *fs)
{
    /* Ask the host, not the system: tests may substitute a clock. */
    return fs->host->now(fs->host->ctx, CLOCK_REALTIME);
}

/* The object `path` names, or a negative errno.  Paths come relative to
 * the provider's root, without a leading slash; the root is "". */
static int lookup(const char *path)
{
    const char *slash = strchr(path, '/');
    size_t len = slash ? (size_t)(slash - path) : strlen(path);
    for (int i = 0; i < OBJ_COUNT; i++) {
        if (strlen(obj_names[i]) == len &&
            memcmp(obj_names[i], path, len) == 0) {
            /* "hello/x": a name below a file. */
            if (slash)
                return i == OBJ_ROOT ? -ENOENT : -ENOTDIR;
            return i;
        }
    }
    return -ENOENT;
}

/* Attributes of object `i`; caller holds fs->lock. */
static void obj_attr(const struct hellofs *fs, int i, struct fs9_attr *out)
{
    const struct hello_obj *o = &fs->objs[i];
    memset(out, 0, sizeof *out);
    out->ino = (uint64_t)i + 1; /* non-zero and stable, as required */
    out->mode = o->mode;
    out->nlink = S_ISDIR(o->mode) ? 2 : 1;
    out->uid = fs->uid;
    out->gid = fs->gid;
    out->size = o->size;
    out->blocks = (o->size + 511) / 512;
    out->atime = o->atime;
    out->mtime = o->mtime;
    out->ctime = o->ctime;
}

/* ---- create, destroy, capabilities ---- */

/* The last value given for `key`: later settings override earlier ones
 * (`fs9 hellofs:A` comes after any -o greeting=B). */
static const char *config_last(const struct fs9_config *cfg, const char *key)
{
    const char *v = NULL;
    for (size_t i = 0; i < cfg->count; i++)
        if (strcmp(cfg->items[i].key, key) == 0)
            v = cfg->items[i].value;
    return v;
}

/* Contract: on failure return a negative errno and one line in `err`. */
static int hellofs_create(const struct fs9_host *host,
                          const struct fs9_config *cfg, void **self,
                          char *err, size_t errlen)
{
    static const char *const known[] = {"greeting", NULL};
    const char *unknown = fs9_config_unknown_key(cfg, known);
    if (unknown) {
        snprintf(err, errlen, "unknown key '%s' (hellofs knows greeting)",
                 unknown);
        return -EINVAL;
    }
    const char *greeting = config_last(cfg, "greeting");
    if (!greeting)
        greeting = HELLOFS_DEFAULT_GREETING;
    size_t glen = strlen(greeting);
    if (glen > HELLOFS_GREETING_MAX) {
        snprintf(err, errlen, "greeting is %zu bytes; at most %d", glen,
                 HELLOFS_GREETING_MAX);
        return -EINVAL;
    }

    struct hellofs *fs = calloc(1, sizeof *fs);
    if (!fs)
        return -ENOMEM;
    /* The configuration is only borrowed: keep a copy of the greeting. */
    char *text = malloc(glen + 2);
    if (!text) {
        free(fs);
        return -ENOMEM;
    }
    memcpy(text, greeting, glen);
    text[glen] = '\n';
    text[glen + 1] = '\0';

    fs->host = host;
    fs->uid = (uint32_t)getuid();
    fs->gid = (uint32_t)getgid();
    pthread_mutex_init(&fs->lock, NULL);
    struct timespec t = now(fs);
    for (int i = 0; i < OBJ_COUNT; i++) {
        struct hello_obj *o = &fs->objs[i];
        o->atime = o->mtime = o->ctime = t;
    }
    fs->objs[OBJ_ROOT].mode = S_IFDIR | 0555;
    fs->objs[OBJ_HELLO].mode = S_IFREG | 0444;
    fs->objs[OBJ_HELLO].data = text;
    fs->objs[OBJ_HELLO].size = glen + 1;
    fs->objs[OBJ_NOTES].mode = S_IFREG | 0644;
    fs->objs[OBJ_TODO].mode = S_IFREG | 0644;
    /* The host's log goes where fs9's own does (terminal or journal). */
    host->log(host->ctx, FS9_LOG_DEBUG, "greeting of %zu bytes", glen);
    *self = fs;
    return 0;
}

/* Contract: called once, after every handle was closed. */
static void hellofs_destroy(void *self)
{
    struct hellofs *fs = self;
    for (int i = 0; i < OBJ_COUNT; i++)
        free(fs->objs[i].data);
    pthread_mutex_destroy(&fs->lock);
    free(fs);
}

/* No CREATE, DELETE, RENAME, CHMOD or CHOWN: those are refused. */
static uint64_t hellofs_capabilities(void *self)
{
    (void)self;
    return FS9_CAP_READ | FS9_CAP_WRITE | FS9_CAP_TRUNCATE | FS9_CAP_UTIME |
           FS9_CAP_APPEND | FS9_CAP_RANDOM_WRITE | FS9_CAP_DIRECTORY |
           FS9_CAP_NONBLOCKING;
}

/* ---- stat, wstat, statfs ---- */

static int hellofs_stat(void *self, const struct fs9_ctx *ctx,
                        const char *path, void *handle, struct fs9_attr *out)
{
    struct hellofs *fs = self;
    (void)ctx;
    /* Prefer the handle when there is one (the contract); here it names
     * the same fixed object as the path anyway. */
    int i = handle ? ((struct hello_handle *)handle)->obj : lookup(path);
    if (i < 0)
        return i;
    pthread_mutex_lock(&fs->lock);
    obj_attr(fs, i, out);
    pthread_mutex_unlock(&fs->lock);
    return 0;
}

/* Grow or shrink object `o` to `size` bytes, new bytes zero.  Caller
 * holds the lock and checked the limit. */
static int obj_resize(struct hello_obj *o, size_t size)
{
    if (size > o->size) {
        char *d = realloc(o->data, size);
        if (!d)
            return -ENOMEM;
        memset(d + o->size, 0, size - o->size);
        o->data = d;
    }
    o->size = size;
    return 0;
}

/* Contract: every change in `w` is applied, or none. */
static int hellofs_wstat(void *self, const struct fs9_ctx *ctx,
                         const char *path, void *handle,
                         const struct fs9_wstat *w, struct fs9_attr *out)
{
    struct hellofs *fs = self;
    (void)ctx;
    int i = handle ? ((struct hello_handle *)handle)->obj : lookup(path);
    if (i < 0)
        return i;
    const uint32_t times = FS9_WSTAT_ATIME | FS9_WSTAT_MTIME |
                           FS9_WSTAT_ATIME_NOW | FS9_WSTAT_MTIME_NOW |
                           FS9_WSTAT_CTIME;
    /* Check everything before changing anything. */
    if (w->valid & (FS9_WSTAT_MODE | FS9_WSTAT_UID | FS9_WSTAT_GID))
        return -EPERM;
    if (w->valid & FS9_WSTAT_SIZE) {
        if (i == OBJ_ROOT)
            return -EISDIR;
        if (!writable(i))
            return -EACCES;
        if (w->size > HELLOFS_FILE_MAX)
            return -EFBIG;
    }
    if ((w->valid & times) && !writable(i))
        return -EACCES;

    pthread_mutex_lock(&fs->lock);
    struct hello_obj *o = &fs->objs[i];
    struct timespec t = now(fs);
    int rc = 0;
    if (w->valid & FS9_WSTAT_SIZE) {
        rc = obj_resize(o, (size_t)w->size);
        if (rc == 0)
            o->mtime = t; /* as truncate(2): even when the size stays */
    }
    if (rc == 0) {
        if (w->valid & FS9_WSTAT_ATIME_NOW)
            o->atime = t;
        else if (w->valid & FS9_WSTAT_ATIME)
            o->atime = w->atime;
        if (w->valid & FS9_WSTAT_MTIME_NOW)
            o->mtime = t;
        else if (w->valid & FS9_WSTAT_MTIME)
            o->mtime = w->mtime;
        if (w->valid)
            o->ctime = (w->valid & FS9_WSTAT_CTIME) ? w->ctime : t;
        obj_attr(fs, i, out);
    }
    pthread_mutex_unlock(&fs->lock);
    return rc;
}

static int hellofs_statfs(void *self, const char *path,
                          struct fs9_statfs *out)
{
    struct hellofs *fs = self;
    int i = lookup(path);
    if (i < 0)
        return i;
    pthread_mutex_lock(&fs->lock);
    uint64_t used = fs->objs[OBJ_NOTES].size + fs->objs[OBJ_TODO].size;
    pthread_mutex_unlock(&fs->lock);
    memset(out, 0, sizeof *out);
    out->bsize = 4096;
    out->blocks = 2 * HELLOFS_FILE_MAX / 4096;
    out->bfree = out->bavail = out->blocks - (used + 4095) / 4096;
    out->files = OBJ_COUNT;
    out->ffree = 0; /* no new names, ever */
    out->namemax = 255;
    return 0;
}

/* ---- open, read, write, close ---- */

static int hellofs_open(void *self, const struct fs9_ctx *ctx,
                        const char *path, uint32_t flags, uint32_t mode,
                        struct fs9_open_out *out)
{
    struct hellofs *fs = self;
    (void)ctx;
    (void)mode; /* nothing is ever created */
    int i = lookup(path);
    if (i == -ENOENT && (flags & FS9_OPEN_CREATE) && !strchr(path, '/'))
        return -EACCES; /* a new name in our fixed directory */
    if (i < 0)
        return i;
    /* The checks in the order Linux's open(2) makes them. */
    if ((flags & FS9_OPEN_CREATE) && (flags & FS9_OPEN_EXCL))
        return -EEXIST;
    if (i == OBJ_ROOT) {
        if (flags & (FS9_OPEN_WRITE | FS9_OPEN_TRUNC))
            return -EISDIR;
        if ((flags & FS9_OPEN_CREATE) && !(flags & FS9_OPEN_DIRECTORY))
            return -EISDIR;
    } else {
        if (flags & FS9_OPEN_DIRECTORY)
            return -ENOTDIR;
        if ((flags & (FS9_OPEN_WRITE | FS9_OPEN_TRUNC)) && !writable(i))
            return -EACCES;
    }

    struct hello_handle *h = NULL;
    if (!(flags & FS9_OPEN_NOHANDLE)) {
        h = malloc(sizeof *h);
        if (!h)
            return -ENOMEM;
        h->obj = i;
        h->flags = flags;
    }
    pthread_mutex_lock(&fs->lock);
    if ((flags & FS9_OPEN_TRUNC) && writable(i)) {
        struct hello_obj *o = &fs->objs[i];
        o->size = 0;
        o->mtime = o->ctime = now(fs);
    }
    obj_attr(fs, i, &out->attr);
    pthread_mutex_unlock(&fs->lock);
    out->handle = h;
    out->flags = 0;
    out->created = 0;
    return 0;
}

/* Contract: fill the caller's buffer; 0 at end of file. */
static ssize_t hellofs_read(void *self, void *handle, void *buf, size_t size,
                            uint64_t offset)
{
    struct hellofs *fs = self;
    struct hello_handle *h = handle;
    if (h->obj == OBJ_ROOT)
        return -EISDIR;
    if (!(h->flags & FS9_OPEN_READ) && (h->flags & FS9_OPEN_WRITE))
        return -EBADF; /* opened write-only */
    size_t n = 0;
    pthread_mutex_lock(&fs->lock);
    const struct hello_obj *o = &fs->objs[h->obj];
    if (offset < o->size) {
        n = o->size - (size_t)offset;
        if (n > size)
            n = size;
        memcpy(buf, o->data + offset, n);
    }
    pthread_mutex_unlock(&fs->lock);
    return (ssize_t)n;
}

/* Contract: the count written, or a negative errno; short only with an
 * error condition, which the next write reports. */
static ssize_t hellofs_write(void *self, void *handle, const void *buf,
                             size_t size, uint64_t offset)
{
    struct hellofs *fs = self;
    struct hello_handle *h = handle;
    if (h->obj == OBJ_ROOT)
        return -EISDIR;
    if (!(h->flags & FS9_OPEN_WRITE))
        return -EBADF;
    pthread_mutex_lock(&fs->lock);
    struct hello_obj *o = &fs->objs[h->obj];
    if (h->flags & FS9_OPEN_APPEND)
        offset = o->size;
    ssize_t rc;
    if (offset >= HELLOFS_FILE_MAX) {
        rc = size ? -EFBIG : 0;
        goto out;
    }
    if (size > HELLOFS_FILE_MAX - offset)
        size = HELLOFS_FILE_MAX - (size_t)offset; /* what fits */
    if (offset + size > o->size) {
        rc = obj_resize(o, (size_t)offset + size);
        if (rc < 0)
            goto out;
    }
    memcpy(o->data + offset, buf, size);
    if (size)
        o->mtime = o->ctime = now(fs);
    rc = (ssize_t)size;
out:
    pthread_mutex_unlock(&fs->lock);
    return rc;
}

/* Contract: the handle is gone afterwards, whatever we return. */
static int hellofs_close(void *self, void *handle, int sync)
{
    (void)self;
    (void)sync; /* memory is as durable as it gets */
    free(handle);
    return 0;
}

/* ---- readdir, remove, rename ---- */

/* Contract: entries after `cookie`, "." and ".." excluded; stop when emit
 * returns 1 (that entry is asked for again).  Our cookies are fixed:
 * object i has cookie i, so listings never repeat or skip a name. */
static int hellofs_readdir(void *self, void *handle, uint64_t cookie,
                           uint32_t flags, fs9_dirent_fn emit, void *emit_arg)
{
    struct hellofs *fs = self;
    struct hello_handle *h = handle;
    (void)flags; /* attributes are cheap: always give them */
    if (h->obj != OBJ_ROOT)
        return -ENOTDIR;
    for (uint64_t i = cookie + 1; i < OBJ_COUNT; i++) {
        struct fs9_dirent e = {.name = obj_names[i], .cookie = i,
                               .full_attr = 1};
        pthread_mutex_lock(&fs->lock);
        obj_attr(fs, (int)i, &e.attr);
        pthread_mutex_unlock(&fs->lock);
        /* Never call back into FS9 with our lock held. */
        int rc = emit(emit_arg, &e);
        if (rc != 0)
            return rc < 0 ? rc : 0;
    }
    return 0;
}

static int hellofs_remove(void *self, const struct fs9_ctx *ctx,
                          const char *path, uint32_t flags)
{
    (void)self;
    (void)ctx;
    int i = lookup(path);
    if (i < 0)
        return i;
    if (i == OBJ_ROOT)
        return (flags & FS9_REMOVE_DIR) ? -EBUSY : -EISDIR;
    if (flags & FS9_REMOVE_DIR)
        return -ENOTDIR;
    return -EACCES;
}

/* Optional, but without it FS9 answers EXDEV and `mv` would try to copy
 * and delete instead; a plain "permission denied" is clearer. */
static int hellofs_rename(void *self, const struct fs9_ctx *ctx,
                          const char *from, const char *to, uint32_t flags)
{
    (void)self;
    (void)ctx;
    (void)to;
    (void)flags;
    int i = lookup(from);
    return i < 0 ? i : -EACCES;
}

/* ---- the table ---- */

static const struct fs9_provider_ops hellofs_ops = {
    .abi_version = FS9_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct fs9_provider_ops),
    .name = "hellofs",
    .version = HELLOFS_VERSION,
    .description = "a read-only /hello and a few writable files (the "
                   "plugin template)",
    .create = hellofs_create,
    .destroy = hellofs_destroy,
    .capabilities = hellofs_capabilities,
    .stat = hellofs_stat,
    .wstat = hellofs_wstat,
    .statfs = hellofs_statfs,
    .open = hellofs_open,
    .read = hellofs_read,
    .write = hellofs_write,
    .close = hellofs_close,
    .readdir = hellofs_readdir,
    .remove = hellofs_remove,
    /* Optional entries: NULL means "not supported" and FS9 answers for
     * us (EPERM for links, EOPNOTSUPP for xattrs, ...).  Never return
     * -ENOSYS to mean that. */
    .rename = hellofs_rename,
    .arg_key = "greeting",
};

/* The one exported symbol (FS9_PROVIDER_ENTRY).  "default" visibility
 * keeps it exported even when the build hides everything else. */
__attribute__((visibility("default")))
const struct fs9_provider_ops *fs9_provider_entry(void);

const struct fs9_provider_ops *fs9_provider_entry(void)
{
    return &hellofs_ops;
}
