"""MixUp (blend two augmented samples) and copy-paste of segmented instances (flip mode).

Both are hand-written: albumentations 2.0.8 has no copy-paste, and its mixing transforms do not take a second sample
that went through our own mosaic + affine pre-transform.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import cv2
import numpy as np

from yolov12.data.augment.compose import has_segments, replace_sample
from yolov12.data.augment.geometry import box_ioa
from yolov12.data.augment.mosaic import SampleDataset

if TYPE_CHECKING:
    from yolov12.data.types import Sample

logger = logging.getLogger(__name__)


def mixup(first: Sample, second: Sample, ratio: float) -> Sample:
    """Blend ``first * ratio + second * (1 - ratio)`` (same (H, W, 3) shapes) and concatenate the labels.

    Polygons are kept only when both samples have them.
    """
    if first.image.shape != second.image.shape:
        raise ValueError(
            f"MixUp needs images of the same shape, got {first.image.shape} and {second.image.shape}; "
            "put it after the affine/letterbox step that fixes the size"
        )
    blended = cv2.addWeighted(first.image, ratio, second.image, 1.0 - ratio, 0.0)
    segments = None
    if has_segments(first) and has_segments(second):
        segments = [*first.segments, *second.segments]
    return replace_sample(
        first,
        image=blended,
        boxes=np.concatenate([first.boxes.reshape(-1, 4), second.boxes.reshape(-1, 4)]).astype(np.float32),
        classes=np.concatenate([first.classes.reshape(-1), second.classes.reshape(-1)]).astype(np.int64),
        segments=segments,
    )


class MixUp:
    """With probability ``p``, blend the sample with another random one that went through ``pre_transform``.

    The ratio is drawn from Beta(32, 32) (close to 0.5), as in YOLOv5/v8.

    Args:
        dataset: where the second sample comes from (``len`` and raw ``load_sample``).
        pre_transform: the mosaic/affine part of the pipeline, so both images have the same size.
        p: probability.
    """

    def __init__(self, dataset: SampleDataset, pre_transform: Callable[[Sample], Sample], p: float = 0.0) -> None:
        self.dataset = dataset
        self.pre_transform = pre_transform
        self.p = p

    def __call__(self, sample: Sample) -> Sample:
        if self.p <= 0 or np.random.uniform() > self.p:
            return sample
        other = self.pre_transform(self.dataset.load_sample(int(np.random.randint(0, len(self.dataset)))))
        return mixup(sample, other, float(np.random.beta(32.0, 32.0)))

    def __repr__(self) -> str:
        return f"MixUp(p={self.p})"


def copy_paste_flipped(sample: Sample, fraction: float, max_ioa: float = 0.3) -> Sample:
    """Paste horizontally flipped copies of up to ``round(fraction * n)`` instances onto the image.

    Only instances with polygons qualify, and a flipped copy is pasted only when it covers no existing box by more
    than ``max_ioa`` of that box's area (intersection over the existing box). Pixels inside the flipped polygon
    replace the image's; the copies' boxes, classes and polygons are appended.
    """
    count = len(sample.boxes)
    if count == 0 or not has_segments(sample):
        return sample
    height, width = sample.image.shape[:2]
    boxes = sample.boxes.reshape(-1, 4)
    flipped_boxes = boxes.copy()
    flipped_boxes[:, [0, 2]] = width - boxes[:, [2, 0]]
    allowed = np.flatnonzero((box_ioa(flipped_boxes, boxes) <= max_ioa).all(axis=1))
    chosen = np.random.permutation(allowed)[: round(fraction * count)]
    if len(chosen) == 0:
        return sample
    flipped_segments = []
    mask = np.zeros((height, width), np.uint8)
    for index in chosen:
        polygon = sample.segments[index].copy()
        polygon[:, 0] = width - polygon[:, 0]
        flipped_segments.append(polygon)
        # fillPoly addresses pixel centres; polygons are in edge coordinates.
        cv2.fillPoly(mask, [np.round(polygon - 0.5).astype(np.int32)], 1)
    image = sample.image.copy()
    flipped_image = cv2.flip(sample.image, 1)
    np.copyto(image, flipped_image, where=mask[..., None].astype(bool))
    return replace_sample(
        sample,
        image=image,
        boxes=np.concatenate([boxes, flipped_boxes[chosen]]).astype(np.float32),
        classes=np.concatenate([sample.classes.reshape(-1), sample.classes.reshape(-1)[chosen]]).astype(np.int64),
        segments=[*sample.segments, *flipped_segments],
    )


class CopyPaste:
    """With probability ``p``, :func:`copy_paste_flipped` with ``fraction = p`` (Ultralytics' ``copy_paste``)."""

    def __init__(self, p: float = 0.0, max_ioa: float = 0.3) -> None:
        self.p = p
        self.max_ioa = max_ioa

    def __call__(self, sample: Sample) -> Sample:
        if self.p <= 0 or np.random.uniform() > self.p:
            return sample
        return copy_paste_flipped(sample, self.p, self.max_ioa)

    def __repr__(self) -> str:
        return f"CopyPaste(p={self.p}, max_ioa={self.max_ioa})"
