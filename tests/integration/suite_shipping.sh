# suite_shipping.sh — FS9 the way users meet it: `meson install` puts every
# file in place; fstab entries of type fs9 (through /sbin/mount.fs9) and
# fuse.fs9 (through mount.fuse3) mount with `mount` and end with `umount`;
# `mount` and `df` show the source and the type fuse.fs9; the daemon detaches
# only once the mount works; SIGTERM, SIGINT and SIGHUP end it cleanly with
# every acknowledged byte on the backing store; the default log level is
# quiet; the man pages render without warnings and document every option.
#
# Tests that need mount(8) to find the helper put the installed mount.fs9 in
# /sbin and the installed fs9 in /usr/local/bin (mount(8) clears PATH, so
# mount.fuse3's shell searches its default path) for their own duration,
# under a lock, and remove them in teardown; they skip when an fs9 is
# already installed there.

SHIP_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SHIP_WRITER=$SHIP_SRC/tests/integration/ack_writer.py
SHIP_LOCK=${FS9_SYSTEM_LOCK:-/tmp/fs9-system-helpers.lock}

SHIP_MOUNTS=() # mount points mounted by mount(8) or the helper
SHIP_KILL=()   # helper processes of this test (writers, namespace holders)
SHIP_PIDS=()   # daemons started by mount(8) or the helper
SHIP_LINKS=()  # "path target" of links made in system directories

# Every scratch file and directory of a test lives under $SHIP_ROOT.
newdir() { mktemp -d "$SHIP_ROOT/d.XXXXXX"; }
newfile() { mktemp "$SHIP_ROOT/f.XXXXXX"; }

suite_setup() {
  SHIP_ROOT=$(mktemp -d "$FS9_TMP/fs9-ship.XXXXXX")
  SHIP_SAN=$(newdir)
}

# san CMD...: run CMD, which starts a detached daemon, whose stderr is then
# /dev/null: its sanitizer reports (ASan builds) go to files in $SHIP_SAN.
san() {
  env "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$SHIP_SAN/asan" \
      "UBSAN_OPTIONS=${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$SHIP_SAN/ubsan" "$@"
}

suite_teardown() {
  local m p l
  for p in "${SHIP_KILL[@]}"; do
    kill -TERM "$p" 2>/dev/null || continue
    wait_gone "$p" 5 || kill -KILL "$p" 2>/dev/null || true
  done
  for m in "${SHIP_MOUNTS[@]}"; do fs9_unmount "$m" || log "$m had to be forced off"; done
  for m in "${SHIP_MOUNTS[@]}"; do
    # a daemon still serving: its mount is in another namespace, where
    # SIGTERM unmounts it
    p=$(daemon_pid "$m") || continue
    wait_gone "$p" 3 || kill -TERM "$p" 2>/dev/null || true
    SHIP_PIDS+=("$p")
  done
  for p in "${SHIP_PIDS[@]}"; do
    wait_gone "$p" 10 || { log "pid $p still running: killed"; kill -KILL "$p" 2>/dev/null || true; }
  done
  for l in "${SHIP_LINKS[@]}"; do
    set -- $l
    [ "$(readlink "$1")" = "$2" ] && rm -f "$1"
  done
  if [ -n "${SHIP_ROOT:-}" ]; then
    if grep -qF " $SHIP_ROOT/" /proc/mounts; then
      log "a mount is left under $SHIP_ROOT: not removed"
    else
      rm -rf "$SHIP_ROOT"
    fi
  fi
}

need_root() { [ "$(id -u)" = 0 ] || skip "needs root $1"; }

# alive PID: the process exists and has not exited.  A detached daemon's
# parent is init, which may take its time to reap it: a zombie has exited.
alive() {
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "${st%% *}" != Z ]
}

# wait_gone PID [SECONDS]: wait until a process (not necessarily a child)
# has exited.
wait_gone() {
  local pid=$1 secs=${2:-10} i
  for i in $(seq 1 $((secs * 20))); do
    alive "$pid" || return 0
    sleep 0.05
  done
  ! alive "$pid"
}

wait_mounted() { # MOUNTPOINT [SECONDS]
  local i
  for i in $(seq 1 $((${2:-10} * 20))); do
    is_mounted "$1" && return 0
    sleep 0.05
  done
  return 1
}

# daemon_pid MOUNTPOINT: the fs9 process serving MOUNTPOINT (started by
# mount(8), so not a child of this shell).
daemon_pid() {
  local p exe
  for p in $(pgrep -f -- "$1"); do
    exe=$(readlink "/proc/$p/exe" 2>/dev/null) || continue
    case $(basename "$exe") in fs9) echo "$p"; return 0 ;; esac
  done
  return 1
}

# assert_detached PID: a daemon in its own session, not a child of ours.
assert_detached() {
  local pid=$1 sid ppid
  sid=$(ps -o sid= -p "$pid" | tr -d ' ')
  ppid=$(ps -o ppid= -p "$pid" | tr -d ' ')
  [ "$sid" = "$pid" ] || fail "daemon $pid is not in its own session (sid $sid)"
  [ "$ppid" != "$$" ] && [ "$ppid" != "$BASHPID" ] || fail "daemon $pid is still a child of the shell"
}

assert_no_sanitizer_report() {
  local f
  for f in "$SHIP_SAN"/*; do
    [ -e "$f" ] || continue
    cat "$f" >&2
    fail "a daemon left a sanitizer report ($f)"
  done
}

# mount_entry MOUNTPOINT: source, type and options of a mount, from
# /proc/mounts (never touching the mount itself).
mount_entry() { awk -v m="$1" '$2 == m { print $1, $3, $4 }' /proc/mounts; }

# The build directory of $FS9 and `meson install --destdir` of it.
ship_install() {
  SHIP_BUILD=$(cd "$(dirname "$FS9")/../.." && pwd)
  [ -d "$SHIP_BUILD/meson-private" ] || skip "$FS9 is not in a meson build directory"
  command -v meson >/dev/null || skip "meson is not installed"
  SHIP_DEST=$(newdir)
  local out
  out=$(meson install -C "$SHIP_BUILD" --destdir "$SHIP_DEST" --no-rebuild --quiet 2>&1) ||
    fail "meson install --destdir failed: $out"
  eval "$(meson introspect --buildoptions "$SHIP_BUILD" | python3 -c '
import json, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
for k in ("prefix", "bindir", "libdir", "includedir", "mandir", "mount_helper_dir"):
    v = o.get(k, "")
    if k not in ("prefix", "mount_helper_dir") and not v.startswith("/"):
        v = o["prefix"].rstrip("/") + "/" + v
    print("SHIP_%s=%s" % (k.upper(), v))
')"
}

# ship_system_links TYPE: ship_install, then make the installed fs9 what
# mount.fuse3's shell finds (its default PATH, as mount(8) clears PATH) and,
# for TYPE fs9, the installed mount.fs9 what mount(8) finds in /sbin, for
# this test only.
ship_system_links() {
  local type=$1 helper target
  need_root "to put fs9 in /usr/local/bin and mount.fs9 in /sbin"
  exec 9>"$SHIP_LOCK"
  flock -w 600 9 || fail "could not take $SHIP_LOCK"
  ship_install
  target=$SHIP_BINDIR/fs9
  if [ "$type" = fs9 ]; then
    [ "$SHIP_MOUNT_HELPER_DIR" = /sbin ] || skip "this build installs mount.fs9 in '$SHIP_MOUNT_HELPER_DIR', not /sbin"
    helper=$SHIP_DEST/sbin/mount.fs9
    [ -L "$helper" ] || fail "meson install made no $helper link"
    assert_eq "$(readlink "$helper")" "$target" "mount.fs9 link target"
    if [ -e /sbin/mount.fs9 ] || [ -L /sbin/mount.fs9 ]; then skip "/sbin/mount.fs9 exists (fs9 is installed)"; fi
  fi
  if [ -e "$target" ] || [ -L "$target" ]; then skip "$target exists (fs9 is installed)"; fi
  case $(dirname "$target") in
    /usr/local/sbin|/usr/local/bin|/usr/sbin|/usr/bin|/sbin|/bin) ;;
    *) skip "fs9 installs at $target, outside the shell's default PATH" ;;
  esac
  ln -s "$SHIP_DEST$target" "$target"
  SHIP_LINKS+=("$target $SHIP_DEST$target")
  if [ "$type" = fs9 ]; then
    cp -P "$helper" /sbin/mount.fs9
    SHIP_LINKS+=("/sbin/mount.fs9 $target")
  fi
}

# --------------------------------------------------------------- install

test_meson_install_puts_every_file_in_place() {
  ship_install
  local d=$SHIP_DEST f
  [ -x "$d$SHIP_BINDIR/fs9" ] && [ -f "$d$SHIP_BINDIR/fs9" ] || fail "no $SHIP_BINDIR/fs9"
  if [ -n "$SHIP_MOUNT_HELPER_DIR" ]; then
    [ -L "$d$SHIP_MOUNT_HELPER_DIR/mount.fs9" ] || fail "no $SHIP_MOUNT_HELPER_DIR/mount.fs9"
    assert_eq "$(readlink "$d$SHIP_MOUNT_HELPER_DIR/mount.fs9")" "$SHIP_BINDIR/fs9" "mount.fs9 link target"
  fi
  [ -f "$d$SHIP_INCLUDEDIR/fs9/provider.h" ] || fail "no $SHIP_INCLUDEDIR/fs9/provider.h"
  f=$d$SHIP_LIBDIR/pkgconfig/fs9-provider.pc
  [ -f "$f" ] || fail "no $SHIP_LIBDIR/pkgconfig/fs9-provider.pc"
  grep -q "^plugindir=$SHIP_LIBDIR/fs9/plugins\$" "$f" || fail "fs9-provider.pc has no plugindir: $(cat "$f")"
  # every plugin the build made
  for f in "$SHIP_BUILD"/plugins/*.so "$SHIP_BUILD"/plugins/*/*.so; do
    [ -f "$f" ] || continue
    [ -f "$d$SHIP_LIBDIR/fs9/plugins/$(basename "$f")" ] || fail "plugin $(basename "$f") not installed in $SHIP_LIBDIR/fs9/plugins"
  done
  # every man page of the source tree, in its section
  for f in "$SHIP_SRC"/man/*.[1-8]; do
    local name sec
    name=$(basename "$f"); sec=${name##*.}
    [ "$name" = mount.fs9.8 ] && [ -z "$SHIP_MOUNT_HELPER_DIR" ] && continue
    [ -f "$d$SHIP_MANDIR/man$sec/$name" ] || fail "man page $name not installed in $SHIP_MANDIR/man$sec"
  done
  # every installed command has a man page
  for f in "$d$SHIP_BINDIR"/* ${SHIP_MOUNT_HELPER_DIR:+"$d$SHIP_MOUNT_HELPER_DIR"/*}; do
    [ -e "$f" ] || [ -L "$f" ] || continue
    local cmd
    cmd=$(basename "$f")
    ls "$d$SHIP_MANDIR"/man[18]/"$cmd".[18] >/dev/null 2>&1 || fail "command $cmd has no man page"
  done
  # nothing unexpected: every file is one of the above
  (cd "$d" && find . ! -type d) | while read -r f; do
    case ${f#.} in
      "$SHIP_BINDIR"/fs9|"$SHIP_MOUNT_HELPER_DIR"/mount.fs9|"$SHIP_INCLUDEDIR"/fs9/*|"$SHIP_LIBDIR"/fs9/plugins/*.so|"$SHIP_LIBDIR"/pkgconfig/fs9-provider.pc|"$SHIP_MANDIR"/man[1-8]/*) ;;
      *) fail "unexpected installed file ${f#.}" ;;
    esac
  done
}

# ----------------------------------------------------- the mount helper

# Called as mount.fs9 (a link to fs9), fs9 takes mount(8)'s helper
# arguments: SPEC DIR [-sfnv] [-N NS] [-o OPTIONS] [-t TYPE].
test_mount_helper_takes_mount_arguments_without_sbin() {
  local bin d out pid
  bin=$(newdir); d=$(newdir)
  ln -s "$FS9" "$bin/mount.fs9"
  # -f (fake) mounts nothing; -v shows the command, without mount's user=
  out=$("$bin/mount.fs9" memfs "$d" -f -v -o rw,nosuid,user=alice,size=1M -t fs9 2>&1) ||
    fail "mount.fs9 -f failed: $out"
  case $out in *"fs9 -o rw,nosuid,size=1M memfs $d"*) ;; *) fail "mount.fs9 -v said '$out'";; esac
  is_mounted "$d" && fail "-f mounted"
  # bad helper arguments get one line and status 1
  out=$("$bin/mount.fs9" memfs "$d" -x 2>&1) && fail "mount.fs9 -x succeeded"
  case $out in *"unknown option '-x'"*) ;; *) fail "mount.fs9 -x said '$out'";; esac
  out=$("$bin/mount.fs9" memfs 2>&1) && fail "mount.fs9 without DIR succeeded"
  case $out in *"missing DIR"*) ;; *) fail "mount.fs9 without DIR said '$out'";; esac
  # options as mount(8) passes them for defaults,nofail,_netdev,user,...
  SHIP_MOUNTS+=("$d")
  out=$(san timeout 30 "$bin/mount.fs9" memfs "$d" -s -n -o rw,relatime,noatime,nosuid,nodev,noexec,nofail,_netdev,user -o size=8M 2>&1) ||
    fail "mount.fs9 failed: $out"
  is_mounted "$d" || fail "mount.fs9 returned before the mount was up"
  set -- $(mount_entry "$d")
  assert_eq "$1 $2" "memfs fuse.fs9" "source and type"
  case ,$3, in *,noexec,*) ;; *) fail "noexec did not reach the kernel: $3";; esac
  assert_eq "$(df -P "$d" | awk 'NR == 2 { print $2 }')" 8192 "df size of memfs size=8M"
  pid=$(daemon_pid "$d") || fail "no daemon for $d"
  SHIP_PIDS+=("$pid")
  assert_detached "$pid"
  echo x >"$d/f"
  timeout 10 fusermount3 -u "$d" || fail "fusermount3 -u failed"
  wait_gone "$pid" 10 || fail "daemon still running after fusermount3 -u"
  assert_no_sanitizer_report
}

# mount -N: the helper mounts in the mount namespace it is given.
test_mount_helper_enters_the_namespace_given_with_N() {
  need_root "for mount namespaces"
  command -v unshare >/dev/null && command -v nsenter >/dev/null || skip "unshare/nsenter missing"
  local bin d ns pid out
  bin=$(newdir); d=$(newdir)
  ln -s "$FS9" "$bin/mount.fs9"
  unshare -m --propagation private sleep 120 &
  ns=$!
  SHIP_KILL+=("$ns")
  sleep 0.2
  [ "$(readlink /proc/$ns/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ] || skip "unshare -m made no namespace"
  out=$(san timeout 30 "$bin/mount.fs9" memfs "$d" -o size=1M -N "/proc/$ns/ns/mnt" 2>&1) || {
    kill "$ns"; fail "mount.fs9 -N failed: $out"; }
  is_mounted "$d" && { kill "$ns"; fail "mounted in our namespace, not the one given"; }
  nsenter -t "$ns" -m awk -v m="$d" '$2 == m { f = 1 } END { exit !f }' /proc/mounts || {
    kill "$ns"; fail "not mounted in the namespace given"; }
  pid=$(daemon_pid "$d") || { kill "$ns"; fail "no daemon"; }
  SHIP_PIDS+=("$pid")
  nsenter -t "$ns" -m sh -c "echo in-ns >'$d/f' && cat '$d/f'" | grep -q in-ns || { kill "$ns"; fail "mount in the namespace does not work"; }
  timeout 10 nsenter -t "$ns" -m umount "$d" || { kill "$ns"; fail "umount in the namespace failed"; }
  wait_gone "$pid" 10 || { kill "$ns"; fail "daemon still running after umount"; }
  kill "$ns"
  assert_no_sanitizer_report
}

# ------------------------------------------------------- fstab, mount(8)

# fstab_round_trip TYPE: entries of TYPE mount with mount --fstab (and -T),
# with the generic options mount(8) and fstab users put there, and end with
# umount; a bad entry fails with fs9's message on the terminal.
fstab_round_trip() {
  local type=$1 m1 m2 m3 m4 m5 back conf fstab out p1 p2 p4 p5
  ship_system_links "$type"
  m1=$(newdir); m2=$(newdir); m3=$(newdir); m4=$(newdir); m5=$(newdir); back=$(newdir)
  conf=$(newfile)
  printf '[mount /]\nprovider = memfs\nsize = 4M\n' >"$conf"
  fstab=$(newfile)
  cat >"$fstab" <<EOF
# fs9 test entries ($type)
memfs          $m1  $type  defaults,nofail,_netdev,user,relatime,noatime,nosuid,nodev,size=32M  0 0
localfs:$back  $m2  $type  defaults,nofail,_netdev,user,relatime,noatime,nosuid,nodev  0 0
nosuch         $m3  $type  defaults,nofail  0 0
$conf          $m5  $type  defaults,noatime  0 0
EOF
  SHIP_MOUNTS+=("$m1" "$m2" "$m3" "$m4" "$m5")

  out=$(san timeout 30 mount --fstab "$fstab" "$m1" 2>&1) || fail "mount --fstab $m1 ($type) failed: $out"
  is_mounted "$m1" || fail "mount returned before $m1 was mounted"
  set -- $(mount_entry "$m1")
  assert_eq "$1 $2" "memfs fuse.fs9" "source and type of $m1"
  for o in nosuid nodev noatime; do
    case ,$3, in *,$o,*) ;; *) fail "$o missing from the mount options: $3";; esac
  done
  p1=$(daemon_pid "$m1") || fail "no daemon for $m1"
  SHIP_PIDS+=("$p1")
  assert_detached "$p1"
  echo hello >"$m1/f"
  assert_file_eq "$m1/f" hello
  assert_eq "$(df -P "$m1" | awk 'NR == 2 { print $1, $2 }')" "memfs 32768" "df of $m1"
  mount | grep -qF "memfs on $m1 type fuse.fs9 (" || fail "mount does not list $m1: $(mount | grep -F "$m1")"

  out=$(san timeout 30 mount -T "$fstab" "$m2" 2>&1) || fail "mount -T $m2 ($type) failed: $out"
  set -- $(mount_entry "$m2")
  assert_eq "$1 $2" "localfs:$back fuse.fs9" "source and type of $m2"
  p2=$(daemon_pid "$m2") || fail "no daemon for $m2"
  SHIP_PIDS+=("$p2")
  echo data >"$m2/g"

  # a bad entry: fs9's own message reaches the terminal, nothing mounted
  out=$(san timeout 30 mount --fstab "$fstab" "$m3" 2>&1) && fail "mounting the bad entry succeeded"
  case $out in *"unknown provider 'nosuch'"*) ;; *) fail "mount of a bad entry said '$out'";; esac
  is_mounted "$m3" && fail "the bad entry left a mount"

  # without fstab: mount -t TYPE
  out=$(san timeout 30 mount -t "$type" -o size=16M memfs "$m4" 2>&1) || fail "mount -t $type failed: $out"
  assert_eq "$(df -P "$m4" | awk 'NR == 2 { print $1, $2 }')" "memfs 16384" "df of $m4"
  p4=$(daemon_pid "$m4") || fail "no daemon for $m4"
  SHIP_PIDS+=("$p4")

  # a configuration file as the source
  out=$(san timeout 30 mount --fstab "$fstab" "$m5" 2>&1) || fail "mount of a configuration file ($type) failed: $out"
  assert_eq "$(df -P "$m5" | awk 'NR == 2 { print $1, $2 }')" "$conf 4096" "df of $m5"
  p5=$(daemon_pid "$m5") || fail "no daemon for $m5"
  SHIP_PIDS+=("$p5")

  # umount ends each daemon; localfs data is in the host directory
  for m in "$m1:$p1" "$m2:$p2" "$m4:$p4" "$m5:$p5"; do
    timeout 10 umount "${m%%:*}" || fail "umount ${m%%:*} failed"
    wait_gone "${m##*:}" 10 || fail "daemon of ${m%%:*} still running after umount"
    is_mounted "${m%%:*}" && fail "${m%%:*} still mounted after umount"
  done
  assert_file_eq "$back/g" data
  assert_no_sanitizer_report
}

test_fstab_type_fs9_mounts_through_sbin_mount_fs9() {
  fstab_round_trip fs9
}

test_fstab_type_fuse_fs9_mounts_through_mount_fuse3() {
  command -v mount.fuse3 >/dev/null || [ -x /sbin/mount.fuse3 ] || skip "mount.fuse3 is not installed"
  fstab_round_trip fuse.fs9
}

# mount -f (fake) through mount(8) runs the helper, which mounts nothing;
# mount -N mounts in another namespace.
test_mount_fake_and_namespace_through_sbin_mount_fs9() {
  local d ns pid out
  ship_system_links fs9
  d=$(newdir)
  SHIP_MOUNTS+=("$d")
  out=$(timeout 30 mount -f -v -t fs9 memfs "$d" 2>&1) || fail "mount -f failed: $out"
  is_mounted "$d" && fail "mount -f mounted"
  command -v unshare >/dev/null || skip "unshare missing"
  unshare -m --propagation private sleep 120 &
  ns=$!
  SHIP_KILL+=("$ns")
  sleep 0.2
  out=$(san timeout 30 mount -N "$ns" -t fs9 -o size=1M memfs "$d" 2>&1) || { kill "$ns"; fail "mount -N failed: $out"; }
  is_mounted "$d" && { kill "$ns"; fail "mount -N mounted in our namespace"; }
  nsenter -t "$ns" -m awk -v m="$d" '$2 == m { f = 1 } END { exit !f }' /proc/mounts || {
    kill "$ns"; fail "mount -N: not mounted in the namespace given"; }
  pid=$(daemon_pid "$d") || { kill "$ns"; fail "no daemon"; }
  SHIP_PIDS+=("$pid")
  timeout 10 nsenter -t "$ns" -m umount "$d" || { kill "$ns"; fail "umount in the namespace failed"; }
  wait_gone "$pid" 10 || { kill "$ns"; fail "daemon still running after umount"; }
  kill "$ns"
  assert_no_sanitizer_report
}

# ----------------------------------------------------------- df, mount

test_df_and_mount_show_source_and_type_fuse_fs9() {
  local d1 d2 d3 back want got
  d1=$(newdir); d2=$(newdir); d3=$(newdir); back=$(newdir)
  fs9_start -o size=64M memfs "$d1"
  fs9_start "localfs:$back" "$d2"
  fs9_start -o fsname=scratch memfs "$d3"
  mount | grep -qF "memfs on $d1 type fuse.fs9 (" || fail "mount: $(mount | grep -F "$d1")"
  mount | grep -qF "localfs:$back on $d2 type fuse.fs9 (" || fail "mount: $(mount | grep -F "$d2")"
  assert_eq "$(findmnt -n -o SOURCE,FSTYPE "$d1" | tr -s ' ')" "memfs fuse.fs9" "findmnt $d1"
  assert_eq "$(df -P "$d1" | awk 'NR == 2 { print $1, $2, $6 }')" "memfs 65536 $d1" "df $d1"
  assert_eq "$(df -PT "$d1" | awk 'NR == 2 { print $2 }')" fuse.fs9 "df -T type"
  # localfs: the host file system's size
  want=$(df -P "$back" | awk 'NR == 2 { print $2 }')
  got=$(df -P "$d2" | awk 'NR == 2 { print $1, $2 }')
  assert_eq "$got" "localfs:$back $want" "df $d2"
  [ "$(df -P "$d2" | awk 'NR == 2 { print $4 }')" -gt 0 ] || fail "df shows no space available on localfs"
  assert_eq "$(df -P "$d3" | awk 'NR == 2 { print $1 }')" scratch "df with fsname="
  # a comma in SOURCE is no option separator
  local d4 odd
  d4=$(newdir); odd=$(newdir)/"a,b"
  mkdir "$odd"
  fs9_start "localfs:$odd" "$d4"
  assert_eq "$(findmnt -n -o SOURCE "$d4")" "localfs:$odd" "findmnt of a SOURCE with a comma"
  echo x >"$d4/f"
  assert_file_eq "$odd/f" x
  fs9_stop || fail "did not stop cleanly"
}

# ------------------------------------------------------------ life cycle

# The daemon's exit status says whether the mount works: an option that
# only fails when the kernel's FUSE_INIT is answered (max_read= that
# libfuse refuses there, for one) must not let the parent report success.
test_daemon_exit_status_matches_a_working_mount() {
  local d rc=0 out
  d=$(newdir)
  SHIP_MOUNTS+=("$d")
  out=$(san timeout 30 "$FS9" -o max_read=65536 memfs "$d" 2>&1) || rc=$?
  if [ "$rc" = 0 ]; then
    is_mounted "$d" || fail "fs9 exited 0 but nothing is mounted"
    echo x >"$d/f" || fail "fs9 exited 0 but the mount does not work"
    local pid
    pid=$(daemon_pid "$d") || fail "no daemon"
    SHIP_PIDS+=("$pid")
    timeout 10 fusermount3 -u "$d"
    wait_gone "$pid" 10 || fail "daemon still running after unmount"
  else
    [ "$rc" != 124 ] || fail "fs9 hung"
    is_mounted "$d" && fail "fs9 failed ($rc) but left a mount"
    [ -n "$out" ] || fail "fs9 failed ($rc) without a message"
  fi
  assert_no_sanitizer_report
}

# acked ACKFILE: the byte count ack_writer.py has recorded (0 before its
# first record).
acked() {
  local n
  n=$(tr -dc 0-9 <"$1")
  echo $((10#${n:-0}))
}

# signal_mid_write SIGNAL: a writer streams a known pattern into a localfs
# file; SIGNAL reaches the daemon mid-file.  The daemon must exit 0 and
# leave no mount, and every byte the writer was told was written must be
# in the backing file.
signal_mid_write() {
  local sig=$1 extra=${2:-} back mnt lg pid wp ack size want got i
  command -v python3 >/dev/null || skip "python3 missing"
  env --default-signal=INT true 2>/dev/null || skip "env --default-signal missing (coreutils < 8.31)"
  back=$(newdir); mnt=$(newdir); lg=$(newfile)
  local ackf wlog
  ackf=$(newfile); wlog=$(newfile)
  # Background jobs of a non-interactive shell ignore SIGINT, and fs9
  # keeps a signal that was ignored at start ignored: give it back.
  env --default-signal=INT,HUP,TERM "$FS9" -f $extra "localfs:$back" "$mnt" 2>"$lg" &
  pid=$!
  echo "$pid $mnt $lg" >>"$FS9_MOUNTS_FILE"
  wait_mounted "$mnt" 10 || fail "fs9 did not mount: $(cat "$lg")"
  python3 "$SHIP_WRITER" write "$mnt/data" "$ackf" 65536 0.002 2>"$wlog" &
  wp=$!
  SHIP_KILL+=("$wp")
  for i in $(seq 1 400); do
    [ "$(acked "$ackf")" -ge 4194304 ] && break
    kill -0 "$wp" 2>/dev/null || break
    sleep 0.025
  done
  kill -0 "$wp" 2>/dev/null || fail "the writer stopped early: $(cat "$wlog")"
  [ "$(acked "$ackf")" -ge 4194304 ] || fail "the writer made no progress"

  local ack_at_signal
  ack_at_signal=$(acked "$ackf")
  kill -"$sig" "$pid"
  fs9_wait_exit "$pid" 20
  sed -i "\|^$pid |d" "$FS9_MOUNTS_FILE"
  if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$lg"; then
    cat "$lg" >&2; fail "sanitizer report"
  fi
  assert_eq "$FS9_EXIT" 0 "fs9's exit status after SIG$sig (log: $(cat "$lg"))"
  is_mounted "$mnt" && fail "SIG$sig left $mnt mounted"
  grep -q 'error' "$lg" && fail "fs9 logged an error at SIG$sig: $(cat "$lg")"

  # the writer sees its next write fail and stops
  wait_gone "$wp" 10 || fail "the writer hangs on the unmounted file"
  wait "$wp" || true
  ack=$(acked "$ackf")
  # With the write-back cache the kernel itself acknowledges writes made
  # while fs9 is stopping; what must survive is what was written before
  # the signal (fs9 syncs the mount first).  Without it, every write is
  # acknowledged by the provider, so every acknowledged byte must survive.
  case $extra in *writeback*) ack=$ack_at_signal ;; esac
  size=$(stat -c %s "$back/data")
  [ "$size" -ge "$ack" ] || fail "the backing file has $size bytes; the writer was told $ack were written"
  want=$(python3 "$SHIP_WRITER" expect 65536 "$ack" | sha256sum)
  got=$(head -c "$ack" "$back/data" | sha256sum)
  assert_eq "$got" "$want" "checksum of the $ack acknowledged bytes"
  log "SIG$sig: $ack bytes acknowledged, $size in the backing file, prefix intact ($(cat "$wlog"))"
}

test_sigterm_mid_write_keeps_every_acknowledged_byte() { signal_mid_write TERM; }
test_sigint_mid_write_keeps_every_acknowledged_byte() { signal_mid_write INT; }
test_sighup_mid_write_keeps_every_acknowledged_byte() { signal_mid_write HUP; }
# With the kernel's write-back cache, acknowledged data may still be in the
# page cache at the signal: fs9 syncs the mount before it stops serving.
test_sigterm_mid_write_with_writeback_keeps_every_acknowledged_byte() {
  signal_mid_write TERM "-o writeback"
}

# ---------------------------------------------------------------- logging

# stop_own PID MOUNTPOINT: unmount a foreground fs9 of this test and reap
# it; FS9_EXIT is its status.  Its log stays for the test to read.
stop_own() {
  timeout 10 fusermount3 -u "$2" || fail "fusermount3 -u $2 failed"
  fs9_wait_exit "$1" 10
  sed -i "\|^$1 |d" "$FS9_MOUNTS_FILE"
}

# At the default level a busy session, failures included, logs nothing.
test_default_log_level_logs_nothing_per_request() {
  local back d1 d2 lg1 lg2 pid1 pid2 d
  back=$(newdir); d1=$(newdir); d2=$(newdir)
  fs9_start memfs "$d1"; pid1=$FS9_PID; lg1=$FS9_LOG
  fs9_start "localfs:$back" "$d2"; pid2=$FS9_PID; lg2=$FS9_LOG
  for d in "$d1" "$d2"; do
    mkdir "$d/dir"
    for i in $(seq 1 50); do echo "$i" >"$d/dir/f$i"; done
    cat "$d"/dir/* >/dev/null
    ls -l "$d/dir" >/dev/null
    mv "$d/dir/f1" "$d/dir/g1"
    ln -s f2 "$d/dir/link"
    # requests that fail, as programs make them all the time
    cat "$d/missing" 2>/dev/null && fail "cat of a missing file worked"
    mkdir "$d/dir" 2>/dev/null && fail "mkdir of an existing directory worked"
    rmdir "$d/dir" 2>/dev/null && fail "rmdir of a full directory worked"
    ls "$d/nope/deeper" 2>/dev/null && fail "ls of a missing path worked"
    rm -rf "$d/dir"
  done
  stop_own "$pid1" "$d1"; assert_eq "$FS9_EXIT" 0 "memfs exit status"
  stop_own "$pid2" "$d2"; assert_eq "$FS9_EXIT" 0 "localfs exit status"
  [ ! -s "$lg1" ] || fail "memfs logged at the default level: $(cat "$lg1")"
  [ ! -s "$lg2" ] || fail "localfs logged at the default level: $(cat "$lg2")"
  rm -f "$lg1" "$lg2"
}

# -o log_level=info: mount and unmount, one line each, on stderr in the
# foreground.
test_log_level_info_reports_mount_and_unmount_on_stderr() {
  local d pid lg
  d=$(newdir)
  fs9_start -o log_level=info memfs "$d"; pid=$FS9_PID; lg=$FS9_LOG
  echo x >"$d/f"
  stop_own "$pid" "$d"
  assert_eq "$FS9_EXIT" 0 "exit status"
  grep -q "^fs9: info: mounted memfs at $d\$" "$lg" || fail "no 'mounted' line: $(cat "$lg")"
  grep -q "^fs9: info: unmounted $d\$" "$lg" || fail "no 'unmounted' line: $(cat "$lg")"
  rm -f "$lg"
}

# Once detached, fs9 logs to syslog (facility daemon, identifier fs9).  The
# test runs in a private mount namespace whose /dev is a tmpfs holding the
# devices fs9 needs and a /dev/log socket of its own, so the host's /dev and
# syslog are untouched.
test_daemon_logs_to_syslog_once_detached() {
  need_root "for a mount namespace with its own /dev/log"
  command -v unshare >/dev/null || skip "unshare missing"
  local work mnt out
  work=$(newdir); mnt=$(newdir)
  SHIP_MOUNTS+=("$mnt")
  out=$(san timeout 60 unshare -m --propagation private bash -c '
    set -e
    work=$1 fs9=$2 mnt=$3
    mkdir "$work/olddev"
    mount --bind /dev "$work/olddev"
    mount -t tmpfs -o mode=755 fs9-test-dev /dev
    for n in null zero full random urandom fuse; do
      touch "/dev/$n"; mount --bind "$work/olddev/$n" "/dev/$n"
    done
    python3 -c "
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(\"/dev/log\")
with open(sys.argv[1], \"ab\", buffering=0) as f:
    while True:
        f.write(s.recv(65536) + b\"\\n\")
" "$work/syslog" &
    lp=$!
    for i in $(seq 1 100); do [ -S /dev/log ] && break; sleep 0.05; done
    "$fs9" -o log_level=info memfs "$mnt" 2>"$work/stderr"
    echo x >"$mnt/f"
    umount "$mnt"
    for i in $(seq 1 200); do grep -q unmounted "$work/syslog" 2>/dev/null && break; sleep 0.05; done
    kill $lp
  ' _ "$work" "$FS9" "$mnt" 2>&1) || fail "the namespace script failed: $out"
  grep -q "^fs9: info: mounted memfs at $mnt\$" "$work/stderr" ||
    fail "before detaching, the log is not on stderr: $(cat "$work/stderr")"
  grep -qE "^<30>.*fs9\[[0-9]+\]: unmounted $mnt\$" "$work/syslog" ||
    fail "syslog did not get 'unmounted' as daemon.info from fs9[pid]: $(cat "$work/syslog" 2>/dev/null)"
  grep -q unmounted "$work/stderr" && fail "a message after detaching went to stderr"
  assert_no_sanitizer_report
}

# ------------------------------------------------------------ man pages

test_man_pages_render_without_warnings() {
  command -v man >/dev/null || skip "man is not installed"
  local f err n=0
  for f in "$SHIP_SRC"/man/*.[1-8]; do
    for w in "" "=w"; do
      err=$(MANWIDTH=80 man --warnings$w -l "$f" 2>&1 >/dev/null)
      [ -z "$err" ] || fail "man --warnings$w -l $(basename "$f"): $err"
    done
    [ "$(MANWIDTH=80 man -l "$f" 2>/dev/null | wc -l)" -gt 10 ] || fail "$(basename "$f") renders almost empty"
    n=$((n + 1))
  done
  for f in fs9.1 mount.fs9.8; do
    [ -f "$SHIP_SRC/man/$f" ] || fail "man/$f is missing"
  done
}

test_every_option_of_fs9_help_is_in_the_man_page() {
  command -v man >/dev/null || skip "man is not installed"
  local page missing
  page=$(newfile)
  MANWIDTH=200 man -l "$SHIP_SRC/man/fs9.1" 2>/dev/null >"$page"
  missing=$("$FS9" --help | python3 -c '
import re, sys
page = open(sys.argv[1]).read()
help = sys.stdin.read()
words = set()
section = None
for line in help.splitlines():
    if not line.strip():
        continue
    if not line.startswith(" "):
        section = line.split(":")[0]
        rest = line.split(":", 1)[1] if ":" in line else ""
    else:
        rest = line
    m = re.match(r"\s+(-\w(?:,\s*--[\w-]+)?|--[\w-]+)\s", line)
    if m and section == "general options":
        words.update(w.strip() for w in m.group(1).split(","))
    m = re.match(r"\s+-o\s+([a-z_]+)", line)
    if m:
        words.add(m.group(1))
    if section and section.startswith(("kernel mount options", "ignored")):
        rest = re.sub(r"\(.*?\)", "", rest)
        for w in re.split(r"[,\s]+", rest):
            if w and w != "...":
                words.add(w)
def present(w):
    return re.search(r"(?<![\w-])" + re.escape(w) + r"(?!\w)", page) is not None
print(" ".join(sorted(w for w in words if not present(w))))
if len(words) < 40:
    print("(only %d options found in fs9 --help: the parser needs updating)" % len(words))
' "$page")
  [ -z "$missing" ] || fail "in fs9 --help but not in man/fs9.1: $missing"
}
