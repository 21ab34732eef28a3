"""Predictor with real built models on the bundled samples: shapes, ranges, original-image coordinates, options."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from yolov12.config import PredictConfig
from yolov12.infer import Predictor, Results, non_max_suppression, sample_images, scale_boxes
from yolov12.infer.device import DeviceError
from yolov12.infer.predictor import save_name
from yolov12.infer.preprocess import letterbox_batch

IMGSZ = 320


@pytest.fixture(scope="module")
def detections(detector) -> list[Results]:
    config = PredictConfig(imgsz=IMGSZ, conf=0.0, max_det=50, batch=2)
    return Predictor(detector, config)(sample_images())


def test_detection_results_are_in_original_image_coordinates(detections, detector) -> None:
    paths = sample_images()
    assert [r.path for r in detections] == [str(p) for p in paths]
    for result, path in zip(detections, paths):
        image = cv2.imread(str(path))
        assert result.orig_img.shape == image.shape and result.orig_shape == image.shape[:2]
        boxes = result.boxes
        assert boxes.data.shape == (len(boxes), 6) and 0 < len(boxes) <= 50
        height, width = result.orig_shape
        xyxy = boxes.xyxy
        assert (xyxy[:, 0] >= 0).all() and (xyxy[:, 2] <= width).all()
        assert (xyxy[:, 1] >= 0).all() and (xyxy[:, 3] <= height).all()
        assert (xyxy[:, 2] >= xyxy[:, 0]).all() and (xyxy[:, 3] >= xyxy[:, 1]).all()
        assert ((boxes.conf >= 0) & (boxes.conf <= 1)).all() and (boxes.conf[1:] <= boxes.conf[:-1]).all()
        assert set(boxes.cls.tolist()) <= {0.0, 1.0, 2.0}
        assert max(xyxy[:, 2].max(), xyxy[:, 3].max()) > IMGSZ  # mapped out of the 320-pixel letterbox
        assert result.names == detector.names
        assert set(result.speed) == {"preprocess", "inference", "postprocess"}
        assert all(v >= 0 for v in result.speed.values())


def test_matches_the_manual_pipeline(detections, detector) -> None:
    images = [cv2.imread(str(p)) for p in sample_images()]
    prepared = letterbox_batch(images, IMGSZ)
    inputs, infos = prepared.to_tensor(), prepared.letterboxes
    with torch.no_grad():
        outputs = detector.eval()(inputs)
    assert outputs.shape[:2] == (2, 4 + 3)
    for result, image, info, det in zip(detections, images, infos, non_max_suppression(outputs, 0.0, max_det=50)):
        det[:, :4] = scale_boxes(det[:, :4], info, image.shape[:2])
        torch.testing.assert_close(result.boxes.data, det, rtol=1e-4, atol=1e-3)


def test_batch_size_does_not_change_results(detections, detector) -> None:
    config = PredictConfig(imgsz=IMGSZ, conf=0.0, max_det=50, batch=1)
    single = list(Predictor(detector, config).stream(sample_images()))
    for one, two in zip(single, detections):
        torch.testing.assert_close(one.boxes.data, two.boxes.data, rtol=1e-4, atol=1e-2)


def test_options_imgsz_rounding_classes_max_det_and_in_memory_source(detector, caplog) -> None:
    config = PredictConfig(imgsz=300, conf=0.0, classes=(0, 2), max_det=4)
    image = cv2.imread(str(sample_images()[1]))
    predictor = Predictor(detector, config)
    assert predictor.image_size == 320
    assert "not a multiple of the max stride 32" in caplog.text
    [result] = predictor(image)
    assert result.path == "image0" and 0 < len(result) <= 4 and set(result.boxes.cls.tolist()) <= {0.0, 2.0}
    [other] = Predictor(detector, config.updated(classes=(1,)))(image)
    assert set(other.boxes.cls.tolist()) <= {1.0}


def test_default_source_is_the_samples_and_training_mode_is_restored(detector) -> None:
    detector.train()
    try:
        results = Predictor(detector, PredictConfig(imgsz=64))()
        assert detector.training
    finally:
        detector.eval()
    assert [r.path for r in results] == [str(p) for p in sample_images()]


def test_half_on_cpu_uses_bfloat16_autocast(detector) -> None:
    predictor = Predictor(detector, PredictConfig(imgsz=64, half=True, conf=0.0, max_det=5))
    assert predictor.bf16_autocast and not predictor.fp16
    [result] = predictor(np.zeros((50, 70, 3), np.uint8))
    assert result.boxes.data.dtype == torch.float32 and len(result) == 5
    assert next(detector.parameters()).dtype == torch.float32


def test_save_writes_annotated_images(tmp_path, detector) -> None:
    config = PredictConfig(imgsz=64, save=True, project=str(tmp_path / "runs"), name="exp1")
    Predictor(detector, config)(sample_images())
    assert sorted(p.name for p in (tmp_path / "runs" / "exp1").iterdir()) == ["astronaut.jpg", "coffee.jpg"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [("/a/b/photo.png", "photo.png"), ("/v/clip.mp4:frame12", "clip_frame12.jpg"), ("image3", "image3.jpg")],
)
def test_save_names(name, expected) -> None:
    assert save_name(name) == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error")
def test_cuda_requested_without_cuda_is_a_clear_error(detector) -> None:
    with pytest.raises(DeviceError, match=r"device 'cuda:0' requested but CUDA is not available.*use device=cpu"):
        Predictor(detector, PredictConfig(device="0"))


def test_classification(classifier) -> None:
    results = Predictor(classifier, PredictConfig(imgsz=96, batch=2))(sample_images())
    assert len(results) == 2
    for result in results:
        probs = result.probs
        assert result.boxes is None and probs.data.shape == (10,)
        assert float(probs.data.sum()) == pytest.approx(1.0, abs=1e-4)
        assert ((probs.data >= 0) & (probs.data <= 1)).all()
        assert len(probs.top5) == 5 and probs.top1 == probs.top5[0]
        assert float(probs.top1conf) == pytest.approx(float(probs.data.max()))
        assert len(result.summary()) == 5 and result.plot().shape == result.orig_img.shape


def test_rejects_models_without_a_known_task() -> None:
    with pytest.raises(ValueError, match="task"):
        Predictor(torch.nn.Linear(2, 2))


def test_stream_reads_ahead_yet_keeps_order_errors_and_speed(tmp_path, detector) -> None:
    """Batches after the first are decoded and letterboxed on the read-ahead thread: the results come in source
    order, equal to batch-by-batch prediction; a corrupt file raises when its turn comes, after the images before it;
    ``speed["preprocess"]`` still counts the letterbox."""
    from yolov12.infer.image_io import SourceError

    photos = [str(p) for p in sample_images()]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    predictor = Predictor(detector, PredictConfig(imgsz=IMGSZ, conf=0.0, max_det=20, batch=1))
    streamed = list(predictor.stream(photos * 2))
    assert [r.path for r in streamed] == photos * 2
    one_by_one = [predictor.predict_batch([p], [cv2.imread(p)])[0] for p in photos]
    for result, expected in zip(streamed, one_by_one * 2):
        torch.testing.assert_close(result.boxes.data, expected.boxes.data)
        assert result.speed["preprocess"] > 0
    seen = []
    with pytest.raises(SourceError, match="broken.jpg"):
        for result in predictor.stream([photos[0], photos[1], str(broken), photos[0]]):
            seen.append(result.path)
    assert seen == photos[:2]
