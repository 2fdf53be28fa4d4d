/*
 * router — turns namespace operations into provider calls.
 *
 * A caller first routes a namespace path (fs9_ns_route: the mount trie
 * gives the provider and the path relative to it), then calls one of the
 * operations below with that route.  The router does what no provider
 * should have to know about:
 *
 *  - directories that exist only because a mount lies below them are
 *    synthesized, and listings show mount points the parent provider lacks;
 *  - a mount point or such a directory cannot be removed or renamed (EBUSY);
 *  - rename and link across providers fail with EXDEV, so `mv` copies;
 *  - st_ino is made unique across mounts (the first mount keeps its own);
 *  - an operation a provider lacks gets the errno that makes tools fall
 *    back correctly — never ENOSYS, which the kernel would remember for the
 *    whole filesystem;
 *  - a force-unmounted provider answers EIO.
 *
 * Everything here is synchronous and may block in the provider: callers
 * run it on a pool thread unless the provider is FS9_CAP_NONBLOCKING.
 */
#ifndef FS9_CORE_ROUTER_H
#define FS9_CORE_ROUTER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/namespace.h"

struct fs9_route {
    struct fs9_mount *mount; /**< referenced; fs9_route_end() drops it */
    const char *rel;         /**< path inside the provider (into `path`) */
    const char *path;        /**< the canonical namespace path, borrowed */
    unsigned flags;          /**< FS9_RESOLVE_* */
};

/** Route canonical `path`.  -ENOENT when nothing is mounted at "/". */
int fs9_ns_route(struct fs9_ns *ns, const char *path, struct fs9_route *r);
void fs9_route_end(struct fs9_route *r);

/** Can calls on this route run on the caller's thread? */
int fs9_route_inline(const struct fs9_route *r);

/** The path of handle `h` inside its provider, as it was at open. */
const char *fs9_handle_rel(const struct fs9_handle *h);

/* Handle-based helpers: take a reference for a call on handle `id`. */
struct fs9_handle *fs9_ns_handle_get(struct fs9_ns *ns, uint64_t id);
void fs9_ns_handle_put(struct fs9_ns *ns, struct fs9_handle *h);

/** Attributes of the routed object.  `h` (may be NULL) is an open handle
 *  on it, preferred by the provider. */
int fs9_ns_stat(struct fs9_ns *ns, const struct fs9_ctx *ctx,
                const struct fs9_route *r, struct fs9_handle *h,
                struct fs9_attr *out);

/** Attributes through an open handle only (the entry may be gone). */
int fs9_ns_fstat(struct fs9_ns *ns, const struct fs9_ctx *ctx,
                 struct fs9_handle *h, struct fs9_attr *out);

int fs9_ns_wstat(struct fs9_ns *ns, const struct fs9_ctx *ctx,
                 const struct fs9_route *r, struct fs9_handle *h,
                 const struct fs9_wstat *w, struct fs9_attr *out);

int fs9_ns_statfs(struct fs9_ns *ns, const struct fs9_route *r,
                  struct fs9_statfs *out);

/** Open (FS9_OPEN_* flags) and register a handle: *id gets its number
 *  (0 with FS9_OPEN_NOHANDLE).  `nodeid` is recorded in the handle. */
int fs9_ns_open(struct fs9_ns *ns, const struct fs9_ctx *ctx,
                const struct fs9_route *r, uint32_t flags, uint32_t mode,
                uint64_t nodeid, uint64_t *id, struct fs9_open_out *out);

/** Create a special file (FIFO, socket, device) or a regular file. */
int fs9_ns_mknod(struct fs9_ns *ns, const struct fs9_ctx *ctx,
                 const struct fs9_route *r, uint32_t mode, uint64_t rdev,
                 struct fs9_attr *out);

ssize_t fs9_ns_read(struct fs9_ns *ns, struct fs9_handle *h, void *buf,
                    size_t size, uint64_t off);
ssize_t fs9_ns_write(struct fs9_ns *ns, struct fs9_handle *h,
                     const void *buf, size_t size, uint64_t off);

/** Unregister handle `id` and close it (with `sync`) once no call is using
 *  it any more.  Returns the provider's close result when the close
 *  happened now, 0 when it was left to the last call in flight. */
int fs9_ns_close(struct fs9_ns *ns, uint64_t id, int sync);

int fs9_ns_fsync(struct fs9_ns *ns, struct fs9_handle *h, int datasync);
int fs9_ns_fallocate(struct fs9_ns *ns, struct fs9_handle *h, int mode,
                     uint64_t off, uint64_t len);
int fs9_ns_poll(struct fs9_ns *ns, struct fs9_handle *h, uint32_t events,
                uint32_t *revents);

/** One entry of a listing.  `next` resumes the listing after this entry. */
struct fs9_ns_dirent {
    const char *name;
    uint64_t next;
    int full_attr; /**< attr complete; else only ino and type bits */
    struct fs9_attr attr;
};

/** Return 0 to go on, 1 when full (the entry is not consumed), <0 abort. */
typedef int (*fs9_ns_dirent_fn)(void *arg, const struct fs9_ns_dirent *e);

/** List the directory open as `h` from position `off` (0: start): ".",
 *  "..", the mount points and directories leading to them, then the
 *  provider's entries minus those shadowed by mounts. */
int fs9_ns_readdir(struct fs9_ns *ns, struct fs9_handle *h, uint64_t off,
                   uint32_t flags, fs9_ns_dirent_fn emit, void *arg);

int fs9_ns_remove(struct fs9_ns *ns, const struct fs9_ctx *ctx,
                  const struct fs9_route *r, uint32_t flags);
int fs9_ns_rename(struct fs9_ns *ns, const struct fs9_ctx *ctx,
                  const struct fs9_route *from, const struct fs9_route *to,
                  uint32_t flags);
int fs9_ns_link(struct fs9_ns *ns, const struct fs9_ctx *ctx,
                const struct fs9_route *from, const struct fs9_route *to,
                struct fs9_attr *out);
int fs9_ns_symlink(struct fs9_ns *ns, const struct fs9_ctx *ctx,
                   const char *target, const struct fs9_route *r,
                   struct fs9_attr *out);
ssize_t fs9_ns_readlink(struct fs9_ns *ns, const struct fs9_route *r,
                        char *buf, size_t size);
ssize_t fs9_ns_getxattr(struct fs9_ns *ns, const struct fs9_route *r,
                        const char *name, void *buf, size_t size);
int fs9_ns_setxattr(struct fs9_ns *ns, const struct fs9_ctx *ctx,
                    const struct fs9_route *r, const char *name,
                    const void *value, size_t size, uint32_t flags);
ssize_t fs9_ns_listxattr(struct fs9_ns *ns, const struct fs9_route *r,
                         char *buf, size_t size);
int fs9_ns_removexattr(struct fs9_ns *ns, const struct fs9_ctx *ctx,
                       const struct fs9_route *r, const char *name);

/** The st_ino the kernel sees for provider inode `ino` of mount `m`. */
uint64_t fs9_ns_ino(const struct fs9_mount *m, uint64_t ino);

#endif
