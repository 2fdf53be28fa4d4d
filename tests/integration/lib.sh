# lib.sh — helpers for FS9 integration tests: mount, unmount, assertions.
#
# Every mount made here is undone by fs9_stop, with timeouts: a daemon
# that hangs has its FUSE connection aborted through fusectl, so a broken
# mount fails the test instead of hanging the run.

: "${FS9:?FS9 must name the fs9 binary}"
FS9_TMP=${FS9_TMP:-/tmp}

# Mounts made by this shell: "pid mountpoint log" per line.
FS9_MOUNTS_FILE=${FS9_MOUNTS_FILE:-$(mktemp "$FS9_TMP/fs9-mounts.XXXXXX")}

log() { printf '%s\n' "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }
skip() { log "SKIP: $*"; exit 77; }

is_mounted() { # MOUNTPOINT — without touching the mount itself
  awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/mounts
}

# fuse connection number of a mount, from mountinfo (never stat a mount
# that may hang).
fuse_conn() {
  awk -v m="$1" '$5 == m { split($3, d, ":"); print d[1] * 1048576 + d[2]; exit }' /proc/self/mountinfo
}

# fs9_start [fs9 args...] SOURCE MOUNTPOINT: run fs9 in the foreground (in
# the background of this shell) and wait until the mount is up.
# Sets FS9_PID and FS9_LOG.
fs9_start() {
  local mnt=${!#}
  FS9_LOG=$(mktemp "$FS9_TMP/fs9-log.XXXXXX")
  "$FS9" -f "$@" 2>"$FS9_LOG" &
  FS9_PID=$!
  echo "$FS9_PID $mnt $FS9_LOG" >>"$FS9_MOUNTS_FILE"
  local i
  for i in $(seq 1 200); do
    if is_mounted "$mnt"; then return 0; fi
    if ! kill -0 "$FS9_PID" 2>/dev/null; then
      wait "$FS9_PID" 2>/dev/null || true
      log "fs9 exited before mounting:"; cat "$FS9_LOG" >&2
      return 1
    fi
    sleep 0.05
  done
  log "fs9 did not mount $mnt within 10 s"; cat "$FS9_LOG" >&2
  return 1
}

# remount [fs9 options...]: in a per-provider test, mount $PROVIDER afresh
# at $MNT with these options (a localfs keeps its backing directory), and
# cd into it.
remount() {
  cd /
  fs9_stop || return 1
  case $PROVIDER in
    memfs) fs9_start "$@" memfs "$MNT" ;;
    localfs) fs9_start "$@" "localfs:$BACKING" "$MNT" ;;
    *) fail "remount: unknown provider $PROVIDER" ;;
  esac
  cd "$MNT"
}

# fs9_unmount MOUNTPOINT: unmount within a few seconds, whatever it takes.
fs9_unmount() {
  local mnt=$1
  is_mounted "$mnt" || return 0
  timeout 10 fusermount3 -u "$mnt" 2>/dev/null && return 0
  local conn
  conn=$(fuse_conn "$mnt")
  if [ -n "$conn" ] && [ -w "/sys/fs/fuse/connections/$conn/abort" ]; then
    echo 1 >"/sys/fs/fuse/connections/$conn/abort"
  fi
  timeout 10 fusermount3 -u -z "$mnt" 2>/dev/null || timeout 10 umount -l "$mnt" 2>/dev/null || true
  return 1
}

# fs9_wait_exit PID [SECONDS]: wait for a daemon (a child of this shell)
# to exit; TERM then KILL after SECONDS.  Sets FS9_EXIT to its status.
fs9_wait_exit() {
  local pid=$1 secs=${2:-10} i
  for i in $(seq 1 $((secs * 20))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null; sleep 1
    kill -KILL "$pid" 2>/dev/null || true
  fi
  FS9_EXIT=0
  wait "$pid" 2>/dev/null || FS9_EXIT=$?
}

# fs9_stop: undo every mount this shell made; fails (returns 1) if one had
# to be forced or its daemon did not exit cleanly.
fs9_stop() {
  local ok=0 pid mnt lg rc
  [ -f "$FS9_MOUNTS_FILE" ] || return 0
  while read -r pid mnt lg; do
    [ -n "$pid" ] || continue
    fs9_unmount "$mnt" || { log "$mnt had to be forced off"; ok=1; }
    fs9_wait_exit "$pid" 10
    rc=$FS9_EXIT
    if [ "$rc" != 0 ]; then
      log "fs9 (pid $pid) exited with status $rc:"; tail -20 "$lg" >&2; ok=1
    elif grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$lg"; then
      log "fs9 (pid $pid) sanitizer report:"; cat "$lg" >&2; ok=1
    fi
    rm -f "$lg"
  done <"$FS9_MOUNTS_FILE"
  : >"$FS9_MOUNTS_FILE"
  return $ok
}

# Assertions
assert_eq() { [ "$1" = "$2" ] || fail "${3:-values differ}: '$1' != '$2'"; }
assert_file_eq() { [ "$(cat "$1")" = "$2" ] || fail "$1 holds '$(cat "$1")', expected '$2'"; }

# expect_errno ERRNAME CMD...: the command fails with that errno's message.
expect_errno() {
  local want=$1; shift
  local msg out
  msg=$(python3 -c "import errno,os,sys; print(os.strerror(getattr(errno, sys.argv[1])))" "$want")
  if out=$("$@" 2>&1); then fail "'$*' succeeded, expected $want"; fi
  case "$out" in
    *"$msg"*) ;;
    *) fail "'$*' failed with '$out', expected $want ($msg)";;
  esac
}

# errno_of PY-EXPR: run a Python file operation, print the errno name or OK.
errno_of() {
  python3 - "$@" <<'PY'
import errno, os, sys
try:
    exec(sys.argv[1])
    print("OK")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
PY
}
