#!/usr/bin/env bash
# bench-localfs.sh — localfs through FUSE, against the same files on native
# tmpfs and through libfuse's passthrough_ll example, in one run.
#
#   scripts/bench-localfs.sh [--quick] [--runs N] [--build-dir DIR]
#                            [--fs9-options LIST] [--ptll-options LIST]
#                            [--rows "ROW ..."]
#
# What it does (as root: it mounts a tmpfs and two FUSE file systems):
#   - builds fs9 and bench/bench_meta in a release build (DIR, default
#     build-bench), and passthrough_ll from the libfuse3-dev package's
#     examples in a temporary directory (never committed);
#   - mounts a tmpfs and lays out the data once, natively: a file of SIZE
#     (512 MiB) and a tree of 10,000 files (100 directories of 100);
#   - mounts it twice more: `passthrough_ll -f -o source=DATA MNT` (its
#     documented usage, all its defaults) and `fs9 -f localfs:DATA MNT`
#     (fs9's defaults; --fs9-options adds -o LIST, to compare settings;
#     --ptll-options adds -o LIST to passthrough_ll, e.g.
#     default_permissions, which fs9 always has);
#   - one untimed warm-up pass of every row on every target, then RUNS runs
#     (9; --quick: 3 on smaller data), each running every row on the three
#     targets in a rotating order (tmpfs, ptll, fs9 / ptll, fs9, tmpfs / ...)
#     so that drifts of a shared machine hit all three alike;
#   - prints the medians, the ratio fs9/ptll (> 1: fs9 is faster; every
#     figure is a rate, higher is better), and one machine-readable line per
#     row:  BENCH localfs.<row> tmpfs=… ptll=… fs9=… ratio=… unit=… …
#
# Rows: fio (ioengine=psync, invalidate=1: the file's page cache is dropped
# when a job starts, so FUSE reads reach the daemon; the tmpfs data itself
# always stays in memory):
#   seqwrite            1 MiB writes over SIZE (the file exists: overwrite)
#   seqread.fadvise1    1 MiB reads, fio's default fadvise_hint=1
#                       (POSIX_FADV_SEQUENTIAL: the kernel doubles readahead)
#   seqread.fadvise0    the same without the hint
#   randread.buffered   4 KiB random reads (RANDIO in all), page cache on
#   randread.direct     the same with O_DIRECT
#   randwrite.buffered  4 KiB random writes
#   randwrite.direct    the same with O_DIRECT
# and, each after `echo 3 > /proc/sys/vm/drop_caches` (cold dentries,
# inodes and page cache for the FUSE mounts; tmpfs keeps its own):
#   create_stat_unlink  bench_meta: create NFILES files, stat them, unlink
#                       them; whole files per second
#   ls_lR               `ls -lR` over the tree; entries per second
#   find                `find` over the tree; entries per second
#
# Every mount is undone by a trap (with timeouts, forced through fusectl if
# a daemon hangs), whatever happens.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)

runs=9
quick=0
builddir=$top/build-bench
fs9_opts=
ptll_opts=
only_rows=
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1; runs=3 ;;
    --runs) runs=${2:?--runs needs a number}; shift ;;
    --build-dir) builddir=${2:?--build-dir needs a directory}; shift ;;
    --fs9-options) fs9_opts=${2:?--fs9-options needs a list}; shift ;;
    --ptll-options) ptll_opts=${2:?--ptll-options needs a list}; shift ;;
    --rows) only_rows=${2:?--rows needs row names}; shift ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed 's/^# \{0,1\}//; /^set -uo/d'; exit 0 ;;
    *) echo "bench-localfs: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ $quick = 1 ]; then
  size_mib=128 nfiles=2000 ndirs=20 randio_mib=16
else
  size_mib=512 nfiles=10000 ndirs=100 randio_mib=64
fi
files_per_dir=100
tree_entries=$((ndirs * files_per_dir + ndirs)) # what ls -R and find list

die() { echo "bench-localfs: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root (it mounts a tmpfs and FUSE file systems)"
for tool in fio cc pkg-config fusermount3 mount umount; do
  command -v $tool >/dev/null || die "$tool is missing (scripts/deps.sh installs it)"
done
# shellcheck source=scripts/bench-lib.sh
source "$top/scripts/bench-lib.sh"
[ -f "$ptll_src" ] || die "$ptll_src is missing (apt-get install libfuse3-dev)"

echo "== building fs9 (release) in $builddir" >&2
"$top/scripts/build.sh" "$builddir" -Dbuildtype=release || die "build failed"
fs9=$builddir/src/fuse/fs9
meta=$builddir/bench/bench_meta
[ -x "$fs9" ] && [ -x "$meta" ] || die "build produced no $fs9 or $meta"

work=$(mktemp -d /tmp/fs9-bench.XXXXXX)
tmpfs=$work/tmpfs
data=$tmpfs/data
mnt_ptll=$work/mnt-ptll
mnt_fs9=$work/mnt-fs9
pid_ptll= pid_fs9=
fusectl_mounted=0

cleanup() {
  cd /
  fuse_off "$mnt_fs9"; fuse_off "$mnt_ptll"
  reap "$pid_fs9"; reap "$pid_ptll"
  [ $fusectl_mounted = 1 ] && umount /sys/fs/fuse/connections 2>/dev/null
  if is_mounted "$tmpfs"; then
    timeout 20 umount "$tmpfs" 2>/dev/null || timeout 10 umount -l "$tmpfs" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$tmpfs" "$mnt_ptll" "$mnt_fs9"
ptll=$(build_ptll "$work/ptll") || exit 1

# fusectl shows each connection's settings (and can abort a hung one).
if [ -d /sys/fs/fuse/connections ] && ! is_mounted /sys/fs/fuse/connections; then
  mount -t fusectl fusectl /sys/fs/fuse/connections 2>/dev/null && fusectl_mounted=1
fi

echo "== laying out the data on tmpfs" >&2
mount -t tmpfs -o size=$((size_mib * 2 + 512))m fs9-bench "$tmpfs" || die "cannot mount tmpfs"
mkdir -p "$data/tree" "$data/csu"
head -c $((size_mib * 1048576)) /dev/urandom >"$data/seq.dat" || die "cannot write $data/seq.dat"
for d in $(seq 1 $ndirs); do
  mkdir "$data/tree/d$d"
  (cd "$data/tree/d$d" && touch $(seq -f f%g 1 $files_per_dir)) || die "cannot lay out the tree"
done

wait_mount() { # MNT PID
  local i
  for i in $(seq 1 200); do
    is_mounted "$1" && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

ptll_cmd=("$ptll" -f -o "source=$data${ptll_opts:+,$ptll_opts}" "$mnt_ptll")
fs9_cmd=("$fs9" -f ${fs9_opts:+-o "$fs9_opts"} "localfs:$data" "$mnt_fs9")
"${ptll_cmd[@]}" 2>"$work/ptll.log" &
pid_ptll=$!
wait_mount "$mnt_ptll" "$pid_ptll" || { cat "$work/ptll.log" >&2; die "passthrough_ll did not mount"; }
"${fs9_cmd[@]}" 2>"$work/fs9.log" &
pid_fs9=$!
wait_mount "$mnt_fs9" "$pid_fs9" || { cat "$work/fs9.log" >&2; die "fs9 did not mount"; }

targets=(tmpfs ptll fs9)
declare -A dir_of=([tmpfs]=$data [ptll]=$mnt_ptll [fs9]=$mnt_fs9)
rows=(seqwrite seqread.fadvise1 seqread.fadvise0 randread.buffered randread.direct
      randwrite.buffered randwrite.direct create_stat_unlink ls_lR find)
if [ -n "$only_rows" ]; then
  for r in $only_rows; do
    case " ${rows[*]} " in *" $r "*) ;; *) die "unknown row '$r' (rows: ${rows[*]})";; esac
  done
  read -r -a rows <<<"$only_rows"
fi
declare -A unit_of=(
  [seqwrite]=MiB/s [seqread.fadvise1]=MiB/s [seqread.fadvise0]=MiB/s
  [randread.buffered]=IOPS [randread.direct]=IOPS
  [randwrite.buffered]=IOPS [randwrite.direct]=IOPS
  [create_stat_unlink]=files/s [ls_lR]=entries/s [find]=entries/s)

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# fio_rate FIELD ARGS...: run one fio job on the file; print read (FIELD 7:
# KiB/s, 8: IOPS) or write (48, 49) figures from its terse output.
fio_rate() {
  local field=$1 out
  shift
  out=$(fio --name=bench --ioengine=psync --size=${size_mib}M --invalidate=1 \
    --output-format=terse --terse-version=3 "$@" 2>&1) || { echo "fio failed: $out" >&2; return 1; }
  echo "$out" | awk -F';' -v f="$field" 'NF > 50 {
      if ($5 != 0) { print "fio error " $5 > "/dev/stderr"; exit 1 }
      v = $f; if (f == 7 || f == 48) v /= 1024; printf "%.1f\n", v; exit }'
}

# elapsed_rate COUNT CMD...: COUNT divided by the seconds CMD takes.
elapsed_rate() {
  local count=$1 t0 t1
  shift
  t0=$(date +%s%N)
  "$@" >/dev/null || return 1
  t1=$(date +%s%N)
  awk -v n="$count" -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f\n", n / (ns / 1e9) }'
}

measure() { # ROW DIR
  local row=$1 dir=$2 f=$2/seq.dat
  case $row in
    seqwrite) fio_rate 48 --filename="$f" --rw=write --bs=1M ;;
    seqread.fadvise1) fio_rate 7 --filename="$f" --rw=read --bs=1M --fadvise_hint=1 ;;
    seqread.fadvise0) fio_rate 7 --filename="$f" --rw=read --bs=1M --fadvise_hint=0 ;;
    randread.buffered) fio_rate 8 --filename="$f" --rw=randread --bs=4k --io_size=${randio_mib}M ;;
    randread.direct) fio_rate 8 --filename="$f" --rw=randread --bs=4k --io_size=${randio_mib}M --direct=1 ;;
    randwrite.buffered) fio_rate 49 --filename="$f" --rw=randwrite --bs=4k --io_size=${randio_mib}M ;;
    randwrite.direct) fio_rate 49 --filename="$f" --rw=randwrite --bs=4k --io_size=${randio_mib}M --direct=1 ;;
    create_stat_unlink)
      drop_caches
      "$meta" create-stat-unlink "$dir/csu" "$nfiles" | sed -n 's/.*files_per_s=\([0-9.]*\).*/\1/p' ;;
    ls_lR) drop_caches; elapsed_rate "$tree_entries" ls -lR "$dir/tree" ;;
    find) drop_caches; elapsed_rate "$tree_entries" find "$dir/tree" ;;
  esac
}

results=$work/results
: >"$results"
run_pass() { # RUN (0: warm-up, not recorded)
  local run=$1 row t i v
  for row in "${rows[@]}"; do
    for i in 0 1 2; do
      t=${targets[$(((run + i) % 3))]}
      v=$(measure "$row" "${dir_of[$t]}") || die "$row on $t failed"
      [ -n "$v" ] || die "$row on $t gave no figure"
      [ "$run" -gt 0 ] && echo "$row $t $run $v" >>"$results"
    done
  done
}

bdi_of() { awk -v m="$1" '$5 == m { print $3; exit }' /proc/self/mountinfo; }
describe() { # MNT: kernel-side settings of a FUSE mount
  local bdi conn
  bdi=$(bdi_of "$1"); conn=$(conn_of "$1")
  printf 'read_ahead_kb=%s max_background=%s congestion_threshold=%s' \
    "$(cat /sys/class/bdi/"$bdi"/read_ahead_kb 2>/dev/null || echo ?)" \
    "$(cat /sys/fs/fuse/connections/"$conn"/max_background 2>/dev/null || echo ?)" \
    "$(cat /sys/fs/fuse/connections/"$conn"/congestion_threshold 2>/dev/null || echo ?)"
}

start=$SECONDS
echo "== warm-up pass" >&2
run_pass 0
for r in $(seq 1 "$runs"); do
  echo "== run $r of $runs" >&2
  run_pass "$r"
done
elapsed=$((SECONDS - start))

echo
echo "localfs benchmark: native tmpfs, passthrough_ll and fs9 localfs over the same tmpfs data"
echo "  machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%d MiB", $2 / 1024 }' /proc/meminfo), Linux $(uname -r); libfuse $(pkg-config --modversion fuse3); $(fio --version)"
echo "  data: ${size_mib} MiB file; tree of $ndirs x $files_per_dir files; $nfiles files for create_stat_unlink; ${randio_mib} MiB of 4 KiB random I/O"
echo "  ptll: passthrough_ll -f -o source=DATA${ptll_opts:+,$ptll_opts} MNT (passthrough_ll.c of libfuse3-dev $(pkg-config --modversion fuse3), its defaults: cache=auto, timeout=1, no writeback, no xattr, no flock); $(describe "$mnt_ptll")"
echo "  fs9:  fs9 -f ${fs9_opts:+-o $fs9_opts }localfs:DATA MNT (${fs9_opts:+otherwise }defaults); $(describe "$mnt_fs9")"
echo "  medians of $runs runs after a warm-up pass, targets interleaved; page cache dropped by fio (invalidate=1) before each fio job and by drop_caches before each metadata row; ${elapsed} s"
echo
printf '%-20s %-10s %12s %12s %12s %9s   %s\n' row unit tmpfs ptll fs9 fs9/ptll "fs9 range (min..max)"
for row in "${rows[@]}"; do
  line=$(awk -v row="$row" '
    function median(a, n,   i, j, t) {
      for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    $1 == row { n[$2]++; v[$2, n[$2]] = $4 + 0
                if (!($2 in lo) || $4 + 0 < lo[$2]) lo[$2] = $4 + 0
                if (!($2 in hi) || $4 + 0 > hi[$2]) hi[$2] = $4 + 0 }
    END {
      split("tmpfs ptll fs9", ts, " ")
      for (k = 1; k <= 3; k++) { t = ts[k]; delete a; for (i = 1; i <= n[t]; i++) a[i] = v[t, i]; m[t] = median(a, n[t]) }
      printf "%.1f %.1f %.1f %.3f %.1f %.1f %.1f %.1f", m["tmpfs"], m["ptll"], m["fs9"], m["fs9"] / m["ptll"], lo["fs9"], hi["fs9"], lo["ptll"], hi["ptll"]
    }' "$results")
  read -r mt mp mf ratio flo fhi plo phi <<<"$line"
  printf '%-20s %-10s %12s %12s %12s %9s   %s..%s\n' "$row" "${unit_of[$row]}" "$mt" "$mp" "$mf" "$ratio" "$flo" "$fhi"
  echo "BENCH localfs.$row tmpfs=$mt ptll=$mp fs9=$mf ratio=$ratio unit=${unit_of[$row]} runs=$runs fs9_min=$flo fs9_max=$fhi ptll_min=$plo ptll_max=$phi" >>"$work/bench_lines"
done
echo
cat "$work/bench_lines"
