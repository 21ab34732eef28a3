"""The engine cache: what a cached engine is keyed by, and a cached engine that no longer loads is rebuilt."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from serve_support import confident_checkpoint

from serve.engine_cache import BuildTarget, EngineTargetError, build_target, cache_folder
from serve.runtime import InferenceRequest, load_serving_model


def test_portable_formats_are_keyed_by_weights_size_and_batch_only(tmp_path: Path) -> None:
    for backend in ("onnxruntime", "openvino"):
        target = build_target(backend, "cpu")
        assert target.tag == "portable"
        assert cache_folder(tmp_path, "abc", backend, 640, 8, target).name == f"abc-{backend}-640-b8"


def test_a_tensorrt_engine_is_keyed_by_gpu_generation_runtime_version_and_precision(tmp_path: Path) -> None:
    ada = BuildTarget.for_backend("tensorrt", capability=(8, 9), tensorrt_version="10.3.0")
    folders = {cache_folder(tmp_path, "abc", "tensorrt", 640, 8, target).name for target in (
        ada, BuildTarget.for_backend("tensorrt", capability=(8, 0), tensorrt_version="10.3.0"),
        BuildTarget.for_backend("tensorrt", capability=(8, 9), tensorrt_version="10.7.0"))}
    assert len(folders) == 3  # another GPU generation or TensorRT build never reuses an engine
    assert cache_folder(tmp_path, "abc", "tensorrt", 640, 8, ada).name == "abc-tensorrt-640-b8-sm89-trt10.3.0-fp16"
    with pytest.raises(EngineTargetError, match="compute capability and the TensorRT version"):
        BuildTarget.for_backend("tensorrt", capability=None, tensorrt_version="10.3.0")


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
