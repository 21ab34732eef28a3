"""COCO-format splits read in place from a real S3 API (moto server on 127.0.0.1): the same label rows as the local
COCO reader, missing and unsized images skipped and counted, the JSON in the digest, nothing mirrored."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest

from yolov12.data import remote
from yolov12.data.dataset_config import load_dataset_config
from yolov12.data.errors import DatasetError
from yolov12.data.labels import load_labels
from yolov12.data.s3_split import dataset_names, list_s3_split

pytestmark = pytest.mark.integration
YAML = "format: coco\ntrain: {images: images/train2017, annotations: annotations/instances_train2017.json}\n"
SIZES = {"a.jpg": (100, 200), "b.jpg": (60, 80), "d.jpg": (50, 50)}  # (height, width); c.jpg is never uploaded


def instances(unsized: bool = True) -> dict:
    """Images a, b (sized), c (not uploaded), d (no width/height); gappy category ids 1, 3, 7; one crowd box."""
    images = [{"id": 1, "file_name": "a.jpg", "height": 100, "width": 200},
              {"id": 2, "file_name": "b.jpg", "height": 60, "width": 80},
              {"id": 3, "file_name": "c.jpg", "height": 10, "width": 10}]
    images.append({"id": 4, "file_name": "d.jpg"} if unsized else {"id": 4, "file_name": "d.jpg", "height": 50,
                                                                     "width": 50})
    annotations = [
        {"id": 1, "image_id": 1, "category_id": 7, "bbox": [20, 10, 40, 50], "iscrowd": 0, "area": 2000},
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "iscrowd": 1, "area": 100},
        {"id": 3, "image_id": 2, "category_id": 3, "bbox": [40, 30, 40, 30], "iscrowd": 0, "area": 1200},
        {"id": 4, "image_id": 4, "category_id": 1, "bbox": [5, 5, 10, 10], "iscrowd": 0, "area": 100},
    ]
    return {"images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}, {"id": 7, "name": "train"}]}


def jpeg(height: int, width: int) -> bytes:
    return cv2.imencode(".jpg", np.full((height, width, 3), 90, np.uint8))[1].tobytes()


@pytest.fixture
def coco_on_s3(s3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The dataset above under a fresh prefix (and the same files in tmp_path/local); the mirror in tmp_path."""
    monkeypatch.setenv("YOLOV12_CACHE", str(tmp_path / "cache"))
    client, prefix = s3.client(), f"coco-{uuid.uuid4().hex[:8]}"
    local = tmp_path / "local"

    def put(key: str, body: bytes | str) -> None:
        data = body.encode() if isinstance(body, str) else body
        client.put_object(Bucket=s3.bucket, Key=f"{prefix}/{key}", Body=data)
        (local / key).parent.mkdir(parents=True, exist_ok=True)
        (local / key).write_bytes(data)

    put("data.yaml", YAML)
    put("annotations/instances_train2017.json", json.dumps(instances()))
    for name, (height, width) in SIZES.items():
        put(f"images/train2017/{name}", jpeg(height, width))
    return client, put, f"s3://{s3.bucket}/{prefix}", local


def test_coco_split_lists_the_local_readers_rows_and_skips_what_it_cannot_read(coco_on_s3) -> None:
    client, _, root, local = coco_on_s3
    listing = list_s3_split(f"{root}/data.yaml", "train", client)

    assert [image.uri for image in listing.images] == [f"{root}/images/train2017/{n}" for n in ("a.jpg", "b.jpg")]
    assert listing.names == ("person", "car", "train")
    report = listing.report
    assert (report.crowd_dropped, report.missing_images, report.unsized_images) == (1, 1, 1)
    assert report.problems["missing_images"] == [f"{root}/images/train2017/c.jpg"]
    assert report.problems["unsized_images"] == [f"{root}/images/train2017/d.jpg"]

    records, _ = load_labels(load_dataset_config(local / "data.yaml"), "train")
    by_name = {Path(record.path).name: record for record in records}
    for image in listing.images:
        expected = by_name[image.uri.rsplit("/", 1)[1]]
        np.testing.assert_array_equal(image.rows.classes, expected.classes)
        np.testing.assert_allclose(image.rows.boxes_xywhn, expected.boxes_xywhn, atol=1e-6)
    assert listing.images[0].rows.classes.tolist() == [2], "category 7 is the third: class 2"
    root_mirror = remote.cache_root()
    assert not root_mirror.exists() or not any(p.is_file() for p in root_mirror.rglob("*")), "nothing mirrored"


def test_coco_json_is_part_of_the_listing_digest(coco_on_s3) -> None:
    client, put, root, _ = coco_on_s3
    before = list_s3_split(root, "train", client)
    assert before.objects[0][0] == "annotations/instances_train2017.json"
    put("annotations/instances_train2017.json", json.dumps(instances(unsized=False)))
    after = list_s3_split(root, "train", client)
    assert after.digest != before.digest and len(after.images) == 3, "d.jpg has a size now"


@pytest.mark.parametrize(("yaml_text", "message"), [
    ("format: coco\ntrain: images/train2017\n", r"a COCO split must be a mapping with 'images' and 'annotations'"),
    (YAML + "names: [a, b]\n", r"names 2 classes but .*instances_train2017.json has 3 categories"),
    ("format: coco\ntrain: {images: images/train2017, annotations: data.yaml}\n",
     r"data.yaml is not a COCO instances JSON"),
])
def test_bad_coco_splits_are_refused_in_one_line(coco_on_s3, yaml_text: str, message: str) -> None:
    client, put, root, _ = coco_on_s3
    put("data.yaml", yaml_text)
    with pytest.raises(DatasetError, match=message):
        list_s3_split(root, "train", client)


def test_streaming_a_coco_dataset_needs_its_names_in_the_data_yaml(coco_on_s3) -> None:
    """Training workers read only the data.yaml for the class names; without them they would need the whole JSON."""
    client, put, root, _ = coco_on_s3
    with pytest.raises(DatasetError, match=r"COCO dataset on S3 without names: add names: \[\.\.\.\]"):
        dataset_names(f"{root}/data.yaml")
    put("data.yaml", YAML + "names: [person, car, train]\n")
    assert dataset_names(f"{root}/data.yaml") == ("person", "car", "train")
    assert list_s3_split(root, "train", client).names == ("person", "car", "train")
