/*
 * handle — the registry of open handles, on top of idmap.
 *
 * The registry owns one reference per registered handle.  acquire() adds
 * the caller's reference inside the shard lock (through the idmap found
 * callback), and take() removes the id under that same lock, so there is
 * no window in which a handle is found but already on its way to close:
 * either acquire() runs first and holds a reference the closer must wait
 * for, or take() runs first and acquire() finds nothing.
 */
#include "core/handle.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "core/idmap.h"

struct fs9_registry {
    struct fs9_idmap *map; /* owned; values are borrowed handles */
    fs9_handle_close_fn on_close;
    void *arg;
};

uint32_t fs9_coarse_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint32_t)ts.tv_sec;
}

struct fs9_registry *fs9_registry_new(fs9_handle_close_fn on_close,
                                      void *arg)
{
    struct fs9_registry *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->map = fs9_idmap_new(1);
    if (!r->map) {
        free(r);
        return NULL;
    }
    r->on_close = on_close;
    r->arg = arg;
    return r;
}

void fs9_registry_free(struct fs9_registry *r)
{
    if (!r)
        return;
    fs9_idmap_free(r->map);
    free(r);
}

uint64_t fs9_registry_add(struct fs9_registry *r, struct fs9_handle *h)
{
    atomic_store_explicit(&h->refs, 1, memory_order_relaxed);
    atomic_store_explicit(&h->last_access, fs9_coarse_seconds(),
                          memory_order_relaxed);
    uint64_t id = fs9_idmap_next_id(r->map);
    h->id = id;
    /* The insert publishes h: the shard lock orders the writes above
     * before any acquire() that finds it. */
    if (fs9_idmap_insert(r->map, id, h) < 0) {
        h->id = 0;
        return 0;
    }
    return id;
}

/* Runs under the shard lock: the handle cannot be taken meanwhile. */
static void fs9__registry_ref(void *value, void *arg)
{
    (void)arg;
    struct fs9_handle *h = value;
    atomic_fetch_add_explicit(&h->refs, 1, memory_order_relaxed);
}

struct fs9_handle *fs9_registry_acquire(struct fs9_registry *r, uint64_t id)
{
    struct fs9_handle *h = fs9_idmap_get(r->map, id, fs9__registry_ref, NULL);
    if (h) {
        /* Store only when the second changes, so threads sharing a
         * handle do not keep stealing its cache line from each other. */
        uint32_t now = fs9_coarse_seconds();
        if (atomic_load_explicit(&h->last_access, memory_order_relaxed) !=
            now)
            atomic_store_explicit(&h->last_access, now,
                                  memory_order_relaxed);
    }
    return h;
}

void fs9_registry_release(struct fs9_registry *r, struct fs9_handle *h)
{
    /* acq_rel: every use of h by earlier holders happens before close. */
    if (atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel) == 1 &&
        r->on_close)
        r->on_close(h, r->arg);
}

struct fs9_handle *fs9_registry_take(struct fs9_registry *r, uint64_t id)
{
    return fs9_idmap_remove(r->map, id, NULL, NULL);
}

size_t fs9_registry_count(struct fs9_registry *r)
{
    return fs9_idmap_count(r->map);
}

size_t fs9_registry_memory(struct fs9_registry *r)
{
    return sizeof(*r) + fs9_idmap_memory(r->map);
}

struct fs9__collect {
    int (*match)(const struct fs9_handle *h, void *arg);
    void *arg;
    uint64_t *ids; /* owned until handed to the caller */
    size_t n, cap;
};

/* Under a shard lock: realloc is fine, calling the registry is not. */
static int fs9__collect_id(uint64_t id, void *value, void *arg)
{
    struct fs9__collect *c = arg;
    if (c->match && !c->match(value, c->arg))
        return 0;
    if (c->n == c->cap) {
        size_t cap = c->cap * 2;
        uint64_t *ids = realloc(c->ids, cap * sizeof(*ids));
        if (!ids)
            return -ENOMEM;
        c->ids = ids;
        c->cap = cap;
    }
    c->ids[c->n++] = id;
    return 0;
}

uint64_t *fs9_registry_ids(struct fs9_registry *r,
                           int (*match)(const struct fs9_handle *h,
                                        void *arg),
                           void *arg, size_t *count)
{
    struct fs9__collect c = {.match = match, .arg = arg};
    *count = 0;
    /* Room for everything present now plus some that arrive meanwhile. */
    c.cap = fs9_idmap_count(r->map) + 16;
    c.ids = malloc(c.cap * sizeof(*c.ids));
    if (!c.ids)
        return NULL;
    if (fs9_idmap_foreach(r->map, fs9__collect_id, &c) != 0) {
        free(c.ids);
        return NULL;
    }
    *count = c.n;
    return c.ids;
}
