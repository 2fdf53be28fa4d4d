# posix.sh — the mount used as a person uses a filesystem: shell tools,
# tar, rsync, git, and the errno every failure must give.  Runs once per
# provider (memfs, localfs); each test gets a fresh mount at $MNT and runs
# inside it.
PER_PROVIDER=1

test_echo_redirect_append_and_cat() {
  echo hello >f
  echo world >>f
  assert_eq "$(cat f)" "$(printf 'hello\nworld')"
  printf 'x' >f
  assert_eq "$(cat f)" "x" "> truncates"
  assert_eq "$(stat -c %s f)" 1
}

test_cp_a_tree_round_trip_keeps_content_and_metadata() {
  src=$(mktemp -d "$FS9_TMP/fs9-src.XXXXXX")
  mkdir -p "$src/a/b/c" "$src/empty"
  for i in $(seq 1 50); do head -c $((i * 997)) /dev/urandom >"$src/a/f$i"; done
  head -c 3000000 /dev/urandom >"$src/a/b/c/big"
  ln -s ../f1 "$src/a/b/link"
  ln "$src/a/f2" "$src/a/hard"
  chmod 0750 "$src/a/b"
  chmod 0600 "$src/a/f3"
  touch -d '2001-02-03 04:05:06.123456789' "$src/a/f4"
  cp -a "$src" tree
  (cd "$src" && find . -type f -exec sha256sum {} + | sort) >"$FS9_TMP/sum1.$$"
  (cd tree && find . -type f -exec sha256sum {} + | sort) >"$FS9_TMP/sum2.$$"
  cmp "$FS9_TMP/sum1.$$" "$FS9_TMP/sum2.$$" || fail "checksums differ after cp -a in"
  assert_eq "$(readlink tree/a/b/link)" "../f1"
  assert_eq "$(stat -c %a tree/a/b)" 750
  assert_eq "$(stat -c %a tree/a/f3)" 600
  assert_eq "$(stat -c %y tree/a/f4)" "$(stat -c %y "$src/a/f4")" "mtime kept to the nanosecond"
  assert_eq "$(stat -c %h tree/a/hard)" 2 "cp -a keeps hard links"
  assert_eq "$(stat -c %i tree/a/hard)" "$(stat -c %i tree/a/f2)"
  # and back out again
  back=$(mktemp -d "$FS9_TMP/fs9-back.XXXXXX")
  cp -a tree/. "$back/"
  (cd "$back" && find . -type f -exec sha256sum {} + | sort) >"$FS9_TMP/sum3.$$"
  cmp "$FS9_TMP/sum1.$$" "$FS9_TMP/sum3.$$" || fail "checksums differ after cp -a out"
  rm -rf "$src" "$back" "$FS9_TMP/sum1.$$" "$FS9_TMP/sum2.$$" "$FS9_TMP/sum3.$$"
}

test_mv_rename_file_and_directory_with_contents() {
  mkdir -p d/sub
  echo 1 >d/sub/x
  mv d e
  assert_file_eq e/sub/x 1
  [ ! -e d ] || fail "old name still exists"
  echo 2 >y
  mv y e/sub/x
  assert_file_eq e/sub/x 2
  mkdir z
  mv e z/
  assert_file_eq z/e/sub/x 2
}

test_rm_r_mkdir_p_and_rmdir() {
  mkdir -p a/b/c/d/e
  touch a/b/c/d/e/f a/b/g
  rm -r a
  [ ! -e a ] || fail "rm -r left a"
  mkdir -p a/b
  rmdir a/b a
  [ ! -e a ] || fail "rmdir left a"
}

test_hard_links_count_and_share_data() {
  echo data >f
  ln f g
  ln f h
  assert_eq "$(stat -c %h f)" 3
  echo more >>g
  assert_eq "$(cat h)" "$(printf 'data\nmore')"
  rm f
  assert_eq "$(stat -c %h g)" 2
  mkdir dd
  assert_eq "$(errno_of 'os.link("dd", "dd2")')" EPERM
  assert_eq "$(errno_of 'os.link("g", "h")')" EEXIST
  assert_eq "$(errno_of 'os.link("nope", "x")')" ENOENT
}

test_symlinks_resolve_and_readlink() {
  mkdir real
  echo content >real/file
  ln -s real/file abs_rel
  ln -s real linkdir
  assert_eq "$(readlink abs_rel)" "real/file"
  assert_eq "$(cat abs_rel)" content
  assert_eq "$(cat linkdir/file)" content
  ln -s nowhere dangling
  [ -L dangling ] || fail "dangling link missing"
  expect_errno ENOENT cat dangling
  assert_eq "$(stat -c %F abs_rel)" "symbolic link"
}

test_chmod_chown_touch_and_truncate() {
  echo abc >f
  chmod 0604 f
  assert_eq "$(stat -c %a f)" 604
  chmod u+x,g+s f
  assert_eq "$(stat -c %a f)" 2704
  chown 1234:5678 f
  assert_eq "$(stat -c %u:%g f)" 1234:5678
  touch -d '1999-12-31 23:59:59.5' f
  assert_eq "$(stat -c %Y f)" 946684799
  assert_eq "$(stat -c %y f)" "1999-12-31 23:59:59.500000000 +0000"
  touch -a -d '2010-01-01 00:00:00' f
  assert_eq "$(stat -c %X f)" 1262304000
  assert_eq "$(stat -c %Y f)" 946684799 "touch -a leaves mtime"
  truncate -s 10 f
  assert_eq "$(stat -c %s f)" 10
  assert_eq "$(head -c 4 f | od -An -c | tr -s ' ')" " a b c \n"
  assert_eq "$(tail -c 6 f | tr '\0' 0)" 000000
  truncate -s 2 f
  assert_eq "$(cat f)" ab
}

test_ctime_and_mtime_move_on_change() {
  echo a >f
  touch -d '2000-01-01' f
  c1=$(stat -c %Z f)
  sleep 1.1
  echo b >>f
  [ "$(stat -c %Y f)" -gt 946684800 ] || fail "write did not move mtime"
  [ "$(stat -c %Z f)" -gt "$c1" ] || fail "write did not move ctime"
  c2=$(stat -c %Z f)
  sleep 1.1
  chmod 600 f
  [ "$(stat -c %Z f)" -gt "$c2" ] || fail "chmod did not move ctime"
}

test_tar_create_and_extract_round_trip() {
  mkdir -p src/a/b
  for i in $(seq 1 100); do echo "file $i" >"src/a/f$i"; done
  head -c 200000 /dev/urandom >src/a/b/bin
  ln -s f1 src/a/sym
  ln src/a/f2 src/a/hard
  tar cf t.tar src
  mkdir out
  tar xf t.tar -C out
  diff -r src out/src || fail "tree differs after tar round trip"
  assert_eq "$(stat -c %h out/src/a/hard)" 2
  # and a tarball of the mount read from outside
  tar cf - src | tar tf - | sort >list
  grep -q '^src/a/b/bin$' list || fail "tar listing incomplete"
}

test_rsync_a_tree_in_and_checksum() {
  src=$(mktemp -d "$FS9_TMP/fs9-rs.XXXXXX")
  mkdir -p "$src/x/y"
  for i in $(seq 1 30); do head -c $((i * 1000)) /dev/urandom >"$src/x/y/f$i"; done
  ln -s y "$src/x/sy"
  rsync -aHX "$src/" copy/
  rsync -aHXc --dry-run --itemize-changes "$src/" copy/ >changes
  [ ! -s changes ] || { cat changes >&2; fail "rsync sees differences after copy"; }
  rm -rf "$src"
}

test_find_du_and_df_report_sensible_numbers() {
  mkdir -p a/b
  head -c 1048576 /dev/zero >a/one_mib
  truncate -s 100M a/sparse
  touch a/b/c
  assert_eq "$(find . -type f | sort | tr '\n' ' ')" "./a/b/c ./a/one_mib ./a/sparse "
  assert_eq "$(find . -name 'one*' -size 1M)" "./a/one_mib"
  du_k=$(du -k a/one_mib | cut -f1)
  [ "$du_k" -ge 1024 ] && [ "$du_k" -le 1100 ] || fail "du of 1 MiB file is $du_k KiB"
  sp=$(du -k a/sparse | cut -f1)
  [ "$sp" -lt 1024 ] || fail "sparse 100 MiB file uses $sp KiB"
  df -P . | tail -1 | awk '{ if ($2 <= 0) exit 1 }' || fail "df shows no size"
  df -i . >/dev/null || fail "df -i failed"
}

test_large_file_100mib_sha256_round_trip() {
  head -c 104857600 /dev/urandom >"$FS9_TMP/big.$$"
  want=$(sha256sum <"$FS9_TMP/big.$$")
  cp "$FS9_TMP/big.$$" big
  assert_eq "$(sha256sum <big)" "$want" "read back through the page cache"
  assert_eq "$(dd if=big bs=1M iflag=direct status=none | sha256sum)" "$want" "read back with O_DIRECT"
  dd if="$FS9_TMP/big.$$" of=big2 bs=4k status=none
  assert_eq "$(sha256sum <big2)" "$want" "written in 4 KiB blocks"
  rm -f "$FS9_TMP/big.$$"
}

test_unicode_and_spaces_in_names() {
  mkdir 'dir with spaces' 'ディレクトリ'
  echo a >'dir with spaces/file name.txt'
  echo b >'ディレクトリ/ファイル — ü ñ 😀'
  echo c >$'tab\there'
  assert_eq "$(cat 'dir with spaces/file name.txt')" a
  assert_eq "$(cat 'ディレクトリ/ファイル — ü ñ 😀')" b
  assert_eq "$(ls ディレクトリ)" 'ファイル — ü ñ 😀'
  mv 'ディレクトリ' 'renamed dir'
  assert_eq "$(cat 'renamed dir/ファイル — ü ñ 😀')" b
  long=$(printf 'n%.0s' $(seq 1 255))
  touch "$long"
  expect_errno ENAMETOOLONG touch "${long}x"
}

test_open_unlink_read_write_until_close() {
  python3 - <<'PY'
import os
fd = os.open("victim", os.O_CREAT | os.O_RDWR, 0o644)
os.write(fd, b"before")
os.unlink("victim")
assert not os.path.exists("victim")
os.write(fd, b"-after")
os.lseek(fd, 0, 0)
assert os.read(fd, 100) == b"before-after", "data lost after unlink"
st = os.fstat(fd)
assert st.st_size == 12 and st.st_nlink == 0, (st.st_size, st.st_nlink)
os.ftruncate(fd, 3)
os.lseek(fd, 0, 0)
assert os.read(fd, 100) == b"bef"
os.close(fd)
PY
}

test_o_excl_race_between_two_processes_has_one_winner() {
  cat >racer.py <<'PY'
import os, sys, time
start = float(sys.argv[2])
while time.time() < start:
    pass
try:
    os.close(os.open(sys.argv[1], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    open(sys.argv[1] + ".won.%d" % os.getpid(), "w").close()
except FileExistsError:
    pass
PY
  for round in $(seq 1 20); do
    at=$(python3 -c 'import time; print(time.time() + 0.2)')
    python3 racer.py "lock$round" "$at" & a=$!
    python3 racer.py "lock$round" "$at" & b=$!
    wait "$a" "$b"
    n=$(ls | grep -c "^lock$round\.won\.")
    assert_eq "$n" 1 "winners in round $round"
  done
}

test_errno_enoent_eexist_enotempty_enotdir_eisdir() {
  mkdir d; touch d/f f
  expect_errno ENOENT cat nope
  expect_errno ENOENT ls nope/x
  assert_eq "$(errno_of 'os.mkdir("d")')" EEXIST
  assert_eq "$(errno_of 'os.open("f", os.O_CREAT|os.O_EXCL|os.O_WRONLY)')" EEXIST
  assert_eq "$(errno_of 'os.rmdir("d")')" ENOTEMPTY
  assert_eq "$(errno_of 'os.rename("f", "d")')" EISDIR
  mkdir e; touch e/x
  assert_eq "$(errno_of 'os.rename("d", "e")')" ENOTEMPTY
  assert_eq "$(errno_of 'os.stat("f/x")')" ENOTDIR
  assert_eq "$(errno_of 'os.mkdir("f/x")')" ENOTDIR
  assert_eq "$(errno_of 'os.rmdir("f")')" ENOTDIR
  assert_eq "$(errno_of 'os.unlink("d")')" EISDIR
  assert_eq "$(errno_of 'os.open("d", os.O_WRONLY)')" EISDIR
  mkdir g
  assert_eq "$(errno_of 'os.rename("g", "g/sub")')" EINVAL
  assert_eq "$(errno_of 'os.rename("f", "d/f/x")')" ENOTDIR
  assert_eq "$(errno_of 'os.rename("g", "f")')" ENOTDIR
  assert_eq "$(errno_of 'os.rmdir("nope")')" ENOENT
  assert_eq "$(errno_of 'os.readlink("f")')" EINVAL
}

test_rename_noreplace_and_exchange() {
  echo A >a; echo B >b; mkdir dir
  python3 - <<'PY'
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
def renameat2(a, b, flags):
    r = libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), flags)
    return 0 if r == 0 else ctypes.get_errno()
assert renameat2("a", "b", 1) == errno.EEXIST      # NOREPLACE
assert renameat2("a", "b", 2) == 0                 # EXCHANGE
assert open("a").read() == "B\n" and open("b").read() == "A\n"
assert renameat2("a", "dir", 2) == 0               # file <-> dir
assert os.path.isdir("a") and open("dir").read() == "B\n"
assert renameat2("b", "missing", 2) == errno.ENOENT
assert renameat2("b", "c", 1) == 0                 # NOREPLACE to a free name
assert open("c").read() == "A\n"
PY
}

test_sparse_files_holes_read_zero() {
  python3 - <<'PY'
import os
fd = os.open("sp", os.O_CREAT | os.O_RDWR, 0o644)
os.pwrite(fd, b"end", 50 * 1024 * 1024)
assert os.pread(fd, 4, 4096) == b"\0\0\0\0"
assert os.fstat(fd).st_size == 50 * 1024 * 1024 + 3
os.close(fd)
PY
  blocks=$(stat -c %b sp)
  [ "$blocks" -lt 1024 ] || fail "sparse file allocates $blocks blocks"
}

test_xattrs_set_get_list_remove() {
  touch f
  setfattr -n user.color -v blue f
  setfattr -n user.empty f
  assert_eq "$(getfattr --only-values -n user.color f)" blue
  getfattr -d f | grep -q 'user.color="blue"' || fail "getfattr -d misses user.color"
  setfattr -x user.color f
  assert_eq "$(errno_of 'os.getxattr("f", "user.color")')" ENODATA
  assert_eq "$(errno_of 'os.setxattr("f", "user.empty", b"x", os.XATTR_CREATE)')" EEXIST
  assert_eq "$(errno_of 'os.setxattr("f", "user.none", b"x", os.XATTR_REPLACE)')" ENODATA
  mkdir d
  setfattr -n user.d -v 1 d
  assert_eq "$(getfattr --only-values -n user.d d)" 1
}

# Set-user-ID and set-group-ID go when a file changes, as on ext4 or tmpfs
# (fs9 clears them itself under FUSE_HANDLE_KILLPRIV_V2; see wire.h).
test_suid_and_sgid_are_cleared_on_change_as_on_a_local_filesystem() {
  remount -o allow_other
  chmod 755 .
  nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
  nobody true 2>/dev/null || skip "setpriv cannot switch to nobody"
  mode() { stat -c %a s; }
  touch s
  chmod 6777 s; echo root >>s
  assert_eq "$(mode)" 6777 "root (CAP_FSETID) writing keeps them"
  nobody sh -c 'echo x >>s'
  assert_eq "$(mode)" 777 "an unprivileged write"
  chmod 6777 s; nobody dd if=/dev/zero of=s bs=1 count=1 seek=3 conv=notrunc status=none
  assert_eq "$(mode)" 777 "an unprivileged pwrite"
  chmod 6777 s; nobody truncate -s 1 s
  assert_eq "$(mode)" 777 "an unprivileged truncate"
  chmod 6777 s; nobody sh -c ': >s'
  assert_eq "$(mode)" 777 "an unprivileged open(O_TRUNC)"
  chmod 6767 s; nobody sh -c 'echo x >>s'
  assert_eq "$(mode)" 767 "sgid without group-exec, writer outside the group"
  chmod 6767 s; setpriv --reuid=65534 --regid=65534 --groups=0 sh -c 'echo x >>s'
  assert_eq "$(mode)" 2767 "sgid without group-exec, writer in the group"
  chmod 6777 s; chown 65534:65534 s
  assert_eq "$(mode)" 777 "chown"
  chmod 6755 s; chown 0:0 s; chmod 6755 s; touch -m s
  assert_eq "$(mode)" 6755 "a change of times is no change of the program"
}

# A file's capabilities go with a write, a truncate or a chown, and the
# kernel asks for security.capability once per file, not before each write.
test_file_capabilities_dropped_on_write_with_one_question_per_file() {
  getxattrs() { awk '$1 == "op.getxattr.count" { print $2 }' .fs9/stats; }
  python3 - <<'PY'
import os, struct
# a valid VFS_CAP_REVISION_2 value: cap_net_bind_service, effective
cap = struct.pack("<IIIII", 0x02000001, 1 << 10, 0, 0, 0)
open("c", "w").close()
for change in ("write", "truncate", "chown"):
    os.setxattr("c", "security.capability", cap)
    if change == "write":
        with open("c", "a") as f: f.write("x")
    elif change == "truncate":
        os.truncate("c", 0)
    else:
        os.chown("c", 1, 1)
    try:
        os.getxattr("c", "security.capability")
        raise SystemExit(f"{change} kept security.capability")
    except OSError as e:
        assert e.errno == 61, e  # ENODATA
PY
  # getxattr requests the kernel sends for 200 write(2)s of one file
  asked_by_200_writes() {
    local before
    before=$(getxattrs)
    python3 -c '
import os
fd = os.open("w", os.O_CREAT | os.O_WRONLY, 0o644)
for i in range(200): os.write(fd, b"x" * 100)
os.close(fd)'
    echo $(( $(getxattrs) - before ))
  }
  asked=$(asked_by_200_writes)
  [ "$asked" -le 2 ] || fail "200 writes sent $asked getxattr requests (KILLPRIV_V2 not in effect?)"
  # and with -o kernel_killpriv the kernel asks before every write
  remount -o kernel_killpriv
  asked=$(asked_by_200_writes)
  [ "$asked" -ge 200 ] || fail "-o kernel_killpriv: 200 writes sent only $asked getxattr requests"
}

test_fifo_and_append_mode() {
  mkfifo pipe
  assert_eq "$(stat -c %F pipe)" fifo
  (echo through >pipe) & w=$!
  assert_eq "$(timeout 5 cat pipe)" through
  wait "$w"
  python3 - <<'PY'
import os
fd = os.open("log", os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
fd2 = os.open("log", os.O_WRONLY | os.O_APPEND)
os.write(fd, b"one\n"); os.write(fd2, b"two\n"); os.write(fd, b"three\n")
os.close(fd); os.close(fd2)
assert open("log").read() == "one\ntwo\nthree\n", open("log").read()
PY
}

test_large_directory_lists_every_entry_once() {
  mkdir big
  (cd big && seq 1 10000 | sed 's/^/entry-/' | xargs touch)
  assert_eq "$(ls big | wc -l)" 10000
  assert_eq "$(ls big | sort -u | wc -l)" 10000
  assert_eq "$(find big -type f | wc -l)" 10000
  ls -l big >/dev/null
  rm -r big
  [ ! -e big ] || fail "rm -r of a 10,000-entry directory left it"
}

test_git_workflow_and_fsck_clean() {
  export HOME=$PWD GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.org \
    GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.org
  git config --global init.defaultBranch main
  git config --global safe.directory '*'
  git init -q repo
  cd repo
  for i in $(seq 1 20); do echo "line $i" >"file$i.txt"; done
  mkdir -p src/deep && echo 'int main(void){return 0;}' >src/deep/main.c
  git add . && git commit -qm first
  git branch feature
  git checkout -q feature
  echo change >>file1.txt && git commit -qam second
  git checkout -q main
  assert_eq "$(cat file1.txt)" "line 1"
  echo dirty >>file2.txt
  git stash -q
  assert_eq "$(cat file2.txt)" "line 2"
  git stash pop -q
  grep -q dirty file2.txt || fail "stash pop lost the change"
  git checkout -q -- file2.txt
  git merge -q feature
  git gc -q
  git fsck --strict --no-dangling --no-progress
  cd ..
  git clone -q repo clone
  git -C clone fsck --strict --no-progress
  assert_eq "$(git -C clone log --oneline | wc -l)" 2
  git clone -q --no-local repo clone2
  git -C clone2 fsck --strict --no-progress
  diff -r --exclude=.git repo clone || fail "clone differs"
}
