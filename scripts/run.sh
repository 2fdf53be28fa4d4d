#!/usr/bin/env bash
# Set up, build, and mount FS9's default namespace (memfs) at a directory.
#   scripts/run.sh [MOUNTPOINT] [fs9 options...]
# MOUNTPOINT defaults to ./mnt.  The daemon goes to the background once
# the mount is up; unmount with: fusermount3 -u MOUNTPOINT
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh"
"$top/scripts/build.sh" build
mnt=${1:-$top/mnt}
shift || true
mkdir -p "$mnt"
"$top/build/src/fuse/fs9" "$@" memfs "$mnt"
echo "FS9 (memfs) is mounted at $mnt"
echo "Try: ls -la $mnt; cat $mnt/.fs9/version 2>/dev/null"
echo "Unmount with: fusermount3 -u $mnt"
