"""A real sweep (Ray Tune on a local 2-CPU Ray, real `mlflow server`), shared by every assertion of this module.

The driver runs as a subprocess (``python -m tune.sweep``) exactly as users start it: 6 trials of YOLOv12-N on the
sample dataset (64 px, fraction 0.25, at most 3 epochs) under ASHA. Once two trials have finished, the driver's
whole process group is SIGKILLed; the same command then restores the sweep by name and runs it to the end.

Objective: the summed training loss. An untrained nano model scores mAP50-95 = 0 for every trial within 3 epochs
at 64 px, and ASHA never stops tied trials; the loss differs between trials, so ASHA's decisions are real.

One early stop is certain, not luck: the space also searches the classification loss gain ``cls`` (the loss scales
with it), the first trial runs the base config's values (``cls`` at the bottom of its range, so its loss is the
lowest), and trials run one at a time. The second trial then reaches epoch 1 with a higher loss than the only other
result at that rung and ASHA (keep the top third) stops it; whatever else the later trials do is sampled.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from sweep_cli import sweep_environment

ROOT = Path(__file__).resolve().parents[2]
SWEEP_CONFIG = ROOT / "configs" / "sweeps" / "sample-asha.yaml"
NAME = "ci-asha"
TRIALS = 6
MAX_EPOCHS = 3

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@dataclass(frozen=True)
class InterruptedSweep:
    experiment: Path
    summary: Path
    finished_before_kill: dict[str, int]  # trial id -> result rows at the time of the kill
    first_output: str
    second_output: str
    tracking_uri: str
    experiment_name: str


def _command(storage: Path, tracking_uri: str, experiment: str, extra: tuple[str, ...] = ()) -> list[str]:
    return [sys.executable, "-m", "tune.sweep", "--config", str(SWEEP_CONFIG), "--ray-address", "local",
            "--num-cpus", "2", f"name={NAME}", f"storage_path={storage}", f"base={ROOT / 'configs' / 'sample.yaml'}",
            f"search.num_samples={TRIALS}", "search.max_concurrent=1", "search.evaluate_base=true",
            "space.cls={loguniform: [0.2, 3.0]}", "cls=0.2", f"epochs={MAX_EPOCHS}",
            "scheduler.grace_period=1", "scheduler.reduction_factor=3", "objective.metric=loss",
            f"tracking.tracking_uri={tracking_uri}", f"tracking.experiment={experiment}", *extra]


def trial_states(experiment: Path) -> dict[str, str]:
    """``{trial_id: status}`` from the newest experiment snapshot Tune wrote (empty before the first)."""
    snapshots = sorted(experiment.glob("experiment_state-*.json"))
    if not snapshots:
        return {}
    try:
        data = json.loads(snapshots[-1].read_text())
    except (OSError, json.JSONDecodeError):  # being rewritten right now
        return {}
    trials = (json.loads(item[0]) for item in data.get("trial_data", []))
    return {trial["trial_id"]: trial["status"] for trial in trials}


def result_rows(experiment: Path, trial_id: str) -> list[dict]:
    path = experiment / f"trial_{trial_id}" / "result.json"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _session_members(session: int) -> list[int]:
    """Processes of a session (Ray's workers get their own process group, not their own session)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session:  # after "pid (comm)": state, ppid, pgrp, session
            members.append(int(stat.parent.name))
    return members


def _kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the driver and everything it started (it was started as the leader of a new session)."""
    for pid in [process.pid, *_session_members(process.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(timeout=60)


@pytest.fixture(scope="module")
def interrupted_sweep(tmp_path_factory, mlflow_server) -> InterruptedSweep:
    workdir = tmp_path_factory.mktemp("sweep")
    storage = workdir / "runs"
    experiment = storage / NAME
    experiment_name = f"sweep-test-{uuid.uuid4().hex[:8]}"
    env = sweep_environment(mlflow_server.env)
    command = _command(storage, mlflow_server.url, experiment_name)
    first_log = workdir / "first.log"
    with first_log.open("w") as log:
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        deadline = time.monotonic() + 600
        try:
            while time.monotonic() < deadline and process.poll() is None:
                finished = [t for t, s in trial_states(experiment).items() if s == "TERMINATED"]
                if len(finished) >= 2:
                    break
                time.sleep(1.0)
        finally:
            rows_at_kill = {t: len(result_rows(experiment, t)) for t, s in trial_states(experiment).items()
                            if s == "TERMINATED"}
            _kill_group(process)
    first_output = first_log.read_text()
    assert len(rows_at_kill) >= 2, f"no two trials finished before the timeout:\n{first_output[-3000:]}"
    assert process.returncode != 0, "the driver ended by itself: it was not interrupted"
    second = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=900,
                            start_new_session=True)
    assert second.returncode == 0, f"restored sweep failed:\n{second.stdout[-3000:]}\n{second.stderr[-3000:]}"
    return InterruptedSweep(experiment, experiment / "summary", rows_at_kill, first_output,
                            second.stdout + second.stderr, mlflow_server.url, experiment_name)


def test_restore_continues_without_rerunning_finished_trials(interrupted_sweep):
    sweep = interrupted_sweep
    assert f"continuing sweep {NAME}" in sweep.second_output
    states = trial_states(sweep.experiment)
    assert len(states) == TRIALS and set(states.values()) == {"TERMINATED"}, states
    for trial_id, rows_before in sweep.finished_before_kill.items():
        rows = result_rows(sweep.experiment, trial_id)
        assert len(rows) == rows_before, f"finished trial {trial_id} was run again after the restore"
        epochs = [row["epoch"] for row in rows]
        assert epochs == sorted(set(epochs)), f"trial {trial_id} repeated epochs: {epochs}"
    summary = json.loads((sweep.summary / "summary.json").read_text())
    assert summary["restored"] is True and summary["trials"] == TRIALS and summary["errored"] == 0


def test_asha_stops_some_trials_early(interrupted_sweep):
    last_epochs = {t: max(r["epoch"] for r in result_rows(interrupted_sweep.experiment, t))
                   for t in trial_states(interrupted_sweep.experiment)}
    assert min(last_epochs.values()) < MAX_EPOCHS, f"ASHA stopped no trial early: {last_epochs}"
    first, second = sorted(last_epochs)[:2]  # the base config's trial, then the first sampled one
    assert (last_epochs[first], last_epochs[second]) == (MAX_EPOCHS, 1), last_epochs
    assert max(last_epochs.values()) == MAX_EPOCHS, f"no trial reached the last epoch: {last_epochs}"
    summary = json.loads((interrupted_sweep.summary / "summary.json").read_text())
    assert summary["stopped_early"] == sum(e < MAX_EPOCHS for e in last_epochs.values())


def test_table_of_trials_sorted_by_metric_on_stdout(interrupted_sweep):
    lines = interrupted_sweep.second_output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("trial ") and "loss (min)" in line)
    rows = [line.split() for line in lines[start + 2:start + 2 + TRIALS]]
    assert len({row[0] for row in rows}) == TRIALS
    values = [float(row[3]) for row in rows]
    assert values == sorted(values)  # loss: lower is better, best first
    assert {row[1] for row in rows} <= {"DONE", "STOPPED"}


def test_best_config_loads_and_trains(interrupted_sweep, tmp_path):
    from pipelines.config import load_pipeline_config
    from yolov12 import YOLO
    from yolov12.config.train import TrainConfig

    summary = json.loads((interrupted_sweep.summary / "summary.json").read_text())
    best_row = next(line for line in (interrupted_sweep.summary / "trials.csv").read_text().splitlines()[1:])
    assert best_row.startswith(summary["best_trial_id"])
    values = yaml.safe_load((interrupted_sweep.summary / "best_train.yaml").read_text())
    config = TrainConfig.from_overrides(values)
    params = json.loads((interrupted_sweep.experiment / f"trial_{summary['best_trial_id']}" / "params.json")
                        .read_text())
    assert config.optim.lr0 == pytest.approx(params["lr0"]) and config.optim.optimizer == params["optimizer"]
    policy = yaml.safe_load(Path(config.augment.augment_policy).read_text())
    assert {op["name"]: op["p"] for op in policy["ops"]}["Blur"] == pytest.approx(params["policy.Blur.p"])
    pipeline = load_pipeline_config(interrupted_sweep.summary / "best_pipeline.yaml")
    assert pipeline.train == config
    model = YOLO("yolov12n.yaml")
    model.train(cfg=str(interrupted_sweep.summary / "best_train.yaml"), epochs=1, project=str(tmp_path),
                name="best", plots=False, verbose=False)
    assert (tmp_path / "best" / "weights" / "last.safetensors").is_file()
    assert (interrupted_sweep.summary / "loss_vs_epoch.png").stat().st_size > 0
    assert (interrupted_sweep.summary / "parallel_coordinates.png").stat().st_size > 0


def test_mlflow_parent_run_with_one_child_per_trial(interrupted_sweep):
    from mlflow import MlflowClient

    client = MlflowClient(interrupted_sweep.tracking_uri)
    experiment = client.get_experiment_by_name(interrupted_sweep.experiment_name)
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1, "a restored sweep must keep logging into its first parent run"
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    trial_ids = set(trial_states(interrupted_sweep.experiment))
    assert {r.data.tags["yolov12.trial.id"] for r in children} == trial_ids and len(children) == TRIALS
    assert parent.info.status == "FINISHED" and all(r.info.status == "FINISHED" for r in children)
    best = [r for r in children if r.data.tags.get("yolov12.best_trial") == "true"]
    summary = json.loads((interrupted_sweep.summary / "summary.json").read_text())
    assert [r.data.tags["yolov12.trial.id"] for r in best] == [summary["best_trial_id"]]
    assert parent.data.tags["yolov12.best_run_id"] == best[0].info.run_id
    for child in children:  # per-epoch metrics, one point per epoch the trial trained
        history = client.get_metric_history(child.info.run_id, "loss")
        rows = result_rows(interrupted_sweep.experiment, child.data.tags["yolov12.trial.id"])
        assert sorted({m.step for m in history}) == sorted({r["epoch"] for r in rows})
        assert "lr0" in child.data.params and "policy.Blur.p" in child.data.params
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "sweep")}
    assert {"sweep/best_train.yaml", "sweep/trials.csv", "sweep/loss_vs_epoch.png"} <= artifacts


def test_bad_space_fails_before_any_trial(tmp_path):
    storage = tmp_path / "runs"
    command = _command(storage, "sqlite:///unused.db", "unused", extra=("space.mixup={uniform: [-0.1, 0.5]}",))
    result = subprocess.run(command, cwd=tmp_path, env=sweep_environment({}), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2
    assert "space key 'mixup': negative probability" in result.stderr
    assert not storage.exists() and not (tmp_path / "unused.db").exists()  # nothing started
