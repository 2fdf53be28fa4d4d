/*
 * memfs — FS9's default namespace: a POSIX-complete filesystem in memory.
 *
 * Objects.  Every object is a struct memfs_node: its attributes, its
 * extended attributes and, by type, its file pages, its directory entries,
 * or its symlink target.  Inode numbers come from one counter (root = 1)
 * and are never reused.
 *
 *  - Files keep their data in 4 KiB pages in a radix tree (512 slots per
 *    level, grown in height as the file grows).  Holes are absent pages and
 *    read as zeros; bytes of an allocated page beyond the end of file are
 *    always zero, so extending a file never exposes old data.
 *  - Directories index their entries twice: a chained hash on the name for
 *    O(1) lookup, and an array ordered by cookie for readdir.  Cookies are
 *    a per-directory counter, so a new entry always goes to the end of the
 *    array; a removed entry leaves a tombstone that is compacted away once
 *    tombstones are half the array.  A listing resumes with a binary search
 *    for the first cookie above the one it was given, which is why an entry
 *    present for the whole listing is returned exactly once however many
 *    others come and go in between.
 *
 * Locking.  Two levels, always taken in this order, and never two node
 * locks at once:
 *
 *  1. fs->ns_lock (rwlock) guards the tree: directory entries, the parent
 *     pointer of directories.  Path lookups take it for reading and keep it
 *     for the whole call; creating, removing, renaming and linking take it
 *     for writing.
 *  2. node->lock (rwlock) guards a node's attributes, xattrs and file
 *     pages.  read/write/fallocate on a handle take only this lock, so I/O
 *     on different files, and reads of one file, run in parallel.
 *
 *  nlink and a directory's entry count change only with both locks held
 *  (for writing), so either lock suffices to read them.  A node's type
 *  (`kind`), its inode number and a symlink's target never change.
 *
 * Lifetime.  A node lives while it has a name (nlink > 0) or an open handle
 * (opens > 0); whoever drops the last of the two, under the node lock,
 * frees it.  Path lookups cannot race with that: a node with no name is
 * unreachable by path, and names are only removed under the ns_lock write
 * lock, which excludes every lookup in progress.
 *
 * Space.  Data is counted in 4 KiB pages against `size=`, objects against
 * `nr_inodes=`, with lock-free reservations.  A write that runs out of
 * space writes the pages that fit and returns that (short) count; the next
 * write returns -ENOSPC.  Extending a file with truncate costs nothing
 * (holes), as on tmpfs; fallocate reserves its whole range first and fails
 * with -ENOSPC without allocating anything.
 *
 * Nothing here sleeps or does I/O, so memfs declares FS9_CAP_NONBLOCKING.
 */
#include "providers.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE 0x01
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_PUNCH_HOLE 0x02
#endif
#ifndef FALLOC_FL_ZERO_RANGE
#define FALLOC_FL_ZERO_RANGE 0x10
#endif

#define MEMFS_PAGE_SHIFT 12
#define MEMFS_PAGE_SIZE (1u << MEMFS_PAGE_SHIFT)
#define MEMFS_PAGE_MASK (MEMFS_PAGE_SIZE - 1)
#define MEMFS_NAME_MAX 255
#define MEMFS_SYMLINK_MAX 4095 /* PATH_MAX - 1 */
#define MEMFS_MAX_FILE_SIZE ((uint64_t)INT64_MAX)
#define MEMFS_LINK_MAX (UINT32_MAX - 1)
#define MEMFS_XATTR_NAME_MAX 255
#define MEMFS_XATTR_SIZE_MAX 65536
#define MEMFS_XATTR_LIST_MAX 65536
/* statfs ffree reported when nr_inodes is unlimited. */
#define MEMFS_UNLIMITED_FFREE (UINT64_C(1) << 32)
/* tmpfs reports a directory's size as 20 bytes per entry plus two. */
#define MEMFS_DIRENT_BOGO_SIZE 20
#define MEMFS_READDIR_BATCH 64
#define MEMFS_RELATIME_SECS (24 * 60 * 60)

/* ------------------------------------------------------------------------
 * Structures
 * ---------------------------------------------------------------------- */

/** One node of a file's page tree: 512 children (nodes or, at height 1,
 *  pages) and how many of them are set. */
#define RADIX_SHIFT 9
#define RADIX_SLOTS (1u << RADIX_SHIFT)
#define RADIX_MASK (RADIX_SLOTS - 1)

struct memfs_rnode {
    void *slot[RADIX_SLOTS];
    unsigned count;
};

/** A regular file's data.  height 0 <=> root NULL. */
struct memfs_pages {
    struct memfs_rnode *root; /* owned */
    unsigned height;
    uint64_t npages; /* allocated pages, for st_blocks */
};

struct memfs_xattr {
    struct memfs_xattr *next;
    size_t size;
    char *value; /* owned; NULL when size is 0 */
    char name[]; /* NUL-terminated */
};

struct memfs_node;

/** A name in a directory.  Owned by the directory; `node` is counted in
 *  node->nlink. */
struct memfs_dirent {
    struct memfs_dirent *hnext;
    struct memfs_node *node;
    uint64_t cookie;
    uint64_t hash;
    size_t namelen;
    char name[]; /* NUL-terminated */
};

/** Position of an entry in cookie order; ent NULL is a tombstone. */
struct memfs_slot {
    uint64_t cookie;
    struct memfs_dirent *ent;
};

/** A directory's entries; everything here is guarded by fs->ns_lock. */
struct memfs_dir {
    struct memfs_dirent **buckets; /* owned, nbuckets (power of two) */
    size_t nbuckets;
    size_t count; /* live entries */
    struct memfs_slot *order; /* owned; cookies strictly increasing */
    size_t order_len, order_cap, tombstones;
    uint64_t next_cookie;
    struct memfs_node *parent; /* NULL for the root and removed dirs */
};

struct memfs_node {
    pthread_rwlock_t lock;
    uint64_t ino;  /* immutable */
    uint32_t kind; /* S_IFMT bits, immutable */
    /* guarded by lock: */
    uint32_t mode;
    uint32_t uid, gid;
    uint32_t nlink; /* also needs ns_lock (write) to change */
    uint64_t size;  /* file size; symlink length; dir: entry count */
    uint64_t rdev;
    struct timespec atime, mtime, ctime;
    uint32_t opens;
    struct memfs_xattr *xattrs; /* owned list */
    union {
        struct memfs_pages file; /* S_IFREG, guarded by lock */
        struct memfs_dir dir;    /* S_IFDIR, guarded by ns_lock */
        char *target;            /* S_IFLNK, owned, immutable */
    } u;
};

struct memfs {
    const struct fs9_host *host; /* borrowed until destroy */
    pthread_rwlockattr_t lockattr;
    pthread_rwlock_t ns_lock;
    struct memfs_node *root;
    _Atomic uint64_t next_ino;
    uint64_t max_pages;  /* 0: unlimited */
    uint64_t max_inodes; /* 0: unlimited */
    _Atomic uint64_t used_pages;
    _Atomic uint64_t used_inodes;
};

/** What open() hands out. */
struct memfs_handle {
    struct memfs_node *node; /* holds one of node->opens */
    uint32_t flags;          /* FS9_OPEN_* */
};

/* ------------------------------------------------------------------------
 * Small helpers
 * ---------------------------------------------------------------------- */

static struct timespec memfs_now(const struct memfs *fs)
{
    struct timespec ts;
    if (fs->host && fs->host->now)
        return fs->host->now(fs->host->ctx, CLOCK_REALTIME);
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts;
}

static int timespec_cmp(struct timespec a, struct timespec b)
{
    if (a.tv_sec != b.tv_sec)
        return a.tv_sec < b.tv_sec ? -1 : 1;
    if (a.tv_nsec != b.tv_nsec)
        return a.tv_nsec < b.tv_nsec ? -1 : 1;
    return 0;
}

/** Take `n` units from a limited pool; max 0 is unlimited. */
static bool pool_reserve(_Atomic uint64_t *used, uint64_t max, uint64_t n)
{
    if (max == 0) {
        atomic_fetch_add_explicit(used, n, memory_order_relaxed);
        return true;
    }
    uint64_t cur = atomic_load_explicit(used, memory_order_relaxed);
    do {
        if (n > max || cur > max - n)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(
        used, &cur, cur + n, memory_order_relaxed, memory_order_relaxed));
    return true;
}

static void pool_release(_Atomic uint64_t *used, uint64_t n)
{
    if (n)
        atomic_fetch_sub_explicit(used, n, memory_order_relaxed);
}

static uint64_t name_hash(const char *name, size_t len)
{
    /* FNV-1a, then a final mix so the low bits (the bucket) are good. */
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)name[i];
        h *= UINT64_C(0x100000001b3);
    }
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    return h;
}

/* ------------------------------------------------------------------------
 * File pages: a radix tree of 4 KiB pages.  Caller holds node->lock.
 * ---------------------------------------------------------------------- */

/** Pages covered by one slot of a node at height h. */
static uint64_t radix_span(unsigned h)
{
    return UINT64_C(1) << (RADIX_SHIFT * (h - 1));
}

/** Pages a tree of height h can index. */
static uint64_t radix_capacity(unsigned h)
{
    return h == 0 ? 0 : UINT64_C(1) << (RADIX_SHIFT * h);
}

static char *pages_lookup(const struct memfs_pages *p, uint64_t idx)
{
    if (idx >= radix_capacity(p->height))
        return NULL;
    void *n = p->root;
    for (unsigned h = p->height; h > 0 && n; h--)
        n = ((struct memfs_rnode *)n)
                ->slot[(idx >> (RADIX_SHIFT * (h - 1))) & RADIX_MASK];
    return n;
}

/** Put `page` at `idx`, which must be empty.  -ENOMEM leaves the tree
 *  valid (possibly with empty inner nodes, freed by later clears). */
static int pages_insert(struct memfs_pages *p, uint64_t idx, char *page)
{
    if (p->height == 0) {
        p->root = calloc(1, sizeof *p->root);
        if (!p->root)
            return -ENOMEM;
        p->height = 1;
    }
    while (idx >= radix_capacity(p->height)) {
        struct memfs_rnode *up = calloc(1, sizeof *up);
        if (!up)
            return -ENOMEM;
        up->slot[0] = p->root;
        up->count = 1;
        p->root = up;
        p->height++;
    }
    struct memfs_rnode *n = p->root;
    for (unsigned h = p->height; h > 1; h--) {
        unsigned i = (unsigned)(idx >> (RADIX_SHIFT * (h - 1))) & RADIX_MASK;
        if (!n->slot[i]) {
            struct memfs_rnode *c = calloc(1, sizeof *c);
            if (!c)
                return -ENOMEM;
            n->slot[i] = c;
            n->count++;
        }
        n = n->slot[i];
    }
    n->slot[idx & RADIX_MASK] = page;
    n->count++;
    p->npages++;
    return 0;
}

/** Free the pages in [first, last] under `n` (height h, first page
 *  `base`), and the inner nodes left empty.  Returns pages freed. */
static uint64_t rnode_clear(struct memfs_rnode *n, unsigned h, uint64_t base,
                            uint64_t first, uint64_t last)
{
    uint64_t span = radix_span(h), freed = 0;
    unsigned lo = first > base ? (unsigned)((first - base) / span) : 0;
    uint64_t hi64 = (last - base) / span;
    unsigned hi = hi64 > RADIX_MASK ? RADIX_MASK : (unsigned)hi64;

    for (unsigned i = lo; i <= hi && n->count; i++) {
        if (!n->slot[i])
            continue;
        if (h == 1) {
            free(n->slot[i]);
            freed++;
        } else {
            struct memfs_rnode *c = n->slot[i];
            freed += rnode_clear(c, h - 1, base + i * span, first, last);
            if (c->count)
                continue;
            free(c);
        }
        n->slot[i] = NULL;
        n->count--;
    }
    return freed;
}

/** Free pages [first, last] (inclusive page indexes); returns how many. */
static uint64_t pages_clear(struct memfs_pages *p, uint64_t first,
                            uint64_t last)
{
    uint64_t cap = radix_capacity(p->height);
    if (!p->root || first >= cap || first > last)
        return 0;
    if (last >= cap)
        last = cap - 1;
    uint64_t freed = rnode_clear(p->root, p->height, 0, first, last);
    p->npages -= freed;
    if (p->root->count == 0) {
        free(p->root);
        p->root = NULL;
        p->height = 0;
    }
    /* Shrink while everything lives under slot 0. */
    while (p->height > 1 && p->root->count == 1 && p->root->slot[0]) {
        struct memfs_rnode *old = p->root;
        p->root = old->slot[0];
        p->height--;
        free(old);
    }
    return freed;
}

static uint64_t rnode_count(const struct memfs_rnode *n, unsigned h,
                            uint64_t base, uint64_t first, uint64_t last)
{
    uint64_t span = radix_span(h), found = 0;
    unsigned lo = first > base ? (unsigned)((first - base) / span) : 0;
    uint64_t hi64 = (last - base) / span;
    unsigned hi = hi64 > RADIX_MASK ? RADIX_MASK : (unsigned)hi64;

    if (h == 1 && lo == 0 && hi == RADIX_MASK)
        return n->count;
    for (unsigned i = lo; i <= hi; i++) {
        if (!n->slot[i])
            continue;
        found += h == 1 ? 1
                        : rnode_count(n->slot[i], h - 1, base + i * span,
                                      first, last);
    }
    return found;
}

/** Allocated pages in [first, last]. */
static uint64_t pages_count(const struct memfs_pages *p, uint64_t first,
                            uint64_t last)
{
    uint64_t cap = radix_capacity(p->height);
    if (!p->root || first >= cap || first > last)
        return 0;
    if (last >= cap)
        last = cap - 1;
    return rnode_count(p->root, p->height, 0, first, last);
}

/** Copy [off, off+len) out of the file, holes as zeros. */
static void pages_read(const struct memfs_pages *p, char *dst, uint64_t off,
                       size_t len)
{
    while (len) {
        size_t in = off & MEMFS_PAGE_MASK;
        size_t n = MEMFS_PAGE_SIZE - in < len ? MEMFS_PAGE_SIZE - in : len;
        const char *pg = pages_lookup(p, off >> MEMFS_PAGE_SHIFT);
        if (pg)
            memcpy(dst, pg + in, n);
        else
            memset(dst, 0, n);
        dst += n;
        off += n;
        len -= n;
    }
}

/** Zero the bytes [off, off+len) that lie in allocated pages. */
static void pages_zero(struct memfs_pages *p, uint64_t off, uint64_t len)
{
    while (len) {
        size_t in = off & MEMFS_PAGE_MASK;
        uint64_t n = MEMFS_PAGE_SIZE - in < len ? MEMFS_PAGE_SIZE - in : len;
        char *pg = pages_lookup(p, off >> MEMFS_PAGE_SHIFT);
        if (pg)
            memset(pg + in, 0, n);
        off += n;
        len -= n;
    }
}

/** Remove the bytes [off, off+len): whole pages are freed, partial ones
 *  zeroed.  Returns pages freed. */
static uint64_t pages_punch(struct memfs_pages *p, uint64_t off, uint64_t len)
{
    if (len == 0)
        return 0;
    uint64_t end = off + len; /* callers keep this below 2^63 */
    uint64_t first_full = (off + MEMFS_PAGE_MASK) >> MEMFS_PAGE_SHIFT;
    uint64_t end_full = end >> MEMFS_PAGE_SHIFT; /* exclusive */
    uint64_t freed = 0;

    if (first_full >= end_full) {
        /* Within one page, or two partial ones. */
        pages_zero(p, off, len);
        return 0;
    }
    if (off & MEMFS_PAGE_MASK)
        pages_zero(p, off, (first_full << MEMFS_PAGE_SHIFT) - off);
    if (end & MEMFS_PAGE_MASK)
        pages_zero(p, end_full << MEMFS_PAGE_SHIFT,
                   end - (end_full << MEMFS_PAGE_SHIFT));
    freed = pages_clear(p, first_full, end_full - 1);
    return freed;
}

/* ------------------------------------------------------------------------
 * Nodes
 * ---------------------------------------------------------------------- */

static struct memfs_node *node_alloc(struct memfs *fs, uint32_t mode,
                                     uint32_t uid, uint32_t gid,
                                     struct timespec now)
{
    struct memfs_node *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    if (pthread_rwlock_init(&n->lock, &fs->lockattr) != 0) {
        free(n);
        return NULL;
    }
    n->ino = atomic_fetch_add_explicit(&fs->next_ino, 1,
                                       memory_order_relaxed);
    n->kind = mode & S_IFMT;
    n->mode = mode;
    n->uid = uid;
    n->gid = gid;
    n->atime = n->mtime = n->ctime = now;
    if (n->kind == S_IFDIR)
        n->u.dir.next_cookie = 1;
    return n;
}

static void xattrs_free(struct memfs_xattr *x)
{
    while (x) {
        struct memfs_xattr *next = x->next;
        free(x->value);
        free(x);
        x = next;
    }
}

/** Where attribute `name` of `n` is linked (*result NULL: absent). */
static struct memfs_xattr **xattr_find(struct memfs_node *n,
                                       const char *name)
{
    struct memfs_xattr **pp = &n->xattrs;
    while (*pp && strcmp((*pp)->name, name) != 0)
        pp = &(*pp)->next;
    return pp;
}

/** Unlink and free the attribute at *pp (from xattr_find, not absent). */
static void xattr_remove(struct memfs_xattr **pp)
{
    struct memfs_xattr *x = *pp;
    *pp = x->next;
    free(x->value);
    free(x);
}

/** A write, a truncation or a change of owner drops the file's
 *  capabilities, as it does on every Linux filesystem: a changed program
 *  must not keep the privileges granted to the old one.  n->lock is held
 *  for writing. */
static void drop_capabilities(struct memfs_node *n)
{
    struct memfs_xattr **pp = xattr_find(n, "security.capability");
    if (*pp)
        xattr_remove(pp);
}

/** Free a node that has neither names nor handles (or, from destroy, is
 *  going away with the whole tree).  A directory must be empty. */
static void node_free(struct memfs *fs, struct memfs_node *n)
{
    switch (n->kind) {
    case S_IFREG:
        pool_release(&fs->used_pages,
                     pages_clear(&n->u.file, 0, UINT64_MAX));
        break;
    case S_IFDIR:
        free(n->u.dir.buckets);
        free(n->u.dir.order);
        break;
    case S_IFLNK:
        free(n->u.target);
        break;
    default:
        break;
    }
    xattrs_free(n->xattrs);
    pthread_rwlock_destroy(&n->lock);
    free(n);
    pool_release(&fs->used_inodes, 1);
}

/** Drop the write-held node lock and free the node if it has become
 *  unreachable (no name, no handle). */
static void node_unlock_maybe_free(struct memfs *fs, struct memfs_node *n)
{
    bool dead = n->nlink == 0 && n->opens == 0;
    pthread_rwlock_unlock(&n->lock);
    if (dead)
        node_free(fs, n);
}

/** Attributes of `n`; caller holds n->lock. */
static void node_attr(const struct memfs_node *n, struct fs9_attr *out)
{
    memset(out, 0, sizeof *out);
    out->ino = n->ino;
    out->mode = n->mode;
    out->nlink = n->nlink;
    out->uid = n->uid;
    out->gid = n->gid;
    out->rdev = n->rdev;
    out->blksize = MEMFS_PAGE_SIZE;
    out->atime = n->atime;
    out->mtime = n->mtime;
    out->ctime = n->ctime;
    switch (n->kind) {
    case S_IFREG:
        out->size = n->size;
        out->blocks = n->u.file.npages * (MEMFS_PAGE_SIZE / 512);
        break;
    case S_IFDIR:
        out->size = (n->size + 2) * MEMFS_DIRENT_BOGO_SIZE;
        break;
    case S_IFLNK:
        out->size = n->size;
        break;
    default:
        break;
    }
}

static void node_stat(struct memfs_node *n, struct fs9_attr *out)
{
    pthread_rwlock_rdlock(&n->lock);
    node_attr(n, out);
    pthread_rwlock_unlock(&n->lock);
}

/** A directory gained or lost entries/subdirectories: mtime and ctime
 *  move.  Caller holds ns_lock for writing. */
static void dir_touch(struct memfs_node *d, struct timespec now,
                      int64_t d_entries, int32_t d_nlink)
{
    pthread_rwlock_wrlock(&d->lock);
    d->size = (uint64_t)((int64_t)d->size + d_entries);
    d->nlink = (uint32_t)((int32_t)d->nlink + d_nlink);
    d->mtime = d->ctime = now;
    pthread_rwlock_unlock(&d->lock);
}

/** `n` lost a name (or, a directory, its only one): nlink drops, ctime
 *  moves, and the node is freed when nothing else holds it.  Caller holds
 *  ns_lock for writing. */
static void node_drop_name(struct memfs *fs, struct memfs_node *n,
                           struct timespec now)
{
    pthread_rwlock_wrlock(&n->lock);
    if (n->kind == S_IFDIR) {
        n->nlink = 0;
        n->u.dir.parent = NULL;
    } else {
        n->nlink--;
    }
    n->ctime = now;
    node_unlock_maybe_free(fs, n);
}

/** A rename or link changed `n`: ctime moves, nlink by d_nlink. */
static void node_touch_ctime(struct memfs_node *n, struct timespec now,
                             int32_t d_nlink)
{
    pthread_rwlock_wrlock(&n->lock);
    n->nlink = (uint32_t)((int32_t)n->nlink + d_nlink);
    n->ctime = now;
    pthread_rwlock_unlock(&n->lock);
}

/* ------------------------------------------------------------------------
 * Directories.  Caller holds fs->ns_lock (for writing when changing).
 * ---------------------------------------------------------------------- */

static struct memfs_dirent *dir_lookup(const struct memfs_dir *d,
                                       const char *name, size_t len)
{
    if (!d->count)
        return NULL;
    uint64_t h = name_hash(name, len);
    for (struct memfs_dirent *e = d->buckets[h & (d->nbuckets - 1)]; e;
         e = e->hnext)
        if (e->hash == h && e->namelen == len &&
            memcmp(e->name, name, len) == 0)
            return e;
    return NULL;
}

/** First position in d->order whose cookie is >= `cookie`. */
static size_t dir_lower_bound(const struct memfs_dir *d, uint64_t cookie)
{
    size_t lo = 0, hi = d->order_len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->order[mid].cookie < cookie)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void dir_compact(struct memfs_dir *d)
{
    size_t j = 0;
    for (size_t i = 0; i < d->order_len; i++)
        if (d->order[i].ent)
            d->order[j++] = d->order[i];
    d->order_len = j;
    d->tombstones = 0;
}

/** Make room for one more entry, so that dir_insert cannot fail. */
static int dir_reserve(struct memfs_dir *d)
{
    if (d->count + 1 > d->nbuckets) {
        size_t nb = d->nbuckets ? d->nbuckets * 2 : 8;
        struct memfs_dirent **b = calloc(nb, sizeof *b);
        if (!b)
            return -ENOMEM;
        for (size_t i = 0; i < d->nbuckets; i++) {
            struct memfs_dirent *e = d->buckets[i];
            while (e) {
                struct memfs_dirent *next = e->hnext;
                e->hnext = b[e->hash & (nb - 1)];
                b[e->hash & (nb - 1)] = e;
                e = next;
            }
        }
        free(d->buckets);
        d->buckets = b;
        d->nbuckets = nb;
    }
    if (d->order_len == d->order_cap) {
        if (d->tombstones * 4 >= d->order_len && d->tombstones) {
            dir_compact(d);
        } else {
            size_t nc = d->order_cap ? d->order_cap * 2 : 8;
            struct memfs_slot *o = realloc(d->order, nc * sizeof *o);
            if (!o)
                return -ENOMEM;
            d->order = o;
            d->order_cap = nc;
        }
    }
    return 0;
}

/** Add `e` (name and node set) with the next cookie; dir_reserve first. */
static void dir_insert(struct memfs_dir *d, struct memfs_dirent *e)
{
    size_t b = e->hash & (d->nbuckets - 1);
    e->cookie = d->next_cookie++;
    e->hnext = d->buckets[b];
    d->buckets[b] = e;
    d->order[d->order_len].cookie = e->cookie;
    d->order[d->order_len].ent = e;
    d->order_len++;
    d->count++;
}

/** Take `e` out of the directory; the caller frees it. */
static void dir_unlink(struct memfs_dir *d, struct memfs_dirent *e)
{
    struct memfs_dirent **pp = &d->buckets[e->hash & (d->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    size_t pos = dir_lower_bound(d, e->cookie);
    d->order[pos].ent = NULL;
    d->tombstones++;
    d->count--;
    if (d->count == 0) {
        d->order_len = 0;
        d->tombstones = 0;
    } else if (d->tombstones > 16 && d->tombstones * 2 > d->order_len) {
        dir_compact(d);
    }
}

static struct memfs_dirent *dirent_new(const char *name, size_t len)
{
    struct memfs_dirent *e = malloc(sizeof *e + len + 1);
    if (!e)
        return NULL;
    memcpy(e->name, name, len);
    e->name[len] = '\0';
    e->namelen = len;
    e->hash = name_hash(name, len);
    e->node = NULL;
    e->hnext = NULL;
    e->cookie = 0;
    return e;
}

/** Is `a` the directory `d` or one of its ancestors? */
static bool dir_is_ancestor(const struct memfs_node *a,
                            const struct memfs_node *d)
{
    for (; d; d = d->u.dir.parent)
        if (d == a)
            return true;
    return false;
}

/* ------------------------------------------------------------------------
 * Path resolution.  Caller holds fs->ns_lock.
 * ---------------------------------------------------------------------- */

/** Where a path leads.  For "" (the root) parent is NULL and node the
 *  root; otherwise parent is the directory holding the last component and
 *  ent/node are NULL when that name does not exist. */
struct memfs_lookup {
    struct memfs_node *parent;
    const char *name;
    size_t namelen;
    struct memfs_dirent *ent;
    struct memfs_node *node;
};

static int memfs_resolve(struct memfs *fs, const char *path,
                         struct memfs_lookup *lk)
{
    memset(lk, 0, sizeof *lk);
    if (!path)
        return -EINVAL;
    lk->node = fs->root;
    lk->name = path;
    if (*path == '\0')
        return 0;

    struct memfs_node *dir = fs->root;
    const char *p = path;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (dir->kind != S_IFDIR)
            return -ENOTDIR;
        bool dots = p[0] == '.' && (len == 1 || (len == 2 && p[1] == '.'));
        if (len == 0 || dots)
            return -EINVAL;
        if (len > MEMFS_NAME_MAX)
            return -ENAMETOOLONG;
        struct memfs_dirent *e = dir_lookup(&dir->u.dir, p, len);
        if (!slash) {
            lk->parent = dir;
            lk->name = p;
            lk->namelen = len;
            lk->ent = e;
            lk->node = e ? e->node : NULL;
            return 0;
        }
        if (!e)
            return -ENOENT;
        dir = e->node;
        p = slash + 1;
    }
}

/** Resolve `path` to an existing node. */
static int memfs_resolve_node(struct memfs *fs, const char *path,
                              struct memfs_node **out)
{
    struct memfs_lookup lk;
    int rc = memfs_resolve(fs, path, &lk);
    if (rc < 0)
        return rc;
    if (!lk.node)
        return -ENOENT;
    *out = lk.node;
    return 0;
}

/** Create a new object named by `lk` (ns_lock held for writing, the name
 *  absent).  `mode` holds the type and permission bits.  The new object
 *  belongs to ctx's uid/gid, or to the group of a set-group-ID parent,
 *  whose S_ISGID bit new subdirectories inherit. */
static int memfs_create_node(struct memfs *fs, const struct fs9_ctx *ctx,
                             const struct memfs_lookup *lk, uint32_t mode,
                             uint64_t rdev, const char *target,
                             struct timespec now, struct memfs_node **out)
{
    struct memfs_node *parent = lk->parent, *n = NULL;
    struct memfs_dirent *e = NULL;
    uint32_t kind = mode & S_IFMT;
    uint32_t uid = ctx ? ctx->uid : 0, gid = ctx ? ctx->gid : 0;
    int rc;

    if (!parent || lk->node)
        return -EEXIST;

    pthread_rwlock_rdlock(&parent->lock);
    uint32_t pmode = parent->mode, pgid = parent->gid;
    uint32_t pnlink = parent->nlink;
    pthread_rwlock_unlock(&parent->lock);
    if (pmode & S_ISGID) {
        gid = pgid;
        if (kind == S_IFDIR)
            mode |= S_ISGID;
    }
    if (kind == S_IFDIR && pnlink >= MEMFS_LINK_MAX)
        return -EMLINK;
    if (!pool_reserve(&fs->used_inodes, fs->max_inodes, 1))
        return -ENOSPC;

    rc = -ENOMEM;
    n = node_alloc(fs, mode, uid, gid, now);
    if (!n)
        goto fail_inode;
    n->rdev = rdev;
    if (kind == S_IFLNK) {
        n->size = strlen(target);
        n->u.target = strdup(target);
        if (!n->u.target)
            goto fail_node;
    }
    e = dirent_new(lk->name, lk->namelen);
    if (!e)
        goto fail_node;
    rc = dir_reserve(&parent->u.dir);
    if (rc < 0)
        goto fail_node;

    /* No failure from here on. */
    e->node = n;
    dir_insert(&parent->u.dir, e);
    if (kind == S_IFDIR) {
        n->nlink = 2;
        n->u.dir.parent = parent;
    } else {
        n->nlink = 1;
    }
    dir_touch(parent, now, 1, kind == S_IFDIR ? 1 : 0);
    *out = n;
    return 0;

fail_node:
    free(e);
    /* node_free gives the inode back to the pool. */
    node_free(fs, n);
    return rc;
fail_inode:
    pool_release(&fs->used_inodes, 1);
    return rc;
}

/* ------------------------------------------------------------------------
 * Configuration
 * ---------------------------------------------------------------------- */

static uint64_t physical_ram(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || psize <= 0)
        return UINT64_C(1) << 30;
    return (uint64_t)pages * (uint64_t)psize;
}

/** Parse decimal digits with an optional k/m/g/t suffix (powers of 1024)
 *  into `*out`.  With `pct` non-NULL a trailing '%' is accepted and
 *  `*pct` set to 1.  Returns false on anything else. */
static bool parse_quantity(const char *s, uint64_t *out, int *pct)
{
    uint64_t v = 0;
    const char *p = s;
    if (!s || *s < '0' || *s > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    unsigned shift = 0;
    switch (*p) {
    case '\0':
        break;
    case 'k': case 'K': shift = 10; p++; break;
    case 'm': case 'M': shift = 20; p++; break;
    case 'g': case 'G': shift = 30; p++; break;
    case 't': case 'T': shift = 40; p++; break;
    case '%':
        if (!pct)
            return false;
        *pct = 1;
        p++;
        break;
    default:
        return false;
    }
    if (*p != '\0')
        return false;
    if (shift && v > (UINT64_MAX >> shift))
        return false;
    *out = v << shift;
    return true;
}

static bool parse_octal_mode(const char *s, uint32_t *out)
{
    uint32_t v = 0;
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '7')
            return false;
        v = v * 8 + (uint32_t)(*p - '0');
        if (v > 07777)
            return false;
    }
    *out = v;
    return true;
}

static bool parse_id(const char *s, uint32_t *out)
{
    uint64_t v = 0;
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
        if (v >= UINT32_MAX) /* (uid_t)-1 means "no change" */
            return false;
    }
    *out = (uint32_t)v;
    return true;
}

/** The last value of `key` (later settings override earlier ones). */
static const char *config_last(const struct fs9_config *cfg, const char *key)
{
    const char *v = NULL;
    for (size_t i = 0; cfg && i < cfg->count; i++)
        if (cfg->items[i].key && strcmp(cfg->items[i].key, key) == 0)
            v = cfg->items[i].value ? cfg->items[i].value : "";
    return v;
}

static int memfs_create(const struct fs9_host *host,
                        const struct fs9_config *cfg, void **self, char *err,
                        size_t errlen)
{
    static const char *const known[] = {"size", "nr_inodes", "mode", "uid",
                                        "gid", NULL};
    uint64_t size_bytes = physical_ram() / 2;
    uint64_t nr_inodes = 0;
    uint32_t root_mode = 0755;
    uint32_t root_uid = (uint32_t)getuid(), root_gid = (uint32_t)getgid();
    const char *v, *unknown;

    if (err && errlen)
        err[0] = '\0';
    *self = NULL;
    if (cfg && (unknown = fs9_config_unknown_key(cfg, known))) {
        snprintf(err, errlen, "unknown key '%s' (memfs knows size, "
                 "nr_inodes, mode, uid, gid)", unknown);
        return -EINVAL;
    }
    if ((v = config_last(cfg, "size"))) {
        uint64_t q;
        int pct = 0;
        if (!parse_quantity(v, &q, &pct) || (pct && (q == 0 || q > 10000))) {
            snprintf(err, errlen, "size=%s: invalid size (bytes with an "
                     "optional k, m, g or t suffix, or a percentage of "
                     "RAM such as 50%%)", v);
            return -EINVAL;
        }
        /* phys RAM is far below 2^64 / 10000, so this cannot overflow. */
        size_bytes = pct ? physical_ram() / 100 * q : q;
    }
    if ((v = config_last(cfg, "nr_inodes"))) {
        if (!parse_quantity(v, &nr_inodes, NULL)) {
            snprintf(err, errlen, "nr_inodes=%s: invalid number of inodes "
                     "(a number with an optional k, m or g suffix; 0 for "
                     "unlimited)", v);
            return -EINVAL;
        }
    }
    if ((v = config_last(cfg, "mode")) && !parse_octal_mode(v, &root_mode)) {
        snprintf(err, errlen, "mode=%s: invalid mode (octal, at most 07777)",
                 v);
        return -EINVAL;
    }
    if ((v = config_last(cfg, "uid")) && !parse_id(v, &root_uid)) {
        snprintf(err, errlen, "uid=%s: invalid user id (a decimal number)",
                 v);
        return -EINVAL;
    }
    if ((v = config_last(cfg, "gid")) && !parse_id(v, &root_gid)) {
        snprintf(err, errlen, "gid=%s: invalid group id (a decimal number)",
                 v);
        return -EINVAL;
    }

    struct memfs *fs = calloc(1, sizeof *fs);
    if (!fs) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    fs->host = host;
    fs->max_pages = size_bytes / MEMFS_PAGE_SIZE +
                    (size_bytes % MEMFS_PAGE_SIZE ? 1 : 0);
    fs->max_inodes = nr_inodes;
    atomic_init(&fs->next_ino, 1);
    atomic_init(&fs->used_pages, 0);
    atomic_init(&fs->used_inodes, 0);
    pthread_rwlockattr_init(&fs->lockattr);
    /* Writers must not starve behind a stream of readers. */
    pthread_rwlockattr_setkind_np(
        &fs->lockattr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    if (pthread_rwlock_init(&fs->ns_lock, &fs->lockattr) != 0)
        goto nomem;

    fs->root = node_alloc(fs, S_IFDIR | root_mode, root_uid, root_gid,
                          memfs_now(fs));
    if (!fs->root) {
        pthread_rwlock_destroy(&fs->ns_lock);
        goto nomem;
    }
    fs->root->nlink = 2;
    atomic_init(&fs->used_inodes, 1);
    *self = fs;
    return 0;

nomem:
    pthread_rwlockattr_destroy(&fs->lockattr);
    free(fs);
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
}

/** Free the whole tree without recursion (a tree can be made arbitrarily
 *  deep by renames, so the depth is not bounded by path length). */
static void memfs_destroy(void *self)
{
    struct memfs *fs = self;
    if (!fs)
        return;
    struct memfs_node *cur = fs->root;
    while (cur) {
        struct memfs_dir *d = &cur->u.dir;
        struct memfs_dirent *e = NULL;
        while (d->order_len && !e)
            e = d->order[--d->order_len].ent;
        if (!e) {
            struct memfs_node *up = d->parent;
            node_free(fs, cur);
            cur = up;
            continue;
        }
        struct memfs_node *child = e->node;
        free(e);
        if (child->kind == S_IFDIR) {
            cur = child; /* its parent pointer leads back here */
        } else if (--child->nlink == 0 && child->opens == 0) {
            node_free(fs, child);
        }
    }
    pthread_rwlock_destroy(&fs->ns_lock);
    pthread_rwlockattr_destroy(&fs->lockattr);
    free(fs);
}

static uint64_t memfs_capabilities(void *self)
{
    (void)self;
    return FS9_CAP_READ | FS9_CAP_WRITE | FS9_CAP_CREATE | FS9_CAP_DELETE |
           FS9_CAP_RENAME | FS9_CAP_TRUNCATE | FS9_CAP_CHMOD |
           FS9_CAP_CHOWN | FS9_CAP_UTIME | FS9_CAP_HARDLINK |
           FS9_CAP_SYMLINK | FS9_CAP_SYNC | FS9_CAP_APPEND |
           FS9_CAP_RANDOM_WRITE | FS9_CAP_DIRECTORY | FS9_CAP_XATTR |
           FS9_CAP_ATOMIC_RENAME | FS9_CAP_NONBLOCKING;
}

/* ------------------------------------------------------------------------
 * stat, wstat, statfs
 * ---------------------------------------------------------------------- */

static int memfs_stat(void *self, const struct fs9_ctx *ctx,
                      const char *path, void *handle, struct fs9_attr *out)
{
    struct memfs *fs = self;
    struct memfs_node *n;
    int rc;
    (void)ctx;

    if (handle) {
        node_stat(((struct memfs_handle *)handle)->node, out);
        return 0;
    }
    pthread_rwlock_rdlock(&fs->ns_lock);
    rc = memfs_resolve_node(fs, path, &n);
    if (rc == 0)
        node_stat(n, out);
    pthread_rwlock_unlock(&fs->ns_lock);
    return rc;
}

/** Truncate or extend a regular file to `size`; caller holds n->lock
 *  for writing.  Never fails: shrinking frees, growing leaves a hole. */
static void file_set_size(struct memfs *fs, struct memfs_node *n,
                          uint64_t size)
{
    if (size < n->size) {
        uint64_t keep = (size + MEMFS_PAGE_MASK) >> MEMFS_PAGE_SHIFT;
        pool_release(&fs->used_pages,
                     pages_clear(&n->u.file, keep, UINT64_MAX));
        /* Keep "bytes past EOF in a page are zero" true. */
        if (size & MEMFS_PAGE_MASK)
            pages_zero(&n->u.file, size,
                       MEMFS_PAGE_SIZE - (size & MEMFS_PAGE_MASK));
    } else if (size > n->size) {
        /* Pages preallocated past EOF (fallocate KEEP_SIZE) are zero. */
    }
    n->size = size;
}

static bool timespec_valid(struct timespec t)
{
    return t.tv_nsec >= 0 && t.tv_nsec < 1000000000L;
}

static int memfs_wstat(void *self, const struct fs9_ctx *ctx,
                       const char *path, void *handle,
                       const struct fs9_wstat *w, struct fs9_attr *out)
{
    struct memfs *fs = self;
    struct memfs_node *n;
    const uint32_t known = FS9_WSTAT_MODE | FS9_WSTAT_UID | FS9_WSTAT_GID |
                           FS9_WSTAT_SIZE | FS9_WSTAT_ATIME |
                           FS9_WSTAT_MTIME | FS9_WSTAT_ATIME_NOW |
                           FS9_WSTAT_MTIME_NOW | FS9_WSTAT_CTIME;
    bool ns_locked = false;
    int rc = 0;
    (void)ctx;

    if (!w || (w->valid & ~known))
        return -EINVAL;
    if (handle) {
        n = ((struct memfs_handle *)handle)->node;
    } else {
        pthread_rwlock_rdlock(&fs->ns_lock);
        ns_locked = true;
        rc = memfs_resolve_node(fs, path, &n);
        if (rc < 0)
            goto out;
    }

    uint32_t v = w->valid;
    struct timespec now = memfs_now(fs);
    struct timespec atime = w->atime, mtime = w->mtime;
    /* Accept utimensat's special nanosecond values too. */
    if ((v & FS9_WSTAT_ATIME) && atime.tv_nsec == UTIME_NOW)
        v = (v & ~FS9_WSTAT_ATIME) | FS9_WSTAT_ATIME_NOW;
    if ((v & FS9_WSTAT_ATIME) && atime.tv_nsec == UTIME_OMIT)
        v &= ~FS9_WSTAT_ATIME;
    if ((v & FS9_WSTAT_MTIME) && mtime.tv_nsec == UTIME_NOW)
        v = (v & ~FS9_WSTAT_MTIME) | FS9_WSTAT_MTIME_NOW;
    if ((v & FS9_WSTAT_MTIME) && mtime.tv_nsec == UTIME_OMIT)
        v &= ~FS9_WSTAT_MTIME;

    pthread_rwlock_wrlock(&n->lock);
    /* Validate everything first, then apply: all or nothing. */
    if (v & FS9_WSTAT_SIZE) {
        if (n->kind == S_IFDIR)
            rc = -EISDIR;
        else if (n->kind != S_IFREG)
            rc = -EINVAL;
        else if (w->size > MEMFS_MAX_FILE_SIZE)
            rc = -EFBIG;
    }
    if (((v & FS9_WSTAT_ATIME) && !timespec_valid(atime)) ||
        ((v & FS9_WSTAT_MTIME) && !timespec_valid(mtime)) ||
        ((v & FS9_WSTAT_CTIME) && !timespec_valid(w->ctime)))
        rc = rc ? rc : -EINVAL;
    if (rc == 0) {
        if (v & FS9_WSTAT_MODE)
            n->mode = n->kind | (w->mode & 07777);
        if (v & FS9_WSTAT_UID)
            n->uid = w->uid;
        if (v & FS9_WSTAT_GID)
            n->gid = w->gid;
        if (v & (FS9_WSTAT_SIZE | FS9_WSTAT_UID | FS9_WSTAT_GID))
            drop_capabilities(n);
        if (v & FS9_WSTAT_SIZE) {
            /* As truncate(2): mtime moves even when the size does not. */
            file_set_size(fs, n, w->size);
            n->mtime = now;
        }
        if (v & FS9_WSTAT_ATIME_NOW)
            n->atime = now;
        else if (v & FS9_WSTAT_ATIME)
            n->atime = atime;
        if (v & FS9_WSTAT_MTIME_NOW)
            n->mtime = now;
        else if (v & FS9_WSTAT_MTIME)
            n->mtime = mtime;
        if (v)
            n->ctime = (v & FS9_WSTAT_CTIME) ? w->ctime : now;
        if (out)
            node_attr(n, out);
    }
    pthread_rwlock_unlock(&n->lock);
out:
    if (ns_locked)
        pthread_rwlock_unlock(&fs->ns_lock);
    return rc;
}

static int memfs_statfs(void *self, const char *path, struct fs9_statfs *out)
{
    struct memfs *fs = self;
    struct memfs_node *n;
    int rc = 0;

    if (path && *path) {
        pthread_rwlock_rdlock(&fs->ns_lock);
        rc = memfs_resolve_node(fs, path, &n);
        pthread_rwlock_unlock(&fs->ns_lock);
        if (rc < 0)
            return rc;
    }
    uint64_t used = atomic_load_explicit(&fs->used_pages,
                                         memory_order_relaxed);
    uint64_t inodes = atomic_load_explicit(&fs->used_inodes,
                                           memory_order_relaxed);
    memset(out, 0, sizeof *out);
    out->bsize = MEMFS_PAGE_SIZE;
    if (fs->max_pages) {
        out->blocks = fs->max_pages;
    } else {
        /* Unlimited: show physical RAM, or what is used if more. */
        uint64_t ram = physical_ram() / MEMFS_PAGE_SIZE;
        out->blocks = ram > used ? ram : used;
    }
    out->bfree = out->blocks > used ? out->blocks - used : 0;
    out->bavail = out->bfree;
    if (fs->max_inodes) {
        out->files = fs->max_inodes;
        out->ffree = fs->max_inodes > inodes ? fs->max_inodes - inodes : 0;
    } else {
        out->ffree = MEMFS_UNLIMITED_FFREE;
        out->files = inodes + MEMFS_UNLIMITED_FFREE;
    }
    out->namemax = MEMFS_NAME_MAX;
    return 0;
}

/* ------------------------------------------------------------------------
 * open, close, read, write
 * ---------------------------------------------------------------------- */

/** The type a create asks for, or a negative errno. */
static int create_kind(uint32_t flags, uint32_t mode, uint32_t *kind)
{
    uint32_t fmt = mode & S_IFMT;
    bool want_handle = !(flags & FS9_OPEN_NOHANDLE);

    if (flags & FS9_OPEN_DIRECTORY) {
        if (fmt != 0 && fmt != S_IFDIR)
            return -EINVAL;
        fmt = S_IFDIR;
    } else if (fmt == 0) {
        fmt = S_IFREG;
    }
    switch (fmt) {
    case S_IFREG:
        break;
    case S_IFDIR:
        if (flags & (FS9_OPEN_WRITE | FS9_OPEN_TRUNC))
            return -EISDIR;
        break;
    case S_IFIFO:
    case S_IFSOCK:
        /* Special files are created, never opened, by memfs. */
        if (want_handle)
            return -EINVAL;
        break;
    default: /* devices go through mknod; symlinks through symlink */
        return -EINVAL;
    }
    *kind = fmt;
    return 0;
}

static int memfs_open(void *self, const struct fs9_ctx *ctx, const char *path,
                      uint32_t flags, uint32_t mode, struct fs9_open_out *out)
{
    struct memfs *fs = self;
    struct memfs_handle *h = NULL;
    struct memfs_lookup lk;
    struct memfs_node *n;
    bool create = flags & FS9_OPEN_CREATE;
    bool want_handle = !(flags & FS9_OPEN_NOHANDLE);
    bool created = false;
    int rc;

    if (!out)
        return -EINVAL;
    if (want_handle && !(h = malloc(sizeof *h)))
        return -ENOMEM;
    if (create)
        pthread_rwlock_wrlock(&fs->ns_lock);
    else
        pthread_rwlock_rdlock(&fs->ns_lock);

    rc = memfs_resolve(fs, path, &lk);
    if (rc < 0)
        goto out;
    n = lk.node;
    if (!n) {
        uint32_t kind = 0;
        if (!create) {
            rc = -ENOENT;
            goto out;
        }
        rc = create_kind(flags, mode, &kind);
        if (rc < 0)
            goto out;
        rc = memfs_create_node(fs, ctx, &lk, kind | (mode & 07777), 0, NULL,
                               memfs_now(fs), &n);
        if (rc < 0)
            goto out;
        created = true;
    } else {
        /* The checks in the order Linux's open makes them. */
        if (create && (flags & FS9_OPEN_EXCL))
            rc = -EEXIST;
        else if (create && n->kind == S_IFDIR &&
                 !(flags & FS9_OPEN_DIRECTORY))
            rc = -EISDIR;
        else if ((flags & FS9_OPEN_DIRECTORY) && n->kind != S_IFDIR)
            rc = -ENOTDIR;
        else if (n->kind == S_IFLNK)
            rc = -ELOOP; /* FS9 never asks to follow */
        else if (n->kind == S_IFDIR &&
                 (flags & (FS9_OPEN_WRITE | FS9_OPEN_TRUNC)))
            rc = -EISDIR;
        else if (want_handle && n->kind != S_IFDIR && n->kind != S_IFREG)
            rc = -ENXIO; /* no driver behind memfs's special files */
        if (rc < 0)
            goto out;
    }

    pthread_rwlock_wrlock(&n->lock);
    if (!created && (flags & FS9_OPEN_TRUNC) && n->kind == S_IFREG) {
        /* Like O_TRUNC on Linux: times move even for an empty file. */
        struct timespec now = memfs_now(fs);
        file_set_size(fs, n, 0);
        drop_capabilities(n);
        n->mtime = n->ctime = now;
    }
    if (h) {
        h->node = n;
        h->flags = flags;
        n->opens++;
    }
    node_attr(n, &out->attr);
    pthread_rwlock_unlock(&n->lock);

    out->handle = h;
    out->flags = 0;
    out->created = created;
    h = NULL;
out:
    pthread_rwlock_unlock(&fs->ns_lock);
    free(h);
    return rc;
}

static int memfs_close(void *self, void *handle, int sync)
{
    struct memfs *fs = self;
    struct memfs_handle *h = handle;
    (void)sync; /* memory is as durable as memfs gets */
    if (!h)
        return -EBADF;
    struct memfs_node *n = h->node;
    free(h);
    pthread_rwlock_wrlock(&n->lock);
    n->opens--;
    node_unlock_maybe_free(fs, n);
    return 0;
}

/** relatime: atime moves when it is not newer than mtime or ctime, or is
 *  a day old.  Caller holds n->lock. */
static bool relatime_due(const struct memfs_node *n, struct timespec now)
{
    return timespec_cmp(n->atime, n->mtime) <= 0 ||
           timespec_cmp(n->atime, n->ctime) <= 0 ||
           now.tv_sec - n->atime.tv_sec >= MEMFS_RELATIME_SECS;
}

/** Called after a read or readdir without any lock held. */
static void touch_atime(struct memfs *fs, struct memfs_handle *h,
                        bool due)
{
    if (!due || (h->flags & FS9_OPEN_NOATIME))
        return;
    struct memfs_node *n = h->node;
    struct timespec now = memfs_now(fs);
    pthread_rwlock_wrlock(&n->lock);
    if (relatime_due(n, now))
        n->atime = now;
    pthread_rwlock_unlock(&n->lock);
}

static bool handle_readable(const struct memfs_handle *h)
{
    return (h->flags & FS9_OPEN_READ) || !(h->flags & FS9_OPEN_WRITE);
}

static ssize_t memfs_read(void *self, void *handle, void *buf, size_t size,
                          uint64_t offset)
{
    struct memfs *fs = self;
    struct memfs_handle *h = handle;
    if (!h)
        return -EBADF;
    struct memfs_node *n = h->node;
    size_t got = 0;
    bool due;

    if (n->kind == S_IFDIR)
        return -EISDIR;
    if (n->kind != S_IFREG)
        return -EINVAL;
    if (!handle_readable(h))
        return -EBADF;
    if (size == 0)
        return 0;
    if (size > (size_t)SSIZE_MAX)
        size = (size_t)SSIZE_MAX & ~(size_t)MEMFS_PAGE_MASK;

    pthread_rwlock_rdlock(&n->lock);
    if (offset < n->size) {
        uint64_t avail = n->size - offset;
        got = avail < size ? (size_t)avail : size;
        pages_read(&n->u.file, buf, offset, got);
    }
    due = !(h->flags & FS9_OPEN_NOATIME) && relatime_due(n, memfs_now(fs));
    pthread_rwlock_unlock(&n->lock);
    touch_atime(fs, h, due);
    return (ssize_t)got;
}

static ssize_t memfs_write(void *self, void *handle, const void *buf,
                           size_t size, uint64_t offset)
{
    struct memfs *fs = self;
    struct memfs_handle *h = handle;
    if (!h)
        return -EBADF;
    struct memfs_node *n = h->node;
    const char *src = buf;
    size_t done = 0;
    int err = 0;

    if (n->kind == S_IFDIR)
        return -EISDIR;
    if (n->kind != S_IFREG)
        return -EINVAL;
    if (!(h->flags & FS9_OPEN_WRITE))
        return -EBADF;
    if (size > (size_t)SSIZE_MAX)
        size = (size_t)SSIZE_MAX & ~(size_t)MEMFS_PAGE_MASK;

    pthread_rwlock_wrlock(&n->lock);
    uint64_t off = (h->flags & FS9_OPEN_APPEND) ? n->size : offset;
    if (size == 0)
        goto out;
    if (off >= MEMFS_MAX_FILE_SIZE) {
        err = -EFBIG;
        goto out;
    }
    if (size > MEMFS_MAX_FILE_SIZE - off)
        size = (size_t)(MEMFS_MAX_FILE_SIZE - off);

    while (done < size) {
        uint64_t pos = off + done;
        size_t in = pos & MEMFS_PAGE_MASK;
        size_t len = MEMFS_PAGE_SIZE - in < size - done
                         ? MEMFS_PAGE_SIZE - in
                         : size - done;
        uint64_t idx = pos >> MEMFS_PAGE_SHIFT;
        char *pg = pages_lookup(&n->u.file, idx);
        if (!pg) {
            if (!pool_reserve(&fs->used_pages, fs->max_pages, 1)) {
                err = -ENOSPC;
                break;
            }
            pg = malloc(MEMFS_PAGE_SIZE);
            if (!pg) {
                pool_release(&fs->used_pages, 1);
                err = -ENOMEM;
                break;
            }
            /* Zero what this write does not cover. */
            if (in)
                memset(pg, 0, in);
            if (in + len < MEMFS_PAGE_SIZE)
                memset(pg + in + len, 0, MEMFS_PAGE_SIZE - in - len);
            if (pages_insert(&n->u.file, idx, pg) < 0) {
                free(pg);
                pool_release(&fs->used_pages, 1);
                err = -ENOMEM;
                break;
            }
        }
        memcpy(pg + in, src + done, len);
        done += len;
    }
    if (done) {
        struct timespec now = memfs_now(fs);
        drop_capabilities(n);
        if (off + done > n->size)
            n->size = off + done;
        n->mtime = n->ctime = now;
    }
out:
    pthread_rwlock_unlock(&n->lock);
    return done ? (ssize_t)done : err;
}

static int memfs_fsync(void *self, void *handle, int datasync)
{
    (void)self;
    (void)datasync;
    return handle ? 0 : -EBADF;
}

static int memfs_fallocate(void *self, void *handle, int mode,
                           uint64_t offset, uint64_t length)
{
    struct memfs *fs = self;
    struct memfs_handle *h = handle;
    if (!h)
        return -EBADF;
    struct memfs_node *n = h->node;
    const int supported = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE |
                          FALLOC_FL_ZERO_RANGE;
    int rc = 0;

    if (mode & ~supported)
        return -EOPNOTSUPP;
    if ((mode & FALLOC_FL_PUNCH_HOLE) &&
        (!(mode & FALLOC_FL_KEEP_SIZE) || (mode & FALLOC_FL_ZERO_RANGE)))
        return -EOPNOTSUPP;
    if (!(h->flags & FS9_OPEN_WRITE))
        return -EBADF;
    if (n->kind == S_IFDIR)
        return -EISDIR;
    if (n->kind != S_IFREG)
        return -ENODEV;
    if (length == 0)
        return -EINVAL;
    if (offset > MEMFS_MAX_FILE_SIZE ||
        length > MEMFS_MAX_FILE_SIZE - offset)
        return -EFBIG;

    uint64_t end = offset + length;
    struct timespec now = memfs_now(fs);
    pthread_rwlock_wrlock(&n->lock);
    if (mode & FALLOC_FL_PUNCH_HOLE) {
        pool_release(&fs->used_pages, pages_punch(&n->u.file, offset, length));
        n->mtime = n->ctime = now;
        goto out;
    }

    /* Allocate (and for ZERO_RANGE zero) the range: reserve it all first
     * so that -ENOSPC changes nothing. */
    uint64_t first = offset >> MEMFS_PAGE_SHIFT;
    uint64_t last = (end - 1) >> MEMFS_PAGE_SHIFT;
    uint64_t need = (last - first + 1) - pages_count(&n->u.file, first, last);
    if (!pool_reserve(&fs->used_pages, fs->max_pages, need)) {
        rc = -ENOSPC;
        goto out;
    }
    if (mode & FALLOC_FL_ZERO_RANGE)
        pages_zero(&n->u.file, offset, length);
    for (uint64_t idx = first; idx <= last && need; idx++) {
        if (pages_lookup(&n->u.file, idx))
            continue;
        char *pg = calloc(1, MEMFS_PAGE_SIZE);
        if (!pg || pages_insert(&n->u.file, idx, pg) < 0) {
            free(pg);
            rc = -ENOMEM;
            break;
        }
        need--;
    }
    pool_release(&fs->used_pages, need); /* what was not used */
    if (rc == 0) {
        if (!(mode & FALLOC_FL_KEEP_SIZE) && end > n->size) {
            n->size = end;
            n->mtime = now;
        }
        if (mode & FALLOC_FL_ZERO_RANGE)
            n->mtime = now;
        n->ctime = now;
    }
out:
    pthread_rwlock_unlock(&n->lock);
    return rc;
}

/* ------------------------------------------------------------------------
 * readdir
 * ---------------------------------------------------------------------- */

struct memfs_batch_entry {
    uint64_t cookie;
    struct fs9_attr attr;
    char name[MEMFS_NAME_MAX + 1];
};

static int memfs_readdir(void *self, void *handle, uint64_t cookie,
                         uint32_t flags, fs9_dirent_fn emit, void *emit_arg)
{
    struct memfs *fs = self;
    struct memfs_handle *h = handle;
    if (!h)
        return -EBADF;
    struct memfs_node *d = h->node;
    struct memfs_batch_entry *batch;
    bool due = false;
    int rc = 0;
    (void)flags; /* attributes are always cheap here */

    if (d->kind != S_IFDIR)
        return -ENOTDIR;
    if (cookie >= (UINT64_C(1) << 63))
        return 0;
    batch = malloc(MEMFS_READDIR_BATCH * sizeof *batch);
    if (!batch)
        return -ENOMEM;

    /* Copy a batch under the lock, emit it without: the callback never
     * runs with memfs locks held. */
    for (;;) {
        size_t n = 0;
        pthread_rwlock_rdlock(&fs->ns_lock);
        const struct memfs_dir *dir = &d->u.dir;
        for (size_t pos = dir_lower_bound(dir, cookie + 1);
             pos < dir->order_len && n < MEMFS_READDIR_BATCH; pos++) {
            const struct memfs_dirent *e = dir->order[pos].ent;
            if (!e)
                continue;
            batch[n].cookie = e->cookie;
            memcpy(batch[n].name, e->name, e->namelen + 1);
            node_stat(e->node, &batch[n].attr);
            n++;
        }
        pthread_rwlock_unlock(&fs->ns_lock);

        for (size_t i = 0; i < n; i++) {
            struct fs9_dirent de = {
                .name = batch[i].name,
                .cookie = batch[i].cookie,
                .full_attr = 1,
                .attr = batch[i].attr,
            };
            int r = emit(emit_arg, &de);
            if (r != 0) {
                rc = r < 0 ? r : 0;
                goto done;
            }
            cookie = batch[i].cookie;
        }
        if (n < MEMFS_READDIR_BATCH)
            break;
    }
done:
    free(batch);
    pthread_rwlock_rdlock(&d->lock);
    due = relatime_due(d, memfs_now(fs));
    pthread_rwlock_unlock(&d->lock);
    touch_atime(fs, h, due);
    return rc;
}

/* ------------------------------------------------------------------------
 * remove, rename, link, symlink, readlink, mknod
 * ---------------------------------------------------------------------- */

static int memfs_remove(void *self, const struct fs9_ctx *ctx,
                        const char *path, uint32_t flags)
{
    struct memfs *fs = self;
    struct memfs_lookup lk;
    bool rmdir = flags & FS9_REMOVE_DIR;
    int rc;
    (void)ctx;

    if (flags & ~(uint32_t)FS9_REMOVE_DIR)
        return -EINVAL;
    pthread_rwlock_wrlock(&fs->ns_lock);
    rc = memfs_resolve(fs, path, &lk);
    if (rc < 0)
        goto out;
    struct memfs_node *n = lk.node;
    if (!n) {
        rc = -ENOENT;
    } else if (!lk.parent) {
        rc = rmdir ? -EBUSY : -EISDIR; /* the root */
    } else if (rmdir && n->kind != S_IFDIR) {
        rc = -ENOTDIR;
    } else if (!rmdir && n->kind == S_IFDIR) {
        rc = -EISDIR;
    } else if (rmdir && n->u.dir.count) {
        rc = -ENOTEMPTY;
    }
    if (rc < 0)
        goto out;

    struct timespec now = memfs_now(fs);
    dir_unlink(&lk.parent->u.dir, lk.ent);
    free(lk.ent);
    dir_touch(lk.parent, now, -1, n->kind == S_IFDIR ? -1 : 0);
    node_drop_name(fs, n, now);
out:
    pthread_rwlock_unlock(&fs->ns_lock);
    return rc;
}

static int memfs_rename(void *self, const struct fs9_ctx *ctx,
                        const char *from, const char *to, uint32_t flags)
{
    struct memfs *fs = self;
    struct memfs_lookup lf, lt;
    struct memfs_dirent *ne = NULL;
    bool exchange = flags & FS9_RENAME_EXCHANGE;
    int rc;
    (void)ctx;

    if (flags & ~(uint32_t)(FS9_RENAME_NOREPLACE | FS9_RENAME_EXCHANGE))
        return -EINVAL;
    if ((flags & FS9_RENAME_NOREPLACE) && exchange)
        return -EINVAL;

    pthread_rwlock_wrlock(&fs->ns_lock);
    rc = memfs_resolve(fs, from, &lf);
    if (rc < 0)
        goto out;
    rc = memfs_resolve(fs, to, &lt);
    if (rc < 0)
        goto out;
    if (!lf.parent || !lt.parent) { /* the root cannot move or be hit */
        rc = -EINVAL;
        goto out;
    }
    struct memfs_node *src = lf.node, *dst = lt.node;
    struct memfs_node *fp = lf.parent, *tp = lt.parent;
    if (!src) {
        rc = -ENOENT;
        goto out;
    }
    if (exchange && !dst) {
        rc = -ENOENT;
        goto out;
    }
    if ((flags & FS9_RENAME_NOREPLACE) && dst) {
        rc = -EEXIST;
        goto out;
    }
    if (src == dst) /* the same name, or two links to one file */
        goto out;
    /* The ancestor checks Linux makes (lock_rename's "trap"). */
    if (src->kind == S_IFDIR && dir_is_ancestor(src, tp)) {
        rc = -EINVAL;
        goto out;
    }
    if (dst && dst->kind == S_IFDIR && dir_is_ancestor(dst, fp)) {
        rc = exchange ? -EINVAL : -ENOTEMPTY;
        goto out;
    }

    struct timespec now = memfs_now(fs);
    int32_t src_dir = src->kind == S_IFDIR;
    if (exchange) {
        int32_t dst_dir = dst->kind == S_IFDIR;
        lf.ent->node = dst;
        lt.ent->node = src;
        if (fp != tp) {
            if (src_dir)
                src->u.dir.parent = tp;
            if (dst_dir)
                dst->u.dir.parent = fp;
            dir_touch(fp, now, 0, dst_dir - src_dir);
            dir_touch(tp, now, 0, src_dir - dst_dir);
        } else {
            dir_touch(fp, now, 0, 0);
        }
        node_touch_ctime(src, now, 0);
        node_touch_ctime(dst, now, 0);
        goto out;
    }

    if (dst) {
        if (src_dir && dst->kind != S_IFDIR)
            rc = -ENOTDIR;
        else if (!src_dir && dst->kind == S_IFDIR)
            rc = -EISDIR;
        else if (dst->kind == S_IFDIR && dst->u.dir.count)
            rc = -ENOTEMPTY;
        if (rc < 0)
            goto out;
    } else {
        /* Everything that can fail happens before the first change. */
        ne = dirent_new(lt.name, lt.namelen);
        if (!ne) {
            rc = -ENOMEM;
            goto out;
        }
        rc = dir_reserve(&tp->u.dir);
        if (rc < 0)
            goto out;
    }

    int32_t dst_dir = dst && dst->kind == S_IFDIR;
    if (dst) {
        lt.ent->node = src; /* the target name keeps its place */
    } else {
        ne->node = src;
        dir_insert(&tp->u.dir, ne);
        ne = NULL;
    }
    dir_unlink(&fp->u.dir, lf.ent);
    free(lf.ent);
    if (src_dir)
        src->u.dir.parent = tp;
    if (fp != tp) {
        dir_touch(fp, now, -1, -src_dir);
        dir_touch(tp, now, dst ? 0 : 1, src_dir - dst_dir);
    } else {
        dir_touch(fp, now, dst ? -1 : 0, -dst_dir);
    }
    node_touch_ctime(src, now, 0);
    if (dst)
        node_drop_name(fs, dst, now);
out:
    pthread_rwlock_unlock(&fs->ns_lock);
    free(ne);
    return rc;
}

static int memfs_link(void *self, const struct fs9_ctx *ctx, const char *from,
                      const char *to, struct fs9_attr *out)
{
    struct memfs *fs = self;
    struct memfs_lookup lf, lt;
    struct memfs_dirent *e = NULL;
    int rc;
    (void)ctx;

    pthread_rwlock_wrlock(&fs->ns_lock);
    rc = memfs_resolve(fs, from, &lf);
    if (rc < 0)
        goto out;
    if (!lf.node) {
        rc = -ENOENT;
        goto out;
    }
    rc = memfs_resolve(fs, to, &lt);
    if (rc < 0)
        goto out;
    struct memfs_node *n = lf.node;
    if (lt.node)
        rc = -EEXIST;
    else if (n->kind == S_IFDIR)
        rc = -EPERM;
    else if (n->nlink >= MEMFS_LINK_MAX)
        rc = -EMLINK;
    else if (!(e = dirent_new(lt.name, lt.namelen)))
        rc = -ENOMEM;
    else
        rc = dir_reserve(&lt.parent->u.dir);
    if (rc < 0)
        goto out;

    struct timespec now = memfs_now(fs);
    e->node = n;
    dir_insert(&lt.parent->u.dir, e);
    e = NULL;
    dir_touch(lt.parent, now, 1, 0);
    pthread_rwlock_wrlock(&n->lock);
    n->nlink++;
    n->ctime = now;
    if (out)
        node_attr(n, out);
    pthread_rwlock_unlock(&n->lock);
out:
    pthread_rwlock_unlock(&fs->ns_lock);
    free(e);
    return rc;
}

static int memfs_symlink(void *self, const struct fs9_ctx *ctx,
                         const char *target, const char *path,
                         struct fs9_attr *out)
{
    struct memfs *fs = self;
    struct memfs_lookup lk;
    struct memfs_node *n;
    int rc;

    if (!target || !*target)
        return -ENOENT;
    if (strnlen(target, MEMFS_SYMLINK_MAX + 1) > MEMFS_SYMLINK_MAX)
        return -ENAMETOOLONG;
    pthread_rwlock_wrlock(&fs->ns_lock);
    rc = memfs_resolve(fs, path, &lk);
    if (rc == 0)
        rc = memfs_create_node(fs, ctx, &lk, S_IFLNK | 0777, 0, target,
                               memfs_now(fs), &n);
    if (rc == 0 && out)
        node_stat(n, out);
    pthread_rwlock_unlock(&fs->ns_lock);
    return rc;
}

static ssize_t memfs_readlink(void *self, const char *path, char *buf,
                              size_t size)
{
    struct memfs *fs = self;
    struct memfs_node *n;
    ssize_t rc;

    pthread_rwlock_rdlock(&fs->ns_lock);
    rc = memfs_resolve_node(fs, path, &n);
    if (rc == 0) {
        if (n->kind != S_IFLNK) {
            rc = -EINVAL;
        } else {
            size_t len = strlen(n->u.target);
            if (len > size) {
                rc = -ENAMETOOLONG;
            } else {
                memcpy(buf, n->u.target, len);
                rc = (ssize_t)len;
            }
        }
    }
    pthread_rwlock_unlock(&fs->ns_lock);
    return rc;
}

static int memfs_mknod(void *self, const struct fs9_ctx *ctx,
                       const char *path, uint32_t mode, uint64_t rdev,
                       struct fs9_attr *out)
{
    struct memfs *fs = self;
    struct memfs_lookup lk;
    struct memfs_node *n;
    uint32_t kind = mode & S_IFMT;
    int rc;

    switch (kind) {
    case 0:
        kind = S_IFREG;
        break;
    case S_IFREG:
    case S_IFCHR:
    case S_IFBLK:
    case S_IFIFO:
    case S_IFSOCK:
        break;
    case S_IFDIR:
        return -EPERM;
    default:
        return -EINVAL;
    }
    if (kind != S_IFCHR && kind != S_IFBLK)
        rdev = 0;
    pthread_rwlock_wrlock(&fs->ns_lock);
    rc = memfs_resolve(fs, path, &lk);
    if (rc == 0)
        rc = memfs_create_node(fs, ctx, &lk, kind | (mode & 07777), rdev,
                               NULL, memfs_now(fs), &n);
    if (rc == 0 && out)
        node_stat(n, out);
    pthread_rwlock_unlock(&fs->ns_lock);
    return rc;
}

/* ------------------------------------------------------------------------
 * Extended attributes
 * ---------------------------------------------------------------------- */

static int xattr_check_name(const char *name)
{
    static const char *const prefixes[] = {"user.", "trusted.", "security."};
    if (!name)
        return -EINVAL;
    size_t len = strnlen(name, MEMFS_XATTR_NAME_MAX + 1);
    if (len == 0 || len > MEMFS_XATTR_NAME_MAX)
        return -ERANGE;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        size_t pl = strlen(prefixes[i]);
        if (strncmp(name, prefixes[i], pl) == 0)
            return len > pl ? 0 : -EINVAL;
    }
    /* system.* (POSIX ACLs among them) and unknown namespaces: memfs does
     * not implement them, and saying so keeps tools from relying on it. */
    return -EOPNOTSUPP;
}

static ssize_t memfs_getxattr(void *self, const char *path, const char *name,
                              void *buf, size_t size)
{
    struct memfs *fs = self;
    struct memfs_node *n;
    ssize_t rc = xattr_check_name(name);
    if (rc < 0)
        return rc;

    pthread_rwlock_rdlock(&fs->ns_lock);
    rc = memfs_resolve_node(fs, path, &n);
    if (rc == 0) {
        pthread_rwlock_rdlock(&n->lock);
        struct memfs_xattr *x = *xattr_find(n, name);
        if (!x)
            rc = -ENODATA;
        else if (size == 0)
            rc = (ssize_t)x->size;
        else if (x->size > size)
            rc = -ERANGE;
        else {
            if (x->size)
                memcpy(buf, x->value, x->size);
            rc = (ssize_t)x->size;
        }
        pthread_rwlock_unlock(&n->lock);
    }
    pthread_rwlock_unlock(&fs->ns_lock);
    return rc;
}

static int memfs_setxattr(void *self, const struct fs9_ctx *ctx,
                          const char *path, const char *name,
                          const void *value, size_t size, uint32_t flags)
{
    struct memfs *fs = self;
    struct memfs_node *n;
    struct memfs_xattr *nx = NULL;
    char *copy = NULL;
    int rc;
    (void)ctx;

    if (flags & ~(uint32_t)(FS9_XATTR_CREATE | FS9_XATTR_REPLACE))
        return -EINVAL;
    if ((rc = xattr_check_name(name)) < 0)
        return rc;
    if (size > MEMFS_XATTR_SIZE_MAX)
        return -E2BIG;
    if (size && !value)
        return -EFAULT;
    if (size && !(copy = malloc(size)))
        return -ENOMEM;
    if (size)
        memcpy(copy, value, size);

    pthread_rwlock_rdlock(&fs->ns_lock);
    rc = memfs_resolve_node(fs, path, &n);
    if (rc < 0)
        goto out;
    pthread_rwlock_wrlock(&n->lock);
    struct memfs_xattr **pp = xattr_find(n, name);
    if (*pp && (flags & FS9_XATTR_CREATE)) {
        rc = -EEXIST;
    } else if (!*pp && (flags & FS9_XATTR_REPLACE)) {
        rc = -ENODATA;
    } else if (*pp) {
        free((*pp)->value);
        (*pp)->value = copy;
        (*pp)->size = size;
        copy = NULL;
    } else {
        size_t total = 0, nlen = strlen(name);
        for (struct memfs_xattr *x = n->xattrs; x; x = x->next)
            total += strlen(x->name) + 1;
        if (total + nlen + 1 > MEMFS_XATTR_LIST_MAX) {
            rc = -ENOSPC; /* listxattr could not return the names */
        } else if (!(nx = malloc(sizeof *nx + nlen + 1))) {
            rc = -ENOMEM;
        } else {
            memcpy(nx->name, name, nlen + 1);
            nx->value = copy;
            nx->size = size;
            nx->next = NULL;
            *pp = nx; /* at the end: listxattr keeps creation order */
            copy = NULL;
        }
    }
    if (rc == 0)
        n->ctime = memfs_now(fs);
    pthread_rwlock_unlock(&n->lock);
out:
    pthread_rwlock_unlock(&fs->ns_lock);
    free(copy);
    return rc;
}

static ssize_t memfs_listxattr(void *self, const char *path, char *buf,
                               size_t size)
{
    struct memfs *fs = self;
    struct memfs_node *n;
    ssize_t rc;

    pthread_rwlock_rdlock(&fs->ns_lock);
    rc = memfs_resolve_node(fs, path, &n);
    if (rc == 0) {
        size_t total = 0;
        pthread_rwlock_rdlock(&n->lock);
        for (struct memfs_xattr *x = n->xattrs; x; x = x->next)
            total += strlen(x->name) + 1;
        if (size == 0) {
            rc = (ssize_t)total;
        } else if (total > size) {
            rc = -ERANGE;
        } else {
            char *p = buf;
            for (struct memfs_xattr *x = n->xattrs; x; x = x->next) {
                size_t l = strlen(x->name) + 1;
                memcpy(p, x->name, l);
                p += l;
            }
            rc = (ssize_t)total;
        }
        pthread_rwlock_unlock(&n->lock);
    }
    pthread_rwlock_unlock(&fs->ns_lock);
    return rc;
}

static int memfs_removexattr(void *self, const struct fs9_ctx *ctx,
                             const char *path, const char *name)
{
    struct memfs *fs = self;
    struct memfs_node *n;
    int rc;
    (void)ctx;

    if ((rc = xattr_check_name(name)) < 0)
        return rc;
    pthread_rwlock_rdlock(&fs->ns_lock);
    rc = memfs_resolve_node(fs, path, &n);
    if (rc == 0) {
        pthread_rwlock_wrlock(&n->lock);
        struct memfs_xattr **pp = xattr_find(n, name);
        if (!*pp) {
            rc = -ENODATA;
        } else {
            xattr_remove(pp);
            n->ctime = memfs_now(fs);
        }
        pthread_rwlock_unlock(&n->lock);
    }
    pthread_rwlock_unlock(&fs->ns_lock);
    return rc;
}

const struct fs9_provider_ops fs9_memfs_ops = {
    .abi_version = FS9_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct fs9_provider_ops),
    .name = "memfs",
    .version = "1.0.0",
    .description = "POSIX-complete in-memory filesystem (the default "
                   "namespace)",
    .create = memfs_create,
    .destroy = memfs_destroy,
    .capabilities = memfs_capabilities,
    .stat = memfs_stat,
    .wstat = memfs_wstat,
    .statfs = memfs_statfs,
    .open = memfs_open,
    .read = memfs_read,
    .write = memfs_write,
    .close = memfs_close,
    .readdir = memfs_readdir,
    .remove = memfs_remove,
    .rename = memfs_rename,
    .link = memfs_link,
    .symlink = memfs_symlink,
    .readlink = memfs_readlink,
    .getxattr = memfs_getxattr,
    .setxattr = memfs_setxattr,
    .listxattr = memfs_listxattr,
    .removexattr = memfs_removexattr,
    .fsync = memfs_fsync,
    .fallocate = memfs_fallocate,
    .poll = NULL,
    .mknod = memfs_mknod,
};
