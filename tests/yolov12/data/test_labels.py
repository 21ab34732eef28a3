"""Label verification: exact counts for planted errors, the summary line, and the label cache's life cycle."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest

from yolov12.data import labels as labels_module
from yolov12.data.dataset_config import load_dataset_config
from yolov12.data.labels import cache_path_for, load_labels, load_split_labels

GOOD = "0 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n"


def _plant_errors(root: Path, yolo_dataset) -> Path:
    """10 good images (20 boxes) plus planted problems; the expected counts are asserted in the test."""
    labels = {f"good{i}": GOOD for i in range(10)}
    labels |= {
        "malformed": "0 0.5 0.5\nx 0.5 0.5 0.1 0.1\n2 0.5 0.5 0.1 0.1 0.2\n2 0.5 0.5 0.2 0.2\n",  # 3 bad, 1 kept
        "classes": "3 0.5 0.5 0.2 0.2\n-1 0.5 0.5 0.2 0.2\n0 0.4 0.4 0.2 0.2\n",  # nc=3: 2 out of range, 1 kept
        "dupes": GOOD + "0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n",  # 2 duplicates of row 1, 2 kept
        "bounds": "0 0.95 0.5 0.11 0.2\n0 1.5 0.5 0.2 0.2\n1 0.5 0.5 0.0 0.2\n",  # 1 clipped, 1 out, 1 zero-area
        "background": None,  # no label file
        "empty": "",
    }
    data = yolo_dataset(labels, root=root)
    images = root / "images" / "train"
    (images / "random_bytes.jpg").write_bytes(os.urandom(500))
    good = (images / "good0.jpg").read_bytes()
    (images / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (images / "zero.jpg").write_bytes(b"")
    for name in ("random_bytes", "truncated", "zero"):
        (root / "labels" / "train" / f"{name}.txt").write_text(GOOD, encoding="utf-8")
    return data


def test_planted_errors_are_counted_exactly(tmp_path, yolo_dataset, caplog) -> None:
    config = load_dataset_config(_plant_errors(tmp_path / "ds", yolo_dataset))
    with caplog.at_level(logging.DEBUG, logger="yolov12.data"):
        records, report = load_labels(config, "train")
    assert report.corrupt_images == 3
    assert report.malformed_rows == 3
    assert report.class_out_of_range == 2
    assert report.duplicate_rows == 2
    assert report.clipped_boxes == 1
    assert report.out_of_bounds_rows == 1
    assert report.zero_area_boxes == 1
    assert report.missing_label_files == 1
    assert report.empty_label_files == 1
    assert report.images == 16 and len(records) == 16  # 10 good + malformed, classes, dupes, bounds, background, empty
    assert report.boxes == 20 + 1 + 1 + 2 + 1
    assert report.boxes == sum(len(r) for r in records)
    assert sorted(Path(p).name for p in report.problems["corrupt_images"]) == [
        "random_bytes.jpg", "truncated.jpg", "zero.jpg"
    ]
    assert [Path(p).name for p in report.problems["duplicate_rows"]] == ["dupes.txt"]
    summary = [r for r in caplog.records if r.name == "yolov12.data.label_report" and r.levelno == logging.WARNING]
    assert len(summary) == 1
    line = summary[0].getMessage()
    assert line.startswith("train: 16 images, 25 boxes; skipped 3 corrupt images, dropped 3 malformed rows")
    assert "removed 2 duplicate rows" in line and f"see {report.cache_path}" in line
    assert any("truncated.jpg" in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)


def test_repaired_rows_are_valid(tmp_path, yolo_dataset) -> None:
    config = load_dataset_config(_plant_errors(tmp_path / "ds", yolo_dataset))
    records, _ = load_labels(config, "train")
    for record in records:
        cx, cy, w, h = record.boxes_xywhn.T
        assert record.boxes_xywhn.dtype == np.float32 and record.classes.dtype == np.int64
        assert np.all(cx - w / 2 >= -1e-6) and np.all(cx + w / 2 <= 1 + 1e-6) and np.all(w > 0) and np.all(h > 0)
        assert np.all((record.classes >= 0) & (record.classes < 3))
    bounds = next(r for r in records if Path(r.path).stem == "bounds")
    np.testing.assert_allclose(bounds.boxes_xywhn, [[0.9475, 0.5, 0.105, 0.2]], atol=1e-6)


def test_cache_is_reused_then_invalidated(tmp_path, yolo_dataset, monkeypatch) -> None:
    data = yolo_dataset({"a": GOOD, "b": "2 0.5 0.5 0.4 0.4\n"})
    config = load_dataset_config(data)
    first, report = load_labels(config, "train")
    cache = tmp_path / "ds" / "labels" / "train.cache.json"
    assert report.cache_path == cache and cache.is_file() and not report.from_cache
    assert json.loads(cache.read_text())["version"] == 1

    def must_not_verify(*args, **kwargs):
        raise AssertionError("verification ran although the cache is fresh")

    monkeypatch.setattr(labels_module, "verify_labels", must_not_verify)
    second, report = load_labels(config, "train")
    assert report.from_cache and report.boxes == 3
    for a, b in zip(first, second):
        assert a.path == b.path and (a.height, a.width) == (b.height, b.width)
        np.testing.assert_array_equal(a.boxes_xywhn, b.boxes_xywhn)
        np.testing.assert_array_equal(a.classes, b.classes)
    monkeypatch.undo()

    label = tmp_path / "ds" / "labels" / "train" / "b.txt"
    label.write_text("2 0.5 0.5 0.4 0.4\n1 0.2 0.2 0.1 0.1\n", encoding="utf-8")
    os.utime(label, ns=(label.stat().st_atime_ns, label.stat().st_mtime_ns + 10**9))
    third, report = load_labels(config, "train")
    assert not report.from_cache and report.boxes == 4


def test_cache_invalidated_by_new_image_and_by_class_count(tmp_path, yolo_dataset, image_writer) -> None:
    data = yolo_dataset({"a": GOOD})
    load_labels(load_dataset_config(data), "train")
    image_writer(tmp_path / "ds" / "images" / "train" / "new.jpg")
    records, report = load_labels(load_dataset_config(data), "train")
    assert not report.from_cache and len(records) == 2 and report.missing_label_files == 1
    narrowed = load_dataset_config({"path": str(tmp_path / "ds"), "train": "images/train", "names": ["a"]})
    _, report = load_labels(narrowed, "train")
    assert not report.from_cache and report.class_out_of_range == 1


def test_unwritable_cache_stays_in_memory_and_warns_once(tmp_path, yolo_dataset, caplog) -> None:
    config = load_dataset_config(yolo_dataset({"a": GOOD}))
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the cache folder should be")
    cache = blocker / "train.cache.json"  # mkdir fails: a real OSError, even as root
    source = config.split("train")
    with caplog.at_level(logging.WARNING, logger="yolov12.data.label_cache"):
        _, first = load_split_labels(source, config.names, "train", cache)
        _, second = load_split_labels(source, config.names, "train", cache)
    assert first.cache_path is None and not first.from_cache
    assert second.from_cache
    warnings = [r for r in caplog.records if "keeping it in memory" in r.getMessage()]
    assert len(warnings) == 1


def test_cache_path_follows_ultralytics_layout(tmp_path, yolo_dataset) -> None:
    config = load_dataset_config(yolo_dataset({"a": GOOD}))
    assert cache_path_for(config.split("train"), config.root, "val") == tmp_path / "ds" / "labels" / "val.cache.json"


def test_use_cache_false_writes_nothing(tmp_path, yolo_dataset) -> None:
    config = load_dataset_config(yolo_dataset({"a": GOOD}))
    _, report = load_labels(config, "train", use_cache=False)
    assert report.cache_path is None and not (tmp_path / "ds" / "labels" / "train.cache.json").exists()


def test_segments_are_verified_with_their_boxes(tmp_path, yolo_dataset) -> None:
    rows = "0 0.1 0.1 0.5 0.1 0.5 0.6\n1 0.5 0.5 0.2 0.2\n"  # polygon row + box row
    records, report = load_labels(load_dataset_config(yolo_dataset({"a": rows})), "train")
    (record,) = records
    assert record.segments is not None and len(record.segments) == 2
    np.testing.assert_allclose(record.boxes_xywhn[0], [0.3, 0.35, 0.4, 0.5], atol=1e-6)
    np.testing.assert_allclose(record.segments[1], [[0.4, 0.4], [0.6, 0.4], [0.6, 0.6], [0.4, 0.6]], atol=1e-6)


@pytest.mark.parametrize("bad_row", ["0 nan 0.5 0.1 0.1", "0.5 0.5 0.5 0.1 0.1", "0 0.1 0.1 0.2 0.2 0.3 0.3 0.4"])
def test_other_malformed_rows(tmp_path, yolo_dataset, bad_row) -> None:
    _, report = load_labels(load_dataset_config(yolo_dataset({"a": bad_row + "\n"})), "train")
    assert report.malformed_rows == 1 and report.boxes == 0
