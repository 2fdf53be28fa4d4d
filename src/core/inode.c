/* inode — see inode.h.
 *
 * Two indexes, both under the table's rwlock:
 *   entries: (parent id, name) -> struct entry, each entry naming one node;
 *   objects: ino -> node, so a second name of a file finds its node.
 * A node's entries form a list; the first one is used to build its path
 * (any of them leads to the same object).
 */
#include "core/inode.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/idmap.h"

struct node;

struct entry {
    struct node *node;   /* what the entry names */
    struct node *parent; /* pinned: parent->pins counts this entry */
    char *name;          /* owned */
    uint64_t hash;       /* of (parent id, name) */
    struct entry *hnext; /* entries index chain */
    struct entry *next;  /* the node's list of entries */
};

struct node {
    uint64_t id;
    uint64_t ino;
    uint32_t type;
    uint32_t in_objects; /* in the ino index */
    /* Lookups the kernel holds.  Added to under the read lock (atomically:
     * several readers at once), taken from and tested under the write lock
     * (alone). */
    _Atomic uint64_t nlookup;
    uint64_t pins;          /* entries that name this node as parent */
    struct entry *entries;  /* NULL: detached (or the root) */
    struct node *onext;     /* ino index chain */
    /* Handles open on the node, under the handle stripe lock. */
    uint32_t nfh;
    uint32_t capfh;
    uint64_t *fhs; /* owned */
};

#define FH_STRIPES 64

struct hash_index {
    void **buckets; /* a power of two of chains */
    size_t nbuckets;
    size_t count;
};

struct fs9_inode_table {
    pthread_rwlock_t lock; /* everything but the handle lists */
    struct fs9_idmap *ids; /* nodeid -> node */
    struct hash_index entries; /* chains of struct entry (hnext) */
    struct hash_index objects; /* chains of struct node (onext) */
    struct node *root;
    pthread_mutex_t fh_lock[FH_STRIPES];
};

/* ---- hashing ---- */

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static uint64_t entry_hash(uint64_t parent, const char *name)
{
    uint64_t h = 1469598103934665603ULL ^ (parent * 0x9E3779B97F4A7C15ULL);
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return mix(h);
}

static int index_init(struct hash_index *ix, size_t n)
{
    ix->buckets = calloc(n, sizeof *ix->buckets);
    ix->nbuckets = n;
    ix->count = 0;
    return ix->buckets ? 0 : -ENOMEM;
}

/* Grow when chains get long; `next_of` finds a chain link's successor. */
static void entries_grow(struct hash_index *ix)
{
    size_t n = ix->nbuckets * 2;
    void **nb = calloc(n, sizeof *nb);
    if (!nb)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < ix->nbuckets; i++) {
        struct entry *e = ix->buckets[i];
        while (e) {
            struct entry *next = e->hnext;
            e->hnext = nb[e->hash & (n - 1)];
            nb[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(ix->buckets);
    ix->buckets = nb;
    ix->nbuckets = n;
}

static void objects_grow(struct hash_index *ix)
{
    size_t n = ix->nbuckets * 2;
    void **nb = calloc(n, sizeof *nb);
    if (!nb)
        return;
    for (size_t i = 0; i < ix->nbuckets; i++) {
        struct node *o = ix->buckets[i];
        while (o) {
            struct node *next = o->onext;
            size_t b = mix(o->ino) & (n - 1);
            o->onext = nb[b];
            nb[b] = o;
            o = next;
        }
    }
    free(ix->buckets);
    ix->buckets = nb;
    ix->nbuckets = n;
}

/* ---- the entries index ---- */

static void entry_index(struct fs9_inode_table *t, struct entry *e)
{
    if (t->entries.count + 1 > t->entries.nbuckets)
        entries_grow(&t->entries);
    e->hash = entry_hash(e->parent->id, e->name);
    void **b = &t->entries.buckets[e->hash & (t->entries.nbuckets - 1)];
    e->hnext = *b;
    *b = e;
    t->entries.count++;
}

static void entry_unindex(struct fs9_inode_table *t, struct entry *e)
{
    struct entry **p =
        (struct entry **)&t->entries.buckets[e->hash &
                                             (t->entries.nbuckets - 1)];
    for (; *p; p = &(*p)->hnext) {
        if (*p == e) {
            *p = e->hnext;
            e->hnext = NULL;
            t->entries.count--;
            return;
        }
    }
}

static struct entry *entry_find(struct fs9_inode_table *t, uint64_t parent,
                                const char *name)
{
    uint64_t h = entry_hash(parent, name);
    for (struct entry *e =
             t->entries.buckets[h & (t->entries.nbuckets - 1)];
         e; e = e->hnext)
        if (e->hash == h && e->parent->id == parent &&
            strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

/* ---- the objects index ---- */

static void object_index(struct fs9_inode_table *t, struct node *n)
{
    if (t->objects.count + 1 > t->objects.nbuckets)
        objects_grow(&t->objects);
    void **b = &t->objects.buckets[mix(n->ino) & (t->objects.nbuckets - 1)];
    n->onext = *b;
    *b = n;
    n->in_objects = 1;
    t->objects.count++;
}

static void object_unindex(struct fs9_inode_table *t, struct node *n)
{
    if (!n->in_objects)
        return;
    struct node **p =
        (struct node **)&t->objects.buckets[mix(n->ino) &
                                            (t->objects.nbuckets - 1)];
    for (; *p; p = &(*p)->onext) {
        if (*p == n) {
            *p = n->onext;
            n->onext = NULL;
            n->in_objects = 0;
            t->objects.count--;
            return;
        }
    }
}

static struct node *object_find(struct fs9_inode_table *t, uint64_t ino)
{
    for (struct node *o = t->objects.buckets[mix(ino) &
                                             (t->objects.nbuckets - 1)];
         o; o = o->onext)
        if (o->ino == ino)
            return o;
    return NULL;
}

/* ---- nodes and their entries ---- */

static void release_chain(struct fs9_inode_table *t, struct node *n);

/* Take entry `e` off its node and out of the index; unpin its parent (which
 * may free it).  Write lock held. */
static void entry_drop(struct fs9_inode_table *t, struct entry *e)
{
    struct node *n = e->node;
    for (struct entry **p = &n->entries; *p; p = &(*p)->next) {
        if (*p == e) {
            *p = e->next;
            break;
        }
    }
    entry_unindex(t, e);
    struct node *parent = e->parent;
    free(e->name);
    free(e);
    parent->pins--;
    release_chain(t, parent);
}

static int entry_add(struct fs9_inode_table *t, struct node *n,
                     struct node *parent, const char *name)
{
    struct entry *e = calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    e->name = strdup(name);
    if (!e->name) {
        free(e);
        return -ENOMEM;
    }
    e->node = n;
    e->parent = parent;
    parent->pins++;
    e->next = n->entries;
    n->entries = e;
    entry_index(t, e);
    return 0;
}

/* Free `n` if neither the kernel nor any child holds it, then whatever that
 * leaves unheld above it.  Write lock held. */
static void release_chain(struct fs9_inode_table *t, struct node *n)
{
    if (n == t->root || n->nlookup != 0 || n->pins != 0)
        return;
    object_unindex(t, n);
    fs9_idmap_remove(t->ids, n->id, NULL, NULL);
    /* Dropping its entries unpins (and may free) its parents. */
    while (n->entries)
        entry_drop(t, n->entries);
    free(n->fhs);
    free(n);
}

static struct node *get(struct fs9_inode_table *t, uint64_t id)
{
    return fs9_idmap_get(t->ids, id, NULL, NULL);
}

/* ---- the table ---- */

struct fs9_inode_table *fs9_inode_table_new(void)
{
    struct fs9_inode_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    if (index_init(&t->entries, 1024) < 0 ||
        index_init(&t->objects, 1024) < 0)
        goto fail;
    t->ids = fs9_idmap_new(FS9_ROOT_NODEID + 1);
    t->root = calloc(1, sizeof *t->root);
    if (!t->ids || !t->root)
        goto fail;
    t->root->id = FS9_ROOT_NODEID;
    t->root->type = 0040000; /* S_IFDIR */
    t->root->nlookup = 1;    /* the kernel holds the root for the mount */
    if (fs9_idmap_insert(t->ids, FS9_ROOT_NODEID, t->root) != 0)
        goto fail;
    pthread_rwlock_init(&t->lock, NULL);
    for (int i = 0; i < FH_STRIPES; i++)
        pthread_mutex_init(&t->fh_lock[i], NULL);
    return t;
fail:
    if (t->ids)
        fs9_idmap_free(t->ids);
    free(t->entries.buckets);
    free(t->objects.buckets);
    free(t->root);
    free(t);
    return NULL;
}

static int free_one(uint64_t id, void *value, void *arg)
{
    (void)id;
    (void)arg;
    struct node *n = value;
    while (n->entries) {
        struct entry *e = n->entries;
        n->entries = e->next;
        free(e->name);
        free(e);
    }
    free(n->fhs);
    free(n);
    return 0;
}

void fs9_inode_table_free(struct fs9_inode_table *t)
{
    if (!t)
        return;
    fs9_idmap_foreach(t->ids, free_one, NULL);
    fs9_idmap_free(t->ids);
    free(t->entries.buckets);
    free(t->objects.buckets);
    pthread_rwlock_destroy(&t->lock);
    for (int i = 0; i < FH_STRIPES; i++)
        pthread_mutex_destroy(&t->fh_lock[i]);
    free(t);
}

int fs9_inode_path(struct fs9_inode_table *t, uint64_t id, const char *name,
                   char *buf, size_t size)
{
    int ret;
    pthread_rwlock_rdlock(&t->lock);
    struct node *n = get(t, id);
    if (!n) {
        ret = -ESTALE;
        goto out;
    }
    /* Measure first, then fill from the end backwards. */
    size_t len = name ? strlen(name) + 1 : 0;
    for (struct node *p = n; p != t->root; p = p->entries->parent) {
        if (!p->entries) {
            ret = -ENOENT;
            goto out;
        }
        len += strlen(p->entries->name) + 1;
    }
    if (len == 0)
        len = 1; /* "/" */
    if (len + 1 > size) {
        ret = -ENAMETOOLONG;
        goto out;
    }
    buf[len] = '\0';
    size_t pos = len;
    if (name) {
        size_t l = strlen(name);
        pos -= l;
        memcpy(buf + pos, name, l);
        buf[--pos] = '/';
    }
    for (struct node *p = n; p != t->root; p = p->entries->parent) {
        size_t l = strlen(p->entries->name);
        pos -= l;
        memcpy(buf + pos, p->entries->name, l);
        buf[--pos] = '/';
    }
    if (len == 1)
        buf[0] = '/';
    ret = (int)len;
out:
    pthread_rwlock_unlock(&t->lock);
    return ret;
}

uint64_t fs9_inode_enter(struct fs9_inode_table *t, uint64_t parent,
                         const char *name, uint64_t ino, uint32_t type,
                         uint64_t count)
{
    uint64_t id = 0;
    /* The common case, an entry the kernel already knows, needs no
     * exclusive lock: a node cannot be freed while we hold the read lock. */
    pthread_rwlock_rdlock(&t->lock);
    struct entry *known = entry_find(t, parent, name);
    if (known && known->node->ino == ino && known->node->type == type) {
        atomic_fetch_add(&known->node->nlookup, count);
        id = known->node->id;
    }
    pthread_rwlock_unlock(&t->lock);
    if (id || count == 0)
        return id;

    pthread_rwlock_wrlock(&t->lock);
    struct node *p = get(t, parent);
    if (!p)
        goto out;
    struct entry *e = entry_find(t, parent, name);
    if (e && e->node->ino == ino && e->node->type == type) {
        e->node->nlookup += count;
        id = e->node->id;
        goto out;
    }
    /* Pin the parent while the old entry goes, so it cannot be freed. */
    p->pins++;
    if (e) /* the entry now names another object */
        entry_drop(t, e);
    struct node *n = object_find(t, ino);
    if (n && n->type != type) {
        /* The number was reused for another kind of object. */
        object_unindex(t, n);
        n = NULL;
    }
    if (n && (type & 0170000) == 0040000) {
        /* A directory has one name: it was moved behind our back. */
        while (n->entries)
            entry_drop(t, n->entries);
    }
    int fresh = 0;
    if (!n) {
        n = calloc(1, sizeof *n);
        if (!n)
            goto unpin;
        n->id = fs9_idmap_next_id(t->ids);
        n->ino = ino;
        n->type = type;
        if (fs9_idmap_insert(t->ids, n->id, n) != 0) {
            free(n);
            goto unpin;
        }
        object_index(t, n);
        fresh = 1;
    }
    if (entry_add(t, n, p, name) != 0) {
        if (fresh)
            release_chain(t, n);
        goto unpin;
    }
    n->nlookup += count;
    id = n->id;
unpin:
    p->pins--;
    release_chain(t, p);
out:
    pthread_rwlock_unlock(&t->lock);
    return id;
}

void fs9_inode_forget(struct fs9_inode_table *t, uint64_t id, uint64_t count)
{
    if (id == FS9_ROOT_NODEID)
        return;
    pthread_rwlock_wrlock(&t->lock);
    struct node *n = get(t, id);
    if (n) {
        n->nlookup = count >= n->nlookup ? 0 : n->nlookup - count;
        release_chain(t, n);
    }
    pthread_rwlock_unlock(&t->lock);
}

uint64_t fs9_inode_find(struct fs9_inode_table *t, uint64_t parent,
                        const char *name)
{
    pthread_rwlock_rdlock(&t->lock);
    struct entry *e = entry_find(t, parent, name);
    uint64_t id = e ? e->node->id : 0;
    pthread_rwlock_unlock(&t->lock);
    return id;
}

void fs9_inode_unlink(struct fs9_inode_table *t, uint64_t parent,
                      const char *name)
{
    pthread_rwlock_wrlock(&t->lock);
    struct entry *e = entry_find(t, parent, name);
    if (e)
        entry_drop(t, e);
    pthread_rwlock_unlock(&t->lock);
}

/* Point entry `e` at (newparent, newname). */
static int entry_move(struct fs9_inode_table *t, struct entry *e,
                      struct node *newparent, const char *newname)
{
    char *copy = strdup(newname);
    if (!copy)
        return -ENOMEM;
    entry_unindex(t, e);
    free(e->name);
    e->name = copy;
    struct node *old = e->parent;
    newparent->pins++;
    e->parent = newparent;
    entry_index(t, e);
    old->pins--;
    release_chain(t, old);
    return 0;
}

void fs9_inode_rename(struct fs9_inode_table *t, uint64_t parent,
                      const char *name, uint64_t newparent,
                      const char *newname, int exchange)
{
    pthread_rwlock_wrlock(&t->lock);
    struct node *np = get(t, newparent);
    struct node *op = get(t, parent);
    if (!np || !op)
        goto out;
    struct entry *src = entry_find(t, parent, name);
    struct entry *dst = entry_find(t, newparent, newname);
    if (src && dst && src->node == dst->node && !exchange)
        goto out; /* two links of one object: rename(2) does nothing */
    /* Pin both parents across the change so neither is freed midway. */
    op->pins++;
    np->pins++;
    if (exchange) {
        if (src && dst) {
            struct node *sn = src->node, *dn = dst->node;
            /* Swap what the two entries name. */
            for (struct entry **pp = &sn->entries; *pp; pp = &(*pp)->next)
                if (*pp == src) {
                    *pp = src->next;
                    break;
                }
            for (struct entry **pp = &dn->entries; *pp; pp = &(*pp)->next)
                if (*pp == dst) {
                    *pp = dst->next;
                    break;
                }
            src->node = dn;
            src->next = dn->entries;
            dn->entries = src;
            dst->node = sn;
            dst->next = sn->entries;
            sn->entries = dst;
        } else if (src) {
            entry_drop(t, src);
        } else if (dst) {
            entry_drop(t, dst);
        }
    } else {
        if (dst)
            entry_drop(t, dst);
        if (src && entry_move(t, src, np, newname) != 0)
            entry_drop(t, src); /* out of memory: forget it, stay correct */
    }
    op->pins--;
    np->pins--;
    release_chain(t, op);
    release_chain(t, np);
out:
    pthread_rwlock_unlock(&t->lock);
}

int fs9_inode_info(struct fs9_inode_table *t, uint64_t id, uint64_t *ino,
                   uint32_t *type)
{
    int ret = -ESTALE;
    pthread_rwlock_rdlock(&t->lock);
    struct node *n = get(t, id);
    if (n) {
        if (ino)
            *ino = n->ino;
        if (type)
            *type = n->type;
        ret = 0;
    }
    pthread_rwlock_unlock(&t->lock);
    return ret;
}

void fs9_inode_handle_add(struct fs9_inode_table *t, uint64_t id, uint64_t fh)
{
    pthread_rwlock_rdlock(&t->lock);
    struct node *n = get(t, id);
    if (n) {
        pthread_mutex_t *l = &t->fh_lock[id % FH_STRIPES];
        pthread_mutex_lock(l);
        if (n->nfh == n->capfh) {
            uint32_t cap = n->capfh ? n->capfh * 2 : 2;
            uint64_t *v = realloc(n->fhs, cap * sizeof *v);
            if (v) {
                n->fhs = v;
                n->capfh = cap;
            }
        }
        if (n->nfh < n->capfh)
            n->fhs[n->nfh++] = fh;
        pthread_mutex_unlock(l);
    }
    pthread_rwlock_unlock(&t->lock);
}

void fs9_inode_handle_del(struct fs9_inode_table *t, uint64_t id, uint64_t fh)
{
    pthread_rwlock_rdlock(&t->lock);
    struct node *n = get(t, id);
    if (n) {
        pthread_mutex_t *l = &t->fh_lock[id % FH_STRIPES];
        pthread_mutex_lock(l);
        for (uint32_t i = 0; i < n->nfh; i++) {
            if (n->fhs[i] == fh) {
                n->fhs[i] = n->fhs[--n->nfh];
                break;
            }
        }
        pthread_mutex_unlock(l);
    }
    pthread_rwlock_unlock(&t->lock);
}

uint64_t fs9_inode_handle_any(struct fs9_inode_table *t, uint64_t id)
{
    uint64_t fh = 0;
    pthread_rwlock_rdlock(&t->lock);
    struct node *n = get(t, id);
    if (n) {
        pthread_mutex_t *l = &t->fh_lock[id % FH_STRIPES];
        pthread_mutex_lock(l);
        if (n->nfh)
            fh = n->fhs[n->nfh - 1];
        pthread_mutex_unlock(l);
    }
    pthread_rwlock_unlock(&t->lock);
    return fh;
}

size_t fs9_inode_count(struct fs9_inode_table *t)
{
    return fs9_idmap_count(t->ids);
}
