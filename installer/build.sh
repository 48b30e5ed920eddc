#!/usr/bin/env bash
# Build the one-folder application into dist/StudioCatalog and check it: it must start in a
# real window (under Xvfb when there is no display), process the sample photo and export it.
#   bash installer/build.sh            # needs: bash installer/setup.sh done (venv + models)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
$PY -m pip install -q "pyinstaller>=6.5"
t0=$(date +%s)
$PY -m PyInstaller --noconfirm --clean --distpath dist --workpath build/pyinstaller installer/studio_catalog.spec
t1=$(date +%s)
echo "build took $((t1 - t0)) s; bundle size: $(du -sh dist/StudioCatalog | cut -f1)"

# Linux: the per-user installer (menu entry + icon) travels in the bundle folder; it takes the
# desktop entry and icons from _internal/resources.
if [ "$(uname -s)" = Linux ]; then
  install -m 755 installer/install-linux.sh dist/StudioCatalog/install-linux.sh
fi

echo "==> self-test of the bundle"
out=$(mktemp -d)
if [ -z "${DISPLAY:-}" ] && command -v Xvfb >/dev/null 2>&1; then
  Xvfb :97 -screen 0 1600x1000x24 >/dev/null 2>&1 & xpid=$!
  trap 'kill $xpid 2>/dev/null || true' EXIT
  export DISPLAY=:97
  sleep 1
fi
# An empty environment: no venv on PATH/PYTHONPATH, no user settings (HOME is an empty folder).
mkdir -p "$out/home"
env -i HOME="$out/home" DISPLAY="${DISPLAY:-}" QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-}" PATH=/usr/bin:/bin \
  dist/StudioCatalog/StudioCatalog --self-test "$out"
echo "self-test passed: $(cat "$out/selftest.txt")"
if [ -n "${DISPLAY:-}" ] && ! grep -q "^platform: xcb" "$out/selftest.txt"; then
  echo "the self-test did not run in a real X window" >&2
  exit 1
fi
cp "$out/selftest.png" "$out/selftest.txt" build/ 2>/dev/null || true
get() { sed -n "s/^$1: //p" "$out/selftest.txt"; }
echo "bench: bundle $(du -sh dist/StudioCatalog | cut -f1), start-up to a usable window $(get startup_to_window_s) s," \
     "first processed photo $(get first_photo_processed_s) s after start (models loaded at $(get models_loaded_s) s)"
