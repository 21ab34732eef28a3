"""Dataset digest and manifest: stable, location-independent, sensitive to labels and pixels."""

from __future__ import annotations

import shutil

import pytest

from yolov12.data.dataset_config import load_dataset_config
from yolov12.data.digest import dataset_digest, file_sha256, listing_digest, manifest, s3_dataset_digest
from yolov12.data.labels import load_labels

LABELS = {"a": "0 0.5 0.5 0.2 0.2\n", "b": "1 0.5 0.5 0.4 0.4\n2 0.1 0.1 0.1 0.1\n"}


def _records(data):
    return load_labels(load_dataset_config(data), "train", use_cache=False)[0]


def test_digest_is_stable_and_location_independent(tmp_path, yolo_dataset) -> None:
    data = yolo_dataset(LABELS)
    digest = dataset_digest(_records(data))
    assert len(digest) == 64 and dataset_digest(_records(data)) == digest
    moved = tmp_path / "moved"
    shutil.copytree(tmp_path / "ds", moved)
    (moved / "data.yaml").write_text((moved / "data.yaml").read_text().replace(str(tmp_path / "ds"), str(moved)))
    assert dataset_digest(_records(moved / "data.yaml")) == digest
    assert dataset_digest(list(reversed(_records(data)))) == digest


def test_digest_sees_labels_and_pixels(tmp_path, yolo_dataset, image_writer) -> None:
    data = yolo_dataset(LABELS)
    digest = dataset_digest(_records(data))
    size_digest = dataset_digest(_records(data), image_hash="size")
    assert size_digest != digest
    (tmp_path / "ds" / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.2 0.3\n")
    relabelled = dataset_digest(_records(data))
    assert relabelled != digest
    image_writer(tmp_path / "ds" / "images" / "train" / "b.jpg", seed=99)
    assert dataset_digest(_records(data)) != relabelled
    with pytest.raises(ValueError, match="image_hash"):
        dataset_digest([], image_hash="md5")


def test_manifest_rows(tmp_path, yolo_dataset) -> None:
    records = _records(yolo_dataset(LABELS))
    rows = manifest(records)
    assert [r["path"] for r in rows] == ["a.jpg", "b.jpg"]
    assert [r["boxes"] for r in rows] == [1, 2]
    assert rows[0]["sha256"] == file_sha256(tmp_path / "ds" / "images" / "train" / "a.jpg")


def test_listing_digest_ignores_order_and_etag_quotes_and_sees_every_field() -> None:
    listing = [("images/a.jpg", '"e1"', 10), ("labels/a.txt", '"e2"', 5)]
    digest = listing_digest(listing)
    assert listing_digest(reversed(listing)) == digest == listing_digest([(k, e.strip('"'), s) for k, e, s in listing])
    assert len({digest, listing_digest(listing[:1]), listing_digest([("images/b.jpg", '"e1"', 10), listing[1]]),
                listing_digest([("images/a.jpg", '"e3"', 10), listing[1]]),
                listing_digest([("images/a.jpg", '"e1"', 11), listing[1]])}) == 5


def _upload(s3, folder, prefix: str, yaml_text: str | None = None) -> str:
    client = s3.client()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and ".cache" not in p.name):
        body = yaml_text.encode() if yaml_text and path.name == "data.yaml" else path.read_bytes()
        client.put_object(Bucket=s3.bucket, Key=f"{prefix}/{path.relative_to(folder).as_posix()}", Body=body)
    return f"s3://{s3.bucket}/{prefix}/data.yaml"


def test_an_s3_dataset_is_digested_from_its_listing_without_downloading(s3, tmp_path, yolo_dataset,
                                                                       monkeypatch) -> None:
    monkeypatch.setenv("YOLOV12_CACHE", str(tmp_path / "cache"))
    data = yolo_dataset(LABELS)
    portable = "path: .\ntrain: images/train\nval: images/train\nnames: [a, b, c]\n"
    uri = _upload(s3, data.parent, f"digest/{tmp_path.name}/one", portable)
    digest = s3_dataset_digest(uri)
    downloaded = [p.name for p in (tmp_path / "cache").rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert len(digest) == 64 and downloaded == ["data.yaml"]
    assert s3_dataset_digest(_upload(s3, data.parent, f"digest/{tmp_path.name}/two", portable)) == digest  # moved
    assert s3_dataset_digest(uri.rsplit("/", 1)[0]) == digest  # the folder instead of its data.yaml

    relabelled = f"digest/{tmp_path.name}/one/labels/train/a.txt"
    s3.client().put_object(Bucket=s3.bucket, Key=relabelled, Body=b"0 0.5 0.5 0.1 0.1\n")
    assert s3_dataset_digest(uri) != digest


@pytest.mark.parametrize("yaml_text", [
    "path: /data/local\ntrain: images/train\nnames: [a]\n",
    "path: .\ntrain: s3://elsewhere/images/train\nnames: [a]\n",
    "path: .\ntrain: ../other/images\nnames: [a]\n",
    "path: .\ntrain: train.txt\nnames: [a]\n",
])
def test_an_s3_dataset_reaching_outside_its_prefix_is_not_digested_from_the_listing(s3, tmp_path, yolo_dataset,
                                                                                   monkeypatch, yaml_text) -> None:
    monkeypatch.setenv("YOLOV12_CACHE", str(tmp_path / "cache"))
    data = yolo_dataset(LABELS)
    assert s3_dataset_digest(_upload(s3, data.parent, f"digest/{tmp_path.name}", yaml_text)) is None
