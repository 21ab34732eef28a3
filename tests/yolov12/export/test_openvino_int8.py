"""int8 OpenVINO export (NNCF): a quantised IR, the detection post-processing in float, outputs close to fp32, the
calibration images, and one-line errors for what cannot be done."""

from __future__ import annotations

import cv2
import numpy as np
import openvino as ov
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
from yolov12.cli.main import main
from yolov12.data.sample_dataset import ensure_sample_detection
from yolov12.engines import load_engine
from yolov12.engines.base import canvas_to_float_nchw
from yolov12.export import ExportError, ExportMetadata, export_model, read_openvino_metadata
from yolov12.export.api import head_scope
from yolov12.export.calibration import CalibrationImages
from yolov12.export.openvino import find_ir
from yolov12.export.openvino_int8 import postprocess_ops
from yolov12.infer.preprocess import letterbox_batch

SIZE = 128


@pytest.fixture(scope="module")
def photo_model():
    return make_photo_model("yolov12n", imgsz=SIZE)


@pytest.fixture(scope="module")
def calibration_files(tmp_path_factory) -> list[str]:
    """Eight overlapping crops (half of them mirrored) of the two sample photos: the photo model's own domain."""
    folder = tmp_path_factory.mktemp("calibration")
    files = []
    for i, photo in enumerate(sample_photos()):
        height, width = photo.shape[:2]
        for j, (top, left) in enumerate([(0, 0), (height // 3, width // 3), (0, width // 2), (height // 2, 0)]):
            crop = photo[top:top + height // 2 + 60, left:left + width // 2 + 60]
            path = folder / f"crop{i}{j}.jpg"
            cv2.imwrite(str(path), crop if j % 2 else crop[:, ::-1])
            files.append(str(path))
    return files


@pytest.fixture(scope="module")
def int8_folder(photo_model, calibration_files, tmp_path_factory):
    return export_cached(photo_model, tmp_path_factory, "int8", format="openvino", imgsz=SIZE, int8=True,
                         data=calibration_files)


@pytest.fixture(scope="module")
def int8_engine(int8_folder):
    return load_engine(int8_folder, threads=2)


@pytest.mark.slow
def test_the_ir_is_quantised_and_says_so(int8_folder, int8_engine) -> None:
    meta = read_openvino_metadata(int8_folder)
    assert meta.int8 and meta.precision == "fp32" and meta.imgsz == (SIZE, SIZE)
    model = ov.Core().read_model(str(find_ir(int8_folder)))
    types = [op.get_type_name() for op in model.get_ordered_ops()]
    weight_types = {op.get_output_element_type(0).get_type_name() for op in model.get_ordered_ops()
                    if op.get_type_name() == "Constant"}
    assert types.count("FakeQuantize") > 100 and "i8" in weight_types  # activations and int8 weights
    assert int8_engine.info.precision == "int8" and int8_engine.info.backend == "openvino"
    runtime = {(op.get_rt_info()["layerType"].astype(str), op.get_rt_info()["runtimePrecision"].astype(str))
               for op in int8_engine.compiled.get_runtime_model().get_ordered_ops()}
    assert {("Convolution", "u8"), ("Convolution", "i8")} & runtime  # int8 kernels run, fp32 was not forced


@pytest.mark.slow
def test_the_post_processing_stays_in_float(int8_folder, photo_model) -> None:
    """No quantiser inside or in front of the DFL / box decode / sigmoid / output concat; the head convs are int8."""
    model = ov.Core().read_model(str(find_ir(int8_folder)))
    scope = head_scope(photo_model)
    kept = set(postprocess_ops(model, scope))
    ops = {op.get_friendly_name(): op for op in model.get_ordered_ops()}
    assert {"/model.21/dfl/Softmax", "/model.21/Sigmoid", "/model.21/Concat_3"} <= kept
    for name in kept:
        assert ops[name].get_type_name() != "FakeQuantize", name
        assert all(v.get_node().get_type_name() != "FakeQuantize" for v in ops[name].input_values()), name
    head_conv_inputs = [v.get_node().get_type_name() for name, op in ops.items()
                        if name.startswith(f"/{scope}/cv3.0/") and op.get_type_name() == "Convolution"
                        for v in op.input_values()]
    assert "FakeQuantize" in head_conv_inputs


@pytest.mark.slow
def test_outputs_are_close_to_fp32(int8_folder, int8_engine, photo_model) -> None:
    """Against the fp32 model (which the fp32 IR matches to 1e-3, test_openvino_export).

    The photo model has random weights, so its best-class scores only spread over ~0.0001..0.005 and many anchors
    are near-ties; its scores are compared by rank and correlation, not by value. Measured at 128 px: median box
    error 0.2 px (0.34 px with the decode quantised too), Pearson r of the best-class scores 0.96 / 0.999 for the
    two photos, all of fp32's 10 best anchors among int8's 30 best.
    """
    x = letterbox_batch(sample_photos(), SIZE).to_float_nchw()
    want, got = torch_output(photo_model, x), int8_engine(x)
    assert got.shape == want.shape == (2, 7, 336)
    assert np.median(np.abs(got[:, :4] - want[:, :4])) <= 1.0  # pixels, of 128
    best_want, best_got = want[:, 4:].max(1), got[:, 4:].max(1)
    for image in range(2):
        assert np.corrcoef(best_want[image], best_got[image])[0, 1] >= 0.9
        top_want = set(np.argsort(best_want[image])[::-1][:10])
        assert len(top_want & set(np.argsort(best_got[image])[::-1][:30])) >= 8
    results = YOLO(str(int8_folder)).predict(sample_photos(), conf=0.0, max_det=10)
    assert [len(r) for r in results] == [10, 10]


@pytest.mark.slow
def test_int8_predict_through_the_canvas_input_keeps_the_float_inputs_detections(int8_engine) -> None:
    """Predict hands the int8 engine the uint8 canvas (converted in the graph): the same boxes as the float input."""
    from yolov12.config import PredictConfig  # noqa: PLC0415
    from yolov12.infer import Predictor  # noqa: PLC0415

    photos = sample_photos()
    canvas = letterbox_batch(photos, SIZE).canvas
    float_out = int8_engine(canvas_to_float_nchw(canvas))
    np.testing.assert_allclose(int8_engine.run_canvas(canvas), float_out, rtol=0,
                               atol=1e-4 * float(np.abs(float_out).max()))
    conf = gap_threshold(float_out)
    predictor = Predictor(int8_engine, PredictConfig(imgsz=SIZE, conf=conf))
    assert predictor.preprocess(photos)[0].dtype == np.uint8, "the canvas itself goes to the engine"
    results = predictor.predict_batch(["a", "b"], photos)
    for result, expected in zip(results, nms(float_out, conf)):
        assert len(result) == len(expected) > 0
        np.testing.assert_allclose(result.boxes.data[:, 4].numpy(), expected[:, 4], atol=1e-5)


def test_int8_without_data_is_one_clear_line(photo_model, tmp_path) -> None:
    with pytest.raises(ExportError, match=r"int8=True needs calibration images: pass data=") as caught:
        export_model(photo_model, format="openvino", int8=True, imgsz=SIZE, output=str(tmp_path / "m"))
    assert "\n" not in str(caught.value) and "'sample'" in str(caught.value)
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_int8_onnx_names_the_formats_that_have_it(photo_model, tmp_path) -> None:
    with pytest.raises(ExportError, match=r"available for format=openvino \(NNCF\) and format=engine \(TensorRT\), "
                                          r"not format=onnx"):
        export_model(photo_model, format="onnx", int8=True, data="sample", output=str(tmp_path / "m.onnx"))


def test_cli_reads_int8_and_data(capsys) -> None:
    assert main(["export", "model=yolov12n-cls.yaml", "format=openvino", "int8=true", "imgsz=64"]) == 2
    assert "int8=True needs calibration images" in capsys.readouterr().err
    assert main(["export", "model=yolov12n-cls.yaml", "format=onnx", "int8=true", "data=sample", "imgsz=64"]) == 2
    assert "not format=onnx" in capsys.readouterr().err


def test_calibration_images_from_datasets_and_image_sources(calibration_files) -> None:
    sample = CalibrationImages.from_data("sample", (64, 64))
    assert len(sample) == 96 and "train split" in sample.description  # the train split, never val
    assert [b.shape for b in sample.batches(40)] == [(40, 3, 64, 64), (40, 3, 64, 64), (16, 3, 64, 64)]
    assert len(CalibrationImages.from_data(str(ensure_sample_detection()), (64, 64))) == 96  # a data.yaml
    images = CalibrationImages.from_data(calibration_files[:3], (64, 96))
    batches = list(images.batches(2, fixed=True))  # a static batch-2 graph: the last batch is filled up
    assert [b.shape for b in batches] == [(2, 3, 64, 96), (2, 3, 64, 96)]
    np.testing.assert_array_equal(batches[1][0], batches[1][1])
    want = letterbox_batch([cv2.imread(calibration_files[0])], (64, 96)).to_float_nchw()[0]
    np.testing.assert_array_equal(batches[0][0], want)  # prepared exactly as predict prepares it
    folder = CalibrationImages.from_data(str(ensure_sample_detection().parent / "images" / "val"), (64, 64))
    assert len(folder) == 32


def test_old_metadata_without_int8_still_reads() -> None:
    old = {"format": "openvino", "task": "detect", "names": {"0": "a"}, "stride": 32, "imgsz": [320, 320]}
    assert ExportMetadata.from_dict(old).int8 is False


@pytest.mark.slow
def test_int8_with_nms_in_the_graph(int8_engine, photo_model, calibration_files, tmp_path_factory) -> None:
    """int8 + nms=True: calibration runs the end-to-end graph; the NMS tail stays in float, so the detections are
    our NMS of the int8 raw output (the same calibration images give the same quantisation)."""
    x = letterbox_batch(sample_photos(), SIZE).to_float_nchw()
    raw = int8_engine(x)
    conf = gap_threshold(raw)
    folder = export_cached(photo_model, tmp_path_factory, "int8_nms", format="openvino", imgsz=SIZE, int8=True,
                           data=calibration_files, nms=True, conf=conf, max_det=20)
    meta = read_openvino_metadata(folder)
    assert meta.int8 and meta.end2end and meta.nms["max_det"] == 20
    engine = load_engine(folder, threads=2)
    assert engine.info.precision == "int8" and engine.info.end2end
    out = engine(x)
    assert out.shape == (2, 20, 6)
    want = nms(raw, conf, max_det=20)
    got = [rows[rows[:, 4] > 0] for rows in out]
    assert all(len(w) > 0 for w in want)
    assert_same_detections(want, got)


def test_default_int8_output_never_replaces_the_float_export(tmp_path, monkeypatch) -> None:
    from yolov12.export.api import EXPORT_FORMATS, ExportConfig, output_path
    from yolov12.models import build_model, load_architecture

    monkeypatch.chdir(tmp_path)
    model = build_model(load_architecture("yolov12n"))
    openvino, engine = EXPORT_FORMATS["openvino"], EXPORT_FORMATS["engine"]
    fp32 = output_path(ExportConfig(format="openvino"), openvino, model, None)
    int8 = output_path(ExportConfig(format="openvino", int8=True, data="sample"), openvino, model, None)
    assert (fp32.name, int8.name) == ("yolov12n_openvino", "yolov12n_int8_openvino")
    assert output_path(ExportConfig(format="engine", int8=True, data="sample"), engine, model, None).name == \
        "yolov12n_int8.engine"
