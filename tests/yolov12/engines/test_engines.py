"""The Engine interface: backend choice by artifact, the torch backend, input checks, batching rules."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from yolov12 import YOLO
from yolov12.engines import (
    BACKENDS,
    BaseEngine,
    Engine,
    EngineError,
    EngineInfo,
    EngineInputError,
    available_backends,
    backend_for,
    load_engine,
)
from yolov12.engines.torch_engine import TorchEngine
from yolov12.models import build_model, load_architecture


@pytest.fixture(scope="module")
def classifier():
    torch.manual_seed(0)
    return build_model(load_architecture("yolov12n-cls").with_overrides(num_classes=4)).eval()


@pytest.mark.parametrize(("artifact", "backend"), [
    ("best.safetensors", "torch"), ("yolo12n.pt", "torch"), ("m.onnx", "onnxruntime"), ("m.engine", "tensorrt"),
    ("m_openvino", "openvino"), ("m_openvino/m.xml", "openvino"),
])
def test_backend_follows_the_artifact(artifact, backend) -> None:
    assert backend_for(artifact) == backend


def test_unknown_artifacts_and_backends_are_clear_errors(tmp_path) -> None:
    with pytest.raises(EngineError, match=r"no engine for 'model\.tflite'"):
        backend_for("model.tflite")
    with pytest.raises(ValueError, match="unknown engine backend 'tvm'; choose one of torch, onnxruntime"):
        load_engine(tmp_path, backend="tvm")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_engine(tmp_path / "missing.onnx")


def test_available_backends_here() -> None:
    names = available_backends()
    assert {"torch", "onnxruntime", "openvino"} <= set(names) and set(names) <= set(BACKENDS)


def test_torch_engine_from_a_checkpoint_is_fused_and_matches_the_model(tmp_path, classifier) -> None:
    path = YOLO(classifier).save(tmp_path / "cls.safetensors")
    engine = load_engine(path, threads=1)
    assert isinstance(engine, TorchEngine) and isinstance(engine, Engine)
    info = engine.info
    assert (info.backend, info.task, info.stride, info.imgsz, info.dynamic_imgsz) == ("torch", "classify", 32,
                                                                                       (224, 224), True)
    assert info.fixed_batch is None and engine.model.is_fused and info.artifact == str(path)
    x = np.random.RandomState(0).uniform(0, 1, (3, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        want = classifier(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(engine(x), want, atol=1e-5)
    np.testing.assert_allclose(engine(torch.from_numpy(x)), want, atol=1e-5)  # torch input too


def test_torch_engine_keeps_a_live_model_unfused_and_restores_its_mode(classifier) -> None:
    classifier.train()
    try:
        engine = TorchEngine(classifier)
        out = engine(np.zeros((1, 3, 32, 32), np.float32))
        assert classifier.training and not classifier.is_fused and out.shape == (1, 4)
        assert np.isclose(out.sum(), 1.0, atol=1e-5)  # eval-mode output: probabilities
    finally:
        classifier.eval()


def test_input_checks(classifier) -> None:
    engine = TorchEngine(classifier)
    with pytest.raises(EngineInputError, match=r"expects a \(B, 3, H, W\) float batch"):
        engine(np.zeros((2, 32, 32, 3), np.float32))
    with pytest.raises(EngineInputError, match="input size 40x32 is not a multiple of the model stride 32"):
        engine(np.zeros((1, 3, 40, 32), np.float32))
    with pytest.raises(ValueError, match="task"):
        TorchEngine(torch.nn.Linear(2, 2))


class Recording(BaseEngine):
    """A fixed-batch fake engine that records the batch sizes it was run with."""

    def __init__(self, min_batch: int, max_batch: int | None) -> None:
        self.info = EngineInfo(backend="fake", task="classify", names={0: "a"}, stride=32, imgsz=(32, 32),
                               dynamic_imgsz=False, min_batch=min_batch, max_batch=max_batch)
        self.calls: list[int] = []

    def forward(self, images):
        self.calls.append(images.shape[0])
        return np.asarray(images)[:, :1, 0, 0] + 1.0  # (B, 1), distinguishes the padding (zeros -> 1.0)


def test_fixed_batch_engines_split_and_pad() -> None:
    engine = Recording(4, 4)
    x = np.random.rand(6, 3, 32, 32).astype(np.float32)
    out = engine(x)
    assert engine.calls == [4, 4] and out.shape == (6, 1)
    np.testing.assert_allclose(out[:, 0], x[:, 0, 0, 0] + 1.0)


class CanvasRecording(Recording):
    """:class:`Recording` that also takes the uint8 canvas itself."""

    def __init__(self, min_batch: int, max_batch: int | None) -> None:
        super().__init__(min_batch, max_batch)
        self.info = dataclasses.replace(self.info, canvas_input=True)

    def forward_canvas(self, canvas):
        self.calls.append(-canvas.shape[0])  # negative: a canvas batch
        return canvas[:, 0, 0, 2:3].astype(np.float32) / 255 + 1.0  # the R channel, as forward sees it


def test_canvas_batches_are_split_padded_or_converted_like_float_batches() -> None:
    canvas = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    expected = canvas[:, 0, 0, 2] / np.float32(255) + 1.0
    native = CanvasRecording(4, 4)
    np.testing.assert_allclose(native.run_canvas(canvas)[:, 0], expected, rtol=1e-6)
    assert native.calls == [-4, -4], "split and padded to the fixed batch, as canvases"
    converting = Recording(4, 4)
    np.testing.assert_allclose(converting.run_canvas(canvas)[:, 0], expected, rtol=1e-6)
    assert converting.calls == [4, 4], "converted to the float input, then split"
    with pytest.raises(EngineInputError, match="was exported for 32x32 inputs, got 32x64"):
        native.run_canvas(np.zeros((1, 32, 64, 3), np.uint8))
    with pytest.raises(NotImplementedError, match="does not take the uint8 canvas"):
        converting.forward_canvas(canvas)


def test_bounded_dynamic_batch_engines_split_only() -> None:
    engine = Recording(1, 3)
    assert engine(np.zeros((7, 3, 32, 32), np.float32)).shape == (7, 1) and engine.calls == [3, 3, 1]
    assert "batch 1..3" in repr(engine)


@pytest.mark.parametrize("module", ["yolov12.engines.torch_engine", "yolov12.engines", "yolov12.export",
                                    "yolov12.engines.onnxruntime_engine", "yolov12.engines.openvino_engine",
                                    "yolov12.engines.tensorrt_engine", "yolov12.infer.predictor"])
def test_every_module_imports_first(module) -> None:
    """No import cycle between engines and infer, whichever is imported first."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(("name", "preference", "expected"), [
    ("m.onnx", "auto", "onnxruntime"), ("m.onnx", "openvino", "openvino"), ("m.engine", "tensorrt", "tensorrt"),
    ("m_openvino", "auto", "openvino"),
])
def test_an_exported_artifact_runs_on_its_own_backend_or_openvino_for_onnx(tmp_path, name, preference, expected):
    from yolov12.engines import artifact_backend

    assert artifact_backend(tmp_path / name, preference) == expected


def test_an_exported_artifact_refuses_another_backend_in_one_line(tmp_path):
    from yolov12.engines import EngineError, artifact_backend

    with pytest.raises(EngineError, match=r"m.engine is a tensorrt artifact and cannot run on backend=onnxruntime; "
                                          r"give the native weights"):
        artifact_backend(tmp_path / "m.engine", "onnxruntime")


def test_an_option_the_backend_does_not_take_is_refused_in_one_line(tmp_path) -> None:
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"not parsed: the options are checked first")
    with pytest.raises(EngineError, match=r"onnxruntime backend takes no option compile \(its options: .*threads"):
        load_engine(onnx, backend="onnxruntime", compile=True)
