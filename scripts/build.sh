#!/usr/bin/env bash
# Configure (once) and build one build directory.
#   scripts/build.sh [BUILDDIR] [meson setup options...]
# BUILDDIR defaults to build/.  Warnings are errors.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
if [ ! -f "$dir/build.ninja" ]; then
  meson setup "$dir" --werror "$@" >/dev/null
fi
ninja -C "$dir" >/dev/null
