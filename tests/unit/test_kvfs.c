/*
 * test_kvfs — kvfs through its ABI, loaded from the built kvfs.so: files,
 * directories, listings in key order with stable cookies, the POSIX rename
 * rules (NOREPLACE, EXCHANGE, subtrees), times, ownership, space limits,
 * and concurrent use.
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
    ops = plugin_load("kvfs");
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

TestSuite(kvfs, .init = setup, .fini = teardown);

/* ---- helpers ---- */

static int mkdir_rc(const char *path)
{
    return plugin_open_rc(ops, fs, &ctx, path,
                          FS9_OPEN_CREATE | FS9_OPEN_EXCL |
                              FS9_OPEN_DIRECTORY | FS9_OPEN_NOHANDLE,
                          S_IFDIR | 0755);
}

static void mkdir_ok(const char *path)
{
    int rc = mkdir_rc(path);
    cr_assert_eq(rc, 0, "mkdir %s: %s", path, strerror(-rc));
}

static void put(const char *path, const char *content)
{
    void *h = plugin_open(ops, fs, &ctx, path,
                          FS9_OPEN_WRITE | FS9_OPEN_CREATE | FS9_OPEN_TRUNC,
                          0644, NULL);
    if (*content)
        plugin_write_str(ops, fs, h, content, 0);
    ops->close(fs, h, 0);
}

static const char *get(const char *path)
{
    static char buf[4096];
    void *h = plugin_open(ops, fs, &ctx, path, FS9_OPEN_READ, 0, NULL);
    cr_assert_geq(plugin_read_str(ops, fs, h, buf, sizeof buf, 0), 0);
    ops->close(fs, h, 0);
    return buf;
}

static const char *list(const char *path)
{
    static struct plugin_listing l;
    memset(&l, 0, sizeof l);
    cr_assert_eq(plugin_list(ops, fs, &ctx, path, 0, &l), 0);
    return l.names;
}

static struct fs9_attr attr(const char *path)
{
    struct fs9_attr a;
    int rc = plugin_stat(ops, fs, &ctx, path, &a);
    cr_assert_eq(rc, 0, "stat %s: %s", path, strerror(-rc));
    return a;
}

/* ---- configuration ---- */

Test(kvfs, unknown_key_and_bad_sizes_are_refused)
{
    char err[256];
    void *x;
    const char *a[] = {"sise=1M", NULL};
    cr_assert_eq(plugin_make(ops, &th, &x, err, sizeof err, a), -EINVAL);
    cr_assert_str_eq(err, "unknown key 'sise' (kvfs knows size, max_keys)");
    const char *b[] = {"size=lots", NULL};
    cr_assert_eq(plugin_make(ops, &th, &x, err, sizeof err, b), -EINVAL);
    cr_assert_not_null(strstr(err, "size=lots"), "%s", err);
    const char *c[] = {"max_keys=-1", NULL};
    cr_assert_eq(plugin_make(ops, &th, &x, err, sizeof err, c), -EINVAL);
    cr_assert_null(ops->link, "no hard links");
    cr_assert_null(ops->getxattr, "no xattrs");
    cr_assert(ops->capabilities(fs) & FS9_CAP_NONBLOCKING);
    cr_assert_not(ops->capabilities(fs) & FS9_CAP_HARDLINK);
}

/* ---- files ---- */

Test(kvfs, file_create_write_read_and_truncate)
{
    put("k", "value");
    cr_assert_str_eq(get("k"), "value");
    void *h = plugin_open(ops, fs, &ctx, "k", FS9_OPEN_READ | FS9_OPEN_WRITE,
                          0, NULL);
    plugin_write_str(ops, fs, h, "XY", 3);
    plugin_write_str(ops, fs, h, "!", 10); /* a gap reads as zeros */
    char buf[32];
    cr_assert_eq(ops->read(fs, h, buf, sizeof buf, 0), 11);
    cr_assert_eq(memcmp(buf, "valXY\0\0\0\0\0!", 11), 0);
    cr_assert_eq(ops->read(fs, h, buf, sizeof buf, 11), 0);
    ops->close(fs, h, 0);

    struct fs9_wstat w = {.valid = FS9_WSTAT_SIZE, .size = 2};
    struct fs9_attr a;
    cr_assert_eq(ops->wstat(fs, &ctx, "k", NULL, &w, &a), 0);
    cr_assert_str_eq(get("k"), "va");
    w.size = 5000;
    cr_assert_eq(ops->wstat(fs, &ctx, "k", NULL, &w, &a), 0);
    cr_assert_eq(a.size, 5000);
    cr_assert_eq(a.blocks * 512 >= 5000, 1);

    h = plugin_open(ops, fs, &ctx, "k", FS9_OPEN_WRITE | FS9_OPEN_APPEND, 0,
                    NULL);
    plugin_write_str(ops, fs, h, "end", 0);
    cr_assert_eq(ops->read(fs, h, buf, 4, 0), -EBADF, "write-only");
    ops->close(fs, h, 0);
    cr_assert_eq(attr("k").size, 5003);
    put("k", "");
    cr_assert_eq(attr("k").size, 0, "O_TRUNC");
}

Test(kvfs, open_errors_follow_linux)
{
    put("f", "x");
    mkdir_ok("d");
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "nosuch", FS9_OPEN_READ, 0),
                 -ENOENT);
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "f",
                                FS9_OPEN_CREATE | FS9_OPEN_EXCL |
                                    FS9_OPEN_WRITE, 0644),
                 -EEXIST);
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "d", FS9_OPEN_WRITE, 0),
                 -EISDIR);
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "d",
                                FS9_OPEN_CREATE | FS9_OPEN_WRITE, 0644),
                 -EISDIR);
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "f",
                                FS9_OPEN_READ | FS9_OPEN_DIRECTORY, 0),
                 -ENOTDIR);
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "f/x",
                                FS9_OPEN_CREATE | FS9_OPEN_WRITE, 0644),
                 -ENOTDIR);
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "no/x",
                                FS9_OPEN_CREATE | FS9_OPEN_WRITE, 0644),
                 -ENOENT);
    cr_assert_eq(plugin_stat(ops, fs, &ctx, "f/x/y", NULL), -ENOTDIR);
    cr_assert_eq(plugin_stat(ops, fs, &ctx, "d/x/y", NULL), -ENOENT);
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "fifo",
                                FS9_OPEN_CREATE | FS9_OPEN_EXCL |
                                    FS9_OPEN_NOHANDLE, S_IFIFO | 0644),
                 -EPERM, "no special files");
    cr_assert_eq(mkdir_rc("d"), -EEXIST);
    cr_assert_eq(mkdir_rc(""), -EEXIST);
    char longname[300];
    memset(longname, 'n', 256);
    longname[256] = '\0';
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, longname,
                                FS9_OPEN_CREATE | FS9_OPEN_WRITE, 0644),
                 -ENAMETOOLONG);
}

Test(kvfs, a_removed_file_stays_usable_through_its_handle)
{
    put("f", "data");
    void *h = plugin_open(ops, fs, &ctx, "f", FS9_OPEN_READ | FS9_OPEN_WRITE,
                          0, NULL);
    cr_assert_eq(ops->remove(fs, &ctx, "f", 0), 0);
    cr_assert_eq(plugin_stat(ops, fs, &ctx, "f", NULL), -ENOENT);
    plugin_write_str(ops, fs, h, "DATA", 0);
    char buf[16];
    plugin_read_str(ops, fs, h, buf, sizeof buf, 0);
    cr_assert_str_eq(buf, "DATA");
    struct fs9_attr a;
    cr_assert_eq(ops->stat(fs, &ctx, "f", h, &a), 0);
    cr_assert_eq(a.nlink, 0);
    put("f", "new");
    cr_assert_str_eq(get("f"), "new", "a new key, another object");
    cr_assert_neq(attr("f").ino, a.ino);
    ops->close(fs, h, 0);
}

/* ---- directories ---- */

Test(kvfs, mkdir_rmdir_enotempty_and_link_counts)
{
    mkdir_ok("a");
    mkdir_ok("a/b");
    mkdir_ok("a/c");
    put("a/f", "1");
    cr_assert_eq(attr("a").nlink, 4, "2 + two subdirectories");
    cr_assert_eq(attr("").nlink, 3);
    cr_assert_eq(ops->remove(fs, &ctx, "a", FS9_REMOVE_DIR), -ENOTEMPTY);
    cr_assert_eq(ops->remove(fs, &ctx, "a", 0), -EISDIR);
    cr_assert_eq(ops->remove(fs, &ctx, "a/f", FS9_REMOVE_DIR), -ENOTDIR);
    cr_assert_eq(ops->remove(fs, &ctx, "", FS9_REMOVE_DIR), -EBUSY);
    cr_assert_eq(ops->remove(fs, &ctx, "a/nosuch", 0), -ENOENT);
    cr_assert_eq(ops->remove(fs, &ctx, "a/b", FS9_REMOVE_DIR), 0);
    cr_assert_eq(attr("a").nlink, 3);
    cr_assert_eq(ops->remove(fs, &ctx, "a/f", 0), 0);
    cr_assert_eq(ops->remove(fs, &ctx, "a/c", FS9_REMOVE_DIR), 0);
    cr_assert_eq(ops->remove(fs, &ctx, "a", FS9_REMOVE_DIR), 0);
    cr_assert_str_eq(list(""), "");
}

Test(kvfs, listing_is_in_key_order_and_skips_subtrees)
{
    /* '-' and '.' sort before '/', '0' right after it. */
    mkdir_ok("d");
    const char *names[] = {"z", "b", "a0", "a.b", "a-x", "m"};
    for (int i = 0; i < 6; i++) {
        char p[64];
        snprintf(p, sizeof p, "d/%s", names[i]);
        put(p, names[i]);
    }
    mkdir_ok("d/a");
    mkdir_ok("d/a/deep");
    put("d/a/deep/x", "x");
    put("d/a/y", "y");
    put("d/a-x.c", "c");
    cr_assert_str_eq(list("d"), "a/a-x/a-x.c/a.b/a0/b/m/z");
    cr_assert_str_eq(list("d/a"), "deep/y");
    cr_assert_str_eq(list(""), "d");
}

Test(kvfs, listing_resumes_by_cookie_despite_changes)
{
    mkdir_ok("d");
    for (int i = 0; i < 100; i++) {
        char p[32];
        snprintf(p, sizeof p, "d/k%03d", i);
        put(p, "v");
        if (i % 10 == 0) { /* subtrees to skip */
            snprintf(p, sizeof p, "d/k%03d.dir", i);
            mkdir_ok(p);
            snprintf(p, sizeof p, "d/k%03d.dir/inner", i);
            put(p, "v");
        }
    }
    void *h = plugin_open(ops, fs, &ctx, "d",
                          FS9_OPEN_READ | FS9_OPEN_DIRECTORY, 0, NULL);
    static struct plugin_listing l;
    memset(&l, 0, sizeof l);
    l.stop_after = 30;
    cr_assert_eq(ops->readdir(fs, h, 0, 0, plugin_listing_emit, &l), 0);
    cr_assert_eq(l.count, 30);
    uint64_t resume = l.cookies[29];
    /* Meanwhile: remove listed and unlisted names, add new ones before
     * and after the position. */
    cr_assert_eq(ops->remove(fs, &ctx, "d/k005", 0), 0);
    cr_assert_eq(ops->remove(fs, &ctx, "d/k090", 0), 0);
    put("d/a-first", "v");
    put("d/zz-last", "v");
    char last[64];
    snprintf(last, sizeof last, "%s", strrchr(l.names, '/') + 1);
    static char first_part[65536];
    strcpy(first_part, l.names);
    memset(&l, 0, sizeof l);
    cr_assert_eq(ops->readdir(fs, h, resume, 0, plugin_listing_emit, &l), 0);
    /* Every name present all along comes exactly once overall. */
    static char all[2 * 65536 + 4];
    strcpy(all, first_part);
    strcat(all, "/");
    strcat(all, l.names);
    strcat(all, "/");
    for (int i = 0; i < 100; i++) {
        if (i == 90)
            continue;
        char needle[32];
        snprintf(needle, sizeof needle, "k%03d/", i);
        char *hit = strstr(all, needle);
        cr_assert_not_null(hit, "%s missing", needle);
        cr_assert_null(strstr(hit + 1, needle), "%s twice", needle);
    }
    cr_assert_not_null(strstr(l.names, "zz-last"), "new name after");
    cr_assert_null(strstr(l.names, "a-first"), "before the position");
    cr_assert_gt(strcmp(l.names, last), 0, "resumed after '%s'", last);
    /* seekdir back to an earlier cookie works until rewinddir. */
    memset(&l, 0, sizeof l);
    l.stop_after = 1;
    cr_assert_eq(ops->readdir(fs, h, 1, 0, plugin_listing_emit, &l), 0);
    cr_assert_str_eq(l.names, "k000.dir", "the name after k000");
    /* A cookie never handed out: nothing after it. */
    memset(&l, 0, sizeof l);
    cr_assert_eq(ops->readdir(fs, h, 100000, 0, plugin_listing_emit, &l), 0);
    cr_assert_eq(l.count, 0);
    ops->close(fs, h, 0);
}

Test(kvfs, many_keys_list_sorted)
{
    mkdir_ok("big");
    char p[64];
    /* Insert in a scrambled order. */
    for (int i = 0; i < 3000; i++) {
        int k = (i * 7919) % 3000;
        snprintf(p, sizeof p, "big/%05d", k);
        put(p, "");
    }
    void *h = plugin_open(ops, fs, &ctx, "big",
                          FS9_OPEN_READ | FS9_OPEN_DIRECTORY, 0, NULL);
    static struct plugin_listing l;
    uint64_t cookie = 0;
    int seen = 0;
    char prev[16] = "";
    for (;;) { /* in buffers of 100, as the kernel asks */
        memset(&l, 0, sizeof l);
        l.stop_after = 100;
        cr_assert_eq(ops->readdir(fs, h, cookie, 0, plugin_listing_emit, &l),
                     0);
        if (l.count == 0)
            break;
        char *save = NULL;
        for (char *n = strtok_r(l.names, "/", &save); n;
             n = strtok_r(NULL, "/", &save)) {
            cr_assert_gt(strcmp(n, prev), 0, "%s after %s", n, prev);
            snprintf(prev, sizeof prev, "%s", n);
            seen++;
        }
        cookie = l.cookies[l.count - 1];
    }
    cr_assert_eq(seen, 3000);
    ops->close(fs, h, 0);
    struct fs9_statfs s;
    cr_assert_eq(ops->statfs(fs, "big", &s), 0);
    cr_assert_geq(s.files - s.ffree, 3001);
}

/* ---- rename ---- */

Test(kvfs, rename_file_over_file_and_into_another_directory)
{
    mkdir_ok("d");
    put("a", "A");
    put("b", "B");
    uint64_t ino = attr("a").ino;
    cr_assert_eq(ops->rename(fs, &ctx, "a", "b", 0), 0);
    cr_assert_str_eq(get("b"), "A");
    cr_assert_eq(attr("b").ino, ino, "the object moves, its ino stays");
    cr_assert_eq(plugin_stat(ops, fs, &ctx, "a", NULL), -ENOENT);
    cr_assert_eq(ops->rename(fs, &ctx, "b", "d/b", 0), 0);
    cr_assert_str_eq(list(""), "d");
    cr_assert_str_eq(list("d"), "b");
    cr_assert_eq(ops->rename(fs, &ctx, "d/b", "d/b", 0), 0, "same name");
    cr_assert_eq(ops->rename(fs, &ctx, "nosuch", "x", 0), -ENOENT);
    cr_assert_eq(ops->rename(fs, &ctx, "d/b", "no/x", 0), -ENOENT);
    cr_assert_eq(ops->rename(fs, &ctx, "d/b", "d/b/x", 0), -ENOTDIR);
}

Test(kvfs, rename_directory_moves_its_whole_subtree)
{
    mkdir_ok("src");
    mkdir_ok("src/sub");
    put("src/sub/f", "deep");
    put("src/g", "g");
    put("src-sibling", "s"); /* shares a prefix, must stay */
    mkdir_ok("dst");
    cr_assert_eq(ops->rename(fs, &ctx, "src", "dst/moved", 0), 0);
    cr_assert_str_eq(get("dst/moved/sub/f"), "deep");
    cr_assert_str_eq(get("dst/moved/g"), "g");
    cr_assert_str_eq(get("src-sibling"), "s");
    cr_assert_eq(plugin_stat(ops, fs, &ctx, "src/g", NULL), -ENOENT);
    cr_assert_str_eq(list(""), "dst/src-sibling");
    cr_assert_str_eq(list("dst/moved"), "g/sub");
    cr_assert_eq(attr("dst").nlink, 3);
    cr_assert_eq(attr("").nlink, 3);
}

Test(kvfs, rename_refusals_follow_posix)
{
    mkdir_ok("d");
    mkdir_ok("d/sub");
    mkdir_ok("full");
    put("full/x", "x");
    mkdir_ok("empty");
    put("f", "f");
    cr_assert_eq(ops->rename(fs, &ctx, "d", "d/sub/in", 0), -EINVAL,
                 "into its own subtree");
    cr_assert_eq(ops->rename(fs, &ctx, "d", "f", 0), -ENOTDIR);
    cr_assert_eq(ops->rename(fs, &ctx, "f", "d", 0), -EISDIR);
    cr_assert_eq(ops->rename(fs, &ctx, "d", "full", 0), -ENOTEMPTY);
    cr_assert_eq(ops->rename(fs, &ctx, "d/sub", "d", 0), -ENOTEMPTY,
                 "onto its own ancestor");
    cr_assert_eq(ops->rename(fs, &ctx, "", "x", 0), -EBUSY);
    cr_assert_eq(ops->rename(fs, &ctx, "f", "empty",
                             FS9_RENAME_NOREPLACE | FS9_RENAME_EXCHANGE),
                 -EINVAL);
    cr_assert_eq(ops->rename(fs, &ctx, "d", "empty", 0), 0,
                 "a directory replaces an empty one");
    cr_assert_str_eq(list(""), "empty/f/full");
    cr_assert_str_eq(list("empty"), "sub");
}

Test(kvfs, rename_noreplace_and_exchange)
{
    put("a", "A");
    put("b", "B");
    cr_assert_eq(ops->rename(fs, &ctx, "a", "b", FS9_RENAME_NOREPLACE),
                 -EEXIST);
    cr_assert_eq(ops->rename(fs, &ctx, "a", "c", FS9_RENAME_NOREPLACE), 0);
    cr_assert_eq(ops->rename(fs, &ctx, "c", "nosuch", FS9_RENAME_EXCHANGE),
                 -ENOENT);
    cr_assert_eq(ops->rename(fs, &ctx, "c", "b", FS9_RENAME_EXCHANGE), 0);
    cr_assert_str_eq(get("b"), "A");
    cr_assert_str_eq(get("c"), "B");

    /* A file with a directory, across directories, with a subtree. */
    mkdir_ok("d");
    mkdir_ok("d/tree");
    put("d/tree/leaf", "L");
    cr_assert_eq(ops->rename(fs, &ctx, "c", "d/tree", FS9_RENAME_EXCHANGE),
                 0);
    cr_assert_str_eq(get("d/tree"), "B");
    cr_assert_str_eq(get("c/leaf"), "L");
    cr_assert_eq(attr("").nlink, 4, "c and d are directories now");
    cr_assert_eq(attr("d").nlink, 2);

    /* Two directories swap their subtrees. */
    mkdir_ok("e");
    put("e/x", "X");
    cr_assert_eq(ops->rename(fs, &ctx, "c", "e", FS9_RENAME_EXCHANGE), 0);
    cr_assert_str_eq(list("c"), "x");
    cr_assert_str_eq(list("e"), "leaf");
    mkdir_ok("e/in");
    cr_assert_eq(ops->rename(fs, &ctx, "e", "e/in", FS9_RENAME_EXCHANGE),
                 -EINVAL);
    cr_assert_eq(ops->rename(fs, &ctx, "e/in", "e", FS9_RENAME_EXCHANGE),
                 -EINVAL);
}

Test(kvfs, an_open_directory_lists_its_new_place_after_rename)
{
    mkdir_ok("d");
    put("d/x", "x");
    void *h = plugin_open(ops, fs, &ctx, "d",
                          FS9_OPEN_READ | FS9_OPEN_DIRECTORY, 0, NULL);
    cr_assert_eq(ops->rename(fs, &ctx, "d", "e", 0), 0);
    put("e/y", "y");
    struct plugin_listing l;
    memset(&l, 0, sizeof l);
    cr_assert_eq(ops->readdir(fs, h, 0, 0, plugin_listing_emit, &l), 0);
    cr_assert_str_eq(l.names, "x/y");
    cr_assert_eq(ops->remove(fs, &ctx, "e/x", 0), 0);
    cr_assert_eq(ops->remove(fs, &ctx, "e/y", 0), 0);
    cr_assert_eq(ops->remove(fs, &ctx, "e", FS9_REMOVE_DIR), 0);
    memset(&l, 0, sizeof l);
    cr_assert_eq(ops->readdir(fs, h, 0, 0, plugin_listing_emit, &l), 0);
    cr_assert_eq(l.count, 0, "a removed directory is empty");
    ops->close(fs, h, 0);
}

/* ---- symlinks ---- */

Test(kvfs, symlinks_store_their_target)
{
    struct fs9_attr a;
    cr_assert_eq(ops->symlink(fs, &ctx, "../some/where", "l", &a), 0);
    cr_assert(S_ISLNK(a.mode));
    char buf[64];
    cr_assert_eq(ops->readlink(fs, "l", buf, sizeof buf), 13);
    cr_assert_eq(memcmp(buf, "../some/where", 13), 0);
    cr_assert_eq(ops->readlink(fs, "l", buf, 4), -ENAMETOOLONG);
    put("f", "x");
    cr_assert_eq(ops->readlink(fs, "f", buf, sizeof buf), -EINVAL);
    cr_assert_eq(ops->symlink(fs, &ctx, "t", "f", &a), -EEXIST);
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "l", FS9_OPEN_READ, 0),
                 -ELOOP);
}

/* ---- attributes ---- */

Test(kvfs, new_keys_belong_to_the_caller_and_setgid_passes_the_group)
{
    put("mine", "x");
    cr_assert_eq(attr("mine").uid, 1000);
    cr_assert_eq(attr("mine").gid, 1000);
    cr_assert_eq(attr("mine").mode, S_IFREG | 0644);
    mkdir_ok("shared");
    struct fs9_wstat w = {.valid = FS9_WSTAT_MODE | FS9_WSTAT_GID,
                          .mode = 02775, .gid = 50};
    struct fs9_attr a;
    cr_assert_eq(ops->wstat(fs, &ctx, "shared", NULL, &w, &a), 0);
    mkdir_ok("shared/sub");
    put("shared/f", "x");
    cr_assert_eq(attr("shared/f").gid, 50);
    cr_assert_eq(attr("shared/sub").gid, 50);
    cr_assert(attr("shared/sub").mode & S_ISGID);
}

Test(kvfs, times_move_as_on_linux)
{
    th.fixed_now = 1;
    th.now_value = (struct timespec){.tv_sec = 100};
    mkdir_ok("d");
    th.now_value.tv_sec = 200;
    put("d/f", "x");
    cr_assert_eq(attr("d").mtime.tv_sec, 200, "a new name moves the dir");
    cr_assert_eq(attr("d/f").ctime.tv_sec, 200);
    th.now_value.tv_sec = 300;
    void *h = plugin_open(ops, fs, &ctx, "d/f", FS9_OPEN_WRITE, 0, NULL);
    plugin_write_str(ops, fs, h, "y", 0);
    ops->close(fs, h, 0);
    cr_assert_eq(attr("d/f").mtime.tv_sec, 300);
    cr_assert_eq(attr("d").mtime.tv_sec, 200, "data does not move the dir");
    struct fs9_wstat w = {.valid = FS9_WSTAT_MTIME | FS9_WSTAT_ATIME,
                          .mtime = {.tv_sec = 5, .tv_nsec = 6},
                          .atime = {.tv_sec = 7, .tv_nsec = UTIME_OMIT}};
    struct fs9_attr a;
    th.now_value.tv_sec = 400;
    cr_assert_eq(ops->wstat(fs, &ctx, "d/f", NULL, &w, &a), 0);
    cr_assert_eq(a.mtime.tv_sec, 5);
    cr_assert_eq(a.mtime.tv_nsec, 6);
    cr_assert_eq(a.atime.tv_sec, 200, "UTIME_OMIT leaves it");
    cr_assert_eq(a.ctime.tv_sec, 400);
    w = (struct fs9_wstat){.valid = FS9_WSTAT_MTIME, .mtime = {0, -1}};
    cr_assert_eq(ops->wstat(fs, &ctx, "d/f", NULL, &w, &a), -EINVAL);
    th.now_value.tv_sec = 500;
    cr_assert_eq(ops->remove(fs, &ctx, "d/f", 0), 0);
    cr_assert_eq(attr("d").mtime.tv_sec, 500);
}

Test(kvfs, wstat_is_all_or_nothing)
{
    mkdir_ok("d");
    struct fs9_wstat w = {.valid = FS9_WSTAT_MODE | FS9_WSTAT_SIZE,
                          .mode = 0700, .size = 1};
    struct fs9_attr a;
    cr_assert_eq(ops->wstat(fs, &ctx, "d", NULL, &w, &a), -EISDIR);
    cr_assert_eq(attr("d").mode, S_IFDIR | 0755, "mode unchanged");
    w.valid = FS9_WSTAT_UID | FS9_WSTAT_GID;
    w.uid = 7;
    w.gid = 8;
    cr_assert_eq(ops->wstat(fs, &ctx, "d", NULL, &w, &a), 0);
    cr_assert_eq(a.uid, 7);
    cr_assert_eq(a.gid, 8);
    cr_assert_eq(ops->wstat(fs, &ctx, "nope", NULL, &w, &a), -ENOENT);
}

/* ---- limits ---- */

Test(kvfs, size_limit_writes_what_fits_then_enospc)
{
    teardown();
    const char *kv[] = {"size=10k", "max_keys=3", NULL};
    setup_with(kv);
    char *buf = calloc(1, 16384);
    void *h = plugin_open(ops, fs, &ctx, "big",
                          FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0644, NULL);
    cr_assert_eq(ops->write(fs, h, buf, 16384, 0), 10240, "what fits");
    cr_assert_eq(ops->write(fs, h, buf, 10, 10240), -ENOSPC);
    struct fs9_statfs s;
    cr_assert_eq(ops->statfs(fs, "", &s), 0);
    cr_assert_eq(s.blocks, 10240 / 4096);
    cr_assert_eq(s.bfree, 0);
    struct fs9_wstat w = {.valid = FS9_WSTAT_SIZE, .size = 100};
    struct fs9_attr a;
    cr_assert_eq(ops->wstat(fs, &ctx, "big", h, &w, &a), 0, "shrink");
    cr_assert_eq(ops->write(fs, h, buf, 10, 100), 10, "room again");
    ops->close(fs, h, 0);
    free(buf);
    put("k2", "x");
    put("k3", "x");
    cr_assert_eq(plugin_open_rc(ops, fs, &ctx, "k4",
                                FS9_OPEN_CREATE | FS9_OPEN_WRITE, 0644),
                 -ENOSPC, "max_keys");
    cr_assert_eq(mkdir_rc("d"), -ENOSPC);
    cr_assert_eq(ops->remove(fs, &ctx, "k3", 0), 0);
    mkdir_ok("d");
}

/* ---- concurrency ---- */

struct worker {
    int id;
};

static void *churn(void *arg)
{
    struct worker *w = arg;
    char a[64], b[64], d[64];
    snprintf(d, sizeof d, "w%d", w->id);
    mkdir_ok(d);
    for (int i = 0; i < 300; i++) {
        snprintf(a, sizeof a, "w%d/k%d", w->id, i);
        snprintf(b, sizeof b, "w%d/r%d", w->id, i);
        put(a, a);
        cr_assert_eq(ops->rename(fs, &ctx, a, b, 0), 0);
        if (i % 2)
            cr_assert_eq(ops->remove(fs, &ctx, b, 0), 0);
        struct plugin_listing *l = malloc(sizeof *l);
        memset(l, 0, sizeof *l);
        cr_assert_eq(plugin_list(ops, fs, &ctx, "", 0, l), 0);
        free(l);
    }
    return NULL;
}

Test(kvfs, concurrent_creates_renames_removes_and_listings)
{
    pthread_t t[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i].id = i;
        pthread_create(&t[i], NULL, churn, &w[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++) {
        char d[16];
        snprintf(d, sizeof d, "w%d", i);
        struct plugin_listing *l = malloc(sizeof *l);
        memset(l, 0, sizeof *l);
        cr_assert_eq(plugin_list(ops, fs, &ctx, d, 0, l), 0);
        cr_assert_eq(l->count, 150, "%s holds %zu", d, l->count);
        free(l);
    }
    cr_assert_eq(attr("").nlink, 6);
}
