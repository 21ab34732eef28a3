"""A detector without learning (dark blobs of the input) behind ``YOLO``, and a generated video of moving digits."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import yolov12.engines
import yolov12.yolo
from yolov12 import YOLO
from yolov12.engines.base import EngineInfo
from yolov12.track.synthetic import MovingDigits, SequenceSpec

VIDEO_SPEC = SequenceSpec(num_frames=40, num_objects=5, crossing_pairs=1, seed=3)


class DarkBlobDetector:
    """An end-to-end "engine": each dark connected blob of the (B, 3, H, W) input in [0, 1] is a class-0 detection
    scoring 0.9, as (B, max_det, 6) x1, y1, x2, y2, score, class in input pixels. The digits of the generated video
    are dark ink on a light background, so this finds them without a trained model."""

    def __init__(self, size: int = 320) -> None:
        self.info = EngineInfo(backend="blobs", task="detect", names={0: "digit"}, stride=32, imgsz=(size, size),
                               dynamic_imgsz=False, end2end=True, artifact="blobs")

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        out = np.zeros((len(images), 50, 6), np.float32)
        for index, image in enumerate(images):
            dark = cv2.dilate((image.mean(0) < 0.4).astype(np.uint8), np.ones((3, 3), np.uint8))
            _, _, stats, _ = cv2.connectedComponentsWithStats(dark)
            rows = [(x, y, x + w, y + h, 0.9, 0) for x, y, w, h, area in stats[1:] if area >= 30][:50]
            out[index, :len(rows)] = np.asarray(rows, np.float32).reshape(-1, 6)
        return out

    def warmup(self, runs: int = 1) -> None:
        """Nothing to warm up."""


@pytest.fixture
def blob_model(tmp_path, monkeypatch) -> YOLO:
    """``YOLO`` over :class:`DarkBlobDetector`, loaded as an exported model would be."""
    artifact = tmp_path / "blobs.onnx"
    artifact.write_bytes(b"not read")
    monkeypatch.setattr(yolov12.yolo, "is_exported_artifact", lambda model: str(model).endswith(".onnx"))
    monkeypatch.setattr(yolov12.engines, "load_engine", lambda model, **kwargs: DarkBlobDetector())
    return YOLO(str(artifact))


@pytest.fixture(scope="module")
def digits_video(tmp_path_factory) -> tuple[Path, MovingDigits]:
    video = MovingDigits(VIDEO_SPEC)
    return video.write_video(tmp_path_factory.mktemp("video") / "digits.avi"), video
