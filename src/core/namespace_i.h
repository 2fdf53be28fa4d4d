/* namespace_i — what namespace.c and router.c share privately. */
#ifndef FS9_CORE_NAMESPACE_I_H
#define FS9_CORE_NAMESPACE_I_H

/* Bits of fs9_handle.ns_flags. */
#define FS9__NSF_SYNC_CLOSE (1u << 0) /* close(sync=1) when the last ref goes */
#define FS9__NSF_SYNTH_DIR (1u << 1)  /* a directory only the mounts make */
#define FS9__NSF_HAS_MOUNTS (1u << 2) /* mounts lie inside this directory */

#endif
