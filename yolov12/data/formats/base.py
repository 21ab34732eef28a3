"""What every dataset format reader provides, and the records it hands to verification.

A reader turns one split entry of a ``data.yaml`` into a :class:`SplitSource` (paths only), lists its image files,
names the files whose stats key the label cache, and reads raw labels (normalised, not yet checked) per image.
Checking and repairing the labels is format-independent and lives in :mod:`yolov12.data.verify`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from yolov12.utils.boxes import xyxy_to_cxcywh

PathResolver = Callable[[str], Path]
"""Turns a path string from a data.yaml (relative, absolute or ``s3://``) into a local path."""


@dataclass(frozen=True)
class SplitSource:
    """Where one split's files are, resolved to local paths.

    Attributes:
        format: name of the reader (key of :data:`yolov12.data.formats.FORMATS`).
        entries: YOLO only: image folders, ``.txt`` lists of images, or single image files.
        images: COCO / VOC / VisDrone: the image folder.
        annotations: COCO: the instances JSON; VOC: the XML folder; VisDrone: the annotation txt folder.
        ids: VOC only: optional ``ImageSets/Main/<split>.txt`` naming the image ids of the split.
        root: the dataset root (``path`` of the data.yaml); relative lines of YOLO ``.txt`` lists resolve against it.
    """

    format: str
    entries: tuple[Path, ...] = ()
    images: Path | None = None
    annotations: Path | None = None
    ids: Path | None = None
    root: Path | None = None


@dataclass
class RawLabels:
    """Labels of one image as a format reader found them, before verification.

    Attributes:
        image: the image file.
        label_file: the file the labels came from (txt, xml or json), for messages; None for a missing label file.
        classes: (n,) int64, possibly out of range.
        boxes_xywhn: (n, 4) float64 normalised cx, cy, w, h, possibly out of [0, 1].
        segments: optional polygons aligned with the boxes, each (k, 2) float64 normalised.
        difficult: optional (n,) bool flags (VOC).
        issues: problems the reader already found, by kind (for example ``malformed_rows``); the file behind them is
            ``label_file`` (or ``image`` when there is none).
    """

    image: Path
    label_file: Path | None
    classes: np.ndarray
    boxes_xywhn: np.ndarray
    segments: list[np.ndarray] | None = None
    difficult: np.ndarray | None = None
    issues: Counter = field(default_factory=Counter)

    def note(self, kind: str, count: int = 1) -> None:
        """Count ``count`` problems of ``kind`` for this image."""
        if count:
            self.issues[kind] += count


def empty_labels(image: Path, label_file: Path | None) -> RawLabels:
    """Labels of an image without objects."""
    return RawLabels(image, label_file, np.zeros(0, np.int64), np.zeros((0, 4), np.float64))


def xyxy_pixels_to_xywhn(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """(n, 4) pixel x1, y1, x2, y2 -> (n, 4) normalised cx, cy, w, h (float64, not clipped)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return xyxy_to_cxcywh(boxes / np.array([width, height, width, height], np.float64))


@dataclass(frozen=True)
class DatasetFormat:
    """A registered dataset format: the four functions a reader provides.

    Attributes:
        name: format name used in ``data.yaml`` (``format: coco``).
        parse_split: (yaml value of a split, path resolver) -> :class:`SplitSource`.
        list_images: split -> image files, in a stable order.
        source_files: split -> every file whose size and mtime decide whether the label cache is stale.
        read_labels: (split, class names) -> one :class:`RawLabels` per listed image.
        infer_names: split -> class names, for formats that carry them (COCO categories, VOC object names).
    """

    name: str
    parse_split: Callable[[Any, PathResolver], SplitSource]
    list_images: Callable[[SplitSource], list[Path]]
    source_files: Callable[[SplitSource], list[Path]]
    read_labels: Callable[[SplitSource, Sequence[str]], list[RawLabels]]
    infer_names: Callable[[SplitSource], list[str]] | None = None
