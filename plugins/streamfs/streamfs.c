/*
 * streamfs — append-only streams with history and fan-out.
 *
 * Every file is a stream.  A write appends, whatever offset it names.  A
 * reader first gets the history the stream retains — the last ring=BYTES
 * bytes (default 1 MiB) — and then waits for more: `cat stream` behaves
 * like `tail -f`.  Every reader has its own cursor, an absolute offset
 * into the stream, so any number of readers each receive every byte, in
 * order.  A reader that falls more than the ring behind (the writers
 * overwrote bytes it had not read yet) skips to the oldest byte still
 * retained: it loses the overwritten bytes, never receives stale ones.
 *
 * (Use cat, not `tail -f`: tail waits for an end of file that a live
 * stream never reaches before printing anything.)
 *
 * Waiting does not hold a thread.  With no data yet, read() answers
 * -EAGAIN; FS9 (FS9_CAP_BLOCKING_READ) parks the request, and every append
 * calls host->notify(path, FS9_NOTIFY_DATA), which wakes it to read again.
 * A reader opened O_NONBLOCK gets EAGAIN instead of waiting.  poll() says
 * a handle is readable when its cursor is behind the end of the stream or
 * the stream was removed.
 *
 * Removing a stream closes it: readers get what is left, then end of file
 * (read returns 0), and they are woken to see it.  Writes through handles
 * still open on a removed stream fail with EPIPE.  A new stream with the
 * same name is a new stream.
 *
 * Namespace: flat.  The root directory holds the streams; mkdir is EPERM,
 * so is rename (a parked reader waits on the name it opened).  Streams are
 * created by open with O_CREAT.  O_TRUNC is ignored so `echo x > stream`
 * appends; truncate(2) is EPERM, as on an append-only file.  Files open
 * with direct I/O and are not seekable, so no reader sees stale page-cache
 * data.  st_size is the number of bytes ever appended.
 *
 * Memory: a stream's ring grows with its data up to ring= bytes.
 *
 * Locking.  fs->lock (rwlock) guards the table of streams (hash by name,
 * array in creation order).  s->lock (mutex) guards one stream's data,
 * cursors of its handles, attributes and counts.  Order: fs->lock, then
 * s->lock.  A stream lives while it is in the table or open; whoever
 * clears the last of the two, under s->lock, frees it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fs9/provider.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SFS_VERSION "1.0.0"
#define SFS_NAME_MAX 255
#define SFS_DEFAULT_RING (UINT64_C(1) << 20)
#define SFS_MAX_RING (UINT64_C(1) << 30)
#define SFS_BATCH 64
/* FUSE cuts a read(2) bigger than 1 MiB (fs9's max_read, 256 pages) into
 * pieces of at least 1 MiB - 4095 bytes and asks for the next piece only
 * when one came back full.  A piece that takes exactly all the data there
 * is would make the kernel ask for the next one, which has to wait for new
 * data although the read(2) already holds a mebibyte.  So a read of that
 * size that would fill up and drain the stream leaves one byte for the
 * next read: the piece comes back short and the read(2) returns at once.
 * Smaller reads (cat asks for 128 KiB) are never such pieces. */
#define SFS_MIN_CHUNK ((1u << 20) - 4095)

struct stream {
    struct stream *hnext; /* hash chain; fs->lock */
    uint64_t id;          /* creation order: the readdir cookie; immutable */
    char *name;           /* owned; immutable */

    pthread_mutex_t lock; /* guards what follows */
    bool linked;          /* in the table; cleared (under both locks) by rm */
    uint32_t opens;
    uint32_t mode, uid, gid;
    struct timespec atime, mtime, ctime;
    char *ring;     /* owned; grows up to cap bytes */
    size_t alloc;   /* bytes allocated in ring */
    size_t cap;     /* ring size: bytes retained */
    uint64_t end;   /* bytes ever appended: the stream's length */
};

struct streamfs {
    const struct fs9_host *host; /* borrowed from create() to destroy() */
    size_t ring;                 /* ring= for new streams */
    uint32_t uid, gid;           /* owner of the root directory */
    struct timespec birth;

    pthread_rwlock_t lock;       /* the table, root_mtime */
    struct stream **buckets;     /* owned; chained by name hash */
    size_t nbuckets;             /* a power of two */
    struct stream **order;       /* owned; by id, ascending */
    size_t count, capacity;
    uint64_t next_id;
    struct timespec root_mtime;
};

struct sfs_handle {
    struct stream *s; /* holds one of s->opens; NULL: the root directory */
    uint32_t flags;   /* FS9_OPEN_* */
    uint64_t cursor;  /* next byte to read (absolute); s->lock */
};

/* ---- helpers ---- */

static struct timespec sfs_now(const struct streamfs *fs)
{
    return fs->host->now(fs->host->ctx, CLOCK_REALTIME);
}

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t oldest(const struct stream *s)
{
    return s->end > s->cap ? s->end - s->cap : 0;
}

/* A stream's inode number: the root is 1. */
static uint64_t stream_ino(const struct stream *s)
{
    return s->id + 1;
}

static void stream_attr(const struct stream *s, struct fs9_attr *out)
{
    memset(out, 0, sizeof *out);
    out->ino = stream_ino(s);
    out->mode = s->mode;
    out->nlink = s->linked ? 1 : 0;
    out->uid = s->uid;
    out->gid = s->gid;
    out->size = s->end;
    out->blocks = (s->alloc + 511) / 512;
    out->atime = s->atime;
    out->mtime = s->mtime;
    out->ctime = s->ctime;
}

static void root_attr(const struct streamfs *fs, struct fs9_attr *out)
{
    memset(out, 0, sizeof *out);
    out->ino = 1;
    out->mode = S_IFDIR | 0755;
    out->nlink = 2;
    out->uid = fs->uid;
    out->gid = fs->gid;
    out->size = 4096;
    out->atime = fs->birth;
    out->mtime = out->ctime = fs->root_mtime;
}

/* The stream named `path`, NULL if none.  fs->lock held. */
static struct stream *table_find(const struct streamfs *fs, const char *path)
{
    struct stream *s = fs->buckets[name_hash(path) & (fs->nbuckets - 1)];
    while (s && strcmp(s->name, path) != 0)
        s = s->hnext;
    return s;
}

/* What a path that names no stream is: ENOTDIR below a stream, ENOENT
 * otherwise.  fs->lock held. */
static int missing(const struct streamfs *fs, const char *path)
{
    const char *slash = strchr(path, '/');
    if (!slash)
        return -ENOENT;
    char first[SFS_NAME_MAX + 1];
    size_t len = (size_t)(slash - path);
    if (len > SFS_NAME_MAX)
        return -ENAMETOOLONG;
    memcpy(first, path, len);
    first[len] = '\0';
    return table_find(fs, first) ? -ENOTDIR : -ENOENT;
}

static int table_add(struct streamfs *fs, struct stream *s)
{
    if (fs->count == fs->capacity) {
        size_t cap = fs->capacity ? fs->capacity * 2 : 16;
        struct stream **v = realloc(fs->order, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        fs->order = v;
        fs->capacity = cap;
    }
    if (fs->count >= fs->nbuckets) { /* keep chains short: rehash */
        size_t nb = fs->nbuckets * 2;
        struct stream **b = calloc(nb, sizeof *b);
        if (!b)
            return -ENOMEM;
        for (size_t i = 0; i < fs->nbuckets; i++) {
            struct stream *x = fs->buckets[i];
            while (x) {
                struct stream *next = x->hnext;
                size_t k = name_hash(x->name) & (nb - 1);
                x->hnext = b[k];
                b[k] = x;
                x = next;
            }
        }
        free(fs->buckets);
        fs->buckets = b;
        fs->nbuckets = nb;
    }
    size_t k = name_hash(s->name) & (fs->nbuckets - 1);
    s->hnext = fs->buckets[k];
    fs->buckets[k] = s;
    fs->order[fs->count++] = s; /* ids grow: the array stays sorted */
    return 0;
}

/* Index in fs->order of the first stream with id > `id`. */
static size_t order_after(const struct streamfs *fs, uint64_t id)
{
    size_t lo = 0, hi = fs->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (fs->order[mid]->id <= id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void table_del(struct streamfs *fs, struct stream *s)
{
    struct stream **p = &fs->buckets[name_hash(s->name) & (fs->nbuckets - 1)];
    while (*p != s)
        p = &(*p)->hnext;
    *p = s->hnext;
    size_t i = order_after(fs, s->id - 1);
    memmove(&fs->order[i], &fs->order[i + 1],
            (fs->count - i - 1) * sizeof *fs->order);
    fs->count--;
}

static void stream_free(struct stream *s)
{
    pthread_mutex_destroy(&s->lock);
    free(s->ring);
    free(s->name);
    free(s);
}

/* ---- create, destroy, capabilities ---- */

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
    default: break;
    }
    if (*p || (shift && v > (UINT64_MAX >> shift)))
        return false;
    *out = v << shift;
    return true;
}

static int sfs_create(const struct fs9_host *host,
                      const struct fs9_config *cfg, void **self, char *err,
                      size_t errlen)
{
    static const char *const known[] = {"ring", NULL};
    const char *unknown = fs9_config_unknown_key(cfg, known);
    if (unknown) {
        snprintf(err, errlen, "unknown key '%s' (streamfs knows ring)",
                 unknown);
        return -EINVAL;
    }
    uint64_t ring = SFS_DEFAULT_RING;
    const char *v = NULL;
    for (size_t i = 0; i < cfg->count; i++) /* the last one counts */
        if (strcmp(cfg->items[i].key, "ring") == 0)
            v = cfg->items[i].value;
    if (v && (!parse_size(v, &ring) || ring == 0 || ring > SFS_MAX_RING)) {
        snprintf(err, errlen, "ring=%s: expected 1 byte to 1G, with an "
                 "optional k, m or g suffix", v);
        return -EINVAL;
    }
    struct streamfs *fs = calloc(1, sizeof *fs);
    if (!fs)
        return -ENOMEM;
    fs->nbuckets = 16;
    fs->buckets = calloc(fs->nbuckets, sizeof *fs->buckets);
    if (!fs->buckets) {
        free(fs);
        return -ENOMEM;
    }
    fs->host = host;
    fs->ring = (size_t)ring;
    fs->uid = (uint32_t)getuid();
    fs->gid = (uint32_t)getgid();
    fs->birth = fs->root_mtime = sfs_now(fs);
    fs->next_id = 1;
    pthread_rwlock_init(&fs->lock, NULL);
    *self = fs;
    return 0;
}

static void sfs_destroy(void *self)
{
    struct streamfs *fs = self;
    for (size_t i = 0; i < fs->count; i++)
        stream_free(fs->order[i]); /* every handle is closed by now */
    free(fs->order);
    free(fs->buckets);
    pthread_rwlock_destroy(&fs->lock);
    free(fs);
}

static uint64_t sfs_capabilities(void *self)
{
    (void)self;
    return FS9_CAP_READ | FS9_CAP_WRITE | FS9_CAP_CREATE | FS9_CAP_DELETE |
           FS9_CAP_CHMOD | FS9_CAP_CHOWN | FS9_CAP_UTIME | FS9_CAP_APPEND |
           FS9_CAP_STREAMING | FS9_CAP_BLOCKING_READ |
           FS9_CAP_STATEFUL_READ | FS9_CAP_DIRECTORY | FS9_CAP_NONBLOCKING;
}

/* ---- stat, wstat, statfs ---- */

static int sfs_stat(void *self, const struct fs9_ctx *ctx, const char *path,
                    void *handle, struct fs9_attr *out)
{
    struct streamfs *fs = self;
    struct sfs_handle *h = handle;
    (void)ctx;
    int rc = 0;
    pthread_rwlock_rdlock(&fs->lock);
    struct stream *s = h ? h->s : (*path ? table_find(fs, path) : NULL);
    if (s) {
        pthread_mutex_lock(&s->lock);
        stream_attr(s, out);
        pthread_mutex_unlock(&s->lock);
    } else if ((h && !h->s) || *path == '\0') {
        root_attr(fs, out);
    } else {
        rc = missing(fs, path);
    }
    pthread_rwlock_unlock(&fs->lock);
    return rc;
}

static int sfs_wstat(void *self, const struct fs9_ctx *ctx, const char *path,
                     void *handle, const struct fs9_wstat *w,
                     struct fs9_attr *out)
{
    struct streamfs *fs = self;
    struct sfs_handle *h = handle;
    (void)ctx;
    int rc = 0;
    pthread_rwlock_rdlock(&fs->lock);
    struct stream *s = h ? h->s : (*path ? table_find(fs, path) : NULL);
    if (!s) {
        if ((h && !h->s) || *path == '\0')
            rc = -EPERM; /* the root's attributes are fixed */
        else
            rc = missing(fs, path);
        goto out;
    }
    if (w->valid & FS9_WSTAT_SIZE) {
        rc = -EPERM; /* append-only */
        goto out;
    }
    struct timespec t = sfs_now(fs);
    pthread_mutex_lock(&s->lock);
    if (w->valid & FS9_WSTAT_MODE)
        s->mode = S_IFREG | (w->mode & 07777);
    if (w->valid & FS9_WSTAT_UID)
        s->uid = w->uid;
    if (w->valid & FS9_WSTAT_GID)
        s->gid = w->gid;
    if (w->valid & FS9_WSTAT_ATIME_NOW)
        s->atime = t;
    else if ((w->valid & FS9_WSTAT_ATIME) && w->atime.tv_nsec != UTIME_OMIT)
        s->atime = w->atime.tv_nsec == UTIME_NOW ? t : w->atime;
    if (w->valid & FS9_WSTAT_MTIME_NOW)
        s->mtime = t;
    else if ((w->valid & FS9_WSTAT_MTIME) && w->mtime.tv_nsec != UTIME_OMIT)
        s->mtime = w->mtime.tv_nsec == UTIME_NOW ? t : w->mtime;
    if (w->valid)
        s->ctime = (w->valid & FS9_WSTAT_CTIME) ? w->ctime : t;
    stream_attr(s, out);
    pthread_mutex_unlock(&s->lock);
out:
    pthread_rwlock_unlock(&fs->lock);
    return rc;
}

static int sfs_statfs(void *self, const char *path, struct fs9_statfs *out)
{
    struct streamfs *fs = self;
    pthread_rwlock_rdlock(&fs->lock);
    int rc = *path && !table_find(fs, path) ? missing(fs, path) : 0;
    uint64_t used = 0;
    for (size_t i = 0; i < fs->count; i++) {
        pthread_mutex_lock(&fs->order[i]->lock);
        used += fs->order[i]->alloc;
        pthread_mutex_unlock(&fs->order[i]->lock);
    }
    uint64_t n = fs->count;
    pthread_rwlock_unlock(&fs->lock);
    if (rc < 0)
        return rc;
    memset(out, 0, sizeof *out);
    out->bsize = 4096;
    out->blocks = (n + 1) * ((fs->ring + 4095) / 4096);
    uint64_t ub = (used + 4095) / 4096;
    out->bfree = out->bavail = out->blocks > ub ? out->blocks - ub : 0;
    out->ffree = UINT64_C(1) << 32;
    out->files = n + 1 + out->ffree;
    out->namemax = SFS_NAME_MAX;
    return 0;
}

/* ---- open, close ---- */

static int sfs_open(void *self, const struct fs9_ctx *ctx, const char *path,
                    uint32_t flags, uint32_t mode, struct fs9_open_out *out)
{
    struct streamfs *fs = self;
    bool create = flags & FS9_OPEN_CREATE;
    memset(out, 0, sizeof *out);

    if (*path == '\0') { /* the root directory */
        if (create && (flags & FS9_OPEN_EXCL))
            return -EEXIST;
        if ((flags & (FS9_OPEN_WRITE | FS9_OPEN_TRUNC)) ||
            (create && !(flags & FS9_OPEN_DIRECTORY)))
            return -EISDIR;
        struct sfs_handle *h = NULL;
        if (!(flags & FS9_OPEN_NOHANDLE) && !(h = calloc(1, sizeof *h)))
            return -ENOMEM;
        if (h)
            h->flags = flags;
        pthread_rwlock_rdlock(&fs->lock);
        root_attr(fs, &out->attr);
        pthread_rwlock_unlock(&fs->lock);
        out->handle = h;
        return 0;
    }

    struct sfs_handle *h = NULL;
    if (!(flags & FS9_OPEN_NOHANDLE) && !(h = calloc(1, sizeof *h)))
        return -ENOMEM;
    struct stream *s = NULL;
    int rc = 0;
    if (create)
        pthread_rwlock_wrlock(&fs->lock);
    else
        pthread_rwlock_rdlock(&fs->lock);
    s = table_find(fs, path);
    if (!s) {
        if (!create || strchr(path, '/')) {
            rc = missing(fs, path);
            goto out;
        }
        if (strlen(path) > SFS_NAME_MAX) {
            rc = -ENAMETOOLONG;
            goto out;
        }
        uint32_t type = mode & S_IFMT;
        if ((flags & FS9_OPEN_DIRECTORY) || (type && type != S_IFREG)) {
            rc = -EPERM; /* flat: no directories, no special files */
            goto out;
        }
        s = calloc(1, sizeof *s);
        if (!s || !(s->name = strdup(path))) {
            free(s);
            s = NULL;
            rc = -ENOMEM;
            goto out;
        }
        s->id = fs->next_id;
        s->cap = fs->ring;
        s->mode = S_IFREG | (mode & 07777);
        s->uid = ctx->uid;
        s->gid = ctx->gid;
        s->atime = s->mtime = s->ctime = sfs_now(fs);
        s->linked = true;
        pthread_mutex_init(&s->lock, NULL);
        rc = table_add(fs, s);
        if (rc < 0) {
            stream_free(s);
            goto out;
        }
        fs->next_id++;
        fs->root_mtime = s->ctime;
        out->created = 1;
    } else if (create && (flags & FS9_OPEN_EXCL)) {
        rc = -EEXIST;
        goto out;
    } else if (flags & FS9_OPEN_DIRECTORY) {
        rc = -ENOTDIR;
        goto out;
    }
    /* FS9_OPEN_TRUNC is ignored: a stream is never truncated, and
     * `echo x > stream` appends. */
    pthread_mutex_lock(&s->lock);
    if (h) {
        h->s = s;
        h->flags = flags;
        h->cursor = oldest(s); /* the history first */
        s->opens++;
    }
    stream_attr(s, &out->attr);
    pthread_mutex_unlock(&s->lock);
    out->handle = h;
    out->flags = FS9_OPEN_OUT_DIRECT_IO | FS9_OPEN_OUT_NONSEEKABLE;
    h = NULL;
out:
    pthread_rwlock_unlock(&fs->lock);
    free(h);
    return rc;
}

static int sfs_close(void *self, void *handle, int sync)
{
    struct sfs_handle *h = handle;
    (void)self;
    (void)sync;
    struct stream *s = h->s;
    free(h);
    if (!s)
        return 0;
    pthread_mutex_lock(&s->lock);
    s->opens--;
    bool gone = s->opens == 0 && !s->linked;
    pthread_mutex_unlock(&s->lock);
    if (gone)
        stream_free(s);
    return 0;
}

/* ---- read, write, poll ---- */

static bool can_read(const struct sfs_handle *h)
{
    return (h->flags & FS9_OPEN_READ) || !(h->flags & FS9_OPEN_WRITE);
}

static ssize_t sfs_read(void *self, void *handle, void *buf, size_t size,
                        uint64_t offset)
{
    struct streamfs *fs = self;
    struct sfs_handle *h = handle;
    struct stream *s = h->s;
    (void)offset; /* not seekable: the handle's cursor says where */
    if (!s)
        return -EISDIR;
    if (!can_read(h))
        return -EBADF;
    ssize_t rc;
    pthread_mutex_lock(&s->lock);
    uint64_t first = oldest(s);
    if (h->cursor < first) {
        /* Fell behind the ring: those bytes are gone; go on from the
         * oldest one retained. */
        fs->host->log(fs->host->ctx, FS9_LOG_DEBUG,
                      "%s: a reader skipped %llu overwritten bytes", s->name,
                      (unsigned long long)(first - h->cursor));
        h->cursor = first;
    }
    if (h->cursor < s->end) {
        uint64_t avail = s->end - h->cursor;
        size_t n = avail < size ? (size_t)avail : size;
        if (n == avail && n == size && size >= SFS_MIN_CHUNK)
            n--; /* see SFS_MIN_CHUNK */
        size_t at = (size_t)(h->cursor % s->cap);
        size_t part = s->cap - at < n ? s->cap - at : n; /* up to the wrap */
        memcpy(buf, s->ring + at, part);
        memcpy((char *)buf + part, s->ring, n - part);
        h->cursor += n;
        s->atime = sfs_now(fs);
        rc = (ssize_t)n;
    } else if (!s->linked) {
        rc = 0; /* removed and all read: end of file */
    } else {
        rc = -EAGAIN; /* no data yet: FS9 waits for our notify */
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Make room for the ring to hold `need` bytes (at most cap).  s->lock. */
static int ring_reserve(struct stream *s, uint64_t need)
{
    if (need > s->cap)
        need = s->cap;
    if (need <= s->alloc)
        return 0;
    size_t a = s->alloc ? s->alloc : 4096;
    while (a < need)
        a *= 2;
    if (a > s->cap)
        a = s->cap;
    char *r = realloc(s->ring, a);
    if (!r)
        return -ENOMEM;
    s->ring = r;
    s->alloc = a;
    return 0;
}

static ssize_t sfs_write(void *self, void *handle, const void *buf,
                         size_t size, uint64_t offset)
{
    struct streamfs *fs = self;
    struct sfs_handle *h = handle;
    struct stream *s = h->s;
    (void)offset; /* append-only: every write goes to the end */
    if (!s)
        return -EISDIR;
    if (!(h->flags & FS9_OPEN_WRITE))
        return -EBADF;
    if (size == 0)
        return 0;
    pthread_mutex_lock(&s->lock);
    if (!s->linked) {
        pthread_mutex_unlock(&s->lock);
        return -EPIPE; /* removed: nobody can open it to read any more */
    }
    int rc = ring_reserve(s, s->end + size);
    if (rc < 0) {
        pthread_mutex_unlock(&s->lock);
        return rc;
    }
    const char *src = buf;
    size_t n = size;
    if (n > s->cap) { /* only the last cap bytes can be retained */
        s->end += n - s->cap;
        src += n - s->cap;
        n = s->cap;
    }
    size_t at = (size_t)(s->end % s->cap);
    size_t part = s->cap - at < n ? s->cap - at : n;
    memcpy(s->ring + at, src, part);
    memcpy(s->ring, src + part, n - part);
    s->end += n;
    s->mtime = s->ctime = sfs_now(fs);
    pthread_mutex_unlock(&s->lock);
    /* Wake parked readers and pollers.  The name outlives the call: our
     * handle keeps the stream. */
    fs->host->notify(fs->host->ctx, s->name, FS9_NOTIFY_DATA);
    return (ssize_t)size;
}

static int sfs_poll(void *self, void *handle, uint32_t events,
                    uint32_t *revents)
{
    struct sfs_handle *h = handle;
    struct stream *s = h->s;
    (void)self;
    *revents = 0;
    if (!s) {
        *revents = events & FS9_POLL_IN;
        return 0;
    }
    pthread_mutex_lock(&s->lock);
    if ((events & FS9_POLL_IN) && can_read(h) &&
        (h->cursor < s->end || !s->linked))
        *revents |= FS9_POLL_IN;
    if ((events & FS9_POLL_OUT) && (h->flags & FS9_OPEN_WRITE) && s->linked)
        *revents |= FS9_POLL_OUT;
    if (!s->linked)
        *revents |= FS9_POLL_HUP;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

/* ---- readdir, remove ---- */

struct sfs_batch {
    uint64_t id;
    struct fs9_attr attr;
    char name[SFS_NAME_MAX + 1];
};

static int sfs_readdir(void *self, void *handle, uint64_t cookie,
                       uint32_t flags, fs9_dirent_fn emit, void *emit_arg)
{
    struct streamfs *fs = self;
    struct sfs_handle *h = handle;
    (void)flags;
    if (h->s)
        return -ENOTDIR;
    struct sfs_batch *batch = malloc(SFS_BATCH * sizeof *batch);
    if (!batch)
        return -ENOMEM;
    int rc = 0;
    for (;;) {
        /* Copy a batch under the lock, emit it without. */
        size_t n = 0;
        pthread_rwlock_rdlock(&fs->lock);
        for (size_t i = order_after(fs, cookie);
             i < fs->count && n < SFS_BATCH; i++, n++) {
            struct stream *s = fs->order[i];
            batch[n].id = s->id;
            memcpy(batch[n].name, s->name, strlen(s->name) + 1);
            pthread_mutex_lock(&s->lock);
            stream_attr(s, &batch[n].attr);
            pthread_mutex_unlock(&s->lock);
        }
        pthread_rwlock_unlock(&fs->lock);
        for (size_t i = 0; i < n; i++) {
            struct fs9_dirent e = {.name = batch[i].name,
                                   .cookie = batch[i].id,
                                   .full_attr = 1,
                                   .attr = batch[i].attr};
            int r = emit(emit_arg, &e);
            if (r != 0) {
                rc = r < 0 ? r : 0;
                goto out;
            }
            cookie = batch[i].id;
        }
        if (n < SFS_BATCH)
            break;
    }
out:
    free(batch);
    return rc;
}

static int sfs_remove(void *self, const struct fs9_ctx *ctx,
                      const char *path, uint32_t flags)
{
    struct streamfs *fs = self;
    (void)ctx;
    if (*path == '\0')
        return (flags & FS9_REMOVE_DIR) ? -EBUSY : -EISDIR;
    pthread_rwlock_wrlock(&fs->lock);
    struct stream *s = table_find(fs, path);
    int rc = 0;
    if (!s) {
        rc = missing(fs, path);
    } else if (flags & FS9_REMOVE_DIR) {
        rc = -ENOTDIR;
    } else {
        table_del(fs, s);
        struct timespec t = sfs_now(fs);
        fs->root_mtime = t;
        pthread_mutex_lock(&s->lock);
        s->linked = false;
        s->ctime = t;
        bool gone = s->opens == 0;
        pthread_mutex_unlock(&s->lock);
        /* Readers waiting for data get their end of file now. */
        if (!gone)
            fs->host->notify(fs->host->ctx, s->name, FS9_NOTIFY_DATA);
        else
            stream_free(s);
    }
    pthread_rwlock_unlock(&fs->lock);
    return rc;
}

/* A reader parked on a stream waits on the name it opened: moving the
 * stream would strand it.  Refused rather than left to `mv`'s copy, which
 * would wait forever for the stream to end. */
static int sfs_rename(void *self, const struct fs9_ctx *ctx,
                      const char *from, const char *to, uint32_t flags)
{
    struct streamfs *fs = self;
    (void)ctx;
    (void)to;
    (void)flags;
    pthread_rwlock_rdlock(&fs->lock);
    int rc = *from == '\0' ? -EBUSY
             : table_find(fs, from) ? -EPERM
                                    : missing(fs, from);
    pthread_rwlock_unlock(&fs->lock);
    return rc;
}

static const struct fs9_provider_ops streamfs_ops = {
    .abi_version = FS9_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct fs9_provider_ops),
    .name = "streamfs",
    .version = SFS_VERSION,
    .description = "append-only streams: history, then tail -f, to any "
                   "number of readers",
    .create = sfs_create,
    .destroy = sfs_destroy,
    .capabilities = sfs_capabilities,
    .stat = sfs_stat,
    .wstat = sfs_wstat,
    .statfs = sfs_statfs,
    .open = sfs_open,
    .read = sfs_read,
    .write = sfs_write,
    .close = sfs_close,
    .readdir = sfs_readdir,
    .remove = sfs_remove,
    .rename = sfs_rename,
    .poll = sfs_poll,
};

__attribute__((visibility("default")))
const struct fs9_provider_ops *fs9_provider_entry(void);

const struct fs9_provider_ops *fs9_provider_entry(void)
{
    return &streamfs_ops;
}
