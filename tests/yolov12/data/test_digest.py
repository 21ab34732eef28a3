"""Dataset digest and manifest: stable, location-independent, sensitive to labels and pixels."""

from __future__ import annotations

import shutil

import pytest

from yolov12.data.dataset_config import load_dataset_config
from yolov12.data.digest import dataset_digest, file_sha256, manifest
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
