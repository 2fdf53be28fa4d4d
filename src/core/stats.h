/*
 * stats — operation counters and latency histograms of a namespace, read
 * as text from /.fs9/stats.
 *
 * Recording is a few relaxed atomic adds (no lock) so it can stay on in
 * production.  Latencies go into log-linear buckets (4 per power of two),
 * which puts p50/p99 within about 19% of the true value.
 */
#ifndef FS9_CORE_STATS_H
#define FS9_CORE_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define FS9_STATS_MAX_OPS 48
#define FS9_STATS_BUCKETS 160

struct fs9_op_stats {
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t errors;
    atomic_uint_fast64_t buckets[FS9_STATS_BUCKETS];
} __attribute__((aligned(64)));

struct fs9_stats {
    const char *const *names; /**< op names, NULL-terminated */
    size_t nops;
    struct fs9_op_stats ops[FS9_STATS_MAX_OPS];
};

/** Prepare `s` for the operations named in `names` (NULL-terminated, at
 *  most FS9_STATS_MAX_OPS, borrowed for the life of `s`). */
void fs9_stats_init(struct fs9_stats *s, const char *const *names);

/** Count one operation `op` that took `ns` nanoseconds; `failed` when it
 *  answered an error. */
void fs9_stats_record(struct fs9_stats *s, unsigned op, int failed,
                      uint64_t ns);

/** Latency percentile `p` (0-100) of `op` in nanoseconds; 0 without data. */
uint64_t fs9_stats_percentile(const struct fs9_stats *s, unsigned op,
                              double p);

/** Append "op.NAME.count N", ".errors", ".p50_us", ".p99_us" lines for
 *  every operation seen at least once to `buf` (size `size`) from `*len`
 *  on; *len grows by what was written (never past size - 1). */
void fs9_stats_render(const struct fs9_stats *s, char *buf, size_t size,
                      size_t *len);

#endif
