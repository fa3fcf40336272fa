#!/usr/bin/env bash
# Build the workspace base image offline: debootstrap a Debian rootfs from Debian's own
# package mirror and `docker import` it. No container registry is contacted.
#
# Usage: build-base.sh [IMAGE_TAG]            (default: ise-base:local)
# Env:   DEBIAN_MIRROR (default http://deb.debian.org/debian), DEBIAN_SUITE (default bookworm)
# Needs: root (or passwordless sudo), debootstrap, docker CLI.
set -euo pipefail

TAG="${1:-ise-base:local}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE="${DEBIAN_SUITE:-bookworm}"

# Keep this list in sync with docs/sandbox.md. It is part of the image hash (this file is hashed).
PACKAGES=(
  bash coreutils findutils grep sed gawk tar gzip bzip2 xz-utils zip unzip
  python3 git curl ca-certificates jq sqlite3 procps file less diffutils patch make
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "build-base.sh: debootstrap needs root; run as root or install sudo" >&2; exit 1
  fi
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  echo "build-base.sh: debootstrap is missing; install it: apt-get install -y debootstrap" >&2
  exit 1
fi

WORK="$(mktemp -d /tmp/ise-base.XXXXXX)"
cleanup() { $SUDO rm -rf --one-file-system "$WORK"; }
trap cleanup EXIT

echo "[ise-base] debootstrap $SUITE from $MIRROR into $WORK/rootfs (takes ~1 min)"
INCLUDE="$(IFS=,; echo "${PACKAGES[*]}")"
$SUDO debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$WORK/rootfs" "$MIRROR" \
  > "$WORK/debootstrap.log" 2>&1 || { tail -n 30 "$WORK/debootstrap.log" >&2; exit 1; }

echo "[ise-base] trimming apt caches and docs"
$SUDO rm -rf "$WORK/rootfs/var/cache/apt/archives/"*.deb "$WORK/rootfs/var/lib/apt/lists/"* \
  "$WORK/rootfs/usr/share/doc/"* "$WORK/rootfs/usr/share/man/"* "$WORK/rootfs/usr/share/locale/"*

echo "[ise-base] docker import -> $TAG"
$SUDO tar -C "$WORK/rootfs" --numeric-owner -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  - "$TAG" >/dev/null
echo "[ise-base] done: $TAG"
