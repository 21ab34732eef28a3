"""Content digest and file manifest of a dataset split, for lineage.

The digest is sha256 over, for each image sorted by its path relative to the images' common folder:
the relative path, the labels (class ids and boxes/polygons printed with 6 decimals, so float noise in a cache
does not change it; a classification record's class index) and the sha256 of the image file's bytes
(``image_hash="content"``, the default) or only its byte size (``image_hash="size"``, fast for large datasets but
blind to same-size edits). Moving the dataset to another folder or bucket keeps the digest.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from yolov12.data.types import ClassificationRecord, LabelRecord

ImageHash = Literal["content", "size"]
_CHUNK = 1 << 20


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def label_text(record: LabelRecord | ClassificationRecord) -> str:
    """Canonical text of a record's labels (what the digest hashes)."""
    if isinstance(record, ClassificationRecord):
        return str(record.label)
    rows = [f"{c} " + " ".join(f"{v:.6f}" for v in box) for c, box in zip(record.classes, record.boxes_xywhn)]
    if record.segments is not None:
        rows += ["s " + " ".join(f"{v:.6f}" for v in segment.reshape(-1)) for segment in record.segments]
    return "\n".join(rows)


def _relative_paths(records: Sequence[LabelRecord | ClassificationRecord]) -> list[str]:
    paths = [os.path.abspath(r.path) for r in records]
    if not paths:
        return []
    root = os.path.commonpath(paths) if len(paths) > 1 else os.path.dirname(paths[0])
    return [Path(os.path.relpath(p, root)).as_posix() for p in paths]


def manifest(records: Sequence[LabelRecord | ClassificationRecord]) -> list[dict]:
    """One row per image, sorted by relative path: ``{path, sha256, boxes}`` (``label`` for classification).

    Example:
        >>> manifest(records)[0]  # doctest: +SKIP
        {'path': 'images/train/train_0000.jpg', 'sha256': '9f2c...', 'boxes': 3}
    """
    rows = []
    for relative, record in sorted(zip(_relative_paths(records), records), key=lambda pair: pair[0]):
        row: dict = {"path": relative, "sha256": file_sha256(record.path)}
        if isinstance(record, ClassificationRecord):
            row["label"] = record.label
        else:
            row["boxes"] = len(record)
        rows.append(row)
    return rows


def dataset_digest(records: Sequence[LabelRecord | ClassificationRecord], image_hash: ImageHash = "content") -> str:
    """Hex sha256 identifying the split's images and labels (see the module docstring for what it covers).

    Args:
        records: the split's records (``load_labels`` or a classification dataset's ``records``).
        image_hash: ``content`` hashes every image's bytes; ``size`` uses the byte size only.
    """
    if image_hash not in ("content", "size"):
        raise ValueError(f"image_hash must be 'content' or 'size', got {image_hash!r}")
    digest = hashlib.sha256(f"yolov12-dataset-digest-v1|{image_hash}\n".encode())
    for relative, record in sorted(zip(_relative_paths(records), records), key=lambda pair: pair[0]):
        token = file_sha256(record.path) if image_hash == "content" else str(os.path.getsize(record.path))
        digest.update(f"{relative}\0{label_text(record)}\0{token}\n".encode())
    return digest.hexdigest()
