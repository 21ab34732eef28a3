"""COCO reader: contiguous class ids, crowd boxes dropped, pixel xywh -> normalised cxcywh, names from the JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from yolov12.data.dataset_config import load_dataset_config
from yolov12.data.errors import DatasetError
from yolov12.data.formats.coco import load_coco
from yolov12.data.labels import load_labels


def write_coco(root: Path, image_writer) -> Path:
    """Images 100x200 (h x w); categories with gappy ids 1, 3, 7."""
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        image_writer(root / "images" / "val2017" / name, height=100, width=200)
    annotations = [
        {"id": 1, "image_id": 1, "category_id": 7, "bbox": [20, 10, 40, 50], "iscrowd": 0, "area": 2000,
         "segmentation": [[20, 10, 60, 10, 60, 60, 20, 60]]},
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "iscrowd": 1, "area": 100,
         "segmentation": {"counts": [0, 100], "size": [100, 200]}},
        {"id": 3, "image_id": 2, "category_id": 3, "bbox": [100, 50, 100, 50], "iscrowd": 0, "area": 5000,
         "segmentation": []},
        {"id": 4, "image_id": 2, "category_id": 1, "bbox": [100, 50, 100, 50], "iscrowd": 0, "area": 5000},
    ]
    data = {
        "images": [{"id": i, "file_name": n, "height": 100, "width": 200} for i, n in ((1, "a.jpg"), (2, "b.jpg"),
                                                                                   (3, "c.jpg"))],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}, {"id": 7, "name": "train"}],
    }
    path = root / "annotations" / "instances_val2017.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    return path


def test_coco_yaml(tmp_path, image_writer) -> None:
    write_coco(tmp_path, image_writer)
    (tmp_path / "data.yaml").write_text(
        "format: coco\nval: {images: images/val2017, annotations: annotations/instances_val2017.json}\n"
    )
    config = load_dataset_config(tmp_path / "data.yaml")
    assert config.format == "coco" and config.names == ("person", "car", "train")
    assert [p.name for p in config.resolve_split("val")] == ["a.jpg", "b.jpg", "c.jpg"]
    records, report = load_labels(config, "val")
    assert report.crowd_dropped == 1 and report.images == 3 and report.boxes == 3
    a, b, c = records
    np.testing.assert_array_equal(a.classes, [2])
    np.testing.assert_allclose(a.boxes_xywhn, [[40 / 200, 35 / 100, 40 / 200, 50 / 100]], atol=1e-6)
    assert a.segments is not None and a.segments[0].shape == (4, 2)
    np.testing.assert_array_equal(b.classes, [1, 0])
    np.testing.assert_allclose(b.boxes_xywhn[0], [0.75, 0.75, 0.5, 0.5], atol=1e-6)
    assert b.segments is None and len(c) == 0


def test_coco_json_as_data(tmp_path, image_writer, caplog) -> None:
    json_path = write_coco(tmp_path, image_writer)
    config = load_dataset_config(json_path)
    assert config.split("train") == config.split("val")
    assert config.split("val").images == (tmp_path / "images" / "val2017").resolve()
    assert "used for both train and val" in caplog.text


def test_bad_coco_inputs(tmp_path) -> None:
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(DatasetError, match="not a COCO instances JSON"):
        load_coco(tmp_path / "x.json")
    (tmp_path / "data.yaml").write_text("format: coco\ntrain: images\nnames: [a]\n")
    with pytest.raises(DatasetError, match="mapping with 'images' and 'annotations'"):
        load_dataset_config(tmp_path / "data.yaml")
