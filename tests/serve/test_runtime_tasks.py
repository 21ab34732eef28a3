"""ServingModel runs both tasks through the library's per-task pre/post-processing (torch engine, no Ray)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from serve_support import IMGSZ

from serve.runtime import InferenceRequest, load_serving_model
from yolov12.config import PredictConfig
from yolov12.infer import Predictor, read_image, sample_images
from yolov12.models import build_model, load_architecture
from yolov12.weights import save_checkpoint


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("runtime-tasks")
    torch.manual_seed(0)
    detector = build_model(load_architecture("yolov12n").with_overrides(num_classes=2), names={0: "a", 1: "b"})
    classifier = build_model(load_architecture("yolov12n-cls").with_overrides(num_classes=3),
                             names={0: "x", 1: "y", 2: "z"})
    return {"detect": save_checkpoint(detector, folder / "detector.safetensors"),
            "classify": save_checkpoint(classifier, folder / "classifier.safetensors")}


@pytest.mark.parametrize("task", ["detect", "classify"])
def test_serving_model_matches_predict_for_each_task(task: str, checkpoints: dict[str, Path]) -> None:
    image = read_image(sample_images()[0])
    serving = load_serving_model(str(checkpoints[task]), backend="torch", device="cpu", imgsz=IMGSZ, threads=1)
    (prediction,) = serving.predict([InferenceRequest(image, conf=0.01, iou=0.7, max_det=50)])
    assert prediction.task == task and prediction.imgsz == IMGSZ
    assert (prediction.height, prediction.width) == image.shape[:2]
    config = PredictConfig(imgsz=IMGSZ, conf=0.01, iou=0.7, max_det=50, verbose=False)
    (expected,) = Predictor(serving.engine, config)([image])
    if task == "classify":
        assert prediction.detections.shape == (0, 6) and prediction.class_names == ["x", "y", "z"]
        np.testing.assert_allclose(prediction.probs, expected.probs.data.numpy(), atol=1e-5)
    else:
        assert prediction.probs is None and len(prediction.detections) == len(expected.boxes)
        np.testing.assert_allclose(prediction.detections, expected.boxes.data.numpy(), atol=1e-3)
