"""Compiled torch inference: ``compile=True`` reaches the engine from predict and the CLI, compiled outputs match
eager ones, the compile cost is logged once per input shape, and the failure modes are one-line errors.

The model has random weights and BatchNorm statistics of the bundled photos, so that its boxes and scores spread
(with default statistics every box is the anchor grid and every score about 0, and any comparison would pass).
Tolerances, against the unfused eager fp32 output: compiled fp32 (the Conv+BN-fused model in inductor's kernels)
differs by float rounding only: relative L2 error at most 2e-4 and scores within 2e-3. bf16 keeps 8 bits of mantissa
and a random network amplifies that (eager bf16 autocast is about 18 % off here), so compiled bf16 must be off by
more than 1e-4 (bf16 did run) and by at most 3 times what eager bf16 autocast is.

Compiling yolov12n takes about a minute on two CPU cores: the compiled engines are built once per module, at 64x64.
"""

from __future__ import annotations

import logging
import os
import re

import cv2
import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

from yolov12.cli.arguments import parse_key_values
from yolov12.config import PredictConfig
from yolov12.engine.precision import cpu_has_native_bf16
from yolov12.engines import EngineError, EngineInfo
from yolov12.engines.torch_engine import TorchEngine
from yolov12.infer import Predictor, sample_images
from yolov12.infer.preprocess import letterbox_batch
from yolov12.models import build_model, load_architecture

SIZE = 64
LOG_LINE = re.compile(r"^torch\.compile: first forward at 1x3x64x64 took \d+\.\d s \(compile\); later calls reuse it$")


class CompileLog(logging.Handler):
    """Keeps the torch engine's INFO records (a module-scoped stand-in for caplog)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module", autouse=True)
def inductor_cache(tmp_path_factory):
    """The project cache (and so inductor's cache) in a folder of this module's own, never the user's; both
    variables are restored afterwards (the engine sets ``TORCHINDUCTOR_CACHE_DIR`` itself when it is unset)."""
    names = ("YOLOV12_CACHE", "TORCHINDUCTOR_CACHE_DIR")
    saved = {name: os.environ.get(name) for name in names}
    root = tmp_path_factory.mktemp("yolov12-cache")
    os.environ["YOLOV12_CACHE"] = str(root)
    os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
    yield root
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    """The bundled photos letterboxed to (N, 3, 64, 64) float32."""
    return letterbox_batch([cv2.imread(str(path)) for path in sample_images()], SIZE).to_float_nchw()


@pytest.fixture(scope="module")
def images(photos) -> np.ndarray:
    return photos[:1]


@pytest.fixture(scope="module")
def detector(photos):
    """yolov12n, 3 classes, random weights, BatchNorm statistics of the photos, eval mode."""
    torch.manual_seed(0)
    model = build_model(load_architecture("yolov12n").with_overrides(num_classes=3))
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = 1.0  # the statistics of this one batch
    with torch.no_grad():
        model.train()(torch.from_numpy(photos))
    return model.eval()


def relative_error(output: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(output - reference) / np.linalg.norm(reference))


@pytest.fixture(scope="module")
def eager_output(detector, images):
    with torch.no_grad():
        return detector(torch.from_numpy(images)).numpy()


@pytest.fixture(scope="module")
def compile_log():
    handler = CompileLog()
    logger = logging.getLogger("yolov12.engines.torch_engine")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(previous)


@pytest.fixture(scope="module")
def compiled_fp32(inductor_cache, detector, images, compile_log):
    """A compiled fp32 engine after two forwards; also the number of graphs dynamo built for each."""
    engine = TorchEngine(detector, compile=True)
    before = counters["stats"]["unique_graphs"]
    first = engine(images)
    after_first = counters["stats"]["unique_graphs"]
    second = engine(images)
    graphs = (after_first - before, counters["stats"]["unique_graphs"] - after_first)
    return {"engine": engine, "first": first, "second": second, "graphs": graphs}


# -- the key reaches the engine ---------------------------------------------------------------------------------------
def test_compile_is_a_predict_key_and_a_cli_key() -> None:
    assert PredictConfig.from_overrides({"compile": True}).compile is True
    assert PredictConfig().compile is False
    values = parse_key_values(["compile=true"], list(PredictConfig.model_fields))
    assert PredictConfig.from_overrides(values).compile is True


def test_predictor_builds_a_compiled_torch_engine(detector) -> None:
    predictor = Predictor(detector, PredictConfig(imgsz=SIZE, compile=True, device="cpu"))
    assert predictor.engine.compiled is not None and predictor.engine.info.precision == "fp32"
    assert Predictor(detector, PredictConfig(imgsz=SIZE, device="cpu")).engine.compiled is None


class _OnnxLikeEngine:
    """An engine of another backend (only what Predictor reads)."""

    def __init__(self) -> None:
        self.info = EngineInfo(backend="onnxruntime", task="detect", names={0: "a"}, stride=32, imgsz=(SIZE, SIZE),
                               dynamic_imgsz=False, min_batch=1, max_batch=1, end2end=False, input_dtype="float32",
                               device="cpu", precision="fp32", artifact="model.onnx")

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return np.zeros((len(images), 5, 84), np.float32)


def test_compile_with_another_backend_is_refused_in_one_line() -> None:
    with pytest.raises(EngineError) as error:
        Predictor(_OnnxLikeEngine(), PredictConfig(imgsz=SIZE, compile=True))
    message = str(error.value)
    assert "\n" not in message and "model.onnx" in message and "onnxruntime" in message
    assert "compile=False" in message


def test_compile_on_an_engine_built_without_it_is_refused(detector) -> None:
    with pytest.raises(EngineError, match=r"load_engine\(\.\.\., compile=True\)"):
        Predictor(TorchEngine(detector), PredictConfig(imgsz=SIZE, compile=True))


# -- compiled outputs -----------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_compiled_fp32_matches_eager(compiled_fp32, eager_output) -> None:
    assert eager_output[:, 4:].std() > 0.1  # the scores spread, so the comparison can fail
    for output in (compiled_fp32["first"], compiled_fp32["second"]):
        assert relative_error(output, eager_output) <= 2e-4
        np.testing.assert_allclose(output[:, 4:], eager_output[:, 4:], atol=2e-3)


@pytest.mark.slow
def test_the_model_compiles_to_one_graph_once_per_shape(compiled_fp32) -> None:
    assert compiled_fp32["graphs"] == (1, 0)  # no graph breaks, and no second compile for the same input


@pytest.mark.slow
def test_first_forward_per_shape_is_logged_once(compiled_fp32, compile_log) -> None:
    lines = [m for m in compile_log.messages if m.startswith("torch.compile: first forward")]
    assert len(lines) == 1 and LOG_LINE.match(lines[0]), lines


@pytest.mark.slow
def test_a_second_engine_on_the_same_model_reuses_the_compiled_code(compiled_fp32, detector, images,
                                                                     compile_log) -> None:
    before, logged = counters["stats"]["unique_graphs"], len(compile_log.messages)
    TorchEngine(detector, compile=True)(images)
    assert counters["stats"]["unique_graphs"] == before and len(compile_log.messages) == logged


@pytest.mark.slow
def test_the_live_model_is_not_fused_or_changed(compiled_fp32, detector) -> None:
    assert not detector.is_fused and compiled_fp32["engine"].compiled.module.is_fused
    assert detector.model[0].conv.weight.is_contiguous()  # the channels-last copy is the engine's own


@pytest.mark.slow
def test_the_inductor_cache_lives_under_the_project_cache(compiled_fp32, inductor_cache) -> None:
    folder = inductor_cache / "torchinductor"
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(folder) and any(folder.iterdir())


@pytest.mark.slow
@pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bf16 (AVX512-BF16 / AMX)")
def test_compiled_bf16_is_as_close_to_eager_fp32_as_eager_bf16(detector, images, eager_output) -> None:
    engine = TorchEngine(detector, compile=True, half=True)
    assert engine.info.precision == "bf16"
    compiled_error = relative_error(engine(images), eager_output)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        eager_bf16 = detector(torch.from_numpy(images)).float().numpy()
    assert 1e-4 < compiled_error <= 3 * relative_error(eager_bf16, eager_output)


def test_half_without_native_bf16_compiles_fp32(detector, monkeypatch) -> None:
    monkeypatch.setattr("yolov12.engines.torch_engine.cpu_has_native_bf16", lambda: False)
    engine = TorchEngine(detector, compile=True, half=True)
    assert engine.info.precision == "fp32" and not engine.bf16_autocast


# -- failure modes --------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_no_c_compiler_is_a_one_line_engine_error(inductor_cache, monkeypatch) -> None:
    import torch._inductor.config as inductor_config

    monkeypatch.setattr(inductor_config.cpp, "cxx", ("/nonexistent/bin/g++",))
    classifier = build_model(load_architecture("yolov12n-cls").with_overrides(num_classes=2)).eval()
    engine = TorchEngine(classifier, compile=True)
    with pytest.raises(EngineError) as error:
        engine(np.zeros((1, 3, 32, 32), np.float32))
    message = str(error.value)
    assert "\n" not in message and "C++ compiler" in message and "compile=False" in message
    assert error.value.__cause__ is None and error.value.__suppress_context__
