/*
 * test_hellofs — the template plugin through its ABI, loaded from the
 * built hellofs.so: the greeting and its setting, the writable files,
 * and the errno of everything it refuses.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin_harness.h"

static const struct fs9_provider_ops *ops;
static struct test_host th;
static void *fs;
static struct fs9_ctx ctx;

static void setup_with(const char *const *kv)
{
    char err[256];
    ops = plugin_load("hellofs");
    test_host_init(&th);
    ctx = test_ctx(0, 0); /* root: the kernel's permission checks pass */
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

TestSuite(hellofs, .init = setup, .fini = teardown);

static void read_file(const char *path, char *buf, size_t size)
{
    void *h = plugin_open(ops, fs, &ctx, path, FS9_OPEN_READ, 0, NULL);
    ssize_t n = plugin_read_str(ops, fs, h, buf, size, 0);
    cr_assert_geq(n, 0, "read %s: %zd", path, n);
    ops->close(fs, h, 0);
}

/* ---- configuration ---- */

Test(hellofs, hello_says_hello_world_by_default)
{
    char buf[64];
    read_file("hello", buf, sizeof buf);
    cr_assert_str_eq(buf, "Hello, world!\n");
    struct fs9_attr a;
    cr_assert_eq(plugin_stat(ops, fs, &ctx, "hello", &a), 0);
    cr_assert_eq(a.size, strlen("Hello, world!\n"));
    cr_assert_eq(a.mode, S_IFREG | 0444);
}

Test(hellofs, greeting_setting_and_arg_key)
{
    cr_assert_str_eq(ops->arg_key, "greeting");
    teardown();
    const char *kv[] = {"greeting=first", "greeting=Hi there", NULL};
    setup_with(kv);
    char buf[64];
    read_file("hello", buf, sizeof buf);
    cr_assert_str_eq(buf, "Hi there\n", "the last setting wins");
}

Test(hellofs, unknown_key_and_huge_greeting_are_refused_in_one_line)
{
    char err[256];
    void *x = NULL;
    const char *kv[] = {"greting=Hi", NULL};
    cr_assert_eq(plugin_make(ops, &th, &x, err, sizeof err, kv), -EINVAL);
    cr_assert_str_eq(err, "unknown key 'greting' (hellofs knows greeting)");
    char big[5000 + 10] = "greeting=";
    memset(big + 9, 'x', 5000);
    big[5009] = '\0';
    const char *kv2[] = {big, NULL};
    cr_assert_eq(plugin_make(ops, &th, &x, err, sizeof err, kv2), -EINVAL);
    cr_assert_not_null(strstr(err, "at most 4096"), "%s", err);
    cr_assert_null(strchr(err, '\n'));
}

Test(hellofs, capabilities_say_nonblocking_and_no_create)
{
    uint64_t c = ops->capabilities(fs);
    cr_assert(c & FS9_CAP_NONBLOCKING);
    cr_assert(c & FS9_CAP_WRITE);
    cr_assert_not(c & FS9_CAP_CREATE);
    cr_assert_not(c & FS9_CAP_DELETE);
    cr_assert_not(c & FS9_CAP_BLOCKING_READ);
}

/* ---- the objects ---- */

Test(hellofs, root_lists_hello_notes_todo_with_stable_cookies)
{
    struct plugin_listing l;
    memset(&l, 0, sizeof l);
    cr_assert_eq(plugin_list(ops, fs, &ctx, "", 0, &l), 0);
    cr_assert_str_eq(l.names, "hello/notes/todo");
    memset(&l, 0, sizeof l);
    cr_assert_eq(plugin_list(ops, fs, &ctx, "", 1, &l), 0);
    cr_assert_str_eq(l.names, "notes/todo", "resumes after cookie 1");
    memset(&l, 0, sizeof l);
    l.stop_after = 1;
    cr_assert_eq(plugin_list(ops, fs, &ctx, "", 0, &l), 0,
                 "a full buffer is not an error");
    cr_assert_str_eq(l.names, "hello");
}

Test(hellofs, attributes_are_distinct_and_owned_by_the_mounter)
{
    struct fs9_attr r, h, n, t;
    cr_assert_eq(plugin_stat(ops, fs, &ctx, "", &r), 0);
    cr_assert_eq(plugin_stat(ops, fs, &ctx, "hello", &h), 0);
    cr_assert_eq(plugin_stat(ops, fs, &ctx, "notes", &n), 0);
    cr_assert_eq(plugin_stat(ops, fs, &ctx, "todo", &t), 0);
    cr_assert_eq(r.mode, S_IFDIR | 0555);
    cr_assert_eq(n.mode, S_IFREG | 0644);
    cr_assert(r.ino && h.ino && n.ino && t.ino);
    cr_assert(r.ino != h.ino && h.ino != n.ino && n.ino != t.ino);
    cr_assert_eq(h.uid, (uint32_t)getuid());
    cr_assert_eq(h.gid, (uint32_t)getgid());
}

Test(hellofs, lookups_answer_enoent_and_enotdir)
{
    cr_assert_eq(plugin_stat(ops, fs, &ctx, "nosuch", NULL), -ENOENT);
    cr_assert_eq(plugin_stat(ops, fs, &ctx, "hello/x", NULL), -ENOTDIR);
    cr_assert_eq(plugin_stat(ops, fs, &ctx, "nosuch/x", NULL), -ENOENT);
    cr_assert_eq(plugin_stat(ops, fs, &ctx, "hell", NULL), -ENOENT);
    cr_assert_eq(plugin_stat(ops, fs, &ctx, "hellox", NULL), -ENOENT);
}

/* ---- what it refuses ---- */

Test(hellofs, hello_refuses_writes_with_eacces)
{
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "hello", FS9_OPEN_WRITE, 0),
                 -EACCES);
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "hello",
                                FS9_OPEN_READ | FS9_OPEN_TRUNC, 0),
                 -EACCES);
    struct fs9_wstat w = {.valid = FS9_WSTAT_SIZE, .size = 0};
    struct fs9_attr a;
    cr_assert_eq(ops->wstat(fs, &ctx, "hello", NULL, &w, &a), -EACCES);
    w.valid = FS9_WSTAT_MTIME_NOW;
    cr_assert_eq(ops->wstat(fs, &ctx, "hello", NULL, &w, &a), -EACCES);
}

Test(hellofs, new_names_are_eacces)
{
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "new",
                                FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0644),
                 -EACCES);
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "d",
                                FS9_OPEN_CREATE | FS9_OPEN_EXCL |
                                    FS9_OPEN_DIRECTORY | FS9_OPEN_NOHANDLE,
                                S_IFDIR | 0755),
                 -EACCES, "mkdir");
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "hello/x",
                                FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0644),
                 -ENOTDIR);
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "nosuch/x",
                                FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0644),
                 -ENOENT);
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "notes",
                                FS9_OPEN_WRITE | FS9_OPEN_CREATE |
                                    FS9_OPEN_EXCL, 0644),
                 -EEXIST);
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "",
                                FS9_OPEN_CREATE | FS9_OPEN_EXCL |
                                    FS9_OPEN_DIRECTORY | FS9_OPEN_NOHANDLE,
                                S_IFDIR | 0755),
                 -EEXIST, "mkdir of the root");
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "notes",
                                FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0644),
                 0, "O_CREAT of an existing file opens it");
}

Test(hellofs, directory_and_file_type_errors)
{
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "", FS9_OPEN_WRITE, 0),
                 -EISDIR);
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "hello",
                                FS9_OPEN_READ | FS9_OPEN_DIRECTORY, 0),
                 -ENOTDIR);
    void *d = plugin_open(ops, fs, &ctx, "", FS9_OPEN_READ, 0, NULL);
    char buf[8];
    cr_assert_eq(ops->read(fs, d, buf, sizeof buf, 0), -EISDIR);
    ops->close(fs, d, 0);
    void *h = plugin_open(ops, fs, &ctx, "hello", FS9_OPEN_READ, 0, NULL);
    struct plugin_listing l;
    memset(&l, 0, sizeof l);
    cr_assert_eq(ops->readdir(fs, h, 0, 0, plugin_listing_emit, &l),
                 -ENOTDIR);
    ops->close(fs, h, 0);
}

Test(hellofs, chmod_and_chown_are_eperm_everywhere)
{
    const char *paths[] = {"", "hello", "notes"};
    for (int i = 0; i < 3; i++) {
        struct fs9_wstat w = {.valid = FS9_WSTAT_MODE, .mode = 0600};
        struct fs9_attr a;
        cr_assert_eq(ops->wstat(fs, &ctx, paths[i], NULL, &w, &a), -EPERM,
                     "chmod %s", paths[i]);
        w.valid = FS9_WSTAT_UID;
        w.uid = 1;
        cr_assert_eq(ops->wstat(fs, &ctx, paths[i], NULL, &w, &a), -EPERM);
    }
    struct fs9_wstat w = {.valid = FS9_WSTAT_SIZE};
    struct fs9_attr a;
    cr_assert_eq(ops->wstat(fs, &ctx, "", NULL, &w, &a), -EISDIR);
}

Test(hellofs, remove_and_rename_are_refused)
{
    cr_assert_eq(ops->remove(fs, &ctx, "hello", 0), -EACCES);
    cr_assert_eq(ops->remove(fs, &ctx, "notes", 0), -EACCES);
    cr_assert_eq(ops->remove(fs, &ctx, "hello", FS9_REMOVE_DIR), -ENOTDIR);
    cr_assert_eq(ops->remove(fs, &ctx, "nosuch", 0), -ENOENT);
    cr_assert_eq(ops->remove(fs, &ctx, "", FS9_REMOVE_DIR), -EBUSY);
    cr_assert_eq(ops->rename(fs, &ctx, "notes", "n2", 0), -EACCES);
    cr_assert_eq(ops->rename(fs, &ctx, "nosuch", "n2", 0), -ENOENT);
    cr_assert_null(ops->link, "NULL: FS9 answers EPERM");
    cr_assert_null(ops->setxattr, "NULL: FS9 answers EOPNOTSUPP");
}

/* ---- the writable files ---- */

Test(hellofs, notes_write_read_append_truncate)
{
    void *h = plugin_open(ops, fs, &ctx, "notes",
                          FS9_OPEN_READ | FS9_OPEN_WRITE, 0, NULL);
    plugin_write_str(ops, fs, h, "hello notes", 0);
    plugin_write_str(ops, fs, h, "N", 0);
    char buf[64];
    plugin_read_str(ops, fs, h, buf, sizeof buf, 0);
    cr_assert_str_eq(buf, "Nello notes");
    plugin_read_str(ops, fs, h, buf, sizeof buf, 6);
    cr_assert_str_eq(buf, "notes");
    cr_assert_eq(ops->read(fs, h, buf, sizeof buf, 100), 0, "EOF");
    ops->close(fs, h, 0);

    h = plugin_open(ops, fs, &ctx, "notes",
                    FS9_OPEN_WRITE | FS9_OPEN_APPEND, 0, NULL);
    plugin_write_str(ops, fs, h, "!", 0);
    cr_assert_eq(ops->read(fs, h, buf, 4, 0), -EBADF, "write-only");
    ops->close(fs, h, 0);
    read_file("notes", buf, sizeof buf);
    cr_assert_str_eq(buf, "Nello notes!");

    struct fs9_wstat w = {.valid = FS9_WSTAT_SIZE, .size = 3};
    struct fs9_attr a;
    cr_assert_eq(ops->wstat(fs, &ctx, "notes", NULL, &w, &a), 0);
    cr_assert_eq(a.size, 3);
    w.size = 6; /* extend: zeros */
    cr_assert_eq(ops->wstat(fs, &ctx, "notes", NULL, &w, &a), 0);
    h = plugin_open(ops, fs, &ctx, "notes", FS9_OPEN_READ, 0, NULL);
    cr_assert_eq(ops->read(fs, h, buf, sizeof buf, 0), 6);
    cr_assert_eq(memcmp(buf, "Nel\0\0\0", 6), 0);
    cr_assert_eq(ops->write(fs, h, "x", 1, 0), -EBADF, "read-only");
    ops->close(fs, h, 0);

    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "notes",
                                FS9_OPEN_WRITE | FS9_OPEN_TRUNC, 0),
                 0);
    cr_assert_eq(plugin_stat(ops, fs, &ctx, "notes", &a), 0);
    cr_assert_eq(a.size, 0, "O_TRUNC");
    cr_assert_eq(plugin_stat(ops, fs, &ctx, "todo", &a), 0);
    cr_assert_eq(a.size, 0, "todo untouched");
}

Test(hellofs, writes_move_mtime_and_times_can_be_set)
{
    th.fixed_now = 1;
    th.now_value = (struct timespec){.tv_sec = 1000, .tv_nsec = 5};
    void *h = plugin_open(ops, fs, &ctx, "todo", FS9_OPEN_WRITE, 0, NULL);
    plugin_write_str(ops, fs, h, "x", 0);
    ops->close(fs, h, 0);
    struct fs9_attr a;
    plugin_stat(ops, fs, &ctx, "todo", &a);
    cr_assert_eq(a.mtime.tv_sec, 1000);
    cr_assert_eq(a.ctime.tv_nsec, 5);
    struct fs9_wstat w = {.valid = FS9_WSTAT_ATIME | FS9_WSTAT_MTIME,
                          .atime = {.tv_sec = 7},
                          .mtime = {.tv_sec = 8, .tv_nsec = 9}};
    cr_assert_eq(ops->wstat(fs, &ctx, "todo", NULL, &w, &a), 0);
    cr_assert_eq(a.atime.tv_sec, 7);
    cr_assert_eq(a.mtime.tv_sec, 8);
    cr_assert_eq(a.mtime.tv_nsec, 9);
}

Test(hellofs, a_file_holds_at_most_one_mebibyte_then_efbig)
{
    size_t big = (1u << 20) + 100;
    char *buf = calloc(1, big);
    void *h = plugin_open(ops, fs, &ctx, "notes", FS9_OPEN_WRITE, 0, NULL);
    ssize_t n = ops->write(fs, h, buf, big, 0);
    cr_assert_eq(n, 1 << 20, "what fits is written");
    cr_assert_eq(ops->write(fs, h, buf, 100, 1u << 20), -EFBIG);
    struct fs9_wstat w = {.valid = FS9_WSTAT_SIZE, .size = (1u << 20) + 1};
    struct fs9_attr a;
    cr_assert_eq(ops->wstat(fs, &ctx, "notes", NULL, &w, &a), -EFBIG);
    ops->close(fs, h, 0);
    free(buf);
    struct fs9_statfs s;
    cr_assert_eq(ops->statfs(fs, "", &s), 0);
    cr_assert_eq(s.bfree, s.blocks / 2);
    cr_assert_eq(ops->statfs(fs, "nosuch", &s), -ENOENT);
}

static void *appender(void *arg)
{
    (void)arg;
    void *h = plugin_open(ops, fs, &ctx, "notes",
                          FS9_OPEN_WRITE | FS9_OPEN_APPEND, 0, NULL);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(ops->write(fs, h, "0123456789", 10, 0), 10);
    ops->close(fs, h, 0);
    return NULL;
}

static void *reader(void *arg)
{
    (void)arg;
    char buf[4096];
    for (int i = 0; i < 1000; i++) {
        void *h = plugin_open(ops, fs, &ctx, "notes", FS9_OPEN_READ, 0, NULL);
        ssize_t n = ops->read(fs, h, buf, sizeof buf, 0);
        cr_assert_geq(n, 0);
        for (ssize_t k = 0; k < n; k++)
            cr_assert_eq(buf[k], '0' + k % 10, "torn append seen");
        ops->close(fs, h, 0);
    }
    return NULL;
}

Test(hellofs, concurrent_appends_and_reads_are_whole)
{
    pthread_t t[6];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, appender, NULL);
    for (int i = 4; i < 6; i++)
        pthread_create(&t[i], NULL, reader, NULL);
    for (int i = 0; i < 6; i++)
        pthread_join(t[i], NULL);
    struct fs9_attr a;
    plugin_stat(ops, fs, &ctx, "notes", &a);
    cr_assert_eq(a.size, 4 * 1000 * 10);
}
