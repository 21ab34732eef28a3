"""YOLO reader: label paths as Ultralytics derives them, box and polygon rows, format registry."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from yolov12.data.errors import DatasetError
from yolov12.data.formats import FORMATS, get_format
from yolov12.data.formats.yolo import label_path_for, parse_label_text, read_label_file


def test_label_path_replaces_the_last_images_folder() -> None:
    path = Path(os.sep, "data", "images", "set", "images", "train", "a.b.jpg")
    assert label_path_for(path) == Path(os.sep, "data", "images", "set", "labels", "train", "a.b.txt")
    assert label_path_for(Path(os.sep, "flat", "a.png")) == Path(os.sep, "flat", "a.txt")


def test_rows(tmp_path) -> None:
    label = tmp_path / "a.txt"
    label.write_text("0 0.5 0.5 0.2 0.4\n\n1 0.1 0.2 0.3 0.2 0.2 0.6\n2 1 2\n")
    raw = read_label_file(tmp_path / "a.jpg", label)
    np.testing.assert_array_equal(raw.classes, [0, 1])
    np.testing.assert_allclose(raw.boxes_xywhn, [[0.5, 0.5, 0.2, 0.4], [0.2, 0.4, 0.2, 0.4]])
    assert raw.segments is not None and raw.segments[0].shape == (4, 2) and raw.segments[1].shape == (3, 2)
    assert raw.issues == {"malformed_rows": 1}


def test_missing_and_unreadable_label_files(tmp_path) -> None:
    assert read_label_file(tmp_path / "a.jpg", tmp_path / "a.txt").issues == {"missing_label_files": 1}
    (tmp_path / "b.txt").write_bytes(b"\xff\xfe\x00bad")
    assert read_label_file(tmp_path / "b.jpg", tmp_path / "b.txt").issues == {"unreadable_label_files": 1}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_registry_entries_are_complete(name) -> None:
    fmt = get_format(name.upper())
    assert fmt.name == name and callable(fmt.parse_split) and callable(fmt.read_labels)


def test_unknown_format() -> None:
    with pytest.raises(DatasetError, match="Known formats: coco, visdrone, voc, yolo"):
        get_format("kitti")


def test_label_text_parses_like_a_label_file(tmp_path) -> None:
    text = "0 0.5 0.5 0.2 0.4\n\n1 0.1 0.2 0.3 0.2 0.2 0.6\n2 1 2\n"
    (tmp_path / "a.txt").write_text(text)
    from_text = parse_label_text("s3://b/images/a.jpg", "s3://b/labels/a.txt", text)
    from_file = read_label_file(tmp_path / "a.jpg", tmp_path / "a.txt")
    assert from_text.label_file == "s3://b/labels/a.txt" and from_text.issues == from_file.issues
    assert np.array_equal(from_text.classes, from_file.classes)
    assert np.array_equal(from_text.boxes_xywhn, from_file.boxes_xywhn)
