/*
 * bench_fuse — file operations through any file system, timed from the
 * application's side: what one request costs through FUSE (scripts/bench.sh
 * runs it on tmpfs, on libfuse's passthrough_ll, on fs9 memfs and on fs9
 * over the null provider bench/nullfs).
 *
 *   bench_fuse getattr FILE [-t THREADS] [-p PROCS] [-s SECONDS] [-f]
 *                   [-n COUNT]
 *       stat(FILE) in a tight loop (-f: fstat of one open descriptor) on
 *       THREADS threads (1) in each of PROCS processes (1), for SECONDS
 *       (2), or COUNT calls per thread.  Mount with attribute caching off
 *       to make every call a request.
 *   bench_fuse read FILE -b BS [-n BYTES] [-d] [-a HINT]
 *       Sequential pread() of BS bytes up to BYTES in all (the file's size),
 *       wrapping around at its end; -d: O_DIRECT.  Before each pass over
 *       the file its page cache is dropped (POSIX_FADV_DONTNEED) so the
 *       data comes from the file system; -a 1 adds POSIX_FADV_SEQUENTIAL
 *       as fio's default fadvise_hint=1 does (the kernel doubles its
 *       read-ahead), -a 0 (the default) does not.
 *   bench_fuse write FILE -b BS [-n BYTES] [-d]
 *       Sequential pwrite() of BS bytes (the file is not truncated).
 *   bench_fuse open FILE [-n COUNT]
 *       open(O_RDONLY) + close() COUNT (10000) times.
 *   bench_fuse latency PATH -o OP [-n COUNT] [-i MS]
 *       COUNT (200) single operations, MS (5) milliseconds apart, each
 *       timed: OP is stat (stat PATH), ls (opendir, readdir to the end,
 *       closedir on directory PATH) or read (open, read 4 KiB, close).
 *       Prints the median, p99 and maximum in microseconds.
 *   bench_fuse flood FILE -p PROCS -s SECONDS [-b BS]
 *       PROCS processes each open FILE, read BS (4096) bytes and close it,
 *       again and again for SECONDS (or until SIGTERM), then are killed
 *       (SIGKILL: their requests are interrupted); prints how many reads
 *       completed.
 *
 * Output: one line of key=value pairs, e.g.
 *   ops=2000000 seconds=2.001 ops_per_s=999500
 * Exit status 1 with the failing call on stderr if any call fails: a
 * benchmark that hides an error measures nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, const char *path)
{
    fprintf(stderr, "bench_fuse: %s %s: %s\n", what, path, strerror(errno));
    exit(1);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_fuse getattr FILE [-t THREADS] [-p PROCS] "
            "[-s SECONDS] [-f] [-n COUNT]\n"
            "       bench_fuse read FILE -b BS [-n BYTES] [-d] [-a 0|1]\n"
            "       bench_fuse write FILE -b BS [-n BYTES] [-d]\n"
            "       bench_fuse open FILE [-n COUNT]\n"
            "       bench_fuse latency PATH -o stat|ls|read [-n COUNT] "
            "[-i MS]\n"
            "       bench_fuse flood FILE -p PROCS -s SECONDS [-b BS]\n");
    exit(2);
}

static long long parse_size(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    switch (*end) {
    case 'k': case 'K': v <<= 10; break;
    case 'm': case 'M': v <<= 20; break;
    case 'g': case 'G': v <<= 30; break;
    default: break;
    }
    if (v <= 0)
        usage();
    return v;
}

struct args {
    const char *path;
    int threads, procs, use_fstat, direct, hint, interval_ms;
    double seconds;
    long long bs, bytes, count;
    const char *op;
};

/* ---- getattr: many threads in many processes, for a fixed time ---- */

struct shared {            /* in memory shared with the children */
    atomic_int stop;
    atomic_llong ops;
};

struct gthread {
    const struct args *a;
    struct shared *sh;
    pthread_t tid;
};

static void *getattr_thread(void *arg)
{
    struct gthread *g = arg;
    const struct args *a = g->a;
    struct stat st;
    long long n = 0;
    int fd = -1;
    if (a->use_fstat) {
        fd = open(a->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            die("open", a->path);
    }
    if (a->count > 0) { /* a fixed number of calls instead of a time */
        for (long long i = 0; i < a->count; i++) {
            int rc = a->use_fstat ? fstat(fd, &st) : stat(a->path, &st);
            if (rc < 0)
                die(a->use_fstat ? "fstat" : "stat", a->path);
        }
        n = a->count;
    }
    while (a->count == 0 &&
           !atomic_load_explicit(&g->sh->stop, memory_order_relaxed)) {
        /* 64 calls between looks at the flag. */
        for (int i = 0; i < 64; i++) {
            int rc = a->use_fstat ? fstat(fd, &st) : stat(a->path, &st);
            if (rc < 0)
                die(a->use_fstat ? "fstat" : "stat", a->path);
        }
        n += 64;
    }
    if (fd >= 0)
        close(fd);
    atomic_fetch_add(&g->sh->ops, n);
    return NULL;
}

static void getattr_workers(const struct args *a, struct shared *sh)
{
    struct gthread *g = calloc((size_t)a->threads, sizeof *g);
    if (!g)
        die("calloc", "");
    for (int i = 0; i < a->threads; i++) {
        g[i].a = a;
        g[i].sh = sh;
        if (pthread_create(&g[i].tid, NULL, getattr_thread, &g[i]) != 0)
            die("pthread_create", "");
    }
    for (int i = 0; i < a->threads; i++)
        pthread_join(g[i].tid, NULL);
    free(g);
}

static int cmd_getattr(const struct args *a)
{
    struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        die("mmap", "");
    atomic_store(&sh->stop, 0);
    atomic_store(&sh->ops, 0);
    pid_t *kids = calloc((size_t)a->procs, sizeof *kids);
    double t0 = now_s();
    for (int p = 0; p < a->procs; p++) {
        kids[p] = fork();
        if (kids[p] < 0)
            die("fork", "");
        if (kids[p] == 0) {
            getattr_workers(a, sh);
            _exit(0);
        }
    }
    struct timespec d = {(time_t)a->seconds,
                         (long)((a->seconds - (double)(time_t)a->seconds) *
                                1e9)};
    if (a->count == 0)
        nanosleep(&d, NULL);
    atomic_store(&sh->stop, 1);
    int failed = 0;
    for (int p = 0; p < a->procs; p++) {
        int status;
        if (waitpid(kids[p], &status, 0) < 0 || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0)
            failed = 1;
    }
    double t = now_s() - t0;
    long long ops = atomic_load(&sh->ops);
    free(kids);
    if (failed)
        return 1;
    printf("ops=%lld seconds=%.3f ops_per_s=%.0f threads=%d procs=%d\n", ops,
           t, (double)ops / t, a->threads, a->procs);
    return 0;
}

/* ---- sequential read and write ---- */

static char *io_buffer(long long bs)
{
    void *p;
    if (posix_memalign(&p, 4096, (size_t)bs) != 0)
        die("posix_memalign", "");
    memset(p, 0x5a, (size_t)bs);
    return p;
}

static int cmd_rw(const struct args *a, int writing)
{
    int flags = writing ? O_WRONLY : O_RDONLY;
    if (a->direct)
        flags |= O_DIRECT;
    struct stat st;
    if (stat(a->path, &st) < 0)
        die("stat", a->path);
    long long size = st.st_size;
    if (size < a->bs) {
        fprintf(stderr, "bench_fuse: %s is smaller than one block\n",
                a->path);
        return 1;
    }
    size -= size % a->bs;
    long long total = a->bytes ? a->bytes : size;
    char *buf = io_buffer(a->bs);
    long long done = 0, calls = 0;
    double t0 = now_s();
    while (done < total) {
        int fd = open(a->path, flags | O_CLOEXEC);
        if (fd < 0)
            die("open", a->path);
        if (!writing) {
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
            if (a->hint)
                posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        }
        for (long long off = 0; off < size && done < total; off += a->bs) {
            ssize_t n = writing ? pwrite(fd, buf, (size_t)a->bs, off)
                                : pread(fd, buf, (size_t)a->bs, off);
            if (n < 0)
                die(writing ? "pwrite" : "pread", a->path);
            if (n != a->bs) {
                fprintf(stderr, "bench_fuse: short %s at %lld: %zd\n",
                        writing ? "write" : "read", off, n);
                return 1;
            }
            done += n;
            calls++;
        }
        if (close(fd) < 0)
            die("close", a->path);
    }
    double t = now_s() - t0;
    free(buf);
    printf("bytes=%lld calls=%lld seconds=%.3f mib_per_s=%.1f "
           "ops_per_s=%.0f\n",
           done, calls, t, (double)done / t / 1048576.0, (double)calls / t);
    return 0;
}

/* ---- open + close ---- */

static int cmd_open(const struct args *a)
{
    long long n = a->count ? a->count : 10000;
    double t0 = now_s();
    for (long long i = 0; i < n; i++) {
        int fd = open(a->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            die("open", a->path);
        if (close(fd) < 0)
            die("close", a->path);
    }
    double t = now_s() - t0;
    printf("ops=%lld seconds=%.3f ops_per_s=%.0f\n", n, t, (double)n / t);
    return 0;
}

/* ---- latency of single operations ---- */

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static void one_op(const struct args *a, char *buf)
{
    struct stat st;
    if (strcmp(a->op, "stat") == 0) {
        if (stat(a->path, &st) < 0)
            die("stat", a->path);
    } else if (strcmp(a->op, "ls") == 0) {
        DIR *d = opendir(a->path);
        if (!d)
            die("opendir", a->path);
        errno = 0;
        while (readdir(d))
            ;
        if (errno)
            die("readdir", a->path);
        closedir(d);
    } else if (strcmp(a->op, "read") == 0) {
        int fd = open(a->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            die("open", a->path);
        if (read(fd, buf, 4096) < 0)
            die("read", a->path);
        close(fd);
    } else {
        usage();
    }
}

static int cmd_latency(const struct args *a)
{
    if (!a->op)
        usage();
    long long n = a->count ? a->count : 200;
    double *lat = calloc((size_t)n, sizeof *lat);
    char buf[4096];
    if (!lat)
        die("calloc", "");
    struct timespec gap = {a->interval_ms / 1000,
                           (long)(a->interval_ms % 1000) * 1000000};
    for (long long i = 0; i < n; i++) {
        double t0 = now_s();
        one_op(a, buf);
        lat[i] = (now_s() - t0) * 1e6;
        if (a->interval_ms)
            nanosleep(&gap, NULL);
    }
    qsort(lat, (size_t)n, sizeof *lat, cmp_double);
    size_t p99 = (size_t)((double)n * 0.99);
    if (p99 >= (size_t)n)
        p99 = (size_t)n - 1;
    printf("op=%s count=%lld p50_us=%.1f p99_us=%.1f max_us=%.1f\n", a->op,
           n, lat[n / 2], lat[p99], lat[n - 1]);
    free(lat);
    return 0;
}

/* ---- a flood of readers ---- */

static volatile sig_atomic_t flood_stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    flood_stop_requested = 1;
}

static int cmd_flood(const struct args *a)
{
    struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        die("mmap", "");
    atomic_store(&sh->stop, 0);
    atomic_store(&sh->ops, 0);
    pid_t *kids = calloc((size_t)a->procs, sizeof *kids);
    long long bs = a->bs ? a->bs : 4096;
    /* SIGTERM or SIGINT end the flood early, readers included. */
    struct sigaction sa = {.sa_handler = on_stop_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    double t0 = now_s();
    for (int p = 0; p < a->procs; p++) {
        kids[p] = fork();
        if (kids[p] < 0)
            die("fork", "");
        if (kids[p] == 0) {
            signal(SIGTERM, SIG_DFL);
            signal(SIGINT, SIG_DFL);
            char *buf = io_buffer(bs);
            while (!atomic_load(&sh->stop)) {
                int fd = open(a->path, O_RDONLY | O_CLOEXEC);
                if (fd < 0) {
                    if (errno == EINTR || errno == ETIMEDOUT)
                        continue;
                    die("open", a->path);
                }
                if (read(fd, buf, (size_t)bs) >= 0)
                    atomic_fetch_add(&sh->ops, 1);
                close(fd);
            }
            _exit(0);
        }
    }
    double end = t0 + a->seconds;
    while (!flood_stop_requested && now_s() < end) {
        struct timespec tick = {0, 20000000};
        nanosleep(&tick, NULL);
    }
    atomic_store(&sh->stop, 1);
    double t = now_s() - t0;
    /* The readers may be queued behind each other for a long time: end
     * them (their requests are interrupted) rather than wait. */
    for (int p = 0; p < a->procs; p++)
        kill(kids[p], SIGKILL);
    for (int p = 0; p < a->procs; p++)
        waitpid(kids[p], NULL, 0);
    free(kids);
    printf("reads=%lld seconds=%.3f procs=%d\n",
           (long long)atomic_load(&sh->ops), t, a->procs);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        usage();
    struct args a = {.path = argv[2], .threads = 1, .procs = 1,
                     .seconds = 2, .interval_ms = 5};
    const char *cmd = argv[1];
    for (int i = 3; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(o, "-f") == 0) {
            a.use_fstat = 1;
        } else if (strcmp(o, "-d") == 0) {
            a.direct = 1;
        } else if (!v) {
            usage();
        } else if (strcmp(o, "-t") == 0) {
            a.threads = atoi(v);
        } else if (strcmp(o, "-p") == 0) {
            a.procs = atoi(v);
        } else if (strcmp(o, "-s") == 0) {
            a.seconds = atof(v);
        } else if (strcmp(o, "-b") == 0) {
            a.bs = parse_size(v);
        } else if (strcmp(o, "-n") == 0) {
            a.bytes = a.count = parse_size(v);
        } else if (strcmp(o, "-a") == 0) {
            a.hint = atoi(v);
        } else if (strcmp(o, "-o") == 0) {
            a.op = v;
        } else if (strcmp(o, "-i") == 0) {
            a.interval_ms = atoi(v);
        } else {
            usage();
        }
        if (v && strcmp(o, "-f") != 0 && strcmp(o, "-d") != 0)
            i++;
    }
    if (a.threads < 1 || a.procs < 1 || a.seconds <= 0)
        usage();
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(cmd, "getattr") == 0)
        return cmd_getattr(&a);
    if (strcmp(cmd, "read") == 0 || strcmp(cmd, "write") == 0) {
        if (!a.bs)
            usage();
        return cmd_rw(&a, cmd[0] == 'w');
    }
    if (strcmp(cmd, "open") == 0)
        return cmd_open(&a);
    if (strcmp(cmd, "latency") == 0)
        return cmd_latency(&a);
    if (strcmp(cmd, "flood") == 0)
        return cmd_flood(&a);
    usage();
    return 2;
}
