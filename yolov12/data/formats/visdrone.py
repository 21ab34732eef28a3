"""VisDrone-DET: annotation txt rows ``x,y,w,h,score,category,truncation,occlusion`` (pixels) -> our labels.

Categories 1..10 become classes 0..9 (:data:`VISDRONE_NAMES`); category 0 ("ignored regions") and 11 ("others")
are dropped, as the benchmark's evaluation does. A split folder holds ``images/`` and ``annotations/`` (the layout of
``VisDrone2019-DET-train``). :func:`convert_visdrone` writes the YOLO layout once; ``format: visdrone`` in a
data.yaml reads the original files directly.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from yolov12.data.errors import DatasetError, DatasetNotFoundError
from yolov12.data.formats.base import DatasetFormat, PathResolver, RawLabels, SplitSource, xyxy_pixels_to_xywhn
from yolov12.data.images import image_size, is_image_file

logger = logging.getLogger(__name__)

VISDRONE_NAMES: tuple[str, ...] = (
    "pedestrian", "people", "bicycle", "car", "van", "truck", "tricycle", "awning-tricycle", "bus", "motor",
)
IGNORED_REGION, OTHERS = 0, 11


@dataclass
class VisDroneRows:
    """Parsed annotation file: ``classes`` (n,) int64 0..9, ``boxes_xyxy`` (n, 4) float64 pixels, dropped counts."""

    classes: np.ndarray
    boxes_xyxy: np.ndarray
    counts: Counter = field(default_factory=Counter)


def parse_annotation_text(text: str) -> VisDroneRows:
    """Parse a VisDrone-DET annotation file; malformed rows and categories 0 / 11 are dropped and counted."""
    classes, boxes, counts = [], [], Counter()
    for line in text.splitlines():
        parts = [p for p in line.strip().split(",") if p.strip()]  # some files end rows with a trailing comma
        if not parts:
            continue
        try:
            x, y, w, h = (float(v) for v in parts[:4])
            category = int(parts[5])
        except (ValueError, IndexError):
            counts["malformed_rows"] += 1
            continue
        if category == IGNORED_REGION:
            counts["ignored_regions_dropped"] += 1
        elif category == OTHERS:
            counts["others_dropped"] += 1
        elif not 1 <= category <= len(VISDRONE_NAMES):
            counts["class_out_of_range"] += 1
        else:
            classes.append(category - 1)
            boxes.append([x, y, x + w, y + h])
    return VisDroneRows(np.asarray(classes, np.int64), np.asarray(boxes, np.float64).reshape(-1, 4), counts)


def parse_split(value: Any, resolve: PathResolver) -> SplitSource:
    """A VisDrone split folder (``images/`` + ``annotations/``) -> :class:`SplitSource`."""
    folder = resolve(str(value))
    images, annotations = folder / "images", folder / "annotations"
    if not images.is_dir() or not annotations.is_dir():
        raise DatasetNotFoundError(
            f"VisDrone split {value!r} -> {folder} must contain images/ and annotations/ (as VisDrone2019-DET-train)"
        )
    return SplitSource(format="visdrone", images=images, annotations=annotations)


def list_images(split: SplitSource) -> list[Path]:
    """Image files of ``images/``, sorted."""
    assert split.images is not None
    return sorted(p for p in split.images.iterdir() if is_image_file(p))


def source_files(split: SplitSource) -> list[Path]:
    """Images and their annotation files."""
    images = list_images(split)
    return images + [_annotation_of(p, split) for p in images]


def _annotation_of(image: Path, split: SplitSource) -> Path:
    assert split.annotations is not None
    return split.annotations / f"{image.stem}.txt"


def read_labels(split: SplitSource, names: Sequence[str]) -> list[RawLabels]:
    """One :class:`RawLabels` per image (sizes from the image headers, needed to normalise pixel boxes)."""
    return [_read_one(image, _annotation_of(image, split)) for image in list_images(split)]


def _read_one(image: Path, annotation: Path) -> RawLabels:
    try:
        rows = parse_annotation_text(annotation.read_text(encoding="utf-8"))
    except FileNotFoundError:
        rows = VisDroneRows(np.zeros(0, np.int64), np.zeros((0, 4)), Counter(missing_label_files=1))
    except (OSError, UnicodeDecodeError):
        rows = VisDroneRows(np.zeros(0, np.int64), np.zeros((0, 4)), Counter(unreadable_label_files=1))
    try:
        height, width = image_size(image)
    except DatasetError:
        height, width = 1, 1  # verification reports the image as corrupt and drops it
    raw = RawLabels(image, annotation, rows.classes, xyxy_pixels_to_xywhn(rows.boxes_xyxy, height, width))
    raw.issues.update(rows.counts)
    return raw


@dataclass
class ConversionReport:
    """What :func:`convert_visdrone` wrote and dropped."""

    images: int = 0
    boxes: int = 0
    counts: Counter = field(default_factory=Counter)


def convert_visdrone(src_dir: str | Path, dst_dir: str | Path, copy_images: bool = False) -> ConversionReport:
    """Convert VisDrone-DET to the YOLO layout and write ``data.yaml``.

    ``src_dir`` is one split folder (``images/`` + ``annotations/``) or a root holding ``VisDrone2019-DET-<split>``
    folders. Writes ``dst_dir/images/<split>/`` (symlinks unless ``copy_images``), ``dst_dir/labels/<split>/*.txt``
    and ``dst_dir/data.yaml``. Boxes are clipped to the image; rows of categories 0 and 11 are dropped.

    Example:
        >>> convert_visdrone("VisDrone2019-DET-val", "visdrone-yolo")  # doctest: +SKIP
    """
    import yaml  # noqa: PLC0415 - only the converter writes YAML

    src, dst = Path(src_dir), Path(dst_dir)
    splits = _find_splits(src)
    report = ConversionReport()
    for split_name, folder in splits.items():
        _convert_split(folder, dst / "images" / split_name, dst / "labels" / split_name, copy_images, report)
    config = {"path": str(dst.resolve()), **{name: f"images/{name}" for name in splits},
              "names": dict(enumerate(VISDRONE_NAMES))}
    (dst / "data.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    logger.info("VisDrone -> YOLO: %d images, %d boxes written to %s; %s", report.images, report.boxes, dst,
                dict(report.counts) or "nothing dropped")
    return report


def _find_splits(src: Path) -> dict[str, Path]:
    if (src / "annotations").is_dir():
        name = src.name.split("DET-", 1)[-1] if "DET-" in src.name else "train"
        return {name: src}
    folders = [p for p in sorted(src.glob("VisDrone*-DET-*")) if (p / "annotations").is_dir()]
    found = {p.name.split("DET-", 1)[-1]: p for p in folders}
    if not found:
        raise DatasetNotFoundError(
            f"{src} is neither a VisDrone-DET split (images/ + annotations/) nor a folder of VisDrone*-DET-<split>/"
        )
    return found


def _convert_split(folder: Path, images_out: Path, labels_out: Path, copy_images: bool, report: ConversionReport):
    split = SplitSource(format="visdrone", images=folder / "images", annotations=folder / "annotations")
    images_out.mkdir(parents=True, exist_ok=True)
    labels_out.mkdir(parents=True, exist_ok=True)
    for raw in read_labels(split, VISDRONE_NAMES):
        target = images_out / raw.image.name
        if copy_images and not target.exists():
            shutil.copy2(raw.image, target)
        elif not target.exists():
            os.symlink(raw.image.resolve(), target)
        boxes = _clip_xywhn(raw.boxes_xywhn)
        lines = [f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}" for c, (x, y, w, h) in zip(raw.classes, boxes) if w > 0 < h]
        (labels_out / f"{raw.image.stem}.txt").write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
        report.images += 1
        report.boxes += len(lines)
        report.counts.update(raw.issues)
        report.counts["zero_area_dropped"] += len(boxes) - len(lines)


def _clip_xywhn(boxes: np.ndarray) -> np.ndarray:
    cx, cy, w, h = boxes.T
    x1, y1 = np.clip(cx - w / 2, 0, 1), np.clip(cy - h / 2, 0, 1)
    x2, y2 = np.clip(cx + w / 2, 0, 1), np.clip(cy + h / 2, 0, 1)
    return np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=1)


VISDRONE_FORMAT = DatasetFormat(
    name="visdrone",
    parse_split=parse_split,
    list_images=list_images,
    source_files=source_files,
    read_labels=read_labels,
    infer_names=lambda split: list(VISDRONE_NAMES),
)
