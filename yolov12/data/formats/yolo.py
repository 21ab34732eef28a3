"""YOLO txt labels (Ultralytics layout): one ``<image stem>.txt`` per image under the matching ``labels`` folder.

Each row is ``class cx cy w h`` (normalised) or a polygon ``class x1 y1 x2 y2 ... xk yk`` (k >= 3). An image's label
file is found by replacing the last ``/images/`` of its path with ``/labels/`` and its suffix with ``.txt``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from yolov12.data.errors import DatasetError, DatasetNotFoundError
from yolov12.data.formats.base import DatasetFormat, PathResolver, RawLabels, SplitSource, empty_labels
from yolov12.data.images import is_image_file

logger = logging.getLogger(__name__)


def label_path_for(image: str | Path) -> Path:
    """The YOLO label file of an image: last ``/images/`` -> ``/labels/``, suffix -> ``.txt``.

    Example:
        >>> label_path_for("/d/images/train/a.jpg").as_posix()
        '/d/labels/train/a.txt'
    """
    text = str(image)
    images, labels = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    if images in text:
        head, tail = text.rsplit(images, 1)
        text = head + labels + tail
    return Path(text).with_suffix(".txt")


def parse_split(value: Any, resolve: PathResolver) -> SplitSource:
    """A folder, a ``.txt`` list of images, an image file, or a list of these -> :class:`SplitSource`."""
    items = value if isinstance(value, (list, tuple)) else [value]
    entries = []
    for item in items:
        if not isinstance(item, (str, os.PathLike)):
            raise DatasetError(
                f"a YOLO split entry must be a folder, a .txt list or an image path, got {item!r}; "
                "use format: coco for {images: ..., annotations: ...} entries"
            )
        path = resolve(str(item))
        if not path.exists():
            raise DatasetNotFoundError(f"split entry {item!r} resolves to {path}, which does not exist")
        entries.append(path)
    return SplitSource(format="yolo", entries=tuple(entries), root=resolve("."))


def list_images(split: SplitSource) -> list[Path]:
    """Image files of the split, sorted within each folder, duplicates removed, listed order kept for .txt lists."""
    found: list[Path] = []
    for entry in split.entries:
        if entry.is_dir():
            found.extend(sorted(p for p in entry.rglob("*") if p.is_file() and is_image_file(p)))
        elif entry.suffix.lower() == ".txt":
            found.extend(_read_list_file(entry, split))
        else:
            found.append(entry)
    return list(dict.fromkeys(found))


def _read_list_file(list_file: Path, split: SplitSource) -> list[Path]:
    """Lines of a .txt image list: absolute, ``./x`` (relative to the list's folder) or relative to the root."""
    root = split.root or list_file.parent
    paths = []
    for line in list_file.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        path = Path(line)
        if line.startswith("./"):
            path = list_file.parent / line[2:]
        elif not path.is_absolute():
            path = root / path
        paths.append(path)
    return paths


def source_files(split: SplitSource) -> list[Path]:
    """Images, their label files and the .txt lists: their stats decide whether the label cache is stale."""
    images = list_images(split)
    lists = [e for e in split.entries if e.suffix.lower() == ".txt"]
    return lists + images + [label_path_for(p) for p in images]


def read_labels(split: SplitSource, names: Sequence[str]) -> list[RawLabels]:
    """One :class:`RawLabels` per image; a missing label file means an image without objects (counted)."""
    return [read_label_file(image, label_path_for(image)) for image in list_images(split)]


def read_label_file(image: Path, label_file: Path) -> RawLabels:
    """Parse one YOLO label file; rows with a wrong column count or non-numeric values are dropped and counted."""
    try:
        text = label_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raw = empty_labels(image, None)
        raw.note("missing_label_files")
        return raw
    except (OSError, UnicodeDecodeError) as exc:
        logger.debug("unreadable label file %s: %s", label_file, exc)
        raw = empty_labels(image, label_file)
        raw.note("unreadable_label_files")
        return raw
    return parse_label_text(image, label_file, text)


def parse_label_text(image: str | Path, label_file: str | Path, text: str) -> RawLabels:
    """Parse the text of one YOLO label file (read from disk or fetched from object storage) -> :class:`RawLabels`.

    ``image`` and ``label_file`` are kept as given (paths or ``s3://`` URIs), for messages. Rows with a wrong column
    count or non-numeric values are dropped and counted as ``malformed_rows``.

    Example:
        >>> parse_label_text("a.jpg", "a.txt", "0 0.5 0.5 0.2").issues["malformed_rows"]
        1
    """
    classes, boxes, polygons, malformed = [], [], [], 0
    for line in text.splitlines():
        values = _parse_row(line)
        if values is None:
            malformed += 1
            continue
        if not values:
            continue
        classes.append(int(values[0]))
        points = np.asarray(values[1:], np.float64)
        if len(values) == 5:
            boxes.append(points)
            polygons.append(None)
        else:
            polygon = points.reshape(-1, 2)
            low, high = polygon.min(0), polygon.max(0)
            boxes.append(np.concatenate([(low + high) / 2, high - low]))
            polygons.append(polygon)
    raw = RawLabels(
        image,
        label_file,
        np.asarray(classes, np.int64),
        np.asarray(boxes, np.float64).reshape(-1, 4),
        segments=_aligned_segments(boxes, polygons),
    )
    raw.note("malformed_rows", malformed)
    if not classes and not malformed:
        raw.note("empty_label_files")
    return raw


def _parse_row(line: str) -> list[float] | None:
    """[] for a blank line, the numbers of a well-formed row, None for a malformed one."""
    parts = line.split()
    if not parts:
        return []
    try:
        values = [float(part) for part in parts]
    except ValueError:
        return None
    if not all(math.isfinite(v) for v in values) or values[0] != int(values[0]):
        return None
    if len(values) == 5 or (len(values) >= 7 and len(values) % 2 == 1):
        return values
    return None


def _aligned_segments(boxes: list[np.ndarray], polygons: list[np.ndarray | None]) -> list[np.ndarray] | None:
    """Polygons for every row when any row has one; box rows get their rectangle."""
    if all(p is None for p in polygons):
        return None
    aligned = []
    for box, polygon in zip(boxes, polygons):
        if polygon is None:
            cx, cy, w, h = box
            polygon = np.array([[cx - w / 2, cy - h / 2], [cx + w / 2, cy - h / 2], [cx + w / 2, cy + h / 2],
                                [cx - w / 2, cy + h / 2]])
        aligned.append(polygon)
    return aligned


YOLO_FORMAT = DatasetFormat(
    name="yolo",
    parse_split=parse_split,
    list_images=list_images,
    source_files=source_files,
    read_labels=read_labels,
)
