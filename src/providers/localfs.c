/*
 * localfs — a host directory in the FS9 namespace, confined to its root.
 *
 * Configuration: root=DIR (required), readonly=0|1 (every change is then
 * -EROFS, after -ENOENT/-EEXIST as a read-only mount orders them).
 *
 * Confinement.  The instance holds one O_PATH|O_DIRECTORY descriptor on the
 * root and never resolves a path any other way than relative to it:
 *
 *  - Every path is checked first: relative, components never empty, "." or
 *    "..".  An absolute path or a ".." component is an attempt to leave the
 *    root and gets -EXDEV (what openat2's RESOLVE_BENEATH answers); an empty
 *    or "." component gets -EINVAL.  Nothing is touched in either case.
 *  - The parent of the final component is opened with openat2(root_fd,
 *    parent, O_PATH|O_DIRECTORY, RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|
 *    RESOLVE_NO_MAGICLINKS): the kernel refuses any symlink on the way, so
 *    a path whose intermediate component is a symlink fails with -ELOOP
 *    (whether the link points inside or out; also a directory swapped for
 *    a symlink between two calls).  A top-level name needs no openat2: its
 *    parent is the root descriptor itself.
 *  - The final component is then used with the *at() calls and O_NOFOLLOW /
 *    AT_SYMLINK_NOFOLLOW, so a symlink inside the tree is an object of its
 *    own (stat says S_IFLNK, readlink gives its text, open gives -ELOOP)
 *    and is never followed by localfs.  Its text may point anywhere:
 *    following it is the client kernel's business, on its side of the
 *    mount.
 *  - xattrs use getxattrat() and friends (Linux 6.13) on (parent, name)
 *    with AT_SYMLINK_NOFOLLOW; on older kernels the object is opened
 *    O_PATH|O_NOFOLLOW under the same RESOLVE flags and reached as
 *    /proc/self/fd/N (the magic link lands on the object, a symlink
 *    included, and is not followed further).
 *  - Host mount points inside the root are crossed like directories; the
 *    inode numbers are the host's, so two host filesystems below one root
 *    may share st_ino values.
 *  - An open handle keeps its object even if a host process moves it out
 *    of the root afterwards: that is the object the application opened.
 *
 * Descriptors.  Long-lived: the root descriptor, plus exactly one per open
 * handle (which the application opened and will close).  Every other
 * descriptor (a parent directory, an O_PATH object) is closed before the
 * call returns.  No descriptor is cached per inode or per directory, so a
 * tree of any size works under a small RLIMIT_NOFILE; running out shows as
 * -EMFILE/-ENFILE, never as another errno.  (A cache of parent directory
 * descriptors would save the openat2 and close, but a directory moved out
 * of the root by a host process would keep its cached descriptor, and
 * with it a way out: confinement comes first.)
 *
 * Syscalls per operation (nested path "a/b/c"; a top-level name saves the
 * openat2 and the close):
 *    stat        openat2(a/b) fstatat close            (handle: fstat)
 *    open        openat2 openat fstat close             (CREATE without EXCL
 *                                                          on an existing
 *                                                          file: one more
 *                                                          openat)
 *    mkdir       openat2 mkdirat fstatat close
 *    read/write  one pread/pwrite on the handle's descriptor
 *    readdir     one getdents64 per 32 KiB of entries; PLUS adds one
 *                fstatat per entry relative to the directory's descriptor
 *    remove      openat2 unlinkat close
 *    getxattr    openat2 getxattrat close
 *    wstat       openat2, one call per kind of change, fstatat, close
 *
 * Ownership.  When the daemon runs as root, calls that create an object
 * (open with CREATE, mkdir, mknod, symlink, link) run under the caller's
 * fsuid/fsgid (setfsuid/setfsgid are per thread on Linux; they are restored
 * before the call returns): new objects belong to the caller, the group
 * follows set-group-ID directories, and the host's own permission checks
 * apply — with the caller's supplementary groups too, read from
 * /proc/PID/status and set for the thread (the kernel allowed the call
 * with them, so the host must see them).  When the daemon is not
 * root it simply creates: objects belong to the daemon's user (as sshfs).
 *
 * Page cache.  FS9_OPEN_DIRECT is not passed to the host: whether data
 * bypasses the page cache is decided by the FUSE front (direct_io), and
 * O_DIRECT on the host would only add alignment errors.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "providers.h"

/* Syscalls newer than the C library's headers.  Their numbers are the
 * same on every architecture (the unified table since Linux 5.1). */
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452 /* Linux 6.6 */
#endif
#ifndef SYS_setxattrat
#define SYS_setxattrat 463 /* Linux 6.13, and the three below */
#endif
#ifndef SYS_getxattrat
#define SYS_getxattrat 464
#endif
#ifndef SYS_listxattrat
#define SYS_listxattrat 465
#endif
#ifndef SYS_removexattrat
#define SYS_removexattrat 466
#endif

/** struct xattr_args of <linux/xattr.h> (Linux 6.13), for getxattrat and
 *  setxattrat. */
struct lfs_xattr_args {
    uint64_t value; /* __aligned_u64 user pointer */
    uint32_t size;
    uint32_t flags;
};

/** How every path below the root is resolved. */
#define LFS_RESOLVE \
    (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)

/** getdents64 buffer of a directory handle. */
#define LFS_DIRBUF_SIZE (32 * 1024)

/** Room for "/proc/self/fd/" and an int. */
#define LFS_PROC_FD_LEN 32

struct localfs {
    const struct fs9_host *host; /* borrowed until destroy() */
    char *root;                  /* owned: root= as configured, for logs */
    int root_fd;                 /* O_PATH|O_DIRECTORY; read-only state */
    bool readonly;
    bool as_root;     /* euid 0: create objects as the caller */
    uid_t self_uid;   /* the daemon's fsuid/fsgid, to skip needless */
    gid_t self_gid;   /* switches when the caller is the daemon */
    int self_ngroups; /* the daemon's supplementary groups, restored */
    gid_t self_groups[64];
    bool proc_ok;     /* /proc/self/fd works (xattrs, handle reopen) */
    bool xattrat;     /* the kernel has getxattrat() and friends */
};

/** Position of a directory handle in its listing.  getdents64 fills `buf`;
 *  `pos` is the next unread byte and `resume` the cookie (d_off) that
 *  leads to it, so a readdir() continuing where the previous one stopped
 *  needs no lseek and no re-read. */
struct lfs_dirstream {
    pthread_mutex_t lock;
    char *buf; /* owned; LFS_DIRBUF_SIZE bytes, allocated on first use */
    size_t len;
    size_t pos;
    uint64_t resume;
};

struct lfs_handle {
    int fd;                    /* owned; the only descriptor of the handle */
    int accmode;               /* O_RDONLY, O_WRONLY or O_RDWR */
    mode_t mode;               /* st_mode at open (the type cannot change) */
    struct lfs_dirstream *dir; /* owned; directories only */
};

/* ------------------------------------------------------------------------
 * Paths and confinement.
 * ---------------------------------------------------------------------- */

/** Checks that `path` is relative and made of plain components; returns
 *  the last component in `*last`.  -EXDEV for an absolute path or a ".."
 *  (leaving the root), -EINVAL for an empty or "." component,
 *  -ENAMETOOLONG past PATH_MAX. */
static int lfs_check_path(const char *path, const char **last)
{
    const char *comp = path;
    size_t n = strlen(path);

    if (n >= PATH_MAX)
        return -ENAMETOOLONG;
    if (path[0] == '/')
        return -EXDEV;
    for (const char *p = path;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        size_t clen = (size_t)(p - comp);
        if (clen == 2 && comp[0] == '.' && comp[1] == '.')
            return -EXDEV;
        if (clen == 0 || (clen == 1 && comp[0] == '.'))
            return -EINVAL;
        if (*p == '\0') {
            *last = comp;
            return 0;
        }
        comp = p + 1;
    }
}

/** openat2 below `dirfd` with the confinement flags.  Returns the new
 *  descriptor or -errno.  EAGAIN (the kernel could not rule out a race with
 *  a rename) is retried a few times. */
static int lfs_openat2(int dirfd, const char *path, int flags)
{
    struct open_how how = {
        .flags = (uint64_t)flags,
        .mode = 0,
        .resolve = LFS_RESOLVE,
    };

    for (int tries = 0;; tries++) {
        long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
        if (fd >= 0)
            return (int)fd;
        if (errno != EAGAIN || tries == 8)
            return -errno;
    }
}

/** A path split into a directory descriptor and a final name. */
struct lfs_at {
    int dirfd;        /* the root's, or owned when `owned` */
    bool owned;
    const char *name; /* borrowed from the path; "." for the root itself */
};

static bool lfs_is_root(const char *path)
{
    return path[0] == '\0';
}

/** Opens the parent directory of `path` (or uses the root descriptor for
 *  a top-level name and for the root itself).  Release with
 *  lfs_at_release(). */
static int lfs_at_resolve(const struct localfs *lfs, const char *path,
                          struct lfs_at *at)
{
    char parent[PATH_MAX];
    const char *last;

    at->dirfd = lfs->root_fd;
    at->owned = false;
    at->name = ".";
    if (lfs_is_root(path))
        return 0;
    int r = lfs_check_path(path, &last);
    if (r < 0)
        return r;
    at->name = last;
    if (last == path)
        return 0;
    size_t plen = (size_t)(last - path) - 1;
    memcpy(parent, path, plen);
    parent[plen] = '\0';
    int fd = lfs_openat2(lfs->root_fd, parent, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return fd;
    at->dirfd = fd;
    at->owned = true;
    return 0;
}

static void lfs_at_release(struct lfs_at *at)
{
    if (at->owned)
        close(at->dirfd);
    at->owned = false;
}

/** An O_PATH descriptor on the object `path` itself (a final symlink
 *  included), or the root's.  `*owned` says whether to close it. */
static int lfs_object_fd(const struct localfs *lfs, const char *path,
                         bool *owned)
{
    const char *last;

    *owned = false;
    if (lfs_is_root(path))
        return lfs->root_fd;
    int r = lfs_check_path(path, &last);
    if (r < 0)
        return r;
    int fd = lfs_openat2(lfs->root_fd, path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0)
        *owned = true;
    return fd;
}

static void lfs_proc_fd(char *buf, int fd)
{
    snprintf(buf, LFS_PROC_FD_LEN, "/proc/self/fd/%d", fd);
}

/* ------------------------------------------------------------------------
 * Credentials: create as the caller when the daemon is root.
 * ---------------------------------------------------------------------- */

struct lfs_cred {
    bool switched;
    bool grouped; /* supplementary groups switched too */
    int uid;      /* previous fsuid/fsgid of this thread */
    int gid;
};

#define LFS_MAX_GROUPS 256

/** The supplementary groups of process (or thread) `pid`, from
 *  /proc/PID/status: the kernel checked the caller's permission with them
 *  (default_permissions), so the host must see them too.  Returns how many
 *  were stored (at most `max`), or -1 when they cannot be read. */
static int lfs_caller_groups(int pid, gid_t *list, int max)
{
    char path[64], buf[8192];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    const char *p = strstr(buf, "\nGroups:");
    if (!p)
        return -1;
    p += 8;
    int count = 0;
    while (count < max) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p < '0' || *p > '9')
            break;
        char *end;
        unsigned long g = strtoul(p, &end, 10);
        list[count++] = (gid_t)g;
        p = end;
    }
    return count;
}

/** Runs this thread's filesystem calls as the caller until
 *  lfs_become_self().  setfsuid/setfsgid (raw syscalls) change only the
 *  calling thread.  The group goes first: switching fsuid away from 0
 *  drops the filesystem capabilities, not CAP_SETGID, but the order keeps
 *  the question from arising. */
static void lfs_become_caller(const struct localfs *lfs,
                              const struct fs9_ctx *ctx, struct lfs_cred *c)
{
    c->switched = false;
    if (!lfs->as_root || ctx == NULL ||
        (ctx->uid == lfs->self_uid && ctx->gid == lfs->self_gid))
        return;
    /* (uid_t)-1 would only query: an unmapped caller is nobody, as the
     * kernel's overflow ids say. */
    gid_t gid = ctx->gid == (uint32_t)-1 ? 65534 : (gid_t)ctx->gid;
    uid_t uid = ctx->uid == (uint32_t)-1 ? 65534 : (uid_t)ctx->uid;
    /* Supplementary groups, per thread: the raw syscall (glibc's
     * setgroups() would change every thread of the daemon). */
    c->grouped = false;
    if (ctx->pid > 0) {
        gid_t groups[LFS_MAX_GROUPS];
        int n = lfs_caller_groups(ctx->pid, groups, LFS_MAX_GROUPS);
        if (n >= 0 && syscall(SYS_setgroups, (size_t)n, groups) == 0)
            c->grouped = true;
    }
    c->gid = (int)syscall(SYS_setfsgid, gid);
    c->uid = (int)syscall(SYS_setfsuid, uid);
    c->switched = true;
}

/** Restores the thread's own fsuid/fsgid and groups; errno is preserved. */
static void lfs_become_self(const struct localfs *lfs, struct lfs_cred *c)
{
    if (!c->switched)
        return;
    int saved = errno;
    syscall(SYS_setfsuid, (uid_t)c->uid);
    syscall(SYS_setfsgid, (gid_t)c->gid);
    if (c->grouped)
        syscall(SYS_setgroups, (size_t)lfs->self_ngroups, lfs->self_groups);
    errno = saved;
    c->switched = false;
}

/* ------------------------------------------------------------------------
 * Small helpers.
 * ---------------------------------------------------------------------- */

static void lfs_attr_from_stat(const struct stat *st, struct fs9_attr *a)
{
    memset(a, 0, sizeof *a);
    a->ino = (uint64_t)st->st_ino;
    a->size = (uint64_t)st->st_size;
    a->blocks = (uint64_t)st->st_blocks;
    a->rdev = (uint64_t)st->st_rdev;
    a->mode = (uint32_t)st->st_mode;
    a->nlink = (uint32_t)st->st_nlink;
    a->uid = (uint32_t)st->st_uid;
    a->gid = (uint32_t)st->st_gid;
    a->blksize = (uint32_t)st->st_blksize;
    a->atime = st->st_atim;
    a->mtime = st->st_mtim;
    a->ctime = st->st_ctim;
}

static int lfs_fstatat_attr(int dirfd, const char *name, struct fs9_attr *out)
{
    struct stat st;

    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return -errno;
    if (out)
        lfs_attr_from_stat(&st, out);
    return 0;
}

static int lfs_fstat_attr(int fd, struct fs9_attr *out)
{
    struct stat st;

    if (fstat(fd, &st) < 0)
        return -errno;
    if (out)
        lfs_attr_from_stat(&st, out);
    return 0;
}

/** The errno a read-only filesystem gives for a change to (dirfd, name):
 *  creating something that exists is -EEXIST, changing something missing
 *  is -ENOENT, everything else -EROFS. */
static int lfs_readonly_errno(const struct lfs_at *at, bool creating)
{
    struct stat st;

    if (fstatat(at->dirfd, at->name, &st, AT_SYMLINK_NOFOLLOW) == 0)
        return creating ? -EEXIST : -EROFS;
    if (errno == ENOENT)
        return creating ? -EROFS : -ENOENT;
    return -errno;
}

/** chmod without following a final symlink: fchmodat2 (Linux 6.6) answers
 *  -EOPNOTSUPP for a symlink, as glibc's emulation does on older kernels. */
static int lfs_chmod_at(int dirfd, const char *name, mode_t mode)
{
    if (syscall(SYS_fchmodat2, dirfd, name, mode, AT_SYMLINK_NOFOLLOW) == 0)
        return 0;
    if (errno != ENOSYS)
        return -errno;
    if (fchmodat(dirfd, name, mode, AT_SYMLINK_NOFOLLOW) == 0)
        return 0;
    return -errno;
}

/** openat for open(): retries without O_NOATIME when the host refuses it
 *  (EPERM: we are neither the owner nor privileged). */
static int lfs_openat(int dirfd, const char *name, int oflags, mode_t mode)
{
    int fd = openat(dirfd, name, oflags, mode);
    if (fd < 0 && errno == EPERM && (oflags & O_NOATIME))
        fd = openat(dirfd, name, oflags & ~O_NOATIME, mode);
    return fd < 0 ? -errno : fd;
}

static int lfs_handle_new(int fd, int accmode, mode_t mode,
                          struct lfs_handle **out)
{
    struct lfs_handle *h = calloc(1, sizeof *h);

    if (h == NULL)
        return -ENOMEM;
    h->fd = fd;
    h->accmode = accmode;
    h->mode = mode;
    if (S_ISDIR(mode)) {
        h->dir = calloc(1, sizeof *h->dir);
        if (h->dir == NULL) {
            free(h);
            return -ENOMEM;
        }
        pthread_mutex_init(&h->dir->lock, NULL);
    }
    *out = h;
    return 0;
}

static void lfs_handle_free(struct lfs_handle *h)
{
    if (h->dir) {
        pthread_mutex_destroy(&h->dir->lock);
        free(h->dir->buf);
        free(h->dir);
    }
    free(h);
}

/* ------------------------------------------------------------------------
 * Instance.
 * ---------------------------------------------------------------------- */

/** Writes a one-line reason for create()'s caller, if it gave room. */
__attribute__((format(printf, 3, 4))) static void
lfs_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void lfs_errmsg(char *err, size_t errlen, const char *root, int e)
{
    char buf[128];

    lfs_err(err, errlen, "root=%s: %s", root, strerror_r(e, buf, sizeof buf));
}

/** One line to the host's log, prefixed with the instance's root. */
__attribute__((format(printf, 3, 4))) static void
lfs_log(const struct localfs *lfs, int level, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    if (lfs->host == NULL || lfs->host->log == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    lfs->host->log(lfs->host->ctx, level, "localfs root=%s: %s", lfs->root,
                   line);
}

static int lfs_create(const struct fs9_host *host, const struct fs9_config *cfg,
                      void **self, char *err, size_t errlen)
{
    static const char *const known[] = {"root", "readonly", NULL};
    const char *unknown = fs9_config_unknown_key(cfg, known);
    const char *root = fs9_config_get(cfg, "root");
    const char *ro = fs9_config_get(cfg, "readonly");
    bool readonly = false;
    struct localfs *lfs = NULL;
    int fd = -1, r;

    if (unknown) {
        lfs_err(err, errlen, "unknown key '%s'", unknown);
        return -EINVAL;
    }
    if (root == NULL || root[0] == '\0') {
        lfs_err(err, errlen, "root=DIR is required");
        return -EINVAL;
    }
    if (ro) {
        if (strcmp(ro, "1") == 0 || strcmp(ro, "true") == 0 ||
            strcmp(ro, "yes") == 0)
            readonly = true;
        else if (strcmp(ro, "0") != 0 && strcmp(ro, "false") != 0 &&
                 strcmp(ro, "no") != 0) {
            lfs_err(err, errlen, "readonly=%s: expected 0 or 1", ro);
            return -EINVAL;
        }
    }

    /* The root itself may be reached through symlinks: it is configured by
     * whoever mounts, and confinement starts below it. */
    fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        r = -errno;
        lfs_errmsg(err, errlen, root, errno);
        return r;
    }
    if (faccessat(fd, ".", R_OK | X_OK, AT_EACCESS) < 0) {
        r = -errno;
        lfs_errmsg(err, errlen, root, errno);
        goto fail;
    }
    /* Confinement rests on openat2 (Linux 5.6): without it, refuse. */
    r = lfs_openat2(fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (r < 0) {
        if (r == -ENOSYS)
            lfs_err(err, errlen, "root=%s: openat2 is not available "
                    "(Linux 5.6 or later is needed)", root);
        else
            lfs_errmsg(err, errlen, root, -r);
        goto fail;
    }
    close(r);

    lfs = calloc(1, sizeof *lfs);
    if (lfs == NULL || (lfs->root = strdup(root)) == NULL) {
        r = -ENOMEM;
        lfs_err(err, errlen, "out of memory");
        goto fail;
    }
    lfs->host = host;
    lfs->root_fd = fd;
    lfs->readonly = readonly;
    lfs->as_root = geteuid() == 0;
    lfs->self_uid = geteuid();
    lfs->self_gid = getegid();
    lfs->self_ngroups = getgroups(64, lfs->self_groups);
    if (lfs->self_ngroups < 0)
        lfs->self_ngroups = 0;

    /* xattrs: getxattrat() and friends where the kernel has them (ENOSYS,
     * or EPERM from a seccomp filter that does not know them, says no),
     * else O_PATH descriptors reached through /proc/self/fd/N. */
    struct lfs_xattr_args probe = {0};
    lfs->xattrat = syscall(SYS_getxattrat, fd, ".", AT_SYMLINK_NOFOLLOW,
                           "user.fs9-probe", &probe, sizeof probe) >= 0 ||
                   (errno != ENOSYS && errno != EPERM);
    char proc[LFS_PROC_FD_LEN];
    struct stat a, b;
    lfs_proc_fd(proc, fd);
    lfs->proc_ok = stat(proc, &a) == 0 && fstat(fd, &b) == 0 &&
                   a.st_dev == b.st_dev && a.st_ino == b.st_ino;
    if (!lfs->xattrat && !lfs->proc_ok)
        lfs_log(lfs, FS9_LOG_WARN, "/proc/self/fd unusable, xattrs disabled");
    *self = lfs;
    return 0;

fail:
    if (lfs)
        free(lfs->root);
    free(lfs);
    close(fd);
    return r;
}

static void lfs_destroy(void *self)
{
    struct localfs *lfs = self;

    close(lfs->root_fd);
    free(lfs->root);
    free(lfs);
}

static uint64_t lfs_capabilities(void *self)
{
    const struct localfs *lfs = self;
    uint64_t caps = FS9_CAP_READ | FS9_CAP_DIRECTORY | FS9_CAP_SYNC |
                    FS9_CAP_EXTERNAL_CHANGES;

    if (lfs->xattrat || lfs->proc_ok)
        caps |= FS9_CAP_XATTR;
    if (!lfs->readonly)
        caps |= FS9_CAP_WRITE | FS9_CAP_CREATE | FS9_CAP_DELETE |
                FS9_CAP_RENAME | FS9_CAP_TRUNCATE | FS9_CAP_CHMOD |
                FS9_CAP_CHOWN | FS9_CAP_UTIME | FS9_CAP_HARDLINK |
                FS9_CAP_SYMLINK | FS9_CAP_APPEND | FS9_CAP_RANDOM_WRITE |
                FS9_CAP_ATOMIC_RENAME;
    return caps;
}

/* ------------------------------------------------------------------------
 * stat, wstat, statfs.
 * ---------------------------------------------------------------------- */

static int lfs_stat(void *self, const struct fs9_ctx *ctx, const char *path,
                    void *handle, struct fs9_attr *out)
{
    struct localfs *lfs = self;
    struct lfs_at at;
    (void)ctx;

    if (handle)
        return lfs_fstat_attr(((struct lfs_handle *)handle)->fd, out);
    int r = lfs_at_resolve(lfs, path, &at);
    if (r < 0)
        return r;
    r = lfs_fstatat_attr(at.dirfd, at.name, out);
    lfs_at_release(&at);
    return r;
}

#define LFS_WSTAT_TIMES                                                  \
    (FS9_WSTAT_ATIME | FS9_WSTAT_MTIME | FS9_WSTAT_ATIME_NOW |            \
     FS9_WSTAT_MTIME_NOW)
#define LFS_WSTAT_CHANGES                                                \
    (FS9_WSTAT_MODE | FS9_WSTAT_UID | FS9_WSTAT_GID | FS9_WSTAT_SIZE |    \
     LFS_WSTAT_TIMES | FS9_WSTAT_CTIME)

static void lfs_wstat_times(const struct fs9_wstat *w, struct timespec ts[2])
{
    ts[0].tv_sec = ts[1].tv_sec = 0;
    ts[0].tv_nsec = ts[1].tv_nsec = UTIME_OMIT;
    if (w->valid & FS9_WSTAT_ATIME_NOW)
        ts[0].tv_nsec = UTIME_NOW;
    else if (w->valid & FS9_WSTAT_ATIME)
        ts[0] = w->atime;
    if (w->valid & FS9_WSTAT_MTIME_NOW)
        ts[1].tv_nsec = UTIME_NOW;
    else if (w->valid & FS9_WSTAT_MTIME)
        ts[1] = w->mtime;
}

/** The checks truncate(2) makes before touching anything. */
static int lfs_truncate_check(mode_t mode)
{
    if (S_ISDIR(mode))
        return -EISDIR;
    if (!S_ISREG(mode))
        return -EINVAL;
    return 0;
}

/*
 * wstat applies its changes in an order that leaves the object sane when
 * a later one fails: size first (the one most likely refused: EISDIR,
 * EFBIG, ENOSPC...), then owner, then mode (chown clears set-user-ID bits,
 * so a mode given together with an owner must come after it), then times
 * last because every other change moves ctime.  What can be checked up
 * front is: a change to a directory's size, a mode on a symlink, a size
 * out of range.  CTIME cannot be set on a host file; ctime moves by itself
 * with any other change, so it is accepted and ignored.
 *
 * With a handle every change goes through its descriptor (fchown, fchmod,
 * futimens, ftruncate): an object removed while open keeps working.  On a
 * path, a size change opens the object O_WRONLY|O_NOFOLLOW and applies the
 * rest through that descriptor too; otherwise the *at() calls act on
 * (parent, name) without following a final symlink.
 */
static int lfs_wstat(void *self, const struct fs9_ctx *ctx, const char *path,
                     void *handle, const struct fs9_wstat *w,
                     struct fs9_attr *out)
{
    struct localfs *lfs = self;
    struct lfs_handle *h = handle;
    struct lfs_at at = {.dirfd = -1, .owned = false, .name = NULL};
    uint32_t valid = w->valid & LFS_WSTAT_CHANGES;
    int fd = -1;       /* descriptor the changes go through, or -1 */
    int own_fd = -1;   /* owned descriptor opened here */
    struct timespec ts[2];
    struct stat st;
    int r;
    (void)ctx;

    if ((valid & FS9_WSTAT_SIZE) && w->size > (uint64_t)INT64_MAX)
        return -EINVAL;
    if (h) {
        fd = h->fd;
    } else {
        r = lfs_at_resolve(lfs, path, &at);
        if (r < 0)
            return r;
    }
    if (lfs->readonly && valid) {
        r = h ? -EROFS : lfs_readonly_errno(&at, false);
        goto out;
    }

    if (valid & FS9_WSTAT_SIZE) {
        if (h) {
            r = lfs_truncate_check(h->mode);
            if (r < 0)
                goto out;
            if (h->accmode == O_RDONLY) {
                /* ftruncate needs a writable descriptor: reopen the same
                 * object (even if removed) through /proc, or without /proc
                 * by its path. */
                char proc[LFS_PROC_FD_LEN];
                if (lfs->proc_ok) {
                    lfs_proc_fd(proc, h->fd);
                    own_fd = open(proc, O_WRONLY | O_CLOEXEC);
                } else {
                    r = lfs_at_resolve(lfs, path, &at);
                    if (r < 0)
                        goto out;
                    own_fd = openat(at.dirfd, at.name,
                                    O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
                }
                if (own_fd < 0) {
                    r = -errno;
                    goto out;
                }
                fd = own_fd;
            }
        } else {
            own_fd = openat(at.dirfd, at.name,
                            O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
            if (own_fd < 0) {
                r = -errno;
                /* A FIFO without reader, a socket, a device without a
                 * driver: truncate(2) says EINVAL for all of these. */
                if (r == -ENXIO || r == -EOPNOTSUPP) {
                    if (fstatat(at.dirfd, at.name, &st,
                                AT_SYMLINK_NOFOLLOW) == 0)
                        r = lfs_truncate_check(st.st_mode);
                }
                goto out;
            }
            fd = own_fd;
            if (fstat(fd, &st) < 0) {
                r = -errno;
                goto out;
            }
            r = lfs_truncate_check(st.st_mode);
            if (r < 0)
                goto out;
        }
    } else if (fd < 0 && (valid & FS9_WSTAT_MODE) &&
               (valid & ~(uint32_t)FS9_WSTAT_MODE & ~(uint32_t)FS9_WSTAT_CTIME)) {
        /* Several changes including a mode: refuse a symlink before the
         * others are applied. */
        if (fstatat(at.dirfd, at.name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            r = -errno;
            goto out;
        }
        if (S_ISLNK(st.st_mode)) {
            r = -EOPNOTSUPP;
            goto out;
        }
    }

    if (valid & FS9_WSTAT_SIZE) {
        if (ftruncate(fd, (off_t)w->size) < 0) {
            r = -errno;
            goto out;
        }
    }
    if (valid & (FS9_WSTAT_UID | FS9_WSTAT_GID)) {
        uid_t uid = (valid & FS9_WSTAT_UID) ? (uid_t)w->uid : (uid_t)-1;
        gid_t gid = (valid & FS9_WSTAT_GID) ? (gid_t)w->gid : (gid_t)-1;
        if (fd >= 0 ? fchown(fd, uid, gid)
                    : fchownat(at.dirfd, at.name, uid, gid,
                               AT_SYMLINK_NOFOLLOW)) {
            r = -errno;
            goto out;
        }
    }
    if (valid & FS9_WSTAT_MODE) {
        mode_t m = (mode_t)(w->mode & 07777);
        if (fd >= 0)
            r = fchmod(fd, m) < 0 ? -errno : 0;
        else
            r = lfs_chmod_at(at.dirfd, at.name, m);
        if (r < 0)
            goto out;
    }
    if (valid & LFS_WSTAT_TIMES) {
        lfs_wstat_times(w, ts);
        if (fd >= 0 ? futimens(fd, ts)
                    : utimensat(at.dirfd, at.name, ts, AT_SYMLINK_NOFOLLOW)) {
            r = -errno;
            goto out;
        }
    }
    r = fd >= 0 ? lfs_fstat_attr(fd, out)
                : lfs_fstatat_attr(at.dirfd, at.name, out);
out:
    if (own_fd >= 0)
        close(own_fd);
    lfs_at_release(&at);
    return r;
}

static int lfs_statfs(void *self, const char *path, struct fs9_statfs *out)
{
    struct localfs *lfs = self;
    struct statvfs sv;
    bool owned;
    int r = 0;

    int fd = lfs_object_fd(lfs, path, &owned);
    if (fd < 0)
        return fd;
    if (fstatvfs(fd, &sv) < 0)
        r = -errno;
    if (owned)
        close(fd);
    if (r < 0)
        return r;
    memset(out, 0, sizeof *out);
    out->bsize = sv.f_frsize ? sv.f_frsize : sv.f_bsize;
    out->blocks = sv.f_blocks;
    out->bfree = sv.f_bfree;
    out->bavail = sv.f_bavail;
    out->files = sv.f_files;
    out->ffree = sv.f_ffree;
    out->namemax = sv.f_namemax ? sv.f_namemax : 255;
    return 0;
}

/* ------------------------------------------------------------------------
 * open and the creating calls.
 * ---------------------------------------------------------------------- */

/** mkdir (open with CREATE|DIRECTORY).  Runs as the caller; `at` is
 *  resolved.  Without EXCL an existing directory is opened instead. */
static int lfs_open_mkdir(struct localfs *lfs, const struct lfs_at *at,
                          uint32_t flags, uint32_t mode,
                          struct fs9_open_out *out)
{
    struct lfs_handle *h = NULL;

    if (lfs->readonly) {
        int r = lfs_readonly_errno(at, true);
        if (r != -EEXIST || (flags & FS9_OPEN_EXCL))
            return r;
    } else if (mkdirat(at->dirfd, at->name, (mode_t)(mode & 07777)) == 0) {
        out->created = 1;
    } else if (errno != EEXIST || (flags & FS9_OPEN_EXCL)) {
        return -errno;
    }
    if (flags & FS9_OPEN_NOHANDLE) {
        int r = lfs_fstatat_attr(at->dirfd, at->name, &out->attr);
        if (r == 0 && !out->created && !S_ISDIR(out->attr.mode))
            r = -ENOTDIR;
        return r;
    }
    int fd = lfs_openat(at->dirfd, at->name,
                        O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC |
                            ((flags & FS9_OPEN_NOATIME) ? O_NOATIME : 0),
                        0);
    if (fd < 0)
        return fd;
    int r = lfs_fstat_attr(fd, &out->attr);
    if (r == 0)
        r = lfs_handle_new(fd, O_RDONLY, (mode_t)out->attr.mode, &h);
    if (r < 0) {
        close(fd);
        return r;
    }
    out->handle = h;
    return 0;
}

/** mknodat of `mode` (type included) at `at`, as the caller; `excl` false
 *  accepts an existing object (not a directory when creating a file). */
static int lfs_mknod_at(struct localfs *lfs, const struct lfs_at *at,
                        uint32_t mode, uint64_t rdev, bool excl,
                        struct fs9_attr *attr, uint32_t *created)
{
    if (lfs->readonly) {
        int r = lfs_readonly_errno(at, true);
        if (r != -EEXIST || excl)
            return r;
    } else if (mknodat(at->dirfd, at->name, (mode_t)mode, (dev_t)rdev) == 0) {
        *created = 1;
    } else if (errno != EEXIST || excl) {
        return -errno;
    }
    int r = lfs_fstatat_attr(at->dirfd, at->name, attr);
    if (r == 0 && !*created && S_ISDIR(attr->mode))
        r = -EISDIR;
    return r;
}

/** The host open(2) flags for FS9 open flags.  O_DIRECT is left to the
 *  FUSE front (see the top of this file). */
static int lfs_oflags(uint32_t flags)
{
    int o = O_CLOEXEC | O_NOFOLLOW;

    if ((flags & FS9_OPEN_READ) && (flags & FS9_OPEN_WRITE))
        o |= O_RDWR;
    else if (flags & FS9_OPEN_WRITE)
        o |= O_WRONLY;
    else
        o |= O_RDONLY;
    if (flags & FS9_OPEN_TRUNC)
        o |= O_TRUNC;
    if (flags & FS9_OPEN_APPEND)
        o |= O_APPEND;
    if (flags & FS9_OPEN_DIRECTORY)
        o |= O_DIRECTORY;
    if (flags & FS9_OPEN_NONBLOCK)
        o |= O_NONBLOCK;
    if (flags & FS9_OPEN_SYNC)
        o |= O_SYNC;
    if (flags & FS9_OPEN_NOATIME)
        o |= O_NOATIME;
    return o;
}

/** Opens a regular file, creating it with CREATE.  O_EXCL is tried first
 *  so `created` is exact; without EXCL an existing object is then opened
 *  plainly (looping if it vanishes in between). */
static int lfs_open_file(struct localfs *lfs, const struct lfs_at *at,
                         uint32_t flags, uint32_t mode, uint32_t *created)
{
    int o = lfs_oflags(flags);
    bool modifying = (o & O_ACCMODE) != O_RDONLY || (o & O_TRUNC);

    if (lfs->readonly && (modifying || (flags & FS9_OPEN_CREATE))) {
        /* As a read-only mount: O_CREAT of a missing file and any write
         * access or O_TRUNC are -EROFS, after -ENOENT/-EEXIST. */
        bool create = (flags & FS9_OPEN_CREATE) != 0;
        int r = lfs_readonly_errno(at, create);
        if (!create || r != -EEXIST)
            return r;
        if (flags & FS9_OPEN_EXCL)
            return -EEXIST;
        if (modifying)
            return -EROFS;
        return lfs_openat(at->dirfd, at->name, o, 0);
    }
    if (!(flags & FS9_OPEN_CREATE))
        return lfs_openat(at->dirfd, at->name, o, 0);
    for (int tries = 0;; tries++) {
        int fd = lfs_openat(at->dirfd, at->name, o | O_CREAT | O_EXCL,
                            (mode_t)(mode & 07777));
        if (fd >= 0) {
            *created = 1;
            return fd;
        }
        if (fd != -EEXIST || (flags & FS9_OPEN_EXCL))
            return fd;
        fd = lfs_openat(at->dirfd, at->name, o, 0);
        if (fd != -ENOENT || tries == 8)
            return fd;
    }
}

static int lfs_open(void *self, const struct fs9_ctx *ctx, const char *path,
                    uint32_t flags, uint32_t mode, struct fs9_open_out *out)
{
    struct localfs *lfs = self;
    uint32_t type = mode & S_IFMT;
    struct lfs_cred cred = {.switched = false};
    struct lfs_handle *h = NULL;
    struct lfs_at at;
    int r, fd;

    out->handle = NULL;
    out->flags = 0;
    out->created = 0;
    bool creating = (flags & FS9_OPEN_CREATE) != 0;
    if (creating) {
        if (type != 0 && type != S_IFREG && type != S_IFDIR &&
            !(flags & FS9_OPEN_NOHANDLE))
            return -EINVAL; /* special files are created without handle */
        if (type == S_IFLNK)
            return -EINVAL;
        lfs_become_caller(lfs, ctx, &cred);
    }
    r = lfs_at_resolve(lfs, path, &at);
    if (r < 0)
        goto out;

    if (creating && ((flags & FS9_OPEN_DIRECTORY) || type == S_IFDIR)) {
        if (type != 0 && type != S_IFDIR) {
            r = -EINVAL;
            goto out;
        }
        r = lfs_open_mkdir(lfs, &at, flags, mode, out);
        goto out;
    }
    if (creating && (flags & FS9_OPEN_NOHANDLE)) {
        /* A file, FIFO, socket (or device) without a handle: mknodat. */
        r = lfs_mknod_at(lfs, &at, type ? mode : (mode | S_IFREG), 0,
                         (flags & FS9_OPEN_EXCL) != 0, &out->attr,
                         &out->created);
        if (r == 0 && !out->created && (flags & FS9_OPEN_TRUNC) &&
            S_ISREG(out->attr.mode)) {
            /* An existing file to truncate, still as the caller. */
            if (lfs->readonly) {
                r = -EROFS;
                goto out;
            }
            fd = lfs_openat(at.dirfd, at.name,
                            O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0);
            r = fd < 0 ? fd : lfs_fstat_attr(fd, &out->attr);
            if (fd >= 0)
                close(fd);
        }
        goto out;
    }

    fd = lfs_open_file(lfs, &at, flags, mode, &out->created);
    lfs_become_self(lfs, &cred);
    if (fd < 0) {
        r = fd;
        goto out;
    }
    r = lfs_fstat_attr(fd, &out->attr);
    if (r == 0 && creating && !out->created && S_ISDIR(out->attr.mode))
        r = -EISDIR; /* open(O_CREAT) of a directory */
    if (r == 0 && !(flags & FS9_OPEN_NOHANDLE)) {
        int acc = lfs_oflags(flags) & O_ACCMODE;
        r = lfs_handle_new(fd, acc, (mode_t)out->attr.mode, &h);
        if (r == 0) {
            out->handle = h;
            goto out;
        }
    }
    close(fd);
out:
    lfs_become_self(lfs, &cred);
    lfs_at_release(&at);
    return r;
}

static int lfs_mknod(void *self, const struct fs9_ctx *ctx, const char *path,
                     uint32_t mode, uint64_t rdev, struct fs9_attr *out)
{
    struct localfs *lfs = self;
    struct lfs_cred cred;
    struct lfs_at at;
    uint32_t created = 0;

    if (lfs_is_root(path))
        return -EEXIST;
    lfs_become_caller(lfs, ctx, &cred);
    int r = lfs_at_resolve(lfs, path, &at);
    if (r == 0) {
        r = lfs_mknod_at(lfs, &at, mode, rdev, true, out, &created);
        lfs_at_release(&at);
    }
    lfs_become_self(lfs, &cred);
    return r;
}

static int lfs_symlink(void *self, const struct fs9_ctx *ctx,
                       const char *target, const char *path,
                       struct fs9_attr *out)
{
    struct localfs *lfs = self;
    struct lfs_cred cred;
    struct lfs_at at;

    if (lfs_is_root(path))
        return -EEXIST;
    lfs_become_caller(lfs, ctx, &cred);
    int r = lfs_at_resolve(lfs, path, &at);
    if (r == 0) {
        if (lfs->readonly)
            r = lfs_readonly_errno(&at, true);
        else if (symlinkat(target, at.dirfd, at.name) < 0)
            r = -errno;
        if (r == 0)
            r = lfs_fstatat_attr(at.dirfd, at.name, out);
        lfs_at_release(&at);
    }
    lfs_become_self(lfs, &cred);
    return r;
}

static int lfs_link(void *self, const struct fs9_ctx *ctx, const char *from,
                    const char *to, struct fs9_attr *out)
{
    struct localfs *lfs = self;
    struct lfs_cred cred;
    struct lfs_at src, dst;

    if (lfs_is_root(from))
        return -EPERM; /* the root is a directory */
    if (lfs_is_root(to))
        return -EEXIST;
    lfs_become_caller(lfs, ctx, &cred);
    int r = lfs_at_resolve(lfs, from, &src);
    if (r < 0)
        goto out;
    r = lfs_at_resolve(lfs, to, &dst);
    if (r < 0) {
        lfs_at_release(&src);
        goto out;
    }
    if (lfs->readonly) {
        struct stat st; /* the source is looked up first, as link(2) does */
        if (fstatat(src.dirfd, src.name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            r = -errno;
        else
            r = lfs_readonly_errno(&dst, true);
    } else if (linkat(src.dirfd, src.name, dst.dirfd, dst.name, 0) < 0) {
        r = -errno;
    } else {
        r = lfs_fstatat_attr(dst.dirfd, dst.name, out);
    }
    lfs_at_release(&dst);
    lfs_at_release(&src);
out:
    lfs_become_self(lfs, &cred);
    return r;
}

/* ------------------------------------------------------------------------
 * I/O on handles.
 * ---------------------------------------------------------------------- */

static ssize_t lfs_read(void *self, void *handle, void *buf, size_t size,
                        uint64_t offset)
{
    struct lfs_handle *h = handle;
    size_t done = 0;
    (void)self;

    if (offset > (uint64_t)INT64_MAX)
        return -EINVAL;
    if (size > SSIZE_MAX)
        size = SSIZE_MAX;
    /* A regular file reads short only at its end; anything else (a pipe,
     * a device) returns what it has. */
    while (done < size) {
        ssize_t n = pread(h->fd, (char *)buf + done, size - done,
                          (off_t)(offset + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return done ? (ssize_t)done : -errno;
        }
        if (n == 0)
            break;
        done += (size_t)n;
        if (!S_ISREG(h->mode))
            break;
    }
    return (ssize_t)done;
}

static ssize_t lfs_write(void *self, void *handle, const void *buf,
                         size_t size, uint64_t offset)
{
    struct localfs *lfs = self;
    struct lfs_handle *h = handle;
    size_t done = 0;

    if (lfs->readonly)
        return -EROFS;
    if (offset > (uint64_t)INT64_MAX)
        return -EINVAL;
    if (size > SSIZE_MAX)
        size = SSIZE_MAX;
    /* pwrite on an O_APPEND descriptor appends (Linux), as FS9 wants.  A
     * short count is returned only when the next write will fail. */
    while (done < size) {
        ssize_t n = pwrite(h->fd, (const char *)buf + done, size - done,
                           (off_t)(offset + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return done ? (ssize_t)done : -errno;
        }
        if (n == 0)
            return done ? (ssize_t)done : -EIO;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

static int lfs_close(void *self, void *handle, int sync)
{
    struct localfs *lfs = self;
    struct lfs_handle *h = handle;
    char buf[128];
    int r = 0;

    if (sync && fsync(h->fd) < 0 && errno != EINVAL && errno != EROFS)
        r = -errno; /* EINVAL/EROFS: the object cannot be synced (pipe) */
    if (close(h->fd) < 0 && errno != EINTR && r == 0) {
        r = -errno;
        lfs_log(lfs, FS9_LOG_WARN, "close: %s",
                strerror_r(-r, buf, sizeof buf));
    }
    lfs_handle_free(h);
    return r;
}

static int lfs_fsync(void *self, void *handle, int datasync)
{
    struct lfs_handle *h = handle;
    (void)self;

    if ((datasync ? fdatasync(h->fd) : fsync(h->fd)) < 0)
        return -errno;
    return 0;
}

static int lfs_fallocate(void *self, void *handle, int mode, uint64_t offset,
                         uint64_t length)
{
    struct localfs *lfs = self;
    struct lfs_handle *h = handle;

    if (lfs->readonly)
        return -EROFS;
    if (offset > (uint64_t)INT64_MAX || length > (uint64_t)INT64_MAX)
        return -EINVAL;
    if (fallocate(h->fd, mode, (off_t)offset, (off_t)length) < 0)
        return -errno;
    return 0;
}

/* ------------------------------------------------------------------------
 * readdir.
 * ---------------------------------------------------------------------- */

/*
 * Cookies are the host's d_off: the position after an entry, a positive
 * loff_t (so non-zero and below 2^63).  A call whose cookie is where the
 * previous call stopped continues in the buffer it already holds; any
 * other cookie is an lseek (0: from the start) and a fresh getdents64.
 * The lock serialises calls on one handle; different handles share
 * nothing.
 */
static int lfs_readdir(void *self, void *handle, uint64_t cookie,
                       uint32_t flags, fs9_dirent_fn emit, void *emit_arg)
{
    struct localfs *lfs = self;
    struct lfs_handle *h = handle;
    struct lfs_dirstream *ds = h->dir;
    struct fs9_dirent ent;
    struct stat st;
    int r = 0;

    if (ds == NULL)
        return -ENOTDIR;
    if (cookie > (uint64_t)INT64_MAX)
        return -EINVAL;
    pthread_mutex_lock(&ds->lock);
    if (ds->buf == NULL) {
        ds->buf = malloc(LFS_DIRBUF_SIZE);
        if (ds->buf == NULL) {
            r = -ENOMEM;
            goto out;
        }
        ds->len = ds->pos = 0; /* a new descriptor is at the start */
    }
    if (cookie != ds->resume) {
        if (lseek(h->fd, (off_t)cookie, SEEK_SET) < 0) {
            r = -errno;
            goto out;
        }
        ds->len = ds->pos = 0;
        ds->resume = cookie;
    }
    for (;;) {
        if (ds->pos >= ds->len) {
            ssize_t n = getdents64(h->fd, ds->buf, LFS_DIRBUF_SIZE);
            if (n < 0) {
                r = -errno;
                /* The descriptor's position is unknown now. */
                ds->resume = (uint64_t)-1;
                goto out;
            }
            ds->len = (size_t)n;
            ds->pos = 0;
            if (n == 0)
                break;
        }
        struct dirent64 *d = (struct dirent64 *)(ds->buf + ds->pos);
        const char *name = d->d_name;
        if (d->d_off <= 0) {
            /* Not a position to resume from: a broken host filesystem. */
            lfs_log(lfs, FS9_LOG_ERROR, "readdir: entry '%s' has d_off %lld",
                    name, (long long)d->d_off);
            r = -EIO;
            goto out;
        }
        if (name[0] == '.' &&
            (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'))) {
            ds->pos += d->d_reclen;
            ds->resume = (uint64_t)d->d_off;
            continue;
        }
        memset(&ent, 0, sizeof ent);
        ent.name = name;
        ent.cookie = (uint64_t)d->d_off;
        ent.attr.ino = (uint64_t)d->d_ino;
        ent.attr.mode = (uint32_t)DTTOIF(d->d_type);
        if ((flags & FS9_READDIR_PLUS) || d->d_type == DT_UNKNOWN) {
            if (fstatat(h->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                lfs_attr_from_stat(&st, &ent.attr);
                ent.full_attr = 1;
            } else if (errno == ENOENT) {
                /* Removed since getdents: not an entry any more. */
                ds->pos += d->d_reclen;
                ds->resume = (uint64_t)d->d_off;
                continue;
            } else if (d->d_type == DT_UNKNOWN) {
                r = -errno; /* the type is required and unknowable */
                goto out;
            }
            /* PLUS but not stat-able (e.g. no search permission): the
             * entry goes out with what getdents told. */
        }
        r = emit(emit_arg, &ent);
        if (r != 0) {
            if (r > 0)
                r = 0; /* full: this entry is asked for again */
            goto out;
        }
        ds->pos += d->d_reclen;
        ds->resume = (uint64_t)d->d_off;
    }
out:
    pthread_mutex_unlock(&ds->lock);
    return r;
}

/* ------------------------------------------------------------------------
 * Namespace changes.
 * ---------------------------------------------------------------------- */

static int lfs_remove(void *self, const struct fs9_ctx *ctx, const char *path,
                      uint32_t flags)
{
    struct localfs *lfs = self;
    struct lfs_at at;
    (void)ctx;

    if (flags & ~(uint32_t)FS9_REMOVE_DIR)
        return -EINVAL;
    if (lfs_is_root(path))
        return (flags & FS9_REMOVE_DIR) ? -EBUSY : -EISDIR;
    int r = lfs_at_resolve(lfs, path, &at);
    if (r < 0)
        return r;
    if (lfs->readonly)
        r = -EROFS;
    else if (unlinkat(at.dirfd, at.name,
                      (flags & FS9_REMOVE_DIR) ? AT_REMOVEDIR : 0) < 0)
        r = -errno;
    lfs_at_release(&at);
    return r;
}

static int lfs_rename(void *self, const struct fs9_ctx *ctx, const char *from,
                      const char *to, uint32_t flags)
{
    struct localfs *lfs = self;
    struct lfs_at src, dst;
    unsigned int rflags = 0;
    (void)ctx;

    if (flags & ~(uint32_t)(FS9_RENAME_NOREPLACE | FS9_RENAME_EXCHANGE))
        return -EINVAL;
    if (flags & FS9_RENAME_NOREPLACE)
        rflags |= RENAME_NOREPLACE;
    if (flags & FS9_RENAME_EXCHANGE)
        rflags |= RENAME_EXCHANGE;
    if (lfs_is_root(from) || lfs_is_root(to))
        return -EBUSY;
    int r = lfs_at_resolve(lfs, from, &src);
    if (r < 0)
        return r;
    r = lfs_at_resolve(lfs, to, &dst);
    if (r < 0) {
        lfs_at_release(&src);
        return r;
    }
    if (lfs->readonly)
        r = -EROFS;
    else if (renameat2(src.dirfd, src.name, dst.dirfd, dst.name, rflags) < 0)
        r = -errno;
    lfs_at_release(&dst);
    lfs_at_release(&src);
    return r;
}

static ssize_t lfs_readlink(void *self, const char *path, char *buf,
                            size_t size)
{
    struct localfs *lfs = self;
    char tmp[PATH_MAX + 1];
    struct lfs_at at;
    ssize_t n;

    int r = lfs_at_resolve(lfs, path, &at);
    if (r < 0)
        return r;
    n = readlinkat(at.dirfd, at.name, tmp, sizeof tmp);
    if (n < 0)
        n = -errno;
    lfs_at_release(&at);
    if (n < 0)
        return n;
    if ((size_t)n > size)
        return -ENAMETOOLONG;
    memcpy(buf, tmp, (size_t)n);
    return n;
}

/* ------------------------------------------------------------------------
 * Extended attributes.  Linux 6.13+ has getxattrat() and friends: the call
 * takes (parent descriptor, name, AT_SYMLINK_NOFOLLOW) like every other
 * *at() call here, one syscall for a top-level name.  Older kernels: the
 * object is opened O_PATH|O_NOFOLLOW (under the same RESOLVE flags) and
 * reached as /proc/self/fd/N, as passthrough_ll does; the magic link lands
 * on the object itself, a symlink included, and is not followed further.
 * create() probes which of the two works.
 * ---------------------------------------------------------------------- */

/** Where one xattr call goes. */
struct lfs_xtarget {
    struct lfs_at at;            /* *xattrat: parent and name */
    int fd;                      /* /proc: O_PATH object, owned if `owned` */
    bool owned;
    char proc[LFS_PROC_FD_LEN];  /* /proc: "/proc/self/fd/N" */
};

static int lfs_xattr_begin(const struct localfs *lfs, const char *path,
                           struct lfs_xtarget *t)
{
    t->at.owned = false;
    t->owned = false;
    if (lfs->xattrat)
        return lfs_at_resolve(lfs, path, &t->at);
    if (!lfs->proc_ok)
        return -EOPNOTSUPP;
    t->fd = lfs_object_fd(lfs, path, &t->owned);
    if (t->fd < 0)
        return t->fd;
    lfs_proc_fd(t->proc, t->fd);
    return 0;
}

static void lfs_xattr_end(struct lfs_xtarget *t)
{
    lfs_at_release(&t->at);
    if (t->owned)
        close(t->fd);
    t->owned = false;
}

/** -EROFS for a change, or -ENOENT when the object is missing (with
 *  /proc the object was opened already, so it exists). */
static int lfs_xattr_readonly_errno(const struct localfs *lfs,
                                    const struct lfs_xtarget *t)
{
    return lfs->xattrat ? lfs_readonly_errno(&t->at, false) : -EROFS;
}

static ssize_t lfs_getxattr(void *self, const char *path, const char *name,
                            void *buf, size_t size)
{
    struct localfs *lfs = self;
    struct lfs_xtarget t;
    ssize_t n;

    int r = lfs_xattr_begin(lfs, path, &t);
    if (r < 0)
        return r;
    if (size > UINT32_MAX)
        size = UINT32_MAX;
    if (lfs->xattrat) {
        struct lfs_xattr_args a = {
            .value = size ? (uint64_t)(uintptr_t)buf : 0,
            .size = (uint32_t)size,
            .flags = 0,
        };
        n = syscall(SYS_getxattrat, t.at.dirfd, t.at.name,
                    AT_SYMLINK_NOFOLLOW, name, &a, sizeof a);
    } else {
        n = getxattr(t.proc, name, size ? buf : NULL, size);
    }
    if (n < 0)
        n = -errno;
    lfs_xattr_end(&t);
    return n;
}

static ssize_t lfs_listxattr(void *self, const char *path, char *buf,
                             size_t size)
{
    struct localfs *lfs = self;
    struct lfs_xtarget t;
    ssize_t n;

    int r = lfs_xattr_begin(lfs, path, &t);
    if (r < 0)
        return r;
    if (lfs->xattrat)
        n = syscall(SYS_listxattrat, t.at.dirfd, t.at.name,
                    AT_SYMLINK_NOFOLLOW, size ? buf : NULL, size);
    else
        n = listxattr(t.proc, size ? buf : NULL, size);
    if (n < 0)
        n = -errno;
    lfs_xattr_end(&t);
    return n;
}

static int lfs_setxattr(void *self, const struct fs9_ctx *ctx,
                        const char *path, const char *name, const void *value,
                        size_t size, uint32_t flags)
{
    struct localfs *lfs = self;
    struct lfs_xtarget t;
    int xflags = 0;
    (void)ctx;

    if (flags & ~(uint32_t)(FS9_XATTR_CREATE | FS9_XATTR_REPLACE))
        return -EINVAL;
    if (flags & FS9_XATTR_CREATE)
        xflags |= XATTR_CREATE;
    if (flags & FS9_XATTR_REPLACE)
        xflags |= XATTR_REPLACE;
    if (size > UINT32_MAX)
        return -E2BIG;
    int r = lfs_xattr_begin(lfs, path, &t);
    if (r < 0)
        return r;
    if (lfs->readonly) {
        r = lfs_xattr_readonly_errno(lfs, &t);
    } else if (lfs->xattrat) {
        struct lfs_xattr_args a = {
            .value = (uint64_t)(uintptr_t)value,
            .size = (uint32_t)size,
            .flags = (uint32_t)xflags,
        };
        if (syscall(SYS_setxattrat, t.at.dirfd, t.at.name,
                    AT_SYMLINK_NOFOLLOW, name, &a, sizeof a) < 0)
            r = -errno;
    } else if (setxattr(t.proc, name, value, size, xflags) < 0) {
        r = -errno;
    }
    lfs_xattr_end(&t);
    return r;
}

static int lfs_removexattr(void *self, const struct fs9_ctx *ctx,
                           const char *path, const char *name)
{
    struct localfs *lfs = self;
    struct lfs_xtarget t;
    (void)ctx;

    int r = lfs_xattr_begin(lfs, path, &t);
    if (r < 0)
        return r;
    if (lfs->readonly) {
        r = lfs_xattr_readonly_errno(lfs, &t);
    } else if (lfs->xattrat) {
        if (syscall(SYS_removexattrat, t.at.dirfd, t.at.name,
                    AT_SYMLINK_NOFOLLOW, name) < 0)
            r = -errno;
    } else if (removexattr(t.proc, name) < 0) {
        r = -errno;
    }
    lfs_xattr_end(&t);
    return r;
}

const struct fs9_provider_ops fs9_localfs_ops = {
    .abi_version = FS9_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct fs9_provider_ops),
    .name = "localfs",
    .version = "1.0.0",
    .description = "a host directory, confined to its root",
    .create = lfs_create,
    .destroy = lfs_destroy,
    .capabilities = lfs_capabilities,
    .stat = lfs_stat,
    .wstat = lfs_wstat,
    .statfs = lfs_statfs,
    .open = lfs_open,
    .read = lfs_read,
    .write = lfs_write,
    .close = lfs_close,
    .readdir = lfs_readdir,
    .remove = lfs_remove,
    .rename = lfs_rename,
    .link = lfs_link,
    .symlink = lfs_symlink,
    .readlink = lfs_readlink,
    .getxattr = lfs_getxattr,
    .setxattr = lfs_setxattr,
    .listxattr = lfs_listxattr,
    .removexattr = lfs_removexattr,
    .fsync = lfs_fsync,
    .fallocate = lfs_fallocate,
    .poll = NULL,
    .mknod = lfs_mknod,
    .arg_key = "root",
};
