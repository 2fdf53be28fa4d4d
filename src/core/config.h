/*
 * config — namespace configuration files (fs9.conf(5)).
 *
 * An INI file, parsed with inih: a [fs9] section of global settings (the
 * same names as the -o options) and one [mount PATH] section per provider,
 * with provider=NAME and the provider's own key = value settings.
 * Everything is read and checked before anything is mounted; every item
 * keeps its line number so later errors (unknown provider, bad value) can
 * still name the line.
 */
#ifndef FS9_CORE_CONFIG_H
#define FS9_CORE_CONFIG_H

#include <stddef.h>

struct fs9_conf_item {
    char *key;
    char *value;
    int line;
};

struct fs9_conf_mount {
    char *path;     /**< canonical */
    char *provider; /**< NULL until provider= is seen */
    int line;       /**< of the [mount PATH] header */
    int provider_line;
    struct fs9_conf_item *items; /**< provider settings, in file order */
    size_t nitems;
};

struct fs9_conf {
    char *file;
    struct fs9_conf_item *globals; /**< [fs9] settings, in file order */
    size_t nglobals;
    struct fs9_conf_mount *mounts; /**< in file order */
    size_t nmounts;
};

/** Receives one message per problem, already prefixed "FILE:LINE: ". */
typedef void (*fs9_conf_report_fn)(void *arg, const char *msg);

/** Read and check `file` into `out`.  Returns the number of problems found
 *  (each reported), or a negative errno when the file cannot be read.  The
 *  checks here are those that need no provider: syntax, section names,
 *  mount paths, duplicate mounts and keys, missing provider=. */
int fs9_conf_load(const char *file, struct fs9_conf *out,
                  fs9_conf_report_fn report, void *arg);

void fs9_conf_free(struct fs9_conf *c);

/** The line of the item among `items` whose key `msg` mentions (as
 *  "key=", "'key'" or "key:"), or `fallback`. */
int fs9_conf_line_of(const struct fs9_conf_item *items, size_t n,
                     const char *msg, int fallback);

#endif
