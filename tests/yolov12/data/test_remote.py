"""s3:// datasets against a real S3 API: a moto server on 127.0.0.1, boto3 over HTTP, no in-process mocks."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from yolov12.data import remote
from yolov12.data.dataset_config import load_dataset_config
from yolov12.data.errors import DatasetNotFoundError, RemoteStorageError, UnsafeObjectKeyError
from yolov12.data.labels import load_labels
from yolov12.data.mirror_state import JOURNAL_NAME, MANIFEST_NAME

pytestmark = pytest.mark.integration
BUCKET = "datasets"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_endpoint, tmp_path, monkeypatch):
    """Environment as a user would set it; a fresh bucket per test; the local mirror in tmp_path."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "YOLOV12_CACHE": str(tmp_path / "cache"),
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    yield client
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def _upload_dataset(client, local_yaml: Path, prefix: str) -> None:
    root = local_yaml.parent
    for path in sorted(p for p in root.rglob("*") if p.is_file() and ".cache" not in p.name):
        client.upload_file(str(path), BUCKET, f"{prefix}/{path.relative_to(root).as_posix()}")


def test_yaml_in_s3_downloads_once_and_follows_changes(s3, yolo_dataset, tmp_path) -> None:
    data = yolo_dataset({"a": "0 0.5 0.5 0.2 0.2\n", "b": "1 0.5 0.5 0.4 0.4\n2 0.2 0.2 0.1 0.1\n", "c": ""})
    data.write_text("train: images/train\nval: images/train\nnames: [a, b, c]\n")  # path: the yaml's prefix
    _upload_dataset(s3, data, "sets/tiny")

    config = load_dataset_config(f"s3://{BUCKET}/sets/tiny/data.yaml")
    mirror = tmp_path / "cache" / "s3" / BUCKET / "sets" / "tiny"
    assert config.root == mirror
    assert [p.name for p in config.resolve_split("train")] == ["a.jpg", "b.jpg", "c.jpg"]
    records, report = load_labels(config, "train")
    assert report.images == 3 and report.boxes == 3
    assert report.cache_path == mirror / "labels" / "train.cache.json"

    again = remote.sync_prefix(f"s3://{BUCKET}/sets/tiny")
    assert (again.downloaded, again.removed) == (0, 0) and again.skipped == 7  # yaml + 3 images + 3 labels

    s3.put_object(Bucket=BUCKET, Key="sets/tiny/labels/train/c.txt", Body=b"2 0.5 0.5 0.5 0.5\n")
    s3.delete_object(Bucket=BUCKET, Key="sets/tiny/images/train/a.jpg")
    s3.delete_object(Bucket=BUCKET, Key="sets/tiny/labels/train/a.txt")
    changed = remote.sync_prefix(f"s3://{BUCKET}/sets/tiny")
    assert (changed.downloaded, changed.removed, changed.skipped) == (1, 2, 4)
    assert not (mirror / "images" / "train" / "a.jpg").exists()
    assert (mirror / "labels" / "train" / "c.txt").read_text() == "2 0.5 0.5 0.5 0.5\n"
    records, report = load_labels(load_dataset_config(f"s3://{BUCKET}/sets/tiny/data.yaml"), "train")
    assert not report.from_cache and report.images == 2 and report.boxes == 3


def test_local_yaml_with_s3_split_entries(s3, yolo_dataset, tmp_path) -> None:
    data = yolo_dataset({"a": "0 0.5 0.5 0.2 0.2\n"})
    _upload_dataset(s3, data, "sets/remote")
    local = tmp_path / "local.yaml"
    local.write_text(f"path: {tmp_path}\ntrain: s3://{BUCKET}/sets/remote/images/train\nnames: [a, b, c]\n")
    config = load_dataset_config(local)
    records, report = load_labels(config, "train")
    assert report.boxes == 1 and report.missing_label_files == 0  # labels/ came along with images/
    assert records[0].path.startswith(str(tmp_path / "cache" / "s3" / BUCKET / "sets" / "remote" / "images"))


def test_fetch_object_uses_etag(s3) -> None:
    s3.put_object(Bucket=BUCKET, Key="one/file.txt", Body=b"v1")
    path = remote.fetch_object(f"s3://{BUCKET}/one/file.txt")
    stamp = path.stat().st_mtime_ns
    assert path.read_bytes() == b"v1" and remote.fetch_object(f"s3://{BUCKET}/one/file.txt").stat().st_mtime_ns == stamp
    s3.put_object(Bucket=BUCKET, Key="one/file.txt", Body=b"v2")
    assert remote.fetch_object(f"s3://{BUCKET}/one/file.txt").read_bytes() == b"v2"
    assert remote.materialize(f"s3://{BUCKET}/one") == path.parent


def test_errors_name_the_location(s3, monkeypatch) -> None:
    with pytest.raises(DatasetNotFoundError, match=f"nothing is stored under s3://{BUCKET}/missing"):
        remote.sync_prefix(f"s3://{BUCKET}/missing")
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        remote.sync_prefix("s3://no-such-bucket/x")
    with pytest.raises(DatasetNotFoundError):
        load_dataset_config(f"s3://{BUCKET}/missing/data.yaml")
    with pytest.raises(RemoteStorageError, match="'..'"):
        remote.split_s3_uri("s3://b/../etc")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(RemoteStorageError, match="AWS_ENDPOINT_URL_S3"):
        remote.sync_prefix(f"s3://{BUCKET}/sets")


def _mirrored_files(tmp_path: Path) -> set[str]:
    mirror = tmp_path / "cache" / "s3" / BUCKET
    return {p.relative_to(mirror).as_posix() for p in mirror.rglob("*") if p.is_file() and not p.name.startswith(".")}


def _files_outside_the_cache(tmp_path: Path) -> set[str]:
    cache = tmp_path / "cache"
    return {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")
            if p.is_file() and not p.is_relative_to(cache) and not p.name.startswith("no-aws")}


def test_hostile_keys_in_a_listing_are_skipped_and_reported(s3, tmp_path, caplog) -> None:
    hostile = [f"{tmp_path}/absolute.txt", "../escape.txt", "a/../../up.txt", "a//b.txt", "./dot.txt", "back\\slash",
               "bell\x07.txt", ".yolov12-s3-manifest.json", ".lock"]
    for key in [*hostile, "good/one.txt", "dir/"]:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"payload")
    with caplog.at_level("WARNING", logger="yolov12.data.remote"):
        report = remote.sync_prefix(f"s3://{BUCKET}")
    assert _files_outside_the_cache(tmp_path) == set()
    assert _mirrored_files(tmp_path) == {"good/one.txt"}
    assert (report.downloaded, report.refused) == (1, len(hostile))
    warnings = "\n".join(r.getMessage() for r in caplog.records)
    assert all(repr(key) in warnings for key in hostile)
    again = remote.sync_prefix(f"s3://{BUCKET}")  # still refused, never downloaded, the manifest untouched
    assert (again.downloaded, again.skipped, again.refused) == (0, 1, len(hostile))


def test_a_hostile_key_named_directly_is_refused(s3, tmp_path) -> None:
    target = tmp_path / "absolute.txt"
    s3.put_object(Bucket=BUCKET, Key=str(target), Body=b"payload")
    with pytest.raises(UnsafeObjectKeyError, match=rf"refusing object key '{target}' of bucket '{BUCKET}'.*absolute"):
        remote.fetch_object(f"s3://{BUCKET}/{target}")
    with pytest.raises(UnsafeObjectKeyError, match=r"'\.\.'"):
        remote.fetch_object(f"s3://{BUCKET}/a/../../up.txt")
    with pytest.raises(RemoteStorageError, match="the bucket name '..' cannot name a local folder"):
        remote.split_s3_uri("s3://../x")
    assert not target.exists()


def test_vanished_keys_of_an_old_manifest_never_delete_outside_the_mirror(s3, tmp_path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    s3.put_object(Bucket=BUCKET, Key="good/one.txt", Body=b"payload")
    folder = tmp_path / "cache" / "s3" / BUCKET
    folder.mkdir(parents=True)
    hostile = {str(victim): {"etag": '"x"', "size": 7}, "../victim.txt": {"etag": '"x"', "size": 7}}
    (folder / MANIFEST_NAME).write_text(json.dumps(hostile))
    report = remote.sync_prefix(f"s3://{BUCKET}")
    assert victim.read_text() == "keep me"
    assert report.removed == 0 and report.downloaded == 1
    assert set(json.loads((folder / MANIFEST_NAME).read_text())) == {"good/one.txt"}


def test_a_symlinked_folder_in_the_mirror_is_not_written_through(s3, tmp_path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    folder = tmp_path / "cache" / "s3" / BUCKET
    folder.mkdir(parents=True)
    (folder / "linked").symlink_to(outside, target_is_directory=True)
    s3.put_object(Bucket=BUCKET, Key="linked/one.txt", Body=b"payload")
    s3.put_object(Bucket=BUCKET, Key="plain/two.txt", Body=b"payload")
    report = remote.sync_prefix(f"s3://{BUCKET}")
    assert list(outside.iterdir()) == []
    assert (report.downloaded, report.refused) == (1, 1)


class CountingClient:
    """A real client whose downloads are counted (with the peak number running at once) and slowed down a little."""

    def __init__(self, real, delay: float = 0.0) -> None:
        self.real, self.delay = real, delay
        self.keys: list[str] = []
        self.running = self.peak = 0
        self.lock = threading.Lock()

    def __getattr__(self, name: str):
        return getattr(self.real, name)

    def download_file(self, bucket: str, key: str, filename: str, **options) -> None:
        with self.lock:
            self.keys.append(key)
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            time.sleep(self.delay)
            self.real.download_file(bucket, key, filename, **options)
        finally:
            with self.lock:
                self.running -= 1


def _put_many(client, prefix: str, count: int) -> list[str]:
    keys = [f"{prefix}/images/{index:03d}.jpg" for index in range(count)]
    for key in keys:
        client.put_object(Bucket=BUCKET, Key=key, Body=key.encode())
    return keys


def test_objects_download_in_parallel_with_a_bounded_pool(s3, monkeypatch) -> None:
    monkeypatch.setenv("YOLOV12_S3_THREADS", "4")
    keys = _put_many(s3, "many", 16)
    client = CountingClient(s3, delay=0.1)
    report = remote.sync_prefix(f"s3://{BUCKET}/many", client)
    assert report.downloaded == 16 and sorted(client.keys) == keys
    assert 2 <= client.peak <= 4
    assert all(remote.fetch_object(f"s3://{BUCKET}/{key}").read_bytes() == key.encode() for key in keys)


def test_processes_of_a_node_take_turns_and_download_once(s3) -> None:
    keys = _put_many(s3, "shared", 8)
    clients = [CountingClient(s3, delay=0.05) for _ in range(3)]
    with ThreadPoolExecutor(3) as ranks:  # each rank opens the lock file itself, as separate processes do
        reports = list(ranks.map(lambda c: remote.sync_prefix(f"s3://{BUCKET}/shared", c), clients))
    assert sorted(key for c in clients for key in c.keys) == keys
    assert sorted((r.downloaded, r.skipped) for r in reports) == [(0, 8), (0, 8), (8, 0)]


KILLED_SYNC = """
import os, signal, sys, threading, time
from pathlib import Path
from yolov12.data import remote

limit, journal, uri = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
real, lock, calls = remote.s3_client(), threading.Lock(), []

class DiesAfterLimit:
    def __getattr__(self, name):
        return getattr(real, name)

    def download_file(self, *args, **kwargs):
        with lock:
            calls.append(1)
            number = len(calls)
        if number > limit:  # let the finished downloads be recorded, then die as `kill -9` would
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and (not journal.exists() or journal.read_text().count(chr(10)) < limit):
                time.sleep(0.01)
            os.kill(os.getpid(), signal.SIGKILL)
        return real.download_file(*args, **kwargs)

remote.sync_prefix(uri, DiesAfterLimit())
"""


def test_a_killed_sync_resumes_where_it_stopped(s3, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("YOLOV12_S3_THREADS", "3")
    keys = _put_many(s3, "resume", 12)
    folder = tmp_path / "cache" / "s3" / BUCKET
    journal = folder / JOURNAL_NAME
    killed = subprocess.run([sys.executable, "-c", KILLED_SYNC, "5", str(journal), f"s3://{BUCKET}/resume"],
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    client = CountingClient(s3)
    report = remote.sync_prefix(f"s3://{BUCKET}/resume", client)
    assert (report.downloaded, report.skipped) == (7, 5)
    assert len(set(client.keys)) == 7
    assert all((folder / key).read_bytes() == key.encode() for key in keys)
    assert not journal.exists() and set(json.loads((folder / MANIFEST_NAME).read_text())) == set(keys)
    assert list((folder / ".yolov12-partial").iterdir()) == []  # the killed download's partial file is gone


def test_a_failed_download_keeps_the_finished_ones(s3, monkeypatch) -> None:
    monkeypatch.setenv("YOLOV12_S3_THREADS", "2")
    _put_many(s3, "flaky", 6)

    class FailsOnce(CountingClient):
        def download_file(self, bucket: str, key: str, filename: str, **options) -> None:
            if key.endswith("003.jpg") and key not in self.keys:
                self.keys.append(key)
                raise ClientError({"Error": {"Code": "SlowDown", "Message": "try later"}}, "GetObject")
            super().download_file(bucket, key, filename, **options)

    with pytest.raises(RemoteStorageError, match=r"cannot download s3://datasets/flaky/images/003.jpg"):
        remote.sync_prefix(f"s3://{BUCKET}/flaky", FailsOnce(s3))
    again = remote.sync_prefix(f"s3://{BUCKET}/flaky")
    assert again.downloaded + again.skipped == 6 and 1 <= again.downloaded < 6


def test_listing_of_a_prefix_without_downloading(s3, tmp_path) -> None:
    keys = _put_many(s3, "listed", 3)
    s3.put_object(Bucket=BUCKET, Key="listed/dir/", Body=b"")
    s3.put_object(Bucket=BUCKET, Key="listed/../bad", Body=b"x")
    listing = remote.list_prefix(f"s3://{BUCKET}/listed/")
    assert [(key, size) for key, _, size in listing] == [(k.removeprefix("listed/"), len(k)) for k in keys]
    assert all(etag.strip('"') for _, etag, _ in listing)
    assert not (tmp_path / "cache" / "s3" / BUCKET / "listed").exists()
    with pytest.raises(DatasetNotFoundError, match="nothing is stored under"):
        remote.list_prefix(f"s3://{BUCKET}/nothing-here")


def test_the_thread_count_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.delenv("YOLOV12_S3_THREADS", raising=False)
    assert remote.download_threads() == 16
    monkeypatch.setenv("YOLOV12_S3_THREADS", "3")
    assert remote.download_threads() == 3
    for bad in ("0", "-2", "many"):
        monkeypatch.setenv("YOLOV12_S3_THREADS", bad)
        with pytest.raises(RemoteStorageError, match=f"YOLOV12_S3_THREADS='{bad}' must be a whole number >= 1"):
            remote.download_threads()
