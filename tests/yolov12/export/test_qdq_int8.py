"""Explicit int8 for TensorRT: the Q/DQ ONNX NNCF makes (signed, symmetric, post-processing in float), its outputs in
ONNX Runtime against torch, and the refusal of implicit (calibrator) int8 builds.

TensorRT itself needs an NVIDIA GPU (scripts/gpu_check.sh builds and checks the engine there); everything up to the
engine build runs here.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from export_helpers import export_cached, make_photo_model, sample_photos, torch_output
from onnx import TensorProto, helper, numpy_helper

from yolov12.engines import load_engine
from yolov12.export import read_onnx_metadata
from yolov12.export.api import head_scope
from yolov12.export.calibration import CalibrationImages
from yolov12.export.onnx_int8 import _make_signed, count_qdq_nodes, postprocess_nodes, quantize_onnx
from yolov12.export.tensorrt import BuildOptions, EngineBuildError, batch_profile, build_engine
from yolov12.infer import sample_images
from yolov12.infer.preprocess import letterbox_batch

SIZE = 128
# The tolerances of the OpenVINO int8 tests (test_openvino_int8.test_outputs_are_close_to_fp32): the photo model's
# random-weight scores spread over ~0.0001..0.005, so they are compared by rank and correlation, boxes by value.
MEDIAN_BOX_ERROR_PX = 1.0
MIN_SCORE_CORRELATION = 0.9
TOP10_IN_TOP30 = 8


@pytest.fixture(scope="module")
def photo_model():
    return make_photo_model("yolov12n", imgsz=SIZE)


@pytest.fixture(scope="module")
def float_onnx(photo_model, tmp_path_factory):
    return export_cached(photo_model, tmp_path_factory, "float.onnx", imgsz=SIZE, dynamic=True, batch=2)


@pytest.fixture(scope="module")
def qdq_onnx(photo_model, float_onnx, tmp_path_factory):
    """Calibrated on the two sample photos (the images the exporter's ``data=`` takes for OpenVINO int8 too)."""
    images = CalibrationImages.from_data([str(p) for p in sample_images()], (SIZE, SIZE))
    output = tmp_path_factory.mktemp("qdq") / "int8.onnx"
    return quantize_onnx(float_onnx, output, images, head_scope=head_scope(photo_model))


def _initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


@pytest.mark.slow
def test_the_onnx_is_explicitly_quantised_the_way_tensorrt_takes_it(qdq_onnx) -> None:
    model = onnx.load(str(qdq_onnx))
    onnx.checker.check_model(model)
    ops = [node.op_type for node in model.graph.node]
    assert ops.count("QuantizeLinear") > 100 and ops.count("DequantizeLinear") > 100
    values = _initializers(model)
    points = [values[node.input[2]] for node in model.graph.node
              if node.op_type in ("QuantizeLinear", "DequantizeLinear") and len(node.input) == 3]
    assert points and all(p.dtype == np.int8 and not p.any() for p in points)  # signed, symmetric: TensorRT's int8
    meta = read_onnx_metadata(qdq_onnx)
    assert meta.int8 and meta.imgsz == (SIZE, SIZE) and meta.dynamic


@pytest.mark.slow
def test_the_post_processing_stays_in_float(qdq_onnx, photo_model) -> None:
    """No dequantised input in the DFL / box decode / sigmoid / output concat; the head's convolutions are int8."""
    model = onnx.load(str(qdq_onnx))
    scope = head_scope(photo_model)
    producers = {out: node.op_type for node in model.graph.node for out in node.output}
    kept = set(postprocess_nodes(model, scope))
    output_node = next(node.name for node in model.graph.node if model.graph.output[0].name in node.output)
    assert {f"/{scope}/dfl/Softmax", f"/{scope}/Sigmoid", output_node} <= kept
    for node in model.graph.node:
        if node.name in kept:
            assert node.op_type not in ("QuantizeLinear", "DequantizeLinear"), node.name
            assert all(producers.get(name) != "DequantizeLinear" for name in node.input), node.name
    head_conv_inputs = [producers.get(name) for node in model.graph.node
                        if node.name.startswith(f"/{scope}/cv3.0/") and node.op_type == "Conv" for name in node.input]
    assert "DequantizeLinear" in head_conv_inputs


@pytest.mark.slow
def test_onnx_runtime_detections_agree_with_torch_within_int8_tolerance(qdq_onnx, photo_model) -> None:
    """Measured at 128 px: median box error 0.25 px, score correlation 0.98 / 0.9996, all 10 best anchors kept."""
    engine = load_engine(qdq_onnx, backend="onnxruntime", threads=1)
    x = letterbox_batch(sample_photos(), SIZE).to_float_nchw()
    want, got = torch_output(photo_model, x), engine(x)
    assert got.shape == want.shape == (2, 7, 336)
    assert np.median(np.abs(got[:, :4] - want[:, :4])) <= MEDIAN_BOX_ERROR_PX
    best_want, best_got = want[:, 4:].max(1), got[:, 4:].max(1)
    for image in range(2):
        assert np.corrcoef(best_want[image], best_got[image])[0, 1] >= MIN_SCORE_CORRELATION
        top_want = set(np.argsort(best_want[image])[::-1][:10])
        assert len(top_want & set(np.argsort(best_got[image])[::-1][:30])) >= TOP10_IN_TOP30


def _unsigned_qdq_graph(scale: float) -> onnx.ModelProto:
    """x -> QuantizeLinear(uint8, zero point 0) -> DequantizeLinear -> y: NNCF's form for a non-negative tensor."""
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="Q"),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="DQ")]
    graph = helper.make_graph(
        nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
        [numpy_helper.from_array(np.array(scale, np.float32), "s"),
         numpy_helper.from_array(np.array(0, np.uint8), "z")],
        value_info=[helper.make_tensor_value_info("q", TensorProto.UINT8, [4])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_unsigned_quantisers_become_signed_with_the_same_range() -> None:
    scale = 0.01
    model = _unsigned_qdq_graph(scale)
    _make_signed(model)
    assert _initializers(model)["z"].dtype == np.int8 and count_qdq_nodes(model) == 2
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.array([0.0, 0.5, 1.7, 255 * scale], np.float32)
    (y,) = session.run(None, {"x": x})
    step = scale * 255 / 127
    np.testing.assert_allclose(y, x, atol=step / 2 + 1e-6)  # the whole [0, 255 * scale] range survives


def _float_identity_onnx(path) -> None:
    graph = helper.make_graph([helper.make_node("Identity", ["images"], ["output0"])], "g",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 3, 32, 32])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_an_int8_build_from_a_float_onnx_is_refused_in_one_line(tmp_path) -> None:
    """Implicit int8 (a calibrator on the fp32 ONNX) is deprecated in TensorRT 10: refused before TensorRT is asked."""
    _float_identity_onnx(tmp_path / "float.onnx")
    with pytest.raises(EngineBuildError, match=r"no QuantizeLinear/DequantizeLinear nodes.*implicit int8 "
                                               r"calibrator is deprecated.*int8=True data=") as caught:
        build_engine(tmp_path / "float.onnx", tmp_path / "m.engine", None, BuildOptions(int8=True))
    assert "\n" not in str(caught.value) and not (tmp_path / "m.engine").exists()


def test_build_options_refuse_half_with_int8_and_a_bad_profile() -> None:
    with pytest.raises(EngineBuildError, match="half=True and int8=True do not combine"):
        BuildOptions(half=True, int8=True)
    with pytest.raises(EngineBuildError, match="min 1 <= opt 8 <= max 4"):
        BuildOptions(min_batch=1, opt_batch=8, max_batch=4)
    assert batch_profile(8, dynamic=True) == (1, 4, 8) and batch_profile(4, dynamic=False) == (4, 4, 4)
    assert BuildOptions(int8=True).precision == "int8" and BuildOptions(half=True).precision == "fp16"


@pytest.fixture
def tensorrt_stand_in(monkeypatch) -> list:
    """No GPU here: ``require_tensorrt`` passes and ``build_engine`` records what it was given (after its own Q/DQ
    check), so the export's int8 flow up to the TensorRT build runs on the CPU."""
    from yolov12.export import tensorrt as trt_export

    builds: list = []

    def record(onnx_path, engine_path, metadata, options):
        if options.int8:
            trt_export.require_qdq_onnx(onnx_path)
        builds.append((onnx_path, metadata, options))
        engine_path.write_bytes(b"engine")
        return engine_path

    monkeypatch.setattr(trt_export, "require_tensorrt", lambda action: None)
    monkeypatch.setattr(trt_export, "build_engine", record)
    monkeypatch.setattr("yolov12.export.api.select_device", lambda device: torch.device("cpu"))
    return builds


def test_an_int8_engine_export_builds_from_the_qdq_onnx_it_writes_beside_the_engine(tensorrt_stand_in,
                                                                                      tmp_path) -> None:
    from export_helpers import make_model

    from yolov12.export import ExportError, export_model

    model = make_model("yolov12n-cls", num_classes=3)
    engine = export_model(model, format="engine", int8=True, imgsz=64, output=str(tmp_path / "m_int8.engine"),
                          data=[str(p) for p in sample_images()])
    ((onnx_path, metadata, options),) = tensorrt_stand_in
    assert onnx_path == tmp_path / "m_int8.onnx" and engine == tmp_path / "m_int8.engine"
    assert count_qdq_nodes(onnx.load(str(onnx_path))) > 0 and read_onnx_metadata(onnx_path).int8
    assert options.int8 and not options.half and metadata.int8 and metadata.format == "engine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m_int8.engine", "m_int8.onnx"]  # the fp32 ONNX was scratch
    with pytest.raises(ExportError, match="half=True and int8=True do not combine"):
        export_model(model, format="engine", int8=True, half=True, imgsz=64, data=[str(sample_images()[0])],
                     output=str(tmp_path / "x.engine"))
