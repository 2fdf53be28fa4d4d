#!/usr/bin/env bash
# run.sh — run integration suites against a real FS9 mount.
#   FS9=build/src/fuse/fs9 tests/integration/run.sh SUITE.sh [SUITE.sh...]
# Environment: PROVIDERS="memfs localfs" (suites that run per provider),
#   FS9_TEST_TIMEOUT (seconds per test, default 300), FS9_COUNTS (a file
#   to which "passed failed skipped" is appended), FS9_TEST_FILTER (a
#   regular expression: run only the tests whose name matches),
#   FS9_TEST_VERBOSE=1 (print the whole log of failed tests).
#
# A suite is a shell file defining functions named test_*; suites that
# want a mount per provider set PER_PROVIDER=1 and get $MNT mounted with
# $PROVIDER before each test (fresh for every test) and unmounted after.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export FS9=${FS9:?FS9 must name the fs9 binary}
export FS9_TMP=${FS9_TMP:-/tmp}
timeout_s=${FS9_TEST_TIMEOUT:-300}
providers=${PROVIDERS:-memfs localfs}
passed=0 failed=0 skipped=0

run_one() { # suite test provider
  local suite=$1 t=$2 prov=$3 label=$2 rc out
  [ -n "$prov" ] && label="$t[$prov]"
  out=$(mktemp "$FS9_TMP/fs9-test.XXXXXX")
  local start=$SECONDS
  timeout --kill-after=10 "$timeout_s" bash -c '
    set -eo pipefail
    export FS9_MOUNTS_FILE=$(mktemp "$FS9_TMP/fs9-mounts.XXXXXX")
    source "$1/lib.sh"
    source "$2"
    prov=$4
    cleanup() {
      local rc=$?
      set +e
      cd /
      [ "$(type -t suite_teardown)" = function ] && suite_teardown || true
      if ! fs9_stop; then rc=1; fi
      [ -n "${BACKING:-}" ] && rm -rf "$BACKING"
      [ -n "${MNT:-}" ] && rmdir "$MNT" 2>/dev/null
      rm -f "$FS9_MOUNTS_FILE"
      exit $rc
    }
    trap cleanup EXIT
    if [ -n "$prov" ]; then
      export PROVIDER=$prov
      MNT=$(mktemp -d "$FS9_TMP/fs9-mnt.XXXXXX")
      case $prov in
        memfs) fs9_start memfs "$MNT" ;;
        localfs) BACKING=$(mktemp -d "$FS9_TMP/fs9-backing.XXXXXX")
                 fs9_start "localfs:$BACKING" "$MNT" ;;
        *) echo "unknown provider $prov" >&2; exit 1 ;;
      esac
      cd "$MNT"
    fi
    [ "$(type -t suite_setup)" = function ] && suite_setup
    "$3"
  ' _ "$here" "$suite" "$t" "$prov" >"$out" 2>&1
  rc=$?
  local secs=$((SECONDS - start))
  case $rc in
    0) passed=$((passed + 1)); printf 'PASS %s (%ss)\n' "$label" "$secs" ;;
    77) skipped=$((skipped + 1)); printf 'SKIP %s: %s\n' "$label" "$(grep -m1 '^SKIP:' "$out" | cut -c7-)" ;;
    124|137) failed=$((failed + 1)); printf 'FAIL %s: timed out after %ss\n' "$label" "$timeout_s"; tail -20 "$out" | sed 's/^/    /' ;;
    *) failed=$((failed + 1)); printf 'FAIL %s (status %s)\n' "$label" "$rc"
       if [ "${FS9_TEST_VERBOSE:-0}" = 1 ]; then sed 's/^/    /' "$out"; else tail -30 "$out" | sed 's/^/    /'; fi ;;
  esac
  rm -f "$out"
}

for suite in "$@"; do
  suite=$(cd "$(dirname "$suite")" && pwd)/$(basename "$suite")
  tests=$(bash -c 'source "$1"; declare -F | awk "{print \$3}" | grep "^test_"' _ "$suite")
  per=$(bash -c 'source "$1"; echo "${PER_PROVIDER:-0}"' _ "$suite")
  for t in $tests; do
    if [ -n "${FS9_TEST_FILTER:-}" ] && ! [[ $t =~ $FS9_TEST_FILTER ]]; then
      continue
    fi
    if [ "$per" = 1 ]; then
      for p in $providers; do run_one "$suite" "$t" "$p"; done
    else
      run_one "$suite" "$t" ""
    fi
  done
done

echo "integration: $passed passed, $failed failed, $skipped skipped"
[ -n "${FS9_COUNTS:-}" ] && echo "$passed $failed $skipped" >>"$FS9_COUNTS"
[ "$failed" -eq 0 ]
