"""The label cache of one split: a JSON file keyed by a hash of the source files' names, sizes and mtimes.

Written atomically (temporary file + ``os.replace``). When the folder is read-only the cache lives in this
process's memory instead, and that is logged once per cache path. JSON keeps the cache plain data (no pickles);
float32 values round-trip exactly through Python floats.

A cache is read through :func:`read_cached_labels`, which checks the structure of every record and of the report: a
file that parses but is not what :func:`write_cache` wrote (missing keys, wrong types, boxes that do not fit their
classes) is a miss, logged in one line, and the split is verified and the cache rewritten.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from yolov12.data.label_report import LabelReport
from yolov12.data.types import LabelRecord
from yolov12.utils.atomic import atomic_write

logger = logging.getLogger(__name__)

CACHE_VERSION = 1
_memory: dict[str, dict[str, Any]] = {}
_warned_read_only: set[str] = set()
_lock = threading.Lock()
_REPORT_NOT_STORED = ("cache_path", "from_cache")  # set by the reader, never taken from the file


class MalformedCacheError(ValueError):
    """A label cache parses as JSON but does not have the structure :func:`write_cache` writes."""


def files_hash(files: Iterable[Path], salt: str = "") -> str:
    """sha256 over ``path, size, mtime_ns`` of each file (-1 for missing files) and ``salt``."""
    digest = hashlib.sha256(f"v{CACHE_VERSION}|{salt}".encode())
    for path in files:
        try:
            stat = os.stat(path)
            digest.update(f"{path}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}\t-1\n".encode())
    return digest.hexdigest()


def read_cache(path: Path, key: str) -> dict[str, Any] | None:
    """The cached payload when its key matches, else None (missing, stale, unreadable or another version)."""
    with _lock:
        payload = _memory.get(str(path))
    if payload is None:
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
    if not isinstance(payload, dict) or payload.get("version") != CACHE_VERSION or payload.get("hash") != key:
        return None
    return payload


def write_cache(path: Path, payload: dict[str, Any]) -> Path | None:
    """Write ``payload`` atomically; returns the path, or None when it had to stay in memory (read-only folder)."""
    payload = {"version": CACHE_VERSION, **payload}
    text = json.dumps(payload, separators=(",", ":"))
    try:
        with atomic_write(path, "w", durable=False) as stream:  # a cache: rebuilt if lost
            stream.write(text)
    except OSError as exc:
        with _lock:
            _memory[str(path)] = payload
            first = str(path) not in _warned_read_only
            _warned_read_only.add(str(path))
        if first:
            logger.warning("cannot write label cache %s (%s); keeping it in memory for this process", path, exc)
        return None
    with _lock:
        _memory.pop(str(path), None)
    return path


def record_to_json(record: LabelRecord) -> dict[str, Any]:
    """Plain-data form of a record."""
    return {
        "path": record.path,
        "height": record.height,
        "width": record.width,
        "classes": record.classes.tolist(),
        "boxes": record.boxes_xywhn.tolist(),
        "segments": None if record.segments is None else [s.tolist() for s in record.segments],
        "difficult": None if record.difficult is None else record.difficult.tolist(),
    }


def read_cached_labels(path: Path, key: str,
                       num_classes: int | None = None) -> tuple[list[LabelRecord], LabelReport] | None:
    """Records and report of the cache at ``path`` when it is up to date (see :func:`read_cache`) and well formed.

    A malformed cache (valid JSON, wrong structure; class ids outside ``0..num_classes-1`` when given) is a miss
    like a stale one, said in one warning line: the caller verifies the split again and rewrites the cache.
    """
    payload = read_cache(path, key)
    if payload is None:
        return None
    try:
        records = records_from_json(payload.get("records"), num_classes)
        report = report_from_json(payload.get("report"))
    except MalformedCacheError as exc:
        logger.warning("label cache %s is malformed (%s); rebuilding it", path, exc)
        return None
    return records, report


def records_from_json(items: Any, num_classes: int | None = None) -> list[LabelRecord]:
    """The ``records`` list of a cache -> records; :class:`MalformedCacheError` says which record is wrong."""
    if not isinstance(items, list):
        raise MalformedCacheError(f"'records' is {type(items).__name__}, not a list")
    records = []
    for index, item in enumerate(items):
        try:
            records.append(record_from_json(item, check_values=False))
        except MalformedCacheError as exc:
            raise MalformedCacheError(f"record {index}: {exc}") from None
    if records:  # the value ranges of all records at once: per record they would double the read time
        problem = _value_problem(np.concatenate([r.classes for r in records]),
                                 np.concatenate([r.boxes_xywhn for r in records]), num_classes)
        if problem:
            raise MalformedCacheError(problem)
    return records


def record_from_json(data: Any, num_classes: int | None = None, check_values: bool = True) -> LabelRecord:
    """Inverse of :func:`record_to_json`; :class:`MalformedCacheError` when ``data`` is not what it writes.

    ``check_values``: also check class ids (``0..num_classes-1`` when given) and boxes (within [0, 1]).
    """
    if not isinstance(data, dict):
        raise MalformedCacheError(f"{type(data).__name__}, not an object")
    path, height, width = data.get("path"), data.get("height"), data.get("width")
    if not isinstance(path, str):
        raise MalformedCacheError("'path' is not a string")
    if not (type(height) is int and type(width) is int and height > 0 and width > 0):
        raise MalformedCacheError(f"image size {height!r} x {width!r} is not two positive integers")
    classes = _array(data, "classes", np.int64, (-1,))
    boxes = _array(data, "boxes", np.float32, (-1, 4))
    if len(boxes) != len(classes):
        raise MalformedCacheError(f"{len(classes)} classes for {len(boxes)} boxes")
    if check_values and (problem := _value_problem(classes, boxes, num_classes)):
        raise MalformedCacheError(problem)
    return LabelRecord(path=path, height=height, width=width, classes=classes, boxes_xywhn=boxes,
                       segments=_segments(data.get("segments"), len(classes)),
                       difficult=_optional_flags(data, len(classes)))


def _value_problem(classes: np.ndarray, boxes: np.ndarray, num_classes: int | None) -> str:
    """What is wrong with (n,) class ids and (n, 4) normalised boxes ('' when nothing)."""
    if classes.size and (classes.min() < 0 or (num_classes is not None and classes.max() >= num_classes)):
        return f"class ids {classes.min()}..{classes.max()} outside 0..{(num_classes or 1) - 1}"
    if boxes.size and not ((boxes >= 0.0) & (boxes <= 1.0)).all():  # NaN fails too
        return "boxes outside [0, 1]"
    return ""


def _array(data: dict[str, Any], key: str, dtype: type, shape: tuple[int, ...]) -> np.ndarray:
    """``data[key]`` as an array of ``dtype`` reshaped to ``shape``; :class:`MalformedCacheError` if it is not one."""
    if key not in data:
        raise MalformedCacheError(f"no '{key}'")
    value = data[key]
    if not isinstance(value, list):
        raise MalformedCacheError(f"'{key}' is {type(value).__name__}, not a list")
    try:
        return np.asarray(value, dtype).reshape(shape)
    except (TypeError, ValueError, OverflowError) as exc:
        reason = str(exc).split(". ")[0]
        raise MalformedCacheError(f"'{key}' is not a {dtype.__name__} array of shape {shape}: {reason}") from None


def _segments(value: Any, count: int) -> list[np.ndarray] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != count:
        raise MalformedCacheError(f"'segments' is not a list of {count} polygons")
    return [_array({"segment": s}, "segment", np.float32, (-1, 2)) for s in value]


def _optional_flags(data: dict[str, Any], count: int) -> np.ndarray | None:
    if data.get("difficult") is None:
        return None
    flags = _array(data, "difficult", np.bool_, (-1,))
    if len(flags) != count:
        raise MalformedCacheError(f"{len(flags)} 'difficult' flags for {count} boxes")
    return flags


def report_from_json(data: Any) -> LabelReport:
    """The ``report`` of a cache -> :class:`LabelReport`; :class:`MalformedCacheError` when a field has the wrong
    type (counts: non-negative integers, ``split``: text, ``problems``: kind -> list of file names)."""
    if not isinstance(data, dict):
        raise MalformedCacheError(f"'report' is {type(data).__name__}, not an object")
    defaults = LabelReport()
    for field in fields(LabelReport):
        if field.name not in data or field.name in _REPORT_NOT_STORED:
            continue
        value, default = data[field.name], getattr(defaults, field.name)
        if not _same_kind(value, default):
            raise MalformedCacheError(f"report field '{field.name}' is {value!r:.40}")
    return LabelReport.from_dict({k: v for k, v in data.items() if k not in _REPORT_NOT_STORED})


def _same_kind(value: Any, default: Any) -> bool:
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, dict):
        return isinstance(value, dict) and all(
            isinstance(files, list) and all(isinstance(f, str) for f in files) for files in value.values())
    return type(value) is int and value >= 0
