"""Detection splits read in place from a real S3 API (moto server on 127.0.0.1): listings and labels, no mirror."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest

from yolov12.data import remote
from yolov12.data.digest import listing_digest
from yolov12.data.errors import DatasetError, DatasetNotFoundError
from yolov12.data.images import read_image_bgr
from yolov12.data.s3_split import dataset_names, fetch_image_bgr, label_key_for, list_s3_split

pytestmark = pytest.mark.integration
YAML = "train: images/train\nval: images/val\nnames: [a, b, c]\n"


@pytest.fixture
def bucket(s3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh prefix of the test bucket, its client, and the local mirror in tmp_path (which must stay empty)."""
    monkeypatch.setenv("YOLOV12_CACHE", str(tmp_path / "cache"))
    client = s3.client()
    prefix = f"split-{uuid.uuid4().hex[:8]}"

    def put(key: str, body: bytes | str) -> str:
        data = body.encode() if isinstance(body, str) else body
        client.put_object(Bucket=s3.bucket, Key=f"{prefix}/{key}", Body=data)
        return f"s3://{s3.bucket}/{prefix}/{key}"

    return client, put, f"s3://{s3.bucket}/{prefix}"


def jpeg(seed: int, height: int = 48, width: int = 64) -> bytes:
    image = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


def mirrored_files() -> list[Path]:
    root = remote.cache_root()
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_listing_reads_labels_lists_images_and_downloads_nothing(bucket, caplog) -> None:
    client, put, root = bucket
    put("data.yaml", YAML)
    first = put("images/train/a.jpg", jpeg(0))
    second = put("images/train/b.jpg", jpeg(1))
    put("labels/train/a.txt", "0 0.5 0.5 0.2 0.2\n7 0.5 0.5 0.2 0.2\n1 0.25 0.25 0.1 0.1\n")
    unsafe = put("images/train/bad\\name.jpg", jpeg(2))
    put("images/val/v.jpg", jpeg(3))
    with caplog.at_level(logging.WARNING, logger="yolov12.data.s3_split"):
        listing = list_s3_split(f"{root}/data.yaml", "train", client)

    assert [image.uri for image in listing.images] == [first, second], "val images and unsafe keys are not listed"
    assert listing.refused == [unsafe] and "bad\\\\name.jpg" in caplog.text, "an unsafe key is skipped with a warning"
    rows = listing.images[0].rows
    assert rows.classes.tolist() == [0, 1] and rows.boxes_xywhn.shape == (2, 4), "class 7 of 3 is dropped"
    assert listing.images[1].rows.classes.tolist() == [], "an image without a label file is background"
    assert listing.report.class_out_of_range == 1 and listing.report.missing_label_files == 1
    assert listing.names == ("a", "b", "c") and listing.root == root
    assert mirrored_files() == [], "nothing is written under the mirror cache"


def test_listing_digest_hashes_keys_etags_and_sizes_of_what_was_read(bucket) -> None:
    client, put, root = bucket
    put("data.yaml", YAML)
    put("images/train/a.jpg", jpeg(0))
    put("labels/train/a.txt", "0 0.5 0.5 0.2 0.2\n")
    listing = list_s3_split(root, "train", client)  # a prefix holding data.yaml
    heads = {key: client.head_object(Bucket=root.split("/")[2], Key=f"{root.split('/', 3)[3]}/{key}")
             for key in ("images/train/a.jpg", "labels/train/a.txt")}
    expected = listing_digest([(key, head["ETag"], head["ContentLength"]) for key, head in heads.items()])
    assert listing.digest == expected
    put("labels/train/a.txt", "1 0.5 0.5 0.2 0.2\n")
    assert list_s3_split(root, "train", client).digest != expected, "a changed label file changes the digest"


def test_fetched_image_decodes_like_the_local_reader_and_hostile_bytes_are_refused(bucket, tmp_path) -> None:
    client, put, _ = bucket
    local = tmp_path / "a.png"
    cv2.imwrite(str(local), np.random.default_rng(0).integers(0, 255, (40, 30, 3), dtype=np.uint8))
    uri = put("images/a.png", local.read_bytes())
    assert np.array_equal(fetch_image_bgr(uri, client), read_image_bgr(local))
    with pytest.raises(DatasetError, match="above the limit of 100 bytes"):
        fetch_image_bgr(uri, client, max_bytes=100)
    garbage = put("images/garbage.jpg", b"\xff\xd8 not really a jpeg")
    with pytest.raises(DatasetError, match=f"image {garbage}"):
        fetch_image_bgr(garbage, client)
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        fetch_image_bgr(uri.replace("a.png", "gone.png"), client)
    assert mirrored_files() == []


@pytest.mark.parametrize(("yaml_text", "message"), [
    ("train: images/train.txt\nnames: [a]\n", r"\.txt list of images"),
    ("format: voc\ntrain: images/train\nnames: [a]\n", "format 'voc' cannot be read in place"),
    ("path: /data/local\ntrain: images/train\nnames: [a]\n", "does not name a place on S3"),
    ("train: ../other/images\nnames: [a]\n", "does not name a place on S3"),
    ("val: images/val\nnames: [a]\n", "split 'train' is not defined"),
])
def test_datasets_that_cannot_be_read_in_place_are_refused_with_the_reason(bucket, yaml_text, message) -> None:
    client, put, root = bucket
    put("data.yaml", yaml_text)
    with pytest.raises(DatasetError, match=message):
        list_s3_split(f"{root}/data.yaml", "train", client)


def test_dataset_names_read_only_the_yaml(bucket) -> None:
    _, put, root = bucket
    put("data.yaml", YAML)
    put("images/train/a.jpg", jpeg(0))
    assert dataset_names(f"{root}/data.yaml") == ("a", "b", "c") and dataset_names(root) == ("a", "b", "c")
    assert mirrored_files() == []


def test_label_key_follows_the_yolo_rule_on_the_key() -> None:
    assert label_key_for("sets/images/x/images/train/a.b.jpg") == "sets/images/x/labels/train/a.b.txt"
    assert label_key_for("images/train/a.png") == "labels/train/a.txt"
    assert label_key_for("flat/a.png") == "flat/a.txt" and label_key_for("d/images/train/") == "d/labels/train/"
