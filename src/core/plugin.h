/*
 * plugin — providers loaded from shared objects.
 *
 * A plugin exports FS9_PROVIDER_ENTRY returning its provider table.  The
 * loader refuses, with one message naming the file, anything that would
 * crash later: no entry symbol, a NULL table, another ABI version, a table
 * of another size, a missing required function, a name already taken.  A
 * directory load reports each refusal and goes on with the others.
 */
#ifndef FS9_CORE_PLUGIN_H
#define FS9_CORE_PLUGIN_H

#include <stddef.h>

#include "core/namespace.h"

/** Load the plugin at `path` into the namespace's catalog.  On failure a
 *  negative errno and one line in `err` starting with the file name. */
int fs9_plugin_load(struct fs9_ns *ns, const char *path, char *err,
                    size_t errlen);

/** Receives one message per plugin that was refused. */
typedef void (*fs9_plugin_report_fn)(void *arg, const char *msg);

/** Load every "*.so" in `dir`, in name order, reporting refusals through
 *  `report` and going on with the others.  Returns how many loaded, or a
 *  negative errno when the directory cannot be read. */
int fs9_plugin_load_dir(struct fs9_ns *ns, const char *dir,
                        fs9_plugin_report_fn report, void *arg);

#endif
