"""Torch datasets over verified records, and ``build_datasets(data, split)`` for the training loop.

No augmentation here: a ``transform`` (see :mod:`yolov12.data.augment`) receives each :class:`Sample`. With an
:class:`~yolov12.data.image_cache.ImageCache` attached (``dataset.cache``), images come from the cache, already
resized to the training size, with boxes scaled exactly as the pipeline's resize would scale them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
from torch.utils.data import Dataset

from yolov12.data.augment.compose import replace_sample
from yolov12.data.augment.geometry import scale_labels
from yolov12.data.classification_dataset import ClassificationDataset
from yolov12.data.dataset_config import DatasetConfig, load_dataset_config
from yolov12.data.image_cache import ImageCache
from yolov12.data.images import read_image_bgr
from yolov12.data.labels import load_labels
from yolov12.data.types import LabelRecord, Sample

__all__ = ["ClassificationDataset", "DetectionDataset", "build_datasets", "cached_sample", "record_to_sample"]

SampleTransform = Callable[[Sample], Sample]


class RecentImages(Protocol):
    """Recently loaded images by path (the mosaic's partner buffer): a copy of one, or None."""

    def lookup(self, path: str) -> Sample | None: ...


def record_to_sample(record: LabelRecord, image: np.ndarray, shape: tuple[int, int] | None = None) -> Sample:
    """Scale a record's normalised labels to the pixels of ``image`` (H, W, 3) -> :class:`Sample` (xyxy pixels).

    ``shape``: the (height, width) to scale the labels to, when not ``image``'s own.
    """
    height, width = shape if shape is not None else image.shape[:2]
    cx, cy, w, h = record.boxes_xywhn.astype(np.float32).reshape(-1, 4).T
    scale = np.array([width, height, width, height], np.float32)
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1) * scale
    segments = None
    if record.segments is not None:
        segments = [(s * np.array([width, height], np.float32)).astype(np.float32) for s in record.segments]
    return Sample(image, boxes.astype(np.float32), record.classes.astype(np.int64).copy(), record.path, segments,
                  original_shape=(int(height), int(width)))


def cached_sample(record: LabelRecord, image: np.ndarray, decoded_shape: tuple[int, int]) -> Sample:
    """The sample of a cached, resized ``image`` whose file decodes to ``decoded_shape`` (height, width).

    Equal, array for array, to ``resize_long_side(record_to_sample(record, decoded), long_side)``: the labels are
    scaled to the decoded size, then by the same gain and clip as that resize (skipped when the size did not change).
    """
    sample = record_to_sample(record, image, decoded_shape)
    height, width = decoded_shape
    new_h, new_w = image.shape[:2]
    if (new_h, new_w) == (height, width):
        return sample
    boxes, segments = scale_labels(sample.boxes, sample.segments, (new_w / width, new_h / height), (0.0, 0.0),
                                   new_h, new_w)
    return replace_sample(sample, boxes=boxes, segments=segments)


class DetectionDataset(Dataset):
    """Torch dataset of :class:`Sample`: image read with OpenCV as (H, W, 3) uint8 BGR, boxes in its pixels.

    Args:
        records: verified labels (see :func:`yolov12.data.labels.load_labels`).
        transform: called on each sample by ``__getitem__`` (augmentation, letterbox); None returns it raw.
        names: class names, for consumers that want them beside the data.

    Attributes:
        cache: an :class:`~yolov12.data.image_cache.ImageCache` of the records' images (None: decode every time).
        partners: the training pipeline's mosaic partner buffer
            (:class:`~yolov12.data.augment.partners.DatasetPartners`): an image it still holds is lent from it,
            already resized, instead of decoded (None: never).

    Example:
        >>> dataset, names = build_datasets("sample", "val")  # doctest: +SKIP
        >>> sample = dataset[0]; sample.image.shape, sample.boxes.shape  # doctest: +SKIP
        ((320, 320, 3), (4, 4))
    """

    def __init__(
        self,
        records: Sequence[LabelRecord],
        transform: SampleTransform | None = None,
        names: Sequence[str] = (),
    ) -> None:
        self.records = list(records)
        self.transform = transform
        self.names = tuple(names)
        self.cache: ImageCache | None = None
        self.partners: RecentImages | None = None

    def __len__(self) -> int:
        return len(self.records)

    def load_sample(self, index: int) -> Sample:
        """The untransformed sample ``index`` (mosaic and mix-up transforms call this for their extra images).

        From the partner buffer or the cache it is already resized to the training long side (the pipeline's resize
        then changes nothing).
        """
        record = self.records[index]
        if self.partners is not None and (recent := self.partners.lookup(record.path)) is not None:
            return recent
        if self.cache is not None and record.path in self.cache:
            return cached_sample(record, *self.cache.get(record.path))
        return record_to_sample(record, read_image_bgr(record.path))

    def __getitem__(self, index: int) -> Sample:
        sample = self.load_sample(index)
        return self.transform(sample) if self.transform is not None else sample


def build_datasets(
    data: Any, split: str, transform: Callable | None = None, workers: int | None = None
) -> tuple[DetectionDataset | ClassificationDataset, tuple[str, ...]]:
    """The dataset of ``split`` for ``data`` (anything :func:`load_dataset_config` accepts) and its class names.

    Detection datasets go through the label cache (one summary line logged) and ``transform`` maps a
    :class:`Sample`; classification datasets scan their class folders with the train split's class list and
    ``transform`` maps the image.
    """
    config: DatasetConfig = load_dataset_config(data)
    if config.task == "classify":
        source = config.split(split)
        return ClassificationDataset.from_folder(source.entries[0], config.names, transform), config.names
    records, _ = load_labels(config, split, workers=workers)
    return DetectionDataset(records, transform, config.names), config.names
