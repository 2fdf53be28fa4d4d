/* Unit tests of the FUSE inode table (src/core/inode.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/inode.h"

#define DIR_T S_IFDIR
#define REG_T S_IFREG

static struct fs9_inode_table *t;

static void setup(void)
{
    t = fs9_inode_table_new();
    cr_assert_not_null(t);
}

static void teardown(void)
{
    fs9_inode_table_free(t);
}

TestSuite(inode, .init = setup, .fini = teardown);

static const char *path_of(uint64_t id)
{
    static char buf[4096];
    int rc = fs9_inode_path(t, id, NULL, buf, sizeof buf);
    if (rc < 0)
        snprintf(buf, sizeof buf, "<%d>", rc);
    return buf;
}

Test(inode, root_path_is_slash_and_child_paths_join)
{
    char buf[64];
    cr_assert_eq(fs9_inode_path(t, FS9_ROOT_NODEID, NULL, buf, sizeof buf),
                 1);
    cr_assert_str_eq(buf, "/");
    cr_assert_eq(fs9_inode_path(t, FS9_ROOT_NODEID, "x", buf, sizeof buf),
                 2);
    cr_assert_str_eq(buf, "/x");
    uint64_t a = fs9_inode_enter(t, FS9_ROOT_NODEID, "a", 10, DIR_T, 1);
    uint64_t b = fs9_inode_enter(t, a, "b c", 11, REG_T, 1);
    cr_assert_str_eq(path_of(b), "/a/b c");
    cr_assert_eq(fs9_inode_path(t, a, "z", buf, sizeof buf), 4);
    cr_assert_str_eq(buf, "/a/z");
}

Test(inode, same_entry_same_object_gives_same_nodeid_and_counts_lookups)
{
    uint64_t a1 = fs9_inode_enter(t, FS9_ROOT_NODEID, "a", 10, REG_T, 1);
    uint64_t a2 = fs9_inode_enter(t, FS9_ROOT_NODEID, "a", 10, REG_T, 1);
    cr_assert_eq(a1, a2);
    cr_assert_eq(fs9_inode_find(t, FS9_ROOT_NODEID, "a"), a1);
    fs9_inode_forget(t, a1, 1);
    cr_assert_str_eq(path_of(a1), "/a", "one lookup is still held");
    fs9_inode_forget(t, a1, 1);
    cr_assert_eq(fs9_inode_path(t, a1, NULL, (char[8]){0}, 8), -ESTALE);
    cr_assert_eq(fs9_inode_find(t, FS9_ROOT_NODEID, "a"), 0);
    cr_assert_eq(fs9_inode_count(t), 1, "only the root is left");
}

Test(inode, forget_multi_counts_are_summed)
{
    uint64_t a = fs9_inode_enter(t, FS9_ROOT_NODEID, "a", 10, REG_T, 5);
    fs9_inode_forget(t, a, 3);
    cr_assert_str_eq(path_of(a), "/a");
    fs9_inode_forget(t, a, 2);
    cr_assert_eq(fs9_inode_info(t, a, NULL, NULL), -ESTALE);
}

Test(inode, replaced_entry_gets_new_nodeid_and_old_node_is_detached)
{
    uint64_t old = fs9_inode_enter(t, FS9_ROOT_NODEID, "f", 10, REG_T, 1);
    uint64_t neu = fs9_inode_enter(t, FS9_ROOT_NODEID, "f", 20, REG_T, 1);
    cr_assert_neq(old, neu);
    char buf[64];
    cr_assert_eq(fs9_inode_path(t, old, NULL, buf, sizeof buf), -ENOENT);
    cr_assert_str_eq(path_of(neu), "/f");
    /* A type change on the same ino also makes a new node. */
    uint64_t dir = fs9_inode_enter(t, FS9_ROOT_NODEID, "f", 20, DIR_T, 1);
    cr_assert_neq(dir, neu);
}

Test(inode, nodeids_are_never_reused)
{
    uint64_t seen[1000];
    for (int i = 0; i < 1000; i++) {
        seen[i] = fs9_inode_enter(t, FS9_ROOT_NODEID, "x", (uint64_t)i + 2,
                                  REG_T, 1);
        fs9_inode_forget(t, seen[i], 1);
        for (int j = 0; j < i; j++)
            cr_assert_neq(seen[i], seen[j]);
        cr_assert_neq(seen[i], FS9_ROOT_NODEID);
    }
}

Test(inode, directory_rename_moves_every_descendant)
{
    uint64_t a = fs9_inode_enter(t, FS9_ROOT_NODEID, "a", 10, DIR_T, 1);
    uint64_t b = fs9_inode_enter(t, a, "b", 11, DIR_T, 1);
    uint64_t c = fs9_inode_enter(t, b, "c", 12, REG_T, 1);
    uint64_t x = fs9_inode_enter(t, FS9_ROOT_NODEID, "x", 13, DIR_T, 1);
    fs9_inode_rename(t, FS9_ROOT_NODEID, "a", x, "moved", 0);
    cr_assert_str_eq(path_of(c), "/x/moved/b/c");
    cr_assert_str_eq(path_of(b), "/x/moved/b");
    cr_assert_eq(fs9_inode_find(t, FS9_ROOT_NODEID, "a"), 0);
    cr_assert_eq(fs9_inode_find(t, x, "moved"), a);
}

Test(inode, rename_onto_existing_entry_detaches_the_target)
{
    uint64_t a = fs9_inode_enter(t, FS9_ROOT_NODEID, "a", 10, REG_T, 1);
    uint64_t b = fs9_inode_enter(t, FS9_ROOT_NODEID, "b", 11, REG_T, 1);
    fs9_inode_rename(t, FS9_ROOT_NODEID, "a", FS9_ROOT_NODEID, "b", 0);
    cr_assert_str_eq(path_of(a), "/b");
    char buf[64];
    cr_assert_eq(fs9_inode_path(t, b, NULL, buf, sizeof buf), -ENOENT);
    cr_assert_eq(fs9_inode_find(t, FS9_ROOT_NODEID, "b"), a);
}

Test(inode, rename_exchange_swaps_entries)
{
    uint64_t d1 = fs9_inode_enter(t, FS9_ROOT_NODEID, "d1", 10, DIR_T, 1);
    uint64_t d2 = fs9_inode_enter(t, FS9_ROOT_NODEID, "d2", 11, DIR_T, 1);
    uint64_t f = fs9_inode_enter(t, d1, "f", 12, REG_T, 1);
    uint64_t g = fs9_inode_enter(t, d2, "g", 13, REG_T, 1);
    fs9_inode_rename(t, d1, "f", d2, "g", 1);
    cr_assert_str_eq(path_of(f), "/d2/g");
    cr_assert_str_eq(path_of(g), "/d1/f");
}

Test(inode, unlink_detaches_but_open_handle_keeps_node_reachable)
{
    uint64_t f = fs9_inode_enter(t, FS9_ROOT_NODEID, "f", 10, REG_T, 1);
    fs9_inode_handle_add(t, f, 77);
    fs9_inode_handle_add(t, f, 78);
    fs9_inode_unlink(t, FS9_ROOT_NODEID, "f");
    char buf[64];
    cr_assert_eq(fs9_inode_path(t, f, NULL, buf, sizeof buf), -ENOENT);
    uint64_t fh = fs9_inode_handle_any(t, f);
    cr_assert(fh == 77 || fh == 78);
    fs9_inode_handle_del(t, f, 78);
    cr_assert_eq(fs9_inode_handle_any(t, f), 77);
    fs9_inode_handle_del(t, f, 77);
    cr_assert_eq(fs9_inode_handle_any(t, f), 0);
    /* A new file (another ino) of the same name is a new node. */
    uint64_t f2 = fs9_inode_enter(t, FS9_ROOT_NODEID, "f", 11, REG_T, 1);
    cr_assert_neq(f, f2);
}

Test(inode, children_pin_their_parent_until_forgotten)
{
    uint64_t a = fs9_inode_enter(t, FS9_ROOT_NODEID, "a", 10, DIR_T, 1);
    uint64_t b = fs9_inode_enter(t, a, "b", 11, REG_T, 1);
    fs9_inode_forget(t, a, 1); /* the kernel forgot a first (it may) */
    cr_assert_str_eq(path_of(b), "/a/b", "b still reaches its parent");
    cr_assert_eq(fs9_inode_count(t), 3);
    fs9_inode_forget(t, b, 1);
    cr_assert_eq(fs9_inode_count(t), 1, "both freed once b goes");
}

Test(inode, probe_with_zero_count_creates_nothing)
{
    cr_assert_eq(fs9_inode_enter(t, FS9_ROOT_NODEID, "nope", 5, REG_T, 0),
                 0);
    cr_assert_eq(fs9_inode_count(t), 1);
}

Test(inode, hard_links_of_one_object_share_one_nodeid)
{
    uint64_t d = fs9_inode_enter(t, FS9_ROOT_NODEID, "d", 5, DIR_T, 1);
    uint64_t f = fs9_inode_enter(t, FS9_ROOT_NODEID, "f", 10, REG_T, 1);
    uint64_t g = fs9_inode_enter(t, d, "g", 10, REG_T, 1);
    cr_assert_eq(f, g, "a second name of the same ino is the same node");
    cr_assert_eq(fs9_inode_find(t, d, "g"), f);
    /* Removing one name leaves the object reachable by the other. */
    fs9_inode_unlink(t, FS9_ROOT_NODEID, "f");
    cr_assert_str_eq(path_of(f), "/d/g");
    cr_assert_eq(fs9_inode_find(t, FS9_ROOT_NODEID, "f"), 0);
    fs9_inode_unlink(t, d, "g");
    char buf[64];
    cr_assert_eq(fs9_inode_path(t, f, NULL, buf, sizeof buf), -ENOENT);
    /* A new name for it (link of an open, unlinked file) revives it. */
    cr_assert_eq(fs9_inode_enter(t, d, "back", 10, REG_T, 1), f);
    cr_assert_str_eq(path_of(f), "/d/back");
}

Test(inode, rename_between_two_links_of_one_object_changes_nothing)
{
    uint64_t f = fs9_inode_enter(t, FS9_ROOT_NODEID, "f", 10, REG_T, 1);
    fs9_inode_enter(t, FS9_ROOT_NODEID, "g", 10, REG_T, 1);
    fs9_inode_rename(t, FS9_ROOT_NODEID, "f", FS9_ROOT_NODEID, "g", 0);
    cr_assert_eq(fs9_inode_find(t, FS9_ROOT_NODEID, "f"), f);
    cr_assert_eq(fs9_inode_find(t, FS9_ROOT_NODEID, "g"), f);
}

Test(inode, directory_moved_behind_our_back_keeps_its_node_under_new_name)
{
    uint64_t a = fs9_inode_enter(t, FS9_ROOT_NODEID, "a", 7, DIR_T, 1);
    uint64_t c = fs9_inode_enter(t, a, "c", 8, REG_T, 1);
    /* The provider now shows the same directory (ino 7) as "b". */
    uint64_t b = fs9_inode_enter(t, FS9_ROOT_NODEID, "b", 7, DIR_T, 1);
    cr_assert_eq(a, b);
    cr_assert_eq(fs9_inode_find(t, FS9_ROOT_NODEID, "a"), 0,
                 "a directory has one name");
    cr_assert_str_eq(path_of(c), "/b/c");
}

Test(inode, forget_frees_every_entry_of_a_linked_object)
{
    uint64_t f = fs9_inode_enter(t, FS9_ROOT_NODEID, "f", 10, REG_T, 1);
    fs9_inode_enter(t, FS9_ROOT_NODEID, "g", 10, REG_T, 1);
    fs9_inode_forget(t, f, 2);
    cr_assert_eq(fs9_inode_find(t, FS9_ROOT_NODEID, "f"), 0);
    cr_assert_eq(fs9_inode_find(t, FS9_ROOT_NODEID, "g"), 0);
    cr_assert_eq(fs9_inode_count(t), 1);
}

Test(inode, too_small_buffer_is_enametoolong_and_unknown_parent_fails)
{
    uint64_t a = fs9_inode_enter(t, FS9_ROOT_NODEID, "abcdef", 10, DIR_T, 1);
    char buf[4];
    cr_assert_eq(fs9_inode_path(t, a, NULL, buf, sizeof buf), -ENAMETOOLONG);
    cr_assert_eq(fs9_inode_enter(t, 999999, "x", 1, REG_T, 1), 0);
    cr_assert_eq(fs9_inode_path(t, 999999, NULL, buf, sizeof buf), -ESTALE);
}

Test(inode, many_entries_in_one_directory_are_found)
{
    char name[32];
    static uint64_t ids[50000];
    for (int i = 0; i < 50000; i++) {
        snprintf(name, sizeof name, "file%d", i);
        ids[i] = fs9_inode_enter(t, FS9_ROOT_NODEID, name, (uint64_t)i + 100,
                                 REG_T, 1);
    }
    for (int i = 0; i < 50000; i += 7) {
        snprintf(name, sizeof name, "file%d", i);
        cr_assert_eq(fs9_inode_find(t, FS9_ROOT_NODEID, name), ids[i]);
    }
    cr_assert_eq(fs9_inode_count(t), 50001);
}

/* Several threads entering, renaming, building paths and forgetting in
 * shared directories at once: nothing crashes (ASan/TSan), every path
 * built is absolute, and everything is freed at the end. */
struct worker {
    int id;
    uint64_t dirs[4];
};

static void *churn(void *arg)
{
    struct worker *w = arg;
    char name[32], buf[4096];
    for (int i = 0; i < 20000; i++) {
        uint64_t dir = w->dirs[i % 4];
        snprintf(name, sizeof name, "t%d-%d", w->id, i % 64);
        uint64_t n = fs9_inode_enter(t, dir, name, (uint64_t)(i % 64) + 1000,
                                     REG_T, 1);
        if (!n)
            continue;
        int rc = fs9_inode_path(t, n, NULL, buf, sizeof buf);
        if (rc > 0 && buf[0] != '/')
            return (void *)1;
        if (i % 3 == 0) {
            char to[32];
            snprintf(to, sizeof to, "r%d-%d", w->id, i % 64);
            fs9_inode_rename(t, dir, name, w->dirs[(i + 1) % 4], to, 0);
        }
        if (i % 5 == 0)
            fs9_inode_unlink(t, dir, name);
        fs9_inode_forget(t, n, 1);
    }
    return NULL;
}

Test(inode, concurrent_enter_rename_path_forget_is_consistent)
{
    uint64_t dirs[4];
    char name[8];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "d%d", i);
        dirs[i] = fs9_inode_enter(t, FS9_ROOT_NODEID, name, (uint64_t)i + 2,
                                  DIR_T, 1);
    }
    pthread_t th[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i].id = i;
        memcpy(w[i].dirs, dirs, sizeof dirs);
        pthread_create(&th[i], NULL, churn, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        cr_assert_null(ret, "a path was not absolute");
    }
    for (int i = 0; i < 4; i++)
        fs9_inode_forget(t, dirs[i], 1);
    cr_assert_eq(fs9_inode_count(t), 1, "every node freed");
}
