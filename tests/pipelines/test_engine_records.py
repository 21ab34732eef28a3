"""Engine records as model-version tags: key, compact value under the tag limit, tolerant reading."""

from __future__ import annotations

import json
import logging

import pytest

from pipelines.engine_records import (
    TAG_VALUE_LIMIT,
    TEXT_LIMIT,
    EngineRecord,
    EngineRecordError,
    registered_engines,
    without_engine_tags,
)

SHA = "0123456789abcdef" * 4


def record(**changes) -> EngineRecord:
    values = {"backend": "tensorrt", "format": "engine", "precision": "fp16", "sha256": SHA, "device": "cuda:0",
              "builder": {"tensorrt": "10.3.0", "yolov12": "0.1.0"}, "imgsz": 640, "batch": 8,
              "gpu": "NVIDIA H100 80GB HBM3", "artifact": "best.engine", "weights_sha256": "f" * 64,
              "host": "node-1", "loaded_at": "2026-01-01T00:00:00Z"}
    return EngineRecord(**{**values, **changes})


def test_one_tag_per_engine_with_a_value_that_reads_back() -> None:
    engine = record()
    assert engine.tag_key == "yolov12.engine.tensorrt.0123456789ab"
    value = engine.tag_value()
    assert EngineRecord.from_tag(value) == engine and " " not in value.replace("NVIDIA H100 80GB HBM3", "")
    assert engine.summary() == {"format": "engine", "precision": "fp16", "sha256": SHA, "device": "cuda:0",
                                "gpu": "NVIDIA H100 80GB HBM3", "builder": {"tensorrt": "10.3.0", "yolov12": "0.1.0"}}


def test_values_stay_under_the_tag_limit_or_say_which_field_is_too_large() -> None:
    long_name = record(host="h" * 10_000, artifact="a" * 10_000)
    data = json.loads(long_name.tag_value())
    assert len(data["host"]) == TEXT_LIMIT and len(data["artifact"]) == TEXT_LIMIT
    with pytest.raises(EngineRecordError, match=f"over the {TAG_VALUE_LIMIT} a tag holds; shorten its builder"):
        record(builder={f"library{i}": "1.0" for i in range(400)}).tag_value()
    with pytest.raises(EngineRecordError, match="not a lower-case hex sha256"):
        record(sha256="").tag_value()


def test_reading_skips_what_is_not_an_engine_record_and_keeps_newer_fields_out(
        caplog: pytest.LogCaptureFixture) -> None:
    first, second = record(loaded_at="2026-01-01T00:00:00Z"), record(sha256="ab" * 32, loaded_at="2026-02-01T00:00Z")
    newer = json.dumps({**json.loads(second.tag_value()), "added_later": 1})
    tags = {"weights_sha256": "f" * 64, second.tag_key: newer, first.tag_key: first.tag_value(),
            "yolov12.engine.onnxruntime.bad": "{not json", "yolov12.engine.torch.partial": '{"backend": "torch"}'}
    with caplog.at_level(logging.WARNING, logger="pipelines.engine_records"):
        assert registered_engines(tags) == [first, second]
    assert [r.getMessage().split(" is not")[0] for r in caplog.records] == [
        "model-version tag yolov12.engine.onnxruntime.bad", "model-version tag yolov12.engine.torch.partial"]
    assert "lacks device, format, precision, sha256" in caplog.records[1].getMessage()
    assert without_engine_tags(tags) == {"weights_sha256": "f" * 64}
