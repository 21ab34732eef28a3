"""``ray job submit --working-dir . -- python -m pipelines.train ...`` against a ``ray start --head`` on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
RAY_CLI = str(Path(sys.executable).with_name("ray"))
TERMINAL = ("succeeded", "failed", "stopped")  # `ray job status` prints "Job 'ID' succeeded"


def ray_job(head, command: str, *arguments: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``ray job COMMAND --address HEAD ARGUMENTS`` (every option before the entrypoint's ``--``)."""
    return subprocess.run([RAY_CLI, "job", command, "--address", head.dashboard, *arguments], cwd=REPO,
                          env=head.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)


AGENT_NOT_READY = "No available agent to submit job"  # the head's job agent starts after its job API answers
AGENT_WAIT_S = 60


def submit_when_the_agent_is_up(head, *arguments: str, timeout: float) -> subprocess.CompletedProcess:
    """``ray job submit``, repeated while the head answers that its job agent is not up yet (Ray's own advice:
    "please try again later"; on a loaded machine the agent registers tens of seconds after the head's job API)."""
    deadline = time.monotonic() + AGENT_WAIT_S
    while True:
        submitted = ray_job(head, "submit", *arguments, timeout=timeout)
        if submitted.returncode == 0 or AGENT_NOT_READY not in submitted.stdout or time.monotonic() > deadline:
            return submitted
        time.sleep(3)


def test_ray_job_submit_trains_to_success(ray_head, tmp_path: Path, tiny_train: dict) -> None:
    overrides = [f"{key}={value}" for key, value in tiny_train.items()]
    submitted = submit_when_the_agent_is_up(
        ray_head, "--no-wait", "--submission-id", f"yolov12-job-{tmp_path.name}", "--working-dir", ".",
        "--runtime-env", "configs/runtime-env.yaml", "--", "python", "-m", "pipelines.train",
        "--config", "configs/sample.yaml", *overrides, "epochs=1", "scaling.num_workers=1", "tracking.enabled=false",
        f"storage.storage_path={tmp_path / 'ray'}", f"storage.output={tmp_path / 'out'}", "storage.name=job-run",
        timeout=300)
    assert submitted.returncode == 0, submitted.stdout[-3000:]
    job_id = f"yolov12-job-{tmp_path.name}"
    deadline, status = time.monotonic() + 600, ""
    while time.monotonic() < deadline and not any(state in status.lower() for state in TERMINAL):
        time.sleep(3)
        try:
            status = ray_job(ray_head, "status", job_id, timeout=60).stdout
        except subprocess.TimeoutExpired:
            status = ""  # a busy head: ask again
    logs = ray_job(ray_head, "logs", job_id).stdout
    assert f"job '{job_id}' succeeded" in status.lower(), f"{status}\n{logs[-4000:]}"
    assert "epoch 1/1 |" in logs and "ETA" in logs  # the per-epoch progress line reaches the job logs
    assert "Reporting training result" not in logs  # not buried under Ray Train's per-report metric dumps
    assert "run job-run: 1 epochs" in logs
    assert (tmp_path / "out/job-run/weights/best.safetensors").is_file()
    assert (tmp_path / "out/job-run/results.csv").read_text().count("\n") == 2  # header + one epoch
