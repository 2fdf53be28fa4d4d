/* builtin — the list of providers compiled into fs9. */
#include "providers.h"

#include <stddef.h>

const struct fs9_provider_ops *const *fs9_builtin_providers(void)
{
    static const struct fs9_provider_ops *const list[] = {
        &fs9_memfs_ops,
        &fs9_localfs_ops,
        NULL,
    };
    return list;
}
