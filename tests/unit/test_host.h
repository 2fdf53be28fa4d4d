/*
 * test_host — a struct fs9_host for unit tests that drive a provider
 * through its ABI without the rest of fs9: logs go to stderr, the clock is
 * the real one (or a fixed one when fixed_now is set), and notifications
 * are recorded so tests can assert on them.
 */
#ifndef FS9_TEST_HOST_H
#define FS9_TEST_HOST_H

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fs9/provider.h"

struct test_host {
    struct fs9_host host;
    pthread_mutex_t lock;
    int notify_count;
    unsigned last_events;
    char last_path[4096];
    int fixed_now; /* when non-zero, now() returns `now_value` */
    struct timespec now_value;
};

static void test_host_log(void *ctx, int level, const char *fmt, ...)
{
    (void)ctx;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[provider %d] ", level);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static struct timespec test_host_now(void *ctx, clockid_t clock_id)
{
    struct test_host *th = ctx;
    struct timespec ts;
    if (th->fixed_now)
        return th->now_value;
    clock_gettime(clock_id, &ts);
    return ts;
}

static void test_host_notify(void *ctx, const char *path, unsigned events)
{
    struct test_host *th = ctx;
    pthread_mutex_lock(&th->lock);
    th->notify_count++;
    th->last_events = events;
    snprintf(th->last_path, sizeof th->last_path, "%s", path);
    pthread_mutex_unlock(&th->lock);
}

static inline void test_host_init(struct test_host *th)
{
    memset(th, 0, sizeof *th);
    pthread_mutex_init(&th->lock, NULL);
    th->host.abi_version = FS9_PROVIDER_ABI_VERSION;
    th->host.struct_size = sizeof(struct fs9_host);
    th->host.ctx = th;
    th->host.log = test_host_log;
    th->host.now = test_host_now;
    th->host.notify = test_host_notify;
}

/** A caller context for tests. */
static inline struct fs9_ctx test_ctx(unsigned uid, unsigned gid)
{
    struct fs9_ctx c = {.uid = uid, .gid = gid, .pid = 1, .umask = 022};
    return c;
}

#endif
