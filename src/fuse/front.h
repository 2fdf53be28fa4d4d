/*
 * front — the libfuse low-level front end of fs9.
 *
 * Each FUSE request is copied into a small `struct op` (libfuse lends
 * names and file info only for the call), its nodeid turned into a
 * namespace path through the inode table, and the path routed to a
 * provider.  Calls to never-blocking providers run right here on the
 * request thread; all others go through the dispatcher to the pool, whose
 * workers send the reply themselves.  Nothing on a request thread waits
 * for a provider that may block.
 */
#ifndef FS9_FUSE_FRONT_H
#define FS9_FUSE_FRONT_H

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdint.h>

#include "core/inode.h"
#include "core/namespace.h"
#include "fuse/wire.h"

struct fs9_fuse_options {
    double entry_timeout;    /**< seconds the kernel may cache names */
    double attr_timeout;     /**< seconds the kernel may cache attributes */
    double negative_timeout; /**< seconds a "no such entry" may be cached */
    double ext_timeout;      /**< the three above for providers whose data
                                  changes behind our back (localfs) */
    int writeback;           /**< kernel write-back cache */
    int kernel_cache;        /**< keep page cache across opens */
    int direct_io;           /**< bypass the page cache everywhere */
    int inline_calls;        /**< call NONBLOCKING providers inline */
    int noxattr;             /**< answer xattr requests ENOSYS, so the
                                  kernel stops sending them (faster ls -l,
                                  no extended attributes) */
    int kernel_killpriv;     /**< leave suid/sgid/capability clearing to
                                  the kernel (no KILLPRIV_V2; wire.h) */
    unsigned max_write;      /**< bytes per write request */
    unsigned max_readahead;
    unsigned max_background;
};

struct fs9_poller;
struct fs9_inval;

struct fs9_fuse {
    struct fuse_session *se;
    struct fs9_ns *ns;
    struct fs9_inode_table *inodes;
    struct fs9_dispatcher *d;
    struct fs9_fuse_options opt;
    struct fs9_wire wire; /* /dev/fuse as read and written (wire.h) */

    /* Pending poll notifications (poll(2) on stream files). */
    pthread_mutex_t poll_lock;
    struct fs9_poller *pollers;

    /* Kernel cache invalidations, sent from their own thread: never from
     * inside a request, which may hold the very locks they need. */
    pthread_mutex_t inval_lock;
    pthread_cond_t inval_cond;
    struct fs9_inval *inval_head, *inval_tail;
    uint64_t inval_pushed; /* invalidations queued so far */
    uint64_t inval_done;   /* the last one delivered */
    int inval_stop;
    int inval_started;
    pthread_t inval_thread;
};

/** The operations table. */
extern const struct fuse_lowlevel_ops fs9_fuse_ops;

/** Set defaults. */
void fs9_fuse_options_init(struct fs9_fuse_options *o);

/** Prepare `fs` for `ns` (hooks into the namespace's notify and mount
 *  events, starts the invalidation thread).  The session is set later. */
int fs9_fuse_init(struct fs9_fuse *fs, struct fs9_ns *ns,
                  const struct fs9_fuse_options *opt);

/** Stop the invalidation thread and free what fs9_fuse_init made. */
void fs9_fuse_fini(struct fs9_fuse *fs);

/** Make the kernel write back, and wait for, the cached data of every file
 *  open for writing: fsync(2) of each through the mount at `mountpoint`.
 *  For a stop with the write-back cache, while the request loop still
 *  runs; never from a request thread.  A file that cannot be synced is
 *  logged; one gone from the namespace has nothing left to keep. */
void fs9_fuse_sync_open_files(struct fs9_fuse *fs, const char *mountpoint);

#endif
