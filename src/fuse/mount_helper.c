/* mount_helper — see mount_helper.h. */
#include "fuse/mount_helper.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The translated command line; static so that it outlives main's use. */
static char *helper_argv[8];
static char *helper_opts; /* the joined -o lists; owned */

static void helper_fail(const char *prog, const char *what)
{
    fprintf(stderr, "%s: %s (usage: %s SPEC DIR [-sfnv] [-N NAMESPACE] "
                    "[-o OPTIONS] [-t TYPE])\n", prog, what, prog);
    exit(1);
}

/* Options mount(8) adds for its own bookkeeping that are no concern of
 * fs9: user=NAME (who mounted a "user" entry), helper=, uhelper=. */
static int mount_only_option(const char *opt)
{
    static const char *const keys[] = {"user=", "helper=", "uhelper=",
                                       NULL};
    for (int i = 0; keys[i]; i++)
        if (strncmp(opt, keys[i], strlen(keys[i])) == 0)
            return 1;
    return 0;
}

/* Append the options of one -o list to helper_opts, without mount(8)'s
 * own ones. */
static void add_options(const char *prog, const char *list)
{
    size_t old = helper_opts ? strlen(helper_opts) : 0;
    char *s = realloc(helper_opts, old + strlen(list) + 2);
    char *copy = strdup(list);
    if (!s || !copy) {
        free(copy);
        fprintf(stderr, "%s: out of memory\n", prog);
        exit(1);
    }
    helper_opts = s;
    s[old] = '\0';
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (mount_only_option(tok))
            continue;
        if (old)
            s[old++] = ',';
        strcpy(s + old, tok);
        old += strlen(tok);
    }
    free(copy);
}

/* mount -N: the mount is to be made in another mount namespace, named by
 * a file (/proc/PID/ns/mnt) or a PID.  The daemon lives there too. */
static void enter_namespace(const char *prog, const char *ns)
{
    char path[64];
    if (ns[strspn(ns, "0123456789")] == '\0') {
        snprintf(path, sizeof path, "/proc/%.20s/ns/mnt", ns);
        ns = path;
    }
    int fd = open(ns, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNS) != 0) {
        fprintf(stderr, "%s: mount namespace %s: %s\n", prog, ns,
                strerror(errno));
        exit(1);
    }
    close(fd);
}

void fs9_mount_helper_args(int *argc, char ***argv)
{
    char *prog = (*argv)[0];
    const char *base = strrchr(prog, '/');
    base = base ? base + 1 : prog;
    if (strncmp(base, "mount.", 6) != 0)
        return;

    char *pos[2];
    int npos = 0, fake = 0, verbose = 0;
    const char *ns = NULL;
    for (int i = 1; i < *argc; i++) {
        char *a = (*argv)[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: %s SPEC DIR [-sfnv] [-N NAMESPACE] [-o OPTIONS] "
                   "[-t TYPE]\n"
                   "mount(8)'s helper for fs9: runs fs9 -o OPTIONS SPEC DIR "
                   "(see mount.fs9(8), fs9 --help)\n", base);
            exit(0);
        }
        if (a[0] != '-' || !a[1]) {
            if (npos == 2)
                helper_fail(base, "too many arguments");
            pos[npos++] = a;
            continue;
        }
        /* Flags may come one by one (-s -n) or together (-sn). */
        for (const char *f = a + 1; *f; f++) {
            char opt = *f;
            if (opt == 'o' || opt == 'N' || opt == 't') {
                const char *val = f[1] ? f + 1 : (*argv)[++i];
                if (i >= *argc || !val)
                    helper_fail(base, "an option needs a value");
                if (opt == 'o')
                    add_options(base, val);
                else if (opt == 'N')
                    ns = val;
                /* -t fs9 or fuse.fs9: nothing to choose */
                break;
            }
            switch (opt) {
            case 'f': /* fake: mount nothing */
                fake = 1;
                break;
            case 'v':
                verbose = 1;
                break;
            case 's': /* sloppy: fs9 still refuses unknown options */
            case 'n': /* no /etc/mtab: fs9 never writes it */
                break;
            default: {
                char what[64];
                snprintf(what, sizeof what, "unknown option '-%c'", opt);
                helper_fail(base, what);
            }
            }
        }
    }
    if (npos < 2)
        helper_fail(base, npos ? "missing DIR" : "missing SPEC and DIR");

    int n = 0, has_opts = helper_opts && *helper_opts;
    helper_argv[n++] = prog;
    if (has_opts) {
        helper_argv[n++] = "-o";
        helper_argv[n++] = helper_opts;
    }
    helper_argv[n++] = "--";
    helper_argv[n++] = pos[0];
    helper_argv[n++] = pos[1];
    helper_argv[n] = NULL;
    if (verbose)
        fprintf(stderr, "%s: fs9%s%s %s %s%s\n", base,
                has_opts ? " -o " : "", has_opts ? helper_opts : "", pos[0],
                pos[1], ns ? " (in the mount namespace given by -N)" : "");
    if (fake)
        exit(0);
    if (ns)
        enter_namespace(base, ns);
    *argc = n;
    *argv = helper_argv;
}
