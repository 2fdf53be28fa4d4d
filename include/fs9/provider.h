/*
 * FS9 provider ABI — the one header a storage provider is written against.
 *
 * A provider is a table of functions (struct fs9_provider_ops) in the style
 * of SQLite's sqlite3_io_methods: a version field, growth only by appending,
 * and NULL meaning "not supported".  The same table serves providers built
 * into fs9 (memfs, localfs) and plugins loaded from shared objects, which
 * export one function named FS9_PROVIDER_ENTRY returning their table.
 *
 * Rules every provider follows:
 *
 *  - Errors are negative errno values (-ENOENT, -EISDIR, ...).  FS9 hands
 *    them to the application unchanged, so pick the errno POSIX names.
 *  - Memory never crosses the boundary except what the caller owns: reads
 *    fill the caller's buffer, attributes are written into caller-owned
 *    structs, strings passed in are borrowed for the duration of the call.
 *  - Paths are relative to the provider's own root, without a leading
 *    slash; the root itself is "" (the empty string).  Components are
 *    separated by single slashes and are never "." or "..".
 *  - Calls arrive concurrently from several threads.  A provider is
 *    thread-safe; a handle may see read and write concurrently, but never
 *    any call after close() has started on it.
 *  - A call may block (disk, network) unless the provider declares
 *    FS9_CAP_NONBLOCKING.  FS9 runs blocking providers on a thread pool, so
 *    a slow provider never holds up the rest of the namespace.
 *
 * The manual page fs9-provider(3) walks through writing one, with the
 * hellofs plugin as the worked example.
 */
#ifndef FS9_PROVIDER_H
#define FS9_PROVIDER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/** ABI version of this header.  A plugin built against another version is
 *  refused by the loader; the version only changes when the table changes
 *  incompatibly, never for an append (see struct_size). */
#define FS9_PROVIDER_ABI_VERSION 1

/** Name of the function every plugin shared object exports:
 *  `const struct fs9_provider_ops *fs9_provider_entry(void);` */
#define FS9_PROVIDER_ENTRY "fs9_provider_entry"

/* ------------------------------------------------------------------------
 * Capabilities.  The bit positions are those of the original FS9 so tools
 * and documents carry over; bits from 53 up are FS9-in-C additions.
 * ---------------------------------------------------------------------- */
#define FS9_CAP_READ           (UINT64_C(1) << 0)
#define FS9_CAP_WRITE          (UINT64_C(1) << 1)
#define FS9_CAP_CREATE         (UINT64_C(1) << 2)
#define FS9_CAP_DELETE         (UINT64_C(1) << 3)
#define FS9_CAP_RENAME         (UINT64_C(1) << 4)
#define FS9_CAP_TRUNCATE       (UINT64_C(1) << 5)
#define FS9_CAP_CHMOD          (UINT64_C(1) << 10)
#define FS9_CAP_CHOWN          (UINT64_C(1) << 11)
#define FS9_CAP_UTIME          (UINT64_C(1) << 12)
#define FS9_CAP_HARDLINK       (UINT64_C(1) << 20)
#define FS9_CAP_SYMLINK        (UINT64_C(1) << 21)
#define FS9_CAP_SYNC           (UINT64_C(1) << 30)
#define FS9_CAP_APPEND         (UINT64_C(1) << 31)
#define FS9_CAP_RANDOM_WRITE   (UINT64_C(1) << 32)
#define FS9_CAP_STREAMING      (UINT64_C(1) << 33)
/** read() may return -EAGAIN meaning "no data yet"; FS9 parks the request
 *  until the provider calls host->notify() with FS9_NOTIFY_DATA. */
#define FS9_CAP_BLOCKING_READ  (UINT64_C(1) << 34)
#define FS9_CAP_VERSIONING     (UINT64_C(1) << 40)
#define FS9_CAP_ETAG           (UINT64_C(1) << 41)
#define FS9_CAP_ATOMIC_RENAME  (UINT64_C(1) << 42)
#define FS9_CAP_DIRECTORY      (UINT64_C(1) << 43)
#define FS9_CAP_XATTR          (UINT64_C(1) << 44)
#define FS9_CAP_SYNTHETIC      (UINT64_C(1) << 50)
#define FS9_CAP_STATEFUL_READ  (UINT64_C(1) << 51)
#define FS9_CAP_STATEFUL_WRITE (UINT64_C(1) << 52)
/** No call ever blocks (pure memory, short critical sections): FS9 may
 *  call the provider directly on the thread that received the request. */
#define FS9_CAP_NONBLOCKING    (UINT64_C(1) << 53)
/** Objects may change other than through this mount (a host directory, a
 *  shared store): FS9 keeps kernel caches short-lived for this provider. */
#define FS9_CAP_EXTERNAL_CHANGES (UINT64_C(1) << 54)

/* ------------------------------------------------------------------------
 * Plain data exchanged with the provider.
 * ---------------------------------------------------------------------- */

/** Who is asking.  Taken from the request (FUSE context, server token);
 *  valid only for the duration of the call. */
struct fs9_ctx {
    uint32_t uid;
    uint32_t gid;
    int32_t pid;    /**< 0 when not known (remote callers) */
    uint32_t umask; /**< already applied to modes passed in; informative */
};

/** Attributes of one object.  `mode` carries the type bits (S_IFREG, ...).
 *  `blocks` counts 512-byte units, as st_blocks does.  `ino` is the
 *  provider's own stable inode number; it must be non-zero and must not
 *  change for the lifetime of the object. */
struct fs9_attr {
    uint64_t ino;
    uint64_t size;
    uint64_t blocks;
    uint64_t rdev;
    uint32_t mode;
    uint32_t nlink;
    uint32_t uid;
    uint32_t gid;
    uint32_t blksize; /**< preferred I/O size; 0 lets FS9 choose */
    uint32_t reserved;
    struct timespec atime;
    struct timespec mtime;
    struct timespec ctime;
};

/** Bits of fs9_wstat.valid: which changes to apply.  All listed changes are
 *  applied together or not at all. */
enum {
    FS9_WSTAT_MODE = 1u << 0,      /**< permission bits (07777) */
    FS9_WSTAT_UID = 1u << 1,
    FS9_WSTAT_GID = 1u << 2,
    FS9_WSTAT_SIZE = 1u << 3,      /**< truncate or extend (holes read 0) */
    FS9_WSTAT_ATIME = 1u << 4,     /**< set atime to .atime */
    FS9_WSTAT_MTIME = 1u << 5,     /**< set mtime to .mtime */
    FS9_WSTAT_ATIME_NOW = 1u << 6, /**< set atime to the current time */
    FS9_WSTAT_MTIME_NOW = 1u << 7, /**< set mtime to the current time */
    FS9_WSTAT_CTIME = 1u << 8,     /**< set ctime to .ctime (rarely used) */
};

/** A Plan 9 wstat: a set of optional changes applied together. */
struct fs9_wstat {
    uint32_t valid; /**< FS9_WSTAT_* bits */
    uint32_t mode;
    uint32_t uid;
    uint32_t gid;
    uint64_t size;
    struct timespec atime;
    struct timespec mtime;
    struct timespec ctime;
};

/** Filesystem statistics (statvfs). */
struct fs9_statfs {
    uint64_t bsize;   /**< block size the counts below are in */
    uint64_t blocks;  /**< total */
    uint64_t bfree;   /**< free */
    uint64_t bavail;  /**< free for unprivileged users */
    uint64_t files;   /**< total inodes, 0 when unlimited */
    uint64_t ffree;
    uint64_t namemax; /**< longest name, 255 when in doubt */
};

/** open() flags.  READ/WRITE give the access mode; the others are the
 *  familiar O_* flags.  mkdir is open(CREATE|EXCL|DIRECTORY|NOHANDLE). */
enum {
    FS9_OPEN_READ = 1u << 0,
    FS9_OPEN_WRITE = 1u << 1,
    FS9_OPEN_CREATE = 1u << 2,    /**< create if missing (O_CREAT) */
    FS9_OPEN_EXCL = 1u << 3,      /**< with CREATE: fail -EEXIST if present */
    FS9_OPEN_TRUNC = 1u << 4,     /**< truncate a regular file to 0 */
    FS9_OPEN_APPEND = 1u << 5,    /**< every write goes to the end */
    FS9_OPEN_DIRECTORY = 1u << 6, /**< must be (or create) a directory */
    FS9_OPEN_NONBLOCK = 1u << 7,  /**< O_NONBLOCK: informative; FS9 itself
                                       turns -EAGAIN into EAGAIN for these */
    FS9_OPEN_SYNC = 1u << 8,      /**< O_SYNC / O_DSYNC */
    FS9_OPEN_DIRECT = 1u << 9,    /**< O_DIRECT */
    FS9_OPEN_NOATIME = 1u << 10,
    FS9_OPEN_NOHANDLE = 1u << 11, /**< create only; return no handle */
};

/** Bits a provider may set in fs9_open_out.flags. */
enum {
    FS9_OPEN_OUT_DIRECT_IO = 1u << 0,   /**< bypass the page cache (streams) */
    FS9_OPEN_OUT_KEEP_CACHE = 1u << 1,  /**< cached data is still valid */
    FS9_OPEN_OUT_NONSEEKABLE = 1u << 2, /**< offsets are meaningless */
};

/** What open() returns, into memory the caller owns. */
struct fs9_open_out {
    void *handle;         /**< provider's handle; unset with NOHANDLE */
    uint32_t flags;       /**< FS9_OPEN_OUT_* */
    uint32_t created;     /**< set to 1 when the object was created */
    struct fs9_attr attr; /**< attributes after the open (and truncate) */
};

/** One directory entry, passed to an fs9_dirent_fn.  `attr.ino` and the
 *  type bits of `attr.mode` are always set; the rest of `attr` only when
 *  `full_attr` is 1.  `cookie` resumes the listing after this entry. */
struct fs9_dirent {
    const char *name; /**< borrowed for the duration of the callback */
    uint64_t cookie;  /**< non-zero, below 2^63 */
    uint32_t full_attr;
    uint32_t reserved;
    struct fs9_attr attr;
};

/** Receives directory entries.  Returns 0 to continue, 1 when the caller's
 *  buffer is full (the provider stops; this entry was NOT consumed and will
 *  be asked for again by cookie), or a negative errno to abort. */
typedef int (*fs9_dirent_fn)(void *arg, const struct fs9_dirent *entry);

enum {
    FS9_READDIR_PLUS = 1u << 0, /**< full attributes wanted if cheap */
};

enum {
    FS9_REMOVE_DIR = 1u << 0, /**< rmdir semantics: -ENOTDIR for a
                                   non-directory, -ENOTEMPTY if not empty.
                                   Without it: unlink, -EISDIR for a dir. */
};

enum {
    FS9_RENAME_NOREPLACE = 1u << 0, /**< -EEXIST if the target exists */
    FS9_RENAME_EXCHANGE = 1u << 1,  /**< swap source and target atomically */
};

enum {
    FS9_XATTR_CREATE = 1u << 0,  /**< -EEXIST if the attribute exists */
    FS9_XATTR_REPLACE = 1u << 1, /**< -ENODATA if it does not */
};

/** Event bits for poll() and host->notify(). */
enum {
    FS9_POLL_IN = 1u << 0,
    FS9_POLL_OUT = 1u << 1,
    FS9_POLL_HUP = 1u << 2,
};

enum {
    /** New data can be read at `path` (streams, topics): wakes parked
     *  reads and pollers of that object. */
    FS9_NOTIFY_DATA = 1u << 0,
    /** `path` changed other than through this mount: cached attributes and
     *  data of the object are dropped. */
    FS9_NOTIFY_CHANGED = 1u << 1,
    /** `path` appeared or disappeared other than through this mount:
     *  the cached directory entry is dropped. */
    FS9_NOTIFY_ENTRY = 1u << 2,
};

enum {
    FS9_LOG_ERROR = 0,
    FS9_LOG_WARN = 1,
    FS9_LOG_INFO = 2,
    FS9_LOG_DEBUG = 3,
};

/** One key=value setting from the configuration, the command line or ctl. */
struct fs9_config_item {
    const char *key;
    const char *value;
};

/** A provider's configuration.  Borrowed for the duration of create(): copy
 *  what you keep. */
struct fs9_config {
    const struct fs9_config_item *items;
    size_t count;
    const char *mount_path; /**< where in the namespace it is mounted */
};

/** Services FS9 offers a provider instance.  Valid from create() until
 *  destroy() returns; every function may be called from any thread. */
struct fs9_host {
    uint32_t abi_version; /**< FS9_PROVIDER_ABI_VERSION of the host */
    uint32_t struct_size; /**< sizeof(struct fs9_host) of the host */
    void *ctx;            /**< pass back as the first argument */

    /** Log one line (no trailing newline needed).  Levels FS9_LOG_*. */
    void (*log)(void *ctx, int level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

    /** Current time of `clock_id` (CLOCK_REALTIME, CLOCK_MONOTONIC), so
     *  tests can substitute a clock. */
    struct timespec (*now)(void *ctx, clockid_t clock_id);

    /** "This object changed / has data": `path` relative to the provider
     *  root, `events` FS9_NOTIFY_* bits.  Never blocks and never calls back
     *  into the provider from inside notify(); safe to call while holding
     *  the provider's own locks. */
    void (*notify)(void *ctx, const char *path, unsigned events);
};

/* ------------------------------------------------------------------------
 * The provider table.
 * ---------------------------------------------------------------------- */

/** A provider.  `self` is the instance pointer returned by create().  For
 *  every function the caller's strings and structs are borrowed for the
 *  duration of the call only.
 *
 *  The first block is required; from `rename` on every entry is optional
 *  (NULL: FS9 answers -ENOSYS or -EOPNOTSUPP, or emulates where it can).
 *  New entries are only ever appended; struct_size tells FS9 how much of
 *  the table the provider knows about. */
struct fs9_provider_ops {
    uint32_t abi_version; /**< FS9_PROVIDER_ABI_VERSION */
    uint32_t struct_size; /**< sizeof(struct fs9_provider_ops) */
    const char *name;     /**< unique, [a-z0-9_-]+, e.g. "memfs" */
    const char *version;  /**< the provider's own version, e.g. "1.0.0" */
    const char *description; /**< one line */

    /** Create an instance from `cfg`.  On failure return a negative errno
     *  and write a one-line reason into `err` (size `errlen`), e.g.
     *  "root=/nope: No such file or directory" or "unknown key 'foo'". */
    int (*create)(const struct fs9_host *host, const struct fs9_config *cfg,
                  void **self, char *err, size_t errlen);

    /** Free the instance.  Called once, after every handle was closed. */
    void (*destroy)(void *self);

    /** FS9_CAP_* bits; constant for the life of the instance. */
    uint64_t (*capabilities)(void *self);

    /** Attributes of `path`, not following a final symlink.  When `handle`
     *  is not NULL it is an open handle on the same object, which the
     *  provider should prefer (the object may have been removed while
     *  open, and path may then be stale). */
    int (*stat)(void *self, const struct fs9_ctx *ctx, const char *path,
                void *handle, struct fs9_attr *out);

    /** Apply the changes in `w` together.  `handle` as for stat.  On success
     *  fills `out` with the attributes afterwards.  Changing size on a
     *  directory is -EISDIR; ctime moves on any change. */
    int (*wstat)(void *self, const struct fs9_ctx *ctx, const char *path,
                 void *handle, const struct fs9_wstat *w,
                 struct fs9_attr *out);

    /** Statistics of the filesystem holding `path`. */
    int (*statfs)(void *self, const char *path, struct fs9_statfs *out);

    /** Open (and with FS9_OPEN_CREATE create) `path`.  `mode` holds the
     *  permission bits for a new object (the umask already applied) and,
     *  with FS9_OPEN_CREATE, optionally a type: S_IFREG (or 0) for a file,
     *  S_IFDIR together with FS9_OPEN_DIRECTORY for a directory, S_IFIFO or
     *  S_IFSOCK for special files (always with NOHANDLE).  New objects
     *  belong to ctx->uid/ctx->gid (or the directory's group if it is
     *  set-group-ID).  A directory is opened for readdir() only.
     *  Errors: -ENOENT, -EEXIST, -ENOTDIR, -EISDIR (write access or TRUNC on
     *  a directory), -ELOOP (a final symlink), -ENOSPC, ... */
    int (*open)(void *self, const struct fs9_ctx *ctx, const char *path,
                uint32_t flags, uint32_t mode, struct fs9_open_out *out);

    /** Read up to `size` bytes at `offset` into `buf` (caller-owned).
     *  Returns the count (0 at end of file) or a negative errno.  With
     *  FS9_CAP_BLOCKING_READ, -EAGAIN means "no data yet": FS9 parks the
     *  request without holding a thread and retries after notify().
     *  Beware: the kernel splits a read(2) larger than about 1 MiB into
     *  pieces and asks for the next only when one comes back full, so a
     *  blocking provider that fills a piece exactly with the last data it
     *  has parks the next piece — and the application's read(2) waits with
     *  data in hand.  Return one byte less in that case (streamfs does). */
    ssize_t (*read)(void *self, void *handle, void *buf, size_t size,
                    uint64_t offset);

    /** Write `size` bytes at `offset` (at the end for APPEND handles).
     *  Returns the count written or a negative errno; a short count is
     *  only allowed together with an error condition (-ENOSPC next). */
    ssize_t (*write)(void *self, void *handle, const void *buf, size_t size,
                     uint64_t offset);

    /** Close `handle`; with `sync` make its data durable first.  The
     *  handle is invalid afterwards even when an error is returned. */
    int (*close)(void *self, void *handle, int sync);

    /** List the directory open as `handle`, starting after `cookie` (0:
     *  from the beginning), calling `emit` once per entry, "." and ".."
     *  excluded.  `flags` FS9_READDIR_*.  Returns 0 at the end or when emit
     *  returned 1, or a negative errno. */
    int (*readdir)(void *self, void *handle, uint64_t cookie, uint32_t flags,
                   fs9_dirent_fn emit, void *emit_arg);

    /** Remove `path`: unlink, or rmdir with FS9_REMOVE_DIR.  An object that
     *  is still open stays readable and writable through its handles until
     *  the last close. */
    int (*remove)(void *self, const struct fs9_ctx *ctx, const char *path,
                  uint32_t flags);

    /* ---- optional operations, appended; NULL when not supported ---- */

    /** Rename `from` to `to`, replacing `to` per POSIX rename(2) rules
     *  (-EISDIR, -ENOTDIR, -ENOTEMPTY, -EINVAL for a directory into its own
     *  subtree), or with FS9_RENAME_* flags. */
    int (*rename)(void *self, const struct fs9_ctx *ctx, const char *from,
                  const char *to, uint32_t flags);

    /** Make `to` a new name (hard link) for `from`; fills `out`. */
    int (*link)(void *self, const struct fs9_ctx *ctx, const char *from,
                const char *to, struct fs9_attr *out);

    /** Create symlink `path` pointing at `target`; fills `out`. */
    int (*symlink)(void *self, const struct fs9_ctx *ctx, const char *target,
                   const char *path, struct fs9_attr *out);

    /** Copy the target of symlink `path` into `buf` (size `size`, no NUL
     *  added).  Returns its length, or -ENAMETOOLONG if it does not fit,
     *  -EINVAL if `path` is not a symlink. */
    ssize_t (*readlink)(void *self, const char *path, char *buf,
                        size_t size);

    /** Value of attribute `name`.  `size` 0: return the length only.
     *  -ERANGE if it does not fit, -ENODATA if absent. */
    ssize_t (*getxattr)(void *self, const char *path, const char *name,
                        void *buf, size_t size);

    /** Set attribute `name`; `flags` FS9_XATTR_*. */
    int (*setxattr)(void *self, const struct fs9_ctx *ctx, const char *path,
                    const char *name, const void *value, size_t size,
                    uint32_t flags);

    /** NUL-separated list of names.  `size` 0: return the length only;
     *  -ERANGE if it does not fit. */
    ssize_t (*listxattr)(void *self, const char *path, char *buf,
                         size_t size);

    /** Remove attribute `name`; -ENODATA if absent. */
    int (*removexattr)(void *self, const struct fs9_ctx *ctx,
                       const char *path, const char *name);

    /** Make the handle's data (and with `datasync` 0, metadata) durable. */
    int (*fsync)(void *self, void *handle, int datasync);

    /** fallocate(2) on an open handle; `mode` as there (0, KEEP_SIZE,
     *  PUNCH_HOLE|KEEP_SIZE, ...). -EOPNOTSUPP for modes not supported. */
    int (*fallocate)(void *self, void *handle, int mode, uint64_t offset,
                     uint64_t length);

    /** Readiness of `handle` now, as FS9_POLL_* bits in `*revents`.  Never
     *  waits: when readiness changes later the provider calls notify()
     *  with FS9_NOTIFY_DATA and FS9 asks again. */
    int (*poll)(void *self, void *handle, uint32_t events,
                uint32_t *revents);

    /** Create a device node, FIFO or socket at `path` (mode holds the
     *  type).  Optional: without it FS9 creates FIFOs and sockets through
     *  open(CREATE|EXCL|NOHANDLE) and refuses devices with -EPERM. */
    int (*mknod)(void *self, const struct fs9_ctx *ctx, const char *path,
                 uint32_t mode, uint64_t rdev, struct fs9_attr *out);

    /** The setting `fs9 NAME:ARG` fills with ARG (localfs: "root"); NULL
     *  when the provider takes no such argument. */
    const char *arg_key;
};

/** The symbol a plugin exports (see FS9_PROVIDER_ENTRY). */
typedef const struct fs9_provider_ops *(*fs9_provider_entry_fn)(void);

/* ------------------------------------------------------------------------
 * Small helpers for providers (header-only, no link dependency).
 * ---------------------------------------------------------------------- */

/** Value of `key` in `cfg`, or NULL. */
static inline const char *fs9_config_get(const struct fs9_config *cfg,
                                         const char *key)
{
    for (size_t i = 0; i < cfg->count; i++) {
        const char *a = cfg->items[i].key, *b = key;
        while (*a && *a == *b) {
            a++;
            b++;
        }
        if (*a == *b)
            return cfg->items[i].value;
    }
    return NULL;
}

/** The first key of `cfg` not listed in the NULL-terminated `known`, or
 *  NULL when every key is known.  Providers refuse unknown keys so a typo
 *  in a configuration is reported, not ignored. */
static inline const char *fs9_config_unknown_key(const struct fs9_config *cfg,
                                                 const char *const *known)
{
    for (size_t i = 0; i < cfg->count; i++) {
        int found = 0;
        for (const char *const *k = known; *k && !found; k++) {
            const char *a = cfg->items[i].key, *b = *k;
            while (*a && *a == *b) {
                a++;
                b++;
            }
            found = (*a == *b);
        }
        if (!found)
            return cfg->items[i].key;
    }
    return NULL;
}

#ifdef __cplusplus
}
#endif

#endif /* FS9_PROVIDER_H */
