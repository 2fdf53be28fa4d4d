/*
 * namespace — one FS9 namespace: the providers known to it (built in and
 * loaded from plugins), the mount table, the open handles, and the
 * dispatcher that runs provider calls.
 *
 * Mounting creates a provider instance from a key=value configuration and
 * hands it a struct fs9_host whose services (log, clock, notify) know which
 * mount they belong to.  notify() reaches the dispatcher (wake parked reads)
 * and the front end that owns kernel caches (see fs9_ns_set_notify_hook).
 */
#ifndef FS9_CORE_NAMESPACE_H
#define FS9_CORE_NAMESPACE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "core/dispatch.h"
#include "core/handle.h"
#include "core/mount.h"
#include "core/stats.h"
#include "fs9/provider.h"

/** A provider the namespace can mount. */
struct fs9_catalog_entry {
    const struct fs9_provider_ops *ops;
    char *origin; /**< "built-in" or the plugin's file; owned */
    void *dl;     /**< dlopen handle of a plugin, NULL when built in */
};

struct fs9_ns_config {
    struct fs9_dispatch_config dispatch;
    uid_t owner; /**< the user who mounted: may write /.fs9/ctl */
};

struct fs9_ns;

/** A namespace with the built-in providers registered and nothing mounted.
 *  NULL when out of memory or the dispatcher cannot start. */
struct fs9_ns *fs9_ns_new(const struct fs9_ns_config *cfg);

/** Close every handle (with sync), unmount everything, stop the dispatcher,
 *  free.  Returns the number of handles whose close reported an error. */
int fs9_ns_free(struct fs9_ns *ns);

struct fs9_mount_table *fs9_ns_mounts(struct fs9_ns *ns);
struct fs9_registry *fs9_ns_handles(struct fs9_ns *ns);
struct fs9_dispatcher *fs9_ns_dispatcher(struct fs9_ns *ns);
uid_t fs9_ns_owner(struct fs9_ns *ns);

/** When the namespace was made: the times of synthesized directories. */
struct timespec fs9_ns_birth(struct fs9_ns *ns);

/** Register a provider table under its name; `origin` is copied.
 *  -EEXIST (with a message in err) when the name is taken. */
int fs9_ns_add_provider(struct fs9_ns *ns, const struct fs9_provider_ops *ops,
                        const char *origin, void *dl, char *err,
                        size_t errlen);

/** The provider registered as `name`, or NULL. */
const struct fs9_catalog_entry *fs9_ns_find_provider(struct fs9_ns *ns,
                                                     const char *name);

/** Call fn for every registered provider, in registration order. */
void fs9_ns_foreach_provider(struct fs9_ns *ns,
                             void (*fn)(void *arg,
                                        const struct fs9_catalog_entry *e),
                             void *arg);

/** Mount provider `name` at `path` with `items` as its configuration.
 *  On failure returns a negative errno and writes one line into `err`:
 *  unknown provider, bad path, path already mounted, or the provider's own
 *  create() message. */
int fs9_ns_mount(struct fs9_ns *ns, const char *path, const char *name,
                 const struct fs9_config_item *items, size_t count,
                 char *err, size_t errlen);

/** Unmount what is mounted at `path`.  With handles still open it fails
 *  with -EBUSY unless `force`: then those handles fail with EIO from now on
 *  and are closed.  -ENOENT when nothing is mounted there, -EBUSY for "/"
 *  or a mount with mounts below it. */
int fs9_ns_unmount(struct fs9_ns *ns, const char *path, int force,
                   char *err, size_t errlen);

/** Receives notify() of every mount: `path` is the namespace path of the
 *  object, `events` FS9_NOTIFY_*.  Called on the provider's thread. */
typedef void (*fs9_notify_hook)(void *arg, struct fs9_mount *m,
                                const char *path, unsigned events);
void fs9_ns_set_notify_hook(struct fs9_ns *ns, fs9_notify_hook hook,
                            void *arg);

/** Called after a mount or unmount at `path`, for cache invalidation. */
typedef void (*fs9_mount_hook)(void *arg, const char *path);
void fs9_ns_set_mount_hook(struct fs9_ns *ns, fs9_mount_hook hook, void *arg);

/** Mount the control files (ctl.h) at FS9_CONTROL_PATH. */
int fs9_ns_mount_control(struct fs9_ns *ns, char *err, size_t errlen);

/** The namespace a provider instance belongs to, from its host services.
 *  For providers built into the core (the control files) only. */
struct fs9_ns *fs9_ns_of_host(const struct fs9_host *host);

/** Remember why the last control command failed (shown in
 *  /.fs9/error), and read it back (returns its length). */
void fs9_ns_set_error(struct fs9_ns *ns, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
size_t fs9_ns_last_error(struct fs9_ns *ns, char *buf, size_t size);

/** Operation statistics of the namespace, recorded by its front end. */
struct fs9_stats *fs9_ns_stats(struct fs9_ns *ns);

/** Lines the front end adds to /.fs9/stats ("inodes.live N"): the hook
 *  appends to buf from *len on, never past size - 1. */
typedef void (*fs9_info_hook)(void *arg, char *buf, size_t size,
                              size_t *len);
void fs9_ns_set_info_hook(struct fs9_ns *ns, fs9_info_hook hook, void *arg);
void fs9_ns_info(struct fs9_ns *ns, char *buf, size_t size, size_t *len);

/** Key parked reads wait on for object `rel` of mount `m`. */
uint64_t fs9_ns_park_key(const struct fs9_mount *m, const char *rel);

#endif
