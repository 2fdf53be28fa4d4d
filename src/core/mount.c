/*
 * mount — the mount table: a trie of path components, read under RCU.
 *
 * Every node is one allocation: its name, the mount at that exact path (or
 * NULL for an inner node that only leads to deeper mounts) and its children
 * in an open-addressing hash table keyed by name (linear probing, at most
 * 3/4 full), so a node with 10,000 children resolves a component in O(1).
 *
 * Published nodes are never written.  A change copies the nodes along the
 * changed path — every other subtree is shared with the previous version —
 * and publishes the new root with one release store.  The replaced nodes
 * go on a retired list; they are freed after a grace period
 * (synchronize_rcu()), which the writer waits for once a few megabytes have
 * piled up or at the next removal.  Removal always waits for one before it
 * returns: the table's reference on the removed mount is handed to the
 * caller, who may drop it at once, so no reader may still be between
 * finding the mount and taking its own reference.  No call_rcu helper
 * thread is needed, which also keeps the table safe across fork().
 *
 * Readers use the bulletproof flavour, so any thread may resolve without
 * registering.  URCU_INLINE_SMALL_FUNCTIONS only inlines liburcu's
 * ten-line helpers (rcu_dereference and friends), which its README says any
 * licence may do; the read lock itself stays a library call.
 */
#define URCU_INLINE_SMALL_FUNCTIONS 1
#include <urcu-bp.h>

#include "core/mount.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ThreadSanitizer does not see the ordering liburcu provides (membarrier,
 * dependent loads), so under TSan the root is published and read with
 * explicit release/acquire and a grace period is described to it as
 * "every reader that has left its critical section happens before the
 * writer that waited".  The token is only an address for those notes. */
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
static char fs9__rcu_tsan_token;
#define FS9__READER_DONE() __tsan_release(&fs9__rcu_tsan_token)
#define FS9__GRACE_PERIOD_DONE() __tsan_acquire(&fs9__rcu_tsan_token)
#define FS9__PUBLISH(p, v) __atomic_store_n(&(p), (v), __ATOMIC_RELEASE)
#define FS9__DEREF(p) __atomic_load_n(&(p), __ATOMIC_ACQUIRE)
#else
#define FS9__READER_DONE() ((void)0)
#define FS9__GRACE_PERIOD_DONE() ((void)0)
#define FS9__PUBLISH(p, v) rcu_assign_pointer(p, v)
#define FS9__DEREF(p) rcu_dereference(p)
#endif

/* Wait for a grace period once this much retired memory has piled up. */
#define FS9__RETIRED_MAX_BYTES ((size_t)4 << 20)

/* ------------------------------------------------------------ refcounts */

void fs9_mount_ref(struct fs9_mount *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

void fs9_mount_unref(struct fs9_mount *m)
{
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1 &&
        m->release)
        m->release(m);
}

/* ---------------------------------------------------------------- paths */

int fs9_path_normalize(const char *in, char *out, size_t outlen)
{
    if (!in || in[0] != '/')
        return -EINVAL;
    if (outlen < 2)
        return -ENAMETOOLONG;
    /* Output never runs ahead of input, so in == out works too. */
    size_t o = 0;
    out[o++] = '/';
    const char *p = in;
    for (;;) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *s = p;
        while (*p && *p != '/')
            p++;
        size_t len = (size_t)(p - s);
        if (len == 1 && s[0] == '.')
            continue;
        if (len == 2 && s[0] == '.' && s[1] == '.')
            return -EINVAL;
        if (o > 1) {
            if (o + 1 >= outlen)
                return -ENAMETOOLONG;
            out[o++] = '/';
        }
        if (o + len >= outlen)
            return -ENAMETOOLONG;
        memmove(out + o, s, len);
        o += len;
    }
    out[o] = '\0';
    return 0;
}

static bool fs9__is_canonical(const char *p)
{
    if (p[0] != '/')
        return false;
    if (p[1] == '\0')
        return true;
    const char *s = p + 1;
    for (;;) {
        const char *e = s;
        while (*e && *e != '/')
            e++;
        size_t len = (size_t)(e - s);
        if (len == 0 || (len == 1 && s[0] == '.') ||
            (len == 2 && s[0] == '.' && s[1] == '.'))
            return false;
        if (!*e)
            return true;
        s = e + 1;
    }
}

/* FNV-1a over the component starting at p (up to '/' or the end), with a
 * final mix so that the low bits used as the table index depend on every
 * byte.  *len gets the component's length. */
static inline uint32_t fs9__component(const char *p, size_t *len)
{
    uint32_t h = 2166136261u;
    const char *q = p;
    while (*q && *q != '/') {
        h ^= (uint8_t)*q++;
        h *= 16777619u;
    }
    *len = (size_t)(q - p);
    h ^= h >> 15;
    h *= 0x2c1b3c6du;
    h ^= h >> 12;
    return h;
}

/* ----------------------------------------------------------------- trie */

struct fs9__trie_node {
    struct fs9_mount *mount; /* mounted exactly here (a reference), or NULL */
    /* Children by name hash: mask + 1 slots, NULL when empty; inside this
     * allocation.  NULL when the node has no children. */
    struct fs9__trie_node **slots;
    struct fs9__trie_node *retired_next; /* writer's list, once unpublished */
    uint32_t mask;
    uint32_t nchild;
    uint32_t hash; /* of name */
    uint32_t namelen;
    char name[]; /* NUL-terminated; "" for the root */
};

struct fs9_mount_table {
    struct fs9__trie_node *root; /* RCU-published; never NULL */
    pthread_mutex_t lock;        /* serializes writers */
    /* Unpublished nodes waiting for a grace period; writer-only. */
    struct fs9__trie_node *retired;
    size_t retired_bytes;
    atomic_size_t count;
};

static uint32_t fs9__cap_for(uint32_t nchild)
{
    if (nchild == 0)
        return 0;
    uint32_t cap = 2;
    while ((uint64_t)nchild * 4 > (uint64_t)cap * 3)
        cap <<= 1;
    return cap;
}

static size_t fs9__node_bytes(uint32_t namelen, uint32_t cap,
                              size_t *slots_at)
{
    size_t at = offsetof(struct fs9__trie_node, name) + namelen + 1;
    at = (at + sizeof(void *) - 1) & ~(sizeof(void *) - 1);
    if (slots_at)
        *slots_at = at;
    return at + (size_t)cap * sizeof(struct fs9__trie_node *);
}

static struct fs9__trie_node *fs9__node_alloc(const char *name,
                                              uint32_t namelen, uint32_t hash,
                                              struct fs9_mount *mount,
                                              uint32_t cap)
{
    size_t slots_at;
    size_t bytes = fs9__node_bytes(namelen, cap, &slots_at);
    struct fs9__trie_node *n = malloc(bytes);
    if (!n)
        return NULL;
    n->mount = mount;
    n->retired_next = NULL;
    n->nchild = 0;
    n->hash = hash;
    n->namelen = namelen;
    memcpy(n->name, name, namelen);
    n->name[namelen] = '\0';
    if (cap) {
        n->slots = (struct fs9__trie_node **)((char *)n + slots_at);
        n->mask = cap - 1;
        memset(n->slots, 0, (size_t)cap * sizeof(*n->slots));
    } else {
        n->slots = NULL;
        n->mask = 0;
    }
    return n;
}

static size_t fs9__node_size(const struct fs9__trie_node *n)
{
    return fs9__node_bytes(n->namelen, n->slots ? n->mask + 1 : 0, NULL);
}

static inline const struct fs9__trie_node *
fs9__child(const struct fs9__trie_node *n, const char *name, size_t len,
           uint32_t hash)
{
    if (!n->nchild)
        return NULL;
    for (uint32_t i = hash & n->mask;; i = (i + 1) & n->mask) {
        const struct fs9__trie_node *c = n->slots[i];
        if (!c)
            return NULL;
        if (c->hash == hash && c->namelen == len &&
            memcmp(c->name, name, len) == 0)
            return c;
    }
}

static void fs9__slots_insert(struct fs9__trie_node *n,
                              struct fs9__trie_node *c)
{
    uint32_t i = c->hash & n->mask;
    while (n->slots[i])
        i = (i + 1) & n->mask;
    n->slots[i] = c;
}

/* Backward-shift deletion of slot i (no tombstones). */
static void fs9__slots_delete(struct fs9__trie_node *n, uint32_t i)
{
    uint32_t mask = n->mask;
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        struct fs9__trie_node *c = n->slots[j];
        if (!c)
            break;
        uint32_t home = c->hash & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            n->slots[i] = c;
            i = j;
        }
    }
    n->slots[i] = NULL;
}

/* A copy of `old` with `mount`, and with child `old_child` replaced by
 * `new_child` (either may be NULL: add, remove, or no change of children).
 * The other children are shared, not copied.  NULL when out of memory. */
static struct fs9__trie_node *
fs9__node_derive(const struct fs9__trie_node *old, struct fs9_mount *mount,
                 const struct fs9__trie_node *old_child,
                 struct fs9__trie_node *new_child)
{
    uint32_t n = old->nchild;
    if (new_child && !old_child)
        n++;
    else if (old_child && !new_child)
        n--;
    uint32_t old_cap = old->slots ? old->mask + 1 : 0;
    uint32_t cap = fs9__cap_for(n);
    /* Shrink only when far too big, so add/remove around a size
     * boundary does not rehash every time. */
    if (cap < old_cap && n > 0 && (uint64_t)n * 8 >= old_cap)
        cap = old_cap;
    struct fs9__trie_node *c =
        fs9__node_alloc(old->name, old->namelen, old->hash, mount, cap);
    if (!c)
        return NULL;
    if (cap && cap == old_cap) {
        /* Same table size: copy it and patch the one slot. */
        memcpy(c->slots, old->slots, (size_t)cap * sizeof(*c->slots));
        if (old_child) {
            uint32_t i = old_child->hash & c->mask;
            while (c->slots[i] != old_child)
                i = (i + 1) & c->mask;
            if (new_child)
                c->slots[i] = new_child;
            else
                fs9__slots_delete(c, i);
        } else if (new_child) {
            fs9__slots_insert(c, new_child);
        }
    } else if (cap) {
        for (uint32_t i = 0; i < old_cap; i++)
            if (old->slots[i] && old->slots[i] != old_child)
                fs9__slots_insert(c, old->slots[i]);
        if (new_child)
            fs9__slots_insert(c, new_child);
    }
    c->nchild = n;
    return c;
}

/* One component of a path being changed, and its old and new node. */
struct fs9__step {
    const char *name;
    size_t len;
    uint32_t hash;
    struct fs9__trie_node *old; /* published node, or NULL */
    struct fs9__trie_node *new; /* its replacement, or NULL */
};

/* Split canonical `path` into steps[0] (the root) .. steps[*depth]. */
static struct fs9__step *fs9__split(const char *path, size_t *depth)
{
    size_t d = 0;
    if (path[1])
        for (const char *p = path; *p; p++)
            d += *p == '/';
    struct fs9__step *st = calloc(d + 1, sizeof(*st));
    if (!st)
        return NULL;
    st[0].name = "";
    const char *p = path + 1;
    for (size_t i = 1; i <= d; i++) {
        st[i].name = p;
        st[i].hash = fs9__component(p, &st[i].len);
        p += st[i].len + 1;
    }
    *depth = d;
    return st;
}

/* Fill steps[i].old as far as the published trie goes; returns the depth
 * of the last existing node.  Under the writer lock. */
static size_t fs9__find_old(struct fs9_mount_table *t, struct fs9__step *st,
                            size_t d)
{
    size_t k = 0;
    st[0].old = t->root;
    for (size_t i = 1; i <= d; i++) {
        st[i].old = (struct fs9__trie_node *)fs9__child(
            st[i - 1].old, st[i].name, st[i].len, st[i].hash);
        if (!st[i].old)
            break;
        k = i;
    }
    return k;
}

static void fs9__retire(struct fs9_mount_table *t, struct fs9__trie_node *n)
{
    n->retired_next = t->retired;
    t->retired = n;
    t->retired_bytes += fs9__node_size(n);
}

/* Wait until no reader can hold a retired node, then free them all. */
static void fs9__reclaim(struct fs9_mount_table *t)
{
    synchronize_rcu();
    FS9__GRACE_PERIOD_DONE();
    while (t->retired) {
        struct fs9__trie_node *n = t->retired;
        t->retired = n->retired_next;
        free(n);
    }
    t->retired_bytes = 0;
}

struct fs9_mount_table *fs9_mount_table_new(void)
{
    struct fs9_mount_table *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->root = fs9__node_alloc("", 0, 0, NULL, 0);
    if (!t->root) {
        free(t);
        return NULL;
    }
    pthread_mutex_init(&t->lock, NULL);
    atomic_init(&t->count, 0);
    return t;
}

static void fs9__free_tree(struct fs9__trie_node *n)
{
    for (uint32_t i = 0; n->slots && i <= n->mask; i++)
        if (n->slots[i])
            fs9__free_tree(n->slots[i]);
    if (n->mount)
        fs9_mount_unref(n->mount);
    free(n);
}

void fs9_mount_table_free(struct fs9_mount_table *t)
{
    if (!t)
        return;
    /* Nobody may use the table any more, so nothing needs to wait. */
    while (t->retired) {
        struct fs9__trie_node *n = t->retired;
        t->retired = n->retired_next;
        free(n);
    }
    fs9__free_tree(t->root);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

int fs9_mount_table_add(struct fs9_mount_table *t, struct fs9_mount *m)
{
    if (!t || !m || !m->path || !fs9__is_canonical(m->path))
        return -EINVAL;
    size_t d;
    struct fs9__step *st = fs9__split(m->path, &d);
    if (!st)
        return -ENOMEM;
    int rc = 0;
    pthread_mutex_lock(&t->lock);
    size_t k = fs9__find_old(t, st, d);
    if (k == d && st[d].old->mount) {
        rc = -EEXIST;
        goto out;
    }
    /* Build the new path bottom-up: the leaf gets the mount, each parent
     * a copy pointing at the new child. */
    for (size_t i = d;; i--) {
        struct fs9__trie_node *child = i < d ? st[i + 1].new : NULL;
        if (st[i].old) {
            st[i].new = fs9__node_derive(st[i].old,
                                         i == d ? m : st[i].old->mount,
                                         i < d ? st[i + 1].old : NULL, child);
        } else {
            st[i].new = fs9__node_alloc(st[i].name, (uint32_t)st[i].len,
                                        st[i].hash, i == d ? m : NULL,
                                        fs9__cap_for(child ? 1 : 0));
            if (st[i].new && child) {
                fs9__slots_insert(st[i].new, child);
                st[i].new->nchild = 1;
            }
        }
        if (!st[i].new) {
            for (size_t j = i + 1; j <= d; j++)
                free(st[j].new);
            rc = -ENOMEM;
            goto out;
        }
        if (i == 0)
            break;
    }
    fs9_mount_ref(m);
    FS9__PUBLISH(t->root, st[0].new);
    atomic_fetch_add_explicit(&t->count, 1, memory_order_relaxed);
    for (size_t i = 0; i <= k; i++)
        fs9__retire(t, st[i].old);
    if (t->retired_bytes > FS9__RETIRED_MAX_BYTES)
        fs9__reclaim(t);
out:
    pthread_mutex_unlock(&t->lock);
    free(st);
    return rc;
}

int fs9_mount_table_remove(struct fs9_mount_table *t, const char *path,
                           int (*check)(struct fs9_mount *m, void *arg),
                           void *arg, struct fs9_mount **out)
{
    if (out)
        *out = NULL;
    if (!t || !path)
        return -EINVAL;
    size_t plen = strlen(path);
    char *canon = malloc(plen + 2);
    if (!canon)
        return -ENOMEM;
    int rc = fs9_path_normalize(path, canon, plen + 2);
    if (rc < 0) {
        free(canon);
        return rc;
    }
    size_t d;
    struct fs9__step *st = fs9__split(canon, &d);
    if (!st) {
        free(canon);
        return -ENOMEM;
    }
    pthread_mutex_lock(&t->lock);
    struct fs9_mount *m = NULL;
    if (fs9__find_old(t, st, d) != d || !(m = st[d].old->mount)) {
        rc = -ENOENT;
        goto out;
    }
    if (check && (rc = check(m, arg)) != 0)
        goto out;
    /* Bottom-up again; a node left with neither mount nor children is
     * pruned (new == NULL), and so is every inner parent that only led to
     * it.  The root always stays. */
    for (size_t i = d;; i--) {
        struct fs9__trie_node *o = st[i].old;
        bool prune;
        if (i == d)
            prune = i > 0 && o->nchild == 0;
        else
            prune = i > 0 && !st[i + 1].new && !o->mount && o->nchild == 1;
        if (!prune) {
            st[i].new = fs9__node_derive(o, i == d ? NULL : o->mount,
                                         i == d ? NULL : st[i + 1].old,
                                         i == d ? NULL : st[i + 1].new);
            if (!st[i].new) {
                for (size_t j = i + 1; j <= d; j++)
                    free(st[j].new);
                rc = -ENOMEM;
                goto out;
            }
        }
        if (i == 0)
            break;
    }
    FS9__PUBLISH(t->root, st[0].new);
    atomic_fetch_sub_explicit(&t->count, 1, memory_order_relaxed);
    for (size_t i = 0; i <= d; i++)
        fs9__retire(t, st[i].old);
    /* After this no reader can still reach m without a reference. */
    fs9__reclaim(t);
    if (out)
        *out = m; /* the table's reference */
    else
        fs9_mount_unref(m);
    rc = 0;
out:
    pthread_mutex_unlock(&t->lock);
    free(st);
    free(canon);
    return rc;
}

struct fs9_mount *fs9_mount_table_resolve(struct fs9_mount_table *t,
                                          const char *path, const char **rel,
                                          unsigned *flags)
{
    if (rel)
        *rel = NULL;
    if (flags)
        *flags = 0;
    if (!path || path[0] != '/')
        return NULL;
    rcu_read_lock();
    const struct fs9__trie_node *n = FS9__DEREF(t->root);
    const struct fs9__trie_node *best_node = n;
    struct fs9_mount *best = n->mount;
    const char *p = path + 1;
    const char *best_rel = p;
    bool whole = true;
    while (*p) {
        size_t len;
        uint32_t h = fs9__component(p, &len);
        const struct fs9__trie_node *c = fs9__child(n, p, len, h);
        if (!c) {
            whole = false;
            break;
        }
        n = c;
        p += len;
        if (*p == '/')
            p++;
        if (n->mount) {
            best = n->mount;
            best_node = n;
            best_rel = p;
        }
    }
    unsigned f = 0;
    if (whole) {
        if (best && best_node == n)
            f |= FS9_RESOLVE_MOUNTPOINT;
        if (n->nchild)
            f |= FS9_RESOLVE_INNER;
    }
    if (best)
        fs9_mount_ref(best);
    FS9__READER_DONE();
    rcu_read_unlock();
    if (flags)
        *flags = f;
    if (best && rel)
        *rel = best_rel;
    return best;
}

/* The node for exactly `path`, or NULL.  Inside a read-side section. */
static const struct fs9__trie_node *fs9__walk(const struct fs9__trie_node *n,
                                              const char *path)
{
    if (!path || path[0] != '/')
        return NULL;
    const char *p = path + 1;
    while (*p) {
        size_t len;
        uint32_t h = fs9__component(p, &len);
        n = fs9__child(n, p, len, h);
        if (!n)
            return NULL;
        p += len;
        if (*p == '/')
            p++;
    }
    return n;
}

int fs9_mount_table_children(struct fs9_mount_table *t, const char *dirpath,
                             int (*fn)(void *arg, const char *name),
                             void *arg)
{
    int rc = 0;
    rcu_read_lock();
    const struct fs9__trie_node *n = fs9__walk(FS9__DEREF(t->root), dirpath);
    for (uint32_t i = 0; n && n->nchild && i <= n->mask; i++) {
        const struct fs9__trie_node *c = n->slots[i];
        if (!c)
            continue;
        int r = fn ? fn(arg, c->name) : 0;
        if (r) {
            rc = r;
            break;
        }
        rc++;
    }
    FS9__READER_DONE();
    rcu_read_unlock();
    return rc;
}

int fs9_mount_table_has_child(struct fs9_mount_table *t, const char *dirpath,
                              const char *name)
{
    if (!name || !*name || strchr(name, '/'))
        return 0;
    rcu_read_lock();
    const struct fs9__trie_node *n = fs9__walk(FS9__DEREF(t->root), dirpath);
    size_t len;
    uint32_t h = fs9__component(name, &len);
    int found = n && fs9__child(n, name, len, h) != NULL;
    FS9__READER_DONE();
    rcu_read_unlock();
    return found;
}

struct fs9__mount_list {
    struct fs9_mount **v; /* each holds a reference */
    size_t n;
};

static void fs9__collect(const struct fs9__trie_node *n,
                         struct fs9__mount_list *l)
{
    if (n->mount) {
        fs9_mount_ref(n->mount);
        l->v[l->n++] = n->mount;
    }
    for (uint32_t i = 0; n->slots && i <= n->mask; i++)
        if (n->slots[i])
            fs9__collect(n->slots[i], l);
}

/* Path order: component by component, so "/a/b" sorts right after "/a"
 * and before "/a-b" ('/' sorts before every other byte). */
static int fs9__path_cmp(const void *a, const void *b)
{
    const unsigned char *x =
        (const unsigned char *)(*(struct fs9_mount *const *)a)->path;
    const unsigned char *y =
        (const unsigned char *)(*(struct fs9_mount *const *)b)->path;
    while (*x && *x == *y) {
        x++;
        y++;
    }
    int cx = *x == '/' ? 1 : *x ? *x + 1 : 0;
    int cy = *y == '/' ? 1 : *y ? *y + 1 : 0;
    return cx - cy;
}

int fs9_mount_table_foreach(struct fs9_mount_table *t,
                            int (*fn)(void *arg, struct fs9_mount *m),
                            void *arg)
{
    /* Snapshot under the writer lock, then call fn with no lock held, so
     * fn may even add or remove mounts. */
    pthread_mutex_lock(&t->lock);
    size_t n = atomic_load_explicit(&t->count, memory_order_relaxed);
    struct fs9__mount_list l = {.v = malloc((n ? n : 1) * sizeof(*l.v))};
    if (!l.v) {
        pthread_mutex_unlock(&t->lock);
        return -ENOMEM;
    }
    fs9__collect(t->root, &l);
    pthread_mutex_unlock(&t->lock);
    qsort(l.v, l.n, sizeof(*l.v), fs9__path_cmp);
    int rc = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (rc == 0 && fn)
            rc = fn(arg, l.v[i]);
        fs9_mount_unref(l.v[i]);
    }
    free(l.v);
    return rc;
}

size_t fs9_mount_table_count(struct fs9_mount_table *t)
{
    return atomic_load_explicit(&t->count, memory_order_relaxed);
}
