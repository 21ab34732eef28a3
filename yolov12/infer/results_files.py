"""Tables and files of one :class:`~yolov12.infer.results.Results`: flat rows, CSV, YOLO label lines, box crops.

The ``Results`` methods ``to_df``, ``to_csv``, ``save_txt`` and ``save_crop`` are thin wrappers around these.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

if TYPE_CHECKING:
    from yolov12.infer.results import Results

logger = logging.getLogger(__name__)

DETECTION_COLUMNS = ("name", "class", "confidence", "x1", "y1", "x2", "y2")
CLASSIFICATION_COLUMNS = ("name", "class", "confidence")
_UNSAFE_FILE_NAME = re.compile(r"[^\w.\- ]+")


def table_columns(result: Results) -> tuple[str, ...]:
    """The columns of :func:`table_rows`: with the box corners (and track id) for detections, without for
    classification."""
    if result.probs is not None:
        return CLASSIFICATION_COLUMNS
    tracked = result.boxes is not None and result.boxes.is_track
    return (*DETECTION_COLUMNS, "track_id") if tracked else DETECTION_COLUMNS


def table_rows(result: Results, normalize: bool = False, decimals: int = 5) -> list[dict[str, Any]]:
    """:meth:`Results.summary` with the box flattened into ``x1, y1, x2, y2`` columns: one flat dict per row."""
    rows = []
    for row in result.summary(normalize=normalize, decimals=decimals):
        box = row.pop("box", {})
        rows.append({**row, **box})
    return rows


def to_dataframe(result: Results, normalize: bool = False, decimals: int = 5) -> Any:
    """A pandas DataFrame of :func:`table_rows` (pandas is imported here, not with the library)."""
    import pandas as pd  # noqa: PLC0415 - a heavy import, only for the users who ask for a frame

    return pd.DataFrame(table_rows(result, normalize, decimals), columns=list(table_columns(result)))


def csv_text(result: Results, normalize: bool = False, decimals: int = 5) -> str:
    """:func:`table_rows` as CSV text with a header line (no pandas needed)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(table_columns(result)), lineterminator="\n")
    writer.writeheader()
    writer.writerows(table_rows(result, normalize, decimals))
    return buffer.getvalue()


def label_lines(result: Results, save_conf: bool = False) -> list[str]:
    """YOLO label lines: ``class cx cy w h [conf]`` normalised per detection, or ``conf name`` per top-5 class."""
    if result.probs is not None:
        probabilities = np.asarray(result.probs.numpy().data, dtype=np.float64)
        return [f"{probabilities[i]:.2f} {result.names.get(i, str(i))}" for i in result.probs.top5]
    if result.boxes is None:
        return []
    boxes = result.boxes.numpy()
    centres = np.asarray(boxes.xywhn, dtype=np.float64).reshape(-1, 4)
    lines = []
    for (cx, cy, w, h), conf, cls in zip(centres, np.asarray(boxes.conf, np.float64), np.asarray(boxes.cls)):
        values = (int(cls), cx, cy, w, h, *((conf,) if save_conf else ()))
        lines.append(" ".join(f"{v:g}" for v in values))
    return lines


def append_lines(path: str | Path, lines: Sequence[str]) -> Path:
    """Append ``lines`` to ``path`` (folders created); nothing is written, nor the file created, for no lines."""
    path = Path(path)
    if lines:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.writelines(f"{line}\n" for line in lines)
    return path


def safe_file_name(name: str, fallback: str = "im") -> str:
    """``name`` usable as one file or folder name: path separators and other odd characters become ``_``."""
    cleaned = _UNSAFE_FILE_NAME.sub("_", name).strip(" .")
    return cleaned or fallback


def crop_box(image: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """The pixels of ``image`` (H, W, C) inside ``box`` (x1, y1, x2, y2), grown outward to whole pixels and clipped
    to the image; at least one pixel wide and high."""
    height, width = image.shape[:2]
    x1 = min(max(math.floor(box[0]), 0), width - 1)
    y1 = min(max(math.floor(box[1]), 0), height - 1)
    x2 = min(max(math.ceil(box[2]), x1 + 1), width)
    y2 = min(max(math.ceil(box[3]), y1 + 1), height)
    return image[y1:y2, x1:x2]


def write_new_jpeg(image: np.ndarray, folder: Path, stem: str) -> Path:
    """Write ``folder/stem.jpg``, or ``stem2.jpg``, ``stem3.jpg``... when taken; never replaces a file."""
    ok, encoded = cv2.imencode(".jpg", np.ascontiguousarray(image))
    if not ok:
        raise ValueError(f"cannot encode a crop of shape {image.shape} as JPEG")
    folder.mkdir(parents=True, exist_ok=True)
    number = 1
    while True:
        path = folder / f"{stem}{number if number > 1 else ''}.jpg"
        try:
            with path.open("xb") as handle:  # exclusive create: a file written meanwhile is never replaced
                handle.write(encoded.tobytes())
            return path
        except FileExistsError:
            number += 1


def save_crops(result: Results, save_dir: str | Path, file_name: str | Path | None = None) -> list[Path]:
    """One JPEG per detection in ``save_dir/<class name>/<file_name>.jpg`` (numbered when taken); the paths."""
    if result.boxes is None:
        logger.warning("save_crop: %s is a classification result, which has no boxes to crop", result.path)
        return []
    stem = safe_file_name(Path(str(file_name)).stem if file_name is not None else Path(result.path).stem)
    boxes = result.boxes.numpy()
    paths = []
    for box, cls in zip(np.asarray(boxes.xyxy, np.float64), np.asarray(boxes.cls)):
        folder = Path(save_dir) / safe_file_name(result.names.get(int(cls), str(int(cls))), str(int(cls)))
        paths.append(write_new_jpeg(crop_box(result.orig_img, tuple(box)), folder, stem))
    return paths
