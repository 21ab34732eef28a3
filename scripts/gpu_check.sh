#!/usr/bin/env bash
# The GPU checks in one go, from the repository root, with the project's .venv:
#   TensorRT fp16 and int8 engines against torch, FlashAttention against SDPA, a one-GPU NCCL DDP step, and a Serve
#   app on the TensorRT engine answering one request. Prints one table (check, result, figure, seconds); exits
#   non-zero when any check failed or could not run here (each such row says in one line what is missing).
# Usage: bash scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=.venv/bin/python
if [[ ! -x "$PYTHON" ]]; then
  echo "no .venv here: create it first (python3.11 -m venv .venv && .venv/bin/pip install -e '.[gpu,serve,openvino]')" >&2
  exit 2
fi
exec "$PYTHON" -m scripts.gpu_check "$@"
