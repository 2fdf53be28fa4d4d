/*
 * test_plugin — the plugin loader: every shared object that breaks a rule
 * is refused with one message naming its file, while good plugins in the
 * same directory still load; the real plugins load, register under their
 * names and mount through the namespace.
 *
 * The broken plugins are built from tests/plugins/broken.c into
 * FS9_TEST_PLUGIN_DIR; the real ones into FS9_PLUGIN_BUILD_DIR.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/namespace.h"
#include "core/plugin.h"
#include "core/router.h"

static struct fs9_ns *ns;

static void setup(void)
{
    struct fs9_ns_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.dispatch.threads = 2;
    cfg.dispatch.max_inflight = 64;
    cfg.owner = getuid();
    ns = fs9_ns_new(&cfg);
    cr_assert_not_null(ns);
}

static void teardown(void)
{
    fs9_ns_free(ns);
    ns = NULL;
}

TestSuite(plugin, .init = setup, .fini = teardown);

/* ---- one file at a time ---- */

static void test_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s.so", FS9_TEST_PLUGIN_DIR, name);
}

/* Loading `name` fails with `rc`; the message starts with the file and
 * mentions `phrase`. */
static void expect_refused(const char *name, int rc, const char *phrase)
{
    char path[4096], err[1024];
    test_path(path, sizeof path, name);
    int got = fs9_plugin_load(ns, path, err, sizeof err);
    cr_assert_eq(got, rc, "%s: rc %d, expected %d (%s)", name, got, rc, err);
    cr_assert_eq(strncmp(err, path, strlen(path)), 0,
                 "message does not start with the file: %s", err);
    cr_assert_not_null(strstr(err, phrase), "%s: message '%s' lacks '%s'",
                       name, err, phrase);
    cr_assert_null(strchr(err, '\n'), "one line: %s", err);
}

Test(plugin, wrong_abi_version_is_refused_naming_the_file)
{
    expect_refused("bad_abi", -EINVAL, "built for provider ABI 99");
}

Test(plugin, missing_entry_symbol_is_refused)
{
    expect_refused("no_entry", -EINVAL, "no fs9_provider_entry symbol");
}

Test(plugin, null_table_is_refused)
{
    expect_refused("null_table", -EINVAL, "returned no provider table");
}

Test(plugin, table_of_another_size_is_refused)
{
    expect_refused("bad_size", -EINVAL, "provider table is");
    char path[4096], err[1024];
    test_path(path, sizeof path, "bad_size");
    fs9_plugin_load(ns, path, err, sizeof err);
    char want[64];
    snprintf(want, sizeof want, "expects %zu",
             sizeof(struct fs9_provider_ops));
    cr_assert_not_null(strstr(err, want), "%s", err);
}

Test(plugin, missing_required_function_is_refused)
{
    expect_refused("no_read", -EINVAL, "lacks the required function 'read'");
}

Test(plugin, bad_name_is_refused)
{
    expect_refused("bad_name", -EINVAL, "provider name 'Bad Name!'");
}

Test(plugin, name_of_a_builtin_is_refused)
{
    expect_refused("dup_memfs", -EEXIST,
                   "provider 'memfs' is already registered (by built-in)");
    const struct fs9_catalog_entry *e = fs9_ns_find_provider(ns, "memfs");
    cr_assert_not_null(e);
    cr_assert_str_eq(e->origin, "built-in", "the built-in stays");
}

Test(plugin, second_plugin_with_one_name_is_refused)
{
    char a[4096], err[1024];
    test_path(a, sizeof a, "twin_a");
    cr_assert_eq(fs9_plugin_load(ns, a, err, sizeof err), 0, "%s", err);
    expect_refused("twin_b", -EEXIST, "provider 'twin' is already registered");
    char want[4200];
    snprintf(want, sizeof want, "(by %s)", a);
    char b[4096];
    test_path(b, sizeof b, "twin_b");
    fs9_plugin_load(ns, b, err, sizeof err);
    cr_assert_not_null(strstr(err, want), "names the first: %s", err);
    cr_assert_str_eq(fs9_ns_find_provider(ns, "twin")->origin, a);
}

Test(plugin, same_file_twice_is_refused_the_second_time)
{
    char path[4096], err[1024];
    test_path(path, sizeof path, "good");
    cr_assert_eq(fs9_plugin_load(ns, path, err, sizeof err), 0, "%s", err);
    cr_assert_eq(fs9_plugin_load(ns, path, err, sizeof err), -EEXIST);
    cr_assert_not_null(strstr(err, "already registered"), "%s", err);
}

Test(plugin, not_a_shared_object_is_refused)
{
    char dir[] = "/tmp/fs9-plugin-test.XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[4200], err[1024];
    snprintf(path, sizeof path, "%s/garbage.so", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("not an ELF file\n", f);
    fclose(f);
    int rc = fs9_plugin_load(ns, path, err, sizeof err);
    cr_assert_eq(rc, -ENOEXEC, "%s", err);
    cr_assert_eq(strncmp(err, path, strlen(path)), 0, "%s", err);
    cr_assert_not_null(strstr(err, "cannot load"), "%s", err);
    snprintf(path, sizeof path, "%s/missing.so", dir);
    cr_assert_eq(fs9_plugin_load(ns, path, err, sizeof err), -ENOEXEC);
    snprintf(path, sizeof path, "%s/garbage.so", dir);
    unlink(path);
    rmdir(dir);
}

/* ---- a whole directory ---- */

struct reports {
    char msgs[16][1024];
    int n;
};

static void collect(void *arg, const char *msg)
{
    struct reports *r = arg;
    cr_assert_lt(r->n, 16);
    snprintf(r->msgs[r->n++], sizeof r->msgs[0], "%s", msg);
}

/* The report naming `file`, or NULL. */
static const char *report_for(const struct reports *r, const char *file)
{
    char path[4096];
    test_path(path, sizeof path, file);
    for (int i = 0; i < r->n; i++)
        if (strncmp(r->msgs[i], path, strlen(path)) == 0)
            return r->msgs[i];
    return NULL;
}

Test(plugin, directory_load_refuses_each_broken_plugin_and_loads_the_good)
{
    struct reports r = {.n = 0};
    int loaded = fs9_plugin_load_dir(ns, FS9_TEST_PLUGIN_DIR, collect, &r);
    cr_assert_eq(loaded, 2, "good and the first twin load: %d", loaded);
    cr_assert_not_null(fs9_ns_find_provider(ns, "good"));
    cr_assert_not_null(fs9_ns_find_provider(ns, "twin"));
    static const struct {
        const char *file, *phrase;
    } want[] = {
        {"bad_abi", "ABI"},
        {"bad_name", "Bad Name!"},
        {"bad_size", "provider table is"},
        {"dup_memfs", "'memfs' is already registered"},
        {"no_entry", "no fs9_provider_entry symbol"},
        {"no_read", "'read'"},
        {"null_table", "no provider table"},
        {"twin_b", "'twin' is already registered"},
    };
    size_t nwant = sizeof want / sizeof want[0];
    cr_assert_eq(r.n, (int)nwant, "one report per broken plugin, got %d",
                 r.n);
    for (size_t i = 0; i < nwant; i++) {
        const char *m = report_for(&r, want[i].file);
        cr_assert_not_null(m, "no report names %s.so", want[i].file);
        cr_assert_not_null(strstr(m, want[i].phrase), "%s: '%s' lacks '%s'",
                           want[i].file, m, want[i].phrase);
    }
    cr_assert_null(report_for(&r, "good"));
    cr_assert_null(report_for(&r, "twin_a"));
}

Test(plugin, good_plugin_from_a_mixed_directory_mounts)
{
    fs9_plugin_load_dir(ns, FS9_TEST_PLUGIN_DIR, NULL, NULL);
    char err[512];
    int rc = fs9_ns_mount(ns, "/", "good", NULL, 0, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    struct fs9_route r;
    cr_assert_eq(fs9_ns_route(ns, "/", &r), 0);
    struct fs9_attr a;
    struct fs9_ctx ctx = {.uid = 0, .gid = 0};
    cr_assert_eq(fs9_ns_stat(ns, &ctx, &r, NULL, &a), 0);
    cr_assert(S_ISDIR(a.mode));
    fs9_route_end(&r);
}

Test(plugin, missing_directory_is_an_error)
{
    cr_assert_eq(fs9_plugin_load_dir(ns, "/nonexistent/fs9/plugins", NULL,
                                     NULL),
                 -ENOENT);
}

/* ---- the real plugins ---- */

Test(plugin, the_four_plugins_load_with_their_names_and_versions)
{
    struct reports r = {.n = 0};
    int loaded = fs9_plugin_load_dir(ns, FS9_PLUGIN_BUILD_DIR, collect, &r);
    cr_assert_eq(r.n, 0, "refused: %s", r.n ? r.msgs[0] : "");
    cr_assert_geq(loaded, 4);
    static const char *const names[] = {"hellofs", "kvfs", "streamfs",
                                        "pubsubfs"};
    for (size_t i = 0; i < 4; i++) {
        const struct fs9_catalog_entry *e = fs9_ns_find_provider(ns, names[i]);
        cr_assert_not_null(e, "%s not registered", names[i]);
        cr_assert_not_null(e->dl, "%s: a plugin keeps its dlopen handle",
                           names[i]);
        cr_assert_not_null(strstr(e->origin, names[i]), "%s", e->origin);
        cr_assert_str_eq(e->ops->version, "1.0.0");
        cr_assert_not_null(e->ops->description);
    }
    cr_assert_str_eq(fs9_ns_find_provider(ns, "hellofs")->ops->arg_key,
                     "greeting");
}

Test(plugin, plugin_settings_errors_reach_the_mount_message)
{
    fs9_plugin_load_dir(ns, FS9_PLUGIN_BUILD_DIR, NULL, NULL);
    struct fs9_config_item bad = {.key = "colour", .value = "blue"};
    char err[512];
    int rc = fs9_ns_mount(ns, "/", "hellofs", &bad, 1, err, sizeof err);
    cr_assert_eq(rc, -EINVAL);
    cr_assert_not_null(strstr(err, "hellofs at /: unknown key 'colour'"),
                       "%s", err);
    struct fs9_config_item ok = {.key = "greeting", .value = "Hi"};
    rc = fs9_ns_mount(ns, "/", "hellofs", &ok, 1, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    const char *const others[] = {"kvfs", "streamfs", "pubsubfs"};
    const char *const at[] = {"/kv", "/streams", "/topics"};
    for (int i = 0; i < 3; i++) {
        rc = fs9_ns_mount(ns, at[i], others[i], NULL, 0, err, sizeof err);
        cr_assert_eq(rc, 0, "%s: %s", others[i], err);
        rc = fs9_ns_mount(ns, "/x", others[i], &bad, 1, err, sizeof err);
        cr_assert_eq(rc, -EINVAL, "%s takes no colour", others[i]);
        cr_assert_not_null(strstr(err, "unknown key 'colour'"), "%s", err);
    }
}
