/*
 * ctl — the /.fs9 control directory, Plan 9 style: the namespace is changed
 * and inspected through files.
 *
 *   ctl        write one command per line: mount PATH PROVIDER key=value…,
 *              unmount [-f] PATH, load PLUGIN.so.  Only the user who
 *              mounted the filesystem (and root) may write it.
 *   error      why the last command failed
 *   mounts     PATH PROVIDER OPTIONS CAPABILITIES, one mount per line
 *   providers  NAME VERSION ORIGIN, one per line
 *   stats      "key value" lines: operations, errors, latencies, queue
 *   version    fs9 and ABI versions
 *
 * It is a provider like the others — mounted at /.fs9 — with one privilege:
 * it reaches its namespace through the mount that owns it.  Files are
 * generated at open, so a reader sees one consistent snapshot, and opened
 * with direct I/O, so sizes of 0 do not stop the kernel from reading.
 */
#include "core/ctl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/plugin.h"
#include "fs9_config.h"

enum { F_ROOT, F_CTL, F_ERROR, F_MOUNTS, F_PROVIDERS, F_STATS, F_VERSION,
       F_COUNT };

static const struct {
    const char *name;
    uint32_t mode;
} files[F_COUNT] = {
    [F_ROOT] = {"", S_IFDIR | 0555},
    [F_CTL] = {"ctl", S_IFREG | 0644},
    [F_ERROR] = {"error", S_IFREG | 0444},
    [F_MOUNTS] = {"mounts", S_IFREG | 0444},
    [F_PROVIDERS] = {"providers", S_IFREG | 0444},
    [F_STATS] = {"stats", S_IFREG | 0444},
    [F_VERSION] = {"version", S_IFREG | 0444},
};

struct ctl {
    struct fs9_ns *ns;
    const struct fs9_host *host;
};

struct text {
    char *buf;
    size_t len, cap;
};

struct ctl_handle {
    int file;
    struct text t; /* snapshot taken at open */
};

static void text_add(struct text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void text_add(struct text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = t->cap - t->len;
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < room) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap * 2 : 4096;
        while (cap < t->len + (size_t)n + 1)
            cap *= 2;
        char *b = realloc(t->buf, cap);
        if (!b)
            return;
        t->buf = b;
        t->cap = cap;
    }
}

static int file_of(const char *path)
{
    for (int i = 0; i < F_COUNT; i++)
        if (strcmp(files[i].name, path) == 0)
            return i;
    return -1;
}

static void fill_attr(struct ctl *c, int f, struct fs9_attr *a)
{
    memset(a, 0, sizeof *a);
    a->ino = (uint64_t)f + 1;
    a->mode = files[f].mode;
    a->nlink = f == F_ROOT ? 2 : 1;
    a->uid = fs9_ns_owner(c->ns);
    a->gid = getgid();
    a->blksize = 4096;
    a->atime = a->mtime = a->ctime = fs9_ns_birth(c->ns);
}

/* ---- the generated files ---- */

static int mount_line(void *arg, struct fs9_mount *m)
{
    struct text *t = arg;
    char caps[512];
    fs9_caps_string(m->caps, caps, sizeof caps);
    text_add(t, "%s %s %s %s\n", m->path, m->source,
             m->options && *m->options ? m->options : "-",
             *caps ? caps : "-");
    return 0;
}

static const struct {
    uint64_t bit;
    const char *name;
} cap_names[] = {
    {FS9_CAP_READ, "read"}, {FS9_CAP_WRITE, "write"},
    {FS9_CAP_CREATE, "create"}, {FS9_CAP_DELETE, "delete"},
    {FS9_CAP_RENAME, "rename"}, {FS9_CAP_TRUNCATE, "truncate"},
    {FS9_CAP_CHMOD, "chmod"}, {FS9_CAP_CHOWN, "chown"},
    {FS9_CAP_UTIME, "utime"}, {FS9_CAP_HARDLINK, "hardlink"},
    {FS9_CAP_SYMLINK, "symlink"}, {FS9_CAP_SYNC, "sync"},
    {FS9_CAP_APPEND, "append"}, {FS9_CAP_RANDOM_WRITE, "random_write"},
    {FS9_CAP_STREAMING, "streaming"},
    {FS9_CAP_BLOCKING_READ, "blocking_read"},
    {FS9_CAP_VERSIONING, "versioning"}, {FS9_CAP_ETAG, "etag"},
    {FS9_CAP_ATOMIC_RENAME, "atomic_rename"},
    {FS9_CAP_DIRECTORY, "directory"}, {FS9_CAP_XATTR, "xattr"},
    {FS9_CAP_SYNTHETIC, "synthetic"},
    {FS9_CAP_STATEFUL_READ, "stateful_read"},
    {FS9_CAP_STATEFUL_WRITE, "stateful_write"},
    {FS9_CAP_NONBLOCKING, "nonblocking"},
    {FS9_CAP_EXTERNAL_CHANGES, "external_changes"},
};

size_t fs9_caps_string(uint64_t caps, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof cap_names / sizeof cap_names[0]; i++) {
        if (!(caps & cap_names[i].bit))
            continue;
        caps &= ~cap_names[i].bit;
        int n = snprintf(buf + len, size - len, "%s%s", len ? "," : "",
                         cap_names[i].name);
        if (n < 0 || (size_t)n >= size - len)
            return len;
        len += (size_t)n;
    }
    for (int b = 0; b < 64; b++) { /* bits newer than this fs9 */
        if (!(caps & (UINT64_C(1) << b)))
            continue;
        int n = snprintf(buf + len, size - len, "%sbit%d", len ? "," : "", b);
        if (n < 0 || (size_t)n >= size - len)
            return len;
        len += (size_t)n;
    }
    return len;
}

static void provider_line(void *arg, const struct fs9_catalog_entry *e)
{
    struct text *t = arg;
    /* Capabilities belong to instances: /.fs9/mounts shows them. */
    text_add(t, "%s %s %s\n", e->ops->name,
             e->ops->version ? e->ops->version : "-", e->origin);
}

static void render(struct ctl *c, int f, struct text *t)
{
    struct fs9_ns *ns = c->ns;
    switch (f) {
    case F_CTL:
        text_add(t, "commands, one per line:\n"
                    "mount PATH PROVIDER [key=value ...]\n"
                    "unmount [-f] PATH\n"
                    "load PLUGIN.so\n");
        break;
    case F_ERROR: {
        char e[1200];
        if (fs9_ns_last_error(ns, e, sizeof e) > 0)
            text_add(t, "%s\n", e);
        break;
    }
    case F_MOUNTS:
        fs9_mount_table_foreach(fs9_ns_mounts(ns), mount_line, t);
        break;
    case F_PROVIDERS:
        fs9_ns_foreach_provider(ns, provider_line, t);
        break;
    case F_VERSION:
        text_add(t, "fs9 %s\nprovider_abi %d\n", FS9_VERSION,
                 FS9_PROVIDER_ABI_VERSION);
        break;
    case F_STATS: {
        struct fs9_dispatch_stats d;
        fs9_dispatcher_stats(fs9_ns_dispatcher(ns), &d);
        struct timespec now, birth = fs9_ns_birth(ns);
        clock_gettime(CLOCK_REALTIME, &now);
        text_add(t, "uptime_s %lld\n", (long long)(now.tv_sec - birth.tv_sec));
        text_add(t, "mounts %zu\n", fs9_mount_table_count(fs9_ns_mounts(ns)));
        text_add(t, "handles.open %zu\n",
                 fs9_registry_count(fs9_ns_handles(ns)));
        char extra[1024];
        size_t elen = 0;
        fs9_ns_info(ns, extra, sizeof extra, &elen);
        text_add(t, "%.*s", (int)elen, extra);
        text_add(t, "queue.inflight %llu\nqueue.held %llu\n"
                    "queue.waiting %llu\nqueue.running %llu\n"
                    "queue.parked %llu\nqueue.peak %llu\n"
                    "queue.pending_bytes %llu\nqueue.submit_waits %llu\n",
                 (unsigned long long)d.inflight, (unsigned long long)d.held,
                 (unsigned long long)d.waiting,
                 (unsigned long long)d.running, (unsigned long long)d.parked,
                 (unsigned long long)d.peak_inflight,
                 (unsigned long long)d.pending_bytes,
                 (unsigned long long)d.submit_waits);
        text_add(t, "requests.submitted %llu\nrequests.completed %llu\n"
                    "requests.timeouts %llu\nrequests.interrupts %llu\n"
                    "requests.parks %llu\n",
                 (unsigned long long)d.submitted,
                 (unsigned long long)d.completed,
                 (unsigned long long)d.timeouts,
                 (unsigned long long)d.interrupts,
                 (unsigned long long)d.parks);
        struct fs9_stats *s = fs9_ns_stats(ns);
        size_t need = 512 + (size_t)s->nops * 160;
        char *b = malloc(need);
        if (b) {
            size_t len = 0;
            fs9_stats_render(s, b, need, &len);
            text_add(t, "%.*s", (int)len, b);
            free(b);
        }
        break;
    }
    default:
        break;
    }
}

/* ---- commands ---- */

/* Split `line` into words in place; "double quotes" group, \" escapes. */
static int split_words(char *line, char **argv, int max)
{
    int argc = 0;
    char *p = line;
    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        if (argc == max)
            return -1;
        char *out = p;
        argv[argc++] = out;
        int quoted = 0;
        while (*p && (quoted || (*p != ' ' && *p != '\t'))) {
            if (*p == '"') {
                quoted = !quoted;
                p++;
            } else if (*p == '\\' && p[1]) {
                *out++ = p[1];
                p += 2;
            } else {
                *out++ = *p++;
            }
        }
        if (*p)
            p++;
        *out = '\0';
        if (quoted)
            return -2;
    }
    return argc;
}

static int reserved(const char *path)
{
    return strcmp(path, FS9_CONTROL_PATH) == 0 ||
           strncmp(path, FS9_CONTROL_PATH "/",
                   sizeof FS9_CONTROL_PATH) == 0;
}

static int run_command(struct ctl *c, char *line, char *err, size_t errlen)
{
    char *argv[64];
    int argc = split_words(line, argv, 64);
    if (argc == -1) {
        snprintf(err, errlen, "too many words (at most 64)");
        return -EINVAL;
    }
    if (argc == -2) {
        snprintf(err, errlen, "unbalanced double quote");
        return -EINVAL;
    }
    if (argc == 0)
        return 0;
    if (strcmp(argv[0], "mount") == 0) {
        if (argc < 3) {
            snprintf(err, errlen, "usage: mount PATH PROVIDER "
                                  "[key=value ...]");
            return -EINVAL;
        }
        char canon[4096];
        if (fs9_path_normalize(argv[1], canon, sizeof canon) == 0 &&
            reserved(canon)) {
            snprintf(err, errlen, "%.200s is reserved for the control files",
                     canon);
            return -EINVAL;
        }
        struct fs9_config_item items[61];
        int n = 0;
        for (int i = 3; i < argc; i++) {
            char *eq = strchr(argv[i], '=');
            if (!eq || eq == argv[i]) {
                snprintf(err, errlen, "'%s': settings are key=value",
                         argv[i]);
                return -EINVAL;
            }
            *eq = '\0';
            items[n].key = argv[i];
            items[n].value = eq + 1;
            n++;
        }
        int rc = fs9_ns_mount(c->ns, argv[1], argv[2], items, (size_t)n, err,
                              errlen);
        if (rc == -EEXIST || rc == -ENOMEM)
            return rc;
        return rc < 0 ? -EINVAL : 0;
    }
    if (strcmp(argv[0], "unmount") == 0 || strcmp(argv[0], "umount") == 0) {
        int force = argc == 3 && strcmp(argv[1], "-f") == 0;
        if (argc != 2 + force) {
            snprintf(err, errlen, "usage: unmount [-f] PATH");
            return -EINVAL;
        }
        const char *path = argv[1 + force];
        char canon[4096];
        if (fs9_path_normalize(path, canon, sizeof canon) == 0 &&
            reserved(canon)) {
            snprintf(err, errlen, "%.200s cannot be unmounted", canon);
            return -EBUSY;
        }
        int rc = fs9_ns_unmount(c->ns, path, force, err, errlen);
        return rc == -EINVAL ? -EINVAL : rc;
    }
    if (strcmp(argv[0], "load") == 0) {
        if (argc != 2) {
            snprintf(err, errlen, "usage: load PLUGIN.so");
            return -EINVAL;
        }
        int rc = fs9_plugin_load(c->ns, argv[1], err, errlen);
        return rc == -EEXIST ? -EEXIST : rc < 0 ? -EINVAL : 0;
    }
    snprintf(err, errlen, "unknown command '%s' (mount, unmount, load)",
             argv[0]);
    return -EINVAL;
}

/* ---- the provider ---- */

static int ctl_create(const struct fs9_host *host, const struct fs9_config *cfg,
                      void **self, char *err, size_t errlen)
{
    if (cfg->count) {
        snprintf(err, errlen, "takes no settings");
        return -EINVAL;
    }
    struct ctl *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->host = host;
    c->ns = fs9_ns_of_host(host);
    *self = c;
    return 0;
}

static void ctl_destroy(void *self)
{
    free(self);
}

static uint64_t ctl_caps(void *self)
{
    (void)self;
    return FS9_CAP_READ | FS9_CAP_WRITE | FS9_CAP_DIRECTORY |
           FS9_CAP_SYNTHETIC;
}

static int ctl_stat(void *self, const struct fs9_ctx *ctx, const char *path,
                    void *handle, struct fs9_attr *out)
{
    (void)ctx;
    int f = handle ? ((struct ctl_handle *)handle)->file : file_of(path);
    if (f < 0)
        return -ENOENT;
    fill_attr(self, f, out);
    return 0;
}

static int may_write(struct ctl *c, const struct fs9_ctx *ctx)
{
    return ctx->uid == 0 || ctx->uid == (uint32_t)fs9_ns_owner(c->ns);
}

static int ctl_open(void *self, const struct fs9_ctx *ctx, const char *path,
                    uint32_t flags, uint32_t mode, struct fs9_open_out *out)
{
    (void)mode;
    struct ctl *c = self;
    int f = file_of(path);
    if (f < 0)
        return (flags & FS9_OPEN_CREATE) ? -EACCES : -ENOENT;
    if ((flags & FS9_OPEN_CREATE) && (flags & FS9_OPEN_EXCL))
        return -EEXIST;
    int writing = (flags & FS9_OPEN_WRITE) != 0;
    if (f == F_ROOT) {
        if (writing)
            return -EISDIR;
    } else if (flags & FS9_OPEN_DIRECTORY) {
        return -ENOTDIR;
    }
    if (writing && f != F_CTL)
        return -EACCES;
    if (writing && !may_write(c, ctx))
        return -EACCES;
    fill_attr(c, f, &out->attr);
    if (flags & FS9_OPEN_NOHANDLE)
        return 0;
    struct ctl_handle *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    h->file = f;
    if (f != F_ROOT && !writing)
        render(c, f, &h->t);
    out->handle = h;
    out->flags = FS9_OPEN_OUT_DIRECT_IO;
    return 0;
}

static ssize_t ctl_read(void *self, void *handle, void *buf, size_t size,
                        uint64_t off)
{
    (void)self;
    struct ctl_handle *h = handle;
    if (h->file == F_ROOT)
        return -EISDIR;
    if (off >= h->t.len)
        return 0;
    size_t n = h->t.len - off < size ? h->t.len - (size_t)off : size;
    memcpy(buf, h->t.buf + off, n);
    return (ssize_t)n;
}

static ssize_t ctl_write(void *self, void *handle, const void *buf,
                         size_t size, uint64_t off)
{
    (void)off;
    struct ctl *c = self;
    struct ctl_handle *h = handle;
    if (h->file != F_CTL)
        return -EBADF;
    if (size > 65536) {
        fs9_ns_set_error(c->ns, "command too long (at most 64 KiB)");
        return -EINVAL;
    }
    char *copy = malloc(size + 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, buf, size);
    copy[size] = '\0';
    int rc = 0;
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line && rc == 0;
         line = strtok_r(NULL, "\n", &save)) {
        char err[1024] = "";
        char cmd[256];
        snprintf(cmd, sizeof cmd, "%s", line);
        rc = run_command(c, line, err, sizeof err);
        if (rc < 0) {
            fs9_ns_set_error(c->ns, "%s: %s", cmd, err);
            fs9_info("ctl: %s: %s", cmd, err);
        }
    }
    free(copy);
    return rc < 0 ? rc : (ssize_t)size;
}

static int ctl_close(void *self, void *handle, int sync)
{
    (void)self;
    (void)sync;
    struct ctl_handle *h = handle;
    free(h->t.buf);
    free(h);
    return 0;
}

static int ctl_readdir(void *self, void *handle, uint64_t cookie,
                       uint32_t flags, fs9_dirent_fn emit, void *arg)
{
    (void)flags;
    struct ctl_handle *h = handle;
    if (h->file != F_ROOT)
        return -ENOTDIR;
    for (uint64_t f = cookie + 1; f < F_COUNT; f++) {
        struct fs9_dirent d = {.name = files[f].name, .cookie = f,
                               .full_attr = 1};
        fill_attr(self, (int)f, &d.attr);
        int rc = emit(arg, &d);
        if (rc != 0)
            return rc < 0 ? rc : 0;
    }
    return 0;
}

static int ctl_wstat(void *self, const struct fs9_ctx *ctx, const char *path,
                     void *handle, const struct fs9_wstat *w,
                     struct fs9_attr *out)
{
    int f = handle ? ((struct ctl_handle *)handle)->file : file_of(path);
    if (f < 0)
        return -ENOENT;
    /* `echo cmd > ctl` truncates first: harmless, allowed for writers. */
    if (f == F_CTL && w->valid == FS9_WSTAT_SIZE && may_write(self, ctx)) {
        fill_attr(self, f, out);
        return 0;
    }
    return -EPERM;
}

static int ctl_remove(void *self, const struct fs9_ctx *ctx, const char *path,
                      uint32_t flags)
{
    (void)self;
    (void)ctx;
    (void)flags;
    return file_of(path) < 0 ? -ENOENT : -EPERM;
}

static int ctl_statfs(void *self, const char *path, struct fs9_statfs *out)
{
    (void)self;
    (void)path;
    memset(out, 0, sizeof *out);
    out->bsize = 4096;
    out->namemax = 255;
    return 0;
}

const struct fs9_provider_ops fs9_ctl_ops = {
    .abi_version = FS9_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct fs9_provider_ops),
    .name = "ctl",
    .version = FS9_VERSION,
    .description = "the /.fs9 control files",
    .create = ctl_create,
    .destroy = ctl_destroy,
    .capabilities = ctl_caps,
    .stat = ctl_stat,
    .wstat = ctl_wstat,
    .statfs = ctl_statfs,
    .open = ctl_open,
    .read = ctl_read,
    .write = ctl_write,
    .close = ctl_close,
    .readdir = ctl_readdir,
    .remove = ctl_remove,
};
