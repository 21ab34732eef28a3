"""The label cache of one split: a JSON file keyed by a hash of the source files' names, sizes and mtimes.

Written atomically (temporary file + ``os.replace``). When the folder is read-only the cache lives in this
process's memory instead, and that is logged once per cache path. JSON keeps the cache plain data (no pickles);
float32 values round-trip exactly through Python floats.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from yolov12.data.types import LabelRecord
from yolov12.utils.atomic import atomic_write

logger = logging.getLogger(__name__)

CACHE_VERSION = 1
_memory: dict[str, dict[str, Any]] = {}
_warned_read_only: set[str] = set()
_lock = threading.Lock()


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


def record_from_json(data: dict[str, Any]) -> LabelRecord:
    """Inverse of :func:`record_to_json`."""
    segments = data.get("segments")
    difficult = data.get("difficult")
    return LabelRecord(
        path=data["path"],
        height=int(data["height"]),
        width=int(data["width"]),
        classes=np.asarray(data["classes"], np.int64),
        boxes_xywhn=np.asarray(data["boxes"], np.float32).reshape(-1, 4),
        segments=None if segments is None else [np.asarray(s, np.float32).reshape(-1, 2) for s in segments],
        difficult=None if difficult is None else np.asarray(difficult, bool),
    )
