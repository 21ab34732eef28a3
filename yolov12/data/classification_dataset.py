"""ImageNet-style classification folders: ``root/<split>/<class>/*.jpg``, classes in sorted folder-name order."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from yolov12.data.errors import DatasetError, DatasetNotFoundError
from yolov12.data.image_cache import ImageCache
from yolov12.data.images import is_image_file, read_image_bgr, verify_image
from yolov12.data.types import ClassificationRecord, ClassificationSample

logger = logging.getLogger(__name__)

ImageTransform = Callable[[np.ndarray], np.ndarray]
"""(H, W, 3) uint8 BGR -> transformed image (for example :class:`yolov12.data.augment.ClassificationTransforms`)."""


def class_names(split_dir: str | Path) -> tuple[str, ...]:
    """Sorted names of the class folders of ``split_dir``."""
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise DatasetNotFoundError(f"classification split folder {split_dir} does not exist")
    return tuple(sorted(d.name for d in split_dir.iterdir() if d.is_dir() and not d.name.startswith(".")))


def list_class_folder(split_dir: str | Path, names: Sequence[str] | None = None) -> list[ClassificationRecord]:
    """Every image under ``split_dir/<class>/`` (recursively), sorted by class then path.

    Args:
        split_dir: for example ``root/val``.
        names: the class list (usually the train split's); a folder not in it is an error. Default: the folders here.
    """
    split_dir = Path(split_dir)
    folders = class_names(split_dir)
    names = tuple(names) if names is not None else folders
    index = {name: i for i, name in enumerate(names)}
    unknown = [f for f in folders if f not in index]
    if unknown:
        raise DatasetError(
            f"class folders {unknown} of {split_dir} are not among the dataset's classes {list(names)}; "
            "every split must use the train split's class folders"
        )
    records = []
    for folder in folders:
        files = sorted(p for p in (split_dir / folder).rglob("*") if p.is_file() and is_image_file(p))
        records.extend(ClassificationRecord(str(p), index[folder]) for p in files)
    return records


class ClassificationDataset(Dataset):
    """Torch dataset of :class:`ClassificationSample` (BGR uint8 image, class index, path).

    ``transform`` maps the image only (labels of classification do not move); ``__getitem__`` returns the sample
    with the transformed image, ``load_sample`` the raw one. ``cache`` (an
    :class:`~yolov12.data.image_cache.ImageCache` of decoded, unresized images) replaces decoding when set.

    Example:
        >>> dataset = ClassificationDataset.from_folder("sample-cls/train")  # doctest: +SKIP
        >>> dataset[0].image.shape, dataset[0].label  # doctest: +SKIP
        ((64, 64, 3), 0)
    """

    def __init__(
        self,
        records: Sequence[ClassificationRecord],
        names: Sequence[str],
        transform: ImageTransform | None = None,
    ) -> None:
        self.records = list(records)
        self.names = tuple(names)
        self.transform = transform
        self.cache: ImageCache | None = None

    @classmethod
    def from_folder(
        cls,
        split_dir: str | Path,
        names: Sequence[str] | None = None,
        transform: ImageTransform | None = None,
        verify: bool = True,
    ) -> ClassificationDataset:
        """Scan ``split_dir``; with ``verify`` corrupt images are skipped, counted and logged in one line."""
        names = tuple(names) if names is not None else class_names(split_dir)
        records = list_class_folder(split_dir, names)
        if verify:
            bad = [r for r in records if not verify_image(r.path).ok]
            records = [r for r in records if r not in bad]
            level = logging.WARNING if bad else logging.INFO
            logger.log(level, "%s: %d images, %d classes; skipped %d corrupt images", Path(split_dir).name,
                       len(records), len(names), len(bad))
            for record in bad:
                logger.debug("corrupt image skipped: %s", record.path)
        return cls(records, names, transform)

    def __len__(self) -> int:
        return len(self.records)

    def load_sample(self, index: int) -> ClassificationSample:
        """The untransformed sample ``index``."""
        record = self.records[index]
        if self.cache is not None and record.path in self.cache:
            return ClassificationSample(self.cache.get(record.path)[0], record.label, record.path)
        return ClassificationSample(read_image_bgr(record.path), record.label, record.path)

    def __getitem__(self, index: int) -> ClassificationSample:
        sample = self.load_sample(index)
        if self.transform is not None:
            sample.image = self.transform(sample.image)
        return sample
