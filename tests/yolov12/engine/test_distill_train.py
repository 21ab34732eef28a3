"""A short distillation run through the YOLO facade, with a teacher checkpoint saved from a tiny model."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from yolov12 import YOLO
from yolov12.data.sample_dataset import NAMES
from yolov12.models import build_model, load_architecture

TINY = dict(data="sample", imgsz=64, batch=8, fraction=0.25, workers=0, val=False, verbose=False, seed=3,
            warmup_epochs=0, close_mosaic=1, optimizer="SGD", lr0=0.01, amp=False, plots=False)


@pytest.mark.slow
def test_training_with_a_teacher_logs_the_distillation_metrics(tmp_path: Path) -> None:
    torch.manual_seed(1)
    config = load_architecture("yolov12n-dyhead").with_overrides(num_classes=len(NAMES))
    teacher = YOLO(build_model(config, names=dict(enumerate(NAMES))))
    with torch.no_grad():  # an opinionated teacher (an untrained head predicts only the class prior)
        for param in teacher.model.head.parameters():
            param.add_(torch.randn_like(param) * 0.3)
    teacher_path = teacher.save(tmp_path / "teacher.safetensors")
    torch.manual_seed(0)
    student = YOLO("yolov12n.yaml")
    metrics = student.train(epochs=2, project=str(tmp_path), name="gkd", **TINY,
                            distill={"teachers": [str(teacher_path)], "terms": ["cls", "box", "feat"],
                                     "fade_epochs": 1, "ratio": 0.5})
    for key in ("train/distill_cls_loss", "train/distill_box_loss", "train/distill_feat_loss", "distill/weight",
                "distill/grad_norm_det", "distill/grad_norm_kd", "distill/grad_ratio"):
        assert key in metrics and metrics[key] == metrics[key], key  # present and not NaN
    assert metrics["distill/weight"] > 0 and metrics["distill/grad_norm_kd"] > 0
    assert 0.1 < metrics["distill/grad_ratio"] < 2.5  # EMA-tracked ratio 0.5 (3 steps an epoch: loose bounds)
    rows = list(csv.DictReader((student.trainer_result.run_dir / "results.csv").open()))
    assert [float(r["distill/fade"]) for r in rows] == [1.0, 0.5]  # fade-out over the last epoch
    assert student.trainer_result.run_dir.joinpath("weights/last.safetensors").is_file()
    assert student.model.names == dict(enumerate(NAMES))
