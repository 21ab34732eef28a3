"""Records shared by the data layer, the augmentation pipeline and the training loop.

These dataclasses are the contract other packages code against: a :class:`Sample` is what a detection dataset
yields (pixels plus boxes in pixels of those pixels), a :class:`LabelRecord` is what the label cache stores per image
(no pixels), a :class:`ClassificationRecord` is one image of an ImageNet-style folder.

Box formats are named in the field: ``xyxy`` is corner pixels, ``xywhn`` is normalised centre/size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from yolov12.infer.letterbox import LetterboxInfo


@dataclass
class Sample:
    """One detection training example.

    Attributes:
        image: (H, W, 3) uint8 BGR.
        boxes: (n, 4) float32 x1, y1, x2, y2 in pixels of ``image``.
        classes: (n,) int64 class ids in 0..num_classes-1.
        path: the image file it came from.
        segments: optional polygons, one per box (same order), each (k, 2) float32 x, y in pixels of ``image``.
        original_shape: optional (height, width) of the decoded image file the sample was loaded from.
        letterbox: optional mapping from the file's pixels to ``image`` (``image = file * ratio + pad``), set by the
            validation letterbox so that metrics can measure boxes in the file's pixels.

    Example:
        >>> s = Sample(np.zeros((4, 4, 3), np.uint8), np.zeros((0, 4), np.float32), np.zeros(0, np.int64), "a.jpg")
        >>> len(s)
        0
    """

    image: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray
    path: str
    segments: list[np.ndarray] | None = None
    original_shape: tuple[int, int] | None = None
    letterbox: LetterboxInfo | None = None

    def __len__(self) -> int:
        """Number of objects."""
        return int(self.classes.shape[0])


@dataclass(frozen=True)
class LabelRecord:
    """Verified labels of one image, as stored in the label cache (no pixels).

    Attributes:
        path: absolute image path.
        height: image height in pixels (from the file header).
        width: image width in pixels.
        classes: (n,) int64.
        boxes_xywhn: (n, 4) float32 normalised centre x, centre y, width, height, all within [0, 1].
        segments: optional polygons aligned with the boxes, each (k, 2) float32 normalised x, y.
        difficult: optional (n,) bool, True for boxes a source marked "difficult" (Pascal VOC); kept, only flagged.
    """

    path: str
    height: int
    width: int
    classes: np.ndarray
    boxes_xywhn: np.ndarray
    segments: list[np.ndarray] | None = None
    difficult: np.ndarray | None = None

    def __len__(self) -> int:
        """Number of objects."""
        return int(self.classes.shape[0])


@dataclass(frozen=True)
class ClassificationRecord:
    """One image of a classification dataset: its path and its class index."""

    path: str
    label: int


@dataclass
class ClassificationSample:
    """One classification example: (H, W, 3) uint8 BGR ``image``, its class ``label`` and source ``path``."""

    image: np.ndarray
    label: int
    path: str
