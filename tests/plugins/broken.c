/*
 * broken — one small provider source built many ways, each shared object
 * breaking one rule the loader checks (see tests/plugins/meson.build):
 *
 *   BREAK_ABI        another ABI version
 *   BREAK_ENTRY      no fs9_provider_entry symbol
 *   BREAK_NULL       the entry returns no table
 *   BREAK_SIZE       a table of another size
 *   BREAK_REQUIRED   a required function (read) missing
 *   BREAK_NAME       a name outside [a-z0-9_-]
 *   NAME="..."       the provider's name (duplicates: "memfs", twins)
 *
 * Without any BREAK_ it is a working provider: an empty root directory.
 */
#include <fs9/provider.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef NAME
#define NAME "good"
#endif

struct good {
    int unused;
};

static int good_create(const struct fs9_host *host,
                       const struct fs9_config *cfg, void **self, char *err,
                       size_t errlen)
{
    (void)host;
    (void)err;
    (void)errlen;
    (void)cfg;
    *self = calloc(1, sizeof(struct good));
    return *self ? 0 : -ENOMEM;
}

static void good_destroy(void *self)
{
    free(self);
}

static uint64_t good_caps(void *self)
{
    (void)self;
    return FS9_CAP_READ | FS9_CAP_DIRECTORY | FS9_CAP_NONBLOCKING;
}

static int good_stat(void *self, const struct fs9_ctx *ctx, const char *path,
                     void *handle, struct fs9_attr *out)
{
    (void)self;
    (void)ctx;
    (void)handle;
    if (*path)
        return -ENOENT;
    memset(out, 0, sizeof *out);
    out->ino = 1;
    out->mode = S_IFDIR | 0555;
    out->nlink = 2;
    return 0;
}

static int good_open(void *self, const struct fs9_ctx *ctx, const char *path,
                     uint32_t flags, uint32_t mode, struct fs9_open_out *out)
{
    (void)mode;
    if (*path)
        return (flags & FS9_OPEN_CREATE) ? -EACCES : -ENOENT;
    if (flags & FS9_OPEN_WRITE)
        return -EISDIR;
    memset(out, 0, sizeof *out);
    out->handle = self;
    return good_stat(self, ctx, path, NULL, &out->attr);
}

#ifndef BREAK_REQUIRED
static ssize_t good_read(void *self, void *handle, void *buf, size_t size,
                         uint64_t offset)
{
    (void)self;
    (void)handle;
    (void)buf;
    (void)size;
    (void)offset;
    return -EISDIR;
}
#endif

static int good_close(void *self, void *handle, int sync)
{
    (void)self;
    (void)handle;
    (void)sync;
    return 0;
}

static int good_readdir(void *self, void *handle, uint64_t cookie,
                        uint32_t flags, fs9_dirent_fn emit, void *emit_arg)
{
    (void)self;
    (void)handle;
    (void)cookie;
    (void)flags;
    (void)emit;
    (void)emit_arg;
    return 0;
}

static const struct fs9_provider_ops ops = {
#ifdef BREAK_ABI
    .abi_version = FS9_PROVIDER_ABI_VERSION + 98,
#else
    .abi_version = FS9_PROVIDER_ABI_VERSION,
#endif
#ifdef BREAK_SIZE
    .struct_size = sizeof(struct fs9_provider_ops) - sizeof(void *),
#else
    .struct_size = sizeof(struct fs9_provider_ops),
#endif
#ifdef BREAK_NAME
    .name = "Bad Name!",
#else
    .name = NAME,
#endif
    .version = "0.0.1",
    .description = "a test plugin",
    .create = good_create,
    .destroy = good_destroy,
    .capabilities = good_caps,
    .stat = good_stat,
    .open = good_open,
#ifndef BREAK_REQUIRED
    .read = good_read,
#endif
    .close = good_close,
    .readdir = good_readdir,
};

#ifdef BREAK_ENTRY
/* Exported, but under the wrong name. */
__attribute__((visibility("default")))
const struct fs9_provider_ops *fs9_provider_entry_v0(void);

const struct fs9_provider_ops *fs9_provider_entry_v0(void)
{
    return &ops;
}
#else
__attribute__((visibility("default")))
const struct fs9_provider_ops *fs9_provider_entry(void);

const struct fs9_provider_ops *fs9_provider_entry(void)
{
#ifdef BREAK_NULL
    (void)ops;
    return NULL;
#else
    return &ops;
#endif
}
#endif
