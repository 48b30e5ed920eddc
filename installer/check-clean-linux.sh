#!/usr/bin/env bash
# Run the built bundle's self-test on a clean Debian system: a debootstrap chroot that has no
# Python, no venv, no Qt, no X libraries of this machine — only the base system plus the few
# packages every desktop session has (OpenGL, fontconfig, a font). Needs root and debootstrap.
#
#   sudo bash installer/check-clean-linux.sh [ROOTFS]     # default: build/clean-rootfs
#
# SUITE=bookworm (Debian release), DESKTOP_PKGS="..." (what to add to the bare system; set it
# empty to see what a bare system lacks). The screenshot and timings are copied to
# build/clean-selftest/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOTFS=$(realpath -m "${1:-build/clean-rootfs}")
SUITE=${SUITE:-bookworm}
DESKTOP_PKGS=${DESKTOP_PKGS-"libgl1 libegl1 libfontconfig1 fonts-dejavu-core"}
[ -x dist/StudioCatalog/StudioCatalog ] || { echo "build first: bash installer/build.sh" >&2; exit 1; }

if [ ! -x "$ROOTFS/bin/sh" ]; then
  debootstrap --variant=minbase "$SUITE" "$ROOTFS" http://deb.debian.org/debian
fi
mountpoint -q "$ROOTFS/proc" || mount -t proc proc "$ROOTFS/proc"
xpid=
cleanup() { [ -n "$xpid" ] && kill "$xpid" 2>/dev/null; umount "$ROOTFS/proc" 2>/dev/null || true; }
trap cleanup EXIT
if [ -n "$DESKTOP_PKGS" ]; then
  cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
  chroot "$ROOTFS" apt-get update -q
  chroot "$ROOTFS" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $DESKTOP_PKGS
fi
rm -rf "$ROOTFS/opt/StudioCatalog" "$ROOTFS/tmp/selftest" "$ROOTFS/tmp/home"
cp -a dist/StudioCatalog "$ROOTFS/opt/StudioCatalog"

# The X server runs outside; the chroot reaches it through its abstract socket (same network
# namespace), so nothing of this machine's file system is shared with the chroot.
Xvfb :95 -screen 0 1600x1000x24 >/dev/null 2>&1 & xpid=$!
sleep 1
t0=$(date +%s.%N)
chroot "$ROOTFS" /usr/bin/env -i HOME=/tmp/home DISPLAY=:95 PATH=/usr/bin:/bin \
  /opt/StudioCatalog/StudioCatalog --self-test /tmp/selftest
t1=$(date +%s.%N)
rm -rf build/clean-selftest && mkdir -p build/clean-selftest
cp "$ROOTFS/tmp/selftest/selftest.txt" "$ROOTFS/tmp/selftest/selftest.png" build/clean-selftest/
cat build/clean-selftest/selftest.txt
echo "clean-system self-test passed ($SUITE minbase + ${DESKTOP_PKGS:-nothing}); whole run $(echo "$t1 - $t0" | bc 2>/dev/null || echo '?') s"
