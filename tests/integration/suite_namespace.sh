# suite_namespace.sh — composing a namespace: configuration files, the
# /.fs9 control files, mounts at run time, mount points in listings, EXDEV
# and EBUSY across providers.

PLUGINS=$(cd "$(dirname "$FS9")/../../plugins" 2>/dev/null && pwd)

ns_setup() { # writes $CONF for: memfs at /, localfs at /data [, streamfs]
  WORK=$(mktemp -d "$FS9_TMP/fs9-ns.XXXXXX")
  MNT=$WORK/mnt
  DATA=$WORK/data
  mkdir -p "$MNT" "$DATA"
  echo from-host >"$DATA/hostfile"
  CONF=$WORK/ns.conf
  cat >"$CONF" <<EOF
# test namespace
[fs9]
entry_timeout = 1
timeout = 30

[mount /]
provider = memfs
size = 256M

[mount /data]
provider = localfs
root = $DATA

[mount /deep/a/b]
provider = memfs
EOF
}

ctl_errno() { # COMMAND: the errno of writing it to ctl, or OK
  errno_of 'fd = os.open("'"$MNT"'/.fs9/ctl", os.O_WRONLY); os.write(fd, b"'"$1"'\n")'
}

suite_teardown() {
  [ -n "${WORK:-}" ] && { fs9_stop || true; rm -rf "$WORK"; }
  return 0
}

test_config_mounts_every_part_and_lists_mount_points() {
  ns_setup
  if [ -f "$PLUGINS/streamfs.so" ]; then
    printf '\n[mount /streams]\nprovider = streamfs\n' >>"$CONF"
  fi
  fs9_start "$CONF" "$MNT"
  assert_eq "$(cat "$MNT/data/hostfile")" from-host
  echo root-file >"$MNT/rootfile"
  echo deep >"$MNT/deep/a/b/f"
  ls "$MNT" | grep -qx data || fail "ls / does not show data"
  ls "$MNT" | grep -qx deep || fail "ls / does not show deep (leads to a mount)"
  assert_eq "$(ls "$MNT/deep")" a
  assert_eq "$(ls "$MNT/deep/a")" b
  assert_eq "$(stat -c %F "$MNT/deep/a")" directory
  assert_eq "$(cat "$MNT/deep/a/b/f")" deep
  if [ -f "$PLUGINS/streamfs.so" ]; then
    ls "$MNT" | grep -qx streams || fail "ls / does not show streams"
    echo hello >"$MNT/streams/s1"
  fi
  grep -q '^/data localfs ' "$MNT/.fs9/mounts" || fail "/.fs9/mounts lacks /data"
  grep -q '^/deep/a/b memfs ' "$MNT/.fs9/mounts" || fail "/.fs9/mounts lacks /deep/a/b"
  # every object has its own inode number across providers
  dups=$(find "$MNT" -xdev -path "$MNT/.fs9" -prune -o -printf '%i\n' | sort | uniq -d)
  [ -z "$dups" ] || fail "inode numbers repeat across providers: $dups"
}

# Each config error kind, with its line number; nothing mounted.
conf_must_fail() { # EXPECTED-SUBSTRING CONFIG-TEXT
  local want=$1 body=$2 out rc=0
  printf '%s\n' "$body" >"$WORK/bad.conf"
  out=$(timeout 20 "$FS9" "$WORK/bad.conf" "$MNT" 2>&1) || rc=$?
  [ $rc -ne 0 ] || { fusermount3 -u "$MNT"; fail "config accepted: $body"; }
  case "$out" in *"$want"*) ;; *) fail "expected '$want', got: $out";; esac
  is_mounted "$MNT" && { fusermount3 -u "$MNT"; fail "something was mounted"; }
  return 0
}

test_config_errors_name_file_line_and_problem() {
  ns_setup
  conf_must_fail "bad.conf:3: unknown provider 'nosuch'" $'[mount /]\n\nprovider = nosuch'
  conf_must_fail "bad.conf:4: duplicate mount path /a (first at line 1)" $'[mount /a]\nprovider=memfs\n\n[mount /a]\nprovider=memfs'
  conf_must_fail "bad.conf:2: bad mount path 'rel'" $'# x\n[mount rel]\nprovider=memfs'
  conf_must_fail "bad.conf:3: memfs at /: unknown key 'colour'" $'[mount /]\nprovider = memfs\ncolour = blue'
  conf_must_fail "bad.conf:3: " $'[mount /]\nprovider = memfs\nsize = lots'
  conf_must_fail "bad.conf:2: option timeout=soon" $'[fs9]\ntimeout = soon'
  conf_must_fail "bad.conf:2: unknown setting 'frobnicate'" $'[fs9]\nfrobnicate = 1'
  conf_must_fail "bad.conf:1: unknown section [mounts /x]" $'[mounts /x]\nprovider=memfs'
  conf_must_fail "bad.conf:2: syntax error" $'[fs9]\nthis is not a setting'
  conf_must_fail "bad.conf:1: [mount /m] has no provider" $'[mount /m]\nsize=1M'
  conf_must_fail "bad.conf:3: localfs at /d: root=$WORK/none" $'[mount /d]\nprovider=localfs\nroot='"$WORK/none"
  conf_must_fail "bad.conf:1: /.fs9 is reserved" $'[mount /.fs9]\nprovider=memfs'
  # several problems: every one is reported
  out=$(timeout 20 "$FS9" /dev/null/nope "$MNT" 2>&1) && fail "missing config accepted"
  printf '[fs9]\nthreads = x\n[mount /]\nprovider = memfs\nsise = 1\n' >"$WORK/two.conf"
  out=$(timeout 20 "$FS9" "$WORK/two.conf" "$MNT" 2>&1) && fail "accepted"
  echo "$out" | grep -q 'two.conf:2:' || fail "first problem missing: $out"
  echo "$out" | grep -q 'two.conf:5:' || fail "second problem missing: $out"
}

test_ctl_mount_and_unmount_at_run_time() {
  ns_setup
  fs9_start memfs "$MNT"
  [ ! -e "$MNT/x" ] || fail "x exists before the mount"
  echo "mount /x localfs root=$DATA" >"$MNT/.fs9/ctl"
  assert_eq "$(cat "$MNT/x/hostfile")" from-host
  ls "$MNT" | grep -qx x || fail "ls / does not show x"
  grep -q "^/x localfs root=$DATA " "$MNT/.fs9/mounts" || fail "mounts lacks /x"
  echo "unmount /x" >"$MNT/.fs9/ctl"
  [ ! -e "$MNT/x" ] || fail "/x still there after unmount"
  ! grep -q '^/x ' "$MNT/.fs9/mounts" || fail "mounts still lists /x"
  # a mount under a directory the parent provider has
  mkdir -p "$MNT/real/dir"; echo keep >"$MNT/real/dir/file"
  echo "mount /real/dir memfs" >"$MNT/.fs9/ctl"
  [ ! -e "$MNT/real/dir/file" ] || fail "the mount does not cover the directory"
  echo "unmount /real/dir" >"$MNT/.fs9/ctl"
  assert_eq "$(cat "$MNT/real/dir/file")" keep "the covered file is back"
}

test_ctl_bad_commands_fail_with_reason_in_error_file() {
  ns_setup
  fs9_start memfs "$MNT"
  for cmd in "frobnicate /x" "mount /x" "mount /x nosuch" "mount /x memfs colour=1" \
             "unmount /never" "mount /x memfs notkv" "mount /.fs9/y memfs" "load /nonexistent.so"; do
    if echo "$cmd" >"$MNT/.fs9/ctl" 2>/dev/null; then fail "'$cmd' succeeded"; fi
    err=$(cat "$MNT/.fs9/error")
    case "$err" in "$cmd"*) ;; *) fail "error file for '$cmd' says '$err'";; esac
  done
  assert_eq "$(ctl_errno "frobnicate")" EINVAL
  assert_eq "$(ctl_errno "unmount /nothing")" ENOENT
  echo "mount /x memfs" >"$MNT/.fs9/ctl"
  assert_eq "$(ctl_errno "mount /x memfs")" EEXIST
}

test_ctl_is_writable_only_by_the_owner() {
  ns_setup
  fs9_start -o allow_other memfs "$MNT"
  chmod 755 "$WORK"
  out=$(setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "echo 'mount /x memfs' >'$MNT/.fs9/ctl'" 2>&1) && fail "nobody could write ctl"
  case "$out" in *"Permission denied"*) ;; *) fail "expected EACCES, got: $out";; esac
  setpriv --reuid=65534 --regid=65534 --clear-groups cat "$MNT/.fs9/version" | grep -q '^fs9 ' || fail "nobody cannot read version"
  [ ! -e "$MNT/x" ] || fail "the refused mount happened"
}

test_stats_count_operations_and_show_the_queue() {
  ns_setup
  fs9_start "$CONF" "$MNT"
  before=$(awk '$1 == "op.lookup.count" {print $2}' "$MNT/.fs9/stats")
  for i in $(seq 1 50); do stat "$MNT/nofile$i" >/dev/null 2>&1 || true; done
  for i in $(seq 1 20); do cat "$MNT/data/hostfile" >/dev/null; done
  s=$(cat "$MNT/.fs9/stats")
  after=$(echo "$s" | awk '$1 == "op.lookup.count" {print $2}')
  [ "${after:-0}" -ge $(( ${before:-0} + 50 )) ] || fail "lookups did not grow: ${before:-0} -> ${after:-0}"
  for key in mounts handles.open inodes.live queue.inflight queue.waiting queue.running queue.parked requests.timeouts op.open.count op.lookup.errors op.lookup.p50_us op.lookup.p99_us; do
    echo "$s" | grep -qE "^$key [0-9.]+$" || fail "stats lacks '$key'"
  done
  [ "$(echo "$s" | awk '$1 == "op.lookup.errors" {print $2}')" -ge 50 ] || fail "lookup errors not counted"
  grep -q '^memfs ' "$MNT/.fs9/providers" || fail "providers lacks memfs"
  grep -q '^localfs ' "$MNT/.fs9/providers" || fail "providers lacks localfs"
}

test_mv_of_a_tree_between_providers_copies_it_intact() {
  ns_setup
  fs9_start "$CONF" "$MNT"
  mkdir -p "$MNT/tree/sub/deeper"
  for i in $(seq 1 40); do head -c $((i * 512)) /dev/urandom >"$MNT/tree/sub/f$i"; done
  ln -s f1 "$MNT/tree/sub/link"
  (cd "$MNT/tree" && find . -type f -exec sha256sum {} + | sort) >"$WORK/before"
  assert_eq "$(errno_of 'os.rename("'"$MNT"'/tree", "'"$MNT"'/data/tree")')" EXDEV
  assert_eq "$(errno_of 'os.link("'"$MNT"'/tree/sub/f1", "'"$MNT"'/data/f1")')" EXDEV
  mv "$MNT/tree" "$MNT/data/tree"
  [ ! -e "$MNT/tree" ] || fail "source left behind"
  (cd "$MNT/data/tree" && find . -type f -exec sha256sum {} + | sort) >"$WORK/after"
  cmp "$WORK/before" "$WORK/after" || fail "contents changed in the move"
  (cd "$DATA/tree" && find . -type f -exec sha256sum {} + | sort) >"$WORK/host"
  cmp "$WORK/before" "$WORK/host" || fail "host copy differs"
  assert_eq "$(readlink "$MNT/data/tree/sub/link")" f1
  mv "$MNT/data/tree" "$MNT/deep/a/b/"
  (cd "$MNT/deep/a/b/tree" && find . -type f -exec sha256sum {} + | sort) >"$WORK/again"
  cmp "$WORK/before" "$WORK/again" || fail "contents changed in the second move"
}

test_mount_points_cannot_be_removed_or_renamed() {
  ns_setup
  fs9_start "$CONF" "$MNT"
  assert_eq "$(errno_of 'os.rmdir("'"$MNT"'/data")')" EBUSY
  assert_eq "$(errno_of 'os.rename("'"$MNT"'/data", "'"$MNT"'/other")')" EBUSY
  assert_eq "$(errno_of 'os.rmdir("'"$MNT"'/deep/a")')" EBUSY
  assert_eq "$(errno_of 'os.rename("'"$MNT"'/deep", "'"$MNT"'/d2")')" EBUSY
  assert_eq "$(errno_of 'os.unlink("'"$MNT"'/data")')" EISDIR
  assert_eq "$(errno_of 'os.mkdir("'"$MNT"'/data")')" EEXIST
  echo x >"$MNT/f"
  # the VFS itself answers a file onto a directory, as on any mount point
  assert_eq "$(errno_of 'os.rename("'"$MNT"'/f", "'"$MNT"'/data")')" EISDIR
  cat "$MNT/data/hostfile" >/dev/null || fail "data broken"
}

test_unmount_refuses_open_files_unless_forced() {
  ns_setup
  fs9_start memfs "$MNT"
  echo "mount /x localfs root=$DATA" >"$MNT/.fs9/ctl"
  exec 7<"$MNT/x/hostfile"
  assert_eq "$(ctl_errno "unmount /x")" EBUSY
  grep -q 'open files' "$MNT/.fs9/error" || fail "error does not say why: $(cat "$MNT/.fs9/error")"
  echo "unmount -f /x" >"$MNT/.fs9/ctl"
  if cat <&7 >/dev/null 2>"$WORK/err"; then fail "read on a force-unmounted handle worked"; fi
  grep -q 'Input/output error' "$WORK/err" || fail "expected EIO, got $(cat "$WORK/err")"
  exec 7<&-
  [ ! -e "$MNT/x" ] || fail "/x still there"
  assert_eq "$(awk '$1 == "handles.open" {print $2}' "$MNT/.fs9/stats")" 0 "the forced handles were closed"
}

test_runtime_mount_is_visible_at_once_despite_caches() {
  ns_setup
  fs9_start -o entry_timeout=60,attr_timeout=60,negative_timeout=60 memfs "$MNT"
  [ ! -e "$MNT/late" ] || fail "late exists"      # a cached negative entry
  ls "$MNT" >/dev/null
  echo "mount /late localfs root=$DATA" >"$MNT/.fs9/ctl"
  for i in $(seq 1 40); do [ -e "$MNT/late/hostfile" ] && break; sleep 0.05; done
  assert_eq "$(cat "$MNT/late/hostfile")" from-host "new mount hidden by the kernel's caches"
  echo "unmount /late" >"$MNT/.fs9/ctl"
  for i in $(seq 1 40); do [ -e "$MNT/late" ] || break; sleep 0.05; done
  [ ! -e "$MNT/late" ] || fail "unmounted path still visible"
}
