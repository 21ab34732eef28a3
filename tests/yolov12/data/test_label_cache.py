"""A label cache that parses as JSON but has the wrong structure is a miss: one warning line, then it is rebuilt."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from yolov12.data.dataset_config import load_dataset_config
from yolov12.data.label_cache import read_cached_labels
from yolov12.data.labels import load_labels

GOOD = "0 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n"


def _first_record(payload: dict[str, Any]) -> dict[str, Any]:
    return payload["records"][0]


MALFORMED: dict[str, Callable[[dict[str, Any]], None]] = {
    "no records": lambda p: p.pop("records"),
    "records not a list": lambda p: p.update(records={"a": 1}),
    "record not an object": lambda p: p["records"].__setitem__(0, "a.jpg"),
    "record without boxes": lambda p: _first_record(p).pop("boxes"),
    "boxes of text": lambda p: _first_record(p).update(boxes="0.5 0.5 0.2 0.2"),
    "ragged boxes": lambda p: _first_record(p).update(boxes=[[0.5, 0.5, 0.2], [0.3, 0.3, 0.1, 0.1]]),
    "classes and boxes disagree": lambda p: _first_record(p).update(classes=[0]),
    "class id beyond the names": lambda p: _first_record(p).update(classes=[0, 3]),
    "box outside the image": lambda p: _first_record(p).update(boxes=[[0.5, 0.5, 0.2, 0.2], [1.5, 0.3, 0.1, 0.1]]),
    "height of text": lambda p: _first_record(p).update(height="64"),
    "negative width": lambda p: _first_record(p).update(width=-80),
    "path not a string": lambda p: _first_record(p).update(path=7),
    "segments not a list": lambda p: _first_record(p).update(segments=3),
    "no report": lambda p: p.pop("report"),
    "report a list": lambda p: p.update(report=[1, 2]),
    "report count of text": lambda p: p["report"].update(images="two"),
    "report problems a list": lambda p: p["report"].update(problems=["a.txt"]),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_cache_is_rebuilt_with_one_warning(tmp_path, yolo_dataset, caplog, case: str) -> None:
    config = load_dataset_config(yolo_dataset({"a": GOOD, "b": "2 0.5 0.5 0.4 0.4\n"}))
    expected, _ = load_labels(config, "train")
    cache = tmp_path / "ds" / "labels" / "train.cache.json"
    payload = json.loads(cache.read_text())
    MALFORMED[case](payload)
    cache.write_text(json.dumps(payload))  # same version and hash: only the structure is wrong
    with caplog.at_level(logging.WARNING, logger="yolov12.data.label_cache"):
        records, report = load_labels(config, "train")
    assert not report.from_cache and report.boxes == 3
    for a, b in zip(expected, records, strict=True):
        assert a.path == b.path and np.array_equal(a.boxes_xywhn, b.boxes_xywhn)
    warnings = [r.getMessage() for r in caplog.records if r.name == "yolov12.data.label_cache"]
    assert len(warnings) == 1 and str(cache) in warnings[0] and "rebuilding" in warnings[0]
    _, again = load_labels(config, "train")  # the rewritten cache is well formed again
    assert again.from_cache


def test_a_well_formed_cache_reads_back_as_records_and_report(tmp_path, yolo_dataset) -> None:
    config = load_dataset_config(yolo_dataset({"a": GOOD}))
    expected, report = load_labels(config, "train")
    payload = json.loads(report.cache_path.read_text())
    cached = read_cached_labels(report.cache_path, payload["hash"])
    assert cached is not None
    records, cached_report = cached
    assert [r.path for r in records] == [r.path for r in expected] and cached_report.boxes == 2
    assert read_cached_labels(report.cache_path, "another hash") is None
