/*
 * wire.h - what fs9 reads on /dev/fuse that libfuse 3.14 does not pass on.
 *
 * Debian's libfuse (3.14) cannot negotiate FUSE_HANDLE_KILLPRIV_V2 (protocol
 * 7.33).  Without it the kernel asks the filesystem for security.capability
 * before every write(2), a full round trip that halves small-write
 * throughput.  With it the filesystem removes set-user-ID, set-group-ID and
 * file capabilities itself, and the kernel stops asking.  fs9 does both:
 * providers drop file capabilities on write, truncate and chown (memfs
 * itself; localfs's host does it), and the front clears the mode bits when
 * the kernel flags a request (fs9_wire_kill_suidgid).
 *
 * The negotiation and the flags go through libfuse's custom I/O hooks
 * (fuse_session_custom_io): every message is read and written exactly as
 * libfuse would, and only the INIT reply is changed, by one flag.
 */
#ifndef FS9_FUSE_WIRE_H
#define FS9_FUSE_WIRE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <fuse_lowlevel.h>

/** One session's wire state; lives in the session's struct fs9_fuse, whose
 *  address is the session's userdata. */
struct fs9_wire {
    bool want_killpriv;              /**< take KILLPRIV_V2 if offered */
    _Atomic uint64_t init_unique;    /**< the INIT being answered, or 0 */
    atomic_bool killpriv;            /**< KILLPRIV_V2 agreed */
};

/** Route session `se`'s reads and writes of /dev/fuse through fs9's hooks,
 *  and, when `killpriv` and the kernel offers it, take on
 *  FUSE_HANDLE_KILLPRIV_V2.  The session's userdata must be the struct
 *  fs9_fuse that holds `w`.  Call after fuse_session_mount() and before
 *  the loop starts.  0, or a negative errno. */
int fs9_wire_attach(struct fuse_session *se, struct fs9_wire *w,
                    bool killpriv);

/** Was FUSE_HANDLE_KILLPRIV_V2 agreed with the kernel? */
bool fs9_wire_killpriv(const struct fs9_wire *w);

/** Did the kernel ask that the request this thread is handling (a WRITE,
 *  a SETATTR, an OPEN with O_TRUNC) clear set-user-ID and executable
 *  set-group-ID, as the VFS does for a caller without CAP_FSETID?  Valid
 *  in a libfuse op callback, before the request leaves the thread. */
bool fs9_wire_kill_suidgid(void);

#endif
