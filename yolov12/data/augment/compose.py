"""Transforms are callables ``Sample -> Sample``; :class:`Compose` chains them and forwards ``set_epoch``.

A transform never mutates its input sample: it returns a new one (``dataclasses.replace``), so a dataset can cache
raw samples safely.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from yolov12.data.types import Sample

logger = logging.getLogger(__name__)

T = TypeVar("T")


@runtime_checkable
class Transform(Protocol):
    """Anything that maps a :class:`~yolov12.data.types.Sample` to a new one."""

    def __call__(self, sample: Sample) -> Sample: ...


@runtime_checkable
class EpochAware(Protocol):
    """A transform whose behaviour depends on the epoch (close_mosaic, magnitude schedules)."""

    def set_epoch(self, epoch: int, total_epochs: int) -> None: ...


class Compose:
    """Apply transforms in order; ``set_epoch`` reaches every epoch-aware transform, nested ones included.

    Example:
        >>> pipeline = Compose([RandomFlip("horizontal", p=0.5), RandomHSV(0.015, 0.7, 0.4)])  # doctest: +SKIP
        >>> augmented = pipeline(sample)  # doctest: +SKIP
    """

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, sample: Sample) -> Sample:
        for transform in self.transforms:
            sample = transform(sample)
        return sample

    def set_epoch(self, epoch: int, total_epochs: int) -> None:
        """Forward to every child that has ``set_epoch``."""
        for transform in self.transforms:
            if isinstance(transform, EpochAware):
                transform.set_epoch(epoch, total_epochs)

    def __iter__(self) -> Iterator[Transform]:
        return iter(self.transforms)

    def __len__(self) -> int:
        return len(self.transforms)

    def find(self, kind: type[T]) -> list[T]:
        """All transforms of type ``kind``, searching nested :class:`Compose` objects depth-first."""
        found: list[T] = []
        for transform in self.transforms:
            if isinstance(transform, kind):
                found.append(transform)
            if isinstance(transform, Compose):
                found.extend(t for t in transform.find(kind) if t not in found)
        return found

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(t) for t in self.transforms)
        return f"{type(self).__name__}([\n  {inner}\n])"


def replace_sample(sample: Sample, **changes: object) -> Sample:
    """A copy of ``sample`` with some fields replaced (works for any dataclass with the Sample fields)."""
    return dataclasses.replace(sample, **changes)


def select_instances(sample: Sample, keep: np.ndarray, **changes: object) -> Sample:
    """A copy keeping only the instances where the (n,) bool or index array ``keep`` selects; ``changes`` apply first.

    ``boxes``, ``classes`` and ``segments`` stay aligned.
    """
    boxes = changes.pop("boxes", sample.boxes)
    classes = changes.pop("classes", sample.classes)
    segments = changes.pop("segments", sample.segments)
    indices = np.flatnonzero(keep) if np.asarray(keep).dtype == bool else np.asarray(keep, dtype=np.int64)
    kept_segments = None if segments is None else [segments[i] for i in indices]
    return dataclasses.replace(
        sample,
        boxes=np.asarray(boxes, np.float32)[indices].reshape(-1, 4),
        classes=np.asarray(classes, np.int64)[indices],
        segments=kept_segments,
        **changes,
    )


def has_segments(sample: Sample) -> bool:
    """True when every box has a polygon (``segments`` is a list aligned with ``boxes``)."""
    return sample.segments is not None and len(sample.segments) == len(sample.boxes)
