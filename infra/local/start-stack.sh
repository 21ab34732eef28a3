#!/usr/bin/env bash
# The local stack without Docker: moto S3 + `mlflow server` (sqlite backend, artifacts on s3://yolov12/mlflow) on
# 127.0.0.1, the same services as docker-compose.yml. Prints the variables to export; Ctrl+C stops it.
#   bash infra/local/start-stack.sh [--dir .stack] [--mlflow-port 5000] [--s3-port 9000] [--no-persist]
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-.venv/bin/python}"
if [ ! -x "$PYTHON" ]; then PYTHON=python3; fi
exec "$PYTHON" -m pipelines.local_stack "$@"
