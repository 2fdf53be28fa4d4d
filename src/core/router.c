/* router — see router.h. */
#include "core/router.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/ctl.h"
#include "core/log.h"
#include "core/namespace_i.h"

#define SYNTH_BIT (UINT64_C(1) << 63)

/* ---- routing ---- */

int fs9_ns_route(struct fs9_ns *ns, const char *path, struct fs9_route *r)
{
    r->path = path;
    r->mount = fs9_mount_table_resolve(fs9_ns_mounts(ns), path, &r->rel,
                                       &r->flags);
    return r->mount ? 0 : -ENOENT;
}

void fs9_route_end(struct fs9_route *r)
{
    if (r->mount) {
        fs9_mount_unref(r->mount);
        r->mount = NULL;
    }
}

int fs9_route_inline(const struct fs9_route *r)
{
    return (r->mount->caps & FS9_CAP_NONBLOCKING) &&
           !atomic_load(&r->mount->dead);
}

struct fs9_handle *fs9_ns_handle_get(struct fs9_ns *ns, uint64_t id)
{
    return fs9_registry_acquire(fs9_ns_handles(ns), id);
}

void fs9_ns_handle_put(struct fs9_ns *ns, struct fs9_handle *h)
{
    if (h)
        fs9_registry_release(fs9_ns_handles(ns), h);
}

/* ---- helpers ---- */

uint64_t fs9_ns_ino(const struct fs9_mount *m, uint64_t ino)
{
    /* The first mount keeps the provider's numbers (localfs: the host's);
     * others are moved into their own region so `find`, `tar` and `cp -a`
     * never see two objects with one inode number.  Bit 63 is left to the
     * synthesized directories. */
    if (m->index == 0)
        return ino;
    return (ino ^ ((uint64_t)m->index << 48)) & ~SYNTH_BIT;
}

static uint64_t synth_ino(const char *path)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return (h | SYNTH_BIT) | 1;
}

static void synth_dir_attr(struct fs9_ns *ns, const char *path,
                           struct fs9_attr *a)
{
    memset(a, 0, sizeof *a);
    a->ino = synth_ino(path);
    a->mode = S_IFDIR | 0555;
    a->nlink = 2;
    a->uid = fs9_ns_owner(ns);
    a->gid = getgid();
    a->blksize = 4096;
    a->atime = a->mtime = a->ctime = fs9_ns_birth(ns);
}

static int dead(const struct fs9_mount *m)
{
    return atomic_load(&m->dead);
}

/* A provider's ENOSYS must never reach the kernel: for several operations
 * the kernel would remember it and stop asking for the whole filesystem. */
static int no_enosys(int rc, int instead)
{
    return rc == -ENOSYS ? -instead : rc;
}

/* The provider's answer for a call that fills attributes: its errno (never
 * ENOSYS), or success with the inode number made unique. */
static int attr_result(const struct fs9_mount *m, int rc, int instead,
                       struct fs9_attr *out)
{
    if (rc < 0)
        return no_enosys(rc, instead);
    out->ino = fs9_ns_ino(m, out->ino);
    return 0;
}

const char *fs9_handle_rel(const struct fs9_handle *h)
{
    const char *rel = h->path + strlen(h->mount->path);
    while (*rel == '/')
        rel++;
    return rel;
}

static int is_busy_route(const struct fs9_route *r)
{
    return (r->flags & (FS9_RESOLVE_MOUNTPOINT | FS9_RESOLVE_INNER)) != 0;
}

/* ---- attributes ---- */

int fs9_ns_stat(struct fs9_ns *ns, const struct fs9_ctx *ctx,
                const struct fs9_route *r, struct fs9_handle *h,
                struct fs9_attr *out)
{
    struct fs9_mount *m = r->mount;
    if (dead(m))
        return -EIO;
    if (h && (h->ns_flags & FS9__NSF_SYNTH_DIR)) {
        synth_dir_attr(ns, r->path, out);
        return 0;
    }
    int rc = m->ops->stat(m->self, ctx, r->rel, h ? h->ph : NULL, out);
    if (r->flags & FS9_RESOLVE_INNER) {
        /* Mounts below make this a directory whatever the provider says. */
        if (rc < 0 || !S_ISDIR(out->mode)) {
            synth_dir_attr(ns, r->path, out);
            return 0;
        }
    }
    if (rc < 0)
        return no_enosys(rc, EIO);
    out->ino = fs9_ns_ino(m, out->ino);
    return 0;
}

int fs9_ns_fstat(struct fs9_ns *ns, const struct fs9_ctx *ctx,
                 struct fs9_handle *h, struct fs9_attr *out)
{
    struct fs9_mount *m = h->mount;
    if (dead(m) || atomic_load(&h->failed))
        return -EIO;
    if (h->ns_flags & FS9__NSF_SYNTH_DIR) {
        synth_dir_attr(ns, h->path, out);
        return 0;
    }
    int rc = m->ops->stat(m->self, ctx, fs9_handle_rel(h), h->ph, out);
    return attr_result(m, rc, EIO, out);
}

int fs9_ns_wstat(struct fs9_ns *ns, const struct fs9_ctx *ctx,
                 const struct fs9_route *r, struct fs9_handle *h,
                 const struct fs9_wstat *w, struct fs9_attr *out)
{
    (void)ns;
    struct fs9_mount *m = r->mount;
    if (dead(m) || (h && atomic_load(&h->failed)))
        return -EIO;
    if (h && (h->ns_flags & FS9__NSF_SYNTH_DIR))
        return -EPERM;
    if (!m->ops->wstat)
        return -EPERM;
    int rc = m->ops->wstat(m->self, ctx, r->rel, h ? h->ph : NULL, w, out);
    if (rc == -ENOENT && (r->flags & FS9_RESOLVE_INNER))
        return -EPERM; /* a synthesized directory has nothing to change */
    return attr_result(m, rc, EPERM, out);
}

int fs9_ns_statfs(struct fs9_ns *ns, const struct fs9_route *r,
                  struct fs9_statfs *out)
{
    (void)ns;
    struct fs9_mount *m = r->mount;
    if (dead(m))
        return -EIO;
    memset(out, 0, sizeof *out);
    out->bsize = 4096;
    out->namemax = 255;
    if (!m->ops->statfs)
        return 0;
    int rc = m->ops->statfs(m->self, r->rel, out);
    if (rc == -ENOENT && (r->flags & FS9_RESOLVE_INNER))
        rc = m->ops->statfs(m->self, "", out);
    return rc < 0 ? no_enosys(rc, EIO) : 0;
}

/* ---- open, read, write, close ---- */

static struct fs9_handle *new_handle(struct fs9_mount *m, const char *path,
                                     uint64_t nodeid)
{
    struct fs9_handle *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->path = strdup(path);
    if (!h->path) {
        free(h);
        return NULL;
    }
    fs9_mount_ref(m);
    atomic_fetch_add(&m->open_handles, 1);
    h->mount = m;
    h->nodeid = nodeid;
    return h;
}

static int register_handle(struct fs9_ns *ns, struct fs9_handle *h,
                           uint64_t *id)
{
    *id = fs9_registry_add(fs9_ns_handles(ns), h);
    if (*id == 0) {
        /* Not registered: close it ourselves. */
        struct fs9_mount *m = h->mount;
        if (h->ph && m->ops->close)
            m->ops->close(m->self, h->ph, 0);
        atomic_fetch_sub(&m->open_handles, 1);
        fs9_mount_unref(m);
        free(h->path);
        free(h);
        return -ENOMEM;
    }
    return 0;
}

static int count_child(void *arg, const char *name)
{
    (void)name;
    ++*(int *)arg;
    return 1; /* one is enough */
}

static int has_mounts_below(struct fs9_ns *ns, const char *path)
{
    int n = 0;
    fs9_mount_table_children(fs9_ns_mounts(ns), path, count_child, &n);
    return n > 0;
}

int fs9_ns_open(struct fs9_ns *ns, const struct fs9_ctx *ctx,
                const struct fs9_route *r, uint32_t flags, uint32_t mode,
                uint64_t nodeid, uint64_t *id, struct fs9_open_out *out)
{
    struct fs9_mount *m = r->mount;
    if (dead(m))
        return -EIO;
    memset(out, 0, sizeof *out);
    *id = 0;
    int wants_write = (flags & (FS9_OPEN_WRITE | FS9_OPEN_TRUNC)) != 0;
    if (is_busy_route(r) && (flags & FS9_OPEN_CREATE) &&
        (flags & FS9_OPEN_EXCL))
        return -EEXIST; /* a mount point or the way to one exists */
    if (wants_write && !(m->caps & (FS9_CAP_WRITE | FS9_CAP_CREATE)))
        return -EROFS;
    int rc = m->ops->open(m->self, ctx, r->rel, flags, mode, out);
    if (rc < 0 && (r->flags & FS9_RESOLVE_INNER) &&
        (rc == -ENOENT || rc == -ENOTDIR)) {
        if (wants_write)
            return -EISDIR;
        /* A directory only the mounts below make: list just them. */
        if (flags & FS9_OPEN_NOHANDLE)
            return -EEXIST;
        struct fs9_handle *h = new_handle(m, r->path, nodeid);
        if (!h)
            return -ENOMEM;
        h->ns_flags |= FS9__NSF_SYNTH_DIR | FS9__NSF_HAS_MOUNTS;
        synth_dir_attr(ns, r->path, &out->attr);
        return register_handle(ns, h, id);
    }
    if (rc < 0)
        return no_enosys(rc, EIO);
    out->attr.ino = fs9_ns_ino(m, out->attr.ino);
    if (flags & FS9_OPEN_NOHANDLE)
        return 0;
    struct fs9_handle *h = new_handle(m, r->path, nodeid);
    if (!h) {
        if (m->ops->close)
            m->ops->close(m->self, out->handle, 0);
        return -ENOMEM;
    }
    h->ph = out->handle;
    h->flags = flags;
    h->out_flags = out->flags;
    if (S_ISDIR(out->attr.mode) && has_mounts_below(ns, r->path))
        h->ns_flags |= FS9__NSF_HAS_MOUNTS;
    return register_handle(ns, h, id);
}

int fs9_ns_mknod(struct fs9_ns *ns, const struct fs9_ctx *ctx,
                 const struct fs9_route *r, uint32_t mode, uint64_t rdev,
                 struct fs9_attr *out)
{
    struct fs9_mount *m = r->mount;
    if (dead(m))
        return -EIO;
    if (is_busy_route(r))
        return -EEXIST;
    int rc;
    if (m->ops->mknod) {
        rc = m->ops->mknod(m->self, ctx, r->rel, mode, rdev, out);
    } else if (S_ISFIFO(mode) || S_ISSOCK(mode) || S_ISREG(mode)) {
        struct fs9_open_out o;
        memset(&o, 0, sizeof o);
        rc = m->ops->open(m->self, ctx, r->rel,
                          FS9_OPEN_CREATE | FS9_OPEN_EXCL | FS9_OPEN_NOHANDLE,
                          mode, &o);
        *out = o.attr;
    } else {
        rc = -EPERM;
    }
    return attr_result(m, rc, EPERM, out);
}

ssize_t fs9_ns_read(struct fs9_ns *ns, struct fs9_handle *h, void *buf,
                    size_t size, uint64_t off)
{
    (void)ns;
    struct fs9_mount *m = h->mount;
    if (dead(m) || atomic_load(&h->failed))
        return -EIO;
    if (h->ns_flags & FS9__NSF_SYNTH_DIR)
        return -EISDIR;
    ssize_t n = m->ops->read(m->self, h->ph, buf, size, off);
    return n == -ENOSYS ? -EINVAL : n;
}

ssize_t fs9_ns_write(struct fs9_ns *ns, struct fs9_handle *h,
                     const void *buf, size_t size, uint64_t off)
{
    (void)ns;
    struct fs9_mount *m = h->mount;
    if (dead(m) || atomic_load(&h->failed))
        return -EIO;
    if (h->ns_flags & FS9__NSF_SYNTH_DIR)
        return -EISDIR;
    if (!m->ops->write)
        return -EBADF;
    ssize_t n = m->ops->write(m->self, h->ph, buf, size, off);
    return n == -ENOSYS ? -EINVAL : n;
}

int fs9_ns_close(struct fs9_ns *ns, uint64_t id, int sync)
{
    struct fs9_registry *reg = fs9_ns_handles(ns);
    struct fs9_handle *h = fs9_registry_take(reg, id);
    if (!h)
        return -EBADF;
    if (sync)
        h->ns_flags |= FS9__NSF_SYNC_CLOSE;
    fs9_registry_release(reg, h);
    return 0;
}

int fs9_ns_fsync(struct fs9_ns *ns, struct fs9_handle *h, int datasync)
{
    (void)ns;
    struct fs9_mount *m = h->mount;
    if (dead(m) || atomic_load(&h->failed))
        return -EIO;
    if (!m->ops->fsync || !h->ph)
        return 0; /* nothing more durable to make it */
    return no_enosys(m->ops->fsync(m->self, h->ph, datasync), EIO);
}

int fs9_ns_fallocate(struct fs9_ns *ns, struct fs9_handle *h, int mode,
                     uint64_t off, uint64_t len)
{
    (void)ns;
    struct fs9_mount *m = h->mount;
    if (dead(m) || atomic_load(&h->failed))
        return -EIO;
    if (!m->ops->fallocate || !h->ph)
        return -EOPNOTSUPP;
    return no_enosys(m->ops->fallocate(m->self, h->ph, mode, off, len),
                     EOPNOTSUPP);
}

int fs9_ns_poll(struct fs9_ns *ns, struct fs9_handle *h, uint32_t events,
                uint32_t *revents)
{
    (void)ns;
    struct fs9_mount *m = h->mount;
    if (dead(m) || atomic_load(&h->failed)) {
        *revents = FS9_POLL_HUP;
        return 0;
    }
    if (!m->ops->poll || !h->ph) {
        /* Ordinary files are always ready. */
        *revents = events & (FS9_POLL_IN | FS9_POLL_OUT);
        return 0;
    }
    int rc = m->ops->poll(m->self, h->ph, events, revents);
    if (rc == -ENOSYS) {
        *revents = events & (FS9_POLL_IN | FS9_POLL_OUT);
        return 0;
    }
    return rc;
}

/* ---- listing ---- */

/* Positions: the synthesized part (".", "..", mount children) is numbered
 * with bit 63 set; the provider's own entries use its cookies (< 2^63). */
struct child_list {
    char **names;
    size_t n, cap;
    int in_root;
};

static int collect_child(void *arg, const char *name)
{
    struct child_list *c = arg;
    /* The control directory is reached by name but not listed (as ZFS
     * hides .zfs): tar, rsync and cp -a of the root leave it alone. */
    if (c->in_root && strcmp(name, FS9_CONTROL_PATH + 1) == 0)
        return 0;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        char **v = realloc(c->names, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        c->names = v;
        c->cap = cap;
    }
    c->names[c->n] = strdup(name);
    if (!c->names[c->n])
        return -ENOMEM;
    c->n++;
    return 0;
}

static void free_children(struct child_list *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->names[i]);
    free(c->names);
}

struct wrap {
    struct fs9_ns *ns;
    struct fs9_handle *h;
    fs9_ns_dirent_fn emit;
    void *arg;
    int stopped;
};

static int wrap_emit(void *arg, const struct fs9_dirent *e)
{
    struct wrap *w = arg;
    if ((w->h->ns_flags & FS9__NSF_HAS_MOUNTS) &&
        fs9_mount_table_has_child(fs9_ns_mounts(w->ns), w->h->path, e->name))
        return 0; /* shadowed by a mount: listed in the first part */
    if (e->cookie == 0 || (e->cookie & SYNTH_BIT)) {
        fs9_error("%s at %s: readdir cookie %llu out of range (must be "
                  "1..2^63-1)", w->h->mount->ops->name, w->h->mount->path,
                  (unsigned long long)e->cookie);
        return -EIO;
    }
    struct fs9_ns_dirent d = {
        .name = e->name,
        .next = e->cookie,
        .full_attr = e->full_attr != 0,
        .attr = e->attr,
    };
    d.attr.ino = fs9_ns_ino(w->h->mount, e->attr.ino);
    int rc = w->emit(w->arg, &d);
    if (rc == 1)
        w->stopped = 1;
    return rc;
}

int fs9_ns_readdir(struct fs9_ns *ns, struct fs9_handle *h, uint64_t off,
                   uint32_t flags, fs9_ns_dirent_fn emit, void *arg)
{
    struct fs9_mount *m = h->mount;
    if (dead(m) || atomic_load(&h->failed))
        return -EIO;
    if (off == 0 || (off & SYNTH_BIT)) {
        uint64_t idx = off ? (off & ~SYNTH_BIT) : 0;
        struct child_list c = {.in_root = strcmp(h->path, "/") == 0};
        if (h->ns_flags & FS9__NSF_HAS_MOUNTS) {
            int rc = fs9_mount_table_children(fs9_ns_mounts(ns), h->path,
                                              collect_child, &c);
            if (rc < 0) {
                free_children(&c);
                return rc;
            }
        }
        for (; idx < 2 + c.n; idx++) {
            struct fs9_ns_dirent d = {.next = SYNTH_BIT | (idx + 1)};
            char child[4096];
            if (idx < 2) {
                d.name = idx == 0 ? "." : "..";
                d.attr.ino = synth_ino(h->path) ^ idx;
            } else {
                d.name = c.names[idx - 2];
                snprintf(child, sizeof child, "%s/%s",
                         strcmp(h->path, "/") == 0 ? "" : h->path, d.name);
                d.attr.ino = synth_ino(child);
            }
            d.attr.mode = S_IFDIR;
            int rc = emit(arg, &d);
            if (rc != 0) {
                free_children(&c);
                return rc < 0 ? rc : 0;
            }
        }
        free_children(&c);
        off = 0; /* on to the provider's entries, from the start */
    }
    if (h->ns_flags & FS9__NSF_SYNTH_DIR)
        return 0;
    if (!m->ops->readdir)
        return -ENOTDIR;
    struct wrap w = {.ns = ns, .h = h, .emit = emit, .arg = arg};
    int rc = m->ops->readdir(m->self, h->ph, off, flags, wrap_emit, &w);
    if (rc < 0)
        return no_enosys(rc, ENOTDIR);
    return 0;
}

/* ---- namespace changes ---- */

int fs9_ns_remove(struct fs9_ns *ns, const struct fs9_ctx *ctx,
                  const struct fs9_route *r, uint32_t flags)
{
    (void)ns;
    struct fs9_mount *m = r->mount;
    if (dead(m))
        return -EIO;
    if (is_busy_route(r))
        return (flags & FS9_REMOVE_DIR) ? -EBUSY : -EISDIR;
    if (!m->ops->remove)
        return -EROFS;
    return no_enosys(m->ops->remove(m->self, ctx, r->rel, flags), EROFS);
}

int fs9_ns_rename(struct fs9_ns *ns, const struct fs9_ctx *ctx,
                  const struct fs9_route *from, const struct fs9_route *to,
                  uint32_t flags)
{
    (void)ns;
    struct fs9_mount *m = from->mount;
    if (dead(m) || dead(to->mount))
        return -EIO;
    if (is_busy_route(from) || is_busy_route(to))
        return -EBUSY;
    if (from->mount != to->mount)
        return -EXDEV;
    if (!m->ops->rename)
        return -EXDEV; /* `mv` then copies and removes */
    return no_enosys(m->ops->rename(m->self, ctx, from->rel, to->rel, flags),
                     EXDEV);
}

int fs9_ns_link(struct fs9_ns *ns, const struct fs9_ctx *ctx,
                const struct fs9_route *from, const struct fs9_route *to,
                struct fs9_attr *out)
{
    (void)ns;
    struct fs9_mount *m = from->mount;
    if (dead(m) || dead(to->mount))
        return -EIO;
    if (is_busy_route(from))
        return -EPERM;
    if (is_busy_route(to))
        return -EEXIST;
    if (from->mount != to->mount)
        return -EXDEV;
    if (!m->ops->link)
        return -EPERM;
    int rc = m->ops->link(m->self, ctx, from->rel, to->rel, out);
    return attr_result(m, rc, EPERM, out);
}

int fs9_ns_symlink(struct fs9_ns *ns, const struct fs9_ctx *ctx,
                   const char *target, const struct fs9_route *r,
                   struct fs9_attr *out)
{
    (void)ns;
    struct fs9_mount *m = r->mount;
    if (dead(m))
        return -EIO;
    if (is_busy_route(r))
        return -EEXIST;
    if (!m->ops->symlink)
        return -EPERM;
    int rc = m->ops->symlink(m->self, ctx, target, r->rel, out);
    return attr_result(m, rc, EPERM, out);
}

ssize_t fs9_ns_readlink(struct fs9_ns *ns, const struct fs9_route *r,
                        char *buf, size_t size)
{
    (void)ns;
    struct fs9_mount *m = r->mount;
    if (dead(m))
        return -EIO;
    if (!m->ops->readlink || (r->flags & FS9_RESOLVE_INNER))
        return -EINVAL;
    ssize_t n = m->ops->readlink(m->self, r->rel, buf, size);
    return n == -ENOSYS ? -EINVAL : n;
}

ssize_t fs9_ns_getxattr(struct fs9_ns *ns, const struct fs9_route *r,
                        const char *name, void *buf, size_t size)
{
    (void)ns;
    struct fs9_mount *m = r->mount;
    if (dead(m))
        return -EIO;
    if (!m->ops->getxattr)
        return -EOPNOTSUPP;
    ssize_t n = m->ops->getxattr(m->self, r->rel, name, buf, size);
    if (n == -ENOENT && (r->flags & FS9_RESOLVE_INNER))
        return -ENODATA;
    return n == -ENOSYS ? -EOPNOTSUPP : n;
}

int fs9_ns_setxattr(struct fs9_ns *ns, const struct fs9_ctx *ctx,
                    const struct fs9_route *r, const char *name,
                    const void *value, size_t size, uint32_t flags)
{
    (void)ns;
    struct fs9_mount *m = r->mount;
    if (dead(m))
        return -EIO;
    if (!m->ops->setxattr)
        return -EOPNOTSUPP;
    int rc = m->ops->setxattr(m->self, ctx, r->rel, name, value, size, flags);
    if (rc == -ENOENT && (r->flags & FS9_RESOLVE_INNER))
        return -EPERM;
    return no_enosys(rc, EOPNOTSUPP);
}

ssize_t fs9_ns_listxattr(struct fs9_ns *ns, const struct fs9_route *r,
                         char *buf, size_t size)
{
    (void)ns;
    struct fs9_mount *m = r->mount;
    if (dead(m))
        return -EIO;
    if (!m->ops->listxattr)
        return 0; /* no attributes */
    ssize_t n = m->ops->listxattr(m->self, r->rel, buf, size);
    if (n == -ENOENT && (r->flags & FS9_RESOLVE_INNER))
        return 0;
    return n == -ENOSYS ? 0 : n;
}

int fs9_ns_removexattr(struct fs9_ns *ns, const struct fs9_ctx *ctx,
                       const struct fs9_route *r, const char *name)
{
    (void)ns;
    struct fs9_mount *m = r->mount;
    if (dead(m))
        return -EIO;
    if (!m->ops->removexattr)
        return -EOPNOTSUPP;
    int rc = m->ops->removexattr(m->self, ctx, r->rel, name);
    if (rc == -ENOENT && (r->flags & FS9_RESOLVE_INNER))
        return -ENODATA;
    return no_enosys(rc, EOPNOTSUPP);
}
