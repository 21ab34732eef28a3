"""A classifier trained with GKD through the YOLO facade: a classifier teacher saved in the test, the sample digits."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from yolov12 import YOLO
from yolov12.config.train import TrainConfig
from yolov12.data.sample_dataset import NAMES
from yolov12.engine.callbacks import Callback
from yolov12.engine.trainer import fit
from yolov12.models import build_model, load_architecture

TINY = dict(data="sample-cls", imgsz=32, batch=16, fraction=0.15, workers=0, val=False, plots=False, verbose=False,
            optimizer="AdamW", lr0=0.002, warmup_epochs=0, amp=False, seed=0)


def classifier_teacher(path: Path, name: str = "yolov12s-cls") -> Path:
    """A larger classifier with the sample's classes and confident, input-dependent opinions (a perturbed head)."""
    torch.manual_seed(1)
    teacher = YOLO(build_model(load_architecture(name).with_overrides(num_classes=len(NAMES)),
                               names=dict(enumerate(NAMES))))
    with torch.no_grad():
        for param in teacher.model.head.parameters():
            param.add_(torch.randn_like(param) * 0.3)
    return teacher.save(path)


@pytest.mark.slow
def test_a_classifier_distils_from_a_classifier_teacher(tmp_path: Path) -> None:
    teacher = classifier_teacher(tmp_path / "teacher.safetensors")
    torch.manual_seed(0)
    student = YOLO("yolov12n-cls.yaml")
    metrics = student.train(epochs=2, project=str(tmp_path), name="gkd", distill_teachers=[str(teacher)],
                            distill_fade_epochs=0, **TINY)  # no fade: a falling loss is the student's learning
    for key in ("train/cls_loss", "train/distill_cls_loss", "distill/weight", "distill/grad_norm_det",
                "distill/grad_norm_kd", "distill/grad_ratio", "distill/raw_cls"):
        assert key in metrics and metrics[key] == metrics[key], key  # present and not NaN
    assert "train/distill_box_loss" not in metrics and metrics["distill/weight"] > 0
    rows = list(csv.DictReader((student.trainer_result.run_dir / "results.csv").open()))
    weighted = [float(r["train/distill_cls_loss"]) for r in rows]
    raw = [float(r["distill/raw_cls"]) for r in rows]
    assert weighted[0] > weighted[-1] and raw[0] > raw[-1], (weighted, raw)
    assert student.model.names == dict(enumerate(NAMES)) and student.model.task == "classify"


class Stop(Exception):
    """Raised by :class:`Snapshot` once it has looked."""


class Snapshot(Callback):
    """The GKD state at the first checkpoint (``at="checkpoint"``), or when a resumed run starts (``at="start"``:
    the restored balancer norms, and the fade factor its first batch trains with)."""

    def __init__(self, at: str) -> None:
        self.at = at
        self.norms: tuple[float, float] | None = None
        self.fade: float | None = None
        self.state: dict[str, Any] | None = None

    def on_checkpoint(self, state: Any, paths: dict[str, Path]) -> None:
        if self.at == "checkpoint":
            loss_fn = state.loss_fn
            self.norms, self.fade, self.state = loss_fn.balancer.norms, loss_fn.fade, loss_fn.state_dict()
            raise Stop

    def on_fit_start(self, state: Any) -> None:
        if self.at == "start":
            self.norms, self.state = state.loss_fn.balancer.norms, state.loss_fn.state_dict()

    def on_batch_end(self, state: Any, metrics: dict[str, float]) -> None:
        if self.at == "start":
            self.fade = state.loss_fn.fade
            raise Stop


@pytest.mark.slow
def test_a_classifier_runs_gkd_state_survives_a_resume(tmp_path: Path) -> None:
    teacher = classifier_teacher(tmp_path / "teacher.safetensors", name="yolov12n-cls")
    config = TrainConfig.from_overrides({**TINY, "fraction": 0.05, "epochs": 3, "distill_teachers": [str(teacher)],
                                         "distill_fade_epochs": 2})
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    at_checkpoint = Snapshot("checkpoint")
    torch.manual_seed(0)
    with pytest.raises(Stop):
        fit(YOLO("yolov12n-cls.yaml").model, config, [at_checkpoint], run_dir=run_dir)
    assert at_checkpoint.norms is not None and at_checkpoint.state["adapters"] is None
    assert at_checkpoint.fade == 1.0  # epoch 1 of 3, fading over the last 2 epochs
    resumed_dir = tmp_path / "resumed"
    shutil.copytree(run_dir, resumed_dir)
    at_start = Snapshot("start")
    with pytest.raises(Stop):
        fit(YOLO("yolov12n-cls.yaml").model, config.updated(resume=True), [at_start], run_dir=resumed_dir)
    assert at_start.norms == pytest.approx(at_checkpoint.norms)
    assert at_start.fade == pytest.approx(2 / 3)  # the resumed run trains epoch 2 of 3: (3 - 1) / (2 + 1)
