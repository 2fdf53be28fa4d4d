/* ctl — the /.fs9 control provider (see ctl.c). */
#ifndef FS9_CORE_CTL_H
#define FS9_CORE_CTL_H

#include <stddef.h>
#include <stdint.h>

#include "core/namespace.h"

/** Where every namespace shows its control files. */
#define FS9_CONTROL_PATH "/.fs9"

/** The control provider; mount it with fs9_ns_mount_control(). */
extern const struct fs9_provider_ops fs9_ctl_ops;

/** Capability bits as comma-separated names ("read,write,..."). */
size_t fs9_caps_string(uint64_t caps, char *buf, size_t size);

#endif
