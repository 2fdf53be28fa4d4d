# suite_plugins.sh — the plugins on real mounts, driven by shell tools and
# Python: hellofs (the template), kvfs (trees of keys), streamfs and
# pubsubfs (readers that wait: latency, fan-out, Ctrl-C, O_NONBLOCK,
# select, EOF on rm, EMSGSIZE), the loader's refusals as fs9 reports them,
# --list-providers, and the SDK: a plugin built outside the tree with
# pkg-config against an installed FS9.
#
# Each test mounts what it needs at a fresh $MNT with the build's plugins
# (-o plugin_dir) and runs inside it.  Background readers are tracked in
# BG_PIDS and ended by suite_teardown before the mount goes.

FS9_BUILD=$(cd "$(dirname "$FS9")/../.." && pwd)
PLUGIN_DIR=$FS9_BUILD/plugins
TEST_PLUGIN_DIR=$FS9_BUILD/tests/plugins
FS9_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BG_PIDS=()

# plug_mount SOURCE [fs9 options...]: mount at a fresh $MNT and cd there.
plug_mount() {
  local src=$1; shift
  MNT=$(mktemp -d "$FS9_TMP/fs9-mnt.XXXXXX")
  fs9_start -o plugin_dir="$PLUGIN_DIR" "$@" "$src" "$MNT" || fail "mount $src"
  cd "$MNT"
}

# plug_unmount: leave and unmount $MNT (before mounting another).
plug_unmount() {
  cd /
  fs9_unmount "$MNT" || fail "unmount $MNT"
  rmdir "$MNT"
  MNT=
}

suite_teardown() {
  local p
  for p in "${BG_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${BG_PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  BG_PIDS=()
}

# wait_pids SECONDS PID...: all exit within SECONDS, or fail.
wait_pids() {
  local secs=$1 p; shift
  local deadline=$((SECONDS + secs))
  for p in "$@"; do
    while kill -0 "$p" 2>/dev/null; do
      [ $SECONDS -lt $deadline ] || fail "pid $p still running after ${secs}s"
      sleep 0.05
    done
  done
}

# ---- the loader and --list-providers --------------------------------------

test_list_providers_shows_the_plugins_with_versions_and_capabilities() {
  out=$("$FS9" --list-providers -o plugin_dir="$PLUGIN_DIR" 2>&1) || fail "$out"
  for p in hellofs kvfs streamfs pubsubfs; do
    printf '%s\n' "$out" | grep -Eq "^$p +1\.0\.0 +$PLUGIN_DIR/$p\.so " ||
      fail "$p missing or without version/origin:
$out"
  done
  caps() { printf '%s\n' "$out" | awk -v p="$1" '$1 == p { getline; print; exit }'; }
  case $(caps streamfs) in
    *"capabilities: "*streaming*blocking_read*stateful_read*nonblocking*) ;;
    *) fail "streamfs capabilities: $(caps streamfs)";;
  esac
  case $(caps hellofs) in
    *"capabilities: read,write"*) ;;
    *) fail "hellofs capabilities: $(caps hellofs)";;
  esac
  case $(caps hellofs) in *create*) fail "hellofs cannot create";; esac
  case $(caps pubsubfs) in *blocking_read*) ;; *) fail "pubsubfs caps";; esac
  case $(caps kvfs) in *rename*directory*) ;; *) fail "kvfs caps";; esac
}

test_refused_plugins_are_reported_by_name_and_good_ones_still_load() {
  out=$("$FS9" --list-providers -o plugin_dir="$TEST_PLUGIN_DIR" 2>"$FS9_TMP/refused.$$") ||
    fail "--list-providers failed"
  err=$(cat "$FS9_TMP/refused.$$"); rm -f "$FS9_TMP/refused.$$"
  for f in bad_abi bad_name bad_size dup_memfs no_entry no_read null_table twin_b; do
    printf '%s\n' "$err" | grep -q "plugin refused: $TEST_PLUGIN_DIR/$f.so: " ||
      fail "no refusal naming $f.so in:
$err"
  done
  printf '%s\n' "$err" | grep -q "bad_abi.so: built for provider ABI 99" || fail "ABI message"
  printf '%s\n' "$out" | grep -q "^good " || fail "good did not load"
  printf '%s\n' "$out" | grep -q "^twin .*twin_a.so" || fail "the first twin loads"
  # and a mount works beside them
  MNT=$(mktemp -d "$FS9_TMP/fs9-mnt.XXXXXX")
  fs9_start -o plugin_dir="$TEST_PLUGIN_DIR" good "$MNT" || fail "mount good"
  [ -d "$MNT" ] && [ -z "$(ls -A "$MNT")" ] || fail "good shows an empty root"
  grep -q "plugin refused: .*no_read.so" "$FS9_LOG" || fail "the mount's log names refusals too"
}

test_unknown_plugin_setting_is_refused_with_one_line() {
  d=$(mktemp -d "$FS9_TMP/fs9-cli.XXXXXX")
  for p in hellofs kvfs streamfs pubsubfs; do
    rc=0
    out=$(timeout 20 "$FS9" -f -o plugin_dir="$PLUGIN_DIR" -o colour=blue "$p" "$d" 2>&1) || rc=$?
    [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "$p accepted colour= (rc $rc)"
    case $out in
      *"$p at /: unknown key 'colour'"*) ;;
      *) fail "$p said: $out";;
    esac
    is_mounted "$d" && fail "$d left mounted"
  done
  rmdir "$d"
}

# ---- hellofs ---------------------------------------------------------------

test_hellofs_says_hello_and_takes_a_greeting() {
  plug_mount hellofs
  assert_file_eq hello "Hello, world!"
  assert_eq "$(ls)" "$(printf 'hello\nnotes\ntodo')"
  assert_eq "$(stat -c %a hello)" 444
  assert_eq "$(stat -c %a .)" 555
  plug_unmount
  plug_mount "hellofs:Hi there"
  assert_file_eq hello "Hi there"
  plug_unmount
  plug_mount hellofs -o greeting=Bonjour
  assert_file_eq hello "Bonjour"
}

test_hellofs_writable_files_write_truncate_read() {
  plug_mount hellofs
  echo "first note" >notes
  echo "second" >>notes
  assert_eq "$(cat notes)" "$(printf 'first note\nsecond')"
  truncate -s 5 notes
  assert_file_eq notes "first"
  printf 'x' >notes
  assert_file_eq notes "x"
  seq 1 10000 >todo
  seq 1 10000 | cmp - todo || fail "todo differs"
  : >todo
  assert_eq "$(stat -c %s todo)" 0
  touch -d '2001-02-03 04:05:06' notes
  assert_eq "$(stat -c %Y notes)" "$(date -d '2001-02-03 04:05:06' +%s)"
  # 1 MiB per file: what fits is written, then EFBIG.
  python3 - <<'PY' || fail "EFBIG"
import errno, os
fd = os.open("notes", os.O_WRONLY | os.O_APPEND)
assert os.write(fd, b"y" * (1 << 20)) == (1 << 20) - 1
try:
    os.write(fd, b"y")
    raise SystemExit("wrote past 1 MiB")
except OSError as e:
    assert e.errno == errno.EFBIG, e
PY
  assert_eq "$(stat -c %s notes)" $((1 << 20))
}

test_hellofs_errors() {
  plug_mount hellofs
  assert_eq "$(errno_of 'open("hello", "w")')" EACCES
  assert_eq "$(errno_of 'open("hello", "a")')" EACCES
  assert_eq "$(errno_of 'os.truncate("hello", 0)')" EACCES
  assert_eq "$(errno_of 'open("new", "w")')" EACCES
  assert_eq "$(errno_of 'os.mkdir("d")')" EACCES
  assert_eq "$(errno_of 'os.mknod("fifo", 0o600 | 0o010000)')" EACCES
  assert_eq "$(errno_of 'os.unlink("hello")')" EACCES
  assert_eq "$(errno_of 'os.rename("notes", "n2")')" EACCES
  assert_eq "$(errno_of 'os.chmod("notes", 0o600)')" EPERM
  assert_eq "$(errno_of 'os.chown("notes", 1, 1)')" EPERM
  assert_eq "$(errno_of 'os.open(".", os.O_WRONLY)')" EISDIR
  assert_eq "$(errno_of 'os.listdir("hello")')" ENOTDIR
  assert_eq "$(errno_of 'open("hello/x")')" ENOTDIR
  assert_eq "$(errno_of 'open("nosuch")')" ENOENT
  assert_eq "$(errno_of 'os.rmdir("hello")')" ENOTDIR
  assert_eq "$(errno_of 'os.link("notes", "n3")')" EPERM
  assert_eq "$(errno_of 'os.symlink("notes", "s")')" EPERM
  assert_eq "$(errno_of 'os.setxattr("notes", "user.x", b"1")')" ENOTSUP # = EOPNOTSUPP
  expect_errno EACCES sh -c 'echo x > hello'
}

# ---- kvfs ------------------------------------------------------------------

test_kvfs_tree_of_keys_cp_diff_mv_rm() {
  src=$(mktemp -d "$FS9_TMP/fs9-src.XXXXXX")
  mkdir -p "$src/etc/conf.d" "$src/var/lib/empty" "$src/a b"
  for i in $(seq 1 40); do head -c $((i * 331)) /dev/urandom >"$src/etc/f$i"; done
  head -c 3000000 /dev/urandom >"$src/var/big"
  echo "spaces" >"$src/a b/c d"
  printf 'k=v\n' >"$src/etc/conf.d/x.conf"
  ln -s ../etc/f1 "$src/var/link"
  chmod 0750 "$src/etc/conf.d"
  touch -d '2001-02-03 04:05:06.123456789' "$src/etc/f4"
  plug_mount kvfs
  cp -a "$src" tree
  diff -r "$src" tree || fail "diff after cp -a in"
  (cd "$src" && find . -type f -exec sha256sum {} + | sort) >"$FS9_TMP/k1.$$"
  (cd tree && find . -type f -exec sha256sum {} + | sort) >"$FS9_TMP/k2.$$"
  cmp "$FS9_TMP/k1.$$" "$FS9_TMP/k2.$$" || fail "checksums differ"
  rm -f "$FS9_TMP/k1.$$" "$FS9_TMP/k2.$$"
  assert_eq "$(readlink tree/var/link)" "../etc/f1"
  assert_eq "$(stat -c %a tree/etc/conf.d)" 750
  assert_eq "$(stat -c %y tree/etc/f4)" "$(stat -c %y "$src/etc/f4")"
  # listings come in key order
  assert_eq "$(ls -f tree/etc | grep -v '^\.\.\?$' | tr '\n' ' ')" \
            "$(ls -f tree/etc | grep -v '^\.\.\?$' | LC_ALL=C sort | tr '\n' ' ')"
  # mv of a file and of a directory with its subtree
  mv tree/etc/f1 tree/etc/renamed
  [ ! -e tree/etc/f1 ] || fail "old name stays"
  mv tree/etc tree/var/lib/etc
  cmp "$src/etc/f2" tree/var/lib/etc/f2 || fail "moved subtree content"
  assert_file_eq tree/var/lib/etc/conf.d/x.conf "k=v"
  expect_errno ENOTEMPTY rmdir tree/var
  assert_eq "$(errno_of 'os.rename("tree/var", "tree/var/lib/x")')" EINVAL
  assert_eq "$(errno_of 'os.rename("tree/var/big", "tree/var/lib")')" EISDIR
  assert_eq "$(errno_of 'os.rename("tree/var/lib", "tree/var/big")')" ENOTDIR
  assert_eq "$(errno_of 'os.rmdir("tree/var/big")')" ENOTDIR
  assert_eq "$(errno_of 'os.unlink("tree/var")')" EISDIR
  assert_eq "$(errno_of 'os.link("tree/var/big", "tree/hard")')" EPERM
  # RENAME_EXCHANGE through renameat2(2)
  python3 - <<'PY' || fail "renameat2 exchange"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_NOREPLACE, RENAME_EXCHANGE = -100, 1, 2
def r2(a, b, f):
    if libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), f) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
r2("tree/var/big", "tree/a b", RENAME_EXCHANGE)
assert os.path.isdir("tree/var/big") and os.path.isfile("tree/a b")
assert open("tree/var/big/c d").read() == "spaces\n"
try:
    r2("tree/a b", "tree/var", RENAME_NOREPLACE)
    raise SystemExit("NOREPLACE replaced")
except OSError as e:
    assert e.errno == 17, e
PY
  rm -r tree
  [ -z "$(ls -A)" ] || fail "rm -r left $(ls -A)"
  df . >/dev/null || fail "statfs"
  rm -rf "$src"
}

test_kvfs_ownership_times_and_many_keys() {
  plug_mount kvfs
  mkdir d
  assert_eq "$(stat -c %u:%g d)" "$(id -u):$(id -g)"
  for i in $(seq 1 500); do echo "$i" >"d/k$i"; done
  assert_eq "$(ls d | wc -l)" 500
  assert_eq "$(ls -f d | grep -c '^k')" 500
  before=$(stat -c %Y d)
  sleep 1.1
  rm d/k1
  [ "$(stat -c %Y d)" -gt "$before" ] || fail "rm did not move the dir's mtime"
  chmod 0600 d/k2
  assert_eq "$(stat -c %a d/k2)" 600
  chown 1:1 d/k3
  assert_eq "$(stat -c %u:%g d/k3)" "1:1"
  assert_eq "$(errno_of 'os.mkfifo("d/fifo")')" EPERM
}

# ---- streamfs and pubsubfs: readers that wait ---------------------------------

# latency PATH: a cat started before any writer gets lines written later by
# another process; prints the latency of each line, asserts a generous bound.
latency_check() {
  python3 - "$1" <<'PY'
import os, select, statistics, subprocess, sys, time
path = sys.argv[1]
cat = subprocess.Popen(["cat", path], stdout=subprocess.PIPE)
time.sleep(0.5)  # cat is waiting, parked, before any writer exists
writer = subprocess.Popen([sys.executable, "-c", """
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY)
for i in range(20):
    os.write(fd, b"%d\\n" % time.monotonic_ns())
    time.sleep(0.05)
""", path])
lat, buf = [], b""
deadline = time.monotonic() + 30
while len(lat) < 20 and time.monotonic() < deadline:
    r, _, _ = select.select([cat.stdout], [], [], 5)
    if not r:
        break
    chunk = os.read(cat.stdout.fileno(), 65536)
    now = time.monotonic_ns()
    if not chunk:
        break
    buf += chunk
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        lat.append((now - int(line)) / 1e6)
writer.wait()
cat.terminate()
cat.wait()
if len(lat) < 20:
    sys.exit("only %d of 20 lines arrived" % len(lat))
print("latency from write(2) to a waiting cat: n=%d min=%.2f median=%.2f "
      "max=%.2f ms" % (len(lat), min(lat), statistics.median(lat), max(lat)),
      file=sys.stderr)
if max(lat) > 5000:
    sys.exit("a line took %.0f ms" % max(lat))
PY
}

# fanout PATH N: N cats started first all receive 300 lines written one
# write(2) each by another process, in order, then EOF when PATH is removed.
fanout_check() {
  local path=$1 n=$2 i pids=()
  for i in $(seq 1 "$n"); do
    cat "$path" >"$FS9_TMP/fanout.$$.$i" &
    pids+=($!); BG_PIDS+=($!)
  done
  sleep 0.5
  python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
for i in range(300):
    os.write(fd, b"message %d\n" % i)
' "$path" || fail "writer"
  sleep 0.3
  rm "$path"
  wait_pids 10 "${pids[@]}"
  seq 0 299 | sed 's/^/message /' >"$FS9_TMP/fanout.$$.want"
  for i in $(seq 1 "$n"); do
    cmp "$FS9_TMP/fanout.$$.want" "$FS9_TMP/fanout.$$.$i" ||
      fail "reader $i did not get every message in order"
    rm -f "$FS9_TMP/fanout.$$.$i"
  done
  rm -f "$FS9_TMP/fanout.$$.want"
}

# sigint PATH: a waiting reader killed with SIGINT (as Ctrl-C does) exits
# promptly.  Python runs it: background jobs of a script ignore SIGINT, and
# a shell that waits for a child killed by SIGINT may take it as its own.
sigint_check() {
  python3 - "$1" <<'PY'
import signal, subprocess, sys, time
reader = subprocess.Popen(
    ["cat", sys.argv[1]], stdout=subprocess.DEVNULL,
    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
time.sleep(0.5)
if reader.poll() is not None:
    sys.exit("the reader did not wait")
t0 = time.monotonic()
reader.send_signal(signal.SIGINT)
try:
    rc = reader.wait(5)
except subprocess.TimeoutExpired:
    reader.kill()
    sys.exit("the reader was still waiting 5 s after SIGINT")
print("SIGINT to exit: %.1f ms" % ((time.monotonic() - t0) * 1000),
      file=sys.stderr)
if rc != -signal.SIGINT:
    sys.exit("exit status %d, expected death by SIGINT" % rc)
PY
}

# busy PATH OTHER-READ WRITE-TARGET: while 50 readers wait on PATH, ls,
# stat, a read of another file and writes still complete.
busy_check() {
  local path=$1 read_cmd=$2 target=$3 i pids=() t0
  for i in $(seq 1 50); do
    cat "$path" >/dev/null &
    pids+=($!); BG_PIDS+=($!)
  done
  sleep 1
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || fail "a reader exited"; done
  t0=$(date +%s%N)
  timeout 10 ls -l >/dev/null || fail "ls while 50 readers wait"
  timeout 10 stat "$path" >/dev/null || fail "stat"
  timeout 10 sh -c "$read_cmd" >/dev/null || fail "$read_cmd"
  for i in $(seq 1 20); do
    timeout 10 sh -c "echo write $i >> '$target'" || fail "write $i"
  done
  timeout 10 df . >/dev/null || fail "statfs"
  log "ls, stat, a read, 20 writes and df with 50 readers waiting: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
  kill -TERM "${pids[@]}"
  wait_pids 10 "${pids[@]}"
}

# nonblock_and_select PATH WRITE-CMD: O_NONBLOCK reads get EAGAIN when
# caught up; select and poll report readability when another process
# writes.
nonblock_and_select_check() {
  python3 - "$1" "$2" <<'PY'
import errno, os, select, subprocess, sys
path, write_cmd = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
while True:  # the history first
    try:
        if not os.read(fd, 65536):
            sys.exit("EOF on a live stream")
    except BlockingIOError:
        break
try:
    os.read(fd, 10)
    sys.exit("O_NONBLOCK read did not fail")
except OSError as e:
    assert e.errno == errno.EAGAIN, e
r, _, _ = select.select([fd], [], [], 0.3)
assert r == [], "readable with nothing to read"
p = select.poll()
p.register(fd, select.POLLIN)
assert p.poll(300) == [], "poll: readable with nothing to read"
w = subprocess.Popen(["sh", "-c", "sleep 0.3; " + write_cmd])
r, _, _ = select.select([fd], [], [], 5)
assert r == [fd], "select never reported the write"
got = os.read(fd, 100)
assert got == b"ping\n", got
w.wait()
w = subprocess.Popen(["sh", "-c", "sleep 0.3; " + write_cmd])
ev = p.poll(5000)
assert ev and ev[0][1] & select.POLLIN, ev
assert os.read(fd, 100) == b"ping\n"
w.wait()
PY
}

# rm_eof PATH: rm ends waiting readers with end of file, after what is left.
rm_eof_check() {
  cat "$1" >"$FS9_TMP/rmeof.$$" &
  local pid=$! rc=0
  BG_PIDS+=($pid)
  sleep 0.5
  kill -0 "$pid" 2>/dev/null || fail "the reader did not wait"
  rm "$1"
  wait_pids 5 "$pid"
  wait "$pid" || rc=$?
  assert_eq "$rc" 0 "cat ends normally at EOF"
  assert_eq "$(cat "$FS9_TMP/rmeof.$$")" "history"
  rm -f "$FS9_TMP/rmeof.$$"
}

test_streamfs_cat_started_first_gets_later_writes_latency() {
  plug_mount streamfs
  : >s
  latency_check s || fail "latency"
}

test_streamfs_ten_readers_each_get_every_byte_in_order() {
  plug_mount streamfs
  : >s
  fanout_check s 10
}

test_streamfs_waiting_reader_exits_promptly_on_sigint() {
  plug_mount streamfs
  : >s
  sigint_check s || fail "SIGINT"
}

test_streamfs_fifty_waiting_readers_leave_the_mount_usable() {
  plug_mount streamfs
  : >s
  echo "other data" >other
  busy_check s "head -c 6 other" other
  assert_eq "$(head -c 11 other)" "other data" "history of the other stream"
}

test_streamfs_nonblocking_readers_get_eagain_and_select_works() {
  plug_mount streamfs
  echo history >s
  nonblock_and_select_check s "echo ping >> s" || fail "nonblock/select"
}

test_streamfs_rm_ends_waiting_readers_with_eof() {
  plug_mount streamfs
  echo history >s
  rm_eof_check s
}

test_streamfs_history_ring_and_refusals() {
  plug_mount streamfs -o ring=1k
  seq 1 1000 >s # 3893 bytes: the ring keeps the last 1024
  assert_eq "$(stat -c %s s)" 3893
  assert_eq "$(timeout 5 head -c 1024 s | md5sum)" "$(seq 1 1000 | tail -c 1024 | md5sum)"
  echo more >s # O_TRUNC is ignored: it appends
  assert_eq "$(stat -c %s s)" 3898
  assert_eq "$(errno_of 'os.mkdir("d")')" EPERM
  assert_eq "$(errno_of 'os.rename("s", "t")')" EPERM
  assert_eq "$(errno_of 'os.truncate("s", 0)')" EPERM
  assert_eq "$(errno_of 'open("s/x")')" ENOTDIR
  assert_eq "$(errno_of 'os.lseek(os.open("s", os.O_RDONLY), 10, 0)')" ESPIPE
  assert_eq "$(ls)" "s"
}

test_streamfs_big_read_returns_what_is_there_without_waiting() {
  plug_mount streamfs -o ring=4m
  python3 - <<'PY' || fail "a 2 MiB read waited with 1 MiB in hand"
import mmap, os, threading, time
w = os.open("s", os.O_WRONLY | os.O_CREAT)
os.write(w, b"a" * (1 << 20))  # exactly one FUSE piece of data
r = os.open("s", os.O_RDONLY)
buf = mmap.mmap(-1, 2 << 20)   # page-aligned: the first piece is 1 MiB
rescue = threading.Timer(3, os.write, (w, b"z"))  # fail rather than hang
rescue.daemon = True
rescue.start()
t0 = time.monotonic()
n = os.readv(r, [buf])
assert time.monotonic() - t0 < 1, "waited %.1f s" % (time.monotonic() - t0)
assert n == (1 << 20) - 1, n
assert os.read(r, 10) == b"a"
PY
}

# ---- pubsubfs ----------------------------------------------------------------

test_pubsubfs_readme_and_info() {
  plug_mount pubsubfs
  grep -q "echo hello > news" README || fail "README"
  echo hello >news
  echo world >news
  cat news >/dev/null & # a subscriber: it waits after the two messages
  BG_PIDS+=($!)
  sleep 0.5
  assert_eq "$(LC_ALL=C ls | tr '\n' ' ')" "README news news.info "
  assert_eq "$(awk '$1 == "messages:" { print $2 }' news.info)" 2
  assert_eq "$(awk '$1 == "subscribers:" { print $2 }' news.info)" 1
  assert_eq "$(awk '$1 == "bytes:" { print $2 }' news.info)" 12
  assert_eq "$(awk '$1 == "ring:" { print $2 }' news.info)" 64
  grep -Eq '^created: [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$' news.info || fail "created"
  grep -Eq '^modified: ' news.info || fail "modified"
  [ "$(grep -c ': ' news.info)" = "$(wc -l <news.info)" ] || fail "every line is key: value"
  assert_eq "$(errno_of 'open("README", "w")')" EACCES
  assert_eq "$(errno_of 'open("news.info", "w")')" EACCES
  assert_eq "$(errno_of 'open("x.info", "w")')" EACCES
  assert_eq "$(errno_of 'os.unlink("README")')" EACCES
  assert_eq "$(errno_of 'os.mkdir("d")')" EPERM
  assert_eq "$(errno_of 'os.rename("news", "olds")')" EPERM
}

test_pubsubfs_cat_started_first_gets_later_messages_latency() {
  plug_mount pubsubfs
  : >news # creates the topic, publishes nothing
  latency_check news || fail "latency"
}

test_pubsubfs_ten_subscribers_each_get_every_message_in_order() {
  plug_mount pubsubfs -o ring=1000
  : >news
  fanout_check news 10
}

test_pubsubfs_each_read_returns_one_message() {
  plug_mount pubsubfs -o ring=256 # all 200 stay retained
  : >t
  python3 - <<'PY' || fail "one message per read"
import os
pub = os.open("t", os.O_WRONLY)
sub = os.open("t", os.O_RDONLY)
msgs = [b"m%d:" % i + b"x" * (i * 37 % 5000) for i in range(200)]
for m in msgs:
    os.write(pub, m)
for m in msgs:
    got = os.read(sub, 1 << 20)
    assert got == m, (len(got), len(m))
# a buffer smaller than the message gets the rest on the next reads
os.write(pub, b"0123456789")
assert os.read(sub, 4) == b"0123"
assert os.read(sub, 100) == b"456789"
PY
}

test_pubsubfs_waiting_subscriber_exits_promptly_on_sigint() {
  plug_mount pubsubfs
  : >news
  sigint_check news || fail "SIGINT"
}

test_pubsubfs_fifty_waiting_subscribers_leave_the_mount_usable() {
  plug_mount pubsubfs
  : >news
  busy_check news "cat README news.info" other
  assert_eq "$(awk '$1 == "messages:" { print $2 }' other.info)" 20
}

test_pubsubfs_nonblocking_subscribers_get_eagain_and_select_works() {
  plug_mount pubsubfs
  echo history >t
  nonblock_and_select_check t "echo ping > t" || fail "nonblock/select"
}

test_pubsubfs_rm_ends_waiting_subscribers_with_eof() {
  plug_mount pubsubfs
  echo history >t
  rm_eof_check t
  [ ! -e t.info ] || fail "t.info outlives its topic"
}

test_pubsubfs_oversized_messages_fail_with_emsgsize() {
  plug_mount pubsubfs
  : >big
  python3 - <<'PY' || fail "EMSGSIZE"
import errno, mmap, os
MAX = (1 << 20) - 4096
buf = mmap.mmap(-1, 8 << 20)
buf.write(bytes(range(256)) * ((8 << 20) // 256))
mv = memoryview(buf)
pub = os.open("big", os.O_WRONLY)
sub = os.open("big", os.O_RDONLY)
# From page-aligned and unaligned buffers alike: the kernel cuts a big
# write(2) into pieces, and none may slip through as a smaller message.
for off in (0, 16, 4095):
    for n in (MAX + 1, 1 << 20, (1 << 20) + 1, 3 << 20):
        try:
            os.write(pub, mv[off:off + n])
            raise SystemExit("a %d-byte write at offset %d was accepted" % (n, off))
        except OSError as e:
            assert e.errno == errno.EMSGSIZE, (n, off, e)
    assert os.write(pub, mv[off:off + MAX]) == MAX
    got = os.read(sub, 2 << 20)
    assert len(got) == MAX and got == mv[off:off + MAX], (off, len(got))
info = open("big.info").read()
assert "\nmessages: 3\n" in info, info
PY
  expect_errno EMSGSIZE dd if=/dev/zero of=big bs=2M count=1 status=none
  assert_eq "$(awk '$1 == "messages:" { print $2 }' big.info)" 3
}

# ---- the SDK -------------------------------------------------------------------

test_sdk_outside_plugin_builds_with_pkg_config_and_mounts() {
  command -v meson >/dev/null || skip "meson not installed"
  dest=$(mktemp -d "$FS9_TMP/fs9-dest.XXXXXX")
  work=$(mktemp -d "$FS9_TMP/fs9-sdk.XXXXXX")
  meson install -C "$FS9_BUILD" --destdir "$dest" --no-rebuild >"$work/install.log" 2>&1 ||
    { cat "$work/install.log" >&2; fail "meson install --destdir"; }
  pc=$(find "$dest" -name fs9-provider.pc | head -1)
  [ -n "$pc" ] || fail "no fs9-provider.pc installed"
  export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$dest
  cflags=$(pkg-config --cflags fs9-provider) || fail "pkg-config --cflags"
  case $cflags in *"$dest"*) ;; *) fail "cflags do not point into the destdir: $cflags";; esac
  inc=${cflags#-I}
  inc=${inc%% *}
  [ -f "$inc/fs9/provider.h" ] || fail "provider.h not at $inc/fs9/"
  plugindir=$(pkg-config --variable=plugindir fs9-provider)
  installed=$dest${plugindir#"$dest"}
  for p in hellofs kvfs streamfs pubsubfs; do
    [ -f "$installed/$p.so" ] || fail "$p.so not installed in $plugindir"
  done
  # An author's copy of the template, renamed, built alone.
  sed 's/"hellofs"/"myhello"/' "$FS9_SRC/plugins/hellofs/hellofs.c" >"$work/myhello.c"
  cc -shared -fPIC -Wall -Wextra -Werror $cflags "$work/myhello.c" \
     -o "$work/myhello.so" || fail "the outside build failed"
  assert_eq "$(nm -D --defined-only "$work/myhello.so" | awk '{ print $3 }')" \
            fs9_provider_entry "exports only the entry"
  mkdir "$work/none"
  MNT=$(mktemp -d "$FS9_TMP/fs9-mnt.XXXXXX")
  fs9_start -o plugin_dir="$work/none" -o plugin="$work/myhello.so" \
            "myhello:Hello from outside" "$MNT" || fail "mount myhello"
  assert_file_eq "$MNT/hello" "Hello from outside"
  "$FS9" --list-providers -o plugin_dir="$installed" | grep -q "^pubsubfs " ||
    fail "the installed plugins load"
  rm -rf "$dest" "$work"
}
