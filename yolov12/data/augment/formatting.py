"""The last step of a detection pipeline: arrays the model wants, and the batch collate function."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import torch

from yolov12.data.augment.geometry import xyxy_to_normalised_cxcywh

if TYPE_CHECKING:
    from yolov12.data.types import Sample


def to_training_arrays(sample: Sample) -> dict[str, Any]:
    """Sample -> ``{"image", "boxes", "classes", "path"}`` for the model.

    Returns:
        image: (3, H, W) uint8 RGB, C-contiguous.
        boxes: (n, 4) float32 normalised (cx, cy, w, h) in [0, 1].
        classes: (n,) int64.
        path: the source path.

    Example:
        >>> arrays = to_training_arrays(sample)  # doctest: +SKIP
        >>> arrays["image"].shape, arrays["boxes"].shape  # doctest: +SKIP
        ((3, 640, 640), (5, 4))
    """
    height, width = sample.image.shape[:2]
    rgb = cv2.cvtColor(sample.image, cv2.COLOR_BGR2RGB)
    return {
        "image": np.ascontiguousarray(rgb.transpose(2, 0, 1)),
        "boxes": xyxy_to_normalised_cxcywh(sample.boxes.reshape(-1, 4), height, width),
        "classes": np.asarray(sample.classes, np.int64).reshape(-1),
        "path": sample.path,
    }


def collate_detection(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack :func:`to_training_arrays` outputs into one batch.

    Returns:
        images: (B, 3, S, S) uint8 tensor (all images must share a size).
        batch_index: (N,) int64, which image each box belongs to.
        classes: (N,) int64.
        boxes: (N, 4) float32 normalised (cx, cy, w, h).
        paths: list of B paths.
    """
    if not batch:
        raise ValueError("collate_detection got an empty batch")
    shapes = {item["image"].shape for item in batch}
    if len(shapes) != 1:
        raise ValueError(
            f"images in a batch must share one shape, got {sorted(shapes)}; "
            "end the pipeline with RandomAffine or Letterbox to a fixed size"
        )
    counts = [len(item["classes"]) for item in batch]
    return {
        "images": torch.from_numpy(np.stack([item["image"] for item in batch])),
        "batch_index": torch.repeat_interleave(torch.arange(len(batch), dtype=torch.int64), torch.tensor(counts)),
        "classes": torch.from_numpy(np.concatenate([item["classes"] for item in batch]).astype(np.int64)),
        "boxes": torch.from_numpy(np.concatenate([item["boxes"].reshape(-1, 4) for item in batch]).astype(np.float32)),
        "paths": [item["path"] for item in batch],
    }
