/*
 * test_localfs — the localfs provider through its ABI, on a scratch
 * directory under /tmp:
 *
 *   /tmp/fs9-localfs-XXXXXX/root      the provider's root
 *   /tmp/fs9-localfs-XXXXXX/outside   must never change: "secret" with an
 *                                     xattr, and nothing else
 *
 * Every escape test checks the host afterwards (assert_outside_untouched).
 * Tests that need root (setfsuid, chown, device nodes) skip otherwise and
 * say so; tests that need an unprivileged user run that part in a child
 * that dropped to uid/gid 65534.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "providers/providers.h"
#include "test_host.h"

static const struct fs9_provider_ops *const P = &fs9_localfs_ops;
static struct test_host th;
static struct fs9_ctx C; /* the test process itself */
static void *fs;         /* the instance on `root` */
static char base[128], root[160], outside[160]; /* short: see H() */

#define SECRET "top secret\n"

/* ------------------------------------------------------------------------
 * Host-side helpers.
 * ---------------------------------------------------------------------- */

/** `root`/rel in a rotating static buffer (several may be live at once). */
static const char *H(const char *rel)
{
    static char bufs[8][PATH_MAX];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, PATH_MAX, "%s/%s", root, rel);
    return b;
}

static void host_write(const char *path, const char *data)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
    cr_assert_eq(write(fd, data, strlen(data)), (ssize_t)strlen(data));
    close(fd);
}

/** Reads `path` into a static buffer (NUL-terminated), or NULL. */
static const char *host_read(const char *path)
{
    static char buf[4096];
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0)
        return NULL;
    buf[n] = '\0';
    return buf;
}

static bool host_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static struct stat host_lstat(const char *path)
{
    struct stat st;
    cr_assert_eq(lstat(path, &st), 0, "lstat %s: %s", path, strerror(errno));
    return st;
}

static int rm_chmod_cb(const char *p, const struct stat *st, int flag,
                       struct FTW *f)
{
    (void)f;
    if (flag == FTW_D || flag == FTW_DNR)
        chmod(p, (st->st_mode & 07777) | 0700);
    return 0;
}

static int rm_cb(const char *p, const struct stat *st, int flag,
                 struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    remove(p);
    return 0;
}

static void rm_rf(const char *path)
{
    nftw(path, rm_chmod_cb, 16, FTW_PHYS);
    nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/** Names in a host directory, sorted, joined by ',' (static buffer). */
static const char *host_listing(const char *dir)
{
    static char out[4096];
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        const char *nm = names[i]->d_name;
        if (strcmp(nm, ".") && strcmp(nm, "..")) {
            if (out[0])
                strcat(out, ",");
            strncat(out, nm, sizeof out - strlen(out) - 2);
        }
        free(names[i]);
    }
    if (n >= 0)
        free(names);
    return out;
}

/** Nothing outside the root changed: the scratch base holds exactly root
 *  and outside, outside holds exactly the untouched secret. */
static void assert_outside_untouched(void)
{
    char path[PATH_MAX + 16], val[64];

    cr_assert_str_eq(host_listing(base), "outside,root");
    cr_assert_str_eq(host_listing(outside), "secret");
    snprintf(path, sizeof path, "%s/secret", outside);
    struct stat st = host_lstat(path);
    cr_assert(S_ISREG(st.st_mode));
    cr_assert_eq(st.st_mode & 07777, 0644);
    cr_assert_eq(st.st_nlink, 1);
    cr_assert_eq(st.st_uid, geteuid());
    const char *data = host_read(path);
    cr_assert_not_null(data);
    cr_assert_str_eq(data, SECRET);
    ssize_t n = lgetxattr(path, "user.secret", val, sizeof val);
    cr_assert_eq(n, 1);
    cr_assert_eq(val[0], 's');
    cr_assert_eq(lgetxattr(path, "user.fs9", val, sizeof val), -1);
    st = host_lstat(outside);
    cr_assert_eq(st.st_mode & 07777, 0755);
}

/** Entries in /proc/self/fd, not counting the one used to list them. */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    cr_assert_not_null(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3; /* ".", "..", and the DIR's own descriptor */
}

static void *instance(const char *dir, const char *readonly, int *rc,
                      char *err, size_t errlen)
{
    struct fs9_config_item items[2];
    struct fs9_config cfg = {.items = items, .count = 0, .mount_path = "/l"};
    void *self = NULL;

    if (dir)
        items[cfg.count++] = (struct fs9_config_item){"root", dir};
    if (readonly)
        items[cfg.count++] = (struct fs9_config_item){"readonly", readonly};
    *rc = P->create(&th.host, &cfg, &self, err, errlen);
    return self;
}

static void setup(void)
{
    char path[PATH_MAX + 16];
    int rc;

    strcpy(base, "/tmp/fs9-localfs-XXXXXX");
    cr_assert_not_null(mkdtemp(base));
    chmod(base, 0755);
    snprintf(root, sizeof root, "%s/root", base);
    snprintf(outside, sizeof outside, "%s/outside", base);
    cr_assert_eq(mkdir(root, 0755), 0);
    cr_assert_eq(mkdir(outside, 0755), 0);
    chmod(root, 0755);
    chmod(outside, 0755);
    snprintf(path, sizeof path, "%s/secret", outside);
    host_write(path, SECRET);
    chmod(path, 0644);
    cr_assert_eq(lsetxattr(path, "user.secret", "s", 1, 0), 0,
                 "the scratch filesystem must support user xattrs: %s",
                 strerror(errno));
    test_host_init(&th);
    C = test_ctx(geteuid(), getegid());
    char err[256] = "";
    fs = instance(root, NULL, &rc, err, sizeof err);
    cr_assert_eq(rc, 0, "create: %s", err);
    cr_assert_not_null(fs);
}

static void teardown(void)
{
    if (fs)
        P->destroy(fs);
    fs = NULL;
    if (base[0])
        rm_rf(base);
    base[0] = '\0';
}

/** Skips the test when not root.  Criterion runs no .fini for a skipped
 *  test, so the scratch directory goes first. */
#define SKIP_UNLESS_ROOT(why)          \
    do {                               \
        if (geteuid() != 0) {          \
            teardown();                \
            cr_skip_test("%s", why);   \
        }                              \
    } while (0)

TestSuite(localfs, .init = setup, .fini = teardown);

/* ------------------------------------------------------------------------
 * Provider-side helpers.
 * ---------------------------------------------------------------------- */

static int popen_(const char *path, uint32_t flags, uint32_t mode,
                  struct fs9_open_out *out)
{
    memset(out, 0xA5, sizeof *out);
    return P->open(fs, &C, path, flags, mode, out);
}

/** Creates `path` (regular, 0644) with `data` through the provider. */
static void pcreate(const char *path, const char *data)
{
    struct fs9_open_out o;
    int r = popen_(path, FS9_OPEN_WRITE | FS9_OPEN_CREATE | FS9_OPEN_EXCL,
                   0644, &o);
    cr_assert_eq(r, 0, "create %s: %s", path, strerror(-r));
    if (data && *data)
        cr_assert_eq(P->write(fs, o.handle, data, strlen(data), 0),
                     (ssize_t)strlen(data));
    cr_assert_eq(P->close(fs, o.handle, 0), 0);
}

static int pmkdir(const char *path, uint32_t mode)
{
    struct fs9_open_out o;
    return popen_(path,
                  FS9_OPEN_CREATE | FS9_OPEN_EXCL | FS9_OPEN_DIRECTORY |
                      FS9_OPEN_NOHANDLE,
                  S_IFDIR | mode, &o);
}

static int pstat(const char *path, struct fs9_attr *a)
{
    struct fs9_attr tmp;
    return P->stat(fs, &C, path, NULL, a ? a : &tmp);
}

static int pwstat(const char *path, void *h, struct fs9_wstat *w,
                  struct fs9_attr *a)
{
    struct fs9_attr tmp;
    return P->wstat(fs, &C, path, h, w, a ? a : &tmp);
}

/** What a readdir collected: names, cookies, attributes. */
struct listing {
    int limit; /* emit returns 1 when `count` reaches it; 0: never */
    int count;
    int cap;
    char **names;
    uint64_t *cookies;
    struct fs9_attr *attrs;
    uint32_t *full;
};

static int collect(void *arg, const struct fs9_dirent *e)
{
    struct listing *l = arg;
    if (l->limit && l->count >= l->limit)
        return 1;
    if (l->count == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->names = realloc(l->names, l->cap * sizeof *l->names);
        l->cookies = realloc(l->cookies, l->cap * sizeof *l->cookies);
        l->attrs = realloc(l->attrs, l->cap * sizeof *l->attrs);
        l->full = realloc(l->full, l->cap * sizeof *l->full);
    }
    l->names[l->count] = strdup(e->name);
    l->cookies[l->count] = e->cookie;
    l->attrs[l->count] = e->attr;
    l->full[l->count] = e->full_attr;
    l->count++;
    return 0;
}

static void listing_free(struct listing *l)
{
    for (int i = 0; i < l->count; i++)
        free(l->names[i]);
    free(l->names);
    free(l->cookies);
    free(l->attrs);
    free(l->full);
    memset(l, 0, sizeof *l);
}

static int listing_find(const struct listing *l, const char *name)
{
    for (int i = 0; i < l->count; i++)
        if (strcmp(l->names[i], name) == 0)
            return i;
    return -1;
}

/** Lists directory `path` completely in one call. */
static int plist(const char *path, uint32_t flags, struct listing *l)
{
    struct fs9_open_out o;
    memset(l, 0, sizeof *l);
    int r = popen_(path, FS9_OPEN_READ | FS9_OPEN_DIRECTORY, 0, &o);
    if (r < 0)
        return r;
    r = P->readdir(fs, o.handle, 0, flags, collect, l);
    cr_assert_eq(P->close(fs, o.handle, 0), 0);
    return r;
}

static void assert_attr_is_host(const struct fs9_attr *a, const char *hpath)
{
    struct stat st = host_lstat(hpath);
    cr_assert_eq(a->ino, (uint64_t)st.st_ino, "%s: ino", hpath);
    cr_assert_eq(a->mode, (uint32_t)st.st_mode, "%s: mode", hpath);
    cr_assert_eq(a->nlink, (uint32_t)st.st_nlink, "%s: nlink", hpath);
    cr_assert_eq(a->uid, (uint32_t)st.st_uid);
    cr_assert_eq(a->gid, (uint32_t)st.st_gid);
    cr_assert_eq(a->size, (uint64_t)st.st_size);
    cr_assert_eq(a->blocks, (uint64_t)st.st_blocks);
    cr_assert_eq(a->rdev, (uint64_t)st.st_rdev);
    cr_assert_eq(a->mtime.tv_sec, st.st_mtim.tv_sec);
    cr_assert_eq(a->mtime.tv_nsec, st.st_mtim.tv_nsec);
    cr_assert_eq(a->ctime.tv_sec, st.st_ctim.tv_sec);
    cr_assert_eq(a->ctime.tv_nsec, st.st_ctim.tv_nsec);
}

/** Runs `fn` in a child that dropped to uid/gid 65534; returns its exit
 *  status (0 = every check passed, else the number of the failed one). */
static int run_as_nobody(int (*fn)(void))
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
            _exit(100);
        _exit(fn());
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/** fsuid and fsgid of the calling thread, from /proc/thread-self/status. */
static void thread_fsids(unsigned *fsuid, unsigned *fsgid)
{
    char line[256];
    unsigned a, b, c, d;
    FILE *f = fopen("/proc/thread-self/status", "r");
    cr_assert_not_null(f);
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "Uid: %u %u %u %u", &a, &b, &c, &d) == 4)
            *fsuid = d;
        if (sscanf(line, "Gid: %u %u %u %u", &a, &b, &c, &d) == 4)
            *fsgid = d;
    }
    fclose(f);
}

/* ------------------------------------------------------------------------
 * Configuration.
 * ---------------------------------------------------------------------- */

Test(localfs, create_refuses_missing_root_with_errno_and_message)
{
    char err[256] = "", dir[PATH_MAX + 8], want[PATH_MAX + 64];
    int rc;
    snprintf(dir, sizeof dir, "%s/nope", base);
    cr_assert_null(instance(dir, NULL, &rc, err, sizeof err));
    cr_assert_eq(rc, -ENOENT);
    snprintf(want, sizeof want, "root=%s: No such file or directory", dir);
    cr_assert_str_eq(err, want);
}

Test(localfs, create_refuses_a_file_as_root_with_enotdir)
{
    char err[256] = "", dir[PATH_MAX + 16], want[PATH_MAX + 64];
    int rc;
    snprintf(dir, sizeof dir, "%s/secret", outside);
    cr_assert_null(instance(dir, NULL, &rc, err, sizeof err));
    cr_assert_eq(rc, -ENOTDIR);
    snprintf(want, sizeof want, "root=%s: Not a directory", dir);
    cr_assert_str_eq(err, want);
}

static char unreadable_dir[PATH_MAX + 16];

static int check_unreadable_refused(void)
{
    char err[256] = "", want[PATH_MAX + 64];
    int rc;
    void *self = instance(unreadable_dir, NULL, &rc, err, sizeof err);
    if (self != NULL)
        return 1;
    if (rc != -EACCES)
        return 2;
    snprintf(want, sizeof want, "root=%s: Permission denied", unreadable_dir);
    if (strcmp(err, want) != 0)
        return 3;
    return 0;
}

/* An unreadable root is refused.  Root reads every directory (DAC
 * override), so when the tests run as root the case cannot happen to the
 * daemon itself: the check then runs in a child that dropped to uid 65534,
 * which is exactly the unprivileged daemon the case is about. */
Test(localfs, create_refuses_unreadable_root_with_eacces)
{
    snprintf(unreadable_dir, sizeof unreadable_dir, "%s/locked", base);
    cr_assert_eq(mkdir(unreadable_dir, 0), 0);
    chmod(unreadable_dir, 0311); /* searchable, not readable */
    if (geteuid() != 0)
        cr_assert_eq(check_unreadable_refused(), 0);
    else
        cr_assert_eq(run_as_nobody(check_unreadable_refused), 0);
    rmdir(unreadable_dir);
}

Test(localfs, create_refuses_unknown_key_and_missing_root_key)
{
    struct fs9_config_item items[] = {{"root", root}, {"rot", "x"}};
    struct fs9_config cfg = {.items = items, .count = 2, .mount_path = "/"};
    char err[256] = "";
    void *self = NULL;
    cr_assert_eq(P->create(&th.host, &cfg, &self, err, sizeof err), -EINVAL);
    cr_assert_str_eq(err, "unknown key 'rot'");
    cr_assert_null(self);
    int rc;
    err[0] = '\0';
    cr_assert_null(instance(NULL, NULL, &rc, err, sizeof err));
    cr_assert_eq(rc, -EINVAL);
    cr_assert_neq(err[0], '\0');
    cr_assert_null(instance(root, "maybe", &rc, err, sizeof err));
    cr_assert_eq(rc, -EINVAL);
    cr_assert_str_eq(err, "readonly=maybe: expected 0 or 1");
}

Test(localfs, instance_holds_exactly_one_descriptor)
{
    int before = count_fds(), rc;
    void *self = instance(root, NULL, &rc, NULL, 0);
    cr_assert_eq(rc, 0);
    cr_assert_eq(count_fds(), before + 1);
    P->destroy(self);
    cr_assert_eq(count_fds(), before);
}

Test(localfs, capabilities_are_the_documented_set)
{
    uint64_t want = FS9_CAP_READ | FS9_CAP_WRITE | FS9_CAP_CREATE |
                    FS9_CAP_DELETE | FS9_CAP_RENAME | FS9_CAP_TRUNCATE |
                    FS9_CAP_CHMOD | FS9_CAP_CHOWN | FS9_CAP_UTIME |
                    FS9_CAP_HARDLINK | FS9_CAP_SYMLINK | FS9_CAP_SYNC |
                    FS9_CAP_APPEND | FS9_CAP_RANDOM_WRITE |
                    FS9_CAP_DIRECTORY | FS9_CAP_XATTR |
                    FS9_CAP_ATOMIC_RENAME | FS9_CAP_EXTERNAL_CHANGES;
    cr_assert_eq(P->capabilities(fs), want);
    cr_assert_eq(P->capabilities(fs) & FS9_CAP_NONBLOCKING, 0);
    cr_assert_eq(P->abi_version, FS9_PROVIDER_ABI_VERSION);
    cr_assert_eq(P->struct_size, sizeof(struct fs9_provider_ops));
    cr_assert_str_eq(P->name, "localfs");
}

/* ------------------------------------------------------------------------
 * stat and attributes.
 * ---------------------------------------------------------------------- */

Test(localfs, stat_gives_the_host_attributes_and_inode_numbers)
{
    struct fs9_attr a;
    cr_assert_eq(mkdir(H("d"), 0750), 0);
    cr_assert_eq(mkdir(H("d/e"), 0700), 0);
    host_write(H("d/e/f"), "hello");
    host_write(H("top"), "x");
    cr_assert_eq(pstat("", &a), 0);
    assert_attr_is_host(&a, root);
    cr_assert_eq(pstat("top", &a), 0);
    assert_attr_is_host(&a, H("top"));
    cr_assert_eq(pstat("d", &a), 0);
    assert_attr_is_host(&a, H("d"));
    cr_assert_eq(pstat("d/e/f", &a), 0);
    assert_attr_is_host(&a, H("d/e/f"));
    cr_assert_eq(a.size, 5);
    cr_assert_neq(a.blksize, 0);
    cr_assert_eq(pstat("nope", &a), -ENOENT);
    cr_assert_eq(pstat("d/nope/f", &a), -ENOENT);
    cr_assert_eq(pstat("top/x", &a), -ENOTDIR);
}

Test(localfs, stat_shows_a_symlink_as_a_symlink)
{
    struct fs9_attr a;
    cr_assert_eq(symlink("/etc/passwd", H("l")), 0);
    cr_assert_eq(pstat("l", &a), 0);
    cr_assert(S_ISLNK(a.mode));
    cr_assert_eq(a.size, strlen("/etc/passwd"));
    assert_attr_is_host(&a, H("l"));
}

Test(localfs, hard_links_share_the_inode_and_nlink_comes_from_the_host)
{
    struct fs9_attr a, b;
    pcreate("f", "data");
    cr_assert_eq(mkdir(H("sub"), 0755), 0);
    cr_assert_eq(P->link(fs, &C, "f", "sub/g", &a), 0);
    cr_assert_eq(a.nlink, 2);
    cr_assert_eq(pstat("f", &b), 0);
    cr_assert_eq(a.ino, b.ino);
    cr_assert_eq(b.nlink, 2);
    assert_attr_is_host(&b, H("f"));
    cr_assert_eq(host_lstat(H("sub/g")).st_ino, host_lstat(H("f")).st_ino);
    /* linking onto an existing name, a directory, a missing source */
    cr_assert_eq(P->link(fs, &C, "f", "sub/g", &a), -EEXIST);
    cr_assert_eq(P->link(fs, &C, "sub", "sub2", &a), -EPERM);
    cr_assert_eq(P->link(fs, &C, "nope", "x", &a), -ENOENT);
    cr_assert_eq(P->link(fs, &C, "", "x", &a), -EPERM);
    /* a hard link to a symlink links the symlink, not its target */
    cr_assert_eq(symlink("f", H("sl")), 0);
    cr_assert_eq(P->link(fs, &C, "sl", "sl2", &a), 0);
    cr_assert(S_ISLNK(a.mode));
    cr_assert_eq(pstat("f", &b), 0);
    cr_assert_eq(b.nlink, 2);
}

Test(localfs, statfs_reports_the_host_filesystem)
{
    struct fs9_statfs s;
    struct statvfs v;
    cr_assert_eq(mkdir(H("d"), 0755), 0);
    cr_assert_eq(P->statfs(fs, "", &s), 0);
    cr_assert_eq(statvfs(root, &v), 0);
    cr_assert_eq(s.bsize, v.f_frsize);
    cr_assert_eq(s.blocks, v.f_blocks);
    cr_assert_eq(s.files, v.f_files);
    cr_assert_eq(s.namemax, v.f_namemax);
    cr_assert_eq(P->statfs(fs, "d", &s), 0);
    cr_assert_eq(s.blocks, v.f_blocks);
    cr_assert_eq(P->statfs(fs, "nope", &s), -ENOENT);
}

/* ------------------------------------------------------------------------
 * open, read, write.
 * ---------------------------------------------------------------------- */

Test(localfs, open_create_excl_reports_created_and_the_new_attributes)
{
    struct fs9_open_out o;
    cr_assert_eq(popen_("f", FS9_OPEN_READ | FS9_OPEN_WRITE | FS9_OPEN_CREATE |
                                 FS9_OPEN_EXCL, 0640, &o), 0);
    cr_assert_eq(o.created, 1);
    cr_assert_eq(o.flags, 0);
    cr_assert_not_null(o.handle);
    cr_assert(S_ISREG(o.attr.mode));
    cr_assert_eq(o.attr.mode & 07777, 0640);
    assert_attr_is_host(&o.attr, H("f"));
    cr_assert_eq(P->close(fs, o.handle, 1), 0);
    cr_assert_eq(popen_("f", FS9_OPEN_WRITE | FS9_OPEN_CREATE | FS9_OPEN_EXCL,
                        0640, &o), -EEXIST);
    /* CREATE without EXCL opens the existing file */
    cr_assert_eq(popen_("f", FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0600, &o), 0);
    cr_assert_eq(o.created, 0);
    cr_assert_eq(o.attr.mode & 07777, 0640);
    cr_assert_eq(P->close(fs, o.handle, 0), 0);
    /* a nested new file */
    cr_assert_eq(mkdir(H("d"), 0755), 0);
    cr_assert_eq(popen_("d/g", FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0600, &o), 0);
    cr_assert_eq(o.created, 1);
    cr_assert_eq(P->close(fs, o.handle, 0), 0);
    cr_assert(host_exists(H("d/g")));
}

Test(localfs, open_errors_are_the_hosts)
{
    struct fs9_open_out o;
    cr_assert_eq(mkdir(H("d"), 0755), 0);
    host_write(H("f"), "x");
    cr_assert_eq(symlink("f", H("l")), 0);
    cr_assert_eq(popen_("nope", FS9_OPEN_READ, 0, &o), -ENOENT);
    cr_assert_eq(popen_("nope/x", FS9_OPEN_READ | FS9_OPEN_CREATE, 0644, &o),
                 -ENOENT);
    cr_assert_eq(popen_("f/x", FS9_OPEN_READ, 0, &o), -ENOTDIR);
    cr_assert_eq(popen_("f", FS9_OPEN_READ | FS9_OPEN_DIRECTORY, 0, &o),
                 -ENOTDIR);
    cr_assert_eq(popen_("d", FS9_OPEN_WRITE, 0, &o), -EISDIR);
    cr_assert_eq(popen_("d", FS9_OPEN_READ | FS9_OPEN_TRUNC, 0, &o), -EISDIR);
    cr_assert_eq(popen_("d", FS9_OPEN_READ | FS9_OPEN_CREATE, 0644, &o),
                 -EISDIR);
    cr_assert_eq(popen_("", FS9_OPEN_READ | FS9_OPEN_CREATE, 0644, &o),
                 -EISDIR);
    cr_assert_eq(popen_("l", FS9_OPEN_READ, 0, &o), -ELOOP);
    cr_assert_eq(popen_("l", FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0644, &o),
                 -ELOOP);
    char longname[300];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    cr_assert_eq(popen_(longname, FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0644, &o),
                 -ENAMETOOLONG);
    /* a file without read permission, as an unprivileged user sees it */
    if (geteuid() != 0) {
        host_write(H("secret"), "x");
        chmod(H("secret"), 0);
        cr_assert_eq(popen_("secret", FS9_OPEN_READ, 0, &o), -EACCES);
    }
}

Test(localfs, read_write_roundtrip_at_offsets_and_eof)
{
    struct fs9_open_out o;
    char buf[64];
    cr_assert_eq(popen_("f", FS9_OPEN_READ | FS9_OPEN_WRITE | FS9_OPEN_CREATE,
                        0644, &o), 0);
    cr_assert_eq(P->write(fs, o.handle, "hello world", 11, 0), 11);
    cr_assert_eq(P->write(fs, o.handle, "WORLD", 5, 6), 5);
    cr_assert_eq(P->write(fs, o.handle, "!", 1, 20), 1); /* leaves a hole */
    cr_assert_eq(P->read(fs, o.handle, buf, sizeof buf, 0), 21);
    cr_assert_eq(memcmp(buf, "hello WORLD\0\0\0\0\0\0\0\0\0!", 21), 0);
    cr_assert_eq(P->read(fs, o.handle, buf, 4, 6), 4);
    cr_assert_eq(memcmp(buf, "WORL", 4), 0);
    cr_assert_eq(P->read(fs, o.handle, buf, sizeof buf, 21), 0);
    cr_assert_eq(P->read(fs, o.handle, buf, sizeof buf, 1000), 0);
    cr_assert_eq(P->close(fs, o.handle, 0), 0);
    cr_assert_eq(memcmp(host_read(H("f")), "hello WORLD", 11), 0);
}

Test(localfs, open_trunc_empties_and_append_writes_at_the_end)
{
    struct fs9_open_out o;
    char buf[32];
    host_write(H("f"), "0123456789");
    cr_assert_eq(popen_("f", FS9_OPEN_WRITE | FS9_OPEN_TRUNC, 0, &o), 0);
    cr_assert_eq(o.attr.size, 0);
    cr_assert_eq(P->close(fs, o.handle, 0), 0);
    host_write(H("f"), "abc");
    cr_assert_eq(popen_("f", FS9_OPEN_READ | FS9_OPEN_WRITE | FS9_OPEN_APPEND,
                        0, &o), 0);
    cr_assert_eq(P->write(fs, o.handle, "def", 3, 0), 3);
    cr_assert_eq(P->write(fs, o.handle, "g", 1, 1), 1);
    cr_assert_eq(P->read(fs, o.handle, buf, sizeof buf, 0), 7);
    cr_assert_eq(memcmp(buf, "abcdefg", 7), 0);
    cr_assert_eq(P->close(fs, o.handle, 0), 0);
}

Test(localfs, read_on_a_write_only_handle_is_ebadf_and_write_on_dir_fails)
{
    struct fs9_open_out o;
    char buf[8];
    pcreate("f", "abc");
    cr_assert_eq(popen_("f", FS9_OPEN_WRITE, 0, &o), 0);
    cr_assert_eq(P->read(fs, o.handle, buf, sizeof buf, 0), -EBADF);
    cr_assert_eq(P->close(fs, o.handle, 0), 0);
    cr_assert_eq(popen_("f", FS9_OPEN_READ, 0, &o), 0);
    cr_assert_eq(P->write(fs, o.handle, "x", 1, 0), -EBADF);
    cr_assert_eq(P->close(fs, o.handle, 0), 0);
    cr_assert_eq(popen_("", FS9_OPEN_READ | FS9_OPEN_DIRECTORY, 0, &o), 0);
    cr_assert_eq(P->read(fs, o.handle, buf, sizeof buf, 0), -EISDIR);
    cr_assert_eq(P->close(fs, o.handle, 0), 0);
}

Test(localfs, open_noatime_and_sync_and_nonblock_flags_are_accepted)
{
    struct fs9_open_out o;
    pcreate("f", "abc");
    cr_assert_eq(popen_("f", FS9_OPEN_READ | FS9_OPEN_NOATIME | FS9_OPEN_SYNC |
                                 FS9_OPEN_NONBLOCK | FS9_OPEN_DIRECT, 0, &o),
                 0);
    char buf[4];
    cr_assert_eq(P->read(fs, o.handle, buf, 3, 0), 3); /* unaligned: no O_DIRECT */
    cr_assert_eq(P->close(fs, o.handle, 0), 0);
}

static int check_noatime_on_foreign_file(void)
{
    struct fs9_open_out o;
    struct fs9_ctx nobody = test_ctx(65534, 65534);
    int rc;
    void *self = instance(root, NULL, &rc, NULL, 0);
    if (rc != 0)
        return 1;
    /* O_NOATIME on a file we do not own: EPERM from the host, retried */
    rc = P->open(self, &nobody, "f", FS9_OPEN_READ | FS9_OPEN_NOATIME, 0, &o);
    if (rc != 0)
        return 2;
    P->close(self, o.handle, 0);
    P->destroy(self);
    return 0;
}

Test(localfs, open_noatime_on_a_file_of_another_user_is_retried_without)
{
    SKIP_UNLESS_ROOT("needs a file owned by another user: run as root");
    pcreate("f", "abc");
    chmod(H("f"), 0644);
    cr_assert_eq(run_as_nobody(check_noatime_on_foreign_file), 0);
}

/* ------------------------------------------------------------------------
 * Directories, special files, removal, rename.
 * ---------------------------------------------------------------------- */

Test(localfs, mkdir_is_open_with_create_excl_directory)
{
    struct fs9_open_out o;
    cr_assert_eq(popen_("d", FS9_OPEN_CREATE | FS9_OPEN_EXCL |
                                 FS9_OPEN_DIRECTORY | FS9_OPEN_NOHANDLE,
                        S_IFDIR | 0750, &o), 0);
    cr_assert_eq(o.created, 1);
    cr_assert(S_ISDIR(o.attr.mode));
    cr_assert_eq(o.attr.mode & 07777, 0750);
    assert_attr_is_host(&o.attr, H("d"));
    cr_assert_eq(pmkdir("d", 0755), -EEXIST);
    cr_assert_eq(pmkdir("", 0755), -EEXIST);
    cr_assert_eq(pmkdir("nope/d", 0755), -ENOENT);
    host_write(H("f"), "");
    cr_assert_eq(pmkdir("f/d", 0755), -ENOTDIR);
    cr_assert_eq(pmkdir("f", 0755), -EEXIST);
    /* with a handle, nested, usable for readdir at once */
    cr_assert_eq(popen_("d/e", FS9_OPEN_READ | FS9_OPEN_CREATE |
                                   FS9_OPEN_EXCL | FS9_OPEN_DIRECTORY,
                        S_IFDIR | 0700, &o), 0);
    cr_assert_eq(o.created, 1);
    struct listing l = {0};
    cr_assert_eq(P->readdir(fs, o.handle, 0, 0, collect, &l), 0);
    cr_assert_eq(l.count, 0);
    cr_assert_eq(P->close(fs, o.handle, 0), 0);
    /* CREATE|DIRECTORY without EXCL opens an existing directory */
    cr_assert_eq(popen_("d", FS9_OPEN_READ | FS9_OPEN_CREATE |
                                 FS9_OPEN_DIRECTORY, S_IFDIR | 0700, &o), 0);
    cr_assert_eq(o.created, 0);
    cr_assert_eq(P->close(fs, o.handle, 0), 0);
}

Test(localfs, fifos_sockets_and_files_are_created_without_handle)
{
    struct fs9_open_out o;
    uint32_t fl = FS9_OPEN_CREATE | FS9_OPEN_EXCL | FS9_OPEN_NOHANDLE;
    cr_assert_eq(popen_("fifo", fl, S_IFIFO | 0600, &o), 0);
    cr_assert_eq(o.created, 1);
    cr_assert(S_ISFIFO(o.attr.mode));
    cr_assert(S_ISFIFO(host_lstat(H("fifo")).st_mode));
    cr_assert_eq(popen_("sock", fl, S_IFSOCK | 0600, &o), 0);
    cr_assert(S_ISSOCK(host_lstat(H("sock")).st_mode));
    cr_assert_eq(popen_("file", fl, S_IFREG | 0600, &o), 0);
    cr_assert(S_ISREG(host_lstat(H("file")).st_mode));
    cr_assert_eq(popen_("plain", fl, 0600, &o), 0);
    cr_assert(S_ISREG(host_lstat(H("plain")).st_mode));
    assert_attr_is_host(&o.attr, H("plain"));
    cr_assert_eq(popen_("fifo", fl, S_IFIFO | 0600, &o), -EEXIST);
    /* without EXCL an existing file is accepted (and truncated on TRUNC);
     * a directory is not a file */
    host_write(H("existing"), "data");
    cr_assert_eq(popen_("existing", FS9_OPEN_CREATE | FS9_OPEN_NOHANDLE |
                                        FS9_OPEN_TRUNC, 0644, &o), 0);
    cr_assert_eq(o.created, 0);
    cr_assert_eq(o.attr.size, 0);
    cr_assert_eq(host_lstat(H("existing")).st_size, 0);
    cr_assert_eq(mkdir(H("dir"), 0755), 0);
    cr_assert_eq(popen_("dir", FS9_OPEN_CREATE | FS9_OPEN_NOHANDLE, 0644, &o),
                 -EISDIR);
    /* a special file with a handle is refused */
    cr_assert_eq(popen_("f2", FS9_OPEN_CREATE | FS9_OPEN_READ, S_IFIFO | 0600,
                        &o), -EINVAL);
    cr_assert(!host_exists(H("f2")));
}

Test(localfs, mknod_creates_fifos_and_devices_as_the_host_allows)
{
    struct fs9_attr a;
    cr_assert_eq(P->mknod(fs, &C, "p", S_IFIFO | 0644, 0, &a), 0);
    cr_assert(S_ISFIFO(a.mode));
    assert_attr_is_host(&a, H("p"));
    cr_assert_eq(P->mknod(fs, &C, "p", S_IFIFO | 0644, 0, &a), -EEXIST);
    cr_assert_eq(P->mknod(fs, &C, "", S_IFIFO | 0644, 0, &a), -EEXIST);
    /* a device node: whatever the host lets this process do */
    int hr = mknod(H("hostnull"), S_IFCHR | 0666, makedev(1, 3)) == 0
                 ? 0 : -errno;
    int r = P->mknod(fs, &C, "null", S_IFCHR | 0666, makedev(1, 3), &a);
    cr_assert_eq(r, hr);
    if (r == 0) {
        cr_assert(S_ISCHR(a.mode));
        cr_assert_eq(a.rdev, (uint64_t)makedev(1, 3));
        cr_assert_eq(host_lstat(H("null")).st_rdev, makedev(1, 3));
    }
    if (geteuid() == 0) {
        /* an unprivileged caller loses CAP_MKNOD with its fsuid */
        struct fs9_ctx u = test_ctx(1000, 1000);
        chmod(root, 0777);
        cr_assert_eq(P->mknod(fs, &u, "null2", S_IFCHR | 0666, makedev(1, 3),
                              &a), -EPERM);
        cr_assert(!host_exists(H("null2")));
    }
}

Test(localfs, remove_unlinks_files_and_rmdirs_with_the_hosts_errors)
{
    cr_assert_eq(mkdir(H("d"), 0755), 0);
    cr_assert_eq(mkdir(H("full"), 0755), 0);
    host_write(H("full/x"), "");
    host_write(H("f"), "");
    cr_assert_eq(symlink("d", H("l")), 0);
    cr_assert_eq(P->remove(fs, &C, "d", 0), -EISDIR);
    cr_assert_eq(P->remove(fs, &C, "f", FS9_REMOVE_DIR), -ENOTDIR);
    cr_assert_eq(P->remove(fs, &C, "full", FS9_REMOVE_DIR), -ENOTEMPTY);
    cr_assert_eq(P->remove(fs, &C, "nope", 0), -ENOENT);
    cr_assert_eq(P->remove(fs, &C, "f/x", 0), -ENOTDIR);
    cr_assert_eq(P->remove(fs, &C, "", FS9_REMOVE_DIR), -EBUSY);
    cr_assert_eq(P->remove(fs, &C, "", 0), -EISDIR);
    cr_assert_eq(P->remove(fs, &C, "l", FS9_REMOVE_DIR), -ENOTDIR);
    cr_assert_eq(P->remove(fs, &C, "l", 0), 0); /* the link, not "d" */
    cr_assert(host_exists(H("d")));
    cr_assert_eq(P->remove(fs, &C, "f", 0), 0);
    cr_assert_eq(P->remove(fs, &C, "full/x", 0), 0);
    cr_assert_eq(P->remove(fs, &C, "full", FS9_REMOVE_DIR), 0);
    cr_assert_eq(P->remove(fs, &C, "d", FS9_REMOVE_DIR), 0);
    cr_assert_str_eq(host_listing(root), "");
}

Test(localfs, rename_follows_posix_rules_and_flags)
{
    struct fs9_attr a;
    host_write(H("a"), "A");
    host_write(H("b"), "B");
    cr_assert_eq(mkdir(H("d"), 0755), 0);
    cr_assert_eq(mkdir(H("d/sub"), 0755), 0);
    cr_assert_eq(mkdir(H("full"), 0755), 0);
    host_write(H("full/x"), "");
    cr_assert_eq(mkdir(H("empty"), 0755), 0);

    cr_assert_eq(P->rename(fs, &C, "a", "b", FS9_RENAME_NOREPLACE), -EEXIST);
    cr_assert_eq(P->rename(fs, &C, "a", "b", FS9_RENAME_EXCHANGE), 0);
    cr_assert_str_eq(host_read(H("a")), "B");
    cr_assert_str_eq(host_read(H("b")), "A");
    cr_assert_eq(P->rename(fs, &C, "a", "b",
                           FS9_RENAME_EXCHANGE | FS9_RENAME_NOREPLACE),
                 -EINVAL);
    cr_assert_eq(P->rename(fs, &C, "a", "c", FS9_RENAME_EXCHANGE), -ENOENT);
    cr_assert_eq(P->rename(fs, &C, "a", "b", 0), 0); /* replaces */
    cr_assert(!host_exists(H("a")));
    cr_assert_str_eq(host_read(H("b")), "B");
    cr_assert_eq(P->rename(fs, &C, "b", "d/sub/b2", 0), 0);
    cr_assert_str_eq(host_read(H("d/sub/b2")), "B");
    cr_assert_eq(P->rename(fs, &C, "d", "d/sub/inner", 0), -EINVAL);
    cr_assert_eq(P->rename(fs, &C, "d", "full", 0), -ENOTEMPTY);
    cr_assert_eq(P->rename(fs, &C, "d/sub/b2", "empty", 0), -EISDIR);
    cr_assert_eq(P->rename(fs, &C, "d", "d/sub/b2", 0), -EINVAL);
    host_write(H("plain"), "");
    cr_assert_eq(P->rename(fs, &C, "d", "plain", 0), -ENOTDIR);
    cr_assert_eq(P->rename(fs, &C, "nope", "x", 0), -ENOENT);
    cr_assert_eq(P->rename(fs, &C, "", "x", 0), -EBUSY);
    cr_assert_eq(P->rename(fs, &C, "d", "", 0), -EBUSY);
    cr_assert_eq(P->rename(fs, &C, "d", "empty", 0), 0); /* over empty dir */
    cr_assert_eq(pstat("empty/sub/b2", &a), 0);
    cr_assert_eq(P->rename(fs, &C, "d", "x", 7), -EINVAL);
}

/* ------------------------------------------------------------------------
 * Symlinks.
 * ---------------------------------------------------------------------- */

Test(localfs, symlink_and_readlink_roundtrip_the_text)
{
    struct fs9_attr a;
    char buf[64];
    cr_assert_eq(mkdir(H("d"), 0755), 0);
    cr_assert_eq(P->symlink(fs, &C, "../../anywhere/at/all", "d/l", &a), 0);
    cr_assert(S_ISLNK(a.mode));
    assert_attr_is_host(&a, H("d/l"));
    ssize_t n = P->readlink(fs, "d/l", buf, sizeof buf);
    cr_assert_eq(n, 21);
    cr_assert_eq(memcmp(buf, "../../anywhere/at/all", 21), 0);
    cr_assert_eq(P->readlink(fs, "d/l", buf, 21), 21); /* exact fit */
    cr_assert_eq(P->readlink(fs, "d/l", buf, 20), -ENAMETOOLONG);
    cr_assert_eq(P->readlink(fs, "d", buf, sizeof buf), -EINVAL);
    cr_assert_eq(P->readlink(fs, "", buf, sizeof buf), -EINVAL);
    cr_assert_eq(P->readlink(fs, "nope", buf, sizeof buf), -ENOENT);
    cr_assert_eq(P->symlink(fs, &C, "x", "d/l", &a), -EEXIST);
    cr_assert_eq(P->symlink(fs, &C, "x", "", &a), -EEXIST);
    cr_assert_eq(P->symlink(fs, &C, "", "e", &a), -ENOENT);
    /* a symlink to an absolute path is just text: nothing is touched */
    cr_assert_eq(P->symlink(fs, &C, "/etc/passwd", "p", &a), 0);
    cr_assert_eq(P->readlink(fs, "p", buf, sizeof buf), 11);
    cr_assert_eq(memcmp(buf, "/etc/passwd", 11), 0);
}

/* ------------------------------------------------------------------------
 * wstat.
 * ---------------------------------------------------------------------- */

Test(localfs, wstat_sets_nanosecond_times_now_and_omit)
{
    struct fs9_attr a;
    struct fs9_wstat w = {0};
    host_write(H("f"), "x");
    w.valid = FS9_WSTAT_ATIME | FS9_WSTAT_MTIME;
    w.atime = (struct timespec){.tv_sec = 1000000000, .tv_nsec = 123456789};
    w.mtime = (struct timespec){.tv_sec = 1100000000, .tv_nsec = 987654321};
    cr_assert_eq(pwstat("f", NULL, &w, &a), 0);
    cr_assert_eq(a.atime.tv_sec, 1000000000);
    cr_assert_eq(a.atime.tv_nsec, 123456789);
    cr_assert_eq(a.mtime.tv_sec, 1100000000);
    cr_assert_eq(a.mtime.tv_nsec, 987654321);
    struct stat st = host_lstat(H("f"));
    cr_assert_eq(st.st_atim.tv_nsec, 123456789);
    cr_assert_eq(st.st_mtim.tv_nsec, 987654321);
    /* MTIME_NOW leaves atime alone (UTIME_OMIT) */
    w.valid = FS9_WSTAT_MTIME_NOW;
    cr_assert_eq(pwstat("f", NULL, &w, &a), 0);
    cr_assert_eq(a.atime.tv_sec, 1000000000);
    cr_assert_eq(a.atime.tv_nsec, 123456789);
    cr_assert_gt(a.mtime.tv_sec, 1100000000);
    w.valid = FS9_WSTAT_ATIME_NOW;
    cr_assert_eq(pwstat("f", NULL, &w, &a), 0);
    cr_assert_gt(a.atime.tv_sec, 1000000000);
    /* on the root and on a symlink itself (not its target) */
    w.valid = FS9_WSTAT_MTIME;
    cr_assert_eq(pwstat("", NULL, &w, &a), 0);
    cr_assert_eq(host_lstat(root).st_mtim.tv_nsec, 987654321);
    cr_assert_eq(symlink("f", H("l")), 0);
    w.mtime.tv_nsec = 5;
    cr_assert_eq(pwstat("l", NULL, &w, &a), 0);
    cr_assert_eq(host_lstat(H("l")).st_mtim.tv_nsec, 5);
    cr_assert_neq(host_lstat(H("f")).st_mtim.tv_nsec, 5);
}

Test(localfs, wstat_mode_changes_permissions_but_not_on_symlinks)
{
    struct fs9_attr a;
    struct fs9_wstat w = {.valid = FS9_WSTAT_MODE, .mode = S_IFREG | 04711};
    host_write(H("f"), "x");
    cr_assert_eq(symlink("f", H("l")), 0);
    cr_assert_eq(pwstat("f", NULL, &w, &a), 0);
    cr_assert_eq(a.mode, S_IFREG | 04711);
    cr_assert_eq(host_lstat(H("f")).st_mode & 07777, 04711);
    w.mode = 0600;
    cr_assert_eq(pwstat("l", NULL, &w, &a), -EOPNOTSUPP);
    cr_assert_eq(host_lstat(H("f")).st_mode & 07777, 04711);
    cr_assert_eq(pwstat("nope", NULL, &w, &a), -ENOENT);
    w.mode = 0700;
    cr_assert_eq(pwstat("", NULL, &w, &a), 0);
    cr_assert_eq(host_lstat(root).st_mode & 07777, 0700);
}

Test(localfs, wstat_size_truncates_and_extends_with_holes)
{
    struct fs9_attr a;
    struct fs9_wstat w = {.valid = FS9_WSTAT_SIZE, .size = 3};
    char buf[16];
    cr_assert_eq(mkdir(H("d"), 0755), 0);
    host_write(H("d/f"), "0123456789");
    cr_assert_eq(pwstat("d/f", NULL, &w, &a), 0);
    cr_assert_eq(a.size, 3);
    w.size = 8;
    cr_assert_eq(pwstat("d/f", NULL, &w, &a), 0);
    cr_assert_eq(a.size, 8);
    struct fs9_open_out o;
    cr_assert_eq(popen_("d/f", FS9_OPEN_READ, 0, &o), 0);
    cr_assert_eq(P->read(fs, o.handle, buf, sizeof buf, 0), 8);
    cr_assert_eq(memcmp(buf, "012\0\0\0\0\0", 8), 0);
    /* through a read-only handle too (reopened for writing) */
    w.size = 2;
    cr_assert_eq(pwstat("d/f", o.handle, &w, &a), 0);
    cr_assert_eq(a.size, 2);
    cr_assert_eq(P->close(fs, o.handle, 0), 0);
    cr_assert_eq(pwstat("d", NULL, &w, &a), -EISDIR);
    cr_assert_eq(pwstat("", NULL, &w, &a), -EISDIR);
    cr_assert_eq(popen_("d", FS9_OPEN_READ, 0, &o), 0);
    cr_assert_eq(pwstat("d", o.handle, &w, &a), -EISDIR);
    cr_assert_eq(P->close(fs, o.handle, 0), 0);
    cr_assert_eq(mkfifo(H("p"), 0644), 0);
    cr_assert_eq(pwstat("p", NULL, &w, &a), -EINVAL);
    cr_assert_eq(symlink("d/f", H("l")), 0);
    cr_assert_eq(pwstat("l", NULL, &w, &a), -ELOOP);
    cr_assert_eq(pwstat("nope", NULL, &w, &a), -ENOENT);
    w.size = UINT64_MAX;
    cr_assert_eq(pwstat("d/f", NULL, &w, &a), -EINVAL);
    cr_assert_eq(host_lstat(H("d/f")).st_size, 2);
}

Test(localfs, wstat_applies_owner_before_mode_so_setuid_survives)
{
    SKIP_UNLESS_ROOT("chown to another user needs root");
    struct fs9_attr a;
    struct fs9_wstat w = {.valid = FS9_WSTAT_UID | FS9_WSTAT_GID |
                                   FS9_WSTAT_MODE | FS9_WSTAT_SIZE |
                                   FS9_WSTAT_MTIME,
                          .uid = 1000, .gid = 1001, .mode = 06755,
                          .size = 4,
                          .mtime = {.tv_sec = 1234567890, .tv_nsec = 42}};
    host_write(H("f"), "0123456789");
    cr_assert_eq(pwstat("f", NULL, &w, &a), 0);
    struct stat st = host_lstat(H("f"));
    cr_assert_eq(st.st_uid, 1000);
    cr_assert_eq(st.st_gid, 1001);
    cr_assert_eq(st.st_mode & 07777, 06755);
    cr_assert_eq(st.st_size, 4);
    cr_assert_eq(st.st_mtim.tv_sec, 1234567890);
    cr_assert_eq(st.st_mtim.tv_nsec, 42);
    assert_attr_is_host(&a, H("f"));
    /* only the group */
    w = (struct fs9_wstat){.valid = FS9_WSTAT_GID, .gid = 1002};
    cr_assert_eq(pwstat("f", NULL, &w, &a), 0);
    cr_assert_eq(host_lstat(H("f")).st_uid, 1000);
    cr_assert_eq(host_lstat(H("f")).st_gid, 1002);
    /* chown of a symlink changes the link, not the target */
    cr_assert_eq(symlink("f", H("l")), 0);
    w = (struct fs9_wstat){.valid = FS9_WSTAT_UID, .uid = 2000};
    cr_assert_eq(pwstat("l", NULL, &w, &a), 0);
    cr_assert_eq(host_lstat(H("l")).st_uid, 2000);
    cr_assert_eq(host_lstat(H("f")).st_uid, 1000);
    /* a mode with an owner on a symlink is refused before anything */
    w = (struct fs9_wstat){.valid = FS9_WSTAT_UID | FS9_WSTAT_MODE,
                           .uid = 3000, .mode = 0600};
    cr_assert_eq(pwstat("l", NULL, &w, &a), -EOPNOTSUPP);
    cr_assert_eq(host_lstat(H("l")).st_uid, 2000);
}

static int check_chown_refused_for_nobody(void)
{
    struct fs9_ctx me = test_ctx(65534, 65534);
    struct fs9_wstat w = {.valid = FS9_WSTAT_UID, .uid = 0};
    struct fs9_attr a;
    int rc;
    void *self = instance(root, NULL, &rc, NULL, 0);
    if (rc != 0)
        return 1;
    struct fs9_open_out o;
    if (P->open(self, &me, "mine", FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0644,
                &o) != 0)
        return 2;
    P->close(self, o.handle, 0);
    if (P->wstat(self, &me, "mine", NULL, &w, &a) != -EPERM)
        return 3;
    w.uid = 65534; /* to oneself: allowed */
    if (P->wstat(self, &me, "mine", NULL, &w, &a) != 0)
        return 4;
    w = (struct fs9_wstat){.valid = FS9_WSTAT_MODE, .mode = 0600};
    if (P->wstat(self, &me, "theirs", NULL, &w, &a) != -EPERM)
        return 5;
    P->destroy(self);
    return 0;
}

Test(localfs, wstat_owner_and_mode_refused_when_the_host_refuses)
{
    chmod(root, 0777);
    host_write(H("theirs"), "x");
    if (geteuid() == 0) {
        cr_assert_eq(run_as_nobody(check_chown_refused_for_nobody), 0);
    } else {
        /* the test user is the unprivileged daemon already */
        struct fs9_wstat w = {.valid = FS9_WSTAT_UID, .uid = 0};
        cr_assert_eq(pwstat("theirs", NULL, &w, NULL), -EPERM);
    }
}

Test(localfs, wstat_moves_ctime_and_accepts_ctime_request)
{
    struct fs9_attr before, after;
    struct fs9_wstat w = {.valid = FS9_WSTAT_MODE | FS9_WSTAT_CTIME,
                          .mode = 0600};
    host_write(H("f"), "x");
    cr_assert_eq(pstat("f", &before), 0);
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
    cr_assert_eq(pwstat("f", NULL, &w, &after), 0);
    cr_assert(after.ctime.tv_sec > before.ctime.tv_sec ||
              after.ctime.tv_nsec != before.ctime.tv_nsec);
    w.valid = 0; /* nothing to change: just the attributes */
    cr_assert_eq(pwstat("f", NULL, &w, &after), 0);
    assert_attr_is_host(&after, H("f"));
}

/* ------------------------------------------------------------------------
 * Handles on removed files.
 * ---------------------------------------------------------------------- */

Test(localfs, files_removed_while_open_stay_usable_through_the_handle)
{
    struct fs9_open_out o;
    struct fs9_attr a;
    char buf[32];
    cr_assert_eq(mkdir(H("d"), 0755), 0);
    cr_assert_eq(popen_("d/f", FS9_OPEN_READ | FS9_OPEN_WRITE |
                                   FS9_OPEN_CREATE, 0644, &o), 0);
    cr_assert_eq(P->write(fs, o.handle, "before", 6, 0), 6);
    cr_assert_eq(P->remove(fs, &C, "d/f", 0), 0);
    cr_assert_eq(P->remove(fs, &C, "d", FS9_REMOVE_DIR), 0);
    cr_assert_eq(pstat("d/f", &a), -ENOENT);
    cr_assert_eq(P->write(fs, o.handle, "after", 5, 6), 5);
    cr_assert_eq(P->read(fs, o.handle, buf, sizeof buf, 0), 11);
    cr_assert_eq(memcmp(buf, "beforeafter", 11), 0);
    cr_assert_eq(P->stat(fs, &C, "d/f", o.handle, &a), 0);
    cr_assert_eq(a.nlink, 0);
    cr_assert_eq(a.size, 11);
    struct fs9_wstat w = {.valid = FS9_WSTAT_SIZE | FS9_WSTAT_MODE |
                                   FS9_WSTAT_MTIME,
                          .size = 4, .mode = 0600,
                          .mtime = {.tv_sec = 1500000000, .tv_nsec = 7}};
    cr_assert_eq(pwstat("d/f", o.handle, &w, &a), 0);
    cr_assert_eq(a.size, 4);
    cr_assert_eq(a.mode & 07777, 0600);
    cr_assert_eq(a.mtime.tv_nsec, 7);
    cr_assert_eq(P->fsync(fs, o.handle, 0), 0);
    cr_assert_eq(P->fallocate(fs, o.handle, 0, 0, 100), 0);
    cr_assert_eq(P->stat(fs, &C, "d/f", o.handle, &a), 0);
    cr_assert_eq(a.size, 100);
    cr_assert_eq(P->close(fs, o.handle, 1), 0);
}

/* ------------------------------------------------------------------------
 * xattrs, fsync, fallocate.
 * ---------------------------------------------------------------------- */

static void check_xattrs(void)
{
    char buf[64];
    cr_assert_eq(mkdir(H("d"), 0755), 0);
    host_write(H("d/f"), "x");
    cr_assert_eq(P->setxattr(fs, &C, "d/f", "user.a", "hello", 5, 0), 0);
    cr_assert_eq(P->setxattr(fs, &C, "d/f", "user.b", "", 0, 0), 0);
    cr_assert_eq(P->getxattr(fs, "d/f", "user.a", NULL, 0), 5);
    cr_assert_eq(P->getxattr(fs, "d/f", "user.a", buf, sizeof buf), 5);
    cr_assert_eq(memcmp(buf, "hello", 5), 0);
    cr_assert_eq(P->getxattr(fs, "d/f", "user.a", buf, 4), -ERANGE);
    cr_assert_eq(P->getxattr(fs, "d/f", "user.b", buf, sizeof buf), 0);
    cr_assert_eq(P->getxattr(fs, "d/f", "user.zz", buf, sizeof buf), -ENODATA);
    cr_assert_eq(P->setxattr(fs, &C, "d/f", "user.a", "x", 1,
                             FS9_XATTR_CREATE), -EEXIST);
    cr_assert_eq(P->setxattr(fs, &C, "d/f", "user.zz", "x", 1,
                             FS9_XATTR_REPLACE), -ENODATA);
    cr_assert_eq(P->setxattr(fs, &C, "d/f", "user.a", "bye", 3,
                             FS9_XATTR_REPLACE), 0);
    char host[8];
    cr_assert_eq(lgetxattr(H("d/f"), "user.a", host, sizeof host), 3);
    cr_assert_eq(memcmp(host, "bye", 3), 0);
    ssize_t need = P->listxattr(fs, "d/f", NULL, 0);
    cr_assert_eq(need, llistxattr(H("d/f"), NULL, 0));
    cr_assert_geq(need, 14); /* "user.a\0user.b\0" at least */
    cr_assert_eq(P->listxattr(fs, "d/f", buf, (size_t)need - 1), -ERANGE);
    cr_assert_eq(P->listxattr(fs, "d/f", buf, sizeof buf), need);
    cr_assert_not_null(memmem(buf, (size_t)need, "user.a", 7));
    cr_assert_not_null(memmem(buf, (size_t)need, "user.b", 7));
    cr_assert_eq(P->removexattr(fs, &C, "d/f", "user.a"), 0);
    cr_assert_eq(P->removexattr(fs, &C, "d/f", "user.a"), -ENODATA);
    cr_assert_eq(P->getxattr(fs, "d/f", "user.a", buf, sizeof buf), -ENODATA);
    cr_assert_eq(P->getxattr(fs, "nope", "user.a", buf, sizeof buf), -ENOENT);
    cr_assert_eq(P->setxattr(fs, &C, "d/f", "bogus.x", "1", 1, 0),
                 -EOPNOTSUPP);
    /* on the root and on a directory */
    cr_assert_eq(P->setxattr(fs, &C, "", "user.r", "1", 1, 0), 0);
    cr_assert_eq(lgetxattr(root, "user.r", host, sizeof host), 1);
    cr_assert_eq(P->setxattr(fs, &C, "d", "user.d", "1", 1, 0), 0);
    cr_assert_eq(P->getxattr(fs, "d", "user.d", buf, sizeof buf), 1);
}

static void check_symlink_xattrs(void)
{
    char buf[16];
    host_write(H("f"), "x");
    cr_assert_eq(lsetxattr(H("f"), "user.t", "1", 1, 0), 0);
    cr_assert_eq(symlink("f", H("l")), 0);
    cr_assert_eq(P->getxattr(fs, "l", "user.t", buf, sizeof buf), -ENODATA);
    /* the host allows no user.* xattrs on symlinks */
    cr_assert_eq(P->setxattr(fs, &C, "l", "user.t", "2", 1, 0), -EPERM);
    cr_assert_eq(lgetxattr(H("f"), "user.t", buf, sizeof buf), 1);
    cr_assert_eq(buf[0], '1');
    cr_assert_eq(P->listxattr(fs, "l", buf, sizeof buf),
                 llistxattr(H("l"), NULL, 0));
}

Test(localfs, xattrs_set_get_list_remove_with_the_hosts_errors)
{
    check_xattrs();
}

Test(localfs, xattrs_of_a_symlink_are_its_own_not_its_targets)
{
    check_symlink_xattrs();
}

Test(localfs, fsync_and_fdatasync_and_close_with_sync_succeed)
{
    struct fs9_open_out o;
    cr_assert_eq(popen_("f", FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0644, &o), 0);
    cr_assert_eq(P->write(fs, o.handle, "x", 1, 0), 1);
    cr_assert_eq(P->fsync(fs, o.handle, 0), 0);
    cr_assert_eq(P->fsync(fs, o.handle, 1), 0);
    cr_assert_eq(P->close(fs, o.handle, 1), 0);
    cr_assert_eq(popen_("", FS9_OPEN_READ | FS9_OPEN_DIRECTORY, 0, &o), 0);
    cr_assert_eq(P->fsync(fs, o.handle, 0), 0);
    cr_assert_eq(P->close(fs, o.handle, 1), 0);
}

Test(localfs, fallocate_passes_the_mode_to_the_host)
{
    struct fs9_open_out o;
    struct fs9_attr a;
    char buf[8192];
    cr_assert_eq(popen_("f", FS9_OPEN_READ | FS9_OPEN_WRITE | FS9_OPEN_CREATE,
                        0644, &o), 0);
    cr_assert_eq(P->fallocate(fs, o.handle, 0, 0, 8192), 0);
    cr_assert_eq(P->stat(fs, &C, "f", o.handle, &a), 0);
    cr_assert_eq(a.size, 8192);
    cr_assert_eq(P->fallocate(fs, o.handle, FALLOC_FL_KEEP_SIZE, 8192, 65536),
                 0);
    cr_assert_eq(P->stat(fs, &C, "f", o.handle, &a), 0);
    cr_assert_eq(a.size, 8192);
    cr_assert_geq(a.blocks * 512, 65536);
    memset(buf, 'x', sizeof buf);
    cr_assert_eq(P->write(fs, o.handle, buf, sizeof buf, 0), 8192);
    int r = P->fallocate(fs, o.handle,
                         FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096);
    /* the host's answer, whatever it is, is ours */
    int hfd = open(H("f"), O_RDWR);
    int hr = fallocate(hfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
                       4096) == 0 ? 0 : -errno;
    close(hfd);
    cr_assert_eq(r, hr);
    if (r == 0) {
        cr_assert_eq(P->read(fs, o.handle, buf, sizeof buf, 0), 8192);
        cr_assert_eq(buf[0], 0);
        cr_assert_eq(buf[4095], 0);
        cr_assert_eq(buf[4096], 'x');
    }
    /* PUNCH_HOLE without KEEP_SIZE is refused by Linux itself */
    cr_assert_eq(P->fallocate(fs, o.handle, FALLOC_FL_PUNCH_HOLE, 0, 4096),
                 -EOPNOTSUPP);
    cr_assert_eq(P->close(fs, o.handle, 0), 0);
}

/* ------------------------------------------------------------------------
 * readdir.
 * ---------------------------------------------------------------------- */

Test(localfs, readdir_lists_every_entry_with_ino_and_type_without_dots)
{
    struct listing l;
    cr_assert_eq(mkdir(H("d"), 0755), 0);
    host_write(H("f"), "abc");
    cr_assert_eq(symlink("f", H("l")), 0);
    cr_assert_eq(mkfifo(H("p"), 0644), 0);
    cr_assert_eq(plist("", 0, &l), 0);
    cr_assert_eq(l.count, 4);
    const char *names[] = {"d", "f", "l", "p"};
    const mode_t types[] = {S_IFDIR, S_IFREG, S_IFLNK, S_IFIFO};
    for (int i = 0; i < 4; i++) {
        int k = listing_find(&l, names[i]);
        cr_assert_geq(k, 0, "%s missing", names[i]);
        cr_assert_eq(l.attrs[k].mode & S_IFMT, types[i]);
        cr_assert_eq(l.attrs[k].ino, host_lstat(H(names[i])).st_ino);
        cr_assert_neq(l.cookies[k], 0);
        cr_assert_lt(l.cookies[k], UINT64_C(1) << 63);
    }
    listing_free(&l);
    cr_assert_eq(plist("f", 0, &l), -ENOTDIR);
    cr_assert_eq(plist("nope", 0, &l), -ENOENT);
}

Test(localfs, readdir_plus_fills_full_attributes_from_the_host)
{
    struct listing l;
    cr_assert_eq(mkdir(H("d"), 0755), 0);
    host_write(H("d/f"), "abcdef");
    cr_assert_eq(symlink("/etc", H("d/l")), 0);
    cr_assert_eq(plist("d", FS9_READDIR_PLUS, &l), 0);
    cr_assert_eq(l.count, 2);
    for (int i = 0; i < l.count; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "d/%s", l.names[i]);
        cr_assert_eq(l.full[i], 1);
        assert_attr_is_host(&l.attrs[i], H(rel));
    }
    listing_free(&l);
}

/* emit says "full" after two entries, then the entries are removed on the
 * host before the listing continues from what the provider already read */
Test(localfs, readdir_plus_skips_entries_that_vanished_since_getdents)
{
    struct fs9_open_out o;
    struct listing l = {.limit = 2};
    char name[32];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "f%d", i);
        host_write(H(name), "");
    }
    cr_assert_eq(popen_("", FS9_OPEN_READ | FS9_OPEN_DIRECTORY, 0, &o), 0);
    cr_assert_eq(P->readdir(fs, o.handle, 0, FS9_READDIR_PLUS, collect, &l),
                 0);
    cr_assert_eq(l.count, 2);
    int gone = 0;
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "f%d", i);
        if (listing_find(&l, name) < 0 && gone < 4) {
            cr_assert_eq(unlink(H(name)), 0);
            gone++;
        }
    }
    l.limit = 0;
    cr_assert_eq(P->readdir(fs, o.handle, l.cookies[1], FS9_READDIR_PLUS,
                            collect, &l), 0);
    cr_assert_eq(l.count, 6);
    for (int i = 0; i < l.count; i++) {
        cr_assert_eq(l.full[i], 1);
        cr_assert(host_exists(H(l.names[i])), "%s vanished", l.names[i]);
    }
    cr_assert_eq(P->close(fs, o.handle, 0), 0);
    listing_free(&l);
}

static int emit_error(void *arg, const struct fs9_dirent *e)
{
    (void)arg;
    (void)e;
    return -EIO;
}

Test(localfs, readdir_stops_on_full_and_resumes_with_the_same_entry)
{
    struct fs9_open_out o;
    struct listing a = {.limit = 3}, b = {0};
    for (int i = 0; i < 20; i++) {
        char name[16];
        snprintf(name, sizeof name, "n%02d", i);
        host_write(H(name), "");
    }
    cr_assert_eq(popen_("", FS9_OPEN_READ | FS9_OPEN_DIRECTORY, 0, &o), 0);
    cr_assert_eq(P->readdir(fs, o.handle, 0, 0, emit_error, NULL), -EIO);
    cr_assert_eq(P->readdir(fs, o.handle, 0, 0, collect, &a), 0);
    cr_assert_eq(a.count, 3);
    /* the 4th entry was refused: resuming after the 3rd gives it first */
    cr_assert_eq(P->readdir(fs, o.handle, a.cookies[2], 0, collect, &b), 0);
    cr_assert_eq(b.count, 17);
    for (int i = 0; i < 3; i++)
        cr_assert_lt(listing_find(&b, a.names[i]), 0);
    /* a cookie works on another handle of the same directory as well */
    struct fs9_open_out o2;
    struct listing c = {0};
    cr_assert_eq(popen_("", FS9_OPEN_READ | FS9_OPEN_DIRECTORY, 0, &o2), 0);
    cr_assert_eq(P->readdir(fs, o2.handle, a.cookies[2], 0, collect, &c), 0);
    cr_assert_eq(c.count, 17);
    cr_assert_str_eq(c.names[0], b.names[0]);
    /* cookie 0 starts over */
    listing_free(&c);
    cr_assert_eq(P->readdir(fs, o2.handle, 0, 0, collect, &c), 0);
    cr_assert_eq(c.count, 20);
    cr_assert_eq(P->close(fs, o2.handle, 0), 0);
    cr_assert_eq(P->close(fs, o.handle, 0), 0);
    listing_free(&a);
    listing_free(&b);
    listing_free(&c);
}

#define BIG 25000

Test(localfs, readdir_of_25000_entries_in_small_batches_is_complete_and_unique)
{
    struct fs9_open_out o;
    char name[32];
    cr_assert_eq(mkdir(H("big"), 0755), 0);
    int dfd = open(H("big"), O_RDONLY | O_DIRECTORY);
    cr_assert_geq(dfd, 0);
    for (int i = 0; i < BIG; i++) {
        snprintf(name, sizeof name, "entry-%05d", i);
        cr_assert_eq(mknodat(dfd, name, S_IFREG | 0644, 0), 0);
    }
    close(dfd);
    unsigned char *seen = calloc(BIG, 1);
    cr_assert_eq(popen_("big", FS9_OPEN_READ | FS9_OPEN_DIRECTORY, 0, &o), 0);
    uint64_t cookie = 0;
    int total = 0, calls = 0;
    unsigned seed = 12345;
    for (;;) {
        struct listing l = {.limit = 1 + (int)((seed = seed * 1103515245 + 12345)
                                                   >> 16) % 37};
        /* now and then through a fresh handle, as a new opendir would */
        if (calls % 50 == 49) {
            cr_assert_eq(P->close(fs, o.handle, 0), 0);
            cr_assert_eq(popen_("big", FS9_OPEN_READ | FS9_OPEN_DIRECTORY, 0,
                                &o), 0);
        }
        uint32_t flags = (calls % 3 == 0) ? FS9_READDIR_PLUS : 0;
        cr_assert_eq(P->readdir(fs, o.handle, cookie, flags, collect, &l), 0);
        calls++;
        if (l.count == 0) {
            listing_free(&l);
            break;
        }
        for (int i = 0; i < l.count; i++) {
            int idx;
            cr_assert_eq(sscanf(l.names[i], "entry-%d", &idx), 1);
            cr_assert(idx >= 0 && idx < BIG);
            cr_assert_eq(seen[idx], 0, "%s listed twice", l.names[i]);
            seen[idx] = 1;
            cr_assert_neq(l.cookies[i], 0);
            cr_assert_lt(l.cookies[i], UINT64_C(1) << 63);
            cr_assert(S_ISREG(l.attrs[i].mode));
        }
        total += l.count;
        cookie = l.cookies[l.count - 1];
        listing_free(&l);
    }
    cr_assert_eq(P->close(fs, o.handle, 0), 0);
    cr_assert_eq(total, BIG);
    for (int i = 0; i < BIG; i++)
        cr_assert_eq(seen[i], 1);
    free(seen);
}

/* ------------------------------------------------------------------------
 * Confinement.
 * ---------------------------------------------------------------------- */

/** Every operation on `path` (and `path` as source and target of rename
 *  and link) fails with `want`; the host outside the root is untouched. */
static void assert_all_ops_fail(const char *path, const char *inside_name,
                                int want)
{
    struct fs9_open_out o;
    struct fs9_attr a;
    struct fs9_statfs sf;
    struct fs9_wstat w = {.valid = FS9_WSTAT_MODE, .mode = 0777};
    struct fs9_wstat ws = {.valid = FS9_WSTAT_SIZE, .size = 0};
    char buf[64];
    char child[PATH_MAX];
    snprintf(child, sizeof child, "%s/new", path);

    cr_assert_eq(pstat(path, &a), want, "stat %s", path);
    cr_assert_eq(popen_(path, FS9_OPEN_READ, 0, &o), want, "open %s", path);
    cr_assert_eq(popen_(path, FS9_OPEN_WRITE | FS9_OPEN_TRUNC, 0, &o), want);
    cr_assert_eq(popen_(child, FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0644, &o),
                 want, "create %s", child);
    cr_assert_eq(popen_(child, FS9_OPEN_CREATE | FS9_OPEN_EXCL |
                                   FS9_OPEN_NOHANDLE, S_IFIFO | 0644, &o),
                 want);
    cr_assert_eq(pmkdir(child, 0755), want, "mkdir %s", child);
    cr_assert_eq(P->mknod(fs, &C, child, S_IFIFO | 0644, 0, &a), want);
    cr_assert_eq(P->symlink(fs, &C, "x", child, &a), want);
    cr_assert_eq(pwstat(path, NULL, &w, &a), want, "wstat %s", path);
    cr_assert_eq(pwstat(path, NULL, &ws, &a), want);
    cr_assert_eq(P->statfs(fs, path, &sf), want);
    cr_assert_eq(P->remove(fs, &C, path, 0), want, "remove %s", path);
    cr_assert_eq(P->remove(fs, &C, path, FS9_REMOVE_DIR), want);
    cr_assert_eq(P->rename(fs, &C, path, "stolen", 0), want, "rename %s",
                 path);
    cr_assert_eq(P->rename(fs, &C, inside_name, child, 0), want);
    cr_assert_eq(P->rename(fs, &C, inside_name, path, FS9_RENAME_EXCHANGE),
                 want);
    cr_assert_eq(P->link(fs, &C, path, "stolen", &a), want, "link %s", path);
    cr_assert_eq(P->link(fs, &C, inside_name, child, &a), want);
    cr_assert_eq(P->readlink(fs, path, buf, sizeof buf), want);
    cr_assert_eq(P->getxattr(fs, path, "user.secret", buf, sizeof buf), want);
    cr_assert_eq(P->listxattr(fs, path, buf, sizeof buf), want);
    cr_assert_eq(P->setxattr(fs, &C, path, "user.fs9", "1", 1, 0), want,
                 "setxattr %s", path);
    cr_assert_eq(P->removexattr(fs, &C, path, "user.secret"), want);
    cr_assert(!host_exists(H("stolen")));
    cr_assert(host_exists(H(inside_name)));
    assert_outside_untouched();
}

Test(localfs, dotdot_and_absolute_paths_are_refused_with_exdev)
{
    host_write(H("mine"), "m");
    cr_assert_eq(mkdir(H("a"), 0755), 0);
    assert_all_ops_fail("../outside/secret", "mine", -EXDEV);
    assert_all_ops_fail("a/../../outside/secret", "mine", -EXDEV);
    assert_all_ops_fail("a/..", "mine", -EXDEV);
    assert_all_ops_fail("..", "mine", -EXDEV);
    assert_all_ops_fail("/etc/passwd", "mine", -EXDEV);
    char abs[PATH_MAX + 16];
    snprintf(abs, sizeof abs, "%s/secret", outside);
    assert_all_ops_fail(abs, "mine", -EXDEV);
    struct fs9_attr a;
    cr_assert_eq(P->link(fs, &C, "mine", "../outside/stolen", &a), -EXDEV);
    cr_assert_eq(P->rename(fs, &C, "mine", "../outside/stolen", 0), -EXDEV);
    cr_assert_eq(P->rename(fs, &C, "../outside/secret", "mine", 0), -EXDEV);
    assert_outside_untouched();
}

Test(localfs, empty_and_dot_components_are_refused_with_einval)
{
    host_write(H("mine"), "m");
    cr_assert_eq(mkdir(H("a"), 0755), 0);
    assert_all_ops_fail("a//mine", "mine", -EINVAL);
    assert_all_ops_fail("./mine", "mine", -EINVAL);
    assert_all_ops_fail("a/.", "mine", -EINVAL);
    assert_all_ops_fail("a/", "mine", -EINVAL);
    assert_all_ops_fail(".", "mine", -EINVAL);
}

/* Symlinks inside the tree that point out of it (absolute to /etc and to
 * the outside directory, relative ".." at two depths) are never followed
 * as intermediate components: openat2 says ELOOP. */
Test(localfs, symlinks_used_as_intermediate_components_give_eloop)
{
    char target[PATH_MAX + 16];
    host_write(H("mine"), "m");
    cr_assert_eq(mkdir(H("a"), 0755), 0);
    cr_assert_eq(symlink("/etc", H("etc")), 0);
    cr_assert_eq(symlink(outside, H("out")), 0);
    cr_assert_eq(symlink("..", H("up")), 0);
    cr_assert_eq(symlink("../..", H("a/up2")), 0);
    cr_assert_eq(symlink(".", H("self")), 0); /* even one that stays inside */
    assert_all_ops_fail("etc/passwd", "mine", -ELOOP);
    assert_all_ops_fail("out/secret", "mine", -ELOOP);
    assert_all_ops_fail("up/outside/secret", "mine", -ELOOP);
    assert_all_ops_fail("a/up2/outside/secret", "mine", -ELOOP);
    assert_all_ops_fail("self/mine", "mine", -ELOOP);
    assert_all_ops_fail("up/outside", "mine", -ELOOP);
    struct fs9_open_out o;
    /* O_DIRECTORY|O_NOFOLLOW on a symlink: Linux says ENOTDIR */
    cr_assert_eq(popen_("out", FS9_OPEN_READ | FS9_OPEN_DIRECTORY, 0, &o),
                 -ENOTDIR);
    cr_assert_eq(popen_("etc/fs9-localfs-must-not-exist",
                        FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0644, &o), -ELOOP);
    cr_assert(!host_exists("/etc/fs9-localfs-must-not-exist"));
    char v[8];
    cr_assert_lt(lgetxattr("/etc/passwd", "user.fs9", v, sizeof v), 0);
    snprintf(target, sizeof target, "%s/stolen", outside);
    cr_assert(!host_exists(target));
    assert_outside_untouched();
}

Test(localfs, a_final_symlink_is_operated_on_itself_never_followed)
{
    struct fs9_attr a;
    char buf[PATH_MAX];
    cr_assert_eq(symlink(outside, H("out")), 0);
    cr_assert_eq(pstat("out", &a), 0);
    cr_assert(S_ISLNK(a.mode));
    cr_assert_eq(P->readlink(fs, "out", buf, sizeof buf), (ssize_t)strlen(outside));
    struct fs9_open_out o;
    cr_assert_eq(popen_("out", FS9_OPEN_READ, 0, &o), -ELOOP);
    struct fs9_wstat w = {.valid = FS9_WSTAT_MODE, .mode = 0777};
    cr_assert_eq(pwstat("out", NULL, &w, &a), -EOPNOTSUPP);
    cr_assert_eq(P->getxattr(fs, "out", "user.secret", buf, sizeof buf),
                 -ENODATA);
    cr_assert_eq(P->rename(fs, &C, "out", "out2", 0), 0);
    cr_assert_eq(P->link(fs, &C, "out2", "out3", &a), 0);
    cr_assert(S_ISLNK(a.mode));
    cr_assert_eq(P->remove(fs, &C, "out2", 0), 0);
    cr_assert_eq(P->remove(fs, &C, "out3", 0), 0);
    assert_outside_untouched();
}

/* A directory the provider has just used is replaced on the host by a
 * symlink to a directory outside the root: the next operations through it
 * fail with ELOOP; a handle opened before keeps its directory. */
Test(localfs, a_directory_swapped_for_a_symlink_between_calls_is_not_followed)
{
    struct fs9_attr a;
    struct fs9_open_out o, od;
    char text[16];
    cr_assert_eq(mkdir(H("d"), 0755), 0);
    host_write(H("d/secret"), "inside");
    host_write(H("mine"), "m");
    cr_assert_eq(pstat("d/secret", &a), 0);
    cr_assert_eq(popen_("d/secret", FS9_OPEN_READ, 0, &o), 0);
    cr_assert_eq(popen_("d", FS9_OPEN_READ | FS9_OPEN_DIRECTORY, 0, &od), 0);

    cr_assert_eq(rename(H("d"), H("d.old")), 0);
    cr_assert_eq(symlink(outside, H("d")), 0);

    assert_all_ops_fail("d/secret", "mine", -ELOOP);
    cr_assert_eq(pstat("d", &a), 0);
    cr_assert(S_ISLNK(a.mode));
    /* the handles still reach the objects they opened, inside the tree */
    cr_assert_eq(P->read(fs, o.handle, text, sizeof text, 0), 6);
    cr_assert_eq(memcmp(text, "inside", 6), 0);
    struct listing l = {0};
    cr_assert_eq(P->readdir(fs, od.handle, 0, FS9_READDIR_PLUS, collect, &l),
                 0);
    cr_assert_eq(l.count, 1);
    cr_assert_str_eq(l.names[0], "secret");
    cr_assert_eq(l.attrs[0].ino, host_lstat(H("d.old/secret")).st_ino);
    listing_free(&l);
    cr_assert_eq(P->close(fs, o.handle, 0), 0);
    cr_assert_eq(P->close(fs, od.handle, 0), 0);
    assert_outside_untouched();
}

Test(localfs, rename_and_link_never_move_anything_across_the_root)
{
    struct fs9_attr a;
    host_write(H("mine"), "m");
    cr_assert_eq(symlink("..", H("up")), 0);
    cr_assert_eq(symlink(outside, H("out")), 0);
    const char *outs[] = {"../outside/secret", "up/outside/secret",
                          "out/secret", "../outside/x", "up/outside/x",
                          "out/x"};
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
        int want = outs[i][0] == '.' ? -EXDEV : -ELOOP;
        cr_assert_lt(P->rename(fs, &C, outs[i], "took", 0), 0);
        cr_assert_eq(P->rename(fs, &C, "mine", outs[i], 0), want);
        cr_assert_eq(P->rename(fs, &C, "mine", outs[i],
                               FS9_RENAME_NOREPLACE), want);
        cr_assert_eq(P->link(fs, &C, outs[i], "took", &a), want);
        cr_assert_eq(P->link(fs, &C, "mine", outs[i], &a), want);
    }
    cr_assert(!host_exists(H("took")));
    cr_assert_str_eq(host_read(H("mine")), "m");
    assert_outside_untouched();
}

/* ------------------------------------------------------------------------
 * Ownership.
 * ---------------------------------------------------------------------- */

Test(localfs, objects_are_created_as_the_caller_when_running_as_root)
{
    SKIP_UNLESS_ROOT("setfsuid to the caller needs root; as another user "
                     "objects belong to the daemon");
    struct fs9_ctx u = test_ctx(1000, 1000);
    struct fs9_open_out o;
    struct fs9_attr a;
    chmod(root, 0777);
    cr_assert_eq(P->open(fs, &u, "f", FS9_OPEN_WRITE | FS9_OPEN_CREATE |
                                         FS9_OPEN_EXCL, 0644, &o), 0);
    cr_assert_eq(o.attr.uid, 1000);
    cr_assert_eq(o.attr.gid, 1000);
    cr_assert_eq(P->close(fs, o.handle, 0), 0);
    cr_assert_eq(P->open(fs, &u, "d", FS9_OPEN_CREATE | FS9_OPEN_EXCL |
                                         FS9_OPEN_DIRECTORY |
                                         FS9_OPEN_NOHANDLE,
                         S_IFDIR | 0755, &o), 0);
    cr_assert_eq(P->open(fs, &u, "d/p", FS9_OPEN_CREATE | FS9_OPEN_EXCL |
                                           FS9_OPEN_NOHANDLE,
                         S_IFIFO | 0644, &o), 0);
    cr_assert_eq(P->mknod(fs, &u, "d/q", S_IFIFO | 0644, 0, &a), 0);
    cr_assert_eq(P->symlink(fs, &u, "f", "d/l", &a), 0);
    const char *made[] = {"f", "d", "d/p", "d/q", "d/l"};
    for (size_t i = 0; i < 5; i++) {
        struct stat st = host_lstat(H(made[i]));
        cr_assert_eq(st.st_uid, 1000, "%s uid %u", made[i], st.st_uid);
        cr_assert_eq(st.st_gid, 1000, "%s gid %u", made[i], st.st_gid);
    }
    cr_assert_eq(P->link(fs, &u, "f", "d/h", &a), 0);
    cr_assert_eq(a.uid, 1000);
    /* the thread is itself again */
    unsigned fsuid = 1, fsgid = 1;
    thread_fsids(&fsuid, &fsgid);
    cr_assert_eq(fsuid, 0);
    cr_assert_eq(fsgid, 0);
    /* and a root caller creates as root */
    pcreate("rootfile", "");
    cr_assert_eq(host_lstat(H("rootfile")).st_uid, 0);
}

Test(localfs, the_hosts_permission_checks_apply_to_the_caller)
{
    SKIP_UNLESS_ROOT("acting as another caller needs root");
    struct fs9_ctx u = test_ctx(1000, 1000);
    struct fs9_open_out o;
    struct fs9_attr a;
    cr_assert_eq(mkdir(H("closed"), 0755), 0); /* root's, not writable */
    cr_assert_eq(P->open(fs, &u, "closed/f", FS9_OPEN_WRITE | FS9_OPEN_CREATE,
                         0644, &o), -EACCES);
    cr_assert_eq(P->open(fs, &u, "closed/d", FS9_OPEN_CREATE | FS9_OPEN_EXCL |
                                                FS9_OPEN_DIRECTORY |
                                                FS9_OPEN_NOHANDLE,
                         S_IFDIR | 0755, &o), -EACCES);
    cr_assert_eq(P->symlink(fs, &u, "x", "closed/l", &a), -EACCES);
    cr_assert_eq(P->mknod(fs, &u, "closed/p", S_IFIFO | 0644, 0, &a),
                 -EACCES);
    cr_assert_str_eq(host_listing(H("closed")), "");
    /* a set-group-ID directory gives its group to new objects */
    cr_assert_eq(mkdir(H("shared"), 0777), 0);
    cr_assert_eq(chown(H("shared"), 0, 2000), 0);
    cr_assert_eq(chmod(H("shared"), 02777), 0);
    cr_assert_eq(P->open(fs, &u, "shared/f", FS9_OPEN_WRITE | FS9_OPEN_CREATE,
                         0644, &o), 0);
    cr_assert_eq(P->close(fs, o.handle, 0), 0);
    cr_assert_eq(host_lstat(H("shared/f")).st_uid, 1000);
    cr_assert_eq(host_lstat(H("shared/f")).st_gid, 2000);
}

struct owner_job {
    unsigned uid;
    int errors;
};

static void *create_as(void *arg)
{
    struct owner_job *job = arg;
    struct fs9_ctx u = test_ctx(job->uid, job->uid);
    struct fs9_open_out o;
    char name[64];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "u%u-%d", job->uid, i);
        if (P->open(fs, &u, name, FS9_OPEN_WRITE | FS9_OPEN_CREATE |
                                      FS9_OPEN_EXCL, 0644, &o) != 0) {
            job->errors++;
            continue;
        }
        if (o.attr.uid != job->uid)
            job->errors++;
        P->close(fs, o.handle, 0);
    }
    return NULL;
}

Test(localfs, concurrent_callers_each_create_as_themselves)
{
    SKIP_UNLESS_ROOT("acting as another caller needs root");
    chmod(root, 0777);
    pthread_t t[6];
    struct owner_job jobs[6];
    for (int i = 0; i < 6; i++) {
        jobs[i] = (struct owner_job){.uid = i == 0 ? 0 : 1000 + (unsigned)i};
        cr_assert_eq(pthread_create(&t[i], NULL, create_as, &jobs[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(jobs[i].errors, 0, "uid %u", jobs[i].uid);
    }
    for (int i = 0; i < 6; i++) {
        for (int k = 0; k < 300; k += 37) {
            char name[64];
            snprintf(name, sizeof name, "u%u-%d", jobs[i].uid, k);
            cr_assert_eq(host_lstat(H(name)).st_uid, jobs[i].uid);
            cr_assert_eq(host_lstat(H(name)).st_gid, jobs[i].uid);
        }
    }
}

static int check_created_as_daemon_user(void)
{
    struct fs9_ctx other = test_ctx(1000, 1000);
    struct fs9_open_out o;
    int rc;
    void *self = instance(root, NULL, &rc, NULL, 0);
    if (rc != 0)
        return 1;
    if (P->open(self, &other, "f", FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0644,
                &o) != 0)
        return 2;
    P->close(self, o.handle, 0);
    P->destroy(self);
    struct stat st;
    if (lstat(H("f"), &st) != 0 || st.st_uid != 65534)
        return 3;
    return 0;
}

/* Not root: the daemon cannot switch users, new objects are its own. */
Test(localfs, objects_belong_to_the_daemon_user_when_not_root)
{
    chmod(root, 0777);
    if (geteuid() == 0)
        cr_assert_eq(run_as_nobody(check_created_as_daemon_user), 0);
    else {
        struct fs9_ctx other = test_ctx(geteuid() + 1, getegid() + 1);
        struct fs9_open_out o;
        cr_assert_eq(P->open(fs, &other, "f", FS9_OPEN_WRITE |
                                                  FS9_OPEN_CREATE,
                             0644, &o), 0);
        P->close(fs, o.handle, 0);
        cr_assert_eq(host_lstat(H("f")).st_uid, geteuid());
    }
}

/* ------------------------------------------------------------------------
 * Read-only instances.
 * ---------------------------------------------------------------------- */

Test(localfs, readonly_refuses_every_change_with_erofs)
{
    struct fs9_open_out o;
    struct fs9_attr a;
    char buf[16];
    int rc;
    cr_assert_eq(mkdir(H("d"), 0755), 0);
    host_write(H("d/f"), "data");
    cr_assert_eq(lsetxattr(H("d/f"), "user.x", "1", 1, 0), 0);
    P->destroy(fs);
    fs = instance(root, "1", &rc, NULL, 0);
    cr_assert_eq(rc, 0);
    uint64_t caps = P->capabilities(fs);
    cr_assert(caps & FS9_CAP_READ);
    cr_assert_eq(caps & (FS9_CAP_WRITE | FS9_CAP_CREATE | FS9_CAP_DELETE |
                         FS9_CAP_RENAME | FS9_CAP_TRUNCATE | FS9_CAP_CHMOD),
                 0);

    /* reading works */
    cr_assert_eq(popen_("d/f", FS9_OPEN_READ, 0, &o), 0);
    cr_assert_eq(P->read(fs, o.handle, buf, sizeof buf, 0), 4);
    cr_assert_eq(P->write(fs, o.handle, "x", 1, 0), -EROFS);
    cr_assert_eq(P->fallocate(fs, o.handle, 0, 0, 10), -EROFS);
    struct fs9_wstat w = {.valid = FS9_WSTAT_MODE, .mode = 0600};
    cr_assert_eq(pwstat("d/f", o.handle, &w, &a), -EROFS);
    cr_assert_eq(P->close(fs, o.handle, 0), 0);
    cr_assert_eq(P->getxattr(fs, "d/f", "user.x", buf, sizeof buf), 1);
    struct listing l;
    cr_assert_eq(plist("d", FS9_READDIR_PLUS, &l), 0);
    cr_assert_eq(l.count, 1);
    listing_free(&l);
    /* CREATE of something that exists, read-only: opened */
    cr_assert_eq(popen_("d/f", FS9_OPEN_READ | FS9_OPEN_CREATE, 0644, &o), 0);
    cr_assert_eq(o.created, 0);
    cr_assert_eq(P->close(fs, o.handle, 0), 0);

    /* every change */
    cr_assert_eq(popen_("d/f", FS9_OPEN_WRITE, 0, &o), -EROFS);
    cr_assert_eq(popen_("d/f", FS9_OPEN_READ | FS9_OPEN_TRUNC, 0, &o), -EROFS);
    cr_assert_eq(popen_("d/g", FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0644, &o),
                 -EROFS);
    cr_assert_eq(popen_("d/f", FS9_OPEN_WRITE | FS9_OPEN_CREATE |
                                   FS9_OPEN_EXCL, 0644, &o), -EEXIST);
    cr_assert_eq(popen_("d/f", FS9_OPEN_CREATE | FS9_OPEN_NOHANDLE |
                                   FS9_OPEN_TRUNC, 0644, &o), -EROFS);
    cr_assert_eq(popen_("d/f", FS9_OPEN_CREATE | FS9_OPEN_NOHANDLE, 0644, &o),
                 0); /* exists, nothing to change */
    cr_assert_eq(pmkdir("e", 0755), -EROFS);
    cr_assert_eq(pmkdir("d", 0755), -EEXIST);
    cr_assert_eq(P->mknod(fs, &C, "p", S_IFIFO | 0644, 0, &a), -EROFS);
    cr_assert_eq(P->symlink(fs, &C, "x", "s", &a), -EROFS);
    cr_assert_eq(P->link(fs, &C, "d/f", "h", &a), -EROFS);
    cr_assert_eq(P->link(fs, &C, "nope", "h", &a), -ENOENT);
    cr_assert_eq(P->link(fs, &C, "d/f", "d", &a), -EEXIST);
    cr_assert_eq(P->remove(fs, &C, "d/f", 0), -EROFS);
    cr_assert_eq(P->remove(fs, &C, "d", FS9_REMOVE_DIR), -EROFS);
    cr_assert_eq(P->rename(fs, &C, "d/f", "g", 0), -EROFS);
    cr_assert_eq(pwstat("d/f", NULL, &w, &a), -EROFS);
    cr_assert_eq(pwstat("nope", NULL, &w, &a), -ENOENT);
    w.valid = FS9_WSTAT_SIZE;
    cr_assert_eq(pwstat("d/f", NULL, &w, &a), -EROFS);
    w.valid = FS9_WSTAT_MTIME_NOW;
    cr_assert_eq(pwstat("d/f", NULL, &w, &a), -EROFS);
    cr_assert_eq(P->setxattr(fs, &C, "d/f", "user.y", "1", 1, 0), -EROFS);
    cr_assert_eq(P->removexattr(fs, &C, "d/f", "user.x"), -EROFS);

    cr_assert_str_eq(host_listing(root), "d");
    cr_assert_str_eq(host_listing(H("d")), "f");
    cr_assert_str_eq(host_read(H("d/f")), "data");
    cr_assert_eq(host_lstat(H("d/f")).st_mode & 07777, 0644);
}

/* ------------------------------------------------------------------------
 * Descriptors.
 * ---------------------------------------------------------------------- */

#define TREE_DIRS 25
#define TREE_FILES 1000 /* per directory: 25,000 files */

static int fd_baseline;
static int fd_checks;

/** Between two operations the process holds exactly what it held before:
 *  nothing is cached per inode or per directory. */
static void check_fds(void)
{
    int n = count_fds();
    fd_checks++;
    cr_assert_eq(n, fd_baseline, "after %d operations: %d descriptors, "
                 "%d before", fd_checks, n, fd_baseline);
}

Test(localfs, descriptors_stay_bounded_over_a_25000_file_tree)
{
    char path[64];
    struct fs9_open_out o;
    struct fs9_attr a;
    /* A low limit makes any per-inode descriptor fail loudly too. */
    struct rlimit old, low;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = 128;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    fd_baseline = count_fds();
    fd_checks = 0;

    cr_assert_eq(pmkdir("t", 0755), 0);
    for (int d = 0; d < TREE_DIRS; d++) {
        snprintf(path, sizeof path, "t/d%02d", d);
        cr_assert_eq(pmkdir(path, 0755), 0);
        snprintf(path, sizeof path, "t/d%02d/s", d);
        cr_assert_eq(pmkdir(path, 0755), 0);
        for (int f = 0; f < TREE_FILES; f++) {
            snprintf(path, sizeof path, "t/d%02d/s/f%04d", d, f);
            cr_assert_eq(popen_(path, FS9_OPEN_CREATE | FS9_OPEN_EXCL |
                                          FS9_OPEN_NOHANDLE, 0644, &o), 0);
            check_fds();
        }
    }
    for (int d = 0; d < TREE_DIRS; d++) {
        for (int f = 0; f < TREE_FILES; f++) {
            snprintf(path, sizeof path, "t/d%02d/s/f%04d", d, f);
            cr_assert_eq(pstat(path, &a), 0);
            check_fds();
            cr_assert_eq(popen_(path, FS9_OPEN_READ | FS9_OPEN_WRITE, 0, &o),
                         0);
            cr_assert_eq(count_fds(), fd_baseline + 1); /* the handle's */
            cr_assert_eq(P->write(fs, o.handle, "x", 1, 0), 1);
            cr_assert_eq(P->close(fs, o.handle, 0), 0);
            check_fds();
            if (f % 100 == 0) {
                cr_assert_eq(P->setxattr(fs, &C, path, "user.n", "1", 1, 0),
                             0);
                cr_assert_eq(P->getxattr(fs, path, "user.n", NULL, 0), 1);
                check_fds();
            }
        }
    }
    for (int d = 0; d < TREE_DIRS; d++) {
        struct listing l = {.limit = 50};
        uint64_t cookie = 0;
        int total = 0;
        snprintf(path, sizeof path, "t/d%02d/s", d);
        cr_assert_eq(popen_(path, FS9_OPEN_READ | FS9_OPEN_DIRECTORY, 0, &o),
                     0);
        for (;;) {
            l.count = 0;
            cr_assert_eq(P->readdir(fs, o.handle, cookie, FS9_READDIR_PLUS,
                                    collect, &l), 0);
            cr_assert_eq(count_fds(), fd_baseline + 1);
            if (l.count == 0)
                break;
            for (int i = 0; i < l.count; i++)
                free(l.names[i]);
            total += l.count;
            cookie = l.cookies[l.count - 1];
        }
        l.count = 0;
        listing_free(&l);
        cr_assert_eq(total, TREE_FILES);
        cr_assert_eq(P->close(fs, o.handle, 0), 0);
        check_fds();
    }
    cr_assert_eq(count_fds(), fd_baseline);
    setrlimit(RLIMIT_NOFILE, &old);
}

Test(localfs, every_handle_holds_one_descriptor_until_close)
{
    struct fs9_open_out o[100];
    char name[32];
    int before = count_fds();
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "f%d", i);
        cr_assert_eq(popen_(name, (i % 2 ? FS9_OPEN_READ | FS9_OPEN_DIRECTORY
                                         : FS9_OPEN_WRITE) |
                                      FS9_OPEN_CREATE | FS9_OPEN_EXCL,
                            i % 2 ? (S_IFDIR | 0755) : 0644, &o[i]), 0);
    }
    cr_assert_eq(count_fds(), before + 100);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(P->close(fs, o[i].handle, i % 3 == 0), 0);
    cr_assert_eq(count_fds(), before);
}

/* With every descriptor of the process in use, calls that need a
 * temporary one say EMFILE (never EBADF or ENOENT); calls that need none
 * still work; nothing is left half-done. */
Test(localfs, running_out_of_descriptors_gives_emfile)
{
    struct fs9_open_out o, dirh;
    struct fs9_attr a;
    struct fs9_statfs sf;
    char buf[16];
    cr_assert_eq(mkdir(H("d"), 0755), 0);
    host_write(H("d/f"), "data");
    host_write(H("top"), "t");
    cr_assert_eq(lsetxattr(H("d/f"), "user.x", "1", 1, 0), 0);
    cr_assert_eq(popen_("d", FS9_OPEN_READ | FS9_OPEN_DIRECTORY, 0, &dirh), 0);

    struct rlimit old, low;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = 64;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    int fillers[64], nfill = 0;
    for (;;) {
        int fd = dup(0);
        if (fd < 0) {
            cr_assert_eq(errno, EMFILE);
            break;
        }
        cr_assert_lt(nfill, 64);
        fillers[nfill++] = fd;
    }
    cr_assert_eq(pstat("d/f", &a), -EMFILE);
    cr_assert_eq(popen_("top", FS9_OPEN_READ, 0, &o), -EMFILE);
    cr_assert_eq(popen_("new", FS9_OPEN_WRITE | FS9_OPEN_CREATE, 0644, &o),
                 -EMFILE);
    /* a top-level name needs a descriptor only without getxattrat() */
    ssize_t xr = P->getxattr(fs, "top", "user.x", buf, sizeof buf);
    cr_assert(xr == -EMFILE || xr == -ENODATA, "getxattr: %zd", xr);
    cr_assert_eq(P->getxattr(fs, "d/f", "user.x", buf, sizeof buf), -EMFILE);
    cr_assert_eq(P->statfs(fs, "d/f", &sf), -EMFILE);
    cr_assert_eq(P->remove(fs, &C, "d/f", 0), -EMFILE);
    cr_assert_eq(P->rename(fs, &C, "d/f", "g", 0), -EMFILE);
    /* no temporary descriptor needed: still fine */
    cr_assert_eq(pstat("top", &a), 0);
    cr_assert_eq(P->statfs(fs, "", &sf), 0);
    struct listing l = {0};
    cr_assert_eq(P->readdir(fs, dirh.handle, 0, FS9_READDIR_PLUS, collect, &l),
                 0);
    cr_assert_eq(l.count, 1);
    listing_free(&l);
    for (int i = 0; i < nfill; i++)
        close(fillers[i]);
    setrlimit(RLIMIT_NOFILE, &old);
    cr_assert_eq(P->close(fs, dirh.handle, 0), 0);
    cr_assert(host_exists(H("d/f")));
    cr_assert(!host_exists(H("new")));
    cr_assert_eq(pstat("d/f", &a), 0);
}

/* ------------------------------------------------------------------------
 * Concurrency.
 * ---------------------------------------------------------------------- */

static void *churn(void *arg)
{
    int id = (int)(intptr_t)arg;
    char path[64], buf[16];
    struct fs9_open_out o;
    struct fs9_attr a;
    for (int i = 0; i < 400; i++) {
        snprintf(path, sizeof path, "c/t%d-%d", id, i % 10);
        if (P->open(fs, &C, path, FS9_OPEN_READ | FS9_OPEN_WRITE |
                                      FS9_OPEN_CREATE, 0644, &o) != 0)
            return (void *)1;
        if (P->write(fs, o.handle, "abcd", 4, 0) != 4 ||
            P->read(fs, o.handle, buf, 4, 0) != 4 ||
            P->stat(fs, &C, path, o.handle, &a) != 0)
            return (void *)2;
        P->close(fs, o.handle, 0);
        if (P->stat(fs, &C, path, NULL, &a) != 0)
            return (void *)3;
        if (i % 10 == 9 && P->remove(fs, &C, path, 0) != 0)
            return (void *)4;
    }
    return NULL;
}

Test(localfs, concurrent_calls_from_many_threads_are_safe)
{
    pthread_t t[8];
    int before = count_fds();
    cr_assert_eq(pmkdir("c", 0755), 0);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, churn, (void *)(intptr_t)i),
                     0);
    for (int i = 0; i < 8; i++) {
        void *ret;
        pthread_join(t[i], &ret);
        cr_assert_null(ret, "thread %d failed at step %p", i, ret);
    }
    cr_assert_eq(count_fds(), before);
}

/* ------------------------------------------------------------------------
 * Older kernels.  A seccomp filter in the test's own process makes the
 * newer syscalls fail with ENOSYS, as on a kernel that lacks them, so the
 * fallback paths are exercised on any kernel.
 * ---------------------------------------------------------------------- */

#define NR_OPENAT2 437
#define NR_FCHMODAT2 452
#define NR_SETXATTRAT 463
#define NR_REMOVEXATTRAT 466

/** From now on syscalls [first, last] fail with ENOSYS in this process. */
static void deny_syscalls(int first, int last)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, (unsigned)first, 0, 2),
        BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, (unsigned)last, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
    cr_assert_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
    cr_assert_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0,
                 "seccomp: %s", strerror(errno));
}

/** A fresh instance on `root` (after deny_syscalls changed the kernel). */
static void reinstance(void)
{
    char err[256] = "";
    int rc;
    P->destroy(fs);
    fs = instance(root, NULL, &rc, err, sizeof err);
    cr_assert_eq(rc, 0, "create: %s", err);
}

Test(localfs, create_refuses_a_kernel_without_openat2)
{
    char err[256] = "", want[512];
    int rc;
    deny_syscalls(NR_OPENAT2, NR_OPENAT2);
    cr_assert_null(instance(root, NULL, &rc, err, sizeof err));
    cr_assert_eq(rc, -ENOSYS);
    snprintf(want, sizeof want, "root=%s: openat2 is not available "
             "(Linux 5.6 or later is needed)", root);
    cr_assert_str_eq(err, want);
}

Test(localfs, xattrs_work_through_proc_without_getxattrat)
{
    deny_syscalls(NR_SETXATTRAT, NR_REMOVEXATTRAT);
    reinstance();
    cr_assert(P->capabilities(fs) & FS9_CAP_XATTR);
    check_xattrs();
    check_symlink_xattrs();
    /* a top-level name now needs a descriptor (proof that the /proc path
     * is the one taken), and gives it back */
    int before = count_fds();
    char buf[8];
    cr_assert_eq(P->getxattr(fs, "f", "user.t", buf, sizeof buf), 1);
    cr_assert_eq(count_fds(), before);
    struct rlimit old, low;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = 64;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    int fillers[64], nfill = 0, fd;
    while (nfill < 64 && (fd = dup(0)) >= 0)
        fillers[nfill++] = fd;
    cr_assert_eq(P->getxattr(fs, "f", "user.t", buf, sizeof buf), -EMFILE);
    while (nfill > 0)
        close(fillers[--nfill]);
    setrlimit(RLIMIT_NOFILE, &old);
}

Test(localfs, chmod_without_fchmodat2_still_refuses_symlinks)
{
    struct fs9_attr a;
    struct fs9_wstat w = {.valid = FS9_WSTAT_MODE, .mode = 0604};
    deny_syscalls(NR_FCHMODAT2, NR_FCHMODAT2);
    reinstance();
    cr_assert_eq(mkdir(H("d"), 0755), 0);
    host_write(H("d/f"), "x");
    cr_assert_eq(symlink("f", H("d/l")), 0);
    cr_assert_eq(pwstat("d/f", NULL, &w, &a), 0);
    cr_assert_eq(host_lstat(H("d/f")).st_mode & 07777, 0604);
    w.mode = 0600;
    cr_assert_eq(pwstat("d/l", NULL, &w, &a), -EOPNOTSUPP);
    cr_assert_eq(host_lstat(H("d/f")).st_mode & 07777, 0604);
}

Test(localfs, confinement_holds_on_the_fallback_paths_too)
{
    deny_syscalls(NR_FCHMODAT2, NR_REMOVEXATTRAT); /* 452..466 */
    reinstance();
    host_write(H("mine"), "m");
    cr_assert_eq(symlink(outside, H("out")), 0);
    cr_assert_eq(symlink("..", H("up")), 0);
    assert_all_ops_fail("out/secret", "mine", -ELOOP);
    assert_all_ops_fail("up/outside/secret", "mine", -ELOOP);
    assert_all_ops_fail("../outside/secret", "mine", -EXDEV);
    struct fs9_wstat w = {.valid = FS9_WSTAT_MODE, .mode = 0777};
    cr_assert_eq(pwstat("out", NULL, &w, NULL), -EOPNOTSUPP);
    char buf[8];
    cr_assert_eq(P->getxattr(fs, "out", "user.secret", buf, sizeof buf),
                 -ENODATA);
    assert_outside_untouched();
}
