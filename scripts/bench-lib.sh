# bench-lib.sh — what scripts/bench.sh and scripts/bench-localfs.sh share:
# undoing FUSE mounts whatever happens, reaping the daemons they started,
# and building libfuse's passthrough_ll reference.  Sourced; expects die().

is_mounted() { awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/mounts; }
conn_of() { awk -v m="$1" '$5 == m { split($3, d, ":"); print d[1] * 1048576 + d[2]; exit }' /proc/self/mountinfo; }

# Unmount a FUSE mount within seconds: fusermount3, else abort the
# connection through fusectl and detach.
fuse_off() {
  local mnt=$1 conn
  is_mounted "$mnt" || return 0
  timeout 10 fusermount3 -u "$mnt" 2>/dev/null && return 0
  conn=$(conn_of "$mnt")
  [ -n "$conn" ] && [ -w "/sys/fs/fuse/connections/$conn/abort" ] &&
    echo 1 >"/sys/fs/fuse/connections/$conn/abort"
  timeout 10 fusermount3 -u -z "$mnt" 2>/dev/null || timeout 10 umount -l "$mnt" 2>/dev/null || true
}

# Wait for a daemon we started to exit; TERM, then KILL, by its PID.
reap() {
  local pid=$1 i
  [ -n "$pid" ] || return 0
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null; sleep 1; kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null || true
}

# build_ptll DIR: compile passthrough_ll as its header says, from the
# libfuse3-dev example, into DIR/passthrough_ll; prints that path.
ptll_src=/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c
build_ptll() {
  [ -f "$ptll_src" ] || die "$ptll_src is missing (apt-get install libfuse3-dev)"
  mkdir -p "$1"
  cp "$ptll_src" "$(dirname "$ptll_src")/passthrough_helpers.h" "$1/"
  # shellcheck disable=SC2046
  cc -O2 -Wall "$1/passthrough_ll.c" $(pkg-config --cflags --libs fuse3) \
    -o "$1/passthrough_ll" || die "cannot compile passthrough_ll"
  echo "$1/passthrough_ll"
}
