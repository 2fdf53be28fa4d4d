# suite_cli.sh — the fs9 command: bad input gets one clear message, a
# non-zero exit and nothing mounted; daemon mode detaches only after the
# mount is up; umount ends the daemon; stale mounts are detected.

newdir() { mktemp -d "$FS9_TMP/fs9-cli.XXXXXX"; }

# run_fs9_fail EXPECTED-MESSAGE-PART ARGS...: fs9 must fail with a message.
run_fs9_fail() {
  local want=$1; shift
  local out rc=0
  out=$(timeout 20 "$FS9" "$@" 2>&1) || rc=$?
  [ "$rc" -ne 0 ] || fail "fs9 $* succeeded; expected failure"
  [ "$rc" -ne 124 ] || fail "fs9 $* hung"
  case "$out" in
    *"$want"*) ;;
    *) fail "fs9 $* said '$out'; expected it to mention '$want'";;
  esac
  [ "$(printf '%s\n' "$out" | grep -c .)" -le 2 ] || fail "fs9 $* printed more than a line or two: $out"
}

assert_not_mounted() {
  is_mounted "$1" && { fusermount3 -u "$1"; fail "$1 was left mounted"; }
  return 0
}

test_help_and_version() {
  "$FS9" --help | grep -q 'usage: fs9 \[options\] SOURCE MOUNTPOINT' || fail "--help"
  "$FS9" -h | grep -q 'localfs:DIR' || fail "-h lists SOURCE forms"
  "$FS9" -V | grep -qE '^fs9 [0-9]+\.[0-9]+' || fail "-V"
}

test_unknown_source_is_refused_and_nothing_mounted() {
  d=$(newdir)
  run_fs9_fail "unknown provider 'nosuch'" -f nosuch "$d"
  assert_not_mounted "$d"
  run_fs9_fail "unknown provider 'nosuch'" nosuch "$d"   # daemon mode too
  assert_not_mounted "$d"
  rmdir "$d"
}

test_missing_or_non_directory_mount_point_is_refused() {
  run_fs9_fail "No such file or directory" -f memfs "$FS9_TMP/fs9-does-not-exist-$$"
  f=$(mktemp "$FS9_TMP/fs9-file.XXXXXX")
  run_fs9_fail "not a directory" memfs "$f"
  rm -f "$f"
  run_fs9_fail "missing MOUNTPOINT" memfs
}

test_unknown_options_are_refused() {
  d=$(newdir)
  run_fs9_fail "unknown option '-x'" -x memfs "$d"
  run_fs9_fail "unknown option 'bogus'" -o bogus memfs "$d"
  run_fs9_fail "memfs at /: unknown key 'sise'" -o sise=1G memfs "$d"
  run_fs9_fail "entry_timeout=abc" -o entry_timeout=abc memfs "$d"
  run_fs9_fail "threads=0" -o threads=0 memfs "$d"
  assert_not_mounted "$d"
  rmdir "$d"
}

test_bad_localfs_root_is_refused() {
  d=$(newdir)
  run_fs9_fail "root=/nonexistent-fs9" localfs:/nonexistent-fs9 "$d"
  f=$(mktemp "$FS9_TMP/fs9-file.XXXXXX")
  run_fs9_fail "$f" "localfs:$f" "$d"
  assert_not_mounted "$d"
  rm -f "$f"; rmdir "$d"
}

test_already_mounted_point_is_refused() {
  d=$(newdir)
  fs9_start memfs "$d"
  run_fs9_fail "already a mount point" memfs "$d"
  echo still >"$d/ok" || fail "the first mount broke"
  fs9_stop || fail "first mount did not stop cleanly"
  rmdir "$d"
}

test_generic_fstab_options_are_accepted() {
  d=$(newdir)
  fs9_start -o defaults,nofail,_netdev,noauto,user,users,rw,relatime,noatime,nosuid,nodev,exec,noexec,x-systemd.automount memfs "$d"
  grep " $d fuse.fs9 " /proc/mounts | grep -q nosuid || fail "nosuid not passed to the kernel"
  echo x >"$d/f"
  fs9_stop || fail "did not stop cleanly"
  rmdir "$d"
}

test_daemon_mode_detaches_after_mount_and_umount_ends_it() {
  d=$(newdir)
  "$FS9" memfs "$d" || fail "daemon start failed"
  is_mounted "$d" || fail "fs9 returned before the mount was up"
  pid=$(pgrep -f "fs9 memfs $d" | head -1)
  [ -n "$pid" ] || { fusermount3 -u "$d"; fail "no daemon process"; }
  [ "$(ps -o sid= -p "$pid" | tr -d ' ')" = "$pid" ] || { fusermount3 -u "$d"; fail "daemon is not in its own session"; }
  echo hi >"$d/x"
  timeout 10 fusermount3 -u "$d" || fail "fusermount3 -u failed"
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -0 "$pid" 2>/dev/null && { kill "$pid"; fail "daemon still running after umount"; }
  rmdir "$d"
}

test_sigterm_unmounts_and_exits_zero() {
  d=$(newdir)
  "$FS9" -f memfs "$d" 2>"$FS9_TMP/fs9-sig.$$" &
  pid=$!
  for i in $(seq 1 100); do is_mounted "$d" && break; sleep 0.05; done
  is_mounted "$d" || fail "did not mount"
  echo data >"$d/f"
  kill -TERM "$pid"
  fs9_wait_exit "$pid" 10
  assert_eq "$FS9_EXIT" 0 "exit status after SIGTERM"
  assert_not_mounted "$d"
  rm -f "$FS9_TMP/fs9-sig.$$"; rmdir "$d"
}

test_stale_mount_is_detected_and_cleared_on_request() {
  d=$(newdir)
  "$FS9" -f memfs "$d" 2>/dev/null &
  pid=$!
  for i in $(seq 1 100); do is_mounted "$d" && break; sleep 0.05; done
  kill -KILL "$pid"; wait "$pid" 2>/dev/null || true
  run_fs9_fail "fusermount3 -u" memfs "$d"
  "$FS9" -o clear_stale memfs "$d" || { fusermount3 -u -z "$d"; fail "clear_stale did not recover"; }
  echo ok >"$d/f" || fail "new mount not usable"
  timeout 10 fusermount3 -u "$d"
  for i in $(seq 1 40); do is_mounted "$d" || break; sleep 0.05; done
  rmdir "$d"
}

test_noxattr_turns_extended_attributes_off_and_nothing_else() {
  d=$(newdir)
  fs9_start -o noxattr memfs "$d"
  echo data >"$d/f"
  # ENOTSUP is EOPNOTSUPP on Linux; Python names the number ENOTSUP
  assert_eq "$(errno_of 'os.setxattr("'"$d"'/f", "user.x", b"1")')" ENOTSUP
  assert_eq "$(errno_of 'os.getxattr("'"$d"'/f", "user.x")')" ENOTSUP
  assert_eq "$(errno_of 'os.listxattr("'"$d"'/f")')" ENOTSUP
  echo more >>"$d/f"
  assert_eq "$(cat "$d/f")" "$(printf 'data\nmore')"
  cp -a "$d/f" "$d/g" || fail "cp -a fails without xattrs"
  fs9_stop || fail "did not stop cleanly"
  rmdir "$d"
}
