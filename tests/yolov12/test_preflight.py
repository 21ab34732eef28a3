"""``yolov12.preflight``: model specs and ``data=`` are checked in one line, without building or downloading."""

from __future__ import annotations

from pathlib import Path

import pytest

from yolov12.preflight import PreflightError, check_data, check_model_source, model_source_kind


@pytest.mark.parametrize(
    ("spec", "kind"),
    [("yolov12n.yaml", "architecture"), ("yolov12s", "architecture"), ("w.safetensors", "weights"),
     ("w.pt", "weights"), ("m.onnx", "exported"), ("m_openvino", "exported"), ("m.engine", "exported"),
     ("models:/det@champion", "registry"), ("models:/det/3", "registry"), ("s3://bucket/w.safetensors", "remote")],
)
def test_kind_follows_the_form_of_the_spec(spec: str, kind: str) -> None:
    assert model_source_kind(spec) == kind


def test_local_sources_must_resolve(tmp_path: Path) -> None:
    assert check_model_source("yolov12n.yaml") == "architecture"
    with pytest.raises(PreflightError, match="Did you mean yolov12"):
        check_model_source("yolov12q.yaml")
    with pytest.raises(PreflightError, match="never downloads weights"):
        check_model_source(tmp_path / "missing.safetensors")
    (tmp_path / "broken.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(PreflightError, match="broken.safetensors"):
        check_model_source(tmp_path / "broken.safetensors")
    with pytest.raises(PreflightError, match="export it first"):
        check_model_source(tmp_path / "missing.onnx")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(PreflightError, match="is a .txt file"):
        check_model_source(tmp_path / "notes.txt")


def test_a_refused_kind_names_what_is_taken_and_the_hint() -> None:
    with pytest.raises(PreflightError, match=r"is an architecture \(random weights\).*takes a weights file.*; add x"):
        check_model_source("yolov12n.yaml", ("weights",), hint="add x")


def test_data_resolves_without_building_it(tmp_path: Path) -> None:
    check_data("sample")  # a built-in name: accepted as is
    check_data("s3://bucket/data.yaml")  # left to the workers: checking means syncing
    with pytest.raises(PreflightError, match="data: .*'samplee'.*sample"):
        check_data("samplee")
    (tmp_path / "images").mkdir()
    (tmp_path / "data.yaml").write_text(f"path: {tmp_path}\ntrain: images\nval: images\nnames: [a]\n")
    check_data(tmp_path / "data.yaml")
    with pytest.raises(PreflightError, match="split 'test' is not defined"):
        check_data(tmp_path / "data.yaml", ("train", "test"))
    (tmp_path / "data.yaml").write_text(f"path: {tmp_path}\ntrain: images\nval: val-images\nnames: [a]\n")
    with pytest.raises(PreflightError, match="val-images"):
        check_data(tmp_path / "data.yaml")
