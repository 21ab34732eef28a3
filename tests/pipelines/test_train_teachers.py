"""GKD teachers named in the pipeline config reach each worker as local files (s3:// downloaded once per node)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.config import load_pipeline_config
from pipelines.train import configured_teachers
from pipelines.worker import resolve_teachers
from yolov12.config.train import TrainConfig


def test_s3_teachers_are_cached_once_per_node_and_local_ones_pass_through(s3, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("YOLOV12_CACHE", str(tmp_path / "cache"))
    key = f"teachers/{tmp_path.name}/yolov12s.safetensors"
    s3.client().put_object(Bucket=s3.bucket, Key=key, Body=b"teacher bytes")
    local_teacher = tmp_path / "local.safetensors"
    local_teacher.write_bytes(b"local teacher")
    remote = f"s3://{s3.bucket}/{key}"
    config = load_pipeline_config(None, {"distill.teachers": [remote, str(local_teacher)]})
    assert configured_teachers(config) == [remote, str(local_teacher)]

    resolved, named = resolve_teachers(config.train)
    assert named == [remote, str(local_teacher)]
    downloaded = Path(resolved.distill.teachers[0])
    assert downloaded.read_bytes() == b"teacher bytes" and downloaded.is_relative_to(tmp_path / "cache")
    assert resolved.distill.teachers[1] == str(local_teacher)
    first = downloaded.stat().st_mtime_ns
    again, _ = resolve_teachers(config.train)  # a second worker on the same node: cache hit, no download
    assert again.distill.teachers[0] == str(downloaded) and downloaded.stat().st_mtime_ns == first


def test_missing_teacher_file_is_a_clear_error_and_no_teacher_is_plain_training(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist on node"):
        resolve_teachers(TrainConfig.from_overrides(distill={"teachers": [str(tmp_path / "missing.safetensors")]}))
    plain = TrainConfig.from_overrides(epochs=1)
    assert resolve_teachers(plain) == (plain, [])
