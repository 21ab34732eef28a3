#!/usr/bin/env bash
# Creates a SEPARATE virtual environment holding the real `ultralytics` package (AGPL-3.0).
# It is used only to generate reference fixtures and reference benchmarks; ultralytics is never a
# dependency of yolov12-platform and must never be installed into the project's own environment.
#
#   bash benchmarks/reference/setup_ultralytics_venv.sh
#   VENV_PY=$(bash benchmarks/reference/setup_ultralytics_venv.sh | tail -n1)
#
# Override the location with ULTRALYTICS_VENV=/some/path. Re-running is cheap: it only installs
# what is missing or at a different version.
set -euo pipefail

VENV="${ULTRALYTICS_VENV:-$HOME/.cache/yolov12-platform/ultralytics-venv}"
PYTHON_BIN="${PYTHON_BIN:-python3.11}"
command -v "$PYTHON_BIN" >/dev/null 2>&1 || PYTHON_BIN=python3

# Pinned versions. torch/torchvision lie on local disk on our machines (pip finds them).
PINS=(
  "torch==2.14.1"
  "torchvision==0.29.1"
  "ultralytics==8.4.190"
  "onnx==1.23.2"
  "onnxruntime==1.31.1"
  "onnxslim==0.1.98"
)

if [ ! -x "$VENV/bin/python" ]; then
  echo "creating venv at $VENV" >&2
  mkdir -p "$(dirname "$VENV")"
  "$PYTHON_BIN" -m venv "$VENV"
fi
PY="$VENV/bin/python"

# Idempotence: check every pin against what is installed; skip pip entirely when all match.
missing=$("$PY" - "${PINS[@]}" <<'PYEOF'
import sys
from importlib import metadata
out = []
for pin in sys.argv[1:]:
    name, ver = pin.split("==")
    try:
        have = metadata.version(name)
    except metadata.PackageNotFoundError:
        have = None
    if have is None or have.split("+")[0] != ver:
        out.append(pin)
print(" ".join(out))
PYEOF
)

if [ -n "$missing" ]; then
  echo "installing into $VENV: $missing" >&2
  # ultralytics pulls opencv-python, matplotlib, pandas, etc. from the registry as usual.
  "$PY" -m pip install "${PINS[@]}" >&2
else
  echo "ultralytics venv already complete at $VENV" >&2
fi

# Sanity check: importing must not download anything.
YOLO_OFFLINE=1 "$PY" -c "import torch, torchvision, ultralytics, onnx, onnxruntime; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'ultralytics', ultralytics.__version__, 'onnx', onnx.__version__, 'onnxruntime', onnxruntime.__version__)" >&2

echo "$PY"
