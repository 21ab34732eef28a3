"""Inputs and outputs of ``pipelines.batch_predict``: the source listing, its shards, and the output folder.

Input: an ``s3://bucket/prefix`` or a local folder, listed once by the driver (recursively; files with an image
suffix are predicted). The listing's digest identifies the input in lineage: for S3 it is the
:func:`yolov12.data.digest.listing_digest` of every object under the prefix (key, ETag, size), the digest
``s3_dataset_digest`` gives for a dataset folder; for a local folder the same digest of every file's relative
name and size.

Output: one Parquet part per shard of ``shard_size`` images (the sorted listing cut in order), named
``part-<index>-<digest of its images>.parquet``. A part is written whole or not at all (S3: one PUT; local: a
temporary file renamed into place), so an existing part is a complete one and a rerun skips it. ``_job.json`` (the
model version and settings) is written first, and once parts exist a run with other settings is refused;
``_bad_images.txt`` (``path<TAB>reason`` per image that could not be predicted), the optional
``_predictions_coco.json`` and ``_SUCCESS`` (the totals) are written last. Their names start with ``_`` so that
readers of a Parquet folder (pyarrow, pandas, Spark, Ray Data) skip them. A finished output whose listing did not
change is left untouched by a rerun; parts of images no longer listed as they were are removed when the job
finishes.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.batch_predict_worker import OUTPUT_SCHEMA, BatchPredictError, first_line
from yolov12.data.digest import listing_digest
from yolov12.data.remote import is_s3, split_s3_uri
from yolov12.infer.image_io import decoded_byte_limit
from yolov12.infer.sources import IMAGE_SUFFIXES

logger = logging.getLogger(__name__)

JOB_FILE = "_job.json"
SUCCESS_FILE = "_SUCCESS"
BAD_IMAGES_FILE = "_bad_images.txt"  # "_": readers of a Parquet folder (pyarrow, pandas, Spark, Ray) skip it
COCO_FILE = "_predictions_coco.json"
PART_PREFIX, PART_SUFFIX = "part-", ".parquet"


@dataclass(frozen=True)
class InputImage:
    """One image of the listing: ``uri`` is what output rows call it, ``read_path`` what the Ray reader opens
    (``bucket/key`` on S3's filesystem, the absolute path locally)."""

    uri: str
    read_path: str
    size: int
    etag: str = ""


@dataclass(frozen=True)
class InputListing:
    """The images of a source, in sorted order, and the digest of the whole listing (images and other files)."""

    source: str
    images: tuple[InputImage, ...]
    digest: str
    other_files: int


def list_source(source: str) -> InputListing:
    """List ``source`` (``s3://bucket/prefix`` or a local folder) once; nothing is downloaded.

    Raises:
        BatchPredictError: a local source that is not a folder, or a source without any image.
        DatasetNotFoundError / RemoteStorageError: nothing under the prefix, or listing failed.
    """
    listing = _list_s3(source) if is_s3(source) else _list_folder(source)
    if not listing.images:
        raise BatchPredictError(f"source={source} holds no image ({listing.other_files} other file(s)); images end "
                                f"in {', '.join(IMAGE_SUFFIXES)}")
    return listing


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def _list_s3(source: str) -> InputListing:
    from yolov12.data import remote  # noqa: PLC0415 - boto3 only for S3 sources

    bucket, key = split_s3_uri(source)
    root = f"{bucket}/{key.strip('/')}".rstrip("/")
    entries = remote.list_prefix(source)
    images = tuple(InputImage(f"s3://{root}/{name}", f"{root}/{name}", size, etag.strip('"'))
                   for name, etag, size in entries if _is_image(name))
    return InputListing(source, images, listing_digest(entries), len(entries) - len(images))


def _list_folder(source: str) -> InputListing:
    folder = Path(source).expanduser().resolve()
    if not folder.is_dir():
        raise BatchPredictError(f"source={source} is not a folder; give a folder of images or s3://bucket/prefix")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    entries = [(p.relative_to(folder).as_posix(), "", p.stat().st_size) for p in files]
    images = tuple(InputImage(str(p), str(p), size) for p, (_, _, size) in zip(files, entries) if _is_image(p.name))
    return InputListing(source, images, listing_digest(entries), len(entries) - len(images))


def oversized(image: InputImage) -> str | None:
    """Why ``image`` is refused without reading it (a file larger than an image may decode to), else None."""
    limit = decoded_byte_limit()
    if image.size > limit:
        return (f"image {image.uri} is a {image.size}-byte file, above the {limit}-byte limit of what an image may "
                "decode to; it was not read")
    return None


@dataclass(frozen=True)
class Shard:
    """``images`` (consecutive in the sorted listing) that become the Parquet part ``name``."""

    index: int
    images: tuple[InputImage, ...]
    name: str


def part_name(index: int, images: Sequence[InputImage]) -> str:
    """``part-00003-<12 hex digits>.parquet``: the digest of the images' URIs, ETags and sizes, so a shard whose
    images changed gets a new name."""
    digest = hashlib.sha256()
    for image in images:
        digest.update(json.dumps([image.uri, image.etag, image.size]).encode() + b"\n")
    return f"{PART_PREFIX}{index:05d}-{digest.hexdigest()[:12]}{PART_SUFFIX}"


def plan_shards(images: Sequence[InputImage], shard_size: int) -> list[Shard]:
    """Cut the sorted listing into shards of ``shard_size`` images (the last one may be smaller)."""
    shards = []
    for index, start in enumerate(range(0, len(images), shard_size)):
        members = tuple(images[start:start + shard_size])
        shards.append(Shard(index, members, part_name(index, members)))
    return shards


def is_part(name: str) -> bool:
    """True for the name of a Parquet part of this job's naming."""
    return name.startswith(PART_PREFIX) and name.endswith(PART_SUFFIX)


def part_table(rows: Sequence[pa.Table]) -> pa.Table:
    """The rows of one part, in path order (so that a part's content does not depend on arrival order)."""
    table = pa.concat_tables([t.cast(OUTPUT_SCHEMA) for t in rows]) if rows else OUTPUT_SCHEMA.empty_table()
    return table.sort_by("path")


def parquet_bytes(table: pa.Table) -> bytes:
    """``table`` as a Parquet file."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


class OutputFolder:
    """A local folder or ``s3://bucket/prefix`` that takes whole files: write, read, list, delete.

    Args:
        uri: the ``output=`` of the job.
    """

    def __init__(self, uri: str) -> None:
        self.uri = uri.rstrip("/")
        if is_s3(uri):
            self.bucket, key = split_s3_uri(uri)
            self.prefix = f"{key.strip('/')}/" if key.strip("/") else ""
            self.folder: Path | None = None
        else:
            self.folder = Path(uri).expanduser().resolve()
            self.uri = str(self.folder)

    def location(self, name: str) -> str:
        """The full address of file ``name`` in the output."""
        return f"{self.uri}/{name}"

    def names(self) -> set[str]:
        """Names of the files in the output (not in sub-folders); empty when it does not exist yet."""
        if self.folder is not None:
            return {p.name for p in self.folder.iterdir() if p.is_file()} if self.folder.is_dir() else set()
        pages = self._call("list", lambda c: list(c.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix, Delimiter="/")))
        return {item["Key"][len(self.prefix):] for page in pages for item in page.get("Contents", [])}

    def read_bytes(self, name: str) -> bytes | None:
        """The content of file ``name``, or None when it does not exist."""
        if self.folder is not None:
            path = self.folder / name
            return path.read_bytes() if path.is_file() else None
        response = self._call("read", lambda c: c.get_object(Bucket=self.bucket, Key=self.prefix + name),
                              missing_ok=True)
        return None if response is None else response["Body"].read()

    def write(self, name: str, data: bytes) -> None:
        """Write file ``name`` whole: readers see the old file or the new one, never a part of it."""
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            temporary = self.folder / f".{name}.{uuid.uuid4().hex}.tmp"
            try:
                temporary.write_bytes(data)
                os.replace(temporary, self.folder / name)
            finally:
                temporary.unlink(missing_ok=True)
            return
        self._call("write", lambda c: c.put_object(Bucket=self.bucket, Key=self.prefix + name, Body=data))

    def delete(self, name: str) -> None:
        """Remove file ``name`` (nothing happens when it does not exist)."""
        if self.folder is not None:
            (self.folder / name).unlink(missing_ok=True)
            return
        self._call("delete", lambda c: c.delete_object(Bucket=self.bucket, Key=self.prefix + name))

    def read_json(self, name: str) -> Any:
        """File ``name`` parsed as JSON, or None when it does not exist."""
        data = self.read_bytes(name)
        return None if data is None else json.loads(data)

    def write_json(self, name: str, value: Any) -> None:
        self.write(name, json.dumps(value, indent=1, sort_keys=True).encode())

    def read_part(self, name: str, columns: Sequence[str]) -> pa.Table:
        """``columns`` of the Parquet part ``name``."""
        data = self.read_bytes(name)
        if data is None:
            raise BatchPredictError(f"part {self.location(name)} disappeared while the job was finishing; run the "
                                    "job again to write it")
        return pq.read_table(io.BytesIO(data), columns=list(columns))

    def _call(self, action: str, function: Any, missing_ok: bool = False) -> Any:
        """``function(client)``; a missing object gives None with ``missing_ok``, other failures one line."""
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        from yolov12.data import remote  # noqa: PLC0415

        try:
            return function(remote.s3_client())
        except ClientError as exc:
            if missing_ok and exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise BatchPredictError(f"cannot {action} the output {self.uri}: {first_line(exc)}; check the bucket, "
                                    "the credentials and AWS_ENDPOINT_URL") from None
        except BotoCoreError as exc:
            raise BatchPredictError(f"cannot {action} the output {self.uri}: {first_line(exc)}; check the bucket, "
                                    "the credentials and AWS_ENDPOINT_URL") from None


def claim_output(output: OutputFolder, job: dict[str, Any]) -> None:
    """Write ``_job.json`` for an output without parts; refuse an output that holds another job's parts.

    Raises:
        BatchPredictError: naming the settings that differ, or the foreign parts.
    """
    existing = output.read_json(JOB_FILE)
    parts = sorted(n for n in output.names() if is_part(n))
    if existing == job:
        return
    if parts and existing is None:
        raise BatchPredictError(f"output={output.uri} already holds {parts[0]} (and {len(parts) - 1} more) but no "
                                f"{JOB_FILE}: it was not written by a batch prediction job; choose an empty output")
    if parts:
        changed = sorted(k for k in set(job) | set(existing) if job.get(k) != existing.get(k))
        found = ", ".join(f"{k}={existing.get(k)!r} (now {job.get(k)!r})" for k in changed)
        raise BatchPredictError(f"output={output.uri} holds predictions of another job: {found}; choose another "
                                "output=, or delete that folder to predict again")
    output.write_json(JOB_FILE, job)  # a new output, or one whose earlier job wrote no part yet
