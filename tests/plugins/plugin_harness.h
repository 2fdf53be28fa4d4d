/*
 * plugin_harness — what the unit tests of the plugins share: load a built
 * plugin the way fs9 does (dlopen, the entry symbol), make instances from
 * "key=value" strings with a test_host, and short helpers for the calls
 * the tests make over and over.  Criterion assertions on failure.
 *
 * FS9_PLUGIN_BUILD_DIR (set by tests/unit/meson.build) is where the
 * plugins are built.
 */
#ifndef FS9_PLUGIN_HARNESS_H
#define FS9_PLUGIN_HARNESS_H

#include <criterion/criterion.h>

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs9/provider.h"
#include "test_host.h"

#ifndef FS9_PLUGIN_BUILD_DIR
#error "FS9_PLUGIN_BUILD_DIR must name the directory of the built plugins"
#endif

/** The table of built plugin `name` (never unloaded: leak reports stay
 *  symbolized). */
static inline const struct fs9_provider_ops *plugin_load(const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.so", FS9_PLUGIN_BUILD_DIR, name);
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    cr_assert_not_null(dl, "dlopen %s: %s", path, dlerror());
    fs9_provider_entry_fn entry;
    *(void **)&entry = dlsym(dl, FS9_PROVIDER_ENTRY);
    cr_assert_not_null(entry, "%s exports no %s", path, FS9_PROVIDER_ENTRY);
    const struct fs9_provider_ops *ops = entry();
    cr_assert_not_null(ops);
    cr_assert_eq(ops->abi_version, FS9_PROVIDER_ABI_VERSION);
    cr_assert_eq(ops->struct_size, sizeof(struct fs9_provider_ops));
    return ops;
}

/** create() from NULL-terminated "key=value" strings; err gets the
 *  provider's message. */
static inline int plugin_make(const struct fs9_provider_ops *ops,
                              struct test_host *th, void **out, char *err,
                              size_t errlen, const char *const *kv)
{
    struct fs9_config_item items[16];
    char keys[16][64];
    size_t n = 0;
    for (; kv && kv[n] && n < 16; n++) {
        const char *eq = strchr(kv[n], '=');
        size_t kl = eq ? (size_t)(eq - kv[n]) : strlen(kv[n]);
        snprintf(keys[n], sizeof keys[n], "%.*s", (int)kl, kv[n]);
        items[n].key = keys[n];
        items[n].value = eq ? eq + 1 : "";
    }
    struct fs9_config cfg = {.items = items, .count = n, .mount_path = "/"};
    err[0] = '\0';
    return ops->create(&th->host, &cfg, out, err, errlen);
}

/** Open with `flags` (and `mode` when creating); the handle, or NULL with
 *  *rc set.  rc may be NULL when failure is not expected. */
static inline void *plugin_open(const struct fs9_provider_ops *ops,
                                void *fs, const struct fs9_ctx *ctx,
                                const char *path, uint32_t flags,
                                uint32_t mode, int *rc)
{
    struct fs9_open_out out;
    memset(&out, 0, sizeof out);
    int r = ops->open(fs, ctx, path, flags, mode, &out);
    if (rc)
        *rc = r;
    else
        cr_assert_eq(r, 0, "open %s: %s", path, strerror(-r));
    return r == 0 ? out.handle : NULL;
}

/** The errno (0 for success) of opening `path` with `flags`; closes what
 *  it opened. */
static inline int plugin_open_rc(const struct fs9_provider_ops *ops,
                                 void *fs, const struct fs9_ctx *ctx,
                                 const char *path, uint32_t flags,
                                 uint32_t mode)
{
    int rc;
    void *h = plugin_open(ops, fs, ctx, path, flags, mode, &rc);
    if (h)
        ops->close(fs, h, 0);
    return rc;
}

/** stat's errno, attributes into *a (when not NULL). */
static inline int plugin_stat(const struct fs9_provider_ops *ops, void *fs,
                              const struct fs9_ctx *ctx, const char *path,
                              struct fs9_attr *a)
{
    struct fs9_attr tmp;
    return ops->stat(fs, ctx, path, NULL, a ? a : &tmp);
}

/** Write a string through `h` at `off`; asserts it is written whole. */
static inline void plugin_write_str(const struct fs9_provider_ops *ops,
                                    void *fs, void *h, const char *s,
                                    uint64_t off)
{
    ssize_t n = ops->write(fs, h, s, strlen(s), off);
    cr_assert_eq(n, (ssize_t)strlen(s), "write '%s': %zd", s, n);
}

/** Read up to size-1 bytes at `off` into buf as a string; returns the
 *  read's result. */
static inline ssize_t plugin_read_str(const struct fs9_provider_ops *ops,
                                      void *fs, void *h, char *buf,
                                      size_t size, uint64_t off)
{
    ssize_t n = ops->read(fs, h, buf, size - 1, off);
    buf[n > 0 ? n : 0] = '\0';
    return n;
}

/** A listing: names (joined by '/') and the cookie of each entry. */
struct plugin_listing {
    char names[65536];
    uint64_t cookies[4096];
    size_t count;
    size_t stop_after; /* emit returns 1 once this many were taken; 0: no */
};

static inline int plugin_listing_emit(void *arg, const struct fs9_dirent *e)
{
    struct plugin_listing *l = arg;
    if (l->stop_after && l->count >= l->stop_after)
        return 1;
    cr_assert(e->cookie != 0 && e->cookie < (UINT64_C(1) << 63),
              "cookie %llu out of range", (unsigned long long)e->cookie);
    cr_assert_neq(e->attr.ino, 0, "entry %s has ino 0", e->name);
    size_t len = strlen(l->names);
    snprintf(l->names + len, sizeof l->names - len, "%s%s", len ? "/" : "",
             e->name);
    if (l->count < 4096)
        l->cookies[l->count] = e->cookie;
    l->count++;
    return 0;
}

/** List directory `path` from `cookie`, into a zeroed *l. */
static inline int plugin_list(const struct fs9_provider_ops *ops, void *fs,
                              const struct fs9_ctx *ctx, const char *path,
                              uint64_t cookie, struct plugin_listing *l)
{
    void *h = plugin_open(ops, fs, ctx, path,
                          FS9_OPEN_READ | FS9_OPEN_DIRECTORY, 0, NULL);
    int rc = ops->readdir(fs, h, cookie, 0, plugin_listing_emit, l);
    ops->close(fs, h, 0);
    return rc;
}

static inline int notify_count(struct test_host *th)
{
    pthread_mutex_lock(&th->lock);
    int n = th->notify_count;
    pthread_mutex_unlock(&th->lock);
    return n;
}

#endif
