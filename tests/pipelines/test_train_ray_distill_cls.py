"""Ray Train on a real 2-node cluster: a classifier distils from a classifier teacher (GKD), DDP over gloo."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from pipelines.config import load_pipeline_config
from pipelines.train import run_pipeline
from yolov12 import YOLO
from yolov12.data.sample_dataset import NAMES
from yolov12.models import build_model, load_architecture

pytestmark = [pytest.mark.slow, pytest.mark.integration]

TINY_CLS = {"data": "sample-cls", "imgsz": 32, "batch": 16, "workers": 0, "fraction": 0.1, "optimizer": "AdamW",
            "lr0": 0.002, "warmup_epochs": 0, "amp": False, "seed": 0, "plots": False, "val": False}


def classifier_teacher(path: Path) -> Path:
    """A yolov12s-cls with the sample's classes and confident, input-dependent opinions (a perturbed head)."""
    torch.manual_seed(1)
    teacher = YOLO(build_model(load_architecture("yolov12s-cls").with_overrides(num_classes=len(NAMES)),
                               names=dict(enumerate(NAMES))))
    with torch.no_grad():
        for param in teacher.model.head.parameters():
            param.add_(torch.randn_like(param) * 0.3)
    return teacher.save(path)


def test_two_workers_distil_a_classifier(two_node_cluster, tmp_path: Path) -> None:
    teacher = classifier_teacher(tmp_path / "teacher.safetensors")
    config = load_pipeline_config(None, {
        **TINY_CLS, "model": "yolov12n-cls.yaml", "epochs": 2, "distill.teachers": [str(teacher)],
        "distill.fade_epochs": 0, "scaling.num_workers": 2, "scaling.resources_per_worker": {"CPU": 1},
        "scaling.placement_strategy": "SPREAD", "storage.storage_path": str(tmp_path / "ray"),
        "storage.output": str(tmp_path / "out"), "storage.name": "gkd-cls", "tracking.enabled": False})
    result = run_pipeline(config)

    rows = list(csv.DictReader((result.run_dir / "results.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    distill = [float(r["train/distill_cls_loss"]) for r in rows]
    raw = [float(r["distill/raw_cls"]) for r in rows]
    assert distill[0] > distill[-1] and raw[0] > raw[-1], (distill, raw)
    assert all(float(r["distill/weight"]) > 0 and float(r["distill/grad_norm_kd"]) > 0 for r in rows)
    assert "train/distill_box_loss" not in rows[0]
    assert result.last is not None and result.last.is_file()
