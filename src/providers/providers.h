/*
 * providers — the providers built into fs9 (plugins are loaded at run time,
 * see src/core/plugin.h).
 */
#ifndef FS9_PROVIDERS_H
#define FS9_PROVIDERS_H

#include "fs9/provider.h"

/** POSIX-complete in-memory tree: the default namespace. */
extern const struct fs9_provider_ops fs9_memfs_ops;

/** A host directory, confined to its root.  Config: root=DIR. */
extern const struct fs9_provider_ops fs9_localfs_ops;

/** The built-in provider tables, NULL-terminated. */
const struct fs9_provider_ops *const *fs9_builtin_providers(void);

#endif
