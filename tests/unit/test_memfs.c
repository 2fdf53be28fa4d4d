/*
 * test_memfs — memfs driven through the provider ABI only, the way the
 * core drives it: configuration, files, directories, links, rename rules,
 * xattrs, limits, timestamps, readdir stability, big files, concurrency.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "providers/providers.h"
#include "test_host.h"

#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE 0x01
#define FALLOC_FL_PUNCH_HOLE 0x02
#define FALLOC_FL_COLLAPSE_RANGE 0x08
#define FALLOC_FL_ZERO_RANGE 0x10
#endif

static const struct fs9_provider_ops *const ops = &fs9_memfs_ops;
static struct test_host th;
static void *fs;
static struct fs9_ctx ctx;

/* ---- fixtures and helpers ---------------------------------------------- */

/** Create an instance from "key=value" strings (NULL-terminated). */
static int make_fs(void **out, char *err, size_t errlen,
                   const char *const *kv)
{
    struct fs9_config_item items[16];
    char keys[16][64];
    size_t n = 0;
    for (; kv && kv[n]; n++) {
        const char *eq = strchr(kv[n], '=');
        size_t kl = eq ? (size_t)(eq - kv[n]) : strlen(kv[n]);
        snprintf(keys[n], sizeof keys[n], "%.*s", (int)kl, kv[n]);
        items[n].key = keys[n];
        items[n].value = eq ? eq + 1 : "";
    }
    struct fs9_config cfg = {.items = items, .count = n, .mount_path = "/"};
    return ops->create(&th.host, &cfg, out, err, errlen);
}

static void setup_with(const char *const *kv)
{
    char err[256];
    test_host_init(&th);
    ctx = test_ctx(1000, 1000);
    int rc = make_fs(&fs, err, sizeof err, kv);
    cr_assert_eq(rc, 0, "create: %s", err);
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

static void set_clock(time_t sec, long nsec)
{
    th.fixed_now = 1;
    th.now_value.tv_sec = sec;
    th.now_value.tv_nsec = nsec;
}

static bool ts_eq(struct timespec a, struct timespec b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static int mkdir_(const char *path, uint32_t mode)
{
    struct fs9_open_out out;
    memset(&out, 0, sizeof out);
    return ops->open(fs, &ctx, path,
                     FS9_OPEN_CREATE | FS9_OPEN_EXCL | FS9_OPEN_DIRECTORY |
                         FS9_OPEN_NOHANDLE,
                     S_IFDIR | mode, &out);
}

static int open_(const char *path, uint32_t flags, uint32_t mode,
                 void **h)
{
    struct fs9_open_out out;
    memset(&out, 0, sizeof out);
    int rc = ops->open(fs, &ctx, path, flags, mode, &out);
    if (h)
        *h = rc == 0 ? out.handle : NULL;
    return rc;
}

static void *openh(const char *path, uint32_t flags, uint32_t mode)
{
    void *h = NULL;
    int rc = open_(path, flags, mode, &h);
    cr_assert_eq(rc, 0, "open %s: %s", path, strerror(-rc));
    cr_assert_not_null(h);
    return h;
}

static void put(const char *path, const char *data)
{
    void *h = openh(path, FS9_OPEN_WRITE | FS9_OPEN_CREATE | FS9_OPEN_TRUNC,
                    0644);
    size_t len = strlen(data);
    cr_assert_eq(ops->write(fs, h, data, len, 0), (ssize_t)len);
    cr_assert_eq(ops->close(fs, h, 0), 0);
}

/** Read a whole (small) file as a string; the caller frees it. */
static char *get(const char *path)
{
    static const size_t cap = 1 << 16;
    char *buf = calloc(1, cap + 1);
    void *h = openh(path, FS9_OPEN_READ, 0);
    ssize_t n = ops->read(fs, h, buf, cap, 0);
    cr_assert_geq(n, 0);
    ops->close(fs, h, 0);
    return buf;
}

static void assert_content(const char *path, const char *want)
{
    char *got = get(path);
    cr_assert_str_eq(got, want, "%s", path);
    free(got);
}

static struct fs9_attr st(const char *path)
{
    struct fs9_attr a;
    int rc = ops->stat(fs, &ctx, path, NULL, &a);
    cr_assert_eq(rc, 0, "stat %s: %s", path, strerror(-rc));
    return a;
}

static int stat_rc(const char *path)
{
    struct fs9_attr a;
    return ops->stat(fs, &ctx, path, NULL, &a);
}

static int wstat_(const char *path, void *h, struct fs9_wstat w)
{
    struct fs9_attr a;
    return ops->wstat(fs, &ctx, path, h, &w, &a);
}

/* readdir collector ------------------------------------------------------ */

struct listing {
    char **names;
    uint64_t *cookies;
    uint64_t *inos;
    size_t n, cap;
    size_t limit;     /* entries accepted per readdir call, 0: no limit */
    size_t this_call; /* accepted in the current call */
    uint64_t last;    /* cookie of the last accepted entry */
};

static int collect(void *arg, const struct fs9_dirent *e)
{
    struct listing *l = arg;
    if (l->limit && l->this_call == l->limit)
        return 1;
    cr_assert_eq(e->full_attr, 1u, "readdir must emit full attributes");
    cr_assert_neq(e->cookie, 0u);
    cr_assert_lt(e->cookie, UINT64_C(1) << 63);
    cr_assert_neq(e->attr.ino, 0u);
    cr_assert_neq(e->attr.mode & S_IFMT, 0u);
    cr_assert(strcmp(e->name, ".") && strcmp(e->name, ".."));
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->names = realloc(l->names, l->cap * sizeof *l->names);
        l->cookies = realloc(l->cookies, l->cap * sizeof *l->cookies);
        l->inos = realloc(l->inos, l->cap * sizeof *l->inos);
    }
    l->names[l->n] = strdup(e->name);
    l->cookies[l->n] = e->cookie;
    l->inos[l->n] = e->attr.ino;
    l->n++;
    l->this_call++;
    l->last = e->cookie;
    return 0;
}

static void listing_free(struct listing *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    free(l->cookies);
    free(l->inos);
    memset(l, 0, sizeof *l);
}

/** List a directory completely (per_call entries per readdir call). */
static void list_dir(const char *path, size_t per_call, struct listing *l)
{
    memset(l, 0, sizeof *l);
    l->limit = per_call;
    void *h = openh(path, FS9_OPEN_READ | FS9_OPEN_DIRECTORY, 0);
    for (;;) {
        size_t before = l->n;
        l->this_call = 0;
        cr_assert_eq(ops->readdir(fs, h, l->last, 0, collect, l), 0);
        if (l->n == before)
            break;
    }
    ops->close(fs, h, 0);
}

static bool listing_has(const struct listing *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->names[i], name) == 0)
            return true;
    return false;
}

static uint64_t used_pages(void)
{
    struct fs9_statfs s;
    cr_assert_eq(ops->statfs(fs, "", &s), 0);
    return s.blocks - s.bfree;
}

TestSuite(memfs, .init = setup, .fini = teardown, .timeout = 240);

/* ---- configuration ------------------------------------------------------ */

Test(memfs, create_rejects_unknown_key_with_message)
{
    char err[256];
    void *x = NULL;
    const char *kv[] = {"size=1m", "colour=blue", NULL};
    cr_assert_eq(make_fs(&x, err, sizeof err, kv), -EINVAL);
    cr_assert_null(x);
    cr_assert(strstr(err, "colour") != NULL, "err: %s", err);
    cr_assert(strchr(err, '\n') == NULL);
}

Test(memfs, create_rejects_bad_values_with_messages)
{
    const char *bad[] = {"size=abc", "size=12q",   "size=-1",
                         "size=",    "size=0%",    "size=99999999999999999999",
                         "size=5x%", "nr_inodes=many", "nr_inodes=10%",
                         "mode=0999", "mode=17777", "mode=",
                         "uid=root",  "uid=-5",     "gid=4294967295",
                         NULL};
    for (int i = 0; bad[i]; i++) {
        char err[256] = "";
        void *x = NULL;
        const char *kv[] = {bad[i], NULL};
        cr_assert_eq(make_fs(&x, err, sizeof err, kv), -EINVAL, "%s", bad[i]);
        cr_assert_null(x);
        char key[32];
        snprintf(key, sizeof key, "%.*s", (int)strcspn(bad[i], "="), bad[i]);
        cr_assert(strstr(err, key) != NULL, "%s -> '%s'", bad[i], err);
    }
}

Test(memfs, size_accepts_suffixes_and_percentages)
{
    struct {
        const char *kv;
        uint64_t blocks;
    } cases[] = {
        {"size=4096", 1},          {"size=1", 1},
        {"size=64k", 16},          {"size=64K", 16},
        {"size=3m", 768},          {"size=2G", 524288},
        {"size=1t", 268435456},    {"size=8193", 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256];
        void *x = NULL;
        const char *kv[] = {cases[i].kv, NULL};
        cr_assert_eq(make_fs(&x, err, sizeof err, kv), 0, "%s", err);
        struct fs9_statfs s;
        cr_assert_eq(ops->statfs(x, "", &s), 0);
        cr_assert_eq(s.blocks, cases[i].blocks, "%s", cases[i].kv);
        ops->destroy(x);
    }
    /* A percentage of RAM: 50% is half of 100%. */
    char err[256];
    void *a = NULL, *b = NULL;
    const char *k50[] = {"size=50%", NULL}, *k100[] = {"size=100%", NULL};
    cr_assert_eq(make_fs(&a, err, sizeof err, k50), 0);
    cr_assert_eq(make_fs(&b, err, sizeof err, k100), 0);
    struct fs9_statfs sa, sb, sd;
    ops->statfs(a, "", &sa);
    ops->statfs(b, "", &sb);
    ops->statfs(fs, "", &sd); /* default: 50% of RAM */
    cr_assert_gt(sa.blocks, 0u);
    cr_assert_leq(sa.blocks * 2 - sb.blocks + 2, 4u);
    cr_assert_eq(sd.blocks, sa.blocks);
    ops->destroy(a);
    ops->destroy(b);
}

Test(memfs, root_mode_and_owner_come_from_config)
{
    teardown();
    const char *kv[] = {"mode=1777", "uid=123", "gid=456", NULL};
    setup_with(kv);
    struct fs9_attr a = st("");
    cr_assert_eq(a.mode, (uint32_t)(S_IFDIR | 01777));
    cr_assert_eq(a.uid, 123u);
    cr_assert_eq(a.gid, 456u);
}

Test(memfs, root_defaults_to_0755_owned_by_the_process)
{
    struct fs9_attr a = st("");
    cr_assert_eq(a.mode, (uint32_t)(S_IFDIR | 0755));
    cr_assert_eq(a.uid, (uint32_t)getuid());
    cr_assert_eq(a.gid, (uint32_t)getgid());
    cr_assert_eq(a.ino, 1u);
    cr_assert_eq(a.nlink, 2u);
    cr_assert_eq(a.blksize, 4096u);
}

Test(memfs, capabilities_are_the_posix_set_and_nonblocking)
{
    uint64_t want = FS9_CAP_READ | FS9_CAP_WRITE | FS9_CAP_CREATE |
                    FS9_CAP_DELETE | FS9_CAP_RENAME | FS9_CAP_TRUNCATE |
                    FS9_CAP_CHMOD | FS9_CAP_CHOWN | FS9_CAP_UTIME |
                    FS9_CAP_HARDLINK | FS9_CAP_SYMLINK | FS9_CAP_SYNC |
                    FS9_CAP_APPEND | FS9_CAP_RANDOM_WRITE |
                    FS9_CAP_DIRECTORY | FS9_CAP_XATTR |
                    FS9_CAP_ATOMIC_RENAME | FS9_CAP_NONBLOCKING;
    cr_assert_eq(ops->capabilities(fs), want);
    cr_assert_eq(ops->abi_version, (uint32_t)FS9_PROVIDER_ABI_VERSION);
    cr_assert_eq(ops->struct_size, (uint32_t)sizeof(struct fs9_provider_ops));
    cr_assert_str_eq(ops->name, "memfs");
    cr_assert_null(ops->poll);
}

/* ---- regular files ------------------------------------------------------ */

Test(memfs, write_then_read_round_trips)
{
    put("f", "hello, world");
    assert_content("f", "hello, world");
    struct fs9_attr a = st("f");
    cr_assert_eq(a.size, 12u);
    cr_assert_eq(a.mode, (uint32_t)(S_IFREG | 0644));
    cr_assert_eq(a.nlink, 1u);
    cr_assert_eq(a.blocks, 8u);
    cr_assert_eq(a.blksize, 4096u);
}

Test(memfs, read_at_and_past_eof_is_short_then_zero)
{
    put("f", "abcdef");
    void *h = openh("f", FS9_OPEN_READ, 0);
    char buf[16];
    cr_assert_eq(ops->read(fs, h, buf, sizeof buf, 4), 2);
    cr_assert_eq(memcmp(buf, "ef", 2), 0);
    cr_assert_eq(ops->read(fs, h, buf, sizeof buf, 6), 0);
    cr_assert_eq(ops->read(fs, h, buf, sizeof buf, 1000000), 0);
    ops->close(fs, h, 0);
}

Test(memfs, sparse_holes_read_as_zero_and_cost_no_blocks)
{
    void *h = openh("s", FS9_OPEN_READ | FS9_OPEN_WRITE | FS9_OPEN_CREATE,
                    0644);
    uint64_t far = UINT64_C(10) << 30; /* 10 GiB */
    cr_assert_eq(ops->write(fs, h, "X", 1, far), 1);
    struct fs9_attr a;
    ops->stat(fs, &ctx, "s", h, &a);
    cr_assert_eq(a.size, far + 1);
    cr_assert_eq(a.blocks, 8u, "one page allocated, not 10 GiB");
    char buf[8192];
    memset(buf, 'z', sizeof buf);
    cr_assert_eq(ops->read(fs, h, buf, sizeof buf, far - 8191), 8192);
    for (int i = 0; i < 8191; i++)
        cr_assert_eq(buf[i], 0, "hole byte %d", i);
    cr_assert_eq(buf[8191], 'X');
    memset(buf, 'z', sizeof buf);
    cr_assert_eq(ops->read(fs, h, buf, 100, 12345678), 100);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(buf[i], 0);
    cr_assert_eq(used_pages(), 1u);
    ops->close(fs, h, 0);
}

Test(memfs, st_blocks_counts_allocated_4k_pages_in_512_byte_units)
{
    void *h = openh("f", FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0644);
    char buf[4097];
    memset(buf, 1, sizeof buf);
    cr_assert_eq(ops->write(fs, h, buf, 4097, 0), 4097);
    struct fs9_attr a;
    ops->stat(fs, &ctx, NULL, h, &a);
    cr_assert_eq(a.blocks, 16u);
    cr_assert_eq(ops->write(fs, h, buf, 1, 40960), 1);
    ops->stat(fs, &ctx, NULL, h, &a);
    cr_assert_eq(a.blocks, 24u);
    cr_assert_eq(a.size, 40961u);
    ops->close(fs, h, 0);
}

Test(memfs, append_writes_go_to_the_end_whatever_the_offset)
{
    put("log", "one\n");
    void *h = openh("log", FS9_OPEN_WRITE | FS9_OPEN_APPEND, 0);
    cr_assert_eq(ops->write(fs, h, "two\n", 4, 0), 4);
    cr_assert_eq(ops->write(fs, h, "three\n", 6, 1), 6);
    cr_assert_eq(ops->write(fs, h, "4\n", 2, 999999), 2);
    ops->close(fs, h, 0);
    assert_content("log", "one\ntwo\nthree\n4\n");
}

Test(memfs, excl_create_of_an_existing_name_is_eexist)
{
    put("f", "x");
    cr_assert_eq(open_("f", FS9_OPEN_WRITE | FS9_OPEN_CREATE | FS9_OPEN_EXCL,
                       0644, NULL),
                 -EEXIST);
    cr_assert_eq(mkdir_("d", 0755), 0);
    cr_assert_eq(mkdir_("d", 0755), -EEXIST);
    cr_assert_eq(mkdir_("f", 0755), -EEXIST);
    cr_assert_eq(mkdir_("", 0755), -EEXIST);
    assert_content("f", "x");
}

Test(memfs, create_reports_created_only_for_new_objects)
{
    struct fs9_open_out out;
    memset(&out, 0, sizeof out);
    cr_assert_eq(ops->open(fs, &ctx, "f", FS9_OPEN_WRITE | FS9_OPEN_CREATE,
                           0600, &out), 0);
    cr_assert_eq(out.created, 1u);
    cr_assert_eq(out.attr.mode, (uint32_t)(S_IFREG | 0600));
    ops->close(fs, out.handle, 0);
    memset(&out, 0, sizeof out);
    cr_assert_eq(ops->open(fs, &ctx, "f", FS9_OPEN_WRITE | FS9_OPEN_CREATE,
                           0644, &out), 0);
    cr_assert_eq(out.created, 0u);
    cr_assert_eq(out.attr.mode, (uint32_t)(S_IFREG | 0600));
    ops->close(fs, out.handle, 0);
}

Test(memfs, open_trunc_empties_the_file)
{
    put("f", "some content");
    void *h = openh("f", FS9_OPEN_WRITE | FS9_OPEN_TRUNC, 0);
    struct fs9_attr a;
    ops->stat(fs, &ctx, NULL, h, &a);
    cr_assert_eq(a.size, 0u);
    cr_assert_eq(a.blocks, 0u);
    ops->close(fs, h, 0);
    assert_content("f", "");
    cr_assert_eq(used_pages(), 0u);
}

Test(memfs, truncate_down_then_up_reads_zeros_not_old_data)
{
    char buf[10000];
    memset(buf, 'A', sizeof buf);
    void *h = openh("f", FS9_OPEN_READ | FS9_OPEN_WRITE | FS9_OPEN_CREATE,
                    0644);
    cr_assert_eq(ops->write(fs, h, buf, sizeof buf, 0), 10000);
    struct fs9_wstat w = {.valid = FS9_WSTAT_SIZE, .size = 100};
    cr_assert_eq(wstat_(NULL, h, w), 0);
    struct fs9_attr a;
    ops->stat(fs, &ctx, NULL, h, &a);
    cr_assert_eq(a.size, 100u);
    cr_assert_eq(a.blocks, 8u, "pages past the new end are freed");
    w.size = 10000;
    cr_assert_eq(wstat_("f", NULL, w), 0);
    memset(buf, 'z', sizeof buf);
    cr_assert_eq(ops->read(fs, h, buf, sizeof buf, 0), 10000);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(buf[i], 'A');
    for (int i = 100; i < 10000; i++)
        cr_assert_eq(buf[i], 0, "byte %d after truncate up", i);
    ops->close(fs, h, 0);
}

Test(memfs, truncate_to_zero_frees_all_pages)
{
    char buf[65536];
    memset(buf, 7, sizeof buf);
    void *h = openh("f", FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0644);
    ops->write(fs, h, buf, sizeof buf, 0);
    cr_assert_eq(used_pages(), 16u);
    struct fs9_wstat w = {.valid = FS9_WSTAT_SIZE, .size = 0};
    cr_assert_eq(wstat_(NULL, h, w), 0);
    cr_assert_eq(used_pages(), 0u);
    ops->close(fs, h, 0);
}

Test(memfs, wstat_size_is_eisdir_on_dirs_and_einval_on_special_files)
{
    cr_assert_eq(mkdir_("d", 0755), 0);
    struct fs9_wstat w = {.valid = FS9_WSTAT_SIZE, .size = 0};
    cr_assert_eq(wstat_("d", NULL, w), -EISDIR);
    cr_assert_eq(wstat_("", NULL, w), -EISDIR);
    struct fs9_attr a;
    cr_assert_eq(ops->symlink(fs, &ctx, "target", "l", &a), 0);
    cr_assert_eq(wstat_("l", NULL, w), -EINVAL);
    cr_assert_eq(ops->mknod(fs, &ctx, "p", S_IFIFO | 0644, 0, &a), 0);
    cr_assert_eq(wstat_("p", NULL, w), -EINVAL);
    cr_assert_eq(wstat_("missing", NULL, w), -ENOENT);
}

Test(memfs, wstat_applies_all_changes_or_none)
{
    cr_assert_eq(mkdir_("d", 0755), 0);
    struct fs9_attr before = st("d");
    struct fs9_wstat w = {.valid = FS9_WSTAT_MODE | FS9_WSTAT_UID |
                                   FS9_WSTAT_SIZE,
                          .mode = 0700, .uid = 5, .size = 0};
    cr_assert_eq(wstat_("d", NULL, w), -EISDIR);
    struct fs9_attr after = st("d");
    cr_assert_eq(after.mode, before.mode);
    cr_assert_eq(after.uid, before.uid);
    cr_assert(ts_eq(after.ctime, before.ctime));
}

Test(memfs, wstat_mode_keeps_the_type_and_sets_07777)
{
    put("f", "x");
    struct fs9_wstat w = {.valid = FS9_WSTAT_MODE, .mode = S_IFDIR | 06751};
    cr_assert_eq(wstat_("f", NULL, w), 0);
    cr_assert_eq(st("f").mode, (uint32_t)(S_IFREG | 06751));
    w.valid = FS9_WSTAT_UID | FS9_WSTAT_GID;
    w.uid = 42;
    w.gid = 43;
    cr_assert_eq(wstat_("f", NULL, w), 0);
    cr_assert_eq(st("f").uid, 42u);
    cr_assert_eq(st("f").gid, 43u);
}

Test(memfs, read_and_write_check_the_access_mode)
{
    put("f", "data");
    void *r = openh("f", FS9_OPEN_READ, 0);
    void *w = openh("f", FS9_OPEN_WRITE, 0);
    char buf[8];
    cr_assert_eq(ops->write(fs, r, "x", 1, 0), -EBADF);
    cr_assert_eq(ops->read(fs, w, buf, 4, 0), -EBADF);
    cr_assert_eq(ops->fallocate(fs, r, 0, 0, 4096), -EBADF);
    ops->close(fs, r, 0);
    ops->close(fs, w, 0);
}

Test(memfs, zero_length_write_changes_nothing)
{
    put("f", "abc");
    set_clock(5000, 0);
    void *h = openh("f", FS9_OPEN_WRITE, 0);
    struct fs9_attr before, after;
    ops->stat(fs, &ctx, NULL, h, &before);
    set_clock(6000, 0);
    cr_assert_eq(ops->write(fs, h, "", 0, 100), 0);
    ops->stat(fs, &ctx, NULL, h, &after);
    cr_assert_eq(after.size, 3u);
    cr_assert(ts_eq(after.mtime, before.mtime));
    ops->close(fs, h, 0);
}

Test(memfs, writes_beyond_the_maximum_file_size_are_efbig)
{
    void *h = openh("f", FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0644);
    cr_assert_eq(ops->write(fs, h, "x", 1, (uint64_t)INT64_MAX), -EFBIG);
    struct fs9_wstat w = {.valid = FS9_WSTAT_SIZE,
                          .size = (uint64_t)INT64_MAX + 1};
    cr_assert_eq(wstat_(NULL, h, w), -EFBIG);
    ops->close(fs, h, 0);
}

/* ---- open errors -------------------------------------------------------- */

Test(memfs, open_errors_have_the_posix_errno)
{
    put("file", "x");
    cr_assert_eq(mkdir_("dir", 0755), 0);
    struct fs9_attr a;
    cr_assert_eq(ops->symlink(fs, &ctx, "file", "link", &a), 0);

    cr_assert_eq(open_("missing", FS9_OPEN_READ, 0, NULL), -ENOENT);
    cr_assert_eq(open_("nodir/f", FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0644,
                       NULL), -ENOENT);
    cr_assert_eq(open_("file/x", FS9_OPEN_READ, 0, NULL), -ENOTDIR);
    cr_assert_eq(open_("file/x", FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0644,
                       NULL), -ENOTDIR);
    cr_assert_eq(open_("link/x", FS9_OPEN_READ, 0, NULL), -ENOTDIR);
    cr_assert_eq(open_("file", FS9_OPEN_READ | FS9_OPEN_DIRECTORY, 0, NULL),
                 -ENOTDIR);
    cr_assert_eq(open_("dir", FS9_OPEN_WRITE, 0, NULL), -EISDIR);
    cr_assert_eq(open_("dir", FS9_OPEN_READ | FS9_OPEN_WRITE, 0, NULL),
                 -EISDIR);
    cr_assert_eq(open_("dir", FS9_OPEN_READ | FS9_OPEN_TRUNC, 0, NULL),
                 -EISDIR);
    cr_assert_eq(open_("", FS9_OPEN_WRITE, 0, NULL), -EISDIR);
    cr_assert_eq(open_("dir", FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0644, NULL),
                 -EISDIR);
    cr_assert_eq(open_("link", FS9_OPEN_READ, 0, NULL), -ELOOP);
    cr_assert_eq(open_("link", FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0644, NULL),
                 -ELOOP);
    cr_assert_eq(open_("link", FS9_OPEN_WRITE | FS9_OPEN_CREATE |
                                   FS9_OPEN_EXCL, 0644, NULL),
                 -EEXIST);
}

Test(memfs, names_longer_than_255_bytes_are_enametoolong)
{
    char name[300];
    memset(name, 'n', sizeof name);
    name[255] = '\0';
    put(name, "ok"); /* 255 is fine */
    assert_content(name, "ok");
    name[255] = 'n';
    name[256] = '\0';
    cr_assert_eq(open_(name, FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0644, NULL),
                 -ENAMETOOLONG);
    cr_assert_eq(mkdir_(name, 0755), -ENAMETOOLONG);
    cr_assert_eq(stat_rc(name), -ENAMETOOLONG);
    struct fs9_attr a;
    cr_assert_eq(ops->symlink(fs, &ctx, "t", name, &a), -ENAMETOOLONG);
    put("f", "x");
    cr_assert_eq(ops->rename(fs, &ctx, "f", name, 0), -ENAMETOOLONG);
    cr_assert_eq(ops->link(fs, &ctx, "f", name, &a), -ENAMETOOLONG);
    char path[400];
    snprintf(path, sizeof path, "%s/x", name);
    cr_assert_eq(stat_rc(path), -ENAMETOOLONG);
}

Test(memfs, malformed_paths_are_einval)
{
    cr_assert_eq(mkdir_("d", 0755), 0);
    cr_assert_eq(stat_rc("d//x"), -EINVAL);
    cr_assert_eq(stat_rc("d/"), -EINVAL);
    cr_assert_eq(stat_rc("/d"), -EINVAL);
    cr_assert_eq(stat_rc("d/."), -EINVAL);
    cr_assert_eq(stat_rc("d/.."), -EINVAL);
    cr_assert_eq(mkdir_("..", 0755), -EINVAL);
}

Test(memfs, directories_open_read_only_for_readdir)
{
    cr_assert_eq(mkdir_("d", 0755), 0);
    put("d/a", "1");
    void *h1 = openh("d", FS9_OPEN_READ, 0);
    void *h2 = openh("d", FS9_OPEN_READ | FS9_OPEN_DIRECTORY, 0);
    void *h3 = openh("", FS9_OPEN_READ, 0);
    struct listing l;
    memset(&l, 0, sizeof l);
    cr_assert_eq(ops->readdir(fs, h1, 0, 0, collect, &l), 0);
    cr_assert_eq(l.n, 1u);
    listing_free(&l);
    cr_assert_eq(ops->readdir(fs, h2, 0, FS9_READDIR_PLUS, collect, &l), 0);
    cr_assert_eq(l.n, 1u);
    listing_free(&l);
    cr_assert_eq(ops->readdir(fs, h3, 0, 0, collect, &l), 0);
    cr_assert_eq(l.n, 1u);
    cr_assert_str_eq(l.names[0], "d");
    listing_free(&l);
    char buf[4];
    cr_assert_eq(ops->read(fs, h1, buf, 4, 0), -EISDIR);
    cr_assert_eq(ops->write(fs, h1, buf, 4, 0), -EISDIR);
    ops->close(fs, h1, 0);
    ops->close(fs, h2, 0);
    ops->close(fs, h3, 0);
    void *fh = openh("d/a", FS9_OPEN_READ, 0);
    cr_assert_eq(ops->readdir(fs, fh, 0, 0, collect, &l), -ENOTDIR);
    ops->close(fs, fh, 0);
}

/* ---- directories and nlink ---------------------------------------------- */

Test(memfs, mkdir_makes_a_directory_and_counts_it_in_the_parent_nlink)
{
    cr_assert_eq(mkdir_("a", 0750), 0);
    struct fs9_attr a = st("a");
    cr_assert_eq(a.mode, (uint32_t)(S_IFDIR | 0750));
    cr_assert_eq(a.nlink, 2u);
    cr_assert_eq(st("").nlink, 3u);
    cr_assert_eq(mkdir_("a/b", 0755), 0);
    cr_assert_eq(mkdir_("a/c", 0755), 0);
    put("a/file", "x");
    cr_assert_eq(st("a").nlink, 4u, "2 + two subdirectories, files don't count");
    cr_assert_eq(st("").nlink, 3u);
    cr_assert_eq(ops->remove(fs, &ctx, "a/b", FS9_REMOVE_DIR), 0);
    cr_assert_eq(st("a").nlink, 3u);
}

Test(memfs, remove_and_rmdir_errors_have_the_posix_errno)
{
    put("f", "x");
    cr_assert_eq(mkdir_("d", 0755), 0);
    cr_assert_eq(mkdir_("full", 0755), 0);
    put("full/x", "x");

    cr_assert_eq(ops->remove(fs, &ctx, "d", 0), -EISDIR);
    cr_assert_eq(ops->remove(fs, &ctx, "f", FS9_REMOVE_DIR), -ENOTDIR);
    cr_assert_eq(ops->remove(fs, &ctx, "full", FS9_REMOVE_DIR), -ENOTEMPTY);
    cr_assert_eq(ops->remove(fs, &ctx, "missing", 0), -ENOENT);
    cr_assert_eq(ops->remove(fs, &ctx, "missing/x", 0), -ENOENT);
    cr_assert_eq(ops->remove(fs, &ctx, "f/x", 0), -ENOTDIR);
    int r = ops->remove(fs, &ctx, "", FS9_REMOVE_DIR);
    cr_assert(r == -EBUSY || r == -EINVAL, "rmdir root: %d", r);
    cr_assert_eq(ops->remove(fs, &ctx, "", 0), -EISDIR);

    cr_assert_eq(ops->remove(fs, &ctx, "f", 0), 0);
    cr_assert_eq(stat_rc("f"), -ENOENT);
    cr_assert_eq(ops->remove(fs, &ctx, "d", FS9_REMOVE_DIR), 0);
    cr_assert_eq(stat_rc("d"), -ENOENT);
    cr_assert_eq(ops->remove(fs, &ctx, "full/x", 0), 0);
    cr_assert_eq(ops->remove(fs, &ctx, "full", FS9_REMOVE_DIR), 0);
    cr_assert_eq(st("").nlink, 2u);
}

Test(memfs, inode_numbers_are_unique_stable_and_never_reused)
{
    uint64_t seen[200];
    for (int i = 0; i < 100; i++) {
        char p[16];
        snprintf(p, sizeof p, "f%d", i);
        put(p, "x");
        seen[i] = st(p).ino;
        cr_assert_neq(seen[i], 0u);
        cr_assert_neq(seen[i], 1u);
        ops->remove(fs, &ctx, p, 0);
    }
    for (int i = 0; i < 100; i++) {
        char p[16];
        snprintf(p, sizeof p, "g%d", i);
        cr_assert_eq(mkdir_(p, 0755), 0);
        seen[100 + i] = st(p).ino;
    }
    for (int i = 0; i < 200; i++)
        for (int j = i + 1; j < 200; j++)
            cr_assert_neq(seen[i], seen[j]);
    uint64_t ino = st("g5").ino;
    cr_assert_eq(ops->rename(fs, &ctx, "g5", "g6/moved", 0), 0);
    cr_assert_eq(st("g6/moved").ino, ino);
}

/* ---- readdir -------------------------------------------------------------- */

Test(memfs, readdir_lists_every_entry_with_attributes_and_no_dots)
{
    cr_assert_eq(mkdir_("d", 0755), 0);
    put("d/file", "12345");
    cr_assert_eq(mkdir_("d/sub", 0700), 0);
    struct fs9_attr a;
    cr_assert_eq(ops->symlink(fs, &ctx, "file", "d/link", &a), 0);
    struct listing l;
    list_dir("d", 0, &l);
    cr_assert_eq(l.n, 3u);
    cr_assert(listing_has(&l, "file") && listing_has(&l, "sub") &&
              listing_has(&l, "link"));
    for (size_t i = 0; i < l.n; i++)
        cr_assert_eq(l.inos[i], st(strcmp(l.names[i], "file") == 0 ? "d/file"
                                   : strcmp(l.names[i], "sub") == 0 ? "d/sub"
                                                                    : "d/link")
                                    .ino);
    listing_free(&l);
}

static int check_file_attr(void *arg, const struct fs9_dirent *e)
{
    const struct fs9_attr *want = arg;
    if (strcmp(e->name, "file") == 0) {
        cr_assert_eq(e->attr.size, want->size);
        cr_assert_eq(e->attr.mode, want->mode);
        cr_assert_eq(e->attr.nlink, want->nlink);
        cr_assert_eq(e->attr.uid, want->uid);
        cr_assert(ts_eq(e->attr.mtime, want->mtime));
    }
    return 0;
}

Test(memfs, readdir_entries_carry_the_same_attributes_as_stat)
{
    put("file", "12345");
    struct fs9_attr want = st("file");
    void *h = openh("", FS9_OPEN_READ, 0);
    cr_assert_eq(ops->readdir(fs, h, 0, 0, check_file_attr, &want), 0);
    ops->close(fs, h, 0);
}

Test(memfs, readdir_resumes_by_cookie_when_the_buffer_fills)
{
    for (int i = 0; i < 500; i++) {
        char p[16];
        snprintf(p, sizeof p, "e%03d", i);
        put(p, "");
    }
    struct listing l;
    list_dir("", 7, &l); /* emit says "full" after 7 entries */
    cr_assert_eq(l.n, 500u);
    for (size_t i = 1; i < l.n; i++)
        cr_assert_gt(l.cookies[i], l.cookies[i - 1]);
    for (int i = 0; i < 500; i++) {
        char p[16];
        snprintf(p, sizeof p, "e%03d", i);
        cr_assert(listing_has(&l, p), "%s missing", p);
    }
    listing_free(&l);
}

static int abort_emit(void *arg, const struct fs9_dirent *e)
{
    (void)e;
    (*(int *)arg)++;
    return -EIO;
}

Test(memfs, readdir_passes_on_an_emit_error)
{
    put("a", "");
    put("b", "");
    int calls = 0;
    void *h = openh("", FS9_OPEN_READ, 0);
    cr_assert_eq(ops->readdir(fs, h, 0, 0, abort_emit, &calls), -EIO);
    cr_assert_eq(calls, 1);
    ops->close(fs, h, 0);
}

/* Entries neither removed nor added during a listing are returned exactly
 * once, even when others are created and removed between readdir calls. */
Test(memfs, readdir_is_complete_and_duplicate_free_under_churn)
{
    enum { N = 3000 };
    static bool removed[N];
    char p[32];
    for (int i = 0; i < N; i++) {
        snprintf(p, sizeof p, "d/s%d", i);
        if (i == 0)
            cr_assert_eq(mkdir_("d", 0755), 0);
        put(p, "");
    }
    void *h = openh("d", FS9_OPEN_READ, 0);
    struct listing l;
    memset(&l, 0, sizeof l);
    l.limit = 13;
    int added = 0, round = 0;
    unsigned seed = 12345;
    for (;;) {
        size_t before = l.n;
        l.this_call = 0;
        cr_assert_eq(ops->readdir(fs, h, l.last, 0, collect, &l), 0);
        if (l.n == before)
            break;
        if (round >= 300)
            continue; /* stop churning so that the listing can end */
        /* churn: remove 5 random stable-set entries, add 7 new ones,
         * remove some of the new ones again */
        for (int k = 0; k < 5; k++) {
            seed = seed * 1103515245 + 12345;
            int victim = (int)((seed >> 8) % N);
            if (removed[victim])
                continue;
            removed[victim] = true;
            snprintf(p, sizeof p, "d/s%d", victim);
            cr_assert_eq(ops->remove(fs, &ctx, p, 0), 0);
        }
        for (int k = 0; k < 7; k++) {
            snprintf(p, sizeof p, "d/n%d", added++);
            put(p, "");
        }
        if (round++ % 3 == 0) {
            snprintf(p, sizeof p, "d/n%d", added - 3);
            cr_assert_eq(ops->remove(fs, &ctx, p, 0), 0);
        }
    }
    ops->close(fs, h, 0);
    cr_assert_geq(round, 300, "churn ran during 300 readdir calls");

    /* no duplicates at all */
    for (size_t i = 0; i < l.n; i++)
        for (size_t j = i + 1; j < l.n; j++)
            cr_assert(strcmp(l.names[i], l.names[j]) != 0, "dup %s",
                      l.names[i]);
    /* every stable entry exactly once */
    for (int i = 0; i < N; i++) {
        if (removed[i])
            continue;
        snprintf(p, sizeof p, "s%d", i);
        cr_assert(listing_has(&l, p), "stable entry %s missing", p);
    }
    listing_free(&l);
}

Test(memfs, directory_with_100000_entries_lists_and_looks_up)
{
    enum { N = 100000 };
    char p[32];
    cr_assert_eq(mkdir_("big", 0755), 0);
    for (int i = 0; i < N; i++) {
        snprintf(p, sizeof p, "big/entry-%06d", i);
        struct fs9_open_out out;
        cr_assert_eq(ops->open(fs, &ctx, p,
                               FS9_OPEN_CREATE | FS9_OPEN_EXCL |
                                   FS9_OPEN_NOHANDLE,
                               0644, &out),
                     0);
    }
    for (int i = 0; i < N; i += 7) {
        snprintf(p, sizeof p, "big/entry-%06d", i);
        cr_assert_eq(stat_rc(p), 0);
    }
    cr_assert_eq(stat_rc("big/entry-100000"), -ENOENT);
    for (int i = 0; i < N; i += 2) {
        snprintf(p, sizeof p, "big/entry-%06d", i);
        cr_assert_eq(ops->remove(fs, &ctx, p, 0), 0);
    }
    struct listing l;
    list_dir("big", 0, &l);
    cr_assert_eq(l.n, (size_t)N / 2);
    listing_free(&l);
}

Test(memfs, removed_directory_open_handle_lists_nothing)
{
    cr_assert_eq(mkdir_("d", 0755), 0);
    void *h = openh("d", FS9_OPEN_READ, 0);
    cr_assert_eq(ops->remove(fs, &ctx, "d", FS9_REMOVE_DIR), 0);
    struct listing l;
    memset(&l, 0, sizeof l);
    cr_assert_eq(ops->readdir(fs, h, 0, 0, collect, &l), 0);
    cr_assert_eq(l.n, 0u);
    struct fs9_attr a;
    cr_assert_eq(ops->stat(fs, &ctx, "d", h, &a), 0);
    cr_assert_eq(a.nlink, 0u);
    cr_assert_eq(ops->close(fs, h, 0), 0);
}

/* ---- symlinks, hard links, special files ------------------------------- */

Test(memfs, symlink_and_readlink_round_trip)
{
    struct fs9_attr a;
    cr_assert_eq(ops->symlink(fs, &ctx, "../some/where", "l", &a), 0);
    cr_assert_eq(a.mode & S_IFMT, (uint32_t)S_IFLNK);
    cr_assert_eq(a.size, 13u);
    cr_assert_eq(a.uid, 1000u);
    char buf[64];
    cr_assert_eq(ops->readlink(fs, "l", buf, sizeof buf), 13);
    cr_assert_eq(memcmp(buf, "../some/where", 13), 0);
    cr_assert_eq(ops->readlink(fs, "l", buf, 13), 13);
    cr_assert_eq(ops->readlink(fs, "l", buf, 12), -ENAMETOOLONG);
    put("f", "x");
    cr_assert_eq(ops->readlink(fs, "f", buf, sizeof buf), -EINVAL);
    cr_assert_eq(ops->readlink(fs, "", buf, sizeof buf), -EINVAL);
    cr_assert_eq(ops->readlink(fs, "nope", buf, sizeof buf), -ENOENT);
    cr_assert_eq(ops->symlink(fs, &ctx, "x", "l", &a), -EEXIST);
    cr_assert_eq(ops->symlink(fs, &ctx, "x", "f", &a), -EEXIST);
    cr_assert_eq(ops->symlink(fs, &ctx, "", "empty", &a), -ENOENT);
    char longt[5000];
    memset(longt, 'x', sizeof longt);
    longt[4999] = '\0';
    cr_assert_eq(ops->symlink(fs, &ctx, longt, "long", &a), -ENAMETOOLONG);
    longt[4095] = '\0';
    cr_assert_eq(ops->symlink(fs, &ctx, longt, "long", &a), 0);
}

Test(memfs, hard_links_share_the_inode_and_count_nlink)
{
    put("a", "shared");
    struct fs9_attr a;
    cr_assert_eq(mkdir_("d", 0755), 0);
    cr_assert_eq(ops->link(fs, &ctx, "a", "d/b", &a), 0);
    cr_assert_eq(a.nlink, 2u);
    cr_assert_eq(a.ino, st("a").ino);
    cr_assert_eq(st("d/b").nlink, 2u);
    cr_assert_eq(st("d").nlink, 2u, "files do not count in dir nlink");
    void *h = openh("d/b", FS9_OPEN_WRITE | FS9_OPEN_APPEND, 0);
    ops->write(fs, h, "!", 1, 0);
    ops->close(fs, h, 0);
    assert_content("a", "shared!");
    cr_assert_eq(ops->remove(fs, &ctx, "a", 0), 0);
    cr_assert_eq(st("d/b").nlink, 1u);
    assert_content("d/b", "shared!");
}

Test(memfs, link_errors_have_the_posix_errno)
{
    put("f", "x");
    put("g", "y");
    cr_assert_eq(mkdir_("d", 0755), 0);
    struct fs9_attr a;
    cr_assert_eq(ops->link(fs, &ctx, "d", "d2", &a), -EPERM);
    cr_assert_eq(ops->link(fs, &ctx, "", "root2", &a), -EPERM);
    cr_assert_eq(ops->link(fs, &ctx, "f", "g", &a), -EEXIST);
    cr_assert_eq(ops->link(fs, &ctx, "f", "d", &a), -EEXIST);
    cr_assert_eq(ops->link(fs, &ctx, "missing", "h", &a), -ENOENT);
    cr_assert_eq(ops->link(fs, &ctx, "f", "nodir/h", &a), -ENOENT);
    cr_assert_eq(ops->link(fs, &ctx, "f", "g/h", &a), -ENOTDIR);
    cr_assert_eq(st("f").nlink, 1u);
}

Test(memfs, symlinks_can_be_hard_linked)
{
    struct fs9_attr a;
    cr_assert_eq(ops->symlink(fs, &ctx, "t", "l", &a), 0);
    cr_assert_eq(ops->link(fs, &ctx, "l", "l2", &a), 0);
    cr_assert_eq(a.nlink, 2u);
    char buf[4];
    cr_assert_eq(ops->readlink(fs, "l2", buf, sizeof buf), 1);
}

Test(memfs, mknod_creates_fifos_sockets_and_devices)
{
    struct fs9_attr a;
    cr_assert_eq(ops->mknod(fs, &ctx, "fifo", S_IFIFO | 0640, 0, &a), 0);
    cr_assert_eq(a.mode, (uint32_t)(S_IFIFO | 0640));
    cr_assert_eq(ops->mknod(fs, &ctx, "sock", S_IFSOCK | 0600, 0, &a), 0);
    cr_assert_eq(a.mode & S_IFMT, (uint32_t)S_IFSOCK);
    cr_assert_eq(ops->mknod(fs, &ctx, "null", S_IFCHR | 0666,
                            makedev(1, 3), &a), 0);
    cr_assert_eq(a.rdev, (uint64_t)makedev(1, 3));
    cr_assert_eq(st("null").rdev, (uint64_t)makedev(1, 3));
    cr_assert_eq(ops->mknod(fs, &ctx, "blk", S_IFBLK | 0660, makedev(8, 0),
                            &a), 0);
    cr_assert_eq(ops->mknod(fs, &ctx, "reg", S_IFREG | 0644, 0, &a), 0);
    cr_assert_eq(a.mode, (uint32_t)(S_IFREG | 0644));
    cr_assert_eq(ops->mknod(fs, &ctx, "fifo", S_IFIFO | 0640, 0, &a),
                 -EEXIST);
    cr_assert_eq(ops->mknod(fs, &ctx, "dir", S_IFDIR | 0755, 0, &a), -EPERM);
    cr_assert_eq(ops->mknod(fs, &ctx, "nodir/x", S_IFIFO | 0644, 0, &a),
                 -ENOENT);
    /* special files are not opened by memfs */
    cr_assert_eq(open_("fifo", FS9_OPEN_READ, 0, NULL), -ENXIO);
    cr_assert_eq(open_("sock", FS9_OPEN_READ, 0, NULL), -ENXIO);
    /* but they can be hard linked, renamed and removed */
    cr_assert_eq(ops->link(fs, &ctx, "fifo", "fifo2", &a), 0);
    cr_assert_eq(ops->rename(fs, &ctx, "sock", "sock2", 0), 0);
    cr_assert_eq(ops->remove(fs, &ctx, "null", 0), 0);
}

Test(memfs, open_create_nohandle_makes_fifos_and_sockets)
{
    struct fs9_open_out out;
    memset(&out, 0, sizeof out);
    uint32_t fl = FS9_OPEN_CREATE | FS9_OPEN_EXCL | FS9_OPEN_NOHANDLE;
    cr_assert_eq(ops->open(fs, &ctx, "p", fl, S_IFIFO | 0600, &out), 0);
    cr_assert_null(out.handle);
    cr_assert_eq(out.created, 1u);
    cr_assert_eq(out.attr.mode, (uint32_t)(S_IFIFO | 0600));
    cr_assert_eq(ops->open(fs, &ctx, "s", fl, S_IFSOCK | 0600, &out), 0);
    cr_assert_eq(st("s").mode & S_IFMT, (uint32_t)S_IFSOCK);
    cr_assert_eq(ops->open(fs, &ctx, "p", fl, S_IFIFO | 0600, &out), -EEXIST);
    /* a file can be created without a handle too */
    cr_assert_eq(ops->open(fs, &ctx, "f", fl, 0644, &out), 0);
    cr_assert_null(out.handle);
    cr_assert_eq(st("f").mode, (uint32_t)(S_IFREG | 0644));
}

/* ---- ownership ---------------------------------------------------------- */

Test(memfs, new_objects_belong_to_the_caller)
{
    ctx = test_ctx(501, 20);
    put("f", "x");
    cr_assert_eq(mkdir_("d", 0755), 0);
    struct fs9_attr a;
    cr_assert_eq(ops->symlink(fs, &ctx, "t", "l", &a), 0);
    cr_assert_eq(ops->mknod(fs, &ctx, "p", S_IFIFO | 0644, 0, &a), 0);
    const char *paths[] = {"f", "d", "l", "p"};
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(st(paths[i]).uid, 501u, "%s", paths[i]);
        cr_assert_eq(st(paths[i]).gid, 20u, "%s", paths[i]);
    }
}

Test(memfs, setgid_directories_pass_their_group_and_the_bit_to_subdirs)
{
    cr_assert_eq(mkdir_("shared", 0775), 0);
    struct fs9_wstat w = {.valid = FS9_WSTAT_GID | FS9_WSTAT_MODE,
                          .gid = 777, .mode = 02775};
    cr_assert_eq(wstat_("shared", NULL, w), 0);
    ctx = test_ctx(501, 20);
    put("shared/f", "x");
    cr_assert_eq(mkdir_("shared/sub", 0755), 0);
    struct fs9_attr a;
    cr_assert_eq(ops->symlink(fs, &ctx, "t", "shared/l", &a), 0);
    cr_assert_eq(st("shared/f").gid, 777u);
    cr_assert_eq(st("shared/f").uid, 501u);
    cr_assert_eq(st("shared/f").mode & S_ISGID, 0u);
    cr_assert_eq(st("shared/l").gid, 777u);
    struct fs9_attr sub = st("shared/sub");
    cr_assert_eq(sub.gid, 777u);
    cr_assert_eq(sub.mode, (uint32_t)(S_IFDIR | S_ISGID | 0755));
    /* and it carries on down */
    put("shared/sub/g", "x");
    cr_assert_eq(st("shared/sub/g").gid, 777u);
    /* a plain directory does not */
    cr_assert_eq(mkdir_("plain", 0755), 0);
    put("plain/f", "x");
    cr_assert_eq(st("plain/f").gid, 20u);
}

/* ---- timestamps ----------------------------------------------------------- */

Test(memfs, create_sets_all_times_and_moves_the_parent_mtime_ctime)
{
    set_clock(1000, 111);
    cr_assert_eq(mkdir_("d", 0755), 0);
    set_clock(2000, 222);
    struct timespec t2 = {2000, 222};
    put("d/f", "");
    struct fs9_attr f = st("d/f"), d = st("d");
    cr_assert(ts_eq(f.atime, t2) && ts_eq(f.mtime, t2) && ts_eq(f.ctime, t2));
    cr_assert(ts_eq(d.mtime, t2) && ts_eq(d.ctime, t2));
    cr_assert(ts_eq(d.atime, (struct timespec){1000, 111}));
}

Test(memfs, write_moves_mtime_and_ctime_but_not_atime)
{
    set_clock(1000, 0);
    put("f", "a");
    set_clock(2000, 5);
    void *h = openh("f", FS9_OPEN_WRITE, 0);
    ops->write(fs, h, "b", 1, 0);
    ops->close(fs, h, 0);
    struct fs9_attr a = st("f");
    cr_assert(ts_eq(a.mtime, (struct timespec){2000, 5}));
    cr_assert(ts_eq(a.ctime, (struct timespec){2000, 5}));
    cr_assert(ts_eq(a.atime, (struct timespec){1000, 0}));
}

Test(memfs, read_moves_atime_by_relatime_rules)
{
    set_clock(1000, 0);
    put("f", "data");
    char buf[8];
    void *h = openh("f", FS9_OPEN_READ, 0);
    /* atime == mtime: the first read moves it */
    set_clock(1100, 0);
    ops->read(fs, h, buf, 4, 0);
    cr_assert(ts_eq(st("f").atime, (struct timespec){1100, 0}));
    /* atime now newer than mtime/ctime: further reads leave it */
    set_clock(1200, 0);
    ops->read(fs, h, buf, 4, 0);
    cr_assert(ts_eq(st("f").atime, (struct timespec){1100, 0}));
    /* a day later it moves again */
    set_clock(1100 + 24 * 3600, 0);
    ops->read(fs, h, buf, 4, 0);
    cr_assert(ts_eq(st("f").atime, (struct timespec){1100 + 24 * 3600, 0}));
    /* after a write (mtime >= atime) it moves again */
    void *w = openh("f", FS9_OPEN_WRITE, 0);
    set_clock(200000, 0);
    ops->write(fs, w, "x", 1, 0);
    set_clock(200001, 0);
    ops->read(fs, h, buf, 4, 0);
    cr_assert(ts_eq(st("f").atime, (struct timespec){200001, 0}));
    ops->close(fs, w, 0);
    ops->close(fs, h, 0);
}

Test(memfs, noatime_handles_never_move_atime)
{
    set_clock(1000, 0);
    put("f", "data");
    set_clock(5000, 0);
    void *h = openh("f", FS9_OPEN_READ | FS9_OPEN_NOATIME, 0);
    char buf[8];
    ops->read(fs, h, buf, 4, 0);
    ops->close(fs, h, 0);
    cr_assert(ts_eq(st("f").atime, (struct timespec){1000, 0}));
}

Test(memfs, wstat_moves_ctime_and_size_changes_move_mtime)
{
    set_clock(1000, 0);
    put("f", "data");
    set_clock(2000, 0);
    struct fs9_wstat w = {.valid = FS9_WSTAT_MODE, .mode = 0600};
    cr_assert_eq(wstat_("f", NULL, w), 0);
    struct fs9_attr a = st("f");
    cr_assert(ts_eq(a.ctime, (struct timespec){2000, 0}));
    cr_assert(ts_eq(a.mtime, (struct timespec){1000, 0}));
    set_clock(3000, 0);
    w.valid = FS9_WSTAT_SIZE;
    w.size = 2;
    cr_assert_eq(wstat_("f", NULL, w), 0);
    a = st("f");
    cr_assert(ts_eq(a.ctime, (struct timespec){3000, 0}));
    cr_assert(ts_eq(a.mtime, (struct timespec){3000, 0}));
    cr_assert(ts_eq(a.atime, (struct timespec){1000, 0}));
    /* an empty wstat changes nothing */
    set_clock(4000, 0);
    w.valid = 0;
    cr_assert_eq(wstat_("f", NULL, w), 0);
    cr_assert(ts_eq(st("f").ctime, (struct timespec){3000, 0}));
}

Test(memfs, wstat_sets_explicit_and_current_times)
{
    set_clock(1000, 0);
    put("f", "");
    set_clock(9000, 9);
    struct fs9_wstat w = {.valid = FS9_WSTAT_ATIME | FS9_WSTAT_MTIME,
                          .atime = {111, 1}, .mtime = {222, 2}};
    cr_assert_eq(wstat_("f", NULL, w), 0);
    struct fs9_attr a = st("f");
    cr_assert(ts_eq(a.atime, (struct timespec){111, 1}));
    cr_assert(ts_eq(a.mtime, (struct timespec){222, 2}));
    cr_assert(ts_eq(a.ctime, (struct timespec){9000, 9}));
    set_clock(9500, 5);
    w.valid = FS9_WSTAT_ATIME_NOW | FS9_WSTAT_MTIME_NOW;
    cr_assert_eq(wstat_("f", NULL, w), 0);
    a = st("f");
    cr_assert(ts_eq(a.atime, (struct timespec){9500, 5}));
    cr_assert(ts_eq(a.mtime, (struct timespec){9500, 5}));
    w.valid = FS9_WSTAT_CTIME;
    w.ctime = (struct timespec){333, 3};
    cr_assert_eq(wstat_("f", NULL, w), 0);
    cr_assert(ts_eq(st("f").ctime, (struct timespec){333, 3}));
    w.valid = FS9_WSTAT_MTIME;
    w.mtime = (struct timespec){1, 1000000000L};
    cr_assert_eq(wstat_("f", NULL, w), -EINVAL);
}

Test(memfs, remove_moves_parent_times_and_the_object_ctime)
{
    set_clock(1000, 0);
    cr_assert_eq(mkdir_("d", 0755), 0);
    put("d/f", "x");
    void *h = openh("d/f", FS9_OPEN_READ, 0);
    set_clock(2000, 0);
    cr_assert_eq(ops->remove(fs, &ctx, "d/f", 0), 0);
    struct fs9_attr d = st("d"), f;
    cr_assert(ts_eq(d.mtime, (struct timespec){2000, 0}));
    cr_assert(ts_eq(d.ctime, (struct timespec){2000, 0}));
    ops->stat(fs, &ctx, "d/f", h, &f);
    cr_assert(ts_eq(f.ctime, (struct timespec){2000, 0}));
    cr_assert(ts_eq(f.mtime, (struct timespec){1000, 0}));
    ops->close(fs, h, 0);
}

Test(memfs, rename_moves_both_parents_times_and_the_object_ctime)
{
    set_clock(1000, 0);
    cr_assert_eq(mkdir_("a", 0755), 0);
    cr_assert_eq(mkdir_("b", 0755), 0);
    put("a/f", "x");
    set_clock(2000, 0);
    cr_assert_eq(ops->rename(fs, &ctx, "a/f", "b/g", 0), 0);
    struct timespec t = {2000, 0};
    cr_assert(ts_eq(st("a").mtime, t) && ts_eq(st("a").ctime, t));
    cr_assert(ts_eq(st("b").mtime, t) && ts_eq(st("b").ctime, t));
    cr_assert(ts_eq(st("b/g").ctime, t));
    cr_assert(ts_eq(st("b/g").mtime, (struct timespec){1000, 0}));
}

Test(memfs, link_moves_the_parent_times_and_the_object_ctime)
{
    set_clock(1000, 0);
    cr_assert_eq(mkdir_("d", 0755), 0);
    put("f", "x");
    set_clock(2000, 0);
    struct fs9_attr a;
    cr_assert_eq(ops->link(fs, &ctx, "f", "d/g", &a), 0);
    struct timespec t = {2000, 0};
    cr_assert(ts_eq(a.ctime, t));
    cr_assert(ts_eq(st("d").mtime, t) && ts_eq(st("d").ctime, t));
    cr_assert(ts_eq(st("f").mtime, (struct timespec){1000, 0}));
}

Test(memfs, xattr_changes_move_ctime_only)
{
    set_clock(1000, 0);
    put("f", "x");
    set_clock(2000, 0);
    cr_assert_eq(ops->setxattr(fs, &ctx, "f", "user.a", "1", 1, 0), 0);
    cr_assert(ts_eq(st("f").ctime, (struct timespec){2000, 0}));
    cr_assert(ts_eq(st("f").mtime, (struct timespec){1000, 0}));
    set_clock(3000, 0);
    cr_assert_eq(ops->removexattr(fs, &ctx, "f", "user.a"), 0);
    cr_assert(ts_eq(st("f").ctime, (struct timespec){3000, 0}));
    set_clock(4000, 0);
    cr_assert_eq(ops->removexattr(fs, &ctx, "f", "user.a"), -ENODATA);
    cr_assert(ts_eq(st("f").ctime, (struct timespec){3000, 0}));
}

Test(memfs, readdir_moves_directory_atime_by_relatime)
{
    set_clock(1000, 0);
    cr_assert_eq(mkdir_("d", 0755), 0);
    set_clock(1500, 0);
    void *h = openh("d", FS9_OPEN_READ, 0);
    struct listing l;
    memset(&l, 0, sizeof l);
    ops->readdir(fs, h, 0, 0, collect, &l);
    ops->close(fs, h, 0);
    cr_assert(ts_eq(st("d").atime, (struct timespec){1500, 0}));
}

/* ---- handles on removed objects ----------------------------------------- */

Test(memfs, open_unlink_read_write_close_keeps_data_until_last_close)
{
    char buf[20000];
    memset(buf, 'q', sizeof buf);
    void *h = openh("f", FS9_OPEN_READ | FS9_OPEN_WRITE | FS9_OPEN_CREATE,
                    0644);
    void *h2 = openh("f", FS9_OPEN_READ, 0);
    cr_assert_eq(ops->write(fs, h, buf, sizeof buf, 0), 20000);
    cr_assert_eq(ops->remove(fs, &ctx, "f", 0), 0);
    cr_assert_eq(stat_rc("f"), -ENOENT);

    struct fs9_attr a;
    cr_assert_eq(ops->stat(fs, &ctx, "f", h, &a), 0);
    cr_assert_eq(a.nlink, 0u);
    cr_assert_eq(a.size, 20000u);
    cr_assert_eq(ops->write(fs, h, "tail", 4, 20000), 4);
    struct fs9_wstat w = {.valid = FS9_WSTAT_MODE, .mode = 0600};
    cr_assert_eq(ops->wstat(fs, &ctx, "f", h, &w, &a), 0);
    cr_assert_eq(a.mode, (uint32_t)(S_IFREG | 0600));
    char rb[20004];
    cr_assert_eq(ops->read(fs, h2, rb, sizeof rb, 0), 20004);
    cr_assert_eq(memcmp(rb + 20000, "tail", 4), 0);
    cr_assert_eq(rb[19999], 'q');

    /* a new file of the same name is a different object, and stat/wstat
     * with the handle still reach the open one, not what the path names */
    put("f", "new");
    cr_assert_neq(st("f").ino, a.ino);
    struct fs9_attr via;
    cr_assert_eq(ops->stat(fs, &ctx, "f", h, &via), 0);
    cr_assert_eq(via.ino, a.ino);
    cr_assert_eq(via.size, 20004u);
    w.mode = 0640;
    cr_assert_eq(ops->wstat(fs, &ctx, "f", h, &w, &via), 0);
    cr_assert_eq(via.ino, a.ino);
    cr_assert_eq(st("f").mode, (uint32_t)(S_IFREG | 0644));

    cr_assert_eq(ops->close(fs, h, 0), 0);
    cr_assert_gt(used_pages(), 1u, "still open through h2");
    cr_assert_eq(ops->close(fs, h2, 1), 0);
    cr_assert_eq(used_pages(), 1u, "freed at the last close");
}

Test(memfs, fsync_and_close_with_sync_succeed)
{
    void *h = openh("f", FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0644);
    ops->write(fs, h, "x", 1, 0);
    cr_assert_eq(ops->fsync(fs, h, 0), 0);
    cr_assert_eq(ops->fsync(fs, h, 1), 0);
    cr_assert_eq(ops->close(fs, h, 1), 0);
}

/* ---- rename --------------------------------------------------------------- */

Test(memfs, rename_moves_a_file_to_a_new_name)
{
    put("a", "content");
    uint64_t ino = st("a").ino;
    cr_assert_eq(ops->rename(fs, &ctx, "a", "b", 0), 0);
    cr_assert_eq(stat_rc("a"), -ENOENT);
    cr_assert_eq(st("b").ino, ino);
    assert_content("b", "content");
}

Test(memfs, rename_replaces_an_existing_file)
{
    put("a", "new");
    put("b", "old");
    void *h = openh("b", FS9_OPEN_READ, 0);
    cr_assert_eq(ops->rename(fs, &ctx, "a", "b", 0), 0);
    assert_content("b", "new");
    cr_assert_eq(stat_rc("a"), -ENOENT);
    struct fs9_attr a;
    ops->stat(fs, &ctx, NULL, h, &a);
    cr_assert_eq(a.nlink, 0u, "the replaced file lost its name");
    char buf[8];
    cr_assert_eq(ops->read(fs, h, buf, sizeof buf, 0), 3);
    cr_assert_eq(memcmp(buf, "old", 3), 0);
    ops->close(fs, h, 0);
    struct listing l;
    list_dir("", 0, &l);
    cr_assert_eq(l.n, 1u);
    listing_free(&l);
}

Test(memfs, rename_replaces_an_empty_directory_with_a_directory)
{
    cr_assert_eq(mkdir_("a", 0755), 0);
    put("a/inside", "x");
    cr_assert_eq(mkdir_("b", 0755), 0);
    cr_assert_eq(st("").nlink, 4u);
    cr_assert_eq(ops->rename(fs, &ctx, "a", "b", 0), 0);
    assert_content("b/inside", "x");
    cr_assert_eq(stat_rc("a"), -ENOENT);
    cr_assert_eq(st("").nlink, 3u);
}

Test(memfs, rename_onto_a_non_empty_directory_is_enotempty)
{
    cr_assert_eq(mkdir_("a", 0755), 0);
    cr_assert_eq(mkdir_("b", 0755), 0);
    put("b/x", "x");
    cr_assert_eq(ops->rename(fs, &ctx, "a", "b", 0), -ENOTEMPTY);
    cr_assert_eq(stat_rc("a"), 0);
    cr_assert_eq(stat_rc("b/x"), 0);
}

Test(memfs, rename_of_a_non_directory_onto_a_directory_is_eisdir)
{
    put("f", "x");
    cr_assert_eq(mkdir_("d", 0755), 0);
    cr_assert_eq(ops->rename(fs, &ctx, "f", "d", 0), -EISDIR);
    struct fs9_attr a;
    cr_assert_eq(ops->symlink(fs, &ctx, "t", "l", &a), 0);
    cr_assert_eq(ops->rename(fs, &ctx, "l", "d", 0), -EISDIR);
}

Test(memfs, rename_of_a_directory_onto_a_non_directory_is_enotdir)
{
    put("f", "x");
    cr_assert_eq(mkdir_("d", 0755), 0);
    cr_assert_eq(ops->rename(fs, &ctx, "d", "f", 0), -ENOTDIR);
    cr_assert_eq(ops->rename(fs, &ctx, "d", "f/x", 0), -ENOTDIR);
}

Test(memfs, rename_of_a_directory_into_its_own_subtree_is_einval)
{
    cr_assert_eq(mkdir_("a", 0755), 0);
    cr_assert_eq(mkdir_("a/b", 0755), 0);
    cr_assert_eq(mkdir_("a/b/c", 0755), 0);
    cr_assert_eq(ops->rename(fs, &ctx, "a", "a/x", 0), -EINVAL);
    cr_assert_eq(ops->rename(fs, &ctx, "a", "a/b/c/x", 0), -EINVAL);
    cr_assert_eq(ops->rename(fs, &ctx, "a", "a/b/c", 0), -EINVAL);
    cr_assert_eq(ops->rename(fs, &ctx, "a/b", "a/b/c/d", 0), -EINVAL);
    /* the other way round: the target contains the source */
    cr_assert_eq(ops->rename(fs, &ctx, "a/b/c", "a", 0), -ENOTEMPTY);
    put("a/b/f", "x");
    cr_assert_eq(ops->rename(fs, &ctx, "a/b/f", "a", 0), -ENOTEMPTY);
    /* the root cannot be renamed or replaced */
    cr_assert_eq(ops->rename(fs, &ctx, "", "z", 0), -EINVAL);
    cr_assert_eq(ops->rename(fs, &ctx, "a", "", 0), -EINVAL);
    cr_assert_eq(stat_rc("a/b/c"), 0);
}

Test(memfs, rename_onto_another_link_of_the_same_inode_is_a_no_op)
{
    put("a", "x");
    struct fs9_attr l;
    cr_assert_eq(ops->link(fs, &ctx, "a", "b", &l), 0);
    cr_assert_eq(ops->rename(fs, &ctx, "a", "b", 0), 0);
    cr_assert_eq(stat_rc("a"), 0, "POSIX: both names stay");
    cr_assert_eq(stat_rc("b"), 0);
    cr_assert_eq(st("a").nlink, 2u);
    cr_assert_eq(ops->rename(fs, &ctx, "a", "a", 0), 0);
    cr_assert_eq(st("a").nlink, 2u);
    cr_assert_eq(mkdir_("d", 0755), 0);
    cr_assert_eq(ops->rename(fs, &ctx, "d", "d", 0), 0);
}

Test(memfs, rename_of_a_missing_source_is_enoent)
{
    cr_assert_eq(ops->rename(fs, &ctx, "nope", "x", 0), -ENOENT);
    cr_assert_eq(ops->rename(fs, &ctx, "no/pe", "x", 0), -ENOENT);
    put("f", "x");
    cr_assert_eq(ops->rename(fs, &ctx, "f", "nodir/x", 0), -ENOENT);
    cr_assert_eq(ops->rename(fs, &ctx, "f", "f/x", 0), -ENOTDIR);
    cr_assert_eq(ops->rename(fs, &ctx, "f", "g", 0x80), -EINVAL);
}

Test(memfs, rename_noreplace_refuses_an_existing_target)
{
    put("a", "1");
    put("b", "2");
    cr_assert_eq(ops->rename(fs, &ctx, "a", "b", FS9_RENAME_NOREPLACE),
                 -EEXIST);
    assert_content("b", "2");
    cr_assert_eq(ops->rename(fs, &ctx, "a", "c", FS9_RENAME_NOREPLACE), 0);
    assert_content("c", "1");
    cr_assert_eq(ops->rename(fs, &ctx, "b", "c",
                             FS9_RENAME_NOREPLACE | FS9_RENAME_EXCHANGE),
                 -EINVAL);
}

Test(memfs, rename_exchange_swaps_two_files)
{
    put("a", "AAA");
    put("b", "B");
    uint64_t ia = st("a").ino, ib = st("b").ino;
    cr_assert_eq(ops->rename(fs, &ctx, "a", "b", FS9_RENAME_EXCHANGE), 0);
    assert_content("a", "B");
    assert_content("b", "AAA");
    cr_assert_eq(st("a").ino, ib);
    cr_assert_eq(st("b").ino, ia);
    cr_assert_eq(ops->rename(fs, &ctx, "a", "missing", FS9_RENAME_EXCHANGE),
                 -ENOENT);
    cr_assert_eq(ops->rename(fs, &ctx, "missing", "a", FS9_RENAME_EXCHANGE),
                 -ENOENT);
}

Test(memfs, rename_exchange_of_a_dir_and_a_file_fixes_parent_nlink)
{
    cr_assert_eq(mkdir_("p1", 0755), 0);
    cr_assert_eq(mkdir_("p2", 0755), 0);
    cr_assert_eq(mkdir_("p1/dir", 0755), 0);
    put("p1/dir/inside", "i");
    put("p2/file", "f");
    cr_assert_eq(st("p1").nlink, 3u);
    cr_assert_eq(st("p2").nlink, 2u);
    cr_assert_eq(ops->rename(fs, &ctx, "p1/dir", "p2/file",
                             FS9_RENAME_EXCHANGE), 0);
    cr_assert_eq(st("p1/dir").mode & S_IFMT, (uint32_t)S_IFREG);
    assert_content("p1/dir", "f");
    assert_content("p2/file/inside", "i");
    cr_assert_eq(st("p1").nlink, 2u);
    cr_assert_eq(st("p2").nlink, 3u);
    /* the moved directory's parent moved too: moving p2 under it is a
     * subtree error, under p1 is fine */
    cr_assert_eq(ops->rename(fs, &ctx, "p2", "p2/file/x", 0), -EINVAL);
    cr_assert_eq(ops->rename(fs, &ctx, "p2", "p1/x", 0), 0);
    cr_assert_eq(st("p1").nlink, 3u);
    cr_assert_eq(st("").nlink, 3u);
}

Test(memfs, rename_exchange_refuses_to_swap_a_dir_with_its_descendant)
{
    cr_assert_eq(mkdir_("a", 0755), 0);
    cr_assert_eq(mkdir_("a/b", 0755), 0);
    cr_assert_eq(ops->rename(fs, &ctx, "a", "a/b", FS9_RENAME_EXCHANGE),
                 -EINVAL);
    cr_assert_eq(ops->rename(fs, &ctx, "a/b", "a", FS9_RENAME_EXCHANGE),
                 -EINVAL);
}

Test(memfs, moving_directories_between_parents_updates_parent_nlink)
{
    cr_assert_eq(mkdir_("a", 0755), 0);
    cr_assert_eq(mkdir_("b", 0755), 0);
    cr_assert_eq(mkdir_("a/x", 0755), 0);
    cr_assert_eq(st("a").nlink, 3u);
    cr_assert_eq(ops->rename(fs, &ctx, "a/x", "b/x", 0), 0);
    cr_assert_eq(st("a").nlink, 2u);
    cr_assert_eq(st("b").nlink, 3u);
    cr_assert_eq(ops->rename(fs, &ctx, "b/x", "b/y", 0), 0);
    cr_assert_eq(st("b").nlink, 3u);
    /* replacing an empty dir in another parent: the target's count goes */
    cr_assert_eq(mkdir_("a/z", 0755), 0);
    cr_assert_eq(ops->rename(fs, &ctx, "b/y", "a/z", 0), 0);
    cr_assert_eq(st("a").nlink, 3u);
    cr_assert_eq(st("b").nlink, 2u);
    cr_assert_eq(st("").nlink, 4u);
}

/* A chain of directories deeper than any path, made by renames, is freed
 * by destroy without recursion (the ASan build checks for leaks). */
Test(memfs, destroy_frees_a_very_deep_tree)
{
    cr_assert_eq(mkdir_("a", 0755), 0);
    for (int i = 0; i < 5000; i++) {
        cr_assert_eq(mkdir_("t", 0755), 0);
        cr_assert_eq(ops->rename(fs, &ctx, "a", "t/a", 0), 0);
        cr_assert_eq(ops->rename(fs, &ctx, "t", "a", 0), 0);
    }
    put("a/a/a/f", "leaf");
}

/* ---- xattrs --------------------------------------------------------------- */

Test(memfs, xattr_set_get_size_query_and_erange)
{
    put("f", "x");
    cr_assert_eq(ops->setxattr(fs, &ctx, "f", "user.colour", "blue", 4, 0), 0);
    char buf[16];
    cr_assert_eq(ops->getxattr(fs, "f", "user.colour", NULL, 0), 4);
    cr_assert_eq(ops->getxattr(fs, "f", "user.colour", buf, sizeof buf), 4);
    cr_assert_eq(memcmp(buf, "blue", 4), 0);
    cr_assert_eq(ops->getxattr(fs, "f", "user.colour", buf, 3), -ERANGE);
    cr_assert_eq(ops->getxattr(fs, "f", "user.size", buf, sizeof buf),
                 -ENODATA);
    cr_assert_eq(ops->getxattr(fs, "missing", "user.colour", buf, 4),
                 -ENOENT);
    /* empty values are values */
    cr_assert_eq(ops->setxattr(fs, &ctx, "f", "user.empty", "", 0, 0), 0);
    cr_assert_eq(ops->getxattr(fs, "f", "user.empty", NULL, 0), 0);
    /* replace the value */
    cr_assert_eq(ops->setxattr(fs, &ctx, "f", "user.colour", "red", 3, 0), 0);
    cr_assert_eq(ops->getxattr(fs, "f", "user.colour", buf, sizeof buf), 3);
}

/* What a changed file must lose, as on every Linux filesystem: with
 * FUSE_HANDLE_KILLPRIV_V2 the kernel leaves it to the filesystem. */
Test(memfs, write_truncate_and_chown_drop_file_capabilities)
{
    static const char cap[] = "0123456789abcdefghij"; /* opaque here */
    put("f", "x");
    const char *what[] = {"write", "truncate", "chown", "open O_TRUNC"};
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(ops->setxattr(fs, &ctx, "f", "security.capability", cap,
                                   20, 0), 0);
        cr_assert_eq(ops->setxattr(fs, &ctx, "f", "user.keep", "1", 1, 0),
                     0);
        void *h;
        switch (i) {
        case 0:
            h = openh("f", FS9_OPEN_WRITE, 0);
            cr_assert_eq(ops->write(fs, h, "y", 1, 1), 1);
            cr_assert_eq(ops->close(fs, h, 0), 0);
            break;
        case 1:
            cr_assert_eq(wstat_("f", NULL, (struct fs9_wstat){
                                               .valid = FS9_WSTAT_SIZE,
                                               .size = 1}),
                         0);
            break;
        case 2:
            cr_assert_eq(wstat_("f", NULL, (struct fs9_wstat){
                                               .valid = FS9_WSTAT_UID,
                                               .uid = 7}),
                         0);
            break;
        default:
            h = openh("f", FS9_OPEN_WRITE | FS9_OPEN_TRUNC, 0);
            cr_assert_eq(ops->close(fs, h, 0), 0);
            break;
        }
        cr_assert_eq(ops->getxattr(fs, "f", "security.capability", NULL, 0),
                     -ENODATA, "%s kept security.capability", what[i]);
        cr_assert_eq(ops->getxattr(fs, "f", "user.keep", NULL, 0), 1,
                     "%s dropped another attribute", what[i]);
    }
    /* a change of mode or times is not a change of the program */
    cr_assert_eq(ops->setxattr(fs, &ctx, "f", "security.capability", cap, 20,
                               0), 0);
    cr_assert_eq(wstat_("f", NULL, (struct fs9_wstat){.valid = FS9_WSTAT_MODE,
                                                       .mode = 0755}),
                 0);
    cr_assert_eq(ops->getxattr(fs, "f", "security.capability", NULL, 0), 20);
}

Test(memfs, xattr_create_and_replace_flags)
{
    put("f", "x");
    cr_assert_eq(ops->setxattr(fs, &ctx, "f", "user.a", "1", 1,
                               FS9_XATTR_REPLACE), -ENODATA);
    cr_assert_eq(ops->setxattr(fs, &ctx, "f", "user.a", "1", 1,
                               FS9_XATTR_CREATE), 0);
    cr_assert_eq(ops->setxattr(fs, &ctx, "f", "user.a", "2", 1,
                               FS9_XATTR_CREATE), -EEXIST);
    cr_assert_eq(ops->setxattr(fs, &ctx, "f", "user.a", "3", 1,
                               FS9_XATTR_REPLACE), 0);
    char c;
    cr_assert_eq(ops->getxattr(fs, "f", "user.a", &c, 1), 1);
    cr_assert_eq(c, '3');
}

Test(memfs, xattr_list_size_query_erange_and_remove)
{
    put("f", "x");
    cr_assert_eq(ops->listxattr(fs, "f", NULL, 0), 0);
    ops->setxattr(fs, &ctx, "f", "user.a", "1", 1, 0);
    ops->setxattr(fs, &ctx, "f", "trusted.bb", "2", 1, 0);
    ops->setxattr(fs, &ctx, "f", "security.ccc", "3", 1, 0);
    const char want[] = "user.a\0trusted.bb\0security.ccc";
    ssize_t len = (ssize_t)sizeof want;
    cr_assert_eq(ops->listxattr(fs, "f", NULL, 0), len);
    char buf[64];
    cr_assert_eq(ops->listxattr(fs, "f", buf, (size_t)len - 1), -ERANGE);
    cr_assert_eq(ops->listxattr(fs, "f", buf, sizeof buf), len);
    cr_assert_eq(memcmp(buf, want, (size_t)len), 0);
    cr_assert_eq(ops->removexattr(fs, &ctx, "f", "trusted.bb"), 0);
    cr_assert_eq(ops->removexattr(fs, &ctx, "f", "trusted.bb"), -ENODATA);
    cr_assert_eq(ops->getxattr(fs, "f", "trusted.bb", NULL, 0), -ENODATA);
    cr_assert_eq(ops->listxattr(fs, "f", NULL, 0),
                 (ssize_t)sizeof "user.a\0security.ccc");
}

Test(memfs, xattrs_work_on_directories_symlinks_and_the_root)
{
    cr_assert_eq(mkdir_("d", 0755), 0);
    struct fs9_attr a;
    cr_assert_eq(ops->symlink(fs, &ctx, "t", "l", &a), 0);
    const char *paths[] = {"d", "l", ""};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(ops->setxattr(fs, &ctx, paths[i], "user.k", "v", 1, 0),
                     0, "%s", paths[i]);
        cr_assert_eq(ops->getxattr(fs, paths[i], "user.k", NULL, 0), 1);
    }
}

Test(memfs, xattr_names_are_checked)
{
    put("f", "x");
    cr_assert_eq(ops->setxattr(fs, &ctx, "f", "os2.foo", "1", 1, 0),
                 -EOPNOTSUPP);
    cr_assert_eq(ops->setxattr(fs, &ctx, "f", "system.posix_acl_access",
                               "1", 1, 0), -EOPNOTSUPP);
    cr_assert_eq(ops->getxattr(fs, "f", "system.posix_acl_default", NULL, 0),
                 -EOPNOTSUPP);
    cr_assert_eq(ops->setxattr(fs, &ctx, "f", "user.", "1", 1, 0), -EINVAL);
    cr_assert_eq(ops->setxattr(fs, &ctx, "f", "", "1", 1, 0), -ERANGE);
    char name[300] = "user.";
    memset(name + 5, 'n', 250);
    name[255] = '\0';
    cr_assert_eq(ops->setxattr(fs, &ctx, "f", name, "1", 1, 0), 0);
    name[255] = 'n';
    name[256] = '\0';
    cr_assert_eq(ops->setxattr(fs, &ctx, "f", name, "1", 1, 0), -ERANGE);
    cr_assert_eq(ops->getxattr(fs, "f", name, NULL, 0), -ERANGE);
}

Test(memfs, xattr_values_over_64k_are_e2big)
{
    put("f", "x");
    char *big = calloc(1, 65537);
    cr_assert_eq(ops->setxattr(fs, &ctx, "f", "user.big", big, 65536, 0), 0);
    cr_assert_eq(ops->getxattr(fs, "f", "user.big", NULL, 0), 65536);
    cr_assert_eq(ops->setxattr(fs, &ctx, "f", "user.big", big, 65537, 0),
                 -E2BIG);
    cr_assert_eq(ops->getxattr(fs, "f", "user.big", NULL, 0), 65536);
    free(big);
}

/* ---- statfs and limits ---------------------------------------------------- */

Test(memfs, statfs_reports_limits_and_usage)
{
    teardown();
    const char *kv[] = {"size=1m", "nr_inodes=100", NULL};
    setup_with(kv);
    struct fs9_statfs s;
    cr_assert_eq(ops->statfs(fs, "", &s), 0);
    cr_assert_eq(s.bsize, 4096u);
    cr_assert_eq(s.blocks, 256u);
    cr_assert_eq(s.bfree, 256u);
    cr_assert_eq(s.bavail, 256u);
    cr_assert_eq(s.files, 100u);
    cr_assert_eq(s.ffree, 99u, "the root is an inode");
    cr_assert_eq(s.namemax, 255u);
    char buf[10000];
    memset(buf, 1, sizeof buf);
    void *h = openh("f", FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0644);
    ops->write(fs, h, buf, sizeof buf, 0);
    ops->close(fs, h, 0);
    cr_assert_eq(ops->statfs(fs, "f", &s), 0);
    cr_assert_eq(s.bfree, 253u);
    cr_assert_eq(s.ffree, 98u);
    cr_assert_eq(ops->statfs(fs, "missing", &s), -ENOENT);
}

Test(memfs, statfs_unlimited_inodes_reports_plenty_free)
{
    struct fs9_statfs s;
    cr_assert_eq(ops->statfs(fs, "", &s), 0);
    cr_assert_gt(s.ffree, UINT64_C(1000000));
    cr_assert_geq(s.files, s.ffree);
}

Test(memfs, nr_inodes_limit_gives_enospc_and_frees_on_remove)
{
    teardown();
    const char *kv[] = {"nr_inodes=4", NULL};
    setup_with(kv);
    put("a", "");
    cr_assert_eq(mkdir_("b", 0755), 0);
    struct fs9_attr at;
    cr_assert_eq(ops->symlink(fs, &ctx, "t", "c", &at), 0);
    cr_assert_eq(open_("d", FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0644, NULL),
                 -ENOSPC);
    cr_assert_eq(mkdir_("d", 0755), -ENOSPC);
    cr_assert_eq(ops->mknod(fs, &ctx, "d", S_IFIFO | 0644, 0, &at), -ENOSPC);
    /* hard links are not new inodes */
    cr_assert_eq(ops->link(fs, &ctx, "a", "a2", &at), 0);
    cr_assert_eq(ops->remove(fs, &ctx, "c", 0), 0);
    put("d", "");
}

Test(memfs, writes_past_the_size_limit_are_short_then_enospc)
{
    teardown();
    const char *kv[] = {"size=64k", NULL};
    setup_with(kv);
    char *buf = malloc(100000);
    for (int i = 0; i < 100000; i++)
        buf[i] = (char)(i * 7);
    void *h = openh("f", FS9_OPEN_READ | FS9_OPEN_WRITE | FS9_OPEN_CREATE,
                    0644);
    cr_assert_eq(ops->write(fs, h, buf, 100000, 0), 65536,
                 "what fits is written");
    cr_assert_eq(ops->write(fs, h, buf + 65536, 100000 - 65536, 65536),
                 -ENOSPC);
    struct fs9_attr a;
    ops->stat(fs, &ctx, NULL, h, &a);
    cr_assert_eq(a.size, 65536u);
    /* rewriting allocated pages needs no space */
    cr_assert_eq(ops->write(fs, h, buf, 65536, 0), 65536);
    char *rb = malloc(65536);
    cr_assert_eq(ops->read(fs, h, rb, 65536, 0), 65536);
    cr_assert_eq(memcmp(rb, buf, 65536), 0);
    /* other files cannot grow either; empty creation still works */
    void *g = openh("g", FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0644);
    cr_assert_eq(ops->write(fs, g, "x", 1, 0), -ENOSPC);
    /* holes cost nothing: a sparse extension is fine */
    struct fs9_wstat w = {.valid = FS9_WSTAT_SIZE, .size = UINT64_C(1) << 40};
    cr_assert_eq(wstat_(NULL, g, w), 0);
    ops->close(fs, g, 0);
    /* freeing space lets writes through again */
    w.size = 4096;
    cr_assert_eq(wstat_(NULL, h, w), 0);
    cr_assert_eq(ops->write(fs, h, buf, 8192, 4096), 8192);
    ops->close(fs, h, 0);
    cr_assert_eq(ops->remove(fs, &ctx, "f", 0), 0);
    cr_assert_eq(used_pages(), 0u);
    free(buf);
    free(rb);
}

Test(memfs, unaligned_write_into_the_last_free_page_is_counted_once)
{
    teardown();
    const char *kv[] = {"size=8k", NULL};
    setup_with(kv);
    void *h = openh("f", FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0644);
    cr_assert_eq(ops->write(fs, h, "ab", 2, 4095), 2); /* spans 2 pages */
    cr_assert_eq(used_pages(), 2u);
    cr_assert_eq(ops->write(fs, h, "c", 1, 8192), -ENOSPC);
    ops->close(fs, h, 0);
}

/* ---- fallocate ------------------------------------------------------------ */

Test(memfs, fallocate_allocates_and_extends)
{
    void *h = openh("f", FS9_OPEN_READ | FS9_OPEN_WRITE | FS9_OPEN_CREATE,
                    0644);
    cr_assert_eq(ops->fallocate(fs, h, 0, 1000, 10000), 0);
    struct fs9_attr a;
    ops->stat(fs, &ctx, NULL, h, &a);
    cr_assert_eq(a.size, 11000u);
    cr_assert_eq(a.blocks, 24u, "pages 0..2 allocated");
    char buf[11000];
    cr_assert_eq(ops->read(fs, h, buf, sizeof buf, 0), 11000);
    for (int i = 0; i < 11000; i++)
        cr_assert_eq(buf[i], 0);
    /* allocating what exists costs nothing more */
    cr_assert_eq(ops->fallocate(fs, h, 0, 0, 4096), 0);
    ops->stat(fs, &ctx, NULL, h, &a);
    cr_assert_eq(a.blocks, 24u);
    cr_assert_eq(a.size, 11000u, "never shrinks");
    ops->close(fs, h, 0);
}

Test(memfs, fallocate_keep_size_allocates_past_eof)
{
    void *h = openh("f", FS9_OPEN_READ | FS9_OPEN_WRITE | FS9_OPEN_CREATE,
                    0644);
    ops->write(fs, h, "abc", 3, 0);
    cr_assert_eq(ops->fallocate(fs, h, FALLOC_FL_KEEP_SIZE, 0, 65536), 0);
    struct fs9_attr a;
    ops->stat(fs, &ctx, NULL, h, &a);
    cr_assert_eq(a.size, 3u);
    cr_assert_eq(a.blocks, 128u);
    /* extending over preallocated pages reads zeros, and truncate frees */
    struct fs9_wstat w = {.valid = FS9_WSTAT_SIZE, .size = 10000};
    cr_assert_eq(wstat_(NULL, h, w), 0);
    char buf[10000];
    cr_assert_eq(ops->read(fs, h, buf, sizeof buf, 0), 10000);
    cr_assert_eq(memcmp(buf, "abc", 3), 0);
    for (int i = 3; i < 10000; i++)
        cr_assert_eq(buf[i], 0);
    w.size = 1;
    cr_assert_eq(wstat_(NULL, h, w), 0);
    ops->stat(fs, &ctx, NULL, h, &a);
    cr_assert_eq(a.blocks, 8u);
    ops->close(fs, h, 0);
}

Test(memfs, fallocate_punch_hole_frees_pages_and_zeroes_edges)
{
    char buf[5 * 4096];
    memset(buf, 'X', sizeof buf);
    void *h = openh("f", FS9_OPEN_READ | FS9_OPEN_WRITE | FS9_OPEN_CREATE,
                    0644);
    ops->write(fs, h, buf, sizeof buf, 0);
    cr_assert_eq(ops->fallocate(fs, h,
                                FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                100, 3 * 4096), 0);
    struct fs9_attr a;
    ops->stat(fs, &ctx, NULL, h, &a);
    cr_assert_eq(a.size, sizeof buf);
    cr_assert_eq(a.blocks, 3u * 8, "pages 1 and 2 freed, 0 and 3 partial");
    char rb[5 * 4096];
    cr_assert_eq(ops->read(fs, h, rb, sizeof rb, 0), (ssize_t)sizeof rb);
    for (int i = 0; i < (int)sizeof rb; i++)
        cr_assert_eq(rb[i], (i >= 100 && i < 100 + 3 * 4096) ? 0 : 'X',
                     "byte %d", i);
    /* punching a hole past EOF or in a hole is fine */
    cr_assert_eq(ops->fallocate(fs, h,
                                FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                1 << 20, 1 << 20), 0);
    ops->close(fs, h, 0);
}

Test(memfs, fallocate_zero_range_zeroes_and_allocates)
{
    char buf[3 * 4096];
    memset(buf, 'X', sizeof buf);
    void *h = openh("f", FS9_OPEN_READ | FS9_OPEN_WRITE | FS9_OPEN_CREATE,
                    0644);
    ops->write(fs, h, buf, sizeof buf, 0);
    cr_assert_eq(ops->fallocate(fs, h, FALLOC_FL_ZERO_RANGE, 10, 5000), 0);
    char rb[3 * 4096];
    cr_assert_eq(ops->read(fs, h, rb, sizeof rb, 0), (ssize_t)sizeof rb);
    for (int i = 0; i < (int)sizeof rb; i++)
        cr_assert_eq(rb[i], (i >= 10 && i < 5010) ? 0 : 'X', "byte %d", i);
    cr_assert_eq(ops->fallocate(fs, h, FALLOC_FL_ZERO_RANGE, 12000, 4096), 0);
    struct fs9_attr a;
    ops->stat(fs, &ctx, NULL, h, &a);
    cr_assert_eq(a.size, 16096u);
    ops->close(fs, h, 0);
}

Test(memfs, fallocate_rejects_unsupported_modes_and_bad_ranges)
{
    void *h = openh("f", FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0644);
    cr_assert_eq(ops->fallocate(fs, h, FALLOC_FL_PUNCH_HOLE, 0, 4096),
                 -EOPNOTSUPP);
    cr_assert_eq(ops->fallocate(fs, h, FALLOC_FL_COLLAPSE_RANGE, 0, 4096),
                 -EOPNOTSUPP);
    cr_assert_eq(ops->fallocate(fs, h, 0x20 /* INSERT_RANGE */, 0, 4096),
                 -EOPNOTSUPP);
    cr_assert_eq(ops->fallocate(fs, h, 0, 0, 0), -EINVAL);
    cr_assert_eq(ops->fallocate(fs, h, 0, (uint64_t)INT64_MAX, 2), -EFBIG);
    ops->close(fs, h, 0);
}

Test(memfs, fallocate_past_the_limit_is_enospc_and_allocates_nothing)
{
    teardown();
    const char *kv[] = {"size=64k", NULL};
    setup_with(kv);
    void *h = openh("f", FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0644);
    cr_assert_eq(ops->fallocate(fs, h, 0, 0, 65537), -ENOSPC);
    struct fs9_attr a;
    ops->stat(fs, &ctx, NULL, h, &a);
    cr_assert_eq(a.size, 0u);
    cr_assert_eq(a.blocks, 0u);
    cr_assert_eq(used_pages(), 0u);
    cr_assert_eq(ops->fallocate(fs, h, 0, 0, 65536), 0);
    cr_assert_eq(used_pages(), 16u);
    cr_assert_eq(ops->fallocate(fs, h, FALLOC_FL_KEEP_SIZE, 0, 1 << 30),
                 -ENOSPC);
    ops->close(fs, h, 0);
}

/* ---- big files ------------------------------------------------------------ */

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

static void fill_block(unsigned char *buf, size_t n, uint64_t seed)
{
    uint64_t x = seed * UINT64_C(0x9E3779B97F4A7C15) + 1;
    for (size_t i = 0; i < n; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(buf + i, &x, n - i < 8 ? n - i : 8);
    }
}

static void big_round_trip(size_t wblock, size_t rblock)
{
    const uint64_t total = UINT64_C(100) << 20;
    unsigned char *buf = malloc(wblock > rblock ? wblock : rblock);
    void *h = openh("big", FS9_OPEN_READ | FS9_OPEN_WRITE | FS9_OPEN_CREATE,
                    0644);
    uint64_t wsum = UINT64_C(0xcbf29ce484222325);
    for (uint64_t off = 0, i = 0; off < total; off += wblock, i++) {
        fill_block(buf, wblock, i);
        wsum = fnv1a(wsum, buf, wblock);
        cr_assert_eq(ops->write(fs, h, buf, wblock, off), (ssize_t)wblock);
    }
    struct fs9_attr a;
    ops->stat(fs, &ctx, NULL, h, &a);
    cr_assert_eq(a.size, total);
    cr_assert_eq(a.blocks, total / 512);
    uint64_t rsum = UINT64_C(0xcbf29ce484222325);
    for (uint64_t off = 0; off < total; off += rblock) {
        cr_assert_eq(ops->read(fs, h, buf, rblock, off), (ssize_t)rblock);
        rsum = fnv1a(rsum, buf, rblock);
    }
    cr_assert_eq(rsum, wsum, "checksum of 100 MiB read back");
    ops->close(fs, h, 0);
    cr_assert_eq(ops->remove(fs, &ctx, "big", 0), 0);
    cr_assert_eq(used_pages(), 0u);
    free(buf);
}

Test(memfs, file_of_100_mib_round_trips_in_1_mib_blocks)
{
    big_round_trip(1 << 20, 1 << 20);
}

Test(memfs, file_of_100_mib_round_trips_in_128_kib_blocks)
{
    big_round_trip(128 << 10, 1 << 20);
}

/* ---- concurrency ---------------------------------------------------------- */

enum { CT_THREADS = 6, CT_ITER = 1500, CT_DIRS = 4 };

struct ct_arg {
    int id;
    int live; /* files this thread left in place */
    int errors;
};

static void ct_name(char *p, size_t n, int dir, int tid, int i, char tag)
{
    snprintf(p, n, "shared%d/%c-%d-%d", dir, tag, tid, i);
}

static void *ct_worker(void *arg)
{
    struct ct_arg *a = arg;
    struct fs9_ctx c = test_ctx(1000, 1000);
    char p[64], q[64], body[64], rb[64];
    for (int i = 0; i < CT_ITER; i++) {
        int d1 = (a->id + i) % CT_DIRS, d2 = (a->id + 2 * i + 1) % CT_DIRS;
        ct_name(p, sizeof p, d1, a->id, i, 't');
        ct_name(q, sizeof q, d2, a->id, i, 'f');
        int blen = snprintf(body, sizeof body, "thread %d iteration %d", a->id,
                            i);
        struct fs9_open_out out;
        memset(&out, 0, sizeof out);
        if (ops->open(fs, &c, p,
                      FS9_OPEN_READ | FS9_OPEN_WRITE | FS9_OPEN_CREATE |
                          FS9_OPEN_EXCL,
                      0644, &out) != 0) {
            a->errors++;
            continue;
        }
        if (ops->write(fs, out.handle, body, (size_t)blen, 0) != blen)
            a->errors++;
        if (ops->rename(fs, &c, p, q, 0) != 0)
            a->errors++;
        /* still readable through the handle after the rename */
        if (ops->read(fs, out.handle, rb, sizeof rb, 0) != blen ||
            memcmp(rb, body, (size_t)blen) != 0)
            a->errors++;
        ops->close(fs, out.handle, 0);
        if (i % 3 == 0) {
            if (ops->remove(fs, &c, q, 0) != 0)
                a->errors++;
        } else {
            a->live++;
        }
        if (i % 50 == 0) {
            /* directories come and go, and move between shared parents */
            snprintf(p, sizeof p, "shared%d/dir-%d-%d", d1, a->id, i);
            snprintf(q, sizeof q, "shared%d/dir-%d-%d", d2, a->id, i);
            if (mkdir_(p, 0755) != 0 || ops->rename(fs, &c, p, q, 0) != 0 ||
                ops->remove(fs, &c, q, FS9_REMOVE_DIR) != 0)
                a->errors++;
        }
    }
    return NULL;
}

/* The lister runs beside the workers, so it counts problems instead of
 * asserting (criterion's asserts belong to the test's own thread). */
struct ct_lister_arg {
    int stop;
    int errors;
    int listings;
};

struct ct_seen {
    uint64_t last;
    size_t this_call;
    int n, errors;
    char names[64][64];
};

static int ct_collect(void *arg, const struct fs9_dirent *e)
{
    struct ct_seen *s = arg;
    if (s->this_call == 16)
        return 1;
    if (e->cookie <= s->last || e->full_attr != 1 || e->attr.ino == 0)
        s->errors++;
    /* cookies only grow, so a name seen twice would be a duplicate: check
     * against the recent ones */
    for (int i = 0; i < s->n && i < 64; i++)
        if (strcmp(s->names[i], e->name) == 0)
            s->errors++;
    snprintf(s->names[s->n % 64], sizeof s->names[0], "%s", e->name);
    s->n++;
    s->this_call++;
    s->last = e->cookie;
    return 0;
}

static void *ct_lister(void *arg)
{
    struct ct_lister_arg *la = arg;
    struct fs9_ctx c = test_ctx(1000, 1000);
    struct ct_seen *s = malloc(sizeof *s);
    while (!__atomic_load_n(&la->stop, __ATOMIC_ACQUIRE)) {
        for (int d = 0; d < CT_DIRS; d++) {
            char p[16];
            snprintf(p, sizeof p, "shared%d", d);
            struct fs9_open_out out;
            if (ops->open(fs, &c, p, FS9_OPEN_READ | FS9_OPEN_DIRECTORY, 0,
                          &out) != 0) {
                la->errors++;
                continue;
            }
            memset(s, 0, sizeof *s);
            for (;;) {
                int before = s->n;
                s->this_call = 0;
                if (ops->readdir(fs, out.handle, s->last, 0, ct_collect, s))
                    la->errors++;
                if (s->n == before)
                    break;
            }
            la->errors += s->errors;
            la->listings++;
            ops->close(fs, out.handle, 0);
        }
    }
    free(s);
    return NULL;
}

Test(memfs, concurrent_create_write_rename_remove_stays_consistent)
{
    for (int d = 0; d < CT_DIRS; d++) {
        char p[16];
        snprintf(p, sizeof p, "shared%d", d);
        cr_assert_eq(mkdir_(p, 0755), 0);
    }
    pthread_t t[CT_THREADS], lister;
    struct ct_arg args[CT_THREADS];
    struct ct_lister_arg la = {0};
    pthread_create(&lister, NULL, ct_lister, &la);
    for (int i = 0; i < CT_THREADS; i++) {
        args[i] = (struct ct_arg){.id = i};
        pthread_create(&t[i], NULL, ct_worker, &args[i]);
    }
    int live = 0;
    for (int i = 0; i < CT_THREADS; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(args[i].errors, 0, "thread %d had %d errors", i,
                     args[i].errors);
        live += args[i].live;
    }
    __atomic_store_n(&la.stop, 1, __ATOMIC_RELEASE);
    pthread_join(lister, NULL);
    cr_assert_eq(la.errors, 0, "lister saw %d problems", la.errors);
    cr_assert_gt(la.listings, 0);

    /* every surviving file is where its thread put it, with its content */
    int listed = 0;
    for (int d = 0; d < CT_DIRS; d++) {
        char p[16];
        snprintf(p, sizeof p, "shared%d", d);
        struct listing l;
        list_dir(p, 0, &l);
        listed += (int)l.n;
        struct fs9_attr da = st(p);
        cr_assert_eq(da.nlink, 2u, "no subdirectories left in %s", p);
        for (size_t i = 0; i < l.n; i++) {
            int tid, it;
            cr_assert_eq(sscanf(l.names[i], "f-%d-%d", &tid, &it), 2,
                         "unexpected %s", l.names[i]);
            cr_assert_eq((tid + 2 * it + 1) % CT_DIRS, d);
            cr_assert_neq(it % 3, 0);
            char path[64], want[64];
            snprintf(path, sizeof path, "%s/%s", p, l.names[i]);
            snprintf(want, sizeof want, "thread %d iteration %d", tid, it);
            assert_content(path, want);
        }
        listing_free(&l);
    }
    cr_assert_eq(listed, live);
    cr_assert_eq(used_pages(), (uint64_t)live, "one page per live file");
    struct fs9_statfs s;
    ops->statfs(fs, "", &s);
    cr_assert_eq(s.files - s.ffree, (uint64_t)(1 + CT_DIRS + live));
}

/* Reads of one file run while another thread rewrites it; each read sees
 * whole pages of one generation or the other, never torn garbage. */
static void *rw_writer(void *arg)
{
    void *h = arg;
    unsigned char page[4096];
    for (int gen = 0; gen < 2000; gen++) {
        memset(page, gen & 0xff, sizeof page);
        ops->write(fs, h, page, sizeof page, (uint64_t)(gen % 16) * 4096);
    }
    return NULL;
}

Test(memfs, concurrent_reads_and_writes_on_one_file_see_whole_pages)
{
    void *h = openh("f", FS9_OPEN_READ | FS9_OPEN_WRITE | FS9_OPEN_CREATE,
                    0644);
    unsigned char zero[16 * 4096];
    memset(zero, 0, sizeof zero);
    ops->write(fs, h, zero, sizeof zero, 0);
    pthread_t w;
    pthread_create(&w, NULL, rw_writer, h);
    unsigned char page[4096];
    for (int i = 0; i < 4000; i++) {
        cr_assert_eq(ops->read(fs, h, page, sizeof page,
                               (uint64_t)(i % 16) * 4096), 4096);
        for (int b = 1; b < 4096; b++)
            cr_assert_eq(page[b], page[0]);
    }
    pthread_join(w, NULL);
    ops->close(fs, h, 0);
}
