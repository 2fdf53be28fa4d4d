/* ops — the libfuse low-level operations of fs9; see front.h.
 *
 * Every operation follows one shape:
 *   1. on the request thread: copy the arguments into a `struct op`, turn
 *      nodeids into namespace paths (inode table), route them (mount trie);
 *   2. run op->exec — right here when the provider never blocks, otherwise
 *      on a pool thread through the dispatcher;
 *   3. exec makes the provider calls through the router, then claims the
 *      right to answer (op_claim) and replies.  A claim lost to a timeout or
 *      an interrupt means the kernel already has its answer: exec cleans up
 *      what it made (a late open is closed) and sends nothing.
 * Changes to the inode table that mirror a provider change (unlink,
 * rename) are made whether or not the claim is won: they describe the
 * provider's state, not the reply.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "core/log.h"
#include "core/router.h"
#include "fuse/front.h"
#include "fuse/wire.h"

enum opcode {
    OP_LOOKUP, OP_GETATTR, OP_SETATTR, OP_READLINK, OP_MKNOD, OP_MKDIR,
    OP_UNLINK, OP_RMDIR, OP_SYMLINK, OP_RENAME, OP_LINK, OP_OPEN, OP_READ,
    OP_WRITE, OP_RELEASE, OP_FSYNC, OP_OPENDIR, OP_READDIR, OP_READDIRPLUS,
    OP_RELEASEDIR, OP_STATFS, OP_SETXATTR, OP_GETXATTR, OP_LISTXATTR,
    OP_REMOVEXATTR, OP_CREATE, OP_FALLOCATE, OP_POLL,
};

/* Names in /.fs9/stats, in enum opcode order. */
static const char *const op_names[] = {
    "lookup", "getattr", "setattr", "readlink", "mknod", "mkdir", "unlink",
    "rmdir", "symlink", "rename", "link", "open", "read", "write", "release",
    "fsync", "opendir", "readdir", "readdirplus", "releasedir", "statfs",
    "setxattr", "getxattr", "listxattr", "removexattr", "create",
    "fallocate", "poll", NULL,
};

struct op {
    struct fs9_work work; /* first: the dispatcher hands us back this */
    struct fs9_fuse *fs;
    fuse_req_t req;
    int code;
    int interruptible; /* an interrupt callback is registered */
    int (*exec)(struct op *op);
    struct fs9_ctx ctx;
    struct fs9_route r, r2; /* r2: the target of rename and link */
    struct fs9_handle *h;   /* acquired for the call; released with op */
    uint64_t ino, parent, newparent, fh;
    const char *name, *newname; /* into buf */
    char *path, *path2;         /* into buf */
    uint64_t off, len;
    size_t size;
    uint32_t flags, mode;
    uint64_t rdev;
    int datasync, fmode, to_set;
    int kill; /* the kernel asked to clear suid/sgid (see kill_suidgid) */
    struct stat st;
    struct fuse_file_info fi;
    struct fuse_pollhandle *ph;
    uint64_t t0; /* when the request arrived, for /.fs9/stats */
    const void *data; /* write data or xattr value: borrowed inline, into
                         buf when the call goes to the pool */
    size_t borrowed; /* bytes of `data` lent by libfuse: copied into
                        `owned` if the call goes to the pool */
    void *owned;     /* owned copy of `data`, or NULL */
    uint64_t *entered; /* readdirplus: nodeids handed out, to undo */
    size_t nentered, capentered;
    char buf[];
};

/* ---- small helpers ---- */

static struct fs9_fuse *FS(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

static void attr_to_stat(const struct fs9_attr *a, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_ino = a->ino;
    st->st_mode = a->mode;
    st->st_nlink = a->nlink;
    st->st_uid = a->uid;
    st->st_gid = a->gid;
    st->st_rdev = a->rdev;
    st->st_size = (off_t)a->size;
    st->st_blocks = (blkcnt_t)a->blocks;
    st->st_blksize = a->blksize ? a->blksize : 4096;
    st->st_atim = a->atime;
    st->st_mtim = a->mtime;
    st->st_ctim = a->ctime;
}

static int external(const struct fs9_mount *m)
{
    return (m->caps & FS9_CAP_EXTERNAL_CHANGES) != 0;
}

static double entry_timeout(struct fs9_fuse *fs, const struct fs9_mount *m)
{
    return external(m) ? fs->opt.ext_timeout : fs->opt.entry_timeout;
}

static double attr_timeout(struct fs9_fuse *fs, const struct fs9_mount *m)
{
    return external(m) ? fs->opt.ext_timeout : fs->opt.attr_timeout;
}

/* A buffer per thread for read replies, kept for the thread's life.  A
 * fresh block per reply can be mmapped, faulted in page by page and
 * unmapped on every call: glibc raises its mmap threshold to the size of a
 * freed mapped block, which for a page-aligned block is a few bytes short
 * of the next identical request (what costs passthrough_ll its
 * fadvise-hinted sequential reads; README, "Performance").  Buffers for
 * replies above THREAD_BUFFER_HUGE / 8 are 2 MiB-aligned and asked to be
 * a transparent huge page: pread() fills them and writev() pins them into
 * /dev/fuse through one page-table entry instead of 256, which measured
 * 25-30 % less CPU per MiB read through localfs. */
#define THREAD_BUFFER_HUGE ((size_t)2 << 20)
static _Thread_local char *tls_buf;
static _Thread_local size_t tls_size;
static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void tls_free(void *p)
{
    free(p);
}

static void tls_init(void)
{
    pthread_key_create(&tls_key, tls_free);
}

static char *thread_buffer(size_t size)
{
    if (size > tls_size) {
        pthread_once(&tls_once, tls_init);
        size_t cap = size;
        void *b = NULL;
        if (size > THREAD_BUFFER_HUGE / 8) {
            cap = (size + THREAD_BUFFER_HUGE - 1) & ~(THREAD_BUFFER_HUGE - 1);
            if (posix_memalign(&b, THREAD_BUFFER_HUGE, cap) != 0)
                b = NULL;
            else
                madvise(b, cap, MADV_HUGEPAGE); /* a hint: may be refused */
        } else {
            b = malloc(size);
        }
        if (!b)
            return NULL;
        free(tls_buf); /* scratch: nothing to keep */
        tls_buf = b;
        tls_size = cap;
        pthread_setspecific(tls_key, b);
    }
    return tls_buf;
}

static uint32_t open_flags(int f)
{
    uint32_t o = 0;
    switch (f & O_ACCMODE) {
    case O_RDONLY:
        o |= FS9_OPEN_READ;
        break;
    case O_WRONLY:
        o |= FS9_OPEN_WRITE;
        break;
    default:
        o |= FS9_OPEN_READ | FS9_OPEN_WRITE;
        break;
    }
    if (f & O_CREAT)
        o |= FS9_OPEN_CREATE;
    if (f & O_EXCL)
        o |= FS9_OPEN_EXCL;
    if (f & O_TRUNC)
        o |= FS9_OPEN_TRUNC;
    if (f & O_APPEND)
        o |= FS9_OPEN_APPEND;
    if (f & O_NONBLOCK)
        o |= FS9_OPEN_NONBLOCK;
    if (f & (O_SYNC | O_DSYNC))
        o |= FS9_OPEN_SYNC;
    if (f & O_DIRECT)
        o |= FS9_OPEN_DIRECT;
    if (f & O_NOATIME)
        o |= FS9_OPEN_NOATIME;
    return o;
}

/* ---- op life cycle ---- */

static void op_free(struct op *op)
{
    fs9_route_end(&op->r);
    fs9_route_end(&op->r2);
    if (op->h)
        fs9_ns_handle_put(op->fs->ns, op->h);
    if (op->ph)
        fuse_pollhandle_destroy(op->ph);
    free(op->owned);
    free(op->entered);
    free(op);
}

/* Allocate an op with room for two paths, two names and `extra` bytes. */
static struct op *op_new(fuse_req_t req, int code, int (*exec)(struct op *),
                         const char *path, const char *path2,
                         const char *name, const char *newname, size_t extra)
{
    size_t lp = path ? strlen(path) + 1 : 0;
    size_t lp2 = path2 ? strlen(path2) + 1 : 0;
    size_t ln = name ? strlen(name) + 1 : 0;
    size_t ln2 = newname ? strlen(newname) + 1 : 0;
    struct op *op = malloc(sizeof *op + lp + lp2 + ln + ln2 + extra);
    if (!op)
        return NULL;
    memset(op, 0, sizeof *op);
    op->fs = FS(req);
    op->req = req;
    op->code = code;
    op->exec = exec;
    const struct fuse_ctx *c = fuse_req_ctx(req);
    op->ctx.uid = c->uid;
    op->ctx.gid = c->gid;
    op->ctx.pid = c->pid;
    op->ctx.umask = c->umask;
    op->kill = fs9_wire_kill_suidgid();
    char *p = op->buf;
    if (path) {
        op->path = memcpy(p, path, lp);
        p += lp;
    }
    if (path2) {
        op->path2 = memcpy(p, path2, lp2);
        p += lp2;
    }
    if (name) {
        op->name = memcpy(p, name, ln);
        p += ln;
    }
    if (newname) {
        op->newname = memcpy(p, newname, ln2);
        p += ln2;
    }
    op->data = extra ? p : NULL;
    op->t0 = fs9_now_ns();
    fs9_work_init(&op->work, op->fs->d);
    /* What a queued request keeps in memory: the dispatcher's budget. */
    op->work.cost = sizeof *op + lp + lp2 + ln + ln2 + extra;
    return op;
}

static void op_record(struct op *op, int failed)
{
    fs9_stats_record(fs9_ns_stats(op->fs->ns), (unsigned)op->code, failed,
                     fs9_now_ns() - op->t0);
}

/* Win the right to answer (with an error when `failed`).  An interruptible
 * op first unregisters its interrupt callback, which also waits for one
 * that is running. */
static int op_claim_as(struct op *op, int failed)
{
    if (!fs9_work_claim(&op->work))
        return 0;
    if (op->interruptible)
        fuse_req_interrupt_func(op->req, NULL, NULL);
    op_record(op, failed);
    return 1;
}

static int op_claim(struct op *op)
{
    return op_claim_as(op, 0);
}

static int reply_err(struct op *op, int rc)
{
    if (op_claim_as(op, rc != 0))
        fuse_reply_err(op->req, rc < 0 ? -rc : rc);
    return FS9_WORK_DONE;
}

static int op_run(struct fs9_work *w)
{
    struct op *op = (struct op *)w;
    return op->exec(op);
}

static void op_answer(struct fs9_work *w, int err)
{
    struct op *op = (struct op *)w;
    if (op->interruptible)
        fuse_req_interrupt_func(op->req, NULL, NULL);
    op_record(op, err != 0);
    if (err == 0)
        fuse_reply_buf(op->req, NULL, 0); /* end of a parked read */
    else
        fuse_reply_err(op->req, err);
}

static void op_destroy(struct fs9_work *w)
{
    op_free((struct op *)w);
}

static void interrupt_cb(fuse_req_t req, void *data)
{
    (void)req;
    fs9_work_interrupt(&((struct op *)data)->work);
}

/* Step 2: run inline or hand to the dispatcher. */
/* Run `op` on this thread, then free it or, when it must wait for data,
 * park it (the interrupt callback is registered first so Ctrl-C ends the
 * wait). */
static void run_here(struct op *op)
{
    int rc = op->exec(op);
    fs9_dispatcher_inline_end(op->fs->d, &op->work);
    if (rc == FS9_WORK_PARK) {
        op->interruptible = 1;
        op->work.flags |= FS9_WORK_INTERRUPTIBLE | FS9_WORK_NO_DEADLINE;
        fuse_req_interrupt_func(op->req, interrupt_cb, op);
        fs9_dispatcher_park(op->fs->d, &op->work);
        return;
    }
    op_free(op);
}

/* Step 2: run inline or hand to the dispatcher.  Providers that never
 * block run here; others too while their mount has a free inline slot and
 * nothing queued (dispatch.h), which saves the two thread hand-offs of the
 * pool; everything else goes to the pool. */
static void op_go(struct op *op, struct fs9_mount *m, int interruptible)
{
    struct fs9_fuse *fs = op->fs;
    op->work.mount = m;
    op->work.run = op_run;
    op->work.answer = op_answer;
    op->work.destroy = op_destroy;
    if (fs->opt.inline_calls && !atomic_load(&m->dead)) {
        if ((m->caps & FS9_CAP_NONBLOCKING) ||
            fs9_dispatcher_inline_begin(fs->d, &op->work) == 0) {
            run_here(op);
            return;
        }
    }
    if (op->borrowed) {
        /* libfuse reuses its buffer once we return. */
        op->owned = malloc(op->borrowed);
        if (!op->owned) {
            fuse_reply_err(op->req, ENOMEM);
            op_free(op);
            return;
        }
        memcpy(op->owned, op->data, op->borrowed);
        op->data = op->owned;
        op->work.cost += op->borrowed;
        op->borrowed = 0;
    }
    if (interruptible) {
        op->interruptible = 1;
        op->work.flags |= FS9_WORK_INTERRUPTIBLE;
        fuse_req_interrupt_func(op->req, interrupt_cb, op);
    }
    fs9_dispatcher_submit(fs->d, &op->work);
}

/* Build the path of `ino` (with "/name" when given) into `buf`. */
static int node_path(fuse_req_t req, fuse_ino_t ino, const char *name,
                     char *buf, size_t size)
{
    if (name && strlen(name) > NAME_MAX)
        return -ENAMETOOLONG;
    return fs9_inode_path(FS(req)->inodes, ino, name, buf, size);
}

/* An op on path `ino`/`name`, routed.  NULL after replying an error. */
static struct op *path_op(fuse_req_t req, int code, int (*exec)(struct op *),
                          fuse_ino_t ino, const char *name, size_t extra)
{
    char path[PATH_MAX + NAME_MAX + 2];
    int rc = node_path(req, ino, name, path, sizeof path);
    if (rc < 0) {
        fuse_reply_err(req, rc == -ESTALE ? ESTALE : -rc);
        return NULL;
    }
    struct op *op = op_new(req, code, exec, path, NULL, name, NULL, extra);
    if (!op) {
        fuse_reply_err(req, ENOMEM);
        return NULL;
    }
    op->ino = ino;
    op->parent = ino;
    if (fs9_ns_route(op->fs->ns, op->path, &op->r) < 0) {
        fuse_reply_err(req, EIO);
        op_free(op);
        return NULL;
    }
    return op;
}

/* An op on open handle `fh`.  NULL after replying an error. */
static struct op *handle_op(fuse_req_t req, int code,
                            int (*exec)(struct op *), fuse_ino_t ino,
                            uint64_t fh, size_t extra)
{
    struct fs9_fuse *fs = FS(req);
    struct fs9_handle *h = fs9_ns_handle_get(fs->ns, fh);
    if (!h) {
        /* Only a forced unmount takes handles from under the kernel. */
        fuse_reply_err(req, EIO);
        return NULL;
    }
    struct op *op = op_new(req, code, exec, NULL, NULL, NULL, NULL, extra);
    if (!op) {
        fs9_ns_handle_put(fs->ns, h);
        fuse_reply_err(req, ENOMEM);
        return NULL;
    }
    op->h = h;
    op->ino = ino;
    op->fh = fh;
    return op;
}

/* A route for the object under handle `h` (for objects removed while
 * open, whose path no longer leads to them). */
static void route_from_handle(struct op *op)
{
    struct fs9_mount *m = op->h->mount;
    fs9_mount_ref(m);
    op->r.mount = m;
    op->r.path = op->h->path;
    op->r.rel = fs9_handle_rel(op->h);
    op->r.flags = 0;
}

/* Is the caller root, or in group `gid` (primary or supplementary)? */
static bool caller_in_group(struct op *op, uint32_t gid)
{
    if (op->ctx.uid == 0 || op->ctx.gid == gid)
        return true;
    gid_t groups[64];
    int n = fuse_req_getgroups(op->req, 64, groups);
    for (int i = 0; i < n && i < 64; i++)
        if (groups[i] == gid)
            return true;
    return false;
}

/* FUSE_HANDLE_KILLPRIV_V2 (wire.h): the kernel flagged this request — a
 * write, truncate or O_TRUNC open by a caller without CAP_FSETID, or a
 * chown — so clear set-user-ID and set-group-ID as the VFS does for
 * local filesystems.  The VFS makes that change whatever the caller may do
 * (ATTR_FORCE), so it is made as the daemon.  `a` holds the object's
 * attributes and gets the new ones; `r` is its route, NULL to route from
 * op->h.  0 when nothing was to clear, or the wstat's result.
 *
 * A reply without attributes (write, open) leaves the kernel with the old
 * mode for up to attr_timeout, during which exec(2) would still honour the
 * bits, so `inval` drops its cached attributes, before the reply.  This
 * is safe inside the request: with no page range to drop, the kernel only
 * marks the attributes stale and takes no lock the request holds. */
static int kill_suidgid(struct op *op, const struct fs9_route *r,
                        struct fs9_handle *h, struct fs9_attr *a, bool inval)
{
    if (!S_ISREG(a->mode))
        return 0;
    uint32_t kill = S_ISUID;
    /* As setattr_should_drop_sgid(): set-group-ID goes when the file is
     * group-executable, or else (mandatory-locking marker) when the caller
     * is neither in the file's group nor root. */
    if ((a->mode & S_ISGID) &&
        ((a->mode & S_IXGRP) || !caller_in_group(op, a->gid)))
        kill |= S_ISGID;
    if (!(a->mode & kill))
        return 0;
    if (!r) {
        route_from_handle(op);
        r = &op->r;
    }
    struct fs9_ctx self = op->ctx;
    self.uid = (uint32_t)geteuid();
    self.gid = (uint32_t)getegid();
    struct fs9_wstat w = {.valid = FS9_WSTAT_MODE,
                          .mode = a->mode & 07777 & ~kill};
    int rc = fs9_ns_wstat(op->fs->ns, &self, r, h, &w, a);
    if (rc == 0 && inval && op->ino)
        fuse_lowlevel_notify_inval_inode(op->fs->se, op->ino, -1, 0);
    return rc;
}

/* ---- entries ---- */

/* Hand entry (`parent`, `name`) with attributes `a` to the kernel,
 * counting one lookup. */
static int reply_entry(struct op *op, uint64_t parent, const char *name,
                       const struct fs9_attr *a, struct fs9_mount *m)
{
    if (!op_claim(op))
        return FS9_WORK_DONE;
    struct fs9_fuse *fs = op->fs;
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    e.ino = fs9_inode_enter(fs->inodes, parent, name, a->ino,
                            a->mode & S_IFMT, 1);
    if (e.ino == 0) {
        fuse_reply_err(op->req, ENOMEM);
        return FS9_WORK_DONE;
    }
    attr_to_stat(a, &e.attr);
    e.attr_timeout = attr_timeout(fs, m);
    e.entry_timeout = entry_timeout(fs, m);
    if (fuse_reply_entry(op->req, &e) != 0)
        fs9_inode_forget(fs->inodes, e.ino, 1);
    return FS9_WORK_DONE;
}

static int reply_attr(struct op *op, const struct fs9_attr *a,
                      struct fs9_mount *m)
{
    if (!op_claim(op))
        return FS9_WORK_DONE;
    struct stat st;
    attr_to_stat(a, &st);
    fuse_reply_attr(op->req, &st, attr_timeout(op->fs, m));
    return FS9_WORK_DONE;
}

/* ---- lookup, forget, getattr, setattr ---- */

static int exec_lookup(struct op *op)
{
    struct fs9_attr a;
    int rc = fs9_ns_stat(op->fs->ns, &op->ctx, &op->r, NULL, &a);
    if (rc == -ENOENT && op->fs->opt.negative_timeout > 0 &&
        !external(op->r.mount)) {
        if (op_claim_as(op, 1)) { /* ENOENT, cached by the kernel */
            struct fuse_entry_param e;
            memset(&e, 0, sizeof e);
            e.entry_timeout = op->fs->opt.negative_timeout;
            fuse_reply_entry(op->req, &e);
        }
        return FS9_WORK_DONE;
    }
    if (rc < 0)
        return reply_err(op, rc);
    return reply_entry(op, op->parent, op->name, &a, op->r.mount);
}

static void fs9_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct op *op = path_op(req, OP_LOOKUP, exec_lookup, parent, name, 0);
    if (op)
        op_go(op, op->r.mount, 1);
}

static void fs9_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    fs9_inode_forget(FS(req)->inodes, ino, nlookup);
    fuse_reply_none(req);
}

static void fs9_forget_multi(fuse_req_t req, size_t count,
                             struct fuse_forget_data *forgets)
{
    struct fs9_inode_table *t = FS(req)->inodes;
    for (size_t i = 0; i < count; i++)
        fs9_inode_forget(t, forgets[i].ino, forgets[i].nlookup);
    fuse_reply_none(req);
}

static int exec_getattr(struct op *op)
{
    struct fs9_attr a;
    int rc = fs9_ns_stat(op->fs->ns, &op->ctx, &op->r, op->h, &a);
    if (rc < 0)
        return reply_err(op, rc);
    return reply_attr(op, &a, op->r.mount);
}

/* An op on node `ino` by path, or — when the node's entry was removed
 * while open — through one of its open handles. */
static struct op *node_op(fuse_req_t req, int code, int (*exec)(struct op *),
                          fuse_ino_t ino, struct fuse_file_info *fi,
                          size_t extra)
{
    struct fs9_fuse *fs = FS(req);
    char path[PATH_MAX + 1];
    int rc = node_path(req, ino, NULL, path, sizeof path);
    uint64_t fh = fi ? fi->fh : 0;
    if (rc == -ENOENT && !fh)
        fh = fs9_inode_handle_any(fs->inodes, ino);
    struct op *op;
    if (rc >= 0) {
        op = path_op(req, code, exec, ino, NULL, extra);
        if (op && fh) {
            /* Prefer the handle: same object, and it survives removal. */
            op->h = fs9_ns_handle_get(fs->ns, fh);
            if (op->h && op->h->mount != op->r.mount) {
                fs9_ns_handle_put(fs->ns, op->h);
                op->h = NULL;
            }
        }
        return op;
    }
    if (rc != -ENOENT || !fh) {
        fuse_reply_err(req, rc == -ESTALE ? ESTALE : -rc);
        return NULL;
    }
    op = handle_op(req, code, exec, ino, fh, extra);
    if (op)
        route_from_handle(op);
    return op;
}

static void fs9_getattr(fuse_req_t req, fuse_ino_t ino,
                        struct fuse_file_info *fi)
{
    struct op *op = node_op(req, OP_GETATTR, exec_getattr, ino, fi, 0);
    if (op)
        op_go(op, op->r.mount, 1);
}

static int exec_setattr(struct op *op)
{
    struct fs9_wstat w;
    memset(&w, 0, sizeof w);
    int s = op->to_set;
    if (s & FUSE_SET_ATTR_MODE) {
        w.valid |= FS9_WSTAT_MODE;
        w.mode = op->st.st_mode & 07777;
    }
    if (s & FUSE_SET_ATTR_UID) {
        w.valid |= FS9_WSTAT_UID;
        w.uid = op->st.st_uid;
    }
    if (s & FUSE_SET_ATTR_GID) {
        w.valid |= FS9_WSTAT_GID;
        w.gid = op->st.st_gid;
    }
    if (s & FUSE_SET_ATTR_SIZE) {
        w.valid |= FS9_WSTAT_SIZE;
        w.size = (uint64_t)op->st.st_size;
    }
    if (s & FUSE_SET_ATTR_ATIME_NOW) {
        w.valid |= FS9_WSTAT_ATIME_NOW;
    } else if (s & FUSE_SET_ATTR_ATIME) {
        w.valid |= FS9_WSTAT_ATIME;
        w.atime = op->st.st_atim;
    }
    if (s & FUSE_SET_ATTR_MTIME_NOW) {
        w.valid |= FS9_WSTAT_MTIME_NOW;
    } else if (s & FUSE_SET_ATTR_MTIME) {
        w.valid |= FS9_WSTAT_MTIME;
        w.mtime = op->st.st_mtim;
    }
    if (s & FUSE_SET_ATTR_CTIME) {
        w.valid |= FS9_WSTAT_CTIME;
        w.ctime = op->st.st_ctim;
    }
    struct fs9_attr a;
    int rc = fs9_ns_wstat(op->fs->ns, &op->ctx, &op->r, op->h, &w, &a);
    if (rc == 0 && op->kill && !(s & FUSE_SET_ATTR_MODE))
        rc = kill_suidgid(op, &op->r, op->h, &a, false);
    if (rc < 0)
        return reply_err(op, rc);
    return reply_attr(op, &a, op->r.mount);
}

static void fs9_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
                        int to_set, struct fuse_file_info *fi)
{
    struct op *op = node_op(req, OP_SETATTR, exec_setattr, ino, fi, 0);
    if (!op)
        return;
    op->st = *attr;
    op->to_set = to_set;
    op_go(op, op->r.mount, 0);
}

/* ---- links and special files ---- */

static int exec_readlink(struct op *op)
{
    char buf[PATH_MAX + 1];
    ssize_t n = fs9_ns_readlink(op->fs->ns, &op->r, buf, PATH_MAX);
    if (n < 0)
        return reply_err(op, (int)n);
    buf[n] = '\0';
    if (op_claim(op))
        fuse_reply_readlink(op->req, buf);
    return FS9_WORK_DONE;
}

static void fs9_readlink(fuse_req_t req, fuse_ino_t ino)
{
    struct op *op = path_op(req, OP_READLINK, exec_readlink, ino, NULL, 0);
    if (op)
        op_go(op, op->r.mount, 1);
}

static int exec_mknod(struct op *op)
{
    struct fs9_attr a;
    int rc = fs9_ns_mknod(op->fs->ns, &op->ctx, &op->r, op->mode, op->rdev,
                          &a);
    if (rc < 0)
        return reply_err(op, rc);
    return reply_entry(op, op->parent, op->name, &a, op->r.mount);
}

static void fs9_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
                      mode_t mode, dev_t rdev)
{
    struct op *op = path_op(req, OP_MKNOD, exec_mknod, parent, name, 0);
    if (!op)
        return;
    op->mode = mode;
    op->rdev = rdev;
    op_go(op, op->r.mount, 0);
}

static int exec_mkdir(struct op *op)
{
    struct fs9_open_out out;
    uint64_t id;
    int rc = fs9_ns_open(op->fs->ns, &op->ctx, &op->r,
                         FS9_OPEN_CREATE | FS9_OPEN_EXCL | FS9_OPEN_DIRECTORY |
                             FS9_OPEN_NOHANDLE,
                         S_IFDIR | (op->mode & 07777), 0, &id, &out);
    if (rc < 0)
        return reply_err(op, rc);
    return reply_entry(op, op->parent, op->name, &out.attr, op->r.mount);
}

static void fs9_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
                      mode_t mode)
{
    struct op *op = path_op(req, OP_MKDIR, exec_mkdir, parent, name, 0);
    if (!op)
        return;
    op->mode = mode;
    op_go(op, op->r.mount, 0);
}

static int exec_remove(struct op *op)
{
    uint32_t flags = op->code == OP_RMDIR ? FS9_REMOVE_DIR : 0;
    int rc = fs9_ns_remove(op->fs->ns, &op->ctx, &op->r, flags);
    if (rc == 0)
        fs9_inode_unlink(op->fs->inodes, op->parent, op->name);
    return reply_err(op, rc);
}

static void fs9_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct op *op = path_op(req, OP_UNLINK, exec_remove, parent, name, 0);
    if (op)
        op_go(op, op->r.mount, 0);
}

static void fs9_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct op *op = path_op(req, OP_RMDIR, exec_remove, parent, name, 0);
    if (op)
        op_go(op, op->r.mount, 0);
}

static int exec_symlink(struct op *op)
{
    struct fs9_attr a;
    int rc = fs9_ns_symlink(op->fs->ns, &op->ctx, op->data, &op->r, &a);
    if (rc < 0)
        return reply_err(op, rc);
    return reply_entry(op, op->parent, op->name, &a, op->r.mount);
}

static void fs9_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
                        const char *name)
{
    size_t len = strlen(link) + 1;
    struct op *op = path_op(req, OP_SYMLINK, exec_symlink, parent, name, len);
    if (!op)
        return;
    memcpy((char *)op->data, link, len);
    op_go(op, op->r.mount, 0);
}

/* An op with a second path (rename, link), both routed. */
static struct op *two_path_op(fuse_req_t req, int code,
                              int (*exec)(struct op *), fuse_ino_t p1,
                              const char *n1, fuse_ino_t p2, const char *n2)
{
    char a[PATH_MAX + NAME_MAX + 2], b[PATH_MAX + NAME_MAX + 2];
    int rc = node_path(req, p1, n1, a, sizeof a);
    if (rc >= 0)
        rc = node_path(req, p2, n2, b, sizeof b);
    if (rc < 0) {
        fuse_reply_err(req, -rc);
        return NULL;
    }
    struct op *op = op_new(req, code, exec, a, b, n1, n2, 0);
    if (!op) {
        fuse_reply_err(req, ENOMEM);
        return NULL;
    }
    op->parent = p1;
    op->ino = p1;
    op->newparent = p2;
    if (fs9_ns_route(op->fs->ns, op->path, &op->r) < 0 ||
        fs9_ns_route(op->fs->ns, op->path2, &op->r2) < 0) {
        fuse_reply_err(req, EIO);
        op_free(op);
        return NULL;
    }
    return op;
}

static int exec_rename(struct op *op)
{
    uint32_t f = 0;
    if (op->flags & RENAME_NOREPLACE)
        f |= FS9_RENAME_NOREPLACE;
    if (op->flags & RENAME_EXCHANGE)
        f |= FS9_RENAME_EXCHANGE;
    int rc = fs9_ns_rename(op->fs->ns, &op->ctx, &op->r, &op->r2, f);
    if (rc == 0)
        fs9_inode_rename(op->fs->inodes, op->parent, op->name, op->newparent,
                         op->newname, (f & FS9_RENAME_EXCHANGE) != 0);
    return reply_err(op, rc);
}

static void fs9_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
                       fuse_ino_t newparent, const char *newname,
                       unsigned int flags)
{
    if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
        fuse_reply_err(req, EINVAL); /* RENAME_WHITEOUT: not for us */
        return;
    }
    struct op *op = two_path_op(req, OP_RENAME, exec_rename, parent, name,
                                newparent, newname);
    if (!op)
        return;
    op->flags = flags;
    op_go(op, op->r.mount, 0);
}

static int exec_link(struct op *op)
{
    struct fs9_attr a;
    int rc = fs9_ns_link(op->fs->ns, &op->ctx, &op->r, &op->r2, &a);
    if (rc < 0)
        return reply_err(op, rc);
    return reply_entry(op, op->newparent, op->newname, &a, op->r.mount);
}

static void fs9_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
                     const char *newname)
{
    struct op *op = two_path_op(req, OP_LINK, exec_link, ino, NULL,
                                newparent, newname);
    if (op)
        op_go(op, op->r.mount, 0);
}

/* ---- files ---- */

static void fill_open_reply(struct op *op, const struct fs9_open_out *out,
                            struct fuse_file_info *fi, uint64_t id)
{
    struct fs9_fuse *fs = op->fs;
    struct fs9_mount *m = op->r.mount;
    fi->fh = id;
    fi->direct_io = fs->opt.direct_io ||
                    (out->flags & FS9_OPEN_OUT_DIRECT_IO) != 0;
    fi->keep_cache = !fi->direct_io && !external(m) &&
                     (fs->opt.kernel_cache ||
                      (out->flags & FS9_OPEN_OUT_KEEP_CACHE));
    fi->nonseekable = (out->flags & FS9_OPEN_OUT_NONSEEKABLE) != 0;
    /* FLUSH would only be answered "done" (fs9_flush: every write reached
     * the provider before it was answered, and locks stay in the kernel),
     * so the kernel need not send it: close(2) saves a round trip, about
     * 20 us of an open+close of 100 us on localfs.  With the write-back
     * cache the kernel flushes on close regardless. */
    fi->noflush = 1;
}

static uint32_t adjust_for_writeback(struct fs9_fuse *fs, uint32_t f)
{
    /* With the kernel's write-back cache the kernel may read to fill a
     * page of a write-only file, and it places O_APPEND writes itself. */
    if (fs->opt.writeback) {
        if (f & FS9_OPEN_WRITE)
            f |= FS9_OPEN_READ;
        f &= ~(uint32_t)FS9_OPEN_APPEND;
    }
    return f;
}

static int exec_open(struct op *op)
{
    struct fs9_fuse *fs = op->fs;
    struct fs9_open_out out;
    uint64_t id = 0;
    int rc = fs9_ns_open(fs->ns, &op->ctx, &op->r, op->flags, 0, op->ino,
                         &id, &out);
    if (rc < 0)
        return reply_err(op, rc);
    if (op->kill && (op->flags & FS9_OPEN_TRUNC) &&
        (rc = kill_suidgid(op, &op->r, NULL, &out.attr, true)) < 0) {
        fs9_ns_close(fs->ns, id, 0);
        return reply_err(op, rc);
    }
    if (!op_claim(op)) {
        fs9_ns_close(fs->ns, id, 0); /* too late: nobody will use it */
        return FS9_WORK_DONE;
    }
    fill_open_reply(op, &out, &op->fi, id);
    fs9_inode_handle_add(fs->inodes, op->ino, id);
    if (fuse_reply_open(op->req, &op->fi) != 0) {
        fs9_inode_handle_del(fs->inodes, op->ino, id);
        fs9_ns_close(fs->ns, id, 0);
    }
    return FS9_WORK_DONE;
}

static void fs9_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct op *op = path_op(req, OP_OPEN, exec_open, ino, NULL, 0);
    if (!op)
        return;
    op->fi = *fi;
    op->flags = adjust_for_writeback(op->fs, open_flags(fi->flags) &
                                     ~(uint32_t)(FS9_OPEN_CREATE |
                                                 FS9_OPEN_EXCL));
    op_go(op, op->r.mount, !(op->flags & FS9_OPEN_TRUNC));
}

static int exec_create(struct op *op)
{
    struct fs9_fuse *fs = op->fs;
    struct fs9_open_out out;
    uint64_t id = 0;
    int rc = fs9_ns_open(fs->ns, &op->ctx, &op->r, op->flags,
                         S_IFREG | (op->mode & 07777), 0, &id, &out);
    if (rc < 0)
        return reply_err(op, rc);
    if (!op_claim(op)) {
        fs9_ns_close(fs->ns, id, 0);
        return FS9_WORK_DONE;
    }
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    e.ino = fs9_inode_enter(fs->inodes, op->parent, op->name, out.attr.ino,
                            out.attr.mode & S_IFMT, 1);
    if (e.ino == 0) {
        fs9_ns_close(fs->ns, id, 0);
        fuse_reply_err(op->req, ENOMEM);
        return FS9_WORK_DONE;
    }
    attr_to_stat(&out.attr, &e.attr);
    e.attr_timeout = attr_timeout(fs, op->r.mount);
    e.entry_timeout = entry_timeout(fs, op->r.mount);
    fill_open_reply(op, &out, &op->fi, id);
    fs9_inode_handle_add(fs->inodes, e.ino, id);
    if (fuse_reply_create(op->req, &e, &op->fi) != 0) {
        fs9_inode_handle_del(fs->inodes, e.ino, id);
        fs9_ns_close(fs->ns, id, 0);
        fs9_inode_forget(fs->inodes, e.ino, 1);
    }
    return FS9_WORK_DONE;
}

static void fs9_create(fuse_req_t req, fuse_ino_t parent, const char *name,
                       mode_t mode, struct fuse_file_info *fi)
{
    struct op *op = path_op(req, OP_CREATE, exec_create, parent, name, 0);
    if (!op)
        return;
    op->fi = *fi;
    op->mode = mode;
    op->flags = adjust_for_writeback(op->fs, open_flags(fi->flags) |
                                                 FS9_OPEN_CREATE);
    op_go(op, op->r.mount, 0);
}

static int exec_read(struct op *op)
{
    struct fs9_fuse *fs = op->fs;
    struct fs9_handle *h = op->h;
    char *buf = thread_buffer(op->size ? op->size : 1);
    if (!buf)
        return reply_err(op, -ENOMEM);
    op->work.park_seq = fs9_dispatcher_seq(h->mount);
    ssize_t n = fs9_ns_read(fs->ns, h, buf, op->size, op->off);
    if (n == -EAGAIN && (h->mount->caps & FS9_CAP_BLOCKING_READ) &&
        !(h->flags & FS9_OPEN_NONBLOCK) && !fs9_work_answered(&op->work)) {
        op->work.park_key = fs9_ns_park_key(h->mount, fs9_handle_rel(h));
        return FS9_WORK_PARK;
    }
    if (n < 0)
        return reply_err(op, (int)n);
    if (op_claim(op))
        fuse_reply_buf(op->req, buf, (size_t)n);
    return FS9_WORK_DONE;
}

static void fs9_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    struct op *op = handle_op(req, OP_READ, exec_read, ino, fi->fh, 0);
    if (!op)
        return;
    op->size = size;
    op->off = (uint64_t)off;
    op_go(op, op->h->mount, 1);
}

static int exec_write(struct op *op)
{
    if (op->kill) {
        /* Before the data, as the VFS does: a failure to clear leaves the
         * file unwritten rather than written with its privileges kept.
         * An object the provider cannot stat has no mode bits to keep. */
        struct fs9_attr a;
        int rc = fs9_ns_fstat(op->fs->ns, &op->ctx, op->h, &a) == 0
                     ? kill_suidgid(op, NULL, op->h, &a, true)
                     : 0;
        if (rc < 0)
            return reply_err(op, rc);
    }
    ssize_t n = fs9_ns_write(op->fs->ns, op->h, op->data, op->size, op->off);
    if (n < 0)
        return reply_err(op, (int)n);
    if (op_claim(op))
        fuse_reply_write(op->req, (size_t)n);
    return FS9_WORK_DONE;
}

static void fs9_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
                      size_t size, off_t off, struct fuse_file_info *fi)
{
    struct op *op = handle_op(req, OP_WRITE, exec_write, ino, fi->fh, 0);
    if (!op)
        return;
    op->data = buf; /* lent: op_go copies it if the call goes to the pool */
    op->borrowed = size;
    op->size = size;
    op->off = (uint64_t)off;
    op_go(op, op->h->mount, 0);
}

static void fs9_flush(fuse_req_t req, fuse_ino_t ino,
                      struct fuse_file_info *fi)
{
    /* Every write reached the provider before it was answered. */
    (void)ino;
    (void)fi;
    fuse_reply_err(req, 0);
}

/* Forget pollers registered for handle `fh`. */
static void pollers_drop_fh(struct fs9_fuse *fs, uint64_t fh);

static int exec_release(struct op *op)
{
    struct fs9_fuse *fs = op->fs;
    /* Drop our own reference first so the close below is not deferred
     * behind it. */
    fs9_ns_handle_put(fs->ns, op->h);
    op->h = NULL;
    pollers_drop_fh(fs, op->fh);
    fs9_inode_handle_del(fs->inodes, op->ino, op->fh);
    fs9_ns_close(fs->ns, op->fh, 0);
    return reply_err(op, 0);
}

static void fs9_release(fuse_req_t req, fuse_ino_t ino,
                        struct fuse_file_info *fi)
{
    struct op *op = handle_op(req, OP_RELEASE, exec_release, ino, fi->fh, 0);
    if (!op) {
        /* Already closed by a forced unmount. */
        return;
    }
    op_go(op, op->h->mount, 0);
}

static int exec_fsync(struct op *op)
{
    return reply_err(op, fs9_ns_fsync(op->fs->ns, op->h, op->datasync));
}

static void fs9_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
                      struct fuse_file_info *fi)
{
    struct op *op = handle_op(req, OP_FSYNC, exec_fsync, ino, fi->fh, 0);
    if (!op)
        return;
    op->datasync = datasync;
    op_go(op, op->h->mount, 0);
}

static int exec_fallocate(struct op *op)
{
    return reply_err(op, fs9_ns_fallocate(op->fs->ns, op->h, op->fmode,
                                          op->off, op->len));
}

static void fs9_fallocate(fuse_req_t req, fuse_ino_t ino, int mode,
                          off_t offset, off_t length,
                          struct fuse_file_info *fi)
{
    struct op *op = handle_op(req, OP_FALLOCATE, exec_fallocate, ino, fi->fh,
                              0);
    if (!op)
        return;
    op->fmode = mode;
    op->off = (uint64_t)offset;
    op->len = (uint64_t)length;
    op_go(op, op->h->mount, 0);
}

/* ---- directories ---- */

static int exec_opendir(struct op *op)
{
    struct fs9_fuse *fs = op->fs;
    struct fs9_open_out out;
    uint64_t id = 0;
    int rc = fs9_ns_open(fs->ns, &op->ctx, &op->r,
                         FS9_OPEN_READ | FS9_OPEN_DIRECTORY, 0, op->ino, &id,
                         &out);
    if (rc < 0)
        return reply_err(op, rc);
    if (!op_claim(op)) {
        fs9_ns_close(fs->ns, id, 0);
        return FS9_WORK_DONE;
    }
    op->fi.fh = id;
    if (fuse_reply_open(op->req, &op->fi) != 0)
        fs9_ns_close(fs->ns, id, 0);
    return FS9_WORK_DONE;
}

static void fs9_opendir(fuse_req_t req, fuse_ino_t ino,
                        struct fuse_file_info *fi)
{
    struct op *op = path_op(req, OP_OPENDIR, exec_opendir, ino, NULL, 0);
    if (!op)
        return;
    op->fi = *fi;
    op_go(op, op->r.mount, 1);
}

struct dirbuf {
    struct op *op;
    char *buf;
    size_t size, used;
    int plus;
};

static int remember_entered(struct op *op, uint64_t id)
{
    if (op->nentered == op->capentered) {
        size_t cap = op->capentered ? op->capentered * 2 : 32;
        uint64_t *v = realloc(op->entered, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        op->entered = v;
        op->capentered = cap;
    }
    op->entered[op->nentered++] = id;
    return 0;
}

static int dir_emit(void *arg, const struct fs9_ns_dirent *d)
{
    struct dirbuf *db = arg;
    struct op *op = db->op;
    size_t room = db->size - db->used;
    if (!db->plus) {
        struct stat st;
        memset(&st, 0, sizeof st);
        st.st_ino = d->attr.ino;
        st.st_mode = d->attr.mode & S_IFMT;
        size_t need = fuse_add_direntry(op->req, db->buf + db->used, room,
                                        d->name, &st, (off_t)d->next);
        if (need > room)
            return 1;
        db->used += need;
        return 0;
    }
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    int dot = d->name[0] == '.' &&
              (!d->name[1] || (d->name[1] == '.' && !d->name[2]));
    if (d->full_attr && !dot) {
        attr_to_stat(&d->attr, &e.attr);
    } else {
        /* Without attributes the kernel is given no node (nodeid 0) and
         * looks the name up itself when it needs it. */
        e.attr.st_ino = d->attr.ino;
        e.attr.st_mode = d->attr.mode & S_IFMT;
    }
    size_t need = fuse_add_direntry_plus(op->req, NULL, 0, d->name, &e,
                                         (off_t)d->next);
    if (need > room)
        return 1;
    if (d->full_attr && !dot) {
        struct fs9_mount *m = op->h->mount;
        e.ino = fs9_inode_enter(op->fs->inodes, op->ino, d->name,
                                d->attr.ino, d->attr.mode & S_IFMT, 1);
        if (e.ino && remember_entered(op, e.ino) < 0) {
            fs9_inode_forget(op->fs->inodes, e.ino, 1);
            e.ino = 0;
        }
        e.attr_timeout = attr_timeout(op->fs, m);
        e.entry_timeout = entry_timeout(op->fs, m);
    }
    fuse_add_direntry_plus(op->req, db->buf + db->used, room, d->name, &e,
                           (off_t)d->next);
    db->used += need;
    return 0;
}

static void forget_entered(struct op *op)
{
    for (size_t i = 0; i < op->nentered; i++)
        fs9_inode_forget(op->fs->inodes, op->entered[i], 1);
    op->nentered = 0;
}

static int exec_readdir(struct op *op)
{
    struct dirbuf db = {.op = op, .size = op->size,
                        .plus = op->code == OP_READDIRPLUS};
    db.buf = malloc(op->size ? op->size : 1);
    if (!db.buf)
        return reply_err(op, -ENOMEM);
    int rc = fs9_ns_readdir(op->fs->ns, op->h, op->off,
                            db.plus ? FS9_READDIR_PLUS : 0, dir_emit, &db);
    if (rc < 0 && db.used == 0) {
        forget_entered(op);
        free(db.buf);
        return reply_err(op, rc);
    }
    if (!op_claim(op)) {
        forget_entered(op);
    } else if (fuse_reply_buf(op->req, db.buf, db.used) != 0) {
        forget_entered(op);
    }
    free(db.buf);
    return FS9_WORK_DONE;
}

static void do_readdir(fuse_req_t req, int code, fuse_ino_t ino, size_t size,
                       off_t off, struct fuse_file_info *fi)
{
    struct op *op = handle_op(req, code, exec_readdir, ino, fi->fh, 0);
    if (!op)
        return;
    op->size = size;
    op->off = (uint64_t)off;
    op_go(op, op->h->mount, 1);
}

static void fs9_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
                        off_t off, struct fuse_file_info *fi)
{
    do_readdir(req, OP_READDIR, ino, size, off, fi);
}

static void fs9_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
                            off_t off, struct fuse_file_info *fi)
{
    do_readdir(req, OP_READDIRPLUS, ino, size, off, fi);
}

static void fs9_releasedir(fuse_req_t req, fuse_ino_t ino,
                           struct fuse_file_info *fi)
{
    struct op *op = handle_op(req, OP_RELEASEDIR, exec_release, ino, fi->fh,
                              0);
    if (op)
        op_go(op, op->h->mount, 0);
}

static void fs9_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
                         struct fuse_file_info *fi)
{
    (void)ino;
    (void)datasync;
    (void)fi;
    fuse_reply_err(req, 0);
}

/* ---- statfs and xattrs ---- */

static int exec_statfs(struct op *op)
{
    struct fs9_statfs s;
    int rc = fs9_ns_statfs(op->fs->ns, &op->r, &s);
    if (rc < 0)
        return reply_err(op, rc);
    struct statvfs v;
    memset(&v, 0, sizeof v);
    v.f_bsize = s.bsize;
    v.f_frsize = s.bsize;
    v.f_blocks = s.blocks;
    v.f_bfree = s.bfree;
    v.f_bavail = s.bavail;
    v.f_files = s.files;
    v.f_ffree = s.ffree;
    v.f_favail = s.ffree;
    v.f_namemax = s.namemax;
    if (op_claim(op))
        fuse_reply_statfs(op->req, &v);
    return FS9_WORK_DONE;
}

static void fs9_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct op *op = path_op(req, OP_STATFS, exec_statfs, ino, NULL, 0);
    if (op)
        op_go(op, op->r.mount, 1);
}

static int exec_setxattr(struct op *op)
{
    uint32_t f = 0;
    if (op->flags & XATTR_CREATE)
        f |= FS9_XATTR_CREATE;
    if (op->flags & XATTR_REPLACE)
        f |= FS9_XATTR_REPLACE;
    return reply_err(op, fs9_ns_setxattr(op->fs->ns, &op->ctx, &op->r,
                                         op->newname, op->data, op->size, f));
}

/* An op on node `ino` (by path) carrying attribute name `xname` and
 * `extra` bytes.  NULL after replying an error. */
static struct op *xattr_op(fuse_req_t req, int code, int (*exec)(struct op *),
                           fuse_ino_t ino, const char *xname, size_t extra)
{
    if (FS(req)->opt.noxattr) {
        /* The kernel remembers ENOSYS and stops asking: no more round
         * trips for ls -l's security attributes.  Applications get
         * EOPNOTSUPP. */
        fuse_reply_err(req, ENOSYS);
        return NULL;
    }
    char path[PATH_MAX + 1];
    int rc = node_path(req, ino, NULL, path, sizeof path);
    if (rc < 0) {
        fuse_reply_err(req, -rc);
        return NULL;
    }
    struct op *op = op_new(req, code, exec, path, NULL, NULL, xname, extra);
    if (!op) {
        fuse_reply_err(req, ENOMEM);
        return NULL;
    }
    op->ino = ino;
    if (fs9_ns_route(op->fs->ns, op->path, &op->r) < 0) {
        fuse_reply_err(req, EIO);
        op_free(op);
        return NULL;
    }
    return op;
}

static void fs9_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                         const char *value, size_t size, int flags)
{
    struct op *op = xattr_op(req, OP_SETXATTR, exec_setxattr, ino, name, size);
    if (!op)
        return;
    if (size)
        memcpy((char *)op->data, value, size);
    op->size = size;
    op->flags = (uint32_t)flags;
    op_go(op, op->r.mount, 0);
}

static int exec_getxattr(struct op *op)
{
    char *buf = op->size ? thread_buffer(op->size) : NULL;
    if (op->size && !buf)
        return reply_err(op, -ENOMEM);
    ssize_t n;
    if (op->code == OP_GETXATTR)
        n = fs9_ns_getxattr(op->fs->ns, &op->r, op->newname, buf, op->size);
    else
        n = fs9_ns_listxattr(op->fs->ns, &op->r, buf, op->size);
    if (n < 0)
        return reply_err(op, (int)n);
    if (!op_claim(op))
        return FS9_WORK_DONE;
    if (op->size == 0)
        fuse_reply_xattr(op->req, (size_t)n);
    else
        fuse_reply_buf(op->req, buf, (size_t)n);
    return FS9_WORK_DONE;
}

static void xattr_query(fuse_req_t req, int code, fuse_ino_t ino,
                        const char *name, size_t size)
{
    struct op *op = xattr_op(req, code, exec_getxattr, ino, name, 0);
    if (!op)
        return;
    op->size = size;
    op_go(op, op->r.mount, 1);
}

static void fs9_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                         size_t size)
{
    xattr_query(req, OP_GETXATTR, ino, name, size);
}

static void fs9_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    xattr_query(req, OP_LISTXATTR, ino, NULL, size);
}

static int exec_removexattr(struct op *op)
{
    return reply_err(op, fs9_ns_removexattr(op->fs->ns, &op->ctx, &op->r,
                                            op->newname));
}

static void fs9_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    struct op *op = xattr_op(req, OP_REMOVEXATTR, exec_removexattr, ino, name,
                             0);
    if (op)
        op_go(op, op->r.mount, 0);
}

/* ---- poll ---- */

struct fs9_poller {
    struct fs9_mount *m; /* not referenced: compared only */
    uint64_t key;
    uint64_t fh;
    struct fuse_pollhandle *ph;
    struct fs9_poller *next;
};

static void pollers_drop_fh(struct fs9_fuse *fs, uint64_t fh)
{
    pthread_mutex_lock(&fs->poll_lock);
    for (struct fs9_poller **p = &fs->pollers; *p;) {
        struct fs9_poller *e = *p;
        if (e->fh == fh) {
            *p = e->next;
            fuse_pollhandle_destroy(e->ph);
            free(e);
        } else {
            p = &e->next;
        }
    }
    pthread_mutex_unlock(&fs->poll_lock);
}

static void pollers_wake(struct fs9_fuse *fs, struct fs9_mount *m,
                         uint64_t key)
{
    pthread_mutex_lock(&fs->poll_lock);
    for (struct fs9_poller **p = &fs->pollers; *p;) {
        struct fs9_poller *e = *p;
        if (e->m == m && e->key == key) {
            *p = e->next;
            fuse_lowlevel_notify_poll(e->ph);
            fuse_pollhandle_destroy(e->ph);
            free(e);
        } else {
            p = &e->next;
        }
    }
    pthread_mutex_unlock(&fs->poll_lock);
}

static int exec_poll(struct op *op)
{
    struct fs9_fuse *fs = op->fs;
    struct fs9_handle *h = op->h;
    uint32_t want = 0, got = 0;
    if (op->flags & POLLIN)
        want |= FS9_POLL_IN;
    if (op->flags & POLLOUT)
        want |= FS9_POLL_OUT;
    uint64_t key = fs9_ns_park_key(h->mount, fs9_handle_rel(h));
    /* Register before asking, so readiness arriving in between wakes us. */
    if (op->ph) {
        pollers_drop_fh(fs, op->fh);
        struct fs9_poller *e = calloc(1, sizeof *e);
        if (e) {
            e->m = h->mount;
            e->key = key;
            e->fh = op->fh;
            e->ph = op->ph;
            op->ph = NULL;
            pthread_mutex_lock(&fs->poll_lock);
            e->next = fs->pollers;
            fs->pollers = e;
            pthread_mutex_unlock(&fs->poll_lock);
        }
    }
    int rc = fs9_ns_poll(fs->ns, h, want, &got);
    if (rc < 0)
        return reply_err(op, rc);
    unsigned revents = 0;
    if (got & FS9_POLL_IN)
        revents |= POLLIN | POLLRDNORM;
    if (got & FS9_POLL_OUT)
        revents |= POLLOUT | POLLWRNORM;
    if (got & FS9_POLL_HUP)
        revents |= POLLHUP;
    if (op_claim(op))
        fuse_reply_poll(op->req, revents);
    return FS9_WORK_DONE;
}

static void fs9_poll(fuse_req_t req, fuse_ino_t ino,
                     struct fuse_file_info *fi, struct fuse_pollhandle *ph)
{
    struct op *op = handle_op(req, OP_POLL, exec_poll, ino, fi->fh, 0);
    if (!op) {
        if (ph)
            fuse_pollhandle_destroy(ph);
        return;
    }
    op->ph = ph;
    op->flags = fi->poll_events ? fi->poll_events : (POLLIN | POLLOUT);
    op_go(op, op->h->mount, 1);
}

/* ---- kernel cache invalidation, from its own thread ---- */

struct fs9_inval {
    uint64_t parent; /* entry: (parent, name); inode: parent == 0 */
    uint64_t ino;
    uint64_t seq;    /* order of pushing, for inval_wait() */
    struct fs9_inval *next;
    char name[];
};

static void *inval_main(void *arg)
{
    struct fs9_fuse *fs = arg;
    pthread_mutex_lock(&fs->inval_lock);
    for (;;) {
        while (!fs->inval_head && !fs->inval_stop)
            pthread_cond_wait(&fs->inval_cond, &fs->inval_lock);
        struct fs9_inval *v = fs->inval_head;
        if (!v)
            break; /* stopping and nothing left */
        fs->inval_head = v->next;
        if (!fs->inval_head)
            fs->inval_tail = NULL;
        pthread_mutex_unlock(&fs->inval_lock);
        if (fs->se) {
            if (v->parent)
                fuse_lowlevel_notify_inval_entry(fs->se, v->parent, v->name,
                                                 strlen(v->name));
            if (v->ino)
                fuse_lowlevel_notify_inval_inode(fs->se, v->ino, 0, 0);
        }
        pthread_mutex_lock(&fs->inval_lock);
        fs->inval_done = v->seq;
        pthread_cond_broadcast(&fs->inval_cond);
        free(v);
    }
    pthread_mutex_unlock(&fs->inval_lock);
    return NULL;
}

static uint64_t inval_push(struct fs9_fuse *fs, uint64_t parent,
                           const char *name, uint64_t ino)
{
    size_t len = name ? strlen(name) : 0;
    struct fs9_inval *v = malloc(sizeof *v + len + 1);
    if (!v)
        return 0;
    v->parent = parent;
    v->ino = ino;
    v->next = NULL;
    memcpy(v->name, name ? name : "", len + 1);
    pthread_mutex_lock(&fs->inval_lock);
    v->seq = ++fs->inval_pushed;
    if (fs->inval_tail)
        fs->inval_tail->next = v;
    else
        fs->inval_head = v;
    fs->inval_tail = v;
    pthread_cond_broadcast(&fs->inval_cond);
    uint64_t seq = v->seq;
    pthread_mutex_unlock(&fs->inval_lock);
    return seq;
}

/* Wait (at most `ms`) until invalidation `seq` has reached the kernel.
 * The wait is bounded, so a kernel blocked on a lock the caller's own
 * request holds delays, never deadlocks. */
static void inval_wait(struct fs9_fuse *fs, uint64_t seq, unsigned ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += (long)(ms % 1000) * 1000000;
    until.tv_sec += ms / 1000 + until.tv_nsec / 1000000000;
    until.tv_nsec %= 1000000000;
    pthread_mutex_lock(&fs->inval_lock);
    while (fs->inval_done < seq && !fs->inval_stop)
        if (pthread_cond_timedwait(&fs->inval_cond, &fs->inval_lock,
                                   &until) != 0)
            break;
    pthread_mutex_unlock(&fs->inval_lock);
}

/* The nodeid the kernel knows for namespace path `path` (0: none), and
 * that of its parent in *parent, walking the inode table component by
 * component.  *name points at the last component in `path`. */
static uint64_t find_node(struct fs9_fuse *fs, const char *path,
                          uint64_t *parent, const char **name)
{
    uint64_t cur = FS9_ROOT_NODEID, par = 0;
    const char *p = path, *last = path;
    char comp[NAME_MAX + 1];
    while (*p == '/')
        p++;
    while (*p && cur) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len > NAME_MAX)
            return 0;
        memcpy(comp, p, len);
        comp[len] = '\0';
        par = cur;
        last = p;
        cur = fs9_inode_find(fs->inodes, cur, comp);
        p += len;
        while (*p == '/')
            p++;
    }
    *parent = par;
    *name = last;
    return cur;
}

static void on_mount_change(void *arg, const char *path)
{
    struct fs9_fuse *fs = arg;
    uint64_t parent = 0;
    const char *name = NULL;
    find_node(fs, path, &parent, &name);
    if (parent && name && *name) {
        char comp[NAME_MAX + 1];
        size_t len = strcspn(name, "/");
        if (len <= NAME_MAX) {
            memcpy(comp, name, len);
            comp[len] = '\0';
            /* Mounts change through /.fs9/ctl: when the write returns, the
             * change must show. */
            inval_wait(fs, inval_push(fs, parent, comp, parent), 500);
        }
    }
}

static void on_notify(void *arg, struct fs9_mount *m, const char *path,
                      unsigned events)
{
    struct fs9_fuse *fs = arg;
    if (events & FS9_NOTIFY_DATA) {
        const char *rel = path + strlen(m->path);
        while (*rel == '/')
            rel++;
        pollers_wake(fs, m, fs9_ns_park_key(m, rel));
    }
    if (events & (FS9_NOTIFY_CHANGED | FS9_NOTIFY_ENTRY)) {
        uint64_t parent = 0;
        const char *name = NULL;
        uint64_t id = find_node(fs, path, &parent, &name);
        if ((events & FS9_NOTIFY_CHANGED) && id)
            inval_push(fs, 0, NULL, id);
        if ((events & FS9_NOTIFY_ENTRY) && parent && name && *name)
            inval_push(fs, parent, name, parent);
    }
}

static void front_info(void *arg, char *buf, size_t size, size_t *len)
{
    struct fs9_fuse *fs = arg;
    if (*len + 1 >= size)
        return;
    int n = snprintf(buf + *len, size - *len, "inodes.live %zu\n",
                     fs9_inode_count(fs->inodes));
    if (n > 0 && (size_t)n < size - *len)
        *len += (size_t)n;
}

/* ---- init ---- */

/* Raise this connection's readahead to `bytes`.  The kernel starts every
 * FUSE mount's bdi at read_ahead_kb=128 and, when INIT is answered, only
 * ever lowers it to our max_readahead: without this, sequential reads
 * reach us as 128 KiB requests (256 KiB with POSIX_FADV_SEQUENTIAL), eight
 * round trips through the dispatcher per MiB.  fs9_init runs before the
 * INIT reply is sent, so the value is in place when the kernel applies
 * max_readahead.  The connection's device number comes from /dev/fuse's
 * fdinfo (Linux 6.16 and later) and sysfs takes writes from root only;
 * without either the kernel's default stays, as for any FUSE file system,
 * and `echo 1024 >/sys/class/bdi/MAJ:MIN/read_ahead_kb` does it by hand. */
static void raise_readahead(struct fs9_fuse *fs, unsigned bytes)
{
    char path[64], buf[512];
    unsigned kib = bytes / 1024;
    if (!fs->se || kib <= 128)
        return;
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d",
             fuse_session_fd(fs->se));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    const char *p = NULL;
    if (n > 0) {
        buf[n] = '\0';
        p = strstr(buf, "fuse_connection:");
    }
    if (!p)
        return;
    unsigned long dev = strtoul(p + strlen("fuse_connection:"), NULL, 10);
    /* The kernel's dev_t: the major number above 20 bits of minor. */
    snprintf(path, sizeof path, "/sys/class/bdi/%lu:%lu/read_ahead_kb",
             dev >> 20, dev & 0xfffff);
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        fs9_debug("readahead stays at the kernel's default: %s: %s", path,
                  strerror(errno));
        return;
    }
    n = read(fd, buf, sizeof buf - 1);
    if (n > 0) {
        buf[n] = '\0';
        if (strtoul(buf, NULL, 10) < kib) {
            int len = snprintf(buf, sizeof buf, "%u\n", kib);
            if (pwrite(fd, buf, (size_t)len, 0) != len)
                fs9_debug("readahead stays at the kernel's default: %s: %s",
                          path, strerror(errno));
        }
    }
    close(fd);
}

/*
 * The connection's settings.  Measured with scripts/bench-localfs.sh
 * (localfs on tmpfs against libfuse's passthrough_ll; README,
 * "Performance"):
 *  - max_write 1 MiB: the most libfuse 3.14 buffers (256 pages).  Writes
 *    without the write-back cache are synchronous, one request per
 *    max_write, so bigger is simply fewer round trips.
 *  - max_readahead 1 MiB, and the bdi raised to match (raise_readahead):
 *    sequential reads arrive as 1 MiB requests instead of 128 KiB ones:
 *    +30 % on 1 MiB sequential reads, with or without fio's default
 *    POSIX_FADV_SEQUENTIAL hint (which doubles the window).  Larger
 *    windows measured no better.
 *  - max_background 64 (congestion at 3/4): the kernel skips asynchronous
 *    readahead once congestion_threshold requests are in the background,
 *    so its default (12, congestion at 9) would starve a few parallel
 *    sequential readers of 1 MiB requests; with one reader, 12 measured
 *    within the noise.
 *  - The write-back cache stays opt-in (-o writeback): with it the kernel
 *    trusts its own size and mtime, so changes made on the host behind a
 *    localfs mount would not be seen; it did not speed up 1 MiB
 *    sequential writes either (a FUSE bdi may hold only 1 % of the dirty
 *    limit, so a long write proceeds at write-back speed).
 *  - No splice: providers fill caller-owned buffers (the provider ABI), so
 *    there is no descriptor to splice from or to.
 *  - AUTO_INVAL_DATA: a refreshed mtime or size drops cached pages, which
 *    is how changes made on the host reach readers of an open file.
 */
static void fs9_init(void *userdata, struct fuse_conn_info *conn)
{
    struct fs9_fuse *fs = userdata;
    const struct fs9_fuse_options *o = &fs->opt;
    unsigned want = FUSE_CAP_ASYNC_READ | FUSE_CAP_READDIRPLUS |
                    FUSE_CAP_READDIRPLUS_AUTO | FUSE_CAP_PARALLEL_DIROPS |
                    FUSE_CAP_AUTO_INVAL_DATA | FUSE_CAP_ATOMIC_O_TRUNC |
                    FUSE_CAP_CACHE_SYMLINKS | FUSE_CAP_ASYNC_DIO;
    if (o->writeback)
        want |= FUSE_CAP_WRITEBACK_CACHE;
    conn->want |= want & conn->capable;
    /* No POSIX or BSD locks: the kernel then keeps them locally, which is
     * right for one client.  No splice: replies come from our buffers. */
    conn->want &= ~(unsigned)(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS |
                              FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE |
                              FUSE_CAP_SPLICE_MOVE);
    if (o->writeback && !(conn->capable & FUSE_CAP_WRITEBACK_CACHE))
        fs9_warn("the kernel offers no write-back cache; continuing without");
    conn->max_write = o->max_write;
    conn->max_readahead = o->max_readahead;
    raise_readahead(fs, o->max_readahead);
    if (o->max_background)
        conn->max_background = o->max_background;
    conn->congestion_threshold = conn->max_background * 3 / 4;
    conn->time_gran = 1;
}

static void fs9_destroy(void *userdata)
{
    (void)userdata;
}

const struct fuse_lowlevel_ops fs9_fuse_ops = {
    .init = fs9_init,
    .destroy = fs9_destroy,
    .lookup = fs9_lookup,
    .forget = fs9_forget,
    .forget_multi = fs9_forget_multi,
    .getattr = fs9_getattr,
    .setattr = fs9_setattr,
    .readlink = fs9_readlink,
    .mknod = fs9_mknod,
    .mkdir = fs9_mkdir,
    .unlink = fs9_unlink,
    .rmdir = fs9_rmdir,
    .symlink = fs9_symlink,
    .rename = fs9_rename,
    .link = fs9_link,
    .open = fs9_open,
    .read = fs9_read,
    .write = fs9_write,
    .flush = fs9_flush,
    .release = fs9_release,
    .fsync = fs9_fsync,
    .opendir = fs9_opendir,
    .readdir = fs9_readdir,
    .readdirplus = fs9_readdirplus,
    .releasedir = fs9_releasedir,
    .fsyncdir = fs9_fsyncdir,
    .statfs = fs9_statfs,
    .setxattr = fs9_setxattr,
    .getxattr = fs9_getxattr,
    .listxattr = fs9_listxattr,
    .removexattr = fs9_removexattr,
    .create = fs9_create,
    .fallocate = fs9_fallocate,
    .poll = fs9_poll,
};

void fs9_fuse_options_init(struct fs9_fuse_options *o)
{
    memset(o, 0, sizeof *o);
    o->entry_timeout = 1.0;
    o->attr_timeout = 1.0;
    o->negative_timeout = 1.0;
    o->ext_timeout = 1.0;
    o->inline_calls = 1;
    o->max_write = 1u << 20;
    o->max_readahead = 1u << 20;
    o->max_background = 64;
}

int fs9_fuse_init(struct fs9_fuse *fs, struct fs9_ns *ns,
                  const struct fs9_fuse_options *opt)
{
    memset(fs, 0, sizeof *fs);
    fs->ns = ns;
    fs->d = fs9_ns_dispatcher(ns);
    fs->opt = *opt;
    fs->inodes = fs9_inode_table_new();
    if (!fs->inodes)
        return -ENOMEM;
    pthread_mutex_init(&fs->poll_lock, NULL);
    pthread_mutex_init(&fs->inval_lock, NULL);
    pthread_cond_init(&fs->inval_cond, NULL);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&fs->inval_thread, NULL, inval_main, fs);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        fs9_inode_table_free(fs->inodes);
        return -rc;
    }
    fs->inval_started = 1;
    fs9_stats_init(fs9_ns_stats(ns), op_names);
    fs9_ns_set_notify_hook(ns, on_notify, fs);
    fs9_ns_set_mount_hook(ns, on_mount_change, fs);
    fs9_ns_set_info_hook(ns, front_info, fs);
    return 0;
}

/* Handles whose data the kernel may hold in its page cache. */
static int cached_writer(const struct fs9_handle *h, void *arg)
{
    (void)arg;
    return (h->flags & FS9_OPEN_WRITE) &&
           !(h->out_flags & FS9_OPEN_OUT_DIRECT_IO);
}

void fs9_fuse_sync_open_files(struct fs9_fuse *fs, const char *mountpoint)
{
    struct fs9_registry *reg = fs9_ns_handles(fs->ns);
    size_t n = 0;
    uint64_t *ids = fs9_registry_ids(reg, cached_writer, NULL, &n);
    for (size_t i = 0; ids && i < n; i++) {
        struct fs9_handle *h = fs9_registry_acquire(reg, ids[i]);
        if (!h)
            continue; /* closed meanwhile: the kernel flushed it */
        /* Where the file is now, through its node (open(2) records it,
         * create(2) does not), else where it was opened. */
        char rel[PATH_MAX], path[PATH_MAX];
        if (!h->nodeid ||
            fs9_inode_path(fs->inodes, h->nodeid, NULL, rel, sizeof rel) < 0)
            snprintf(rel, sizeof rel, "%s", h->path);
        fs9_registry_release(reg, h);
        if (snprintf(path, sizeof path, "%s%s", mountpoint, rel) >=
            (int)sizeof path)
            continue;
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
                                O_CLOEXEC);
        if (fd < 0)
            continue; /* renamed or removed since */
        if (fsync(fd) != 0)
            fs9_warn("cannot write back %s before stopping: %s", rel,
                     strerror(errno));
        close(fd);
    }
    free(ids);
}

void fs9_fuse_fini(struct fs9_fuse *fs)
{
    fs9_ns_set_notify_hook(fs->ns, NULL, NULL);
    fs9_ns_set_mount_hook(fs->ns, NULL, NULL);
    fs9_ns_set_info_hook(fs->ns, NULL, NULL);
    if (fs->inval_started) {
        pthread_mutex_lock(&fs->inval_lock);
        fs->inval_stop = 1;
        pthread_cond_broadcast(&fs->inval_cond);
        pthread_mutex_unlock(&fs->inval_lock);
        pthread_join(fs->inval_thread, NULL);
        fs->inval_started = 0;
    }
    while (fs->pollers) {
        struct fs9_poller *e = fs->pollers;
        fs->pollers = e->next;
        fuse_pollhandle_destroy(e->ph);
        free(e);
    }
    fs9_inode_table_free(fs->inodes);
    fs->inodes = NULL;
    pthread_mutex_destroy(&fs->poll_lock);
    pthread_mutex_destroy(&fs->inval_lock);
    pthread_cond_destroy(&fs->inval_cond);
}
