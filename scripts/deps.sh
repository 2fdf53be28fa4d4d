#!/usr/bin/env bash
# Install the Debian packages FS9 needs to build, test and benchmark, when
# they are missing.  Safe to run again: it only calls apt-get when needed.
set -euo pipefail

packages=(
  # build
  gcc meson ninja-build pkg-config
  libfuse3-dev fuse3 libuv1-dev libsodium-dev liburcu-dev libinih-dev
  liblmdb-dev libhiredis-dev
  # tests
  libcriterion-dev git attr rsync tar coreutils findutils util-linux
  procps psmisc man-db groff-base python3
  # benchmarks
  fio hyperfine
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "fs9: installing ${missing[*]}" >&2
  SUDO=
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# FUSE needs its device; containers sometimes lack the node.
if [ ! -e /dev/fuse ]; then
  echo "fs9: /dev/fuse is missing: FUSE is not available on this machine" >&2
  exit 1
fi
