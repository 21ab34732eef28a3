"""OpenVINO export: the IR folder, its metadata, parity with PyTorch, precision hints, predict through YOLO()."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from export_helpers import (
    assert_same_detections,
    export_cached,
    gap_threshold,
    make_photo_model,
    nms,
    sample_photos,
    torch_output,
)

from yolov12 import YOLO
from yolov12.config import PredictConfig
from yolov12.engines import EngineInputError, backend_for, load_engine
from yolov12.engines.base import canvas_to_float_nchw
from yolov12.export import read_openvino_metadata
from yolov12.infer import Predictor
from yolov12.infer.preprocess import letterbox_batch

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


def test_the_uint8_canvas_converted_in_the_graph_gives_the_float_inputs_outputs(turbo_openvino) -> None:
    """``run_canvas``: OpenVINO's pre-processing steps (u8 -> f32, BGR -> RGB, /255, NHWC -> NCHW) in the graph
    equal the Python conversion; a canvas batch of 3 through the batch-1 model is split like a float batch."""
    engine = load_engine(turbo_openvino, threads=2)
    assert engine.info.canvas_input
    photos = sample_photos()
    canvas = letterbox_batch([*photos, photos[0][::2]], 320).canvas
    expected = engine(canvas_to_float_nchw(canvas))
    got = engine.run_canvas(canvas)
    assert got.shape == expected.shape == (3, 7, 2100)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 * float(np.abs(expected).max()))
    with pytest.raises(EngineInputError, match=r"expects a \(B, H, W, 3\) uint8 canvas"):
        engine.run_canvas(canvas.astype(np.float32))
    with pytest.raises(EngineInputError, match="exported for 320x320 inputs, got 256x320"):
        engine.run_canvas(canvas[:, :256])


def test_bf16_precision_hint(turbo_openvino, turbo_n) -> None:
    """bf16 is native only with AVX512-BF16 / AMX; elsewhere OpenVINO stays fp32 and says so in ``info``."""
    engine = load_engine(turbo_openvino, precision="bf16", threads=2)
    assert engine.info.precision in ("bf16", "fp32")
    x = np.random.RandomState(1).uniform(0, 1, (1, 3, 320, 320)).astype(np.float32)
    tolerance = PARITY if engine.info.precision == "fp32" else 5.0  # bf16 has 8 mantissa bits
    assert np.abs(engine(x) - torch_output(turbo_n, x)).max() <= tolerance


def test_yolo_predicts_through_the_folder(tmp_path_factory) -> None:
    # A model whose detections depend on the photo, and a threshold in a wide score gap: random weights give
    # near-tied scores, where NMS in another runtime may legitimately keep another box.
    torch_model = make_photo_model("yolov12n")
    folder = export_cached(torch_model, tmp_path_factory, "photo", format="openvino", imgsz=320)
    images = sample_photos()
    reference = Predictor(torch_model, PredictConfig(imgsz=320))
    conf = gap_threshold(reference.inference(reference.preprocess(images)[0]))
    want = Predictor(torch_model, PredictConfig(imgsz=320, conf=conf)).predict_batch(["a", "b"], images)
    model = YOLO(str(folder))
    assert model.task == "detect" and model.engine.info.backend == "openvino"
    got = model.predict(images, conf=conf)
    assert all(len(r) > 0 for r in want)
    assert_same_detections([r.boxes.data for r in want], [r.boxes.data for r in got])
    with pytest.raises(ValueError, match="exported openvino model and can only predict"):
        model.export(format="onnx")


def test_openvino_also_reads_the_onnx_file(v1_static_onnx, v1_n) -> None:
    engine = load_engine(v1_static_onnx, backend="openvino", threads=2)
    assert engine.info.backend == "openvino" and engine.info.task == "detect"
    x = np.random.RandomState(2).uniform(0, 1, (1, 3, 320, 320)).astype(np.float32)
    assert np.abs(engine(x) - torch_output(v1_n, x)).max() <= PARITY


def test_end_to_end_nms_in_the_graph_equals_our_nms(tmp_path_factory) -> None:
    """nms=True in OpenVINO: a static batch-1 graph (the one the CPU plugin failed on as soon as a box was kept,
    seen with OpenVINO 2026.4), at 96 px so that max_det=300 exceeds the 189 anchors (the padded top-k)."""
    size = 96
    torch_model = make_photo_model("yolov12n", imgsz=size)
    images = sample_photos()
    reference = Predictor(torch_model, PredictConfig(imgsz=size))
    inputs, _ = reference.preprocess(images)
    raw = reference.inference(inputs)
    conf = gap_threshold(raw)
    folder = export_cached(torch_model, tmp_path_factory, "e2e", format="openvino", imgsz=size, nms=True, conf=conf)
    engine = load_engine(folder, threads=2)
    assert engine.info.end2end and engine.info.fixed_batch == 1 and read_openvino_metadata(folder).nms["conf"] == conf
    out = engine(inputs.numpy())
    assert out.shape == (2, 300, 6)
    want = nms(raw, conf)
    got = [rows[rows[:, 4] > 0] for rows in out]
    assert all(len(w) > 0 for w in want)
    assert_same_detections(want, got)
    assert not out[0, len(got[0]):].any() and not out[1, len(got[1]):].any()  # zero rows after the last one
    results = YOLO(str(folder)).predict(images, imgsz=size, conf=conf)
    expected = Predictor(torch_model, PredictConfig(imgsz=size, conf=conf)).predict_batch(["a", "b"], images)
    assert_same_detections([r.boxes.data for r in expected], [r.boxes.data for r in results])


TELEMETRY_PROBE = """
import sys
import onnx
from onnx import TensorProto, helper
import openvino_telemetry.utils.sender as sender

sent = []
sender.TelemetrySender.send = lambda self, backend, message: sent.append(message)
import openvino as ov  # noqa: E402  (the import itself sends an event unless opted out)

x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
onnx.save(helper.make_model(graph), sys.argv[1])
ov.convert_model(sys.argv[1])
print(len(sent))
"""


def test_openvino_sends_no_telemetry_in_this_environment(tmp_path) -> None:
    """scripts/dev.sh records OpenVINO's opt-out (~/intel/openvino_telemetry = 0): otherwise every import and
    conversion forks a sender process from a background thread, inside processes that also run Ray and gRPC."""
    run = subprocess.run([sys.executable, "-c", TELEMETRY_PROBE, str(tmp_path / "relu.onnx")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "0", (
        "OpenVINO would send telemetry from this environment: `bash scripts/dev.sh install` opts out"
        " (it writes 0 to ~/intel/openvino_telemetry unless a choice is there)")
