/*
 * test_streamfs — streamfs through its ABI, loaded from the built
 * streamfs.so: history then "no data yet" (-EAGAIN), a notify for every
 * append, per-reader cursors, the ring and readers that fall behind, poll,
 * end of file on removal, and readers and writers on many threads.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <sys/stat.h>

#include "plugin_harness.h"

static const struct fs9_provider_ops *ops;
static struct test_host th;
static void *fs;
static struct fs9_ctx ctx;

static void setup_with(const char *const *kv)
{
    char err[256];
    ops = plugin_load("streamfs");
    test_host_init(&th);
    ctx = test_ctx(1000, 1000);
    cr_assert_eq(plugin_make(ops, &th, &fs, err, sizeof err, kv), 0, "%s",
                 err);
}

static void setup(void)
{
    setup_with(NULL);
}

static void teardown(void)
{
    if (fs)
        ops->destroy(fs);
    fs = NULL;
}

TestSuite(streamfs, .init = setup, .fini = teardown);

static void *open_writer(const char *name)
{
    return plugin_open(ops, fs, &ctx, name,
                       FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0644, NULL);
}

static void *open_reader(const char *name)
{
    return plugin_open(ops, fs, &ctx, name, FS9_OPEN_READ, 0, NULL);
}

/* Read what is there now as a string; the read's result returned. */
static ssize_t take(void *h, char *buf, size_t size)
{
    return plugin_read_str(ops, fs, h, buf, size, 0);
}

/* ---- configuration and shape ---- */

Test(streamfs, settings_and_capabilities)
{
    char err[256];
    void *x;
    const char *a[] = {"rign=1k", NULL};
    cr_assert_eq(plugin_make(ops, &th, &x, err, sizeof err, a), -EINVAL);
    cr_assert_str_eq(err, "unknown key 'rign' (streamfs knows ring)");
    const char *b[] = {"ring=0", NULL};
    cr_assert_eq(plugin_make(ops, &th, &x, err, sizeof err, b), -EINVAL);
    cr_assert_not_null(strstr(err, "ring=0"), "%s", err);
    const char *c[] = {"ring=2G", NULL};
    cr_assert_eq(plugin_make(ops, &th, &x, err, sizeof err, c), -EINVAL);
    uint64_t caps = ops->capabilities(fs);
    uint64_t want = FS9_CAP_BLOCKING_READ | FS9_CAP_STREAMING |
                    FS9_CAP_STATEFUL_READ | FS9_CAP_NONBLOCKING;
    cr_assert_eq(caps & want, want);
    cr_assert_not_null(ops->poll);
}

Test(streamfs, open_asks_for_direct_io_and_no_seeking)
{
    struct fs9_open_out out;
    memset(&out, 0, sizeof out);
    cr_assert_eq(ops->open(fs, &ctx, "s", FS9_OPEN_WRITE | FS9_OPEN_CREATE,
                           0640, &out),
                 0);
    cr_assert_eq(out.flags, FS9_OPEN_OUT_DIRECT_IO | FS9_OPEN_OUT_NONSEEKABLE);
    cr_assert_eq(out.created, 1);
    cr_assert_eq(out.attr.mode, S_IFREG | 0640);
    cr_assert_eq(out.attr.uid, 1000);
    ops->close(fs, out.handle, 0);
}

/* ---- reading and writing ---- */

Test(streamfs, reader_gets_history_then_eagain_then_new_data)
{
    void *w = open_writer("s");
    plugin_write_str(ops, fs, w, "one ", 0);
    plugin_write_str(ops, fs, w, "two ", 0); /* the offset is ignored */
    void *r = open_reader("s");
    char buf[64];
    cr_assert_eq(take(r, buf, sizeof buf), 8);
    cr_assert_str_eq(buf, "one two ");
    cr_assert_eq(ops->read(fs, r, buf, sizeof buf, 0), -EAGAIN,
                 "no data yet");
    int before = notify_count(&th);
    plugin_write_str(ops, fs, w, "three", 12345);
    cr_assert_eq(notify_count(&th), before + 1, "every append notifies");
    cr_assert_str_eq(th.last_path, "s");
    cr_assert_eq(th.last_events, FS9_NOTIFY_DATA);
    cr_assert_eq(take(r, buf, 3), 2, "a small buffer takes part");
    cr_assert_str_eq(buf, "th");
    cr_assert_eq(take(r, buf, sizeof buf), 3);
    cr_assert_str_eq(buf, "ree");
    struct fs9_attr a;
    cr_assert_eq(ops->stat(fs, &ctx, "s", NULL, &a), 0);
    cr_assert_eq(a.size, 13, "st_size: bytes ever appended");
    ops->close(fs, r, 0);
    ops->close(fs, w, 0);
}

Test(streamfs, every_reader_receives_every_byte)
{
    void *w = open_writer("s");
    void *r[5];
    for (int i = 0; i < 5; i++)
        r[i] = open_reader("s");
    for (int k = 0; k < 100; k++) {
        char line[16];
        snprintf(line, sizeof line, "%03d\n", k);
        plugin_write_str(ops, fs, w, line, 0);
    }
    for (int i = 0; i < 5; i++) {
        char buf[1024];
        cr_assert_eq(take(r[i], buf, sizeof buf), 400);
        for (int k = 0; k < 100; k++) {
            char line[16];
            snprintf(line, sizeof line, "%03d\n", k);
            cr_assert_eq(memcmp(buf + 4 * k, line, 4), 0, "reader %d", i);
        }
        ops->close(fs, r[i], 0);
    }
    ops->close(fs, w, 0);
}

Test(streamfs, ring_keeps_the_last_bytes_and_late_readers_skip_ahead)
{
    teardown();
    const char *kv[] = {"ring=16", NULL};
    setup_with(kv);
    void *w = open_writer("s");
    void *slow = open_reader("s");
    plugin_write_str(ops, fs, w, "0123456789", 0);
    char buf[64];
    cr_assert_eq(take(slow, buf, 4), 3);
    cr_assert_str_eq(buf, "012");
    plugin_write_str(ops, fs, w, "abcdefghijklmnop", 0); /* laps it */
    void *late = open_reader("s");
    cr_assert_eq(take(late, buf, sizeof buf), 16, "history: the ring");
    cr_assert_str_eq(buf, "abcdefghijklmnop");
    cr_assert_eq(take(slow, buf, sizeof buf), 16,
                 "behind the ring: from the oldest retained byte");
    cr_assert_str_eq(buf, "abcdefghijklmnop");
    /* A write bigger than the ring keeps its tail. */
    plugin_write_str(ops, fs, w, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", 0);
    cr_assert_eq(take(late, buf, sizeof buf), 16);
    cr_assert_str_eq(buf, "KLMNOPQRSTUVWXYZ");
    /* Wrapping reads come out in order. */
    plugin_write_str(ops, fs, w, "1234567", 0);
    cr_assert_eq(take(late, buf, sizeof buf), 7);
    cr_assert_str_eq(buf, "1234567");
    struct fs9_attr a;
    cr_assert_eq(ops->stat(fs, &ctx, "s", w, &a), 0);
    cr_assert_eq(a.size, 10 + 16 + 26 + 7);
    ops->close(fs, slow, 0);
    ops->close(fs, late, 0);
    ops->close(fs, w, 0);
}

Test(streamfs, a_read_as_big_as_a_fuse_piece_never_drains_the_stream_exactly)
{
    teardown();
    const char *kv[] = {"ring=4m", NULL};
    setup_with(kv);
    size_t mib = 1u << 20;
    char *buf = calloc(1, 2 * mib);
    void *w = open_writer("s");
    cr_assert_eq(ops->write(fs, w, buf, mib, 0), (ssize_t)mib);
    void *r = open_reader("s");
    /* A 1 MiB piece of a bigger read(2) must come back short, or the
     * kernel would ask for the next piece and wait for new data. */
    cr_assert_eq(ops->read(fs, r, buf, mib, 0), (ssize_t)mib - 1);
    cr_assert_eq(ops->read(fs, r, buf, mib, 0), 1, "the byte held back");
    cr_assert_eq(ops->read(fs, r, buf, mib, 0), -EAGAIN);
    /* With more data than the piece, the piece is full. */
    cr_assert_eq(ops->write(fs, w, buf, mib + 5, 0), (ssize_t)mib + 5);
    cr_assert_eq(ops->read(fs, r, buf, mib, 0), (ssize_t)mib);
    cr_assert_eq(ops->read(fs, r, buf, mib, 0), 5);
    /* Reads smaller than a piece (cat: 128 KiB) are filled exactly. */
    cr_assert_eq(ops->write(fs, w, buf, 128 << 10, 0), 128 << 10);
    cr_assert_eq(ops->read(fs, r, buf, 128 << 10, 0), 128 << 10);
    ops->close(fs, r, 0);
    ops->close(fs, w, 0);
    free(buf);
}

Test(streamfs, handles_check_their_access_mode)
{
    void *w = open_writer("s");
    void *r = open_reader("s");
    char buf[4];
    cr_assert_eq(ops->read(fs, w, buf, sizeof buf, 0), -EBADF);
    cr_assert_eq(ops->write(fs, r, "x", 1, 0), -EBADF);
    void *rw = plugin_open(ops, fs, &ctx, "s",
                           FS9_OPEN_READ | FS9_OPEN_WRITE, 0, NULL);
    plugin_write_str(ops, fs, rw, "xy", 0);
    cr_assert_eq(take(rw, buf, sizeof buf), 2);
    ops->close(fs, rw, 0);
    ops->close(fs, r, 0);
    ops->close(fs, w, 0);
}

/* ---- poll ---- */

Test(streamfs, poll_is_readable_when_behind_or_closed)
{
    void *w = open_writer("s");
    void *r = open_reader("s");
    uint32_t ev;
    cr_assert_eq(ops->poll(fs, r, FS9_POLL_IN, &ev), 0);
    cr_assert_eq(ev, 0, "nothing to read");
    plugin_write_str(ops, fs, w, "x", 0);
    cr_assert_eq(ops->poll(fs, r, FS9_POLL_IN, &ev), 0);
    cr_assert_eq(ev, FS9_POLL_IN);
    char buf[8];
    take(r, buf, sizeof buf);
    cr_assert_eq(ops->poll(fs, r, FS9_POLL_IN | FS9_POLL_OUT, &ev), 0);
    cr_assert_eq(ev, 0, "caught up; a reader is not writable");
    cr_assert_eq(ops->poll(fs, w, FS9_POLL_OUT, &ev), 0);
    cr_assert_eq(ev, FS9_POLL_OUT);
    cr_assert_eq(ops->remove(fs, &ctx, "s", 0), 0);
    cr_assert_eq(ops->poll(fs, r, FS9_POLL_IN, &ev), 0);
    cr_assert_eq(ev, FS9_POLL_IN | FS9_POLL_HUP, "closed: readable (EOF)");
    ops->close(fs, r, 0);
    ops->close(fs, w, 0);
}

/* ---- removal ---- */

Test(streamfs, remove_ends_readers_with_eof_and_writers_with_epipe)
{
    void *w = open_writer("s");
    void *r = open_reader("s");
    plugin_write_str(ops, fs, w, "last words", 0);
    int before = notify_count(&th);
    cr_assert_eq(ops->remove(fs, &ctx, "s", 0), 0);
    cr_assert_eq(notify_count(&th), before + 1, "waiting readers woken");
    cr_assert_str_eq(th.last_path, "s");
    char buf[64];
    cr_assert_eq(take(r, buf, sizeof buf), 10, "what is left first");
    cr_assert_eq(ops->read(fs, r, buf, sizeof buf, 0), 0, "then EOF");
    cr_assert_eq(ops->write(fs, w, "x", 1, 0), -EPIPE);
    cr_assert_eq(plugin_stat(ops, fs, &ctx, "s", NULL), -ENOENT);
    struct fs9_attr a;
    cr_assert_eq(ops->stat(fs, &ctx, "s", r, &a), 0);
    cr_assert_eq(a.nlink, 0);
    /* The same name again is a new stream. */
    void *w2 = open_writer("s");
    plugin_write_str(ops, fs, w2, "new", 0);
    cr_assert_eq(ops->read(fs, r, buf, sizeof buf, 0), 0, "old one ended");
    void *r2 = open_reader("s");
    cr_assert_eq(take(r2, buf, sizeof buf), 3);
    ops->close(fs, r2, 0);
    ops->close(fs, w2, 0);
    ops->close(fs, r, 0);
    ops->close(fs, w, 0);
    cr_assert_eq(ops->remove(fs, &ctx, "s", FS9_REMOVE_DIR), -ENOTDIR);
    cr_assert_eq(ops->remove(fs, &ctx, "s", 0), 0, "unopened: freed now");
    cr_assert_eq(ops->remove(fs, &ctx, "s", 0), -ENOENT);
}

/* ---- namespace ---- */

Test(streamfs, flat_namespace_and_its_refusals)
{
    ops->close(fs, open_writer("b"), 0);
    ops->close(fs, open_writer("a"), 0);
    ops->close(fs, open_writer("c"), 0);
    struct plugin_listing l;
    memset(&l, 0, sizeof l);
    cr_assert_eq(plugin_list(ops, fs, &ctx, "", 0, &l), 0);
    cr_assert_str_eq(l.names, "b/a/c", "creation order");
    uint64_t after_b = l.cookies[0];
    cr_assert_eq(ops->remove(fs, &ctx, "a", 0), 0);
    memset(&l, 0, sizeof l);
    cr_assert_eq(plugin_list(ops, fs, &ctx, "", after_b, &l), 0);
    cr_assert_str_eq(l.names, "c", "resumes by cookie");

    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "d",
                                FS9_OPEN_CREATE | FS9_OPEN_EXCL |
                                    FS9_OPEN_DIRECTORY | FS9_OPEN_NOHANDLE,
                                S_IFDIR | 0755),
                 -EPERM, "mkdir");
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "p",
                                FS9_OPEN_CREATE | FS9_OPEN_EXCL |
                                    FS9_OPEN_NOHANDLE, S_IFIFO | 0644),
                 -EPERM, "mkfifo");
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "b/x",
                                FS9_OPEN_CREATE | FS9_OPEN_WRITE, 0644),
                 -ENOTDIR);
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "z/x",
                                FS9_OPEN_CREATE | FS9_OPEN_WRITE, 0644),
                 -ENOENT);
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "nosuch", FS9_OPEN_READ, 0),
                 -ENOENT);
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "b",
                                FS9_OPEN_CREATE | FS9_OPEN_EXCL |
                                    FS9_OPEN_WRITE, 0644),
                 -EEXIST);
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "", FS9_OPEN_WRITE, 0),
                 -EISDIR);
    cr_assert_eq(ops->rename(fs, &ctx, "b", "x", 0), -EPERM);
    cr_assert_eq(ops->rename(fs, &ctx, "nosuch", "x", 0), -ENOENT);
    cr_assert_eq(ops->remove(fs, &ctx, "", FS9_REMOVE_DIR), -EBUSY);
    struct fs9_statfs s;
    cr_assert_eq(ops->statfs(fs, "", &s), 0);
    cr_assert_eq(ops->statfs(fs, "nosuch", &s), -ENOENT);
}

Test(streamfs, o_trunc_is_ignored_and_truncate_is_eperm)
{
    void *w = open_writer("s");
    plugin_write_str(ops, fs, w, "kept", 0);
    ops->close(fs, w, 0);
    w = plugin_open(ops, fs, &ctx, "s",
                    FS9_OPEN_WRITE | FS9_OPEN_CREATE | FS9_OPEN_TRUNC, 0644,
                    NULL);
    plugin_write_str(ops, fs, w, "+more", 0);
    ops->close(fs, w, 0);
    void *r = open_reader("s");
    char buf[32];
    take(r, buf, sizeof buf);
    cr_assert_str_eq(buf, "kept+more", "`echo x > stream` appends");
    ops->close(fs, r, 0);
    struct fs9_wstat wst = {.valid = FS9_WSTAT_SIZE, .size = 0};
    struct fs9_attr a;
    cr_assert_eq(ops->wstat(fs, &ctx, "s", NULL, &wst, &a), -EPERM);
    wst.valid = FS9_WSTAT_MODE;
    wst.mode = 0600;
    cr_assert_eq(ops->wstat(fs, &ctx, "s", NULL, &wst, &a), 0, "chmod");
    cr_assert_eq(a.mode, S_IFREG | 0600);
    cr_assert_eq(ops->wstat(fs, &ctx, "", NULL, &wst, &a), -EPERM);
}

/* ---- concurrency: many writers, many readers ---- */

#define WRITERS 4
#define READERS 4
#define CHUNKS 2000

static void *writer_main(void *arg)
{
    int id = (int)(intptr_t)arg;
    void *w = open_writer("s");
    for (int k = 0; k < CHUNKS; k++) {
        /* Fixed-size records: "<writer><seq:5>\n". */
        char rec[8];
        snprintf(rec, sizeof rec, "%d%05d\n", id, k);
        cr_assert_eq(ops->write(fs, w, rec, 7, 0), 7);
    }
    ops->close(fs, w, 0);
    return NULL;
}

static void *reader_main(void *arg)
{
    void *r = arg;
    size_t total = (size_t)WRITERS * CHUNKS * 7;
    char *all = malloc(total);
    size_t got = 0;
    while (got < total) {
        ssize_t n = ops->read(fs, r, all + got, 1000, 0);
        if (n == -EAGAIN) {
            sched_yield();
            continue;
        }
        cr_assert_gt(n, 0);
        got += (size_t)n;
    }
    /* Each writer's records arrive whole and in order. */
    int next[WRITERS] = {0};
    for (size_t i = 0; i < total; i += 7) {
        int id = all[i] - '0';
        cr_assert(id >= 0 && id < WRITERS);
        cr_assert_eq(atoi(all + i + 1), next[id], "writer %d out of order",
                     id);
        next[id]++;
    }
    free(all);
    return NULL;
}

Test(streamfs, concurrent_writers_and_readers_keep_every_record)
{
    teardown();
    const char *kv[] = {"ring=1m", NULL};
    setup_with(kv);
    ops->close(fs, open_writer("s"), 0);
    void *r[READERS];
    pthread_t t[WRITERS + READERS];
    for (int i = 0; i < READERS; i++) {
        r[i] = open_reader("s");
        pthread_create(&t[WRITERS + i], NULL, reader_main, r[i]);
    }
    for (int i = 0; i < WRITERS; i++)
        pthread_create(&t[i], NULL, writer_main, (void *)(intptr_t)i);
    for (int i = 0; i < WRITERS + READERS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < READERS; i++)
        ops->close(fs, r[i], 0);
    cr_assert_eq(notify_count(&th), WRITERS * CHUNKS);
}
