/*
 * kvfs — a key-value store seen as files.
 *
 * Every object is one entry of an in-memory ordered map keyed by its path
 * ("", "etc", "etc/hosts", ...): a directory is a key whose descendants
 * share its prefix, a file is a key whose value is its content.  The map
 * is a skip list ordered by the bytes of the key (strcmp).  In that order a
 * directory's children are its keys "dir/name" without a further slash;
 * their own descendants sit between them and are skipped with one seek
 * each ("dir/name/..." lies below "dir/name0", '0' being '/' + 1), so a
 * listing costs O(children × log n) and comes out in name order.
 *
 * Semantics: files, directories and symbolic links, with POSIX rules for
 * create, read, write, truncate, remove (ENOTEMPTY), rename (ENOTDIR,
 * EISDIR, ENOTEMPTY, EINVAL into its own subtree, NOREPLACE, EXCHANGE),
 * times and ownership (new keys belong to the caller; a set-group-ID
 * directory passes its group on).  No hard links, xattrs or special files:
 * those entries are NULL (FS9 answers EPERM / EOPNOTSUPP), mknod of a
 * FIFO or device is EPERM.  Renaming a directory re-keys its whole
 * subtree: O(k log n) for k keys below it, done all or nothing.
 *
 * Values are contiguous buffers: truncating a file up stores the zeros.
 * Space is counted in bytes of values against size= (default half of
 * RAM) and keys against max_keys= (default unlimited); a write that does
 * not fit writes what fits, and the next one fails with ENOSPC.
 *
 * Readdir cookies.  Listing in key order means a cookie cannot be a
 * position in the map (keys come and go).  Instead each open directory
 * handle remembers the names it has handed out: cookie k resumes after
 * the k-th name, by a seek to the first key above it.  So a name present
 * for the whole listing is returned exactly once, whatever is created or
 * removed meanwhile, and telldir/seekdir work until rewinddir (cookie 0),
 * which forgets the names.  Memory: the names listed, per open directory.
 *
 * Locking.  kv->lock (rwlock) guards the map: the keys, the skip list
 * links, a node's `linked` flag and a directory's child counts.  Lookups
 * take it for reading, changes to names for writing.  node->lock (mutex)
 * guards a node's attributes, value and open count; I/O on a handle takes
 * only that.  Order: kv->lock, then one node->lock at a time.
 *
 * Lifetime.  A node lives while it is in the map (`linked`) or open
 * (`opens` > 0); whoever clears the last of the two, under node->lock,
 * frees it.  A node out of the map cannot be found by path again.
 *
 * Everything is memory and short critical sections: FS9_CAP_NONBLOCKING.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fs9/provider.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KV_VERSION "1.0.0"
#define KV_MAX_LEVEL 24
#define KV_NAME_MAX 255
#define KV_PATH_MAX 4095
#define KV_SYMLINK_MAX 4095
#define KV_MAX_FILE ((uint64_t)1 << 40)
#define KV_BATCH 64
#define KV_RELATIME_SECS (24 * 60 * 60)

/* ------------------------------------------------------------------------
 * Structures
 * ---------------------------------------------------------------------- */

/** One key and the object it names. */
struct kv_node {
    char *key;      /* owned; guarded by kv->lock; "" is the root */
    bool linked;    /* in the map; kv->lock (write) + lock to change */
    uint32_t nchild;  /* directories: children; change under both locks */
    uint32_t nsubdir; /* directories: children that are directories */
    uint64_t ino;     /* immutable */
    uint32_t kind;    /* S_IFREG, S_IFDIR or S_IFLNK; immutable */

    pthread_mutex_t lock; /* guards what follows */
    uint32_t mode, uid, gid;
    struct timespec atime, mtime, ctime;
    char *data;         /* owned: file content or symlink target */
    uint64_t size, cap; /* bytes used, bytes allocated */
    uint32_t opens;

    int level;               /* skip list height of this node */
    struct kv_node *next[];  /* forward links, `level` of them */
};

struct kvfs {
    const struct fs9_host *host; /* borrowed from create() to destroy() */
    pthread_rwlock_t lock;       /* the map; see the header comment */
    struct kv_node *head;        /* skip list sentinel, KV_MAX_LEVEL high */
    int level;                   /* highest level in use */
    uint64_t rng;                /* level generator; under lock (write) */
    uint64_t next_ino;           /* under lock (write) */
    uint64_t nkeys;              /* under lock */
    uint64_t max_keys;           /* 0: unlimited */
    uint64_t max_bytes;
    pthread_mutex_t space_lock;  /* guards used_bytes */
    uint64_t used_bytes;
};

/** A name handed out by a readdir, for resuming by cookie. */
struct kv_listed {
    char **names; /* owned; names[k-1] went out with cookie k */
    size_t n, cap;
};

struct kv_handle {
    struct kv_node *node; /* holds one of node->opens */
    uint32_t flags;       /* FS9_OPEN_* */
    pthread_mutex_t list_lock;
    struct kv_listed listed; /* directories only */
};

/* ------------------------------------------------------------------------
 * Small helpers
 * ---------------------------------------------------------------------- */

static struct timespec kv_now(const struct kvfs *kv)
{
    return kv->host->now(kv->host->ctx, CLOCK_REALTIME);
}

static int ts_cmp(struct timespec a, struct timespec b)
{
    if (a.tv_sec != b.tv_sec)
        return a.tv_sec < b.tv_sec ? -1 : 1;
    return a.tv_nsec < b.tv_nsec ? -1 : a.tv_nsec > b.tv_nsec;
}

/* The byte length of the parent part of `key` ("a/b/c" -> 3, "a" -> 0). */
static size_t parent_len(const char *key)
{
    const char *slash = strrchr(key, '/');
    return slash ? (size_t)(slash - key) : 0;
}

/* Is `key` strictly below directory key `dir`? */
static bool is_below(const char *key, const char *dir)
{
    size_t n = strlen(dir);
    if (n == 0)
        return *key != '\0';
    return strncmp(key, dir, n) == 0 && key[n] == '/';
}

/* A path the ABI may hand us: components 1..255 bytes, never "." or "..",
 * at most KV_PATH_MAX bytes. */
static int check_path(const char *path)
{
    size_t total = strlen(path);
    if (total > KV_PATH_MAX)
        return -ENAMETOOLONG;
    if (total == 0)
        return 0;
    for (const char *p = path;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0 || (p[0] == '.' && (len == 1 || (len == 2 &&
                                                      p[1] == '.'))))
            return -EINVAL;
        if (len > KV_NAME_MAX)
            return -ENAMETOOLONG;
        if (!slash)
            return 0;
        p = slash + 1;
    }
}

/* "a/b" + "/" + "c"; NULL when out of memory. */
static char *join(const char *dir, size_t dirlen, const char *rest)
{
    size_t rl = strlen(rest);
    char *s = malloc(dirlen + 1 + rl + 1);
    if (!s)
        return NULL;
    memcpy(s, dir, dirlen);
    size_t at = dirlen;
    if (dirlen && rl)
        s[at++] = '/';
    memcpy(s + at, rest, rl + 1);
    return s;
}

static bool space_take(struct kvfs *kv, uint64_t n)
{
    bool ok;
    pthread_mutex_lock(&kv->space_lock);
    ok = kv->used_bytes + n >= kv->used_bytes &&
         kv->used_bytes + n <= kv->max_bytes;
    if (ok)
        kv->used_bytes += n;
    pthread_mutex_unlock(&kv->space_lock);
    return ok;
}

static void space_give(struct kvfs *kv, uint64_t n)
{
    pthread_mutex_lock(&kv->space_lock);
    kv->used_bytes -= n;
    pthread_mutex_unlock(&kv->space_lock);
}

/* ------------------------------------------------------------------------
 * The ordered map: a skip list (Pugh), guarded by kv->lock.
 * ---------------------------------------------------------------------- */

static int random_level(struct kvfs *kv)
{
    /* xorshift64; each level with probability 1/4. */
    uint64_t x = kv->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    kv->rng = x;
    int level = 1;
    while (level < KV_MAX_LEVEL && (x & 3) == 0) {
        level++;
        x >>= 2;
    }
    return level;
}

/* The last node before `key` on every level into `update`; returns the
 * first node at or after `key` (NULL at the end). */
static struct kv_node *sl_seek(const struct kvfs *kv, const char *key,
                               struct kv_node **update)
{
    struct kv_node *x = kv->head;
    for (int i = kv->level - 1; i >= 0; i--) {
        while (x->next[i] && strcmp(x->next[i]->key, key) < 0)
            x = x->next[i];
        if (update)
            update[i] = x;
    }
    return x->next[0];
}

/* The first node whose key is >= `key`. */
static struct kv_node *sl_lower_bound(const struct kvfs *kv, const char *key)
{
    return sl_seek(kv, key, NULL);
}

static struct kv_node *sl_find(const struct kvfs *kv, const char *key)
{
    struct kv_node *n = sl_lower_bound(kv, key);
    return n && strcmp(n->key, key) == 0 ? n : NULL;
}

/* Link `n` (key set, absent from the list). */
static void sl_insert(struct kvfs *kv, struct kv_node *n)
{
    struct kv_node *update[KV_MAX_LEVEL];
    sl_seek(kv, n->key, update);
    for (int i = kv->level; i < n->level; i++)
        update[i] = kv->head;
    if (n->level > kv->level)
        kv->level = n->level;
    for (int i = 0; i < n->level; i++) {
        n->next[i] = update[i]->next[i];
        update[i]->next[i] = n;
    }
}

/* Unlink `n` (present, under its current key). */
static void sl_remove(struct kvfs *kv, struct kv_node *n)
{
    struct kv_node *update[KV_MAX_LEVEL];
    sl_seek(kv, n->key, update);
    for (int i = 0; i < n->level; i++)
        if (update[i]->next[i] == n)
            update[i]->next[i] = n->next[i];
    while (kv->level > 1 && !kv->head->next[kv->level - 1])
        kv->level--;
}

/* ------------------------------------------------------------------------
 * Nodes
 * ---------------------------------------------------------------------- */

/* A new node for `key` (taken over), not yet in the map; lock held for
 * writing (ino and level come from kv). */
static struct kv_node *node_new(struct kvfs *kv, char *key, uint32_t kind,
                                uint32_t perm, uint32_t uid, uint32_t gid,
                                struct timespec t)
{
    int level = random_level(kv);
    struct kv_node *n = calloc(1, sizeof *n + (size_t)level * sizeof n->next[0]);
    if (!n)
        return NULL;
    n->key = key;
    n->level = level;
    n->kind = kind;
    n->ino = kv->next_ino++;
    n->mode = kind | (perm & 07777);
    n->uid = uid;
    n->gid = gid;
    n->atime = n->mtime = n->ctime = t;
    pthread_mutex_init(&n->lock, NULL);
    return n;
}

static void node_free(struct kvfs *kv, struct kv_node *n)
{
    if (n->kind == S_IFREG)
        space_give(kv, n->size);
    pthread_mutex_destroy(&n->lock);
    free(n->data);
    free(n->key);
    free(n);
}

/* Attributes of `n`; caller holds n->lock. */
static void node_attr(const struct kv_node *n, struct fs9_attr *out)
{
    memset(out, 0, sizeof *out);
    out->ino = n->ino;
    out->mode = n->mode;
    out->uid = n->uid;
    out->gid = n->gid;
    out->atime = n->atime;
    out->mtime = n->mtime;
    out->ctime = n->ctime;
    out->blksize = 4096;
    if (n->kind == S_IFDIR) {
        out->nlink = n->linked ? 2 + n->nsubdir : 0;
        out->size = 4096;
        out->blocks = 8;
    } else {
        out->nlink = n->linked ? 1 : 0;
        out->size = n->size;
        out->blocks = (n->cap + 511) / 512;
    }
}

static void node_stat(struct kv_node *n, struct fs9_attr *out)
{
    pthread_mutex_lock(&n->lock);
    node_attr(n, out);
    pthread_mutex_unlock(&n->lock);
}

/* Take `n` out of the map for good (kv->lock held for writing): it goes
 * when its last handle closes, or now. */
static void node_unlink(struct kvfs *kv, struct kv_node *n,
                        struct timespec t)
{
    sl_remove(kv, n);
    kv->nkeys--;
    pthread_mutex_lock(&n->lock);
    n->linked = false;
    n->ctime = t;
    bool gone = n->opens == 0;
    pthread_mutex_unlock(&n->lock);
    if (gone)
        node_free(kv, n);
}

/* A name appeared (+1) or went (-1) in directory `d`.  kv->lock held
 * for writing; the counts change under d->lock too, so a stat through a
 * handle (d->lock only) reads them whole. */
static void dir_count(struct kv_node *d, int delta, bool is_dir,
                      struct timespec t)
{
    pthread_mutex_lock(&d->lock);
    d->nchild += (uint32_t)delta;
    if (is_dir)
        d->nsubdir += (uint32_t)delta;
    d->mtime = d->ctime = t;
    pthread_mutex_unlock(&d->lock);
}

/* The errno for a path that is not in the map: ENOTDIR when some
 * ancestor is not a directory, ENOENT otherwise.  lock held. */
static int missing(const struct kvfs *kv, const char *path)
{
    char buf[KV_PATH_MAX + 1];
    size_t len = strlen(path);
    memcpy(buf, path, len + 1);
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != '/')
            continue;
        buf[i] = '\0';
        const struct kv_node *a = sl_find(kv, buf);
        buf[i] = '/';
        if (!a)
            return -ENOENT;
        if (a->kind != S_IFDIR)
            return -ENOTDIR;
    }
    return -ENOENT;
}

/* The node at `path`, or a negative errno.  lock held. */
static int find_node(const struct kvfs *kv, const char *path,
                     struct kv_node **out)
{
    int rc = check_path(path);
    if (rc < 0)
        return rc;
    struct kv_node *n = sl_find(kv, path);
    if (!n)
        return missing(kv, path);
    *out = n;
    return 0;
}

/* The directory that would hold `path`, or a negative errno.  lock held. */
static int find_parent(const struct kvfs *kv, const char *path,
                       struct kv_node **out)
{
    char buf[KV_PATH_MAX + 1];
    size_t pl = parent_len(path);
    memcpy(buf, path, pl);
    buf[pl] = '\0';
    struct kv_node *p = sl_find(kv, buf);
    if (!p)
        return missing(kv, buf);
    if (p->kind != S_IFDIR)
        return -ENOTDIR;
    *out = p;
    return 0;
}

/* Create `path` as `kind` (lock held for writing, the path absent). */
static int create_node(struct kvfs *kv, const struct fs9_ctx *ctx,
                       const char *path, uint32_t kind, uint32_t perm,
                       const char *target, struct kv_node **out)
{
    if (*path == '\0')
        return -EEXIST;
    struct kv_node *parent;
    int rc = find_parent(kv, path, &parent);
    if (rc < 0)
        return rc;
    if (kv->max_keys && kv->nkeys >= kv->max_keys)
        return -ENOSPC;
    uint32_t gid = ctx->gid;
    pthread_mutex_lock(&parent->lock);
    if (parent->mode & S_ISGID) {
        gid = parent->gid;
        if (kind == S_IFDIR)
            perm |= S_ISGID;
    }
    pthread_mutex_unlock(&parent->lock);

    char *key = strdup(path);
    char *data = target ? strdup(target) : NULL;
    struct kv_node *n = NULL;
    if (key && (!target || data))
        n = node_new(kv, key, kind, perm, ctx->uid, gid, kv_now(kv));
    if (!n) {
        free(key);
        free(data);
        return -ENOMEM;
    }
    if (target) {
        n->data = data;
        n->size = n->cap = strlen(target);
    }
    n->linked = true;
    sl_insert(kv, n);
    kv->nkeys++;
    dir_count(parent, 1, kind == S_IFDIR, n->ctime);
    *out = n;
    return 0;
}

/* ------------------------------------------------------------------------
 * Configuration
 * ---------------------------------------------------------------------- */

/* Decimal with an optional k/m/g/t suffix (powers of 1024). */
static bool parse_size(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    unsigned shift = 0;
    switch (*p) {
    case 'k': case 'K': shift = 10; p++; break;
    case 'm': case 'M': shift = 20; p++; break;
    case 'g': case 'G': shift = 30; p++; break;
    case 't': case 'T': shift = 40; p++; break;
    default: break;
    }
    if (*p || (shift && v > (UINT64_MAX >> shift)))
        return false;
    *out = v << shift;
    return true;
}

static const char *config_last(const struct fs9_config *cfg, const char *key)
{
    const char *v = NULL;
    for (size_t i = 0; i < cfg->count; i++)
        if (strcmp(cfg->items[i].key, key) == 0)
            v = cfg->items[i].value;
    return v;
}

static int kv_create(const struct fs9_host *host,
                     const struct fs9_config *cfg, void **self, char *err,
                     size_t errlen)
{
    static const char *const known[] = {"size", "max_keys", NULL};
    const char *unknown = fs9_config_unknown_key(cfg, known);
    if (unknown) {
        snprintf(err, errlen, "unknown key '%s' (kvfs knows size, "
                 "max_keys)", unknown);
        return -EINVAL;
    }
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    uint64_t max_bytes = pages > 0 && psize > 0
                             ? (uint64_t)pages * (uint64_t)psize / 2
                             : UINT64_C(1) << 30;
    uint64_t max_keys = 0;
    const char *v;
    if ((v = config_last(cfg, "size")) &&
        (!parse_size(v, &max_bytes) || max_bytes == 0)) {
        snprintf(err, errlen, "size=%s: expected bytes with an optional "
                 "k, m, g or t suffix", v);
        return -EINVAL;
    }
    if ((v = config_last(cfg, "max_keys")) && !parse_size(v, &max_keys)) {
        snprintf(err, errlen, "max_keys=%s: expected a number", v);
        return -EINVAL;
    }

    struct kvfs *kv = calloc(1, sizeof *kv);
    if (!kv)
        return -ENOMEM;
    kv->host = host;
    kv->max_bytes = max_bytes;
    kv->max_keys = max_keys;
    kv->level = 1;
    kv->rng = 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)kv;
    kv->next_ino = 1;
    pthread_rwlock_init(&kv->lock, NULL);
    pthread_mutex_init(&kv->space_lock, NULL);
    kv->head = calloc(1, sizeof *kv->head +
                             KV_MAX_LEVEL * sizeof kv->head->next[0]);
    char *rootkey = strdup("");
    struct kv_node *root = NULL;
    if (kv->head && rootkey)
        root = node_new(kv, rootkey, S_IFDIR, 0755, (uint32_t)getuid(),
                        (uint32_t)getgid(), kv_now(kv));
    if (!root) {
        free(rootkey);
        free(kv->head);
        pthread_rwlock_destroy(&kv->lock);
        pthread_mutex_destroy(&kv->space_lock);
        free(kv);
        return -ENOMEM;
    }
    kv->head->level = KV_MAX_LEVEL;
    root->linked = true;
    sl_insert(kv, root);
    *self = kv;
    return 0;
}

static void kv_destroy(void *self)
{
    struct kvfs *kv = self;
    struct kv_node *n = kv->head->next[0];
    while (n) {
        struct kv_node *next = n->next[0];
        node_free(kv, n); /* no handle is open any more */
        n = next;
    }
    free(kv->head);
    pthread_rwlock_destroy(&kv->lock);
    pthread_mutex_destroy(&kv->space_lock);
    free(kv);
}

static uint64_t kv_capabilities(void *self)
{
    (void)self;
    return FS9_CAP_READ | FS9_CAP_WRITE | FS9_CAP_CREATE | FS9_CAP_DELETE |
           FS9_CAP_RENAME | FS9_CAP_TRUNCATE | FS9_CAP_CHMOD |
           FS9_CAP_CHOWN | FS9_CAP_UTIME | FS9_CAP_SYMLINK |
           FS9_CAP_APPEND | FS9_CAP_RANDOM_WRITE | FS9_CAP_DIRECTORY |
           FS9_CAP_ATOMIC_RENAME | FS9_CAP_NONBLOCKING;
}

/* ------------------------------------------------------------------------
 * stat, wstat, statfs
 * ---------------------------------------------------------------------- */

static int kv_stat(void *self, const struct fs9_ctx *ctx, const char *path,
                   void *handle, struct fs9_attr *out)
{
    struct kvfs *kv = self;
    (void)ctx;
    if (handle) {
        node_stat(((struct kv_handle *)handle)->node, out);
        return 0;
    }
    struct kv_node *n;
    pthread_rwlock_rdlock(&kv->lock);
    int rc = find_node(kv, path, &n);
    if (rc == 0)
        node_stat(n, out);
    pthread_rwlock_unlock(&kv->lock);
    return rc;
}

/* Resize a file's value to `size`, new bytes zero.  n->lock held.
 * Shrinking never fails. */
static int value_resize(struct kvfs *kv, struct kv_node *n, uint64_t size)
{
    if (size <= n->size) {
        space_give(kv, n->size - size);
        n->size = size;
        if (size == 0) {
            free(n->data);
            n->data = NULL;
            n->cap = 0;
        } else if (size <= n->cap / 4) { /* give most of the memory back */
            char *d = realloc(n->data, (size_t)size);
            if (d) {
                n->data = d;
                n->cap = size;
            }
        }
        return 0;
    }
    if (!space_take(kv, size - n->size))
        return -ENOSPC;
    if (size > n->cap) {
        uint64_t cap = n->cap ? n->cap : 64;
        while (cap < size)
            cap *= 2;
        char *d = realloc(n->data, (size_t)cap);
        if (!d) {
            space_give(kv, size - n->size);
            return -ENOMEM;
        }
        n->data = d;
        n->cap = cap;
    }
    memset(n->data + n->size, 0, (size_t)(size - n->size));
    n->size = size;
    return 0;
}

static uint64_t space_left(struct kvfs *kv)
{
    pthread_mutex_lock(&kv->space_lock);
    uint64_t left = kv->max_bytes - kv->used_bytes;
    pthread_mutex_unlock(&kv->space_lock);
    return left;
}

static int kv_wstat(void *self, const struct fs9_ctx *ctx, const char *path,
                    void *handle, const struct fs9_wstat *w,
                    struct fs9_attr *out)
{
    struct kvfs *kv = self;
    (void)ctx;
    const uint32_t known = FS9_WSTAT_MODE | FS9_WSTAT_UID | FS9_WSTAT_GID |
                           FS9_WSTAT_SIZE | FS9_WSTAT_ATIME |
                           FS9_WSTAT_MTIME | FS9_WSTAT_ATIME_NOW |
                           FS9_WSTAT_MTIME_NOW | FS9_WSTAT_CTIME;
    if (w->valid & ~known)
        return -EINVAL;
    struct kv_node *n;
    bool locked = false;
    int rc = 0;
    if (handle) {
        n = ((struct kv_handle *)handle)->node;
    } else {
        pthread_rwlock_rdlock(&kv->lock);
        locked = true;
        rc = find_node(kv, path, &n);
        if (rc < 0)
            goto out;
    }
    uint32_t v = w->valid;
    struct timespec atime = w->atime, mtime = w->mtime;
    if ((v & FS9_WSTAT_ATIME) && atime.tv_nsec == UTIME_NOW)
        v = (v & ~(uint32_t)FS9_WSTAT_ATIME) | FS9_WSTAT_ATIME_NOW;
    if ((v & FS9_WSTAT_ATIME) && atime.tv_nsec == UTIME_OMIT)
        v &= ~(uint32_t)FS9_WSTAT_ATIME;
    if ((v & FS9_WSTAT_MTIME) && mtime.tv_nsec == UTIME_NOW)
        v = (v & ~(uint32_t)FS9_WSTAT_MTIME) | FS9_WSTAT_MTIME_NOW;
    if ((v & FS9_WSTAT_MTIME) && mtime.tv_nsec == UTIME_OMIT)
        v &= ~(uint32_t)FS9_WSTAT_MTIME;
    if (((v & FS9_WSTAT_ATIME) &&
         (atime.tv_nsec < 0 || atime.tv_nsec >= 1000000000L)) ||
        ((v & FS9_WSTAT_MTIME) &&
         (mtime.tv_nsec < 0 || mtime.tv_nsec >= 1000000000L))) {
        rc = -EINVAL;
        goto out;
    }

    struct timespec t = kv_now(kv);
    pthread_mutex_lock(&n->lock);
    /* The size is the only change that can fail: do it first. */
    if (v & FS9_WSTAT_SIZE) {
        if (n->kind == S_IFDIR)
            rc = -EISDIR;
        else if (n->kind != S_IFREG)
            rc = -EINVAL;
        else if (w->size > KV_MAX_FILE)
            rc = -EFBIG;
        else
            rc = value_resize(kv, n, w->size);
        if (rc == 0)
            n->mtime = t;
    }
    if (rc == 0) {
        if (v & FS9_WSTAT_MODE)
            n->mode = n->kind | (w->mode & 07777);
        if (v & FS9_WSTAT_UID)
            n->uid = w->uid;
        if (v & FS9_WSTAT_GID)
            n->gid = w->gid;
        if (v & FS9_WSTAT_ATIME_NOW)
            n->atime = t;
        else if (v & FS9_WSTAT_ATIME)
            n->atime = atime;
        if (v & FS9_WSTAT_MTIME_NOW)
            n->mtime = t;
        else if (v & FS9_WSTAT_MTIME)
            n->mtime = mtime;
        if (v)
            n->ctime = (v & FS9_WSTAT_CTIME) ? w->ctime : t;
        node_attr(n, out);
    }
    pthread_mutex_unlock(&n->lock);
out:
    if (locked)
        pthread_rwlock_unlock(&kv->lock);
    return rc;
}

static int kv_statfs(void *self, const char *path, struct fs9_statfs *out)
{
    struct kvfs *kv = self;
    struct kv_node *n;
    pthread_rwlock_rdlock(&kv->lock);
    int rc = find_node(kv, path, &n);
    uint64_t keys = kv->nkeys + 1;
    pthread_rwlock_unlock(&kv->lock);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&kv->space_lock);
    uint64_t used = kv->used_bytes;
    pthread_mutex_unlock(&kv->space_lock);
    memset(out, 0, sizeof *out);
    out->bsize = 4096;
    out->blocks = kv->max_bytes / 4096;
    uint64_t used_blocks = (used + 4095) / 4096;
    out->bfree = out->blocks > used_blocks ? out->blocks - used_blocks : 0;
    out->bavail = out->bfree;
    if (kv->max_keys) {
        out->files = kv->max_keys + 1;
        out->ffree = out->files > keys ? out->files - keys : 0;
    } else {
        out->ffree = UINT64_C(1) << 32;
        out->files = keys + out->ffree;
    }
    out->namemax = KV_NAME_MAX;
    return 0;
}

/* ------------------------------------------------------------------------
 * open, close, read, write
 * ---------------------------------------------------------------------- */

static int kv_open(void *self, const struct fs9_ctx *ctx, const char *path,
                   uint32_t flags, uint32_t mode, struct fs9_open_out *out)
{
    struct kvfs *kv = self;
    bool create = flags & FS9_OPEN_CREATE;
    struct kv_handle *h = NULL;
    int rc = check_path(path);
    if (rc < 0)
        return rc;
    if (!(flags & FS9_OPEN_NOHANDLE)) {
        h = calloc(1, sizeof *h);
        if (!h)
            return -ENOMEM;
        pthread_mutex_init(&h->list_lock, NULL);
    }
    if (create)
        pthread_rwlock_wrlock(&kv->lock);
    else
        pthread_rwlock_rdlock(&kv->lock);

    bool created = false;
    struct kv_node *n = sl_find(kv, path);
    if (!n) {
        if (!create) {
            rc = missing(kv, path);
            goto out;
        }
        uint32_t type = mode & S_IFMT;
        uint32_t kind;
        if (flags & FS9_OPEN_DIRECTORY) {
            kind = S_IFDIR;
            if (type && type != S_IFDIR)
                rc = -EINVAL;
            else if (flags & (FS9_OPEN_WRITE | FS9_OPEN_TRUNC))
                rc = -EISDIR;
        } else {
            kind = S_IFREG;
            if (type && type != S_IFREG)
                rc = -EPERM; /* no FIFOs, sockets or devices here */
        }
        if (rc == 0)
            rc = create_node(kv, ctx, path, kind, mode & 07777, NULL, &n);
        if (rc < 0)
            goto out;
        created = true;
    } else if (create && (flags & FS9_OPEN_EXCL)) {
        rc = -EEXIST;
    } else if (create && n->kind == S_IFDIR &&
               !(flags & FS9_OPEN_DIRECTORY)) {
        rc = -EISDIR;
    } else if ((flags & FS9_OPEN_DIRECTORY) && n->kind != S_IFDIR) {
        rc = -ENOTDIR;
    } else if (n->kind == S_IFLNK) {
        rc = -ELOOP;
    } else if (n->kind == S_IFDIR &&
               (flags & (FS9_OPEN_WRITE | FS9_OPEN_TRUNC))) {
        rc = -EISDIR;
    }
    if (rc < 0)
        goto out;

    pthread_mutex_lock(&n->lock);
    if (!created && (flags & FS9_OPEN_TRUNC) && n->kind == S_IFREG) {
        value_resize(kv, n, 0); /* shrinking cannot fail */
        n->mtime = n->ctime = kv_now(kv);
    }
    if (h) {
        h->node = n;
        h->flags = flags;
        n->opens++;
    }
    node_attr(n, &out->attr);
    pthread_mutex_unlock(&n->lock);
    out->handle = h;
    out->flags = 0;
    out->created = created;
    h = NULL;
out:
    pthread_rwlock_unlock(&kv->lock);
    if (h) {
        pthread_mutex_destroy(&h->list_lock);
        free(h);
    }
    return rc;
}

static void listed_clear(struct kv_listed *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    l->n = 0;
}

static int kv_close(void *self, void *handle, int sync)
{
    struct kvfs *kv = self;
    struct kv_handle *h = handle;
    (void)sync;
    struct kv_node *n = h->node;
    listed_clear(&h->listed);
    free(h->listed.names);
    pthread_mutex_destroy(&h->list_lock);
    free(h);
    pthread_mutex_lock(&n->lock);
    n->opens--;
    bool gone = n->opens == 0 && !n->linked;
    pthread_mutex_unlock(&n->lock);
    if (gone)
        node_free(kv, n);
    return 0;
}

static ssize_t kv_read(void *self, void *handle, void *buf, size_t size,
                       uint64_t offset)
{
    struct kvfs *kv = self;
    struct kv_handle *h = handle;
    struct kv_node *n = h->node;
    if (n->kind == S_IFDIR)
        return -EISDIR;
    if (!(h->flags & FS9_OPEN_READ) && (h->flags & FS9_OPEN_WRITE))
        return -EBADF;
    size_t got = 0;
    struct timespec t = kv_now(kv);
    pthread_mutex_lock(&n->lock);
    if (offset < n->size) {
        uint64_t avail = n->size - offset;
        got = avail < size ? (size_t)avail : size;
        memcpy(buf, n->data + offset, got);
    }
    /* relatime, as Linux mounts by default. */
    if (!(h->flags & FS9_OPEN_NOATIME) &&
        (ts_cmp(n->atime, n->mtime) <= 0 || ts_cmp(n->atime, n->ctime) <= 0 ||
         t.tv_sec - n->atime.tv_sec >= KV_RELATIME_SECS))
        n->atime = t;
    pthread_mutex_unlock(&n->lock);
    return (ssize_t)got;
}

static ssize_t kv_write(void *self, void *handle, const void *buf,
                        size_t size, uint64_t offset)
{
    struct kvfs *kv = self;
    struct kv_handle *h = handle;
    struct kv_node *n = h->node;
    if (n->kind == S_IFDIR)
        return -EISDIR;
    if (!(h->flags & FS9_OPEN_WRITE))
        return -EBADF;
    ssize_t rc;
    pthread_mutex_lock(&n->lock);
    if (h->flags & FS9_OPEN_APPEND)
        offset = n->size;
    if (size == 0) {
        rc = 0;
        goto out;
    }
    if (offset >= KV_MAX_FILE) {
        rc = -EFBIG;
        goto out;
    }
    if (size > KV_MAX_FILE - offset)
        size = (size_t)(KV_MAX_FILE - offset);
    if (offset + size > n->size) {
        rc = value_resize(kv, n, offset + size);
        if (rc == -ENOSPC) {
            /* Write what fits; the next write reports ENOSPC. */
            uint64_t end = n->size + space_left(kv);
            if (end > offset && value_resize(kv, n, end) == 0) {
                size = (size_t)(end - offset);
                rc = 0;
            }
        }
        if (rc < 0)
            goto out;
    }
    memcpy(n->data + offset, buf, size);
    n->mtime = n->ctime = kv_now(kv);
    rc = (ssize_t)size;
out:
    pthread_mutex_unlock(&n->lock);
    return rc;
}

/* ------------------------------------------------------------------------
 * readdir
 * ---------------------------------------------------------------------- */

struct kv_batch_entry {
    struct fs9_attr attr;
    char name[KV_NAME_MAX + 1];
};

/* Up to `max` children of `d` after the child named `after` (NULL: from
 * the first) into `out`.  lock held.  Returns how many. */
static size_t collect_children(const struct kvfs *kv, const struct kv_node *d,
                               const char *after, struct kv_batch_entry *out,
                               size_t max)
{
    char seek[KV_PATH_MAX + KV_NAME_MAX + 3];
    size_t plen = strlen(d->key);
    memcpy(seek, d->key, plen);
    if (plen)
        seek[plen++] = '/';
    size_t prefix = plen; /* seek[0..prefix) is "dir/" ("" for the root) */
    /* Start right after the key "dir/after" itself, not after its
     * subtree: a sibling "after-x" ('-' < '/') sorts between "dir/after"
     * and "dir/after/...".  The loop skips that subtree when it gets
     * there. */
    size_t al = after ? strlen(after) : 0;
    memcpy(seek + prefix, after ? after : "", al);
    seek[prefix + al] = '\0';
    struct kv_node *x = sl_lower_bound(kv, seek);
    if (x && after && strcmp(x->key, seek) == 0)
        x = x->next[0];
    size_t n = 0;
    while (x && n < max) {
        if (strncmp(x->key, seek, prefix) != 0)
            break; /* past the directory's range */
        const char *rest = x->key + prefix;
        const char *slash = strchr(rest, '/');
        if (*rest == '\0') { /* the root itself */
            x = x->next[0];
            continue;
        }
        if (slash) {
            /* A descendant of child "rest[..slash)": jump past them all. */
            size_t cl = (size_t)(slash - rest);
            char skip[KV_PATH_MAX + 3];
            memcpy(skip, x->key, prefix + cl);
            skip[prefix + cl] = '/' + 1;
            skip[prefix + cl + 1] = '\0';
            x = sl_lower_bound(kv, skip);
            continue;
        }
        memcpy(out[n].name, rest, strlen(rest) + 1);
        node_stat(x, &out[n].attr);
        n++;
        x = x->next[0];
    }
    return n;
}

static int listed_add(struct kv_listed *l, const char *name)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        char **v = realloc(l->names, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        l->names = v;
        l->cap = cap;
    }
    l->names[l->n] = strdup(name);
    if (!l->names[l->n])
        return -ENOMEM;
    l->n++;
    return 0;
}

static int kv_readdir(void *self, void *handle, uint64_t cookie,
                      uint32_t flags, fs9_dirent_fn emit, void *emit_arg)
{
    struct kvfs *kv = self;
    struct kv_handle *h = handle;
    struct kv_node *d = h->node;
    (void)flags; /* attributes are cheap: always given */
    if (d->kind != S_IFDIR)
        return -ENOTDIR;
    struct kv_batch_entry *batch = malloc(KV_BATCH * sizeof *batch);
    if (!batch)
        return -ENOMEM;
    int rc = 0;
    pthread_mutex_lock(&h->list_lock);
    struct kv_listed *l = &h->listed;
    if (cookie == 0)
        listed_clear(l); /* rewinddir: earlier cookies are void */
    if (cookie > l->n)
        goto done; /* not one of ours: nothing after it */
    /* Resume after the name cookie `cookie` went out with. */
    char after[KV_NAME_MAX + 1];
    bool have_after = cookie > 0;
    if (have_after)
        snprintf(after, sizeof after, "%s", l->names[cookie - 1]);
    for (;;) {
        pthread_rwlock_rdlock(&kv->lock);
        size_t n = d->linked ? collect_children(kv, d, have_after ? after
                                                                  : NULL,
                                                batch, KV_BATCH)
                             : 0;
        pthread_rwlock_unlock(&kv->lock);
        /* Emit without kv->lock: the callback never runs under it. */
        for (size_t i = 0; i < n; i++) {
            /* Cookies continue this handle's numbering. */
            struct fs9_dirent e = {.name = batch[i].name,
                                   .cookie = l->n + 1,
                                   .full_attr = 1,
                                   .attr = batch[i].attr};
            int r = emit(emit_arg, &e);
            if (r != 0) {
                rc = r < 0 ? r : 0;
                goto done;
            }
            rc = listed_add(l, batch[i].name);
            if (rc < 0)
                goto done;
            snprintf(after, sizeof after, "%s", batch[i].name);
            have_after = true;
        }
        if (n < KV_BATCH)
            break;
    }
done:
    pthread_mutex_unlock(&h->list_lock);
    free(batch);
    if (rc == 0) {
        struct timespec t = kv_now(kv);
        pthread_mutex_lock(&d->lock);
        if (ts_cmp(d->atime, d->mtime) <= 0 ||
            t.tv_sec - d->atime.tv_sec >= KV_RELATIME_SECS)
            d->atime = t;
        pthread_mutex_unlock(&d->lock);
    }
    return rc;
}

/* ------------------------------------------------------------------------
 * remove, rename, symlink, readlink
 * ---------------------------------------------------------------------- */

static int kv_remove(void *self, const struct fs9_ctx *ctx, const char *path,
                     uint32_t flags)
{
    struct kvfs *kv = self;
    bool rmdir = flags & FS9_REMOVE_DIR;
    (void)ctx;
    if (flags & ~(uint32_t)FS9_REMOVE_DIR)
        return -EINVAL;
    pthread_rwlock_wrlock(&kv->lock);
    struct kv_node *n, *parent = NULL;
    int rc = find_node(kv, path, &n);
    if (rc == 0 && *path == '\0')
        rc = rmdir ? -EBUSY : -EISDIR;
    else if (rc == 0 && rmdir && n->kind != S_IFDIR)
        rc = -ENOTDIR;
    else if (rc == 0 && !rmdir && n->kind == S_IFDIR)
        rc = -EISDIR;
    else if (rc == 0 && n->kind == S_IFDIR && n->nchild)
        rc = -ENOTEMPTY;
    if (rc == 0)
        rc = find_parent(kv, path, &parent);
    if (rc == 0) {
        struct timespec t = kv_now(kv);
        dir_count(parent, -1, n->kind == S_IFDIR, t);
        node_unlink(kv, n, t);
    }
    pthread_rwlock_unlock(&kv->lock);
    return rc;
}

/* Nodes being moved by a rename and the keys they will have. */
struct kv_move {
    struct kv_node **nodes;
    char **keys; /* owned until applied */
    size_t n, cap;
};

static int move_add(struct kv_move *m, struct kv_node *node, char *key)
{
    if (!key)
        return -ENOMEM;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        struct kv_node **nv = realloc(m->nodes, cap * sizeof *nv);
        if (nv)
            m->nodes = nv;
        char **kv = realloc(m->keys, cap * sizeof *kv);
        if (kv)
            m->keys = kv;
        if (!nv || !kv) {
            free(key);
            return -ENOMEM;
        }
        m->cap = cap;
    }
    m->nodes[m->n] = node;
    m->keys[m->n] = key;
    m->n++;
    return 0;
}

/* Plan the move of `n` and (a directory) everything below it to `to`.
 * lock held. */
static int move_plan(const struct kvfs *kv, struct kv_node *n,
                     const char *to, struct kv_move *m)
{
    size_t fl = strlen(n->key), tl = strlen(to);
    int rc = move_add(m, n, strdup(to));
    if (rc < 0 || n->kind != S_IFDIR)
        return rc;
    char seek[KV_PATH_MAX + 2];
    memcpy(seek, n->key, fl);
    seek[fl] = '/';
    seek[fl + 1] = '\0';
    for (struct kv_node *x = sl_lower_bound(kv, seek);
         x && strncmp(x->key, seek, fl + 1) == 0; x = x->next[0]) {
        const char *rest = x->key + fl; /* "/..." */
        if (tl + strlen(rest) > KV_PATH_MAX)
            return -ENAMETOOLONG;
        rc = move_add(m, x, join(to, tl, rest + 1));
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void move_free(struct kv_move *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->keys[i]);
    free(m->keys);
    free(m->nodes);
}

/* Apply a planned move: every node out of the list, new keys, back in. */
static void move_apply(struct kvfs *kv, struct kv_move *m)
{
    for (size_t i = 0; i < m->n; i++)
        sl_remove(kv, m->nodes[i]);
    for (size_t i = 0; i < m->n; i++) {
        free(m->nodes[i]->key);
        m->nodes[i]->key = m->keys[i];
        m->keys[i] = NULL;
    }
    for (size_t i = 0; i < m->n; i++)
        sl_insert(kv, m->nodes[i]);
}

static void touch_ctime(struct kv_node *n, struct timespec t)
{
    pthread_mutex_lock(&n->lock);
    n->ctime = t;
    pthread_mutex_unlock(&n->lock);
}

static int kv_rename(void *self, const struct fs9_ctx *ctx, const char *from,
                     const char *to, uint32_t flags)
{
    struct kvfs *kv = self;
    bool exchange = flags & FS9_RENAME_EXCHANGE;
    (void)ctx;
    if (flags & ~(uint32_t)(FS9_RENAME_NOREPLACE | FS9_RENAME_EXCHANGE))
        return -EINVAL;
    if ((flags & FS9_RENAME_NOREPLACE) && exchange)
        return -EINVAL;
    int rc = check_path(to);
    if (rc < 0)
        return rc;

    struct kv_move mv = {0};
    pthread_rwlock_wrlock(&kv->lock);
    struct kv_node *src, *dst, *fp, *tp;
    rc = find_node(kv, from, &src);
    if (rc < 0)
        goto out;
    if (*from == '\0' || *to == '\0') {
        rc = -EBUSY; /* the root neither moves nor is replaced */
        goto out;
    }
    if ((rc = find_parent(kv, from, &fp)) < 0 ||
        (rc = find_parent(kv, to, &tp)) < 0)
        goto out;
    dst = sl_find(kv, to);
    if (exchange && !dst) {
        rc = -ENOENT;
        goto out;
    }
    if ((flags & FS9_RENAME_NOREPLACE) && dst) {
        rc = -EEXIST;
        goto out;
    }
    if (src == dst)
        goto out; /* the same name: nothing to do */
    if (src->kind == S_IFDIR && is_below(to, from)) {
        rc = -EINVAL; /* into its own subtree */
        goto out;
    }
    if (dst && dst->kind == S_IFDIR && is_below(from, to)) {
        /* The target is an ancestor of the source: never empty. */
        rc = exchange ? -EINVAL : -ENOTEMPTY;
        goto out;
    }
    if (dst && !exchange) {
        if (src->kind == S_IFDIR && dst->kind != S_IFDIR)
            rc = -ENOTDIR;
        else if (src->kind != S_IFDIR && dst->kind == S_IFDIR)
            rc = -EISDIR;
        else if (dst->kind == S_IFDIR && dst->nchild)
            rc = -ENOTEMPTY;
        if (rc < 0)
            goto out;
    }

    /* Everything that can fail (memory) before the first change. */
    rc = move_plan(kv, src, to, &mv);
    if (rc == 0 && exchange)
        rc = move_plan(kv, dst, from, &mv);
    if (rc < 0)
        goto out;

    struct timespec t = kv_now(kv);
    bool src_dir = src->kind == S_IFDIR;
    if (dst && !exchange) {
        dir_count(tp, -1, dst->kind == S_IFDIR, t);
        node_unlink(kv, dst, t);
    }
    move_apply(kv, &mv);
    dir_count(fp, -1, src_dir, t);
    dir_count(tp, 1, src_dir, t);
    if (exchange) {
        bool dst_dir = dst->kind == S_IFDIR;
        dir_count(tp, -1, dst_dir, t);
        dir_count(fp, 1, dst_dir, t);
        touch_ctime(dst, t);
    }
    touch_ctime(src, t);
out:
    pthread_rwlock_unlock(&kv->lock);
    move_free(&mv);
    return rc;
}

static int kv_symlink(void *self, const struct fs9_ctx *ctx,
                      const char *target, const char *path,
                      struct fs9_attr *out)
{
    struct kvfs *kv = self;
    size_t tl = strlen(target);
    if (tl == 0)
        return -ENOENT;
    if (tl > KV_SYMLINK_MAX)
        return -ENAMETOOLONG;
    int rc = check_path(path);
    if (rc < 0)
        return rc;
    pthread_rwlock_wrlock(&kv->lock);
    struct kv_node *n = sl_find(kv, path);
    if (n || *path == '\0')
        rc = -EEXIST;
    else
        rc = create_node(kv, ctx, path, S_IFLNK, 0777, target, &n);
    if (rc == 0)
        node_stat(n, out);
    pthread_rwlock_unlock(&kv->lock);
    return rc;
}

static ssize_t kv_readlink(void *self, const char *path, char *buf,
                           size_t size)
{
    struct kvfs *kv = self;
    struct kv_node *n;
    pthread_rwlock_rdlock(&kv->lock);
    ssize_t rc = find_node(kv, path, &n);
    if (rc == 0 && n->kind != S_IFLNK)
        rc = -EINVAL;
    if (rc == 0) {
        /* A target never changes: no node lock needed. */
        if (n->size > size)
            rc = -ENAMETOOLONG;
        else {
            memcpy(buf, n->data, (size_t)n->size);
            rc = (ssize_t)n->size;
        }
    }
    pthread_rwlock_unlock(&kv->lock);
    return rc;
}

/* ------------------------------------------------------------------------
 * The table
 * ---------------------------------------------------------------------- */

static const struct fs9_provider_ops kvfs_ops = {
    .abi_version = FS9_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct fs9_provider_ops),
    .name = "kvfs",
    .version = KV_VERSION,
    .description = "an in-memory ordered key-value store seen as files",
    .create = kv_create,
    .destroy = kv_destroy,
    .capabilities = kv_capabilities,
    .stat = kv_stat,
    .wstat = kv_wstat,
    .statfs = kv_statfs,
    .open = kv_open,
    .read = kv_read,
    .write = kv_write,
    .close = kv_close,
    .readdir = kv_readdir,
    .remove = kv_remove,
    .rename = kv_rename,
    .symlink = kv_symlink,
    .readlink = kv_readlink,
    /* No hard links, xattrs, fsync (memory), fallocate, poll or mknod. */
};

__attribute__((visibility("default")))
const struct fs9_provider_ops *fs9_provider_entry(void);

const struct fs9_provider_ops *fs9_provider_entry(void)
{
    return &kvfs_ops;
}
