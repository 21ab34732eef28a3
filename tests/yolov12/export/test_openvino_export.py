"""OpenVINO export: the IR folder, its metadata, parity with PyTorch, precision hints, predict through YOLO()."""

from __future__ import annotations

import numpy as np
import pytest
from export_helpers import sample_photos, torch_output

from yolov12 import YOLO
from yolov12.config import PredictConfig
from yolov12.engines import backend_for, load_engine
from yolov12.export import read_openvino_metadata
from yolov12.infer import Predictor

PARITY = 1e-3


def test_folder_layout_and_metadata(turbo_openvino, turbo_n) -> None:
    assert turbo_openvino.name == "turbo_openvino" and turbo_openvino.is_dir()
    assert sorted(p.name for p in turbo_openvino.iterdir()) == ["metadata.yaml", "turbo.bin", "turbo.xml"]
    meta = read_openvino_metadata(turbo_openvino)
    assert meta.format == "openvino" and meta.task == "detect" and meta.names == turbo_n.names
    assert meta.imgsz == (320, 320) and meta.stride == 32 and meta.model_version == "turbo"
    assert meta.precision == "fp32" and not meta.half
    assert backend_for(turbo_openvino) == "openvino" and backend_for(turbo_openvino / "turbo.xml") == "openvino"


def test_round_trip_parity_and_batching(turbo_openvino, turbo_n) -> None:
    engine = load_engine(turbo_openvino, threads=2)
    assert engine.info.backend == "openvino" and engine.info.fixed_batch == 1 and engine.info.precision == "fp32"
    x = np.random.RandomState(0).uniform(0, 1, (2, 3, 320, 320)).astype(np.float32)
    got = engine(x)  # a batch of 2 through a batch-1 model: split
    assert got.shape == (2, 7, 2100)
    assert np.abs(got - torch_output(turbo_n, x)).max() <= PARITY


def test_bf16_precision_hint(turbo_openvino, turbo_n) -> None:
    """bf16 is native only with AVX512-BF16 / AMX; elsewhere OpenVINO stays fp32 and says so in ``info``."""
    engine = load_engine(turbo_openvino, precision="bf16", threads=2)
    assert engine.info.precision in ("bf16", "fp32")
    x = np.random.RandomState(1).uniform(0, 1, (1, 3, 320, 320)).astype(np.float32)
    tolerance = PARITY if engine.info.precision == "fp32" else 5.0  # bf16 has 8 mantissa bits
    assert np.abs(engine(x) - torch_output(turbo_n, x)).max() <= tolerance


def test_yolo_predicts_through_the_folder(turbo_openvino, turbo_n) -> None:
    images = sample_photos()
    want = Predictor(turbo_n, PredictConfig(imgsz=320, conf=0.0, max_det=10)).predict_batch(["a", "b"], images)
    model = YOLO(str(turbo_openvino))
    assert model.task == "detect" and model.engine.info.backend == "openvino"
    got = model.predict(images, conf=0.0, max_det=10)
    assert [len(r) for r in got] == [10, 10]
    np.testing.assert_allclose(got[1].boxes.xyxy.numpy(), want[1].boxes.xyxy.numpy(), atol=1e-2)
    with pytest.raises(ValueError, match="exported openvino model and can only predict"):
        model.export(format="onnx")


def test_openvino_also_reads_the_onnx_file(v1_static_onnx, v1_n) -> None:
    engine = load_engine(v1_static_onnx, backend="openvino", threads=2)
    assert engine.info.backend == "openvino" and engine.info.task == "detect"
    x = np.random.RandomState(2).uniform(0, 1, (1, 3, 320, 320)).astype(np.float32)
    assert np.abs(engine(x) - torch_output(v1_n, x)).max() <= PARITY
