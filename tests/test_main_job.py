"""The README's main job end to end at tiny settings: real local Ray, embedded MLflow, Ray Serve, HTTP requests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.local_stack import free_port

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def run_main_job(folder: Path, port: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "MLFLOW_TRACKING_URI": "", "RAY_ADDRESS": ""}
    command = [sys.executable, str(REPO / "main_job.py"), "--teacher-epochs", "1", "--epochs", "1", "--workers", "1",
               "--data", "sample", "--port", str(port)]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=1200)


def test_main_job_runs_end_to_end_and_reuses_its_steps(tmp_path: Path) -> None:
    first = run_main_job(tmp_path, free_port())
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    state = json.loads((tmp_path / "runs/main/state.json").read_text())
    assert set(state) == {"dataset", "teacher", "student", "champion", "exports", "scores"}
    assert set(state["scores"]) == {"onnx", "openvino"} and all(0 <= v <= 1 for v in state["scores"].values())
    assert Path(state["student"]["best"]).is_absolute() or (tmp_path / state["student"]["best"]).is_file()
    assert state["champion"] == "models:/yolov12n-sample@champion"
    assert (tmp_path / "mlruns/mlflow.db").is_file()  # the embedded MLflow store, in the working folder
    requests = [line for line in first.stdout.splitlines() if "/v1/detect" in line and "POST" in line]
    assert len(requests) == 4, first.stdout[-3000:]
    assert f"dataset    sample  digest={state['dataset']['digest']}" in first.stdout  # lineage leads to the data
    second = run_main_job(tmp_path, free_port())
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    for step in ("teacher", "GKD on Ray", "champion", "ONNX and OpenVINO"):
        assert any(step in line and "reusing" in line for line in second.stdout.splitlines()), step
