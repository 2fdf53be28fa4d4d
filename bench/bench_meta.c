/*
 * bench_meta — metadata operations through any directory, timed from the
 * application's side (for scripts/bench-localfs.sh, which runs it on
 * tmpfs, on libfuse's passthrough_ll and on fs9 over the same files).
 *
 *   bench_meta create-stat-unlink DIR N
 *       In DIR (which must exist and be empty of names "f<i>"): create N
 *       empty files (open O_CREAT|O_EXCL|O_WRONLY, close), then stat each
 *       one, then unlink each one.  Prints the time of each phase and the
 *       rate of whole files (create + stat + unlink) per second.
 *   bench_meta getxattr FILE N
 *       N getxattr() calls for an attribute FILE does not have (what ls -l
 *       asks for every file: security.selinux, system.posix_acl_access);
 *       a probe of the per-request cost of a file system.
 *   bench_meta lookup-miss DIR N
 *       N stat() calls of a name that does not exist in DIR.
 *
 * Output: one line of key=value pairs (seconds and rates), e.g.
 *   create_s=0.41 stat_s=0.02 unlink_s=0.35 total_s=0.78 files_per_s=12820
 * Exit status 1, with the failing call and errno on stderr, if any call
 * fails: a benchmark that hides an error measures nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int die(const char *what, const char *path)
{
    fprintf(stderr, "bench_meta: %s %s: %s\n", what, path, strerror(errno));
    return 1;
}

static int create_stat_unlink(const char *dir, long n)
{
    char path[4096];
    struct stat st;
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/f%ld", dir, i);
        int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
        if (fd < 0)
            return die("create", path);
        if (close(fd) < 0)
            return die("close", path);
    }
    double t1 = now_s();
    for (long i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/f%ld", dir, i);
        if (stat(path, &st) < 0)
            return die("stat", path);
    }
    double t2 = now_s();
    for (long i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/f%ld", dir, i);
        if (unlink(path) < 0)
            return die("unlink", path);
    }
    double t3 = now_s();
    printf("create_s=%.4f stat_s=%.4f unlink_s=%.4f total_s=%.4f "
           "files_per_s=%.0f\n",
           t1 - t0, t2 - t1, t3 - t2, t3 - t0, (double)n / (t3 - t0));
    return 0;
}

static int getxattr_loop(const char *file, long n)
{
    char buf[256];
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        if (getxattr(file, "user.fs9-bench-absent", buf, sizeof buf) >= 0 ||
            (errno != ENODATA && errno != EOPNOTSUPP))
            return die("getxattr", file);
    }
    double t = now_s() - t0;
    printf("total_s=%.4f us_per_op=%.2f ops_per_s=%.0f\n", t,
           t * 1e6 / (double)n, (double)n / t);
    return 0;
}

static int lookup_miss(const char *dir, long n)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/fs9-bench-absent", dir);
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        if (stat(path, &st) == 0 || errno != ENOENT)
            return die("stat", path);
    }
    double t = now_s() - t0;
    printf("total_s=%.4f us_per_op=%.2f ops_per_s=%.0f\n", t,
           t * 1e6 / (double)n, (double)n / t);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: bench_meta create-stat-unlink DIR N | "
                        "getxattr FILE N | lookup-miss DIR N\n");
        return 2;
    }
    long n = strtol(argv[3], NULL, 10);
    if (n <= 0) {
        fprintf(stderr, "bench_meta: N must be positive\n");
        return 2;
    }
    if (!strcmp(argv[1], "create-stat-unlink"))
        return create_stat_unlink(argv[2], n);
    if (!strcmp(argv[1], "getxattr"))
        return getxattr_loop(argv[2], n);
    if (!strcmp(argv[1], "lookup-miss"))
        return lookup_miss(argv[2], n);
    fprintf(stderr, "bench_meta: unknown mode '%s'\n", argv[1]);
    return 2;
}
