#!/usr/bin/env bash
# One-command set-up on a fresh machine: virtual environment, the package with its
# test extras, the model weights (fetched and SHA-256 verified), then the main job on
# the sample photos. Re-running is safe and quick.
#
#   bash installer/setup.sh            # then: .venv/bin/studio-catalog gui
#
# Environment knobs:
#   PYTHON=python3.11       interpreter to build the venv with
#   TORCH_VERSION=2.13.0    torch release to install first ("" = newest; on a CUDA
#                           workstation install the CUDA build of your choice instead)
#   SKIP_SAMPLE=1           do not run the sample job
set -euo pipefail
cd "$(dirname "$0")/.."

# Qt's system libraries (installer/qt-system-packages.txt, the one list): installed when this
# script may (root, or sudo without a password), else the exact apt-get line is printed.
QT_PKGS=$(sed -e 's/#.*//' installer/qt-system-packages.txt | awk 'NF {print $1}' | tr '\n' ' ' | sed 's/ $//')
if command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then
  MISSING=""
  for p in $QT_PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || MISSING="$MISSING $p"
  done
  if [ -n "$MISSING" ]; then
    if [ "$(id -u)" = "0" ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO="none"; fi
    if [ "$SUDO" != "none" ]; then
      echo "==> installing the Qt system libraries:${MISSING}"
      echo "    running: ${SUDO:+$SUDO }apt-get install -y --no-install-recommends $QT_PKGS"
      { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $QT_PKGS; } \
        || echo "warning: the Qt system libraries could not be installed; run: sudo apt-get install -y --no-install-recommends $QT_PKGS"
    else
      echo "==> the desktop app needs system libraries that are missing:${MISSING}"
      echo "    install them (as an administrator) with:"
      echo "    sudo apt-get install -y --no-install-recommends $QT_PKGS"
    fi
  fi
fi

PYTHON=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION-2.13.0}
VENV=.venv

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip

if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  echo "==> installing torch ${TORCH_VERSION:-(newest)}"
  $PIP install -q "torch${TORCH_VERSION:+==$TORCH_VERSION}"
fi

echo "==> installing studio-catalog and its test tools (with Ray: the test extra includes [cluster])"
$PIP install -q -e ".[test]"

echo "==> fetching and verifying the models"
"$VENV/bin/studio-catalog" models fetch

if [ "${SKIP_SAMPLE:-0}" != "1" ]; then
  echo "==> processing the sample photos into out/sample"
  "$VENV/bin/studio-catalog" process resources/samples --out out/sample
fi
echo "==> ready: $VENV/bin/studio-catalog --help   |   $VENV/bin/studio-catalog gui"
