/*
 * pubsubfs — publish/subscribe topics as files.
 *
 *   /README        how to use it (static text)
 *   /<topic>       write: publish; read: subscribe
 *   /<topic>.info  the topic's state as "key: value" lines (subscribers,
 *                  publishers, messages, retained, ring, max_message,
 *                  bytes, created, modified) for grep and awk
 *
 * Publishing.  Opening a topic for writing makes the handle a publisher;
 * O_CREAT on a new name creates the topic (so `echo hi > news` works on
 * first use; O_TRUNC is ignored).  Every write(2) is one message.
 *
 * The size limit and the kernel.  A message is at most max_message bytes
 * (default and ceiling 1 MiB - 4 KiB = 1044480); a larger write(2) fails
 * with EMSGSIZE and publishes nothing.  Why not 1 MiB: FUSE hands a big
 * write(2) to FS9 in pieces of at most max_write (1 MiB) bytes and at
 * most 256 pages of the writer's buffer, so from an unaligned buffer a
 * piece can be as small as 1 MiB - 4095 bytes, and nothing in a piece says
 * whether more of the same write(2) follows.  With the limit below every
 * possible piece size, the first piece of any oversized write(2) is itself
 * oversized: it is refused, the write(2) fails as a whole with EMSGSIZE,
 * and a write(2) within the limit always arrives in one piece.  (writev
 * with many scattered small buffers can be cut earlier; write one buffer.)
 *
 * Subscribing.  Opening a topic for reading subscribes: the handle first
 * receives the retained messages — the last ring=N (default 64) — then
 * every new one as it is published.  A read returns at most one message;
 * when the reader's buffer is smaller, the read returns the message's
 * first part and the following reads the rest (a subscriber that reads
 * 1 MiB or more at a time always gets whole messages, one per read).  A
 * message started is always finished, even if the ring moved on.  A
 * subscriber more than N messages behind skips to the oldest retained one.
 * With nothing to read, read answers -EAGAIN: FS9 parks it without holding
 * a thread until a publish calls host->notify (FS9_CAP_BLOCKING_READ), or
 * answers EAGAIN to an O_NONBLOCK reader.  poll() reports readability.
 *
 * Removing a topic closes it: subscribers read what is left, then end of
 * file; publishers still holding it get EPIPE.  mkdir, rename, and names
 * that are reserved (README, *.info) are refused: EPERM for mkdir and
 * rename, EACCES for writing, creating or removing README or an .info.
 *
 * Locking.  ps->lock (rwlock) guards the table of topics (hash by name,
 * array by creation).  t->lock (mutex) guards one topic: its ring, counts,
 * attributes and the cursors of its handles.  Order: ps->lock, t->lock.
 * Messages are reference counted under t->lock (the ring holds one, a
 * subscriber in the middle of one holds one).  A topic lives while it is
 * in the table or open; whoever clears the last of the two frees it.
 * Memory only: FS9_CAP_NONBLOCKING.
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
#include <time.h>
#include <unistd.h>

#define PS_VERSION "1.0.0"
#define PS_NAME_MAX 255
#define PS_INFO_SUFFIX ".info"
#define PS_DEFAULT_RING 64
#define PS_MAX_RING 65536
/* The largest write(2) FUSE always delivers in one piece (see above). */
#define PS_MAX_MESSAGE ((1u << 20) - 4096)
#define PS_INFO_MAX 1024
#define PS_README_MAX 2048
#define PS_BATCH 64

/* Inode numbers: root 1, README 2, topic id k: 2k+2, its .info 2k+3.
 * Readdir cookies: README 1, topic k: 2k, its .info 2k+1. */
#define INO_ROOT 1
#define INO_README 2

struct msg {
    uint32_t refs; /* under the topic's lock */
    size_t len;
    char data[];
};

struct topic {
    struct topic *hnext; /* hash chain; ps->lock */
    uint64_t id;         /* creation order; immutable */
    char *name;          /* owned; immutable */

    pthread_mutex_t lock; /* guards what follows */
    bool linked;          /* in the table */
    uint32_t opens, subscribers, publishers;
    uint32_t mode, uid, gid;
    struct timespec atime, mtime, ctime, created;
    struct msg **ring;    /* owned; nring slots, message seq at seq % nring */
    uint32_t nring;
    uint64_t next_seq;    /* messages ever published */
    uint64_t bytes;       /* bytes ever published */
};

struct pubsubfs {
    const struct fs9_host *host; /* borrowed from create() to destroy() */
    uint32_t nring;
    size_t max_message;
    uint32_t uid, gid;
    struct timespec birth;
    char readme[PS_README_MAX];
    size_t readme_len;

    pthread_rwlock_t lock; /* the table and root_mtime */
    struct topic **buckets;
    size_t nbuckets;
    struct topic **order; /* by id, ascending */
    size_t count, capacity;
    uint64_t next_id;
    struct timespec root_mtime;
};

enum ps_kind { K_ROOT, K_README, K_TOPIC, K_INFO };

struct ps_handle {
    enum ps_kind kind;
    uint32_t flags;      /* FS9_OPEN_* */
    struct topic *t;     /* K_TOPIC, K_INFO: holds one of t->opens */
    /* subscribers, under t->lock: */
    uint64_t seq;        /* the next message to start */
    struct msg *cur;     /* the message being read, one reference */
    size_t cur_off;
    /* K_INFO: the text as of open */
    char text[PS_INFO_MAX];
    size_t textlen;
};

static const char readme_fmt[] =
    "pubsubfs - publish/subscribe topics as files\n"
    "\n"
    "  echo hello > news     publish a message to topic \"news\" (created\n"
    "                        on first publish); each write(2) is one message\n"
    "  cat news              subscribe: the retained messages, then each new\n"
    "                        one as it is published (Ctrl-C to stop)\n"
    "  cat news.info         the topic's state, one \"key: value\" per line:\n"
    "                        subscribers, publishers, messages, retained,\n"
    "                        ring, max_message, bytes, created, modified\n"
    "  rm news               close the topic: subscribers read what is left,\n"
    "                        then end of file\n"
    "\n"
    "A message is at most %zu bytes; a larger write(2) fails with EMSGSIZE\n"
    "and publishes nothing.  A read returns at most one message; with a\n"
    "smaller buffer the following reads return the rest of it.  Each topic\n"
    "keeps its last %u messages for new subscribers; a subscriber further\n"
    "behind skips to the oldest one kept.  O_NONBLOCK readers get EAGAIN\n"
    "instead of waiting; poll/select work.\n";

/* ---- helpers ---- */

static struct timespec ps_now(const struct pubsubfs *ps)
{
    return ps->host->now(ps->host->ctx, CLOCK_REALTIME);
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

static bool has_info_suffix(const char *name, size_t len)
{
    size_t sl = sizeof PS_INFO_SUFFIX - 1;
    return len > sl && memcmp(name + len - sl, PS_INFO_SUFFIX, sl) == 0;
}

static uint64_t oldest_seq(const struct topic *t)
{
    return t->next_seq > t->nring ? t->next_seq - t->nring : 0;
}

static void msg_put(struct msg *m)
{
    if (m && --m->refs == 0)
        free(m);
}

static struct topic *table_find(const struct pubsubfs *ps, const char *name)
{
    struct topic *t = ps->buckets[name_hash(name) & (ps->nbuckets - 1)];
    while (t && strcmp(t->name, name) != 0)
        t = t->hnext;
    return t;
}

static int table_add(struct pubsubfs *ps, struct topic *t)
{
    if (ps->count == ps->capacity) {
        size_t cap = ps->capacity ? ps->capacity * 2 : 16;
        struct topic **v = realloc(ps->order, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        ps->order = v;
        ps->capacity = cap;
    }
    if (ps->count >= ps->nbuckets) {
        size_t nb = ps->nbuckets * 2;
        struct topic **b = calloc(nb, sizeof *b);
        if (!b)
            return -ENOMEM;
        for (size_t i = 0; i < ps->nbuckets; i++) {
            struct topic *x = ps->buckets[i];
            while (x) {
                struct topic *next = x->hnext;
                size_t k = name_hash(x->name) & (nb - 1);
                x->hnext = b[k];
                b[k] = x;
                x = next;
            }
        }
        free(ps->buckets);
        ps->buckets = b;
        ps->nbuckets = nb;
    }
    size_t k = name_hash(t->name) & (ps->nbuckets - 1);
    t->hnext = ps->buckets[k];
    ps->buckets[k] = t;
    ps->order[ps->count++] = t;
    return 0;
}

/* Index of the first topic with id > `id`. */
static size_t order_after(const struct pubsubfs *ps, uint64_t id)
{
    size_t lo = 0, hi = ps->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ps->order[mid]->id <= id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void table_del(struct pubsubfs *ps, struct topic *t)
{
    struct topic **p = &ps->buckets[name_hash(t->name) & (ps->nbuckets - 1)];
    while (*p != t)
        p = &(*p)->hnext;
    *p = t->hnext;
    size_t i = order_after(ps, t->id - 1);
    memmove(&ps->order[i], &ps->order[i + 1],
            (ps->count - i - 1) * sizeof *ps->order);
    ps->count--;
}

static void topic_free(struct topic *t)
{
    for (uint32_t i = 0; i < t->nring; i++)
        msg_put(t->ring[i]);
    free(t->ring);
    pthread_mutex_destroy(&t->lock);
    free(t->name);
    free(t);
}

/* What `path` names.  *t is the topic of K_TOPIC and K_INFO (NULL when
 * absent).  Returns the kind or a negative errno for a path that cannot
 * name anything (below a file).  ps->lock held. */
static int classify(const struct pubsubfs *ps, const char *path,
                    struct topic **t)
{
    *t = NULL;
    if (*path == '\0')
        return K_ROOT;
    const char *slash = strchr(path, '/');
    size_t len = slash ? (size_t)(slash - path) : strlen(path);
    if (len > PS_NAME_MAX)
        return -ENAMETOOLONG;
    char first[PS_NAME_MAX + 1];
    memcpy(first, path, len);
    first[len] = '\0';
    int kind;
    if (strcmp(first, "README") == 0) {
        kind = K_README;
    } else if (has_info_suffix(first, len)) {
        first[len - (sizeof PS_INFO_SUFFIX - 1)] = '\0';
        *t = table_find(ps, first);
        kind = K_INFO;
    } else {
        *t = table_find(ps, first);
        kind = K_TOPIC;
    }
    if (slash) {
        /* Below one of our files, or below nothing. */
        bool exists = kind == K_README || *t;
        *t = NULL;
        return exists ? -ENOTDIR : -ENOENT;
    }
    return kind;
}

/* The .info text of `t` into buf; t->lock held.  Returns its length. */
static size_t info_text(const struct pubsubfs *ps, const struct topic *t,
                        char *buf, size_t size)
{
    char created[64], modified[64];
    const struct timespec *ts[2] = {&t->created, &t->mtime};
    char *out[2] = {created, modified};
    for (int i = 0; i < 2; i++) {
        struct tm tm;
        time_t sec = ts[i]->tv_sec;
        gmtime_r(&sec, &tm);
        size_t n = strftime(out[i], 40, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(out[i] + n, sizeof created - n, ".%09ldZ",
                 (long)ts[i]->tv_nsec);
    }
    int n = snprintf(buf, size,
                     "topic: %s\n"
                     "subscribers: %u\n"
                     "publishers: %u\n"
                     "messages: %llu\n"
                     "retained: %llu\n"
                     "ring: %u\n"
                     "max_message: %zu\n"
                     "bytes: %llu\n"
                     "created: %s\n"
                     "modified: %s\n",
                     t->name, t->subscribers, t->publishers,
                     (unsigned long long)t->next_seq,
                     (unsigned long long)(t->next_seq - oldest_seq(t)),
                     t->nring, ps->max_message,
                     (unsigned long long)t->bytes, created, modified);
    return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

static void topic_attr(const struct topic *t, struct fs9_attr *out)
{
    memset(out, 0, sizeof *out);
    out->ino = 2 * t->id + 2;
    out->mode = t->mode;
    out->nlink = t->linked ? 1 : 0;
    out->uid = t->uid;
    out->gid = t->gid;
    out->size = 0; /* a topic is not a sequence of bytes */
    out->atime = t->atime;
    out->mtime = t->mtime;
    out->ctime = t->ctime;
}

static void info_attr(const struct pubsubfs *ps, const struct topic *t,
                      struct fs9_attr *out)
{
    char buf[PS_INFO_MAX];
    memset(out, 0, sizeof *out);
    out->ino = 2 * t->id + 3;
    out->mode = S_IFREG | 0444;
    out->nlink = t->linked ? 1 : 0;
    out->uid = t->uid;
    out->gid = t->gid;
    out->size = info_text(ps, t, buf, sizeof buf);
    out->atime = out->mtime = t->mtime;
    out->ctime = t->ctime;
}

static void fixed_attr(const struct pubsubfs *ps, enum ps_kind kind,
                       struct fs9_attr *out)
{
    memset(out, 0, sizeof *out);
    out->uid = ps->uid;
    out->gid = ps->gid;
    out->atime = ps->birth;
    if (kind == K_ROOT) {
        out->ino = INO_ROOT;
        out->mode = S_IFDIR | 0755;
        out->nlink = 2;
        out->size = 4096;
        out->mtime = out->ctime = ps->root_mtime;
    } else {
        out->ino = INO_README;
        out->mode = S_IFREG | 0444;
        out->nlink = 1;
        out->size = ps->readme_len;
        out->mtime = out->ctime = ps->birth;
    }
}

/* Attributes of what `kind`/`t` name. ps->lock held. */
static void any_attr(const struct pubsubfs *ps, int kind, struct topic *t,
                     struct fs9_attr *out)
{
    if (kind == K_TOPIC || kind == K_INFO) {
        pthread_mutex_lock(&t->lock);
        if (kind == K_TOPIC)
            topic_attr(t, out);
        else
            info_attr(ps, t, out);
        pthread_mutex_unlock(&t->lock);
    } else {
        fixed_attr(ps, (enum ps_kind)kind, out);
    }
}

/* ---- create, destroy, capabilities ---- */

static bool parse_num(const char *s, uint64_t *out)
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
    if (*p == 'k' || *p == 'K')
        shift = 10, p++;
    else if (*p == 'm' || *p == 'M')
        shift = 20, p++;
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

static int ps_create(const struct fs9_host *host,
                     const struct fs9_config *cfg, void **self, char *err,
                     size_t errlen)
{
    static const char *const known[] = {"ring", "max_message", NULL};
    const char *unknown = fs9_config_unknown_key(cfg, known);
    if (unknown) {
        snprintf(err, errlen, "unknown key '%s' (pubsubfs knows ring, "
                 "max_message)", unknown);
        return -EINVAL;
    }
    uint64_t ring = PS_DEFAULT_RING, maxmsg = PS_MAX_MESSAGE;
    const char *v;
    if ((v = config_last(cfg, "ring")) &&
        (!parse_num(v, &ring) || ring == 0 || ring > PS_MAX_RING)) {
        snprintf(err, errlen, "ring=%s: expected a number of messages from "
                 "1 to %d", v, PS_MAX_RING);
        return -EINVAL;
    }
    if ((v = config_last(cfg, "max_message")) &&
        (!parse_num(v, &maxmsg) || maxmsg == 0 || maxmsg > PS_MAX_MESSAGE)) {
        snprintf(err, errlen, "max_message=%s: expected 1 to %u bytes (the "
                 "largest write FUSE delivers whole)", v, PS_MAX_MESSAGE);
        return -EINVAL;
    }
    struct pubsubfs *ps = calloc(1, sizeof *ps);
    if (!ps)
        return -ENOMEM;
    ps->nbuckets = 16;
    ps->buckets = calloc(ps->nbuckets, sizeof *ps->buckets);
    if (!ps->buckets) {
        free(ps);
        return -ENOMEM;
    }
    ps->host = host;
    ps->nring = (uint32_t)ring;
    ps->max_message = (size_t)maxmsg;
    ps->uid = (uint32_t)getuid();
    ps->gid = (uint32_t)getgid();
    ps->birth = ps->root_mtime = ps_now(ps);
    ps->next_id = 1;
    int n = snprintf(ps->readme, sizeof ps->readme, readme_fmt,
                     ps->max_message, ps->nring);
    ps->readme_len = n > 0 ? (size_t)n : 0;
    pthread_rwlock_init(&ps->lock, NULL);
    *self = ps;
    return 0;
}

static void ps_destroy(void *self)
{
    struct pubsubfs *ps = self;
    for (size_t i = 0; i < ps->count; i++)
        topic_free(ps->order[i]);
    free(ps->order);
    free(ps->buckets);
    pthread_rwlock_destroy(&ps->lock);
    free(ps);
}

static uint64_t ps_capabilities(void *self)
{
    (void)self;
    return FS9_CAP_READ | FS9_CAP_WRITE | FS9_CAP_CREATE | FS9_CAP_DELETE |
           FS9_CAP_CHMOD | FS9_CAP_CHOWN | FS9_CAP_UTIME |
           FS9_CAP_STREAMING | FS9_CAP_BLOCKING_READ |
           FS9_CAP_STATEFUL_READ | FS9_CAP_STATEFUL_WRITE |
           FS9_CAP_SYNTHETIC | FS9_CAP_DIRECTORY | FS9_CAP_NONBLOCKING;
}

/* ---- stat, wstat, statfs ---- */

static int ps_stat(void *self, const struct fs9_ctx *ctx, const char *path,
                   void *handle, struct fs9_attr *out)
{
    struct pubsubfs *ps = self;
    struct ps_handle *h = handle;
    (void)ctx;
    pthread_rwlock_rdlock(&ps->lock);
    struct topic *t = NULL;
    int kind = h ? (int)h->kind : classify(ps, path, &t);
    if (h)
        t = h->t;
    int rc = 0;
    if (kind < 0)
        rc = kind;
    else if ((kind == K_TOPIC || kind == K_INFO) && !t)
        rc = -ENOENT;
    else
        any_attr(ps, kind, t, out);
    pthread_rwlock_unlock(&ps->lock);
    return rc;
}

static int ps_wstat(void *self, const struct fs9_ctx *ctx, const char *path,
                    void *handle, const struct fs9_wstat *w,
                    struct fs9_attr *out)
{
    struct pubsubfs *ps = self;
    struct ps_handle *h = handle;
    (void)ctx;
    pthread_rwlock_rdlock(&ps->lock);
    struct topic *t = NULL;
    int kind = h ? (int)h->kind : classify(ps, path, &t);
    if (h)
        t = h->t;
    int rc = 0;
    const uint32_t ids = FS9_WSTAT_MODE | FS9_WSTAT_UID | FS9_WSTAT_GID;
    if (kind < 0) {
        rc = kind;
    } else if ((kind == K_TOPIC || kind == K_INFO) && !t) {
        rc = -ENOENT;
    } else if (kind != K_TOPIC) {
        /* README, .info and the root are fixed. */
        rc = (w->valid & ids) ? -EPERM : -EACCES;
    } else if (w->valid & FS9_WSTAT_SIZE) {
        rc = -EPERM; /* a topic has no bytes to truncate */
    } else {
        struct timespec now = ps_now(ps);
        pthread_mutex_lock(&t->lock);
        if (w->valid & FS9_WSTAT_MODE)
            t->mode = S_IFREG | (w->mode & 07777);
        if (w->valid & FS9_WSTAT_UID)
            t->uid = w->uid;
        if (w->valid & FS9_WSTAT_GID)
            t->gid = w->gid;
        if (w->valid & FS9_WSTAT_ATIME_NOW)
            t->atime = now;
        else if ((w->valid & FS9_WSTAT_ATIME) &&
                 w->atime.tv_nsec != UTIME_OMIT)
            t->atime = w->atime.tv_nsec == UTIME_NOW ? now : w->atime;
        if (w->valid & FS9_WSTAT_MTIME_NOW)
            t->mtime = now;
        else if ((w->valid & FS9_WSTAT_MTIME) &&
                 w->mtime.tv_nsec != UTIME_OMIT)
            t->mtime = w->mtime.tv_nsec == UTIME_NOW ? now : w->mtime;
        if (w->valid)
            t->ctime = (w->valid & FS9_WSTAT_CTIME) ? w->ctime : now;
        topic_attr(t, out);
        pthread_mutex_unlock(&t->lock);
    }
    pthread_rwlock_unlock(&ps->lock);
    return rc;
}

static int ps_statfs(void *self, const char *path, struct fs9_statfs *out)
{
    struct pubsubfs *ps = self;
    pthread_rwlock_rdlock(&ps->lock);
    struct topic *t;
    int kind = classify(ps, path, &t);
    uint64_t n = ps->count;
    pthread_rwlock_unlock(&ps->lock);
    if (kind < 0)
        return kind;
    if ((kind == K_TOPIC || kind == K_INFO) && !t)
        return -ENOENT;
    memset(out, 0, sizeof *out);
    out->bsize = 4096;
    out->ffree = UINT64_C(1) << 32;
    out->files = 2 * n + 2 + out->ffree;
    out->namemax = PS_NAME_MAX;
    return 0;
}

/* ---- open, close ---- */

static struct topic *topic_new(struct pubsubfs *ps, const char *name,
                               const struct fs9_ctx *ctx, uint32_t mode)
{
    struct topic *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->name = strdup(name);
    t->ring = calloc(ps->nring, sizeof *t->ring);
    if (!t->name || !t->ring) {
        free(t->name);
        free(t->ring);
        free(t);
        return NULL;
    }
    t->nring = ps->nring;
    t->mode = S_IFREG | (mode & 07777);
    t->uid = ctx->uid;
    t->gid = ctx->gid;
    t->atime = t->mtime = t->ctime = t->created = ps_now(ps);
    t->linked = true;
    pthread_mutex_init(&t->lock, NULL);
    return t;
}

static int ps_open(void *self, const struct fs9_ctx *ctx, const char *path,
                   uint32_t flags, uint32_t mode, struct fs9_open_out *out)
{
    struct pubsubfs *ps = self;
    bool create = flags & FS9_OPEN_CREATE;
    bool writing = flags & (FS9_OPEN_WRITE | FS9_OPEN_TRUNC);
    memset(out, 0, sizeof *out);
    struct ps_handle *h = NULL;
    if (!(flags & FS9_OPEN_NOHANDLE) && !(h = calloc(1, sizeof *h)))
        return -ENOMEM;
    if (create)
        pthread_rwlock_wrlock(&ps->lock);
    else
        pthread_rwlock_rdlock(&ps->lock);
    struct topic *t;
    int rc = classify(ps, path, &t);
    if (rc < 0)
        goto out;
    int kind = rc;
    rc = 0;
    bool exists = kind == K_ROOT || kind == K_README || t;

    if (!exists) {
        if (!create) {
            rc = -ENOENT;
        } else if (kind == K_INFO) {
            rc = -EACCES; /* reserved for the topic's state */
        } else if ((flags & FS9_OPEN_DIRECTORY) ||
                   ((mode & S_IFMT) && (mode & S_IFMT) != S_IFREG)) {
            rc = -EPERM; /* flat: no directories or special files */
        } else if (!(t = topic_new(ps, path, ctx, mode))) {
            rc = -ENOMEM;
        } else {
            t->id = ps->next_id;
            rc = table_add(ps, t);
            if (rc < 0) {
                topic_free(t);
                goto out;
            }
            ps->next_id++;
            ps->root_mtime = t->ctime;
            out->created = 1;
        }
        if (rc < 0)
            goto out;
    } else if (create && (flags & FS9_OPEN_EXCL)) {
        rc = -EEXIST;
    } else if (kind == K_ROOT) {
        if (writing || (create && !(flags & FS9_OPEN_DIRECTORY)))
            rc = -EISDIR;
    } else if (flags & FS9_OPEN_DIRECTORY) {
        rc = -ENOTDIR;
    } else if (kind != K_TOPIC && writing) {
        rc = -EACCES; /* README and .info are read-only */
    }
    if (rc < 0)
        goto out;

    if (h) {
        h->kind = (enum ps_kind)kind;
        h->flags = flags;
    }
    if (t) {
        pthread_mutex_lock(&t->lock);
        if (h) {
            h->t = t;
            t->opens++;
            if (kind == K_TOPIC) {
                if (flags & FS9_OPEN_WRITE)
                    t->publishers++;
                if ((flags & FS9_OPEN_READ) || !(flags & FS9_OPEN_WRITE)) {
                    t->subscribers++;
                    h->seq = oldest_seq(t); /* retained messages first */
                }
            } else {
                h->textlen = info_text(ps, t, h->text, sizeof h->text);
            }
        }
        if (kind == K_TOPIC)
            topic_attr(t, &out->attr);
        else
            info_attr(ps, t, &out->attr);
        pthread_mutex_unlock(&t->lock);
        /* Topics are read as messages, .info as a fresh snapshot: never
         * from the page cache. */
        out->flags = FS9_OPEN_OUT_DIRECT_IO;
        if (kind == K_TOPIC)
            out->flags |= FS9_OPEN_OUT_NONSEEKABLE;
    } else {
        fixed_attr(ps, (enum ps_kind)kind, &out->attr);
    }
    out->handle = h;
    h = NULL;
out:
    pthread_rwlock_unlock(&ps->lock);
    free(h);
    return rc;
}

static bool is_subscriber(const struct ps_handle *h)
{
    return h->kind == K_TOPIC &&
           ((h->flags & FS9_OPEN_READ) || !(h->flags & FS9_OPEN_WRITE));
}

static int ps_close(void *self, void *handle, int sync)
{
    struct ps_handle *h = handle;
    (void)self;
    (void)sync;
    struct topic *t = h->t;
    bool gone = false;
    if (t) {
        pthread_mutex_lock(&t->lock);
        if (h->kind == K_TOPIC) {
            if (h->flags & FS9_OPEN_WRITE)
                t->publishers--;
            if (is_subscriber(h))
                t->subscribers--;
            msg_put(h->cur);
        }
        t->opens--;
        gone = t->opens == 0 && !t->linked;
        pthread_mutex_unlock(&t->lock);
    }
    free(h);
    if (gone)
        topic_free(t);
    return 0;
}

/* ---- read, write, poll ---- */

static ssize_t read_text(const char *text, size_t len, void *buf,
                         size_t size, uint64_t offset)
{
    if (offset >= len)
        return 0;
    size_t n = len - (size_t)offset < size ? len - (size_t)offset : size;
    memcpy(buf, text + offset, n);
    return (ssize_t)n;
}

static ssize_t ps_read(void *self, void *handle, void *buf, size_t size,
                       uint64_t offset)
{
    struct pubsubfs *ps = self;
    struct ps_handle *h = handle;
    switch (h->kind) {
    case K_ROOT:
        return -EISDIR;
    case K_README:
        return read_text(ps->readme, ps->readme_len, buf, size, offset);
    case K_INFO:
        return read_text(h->text, h->textlen, buf, size, offset);
    case K_TOPIC:
        break;
    }
    if (!is_subscriber(h))
        return -EBADF;
    struct topic *t = h->t;
    ssize_t rc;
    pthread_mutex_lock(&t->lock);
    if (!h->cur) {
        uint64_t first = oldest_seq(t);
        if (h->seq < first)
            h->seq = first; /* fell behind the ring: skip what is gone */
        if (h->seq < t->next_seq) {
            h->cur = t->ring[h->seq % t->nring];
            h->cur->refs++;
            h->cur_off = 0;
            h->seq++;
        }
    }
    if (h->cur) {
        /* One message per read: its rest, or as much as fits. */
        size_t left = h->cur->len - h->cur_off;
        size_t n = left < size ? left : size;
        memcpy(buf, h->cur->data + h->cur_off, n);
        h->cur_off += n;
        if (h->cur_off == h->cur->len) {
            msg_put(h->cur);
            h->cur = NULL;
        }
        t->atime = ps_now(ps);
        rc = (ssize_t)n;
    } else if (!t->linked) {
        rc = 0; /* removed and all read: end of file */
    } else {
        rc = -EAGAIN; /* nothing yet: FS9 parks the read until notify */
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

static ssize_t ps_write(void *self, void *handle, const void *buf,
                        size_t size, uint64_t offset)
{
    struct pubsubfs *ps = self;
    struct ps_handle *h = handle;
    (void)offset; /* a message has no position */
    if (h->kind == K_ROOT)
        return -EISDIR;
    if (h->kind != K_TOPIC || !(h->flags & FS9_OPEN_WRITE))
        return -EBADF;
    if (size > ps->max_message)
        return -EMSGSIZE; /* see the header: nothing is published */
    if (size == 0)
        return 0;
    struct msg *m = malloc(sizeof *m + size);
    if (!m)
        return -ENOMEM;
    m->refs = 1;
    m->len = size;
    memcpy(m->data, buf, size);
    struct topic *t = h->t;
    pthread_mutex_lock(&t->lock);
    if (!t->linked) {
        pthread_mutex_unlock(&t->lock);
        free(m);
        return -EPIPE;
    }
    struct msg **slot = &t->ring[t->next_seq % t->nring];
    msg_put(*slot); /* the oldest, unless a subscriber is reading it */
    *slot = m;
    t->next_seq++;
    t->bytes += size;
    t->mtime = t->ctime = ps_now(ps);
    pthread_mutex_unlock(&t->lock);
    ps->host->notify(ps->host->ctx, t->name, FS9_NOTIFY_DATA);
    return (ssize_t)size;
}

static int ps_poll(void *self, void *handle, uint32_t events,
                   uint32_t *revents)
{
    struct ps_handle *h = handle;
    (void)self;
    *revents = 0;
    if (h->kind != K_TOPIC) {
        *revents = events & FS9_POLL_IN;
        return 0;
    }
    struct topic *t = h->t;
    pthread_mutex_lock(&t->lock);
    if ((events & FS9_POLL_IN) && is_subscriber(h) &&
        (h->cur || h->seq < t->next_seq || !t->linked))
        *revents |= FS9_POLL_IN;
    if ((events & FS9_POLL_OUT) && (h->flags & FS9_OPEN_WRITE) && t->linked)
        *revents |= FS9_POLL_OUT;
    if (!t->linked)
        *revents |= FS9_POLL_HUP;
    pthread_mutex_unlock(&t->lock);
    return 0;
}

/* ---- readdir, remove, rename ---- */

struct ps_batch {
    uint64_t cookie;
    struct fs9_attr attr;
    char name[PS_NAME_MAX + sizeof PS_INFO_SUFFIX];
};

static int ps_readdir(void *self, void *handle, uint64_t cookie,
                      uint32_t flags, fs9_dirent_fn emit, void *emit_arg)
{
    struct pubsubfs *ps = self;
    struct ps_handle *h = handle;
    (void)flags;
    if (h->kind != K_ROOT)
        return -ENOTDIR;
    if (cookie == 0) {
        struct fs9_dirent e = {.name = "README", .cookie = 1,
                               .full_attr = 1};
        fixed_attr(ps, K_README, &e.attr);
        int r = emit(emit_arg, &e);
        if (r != 0)
            return r < 0 ? r : 0;
        cookie = 1;
    }
    struct ps_batch *batch = malloc(2 * PS_BATCH * sizeof *batch);
    if (!batch)
        return -ENOMEM;
    int rc = 0;
    for (;;) {
        size_t n = 0, topics = 0;
        pthread_rwlock_rdlock(&ps->lock);
        /* Topic k is cookie 2k, its .info 2k+1: resume after `cookie`. */
        for (size_t i = order_after(ps, (cookie - 1) / 2);
             i < ps->count && topics < PS_BATCH; i++, topics++) {
            struct topic *t = ps->order[i];
            pthread_mutex_lock(&t->lock);
            if (2 * t->id > cookie) {
                batch[n].cookie = 2 * t->id;
                snprintf(batch[n].name, sizeof batch[n].name, "%s", t->name);
                topic_attr(t, &batch[n].attr);
                n++;
            }
            batch[n].cookie = 2 * t->id + 1;
            snprintf(batch[n].name, sizeof batch[n].name, "%s%s", t->name,
                     PS_INFO_SUFFIX);
            info_attr(ps, t, &batch[n].attr);
            n++;
            pthread_mutex_unlock(&t->lock);
        }
        pthread_rwlock_unlock(&ps->lock);
        for (size_t i = 0; i < n; i++) {
            struct fs9_dirent e = {.name = batch[i].name,
                                   .cookie = batch[i].cookie,
                                   .full_attr = 1,
                                   .attr = batch[i].attr};
            int r = emit(emit_arg, &e);
            if (r != 0) {
                rc = r < 0 ? r : 0;
                goto out;
            }
            cookie = batch[i].cookie;
        }
        if (topics < PS_BATCH)
            break;
    }
out:
    free(batch);
    return rc;
}

static int ps_remove(void *self, const struct fs9_ctx *ctx, const char *path,
                     uint32_t flags)
{
    struct pubsubfs *ps = self;
    (void)ctx;
    pthread_rwlock_wrlock(&ps->lock);
    struct topic *t;
    int kind = classify(ps, path, &t);
    int rc = 0;
    if (kind < 0) {
        rc = kind;
    } else if (kind == K_ROOT) {
        rc = (flags & FS9_REMOVE_DIR) ? -EBUSY : -EISDIR;
    } else if ((kind == K_TOPIC || kind == K_INFO) && !t) {
        rc = -ENOENT;
    } else if (flags & FS9_REMOVE_DIR) {
        rc = -ENOTDIR;
    } else if (kind != K_TOPIC) {
        rc = -EACCES; /* README and .info go with their topic only */
    } else {
        table_del(ps, t);
        struct timespec now = ps_now(ps);
        ps->root_mtime = now;
        pthread_mutex_lock(&t->lock);
        t->linked = false;
        t->ctime = now;
        bool gone = t->opens == 0;
        pthread_mutex_unlock(&t->lock);
        if (gone) {
            topic_free(t);
        } else {
            /* Subscribers waiting for messages get their end of file. */
            ps->host->notify(ps->host->ctx, t->name, FS9_NOTIFY_DATA);
        }
    }
    pthread_rwlock_unlock(&ps->lock);
    /* The .info went with the topic: drop the kernel's entry for it. */
    if (rc == 0) {
        char info[PS_NAME_MAX + sizeof PS_INFO_SUFFIX];
        snprintf(info, sizeof info, "%s%s", path, PS_INFO_SUFFIX);
        ps->host->notify(ps->host->ctx, info, FS9_NOTIFY_ENTRY);
    }
    return rc;
}

/* A parked subscriber waits on the name it opened; moving a topic would
 * strand it, and `mv`'s copy fallback would wait forever.  So: EPERM. */
static int ps_rename(void *self, const struct fs9_ctx *ctx, const char *from,
                     const char *to, uint32_t flags)
{
    struct pubsubfs *ps = self;
    (void)ctx;
    (void)to;
    (void)flags;
    pthread_rwlock_rdlock(&ps->lock);
    struct topic *t;
    int kind = classify(ps, from, &t);
    int rc;
    if (kind < 0)
        rc = kind;
    else if (kind == K_ROOT)
        rc = -EBUSY;
    else if ((kind == K_TOPIC || kind == K_INFO) && !t)
        rc = -ENOENT;
    else
        rc = -EPERM;
    pthread_rwlock_unlock(&ps->lock);
    return rc;
}

static const struct fs9_provider_ops pubsubfs_ops = {
    .abi_version = FS9_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct fs9_provider_ops),
    .name = "pubsubfs",
    .version = PS_VERSION,
    .description = "publish/subscribe topics: write publishes a message, "
                   "read subscribes",
    .create = ps_create,
    .destroy = ps_destroy,
    .capabilities = ps_capabilities,
    .stat = ps_stat,
    .wstat = ps_wstat,
    .statfs = ps_statfs,
    .open = ps_open,
    .read = ps_read,
    .write = ps_write,
    .close = ps_close,
    .readdir = ps_readdir,
    .remove = ps_remove,
    .rename = ps_rename,
    .poll = ps_poll,
};

__attribute__((visibility("default")))
const struct fs9_provider_ops *fs9_provider_entry(void);

const struct fs9_provider_ops *fs9_provider_entry(void)
{
    return &pubsubfs_ops;
}
