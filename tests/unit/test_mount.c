/*
 * test_mount — the mount trie: resolution, listing, removal, references,
 * path normalization, and resolving while mounts come and go.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mount.h"

/* Mounts released so far (each test runs in its own process). */
static atomic_int released;

static void release_mount(struct fs9_mount *m)
{
    atomic_fetch_add(&released, 1);
    free(m->path);
    /* Poison: a resolve that returns a freed mount fails loudly even
     * without ASan (dead != 0, path garbage). */
    memset(m, 0x5a, sizeof(*m));
    free(m);
}

static struct fs9_mount *new_mount(const char *path)
{
    struct fs9_mount *m = calloc(1, sizeof(*m));
    m->path = strdup(path);
    atomic_init(&m->refs, 1);
    m->release = release_mount;
    return m;
}

/* Mount at `path`, leaving the table with the only reference. */
static struct fs9_mount *mount_at(struct fs9_mount_table *t, const char *path)
{
    struct fs9_mount *m = new_mount(path);
    cr_assert_eq(fs9_mount_table_add(t, m), 0, "mount %s", path);
    fs9_mount_unref(m);
    return m;
}

/* Resolve and drop the reference at once; returns the mount path. */
static const char *resolve_path(struct fs9_mount_table *t, const char *path,
                                const char **rel, unsigned *flags)
{
    struct fs9_mount *m = fs9_mount_table_resolve(t, path, rel, flags);
    if (!m)
        return NULL;
    const char *p = m->path; /* still referenced by the table */
    fs9_mount_unref(m);
    return p;
}

/* ------------------------------------------------------ normalization */

static void check_norm(const char *in, const char *want)
{
    char out[64];
    cr_assert_eq(fs9_path_normalize(in, out, sizeof(out)), 0, "%s", in);
    cr_assert_str_eq(out, want, "%s", in);
}

Test(path, normalize_collapses_slashes_and_drops_dots)
{
    check_norm("/", "/");
    check_norm("//", "/");
    check_norm("/.", "/");
    check_norm("/./", "/");
    check_norm("//a///b/", "/a/b");
    check_norm("/./a", "/a");
    check_norm("/a/./b/.", "/a/b");
    check_norm("/a/b", "/a/b");
    check_norm("/.a/..b/...", "/.a/..b/...");
}

Test(path, normalize_refuses_dotdot_relative_and_empty)
{
    char out[64];
    cr_assert_eq(fs9_path_normalize("/a/../b", out, sizeof(out)), -EINVAL);
    cr_assert_eq(fs9_path_normalize("/..", out, sizeof(out)), -EINVAL);
    cr_assert_eq(fs9_path_normalize("/a/..", out, sizeof(out)), -EINVAL);
    cr_assert_eq(fs9_path_normalize("a/b", out, sizeof(out)), -EINVAL);
    cr_assert_eq(fs9_path_normalize("./a", out, sizeof(out)), -EINVAL);
    cr_assert_eq(fs9_path_normalize("", out, sizeof(out)), -EINVAL);
    cr_assert_eq(fs9_path_normalize(NULL, out, sizeof(out)), -EINVAL);
}

Test(path, normalize_refuses_what_does_not_fit)
{
    char out[8];
    cr_assert_eq(fs9_path_normalize("/abcdef", out, 8), 0);
    cr_assert_str_eq(out, "/abcdef");
    cr_assert_eq(fs9_path_normalize("/abcdefg", out, 8), -ENAMETOOLONG);
    cr_assert_eq(fs9_path_normalize("/abc/def", out, 8), -ENAMETOOLONG);
    /* Extra slashes do not count against the limit. */
    cr_assert_eq(fs9_path_normalize("////abc//de//", out, 8), 0);
    cr_assert_str_eq(out, "/abc/de");
    cr_assert_eq(fs9_path_normalize("/", out, 1), -ENAMETOOLONG);
    char big[5000];
    memset(big, 'x', sizeof(big));
    big[0] = '/';
    big[sizeof(big) - 1] = '\0';
    char huge[4096];
    cr_assert_eq(fs9_path_normalize(big, huge, sizeof(huge)), -ENAMETOOLONG);
}

Test(path, normalize_works_in_place)
{
    char buf[] = "//a/./b//c/";
    cr_assert_eq(fs9_path_normalize(buf, buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, "/a/b/c");
}

/* --------------------------------------------------------- resolution */

Test(mount, empty_table_resolves_nothing)
{
    struct fs9_mount_table *t = fs9_mount_table_new();
    const char *rel = "x";
    unsigned flags = 77;
    cr_assert_null(fs9_mount_table_resolve(t, "/a", &rel, &flags));
    cr_assert_null(rel);
    cr_assert_eq(flags, 0);
    cr_assert_eq(fs9_mount_table_count(t), 0);
    fs9_mount_table_free(t);
}

Test(mount, root_mount_covers_every_path)
{
    struct fs9_mount_table *t = fs9_mount_table_new();
    mount_at(t, "/");
    const char *rel;
    unsigned flags;
    const char *path = "/a/b";
    cr_assert_str_eq(resolve_path(t, path, &rel, &flags), "/");
    cr_assert_eq(rel, path + 1);
    cr_assert_str_eq(rel, "a/b");
    cr_assert_eq(flags, 0);
    cr_assert_str_eq(resolve_path(t, "/", &rel, &flags), "/");
    cr_assert_str_eq(rel, "");
    cr_assert_eq(flags, FS9_RESOLVE_MOUNTPOINT);
    fs9_mount_table_free(t);
    cr_assert_eq(atomic_load(&released), 1);
}

Test(mount, exact_match_gives_empty_rel_and_the_mountpoint_flag)
{
    struct fs9_mount_table *t = fs9_mount_table_new();
    mount_at(t, "/");
    mount_at(t, "/a");
    const char *path = "/a";
    const char *rel;
    unsigned flags;
    cr_assert_str_eq(resolve_path(t, path, &rel, &flags), "/a");
    cr_assert_eq(rel, path + 2);
    cr_assert_str_eq(rel, "");
    cr_assert_eq(flags, FS9_RESOLVE_MOUNTPOINT);
    fs9_mount_table_free(t);
}

Test(mount, deepest_prefix_wins_and_rel_points_into_the_input)
{
    struct fs9_mount_table *t = fs9_mount_table_new();
    mount_at(t, "/");
    mount_at(t, "/a");
    mount_at(t, "/a/b/c");
    const char *rel;
    unsigned flags;
    const char *p1 = "/a/b/c/d/e";
    cr_assert_str_eq(resolve_path(t, p1, &rel, &flags), "/a/b/c");
    cr_assert_eq(rel, p1 + strlen("/a/b/c/"));
    cr_assert_eq(flags, 0);
    const char *p2 = "/a/b/x";
    cr_assert_str_eq(resolve_path(t, p2, &rel, &flags), "/a");
    cr_assert_eq(rel, p2 + 3);
    cr_assert_str_eq(rel, "b/x");
    cr_assert_eq(flags, 0);
    const char *p3 = "/a/b";
    cr_assert_str_eq(resolve_path(t, p3, &rel, &flags), "/a");
    cr_assert_str_eq(rel, "b");
    cr_assert_eq(flags, FS9_RESOLVE_INNER, "/a/b leads to /a/b/c");
    cr_assert_str_eq(resolve_path(t, "/a", &rel, &flags), "/a");
    cr_assert_eq(flags, FS9_RESOLVE_MOUNTPOINT | FS9_RESOLVE_INNER);
    cr_assert_str_eq(resolve_path(t, "/", &rel, &flags), "/");
    cr_assert_eq(flags, FS9_RESOLVE_MOUNTPOINT | FS9_RESOLVE_INNER);
    fs9_mount_table_free(t);
    cr_assert_eq(atomic_load(&released), 3);
}

Test(mount, component_boundaries_are_respected)
{
    struct fs9_mount_table *t = fs9_mount_table_new();
    mount_at(t, "/");
    mount_at(t, "/a");
    mount_at(t, "/a/b");
    const char *rel;
    unsigned flags;
    cr_assert_str_eq(resolve_path(t, "/ab", &rel, &flags), "/",
                     "/ab is not under /a");
    cr_assert_str_eq(rel, "ab");
    cr_assert_eq(flags, 0);
    cr_assert_str_eq(resolve_path(t, "/a/bc", &rel, &flags), "/a");
    cr_assert_str_eq(rel, "bc");
    cr_assert_str_eq(resolve_path(t, "/a/b", &rel, &flags), "/a/b");
    cr_assert_str_eq(rel, "");
    cr_assert_str_eq(resolve_path(t, "/a/b/c", &rel, &flags), "/a/b");
    cr_assert_str_eq(rel, "c");
    cr_assert_str_eq(resolve_path(t, "/b", &rel, &flags), "/");
    fs9_mount_table_free(t);
}

Test(mount, inner_node_without_root_mount_is_flagged_but_uncovered)
{
    struct fs9_mount_table *t = fs9_mount_table_new();
    mount_at(t, "/a/b/c");
    const char *rel = "x";
    unsigned flags;
    cr_assert_null(fs9_mount_table_resolve(t, "/a", &rel, &flags));
    cr_assert_null(rel);
    cr_assert_eq(flags, FS9_RESOLVE_INNER);
    cr_assert_null(fs9_mount_table_resolve(t, "/x", &rel, &flags));
    cr_assert_eq(flags, 0);
    cr_assert_str_eq(resolve_path(t, "/a/b/c/d", &rel, NULL), "/a/b/c");
    cr_assert_str_eq(rel, "d");
    fs9_mount_table_free(t);
}

Test(mount, add_refuses_duplicates_and_non_canonical_paths)
{
    struct fs9_mount_table *t = fs9_mount_table_new();
    mount_at(t, "/a");
    const char *bad[] = {"/a", "a", "", "/a/", "//a", "/a//b",
                         "/a/./b", "/a/../b", "/.", "/b/.."};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        struct fs9_mount *m = new_mount(bad[i]);
        int rc = fs9_mount_table_add(t, m);
        cr_assert_eq(rc, i == 0 ? -EEXIST : -EINVAL, "%s: %d", bad[i], rc);
        cr_assert_eq(atomic_load(&m->refs), 1, "no reference kept");
        fs9_mount_unref(m);
    }
    cr_assert_eq(fs9_mount_table_count(t), 1);
    fs9_mount_table_free(t);
}

/* ------------------------------------------------------------ removal */

static int refuse(struct fs9_mount *m, void *arg)
{
    (void)m;
    (*(int *)arg)++;
    return -EBUSY;
}

Test(mount, remove_hands_over_the_reference_and_checks_first)
{
    struct fs9_mount_table *t = fs9_mount_table_new();
    mount_at(t, "/");
    struct fs9_mount *a = mount_at(t, "/a");
    mount_at(t, "/a/b/c");
    struct fs9_mount *out = (void *)1;
    cr_assert_eq(fs9_mount_table_remove(t, "/x", NULL, NULL, &out), -ENOENT);
    cr_assert_null(out);
    cr_assert_eq(fs9_mount_table_remove(t, "/a/b", NULL, NULL, &out), -ENOENT,
                 "an inner node is not a mount");
    int calls = 0;
    cr_assert_eq(fs9_mount_table_remove(t, "/a", refuse, &calls, &out),
                 -EBUSY);
    cr_assert_eq(calls, 1);
    cr_assert_null(out);
    cr_assert_eq(fs9_mount_table_count(t), 3);
    cr_assert_eq(fs9_mount_table_remove(t, "/a/", NULL, NULL, &out), 0,
                 "the path is normalized");
    cr_assert_eq(out, a);
    cr_assert_eq(atomic_load(&a->refs), 1);
    cr_assert_eq(fs9_mount_table_count(t), 2);
    const char *rel;
    unsigned flags;
    cr_assert_str_eq(resolve_path(t, "/a/x", &rel, &flags), "/");
    cr_assert_str_eq(resolve_path(t, "/a/b/c/y", &rel, &flags), "/a/b/c");
    cr_assert_eq(atomic_load(&released), 0);
    fs9_mount_unref(out);
    cr_assert_eq(atomic_load(&released), 1);
    fs9_mount_table_free(t);
    cr_assert_eq(atomic_load(&released), 3);
}

static int collect_name(void *arg, const char *name)
{
    char *buf = arg;
    if (*buf)
        strcat(buf, ",");
    strcat(buf, name);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Children of dir as a sorted comma-separated list. */
static void children_of(struct fs9_mount_table *t, const char *dir,
                        char *out)
{
    char raw[512] = "";
    int n = fs9_mount_table_children(t, dir, collect_name, raw);
    char *names[32];
    int k = 0;
    for (char *s = strtok(raw, ","); s; s = strtok(NULL, ","))
        names[k++] = s;
    cr_assert_eq(n, k);
    qsort(names, (size_t)k, sizeof(*names), cmp_str);
    out[0] = '\0';
    for (int i = 0; i < k; i++) {
        if (i)
            strcat(out, ",");
        strcat(out, names[i]);
    }
}

Test(mount, children_list_mount_points_and_inner_nodes)
{
    struct fs9_mount_table *t = fs9_mount_table_new();
    mount_at(t, "/");
    mount_at(t, "/a/b/c");
    mount_at(t, "/a/d");
    mount_at(t, "/e");
    char buf[512];
    children_of(t, "/", buf);
    cr_assert_str_eq(buf, "a,e");
    children_of(t, "/a", buf);
    cr_assert_str_eq(buf, "b,d");
    children_of(t, "/a/b", buf);
    cr_assert_str_eq(buf, "c");
    children_of(t, "/a/b/c", buf);
    cr_assert_str_eq(buf, "");
    children_of(t, "/zzz", buf);
    cr_assert_str_eq(buf, "");
    cr_assert(fs9_mount_table_has_child(t, "/", "a"));
    cr_assert(fs9_mount_table_has_child(t, "/a", "b"));
    cr_assert(fs9_mount_table_has_child(t, "/a/b", "c"));
    cr_assert_not(fs9_mount_table_has_child(t, "/a", "c"));
    cr_assert_not(fs9_mount_table_has_child(t, "/", "b"));
    cr_assert_not(fs9_mount_table_has_child(t, "/x", "a"));
    cr_assert_not(fs9_mount_table_has_child(t, "/", ""));
    cr_assert_not(fs9_mount_table_has_child(t, "/", "a/b"));
    fs9_mount_table_free(t);
}

static int stop_at_second(void *arg, const char *name)
{
    (void)name;
    return ++*(int *)arg == 2 ? 42 : 0;
}

Test(mount, children_walk_stops_at_the_first_nonzero_return)
{
    struct fs9_mount_table *t = fs9_mount_table_new();
    mount_at(t, "/x");
    mount_at(t, "/y");
    mount_at(t, "/z");
    int calls = 0;
    cr_assert_eq(fs9_mount_table_children(t, "/", stop_at_second, &calls),
                 42);
    cr_assert_eq(calls, 2);
    fs9_mount_table_free(t);
}

Test(mount, remove_prunes_nodes_that_lead_nowhere)
{
    struct fs9_mount_table *t = fs9_mount_table_new();
    mount_at(t, "/a/b/c");
    mount_at(t, "/a/x");
    struct fs9_mount *m;
    char buf[512];
    cr_assert_eq(fs9_mount_table_remove(t, "/a/b/c", NULL, NULL, &m), 0);
    fs9_mount_unref(m);
    cr_assert_not(fs9_mount_table_has_child(t, "/a", "b"));
    children_of(t, "/a", buf);
    cr_assert_str_eq(buf, "x", "/a still leads to /a/x");
    cr_assert_eq(fs9_mount_table_remove(t, "/a/x", NULL, NULL, &m), 0);
    fs9_mount_unref(m);
    children_of(t, "/", buf);
    cr_assert_str_eq(buf, "");
    unsigned flags;
    cr_assert_null(fs9_mount_table_resolve(t, "/a", NULL, &flags));
    cr_assert_eq(flags, 0);
    /* A mount with mounts below keeps its node as an inner node. */
    mount_at(t, "/p");
    mount_at(t, "/p/q");
    cr_assert_eq(fs9_mount_table_remove(t, "/p", NULL, NULL, &m), 0);
    fs9_mount_unref(m);
    children_of(t, "/", buf);
    cr_assert_str_eq(buf, "p");
    cr_assert_null(fs9_mount_table_resolve(t, "/p", NULL, &flags));
    cr_assert_eq(flags, FS9_RESOLVE_INNER);
    /* ... and can be mounted again. */
    mount_at(t, "/p");
    cr_assert_str_eq(resolve_path(t, "/p/z", NULL, NULL), "/p");
    cr_assert_eq(fs9_mount_table_count(t), 2);
    fs9_mount_table_free(t);
    cr_assert_eq(atomic_load(&released), 5);
}

Test(mount, root_mount_can_be_removed_and_added_again)
{
    struct fs9_mount_table *t = fs9_mount_table_new();
    mount_at(t, "/");
    mount_at(t, "/a");
    struct fs9_mount *m;
    cr_assert_eq(fs9_mount_table_remove(t, "/", NULL, NULL, &m), 0);
    cr_assert_str_eq(m->path, "/");
    fs9_mount_unref(m);
    cr_assert_null(fs9_mount_table_resolve(t, "/b", NULL, NULL));
    cr_assert_str_eq(resolve_path(t, "/a/b", NULL, NULL), "/a");
    mount_at(t, "/");
    cr_assert_str_eq(resolve_path(t, "/b", NULL, NULL), "/");
    fs9_mount_table_free(t);
}

Test(mount, resolved_mount_outlives_its_removal_until_unref)
{
    struct fs9_mount_table *t = fs9_mount_table_new();
    mount_at(t, "/");
    mount_at(t, "/m");
    const char *rel;
    struct fs9_mount *held = fs9_mount_table_resolve(t, "/m/file", &rel, NULL);
    cr_assert_str_eq(held->path, "/m");
    cr_assert_eq(atomic_load(&held->refs), 2);
    struct fs9_mount *out;
    cr_assert_eq(fs9_mount_table_remove(t, "/m", NULL, NULL, &out), 0);
    cr_assert_eq(out, held);
    fs9_mount_unref(out);
    cr_assert_eq(atomic_load(&released), 0, "a call still holds it");
    cr_assert_str_eq(held->path, "/m");
    cr_assert_str_eq(resolve_path(t, "/m/file", NULL, NULL), "/");
    fs9_mount_unref(held);
    cr_assert_eq(atomic_load(&released), 1);
    fs9_mount_table_free(t);
}

static int record_path(void *arg, struct fs9_mount *m)
{
    char *buf = arg;
    cr_assert_geq(atomic_load(&m->refs), 2, "referenced during the call");
    strcat(buf, m->path);
    strcat(buf, " ");
    return 0;
}

static int stop_at(void *arg, struct fs9_mount *m)
{
    return strcmp(m->path, (const char *)arg) == 0 ? 7 : 0;
}

Test(mount, foreach_walks_in_path_order_and_count_matches)
{
    struct fs9_mount_table *t = fs9_mount_table_new();
    const char *paths[] = {"/z", "/a/b", "/a-b", "/", "/a", "/a/b/c", "/m/n"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(*paths); i++)
        mount_at(t, paths[i]);
    cr_assert_eq(fs9_mount_table_count(t), 7);
    char buf[256] = "";
    cr_assert_eq(fs9_mount_table_foreach(t, record_path, buf), 0);
    cr_assert_str_eq(buf, "/ /a /a/b /a/b/c /a-b /m/n /z ");
    cr_assert_eq(fs9_mount_table_foreach(t, stop_at, "/a-b"), 7);
    fs9_mount_table_free(t);
    cr_assert_eq(atomic_load(&released), 7);
}

Test(mount, ten_thousand_mounts_each_resolve_to_themselves)
{
    enum { N = 10000 };
    struct fs9_mount_table *t = fs9_mount_table_new();
    mount_at(t, "/");
    char path[128];
    /* 10,000 siblings under one node, plus a nested shape. */
    for (int i = 0; i < N; i++) {
        snprintf(path, sizeof(path), "/m/%05d", i);
        mount_at(t, path);
    }
    for (int i = 0; i < 100; i++) {
        snprintf(path, sizeof(path), "/n/%03d/x/y", i);
        mount_at(t, path);
    }
    cr_assert_eq(fs9_mount_table_count(t), 1 + N + 100);
    const char *rel;
    unsigned flags;
    for (int i = 0; i < N; i++) {
        snprintf(path, sizeof(path), "/m/%05d", i);
        cr_assert_str_eq(resolve_path(t, path, &rel, &flags), path);
        cr_assert_str_eq(rel, "");
        cr_assert_eq(flags, FS9_RESOLVE_MOUNTPOINT);
        char mp[32];
        snprintf(mp, sizeof(mp), "/m/%05d", i);
        snprintf(path, sizeof(path), "%s/deep/file", mp);
        cr_assert_str_eq(resolve_path(t, path, &rel, &flags), mp);
        cr_assert_str_eq(rel, "deep/file");
    }
    for (int i = 0; i < 100; i++) {
        char mp[32];
        snprintf(mp, sizeof(mp), "/n/%03d/x/y", i);
        snprintf(path, sizeof(path), "%s/f", mp);
        cr_assert_str_eq(resolve_path(t, path, &rel, NULL), mp);
        cr_assert_str_eq(rel, "f");
    }
    cr_assert_str_eq(resolve_path(t, "/m/10000", &rel, NULL), "/");
    cr_assert_str_eq(rel, "m/10000");
    cr_assert_eq(fs9_mount_table_children(t, "/m", NULL, NULL), N);
    /* Take them all away again: every trie node is pruned. */
    for (int i = 0; i < N; i++) {
        snprintf(path, sizeof(path), "/m/%05d", i);
        struct fs9_mount *m;
        cr_assert_eq(fs9_mount_table_remove(t, path, NULL, NULL, &m), 0);
        fs9_mount_unref(m);
    }
    cr_assert_not(fs9_mount_table_has_child(t, "/", "m"));
    cr_assert_eq(fs9_mount_table_count(t), 101);
    fs9_mount_table_free(t);
    cr_assert_eq(atomic_load(&released), 1 + N + 100);
}

Test(mount, table_free_drops_its_references)
{
    struct fs9_mount_table *t = fs9_mount_table_new();
    struct fs9_mount *m = new_mount("/keep");
    cr_assert_eq(fs9_mount_table_add(t, m), 0);
    cr_assert_eq(atomic_load(&m->refs), 2);
    fs9_mount_table_free(t);
    cr_assert_eq(atomic_load(&m->refs), 1);
    cr_assert_eq(atomic_load(&released), 0);
    fs9_mount_unref(m);
    cr_assert_eq(atomic_load(&released), 1);
}

/* ------------------------------- resolving while mounts come and go */

enum { POOL = 48, READERS = 3, WRITER_OPS = 3000, MIN_RESOLVES = 30000 };

struct churn {
    struct fs9_mount_table *t;
    char pool[POOL][32];
    atomic_int stop;
    atomic_long resolves;
    atomic_long errors;
};

/* Does the mount at `mp` cover `path`, with `rel` the right remainder? */
static int covers(const char *mp, const char *path, const char *rel)
{
    size_t n = strlen(mp);
    if (n == 1)
        return rel == path + 1;
    if (strncmp(path, mp, n) != 0)
        return 0;
    if (path[n] == '\0')
        return rel == path + n;
    return path[n] == '/' && rel == path + n + 1;
}

static void *churn_reader(void *arg)
{
    struct churn *c = arg;
    uint64_t seed = (uint64_t)(uintptr_t)&seed;
    char path[96];
    while (!atomic_load(&c->stop)) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        const char *base = c->pool[(seed >> 33) % POOL];
        switch ((seed >> 20) & 3) {
        case 0:
            snprintf(path, sizeof(path), "%s", base);
            break;
        case 1:
            snprintf(path, sizeof(path), "%s/file", base);
            break;
        case 2:
            snprintf(path, sizeof(path), "%s/d/e/f", base);
            break;
        default:
            snprintf(path, sizeof(path), "%sx/g", base);
            break;
        }
        const char *rel;
        unsigned flags;
        struct fs9_mount *m = fs9_mount_table_resolve(c->t, path, &rel, &flags);
        if (!m || !covers(m->path, path, rel))
            atomic_fetch_add(&c->errors, 1);
        if (m)
            fs9_mount_unref(m);
        (void)fs9_mount_table_has_child(c->t, "/p1", "q1");
        (void)fs9_mount_table_children(c->t, "/", NULL, NULL);
        atomic_fetch_add(&c->resolves, 1);
    }
    return NULL;
}

Test(mount, concurrent_resolves_while_mounts_come_and_go)
{
    struct churn *c = calloc(1, sizeof(*c));
    c->t = fs9_mount_table_new();
    mount_at(c->t, "/");
    for (int i = 0; i < POOL; i++) {
        switch (i % 3) {
        case 0:
            snprintf(c->pool[i], 32, "/p%d", i % 8);
            break;
        case 1:
            snprintf(c->pool[i], 32, "/p%d/q%d", i % 8, i % 5);
            break;
        default:
            snprintf(c->pool[i], 32, "/p%d/q%d/r%d", i % 8, i % 5, i);
            break;
        }
    }
    pthread_t th[READERS];
    for (int i = 0; i < READERS; i++)
        pthread_create(&th[i], NULL, churn_reader, c);
    uint64_t seed = 99;
    int adds = 0, removes = 0;
    /* Keep changing until the readers have really been at it too. */
    for (long op = 0;
         op < WRITER_OPS || atomic_load(&c->resolves) < MIN_RESOLVES; op++) {
        if ((op & 63) == 0)
            sched_yield();
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        const char *p = c->pool[(seed >> 33) % POOL];
        struct fs9_mount *m = NULL;
        if (fs9_mount_table_remove(c->t, p, NULL, NULL, &m) == 0) {
            /* The last reference: the mount is poisoned and freed unless a
             * reader still holds it (ASan reports any later use). */
            fs9_mount_unref(m);
            removes++;
        } else {
            struct fs9_mount *n = new_mount(p);
            cr_assert_eq(fs9_mount_table_add(c->t, n), 0);
            fs9_mount_unref(n);
            adds++;
        }
    }
    atomic_store(&c->stop, 1);
    for (int i = 0; i < READERS; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(atomic_load(&c->errors), 0);
    cr_assert_gt(removes, 0);
    cr_assert_eq(fs9_mount_table_count(c->t), (size_t)(1 + adds - removes));
    fs9_mount_table_free(c->t);
    cr_assert_eq(atomic_load(&released), 1 + adds);
    free(c);
}
