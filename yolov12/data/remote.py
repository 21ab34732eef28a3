"""``s3://bucket/prefix`` datasets: download once per machine into a local mirror, keyed by ETag.

The mirror lives at ``$YOLOV12_CACHE/s3/<bucket>/<key>`` (``$YOLOV12_CACHE`` defaults to
``~/.cache/yolov12-platform``). A manifest per bucket remembers each object's ETag and size: unchanged objects are
skipped, changed ones downloaded again, objects deleted from the prefix removed locally.

- Once per node: a file lock per bucket makes concurrent processes (DDP ranks, Ray workers on one node) take turns;
  the first downloads, the others then find every object current.
- In parallel: the lock holder downloads with a bounded pool of threads (``$YOLOV12_S3_THREADS``, default 16).
- Resumable: each finished object is appended to a journal beside the manifest at once, and the journal is folded
  into the manifest when the lock is released; a killed process (``kill -9``, a preempted node) leaves the journal,
  and the next sync skips what it records.
- Safe keys: a key becomes a path only through :mod:`yolov12.data.object_keys`. A listed key that cannot be a safe
  local path is skipped with a warning (counted in :class:`SyncReport`); a key named directly is refused with
  :class:`UnsafeObjectKeyError`.

Credentials, region and endpoint come from the usual AWS environment variables and files (``AWS_ENDPOINT_URL`` /
``AWS_ENDPOINT_URL_S3`` select any S3-compatible store), as boto3 reads them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

from yolov12.data.errors import DatasetNotFoundError, RemoteStorageError, UnsafeObjectKeyError
from yolov12.data.mirror_state import RESERVED_NAMES, MirrorState, bucket_lock
from yolov12.data.object_keys import key_problem, path_inside, safe_relative_path, segment_problem
from yolov12.utils.extras import extra_imports

with extra_imports("s3", "s3:// datasets"):  # boto3: the [s3] extra (also in [mlflow] and [ray])
    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

logger = logging.getLogger(__name__)

S3_SCHEME = "s3://"
THREADS_VARIABLE = "YOLOV12_S3_THREADS"
DEFAULT_THREADS = 16
MAX_CONNECTIONS = 64  # HTTP connections a client keeps: download threads x the few parts each file may fetch
_TRANSFER = TransferConfig(max_concurrency=4)  # parts of one large file fetched at once, on top of the file threads


def is_s3(path: str | os.PathLike) -> bool:
    """True for ``s3://...`` strings."""
    return str(path).startswith(S3_SCHEME)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> (``bucket``, ``a/b``).

    Raises:
        RemoteStorageError: not an ``s3://`` URI, or no bucket, or a bucket name that is not a plain folder name.
        UnsafeObjectKeyError: the key (trailing ``/`` aside) cannot be a local path (``..``, a leading ``/``, ...).
    """
    if not is_s3(uri):
        raise RemoteStorageError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[len(S3_SCHEME):].partition("/")
    if not bucket:
        raise RemoteStorageError(f"{uri!r} has no bucket; expected s3://bucket/prefix")
    problem = segment_problem(bucket)
    if problem:
        raise RemoteStorageError(f"{uri!r}: the bucket name {bucket!r} cannot name a local folder ({problem}); "
                                 "use the bucket's real name")
    if key.rstrip("/"):
        safe_relative_path(bucket, key.rstrip("/"))
    return bucket, key


def cache_root() -> Path:
    """``$YOLOV12_CACHE`` or ``~/.cache/yolov12-platform`` (read when called, never at import)."""
    return Path(os.environ.get("YOLOV12_CACHE") or Path.home() / ".cache" / "yolov12-platform")


def local_path(uri: str) -> Path:
    """Where the object or prefix ``uri`` lives in the local mirror (nothing is downloaded)."""
    bucket, key = split_s3_uri(uri)
    return _mirror_root(bucket) / key.strip("/")


@dataclass
class SyncReport:
    """Outcome of :func:`sync_prefix`: objects downloaded, skipped (ETag unchanged), removed; the local folder.

    ``refused`` counts listed objects whose keys cannot be a safe local path (each logged once as a warning).
    """

    local: Path
    downloaded: int = 0
    skipped: int = 0
    removed: int = 0
    refused: int = 0


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
    return boto3.session.Session().client("s3", region_name=region,
                                          config=Config(max_pool_connections=MAX_CONNECTIONS))


def download_threads() -> int:
    """How many objects a sync downloads at once: ``$YOLOV12_S3_THREADS``, default 16."""
    value = os.environ.get(THREADS_VARIABLE, "").strip()
    if not value:
        return DEFAULT_THREADS
    if not value.isdigit() or int(value) < 1:
        raise RemoteStorageError(f"{THREADS_VARIABLE}={value!r} must be a whole number >= 1 (parallel S3 "
                                 f"downloads); unset it for the default {DEFAULT_THREADS}")
    return int(value)


def sync_prefix(uri: str, client: Any | None = None) -> SyncReport:
    """Mirror every object under ``uri`` (treated as a folder) into :func:`local_path`.

    Raises:
        DatasetNotFoundError: nothing is stored under the prefix.
        RemoteStorageError: listing or downloading failed (credentials, endpoint, permissions); the objects
            finished before the failure stay recorded, so the next sync downloads only the rest.
    """
    bucket, prefix = _bucket_and_prefix(uri)
    client = client or s3_client()
    threads = download_threads()
    report = SyncReport(local=local_path(uri))
    with bucket_lock(_mirror_root(bucket)) as mirror:
        listed = dict(iter_objects(client, bucket, prefix, uri))
        if not listed:
            raise DatasetNotFoundError(f"nothing is stored under {uri}; check the bucket and prefix")
        jobs = _plan_downloads(bucket, prefix, listed, mirror, report, uri)
        _download_all(client, bucket, jobs, mirror, report, uri, threads)
        for object_key in [k for k in mirror.manifest if k.startswith(prefix) and k not in listed]:
            report.removed += _remove_vanished(bucket, object_key, mirror)
    logger.info("s3 sync %s -> %s: %d downloaded, %d unchanged, %d removed, %d refused", uri, report.local,
                report.downloaded, report.skipped, report.removed, report.refused)
    return report


def fetch_object(uri: str, client: Any | None = None) -> Path:
    """Download the single object ``uri`` unless the mirror already has it with the same ETag; its local path.

    Raises:
        UnsafeObjectKeyError: the key cannot be a local path (``..``, a leading ``/``, a name the mirror keeps, ...).
        DatasetNotFoundError: no object has this key.
        RemoteStorageError: reading or downloading failed.
    """
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
    with bucket_lock(_mirror_root(bucket)) as mirror:
        job = _Download(key, head["ETag"], int(head["ContentLength"]), _mirror_path(bucket, key))
        if not _is_current(mirror.manifest.get(key), job):
            _download(client, bucket, mirror, job)
            mirror.record(job.key, job.etag, job.size)
    return job.target


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


def list_prefix(uri: str, client: Any | None = None) -> list[tuple[str, str, int]]:
    """``(key relative to the prefix, ETag, size)`` of each object a sync of ``uri`` would mirror, sorted by key.

    Nothing is downloaded. Folder markers and keys that cannot be local paths are left out, as a sync leaves them.

    Raises:
        DatasetNotFoundError: nothing is stored under the prefix.
        RemoteStorageError: listing failed.
    """
    bucket, prefix = _bucket_and_prefix(uri)
    client = client or s3_client()
    listed = [(key[len(prefix):], etag, size) for key, (etag, size) in iter_objects(client, bucket, prefix, uri)
              if key_problem(key, prefix, RESERVED_NAMES) is None]
    if not listed:
        raise DatasetNotFoundError(f"nothing is stored under {uri}; check the bucket and prefix")
    return sorted(listed)


def _bucket_and_prefix(uri: str) -> tuple[str, str]:
    """``s3://b/a/b`` -> (``b``, ``a/b/``): the key as a folder prefix (empty for the whole bucket)."""
    bucket, key = split_s3_uri(uri)
    return bucket, key.strip("/") + "/" if key.strip("/") else ""


def iter_objects(client: Any, bucket: str, prefix: str, uri: str) -> Iterator[tuple[str, tuple[str, int]]]:
    """(key, (ETag, size)) of every object under ``prefix`` of ``bucket`` (folder markers left out); listing errors
    are one line naming ``uri``."""
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


@dataclass(frozen=True)
class _Download:
    """One object to bring into the mirror."""

    key: str
    etag: str
    size: int
    target: Path


def _plan_downloads(bucket: str, prefix: str, listed: dict[str, tuple[str, int]], mirror: MirrorState,
                    report: SyncReport, uri: str) -> list[_Download]:
    """The listed objects whose file is missing or stale; unchanged ones are counted as skipped, unsafe refused."""
    jobs = []
    for key, (etag, size) in listed.items():
        try:
            job = _Download(key, etag, size, _mirror_path(bucket, key, prefix))
        except UnsafeObjectKeyError as exc:
            _refuse(uri, exc, report)
            continue
        if _is_current(mirror.manifest.get(key), job):
            report.skipped += 1
        else:
            jobs.append(job)
    return jobs


def _is_current(known: dict | None, job: _Download) -> bool:
    """The manifest and the file agree with the listing on ETag and size."""
    return (isinstance(known, dict) and known.get("etag") == job.etag and job.target.is_file()
            and job.target.stat().st_size == job.size)


def _refuse(uri: str, exc: UnsafeObjectKeyError, report: SyncReport) -> None:
    logger.warning("s3 sync %s: skipping an object: %s", uri, exc)
    report.refused += 1


def _download_all(client: Any, bucket: str, jobs: list[_Download], mirror: MirrorState, report: SyncReport,
                  uri: str, threads: int) -> None:
    """Download ``jobs`` on ``threads`` threads, recording each object in the journal as soon as it is done.

    After a failure nothing more starts; the downloads already running finish and are recorded, then the first
    failure is raised (so the next sync downloads only what is left).
    """
    if not jobs:
        return
    threads = min(threads, len(jobs))
    failures: list[BaseException] = []
    pool = ThreadPoolExecutor(threads, thread_name_prefix="s3-download")
    try:
        work = partial(_download, client, bucket, mirror)
        for job, future in _as_completed(pool, work, jobs, window=4 * threads, stop=lambda: bool(failures)):
            if future.cancelled():
                continue
            error = future.exception()
            if error is None:
                mirror.record(job.key, job.etag, job.size)
                report.downloaded += 1
            elif isinstance(error, UnsafeObjectKeyError):
                _refuse(uri, error, report)
            else:
                failures.append(error)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if failures:
        raise failures[0]


def _as_completed(pool: ThreadPoolExecutor, function: Callable[[_Download], None], jobs: Iterable[_Download],
                  window: int, stop: Callable[[], bool]) -> Iterator[tuple[_Download, Future]]:
    """Submit ``jobs`` keeping at most ``window`` queued or running; yield each with its future when it is done.

    Once ``stop()`` is true nothing more is submitted and the queued jobs are cancelled (yielded as cancelled).
    """
    pending: dict[Future, _Download] = {}
    remaining = iter(jobs)
    while True:
        if stop():
            for future in pending:
                future.cancel()
        else:
            for job in remaining:
                pending[pool.submit(function, job)] = job
                if len(pending) >= window:
                    break
        if not pending:
            return
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            yield pending.pop(future), future


def _download(client: Any, bucket: str, mirror: MirrorState, job: _Download) -> None:
    """Download ``job`` into the partial folder, then move it into place (thread-safe: boto3 clients are)."""
    uri = f"{S3_SCHEME}{bucket}/{job.key}"
    temporary = mirror.partial_file()
    try:
        client.download_file(bucket, job.key, str(temporary), Config=_TRANSFER)
        _move_into_place(bucket, job, temporary)
    except (ClientError, BotoCoreError) as exc:
        raise RemoteStorageError(_explain("download", uri, exc)) from None
    finally:
        temporary.unlink(missing_ok=True)


def _move_into_place(bucket: str, job: _Download, temporary: Path) -> None:
    try:
        job.target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temporary, job.target)
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:  # keys "a" and "a/b" in one bucket
        raise UnsafeObjectKeyError(bucket, job.key, "its local path collides with another object's file or folder "
                                                    f"({exc.strerror}: {exc.filename})") from None


def _remove_vanished(bucket: str, key: str, mirror: MirrorState) -> bool:
    """Forget ``key`` and delete its file; True when deleted. A key that is not a safe path deletes nothing."""
    mirror.forget(key)
    try:
        target = _mirror_path(bucket, key)
    except UnsafeObjectKeyError as exc:  # written by an older version, or the folder was tampered with
        logger.warning("s3 mirror: forgetting a vanished object without deleting anything: %s", exc)
        return False
    if target.is_dir() and not target.is_symlink():
        return False  # a folder of other objects now: theirs to keep
    target.unlink(missing_ok=True)
    return True


def _mirror_root(bucket: str) -> Path:
    return cache_root() / "s3" / bucket


def _mirror_path(bucket: str, key: str, prefix: str = "") -> Path:
    """Where ``key`` lives in the mirror; :class:`UnsafeObjectKeyError` when the key cannot be a path there."""
    relative = safe_relative_path(bucket, key, prefix, RESERVED_NAMES)
    return path_inside(_mirror_root(bucket), relative, bucket=bucket, key=key)


def _is_not_found(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


def _explain(action: str, uri: str, exc: Exception) -> str:
    return (
        f"cannot {action} {uri}: {exc}; check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), "
        "AWS_ENDPOINT_URL_S3 for S3-compatible stores, and that the bucket and prefix exist"
    )
