"""Content digest and file manifest of a dataset split, for lineage.

The digest is sha256 over, for each image sorted by its path relative to the images' common folder:
the relative path, the labels (class ids and boxes/polygons printed with 6 decimals, so float noise in a cache
does not change it; a classification record's class index) and the sha256 of the image file's bytes
(``image_hash="content"``, the default) or only its byte size (``image_hash="size"``, fast for large datasets but
blind to same-size edits). Moving the dataset to another folder or bucket keeps the digest.

A dataset on S3 is identified without downloading it: :func:`s3_dataset_digest` hashes the listing of the prefix
that holds all its files (each key relative to the prefix, its ETag and size; see :func:`listing_digest`). It is a
different digest from the content digest of the same files on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml

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


def listing_digest(objects: Iterable[tuple[str, str, int]]) -> str:
    """Hex sha256 of an object-store listing: ``(key relative to the dataset's prefix, ETag, size)`` per object.

    Order-independent; ETag quotes are ignored (stores differ on them). An object uploaded again with the same bytes
    keeps its ETag, except a multipart upload with another part size, which changes the digest.

    Example:
        >>> listing_digest([("images/a.jpg", '"9b2c"', 1234)]) == listing_digest([("images/a.jpg", "9b2c", 1234)])
        True
    """
    digest = hashlib.sha256(b"yolov12-listing-digest-v1\n")
    for key, etag, size in sorted((key, etag.strip('"'), int(size)) for key, etag, size in objects):
        digest.update(json.dumps([key, etag, size]).encode() + b"\n")
    return digest.hexdigest()


def s3_dataset_digest(data: str) -> str | None:
    """:func:`listing_digest` of an ``s3://`` dataset (a data.yaml or a folder), downloading only its data.yaml.

    Returns None when the dataset's files may lie outside one S3 prefix (a local ``path``; a split entry that is
    absolute, climbs with ``..``, names another prefix, or is a YOLO ``.txt`` list, whose lines could point anywhere;
    a single object that is not a data.yaml): the caller then digests the downloaded files instead.

    Raises:
        DatasetNotFoundError: the data.yaml does not exist.
        RemoteStorageError: listing or reading failed.
    """
    from yolov12.data import remote  # noqa: PLC0415 - boto3 only when S3 is used
    from yolov12.data.errors import DatasetNotFoundError  # noqa: PLC0415

    if data.lower().endswith((".yaml", ".yml")):
        root = _s3_yaml_root(data, remote.fetch_object(data))
        return None if root is None else listing_digest(remote.list_prefix(root))
    root = data.rstrip("/")
    try:
        listing = remote.list_prefix(root)
    except DatasetNotFoundError:
        return None  # a single object (a COCO json, ...) or nothing: loading the dataset decides
    inner = next((name for name in ("data.yaml", "data.yml") if any(key == name for key, _, _ in listing)), None)
    if inner is not None and _s3_yaml_root(f"{root}/{inner}", remote.fetch_object(f"{root}/{inner}")) != root:
        return None
    return listing_digest(listing)


def _s3_yaml_root(uri: str, local: Path) -> str | None:
    """The ``s3://`` prefix holding every file the data.yaml ``uri`` (downloaded to ``local``) names, or None."""
    try:
        raw = yaml.safe_load(local.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return None  # not ours to report: loading the dataset names the problem
    if not isinstance(raw, dict):
        return None
    root = _root_prefix(uri.rsplit("/", 1)[0], str(raw.get("path") or "."))
    yolo = str(raw.get("format", "yolo")) == "yolo"
    entries = [leaf for split in ("train", "val", "test") for leaf in _leaves(raw.get(split))]
    if root is None or not all(_entry_inside(entry, root, yolo) for entry in entries):
        return None
    return root


def _root_prefix(base: str, path: str) -> str | None:
    """The dataset root a data.yaml in ``base`` names with ``path`` (as the dataset loader resolves it), or None."""
    if path.startswith("s3://"):
        return path.rstrip("/")
    if not _stays_inside(path):
        return None
    relative = posixpath.normpath(path)
    return base if relative == "." else f"{base}/{relative}"


def _entry_inside(entry: str, root: str, yolo: bool) -> bool:
    if yolo and entry.lower().endswith(".txt"):
        return False
    return entry.startswith(root + "/") if entry.startswith("s3://") else _stays_inside(entry)


def _stays_inside(path: str) -> bool:
    """A relative path without ``..``: it names something under the folder it is joined to."""
    return "://" not in path and not Path(path).expanduser().is_absolute() and ".." not in Path(path).parts


def _leaves(value: Any) -> Iterator[str]:
    """Every string in a split entry (a path, a list of paths, or a ``{images: ..., annotations: ...}`` mapping)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _leaves(item)
    elif value is not None:
        yield str(value)
