"""Resuming a run under the caller's hyper-parameters (``fit(..., resume_hyperparameters="own")``).

One run of YOLOv12-N on the sample dataset (64 px, fraction 0.25) stops after the checkpoint of epoch 1 of 2; each test
resumes a copy of it and inspects the training state when ``on_fit_start`` fires (after the restore, before any step).
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from yolov12 import YOLO
from yolov12.config.train import TrainConfig
from yolov12.engine.callbacks import Callback
from yolov12.engine.checkpoint import ResumeError
from yolov12.engine.ema import unwrap
from yolov12.engine.optim import plan_optimiser
from yolov12.engine.trainer import fit

TINY = dict(data="sample", imgsz=64, batch=8, nbs=16, fraction=0.25, workers=0, val=False, verbose=False, plots=False,
            seed=3, warmup_epochs=0, close_mosaic=0, amp=False, epochs=2, optimizer="AdamW", lr0=0.004,
            momentum=0.9, weight_decay=0.0005)
NEW = dict(lr0=0.02, momentum=0.8, weight_decay=0.002, mosaic=0.3)  # what the resuming caller trains with


class Stop(Exception):
    """Raised by the probes once they have looked: nothing trains, nothing is written."""


class CrashAfterFirstCheckpoint(Callback):
    def on_checkpoint(self, state: Any, paths: dict[str, Path]) -> None:
        raise Stop


@dataclass
class Seen:
    model: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor]
    optimiser: dict[str, Any]
    groups: list[dict[str, Any]]
    epoch: int
    global_step: int
    config: TrainConfig
    state_file_digest: str
    batches_per_epoch: int


class Probe(Callback):
    """Copies what the resumed state holds at ``on_fit_start``, then stops the run."""

    def __init__(self, state_file: Path) -> None:
        self.state_file = state_file
        self.seen: Seen | None = None

    def on_fit_start(self, state: Any) -> None:
        self.seen = Seen(
            model={k: v.detach().clone() for k, v in unwrap(state.model).state_dict().items()},
            ema={k: v.detach().clone() for k, v in state.ema.ema.state_dict().items()},
            optimiser=state.optimiser.state_dict()["state"],
            groups=[{k: v for k, v in group.items() if k != "params"} for group in state.optimiser.param_groups],
            epoch=state.epoch, global_step=state.global_step, config=state.config,
            state_file_digest=_digest(self.state_file), batches_per_epoch=state.batches_per_epoch)
        raise Stop


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory) -> Path:
    """A run folder whose ``weights/last.state.pt`` is the end of epoch 1 of 2."""
    folder = tmp_path_factory.mktemp("resume") / "run"
    folder.mkdir()  # a caller's run folder exists (fit makes only project/name folders itself)
    torch.manual_seed(0)
    config = TrainConfig.from_overrides(TINY)
    with pytest.raises(Stop):
        fit(YOLO("yolov12n.yaml").model, config, [CrashAfterFirstCheckpoint()], run_dir=folder)
    assert (folder / "weights" / "last.state.pt").is_file()
    return folder


def _resume(stopped_run: Path, tmp_path: Path, mode: str, **changes: Any) -> tuple[Seen, dict[str, Any], str]:
    run_dir = tmp_path / "run"
    shutil.copytree(stopped_run, run_dir)
    state_file = run_dir / "weights" / "last.state.pt"
    before = _digest(state_file)
    saved = torch.load(state_file, map_location="cpu", weights_only=True)
    probe = Probe(state_file)
    config = TrainConfig.from_overrides({**TINY, **changes, "resume": True})
    with pytest.raises(Stop):
        fit(YOLO("yolov12n.yaml").model, config, [probe], run_dir=run_dir, resume_hyperparameters=mode)
    assert probe.seen is not None
    assert _digest(state_file) == before, "the resume rewrote the checkpoint"
    return probe.seen, saved, before


def _assert_same_tensors(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, dict):
            _assert_same_tensors(actual[key], value)
        elif isinstance(value, torch.Tensor):
            assert torch.equal(actual[key].cpu(), value), key
        else:
            assert actual[key] == value, key


def test_own_hyperparameters_keep_the_run_but_rebuild_the_param_groups(stopped_run, tmp_path) -> None:
    seen, saved, before = _resume(stopped_run, tmp_path, "own", **NEW)
    # the run: weights, EMA, optimiser moments and counters are the saved ones
    _assert_same_tensors(seen.model, saved["model"])
    _assert_same_tensors(seen.ema, saved["ema"]["ema"])
    assert seen.optimiser and {"exp_avg", "exp_avg_sq", "step"} <= set(next(iter(seen.optimiser.values())))
    _assert_same_tensors(seen.optimiser, saved["optimiser"]["state"])
    assert (seen.epoch, seen.global_step) == (saved["epoch"], saved["global_step"]) == (1, seen.batches_per_epoch)
    # the hyper-parameters: the caller's config, and the optimiser groups as a fresh optimiser for it builds them
    assert [group["initial_lr"] for group in saved["optimiser"]["param_groups"]] == [TINY["lr0"]] * 3
    assert seen.config.optim.lr0 == NEW["lr0"] and seen.config.augment.mosaic == NEW["mosaic"]
    plan = plan_optimiser(seen.config.optim, TINY["batch"], seen.batches_per_epoch * TINY["epochs"], 1)
    assert [group["initial_lr"] for group in seen.groups] == [NEW["lr0"]] * 3
    assert [group["weight_decay"] for group in seen.groups] == [0.0, plan.weight_decay, 0.0]
    assert plan.weight_decay == pytest.approx(NEW["weight_decay"])  # batch 8 x accumulate 2 = nbs 16
    assert all(group["betas"][0] == NEW["momentum"] for group in seen.groups)


def test_saved_hyperparameters_are_the_default(stopped_run, tmp_path) -> None:
    seen, saved, _ = _resume(stopped_run, tmp_path, "saved", **NEW)
    assert seen.config.optim.lr0 == TINY["lr0"] and seen.config.augment.mosaic == saved["config"]["mosaic"]
    assert [group["initial_lr"] for group in seen.groups] == [TINY["lr0"]] * 3
    assert seen.groups[1]["weight_decay"] == pytest.approx(TINY["weight_decay"])
    _assert_same_tensors(seen.optimiser, saved["optimiser"]["state"])


def test_own_hyperparameters_need_the_saved_optimiser(stopped_run, tmp_path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(stopped_run, run_dir)
    config = TrainConfig.from_overrides({**TINY, "optimizer": "SGD", "resume": True})
    with pytest.raises(ResumeError, match="keep optimizer=AdamW"):
        fit(YOLO("yolov12n.yaml").model, config, run_dir=run_dir, resume_hyperparameters="own")


def test_an_unknown_mode_is_refused_before_anything_runs(tmp_path) -> None:
    from yolov12.config.base import ConfigError

    with pytest.raises(ConfigError, match="'saved'.*'own'"):
        fit(YOLO("yolov12n.yaml").model, TrainConfig.from_overrides(TINY), run_dir=tmp_path,
            resume_hyperparameters="mine")
    assert not any(tmp_path.iterdir())
