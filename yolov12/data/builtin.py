"""Registry of the datasets that ``data=<name>`` can build offline, and the error for names it cannot."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path

from yolov12.data import sample_dataset
from yolov12.data.errors import DatasetNotFoundError

BUILTIN_DATASETS: dict[str, Callable[[], Path]] = {
    "sample": sample_dataset.ensure_sample_detection,
    "sample-photo": sample_dataset.ensure_sample_photo_detection,
    "sample-cls": sample_dataset.ensure_sample_classification,
}


def build(name: str) -> Path:
    """Build (once) and return the local path of built-in dataset ``name`` (a data.yaml or a class-folder root)."""
    if name not in BUILTIN_DATASETS:
        raise unknown_dataset_error(name)
    return BUILTIN_DATASETS[name]()


def unknown_dataset_error(name: str) -> DatasetNotFoundError:
    """The error for a dataset name that is neither built in nor a local path (``imagenet``, ``coco``, ...)."""
    close = difflib.get_close_matches(name, list(BUILTIN_DATASETS), n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return DatasetNotFoundError(
        f"dataset {name!r} is not available offline on this machine; pass a local data.yaml or an ImageNet-style "
        f"folder (train/<class>/*.jpg, val/<class>/*.jpg). Built-in datasets: {', '.join(BUILTIN_DATASETS)}.{hint}"
    )
