/* stats — see stats.h. */
#include "core/stats.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void fs9_stats_init(struct fs9_stats *s, const char *const *names)
{
    memset(s, 0, sizeof *s);
    s->names = names;
    while (names[s->nops] && s->nops < FS9_STATS_MAX_OPS)
        s->nops++;
}

/* Bucket of a latency: 4 buckets per power of two of nanoseconds. */
static unsigned bucket_of(uint64_t ns)
{
    if (ns < 4)
        return (unsigned)ns;
    unsigned hi = 63 - (unsigned)__builtin_clzll(ns);    /* >= 2 */
    unsigned sub = (unsigned)(ns >> (hi - 2)) & 3u;     /* next 2 bits */
    unsigned b = (hi - 1) * 4 + sub;
    return b < FS9_STATS_BUCKETS ? b : FS9_STATS_BUCKETS - 1;
}

/* Upper bound of a bucket, in nanoseconds. */
static uint64_t bucket_top(unsigned b)
{
    if (b < 4)
        return b;
    unsigned hi = b / 4 + 1, sub = b % 4;
    return ((uint64_t)(4 + sub + 1) << (hi - 2)) - 1;
}

void fs9_stats_record(struct fs9_stats *s, unsigned op, int failed,
                      uint64_t ns)
{
    if (op >= s->nops)
        return;
    struct fs9_op_stats *o = &s->ops[op];
    atomic_fetch_add_explicit(&o->count, 1, memory_order_relaxed);
    if (failed)
        atomic_fetch_add_explicit(&o->errors, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&o->buckets[bucket_of(ns)], 1,
                              memory_order_relaxed);
}

uint64_t fs9_stats_percentile(const struct fs9_stats *s, unsigned op,
                              double p)
{
    if (op >= s->nops)
        return 0;
    const struct fs9_op_stats *o = &s->ops[op];
    uint64_t total = 0, seen = 0;
    uint64_t snap[FS9_STATS_BUCKETS];
    for (unsigned b = 0; b < FS9_STATS_BUCKETS; b++) {
        snap[b] = atomic_load_explicit(&o->buckets[b], memory_order_relaxed);
        total += snap[b];
    }
    if (total == 0)
        return 0;
    uint64_t want = (uint64_t)(p / 100.0 * (double)total + 0.5);
    if (want == 0)
        want = 1;
    for (unsigned b = 0; b < FS9_STATS_BUCKETS; b++) {
        seen += snap[b];
        if (seen >= want)
            return bucket_top(b);
    }
    return bucket_top(FS9_STATS_BUCKETS - 1);
}

static void append(char *buf, size_t size, size_t *len, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
    if (*len + 1 >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, size - *len, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len += (size_t)n < size - *len ? (size_t)n : size - *len - 1;
}

void fs9_stats_render(const struct fs9_stats *s, char *buf, size_t size,
                      size_t *len)
{
    for (unsigned i = 0; i < s->nops; i++) {
        uint64_t n = atomic_load(&s->ops[i].count);
        if (!n)
            continue;
        const char *name = s->names[i];
        append(buf, size, len, "op.%s.count %llu\n", name,
               (unsigned long long)n);
        append(buf, size, len, "op.%s.errors %llu\n", name,
               (unsigned long long)atomic_load(&s->ops[i].errors));
        append(buf, size, len, "op.%s.p50_us %.1f\n", name,
               (double)fs9_stats_percentile(s, i, 50) / 1000.0);
        append(buf, size, len, "op.%s.p99_us %.1f\n", name,
               (double)fs9_stats_percentile(s, i, 99) / 1000.0);
    }
}
