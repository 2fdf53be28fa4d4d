/*
 * test_pubsubfs — pubsubfs through its ABI, loaded from the built
 * pubsubfs.so: README and <topic>.info, publishing (one write, one
 * message; EMSGSIZE), subscribing (retained messages, one message per
 * read, the rest of a long one on the next reads, "no data yet"), the
 * ring, poll, removal, and publishers and subscribers on many threads.
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
    ops = plugin_load("pubsubfs");
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

TestSuite(pubsubfs, .init = setup, .fini = teardown);

static void *publisher(const char *topic)
{
    return plugin_open(ops, fs, &ctx, topic,
                       FS9_OPEN_WRITE | FS9_OPEN_CREATE | FS9_OPEN_TRUNC,
                       0644, NULL);
}

static void *subscriber(const char *topic)
{
    return plugin_open(ops, fs, &ctx, topic, FS9_OPEN_READ, 0, NULL);
}

static void publish(void *h, const char *msg)
{
    plugin_write_str(ops, fs, h, msg, 0);
}

static ssize_t take(void *h, char *buf, size_t size)
{
    return plugin_read_str(ops, fs, h, buf, size, 0);
}

/* The .info of `topic`, read through a handle. */
static const char *info(const char *topic)
{
    static char buf[2048];
    char path[300];
    snprintf(path, sizeof path, "%s.info", topic);
    void *h = plugin_open(ops, fs, &ctx, path, FS9_OPEN_READ, 0, NULL);
    cr_assert_gt(plugin_read_str(ops, fs, h, buf, sizeof buf, 0), 0);
    ops->close(fs, h, 0);
    return buf;
}

/* The value of `key` in `topic`'s .info. */
static long long info_value(const char *topic, const char *key)
{
    const char *text = info(topic);
    char needle[64];
    snprintf(needle, sizeof needle, "\n%s: ", key);
    const char *p = strstr(text, needle);
    cr_assert_not_null(p, "no %s in:\n%s", key, text);
    return atoll(p + strlen(needle));
}

/* ---- configuration ---- */

Test(pubsubfs, settings_and_capabilities)
{
    char err[256];
    void *x;
    const char *a[] = {"queue=3", NULL};
    cr_assert_eq(plugin_make(ops, &th, &x, err, sizeof err, a), -EINVAL);
    cr_assert_str_eq(err,
                     "unknown key 'queue' (pubsubfs knows ring, max_message)");
    const char *b[] = {"max_message=2m", NULL};
    cr_assert_eq(plugin_make(ops, &th, &x, err, sizeof err, b), -EINVAL);
    cr_assert_not_null(strstr(err, "1044480"), "%s", err);
    const char *c[] = {"ring=0", NULL};
    cr_assert_eq(plugin_make(ops, &th, &x, err, sizeof err, c), -EINVAL);
    uint64_t want = FS9_CAP_BLOCKING_READ | FS9_CAP_STREAMING |
                    FS9_CAP_STATEFUL_READ | FS9_CAP_NONBLOCKING;
    cr_assert_eq(ops->capabilities(fs) & want, want);
}

/* ---- README and .info ---- */

Test(pubsubfs, readme_explains_and_is_read_only)
{
    void *h = plugin_open(ops, fs, &ctx, "README", FS9_OPEN_READ, 0, NULL);
    char buf[4096];
    ssize_t n = plugin_read_str(ops, fs, h, buf, sizeof buf, 0);
    cr_assert_gt(n, 100);
    cr_assert_not_null(strstr(buf, "echo hello > news"));
    cr_assert_not_null(strstr(buf, "EMSGSIZE"));
    cr_assert_not_null(strstr(buf, "1044480"));
    struct fs9_attr a;
    cr_assert_eq(plugin_stat(ops, fs, &ctx, "README", &a), 0);
    cr_assert_eq(a.size, (uint64_t)n);
    cr_assert_eq(a.mode, S_IFREG | 0444);
    cr_assert_eq(plugin_read_str(ops, fs, h, buf, sizeof buf, 10), n - 10);
    ops->close(fs, h, 0);
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "README", FS9_OPEN_WRITE, 0),
                 -EACCES);
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "README",
                                FS9_OPEN_WRITE | FS9_OPEN_CREATE |
                                    FS9_OPEN_EXCL, 0644),
                 -EEXIST);
    cr_assert_eq(ops->remove(fs, &ctx, "README", 0), -EACCES);
    struct fs9_wstat w = {.valid = FS9_WSTAT_MODE, .mode = 0600};
    cr_assert_eq(ops->wstat(fs, &ctx, "README", NULL, &w, &a), -EPERM);
}

Test(pubsubfs, info_has_key_value_lines)
{
    void *p = publisher("news");
    void *s1 = subscriber("news");
    void *s2 = subscriber("news");
    publish(p, "a");
    publish(p, "bc");
    const char *text = info("news");
    cr_assert_eq(strncmp(text, "topic: news\n", 12), 0, "%s", text);
    cr_assert_eq(info_value("news", "subscribers"), 2);
    cr_assert_eq(info_value("news", "publishers"), 1);
    cr_assert_eq(info_value("news", "messages"), 2);
    cr_assert_eq(info_value("news", "retained"), 2);
    cr_assert_eq(info_value("news", "ring"), 64);
    cr_assert_eq(info_value("news", "bytes"), 3);
    cr_assert_not_null(strstr(text, "\ncreated: "));
    cr_assert_not_null(strstr(text, "\nmodified: "));
    /* Every line is "key: value". */
    for (const char *l = text; *l; l = strchr(l, '\n') + 1) {
        const char *colon = strstr(l, ": ");
        cr_assert(colon && colon < strchr(l, '\n'), "line '%.20s'", l);
    }
    struct fs9_attr a;
    cr_assert_eq(plugin_stat(ops, fs, &ctx, "news.info", &a), 0);
    cr_assert_eq(a.size, strlen(text), "st_size is the text's length");
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "news.info", FS9_OPEN_WRITE,
                                0),
                 -EACCES);
    cr_assert_eq(ops->remove(fs, &ctx, "news.info", 0), -EACCES);
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "other.info",
                                FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0644),
                 -EACCES, "reserved name");
    cr_assert_eq(plugin_stat(ops, fs, &ctx, "other.info", NULL), -ENOENT);
    ops->close(fs, s1, 0);
    cr_assert_eq(info_value("news", "subscribers"), 1);
    ops->close(fs, s2, 0);
    ops->close(fs, p, 0);
    cr_assert_eq(info_value("news", "publishers"), 0);
}

Test(pubsubfs, info_times_are_iso8601_utc)
{
    th.fixed_now = 1;
    th.now_value = (struct timespec){.tv_sec = 86400 + 3661, .tv_nsec = 42};
    void *p = publisher("t");
    th.now_value.tv_sec += 60;
    publish(p, "x");
    const char *text = info("t");
    cr_assert_not_null(strstr(text, "created: 1970-01-02T01:01:01.000000042Z"),
                       "%s", text);
    cr_assert_not_null(strstr(text, "modified: 1970-01-02T01:02:01."), "%s",
                       text);
    ops->close(fs, p, 0);
}

/* ---- publish and subscribe ---- */

Test(pubsubfs, subscriber_gets_retained_messages_one_per_read)
{
    void *p = publisher("news");
    publish(p, "first");
    publish(p, "second");
    void *s = subscriber("news");
    char buf[64];
    cr_assert_eq(take(s, buf, sizeof buf), 5);
    cr_assert_str_eq(buf, "first");
    cr_assert_eq(take(s, buf, sizeof buf), 6);
    cr_assert_str_eq(buf, "second");
    cr_assert_eq(ops->read(fs, s, buf, sizeof buf, 0), -EAGAIN);
    int before = notify_count(&th);
    publish(p, "third");
    cr_assert_eq(notify_count(&th), before + 1);
    cr_assert_str_eq(th.last_path, "news");
    cr_assert_eq(th.last_events, FS9_NOTIFY_DATA);
    cr_assert_eq(take(s, buf, sizeof buf), 5);
    cr_assert_str_eq(buf, "third");
    ops->close(fs, s, 0);
    ops->close(fs, p, 0);
}

Test(pubsubfs, a_small_buffer_gets_the_rest_of_a_message_next)
{
    void *p = publisher("t");
    publish(p, "0123456789");
    publish(p, "next");
    void *s = subscriber("t");
    char buf[64];
    cr_assert_eq(take(s, buf, 5), 4);
    cr_assert_str_eq(buf, "0123");
    cr_assert_eq(take(s, buf, sizeof buf), 6, "the rest, not the next");
    cr_assert_str_eq(buf, "456789");
    cr_assert_eq(take(s, buf, sizeof buf), 4);
    cr_assert_str_eq(buf, "next");
    ops->close(fs, s, 0);
    ops->close(fs, p, 0);
}

Test(pubsubfs, oversized_messages_are_emsgsize_and_not_published)
{
    size_t max = (1u << 20) - 4096;
    char *big = malloc(max + 1);
    memset(big, 'm', max + 1);
    void *p = publisher("t");
    void *s = subscriber("t");
    cr_assert_eq(ops->write(fs, p, big, max + 1, 0), -EMSGSIZE);
    cr_assert_eq(ops->write(fs, p, big, 1u << 20, 0), -EMSGSIZE);
    cr_assert_eq(info_value("t", "messages"), 0);
    cr_assert_eq(ops->write(fs, p, big, max, 0), (ssize_t)max);
    char *got = malloc(2u << 20);
    cr_assert_eq(ops->read(fs, s, got, 2u << 20, 0), (ssize_t)max,
                 "one whole message");
    ops->close(fs, s, 0);
    ops->close(fs, p, 0);
    free(got);
    free(big);

    teardown();
    const char *kv[] = {"max_message=10", NULL};
    setup_with(kv);
    p = publisher("t");
    cr_assert_eq(ops->write(fs, p, "0123456789", 10, 0), 10);
    cr_assert_eq(ops->write(fs, p, "0123456789X", 11, 0), -EMSGSIZE);
    ops->close(fs, p, 0);
}

Test(pubsubfs, ring_keeps_the_last_messages_and_finishes_one_started)
{
    teardown();
    const char *kv[] = {"ring=3", NULL};
    setup_with(kv);
    void *p = publisher("t");
    void *slow = subscriber("t");
    publish(p, "m0-long-message");
    char buf[64];
    cr_assert_eq(take(slow, buf, 4), 3);
    cr_assert_str_eq(buf, "m0-");
    for (int i = 1; i <= 5; i++) {
        char m[8];
        snprintf(m, sizeof m, "m%d", i);
        publish(p, m);
    }
    cr_assert_eq(info_value("t", "retained"), 3);
    cr_assert_eq(info_value("t", "messages"), 6);
    cr_assert_eq(take(slow, buf, sizeof buf), 12, "a message started ends");
    cr_assert_str_eq(buf, "long-message");
    cr_assert_eq(take(slow, buf, sizeof buf), 2, "then skips to the oldest");
    cr_assert_str_eq(buf, "m3");
    void *late = subscriber("t");
    take(late, buf, sizeof buf);
    cr_assert_str_eq(buf, "m3", "history: the last 3");
    take(late, buf, sizeof buf);
    cr_assert_str_eq(buf, "m4");
    take(late, buf, sizeof buf);
    cr_assert_str_eq(buf, "m5");
    cr_assert_eq(ops->read(fs, late, buf, sizeof buf, 0), -EAGAIN);
    ops->close(fs, late, 0);
    ops->close(fs, slow, 0);
    ops->close(fs, p, 0);
}

Test(pubsubfs, access_modes_poll_and_removal)
{
    void *p = publisher("t");
    void *s = subscriber("t");
    char buf[16];
    cr_assert_eq(ops->read(fs, p, buf, sizeof buf, 0), -EBADF);
    cr_assert_eq(ops->write(fs, s, "x", 1, 0), -EBADF);
    uint32_t ev;
    cr_assert_eq(ops->poll(fs, s, FS9_POLL_IN, &ev), 0);
    cr_assert_eq(ev, 0);
    publish(p, "hello");
    cr_assert_eq(ops->poll(fs, s, FS9_POLL_IN, &ev), 0);
    cr_assert_eq(ev, FS9_POLL_IN);
    cr_assert_eq(take(s, buf, 3), 2);
    cr_assert_eq(ops->poll(fs, s, FS9_POLL_IN, &ev), 0);
    cr_assert_eq(ev, FS9_POLL_IN, "the rest of a message is readable");
    take(s, buf, sizeof buf);
    cr_assert_eq(ops->poll(fs, p, FS9_POLL_OUT, &ev), 0);
    cr_assert_eq(ev, FS9_POLL_OUT);

    publish(p, "bye");
    int before = notify_count(&th);
    cr_assert_eq(ops->remove(fs, &ctx, "t", 0), 0);
    cr_assert_geq(notify_count(&th), before + 1, "subscribers woken");
    cr_assert_eq(ops->poll(fs, s, FS9_POLL_IN, &ev), 0);
    cr_assert_eq(ev, FS9_POLL_IN | FS9_POLL_HUP);
    cr_assert_eq(take(s, buf, sizeof buf), 3, "what is left");
    cr_assert_eq(ops->read(fs, s, buf, sizeof buf, 0), 0, "then EOF");
    cr_assert_eq(ops->write(fs, p, "x", 1, 0), -EPIPE);
    cr_assert_eq(plugin_stat(ops, fs, &ctx, "t", NULL), -ENOENT);
    cr_assert_eq(plugin_stat(ops, fs, &ctx, "t.info", NULL), -ENOENT);
    ops->close(fs, s, 0);
    ops->close(fs, p, 0);
    cr_assert_eq(ops->remove(fs, &ctx, "t", 0), -ENOENT);
}

Test(pubsubfs, listing_readme_then_each_topic_and_its_info)
{
    ops->close(fs, publisher("b"), 0);
    ops->close(fs, publisher("a"), 0);
    struct plugin_listing l;
    memset(&l, 0, sizeof l);
    cr_assert_eq(plugin_list(ops, fs, &ctx, "", 0, &l), 0);
    cr_assert_str_eq(l.names, "README/b/b.info/a/a.info");
    for (size_t i = 1; i < l.count; i++) /* resume after each position */
    {
        struct plugin_listing m;
        memset(&m, 0, sizeof m);
        cr_assert_eq(plugin_list(ops, fs, &ctx, "", l.cookies[i - 1], &m), 0);
        cr_assert_eq(m.count, l.count - i, "after cookie %llu",
                     (unsigned long long)l.cookies[i - 1]);
    }
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "dir",
                                FS9_OPEN_CREATE | FS9_OPEN_EXCL |
                                    FS9_OPEN_DIRECTORY | FS9_OPEN_NOHANDLE,
                                S_IFDIR | 0755),
                 -EPERM);
    cr_assert_eq(ops->rename(fs, &ctx, "a", "c", 0), -EPERM);
    cr_assert_eq(plugin_stat(ops, fs, &ctx, "a/x", NULL), -ENOTDIR);
    cr_assert_eq(plugin_stat(ops, fs, &ctx, "README/x", NULL), -ENOTDIR);
    cr_assert_eq(plugin_stat(ops, fs, &ctx, "z/x", NULL), -ENOENT);
    struct fs9_attr a, b;
    cr_assert_eq(plugin_stat(ops, fs, &ctx, "a", &a), 0);
    cr_assert_eq(plugin_stat(ops, fs, &ctx, "a.info", &b), 0);
    cr_assert_neq(a.ino, b.ino);
    cr_assert_eq(a.uid, 1000, "a topic belongs to its creator");
}

/* ---- concurrency ---- */

#define PUBS 3
#define SUBS 4
#define MSGS 1500

static void *pub_main(void *arg)
{
    int id = (int)(intptr_t)arg;
    void *p = publisher("t");
    for (int k = 0; k < MSGS; k++) {
        char m[32];
        snprintf(m, sizeof m, "%d:%d", id, k);
        publish(p, m);
    }
    ops->close(fs, p, 0);
    return NULL;
}

static void *sub_main(void *arg)
{
    void *s = arg;
    int next[PUBS] = {0};
    for (int got = 0; got < PUBS * MSGS;) {
        char m[32];
        ssize_t n = ops->read(fs, s, m, sizeof m - 1, 0);
        if (n == -EAGAIN) {
            sched_yield();
            continue;
        }
        cr_assert_gt(n, 0);
        m[n] = '\0';
        int id, k;
        cr_assert_eq(sscanf(m, "%d:%d", &id, &k), 2, "one message: '%s'", m);
        cr_assert_eq(k, next[id], "publisher %d: %d after %d", id, k,
                     next[id] - 1);
        next[id]++;
        got++;
    }
    return NULL;
}

Test(pubsubfs, every_subscriber_gets_every_message_in_order)
{
    teardown();
    const char *kv[] = {"ring=65536", NULL};
    setup_with(kv);
    ops->close(fs, publisher("t"), 0);
    void *s[SUBS];
    pthread_t t[PUBS + SUBS];
    for (int i = 0; i < SUBS; i++) {
        s[i] = subscriber("t");
        pthread_create(&t[PUBS + i], NULL, sub_main, s[i]);
    }
    for (int i = 0; i < PUBS; i++)
        pthread_create(&t[i], NULL, pub_main, (void *)(intptr_t)i);
    for (int i = 0; i < PUBS + SUBS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < SUBS; i++)
        ops->close(fs, s[i], 0);
    cr_assert_eq(info_value("t", "messages"), PUBS * MSGS);
}
