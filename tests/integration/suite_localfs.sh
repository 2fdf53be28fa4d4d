# suite_localfs.sh — localfs through a real mount: confinement (nothing
# outside the backing directory is ever touched by FS9), changes made on the
# host seen through the mount, big trees under a small descriptor budget,
# host errors arriving unchanged, and host inode numbers.
#
# Each test mounts its own localfs (lfs_mount) so it controls the backing
# directory; the runner's cleanup unmounts it (fs9_stop) and removes
# $BACKING and $MNT.  Anything else a test creates — directories outside
# the root (lfs_outside), tmpfs and bind mounts (lfs_tmpfs, LFS_MOUNTS) —
# is undone by suite_teardown, which unmounts fs9 first so no mount below
# the backing directory is busy.

LFS_DIRS=()   # extra directories to remove
LFS_MOUNTS=() # extra mounts to undo, innermost last

# lfs_mount [fs9 options...]: a fresh backing directory and mount point,
# localfs mounted; BACKING and MNT name them.
lfs_mount() {
  BACKING=${BACKING:-$(mktemp -d "$FS9_TMP/fs9-lfs-backing.XXXXXX")}
  MNT=$(mktemp -d "$FS9_TMP/fs9-lfs-mnt.XXXXXX")
  fs9_start "$@" "localfs:$BACKING" "$MNT"
}

# lfs_outside VAR: a new directory outside the backing directory, named in
# VAR and removed in teardown.  (Not $(...): a subshell could not register
# it.)
lfs_outside() {
  local d
  d=$(mktemp -d "$FS9_TMP/fs9-lfs-outside.XXXXXX")
  LFS_DIRS+=("$d")
  printf -v "$1" '%s' "$d"
}

# lfs_tmpfs DIR SIZE: a small tmpfs at DIR, unmounted in teardown.
lfs_tmpfs() {
  mount -t tmpfs -o "size=$2" fs9-test "$1" || skip "cannot mount a tmpfs (not root?)"
  LFS_MOUNTS+=("$1")
}

suite_teardown() {
  cd /
  # fs9 goes first, so no mount below the backing directory is busy: unmount
  # it and let the daemon exit (a zombie has closed its descriptors).  The
  # runner's fs9_stop then reaps it, checking its exit status and its log.
  if [ -n "${MNT:-}" ] && is_mounted "$MNT"; then
    fs9_unmount "$MNT" || log "$MNT had to be forced off"
  fi
  local i
  for i in $(seq 1 100); do
    [ -n "${FS9_PID:-}" ] && [ -d "/proc/$FS9_PID" ] || break
    [ "$(awk '{ print $3 }' "/proc/$FS9_PID/stat" 2>/dev/null)" != Z ] || break
    sleep 0.1
  done
  for ((i = ${#LFS_MOUNTS[@]} - 1; i >= 0; i--)); do
    timeout 10 umount "${LFS_MOUNTS[$i]}" 2>/dev/null ||
      timeout 10 umount -l "${LFS_MOUNTS[$i]}" 2>/dev/null || true
  done
  for i in "${LFS_DIRS[@]}"; do rm -rf "$i"; done
}

# Everything about a tree that an operation could change: type, mode,
# owner, size, inode, link count, times (ctime moves with chmod, chown and
# xattr changes), and every regular file's content.
tree_state() {
  (cd "$1" && find . -printf '%y %m %U:%G %s %i %n %T@ %C@ %p\n' | sort &&
    find . -type f -exec sha256sum {} + | sort)
}

# wait_until SECONDS CMD...: poll CMD until it succeeds; fail after
# SECONDS.  Host changes become visible once the kernel's cached entry or
# attributes expire; the bound is generous so the test never depends on
# the machine's speed.
wait_until() {
  local limit=$1 i
  shift
  for i in $(seq 1 $((limit * 10))); do
    "$@" && return 0
    sleep 0.1
  done
  fail "not true after ${limit}s: $*"
}

# ---------------------------------------------------------------------
# Confinement
# ---------------------------------------------------------------------

test_symlinks_to_outside_are_followed_by_the_client_and_nothing_outside_changes() {
  lfs_mount
  lfs_outside out
  mkdir "$out/dir"
  echo secret >"$out/dir/file"
  echo kept >"$out/top"
  ln -s "$out/dir" "$BACKING/to_outside"
  ln -s /etc "$BACKING/to_etc"
  ln -s .. "$BACKING/to_dotdot"
  mkdir "$BACKING/sub"
  ln -s ../.. "$BACKING/sub/up2"
  before=$(tree_state "$out")
  etc_before=$(stat -c '%Y %Z %s' /etc /etc/hostname /etc/passwd)

  # The client kernel follows links on its side of the mount: that is no
  # escape, and reading through them is what a user expects.
  assert_eq "$(cat "$MNT/to_outside/file")" secret
  [ -e "$MNT/to_etc/passwd" ] || fail "/etc through the link"
  assert_eq "$(readlink "$MNT/to_dotdot")" ..
  assert_eq "$(readlink "$MNT/sub/up2")" ../..
  # ".." at the mount root is the mount point's parent (kernel behaviour).
  assert_eq "$(stat -c %i "$MNT/to_dotdot/")" "$(stat -c %i "$MNT/..")"

  # Operations on the links themselves stay inside the backing directory.
  cd "$MNT"
  touch -h to_outside                 # utimensat(AT_SYMLINK_NOFOLLOW)
  chown -h 1234:1234 to_etc           # lchown
  assert_eq "$(errno_of 'os.setxattr("to_outside", "user.x", b"1", follow_symlinks=False)')" EPERM
  ln to_outside hard_to_outside        # link(2) does not follow
  assert_eq "$(stat -c %F hard_to_outside)" "symbolic link"
  mv to_outside renamed_to_outside
  mv to_etc sub/moved_to_etc
  rm renamed_to_outside hard_to_outside sub/moved_to_etc to_dotdot
  rm -r sub                           # rm -r never follows links
  assert_eq "$(ls -A "$BACKING")" ""
  cd /

  assert_eq "$(tree_state "$out")" "$before" "the directory outside changed"
  assert_eq "$(stat -c '%Y %Z %s' /etc /etc/hostname /etc/passwd)" "$etc_before" "/etc changed"
}

# A process sits in a directory of the mount; on the host that directory is
# moved out of the root and a symlink to a directory outside takes its
# name.  localfs resolves every path with openat2(RESOLVE_NO_SYMLINKS), so
# whatever the process does in its current directory (or below it) fails
# with ELOOP and nothing appears outside; listing it fails with ENOTDIR
# (the name is a symlink now, and opening it with O_DIRECTORY|O_NOFOLLOW
# says so).  The driver holds its current directory and a descriptor on a
# subdirectory from before the swap, so no cached entry can expire first.
test_directory_swapped_for_a_symlink_on_the_host_confines_its_users() {
  lfs_mount
  lfs_outside out
  mkdir -p "$BACKING/d/e"
  echo hi >"$BACKING/d/existing"
  echo hi >"$BACKING/d/e/deep"
  echo kept >"$out/kept"
  python3 - "$MNT/d" "$BACKING" "$out" >"$out/results" <<'PY'
import errno, os, stat, sys
mnt_d, backing, out = sys.argv[1:]
os.chdir(mnt_d)
e = os.open("e", os.O_RDONLY | os.O_DIRECTORY)
os.listdir(".")
# The swap, on the host: d leaves the root, a symlink to `out` replaces it.
os.rename(os.path.join(backing, "d"), os.path.join(out, "moved"))
os.symlink(out, os.path.join(backing, "d"))
def creat(name, **kw):
    os.close(os.open(name, os.O_CREAT | os.O_WRONLY, 0o644, **kw))
ops = [
    ("create", lambda: creat("newfile")),
    ("mkdir", lambda: os.mkdir("newdir")),
    ("mknod", lambda: os.mknod("fifo", 0o600 | stat.S_IFIFO)),
    ("symlink", lambda: os.symlink("target", "newlink")),
    ("rename", lambda: os.rename("existing", "renamed")),
    ("link", lambda: os.link("existing", "hardlink")),
    ("setxattr", lambda: os.setxattr("existing", "user.x", b"1")),
    ("removexattr", lambda: os.removexattr("existing", "user.x")),
    ("truncate", lambda: os.truncate("existing", 0)),
    ("chmod", lambda: os.chmod("existing", 0o777)),
    ("unlink", lambda: os.unlink("existing")),
    ("rmdir", lambda: os.rmdir("e")),
    ("nested.create", lambda: creat("x", dir_fd=e)),
    ("nested.mkdir", lambda: os.mkdir("y", dir_fd=e)),
    ("nested.unlink", lambda: os.unlink("deep", dir_fd=e)),
    ("nested.rename", lambda: os.rename("deep", "deep2", src_dir_fd=e, dst_dir_fd=e)),
    ("listdir", lambda: os.listdir(".")),
]
for name, op in ops:
    try:
        op()
        print(name, "OK")
    except OSError as x:
        print(name, errno.errorcode.get(x.errno, x.errno))
PY
  cd /
  log "$(cat "$out/results")"
  while read -r what got; do
    case $what in
      listdir) assert_eq "$got" ENOTDIR "$what" ;;
      *) case $got in ELOOP|ENOENT|ESTALE) ;; *) fail "$what gave $got";; esac
         assert_eq "$got" ELOOP "$what" ;;
    esac
  done <"$out/results"
  assert_eq "$(wc -l <"$out/results")" 17 "every operation ran"
  # Outside, only what the host itself did: the moved directory, untouched.
  assert_eq "$(cd "$out" && find . | LC_ALL=C sort | tr '\n' ' ')" \
    ". ./kept ./moved ./moved/e ./moved/e/deep ./moved/existing ./results "
  assert_file_eq "$out/moved/existing" hi
  assert_file_eq "$out/moved/e/deep" hi
  assert_eq "$(stat -c %a "$out/moved/existing")" 644
  assert_eq "$(getfattr --absolute-names -d "$out/moved/existing" 2>/dev/null)" ""
  assert_eq "$(ls -A "$BACKING")" d
  # Through the mount, the name is now what the host says: a symlink.
  wait_until 10 test -L "$MNT/d"
}

test_rename_and_link_across_the_root_get_exdev_and_fs9_leaves_outside_alone() {
  lfs_mount
  lfs_outside out
  echo data >"$MNT/x"
  echo data >"$MNT/y"
  before=$(tree_state "$out")
  assert_eq "$(errno_of "os.rename('$MNT/x', '$out/x')")" EXDEV
  assert_eq "$(errno_of "os.link('$MNT/x', '$out/x')")" EXDEV
  assert_eq "$(errno_of "os.rename('$out', '$MNT/z')")" EXDEV
  assert_eq "$(tree_state "$out")" "$before" "EXDEV left something outside"
  [ -f "$BACKING/x" ] || fail "the source was lost"
  # mv falls back to copy and unlink: the copy is mv's own doing.
  mv "$MNT/y" "$out/y"
  assert_file_eq "$out/y" data
  [ ! -e "$BACKING/y" ] || fail "mv left the source"
  # ln across file systems is refused; nothing is made.
  expect_errno EXDEV ln "$MNT/x" "$out/hard"
  [ ! -e "$out/hard" ] || fail "ln made something outside"
}

# ---------------------------------------------------------------------
# Changes made on the host
# ---------------------------------------------------------------------

file_is() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }
size_is() { [ "$(stat -c %s "$1" 2>/dev/null)" = "$2" ]; }
gone() { [ ! -e "$1" ] && [ ! -L "$1" ]; }

# host_changes_are_seen TIMEOUT: the mount shows host changes once the
# kernel's cached names and attributes expire (TIMEOUT), including new
# content of a file whose old content is in the page cache — through new
# opens and through a descriptor open all along.
host_changes_are_seen() {
  local limit=$(($(printf '%.0f' "$1") + 10))
  cd "$MNT"
  # created
  [ ! -e new ] || fail "new exists before it was made"
  echo one >"$BACKING/new"
  wait_until "$limit" file_is new one
  # modified: same size (only mtime tells), then longer, then shorter
  printf 'hello' >"$BACKING/f"
  wait_until "$limit" file_is f hello
  cat f >/dev/null # its page is cached now
  printf 'HELLO' >"$BACKING/f"
  wait_until "$limit" file_is f HELLO
  printf 'hello, world' >"$BACKING/f"
  wait_until "$limit" size_is f 12
  wait_until "$limit" file_is f 'hello, world'
  printf 'bye' >"$BACKING/f"
  wait_until "$limit" file_is f bye
  # a descriptor kept open sees the new content too (the kernel drops its
  # cached pages when the refreshed attributes show a new mtime or size)
  python3 - "$MNT/f" "$BACKING/f" "$limit" <<'PY'
import os, sys, time
mnt, host, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
fd = os.open(mnt, os.O_RDONLY)
assert os.pread(fd, 100, 0) == b"bye", "initial content"
with open(host, "wb") as h:
    h.write(b"BYE")
deadline = time.monotonic() + limit
while os.pread(fd, 100, 0) != b"BYE":
    if time.monotonic() > deadline:
        sys.exit("an open descriptor kept the old content")
    time.sleep(0.1)
os.close(fd)
PY
  # removed
  rm "$BACKING/new"
  wait_until "$limit" gone new
  # renamed (a file and a directory with content)
  echo moved >"$BACKING/a"
  mkdir "$BACKING/da"
  echo inner >"$BACKING/da/inner"
  wait_until "$limit" file_is a moved
  wait_until "$limit" file_is da/inner inner
  mv "$BACKING/a" "$BACKING/b"
  mv "$BACKING/da" "$BACKING/db"
  wait_until "$limit" gone a
  wait_until "$limit" file_is b moved
  wait_until "$limit" gone da
  wait_until "$limit" file_is db/inner inner
  cd /
}

test_host_changes_are_seen_after_the_default_timeout() {
  lfs_mount
  host_changes_are_seen 1
}

test_host_changes_are_seen_after_a_short_external_timeout() {
  lfs_mount -o external_timeout=0.2
  host_changes_are_seen 0.2
}

# ---------------------------------------------------------------------
# A big tree under a small descriptor budget
# ---------------------------------------------------------------------

test_tree_of_20000_files_with_ulimit_n_20000_and_few_daemon_descriptors() {
  BACKING=$(mktemp -d "$FS9_TMP/fs9-lfs-backing.XXXXXX")
  mkdir "$BACKING/tree"
  for d in $(seq 1 101); do
    mkdir "$BACKING/tree/d$d"
    (cd "$BACKING/tree/d$d" && seq -f f%g 1 200 | xargs touch)
    echo "content of d$d" >"$BACKING/tree/d$d/f1"
  done
  ulimit -n 20000 || skip "cannot set ulimit -n 20000"  # the daemon and every tool below run with it
  lfs_mount
  lfs_outside out

  # Sample the daemon's open descriptors all along.
  maxfile=$out/max-fds
  echo 0 >"$maxfile"
  (
    max=0
    while [ ! -e "$out/stop" ] && kill -0 "$FS9_PID" 2>/dev/null; do
      n=$(ls "/proc/$FS9_PID/fd" 2>/dev/null | wc -l)
      if [ "$n" -gt "$max" ]; then max=$n; echo "$max" >"$maxfile"; fi
      sleep 0.05
    done
  ) &
  sampler=$!

  errs=$out/stderr
  cd "$MNT"
  ls -lR tree >"$out/ls" 2>>"$errs" || fail "ls -lR failed: $(tail -3 "$errs")"
  find tree | sort >"$out/find" 2>>"$errs" || fail "find failed"
  du -s tree >"$out/du" 2>>"$errs" || fail "du failed"
  tar cf "$out/tree.tar" tree 2>>"$errs" || fail "tar c failed: $(tail -3 "$errs")"
  cp -a tree "$out/copy" 2>>"$errs" || fail "cp -a failed: $(tail -3 "$errs")"
  cd /
  touch "$out/stop"
  wait "$sampler"

  ! grep -qiE 'bad file descriptor|too many open files' "$errs" ||
    fail "an application saw EBADF or EMFILE: $(grep -iE 'descriptor|open files' "$errs" | head -3)"
  [ ! -s "$errs" ] || fail "tools complained: $(head -3 "$errs")"
  assert_eq "$(wc -l <"$out/find")" 20302 "find lists every entry"
  assert_eq "$(cat "$out/find")" "$(cd "$BACKING" && find tree | sort)"
  assert_eq "$(grep -c '^-' "$out/ls")" 20200 "ls -lR lists every file"
  assert_eq "$(cut -f1 "$out/du")" "$(cd "$BACKING" && du -s tree | cut -f1)"
  assert_eq "$(tar tf "$out/tree.tar" | grep -vc '/$')" 20200 "tar holds every file"
  diff -r "$BACKING/tree" "$out/copy" >/dev/null || fail "cp -a copy differs"
  max=$(cat "$maxfile")
  log "daemon descriptors: at most $max"
  [ "$max" -lt 64 ] || fail "the daemon held $max descriptors (one per inode?)"
}

# ---------------------------------------------------------------------
# Host errors arrive unchanged
# ---------------------------------------------------------------------

test_eacces_for_a_user_the_host_refuses() {
  lfs_mount -o allow_other
  mkdir "$BACKING/private"
  echo secret >"$BACKING/private/file"
  echo secret >"$BACKING/mine"
  chmod 700 "$BACKING/private"
  chmod 600 "$BACKING/mine"
  chmod 755 "$BACKING"
  as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
  as_nobody true 2>/dev/null || skip "setpriv cannot switch to nobody"
  expect_errno EACCES as_nobody ls "$MNT/private"
  expect_errno EACCES as_nobody cat "$MNT/private/file"
  expect_errno EACCES as_nobody cat "$MNT/mine"
  expect_errno EACCES as_nobody touch "$MNT/private/new"
  expect_errno EACCES as_nobody touch "$MNT/new"
  [ ! -e "$BACKING/new" ] && [ ! -e "$BACKING/private/new" ] || fail "a refused create happened"
  assert_eq "$(cat "$MNT/private/file")" secret "root still reads it"
}

# The kernel checks permission with the caller's supplementary groups
# (default_permissions); when fs9 runs as root, localfs must create with
# them too, or a group-writable directory refuses what the kernel allowed.
test_a_supplementary_group_lets_a_user_create_as_the_kernel_allowed() {
  lfs_mount -o allow_other
  chmod 755 "$BACKING" "$MNT"
  mkdir "$BACKING/team"
  chown 0:4242 "$BACKING/team"
  chmod 0770 "$BACKING/team"
  member() { setpriv --reuid=65534 --regid=65534 --groups=4242 "$@"; }
  member true 2>/dev/null || skip "setpriv cannot switch users"
  member sh -c "echo work >'$MNT/team/file'" || fail "a member of the group was refused"
  member mkdir "$MNT/team/sub" || fail "mkdir refused"
  assert_eq "$(stat -c %u:%g "$BACKING/team/file")" 65534:65534 "owned by the caller"
  assert_eq "$(cat "$BACKING/team/file")" work
  # and without the group, the host still refuses
  expect_errno EACCES setpriv --reuid=65534 --regid=65534 --clear-groups touch "$MNT/team/other"
  [ ! -e "$BACKING/team/other" ] || fail "a refused create happened"
}

test_erofs_with_readonly_1() {
  BACKING=$(mktemp -d "$FS9_TMP/fs9-lfs-backing.XXXXXX")
  echo data >"$BACKING/f"
  mkdir "$BACKING/d"
  lfs_mount -o readonly=1
  expect_errno EROFS touch "$MNT/new"
  expect_errno EROFS mkdir "$MNT/newdir"
  expect_errno EROFS rm "$MNT/f"
  expect_errno EROFS rmdir "$MNT/d"
  expect_errno EROFS mv "$MNT/f" "$MNT/g"
  expect_errno EROFS sh -c "echo x >>'$MNT/f'"
  expect_errno EROFS chmod 600 "$MNT/f"
  assert_eq "$(errno_of "os.setxattr('$MNT/f', 'user.x', b'1')")" EROFS
  assert_eq "$(cat "$MNT/f")" data
  assert_eq "$(ls "$BACKING")" "$(printf 'd\nf')"
}

test_erofs_from_a_read_only_bind_mount() {
  lfs_outside src
  echo data >"$src/f"
  BACKING=$(mktemp -d "$FS9_TMP/fs9-lfs-backing.XXXXXX")
  mount --bind "$src" "$BACKING" || skip "cannot bind-mount (not root?)"
  LFS_MOUNTS+=("$BACKING")
  mount -o remount,bind,ro "$BACKING" || fail "cannot make the bind mount read-only"
  lfs_mount
  expect_errno EROFS touch "$MNT/new"
  expect_errno EROFS mkdir "$MNT/newdir"
  expect_errno EROFS rm "$MNT/f"
  expect_errno EROFS sh -c "echo x >>'$MNT/f'"
  assert_eq "$(cat "$MNT/f")" data
}

test_enospc_from_a_full_tmpfs() {
  BACKING=$(mktemp -d "$FS9_TMP/fs9-lfs-backing.XXXXXX")
  lfs_tmpfs "$BACKING" 2m
  lfs_mount
  lfs_outside out
  if dd if=/dev/zero of="$MNT/big" bs=64k count=64 2>"$out/dd"; then
    fail "4 MiB fit in a 2 MiB tmpfs"
  fi
  grep -q 'No space left on device' "$out/dd" || fail "dd said: $(cat "$out/dd")"
  rm "$MNT/big"
  echo fine >"$MNT/small"
  assert_file_eq "$MNT/small" fine
}

test_enametoolong_for_a_long_name() {
  lfs_mount
  long=$(printf 'n%.0s' $(seq 1 256))
  expect_errno ENAMETOOLONG touch "$MNT/$long"
  expect_errno ENAMETOOLONG mkdir "$MNT/$long"
  assert_eq "$(errno_of "os.stat('$MNT/$long')")" ENAMETOOLONG
  ok=$(printf 'n%.0s' $(seq 1 255))
  touch "$MNT/$ok"
  [ -e "$BACKING/$ok" ] || fail "a 255-byte name"
}

test_exdev_for_a_rename_between_two_host_file_systems_under_the_root() {
  lfs_mount
  mkdir "$BACKING/inner"
  lfs_tmpfs "$BACKING/inner" 4m
  echo data >"$MNT/f"
  mkdir "$MNT/dir"
  assert_eq "$(errno_of "os.rename('$MNT/f', '$MNT/inner/f')")" EXDEV
  assert_eq "$(errno_of "os.rename('$MNT/dir', '$MNT/inner/dir')")" EXDEV
  assert_eq "$(errno_of "os.link('$MNT/f', '$MNT/inner/f')")" EXDEV
  [ ! -e "$BACKING/inner/f" ] || fail "EXDEV left a file behind"
  mv "$MNT/f" "$MNT/inner/f" # mv copies instead
  assert_file_eq "$BACKING/inner/f" data
  [ ! -e "$BACKING/f" ] || fail "mv left the source"
}

# ---------------------------------------------------------------------
# Inode numbers
# ---------------------------------------------------------------------

test_st_ino_is_the_hosts_for_a_localfs_root_mount() {
  BACKING=$(mktemp -d "$FS9_TMP/fs9-lfs-backing.XXXXXX")
  mkdir -p "$BACKING/d/e"
  echo x >"$BACKING/d/f"
  ln "$BACKING/d/f" "$BACKING/hard"
  ln -s d/f "$BACKING/link"
  mkfifo "$BACKING/fifo"
  lfs_mount
  for p in "" d d/e d/f hard link fifo; do
    assert_eq "$(stat -c %i "$MNT/$p")" "$(stat -c %i "$BACKING/$p")" "st_ino of '/$p'"
  done
  # readdir hands out the same numbers
  assert_eq "$(ls -i1 "$MNT/d" | sort)" "$(ls -i1 "$BACKING/d" | sort)"
  # and a file made through the mount has the host's number too
  echo y >"$MNT/new"
  assert_eq "$(stat -c %i "$MNT/new")" "$(stat -c %i "$BACKING/new")"
}
