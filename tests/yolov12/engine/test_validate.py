"""Validation as users call it: conf/iou/max_det change the metrics; predictions files, plots, key checks."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from yolov12 import YOLO
from yolov12.config import ConfigError, PredictConfig, ValConfig
from yolov12.data.sample_dataset import SampleSpec, write_sample_detection
from yolov12.engine.evaluate import evaluate
from yolov12.engine.validate import validate
from yolov12.models import build_model, load_architecture

AR, MAP50 = "metrics/AR50-95(B)", "metrics/mAP50(B)"
SIZE_KEYS = [f"metrics/{kind}50-95_{size}(B)" for kind in ("mAP", "AR") for size in ("small", "medium", "large")]

# Three 20x20 objects in a 128x128 input and four fixed detections (xyxy, score): the three objects exactly, and a
# copy of the first shifted by 4 px (IoU 0.67 with it) that NMS keeps at iou=0.7 (a false positive) and drops at 0.5.
SIZE = 128
OBJECTS = [[10, 10, 30, 30], [60, 60, 80, 80], [10, 80, 30, 100]]
DETECTIONS = [([10, 10, 30, 30], 0.9), ([14, 10, 34, 30], 0.8), ([60, 60, 80, 80], 0.5), ([10, 80, 30, 100], 0.2)]


class FixedDetector(nn.Module):
    """A detection model whose raw output (B, 4 + nc, anchors) is the same fixed detections for every image."""

    task = "detect"

    def __init__(self, detections: list[tuple[list[float], float]], num_classes: int = 1) -> None:
        super().__init__()
        self.names = {c: str(c) for c in range(num_classes)}
        raw = torch.zeros(1, 4 + num_classes, len(detections))
        for anchor, ((x1, y1, x2, y2), score) in enumerate(detections):
            raw[0, :4, anchor] = torch.tensor([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1])
            raw[0, 4, anchor] = score
        self.register_buffer("raw", raw)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.raw.expand(len(images), -1, -1)


def _loader() -> list[dict]:
    """One batch of one image with :data:`OBJECTS` (normalised cxcywh, as the detection collate gives them)."""
    boxes = torch.tensor(OBJECTS, dtype=torch.float32)
    cxcywh = torch.cat([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], 1) / SIZE
    return [{"images": torch.zeros(1, 3, SIZE, SIZE, dtype=torch.uint8), "boxes": cxcywh,
             "batch_index": torch.zeros(len(OBJECTS), dtype=torch.int64),
             "classes": torch.zeros(len(OBJECTS), dtype=torch.int64), "paths": ["scene.jpg"]}]


def _evaluate(**settings) -> dict[str, float]:
    model = FixedDetector(DETECTIONS)
    return evaluate(model, _loader(), model.names, torch.device("cpu"), **settings)


def test_the_defaults_are_todays_and_keep_the_false_positive() -> None:
    metrics = _evaluate()
    assert metrics == _evaluate(conf=0.001, iou=0.7, max_det=300)
    assert metrics[AR] == pytest.approx(1.0)
    # ranks: TP, FP, TP, TP -> interpolated precision 1 up to recall 1/3, then 3/4 (101-point COCO interpolation)
    assert metrics[MAP50] == pytest.approx((34 * 1.0 + 67 * 0.75) / 101)


def test_a_lower_nms_iou_removes_the_duplicate() -> None:
    assert _evaluate(iou=0.5)[MAP50] == pytest.approx(1.0)
    assert _evaluate(iou=0.5)[MAP50] > _evaluate(iou=0.7)[MAP50]


def test_a_higher_conf_can_only_lower_recall() -> None:
    recalls = [_evaluate(conf=conf)[AR] for conf in (0.001, 0.3, 0.6, 0.95)]
    assert recalls == pytest.approx([1.0, 2 / 3, 1 / 3, 0.0])


def test_max_det_one_keeps_one_box_per_image() -> None:
    limited = _evaluate(max_det=1)
    assert limited[AR] == pytest.approx(1 / 3)
    assert limited[MAP50] < _evaluate()[MAP50]


@pytest.fixture(scope="module")
def tiny_detection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data.yaml of 4 sample scenes (its train split is one of them, so split=train works too)."""
    spec = SampleSpec(train_images=1, val_images=4, image_size=96, min_digit_size=16, max_digit_size=40)
    return write_sample_detection(tmp_path_factory.mktemp("detection"), spec)


@pytest.fixture(scope="module")
def tiny_classification(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ImageNet-style folder: 3 classes, 2 images each in train and val."""
    root = tmp_path_factory.mktemp("classification")
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for name in ("a", "b", "c"):
            (root / split / name).mkdir(parents=True)
            for i in range(2):
                cv2.imwrite(str(root / split / name / f"{i}.png"), rng.integers(0, 255, (40, 40, 3), np.uint8))
    return root


def test_validate_threads_conf_and_max_det_into_the_predictions_file(tiny_detection: Path, tmp_path: Path) -> None:
    model = FixedDetector(DETECTIONS, num_classes=10)
    validate(model, data=str(tiny_detection), imgsz=64, conf=0.3, max_det=2, save_json=True, plots=True,
             device="cpu", project=str(tmp_path), name="run")
    for plot in ("PR_curve.png", "confusion_matrix.png"):
        assert (tmp_path / "run" / plot).stat().st_size > 1000
    predictions = json.loads((tmp_path / "run" / "predictions.json").read_text())
    per_image = {}
    for row in predictions:
        per_image.setdefault(row["image_id"], []).append(row["score"])
    assert len(per_image) == 4
    assert all(scores == pytest.approx([0.9, 0.8]) for scores in per_image.values())


def test_validate_takes_a_config_and_overrides_on_top(tiny_detection: Path) -> None:
    model = FixedDetector(DETECTIONS, num_classes=10)
    config = ValConfig(data=tiny_detection, imgsz=64, device="cpu", conf=0.95)  # a Path is taken as its text
    assert validate(model, config)[AR] == 0.0  # nothing scores above 0.95
    assert validate(model, config, conf=0.001, split="train").keys() == validate(model, config).keys()


def test_yolo_val_accepts_every_setting_and_reports_the_size_metrics(tiny_detection: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    metrics = YOLO("yolov12n.yaml").val(data=str(tiny_detection), imgsz=64, batch=4, conf=0.01, iou=0.6, max_det=10,
                                        half=True, rect=True, verbose=True, device="cpu", split="train")
    assert set(SIZE_KEYS) <= set(metrics)
    # every box of the 96 px scenes validated at 64 px is under 32² pixels: only the small range has ground truth
    assert metrics["metrics/mAP50-95_large(B)"] == -1.0 and metrics["metrics/AR50-95_small(B)"] >= 0.0
    assert not (tmp_path / "runs").exists()  # nothing to write, no run folder


@pytest.fixture(scope="module")
def classifier() -> YOLO:
    """A 3-class classifier (random weights): top-5 then holds all 3 classes."""
    torch.manual_seed(0)
    return YOLO(build_model(load_architecture("yolov12n-cls").with_overrides(num_classes=3)))


def test_classifier_save_json_writes_top5_per_image(classifier: YOLO, tiny_classification: Path,
                                                    tmp_path: Path) -> None:
    model = classifier
    metrics = model.val(data=str(tiny_classification), imgsz=32, save_json=True, plots=True, device="cpu",
                        project=str(tmp_path), name="cls")
    assert set(metrics) == {"metrics/accuracy_top1", "metrics/accuracy_top5"}
    records = json.loads((tmp_path / "cls" / "predictions.json").read_text())
    assert sorted((Path(r["image"]).parent.name, r["true_class"]) for r in records) == [
        ("a", 0), ("a", 0), ("b", 1), ("b", 1), ("c", 2), ("c", 2)]
    top1_hits = 0
    for record in records:
        assert sorted(record["top5_classes"]) == [0, 1, 2]  # top-5 of 3 classes: all of them
        assert sum(record["top5_probabilities"]) == pytest.approx(1.0, abs=1e-4)
        assert record["top5_names"] == [model.names[c] for c in record["top5_classes"]]
        assert record["top5_probabilities"] == sorted(record["top5_probabilities"], reverse=True)
        top1_hits += record["top5_classes"][0] == record["true_class"]
    assert metrics["metrics/accuracy_top1"] == pytest.approx(top1_hits / len(records))
    assert (tmp_path / "cls" / "confusion_matrix.png").stat().st_size > 1000


def test_unknown_and_out_of_range_keys_are_refused(classifier: YOLO, tiny_classification: Path) -> None:
    model = classifier
    with pytest.raises(ConfigError, match="unknown key 'cnf'; did you mean 'conf'"):
        model.val(data=str(tiny_classification), cnf=0.1)
    with pytest.raises(ConfigError, match=r"iou=1.5 is out of range: use 0.0 <= iou <= 1.0"):
        model.val(data=str(tiny_classification), iou=1.5)
    with pytest.raises(ConfigError, match="split"):
        model.val(data=str(tiny_classification), split="tests")


def test_val_config_shares_the_predict_device_default() -> None:
    assert ValConfig().device == PredictConfig().device
    assert ValConfig(device=0).device == "cuda:0"
    assert (ValConfig().conf, ValConfig().iou, ValConfig().max_det, ValConfig().imgsz) == (0.001, 0.7, 300, None)
