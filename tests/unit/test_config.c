/* Unit tests of configuration files (src/core/config.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"

static char file[64];
static char msgs[16][512];
static int nmsgs;

static void collect(void *arg, const char *msg)
{
    (void)arg;
    if (nmsgs < 16)
        snprintf(msgs[nmsgs++], sizeof msgs[0], "%s", msg);
}

static int load(const char *text, struct fs9_conf *c)
{
    snprintf(file, sizeof file, "/tmp/fs9-conf-test-%d.conf", getpid());
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    nmsgs = 0;
    int n = fs9_conf_load(file, c, collect, NULL);
    unlink(file);
    return n;
}

/* Does some message mention "FILE:LINE: ...text..."? */
static int reported(int line, const char *text)
{
    char prefix[128];
    snprintf(prefix, sizeof prefix, "%s:%d: ", file, line);
    for (int i = 0; i < nmsgs; i++)
        if (strncmp(msgs[i], prefix, strlen(prefix)) == 0 &&
            strstr(msgs[i], text))
            return 1;
    return 0;
}

Test(config, sections_settings_and_lines_are_read_in_order)
{
    struct fs9_conf c;
    int n = load("# comment\n[fs9]\ntimeout = 5\nplugin = a.so\nplugin = b.so\n"
                 "\n[mount /]\nprovider = memfs\nsize = 1G ; inline\n"
                 "[mount //data/./x/]\nprovider=localfs\nroot : /srv\n",
                 &c);
    cr_assert_eq(n, 0, "%s", nmsgs ? msgs[0] : "");
    cr_assert_eq(c.nglobals, 3);
    cr_assert_str_eq(c.globals[0].key, "timeout");
    cr_assert_eq(c.globals[0].line, 3);
    cr_assert_str_eq(c.globals[2].value, "b.so");
    cr_assert_eq(c.nmounts, 2);
    cr_assert_str_eq(c.mounts[0].path, "/");
    cr_assert_str_eq(c.mounts[0].provider, "memfs");
    cr_assert_eq(c.mounts[0].line, 7);
    cr_assert_eq(c.mounts[0].provider_line, 8);
    cr_assert_str_eq(c.mounts[0].items[0].value, "1G");
    cr_assert_str_eq(c.mounts[1].path, "/data/x", "paths are normalized");
    cr_assert_str_eq(c.mounts[1].items[0].key, "root");
    cr_assert_eq(c.mounts[1].items[0].line, 12);
    fs9_conf_free(&c);
}

Test(config, every_structural_problem_is_reported_with_its_line)
{
    struct fs9_conf c;
    int n = load("[mount /a]\nprovider = memfs\n"  /* 1-2 */
                 "[mount /a]\nprovider = memfs\n"  /* 3-4: duplicate */
                 "[mount rel]\nprovider = memfs\n" /* 5-6: bad path */
                 "[bogus]\nx = 1\n"                /* 7-8: section */
                 "[mount /b]\nsize = 1\n"          /* 9-10: no provider */
                 "[mount /c]\nprovider = a\nprovider = b\n" /* 11-13 */
                 "[mount /.fs9/x]\nprovider = memfs\n"      /* 14-15 */
                 "[fs9]\nnot a setting\n",                  /* 16-17 */
                 &c);
    cr_assert_eq(n, 7, "got %d problems", n);
    cr_assert(reported(3, "duplicate mount path /a (first at line 1)"));
    cr_assert(reported(5, "bad mount path 'rel'"));
    cr_assert(reported(7, "unknown section [bogus]"));
    cr_assert(reported(9, "has no provider"));
    cr_assert(reported(13, "duplicate key 'provider'"));
    cr_assert(reported(14, "reserved"));
    cr_assert(reported(17, "syntax error"));
    fs9_conf_free(&c);
}

Test(config, settings_outside_a_section_and_duplicate_keys_are_refused)
{
    struct fs9_conf c;
    int n = load("stray = 1\n[mount /]\nprovider = memfs\nsize = 1\nsize = 2\n",
                 &c);
    cr_assert_eq(n, 2);
    cr_assert(reported(1, "outside any section"));
    cr_assert(reported(5, "duplicate key 'size'"));
    fs9_conf_free(&c);
}

Test(config, unreadable_file_is_an_errno)
{
    struct fs9_conf c;
    cr_assert_eq(fs9_conf_load("/nonexistent/x.conf", &c, collect, NULL),
                 -ENOENT);
    fs9_conf_free(&c);
}

Test(config, provider_messages_map_back_to_the_line_of_their_key)
{
    struct fs9_conf_item items[] = {
        {.key = "size", .value = "x", .line = 4},
        {.key = "root", .value = "/nope", .line = 7},
    };
    cr_assert_eq(fs9_conf_line_of(items, 2, "unknown key 'root'", 1), 7);
    cr_assert_eq(fs9_conf_line_of(items, 2, "root=/nope: No such file", 1), 7);
    cr_assert_eq(fs9_conf_line_of(items, 2, "size: expected a number", 1), 4);
    cr_assert_eq(fs9_conf_line_of(items, 2, "cannot start", 1), 1);
    cr_assert_eq(fs9_conf_line_of(items, 2, "oversized thing", 1), 1,
                 "a key inside a word does not count");
}
