/*
 * options — the fs9 command line: `fs9 [options] SOURCE MOUNTPOINT`.
 *
 * Every -o option is one of: an fs9 option (timeouts, threads, caching),
 * a kernel mount option handed to libfuse (allow_other, ro, nosuid, ...),
 * a generic mount(8)/fstab option that means nothing here (defaults,
 * nofail, _netdev, ...; accepted and ignored), or key=value for the
 * provider named by SOURCE.  A bare word that is none of these is an error.
 */
#ifndef FS9_FUSE_OPTIONS_H
#define FS9_FUSE_OPTIONS_H

#include <stddef.h>

#include "core/dispatch.h"
#include "fs9/provider.h"
#include "fuse/front.h"

struct fs9_cmdline {
    const char *source;     /**< SOURCE as given */
    const char *mountpoint; /**< MOUNTPOINT as given */
    int foreground;
    int debug;
    int single_thread;
    int show_help;
    int show_version;
    int list_providers;
    int clear_stale;
    int clone_fd;
    int read_only;
    unsigned max_threads; /**< FUSE request threads */
    int log_level;        /**< FS9_LOG_*; -1: default */
    struct fs9_fuse_options fuse;
    struct fs9_dispatch_config dispatch;
    char *fuse_opts; /**< comma list for libfuse; owned */
    struct fs9_config_item *items; /**< provider key=value; owned */
    size_t nitems;
    char *fsname;    /**< fsname= given, or NULL; owned */
    char *plugin_dir; /**< plugin_dir= given, or NULL; owned */
    char **plugins;   /**< each plugin= given; owned */
    size_t nplugins;
    char **opt_lists; /**< every -o list as given, to re-apply; owned */
    size_t nopt_lists;
};

/** Parse argv into `c`.  Returns 0, or -1 after printing one line to
 *  stderr saying what is wrong. */
int fs9_cmdline_parse(int argc, char **argv, struct fs9_cmdline *c);

void fs9_cmdline_free(struct fs9_cmdline *c);

/** Set one option, as from -o key=value (`val` NULL for a bare word).
 *  With `provider_items`, an unknown key=value becomes a provider setting;
 *  without, it is an error.  Returns 0, or -1 with the reason in err. */
int fs9_cmdline_set(struct fs9_cmdline *c, const char *key, const char *val,
                    int provider_items, char *err, size_t errlen);

/** Start the options over from a configuration file's [fs9] settings
 *  (`lines` gives each one's line for messages), then apply the command
 *  line's -o lists again so they win.  Returns the number of problems,
 *  each printed to stderr as "fs9: FILE:LINE: reason". */
int fs9_cmdline_apply_config(struct fs9_cmdline *c,
                             const struct fs9_config_item *globals,
                             const int *lines, size_t n, const char *file);

/** Append a provider setting key=value (copied).  -1 when out of memory. */
int fs9_cmdline_add_item(struct fs9_cmdline *c, const char *key,
                         const char *val);

/** The --help text. */
void fs9_cmdline_usage(const char *prog);

#endif
