/*
 * mount — the mount table: which provider serves which part of the
 * namespace.
 *
 * A trie keyed on path components.  Resolving a path walks its components
 * once and returns the deepest mounted provider with the rest of the path:
 * O(depth), independent of how many mounts exist.  "/ab" is not below "/a".
 *
 * Reads vastly outnumber changes, so readers never take a lock: the trie
 * is immutable once published; a change builds new nodes along the changed
 * path (path copying) and publishes a new root with one atomic store;
 * liburcu (the bulletproof flavour, which needs no thread registration)
 * frees the old nodes after every reader has moved on.  A resolve returns
 * the mount with a reference taken, so a provider stays alive while calls
 * on it run even if it is unmounted meanwhile.
 */
#ifndef FS9_CORE_MOUNT_H
#define FS9_CORE_MOUNT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "fs9/provider.h"

struct fs9_mount_queue;

struct fs9_mount {
    char *path;        /**< canonical: "/" or "/a/b"; owned */
    char *source;      /**< provider name as given, for /.fs9/mounts; owned */
    char *options;     /**< "k=v,k=v" as given, for /.fs9/mounts; owned */
    const struct fs9_provider_ops *ops;
    void *self;        /**< provider instance */
    uint64_t caps;     /**< ops->capabilities(self), read once */
    uint32_t index;    /**< small unique number; 0 for the first mount */
    atomic_int dead;   /**< forced unmount: every call fails with EIO */
    atomic_uint_fast64_t refs;         /**< see fs9_mount_ref() */
    atomic_uint_fast64_t open_handles; /**< handles open on this mount */
    struct fs9_host host;              /**< services handed to the provider */
    void *owner;       /**< for the code that created the mount */
    /** Runs when the last reference goes: destroy the provider, free. */
    void (*release)(struct fs9_mount *m);
    struct fs9_mount_queue *queue; /**< the dispatcher's per-mount state */
};

/** Take a reference on `m`. */
void fs9_mount_ref(struct fs9_mount *m);

/** Drop a reference; the last one calls m->release(m). */
void fs9_mount_unref(struct fs9_mount *m);

/** Normalize `in` into `out` (size `outlen`): leading slash, single
 *  slashes, no trailing slash except for "/" itself; "." components
 *  dropped.  -EINVAL for ".." components, empty or relative paths,
 *  -ENAMETOOLONG when it does not fit. */
int fs9_path_normalize(const char *in, char *out, size_t outlen);

struct fs9_mount_table;

struct fs9_mount_table *fs9_mount_table_new(void);

/** Free the table, dropping its reference on every mount still in it. */
void fs9_mount_table_free(struct fs9_mount_table *t);

/** Mount `m` at m->path (which must be canonical).  The table takes its
 *  own reference.  -EEXIST if something is mounted exactly there, -EINVAL
 *  for a non-canonical path, -ENOMEM. */
int fs9_mount_table_add(struct fs9_mount_table *t, struct fs9_mount *m);

/** Unmount what is mounted at `path` and hand the table's reference to
 *  *out (the caller unrefs it).  -ENOENT when nothing is mounted there.
 *  If `check` is given it runs under the writer lock and a non-zero return
 *  (a negative errno, e.g. -EBUSY) aborts the removal with that value. */
int fs9_mount_table_remove(struct fs9_mount_table *t, const char *path,
                           int (*check)(struct fs9_mount *m, void *arg),
                           void *arg, struct fs9_mount **out);

/** Bits of the flags fs9_mount_table_resolve() reports. */
enum {
    /** The path is exactly the returned mount's mount point. */
    FS9_RESOLVE_MOUNTPOINT = 1u << 0,
    /** Some mount lies strictly below the path: it must appear as a
     *  directory (listing its trie children) even where the provider
     *  serving it has no such directory. */
    FS9_RESOLVE_INNER = 1u << 1,
};

/** The deepest mount whose mount point is `path` or a component prefix of
 *  it, with a reference taken (fs9_mount_unref() when done); NULL when
 *  nothing covers `path` (no mount at "/").  `*rel` points into `path` at
 *  the remainder, without a leading slash ("" for the mount point itself).
 *  `*flags` (may be NULL) gets FS9_RESOLVE_* bits.  `path` is canonical. */
struct fs9_mount *fs9_mount_table_resolve(struct fs9_mount_table *t,
                                          const char *path, const char **rel,
                                          unsigned *flags);

/** Call fn(arg, name) for each child of `dirpath` in the trie — each a
 *  mount point or an inner node leading to one — so listings can show
 *  them, in no particular order.  Returns the number of children, or fn's
 *  first non-zero return.  fn runs inside an RCU read-side section: it
 *  must not block for long nor add or remove mounts (that would wait for
 *  itself); `name` is valid only during the call. */
int fs9_mount_table_children(struct fs9_mount_table *t, const char *dirpath,
                             int (*fn)(void *arg, const char *name),
                             void *arg);

/** Is `name` a child of `dirpath` in the trie (see above)? */
int fs9_mount_table_has_child(struct fs9_mount_table *t, const char *dirpath,
                              const char *name);

/** Call fn(arg, m) for every mount, in path order (a parent before what
 *  is below it).  fn's first non-zero return stops the walk and is
 *  returned.  Mounts are referenced for the duration of the call. */
int fs9_mount_table_foreach(struct fs9_mount_table *t,
                            int (*fn)(void *arg, struct fs9_mount *m),
                            void *arg);

/** Number of mounts. */
size_t fs9_mount_table_count(struct fs9_mount_table *t);

#endif
