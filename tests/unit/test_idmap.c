/*
 * test_idmap — the sharded u64 → pointer map under handles and inodes.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/idmap.h"

/* Values are never dereferenced by the map: encode the id in the pointer
 * so every lookup can be checked against what was stored. */
static void *val(uint64_t id) { return (void *)(uintptr_t)(id * 8 + 8); }

/* A small deterministic PRNG (splitmix64) so failures reproduce. */
static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

Test(idmap, new_map_is_empty_and_finds_nothing)
{
    struct fs9_idmap *m = fs9_idmap_new(1);
    cr_assert_not_null(m);
    cr_assert_eq(fs9_idmap_count(m), 0);
    cr_assert_null(fs9_idmap_get(m, 1, NULL, NULL));
    cr_assert_null(fs9_idmap_get(m, 0, NULL, NULL));
    cr_assert_null(fs9_idmap_remove(m, 12345, NULL, NULL));
    cr_assert_gt(fs9_idmap_memory(m), 0);
    fs9_idmap_free(m);
}

Test(idmap, next_id_starts_at_first_id_and_never_repeats)
{
    struct fs9_idmap *m = fs9_idmap_new(1000);
    uint64_t prev = fs9_idmap_next_id(m);
    cr_assert_eq(prev, 1000);
    for (int i = 0; i < 100000; i++) {
        uint64_t id = fs9_idmap_next_id(m);
        cr_assert_gt(id, prev);
        prev = id;
    }
    fs9_idmap_free(m);
}

Test(idmap, insert_get_remove_round_trip)
{
    struct fs9_idmap *m = fs9_idmap_new(1);
    uint64_t id = fs9_idmap_next_id(m);
    cr_assert_eq(fs9_idmap_insert(m, id, val(id)), 0);
    cr_assert_eq(fs9_idmap_count(m), 1);
    cr_assert_eq(fs9_idmap_get(m, id, NULL, NULL), val(id));
    cr_assert_eq(fs9_idmap_remove(m, id, NULL, NULL), val(id));
    cr_assert_null(fs9_idmap_get(m, id, NULL, NULL));
    cr_assert_null(fs9_idmap_remove(m, id, NULL, NULL));
    cr_assert_eq(fs9_idmap_count(m), 0);
    fs9_idmap_free(m);
}

Test(idmap, insert_refuses_duplicates_zero_id_and_null_value)
{
    struct fs9_idmap *m = fs9_idmap_new(1);
    cr_assert_eq(fs9_idmap_insert(m, 7, val(7)), 0);
    cr_assert_eq(fs9_idmap_insert(m, 7, val(8)), -EEXIST);
    cr_assert_eq(fs9_idmap_get(m, 7, NULL, NULL), val(7));
    cr_assert_eq(fs9_idmap_insert(m, 0, val(0)), -EINVAL);
    cr_assert_eq(fs9_idmap_insert(m, 9, NULL), -EINVAL);
    cr_assert_eq(fs9_idmap_count(m), 1);
    fs9_idmap_remove(m, 7, NULL, NULL);
    fs9_idmap_free(m);
}

static void count_found(void *value, void *arg)
{
    (void)value;
    (*(int *)arg)++;
}

Test(idmap, get_calls_found_only_for_a_present_id)
{
    struct fs9_idmap *m = fs9_idmap_new(1);
    int calls = 0;
    fs9_idmap_insert(m, 42, val(42));
    cr_assert_eq(fs9_idmap_get(m, 42, count_found, &calls), val(42));
    cr_assert_null(fs9_idmap_get(m, 43, count_found, &calls));
    cr_assert_eq(calls, 1);
    fs9_idmap_remove(m, 42, NULL, NULL);
    fs9_idmap_free(m);
}

static int allow_if(void *value, void *arg)
{
    (void)value;
    return *(int *)arg;
}

Test(idmap, remove_with_check_removes_only_when_check_agrees)
{
    struct fs9_idmap *m = fs9_idmap_new(1);
    fs9_idmap_insert(m, 5, val(5));
    int allow = 0;
    cr_assert_null(fs9_idmap_remove(m, 5, allow_if, &allow));
    cr_assert_eq(fs9_idmap_get(m, 5, NULL, NULL), val(5));
    allow = 1;
    cr_assert_eq(fs9_idmap_remove(m, 5, allow_if, &allow), val(5));
    cr_assert_null(fs9_idmap_get(m, 5, NULL, NULL));
    fs9_idmap_free(m);
}

/* Millions of operations over a sliding window of live ids, checked against
 * a shadow copy: exercises growth, shrinking and backward-shift deletion
 * (an entry lost or duplicated by a wrong shift shows up as a mismatch). */
static void churn(uint64_t stride, uint64_t base, size_t window, size_t ops)
{
    struct fs9_idmap *m = fs9_idmap_new(1);
    uint64_t *live = calloc(window, sizeof(*live));
    uint64_t seed = stride * 31 + window;
    uint64_t next = 1;
    size_t nlive = 0;
    for (size_t op = 0; op < ops; op++) {
        uint64_t r = rnd(&seed);
        /* Mostly keep the window full, but let it drain and refill in
         * waves so shards grow and shrink repeatedly. */
        int phase = (int)((op / (window * 4)) & 1);
        int want_insert = phase ? (r % 100) < 30 : (r % 100) < 70;
        if (nlive == 0 || (want_insert && nlive < window)) {
            uint64_t id = base + next++ * stride;
            cr_assert_eq(fs9_idmap_insert(m, id, val(id)), 0, "op %zu", op);
            live[nlive++] = id;
        } else {
            size_t i = (size_t)((r >> 8) % nlive);
            uint64_t id = live[i];
            cr_assert_eq(fs9_idmap_remove(m, id, NULL, NULL), val(id),
                         "op %zu id %llu", op, (unsigned long long)id);
            cr_assert_null(fs9_idmap_get(m, id, NULL, NULL));
            live[i] = live[--nlive];
        }
        if (nlive && (op & 7) == 0) {
            uint64_t id = live[(r >> 20) % nlive];
            cr_assert_eq(fs9_idmap_get(m, id, NULL, NULL), val(id));
        }
        if ((op & 0xffff) == 0) {
            cr_assert_eq(fs9_idmap_count(m), nlive);
            /* Ids not handed out yet are absent too. */
            cr_assert_null(
                fs9_idmap_get(m, base + (next + 1) * stride, NULL, NULL));
        }
    }
    cr_assert_eq(fs9_idmap_count(m), nlive);
    for (size_t i = 0; i < nlive; i++)
        cr_assert_eq(fs9_idmap_get(m, live[i], NULL, NULL), val(live[i]));
    for (size_t i = 0; i < nlive; i++)
        cr_assert_eq(fs9_idmap_remove(m, live[i], NULL, NULL), val(live[i]));
    cr_assert_eq(fs9_idmap_count(m), 0);
    free(live);
    fs9_idmap_free(m);
}

Test(idmap, churn_of_millions_of_sequential_ids_stays_exact)
{
    churn(1, 0, 50000, 3000000);
}

Test(idmap, churn_in_one_shard_stays_exact)
{
    /* Every id in shard 5: one table takes all the growth and deletion. */
    churn(64, 5, 20000, 2000000);
}

Test(idmap, churn_of_sparse_large_ids_stays_exact)
{
    /* Ids far apart, as after a long uptime with many short-lived ones. */
    churn(UINT64_C(1) << 20 | 13, UINT64_C(1) << 40, 20000, 1000000);
}

Test(idmap, tables_grow_for_a_million_ids_and_shrink_when_emptied)
{
    struct fs9_idmap *m = fs9_idmap_new(1);
    size_t empty = fs9_idmap_memory(m);
    enum { N = 1000000 };
    for (uint64_t id = 1; id <= N; id++)
        cr_assert_eq(fs9_idmap_insert(m, id, val(id)), 0);
    size_t full = fs9_idmap_memory(m);
    cr_assert_eq(fs9_idmap_count(m), N);
    /* 16-byte slots at 35%..70% load. */
    cr_assert_geq(full, (size_t)N * 16);
    cr_assert_leq(full, (size_t)N * 16 * 3 + empty);
    for (uint64_t id = 1; id <= N; id++)
        cr_assert_eq(fs9_idmap_get(m, id, NULL, NULL), val(id));
    for (uint64_t id = 1; id <= N; id++)
        cr_assert_eq(fs9_idmap_remove(m, id, NULL, NULL), val(id));
    cr_assert_eq(fs9_idmap_count(m), 0);
    cr_assert_eq(fs9_idmap_memory(m), empty);
    fs9_idmap_free(m);
}

struct visit {
    uint64_t max;
    unsigned char *seen;
    size_t calls;
    size_t stop_after;
};

static int visit_fn(uint64_t id, void *value, void *arg)
{
    struct visit *v = arg;
    cr_assert_eq(value, val(id));
    cr_assert_leq(id, v->max);
    v->seen[id]++;
    v->calls++;
    return v->stop_after && v->calls == v->stop_after ? 99 : 0;
}

Test(idmap, foreach_visits_every_entry_exactly_once)
{
    struct fs9_idmap *m = fs9_idmap_new(1);
    enum { N = 10000 };
    struct visit v = {.max = N, .seen = calloc(N + 1, 1)};
    for (uint64_t id = 1; id <= N; id++)
        fs9_idmap_insert(m, id, val(id));
    for (uint64_t id = 1; id <= N; id += 3)
        fs9_idmap_remove(m, id, NULL, NULL);
    cr_assert_eq(fs9_idmap_foreach(m, visit_fn, &v), 0);
    for (uint64_t id = 1; id <= N; id++)
        cr_assert_eq(v.seen[id], (id - 1) % 3 ? 1 : 0, "id %llu",
                     (unsigned long long)id);
    cr_assert_eq(v.calls, fs9_idmap_count(m));
    for (uint64_t id = 1; id <= N; id++)
        fs9_idmap_remove(m, id, NULL, NULL);
    free(v.seen);
    fs9_idmap_free(m);
}

Test(idmap, foreach_stops_at_the_first_nonzero_return)
{
    struct fs9_idmap *m = fs9_idmap_new(1);
    struct visit v = {.max = 1000, .seen = calloc(1001, 1), .stop_after = 10};
    for (uint64_t id = 1; id <= 1000; id++)
        fs9_idmap_insert(m, id, val(id));
    cr_assert_eq(fs9_idmap_foreach(m, visit_fn, &v), 99);
    cr_assert_eq(v.calls, 10);
    for (uint64_t id = 1; id <= 1000; id++)
        fs9_idmap_remove(m, id, NULL, NULL);
    free(v.seen);
    fs9_idmap_free(m);
}

/* Threads that insert, look up and remove at once, sharing shards. */
struct worker {
    struct fs9_idmap *m;
    int index;
    atomic_int *errors;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    enum { BATCH = 2000, ROUNDS = 40 };
    uint64_t ids[BATCH];
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < BATCH; i++) {
            ids[i] = fs9_idmap_next_id(w->m);
            if (fs9_idmap_insert(w->m, ids[i], val(ids[i])) != 0)
                atomic_fetch_add(w->errors, 1);
        }
        for (int i = 0; i < BATCH; i++)
            if (fs9_idmap_get(w->m, ids[i], NULL, NULL) != val(ids[i]))
                atomic_fetch_add(w->errors, 1);
        for (int i = 0; i < BATCH; i++)
            if (fs9_idmap_remove(w->m, ids[i], NULL, NULL) != val(ids[i]))
                atomic_fetch_add(w->errors, 1);
    }
    return NULL;
}

Test(idmap, concurrent_threads_each_see_exactly_their_own_entries)
{
    enum { T = 8 };
    struct fs9_idmap *m = fs9_idmap_new(1);
    atomic_int errors = 0;
    pthread_t th[T];
    struct worker w[T];
    for (int i = 0; i < T; i++) {
        w[i] = (struct worker){.m = m, .index = i, .errors = &errors};
        pthread_create(&th[i], NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(atomic_load(&errors), 0);
    cr_assert_eq(fs9_idmap_count(m), 0);
    fs9_idmap_free(m);
}
