"""COCO size metrics of validation: the small/medium/large ranges apply to box areas in the original image's pixels,
at any ``imgsz``, for square and rectangular batches; the IoU metrics do not depend on that."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from yolov12.engine.data_setup import build_val_loader
from yolov12.engine.evaluate import MAP50_KEY, MAP_KEY, evaluate_detection
from yolov12.eval.metric_names import (
    AR50_95_LARGE,
    AR50_95_MEDIUM,
    AR50_95_SMALL,
    MAP50_95_LARGE,
    MAP50_95_MEDIUM,
    MAP50_95_SMALL,
)

NAMES = {0: "red"}
SMALL, MEDIUM, LARGE = MAP50_95_SMALL.engine, MAP50_95_MEDIUM.engine, MAP50_95_LARGE.engine
AR_SMALL, AR_MEDIUM, AR_LARGE = AR50_95_SMALL.engine, AR50_95_MEDIUM.engine, AR50_95_LARGE.engine
GEOMETRY_KEYS = ("original_shapes", "ratios", "pads")


def write_split(root: Path, images: list[tuple[int, int, list[tuple[int, int, int, int]]]]) -> Path:
    """``images``: (height, width, [(x, y, w, h) red rectangles]) on black -> data.yaml of a one-class YOLO split."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for index, (height, width, boxes) in enumerate(images):
        image = np.zeros((height, width, 3), np.uint8)
        lines = []
        for x, y, w, h in boxes:
            image[y:y + h, x:x + w] = (0, 0, 255)
            lines.append(f"0 {(x + w / 2) / width} {(y + h / 2) / height} {w / width} {h / height}")
        cv2.imwrite(str(root / "images" / f"im{index}.png"), image)
        (root / "labels" / f"im{index}.txt").write_text("\n".join(lines))
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images\nval: images\nnames: ['red']\n")
    return root / "data.yaml"


class RedOracle(nn.Module):
    """Finds red rectangles: (B, 3, H, W) RGB in [0, 1] -> (B, 4 + 1, A) head output (cx, cy, w, h, score)."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(images.shape[0], 5, 8)
        for b, image in enumerate(images):
            rgb = image.permute(1, 2, 0).numpy()
            mask = ((rgb[..., 0] > 0.5) & (rgb[..., 1:].max(-1) < 0.5)).astype(np.uint8)
            count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
            for anchor, (x, y, w, h, _) in enumerate(stats[1:count]):
                out[b, :, anchor] = torch.tensor([x + w / 2, y + h / 2, w, h, 1.0])
        return out


def without_geometry(loader: Iterator[dict]) -> Iterator[dict]:
    """The loader's batches without the letterbox geometry: the evaluator then sees network-input pixels only."""
    for batch in loader:
        yield {key: value for key, value in batch.items() if key not in GEOMETRY_KEYS}


def validate(data: Path, imgsz: int, rect: bool = False) -> dict[str, float]:
    loader = build_val_loader(str(data), "detect", imgsz, batch=2, workers=0, rect=rect)
    return evaluate_detection(RedOracle(), loader, NAMES, torch.device("cpu"))


@pytest.fixture
def medium_square(tmp_path: Path) -> Path:
    """320x320 images whose objects are all medium (50x50 to 80x60 pixels: 2500 to 4800 px², within 32² to 96²)."""
    return write_split(tmp_path / "square", [(320, 320, [(20, 30, 50, 50), (150, 200, 80, 60)]),
                                             (320, 320, [(100, 100, 70, 55)]),
                                             (320, 320, [(200, 40, 60, 70), (30, 220, 55, 65)])])


@pytest.fixture
def medium_rect(tmp_path: Path) -> Path:
    """Wide, tall and square images whose objects are all medium in their own pixels."""
    return write_split(tmp_path / "rect", [(160, 320, [(20, 30, 50, 50), (200, 60, 80, 60)]),
                                           (200, 400, [(100, 100, 70, 55)]),
                                           (320, 160, [(40, 40, 60, 70), (30, 220, 55, 65)]),
                                           (400, 200, [(60, 150, 75, 50)]),
                                           (256, 256, [(100, 100, 64, 64)])])


@pytest.mark.parametrize("imgsz", [64, 160])
def test_square_validation_counts_medium_objects_of_the_original_images_as_medium(medium_square: Path,
                                                                                  imgsz: int) -> None:
    metrics = validate(medium_square, imgsz)
    assert metrics[MEDIUM] > 0.5 and metrics[AR_MEDIUM] > 0.5  # the oracle finds them: a real score, not -1
    assert metrics[SMALL] == -1.0 and metrics[AR_SMALL] == -1.0
    assert metrics[LARGE] == -1.0 and metrics[AR_LARGE] == -1.0


@pytest.mark.parametrize("imgsz", [64, 96])
def test_rect_validation_counts_medium_objects_of_the_original_images_as_medium(medium_rect: Path,
                                                                                imgsz: int) -> None:
    loader = build_val_loader(str(medium_rect), "detect", imgsz, batch=2, workers=0, rect=True)
    assert len({tuple(batch["images"].shape[2:]) for batch in loader}) > 1  # really rectangular batches
    metrics = validate(medium_rect, imgsz, rect=True)
    assert metrics[MEDIUM] > 0.5 and metrics[AR_MEDIUM] > 0.5
    assert metrics[SMALL] == -1.0 and metrics[AR_SMALL] == -1.0
    assert metrics[LARGE] == -1.0 and metrics[AR_LARGE] == -1.0


def test_hand_computed_buckets_when_images_are_enlarged_and_shrunk(tmp_path: Path) -> None:
    # imgsz 320: the 40x40 image is enlarged 8x, its 20x20 object (400 px² < 32², small) becomes 160x160 (large);
    # the 600x300 image is shrunk to 320x160, its 150x100 object (15000 px² > 96², large) becomes 80x53 (medium).
    data = write_split(tmp_path / "hand", [(40, 40, [(10, 10, 20, 20)]), (300, 600, [(200, 100, 150, 100)])])
    metrics = validate(data, 320)
    assert metrics[SMALL] == pytest.approx(1.0) and metrics[AR_SMALL] == pytest.approx(1.0)
    assert metrics[LARGE] == pytest.approx(1.0) and metrics[AR_LARGE] == pytest.approx(1.0)
    assert metrics[MEDIUM] == -1.0 and metrics[AR_MEDIUM] == -1.0


@pytest.mark.parametrize("rect", [False, True])
def test_iou_metrics_are_the_same_as_in_network_input_pixels(medium_rect: Path, rect: bool) -> None:
    loader = build_val_loader(str(medium_rect), "detect", 64, batch=2, workers=0, rect=rect)
    original = evaluate_detection(RedOracle(), loader, NAMES, torch.device("cpu"))
    network_input = evaluate_detection(RedOracle(), without_geometry(loader), NAMES, torch.device("cpu"))
    assert original[MAP_KEY] == network_input[MAP_KEY] and original[MAP50_KEY] == network_input[MAP50_KEY]
    assert original[MAP_KEY] > 0.3  # the oracle finds the objects, so equality is not 0 == 0
    assert network_input[SMALL] > 0 and original[SMALL] == -1.0  # only the size ranges moved
