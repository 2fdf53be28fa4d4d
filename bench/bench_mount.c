/*
 * bench_mount — mount resolution latency with 10, 1,000 and 10,000 mounts.
 *
 *   bench_mount [--quick] [--reps N]
 *
 * Each table has a root mount, mounts shaped like /m%05d/sub (with the
 * inner node /m%05d) and nested ones like /a%03d/b%d/c.  The queries mix
 * paths below mounts, exact mount points, and paths that fall through to
 * the root mount (an inner node without a mount, a sibling name, a name
 * that only shares a prefix such as /m00042x, an unrelated tree).  Every
 * resolve takes and drops the mount reference, as callers do.
 *
 * Single calls are far below clock resolution, so calls are timed in
 * batches (clock_gettime around B calls, divided by B); the distribution of
 * batch averages gives p50/p99.  The baseline is a linear scan of all mount
 * paths for the longest component-prefix match.  Also reported: resolves
 * per second on two threads at once (readers never contend), and how long
 * adding and removing 10,000 mounts one after another takes.  Figures are
 * medians of --reps runs (default 5).
 *
 * Prints a table, then one line per figure:
 *   BENCH mount.resolve.<impl>.<N> p50_ns=… p99_ns=… ops_per_s=…
 * Build with -Dbuildtype=release.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mount.h"

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

/* Sorts v. */
static double percentile(double *v, size_t n, double p)
{
    qsort(v, n, sizeof(*v), cmp_double);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

static double median(double *v, int n)
{
    return percentile(v, (size_t)n, 0.5);
}

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static void release_mount(struct fs9_mount *m)
{
    free(m->path);
    free(m);
}

static struct fs9_mount *new_mount(const char *path)
{
    struct fs9_mount *m = calloc(1, sizeof(*m));
    m->path = strdup(path);
    atomic_init(&m->refs, 1);
    m->release = release_mount;
    return m;
}

/* The mount paths of a table with n mounts (including "/"). */
static char **make_paths(size_t n)
{
    char **p = calloc(n, sizeof(*p));
    char buf[64];
    p[0] = strdup("/");
    size_t nested = n / 5; /* a fifth nested three deep */
    for (size_t i = 1; i < n; i++) {
        if (i <= nested)
            snprintf(buf, sizeof(buf), "/a%03zu/b%zu/c", (i - 1) / 10,
                     (i - 1) % 10);
        else
            snprintf(buf, sizeof(buf), "/m%05zu/sub", i - nested - 1);
        p[i] = strdup(buf);
    }
    return p;
}

/* Queries for a table built from make_paths(n). */
static char **make_queries(size_t n, size_t nq)
{
    char **q = calloc(nq, sizeof(*q));
    char buf[128];
    uint64_t seed = n;
    size_t nested = n / 5, nm = n - 1 - nested;
    for (size_t i = 0; i < nq; i++) {
        uint64_t r = rnd(&seed);
        size_t m = nm ? (size_t)(r >> 16) % nm : 0;
        size_t a = nested ? (size_t)(r >> 40) % nested : 0;
        switch (r % 20) {
        case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7:
            snprintf(buf, sizeof(buf), "/m%05zu/sub/src/dir%zu/file%zu.c", m,
                     (size_t)(r >> 8) % 100, (size_t)(r >> 24) % 1000);
            break;
        case 8: case 9: case 10:
            snprintf(buf, sizeof(buf), "/a%03zu/b%zu/c/x/y.txt", a / 10,
                     a % 10);
            break;
        case 11: case 12:
            snprintf(buf, sizeof(buf), "/m%05zu/sub", m);
            break;
        case 13: case 14: /* inner node, no mount: the root serves it */
            snprintf(buf, sizeof(buf), "/m%05zu/other/file", m);
            break;
        case 15: case 16: /* shares a prefix, not a component */
            snprintf(buf, sizeof(buf), "/m%05zux/sub/file", m);
            break;
        default:
            snprintf(buf, sizeof(buf), "/home/user/src/project/file%zu.c",
                     (size_t)(r >> 8) % 1000);
            break;
        }
        q[i] = strdup(buf);
    }
    return q;
}

/* ------------------------------------------------------------ baseline */

struct linear {
    struct fs9_mount **m;
    size_t *len;
    size_t n;
};

static struct fs9_mount *linear_resolve(const struct linear *l,
                                        const char *path, const char **rel)
{
    size_t plen = strlen(path);
    size_t best_len = 0;
    struct fs9_mount *best = NULL;
    for (size_t i = 0; i < l->n; i++) {
        size_t len = l->len[i];
        if (len == 1) { /* "/" covers everything */
            if (!best) {
                best = l->m[i];
                best_len = 1;
            }
            continue;
        }
        if (len > plen || len <= best_len ||
            memcmp(path, l->m[i]->path, len) != 0 ||
            (path[len] != '/' && path[len] != '\0'))
            continue;
        best = l->m[i];
        best_len = len;
    }
    if (best) {
        fs9_mount_ref(best);
        *rel = best_len == 1 ? path + 1
               : path[best_len] ? path + best_len + 1
                                : path + best_len;
    }
    return best;
}

/* -------------------------------------------------------------- timing */

struct dist {
    double p50, p99, ops;
};

static volatile uintptr_t sink;

/* `batches` batches of `b` resolves each, queries in order. */
static struct dist time_resolve(struct fs9_mount_table *t,
                                const struct linear *l, char **q, size_t nq,
                                size_t b, size_t batches)
{
    double *per = malloc(batches * sizeof(*per));
    size_t qi = 0;
    double total = 0;
    uintptr_t acc = 0;
    for (size_t k = 0; k < batches; k++) {
        double t0 = now_s();
        for (size_t i = 0; i < b; i++) {
            const char *rel;
            struct fs9_mount *m = t ? fs9_mount_table_resolve(t, q[qi], &rel,
                                                              NULL)
                                    : linear_resolve(l, q[qi], &rel);
            acc += (uintptr_t)rel;
            fs9_mount_unref(m);
            if (++qi == nq)
                qi = 0;
        }
        double dt = now_s() - t0;
        per[k] = dt / (double)b * 1e9;
        total += dt;
    }
    sink = acc;
    struct dist d;
    d.ops = (double)(b * batches) / total;
    d.p99 = percentile(per, batches, 0.99);
    d.p50 = percentile(per, batches, 0.50);
    free(per);
    return d;
}

struct reader {
    struct fs9_mount_table *t;
    char **q;
    size_t nq, calls;
    pthread_barrier_t *start;
    double t0, t1;
    uintptr_t acc;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    pthread_barrier_wait(r->start);
    r->t0 = now_s();
    size_t qi = 0;
    uintptr_t acc = 0;
    for (size_t i = 0; i < r->calls; i++) {
        const char *rel;
        struct fs9_mount *m = fs9_mount_table_resolve(r->t, r->q[qi], &rel,
                                                      NULL);
        acc += (uintptr_t)rel;
        fs9_mount_unref(m);
        if (++qi == r->nq)
            qi = 0;
    }
    r->acc = acc; /* keep the work observable */
    r->t1 = now_s();
    return NULL;
}

static double two_threads(struct fs9_mount_table *t, char **q, size_t nq,
                          size_t calls)
{
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    struct reader r[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        r[i] = (struct reader){.t = t, .q = q + i * (nq / 2), .nq = nq / 2,
                               .calls = calls, .start = &start};
        pthread_create(&th[i], NULL, reader_main, &r[i]);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    sink = r[0].acc + r[1].acc;
    double t0 = r[0].t0 < r[1].t0 ? r[0].t0 : r[1].t0;
    double t1 = r[0].t1 > r[1].t1 ? r[0].t1 : r[1].t1;
    return (double)(2 * calls) / (t1 - t0);
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
    const size_t sizes[] = {10, 1000, 10000};
    enum { NSIZES = 3, NQ = 4096, B = 64 };
    size_t trie_batches = quick ? 500 : 5000;

    struct dist med[2][NSIZES];
    double mt[NSIZES];
    double add_s = 0, remove_s = 0;

    for (int si = 0; si < NSIZES; si++) {
        size_t n = sizes[si];
        char **paths = make_paths(n);
        char **q = make_queries(n, NQ);
        struct fs9_mount_table *t = fs9_mount_table_new();
        struct linear l = {.m = calloc(n, sizeof(*l.m)),
                           .len = calloc(n, sizeof(size_t)), .n = n};
        double a0 = now_s();
        for (size_t i = 0; i < n; i++) {
            l.m[i] = new_mount(paths[i]);
            l.len[i] = strlen(paths[i]);
            if (fs9_mount_table_add(t, l.m[i]) != 0) {
                fprintf(stderr, "mount %s failed\n", paths[i]);
                return 1;
            }
        }
        if (n == 10000)
            add_s = now_s() - a0;
        /* Sanity: both implementations agree on every query. */
        for (size_t i = 0; i < NQ; i++) {
            const char *r1, *r2;
            struct fs9_mount *m1 = fs9_mount_table_resolve(t, q[i], &r1, NULL);
            struct fs9_mount *m2 = linear_resolve(&l, q[i], &r2);
            if (m1 != m2 || r1 != r2) {
                fprintf(stderr, "mismatch on %s: %s vs %s\n", q[i],
                        m1 ? m1->path : "-", m2 ? m2->path : "-");
                return 1;
            }
            fs9_mount_unref(m1);
            fs9_mount_unref(m2);
        }
        /* Keep the baseline's total work near the trie's few hundred
         * thousand calls; it is O(n) per call. */
        size_t lin_b = n >= 1000 ? 8 : B;
        size_t lin_batches = n >= 10000 ? (quick ? 60 : 300)
                             : n >= 1000 ? (quick ? 300 : 2000)
                                         : trie_batches;
        struct dist d[2][31];
        double p[31];
        time_resolve(t, NULL, q, NQ, B, trie_batches / 5); /* warm up */
        for (int r = 0; r < reps; r++) {
            d[0][r] = time_resolve(t, NULL, q, NQ, B, trie_batches);
            d[1][r] = time_resolve(NULL, &l, q, NQ, lin_b, lin_batches);
            p[r] = two_threads(t, q, NQ, quick ? 200000 : 2000000);
        }
        for (int impl = 0; impl < 2; impl++) {
            double v50[31], v99[31], vops[31];
            for (int r = 0; r < reps; r++) {
                v50[r] = d[impl][r].p50;
                v99[r] = d[impl][r].p99;
                vops[r] = d[impl][r].ops;
            }
            med[impl][si] = (struct dist){median(v50, reps),
                                          median(v99, reps),
                                          median(vops, reps)};
        }
        mt[si] = median(p, reps);
        if (n == 10000) {
            double r0 = now_s();
            for (size_t i = n; i-- > 0;) {
                struct fs9_mount *m;
                if (fs9_mount_table_remove(t, paths[i], NULL, NULL, &m) == 0)
                    fs9_mount_unref(m);
            }
            remove_s = now_s() - r0;
        }
        fs9_mount_table_free(t);
        for (size_t i = 0; i < n; i++) {
            fs9_mount_unref(l.m[i]);
            free(paths[i]);
        }
        for (size_t i = 0; i < NQ; i++)
            free(q[i]);
        free(paths);
        free(q);
        free(l.m);
        free(l.len);
    }

    printf("mount resolution — median of %d runs, batches of %d calls%s\n\n",
           reps, B, quick ? " (quick)" : "");
    printf("%8s  %-12s %10s %10s %14s\n", "mounts", "impl", "p50 ns",
           "p99 ns", "resolves/s");
    for (int si = 0; si < NSIZES; si++)
        for (int impl = 0; impl < 2; impl++)
            printf("%8zu  %-12s %10.1f %10.1f %14.0f\n", sizes[si],
                   impl ? "linear scan" : "trie (RCU)", med[impl][si].p50,
                   med[impl][si].p99, med[impl][si].ops);
    printf("\n%8s  %-12s %25s\n", "mounts", "impl", "resolves/s, 2 threads");
    for (int si = 0; si < NSIZES; si++)
        printf("%8zu  %-12s %25.0f\n", sizes[si], "trie (RCU)", mt[si]);
    printf("\nadd 10,000 mounts one by one: %.3f s; remove them: %.3f s\n\n",
           add_s, remove_s);

    for (int si = 0; si < NSIZES; si++)
        for (int impl = 0; impl < 2; impl++)
            printf("BENCH mount.resolve.%s.%zu p50_ns=%.1f p99_ns=%.1f "
                   "ops_per_s=%.0f\n",
                   impl ? "linear" : "trie", sizes[si], med[impl][si].p50,
                   med[impl][si].p99, med[impl][si].ops);
    for (int si = 0; si < NSIZES; si++)
        printf("BENCH mount.resolve.trie.%zu.2t ops_per_s=%.0f\n", sizes[si],
               mt[si]);
    printf("BENCH mount.add.10000 seconds=%.3f\n", add_s);
    printf("BENCH mount.remove.10000 seconds=%.3f\n", remove_s);
    return 0;
}
