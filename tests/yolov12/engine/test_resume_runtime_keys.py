"""A resumed run keeps the caller's runtime settings (device, workers, paths, output switches).

Rank 0 writes the resume state with its own config: on a GPU cluster that says ``device=cuda:0``. Every rank resumes
from a copy of that file, so whatever is machine- or rank-specific has to come from the caller's config, while the
hyper-parameters follow the resume mode. One run of YOLOv12-N on the sample dataset (64 px) stops after the checkpoint
of epoch 1 of 2; each test edits the saved config of a copy the way another machine would have written it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from yolov12 import YOLO
from yolov12.config.train import TrainConfig
from yolov12.engine.callbacks import Callback
from yolov12.engine.checkpoint import RUNTIME_KEYS, STATE_NAME, WEIGHTS_NAME, write_manifest
from yolov12.engine.trainer import fit

TINY = dict(data="sample", imgsz=64, batch=8, nbs=16, fraction=0.25, workers=0, val=False, verbose=False, plots=False,
            seed=3, warmup_epochs=0, close_mosaic=0, amp=False, epochs=2, optimizer="AdamW", lr0=0.004,
            device="cpu")
# What rank 0 of a GPU job on another machine would have saved (none of it exists here).
WRITTEN_ELSEWHERE = dict(device="cuda:0", workers=8, cache="ram", project="/mnt/node0/runs", name="rank0-run",
                         verbose=True, plots=True, distill_teacher_half=True)


class Stop(Exception):
    """Raised by the probes once they have looked."""


class CrashAfterFirstCheckpoint(Callback):
    def on_checkpoint(self, state: Any, paths: dict[str, Path]) -> None:
        raise Stop


class ConfigProbe(Callback):
    """Keeps the config the resumed state was built with, then stops the run before any step."""

    def __init__(self) -> None:
        self.config: TrainConfig | None = None

    def on_fit_start(self, state: Any) -> None:
        self.config = state.config
        raise Stop


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("runtime") / "run"
    folder.mkdir()
    torch.manual_seed(0)
    with pytest.raises(Stop):
        fit(YOLO("yolov12n.yaml").model, TrainConfig.from_overrides(TINY), [CrashAfterFirstCheckpoint()],
            run_dir=folder)
    return folder


def _as_written_elsewhere(stopped_run: Path, tmp_path: Path) -> Path:
    """A copy of the run whose resume state (and manifest) says what a GPU node's rank 0 would have written."""
    run_dir = tmp_path / "run"
    shutil.copytree(stopped_run, run_dir)
    weights = run_dir / "weights"
    saved = torch.load(weights / STATE_NAME, map_location="cpu", weights_only=True)
    saved["config"].update(WRITTEN_ELSEWHERE)
    torch.save(saved, weights / STATE_NAME)
    write_manifest(weights, saved["epoch"], [weights / WEIGHTS_NAME, weights / STATE_NAME])
    return run_dir


def _resume(run_dir: Path, mode: str, **changes: Any) -> TrainConfig:
    probe = ConfigProbe()
    config = TrainConfig.from_overrides({**TINY, **changes, "resume": True})
    with pytest.raises(Stop):
        fit(YOLO("yolov12n.yaml").model, config, [probe], run_dir=run_dir, resume_hyperparameters=mode)
    assert probe.config is not None
    return probe.config


def test_runtime_keys_come_from_the_caller_and_hyperparameters_from_the_run(stopped_run, tmp_path) -> None:
    run_dir = _as_written_elsewhere(stopped_run, tmp_path)
    config = _resume(run_dir, "saved", lr0=0.02, mosaic=0.3, project=str(tmp_path / "here"), name="rank1",
                     cache=False, distill_teacher_half=False)
    flat = config.to_flat()
    assert config.run.device == "cpu" and config.data.workers == 0 and config.data.cache is False
    assert (flat["project"], flat["name"]) == (str(tmp_path / "here"), "rank1")
    assert not config.run.verbose and not config.run.plots and not config.distill.teacher_half
    assert config.run.resume is True
    assert config.optim.lr0 == TINY["lr0"] and config.augment.mosaic == 1.0  # the run's own hyper-parameters


def test_runtime_keys_the_caller_leaves_unset_keep_the_runs_values(stopped_run, tmp_path) -> None:
    """A bare resume goes on as the run was started (its teachers, output switches...), as Ultralytics resumes."""
    run_dir = _as_written_elsewhere(stopped_run, tmp_path)
    config = _resume(run_dir, "saved")  # TINY sets device, workers, verbose and plots, not cache or teacher_half
    assert (config.run.device, config.data.workers, config.run.verbose) == ("cpu", 0, False)  # the caller's
    assert config.data.cache == "ram" and config.distill.teacher_half  # the run's, not the defaults


def test_own_hyperparameters_take_the_callers_values_and_runtime_keys(stopped_run, tmp_path) -> None:
    run_dir = _as_written_elsewhere(stopped_run, tmp_path)
    config = _resume(run_dir, "own", lr0=0.02, mosaic=0.3)
    assert config.run.device == "cpu" and config.data.workers == 0
    assert config.optim.lr0 == 0.02 and config.augment.mosaic == 0.3


def test_every_runtime_key_is_a_training_key() -> None:
    assert RUNTIME_KEYS <= set(TrainConfig().to_flat())
    assert {"device", "workers", "verbose", "distill_teachers", "project", "name", "plots", "cache"} <= RUNTIME_KEYS
    assert not RUNTIME_KEYS & {"lr0", "epochs", "batch", "imgsz", "seed", "mosaic"}  # hyper-parameters stay the run's
