"""``s3://bucket/prefix`` datasets: download once into a local mirror, keyed by ETag.

The mirror lives at ``$YOLOV12_CACHE/s3/<bucket>/<key>`` (``$YOLOV12_CACHE`` defaults to
``~/.cache/yolov12-platform``). A manifest per bucket remembers each object's ETag and size: unchanged objects are
skipped, changed ones downloaded again, objects deleted from the prefix removed locally. A file lock per bucket makes
concurrent processes (DDP ranks, Ray workers on one node) take turns. Credentials, region and endpoint come from the
usual AWS environment variables and files (``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3`` select any S3-compatible
store), as boto3 reads them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

from yolov12.data.errors import DatasetNotFoundError, RemoteStorageError
from yolov12.utils.extras import extra_imports

with extra_imports("s3", "s3:// datasets"):  # boto3: the [s3] extra (also in [mlflow] and [ray])
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

logger = logging.getLogger(__name__)

S3_SCHEME = "s3://"
MANIFEST_NAME = ".yolov12-s3-manifest.json"


def is_s3(path: str | os.PathLike) -> bool:
    """True for ``s3://...`` strings."""
    return str(path).startswith(S3_SCHEME)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> (``bucket``, ``a/b``); raises :class:`RemoteStorageError` for malformed URIs."""
    if not is_s3(uri):
        raise RemoteStorageError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[len(S3_SCHEME):].partition("/")
    if not bucket:
        raise RemoteStorageError(f"{uri!r} has no bucket; expected s3://bucket/prefix")
    if any(part == ".." for part in PurePosixPath(key).parts):
        raise RemoteStorageError(f"{uri!r} contains '..'; use a plain prefix")
    return bucket, key


def cache_root() -> Path:
    """``$YOLOV12_CACHE`` or ``~/.cache/yolov12-platform`` (read when called, never at import)."""
    return Path(os.environ.get("YOLOV12_CACHE") or Path.home() / ".cache" / "yolov12-platform")


def local_path(uri: str) -> Path:
    """Where the object or prefix ``uri`` lives in the local mirror (nothing is downloaded)."""
    bucket, key = split_s3_uri(uri)
    return cache_root() / "s3" / bucket / key.strip("/")


@dataclass
class SyncReport:
    """Outcome of :func:`sync_prefix`: objects downloaded, skipped (ETag unchanged), removed; the local folder."""

    local: Path
    downloaded: int = 0
    skipped: int = 0
    removed: int = 0


_CLIENT_ENVIRONMENT = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION",
    "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE",
)


def s3_client() -> Any:
    """A boto3 S3 client configured from the environment (``AWS_ENDPOINT_URL_S3``, credentials, region).

    Clients are reused while those environment variables keep their values (creating one takes ~0.1-1 s).
    """
    return _client_for(tuple(os.environ.get(name) for name in _CLIENT_ENVIRONMENT))


@lru_cache(maxsize=4)
def _client_for(environment: tuple[str | None, ...]) -> Any:
    settings = dict(zip(_CLIENT_ENVIRONMENT, environment))
    region = settings["AWS_REGION"] or settings["AWS_DEFAULT_REGION"] or None
    return boto3.session.Session().client("s3", region_name=region)


def sync_prefix(uri: str, client: Any | None = None) -> SyncReport:
    """Mirror every object under ``uri`` (treated as a folder) into :func:`local_path`.

    Raises:
        DatasetNotFoundError: nothing is stored under the prefix.
        RemoteStorageError: listing or downloading failed (credentials, endpoint, permissions).
    """
    bucket, key = split_s3_uri(uri)
    prefix = key.strip("/") + "/" if key.strip("/") else ""
    client = client or s3_client()
    report = SyncReport(local=local_path(uri))
    with _bucket_lock(bucket) as manifest:
        listed = dict(_list_objects(client, bucket, prefix, uri))
        if not listed:
            raise DatasetNotFoundError(f"nothing is stored under {uri}; check the bucket and prefix")
        for object_key, (etag, size) in listed.items():
            if _download_if_changed(client, bucket, object_key, etag, size, manifest):
                report.downloaded += 1
            else:
                report.skipped += 1
        for object_key in [k for k in manifest if k.startswith(prefix) and k not in listed]:
            _mirror_path(bucket, object_key).unlink(missing_ok=True)
            del manifest[object_key]
            report.removed += 1
    logger.info("s3 sync %s -> %s: %d downloaded, %d unchanged, %d removed", uri, report.local, report.downloaded,
                report.skipped, report.removed)
    return report


def fetch_object(uri: str, client: Any | None = None) -> Path:
    """Download the single object ``uri`` unless the mirror already has it with the same ETag; its local path."""
    bucket, key = split_s3_uri(uri)
    client = client or s3_client()
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if _is_not_found(exc):
            raise DatasetNotFoundError(f"{uri} does not exist") from None
        raise RemoteStorageError(_explain("read", uri, exc)) from None
    except BotoCoreError as exc:
        raise RemoteStorageError(_explain("read", uri, exc)) from None
    with _bucket_lock(bucket) as manifest:
        _download_if_changed(client, bucket, key, head["ETag"], int(head["ContentLength"]), manifest)
    return _mirror_path(bucket, key)


def materialize(uri: str, client: Any | None = None) -> Path:
    """Local path of ``uri``: the object itself when one has exactly this key, else the mirrored prefix."""
    bucket, key = split_s3_uri(uri)
    client = client or s3_client()
    if key and not key.endswith("/"):
        try:
            return fetch_object(uri, client)
        except DatasetNotFoundError:
            pass  # not an object: a folder-like prefix
    return sync_prefix(uri, client).local


def _list_objects(client: Any, bucket: str, prefix: str, uri: str) -> Iterator[tuple[str, tuple[str, int]]]:
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if not item["Key"].endswith("/"):  # folder markers written by some tools
                    yield item["Key"], (item["ETag"], int(item["Size"]))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            raise DatasetNotFoundError(f"bucket of {uri} does not exist") from None
        raise RemoteStorageError(_explain("list", uri, exc)) from None
    except BotoCoreError as exc:
        raise RemoteStorageError(_explain("list", uri, exc)) from None


def _download_if_changed(client: Any, bucket: str, key: str, etag: str, size: int, manifest: dict) -> bool:
    """Download ``key`` unless the manifest and the file agree on ETag and size; True when downloaded."""
    target = _mirror_path(bucket, key)
    known = manifest.get(key, {})
    if known.get("etag") == etag and target.is_file() and target.stat().st_size == size:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(handle)
    try:
        client.download_file(bucket, key, temporary)
        os.replace(temporary, target)
    except (ClientError, BotoCoreError) as exc:
        raise RemoteStorageError(_explain("download", f"{S3_SCHEME}{bucket}/{key}", exc)) from None
    finally:
        Path(temporary).unlink(missing_ok=True)
    manifest[key] = {"etag": etag, "size": size}
    return True


def _mirror_path(bucket: str, key: str) -> Path:
    if any(part == ".." for part in PurePosixPath(key).parts):
        raise RemoteStorageError(f"refusing object key {key!r} of bucket {bucket!r}: it would leave the cache folder")
    return cache_root() / "s3" / bucket / key


@contextlib.contextmanager
def _bucket_lock(bucket: str) -> Iterator[dict[str, dict]]:
    """Hold the bucket's file lock; yields its manifest (key -> {etag, size}) and saves it atomically on exit."""
    folder = cache_root() / "s3" / bucket
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = folder / MANIFEST_NAME
        try:
            manifest = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        except ValueError:
            logger.warning("s3 manifest %s is unreadable; every object will be downloaded again", path)
            manifest = {}
        try:
            yield manifest
        finally:
            handle, temporary = tempfile.mkstemp(prefix=f".{MANIFEST_NAME}.", dir=folder)
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(manifest, stream, indent=0, sort_keys=True)
            os.replace(temporary, path)


def _is_not_found(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


def _explain(action: str, uri: str, exc: Exception) -> str:
    return (
        f"cannot {action} {uri}: {exc}; check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), "
        "AWS_ENDPOINT_URL_S3 for S3-compatible stores, and that the bucket and prefix exist"
    )
