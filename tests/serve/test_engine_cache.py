"""The engine cache: what a cached engine is keyed by, a cached engine that no longer loads is rebuilt, engines are
built before a replica is ready, and ``python -m serve.engine_cache`` builds them ahead into the same cache."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from serve_support import confident_checkpoint

import serve.runtime
from serve import engine_cache
from serve.engine_cache import BuildTarget, EngineKey, EngineTargetError, build_target, cache_folder
from serve.runtime import InferenceRequest, ModelSource, build_artifact, load_serving_model
from yolov12.data.digest import file_sha256

ADA = BuildTarget.for_backend("tensorrt", capability=(8, 9), tensorrt_version="10.3.0")


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return confident_checkpoint(tmp_path_factory.mktemp("weights") / "thing.safetensors")


def no_export(*args, **kwargs):
    raise AssertionError("exported although the cache holds the engine")


def test_portable_formats_are_keyed_by_weights_size_and_batch_only(tmp_path: Path) -> None:
    for backend in ("onnxruntime", "openvino"):
        target = build_target(backend, "cpu")
        assert target.tag == "portable"
        key = EngineKey("abc", backend, 640, (1, 4, 8), target)
        assert cache_folder(tmp_path, key).name == f"abc-{backend}-640-b8"


def test_a_tensorrt_engine_is_keyed_by_gpu_generation_runtime_version_and_precision(tmp_path: Path) -> None:
    folders = {cache_folder(tmp_path, EngineKey("abc", "tensorrt", 640, (1, 4, 8), target, "d1")).name
               for target in (ADA, BuildTarget.for_backend("tensorrt", capability=(8, 0), tensorrt_version="10.3.0"),
                              BuildTarget.for_backend("tensorrt", capability=(8, 9), tensorrt_version="10.7.0"))}
    assert len(folders) == 3  # another GPU generation or TensorRT build never reuses an engine
    assert cache_folder(tmp_path, EngineKey("abc", "tensorrt", 640, (1, 4, 8), ADA, "d1")).name == \
        "abc-tensorrt-640x640-b1.4.8-sm89-trt10.3.0-fp16-onnxd1"
    with pytest.raises(EngineTargetError, match="compute capability and the TensorRT version"):
        BuildTarget.for_backend("tensorrt", capability=None, tensorrt_version="10.3.0")


@pytest.mark.parametrize("change", [
    {"imgsz": 320}, {"batch_profile": (2, 4, 8)}, {"batch_profile": (1, 2, 8)}, {"batch_profile": (1, 4, 16)},
    {"onnx_digest": "another-graph"}, {"weights_digest": "other-weights"},
])
def test_each_input_shape_and_the_source_onnx_change_a_tensorrt_key(change: dict) -> None:
    base = {"weights_digest": "abc", "backend": "tensorrt", "imgsz": 640, "batch_profile": (1, 4, 8),
            "target": ADA, "onnx_digest": "graph"}
    assert EngineKey(**{**base, **change}).folder_name != EngineKey(**base).folder_name


def test_a_tensorrt_key_without_the_onnx_digest_is_refused() -> None:
    with pytest.raises(EngineTargetError, match="sha256 of the ONNX it is built from"):
        EngineKey("abc", "tensorrt", 640, (1, 4, 8), ADA)


def test_a_tensorrt_engine_is_compiled_from_the_cached_onnx_and_keyed_by_its_hash(
        weights: Path, tmp_path: Path, monkeypatch) -> None:
    """The TensorRT build itself needs a GPU; the flow around it (ONNX first, its sha256 in the key, reuse) not."""
    compiled = []

    def fake_build(onnx_path: Path, output: Path, *, profile, device) -> Path:
        compiled.append((onnx_path, profile, device))
        output.write_bytes(b"engine")
        return output

    monkeypatch.setattr(serve.runtime, "build_target", lambda backend, device: ADA if backend == "tensorrt"
                        else BuildTarget.for_backend(backend))
    monkeypatch.setattr(serve.runtime, "build_tensorrt_engine", fake_build)
    source = ModelSource(str(weights), weights, "thing", "1")
    settings = {"imgsz": 64, "max_batch": 4, "device": "cuda:0", "cache_dir": str(tmp_path)}
    engine = build_artifact(source, "tensorrt", **settings)
    ((onnx_path, profile, device),) = compiled
    assert onnx_path.suffix == ".onnx" and profile == (1, 2, 4) and device == "cuda:0"
    assert engine.parent.name == (f"{file_sha256(weights)[:16]}-tensorrt-64x64-b1.2.4-sm89-trt10.3.0-fp16-"
                                  f"onnx{file_sha256(onnx_path)[:16]}")
    assert build_artifact(source, "tensorrt", **settings) == engine and len(compiled) == 1  # cached
    onnx_path.write_bytes(onnx_path.read_bytes() + b" ")  # another graph (e.g. a newer exporter) for the same weights
    assert build_artifact(source, "tensorrt", **settings) != engine and len(compiled) == 2


def test_the_replica_builds_the_multiplexed_engines_before_it_is_ready(weights: Path, tmp_path: Path,
                                                                       monkeypatch) -> None:
    from serve.model_deployment import Detector

    other = confident_checkpoint(tmp_path / "other.safetensors", bias=5.0)
    config = {"model": str(weights), "models": {"other": str(other)}, "backend": "onnxruntime", "device": "cpu",
              "imgsz": 64, "max_batch_size": 2, "threads": 1, "cache_dir": str(tmp_path / "cache")}
    detector = Detector.func_or_class(config)
    cached = {p.name for p in (tmp_path / "cache").rglob("*.onnx")}
    assert cached == {"thing.onnx", "other.onnx"}  # the multiplexed engine too, before any request
    monkeypatch.setattr(serve.runtime, "_export_portable", no_export)
    assert detector._load(str(other), "other").engine.info.backend == "onnxruntime"  # its first request: load only


def test_build_ahead_writes_where_a_replica_reads(weights: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    settings = ["backend=onnxruntime", "device=cpu", "imgsz=64", "max_batch_size=2", f"cache_dir={tmp_path}"]
    assert engine_cache.main([f"model={weights}", *settings]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    built = Path(line.removeprefix("default: "))
    assert built.is_file() and built.is_relative_to(tmp_path)
    monkeypatch.setattr(serve.runtime, "_export_portable", no_export)
    model = load_serving_model(str(weights), backend="onnxruntime", device="cpu", imgsz=64, max_batch=2, threads=1,
                               cache_dir=str(tmp_path))
    assert model.engine.info.artifact == str(built)


def test_build_ahead_with_a_bad_setting_is_one_line(capsys) -> None:
    assert engine_cache.main(["model=nowhere.safetensors", "imgsize=64"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "imgsize" in err


def test_tensorrt_on_a_machine_without_it_is_one_line() -> None:
    with pytest.raises(EngineTargetError) as info:
        build_target("tensorrt", "cuda:0")
    assert "\n" not in str(info.value) and ("tensorrt" in str(info.value) or "NVIDIA GPU" in str(info.value))


def test_a_cached_engine_that_does_not_load_is_rebuilt_with_one_warning(tmp_path: Path, caplog) -> None:
    weights = confident_checkpoint(tmp_path / "thing.safetensors")
    settings = {"backend": "onnxruntime", "device": "cpu", "imgsz": 64, "max_batch": 2, "threads": 1,
                "cache_dir": str(tmp_path / "cache")}
    load_serving_model(str(weights), **settings)
    (cached,) = (tmp_path / "cache").rglob("*.onnx")
    cached.write_bytes(b"a truncated or foreign engine")
    with caplog.at_level(logging.WARNING, logger="serve.runtime"):
        model = load_serving_model(str(weights), **settings)
    warnings = [r.getMessage() for r in caplog.records if "rebuilding" in r.getMessage()]
    assert len(warnings) == 1 and str(cached) in warnings[0], warnings
    image = np.full((64, 64, 3), 128, np.uint8)
    (prediction,) = model.predict([InferenceRequest(image)])
    assert prediction.detections.shape[1] == 6 and cached.read_bytes()[:4] != b"a tr"
