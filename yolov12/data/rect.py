"""Rectangular validation batches (``rect=True``): less padding, the same metrics.

Images are sorted by aspect ratio (height / width) so that each batch holds similar shapes; each batch is
letterboxed to its own (height, width), Ultralytics' rule: with ``lo``/``hi`` the batch's smallest and largest
aspect ratio, the shape is ``(hi, 1)`` when every image is wide (``hi < 1``), ``(1, 1 / lo)`` when every image is
tall (``lo > 1``), else square, times ``imgsz``, rounded up to a multiple of the stride (``pad`` strides added
first; 0 gives the smallest stride multiple that fits, Ultralytics' validation loader uses 0.5).

Images are resized exactly as in square validation (long side ``imgsz``, never enlarged), so only the padding
differs; boxes are normalised to each batch's letterboxed input, which is what the evaluator expects, and each item
carries its file's shape and letterbox scale (``original_shape``, ``ratio``, ``pad``), so that the COCO size metrics
measure objects in the original images' pixels whatever the batch shape.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from yolov12.data.augment.compose import Compose
from yolov12.data.augment.formatting import to_training_arrays
from yolov12.data.augment.letterbox import Letterbox
from yolov12.data.augment.mosaic import ResizeLongSide


def rect_batch_shapes(aspect_ratios: Sequence[float], batch: int, imgsz: int, stride: int = 32,
                      pad: float = 0.0) -> list[tuple[int, int]]:
    """(height, width) of each batch of images whose ``aspect_ratios`` (height / width) are sorted ascending.

    Example:
        >>> rect_batch_shapes([0.5, 0.75, 1.0, 1.5], batch=2, imgsz=640)
        [(480, 640), (640, 640)]
        >>> rect_batch_shapes([1.5, 2.0], batch=2, imgsz=640)
        [(640, 448)]
    """
    shapes = []
    for start in range(0, len(aspect_ratios), batch):
        chunk = aspect_ratios[start:start + batch]
        low, high = min(chunk), max(chunk)
        relative = (high, 1.0) if high < 1 else (1.0, 1.0 / low) if low > 1 else (1.0, 1.0)
        height, width = (int(math.ceil(side * imgsz / stride + pad)) * stride for side in relative)
        shapes.append((height, width))
    return shapes


class RectValidationDataset(Dataset):
    """A detection dataset's items in aspect-ratio order, each letterboxed to its batch's shape (training arrays).

    Iterate it with a sequential loader of the same ``batch`` (``shuffle=False``): item ``i`` belongs to batch
    ``i // batch``.

    Args:
        dataset: a :class:`~yolov12.data.detection_dataset.DetectionDataset` (its records are reordered here).
        imgsz: the validation size (long side).
        batch: images per validation batch.
        stride: the model's largest stride.
        pad: strides of padding added before rounding (see :func:`rect_batch_shapes`).
    """

    def __init__(self, dataset: Any, imgsz: int, batch: int, stride: int = 32, pad: float = 0.0) -> None:
        ratios = np.array([record.height / record.width for record in dataset.records], np.float64)
        order = np.argsort(ratios, kind="stable")
        dataset.records = [dataset.records[i] for i in order]
        self.dataset, self.batch = dataset, batch
        self.batch_shapes = rect_batch_shapes(ratios[order].tolist(), batch, imgsz, stride, pad)
        self.pipelines = {shape: Compose([ResizeLongSide(imgsz, augment=False),
                                          Letterbox(shape, auto=False, scaleup=False, stride=stride)])
                          for shape in set(self.batch_shapes)}

    @property
    def records(self) -> list:
        return self.dataset.records

    @property
    def names(self) -> tuple[str, ...]:
        return self.dataset.names

    def __len__(self) -> int:
        return len(self.dataset)

    def shape_of(self, index: int) -> tuple[int, int]:
        """(height, width) of the letterboxed input of item ``index``."""
        return self.batch_shapes[index // self.batch]

    def __getitem__(self, index: int) -> dict[str, Any]:
        pipeline = self.pipelines[self.shape_of(index)]
        return to_training_arrays(pipeline(self.dataset.load_sample(index)))
