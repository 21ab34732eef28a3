"""rect=True: Ultralytics' batch-shape rule, aspect-ratio order, and the same mAP as square validation."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from yolov12.config.base import ConfigError
from yolov12.data.rect import RectValidationDataset, rect_batch_shapes
from yolov12.engine.data_setup import build_val_loader
from yolov12.engine.evaluate import MAP50_KEY, MAP_KEY, evaluate_detection

SIZES = [(60, 120), (120, 60), (80, 100), (100, 80), (90, 90), (50, 140), (140, 50), (70, 110), (66, 130)]
COLOURS = {0: (0, 0, 255), 1: (0, 255, 0)}  # BGR: class 0 red, class 1 green, on black


@pytest.mark.parametrize(
    ("ratios", "batch", "pad", "expected"),
    [
        ([0.5, 0.75, 1.0, 1.5], 2, 0.0, [(480, 640), (640, 640)]),
        ([1.5, 2.0], 2, 0.0, [(640, 448)]),
        ([0.5], 1, 0.5, [(352, 672)]),  # Ultralytics' validation pad: half a stride more
        ([1.0, 1.0], 4, 0.0, [(640, 640)]),
    ],
)
def test_batch_shapes_follow_the_ultralytics_rule(ratios, batch, pad, expected) -> None:
    assert rect_batch_shapes(ratios, batch, 640, stride=32, pad=pad) == expected


@pytest.fixture
def rect_data(tmp_path: Path) -> Path:
    """Images of several aspect ratios with solid red / green rectangles, and their YOLO labels."""
    rng = np.random.default_rng(0)
    for index, (height, width) in enumerate(SIZES):
        image = np.zeros((height, width, 3), np.uint8)
        lines = []
        for cls in (0, 1):
            box_w, box_h = int(width * rng.uniform(0.25, 0.4)), int(height * rng.uniform(0.25, 0.4))
            x = int(width * 0.05) if cls == 0 else int(width * 0.55)
            y = int(rng.uniform(0.05, 0.55) * height)
            image[y:y + box_h, x:x + box_w] = COLOURS[cls]
            lines.append(f"{cls} {(x + box_w / 2) / width} {(y + box_h / 2) / height} {box_w / width} {box_h / height}")
        (tmp_path / "images").mkdir(exist_ok=True)
        (tmp_path / "labels").mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / "images" / f"im{index}.png"), image)
        (tmp_path / "labels" / f"im{index}.txt").write_text("\n".join(lines))
    (tmp_path / "data.yaml").write_text(f"path: {tmp_path}\ntrain: images\nval: images\nnames: ['red', 'green']\n")
    return tmp_path / "data.yaml"


class ColourOracle(nn.Module):
    """Finds the red and green rectangles by colour: (B, 3, H, W) RGB in [0, 1] -> (B, 4 + 2, A) head output."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(images.shape[0], 6, 8)
        for b, image in enumerate(images):
            rgb = image.permute(1, 2, 0).numpy()
            anchor = 0
            for cls, channel in ((0, 0), (1, 1)):
                others = [c for c in range(3) if c != channel]
                mask = ((rgb[..., channel] > 0.5) & (rgb[..., others].max(-1) < 0.5)).astype(np.uint8)
                count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
                for x, y, w, h, _ in stats[1:count]:
                    out[b, :4, anchor] = torch.tensor([x + w / 2, y + h / 2, w, h], dtype=torch.float32)
                    out[b, 4 + cls, anchor] = 1.0
                    anchor += 1
        return out


def test_rect_batches_give_the_metrics_of_square_ones(rect_data: Path) -> None:
    names = {0: "red", 1: "green"}
    square = build_val_loader(str(rect_data), "detect", 64, batch=2, workers=0)
    rect = build_val_loader(str(rect_data), "detect", 64, batch=2, workers=0, rect=True)
    shapes = [tuple(batch["images"].shape[2:]) for batch in rect]
    assert len(set(shapes)) > 2 and all(h % 32 == 0 and w % 32 == 0 and max(h, w) == 64 for h, w in shapes)
    assert all(tuple(batch["images"].shape[2:]) == (64, 64) for batch in square)
    ratios = [r.height / r.width for r in rect.dataset.records]
    assert ratios == sorted(ratios)
    plain = evaluate_detection(ColourOracle(), square, names, torch.device("cpu"))
    rectangular = evaluate_detection(ColourOracle(), rect, names, torch.device("cpu"))
    assert plain[MAP50_KEY] > 0.99 and plain[MAP_KEY] > 0.5  # the oracle sees the boxes: the metric can fail
    assert rectangular[MAP50_KEY] == pytest.approx(plain[MAP50_KEY], abs=0.005)
    assert rectangular[MAP_KEY] == pytest.approx(plain[MAP_KEY], abs=0.005)


def test_rect_items_are_letterboxed_to_their_batch_shape(rect_data: Path) -> None:
    from yolov12.data.detection_dataset import build_datasets

    dataset, _ = build_datasets(str(rect_data), "val")
    rect = RectValidationDataset(dataset, imgsz=64, batch=4, stride=32)
    for index in range(len(rect)):
        assert rect[index]["image"].shape[1:] == rect.shape_of(index)


def test_rect_is_refused_for_classification(tmp_path: Path, image_writer) -> None:
    image_writer(tmp_path / "val" / "a" / "0.jpg")
    image_writer(tmp_path / "train" / "a" / "0.jpg")
    with pytest.raises(ConfigError, match="rect=True applies to detection"):
        build_val_loader(str(tmp_path), "classify", 32, batch=2, workers=0, rect=True)
