"""COCO instances JSON (read with pycocotools): ``{images: <folder>, annotations: <instances json>}`` per split.

Category ids (COCO's are 1..90 with gaps) are mapped to contiguous 0..nc-1 in ascending id order; ``iscrowd``
annotations are dropped (counted); ``bbox`` is pixel x, y, w, h and becomes normalised cx, cy, w, h.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO

from yolov12.data.errors import DatasetError, DatasetNotFoundError
from yolov12.data.formats.base import DatasetFormat, PathResolver, RawLabels, SplitSource, xyxy_pixels_to_xywhn
from yolov12.data.images import image_size

logger = logging.getLogger(__name__)


def load_coco(annotations: str | Path) -> COCO:
    """Load an instances JSON with pycocotools, without its prints on stdout.

    Raises:
        DatasetNotFoundError: the file does not exist.
        DatasetError: the file is not valid JSON or lacks ``images``.
    """
    path = Path(annotations)
    if not path.is_file():
        raise DatasetNotFoundError(f"COCO annotations file {path} does not exist")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(path))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AssertionError) as exc:
        raise DatasetError(f"{path} is not a COCO instances JSON ({type(exc).__name__}: {exc})") from None
    if "images" not in coco.dataset:
        raise DatasetError(f"{path} has no 'images' list; is it a COCO instances JSON?")
    return coco


def coco_from_bytes(payload: bytes, source: str) -> COCO:
    """A COCO instances JSON already in memory (e.g. read from object storage) indexed by pycocotools.

    Raises:
        DatasetError: ``payload`` is not JSON or lacks ``images``.
    """
    try:
        dataset = json.loads(payload)
        if not isinstance(dataset, dict) or not isinstance(dataset.get("images"), list):
            raise DatasetError(f"{source} has no 'images' list; is it a COCO instances JSON?")
        coco = COCO()
        coco.dataset = dataset
        with contextlib.redirect_stdout(io.StringIO()):
            coco.createIndex()
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise DatasetError(f"{source} is not a COCO instances JSON ({type(exc).__name__}: {exc})") from None
    return coco


@lru_cache(maxsize=8)
def _cached_coco(path: str, mtime_ns: int) -> COCO:
    return load_coco(path)


def _coco(split: SplitSource) -> COCO:
    assert split.annotations is not None
    return _cached_coco(str(split.annotations), split.annotations.stat().st_mtime_ns)


def parse_split(value: Any, resolve: PathResolver) -> SplitSource:
    """``{images: <folder>, annotations: <file.json>}`` -> :class:`SplitSource`."""
    if not isinstance(value, dict) or not {"images", "annotations"} <= set(value):
        raise DatasetError(
            f"a COCO split must be a mapping with 'images' and 'annotations', got {value!r}; "
            "for example train: {images: images/train2017, annotations: annotations/instances_train2017.json}"
        )
    images, annotations = resolve(str(value["images"])), resolve(str(value["annotations"]))
    for what, path in (("images", images), ("annotations", annotations)):
        if not path.exists():
            raise DatasetNotFoundError(f"COCO split {what} {value[what]!r} resolves to {path}, which does not exist")
    return SplitSource(format="coco", images=images, annotations=annotations)


def category_ids(coco: COCO) -> list[int]:
    """COCO category ids in ascending order: index i in this list is our class id i."""
    return sorted(coco.cats)


def infer_names(split: SplitSource) -> list[str]:
    """Category names in ascending category-id order."""
    coco = _coco(split)
    return [coco.cats[cat]["name"] for cat in category_ids(coco)]


def list_images(split: SplitSource) -> list[Path]:
    """Image files named by the JSON, in ascending image-id order."""
    coco = _coco(split)
    assert split.images is not None
    return [split.images / coco.imgs[i]["file_name"] for i in sorted(coco.imgs)]


def source_files(split: SplitSource) -> list[Path]:
    """The JSON and every image it names."""
    assert split.annotations is not None
    return [split.annotations, *list_images(split)]


def read_labels(split: SplitSource, names: Sequence[str]) -> list[RawLabels]:
    """One :class:`RawLabels` per image of the JSON."""
    coco = _coco(split)
    contiguous = {cat: index for index, cat in enumerate(category_ids(coco))}
    assert split.images is not None
    return [_image_labels(coco, image_id, contiguous, split.images) for image_id in sorted(coco.imgs)]


def _image_labels(coco: COCO, image_id: int, contiguous: dict[int, int], folder: Path) -> RawLabels:
    info = coco.imgs[image_id]
    image = folder / info["file_name"]
    height, width = info.get("height"), info.get("width")
    if not height or not width:
        height, width = image_size(image) if image.exists() else (1, 1)
    return image_labels(coco, image_id, contiguous, image, (height, width))


def image_labels(coco: COCO, image_id: int, contiguous: dict[int, int], image: Any,
                 size: tuple[int, int]) -> RawLabels:
    """The labels of image ``image_id`` (``image``: its file or URI) normalised by its ``size`` (height, width);
    crowd and malformed annotations are dropped and noted."""
    height, width = size
    classes, boxes, polygons, issues = [], [], [], {"crowd_dropped": 0, "malformed_rows": 0}
    for ann in coco.imgToAnns.get(image_id, []):
        if ann.get("iscrowd", 0):
            issues["crowd_dropped"] += 1
            continue
        bbox = ann.get("bbox")
        if ann.get("category_id") not in contiguous or not isinstance(bbox, list) or len(bbox) != 4:
            issues["malformed_rows"] += 1
            continue
        x, y, w, h = (float(v) for v in bbox)
        classes.append(contiguous[ann["category_id"]])
        boxes.append([x, y, x + w, y + h])
        polygons.append(_largest_polygon(ann.get("segmentation"), width, height))
    raw = RawLabels(image, None, np.asarray(classes, np.int64), xyxy_pixels_to_xywhn(np.array(boxes), height, width))
    if polygons and all(p is not None for p in polygons):
        raw.segments = polygons
    for kind, count in issues.items():
        raw.note(kind, count)
    return raw


def _largest_polygon(segmentation: Any, width: int, height: int) -> np.ndarray | None:
    """The polygon with the most points of a COCO polygon segmentation, normalised; None for RLE or none."""
    if not isinstance(segmentation, list) or not segmentation:
        return None
    best = max(segmentation, key=len)
    if len(best) < 6 or len(best) % 2:
        return None
    return np.asarray(best, np.float64).reshape(-1, 2) / np.array([width, height], np.float64)


COCO_FORMAT = DatasetFormat(
    name="coco",
    parse_split=parse_split,
    list_images=list_images,
    source_files=source_files,
    read_labels=read_labels,
    infer_names=infer_names,
)
