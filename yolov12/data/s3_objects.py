"""``s3://`` objects as the in-place split readers see them: listings of safe keys, GETs with one-line errors, and
what a listed split is (:class:`S3SplitListing`). Shared by the YOLO (:mod:`yolov12.data.s3_split`) and COCO
(:mod:`yolov12.data.s3_coco`) readers.

Credentials, region and endpoint come from the environment, through :func:`yolov12.data.remote.s3_client`.
"""

from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from yolov12.data.digest import listing_digest
from yolov12.data.errors import DatasetError, DatasetNotFoundError, RemoteStorageError, UnsafeObjectKeyError
from yolov12.data.label_report import LabelReport
from yolov12.data.mirror_state import RESERVED_NAMES
from yolov12.data.object_keys import key_problem
from yolov12.data.verify import RepairedRows

logger = logging.getLogger(__name__)

_NOT_FOUND = ("404", "NoSuchKey", "NotFound")
ObjectEntry = tuple[str, str, int]  # (s3:// URI, ETag, size)


@dataclass(frozen=True)
class ListedImage:
    """One image of a listed split: its ``s3://`` URI, ETag and size, and its checked label rows."""

    uri: str
    etag: str
    size: int
    rows: RepairedRows


@dataclass(frozen=True)
class S3SplitListing:
    """What a split reader (:func:`yolov12.data.s3_split.list_s3_split`) found.

    Attributes:
        root: the dataset's ``s3://`` prefix (``path`` of the data.yaml).
        names: class names, index = class id.
        images: the split's images in key order, each with its label rows.
        objects: every image and label object read, as ``(key relative to root, ETag, size)`` (an object outside
            the root keeps its full ``s3://`` URI): what :attr:`digest` hashes.
        report: counts of what the label checks dropped or repaired (its summary line has been logged).
        refused: ``s3://`` URIs of the objects skipped because their keys cannot be safe paths.
    """

    root: str
    names: tuple[str, ...]
    images: list[ListedImage]
    objects: list[tuple[str, str, int]]
    report: LabelReport
    refused: list[str]

    @property
    def digest(self) -> str:
        """:func:`~yolov12.data.digest.listing_digest` of :attr:`objects`: the split's identity for lineage."""
        return listing_digest(self.objects)


def join_uri(base: str, entry: str, source: str, what: str) -> str:
    """``entry`` (an ``s3://`` URI or a path relative to ``base``) as an ``s3://`` URI without a trailing ``/``."""
    if entry.startswith("s3://"):
        return entry.rstrip("/")
    if "://" in entry or entry.startswith(("/", "~", "\\")) or ".." in PurePosixPath(entry).parts:
        raise DatasetError(f"{source}: {what} {entry!r} does not name a place on S3; to be read in place a dataset "
                           "names its files relative to its data.yaml (without '..') or as s3:// URIs")
    relative = posixpath.normpath(entry)
    return base if relative == "." else f"{base}/{relative}"


def relative_key(root: str, uri: str) -> str:
    """``uri`` relative to the dataset prefix ``root`` (unchanged when it lies outside it), as digests record it."""
    return uri[len(root) + 1:] if uri.startswith(root + "/") else uri


def list_prefix(client: Any, uri: str, refused: list[str]) -> list[ObjectEntry]:
    """Every object under the prefix ``uri`` whose key is a safe path; the others are logged and added to
    ``refused``. Folder markers are left out."""
    from yolov12.data import remote  # noqa: PLC0415

    bucket, key = remote.split_s3_uri(uri)
    prefix = key.strip("/") + "/" if key.strip("/") else ""
    found = []
    for object_key, (etag, size) in remote.iter_objects(client, bucket, prefix, uri):
        problem = key_problem(object_key, prefix, RESERVED_NAMES)
        if problem:
            logger.warning("s3 split %s: skipping an object: %s", uri,
                           UnsafeObjectKeyError(bucket, object_key, problem))
            refused.append(f"s3://{bucket}/{object_key}")
            continue
        found.append((f"s3://{bucket}/{object_key}", etag, size))
    return found


def get_object(client: Any, bucket: str, key: str, uri: str) -> dict[str, Any]:
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - boto3 only when S3 is used

    try:
        return client.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _NOT_FOUND:
            raise DatasetNotFoundError(f"{uri} does not exist (removed or renamed since it was listed?)") from None
        raise RemoteStorageError(explain_failure("read", uri, exc)) from None
    except BotoCoreError as exc:
        raise RemoteStorageError(explain_failure("read", uri, exc)) from None


def read_body(response: dict[str, Any], uri: str) -> bytes:
    from botocore.exceptions import BotoCoreError  # noqa: PLC0415 - boto3 only when S3 is used

    try:
        return response["Body"].read()
    except BotoCoreError as exc:
        raise RemoteStorageError(explain_failure("read", uri, exc)) from None


def object_exists(client: Any, uri: str) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - boto3 only when S3 is used

    from yolov12.data import remote  # noqa: PLC0415

    bucket, key = remote.split_s3_uri(uri)
    try:
        client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _NOT_FOUND:
            return False
        raise RemoteStorageError(explain_failure("read", uri, exc)) from None
    except BotoCoreError as exc:
        raise RemoteStorageError(explain_failure("read", uri, exc)) from None
    return True


def explain_failure(action: str, uri: str, exc: Exception) -> str:
    return (f"cannot {action} {uri}: {exc}; check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), "
            "AWS_ENDPOINT_URL_S3 for S3-compatible stores, and that the bucket and prefix exist")
