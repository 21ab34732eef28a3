"""Pascal VOC XML (one ``<annotation>`` file per image) read with ``xml.etree``.

A split is a folder (``VOC2012/`` with ``Annotations/`` + ``JPEGImages/``, or a folder where the XMLs lie beside the
images) or a mapping ``{images: <folder>, annotations: <xml folder>, ids: <ImageSets/Main/train.txt>}``. VOC pixel
coordinates are 1-based and inclusive, so a box ``xmin..xmax`` covers ``[xmin - 1, xmax)`` in our continuous
pixel coordinates. ``difficult`` objects are kept and flagged in :attr:`LabelRecord.difficult`.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from yolov12.data.errors import DatasetError, DatasetNotFoundError
from yolov12.data.formats.base import (
    DatasetFormat,
    PathResolver,
    RawLabels,
    SplitSource,
    empty_labels,
    xyxy_pixels_to_xywhn,
)
from yolov12.data.images import image_size

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VocObject:
    """One ``<object>``: class ``name``, pixel box (x1, y1, x2, y2) in continuous coordinates, ``difficult``."""

    name: str
    box: tuple[float, float, float, float]
    difficult: bool


@dataclass(frozen=True)
class VocAnnotation:
    """One parsed XML: the image file name, the declared size (0 when absent) and the objects."""

    filename: str
    height: int
    width: int
    objects: tuple[VocObject, ...]


def parse_xml(path: Path) -> VocAnnotation:
    """Parse one VOC XML.

    Raises:
        DatasetError: the XML is not well formed or an object lacks its name or box.
    """
    try:
        root = ElementTree.parse(path).getroot()
        size = root.find("size")
        width = int(float(_text(size, "width", "0"))) if size is not None else 0
        height = int(float(_text(size, "height", "0"))) if size is not None else 0
        objects = tuple(_parse_object(obj) for obj in root.iter("object"))
    except (ElementTree.ParseError, ValueError, AttributeError) as exc:
        raise DatasetError(f"cannot parse VOC annotation {path}: {exc}") from None
    filename = _text(root, "filename", "") or path.with_suffix(".jpg").name
    return VocAnnotation(filename, height, width, objects)


def _parse_object(obj: ElementTree.Element) -> VocObject:
    name = (obj.findtext("name") or "").strip()
    box = obj.find("bndbox")
    if not name or box is None:
        raise ValueError("an <object> lacks <name> or <bndbox>")
    xmin, ymin, xmax, ymax = (float(_text(box, key, "")) for key in ("xmin", "ymin", "xmax", "ymax"))
    difficult = _text(obj, "difficult", "0") not in ("0", "")
    return VocObject(name, (xmin - 1, ymin - 1, xmax, ymax), difficult)


def _text(element: ElementTree.Element | None, key: str, default: str) -> str:
    value = element.findtext(key) if element is not None else None
    return value.strip() if value is not None else default


def parse_split(value: Any, resolve: PathResolver) -> SplitSource:
    """A VOC folder, or ``{images, annotations, ids?}`` -> :class:`SplitSource`."""
    if isinstance(value, dict):
        if "annotations" not in value:
            raise DatasetError(f"a VOC split mapping needs 'annotations' (the XML folder), got {value!r}")
        annotations = resolve(str(value["annotations"]))
        images = resolve(str(value.get("images", value["annotations"])))
        ids = resolve(str(value["ids"])) if value.get("ids") else None
    else:
        folder = resolve(str(value))
        has_devkit_layout = (folder / "Annotations").is_dir()
        annotations = folder / "Annotations" if has_devkit_layout else folder
        images = folder / "JPEGImages" if has_devkit_layout else folder
        ids = None
    for path in (annotations, images, ids):
        if path is not None and not path.exists():
            raise DatasetNotFoundError(f"VOC split {value!r}: {path} does not exist")
    return SplitSource(format="voc", images=images, annotations=annotations, ids=ids)


def xml_files(split: SplitSource) -> list[Path]:
    """The split's XML files: those named by ``ids`` (one id per line) or every ``*.xml`` of the folder, sorted."""
    assert split.annotations is not None
    if split.ids is not None:
        ids = [line.split()[0] for line in split.ids.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [split.annotations / f"{i}.xml" for i in ids]
    return sorted(split.annotations.glob("*.xml"))


def _image_of(xml: Path, split: SplitSource) -> Path:
    assert split.images is not None
    try:
        return split.images / parse_xml(xml).filename
    except (DatasetError, FileNotFoundError):
        return split.images / xml.with_suffix(".jpg").name


def list_images(split: SplitSource) -> list[Path]:
    """Images named by the XMLs (their ``<filename>``, else ``<xml stem>.jpg``)."""
    return [_image_of(xml, split) for xml in xml_files(split)]


def source_files(split: SplitSource) -> list[Path]:
    """XMLs, the ids list and the images."""
    extra = [split.ids] if split.ids is not None else []
    return extra + xml_files(split) + list_images(split)


def infer_names(split: SplitSource) -> list[str]:
    """Sorted object names found in the split's XMLs (used when the data.yaml gives no ``names``)."""
    found: set[str] = set()
    for xml in xml_files(split):
        try:
            found.update(obj.name for obj in parse_xml(xml).objects)
        except (DatasetError, FileNotFoundError):
            continue
    return sorted(found)


def read_labels(split: SplitSource, names: Sequence[str]) -> list[RawLabels]:
    """One :class:`RawLabels` per XML; unknown class names and unparsable XMLs are counted."""
    index = {name: i for i, name in enumerate(names)}
    return [_read_one(xml, split, index) for xml in xml_files(split)]


def _read_one(xml: Path, split: SplitSource, index: dict[str, int]) -> RawLabels:
    assert split.images is not None
    try:
        annotation = parse_xml(xml)
    except (DatasetError, FileNotFoundError) as exc:
        logger.debug("%s", exc)
        raw = empty_labels(split.images / xml.with_suffix(".jpg").name, xml)
        raw.note("unreadable_label_files")
        return raw
    image = split.images / annotation.filename
    height, width = annotation.height, annotation.width
    if (not height or not width) and image.exists():
        height, width = image_size(image)
    known = [obj for obj in annotation.objects if obj.name in index]
    boxes = np.array([obj.box for obj in known], np.float64).reshape(-1, 4)
    raw = RawLabels(
        image,
        xml,
        np.array([index[obj.name] for obj in known], np.int64),
        xyxy_pixels_to_xywhn(boxes, max(height, 1), max(width, 1)),
        difficult=np.array([obj.difficult for obj in known], bool),
    )
    raw.note("unknown_class_names", len(annotation.objects) - len(known))
    return raw


VOC_FORMAT = DatasetFormat(
    name="voc",
    parse_split=parse_split,
    list_images=list_images,
    source_files=source_files,
    read_labels=read_labels,
    infer_names=infer_names,
)
