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

echo "==> installing studio-catalog and its test tools"
$PIP install -q -e ".[test]"

echo "==> fetching and verifying the models"
"$VENV/bin/studio-catalog" models fetch

if [ "${SKIP_SAMPLE:-0}" != "1" ]; then
  echo "==> processing the sample photos into out/sample"
  "$VENV/bin/studio-catalog" process resources/samples --out out/sample
fi
echo "==> ready: $VENV/bin/studio-catalog --help   |   $VENV/bin/studio-catalog gui"
