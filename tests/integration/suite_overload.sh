# suite_overload.sh — slow providers and overload: a call past -o timeout
# is answered ETIMEDOUT and its late result leaks nothing; the
# -o max_inflight bound holds under a flood while the daemon's memory stays
# bounded; memfs (and the control files) keep answering while a slow
# provider is saturated.
#
# The slow provider is the test plugin tests/slow/slowfs.c (calls sleep
# delay_ms; /.calls counts its calls).  The floods are threads of one
# Python process, each opening, reading (or writing) and closing a slowfs
# file in a loop; slowfs opens files with direct I/O, so every read(2)
# is a request.  Time limits here are generous functional bounds ("each
# operation completes within 2 s"), never performance figures: those are
# scripts/bench.sh's.

SLOWFS=$(cd "$(dirname "$FS9")/../../tests/slow" 2>/dev/null && pwd)/slowfs.so

suite_teardown() {
  flood_stop
  [ -n "${WORK:-}" ] && { fs9_stop || true; rm -rf "$WORK"; }
  return 0
}

# ovl_start FS9-OPTIONS SLOWFS-SETTINGS: memfs at /, slowfs at /slow.
ovl_start() {
  [ -f "$SLOWFS" ] || skip "slowfs.so is not built ($SLOWFS)"
  WORK=$(mktemp -d "$FS9_TMP/fs9-ovl.XXXXXX")
  MNT=$WORK/mnt
  mkdir "$MNT"
  fs9_start -o "plugin=$SLOWFS${1:+,$1}" memfs "$MNT"
  echo "mount /slow slowfs $2" >"$MNT/.fs9/ctl" || fail "cannot mount slowfs: $(cat "$MNT/.fs9/error")"
}

stat_of() { awk -v k="$1" '$1 == k { print $2 }' "$MNT/.fs9/stats"; }
calls_of() { awk -v k="$2" '$1 == k { print $2 }' "$MNT/$1/.calls"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$FS9_PID/status"; }

# wait_for SECONDS DESCRIPTION CMD...: until CMD succeeds, or fail.
wait_for() {
  local secs=$1 what=$2 i
  shift 2
  for i in $(seq 1 $((secs * 10))); do
    if "$@"; then return 0; fi
    sleep 0.1
  done
  fail "after ${secs} s still not: $what"
}

no_open_handles() { [ "$(stat_of handles.open)" = 0 ]; }
# Reading /.fs9/stats is itself a call in flight (the control files go
# through the pool like any provider's): 1 means nothing else is.
queue_empty() { [ "$(stat_of queue.inflight)" -le 1 ]; }
saturated() { [ "$(stat_of queue.running)" -ge "$1" ]; }
submitters_waited() { [ "$(stat_of queue.submit_waits)" -gt 0 ]; }
calls_balanced() { # MOUNT: every open closed, nothing inside the provider
  [ "$(calls_of "$1" leaked)" = 0 ] && [ "$(calls_of "$1" active)" = 0 ]
}

# flood_start THREADS PATH read|write: open, read 4 KiB (write 1 MiB),
# close, in a loop on every thread until flood_stop.
flood_start() {
  python3 - "$@" <<'PY' &
import os, sys, threading
n, path, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
data = b"w" * (1 << 20)
def loop():
    while True:
        try:
            fd = os.open(path, os.O_RDONLY if mode == "read" else os.O_WRONLY)
        except OSError:
            continue
        try:
            if mode == "read":
                os.read(fd, 4096)
            else:
                os.write(fd, data)
        except OSError:
            pass
        finally:
            os.close(fd)
for _ in range(n):
    threading.Thread(target=loop, daemon=True).start()
threading.Event().wait()
PY
  FLOOD_PID=$!
}

# Killing the flood interrupts its requests: fs9 answers the queued ones
# at once (EINTR), the running ones finish in the provider.
flood_stop() {
  if [ -n "${FLOOD_PID:-}" ]; then
    kill -TERM "$FLOOD_PID" 2>/dev/null || true
    wait "$FLOOD_PID" 2>/dev/null || true
    FLOOD_PID=
  fi
}

test_timeout_answers_etimedout_and_late_results_leak_nothing() {
  ovl_start timeout=1 "delay_ms=2500 ops=open"
  echo "mount /slowread slowfs delay_ms=2500 ops=read" >"$MNT/.fs9/ctl"
  # A slow open: ETIMEDOUT; at 2.5 s the provider's late handle is closed.
  expect_errno ETIMEDOUT cat "$MNT/slow/file"
  # A slow read: ETIMEDOUT; the file is closed by cat as usual.
  expect_errno ETIMEDOUT cat "$MNT/slowread/file"
  [ "$(stat_of requests.timeouts)" -ge 2 ] || fail "requests.timeouts: $(stat_of requests.timeouts)"
  wait_for 20 "every handle closed (handles.open 0)" no_open_handles
  wait_for 20 "slowfs at /slow got back every handle it gave" calls_balanced slow
  wait_for 20 "slowfs at /slowread got back every handle" calls_balanced slowread
  [ "$(calls_of slow open)" -ge 1 ] || fail "the slow open never reached slowfs"
  assert_eq "$(calls_of slow close)" "$(calls_of slow open)" "closes of late opens"
  # Fast calls are unaffected by the timeout.
  echo fine >"$MNT/f"
  assert_file_eq "$MNT/f" fine
}

test_max_inflight_bound_holds_under_a_flood_and_memory_stays_bounded() {
  ovl_start max_inflight=16 "delay_ms=300 ops=read"
  local rss0 rss peak max_rss=0 i
  rss0=$(rss_kb)
  flood_start 200 "$MNT/slow/file" read
  # slowfs may run 12 calls at once (3/4 of 16 threads).
  wait_for 30 "the flood saturates slowfs" saturated 12
  for i in $(seq 1 40); do
    peak=$(stat_of queue.peak)
    [ "$peak" -le 16 ] || fail "queue.peak $peak > max_inflight 16"
    rss=$(rss_kb)
    [ "$rss" -gt "$max_rss" ] && max_rss=$rss
    kill -0 "$FS9_PID" || fail "fs9 died under the flood"
    sleep 0.1
  done
  log "rss before ${rss0} kB, at most ${max_rss} kB under the flood; peak $(stat_of queue.peak)"
  [ $((max_rss - rss0)) -lt 65536 ] || fail "fs9 grew by $((max_rss - rss0)) kB under a flood"
  flood_stop
  wait_for 60 "the queue drains" queue_empty
  wait_for 60 "every handle closed" no_open_handles
  wait_for 20 "slowfs got back every handle" calls_balanced slow
  [ "$(stat_of queue.peak)" -le 16 ] || fail "queue.peak $(stat_of queue.peak) > 16"
}

test_write_flood_throttles_the_kernel_within_the_memory_budget() {
  # max_inflight=16: 1 MiB of pending requests at most (64 KiB each), so
  # 1 MiB writes wait in the kernel, one FUSE thread each.  mount_inline=0:
  # writes run on the request thread otherwise (holding no copy, so costing
  # no memory), and this is about the pool's budget.
  ovl_start max_inflight=16,mount_inline=0 "delay_ms=200 ops=write"
  local rss0 rss max_rss=0 i
  rss0=$(rss_kb)
  flood_start 32 "$MNT/slow/file" write
  wait_for 30 "submitters wait for memory" submitters_waited
  for i in $(seq 1 30); do
    rss=$(rss_kb)
    [ "$rss" -gt "$max_rss" ] && max_rss=$rss
    kill -0 "$FS9_PID" || fail "fs9 died under the write flood"
    sleep 0.1
  done
  log "rss before ${rss0} kB, at most ${max_rss} kB; submit_waits $(stat_of queue.submit_waits)"
  [ $((max_rss - rss0)) -lt 65536 ] || fail "fs9 grew by $((max_rss - rss0)) kB under a write flood"
  flood_stop
  wait_for 60 "the queue drains" queue_empty
  wait_for 60 "every handle closed" no_open_handles
  wait_for 20 "slowfs got back every handle" calls_balanced slow
  [ "$(calls_of slow write)" -gt 0 ] || fail "no write reached slowfs"
}

# ls, stat, read, write on memfs and a read of /.fs9/stats, each within 2 s,
# while 200 readers keep slowfs busy.
memfs_keeps_answering() {
  local i
  mkdir "$MNT/d"
  for i in 1 2 3; do echo "file $i" >"$MNT/d/f$i"; done
  flood_start 200 "$MNT/slow/file" read
  wait_for 30 "the flood saturates slowfs" saturated 12
  for i in $(seq 1 15); do
    timeout 2 ls "$MNT/d" >/dev/null || fail "ls on memfs took over 2 s (round $i)"
    timeout 2 stat "$MNT/d/f1" >/dev/null || fail "stat on memfs took over 2 s (round $i)"
    [ "$(timeout 2 cat "$MNT/d/f2")" = "file 2" ] || fail "read on memfs failed or took over 2 s (round $i)"
    timeout 2 sh -c "echo round $i >\"$MNT/d/new\"" || fail "write on memfs took over 2 s (round $i)"
    timeout 2 cat "$MNT/.fs9/stats" >/dev/null || fail "/.fs9/stats took over 2 s (round $i)"
  done
  saturated 12 || fail "the flood ended before the checks did"
  flood_stop
  wait_for 60 "every handle closed" no_open_handles
}

test_memfs_stays_responsive_while_a_slow_provider_is_saturated() {
  ovl_start max_inflight=32,attr_timeout=0,entry_timeout=0,negative_timeout=0 \
    "delay_ms=1000 ops=read"
  memfs_keeps_answering
}

test_memfs_through_the_pool_stays_responsive_too() {
  # inline=0: memfs calls go through the dispatcher like any provider's;
  # its own share of threads and of max_inflight keeps them moving.
  ovl_start inline=0,max_inflight=32,attr_timeout=0,entry_timeout=0,negative_timeout=0 \
    "delay_ms=1000 ops=read"
  memfs_keeps_answering
}
