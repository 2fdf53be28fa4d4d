#!/usr/bin/env bash
# bench.sh — FS9's scaling targets, measured in one run: the core
# structures, the cost of FUSE and of FS9 on top of it, and the dispatcher
# under overload.  Prints one table per part and one machine-readable line
# per figure (`BENCH name key=value ...`), all of them again at the end.
#
#   scripts/bench.sh [--quick] [--runs N] [--build-dir DIR] [--only LIST]
#
# LIST: comma-separated parts among core, fuse, overload (default: all).
# --quick: 3 runs (instead of 5) of shorter measurements; --build-dir: the
# release build to use (build-bench).  Run as root: it mounts a tmpfs and
# FUSE file systems, every one of which a trap undoes, whatever happens.
#
# core — bench/bench_registry (handle registry: get/put per second on 1
#   and 2 threads, bytes per handle for 1 M handles) and bench/bench_mount
#   (mount resolution p50/p99 with up to 10,000 mounts), run as they are.
#
# fuse — bench/bench_fuse timing from the application's side, on:
#   tmpfs        the files on a tmpfs this script mounts
#   ptll         libfuse's example passthrough_ll over that tmpfs, built
#                from /usr/share/doc/libfuse3-dev/examples into a
#                temporary directory: passthrough_ll -f -o source=DIR MNT
#   memfs        fs9 -f memfs MNT
#   memfs.pool   the same with -o inline=0: every call through the pool
#   nullfs       fs9 over bench/nullfs (zeros, discarded writes, answers at
#                once): FUSE + FS9 with no provider cost at all
#   nullfs.pool  nullfs with nonblocking=0 and -o mount_inline=0: every
#                call through the pool
#  Metadata rows, on mounts where nothing is cached (fs9: entry_timeout=0,
#  attr_timeout=0, negative_timeout=0; ptll: timeout=0), so each call is a
#  request:
#   getattr.1t   fstat() of an open file in a tight loop, 1 thread
#   getattr.2t   the same on 2 threads, getattr.4p on 4 processes
#   stat.1t      stat() of a path (the kernel checks permissions: fs9 has
#                default_permissions, so that is one more getattr of the
#                directory; ptll has none)
#   open         open(O_RDONLY) + close()
#  Data rows, on mounts with their default caching; the page cache of the
#  file is dropped before each pass (POSIX_FADV_DONTNEED) so reads reach
#  the file system:
#   read.4k      sequential 4 KiB pread() (the kernel reads ahead: FUSE
#                sees 128 KiB reads), no fadvise hint
#   read.1m.hint0, read.1m.hint1   1 MiB pread() without / with
#                POSIX_FADV_SEQUENTIAL (fio's default fadvise_hint=1: the
#                kernel doubles its read-ahead window)
#   read.4k.direct   O_DIRECT 4 KiB reads: one request each
#   write.4k, write.1m   sequential pwrite() over the existing file
#  Plus, counted by nullfs itself (its /.calls file): provider calls per
#  open+close, per stat and per write, and the cost of the pool hop
#  (1/rate(pool) - 1/rate(inline) per operation).
#
# overload — fs9 memfs at / with tests/slow/slowfs at /slow (every read
#   sleeps 1 s; direct I/O so each read is a request).  Latency (p50, p99)
#   of stat, ls, a 4 KiB read on memfs and a read of /.fs9/stats, idle and
#   while 200 processes read /slow in a loop; the daemon's resident memory
#   and queue peak under that flood.  Three configurations: the defaults
#   (max_inflight=1024), max_inflight=32, and max_inflight=32 with
#   inline=0 (memfs through the pool too, competing with slowfs for it).
#
# The machine may be shared and noisy: each figure is the median of RUNS
# runs after an untimed warm-up pass, the targets interleaved in a
# rotating order in each run so that drifts hit all of them alike.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)

runs=5
quick=0
builddir=$top/build-bench
parts=core,fuse,overload
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1; runs=3 ;;
    --runs) runs=${2:?--runs needs a number}; shift ;;
    --build-dir) builddir=${2:?--build-dir needs a directory}; shift ;;
    --only) parts=${2:?--only needs a list}; shift ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed 's/^# \{0,1\}//; /^set -uo/d'; exit 0 ;;
    *) echo "bench: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
want() { case ",$parts," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

if [ $quick = 1 ]; then
  size_mib=64 secs=1 opens=5000 rd4k_mib=64 direct_mib=8 wr4k_mib=16 lat_n=100 busy_n=50
else
  size_mib=256 secs=2 opens=20000 rd4k_mib=128 direct_mib=16 wr4k_mib=32 lat_n=200 busy_n=100
fi

die() { echo "bench: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root (it mounts a tmpfs and FUSE file systems)"
for tool in cc pkg-config fusermount3 mount umount awk; do
  command -v $tool >/dev/null || die "$tool is missing (scripts/deps.sh installs it)"
done

echo "== building fs9 (release) in $builddir" >&2
"$top/scripts/build.sh" "$builddir" -Dbuildtype=release || die "build failed"
fs9=$builddir/src/fuse/fs9
bf=$builddir/bench/bench_fuse
nullfs=$builddir/bench/nullfs.so
slowfs=$builddir/tests/slow/slowfs.so
for f in "$fs9" "$bf" "$nullfs" "$slowfs" "$builddir/bench/bench_registry" "$builddir/bench/bench_mount"; do
  [ -e "$f" ] || die "the build produced no $f"
done

work=$(mktemp -d /tmp/fs9-bench.XXXXXX)
tmpfs=$work/tmpfs
data=$tmpfs/data
lines=$work/bench_lines
: >"$lines"
declare -A pid_of=() mnt_of=()

# shellcheck source=scripts/bench-lib.sh
source "$top/scripts/bench-lib.sh"

# start NAME CMD... (the mount point last): run a FUSE daemon in the
# foreground of a background job and wait for its mount.
start() {
  local name=$1 mnt=${!#} i
  shift
  mkdir -p "$mnt"
  "$@" 2>"$work/$name.log" &
  pid_of[$name]=$!
  mnt_of[$name]=$mnt
  for i in $(seq 1 200); do
    is_mounted "$mnt" && return 0
    kill -0 "${pid_of[$name]}" 2>/dev/null || break
    sleep 0.05
  done
  cat "$work/$name.log" >&2
  die "$name did not mount at $mnt"
}

stop() { # NAME
  local name=$1
  [ -n "${mnt_of[$name]:-}" ] || return 0
  fuse_off "${mnt_of[$name]}"
  reap "${pid_of[$name]}"
  unset "mnt_of[$name]" "pid_of[$name]"
}

stop_all() {
  local n
  for n in "${!mnt_of[@]}"; do stop "$n"; done
}

flood_pid=
cleanup() {
  cd /
  [ -n "$flood_pid" ] && { kill -TERM "$flood_pid" 2>/dev/null; wait "$flood_pid" 2>/dev/null; }
  stop_all
  if is_mounted "$tmpfs"; then
    timeout 20 umount "$tmpfs" 2>/dev/null || timeout 10 umount -l "$tmpfs" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

kv() { # KEY: the value of KEY=... in bench_fuse's output line
  awk -v k="$1" '{ for (i = 1; i <= NF; i++) { n = index($i, "=");
    if (substr($i, 1, n - 1) == k) { print substr($i, n + 1); exit } } }'
}

median_awk='
  function median(a, n,   i, j, t) {
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }'

machine="$(nproc) CPUs, $(awk '/MemTotal/ { printf "%d MiB", $2 / 1024 }' /proc/meminfo), Linux $(uname -r), libfuse $(pkg-config --modversion fuse3)"
t_start=$SECONDS

# ---------------------------------------------------------------- core

if want core; then
  q=()
  [ $quick = 1 ] && q=(--quick --reps 3)
  for b in bench_registry bench_mount; do
    echo "== $b" >&2
    "$builddir/bench/$b" "${q[@]}" >"$work/$b.out" || die "$b failed"
    echo
    grep -v '^BENCH ' "$work/$b.out"
    grep '^BENCH ' "$work/$b.out" >>"$lines"
  done
fi

# ---------------------------------------------------------------- fuse

targets=(tmpfs ptll memfs memfs.pool nullfs nullfs.pool)
declare -A dir_of=()

# mount_targets cached|uncached: every FUSE target, the data laid out.
mount_targets() {
  local mode=$1 ptll_o=() fs9_o=()
  if [ "$mode" = uncached ]; then
    ptll_o=(-o timeout=0)
    fs9_o=(-o entry_timeout=0,attr_timeout=0,negative_timeout=0)
  fi
  start ptll "$ptll" -f "${ptll_o[@]}" -o "source=$data" "$work/m-ptll"
  start memfs "$fs9" -f "${fs9_o[@]}" memfs "$work/m-memfs"
  start memfs.pool "$fs9" -f "${fs9_o[@]}" -o inline=0 memfs "$work/m-memfs.pool"
  start nullfs "$fs9" -f "${fs9_o[@]}" -o "plugin=$nullfs,size=${size_mib}M" nullfs "$work/m-nullfs"
  start nullfs.pool "$fs9" -f "${fs9_o[@]}" -o "plugin=$nullfs,size=${size_mib}M,nonblocking=0,mount_inline=0" nullfs "$work/m-nullfs.pool"
  local t
  for t in ptll memfs memfs.pool nullfs nullfs.pool; do dir_of[$t]=${mnt_of[$t]}; done
  dir_of[tmpfs]=$data
  cp "$data/file" "${mnt_of[memfs]}/file" || die "cannot copy the data into memfs"
  cp "$data/file" "${mnt_of[memfs.pool]}/file" || die "cannot copy the data into memfs"
}

declare -A unit_of=(
  [getattr.1t]=ops_per_s [getattr.2t]=ops_per_s [getattr.4p]=ops_per_s
  [stat.1t]=ops_per_s [open]=ops_per_s
  [read.4k]=mib_per_s [read.1m.hint0]=mib_per_s [read.1m.hint1]=mib_per_s
  [read.4k.direct]=mib_per_s [write.4k]=mib_per_s [write.1m]=mib_per_s)
meta_rows=(getattr.1t getattr.2t getattr.4p stat.1t open)
data_rows=(read.4k read.1m.hint0 read.1m.hint1 read.4k.direct write.4k write.1m)

measure() { # ROW TARGET
  local row=$1 f=${dir_of[$2]}/file out
  case $row in
    getattr.1t) out=$("$bf" getattr "$f" -f -s "$secs") ;;
    getattr.2t) out=$("$bf" getattr "$f" -f -t 2 -s "$secs") ;;
    getattr.4p) out=$("$bf" getattr "$f" -f -p 4 -s "$secs") ;;
    stat.1t) out=$("$bf" getattr "$f" -s "$secs") ;;
    open) out=$("$bf" open "$f" -n "$opens") ;;
    read.4k) out=$("$bf" read "$f" -b 4k -n "${rd4k_mib}M") ;;
    read.1m.hint0) out=$("$bf" read "$f" -b 1M -n "${size_mib}M" -a 0) ;;
    read.1m.hint1) out=$("$bf" read "$f" -b 1M -n "${size_mib}M" -a 1) ;;
    read.4k.direct) out=$("$bf" read "$f" -b 4k -n "${direct_mib}M" -d) ;;
    write.4k) out=$("$bf" write "$f" -b 4k -n "${wr4k_mib}M") ;;
    write.1m) out=$("$bf" write "$f" -b 1M -n "${size_mib}M") ;;
  esac || return 1
  echo "$out" | kv "${unit_of[$row]}"
}

results=$work/results
: >"$results"
run_pass() { # RUN ROWS... (RUN 0: warm-up, not recorded)
  local run=$1 row t i v n=${#targets[@]}
  shift
  for row in "$@"; do
    for i in $(seq 0 $((n - 1))); do
      t=${targets[$(((run + i) % n))]}
      v=$(measure "$row" "$t") || die "$row on $t failed"
      [ -n "$v" ] || die "$row on $t gave no figure"
      [ "$run" -gt 0 ] && echo "$row $t $run $v" >>"$results"
    done
  done
}

# calls ROW TARGET N CMD...: provider calls per operation, from nullfs's
# own counters (reset by writing /.calls).
calls() {
  local row=$1 t=$2 n=$3 c
  shift 3
  echo >"${mnt_of[$t]}/.calls"
  "$@" >/dev/null || die "$row on $t failed"
  c=$(awk -v n="$n" '{ printf "%s=%.3f ", $1, $2 / n }' "${mnt_of[$t]}/.calls")
  echo "BENCH fuse.calls.$row.$t per=$n ${c% }" >>"$lines"
  printf '  %-22s %-12s %s\n' "$row" "$t" "$c"
}

summarize() { # ROWS...
  local row t line med
  printf '%-16s %-10s' row unit
  for t in "${targets[@]}"; do printf ' %11s' "$t"; done
  printf ' %12s %12s\n' memfs/tmpfs memfs/ptll
  for row in "$@"; do
    declare -A m=()
    for t in "${targets[@]}"; do
      line=$(awk -v row="$row" -v t="$t" "$median_awk"'
        $1 == row && $2 == t { n++; v[n] = $4 + 0; if (n == 1 || $4 + 0 < lo) lo = $4 + 0; if ($4 + 0 > hi) hi = $4 + 0 }
        END { if (n) printf "%.1f %.1f %.1f %d", median(v, n), lo, hi, n; else print "- - - 0" }' "$results")
      read -r med lo hi n <<<"$line"
      m[$t]=$med
      m[$t.lo]=$lo
      m[$t.hi]=$hi
      m[$t.n]=$n
    done
    printf '%-16s %-10s' "$row" "${unit_of[$row]%_per_s}/s"
    for t in "${targets[@]}"; do printf ' %11s' "${m[$t]}"; done
    printf ' %12s %12s\n' \
      "$(awk -v a="${m[memfs]}" -v b="${m[tmpfs]}" 'BEGIN { printf "%.3f", a / b }')" \
      "$(awk -v a="${m[memfs]}" -v b="${m[ptll]}" 'BEGIN { printf "%.3f", a / b }')"
    for t in "${targets[@]}"; do
      echo "BENCH fuse.$row.$t ${unit_of[$row]}=${m[$t]}" \
        "ratio_tmpfs=$(awk -v a="${m[$t]}" -v b="${m[tmpfs]}" 'BEGIN { printf "%.3f", a / b }')" \
        "ratio_ptll=$(awk -v a="${m[$t]}" -v b="${m[ptll]}" 'BEGIN { printf "%.3f", a / b }')" \
        "runs=${m[$t.n]} min=${m[$t.lo]} max=${m[$t.hi]}" >>"$lines"
    done
    unset m
  done
}

# The pool hop per operation of a row: 1/rate(pool) - 1/rate(inline), in
# µs (getattr: one request; stat: three; open+close: four or five).
# PER: requests per unit of the row's figure (256 for 4 KiB I/O in MiB/s).
hop() { # ROW INLINE POOL PER
  local a b
  a=$(awk -v row="$1" -v t="$2" "$median_awk"' $1 == row && $2 == t { n++; v[n] = $4 + 0 } END { print median(v, n) }' "$results")
  b=$(awk -v row="$1" -v t="$3" "$median_awk"' $1 == row && $2 == t { n++; v[n] = $4 + 0 } END { print median(v, n) }' "$results")
  awk -v a="$a" -v b="$b" -v k="$4" -v row="$1" -v t="$2" 'BEGIN {
    us = (1 / (b * k) - 1 / (a * k)) * 1e6
    printf "  %-15s %-6s inline %9.0f req/s  pool %9.0f req/s  hop %+7.2f us per operation (%+.1f%%)\n", row, t, a * k, b * k, us, (b / a - 1) * 100
    printf "BENCH fuse.pool_hop.%s.%s inline_req_per_s=%.0f pool_req_per_s=%.0f us_per_op=%.2f\n", row, t, a * k, b * k, us > "/dev/stderr" }' 2>>"$lines"
}

if want fuse; then
  mkdir -p "$tmpfs"
  ptll=$(build_ptll "$work/ptll") || exit 1
  echo "== laying out the data on tmpfs" >&2
  mount -t tmpfs -o size=$((size_mib * 2 + 256))m fs9-bench "$tmpfs" || die "cannot mount a tmpfs"
  mkdir -p "$data"
  head -c $((size_mib * 1048576)) /dev/urandom >"$data/file" || die "cannot write $data/file"

  echo "== fuse: metadata rows (nothing cached)" >&2
  mount_targets uncached
  run_pass 0 "${meta_rows[@]}"
  for r in $(seq 1 "$runs"); do echo "== fuse metadata: run $r of $runs" >&2; run_pass "$r" "${meta_rows[@]}"; done
  echo
  echo "provider calls per operation (nullfs's own counts; nothing cached):"
  calls fstat nullfs 10000 "$bf" getattr "${mnt_of[nullfs]}/file" -f -n 10000
  calls stat nullfs 10000 "$bf" getattr "${mnt_of[nullfs]}/file" -n 10000
  stop_all

  echo "== fuse: data rows (default caching)" >&2
  mount_targets cached
  run_pass 0 "${data_rows[@]}"
  for r in $(seq 1 "$runs"); do echo "== fuse data: run $r of $runs" >&2; run_pass "$r" "${data_rows[@]}"; done
  echo "provider calls per operation (nullfs's own counts; default caching):"
  calls open_close nullfs 1000 "$bf" open "${mnt_of[nullfs]}/file" -n 1000
  calls write.4k nullfs 1024 "$bf" write "${mnt_of[nullfs]}/file" -b 4k -n 4M
  calls write.1m nullfs 64 "$bf" write "${mnt_of[nullfs]}/file" -b 1M -n 64M
  calls read.1m.hint0 nullfs 64 "$bf" read "${mnt_of[nullfs]}/file" -b 1M -n 64M
  stop_all

  # Reached through the same daemons as ordinary users: keep the
  # kernel-side settings on record.
  echo
  echo "FUSE overhead: $machine; medians of $runs runs after a warm-up pass"
  echo "  data: a ${size_mib} MiB file on tmpfs (copied into memfs; nullfs size=${size_mib}M); getattr rows ${secs} s each"
  echo "  ptll: passthrough_ll -f -o source=DIR MNT (metadata rows: -o timeout=0); fs9: fs9 -f [-o inline=0] memfs MNT, fs9 -f -o plugin=nullfs.so[,nonblocking=0,mount_inline=0] nullfs MNT (metadata rows: -o entry_timeout=0,attr_timeout=0,negative_timeout=0)"
  summarize "${meta_rows[@]}" "${data_rows[@]}"
  echo
  echo "what the threadpool hop costs (FS9_CAP_NONBLOCKING providers are called inline by default):"
  for row in getattr.1t stat.1t open read.4k.direct write.4k; do
    per=1
    case $row in read.4k.direct|write.4k) per=256 ;; esac
    hop "$row" nullfs nullfs.pool "$per"
    hop "$row" memfs memfs.pool "$per"
  done
fi

# ---------------------------------------------------------------- overload

ovl_stat() { awk -v k="$2" '$1 == k { print $2 }' "$1/.fs9/stats"; }

# overload NAME FS9-OPTIONS: idle and flooded latencies on memfs.
overload() {
  local name=$1 opts=$2 m=$work/m-ovl op i rss0 rss=0 r
  start ovl "$fs9" -f -o "plugin=$slowfs,entry_timeout=0,attr_timeout=0,negative_timeout=0${opts:+,$opts}" memfs "$m"
  echo "mount /slow slowfs delay_ms=1000 ops=read" >"$m/.fs9/ctl" || die "cannot mount slowfs"
  mkdir "$m/d"
  for i in 1 2 3; do echo "file $i" >"$m/d/f$i"; done
  declare -A path=([stat]=$m/d/f1 [ls]=$m/d [read]=$m/d/f2 [ctl]=$m/.fs9/stats)
  for op in stat ls read ctl; do "$bf" latency "${path[$op]}" -o "${op/ctl/read}" -n 20 -i 0 >/dev/null; done
  for op in stat ls read ctl; do
    idle[$op]=$("$bf" latency "${path[$op]}" -o "${op/ctl/read}" -n "$lat_n" -i 2) || die "latency $op failed"
  done
  rss0=$(awk '/^VmRSS:/ { print $2 }' "/proc/${pid_of[ovl]}/status")
  "$bf" flood "$m/slow/file" -p 200 -s 600 >"$work/flood.out" &
  flood_pid=$!
  for i in $(seq 1 300); do
    [ "$(ovl_stat "$m" queue.running)" -ge 12 ] && break
    sleep 0.1
  done
  [ "$(ovl_stat "$m" queue.running)" -ge 12 ] || die "overload $name: the flood did not saturate slowfs"
  for op in stat ls read ctl; do
    busy[$op]=$("$bf" latency "${path[$op]}" -o "${op/ctl/read}" -n "$busy_n" -i 10) || die "latency $op failed under the flood"
    r=$(awk '/^VmRSS:/ { print $2 }' "/proc/${pid_of[ovl]}/status")
    [ "$r" -gt "$rss" ] && rss=$r
  done
  local running peak waits
  running=$(ovl_stat "$m" queue.running)
  peak=$(ovl_stat "$m" queue.peak)
  waits=$(ovl_stat "$m" queue.submit_waits)
  kill -TERM "$flood_pid"
  wait "$flood_pid"
  flood_pid=
  stop ovl
  for op in stat ls read ctl; do
    awk -v name="$name" -v op="$op" -v i="${idle[$op]}" -v b="${busy[$op]}" -v rss0="$rss0" -v rss="$rss" -v peak="$peak" -v run="$running" -v waits="$waits" '
      function get(s, k,   a, n, j) { n = split(s, a, " "); for (j = 1; j <= n; j++) if (index(a[j], k "=") == 1) return substr(a[j], length(k) + 2) + 0 }
      BEGIN {
        ip50 = get(i, "p50_us"); ip99 = get(i, "p99_us"); bp50 = get(b, "p50_us"); bp99 = get(b, "p99_us"); bmax = get(b, "max_us")
        printf "  %-22s %-5s %10.1f %10.1f %10.1f %10.1f %10.1f %8.1fx\n", name, op, ip50, ip99, bp50, bp99, bmax, bp99 / ip99
        printf "BENCH overload.%s.%s idle_p50_us=%.1f idle_p99_us=%.1f busy_p50_us=%.1f busy_p99_us=%.1f busy_max_us=%.1f p99_ratio=%.2f rss_idle_kb=%d rss_busy_kb=%d queue_peak=%d slow_running=%d submit_waits=%d\n", name, op, ip50, ip99, bp50, bp99, bmax, bp99 / ip99, rss0, rss, peak, run, waits > "/dev/stderr"
      }' 2>>"$lines"
  done
  echo "  $name: fs9 resident ${rss0} kB idle, ${rss} kB flooded; queue.peak $peak; slowfs calls running $running; submit_waits $waits"
}

if want overload; then
  echo "== overload" >&2
  declare -A idle=() busy=()
  echo
  echo "overload: memfs at /, slowfs at /slow (reads sleep 1 s), 200 processes reading /slow; $machine"
  echo "  latency in us of single operations on memfs (and of reading /.fs9/stats, which goes through the pool), idle and flooded"
  printf '  %-22s %-5s %10s %10s %10s %10s %10s %9s\n' config op idle_p50 idle_p99 busy_p50 busy_p99 busy_max p99_ratio
  overload default ""
  overload max_inflight_32 "max_inflight=32"
  overload max_inflight_32.inline0 "max_inflight=32,inline=0"
fi

echo
echo "== all figures ($((SECONDS - t_start)) s)"
cat "$lines"
