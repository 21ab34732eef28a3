"""Check and repair the raw labels of one image -> a :class:`LabelRecord` plus counts of what was wrong.

Rows are checked in this order and a row is counted under the first rule it breaks: class id out of range,
negative width/height (malformed), outside the image by more than :data:`CLIP_TOLERANCE` (dropped) or by less
(clipped, counted as repaired), zero area after clipping, exact duplicate of an earlier row.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from yolov12.data.formats.base import RawLabels
from yolov12.data.images import verify_image
from yolov12.data.types import LabelRecord

CLIP_TOLERANCE = 0.01  # coordinates up to 1% of the image outside [0, 1] are clipped; further out the row is dropped
MIN_SIDE = 1e-6  # normalised width or height at or below this is zero-area
_DUPLICATE_DECIMALS = 6


@dataclass
class VerifiedImage:
    """Outcome for one image: ``record`` (None when the image is unusable) and the ``counts`` by kind."""

    record: LabelRecord | None
    counts: Counter
    file: str


def verify_labels(raw: RawLabels, num_classes: int) -> VerifiedImage:
    """Verify the image file and repair or drop bad rows of ``raw``.

    Args:
        raw: labels as a format reader found them.
        num_classes: valid class ids are 0..num_classes-1.

    Returns:
        The record with (n, 4) float32 normalised boxes within [0, 1], and the counts of what was changed.
    """
    counts = Counter(raw.issues)
    file = str(raw.label_file or raw.image)
    check = verify_image(raw.image)
    if not check.ok:
        counts["missing_images" if check.reason == "file not found" else "corrupt_images"] += 1
        return VerifiedImage(None, counts, str(raw.image))
    rows = repair_rows(raw, num_classes, counts)
    record = LabelRecord(str(raw.image), check.height, check.width, rows.classes, rows.boxes_xywhn, rows.segments,
                         rows.difficult)
    return VerifiedImage(record, +counts, file)


@dataclass(frozen=True)
class RepairedRows:
    """The rows of one image that passed the checks: what a :class:`LabelRecord` holds besides path and size."""

    classes: np.ndarray  # (n,) int64
    boxes_xywhn: np.ndarray  # (n, 4) float32 normalised cx, cy, w, h within [0, 1]
    segments: list[np.ndarray] | None = None  # (k, 2) float32 normalised polygons aligned with the boxes
    difficult: np.ndarray | None = None  # (n,) bool


def repair_rows(raw: RawLabels, num_classes: int, counts: Counter) -> RepairedRows:
    """The row checks of :func:`verify_labels` without the image check: repair or drop each row of ``raw``.

    For images whose bytes are not at hand when the labels are read (streamed from object storage): each problem is
    added to ``counts`` by kind (see the module docstring for the rules and their order).
    """
    classes, boxes = raw.classes.astype(np.int64), raw.boxes_xywhn.astype(np.float64).reshape(-1, 4)
    keep = np.ones(len(classes), bool)
    keep = _drop(keep, (classes < 0) | (classes >= num_classes), "class_out_of_range", counts)
    keep = _drop(keep, (boxes[:, 2] < 0) | (boxes[:, 3] < 0), "malformed_rows", counts)
    corners = np.concatenate([boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2], axis=1)
    low, high = corners.min(1, initial=np.inf), corners.max(1, initial=-np.inf)
    keep = _drop(keep, (low < -CLIP_TOLERANCE) | (high > 1 + CLIP_TOLERANCE), "out_of_bounds_rows", counts)
    clipped = keep & ((low < 0) | (high > 1))
    counts["clipped_boxes"] += int(clipped.sum())
    corners = np.clip(corners, 0.0, 1.0)
    sizes = corners[:, 2:] - corners[:, :2]
    keep = _drop(keep, (sizes <= MIN_SIDE).any(1), "zero_area_boxes", counts)
    keep &= ~_duplicates(classes, corners, keep, counts)
    boxes = np.concatenate([(corners[:, :2] + corners[:, 2:]) / 2, sizes], axis=1)[keep].astype(np.float32)
    segments = None
    if raw.segments is not None:
        segments = [np.clip(s, 0.0, 1.0).astype(np.float32) for s, k in zip(raw.segments, keep) if k]
    difficult = raw.difficult[keep] if raw.difficult is not None else None
    if difficult is not None:
        counts["difficult_flagged"] += int(difficult.sum())
    return RepairedRows(classes[keep], boxes, segments, difficult)


def _drop(keep: np.ndarray, bad: np.ndarray, kind: str, counts: Counter) -> np.ndarray:
    """Count the rows still kept that are ``bad`` under ``kind`` and remove them from ``keep``."""
    hit = keep & bad
    counts[kind] += int(hit.sum())
    return keep & ~hit


def _duplicates(classes: np.ndarray, corners: np.ndarray, keep: np.ndarray, counts: Counter) -> np.ndarray:
    """Mask of kept rows equal (class and box to 1e-6) to an earlier kept row; counted as ``duplicate_rows``."""
    seen: set[tuple] = set()
    duplicate = np.zeros(len(classes), bool)
    rounded = np.round(corners, _DUPLICATE_DECIMALS)
    for i in np.flatnonzero(keep):
        key = (int(classes[i]), *rounded[i].tolist())
        duplicate[i] = key in seen
        seen.add(key)
    counts["duplicate_rows"] += int(duplicate.sum())
    return duplicate
