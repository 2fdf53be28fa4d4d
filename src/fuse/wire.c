/* wire — fs9's reads and writes of /dev/fuse; see wire.h.
 *
 * The hooks run on the request threads.  libfuse reads a request and then
 * handles it on the same thread before reading the next, so a flag taken
 * from the raw request in wire_read() is still the current request's when
 * the op callback runs: a thread-local carries it there.
 *
 * The kernel sets the kill flags (FUSE_WRITE_KILL_SUIDGID,
 * FATTR_KILL_SUIDGID, FUSE_OPEN_KILL_SUIDGID) only once KILLPRIV_V2 is
 * agreed; libfuse 3.14 masks the setattr one out of `valid` and never
 * passes the other two on.
 */
#include <errno.h>
#include <linux/fuse.h>
#include <stddef.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/log.h"
#include "fuse/front.h"
#include "fuse/wire.h"

static _Thread_local bool current_kill;

/* A field of `type` at `off` in the request's argument, if it is there. */
static bool arg_u32(const char *arg, size_t len, size_t off, uint32_t *v)
{
    if (len < off + sizeof *v)
        return false;
    memcpy(v, arg + off, sizeof *v);
    return true;
}

static void watch_request(struct fs9_wire *w, const char *buf, size_t n)
{
    struct fuse_in_header in;
    uint32_t v = 0;
    bool kill = false;
    if (n >= sizeof in) {
        memcpy(&in, buf, sizeof in);
        const char *arg = buf + sizeof in;
        size_t len = n - sizeof in;
        switch (in.opcode) {
        case FUSE_WRITE:
            kill = arg_u32(arg, len, offsetof(struct fuse_write_in,
                                              write_flags), &v) &&
                   (v & FUSE_WRITE_KILL_SUIDGID);
            break;
        case FUSE_SETATTR:
            kill = arg_u32(arg, len, offsetof(struct fuse_setattr_in, valid),
                           &v) &&
                   (v & FATTR_KILL_SUIDGID);
            break;
        case FUSE_OPEN:
            kill = arg_u32(arg, len, offsetof(struct fuse_open_in,
                                              open_flags), &v) &&
                   (v & FUSE_OPEN_KILL_SUIDGID);
            break;
        case FUSE_INIT: {
            uint32_t major = 0, minor = 0;
            if (w->want_killpriv &&
                arg_u32(arg, len, offsetof(struct fuse_init_in, major),
                        &major) &&
                arg_u32(arg, len, offsetof(struct fuse_init_in, minor),
                        &minor) &&
                arg_u32(arg, len, offsetof(struct fuse_init_in, flags), &v) &&
                major == 7 && minor >= 33 && (v & FUSE_HANDLE_KILLPRIV_V2))
                atomic_store(&w->init_unique, in.unique);
            break;
        }
        default:
            break;
        }
    }
    current_kill = kill;
}

/* The answer to the INIT we noted: offer KILLPRIV_V2 in it. */
static void watch_reply(struct fs9_wire *w, struct iovec *iov, int count)
{
    uint64_t init = atomic_load_explicit(&w->init_unique,
                                         memory_order_relaxed);
    struct fuse_out_header out;
    if (!init || count < 2 || iov[0].iov_len < sizeof out)
        return;
    memcpy(&out, iov[0].iov_base, sizeof out);
    if (out.unique != init)
        return;
    atomic_store(&w->init_unique, 0);
    size_t at = offsetof(struct fuse_init_out, flags);
    uint32_t flags;
    if (out.error != 0 || iov[1].iov_len < at + sizeof flags)
        return;
    char *arg = iov[1].iov_base;
    memcpy(&flags, arg + at, sizeof flags);
    flags |= FUSE_HANDLE_KILLPRIV_V2;
    memcpy(arg + at, &flags, sizeof flags);
    atomic_store(&w->killpriv, true);
    fs9_debug("FUSE_HANDLE_KILLPRIV_V2 agreed: suid, sgid and file "
              "capabilities are cleared by fs9");
}

static ssize_t wire_read(int fd, void *buf, size_t len, void *userdata)
{
    struct fs9_fuse *fs = userdata;
    ssize_t n = read(fd, buf, len);
    if (n < 0) {
        current_kill = false;
        return n; /* errno is libfuse's to read */
    }
    watch_request(&fs->wire, buf, (size_t)n);
    return n;
}

static ssize_t wire_writev(int fd, struct iovec *iov, int count,
                           void *userdata)
{
    struct fs9_fuse *fs = userdata;
    watch_reply(&fs->wire, iov, count);
    return writev(fd, iov, count);
}

int fs9_wire_attach(struct fuse_session *se, struct fs9_wire *w,
                    bool killpriv)
{
    static const struct fuse_custom_io io = {
        .read = wire_read,
        .writev = wire_writev,
    };
    w->want_killpriv = killpriv;
    atomic_store(&w->init_unique, 0);
    atomic_store(&w->killpriv, false);
    int rc = fuse_session_custom_io(se, &io, fuse_session_fd(se));
    return rc < 0 ? rc : 0;
}

bool fs9_wire_killpriv(const struct fs9_wire *w)
{
    return atomic_load(&w->killpriv);
}

bool fs9_wire_kill_suidgid(void)
{
    return current_kill;
}
