/*
 * handle — the registry of open handles.
 *
 * Every open file or directory in a namespace is one struct fs9_handle,
 * named by a u64 id from an idmap (64 shards, ids never reused).  The FUSE
 * `fh` is that id; fs9d hands the same ids to its clients.
 *
 * Lifetime is a reference count: the registry holds one reference while
 * the handle is registered and every call in flight holds one more.
 * fs9_registry_take() unregisters (no new calls can find the id) and gives
 * the registry's reference to the caller; when the last reference goes the
 * registry's close callback runs — so a close that races a read waits for
 * the read instead of freeing the handle under its feet.
 */
#ifndef FS9_CORE_HANDLE_H
#define FS9_CORE_HANDLE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct fs9_mount;

struct fs9_handle {
    uint64_t id;              /**< set by fs9_registry_add() */
    struct fs9_mount *mount;  /**< holds one mount reference */
    void *ph;                 /**< the provider's own handle */
    uint32_t flags;           /**< FS9_OPEN_* it was opened with */
    uint32_t out_flags;       /**< FS9_OPEN_OUT_* the provider returned */
    atomic_uint refs;         /**< registry + calls in flight */
    atomic_uint last_access;  /**< coarse monotonic seconds */
    atomic_int failed;        /**< set by a forced unmount: calls get EIO */
    uint32_t ns_flags;        /**< for the router (router.h) */
    uint64_t nodeid;          /**< FUSE node it was opened on (0: none) */
    char *path;               /**< namespace path at open time; owned */
};

struct fs9_registry;

/** Called once per handle when its last reference is released: close the
 *  provider handle and free `h` (and h->path).  May run on any thread. */
typedef void (*fs9_handle_close_fn)(struct fs9_handle *h, void *arg);

/** A new registry.  `on_close` runs when a handle's last reference goes. */
struct fs9_registry *fs9_registry_new(fs9_handle_close_fn on_close,
                                      void *arg);

/** Free the registry.  It must be empty (close every handle first). */
void fs9_registry_free(struct fs9_registry *r);

/** Register `h` (refs set to 1, id assigned and returned).  0 on ENOMEM. */
uint64_t fs9_registry_add(struct fs9_registry *r, struct fs9_handle *h);

/** Find `id` and take a reference for a call, updating last_access.  NULL
 *  when the id is unknown or already unregistered. */
struct fs9_handle *fs9_registry_acquire(struct fs9_registry *r, uint64_t id);

/** Drop a reference taken by acquire (or the one take() handed over).  The
 *  last one runs the close callback. */
void fs9_registry_release(struct fs9_registry *r, struct fs9_handle *h);

/** Unregister `id` and hand the registry's reference to the caller, who
 *  releases it when done.  NULL when unknown. */
struct fs9_handle *fs9_registry_take(struct fs9_registry *r, uint64_t id);

/** Number of registered handles. */
size_t fs9_registry_count(struct fs9_registry *r);

/** Bytes the registry's own tables use (not the handles or their paths),
 *  for /.fs9/stats and the benchmarks. */
size_t fs9_registry_memory(struct fs9_registry *r);

/** Ids of registered handles for which `match` (may be NULL: all) returns
 *  non-zero, written to a malloc'ed array the caller frees; *count set.
 *  `match` runs under a shard lock and must not call the registry.  Used to
 *  close everything at shutdown and on forced unmount, and to sweep idle
 *  handles.  NULL (with *count 0) only when out of memory. */
uint64_t *fs9_registry_ids(struct fs9_registry *r,
                           int (*match)(const struct fs9_handle *h,
                                        void *arg),
                           void *arg, size_t *count);

/** Coarse monotonic clock in seconds, as stored in last_access. */
uint32_t fs9_coarse_seconds(void);

#endif
