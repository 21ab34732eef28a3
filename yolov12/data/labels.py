"""Load the verified labels of one split, through the label cache.

``load_labels(config, "train")`` lists the split's files, hashes their names, sizes and mtimes (plus format and
class names), and returns the cached records when the hash matches; otherwise every image is verified (in a thread
pool) and its rows repaired or dropped (:mod:`yolov12.data.verify`), and the cache is rewritten. The cache file is
``<labels folder's parent>/<split>.cache.json`` for YOLO labels (``labels/train.cache.json`` beside
``labels/train/``), ``<dataset root>/<split>.cache.json`` otherwise. Either way one summary line is logged.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from yolov12.data.dataset_config import DatasetConfig
from yolov12.data.errors import DatasetError
from yolov12.data.formats import SplitSource, get_format
from yolov12.data.formats.yolo import label_path_for
from yolov12.data.label_cache import files_hash, read_cached_labels, record_to_json, write_cache
from yolov12.data.label_report import LabelReport
from yolov12.data.types import LabelRecord
from yolov12.data.verify import verify_labels

__all__ = ["LabelReport", "cache_path_for", "load_labels", "load_split_labels"]

logger = logging.getLogger(__name__)


def default_workers() -> int:
    """Threads for verification: image header checks are I/O-bound, so a few more than cores, at most 8."""
    return min(8, (os.cpu_count() or 1) + 2)


def load_labels(
    config: DatasetConfig, split: str, *, workers: int | None = None, use_cache: bool = True
) -> tuple[list[LabelRecord], LabelReport]:
    """Verified labels of ``split`` and the report of what was skipped, dropped or repaired.

    Args:
        config: the dataset (see :func:`yolov12.data.dataset_config.load_dataset_config`).
        split: ``train``, ``val`` or ``test``.
        workers: verification threads (default :func:`default_workers`).
        use_cache: read and write the label cache; False always re-verifies and writes nothing.

    Returns:
        (records of usable images in listing order, report). The report's summary line has been logged.

    Example:
        >>> records, report = load_labels(load_dataset_config("sample"), "val")  # doctest: +SKIP
        >>> report.images, report.corrupt_images  # doctest: +SKIP
        (32, 0)
    """
    if config.task != "detect":
        raise DatasetError(
            f"load_labels reads detection labels but {config.source} is a {config.task} dataset; "
            "use ClassificationDataset.from_folder"
        )
    source = config.split(split)
    return load_split_labels(source, config.names, split, cache_path_for(source, config.root, split),
                             workers=workers, use_cache=use_cache)


def cache_path_for(source: SplitSource, root: Path, split: str) -> Path:
    """Where the label cache of a split lives (see the module docstring)."""
    if source.format == "yolo":
        images = get_format("yolo").list_images(source)
        if images:
            return label_path_for(images[0]).parent.parent / f"{split}.cache.json"
    return root / f"{split}.cache.json"


def load_split_labels(
    source: SplitSource,
    names: tuple[str, ...],
    split: str,
    cache_path: Path,
    *,
    workers: int | None = None,
    use_cache: bool = True,
) -> tuple[list[LabelRecord], LabelReport]:
    """:func:`load_labels` for an explicit split source and cache path."""
    fmt = get_format(source.format)
    key = files_hash(fmt.source_files(source), salt=f"{fmt.name}|{'|'.join(names)}")
    cached = read_cached_labels(cache_path, key, len(names)) if use_cache else None
    if cached is not None:
        records, report = cached
        report.cache_path, report.from_cache = cache_path if cache_path.exists() else None, True
        report.log()
        return records, report
    records, report = _verify_split(fmt.read_labels(source, names), len(names), split, workers)
    if use_cache:
        payload = {"hash": key, "split": split, "records": [record_to_json(r) for r in records],
                   "report": report.to_dict()}
        report.cache_path = write_cache(cache_path, payload)
    report.log()
    return records, report


def _verify_split(raws: list, num_classes: int, split: str, workers: int | None) -> tuple[list, LabelReport]:
    report = LabelReport(split=split)
    records: list[LabelRecord] = []
    with ThreadPoolExecutor(max_workers=workers or default_workers()) as pool:
        for outcome in pool.map(lambda raw: verify_labels(raw, num_classes), raws):
            report.add(outcome.counts, outcome.file)
            if outcome.record is not None:
                records.append(outcome.record)
    report.images = len(records)
    report.boxes = sum(len(r) for r in records)
    return records, report
