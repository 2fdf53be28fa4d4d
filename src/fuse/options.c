/* options — see options.h. */
#include "fuse/options.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "fs9_config.h"

/* Kernel mount options libfuse understands: passed through. */
static const char *const fuse_passthrough[] = {
    "allow_other", "allow_root", "auto_unmount", "default_permissions",
    "rw", "ro", "suid", "nosuid", "dev", "nodev", "exec", "noexec",
    "atime", "noatime", "sync", "async", "dirsync", NULL,
};

/* key=value options for libfuse. */
static const char *const fuse_passthrough_kv[] = {
    "subtype", "context", "fscontext",
    "defcontext", "rootcontext", NULL,
};

/* What mount(8) and fstab put in the option string that means nothing to a
 * FUSE daemon: accepted and ignored so `mount` and fstab entries work. */
static const char *const generic_ignored[] = {
    "defaults", "nofail", "_netdev", "noauto", "auto", "user", "users",
    "nouser", "owner", "group", "nofail", "loud", "silent", "bg", "fg",
    /* atime policies libfuse does not take: providers keep atime themselves
     * (memfs applies relatime rules), so these change nothing here. */
    "relatime", "norelatime", "strictatime", "nostrictatime", "diratime",
    "nodiratime", "lazytime", "nolazytime",
    NULL,
};

static int in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return 1;
    return 0;
}

static int append_fuse_opt(struct fs9_cmdline *c, const char *opt)
{
    size_t old = c->fuse_opts ? strlen(c->fuse_opts) : 0;
    char *s = realloc(c->fuse_opts, old + strlen(opt) + 2);
    if (!s)
        return -1;
    if (old)
        s[old++] = ',';
    strcpy(s + old, opt);
    c->fuse_opts = s;
    return 0;
}

int fs9_cmdline_add_item(struct fs9_cmdline *c, const char *key,
                         const char *val)
{
    struct fs9_config_item *v =
        realloc(c->items, (c->nitems + 1) * sizeof *v);
    if (!v)
        return -1;
    c->items = v;
    v[c->nitems].key = strdup(key);
    v[c->nitems].value = strdup(val);
    if (!v[c->nitems].key || !v[c->nitems].value)
        return -1;
    c->nitems++;
    return 0;
}

/* Where the option being parsed reports what is wrong with it. */
struct opt_err {
    char *buf;
    size_t len;
};
static _Thread_local struct opt_err oerr;

static void opt_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static void opt_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(oerr.buf, oerr.len, fmt, ap);
    va_end(ap);
}

static int parse_double(const char *key, const char *val, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(val, &end);
    if (errno || end == val || *end || d < 0) {
        opt_error("option %s=%s: expected a number of seconds (0 or more)",
                  key, val);
        return -1;
    }
    *out = d;
    return 0;
}

static int parse_uint(const char *key, const char *val, unsigned lo,
                      unsigned hi, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(val, &end, 10);
    if (errno || end == val || *end || v < lo || v > hi) {
        opt_error("option %s=%s: expected a whole number from %u to %u", key,
                  val, lo, hi);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

static int parse_bool(const char *key, const char *val, int *out)
{
    if (!val || !strcmp(val, "1") || !strcmp(val, "yes") ||
        !strcmp(val, "true") || !strcmp(val, "on")) {
        *out = 1;
        return 0;
    }
    if (!strcmp(val, "0") || !strcmp(val, "no") || !strcmp(val, "false") ||
        !strcmp(val, "off")) {
        *out = 0;
        return 0;
    }
    opt_error("option %s=%s: expected 0 or 1", key, val);
    return -1;
}

/* One option; `val` NULL for a bare word.  Returns 0, -1 with the reason
 * in oerr, or -2 when a value is missing. */
static int parse_one(struct fs9_cmdline *c, const char *key, const char *val,
                     int provider_items)
{

    if (!val && in_list(generic_ignored, key))
        return 0;
    if (!strncmp(key, "x-", 2) || !strcmp(key, "comment"))
        return 0; /* fstab annotations for other tools */
    if (!val && in_list(fuse_passthrough, key)) {
        if (!strcmp(key, "ro"))
            c->read_only = 1;
        if (!strcmp(key, "rw"))
            c->read_only = 0;
        return append_fuse_opt(c, key);
    }
    if (val && in_list(fuse_passthrough_kv, key)) {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s=%s", key, val);
        return append_fuse_opt(c, buf);
    }
    if (val && !strcmp(key, "plugin_dir")) {
        free(c->plugin_dir);
        c->plugin_dir = strdup(val);
        return c->plugin_dir ? 0 : -1;
    }
    if (val && !strcmp(key, "plugin")) {
        char **v = realloc(c->plugins, (c->nplugins + 1) * sizeof *v);
        if (!v)
            return -1;
        c->plugins = v;
        v[c->nplugins] = strdup(val);
        return v[c->nplugins++] ? 0 : -1;
    }
    if (val && !strcmp(key, "fsname")) {
        free(c->fsname);
        c->fsname = strdup(val);
        return c->fsname ? 0 : -1;
    }
    if (!strcmp(key, "entry_timeout"))
        return val ? parse_double(key, val, &c->fuse.entry_timeout) : -2;
    if (!strcmp(key, "attr_timeout"))
        return val ? parse_double(key, val, &c->fuse.attr_timeout) : -2;
    if (!strcmp(key, "negative_timeout"))
        return val ? parse_double(key, val, &c->fuse.negative_timeout) : -2;
    if (!strcmp(key, "external_timeout"))
        return val ? parse_double(key, val, &c->fuse.ext_timeout) : -2;
    if (!strcmp(key, "timeout"))
        return val ? parse_double(key, val, &c->dispatch.timeout) : -2;
    if (!strcmp(key, "writeback") || !strcmp(key, "writeback_cache"))
        return parse_bool(key, val, &c->fuse.writeback);
    if (!strcmp(key, "kernel_cache"))
        return parse_bool(key, val, &c->fuse.kernel_cache);
    if (!strcmp(key, "direct_io"))
        return parse_bool(key, val, &c->fuse.direct_io);
    if (!strcmp(key, "noxattr"))
        return parse_bool(key, val, &c->fuse.noxattr);
    if (!strcmp(key, "kernel_killpriv"))
        return parse_bool(key, val, &c->fuse.kernel_killpriv);
    if (!strcmp(key, "inline"))
        return parse_bool(key, val, &c->fuse.inline_calls);
    if (!strcmp(key, "clone_fd"))
        return parse_bool(key, val, &c->clone_fd);
    if (!strcmp(key, "clear_stale"))
        return parse_bool(key, val, &c->clear_stale);
    if (!strcmp(key, "threads"))
        return val ? parse_uint(key, val, 1, 1024, &c->dispatch.threads) : -2;
    if (!strcmp(key, "mount_threads"))
        return val ? parse_uint(key, val, 1, 1024,
                                &c->dispatch.mount_threads)
                   : -2;
    if (!strcmp(key, "mount_inline"))
        return val ? parse_uint(key, val, 0, 64, &c->dispatch.mount_inline)
                   : -2;
    if (!strcmp(key, "max_inflight"))
        return val ? parse_uint(key, val, 1, 1u << 20,
                                &c->dispatch.max_inflight)
                   : -2;
    if (!strcmp(key, "max_threads"))
        return val ? parse_uint(key, val, 1, 1024, &c->max_threads) : -2;
    if (!strcmp(key, "max_background"))
        return val ? parse_uint(key, val, 1, 65535,
                                &c->fuse.max_background)
                   : -2;
    if (!strcmp(key, "log_level")) {
        if (!val)
            return -2;
        c->log_level = fs9_log_parse_level(val);
        if (c->log_level < 0) {
            opt_error("option log_level=%s: expected error, warn, info or "
                      "debug", val);
            return -1;
        }
        return 0;
    }
    if (val && provider_items)
        return fs9_cmdline_add_item(c, key, val); /* the provider checks */
    if (val)
        opt_error("unknown setting '%s' (provider settings go in a [mount "
                  "PATH] section)", key);
    else
        opt_error("unknown option '%s' (see fs9 --help)", key);
    return -1;
}

int fs9_cmdline_set(struct fs9_cmdline *c, const char *key, const char *val,
                    int provider_items, char *err, size_t errlen)
{
    char dummy[8];
    oerr.buf = err ? err : dummy;
    oerr.len = err ? errlen : sizeof dummy;
    oerr.buf[0] = '\0';
    int rc = parse_one(c, key, val, provider_items);
    if (rc == -2)
        opt_error("option %s needs a value (%s=...)", key, key);
    return rc < 0 ? -1 : 0;
}

static int parse_list(struct fs9_cmdline *c, const char *list,
                      int provider_items)
{
    char *copy = strdup(list);
    if (!copy)
        return -1;
    int rc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok && rc == 0;
         tok = strtok_r(NULL, ",", &save)) {
        if (!*tok)
            continue;
        char *val = strchr(tok, '=');
        if (val)
            *val++ = '\0';
        char err[512];
        rc = fs9_cmdline_set(c, tok, val, provider_items, err, sizeof err);
        if (rc < 0)
            fprintf(stderr, "fs9: %s\n", err);
    }
    free(copy);
    return rc;
}

static int remember_list(struct fs9_cmdline *c, const char *list)
{
    char **v = realloc(c->opt_lists, (c->nopt_lists + 1) * sizeof *v);
    if (!v)
        return -1;
    c->opt_lists = v;
    v[c->nopt_lists] = strdup(list);
    return v[c->nopt_lists++] ? 0 : -1;
}

static void reset_options(struct fs9_cmdline *c)
{
    for (size_t i = 0; i < c->nitems; i++) {
        free((char *)c->items[i].key);
        free((char *)c->items[i].value);
    }
    free(c->items);
    c->items = NULL;
    c->nitems = 0;
    free(c->fuse_opts);
    c->fuse_opts = NULL;
    free(c->fsname);
    c->fsname = NULL;
    free(c->plugin_dir);
    c->plugin_dir = NULL;
    for (size_t i = 0; i < c->nplugins; i++)
        free(c->plugins[i]);
    free(c->plugins);
    c->plugins = NULL;
    c->nplugins = 0;
    fs9_fuse_options_init(&c->fuse);
    c->log_level = c->debug ? FS9_LOG_DEBUG : -1;
    c->max_threads = 16;
    c->clone_fd = 0;
    c->clear_stale = 0;
    c->read_only = 0;
    c->dispatch.threads = 16;
    c->dispatch.mount_threads = 0;
    c->dispatch.max_inflight = 1024;
    c->dispatch.timeout = 60;
    c->dispatch.mount_inline = 4;
}

int fs9_cmdline_apply_config(struct fs9_cmdline *c,
                             const struct fs9_config_item *globals,
                             const int *lines, size_t n, const char *file)
{
    reset_options(c);
    int problems = 0;
    for (size_t i = 0; i < n; i++) {
        char err[512];
        if (fs9_cmdline_set(c, globals[i].key, globals[i].value, 0, err,
                            sizeof err) < 0) {
            fprintf(stderr, "fs9: %s:%d: %s\n", file, lines[i], err);
            problems++;
        }
    }
    /* The command line has the last word. */
    for (size_t i = 0; i < c->nopt_lists && !problems; i++)
        if (parse_list(c, c->opt_lists[i], 0) < 0)
            problems++;
    return problems;
}

int fs9_cmdline_parse(int argc, char **argv, struct fs9_cmdline *c)
{
    memset(c, 0, sizeof *c);
    fs9_fuse_options_init(&c->fuse);
    c->log_level = -1;
    c->max_threads = 16;
    c->dispatch.threads = 16;
    c->dispatch.max_inflight = 1024;
    c->dispatch.timeout = 60;
    c->dispatch.mount_inline = 4;
    const char *pos[2];
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            c->show_help = 1;
        } else if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
            c->show_version = 1;
        } else if (!strcmp(a, "--list-providers")) {
            c->list_providers = 1;
        } else if (!strcmp(a, "-f")) {
            c->foreground = 1;
        } else if (!strcmp(a, "-d") || !strcmp(a, "--debug")) {
            c->debug = 1;
            c->foreground = 1;
        } else if (!strcmp(a, "-s")) {
            c->single_thread = 1;
        } else if (!strncmp(a, "-o", 2)) {
            const char *list = a[2] ? a + 2 : NULL;
            if (!list) {
                if (++i >= argc) {
                    fprintf(stderr, "fs9: -o needs a list of options\n");
                    return -1;
                }
                list = argv[i];
            }
            if (remember_list(c, list) < 0 || parse_list(c, list, 1) < 0)
                return -1;
        } else if (!strcmp(a, "--")) {
            while (++i < argc) {
                if (npos == 2) {
                    fprintf(stderr, "fs9: unexpected argument '%s'\n",
                            argv[i]);
                    return -1;
                }
                pos[npos++] = argv[i];
            }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "fs9: unknown option '%s' (see fs9 --help)\n", a);
            return -1;
        } else {
            if (npos == 2) {
                fprintf(stderr, "fs9: unexpected argument '%s' (usage: fs9 "
                                "[options] SOURCE MOUNTPOINT)\n", a);
                return -1;
            }
            pos[npos++] = a;
        }
    }
    if (c->show_help || c->show_version || c->list_providers)
        return 0;
    if (npos < 2) {
        fprintf(stderr, "fs9: %s (usage: fs9 [options] SOURCE MOUNTPOINT; "
                        "fs9 --help)\n",
                npos == 0 ? "missing SOURCE and MOUNTPOINT"
                          : "missing MOUNTPOINT");
        return -1;
    }
    c->source = pos[0];
    c->mountpoint = pos[1];
    if (c->debug && c->log_level < 0)
        c->log_level = FS9_LOG_DEBUG;
    return 0;
}

void fs9_cmdline_free(struct fs9_cmdline *c)
{
    for (size_t i = 0; i < c->nitems; i++) {
        free((char *)c->items[i].key);
        free((char *)c->items[i].value);
    }
    free(c->items);
    free(c->fuse_opts);
    free(c->fsname);
    free(c->plugin_dir);
    for (size_t i = 0; i < c->nplugins; i++)
        free(c->plugins[i]);
    free(c->plugins);
    for (size_t i = 0; i < c->nopt_lists; i++)
        free(c->opt_lists[i]);
    free(c->opt_lists);
}

void fs9_cmdline_usage(const char *prog)
{
    printf(
        "usage: %s [options] SOURCE MOUNTPOINT\n"
        "\n"
        "Mount an FS9 namespace at MOUNTPOINT.\n"
        "\n"
        "SOURCE:\n"
        "  memfs                 an in-memory filesystem (the default "
        "namespace)\n"
        "  localfs:DIR           the host directory DIR, confined to it\n"
        "  PROVIDER[:ARG]        any provider fs9 --list-providers shows\n"
        "  FILE                  a namespace described in a configuration "
        "file,\n"
        "                        e.g. /etc/fs9/work.conf (see fs9.conf(5))\n"
        "\n"
        "general options:\n"
        "  -h, --help            print this help and exit\n"
        "  -V, --version         print the version and exit\n"
        "  --list-providers      list the providers that can be mounted\n"
        "  -f                    stay in the foreground, log to stderr\n"
        "  -d, --debug           foreground, log every request (implies -f)\n"
        "  -s                    one request thread\n"
        "  -o opt[,opt...]       options, below\n"
        "\n"
        "fs9 options:\n"
        "  -o entry_timeout=S    seconds names may be cached (1)\n"
        "  -o attr_timeout=S     seconds attributes may be cached (1)\n"
        "  -o negative_timeout=S seconds a missing name may be cached (1)\n"
        "  -o external_timeout=S all three for providers changed from "
        "outside, like localfs (1)\n"
        "  -o timeout=S          answer a provider call that takes longer "
        "with ETIMEDOUT (60; 0: never)\n"
        "  -o threads=N          provider threads (16)\n"
        "  -o mount_threads=N    most provider threads one mount may hold "
        "(3/4 of threads)\n"
        "  -o max_inflight=N     requests queued or running at once (1024)\n"
        "  -o max_threads=N      FUSE request threads (16)\n"
        "  -o mount_inline=N     calls of one provider that may block, run "
        "on request\n"
        "                        threads at once to save the pool's hand-offs "
        "(4; 0: none)\n"
        "  -o max_background=N   kernel background requests (64)\n"
        "  -o writeback          kernel write-back cache (faster small "
        "writes)\n"
        "  -o kernel_cache       keep cached file data across opens\n"
        "  -o direct_io          bypass the page cache for every file\n"
        "  -o noxattr            no extended attributes: the kernel then stops "
        "asking\n"
        "                        for them in ls -l (faster)\n"
        "  -o kernel_killpriv    let the kernel clear suid, sgid and file "
        "capabilities\n"
        "                        on write (a getxattr before every write; "
        "see fs9(1))\n"
        "  -o inline=0           never call providers on request threads\n"
        "  -o clone_fd           one /dev/fuse descriptor per thread\n"
        "  -o clear_stale        unmount a dead fs9 left at MOUNTPOINT first\n"
        "  -o log_level=L        error, warn (default), info or debug\n"
        "  -o plugin_dir=DIR     load every *.so in DIR as a provider "
        "plugin\n"
        "                        (default " FS9_PLUGIN_DIR ")\n"
        "  -o plugin=FILE        load one more plugin (may be repeated)\n"
        "  -o fsname=NAME        the source shown by mount and df\n"
        "\n"
        "kernel mount options: allow_other, allow_root, auto_unmount, ro, "
        "rw,\n"
        "  suid, nosuid, dev, nodev, exec, noexec, atime, noatime, sync, "
        "dirsync\n"
        "  (default_permissions is always on)\n"
        "ignored mount(8)/fstab options: defaults, auto, noauto, nofail, "
        "_netdev,\n"
        "  user, users, owner, group, relatime, x-*, comment=\n"
        "provider settings: any other key=value goes to the provider, e.g.\n"
        "  fs9 -o size=1G memfs /mnt/scratch\n"
        "\n"
        "Unmount with: fusermount3 -u MOUNTPOINT (or umount MOUNTPOINT as "
        "root)\n",
        prog);
}
