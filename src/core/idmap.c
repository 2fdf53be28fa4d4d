/*
 * idmap — u64 id → pointer, in 64 shards of open-addressing tables.
 *
 * Each shard is a power-of-two array of {id, value} slots probed linearly
 * from a Fibonacci hash of id >> 6 (the low six bits name the shard and are
 * the same for every id in it).  Id 0 marks an empty slot: ids start at 1.
 * Deletion shifts the following entries of the probe run back instead of
 * leaving tombstones, so any amount of insert/remove churn leaves the table
 * as if the surviving entries had just been inserted: no slow drift of probe
 * lengths, no periodic cleanup.  A shard grows at 70% load and shrinks
 * below 1/8.
 *
 * The shard lock is a test-and-test-and-set spinlock that backs off with
 * `pause` and then yields the CPU (the holder may have been preempted on a
 * busy machine).  Critical sections are a handful of loads, so it beats a
 * pthread mutex both uncontended (no call, a plain release store to
 * unlock: about 2.4 ns a pair against 6) and with two threads hammering
 * one lock (1-2x the mutex's throughput, which pays for sleeping and
 * waking).  bench/bench_registry measures both; build with
 * -DFS9_IDMAP_LOCK_MUTEX=1 to get the mutex.
 */
#include "core/idmap.h"

#include <errno.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#ifndef FS9_IDMAP_LOCK_MUTEX
#define FS9_IDMAP_LOCK_MUTEX 0
#endif

#if FS9_IDMAP_LOCK_MUTEX
#include <pthread.h>
#endif

#define FS9__CACHELINE 64
#define FS9__IDMAP_MIN_CAP 8u /* slots per shard, a power of two */

/* ---------------------------------------------------------------- locks */

#if FS9_IDMAP_LOCK_MUTEX

typedef pthread_mutex_t fs9__lock_t;

static void fs9__lock_init(fs9__lock_t *l) { pthread_mutex_init(l, NULL); }
static void fs9__lock_destroy(fs9__lock_t *l) { pthread_mutex_destroy(l); }
static inline void fs9__lock(fs9__lock_t *l) { pthread_mutex_lock(l); }
static inline void fs9__unlock(fs9__lock_t *l) { pthread_mutex_unlock(l); }

#else

typedef atomic_int fs9__lock_t;

static inline void fs9__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

static void fs9__lock_init(fs9__lock_t *l) { atomic_init(l, 0); }
static void fs9__lock_destroy(fs9__lock_t *l) { (void)l; }

/* Out of line: the uncontended path stays small enough to inline. */
static __attribute__((noinline)) void fs9__lock_slow(fs9__lock_t *l)
{
    unsigned spins = 0;
    for (;;) {
        /* Wait on a plain load so the line stays shared while held. */
        while (atomic_load_explicit(l, memory_order_relaxed)) {
            if (++spins < 64) {
                fs9__cpu_relax();
            } else {
                /* The holder is probably not running: let it. */
                sched_yield();
            }
        }
        if (!atomic_exchange_explicit(l, 1, memory_order_acquire))
            return;
    }
}

static inline void fs9__lock(fs9__lock_t *l)
{
    if (__builtin_expect(
            !atomic_exchange_explicit(l, 1, memory_order_acquire), 1))
        return;
    fs9__lock_slow(l);
}

static inline void fs9__unlock(fs9__lock_t *l)
{
    atomic_store_explicit(l, 0, memory_order_release);
}

#endif

/* ---------------------------------------------------------------- table */

struct fs9__idmap_slot {
    uint64_t id; /* 0: empty */
    void *value;
};

/* One cache line (two with a pthread mutex), so shards never share one. */
struct fs9__idmap_shard {
    alignas(FS9__CACHELINE) fs9__lock_t lock;
    unsigned shift;    /* 64 - log2(capacity) */
    uint64_t salt;     /* per-shard hash offset, see fs9__home() */
    size_t mask;       /* capacity - 1; read unlocked by memory() */
    size_t count;      /* read unlocked by count() */
    size_t grow_at;    /* count that triggers doubling (70%) */
    struct fs9__idmap_slot *slots; /* owned */
};

struct fs9_idmap {
    struct fs9__idmap_shard shards[FS9_IDMAP_SHARDS];
    alignas(FS9__CACHELINE) atomic_uint_fast64_t next_id;
    char pad[FS9__CACHELINE - sizeof(atomic_uint_fast64_t)];
};

/* Fibonacci hashing: multiply by 2^64/phi and keep the top bits.  It
 * spreads any pattern of ids — consecutive, strided, old long-lived ones
 * among new — evenly, for one multiplication.  (Keeping consecutive ids in
 * neighbouring slots would give lookups of recent handles more locality,
 * but linear probing then builds long runs whenever live ids span more
 * than a table's worth: measured, and not worth it.)
 *
 * Every shard sees the same sequence of id >> 6 values, so without the
 * per-shard salt the recent ids of all 64 shards would sit at the same
 * offsets of 64 page-aligned tables, and compete for the same few cache
 * sets; the salt rotates each shard's table by its own amount. */
static inline size_t fs9__home(unsigned shift, uint64_t salt, uint64_t id)
{
    return (size_t)(((id >> 6) * UINT64_C(0x9E3779B97F4A7C15) + salt) >>
                    shift);
}

static unsigned fs9__log2(size_t cap)
{
    return (unsigned)__builtin_ctzll((unsigned long long)cap);
}

/* Replace the shard's table with one of `cap` slots.  Under the lock. */
static int fs9__shard_resize(struct fs9__idmap_shard *s, size_t cap)
{
    struct fs9__idmap_slot *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return -ENOMEM;
    unsigned shift = 64 - fs9__log2(cap);
    size_t mask = cap - 1;
    struct fs9__idmap_slot *old = s->slots;
    for (size_t i = 0; old && i <= s->mask; i++) {
        if (!old[i].id)
            continue;
        size_t j = fs9__home(shift, s->salt, old[i].id);
        while (slots[j].id)
            j = (j + 1) & mask;
        slots[j] = old[i];
    }
    free(old);
    s->slots = slots;
    s->shift = shift;
    atomic_store_explicit((_Atomic size_t *)&s->mask, mask,
                          memory_order_relaxed);
    s->grow_at = cap * 7 / 10;
    return 0;
}

static inline void fs9__set_count(struct fs9__idmap_shard *s, size_t n)
{
    atomic_store_explicit((_Atomic size_t *)&s->count, n,
                          memory_order_relaxed);
}

static inline size_t fs9__get_relaxed(const size_t *p)
{
    return atomic_load_explicit((_Atomic size_t *)(uintptr_t)p,
                                memory_order_relaxed);
}

struct fs9_idmap *fs9_idmap_new(uint64_t first_id)
{
    if (first_id == 0)
        first_id = 1;
    struct fs9_idmap *m = aligned_alloc(FS9__CACHELINE, sizeof(*m));
    if (!m)
        return NULL;
    memset(m, 0, sizeof(*m));
    atomic_init(&m->next_id, first_id);
    for (int i = 0; i < FS9_IDMAP_SHARDS; i++) {
        struct fs9__idmap_shard *s = &m->shards[i];
        fs9__lock_init(&s->lock);
        s->salt = (uint64_t)i * UINT64_C(0xBF58476D1CE4E5B9);
        if (fs9__shard_resize(s, FS9__IDMAP_MIN_CAP) < 0) {
            while (i-- > 0)
                free(m->shards[i].slots);
            free(m);
            return NULL;
        }
    }
    return m;
}

void fs9_idmap_free(struct fs9_idmap *m)
{
    if (!m)
        return;
    for (int i = 0; i < FS9_IDMAP_SHARDS; i++) {
        free(m->shards[i].slots);
        fs9__lock_destroy(&m->shards[i].lock);
    }
    free(m);
}

uint64_t fs9_idmap_next_id(struct fs9_idmap *m)
{
    return atomic_fetch_add_explicit(&m->next_id, 1, memory_order_relaxed);
}

static inline struct fs9__idmap_shard *fs9__shard(struct fs9_idmap *m,
                                                  uint64_t id)
{
    return &m->shards[id & (FS9_IDMAP_SHARDS - 1)];
}

/* Index of `id` in the shard, or of the empty slot that ends its probe run
 * (*found tells which).  Under the lock. */
static inline size_t fs9__probe(const struct fs9__idmap_shard *s,
                                uint64_t id, bool *found)
{
    size_t i = fs9__home(s->shift, s->salt, id);
    for (;;) {
        uint64_t k = s->slots[i].id;
        if (k == id) {
            *found = true;
            return i;
        }
        if (k == 0) {
            *found = false;
            return i;
        }
        i = (i + 1) & s->mask;
    }
}

int fs9_idmap_insert(struct fs9_idmap *m, uint64_t id, void *value)
{
    if (id == 0 || !value)
        return -EINVAL;
    struct fs9__idmap_shard *s = fs9__shard(m, id);
    int rc = 0;
    bool found;
    fs9__lock(&s->lock);
    size_t i = fs9__probe(s, id, &found);
    if (found) {
        rc = -EEXIST;
        goto out;
    }
    if (s->count + 1 > s->grow_at) {
        if (fs9__shard_resize(s, (s->mask + 1) * 2) == 0) {
            i = fs9__probe(s, id, &found);
        } else if (s->count + 2 > s->mask + 1) {
            /* Keep one empty slot so every probe ends. */
            rc = -ENOMEM;
            goto out;
        }
    }
    s->slots[i].id = id;
    s->slots[i].value = value;
    fs9__set_count(s, s->count + 1);
out:
    fs9__unlock(&s->lock);
    return rc;
}

void *fs9_idmap_get(struct fs9_idmap *m, uint64_t id, fs9_idmap_found_fn found,
                    void *arg)
{
    if (id == 0)
        return NULL;
    struct fs9__idmap_shard *s = fs9__shard(m, id);
    void *value = NULL;
    bool hit;
    fs9__lock(&s->lock);
    size_t i = fs9__probe(s, id, &hit);
    if (hit) {
        value = s->slots[i].value;
        if (found)
            found(value, arg);
    }
    fs9__unlock(&s->lock);
    return value;
}

/* Empty slot i by shifting later members of its probe run back (an entry
 * may move into the hole when the hole lies between its home and where it
 * sits now).  Under the lock. */
static void fs9__delete_at(struct fs9__idmap_shard *s, size_t i)
{
    size_t mask = s->mask;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        uint64_t k = s->slots[j].id;
        if (k == 0)
            break;
        size_t home = fs9__home(s->shift, s->salt, k);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            s->slots[i] = s->slots[j];
            i = j;
        }
    }
    s->slots[i].id = 0;
    s->slots[i].value = NULL;
}

void *fs9_idmap_remove(struct fs9_idmap *m, uint64_t id,
                       int (*check)(void *value, void *arg), void *arg)
{
    if (id == 0)
        return NULL;
    struct fs9__idmap_shard *s = fs9__shard(m, id);
    void *value = NULL;
    bool hit;
    fs9__lock(&s->lock);
    size_t i = fs9__probe(s, id, &hit);
    if (!hit)
        goto out;
    if (check && !check(s->slots[i].value, arg))
        goto out;
    value = s->slots[i].value;
    fs9__delete_at(s, i);
    fs9__set_count(s, s->count - 1);
    /* Give memory back after a burst; failure to shrink is harmless. */
    if (s->mask + 1 > FS9__IDMAP_MIN_CAP && s->count < (s->mask + 1) / 8)
        (void)fs9__shard_resize(s, (s->mask + 1) / 2);
out:
    fs9__unlock(&s->lock);
    return value;
}

size_t fs9_idmap_count(const struct fs9_idmap *m)
{
    size_t n = 0;
    for (int i = 0; i < FS9_IDMAP_SHARDS; i++)
        n += fs9__get_relaxed(&m->shards[i].count);
    return n;
}

int fs9_idmap_foreach(struct fs9_idmap *m,
                      int (*fn)(uint64_t id, void *value, void *arg),
                      void *arg)
{
    for (int i = 0; i < FS9_IDMAP_SHARDS; i++) {
        struct fs9__idmap_shard *s = &m->shards[i];
        int rc = 0;
        fs9__lock(&s->lock);
        for (size_t j = 0; j <= s->mask && rc == 0; j++)
            if (s->slots[j].id)
                rc = fn(s->slots[j].id, s->slots[j].value, arg);
        fs9__unlock(&s->lock);
        if (rc)
            return rc;
    }
    return 0;
}

size_t fs9_idmap_memory(const struct fs9_idmap *m)
{
    size_t bytes = sizeof(*m);
    for (int i = 0; i < FS9_IDMAP_SHARDS; i++)
        bytes += (fs9__get_relaxed(&m->shards[i].mask) + 1) *
                 sizeof(struct fs9__idmap_slot);
    return bytes;
}
