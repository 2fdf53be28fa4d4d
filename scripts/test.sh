#!/usr/bin/env bash
# Set up, build and run every FS9 test:
#   - criterion unit tests of each core structure and provider,
#   - integration tests on real FUSE mounts (shell tools, git, tar, ...),
# first in a normal build (warnings are errors), then all again under
# AddressSanitizer + UndefinedBehaviorSanitizer.
# The last line counts every test: "N passed, N failed, N skipped".
#   scripts/test.sh [--quick]   (--quick: normal build only)
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
quick=0
[ "${1:-}" = --quick ] && quick=1

passed=0 failed=0 skipped=0
tally() { passed=$((passed + $1)); failed=$((failed + $2)); skipped=$((skipped + $3)); }
finish() {
  echo
  echo "$passed passed, $failed failed, $skipped skipped"
  [ "$failed" -eq 0 ]
  exit $?
}

if ! scripts/deps.sh; then
  echo "setup failed: could not install the packages FS9 needs"
  failed=$((failed + 1)); finish
fi

builds=("build")
[ $quick = 1 ] || builds+=("build-asan")

for b in "${builds[@]}"; do
  opts=()
  [ "$b" = build-asan ] && opts=(-Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug)
  echo "== building $b"
  if ! scripts/build.sh "$b" "${opts[@]}"; then
    ninja -C "$b" 2>&1 | tail -30
    echo "build of $b failed"
    failed=$((failed + 1)); finish
  fi
done

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$top/tests/lsan.supp:print_suppressions=0

for b in "${builds[@]}"; do
  echo "== unit tests ($b)"
  for exe in "$b"/tests/unit/test_*; do
    [ -x "$exe" ] && [ -f "$exe" ] || continue
    name=$(basename "$exe")
    tap=$(mktemp)
    timeout --kill-after=10 900 "$exe" --jobs 2 --tap="$tap" >"$tap.out" 2>&1
    rc=$?
    p=$(grep '^ok ' "$tap" | grep -vc '# SKIP' || true)
    s=$(grep '^ok ' "$tap" | grep -c '# SKIP' || true)
    f=$(grep -c '^not ok ' "$tap" || true)
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
      f=1 # crashed or timed out outside any single test
    fi
    # criterion records a result before a test's process exits, so an
    # exit-time leak report does not fail the test by itself: look for it.
    if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|WARNING: ThreadSanitizer' "$tap.out"; then
      echo "    sanitizer report in $name:"
      grep -E -A12 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$tap.out" | head -40 | sed 's/^/    /'
      f=$((f + 1))
    fi
    tally "$p" "$f" "$s"
    printf '%-22s %4d passed %3d failed %3d skipped\n' "$name" "$p" "$f" "$s"
    if [ "$f" -gt 0 ]; then
      grep '^not ok ' "$tap" | sed 's/^/    /'
      tail -40 "$tap.out" | sed 's/^/    /'
    fi
    rm -f "$tap" "$tap.out"
  done

  echo "== integration tests ($b)"
  counts=$(mktemp)
  FS9="$top/$b/src/fuse/fs9" FS9_COUNTS="$counts" \
    tests/integration/run.sh tests/integration/suite_*.sh
  if [ -s "$counts" ]; then
    while read -r p f s; do tally "$p" "$f" "$s"; done <"$counts"
  else
    failed=$((failed + 1)); echo "integration runner failed to report"
  fi
  rm -f "$counts"
done

finish
