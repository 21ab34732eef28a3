"""Dataset format readers, registered by the name a data.yaml gives in ``format:`` (default ``yolo``)."""

from __future__ import annotations

import difflib

from yolov12.data.errors import DatasetError
from yolov12.data.formats.base import DatasetFormat, RawLabels, SplitSource
from yolov12.data.formats.coco import COCO_FORMAT
from yolov12.data.formats.visdrone import VISDRONE_FORMAT
from yolov12.data.formats.voc import VOC_FORMAT
from yolov12.data.formats.yolo import YOLO_FORMAT

__all__ = ["FORMATS", "DatasetFormat", "RawLabels", "SplitSource", "get_format"]

FORMATS: dict[str, DatasetFormat] = {fmt.name: fmt for fmt in (YOLO_FORMAT, COCO_FORMAT, VOC_FORMAT, VISDRONE_FORMAT)}


def get_format(name: str) -> DatasetFormat:
    """The registered reader called ``name``; raises :class:`DatasetError` with close matches otherwise."""
    key = str(name).lower()
    if key in FORMATS:
        return FORMATS[key]
    close = difflib.get_close_matches(key, list(FORMATS), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise DatasetError(f"unknown dataset format {name!r}{hint} Known formats: {', '.join(sorted(FORMATS))}")
