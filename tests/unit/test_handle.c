/*
 * test_handle — the registry of open handles: ids, reference counts and the
 * close callback, alone and under many threads.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/handle.h"

/* A handle with test bookkeeping; h comes first so the callback can cast. */
struct th {
    struct fs9_handle h;
    atomic_int in_use; /* calls between acquire and release */
    atomic_int closed; /* set by the close callback */
};

struct closer {
    atomic_long closes;
    atomic_long errors; /* closed twice, or closed while in use */
    int free_on_close;
};

static void on_close(struct fs9_handle *h, void *arg)
{
    struct closer *c = arg;
    struct th *t = (struct th *)h;
    if (atomic_exchange(&t->closed, 1) != 0)
        atomic_fetch_add(&c->errors, 1);
    if (atomic_load(&t->in_use) != 0)
        atomic_fetch_add(&c->errors, 1);
    atomic_fetch_add(&c->closes, 1);
    if (c->free_on_close) {
        free(h->path);
        /* Poison so a late user trips even without ASan. */
        memset(t, 0xdb, sizeof(*t));
        free(t);
    }
}

static struct th *th_new(const char *path)
{
    struct th *t = calloc(1, sizeof(*t));
    t->h.path = path ? strdup(path) : NULL;
    return t;
}

Test(handle, add_sets_one_reference_and_fresh_increasing_ids)
{
    struct closer c = {0};
    struct fs9_registry *r = fs9_registry_new(on_close, &c);
    struct th a = {0}, b = {0};
    uint64_t ia = fs9_registry_add(r, &a.h);
    uint64_t ib = fs9_registry_add(r, &b.h);
    cr_assert_neq(ia, 0);
    cr_assert_gt(ib, ia);
    cr_assert_eq(a.h.id, ia);
    cr_assert_eq(atomic_load(&a.h.refs), 1);
    cr_assert_eq(fs9_registry_count(r), 2);
    fs9_registry_release(r, fs9_registry_take(r, ia));
    fs9_registry_release(r, fs9_registry_take(r, ib));
    cr_assert_eq(atomic_load(&c.closes), 2);
    cr_assert_eq(fs9_registry_count(r), 0);
    fs9_registry_free(r);
}

Test(handle, acquire_of_unknown_or_taken_id_returns_null)
{
    struct closer c = {0};
    struct fs9_registry *r = fs9_registry_new(on_close, &c);
    struct th a = {0};
    uint64_t id = fs9_registry_add(r, &a.h);
    cr_assert_null(fs9_registry_acquire(r, 0));
    cr_assert_null(fs9_registry_acquire(r, id + 1000));
    struct fs9_handle *h = fs9_registry_take(r, id);
    cr_assert_eq(h, &a.h);
    cr_assert_null(fs9_registry_acquire(r, id));
    cr_assert_null(fs9_registry_take(r, id));
    fs9_registry_release(r, h);
    fs9_registry_free(r);
}

Test(handle, close_runs_once_after_the_last_reference_not_at_take)
{
    struct closer c = {0};
    struct fs9_registry *r = fs9_registry_new(on_close, &c);
    struct th a = {0};
    uint64_t id = fs9_registry_add(r, &a.h);
    struct fs9_handle *x = fs9_registry_acquire(r, id);
    struct fs9_handle *y = fs9_registry_acquire(r, id);
    cr_assert_eq(x, &a.h);
    cr_assert_eq(atomic_load(&a.h.refs), 3);
    struct fs9_handle *z = fs9_registry_take(r, id);
    cr_assert_eq(z, &a.h);
    cr_assert_eq(fs9_registry_count(r), 0);
    fs9_registry_release(r, x);
    fs9_registry_release(r, z);
    cr_assert_eq(atomic_load(&c.closes), 0, "closed while a call is in flight");
    fs9_registry_release(r, y);
    cr_assert_eq(atomic_load(&c.closes), 1);
    cr_assert_eq(atomic_load(&c.errors), 0);
    fs9_registry_free(r);
}

Test(handle, ids_are_never_reused_after_removal)
{
    struct closer c = {.free_on_close = 1};
    struct fs9_registry *r = fs9_registry_new(on_close, &c);
    uint64_t prev = 0;
    for (int i = 0; i < 100000; i++) {
        struct th *t = th_new("/x");
        uint64_t id = fs9_registry_add(r, &t->h);
        cr_assert_gt(id, prev, "id %llu reused", (unsigned long long)id);
        prev = id;
        fs9_registry_release(r, fs9_registry_take(r, id));
        cr_assert_null(fs9_registry_acquire(r, id));
    }
    cr_assert_eq(atomic_load(&c.closes), 100000);
    fs9_registry_free(r);
}

Test(handle, acquire_updates_last_access_from_the_coarse_clock)
{
    struct closer c = {0};
    struct fs9_registry *r = fs9_registry_new(on_close, &c);
    struct th a = {0};
    uint64_t id = fs9_registry_add(r, &a.h);
    atomic_store(&a.h.last_access, 0);
    uint32_t before = fs9_coarse_seconds();
    struct fs9_handle *h = fs9_registry_acquire(r, id);
    uint32_t seen = atomic_load(&h->last_access);
    cr_assert_geq(seen, before);
    cr_assert_leq(seen, fs9_coarse_seconds());
    fs9_registry_release(r, h);
    fs9_registry_release(r, fs9_registry_take(r, id));
    fs9_registry_free(r);
}

static int odd_nodeid(const struct fs9_handle *h, void *arg)
{
    (void)arg;
    return (int)(h->nodeid & 1);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

Test(handle, ids_lists_every_or_only_matching_handles)
{
    struct closer c = {.free_on_close = 1};
    struct fs9_registry *r = fs9_registry_new(on_close, &c);
    enum { N = 1000 };
    uint64_t want[N];
    for (int i = 0; i < N; i++) {
        struct th *t = th_new(NULL);
        t->h.nodeid = (uint64_t)i;
        want[i] = fs9_registry_add(r, &t->h);
    }
    size_t n;
    uint64_t *all = fs9_registry_ids(r, NULL, NULL, &n);
    cr_assert_not_null(all);
    cr_assert_eq(n, N);
    qsort(all, n, sizeof(*all), cmp_u64);
    cr_assert_arr_eq(all, want, sizeof(want));
    free(all);
    uint64_t *odd = fs9_registry_ids(r, odd_nodeid, NULL, &n);
    cr_assert_eq(n, N / 2);
    qsort(odd, n, sizeof(*odd), cmp_u64);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(odd[i], want[2 * i + 1]);
    free(odd);
    for (int i = 0; i < N; i++)
        fs9_registry_release(r, fs9_registry_take(r, want[i]));
    uint64_t *none = fs9_registry_ids(r, NULL, NULL, &n);
    cr_assert_not_null(none);
    cr_assert_eq(n, 0);
    free(none);
    cr_assert_eq(atomic_load(&c.closes), N);
    fs9_registry_free(r);
}

Test(handle, count_and_memory_follow_registrations)
{
    struct closer c = {.free_on_close = 1};
    struct fs9_registry *r = fs9_registry_new(on_close, &c);
    size_t empty = fs9_registry_memory(r);
    enum { N = 50000 };
    uint64_t *ids = malloc(N * sizeof(*ids));
    for (int i = 0; i < N; i++) {
        ids[i] = fs9_registry_add(r, &th_new("/dir/file")->h);
        cr_assert_eq(fs9_registry_count(r), (size_t)i + 1);
    }
    cr_assert_gt(fs9_registry_memory(r), empty + N * 16);
    for (int i = 0; i < N; i++)
        fs9_registry_release(r, fs9_registry_take(r, ids[i]));
    cr_assert_eq(fs9_registry_count(r), 0);
    cr_assert_eq(fs9_registry_memory(r), empty);
    free(ids);
    fs9_registry_free(r);
}

/* ---- many threads registering, looking up and closing at once ---- */

enum { MT_THREADS = 8, MT_ROUNDS = 30, MT_BATCH = 500, MT_SHARED = 1024 };

struct mt {
    struct fs9_registry *r;
    struct closer *c;
    _Atomic uint64_t shared[MT_SHARED]; /* recently added ids, any thread */
    uint64_t *issued[MT_THREADS];       /* every id each thread got */
    atomic_long lookups_found;
    atomic_long errors;
};

struct mt_arg {
    struct mt *mt;
    int index;
};

static void *mt_main(void *p)
{
    struct mt_arg *a = p;
    struct mt *mt = a->mt;
    uint64_t seed = (uint64_t)a->index * 7919 + 1;
    uint64_t mine[MT_BATCH];
    size_t n_issued = 0;
    for (int round = 0; round < MT_ROUNDS; round++) {
        for (int i = 0; i < MT_BATCH; i++) {
            struct th *t = th_new("/dir000/file0000000");
            uint64_t id = fs9_registry_add(mt->r, &t->h);
            if (id == 0)
                atomic_fetch_add(&mt->errors, 1);
            mine[i] = id;
            mt->issued[a->index][n_issued++] = id;
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            atomic_store(&mt->shared[(seed >> 33) % MT_SHARED], id);
        }
        /* Look up own handles (must be there) and others' (may be gone). */
        for (int i = 0; i < MT_BATCH * 4; i++) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            int own = (seed >> 40) & 1;
            uint64_t id = own ? mine[(seed >> 33) % MT_BATCH]
                              : atomic_load(&mt->shared[(seed >> 33) %
                                                        MT_SHARED]);
            struct fs9_handle *h = fs9_registry_acquire(mt->r, id);
            if (!h) {
                if (own)
                    atomic_fetch_add(&mt->errors, 1);
                continue;
            }
            struct th *t = (struct th *)h;
            atomic_fetch_add(&t->in_use, 1);
            if (h->id != id || atomic_load(&t->closed) ||
                strcmp(h->path, "/dir000/file0000000") != 0)
                atomic_fetch_add(&mt->errors, 1);
            atomic_fetch_sub(&t->in_use, 1);
            fs9_registry_release(mt->r, h);
            atomic_fetch_add(&mt->lookups_found, 1);
        }
        for (int i = 0; i < MT_BATCH; i++) {
            struct fs9_handle *h = fs9_registry_take(mt->r, mine[i]);
            if (!h || h->id != mine[i])
                atomic_fetch_add(&mt->errors, 1);
            else
                fs9_registry_release(mt->r, h);
        }
    }
    return NULL;
}

Test(handle, many_threads_register_look_up_and_close_at_once)
{
    struct closer c = {.free_on_close = 1};
    struct mt *mt = calloc(1, sizeof(*mt));
    mt->r = fs9_registry_new(on_close, &c);
    mt->c = &c;
    pthread_t th[MT_THREADS];
    struct mt_arg args[MT_THREADS];
    for (int i = 0; i < MT_THREADS; i++) {
        mt->issued[i] = malloc(MT_ROUNDS * MT_BATCH * sizeof(uint64_t));
        args[i] = (struct mt_arg){mt, i};
        pthread_create(&th[i], NULL, mt_main, &args[i]);
    }
    for (int i = 0; i < MT_THREADS; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(atomic_load(&mt->errors), 0);
    cr_assert_eq(atomic_load(&c.errors), 0);
    enum { TOTAL = MT_THREADS * MT_ROUNDS * MT_BATCH };
    cr_assert_eq(atomic_load(&c.closes), TOTAL);
    cr_assert_eq(fs9_registry_count(mt->r), 0);
    cr_assert_gt(atomic_load(&mt->lookups_found), 0);
    /* Every id handed out once, across all threads. */
    uint64_t *all = malloc(TOTAL * sizeof(*all));
    for (int i = 0; i < MT_THREADS; i++)
        memcpy(all + (size_t)i * MT_ROUNDS * MT_BATCH, mt->issued[i],
               MT_ROUNDS * MT_BATCH * sizeof(uint64_t));
    qsort(all, TOTAL, sizeof(*all), cmp_u64);
    for (size_t i = 1; i < TOTAL; i++)
        cr_assert_neq(all[i], all[i - 1], "id %llu issued twice",
                      (unsigned long long)all[i]);
    free(all);
    for (int i = 0; i < MT_THREADS; i++)
        free(mt->issued[i]);
    fs9_registry_free(mt->r);
    free(mt);
}

/* ---- a close racing acquire/release never frees a handle in use ---- */

enum { RACE_SLOTS = 16, RACE_READERS = 6, RACE_REPLACEMENTS = 20000,
       RACE_USES = 200000 };

struct race {
    struct fs9_registry *r;
    _Atomic uint64_t slot[RACE_SLOTS]; /* the ids currently open */
    atomic_int stop;
    atomic_long uses;
    atomic_long errors;
};

static void *race_reader(void *p)
{
    struct race *rc = p;
    uint64_t seed = (uint64_t)(uintptr_t)&seed;
    while (!atomic_load(&rc->stop)) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        uint64_t id = atomic_load(&rc->slot[(seed >> 33) % RACE_SLOTS]);
        struct fs9_handle *h = fs9_registry_acquire(rc->r, id);
        if (!h)
            continue;
        struct th *t = (struct th *)h;
        atomic_fetch_add(&t->in_use, 1);
        /* "The read": touch the handle for a little while. */
        for (int i = 0; i < 20; i++)
            if (atomic_load(&t->closed) || h->id != id)
                atomic_fetch_add(&rc->errors, 1);
        atomic_fetch_sub(&t->in_use, 1);
        fs9_registry_release(rc->r, h);
        atomic_fetch_add(&rc->uses, 1);
    }
    return NULL;
}

Test(handle, close_racing_acquire_waits_for_the_last_release)
{
    struct closer c = {.free_on_close = 1};
    struct race *rc = calloc(1, sizeof(*rc));
    rc->r = fs9_registry_new(on_close, &c);
    for (int i = 0; i < RACE_SLOTS; i++)
        atomic_store(&rc->slot[i], fs9_registry_add(rc->r, &th_new("/f")->h));
    pthread_t th[RACE_READERS];
    for (int i = 0; i < RACE_READERS; i++)
        pthread_create(&th[i], NULL, race_reader, rc);
    /* The closer: replace a random open handle, closing the old one while
     * readers may be holding it. */
    uint64_t seed = 12345;
    long n;
    /* Keep going until the readers have really been at it too. */
    for (n = 0; n < RACE_REPLACEMENTS || atomic_load(&rc->uses) < RACE_USES;
         n++) {
        if ((n & 255) == 0)
            sched_yield();
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        int s = (int)((seed >> 33) % RACE_SLOTS);
        uint64_t fresh = fs9_registry_add(rc->r, &th_new("/f")->h);
        uint64_t old = atomic_exchange(&rc->slot[s], fresh);
        struct fs9_handle *h = fs9_registry_take(rc->r, old);
        cr_assert_not_null(h);
        fs9_registry_release(rc->r, h);
    }
    atomic_store(&rc->stop, 1);
    for (int i = 0; i < RACE_READERS; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(atomic_load(&rc->errors), 0);
    cr_assert_eq(atomic_load(&c.errors), 0, "closed twice or while in use");
    cr_assert_eq(atomic_load(&c.closes), n);
    cr_assert_eq(fs9_registry_count(rc->r), RACE_SLOTS);
    for (int i = 0; i < RACE_SLOTS; i++)
        fs9_registry_release(rc->r,
                             fs9_registry_take(rc->r, atomic_load(&rc->slot[i])));
    cr_assert_eq(atomic_load(&c.closes), n + RACE_SLOTS);
    cr_assert_eq(fs9_registry_count(rc->r), 0);
    fs9_registry_free(rc->r);
    free(rc);
}

/* Two threads racing take() on the same ids: each handle is handed over to
 * exactly one of them and closed exactly once. */
struct take_race {
    struct fs9_registry *r;
    uint64_t *ids;
    size_t n;
    atomic_long taken;
};

static void *take_all(void *p)
{
    struct take_race *tr = p;
    for (size_t i = 0; i < tr->n; i++) {
        struct fs9_handle *h = fs9_registry_take(tr->r, tr->ids[i]);
        if (h) {
            atomic_fetch_add(&tr->taken, 1);
            fs9_registry_release(tr->r, h);
        }
    }
    return NULL;
}

Test(handle, racing_takes_hand_each_handle_to_exactly_one_caller)
{
    struct closer c = {.free_on_close = 1};
    struct take_race tr = {.r = fs9_registry_new(on_close, &c), .n = 20000};
    tr.ids = malloc(tr.n * sizeof(*tr.ids));
    for (size_t i = 0; i < tr.n; i++)
        tr.ids[i] = fs9_registry_add(tr.r, &th_new("/g")->h);
    pthread_t a, b;
    pthread_create(&a, NULL, take_all, &tr);
    pthread_create(&b, NULL, take_all, &tr);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    cr_assert_eq(atomic_load(&tr.taken), (long)tr.n);
    cr_assert_eq(atomic_load(&c.closes), (long)tr.n);
    cr_assert_eq(atomic_load(&c.errors), 0);
    free(tr.ids);
    fs9_registry_free(tr.r);
}
