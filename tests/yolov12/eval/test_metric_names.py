"""The metric-name table: every spelling round-trips, and every column the engine writes to results.csv has a row."""

from __future__ import annotations

import copy
import csv
import re
from pathlib import Path

import pytest
import torch

from yolov12.config.train import DistillSection
from yolov12.engine.distill import DistillationLoss
from yolov12.engine.losses import build_loss
from yolov12.eval import ClassificationMetrics, DetectionMetrics
from yolov12.eval.metric_names import (
    MAP50_95,
    METRICS,
    UnknownMetricError,
    find_metric,
    loss_column,
    objectives,
    safe_name,
    short_aliases,
    total_training_loss,
)
from yolov12.models import build_model, load_architecture

MLFLOW_KEY = re.compile(r"^[\w\-. :/]+$")


@pytest.mark.parametrize("row", METRICS, ids=lambda row: row.safe)
def test_every_spelling_round_trips_to_its_row(row) -> None:
    for name in row.names:
        assert find_metric(name) is row
    if row.engine is not None:
        assert safe_name(row.engine) == row.safe
    if row.short is not None:  # a report carrying both spellings keeps both keys (Tune ranks by the short one)
        assert safe_name(row.short) == row.short
    assert MLFLOW_KEY.match(row.safe)
    if row.engine is not None:  # the explicit safe spelling is the character rule MLflow keys always followed
        assert row.safe == re.sub(r"[^\w\-. :/]+", "_", row.engine).strip("_")


def test_no_spelling_names_two_metrics() -> None:
    spellings = [name for row in METRICS for name in row.names]
    assert len(spellings) == len(set(spellings))


def test_the_three_spellings_of_map50_95() -> None:
    assert (MAP50_95.engine, MAP50_95.short, MAP50_95.safe) == ("metrics/mAP50-95(B)", "mAP50-95", "metrics/mAP50-95_B")
    reported = {"metrics/mAP50-95(B)": 0.4, "metrics/mAP50(B)": 0.6, "metrics/mAP75(B)": 0.5, "train/box_loss": 2.0}
    assert short_aliases(reported) == {"mAP50-95": 0.4, "mAP50": 0.6}
    assert short_aliases({"metrics/accuracy_top1": 0.9, "metrics/accuracy_top5": 1.0}) == {"accuracy_top1": 0.9}


def test_objectives_and_the_derived_total_loss() -> None:
    assert objectives() == {"mAP50-95": "max", "mAP50": "max", "accuracy_top1": "max", "fitness": "max", "loss": "min"}
    epoch = {"train/box_loss": 1.0, "train/cls_loss": 2.0, "train/images_per_s": 50.0, "metrics/mAP50(B)": 0.1}
    assert total_training_loss(epoch) == 3.0


def test_names_outside_the_table() -> None:
    assert safe_name("hparam/lr0") == "hparam/lr0"
    assert safe_name("train.distill.teachers[0]") == "train.distill.teachers_0"
    with pytest.raises(UnknownMetricError, match=r"did you mean 'mAP50-95'"):
        find_metric("mAP50_95")


def _distillation_columns() -> set[str]:
    """The loss parts and diagnostics of a real distillation step (yolov12n student, its copy as teacher)."""
    names = {0: "cat", 1: "dog"}
    torch.manual_seed(0)
    student = build_model(load_architecture("yolov12n").with_overrides(num_classes=2), names=names).train()
    section = DistillSection(teachers=["<in memory>"], terms=["cls", "box", "feat"])
    loss_fn = DistillationLoss.build(student, build_loss(student), section, teachers=[copy.deepcopy(student)])
    batch = {"images": torch.rand(1, 3, 64, 64), "batch_index": torch.tensor([0]), "classes": torch.tensor([1]),
             "boxes": torch.tensor([[0.5, 0.5, 0.4, 0.3]])}
    _, parts = loss_fn(student(batch["images"]), batch)
    return {loss_column(part) for part in parts} | set(loss_fn.epoch_metrics())


def test_every_metric_the_engine_writes_has_a_row() -> None:
    written = set(DetectionMetrics().results_dict()) | set(ClassificationMetrics().results_dict())
    written |= _distillation_columns()  # detection parts (box, cls, dfl) plus the distillation terms
    assert written - {row.engine for row in METRICS} == set()


@pytest.mark.slow
def test_every_results_csv_column_of_a_real_run_has_a_row(tmp_path: Path) -> None:
    from yolov12 import YOLO  # noqa: PLC0415 - only this slow test trains

    YOLO("yolov12n.yaml").train(data="sample", epochs=1, imgsz=64, batch=8, fraction=0.25, workers=0, verbose=False,
                                plots=False, amp=False, project=str(tmp_path), name="run")
    columns = next(csv.reader((tmp_path / "run" / "results.csv").open()))
    assert "metrics/mAP50-95(B)" in columns
    assert set(columns) - {"epoch"} - {row.engine for row in METRICS} == set()
