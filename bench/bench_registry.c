/*
 * bench_registry — the handle registry: operations per second and memory.
 *
 *   bench_registry [--quick] [--reps N]
 *
 * Measures open (fs9_registry_add), lookup (acquire + release) and close
 * (take + release) on 1 and 2 threads, for the sharded registry and for a
 * baseline built here: one table, same hashing and slot layout, under one
 * global lock of the same kind.  "uncontended": each thread works on its
 * own handles; "contended": both threads hammer the same 8 handles
 * (lookup), or race to close the same handles (close).  The shard lock
 * itself, spinlock against pthread mutex, alone and on two threads.  Then
 * memory: 1 M registered handles with realistic path strings, in resident
 * bytes per handle.  Every figure is the median of --reps runs (default 5).
 *
 * Prints a table, then one machine-readable line per figure:
 *   BENCH registry.<op>.<impl>.<threads> lock=<spin|mutex> ops_per_s=N
 *   BENCH registry.lock.<spin|mutex>.<threads> ops_per_s=N
 *   BENCH registry.memory.1000000_handles rss_bytes_per_handle=N ...
 * Build with -Dbuildtype=release.  bench_registry_mutex is the same
 * program with the idmap (and the baseline) using a pthread mutex.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/handle.h"

#ifndef FS9_IDMAP_LOCK_MUTEX
#define FS9_IDMAP_LOCK_MUTEX 0
#endif
#define LOCK_NAME (FS9_IDMAP_LOCK_MUTEX ? "mutex" : "spin")

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ------------------------------------------------------------ baseline */

/* The idmap's spinlock (a copy of the one in src/core/idmap.c). */
typedef atomic_int spin_t;
static __attribute__((noinline)) void spin_lock_slow(spin_t *l)
{
    unsigned spins = 0;
    for (;;) {
        while (atomic_load_explicit(l, memory_order_relaxed)) {
            if (++spins < 64)
                __builtin_ia32_pause();
            else
                sched_yield();
        }
        if (!atomic_exchange_explicit(l, 1, memory_order_acquire))
            return;
    }
}
static inline void spin_lock(spin_t *l)
{
    if (!atomic_exchange_explicit(l, 1, memory_order_acquire))
        return;
    spin_lock_slow(l);
}
static inline void spin_unlock(spin_t *l)
{
    atomic_store_explicit(l, 0, memory_order_release);
}

/* The baseline uses the same kind of lock as the idmap, so the comparison
 * isolates sharding. */
#if FS9_IDMAP_LOCK_MUTEX
typedef pthread_mutex_t glock_t;
static void glock_init(glock_t *l) { pthread_mutex_init(l, NULL); }
static inline void glock(glock_t *l) { pthread_mutex_lock(l); }
static inline void gunlock(glock_t *l) { pthread_mutex_unlock(l); }
#else
typedef spin_t glock_t;
static void glock_init(glock_t *l) { atomic_init(l, 0); }
static inline void glock(glock_t *l) { spin_lock(l); }
static inline void gunlock(glock_t *l) { spin_unlock(l); }
#endif

struct gslot {
    uint64_t id;
    void *value;
};

/* One open-addressing table (the idmap's home-slot function, linear
 * probing, backward-shift deletion, grow at 70%) under one lock. */
struct greg {
    _Alignas(64) glock_t lock;
    unsigned shift;
    size_t mask, count, grow_at;
    struct gslot *slots;
    _Alignas(64) atomic_uint_fast64_t next_id;
    fs9_handle_close_fn on_close;
    void *arg;
};

static inline size_t ghome(const struct greg *g, uint64_t id)
{
    return (size_t)((id * UINT64_C(0x9E3779B97F4A7C15)) >> g->shift);
}

static void gresize(struct greg *g, size_t cap)
{
    struct gslot *s = calloc(cap, sizeof(*s));
    if (!s)
        abort();
    struct gslot *old = g->slots;
    size_t oldcap = old ? g->mask + 1 : 0;
    g->slots = s;
    g->mask = cap - 1;
    g->shift = 64 - (unsigned)__builtin_ctzll(cap);
    g->grow_at = cap * 7 / 10;
    for (size_t i = 0; i < oldcap; i++) {
        if (!old[i].id)
            continue;
        size_t j = ghome(g, old[i].id);
        while (s[j].id)
            j = (j + 1) & g->mask;
        s[j] = old[i];
    }
    free(old);
}

static struct greg *greg_new(fs9_handle_close_fn on_close, void *arg)
{
    struct greg *g = aligned_alloc(64, sizeof(*g));
    memset(g, 0, sizeof(*g));
    glock_init(&g->lock);
    atomic_init(&g->next_id, 1);
    g->on_close = on_close;
    g->arg = arg;
    gresize(g, 64);
    return g;
}

static void greg_free(struct greg *g)
{
    free(g->slots);
    free(g);
}

static inline size_t gprobe(const struct greg *g, uint64_t id, int *found)
{
    size_t i = ghome(g, id);
    for (;;) {
        uint64_t k = g->slots[i].id;
        if (k == id || k == 0) {
            *found = k == id;
            return i;
        }
        i = (i + 1) & g->mask;
    }
}

static uint64_t greg_add(struct greg *g, struct fs9_handle *h)
{
    atomic_store_explicit(&h->refs, 1, memory_order_relaxed);
    atomic_store_explicit(&h->last_access, fs9_coarse_seconds(),
                          memory_order_relaxed);
    uint64_t id =
        atomic_fetch_add_explicit(&g->next_id, 1, memory_order_relaxed);
    h->id = id;
    int found;
    glock(&g->lock);
    size_t i = gprobe(g, id, &found);
    if (g->count + 1 > g->grow_at) {
        gresize(g, (g->mask + 1) * 2);
        i = gprobe(g, id, &found);
    }
    g->slots[i].id = id;
    g->slots[i].value = h;
    g->count++;
    gunlock(&g->lock);
    return id;
}

static struct fs9_handle *greg_acquire(struct greg *g, uint64_t id)
{
    int found;
    struct fs9_handle *h = NULL;
    glock(&g->lock);
    size_t i = gprobe(g, id, &found);
    if (found) {
        h = g->slots[i].value;
        atomic_fetch_add_explicit(&h->refs, 1, memory_order_relaxed);
    }
    gunlock(&g->lock);
    if (h) {
        uint32_t now = fs9_coarse_seconds();
        if (atomic_load_explicit(&h->last_access, memory_order_relaxed) != now)
            atomic_store_explicit(&h->last_access, now, memory_order_relaxed);
    }
    return h;
}

static void greg_release(struct greg *g, struct fs9_handle *h)
{
    if (atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel) == 1)
        g->on_close(h, g->arg);
}

static struct fs9_handle *greg_take(struct greg *g, uint64_t id)
{
    int found;
    struct fs9_handle *h = NULL;
    glock(&g->lock);
    size_t i = gprobe(g, id, &found);
    if (found) {
        h = g->slots[i].value;
        size_t j = i;
        for (;;) {
            j = (j + 1) & g->mask;
            uint64_t k = g->slots[j].id;
            if (!k)
                break;
            size_t home = ghome(g, k);
            if (((j - home) & g->mask) >= ((j - i) & g->mask)) {
                g->slots[i] = g->slots[j];
                i = j;
            }
        }
        g->slots[i].id = 0;
        g->slots[i].value = NULL;
        g->count--;
    }
    gunlock(&g->lock);
    return h;
}

/* ----------------------------------------------------------- workloads */

/* The handles live in arrays owned by the benchmark: nothing to free, and
 * no shared counter that would add contention of its own. */
static void noop_close(struct fs9_handle *h, void *arg)
{
    (void)h;
    (void)arg;
}

enum impl { SHARDED, GLOBAL };
enum op { OP_OPEN, OP_LOOKUP, OP_CLOSE };

struct job {
    enum impl impl;
    enum op op;
    struct fs9_registry *r;
    struct greg *g;
    struct fs9_handle *handles; /* this thread's, for open */
    uint64_t *ids;              /* ids to look up / close */
    size_t n;                   /* handles to open or close */
    size_t nids;                /* ids to pick lookups from (power of 2) */
    size_t lookups;
    uint64_t seed;
    pthread_barrier_t *start;
    double t0, t1;
    long misses;
};

static void run_open(struct job *j)
{
    if (j->impl == SHARDED) {
        for (size_t i = 0; i < j->n; i++)
            j->ids[i] = fs9_registry_add(j->r, &j->handles[i]);
    } else {
        for (size_t i = 0; i < j->n; i++)
            j->ids[i] = greg_add(j->g, &j->handles[i]);
    }
}

static void run_lookup(struct job *j)
{
    uint64_t x = j->seed | 1;
    size_t mask = j->nids - 1;
    long misses = 0;
    if (j->impl == SHARDED) {
        for (size_t i = 0; i < j->lookups; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            struct fs9_handle *h = fs9_registry_acquire(j->r, j->ids[x & mask]);
            if (h)
                fs9_registry_release(j->r, h);
            else
                misses++;
        }
    } else {
        for (size_t i = 0; i < j->lookups; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            struct fs9_handle *h = greg_acquire(j->g, j->ids[x & mask]);
            if (h)
                greg_release(j->g, h);
            else
                misses++;
        }
    }
    j->misses = misses;
}

static void run_close(struct job *j)
{
    if (j->impl == SHARDED) {
        for (size_t i = 0; i < j->n; i++) {
            struct fs9_handle *h = fs9_registry_take(j->r, j->ids[i]);
            if (h)
                fs9_registry_release(j->r, h);
        }
    } else {
        for (size_t i = 0; i < j->n; i++) {
            struct fs9_handle *h = greg_take(j->g, j->ids[i]);
            if (h)
                greg_release(j->g, h);
        }
    }
}

static void *job_main(void *arg)
{
    struct job *j = arg;
    pthread_barrier_wait(j->start);
    j->t0 = now_s();
    switch (j->op) {
    case OP_OPEN:
        run_open(j);
        break;
    case OP_LOOKUP:
        run_lookup(j);
        break;
    case OP_CLOSE:
        run_close(j);
        break;
    }
    j->t1 = now_s();
    return NULL;
}

/* Run jobs[0..nthreads) at once; seconds from first start to last end. */
static double run_jobs(struct job *jobs, int nthreads)
{
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)nthreads);
    pthread_t th[2];
    for (int i = 0; i < nthreads; i++) {
        jobs[i].start = &start;
        pthread_create(&th[i], NULL, job_main, &jobs[i]);
    }
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    double t0 = jobs[0].t0, t1 = jobs[0].t1;
    for (int i = 1; i < nthreads; i++) {
        if (jobs[i].t0 < t0)
            t0 = jobs[i].t0;
        if (jobs[i].t1 > t1)
            t1 = jobs[i].t1;
    }
    return t1 - t0;
}

struct sizes {
    size_t open_n;    /* handles each thread opens and closes */
    size_t lookups;   /* acquire+release pairs per thread */
    size_t working;   /* handles each thread looks up (power of 2) */
    size_t contended; /* handles both threads share (power of 2) */
};

/* Results of one repetition, ops per second. */
enum fig {
    F_OPEN_1T, F_OPEN_2T,
    F_LOOKUP_1T, F_LOOKUP_2T, F_LOOKUP_2T_CONT,
    F_CLOSE_1T, F_CLOSE_2T, F_CLOSE_2T_CONT,
    F_COUNT
};
static const char *const fig_op[F_COUNT] = {
    "open", "open", "lookup", "lookup", "lookup", "close", "close", "close",
};
static const char *const fig_threads[F_COUNT] = {
    "1t", "2t", "1t", "2t", "2t_contended", "1t", "2t", "2t_contended",
};
static const char *const fig_label[F_COUNT] = {
    "open (add)            1 thread",
    "open (add)            2 threads",
    "lookup (acq+rel)      1 thread",
    "lookup (acq+rel)      2 threads, own handles",
    "lookup (acq+rel)      2 threads, same 8 handles",
    "close (take+rel)      1 thread",
    "close (take+rel)      2 threads, own handles",
    "close (take+rel)      2 threads, same handles",
};

static void one_rep(enum impl impl, const struct sizes *sz, double *out)
{
    struct fs9_registry *r = NULL;
    struct greg *g = NULL;
    if (impl == SHARDED)
        r = fs9_registry_new(noop_close, NULL);
    else
        g = greg_new(noop_close, NULL);
    size_t n = sz->open_n;
    struct fs9_handle *hs = calloc(2 * n, sizeof(*hs));
    uint64_t *ids = calloc(2 * n, sizeof(*ids));
    if (!hs || !ids) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    struct job jobs[2];
    for (int threads = 1; threads <= 2; threads++) {
        for (int t = 0; t < threads; t++)
            jobs[t] = (struct job){.impl = impl, .r = r, .g = g,
                                   .op = OP_OPEN, .handles = hs + t * n,
                                   .ids = ids + t * n, .n = n,
                                   .nids = sz->working,
                                   .lookups = sz->lookups,
                                   .seed = 0x9E3779B97F4A7C15u * (t + 1)};
        double s = run_jobs(jobs, threads);
        out[threads == 1 ? F_OPEN_1T : F_OPEN_2T] = (double)(n * threads) / s;
        /* Lookups spread over each thread's first `working` handles,
         * shuffled so consecutive lookups hit different shards. */
        for (int t = 0; t < threads; t++)
            jobs[t].op = OP_LOOKUP;
        s = run_jobs(jobs, threads);
        out[threads == 1 ? F_LOOKUP_1T : F_LOOKUP_2T] =
            (double)(sz->lookups * threads) / s;
        for (int t = 0; t < threads; t++)
            if (jobs[t].misses)
                fprintf(stderr, "lookup missed %ld\n", jobs[t].misses);
        for (int t = 0; t < threads; t++)
            jobs[t].op = OP_CLOSE;
        s = run_jobs(jobs, threads);
        out[threads == 1 ? F_CLOSE_1T : F_CLOSE_2T] =
            (double)(n * threads) / s;
    }
    /* Contended lookups: both threads on the same few handles. */
    for (int t = 0; t < 2; t++)
        jobs[t] = (struct job){.impl = impl, .r = r, .g = g, .op = OP_OPEN,
                               .handles = hs, .ids = ids,
                               .n = sz->contended, .nids = sz->contended,
                               .lookups = sz->lookups,
                               .seed = 0x9E3779B97F4A7C15u * (t + 1)};
    run_jobs(jobs, 1);
    for (int t = 0; t < 2; t++)
        jobs[t].op = OP_LOOKUP;
    double s = run_jobs(jobs, 2);
    out[F_LOOKUP_2T_CONT] = (double)(sz->lookups * 2) / s;
    jobs[0].op = OP_CLOSE;
    run_jobs(jobs, 1);
    /* Contended close: both threads try to close every one of the same
     * handles in the same order; each handle is closed once.  Counted in
     * handles closed per second. */
    for (int t = 0; t < 2; t++)
        jobs[t] = (struct job){.impl = impl, .r = r, .g = g, .op = OP_OPEN,
                               .handles = hs, .ids = ids, .n = n};
    run_jobs(jobs, 1);
    for (int t = 0; t < 2; t++)
        jobs[t].op = OP_CLOSE;
    s = run_jobs(jobs, 2);
    out[F_CLOSE_2T_CONT] = (double)n / s;
    free(hs);
    free(ids);
    if (r)
        fs9_registry_free(r);
    else
        greg_free(g);
}

/* ------------------------------------------------- the lock primitive */

/* Lock, a critical section like a lookup's (a few loads and a store on
 * two lines), unlock: the spinlock against a pthread mutex, alone and
 * with two threads on one lock. */
struct lockjob {
    int use_mutex;
    spin_t *spin;
    pthread_mutex_t *mu;
    uint64_t *shared; /* two cache lines of "table" */
    size_t iters;
    pthread_barrier_t *start;
    double t0, t1;
};

static void *lock_main(void *arg)
{
    struct lockjob *j = arg;
    pthread_barrier_wait(j->start);
    j->t0 = now_s();
    if (j->use_mutex) {
        for (size_t i = 0; i < j->iters; i++) {
            pthread_mutex_lock(j->mu);
            j->shared[0] += j->shared[8] + 1;
            pthread_mutex_unlock(j->mu);
        }
    } else {
        for (size_t i = 0; i < j->iters; i++) {
            spin_lock(j->spin);
            j->shared[0] += j->shared[8] + 1;
            spin_unlock(j->spin);
        }
    }
    j->t1 = now_s();
    return NULL;
}

/* Lock/unlock pairs per second on `threads` threads sharing one lock. */
static double lock_rate(int use_mutex, int threads, size_t iters)
{
    _Alignas(64) spin_t spin = 0;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    _Alignas(64) uint64_t shared[16] = {0};
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)threads);
    struct lockjob j[2];
    pthread_t th[2];
    for (int t = 0; t < threads; t++) {
        j[t] = (struct lockjob){use_mutex, &spin, &mu, shared, iters, &start,
                                0, 0};
        pthread_create(&th[t], NULL, lock_main, &j[t]);
    }
    for (int t = 0; t < threads; t++)
        pthread_join(th[t], NULL);
    pthread_barrier_destroy(&start);
    double t0 = j[0].t0, t1 = j[0].t1;
    for (int t = 1; t < threads; t++) {
        t0 = j[t].t0 < t0 ? j[t].t0 : t0;
        t1 = j[t].t1 > t1 ? j[t].t1 : t1;
    }
    return (double)(iters * (size_t)threads) / (t1 - t0);
}

/* -------------------------------------------------------------- memory */

static long resident_pages(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident;
}

static void close_and_free(struct fs9_handle *h, void *arg)
{
    (void)arg;
    free(h->path);
    free(h);
}

struct mem_result {
    double rss_per_handle;  /* resident growth / handles */
    double heap_per_handle; /* malloc's in-use growth / handles */
    double table_per_handle;
};

/* Register n handles as the FUSE front would (a calloc'ed struct and a
 * malloc'ed path each) and see what resident memory grows by. */
static struct mem_result measure_memory(size_t n)
{
    struct mem_result res;
    uint64_t *ids = malloc(n * sizeof(*ids));
    struct fs9_registry *r = fs9_registry_new(close_and_free, NULL);
    /* Give back what earlier runs freed, so growth is really new pages. */
    memset(ids, 0, n * sizeof(*ids)); /* touched before the window */
    malloc_trim(0);
    long page = sysconf(_SC_PAGESIZE);
    struct mallinfo2 mi0 = mallinfo2();
    long rss0 = resident_pages();
    for (size_t i = 0; i < n; i++) {
        struct fs9_handle *h = calloc(1, sizeof(*h));
        char buf[64];
        int len = snprintf(buf, sizeof(buf), "/dir%03zu/file%07zu",
                           i % 1000, i);
        h->path = malloc((size_t)len + 1);
        memcpy(h->path, buf, (size_t)len + 1);
        h->flags = 2;
        h->nodeid = i + 1;
        ids[i] = fs9_registry_add(r, h);
    }
    long rss1 = resident_pages();
    struct mallinfo2 mi1 = mallinfo2();
    size_t table = fs9_registry_memory(r);
    /* The ids array was allocated and touched before the window: the
     * handles, their paths and the registry tables are all that grew. */
    res.rss_per_handle = (double)(rss1 - rss0) * (double)page / (double)n;
    res.heap_per_handle =
        ((double)(mi1.uordblks + mi1.hblkhd) -
         (double)(mi0.uordblks + mi0.hblkhd)) / (double)n;
    res.table_per_handle = (double)table / (double)n;
    for (size_t i = 0; i < n; i++)
        fs9_registry_release(r, fs9_registry_take(r, ids[i]));
    fs9_registry_free(r);
    free(ids);
    return res;
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    int quick = 0, reps = 5;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--quick] [--reps N]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1)
        reps = 1;
    if (reps > 31)
        reps = 31;
    struct sizes sz = {
        .open_n = quick ? 50000 : 500000,
        .lookups = quick ? 500000 : 5000000,
        .working = 4096,
        .contended = 8,
    };
    size_t mem_n = quick ? 200000 : 1000000;

    /* Memory first, while the heap is fresh. */
    double rss[31], heap[31], tab[31];
    for (int i = 0; i < reps; i++) {
        struct mem_result m = measure_memory(mem_n);
        rss[i] = m.rss_per_handle;
        heap[i] = m.heap_per_handle;
        tab[i] = m.table_per_handle;
    }
    double rss_m = median(rss, reps), heap_m = median(heap, reps),
           tab_m = median(tab, reps);

    /* [spin, mutex] x [1 thread, 2 threads], alternating. */
    double lk[2][2][31];
    size_t lock_iters = quick ? 1000000 : 10000000;
    for (int i = 0; i < reps; i++)
        for (int mu = 0; mu < 2; mu++)
            for (int t = 0; t < 2; t++)
                lk[mu][t][i] = lock_rate(mu, t + 1, lock_iters);
    double lock_med[2][2];
    for (int mu = 0; mu < 2; mu++)
        for (int t = 0; t < 2; t++)
            lock_med[mu][t] = median(lk[mu][t], reps);

    double res[2][F_COUNT][31];
    /* Warm up once (page faults, frequency), then alternate the two
     * implementations so drift on a shared machine hits both alike. */
    double scratch[F_COUNT];
    one_rep(SHARDED, &sz, scratch);
    for (int i = 0; i < reps; i++) {
        double out[F_COUNT];
        one_rep(SHARDED, &sz, out);
        for (int f = 0; f < F_COUNT; f++)
            res[SHARDED][f][i] = out[f];
        one_rep(GLOBAL, &sz, out);
        for (int f = 0; f < F_COUNT; f++)
            res[GLOBAL][f][i] = out[f];
    }
    double med[2][F_COUNT];
    for (int impl = 0; impl < 2; impl++)
        for (int f = 0; f < F_COUNT; f++)
            med[impl][f] = median(res[impl][f], reps);

    printf("handle registry — median of %d runs, shard lock: %s%s\n", reps,
           LOCK_NAME, quick ? " (quick)" : "");
    printf("open/close: %zu handles per thread; lookup: %zu per thread over "
           "%zu handles (contended: %zu shared)\n\n",
           sz.open_n, sz.lookups, sz.working, sz.contended);
    printf("%-48s %14s %14s %8s\n", "operation", "sharded Mop/s",
           "global Mop/s", "ratio");
    for (int f = 0; f < F_COUNT; f++)
        printf("%-48s %14.2f %14.2f %7.2fx\n", fig_label[f],
               med[SHARDED][f] / 1e6, med[GLOBAL][f] / 1e6,
               med[SHARDED][f] / med[GLOBAL][f]);
    printf("\nthe lock alone (lock, short critical section, unlock):\n");
    printf("  %-10s %16s %24s\n", "", "1 thread ns/pair",
           "2 threads, one lock Mop/s");
    for (int mu = 0; mu < 2; mu++)
        printf("  %-10s %16.1f %24.2f\n", mu ? "mutex" : "spinlock",
               1e9 / lock_med[mu][0], lock_med[mu][1] / 1e6);
    printf("\nmemory, %zu handles with \"/dirNNN/fileNNNNNNN\" paths:\n",
           mem_n);
    printf("  resident growth   %7.1f bytes/handle\n", rss_m);
    printf("  malloc in use     %7.1f bytes/handle (struct %zu + path)\n",
           heap_m, sizeof(struct fs9_handle));
    printf("  registry tables   %7.1f bytes/handle\n\n", tab_m);

    for (int impl = 0; impl < 2; impl++)
        for (int f = 0; f < F_COUNT; f++) {
            printf("BENCH registry.%s.%s.%s lock=%s ops_per_s=%.0f\n",
                   fig_op[f], impl == SHARDED ? "sharded" : "global",
                   fig_threads[f], LOCK_NAME, med[impl][f]);
        }
    for (int mu = 0; mu < 2; mu++) {
        printf("BENCH registry.lock.%s.1t ns_per_pair=%.2f ops_per_s=%.0f\n",
               mu ? "mutex" : "spin", 1e9 / lock_med[mu][0], lock_med[mu][0]);
        printf("BENCH registry.lock.%s.2t_contended ops_per_s=%.0f\n",
               mu ? "mutex" : "spin", lock_med[mu][1]);
    }
    printf("BENCH registry.memory.%zu_handles lock=%s "
           "rss_bytes_per_handle=%.1f heap_bytes_per_handle=%.1f "
           "table_bytes_per_handle=%.1f\n",
           mem_n, LOCK_NAME, rss_m, heap_m, tab_m);
    return 0;
}
