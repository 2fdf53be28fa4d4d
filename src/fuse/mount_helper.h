/*
 * mount_helper — fs9 run as mount(8)'s helper, /sbin/mount.fs9.
 *
 * For an fstab entry of type "fs9", mount(8) runs
 *     /sbin/mount.fs9 SPEC DIR [-sfnv] [-N NAMESPACE] [-o OPTIONS] [-t TYPE]
 * and mount.fs9 is a link to fs9.  Called first thing in main, this turns
 * such a command line into fs9's own, `fs9 -o OPTIONS SPEC DIR`; for any
 * other program name it changes nothing.
 */
#ifndef FS9_FUSE_MOUNT_HELPER_H
#define FS9_FUSE_MOUNT_HELPER_H

/** If argv[0]'s base name starts with "mount." (mount.fs9, or
 *  mount.fuse.fs9 should a packager add that link), replace *argc and
 *  *argv with the equivalent fs9 command line.  The new vector is static
 *  and lives until exit.  -N enters the named mount namespace here.
 *  Exits: 0 for -f (mount's "fake": mount nothing) and for --help, 1
 *  after one line on stderr for arguments a helper cannot have been
 *  given. */
void fs9_mount_helper_args(int *argc, char ***argv);

#endif
