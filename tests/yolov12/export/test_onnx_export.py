"""ONNX export: parity with PyTorch in ONNX Runtime, dynamic shapes, metadata, end-to-end NMS, errors."""

from __future__ import annotations

import copy
import json

import numpy as np
import onnx
import pytest
import torch
from export_helpers import (
    assert_same_detections,
    export_cached,
    gap_threshold,
    make_model,
    make_photo_model,
    nms,
    sample_photos,
    torch_output,
)

from yolov12 import YOLO
from yolov12.config import PredictConfig
from yolov12.config.base import ConfigError
from yolov12.engines import EngineInputError, load_engine
from yolov12.export import ExportError, ExportMetadata, export_model, read_onnx_metadata
from yolov12.export.metadata import weights_digest
from yolov12.export.onnx import EndToEnd, NMSSettings, prepare_for_export
from yolov12.infer import Predictor
from yolov12.infer.nms import non_max_suppression
from yolov12.infer.preprocess import letterbox_batch
from yolov12.nn import AreaAttention

PARITY = 1e-3  # max abs difference of raw outputs (pixels for boxes, probabilities for scores)


def uniform(batch: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.RandomState(seed).uniform(0, 1, (batch, 3, size, size)).astype(np.float32)


@pytest.mark.parametrize(("model_name", "artifact_name", "size"), [
    ("turbo_n", "turbo_dynamic_onnx", 320),
    ("v1_n", "v1_static_onnx", 320),
    ("cls_n", "cls_onnx", 224),
])
def test_raw_outputs_match_pytorch(request, model_name, artifact_name, size) -> None:
    model, path = request.getfixturevalue(model_name), request.getfixturevalue(artifact_name)
    engine = load_engine(path, threads=2)
    batch = 1 if engine.info.fixed_batch == 1 else 2
    x = uniform(batch, size)
    got, want = engine(x), torch_output(model, x)
    assert got.shape == want.shape and got.dtype == np.float32
    assert np.abs(got - want).max() <= PARITY


@pytest.mark.parametrize("name", ["yolov12n", "yolov12n-v1"])
def test_identical_detections_on_the_sample_photos(name, tmp_path_factory) -> None:
    model = make_photo_model(name)
    path = export_cached(model, tmp_path_factory, f"{name}-photo.onnx", imgsz=320, dynamic=True)
    x = uniform(2, 320)  # raw outputs within float32 rounding: no further from torch than torch is from float64
    fp64_noise = np.abs(torch_output(model, x) - torch_output(copy.deepcopy(model).double(), x.astype(np.float64)))
    assert np.abs(load_engine(path)(x) - torch_output(model, x)).max() <= 2 * fp64_noise.max() + 1e-4
    reference = Predictor(model, PredictConfig(imgsz=320))
    images = sample_photos()
    inputs, _ = reference.preprocess(images)
    conf = gap_threshold(reference.inference(inputs))
    config = PredictConfig(imgsz=320, conf=conf)
    want = Predictor(model, config).predict_batch(["a", "b"], images)
    got = Predictor(load_engine(path, threads=2), config).predict_batch(["a", "b"], images)
    assert all(len(r) > 0 for r in want) and not torch.equal(want[0].boxes.data, want[1].boxes.data)
    assert_same_detections([r.boxes.data for r in want], [r.boxes.data for r in got])


def test_dynamic_batch_and_image_size(turbo_n, turbo_dynamic_onnx) -> None:
    engine = load_engine(turbo_dynamic_onnx, threads=2)
    assert engine.info.dynamic_imgsz and engine.info.fixed_batch is None and engine.info.max_batch is None
    for batch, size in ((1, 320), (3, 320), (2, 256)):
        x = uniform(batch, size, seed=batch)
        got = engine(x)
        assert got.shape == (batch, 7, (size // 8) ** 2 + (size // 16) ** 2 + (size // 32) ** 2)
        assert np.abs(got - torch_output(turbo_n, x)).max() <= PARITY
    with pytest.raises(EngineInputError, match="not a multiple of the model stride 32"):
        engine(uniform(1, 300))


def test_static_engine_splits_and_pads_batches_and_checks_the_size(v1_n, v1_static_onnx) -> None:
    engine = load_engine(v1_static_onnx, threads=2)
    assert engine.info.fixed_batch == 1 and not engine.info.dynamic_imgsz and engine.info.imgsz == (320, 320)
    x = uniform(3, 320)
    np.testing.assert_allclose(engine(x), torch_output(v1_n, x), atol=PARITY, rtol=0)
    with pytest.raises(EngineInputError, match="exported for 320x320 inputs, got 256x256"):
        engine(uniform(1, 256))
    with pytest.raises(EngineInputError, match=r"\(B, 3, H, W\)"):
        engine(np.zeros((1, 320, 320, 3), np.float32))


def test_metadata_props_read_back(turbo_n, turbo_dynamic_onnx) -> None:
    meta = read_onnx_metadata(turbo_dynamic_onnx)
    assert meta.task == "detect" and meta.names == {0: "thing0", 1: "thing1", 2: "thing2"}
    assert meta.stride == 32 and meta.imgsz == (320, 320) and meta.batch == 2
    assert meta.dynamic and meta.dynamic_imgsz and not meta.end2end
    assert meta.model_name == "yolov12n" and meta.model_version == "turbo" and meta.opset == 17
    assert meta.source["weights_sha256"] == weights_digest(turbo_n)
    assert meta.package_version and meta.created_at and meta.format == "onnx"
    proto = onnx.load(str(turbo_dynamic_onnx), load_external_data=False)
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["names"]) == {"0": "thing0", "1": "thing1", "2": "thing2"}
    assert props["task"] == "detect" and props["stride"] == "32" and json.loads(props["imgsz"]) == [320, 320]
    assert props["model_version"] == "turbo" and props["weights_sha256"] == meta.source["weights_sha256"]
    assert ExportMetadata.from_json(props["yolov12"]) == meta
    assert proto.producer_name == "yolov12-platform"


def test_checkpoint_digest_is_recorded_and_yolo_loads_the_onnx(tmp_path, cls_n) -> None:
    checkpoint = YOLO(cls_n).save(tmp_path / "cls.safetensors")
    model = YOLO(str(checkpoint))
    path = model.export(format="onnx", imgsz=64)
    assert path == tmp_path / "cls.onnx"  # beside the checkpoint by default
    meta = read_onnx_metadata(path)
    assert meta.source["file"] == "cls.safetensors" and len(meta.source["sha256"]) == 64
    exported = YOLO(str(path))
    assert exported.task == "classify" and exported.names == cls_n.names and exported.model is None
    [result] = exported.predict(np.zeros((80, 60, 3), np.uint8))
    [want] = model.predict(np.zeros((80, 60, 3), np.uint8), imgsz=64)
    np.testing.assert_allclose(result.probs.data.numpy(), want.probs.data.numpy(), atol=PARITY)
    with pytest.raises(ValueError, match="exported onnxruntime model and can only predict"):
        exported.train(data="sample-cls")


def test_yolo_predict_on_an_onnx_file_returns_the_same_results(turbo_n, turbo_dynamic_onnx) -> None:
    images = sample_photos()
    want = Predictor(turbo_n, PredictConfig(imgsz=320, conf=0.0, max_det=20)).predict_batch(["a", "b"], images)
    model = YOLO(str(turbo_dynamic_onnx))
    assert repr(model).endswith("backend='onnxruntime')")
    got = model.predict(images, imgsz=320, conf=0.0, max_det=20)
    assert [len(r) for r in got] == [len(r) for r in want] == [20, 20]
    assert got[0].names == turbo_n.names and set(got[0].speed) == {"preprocess", "inference", "postprocess"}
    np.testing.assert_allclose(got[0].boxes.xyxy.numpy(), want[0].boxes.xyxy.numpy(), atol=1e-2)


def test_end_to_end_nms_in_the_graph_equals_our_nms(tmp_path_factory) -> None:
    turbo_n = make_photo_model("yolov12n")
    images = sample_photos()
    reference = Predictor(turbo_n, PredictConfig(imgsz=320))
    inputs, _ = reference.preprocess(images)
    raw = reference.inference(inputs)
    conf = gap_threshold(raw)
    path = export_cached(turbo_n, tmp_path_factory, "e2e.onnx", imgsz=320, nms=True, conf=conf, iou=0.7, max_det=50,
                         dynamic=True)
    engine = load_engine(path, threads=2)
    assert engine.info.end2end and read_onnx_metadata(path).nms == {"conf": conf, "iou": 0.7, "max_det": 50,
                                                                    "agnostic": False}
    out = engine(inputs.numpy())
    assert out.shape == (2, 50, 6)
    want = nms(raw, conf, max_det=50)
    got = [rows[rows[:, 4] > 0] for rows in out]
    assert all(len(w) > 0 for w in want)
    assert_same_detections(want, got)
    assert not out[0, len(got[0]):].any()  # zero rows after the last detection
    # Predict through the end-to-end model gives the same Results as through the raw one.
    config = PredictConfig(imgsz=320, conf=conf, max_det=50)
    results = YOLO(str(path)).predict(images, **config.model_dump(include={"imgsz", "conf", "max_det"}))
    expected = Predictor(turbo_n, config).predict_batch(["a", "b"], images)
    assert_same_detections([r.boxes.data for r in expected], [r.boxes.data for r in results])


@pytest.mark.parametrize("agnostic", [False, True])
def test_end_to_end_tail_keeps_each_images_best_max_det(agnostic) -> None:
    """The end-to-end module run eagerly (its NMS tail, no export): a max_det above the anchor count (96 px: 189
    anchors), where the top-k runs over the padding and the unused rows are zeros, then fewer rows than
    detections (the best ones, in order)."""
    model = prepare_for_export(make_photo_model("yolov12n", imgsz=96))
    x = torch.from_numpy(letterbox_batch(sample_photos(), 96).to_float_nchw())
    raw = torch_output(model, x.numpy())
    conf = gap_threshold(raw, per_image=8)
    counts = [len(d) for d in non_max_suppression(raw, conf=conf, agnostic=agnostic)]
    assert max(counts) > 2  # max_det=2 drops detections
    for max_det in (300, 2):
        want = [d.numpy() for d in non_max_suppression(raw, conf=conf, max_det=max_det, agnostic=agnostic)]
        with torch.no_grad():
            out = EndToEnd(model, NMSSettings(conf=conf, max_det=max_det, agnostic=agnostic))(x).numpy()
        assert out.shape == (2, max_det, 6)
        assert_same_detections(want, [rows[: len(w)] for rows, w in zip(out, want)], atol_px=1e-4)
        assert not out[0, len(want[0]):].any() and not out[1, len(want[1]):].any()


def test_attention_is_exported_with_the_sdpa_kernel_never_flash(tmp_path) -> None:
    model = make_model("yolov12n-v1")
    for module in model.modules():
        if isinstance(module, AreaAttention):
            module.backend = "flash"  # what a CUDA user may have set; export must not keep it
    state = {k: v.clone() for k, v in model.state_dict().items()}
    path = export_model(model, imgsz=64, output=str(tmp_path / "m.onnx"), simplify=False)
    proto = onnx.load(str(path))
    ops = {node.op_type for node in proto.graph.node}
    domains = {node.domain for node in proto.graph.node}
    assert {"MatMul", "Softmax"} <= ops and domains <= {""}  # plain ONNX ops only: no custom / flash kernels
    # the model itself is untouched: attention backend, BatchNorms (not fused), weights, mode
    assert {m.backend for m in model.modules() if isinstance(m, AreaAttention)} == {"flash"}
    assert not model.is_fused and not model.training
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize(("settings", "error", "fragment"), [
    ({"format": "tflite"}, ConfigError, "unknown export format 'tflite'; choose one of onnx, openvino, engine"),
    ({"imgsz": 300}, ExportError, "imgsz=300 is not a multiple of the model's stride 32; use e.g. imgsz=320"),
    ({"imgsz": [320, 100]}, ExportError, r"imgsz=\[320, 100\] is not a multiple"),
    ({"opset": 9}, ConfigError, "opset=9"),
    ({"int8": True}, ExportError, "int8=True is available for format=openvino"),
    ({"imgz": 320}, ConfigError, "did you mean 'imgsz'"),
])
def test_bad_settings_are_clear_errors(turbo_n, settings, error, fragment) -> None:
    with pytest.raises(error, match=fragment):
        export_model(turbo_n, **settings)


def test_nms_on_a_classifier_is_an_error(cls_n) -> None:
    with pytest.raises(ExportError, match="nms=True applies to detection models"):
        export_model(cls_n, nms=True)


@pytest.mark.slow
def test_small_detector_parity_in_both_versions(tmp_path_factory) -> None:
    for name in ("yolov12s", "yolov12s-v1"):
        model = make_model(name)
        path = export_cached(model, tmp_path_factory, f"{name}.onnx", imgsz=320)
        x = uniform(1, 320)
        assert np.abs(load_engine(path, threads=2)(x) - torch_output(model, x)).max() <= PARITY


def test_cli_export(tmp_path, capsys) -> None:
    from yolov12.cli.main import main

    output = tmp_path / "cls.onnx"
    assert main(["export", "model=yolov12n-cls.yaml", "format=onnx", "imgsz=64", f"output={output}"]) == 0
    assert capsys.readouterr().out.strip().endswith(f"exported {output}")
    assert read_onnx_metadata(output).imgsz == (64, 64)
    assert main(["export", "model=yolov12n-cls.yaml", "format=onnx", "imgsz=65"]) == 2
    assert "not a multiple of the model's stride 32" in capsys.readouterr().err


def test_half_export_is_a_float16_graph(cls_n, tmp_path) -> None:
    path = export_model(cls_n, half=True, imgsz=64, output=str(tmp_path / "half.onnx"))
    proto = onnx.load(str(path))
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    engine = load_engine(path)
    assert engine.info.input_dtype == "float16" and engine.info.precision == "fp16" and read_onnx_metadata(path).half
    x = uniform(2, 64)
    got = engine(x)  # float32 in, converted; float32 out
    assert got.dtype == np.float32 and np.abs(got - torch_output(cls_n, x)).max() < 1e-2
