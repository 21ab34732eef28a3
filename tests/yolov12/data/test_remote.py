"""s3:// datasets against a real S3 API: a moto server on 127.0.0.1, boto3 over HTTP, no in-process mocks."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from yolov12.data import remote
from yolov12.data.dataset_config import load_dataset_config
from yolov12.data.errors import DatasetNotFoundError, RemoteStorageError
from yolov12.data.labels import load_labels

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
